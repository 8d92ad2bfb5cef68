/* link_test.c -- the bytes of node links (src/cluster/link_codec.c): the handshake, the
 * sealed chunks and the records inside them.
 *
 * Everything a link reads comes from another machine, so the readers are tested as
 * parsers of hostile input: every HELLO, chunk and record cut at any length is
 * "incomplete" (or, for records, refused), read from an exact-size heap copy so that
 * ASan sees any read past the end; every way the handshake can be attacked without the
 * secret (another secret, a bit flipped, a HELLO sent back to its sender, an answer
 * replayed to another connection) and every way a chunk can be tampered with
 * (a bit flipped, replayed, reordered, sent back, cut, too long) is refused with its
 * error. HELLOs that only a holder of the secret could send (bad names and node ids,
 * a public key of small order) are built here byte by byte from the layout in
 * link_codec.c's top comment with a valid MAC (hb_hello), so the MAC is not what
 * refuses them, and so a mistake shared by writer and reader does not hide itself.
 *
 * Leaks: each test ends with LEAK_CHECK(), which in an ASan build asks LeakSanitizer
 * right there, because the runner ends each forked test with _exit (as in wire_test.c).
 */
#include "cluster/link_codec.h"
#include "node/wire.h"
#include "sodium_fixed.h"
#include "test.h"

#include <atoll/atoll.h>

#if defined(__SANITIZE_ADDRESS__)
#define LINK_TEST_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LINK_TEST_LSAN 1
#endif
#endif

#ifdef LINK_TEST_LSAN
#include <sanitizer/lsan_interface.h>
#define LEAK_CHECK() ASSERT(__lsan_do_recoverable_leak_check() == 0)
#else
#define LEAK_CHECK() ((void)0)
#endif

#define SECRET "correct horse battery staple, 32"
#define OTHER_SECRET "another cluster's secret, 32 b.."
#define ABYTES crypto_secretstream_xchacha20poly1305_ABYTES
#define HEADERBYTES crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define NWORKERS 4

/* ---- helpers ---------------------------------------------------------------------------- */

static atoll__link_key
key_of(const char *secret)
{
    atoll__link_key k;
    ASSERT_EQ(atoll__link_key_derive(secret, strlen(secret), &k), ATOLL_OK);
    return k;
}

static atoll__link_peer
node_named(uint16_t node, const char *name)
{
    atoll__link_peer p = {.node = node};
    ASSERT(strlen(name) < sizeof p.name);
    memcpy(p.name, name, strlen(name) + 1);
    return p;
}

/* A heap copy of exactly n bytes, so a read past n is a heap overflow ASan reports. */
static uint8_t *
exact(const void *p, size_t n)
{
    uint8_t *copy = malloc(n ? n : 1);
    ASSERT(copy != NULL);
    if (n)
        memcpy(copy, p, n);
    return copy;
}

static ssize_t
hello_read_exact(atoll__link_crypto *c, const atoll__link_key *key, const void *p, size_t n,
                 atoll__link_peer *peer)
{
    uint8_t *copy = exact(p, n);
    ssize_t k = atoll__link_hello_read(c, key, copy, n, peer);
    free(copy);
    return k;
}

static ssize_t
open_exact(atoll__link_crypto *c, const void *p, size_t n, atoll__buf *plain)
{
    uint8_t *copy = exact(p, n);
    ssize_t k = atoll__link_open(c, copy, n, plain);
    free(copy);
    return k;
}

static ssize_t
rec_read_exact(const void *p, size_t n, int nworkers, atoll__link_rec *rec)
{
    uint8_t *copy = exact(p, n);
    ssize_t k = atoll__link_rec_read(copy, n, nworkers, rec);
    free(copy);
    return k;
}

static bool
all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

static bool
contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t len)
{
    for (size_t i = 0; i + len <= n; i++)
        if (memcmp(hay + i, needle, len) == 0)
            return true;
    return false;
}

/* Two ends of one connection: i connected to r. */
typedef struct pair {
    atoll__link_crypto i, r;
    atoll__buf hello_i, hello_r;  /* the HELLOs as sent */
    atoll__link_peer i_saw, r_saw; /* whom each side read */
} pair;

/* The HELLOs both ways, i under key_i and r under key_r (the same for a good handshake). */
static void
handshake(pair *p, const atoll__link_key *key_i, const atoll__link_key *key_r)
{
    memset(p, 0, sizeof *p);
    atoll__link_peer alpha = node_named(7, "alpha"), beta = node_named(4095, "beta.node-2");
    atoll__link_hello_start(&p->i, key_i, &alpha, &p->hello_i);
    ASSERT_EQ(hello_read_exact(&p->r, key_r, atoll__buf_data(&p->hello_i), p->hello_i.len,
                               &p->r_saw),
              p->hello_i.len);
    atoll__link_hello_answer(&p->r, key_r, &beta, &p->hello_r);
    ASSERT_EQ(hello_read_exact(&p->i, key_i, atoll__buf_data(&p->hello_r), p->hello_r.len,
                               &p->i_saw),
              p->hello_r.len);
}

/* A good handshake and both secretstream headers: the pair is ready for chunks. */
static void
pair_up(pair *p)
{
    atoll__link_key key = key_of(SECRET);
    handshake(p, &key, &key);
    atoll__buf h_i = ATOLL__BUF_INIT, h_r = ATOLL__BUF_INIT;
    atoll__link_tx_header(&p->i, &h_i);
    atoll__link_tx_header(&p->r, &h_r);
    ASSERT_EQ(h_i.len, HEADERBYTES);
    ASSERT_EQ(h_r.len, HEADERBYTES);
    ASSERT_EQ(atoll__link_rx_header(&p->r, atoll__buf_data(&h_i), h_i.len), HEADERBYTES);
    ASSERT_EQ(atoll__link_rx_header(&p->i, atoll__buf_data(&h_r), h_r.len), HEADERBYTES);
    atoll__buf_fini(&h_i);
    atoll__buf_fini(&h_r);
}

static void
pair_fini(pair *p)
{
    atoll__buf_fini(&p->hello_i);
    atoll__buf_fini(&p->hello_r);
    atoll__link_crypto_wipe(&p->i);
    atoll__link_crypto_wipe(&p->r);
}

/* ---- HELLOs built by hand --------------------------------------------------------------- */

/* A HELLO after the layout of link_codec.c: role, node, name[0..name_len) and pk, with a
 * valid MAC under key over prefix[0..prefix_len) (the initiator's HELLO, for a
 * responder's) and the HELLO without its MAC. */
static void
hb_hello(atoll__buf *b, uint8_t role, uint16_t node, const char *name, size_t name_len,
         const uint8_t pk[crypto_kx_PUBLICKEYBYTES], const atoll__link_key *key,
         const uint8_t *prefix, size_t prefix_len)
{
    b->len = 0;
    atoll__buf_append(b, "ATOLLNK1", 8);
    atoll__buf_push(b, 1);
    atoll__buf_push(b, role);
    atoll__wire_put_u16(b, node);
    atoll__buf_push(b, (uint8_t)name_len);
    atoll__buf_append(b, name, name_len);
    atoll__buf_append(b, pk, crypto_kx_PUBLICKEYBYTES);
    atoll__buf mac_input = ATOLL__BUF_INIT;
    atoll__buf_append(&mac_input, prefix, prefix_len);
    atoll__buf_append(&mac_input, atoll__buf_data(b), b->len);
    uint8_t mac[crypto_auth_BYTES];
    crypto_auth(mac, atoll__buf_data(&mac_input), mac_input.len, key->k);
    atoll__buf_append(b, mac, sizeof mac);
    atoll__buf_fini(&mac_input);
}

