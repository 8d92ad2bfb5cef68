/* bad_input_test.c -- hostile and broken clients against a real node.
 *
 * Each test starts a node, opens a well-behaved client, lets a bad client do one bad
 * thing, checks the clear answer it gets (a kick with a reason, an HTTP error, a
 * WebSocket close code, a plain close), and then checks that the well-behaved client
 * is still served and that the node stops cleanly (no crash, no leak under ASan).
 */
#include "harness.h"
#include "test.h"

#include <poll.h>
#include <sys/socket.h>

static uint32_t next_id = 1;

/* A request/response round trip on an open raw TCP client. */
static void
good_echo(int fd)
{
    uint8_t msg[256], body[4096];
    size_t len;
    uint32_t id = next_id++;
    size_t n = raw_request(msg, id, "echo.echo", "{\"ok\":true}");
    ASSERT(raw_send_pkg(fd, 4, msg, n));
    int type;
    /* Skip heartbeats and pushes until the response. */
    while ((type = raw_recv_pkg(fd, body, sizeof body, &len, 5000)) == 3 ||
           (type == 4 && (body[0] >> 1 & 7) == 3))
        ;
    ASSERT_EQ(type, 4);
    ASSERT_EQ(body[0], 0x04);
    ASSERT_EQ(body[1], id); /* ids < 128 fit one byte */
    ASSERT(len == 2 + 11 && memcmp(body + 2, "{\"ok\":true}", 11) == 0);
}

/* Starts a node with these arguments and returns a well-behaved client that has had
 * one round trip. */
static int
start_with_good(test_node *n, const char *const *args)
{
    node_start(n, args);
    int fd = raw_open_client(n->port);
    good_echo(fd);
    return fd;
}

/* The peer must close fd within 5 s; then fd is closed here too. */
#define EXPECT_CLOSED(fd)                                                                  \
    do {                                                                                   \
        ASSERT(raw_wait_closed((fd), 5000));                                               \
        close(fd);                                                                         \
    } while (0)


/* Waits for fd to be closed while keeping the good client alive with heartbeats. */
static bool
wait_closed_keepalive(int fd, int good, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 250) {
        if (raw_wait_closed(fd, 250))
            return true;
        raw_send_pkg(good, 3, NULL, 0);
    }
    return false;
}

static void
finish(test_node *n, int good)
{
    good_echo(good);
    close(good);
    node_stop(n);
}

TEST(oversized_package_is_kicked_at_the_header)
{
    test_node n;
    int good = start_with_good(&n, (const char *[]){"--set", "net.max_package=1024", NULL});
    int bad = raw_open_client(n.port);
    /* Only the header: the node must refuse before any body arrives. */
    uint8_t h[4] = {4, 0, 0x08, 0x00}; /* 2048 bytes declared */
    ASSERT(raw_send(bad, h, 4));
    raw_expect_kick(bad, "package too large");
    close(bad);
    finish(&n, good);
}

TEST(oversized_package_before_handshake_closes)
{
    test_node n;
    int good = start_with_good(&n, (const char *[]){"--set", "net.max_package=1024", NULL});
    int bad = raw_connect(n.port);
    uint8_t h[4] = {1, 0xff, 0xff, 0xff};
    ASSERT(raw_send(bad, h, 4));
    EXPECT_CLOSED(bad);
    finish(&n, good);
}

TEST(unknown_package_type_closes)
{
    test_node n;
    int good = start_with_good(&n, NULL);
    int bad = raw_open_client(n.port);
    uint8_t h[4] = {9, 0, 0, 0};
    ASSERT(raw_send(bad, h, 4));
    raw_expect_kick(bad, "bad package type");
    close(bad);
    /* Before the handshake: closed without a kick. */
    bad = raw_connect(n.port);
    h[0] = 0x42;
    ASSERT(raw_send(bad, h, 4));
    EXPECT_CLOSED(bad);
    finish(&n, good);
}

TEST(data_before_handshake_is_ignored)
{
    test_node n;
    int good = start_with_good(&n, NULL);
    int fd = raw_connect(n.port);
    uint8_t msg[256], body[256];
    size_t len;
    size_t k = raw_request(msg, 1, "echo.echo", "{}");
    ASSERT(raw_send_pkg(fd, 4, msg, k));
    ASSERT(raw_send_pkg(fd, 3, NULL, 0));
    /* Nothing comes back, and the connection stays usable. */
    ASSERT_EQ(raw_recv_pkg(fd, body, sizeof body, &len, 300), -1);
    raw_pomelo_open(fd, true);
    good_echo(fd);
    close(fd);
    finish(&n, good);
}

