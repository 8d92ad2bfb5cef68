/* area.c -- areas on their worker: the players of an area, creation (on demand, from
 * the directory) and destruction, the empty grace, stats and the accessors of atoll.h.
 * area.h has the design; every function here runs on the worker that owns the area it
 * touches.
 */
#include "area.h"
#include "../value/value.h"

#include <stdarg.h>
#include <stdio.h>

/* ---- players ----------------------------------------------------------------------------- */

atoll_player *
atoll__player_new(const char *uid, atoll_session_id s, int sw)
{
    atoll_player *p = atoll__calloc(1, sizeof *p);
    p->magic = ATOLL__PLAYER_MAGIC;
    p->uid = atoll__strndup(uid, strlen(uid));
    p->session = s;
    p->session_worker = sw;
    p->data = atoll_object();
    p->fence_node = -1;
    return p;
}

void
atoll__player_free(atoll_player *p)
{
    for (atoll__mail *m = p->held.head, *next; m != NULL; m = next) {
        next = m->next;
        atoll__mail_free(m);
    }
    atoll_unref(p->data);
    atoll__free(p->move_to);
    atoll__free(p->resolving);
    atoll__exact_free(p);
    atoll__free(p->uid);
    p->magic = 0;
    atoll__free(p);
}

bool
atoll__player_ok(const atoll_player *p, const char *what)
{
    if (p == NULL)
        return false;
    if (p->magic != ATOLL__PLAYER_MAGIC) {
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"%s: stale atoll_player pointer (kept past the callback "
                  "that handed it over? keep the uid and use atoll_push_uid or "
                  "atoll_area_player)\"", what);
        return false;
    }
    return true;
}

void
atoll__player_unbind(atoll__worker *w, const atoll_player *p)
{
    atoll__dir *d = atoll__dir_of_worker(w);
    d->ops->bind_player(d, p->uid, NULL);
}

atoll_player *
atoll__player_by_session(const atoll_area *a, atoll_session_id s)
{
    return atoll__map_get(&a->by_session, s.v);
}

atoll_player *
atoll_area_player(const atoll_area *a, const char *uid)
{
    if (a == NULL || uid == NULL)
        return NULL;
    for (atoll_player *p = atoll__map_get(&a->by_uid, atoll__hash_str(uid)); p; p = p->uid_next)
        if (strcmp(p->uid, uid) == 0)
            return p;
    return NULL;
}

static void grace_start(atoll_area *a);

void
atoll__player_attach(atoll_area *a, atoll_player *p)
{
    atoll__player_attach_quiet(a, p);
    atoll__dir *d = atoll__dir_of_worker(a->worker);
    d->ops->bind_player(d, p->uid, a->id);
}

void
atoll__player_attach_quiet(atoll_area *a, atoll_player *p)
{
    p->area = a;
    p->prev = a->last;
    p->next = NULL;
    if (a->last)
        a->last->next = p;
    else
        a->first = p;
    a->last = p;
    a->nplayers++;
    atoll__map_put(&a->by_session, p->session.v, p);
    uint64_t h = atoll__hash_str(p->uid);
    p->uid_next = atoll__map_put(&a->by_uid, h, p);
    if (a->grace != NULL)
        uv_timer_stop(a->grace);
    atoll__docs_player_in(a->worker, p);
}

void
atoll__player_detach(atoll_area *a, atoll_player *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        a->first = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        a->last = p->prev;
    p->prev = p->next = NULL;
    a->nplayers--;
    if (atoll__map_get(&a->by_session, p->session.v) == p)
        atoll__map_del(&a->by_session, p->session.v);
    uint64_t h = atoll__hash_str(p->uid);
    atoll_player *head = atoll__map_get(&a->by_uid, h);
    if (head == p) {
        if (p->uid_next)
            atoll__map_put(&a->by_uid, h, p->uid_next);
        else
            atoll__map_del(&a->by_uid, h);
    } else {
        for (atoll_player *q = head; q; q = q->uid_next)
            if (q->uid_next == p) {
                q->uid_next = p->uid_next;
                break;
            }
    }
    p->uid_next = NULL;
    p->area = NULL;
    atoll__docs_player_out(a->worker, p);
    if (a->nplayers == 0 && !a->destroyed)
        grace_start(a);
}

/* ---- area lifecycle ------------------------------------------------------------------------ */


