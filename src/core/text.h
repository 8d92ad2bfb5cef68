/* text.h -- UTF-8 and JSON text without allocation: the checks on the request path and
 * the writers of JSON strings and error answers (text.c). Below the protocol and the
 * values, which both use them.
 */
#ifndef ATOLL_TEXT_H
#define ATOLL_TEXT_H

#include "core.h"

/* Strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool atoll__utf8_valid(const uint8_t *p, size_t n);
/* The value of one hexadecimal digit (either case), or -1. */
int atoll__hex_digit(uint8_t c);

/* atoll__json_valid checks that p[0..n) is one RFC 8259 JSON text (surrounding
 * whitespace allowed) with strings in valid UTF-8 and nesting at most max_depth
 * (values above 256, the size of its fixed stack, count as 256).
 * It allocates nothing and runs in one pass: it is on the path of every request. */
bool atoll__json_valid(const uint8_t *p, size_t n, int max_depth);

/* Appends s to b as a JSON string literal (with quotes), escaping as JSON requires. */
void atoll__json_put_string(atoll__buf *b, const char *s, size_t n);
/* Appends {"code":code,"message":"<msg escaped>"}: the error answer Pomelo clients read. */
void atoll__json_put_error(atoll__buf *b, int code, const char *msg);


#endif /* ATOLL_TEXT_H */
