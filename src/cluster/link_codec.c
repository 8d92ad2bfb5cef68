/* link_codec.c -- the bytes of a node link (the design is in link_codec.h): the HELLOs
 * that authenticate both ends with the cluster secret, the keys they lead to, the sealed
 * chunks and the records inside them. Pure functions over buffers; link.c does the I/O.
 *
 * HELLO, byte by byte (integers little-endian):
 *
 *   offset  bytes  field
 *   0       8      magic "ATOLLNK1"
 *   8       1      version, 1
 *   9       1      role: 1 initiator (the node that connected), 2 responder
 *   10      2      the sender's node id, 1..ATOLL_NODE_ID_MAX (4095)
 *   12      1      L, the length of the sender's name, 1..ATOLL_LINK_NAME_MAX (63)
 *   13      L      the name, no NUL byte
 *   13+L    32     the sender's X25519 public key (crypto_kx), fresh for each connection
 *   45+L    32     MAC, crypto_auth (HMAC-SHA-512-256) under the link key, of
 *                    the initiator: its own bytes [0, 45+L)
 *                    the responder: the initiator's whole HELLO, then its own [0, 45+L)
 *
 * so a HELLO is 77 + L bytes, 78 to 140. The role byte is what keeps a HELLO from being
 * sent back to the node that made it (each side reads only the other role); the
 * responder's MAC over the initiator's HELLO, which holds a fresh key, is what keeps its
 * answer from being replayed to another connection.
 *
 * Keys. BLAKE2b-256 is crypto_generichash with 32 bytes out, "keyed K" its keyed form:
 *
 *   link key    BLAKE2b-256 of "atoll-link-v1" || secret
 *   transcript  BLAKE2b-256 keyed link key, of "atoll-link-v1 transcript" || the
 *               initiator's whole HELLO || the responder's whole HELLO
 *   i2r, r2i    the exchange's keys, crypto_kx_client_session_keys (initiator) and
 *               crypto_kx_server_session_keys (responder); i2r is the initiator's tx
 *   initiator -> responder   BLAKE2b-256 keyed transcript, of "atoll-link-v1 i2r" || i2r
 *   responder -> initiator   BLAKE2b-256 keyed transcript, of "atoll-link-v1 r2i" || r2i
 *
 * The exchange alone would give keys to anyone between two nodes who answers with a key
 * of their own; the transcript brings in the secret and binds the keys to both HELLOs as
 * they were sent (names, ids, both public keys). The exchange's keys are what a recorded
 * link and a stolen secret together still lack.
 *
 * Each direction, after the HELLOs: the secretstream header (24 bytes), then chunks:
 *
 *   u32 n, the ciphertext's length, 17..ATOLL_LINK_CHUNK_MAX + 17
 *   n bytes, one crypto_secretstream_xchacha20poly1305 message of n - 17 bytes of
 *     records, tag MESSAGE, no additional data
 *
 * Records, back to back in a chunk's plaintext, each whole in one chunk:
 *
 *   MAIL  u8 1, u16 worker, u32 m, m bytes  (u32 m and the m bytes: one wire frame)
 *   PING  u8 2, u64 the sender's monotonic time in ns
 *   PONG  u8 3, u64 the time of the PING it answers
 */
#include "link_codec.h"
#include "../node/wire.h"

#include <stdlib.h>
#include <string.h>

enum { HELLO_VERSION = 1, ROLE_INITIATOR = 1, ROLE_RESPONDER = 2 };

#define MAGIC_LEN 8
#define HELLO_HEAD 13 /* magic, version, role, node id, name length */
#define HELLO_LEN(name_len) (HELLO_HEAD + (size_t)(name_len) + crypto_kx_PUBLICKEYBYTES + \
                             crypto_auth_BYTES)
#define SESSION_KEY 32

#define KEY_CONTEXT "atoll-link-v1"
#define TRANSCRIPT_LABEL "atoll-link-v1 transcript"
#define I2R_LABEL "atoll-link-v1 i2r"
#define R2I_LABEL "atoll-link-v1 r2i"

#define ABYTES crypto_secretstream_xchacha20poly1305_ABYTES
#define TAG_MESSAGE crypto_secretstream_xchacha20poly1305_TAG_MESSAGE

_Static_assert(sizeof ATOLL_LINK_MAGIC - 1 == MAGIC_LEN, "the magic is 8 bytes");
_Static_assert(HELLO_LEN(ATOLL_LINK_NAME_MAX) <= ATOLL_LINK_HELLO_MAX,
               "the longest HELLO fits the room kept for it");