static void
on_grace(uv_timer_t *t)
{
    atoll_area *a = t->data;
    if (a != NULL && a->nplayers == 0 && !a->destroyed) {
        ATOLL_LOG(ATOLL_LOG_DEBUG, "msg=\"area empty past its grace, destroying\" area=\"%s\"",
                  a->id);
        atoll__area_destroy_now(a->worker, a, false);
    }
}

void
atoll__area_grace(atoll_area *a)
{
    if (a->nplayers == 0 && !a->destroyed)
        grace_start(a);
}

static void
grace_start(atoll_area *a)
{
    if (a->type->empty_grace_ms <= 0)
        return;
    if (a->grace == NULL) {
        a->grace = atoll__malloc(sizeof *a->grace);
        uv_timer_init(&a->worker->loop, a->grace);
        a->grace->data = a;
    }
    uv_timer_start(a->grace, on_grace, (uint64_t)a->type->empty_grace_ms, 0);
}

static void
free_handle(uv_handle_t *h)
{
    atoll__free(h);
}

atoll_area *
atoll__area_find(atoll__worker *w, uint64_t num)
{
    return num != 0 ? atoll__map_get(&w->areas->by_num, num) : NULL;
}

static void publish(atoll__worker *w, bool tick);

/* Builds area id on this worker, its directory entry recorded: on_create runs now,
 * before anything else reaches it. NULL when on_create refused it. Takes init. */
static atoll_area *
area_build(atoll__worker *w, const char *id, const atoll__dir_entry *e, atoll_value *init,
           atoll_value *state, uint64_t hash)
{
    atoll__node *n = w->node;
    atoll_area *a = atoll__calloc(1, sizeof *a);
    a->num = e->num;
    a->epoch = e->epoch;
    snprintf(a->id, sizeof a->id, "%s", id);
    a->type_index = e->type_index;
    a->type = n->game->api->area_types[e->type_index];
    a->worker = w;
    a->state = atoll__docs_start(state, a->type->state_defaults);
    a->doc_hash = hash;
    atoll__docs_area_in(w, a);
    if (w->node->remote != NULL && hash != 0)
        atoll__docs_claim_area(w, a); /* its epoch, now: a dead owner's late writes refused */
    atoll__map_put(&w->areas->by_num, a->num, a);
    if (a->type->tick_hz > 0) {
        a->tick_period_ns = 1000000000ull / (uint64_t)a->type->tick_hz;
        a->tick_next_ns = uv_hrtime() + a->tick_period_ns;
        atoll__tick_add(a);
    }
    ATOLL_LOG(ATOLL_LOG_DEBUG, "msg=\"area created\" area=\"%s\" type=%s", a->id, a->type->name);
    int rc = ATOLL_OK;
    if (a->type->on_create) {
        atoll__area_begin(a);
        atoll__fx_begin(w);
        atoll__running run;
        atoll__game_begin(&run, a, "on_create", NULL, NULL);
        rc = a->type->on_create(a, init);
        atoll__game_end(&run, a);
        atoll__fx_end(w, rc == ATOLL_OK);
        atoll__area_end(a);
    }
    atoll_unref(init);
    if (rc != ATOLL_OK && !a->destroyed) {
        ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"on_create refused the area\" area=\"%s\" error=%s",
                  a->id, atoll_err_name(rc));
        a->refused = true;
        atoll__area_destroy_now(w, a, false);
        return NULL;
    }
    if (a->destroyed)
        return NULL;
    if (a->nplayers == 0)
        grace_start(a);
    publish(w, false); /* listed from now on, not at the next tick */
    return a;
}

atoll_area *
atoll__area_arrive(atoll__worker *w, const char *id, const atoll__dir_entry *e,
                   atoll_value *state, uint64_t hash)
{
    atoll_area *a = atoll__calloc(1, sizeof *a);
    a->num = e->num;
    a->epoch = e->epoch;
    snprintf(a->id, sizeof a->id, "%s", id);
    a->type_index = e->type_index;
    a->type = w->node->game->api->area_types[e->type_index];
    a->worker = w;
    a->state = state ? state : atoll_object();
    a->doc_hash = hash;
    a->frozen = true;
    if (a->type->tick_hz > 0)
        a->tick_period_ns = 1000000000ull / (uint64_t)a->type->tick_hz;
    atoll__docs_area_in(w, a);
    atoll__docs_area_held(w, a);
    atoll__map_put(&w->areas->by_num, a->num, a);
    atoll__place_count(w->node, w->index, 1);
    return a;
}

