/* where.c -- where areas live, as one worker knows it: a cache of directory entries
 * checked by epoch, and the lookups in flight with what waits on them.
 *
 * A worker asks the directory (node/directory.h) only on a miss; many waiters on one
 * id share one lookup. An area this worker is placing (atoll_area_create) is a lookup
 * too, so the worker that creates an area and then calls or moves a player into it
 * finds it (read your own writes). The cache is corrected three ways: the directory's
 * invalidations (DIR_INVALIDATE after a write, dropping entries of that epoch or
 * older), a larger epoch learned from any answer, and `moved`: a worker that does not
 * have an area answers so, and the sender forgets the entry and asks again
 * (docs/design/directory.md).
 */
#include "area.h"

#include <stdio.h>

/* The head of a record kept by area id. */
typedef struct by_id {
    atoll__strmap_node node; /* key: id */
    char id[ATOLL_AREA_ID_MAX + 1];
} by_id;

typedef struct cached {
    by_id head;
    atoll__dir_entry e;
} cached;

/* An invalidation that found nothing to drop: an answer still on its way may carry the
 * entry it invalidates (the directory's answers and its invalidations travel different
 * paths, mailbox or outbox, and can arrive in either order). Kept about a second. */
typedef struct tombstone {
    by_id head;
    uint64_t epoch;
} tombstone;

#define TOMBSTONES_MAX 4096 /* per worker; past it the oldest second is dropped early */

/* Mail by id to one area on this worker's own queue, not yet routed. */
typedef struct queued {
    by_id head;
    uint32_t count;
} queued;

typedef struct waiter {
    struct waiter *next;
    atoll__where_fn fn;
    atoll__mail *mail;
    uint64_t arg;
} waiter;

typedef struct lookup {
    by_id head;
    bool resolving;          /* a resolve was sent */
    bool placing;            /* this worker is placing the id: only its answer settles */
    waiter *first, *last;
} lookup;

/* The record of id in m, made zeroed (size bytes) when there is none; *made says so. */
static void *
record_of(atoll__map *m, const char *id, size_t size, bool *made)
{
    by_id *r = atoll__strmap_get(m, id);
    *made = r == NULL;
    if (r == NULL) {
        r = atoll__calloc(1, size);
        snprintf(r->id, sizeof r->id, "%s", id);
        r->node.key = r->id;
        atoll__strmap_put(m, &r->node);
    }
    return r;
}

atoll__dir *
atoll__dir_of_worker(const atoll__worker *w)
{
    return atoll__area_node_of(w->node)->dir;
}

const atoll__dir_entry *
atoll__where_cached(atoll__worker *w, const char *id)
{
    cached *c = atoll__strmap_get(&w->areas->where, id);
    return c ? &c->e : NULL;
}

void
atoll__where_learn(atoll__worker *w, const char *id, const atoll__dir_entry *e)
{
    tombstone *t = atoll__strmap_get(&w->areas->tombstones, id);
    if (t != NULL && e->epoch <= t->epoch)
        return; /* invalidated already: an answer that arrived after the invalidation */
    bool made;
    cached *c = record_of(&w->areas->where, id, sizeof *c, &made);
    if (!made && c->e.epoch > e->epoch)
        return; /* an older answer that arrived late */
    c->e = *e;
}

void
atoll__where_forget(atoll__worker *w, const char *id, uint64_t epoch)
{
    cached *c = atoll__strmap_get(&w->areas->where, id);
    if (c != NULL && c->e.epoch <= epoch)
        atoll__free(atoll__strmap_del(&w->areas->where, id));
}

void
atoll__where_forget_node(atoll__worker *w, int node)
{
    atoll__map *m = &w->areas->where;
    char (*ids)[ATOLL_AREA_ID_MAX + 1] = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < m->cap; i++) {
        for (atoll__strmap_node *sn = m->slots[i].key ? m->slots[i].value : NULL; sn; sn = sn->next) {
            cached *c = (cached *)sn;
            if (c->e.owner.node != node)
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                ids = atoll__realloc(ids, cap * sizeof *ids);
            }
            snprintf(ids[n++], sizeof ids[0], "%s", c->head.id);
        }
    }
    for (size_t i = 0; i < n; i++)
        atoll__free(atoll__strmap_del(m, ids[i]));
    atoll__free(ids);
}

bool
atoll__where_pending(atoll__worker *w, const char *id)
{
    lookup *l = atoll__strmap_get(&w->areas->lookups, id);
    return l != NULL && l->placing;
}

static lookup *
lookup_get(atoll__worker *w, const char *id)
{
    bool made;
    return record_of(&w->areas->lookups, id, sizeof(lookup), &made);
}

void
atoll__where_lookup(atoll__worker *w, const char *id, atoll__where_fn fn, atoll__mail *m,
                    uint64_t arg)
{
    lookup *l = lookup_get(w, id);
    waiter *wt = atoll__malloc(sizeof *wt);
    *wt = (waiter){NULL, fn, m, arg};
    if (l->last)
        l->last->next = wt;
    else
        l->first = wt;
    l->last = wt;
    if (!l->resolving && !l->placing) {
        l->resolving = true;
        atoll__dir *d = atoll__dir_of_worker(w);
        d->ops->resolve(d, id, atoll__addr_make(w->node->id, w->index), ATOLL__DIR_COOKIE_RESOLVE);
    }
}

