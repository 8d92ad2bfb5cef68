/* proto.h -- internal contract of src/proto: the Pomelo client protocol codec.
 *
 * No I/O here: decoders take bytes and return items, encoders append to an
 * atoll__buf. The layers, byte by byte (see docs/protocol/client.md):
 *
 *   package  = type(1) | length(3, big-endian) | body(length)
 *   message  = flag(1) | id(LEB128 varint, request/response only)
 *                      | route(request/notify/push only: 1-byte len + UTF-8, or 2-byte code)
 *                      | body(rest)
 *   flag     = bit0 route compressed, bits1-3 type (0 request, 1 notify, 2 response,
 *              3 push), bit4 "gzip" marker (tolerated on input, never written)
 *
 * Every decoder here consumes untrusted bytes: it has named limits (limits.h), unit
 * tests (tests/unit/proto_test.c) and a fuzz target (tests/fuzz/).
 */
#ifndef ATOLL_PROTO_H
#define ATOLL_PROTO_H

#include "../core/core.h"
#include "../core/text.h"
#include "limits.h"

#include <stdbool.h>
#include <sys/types.h>

/* ---- package layer ------------------------------------------------------------ */

enum {
    ATOLL_PKG_HANDSHAKE = 1,
    ATOLL_PKG_HANDSHAKE_ACK = 2,
    ATOLL_PKG_HEARTBEAT = 3,
    ATOLL_PKG_DATA = 4,
    ATOLL_PKG_KICK = 5,
};

typedef struct atoll__pkg {
    int type;            /* 1..5 */
    uint32_t len;        /* body length */
    const uint8_t *body; /* points into the caller's bytes; NULL when len == 0 */
} atoll__pkg;

/* atoll__pkg_parse reads one package from p[0..n).
 * Returns the bytes it spans (> 0) when a whole package is there, 0 when more bytes
 * are needed, ATOLL_EPROTO when the type is not 1..5, ATOLL_ELIMIT when the declared
 * body is longer than max_body. Type and length are checked as soon as the 4 header
 * bytes are there, so a bad header fails before its body arrives. */
ssize_t atoll__pkg_parse(const uint8_t *p, size_t n, uint32_t max_body, atoll__pkg *out);

/* Writes a 4-byte package header. len must be <= ATOLL_PKG_BODY_CEILING. */
void atoll__pkg_header(uint8_t out[4], int type, uint32_t len);

/* Appends a whole package (header + body) to b. */
void atoll__pkg_put(atoll__buf *b, int type, const void *body, size_t len);

/* ---- message layer ------------------------------------------------------------ */

enum {
    ATOLL_MSG_REQUEST = 0,
    ATOLL_MSG_NOTIFY = 1,
    ATOLL_MSG_RESPONSE = 2,
    ATOLL_MSG_PUSH = 3,
};

typedef struct atoll__msg {
    int type;            /* ATOLL_MSG_* */
    bool compressed;     /* route given as a code */
    uint32_t id;         /* request/response only, else 0 */
    uint16_t route_code; /* when compressed */
    const char *route;   /* when not compressed: points into the input, not NUL-terminated */
    size_t route_len;
    const uint8_t *body; /* rest of the message; may be empty */
    size_t body_len;
} atoll__msg;

/* atoll__msg_decode decodes the body of a DATA package. Returns ATOLL_OK or
 * ATOLL_EPROTO (empty input, type > 3, id longer than 5 bytes or > UINT32_MAX, route
 * running past the end, compressed response) or ATOLL_EUTF8 (route not UTF-8).
 * Pointers in out point into p. */
int atoll__msg_decode(const uint8_t *p, size_t n, atoll__msg *out);

/* LEB128 varint of a uint32: at most 5 bytes. Returns the bytes written. */
size_t atoll__varint_put(uint8_t out[5], uint32_t v);

/* Bytes of one encoded message (without the package header). */
/* The body a response can carry: body itself when the response fits one package, else
 * (logged) {"code":500,"message":"response too large"}; *len is updated. */
const void *atoll__response_fit(uint32_t id, const void *body, size_t *len);
/* Package size, header included, of a push; 0 (logged) when it cannot be one package. */
size_t atoll__push_pkg_size(const char *route, size_t rlen, uint16_t code, size_t len);
size_t atoll__msg_size(int type, uint32_t id, size_t route_len, uint16_t route_code,
                       size_t body_len);

