/* proto_test.c -- unit tests of the Pomelo codec (src/proto) against the protocol
 * reference (docs/protocol/client.md: packages, messages, handshake, dictionary, limits).
 *
 * Every published test vector of the protocol is encoded with our encoders and compared
 * byte for byte, and decoded with the fields checked; the packages of a transcript of a
 * live Pomelo server are decoded (client to server) or re-encoded (server to client). The
 * rest pins down the edges a hostile peer can reach: varint and route boundaries,
 * malformed flags, partial and oversized packages, the JSON and UTF-8 validators, the
 * handshake parser, JSON string escaping and the route dictionary.
 */
#include "proto/proto.h"
#include "test.h"

#include <jansson.h>

/* ---- helpers ------------------------------------------------------------------------ */

#define BUF_CAP 4096

static void
dump_hex(const char *label, const uint8_t *p, size_t n)
{
    fprintf(stderr, "  %s (%zu):", label, n);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %02x", p[i]);
    fprintf(stderr, "\n");
}

/* Compares p[0..n) with want[0..wn), printing both on a mismatch so the failing vector
 * can be read from the test output. */
static void
check_bytes_(const char *file, int line, const char *what, const uint8_t *p, size_t n,
             const uint8_t *want, size_t wn)
{
    if (n == wn && (n == 0 || memcmp(p, want, n) == 0))
        return;
    fprintf(stderr, "  mismatch: %s\n", what);
    dump_hex("got ", p, n);
    dump_hex("want", want, wn);
    test_fail_(file, line, what);
}
#define CHECK_BYTES(what, p, n, want, wn) check_bytes_(__FILE__, __LINE__, what, p, n, want, wn)

/* Compares the whole content of b with a hex vector. */
#define CHECK_BUF_HEX(what, b, hexstr)                                                     \
    do {                                                                                   \
        uint8_t w_[BUF_CAP];                                                               \
        size_t wn_ = test_hex(hexstr, w_, sizeof w_);                                      \
        CHECK_BYTES(what, atoll__buf_data(b), (b)->len, w_, wn_);                          \
    } while (0)

/* A package whose header is given in hex and whose body is text (the transcript writes
 * JSON bodies as text). */
static size_t
pkg_text(const char *hdr_hex, const char *text, uint8_t *out, size_t cap)
{
    size_t n = test_hex(hdr_hex, out, cap);
    size_t tl = strlen(text);
    ASSERT(n + tl <= cap);
    memcpy(out + n, text, tl);
    return n + tl;
}

static bool
mem_is(const void *p, size_t n, const char *s)
{
    size_t sl = strlen(s);
    return n == sl && (n == 0 || memcmp(p, s, n) == 0);
}

static bool
jv(const char *s, int depth)
{
    return atoll__json_valid((const uint8_t *)s, strlen(s), depth);
}

static bool
u8v(const char *s)
{
    return atoll__utf8_valid((const uint8_t *)s, strlen(s));
}

static int
hs_parse(const char *s, atoll__handshake *h)
{
    return atoll__handshake_parse((const uint8_t *)s, strlen(s), h);
}

/* ---- 11.1: package-level vectors ------------------------------------------------------ */

static const char HS_UNITY[] =
    "{\"sys\":{\"version\":\"0.3.0\",\"type\":\"unity-socket\"},\"user\":{}}";
static const char HS_JS[] =
    "{\"sys\":{\"type\":\"js-websocket\",\"version\":\"0.0.1\",\"rsa\":{},\"protoVersion\":0}}";
static const char HS_LIB[] = "{\"sys\":{\"type\":\"desktop\",\"version\":\"0.3.5-release\"}}";

static const char HEX_HS_UNITY[] =
    "01 00 00 3b 7b 22 73 79 73 22 3a 7b 22 76 65 72 73 69 6f 6e 22 3a 22 30 2e 33 2e 30 22 2c"
    " 22 74 79 70 65 22 3a 22 75 6e 69 74 79 2d 73 6f 63 6b 65 74 22 7d 2c 22 75 73 65 72 22"
    " 3a 7b 7d 7d";
static const char HEX_HS_JS[] =
    "01 00 00 4b 7b 22 73 79 73 22 3a 7b 22 74 79 70 65 22 3a 22 6a 73 2d 77 65 62 73 6f 63"
    " 6b 65 74 22 2c 22 76 65 72 73 69 6f 6e 22 3a 22 30 2e 30 2e 31 22 2c 22 72 73 61 22 3a"
    " 7b 7d 2c 22 70 72 6f 74 6f 56 65 72 73 69 6f 6e 22 3a 30 7d 7d";
static const char HEX_HS_LIB[] =
    "01 00 00 34 7b 22 73 79 73 22 3a 7b 22 74 79 70 65 22 3a 22 64 65 73 6b 74 6f 70 22 2c"
    " 22 76 65 72 73 69 6f 6e 22 3a 22 30 2e 33 2e 35 2d 72 65 6c 65 61 73 65 22 7d 7d";
static const char HEX_HS_REPLY_HB3[] =
    "01 00 00 22 7b 22 63 6f 64 65 22 3a 32 30 30 2c 22 73 79 73 22 3a 7b 22 68 65 61 72 74"
    " 62 65 61 74 22 3a 33 7d 7d";
static const char HEX_HS_500[] = "01 00 00 0c 7b 22 63 6f 64 65 22 3a 35 30 30 7d";
static const char HEX_HS_501[] = "01 00 00 0c 7b 22 63 6f 64 65 22 3a 35 30 31 7d";
static const char HEX_ACK[] = "02 00 00 00";
static const char HEX_HEARTBEAT[] = "03 00 00 00";
static const char HEX_KICK[] =
    "05 00 00 11 7b 22 72 65 61 73 6f 6e 22 3a 22 6b 69 63 6b 22 7d";

TEST(vec_pkg_encode)
{
    atoll__buf b = ATOLL__BUF_INIT;
    atoll__pkg_put(&b, ATOLL_PKG_HANDSHAKE, HS_UNITY, strlen(HS_UNITY));
    CHECK_BUF_HEX("handshake unity", &b, HEX_HS_UNITY);
    b.len = 0;
    atoll__pkg_put(&b, ATOLL_PKG_HANDSHAKE, HS_JS, strlen(HS_JS));
    CHECK_BUF_HEX("handshake jsclient", &b, HEX_HS_JS);
    b.len = 0;
    atoll__pkg_put(&b, ATOLL_PKG_HANDSHAKE, HS_LIB, strlen(HS_LIB));
    CHECK_BUF_HEX("handshake libpomelo2", &b, HEX_HS_LIB);
    b.len = 0;
    atoll__handshake_reply(&b, 3, NULL, NULL);
    CHECK_BUF_HEX("handshake reply heartbeat 3", &b, HEX_HS_REPLY_HB3);
    b.len = 0;
    atoll__handshake_error(&b, 500);
    CHECK_BUF_HEX("handshake error 500", &b, HEX_HS_500);
    b.len = 0;
    atoll__handshake_error(&b, 501);
    CHECK_BUF_HEX("handshake error 501", &b, HEX_HS_501);
    b.len = 0;
    atoll__pkg_put(&b, ATOLL_PKG_HANDSHAKE_ACK, NULL, 0);
    CHECK_BUF_HEX("ack", &b, HEX_ACK);
    b.len = 0;
    atoll__pkg_put(&b, ATOLL_PKG_HEARTBEAT, NULL, 0);
    CHECK_BUF_HEX("heartbeat", &b, HEX_HEARTBEAT);
    b.len = 0;
    atoll__kick_put(&b, "kick");
    CHECK_BUF_HEX("kick", &b, HEX_KICK);

    /* header for a 70000-byte body, by itself and through pkg_put */
    uint8_t hdr[4], want[4];
    test_hex("04 01 11 70", want, sizeof want);
    atoll__pkg_header(hdr, ATOLL_PKG_DATA, 70000);
    CHECK_BYTES("header 70000", hdr, 4, want, 4);
    static uint8_t big[70000];
    b.len = 0;
    atoll__pkg_put(&b, ATOLL_PKG_DATA, big, sizeof big);
    ASSERT_EQ(b.len, 70004);
    CHECK_BYTES("pkg_put 70000", atoll__buf_data(&b), 4, want, 4);
    /* the largest length the 24-bit field holds */
    test_hex("04 ff ff ff", want, sizeof want);
    atoll__pkg_header(hdr, ATOLL_PKG_DATA, ATOLL_PKG_BODY_CEILING);
    CHECK_BYTES("header ceiling", hdr, 4, want, 4);
    atoll__buf_fini(&b);
}

/* Parses one whole package given in hex and checks its type and body. */
static void
check_pkg_decode(const char *hexstr, int type, const char *body)
{
    uint8_t p[BUF_CAP];
    size_t n = test_hex(hexstr, p, sizeof p);
    atoll__pkg pkg;
    ASSERT_EQ(atoll__pkg_parse(p, n, ATOLL_PKG_BODY_DEFAULT_MAX, &pkg), (ssize_t)n);
    ASSERT_EQ(pkg.type, type);
    ASSERT_EQ(pkg.len, n - 4);
    ASSERT(mem_is(pkg.body, pkg.len, body));
    if (pkg.len == 0)
        ASSERT(pkg.body == NULL);
    else
        ASSERT(pkg.body == p + 4);
}

TEST(vec_pkg_decode)
{
    check_pkg_decode(HEX_HS_UNITY, ATOLL_PKG_HANDSHAKE, HS_UNITY);
    check_pkg_decode(HEX_HS_JS, ATOLL_PKG_HANDSHAKE, HS_JS);
    check_pkg_decode(HEX_HS_LIB, ATOLL_PKG_HANDSHAKE, HS_LIB);
    check_pkg_decode(HEX_HS_REPLY_HB3, ATOLL_PKG_HANDSHAKE,
                     "{\"code\":200,\"sys\":{\"heartbeat\":3}}");
    check_pkg_decode(HEX_HS_500, ATOLL_PKG_HANDSHAKE, "{\"code\":500}");
    check_pkg_decode(HEX_HS_501, ATOLL_PKG_HANDSHAKE, "{\"code\":501}");
    check_pkg_decode(HEX_ACK, ATOLL_PKG_HANDSHAKE_ACK, "");
    check_pkg_decode(HEX_HEARTBEAT, ATOLL_PKG_HEARTBEAT, "");
    check_pkg_decode(HEX_KICK, ATOLL_PKG_KICK, "{\"reason\":\"kick\"}");

    /* the 70000-byte header: over the default limit, fine under a larger one */
    uint8_t p[4];
    test_hex("04 01 11 70", p, sizeof p);
    atoll__pkg pkg;
    ASSERT_EQ(atoll__pkg_parse(p, 4, ATOLL_PKG_BODY_DEFAULT_MAX, &pkg), ATOLL_ELIMIT);
    ASSERT_EQ(atoll__pkg_parse(p, 4, 70000, &pkg), 0);
}

/* The three client handshakes of 11.1 go through the handshake parser. */
TEST(vec_client_handshakes)
{
    atoll__handshake h;
    ASSERT_EQ(hs_parse(HS_UNITY, &h), ATOLL_OK);
    ASSERT_STR(h.type, "unity-socket");
    ASSERT_STR(h.version, "0.3.0");
    ASSERT_STR(h.dict_version, "");
    ASSERT_EQ(hs_parse(HS_JS, &h), ATOLL_OK);
    ASSERT_STR(h.type, "js-websocket");
    ASSERT_STR(h.version, "0.0.1");
    ASSERT_STR(h.dict_version, "");
    ASSERT_EQ(hs_parse(HS_LIB, &h), ATOLL_OK);
    ASSERT_STR(h.type, "desktop");
    ASSERT_STR(h.version, "0.3.5-release");
    ASSERT_STR(h.dict_version, "");
}

/* ---- 11.1: message vectors ------------------------------------------------------------ */

typedef struct {
    const char *name;
    bool pkg;          /* a whole DATA package; else the message layer only */
    int type;
    uint32_t id;
    const char *route; /* NULL for responses and compressed routes */
    uint16_t code;     /* route code, 0 when not compressed */
    const char *body;
    const char *hex;
} msg_vec;

