/* fuzz_link.c -- libFuzzer target: the link codec (src/cluster/link_codec.c), which reads
 * what another node, or anyone who can reach a node's link port, sends.
 *
 * Byte 0 picks a mode (bits 0-1) and its option; the rest is the mode's input:
 *
 *   0 HELLO    the bytes as a peer's HELLO, to a fresh responder and to an initiator
 *              that sent its own. Option (bit 2): re-MAC, the target writes a valid MAC
 *              where the bytes' own layout puts it (over the initiator's HELLO too, for
 *              the initiator), so mutations get past the MAC to the checks behind it.
 *              The answer must be the one of a reference written here from the layout
 *              in link_codec.c: 0 while the bytes could still become a HELLO, the
 *              HELLO's length when it is whole and good, ATOLL_EPROTO or ATOLL_EAUTH
 *              otherwise. A HELLO taken gives the id and name it holds, and the keys.
 *   1 chunks   after a real handshake, the input is a list of operations that build one
 *              direction's stream (option bit 2: which): seal the next bytes as a
 *              chunk, append raw bytes, flip a bit, append the last chunk again, cut
 *              the end. The stream is opened chunk by chunk from an exact-size copy:
 *              every chunk that is still as sealed and in its place must open to its
 *              plaintext, and the first one that is not must be refused with the error
 *              its length calls for (0 only when not whole, ATOLL_ELIMIT exactly past
 *              the limit, ATOLL_EPROTO below a tag's size, otherwise ATOLL_EAUTH).
 *   2 records  the bytes as a chunk's plaintext, read record by record (option bits
 *              2-4: the node's workers, 0..7) until the end or a refusal; every answer
 *              must be the reference's, a record read must use 1..left bytes, a MAIL's
 *              frame must lie inside it within ATOLL_WIRE_FRAME_MAX, and each record
 *              written again must give the same bytes.
 *   3 round    the bytes cut into records by a simple rule (kind, direction, end of
 *     trip     chunk, worker, frame length, time from the bytes themselves), sealed into
 *              chunks by the side the rule names, opened by the other: every record must
 *              come back as it was put, in order, and nothing more.
 *
 * libsodium's randomness is repeatable here (tests/support/sodium_fixed.h) and set back
 * at every input, so an input runs the same way each time. The codec belongs to the
 * runtime library, so this target links `atoll` as well (tests/CMakeLists.txt).
 */
#include "cluster/link_codec.h"
#include "node/wire.h"
#include "sodium_fixed.h"

#include <atoll/atoll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#define SECRET "fuzz-link-secret-0123456789abcdef"
#define ABYTES crypto_secretstream_xchacha20poly1305_ABYTES
#define HELLO_HEAD 13
#define HELLO_FIXED 77 /* the bytes of a HELLO besides its name */
#define ROUND_TRIP_WORKERS 4

static atoll__link_key KEY;
static const atoll__link_peer ALPHA = {7, "alpha"}, BETA = {9, "beta"};

static uint32_t
le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint8_t *
exact(const void *p, size_t n)
{
    uint8_t *copy = malloc(n ? n : 1);
    CHECK(copy != NULL);
    if (n)
        memcpy(copy, p, n);
    return copy;
}

/* Two ends of one connection after the HELLOs and both headers. */
static void
pair_up(atoll__link_crypto *i, atoll__link_crypto *r)
{
    atoll__buf hi = ATOLL__BUF_INIT, hr = ATOLL__BUF_INIT;
    atoll__link_peer saw;
    memset(r, 0, sizeof *r);
    atoll__link_hello_start(i, &KEY, &ALPHA, &hi);
    CHECK(atoll__link_hello_read(r, &KEY, atoll__buf_data(&hi), hi.len, &saw) == (ssize_t)hi.len);
    atoll__link_hello_answer(r, &KEY, &BETA, &hr);
    CHECK(atoll__link_hello_read(i, &KEY, atoll__buf_data(&hr), hr.len, &saw) == (ssize_t)hr.len);
    hi.len = hr.len = 0;
    atoll__link_tx_header(i, &hi);
    atoll__link_tx_header(r, &hr);
    CHECK(atoll__link_rx_header(r, atoll__buf_data(&hi), hi.len) == (ssize_t)hi.len);
    CHECK(atoll__link_rx_header(i, atoll__buf_data(&hr), hr.len) == (ssize_t)hr.len);
    atoll__buf_fini(&hi);
    atoll__buf_fini(&hr);
}

