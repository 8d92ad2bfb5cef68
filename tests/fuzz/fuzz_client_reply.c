/* fuzz_client_reply.c -- libFuzzer target: the client's decoding of the server's
 * handshake reply (atollc__reply_parse, client/reply.c) and the route dictionary it
 * builds (atollc__dict_find_code, atollc__dict_code, atollc__dict_clear).
 *
 * The input is the body of a HANDSHAKE package as a server would send it. Checks:
 *  - the answer follows the contract, against a reference computed the plain way from
 *    jansson's tree: EPROTO exactly when the body is not JSON or "code" is not the
 *    integer 200; the heartbeat; for every code 1..65535, find_code gives the first
 *    route listed for it (routeToCode, or dict when routeToCode is not an object, then
 *    codeToRoute) or NULL when there is none;
 *  - the dictionary is consistent: the route of every code maps back through dict_code
 *    to a code no higher than it whose route is the same string (the lower code wins for
 *    a route listed twice), and the hash index holds exactly one slot per distinct route;
 *  - lookups of byte strings taken from the input (each quoted run, and short windows of
 *    any bytes, NUL included) never crash and never read past their length (each is
 *    copied to an exact-size allocation); a hit names a route equal to those bytes;
 *  - the dictionary passed in is replaced on success, left as it was on EPROTO, and
 *    atollc__dict_clear frees everything (LeakSanitizer in the fuzz build).
 */
#include "../../client/client.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

/* A dictionary already in place, as a reply could replace one. */
static const char PREFILL[] = "{\"code\":200,\"sys\":{\"routeToCode\":{\"pre.fill\":9}}}";

/* want[code]: the route the reply gives code, pointing into the reference's jansson tree. */
static const char *want[65536];

/* The reference: the reply's contract written out directly on jansson's tree. Returns
 * the expected status and fills want[] and *hb; *root keeps the strings alive. */
static int
reference(const uint8_t *data, size_t size, json_t **root, int *hb)
{
    memset(want, 0, sizeof want);
    *hb = 0;
    *root = size ? json_loadb((const char *)data, size, 0, NULL) : NULL;
    json_t *code = json_object_get(*root, "code");
    if (!json_is_integer(code) || json_integer_value(code) != 200)
        return ATOLL_EPROTO;
    json_t *sys = json_object_get(*root, "sys");
    json_t *h = json_object_get(sys, "heartbeat");
    if (json_is_number(h) && json_number_value(h) >= 1 && json_number_value(h) < 86400)
        *hb = (int)json_number_value(h);
    json_t *r2c = json_object_get(sys, "routeToCode");
    if (!json_is_object(r2c))
        r2c = json_object_get(sys, "dict");
    json_t *c2r = json_object_get(sys, "codeToRoute");
    const char *key;
    json_t *val;
    if (json_is_object(r2c)) {
        json_object_foreach(r2c, key, val) {
            json_int_t c = json_is_integer(val) ? json_integer_value(val) : 0;
            if (c >= 1 && c <= 65535 && want[c] == NULL)
                want[c] = key;
        }
    }
    if (json_is_object(c2r)) {
        json_object_foreach(c2r, key, val) {
            char *end;
            long c = strtol(key, &end, 10); /* the key must be a whole decimal number */
            if (*end == '\0' && c >= 1 && c <= 65535 && json_is_string(val) && want[c] == NULL)
                want[c] = json_string_value(val);
        }
    }
    return ATOLLC_OK;
}

/* Looks up bytes p[0..n) from an exact-size copy, so that reading p[n] is caught. */
static void
lookup_bytes(const atollc__dict *d, const uint8_t *p, size_t n)
{
    char *copy = malloc(n ? n : 1);
    CHECK(copy != NULL);
    if (n)
        memcpy(copy, p, n);
    uint16_t code = atollc__dict_code(d, copy, n);
    if (code != 0) {
        const char *r = atollc__dict_find_code(d, code);
        CHECK(r != NULL && strlen(r) == n && memcmp(r, copy, n) == 0);
    }
    free(copy);
}