static void
fresh_pk(uint8_t pk[crypto_kx_PUBLICKEYBYTES])
{
    uint8_t sk[crypto_kx_SECRETKEYBYTES];
    ASSERT_EQ(crypto_kx_keypair(pk, sk), 0);
}

/* A responder given the initiator's HELLO in b answers (ok) or refuses it with want. */
static void
responder_gets_(const char *file, int line, const atoll__buf *b, const atoll__link_key *key,
                ssize_t want)
{
    atoll__link_crypto r = {0};
    atoll__link_peer peer;
    ssize_t k = hello_read_exact(&r, key, atoll__buf_data(b), b->len, &peer);
    if (k != want) {
        fprintf(stderr, "  responder read %zd (want %zd)\n", k, want);
        test_fail_(file, line, "the responder's verdict on the HELLO");
    }
    atoll__link_crypto_wipe(&r);
}
#define RESPONDER_GETS(b, key, want) responder_gets_(__FILE__, __LINE__, (b), (key), (want))

/* ---- keys ------------------------------------------------------------------------------- */

TEST(secret_shorter_than_the_minimum_is_refused)
{
    atoll__link_key k;
    ASSERT_EQ(atoll__link_key_derive(NULL, 32, &k), ATOLL_EINVAL);
    ASSERT_EQ(atoll__link_key_derive("", 0, &k), ATOLL_EINVAL);
    ASSERT_EQ(atoll__link_key_derive("0123456789abcde", ATOLL_LINK_SECRET_MIN - 1, &k),
              ATOLL_EINVAL);
    ASSERT_EQ(atoll__link_key_derive("0123456789abcdef", ATOLL_LINK_SECRET_MIN, &k), ATOLL_OK);
    LEAK_CHECK();
}

TEST(link_key_is_blake2b_of_context_and_secret)
{
    /* The derivation is part of the protocol: two builds must make the same key. */
    const char *secret = SECRET;
    uint8_t msg[64], want[crypto_auth_KEYBYTES];
    memcpy(msg, "atoll-link-v1", 13);
    memcpy(msg + 13, secret, strlen(secret));
    ASSERT_EQ(crypto_generichash(want, sizeof want, msg, 13 + strlen(secret), NULL, 0), 0);
    atoll__link_key k = key_of(secret), k2 = key_of(secret), other = key_of(OTHER_SECRET);
    ASSERT_MEM(k.k, want, sizeof want);
    ASSERT_MEM(k2.k, k.k, sizeof k.k);
    ASSERT(memcmp(other.k, k.k, sizeof k.k) != 0);
    /* Every byte counts, the last one too. */
    atoll__link_key cut;
    ASSERT_EQ(atoll__link_key_derive(secret, strlen(secret) - 1, &cut), ATOLL_OK);
    ASSERT(memcmp(cut.k, k.k, sizeof k.k) != 0);
    LEAK_CHECK();
}

/* ---- the handshake ---------------------------------------------------------------------- */

TEST(hello_layout_byte_by_byte)
{
    atoll__link_key key = key_of(SECRET);
    pair p;
    handshake(&p, &key, &key);
    /* The fixed part, written out from the layout. */
    uint8_t head[32];
    size_t n = test_hex("41 54 4f 4c 4c 4e 4b 31 | 01 | 01 | 07 00 | 05 | 61 6c 70 68 61", head,
                        sizeof head);
    ASSERT_EQ(p.hello_i.len, 77 + 5);
    ASSERT_MEM(atoll__buf_data(&p.hello_i), head, n);
    n = test_hex("41 54 4f 4c 4c 4e 4b 31 | 01 | 02 | ff 0f | 0b | 62 65 74 61 2e 6e 6f 64 65 2d 32",
                 head, sizeof head);
    ASSERT_EQ(p.hello_r.len, 77 + 11);
    ASSERT_MEM(atoll__buf_data(&p.hello_r), head, n);
    /* The whole of each, public key and MAC included, as hb_hello makes it. */
    atoll__buf want = ATOLL__BUF_INIT;
    hb_hello(&want, 1, 7, "alpha", 5, p.i.pk, &key, NULL, 0);
    ASSERT_EQ(want.len, p.hello_i.len);
    ASSERT_MEM(atoll__buf_data(&want), atoll__buf_data(&p.hello_i), want.len);
    hb_hello(&want, 2, 4095, "beta.node-2", 11, p.r.pk, &key, atoll__buf_data(&p.hello_i),
             p.hello_i.len);
    ASSERT_EQ(want.len, p.hello_r.len);
    ASSERT_MEM(atoll__buf_data(&want), atoll__buf_data(&p.hello_r), want.len);
    atoll__buf_fini(&want);
    pair_fini(&p);
    LEAK_CHECK();
}

/* BLAKE2b-256 keyed by key[0..32) of a[0..na) || b[0..nb) || c[0..nc), in one call. */
static void
blake2b_of(uint8_t out[32], const uint8_t key[32], const void *a, size_t na, const void *b,
           size_t nb, const void *c, size_t nc)
{
    uint8_t msg[600];
    ASSERT(na + nb + nc <= sizeof msg);
    memcpy(msg, a, na);
    memcpy(msg + na, b, nb);
    memcpy(msg + na + nb, c, nc);
    ASSERT_EQ(crypto_generichash(out, 32, msg, na + nb + nc, key, 32), 0);
}

/* The secret key among the fixed draws whose public key is pk. */
static const uint8_t *
drawn_secret_key(const uint8_t pk[crypto_kx_PUBLICKEYBYTES])
{
    for (size_t d = 0; d < sodium_fixed_nkept; d++) {
        uint8_t q[crypto_scalarmult_BYTES];
        ASSERT_EQ(crypto_scalarmult_base(q, sodium_fixed_kept[d]), 0);
        if (memcmp(q, pk, sizeof q) == 0)
            return sodium_fixed_kept[d];
    }
    test_fail_(__FILE__, __LINE__, "no drawn secret key has this public key");
    return NULL;
}

