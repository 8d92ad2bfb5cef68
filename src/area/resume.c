/* resume.c -- coming back after a dropped connection: resume tokens, a player waiting
 * for its client (disconnected), and gate.resume.
 *
 * A session that closes without being kicked (the network dropped, the client closed,
 * a heartbeat deadline passed) does not take its player out of the area at once: the
 * LEAVE it sends says "may resume", and the area parks the player: on_disconnect runs,
 * pushes to it are dropped, and a timer of session.resume_ms starts. When the timer
 * ends first, the player leaves as it would have (on_leave, ATOLL_LEAVE_DISCONNECT).
 *
 * The gate.entry answer carries a resume token: "1", the player's nonce (16 random
 * bytes) and a MAC of nonce and uid (HMAC-SHA256 with a key the node draws at start,
 * cut to 16 bytes), both in hex, then the uid. The MAC lets the gate refuse a forged
 * token without asking anyone; the nonce, kept by the player, makes a token single-use:
 * every entry and every resume draws a new one, so an old token no longer matches.
 *
 * gate.resume {"token"} on a new connection: the gate opens the token, asks the
 * directory which area the uid is in, and sends AREA_RESUME there. The area checks the
 * nonce, gives the player the new session (a parked player's timer stops; a player
 * whose old connection is still open, half-dead, simply changes session), draws a new
 * nonce, runs on_resume and answers through SESS_ROUTE with the new token; the gate
 * then binds the uid to the new session (which kicks the old one, if any) without
 * entering anything. A token that is forged, used, or names a player that is gone gets
 * {"code":401} and the connection is closed.
 */
#include "area.h"
#include "../value/value.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>

/* How often the gate asks where the player is before it gives up: the player may be
 * moving between areas while the resume looks for it. */
#define RESUME_FIND_TRIES 3

void
atoll__resume_key_new(uint8_t key[ATOLL__RESUME_KEY])
{
    if (RAND_bytes(key, ATOLL__RESUME_KEY) != 1) {
        /* The kernel's generator failing is not something to play on. */
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"cannot draw random bytes for resume tokens\"");
        abort();
    }
}

void
atoll__resume_key_derive(uint8_t key[ATOLL__RESUME_KEY], const uint8_t *secret, size_t len)
{
    static const char label[] = "atoll resume tokens v1";
    unsigned int out = 0;
    uint8_t mac[EVP_MAX_MD_SIZE];
    HMAC(EVP_sha256(), secret, (int)len, (const uint8_t *)label, sizeof label - 1, mac, &out);
    memcpy(key, mac, ATOLL__RESUME_KEY);
    OPENSSL_cleanse(mac, sizeof mac);
}

void
atoll__resume_rotate(atoll_player *p)
{
    if (RAND_bytes(p->resume_nonce, ATOLL__RESUME_NONCE) != 1) {
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"cannot draw random bytes for resume tokens\"");
        abort();
    }
}

bool
atoll__resume_on(const atoll__node *n)
{
    return n->cfg->resume_ms > 0;
}

void
atoll__resume_put_token(atoll__buf *json, const atoll__node *n, const atoll_player *p)
{
    char tok[ATOLL__RESUME_TOKEN_MAX + 1];
    size_t len = atoll__resume_token(atoll__area_node_of(n)->resume_key, p->uid, p->resume_nonce,
                                     tok);
    atoll__buf_append(json, ",\"resume\":", 10);
    atoll__json_put_string(json, tok, len);
}

/* ---- the player waiting for its client --------------------------------------------------- */

/* The window ended (or a disconnected player was kicked): the player leaves. */
static void
on_window_end(atoll_area *a, int status, void *udata)
{
    if (status != ATOLL_OK)
        return; /* the area is going away: its players leave with it */
    atoll_player *p = udata;
    p->resume_timer = 0;
    ATOLL_LOG(ATOLL_LOG_DEBUG, "msg=\"resume window ended, player leaves\" uid=\"%s\" area=\"%s\"",
              p->uid, a->id);
    p->leaving = true;
    atoll__hook_leave(a, p, ATOLL_LEAVE_DISCONNECT);
    atoll__player_detach(a, p);
    atoll__player_unbind(a->worker, p);
    atoll__player_gone(a->worker, p);
}

