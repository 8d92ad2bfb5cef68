/* wire.h -- mail as bytes (wire.c): the encoding of every mail kind that can cross
 * nodes, and its decoder, which takes bytes from another node as untrusted input.
 *
 * A node link carries frames back to back: u32 length (little-endian) of the record
 * that follows, then the record:
 *
 *   u8  version (ATOLL_WIRE_VERSION)
 *   u8  kind (atoll__mail_type)
 *   u32 fields present (ATOLL_WIRE_F_* bits), then each present field in bit order:
 *     SESSION   u64          REQUEST   u32        FLAGS    u8 flags, u8 msg_type
 *     ROUTE     u16          STATUS    i32        WORKER   u16 worker, u16 node
 *     AREA      u64          AREA_OLD  u64, u16 worker, u16 node
 *     CALL_ID   u64          TYPE      u16
 *     UID       u16 n, n bytes      REASON  u8 n, n bytes      FROM  u8 n, n bytes
 *     VALUE     u32 n, n bytes of JSON
 *     SHARED    u32 n, n bytes      SESSIONS u32 count, count x u64
 *     DATA      u32 n, n bytes      PAYLOAD  u32 n, n bytes (the kind's own codec)
 *     EPOCH     u64
 *
 * Every integer is little-endian. The decoder checks the frame against the limits
 * below, every length against what is left, the fields each kind needs (a BIND without
 * a uid, a MOVE_IN without its player are refused), the area type and worker indexes
 * against the node's, strings for NUL bytes, and JSON by parsing it. A bad frame is an
 * error for the link that sent it, never a crash: the node drops that link.
 */
#ifndef ATOLL_NODE_WIRE_H
#define ATOLL_NODE_WIRE_H

#include "mail.h"

#include <sys/types.h>

#define ATOLL_WIRE_VERSION 1
#define ATOLL_WIRE_FRAME_MAX (16u << 20)   /* bytes of one record */
#define ATOLL_WIRE_SESSIONS_MAX (1u << 20) /* sessions of one SESS_PUSH */
#define ATOLL_WIRE_REASON_MAX 47           /* a kick's reason (mail.h: reason[48]) */

enum {
    ATOLL_WIRE_F_SESSION = 1u << 0,
    ATOLL_WIRE_F_REQUEST = 1u << 1,
    ATOLL_WIRE_F_FLAGS = 1u << 2,
    ATOLL_WIRE_F_ROUTE = 1u << 3,
    ATOLL_WIRE_F_STATUS = 1u << 4,
    ATOLL_WIRE_F_WORKER = 1u << 5,
    ATOLL_WIRE_F_AREA = 1u << 6,
    ATOLL_WIRE_F_AREA_OLD = 1u << 7,
    ATOLL_WIRE_F_CALL_ID = 1u << 8,
    ATOLL_WIRE_F_TYPE = 1u << 9,
    ATOLL_WIRE_F_UID = 1u << 10,
    ATOLL_WIRE_F_REASON = 1u << 11,
    ATOLL_WIRE_F_FROM = 1u << 12,
    ATOLL_WIRE_F_VALUE = 1u << 13,
    ATOLL_WIRE_F_SHARED = 1u << 14,
    ATOLL_WIRE_F_SESSIONS = 1u << 15,
    ATOLL_WIRE_F_DATA = 1u << 16,
    ATOLL_WIRE_F_PAYLOAD = 1u << 17,
    ATOLL_WIRE_F_EPOCH = 1u << 18,
    ATOLL_WIRE_F_ALL = (1u << 19) - 1,
};

/* What a decoded record may name on this node. */
typedef struct atoll__wire_limits {
    int nworkers;   /* worker indexes of this node must be below */
    int ntypes;     /* area type indexes must be below */
    int node_id;    /* this node: addresses of its workers are checked against nworkers */
} atoll__wire_limits;

/* Appends one frame holding m (m is not changed). ATOLL_EINVAL for a kind that never
 * crosses nodes (STOP; LINK, which carries frames itself), ATOLL_ELIMIT when it would
 * pass ATOLL_WIRE_FRAME_MAX. */
int atoll__wire_encode(const atoll__mail *m, atoll__buf *out);
/* Decodes the frame at p[0..n): returns the bytes it used and *out the new mail; 0
 * when the frame is not whole yet; a negative ATOLL_E* when it is bad, with *out NULL:
 * ATOLL_ELIMIT when the record's length passes ATOLL_WIRE_FRAME_MAX (nothing of it was
 * read), ATOLL_EPROTO for everything else, a field past its own limit included. */
ssize_t atoll__wire_decode(const uint8_t *p, size_t n, const atoll__wire_limits *lim,
                           atoll__mail **out);

/* Mail for a worker of another node, as a node link carries it (src/cluster): u8
 * ATOLL_WIRE_REC_MAIL, u16 the destination worker, then the frame. A worker gathers a
 * loop turn's records for each node in one buffer, which the link seals as it is. */
#define ATOLL_WIRE_REC_MAIL 1
/* Appends m's record for worker `worker` of another node; on error (as
 * atoll__wire_encode) nothing is appended. */
int atoll__wire_encode_for(const atoll__mail *m, uint16_t worker, atoll__buf *out);

/* Little-endian integers for the codecs of payloads: stored at p, or appended to b. */
void atoll__wire_store_u32(uint8_t *p, uint32_t v);
void atoll__wire_store_u64(uint8_t *p, uint64_t v);
void atoll__wire_put_u16(atoll__buf *b, uint16_t v);
void atoll__wire_put_u32(atoll__buf *b, uint32_t v);
void atoll__wire_put_u64(atoll__buf *b, uint64_t v);

/* A reader over untrusted bytes: every get fails (false) past the end, and then stays
 * failed, so a decoder checks once at the end. */
typedef struct atoll__wire_reader {
    const uint8_t *p;
    size_t left;
    bool bad;
} atoll__wire_reader;

bool atoll__wire_get_u8(atoll__wire_reader *r, uint8_t *v);
bool atoll__wire_get_u16(atoll__wire_reader *r, uint16_t *v);
bool atoll__wire_get_u32(atoll__wire_reader *r, uint32_t *v);
bool atoll__wire_get_u64(atoll__wire_reader *r, uint64_t *v);
/* n bytes in place (borrowed from the input). */
bool atoll__wire_get_bytes(atoll__wire_reader *r, size_t n, const uint8_t **p);
/* A JSON value of n bytes; *v NULL for JSON null (however spaced) or n == 0. */
bool atoll__wire_get_json(atoll__wire_reader *r, size_t n, atoll_value **v);
/* Appends the JSON text of v ("null" for NULL) with its u32 length in front. */
void atoll__wire_put_json(atoll__buf *b, const atoll_value *v);

#endif /* ATOLL_NODE_WIRE_H */