void
atoll__area_free_quiet(atoll__worker *w, atoll_area *a)
{
    if (atoll__map_get(&w->areas->by_num, a->num) == a) {
        atoll__map_del(&w->areas->by_num, a->num);
        atoll__place_count(w->node, w->index, -1);
    }
    while (a->first != NULL) {
        atoll_player *p = a->first;
        a->first = p->next;
        atoll__docs_player_out(w, p);
        atoll__docs_player_away(w, p);
        atoll__player_free(p);
    }
    a->last = NULL;
    a->nplayers = 0;
    atoll__mail_free_list(atoll__mail_list_take(&a->cmds));
    atoll__mail_free_list(atoll__mail_list_take(&a->frozen_held));
    atoll__proxy_drop_area(w, a);
    atoll__timers_drop(a);
    atoll__tick_remove(a);
    if (a->grace) {
        uv_close((uv_handle_t *)a->grace, free_handle);
        a->grace = NULL;
    }
    atoll__docs_area_away(w, a);
    atoll_unref(a->state);
    atoll__map_fini(&a->by_session);
    atoll__map_fini(&a->by_uid);
    atoll__free(a);
}

/* ---- claims: placing an area on this worker ------------------------------------------ */

/* An area this worker asked the directory to record here. Every AREA_CREATE and
 * AREA_ENTER for the id that comes before the answer joins it; mail for its number
 * (sent by those who resolved the id since) waits in `held`. */
typedef struct atoll__claim {
    struct atoll__claim *next;
    char id[ATOLL_AREA_ID_MAX + 1];
    uint64_t num;
    int type_index;
    atoll_value *init;         /* the first AREA_CREATE's */
    atoll__dir_entry e;        /* recorded by the directory; its document is loading */
    bool loading;
    atoll__mail_list held;
    atoll__addr *placers;      /* workers that wait for the outcome (DIR_ANSWER PLACE) */
    size_t nplacers;
} claim;

static claim *
claim_find(atoll__worker *w, const char *id, uint64_t num)
{
    for (claim *c = w->areas->claims; c != NULL; c = c->next)
        if (id ? strcmp(c->id, id) == 0 : c->num == num)
            return c;
    return NULL;
}

static void
claim_free(claim *c)
{
    atoll__mail_free_list(atoll__mail_list_take(&c->held));
    atoll_unref(c->init);
    atoll__free(c->placers);
    atoll__free(c);
}

void
atoll__area_claim(atoll__worker *w, atoll__mail *m)
{
    atoll__node *n = w->node;
    /* An AREA_CREATE, and an AREA_ENTER without a number, were counted on this worker
     * by the placement that sent them, when that was this node's (at names the
     * placer); an ENTER whose area went away was not, nor one placed by another node. */
    bool counted = (m->type == ATOLL_MAIL_AREA_CREATE || m->area == 0) && m->at.node == n->id;
    /* An AREA_CREATE comes placed already (atoll_area_create asked the directory for
     * its number on this worker); an area of that number built since has it all. */
    bool placed = m->type == ATOLL_MAIL_AREA_CREATE && m->area != 0;
    if (placed && atoll__area_find(w, m->area) != NULL) {
        atoll__place_count(n, w->index, -1);
        atoll__mail_free(m);
        return;
    }
    claim *c = claim_find(w, m->from, 0);
    if (c == NULL) {
        if (!counted)
            atoll__place_count(n, w->index, 1);
        c = atoll__calloc(1, sizeof *c);
        snprintf(c->id, sizeof c->id, "%s", m->from);
        c->num = placed ? m->area : atoll__area_num_new(n);
        c->type_index = m->type_index;
        c->next = w->areas->claims;
        w->areas->claims = c;
        if (!placed) {
            atoll__dir_entry e = {c->num, atoll__addr_make(n->id, w->index), 0, c->type_index};
            atoll__dir *d = atoll__dir_of_worker(w);
            d->ops->place(d, c->id, &e, e.owner, ATOLL__DIR_COOKIE_CLAIM);
        }
    } else if (counted) {
        atoll__place_count(n, w->index, -1); /* joins: no new area */
    }
    if (m->call_id == ATOLL__DIR_COOKIE_PLACE) {
        c->placers = atoll__realloc(c->placers, (c->nplacers + 1) * sizeof *c->placers);
        c->placers[c->nplacers++] = m->at;
    }
    if (m->type == ATOLL_MAIL_AREA_CREATE) {
        if (c->init == NULL) {
            c->init = m->value;
            m->value = NULL;
        }
        atoll__mail_free(m);
    } else {
        m->status++; /* claims it has taken (area.h: ATOLL__ENTER_CLAIMS) */
        m->call_id = 0;
        atoll__mail_list_push(&c->held, m);
    }
}