TEST(session_keys_follow_the_schedule)
{
    /* Repeatable randomness, so the test can find the ephemeral secret keys and make the
     * session keys itself from link_codec.c's schedule, apart from the codec. */
    sodium_fixed_use();
    atoll__link_key key = key_of(SECRET);
    pair p;
    handshake(&p, &key, &key);
    const uint8_t *sk_i = drawn_secret_key(p.i.pk), *sk_r = drawn_secret_key(p.r.pk);
    ASSERT(sk_i != sk_r);

    uint8_t transcript[32], i2r[32], r2i[32], rx[32], tx[32], label_only[32];
    const char *tl = "atoll-link-v1 transcript";
    uint8_t hellos[2 * ATOLL_LINK_HELLO_MAX];
    memcpy(hellos, atoll__buf_data(&p.hello_i), p.hello_i.len);
    memcpy(hellos + p.hello_i.len, atoll__buf_data(&p.hello_r), p.hello_r.len);
    blake2b_of(transcript, key.k, tl, strlen(tl), hellos, p.hello_i.len + p.hello_r.len, "", 0);
    ASSERT_EQ(crypto_kx_client_session_keys(rx, tx, p.i.pk, sk_i, p.r.pk), 0);
    blake2b_of(i2r, transcript, "atoll-link-v1 i2r", 17, tx, 32, "", 0);
    blake2b_of(r2i, transcript, "atoll-link-v1 r2i", 17, rx, 32, "", 0);
    ASSERT_MEM(p.i.tx_key, i2r, 32);
    ASSERT_MEM(p.r.rx_key, i2r, 32);
    ASSERT_MEM(p.i.rx_key, r2i, 32);
    ASSERT_MEM(p.r.tx_key, r2i, 32);
    /* The responder's side of the exchange agrees (the codec used the server's half). */
    uint8_t srx[32], stx[32];
    ASSERT_EQ(crypto_kx_server_session_keys(srx, stx, p.r.pk, sk_r, p.i.pk), 0);
    ASSERT_MEM(srx, tx, 32);
    ASSERT_MEM(stx, rx, 32);
    /* Neither the exchange's keys nor the secret's alone are the session keys. */
    ASSERT(memcmp(p.i.tx_key, tx, 32) != 0);
    blake2b_of(label_only, key.k, "atoll-link-v1 i2r", 17, "", 0, "", 0);
    ASSERT(memcmp(p.i.tx_key, label_only, 32) != 0);

    /* A chunk is a plain secretstream message under that key: header, then u32 length
     * and the message, no additional data. */
    atoll__buf out = ATOLL__BUF_INIT;
    atoll__link_tx_header(&p.i, &out);
    ASSERT_EQ(atoll__link_seal(&p.i, (const uint8_t *)"\x02\x05\0\0\0\0\0\0\0", 9, &out),
              ATOLL_OK);
    ASSERT_EQ(out.len, HEADERBYTES + 4 + 9 + ABYTES);
    const uint8_t *b = atoll__buf_data(&out);
    ASSERT_EQ(b[HEADERBYTES] | b[HEADERBYTES + 1] << 8 | b[HEADERBYTES + 2] << 16 |
                  b[HEADERBYTES + 3] << 24,
              9 + ABYTES);
    crypto_secretstream_xchacha20poly1305_state st;
    ASSERT_EQ(crypto_secretstream_xchacha20poly1305_init_pull(&st, b, i2r), 0);
    uint8_t m[9];
    unsigned long long mlen;
    unsigned char tag;
    ASSERT_EQ(crypto_secretstream_xchacha20poly1305_pull(&st, m, &mlen, &tag, b + HEADERBYTES + 4,
                                                         9 + ABYTES, NULL, 0),
              0);
    ASSERT_EQ(mlen, 9);
    ASSERT_EQ(tag, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
    ASSERT_MEM(m, "\x02\x05\0\0\0\0\0\0\0", 9);
    atoll__buf_fini(&out);
    pair_fini(&p);
    LEAK_CHECK();
}

/* The records of chunk number `chunk` in chunks_one_way: all three kinds, two MAILs to
 * two workers, and check_chunk_records reads them back. */
static void
put_chunk_records(atoll__buf *plain, int chunk, const atoll__buf *frame)
{
    atoll__link_put_ping(plain, ATOLL_LINK_REC_PING, 1000u + (uint64_t)chunk);
    atoll__link_put_mail(plain, (uint16_t)(chunk % NWORKERS), atoll__buf_data(frame), frame->len);
    atoll__link_put_ping(plain, ATOLL_LINK_REC_PONG, UINT64_MAX - (uint64_t)chunk);
    atoll__link_put_mail(plain, NWORKERS - 1, atoll__buf_data(frame), frame->len);
}

static void
check_chunk_records(const atoll__buf *plain, int chunk, const atoll__buf *frame)
{
    const uint8_t *p = atoll__buf_data(plain);
    size_t off = 0;
    atoll__link_rec rec;
    ssize_t k = atoll__link_rec_read(p + off, plain->len - off, NWORKERS, &rec);
    ASSERT_EQ(k, 9);
    ASSERT_EQ(rec.kind, ATOLL_LINK_REC_PING);
    ASSERT(rec.t == 1000u + (uint64_t)chunk);
    off += (size_t)k;
    for (int i = 0; i < 3; i++) {
        k = atoll__link_rec_read(p + off, plain->len - off, NWORKERS, &rec);
        if (i == 1) {
            ASSERT_EQ(k, 9);
            ASSERT_EQ(rec.kind, ATOLL_LINK_REC_PONG);
            ASSERT(rec.t == UINT64_MAX - (uint64_t)chunk);
        } else {
            ASSERT_EQ(k, 3 + (ssize_t)frame->len);
            ASSERT_EQ(rec.kind, ATOLL_LINK_REC_MAIL);
            ASSERT_EQ(rec.worker, i == 0 ? chunk % NWORKERS : NWORKERS - 1);
            ASSERT_EQ(rec.frame_len, frame->len);
            ASSERT(rec.frame == p + off + 3);
            ASSERT_MEM(rec.frame, atoll__buf_data(frame), frame->len);
            /* The frame is the wire's, whole: the worker decodes it as it came. */
            atoll__wire_limits lim = {.nworkers = NWORKERS, .ntypes = 1};
            atoll__mail *m;
            ASSERT_EQ(atoll__wire_decode(rec.frame, rec.frame_len, &lim, &m), frame->len);
            ASSERT_EQ(m->type, ATOLL_MAIL_KICK);
            ASSERT(m->session.v == 0x1234);
            ASSERT_STR(m->reason, "bye");
            atoll__mail_free(m);
        }
        off += (size_t)k;
    }
    ASSERT_EQ(off, plain->len);
}

/* Chunks one way, sent as one stream and read back in order from an exact copy of it. */
static void
chunks_one_way(atoll__link_crypto *tx, atoll__link_crypto *rx, const atoll__buf *frame)
{
    enum { CHUNKS = 5 };
    atoll__buf stream = ATOLL__BUF_INIT, plain = ATOLL__BUF_INIT;
    for (int c = 0; c < CHUNKS; c++) {
        plain.len = 0;
        put_chunk_records(&plain, c, frame);
        size_t before = stream.len;
        ASSERT_EQ(atoll__link_seal(tx, atoll__buf_data(&plain), plain.len, &stream), ATOLL_OK);
        ASSERT_EQ(stream.len - before, 4 + plain.len + ABYTES);
        /* Sealed, not copied: the plaintext does not show in the stream. */
        ASSERT(!contains(atoll__buf_data(&stream) + before, stream.len - before,
                         atoll__buf_data(frame), frame->len));
    }
    /* An empty chunk is a chunk too (no records). */
    ASSERT_EQ(atoll__link_seal(tx, NULL, 0, &stream), ATOLL_OK);

    uint8_t *copy = exact(atoll__buf_data(&stream), stream.len);
    size_t off = 0;
    for (int c = 0; c < CHUNKS; c++) {
        ssize_t k = atoll__link_open(rx, copy + off, stream.len - off, &plain);
        ASSERT(k > 0);
        check_chunk_records(&plain, c, frame);
        off += (size_t)k;
    }
    ASSERT_EQ(atoll__link_open(rx, copy + off, stream.len - off, &plain), 4 + ABYTES);
    ASSERT_EQ(plain.len, 0);
    off += 4 + ABYTES;
    ASSERT_EQ(off, stream.len);
    ASSERT_EQ(atoll__link_open(rx, copy + off, 0, &plain), 0);
    free(copy);
    atoll__buf_fini(&stream);
    atoll__buf_fini(&plain);
}

TEST(handshake_and_chunks_both_ways)
{
    atoll__link_key key = key_of(SECRET);
    pair p;
    handshake(&p, &key, &key);
    ASSERT_EQ(p.r_saw.node, 7);
    ASSERT_STR(p.r_saw.name, "alpha");
    ASSERT_EQ(p.i_saw.node, 4095);
    ASSERT_STR(p.i_saw.name, "beta.node-2");
    ASSERT(p.i.keys && p.r.keys);
    /* One key per direction, the same at both ends of it. */
    ASSERT_MEM(p.i.tx_key, p.r.rx_key, sizeof p.i.tx_key);
    ASSERT_MEM(p.i.rx_key, p.r.tx_key, sizeof p.i.rx_key);
    ASSERT(memcmp(p.i.tx_key, p.i.rx_key, sizeof p.i.tx_key) != 0);
    /* The ephemeral secret keys are gone once used. */
    ASSERT(all_zero(p.i.sk, sizeof p.i.sk));
    ASSERT(all_zero(p.r.sk, sizeof p.r.sk));

    atoll__buf h_i = ATOLL__BUF_INIT, h_r = ATOLL__BUF_INIT;
    atoll__link_tx_header(&p.i, &h_i);
    atoll__link_tx_header(&p.r, &h_r);
    ASSERT_EQ(atoll__link_rx_header(&p.r, atoll__buf_data(&h_i), h_i.len), HEADERBYTES);
    ASSERT_EQ(atoll__link_rx_header(&p.i, atoll__buf_data(&h_r), h_r.len), HEADERBYTES);

    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_KICK, 0);
    m->session.v = 0x1234;
    memcpy(m->reason, "bye", 4);
    atoll__buf frame = ATOLL__BUF_INIT;
    ASSERT_EQ(atoll__wire_encode(m, &frame), ATOLL_OK);
    atoll__mail_free(m);

    chunks_one_way(&p.i, &p.r, &frame);
    chunks_one_way(&p.r, &p.i, &frame);
    /* And interleaved: each direction is its own stream. */
    chunks_one_way(&p.i, &p.r, &frame);
    chunks_one_way(&p.r, &p.i, &frame);

    atoll__buf_fini(&frame);
    atoll__buf_fini(&h_i);
    atoll__buf_fini(&h_r);
    pair_fini(&p);
    LEAK_CHECK();
}