/* ---- mode 0: HELLO ---------------------------------------------------------------------- */

/* Writes a valid MAC into p[0..n) where its name length puts it, over prefix first. */
static void
remac(uint8_t *p, size_t n, const uint8_t *prefix, size_t prefix_len)
{
    if (n < HELLO_HEAD || n < HELLO_FIXED + (size_t)p[12])
        return;
    size_t body = HELLO_FIXED + (size_t)p[12] - crypto_auth_BYTES;
    uint8_t *msg = malloc(prefix_len + body);
    CHECK(msg != NULL);
    if (prefix_len)
        memcpy(msg, prefix, prefix_len);
    memcpy(msg + prefix_len, p, body);
    crypto_auth(p + body, msg, prefix_len + body, KEY.k);
    free(msg);
}

/* What the codec must answer to p[0..n) from a sender in role (1 initiator, 2
 * responder), whose MAC covers prefix first: the layout of link_codec.c, written again. */
static ssize_t
ref_hello(const uint8_t *p, size_t n, uint8_t role, const uint8_t *prefix, size_t prefix_len)
{
    static const char magic[] = "ATOLLNK1";
    for (size_t k = 0; k < n && k < 8; k++)
        if (p[k] != (uint8_t)magic[k])
            return ATOLL_EPROTO;
    if (n > 8 && p[8] != 1)
        return ATOLL_EPROTO;
    if (n > 9 && p[9] != role)
        return ATOLL_EPROTO;
    if (n > 11) {
        unsigned node = p[10] | p[11] << 8;
        if (node == 0 || node > 4095)
            return ATOLL_EPROTO;
    }
    if (n > 12 && (p[12] == 0 || p[12] > 63))
        return ATOLL_EPROTO;
    if (n < HELLO_HEAD || n < HELLO_FIXED + (size_t)p[12])
        return 0;
    size_t name_len = p[12], body = HELLO_FIXED + name_len - crypto_auth_BYTES;
    for (size_t k = 0; k < name_len; k++)
        if (p[HELLO_HEAD + k] == 0)
            return ATOLL_EPROTO;
    uint8_t *msg = malloc(prefix_len + body), mac[crypto_auth_BYTES];
    CHECK(msg != NULL);
    if (prefix_len)
        memcpy(msg, prefix, prefix_len);
    memcpy(msg + prefix_len, p, body);
    crypto_auth(mac, msg, prefix_len + body, KEY.k);
    free(msg);
    if (memcmp(mac, p + body, sizeof mac) != 0)
        return ATOLL_EAUTH;
    /* A key of small order gives no shared key, whatever the other key is. */
    static const uint8_t scalar[crypto_scalarmult_SCALARBYTES] = {42, 1, 2, 3};
    uint8_t q[crypto_scalarmult_BYTES];
    if (crypto_scalarmult(q, scalar, p + body - crypto_kx_PUBLICKEYBYTES) != 0)
        return ATOLL_EPROTO;
    return (ssize_t)(HELLO_FIXED + name_len);
}

static void
check_peer(const uint8_t *p, const atoll__link_peer *peer)
{
    CHECK(peer->node == (p[10] | p[11] << 8));
    CHECK(strlen(peer->name) == p[12]);
    CHECK(memcmp(peer->name, p + HELLO_HEAD, p[12]) == 0);
}

