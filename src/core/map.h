/* map.h -- an open-addressing hash map from nonzero uint64 keys to pointers.
 *
 * The runtime looks things up by number on its hot paths: areas by id, players by
 * session, calls by id, forwarding entries by session. Keys are already well spread
 * (ids from counters are mixed by the hash below), values are pointers owned
 * elsewhere. Linear probing, at most half full, deletion by backward shift (no
 * tombstones), so a lookup is one or two cache lines. Key 0 means an empty slot.
 *
 * Invariants: cap is 0 or a power of two; len <= cap / 2. One thread at a time.
 */
#ifndef ATOLL_MAP_H
#define ATOLL_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "hash.h"

typedef struct atoll__map_slot {
    uint64_t key;
    void *value;
} atoll__map_slot;

typedef struct atoll__map {
    atoll__map_slot *slots;
    size_t cap, len;
} atoll__map;

#define ATOLL__MAP_INIT {NULL, 0, 0}

/* The value stored under key (nonzero), or NULL. */
void *atoll__map_get(const atoll__map *m, uint64_t key);
/* Stores value under key (nonzero), replacing any; returns the old value or NULL. */
void *atoll__map_put(atoll__map *m, uint64_t key, void *value);
/* Removes key; returns its value or NULL. */
void *atoll__map_del(atoll__map *m, uint64_t key);
void atoll__map_fini(atoll__map *m);

/* String keys go through atoll__hash_str (hash.h); callers keep a chain for the rare
 * collision, or use the string-keyed layer below. */

/* ---- string keys over a map ----
 * Records keyed by a string embed this node first; the map holds, per hash, the chain
 * of records whose keys share it. The record owns its key's storage. */
typedef struct atoll__strmap_node {
    struct atoll__strmap_node *next;
    const char *key;
} atoll__strmap_node;

/* The record with key, or NULL. */
void *atoll__strmap_get(const atoll__map *m, const char *key);
/* Adds record n (n->key set; the caller knows the key is not there yet). */
void atoll__strmap_put(atoll__map *m, atoll__strmap_node *n);
/* Takes the record with key out and returns it (NULL: none). */
void *atoll__strmap_del(atoll__map *m, const char *key);
/* Calls fn on every record (fn may free it), then empties the map. */
void atoll__strmap_clear(atoll__map *m, void (*fn)(void *record));

#endif /* ATOLL_MAP_H */