bool
atoll__area_hold_claimed(atoll__worker *w, atoll__mail *m)
{
    claim *c = m->area != 0 ? claim_find(w, NULL, m->area) : NULL;
    if (c == NULL)
        return false;
    atoll__mail_list_push(&c->held, m);
    return true;
}

void
atoll__area_claim_answer(atoll__worker *w, atoll__mail *m)
{
    atoll__node *n = w->node;
    claim **pp = &w->areas->claims, *c;
    while ((c = *pp) != NULL && (c->loading || strcmp(c->id, m->from) != 0))
        pp = &c->next;
    if (c == NULL) {
        atoll__mail_free(m);
        return;
    }
    *pp = c->next;
    atoll__dir_entry e = atoll__dir_answer_entry(m);
    int status = m->status;
    atoll__mail_free(m);
    if (status == ATOLL_EEXIST && e.owner.node == n->id && e.owner.worker == w->index &&
        atoll__area_find(w, e.num) == NULL) {
        /* The id was placed here already, by atoll_area_create on another thread (this
         * claim raced it): it is this claim's area, with the number placed. */
        status = ATOLL_OK;
        c->num = e.num;
    }
    bool found = status == ATOLL_OK || status == ATOLL_EEXIST;
    if (found)
        atoll__where_learn(w, c->id, &e);
    for (size_t i = 0; i < c->nplacers; i++)
        atoll__send_to(n, c->placers[i],
                       atoll__dir_answer_new(ATOLL__DIR_COOKIE_PLACE, status, c->id,
                                             found ? &e : NULL));
    if (status == ATOLL_OK) {
        /* Recorded here: its state document comes first, then on_create
         * (atoll__area_loaded); what arrives meanwhile keeps waiting in the claim. */
        c->num = e.num; /* the number recorded (this claim's, or one placed for it) */
        c->e = e;
        c->loading = true;
        c->nplacers = 0;
        c->next = w->areas->claims;
        w->areas->claims = c;
        atoll__docs_area_load(w, c->id);
        return;
    }
    atoll__place_count(n, w->index, -1);
    if (status == ATOLL_EEXIST && c->init != NULL)
        ATOLL_LOG(ATOLL_LOG_INFO, "msg=\"area exists already, its creation is dropped\" "
                  "area=\"%s\"", c->id);
    for (atoll__mail *hm = atoll__mail_list_take(&c->held), *next; hm != NULL; hm = next) {
        next = hm->next;
        if (found) {
            hm->area = e.num; /* to where it lives */
            atoll__send_to(n, e.owner, hm);
        } else {
            hm->area = 0;
            atoll__area_mail(w, hm); /* fails: no such area */
        }
    }
    claim_free(c);
}

void
atoll__area_loaded(atoll__worker *w, const char *id, atoll_value *state, uint64_t hash,
                   const char *err)
{
    claim **pp = &w->areas->claims, *c;
    while ((c = *pp) != NULL && !(c->loading && strcmp(c->id, id) == 0))
        pp = &c->next;
    if (c == NULL) {
        atoll_unref(state);
        return;
    }
    *pp = c->next;
    /* Placers that joined while it loaded learn where it lives now. */
    for (size_t i = 0; i < c->nplacers; i++)
        atoll__send_to(w->node, c->placers[i],
                       atoll__dir_answer_new(ATOLL__DIR_COOKIE_PLACE, ATOLL_OK, c->id, &c->e));
    atoll_value *init = c->init;
    c->init = NULL;
    atoll_area *a = NULL;
    if (err == NULL) {
        a = area_build(w, c->id, &c->e, init, state, hash);
    } else {
        atoll_unref(init);
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"area refused: its stored state cannot be used\" "
                  "area=\"%s\" error=\"%s\"", c->id, err);
        /* Out of the directory again, so that a later try can place it anew. */
        atoll__dir *d = atoll__dir_of_worker(w);
        d->ops->cas_owner(d, c->id, c->e.epoch, NULL, atoll__addr_make(w->node->id, w->index), 0);
        atoll__where_forget(w, c->id, c->e.epoch);
        atoll__place_count(w->node, w->index, -1);
    }
    for (atoll__mail *hm = atoll__mail_list_take(&c->held), *next; hm != NULL; hm = next) {
        next = hm->next;
        hm->area = c->num; /* entries that came without the number */
        if (a == NULL)
            hm->status = ATOLL__ENTER_CLAIMS; /* refused: no retry */
        atoll__area_mail(w, hm); /* to the area, or failed when it was refused */
    }
    claim_free(c);
}

