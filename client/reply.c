/* reply.c -- the client's decoder of the server's handshake reply, and the route
 * dictionary it builds from it (client/client.h is the contract).
 *
 * This is untrusted input: any server, or anything between it and the client, chooses
 * the bytes. It lives apart from client/atollc.c so that it is a pure function of those
 * bytes, which tests/fuzz/fuzz_client_reply.c exercises without a connection. Like the
 * rest of the client library it never aborts on allocation failure (plain malloc and
 * ATOLL_ENOMEM), unlike the server core.
 */
#include "client.h"
#include "../src/core/hash.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void
atollc__dict_clear(atollc__dict *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->ents[i].route);
    free(d->ents);
    free(d->index);
    memset(d, 0, sizeof *d);
}

static int
dict_entry_cmp(const void *a, const void *b)
{
    const atollc__dict_entry *x = a, *y = b;
    return (int)x->code - (int)y->code;
}

const char *
atollc__dict_find_code(const atollc__dict *d, uint16_t code)
{
    atollc__dict_entry key = {NULL, code};
    const atollc__dict_entry *e =
        d->n ? bsearch(&key, d->ents, d->n, sizeof key, dict_entry_cmp) : NULL;
    return e ? e->route : NULL;
}

uint16_t
atollc__dict_code(const atollc__dict *d, const char *route, size_t len)
{
    if (d->index == NULL)
        return 0;
    for (size_t i = atoll__hash_bytes(route, len) & d->mask;; i = (i + 1) & d->mask) {
        uint32_t e = d->index[i];
        if (e == 0)
            return 0;
        /* Not strncmp: it stops at a NUL in route and then ent->route[len] may lie past
         * the end of a shorter entry. Bounding the entry's length first makes any bytes
         * safe to look up (found by fuzz_client_reply). */
        const atollc__dict_entry *ent = &d->ents[e - 1];
        if (strnlen(ent->route, len + 1) == len && memcmp(ent->route, route, len) == 0)
            return ent->code;
    }
}

/* Marks code in the bitmap; true when it was marked already. */
static bool
code_seen(uint64_t *seen, uint16_t code)
{
    uint64_t bit = 1ull << (code & 63);
    bool was = (seen[code >> 6] & bit) != 0;
    seen[code >> 6] |= bit;
    return was;
}

/* Appends route under code unless the code is taken: the first route listed keeps it. */
static int
dict_add(atollc__dict *d, uint64_t *seen, const char *route, uint16_t code)
{
    if (code_seen(seen, code))
        return ATOLL_OK;
    if ((d->ents[d->n].route = strdup(route)) == NULL)
        return ATOLL_ENOMEM;
    d->ents[d->n++].code = code;
    return ATOLL_OK;
}

/* Reads {route: code} (routeToCode or dict) and {"code": route} (codeToRoute) from the
 * handshake reply into the empty d. Entries with a code out of 1..65535 are skipped; a
 * code seen twice keeps its first route. On failure d holds part of the entries.
 *
 * Duplicates of a code are dropped as they are read (a bitmap of the codes taken), which
 * bounds the table at 65535 entries whatever the reply's size and leaves distinct codes
 * for qsort: a server listing many entries in descending order costs n log n, not the
 * n^2 of a stable insertion sort. */
static int
dict_load(atollc__dict *d, json_t *route_to_code, json_t *code_to_route)
{
    size_t cap = json_object_size(route_to_code) + json_object_size(code_to_route);
    if (cap == 0)
        return ATOLL_OK;
    if (cap > 65535)
        cap = 65535;
    d->ents = calloc(cap, sizeof *d->ents);
    if (d->ents == NULL)
        return ATOLL_ENOMEM;
    uint64_t seen[65536 / 64] = {0};
    const char *key;
    json_t *val;
    json_object_foreach(route_to_code, key, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 1 ||
            json_integer_value(val) > 65535)
            continue;
        if (dict_add(d, seen, key, (uint16_t)json_integer_value(val)) != ATOLL_OK)
            return ATOLL_ENOMEM;
    }
    json_object_foreach(code_to_route, key, val) {
        char *end;
        long code = strtol(key, &end, 10);
        if (*end != '\0' || code < 1 || code > 65535 || !json_is_string(val))
            continue;
        if (dict_add(d, seen, json_string_value(val), (uint16_t)code) != ATOLL_OK)
            return ATOLL_ENOMEM;
    }
    if (d->n > 1)
        qsort(d->ents, d->n, sizeof *d->ents, dict_entry_cmp); /* no ties: codes distinct */

    size_t slots = 8;
    while (slots < d->n * 2)
        slots *= 2;
    d->index = calloc(slots, sizeof *d->index);
    if (d->index == NULL)
        return ATOLL_ENOMEM;
    d->mask = slots - 1;
    for (size_t i = 0; i < d->n; i++) {
        const char *r = d->ents[i].route;
        size_t len = strlen(r);
        if (atollc__dict_code(d, r, len) != 0)
            continue; /* a route listed under two codes: the lower code wins */
        size_t s = atoll__hash_bytes(r, len) & d->mask;
        while (d->index[s] != 0)
            s = (s + 1) & d->mask;
        d->index[s] = (uint32_t)i + 1;
    }
    return ATOLL_OK;
}

int
atollc__reply_parse(const uint8_t *body, size_t len, int *heartbeat_s, atollc__dict *dict)
{
    /* Flags 0: the top level must be an object or an array, and strings must not hold
     * NUL, so every route below is a C string. */
    json_t *root = len ? json_loadb((const char *)body, len, 0, NULL) : NULL;
    json_t *code = json_object_get(root, "code");
    if (!json_is_integer(code) || json_integer_value(code) != 200) {
        json_decref(root);
        return ATOLL_EPROTO;
    }
    json_t *sys = json_object_get(root, "sys");
    json_t *hb = json_object_get(sys, "heartbeat");
    *heartbeat_s = 0;
    if (json_is_number(hb) && json_number_value(hb) >= 1 && json_number_value(hb) < 86400)
        *heartbeat_s = (int)json_number_value(hb);
    /* jsclient and Unity servers may send only "dict"; libpomelo2 reads "routeToCode". */
    json_t *r2c = json_object_get(sys, "routeToCode");
    if (!json_is_object(r2c))
        r2c = json_object_get(sys, "dict");
    json_t *c2r = json_object_get(sys, "codeToRoute");
    atollc__dict_clear(dict);
    int r = dict_load(dict, json_is_object(r2c) ? r2c : NULL, json_is_object(c2r) ? c2r : NULL);
    json_decref(root);
    if (r != ATOLL_OK)
        atollc__dict_clear(dict); /* no half-built dictionary */
    return r;
}
