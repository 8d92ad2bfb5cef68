/* flow.c -- the mail of areas on the owner's worker, and players moving between
 * areas: entries (with the area created again when it went away on the way), moves
 * with their forwards and fences (area.h has the protocol), leaves, and the dispatch of
 * every AREA_* mail to the area it names.
 */
#include "area.h"
#include "../value/value.h"

#include <stdarg.h>
#include <stdio.h>

/* A forward left behind by a player who moved away and whose session has not fenced
 * the old area yet (area.h, moving a player). */
typedef struct forward {
    uint64_t area;
    atoll__addr at;
} forward;

/* ---- mail for areas -------------------------------------------------------------------------- */

static forward *
forward_of(atoll__worker *w, atoll_session_id s)
{
    return atoll__map_get(&w->areas->forwards, s.v);
}

/* Passes m on to the area its session's player moved to. */
static void
forward_mail(atoll__worker *w, forward *f, atoll__mail *m)
{
    m->forwarded = true;
    m->area = f->area;
    atoll__send_to(w->node, f->at, m);
}

static void
send_route(atoll__worker *w, atoll_player *p, atoll_area *a, const atoll__mail *cause,
           const uint8_t *reply, size_t reply_len)
{
    atoll__mail *r = atoll__mail_new(ATOLL_MAIL_SESS_ROUTE, reply_len);
    r->session = p->session;
    r->area = a ? a->num : 0;
    r->at = atoll__addr_make(w->node->id, w->index);
    r->type_index = a ? a->type_index : 0; /* no area: no type */
    if (a != NULL) /* the gate enters it again by id if its node dies */
        snprintf(r->from, sizeof r->from, "%s", a->id);
    if (cause->type == ATOLL_MAIL_AREA_MOVE_IN) {
        r->area_old = cause->area_old;
        r->at_old = cause->at_old;
    }
    if (reply_len)
        memcpy(r->data, reply, reply_len);
    atoll__send_to(w->node, atoll__session_addr(p->session), r);
}

/* The answer to gate.entry: {"code":200,"uid":...,"area":...,"resume":...} (the token
 * when resume is on and p is a player that logged in, not a guest) or {"code":500,...}. */
static void
entry_answer(atoll__worker *w, atoll__buf *pkg, const atoll__mail *m, const char *area_id,
             int rc, const atoll_player *p)
{
    if (!m->reply)
        return;
    atoll__buf j = ATOLL__BUF_INIT;
    if (rc == ATOLL_OK) {
        static const char head[] = "{\"code\":200,\"uid\":";
        atoll__buf_append(&j, head, sizeof head - 1);
        atoll__json_put_string(&j, m->uid, strlen(m->uid));
        atoll__buf_append(&j, ",\"area\":", 8);
        atoll__json_put_string(&j, area_id, strlen(area_id));
        if (p != NULL && atoll__resume_on(w->node))
            atoll__resume_put_token(&j, w->node, p);
        atoll__buf_push(&j, '}');
    } else {
        atoll__json_put_error(&j, 500, area_id ? atoll_strerror(rc) : "area is gone");
    }
    atoll__put_response(pkg, m->request_id, atoll__buf_data(&j), j.len);
    atoll__buf_fini(&j);
}

