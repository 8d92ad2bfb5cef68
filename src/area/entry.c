/* entry.c -- the gate's side of areas: entering the game's area after gate.entry (or
 * as a guest, at a session's first message), the session's cached route to its
 * player's area (requests go there as AREA_REQ mail; those sent during the entry wait
 * for it), the route updates (SESS_ROUTE) that follow entries and moves, and the LEAVE
 * of a closing session. All of it runs on the session's worker; area.h has the flow.
 */
#include "area.h"
#include "../node/metrics.h"

#include <stdio.h>

/* Messages a session may send while its entry is in flight (a guest's first messages,
 * or what a client pipelines after gate.entry) wait for its area, up to this many and
 * this many bytes of bodies; past them a message is answered "entry in progress". An
 * entry takes well under a millisecond: only a client that pipelines thousands of
 * messages at once reaches them. */
#define ENTRY_WAITING_MAX 4096
#define ENTRY_WAITING_BYTES (1u << 20)

/* Sends a client's message (AREA_REQ mail) to the session's area, or fails it. */
static void
to_area(atoll__session *s, atoll__mail *am)
{
    atoll__node *n = s->worker->node;
    const atoll__route_entry *e = &n->routes[am->route];
    if (s->area == 0) {
        atoll__area_fail_mail(s->worker, am, "not in an area: send gate.entry first");
        return;
    }
    if (s->area_type != e->type_index) {
        char msg[160];
        snprintf(msg, sizeof msg, "route %.64s is for areas of type %s, this player is in a %s",
                 atoll__dict_route(n->dict, am->route),
                 n->game->api->area_types[e->type_index]->name,
                 n->game->api->area_types[s->area_type]->name);
        atoll__area_fail_mail(s->worker, am, msg);
        return;
    }
    am->area = s->area;
    if (s->area_at.node != n->id && am->msg_type == ATOLL_MSG_REQUEST &&
        s->ninflight < ATOLL_SESSION_INFLIGHT_MAX) {
        /* An area on another node: the request is kept, numbered, until its response
         * passes, to go again if that node dies (failover.c, exact.c). It carries the
         * highest number below which every request was answered, so that the area keeps
         * the answers of those that may still be sent again, no more. */
        am->call_id = s->inflight.head ? s->inflight.head->epoch - 1 : s->rq_next;
        am->epoch = ++s->rq_next;
        atoll__mail_list_push(&s->inflight, atoll__area_req_copy(am));
        s->ninflight++;
    }
    atoll__send_to(n, s->area_at, am);
}

atoll__mail *
atoll__area_req_copy(const atoll__mail *m)
{
    atoll__mail *c = atoll__mail_new(ATOLL_MAIL_AREA_REQ, m->len);
    c->session = m->session;
    c->request_id = m->request_id;
    c->msg_type = m->msg_type;
    c->route = m->route;
    c->area = m->area;
    c->epoch = m->epoch;
    c->call_id = m->call_id;
    memcpy(c->data, m->data, m->len);
    return c;
}

/* After its area came back on another node: the requests that were in flight go
 * again, in order, before what the client sent meanwhile. */
static void
resend_inflight(atoll__session *s)
{
    for (atoll__mail *m = s->inflight.head; m != NULL; m = m->next) {
        atoll__mail *c = atoll__area_req_copy(m);
        c->area = s->area;
        atoll__send_to(s->worker->node, s->area_at, c);
    }
}

static void enter_guest(atoll__session *s);

void
atoll__area_route(atoll__req *req)
{
    atoll__session *s = req->session;
    atoll__node *n = s->worker->node;
    const atoll__route_entry *e = &n->routes[req->code];
    if (e->handler->flags & ATOLL_INTERNAL) {
        atoll__metric_route("unknown", true);
        atoll__reply_error(req, 500, "no handler for route");
        return;
    }
    if (s->area == 0 && !s->entering && s->uid == NULL && !s->binding &&
        n->game->api->guest != NULL && atoll__guests_allowed(n)) /* auth.guests */
        enter_guest(s);
    if (s->area == 0 && !s->entering) {
        atoll__reply_error(req, 500, "not in an area: send gate.entry first");
        return;
    }
    if (s->area == 0 && (s->nwaiting >= ENTRY_WAITING_MAX ||
                         s->waiting_bytes + req->body_len > ENTRY_WAITING_BYTES)) {
        atoll__reply_error(req, 500, "entry in progress");
        return;
    }
    atoll__mail *am = atoll__mail_new(ATOLL_MAIL_AREA_REQ, req->body_len);
    am->session = s->id;
    am->request_id = req->id;
    am->msg_type = (uint8_t)req->type;
    am->route = req->code;
    memcpy(am->data, req->body, req->body_len);
    if (s->area == 0) {
        atoll__mail_list_push(&s->waiting, am); /* until the entry's route comes */
        s->nwaiting++;
        s->waiting_bytes += (uint32_t)req->body_len;
        return;
    }
    to_area(s, am);
}