void
atoll__area_claims_fini(atoll__worker *w)
{
    for (claim *c = w->areas->claims, *next; c != NULL; c = next) {
        next = c->next;
        claim_free(c);
    }
    w->areas->claims = NULL;
}

void
atoll__area_fail_mail(atoll__worker *w, atoll__mail *m, const char *why)
{
    if (m->type == ATOLL_MAIL_AREA_REQ && m->msg_type == ATOLL_MSG_REQUEST)
        atoll__answer_client_error(w, m->session, atoll__session_worker(m->session), m->request_id, 500, why);
    else if (m->type == ATOLL_MAIL_AREA_CALL && m->call_id != 0)
        atoll__proxy_answer(w, m->at, m->call_id, ATOLL_ECANCELED, NULL);
    atoll__mail_free(m);
}

void
atoll__area_undeliverable(atoll__worker *w, atoll__mail *m, int status)
{
    static const char why[] = "the node of this area cannot be reached";
    switch (m->type) {
    case ATOLL_MAIL_AREA_REQ:
        if (status == ATOLL_ECLOSED && m->epoch != 0 &&
            atoll__session_find(w, m->session) != NULL) {
            /* Kept in flight by its session (this worker's): it goes again once the
             * dead node's area is back (failover.c), and is answered then. */
            atoll__mail_free(m);
            return;
        }
        atoll__area_fail_mail(w, m, why);
        return;
    case ATOLL_MAIL_AREA_CALL:
        atoll__area_fail_mail(w, m, why);
        return;
    case ATOLL_MAIL_AREA_ENTER: {
        /* The session's worker (this one) hears the entry failed, as from an area. */
        atoll__buf j = ATOLL__BUF_INIT, pkg = ATOLL__BUF_INIT;
        if (m->reply) {
            atoll__json_put_error(&j, 500, why);
            atoll__put_response(&pkg, m->request_id, atoll__buf_data(&j), j.len);
        }
        atoll__mail *r = atoll__mail_new(ATOLL_MAIL_SESS_ROUTE, pkg.len);
        r->session = m->session;
        if (pkg.len)
            memcpy(r->data, atoll__buf_data(&pkg), pkg.len);
        atoll__buf_fini(&j);
        atoll__buf_fini(&pkg);
        atoll__send_to(w->node, atoll__session_addr(m->session), r);
        break;
    }
    case ATOLL_MAIL_AREA_MIGRATE:
        atoll__migrate_undeliverable(w, m);
        return;
    case ATOLL_MAIL_AREA_FENCE: {
        /* The old owner of a moved area is gone: what the session sent it before the
         * move's route came may be gone too. The session enters the area again and
         * sends again what it has in flight (each runs once: exact.c). */
        atoll__session *s = atoll__session_find(w, m->session);
        if (s != NULL) {
            s->fence_node = 0;
            atoll__area_rejoin(w, s);
        }
        break;
    }
    case ATOLL_MAIL_AREA_MOVE_IN:
        /* Its player was handed over and is lost with the mail: its client is told. */
        atoll__send_to(w->node, atoll__session_addr(m->session),
                       atoll__kick_new(m->session, "move failed"));
        ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"a move to another node was lost\" area=%llu",
                  (unsigned long long)m->area);
        break;
    default:
        /* Output for a gate that is gone (its clients went with it), and notices nobody
         * waits for. */
        ATOLL_LOG(ATOLL_LOG_DEBUG, "msg=\"mail for an unreachable node dropped\" kind=%d",
                  (int)m->type);
        break;
    }
    atoll__mail_free(m);
}

