/* session.c -- the Pomelo protocol of one client connection, its dispatch to the route
 * handlers, the session table of a worker, and the delivery of output (session.h).
 */
#include "metrics.h"
#include "session.h"
#include "wire.h"

#include <stdio.h>

static inline atoll__session *
session_of(atoll__conn *c)
{
    return (atoll__session *)c;
}

static inline const atoll__config *
cfg_of(const atoll__session *s)
{
    return s->worker->node->cfg;
}

/* ---- the session table of a worker ------------------------------------------------------ */

static atoll_session_id
slot_add(atoll__worker *w, atoll__session *s)
{
    uint32_t slot;
    if (w->nfree > 0) {
        slot = w->free_slots[--w->nfree];
    } else {
        if (w->nslots == ATOLL_SESSION_SLOTS)
            atoll__oom(0); /* net.max_conns is capped below this (node.c) */
        slot = w->nslots++;
        if ((slot & (slot - 1)) == 0 || slot == 0) {
            uint32_t cap = slot ? slot * 2 : 64;
            w->slots = atoll__realloc(w->slots, cap * sizeof *w->slots);
            w->generations = atoll__realloc(w->generations, cap * sizeof *w->generations);
            w->free_slots = atoll__realloc(w->free_slots, cap * sizeof *w->free_slots);
            memset(w->generations + slot, 0, (cap - slot) * sizeof *w->generations);
        }
    }
    w->slots[slot] = s;
    uint32_t gen = ++w->generations[slot] & ATOLL_SESSION_GEN_MASK;
    w->generations[slot] = gen;
    return atoll__session_id(w->node->id, w->index, slot, gen);
}

static void
slot_remove(atoll__worker *w, atoll__session *s)
{
    uint32_t slot = atoll__session_slot(s->id);
    if (slot < w->nslots && w->slots[slot] == s) {
        w->slots[slot] = NULL;
        w->free_slots[w->nfree++] = slot;
    }
}

atoll__session *
atoll__session_find(atoll__worker *w, atoll_session_id id)
{
    if (atoll__session_worker(id) != w->index || atoll__session_node(id) != w->node->id)
        return NULL;
    uint32_t slot = atoll__session_slot(id);
    if (slot >= w->nslots || w->generations[slot] != (uint32_t)(id.v & ATOLL_SESSION_GEN_MASK))
        return NULL;
    return w->slots[slot];
}

/* The responses among packages p[0..n) for s: the requests they answer are no longer
 * in flight. Responses come in the order of their requests for each area (a kept
 * request's may come later): the answered one is most often the oldest. */
static void
drop_answered(atoll__session *s, const uint8_t *p, size_t n)
{
    for (size_t off = 0; off < n && s->ninflight > 0;) {
        atoll__pkg pkg;
        ssize_t k = atoll__pkg_parse(p + off, n - off, UINT32_MAX, &pkg);
        if (k <= 0)
            return;
        off += (size_t)k;
        atoll__msg msg;
        if (pkg.type != ATOLL_PKG_DATA || atoll__msg_decode(pkg.body, pkg.len, &msg) != ATOLL_OK ||
            msg.type != ATOLL_MSG_RESPONSE)
            continue;
        for (atoll__mail **pp = &s->inflight.head, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next) {
            atoll__mail *m = *pp;
            if (m->request_id != msg.id)
                continue;
            *pp = m->next;
            if (s->inflight.tail == m)
                s->inflight.tail = prev;
            s->ninflight--;
            atoll__mail_free(m);
            break;
        }
    }
}

bool
atoll__session_deliver(atoll__worker *w, atoll_session_id id, const void *p, size_t n)
{
    atoll__session *s = atoll__session_find(w, id);
    if (s != NULL && s->ninflight > 0)
        drop_answered(s, p, n);
    return s != NULL && atoll__session_live(s) && atoll__conn_write(&s->conn, p, n);
}

/* ---- closing ------------------------------------------------------------------------------ */

static void
session_fail(atoll__session *s, const char *reason, int ws_code)
{
    s->worker->stats.protocol_errors++;
    ATOLL_LOG_CLIENT(ATOLL_LOG_INFO, "msg=\"bad input, closing connection\" session=%llx reason=\"%s\"",
                     (unsigned long long)s->id.v, reason);
    if (atoll__session_live(s))
        atoll__kick_put(&s->conn.out, reason);
    atoll__conn_close(&s->conn, reason, ws_code ? ws_code : ATOLL_WS_CLOSE_PROTOCOL);
}

void
atoll__kick(atoll__session *s, const char *reason)
{
    s->no_resume = true; /* a kicked player does not wait to come back */
    if (s->conn.state == ATOLL_CONN_CLOSING)
        return;
    if (atoll__session_live(s))
        atoll__kick_put(&s->conn.out, reason);
    atoll__conn_close(&s->conn, reason, ATOLL_WS_CLOSE_NORMAL);
}

