/* session_test.c -- sessions, user ids, pushes and shutdown against a real node with
 * two workers: entry and duplicate login across workers, broadcast to every session,
 * order of one session's requests, dictionary handshake, heartbeats, clean shutdown,
 * a WebSocket client's close frame answered.
 */
#include "harness.h"
#include "test.h"

#include <fcntl.h>
#include <sys/socket.h>

#define NCLIENTS 8

static int
open_client(test_node *n)
{
    return raw_open_client(n->port);
}

/* Sends handshake body hs and returns the reply (type 1, NUL-terminated) in buf. */
static char *
handshake_reply(int fd, const char *hs, uint8_t *buf, size_t cap)
{
    size_t len;
    ASSERT(raw_send_pkg(fd, 1, hs, strlen(hs)));
    ASSERT_EQ(raw_recv_pkg(fd, buf, cap - 1, &len, 5000), 1);
    buf[len] = '\0';
    return (char *)buf;
}

/* Sends a request and returns the response body (NUL-terminated) in out. Heartbeats
 * that arrive first are skipped; anything else fails the test. */
static void
request(int fd, uint32_t id, const char *route, const char *body, char *out, size_t cap)
{
    uint8_t msg[1024], buf[8192];
    size_t len;
    size_t k = raw_request(msg, id, route, body);
    ASSERT(raw_send_pkg(fd, 4, msg, k));
    ASSERT_EQ(raw_recv_pkg_nohb(fd, buf, sizeof buf, &len, 5000), 4);
    raw_take_response(buf, len, id, out, cap);
}

/* Waits for a push; returns its route code (compressed) or 0, body in out. */
static int
wait_push(int fd, char *out, size_t cap)
{
    uint8_t buf[8192];
    size_t len;
    ASSERT_EQ(raw_recv_pkg_nohb(fd, buf, sizeof buf, &len, 5000), 4);
    ASSERT(buf[0] == 0x07 || buf[0] == 0x06);
    size_t off = buf[0] == 0x07 ? 3 : 2 + buf[1];
    int code = buf[0] == 0x07 ? (buf[1] << 8) | buf[2] : 0;
    ASSERT(len - off < cap);
    memcpy(out, buf + off, len - off);
    out[len - off] = '\0';
    return code;
}

/* Sends a notify (no response). */
static void
notify(int fd, const char *route, const char *body)
{
    uint8_t msg[1024];
    size_t rl = strlen(route), bl = strlen(body);
    msg[0] = 0x02;
    msg[1] = (uint8_t)rl;
    memcpy(msg + 2, route, rl);
    memcpy(msg + 2 + rl, body, bl);
    ASSERT(raw_send_pkg(fd, 4, msg, 2 + rl + bl));
}


/* The answer to a gate.entry of uid in the echo game: {"code":200,"uid":uid,
 * "area":"echo-<worker>"}, the area of the connection's worker. */
static bool
entered(const char *out, const char *uid)
{
    char head[200];
    snprintf(head, sizeof head, "{\"code\":200,\"uid\":\"%s\",\"area\":\"echo-", uid);
    size_t n = strlen(head);
    static const char tail[] = "\",\"resume\":\"1";
    return strncmp(out, head, n) == 0 && (out[n] == '0' || out[n] == '1') &&
           (strcmp(out + n + 1, "\"}") == 0 ||
            (strncmp(out + n + 1, tail, sizeof tail - 1) == 0 && strstr(out + n + 1, uid) != NULL));
}