TEST(hello_cut_at_every_length_is_incomplete)
{
    atoll__link_key key = key_of(SECRET);
    atoll__link_peer alpha = node_named(7, "alpha"), beta = node_named(12, "beta");
    atoll__link_crypto i, r = {0};
    atoll__buf hello_i = ATOLL__BUF_INIT, hello_r = ATOLL__BUF_INIT;
    atoll__link_peer saw;
    atoll__link_hello_start(&i, &key, &alpha, &hello_i);
    for (size_t n = 0; n < hello_i.len; n++)
        ASSERT_EQ(hello_read_exact(&r, &key, atoll__buf_data(&hello_i), n, &saw), 0);
    /* Followed by what comes next on the connection, it takes its own bytes only. */
    atoll__buf_append(&hello_i, "\x01\x02\x03", 3);
    ASSERT_EQ(hello_read_exact(&r, &key, atoll__buf_data(&hello_i), hello_i.len, &saw),
              hello_i.len - 3);
    atoll__link_hello_answer(&r, &key, &beta, &hello_r);
    for (size_t n = 0; n < hello_r.len; n++)
        ASSERT_EQ(hello_read_exact(&i, &key, atoll__buf_data(&hello_r), n, &saw), 0);
    size_t whole = hello_r.len;
    atoll__link_tx_header(&r, &hello_r);
    ASSERT_EQ(hello_read_exact(&i, &key, atoll__buf_data(&hello_r), hello_r.len, &saw), whole);
    ASSERT_EQ(saw.node, 12);
    ASSERT_STR(saw.name, "beta");
    atoll__buf_fini(&hello_i);
    atoll__buf_fini(&hello_r);
    LEAK_CHECK();
}

TEST(wrong_secret_refused_by_the_responder)
{
    atoll__link_key key = key_of(SECRET), other = key_of(OTHER_SECRET);
    atoll__link_peer alpha = node_named(7, "alpha");
    atoll__link_crypto i;
    atoll__buf hello = ATOLL__BUF_INIT;
    atoll__link_hello_start(&i, &other, &alpha, &hello);
    RESPONDER_GETS(&hello, &key, ATOLL_EAUTH);
    RESPONDER_GETS(&hello, &other, (ssize_t)hello.len); /* the same bytes, the right key */
    atoll__buf_fini(&hello);
    LEAK_CHECK();
}

TEST(responder_with_another_secret_refused_by_the_initiator)
{
    atoll__link_key key = key_of(SECRET), other = key_of(OTHER_SECRET);
    atoll__link_peer alpha = node_named(7, "alpha"), beta = node_named(8, "beta");
    atoll__link_crypto i, r = {0};
    atoll__buf hello_i = ATOLL__BUF_INIT, hello_r = ATOLL__BUF_INIT;
    atoll__link_peer saw;
    atoll__link_hello_start(&i, &key, &alpha, &hello_i);
    /* The answer is made under the other secret (read under the right one, so that
     * there is an answer at all). */
    ASSERT_EQ(hello_read_exact(&r, &key, atoll__buf_data(&hello_i), hello_i.len, &saw),
              hello_i.len);
    atoll__link_hello_answer(&r, &other, &beta, &hello_r);
    ASSERT_EQ(hello_read_exact(&i, &key, atoll__buf_data(&hello_r), hello_r.len, &saw),
              ATOLL_EAUTH);
    ASSERT(!i.keys);
    atoll__buf_fini(&hello_i);
    atoll__buf_fini(&hello_r);
    LEAK_CHECK();
}

/* The HELLO with bit `bit` flipped, padded with zeros to ATOLL_LINK_HELLO_MAX so that a
 * flipped name length that makes it longer is read as a whole HELLO, not waited for. */
static uint8_t *
flipped(const atoll__buf *hello, size_t bit)
{
    uint8_t *p = calloc(1, ATOLL_LINK_HELLO_MAX);
    ASSERT(p != NULL);
    memcpy(p, atoll__buf_data(hello), hello->len);
    p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    return p;
}

TEST(hello_with_a_flipped_bit_refused)
{
    atoll__link_key key = key_of(SECRET);
    atoll__link_peer saw;
    pair p;
    handshake(&p, &key, &key);
    for (size_t bit = 0; bit < p.hello_i.len * 8; bit++) {
        uint8_t *bad = flipped(&p.hello_i, bit);
        atoll__link_crypto r = {0};
        ssize_t k = atoll__link_hello_read(&r, &key, bad, ATOLL_LINK_HELLO_MAX, &saw);
        if (k != ATOLL_EPROTO && k != ATOLL_EAUTH)
            fprintf(stderr, "  initiator's HELLO, bit %zu: %zd\n", bit, k);
        ASSERT(k == ATOLL_EPROTO || k == ATOLL_EAUTH);
        free(bad);
    }
    for (size_t bit = 0; bit < p.hello_r.len * 8; bit++) {
        /* A fresh connection for each: the answer covers the initiator's HELLO. */
        atoll__link_crypto i2;
        atoll__buf hello_i2 = ATOLL__BUF_INIT, hello_r2 = ATOLL__BUF_INIT;
        atoll__link_peer alpha = node_named(7, "alpha"), beta = node_named(4095, "beta.node-2");
        atoll__link_crypto r2 = {0};
        atoll__link_hello_start(&i2, &key, &alpha, &hello_i2);
        ASSERT(atoll__link_hello_read(&r2, &key, atoll__buf_data(&hello_i2), hello_i2.len, &saw) >
               0);
        atoll__link_hello_answer(&r2, &key, &beta, &hello_r2);
        uint8_t *bad = flipped(&hello_r2, bit);
        ssize_t k = atoll__link_hello_read(&i2, &key, bad, ATOLL_LINK_HELLO_MAX, &saw);
        if (k != ATOLL_EPROTO && k != ATOLL_EAUTH)
            fprintf(stderr, "  responder's HELLO, bit %zu: %zd\n", bit, k);
        ASSERT(k == ATOLL_EPROTO || k == ATOLL_EAUTH);
        ASSERT(!i2.keys);
        free(bad);
        atoll__buf_fini(&hello_i2);
        atoll__buf_fini(&hello_r2);
    }
    pair_fini(&p);
    LEAK_CHECK();
}

