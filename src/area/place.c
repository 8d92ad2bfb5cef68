/* place.c -- what the area runtime keeps for the whole node besides the directory:
 * placement (which worker should run a new area), area numbers, and the stats each
 * worker publishes for atoll_node_areas.
 *
 * None of it is directory data: in a cluster, placement is the coordinator's (by the
 * load nodes report) and stats are each node's own, while the directory holds only
 * where each area lives. Counters are atomics and stats one lock per worker, taken ten
 * times a second by that worker and when the game lists areas.
 */
#include "area.h"

static void
post(void *ctx, atoll__addr to, atoll__mail *m)
{
    atoll__send_to(ctx, to, m);
}

atoll__area_node *
atoll__area_node_new(atoll__node *n)
{
    atoll__area_node *an = atoll__calloc(1, sizeof *an);
    /* A cluster brings its directory (Redis); the embedded node keeps its own. */
    an->dir = n->dir != NULL ? n->dir : atoll__dir_local_new(post, n);
    an->dir_owned = n->dir == NULL;
    /* Resume tokens of a cluster are checked by whichever gate a client comes back to:
     * their key comes from the cluster's secret. A node alone draws its own. */
    if (n->cluster_key_set)
        atoll__resume_key_derive(an->resume_key, n->cluster_key, sizeof n->cluster_key);
    else
        atoll__resume_key_new(an->resume_key);
    an->nworkers = n->nworkers;
    an->load = atoll__calloc((size_t)n->nworkers, sizeof *an->load);
    an->stats = atoll__calloc((size_t)n->nworkers, sizeof *an->stats);
    for (int i = 0; i < n->nworkers; i++) {
        atomic_init(&an->load[i], 0);
        pthread_mutex_init(&an->stats[i].lock, NULL);
    }
    /* Numbers go on from the wall clock in microseconds (52 bits last 142 years), so a
     * node that restarts under the same node id never gives a number of its last run
     * again: mail or documents of an old area never reach a new one. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    atomic_init(&an->next_num, ((uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u) &
                                   ((1ull << 52) - 1));
    return an;
}

void
atoll__area_node_free(atoll__area_node *an)
{
    if (an == NULL)
        return;
    if (an->dir_owned)
        an->dir->ops->free(an->dir);
    for (int i = 0; i < an->nworkers; i++) {
        pthread_mutex_destroy(&an->stats[i].lock);
        atoll__free(an->stats[i].list);
    }
    atoll__free(an->stats);
    atoll__free(an->load);
    atoll__free(an);
}

int
atoll__place_pick(atoll__node *n)
{
    atoll__area_node *an = atoll__area_node_of(n);
    int best = 0, best_load = atomic_load(&an->load[0]);
    for (int i = 1; i < an->nworkers; i++) {
        int l = atomic_load(&an->load[i]);
        if (l < best_load) {
            best = i;
            best_load = l;
        }
    }
    atomic_fetch_add(&an->load[best], 1);
    return best;
}

int
atoll__place_pick_for(atoll__node *n, const char *id, atoll__addr *out)
{
    if (n->remote != NULL) {
        int rc = n->remote->place(n, id, out);
        if (rc != ATOLL_OK)
            return rc;
        if (out->node != n->id)
            return ATOLL_OK;
    }
    *out = atoll__addr_make(n->id, atoll__place_pick(n));
    return ATOLL_OK;
}

void
atoll__place_count(atoll__node *n, int worker, int delta)
{
    atomic_fetch_add(&atoll__area_node_of(n)->load[worker], delta);
}

uint64_t
atoll__area_num_new(atoll__node *n)
{
    uint64_t c = atomic_fetch_add(&atoll__area_node_of(n)->next_num, 1) + 1;
    return (uint64_t)n->id << 52 | (c & ((1ull << 52) - 1));
}

void
atoll__stats_publish(atoll__node *n, int worker, const atoll_area_stats *list, size_t len)
{
    atoll__stats_slot *s = &atoll__area_node_of(n)->stats[worker];
    pthread_mutex_lock(&s->lock);
    if (len > s->cap) {
        s->cap = len;
        s->list = atoll__realloc(s->list, len * sizeof *s->list);
    }
    if (len > 0)
        memcpy(s->list, list, len * sizeof *list);
    s->len = len;
    pthread_mutex_unlock(&s->lock);
}

size_t
atoll__stats_list(atoll__node *n, atoll_area_stats *out, size_t cap)
{
    atoll__area_node *an = atoll__area_node_of(n);
    size_t k = 0;
    for (int i = 0; i < an->nworkers; i++) {
        atoll__stats_slot *s = &an->stats[i];
        pthread_mutex_lock(&s->lock);
        for (size_t j = 0; j < s->len; j++, k++)
            if (k < cap)
                out[k] = s->list[j];
        pthread_mutex_unlock(&s->lock);
    }
    return k;
}