void
atoll__resume_park(atoll__worker *w, atoll_area *a, atoll_player *p)
{
    p->disconnected = true;
    atoll__kept_drop_session(a, p->session); /* answers could reach nobody */
    if (a->type->on_disconnect != NULL) {
        atoll__fx_begin(w);
        atoll__running run;
        atoll__game_begin(&run, a, "on_disconnect", NULL, p->uid);
        a->type->on_disconnect(a, p);
        atoll__game_end(&run, a);
        atoll__fx_end(w, true);
    }
    if (p->disconnected && atoll__docs_wanted(w, p)) /* a login elsewhere waits for it */
        p->resume_timer = atoll_timer_once(a, 0, on_window_end, p);
    else if (p->disconnected) /* on_disconnect may have kicked it */
        p->resume_timer = atoll_timer_once(a, w->node->cfg->resume_ms, on_window_end, p);
}

void
atoll__resume_adopt(atoll_area *a, atoll_player *p, uint64_t due_ms)
{
    atoll__timer_info ti = {.id = ++a->worker->areas->next_timer_id, .due_ms = due_ms,
                            .fn = on_window_end, .udata = p};
    atoll__timer_adopt(a, &ti);
    p->resume_timer = ti.id;
}

bool
atoll__resume_is_window(const atoll_area *a, uint64_t id)
{
    for (const atoll_player *p = a->first; p != NULL; p = p->next)
        if (p->resume_timer == id)
            return true;
    return false;
}

void
atoll__resume_end_now(atoll_area *a, atoll_player *p)
{
    if (p->resume_timer != 0)
        atoll_timer_cancel(a, p->resume_timer);
    /* Through a timer, not here: game code may be walking the area's players. */
    p->resume_timer = atoll_timer_once(a, 0, on_window_end, p);
}

void
atoll__resume_forget(atoll_area *a, atoll_player *p)
{
    if (p->resume_timer != 0 && a != NULL)
        atoll_timer_cancel(a, p->resume_timer);
    p->resume_timer = 0;
}

/* Gives p the session of m (AREA_ENTER or AREA_RESUME) and runs on_resume when it was
 * waiting for its client. */
void
atoll__resume_take_session(atoll__worker *w, atoll_area *a, atoll_player *p, atoll__mail *m)
{
    if (atoll__map_get(&a->by_session, p->session.v) == p)
        atoll__map_del(&a->by_session, p->session.v);
    p->session = m->session;
    p->session_worker = atoll__session_worker(m->session);
    atoll__map_put(&a->by_session, p->session.v, p);
    if (p->unfenced && p->resolving == NULL) {
        /* Moved in while the old connection went: its fence will never name the new
         * session, and what it held was that connection's. */
        p->unfenced = false;
        for (atoll__mail *hm = atoll__mail_list_take(&p->held), *next; hm; hm = next) {
            next = hm->next;
            atoll__mail_free(hm);
        }
    }
    atoll__resume_rotate(p);
    if (p->disconnected) {
        atoll__resume_forget(a, p);
        p->disconnected = false;
        if (a->type->on_resume != NULL) {
            atoll__fx_begin(w);
            atoll__running run;
            atoll__game_begin(&run, a, "on_resume", NULL, p->uid);
            a->type->on_resume(a, p);
            atoll__game_end(&run, a);
            atoll__fx_end(w, true);
        }
    }
}

/* ---- AREA_RESUME, on the area's worker ------------------------------------------------------ */

/* Answers the gate: status 0 with the player's route and a reply; ATOLL__RESUME_AGAIN
 * with the nonce back, for the gate to look for the player once more; or 401. */
static void
resume_answer(atoll__worker *w, const atoll__mail *m, atoll_area *a, atoll_player *p, int status,
              const char *why)
{
    atoll__buf j = ATOLL__BUF_INIT, pkg = ATOLL__BUF_INIT;
    if (status == 0) {
        static const char head[] = "{\"code\":200,\"uid\":";
        atoll__buf_append(&j, head, sizeof head - 1);
        atoll__json_put_string(&j, p->uid, strlen(p->uid));
        atoll__buf_append(&j, ",\"area\":", 8);
        atoll__json_put_string(&j, a->id, strlen(a->id));
        atoll__resume_put_token(&j, w->node, p);
        atoll__buf_push(&j, '}');
    } else {
        atoll__json_put_error(&j, 401, why);
    }
    if (status == ATOLL__RESUME_AGAIN)
        atoll__buf_append(&pkg, m->data, m->len);
    else if (m->reply)
        atoll__put_response(&pkg, m->request_id, atoll__buf_data(&j), j.len);
    atoll__mail *r = atoll__mail_new(ATOLL_MAIL_SESS_ROUTE, pkg.len);
    r->session = m->session;
    r->status = status;
    r->request_id = m->request_id;
    r->reply = m->reply;
    r->epoch = (uint64_t)m->status; /* the gate's tries so far */
    r->uid = atoll__strndup(m->uid, strlen(m->uid));
    r->call_id = ATOLL__ROUTE_RESUME;
    if (status == 0) {
        r->area = a->num;
        r->at = atoll__addr_make(w->node->id, w->index);
        r->type_index = a->type_index;
        snprintf(r->from, sizeof r->from, "%s", a->id);
    }
    if (pkg.len)
        memcpy(r->data, atoll__buf_data(&pkg), pkg.len);
    atoll__send_to(w->node, atoll__session_addr(m->session), r);
    atoll__buf_fini(&j);
    atoll__buf_fini(&pkg);
}