void
atoll__area_destroy_now(atoll__worker *w, atoll_area *a, bool shutdown)
{
    if (a->destroyed)
        return;
    if (a->mig != NULL && atoll__migrate_forget(w, a))
        return;
    a->frozen = false;
    atoll__mail_free_list(atoll__mail_list_take(&a->frozen_held));
    a->destroyed = true;
    a->depth++; /* hooks below must not trigger the deferred work again */
    /* Out of the directory first: whoever resolves the id from now on creates it
     * anew; this worker forgets it at once, the others when told. */
    atoll__dir *d = atoll__dir_of_worker(w);
    d->ops->cas_owner(d, a->id, a->epoch, NULL, atoll__addr_make(w->node->id, w->index), 0);
    atoll__where_forget(w, a->id, a->epoch);
    atoll__place_count(w->node, w->index, -1);
    atoll__map_del(&w->areas->by_num, a->num);
    while (a->first != NULL) {
        atoll_player *p = a->first;
        p->leaving = true;
        atoll__hook_leave(a, p, ATOLL_LEAVE_DESTROY);
        if (!shutdown && !p->disconnected) {
            atoll__send_to(w->node, atoll__session_addr(p->session),
                           atoll__kick_new(p->session, "area closed"));
        }
        atoll__player_detach(a, p);
        atoll__player_unbind(w, p);
        atoll__player_gone(w, p);
    }
    for (atoll__mail *m = atoll__mail_list_take(&a->cmds), *next; m != NULL; m = next) {
        next = m->next;
        atoll__area_fail_mail(w, m, "area closed");
    }
    atoll__proxy_cancel_area(a);
    atoll__timers_close(a);
    atoll__kept_close(a);
    atoll__tick_remove(a);
    if (a->grace) {
        uv_close((uv_handle_t *)a->grace, free_handle);
        a->grace = NULL;
    }
    if (a->type->on_destroy) {
        atoll__fx_begin(w);
        atoll__running run;
        atoll__game_begin(&run, a, "on_destroy", NULL, NULL);
        a->type->on_destroy(a);
        atoll__game_end(&run, a);
        atoll__fx_end(w, true);
    }
    ATOLL_LOG(ATOLL_LOG_DEBUG, "msg=\"area destroyed\" area=\"%s\"", a->id);
    if (!shutdown)
        publish(w, false);
    atoll__docs_area_gone(w, a);
    atoll_unref(a->state);
    atoll__map_fini(&a->by_session);
    atoll__map_fini(&a->by_uid);
    atoll__free(a);
}

void
atoll__areas_shutdown(atoll__worker *w)
{
    while (w->areas->by_num.len > 0) {
        for (size_t i = 0; i < w->areas->by_num.cap; i++) {
            if (w->areas->by_num.slots[i].key != 0) {
                atoll__area_destroy_now(w, w->areas->by_num.slots[i].value, true);
                break;
            }
        }
    }
    for (size_t i = 0; i < w->areas->forwards.cap; i++)
        if (w->areas->forwards.slots[i].key != 0)
            atoll__free(w->areas->forwards.slots[i].value);
    atoll__map_fini(&w->areas->forwards);
    atoll__docs_worker_stopped(w);
}

/* ---- creating and destroying ---------------------------------------------------------- */

int
atoll__area_type_index(const atoll__node *n, const char *type)
{
    for (int i = 0; type != NULL && i < n->ntypes; i++)
        if (strcmp(n->game->api->area_types[i]->name, type) == 0)
            return i;
    return -1;
}

bool
atoll__area_id_valid(const char *id)
{
    size_t len = id ? strlen(id) : 0;
    if (len == 0 || len > ATOLL_AREA_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)id[i] < 0x20 || id[i] == '"' || id[i] == '\\' || id[i] == 0x7f)
            return false;
    return true;
}

int
atoll_area_create(atoll_node *n, const char *type, const char *id, atoll_value *init)
{
    int ti = n && n->game->api ? atoll__area_type_index(n, type) : -1;
    int rc = n == NULL ? ATOLL_EINVAL
             : ti < 0 ? ATOLL_ENOENT
             : !atoll__area_id_valid(id) ? ATOLL_EINVAL : ATOLL_OK;
    atoll__worker *w = atoll__current_worker();
    if (rc == ATOLL_OK && w != NULL && w->node == n &&
        (atoll__where_cached(w, id) != NULL || atoll__where_pending(w, id)))
        rc = ATOLL_EEXIST; /* as far as this worker knows */
    if (rc != ATOLL_OK) {
        atoll_unref(init);
        return rc;
    }
    /* The id is placed in the directory now, on behalf of the worker chosen, before
     * anyone else can look for it: an entry that races this creation finds it there
     * and goes to that worker, which builds the area with its init value first. The
     * AREA_CREATE is sent before the placement is asked, on the same path as the
     * directory's answer, so the worker has it when the answer comes. This worker's
     * lookups of the id wait for the outcome. */
    atoll__addr to;
    if (atoll__place_pick_for(n, id, &to) != ATOLL_OK) {
        atoll_unref(init);
        return ATOLL_ENOENT; /* a cluster with no area node up */
    }
    uint64_t num = atoll__area_num_new(n);
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_AREA_CREATE, 0);
    snprintf(m->from, sizeof m->from, "%s", id);
    m->type_index = ti;
    m->value = init;
    m->area = num;
    m->at = atoll__addr_make(n->id, 0); /* placed by this node */
    if (w != NULL && w->node == n) {
        m->at.worker = (uint16_t)w->index;
        m->call_id = ATOLL__DIR_COOKIE_PLACE;
        atoll__where_placing(w, id);
    }
    atoll__send_to(n, to, m);
    atoll__dir_entry e = {num, to, 0, ti};
    atoll__dir *d = atoll__area_node_of(n)->dir;
    d->ops->place(d, id, &e, e.owner, ATOLL__DIR_COOKIE_CLAIM);
    return ATOLL_OK;
}