TEST(bad_handshakes_get_500_and_close)
{
    test_node n;
    int good = start_with_good(&n, NULL);
    const char *bodies[] = {"{\"user\":{}}", "not json", "{\"sys\":false}", "[1,2]",
                            "{\"sys\":{}", ""};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        int fd = raw_connect(n.port);
        uint8_t body[256];
        size_t len;
        ASSERT(raw_send_pkg(fd, 1, bodies[i], strlen(bodies[i])));
        ASSERT_EQ(raw_recv_pkg(fd, body, sizeof body, &len, 5000), 1);
        ASSERT(len == 12 && memcmp(body, "{\"code\":500}", 12) == 0);
        EXPECT_CLOSED(fd);
    }
    finish(&n, good);
}

TEST(malformed_messages_are_kicked)
{
    test_node n;
    int good = start_with_good(&n, NULL);
    struct {
        const char *hex;
        const char *reason;
    } cases[] = {
        /* id with 6 continuation bytes */
        {"00 ff ff ff ff ff 01 01 61 7b 7d", "malformed message"},
        /* route length 200 with 3 bytes left */
        {"00 01 c8 61 62 63", "malformed message"},
        /* route "\xc0\xaf" (overlong) */
        {"00 01 02 c0 af 7b 7d", "route is not UTF-8"},
        /* empty message */
        {"", "malformed message"},
        /* a response from the client */
        {"04 01 7b 7d", "unexpected message type"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int fd = raw_open_client(n.port);
        uint8_t msg[64];
        size_t k = test_hex(cases[i].hex, msg, sizeof msg);
        ASSERT(raw_send_pkg(fd, 4, msg, k));
        raw_expect_kick(fd, cases[i].reason);
        close(fd);
    }
    finish(&n, good);
}

TEST(routes_pomelo_drops_or_rejects)
{
    test_node n;
    int good = start_with_good(&n, NULL);
    int fd = raw_open_client(n.port);
    uint8_t msg[256], body[512];
    size_t len, k;
    /* No dot: dropped silently. Unknown code: dropped silently. */
    k = raw_request(msg, 1, "nodots", "{}");
    ASSERT(raw_send_pkg(fd, 4, msg, k));
    uint8_t coded[] = {0x01, 0x02, 0x03, 0xe7, '{', '}'};
    ASSERT(raw_send_pkg(fd, 4, coded, sizeof coded));
    /* Unknown route with a dot: {"code":500,...}. */
    k = raw_request(msg, 3, "echo.nosuch", "{}");
    ASSERT(raw_send_pkg(fd, 4, msg, k));
    ASSERT_EQ(raw_recv_pkg(fd, body, sizeof body - 1, &len, 5000), 4);
    body[len] = '\0';
    ASSERT_EQ(body[1], 3); /* the first answer is to id 3: 1 and 2 were dropped */
    ASSERT(strncmp((char *)body + 2, "{\"code\":500,", 12) == 0);
    /* Body that is not JSON: handled as {}. */
    k = raw_request(msg, 4, "echo.echo", "not json");
    ASSERT(raw_send_pkg(fd, 4, msg, k));
    ASSERT_EQ(raw_recv_pkg(fd, body, sizeof body, &len, 5000), 4);
    ASSERT(len == 4 && memcmp(body, "\x04\x04{}", 4) == 0);
    /* Method "constructor": kicked as an attack, as Pomelo does. */
    k = raw_request(msg, 5, "echo.constructor", "{}");
    ASSERT(raw_send_pkg(fd, 4, msg, k));
    raw_expect_kick(fd, "attack");
    close(fd);
    finish(&n, good);
}

TEST(websocket_two_packages_in_one_message_closes)
{
    test_node n;
    int good = start_with_good(&n, NULL);
    int fd = ws_open_client(n.port);
    uint8_t two[8] = {3, 0, 0, 0, 3, 0, 0, 0};
    ASSERT(ws_send_frame(fd, 2, true, true, two, 8));
    uint8_t p[512];
    size_t len;
    /* A kick package in a binary frame, then a close frame with 1002. */
    ASSERT_EQ(ws_recv_frame(fd, p, sizeof p, &len, 5000), 2);
    ASSERT_EQ(p[0], 5);
    ASSERT_EQ(ws_recv_frame(fd, p, sizeof p, &len, 5000), 8);
    ASSERT(len >= 2 && ((p[0] << 8) | p[1]) == 1002);
    EXPECT_CLOSED(fd);
    finish(&n, good);
}

/* Expects a close frame with this code, then the close; closes fd. */
static void
ws_expect_close_code(int fd, int code)
{
    uint8_t p[512];
    size_t len;
    int op;
    while ((op = ws_recv_frame(fd, p, sizeof p, &len, 5000)) == 2)
        ; /* a kick or heartbeat may come first */
    ASSERT_EQ(op, 8);
    ASSERT(len >= 2);
    ASSERT_EQ((p[0] << 8) | p[1], code);
    EXPECT_CLOSED(fd);
}

TEST(websocket_bad_frames_close_with_codes)
{
    test_node n;
    int good = start_with_good(&n, (const char *[]){"--set", "net.max_package=1024", NULL});
    /* text frame -> 1003 */
    int fd = ws_open_client(n.port);
    ASSERT(ws_send_frame(fd, 1, true, true, "hello", 5));
    ws_expect_close_code(fd, 1003);
    /* unmasked client frame -> 1002 */
    fd = ws_open_client(n.port);
    uint8_t hb[4] = {3, 0, 0, 0};
    ASSERT(ws_send_frame(fd, 2, true, false, hb, 4));
    ws_expect_close_code(fd, 1002);
    /* oversized frame (header only) -> 1009 */
    fd = ws_open_client(n.port);
    uint8_t big[4] = {0x82, 0xfe, 0x40, 0x00}; /* masked, 16384 bytes declared */
    ASSERT(raw_send(fd, big, 4));
    ws_expect_close_code(fd, 1009);
    /* a package split over two messages -> 1002 */
    fd = ws_open_client(n.port);
    uint8_t half[2] = {4, 0};
    ASSERT(ws_send_frame(fd, 2, true, true, half, 2));
    ws_expect_close_code(fd, 1002);
    finish(&n, good);
}

TEST(bad_http_upgrade_gets_400)
{
    test_node n;
    int good = start_with_good(&n, NULL);
    int fd = raw_connect(n.port);
    const char *req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT(raw_send(fd, req, strlen(req)));
    char head[64] = {0};
    raw_recv(fd, head, 12, 5000);
    ASSERT(strncmp(head, "HTTP/1.1 400", 12) == 0);
    EXPECT_CLOSED(fd);
    /* A head that never ends: 431 once it passes the limit. */
    fd = raw_connect(n.port);
    ASSERT(raw_send(fd, "GET / HTTP/1.1\r\n", 16));
    char filler[1024];
    memset(filler, 'a', sizeof filler);
    for (int i = 0; i < 10; i++) {
        raw_send(fd, "X-Pad: ", 7);
        raw_send(fd, filler, sizeof filler);
        raw_send(fd, "\r\n", 2);
    }
    memset(head, 0, sizeof head);
    raw_recv(fd, head, 12, 5000);
    ASSERT(strncmp(head, "HTTP/1.1 431", 12) == 0);
    EXPECT_CLOSED(fd);
    finish(&n, good);
}

TEST(slowloris_half_header_is_closed)
{
    test_node n;
    int good = start_with_good(&n, (const char *[]){"--set", "net.handshake_timeout=1", "--set",
                                    "net.heartbeat=1", NULL});
    /* Half a header before the handshake: closed by the handshake deadline. */
    int a = raw_connect(n.port);
    ASSERT(raw_send(a, "\x01\x00", 2));
    /* Half an upgrade request: same deadline. */
    int b = raw_connect(n.port);
    ASSERT(raw_send(b, "GET / HT", 8));
    /* Half a package after the handshake: the heartbeat deadline (2 s). */
    int c = raw_open_client(n.port);
    ASSERT(raw_send(c, "\x04\x00\x00", 3));
    ASSERT(wait_closed_keepalive(a, good, 4000));
    ASSERT(wait_closed_keepalive(b, good, 4000));
    ASSERT(wait_closed_keepalive(c, good, 6000));
    close(a);
    close(b);
    close(c);
    finish(&n, good);
}

/* Handshake answered but never acked (Pomelo's WAIT_ACK): the handshake deadline
 * still applies, or the client would hold its connection until the idle timeout
 * (90 s). */
TEST(slowloris_handshake_never_acked_is_closed)
{
    test_node n;
    int good = start_with_good(&n, (const char *[]){"--set", "net.handshake_timeout=1", NULL});
    int fd = raw_connect(n.port);
    ASSERT(fd >= 0);
    static const char hs[] = "{\"sys\":{\"type\":\"raw-test\",\"version\":\"0.0.1\"}}";
    uint8_t body[8192];
    size_t len;
    ASSERT(raw_send_pkg(fd, 1, hs, strlen(hs)));
    ASSERT_EQ(raw_recv_pkg(fd, body, sizeof body, &len, 5000), 1);
    ASSERT(len > 11 && memcmp(body, "{\"code\":200", 11) == 0);
    ASSERT(wait_closed_keepalive(fd, good, 4000));
    close(fd);
    finish(&n, good);
}

TEST(heartbeat_timeout_not_reset_by_data)
{
    test_node n;
    node_start(&n, (const char *[]){"--set", "net.heartbeat=1", NULL});
    int fd = raw_open_client(n.port);
    /* Requests every 300 ms but no heartbeats: closed about 2 s after the ack. */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bool closed = false;
    for (int i = 0; i < 20 && !closed; i++) {
        uint8_t msg[64];
        size_t k = raw_request(msg, (uint32_t)(i + 1), "echo.echo", "{}");
        raw_send_pkg(fd, 4, msg, k);
        closed = raw_wait_closed(fd, 300);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    ASSERT(closed);
    ASSERT(s > 1.5 && s < 5.0); /* 2 s after the ack; generous above for loaded CI */
    close(fd);
    node_stop(&n);
}

TEST(more_connections_than_the_maximum)
{
    test_node n;
    int good = start_with_good(&n, (const char *[]){"--set", "net.max_conns=3", NULL});
    int b = raw_connect(n.port), c = raw_connect(n.port);
    raw_pomelo_open(b, true);
    raw_pomelo_open(c, true);
    /* The fourth is accepted and closed at once. */
    int d = raw_connect(n.port);
    ASSERT(d >= 0);
    EXPECT_CLOSED(d);
    /* Closing one frees a place. */
    close(c);
    usleep(200000);
    int e = raw_open_client(n.port);
    good_echo(e);
    close(e);
    close(b);
    finish(&n, good);
}

/* Sends n echo requests in one write; returns how many were answered before the kick
 * for "rate limit", which must come, followed by the close. */
static int
flood_until_kicked(int fd, int n)
{
    /* One request answered first: the session is then in its area (a guest of echo's
     * area on its worker), so the flood's requests are answered as they are read, up to
     * the kick. This request takes one token of the bucket. */
    good_echo(fd);
    uint8_t *flood = malloc((size_t)n * 32);
    size_t off = 0;
    for (uint32_t i = 1; i <= (uint32_t)n; i++) {
        uint8_t msg[32];
        size_t k = raw_request(msg, i, "echo.echo", "{}");
        off += raw_put_pkg(flood + off, 4, msg, k);
    }
    raw_send(fd, flood, off);
    free(flood);
    int responses = 0;
    uint8_t body[512];
    size_t len;
    int type;
    while ((type = raw_recv_pkg(fd, body, sizeof body - 1, &len, 5000)) == 4)
        responses++;
    ASSERT_EQ(type, 5);
    body[len] = '\0';
    ASSERT_STR((char *)body, "{\"reason\":\"rate limit\"}");
    EXPECT_CLOSED(fd);
    return responses;
}

TEST(request_flood_is_rate_limited)
{
    test_node n;
    int good = start_with_good(
        &n, (const char *[]){"--set", "net.rate_limit=50", "--set", "net.rate_burst=100", NULL});
    int fd = raw_open_client(n.port);
    /* 1000 requests in one burst: the first 99 are answered (the burst less the
     * request that entered), then the kick. */
    int responses = flood_until_kicked(fd, 1000);
    /* The burst is served, then the flood is cut off long before its end (the bucket
     * refills at 50 a second, so a slow, sanitized node may answer a few more). */
    if (responses < 99 || responses >= 300) {
        fprintf(stderr, "  %d answers before the kick\n", responses);
        test_fail_(__FILE__, __LINE__, "flood not cut at net.rate_burst");
    }
    finish(&n, good);
}

/* The bucket never holds more than net.rate_burst: a client that idles first has
 * earned no more than the burst (two idle seconds at 100 a second would be 200). */
TEST(request_flood_after_idling_is_capped_at_the_burst)
{
    test_node n;
    int good = start_with_good(
        &n, (const char *[]){"--set", "net.rate_limit=100", "--set", "net.rate_burst=10", NULL});
    int fd = raw_open_client(n.port);
    usleep(2000000);
    int responses = flood_until_kicked(fd, 1000);
    /* 9 (the burst less the request that entered), and what the bucket refills while
     * the node reads the flood: a few at most (half a second of a slow, sanitized node
     * would be 50). */
    if (responses < 9 || responses >= 60) {
        fprintf(stderr, "  %d answers before the kick\n", responses);
        test_fail_(__FILE__, __LINE__, "burst not capped at net.rate_burst");
    }
    finish(&n, good);
}

TEST(slow_reader_is_closed_at_the_output_cap)
{
    test_node n;
    int good = start_with_good(&n, (const char *[]){"--set", "net.output_cap=131072", "--set",
                                    "net.rate_limit=0", "--set", "net.max_package=65536",
                                    NULL});
    int fd = raw_connect(n.port);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    raw_pomelo_open(fd, true);
    /* Big echoes, never read: the node's unsent output passes the cap. */
    char *body = malloc(60001);
    memset(body, 'x', 60000);
    body[0] = '"';
    body[59999] = '"';
    body[60000] = '\0';
    uint8_t *msg = malloc(61000);
    size_t k = raw_request(msg, 1, "echo.echo", body);
    bool sent_all = true;
    for (int i = 0; i < 400 && sent_all; i++) {
        struct pollfd pfd = {fd, POLLOUT, 0};
        if (poll(&pfd, 1, 2000) <= 0)
            break; /* the node stopped reading us: it closed or is closing */
        sent_all = raw_send_pkg(fd, 4, msg, k);
    }
    free(body);
    free(msg);
    size_t rss_before_close = node_rss(&n);
    ASSERT(raw_wait_closed(fd, 10000));
    close(fd);
    ASSERT(node_log_contains(&n, "closing slow reader"));
    /* The node did not buffer the 24 MB it was sent. */
    ASSERT(rss_before_close < 64u << 20);
    finish(&n, good);
}

TEST(bad_input_cannot_flood_the_log)
{
    test_node n;
    int good = start_with_good(&n, NULL);
    enum { N = 300 };
    for (int i = 0; i < N; i++) {
        int fd = raw_connect(n.port);
        ASSERT(raw_send_pkg(fd, 1, "nope", 4));
        close(fd);
    }
    usleep(1200000);
    /* One more in a later second reports how many lines were dropped. */
    int fd = raw_connect(n.port);
    ASSERT(raw_send_pkg(fd, 1, "nope", 4));
    EXPECT_CLOSED(fd);
    usleep(100000);
    int lines = node_log_count(&n, "bad handshake");
    /* Two workers, each 20 lines a second, over at most a few seconds. */
    ASSERT(lines >= 20 && lines < N / 2);
    ASSERT(node_log_contains(&n, "log lines suppressed"));
    finish(&n, good);
}

TEST_MAIN(bad_input_cannot_flood_the_log, oversized_package_is_kicked_at_the_header,
          oversized_package_before_handshake_closes, unknown_package_type_closes,
          data_before_handshake_is_ignored, bad_handshakes_get_500_and_close,
          malformed_messages_are_kicked, routes_pomelo_drops_or_rejects,
          websocket_two_packages_in_one_message_closes, websocket_bad_frames_close_with_codes,
          bad_http_upgrade_gets_400, slowloris_half_header_is_closed,
          slowloris_handshake_never_acked_is_closed, heartbeat_timeout_not_reset_by_data,
          more_connections_than_the_maximum, request_flood_is_rate_limited,
          request_flood_after_idling_is_capped_at_the_burst,
          slow_reader_is_closed_at_the_output_cap)