/* ---- handshake and heartbeats ------------------------------------------------------------- */

static void
send_heartbeat(atoll__session *s)
{
    atoll__pkg_put(&s->conn.out, ATOLL_PKG_HEARTBEAT, NULL, 0);
    atoll__conn_mark_dirty(&s->conn);
}

static void
restart_heartbeat_deadline(atoll__session *s)
{
    const atoll__config *cfg = cfg_of(s);
    if (cfg->heartbeat_s <= 0)
        return;
    int t = cfg->heartbeat_timeout_s > 0 ? cfg->heartbeat_timeout_s : 2 * cfg->heartbeat_s;
    atoll__conn_set_deadline(&s->conn, atoll__conn_now(&s->conn) + (uint64_t)t * 1000);
}

static void
on_handshake(atoll__session *s, const atoll__pkg *pkg)
{
    atoll__node *n = s->worker->node;
    atoll__handshake hs;
    int rc = atoll__handshake_parse(pkg->body, pkg->len, &hs);
    if (rc != ATOLL_OK) {
        ATOLL_LOG_CLIENT(ATOLL_LOG_INFO, "msg=\"bad handshake\" session=%llx error=%s",
                         (unsigned long long)s->id.v, atoll_err_name(rc));
        s->worker->stats.protocol_errors++;
        atoll__handshake_error(&s->conn.out, 500);
        atoll__conn_close(&s->conn, "bad handshake", ATOLL_WS_CLOSE_NORMAL);
        return;
    }
    if (n->cfg->min_client_version[0] != '\0' &&
        (hs.version[0] == '\0' || atoll__version_cmp(hs.version, n->cfg->min_client_version) < 0)) {
        /* Pomelo's checkClient answer: the client is too old to be served. */
        ATOLL_LOG_CLIENT(ATOLL_LOG_INFO, "msg=\"client version too old\" session=%llx version=\"%s\"",
                         (unsigned long long)s->id.v, hs.version);
        atoll__handshake_error(&s->conn.out, 501);
        atoll__conn_close(&s->conn, "client version too old", ATOLL_WS_CLOSE_NORMAL);
        return;
    }
    const atoll__buf *reply =
        strcmp(hs.dict_version, atoll__dict_version(n->dict)) == 0 ? &n->hs_cached : &n->hs_full;
    atoll__buf_append(&s->conn.out, atoll__buf_data(reply), reply->len);
    atoll__conn_mark_dirty(&s->conn);
    s->phase = ATOLL_SESSION_WAIT_ACK;
}

static void
on_ack(atoll__session *s)
{
    s->phase = ATOLL_SESSION_WORKING;
    atoll__metric_add(s->conn.ws ? ATOLL_CTR_SESSIONS_WS : ATOLL_CTR_SESSIONS_TCP, 1);
    if (cfg_of(s)->heartbeat_s > 0) {
        send_heartbeat(s);
        restart_heartbeat_deadline(s);
    }
    atoll__conn_established(&s->conn);
}

/* ---- data --------------------------------------------------------------------------------- */

/* Token bucket over every package (and WebSocket ping) a WORKING client sends. */
static bool
rate_ok(atoll__session *s)
{
    const atoll__config *cfg = cfg_of(s);
    if (cfg->rate_limit <= 0)
        return true;
    uint64_t now = atoll__conn_now(&s->conn);
    s->tokens += (double)(now - s->tokens_ms) * cfg->rate_limit / 1000.0;
    s->tokens_ms = now;
    if (s->tokens > cfg->rate_burst)
        s->tokens = cfg->rate_burst;
    if (s->tokens < 1.0)
        return false;
    s->tokens -= 1.0;
    return true;
}

/* Rate limit: true when the client may send one more package (or WebSocket ping);
 * false after kicking it ("rate limit"). */
static bool
session_allow(atoll__session *s)
{
    if (rate_ok(s))
        return true;
    ATOLL_LOG_CLIENT(ATOLL_LOG_INFO, "msg=\"rate limit, closing connection\" session=%llx",
                     (unsigned long long)s->id.v);
    /* Nothing more is read from it. The kick itself goes through this worker's local
     * queue, behind the messages of the session already queued there (its area's
     * requests when the area lives on this worker), so their answers go out first. */
    s->kicked = true;
    atoll__send(s->worker->node, s->worker->index, atoll__kick_new(s->id, "rate limit"));
    return false;
}

