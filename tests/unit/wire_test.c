/* wire_test.c -- the wire encoding of mail between nodes (src/node/wire.c).
 *
 * The decoder reads bytes from another node, so it is tested as a parser of untrusted
 * input: every kind that crosses nodes goes through encode and decode and must come
 * back field for field; frames back to back decode one at a time; a frame cut at any
 * length is "incomplete", read from an exact-size copy so that ASan sees any read past
 * the end; and every way a frame can be bad is refused with an error and nothing
 * leaked. The refused frames are built here byte by byte (fb_* below), not by the
 * encoder, so a mistake shared by encoder and decoder does not hide itself.
 *
 * MOVE_IN's payload is the area runtime's player in a node; here it is the test's own
 * payload (a string, tests/support/wire_payload.h), so the test depends on the mail
 * layer alone.
 *
 * Leaks: each test ends with LEAK_CHECK(), which in an ASan build asks LeakSanitizer
 * right there, because the runner ends each forked test with _exit and so skips LSan's
 * check at exit (as in value_test.c).
 */
#include "node/wire.h"
#include "wire_payload.h"
#include "test.h"

#include <atoll/atoll.h>

#if defined(__SANITIZE_ADDRESS__)
#define WIRE_TEST_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WIRE_TEST_LSAN 1
#endif
#endif

#ifdef WIRE_TEST_LSAN
#include <sanitizer/lsan_interface.h>
#define LEAK_CHECK() ASSERT(__lsan_do_recoverable_leak_check() == 0)
#else
#define LEAK_CHECK() ((void)0)
#endif

static const atoll__wire_limits LIM = {.nworkers = 4, .ntypes = 3};

/* ---- the test's MOVE_IN payload: a NUL-free string ------------------------------------- */

/* The kinds' table is the process's; each test runs in its own process, so a test that
 * needs the codec registers it. */
static void
use_test_codec(void)
{
    wire_payload_register();
}

/* ---- helpers ---------------------------------------------------------------------------- */

static atoll_value *
json(const char *text)
{
    atoll_value *v = atoll_parse(text, strlen(text), NULL, 0);
    ASSERT(v != NULL);
    return v;
}

/* Shared bytes as the runtime makes them: malloc'd, one reference (the mail's). */
static atoll__shared *
shared_of(const void *p, size_t n)
{
    atoll__shared *sh = malloc(sizeof *sh + n);
    ASSERT(sh != NULL);
    atomic_init(&sh->refs, 1);
    sh->len = n;
    memcpy(sh->data, p, n);
    return sh;
}

static atoll__mail *
mail_with_data(atoll__mail_type kind, const void *p, size_t n)
{
    atoll__mail *m = atoll__mail_new(kind, n);
    memcpy(m->data, p, n);
    return m;
}

static void
set_str(char *dst, size_t cap, const char *s)
{
    ASSERT(strlen(s) < cap);
    memcpy(dst, s, strlen(s) + 1);
}

static void
same_mail_(const char *file, int line, const atoll__mail *a, const atoll__mail *b)
{
    char what[160];
#define SAME(cond)                                                                                 \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            snprintf(what, sizeof what, "kind %d: %s", (int)a->type, #cond);                       \
            test_fail_(file, line, what);                                                          \
        }                                                                                          \
    } while (0)
    SAME(a->type == b->type);
    SAME(a->session.v == b->session.v);
    SAME(a->request_id == b->request_id);
    SAME(a->reply == b->reply);
    SAME(a->forwarded == b->forwarded);
    SAME(a->msg_type == b->msg_type);
    SAME(a->route == b->route);
    SAME(a->status == b->status);
    SAME(a->at.worker == b->at.worker && a->at.node == b->at.node);
    SAME(a->area == b->area);
    SAME(a->area_old == b->area_old);
    SAME(a->at_old.worker == b->at_old.worker && a->at_old.node == b->at_old.node);
    SAME(a->call_id == b->call_id);
    SAME(a->epoch == b->epoch);
    SAME(a->type_index == b->type_index);
    SAME((a->uid == NULL) == (b->uid == NULL));
    SAME(a->uid == NULL || strcmp(a->uid, b->uid) == 0);
    SAME(strcmp(a->reason, b->reason) == 0);
    SAME(strcmp(a->from, b->from) == 0);
    SAME((a->value == NULL) == (b->value == NULL));
    SAME(a->value == NULL || atoll_equal(a->value, b->value));
    SAME((a->shared == NULL) == (b->shared == NULL));
    SAME(a->shared == NULL || (a->shared->len == b->shared->len &&
                               memcmp(a->shared->data, b->shared->data, a->shared->len) == 0));
    SAME(b->shared == NULL || atomic_load(&b->shared->refs) == 1);
    SAME(a->nsessions == b->nsessions);
    SAME(a->nsessions == 0 ||
         memcmp(a->sessions, b->sessions, a->nsessions * sizeof *a->sessions) == 0);
    SAME(a->len == b->len);
    SAME(a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
    SAME((a->payload == NULL) == (b->payload == NULL));
    SAME(a->payload == NULL || strcmp(a->payload, b->payload) == 0);
#undef SAME
}
#define ASSERT_SAME_MAIL(a, b) same_mail_(__FILE__, __LINE__, (a), (b))

/* Decodes from an exact-size copy of p[0..n), so a read past n is a heap overflow that
 * ASan reports. */
static ssize_t
decode_exact(const void *p, size_t n, atoll__mail **out)
{
    uint8_t *copy = malloc(n ? n : 1);
    ASSERT(copy != NULL);
    if (n)
        memcpy(copy, p, n);
    *out = (atoll__mail *)1; /* the decoder must set it, on every path */
    ssize_t k = atoll__wire_decode(copy, n, &LIM, out);
    free(copy);
    return k;
}

/* Encodes m, decodes the frame, compares every field, and checks that the decoded mail
 * encodes to the very same bytes. Frees m. */
static void
round_trip_(const char *file, int line, atoll__mail *m)
{
    atoll__buf b = ATOLL__BUF_INIT;
    int rc = atoll__wire_encode(m, &b);
    if (rc != ATOLL_OK) {
        fprintf(stderr, "  encode: %s\n", atoll_err_name(rc));
        test_fail_(file, line, "encode failed");
    }
    uint8_t *p = atoll__buf_data(&b);
    if (b.len < 10 || (size_t)(p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24) != b.len - 4)
        test_fail_(file, line, "frame length is not the record's");
    atoll__mail *d;
    ssize_t k = decode_exact(p, b.len, &d);
    if (k != (ssize_t)b.len) {
        fprintf(stderr, "  decode: %zd of %zu bytes\n", k, b.len);
        test_fail_(file, line, "decode did not take the whole frame");
    }
    same_mail_(file, line, m, d);
    atoll__buf again = ATOLL__BUF_INIT;
    if (atoll__wire_encode(d, &again) != ATOLL_OK || again.len != b.len ||
        memcmp(atoll__buf_data(&again), p, b.len) != 0)
        test_fail_(file, line, "the decoded mail does not encode to the same bytes");
    atoll__buf_fini(&again);
    atoll__buf_fini(&b);
    atoll__mail_free(d);
    atoll__mail_free(m);
}
#define ROUND_TRIP(m) round_trip_(__FILE__, __LINE__, (m))

/* ---- frames built by hand ---------------------------------------------------------------- */

/* A frame header: the length is filled in by fb_end. One frame per buffer. */
static void
fb_begin(atoll__buf *b, uint8_t version, uint8_t kind, uint32_t fields)
{
    b->len = 0;
    atoll__wire_put_u32(b, 0);
    atoll__buf_push(b, version);
    atoll__buf_push(b, kind);
    atoll__wire_put_u32(b, fields);
}

static void
fb_end(atoll__buf *b)
{
    uint32_t rec = (uint32_t)(b->len - 4);
    uint8_t *p = atoll__buf_data(b);
    p[0] = (uint8_t)rec;
    p[1] = (uint8_t)(rec >> 8);
    p[2] = (uint8_t)(rec >> 16);
    p[3] = (uint8_t)(rec >> 24);
}

static void
fb_bytes32(atoll__buf *b, const char *s)
{
    atoll__wire_put_u32(b, (uint32_t)strlen(s));
    atoll__buf_append(b, s, strlen(s));
}