TEST(hello_sent_back_to_its_sender_refused)
{
    atoll__link_key key = key_of(SECRET);
    atoll__link_peer saw;
    pair p;
    handshake(&p, &key, &key);
    /* The initiator's own HELLO, reflected to it. */
    atoll__link_crypto i;
    atoll__buf hello = ATOLL__BUF_INIT;
    atoll__link_peer alpha = node_named(7, "alpha");
    atoll__link_hello_start(&i, &key, &alpha, &hello);
    ASSERT_EQ(hello_read_exact(&i, &key, atoll__buf_data(&hello), hello.len, &saw),
              ATOLL_EPROTO);
    ASSERT(!i.keys);
    /* A responder's HELLO to a responder is no better. */
    RESPONDER_GETS(&p.hello_r, &key, ATOLL_EPROTO);
    atoll__buf_fini(&hello);
    pair_fini(&p);
    LEAK_CHECK();
}

TEST(responder_hello_replayed_to_another_connection_refused)
{
    atoll__link_key key = key_of(SECRET);
    atoll__link_peer saw, alpha = node_named(7, "alpha");
    pair p;
    handshake(&p, &key, &key);
    /* The same node connects again (same id and name): the old answer does not fit. */
    atoll__link_crypto i2;
    atoll__buf hello_i2 = ATOLL__BUF_INIT;
    atoll__link_hello_start(&i2, &key, &alpha, &hello_i2);
    ASSERT_EQ(hello_read_exact(&i2, &key, atoll__buf_data(&p.hello_r), p.hello_r.len, &saw),
              ATOLL_EAUTH);
    ASSERT(!i2.keys);
    atoll__buf_fini(&hello_i2);
    pair_fini(&p);
    LEAK_CHECK();
}

TEST(second_hello_refused)
{
    atoll__link_key key = key_of(SECRET);
    atoll__link_peer saw;
    pair p;
    handshake(&p, &key, &key);
    ASSERT_EQ(hello_read_exact(&p.r, &key, atoll__buf_data(&p.hello_i), p.hello_i.len, &saw),
              ATOLL_EPROTO);
    ASSERT_EQ(hello_read_exact(&p.i, &key, atoll__buf_data(&p.hello_r), p.hello_r.len, &saw),
              ATOLL_EPROTO);
    pair_fini(&p);
    LEAK_CHECK();
}

TEST(stranger_refused_at_its_first_bytes)
{
    atoll__link_key key = key_of(SECRET);
    atoll__link_peer saw;
    atoll__link_crypto r = {0};
    /* An HTTP client is refused at its first byte, long before 78 bytes came. */
    ASSERT_EQ(hello_read_exact(&r, &key, "G", 1, &saw), ATOLL_EPROTO);
    ASSERT_EQ(hello_read_exact(&r, &key, "GET / HTTP/1.1\r\n", 16, &saw), ATOLL_EPROTO);
    ASSERT_EQ(hello_read_exact(&r, &key, "ATOLL", 5, &saw), 0);
    ASSERT_EQ(hello_read_exact(&r, &key, "ATOLLNK2", 8, &saw), ATOLL_EPROTO);
    /* Another version, or a role the responder does not read, at the byte that says so. */
    ASSERT_EQ(hello_read_exact(&r, &key, "ATOLLNK1\x02", 9, &saw), ATOLL_EPROTO);
    ASSERT_EQ(hello_read_exact(&r, &key, "ATOLLNK1\x01", 9, &saw), 0);
    ASSERT_EQ(hello_read_exact(&r, &key, "ATOLLNK1\x01\x02", 10, &saw), ATOLL_EPROTO);
    ASSERT_EQ(hello_read_exact(&r, &key, "ATOLLNK1\x01\x03", 10, &saw), ATOLL_EPROTO);
    ASSERT_EQ(hello_read_exact(&r, &key, "ATOLLNK1\x01\x01", 10, &saw), 0);
    /* Node id 0 and a name length of 64, as soon as they are there. */
    ASSERT_EQ(hello_read_exact(&r, &key, "ATOLLNK1\x01\x01\x00\x00", 12, &saw), ATOLL_EPROTO);
    ASSERT_EQ(hello_read_exact(&r, &key, "ATOLLNK1\x01\x01\x07\x00", 12, &saw), 0);
    ASSERT_EQ(hello_read_exact(&r, &key, "ATOLLNK1\x01\x01\x07\x00\x40", 13, &saw), ATOLL_EPROTO);
    ASSERT_EQ(hello_read_exact(&r, &key, "ATOLLNK1\x01\x01\x07\x00\x3f", 13, &saw), 0);
    LEAK_CHECK();
}

TEST(bad_names_and_node_ids_refused_under_a_valid_mac)
{
    atoll__link_key key = key_of(SECRET);
    uint8_t pk[crypto_kx_PUBLICKEYBYTES];
    fresh_pk(pk);
    char long_name[ATOLL_LINK_NAME_MAX + 2];
    memset(long_name, 'n', sizeof long_name);
    atoll__buf b = ATOLL__BUF_INIT;

    /* The builder's good HELLO is taken, so what refuses the others is what they hold. */
    hb_hello(&b, 1, 9, "gamma", 5, pk, &key, NULL, 0);
    RESPONDER_GETS(&b, &key, (ssize_t)b.len);
    hb_hello(&b, 1, 1, "g", 1, pk, &key, NULL, 0);
    RESPONDER_GETS(&b, &key, (ssize_t)b.len);
    hb_hello(&b, 1, ATOLL_NODE_ID_MAX, long_name, ATOLL_LINK_NAME_MAX, pk, &key, NULL, 0);
    RESPONDER_GETS(&b, &key, (ssize_t)b.len);
    ASSERT_EQ(b.len, 140);

    hb_hello(&b, 1, 0, "gamma", 5, pk, &key, NULL, 0);
    RESPONDER_GETS(&b, &key, ATOLL_EPROTO);
    hb_hello(&b, 1, ATOLL_NODE_ID_MAX + 1, "gamma", 5, pk, &key, NULL, 0);
    RESPONDER_GETS(&b, &key, ATOLL_EPROTO);
    hb_hello(&b, 1, UINT16_MAX, "gamma", 5, pk, &key, NULL, 0);
    RESPONDER_GETS(&b, &key, ATOLL_EPROTO);
    hb_hello(&b, 1, 9, "", 0, pk, &key, NULL, 0);
    RESPONDER_GETS(&b, &key, ATOLL_EPROTO);
    hb_hello(&b, 1, 9, long_name, ATOLL_LINK_NAME_MAX + 1, pk, &key, NULL, 0);
    RESPONDER_GETS(&b, &key, ATOLL_EPROTO);
    hb_hello(&b, 1, 9, "ga\0ma", 5, pk, &key, NULL, 0);
    RESPONDER_GETS(&b, &key, ATOLL_EPROTO);
    hb_hello(&b, 1, 9, "gamma\0", 6, pk, &key, NULL, 0);
    RESPONDER_GETS(&b, &key, ATOLL_EPROTO);
    hb_hello(&b, 1, 9, "\0", 1, pk, &key, NULL, 0);
    RESPONDER_GETS(&b, &key, ATOLL_EPROTO);

    /* The same from a responder, to an initiator (a fresh one for each). */
    struct {
        uint16_t node;
        const char *name;
        size_t len;
        ssize_t want; /* 0: taken */
    } cases[] = {
        {9, "gamma", 5, 0},          {0, "gamma", 5, ATOLL_EPROTO},
        {4096, "gamma", 5, ATOLL_EPROTO}, {9, "", 0, ATOLL_EPROTO},
        {9, long_name, 64, ATOLL_EPROTO}, {9, "ga\0ma", 5, ATOLL_EPROTO},
    };
    atoll__link_peer alpha = node_named(7, "alpha"), saw;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        atoll__link_crypto i;
        atoll__buf hello_i = ATOLL__BUF_INIT;
        atoll__link_hello_start(&i, &key, &alpha, &hello_i);
        hb_hello(&b, 2, cases[c].node, cases[c].name, cases[c].len, pk, &key,
                 atoll__buf_data(&hello_i), hello_i.len);
        ssize_t k = hello_read_exact(&i, &key, atoll__buf_data(&b), b.len, &saw);
        ASSERT_EQ(k, cases[c].want ? cases[c].want : (ssize_t)b.len);
        ASSERT_EQ(i.keys, cases[c].want == 0);
        if (cases[c].want == 0) {
            ASSERT_EQ(saw.node, 9);
            ASSERT_STR(saw.name, "gamma");
        }
        atoll__buf_fini(&hello_i);
        atoll__link_crypto_wipe(&i);
    }
    atoll__buf_fini(&b);
    LEAK_CHECK();
}