void
atoll__area_takeover(atoll__worker *w, const char *id, int ti)
{
    atoll__node *n = w->node;
    atoll__addr to;
    if (atoll__place_pick_for(n, id, &to) != ATOLL_OK) {
        ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"no area node to take over an area\" area=\"%s\"", id);
        return;
    }
    /* Unplaced: the node it reaches claims the id (a new number, a new epoch) and loads
     * its state; entries that come meanwhile join the claim. */
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_AREA_CREATE, 0);
    snprintf(m->from, sizeof m->from, "%s", id);
    m->type_index = ti;
    m->at = atoll__addr_make(n->id, w->index);
    atoll__send_to(n, to, m);
    ATOLL_LOG(ATOLL_LOG_INFO, "msg=\"area of a dead node given a new owner\" area=\"%s\" node=%u",
              id, (unsigned)to.node);
}

void
atoll_area_destroy(atoll_area *a)
{
    if (a == NULL || a->destroyed)
        return;
    a->destroy_requested = true;
    if (a->depth == 0)
        atoll__area_destroy_now(a->worker, a, false);
}

/* ---- stats ----------------------------------------------------------------------------- */

static void
publish(atoll__worker *w, bool tick)
{
    /* Ticks come every 100 ms; rates and maxima cover the last whole second. */
    static __thread unsigned calls;
    bool second = tick && ++calls % 10 == 0;
    if (second)
        atoll__where_tick(w);
    w->areas->scratch_stats.len = 0;
    for (size_t i = 0; i < w->areas->by_num.cap; i++) {
        if (w->areas->by_num.slots[i].key == 0)
            continue;
        atoll_area *a = w->areas->by_num.slots[i].value;
        atoll_area_stats st = {0};
        memcpy(st.id, a->id, sizeof st.id);
        snprintf(st.type, sizeof st.type, "%s", a->type->name);
        st.worker = w->index;
        st.players = a->nplayers;
        st.messages = a->messages;
        st.handler_ns = a->handler_ns;
        st.ticks = a->tick_count;
        st.tick_ns_max = a->tick_ns_max;
        st.tick_late_ns_max = a->tick_late_max;
        st.queue_depth = a->ncmds;
        st.slow = a->slow;
        if (second) {
            a->messages_per_s = (double)(a->messages - a->messages_last);
            a->messages_last = a->messages;
            a->tick_ns_max = 0;
            a->tick_late_max = 0;
        }
        st.messages_per_s = a->messages_per_s;
        atoll__buf_append(&w->areas->scratch_stats, &st, sizeof st);
    }
    atoll__stats_publish(w->node, w->index, (const atoll_area_stats *)atoll__buf_data(&w->areas->scratch_stats),
                         w->areas->scratch_stats.len / sizeof(atoll_area_stats));
}

void
atoll__areas_publish(atoll__worker *w)
{
    publish(w, true);
}

size_t
atoll_node_areas(atoll_node *n, atoll_area_stats *out, size_t cap)
{
    if (n == NULL || atoll__area_node_of(n) == NULL)
        return 0;
    return atoll__stats_list(n, out, cap);
}

/* ---- accessors --------------------------------------------------------------------------- */

atoll_node *atoll_area_node(const atoll_area *a) { return a ? atoll__node_of(a) : NULL; }
const char *atoll_area_id(const atoll_area *a) { return a ? a->id : NULL; }
const char *atoll_area_type_name(const atoll_area *a) { return a ? a->type->name : NULL; }
atoll_value *
atoll_area_state(atoll_area *a)
{
    if (a == NULL)
        return NULL;
    atoll__docs_touch_area(a);
    return a->state;
}