/* Writes a good value for each field in f, in bit order (the format in wire.h). */
static void
fb_fields(atoll__buf *b, uint32_t f)
{
    if (f & ATOLL_WIRE_F_SESSION)
        atoll__wire_put_u64(b, 7);
    if (f & ATOLL_WIRE_F_REQUEST)
        atoll__wire_put_u32(b, 9);
    if (f & ATOLL_WIRE_F_FLAGS) {
        atoll__buf_push(b, 1);
        atoll__buf_push(b, 0);
    }
    if (f & ATOLL_WIRE_F_ROUTE)
        atoll__wire_put_u16(b, 5);
    if (f & ATOLL_WIRE_F_STATUS)
        atoll__wire_put_u32(b, (uint32_t)-3);
    if (f & ATOLL_WIRE_F_WORKER)
        atoll__wire_put_u32(b, 3);
    if (f & ATOLL_WIRE_F_AREA)
        atoll__wire_put_u64(b, 11);
    if (f & ATOLL_WIRE_F_AREA_OLD) {
        atoll__wire_put_u64(b, 12);
        atoll__wire_put_u32(b, 2);
    }
    if (f & ATOLL_WIRE_F_CALL_ID)
        atoll__wire_put_u64(b, 13);
    if (f & ATOLL_WIRE_F_TYPE)
        atoll__wire_put_u16(b, 2);
    if (f & ATOLL_WIRE_F_UID) {
        atoll__wire_put_u16(b, 2);
        atoll__buf_append(b, "u1", 2);
    }
    if (f & ATOLL_WIRE_F_REASON) {
        atoll__buf_push(b, 3);
        atoll__buf_append(b, "bye", 3);
    }
    if (f & ATOLL_WIRE_F_FROM) {
        atoll__buf_push(b, 6);
        atoll__buf_append(b, "area-1", 6);
    }
    if (f & ATOLL_WIRE_F_VALUE)
        fb_bytes32(b, "{\"a\":1}");
    if (f & ATOLL_WIRE_F_SHARED)
        fb_bytes32(b, "xy");
    if (f & ATOLL_WIRE_F_SESSIONS) {
        atoll__wire_put_u32(b, 2);
        atoll__wire_put_u64(b, 21);
        atoll__wire_put_u64(b, 22);
    }
    if (f & ATOLL_WIRE_F_DATA)
        fb_bytes32(b, "body");
    if (f & ATOLL_WIRE_F_PAYLOAD)
        fb_bytes32(b, "player");
    if (f & ATOLL_WIRE_F_EPOCH)
        atoll__wire_put_u64(b, 31);
}

/* A whole frame of kind with a good value in each field of f. */
static void
fb_frame(atoll__buf *b, uint8_t kind, uint32_t f)
{
    fb_begin(b, ATOLL_WIRE_VERSION, kind, f);
    fb_fields(b, f);
    fb_end(b);
}

/* The decoder refuses the frame in b with want (an exact-size copy; *out stays NULL). */
static void
refused_(const char *file, int line, const atoll__buf *b, ssize_t want)
{
    atoll__mail *m;
    ssize_t k = decode_exact(atoll__buf_data(b), b->len, &m);
    if (k != want || m != NULL) {
        fprintf(stderr, "  decode gave %zd (want %zd), mail %p\n", k, want, (void *)m);
        if (m != NULL && m != (atoll__mail *)1)
            atoll__mail_free(m);
        test_fail_(file, line, "frame not refused as it should be");
    }
}
#define REFUSED(b, want) refused_(__FILE__, __LINE__, (b), (want))

/* The fields each kind needs (wire.c's table, stated again here as the contract). */
static uint32_t
required_of(atoll__mail_type k)
{
    const uint32_t S = ATOLL_WIRE_F_SESSION, U = ATOLL_WIRE_F_UID, A = ATOLL_WIRE_F_AREA;
    switch (k) {
    case ATOLL_MAIL_BIND:
    case ATOLL_MAIL_BOUND:
    case ATOLL_MAIL_UNBIND: return S | U;
    case ATOLL_MAIL_KICK: return S;
    case ATOLL_MAIL_BROADCAST:
    case ATOLL_MAIL_SESS_PUSH: return ATOLL_WIRE_F_SHARED;
    case ATOLL_MAIL_SESS_OUT: return 0;
    case ATOLL_MAIL_AREA_CREATE: return ATOLL_WIRE_F_FROM;
    case ATOLL_MAIL_AREA_ENTER: return S | U;
    case ATOLL_MAIL_AREA_REQ:
    case ATOLL_MAIL_AREA_LEAVE:
    case ATOLL_MAIL_AREA_FENCE: return A | S;
    case ATOLL_MAIL_AREA_MOVE_IN: return A | S | ATOLL_WIRE_F_PAYLOAD;
    case ATOLL_MAIL_AREA_CALL: return A | ATOLL_WIRE_F_WORKER;
    case ATOLL_MAIL_AREA_REPLY: return ATOLL_WIRE_F_CALL_ID;
    case ATOLL_MAIL_SESS_ROUTE: return S;
    case ATOLL_MAIL_DIR_ANSWER: return ATOLL_WIRE_F_CALL_ID;
    case ATOLL_MAIL_DIR_INVALIDATE: return ATOLL_WIRE_F_FROM | ATOLL_WIRE_F_EPOCH;
    case ATOLL_MAIL_AREA_RESUME: return A | S | U | ATOLL_WIRE_F_DATA;
    case ATOLL_MAIL_AREA_EVICT: return A | U;
    case ATOLL_MAIL_AREA_HANDOFF: return A | ATOLL_WIRE_F_FROM | ATOLL_WIRE_F_CALL_ID;
    case ATOLL_MAIL_AREA_MIGRATE:
        return A | ATOLL_WIRE_F_FROM | ATOLL_WIRE_F_WORKER | ATOLL_WIRE_F_EPOCH |
               ATOLL_WIRE_F_PAYLOAD;
    case ATOLL_MAIL_AREA_MIGRATED: return A;
    case ATOLL_MAIL_AREA_HANDOFF_DONE: return ATOLL_WIRE_F_CALL_ID | ATOLL_WIRE_F_FROM;
    default: return 0;
    }
}

/* ---- every kind, there and back ---------------------------------------------------------- */

TEST(kinds_keep_their_wire_numbers)
{
    /* The kind byte is the enum's value: reordering the enum would make two builds of
     * atoll misread each other's mail. */
    ASSERT_EQ(ATOLL_WIRE_VERSION, 1);
    ASSERT_EQ(ATOLL_MAIL_STOP, 0);
    ASSERT_EQ(ATOLL_MAIL_BIND, 1);
    ASSERT_EQ(ATOLL_MAIL_BOUND, 2);
    ASSERT_EQ(ATOLL_MAIL_UNBIND, 3);
    ASSERT_EQ(ATOLL_MAIL_KICK, 4);
    ASSERT_EQ(ATOLL_MAIL_BROADCAST, 5);
    ASSERT_EQ(ATOLL_MAIL_SESS_OUT, 6);
    ASSERT_EQ(ATOLL_MAIL_SESS_PUSH, 7);
    ASSERT_EQ(ATOLL_MAIL_AREA_CREATE, 8);
    ASSERT_EQ(ATOLL_MAIL_AREA_ENTER, 9);
    ASSERT_EQ(ATOLL_MAIL_AREA_REQ, 10);
    ASSERT_EQ(ATOLL_MAIL_AREA_LEAVE, 11);
    ASSERT_EQ(ATOLL_MAIL_AREA_FENCE, 12);
    ASSERT_EQ(ATOLL_MAIL_AREA_MOVE_IN, 13);
    ASSERT_EQ(ATOLL_MAIL_AREA_CALL, 14);
    ASSERT_EQ(ATOLL_MAIL_AREA_REPLY, 15);
    ASSERT_EQ(ATOLL_MAIL_SESS_ROUTE, 16);
    ASSERT_EQ(ATOLL_MAIL_LINK, 17);
    ASSERT_EQ(ATOLL_MAIL_DIR_ANSWER, 18);
    ASSERT_EQ(ATOLL_MAIL_DIR_INVALIDATE, 19);
    ASSERT_EQ(ATOLL_MAIL_AREA_RESUME, 20);
    ASSERT_EQ(ATOLL_MAIL_AREA_EVICT, 21);
    ASSERT_EQ(ATOLL_MAIL_DOC_LOADED, 22);
    ASSERT_EQ(ATOLL_MAIL_DOC_COMMITTED, 23);
    ASSERT_EQ(ATOLL_MAIL_NODE_DOWN, 24);
    ASSERT_EQ(ATOLL_MAIL_AREA_MOVE_ASK, 25);
    ASSERT_EQ(ATOLL_MAIL_AREA_HANDOFF, 26);
    ASSERT_EQ(ATOLL_MAIL_AREA_MIGRATE, 27);
    ASSERT_EQ(ATOLL_MAIL_AREA_MIGRATED, 28);
    ASSERT_EQ(ATOLL_MAIL_AREA_HANDOFF_DONE, 29);
    ASSERT_EQ(ATOLL_MAIL_KINDS, 30);
}