_Static_assert(ATOLL_NODE_ID_MAX <= UINT16_MAX, "a node id travels as a u16");
_Static_assert(ATOLL_LINK_NAME_MAX <= UINT8_MAX, "a name's length travels as a u8");
_Static_assert(crypto_kx_SESSIONKEYBYTES == SESSION_KEY &&
                   crypto_secretstream_xchacha20poly1305_KEYBYTES == SESSION_KEY,
               "the exchange's keys become secretstream keys of the same size");
_Static_assert(crypto_auth_KEYBYTES >= crypto_generichash_KEYBYTES_MIN &&
                   crypto_auth_KEYBYTES <= crypto_generichash_KEYBYTES_MAX &&
                   SESSION_KEY >= crypto_generichash_KEYBYTES_MIN,
               "the link key and the transcript can key BLAKE2b");
_Static_assert(ATOLL_LINK_CHUNK_MAX >= ATOLL_WIRE_FRAME_MAX + 4 + 3,
               "a chunk holds the largest wire frame with its MAIL record header");
_Static_assert((uint64_t)ATOLL_LINK_CHUNK_MAX + ABYTES <= UINT32_MAX,
               "a chunk's length fits its u32");

/* sodium_init is idempotent and thread-safe. It fails only when the system gives no
 * randomness, and keys must come from nothing else: a node without it cannot link. */
static void
sodium_ready(void)
{
    if (sodium_init() < 0) {
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"libsodium cannot start: no source of randomness\"");
        abort();
    }
}

/* The callers' contract broken: going on would send or trust what the protocol forbids. */
static void
misuse(const char *what)
{
    ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"link codec misused\" what=\"%s\"", what);
    abort();
}

static bool
node_id_ok(unsigned node)
{
    return node >= 1 && node <= ATOLL_NODE_ID_MAX;
}

static bool
name_ok(const char *name, size_t len)
{
    return len >= 1 && len <= ATOLL_LINK_NAME_MAX && memchr(name, '\0', len) == NULL;
}

int
atoll__link_key_derive(const char *secret, size_t len, atoll__link_key *out)
{
    if (secret == NULL || len < ATOLL_LINK_SECRET_MIN)
        return ATOLL_EINVAL;
    sodium_ready();
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof out->k);
    crypto_generichash_update(&st, (const uint8_t *)KEY_CONTEXT, strlen(KEY_CONTEXT));
    crypto_generichash_update(&st, (const uint8_t *)secret, len);
    crypto_generichash_final(&st, out->k, sizeof out->k);
    sodium_memzero(&st, sizeof st);
    return ATOLL_OK;
}

/* ---- HELLO ------------------------------------------------------------------------------ */

/* What a MAC covers: the initiator's HELLO first when the responder made it, then
 * body[0..len), the HELLO without its MAC. Returns the bytes written to msg. */
static size_t
mac_input(const atoll__link_crypto *c, uint8_t role, const uint8_t *body, size_t len,
          uint8_t msg[2 * ATOLL_LINK_HELLO_MAX])
{
    size_t n = 0;
    if (role == ROLE_RESPONDER) {
        const uint8_t *first = c->initiator ? c->hello_mine : c->hello_peer;
        size_t first_len = c->initiator ? c->hello_mine_len : c->hello_peer_len;
        memcpy(msg, first, first_len);
        n = first_len;
    }
    memcpy(msg + n, body, len);
    return n + len;
}

/* Makes this side's HELLO in c->hello_mine (c->pk is its key). */
static void
hello_write(atoll__link_crypto *c, const atoll__link_key *key, const atoll__link_peer *me,
            uint8_t role)
{
    size_t name_len = strnlen(me->name, sizeof me->name);
    if (!node_id_ok(me->node) || !name_ok(me->name, name_len))
        misuse("this node's id or name cannot go in a HELLO");
    uint8_t *h = c->hello_mine;
    memcpy(h, ATOLL_LINK_MAGIC, MAGIC_LEN);
    h[8] = HELLO_VERSION;
    h[9] = role;
    h[10] = (uint8_t)me->node;
    h[11] = (uint8_t)(me->node >> 8);
    h[12] = (uint8_t)name_len;
    memcpy(h + HELLO_HEAD, me->name, name_len);
    memcpy(h + HELLO_HEAD + name_len, c->pk, sizeof c->pk);
    size_t body = HELLO_HEAD + name_len + sizeof c->pk;
    uint8_t msg[2 * ATOLL_LINK_HELLO_MAX];
    size_t m = mac_input(c, role, h, body, msg);
    crypto_auth(h + body, msg, m, key->k);
    c->hello_mine_len = body + crypto_auth_BYTES;
}