TEST(entry_binds_and_duplicate_login_kicks_across_workers)
{
    test_node n;
    node_start(&n, NULL);
    char out[512];
    /* Several logins of the same uid, one after another, from connections spread over
     * both workers: each one kicks the one before. */
    int prev = -1;
    for (int i = 0; i < 6; i++) {
        int fd = open_client(&n);
        request(fd, 1, "gate.entry", "{\"uid\":\"alice\"}", out, sizeof out);
        ASSERT(entered(out, "alice"));
        if (prev >= 0) {
            raw_expect_kick(prev, "duplicate login");
            close(prev);
        }
        prev = fd;
    }
    /* Same uid again on the same session is fine; another uid is refused. */
    request(prev, 2, "gate.entry", "{\"uid\":\"alice\"}", out, sizeof out);
    ASSERT_STR(out, "{\"code\":200}");
    request(prev, 3, "gate.entry", "{\"uid\":\"bob\"}", out, sizeof out);
    ASSERT(strncmp(out, "{\"code\":500,", 12) == 0);
    /* A closed session releases its uid: the next login kicks nobody. */
    close(prev);
    usleep(200000);
    int a = open_client(&n), b = open_client(&n);
    request(a, 1, "gate.entry", "{\"uid\":\"alice\"}", out, sizeof out);
    request(b, 1, "gate.entry", "{\"uid\":\"carol\"}", out, sizeof out);
    request(a, 2, "echo.echo", "{\"still\":\"here\"}", out, sizeof out);
    ASSERT_STR(out, "{\"still\":\"here\"}");
    /* Numbers are accepted as uids; bad uids are refused with 500. */
    request(b, 2, "gate.entry", "{\"uid\":\"carol\"}", out, sizeof out);
    ASSERT_STR(out, "{\"code\":200}");
    int c = open_client(&n);
    request(c, 1, "gate.entry", "{\"uid\":\"\"}", out, sizeof out);
    ASSERT(strncmp(out, "{\"code\":500,", 12) == 0);
    request(c, 2, "gate.entry", "{\"name\":\"x\"}", out, sizeof out);
    ASSERT(strncmp(out, "{\"code\":500,", 12) == 0);
    request(c, 3, "gate.entry", "{\"uid\":42}", out, sizeof out);
    ASSERT(entered(out, "42"));
    /* Guests' ids are not uids anyone may log in with. */
    request(c, 4, "gate.entry", "{\"uid\":\"~0000000000000001\"}", out, sizeof out);
    ASSERT_STR(out, "{\"code\":500,\"message\":\"uids that start with ~ are reserved for guests\"}");
    close(a);
    close(b);
    close(c);
    node_stop(&n);
}

TEST(broadcast_reaches_every_session_on_every_worker)
{
    test_node n;
    node_start(&n, NULL);
    int fds[NCLIENTS];
    for (int i = 0; i < NCLIENTS; i++)
        fds[i] = open_client(&n);
    char out[512];
    notify(fds[0], "echo.broadcast", "{\"say\":\"hi all\"}");
    for (int i = 0; i < NCLIENTS; i++) {
        int code = wait_push(fds[i], out, sizeof out);
        ASSERT(code > 0); /* onChat is in the dictionary: compressed */
        ASSERT_STR(out, "{\"say\":\"hi all\"}");
    }
    /* echo.push answers only the sender. */
    notify(fds[1], "echo.push", "{\"me\":1}");
    ASSERT(wait_push(fds[1], out, sizeof out) > 0);
    ASSERT_STR(out, "{\"me\":1}");
    /* Nobody else got it: the next thing client 2 sees is its own echo. */
    request(fds[2], 1, "echo.echo", "{}", out, sizeof out);
    ASSERT_STR(out, "{}");
    for (int i = 0; i < NCLIENTS; i++)
        close(fds[i]);
    node_stop(&n);
}

TEST(requests_of_one_session_keep_their_order)
{
    test_node n;
    node_start(&n, (const char *[]){"--set", "net.rate_limit=0", NULL});
    int fd = open_client(&n);
    /* 2000 pipelined requests in one write; the answers come in the same order. */
    enum { N = 2000 };
    uint8_t *all = malloc(N * 64);
    size_t off = 0;
    for (uint32_t i = 1; i <= N; i++) {
        char body[32];
        snprintf(body, sizeof body, "{\"n\":%u}", i);
        uint8_t msg[64];
        size_t k = raw_request(msg, i, "echo.echo", body);
        off += raw_put_pkg(all + off, 4, msg, k);
    }
    ASSERT(raw_send(fd, all, off));
    free(all);
    for (uint32_t i = 1; i <= N; i++) {
        uint8_t buf[128];
        size_t len;
        ASSERT_EQ(raw_recv_pkg_nohb(fd, buf, sizeof buf - 1, &len, 5000), 4);
        buf[len] = '\0';
        size_t idlen = i < 128 ? 1 : 2;
        char want[32];
        snprintf(want, sizeof want, "{\"n\":%u}", i);
        ASSERT_STR((char *)buf + 1 + idlen, want);
    }
    close(fd);
    node_stop(&n);
}