TEST(golden_frame)
{
    /* One frame written out byte for byte from the format in wire.h. */
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_BIND, 0);
    m->session.v = 0x0102030405060708u;
    m->request_id = 9;
    m->reply = true;
    m->uid = atoll__strndup("u1", 2);
    atoll__buf b = ATOLL__BUF_INIT;
    ASSERT_EQ(atoll__wire_encode(m, &b), ATOLL_OK);
    uint8_t want[64];
    size_t n = test_hex("18 00 00 00 | 01 01 | 07 04 00 00 | 08 07 06 05 04 03 02 01 |"
                        "09 00 00 00 | 01 00 | 02 00 75 31",
                        want, sizeof want);
    ASSERT_EQ(b.len, n);
    ASSERT_MEM(atoll__buf_data(&b), want, n);
    atoll__buf_fini(&b);
    atoll__mail_free(m);
    LEAK_CHECK();
}

TEST(bind)
{
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_BIND, 0);
    m->session.v = 0x100000001u;
    m->request_id = 42;
    m->reply = true;
    m->uid = atoll__strndup("player-1", 8);
    m->value = json("{\"uid\":\"player-1\",\"token\":\"t\",\"n\":[1,2.5,null,true]}");
    ROUND_TRIP(m);
    LEAK_CHECK();
}

TEST(bound)
{
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_BOUND, 0);
    m->session.v = UINT64_MAX;
    m->request_id = UINT32_MAX;
    m->reply = false;
    m->uid = atoll__strndup("é😀", strlen("é😀"));
    m->value = json("\"just a string\"");
    ROUND_TRIP(m);
    LEAK_CHECK();
}

TEST(unbind)
{
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_UNBIND, 0);
    m->session.v = 3;
    m->uid = atoll__strndup("u", 1);
    ROUND_TRIP(m);
    LEAK_CHECK();
}

TEST(kick)
{
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_KICK, 0);
    m->session.v = 77;
    set_str(m->reason, sizeof m->reason, "kicked by the game");
    ROUND_TRIP(m);
    m = atoll__mail_new(ATOLL_MAIL_KICK, 0); /* no reason */
    m->session.v = 78;
    ROUND_TRIP(m);
    LEAK_CHECK();
}

TEST(broadcast)
{
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_BROADCAST, 0);
    static const uint8_t pkg[] = {4, 0, 0, 5, 6, 2, 'o', 'n', 0};
    m->shared = shared_of(pkg, sizeof pkg);
    ROUND_TRIP(m);
    m = atoll__mail_new(ATOLL_MAIL_BROADCAST, 0); /* shared but empty */
    m->shared = shared_of("", 0);
    ROUND_TRIP(m);
    LEAK_CHECK();
}

TEST(sess_out)
{
    /* Records of {session id, length, bytes}; opaque to the wire. */
    uint8_t rec[8 + 4 + 3] = {1, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 'a', 0, 'c'};
    ROUND_TRIP(mail_with_data(ATOLL_MAIL_SESS_OUT, rec, sizeof rec));
    ROUND_TRIP(atoll__mail_new(ATOLL_MAIL_SESS_OUT, 0)); /* no field at all */
    LEAK_CHECK();
}

TEST(sess_push)
{
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_SESS_PUSH, 0);
    m->shared = shared_of("push bytes", 10);
    m->nsessions = 3;
    m->sessions = atoll__malloc(3 * sizeof *m->sessions);
    m->sessions[0].v = 1;
    m->sessions[1].v = UINT64_MAX;
    m->sessions[2].v = 0; /* the wire does not judge the ids */
    ROUND_TRIP(m);
    LEAK_CHECK();
}

TEST(area_create)
{
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_AREA_CREATE, 0);
    snprintf(m->from, sizeof m->from, "room:1");
    m->type_index = 1;
    m->value = json("{\"size\":4}");
    m->at = atoll__addr_make(1, 2);
    m->call_id = 2;
    ROUND_TRIP(m);
    LEAK_CHECK();
}

TEST(dir_answer)
{
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_DIR_ANSWER, 0);
    m->call_id = 1;
    m->status = ATOLL_EEXIST;
    snprintf(m->from, sizeof m->from, "room:1");
    m->area = (uint64_t)1 << 52 | 77;
    m->at = atoll__addr_make(1, 3);
    m->epoch = UINT64_MAX;
    m->type_index = 2;
    ROUND_TRIP(m);
    LEAK_CHECK();
}

TEST(dir_invalidate)
{
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_DIR_INVALIDATE, 0);
    snprintf(m->from, sizeof m->from, "room:1");
    m->epoch = 9;
    ROUND_TRIP(m);
    LEAK_CHECK();
}

TEST(area_enter)
{
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_AREA_ENTER, 0);
    m->area = 0xfeedfacecafeu;
    m->session.v = 5;
    m->request_id = 6;
    m->reply = true;
    m->uid = atoll__strndup("p", 1);
    m->value = json("{}");
    m->type_index = 2;
    set_str(m->from, sizeof m->from, "room:lobby");
    ROUND_TRIP(m);
    LEAK_CHECK();
}

TEST(area_req)
{
    static const char body[] = "{\"x\":1,\"y\":-2}";
    atoll__mail *m = mail_with_data(ATOLL_MAIL_AREA_REQ, body, sizeof body - 1);
    m->area = 2;
    m->session.v = 5;
    m->request_id = 7;
    m->msg_type = 1; /* notify */
    m->route = 65535;
    m->forwarded = true;
    ROUND_TRIP(m);
    LEAK_CHECK();
}

TEST(area_leave_and_fence)
{
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_AREA_LEAVE, 0);
    m->area = 3;
    m->session.v = 8;
    ROUND_TRIP(m);
    m = atoll__mail_new(ATOLL_MAIL_AREA_FENCE, 0);
    m->area = 3;
    m->session.v = 8;
    ROUND_TRIP(m);
    LEAK_CHECK();
}

TEST(area_move_in)
{
    use_test_codec();
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_AREA_MOVE_IN, 0);
    m->area = 4;
    m->area_old = 3;
    m->at_old.worker = 1;
    m->session.v = 9;
    m->payload = atoll__strndup("player-9 {\"hp\":3}", 18);
    ROUND_TRIP(m);
    m = atoll__mail_new(ATOLL_MAIL_AREA_MOVE_IN, 0); /* an empty payload is still one */
    m->area = 4;
    m->session.v = 9;
    m->payload = atoll__strndup("", 0);
    ROUND_TRIP(m);
    LEAK_CHECK();
}

TEST(area_call)
{
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_AREA_CALL, 0);
    m->area = 5;
    m->route = 12;
    m->call_id = 99;
    m->at.worker = 0; /* a call always says its worker, 0 included */
    m->value = json("[1,\"two\",{\"three\":3}]");
    set_str(m->from, sizeof m->from, "area-1");
    ROUND_TRIP(m);
    m = atoll__mail_new(ATOLL_MAIL_AREA_CALL, 0); /* a send: no call id, no body */
    m->area = 5;
    m->at.worker = 3;
    ROUND_TRIP(m);
    LEAK_CHECK();
}

TEST(area_reply)
{
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_AREA_REPLY, 0);
    m->call_id = 99;
    m->status = ATOLL_ETIMEDOUT; /* negative */
    m->value = json("{\"code\":500}");
    ROUND_TRIP(m);
    m = atoll__mail_new(ATOLL_MAIL_AREA_REPLY, 0);
    m->call_id = UINT64_MAX;
    m->status = INT32_MIN;
    ROUND_TRIP(m);
    LEAK_CHECK();
}

