/* session.c -- the Pomelo per-connection state machine and message dispatch.
 *
 * States and what each accepts (Pomelo's rules, protocol-pomelo.md 3.1):
 *   INITED    HANDSHAKE -> answer, WAIT_ACK (or {"code":500} and close); the rest ignored
 *   WAIT_ACK  HANDSHAKE_ACK -> WORKING, one HEARTBEAT sent, heartbeat deadline started
 *   WORKING   HEARTBEAT (answered at once, deadline restarted), DATA (dispatched)
 * A KICK package from a client is a type the server has no handler for: close.
 *
 * DATA: rate limit (token bucket), decode, resolve the route (a compressed code not in
 * the dictionary, or a route without a dot, is dropped silently as Pomelo does), check
 * the body (not JSON: handled as {}), then the handler. Requests to unknown routes get
 * {"code":500,...}; notifies never get a response.
 *
 * gate.entry {"uid":...} binds the session to a user id through the uid's owner worker
 * (node.h): a second session with the same uid kicks the first. For a game of areas the
 * game's entry hook then names the player's area; the area's worker answers the
 * gate.entry and sends the route (SESS_ROUTE), which the session caches. Requests for
 * "<areaType>.<handler>" go to that area as AREA_REQ mail; replies and pushes come back
 * as SESS_OUT / SESS_PUSH mail (area/area.h has the whole flow, moves included).
 */
#include "../area/area.h"

#include <jansson.h>
#include <stdio.h>

#define UID_MAX 128

static void
send_heartbeat(atoll__conn *c)
{
    atoll__pkg_put(&c->out, ATOLL_PKG_HEARTBEAT, NULL, 0);
    atoll__conn_mark_dirty(c);
}

static void
restart_heartbeat_deadline(atoll__conn *c)
{
    const atoll__config *cfg = c->worker->node->cfg;
    if (cfg->heartbeat_s <= 0)
        return;
    int t = cfg->heartbeat_timeout_s > 0 ? cfg->heartbeat_timeout_s : 2 * cfg->heartbeat_s;
    c->hb_deadline_ms = uv_now(&c->worker->loop) + (uint64_t)t * 1000;
}

void
atoll__session_fail(atoll__conn *c, const char *reason, int ws_code)
{
    c->worker->stats.protocol_errors++;
    ATOLL_LOG_CLIENT(ATOLL_LOG_INFO, "msg=\"bad input, closing connection\" session=%llx reason=\"%s\"",
              (unsigned long long)c->id.v, reason);
    if (c->state == ATOLL_CONN_WORKING)
        atoll__kick_put(&c->out, reason);
    atoll__conn_close(c, reason, ws_code ? ws_code : ATOLL_WS_CLOSE_PROTOCOL);
}

void
atoll__kick(atoll__conn *c, const char *reason)
{
    if (c->state == ATOLL_CONN_CLOSING)
        return;
    if (c->state == ATOLL_CONN_WORKING)
        atoll__kick_put(&c->out, reason);
    atoll__conn_close(c, reason, ATOLL_WS_CLOSE_NORMAL);
}

/* ---- handshake ------------------------------------------------------------------------ */

static void
on_handshake(atoll__conn *c, const atoll__pkg *pkg)
{
    atoll__node *n = c->worker->node;
    atoll__handshake hs;
    int rc = atoll__handshake_parse(pkg->body, pkg->len, &hs);
    if (rc != ATOLL_OK) {
        ATOLL_LOG_CLIENT(ATOLL_LOG_INFO, "msg=\"bad handshake\" session=%llx error=%s",
                  (unsigned long long)c->id.v, atoll_err_name(rc));
        c->worker->stats.protocol_errors++;
        atoll__handshake_error(&c->out, 500);
        atoll__conn_close(c, "bad handshake", ATOLL_WS_CLOSE_NORMAL);
        return;
    }
    if (n->cfg->min_client_version[0] != '\0' &&
        (hs.version[0] == '\0' || atoll__version_cmp(hs.version, n->cfg->min_client_version) < 0)) {
        /* Pomelo's checkClient answer: the client is too old to be served. */
        ATOLL_LOG_CLIENT(ATOLL_LOG_INFO, "msg=\"client version too old\" session=%llx version=\"%s\"",
                  (unsigned long long)c->id.v, hs.version);
        atoll__handshake_error(&c->out, 501);
        atoll__conn_close(c, "client version too old", ATOLL_WS_CLOSE_NORMAL);
        return;
    }
    const atoll__buf *reply =
        strcmp(hs.dict_version, atoll__dict_version(n->dict)) == 0 ? &n->hs_cached : &n->hs_full;
    atoll__buf_append(&c->out, atoll__buf_data(reply), reply->len);
    atoll__conn_mark_dirty(c);
    c->state = ATOLL_CONN_WAIT_ACK;
}

