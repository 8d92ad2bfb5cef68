/* ws_test.c -- the WebSocket frame codec and the HTTP upgrade (src/net/ws.h).
 *
 * Vectors come from RFC 6455 (5.7 frame examples, the 1.3 accept-key example) and
 * from the heads real clients send (Chrome, Firefox, node `ws`). Every error path the
 * reader has is driven here with its close code, every size limit at its boundary,
 * and a mixed stream is fed whole and one byte at a time to check that the verdicts
 * do not depend on how the bytes were cut.
 */
#include "net/ws.h"
#include "test.h"

#include <stdint.h>

static const uint8_t KEY[4] = {0x37, 0xfa, 0x21, 0x3d}; /* the RFC 5.7 masking key */

/* Appends one frame; masked frames use KEY, as a client would. */
static void
put_frame(atoll__buf *b, int opcode, int fin, const void *data, size_t len, int masked)
{
    uint8_t h[14];
    size_t hl = atoll__ws_frame_header(h, opcode, fin, len, masked ? KEY : NULL);
    atoll__buf_append(b, h, hl);
    size_t at = b->len;
    atoll__buf_append(b, data, len);
    if (masked && len)
        atoll__ws_mask(atoll__buf_data(b) + at, len, KEY, 0);
}

/* One event as seen by a caller, with its bytes copied out. */
typedef struct rec {
    int type, close_code;
    size_t len;
    uint8_t data[300];
} rec;

static void
record(rec *log, int *nlog, const atoll__ws_event *ev)
{
    rec *e = &log[(*nlog)++];
    e->type = ev->type;
    e->close_code = ev->close_code;
    e->len = ev->len;
    memcpy(e->data, ev->data, ev->len < sizeof e->data ? ev->len : sizeof e->data);
}

/* Feeds p[0..n) as one buffer; returns 0 when it all parsed, or the error. */
static ssize_t
run_whole(atoll__ws_reader *r, uint8_t *p, size_t n, rec *log, int *nlog)
{
    size_t off = 0;
    *nlog = 0;
    while (off < n) {
        atoll__ws_event ev;
        ssize_t k = atoll__ws_reader_next(r, p + off, n - off, &ev);
        if (k <= 0)
            return k;
        if (ev.type != ATOLL_WS_EV_NONE)
            record(log, nlog, &ev);
        off += (size_t)k;
    }
    return 0;
}

/* run_whole through a fresh reader (masked, max_message max), freed before returning:
 * the events are copies in log. */
static ssize_t
parse_whole(bool masked, size_t max, uint8_t *p, size_t n, rec *log, int *nlog)
{
    atoll__ws_reader r;
    atoll__ws_reader_init(&r, masked, max);
    ssize_t k = run_whole(&r, p, n, log, nlog);
    atoll__ws_reader_fini(&r);
    return k;
}

/* The first step of a fresh reader over p[0..n): returns what it consumed, the event in
 * *ev (its data points into p). */
static ssize_t
first_event(bool masked, size_t max, uint8_t *p, size_t n, atoll__ws_event *ev)
{
    atoll__ws_reader r;
    atoll__ws_reader_init(&r, masked, max);
    ssize_t k = atoll__ws_reader_next(&r, p, n, ev);
    atoll__ws_reader_fini(&r);
    return k;
}

/* Feeds p[0..n) `chunk` bytes at a time through a stream buffer, as a connection does. */
static ssize_t
run_chunked(atoll__ws_reader *r, const uint8_t *p, size_t n, size_t chunk, rec *log,
            int *nlog)
{
    atoll__buf in = ATOLL__BUF_INIT;
    ssize_t k = 0;
    *nlog = 0;
    for (size_t off = 0; off < n; off += chunk) {
        atoll__buf_append(&in, p + off, n - off < chunk ? n - off : chunk);
        for (;;) {
            atoll__ws_event ev;
            k = atoll__ws_reader_next(r, atoll__buf_data(&in), in.len, &ev);
            if (k < 0)
                goto out;
            if (k == 0)
                break;
            if (ev.type != ATOLL_WS_EV_NONE)
                record(log, nlog, &ev);
            atoll__buf_consume(&in, (size_t)k);
        }
    }
out:
    atoll__buf_fini(&in);
    return k < 0 ? k : 0;
}

/* Expects the reader to fail on p[0..n) with err and close code `code`. */
static void
expect_fail(bool masked, size_t max, const char *hex, int err, int code)
{
    uint8_t p[64];
    size_t n = test_hex(hex, p, sizeof p);
    atoll__ws_reader r;
    atoll__ws_reader_init(&r, masked, max);
    atoll__ws_event ev;
    ssize_t k = 0;
    size_t off = 0;
    while (off < n && (k = atoll__ws_reader_next(&r, p + off, n - off, &ev)) > 0)
        off += (size_t)k;
    if (off == n)
        k = 0;
    ASSERT_EQ(k, err);
    ASSERT_EQ(r.error_code, code);
    atoll__ws_reader_fini(&r);
}

/* ---- RFC 6455 5.7 examples ------------------------------------------------------ */

TEST(rfc_unmasked_binary)
{
    uint8_t p[16];
    size_t n = test_hex("82 05 48 65 6c 6c 6f", p, sizeof p);
    atoll__ws_event ev;
    ASSERT_EQ(first_event(false, 1024, p, n, &ev), 7);
    ASSERT_EQ(ev.type, ATOLL_WS_EV_MESSAGE);
    ASSERT_EQ(ev.len, 5);
    ASSERT(ev.data == p + 2); /* no copy */
    ASSERT_MEM(ev.data, "Hello", 5);
}

TEST(rfc_masked_binary)
{
    uint8_t p[16];
    size_t n = test_hex("82 85 37 fa 21 3d 7f 9f 4d 51 58", p, sizeof p);
    atoll__ws_event ev;
    ASSERT_EQ(first_event(true, 1024, p, n, &ev), 11);
    ASSERT_EQ(ev.type, ATOLL_WS_EV_MESSAGE);
    ASSERT_EQ(ev.len, 5);
    ASSERT(ev.data == p + 6); /* unmasked in place */
    ASSERT_MEM(p + 6, "Hello", 5);
}

TEST(rfc_text_is_1003)
{
    /* the RFC's own text frames, unmasked and masked, and just their 2-byte headers */
    expect_fail(false, 1024, "81 05 48 65 6c 6c 6f", ATOLL_EPROTO, 1003);
    expect_fail(true, 1024, "81 85 37 fa 21 3d 7f 9f 4d 51 58", ATOLL_EPROTO, 1003);
    expect_fail(true, 1024, "81 85", ATOLL_EPROTO, 1003);
    /* a fragmented text message: its first fragment already fails */
    expect_fail(false, 1024, "01 03 48 65 6c 80 02 6c 6f", ATOLL_EPROTO, 1003);
}

