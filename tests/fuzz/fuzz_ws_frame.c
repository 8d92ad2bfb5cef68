/* fuzz_ws_frame.c -- libFuzzer target over atoll__ws_reader_next (src/net/ws_codec.c).
 *
 * Each input is a byte stream read by a server-side reader (clients must mask) and by a
 * client-side one (servers must not), each fed in three ways: the whole buffer at
 * once, one byte at a time, and in chunks whose size depends on the input length, as a
 * connection feeds what its reads bring. Besides "no crash, no leak, no undefined
 * behaviour", the three must agree event for event, on the bytes consumed and on the
 * verdict: the reader may not depend on how the stream was cut. A small max_message
 * brings the size limits within reach of short inputs.
 */
#include "net/ws.h"

#include <stdlib.h>

#define MAX_MESSAGE 300

#include "fuzz.h"

/* What a caller saw: a hash of every event, and where and how the stream stopped. */
typedef struct trace {
    uint64_t hash;
    int events;
    size_t consumed;
    ssize_t verdict; /* 0, or the error that stopped the stream */
    int error_code;
    bool in_message;
} trace;

static void
mix(trace *t, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        t->hash = (t->hash ^ b[i]) * 0x100000001b3ull; /* FNV-1a */
}

static void
note(trace *t, const atoll__ws_event *ev)
{
    if (ev->type == ATOLL_WS_EV_NONE) {
        CHECK(ev->len == 0);
        return;
    }
    CHECK(ev->data != NULL || ev->len == 0);
    if (ev->type == ATOLL_WS_EV_MESSAGE)
        CHECK(ev->len <= MAX_MESSAGE);
    else
        CHECK(ev->len <= ATOLL_WS_CONTROL_MAX);
    if (ev->type == ATOLL_WS_EV_CLOSE)
        CHECK(ev->close_code >= 1000 && ev->close_code <= 4999);
    else
        CHECK(ev->close_code == 0);
    t->events++;
    mix(t, &ev->type, sizeof ev->type);
    mix(t, &ev->close_code, sizeof ev->close_code);
    mix(t, &ev->len, sizeof ev->len);
    if (ev->len)
        mix(t, ev->data, ev->len);
}

static void
finish(trace *t, atoll__ws_reader *r, ssize_t verdict)
{
    t->verdict = verdict;
    if (verdict < 0) {
        CHECK(verdict == ATOLL_EPROTO || verdict == ATOLL_ELIMIT);
        CHECK(r->error_code == ATOLL_WS_CLOSE_PROTOCOL ||
              r->error_code == ATOLL_WS_CLOSE_UNSUPPORTED ||
              r->error_code == ATOLL_WS_CLOSE_INVALID || r->error_code == ATOLL_WS_CLOSE_TOO_BIG);
        CHECK((verdict == ATOLL_ELIMIT) == (r->error_code == ATOLL_WS_CLOSE_TOO_BIG));
    }
    t->error_code = r->error_code;
    t->in_message = r->in_message;
    CHECK(r->assembly.len <= MAX_MESSAGE);
}

static void
run_whole(const uint8_t *data, size_t size, bool masked, trace *t)
{
    uint8_t *p = malloc(size ? size : 1);
    memcpy(p, data, size);
    atoll__ws_reader r;
    atoll__ws_reader_init(&r, masked, MAX_MESSAGE);
    ssize_t k = 0;
    while (t->consumed < size) {
        atoll__ws_event ev;
        k = atoll__ws_reader_next(&r, p + t->consumed, size - t->consumed, &ev);
        if (k <= 0)
            break;
        CHECK((size_t)k <= size - t->consumed);
        note(t, &ev);
        t->consumed += (size_t)k;
    }
    finish(t, &r, k < 0 ? k : 0);
    atoll__ws_reader_fini(&r);
    free(p);
}

static void
run_chunked(const uint8_t *data, size_t size, bool masked, size_t chunk, trace *t)
{
    atoll__buf in = ATOLL__BUF_INIT;
    atoll__ws_reader r;
    atoll__ws_reader_init(&r, masked, MAX_MESSAGE);
    ssize_t k = 0;
    for (size_t off = 0; off < size && k >= 0; off += chunk) {
        atoll__buf_append(&in, data + off, size - off < chunk ? size - off : chunk);
        while (in.len > 0) {
            atoll__ws_event ev;
            k = atoll__ws_reader_next(&r, atoll__buf_data(&in), in.len, &ev);
            if (k <= 0)
                break;
            note(t, &ev);
            t->consumed += (size_t)k;
            atoll__buf_consume(&in, (size_t)k);
        }
    }
    finish(t, &r, k < 0 ? k : 0);
    atoll__ws_reader_fini(&r);
    atoll__buf_fini(&in);
}

static bool
same(const trace *a, const trace *b)
{
    return a->hash == b->hash && a->events == b->events && a->consumed == b->consumed &&
           a->verdict == b->verdict && a->error_code == b->error_code &&
           a->in_message == b->in_message;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int masked = 0; masked <= 1; masked++) {
        trace whole = {0}, bytes = {0}, chunks = {0};
        run_whole(data, size, masked, &whole);
        run_chunked(data, size, masked, 1, &bytes);
        run_chunked(data, size, masked, 2 + size % 29, &chunks);
        CHECK(same(&whole, &bytes));
        CHECK(same(&whole, &chunks));
    }
    return 0;
}