void
atoll__resume_mail(atoll__worker *w, atoll_area *a, atoll__mail *m)
{
    atoll_player *p = a ? atoll_area_player(a, m->uid) : NULL;
    if (p == NULL || p->leaving) {
        /* Not here (moving, or gone): the gate asks the directory again, or gives up. */
        resume_answer(w, m, NULL, NULL, ATOLL__RESUME_AGAIN, "nothing to resume");
    } else if (m->len != ATOLL__RESUME_NONCE ||
               CRYPTO_memcmp(p->resume_nonce, m->data, ATOLL__RESUME_NONCE) != 0) {
        ATOLL_LOG(ATOLL_LOG_INFO, "msg=\"resume refused: token used already or replaced\" "
                  "uid=\"%s\" area=\"%s\"", p->uid, a->id);
        resume_answer(w, m, NULL, NULL, 401, "resume token used already or replaced");
    } else {
        atoll__area_begin(a);
        atoll__resume_take_session(w, a, p, m);
        resume_answer(w, m, a, p, 0, NULL);
        atoll__area_end(a);
    }
    atoll__mail_free(m);
}

/* ---- gate.resume, on the session's worker ---------------------------------------------------- */

/* A resume between gate.resume and the area's answer. */
typedef struct pending {
    atoll_session_id session;
    uint32_t request_id;
    bool reply;
    int tries;
    uint8_t nonce[ATOLL__RESUME_NONCE];
    char uid[ATOLL_UID_MAX + 1];
} pending;

static void
refuse(atoll__session *s, uint32_t request_id, bool reply, const char *why)
{
    atoll__req req = atoll__entry_req(s, request_id, reply);
    req.route = "gate.resume";
    atoll__reply_refuse(&req, 401, why);
}

static void find_player(atoll__worker *w, pending *pr);

static void
resume_send(atoll__worker *w, pending *pr, const atoll__dir_entry *e)
{
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_AREA_RESUME, ATOLL__RESUME_NONCE);
    m->session = pr->session;
    m->request_id = pr->request_id;
    m->reply = pr->reply;
    m->uid = atoll__strndup(pr->uid, strlen(pr->uid));
    m->status = pr->tries;
    memcpy(m->data, pr->nonce, ATOLL__RESUME_NONCE);
    m->area = e->num;
    atoll__send_to(w->node, e->owner, m);
    atoll__free(pr);
}

/* The session still waits for this resume (it may have closed meanwhile). */
static atoll__session *
waiting_session(atoll__worker *w, const pending *pr)
{
    atoll__session *s = atoll__session_find(w, pr->session);
    return s != NULL && atoll__session_live(s) ? s : NULL;
}

static void
on_area_known(atoll__worker *w, int status, const atoll__dir_entry *e, const char *id,
              atoll__mail *m, uint64_t arg)
{
    (void)id;
    (void)m;
    pending *pr = (pending *)(uintptr_t)arg;
    atoll__session *s = waiting_session(w, pr);
    if (s == NULL) {
        atoll__free(pr);
    } else if (status != ATOLL_OK) {
        find_player(w, pr); /* the area went while we looked: where is the player now? */
    } else {
        resume_send(w, pr, e);
    }
}

void
atoll__resume_found(atoll__worker *w, atoll__mail *m)
{
    pending *pr = atoll__map_del(&w->areas->resumes, m->call_id);
    atoll__session *s = pr ? waiting_session(w, pr) : NULL;
    if (pr != NULL && s == NULL) {
        atoll__free(pr);
    } else if (pr != NULL && m->status != ATOLL_OK) {
        s->entering = false;
        refuse(s, pr->request_id, pr->reply, "nothing to resume (the window has ended)");
        atoll__free(pr);
    } else if (pr != NULL) {
        const atoll__dir_entry *e = atoll__where_cached(w, m->from);
        if (e != NULL)
            resume_send(w, pr, e);
        else
            atoll__where_lookup(w, m->from, on_area_known, NULL, (uint64_t)(uintptr_t)pr);
    }
    atoll__mail_free(m);
}