#define ENTRY "connector.entryHandler.entry"
#define UID_BODY "{\"uid\":\"u1\"}"
#define CHAT_BODY "{\"msg\":\"hello\",\"from\":\"u1\"}"

static const msg_vec MSG_VECS[] = {
    {"request msg id=1 route string", false, ATOLL_MSG_REQUEST, 1, ENTRY, 0, UID_BODY,
     "00 01 1c 63 6f 6e 6e 65 63 74 6f 72 2e 65 6e 74 72 79 48 61 6e 64 6c 65 72 2e 65 6e 74"
     " 72 79 7b 22 75 69 64 22 3a 22 75 31 22 7d"},
    {"request pkg id=1 route string", true, ATOLL_MSG_REQUEST, 1, ENTRY, 0, UID_BODY,
     "04 00 00 2b 00 01 1c 63 6f 6e 6e 65 63 74 6f 72 2e 65 6e 74 72 79 48 61 6e 64 6c 65 72"
     " 2e 65 6e 74 72 79 7b 22 75 69 64 22 3a 22 75 31 22 7d"},
    {"request msg id=1 route code 1", false, ATOLL_MSG_REQUEST, 1, NULL, 1, UID_BODY,
     "01 01 00 01 7b 22 75 69 64 22 3a 22 75 31 22 7d"},
    {"request pkg id=1 route code 1", true, ATOLL_MSG_REQUEST, 1, NULL, 1, UID_BODY,
     "04 00 00 10 01 01 00 01 7b 22 75 69 64 22 3a 22 75 31 22 7d"},
    {"response msg id=1", false, ATOLL_MSG_RESPONSE, 1, NULL, 0,
     "{\"code\":200,\"msg\":\"game server is ok.\"}",
     "04 01 7b 22 63 6f 64 65 22 3a 32 30 30 2c 22 6d 73 67 22 3a 22 67 61 6d 65 20 73 65 72"
     " 76 65 72 20 69 73 20 6f 6b 2e 22 7d"},
    {"response pkg id=1", true, ATOLL_MSG_RESPONSE, 1, NULL, 0,
     "{\"code\":200,\"msg\":\"game server is ok.\"}",
     "04 00 00 29 04 01 7b 22 63 6f 64 65 22 3a 32 30 30 2c 22 6d 73 67 22 3a 22 67 61 6d 65"
     " 20 73 65 72 76 65 72 20 69 73 20 6f 6b 2e 22 7d"},
    {"error response pkg id=1", true, ATOLL_MSG_RESPONSE, 1, NULL, 0, "{\"code\":500}",
     "04 00 00 0e 04 01 7b 22 63 6f 64 65 22 3a 35 30 30 7d"},
    {"notify msg", false, ATOLL_MSG_NOTIFY, 0, "chat.chatHandler.send", 0, "{\"content\":\"hi\"}",
     "02 15 63 68 61 74 2e 63 68 61 74 48 61 6e 64 6c 65 72 2e 73 65 6e 64 7b 22 63 6f 6e 74"
     " 65 6e 74 22 3a 22 68 69 22 7d"},
    {"notify pkg", true, ATOLL_MSG_NOTIFY, 0, "chat.chatHandler.send", 0, "{\"content\":\"hi\"}",
     "04 00 00 27 02 15 63 68 61 74 2e 63 68 61 74 48 61 6e 64 6c 65 72 2e 73 65 6e 64 7b 22"
     " 63 6f 6e 74 65 6e 74 22 3a 22 68 69 22 7d"},
    {"push msg onChat", false, ATOLL_MSG_PUSH, 0, "onChat", 0, CHAT_BODY,
     "06 06 6f 6e 43 68 61 74 7b 22 6d 73 67 22 3a 22 68 65 6c 6c 6f 22 2c 22 66 72 6f 6d 22"
     " 3a 22 75 31 22 7d"},
    {"push pkg onChat", true, ATOLL_MSG_PUSH, 0, "onChat", 0, CHAT_BODY,
     "04 00 00 23 06 06 6f 6e 43 68 61 74 7b 22 6d 73 67 22 3a 22 68 65 6c 6c 6f 22 2c 22 66"
     " 72 6f 6d 22 3a 22 75 31 22 7d"},
    {"push msg route code 5", false, ATOLL_MSG_PUSH, 0, NULL, 5, CHAT_BODY,
     "07 00 05 7b 22 6d 73 67 22 3a 22 68 65 6c 6c 6f 22 2c 22 66 72 6f 6d 22 3a 22 75 31 22"
     " 7d"},
    {"request msg id=300", false, ATOLL_MSG_REQUEST, 300, ENTRY, 0, UID_BODY,
     "00 ac 02 1c 63 6f 6e 6e 65 63 74 6f 72 2e 65 6e 74 72 79 48 61 6e 64 6c 65 72 2e 65 6e"
     " 74 72 79 7b 22 75 69 64 22 3a 22 75 31 22 7d"},
    {"response msg id=300", false, ATOLL_MSG_RESPONSE, 300, NULL, 0, "{\"code\":200}",
     "04 ac 02 7b 22 63 6f 64 65 22 3a 32 30 30 7d"},
    {"response msg id=127 empty body", false, ATOLL_MSG_RESPONSE, 127, NULL, 0, "", "04 7f"},
    {"response msg id=128 empty body", false, ATOLL_MSG_RESPONSE, 128, NULL, 0, "", "04 80 01"},
    {"response msg id=16383 empty body", false, ATOLL_MSG_RESPONSE, 16383, NULL, 0, "",
     "04 ff 7f"},
    {"response msg id=16384 empty body", false, ATOLL_MSG_RESPONSE, 16384, NULL, 0, "",
     "04 80 80 01"},
    {"response msg id=2097151 empty body", false, ATOLL_MSG_RESPONSE, 2097151, NULL, 0, "",
     "04 ff ff 7f"},
    {"response msg id=2097152 empty body", false, ATOLL_MSG_RESPONSE, 2097152, NULL, 0, "",
     "04 80 80 80 01"},
    {"response msg id=268435455 empty body", false, ATOLL_MSG_RESPONSE, 268435455, NULL, 0, "",
     "04 ff ff ff 7f"},
    {"response msg id=268435456 empty body", false, ATOLL_MSG_RESPONSE, 268435456, NULL, 0, "",
     "04 80 80 80 80 01"},
    {"response msg id=2147483647 empty body", false, ATOLL_MSG_RESPONSE, 2147483647, NULL, 0,
     "", "04 ff ff ff ff 07"},
    {"request msg empty route", false, ATOLL_MSG_REQUEST, 1, "", 0, UID_BODY,
     "00 01 00 7b 22 75 69 64 22 3a 22 75 31 22 7d"},
    {"request msg id=2 empty object body", false, ATOLL_MSG_REQUEST, 2, ENTRY, 0, "{}",
     "00 02 1c 63 6f 6e 6e 65 63 74 6f 72 2e 65 6e 74 72 79 48 61 6e 64 6c 65 72 2e 65 6e 74"
     " 72 79 7b 7d"},
    {"push msg with UTF-8 body", false, ATOLL_MSG_PUSH, 0, "onChat", 0,
     "{\"msg\":\"\xe4\xbd\xa0\xe5\xa5\xbd\"}",
     "06 06 6f 6e 43 68 61 74 7b 22 6d 73 67 22 3a 22 e4 bd a0 e5 a5 bd 22 7d"},
};
#define NMSG_VECS (sizeof MSG_VECS / sizeof MSG_VECS[0])

static void
put_vec(atoll__buf *b, int type, uint32_t id, const char *route, uint16_t code,
        const void *body, size_t blen)
{
    size_t rl = route ? strlen(route) : 0;
    switch (type) {
    case ATOLL_MSG_REQUEST:
        atoll__msg_put_request(b, id, route, rl, code, body, blen);
        break;
    case ATOLL_MSG_NOTIFY:
        atoll__msg_put_notify(b, route, rl, code, body, blen);
        break;
    case ATOLL_MSG_RESPONSE:
        atoll__msg_put_response(b, id, body, blen);
        break;
    default:
        atoll__msg_put_push(b, route, rl, code, body, blen);
        break;
    }
}

TEST(vec_msg_encode)
{
    for (size_t i = 0; i < NMSG_VECS; i++) {
        const msg_vec *v = &MSG_VECS[i];
        uint8_t want[BUF_CAP];
        size_t wn = test_hex(v->hex, want, sizeof want);
        atoll__buf b = ATOLL__BUF_INIT;
        put_vec(&b, v->type, v->id, v->route, v->code, v->body, strlen(v->body));
        const uint8_t *got = atoll__buf_data(&b);
        if (v->pkg) {
            CHECK_BYTES(v->name, got, b.len, want, wn);
        } else {
            /* a message-only vector: our encoder adds the DATA header in front */
            uint8_t hdr[4];
            atoll__pkg_header(hdr, ATOLL_PKG_DATA, (uint32_t)wn);
            ASSERT(b.len >= 4);
            CHECK_BYTES(v->name, got, 4, hdr, 4);
            CHECK_BYTES(v->name, got + 4, b.len - 4, want, wn);
        }
        atoll__buf_fini(&b);
    }
}

static void
check_msg_fields(const msg_vec *v, const atoll__msg *m)
{
    ASSERT_EQ(m->type, v->type);
    ASSERT_EQ(m->compressed, v->code != 0);
    ASSERT_EQ(m->id, v->id);
    ASSERT_EQ(m->route_code, v->code);
    if (v->route) {
        ASSERT(m->route != NULL);
        ASSERT(mem_is(m->route, m->route_len, v->route));
    } else {
        ASSERT_EQ(m->route_len, 0);
    }
    ASSERT(mem_is(m->body, m->body_len, v->body));
}

TEST(vec_msg_decode)
{
    for (size_t i = 0; i < NMSG_VECS; i++) {
        const msg_vec *v = &MSG_VECS[i];
        uint8_t p[BUF_CAP];
        size_t n = test_hex(v->hex, p, sizeof p);
        const uint8_t *body = p;
        size_t blen = n;
        if (v->pkg) {
            atoll__pkg pkg;
            ASSERT_EQ(atoll__pkg_parse(p, n, ATOLL_PKG_BODY_DEFAULT_MAX, &pkg), (ssize_t)n);
            ASSERT_EQ(pkg.type, ATOLL_PKG_DATA);
            body = pkg.body;
            blen = pkg.len;
        }
        atoll__msg m;
        int rc = atoll__msg_decode(body, blen, &m);
        if (rc != ATOLL_OK)
            fprintf(stderr, "  vector: %s\n", v->name);
        ASSERT_EQ(rc, ATOLL_OK);
        check_msg_fields(v, &m);
    }
}

/* pomelo-protocol 0.1.6 sets 0x10 when asked to "gzip" (it compresses nothing); the flag
 * is tolerated on input. */
TEST(vec_msg_gzip_flag)
{
    uint8_t p[64];
    size_t n = test_hex("14 01 7b 22 75 69 64 22 3a 22 75 31 22 7d", p, sizeof p);
    atoll__msg m;
    ASSERT_EQ(atoll__msg_decode(p, n, &m), ATOLL_OK);
    ASSERT_EQ(m.type, ATOLL_MSG_RESPONSE);
    ASSERT_EQ(m.id, 1);
    ASSERT(!m.compressed);
    ASSERT(mem_is(m.body, m.body_len, UID_BODY));
    /* the same bit on a request, a notify and a compressed push */
    n = test_hex("10 05 02 61 2e 7b 7d", p, sizeof p);
    ASSERT_EQ(atoll__msg_decode(p, n, &m), ATOLL_OK);
    ASSERT_EQ(m.type, ATOLL_MSG_REQUEST);
    ASSERT_EQ(m.id, 5);
    ASSERT(mem_is(m.route, m.route_len, "a."));
    n = test_hex("12 01 78 7b 7d", p, sizeof p);
    ASSERT_EQ(atoll__msg_decode(p, n, &m), ATOLL_OK);
    ASSERT_EQ(m.type, ATOLL_MSG_NOTIFY);
    n = test_hex("17 00 05 7b 7d", p, sizeof p);
    ASSERT_EQ(atoll__msg_decode(p, n, &m), ATOLL_OK);
    ASSERT_EQ(m.type, ATOLL_MSG_PUSH);
    ASSERT(m.compressed);
    ASSERT_EQ(m.route_code, 5);
    /* and it is never written back: re-encoding gives the plain flag */
    atoll__buf b = ATOLL__BUF_INIT;
    atoll__msg_put_push(&b, NULL, 0, m.route_code, m.body, m.body_len);
    CHECK_BUF_HEX("push without gzip bit", &b, "04 00 00 05 07 00 05 7b 7d");
    atoll__buf_fini(&b);
}