static void
fuzz_hello(const uint8_t *in, size_t n, bool with_mac)
{
    atoll__link_peer peer;
    atoll__buf out = ATOLL__BUF_INIT;

    /* To a responder. */
    uint8_t *p = exact(in, n);
    if (with_mac)
        remac(p, n, NULL, 0);
    atoll__link_crypto r = {0};
    ssize_t k = atoll__link_hello_read(&r, &KEY, p, n, &peer);
    ssize_t want = ref_hello(p, n, 1, NULL, 0);
    if (k != want)
        fprintf(stderr, "responder read %zd, the reference %zd\n", k, want);
    CHECK(k == want);
    CHECK(k <= (ssize_t)n);
    if (k > 0) {
        /* Taken without re-MAC only for a HELLO made under this key (the corpus holds
         * some: an initiator's HELLO can be replayed, the chunks after it cannot). */
        check_peer(p, &peer);
        atoll__link_hello_answer(&r, &KEY, &BETA, &out);
        CHECK(r.keys && out.len == HELLO_FIXED + strlen(BETA.name));
    } else {
        CHECK(!r.keys && r.hello_peer_len == 0);
    }
    free(p);

    /* To an initiator. */
    atoll__link_crypto i;
    out.len = 0;
    atoll__link_hello_start(&i, &KEY, &ALPHA, &out);
    p = exact(in, n);
    if (with_mac)
        remac(p, n, atoll__buf_data(&out), out.len);
    k = atoll__link_hello_read(&i, &KEY, p, n, &peer);
    want = ref_hello(p, n, 2, atoll__buf_data(&out), out.len);
    if (k != want)
        fprintf(stderr, "initiator read %zd, the reference %zd\n", k, want);
    CHECK(k == want);
    /* No "never taken without re-MAC" here: randomness is repeatable, so this
     * initiator's HELLO is the same on every run, and libFuzzer learns the answer's
     * MAC from the reference's memcmp (its comparison hooks see both sides). Such an
     * input is a genuine answer under the key (corpus: found-answer-learned-mac); the
     * codec compares in constant time, outside the fuzzer's sight. */
    CHECK(k <= (ssize_t)n);
    CHECK(i.keys == (k > 0));
    if (k > 0)
        check_peer(p, &peer);
    free(p);
    atoll__buf_fini(&out);
    atoll__link_crypto_wipe(&i);
    atoll__link_crypto_wipe(&r);
}

/* ---- mode 1: chunks --------------------------------------------------------------------- */