static void
find_player(atoll__worker *w, pending *pr)
{
    atoll__session *s = waiting_session(w, pr);
    if (s == NULL) {
        atoll__free(pr);
        return;
    }
    if (pr->tries++ >= RESUME_FIND_TRIES) {
        s->entering = false;
        refuse(s, pr->request_id, pr->reply, "nothing to resume");
        atoll__free(pr);
        return;
    }
    uint64_t cookie = (++w->areas->next_resume << 3) | ATOLL__DIR_COOKIE_FIND;
    atoll__map_put(&w->areas->resumes, cookie, pr);
    atoll__dir *d = atoll__dir_of_worker(w);
    d->ops->find_player(d, pr->uid, atoll__addr_make(w->node->id, w->index), cookie);
}

void
atoll__gate_resume(atoll__req *req)
{
    atoll__session *s = req->session;
    atoll__worker *w = s->worker;
    bool reply = req->type == ATOLL_MSG_REQUEST;
    if (!atoll__resume_on(w->node)) {
        atoll__reply_error(req, 500, "resume is off on this node (session.resume_ms=0)");
        return;
    }
    if (s->uid != NULL || s->binding || s->entering || s->area != 0 || s->guest) {
        atoll__reply_error(req, 500, "gate.resume must be a new connection's first message");
        return;
    }
    json_error_t err;
    json_t *root = json_loadb((const char *)req->body, req->body_len, 0, &err);
    const json_t *t = json_is_object(root) ? json_object_get(root, "token") : NULL;
    pending *pr = atoll__calloc(1, sizeof *pr);
    int rc = json_is_string(t)
                 ? atoll__resume_token_open(atoll__area_node_of(w->node)->resume_key,
                                            json_string_value(t), json_string_length(t),
                                            pr->uid, pr->nonce)
                 : ATOLL_EPROTO;
    json_decref(root);
    if (rc != ATOLL_OK) {
        ATOLL_LOG_CLIENT(ATOLL_LOG_INFO, "msg=\"resume refused: bad token\" session=%llx",
                         (unsigned long long)s->id.v);
        atoll__free(pr);
        atoll__reply_refuse(req, 401, "bad resume token");
        return;
    }
    pr->session = s->id;
    pr->request_id = req->id;
    pr->reply = reply;
    s->entering = true; /* what the client sends next waits for its area */
    find_player(w, pr);
}

/* SESS_ROUTE answering a resume, on the session's worker: true when it was one (and m
 * is taken). */
bool
atoll__resume_route(atoll__worker *w, atoll__session *s, atoll__mail *m)
{
    if (m->call_id != ATOLL__ROUTE_RESUME)
        return false;
    if (s == NULL || !atoll__session_live(s)) {
        if (m->status == 0) {
            /* Resumed after the new connection went too: it never got the new token,
             * so nobody can come back; the player leaves. */
            atoll__mail *l = atoll__mail_new(ATOLL_MAIL_AREA_LEAVE, 0);
            l->area = m->area;
            l->session = m->session;
            atoll__send_to(w->node, m->at, l);
        }
        atoll__mail_free(m);
        return true;
    }
    if (m->status == ATOLL__RESUME_AGAIN && m->len == ATOLL__RESUME_NONCE) {
        pending *pr = atoll__calloc(1, sizeof *pr);
        pr->session = s->id;
        pr->request_id = m->request_id;
        pr->reply = m->reply;
        pr->tries = (int)m->epoch;
        memcpy(pr->nonce, m->data, ATOLL__RESUME_NONCE);
        snprintf(pr->uid, sizeof pr->uid, "%s", m->uid);
        atoll__mail_free(m);
        find_player(w, pr);
        return true;
    }
    if (m->status != 0) {
        s->entering = false;
        if (m->len > 0)
            atoll__session_deliver(w, s->id, m->data, m->len);
        s->no_resume = true;
        atoll__conn_close(&s->conn, "resume refused", ATOLL_WS_CLOSE_NORMAL);
        atoll__mail_free(m);
        return true;
    }
    /* The uid is bound to this session as a login binds it (the old session, if the
     * server still holds it, is kicked), without entering anything. */
    s->binding = true;
    atoll__mail *b = atoll__mail_new(ATOLL_MAIL_BIND, 0);
    b->session = s->id;
    b->status = ATOLL__BIND_ONLY;
    b->uid = m->uid;
    m->uid = NULL;
    atoll__worker_post(atoll__uid_owner(w->node, b->uid), b);
    return false; /* the route itself is taken as any entry's */
}