static void
on_data(atoll__session *s, const atoll__pkg *pkg)
{
    atoll__node *n = s->worker->node;
    atoll__msg m;
    int rc = atoll__msg_decode(pkg->body, pkg->len, &m);
    if (rc != ATOLL_OK) {
        session_fail(s, rc == ATOLL_EUTF8 ? "route is not UTF-8" : "malformed message", 0);
        return;
    }
    if (m.type != ATOLL_MSG_REQUEST && m.type != ATOLL_MSG_NOTIFY) {
        session_fail(s, "unexpected message type", 0);
        return;
    }
    s->worker->stats.messages++;

    char buf[ATOLL_ROUTE_MAX + 1];
    const char *route;
    uint16_t code;
    if (m.compressed) {
        /* Only the codes clients were offered: an internal route's code is as unknown
         * to a client as a code that names nothing. */
        route = n->cfg->dict && m.route_code <= atoll__dict_public(n->dict)
                    ? atoll__dict_route(n->dict, m.route_code)
                    : NULL;
        if (route == NULL) {
            ATOLL_LOG(ATOLL_LOG_DEBUG, "msg=\"unknown route code, dropped\" code=%u",
                      m.route_code);
            return;
        }
        code = m.route_code;
    } else {
        if (memchr(m.route, '\0', m.route_len) != NULL)
            return; /* a NUL inside a route can name nothing */
        memcpy(buf, m.route, m.route_len);
        buf[m.route_len] = '\0';
        route = buf;
        code = atoll__dict_code(n->dict, m.route, m.route_len);
    }
    atoll__handler_fn fn = n->routes[code].gate;
    if (fn == NULL) {
        /* Pomelo's rules for routes nobody serves. */
        const char *dot = strrchr(route, '.');
        if (dot == NULL) {
            ATOLL_LOG(ATOLL_LOG_DEBUG, "msg=\"route without a dot, dropped\" route=\"%s\"",
                      route);
            return;
        }
        if (strcmp(dot + 1, "constructor") == 0) {
            /* Pomelo kicks this as an attack on its JavaScript dispatch; do the same so
             * clients and monitoring see the same behaviour. */
            atoll__kick(s, "attack");
            return;
        }
    }

    atoll__req req = {
        .session = s,
        .worker = s->worker,
        .type = m.type,
        .id = m.id,
        .code = code,
        .route = route,
        .body = m.body,
        .body_len = m.body_len,
    };
    if (m.body_len == 0 || !atoll__json_valid(m.body, m.body_len, ATOLL_JSON_MAX_DEPTH)) {
        req.body = (const uint8_t *)"{}";
        req.body_len = 2;
    }
    if (fn == NULL) {
        atoll__metric_route("unknown", true); /* a client's route: not a label of its own */
        atoll__reply_error(&req, 500, "no handler for route");
        return;
    }
    fn(&req);
}

/* ---- what the net layer calls --------------------------------------------------------------- */

static void
ops_opened(atoll__conn *c)
{
    atoll__session *s = session_of(c);
    atoll__worker *w = c->net->data;
    s->worker = w;
    atoll__metric_add(ATOLL_CTR_CONNS_ACCEPTED, 1);
    s->id = slot_add(w, s);
    c->log_id = s->id.v;
    s->phase = ATOLL_SESSION_INITED;
    s->tokens = w->node->cfg->rate_burst;
    s->tokens_ms = c->accepted_ms;
}

static bool
ops_package(atoll__conn *c, const atoll__pkg *pkg)
{
    atoll__session *s = session_of(c);
    if (pkg->type == ATOLL_PKG_KICK) {
        session_fail(s, "unexpected package type", 0);
        return false;
    }
    switch (s->phase) {
    case ATOLL_SESSION_INITED:
        if (pkg->type == ATOLL_PKG_HANDSHAKE)
            on_handshake(s, pkg);
        break;
    case ATOLL_SESSION_WAIT_ACK:
        if (pkg->type == ATOLL_PKG_HANDSHAKE_ACK)
            on_ack(s);
        break;
    case ATOLL_SESSION_WORKING:
        if (s->kicked || !session_allow(s))
            return false;
        if (pkg->type == ATOLL_PKG_HEARTBEAT) {
            if (cfg_of(s)->heartbeat_s > 0) {
                send_heartbeat(s);
                restart_heartbeat_deadline(s);
            }
        } else if (pkg->type == ATOLL_PKG_DATA) {
            on_data(s, pkg);
        }
        break;
    }
    return c->state != ATOLL_CONN_CLOSING;
}

static void
ops_bad_input(atoll__conn *c, const char *reason, int ws_code)
{
    session_fail(session_of(c), reason, ws_code);
}

static bool
ops_ping(atoll__conn *c)
{
    atoll__session *s = session_of(c);
    return s->phase != ATOLL_SESSION_WORKING || (!s->kicked && session_allow(s));
}

static void
ops_expired(atoll__conn *c)
{
    atoll__conn_close(c, "heartbeat timeout", ATOLL_WS_CLOSE_GOING_AWAY);
}