static void
on_ack(atoll__conn *c)
{
    c->state = ATOLL_CONN_WORKING;
    if (c->worker->node->cfg->heartbeat_s > 0) {
        send_heartbeat(c);
        restart_heartbeat_deadline(c);
    }
    atoll__conn_rearm(c);
}

/* ---- data ------------------------------------------------------------------------------ */

/* Token bucket over every package (and WebSocket ping) a WORKING client sends. */
static bool
rate_ok(atoll__conn *c)
{
    const atoll__config *cfg = c->worker->node->cfg;
    if (cfg->rate_limit <= 0)
        return true;
    uint64_t now = uv_now(&c->worker->loop);
    c->tokens += (double)(now - c->tokens_ms) * cfg->rate_limit / 1000.0;
    c->tokens_ms = now;
    if (c->tokens > cfg->rate_burst)
        c->tokens = cfg->rate_burst;
    if (c->tokens < 1.0)
        return false;
    c->tokens -= 1.0;
    return true;
}

static void entry_handler(atoll__req *req);

bool
atoll__session_allow(atoll__conn *c)
{
    if (rate_ok(c))
        return true;
    ATOLL_LOG_CLIENT(ATOLL_LOG_INFO, "msg=\"rate limit, closing connection\" session=%llx",
                     (unsigned long long)c->id.v);
    atoll__kick(c, "rate limit");
    return false;
}

void
atoll__dispatch_build(atoll__node *n)
{
    /* Everything a route code can lead to, by code: one array index per request. */
    n->routes = atoll__calloc(atoll__dict_count(n->dict) + 1, sizeof *n->routes);
    n->routes[atoll__dict_code(n->dict, "gate.entry", 10)].gate = entry_handler;
    for (size_t i = 0; i < n->game->nroutes; i++) {
        const char *r = n->game->routes[i].route;
        n->routes[atoll__dict_code(n->dict, r, strlen(r))].gate = n->game->routes[i].fn;
    }
    for (int t = 0; t < n->ntypes; t++) {
        const atoll_area_type *type = n->game->api->area_types[t];
        for (const atoll_handler *h = type->handlers; h && h->name; h++) {
            char r[ATOLL_ROUTE_MAX + 1];
            snprintf(r, sizeof r, "%s.%s", type->name, h->name);
            atoll__route_entry *e = &n->routes[atoll__dict_code(n->dict, r, strlen(r))];
            e->handler = h;
            e->type_index = t;
        }
    }
}

/* A client's message for an area route: to the player's area, through the cache. */
static void
area_request(atoll__conn *c, const atoll__msg *m, uint16_t code, const char *route,
             const uint8_t *body, size_t body_len, atoll__req *req)
{
    atoll__node *n = c->worker->node;
    const atoll__route_entry *e = &n->routes[code];
    if (e->handler->flags & ATOLL_INTERNAL) {
        atoll__reply_error(req, 500, "no handler for route");
        return;
    }
    if (c->area == 0) {
        atoll__reply_error(req, 500, c->entering ? "entry in progress"
                                                 : "not in an area: send gate.entry first");
        return;
    }
    if (c->area_type != e->type_index) {
        char msg[160];
        snprintf(msg, sizeof msg, "route %.64s is for areas of type %s, this player is in a %s",
                 route, n->game->api->area_types[e->type_index]->name,
                 n->game->api->area_types[c->area_type]->name);
        atoll__reply_error(req, 500, msg);
        return;
    }
    atoll__mail *am = atoll__mail_new(ATOLL_MAIL_AREA_REQ, body_len);
    am->area = c->area;
    am->session = c->id;
    am->request_id = m->id;
    am->msg_type = (uint8_t)m->type;
    am->route = code;
    memcpy(am->data, body, body_len);
    atoll__send(n, c->area_worker, am);
}