TEST(public_key_of_small_order_refused)
{
    /* Such a key makes the shared key zero whatever the other side's key is: only a
     * holder of the secret could send one, and still it must not become a link. */
    atoll__link_key key = key_of(SECRET);
    uint8_t zero[crypto_kx_PUBLICKEYBYTES] = {0}, one[crypto_kx_PUBLICKEYBYTES] = {1};
    atoll__buf b = ATOLL__BUF_INIT;
    hb_hello(&b, 1, 9, "gamma", 5, zero, &key, NULL, 0);
    RESPONDER_GETS(&b, &key, ATOLL_EPROTO);
    hb_hello(&b, 1, 9, "gamma", 5, one, &key, NULL, 0);
    RESPONDER_GETS(&b, &key, ATOLL_EPROTO);

    atoll__link_peer alpha = node_named(7, "alpha"), saw;
    atoll__link_crypto i;
    atoll__buf hello_i = ATOLL__BUF_INIT;
    atoll__link_hello_start(&i, &key, &alpha, &hello_i);
    hb_hello(&b, 2, 9, "gamma", 5, zero, &key, atoll__buf_data(&hello_i), hello_i.len);
    ASSERT_EQ(hello_read_exact(&i, &key, atoll__buf_data(&b), b.len, &saw), ATOLL_EPROTO);
    ASSERT(!i.keys);
    atoll__buf_fini(&hello_i);
    atoll__buf_fini(&b);
    LEAK_CHECK();
}

/* ---- chunks ----------------------------------------------------------------------------- */

static const char PLAIN[] = "\x02\x01\x00\x00\x00\x00\x00\x00\x00" /* PING 1 */
                            "\x03\x02\x00\x00\x00\x00\x00\x00\x00"; /* PONG 2 */
#define PLAIN_LEN (sizeof PLAIN - 1)

static void
seal_plain(atoll__link_crypto *c, atoll__buf *out)
{
    ASSERT_EQ(atoll__link_seal(c, (const uint8_t *)PLAIN, PLAIN_LEN, out), ATOLL_OK);
}