TEST(handshake_dictionary_and_compressed_routes)
{
    test_node n;
    node_start(&n, NULL);
    int fd = raw_connect(n.port);
    uint8_t buf[8192];
    size_t len;
    const char *hs = "{\"sys\":{\"type\":\"t\",\"version\":\"1\"}}";
    char *reply = handshake_reply(fd, hs, buf, sizeof buf);
    ASSERT(strncmp(reply, "{\"code\":200,\"sys\":{\"heartbeat\":10,\"dict\":{", 41) == 0);
    ASSERT(strstr(reply, "\"routeToCode\":{") && strstr(reply, "\"codeToRoute\":{"));
    ASSERT(strstr(reply, "\"useDict\":true}}"));
    /* Find echo.echo's code and dictVersion in the reply. */
    const char *e = strstr(reply, "\"echo.echo\":");
    ASSERT(e != NULL);
    int code = atoi(e + 12);
    const char *v = strstr(reply, "\"dictVersion\":\"");
    ASSERT(v != NULL);
    char version[64];
    snprintf(version, sizeof version, "%.24s", v + 15);
    ASSERT(raw_send_pkg(fd, 2, NULL, 0));
    ASSERT_EQ(raw_recv_pkg(fd, buf, sizeof buf, &len, 5000), 3);
    /* A request by code. */
    uint8_t msg[] = {0x01, 0x07, (uint8_t)(code >> 8), (uint8_t)code, '{', '}'};
    ASSERT(raw_send_pkg(fd, 4, msg, sizeof msg));
    ASSERT_EQ(raw_recv_pkg(fd, buf, sizeof buf, &len, 5000), 4);
    ASSERT(len == 4 && memcmp(buf, "\x04\x07{}", 4) == 0);
    /* A client heartbeat is answered at once. */
    ASSERT(raw_send_pkg(fd, 3, NULL, 0));
    ASSERT_EQ(raw_recv_pkg(fd, buf, sizeof buf, &len, 1000), 3);
    close(fd);

    /* A client that reports the current dictVersion gets only the flags. */
    fd = raw_connect(n.port);
    char hs2[256];
    snprintf(hs2, sizeof hs2, "{\"sys\":{\"type\":\"t\",\"dictVersion\":\"%s\"}}", version);
    handshake_reply(fd, hs2, buf, sizeof buf);
    ASSERT_STR((char *)buf, "{\"code\":200,\"sys\":{\"heartbeat\":10,\"useDict\":true}}");
    close(fd);
    node_stop(&n);
}

TEST(dictionary_off_and_no_heartbeat)
{
    test_node n;
    node_start(&n, (const char *[]){"--set", "net.dict=false", "--set", "net.heartbeat=0", NULL});
    int fd = raw_connect(n.port);
    uint8_t buf[1024];
    size_t len;
    const char *hs = "{\"sys\":{}}";
    handshake_reply(fd, hs, buf, sizeof buf);
    ASSERT_STR((char *)buf, "{\"code\":200,\"sys\":{}}");
    ASSERT(raw_send_pkg(fd, 2, NULL, 0));
    /* No heartbeat after the ack; pushes carry the route as a string. */
    notify(fd, "echo.push", "{}");
    ASSERT_EQ(raw_recv_pkg(fd, buf, sizeof buf, &len, 5000), 4);
    ASSERT(len == 2 + 6 + 2 && memcmp(buf, "\x06\x06onPush{}", 10) == 0);
    close(fd);
    node_stop(&n);
}

TEST(shutdown_closes_every_connection_cleanly)
{
    test_node n;
    node_start(&n, NULL);
    int tcp = open_client(&n);
    int ws = ws_open_client(n.port);
    kill(n.pid, SIGTERM);
    /* WebSocket: close frame 1001 (going away); TCP: EOF. */
    uint8_t p[256];
    size_t len;
    ASSERT_EQ(ws_recv_frame(ws, p, sizeof p, &len, 5000), 8);
    ASSERT(len >= 2 && ((p[0] << 8) | p[1]) == 1001);
    ASSERT(raw_wait_closed(ws, 5000));
    ASSERT(raw_wait_closed(tcp, 5000));
    close(tcp);
    close(ws);
    /* Nothing listens any more, and the process exits with 0. */
    int status = 0;
    for (int i = 0; i < 500 && waitpid(n.pid, &status, WNOHANG) == 0; i++)
        usleep(10000);
    ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ASSERT(raw_connect(n.port) < 0);
    unlink(n.log_path);
}