TEST(sess_route)
{
    static const uint8_t reply[] = {4, 0, 0, 3, 4, 1, '{', '}'};
    atoll__mail *m = mail_with_data(ATOLL_MAIL_SESS_ROUTE, reply, sizeof reply);
    m->session.v = 10;
    m->area = 6;
    m->at.worker = 3;
    m->type_index = 2;
    m->area_old = 5;
    m->at_old.worker = 2;
    ROUND_TRIP(m);
    m = atoll__mail_new(ATOLL_MAIL_SESS_ROUTE, 0); /* the player is in no area now */
    m->session.v = 10;
    ROUND_TRIP(m);
    LEAK_CHECK();
}

/* A move's HANDOFF names its target node in status; a players list's names none (status
 * 0, msg_type 1) and must cross all the same: its answer carries the list as data. */
TEST(area_handoff_of_a_move_and_of_a_players_list)
{
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_AREA_HANDOFF, 0);
    m->area = 12;
    snprintf(m->from, sizeof m->from, "area-1");
    m->status = 3;
    m->at.node = 2;
    m->at.worker = 1;
    m->call_id = 41;
    ROUND_TRIP(m);
    m = atoll__mail_new(ATOLL_MAIL_AREA_HANDOFF, 0);
    m->area = 12;
    snprintf(m->from, sizeof m->from, "area-1");
    m->msg_type = 1;
    m->call_id = 42;
    ROUND_TRIP(m);
    static const char list[] = "{\"area\":\"area-1\",\"players\":[]}";
    m = mail_with_data(ATOLL_MAIL_AREA_HANDOFF_DONE, list, sizeof list - 1);
    snprintf(m->from, sizeof m->from, "area-1");
    m->call_id = 42;
    m->at.node = 3;
    ROUND_TRIP(m);
    LEAK_CHECK();
}

/* Every field at once, each at its largest: uid of ATOLL_UID_MAX, reason of 47, area id
 * of ATOLL_AREA_ID_MAX. */
static atoll__mail *
every_field(void)
{
    static const char body[] = "area request body";
    atoll__mail *m = mail_with_data(ATOLL_MAIL_AREA_MOVE_IN, body, sizeof body - 1);
    m->session.v = 1;
    m->request_id = 2;
    m->reply = true;
    m->forwarded = true;
    m->msg_type = 255;
    m->route = 3;
    m->status = -4;
    m->at.worker = 3;
    m->epoch = UINT64_MAX;
    m->area = 5;
    m->area_old = 6;
    m->at_old.worker = 3;
    m->call_id = 7;
    m->type_index = 2;
    char uid[ATOLL_UID_MAX + 1];
    memset(uid, 'u', ATOLL_UID_MAX);
    m->uid = atoll__strndup(uid, ATOLL_UID_MAX);
    memset(m->reason, 'r', ATOLL_WIRE_REASON_MAX);
    memset(m->from, 'f', ATOLL_AREA_ID_MAX);
    m->value = json("{\"k\":[true,false,null,1.5,-7,\"\\u00e9\\n\"]}");
    m->shared = shared_of("shared", 6);
    m->nsessions = 2;
    m->sessions = atoll__malloc(2 * sizeof *m->sessions);
    m->sessions[0].v = 8;
    m->sessions[1].v = 9;
    m->payload = atoll__strndup("payload", 7);
    return m;
}

TEST(every_field_at_its_limit)
{
    use_test_codec();
    atoll__mail *m = every_field();
    atoll__buf b = ATOLL__BUF_INIT;
    ASSERT_EQ(atoll__wire_encode(m, &b), ATOLL_OK);
    const uint8_t *h = atoll__buf_data(&b); /* the fields word follows length, version, kind */
    ASSERT_EQ(h[6] | h[7] << 8 | h[8] << 16 | (uint32_t)h[9] << 24, ATOLL_WIRE_F_ALL);
    atoll__buf_fini(&b);
    ROUND_TRIP(m);
    LEAK_CHECK();
}

TEST(value_null_is_no_value)
{
    /* Whatever text of JSON null a peer sends, the mail has no value, so that it encodes
     * the same way twice (a null value would be written as "null", then read as none). */
    static const char *const nulls[] = {"null", " null", "null\n", "\tnull "};
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++) {
        atoll__buf b = ATOLL__BUF_INIT;
        fb_begin(&b, ATOLL_WIRE_VERSION, ATOLL_MAIL_AREA_REPLY,
                 ATOLL_WIRE_F_CALL_ID | ATOLL_WIRE_F_VALUE);
        atoll__wire_put_u64(&b, 1);
        fb_bytes32(&b, nulls[i]);
        fb_end(&b);
        atoll__mail *m;
        ASSERT_EQ(decode_exact(atoll__buf_data(&b), b.len, &m), (ssize_t)b.len);
        ASSERT(m->value == NULL);
        atoll__mail_free(m);
        atoll__buf_fini(&b);
    }
    /* An empty VALUE is no value as well. */
    atoll__buf b = ATOLL__BUF_INIT;
    fb_begin(&b, ATOLL_WIRE_VERSION, ATOLL_MAIL_AREA_REPLY,
             ATOLL_WIRE_F_CALL_ID | ATOLL_WIRE_F_VALUE);
    atoll__wire_put_u64(&b, 1);
    atoll__wire_put_u32(&b, 0);
    fb_end(&b);
    atoll__mail *m;
    ASSERT_EQ(decode_exact(atoll__buf_data(&b), b.len, &m), (ssize_t)b.len);
    ASSERT(m->value == NULL);
    atoll__mail_free(m);
    atoll__buf_fini(&b);
    LEAK_CHECK();
}

/* ---- frames in a stream ------------------------------------------------------------------ */

TEST(frames_back_to_back)
{
    use_test_codec();
    atoll__buf b = ATOLL__BUF_INIT;
    atoll__mail *sent[4];
    sent[0] = every_field();
    sent[1] = atoll__mail_new(ATOLL_MAIL_SESS_OUT, 0);
    sent[2] = atoll__mail_new(ATOLL_MAIL_KICK, 0);
    sent[2]->session.v = 4;
    set_str(sent[2]->reason, sizeof sent[2]->reason, "x");
    sent[3] = atoll__mail_new(ATOLL_MAIL_AREA_REPLY, 0);
    sent[3]->call_id = 1;
    size_t ends[4];
    for (int i = 0; i < 4; i++) {
        ASSERT_EQ(atoll__wire_encode(sent[i], &b), ATOLL_OK);
        ends[i] = b.len;
    }
    size_t off = 0;
    for (int i = 0; i < 4; i++) {
        atoll__mail *m;
        ssize_t k = decode_exact(atoll__buf_data(&b) + off, b.len - off, &m);
        ASSERT_EQ(off + (size_t)k, ends[i]);
        ASSERT_SAME_MAIL(sent[i], m);
        atoll__mail_free(m);
        atoll__mail_free(sent[i]);
        off += (size_t)k;
    }
    atoll__mail *m;
    ASSERT_EQ(decode_exact(atoll__buf_data(&b) + off, 0, &m), 0); /* nothing left */
    ASSERT(m == NULL);
    atoll__buf_fini(&b);
    LEAK_CHECK();
}

TEST(truncated_frame_is_incomplete_at_every_length)
{
    use_test_codec();
    atoll__mail *m = every_field();
    atoll__buf b = ATOLL__BUF_INIT;
    ASSERT_EQ(atoll__wire_encode(m, &b), ATOLL_OK);
    for (size_t n = 0; n < b.len; n++) {
        atoll__mail *d;
        ASSERT_EQ(decode_exact(atoll__buf_data(&b), n, &d), 0);
        ASSERT(d == NULL);
    }
    /* The next frame's first bytes behind a whole one change nothing. */
    size_t one = b.len;
    ASSERT_EQ(atoll__wire_encode(m, &b), ATOLL_OK);
    for (size_t n = one; n < b.len; n++) {
        atoll__mail *d;
        ASSERT_EQ(decode_exact(atoll__buf_data(&b), n, &d), (ssize_t)one);
        atoll__mail_free(d);
    }
    atoll__buf_fini(&b);
    atoll__mail_free(m);
    LEAK_CHECK();
}

/* ---- what encode refuses ------------------------------------------------------------------ */

