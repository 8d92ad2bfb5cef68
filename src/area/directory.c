/* directory.c -- the embedded directory: which area lives on which worker, which
 * player is in which area, and the stats each owner publishes.
 *
 * It is the node's single source of truth (docs/design/architecture.md, invariant 5):
 * placing an area records it here before anything is sent to it, so two sessions
 * entering the same new area at once agree on its owner. One mutex guards it; it is touched on area
 * creation and removal, on entries and moves, when a call resolves a target, and ten
 * times a second per worker for stats, never per client request (sessions cache their
 * route). In a cluster the same functions are backed by Redis.
 */
#include "area.h"

#include <stdio.h>

typedef struct dir_area {
    struct dir_area *next;       /* same hash */
    char id[ATOLL_AREA_ID_MAX + 1];
    atoll__dir_info info;
    atoll_value *init;           /* for on_create, until the owner takes it */
    atoll_area_stats stats;
} dir_area;

typedef struct dir_player {
    struct dir_player *next;
    char *uid;
    char area[ATOLL_AREA_ID_MAX + 1];
} dir_player;

struct atoll__directory {
    pthread_mutex_t lock;
    atoll__map areas;            /* hash(id) -> dir_area chain */
    atoll__map by_num;           /* area number -> dir_area */
    atoll__map players;          /* hash(uid) -> dir_player chain */
    size_t nareas;
    int nworkers;
    int node_id;                 /* the top bits of the area numbers it gives */
    uint32_t *load;              /* areas per worker */
    uint64_t next_num;
};

struct atoll__directory *
atoll__dir_new(int nworkers, int node_id)
{
    struct atoll__directory *d = atoll__calloc(1, sizeof *d);
    d->node_id = node_id;
    pthread_mutex_init(&d->lock, NULL);
    d->nworkers = nworkers;
    d->load = atoll__calloc((size_t)nworkers, sizeof *d->load);
    return d;
}

void
atoll__dir_free(struct atoll__directory *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->areas.cap; i++)
        for (dir_area *e = d->areas.slots[i].key ? d->areas.slots[i].value : NULL, *next; e;
             e = next) {
            next = e->next;
            atoll_unref(e->init);
            atoll__free(e);
        }
    for (size_t i = 0; i < d->players.cap; i++)
        for (dir_player *e = d->players.slots[i].key ? d->players.slots[i].value : NULL, *next;
             e; e = next) {
            next = e->next;
            atoll__free(e->uid);
            atoll__free(e);
        }
    atoll__map_fini(&d->areas);
    atoll__map_fini(&d->by_num);
    atoll__map_fini(&d->players);
    pthread_mutex_destroy(&d->lock);
    atoll__free(d->load);
    atoll__free(d);
}

static dir_area *
find_area(struct atoll__directory *d, const char *id, uint64_t h)
{
    for (dir_area *e = atoll__map_get(&d->areas, h); e; e = e->next)
        if (strcmp(e->id, id) == 0)
            return e;
    return NULL;
}

int
atoll__dir_place(struct atoll__directory *d, const char *id, int type_index,
                 const char *type_name, atoll_value *init, atoll__dir_info *out)
{
    uint64_t h = atoll__hash_str(id);
    pthread_mutex_lock(&d->lock);
    dir_area *e = find_area(d, id, h);
    if (e != NULL) {
        *out = e->info;
        pthread_mutex_unlock(&d->lock);
        atoll_unref(init);
        return ATOLL_EEXIST;
    }
    /* Least-loaded worker by number of areas; ties go to the lowest index, so two
     * areas created on an idle node land on two workers. */
    int best = 0;
    for (int i = 1; i < d->nworkers; i++)
        if (d->load[i] < d->load[best])
            best = i;
    e = atoll__calloc(1, sizeof *e);
    snprintf(e->id, sizeof e->id, "%s", id);
    e->info.num = (uint64_t)d->node_id << 52 | ++d->next_num;
    e->info.worker = best;
    e->info.type_index = type_index;
    e->info.epoch = 1;
    e->init = init;
    snprintf(e->stats.id, sizeof e->stats.id, "%s", id);
    snprintf(e->stats.type, sizeof e->stats.type, "%s", type_name);
    e->stats.worker = best;
    e->next = atoll__map_get(&d->areas, h);
    atoll__map_put(&d->areas, h, e);
    atoll__map_put(&d->by_num, e->info.num, e);
    d->load[best]++;
    d->nareas++;
    *out = e->info;
    pthread_mutex_unlock(&d->lock);
    return ATOLL_OK;
}