static void
on_enter_mail(atoll__worker *w, atoll_area *a, atoll__mail *m)
{
    int sw = atoll__session_worker(m->session);
    atoll__buf pkg = ATOLL__BUF_INIT;
    atoll_player none = {.session = m->session, .session_worker = sw};
    if (a == NULL) {
        entry_answer(w, &pkg, m, NULL, ATOLL_ENOENT, NULL);
        send_route(w, &none, NULL, m, atoll__buf_data(&pkg), pkg.len);
        atoll__buf_fini(&pkg);
        atoll__mail_free(m);
        return;
    }
    atoll_player *p = atoll_area_player(a, m->uid);
    if (p == NULL && atoll__docs_enter_wait(w, m))
        return; /* back here once its document is loaded */
    atoll__area_begin(a); /* a destroy or move asked for in on_enter waits for the answer */
    int rc = ATOLL_OK;
    if (p != NULL) {
        /* The same uid logged in again (its old session is being kicked, or it was
         * waiting to resume): the player stays, with its data; only its session
         * changes. A document loaded for this entry meanwhile is the one p holds. */
        if (!p->disconnected && p->session.v != m->session.v &&
            atoll__session_node(p->session) != atoll__session_node(m->session)) {
            /* Through another gate: that gate's uid registry did not see the old
             * session, which is kicked from here (its LEAVE will find nobody). */
            atoll__send_to(w->node, atoll__session_addr(p->session),
                           atoll__kick_new(p->session, "duplicate login"));
        }
        atoll__resume_take_session(w, a, p, m);
    } else if (m->doc == 2) {
        rc = ATOLL_EIO; /* its stored data cannot be read (logged): never a fresh start */
    } else if (a->type->drain_waits && atomic_load(&w->node->draining)) {
        /* A drain waits for this area to end: it takes no new player. The document
         * loaded for it goes back as it was. */
        rc = ATOLL_EBUSY;
        if (m->doc == 1) {
            atoll_player *x = atoll__player_new(m->uid, m->session, sw);
            x->persisted = true;
            x->refused = true;
            atoll__player_gone(w, x);
        }
    } else {
        p = atoll__player_new(m->uid, m->session, sw);
        bool stored = m->doc == 1;
        atoll_unref(p->data);
        p->data = atoll__docs_start(stored ? m->value : NULL, a->type->player_defaults);
        if (stored) {
            m->value = NULL;
            p->persisted = true;
            p->doc_hash = m->epoch;
            p->doc_epoch = m->doc_epoch;
            atoll__exact_take(p, p->data); /* the requests it ran: not the game's data */
        }
        atoll__resume_rotate(p);
        atoll__player_attach(a, p);
        rc = atoll__hook_enter(a, p);
        if (rc != ATOLL_OK) {
            p->refused = true;
            atoll__player_detach(a, p);
            atoll__player_unbind(w, p);
            atoll__player_gone(w, p);
            p = NULL;
        } else if (w->node->remote != NULL && p->persisted && p->doc_hash != 0) {
            /* A cluster: written at once with this area's epoch, so that a node that held
             * it before (dead, or frozen past its lease) has its late writes refused. */
            atoll__docs_claim_player(w, p);
        }
    }
    entry_answer(w, &pkg, m, a->id, rc, p != NULL && m->uid[0] != '~' ? p : NULL);
    send_route(w, p ? p : &none, p ? a : NULL, m, atoll__buf_data(&pkg), pkg.len);
    atoll__buf_fini(&pkg);
    atoll__mail_free(m);
    atoll__area_end(a);
}

/* A moving player that cannot be taken in: its session is kicked with reason, the
 * session's worker gets a route to no area (which fences the old one), p is freed. */
static void
drop_moving_player(atoll__worker *w, atoll_player *p, const atoll__mail *m, const char *reason)
{
    atoll__send_to(w->node, atoll__session_addr(p->session), atoll__kick_new(p->session, reason));
    send_route(w, p, NULL, m, NULL, 0);
    atoll__player_gone(w, p);
}

static void
on_move_in(atoll__worker *w, atoll_area *a, atoll__mail *m)
{
    atoll_player *p = m->payload;
    m->payload = NULL;
    p->session = m->session;
    if (a == NULL || atoll_area_player(a, p->uid) != NULL) {
        /* The target went away (empty past its grace) while the player was on its way.
         * It is not created again here: the old area's forward points at the old
         * number. */
        ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"move target gone, kicking the player\" uid=\"%s\"",
                  p->uid);
        drop_moving_player(w, p, m, "move failed");
        atoll__mail_free(m);
        return;
    }
    if (a->type->drain_waits && atomic_load(&w->node->draining)) {
        /* Its node drains and it waits for its end: no new player (as on_enter refusing). */
        ATOLL_LOG(ATOLL_LOG_INFO, "msg=\"a player moving into an area that waits for its end "
                  "while its node drains: kicked\" uid=\"%s\" area=\"%s\"", p->uid, a->id);
        drop_moving_player(w, p, m, "move refused");
        atoll__mail_free(m);
        return;
    }
    p->unfenced = true;
    atoll__area_begin(a);
    atoll__player_attach(a, p);
    int rc = atoll__hook_enter(a, p);
    if (rc != ATOLL_OK) {
        ATOLL_LOG(ATOLL_LOG_INFO, "msg=\"on_enter refused a moving player, kicking it\" "
                  "uid=\"%s\" area=\"%s\"", p->uid, a->id);
        atoll__player_detach(a, p);
        atoll__player_unbind(w, p);
        drop_moving_player(w, p, m, "move refused");
    } else {
        send_route(w, p, a, m, NULL, 0);
    }
    atoll__mail_free(m);
    atoll__area_end(a);
}

