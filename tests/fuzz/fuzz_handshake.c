/* fuzz_handshake.c -- libFuzzer target: the client handshake, and the JSON validator
 * checked against jansson.
 *
 * The input is a handshake body. atoll__handshake_parse must classify it consistently
 * with its contract (ELIMIT by size alone, EJSON whenever the validator refuses it) and
 * leave NUL-terminated fields; an accepted handshake is answered with
 * atoll__handshake_reply, whose body must be valid JSON.
 *
 * Differential: atoll__json_valid (allocation-free, RFC 8259) against json_loadb with
 * JSON_DECODE_ANY. They agree on every input except where jansson is stricter than the
 * RFC for reasons of its own, which are skipped:
 *   - NUL bytes in the input (jansson's treatment is not the RFC's question);
 *   - nesting deeper than our limit (we refuse by design, jansson goes to 2048);
 *   - numbers that overflow a double ("1e400"): RFC grammar, jansson's numeric_overflow;
 *   - \u escapes of lone surrogates ("\ud800"): RFC grammar, jansson "invalid Unicode";
 *   - "\u0000" inside an object key: jansson cannot store it (null_byte_in_key).
 * JSON_ALLOW_NUL and JSON_DECODE_INT_AS_REAL remove two more jansson-only refusals
 * ("\u0000" in values, integers past 2^63).
 */
#include "proto/proto.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"

/* Nesting depth of a jansson tree, counted as the validator counts it ("[]" is 1).
 * jansson itself stops at 2048 levels, so the recursion is bounded. */
static int
tree_depth(const json_t *v)
{
    int max = 0;
    if (json_is_object(v)) {
        for (void *it = json_object_iter((json_t *)v); it != NULL;
             it = json_object_iter_next((json_t *)v, it)) {
            int d = tree_depth(json_object_iter_value(it));
            max = d > max ? d : max;
        }
        return max + 1;
    }
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            int d = tree_depth(json_array_get(v, i));
            max = d > max ? d : max;
        }
        return max + 1;
    }
    return 0;
}

static void
differential(const uint8_t *data, size_t size, bool ours)
{
    if (memchr(data, 0, size) != NULL)
        return;
    json_error_t err;
    json_t *v = json_loadb((const char *)data, size,
                           JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &err);
    if (v != NULL) {
        if (tree_depth(v) <= ATOLL_JSON_MAX_DEPTH && !ours) {
            fprintf(stderr, "jansson accepts, atoll__json_valid refuses\n");
            abort();
        }
        json_decref(v);
        return;
    }
    enum json_error_code code = json_error_code(&err);
    if (code == json_error_numeric_overflow || code == json_error_null_byte_in_key ||
        strncmp(err.text, "invalid Unicode", 15) == 0)
        return;
    if (ours) {
        fprintf(stderr, "atoll__json_valid accepts, jansson refuses: %s (code %d)\n", err.text,
                (int)code);
        abort();
    }
}

static atoll__dict *
reply_dict(void)
{
    static atoll__dict *d;
    if (d == NULL) {
        static const char *const handlers[] = {"connector.entryHandler.entry",
                                               "chat.chatHandler.send", "a\"b\\c\n.d.e"};
        static const char *const pushes[] = {"onChat"};
        d = atoll__dict_new(handlers, 3, pushes, 1);
    }
    return d;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    atoll__handshake h;
    int rc = atoll__handshake_parse(data, size, &h);
    CHECK(rc == ATOLL_OK || rc == ATOLL_ELIMIT || rc == ATOLL_EJSON || rc == ATOLL_EPROTO);
    CHECK(memchr(h.type, 0, sizeof h.type) && memchr(h.version, 0, sizeof h.version) &&
          memchr(h.dict_version, 0, sizeof h.dict_version));
    if (size > ATOLL_HANDSHAKE_MAX) {
        CHECK(rc == ATOLL_ELIMIT);
    } else {
        bool ours = atoll__json_valid(data, size, ATOLL_JSON_MAX_DEPTH);
        CHECK(rc != ATOLL_ELIMIT);
        if (!ours)
            CHECK(rc == ATOLL_EJSON);
        if (rc == ATOLL_OK || rc == ATOLL_EPROTO)
            CHECK(ours);
        differential(data, size, ours);
    }
    if (rc != ATOLL_OK) {
        CHECK(h.type[0] == 0 && h.version[0] == 0 && h.dict_version[0] == 0);
        return 0;
    }

    /* answer it, as the server would: the reply must be one HANDSHAKE package of JSON */
    atoll__buf b = ATOLL__BUF_INIT;
    atoll__handshake_reply(&b, (int)(size % 5), reply_dict(), h.dict_version);
    atoll__pkg pkg;
    ssize_t r = atoll__pkg_parse(atoll__buf_data(&b), b.len, ATOLL_PKG_BODY_DEFAULT_MAX, &pkg);
    CHECK(r > 0 && (size_t)r == b.len && pkg.type == ATOLL_PKG_HANDSHAKE);
    CHECK(atoll__json_valid(pkg.body, pkg.len, ATOLL_JSON_MAX_DEPTH));
    atoll__buf_fini(&b);
    return 0;
}
