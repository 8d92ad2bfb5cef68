/* ws.h -- internal contract of the WebSocket codec (RFC 6455) and the HTTP upgrade.
 *
 * No I/O here, like src/proto: the connection code feeds bytes and acts on events.
 *
 * Reading (server side, and the client library's side with expect_masked = false):
 * atoll__ws_reader_next parses one frame in place in a mutable buffer. When a frame is
 * whole it unmasks the payload in place, so an unfragmented binary message is handed
 * out as a pointer into the caller's buffer with no copy. Fragmented messages are
 * gathered into the reader's own buffer (bounded by max_message). Control frames
 * (ping, pong, close) may arrive between fragments and are reported at once.
 *
 * Frame header, byte by byte (RFC 6455 5.2):
 *
 *   byte 0: FIN(1) RSV1-3(3) opcode(4)
 *   byte 1: MASK(1) len7(7)      len7 126 => 2-byte BE length follows,
 *                                len7 127 => 8-byte BE length follows (top bit 0)
 *   [ext len] [mask key 4 bytes, when MASK] payload (XOR mask[i % 4] when masked)
 *
 * Errors close the connection with a status code: 1002 protocol error (reserved bits,
 * bad opcode, unmasked client frame, fragmented or long control frame, continuation
 * without a start, a close code that must never be sent; non-minimal length is
 * tolerated), 1003 unsupported data (a text message: Pomelo speaks binary only), 1007
 * a close reason that is not UTF-8, 1009 message too big (or too many fragments, or no
 * memory to gather them).
 */
#ifndef ATOLL_NET_WS_H
#define ATOLL_NET_WS_H

#include "../core/core.h"
#include "../proto/limits.h"

#include <stdbool.h>
#include <sys/types.h>

enum {
    ATOLL_WS_OP_CONT = 0x0,
    ATOLL_WS_OP_TEXT = 0x1,
    ATOLL_WS_OP_BINARY = 0x2,
    ATOLL_WS_OP_CLOSE = 0x8,
    ATOLL_WS_OP_PING = 0x9,
    ATOLL_WS_OP_PONG = 0xA,
};

enum {
    ATOLL_WS_CLOSE_NORMAL = 1000,
    ATOLL_WS_CLOSE_GOING_AWAY = 1001,
    ATOLL_WS_CLOSE_PROTOCOL = 1002,
    ATOLL_WS_CLOSE_UNSUPPORTED = 1003,
    ATOLL_WS_CLOSE_NO_STATUS = 1005,
    ATOLL_WS_CLOSE_INVALID = 1007,
    ATOLL_WS_CLOSE_TOO_BIG = 1009,
};

typedef enum atoll__ws_event_type {
    ATOLL_WS_EV_NONE = 0, /* consumed bytes (e.g. a non-final fragment); nothing to do */
    ATOLL_WS_EV_MESSAGE,  /* a whole binary message: data/len */
    ATOLL_WS_EV_PING,     /* answer with a pong carrying data/len */
    ATOLL_WS_EV_PONG,     /* ignore */
    ATOLL_WS_EV_CLOSE,    /* peer closes: close_code (1005 when none), data/len = reason */
} atoll__ws_event_type;

typedef struct atoll__ws_event {
    atoll__ws_event_type type;
    const uint8_t *data; /* valid until the next call on the reader or the buffer */
    size_t len;
    int close_code;
} atoll__ws_event;

typedef struct atoll__ws_reader {
    bool expect_masked;   /* server: true (clients must mask); client: false */
    size_t max_message;   /* largest whole message, in bytes */
    bool in_message;      /* a fragmented message is being gathered */
    int nfragments;
    atoll__buf assembly;  /* gathered fragments */
    int error_code;       /* close code to send after an error (1002/1003/1009) */
} atoll__ws_reader;