void
atoll__area_mail(atoll__worker *w, atoll__mail *m)
{
    atoll_area *a = atoll__area_find(w, m->area);
    if (a != NULL && a->frozen) {
        atoll__mail_list_push(&a->frozen_held, m); /* moving: it waits (migrate.c) */
        return;
    }
    if (a == NULL && atoll__area_hold_claimed(w, m))
        return; /* its area is being placed here */
    if (a == NULL && atoll__migrate_forward(w, m))
        return; /* its area moved to another node */
    switch (m->type) {
    case ATOLL_MAIL_AREA_CREATE:
        atoll__area_claim(w, m);
        return;
    case ATOLL_MAIL_AREA_ENTER:
        if (a == NULL && m->status < ATOLL__ENTER_CLAIMS && m->from[0] != '\0') {
            /* Placed here, or the area went away (empty past its grace) while the entry
             * was on its way: claimed here (a few times at most: each claim creates the
             * area or finds where it lives, which may be destroyed again by then). */
            atoll__area_claim(w, m);
            return;
        }
        on_enter_mail(w, a, m);
        return;
    case ATOLL_MAIL_AREA_MOVE_IN:
        on_move_in(w, a, m);
        return;
    case ATOLL_MAIL_AREA_RESUME:
        atoll__resume_mail(w, a, m);
        return;
    case ATOLL_MAIL_AREA_CALL:
        if (m->area == 0) {
            atoll__proxy_route(w, m); /* by id, sent by this worker */
            return;
        }
        if (a == NULL) {
            if (m->call_id == 0) {
                atoll__proxy_send_moved(w, m); /* a send: passed on from here */
                return;
            }
            /* Not here (gone, or a stale route): the body goes back for a retry. */
            atoll__proxy_answer(w, m->at, m->call_id, ATOLL__EMOVED, m->value);
            m->value = NULL;
            atoll__mail_free(m);
            return;
        }
        if (!atoll__queue_if_command(a, atoll__route_of(w, m->route), m))
            atoll__run_call(w, a, m);
        return;
    default:
        break;
    }
    /* Messages of a session: REQ, LEAVE, FENCE. */
    atoll_player *p = a ? atoll__player_by_session(a, m->session) : NULL;
    if (p == NULL) {
        forward *f = forward_of(w, m->session);
        if (f != NULL) {
            if (m->type == ATOLL_MAIL_AREA_FENCE && !m->forwarded) {
                /* The session now talks to the new area: nothing more will come here. */
                forward_mail(w, f, m);
                atoll__free(atoll__map_del(&w->areas->forwards, m->session.v));
            } else {
                forward_mail(w, f, m);
            }
            return;
        }
        if (m->type == ATOLL_MAIL_AREA_REQ && a == NULL && m->epoch != 0 &&
            atoll__area_was_dropped(w, m->area)) {
            /* Sent before this node was declared dead while away; its gate keeps it and
             * sends it again to the area's new owner, which answers it: an answer from
             * here ("area is gone") would reach the client too. */
            atoll__mail_free(m);
        } else if (m->type == ATOLL_MAIL_AREA_REQ)
            atoll__area_fail_mail(w, m, a ? "not in this area" : "area is gone");
        else
            atoll__mail_free(m);
        return;
    }
    if (m->type == ATOLL_MAIL_AREA_FENCE) {
        atoll__mail_free(m);
        if (p->unfenced) {
            p->unfenced = false;
            atoll__deliver_held(w, a, p);
        }
        return;
    }
    if ((p->unfenced && !m->forwarded) || p->resolving != NULL) {
        /* Unfenced: wait for the fence. Moving while the directory is asked where to:
         * the messages that follow the move wait, to go after the player or, if the
         * move is given up, to run here in order. */
        atoll__mail_list_push(&p->held, m);
        return;
    }
    if (m->type == ATOLL_MAIL_AREA_LEAVE && (p->disconnected || p->leaving)) {
        atoll__mail_free(m); /* gone already, or waiting to resume */
        return;
    }
    if (m->type == ATOLL_MAIL_AREA_LEAVE && m->reply && atoll__resume_on(w->node)) {
        /* The client may come back (gate.resume): the player waits for it. */
        atoll__area_begin(a);
        atoll__resume_park(w, a, p);
        atoll__mail_free(m);
        atoll__area_end(a);
        return;
    }
    if (m->type == ATOLL_MAIL_AREA_LEAVE) {
        atoll__area_begin(a);
        p->leaving = true;
        atoll__hook_leave(a, p, ATOLL_LEAVE_DISCONNECT);
        atoll__kept_drop_session(a, p->session);
        atoll__player_detach(a, p);
        atoll__player_unbind(w, p);
        atoll__player_gone(w, p);
        atoll__mail_free(m);
        atoll__area_end(a);
        return;
    }
    if (!atoll__queue_if_command(a, atoll__route_of(w, m->route), m))
        atoll__run_client(w, a, p, m);
}