/* Sends the AREA_ENTER of the session's player uid into the area e names (type index
 * ti): straight to it when this worker knows where it lives, else to the worker that
 * should run it (this one for a local area), which claims it or passes the entry on. */
static void
send_enter(atoll__session *s, const atoll_entry *e, int ti, const char *uid,
           uint32_t request_id, bool reply)
{
    atoll__node *n = s->worker->node;
    s->entering = true;
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_AREA_ENTER, 0);
    m->session = s->id;
    m->request_id = request_id;
    m->reply = reply;
    m->uid = atoll__strndup(uid, strlen(uid));
    /* Id and type travel along: the worker it reaches creates the area when it does not
     * have it (never made yet, or destroyed on the way), unless the directory says it
     * lives elsewhere, where the entry then goes. */
    memcpy(m->from, e->area_id, strlen(e->area_id) + 1);
    m->type_index = ti;
    const atoll__dir_entry *where = atoll__where_cached(s->worker, e->area_id);
    if (where != NULL) {
        m->area = where->num;
        atoll__send_to(n, where->owner, m);
        return;
    }
    /* Placed; the outcome comes back to this worker's cache, so the next entry to the
     * same area goes straight there. */
    m->at = atoll__addr_make(n->id, s->worker->index);
    m->call_id = ATOLL__DIR_COOKIE_PLACE;
    atoll__addr to = m->at;
    if (e->local) {
        atoll__place_count(n, to.worker, 1);
    } else if (atoll__place_pick_for(n, e->area_id, &to) != ATOLL_OK) {
        /* no area node up: the entry fails */
        atoll__area_undeliverable(s->worker, m, ATOLL_ENOENT);
        return;
    }
    atoll__send_to(n, to, m);
}

void
atoll__area_enter_again(atoll__session *s)
{
    atoll_entry e = {.node = s->worker->node, .worker = s->worker->index};
    snprintf(e.area_id, sizeof e.area_id, "%s", s->area_id);
    char guest[24];
    const char *uid = s->uid;
    if (uid == NULL) {
        snprintf(guest, sizeof guest, "~%016llx", (unsigned long long)s->id.v);
        uid = guest;
    }
    e.uid = uid;
    send_enter(s, &e, s->area_type, uid, 0, false);
}

/* Checks what an entry hook chose: ATOLL_OK and *ti its type, or an error. */
static int
entry_checked(const atoll__node *n, int rc, const atoll_entry *e, int *ti)
{
    *ti = rc == ATOLL_OK ? atoll__area_type_index(n, e->area_type) : -1;
    if (rc == ATOLL_OK && *ti < 0)
        rc = ATOLL_ENOENT;
    if (rc == ATOLL_OK && !atoll__area_id_valid(e->area_id))
        rc = ATOLL_EINVAL;
    return rc;
}

/* A session that sends an area route before gate.entry enters as a guest (the game's
 * guest hook), with the id "~<session id in hex>". */
static void
enter_guest(atoll__session *s)
{
    atoll__node *n = s->worker->node;
    char uid[24];
    snprintf(uid, sizeof uid, "~%016llx", (unsigned long long)s->id.v);
    atoll_entry e = {.node = n, .uid = uid, .worker = s->worker->index};
    int ti;
    atoll__running run;
    atoll__game_begin(&run, NULL, "guest", NULL, uid);
    int rc = n->game->api->guest(&e);
    atoll__game_end(&run, NULL);
    rc = entry_checked(n, rc, &e, &ti);
    if (rc != ATOLL_OK) {
        ATOLL_LOG(ATOLL_LOG_DEBUG, "msg=\"guest entry refused\" error=%s", atoll_err_name(rc));
        return;
    }
    s->guest = true;
    send_enter(s, &e, ti, uid, 0, false);
}

/* What admission chose for an entry (the game's entry hook), kept on the session until
 * its uid is bound. */
typedef struct admitted {
    char area_id[ATOLL_AREA_ID_MAX + 1];
    int type_index;
    int local;
} admitted;