void atoll__ws_reader_init(atoll__ws_reader *r, bool expect_masked, size_t max_message);
void atoll__ws_reader_fini(atoll__ws_reader *r);

/* atoll__ws_reader_next parses at most one frame from p[0..n), which it may modify
 * (unmasking in place). Returns the bytes consumed (> 0) and fills ev; 0 when the
 * frame is not whole yet; ATOLL_EPROTO or ATOLL_ELIMIT on a violation, with
 * r->error_code set to the close status to send (ATOLL_ENOMEM, with 1009, when the
 * fragments cannot be gathered). The size check uses the header alone, so an
 * oversized frame fails before its payload arrives. */
ssize_t atoll__ws_reader_next(atoll__ws_reader *r, uint8_t *p, size_t n, atoll__ws_event *ev);

/* Writes a frame header for a payload of len bytes into out (2 to 14 bytes), returns
 * its length. mask NULL: unmasked (server to client). With a mask the caller XORs the
 * payload itself (atoll__ws_mask). */
size_t atoll__ws_frame_header(uint8_t out[14], int opcode, bool fin, uint64_t len,
                              const uint8_t mask[4]);
/* Header length for a payload of len bytes, unmasked. */
size_t atoll__ws_header_len(uint64_t len);
/* XORs p[0..n) with mask, starting at key byte `offset % 4`. */
void atoll__ws_mask(uint8_t *p, size_t n, const uint8_t mask[4], size_t offset);

/* Appends a whole unmasked close frame (status + reason, reason <= 123 bytes). */
void atoll__ws_put_close(atoll__buf *b, int code, const char *reason);

/* ---- HTTP upgrade -------------------------------------------------------------- */

/* True when the first bytes of a connection look like an HTTP request (GET, POST, PUT,
 * DELETE, HEAD: Pomelo's switcher rule). n may be short; returns false for a raw
 * Pomelo stream, which always starts with byte 0x01. */
bool atoll__http_looks_like(const uint8_t *p, size_t n);

typedef struct atoll__http_upgrade {
    char key[64];         /* Sec-WebSocket-Key, trimmed */
    bool deflate_offered; /* the client offered permessage-deflate (we decline it) */
} atoll__http_upgrade;

/* atoll__http_upgrade_parse reads an HTTP/1.1 upgrade request head from p[0..n).
 * Returns the head's length (through the blank line) when it is whole and valid; 0
 * when more bytes are needed; ATOLL_ELIMIT when the head passes ATOLL_HTTP_HEAD_MAX
 * or has more than ATOLL_HTTP_MAX_HEADERS lines; ATOLL_EPROTO when it is not a GET
 * with Upgrade: websocket, Connection: upgrade, Sec-WebSocket-Version: 13 and a
 * 16-byte base64 Sec-WebSocket-Key. Header names are case-insensitive; any path. */
ssize_t atoll__http_upgrade_parse(const uint8_t *p, size_t n, atoll__http_upgrade *out);

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)), 28 chars + NUL. */
void atoll__ws_accept_key(const char *key, char out[29]);

/* Appends the "101 Switching Protocols" response for a parsed request. */
void atoll__http_put_101(atoll__buf *b, const atoll__http_upgrade *req);
/* Appends a short HTTP error response (400, 426, 503) with Connection: close. */
void atoll__http_put_error(atoll__buf *b, int status, const char *text);

/* Client side: the upgrade request (key is 24 base64 chars) and the check of the
 * server's response head. atoll__http_response_parse returns the head length, 0 for
 * more, ATOLL_ELIMIT past ATOLL_HTTP_HEAD_MAX, ATOLL_EPROTO when it is not a 101 with
 * the right Sec-WebSocket-Accept. */
void atoll__http_put_upgrade_request(atoll__buf *b, const char *host, const char *path,
                                     const char *key);
ssize_t atoll__http_response_parse(const uint8_t *p, size_t n, const char *key);

#endif /* ATOLL_NET_WS_H */
