/* map.c -- the uint64 -> pointer hash map of map.h. */
#include "map.h"
#include "core.h"

static inline size_t
mix(uint64_t k)
{
    /* Counters (1, 2, 3...) and session ids share low bits; a multiply spreads them. */
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (size_t)k;
}

static atoll__map_slot *
find(const atoll__map *m, uint64_t key)
{
    size_t mask = m->cap - 1;
    size_t i = mix(key) & mask;
    while (m->slots[i].key != 0 && m->slots[i].key != key)
        i = (i + 1) & mask;
    return &m->slots[i];
}

void *
atoll__map_get(const atoll__map *m, uint64_t key)
{
    if (m->cap == 0)
        return NULL;
    atoll__map_slot *s = find(m, key);
    return s->key == key ? s->value : NULL;
}

static void
grow(atoll__map *m)
{
    atoll__map_slot *old = m->slots;
    size_t oldcap = m->cap;
    m->cap = oldcap ? oldcap * 2 : 16;
    m->slots = atoll__calloc(m->cap, sizeof *m->slots);
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].key != 0)
            *find(m, old[i].key) = old[i];
    atoll__free(old);
}

void *
atoll__map_put(atoll__map *m, uint64_t key, void *value)
{
    if ((m->len + 1) * 2 > m->cap)
        grow(m);
    atoll__map_slot *s = find(m, key);
    if (s->key == key) {
        void *old = s->value;
        s->value = value;
        return old;
    }
    s->key = key;
    s->value = value;
    m->len++;
    return NULL;
}

void *
atoll__map_del(atoll__map *m, uint64_t key)
{
    if (m->cap == 0)
        return NULL;
    atoll__map_slot *s = find(m, key);
    if (s->key != key)
        return NULL;
    void *value = s->value;
    size_t mask = m->cap - 1;
    size_t i = (size_t)(s - m->slots);
    m->slots[i].key = 0;
    m->len--;
    /* Backward shift: move later entries of the run into the hole when their home
     * slot is at or before it, so probes never stop early. */
    for (size_t j = (i + 1) & mask; m->slots[j].key != 0; j = (j + 1) & mask) {
        size_t home = mix(m->slots[j].key) & mask;
        int move = (j > i) ? (home <= i || home > j) : (home <= i && home > j);
        if (move) {
            m->slots[i] = m->slots[j];
            m->slots[j].key = 0;
            i = j;
        }
    }
    return value;
}

void
atoll__map_fini(atoll__map *m)
{
    atoll__free(m->slots);
    m->slots = NULL;
    m->cap = m->len = 0;
}

uint64_t
atoll__hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    while (*s) {
        h ^= (uint8_t)*s++;
        h *= 1099511628211ULL;
    }
    return h ? h : 1;
}