/* Two pushes in one write (Pomelo's buffer scheduler): encoded back to back and split
 * again by a parse loop. */
TEST(vec_batch)
{
    static const char hex[] =
        "04 00 00 0f 06 06 6f 6e 43 68 61 74 7b 22 61 22 3a 31 7d 04 00 00 0f 06 06 6f 6e 43"
        " 68 61 74 7b 22 61 22 3a 32 7d";
    atoll__buf b = ATOLL__BUF_INIT;
    atoll__msg_put_push(&b, "onChat", 6, 0, "{\"a\":1}", 7);
    atoll__msg_put_push(&b, "onChat", 6, 0, "{\"a\":2}", 7);
    CHECK_BUF_HEX("batch", &b, hex);
    atoll__buf_fini(&b);

    uint8_t p[64];
    size_t n = test_hex(hex, p, sizeof p), off = 0;
    static const char *const bodies[] = {"{\"a\":1}", "{\"a\":2}"};
    for (int k = 0; k < 2; k++) {
        atoll__pkg pkg;
        ssize_t r = atoll__pkg_parse(p + off, n - off, ATOLL_PKG_BODY_DEFAULT_MAX, &pkg);
        ASSERT_EQ(r, 19);
        atoll__msg m;
        ASSERT_EQ(atoll__msg_decode(pkg.body, pkg.len, &m), ATOLL_OK);
        ASSERT_EQ(m.type, ATOLL_MSG_PUSH);
        ASSERT(mem_is(m.route, m.route_len, "onChat"));
        ASSERT(mem_is(m.body, m.body_len, bodies[k]));
        off += (size_t)r;
    }
    ASSERT_EQ(off, n);
    atoll__pkg pkg;
    ASSERT_EQ(atoll__pkg_parse(p + off, 0, ATOLL_PKG_BODY_DEFAULT_MAX, &pkg), 0);
}

/* ---- 11.2: the live-server transcript -------------------------------------------------- */

static const char *const HANDLER_ROUTES[] = {
    /* deliberately not in order: the dictionary sorts handler routes */
    "connector.entryHandler.kickme", "chat.chatHandler.send", "connector.entryHandler.entry",
    "chat.chatHandler.pos",          "connector.entryHandler.fail", "chat.chatHandler.fail",
    "chat.chatHandler.empty",
};
static const char *const PUSH_ROUTES[] = {"onChat"};

static atoll__dict *
transcript_dict(void)
{
    atoll__dict *d = atoll__dict_new(HANDLER_ROUTES, 7, PUSH_ROUTES, 1);
    ASSERT(d != NULL);
    return d;
}

/* Client to server: each package as captured, decoded and checked. */
TEST(transcript_client_packages)
{
    atoll__dict *d = transcript_dict();
    uint8_t p[BUF_CAP];
    size_t n;
    atoll__pkg pkg;
    atoll__msg m;
    atoll__handshake h;

    /* handshake of the probe client */
    n = pkg_text("01 00 00 49",
                 "{\"sys\":{\"type\":\"probe-tcp\",\"version\":\"0.0.1\",\"protoVersion\":0},"
                 "\"user\":{}}",
                 p, sizeof p);
    ASSERT_EQ(n, 4 + 0x49);
    ASSERT_EQ(atoll__pkg_parse(p, n, ATOLL_PKG_BODY_DEFAULT_MAX, &pkg), (ssize_t)n);
    ASSERT_EQ(pkg.type, ATOLL_PKG_HANDSHAKE);
    ASSERT_EQ(atoll__handshake_parse(pkg.body, pkg.len, &h), ATOLL_OK);
    ASSERT_STR(h.type, "probe-tcp");
    ASSERT_STR(h.version, "0.0.1");

    /* the genuine jsclient's handshake with init({user: {token: "abc"}}) */
    n = pkg_text("01 00 00 62",
                 "{\"sys\":{\"type\":\"js-websocket\",\"version\":\"0.0.1\",\"rsa\":{},"
                 "\"protoVersion\":0},\"user\":{\"token\":\"abc\"}}",
                 p, sizeof p);
    ASSERT_EQ(n, 4 + 0x62);
    ASSERT_EQ(atoll__pkg_parse(p, n, ATOLL_PKG_BODY_DEFAULT_MAX, &pkg), (ssize_t)n);
    ASSERT_EQ(atoll__handshake_parse(pkg.body, pkg.len, &h), ATOLL_OK);
    ASSERT_STR(h.type, "js-websocket");

    check_pkg_decode(HEX_ACK, ATOLL_PKG_HANDSHAKE_ACK, "");
    check_pkg_decode(HEX_HEARTBEAT, ATOLL_PKG_HEARTBEAT, "");

    static const struct {
        const char *hdr;  /* header + message head in hex */
        const char *tail; /* body as text */
        int type;
        uint32_t id;
        const char *route; /* NULL when compressed */
        uint16_t code;
        const char *body;
    } reqs[] = {
        {"04 00 00 2b 00 01 1c 63 6f 6e 6e 65 63 74 6f 72 2e 65 6e 74 72 79 48 61 6e 64 6c 65"
         " 72 2e 65 6e 74 72 79 7b 22 75 69 64 22 3a 22 75 31 22 7d",
         "", ATOLL_MSG_REQUEST, 1, ENTRY, 0, UID_BODY},
        {"04 00 00 14 01 02 00 04 7b 22 63 6f 6e 74 65 6e 74 22 3a 22 68 69 22 7d", "",
         ATOLL_MSG_REQUEST, 2, NULL, 4, "{\"content\":\"hi\"}"},
        {"04 00 00 1a 00 03 15 63 68 61 74 2e 63 68 61 74 48 61 6e 64 6c 65 72 2e 66 61 69 6c"
         " 7b 7d",
         "", ATOLL_MSG_REQUEST, 3, "chat.chatHandler.fail", 0, "{}"},
        {"04 00 00 0b 00 08 06 6e 6f 64 6f 74 73 7b 7d", "", ATOLL_MSG_REQUEST, 8, "nodots", 0,
         "{}"},
        {"04 00 00 2f 02 15 63 68 61 74 2e 63 68 61 74 48 61 6e 64 6c 65 72 2e 73 65 6e 64 7b"
         " 22 63 6f 6e 74 65 6e 74 22 3a 22 76 69 61 20 6e 6f 74 69 66 79 22 7d",
         "", ATOLL_MSG_NOTIFY, 0, "chat.chatHandler.send", 0, "{\"content\":\"via notify\"}"},
        {"04 00 00 22 00 ac 02 1c 63 6f 6e 6e 65 63 74 6f 72 2e 65 6e 74 72 79 48 61 6e 64 6c"
         " 65 72 2e 65 6e 74 72 79 7b 7d",
         "", ATOLL_MSG_REQUEST, 300, ENTRY, 0, "{}"},
        /* route code 999: decodes fine; the dictionary has no such code */
        {"04 00 00 07 01 ae 02 03 e7 7b 7d", "", ATOLL_MSG_REQUEST, 302, NULL, 999, "{}"},
        /* protobuf body of {x:300, y:-2, name:"ab", path:[1,2]} to route code 3 */
        {"04 00 00 11 01 02 00 03", "\x08\xac\x02\x10\x03\x1a\x02" "ab" "\x20\x02\x01\x02",
         ATOLL_MSG_REQUEST, 2, NULL, 3, "\x08\xac\x02\x10\x03\x1a\x02" "ab" "\x20\x02\x01\x02"},
        /* the genuine jsclient's notify */
        {"04 00 00 26 02 15", "chat.chatHandler.send{\"content\":\"x\"}", ATOLL_MSG_NOTIFY, 0,
         "chat.chatHandler.send", 0, "{\"content\":\"x\"}"},
    };
    /* all of them back to back in one buffer too, as a TCP read may deliver them */
    uint8_t stream[BUF_CAP];
    size_t slen = 0;
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        n = pkg_text(reqs[i].hdr, reqs[i].tail, p, sizeof p);
        ASSERT_EQ(atoll__pkg_parse(p, n, ATOLL_PKG_BODY_DEFAULT_MAX, &pkg), (ssize_t)n);
        ASSERT_EQ(pkg.type, ATOLL_PKG_DATA);
        ASSERT_EQ(atoll__msg_decode(pkg.body, pkg.len, &m), ATOLL_OK);
        msg_vec v = {"transcript", true, reqs[i].type, reqs[i].id, reqs[i].route,
                     reqs[i].code, reqs[i].body, NULL};
        check_msg_fields(&v, &m);
        if (m.compressed && m.route_code <= 8)
            ASSERT(atoll__dict_route(d, m.route_code) != NULL);
        memcpy(stream + slen, p, n);
        slen += n;
    }
    ASSERT_STR(atoll__dict_route(d, 4), "chat.chatHandler.send");
    ASSERT_STR(atoll__dict_route(d, 3), "chat.chatHandler.pos");
    ASSERT(atoll__dict_route(d, 999) == NULL);

    size_t off = 0, count = 0;
    ssize_t r;
    while ((r = atoll__pkg_parse(stream + off, slen - off, ATOLL_PKG_BODY_DEFAULT_MAX, &pkg)) > 0) {
        ASSERT_EQ(atoll__msg_decode(pkg.body, pkg.len, &m), ATOLL_OK);
        off += (size_t)r;
        count++;
    }
    ASSERT_EQ(r, 0);
    ASSERT_EQ(off, slen);
    ASSERT_EQ(count, sizeof reqs / sizeof reqs[0]);
    atoll__dict_free(d);
}

/* b (emptied first) gets the response package for id and body; the label is
 * "response id=<id>". */
