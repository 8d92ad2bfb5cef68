/* dir_local.c -- the in-process directory: the embedded node's single source of truth
 * for where areas live and which player is in which area (directory.h has the
 * operations).
 *
 * One mutex guards two tables. Each operation does its work under the lock and posts
 * its answer as mail, as a directory on another machine would; it is touched when
 * areas are placed or removed, when a worker's cache misses and when players enter or
 * leave an area, never per client request (workers and sessions cache routes). Answers
 * and invalidations are posted under the lock, so the order of writes is the order
 * in which their mail is handed to the mail layer.
 */
#include "directory.h"

#include <time.h>
#include "../core/map.h"

#include <stdio.h>

typedef struct local_area {
    atoll__strmap_node node; /* key: id */
    char id[ATOLL_AREA_ID_MAX + 1];
    atoll__dir_entry e;
} local_area;

typedef struct local_player {
    atoll__strmap_node node; /* key: uid */
    char *uid;
    char area[ATOLL_AREA_ID_MAX + 1];
} local_player;

typedef struct local_dir {
    atoll__dir base;
    pthread_mutex_t lock;
    atoll__map areas;         /* id -> local_area */
    atoll__map players;       /* uid -> local_player */
    uint64_t epoch;           /* the last epoch given */
    atoll__addr *subscribers;
    size_t nsubscribers;
    atoll__dir_post_fn post;
    void *ctx;
} local_dir;

atoll__mail *
atoll__dir_answer_new(uint64_t cookie, int status, const char *id, const atoll__dir_entry *e)
{
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_DIR_ANSWER, 0);
    m->call_id = cookie;
    m->status = status;
    snprintf(m->from, sizeof m->from, "%s", id);
    if (e != NULL) {
        m->area = e->num;
        m->at = e->owner;
        m->epoch = e->epoch;
        m->type_index = e->type_index;
    }
    return m;
}

atoll__dir_entry
atoll__dir_answer_entry(const atoll__mail *m)
{
    atoll__dir_entry e = {m->area, m->at, m->epoch, m->type_index};
    return e;
}

static void
answer(local_dir *d, atoll__addr to, uint64_t cookie, int status, const char *id,
       const atoll__dir_entry *e)
{
    if (cookie != 0)
        d->post(d->ctx, to, atoll__dir_answer_new(cookie, status, id, e));
}

static void
publish(local_dir *d, const char *id, uint64_t epoch)
{
    for (size_t i = 0; i < d->nsubscribers; i++) {
        atoll__mail *m = atoll__mail_new(ATOLL_MAIL_DIR_INVALIDATE, 0);
        snprintf(m->from, sizeof m->from, "%s", id);
        m->epoch = epoch;
        d->post(d->ctx, d->subscribers[i], m);
    }
}

static void
local_resolve(atoll__dir *base, const char *id, atoll__addr reply_to, uint64_t cookie)
{
    local_dir *d = (local_dir *)base;
    pthread_mutex_lock(&d->lock);
    local_area *a = atoll__strmap_get(&d->areas, id);
    answer(d, reply_to, cookie, a ? ATOLL_OK : ATOLL_ENOENT, id, a ? &a->e : NULL);
    pthread_mutex_unlock(&d->lock);
}

static void
local_place(atoll__dir *base, const char *id, const atoll__dir_entry *e, atoll__addr reply_to,
            uint64_t cookie)
{
    local_dir *d = (local_dir *)base;
    pthread_mutex_lock(&d->lock);
    local_area *a = atoll__strmap_get(&d->areas, id);
    if (a != NULL) {
        answer(d, reply_to, cookie, ATOLL_EEXIST, id, &a->e);
    } else {
        a = atoll__calloc(1, sizeof *a);
        snprintf(a->id, sizeof a->id, "%s", id);
        a->node.key = a->id;
        a->e = *e;
        a->e.epoch = ++d->epoch;
        atoll__strmap_put(&d->areas, &a->node);
        answer(d, reply_to, cookie, ATOLL_OK, id, &a->e);
    }
    pthread_mutex_unlock(&d->lock);
}