TEST(rfc_fragmented_binary)
{
    uint8_t p[16];
    size_t n = test_hex("02 03 48 65 6c 80 02 6c 6f", p, sizeof p);
    atoll__ws_reader r;
    atoll__ws_reader_init(&r, false, 1024);
    atoll__ws_event ev;
    ASSERT_EQ(atoll__ws_reader_next(&r, p, n, &ev), 5);
    ASSERT_EQ(ev.type, ATOLL_WS_EV_NONE);
    ASSERT(r.in_message);
    ASSERT_EQ(atoll__ws_reader_next(&r, p + 5, n - 5, &ev), 4);
    ASSERT_EQ(ev.type, ATOLL_WS_EV_MESSAGE);
    ASSERT_EQ(ev.len, 5);
    ASSERT_MEM(ev.data, "Hello", 5);
    ASSERT(!r.in_message);
    atoll__ws_reader_fini(&r);
}

TEST(rfc_ping_pong)
{
    uint8_t p[32];
    size_t n = test_hex("89 05 48 65 6c 6c 6f", p, sizeof p);
    atoll__ws_event ev;
    ASSERT_EQ(first_event(false, 1024, p, n, &ev), 7);
    ASSERT_EQ(ev.type, ATOLL_WS_EV_PING);
    ASSERT_EQ(ev.len, 5);
    ASSERT_MEM(ev.data, "Hello", 5);

    n = test_hex("8a 85 37 fa 21 3d 7f 9f 4d 51 58", p, sizeof p);
    ASSERT_EQ(first_event(true, 1024, p, n, &ev), 11);
    ASSERT_EQ(ev.type, ATOLL_WS_EV_PONG);
    ASSERT_EQ(ev.len, 5);
    ASSERT_MEM(ev.data, "Hello", 5);
}

TEST(rfc_256_bytes)
{
    uint8_t p[4 + 256];
    test_hex("82 7E 01 00", p, 4);
    for (int i = 0; i < 256; i++)
        p[4 + i] = (uint8_t)i;
    atoll__ws_reader r;
    atoll__ws_reader_init(&r, false, 256);
    atoll__ws_event ev;
    ASSERT_EQ(atoll__ws_reader_next(&r, p, 3, &ev), 0);
    ASSERT_EQ(atoll__ws_reader_next(&r, p, 259, &ev), 0);
    ASSERT_EQ(atoll__ws_reader_next(&r, p, sizeof p, &ev), 260);
    ASSERT_EQ(ev.type, ATOLL_WS_EV_MESSAGE);
    ASSERT_EQ(ev.len, 256);
    ASSERT(ev.data == p + 4);
    ASSERT_EQ(ev.data[255], 255);
    atoll__ws_reader_fini(&r);
}

TEST(rfc_64k)
{
    size_t n = 10 + 65536;
    uint8_t *p = malloc(n);
    test_hex("82 7F 00 00 00 00 00 01 00 00", p, 10);
    for (size_t i = 0; i < 65536; i++)
        p[10 + i] = (uint8_t)(i * 7);
    atoll__ws_reader r;
    atoll__ws_reader_init(&r, false, 65536);
    atoll__ws_event ev;
    ASSERT_EQ(atoll__ws_reader_next(&r, p, 9, &ev), 0);
    ASSERT_EQ(atoll__ws_reader_next(&r, p, n - 1, &ev), 0);
    ASSERT_EQ(atoll__ws_reader_next(&r, p, n, &ev), (ssize_t)n);
    ASSERT_EQ(ev.type, ATOLL_WS_EV_MESSAGE);
    ASSERT_EQ(ev.len, 65536);
    ASSERT_EQ(ev.data[65535], (uint8_t)(65535 * 7));
    atoll__ws_reader_fini(&r);
    free(p);
}

TEST(noncanonical_length_tolerated)
{
    /* 5 bytes in a 16-bit and in a 64-bit length field */
    uint8_t p[32];
    size_t n = test_hex("82 7E 00 05 48 65 6c 6c 6f 82 7F 00 00 00 00 00 00 00 05 48 65 6c 6c 6f",
                        p, sizeof p);
    rec log[4];
    int nlog;
    ASSERT_EQ(parse_whole(false, 1024, p, n, log, &nlog), 0);
    ASSERT_EQ(nlog, 2);
    ASSERT_EQ(log[1].len, 5);
    ASSERT_MEM(log[1].data, "Hello", 5);
}

TEST(empty_messages)
{
    atoll__buf b = ATOLL__BUF_INIT;
    put_frame(&b, ATOLL_WS_OP_BINARY, 1, "", 0, 1);
    put_frame(&b, ATOLL_WS_OP_BINARY, 0, "", 0, 1);
    put_frame(&b, ATOLL_WS_OP_CONT, 1, "", 0, 1);
    put_frame(&b, ATOLL_WS_OP_PING, 1, "", 0, 1);
    rec log[4];
    int nlog;
    ASSERT_EQ(parse_whole(true, 16, atoll__buf_data(&b), b.len, log, &nlog), 0);
    ASSERT_EQ(nlog, 3);
    ASSERT_EQ(log[0].type, ATOLL_WS_EV_MESSAGE);
    ASSERT_EQ(log[0].len, 0);
    ASSERT_EQ(log[1].type, ATOLL_WS_EV_MESSAGE);
    ASSERT_EQ(log[1].len, 0);
    ASSERT_EQ(log[2].type, ATOLL_WS_EV_PING);
    atoll__buf_fini(&b);
}

/* ---- writer ----------------------------------------------------------------------- */