/* Message encoders: each appends one whole DATA package (header included) to b.
 * route_code != 0 writes the compressed form. Bodies must not be empty toward C
 * clients (libpomelo2 rejects them); callers pass "{}" when there is nothing. */
void atoll__msg_put_response(atoll__buf *b, uint32_t id, const void *body, size_t len);
void atoll__msg_put_push(atoll__buf *b, const char *route, size_t route_len, uint16_t route_code,
                         const void *body, size_t len);
void atoll__msg_put_request(atoll__buf *b, uint32_t id, const char *route, size_t route_len,
                            uint16_t route_code, const void *body, size_t len);
void atoll__msg_put_notify(atoll__buf *b, const char *route, size_t route_len,
                           uint16_t route_code, const void *body, size_t len);

/* ---- route dictionary --------------------------------------------------------- */

/* The dictionary maps routes to 16-bit codes. Pomelo numbers handler routes 1..N in
 * JavaScript string order, then push routes N+1...; dictVersion is
 * base64(MD5(JSON of {route: code, ...})). Built once at start, read-only afterwards,
 * shared by all workers. */
typedef struct atoll__dict atoll__dict;

/* Builds the dictionary from handler routes and push routes (duplicates ignored).
 * Returns NULL when there are more than 65535 routes. */
atoll__dict *atoll__dict_new(const char *const *handler_routes, size_t nhandler,
                             const char *const *push_routes, size_t npush);
void atoll__dict_free(atoll__dict *d);
/* The same, with hidden routes after the push routes: they have codes (the node's own
 * use) but are in no dictionary sent to clients and not in dictVersion. */
atoll__dict *atoll__dict_new_hidden(const char *const *handler_routes, size_t nhandler,
                                    const char *const *push_routes, size_t npush,
                                    const char *const *hidden_routes, size_t nhidden);
/* Codes in use (1..count), and of them the ones clients see (1..public). */
size_t atoll__dict_count(const atoll__dict *d);
size_t atoll__dict_public(const atoll__dict *d);
/* Code of a route, 0 when it has none. */
uint16_t atoll__dict_code(const atoll__dict *d, const char *route, size_t len);
/* Route of a code (NUL-terminated), NULL when unknown. */
const char *atoll__dict_route(const atoll__dict *d, uint16_t code);
const char *atoll__dict_version(const atoll__dict *d);

/* ---- handshake ------------------------------------------------------------------ */

typedef struct atoll__handshake {
    char type[32];         /* sys.type, truncated, "" when absent */
    char version[32];      /* sys.version */
    char dict_version[64]; /* sys.dictVersion, "" when absent */
} atoll__handshake;

/* atoll__handshake_parse checks a client handshake body: valid JSON (at most
 * ATOLL_HANDSHAKE_MAX bytes, ATOLL_JSON_MAX_DEPTH deep) whose "sys" is truthy.
 * Returns ATOLL_OK, ATOLL_ELIMIT (too long), ATOLL_EJSON (not JSON or not an object)
 * or ATOLL_EPROTO (no truthy sys). Pomelo answers every error with {"code":500}. */
int atoll__handshake_parse(const uint8_t *p, size_t n, atoll__handshake *out);

/* atoll__handshake_reply appends the whole HANDSHAKE package answering a client:
 * {"code":200,"sys":{"heartbeat":H,"dict":...,"routeToCode":...,"codeToRoute":...,
 * "dictVersion":...,"useDict":true}} in Pomelo's key order. heartbeat_s <= 0 omits
 * "heartbeat"; dict NULL omits the dictionary; a client whose dictVersion equals the
 * dictionary's gets only "useDict":true. */
void atoll__handshake_reply(atoll__buf *b, int heartbeat_s, const atoll__dict *dict,
                            const char *client_dict_version);

/* Compares dotted version numbers ("0.3.5-release" reads as 0.3.5; a missing part is
 * 0): < 0, 0 or > 0 like strcmp. For the client-version gate (Pomelo's checkClient),
 * which answers an older client {"code":501}. */
int atoll__version_cmp(const char *a, const char *b);
/* True when v is one or more dot-separated decimal numbers (a valid gate setting). */
bool atoll__version_valid(const char *v);

/* Appends a HANDSHAKE package {"code":<code>} (500 or 501). */
void atoll__handshake_error(atoll__buf *b, int code);

/* Appends a KICK package {"reason":"<reason>"} (reason JSON-escaped). */
void atoll__kick_put(atoll__buf *b, const char *reason);

#endif /* ATOLL_PROTO_H */