/* The fence came: run what waited, in order, as if forwarded. A held message may move
 * the player (the rest then follow it through the new forward) or destroy the area, so
 * the area is looked up again by number (never reused) instead of trusted. A move asked
 * for before the fence happens now. */
void
atoll__deliver_held(atoll__worker *w, atoll_area *a, atoll_player *p)
{
    uint64_t num = a->num;
    atoll__mail *m = atoll__mail_list_take(&p->held);
    while (m != NULL) {
        atoll__mail *next = m->next;
        m->forwarded = true;
        atoll__area_mail(w, m);
        m = next;
    }
    a = atoll__map_get(&w->areas->by_num, num);
    if (a != NULL && a->has_moves && a->depth == 0)
        atoll__do_moves(w, a);
}

/* ---- moving players ---------------------------------------------------------------------- */

/* The directory answered where a move's target lives (arg: the moving players' area).
 * The moves go on; a target that does not exist is given up, the player stays. */
static void
move_resolved(atoll__worker *w, int status, const atoll__dir_entry *e, const char *id,
              atoll__mail *m, uint64_t arg)
{
    (void)e;
    (void)m;
    atoll_area *a = atoll__area_find(w, arg);
    if (a == NULL)
        return;
    atoll_session_id *stay = atoll__malloc((a->nplayers + 1) * sizeof *stay);
    size_t nstay = 0;
    for (atoll_player *p = a->first; p != NULL; p = p->next) {
        if (p->resolving == NULL || strcmp(p->resolving, id) != 0)
            continue;
        atoll__free(p->resolving);
        p->resolving = NULL;
        if (status != ATOLL_OK && p->move_to != NULL && strcmp(p->move_to, id) == 0) {
            ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"move target does not exist, player stays\" "
                      "uid=\"%s\" to=\"%s\"", p->uid, id);
            atoll__free(p->move_to);
            p->move_to = NULL;
        }
        /* No move goes ahead now (given up, forgotten with a failed handler's effects):
         * what waited runs here. A move still asked for takes it along instead. */
        if (p->move_to == NULL && p->held.head != NULL && !p->unfenced)
            stay[nstay++] = p->session;
    }
    /* Players whose move was given up run what they held meanwhile, in order. Each run
     * may move players or destroy the area, so both are looked up again. */
    for (size_t i = 0; i < nstay && (a = atoll__area_find(w, arg)) != NULL; i++) {
        atoll_player *p = atoll__player_by_session(a, stay[i]);
        if (p != NULL && p->resolving == NULL && !p->unfenced && p->move_to == NULL)
            atoll__deliver_held(w, a, p);
    }
    atoll__free(stay);
    a = atoll__area_find(w, arg);
    if (a != NULL) {
        a->has_moves = true;
        if (a->depth == 0)
            atoll__do_moves(w, a);
    }
}