#define CHECK_RESPONSE(b, id, body, hexstr)                                                \
    do {                                                                                   \
        (b)->len = 0;                                                                      \
        atoll__msg_put_response((b), (id), (body), strlen(body));                          \
        CHECK_BUF_HEX("response id=" #id, (b), (hexstr));                                  \
    } while (0)

/* Server to client: every package the live server sent, produced by our encoders. */
TEST(transcript_server_packages)
{
    atoll__dict *d = transcript_dict();
    uint16_t on_chat = atoll__dict_code(d, "onChat", 6);
    ASSERT_EQ(on_chat, 8);
    atoll__buf b = ATOLL__BUF_INIT;
    uint8_t want[BUF_CAP];
    size_t wn;

    atoll__pkg_put(&b, ATOLL_PKG_HEARTBEAT, NULL, 0);
    CHECK_BUF_HEX("heartbeat", &b, "03 00 00 00");
    CHECK_RESPONSE(&b, 1, "{\"code\":200,\"msg\":\"game server is ok.\"}",
                   "04 00 00 29 04 01 7b 22 63 6f 64 65 22 3a 32 30 30 2c 22 6d 73 67 22 3a 22 67"
                   " 61 6d 65 20 73 65 72 76 65 72 20 69 73 20 6f 6b 2e 22 7d");
    CHECK_RESPONSE(&b, 2, "{\"code\":200}",
                   "04 00 00 0e 04 02 7b 22 63 6f 64 65 22 3a 32 30 30 7d");
    b.len = 0;
    atoll__msg_put_push(&b, "onChat", 6, on_chat, "{\"msg\":\"hi\",\"from\":\"u1\"}", 24);
    CHECK_BUF_HEX("push code 8", &b,
                  "04 00 00 1b 07 00 08 7b 22 6d 73 67 22 3a 22 68 69 22 2c 22 66 72 6f 6d 22 3a"
                  " 22 75 31 22 7d");
    CHECK_RESPONSE(&b, 3, "{\"code\":500}",
                   "04 00 00 0e 04 03 7b 22 63 6f 64 65 22 3a 35 30 30 7d");
    CHECK_RESPONSE(&b, 9, "{}", "04 00 00 04 04 09 7b 7d");
    b.len = 0;
    static const char via[] = "{\"msg\":\"via notify\",\"from\":\"u1\"}";
    atoll__msg_put_push(&b, "onChat", 6, on_chat, via, strlen(via));
    wn = pkg_text("04 00 00 23 07 00 08", via, want, sizeof want);
    CHECK_BYTES("push via notify", atoll__buf_data(&b), b.len, want, wn);
    CHECK_RESPONSE(&b, 300, "{\"code\":200,\"msg\":\"game server is ok.\"}",
                   "04 00 00 2a 04 ac 02 7b 22 63 6f 64 65 22 3a 32 30 30 2c 22 6d 73 67 22 3a 22"
                   " 67 61 6d 65 20 73 65 72 76 65 72 20 69 73 20 6f 6b 2e 22 7d");
    CHECK_RESPONSE(&b, 10, "{\"code\":200}",
                   "04 00 00 0e 04 0a 7b 22 63 6f 64 65 22 3a 32 30 30 7d");
    b.len = 0;
    atoll__kick_put(&b, "kick");
    CHECK_BUF_HEX("kick", &b, "05 00 00 11 7b 22 72 65 61 73 6f 6e 22 3a 22 6b 69 63 6b 22 7d");

    /* the same server with useDict and useProtobuf off */
    b.len = 0;
    atoll__handshake_reply(&b, 3, NULL, NULL);
    CHECK_BUF_HEX("handshake without dict", &b, HEX_HS_REPLY_HB3);
    b.len = 0;
    atoll__msg_put_push(&b, "onChat", 6, 0, "{\"msg\":\"hi\",\"from\":\"u1\"}", 24);
    CHECK_BUF_HEX("push onChat uncompressed", &b,
                  "04 00 00 20 06 06 6f 6e 43 68 61 74 7b 22 6d 73 67 22 3a 22 68 69 22 2c 22 66"
                  " 72 6f 6d 22 3a 22 75 31 22 7d");
    /* a protobuf push to a route outside the dictionary */
    b.len = 0;
    ASSERT_EQ(atoll__dict_code(d, "onPos", 5), 0);
    static const uint8_t pos[] = {0x08, 0xac, 0x02, 0x10, 0x03, 0x1a, 0x01, 0x70,
                                  0x20, 0x03, 0x01, 0x02, 0xac, 0x02};
    atoll__msg_put_push(&b, "onPos", 5, atoll__dict_code(d, "onPos", 5), pos, sizeof pos);
    CHECK_BUF_HEX("push onPos protobuf", &b,
                  "04 00 00 15 06 05 6f 6e 50 6f 73 08 ac 02 10 03 1a 01 70 20 03 01 02 ac 02");
    atoll__buf_fini(&b);
    atoll__dict_free(d);
}

/* The 1452-byte handshake reply of the live server (dictionary and protobuf on). */
static const char CAPTURED_REPLY[] =
    "{\"code\":200,\"sys\":{\"heartbeat\":3,\"dict\":{\"chat.chatHandler.empty\":1,\"chat.c"
    "hatHandler.fail\":2,\"chat.chatHandler.pos\":3,\"chat.chatHandler.send\":4,\"connector"
    ".entryHandler.entry\":5,\"connector.entryHandler.fail\":6,\"connector.entryHandler.kic"
    "kme\":7,\"onChat\":8},\"routeToCode\":{\"chat.chatHandler.empty\":1,\"chat.chatHandler"
    ".fail\":2,\"chat.chatHandler.pos\":3,\"chat.chatHandler.send\":4,\"connector.entryHand"
    "ler.entry\":5,\"connector.entryHandler.fail\":6,\"connector.entryHandler.kickme\":7,\""
    "onChat\":8},\"codeToRoute\":{\"1\":\"chat.chatHandler.empty\",\"2\":\"chat.chatHandler"
    ".fail\",\"3\":\"chat.chatHandler.pos\",\"4\":\"chat.chatHandler.send\",\"5\":\"connect"
    "or.entryHandler.entry\",\"6\":\"connector.entryHandler.fail\",\"7\":\"connector.entryH"
    "andler.kickme\",\"8\":\"onChat\"},\"dictVersion\":\"ljFCGHsr0+bapAJQgumwIQ==\",\"useDi"
    "ct\":true,\"protos\":{\"server\":{\"onPos\":{\"x\":{\"option\":\"required\",\"type\":"
    "\"uInt32\",\"tag\":1},\"y\":{\"option\":\"required\",\"type\":\"sInt32\",\"tag\":2},\""
    "name\":{\"option\":\"optional\",\"type\":\"string\",\"tag\":3},\"path\":{\"option\":\""
    "repeated\",\"type\":\"uInt32\",\"tag\":4},\"__messages\":{},\"__tags\":{\"1\":\"x\",\""
    "2\":\"y\",\"3\":\"name\",\"4\":\"path\"}}},\"client\":{\"chat.chatHandler.pos\":{\"x\""
    ":{\"option\":\"required\",\"type\":\"uInt32\",\"tag\":1},\"y\":{\"option\":\"required"
    "\",\"type\":\"sInt32\",\"tag\":2},\"name\":{\"option\":\"optional\",\"type\":\"string"
    "\",\"tag\":3},\"path\":{\"option\":\"repeated\",\"type\":\"uInt32\",\"tag\":4},\"__mes"
    "sages\":{},\"__tags\":{\"1\":\"x\",\"2\":\"y\",\"3\":\"name\",\"4\":\"path\"}}},\"vers"
    "ion\":\"jtlUgEgNhsJZ2b9aaqdKrg==\"},\"useProto\":true}}";

TEST(transcript_handshake_reply_dict)
{
    ASSERT_EQ(strlen(CAPTURED_REPLY), 1452);
    uint8_t hdr[4], want_hdr[4];
    test_hex("01 00 05 ac", want_hdr, sizeof want_hdr);
    atoll__pkg_header(hdr, ATOLL_PKG_HANDSHAKE, 1452);
    CHECK_BYTES("captured header", hdr, 4, want_hdr, 4);

    atoll__dict *d = transcript_dict();
    ASSERT_EQ(atoll__dict_count(d), 8);
    ASSERT_STR(atoll__dict_version(d), "ljFCGHsr0+bapAJQgumwIQ==");

    /* our reply has no "protos": it must equal the captured one up to "useDict":true */
    static const char cut[] = "\"useDict\":true";
    const char *end = strstr(CAPTURED_REPLY, cut);
    ASSERT(end != NULL);
    size_t plen = (size_t)(end - CAPTURED_REPLY) + strlen(cut);
    char want[2048];
    memcpy(want, CAPTURED_REPLY, plen);
    memcpy(want + plen, "}}", 3);

    atoll__buf b = ATOLL__BUF_INIT;
    atoll__handshake_reply(&b, 3, d, NULL);
    uint8_t whole[2048];
    size_t wn = pkg_text("01 00 00 00", want, whole, sizeof whole);
    atoll__pkg_header(whole, ATOLL_PKG_HANDSHAKE, (uint32_t)(wn - 4));
    CHECK_BYTES("handshake reply with dict", atoll__buf_data(&b), b.len, whole, wn);

    /* a client with another (or an empty) cached version gets the whole dictionary */
    static const char *const others[] = {"", "jtlUgEgNhsJZ2b9aaqdKrg==", "ljFCGHsr0+bapAJQgumwIQ"};
    for (size_t i = 0; i < 3; i++) {
        atoll__buf o = ATOLL__BUF_INIT;
        atoll__handshake_reply(&o, 3, d, others[i]);
        CHECK_BYTES(others[i], atoll__buf_data(&o), o.len, whole, wn);
        atoll__buf_fini(&o);
    }

    /* the reply is JSON whose three maps agree with each other and the dictionary */
    atoll__pkg pkg;
    ASSERT_EQ(atoll__pkg_parse(atoll__buf_data(&b), b.len, ATOLL_PKG_BODY_DEFAULT_MAX, &pkg),
              (ssize_t)b.len);
    ASSERT(atoll__json_valid(pkg.body, pkg.len, ATOLL_JSON_MAX_DEPTH));
    json_t *root = json_loadb((const char *)pkg.body, pkg.len, 0, NULL);
    ASSERT(root != NULL);
    json_t *sys = json_object_get(root, "sys");
    json_t *dict = json_object_get(sys, "dict"), *r2c = json_object_get(sys, "routeToCode");
    json_t *c2r = json_object_get(sys, "codeToRoute");
    ASSERT(json_equal(dict, r2c));
    ASSERT_EQ(json_object_size(dict), 8);
    ASSERT_EQ(json_object_size(c2r), 8);
    for (uint16_t c = 1; c <= 8; c++) {
        const char *r = atoll__dict_route(d, c);
        char key[8];
        snprintf(key, sizeof key, "%u", c);
        ASSERT_EQ(json_integer_value(json_object_get(dict, r)), c);
        ASSERT_STR(json_string_value(json_object_get(c2r, key)), r);
        ASSERT_EQ(atoll__dict_code(d, r, strlen(r)), c);
    }
    ASSERT(json_is_true(json_object_get(sys, "useDict")));
    json_decref(root);
    atoll__buf_fini(&b);
    atoll__dict_free(d);
}

/* A client whose cached dictVersion matches gets only the flag (Pomelo: "when the client
 * reports the current versions, only the flags remain"). */
TEST(handshake_reply_dict_cached)
{
    atoll__dict *d = transcript_dict();
    atoll__buf b = ATOLL__BUF_INIT;
    atoll__handshake_reply(&b, 3, d, "ljFCGHsr0+bapAJQgumwIQ==");
    uint8_t want[128];
    size_t wn = pkg_text("01 00 00 31", "{\"code\":200,\"sys\":{\"heartbeat\":3,\"useDict\":true}}",
                         want, sizeof want);
    CHECK_BYTES("cached dictionary", atoll__buf_data(&b), b.len, want, wn);

    /* no heartbeat: sys holds only what is left */
    b.len = 0;
    atoll__handshake_reply(&b, 0, d, "ljFCGHsr0+bapAJQgumwIQ==");
    wn = pkg_text("01 00 00 23", "{\"code\":200,\"sys\":{\"useDict\":true}}", want, sizeof want);
    CHECK_BYTES("cached dictionary, no heartbeat", atoll__buf_data(&b), b.len, want, wn);
    b.len = 0;
    atoll__handshake_reply(&b, 0, NULL, NULL);
    wn = pkg_text("01 00 00 15", "{\"code\":200,\"sys\":{}}", want, sizeof want);
    CHECK_BYTES("nothing", atoll__buf_data(&b), b.len, want, wn);
    b.len = 0;
    atoll__handshake_reply(&b, -1, NULL, "whatever");
    CHECK_BYTES("negative heartbeat", atoll__buf_data(&b), b.len, want, wn);

    /* no heartbeat but a dictionary to send: "dict" opens sys without a comma */
    b.len = 0;
    atoll__handshake_reply(&b, 0, d, NULL);
    atoll__pkg pkg;
    ASSERT(atoll__pkg_parse(atoll__buf_data(&b), b.len, ATOLL_PKG_BODY_DEFAULT_MAX, &pkg) > 0);
    ASSERT(atoll__json_valid(pkg.body, pkg.len, ATOLL_JSON_MAX_DEPTH));
    static const char head[] = "{\"code\":200,\"sys\":{\"dict\":{";
    ASSERT(pkg.len > strlen(head) && memcmp(pkg.body, head, strlen(head)) == 0);
    atoll__buf_fini(&b);
    atoll__dict_free(d);
}

/* ---- message layer edges ---------------------------------------------------------------- */

TEST(varint_boundaries)
{
    static const struct {
        uint32_t v;
        const char *hex;
    } vs[] = {
        {0, "00"},
        {1, "01"},
        {127, "7f"},
        {128, "80 01"},
        {300, "ac 02"},
        {16383, "ff 7f"},
        {16384, "80 80 01"},
        {2097151, "ff ff 7f"},
        {2097152, "80 80 80 01"},
        {268435455, "ff ff ff 7f"},
        {268435456, "80 80 80 80 01"},
        {2147483647u, "ff ff ff ff 07"},
        {2147483648u, "80 80 80 80 08"},
        {4294967295u, "ff ff ff ff 0f"},
    };
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
        uint8_t want[8], got[5];
        size_t wn = test_hex(vs[i].hex, want, sizeof want);
        size_t n = atoll__varint_put(got, vs[i].v);
        CHECK_BYTES(vs[i].hex, got, n, want, wn);

        /* through a response and a request, and back */
        atoll__buf b = ATOLL__BUF_INIT;
        atoll__msg_put_response(&b, vs[i].v, "{}", 2);
        atoll__msg_put_request(&b, vs[i].v, "a.b.c", 5, 0, "{}", 2);
        const uint8_t *p = atoll__buf_data(&b);
        size_t off = 0;
        for (int k = 0; k < 2; k++) {
            atoll__pkg pkg;
            ssize_t r = atoll__pkg_parse(p + off, b.len - off, ATOLL_PKG_BODY_DEFAULT_MAX, &pkg);
            ASSERT(r > 0);
            CHECK_BYTES(vs[i].hex, pkg.body + 1, wn, want, wn);
            atoll__msg m;
            ASSERT_EQ(atoll__msg_decode(pkg.body, pkg.len, &m), ATOLL_OK);
            ASSERT_EQ(m.id, vs[i].v);
            ASSERT(mem_is(m.body, m.body_len, "{}"));
            off += (size_t)r;
        }
        atoll__buf_fini(&b);
    }
}