TEST(frame_header_lengths)
{
    static const uint64_t lens[] = {0, 1, 125, 126, 127, 65535, 65536, 1u << 20,
                                    (uint64_t)1 << 40};
    static const size_t hl[] = {2, 2, 2, 4, 4, 4, 10, 10, 10};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        uint8_t h[14];
        ASSERT_EQ(atoll__ws_header_len(lens[i]), hl[i]);
        ASSERT_EQ(atoll__ws_frame_header(h, ATOLL_WS_OP_BINARY, true, lens[i], NULL), hl[i]);
        ASSERT_EQ(h[0], 0x82);
        ASSERT_EQ(atoll__ws_frame_header(h, ATOLL_WS_OP_CONT, false, lens[i], KEY), hl[i] + 4);
        ASSERT_EQ(h[0], 0x00);
        ASSERT(h[1] & 0x80);
        ASSERT_MEM(h + hl[i], KEY, 4);
        /* the reader reads the same length back: with max_message = len it waits for
         * the payload, with one byte less it fails from the header */
        atoll__ws_reader r;
        atoll__ws_reader_init(&r, false, lens[i]);
        atoll__ws_frame_header(h, ATOLL_WS_OP_BINARY, true, lens[i], NULL);
        atoll__ws_event ev;
        ASSERT_EQ(atoll__ws_reader_next(&r, h, hl[i], &ev), lens[i] == 0 ? 2 : 0);
        r.max_message = lens[i] - (lens[i] != 0);
        if (lens[i] != 0)
            ASSERT_EQ(atoll__ws_reader_next(&r, h, hl[i], &ev), ATOLL_ELIMIT);
        atoll__ws_reader_fini(&r);
    }
    uint8_t h[14];
    ASSERT_EQ(atoll__ws_frame_header(h, ATOLL_WS_OP_BINARY, true, 0x0102030405060708ull, NULL),
              10);
    uint8_t want[10];
    test_hex("82 7f 01 02 03 04 05 06 07 08", want, sizeof want);
    ASSERT_MEM(h, want, 10);
}

TEST(mask_matches_bytewise)
{
    uint8_t base[64], a[80], b[80];
    for (int i = 0; i < 64; i++)
        base[i] = (uint8_t)(i * 31 + 5);
    for (size_t align = 0; align < 8; align++)
        for (size_t n = 0; n <= 64 - align; n++)
            for (size_t off = 0; off < 8; off++) {
                memcpy(a + align, base, n);
                memcpy(b + align, base, n);
                atoll__ws_mask(a + align, n, KEY, off);
                for (size_t i = 0; i < n; i++)
                    b[align + i] ^= KEY[(off + i) % 4];
                ASSERT_MEM(a + align, b + align, n);
            }
    /* masking split at any point equals masking in one go */
    memcpy(a, base, 64);
    memcpy(b, base, 64);
    atoll__ws_mask(a, 64, KEY, 0);
    atoll__ws_mask(b, 13, KEY, 0);
    atoll__ws_mask(b + 13, 51, KEY, 13);
    ASSERT_MEM(a, b, 64);
}

TEST(put_close_frames)
{
    atoll__buf b = ATOLL__BUF_INIT;
    atoll__ws_put_close(&b, 1000, "bye");
    uint8_t want[8];
    size_t n = test_hex("88 05 03 e8 62 79 65", want, sizeof want);
    ASSERT_EQ(b.len, n);
    ASSERT_MEM(atoll__buf_data(&b), want, n);

    b.len = 0;
    atoll__ws_put_close(&b, ATOLL_WS_CLOSE_NO_STATUS, "ignored");
    ASSERT_EQ(b.len, 2);
    ASSERT_EQ(atoll__buf_data(&b)[1], 0);

    /* a 200-byte reason of 2-byte characters is cut to 122 bytes, not mid-character */
    char reason[201];
    for (int i = 0; i < 200; i += 2)
        reason[i] = (char)0xC3, reason[i + 1] = (char)0xA9;
    reason[200] = '\0';
    b.len = 0;
    atoll__ws_put_close(&b, 4000, reason);
    ASSERT_EQ(b.len, 2 + 2 + 122);
    atoll__ws_reader r;
    atoll__ws_reader_init(&r, false, 16);
    atoll__ws_event ev;
    ASSERT_EQ(atoll__ws_reader_next(&r, atoll__buf_data(&b), b.len, &ev), (ssize_t)b.len);
    ASSERT_EQ(ev.type, ATOLL_WS_EV_CLOSE);
    ASSERT_EQ(ev.close_code, 4000);
    ASSERT_EQ(ev.len, 122);
    atoll__ws_reader_fini(&r);
    atoll__buf_fini(&b);
}

/* ---- streams ---------------------------------------------------------------------- */

/* A client's stream: small, empty, 200-byte and 16-bit-length messages, a fragmented
 * message with a ping and a pong between its fragments, and a close. */
static void
mixed_stream(atoll__buf *b)
{
    uint8_t big[300];
    for (int i = 0; i < 300; i++)
        big[i] = (uint8_t)(i ^ 0x5a);
    put_frame(b, ATOLL_WS_OP_BINARY, 1, "abc", 3, 1);
    put_frame(b, ATOLL_WS_OP_BINARY, 1, "", 0, 1);
    put_frame(b, ATOLL_WS_OP_BINARY, 1, big, 200, 1);
    put_frame(b, ATOLL_WS_OP_BINARY, 0, "frag", 4, 1);
    put_frame(b, ATOLL_WS_OP_PING, 1, "p1", 2, 1);
    put_frame(b, ATOLL_WS_OP_CONT, 0, "-", 1, 1);
    put_frame(b, ATOLL_WS_OP_PONG, 1, "", 0, 1);
    put_frame(b, ATOLL_WS_OP_CONT, 1, "ment", 4, 1);
    put_frame(b, ATOLL_WS_OP_BINARY, 1, big, 300, 1);
    uint8_t close[] = {0x03, 0xe9, 'a', 'w', 'a', 'y'};
    put_frame(b, ATOLL_WS_OP_CLOSE, 1, close, sizeof close, 1);
}

static void
check_mixed(const rec *log, int nlog)
{
    ASSERT_EQ(nlog, 8);
    ASSERT_EQ(log[0].type, ATOLL_WS_EV_MESSAGE);
    ASSERT_EQ(log[0].len, 3);
    ASSERT_MEM(log[0].data, "abc", 3);
    ASSERT_EQ(log[1].len, 0);
    ASSERT_EQ(log[2].len, 200);
    ASSERT_EQ(log[2].data[199], (uint8_t)(199 ^ 0x5a));
    ASSERT_EQ(log[3].type, ATOLL_WS_EV_PING);
    ASSERT_MEM(log[3].data, "p1", 2);
    ASSERT_EQ(log[4].type, ATOLL_WS_EV_PONG);
    ASSERT_EQ(log[5].type, ATOLL_WS_EV_MESSAGE);
    ASSERT_EQ(log[5].len, 9);
    ASSERT_MEM(log[5].data, "frag-ment", 9);
    ASSERT_EQ(log[6].len, 300);
    ASSERT_EQ(log[6].data[299], (uint8_t)(299 ^ 0x5a));
    ASSERT_EQ(log[7].type, ATOLL_WS_EV_CLOSE);
    ASSERT_EQ(log[7].close_code, 1001);
    ASSERT_EQ(log[7].len, 4);
    ASSERT_MEM(log[7].data, "away", 4);
}