/* The game's entry hook for uid: ATOLL_OK with its choice in *e and *ti, or why not. */
static int
entry_choose(atoll__session *s, const char *uid, const atoll_value *body, atoll_entry *e,
             int *ti)
{
    atoll__node *n = s->worker->node;
    const atoll_game *g = n->game->api;
    *e = (atoll_entry){.node = n, .uid = uid, .body = body, .worker = s->worker->index};
    atoll__running run;
    atoll__game_begin(&run, NULL, "entry", NULL, uid);
    int rc = g->entry ? g->entry(e) : ATOLL_ENOENT;
    atoll__game_end(&run, NULL);
    return entry_checked(n, rc, e, ti);
}

/* The answer of a game's admission call (atoll_entry.admit_area): runs on the
 * session's worker, outside any area. */
static void
on_admission(atoll_area *none, int status, atoll_value *reply, void *udata)
{
    (void)none;
    atoll__worker *w = atoll__current_worker();
    atoll_session_id *sid = udata;
    if (status == ATOLL_ECANCELED && (w == NULL || atomic_load(&w->node->stopping))) {
        atoll__free(sid); /* the node stops */
        return;
    }
    int code = 503;
    char msg[200];
    if (status == ATOLL_OK) {
        code = (int)atoll_get_int(reply, "code", 200);
        snprintf(msg, sizeof msg, "%s", atoll_get_str(reply, "message", "entry refused"));
    } else {
        ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"admission call failed, entry refused\" error=%s",
                  atoll_err_name(status));
        snprintf(msg, sizeof msg, "admission unavailable: %s", atoll_strerror(status));
    }
    if (code < 100 || code > 999)
        code = 500;
    atoll__gate_admitted(w, *sid, code, msg);
    atoll__free(sid);
}

int
atoll__area_admit(atoll__session *s, const char *uid, const atoll_value *body, char *msg,
                  size_t len)
{
    atoll_entry e;
    int ti;
    int rc = entry_choose(s, uid, body, &e, &ti);
    if (rc != ATOLL_OK) {
        snprintf(msg, len, "entry refused: %s", atoll_strerror(rc));
        return rc;
    }
    admitted *a = s->admitted ? s->admitted : atoll__malloc(sizeof *a);
    memcpy(a->area_id, e.area_id, sizeof a->area_id);
    a->type_index = ti;
    a->local = e.local;
    s->admitted = a;
    if (e.admit_area[0] == '\0' || e.admit_route == NULL)
        return ATOLL_OK;
    /* The game's own admission, by a call to one of its areas. */
    /* A copy of the body: the entry keeps its own until it is bound, and the call's goes
     * to another thread (values are not shared between threads). */
    atoll_value *arg = atoll_pack("{s:s,s:s,s:o}", "uid", uid, "area", e.area_id, "body",
                                  body ? atoll_copy(body) : atoll_null());
    atoll_session_id *sid = atoll__malloc(sizeof *sid);
    *sid = s->id;
    rc = atoll__proxy_gate_call(s->worker, e.admit_area, e.admit_route, arg,
                                e.admit_timeout_ms ? e.admit_timeout_ms : 5000, on_admission, sid);
    if (rc != ATOLL_OK) {
        atoll__free(sid);
        snprintf(msg, len, "entry refused: the game's admission route %.64s is unknown",
                 e.admit_route);
        ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"%s\"", msg);
        return rc;
    }
    return ATOLL__ADMIT_LATER;
}

/* Enters the bound uid's player into the area admission chose for it, or (the same uid
 * entering again) the area the game chooses now. body is the gate.entry body (may be
 * NULL). request_id 0 with reply false: a notify, no answer. */
static void
enter_game(atoll__session *s, uint32_t request_id, bool reply, const atoll_value *body)
{
    atoll__node *n = s->worker->node;
    atoll_entry e;
    int ti;
    if (s->admitted != NULL) {
        admitted *a = s->admitted;
        e = (atoll_entry){.node = n, .uid = s->uid, .worker = s->worker->index,
                          .local = a->local};
        memcpy(e.area_id, a->area_id, sizeof e.area_id);
        ti = a->type_index;
        atoll__free(a);
        s->admitted = NULL;
    } else {
        int rc = entry_choose(s, s->uid, body, &e, &ti);
        if (rc != ATOLL_OK) {
            atoll__req req = atoll__entry_req(s, request_id, reply);
            char msg[160];
            snprintf(msg, sizeof msg, "entry refused: %s", atoll_strerror(rc));
            atoll__reply_error(&req, 500, msg);
            return;
        }
    }
    send_enter(s, &e, ti, s->uid, request_id, reply);
}

/* Sends the LEAVE of the session's player to its area, if it is in one. may_resume:
 * the player may wait for its client to come back (resume.c). */
static void
leave_area(atoll__session *s, bool may_resume)
{
    if (s->area == 0)
        return;
    atoll__mail *l = atoll__mail_new(ATOLL_MAIL_AREA_LEAVE, 0);
    l->area = s->area;
    l->session = s->id;
    l->reply = may_resume;
    atoll__send_to(s->worker->node, s->area_at, l);
    s->area = 0;
}

