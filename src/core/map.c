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

/* ---- string keys ---------------------------------------------------------------------- */

void *
atoll__strmap_get(const atoll__map *m, const char *key)
{
    for (atoll__strmap_node *n = atoll__map_get(m, atoll__hash_str(key)); n; n = n->next)
        if (strcmp(n->key, key) == 0)
            return n;
    return NULL;
}

void
atoll__strmap_put(atoll__map *m, atoll__strmap_node *n)
{
    uint64_t h = atoll__hash_str(n->key);
    n->next = atoll__map_get(m, h);
    atoll__map_put(m, h, n);
}

void *
atoll__strmap_del(atoll__map *m, const char *key)
{
    uint64_t h = atoll__hash_str(key);
    atoll__strmap_node *head = atoll__map_get(m, h), *prev = NULL;
    for (atoll__strmap_node *n = head; n; prev = n, n = n->next) {
        if (strcmp(n->key, key) != 0)
            continue;
        if (prev)
            prev->next = n->next;
        else if (n->next)
            atoll__map_put(m, h, n->next);
        else
            atoll__map_del(m, h);
        n->next = NULL;
        return n;
    }
    return NULL;
}

void
atoll__strmap_clear(atoll__map *m, void (*fn)(void *record))
{
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key == 0)
            continue;
        for (atoll__strmap_node *n = m->slots[i].value, *next; n; n = next) {
            next = n->next;
            if (fn)
                fn(n);
        }
    }
    atoll__map_fini(m);
}
