/* link_codec.h -- the bytes of a node link (link_codec.c): the handshake that
 * authenticates both ends with the cluster secret, the sealed (encrypted and
 * authenticated) chunks that follow it, and the records inside a chunk. Pure functions
 * over buffers, no I/O, so that every decoder of a peer's bytes is unit-tested and
 * fuzzed on its own; link.c moves the bytes.
 *
 * DESIGN. One TCP connection per pair of nodes. The connecting node (initiator) sends
 * HELLO, the accepting node (responder) answers HELLO; each HELLO carries a fresh
 * X25519 key (crypto_kx), the sender's node id and name, and a MAC (crypto_auth,
 * HMAC-SHA-512-256) under a key derived from the cluster secret. The responder's MAC
 * covers the initiator's HELLO too, so it cannot be replayed to another connection;
 * the initiator's MAC is checked before the responder answers, so a peer without the
 * secret learns nothing. Session keys come from the key exchange mixed with the
 * secret's key and both HELLOs (a recorded link cannot be read later even with the
 * secret: forward secrecy), one per direction. After its HELLO each side sends a
 * secretstream header (crypto_secretstream_xchacha20poly1305) and then chunks:
 *
 *   u32 length (little-endian) of the ciphertext that follows, then the ciphertext
 *
 * A chunk's plaintext is a run of records, back to back:
 *
 *   u8 kind = 1 MAIL   u16 worker (the destination worker), then one wire frame
 *                      (u32 length + record, src/node/wire.h), kept as bytes
 *   u8 kind = 2 PING   u64 sender's monotonic time in ns
 *   u8 kind = 3 PONG   u64 the time of the PING it answers
 *
 * Every integer is little-endian; link_codec.c's top comment has the HELLO byte by byte
 * and the key schedule. Secretstream makes the chunks of a direction one ordered
 * stream: a chunk dropped, repeated, reordered or changed fails to open. Everything a
 * peer sends is checked against the limits below; any failure is an error for that
 * link alone (link.c drops it with a log line, and never feeds it more bytes).
 *
 * A link is proven only by its first chunk. The initiator's HELLO can be recorded and
 * sent again by someone without the secret: the responder answers it (its MAC is
 * good), but the stranger has no key for the chunks. So a responder must take a link
 * as the peer's (replacing an older link to that node, say) only once a first chunk
 * from it has opened; each side sends one (a PING) right after its secretstream header.
 * That the peer is the node it should be (its id is not our own, its name is the one
 * the registry has for that id) is link.c's to check with *peer.
 */
#ifndef ATOLL_CLUSTER_LINK_CODEC_H
#define ATOLL_CLUSTER_LINK_CODEC_H

#include "../core/core.h"

#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define ATOLL_LINK_MAGIC "ATOLLNK1"            /* 8 bytes, first in every HELLO */
#define ATOLL_LINK_NAME_MAX 63                 /* bytes of a node's name */
#define ATOLL_LINK_HELLO_MAX 256               /* room for one HELLO (its layout makes
                                                * 78 to 140 bytes) */
#define ATOLL_LINK_CHUNK_MAX (17u << 20)       /* plaintext bytes of one chunk */
#define ATOLL_LINK_SECRET_MIN 16               /* bytes of a cluster secret, at least */

/* The key derived from the cluster secret (never the secret itself in memory longer
 * than needed). */
typedef struct atoll__link_key {
    uint8_t k[crypto_auth_KEYBYTES];
} atoll__link_key;

/* Derives the link key from a secret of len bytes (ATOLL_EINVAL when shorter than
 * ATOLL_LINK_SECRET_MIN). */
int atoll__link_key_derive(const char *secret, size_t len, atoll__link_key *out);

/* Who sent a HELLO. */
typedef struct atoll__link_peer {
    uint16_t node;                             /* node id, 1..ATOLL_NODE_ID_MAX */
    char name[ATOLL_LINK_NAME_MAX + 1];        /* NUL-free, not empty */
} atoll__link_peer;

/* One side of a handshake, then of the sealed stream. An initiator's is set up by
 * atoll__link_hello_start; a responder's starts zeroed ({0}, calloc or memset). */
typedef struct atoll__link_crypto {
    bool initiator;
    uint8_t pk[crypto_kx_PUBLICKEYBYTES], sk[crypto_kx_SECRETKEYBYTES]; /* sk is zeroed
                                               * once the exchange is done */
    uint8_t hello_mine[ATOLL_LINK_HELLO_MAX];
    size_t hello_mine_len;
    uint8_t hello_peer[ATOLL_LINK_HELLO_MAX];
    size_t hello_peer_len;
    /* The session keys; a responder holds the raw keys of the exchange here between
     * reading the initiator's HELLO and answering it (keys is still false then). */
    uint8_t tx_key[crypto_secretstream_xchacha20poly1305_KEYBYTES];
    uint8_t rx_key[crypto_secretstream_xchacha20poly1305_KEYBYTES];
    crypto_secretstream_xchacha20poly1305_state tx, rx;
    bool keys;                                 /* tx_key/rx_key are the session keys */
    bool tx_ready, rx_ready;                   /* the headers were made / read */
} atoll__link_crypto;

