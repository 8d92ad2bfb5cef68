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
    an->dir = atoll__dir_local_new(post, n);
    atoll__resume_key_new(an->resume_key);
    an->nworkers = n->nworkers;
    an->load = atoll__calloc((size_t)n->nworkers, sizeof *an->load);
    an->stats = atoll__calloc((size_t)n->nworkers, sizeof *an->stats);
    for (int i = 0; i < n->nworkers; i++) {
        atomic_init(&an->load[i], 0);
        pthread_mutex_init(&an->stats[i].lock, NULL);
    }
    atomic_init(&an->next_num, 0);
    return an;
}

void
atoll__area_node_free(atoll__area_node *an)
{
    if (an == NULL)
        return;
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