TEST(control_between_fragments)
{
    atoll__buf b = ATOLL__BUF_INIT;
    mixed_stream(&b);
    atoll__ws_reader r;
    atoll__ws_reader_init(&r, true, 300);
    rec log[16];
    int nlog;
    ASSERT_EQ(run_whole(&r, atoll__buf_data(&b), b.len, log, &nlog), 0);
    check_mixed(log, nlog);
    ASSERT(!r.in_message);
    atoll__ws_reader_fini(&r);
    atoll__buf_fini(&b);
}

TEST(one_byte_at_a_time)
{
    atoll__buf b = ATOLL__BUF_INIT;
    mixed_stream(&b);
    for (size_t chunk = 1; chunk <= 17; chunk += 4) {
        atoll__ws_reader r;
        atoll__ws_reader_init(&r, true, 300);
        rec log[16];
        int nlog;
        ASSERT_EQ(run_chunked(&r, atoll__buf_data(&b), b.len, chunk, log, &nlog), 0);
        check_mixed(log, nlog);
        atoll__ws_reader_fini(&r);
    }
    atoll__buf_fini(&b);
}

TEST(partial_frames_consume_nothing)
{
    uint8_t p[16], q[16];
    size_t n = test_hex("82 85 37 fa 21 3d 7f 9f 4d 51 58", p, sizeof p);
    memcpy(q, p, n);
    atoll__ws_reader r;
    atoll__ws_reader_init(&r, true, 1024);
    for (size_t k = 0; k < n; k++) {
        atoll__ws_event ev;
        ASSERT_EQ(atoll__ws_reader_next(&r, p, k, &ev), 0);
        ASSERT_EQ(ev.type, ATOLL_WS_EV_NONE);
        ASSERT_MEM(p, q, n); /* nothing unmasked before the frame is whole */
    }
    atoll__ws_reader_fini(&r);
}

TEST(consecutive_fragmented_messages)
{
    atoll__buf b = ATOLL__BUF_INIT;
    put_frame(&b, ATOLL_WS_OP_BINARY, 0, "one", 3, 0);
    put_frame(&b, ATOLL_WS_OP_CONT, 1, "1", 1, 0);
    put_frame(&b, ATOLL_WS_OP_BINARY, 0, "tw", 2, 0);
    put_frame(&b, ATOLL_WS_OP_CONT, 1, "o", 1, 0);
    rec log[4];
    int nlog;
    ASSERT_EQ(parse_whole(false, 4, atoll__buf_data(&b), b.len, log, &nlog), 0);
    ASSERT_EQ(nlog, 2);
    ASSERT_EQ(log[0].len, 4);
    ASSERT_MEM(log[0].data, "one1", 4);
    ASSERT_EQ(log[1].len, 3);
    ASSERT_MEM(log[1].data, "two", 3);
    atoll__buf_fini(&b);
}

/* ---- errors ------------------------------------------------------------------------- */

TEST(err_rsv_bits)
{
    expect_fail(false, 1024, "c2 00", ATOLL_EPROTO, 1002);
    expect_fail(false, 1024, "a2 00", ATOLL_EPROTO, 1002);
    expect_fail(false, 1024, "92 00", ATOLL_EPROTO, 1002);
    expect_fail(false, 1024, "c9 00", ATOLL_EPROTO, 1002); /* on a control frame too */
}

TEST(err_reserved_opcodes)
{
    static const char *const frames[] = {"83 00", "84 00", "85 00", "86 00", "87 00",
                                         "8b 00", "8c 00", "8d 00", "8e 00", "8f 00"};
    for (size_t i = 0; i < sizeof frames / sizeof frames[0]; i++)
        expect_fail(false, 1024, frames[i], ATOLL_EPROTO, 1002);
}

TEST(err_mask_bit)
{
    /* a server must get masked frames, a client unmasked ones */
    expect_fail(true, 1024, "82 05 48 65 6c 6c 6f", ATOLL_EPROTO, 1002);
    expect_fail(true, 1024, "89 00", ATOLL_EPROTO, 1002);
    expect_fail(false, 1024, "82 85 37 fa 21 3d 7f 9f 4d 51 58", ATOLL_EPROTO, 1002);
}

TEST(err_control_frames)
{
    expect_fail(false, 1024, "09 00", ATOLL_EPROTO, 1002);            /* fragmented ping */
    expect_fail(false, 1024, "08 00", ATOLL_EPROTO, 1002);            /* fragmented close */
    expect_fail(false, 1024, "89 7e 00 7e", ATOLL_EPROTO, 1002);      /* 126-byte ping */
    expect_fail(false, 1024, "8a 7e 00 05", ATOLL_EPROTO, 1002);      /* 16-bit length */
    expect_fail(false, 1024, "88 01 03", ATOLL_EPROTO, 1002);         /* 1-byte close */

    /* 125 bytes is the largest control payload */
    uint8_t p[2 + 125];
    memset(p, 'x', sizeof p);
    p[0] = 0x89, p[1] = 125;
    atoll__ws_reader r;
    atoll__ws_reader_init(&r, false, 16); /* max_message does not bound control frames */
    atoll__ws_event ev;
    ASSERT_EQ(atoll__ws_reader_next(&r, p, sizeof p, &ev), (ssize_t)sizeof p);
    ASSERT_EQ(ev.type, ATOLL_WS_EV_PING);
    ASSERT_EQ(ev.len, 125);
    atoll__ws_reader_fini(&r);
}

