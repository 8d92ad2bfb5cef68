/* entry.c -- the gate's side of areas: entering the game's area after gate.entry, the
 * session's cached route to its player's area (requests go there as AREA_REQ mail),
 * the route updates (SESS_ROUTE) that follow entries and moves, and the LEAVE of a
 * closing session. All of it runs on the session's worker; area.h has the flow.
 */
#include "area.h"

#include <stdio.h>

void
atoll__area_route(atoll__req *req)
{
    atoll__session *s = req->session;
    atoll__node *n = s->worker->node;
    const atoll__route_entry *e = &n->routes[req->code];
    if (e->handler->flags & ATOLL_INTERNAL) {
        atoll__reply_error(req, 500, "no handler for route");
        return;
    }
    if (s->area == 0) {
        atoll__reply_error(req, 500, s->entering ? "entry in progress"
                                                 : "not in an area: send gate.entry first");
        return;
    }
    if (s->area_type != e->type_index) {
        char msg[160];
        snprintf(msg, sizeof msg, "route %.64s is for areas of type %s, this player is in a %s",
                 req->route, n->game->api->area_types[e->type_index]->name,
                 n->game->api->area_types[s->area_type]->name);
        atoll__reply_error(req, 500, msg);
        return;
    }
    atoll__mail *am = atoll__mail_new(ATOLL_MAIL_AREA_REQ, req->body_len);
    am->area = s->area;
    am->session = s->id;
    am->request_id = req->id;
    am->msg_type = (uint8_t)req->type;
    am->route = req->code;
    memcpy(am->data, req->body, req->body_len);
    atoll__send_to(n, s->area_at, am);
}

/* Enters the bound uid's player into the area the game chooses. body is the gate.entry
 * body (may be NULL). request_id 0 with reply false: a notify, no answer. */
static void
enter_game(atoll__session *s, uint32_t request_id, bool reply, const atoll_value *body)
{
    atoll__node *n = s->worker->node;
    atoll__req req = atoll__entry_req(s, request_id, reply);
    const atoll_game *g = n->game->api;
    atoll_entry e = {.node = n, .uid = s->uid, .body = body};
    int rc = g->entry ? g->entry(&e) : ATOLL_ENOENT;
    int ti = rc == ATOLL_OK ? atoll__area_type_index(n, e.area_type) : -1;
    if (rc == ATOLL_OK && ti < 0)
        rc = ATOLL_ENOENT;
    if (rc == ATOLL_OK && !atoll__area_id_valid(e.area_id))
        rc = ATOLL_EINVAL;
    if (rc != ATOLL_OK) {
        char msg[160];
        snprintf(msg, sizeof msg, "entry refused: %s", atoll_strerror(rc));
        atoll__reply_error(&req, 500, msg);
        return;
    }
    s->entering = true;
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_AREA_ENTER, 0);
    m->session = s->id;
    m->request_id = request_id;
    m->reply = reply;
    m->uid = atoll__strndup(s->uid, strlen(s->uid));
    /* Id and type travel along: the worker it reaches creates the area when it does not
     * have it (never made yet, or destroyed on the way), unless the directory says it
     * lives elsewhere, where the entry then goes. */
    memcpy(m->from, e.area_id, strlen(e.area_id) + 1);
    m->type_index = ti;
    const atoll__dir_entry *where = atoll__where_cached(s->worker, e.area_id);
    if (where != NULL) {
        m->area = where->num;
        atoll__send_to(n, where->owner, m);
    } else {
        /* Placed on the worker placement picks; the outcome comes back to this worker's
         * cache, so the next entry to the same area goes straight there. */
        m->at = atoll__addr_make(n->id, s->worker->index);
        m->call_id = ATOLL__DIR_COOKIE_PLACE;
        atoll__send(n, atoll__place_pick(n), m);
    }
}

void
atoll__area_enter(atoll__session *s, uint32_t request_id, bool reply, const atoll_value *body,
                  bool again)
{
    if (!again) {
        enter_game(s, request_id, reply, body);
        return;
    }
    atoll__req req = atoll__entry_req(s, request_id, reply);
    if (s->entering)
        atoll__reply_error(&req, 500, "entry already in progress");
    else if (s->area == 0)
        enter_game(s, request_id, reply, body);
    else
        atoll__reply(&req, "{\"code\":200}", 12);
}

void
atoll__area_session_closed(atoll__session *s)
{
    if (s->area == 0)
        return;
    atoll__mail *l = atoll__mail_new(ATOLL_MAIL_AREA_LEAVE, 0);
    l->area = s->area;
    l->session = s->id;
    atoll__send_to(s->worker->node, s->area_at, l);
    s->area = 0;
}

/* SESS_ROUTE: the player is in area m->area now (0: in none). After a move the old
 * area gets the FENCE that ends its forwarding (area.h). */
void
atoll__area_route_mail(atoll__worker *w, atoll__mail *m)
{
    atoll__node *n = w->node;
    atoll__session *s = atoll__session_find(w, m->session);
    if (m->area_old != 0) {
        /* Sent after any LEAVE this worker sent to the old area (same queue), so the
         * old area forwards that LEAVE before it drops its forward. */
        atoll__mail *f = atoll__mail_new(ATOLL_MAIL_AREA_FENCE, 0);
        f->area = m->area_old;
        f->session = m->session;
        atoll__send_to(n, m->at_old, f);
    } else if (s == NULL && m->area != 0) {
        /* Entered after the session closed: nobody will send the LEAVE but us. */
        atoll__mail *l = atoll__mail_new(ATOLL_MAIL_AREA_LEAVE, 0);
        l->area = m->area;
        l->session = m->session;
        atoll__send_to(n, m->at, l);
    }
    if (s != NULL) {
        /* Even a closing session takes the route: its LEAVE must reach the new area. */
        if (m->area_old == 0)
            s->entering = false;
        s->area = m->area;
        s->area_at = m->at;
        s->area_type = m->type_index;
        if (m->len > 0)
            atoll__session_deliver(w, s->id, m->data, m->len);
    }
    atoll__mail_free(m);
}
