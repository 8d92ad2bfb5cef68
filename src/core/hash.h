/* hash.h -- FNV-1a, the one string hash of atoll: the route dictionaries (server and
 * client) and every table keyed by a string (area ids, uids) go through it.
 *
 * Header-only, so the client library (which links no server code) uses the same
 * function. FNV-1a is short, has no state, and spreads the short ASCII keys atoll hashes
 * (routes, ids) well enough for tables kept at most half full; keys come from the game
 * or the client, and a table that a client fills (the client's dictionary) is bounded
 * by the handshake limits, so hash flooding is not a concern worth a keyed hash here.
 */
#ifndef ATOLL_HASH_H
#define ATOLL_HASH_H

#include <stddef.h>
#include <stdint.h>

/* FNV-1a (64 bits) of n bytes. */
static inline uint64_t
atoll__hash_bytes(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* Of a NUL-terminated string, never 0 (0 marks an empty slot in atoll__map). */
static inline uint64_t
atoll__hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    while (*s) {
        h ^= (unsigned char)*s++;
        h *= 1099511628211ULL;
    }
    return h ? h : 1;
}

#endif /* ATOLL_HASH_H */