void
atoll__where_queue(atoll__worker *w, const char *id, int delta)
{
    bool made;
    queued *q = record_of(&w->areas->queued, id, sizeof *q, &made);
    if (delta < 0 && q->count <= (uint32_t)-delta)
        atoll__free(atoll__strmap_del(&w->areas->queued, id));
    else
        q->count += (uint32_t)delta;
}

bool
atoll__where_queued(atoll__worker *w, const char *id)
{
    return w->areas->queued.len > 0 && atoll__strmap_get(&w->areas->queued, id) != NULL;
}

bool
atoll__where_waiting(atoll__worker *w, const char *id)
{
    lookup *l = w->areas->lookups.len > 0 ? atoll__strmap_get(&w->areas->lookups, id) : NULL;
    return l != NULL && l->first != NULL;
}

void
atoll__where_placing(atoll__worker *w, const char *id)
{
    lookup_get(w, id)->placing = true;
}

/* Runs and frees the waiters of l, then l itself. */
static void
settle(atoll__worker *w, lookup *l, int status, const atoll__dir_entry *e)
{
    atoll__strmap_del(&w->areas->lookups, l->head.id);
    for (waiter *wt = l->first, *next; wt != NULL; wt = next) {
        next = wt->next;
        wt->fn(w, status, e, l->head.id, wt->mail, wt->arg);
        atoll__free(wt);
    }
    atoll__free(l);
}

/* DIR_ANSWER: to a resolve of this worker, to a placement it asked for (from the
 * worker that claimed the id), or to a claim of its own (area.c). */
void
atoll__where_answer_mail(atoll__worker *w, atoll__mail *m)
{
    if (m->call_id == ATOLL__DIR_COOKIE_CLAIM) {
        atoll__area_claim_answer(w, m);
        return;
    }
    if ((m->call_id & 7) == ATOLL__DIR_COOKIE_FIND) {
        atoll__resume_found(w, m);
        return;
    }
    if ((m->call_id & 7) == ATOLL__DIR_COOKIE_MIGRATE_IN ||
        (m->call_id & 7) == ATOLL__DIR_COOKIE_RECLAIM) {
        atoll__migrate_dir_answer(w, m);
        return;
    }
    if ((m->call_id & 7) == ATOLL_DIR_COOKIE_TAKEOVER) {
        int ti = (int)(m->call_id >> 3);
        /* Removed from the dead node by this answer's compare-and-set: it is ours to
         * give a new owner. Anything else: somebody else already did. */
        if (m->status == ATOLL_OK && ti < w->node->ntypes)
            atoll__area_takeover(w, m->from, ti);
        atoll__mail_free(m);
        return;
    }
    atoll__dir_entry e = atoll__dir_answer_entry(m);
    bool found = (m->status == ATOLL_OK || m->status == ATOLL_EEXIST) && e.num != 0;
    if (found)
        atoll__where_learn(w, m->from, &e);
    lookup *l = atoll__strmap_get(&w->areas->lookups, m->from);
    if (l != NULL) {
        if (m->call_id == ATOLL__DIR_COOKIE_PLACE)
            l->placing = false;
        else
            l->resolving = false;
        /* A resolve that finds nothing while this worker places the id waits for the
         * placement's answer. */
        if (!l->placing || found)
            settle(w, l, found ? ATOLL_OK : ATOLL_ENOENT, found ? &e : NULL);
    }
    atoll__mail_free(m);
}

void
atoll__where_invalidate_mail(atoll__worker *w, atoll__mail *m)
{
    const atoll__dir_entry *e = atoll__where_cached(w, m->from);
    if (e != NULL && e->epoch > m->epoch) {
        atoll__mail_free(m); /* it knows a newer entry already */
        return;
    }
    atoll__where_forget(w, m->from, m->epoch);
    if (w->areas->tombstones.len >= TOMBSTONES_MAX)
        atoll__where_tick(w);
    bool made;
    tombstone *t = record_of(&w->areas->tombstones, m->from, sizeof *t, &made);
    if (made || t->epoch < m->epoch)
        t->epoch = m->epoch;
    /* Its entry changed: sessions entering it again after its node died try now. */
    atoll__area_rejoin_wake(w, m->from);
    atoll__mail_free(m);
}

void
atoll__where_tick(atoll__worker *w)
{
    /* Reordering lasts a loop turn or two; a second of tombstones is plenty. */
    atoll__strmap_clear(&w->areas->tombstones, atoll__free);
}

static void
free_lookup(void *p)
{
    lookup *l = p;
    for (waiter *wt = l->first, *next; wt != NULL; wt = next) {
        next = wt->next;
        if (wt->mail)
            atoll__mail_free(wt->mail);
        atoll__free(wt);
    }
    atoll__free(l);
}

void
atoll__where_fini(atoll__worker *w)
{
    atoll__strmap_clear(&w->areas->where, atoll__free);
    atoll__strmap_clear(&w->areas->tombstones, atoll__free);
    atoll__strmap_clear(&w->areas->queued, atoll__free);
    atoll__strmap_clear(&w->areas->lookups, free_lookup);
}