static void
fuzz_chunks(const uint8_t *in, size_t n, bool responder_sends)
{
    atoll__link_crypto i, r;
    pair_up(&i, &r);
    atoll__link_crypto *tx = responder_sends ? &r : &i, *rx = responder_sends ? &i : &r;

    /* stream: what the receiver gets; pristine: the sealed chunks alone, in order. */
    atoll__buf stream = ATOLL__BUF_INIT, pristine = ATOLL__BUF_INIT, plain = ATOLL__BUF_INIT;
    atoll__buf last = ATOLL__BUF_INIT; /* the chunk sealed last */
    size_t *plain_at = malloc((n + 1) * sizeof *plain_at), nchunks = 0;
    size_t *plain_len = malloc((n + 1) * sizeof *plain_len);
    CHECK(plain_at != NULL && plain_len != NULL);
    size_t k = 0;
    while (k < n) {
        uint8_t op = in[k++];
        size_t arg = op >> 2;
        switch (op & 3) {
        case 0: { /* seal the next arg bytes */
            size_t len = arg < n - k ? arg : n - k;
            last.len = 0;
            CHECK(atoll__link_seal(tx, in + k, len, &last) == ATOLL_OK);
            CHECK(last.len == 4 + len + ABYTES);
            CHECK(le32(atoll__buf_data(&last)) == len + ABYTES);
            atoll__buf_append(&stream, atoll__buf_data(&last), last.len);
            atoll__buf_append(&pristine, atoll__buf_data(&last), last.len);
            plain_at[nchunks] = k;
            plain_len[nchunks++] = len;
            k += len;
            break;
        }
        case 1: { /* the next arg bytes as they are */
            size_t len = arg < n - k ? arg : n - k;
            atoll__buf_append(&stream, in + k, len);
            k += len;
            break;
        }
        case 2: /* flip bit arg % 8 of the byte the next two bytes name */
            if (k + 2 <= n && stream.len > 0) {
                size_t at = (size_t)(in[k] | in[k + 1] << 8) % stream.len;
                atoll__buf_data(&stream)[at] ^= (uint8_t)(1u << (arg % 8));
            }
            k += 2;
            break;
        default: /* odd arg: the last chunk again; even: cut arg / 2 bytes off the end */
            if (arg & 1) {
                atoll__buf_append(&stream, atoll__buf_data(&last), last.len);
            } else {
                size_t cut = arg / 2 < stream.len ? arg / 2 : stream.len;
                stream.len -= cut;
            }
            break;
        }
    }

    /* Everything before the first byte that differs from the sealed chunks is intact. */
    size_t intact = 0;
    while (intact < stream.len && intact < pristine.len &&
           atoll__buf_data(&stream)[intact] == atoll__buf_data(&pristine)[intact])
        intact++;

    uint8_t *p = exact(atoll__buf_data(&stream), stream.len);
    size_t off = 0;
    for (size_t c = 0;; c++) {
        size_t left = stream.len - off;
        ssize_t got = atoll__link_open(rx, p + off, left, &plain);
        size_t chunk_len = c < nchunks ? 4 + plain_len[c] + ABYTES : 0;
        if (c < nchunks && off + chunk_len <= intact) {
            if (got != (ssize_t)chunk_len)
                fprintf(stderr, "intact chunk %zu at %zu: %zd\n", c, off, got);
            CHECK(got == (ssize_t)chunk_len);
            CHECK(plain.len == plain_len[c]);
            CHECK(plain.len == 0 || memcmp(atoll__buf_data(&plain), in + plain_at[c], plain.len) == 0);
            off += chunk_len;
            continue;
        }
        CHECK(got <= 0 && plain.len == 0);
        if (left < 4) {
            CHECK(got == 0);
        } else {
            uint32_t len = le32(p + off);
            if (len > (uint64_t)ATOLL_LINK_CHUNK_MAX + ABYTES)
                CHECK(got == ATOLL_ELIMIT);
            else if (len < ABYTES)
                CHECK(got == ATOLL_EPROTO);
            else if (left < 4 + (size_t)len)
                CHECK(got == 0);
            else
                CHECK(got == ATOLL_EAUTH);
        }
        break;
    }
    free(p);
    free(plain_at);
    free(plain_len);
    atoll__buf_fini(&stream);
    atoll__buf_fini(&pristine);
    atoll__buf_fini(&plain);
    atoll__buf_fini(&last);
    atoll__link_crypto_wipe(&i);
    atoll__link_crypto_wipe(&r);
}

/* ---- mode 2: records -------------------------------------------------------------------- */

/* What atoll__link_rec_read must answer to p[0..n): the layout in link_codec.h. */
static ssize_t
ref_record(const uint8_t *p, size_t n, int nworkers)
{
    if (n < 1)
        return ATOLL_EPROTO;
    switch (p[0]) {
    case 1: {
        if (n < 7)
            return ATOLL_EPROTO;
        unsigned worker = p[1] | p[2] << 8;
        uint32_t len = le32(p + 3);
        if (len > ATOLL_WIRE_FRAME_MAX || n - 7 < len || (int)worker >= nworkers)
            return ATOLL_EPROTO;
        return (ssize_t)(7 + (size_t)len);
    }
    case 2:
    case 3:
        return n < 9 ? ATOLL_EPROTO : 9;
    default:
        return ATOLL_EPROTO;
    }
}