TEST(close_codes)
{
    uint8_t p[16];
    atoll__ws_reader r;
    atoll__ws_event ev;
    atoll__ws_reader_init(&r, false, 16);
    size_t n = test_hex("88 00", p, sizeof p);
    ASSERT_EQ(atoll__ws_reader_next(&r, p, n, &ev), 2);
    ASSERT_EQ(ev.type, ATOLL_WS_EV_CLOSE);
    ASSERT_EQ(ev.close_code, 1005);
    ASSERT_EQ(ev.len, 0);
    n = test_hex("88 02 03 e8", p, sizeof p);
    ASSERT_EQ(atoll__ws_reader_next(&r, p, n, &ev), 4);
    ASSERT_EQ(ev.close_code, 1000);
    ASSERT_EQ(ev.len, 0);
    static const char *const ok[] = {"88 02 03 ea", "88 02 03 f3", "88 02 03 f6",
                                     "88 02 0b b8", "88 02 13 87"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        n = test_hex(ok[i], p, sizeof p);
        ASSERT_EQ(atoll__ws_reader_next(&r, p, n, &ev), 4);
    }
    atoll__ws_reader_fini(&r);
    /* 0, 999, 1004, 1005, 1006, 1015, 2999, 5000, 65535 */
    static const char *const bad[] = {"88 02 00 00", "88 02 03 e7", "88 02 03 ec",
                                      "88 02 03 ed", "88 02 03 ee", "88 02 03 f7",
                                      "88 02 0b b7", "88 02 13 88", "88 02 ff ff"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_fail(false, 16, bad[i], ATOLL_EPROTO, 1002);
    /* the reason must be UTF-8: a lone continuation byte, an overlong '/', a surrogate */
    expect_fail(false, 16, "88 03 03 e8 80", ATOLL_EPROTO, 1007);
    expect_fail(false, 16, "88 04 03 e8 c0 af", ATOLL_EPROTO, 1007);
    expect_fail(false, 16, "88 05 03 e8 ed a0 80", ATOLL_EPROTO, 1007);
    expect_fail(false, 16, "88 04 03 e8 e2 82", ATOLL_EPROTO, 1007); /* truncated */
    expect_fail(true, 16, "88 86 00 00 00 00 03 e8 e2 82 ac 21", 0, 0); /* "€!" is fine */
}

TEST(err_fragment_order)
{
    /* continuation with no message started, whole and fragmented */
    expect_fail(false, 1024, "80 01 41", ATOLL_EPROTO, 1002);
    expect_fail(false, 1024, "00 01 41", ATOLL_EPROTO, 1002);
    /* a new data frame while a message is in progress */
    expect_fail(false, 1024, "02 01 41 82 01 42", ATOLL_EPROTO, 1002);
    expect_fail(false, 1024, "02 01 41 02 01 42", ATOLL_EPROTO, 1002);
    expect_fail(false, 1024, "02 01 41 81 01 42", ATOLL_EPROTO, 1002);
    /* a finished message lets a continuation fail again */
    expect_fail(false, 1024, "02 01 41 80 01 42 80 01 43", ATOLL_EPROTO, 1002);
}

TEST(err_len64_top_bit)
{
    expect_fail(false, SIZE_MAX, "82 7f 80 00 00 00 00 00 00 00", ATOLL_EPROTO, 1002);
    expect_fail(false, SIZE_MAX, "82 7f ff ff ff ff ff ff ff ff", ATOLL_EPROTO, 1002);
}

TEST(max_message_boundary)
{
    /* exactly max is fine; max+1 fails from the header, before the payload */
    uint8_t p[2 + 100];
    memset(p, 'z', sizeof p);
    p[0] = 0x82, p[1] = 100;
    atoll__ws_event ev;
    ASSERT_EQ(first_event(false, 100, p, sizeof p, &ev), 102);
    ASSERT_EQ(ev.len, 100);
    expect_fail(false, 100, "82 65", ATOLL_ELIMIT, 1009);
    expect_fail(false, 100, "82 7e 00 65", ATOLL_ELIMIT, 1009);
    expect_fail(false, 100, "82 7f 00 00 00 01 00 00 00 00", ATOLL_ELIMIT, 1009);
    expect_fail(true, 100, "82 fe 00 65", ATOLL_ELIMIT, 1009); /* no mask key needed */
    expect_fail(false, 0, "82 01", ATOLL_ELIMIT, 1009);

    /* fragments count together: 60 + 40 is fine, 60 + 41 fails at the second header */
    atoll__buf b = ATOLL__BUF_INIT;
    uint8_t z[64] = {0};
    put_frame(&b, ATOLL_WS_OP_BINARY, 0, z, 60, 0);
    put_frame(&b, ATOLL_WS_OP_CONT, 1, z, 40, 0);
    rec log[2];
    int nlog;
    ASSERT_EQ(parse_whole(false, 100, atoll__buf_data(&b), b.len, log, &nlog), 0);
    ASSERT_EQ(nlog, 1);
    ASSERT_EQ(log[0].len, 100);

    b.len = 0;
    put_frame(&b, ATOLL_WS_OP_BINARY, 0, z, 60, 0);
    put_frame(&b, ATOLL_WS_OP_CONT, 1, z, 41, 0);
    atoll__ws_reader r;
    atoll__ws_reader_init(&r, false, 100);
    ASSERT_EQ(atoll__ws_reader_next(&r, atoll__buf_data(&b), 62, &ev), 62);
    ASSERT_EQ(atoll__ws_reader_next(&r, atoll__buf_data(&b) + 62, 2, &ev), ATOLL_ELIMIT);
    ASSERT_EQ(r.error_code, 1009);
    atoll__ws_reader_fini(&r);
    atoll__buf_fini(&b);
}

TEST(too_many_fragments)
{
    atoll__buf b = ATOLL__BUF_INIT;
    put_frame(&b, ATOLL_WS_OP_BINARY, 0, "x", 1, 1);
    for (int i = 1; i < ATOLL_WS_MAX_FRAGMENTS - 1; i++)
        put_frame(&b, ATOLL_WS_OP_CONT, 0, "x", 1, 1);
    size_t before_last = b.len;
    put_frame(&b, ATOLL_WS_OP_CONT, 1, "x", 1, 1);

    /* ATOLL_WS_MAX_FRAGMENTS frames make one message */
    rec log[2];
    int nlog;
    uint8_t *copy = malloc(b.len);
    memcpy(copy, atoll__buf_data(&b), b.len);
    ASSERT_EQ(parse_whole(true, 1 << 20, copy, b.len, log, &nlog), 0);
    ASSERT_EQ(nlog, 1);
    ASSERT_EQ(log[0].len, ATOLL_WS_MAX_FRAGMENTS);
    free(copy);

    /* one more is refused at its header */
    b.len = before_last;
    put_frame(&b, ATOLL_WS_OP_CONT, 0, "x", 1, 1);
    size_t last = b.len;
    put_frame(&b, ATOLL_WS_OP_CONT, 1, "x", 1, 1);
    atoll__ws_reader r;
    atoll__ws_reader_init(&r, true, 1 << 20);
    ASSERT_EQ(run_whole(&r, atoll__buf_data(&b), last + 2, log, &nlog), ATOLL_ELIMIT);
    ASSERT_EQ(r.error_code, 1009);
    atoll__ws_reader_fini(&r);
    atoll__buf_fini(&b);
}

/* ---- HTTP upgrade ------------------------------------------------------------------- */

static const char NODE_WS[] =
    "GET / HTTP/1.1\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key: 4mvr1k2pUBIEqUvp1ha3bw==\r\n"
    "Connection: Upgrade\r\n"
    "Upgrade: websocket\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "Host: 127.0.0.1:3010\r\n"
    "\r\n";

static const char CHROME[] =
    "GET /chat?room=7 HTTP/1.1\r\n"
    "Host: game.example.com:3010\r\n"
    "Connection: Upgrade\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36\r\n"
    "Upgrade: websocket\r\n"
    "Origin: http://game.example.com\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Cookie: sid=abc123; theme=dark\r\n"
    "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "\r\n";

static const char FIREFOX[] =
    "GET / HTTP/1.1\r\n"
    "Host: localhost:3010\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0\r\n"
    "Accept: */*\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Origin: http://localhost:8080\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Connection: keep-alive, Upgrade\r\n"
    "Sec-Fetch-Dest: empty\r\n"
    "Sec-Fetch-Mode: websocket\r\n"
    "Sec-Fetch-Site: same-site\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "Upgrade: websocket\r\n"
    "\r\n";

static const char MINIMAL[] = "GET / HTTP/1.1\r\n"
                              "Upgrade: websocket\r\n"
                              "Connection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n"
                              "\r\n";

static ssize_t
upgrade(const char *s, atoll__http_upgrade *out)
{
    return atoll__http_upgrade_parse((const uint8_t *)s, strlen(s), out);
}

/* MINIMAL with one substring replaced. */
static ssize_t
upgrade_edit(const char *from, const char *to)
{
    char s[512];
    const char *at = strstr(MINIMAL, from);
    ASSERT(at != NULL);
    snprintf(s, sizeof s, "%.*s%s%s", (int)(at - MINIMAL), MINIMAL, to, at + strlen(from));
    atoll__http_upgrade u;
    return upgrade(s, &u);
}

TEST(http_looks_like)
{
    static const char *const yes[] = {"GET / HTTP/1.1", "POST /x", "PUT ", "DELETE /",
                                      "HEAD /", "G", "GE", "PO", "DEL"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        ASSERT(atoll__http_looks_like((const uint8_t *)yes[i], strlen(yes[i])));
    static const uint8_t pomelo[] = {0x01, 0x00, 0x00, 0x10, '{'};
    ASSERT(!atoll__http_looks_like(pomelo, sizeof pomelo));
    ASSERT(!atoll__http_looks_like(pomelo, 1));
    ASSERT(!atoll__http_looks_like((const uint8_t *)"OPTIONS /", 9));
    ASSERT(!atoll__http_looks_like((const uint8_t *)"get /", 5));
    ASSERT(!atoll__http_looks_like((const uint8_t *)"GET", 0));
}

TEST(accept_key_rfc)
{
    char out[29];
    atoll__ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out);
    ASSERT_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(upgrade_node_ws)
{
    atoll__http_upgrade u;
    ASSERT_EQ(upgrade(NODE_WS, &u), (ssize_t)strlen(NODE_WS));
    ASSERT_STR(u.key, "4mvr1k2pUBIEqUvp1ha3bw==");
    ASSERT(u.deflate_offered);
}

TEST(upgrade_browsers)
{
    atoll__http_upgrade u;
    ASSERT_EQ(upgrade(CHROME, &u), (ssize_t)strlen(CHROME));
    ASSERT_STR(u.key, "x3JJHMbDL1EzLkh9GBhXDw==");
    ASSERT(u.deflate_offered);
    ASSERT_EQ(upgrade(FIREFOX, &u), (ssize_t)strlen(FIREFOX));
    ASSERT_STR(u.key, "dGhlIHNhbXBsZSBub25jZQ==");
    ASSERT(u.deflate_offered);
    ASSERT_EQ(upgrade(MINIMAL, &u), (ssize_t)strlen(MINIMAL));
    ASSERT(!u.deflate_offered);

    /* bytes after the head (the first frame, sent early) are not part of it */
    char s[512];
    snprintf(s, sizeof s, "%s\x82\x85\x37\xfa", MINIMAL);
    ASSERT_EQ(upgrade(s, &u), (ssize_t)strlen(MINIMAL));
}

TEST(upgrade_case_and_whitespace)
{
    static const char req[] = "GET /ws HTTP/1.1\r\n"
                              "host: example\r\n"
                              "upgrade:WebSocket\r\n"
                              "connection: \t keep-alive ,  UPGRADE \t\r\n"
                              "sec-websocket-key:  dGhlIHNhbXBsZSBub25jZQ== \r\n"
                              "SEC-WEBSOCKET-VERSION:13\r\n"
                              "sec-websocket-extensions: x-webkit-deflate-frame, "
                              "PerMessage-Deflate ; server_no_context_takeover\r\n"
                              "\r\n";
    atoll__http_upgrade u;
    ASSERT_EQ(upgrade(req, &u), (ssize_t)strlen(req));
    ASSERT_STR(u.key, "dGhlIHNhbXBsZSBub25jZQ==");
    ASSERT(u.deflate_offered);
    /* list values with several protocols, and headers that repeat */
    ASSERT_EQ(upgrade_edit("Upgrade: websocket", "Upgrade: h2c, websocket"),
              (ssize_t)(strlen(MINIMAL) + strlen("h2c, ")));
    ASSERT(upgrade_edit("Connection: Upgrade", "Connection: close\r\nConnection: upgrade") > 0);
}

TEST(upgrade_missing_headers)
{
    ASSERT_EQ(upgrade_edit("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""), ATOLL_EPROTO);
    ASSERT_EQ(upgrade_edit("Upgrade: websocket\r\n", ""), ATOLL_EPROTO);
    ASSERT_EQ(upgrade_edit("Connection: Upgrade\r\n", ""), ATOLL_EPROTO);
    ASSERT_EQ(upgrade_edit("Sec-WebSocket-Version: 13\r\n", ""), ATOLL_EPROTO);
    ASSERT_EQ(upgrade_edit("Upgrade: websocket", "Upgrade: h2c"), ATOLL_EPROTO);
    ASSERT_EQ(upgrade_edit("Connection: Upgrade", "Connection: keep-alive"), ATOLL_EPROTO);
    ASSERT_EQ(upgrade_edit("Connection: Upgrade", "Connection: Upgraded"), ATOLL_EPROTO);
}

TEST(upgrade_version)
{
    ASSERT_EQ(upgrade_edit("Version: 13", "Version: 8"), ATOLL_EPROTO);
    ASSERT_EQ(upgrade_edit("Version: 13", "Version: 13, 8"), ATOLL_EPROTO);
    ASSERT_EQ(upgrade_edit("Version: 13", "Version: 8\r\nSec-WebSocket-Version: 13"),
              ATOLL_EPROTO);
    ASSERT_EQ(upgrade_edit("HTTP/1.1", "HTTP/1.0"), ATOLL_EPROTO);
}

TEST(upgrade_method)
{
    atoll__http_upgrade u;
    ASSERT_EQ(upgrade_edit("GET", "POST"), ATOLL_EPROTO);
    ASSERT_EQ(upgrade_edit("GET", "get"), ATOLL_EPROTO);
    ASSERT_EQ(upgrade_edit("GET /", "GET  /"), ATOLL_EPROTO);
    ASSERT_EQ(upgrade_edit("GET / ", "GET "), ATOLL_EPROTO);
    ASSERT_EQ(upgrade_edit("GET /", "GET /a b"), ATOLL_EPROTO);
    /* a non-GET fails at once, before the head is whole */
    ASSERT_EQ(upgrade("POST / HTTP/1.1\r\n", &u), ATOLL_EPROTO);
    ASSERT_EQ(upgrade("PO", &u), ATOLL_EPROTO);
    ASSERT_EQ(upgrade("GE", &u), 0);
}

TEST(upgrade_bad_key)
{
    ASSERT_EQ(upgrade_edit("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25j"), ATOLL_EPROTO);
    ASSERT_EQ(upgrade_edit("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ"), ATOLL_EPROTO);
    ASSERT_EQ(upgrade_edit("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZ==="),
              ATOLL_EPROTO);
    ASSERT_EQ(upgrade_edit("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbX!sZSBub25jZQ=="),
              ATOLL_EPROTO);
    ASSERT_EQ(upgrade_edit("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ==dGhl"),
              ATOLL_EPROTO);
    ASSERT_EQ(upgrade_edit("dGhlIHNhbXBsZSBub25jZQ==",
                           "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: "
                           "x3JJHMbDL1EzLkh9GBhXDw=="),
              ATOLL_EPROTO);
    ASSERT_EQ(upgrade_edit("Key: dGhlIHNhbXBsZSBub25jZQ==", "Key:"), ATOLL_EPROTO);
}

TEST(upgrade_bad_lines)
{
    atoll__http_upgrade u;
    ASSERT_EQ(upgrade("GET / HTTP/1.1\nUpgrade: websocket\n\n", &u), ATOLL_EPROTO);
    ASSERT_EQ(upgrade_edit("Upgrade: websocket\r\n", "Upgrade: websocket\n"), ATOLL_EPROTO);
    ASSERT_EQ(upgrade_edit("Upgrade: websocket\r\n", "Upgrade: websocket\r\r\n"),
              ATOLL_EPROTO);
    ASSERT_EQ(upgrade_edit("Upgrade: websocket", "Upgrade : websocket"), ATOLL_EPROTO);
    ASSERT_EQ(upgrade_edit("Upgrade: websocket", "Up(grade: websocket"), ATOLL_EPROTO);
    ASSERT_EQ(upgrade_edit("Upgrade: websocket", ": websocket"), ATOLL_EPROTO);
    ASSERT_EQ(upgrade_edit("Upgrade: websocket", "Upgrade websocket"), ATOLL_EPROTO);
    ASSERT_EQ(upgrade_edit("Upgrade: websocket\r\n", "Upgrade:\r\n websocket\r\n"),
              ATOLL_EPROTO); /* obs-fold */
    ASSERT_EQ(upgrade_edit("Upgrade: websocket", "Upgrade: web\x01socket"), ATOLL_EPROTO);
    ASSERT_EQ(upgrade("\r\nGET / HTTP/1.1\r\n\r\n", &u), ATOLL_EPROTO);
    /* a NUL byte inside the head */
    static const char nul[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
    ASSERT_EQ(atoll__http_upgrade_parse((const uint8_t *)nul, sizeof nul - 1, &u),
              ATOLL_EPROTO);
}

TEST(upgrade_partial)
{
    atoll__http_upgrade u;
    size_t n = strlen(CHROME);
    for (size_t k = 0; k < n; k++)
        ASSERT_EQ(atoll__http_upgrade_parse((const uint8_t *)CHROME, k, &u), 0);
    ASSERT_EQ(atoll__http_upgrade_parse((const uint8_t *)CHROME, n, &u), (ssize_t)n);
}

/* MINIMAL with a Cookie header that makes the head exactly `total` bytes long. */
static size_t
padded_head(char *s, size_t total)
{
    size_t base = strlen(MINIMAL) + strlen("Cookie: \r\n");
    ASSERT(total > base);
    size_t pad = total - base;
    size_t n = (size_t)snprintf(s, total + 1, "%.*s", (int)(strlen(MINIMAL) - 2), MINIMAL);
    memcpy(s + n, "Cookie: ", 8);
    memset(s + n + 8, 'c', pad);
    memcpy(s + n + 8 + pad, "\r\n\r\n", 4);
    s[total] = '\0';
    return total;
}

TEST(upgrade_head_max)
{
    char *s = malloc(ATOLL_HTTP_HEAD_MAX + 2);
    atoll__http_upgrade u;
    size_t n = padded_head(s, ATOLL_HTTP_HEAD_MAX);
    ASSERT_EQ(atoll__http_upgrade_parse((const uint8_t *)s, n, &u), (ssize_t)n);
    ASSERT_EQ(atoll__http_upgrade_parse((const uint8_t *)s, n - 1, &u), 0);
    n = padded_head(s, ATOLL_HTTP_HEAD_MAX + 1);
    ASSERT_EQ(atoll__http_upgrade_parse((const uint8_t *)s, n, &u), ATOLL_ELIMIT);
    /* a head with no end fails as soon as the limit is reached */
    ASSERT_EQ(atoll__http_upgrade_parse((const uint8_t *)s, ATOLL_HTTP_HEAD_MAX - 1, &u), 0);
    ASSERT_EQ(atoll__http_upgrade_parse((const uint8_t *)s, ATOLL_HTTP_HEAD_MAX, &u),
              ATOLL_ELIMIT);
    free(s);
}

/* MINIMAL plus `extra` X-Pad headers. */
static size_t
many_headers(char *s, size_t cap, int extra)
{
    size_t n = (size_t)snprintf(s, cap, "%.*s", (int)(strlen(MINIMAL) - 2), MINIMAL);
    for (int i = 0; i < extra; i++)
        n += (size_t)snprintf(s + n, cap - n, "X-Pad-%d: %d\r\n", i, i);
    n += (size_t)snprintf(s + n, cap - n, "\r\n");
    return n;
}

TEST(upgrade_max_headers)
{
    char s[4096];
    atoll__http_upgrade u;
    size_t n = many_headers(s, sizeof s, ATOLL_HTTP_MAX_HEADERS - 4);
    ASSERT_EQ(atoll__http_upgrade_parse((const uint8_t *)s, n, &u), (ssize_t)n);
    n = many_headers(s, sizeof s, ATOLL_HTTP_MAX_HEADERS - 3);
    ASSERT_EQ(atoll__http_upgrade_parse((const uint8_t *)s, n, &u), ATOLL_ELIMIT);
    /* found while the head is still partial */
    ASSERT_EQ(atoll__http_upgrade_parse((const uint8_t *)s, n - 2, &u), ATOLL_ELIMIT);
}

TEST(http_101_response)
{
    atoll__http_upgrade u;
    ASSERT(upgrade(FIREFOX, &u) > 0);
    atoll__buf b = ATOLL__BUF_INIT;
    atoll__http_put_101(&b, &u);
    atoll__buf_push(&b, 0);
    const char *s = (const char *)atoll__buf_data(&b);
    ASSERT_STR(s, "HTTP/1.1 101 Switching Protocols\r\n"
                  "Upgrade: websocket\r\n"
                  "Connection: Upgrade\r\n"
                  "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                  "\r\n");
    ASSERT(strstr(s, "Extensions") == NULL); /* deflate was offered and declined */
    ASSERT(strstr(s, "Protocol:") == NULL);
    atoll__buf_fini(&b);
}

TEST(http_error_responses)
{
    atoll__buf b = ATOLL__BUF_INIT;
    atoll__http_put_error(&b, 400, "bad upgrade request\n");
    atoll__buf_push(&b, 0);
    const char *s = (const char *)atoll__buf_data(&b);
    ASSERT(strncmp(s, "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
    ASSERT(strstr(s, "\r\nConnection: close\r\n") != NULL);
    ASSERT(strstr(s, "\r\nContent-Length: 20\r\n") != NULL);
    const char *body = strstr(s, "\r\n\r\n");
    ASSERT(body != NULL);
    ASSERT_STR(body + 4, "bad upgrade request\n");
    ASSERT(strstr(s, "Sec-WebSocket-Version") == NULL);

    b.len = 0;
    atoll__http_put_error(&b, 426, NULL);
    atoll__buf_push(&b, 0);
    s = (const char *)atoll__buf_data(&b);
    ASSERT(strncmp(s, "HTTP/1.1 426 Upgrade Required\r\n", 31) == 0);
    ASSERT(strstr(s, "\r\nSec-WebSocket-Version: 13\r\n") != NULL);
    ASSERT(strstr(s, "\r\nContent-Length: 16\r\n") != NULL);

    b.len = 0;
    atoll__http_put_error(&b, 503, "busy");
    atoll__buf_push(&b, 0);
    s = (const char *)atoll__buf_data(&b);
    ASSERT(strncmp(s, "HTTP/1.1 503 Service Unavailable\r\n", 34) == 0);
    atoll__buf_fini(&b);
}

TEST(client_roundtrip)
{
    static const char key[] = "AQIDBAUGBwgJCgsMDQ4PEA==";
    atoll__buf b = ATOLL__BUF_INIT;
    atoll__http_put_upgrade_request(&b, "example.com:3010", "/game", key);
    atoll__http_upgrade u;
    ASSERT_EQ(atoll__http_upgrade_parse(atoll__buf_data(&b), b.len, &u), (ssize_t)b.len);
    ASSERT_STR(u.key, key);
    ASSERT(!u.deflate_offered);
    static const char start[] = "GET /game HTTP/1.1\r\nHost: example.com:3010\r\n";
    ASSERT_MEM(atoll__buf_data(&b), start, sizeof start - 1);

    b.len = 0;
    atoll__http_put_101(&b, &u);
    size_t n = b.len;
    const uint8_t *p = atoll__buf_data(&b);
    ASSERT_EQ(atoll__http_response_parse(p, n, key), (ssize_t)n);
    for (size_t k = 0; k < n; k++)
        ASSERT_EQ(atoll__http_response_parse(p, k, key), 0);
    ASSERT_EQ(atoll__http_response_parse(p, n, "dGhlIHNhbXBsZSBub25jZQ=="), ATOLL_EPROTO);

    /* an empty path is "/" */
    b.len = 0;
    atoll__http_put_upgrade_request(&b, "h", "", key);
    ASSERT(atoll__http_upgrade_parse(atoll__buf_data(&b), b.len, &u) > 0);
    ASSERT(memcmp(atoll__buf_data(&b), "GET / HTTP/1.1\r\n", 16) == 0);
    atoll__buf_fini(&b);
}

static ssize_t
response(const char *s)
{
    return atoll__http_response_parse((const uint8_t *)s, strlen(s), "dGhlIHNhbXBsZSBub25jZQ==");
}

TEST(client_response_checks)
{
    /* node ws and other servers vary the case and add headers */
    ASSERT(response("HTTP/1.1 101 Switching Protocols\r\n"
                    "upgrade: WebSocket\r\n"
                    "connection: upgrade\r\n"
                    "Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
                    "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                    "\r\n") > 0);
    ASSERT(response("HTTP/1.1 101\r\n"
                    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n") > 0);
    ASSERT_EQ(response("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), ATOLL_EPROTO);
    ASSERT_EQ(response("HTTP/1.1 400"), ATOLL_EPROTO); /* before the head is whole */
    ASSERT_EQ(response("HTTP/1.1 1010 x\r\n\r\n"), ATOLL_EPROTO);
    ASSERT_EQ(response("HTTP/1.1 101 Switching Protocols\r\n"
                       "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
              ATOLL_EPROTO);
    ASSERT_EQ(response("HTTP/1.1 101 Switching Protocols\r\n"
                       "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZ5kOzxYo\r\n\r\n"),
              ATOLL_EPROTO);
    ASSERT_EQ(response("HTTP/1.1 101 Switching Protocols\r\n"
                       "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                       "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"),
              ATOLL_EPROTO);
    ASSERT_EQ(response("HTTP/1.1 101 Switching Protocols\r\n"
                       "Connection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"),
              ATOLL_EPROTO);
}

TEST_MAIN(rfc_unmasked_binary, rfc_masked_binary, rfc_text_is_1003, rfc_fragmented_binary,
          rfc_ping_pong, rfc_256_bytes, rfc_64k, noncanonical_length_tolerated,
          empty_messages, frame_header_lengths, mask_matches_bytewise, put_close_frames,
          control_between_fragments, one_byte_at_a_time, partial_frames_consume_nothing,
          consecutive_fragmented_messages, err_rsv_bits, err_reserved_opcodes, err_mask_bit,
          err_control_frames, close_codes, err_fragment_order, err_len64_top_bit,
          max_message_boundary, too_many_fragments, http_looks_like, accept_key_rfc,
          upgrade_node_ws, upgrade_browsers, upgrade_case_and_whitespace,
          upgrade_missing_headers, upgrade_version, upgrade_method, upgrade_bad_key,
          upgrade_bad_lines, upgrade_partial, upgrade_head_max, upgrade_max_headers,
          http_101_response, http_error_responses, client_roundtrip, client_response_checks)