static void
on_data(atoll__conn *c, const atoll__pkg *pkg)
{
    atoll__node *n = c->worker->node;
    atoll__msg m;
    int rc = atoll__msg_decode(pkg->body, pkg->len, &m);
    if (rc != ATOLL_OK) {
        atoll__session_fail(c, rc == ATOLL_EUTF8 ? "route is not UTF-8" : "malformed message", 0);
        return;
    }
    if (m.type != ATOLL_MSG_REQUEST && m.type != ATOLL_MSG_NOTIFY) {
        atoll__session_fail(c, "unexpected message type", 0);
        return;
    }
    c->worker->stats.messages++;

    char buf[ATOLL_ROUTE_MAX + 1];
    const char *route;
    uint16_t code;
    if (m.compressed) {
        route = n->cfg->dict ? atoll__dict_route(n->dict, m.route_code) : NULL;
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
    bool area_route = n->routes[code].handler != NULL;
    if (fn == NULL && !area_route) {
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
            atoll__kick(c, "attack");
            return;
        }
    }

    atoll__req req = {
        .conn = c,
        .worker = c->worker,
        .type = m.type,
        .id = m.id,
        .route = route,
        .body = m.body,
        .body_len = m.body_len,
    };
    if (m.body_len == 0 || !atoll__json_valid(m.body, m.body_len, ATOLL_JSON_MAX_DEPTH)) {
        req.body = (const uint8_t *)"{}";
        req.body_len = 2;
    }
    if (area_route) {
        area_request(c, &m, code, route, req.body, req.body_len, &req);
        return;
    }
    if (fn == NULL) {
        atoll__reply_error(&req, 500, "no handler for route");
        return;
    }
    fn(&req);
}

bool
atoll__session_package(atoll__conn *c, const atoll__pkg *pkg)
{
    if (pkg->type == ATOLL_PKG_KICK) {
        atoll__session_fail(c, "unexpected package type", 0);
        return false;
    }
    switch (c->state) {
    case ATOLL_CONN_INITED:
        if (pkg->type == ATOLL_PKG_HANDSHAKE)
            on_handshake(c, pkg);
        break;
    case ATOLL_CONN_WAIT_ACK:
        if (pkg->type == ATOLL_PKG_HANDSHAKE_ACK)
            on_ack(c);
        break;
    case ATOLL_CONN_WORKING:
        if (!atoll__session_allow(c))
            break;
        if (pkg->type == ATOLL_PKG_HEARTBEAT) {
            if (c->worker->node->cfg->heartbeat_s > 0) {
                send_heartbeat(c);
                restart_heartbeat_deadline(c);
            }
        } else if (pkg->type == ATOLL_PKG_DATA) {
            on_data(c, pkg);
        }
        break;
    default:
        break;
    }
    return c->state != ATOLL_CONN_CLOSING;
}

/* ---- handler effects ------------------------------------------------------------------ */

