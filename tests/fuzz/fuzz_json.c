/* fuzz_json.c -- libFuzzer target: the allocation-free UTF-8 and JSON validators and the
 * JSON string writer.
 *
 * Each runs on every request body, so beyond "never crashes" the target checks them
 * against independent definitions:
 *   - atoll__utf8_valid against ref_utf8 below, a decoder written from RFC 3629's
 *     definition (decode the code point, then refuse overlongs, surrogates and values past
 *     U+10FFFF), unlike text.c's table of byte ranges;
 *   - atoll__json_valid at several depth limits: accepted at one limit implies accepted
 *     at every larger one, and for accepted input the smallest limit that accepts is the
 *     nesting depth counted by a plain bracket scan;
 *   - atoll__json_put_string of the input: always valid JSON when the input is UTF-8,
 *     refused by the validator when it is not, and read back by jansson as the input.
 */
#include "proto/proto.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"

static bool
ref_utf8(const uint8_t *p, size_t n)
{
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    size_t i = 0;
    while (i < n) {
        uint32_t c = p[i], cp;
        size_t len;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

/* Deepest bracket nesting outside strings; only meaningful for valid JSON. */
static int
scan_depth(const uint8_t *p, size_t n)
{
    int depth = 0, max = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            max = ++depth > max ? depth : max;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return max;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool utf8 = atoll__utf8_valid(data, size);
    CHECK(utf8 == ref_utf8(data, size));

    static const int limits[] = {0, 1, 2, 3, 8, ATOLL_JSON_MAX_DEPTH, 255, 256};
    bool prev = false;
    int first = -1;
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        bool ok = atoll__json_valid(data, size, limits[i]);
        CHECK(ok || !prev); /* monotonic in the limit */
        if (ok && first < 0)
            first = (int)i;
        prev = ok;
    }
    CHECK(atoll__json_valid(data, size, 100000) == prev); /* clamped to the stack size */
    if (first >= 0) {
        int depth = scan_depth(data, size);
        CHECK(depth <= limits[first] && (first == 0 || depth > limits[first - 1]));
        CHECK(utf8); /* JSON text is UTF-8 */
    }

    atoll__buf b = ATOLL__BUF_INIT;
    atoll__json_put_string(&b, (const char *)data, size);
    const uint8_t *out = atoll__buf_data(&b);
    CHECK(b.len >= size + 2 && out[0] == '"' && out[b.len - 1] == '"');
    CHECK(atoll__json_valid(out, b.len, 0) == utf8);
    if (utf8) {
        json_t *v = json_loadb((const char *)out, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        CHECK(v != NULL && json_is_string(v));
        CHECK(json_string_length(v) == size &&
              (size == 0 || memcmp(json_string_value(v), data, size) == 0));
        json_decref(v);
    }
    atoll__buf_fini(&b);
    return 0;
}