/* Checks p[0..n) against the HELLO format of a sender in role: its length when whole and
 * well formed, 0 when what is there could still become a HELLO, ATOLL_EPROTO when it
 * cannot. A prefix is judged as far as it goes, so that a stranger (a scanner, an HTTP
 * client, a node of another version) is dropped at its first bytes rather than held
 * until 78 of them came. The MAC is not checked here. */
static ssize_t
hello_format(const uint8_t *p, size_t n, uint8_t role)
{
    if (n > 0 && memcmp(p, ATOLL_LINK_MAGIC, n < MAGIC_LEN ? n : MAGIC_LEN) != 0)
        return ATOLL_EPROTO;
    atoll__wire_reader r = {p, n, false};
    const uint8_t *magic;
    uint8_t version, sender, name_len;
    uint16_t node;
    if (!atoll__wire_get_bytes(&r, MAGIC_LEN, &magic) || !atoll__wire_get_u8(&r, &version))
        return 0;
    if (version != HELLO_VERSION)
        return ATOLL_EPROTO;
    if (!atoll__wire_get_u8(&r, &sender))
        return 0;
    if (sender != role)
        return ATOLL_EPROTO;
    if (!atoll__wire_get_u16(&r, &node))
        return 0;
    if (!node_id_ok(node))
        return ATOLL_EPROTO;
    if (!atoll__wire_get_u8(&r, &name_len))
        return 0;
    if (name_len == 0 || name_len > ATOLL_LINK_NAME_MAX)
        return ATOLL_EPROTO;
    const uint8_t *rest;
    if (!atoll__wire_get_bytes(&r, HELLO_LEN(name_len) - HELLO_HEAD, &rest))
        return 0;
    if (memchr(rest, '\0', name_len) != NULL)
        return ATOLL_EPROTO;
    return (ssize_t)HELLO_LEN(name_len);
}

/* Turns the exchange's keys, in c->tx_key and c->rx_key, into the session keys. */
static void
session_keys(atoll__link_crypto *c, const atoll__link_key *key)
{
    const uint8_t *hello_i = c->initiator ? c->hello_mine : c->hello_peer;
    size_t hello_i_len = c->initiator ? c->hello_mine_len : c->hello_peer_len;
    const uint8_t *hello_r = c->initiator ? c->hello_peer : c->hello_mine;
    size_t hello_r_len = c->initiator ? c->hello_peer_len : c->hello_mine_len;

    uint8_t transcript[SESSION_KEY];
    crypto_generichash_state st;
    crypto_generichash_init(&st, key->k, sizeof key->k, sizeof transcript);
    crypto_generichash_update(&st, (const uint8_t *)TRANSCRIPT_LABEL, strlen(TRANSCRIPT_LABEL));
    crypto_generichash_update(&st, hello_i, hello_i_len);
    crypto_generichash_update(&st, hello_r, hello_r_len);
    crypto_generichash_final(&st, transcript, sizeof transcript);

    /* The labels name the direction, not the side, so both ends make the same key for
     * it; the initiator sends on i2r, the responder on r2i. */
    uint8_t *i2r = c->initiator ? c->tx_key : c->rx_key;
    uint8_t *r2i = c->initiator ? c->rx_key : c->tx_key;
    crypto_generichash_init(&st, transcript, sizeof transcript, SESSION_KEY);
    crypto_generichash_update(&st, (const uint8_t *)I2R_LABEL, strlen(I2R_LABEL));
    crypto_generichash_update(&st, i2r, SESSION_KEY);
    crypto_generichash_final(&st, i2r, SESSION_KEY);
    crypto_generichash_init(&st, transcript, sizeof transcript, SESSION_KEY);
    crypto_generichash_update(&st, (const uint8_t *)R2I_LABEL, strlen(R2I_LABEL));
    crypto_generichash_update(&st, r2i, SESSION_KEY);
    crypto_generichash_final(&st, r2i, SESSION_KEY);

    sodium_memzero(&st, sizeof st);
    sodium_memzero(transcript, sizeof transcript);
    c->keys = true;
}