TEST(chunk_with_a_flipped_bit_refused)
{
    atoll__buf chunk = ATOLL__BUF_INIT, plain = ATOLL__BUF_INIT;
    size_t chunk_len = 4 + PLAIN_LEN + ABYTES;
    for (size_t bit = 0; bit < chunk_len * 8; bit++) {
        pair p;
        pair_up(&p);
        chunk.len = 0;
        seal_plain(&p.i, &chunk);
        ASSERT_EQ(chunk.len, chunk_len);
        atoll__buf_data(&chunk)[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        ssize_t k = open_exact(&p.r, atoll__buf_data(&chunk), chunk.len, &plain);
        if (bit >= 32) {
            ASSERT_EQ(k, ATOLL_EAUTH);
        } else {
            /* In the length: longer waits for more, past the limit or shorter than a
             * tag is refused at once, shorter cuts the ciphertext. Never opened. */
            ASSERT(k == 0 || k == ATOLL_ELIMIT || k == ATOLL_EPROTO || k == ATOLL_EAUTH);
        }
        ASSERT_EQ(plain.len, 0);
        pair_fini(&p);
    }
    /* A bit of a secretstream header flipped: its first chunk does not open. */
    for (size_t bit = 0; bit < HEADERBYTES * 8; bit++) {
        atoll__link_key key = key_of(SECRET);
        pair p;
        handshake(&p, &key, &key);
        atoll__buf h = ATOLL__BUF_INIT;
        atoll__link_tx_header(&p.i, &h);
        atoll__buf_data(&h)[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        ASSERT_EQ(atoll__link_rx_header(&p.r, atoll__buf_data(&h), h.len), HEADERBYTES);
        chunk.len = 0;
        seal_plain(&p.i, &chunk);
        ASSERT_EQ(open_exact(&p.r, atoll__buf_data(&chunk), chunk.len, &plain), ATOLL_EAUTH);
        atoll__buf_fini(&h);
        pair_fini(&p);
    }
    atoll__buf_fini(&chunk);
    atoll__buf_fini(&plain);
    LEAK_CHECK();
}

TEST(chunk_replayed_refused)
{
    pair p;
    pair_up(&p);
    atoll__buf chunk = ATOLL__BUF_INIT, plain = ATOLL__BUF_INIT;
    seal_plain(&p.i, &chunk);
    ASSERT_EQ(open_exact(&p.r, atoll__buf_data(&chunk), chunk.len, &plain), chunk.len);
    ASSERT_EQ(plain.len, PLAIN_LEN);
    ASSERT_MEM(atoll__buf_data(&plain), PLAIN, PLAIN_LEN);
    ASSERT_EQ(open_exact(&p.r, atoll__buf_data(&chunk), chunk.len, &plain), ATOLL_EAUTH);
    ASSERT_EQ(plain.len, 0);
    atoll__buf_fini(&chunk);
    atoll__buf_fini(&plain);
    pair_fini(&p);
    LEAK_CHECK();
}

TEST(chunks_reordered_refused)
{
    pair p;
    pair_up(&p);
    atoll__buf first = ATOLL__BUF_INIT, second = ATOLL__BUF_INIT, plain = ATOLL__BUF_INIT;
    seal_plain(&p.i, &first);
    seal_plain(&p.i, &second);
    /* The same plaintext, yet not the same bytes: each chunk has its place. */
    ASSERT(memcmp(atoll__buf_data(&first), atoll__buf_data(&second), first.len) != 0);
    ASSERT_EQ(open_exact(&p.r, atoll__buf_data(&second), second.len, &plain), ATOLL_EAUTH);
    atoll__buf_fini(&first);
    atoll__buf_fini(&second);
    atoll__buf_fini(&plain);
    pair_fini(&p);
    LEAK_CHECK();
}

TEST(chunk_of_another_direction_or_connection_refused)
{
    pair p, q;
    pair_up(&p);
    pair_up(&q);
    atoll__buf chunk = ATOLL__BUF_INIT, plain = ATOLL__BUF_INIT;
    seal_plain(&p.i, &chunk);
    /* Sent back to its sender. */
    ASSERT_EQ(open_exact(&p.i, atoll__buf_data(&chunk), chunk.len, &plain), ATOLL_EAUTH);
    /* To the same node on another connection (same secret, same names). */
    ASSERT_EQ(open_exact(&q.r, atoll__buf_data(&chunk), chunk.len, &plain), ATOLL_EAUTH);
    ASSERT_EQ(open_exact(&p.r, atoll__buf_data(&chunk), chunk.len, &plain), chunk.len);
    atoll__buf_fini(&chunk);
    atoll__buf_fini(&plain);
    pair_fini(&p);
    pair_fini(&q);
    LEAK_CHECK();
}

static ssize_t
open_length_only(atoll__link_crypto *c, uint32_t len, atoll__buf *plain)
{
    uint8_t b[4];
    atoll__wire_store_u32(b, len);
    return open_exact(c, b, 4, plain);
}

TEST(chunk_too_long_refused_before_reading)
{
    pair p;
    pair_up(&p);
    atoll__buf plain = ATOLL__BUF_INIT;
    /* Only the 4 bytes of the length exist: anything read past them is an overflow. */
    ASSERT_EQ(open_length_only(&p.r, ATOLL_LINK_CHUNK_MAX + ABYTES + 1, &plain), ATOLL_ELIMIT);
    ASSERT_EQ(open_length_only(&p.r, UINT32_MAX, &plain), ATOLL_ELIMIT);
    ASSERT_EQ(plain.len, 0);
    ASSERT_EQ(open_length_only(&p.r, ATOLL_LINK_CHUNK_MAX + ABYTES, &plain), 0);
    for (uint32_t len = 0; len < ABYTES; len++)
        ASSERT_EQ(open_length_only(&p.r, len, &plain), ATOLL_EPROTO);
    ASSERT_EQ(open_length_only(&p.r, ABYTES, &plain), 0);
    atoll__buf_fini(&plain);
    pair_fini(&p);
    LEAK_CHECK();
}

TEST(chunk_cut_at_every_length_is_incomplete)
{
    pair p;
    pair_up(&p);
    atoll__buf chunk = ATOLL__BUF_INIT, plain = ATOLL__BUF_INIT;
    seal_plain(&p.i, &chunk);
    for (size_t n = 0; n < chunk.len; n++) {
        ASSERT_EQ(open_exact(&p.r, atoll__buf_data(&chunk), n, &plain), 0);
        ASSERT_EQ(plain.len, 0);
    }
    ASSERT_EQ(open_exact(&p.r, atoll__buf_data(&chunk), chunk.len, &plain), chunk.len);
    ASSERT_MEM(atoll__buf_data(&plain), PLAIN, PLAIN_LEN);
    atoll__buf_fini(&chunk);
    atoll__buf_fini(&plain);
    pair_fini(&p);
    LEAK_CHECK();
}

TEST(chunk_with_a_tag_other_than_message_refused)
{
    static const unsigned char tags[] = {crypto_secretstream_xchacha20poly1305_TAG_FINAL,
                                         crypto_secretstream_xchacha20poly1305_TAG_PUSH,
                                         crypto_secretstream_xchacha20poly1305_TAG_REKEY};
    for (size_t t = 0; t < sizeof tags; t++) {
        pair p;
        pair_up(&p);
        /* Sealed by hand with the sender's own stream state, so it is authentic. */
        uint8_t chunk[4 + PLAIN_LEN + ABYTES];
        atoll__wire_store_u32(chunk, PLAIN_LEN + ABYTES);
        ASSERT_EQ(crypto_secretstream_xchacha20poly1305_push(&p.i.tx, chunk + 4, NULL,
                                                             (const uint8_t *)PLAIN, PLAIN_LEN,
                                                             NULL, 0, tags[t]),
                  0);
        atoll__buf plain = ATOLL__BUF_INIT;
        ASSERT_EQ(open_exact(&p.r, chunk, sizeof chunk, &plain), ATOLL_EPROTO);
        ASSERT_EQ(plain.len, 0);
        atoll__buf_fini(&plain);
        pair_fini(&p);
    }
    LEAK_CHECK();
}

TEST(largest_chunk)
{
    pair p;
    pair_up(&p);
    size_t max = ATOLL_LINK_CHUNK_MAX;
    uint8_t *big = malloc(max + 1);
    ASSERT(big != NULL);
    for (size_t k = 0; k <= max; k++)
        big[k] = (uint8_t)(k * 131 + (k >> 13));
    atoll__buf chunk = ATOLL__BUF_INIT, plain = ATOLL__BUF_INIT;
    ASSERT_EQ(atoll__link_seal(&p.i, big, max + 1, &chunk), ATOLL_ELIMIT);
    ASSERT_EQ(chunk.len, 0);
    ASSERT_EQ(atoll__link_seal(&p.i, big, max, &chunk), ATOLL_OK);
    ASSERT_EQ(chunk.len, 4 + max + ABYTES);
    ASSERT_EQ(atoll__link_open(&p.r, atoll__buf_data(&chunk), chunk.len, &plain), chunk.len);
    ASSERT_EQ(plain.len, max);
    ASSERT_MEM(atoll__buf_data(&plain), big, max);
    free(big);
    atoll__buf_fini(&chunk);
    atoll__buf_fini(&plain);
    pair_fini(&p);
    LEAK_CHECK();
}

TEST(stream_calls_out_of_order)
{
    atoll__link_key key = key_of(SECRET);
    pair p;
    atoll__buf out = ATOLL__BUF_INIT, plain = ATOLL__BUF_INIT;
    uint8_t header[HEADERBYTES] = {0};
    /* No keys yet: a responder that only read a HELLO. */
    atoll__link_crypto r = {0};
    ASSERT_EQ(atoll__link_rx_header(&r, header, sizeof header), ATOLL_EPROTO);
    handshake(&p, &key, &key);
    /* Keys, but no headers. */
    ASSERT_EQ(atoll__link_seal(&p.i, (const uint8_t *)PLAIN, PLAIN_LEN, &out), ATOLL_EINVAL);
    ASSERT_EQ(out.len, 0);
    ASSERT_EQ(open_length_only(&p.r, ABYTES, &plain), ATOLL_EPROTO);
    /* A header cut short waits; read once, it is not read again. */
    atoll__link_tx_header(&p.i, &out);
    for (size_t n = 0; n < HEADERBYTES; n++)
        ASSERT_EQ(atoll__link_rx_header(&p.r, atoll__buf_data(&out), n), 0);
    ASSERT_EQ(atoll__link_rx_header(&p.r, atoll__buf_data(&out), out.len), HEADERBYTES);
    ASSERT_EQ(atoll__link_rx_header(&p.r, atoll__buf_data(&out), out.len), ATOLL_EPROTO);
    atoll__buf_fini(&out);
    atoll__buf_fini(&plain);
    pair_fini(&p);
    LEAK_CHECK();
}

TEST(wipe_clears_everything)
{
    pair p;
    pair_up(&p);
    atoll__link_crypto_wipe(&p.i);
    ASSERT(all_zero(&p.i, sizeof p.i));
    pair_fini(&p);
    LEAK_CHECK();
}

/* ---- records ---------------------------------------------------------------------------- */

TEST(record_layout_byte_by_byte)
{
    uint8_t frame[16], want[64];
    size_t frame_len = test_hex("05 00 00 00 aa bb cc dd ee", frame, sizeof frame);
    atoll__buf b = ATOLL__BUF_INIT;
    atoll__link_put_mail(&b, 0x0102, frame, frame_len);
    atoll__link_put_ping(&b, ATOLL_LINK_REC_PING, 0x0102030405060708u);
    atoll__link_put_ping(&b, ATOLL_LINK_REC_PONG, 9);
    size_t n = test_hex("01 | 02 01 | 05 00 00 00 aa bb cc dd ee |"
                        "02 | 08 07 06 05 04 03 02 01 |"
                        "03 | 09 00 00 00 00 00 00 00",
                        want, sizeof want);
    ASSERT_EQ(b.len, n);
    ASSERT_MEM(atoll__buf_data(&b), want, n);

    /* Back, from one exact copy, record by record. */
    uint8_t *copy = exact(want, n);
    atoll__link_rec rec;
    ASSERT_EQ(atoll__link_rec_read(copy, n, 0x0103, &rec), 12);
    ASSERT_EQ(rec.kind, ATOLL_LINK_REC_MAIL);
    ASSERT_EQ(rec.worker, 0x0102);
    ASSERT(rec.frame == copy + 3);
    ASSERT_EQ(rec.frame_len, 9);
    ASSERT_EQ(atoll__link_rec_read(copy + 12, n - 12, 1, &rec), 9);
    ASSERT_EQ(rec.kind, ATOLL_LINK_REC_PING);
    ASSERT(rec.t == 0x0102030405060708u);
    ASSERT_EQ(atoll__link_rec_read(copy + 21, n - 21, 1, &rec), 9);
    ASSERT_EQ(rec.kind, ATOLL_LINK_REC_PONG);
    ASSERT(rec.t == 9);
    ASSERT_EQ(atoll__link_rec_read(copy + 30, 0, 1, &rec), ATOLL_EPROTO); /* nothing left */
    free(copy);
    atoll__buf_fini(&b);
    LEAK_CHECK();
}

TEST(record_of_unknown_kind_refused)
{
    static const uint8_t kinds[] = {0, 4, 5, 0x81, 0xff};
    for (size_t k = 0; k < sizeof kinds; k++) {
        uint8_t b[16] = {kinds[k]};
        atoll__link_rec rec;
        ASSERT_EQ(rec_read_exact(b, sizeof b, NWORKERS, &rec), ATOLL_EPROTO);
    }
    LEAK_CHECK();
}

TEST(record_cut_at_every_length_refused)
{
    uint8_t frame[16];
    size_t frame_len = test_hex("05 00 00 00 aa bb cc dd ee", frame, sizeof frame);
    atoll__buf recs[3] = {ATOLL__BUF_INIT, ATOLL__BUF_INIT, ATOLL__BUF_INIT};
    atoll__link_put_mail(&recs[0], 1, frame, frame_len);
    atoll__link_put_ping(&recs[1], ATOLL_LINK_REC_PING, 77);
    atoll__link_put_ping(&recs[2], ATOLL_LINK_REC_PONG, 78);
    for (int r = 0; r < 3; r++) {
        atoll__link_rec rec;
        /* A chunk holds whole records: a cut one is an error, not a wait. */
        for (size_t n = 0; n < recs[r].len; n++)
            ASSERT_EQ(rec_read_exact(atoll__buf_data(&recs[r]), n, NWORKERS, &rec), ATOLL_EPROTO);
        ASSERT_EQ(rec_read_exact(atoll__buf_data(&recs[r]), recs[r].len, NWORKERS, &rec),
                  recs[r].len);
        atoll__buf_fini(&recs[r]);
    }
    LEAK_CHECK();
}

TEST(record_for_a_worker_out_of_range_refused)
{
    uint8_t frame[16];
    size_t frame_len = test_hex("02 00 00 00 aa bb", frame, sizeof frame);
    atoll__link_rec rec;
    atoll__buf b = ATOLL__BUF_INIT;
    atoll__link_put_mail(&b, NWORKERS - 1, frame, frame_len);
    ASSERT_EQ(rec_read_exact(atoll__buf_data(&b), b.len, NWORKERS, &rec), b.len);
    ASSERT_EQ(rec_read_exact(atoll__buf_data(&b), b.len, NWORKERS - 1, &rec), ATOLL_EPROTO);
    ASSERT_EQ(rec_read_exact(atoll__buf_data(&b), b.len, 0, &rec), ATOLL_EPROTO);
    b.len = 0;
    atoll__link_put_mail(&b, NWORKERS, frame, frame_len);
    ASSERT_EQ(rec_read_exact(atoll__buf_data(&b), b.len, NWORKERS, &rec), ATOLL_EPROTO);
    b.len = 0;
    atoll__link_put_mail(&b, UINT16_MAX, frame, frame_len);
    ASSERT_EQ(rec_read_exact(atoll__buf_data(&b), b.len, NWORKERS, &rec), ATOLL_EPROTO);
    ASSERT_EQ(rec_read_exact(atoll__buf_data(&b), b.len, UINT16_MAX + 1, &rec), b.len);
    atoll__buf_fini(&b);
    LEAK_CHECK();
}

TEST(record_with_a_frame_over_the_limit_refused)
{
    atoll__link_rec rec;
    /* The length alone is judged: only the record's 7 header bytes exist. */
    uint8_t head[7] = {ATOLL_LINK_REC_MAIL, 0, 0};
    atoll__wire_store_u32(head + 3, ATOLL_WIRE_FRAME_MAX + 1);
    ASSERT_EQ(rec_read_exact(head, sizeof head, NWORKERS, &rec), ATOLL_EPROTO);
    atoll__wire_store_u32(head + 3, UINT32_MAX);
    ASSERT_EQ(rec_read_exact(head, sizeof head, NWORKERS, &rec), ATOLL_EPROTO);

    /* A frame of ATOLL_WIRE_FRAME_MAX bytes is taken, one byte past what is left is not. */
    size_t n = 7 + ATOLL_WIRE_FRAME_MAX;
    uint8_t *big = calloc(1, n + 1);
    ASSERT(big != NULL);
    big[0] = ATOLL_LINK_REC_MAIL;
    atoll__wire_store_u32(big + 3, ATOLL_WIRE_FRAME_MAX);
    ASSERT_EQ(atoll__link_rec_read(big, n, NWORKERS, &rec), n);
    ASSERT_EQ(rec.frame_len, 4 + ATOLL_WIRE_FRAME_MAX);
    ASSERT_EQ(atoll__link_rec_read(big, n - 1, NWORKERS, &rec), ATOLL_EPROTO);
    atoll__wire_store_u32(big + 3, ATOLL_WIRE_FRAME_MAX + 1);
    ASSERT_EQ(atoll__link_rec_read(big, n + 1, NWORKERS, &rec), ATOLL_EPROTO);
    free(big);
    LEAK_CHECK();
}

TEST_MAIN(secret_shorter_than_the_minimum_is_refused, link_key_is_blake2b_of_context_and_secret,
          hello_layout_byte_by_byte, session_keys_follow_the_schedule,
          handshake_and_chunks_both_ways,
          hello_cut_at_every_length_is_incomplete, wrong_secret_refused_by_the_responder,
          responder_with_another_secret_refused_by_the_initiator, hello_with_a_flipped_bit_refused,
          hello_sent_back_to_its_sender_refused,
          responder_hello_replayed_to_another_connection_refused, second_hello_refused,
          stranger_refused_at_its_first_bytes, bad_names_and_node_ids_refused_under_a_valid_mac,
          public_key_of_small_order_refused, chunk_with_a_flipped_bit_refused,
          chunk_replayed_refused, chunks_reordered_refused,
          chunk_of_another_direction_or_connection_refused, chunk_too_long_refused_before_reading,
          chunk_cut_at_every_length_is_incomplete, chunk_with_a_tag_other_than_message_refused,
          largest_chunk, stream_calls_out_of_order, wipe_clears_everything,
          record_layout_byte_by_byte, record_of_unknown_kind_refused,
          record_cut_at_every_length_refused, record_for_a_worker_out_of_range_refused,
          record_with_a_frame_over_the_limit_refused)