TEST(encode_refuses_kinds_that_never_cross)
{
    atoll__buf b = ATOLL__BUF_INIT;
    atoll__buf_append(&b, "xyz", 3); /* what was there stays */
    atoll__mail_type never[] = {ATOLL_MAIL_STOP, ATOLL_MAIL_LINK, ATOLL_MAIL_DOC_LOADED,
                                ATOLL_MAIL_DOC_COMMITTED, ATOLL_MAIL_NODE_DOWN,
                                ATOLL_MAIL_KINDS};
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++) {
        atoll__mail *m = atoll__mail_new(never[i], 4);
        memcpy(m->data, "\1\0\0\0", 4);
        ASSERT_EQ(atoll__wire_encode(m, &b), ATOLL_EINVAL);
        ASSERT_EQ(b.len, 3);
        m->type = ATOLL_MAIL_SESS_OUT; /* freed as a kind that exists */
        atoll__mail_free(m);
    }
    atoll__buf_fini(&b);
    LEAK_CHECK();
}

TEST(encode_limits)
{
    atoll__buf b = ATOLL__BUF_INIT;
    /* Sessions: ATOLL_WIRE_SESSIONS_MAX cross, one more does not. */
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_SESS_PUSH, 0);
    m->shared = shared_of("p", 1);
    m->sessions = atoll__calloc(ATOLL_WIRE_SESSIONS_MAX + 1, sizeof *m->sessions);
    m->nsessions = ATOLL_WIRE_SESSIONS_MAX + 1;
    ASSERT_EQ(atoll__wire_encode(m, &b), ATOLL_ELIMIT);
    ASSERT_EQ(b.len, 0);
    m->nsessions = ATOLL_WIRE_SESSIONS_MAX;
    m->sessions[ATOLL_WIRE_SESSIONS_MAX - 1].v = 5;
    ROUND_TRIP(m);
    /* A uid longer than ATOLL_UID_MAX. */
    m = atoll__mail_new(ATOLL_MAIL_BIND, 0);
    m->session.v = 1;
    char uid[ATOLL_UID_MAX + 2];
    memset(uid, 'u', sizeof uid);
    m->uid = atoll__strndup(uid, ATOLL_UID_MAX + 1);
    ASSERT_EQ(atoll__wire_encode(m, &b), ATOLL_ELIMIT);
    ASSERT_EQ(b.len, 0);
    atoll__mail_free(m);
    /* A record past ATOLL_WIRE_FRAME_MAX: refused, and what was in the buffer stays. */
    atoll__buf_append(&b, "keep", 4);
    m = atoll__mail_new(ATOLL_MAIL_SESS_OUT, ATOLL_WIRE_FRAME_MAX);
    ASSERT_EQ(atoll__wire_encode(m, &b), ATOLL_ELIMIT);
    ASSERT_EQ(b.len, 4);
    ASSERT_MEM(atoll__buf_data(&b), "keep", 4);
    atoll__mail_free(m);
    atoll__buf_fini(&b);
    LEAK_CHECK();
}

TEST(move_in_without_a_codec)
{
    /* No codec registered for the kind: it cannot be encoded, nor decoded. */
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_AREA_MOVE_IN, 0);
    m->area = 1;
    m->session.v = 1;
    m->payload = (void *)"not owned";
    atoll__buf b = ATOLL__BUF_INIT;
    atoll__buf_append(&b, "keep", 4);
    ASSERT_EQ(atoll__wire_encode(m, &b), ATOLL_EINVAL);
    ASSERT_EQ(b.len, 4);
    m->payload = NULL;
    atoll__mail_free(m);
    fb_frame(&b, ATOLL_MAIL_AREA_MOVE_IN, required_of(ATOLL_MAIL_AREA_MOVE_IN));
    REFUSED(&b, ATOLL_EPROTO);
    atoll__buf_fini(&b);
    LEAK_CHECK();
}

/* ---- what decode refuses ------------------------------------------------------------------ */

TEST(every_kind_needs_its_fields)
{
    /* With its required fields each kind decodes; without any one of them it is refused. */
    use_test_codec();
    atoll__buf b = ATOLL__BUF_INIT;
    for (int k = ATOLL_MAIL_BIND; k < ATOLL_MAIL_KINDS; k++) {
        if (k == ATOLL_MAIL_LINK || k == ATOLL_MAIL_DOC_LOADED || k == ATOLL_MAIL_DOC_COMMITTED ||
            k == ATOLL_MAIL_NODE_DOWN || k == ATOLL_MAIL_AREA_MOVE_ASK)
            continue; /* never on a link (docs_never_cross_links) */
        uint32_t req = required_of((atoll__mail_type)k);
        fb_frame(&b, (uint8_t)k, req);
        atoll__mail *m;
        ssize_t n = decode_exact(atoll__buf_data(&b), b.len, &m);
        if (n != (ssize_t)b.len)
            fprintf(stderr, "  kind %d with its fields: %zd\n", k, n);
        ASSERT_EQ(n, (ssize_t)b.len);
        ASSERT_EQ(m->type, k);
        atoll__mail_free(m);
        for (int bit = 0; bit < 19; bit++) {
            if (!(req & (1u << bit)))
                continue;
            fb_frame(&b, (uint8_t)k, req & ~(1u << bit));
            REFUSED(&b, ATOLL_EPROTO);
        }
    }
    atoll__buf_fini(&b);
    LEAK_CHECK();
}

TEST(docs_never_cross_links)
{
    /* DOC_* come from a node's own writer thread: encoding refuses them, and so does
     * decoding when a peer sends one. */
    use_test_codec();
    atoll__buf b = ATOLL__BUF_INIT;
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_DOC_COMMITTED, 0);
    ASSERT_EQ(atoll__wire_encode(m, &b), ATOLL_EINVAL);
    atoll__mail_free(m);
    fb_frame(&b, (uint8_t)ATOLL_MAIL_DOC_LOADED, 0);
    REFUSED(&b, ATOLL_EPROTO);
    /* Nor NODE_DOWN: what a node's cluster thread tells its own workers. */
    m = atoll__mail_new(ATOLL_MAIL_NODE_DOWN, 0);
    ASSERT_EQ(atoll__wire_encode(m, &b), ATOLL_EINVAL);
    atoll__mail_free(m);
    fb_frame(&b, (uint8_t)ATOLL_MAIL_NODE_DOWN, 0);
    REFUSED(&b, ATOLL_EPROTO);
    /* Nor MOVE_ASK: it carries a pointer to whoever asked, on this node. */
    m = atoll__mail_new(ATOLL_MAIL_AREA_MOVE_ASK, 0);
    ASSERT_EQ(atoll__wire_encode(m, &b), ATOLL_EINVAL);
    atoll__mail_free(m);
    fb_frame(&b, (uint8_t)ATOLL_MAIL_AREA_MOVE_ASK, 0);
    REFUSED(&b, ATOLL_EPROTO);
    atoll__buf_fini(&b);
    LEAK_CHECK();
}

TEST(every_field_decodes_for_every_kind)
{
    /* Any kind may carry any field, but a payload only with its kind's codec. */
    use_test_codec();
    atoll__buf b = ATOLL__BUF_INIT;
    for (int k = ATOLL_MAIL_BIND; k < ATOLL_MAIL_KINDS; k++) {
        if (k == ATOLL_MAIL_LINK || k == ATOLL_MAIL_DOC_LOADED || k == ATOLL_MAIL_DOC_COMMITTED ||
            k == ATOLL_MAIL_NODE_DOWN || k == ATOLL_MAIL_AREA_MOVE_ASK)
            continue;
        uint32_t f = ATOLL_WIRE_F_ALL;
        if (k != ATOLL_MAIL_AREA_MOVE_IN && k != ATOLL_MAIL_AREA_MIGRATE) {
            fb_frame(&b, (uint8_t)k, f);
            REFUSED(&b, ATOLL_EPROTO);
            f &= ~(uint32_t)ATOLL_WIRE_F_PAYLOAD;
        }
        fb_frame(&b, (uint8_t)k, f);
        atoll__mail *m;
        ASSERT_EQ(decode_exact(atoll__buf_data(&b), b.len, &m), (ssize_t)b.len);
        ASSERT_EQ(m->session.v, 7);
        ASSERT_EQ(m->status, -3);
        ASSERT_EQ(m->at_old.worker, 2);
        ASSERT_STR(m->uid, "u1");
        ASSERT_STR(m->from, "area-1");
        ASSERT_EQ(m->nsessions, 2);
        ASSERT_EQ(m->sessions[1].v, 22);
        ASSERT_EQ(m->epoch, 31);
        ASSERT_EQ(m->len, 4);
        ASSERT_MEM(m->data, "body", 4);
        atoll__mail_free(m);
    }
    atoll__buf_fini(&b);
    LEAK_CHECK();
}