static void
fuzz_records(const uint8_t *in, size_t n, int nworkers)
{
    uint8_t *p = exact(in, n);
    atoll__buf again = ATOLL__BUF_INIT;
    size_t off = 0;
    while (off < n) {
        size_t left = n - off;
        atoll__link_rec rec;
        ssize_t k = atoll__link_rec_read(p + off, left, nworkers, &rec);
        ssize_t want = ref_record(p + off, left, nworkers);
        if (k != want)
            fprintf(stderr, "record at %zu: %zd, the reference %zd\n", off, k, want);
        CHECK(k == want);
        if (k < 0)
            break;
        CHECK(k > 0 && (size_t)k <= left);
        again.len = 0;
        if (rec.kind == ATOLL_LINK_REC_MAIL) {
            CHECK(rec.worker < nworkers);
            CHECK(rec.frame == p + off + 3 && rec.frame_len >= 4);
            CHECK(rec.frame_len <= 4 + (size_t)ATOLL_WIRE_FRAME_MAX);
            CHECK(rec.frame_len == 4 + (size_t)le32(rec.frame));
            CHECK(3 + rec.frame_len == (size_t)k);
            atoll__link_put_mail(&again, rec.worker, rec.frame, rec.frame_len);
        } else {
            CHECK(rec.kind == ATOLL_LINK_REC_PING || rec.kind == ATOLL_LINK_REC_PONG);
            CHECK(k == 9);
            atoll__link_put_ping(&again, rec.kind, rec.t);
        }
        CHECK(again.len == (size_t)k && memcmp(atoll__buf_data(&again), p + off, again.len) == 0);
        off += (size_t)k;
    }
    atoll__buf_fini(&again);
    free(p);
}

/* ---- mode 3: round trip ----------------------------------------------------------------- */

/* One record of the rule: its kind, direction, whether its chunk ends after it, and its
 * content, all taken from in[*k..n). */
typedef struct rule_rec {
    int kind;
    int dir;     /* 0: initiator to responder, 1: back */
    bool last;   /* the chunk ends after it */
    uint16_t worker;
    const uint8_t *body; /* a MAIL's record (the frame without its u32) */
    size_t body_len;
    uint64_t t;
} rule_rec;

static bool
rule_next(const uint8_t *in, size_t n, size_t *k, rule_rec *r)
{
    if (*k >= n)
        return false;
    uint8_t b = in[(*k)++];
    memset(r, 0, sizeof *r);
    r->kind = 1 + b % 3;
    r->dir = (b >> 2) & 1;
    r->last = (b >> 3) & 1;
    if (r->kind == ATOLL_LINK_REC_MAIL) {
        r->worker = *k < n ? in[(*k)++] % ROUND_TRIP_WORKERS : 0;
        size_t len = *k < n ? in[(*k)++] : 0;
        r->body_len = len < n - *k ? len : n - *k;
        r->body = in + *k;
        *k += r->body_len;
    } else {
        for (int s = 0; s < 64 && *k < n; s += 8)
            r->t |= (uint64_t)in[(*k)++] << s;
    }
    return true;
}

static void
put_rule_rec(atoll__buf *b, const rule_rec *r)
{
    if (r->kind != ATOLL_LINK_REC_MAIL) {
        atoll__link_put_ping(b, r->kind, r->t);
        return;
    }
    uint8_t *frame = malloc(4 + r->body_len);
    CHECK(frame != NULL);
    atoll__wire_store_u32(frame, (uint32_t)r->body_len);
    if (r->body_len)
        memcpy(frame + 4, r->body, r->body_len);
    atoll__link_put_mail(b, r->worker, frame, 4 + r->body_len);
    free(frame);
}

