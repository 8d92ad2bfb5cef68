/* dict.c -- the route dictionary: routes <-> 16-bit codes, and Pomelo's dictVersion.
 *
 * Pomelo numbers handler routes 1..N in JavaScript's default sort order (UTF-16 code
 * units), then the push routes N+1.... We sort with strcmp: byte order of UTF-8 equals
 * code-point order, which differs from UTF-16 order only between characters past
 * U+FFFF and U+E000..U+FFFF; routes are ASCII in practice.
 *
 * dictVersion = base64(MD5(JSON text of {"route":code,...} in code order)), which
 * reproduces Pomelo's value exactly, so a client that cached a Pomelo dictionary can
 * be told "unchanged" by an atoll node serving the same routes.
 *
 * Built once at start; read-only afterwards, so all workers share it without locks.
 */
#include "proto.h"
#include "../core/hash.h"

#include <openssl/evp.h>
#include <stdlib.h>

struct atoll__dict {
    char **routes;     /* routes[code - 1] */
    size_t n;
    size_t npublic;    /* codes 1..npublic are the clients'; hidden routes follow */
    uint16_t *slots;   /* open-addressing hash: code, 0 = empty */
    size_t nslots;     /* power of two, >= 2n */
    char version[32];  /* base64 of 16 bytes = 24 chars */
};

static int
cmp_route(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
insert_slot(atoll__dict *d, size_t i)
{
    size_t s = atoll__hash_bytes(d->routes[i], strlen(d->routes[i])) & (d->nslots - 1);
    while (d->slots[s])
        s = (s + 1) & (d->nslots - 1);
    d->slots[s] = (uint16_t)(i + 1);
}

atoll__dict *
atoll__dict_new(const char *const *handler_routes, size_t nhandler,
                const char *const *push_routes, size_t npush)
{
    return atoll__dict_new_hidden(handler_routes, nhandler, push_routes, npush, NULL, 0);
}

atoll__dict *
atoll__dict_new_hidden(const char *const *handler_routes, size_t nhandler,
                       const char *const *push_routes, size_t npush,
                       const char *const *hidden_routes, size_t nhidden)
{
    if (nhandler + npush + nhidden > 65535)
        return NULL;
    atoll__dict *d = atoll__calloc(1, sizeof *d);
    d->routes = atoll__calloc(nhandler + npush + nhidden + 1, sizeof(char *));
    for (size_t i = 0; i < nhandler; i++)
        d->routes[d->n++] = atoll__strndup(handler_routes[i], strlen(handler_routes[i]));
    qsort(d->routes, d->n, sizeof(char *), cmp_route);
    /* Sorted: duplicates of a handler route are neighbours. */
    size_t kept = 0;
    for (size_t i = 0; i < d->n; i++) {
        if (kept > 0 && strcmp(d->routes[kept - 1], d->routes[i]) == 0)
            atoll__free(d->routes[i]);
        else
            d->routes[kept++] = d->routes[i];
    }
    d->n = kept;

    d->nslots = 16;
    while (d->nslots < 2 * (d->n + npush + nhidden))
        d->nslots *= 2;
    d->slots = atoll__calloc(d->nslots, sizeof(uint16_t));
    for (size_t i = 0; i < d->n; i++)
        insert_slot(d, i);
    /* Push routes follow, unless a route already has a code (linear overall). */
    for (size_t i = 0; i < npush; i++) {
        if (atoll__dict_code(d, push_routes[i], strlen(push_routes[i])) != 0)
            continue;
        d->routes[d->n] = atoll__strndup(push_routes[i], strlen(push_routes[i]));
        insert_slot(d, d->n++);
    }

    /* dictVersion over the JSON text of the route -> code object. */
    atoll__buf json = ATOLL__BUF_INIT;
    atoll__buf_push(&json, '{');
    for (size_t i = 0; i < d->n; i++) {
        char num[16];
        if (i)
            atoll__buf_push(&json, ',');
        atoll__json_put_string(&json, d->routes[i], strlen(d->routes[i]));
        int k = snprintf(num, sizeof num, ":%zu", i + 1);
        atoll__buf_append(&json, num, (size_t)k);
    }
    atoll__buf_push(&json, '}');
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(atoll__buf_data(&json), json.len, md, &mdlen, EVP_md5(), NULL);
    EVP_EncodeBlock((unsigned char *)d->version, md, (int)mdlen);
    atoll__buf_fini(&json);
    d->npublic = d->n;
    /* Hidden routes last, in no dictionary a client sees and not in dictVersion: codes
     * for the node's own use (calls between areas to internal handlers). */
    for (size_t i = 0; i < nhidden; i++) {
        if (atoll__dict_code(d, hidden_routes[i], strlen(hidden_routes[i])) != 0)
            continue;
        d->routes[d->n] = atoll__strndup(hidden_routes[i], strlen(hidden_routes[i]));
        insert_slot(d, d->n++);
    }
    return d;
}

void
atoll__dict_free(atoll__dict *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->n; i++)
        atoll__free(d->routes[i]);
    atoll__free(d->routes);
    atoll__free(d->slots);
    atoll__free(d);
}

size_t
atoll__dict_count(const atoll__dict *d)
{
    return d ? d->n : 0;
}

size_t
atoll__dict_public(const atoll__dict *d)
{
    return d ? d->npublic : 0;
}

uint16_t
atoll__dict_code(const atoll__dict *d, const char *route, size_t len)
{
    if (d == NULL || d->n == 0)
        return 0;
    size_t s = atoll__hash_bytes(route, len) & (d->nslots - 1);
    while (d->slots[s]) {
        const char *r = d->routes[d->slots[s] - 1];
        /* route comes from the network and may hold NUL bytes: compare lengths first
         * (strnlen reads at most len + 1 bytes of r) rather than strncmp, which stops at
         * a NUL and let r[len] read past a shorter stored route. */
        if (strnlen(r, len + 1) == len && memcmp(r, route, len) == 0)
            return d->slots[s];
        s = (s + 1) & (d->nslots - 1);
    }
    return 0;
}

const char *
atoll__dict_route(const atoll__dict *d, uint16_t code)
{
    if (d == NULL || code == 0 || code > d->n)
        return NULL;
    return d->routes[code - 1];
}

const char *
atoll__dict_version(const atoll__dict *d)
{
    return d ? d->version : "";
}