/* Initiator: sets *c up (whatever it held) and appends its HELLO to out. me must be
 * valid (node id 1..ATOLL_NODE_ID_MAX, a name as atoll__link_peer says): the settings
 * were checked, so anything else is a bug and aborts. */
void atoll__link_hello_start(atoll__link_crypto *c, const atoll__link_key *key,
                             const atoll__link_peer *me, atoll__buf *out);
/* Either side: reads the peer's HELLO from p[0..n). Returns the bytes it used, 0 when
 * it is not whole yet, or ATOLL_EPROTO (not a HELLO, another version, the role of
 * this side, bad lengths, a bad name, node id 0 or above ATOLL_NODE_ID_MAX, a public
 * key that gives no shared key, a second HELLO) or ATOLL_EAUTH (the MAC does not
 * verify: another secret, or an answer made for another connection). Bytes that
 * already break the format are refused as soon as they come, before the HELLO is
 * whole. On success *peer says who it is. The responder then answers with
 * atoll__link_hello_answer; the initiator has its keys. */
ssize_t atoll__link_hello_read(atoll__link_crypto *c, const atoll__link_key *key,
                               const uint8_t *p, size_t n, atoll__link_peer *peer);
/* Responder, after reading the initiator's HELLO: appends its own to out; both sides
 * have their keys from here. me as for atoll__link_hello_start; called at any other
 * time, it aborts (a bug of the caller). */
void atoll__link_hello_answer(atoll__link_crypto *c, const atoll__link_key *key,
                              const atoll__link_peer *me, atoll__buf *out);

/* Appends this direction's secretstream header (once, after the HELLOs; before the
 * keys, or twice, it aborts: a bug of the caller). */
void atoll__link_tx_header(atoll__link_crypto *c, atoll__buf *out);
/* Reads the peer's header: the bytes used (its size), 0 when not whole yet, or
 * ATOLL_EPROTO (no keys yet, or a header already read). */
ssize_t atoll__link_rx_header(atoll__link_crypto *c, const uint8_t *p, size_t n);
/* Seals p[0..n) (a run of records, n <= ATOLL_LINK_CHUNK_MAX; not inside out) as one
 * chunk appended to out (length + ciphertext). ATOLL_ELIMIT when n is too big,
 * ATOLL_EINVAL before atoll__link_tx_header. */
int atoll__link_seal(atoll__link_crypto *c, const uint8_t *p, size_t n, atoll__buf *out);
/* Opens the chunk at p[0..n) into plain (cleared first; not holding p): the bytes
 * used, 0 when not whole yet, ATOLL_ELIMIT when its length passes
 * ATOLL_LINK_CHUNK_MAX + crypto_secretstream_xchacha20poly1305_ABYTES (nothing past
 * the length read), ATOLL_EAUTH when it fails to open (changed, replayed, reordered,
 * another key), or ATOLL_EPROTO (a length below ABYTES, a tag other than MESSAGE, or
 * no header read yet). */
ssize_t atoll__link_open(atoll__link_crypto *c, const uint8_t *p, size_t n, atoll__buf *plain);

/* Records, appended to a chunk's plaintext. */
enum { ATOLL_LINK_REC_MAIL = 1, ATOLL_LINK_REC_PING = 2, ATOLL_LINK_REC_PONG = 3 };
/* frame[0..len) is one whole wire frame (u32 length included), as atoll__wire_encode
 * makes it; it is copied as it is. */
void atoll__link_put_mail(atoll__buf *b, uint16_t worker, const uint8_t *frame, size_t len);
/* kind is ATOLL_LINK_REC_PING or ATOLL_LINK_REC_PONG (anything else aborts). */
void atoll__link_put_ping(atoll__buf *b, int kind, uint64_t t);

/* One record read back: for MAIL, worker and the wire frame's bytes (borrowed from the
 * plaintext, u32 length included); for PING/PONG, t. */
typedef struct atoll__link_rec {
    int kind;
    uint16_t worker;
    const uint8_t *frame;
    size_t frame_len;
    uint64_t t;
} atoll__link_rec;

/* Reads the record at p[0..n) of a chunk's plaintext: the bytes used, or ATOLL_EPROTO
 * (nothing left, an unknown kind, a record cut short: a chunk holds whole records only,
 * a worker index >= nworkers, a frame whose length passes ATOLL_WIRE_FRAME_MAX). The
 * frame's record is not decoded here: the worker does that with atoll__wire_decode. */
ssize_t atoll__link_rec_read(const uint8_t *p, size_t n, int nworkers, atoll__link_rec *rec);

/* Clears keys from memory (sodium_memzero). */
void atoll__link_crypto_wipe(atoll__link_crypto *c);

#endif /* ATOLL_CLUSTER_LINK_CODEC_H */
