/* fuzz_value.c -- libFuzzer target: atoll_parse and atoll_dump (src/value/value.c).
 *
 * atoll_parse reads any bytes (a stored state blob, a body, a config) and atoll_dump
 * writes what is sent to clients and other nodes, so beyond "never crashes, never
 * leaks" the target checks that text survives the trip unchanged:
 *   - input that parses dumps to text that parses again into an equal value, and that
 *     second value dumps to the very same bytes (the dump is a fixed point);
 *   - atoll_copy gives an equal value with the same dump;
 *   - every node of the parsed tree reads consistently: strings are valid UTF-8 (by
 *     the codec's own checker) with no NUL byte, so atoll_len equals strlen; an array
 *     has exactly atoll_len items; an object walk meets atoll_len members, each with
 *     a UTF-8 key that atoll_get finds again as the same value; an int reads as the
 *     same real; a real is finite;
 *   - the dump is JSON that the request path's validator (atoll__json_valid) accepts
 *     whenever the nesting is within its fixed stack;
 *   - rejected input leaves an error sentence;
 *   - as a stored document (atoll__value_doc_decode) the same bytes decode exactly when
 *     they are a JSON object without repeated keys, else leave a sentence;
 *   - the undo journal: changes made to the parsed value through the public setters
 *     (derived from the input's bytes) and then rolled back leave it equal to a copy
 *     taken before, however they nest.
 *
 * value.c belongs to the runtime library (atoll), but fuzz targets link only the codec
 * library (atoll_codec: core, proto, jansson). Including the one .c file here builds
 * it into this target alone, without pulling the runtime's threads and sockets into
 * the fuzzer or changing the build files.
 */
#include "../../src/value/value.c"

#include "proto/proto.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

/* Checks the node and everything below it; returns the nesting depth (a scalar is 0,
 * "[]" is 1). Recursion is bounded by jansson's parser, which refuses deeper than
 * 2048 levels. */
static int
check_node(const atoll_value *v)
{
    int depth = 0;
    switch (atoll_typeof(v)) {
    case ATOLL_NULL:
    case ATOLL_BOOL:
        CHECK(atoll_len(v) == 0);
        if (atoll_typeof(v) == ATOLL_BOOL)
            CHECK(atoll_as_bool(v, 2) == 0 || atoll_as_bool(v, 2) == 1);
        else
            CHECK(atoll_as_bool(v, 2) == 2);
        break;
    case ATOLL_INT:
        CHECK(atoll_as_real(v, 0.5) == (double)atoll_as_int(v, 0));
        CHECK(atoll_as_str(v, NULL) == NULL);
        break;
    case ATOLL_REAL: {
        double d = atoll_as_real(v, 0);
        CHECK(d - d == 0); /* finite: NaN and infinities never come out of JSON text */
        /* Two defaults tell "out of int64 range" from a truncation that equals one. */
        int64_t a = atoll_as_int(v, 1), b = atoll_as_int(v, 2);
        if (a != b)
            CHECK(d >= 9223372036854775808.0 || d < -9223372036854775808.0);
        else if (d >= 0)
            CHECK((double)a <= d && d - (double)a < 1);
        else
            CHECK((double)a >= d && (double)a - d < 1);
        break;
    }
    case ATOLL_STRING: {
        const char *s = atoll_as_str(v, NULL);
        CHECK(s != NULL);
        CHECK(strlen(s) == atoll_len(v)); /* no NUL inside */
        CHECK(atoll__utf8_valid((const uint8_t *)s, atoll_len(v)));
        break;
    }
    case ATOLL_ARRAY: {
        size_t n = atoll_len(v);
        for (size_t i = 0; i < n; i++) {
            const atoll_value *item = atoll_at(v, i);
            CHECK(item != NULL);
            int d = check_node(item);
            depth = d > depth ? d : depth;
        }
        CHECK(atoll_at(v, n) == NULL);
        depth++;
        break;
    }
    case ATOLL_OBJECT: {
        size_t n = 0;
        const char *k;
        atoll_value *m;
        for (void *it = atoll_iter(v); atoll_iter_get(it, &k, &m); it = atoll_iter_next(v, it)) {
            CHECK(k != NULL && m != NULL);
            CHECK(atoll__utf8_valid((const uint8_t *)k, strlen(k)));
            CHECK(atoll_get(v, k) == m);
            int d = check_node(m);
            depth = d > depth ? d : depth;
            n++;
        }
        CHECK(n == atoll_len(v));
        depth++;
        break;
    }
    }
    return depth;
}