void
atoll__do_moves(atoll__worker *w, atoll_area *a)
{
    a->has_moves = false;
    for (atoll_player *p = a->first, *next; p != NULL; p = next) {
        next = p->next;
        if (p->move_to == NULL)
            continue;
        if (p->unfenced) {
            a->has_moves = true; /* after its own fence */
            continue;
        }
        if (p->resolving != NULL)
            continue; /* its answer runs the moves again */
        const atoll__dir_entry *to = atoll__where_cached(w, p->move_to);
        if (to == NULL) {
            /* Where the target lives is asked first; the player stays until then. */
            p->resolving = atoll__strndup(p->move_to, strlen(p->move_to));
            atoll__where_lookup(w, p->move_to, move_resolved, NULL, a->num);
            continue;
        }
        if (to->num == a->num) {
            ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"move to the player's own area, player stays\" "
                      "uid=\"%s\" to=\"%s\"", p->uid, p->move_to);
            atoll__free(p->move_to);
            p->move_to = NULL;
            continue;
        }
        atoll__dir_entry info = *to;
        atoll__free(p->move_to);
        p->move_to = NULL;
        p->leaving = true;
        a->depth++;
        atoll__hook_leave(a, p, ATOLL_LEAVE_MOVE);
        a->depth--;
        p->leaving = false;
        atoll__player_detach(a, p);
        forward *f = atoll__map_get(&w->areas->forwards, p->session.v);
        if (f == NULL) {
            f = atoll__malloc(sizeof *f);
            atoll__map_put(&w->areas->forwards, p->session.v, f);
        }
        f->area = info.num;
        f->at = info.owner;
        atoll__mail *held = atoll__mail_list_take(&p->held);
        atoll__mail *m = atoll__mail_new(ATOLL_MAIL_AREA_MOVE_IN, 0);
        m->area = info.num;
        m->area_old = a->num;
        m->at_old = atoll__addr_make(w->node->id, w->index);
        m->session = p->session;
        m->payload = p;
        if (info.owner.node != w->node->id)
            atoll__docs_player_away(w, p);
        atoll__send_to(w->node, info.owner, m);
        /* What came while the target was looked up follows the player, after it. */
        for (atoll__mail *hm = held, *hn; hm != NULL; hm = hn) {
            hn = hm->next;
            forward_mail(w, f, hm);
        }
    }
}

int
atoll_player_move(atoll_player *p, const char *to_id)
{
    if (!atoll__player_ok(p, "atoll_player_move") || to_id == NULL || p->area == NULL ||
        p->leaving)
        return ATOLL_EINVAL;
    if (p->disconnected)
        return ATOLL_ESTATE; /* it stays where its client will come back to */
    if (strcmp(to_id, p->area->id) == 0 || !atoll__area_id_valid(to_id))
        return ATOLL_EINVAL;
    atoll__free(p->move_to);
    p->move_to = atoll__strndup(to_id, strlen(to_id));
    atoll__fx_moved(p->area->worker, p);
    p->area->has_moves = true;
    if (p->area->depth == 0)
        atoll__do_moves(p->area->worker, p->area);
    return ATOLL_OK;
}

void
atoll_player_kick(atoll_player *p, const char *reason)
{
    if (!atoll__player_ok(p, "atoll_player_kick") || p->area == NULL || p->leaving)
        return;
    if (p->disconnected) {
        atoll__resume_end_now(p->area, p); /* no client to tell: it leaves */
        return;
    }
    atoll__area_send_to(p->area->worker, atoll__session_addr(p->session),
                        atoll__kick_new(p->session, reason ? reason : "kick"));
}


void
atoll__area_move_fini(atoll__mail *m)
{
    atoll__player_free(m->payload);
    m->payload = NULL;
}