static void
local_cas_owner(atoll__dir *base, const char *id, uint64_t expected, const atoll__dir_entry *e,
                atoll__addr reply_to, uint64_t cookie)
{
    local_dir *d = (local_dir *)base;
    pthread_mutex_lock(&d->lock);
    local_area *a = atoll__strmap_get(&d->areas, id);
    if (a == NULL) {
        answer(d, reply_to, cookie, ATOLL_ENOENT, id, NULL);
    } else if (a->e.epoch != expected) {
        answer(d, reply_to, cookie, ATOLL_ESTATE, id, &a->e);
    } else {
        uint64_t old = a->e.epoch;
        if (e == NULL) {
            atoll__strmap_del(&d->areas, id);
            atoll__free(a);
            answer(d, reply_to, cookie, ATOLL_OK, id, NULL);
        } else {
            a->e = *e;
            a->e.epoch = ++d->epoch;
            answer(d, reply_to, cookie, ATOLL_OK, id, &a->e);
        }
        publish(d, id, old); /* after the write */
    }
    pthread_mutex_unlock(&d->lock);
}

static void
player_free(void *p)
{
    local_player *lp = p;
    atoll__free(lp->uid);
    atoll__free(lp);
}

static void
local_bind_player(atoll__dir *base, const char *uid, const char *area_id)
{
    local_dir *d = (local_dir *)base;
    pthread_mutex_lock(&d->lock);
    local_player *p = atoll__strmap_get(&d->players, uid);
    if (area_id != NULL && area_id[0] != '\0') {
        if (p == NULL) {
            p = atoll__calloc(1, sizeof *p);
            p->uid = atoll__strndup(uid, strlen(uid));
            p->node.key = p->uid;
            atoll__strmap_put(&d->players, &p->node);
        }
        snprintf(p->area, sizeof p->area, "%s", area_id);
    } else if (p != NULL) {
        atoll__strmap_del(&d->players, uid);
        player_free(p);
    }
    pthread_mutex_unlock(&d->lock);
}

static void
local_find_player(atoll__dir *base, const char *uid, atoll__addr reply_to, uint64_t cookie)
{
    local_dir *d = (local_dir *)base;
    pthread_mutex_lock(&d->lock);
    local_player *p = atoll__strmap_get(&d->players, uid);
    answer(d, reply_to, cookie, p ? ATOLL_OK : ATOLL_ENOENT, p ? p->area : "", NULL);
    pthread_mutex_unlock(&d->lock);
}

static void
local_subscribe(atoll__dir *base, atoll__addr who)
{
    local_dir *d = (local_dir *)base;
    pthread_mutex_lock(&d->lock);
    d->subscribers = atoll__realloc(d->subscribers, (d->nsubscribers + 1) * sizeof *d->subscribers);
    d->subscribers[d->nsubscribers++] = who;
    pthread_mutex_unlock(&d->lock);
}

static void
local_invalidate(atoll__dir *base, const char *id, uint64_t epoch)
{
    local_dir *d = (local_dir *)base;
    pthread_mutex_lock(&d->lock);
    publish(d, id, epoch);
    pthread_mutex_unlock(&d->lock);
}

static void
local_free(atoll__dir *base)
{
    local_dir *d = (local_dir *)base;
    if (d == NULL)
        return;
    atoll__strmap_clear(&d->areas, atoll__free);
    atoll__strmap_clear(&d->players, player_free);
    pthread_mutex_destroy(&d->lock);
    atoll__free(d->subscribers);
    atoll__free(d);
}

static const atoll__dir_ops local_ops = {
    .name = "local",
    .resolve = local_resolve,
    .place = local_place,
    .cas_owner = local_cas_owner,
    .bind_player = local_bind_player,
    .find_player = local_find_player,
    .subscribe = local_subscribe,
    .invalidate = local_invalidate,
    .free = local_free,
};

atoll__dir *
atoll__dir_local_new(atoll__dir_post_fn post, void *ctx)
{
    local_dir *d = atoll__calloc(1, sizeof *d);
    d->base.ops = &local_ops;
    /* Epochs start at the wall clock in microseconds, so those of a node restarted on
     * the same store are newer than the ones its last run wrote with (the store fences
     * older epochs): a run would need more than a million placements a second to catch
     * up with the clock. A cluster's directory keeps its counter in Redis instead. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    d->epoch = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    pthread_mutex_init(&d->lock, NULL);
    d->post = post;
    d->ctx = ctx;
    return &d->base;
}