/* The container the i-th change works on: v itself or one of its members/items. */
static atoll_value *
pick(atoll_value *v, uint8_t b)
{
    atoll_value *c = NULL;
    if (atoll_typeof(v) == ATOLL_OBJECT && atoll_len(v) > 0) {
        size_t k = b % atoll_len(v);
        const char *key;
        for (void *it = atoll_iter(v); it != NULL; it = atoll_iter_next(v, it), k--)
            if (k == 0 && atoll_iter_get(it, &key, &c) == ATOLL_OK)
                break;
    } else if (atoll_typeof(v) == ATOLL_ARRAY && atoll_len(v) > 0) {
        c = atoll_at(v, b % atoll_len(v));
    }
    atoll_type t = atoll_typeof(c);
    return (b & 0x80) && (t == ATOLL_OBJECT || t == ATOLL_ARRAY) ? c : v;
}

static void
check_rollback(atoll_value *v, const uint8_t *data, size_t size)
{
    atoll_value *before = atoll_copy(v);
    atoll__vjournal j = {0};
    atoll__vj_use(&j);
    for (size_t i = 0; i + 1 < size && i < 64; i += 2) {
        atoll_value *c = pick(v, data[i]);
        char key[4] = {(char)('a' + data[i + 1] % 4), 0};
        switch (data[i + 1] % 7) {
        case 0: atoll_set_int(c, key, (int64_t)data[i]); break;
        case 1: atoll_incr(c, key, (int64_t)data[i] - 128); break;
        case 2: atoll_del(c, key); break;
        case 3: atoll_set(c, key, atoll_copy(before)); break;
        case 4: atoll_append(c, atoll_int(data[i])); break;
        case 5: atoll_remove_at(c, data[i] % 4); break;
        case 6: atoll_set_str(c, key, "x"); break;
        }
    }
    atoll__vj_use(NULL);
    atoll__vj_rollback(&j);
    CHECK(atoll_equal(v, before));
    atoll__vj_fini(&j);
    atoll_unref(before);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    atoll__log_threshold = ATOLL_LOG_ERROR;
    char err[256];
    err[0] = '\0';
    char derr[256] = "";
    atoll_value *doc = atoll__value_doc_decode(data, size, derr, sizeof derr);
    CHECK(doc != NULL ? atoll_typeof(doc) == ATOLL_OBJECT : derr[0] != '\0');
    atoll_unref(doc);
    atoll_value *v = atoll_parse((const char *)data, size, err, sizeof err);
    if (v == NULL) {
        CHECK(err[0] != '\0');
        return 0;
    }
    check_rollback(v, data, size);
    int depth = check_node(v);

    size_t n1 = 0;
    char *d1 = atoll_dump(v, &n1);
    CHECK(d1 != NULL && n1 > 0 && strlen(d1) == n1);
    if (depth <= 256)
        CHECK(atoll__json_valid((const uint8_t *)d1, n1, 256));

    atoll_value *w = atoll_parse(d1, n1, err, sizeof err);
    if (w == NULL)
        fprintf(stderr, "dump does not parse: %s\n%.*s\n", err, (int)n1, d1);
    CHECK(w != NULL);
    CHECK(atoll_typeof(w) == atoll_typeof(v));
    CHECK(atoll_equal(v, w) && atoll_equal(w, v));

    size_t n2 = 0;
    char *d2 = atoll_dump(w, &n2);
    CHECK(d2 != NULL && n2 == n1 && memcmp(d1, d2, n1) == 0);

    atoll_value *c = atoll_copy(v);
    CHECK(c != NULL && atoll_equal(c, v));
    size_t n3 = 0;
    char *d3 = atoll_dump(c, &n3);
    CHECK(d3 != NULL && n3 == n1 && memcmp(d1, d3, n1) == 0);

    atoll_free(d1);
    atoll_free(d2);
    atoll_free(d3);
    atoll_unref(c);
    atoll_unref(w);
    atoll_unref(v);
    return 0;
}
