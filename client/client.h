/* client.h -- internals of the client library shared between its files (not installed;
 * the public contract is include/atollc/atollc.h).
 *
 * The server's handshake reply and the route dictionary it carries are decoded in
 * client/reply.c, apart from the connection machinery of client/atollc.c, so that this
 * decoder of untrusted bytes can be called without a socket or a loop: by the unit tests
 * and by the libFuzzer target tests/fuzz/fuzz_client_reply.c.
 */
#ifndef ATOLLC_CLIENT_H
#define ATOLLC_CLIENT_H

#include <atollc/atollc.h>

#include <stddef.h>
#include <stdint.h>

typedef struct atollc__dict_entry {
    char *route; /* owned, NUL-terminated */
    uint16_t code;
} atollc__dict_entry;

/* The server's route dictionary: entries sorted by code, each code once (push routes
 * are resolved by binary search), plus a hash index route -> entry (requests are
 * compressed). All zero is the empty dictionary. */
typedef struct atollc__dict {
    atollc__dict_entry *ents;
    size_t n;
    uint32_t *index; /* entry index + 1; 0 is empty */
    size_t mask;
} atollc__dict;

/* Decodes the body of the server's HANDSHAKE package:
 * {"code":200,"sys":{"heartbeat":H,"routeToCode"|"dict":{route:code},
 * "codeToRoute":{"code":route},...}}. Pure: no I/O, nothing kept but what it returns.
 *
 * Returns ATOLLC_OK; ATOLL_EPROTO when the body is not a JSON object/array or its "code"
 * is not the integer 200 (*heartbeat_s and *dict are then untouched); ATOLL_ENOMEM
 * (*heartbeat_s is set, *dict is left empty). On success *heartbeat_s is sys.heartbeat
 * truncated to whole seconds when it is a number in [1, 86400), else 0, and *dict (empty
 * or holding an earlier dictionary, which is freed) is replaced by the reply's: routeToCode,
 * or dict when routeToCode is not an object, then codeToRoute. Entries with a code outside
 * 1..65535 (or a non-decimal codeToRoute key, or a value of the wrong type) are skipped; a
 * code listed twice keeps its first route; a route listed under two codes is found by
 * atollc__dict_code under the lower one. */
int atollc__reply_parse(const uint8_t *body, size_t len, int *heartbeat_s, atollc__dict *dict);

/* The route of code, or NULL when the dictionary has no such code. The string belongs
 * to the dictionary. */
const char *atollc__dict_find_code(const atollc__dict *d, uint16_t code);

/* The code of the route route[0..len) (any bytes: it need not be NUL-terminated), or 0
 * when the dictionary does not have it. */
uint16_t atollc__dict_code(const atollc__dict *d, const char *route, size_t len);

/* Frees everything the dictionary holds and leaves it empty (all zero). */
void atollc__dict_clear(atollc__dict *d);

#endif /* ATOLLC_CLIENT_H */