/* Decodes from an exact-size heap copy so the sanitizer sees any read past the end. The
 * copy lives until the next call: the fields of *m point into it. */
static int
decode_hex(const char *hexstr, atoll__msg *m)
{
    static uint8_t *q;
    uint8_t p[BUF_CAP];
    size_t n = test_hex(hexstr, p, sizeof p);
    free(q);
    q = malloc(n ? n : 1);
    memcpy(q, p, n);
    return atoll__msg_decode(q, n, m);
}

TEST(msg_id_limits)
{
    atoll__msg m;
    /* five bytes is the most a uint32 takes; a sixth is malformed even if the value fits */
    ASSERT_EQ(decode_hex("04 80 80 80 80 80 01 7b 7d", &m), ATOLL_EPROTO);
    ASSERT_EQ(decode_hex("04 80 80 80 80 80 00", &m), ATOLL_EPROTO);
    ASSERT_EQ(decode_hex("00 ff ff ff ff ff 7f 00", &m), ATOLL_EPROTO);
    /* five bytes whose value is past 2^32-1 */
    ASSERT_EQ(decode_hex("04 80 80 80 80 10", &m), ATOLL_EPROTO);     /* 2^32 */
    ASSERT_EQ(decode_hex("04 ff ff ff ff 1f 7b 7d", &m), ATOLL_EPROTO); /* 2^33-1 */
    ASSERT_EQ(decode_hex("04 ff ff ff ff 7f", &m), ATOLL_EPROTO);       /* 2^35-1 */
    ASSERT_EQ(decode_hex("00 ff ff ff ff 7f 00", &m), ATOLL_EPROTO);
    /* the largest id, and 2^31 which the reference JS codec cannot encode */
    ASSERT_EQ(decode_hex("04 ff ff ff ff 0f 7b 7d", &m), ATOLL_OK);
    ASSERT_EQ(m.id, UINT32_MAX);
    ASSERT_EQ(decode_hex("04 80 80 80 80 08", &m), ATOLL_OK);
    ASSERT_EQ(m.id, 2147483648u);
    /* id cut short, or missing */
    ASSERT_EQ(decode_hex("04", &m), ATOLL_EPROTO);
    ASSERT_EQ(decode_hex("04 80", &m), ATOLL_EPROTO);
    ASSERT_EQ(decode_hex("04 ff ff ff ff", &m), ATOLL_EPROTO);
    ASSERT_EQ(decode_hex("00", &m), ATOLL_EPROTO);
    ASSERT_EQ(decode_hex("00 81", &m), ATOLL_EPROTO);
    /* a non-minimal varint is still the same number */
    ASSERT_EQ(decode_hex("04 81 00 7b 7d", &m), ATOLL_OK);
    ASSERT_EQ(m.id, 1);
    ASSERT(mem_is(m.body, m.body_len, "{}"));
    /* notify and push carry no id: their second byte is the route */
    ASSERT_EQ(decode_hex("02 01 61", &m), ATOLL_OK);
    ASSERT_EQ(m.id, 0);
    ASSERT(mem_is(m.route, m.route_len, "a"));
}

TEST(msg_route_edges)
{
    atoll__msg m;
    /* route length running past the end */
    ASSERT_EQ(decode_hex("00 01 05 61 62", &m), ATOLL_EPROTO);
    ASSERT_EQ(decode_hex("00 01 01", &m), ATOLL_EPROTO);
    ASSERT_EQ(decode_hex("02 ff", &m), ATOLL_EPROTO);
    ASSERT_EQ(decode_hex("06 02 61", &m), ATOLL_EPROTO);
    /* route length byte missing */
    ASSERT_EQ(decode_hex("00 01", &m), ATOLL_EPROTO);
    ASSERT_EQ(decode_hex("02", &m), ATOLL_EPROTO);
    ASSERT_EQ(decode_hex("06", &m), ATOLL_EPROTO);
    /* route code cut short */
    ASSERT_EQ(decode_hex("01 01 00", &m), ATOLL_EPROTO);
    ASSERT_EQ(decode_hex("01 01", &m), ATOLL_EPROTO);
    ASSERT_EQ(decode_hex("03 00", &m), ATOLL_EPROTO);
    ASSERT_EQ(decode_hex("07", &m), ATOLL_EPROTO);
    /* route exactly filling the message: empty body */
    ASSERT_EQ(decode_hex("02 02 61 62", &m), ATOLL_OK);
    ASSERT(mem_is(m.route, m.route_len, "ab"));
    ASSERT_EQ(m.body_len, 0);
    ASSERT_EQ(decode_hex("03 ff ff", &m), ATOLL_OK);
    ASSERT_EQ(m.route_code, 65535);
    ASSERT_EQ(m.body_len, 0);
    /* empty route */
    ASSERT_EQ(decode_hex("00 01 00", &m), ATOLL_OK);
    ASSERT(m.route != NULL);
    ASSERT_EQ(m.route_len, 0);
    ASSERT_EQ(m.body_len, 0);
    ASSERT_EQ(decode_hex("06 00 7b 7d", &m), ATOLL_OK);
    ASSERT_EQ(m.route_len, 0);
    ASSERT(mem_is(m.body, m.body_len, "{}"));
    /* a compressed route may carry code 0; the dictionary has none */
    ASSERT_EQ(decode_hex("03 00 00", &m), ATOLL_OK);
    ASSERT(m.compressed);
    ASSERT_EQ(m.route_code, 0);
    /* a response has no route: its bytes after the id are all body */
    ASSERT_EQ(decode_hex("04 01 1c 61", &m), ATOLL_OK);
    ASSERT_EQ(m.route_len, 0);
    ASSERT_EQ(m.body_len, 2);
}

TEST(msg_route_utf8)
{
    atoll__msg m;
    static const char *const bad[] = {
        "00 01 02 c0 80",       /* overlong NUL */
        "00 01 02 c1 bf",       /* overlong */
        "00 01 03 e0 80 80",    /* overlong 3-byte */
        "00 01 04 f0 80 80 80", /* overlong 4-byte */
        "00 01 03 ed a0 80",    /* surrogate U+D800 */
        "02 03 ed bf bf",       /* surrogate U+DFFF */
        "06 02 e4 bd",          /* truncated 3-byte sequence */
        "06 03 61 62 e4 bd a0", /* truncated by the route length, the body holds the rest */
        "06 01 80",             /* lone continuation */
        "06 04 f4 90 80 80",    /* past U+10FFFF */
        "06 04 f5 80 80 80",    /* invalid lead byte */
        "06 01 ff",
        "06 02 c3 28", /* bad continuation */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = decode_hex(bad[i], &m);
        if (rc != ATOLL_EUTF8)
            fprintf(stderr, "  route %s\n", bad[i]);
        ASSERT_EQ(rc, ATOLL_EUTF8);
    }
    /* valid multi-byte routes; the body is not checked here (it may be protobuf) */
    ASSERT_EQ(decode_hex("06 07 e4 bd a0 f0 9f 98 80 ff fe", &m), ATOLL_OK);
    ASSERT_EQ(m.route_len, 7);
    ASSERT_EQ(m.body_len, 2);
    ASSERT_EQ(decode_hex("06 01 00", &m), ATOLL_OK); /* U+0000 is UTF-8 */
}