void *atoll_area_udata(const atoll_area *a) { return a ? a->udata : NULL; }
void atoll_area_set_udata(atoll_area *a, void *udata) { if (a) a->udata = udata; }
size_t atoll_area_player_count(const atoll_area *a) { return a ? a->nplayers : 0; }
atoll_player *atoll_area_first(const atoll_area *a) { return a ? a->first : NULL; }
atoll_player *atoll_area_next(const atoll_player *p) { return p ? p->next : NULL; }
const char *atoll_player_id(const atoll_player *p) { return p ? p->uid : NULL; }
int atoll_player_disconnected(const atoll_player *p) { return p != NULL && p->disconnected; }
atoll_area *atoll_player_area(const atoll_player *p) { return p ? p->area : NULL; }
atoll_value *
atoll_player_data(atoll_player *p)
{
    if (!atoll__player_ok(p, "atoll_player_data"))
        return NULL;
    atoll__docs_touch_player(p);
    return p->data;
}

atoll_area *atoll_req_area(const atoll_req *r) { return r ? r->area : NULL; }
atoll_player *atoll_req_player(const atoll_req *r) { return r ? r->player : NULL; }
const char *atoll_req_route(const atoll_req *r) { return r ? r->route : NULL; }
const char *atoll_req_from(const atoll_req *r) { return r && r->kind == ATOLL__REQ_CALL ? r->from : NULL; }

atoll_value *
atoll_req_body(atoll_req *r)
{
    if (r == NULL)
        return NULL;
    if (r->body == NULL) {
        if (r->body_len > 0)
            r->body = atoll_parse((const char *)r->body_bytes, r->body_len, NULL, 0);
        if (atoll_typeof(r->body) != ATOLL_OBJECT) {
            atoll_unref(r->body);
            r->body = atoll_object();
        }
    }
    return r->body;
}


/* MOVE_IN's player on the wire: {session worker u32, uid (u16 n, n bytes), resume nonce
 * (16 bytes), persisted u8 (0 or 1), document hash u64, data (u32 n, n bytes of JSON
 * object)}. Its held list is empty and no move waits on it: a player
 * moves only once fenced. */
int
atoll__area_move_encode(const atoll__mail *m, atoll__buf *out)
{
    const atoll_player *p = m->payload;
    size_t n = strlen(p->uid);
    atoll__wire_put_u32(out, (uint32_t)p->session_worker);
    atoll__wire_put_u16(out, (uint16_t)n);
    atoll__buf_append(out, p->uid, n);
    atoll__buf_append(out, p->resume_nonce, sizeof p->resume_nonce);
    atoll__buf_push(out, p->persisted ? 1 : 0);
    atoll__wire_put_u64(out, p->doc_hash);
    atoll__wire_put_u64(out, p->doc_epoch);
    atoll__exact_put_data(out, p); /* with the requests it ran: they go with it */
    return ATOLL_OK;
}

int
atoll__area_move_decode(atoll__mail *m, const uint8_t *bytes, size_t len)
{
    atoll__wire_reader r = {bytes, len, false};
    uint32_t sw, n;
    uint16_t ulen;
    uint8_t persisted;
    uint64_t hash, doc_epoch;
    const uint8_t *uid, *nonce;
    atoll_value *data = NULL;
    if (!atoll__wire_get_u32(&r, &sw) || !atoll__wire_get_u16(&r, &ulen) || ulen == 0 ||
        ulen > ATOLL_UID_MAX || !atoll__wire_get_bytes(&r, ulen, &uid) ||
        memchr(uid, '\0', ulen) != NULL ||
        !atoll__wire_get_bytes(&r, ATOLL__RESUME_NONCE, &nonce) ||
        !atoll__wire_get_u8(&r, &persisted) || persisted > 1 ||
        !atoll__wire_get_u64(&r, &hash) || !atoll__wire_get_u64(&r, &doc_epoch) ||
        !atoll__wire_get_u32(&r, &n) ||
        !atoll__wire_get_json(&r, n, &data) || r.left != 0 || atoll_typeof(data) != ATOLL_OBJECT) {
        atoll_unref(data);
        return ATOLL_EPROTO;
    }
    char id[ATOLL_UID_MAX + 1];
    memcpy(id, uid, ulen);
    id[ulen] = '\0';
    atoll_player *p = atoll__player_new(id, m->session, (int)sw);
    atoll_unref(p->data);
    p->data = data;
    atoll__exact_take(p, p->data);
    memcpy(p->resume_nonce, nonce, ATOLL__RESUME_NONCE);
    p->persisted = persisted != 0;
    p->doc_hash = hash;
    /* One above the epoch it was written with where it came from: a late write of the
     * node it left is older than any of this one's. */
    p->doc_epoch = doc_epoch < UINT64_MAX ? doc_epoch + 1 : doc_epoch;
    m->payload = p;
    return ATOLL_OK;
}
