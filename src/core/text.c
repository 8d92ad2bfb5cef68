/* text.c -- UTF-8 and JSON validation without allocation, for the request path.
 *
 * Every request body is checked before a handler sees it (Pomelo treats a body that
 * is not JSON as {}), so this runs once per message. A tree-building parser would
 * allocate per node; this is one pass over the bytes with an explicit depth counter
 * and no recursion, which is why it is hand-written (docs/design/dependencies.md).
 */
#include "text.h"

#include <stdio.h>

/* Length of the UTF-8 sequence at p (1..4), or 0 when it is malformed: overlong forms,
 * surrogates (U+D800..U+DFFF) and code points past U+10FFFF are refused (RFC 3629). */
static size_t
utf8_seq(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return 0;
    if (c < 0xE0) {
        if (n < 2 || (p[1] & 0xC0) != 0x80)
            return 0;
        return 2;
    }
    if (c < 0xF0) {
        if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && p[1] < 0xA0)
            return 0; /* overlong */
        if (c == 0xED && p[1] >= 0xA0)
            return 0; /* surrogate */
        return 3;
    }
    if (c < 0xF5) {
        if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && p[1] < 0x90)
            return 0; /* overlong */
        if (c == 0xF4 && p[1] >= 0x90)
            return 0; /* past U+10FFFF */
        return 4;
    }
    return 0;
}

bool
atoll__utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* ASCII fast path, 8 bytes at a time. */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (w & 0x8080808080808080ull)
                break;
            i += 8;
        }
        if (i >= n)
            break;
        size_t k = utf8_seq(p + i, n - i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

/* ---- JSON validator ----------------------------------------------------------------- */

static size_t
skip_ws(const uint8_t *p, size_t n, size_t i)
{
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        i++;
    return i;
}

int
atoll__hex_digit(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A string starting at p[i] == '"'; returns the index after the closing quote, or 0. */
static size_t
scan_string(const uint8_t *p, size_t n, size_t i)
{
    i++;
    while (i < n) {
        uint8_t c = p[i];
        if (c == '"')
            return i + 1;
        if (c < 0x20)
            return 0;
        if (c == '\\') {
            if (++i >= n)
                return 0;
            c = p[i];
            if (c == 'u') {
                if (n - i < 5)
                    return 0;
                for (int k = 1; k <= 4; k++)
                    if (atoll__hex_digit(p[i + k]) < 0)
                        return 0;
                i += 5;
            } else if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' ||
                       c == 'r' || c == 't') {
                i++;
            } else {
                return 0;
            }
        } else if (c < 0x80) {
            i++;
        } else {
            size_t k = utf8_seq(p + i, n - i);
            if (k == 0)
                return 0;
            i += k;
        }
    }
    return 0;
}

/* A number per RFC 8259: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?; 0 on error. */
static size_t
scan_number(const uint8_t *p, size_t n, size_t i)
{
    if (i < n && p[i] == '-')
        i++;
    if (i >= n)
        return 0;
    if (p[i] == '0') {
        i++;
    } else if (p[i] >= '1' && p[i] <= '9') {
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
    } else {
        return 0;
    }
    if (i < n && p[i] == '.') {
        i++;
        if (i >= n || p[i] < '0' || p[i] > '9')
            return 0;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        if (i >= n || p[i] < '0' || p[i] > '9')
            return 0;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
    }
    return i;
}

static size_t
scan_literal(const uint8_t *p, size_t n, size_t i, const char *lit, size_t len)
{
    if (n - i < len || memcmp(p + i, lit, len) != 0)
        return 0;
    return i + len;
}

bool
atoll__json_valid(const uint8_t *p, size_t n, int max_depth)
{
    /* stack[d] is 1 inside an object, 0 inside an array; bounded by max_depth. */
    uint8_t stack[256];
    if (max_depth > (int)sizeof stack)
        max_depth = (int)sizeof stack;
    int depth = 0;
    size_t i = skip_ws(p, n, 0);

    /* The loop alternates between "expect a value" and "after a value". */
value:
    if (i >= n)
        return false;
    switch (p[i]) {
    case '{':
    case '[': {
        if (depth >= max_depth)
            return false;
        bool obj = p[i] == '{';
        stack[depth++] = obj;
        i = skip_ws(p, n, i + 1);
        if (i < n && p[i] == (obj ? '}' : ']')) {
            depth--;
            i++;
            goto after;
        }
        if (obj)
            goto key;
        goto value;
    }
    case '"':
        i = scan_string(p, n, i);
        break;
    case 't':
        i = scan_literal(p, n, i, "true", 4);
        break;
    case 'f':
        i = scan_literal(p, n, i, "false", 5);
        break;
    case 'n':
        i = scan_literal(p, n, i, "null", 4);
        break;
    default:
        i = scan_number(p, n, i);
        break;
    }
    if (i == 0)
        return false;

after:
    i = skip_ws(p, n, i);
    if (depth == 0)
        return i == n;
    if (i >= n)
        return false;
    if (p[i] == ',') {
        i = skip_ws(p, n, i + 1);
        if (stack[depth - 1])
            goto key;
        goto value;
    }
    if (p[i] == (stack[depth - 1] ? '}' : ']')) {
        depth--;
        i++;
        goto after;
    }
    return false;

key:
    if (i >= n || p[i] != '"')
        return false;
    i = scan_string(p, n, i);
    if (i == 0)
        return false;
    i = skip_ws(p, n, i);
    if (i >= n || p[i] != ':')
        return false;
    i = skip_ws(p, n, i + 1);
    goto value;
}

void
atoll__json_put_string(atoll__buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    atoll__buf_reserve(b, n + 2);
    atoll__buf_push(b, '"');
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c == '"' || c == '\\') {
            atoll__buf_push(b, '\\');
            atoll__buf_push(b, c);
        } else if (c < 0x20) {
            const char *esc = NULL;
            switch (c) {
            case '\n': esc = "\\n"; break;
            case '\r': esc = "\\r"; break;
            case '\t': esc = "\\t"; break;
            case '\b': esc = "\\b"; break;
            case '\f': esc = "\\f"; break;
            }
            if (esc) {
                atoll__buf_append(b, esc, 2);
            } else {
                char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                atoll__buf_append(b, u, 6);
            }
        } else {
            atoll__buf_push(b, c);
        }
    }
    atoll__buf_push(b, '"');
}

void
atoll__json_put_error(atoll__buf *b, int code, const char *msg)
{
    char head[48];
    int k = snprintf(head, sizeof head, "{\"code\":%d,\"message\":", code);
    atoll__buf_append(b, head, (size_t)k);
    atoll__json_put_string(b, msg, strlen(msg));
    atoll__buf_push(b, '}');
}