static void
fuzz_round_trip(const uint8_t *in, size_t n)
{
    atoll__link_crypto ends[2];
    pair_up(&ends[0], &ends[1]);
    atoll__buf stream[2] = {ATOLL__BUF_INIT, ATOLL__BUF_INIT};
    atoll__buf pending[2] = {ATOLL__BUF_INIT, ATOLL__BUF_INIT};
    size_t chunks[2] = {0, 0};

    size_t k = 0;
    rule_rec r;
    while (rule_next(in, n, &k, &r)) {
        put_rule_rec(&pending[r.dir], &r);
        if (r.last) {
            CHECK(atoll__link_seal(&ends[r.dir], atoll__buf_data(&pending[r.dir]),
                                   pending[r.dir].len, &stream[r.dir]) == ATOLL_OK);
            chunks[r.dir]++;
            pending[r.dir].len = 0;
        }
    }
    /* What is left, and one empty chunk each way: a chunk may hold no record. */
    for (int d = 0; d < 2; d++) {
        if (pending[d].len > 0) {
            CHECK(atoll__link_seal(&ends[d], atoll__buf_data(&pending[d]), pending[d].len,
                                   &stream[d]) == ATOLL_OK);
            chunks[d]++;
        }
        CHECK(atoll__link_seal(&ends[d], NULL, 0, &stream[d]) == ATOLL_OK);
        chunks[d]++;
    }

    /* Open every chunk of each direction into one run of plaintext. */
    atoll__buf got[2] = {ATOLL__BUF_INIT, ATOLL__BUF_INIT}, plain = ATOLL__BUF_INIT;
    for (int d = 0; d < 2; d++) {
        uint8_t *p = exact(atoll__buf_data(&stream[d]), stream[d].len);
        size_t off = 0;
        for (size_t c = 0; c < chunks[d]; c++) {
            ssize_t used = atoll__link_open(&ends[1 - d], p + off, stream[d].len - off, &plain);
            CHECK(used > 0);
            off += (size_t)used;
            atoll__buf_append(&got[d], atoll__buf_data(&plain), plain.len);
        }
        CHECK(off == stream[d].len);
        CHECK(atoll__link_open(&ends[1 - d], p + off, 0, &plain) == 0);
        free(p);
    }

    /* The rule walked again: every record comes back in its direction, in order. */
    size_t at[2] = {0, 0};
    k = 0;
    while (rule_next(in, n, &k, &r)) {
        atoll__buf *g = &got[r.dir];
        atoll__link_rec rec;
        ssize_t used = atoll__link_rec_read(atoll__buf_data(g) + at[r.dir], g->len - at[r.dir],
                                            ROUND_TRIP_WORKERS, &rec);
        CHECK(used > 0);
        CHECK(rec.kind == r.kind);
        if (r.kind == ATOLL_LINK_REC_MAIL) {
            CHECK(rec.worker == r.worker);
            CHECK(rec.frame_len == 4 + r.body_len && le32(rec.frame) == r.body_len);
            CHECK(r.body_len == 0 || memcmp(rec.frame + 4, r.body, r.body_len) == 0);
        } else {
            CHECK(rec.t == r.t);
        }
        at[r.dir] += (size_t)used;
    }
    CHECK(at[0] == got[0].len && at[1] == got[1].len);

    for (int d = 0; d < 2; d++) {
        atoll__buf_fini(&stream[d]);
        atoll__buf_fini(&pending[d]);
        atoll__buf_fini(&got[d]);
        atoll__link_crypto_wipe(&ends[d]);
    }
    atoll__buf_fini(&plain);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        atoll__log_threshold = ATOLL_LOG_ERROR;
        sodium_fixed_use();
        CHECK(atoll__link_key_derive(SECRET, strlen(SECRET), &KEY) == ATOLL_OK);
        ready = 1;
    }
    if (size == 0)
        return 0;
    sodium_fixed_reset();
    uint8_t mode = data[0];
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    switch (mode & 3) {
    case 0: fuzz_hello(in, n, (mode >> 2) & 1); break;
    case 1: fuzz_chunks(in, n, (mode >> 2) & 1); break;
    case 2: fuzz_records(in, n, (mode >> 2) & 7); break;
    default: fuzz_round_trip(in, n); break;
    }
    return 0;
}