void
atoll__link_hello_start(atoll__link_crypto *c, const atoll__link_key *key,
                        const atoll__link_peer *me, atoll__buf *out)
{
    sodium_ready();
    sodium_memzero(c, sizeof *c);
    c->initiator = true;
    crypto_kx_keypair(c->pk, c->sk);
    hello_write(c, key, me, ROLE_INITIATOR);
    atoll__buf_append(out, c->hello_mine, c->hello_mine_len);
}

ssize_t
atoll__link_hello_read(atoll__link_crypto *c, const atoll__link_key *key, const uint8_t *p,
                       size_t n, atoll__link_peer *peer)
{
    sodium_ready();
    /* One HELLO each way: an initiator reads after sending its own, a responder before. */
    if (c->hello_peer_len != 0 || c->keys || (c->hello_mine_len != 0) != c->initiator)
        return ATOLL_EPROTO;
    uint8_t sender = c->initiator ? ROLE_RESPONDER : ROLE_INITIATOR;
    ssize_t len = hello_format(p, n, sender);
    if (len <= 0)
        return len;

    size_t body = (size_t)len - crypto_auth_BYTES;
    uint8_t msg[2 * ATOLL_LINK_HELLO_MAX];
    size_t m = mac_input(c, sender, p, body, msg);
    if (crypto_auth_verify(p + body, msg, m, key->k) != 0)
        return ATOLL_EAUTH;

    /* Only a public key under a good MAC is used. A key of small order would make the
     * shared key zero whatever our own key is: only a holder of the secret can send
     * one, and it is refused all the same. */
    const uint8_t *peer_pk = p + body - crypto_kx_PUBLICKEYBYTES;
    uint8_t rx[SESSION_KEY], tx[SESSION_KEY];
    int rc;
    if (c->initiator) {
        rc = crypto_kx_client_session_keys(rx, tx, c->pk, c->sk, peer_pk);
    } else {
        crypto_kx_keypair(c->pk, c->sk);
        rc = crypto_kx_server_session_keys(rx, tx, c->pk, c->sk, peer_pk);
    }
    sodium_memzero(c->sk, sizeof c->sk);
    if (rc != 0) {
        sodium_memzero(rx, sizeof rx);
        sodium_memzero(tx, sizeof tx);
        return ATOLL_EPROTO;
    }
    memcpy(c->hello_peer, p, (size_t)len);
    c->hello_peer_len = (size_t)len;
    memcpy(c->rx_key, rx, sizeof rx);
    memcpy(c->tx_key, tx, sizeof tx);
    sodium_memzero(rx, sizeof rx);
    sodium_memzero(tx, sizeof tx);
    /* The responder's transcript needs its own HELLO, made by atoll__link_hello_answer. */
    if (c->initiator)
        session_keys(c, key);

    peer->node = (uint16_t)(p[10] | p[11] << 8);
    memcpy(peer->name, p + HELLO_HEAD, p[12]);
    peer->name[p[12]] = '\0';
    return len;
}

void
atoll__link_hello_answer(atoll__link_crypto *c, const atoll__link_key *key,
                         const atoll__link_peer *me, atoll__buf *out)
{
    if (c->initiator || c->hello_peer_len == 0 || c->hello_mine_len != 0 || c->keys)
        misuse("a HELLO answered by an initiator, twice, or before reading one");
    hello_write(c, key, me, ROLE_RESPONDER);
    session_keys(c, key);
    atoll__buf_append(out, c->hello_mine, c->hello_mine_len);
}

/* ---- chunks ----------------------------------------------------------------------------- */

void
atoll__link_tx_header(atoll__link_crypto *c, atoll__buf *out)
{
    if (!c->keys || c->tx_ready)
        misuse("a secretstream header before the keys, or twice");
    uint8_t header[crypto_secretstream_xchacha20poly1305_HEADERBYTES];
    crypto_secretstream_xchacha20poly1305_init_push(&c->tx, header, c->tx_key);
    c->tx_ready = true;
    atoll__buf_append(out, header, sizeof header);
}

ssize_t
atoll__link_rx_header(atoll__link_crypto *c, const uint8_t *p, size_t n)
{
    if (!c->keys || c->rx_ready)
        return ATOLL_EPROTO;
    if (n < crypto_secretstream_xchacha20poly1305_HEADERBYTES)
        return 0;
    if (crypto_secretstream_xchacha20poly1305_init_pull(&c->rx, p, c->rx_key) != 0)
        return ATOLL_EPROTO;
    c->rx_ready = true;
    return crypto_secretstream_xchacha20poly1305_HEADERBYTES;
}