TEST(refuses_bad_version)
{
    atoll__buf b = ATOLL__BUF_INIT;
    for (int v = 0; v < 256; v++) {
        if (v == ATOLL_WIRE_VERSION)
            continue;
        fb_begin(&b, (uint8_t)v, ATOLL_MAIL_KICK, ATOLL_WIRE_F_SESSION);
        fb_fields(&b, ATOLL_WIRE_F_SESSION);
        fb_end(&b);
        REFUSED(&b, ATOLL_EPROTO);
    }
    atoll__buf_fini(&b);
    LEAK_CHECK();
}

TEST(refuses_kinds_that_never_cross)
{
    atoll__buf b = ATOLL__BUF_INIT;
    for (int k = 0; k < 256; k++) {
        if (k >= ATOLL_MAIL_BIND && k <= ATOLL_MAIL_SESS_ROUTE)
            continue;
        fb_frame(&b, (uint8_t)k, 0);
        REFUSED(&b, ATOLL_EPROTO);
        fb_frame(&b, (uint8_t)k, ATOLL_WIRE_F_DATA);
        REFUSED(&b, ATOLL_EPROTO);
    }
    atoll__buf_fini(&b);
    LEAK_CHECK();
}

TEST(refuses_a_link_inside_a_link)
{
    /* A LINK frame would be handed to the LINK handler, which decodes the frames it
     * carries: a peer could nest LINKs as deep as 16 MB allows and overflow the stack
     * of the worker that unpacks them. A LINK never crosses a link itself. */
    atoll__buf inner = ATOLL__BUF_INIT;
    atoll__mail *k = atoll__mail_new(ATOLL_MAIL_KICK, 0);
    k->session.v = 1;
    ASSERT_EQ(atoll__wire_encode(k, &inner), ATOLL_OK);
    atoll__mail_free(k);
    atoll__buf b = ATOLL__BUF_INIT;
    fb_begin(&b, ATOLL_WIRE_VERSION, ATOLL_MAIL_LINK, ATOLL_WIRE_F_DATA);
    atoll__wire_put_u32(&b, (uint32_t)inner.len);
    atoll__buf_append(&b, atoll__buf_data(&inner), inner.len);
    fb_end(&b);
    REFUSED(&b, ATOLL_EPROTO);
    atoll__buf_fini(&b);
    atoll__buf_fini(&inner);
    LEAK_CHECK();
}

TEST(refuses_unknown_field_bits)
{
    atoll__buf b = ATOLL__BUF_INIT;
    for (int bit = 18; bit < 32; bit++) {
        fb_begin(&b, ATOLL_WIRE_VERSION, ATOLL_MAIL_KICK, ATOLL_WIRE_F_SESSION | 1u << bit);
        fb_fields(&b, ATOLL_WIRE_F_SESSION);
        fb_end(&b);
        REFUSED(&b, ATOLL_EPROTO);
    }
    atoll__buf_fini(&b);
    LEAK_CHECK();
}

TEST(refuses_required_fields_that_are_zero)
{
    /* The encoder writes a field only when it is not zero (AREA_CALL's worker aside), so
     * a required field that is present but zero would decode into mail whose encoding
     * leaves the field out, which the next node refuses: such a frame is refused here. */
    atoll__buf b = ATOLL__BUF_INIT;
    fb_begin(&b, ATOLL_WIRE_VERSION, ATOLL_MAIL_KICK, ATOLL_WIRE_F_SESSION);
    atoll__wire_put_u64(&b, 0);
    fb_end(&b);
    REFUSED(&b, ATOLL_EPROTO);
    fb_begin(&b, ATOLL_WIRE_VERSION, ATOLL_MAIL_AREA_CREATE, ATOLL_WIRE_F_AREA);
    atoll__wire_put_u64(&b, 0);
    fb_end(&b);
    REFUSED(&b, ATOLL_EPROTO);
    fb_begin(&b, ATOLL_WIRE_VERSION, ATOLL_MAIL_AREA_REPLY, ATOLL_WIRE_F_CALL_ID);
    atoll__wire_put_u64(&b, 0);
    fb_end(&b);
    REFUSED(&b, ATOLL_EPROTO);
    fb_begin(&b, ATOLL_WIRE_VERSION, ATOLL_MAIL_BIND, ATOLL_WIRE_F_SESSION | ATOLL_WIRE_F_UID);
    atoll__wire_put_u64(&b, 0);
    atoll__wire_put_u16(&b, 2);
    atoll__buf_append(&b, "u1", 2);
    fb_end(&b);
    REFUSED(&b, ATOLL_EPROTO);
    /* AREA_CALL's worker 0 is worker 0, written on purpose. */
    fb_begin(&b, ATOLL_WIRE_VERSION, ATOLL_MAIL_AREA_CALL, ATOLL_WIRE_F_AREA | ATOLL_WIRE_F_WORKER);
    atoll__wire_put_u32(&b, 0);
    atoll__wire_put_u64(&b, 1);
    fb_end(&b);
    atoll__mail *m;
    ASSERT_EQ(decode_exact(atoll__buf_data(&b), b.len, &m), (ssize_t)b.len);
    ASSERT_EQ(m->at.worker, 0);
    atoll__mail_free(m);
    atoll__buf_fini(&b);
    LEAK_CHECK();
}

/* A KICK frame for session 7 with a uid of n bytes from s (UID is allowed on any kind). */
static void
kick_with_uid(atoll__buf *b, uint16_t n, const void *s)
{
    fb_begin(b, ATOLL_WIRE_VERSION, ATOLL_MAIL_KICK, ATOLL_WIRE_F_SESSION | ATOLL_WIRE_F_UID);
    atoll__wire_put_u64(b, 7);
    atoll__wire_put_u16(b, n);
    atoll__buf_append(b, s, n);
    fb_end(b);
}

TEST(refuses_bad_uids)
{
    atoll__buf b = ATOLL__BUF_INIT;
    char uid[ATOLL_UID_MAX + 1];
    memset(uid, 'u', sizeof uid);
    kick_with_uid(&b, ATOLL_UID_MAX, uid); /* the longest */
    atoll__mail *m;
    ASSERT_EQ(decode_exact(atoll__buf_data(&b), b.len, &m), (ssize_t)b.len);
    ASSERT_EQ(strlen(m->uid), ATOLL_UID_MAX);
    atoll__mail_free(m);
    kick_with_uid(&b, ATOLL_UID_MAX + 1, uid); /* one too long */
    REFUSED(&b, ATOLL_EPROTO);
    kick_with_uid(&b, 0, ""); /* empty */
    REFUSED(&b, ATOLL_EPROTO);
    kick_with_uid(&b, 3, "a\0b"); /* a NUL inside */
    REFUSED(&b, ATOLL_EPROTO);
    kick_with_uid(&b, 1, ""); /* nothing but a NUL */
    REFUSED(&b, ATOLL_EPROTO);
    atoll__buf_fini(&b);
    LEAK_CHECK();
}

/* A KICK frame with a u8-counted string field (REASON or FROM) of n bytes from s. */
static void
kick_with_str8(atoll__buf *b, uint32_t field, uint8_t n, const void *s)
{
    fb_begin(b, ATOLL_WIRE_VERSION, ATOLL_MAIL_KICK, ATOLL_WIRE_F_SESSION | field);
    atoll__wire_put_u64(b, 7);
    atoll__buf_push(b, n);
    atoll__buf_append(b, s, n);
    fb_end(b);
}