/* A client that closes a WebSocket with a close frame gets the answering close frame
 * (RFC 6455 5.5.1: the code it sent, 1000) and then the end of the TCP stream; the
 * node goes on serving others. */
TEST(websocket_close_frame_is_answered)
{
    test_node n;
    node_start(&n, NULL);
    int fd = ws_open_client(n.port);
    const uint8_t bye[] = {0x03, 0xe8, 'b', 'y', 'e'}; /* 1000, "bye" */
    ASSERT(ws_send_frame(fd, 8, true, true, bye, sizeof bye));
    uint8_t p[256];
    size_t len;
    int op;
    while ((op = ws_recv_frame(fd, p, sizeof p, &len, 5000)) == 2)
        ; /* a heartbeat may come first */
    ASSERT_EQ(op, 8);
    ASSERT(len >= 2);
    ASSERT_EQ((p[0] << 8) | p[1], 1000);
    ASSERT(raw_wait_closed(fd, 5000));
    close(fd);
    int other = open_client(&n);
    char out[64];
    request(other, 1, "echo.echo", "{}", out, sizeof out);
    ASSERT_STR(out, "{}");
    close(other);
    node_stop(&n);
}

TEST(many_uids_grow_and_release_the_registry)
{
    test_node n;
    node_start(&n, NULL);
    enum { N = 300 };
    static int fds[N];
    char out[512], body[64];
    for (int i = 0; i < N; i++) {
        fds[i] = open_client(&n);
        snprintf(body, sizeof body, "{\"uid\":\"u%d\"}", i);
        request(fds[i], 1, "gate.entry", body, out, sizeof out);
        ASSERT(strncmp(out, "{\"code\":200,", 12) == 0);
    }
    /* Release every other uid, then log all of them in again on new connections:
     * released ones kick nobody, held ones kick their old session. */
    for (int i = 0; i < N; i += 2)
        close(fds[i]);
    usleep(300000);
    for (int i = 0; i < N; i++) {
        int fd = open_client(&n);
        snprintf(body, sizeof body, "{\"uid\":\"u%d\"}", i);
        request(fd, 1, "gate.entry", body, out, sizeof out);
        if (i % 2 == 1) {
            raw_expect_kick(fds[i], "duplicate login");
            close(fds[i]);
        }
        fds[i] = fd;
    }
    for (int i = 0; i < N; i++) {
        request(fds[i], 2, "echo.echo", "{}", out, sizeof out);
        close(fds[i]);
    }
    node_stop(&n);
}

TEST(client_version_gate_answers_501)
{
    test_node n;
    node_start(&n, (const char *[]){"--set", "net.min_client_version=1.2.0", NULL});
    struct {
        const char *sys;
        int code;
    } cases[] = {
        {"{\"type\":\"t\",\"version\":\"1.1.9\"}", 501},
        {"{\"type\":\"t\"}", 501},
        {"{\"version\":\"0.3.5-release\"}", 501},
        {"{\"version\":\"1.2.0\"}", 200},
        {"{\"version\":\"1.10.0-beta\"}", 200},
        {"{\"version\":\"2\"}", 200},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int fd = raw_connect(n.port);
        char hs[128];
        uint8_t body[2048];
        size_t len;
        snprintf(hs, sizeof hs, "{\"sys\":%s}", cases[i].sys);
        ASSERT(raw_send_pkg(fd, 1, hs, strlen(hs)));
        ASSERT_EQ(raw_recv_pkg(fd, body, sizeof body, &len, 5000), 1);
        char want[32];
        snprintf(want, sizeof want, "{\"code\":%d", cases[i].code);
        ASSERT(memcmp(body, want, strlen(want)) == 0);
        if (cases[i].code == 501) {
            ASSERT_EQ(len, 12);
            ASSERT(raw_wait_closed(fd, 5000));
        }
        close(fd);
    }
    node_stop(&n);
}

/* Starts `atoll run --listen listen [--set setting]` (output discarded), which must
 * exit by itself within 5 s; returns its exit status (the test fails if it runs on). */
static int
refused_start(const char *listen, const char *setting)
{
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        if (setting != NULL)
            execl(getenv("ATOLL_BIN"), "atoll", "run", "--store", "memory", "--listen", listen, "--set", setting,
                  (char *)NULL);
        else
            execl(getenv("ATOLL_BIN"), "atoll", "run", "--store", "memory", "--listen", listen, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    for (int i = 0; i < 500 && waitpid(pid, &status, WNOHANG) == 0; i++)
        usleep(10000);
    if (!WIFEXITED(status)) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        test_fail_(__FILE__, __LINE__, "a node that must refuse to start kept running");
    }
    return WEXITSTATUS(status);
}