int
atoll__link_seal(atoll__link_crypto *c, const uint8_t *p, size_t n, atoll__buf *out)
{
    if (n > ATOLL_LINK_CHUNK_MAX)
        return ATOLL_ELIMIT;
    if (!c->tx_ready)
        return ATOLL_EINVAL;
    static const uint8_t nothing[1];
    size_t clen = n + ABYTES;
    atoll__buf_reserve(out, 4 + clen);
    uint8_t *at = atoll__buf_data(out) + out->len;
    atoll__wire_store_u32(at, (uint32_t)clen);
    crypto_secretstream_xchacha20poly1305_push(&c->tx, at + 4, NULL, n ? p : nothing, n, NULL,
                                               0, TAG_MESSAGE);
    out->len += 4 + clen;
    return ATOLL_OK;
}

ssize_t
atoll__link_open(atoll__link_crypto *c, const uint8_t *p, size_t n, atoll__buf *plain)
{
    plain->len = 0;
    if (!c->rx_ready)
        return ATOLL_EPROTO;
    atoll__wire_reader r = {p, n, false};
    uint32_t clen;
    if (!atoll__wire_get_u32(&r, &clen))
        return 0;
    /* Judged on the length alone, before waiting for (or reading) what it announces: a
     * peer cannot make us hold more than one chunk's worth. */
    if (clen > (uint64_t)ATOLL_LINK_CHUNK_MAX + ABYTES)
        return ATOLL_ELIMIT;
    if (clen < ABYTES)
        return ATOLL_EPROTO;
    const uint8_t *sealed;
    if (!atoll__wire_get_bytes(&r, clen, &sealed))
        return 0;
    size_t mlen = clen - ABYTES;
    atoll__buf_reserve(plain, mlen ? mlen : 1);
    unsigned long long opened;
    unsigned char tag;
    if (crypto_secretstream_xchacha20poly1305_pull(&c->rx, atoll__buf_data(plain), &opened, &tag,
                                                   sealed, clen, NULL, 0) != 0)
        return ATOLL_EAUTH;
    /* A link has no end of stream in band (a FINAL would let a peer close a direction
     * while the connection stays) and never rekeys by tag. */
    if (tag != TAG_MESSAGE)
        return ATOLL_EPROTO;
    plain->len = (size_t)opened;
    return (ssize_t)(4 + (size_t)clen);
}

/* ---- records ---------------------------------------------------------------------------- */

void
atoll__link_put_mail(atoll__buf *b, uint16_t worker, const uint8_t *frame, size_t len)
{
    atoll__buf_push(b, ATOLL_LINK_REC_MAIL);
    atoll__wire_put_u16(b, worker);
    atoll__buf_append(b, frame, len);
}

void
atoll__link_put_ping(atoll__buf *b, int kind, uint64_t t)
{
    if (kind != ATOLL_LINK_REC_PING && kind != ATOLL_LINK_REC_PONG)
        misuse("a PING record of another kind");
    atoll__buf_push(b, (uint8_t)kind);
    atoll__wire_put_u64(b, t);
}

ssize_t
atoll__link_rec_read(const uint8_t *p, size_t n, int nworkers, atoll__link_rec *rec)
{
    memset(rec, 0, sizeof *rec);
    atoll__wire_reader r = {p, n, false};
    uint8_t kind;
    if (!atoll__wire_get_u8(&r, &kind))
        return ATOLL_EPROTO;
    switch (kind) {
    case ATOLL_LINK_REC_MAIL: {
        uint16_t worker;
        uint32_t record_len;
        const uint8_t *frame, *record;
        if (!atoll__wire_get_u16(&r, &worker))
            return ATOLL_EPROTO;
        frame = r.p;
        if (!atoll__wire_get_u32(&r, &record_len) || record_len > ATOLL_WIRE_FRAME_MAX ||
            !atoll__wire_get_bytes(&r, record_len, &record) || (int)worker >= nworkers)
            return ATOLL_EPROTO;
        rec->worker = worker;
        rec->frame = frame;
        rec->frame_len = 4 + (size_t)record_len;
        break;
    }
    case ATOLL_LINK_REC_PING:
    case ATOLL_LINK_REC_PONG:
        if (!atoll__wire_get_u64(&r, &rec->t))
            return ATOLL_EPROTO;
        break;
    default:
        return ATOLL_EPROTO;
    }
    rec->kind = kind;
    return (ssize_t)(n - r.left);
}

void
atoll__link_crypto_wipe(atoll__link_crypto *c)
{
    sodium_memzero(c, sizeof *c);
}