void
atoll__reply(atoll__req *req, const char *body, size_t len)
{
    if (req->type != ATOLL_MSG_REQUEST || req->conn->state != ATOLL_CONN_WORKING)
        return;
    if (body == NULL || len == 0) {
        body = "{}";
        len = 2;
    }
    body = atoll__response_fit(req->id, body, &len);
    size_t size = atoll__msg_size(ATOLL_MSG_RESPONSE, req->id, 0, 0, len);
    if (!atoll__conn_out_room(req->conn, ATOLL_PKG_HEADER_LEN + size))
        return;
    atoll__msg_put_response(&req->conn->out, req->id, body, len);
    atoll__conn_mark_dirty(req->conn);
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
atoll__push(atoll__conn *c, const char *route, const char *body, size_t len)
{
    if (c->state != ATOLL_CONN_WORKING)
        return;
    atoll__node *n = c->worker->node;
    size_t rlen = strlen(route);
    uint16_t code = n->cfg->dict ? atoll__dict_code(n->dict, route, rlen) : 0;
    if (len == 0) {
        body = "{}";
        len = 2;
    }
    size_t size = atoll__push_pkg_size(route, rlen, code, len);
    if (size == 0 || !atoll__conn_out_room(c, size))
        return;
    atoll__msg_put_push(&c->out, route, rlen, code, body, len);
    atoll__conn_mark_dirty(c);
}

void
atoll__broadcast(atoll__worker *w, const char *route, const char *body, size_t len)
{
    atoll__node *n = w->node;
    size_t rlen = strlen(route);
    uint16_t code = n->cfg->dict ? atoll__dict_code(n->dict, route, rlen) : 0;
    if (len == 0) {
        body = "{}";
        len = 2;
    }
    if (atoll__push_pkg_size(route, rlen, code, len) == 0)
        return;
    atoll__buf b = ATOLL__BUF_INIT;
    atoll__msg_put_push(&b, route, rlen, code, body, len);
    atoll__shared *sh = atoll__malloc(sizeof *sh + b.len);
    atomic_init(&sh->refs, n->nworkers);
    sh->len = b.len;
    memcpy(sh->data, atoll__buf_data(&b), b.len);
    atoll__buf_fini(&b);
    for (int i = 0; i < n->nworkers; i++) {
        atoll__mail *m = atoll__mail_new(ATOLL_MAIL_BROADCAST, 0);
        m->shared = sh;
        atoll__worker_post(n->workers[i], m);
    }
}

/* ---- sessions and user ids -------------------------------------------------------------- */

/* Enters the bound uid's player into the area the game chooses (areas games), or
 * answers at once (connection-level games). body is the gate.entry body (may be NULL).
 * request_id 0 with reply false: a notify, no answer. */
static void
enter_game(atoll__conn *c, uint32_t request_id, bool reply, const atoll_value *body)
{
    atoll__node *n = c->worker->node;
    atoll__req req = {.conn = c, .worker = c->worker, .id = request_id,
                      .type = reply ? ATOLL_MSG_REQUEST : ATOLL_MSG_NOTIFY, .route = "gate.entry"};
    if (n->game->api == NULL) {
        atoll__buf b = ATOLL__BUF_INIT;
        static const char head[] = "{\"code\":200,\"uid\":";
        atoll__buf_append(&b, head, sizeof head - 1);
        atoll__json_put_string(&b, c->uid, strlen(c->uid));
        atoll__buf_push(&b, '}');
        atoll__reply(&req, (const char *)atoll__buf_data(&b), b.len);
        atoll__buf_fini(&b);
        return;
    }
    const atoll_game *g = n->game->api;
    atoll_entry e = {.node = n, .uid = c->uid, .body = body};
    int rc = g->entry ? g->entry(&e) : ATOLL_ENOENT;
    atoll__dir_info info;
    if (rc == ATOLL_OK)
        rc = atoll__area_place(n, e.area_type, e.area_id, NULL, false, &info);
    if (rc != ATOLL_OK) {
        char msg[160];
        snprintf(msg, sizeof msg, "entry refused: %s", atoll_strerror(rc));
        atoll__reply_error(&req, 500, msg);
        return;
    }
    c->entering = true;
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_AREA_ENTER, 0);
    m->area = info.num;
    m->session = c->id;
    m->request_id = request_id;
    m->reply = reply;
    m->uid = atoll__strndup(c->uid, strlen(c->uid));
    /* Id and type travel along: should the area be destroyed (empty past its grace)
     * before this arrives, its worker creates it again rather than fail the entry. */
    memcpy(m->from, e.area_id, strlen(e.area_id) + 1);
    m->type_index = info.type_index;
    atoll__send(n, info.worker, m);
}

static void
entry_handler(atoll__req *req)
{
    atoll__conn *c = req->conn;
    json_error_t err;
    json_t *root = json_loadb((const char *)req->body, req->body_len, 0, &err);
    const json_t *v = json_is_object(root) ? json_object_get(root, "uid") : NULL;
    char uid[UID_MAX + 1];
    uid[0] = '\0';
    if (json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= UID_MAX &&
        memchr(json_string_value(v), '\0', json_string_length(v)) == NULL)
        snprintf(uid, sizeof uid, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(uid, sizeof uid, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    if (uid[0] == '\0') {
        json_decref(root);
        atoll__reply_error(req, 500, "gate.entry needs a uid (string of 1 to 128 bytes)");
        return;
    }
    if (c->uid != NULL) {
        if (strcmp(c->uid, uid) != 0)
            atoll__reply_error(req, 500, "session already bound to another uid");
        else if (c->entering)
            atoll__reply_error(req, 500, "entry already in progress");
        else if (c->area == 0 && c->worker->node->game->api != NULL)
            enter_game(c, req->id, req->type == ATOLL_MSG_REQUEST, (atoll_value *)root);
        else
            atoll__reply(req, "{\"code\":200}", 12);
        json_decref(root);
        return;
    }
    if (c->binding) {
        json_decref(root);
        atoll__reply_error(req, 500, "entry already in progress");
        return;
    }
    c->binding = true;
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_BIND, 0);
    m->session = c->id;
    m->request_id = req->id;
    m->reply = req->type == ATOLL_MSG_REQUEST;
    m->uid = atoll__strndup(uid, strlen(uid));
    /* The body travels with the binding: the game's entry hook reads it. */
    m->value = (atoll_value *)root;
    atoll__worker_post(atoll__uid_owner(c->worker->node, uid), m);
}

void
atoll__session_bound(atoll__conn *c, atoll__mail *m)
{
    c->binding = false;
    c->uid = m->uid;
    m->uid = NULL;
    enter_game(c, m->request_id, m->reply, m->value);
    atoll__mail_free(m);
}

void
atoll__session_closed(atoll__conn *c)
{
    atoll__node *n = c->worker->node;
    if (c->area != 0) {
        atoll__mail *l = atoll__mail_new(ATOLL_MAIL_AREA_LEAVE, 0);
        l->area = c->area;
        l->session = c->id;
        atoll__send(n, c->area_worker, l);
        c->area = 0;
    }
    if (c->uid == NULL)
        return;
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_UNBIND, 0);
    m->session = c->id;
    m->uid = c->uid;
    c->uid = NULL;
    atoll__worker_post(atoll__uid_owner(n, m->uid), m);
}