TEST(refuses_long_reasons_and_area_ids)
{
    atoll__buf b = ATOLL__BUF_INIT;
    char s[256];
    memset(s, 'r', sizeof s);
    atoll__mail *m;
    kick_with_str8(&b, ATOLL_WIRE_F_REASON, ATOLL_WIRE_REASON_MAX, s);
    ASSERT_EQ(decode_exact(atoll__buf_data(&b), b.len, &m), (ssize_t)b.len);
    ASSERT_EQ(strlen(m->reason), ATOLL_WIRE_REASON_MAX);
    atoll__mail_free(m);
    kick_with_str8(&b, ATOLL_WIRE_F_REASON, ATOLL_WIRE_REASON_MAX + 1, s);
    REFUSED(&b, ATOLL_EPROTO);
    kick_with_str8(&b, ATOLL_WIRE_F_REASON, 255, s);
    REFUSED(&b, ATOLL_EPROTO);
    kick_with_str8(&b, ATOLL_WIRE_F_REASON, 2, "a\0");
    REFUSED(&b, ATOLL_EPROTO);

    kick_with_str8(&b, ATOLL_WIRE_F_FROM, ATOLL_AREA_ID_MAX, s);
    ASSERT_EQ(decode_exact(atoll__buf_data(&b), b.len, &m), (ssize_t)b.len);
    ASSERT_EQ(strlen(m->from), ATOLL_AREA_ID_MAX);
    atoll__mail_free(m);
    kick_with_str8(&b, ATOLL_WIRE_F_FROM, ATOLL_AREA_ID_MAX + 1, s);
    REFUSED(&b, ATOLL_EPROTO);
    kick_with_str8(&b, ATOLL_WIRE_F_FROM, 2, "\0a");
    REFUSED(&b, ATOLL_EPROTO);
    atoll__buf_fini(&b);
    LEAK_CHECK();
}

TEST(refuses_indexes_past_the_node)
{
    atoll__buf b = ATOLL__BUF_INIT;
    uint32_t bad[] = {4, 5, 0x7fffffffu, 0x80000000u, UINT32_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        /* worker */
        fb_begin(&b, ATOLL_WIRE_VERSION, ATOLL_MAIL_AREA_CALL,
                 ATOLL_WIRE_F_WORKER | ATOLL_WIRE_F_AREA);
        atoll__wire_put_u32(&b, bad[i]);
        atoll__wire_put_u64(&b, 1);
        fb_end(&b);
        REFUSED(&b, ATOLL_EPROTO);
        /* worker_old */
        fb_begin(&b, ATOLL_WIRE_VERSION, ATOLL_MAIL_SESS_ROUTE,
                 ATOLL_WIRE_F_SESSION | ATOLL_WIRE_F_AREA_OLD);
        atoll__wire_put_u64(&b, 1);
        atoll__wire_put_u64(&b, 2);
        atoll__wire_put_u32(&b, bad[i]);
        fb_end(&b);
        REFUSED(&b, ATOLL_EPROTO);
    }
    static const uint16_t types[] = {3, 4, 255, 256, 0x7fff, 0x8000, 0xffff};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        fb_begin(&b, ATOLL_WIRE_VERSION, ATOLL_MAIL_SESS_ROUTE,
                 ATOLL_WIRE_F_SESSION | ATOLL_WIRE_F_TYPE);
        atoll__wire_put_u64(&b, 1);
        atoll__wire_put_u16(&b, types[i]);
        fb_end(&b);
        REFUSED(&b, ATOLL_EPROTO);
    }
    /* the last of each is fine */
    fb_begin(&b, ATOLL_WIRE_VERSION, ATOLL_MAIL_SESS_ROUTE,
             ATOLL_WIRE_F_SESSION | ATOLL_WIRE_F_WORKER | ATOLL_WIRE_F_AREA_OLD |
                 ATOLL_WIRE_F_TYPE);
    atoll__wire_put_u64(&b, 1);
    atoll__wire_put_u32(&b, 3);
    atoll__wire_put_u64(&b, 2);
    atoll__wire_put_u32(&b, 3);
    atoll__wire_put_u16(&b, 2);
    fb_end(&b);
    atoll__mail *m;
    ASSERT_EQ(decode_exact(atoll__buf_data(&b), b.len, &m), (ssize_t)b.len);
    ASSERT_EQ(m->at.worker, 3);
    ASSERT_EQ(m->at_old.worker, 3);
    ASSERT_EQ(m->type_index, 2);
    atoll__mail_free(m);
    atoll__buf_fini(&b);
    LEAK_CHECK();
}

/* Addresses name a worker of a node: another node's worker is that node's to check
 * (any index passes here), a node id past 12 bits is refused, and both round-trip. */
TEST(addresses_of_other_nodes)
{
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_AREA_CALL, 0);
    m->area = 5;
    m->call_id = 7;
    m->at = atoll__addr_make(7, 300);
    ROUND_TRIP(m);
    m = atoll__mail_new(ATOLL_MAIL_SESS_ROUTE, 0);
    m->session.v = 1;
    m->area_old = 2;
    m->at = atoll__addr_make(ATOLL_NODE_ID_MAX, 255);
    m->at_old = atoll__addr_make(12, 9);
    ROUND_TRIP(m);
    atoll__buf b = ATOLL__BUF_INIT;
    fb_begin(&b, ATOLL_WIRE_VERSION, ATOLL_MAIL_AREA_CALL, ATOLL_WIRE_F_WORKER | ATOLL_WIRE_F_AREA);
    atoll__wire_put_u16(&b, 1);                       /* worker */
    atoll__wire_put_u16(&b, ATOLL_NODE_ID_MAX + 1); /* node */
    atoll__wire_put_u64(&b, 1);
    fb_end(&b);
    REFUSED(&b, ATOLL_EPROTO);
    atoll__buf_fini(&b);
    LEAK_CHECK();
}

TEST(refuses_too_many_sessions)
{
    /* The count alone is refused, before anything is allocated for it. */
    atoll__buf b = ATOLL__BUF_INIT;
    uint32_t counts[] = {ATOLL_WIRE_SESSIONS_MAX + 1, UINT32_MAX};
    for (size_t i = 0; i < 2; i++) {
        fb_begin(&b, ATOLL_WIRE_VERSION, ATOLL_MAIL_SESS_PUSH,
                 ATOLL_WIRE_F_SHARED | ATOLL_WIRE_F_SESSIONS);
        fb_bytes32(&b, "p");
        atoll__wire_put_u32(&b, counts[i]);
        atoll__wire_put_u64(&b, 1);
        fb_end(&b);
        atoll__mail *m;
        ssize_t k = decode_exact(atoll__buf_data(&b), b.len, &m);
        ASSERT(k == ATOLL_EPROTO || k == ATOLL_ELIMIT);
        ASSERT(m == NULL);
    }
    atoll__buf_fini(&b);
    LEAK_CHECK();
}