int
atoll__dir_lookup(struct atoll__directory *d, const char *id, atoll__dir_info *out)
{
    uint64_t h = atoll__hash_str(id);
    pthread_mutex_lock(&d->lock);
    dir_area *e = find_area(d, id, h);
    if (e != NULL)
        *out = e->info;
    pthread_mutex_unlock(&d->lock);
    return e != NULL ? ATOLL_OK : ATOLL_ENOENT;
}

int
atoll__dir_by_num(struct atoll__directory *d, uint64_t num, atoll__dir_info *out,
                  char id[ATOLL_AREA_ID_MAX + 1])
{
    pthread_mutex_lock(&d->lock);
    dir_area *e = atoll__map_get(&d->by_num, num);
    if (e != NULL) {
        *out = e->info;
        memcpy(id, e->id, sizeof e->id);
    }
    pthread_mutex_unlock(&d->lock);
    return e != NULL ? ATOLL_OK : ATOLL_ENOENT;
}

atoll_value *
atoll__dir_take_init(struct atoll__directory *d, const char *id)
{
    uint64_t h = atoll__hash_str(id);
    pthread_mutex_lock(&d->lock);
    dir_area *e = find_area(d, id, h);
    atoll_value *v = NULL;
    if (e != NULL) {
        v = e->init;
        e->init = NULL;
    }
    pthread_mutex_unlock(&d->lock);
    return v;
}

void
atoll__dir_remove(struct atoll__directory *d, const char *id, uint64_t num)
{
    uint64_t h = atoll__hash_str(id);
    pthread_mutex_lock(&d->lock);
    dir_area *head = atoll__map_get(&d->areas, h), *prev = NULL;
    for (dir_area *e = head; e; prev = e, e = e->next) {
        if (strcmp(e->id, id) != 0 || e->info.num != num)
            continue;
        if (prev)
            prev->next = e->next;
        else if (e->next)
            atoll__map_put(&d->areas, h, e->next);
        else
            atoll__map_del(&d->areas, h);
        atoll__map_del(&d->by_num, num);
        d->load[e->info.worker]--;
        d->nareas--;
        atoll_unref(e->init);
        atoll__free(e);
        break;
    }
    pthread_mutex_unlock(&d->lock);
}

void
atoll__dir_set_player(struct atoll__directory *d, const char *uid, const char *area_id)
{
    uint64_t h = atoll__hash_str(uid);
    pthread_mutex_lock(&d->lock);
    dir_player *head = atoll__map_get(&d->players, h), *prev = NULL, *e;
    for (e = head; e; prev = e, e = e->next)
        if (strcmp(e->uid, uid) == 0)
            break;
    if (area_id[0] != '\0') {
        if (e == NULL) {
            e = atoll__calloc(1, sizeof *e);
            e->uid = atoll__strndup(uid, strlen(uid));
            e->next = head;
            atoll__map_put(&d->players, h, e);
        }
        snprintf(e->area, sizeof e->area, "%s", area_id);
    } else if (e != NULL) {
        if (prev)
            prev->next = e->next;
        else if (e->next)
            atoll__map_put(&d->players, h, e->next);
        else
            atoll__map_del(&d->players, h);
        atoll__free(e->uid);
        atoll__free(e);
    }
    pthread_mutex_unlock(&d->lock);
}

void
atoll__dir_publish(struct atoll__directory *d, const atoll_area_stats *st)
{
    uint64_t h = atoll__hash_str(st->id);
    pthread_mutex_lock(&d->lock);
    dir_area *e = find_area(d, st->id, h);
    if (e != NULL)
        e->stats = *st;
    pthread_mutex_unlock(&d->lock);
}

size_t
atoll__dir_list(struct atoll__directory *d, atoll_area_stats *out, size_t cap)
{
    size_t k = 0;
    pthread_mutex_lock(&d->lock);
    for (size_t i = 0; i < d->areas.cap; i++) {
        if (d->areas.slots[i].key == 0)
            continue;
        for (dir_area *e = d->areas.slots[i].value; e; e = e->next) {
            if (k < cap)
                out[k] = e->stats;
            k++;
        }
    }
    pthread_mutex_unlock(&d->lock);
    return k;
}