TEST(msg_flag_edges)
{
    atoll__msg m;
    ASSERT_EQ(decode_hex("", &m), ATOLL_EPROTO);
    /* a compressed response does not exist */
    ASSERT_EQ(decode_hex("05 01 7b 7d", &m), ATOLL_EPROTO);
    ASSERT_EQ(decode_hex("15 01 7b 7d", &m), ATOLL_EPROTO);
    /* message types 4..7 */
    static const char *const types[] = {"08 01 00", "09 01 00 01", "0a 00", "0c 00", "0e 00",
                                        "0f 00 01", "18 01 00", "1e 00"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        ASSERT_EQ(decode_hex(types[i], &m), ATOLL_EPROTO);
    /* bits 5-7 are unused and must be 0 */
    ASSERT_EQ(decode_hex("20 01 00", &m), ATOLL_EPROTO);
    ASSERT_EQ(decode_hex("46 00", &m), ATOLL_EPROTO);
    ASSERT_EQ(decode_hex("86 00", &m), ATOLL_EPROTO);
    /* the four valid flags with the compressed bit where it exists */
    ASSERT_EQ(decode_hex("01 01 00 01", &m), ATOLL_OK);
    ASSERT_EQ(decode_hex("03 00 01", &m), ATOLL_OK);
    ASSERT_EQ(decode_hex("04 01", &m), ATOLL_OK);
    ASSERT_EQ(decode_hex("07 00 01", &m), ATOLL_OK);
}

TEST(msg_encode_edges)
{
    atoll__buf b = ATOLL__BUF_INIT;
    /* route code 0 means "not compressed" */
    atoll__msg_put_request(&b, 7, "a.b.c", 5, 0, "{}", 2);
    CHECK_BUF_HEX("request code 0", &b, "04 00 00 0a 00 07 05 61 2e 62 2e 63 7b 7d");
    b.len = 0;
    atoll__msg_put_notify(&b, "x", 1, 0x1234, "{}", 2);
    CHECK_BUF_HEX("notify code", &b, "04 00 00 05 03 12 34 7b 7d");
    b.len = 0;
    atoll__msg_put_notify(&b, "x", 1, 0, NULL, 0);
    CHECK_BUF_HEX("notify empty body", &b, "04 00 00 03 02 01 78");
    b.len = 0;
    atoll__msg_put_push(&b, "", 0, 0, "{}", 2);
    CHECK_BUF_HEX("push empty route", &b, "04 00 00 04 06 00 7b 7d");
    b.len = 0;
    atoll__msg_put_notify(&b, NULL, 0, 0, "{}", 2); /* no route at all: an empty one */
    CHECK_BUF_HEX("notify NULL route", &b, "04 00 00 04 02 00 7b 7d");
    b.len = 0;
    atoll__msg_put_push(&b, NULL, 0, 65535, "{}", 2);
    CHECK_BUF_HEX("push code 65535", &b, "04 00 00 05 07 ff ff 7b 7d");
    b.len = 0;
    atoll__msg_put_response(&b, 0, NULL, 0);
    CHECK_BUF_HEX("response id 0 empty", &b, "04 00 00 02 04 00");

    /* the longest route (255 bytes) round-trips; a longer one is cut to 255 rather than
     * writing a length byte that lies */
    char route[300];
    memset(route, 'r', sizeof route);
    for (size_t len = 255; len <= 300; len += 45) {
        b.len = 0;
        atoll__msg_put_push(&b, route, len, 0, "{}", 2);
        atoll__pkg pkg;
        ASSERT_EQ(atoll__pkg_parse(atoll__buf_data(&b), b.len, ATOLL_PKG_BODY_DEFAULT_MAX, &pkg),
                  (ssize_t)b.len);
        atoll__msg m;
        ASSERT_EQ(atoll__msg_decode(pkg.body, pkg.len, &m), ATOLL_OK);
        ASSERT_EQ(m.route_len, 255);
        ASSERT(mem_is(m.body, m.body_len, "{}"));
    }

    /* appending keeps what is already in the buffer */
    b.len = 0;
    atoll__buf_append(&b, "xy", 2);
    atoll__msg_put_response(&b, 1, "{}", 2);
    CHECK_BUF_HEX("append", &b, "78 79 04 00 00 04 04 01 7b 7d");
    atoll__buf_fini(&b);
}

/* ---- package layer edges ---------------------------------------------------------------- */

static ssize_t
parse_hex(const char *hexstr, uint32_t max_body, atoll__pkg *pkg)
{
    uint8_t p[BUF_CAP];
    size_t n = test_hex(hexstr, p, sizeof p);
    uint8_t *q = malloc(n ? n : 1);
    memcpy(q, p, n);
    ssize_t r = atoll__pkg_parse(q, n, max_body, pkg);
    free(q);
    return r;
}

TEST(pkg_bad_type)
{
    atoll__pkg pkg;
    /* refused at the header: the body need not be there */
    ASSERT_EQ(parse_hex("00 00 00 00", ATOLL_PKG_BODY_DEFAULT_MAX, &pkg), ATOLL_EPROTO);
    ASSERT_EQ(parse_hex("06 00 00 00", ATOLL_PKG_BODY_DEFAULT_MAX, &pkg), ATOLL_EPROTO);
    ASSERT_EQ(parse_hex("ff 00 00 00", ATOLL_PKG_BODY_DEFAULT_MAX, &pkg), ATOLL_EPROTO);
    ASSERT_EQ(parse_hex("00 00 00 05", ATOLL_PKG_BODY_DEFAULT_MAX, &pkg), ATOLL_EPROTO);
    ASSERT_EQ(parse_hex("06 ff ff ff", ATOLL_PKG_BODY_DEFAULT_MAX, &pkg), ATOLL_EPROTO);
    ASSERT_EQ(parse_hex("ff 00 00 02 7b 7d", ATOLL_PKG_BODY_DEFAULT_MAX, &pkg), ATOLL_EPROTO);
    /* an HTTP request on the TCP port is not a package */
    ASSERT_EQ(parse_hex("47 45 54 20", ATOLL_PKG_BODY_DEFAULT_MAX, &pkg), ATOLL_EPROTO);
    /* types 1..5 are all accepted */
    for (int t = 1; t <= 5; t++) {
        uint8_t p[4] = {(uint8_t)t, 0, 0, 0};
        ASSERT_EQ(atoll__pkg_parse(p, 4, 0, &pkg), 4);
        ASSERT_EQ(pkg.type, t);
        ASSERT_EQ(pkg.len, 0);
        ASSERT(pkg.body == NULL);
    }
}

TEST(pkg_limits)
{
    atoll__pkg pkg;
    /* oversize is known from the 4-byte header alone */
    ASSERT_EQ(parse_hex("04 01 11 70", ATOLL_PKG_BODY_DEFAULT_MAX, &pkg), ATOLL_ELIMIT);
    ASSERT_EQ(parse_hex("04 ff ff ff", ATOLL_PKG_BODY_DEFAULT_MAX, &pkg), ATOLL_ELIMIT);
    ASSERT_EQ(parse_hex("04 00 00 02 7b", 1, &pkg), ATOLL_ELIMIT);
    ASSERT_EQ(parse_hex("01 01 00 01", 65536, &pkg), ATOLL_ELIMIT);
    /* exactly at the limit is fine */
    ASSERT_EQ(parse_hex("04 01 00 00", 65536, &pkg), 0);
    ASSERT_EQ(parse_hex("04 00 00 02 7b 7d", 2, &pkg), 6);
    ASSERT_EQ(parse_hex("03 00 00 00", 0, &pkg), 4);
    ASSERT_EQ(parse_hex("04 ff ff ff", ATOLL_PKG_BODY_CEILING, &pkg), 0);
    ASSERT_EQ(parse_hex("04 ff ff ff", UINT32_MAX, &pkg), 0);
    /* a bad type wins over a bad length */
    ASSERT_EQ(parse_hex("07 ff ff ff", 1, &pkg), ATOLL_EPROTO);
}

TEST(pkg_partial)
{
    uint8_t p[BUF_CAP];
    size_t n = test_hex(MSG_VECS[1].hex, p, sizeof p);
    atoll__pkg pkg;
    /* every prefix of a package needs more bytes; each from an exact-size copy */
    for (size_t k = 0; k < n; k++) {
        uint8_t *q = malloc(k ? k : 1);
        memcpy(q, p, k);
        ASSERT_EQ(atoll__pkg_parse(q, k, ATOLL_PKG_BODY_DEFAULT_MAX, &pkg), 0);
        free(q);
    }
    ASSERT_EQ(atoll__pkg_parse(p, n, ATOLL_PKG_BODY_DEFAULT_MAX, &pkg), (ssize_t)n);
    /* extra bytes after it belong to the next package */
    p[n] = 0x03;
    p[n + 1] = 0x00;
    ASSERT_EQ(atoll__pkg_parse(p, n + 2, ATOLL_PKG_BODY_DEFAULT_MAX, &pkg), (ssize_t)n);
    ASSERT_EQ(pkg.len, n - 4);
    ASSERT_EQ(atoll__pkg_parse(p + n, 2, ATOLL_PKG_BODY_DEFAULT_MAX, &pkg), 0);
    /* fewer than 4 bytes: nothing is decided yet, whatever they are */
    ASSERT_EQ(parse_hex("", ATOLL_PKG_BODY_DEFAULT_MAX, &pkg), 0);
    ASSERT_EQ(parse_hex("ff", ATOLL_PKG_BODY_DEFAULT_MAX, &pkg), 0);
    ASSERT_EQ(parse_hex("04 ff ff", ATOLL_PKG_BODY_DEFAULT_MAX, &pkg), 0);
}

/* A stream of packages of every type, back to back, split by a parse loop fed one byte
 * at a time, then all at once. */
TEST(pkg_stream)
{
    atoll__buf b = ATOLL__BUF_INIT;
    atoll__pkg_put(&b, ATOLL_PKG_HANDSHAKE, HS_LIB, strlen(HS_LIB));
    atoll__pkg_put(&b, ATOLL_PKG_HANDSHAKE_ACK, NULL, 0);
    atoll__pkg_put(&b, ATOLL_PKG_HEARTBEAT, NULL, 0);
    atoll__msg_put_request(&b, 1, ENTRY, strlen(ENTRY), 0, UID_BODY, strlen(UID_BODY));
    atoll__msg_put_notify(&b, NULL, 0, 4, "{}", 2);
    atoll__kick_put(&b, "kick");
    static const int types[] = {1, 2, 3, 4, 4, 5};
    const uint8_t *p = atoll__buf_data(&b);

    for (int mode = 0; mode < 2; mode++) {
        size_t off = 0, avail = mode == 0 ? 0 : b.len;
        int k = 0;
        while (off < b.len) {
            atoll__pkg pkg;
            ssize_t r = atoll__pkg_parse(p + off, avail - off, ATOLL_PKG_BODY_DEFAULT_MAX, &pkg);
            ASSERT(r >= 0);
            if (r == 0) {
                ASSERT(avail < b.len);
                avail++;
                continue;
            }
            ASSERT(k < 6);
            ASSERT_EQ(pkg.type, types[k]);
            if (pkg.type == ATOLL_PKG_DATA) {
                atoll__msg m;
                ASSERT_EQ(atoll__msg_decode(pkg.body, pkg.len, &m), ATOLL_OK);
            }
            off += (size_t)r;
            k++;
        }
        ASSERT_EQ(k, 6);
        ASSERT_EQ(off, b.len);
    }
    atoll__buf_fini(&b);
}

/* ---- UTF-8 and JSON validators ------------------------------------------------------------ */

TEST(utf8_valid_cases)
{
    static const char *const good[] = {
        "", "plain ascii", "\x7f", "\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80", "\xed\x9f\xbf",
        "\xee\x80\x80", "\xef\xbf\xbf", "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf",
        "\xe4\xbd\xa0\xe5\xa5\xbd", "0123456789abcdef\xf0\x9f\x98\x80" "0123456789",
    };
    static const char *const bad[] = {
        "\x80", "\xbf", "\xc0\x80", "\xc1\xbf", "\xe0\x9f\xbf", "\xed\xa0\x80", "\xed\xbf\xbf",
        "\xf0\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xf8\x88\x80\x80\x80",
        "\xfe", "\xff", "\xc2", "\xe0\xa0", "\xf0\x90\x80", "\xc2\x41", "\xe4\x41\xa0",
        "\xf0\x90\x41\x80",
        /* the ASCII fast path reads 8 bytes at a time: bad bytes around its edges */
        "1234567\x80", "12345678\x80", "123456789\x80", "123456781234567\xc2",
        "12345678123456781234567\xe4\xbd",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (!u8v(good[i]))
            fprintf(stderr, "  good[%zu]\n", i);
        ASSERT(u8v(good[i]));
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (u8v(bad[i]))
            fprintf(stderr, "  bad[%zu]\n", i);
        ASSERT(!u8v(bad[i]));
    }
    /* U+0000 is valid UTF-8; the length, not a NUL, ends the input */
    ASSERT(atoll__utf8_valid((const uint8_t *)"a\0b", 3));
    ASSERT(atoll__utf8_valid(NULL, 0));
}

TEST(json_valid_cases)
{
    static const char *const good[] = {
        "{}", "[]", "0", "-0", "1", "-1", "0.5", "-0.0", "1.5e10", "-1.0E-2", "1E+2", "1e0",
        "\"\"", "\"s\"", "true", "false", "null", " \t\r\n{} \n", " 1 ", "[1,2,3]",
        "{\"a\":[1,2,{\"b\":null}],\"c\":{\"d\":\"e\"}}", "{ \"a\" : 1 , \"b\" : [ ] }",
        "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]", "\"\\u0041\\u00e9\\uFFFF\"",
        /* lone surrogate escapes are in RFC 8259's grammar (it only warns about them) */
        "\"\\ud800\"", "\"\\udc00\"", "\"\\udbff\\udfff\"", "\"\\u0000\"",
        "\"\xe4\xbd\xa0\xe5\xa5\xbd\"", "\"\xf0\x9f\x98\x80\"", "[\"\x7f\"]",
        /* numbers of any size are JSON; what a reader does with them is its business */
        "123456789012345678901234567890", "-123456789012345678901234567890",
        "1e400", "-1e-400", "1.7976931348623157e309", "0.000000000000000000000000000001",
        "{\"a\":1,\"a\":2}", "[[[]],[[]]]", "{\"\":\"\"}",
    };
    static const char *const bad[] = {
        "", " ", "\n\t", "not json", "[1,]", "{\"a\":1,}", "[,1]", "{,}", "[,]", "01", "-01",
        "00", "1.", ".5", "1e", "1e+", "1.e5", "+1", "-", "--1", "0x10", "NaN", "Infinity",
        "-Infinity", "\"\\x\"", "\"\\u12\"", "\"\\u12g4\"", "\"\\U0041\"", "\"\\'\"", "\"\\",
        "\"\\u\"", "\"a\x01b\"", "\"a\nb\"", "\"a\tb\"", "\"\x1f\"", "\"abc", "{\"a\" 1}",
        "{\"a\":}", "{\"a\"}", "{a:1}", "{'a':1}", "['a']", "[1 2]", "[1]]", "[[1]", "{}}",
        "{} {}", "{}x", "1 2", "tru", "truex", "nul", "True", "NULL", "[1,2", "{\"a\":1",
        "\"\xc0\x80\"", "\"\xed\xa0\x80\"", "\"\xe4\xbd\"", "\"\xff\"", "\xef\xbb\xbf{}",
        "\f{}", "\xc2\xa0{}", "{\"a\":1}\x80", "[1,,2]", "{\"a\"::1}", "{1:2}", "[}", "{]",
        "/* c */ {}", "{} // c",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (!jv(good[i], ATOLL_JSON_MAX_DEPTH))
            fprintf(stderr, "  should be valid: %s\n", good[i]);
        ASSERT(jv(good[i], ATOLL_JSON_MAX_DEPTH));
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (jv(bad[i], ATOLL_JSON_MAX_DEPTH))
            fprintf(stderr, "  should be invalid: %s\n", bad[i]);
        ASSERT(!jv(bad[i], ATOLL_JSON_MAX_DEPTH));
    }
    /* a NUL byte is never JSON, inside or outside a string */
    ASSERT(!atoll__json_valid((const uint8_t *)"{}\0", 3, ATOLL_JSON_MAX_DEPTH));
    ASSERT(!atoll__json_valid((const uint8_t *)"\"a\0\"", 4, ATOLL_JSON_MAX_DEPTH));
    ASSERT(!atoll__json_valid(NULL, 0, ATOLL_JSON_MAX_DEPTH));
    /* the length bounds the input: a valid prefix of a longer buffer */
    ASSERT(atoll__json_valid((const uint8_t *)"[1]xyz", 3, ATOLL_JSON_MAX_DEPTH));
    ASSERT(!atoll__json_valid((const uint8_t *)"[1]xyz", 2, ATOLL_JSON_MAX_DEPTH));
    ASSERT(!atoll__json_valid((const uint8_t *)"true", 3, ATOLL_JSON_MAX_DEPTH));
    ASSERT(!atoll__json_valid((const uint8_t *)"123", 0, ATOLL_JSON_MAX_DEPTH));
}

/* "[[[...1...]]]" or {"a":{"a":...1...}} nested `depth` deep. */
static char *
nested(int depth, bool obj)
{
    char *s = malloc((size_t)depth * 6 + 2);
    size_t n = 0;
    for (int i = 0; i < depth; i++) {
        if (obj) {
            memcpy(s + n, "{\"a\":", 5);
            n += 5;
        } else {
            s[n++] = '[';
        }
    }
    s[n++] = '1';
    for (int i = 0; i < depth; i++)
        s[n++] = obj ? '}' : ']';
    s[n] = '\0';
    return s;
}

TEST(json_depth)
{
    for (int obj = 0; obj < 2; obj++) {
        char *at = nested(ATOLL_JSON_MAX_DEPTH, obj);
        char *over = nested(ATOLL_JSON_MAX_DEPTH + 1, obj);
        ASSERT(jv(at, ATOLL_JSON_MAX_DEPTH));
        ASSERT(!jv(over, ATOLL_JSON_MAX_DEPTH));
        ASSERT(jv(over, ATOLL_JSON_MAX_DEPTH + 1));
        free(at);
        free(over);
    }
    /* empty containers count as a level too */
    char s[300];
    memset(s, '[', ATOLL_JSON_MAX_DEPTH);
    memset(s + ATOLL_JSON_MAX_DEPTH, ']', ATOLL_JSON_MAX_DEPTH);
    s[2 * ATOLL_JSON_MAX_DEPTH] = '\0';
    ASSERT(jv(s, ATOLL_JSON_MAX_DEPTH));
    ASSERT(!jv(s, ATOLL_JSON_MAX_DEPTH - 1));
    /* siblings do not add up: depth is nesting, not count */
    ASSERT(jv("[[],[],{\"a\":1},[1]]", 2));
    ASSERT(!jv("[[],[[]]]", 2));
    /* depth 0 admits only scalars, 1 one level */
    ASSERT(jv("1", 0));
    ASSERT(jv("\"s\"", 0));
    ASSERT(!jv("[]", 0));
    ASSERT(jv("[1,{}]", 2));
    ASSERT(!jv("[1,{}]", 1));
    ASSERT(jv("{}", 1));
    /* the validator's own stack holds 256 levels; larger limits are clamped to it */
    char *deep = nested(256, false), *deeper = nested(257, false);
    ASSERT(jv(deep, 256));
    ASSERT(!jv(deeper, 256));
    ASSERT(!jv(deeper, 100000));
    free(deep);
    free(deeper);
    /* a long unclosed run fails without reading past the end */
    char *run = malloc(100000);
    memset(run, '[', 100000);
    ASSERT(!atoll__json_valid((const uint8_t *)run, 100000, ATOLL_JSON_MAX_DEPTH));
    free(run);
}

/* ---- handshake parse -------------------------------------------------------------------- */

TEST(handshake_parse_cases)
{
    atoll__handshake h;
    /* libpomelo2 with a cached dictionary and protos */
    ASSERT_EQ(hs_parse("{\"sys\":{\"protoVersion\":\"x\","
                       "\"dictVersion\":\"ljFCGHsr0+bapAJQgumwIQ==\","
                       "\"type\":\"desktop\",\"version\":\"0.3.5-release\"}}",
                       &h),
              ATOLL_OK);
    ASSERT_STR(h.dict_version, "ljFCGHsr0+bapAJQgumwIQ==");
    ASSERT_STR(h.type, "desktop");

    /* sys must be truthy in JavaScript's sense */
    static const char *const falsy[] = {
        "{}", "{\"user\":{}}", "{\"sys\":false}", "{\"sys\":0}", "{\"sys\":\"\"}",
        "{\"sys\":null}", "{\"sys\":0.0}", "{\"sys\":-0}", "{\"sys\":0e10}", "{\"Sys\":{}}",
    };
    for (size_t i = 0; i < sizeof falsy / sizeof falsy[0]; i++) {
        if (hs_parse(falsy[i], &h) != ATOLL_EPROTO)
            fprintf(stderr, "  %s\n", falsy[i]);
        ASSERT_EQ(hs_parse(falsy[i], &h), ATOLL_EPROTO);
    }
    static const char *const truthy[] = {
        "{\"sys\":true}", "{\"sys\":1}", "{\"sys\":\"x\"}", "{\"sys\":{}}", "{\"sys\":[]}",
        "{\"sys\":-1.5}", "{\"sys\":\"0\"}",
    };
    for (size_t i = 0; i < sizeof truthy / sizeof truthy[0]; i++) {
        ASSERT_EQ(hs_parse(truthy[i], &h), ATOLL_OK);
        ASSERT_STR(h.type, "");
        ASSERT_STR(h.dict_version, "");
    }

    /* not JSON, or JSON but not an object */
    static const char *const notobj[] = {
        "", "not json", "{\"sys\":{}", "{\"sys\":{},}", "[{\"sys\":{}}]", "\"sys\"", "1",
        "null", "true", "{\"sys\":\"\xc0\x80\"}",
    };
    for (size_t i = 0; i < sizeof notobj / sizeof notobj[0]; i++) {
        if (hs_parse(notobj[i], &h) != ATOLL_EJSON)
            fprintf(stderr, "  %s\n", notobj[i]);
        ASSERT_EQ(hs_parse(notobj[i], &h), ATOLL_EJSON);
    }

    /* fields of the wrong type are ignored; long ones are cut to fit */
    ASSERT_EQ(hs_parse("{\"sys\":{\"type\":1,\"version\":null,\"dictVersion\":{}}}", &h), ATOLL_OK);
    ASSERT_STR(h.type, "");
    ASSERT_STR(h.version, "");
    ASSERT_STR(h.dict_version, "");
    char buf[512];
    snprintf(buf, sizeof buf, "{\"sys\":{\"type\":\"%0100d\",\"dictVersion\":\"%0200d\"}}", 7, 9);
    ASSERT_EQ(hs_parse(buf, &h), ATOLL_OK);
    ASSERT_EQ(strlen(h.type), sizeof h.type - 1);
    ASSERT_EQ(strlen(h.dict_version), sizeof h.dict_version - 1);
    /* escapes are decoded */
    ASSERT_EQ(hs_parse("{\"sys\":{\"type\":\"a\\\"b\\u00e9\"}}", &h), ATOLL_OK);
    ASSERT_STR(h.type, "a\"b\xc3\xa9");
    /* duplicate keys, user data, whitespace: all fine */
    ASSERT_EQ(hs_parse(" {\"sys\":0, \"user\":{\"a\":[1,2]}, \"sys\":{\"type\":\"t\"}} ", &h),
              ATOLL_OK);
    ASSERT_STR(h.type, "t");
    /* numbers a JavaScript client may send that a C integer cannot hold */
    ASSERT_EQ(hs_parse("{\"sys\":{\"protoVersion\":123456789012345678901234567890},"
                       "\"user\":{\"uid\":18446744073709551616}}",
                       &h),
              ATOLL_OK);
    ASSERT_EQ(hs_parse("{\"sys\":12345678901234567890123}", &h), ATOLL_OK);
}

TEST(handshake_parse_limits)
{
    atoll__handshake h;
    /* exactly ATOLL_HANDSHAKE_MAX bytes is accepted, one more is not even parsed */
    char *s = malloc(ATOLL_HANDSHAKE_MAX + 2);
    static const char head[] = "{\"sys\":{},\"pad\":\"";
    size_t hl = strlen(head);
    memcpy(s, head, hl);
    memset(s + hl, 'x', ATOLL_HANDSHAKE_MAX - hl - 2);
    memcpy(s + ATOLL_HANDSHAKE_MAX - 2, "\"}", 3);
    ASSERT_EQ(strlen(s), ATOLL_HANDSHAKE_MAX);
    ASSERT_EQ(hs_parse(s, &h), ATOLL_OK);
    memcpy(s + ATOLL_HANDSHAKE_MAX - 2, "x\"}", 4);
    ASSERT_EQ(hs_parse(s, &h), ATOLL_ELIMIT);
    /* the size is checked first: garbage of that size is ELIMIT too */
    memset(s, '[', ATOLL_HANDSHAKE_MAX + 1);
    ASSERT_EQ(atoll__handshake_parse((const uint8_t *)s, ATOLL_HANDSHAKE_MAX + 1, &h),
              ATOLL_ELIMIT);
    free(s);
    /* nesting past ATOLL_JSON_MAX_DEPTH is refused before jansson sees it */
    char *deep = nested(ATOLL_JSON_MAX_DEPTH, true), wrap[1024];
    snprintf(wrap, sizeof wrap, "{\"sys\":%s}", deep);
    ASSERT_EQ(hs_parse(wrap, &h), ATOLL_EJSON);
    free(deep);
    deep = nested(ATOLL_JSON_MAX_DEPTH - 1, true);
    snprintf(wrap, sizeof wrap, "{\"sys\":%s}", deep);
    ASSERT_EQ(hs_parse(wrap, &h), ATOLL_OK);
    free(deep);
}

/* ---- JSON string writer ------------------------------------------------------------------ */

static void
check_escape(const char *in, size_t n, const char *want)
{
    atoll__buf b = ATOLL__BUF_INIT;
    atoll__json_put_string(&b, in, n);
    CHECK_BYTES(want, atoll__buf_data(&b), b.len, (const uint8_t *)want, strlen(want));
    /* what we write is JSON and reads back as the same bytes */
    ASSERT(atoll__json_valid(atoll__buf_data(&b), b.len, 0));
    json_t *v = json_loadb((const char *)atoll__buf_data(&b), b.len,
                           JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    ASSERT(v != NULL);
    ASSERT_EQ(json_string_length(v), n);
    ASSERT(n == 0 || memcmp(json_string_value(v), in, n) == 0);
    json_decref(v);
    atoll__buf_fini(&b);
}

TEST(json_escape)
{
    check_escape("", 0, "\"\"");
    check_escape("plain", 5, "\"plain\"");
    check_escape("a\"b", 3, "\"a\\\"b\"");
    check_escape("a\\b", 3, "\"a\\\\b\"");
    check_escape("/", 1, "\"/\"");
    check_escape("\n\r\t\b\f", 5, "\"\\n\\r\\t\\b\\f\"");
    check_escape("\x01\x1f\x0b", 3, "\"\\u0001\\u001f\\u000b\"");
    check_escape("\0", 1, "\"\\u0000\"");
    check_escape("\x7f", 1, "\"\x7f\"");
    check_escape("\xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80", 11,
                 "\"\xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80\"");
    /* every control character */
    char in[32];
    for (int c = 0; c < 32; c++)
        in[c] = (char)c;
    atoll__buf b = ATOLL__BUF_INIT;
    atoll__json_put_string(&b, in, sizeof in);
    ASSERT(atoll__json_valid(atoll__buf_data(&b), b.len, 0));
    for (size_t i = 0; i < b.len; i++)
        ASSERT(atoll__buf_data(&b)[i] >= 0x20);
    atoll__buf_fini(&b);

    /* kick reasons are escaped */
    b = (atoll__buf)ATOLL__BUF_INIT;
    atoll__kick_put(&b, "say \"bye\"\n");
    uint8_t want[64];
    size_t wn = pkg_text("05 00 00 1a", "{\"reason\":\"say \\\"bye\\\"\\n\"}", want, sizeof want);
    CHECK_BYTES("kick escaped", atoll__buf_data(&b), b.len, want, wn);
    b.len = 0;
    atoll__kick_put(&b, "attack");
    wn = pkg_text("05 00 00 13", "{\"reason\":\"attack\"}", want, sizeof want);
    CHECK_BYTES("kick attack", atoll__buf_data(&b), b.len, want, wn);
    b.len = 0;
    atoll__kick_put(&b, "");
    wn = pkg_text("05 00 00 0d", "{\"reason\":\"\"}", want, sizeof want);
    CHECK_BYTES("kick empty", atoll__buf_data(&b), b.len, want, wn);
    atoll__buf_fini(&b);
}

/* ---- route dictionary --------------------------------------------------------------------- */

TEST(dict_lookups)
{
    atoll__dict *d = transcript_dict();
    static const char *const order[] = {
        "chat.chatHandler.empty",       "chat.chatHandler.fail",
        "chat.chatHandler.pos",         "chat.chatHandler.send",
        "connector.entryHandler.entry", "connector.entryHandler.fail",
        "connector.entryHandler.kickme", "onChat",
    };
    for (uint16_t c = 1; c <= 8; c++) {
        ASSERT_STR(atoll__dict_route(d, c), order[c - 1]);
        ASSERT_EQ(atoll__dict_code(d, order[c - 1], strlen(order[c - 1])), c);
    }
    ASSERT(atoll__dict_route(d, 0) == NULL);
    ASSERT(atoll__dict_route(d, 9) == NULL);
    ASSERT(atoll__dict_route(d, 65535) == NULL);
    ASSERT_EQ(atoll__dict_code(d, "onPos", 5), 0);
    ASSERT_EQ(atoll__dict_code(d, "", 0), 0);
    /* prefixes and extensions of a route are other routes; the length is what counts */
    ASSERT_EQ(atoll__dict_code(d, "onCha", 5), 0);
    ASSERT_EQ(atoll__dict_code(d, "onChatX", 7), 0);
    ASSERT_EQ(atoll__dict_code(d, "onChatX", 6), 8);
    ASSERT_EQ(atoll__dict_code(d, "OnChat", 6), 0);
    atoll__dict_free(d);

    /* no dictionary at all */
    ASSERT_EQ(atoll__dict_count(NULL), 0);
    ASSERT_EQ(atoll__dict_code(NULL, "a", 1), 0);
    ASSERT(atoll__dict_route(NULL, 1) == NULL);
    ASSERT_STR(atoll__dict_version(NULL), "");
    atoll__dict_free(NULL);
}

/* A route from the network may hold NUL bytes: "onChat\0..." is not "onChat", and the
 * comparison must not read past the stored route. */
TEST(dict_route_with_nul)
{
    static const char *const push[] = {"onChat"};
    atoll__dict *d = atoll__dict_new(NULL, 0, push, 1);
    char route[16];
    memcpy(route, "onChat", 6);
    /* many different tails so that some hash into the slot of "onChat" */
    for (int tail = 1; tail <= 4; tail++)
        for (int c = 0; c < 256; c++) {
            memset(route + 6, 0, sizeof route - 6);
            route[6 + tail - 1] = (char)c;
            ASSERT_EQ(atoll__dict_code(d, route, 6 + (size_t)tail), 0);
        }
    ASSERT_EQ(atoll__dict_code(d, "on\0hat", 6), 0);
    ASSERT_EQ(atoll__dict_code(d, route, 6), 1);
    atoll__dict_free(d);
}

TEST(dict_build)
{
    /* handler routes sorted in code-unit order (upper case first); push routes after
     * them in the given order; duplicates ignored wherever they appear */
    static const char *const handlers[] = {"b", "a.z", "B", "a", "a.b", "a"};
    static const char *const pushes[] = {"zeta", "b", "alpha", "zeta"};
    atoll__dict *d = atoll__dict_new(handlers, 6, pushes, 4);
    ASSERT(d != NULL);
    static const char *const want[] = {"B", "a", "a.b", "a.z", "b", "zeta", "alpha"};
    ASSERT_EQ(atoll__dict_count(d), 7);
    for (uint16_t c = 1; c <= 7; c++) {
        ASSERT_STR(atoll__dict_route(d, c), want[c - 1]);
        ASSERT_EQ(atoll__dict_code(d, want[c - 1], strlen(want[c - 1])), c);
    }
    atoll__dict_free(d);

    /* an empty dictionary: version of "{}", and the reply still carries the maps */
    d = atoll__dict_new(NULL, 0, NULL, 0);
    ASSERT(d != NULL);
    ASSERT_EQ(atoll__dict_count(d), 0);
    ASSERT_STR(atoll__dict_version(d), "mZFLkyvTelC5g8XnyQrpOw==");
    ASSERT_EQ(atoll__dict_code(d, "a", 1), 0);
    ASSERT(atoll__dict_route(d, 1) == NULL);
    atoll__buf b = ATOLL__BUF_INIT;
    atoll__handshake_reply(&b, 3, d, NULL);
    uint8_t wantb[256];
    size_t wn = pkg_text("01 00 00 86",
                         "{\"code\":200,\"sys\":{\"heartbeat\":3,\"dict\":{},\"routeToCode\":{},"
                         "\"codeToRoute\":{},\"dictVersion\":\"mZFLkyvTelC5g8XnyQrpOw==\","
                         "\"useDict\":true}}",
                         wantb, sizeof wantb);
    CHECK_BYTES("empty dictionary reply", atoll__buf_data(&b), b.len, wantb, wn);
    atoll__buf_fini(&b);
    atoll__dict_free(d);

    /* the 16-bit code space bounds the dictionary */
    ASSERT(atoll__dict_new(NULL, 65535, NULL, 1) == NULL);
    ASSERT(atoll__dict_new(NULL, 0, NULL, 65536) == NULL);
}

/* Many routes: every one found through the hash table, codes dense and ordered. */
TEST(dict_many_routes)
{
    enum { N = 3000 };
    char **routes = malloc(N * sizeof *routes);
    for (int i = 0; i < N; i++) {
        routes[i] = malloc(32);
        /* reverse order in, so the sort has work to do */
        snprintf(routes[i], 32, "area.h%05d.m", N - 1 - i);
    }
    atoll__dict *d = atoll__dict_new((const char *const *)routes, N, NULL, 0);
    ASSERT_EQ(atoll__dict_count(d), N);
    for (int i = 0; i < N; i++) {
        uint16_t c = atoll__dict_code(d, routes[i], strlen(routes[i]));
        ASSERT_EQ(c, N - i);
        ASSERT_STR(atoll__dict_route(d, c), routes[i]);
        if (c > 1)
            ASSERT(strcmp(atoll__dict_route(d, c - 1), atoll__dict_route(d, c)) < 0);
        ASSERT_EQ(atoll__dict_code(d, routes[i], strlen(routes[i]) - 1), 0);
    }
    atoll__dict_free(d);
    for (int i = 0; i < N; i++)
        free(routes[i]);
    free(routes);
}

TEST(version_compare)
{
    ASSERT(atoll__version_cmp("1.2.0", "1.2.0") == 0);
    ASSERT(atoll__version_cmp("1.2", "1.2.0") == 0);
    ASSERT(atoll__version_cmp("1.10.0", "1.9.9") > 0);
    ASSERT(atoll__version_cmp("0.3.5-release", "0.3.5") == 0);
    ASSERT(atoll__version_cmp("0.3.5-release", "0.3.6") < 0);
    ASSERT(atoll__version_cmp("", "0.0.1") < 0);
    ASSERT(atoll__version_cmp("2", "1.99.99") > 0);
    ASSERT(atoll__version_cmp("99999999999999999999", "1") > 0); /* no overflow */
    ASSERT(atoll__version_valid("1.2.0"));
    ASSERT(atoll__version_valid("7"));
    ASSERT(!atoll__version_valid(""));
    ASSERT(!atoll__version_valid("1..2"));
    ASSERT(!atoll__version_valid("1.2."));
    ASSERT(!atoll__version_valid(".1"));
    ASSERT(!atoll__version_valid("1.2-beta"));
}

/* Hidden routes (a game's internal handlers) get codes after the push routes for the
 * node's own use, but no client is offered them: not in the handshake's dictionary, not
 * in dictVersion, and not counted among the public codes. */
TEST(dict_hidden_routes)
{
    static const char *const handlers[] = {"gate.entry", "t.incr"};
    static const char *const pushes[] = {"onEnter"};
    static const char *const hidden[] = {"t.relay", "t.incr", "t.slow"};
    atoll__dict *plain = atoll__dict_new(handlers, 2, pushes, 1);
    atoll__dict *d = atoll__dict_new_hidden(handlers, 2, pushes, 1, hidden, 3);
    ASSERT(plain != NULL && d != NULL);
    ASSERT_EQ(atoll__dict_public(d), 3);
    ASSERT_EQ(atoll__dict_count(d), 5); /* t.incr is public already: not twice */
    ASSERT_EQ(atoll__dict_code(d, "t.relay", 7), 4);
    ASSERT_EQ(atoll__dict_code(d, "t.slow", 6), 5);
    ASSERT_STR(atoll__dict_route(d, 4), "t.relay");
    ASSERT_EQ(atoll__dict_code(d, "t.incr", 6), atoll__dict_code(plain, "t.incr", 6));
    ASSERT_STR(atoll__dict_version(d), atoll__dict_version(plain));
    atoll__buf a = ATOLL__BUF_INIT, b = ATOLL__BUF_INIT;
    atoll__handshake_reply(&a, 3, plain, NULL);
    atoll__handshake_reply(&b, 3, d, NULL);
    ASSERT_EQ(a.len, b.len);
    ASSERT(memcmp(atoll__buf_data(&a), atoll__buf_data(&b), a.len) == 0);
    atoll__buf_fini(&a);
    atoll__buf_fini(&b);
    ASSERT_EQ(atoll__dict_public(NULL), 0);
    atoll__dict_free(plain);
    atoll__dict_free(d);
    ASSERT(atoll__dict_new_hidden(NULL, 65535, NULL, 0, hidden, 1) == NULL);
}

TEST_MAIN(version_compare, vec_pkg_encode, vec_pkg_decode, vec_client_handshakes, vec_msg_encode, vec_msg_decode,
          vec_msg_gzip_flag, vec_batch, transcript_client_packages, transcript_server_packages,
          transcript_handshake_reply_dict, handshake_reply_dict_cached, varint_boundaries,
          msg_id_limits, msg_route_edges, msg_route_utf8, msg_flag_edges, msg_encode_edges,
          pkg_bad_type, pkg_limits, pkg_partial, pkg_stream, utf8_valid_cases, json_valid_cases,
          json_depth, handshake_parse_cases, handshake_parse_limits, json_escape, dict_lookups,
          dict_route_with_nul, dict_build, dict_many_routes, dict_hidden_routes)