void
atoll__area_enter(atoll__session *s, uint32_t request_id, bool reply, const atoll_value *body,
                  bool again)
{
    atoll__req req = atoll__entry_req(s, request_id, reply);
    if (s->entering) {
        atoll__reply_error(&req, 500, "entry already in progress");
    } else if (s->guest) {
        /* A guest logs in: it leaves its guest area and enters as the uid. */
        leave_area(s, false);
        s->guest = false;
        enter_game(s, request_id, reply, body);
    } else if (!again || s->area == 0) {
        enter_game(s, request_id, reply, body);
    } else {
        atoll__reply(&req, "{\"code\":200}", 12);
    }
}

void
atoll__area_session_closed(atoll__session *s)
{
    atoll__free(s->admitted);
    s->admitted = NULL;
    /* A connection that dropped may come back for its player; one the server closed
     * (a kick, a refused login) or a guest's may not. */
    leave_area(s, !s->guest && !s->no_resume && (s->uid != NULL || s->binding));
}

/* SESS_ROUTE: the player is in area m->area now (0: in none). After a move the old
 * area gets the FENCE that ends its forwarding (area.h). */
void
atoll__area_route_mail(atoll__worker *w, atoll__mail *m)
{
    atoll__node *n = w->node;
    atoll__session *s = atoll__session_find(w, m->session);
    if (atoll__resume_route(w, s, m))
        return;
    if (m->area_old != 0) {
        /* Sent after any LEAVE this worker sent to the old area (same queue), so the
         * old area forwards that LEAVE before it drops its forward. */
        atoll__mail *f = atoll__mail_new(ATOLL_MAIL_AREA_FENCE, 0);
        f->area = m->area_old;
        f->session = m->session;
        if (s != NULL)
            s->fence_node = m->at_old.node != n->id ? m->at_old.node : 0;
        atoll__send_to(n, m->at_old, f);
    } else if (s == NULL && m->area != 0) {
        /* Entered after the session closed: nobody will send the LEAVE but us. */
        atoll__mail *l = atoll__mail_new(ATOLL_MAIL_AREA_LEAVE, 0);
        l->area = m->area;
        l->session = m->session;
        atoll__send_to(n, m->at, l);
    }
    /* A move's route for a session that left the area the move started from (a guest
     * that logged in meanwhile) is not its route: that session's LEAVE went to the old
     * area, which passes it on to the new one before the fence. */
    bool stale = s != NULL && m->area_old != 0 && s->area != m->area_old;
    /* A route to no area that is not a move's answers an entry (flow.c), and this session
     * waits for none: it answers one that was overtaken. A rejoin sends its entry again
     * when the first is unanswered for REJOIN_SILENT_MS; the first may have gone to the
     * dead node, or through a node that forwarded it there, and its failure can come
     * back after the second got the session in. The session stays where it is. */
    if (s != NULL && m->area == 0 && m->area_old == 0 && !s->entering && s->area != 0 &&
        m->len == 0) {
        ATOLL_LOG(ATOLL_LOG_DEBUG, "msg=\"the failure of an overtaken entry ignored\" "
                  "area=\"%s\"", s->area_id);
        atoll__mail_free(m);
        return;
    }
    if (s != NULL && !stale && m->area == 0 && atoll__area_rejoin_failed(w, s)) {
        atoll__mail_free(m); /* entering its area again: tried later */
        return;
    }
    if (s != NULL && !stale) {
        bool rejoined = s->rejoining && m->area != 0;
        s->rejoining = false;
        if (m->area != 0 && m->from[0] != '\0')
            snprintf(s->area_id, sizeof s->area_id, "%s", m->from);
        /* Even a closing session takes the route: its LEAVE must reach the new area. */
        if (m->area_old == 0)
            s->entering = false;
        if (m->area == 0)
            s->guest = false;
        s->area = m->area;
        s->area_at = m->at;
        s->area_type = m->type_index;
        if (m->len > 0)
            atoll__session_deliver(w, s->id, m->data, m->len);
        if (rejoined)
            resend_inflight(s);
        if (!s->entering && s->waiting.head != NULL) {
            /* What came during the entry goes to the area now, in order (or fails,
             * when the entry did). */
            for (atoll__mail *wm = atoll__mail_list_take(&s->waiting), *next; wm; wm = next) {
                next = wm->next;
                to_area(s, wm);
            }
            s->nwaiting = 0;
            s->waiting_bytes = 0;
        }
    }
    atoll__mail_free(m);
}