static void
ops_closed(atoll__conn *c)
{
    atoll__session *s = session_of(c);
    atoll__node *n = s->worker->node;
    atoll__metric_add(ATOLL_CTR_CONNS_CLOSED, 1);
    if (s->phase == ATOLL_SESSION_WORKING) /* phases only go forward: it was counted open */
        atoll__metric_add(s->conn.ws ? ATOLL_CTR_SESSIONS_WS_CLOSED : ATOLL_CTR_SESSIONS_TCP_CLOSED,
                          1);
    if (n->hooks.closed != NULL)
        n->hooks.closed(s);
    atoll__mail_free_list(atoll__mail_list_take(&s->waiting));
    atoll__mail_free_list(atoll__mail_list_take(&s->inflight));
    s->ninflight = 0;
    s->nwaiting = 0;
    atoll__uid_release(s);
    slot_remove(s->worker, s);
}

const atoll__conn_ops atoll__session_ops = {
    .conn_size = sizeof(atoll__session),
    .opened = ops_opened,
    .package = ops_package,
    .bad_input = ops_bad_input,
    .ping = ops_ping,
    .expired = ops_expired,
    .closed = ops_closed,
};

/* ---- answers ---------------------------------------------------------------------------------- */

void
atoll__reply(atoll__req *req, const char *body, size_t len)
{
    atoll__session *s = req->session;
    if (req->type != ATOLL_MSG_REQUEST || !atoll__session_live(s))
        return;
    if (body == NULL || len == 0) {
        body = "{}";
        len = 2;
    }
    body = atoll__response_fit(req->id, body, &len);
    size_t size = atoll__msg_size(ATOLL_MSG_RESPONSE, req->id, 0, 0, len);
    if (!atoll__conn_out_room(&s->conn, ATOLL_PKG_HEADER_LEN + size))
        return;
    atoll__msg_put_response(&s->conn.out, req->id, body, len);
    atoll__conn_mark_dirty(&s->conn);
}

void
atoll__reply_error(atoll__req *req, int code, const char *msg)
{
    atoll__buf b = ATOLL__BUF_INIT;
    atoll__json_put_error(&b, code, msg);
    atoll__reply(req, (const char *)atoll__buf_data(&b), b.len);
    atoll__buf_fini(&b);
}

void
atoll__reply_refuse(atoll__req *req, int code, const char *msg)
{
    atoll__reply_error(req, code, msg);
    atoll__session *s = req->session;
    s->no_resume = true;
    atoll__conn_close(&s->conn, msg, ATOLL_WS_CLOSE_NORMAL);
}

/* ---- mail for sessions ------------------------------------------------------------------------ */

static void
on_kick_mail(atoll__worker *w, atoll__mail *m)
{
    atoll__session *s = atoll__session_find(w, m->session);
    if (s != NULL)
        atoll__kick(s, m->reason);
    atoll__mail_free(m);
}

static void
on_broadcast_mail(atoll__worker *w, atoll__mail *m)
{
    for (atoll__conn *c = w->net.all, *next; c != NULL; c = next) {
        next = c->all_next; /* out_room may close c (a slow reader) */
        atoll__session *s = session_of(c);
        if (atoll__session_live(s))
            atoll__conn_write(c, m->shared->data, m->shared->len);
    }
    atoll__mail_free(m);
}

static void
on_out_mail(atoll__worker *w, atoll__mail *m)
{
    /* Records {session id u64, length u32, bytes}, little-endian (atoll__sess_out_new,
     * atoll__send_out). They may come from another node: every length is checked. */
    atoll__wire_reader r = {m->data, m->len, false};
    atoll_session_id s;
    uint32_t len;
    const uint8_t *p;
    while (r.left > 0 && atoll__wire_get_u64(&r, &s.v) && atoll__wire_get_u32(&r, &len) &&
           atoll__wire_get_bytes(&r, len, &p))
        atoll__session_deliver(w, s, p, len);
    if (r.bad)
        ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"malformed SESS_OUT records, rest dropped\"");
    atoll__mail_free(m);
}

static void
on_push_mail(atoll__worker *w, atoll__mail *m)
{
    for (size_t i = 0; i < m->nsessions; i++)
        atoll__session_deliver(w, m->sessions[i], m->shared->data, m->shared->len);
    atoll__mail_free(m);
}

void
atoll__session_start(atoll__node *n)
{
    atoll__mail_register(ATOLL_MAIL_KICK, on_kick_mail, NULL);
    atoll__mail_register(ATOLL_MAIL_BROADCAST, on_broadcast_mail, NULL);
    atoll__mail_register(ATOLL_MAIL_SESS_OUT, on_out_mail, NULL);
    atoll__mail_register(ATOLL_MAIL_SESS_PUSH, on_push_mail, NULL);
    atoll__uids_register();
    n->routes[atoll__dict_code(n->dict, "gate.entry", 10)].gate = atoll__gate_entry;
}