/* SESS_ROUTE: the player is in area m->area now (0: in none). After a move the old
 * area gets the FENCE that ends its forwarding (area/area.h). */
static void
on_route(atoll__worker *w, atoll__mail *m)
{
    atoll__node *n = w->node;
    atoll__conn *c = atoll__worker_find_conn(n, m->session);
    if (m->area_old != 0) {
        /* Sent after any LEAVE this worker sent to the old area (same queue), so the
         * old area forwards that LEAVE before it drops its forward. */
        atoll__mail *f = atoll__mail_new(ATOLL_MAIL_AREA_FENCE, 0);
        f->area = m->area_old;
        f->session = m->session;
        atoll__send(n, m->worker_old, f);
    } else if (c == NULL && m->area != 0) {
        /* Entered after the session closed: nobody will send the LEAVE but us. */
        atoll__mail *l = atoll__mail_new(ATOLL_MAIL_AREA_LEAVE, 0);
        l->area = m->area;
        l->session = m->session;
        atoll__send(n, m->worker, l);
    }
    if (c == NULL)
        return;
    /* Even a closing session takes the route: its LEAVE must reach the new area. */
    if (m->area_old == 0)
        c->entering = false;
    c->area = m->area;
    c->area_worker = m->worker;
    c->area_type = m->type_index;
    if (m->len > 0 && c->state == ATOLL_CONN_WORKING && atoll__conn_out_room(c, m->len)) {
        atoll__buf_append(&c->out, m->data, m->len);
        atoll__conn_mark_dirty(c);
    }
}

void
atoll__session_mail(atoll__worker *w, atoll__mail *m)
{
    switch (m->type) {
    case ATOLL_MAIL_SESS_OUT:
        /* Records {session id (8), length (4), bytes}, written by atoll__send_out. */
        for (size_t off = 0; off + 12 <= m->len;) {
            atoll_session_id s;
            uint32_t len;
            memcpy(&s.v, m->data + off, 8);
            memcpy(&len, m->data + off + 8, 4);
            const uint8_t *p = m->data + off + 12;
            off += 12 + (size_t)len;
            if (off > m->len)
                break; /* cannot happen: the same process wrote it */
            atoll__conn *c = atoll__worker_find_conn(w->node, s);
            if (c != NULL && c->state == ATOLL_CONN_WORKING && atoll__conn_out_room(c, len)) {
                atoll__buf_append(&c->out, p, len);
                atoll__conn_mark_dirty(c);
            }
        }
        break;
    case ATOLL_MAIL_SESS_PUSH:
        for (size_t i = 0; i < m->nsessions; i++) {
            atoll__conn *c = atoll__worker_find_conn(w->node, m->sessions[i]);
            if (c == NULL || c->state != ATOLL_CONN_WORKING ||
                !atoll__conn_out_room(c, m->shared->len))
                continue;
            atoll__buf_append(&c->out, m->shared->data, m->shared->len);
            atoll__conn_mark_dirty(c);
        }
        break;
    case ATOLL_MAIL_SESS_ROUTE:
        on_route(w, m);
        break;
    default:
        break;
    }
    atoll__mail_free(m);
}