static void
check_dict(const atollc__dict *d)
{
    /* the entries: ascending codes in 1..65535, each once, each with a route */
    for (size_t i = 0; i < d->n; i++) {
        CHECK(d->ents[i].route != NULL && d->ents[i].code >= 1);
        CHECK(i == 0 || d->ents[i - 1].code < d->ents[i].code);
    }
    if (d->n == 0) {
        for (uint32_t c = 1; c <= 65535; c++)
            CHECK(want[c] == NULL);
        CHECK(atollc__dict_find_code(d, 1) == NULL && atollc__dict_code(d, "a", 1) == 0);
        return;
    }

    /* every code against the reference, and back through the route index */
    size_t found = 0, winners = 0;
    for (uint32_t c = 1; c <= 65535; c++) {
        const char *r = atollc__dict_find_code(d, (uint16_t)c);
        CHECK((r == NULL) == (want[c] == NULL));
        if (r == NULL)
            continue;
        CHECK(strcmp(r, want[c]) == 0);
        found++;
        uint16_t back = atollc__dict_code(d, r, strlen(r));
        CHECK(back >= 1 && back <= c);
        const char *br = atollc__dict_find_code(d, back);
        CHECK(br != NULL && strcmp(br, r) == 0);
        winners += back == c;
    }
    CHECK(found == d->n);

    /* the index: a power-of-two table at most half full, one slot per distinct route
     * (the winner of each route is the entry dict_code returned above) */
    CHECK(d->index != NULL && ((d->mask + 1) & d->mask) == 0 && d->mask + 1 >= 2 * d->n);
    size_t used = 0;
    for (size_t s = 0; s <= d->mask; s++) {
        uint32_t e = d->index[s];
        if (e == 0)
            continue;
        CHECK(e <= d->n);
        const atollc__dict_entry *ent = &d->ents[e - 1];
        CHECK(atollc__dict_code(d, ent->route, strlen(ent->route)) == ent->code);
        used++;
    }
    CHECK(used == winners);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    atollc__dict d = {0};
    int hb = -7;
    CHECK(atollc__reply_parse((const uint8_t *)PREFILL, sizeof PREFILL - 1, &hb, &d) ==
          ATOLLC_OK);
    CHECK(hb == 0 && d.n == 1);

    json_t *root;
    int want_hb;
    int want_rc = reference(data, size, &root, &want_hb);

    hb = -7;
    int rc = atollc__reply_parse(data, size, &hb, &d);
    CHECK(rc == ATOLLC_OK || rc == ATOLL_EPROTO || rc == ATOLL_ENOMEM);
    if (rc == ATOLL_ENOMEM) {
        CHECK(d.n == 0 && d.ents == NULL && d.index == NULL);
    } else {
        CHECK(rc == want_rc);
    }
    if (rc == ATOLL_EPROTO) {
        /* untouched: the previous dictionary is still there */
        CHECK(hb == -7 && d.n == 1 && strcmp(atollc__dict_find_code(&d, 9), "pre.fill") == 0);
    } else {
        CHECK(hb == want_hb && hb >= 0 && hb < 86400);
    }
    if (rc == ATOLLC_OK)
        check_dict(&d);

    /* Lookups of what the input holds: every quoted run (a route as written, when it has
     * no escapes), then short windows of arbitrary bytes (length from the byte before). */
    for (size_t i = 0; i < size; i++) {
        if (data[i] != '"')
            continue;
        const uint8_t *q = memchr(data + i + 1, '"', size - i - 1);
        if (q == NULL)
            break;
        lookup_bytes(&d, data + i + 1, (size_t)(q - (data + i + 1)));
        i = (size_t)(q - data) - 1; /* the closing quote opens the next run */
    }
    for (size_t i = 0; i + 1 < size; i++) {
        size_t n = data[i] & 31;
        if (n <= size - i - 1)
            lookup_bytes(&d, data + i + 1, n);
    }
    for (size_t i = 0; i + 1 < size; i += 2) {
        uint16_t code = (uint16_t)(data[i] << 8 | data[i + 1]);
        const char *r = atollc__dict_find_code(&d, code);
        CHECK(r == NULL || atollc__dict_code(&d, r, strlen(r)) != 0);
    }

    atollc__dict_clear(&d);
    CHECK(d.n == 0 && d.ents == NULL && d.index == NULL && d.mask == 0);
    CHECK(atollc__dict_find_code(&d, 9) == NULL && atollc__dict_code(&d, "pre.fill", 8) == 0);
    json_decref(root);
    return 0;
}