TEST(refuses_lengths_past_the_record)
{
    /* Each count one more than the record holds (a byte more, or a session id more); the
     * frame is followed by more bytes (as the next frame on a link would be), which must
     * not be read as this one's. */
    use_test_codec();
    static const uint32_t counted[] = {
        ATOLL_WIRE_F_UID,    ATOLL_WIRE_F_REASON,   ATOLL_WIRE_F_FROM, ATOLL_WIRE_F_VALUE,
        ATOLL_WIRE_F_SHARED, ATOLL_WIRE_F_SESSIONS, ATOLL_WIRE_F_DATA, ATOLL_WIRE_F_PAYLOAD};
    atoll__buf b = ATOLL__BUF_INIT;
    for (size_t i = 0; i < sizeof counted / sizeof counted[0]; i++) {
        uint32_t f = counted[i];
        uint32_t kind = f == ATOLL_WIRE_F_PAYLOAD ? ATOLL_MAIL_AREA_MOVE_IN : ATOLL_MAIL_SESS_OUT;
        uint32_t fields = f | required_of(kind);
        fb_frame(&b, (uint8_t)kind, fields);
        atoll__mail *m;
        ASSERT_EQ(decode_exact(atoll__buf_data(&b), b.len, &m), (ssize_t)b.len);
        atoll__mail_free(m);
        /* The counted field is the last one written (SESS_OUT needs no other; PAYLOAD
         * is last in bit order), so its count starts where its bytes as fb_fields
         * writes them alone would start. */
        atoll__buf alone = ATOLL__BUF_INIT;
        fb_fields(&alone, f);
        size_t at = b.len - alone.len;
        atoll__buf_fini(&alone);
        atoll__buf_append(&b, "\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 12);
        uint8_t *p = atoll__buf_data(&b) + at;
        p[0]++; /* the count's low byte (little-endian): one more than the record holds */
        REFUSED(&b, ATOLL_EPROTO);
        /* and a count near 4 GB */
        if (f & (ATOLL_WIRE_F_VALUE | ATOLL_WIRE_F_SHARED | ATOLL_WIRE_F_SESSIONS |
                 ATOLL_WIRE_F_DATA | ATOLL_WIRE_F_PAYLOAD)) {
            memset(p, 0xff, 4);
            REFUSED(&b, ATOLL_EPROTO);
        }
    }
    atoll__buf_fini(&b);
    LEAK_CHECK();
}

TEST(refuses_a_record_past_the_frame_max)
{
    /* Refused from the length alone, before the record has arrived. */
    atoll__buf b = ATOLL__BUF_INIT;
    atoll__wire_put_u32(&b, ATOLL_WIRE_FRAME_MAX + 1);
    atoll__buf_push(&b, ATOLL_WIRE_VERSION);
    REFUSED(&b, ATOLL_ELIMIT);
    b.len = 0;
    atoll__wire_put_u32(&b, UINT32_MAX);
    REFUSED(&b, ATOLL_ELIMIT);
    /* The max itself is only incomplete. */
    b.len = 0;
    atoll__wire_put_u32(&b, ATOLL_WIRE_FRAME_MAX);
    REFUSED(&b, 0);
    atoll__buf_fini(&b);
    LEAK_CHECK();
}

TEST(refuses_short_records_and_trailing_bytes)
{
    atoll__buf b = ATOLL__BUF_INIT;
    /* records too short for the header */
    for (uint32_t rec = 0; rec < 6; rec++) {
        b.len = 0;
        atoll__wire_put_u32(&b, rec);
        atoll__buf_append(&b, "\x01\x04\x01\x00\x00\x00", rec);
        REFUSED(&b, ATOLL_EPROTO);
    }
    /* one byte too many inside the record, after a whole mail */
    use_test_codec();
    uint32_t sets[] = {0, ATOLL_WIRE_F_DATA, ATOLL_WIRE_F_ALL};
    for (size_t i = 0; i < 3; i++) {
        uint8_t kind = i == 0 ? ATOLL_MAIL_SESS_OUT : ATOLL_MAIL_AREA_MOVE_IN;
        fb_begin(&b, ATOLL_WIRE_VERSION, kind, sets[i] | required_of(kind));
        fb_fields(&b, sets[i] | required_of(kind));
        atoll__buf_push(&b, 0);
        fb_end(&b);
        REFUSED(&b, ATOLL_EPROTO);
    }
    atoll__buf_fini(&b);
    LEAK_CHECK();
}

TEST(refuses_values_that_are_not_json)
{
    static const char *const bad[] = {"{",           "{\"a\":}", "nul",  "[1,]",
                                      "\"\\u0000\"", "{} {}",    "\xff", "'a'"};
    atoll__buf b = ATOLL__BUF_INIT;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fb_begin(&b, ATOLL_WIRE_VERSION, ATOLL_MAIL_AREA_REPLY,
                 ATOLL_WIRE_F_CALL_ID | ATOLL_WIRE_F_VALUE);
        atoll__wire_put_u64(&b, 1);
        fb_bytes32(&b, bad[i]);
        fb_end(&b);
        REFUSED(&b, ATOLL_EPROTO);
    }
    atoll__buf_fini(&b);
    LEAK_CHECK();
}

TEST(refuses_unknown_flag_bits)
{
    atoll__buf b = ATOLL__BUF_INIT;
    for (int bit = 2; bit < 8; bit++) {
        fb_begin(&b, ATOLL_WIRE_VERSION, ATOLL_MAIL_SESS_OUT, ATOLL_WIRE_F_FLAGS);
        atoll__buf_push(&b, (uint8_t)(1u << bit | 1u));
        atoll__buf_push(&b, 0);
        fb_end(&b);
        REFUSED(&b, ATOLL_EPROTO);
    }
    atoll__buf_fini(&b);
    LEAK_CHECK();
}

TEST(refuses_a_payload_its_codec_refuses)
{
    use_test_codec();
    atoll__buf b = ATOLL__BUF_INIT;
    fb_begin(&b, ATOLL_WIRE_VERSION, ATOLL_MAIL_AREA_MOVE_IN, required_of(ATOLL_MAIL_AREA_MOVE_IN));
    fb_fields(&b, ATOLL_WIRE_F_SESSION | ATOLL_WIRE_F_AREA);
    atoll__wire_put_u32(&b, 3);
    atoll__buf_append(&b, "a\0b", 3);
    fb_end(&b);
    REFUSED(&b, ATOLL_EPROTO);
    /* a payload the codec took, then a bad byte after it: the payload is freed */
    fb_begin(&b, ATOLL_WIRE_VERSION, ATOLL_MAIL_AREA_MOVE_IN, required_of(ATOLL_MAIL_AREA_MOVE_IN));
    fb_fields(&b, required_of(ATOLL_MAIL_AREA_MOVE_IN));
    atoll__buf_push(&b, 0);
    fb_end(&b);
    REFUSED(&b, ATOLL_EPROTO);
    atoll__buf_fini(&b);
    LEAK_CHECK();
}

TEST(refused_frames_free_what_they_had_decoded)
{
    /* A frame with every field, wrong in one place (flags, worker, a NUL in FROM, a
     * byte after the payload): whatever was decoded before the fault (the uid; with the
     * trailing byte everything, payload included) is freed, as LEAK_CHECK shows. */
    use_test_codec();
    atoll__buf b = ATOLL__BUF_INIT;
    fb_frame(&b, ATOLL_MAIL_AREA_MOVE_IN, ATOLL_WIRE_F_ALL);
    size_t n = b.len;
    uint8_t *copy = malloc(n);
    memcpy(copy, atoll__buf_data(&b), n);
    /* offsets within the record: header 10 bytes; SESSION 8, REQUEST 4, FLAGS 2 */
    size_t flags_at = 10 + 8 + 4;
    atoll__buf_data(&b)[flags_at] = 0x80;
    REFUSED(&b, ATOLL_EPROTO);
    memcpy(atoll__buf_data(&b), copy, n);
    size_t worker_at = flags_at + 2 + 2 + 4;
    atoll__buf_data(&b)[worker_at] = 9;
    REFUSED(&b, ATOLL_EPROTO);
    memcpy(atoll__buf_data(&b), copy, n);
    size_t from_at = worker_at + 4 + 8 + 12 + 8 + 2 + 2 + 2 + 1 + 3 + 1; /* its first byte */
    ASSERT_MEM(atoll__buf_data(&b) + from_at, "area-1", 6);
    atoll__buf_data(&b)[from_at + 5] = 0;
    REFUSED(&b, ATOLL_EPROTO);
    memcpy(atoll__buf_data(&b), copy, n);
    atoll__buf_push(&b, 0);
    fb_end(&b);
    REFUSED(&b, ATOLL_EPROTO);
    free(copy);
    atoll__buf_fini(&b);
    LEAK_CHECK();
}

TEST_MAIN(kinds_keep_their_wire_numbers, addresses_of_other_nodes, golden_frame, bind, bound, unbind, kick, broadcast,
          sess_out, sess_push, area_create, dir_answer, dir_invalidate, area_enter, area_req, area_leave_and_fence,
          area_move_in, area_call, area_reply, sess_route,
          area_handoff_of_a_move_and_of_a_players_list, every_field_at_its_limit,
          value_null_is_no_value, frames_back_to_back,
          truncated_frame_is_incomplete_at_every_length, encode_refuses_kinds_that_never_cross,
          encode_limits, move_in_without_a_codec, every_kind_needs_its_fields,
          docs_never_cross_links, every_field_decodes_for_every_kind, refuses_bad_version, refuses_kinds_that_never_cross,
          refuses_a_link_inside_a_link, refuses_unknown_field_bits,
          refuses_required_fields_that_are_zero, refuses_bad_uids,
          refuses_long_reasons_and_area_ids, refuses_indexes_past_the_node,
          refuses_too_many_sessions, refuses_lengths_past_the_record,
          refuses_a_record_past_the_frame_max, refuses_short_records_and_trailing_bytes,
          refuses_values_that_are_not_json, refuses_unknown_flag_bits,
          refuses_a_payload_its_codec_refuses, refused_frames_free_what_they_had_decoded)