/* node.id goes into every session id's top bits (and area numbers'): sessions of a
 * node with the largest id still bind, kick each other across workers and get
 * broadcasts; ids outside 1..4095 are refused at start. */
TEST(node_id_is_carried_by_session_ids)
{
    test_node n;
    node_start(&n, (const char *[]){"--set", "node.id=4095", NULL});
    char out[512];
    int a = open_client(&n), b = open_client(&n), c = open_client(&n);
    request(a, 1, "gate.entry", "{\"uid\":\"dup\"}", out, sizeof out);
    request(b, 1, "gate.entry", "{\"uid\":\"dup\"}", out, sizeof out);
    raw_expect_kick(a, "duplicate login");
    notify(c, "echo.broadcast", "{\"hi\":1}");
    wait_push(b, out, sizeof out);
    ASSERT_STR(out, "{\"hi\":1}");
    request(b, 2, "echo.echo", "{\"id\":4095}", out, sizeof out);
    ASSERT_STR(out, "{\"id\":4095}");
    close(a);
    close(b);
    close(c);
    node_stop(&n);
    ASSERT(refused_start("127.0.0.1:0", "node.id=0") != 0);
    ASSERT(refused_start("127.0.0.1:0", "node.id=4096") != 0);
}

TEST(second_node_on_the_same_port_refuses_to_start)
{
    test_node n;
    node_start(&n, NULL);
    /* SO_REUSEPORT would let a second node share the port silently; it must refuse. */
    char port[32];
    snprintf(port, sizeof port, "127.0.0.1:%d", n.port);
    ASSERT_EQ(refused_start(port, NULL), 1);
    /* The first node still serves everyone. */
    int fd = open_client(&n);
    char out[64];
    request(fd, 1, "echo.echo", "{}", out, sizeof out);
    close(fd);
    node_stop(&n);
}

/* --listen takes a host name as well as an address: "localhost" is resolved once at
 * start, its IPv4 address first. (A name that does not resolve is not tried here: that
 * would ask the machine's DNS.) */
TEST(listen_takes_host_names)
{
    test_node n;
    node_start(&n, (const char *[]){"--listen", "localhost:0", NULL});
    int fd = open_client(&n); /* 127.0.0.1 */
    char out[64];
    request(fd, 1, "echo.echo", "{\"by\":\"name\"}", out, sizeof out);
    ASSERT_STR(out, "{\"by\":\"name\"}");
    close(fd);
    node_stop(&n);
}

TEST(idle_timeout_closes_silent_clients_only)
{
    test_node n;
    node_start(&n, (const char *[]){"--set", "net.heartbeat=0", "--set", "net.idle_timeout=1",
                                    NULL});
    int quiet = raw_connect(n.port), chatty = raw_connect(n.port);
    raw_pomelo_open(quiet, false);
    raw_pomelo_open(chatty, false);
    /* Any byte counts as life: the chatty one sends a (here ignored) heartbeat every
     * 300 ms and outlives the quiet one, which goes after about 1 s. */
    bool quiet_closed = false;
    for (int i = 0; i < 10; i++) {
        ASSERT(raw_send_pkg(chatty, 3, NULL, 0));
        if (!quiet_closed)
            quiet_closed = raw_wait_closed(quiet, 300);
        else
            usleep(300000);
    }
    ASSERT(quiet_closed);
    char out[64];
    request(chatty, 1, "echo.echo", "{}", out, sizeof out);
    ASSERT_STR(out, "{}");
    close(quiet);
    close(chatty);
    node_stop(&n);
}

TEST_MAIN(idle_timeout_closes_silent_clients_only, second_node_on_the_same_port_refuses_to_start,
          client_version_gate_answers_501, entry_binds_and_duplicate_login_kicks_across_workers,
          many_uids_grow_and_release_the_registry, broadcast_reaches_every_session_on_every_worker,
          requests_of_one_session_keep_their_order, handshake_dictionary_and_compressed_routes,
          dictionary_off_and_no_heartbeat, shutdown_closes_every_connection_cleanly,
          websocket_close_frame_is_answered, node_id_is_carried_by_session_ids,
          listen_takes_host_names)
