/* churn_test.c -- connections that come and go in every way a network allows, against
 * a real node running the test game with two workers, and what they must leave behind:
 * nothing. The node's open file descriptors return to their baseline, its memory stops
 * growing (Release), and under ASan the node's exit runs LeakSanitizer, which fails
 * node_stop on any block still lost.
 *
 * The first tests are regressions for one path each: a client that sends gate.entry
 * (or requests, or a move) and resets at once, so that the framework's answer meets a
 * session that is gone. The churn test mixes them all from several client threads for
 * a fixed time and prints its figures: connections by way of leaving, rate, file
 * descriptors, and memory growth per 10,000 connections.
 */
#define TEST_TIMEOUT_S 180
#include "harness.h"
#include "test.h"

#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

/* Memory the node may keep per 10,000 connections after its warm-up (Release build).
 * A leak of one gate.entry body per connection was ~300 MB per 10,000 at 30 KB. */
#define CHURN_GROWTH_MAX_PER_10K (2u << 20)

static void
start_game(test_node *n)
{
    /* Players leave as their clients go (resume off): the test counts them. */
    node_start_testgame(n, (const char *[]){"--set", "log.level=warn", "--set",
                                             "session.resume_ms=0", NULL});
}

static bool
sanitized(void)
{
    const char *s = getenv("ATOLL_SANITIZED");
    return s != NULL && strcmp(s, "1") == 0;
}

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Closes with a TCP reset instead of a FIN: the peer's next read fails at once. */
static void
reset_close(int fd)
{
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

/* Open file descriptors of the node (its /proc/PID/fd entries). */
static int
node_fds(const test_node *n)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)n->pid);
    DIR *d = opendir(path);
    ASSERT(d != NULL);
    int count = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.')
            count++;
    closedir(d);
    return count;
}

/* Waits until the node holds no more descriptors than baseline (closing connections
 * flush for up to 2 s); returns the last count. */
static int
wait_fds(const test_node *n, int baseline, int timeout_ms)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    int fds;
    while ((fds = node_fds(n)) > baseline && now_ms() < deadline)
        usleep(20 * 1000);
    return fds;
}

/* ---- a small client over raw TCP or WebSocket ------------------------------------------- */

/* Bytes of the server's packages not parsed yet: over WebSocket one frame can hold
 * several packages, and over TCP a read can end inside one. */
typedef struct client {
    int fd;
    bool ws;
    uint8_t *in;
    size_t len, cap;
} client;

#define CLIENT_IN_CAP (1u << 20)

static bool
client_open(client *c, int port, bool ws)
{
    c->fd = raw_connect(port);
    if (c->fd < 0)
        return false;
    c->ws = ws;
    c->len = 0;
    if (c->in == NULL) {
        c->cap = CLIENT_IN_CAP;
        c->in = malloc(c->cap);
    }
    if (ws)
        ws_pomelo_open(c->fd, true);
    else
        raw_pomelo_open(c->fd, true);
    return true;
}

/* Package bytes as the transport carries them: one binary frame per package over
 * WebSocket, masked as a client must. */
static bool
client_send_pkg(client *c, int type, const void *body, size_t len)
{
    if (!c->ws)
        return raw_send_pkg(c->fd, type, body, len);
    uint8_t *p = malloc(4 + len);
    raw_put_pkg(p, type, body, len);
    bool ok = ws_send_frame(c->fd, 2, true, true, p, 4 + len);
    free(p);
    return ok;
}

/* Reads more of the server's bytes into c->in; false on EOF, reset, close or timeout. */
static bool
client_fill(client *c, int timeout_ms)
{
    if (c->ws) {
        size_t n;
        int op = ws_recv_frame(c->fd, c->in + c->len, c->cap - c->len, &n, timeout_ms);
        if (op != 1 && op != 2)
            return false; /* close frame, EOF or timeout */
        c->len += n;
        return true;
    }
    struct pollfd pfd = {c->fd, POLLIN, 0};
    if (poll(&pfd, 1, timeout_ms) <= 0)
        return false;
    ssize_t k = recv(c->fd, c->in + c->len, c->cap - c->len, 0);
    if (k <= 0)
        return false;
    c->len += (size_t)k;
    return true;
}

/* The next package: its type, body copied to body[0..*blen) (NUL-terminated); -1 when
 * the connection ends or nothing comes within timeout_ms. */
static int
client_recv_pkg(client *c, uint8_t *body, size_t cap, size_t *blen, int timeout_ms)
{
    for (;;) {
        if (c->len >= 4) {
            size_t n = ((size_t)c->in[1] << 16) | ((size_t)c->in[2] << 8) | c->in[3];
            if (n + 1 > cap)
                test_fail_(__FILE__, __LINE__, "package larger than the test's buffer");
            if (c->len >= 4 + n) {
                int type = c->in[0];
                memcpy(body, c->in + 4, n);
                body[n] = '\0';
                *blen = n;
                memmove(c->in, c->in + 4 + n, c->len - 4 - n);
                c->len -= 4 + n;
                return type;
            }
        }
        if (!client_fill(c, timeout_ms))
            return -1;
    }
}

/* Sends request id and waits for its response, skipping heartbeats and pushes. The
 * response body goes to out (NUL-terminated). False when the server kicked or closed
 * the connection instead (the KICK's body is in out then). */
static bool
client_request(client *c, uint32_t id, const char *route, const char *body, char *out,
               size_t cap)
{
    size_t blen = strlen(body);
    uint8_t *msg = malloc(16 + strlen(route) + blen);
    size_t k = raw_request(msg, id, route, body);
    bool sent = client_send_pkg(c, 4, msg, k);
    free(msg);
    if (!sent)
        return false;
    uint8_t pkg[16384];
    size_t len;
    for (;;) {
        int type = client_recv_pkg(c, pkg, sizeof pkg, &len, 10000);
        if (type == 3)
            continue;
        if (type == 5) {
            snprintf(out, cap, "%.*s", (int)(cap - 1), (char *)pkg);
            return false;
        }
        if (type != 4)
            return false;
        if ((pkg[0] >> 1 & 0x07) == 3)
            continue; /* a push (onEnter, onLeave) */
        ASSERT_EQ(pkg[0] >> 1 & 0x07, 2); /* a response */
        uint32_t got = 0;
        size_t off = 1;
        for (int shift = 0; off < len; shift += 7) {
            got |= (uint32_t)(pkg[off] & 0x7f) << shift;
            if (!(pkg[off++] & 0x80))
                break;
        }
        ASSERT_EQ(got, id);
        snprintf(out, cap, "%.*s", (int)(len - off), (char *)pkg + off);
        return true;
    }
}

static void
client_close(client *c, bool reset)
{
    if (reset)
        reset_close(c->fd);
    else
        close(c->fd);
    c->fd = -1;
}

static void
client_free(client *c)
{
    free(c->in);
    c->in = NULL;
}

/* gate.entry for uid into area (of type "t" unless type is given), with pad bytes of
 * filler in the body; sent, not waited for. */
static bool
send_entry(client *c, uint32_t id, const char *uid, const char *area, const char *type,
           size_t pad)
{
    char *body = malloc(256 + pad);
    int n = snprintf(body, 256, "{\"uid\":\"%s\",\"area\":\"%s\",\"type\":\"%s\",\"pad\":\"", uid,
                     area, type ? type : "t");
    memset(body + n, 'x', pad);
    memcpy(body + n + pad, "\"}", 3);
    uint8_t *msg = malloc(300 + pad);
    size_t k = raw_request(msg, id, "gate.entry", body);
    bool ok = client_send_pkg(c, 4, msg, k);
    free(msg);
    free(body);
    return ok;
}

/* Enters uid into area and expects the answer {"code":200,...}. */
static void
enter(client *c, const char *uid, const char *area, const char *type)
{
    char out[512];
    ASSERT(send_entry(c, 1, uid, area, type, 0));
    uint8_t pkg[16384];
    size_t len;
    for (;;) {
        int t = client_recv_pkg(c, pkg, sizeof pkg, &len, 10000);
        if (t != 3 && t != 4)
            fprintf(stderr, "  entry of %s: package type %d\n", uid, t);
        ASSERT(t == 3 || t == 4);
        if (t == 4 && (pkg[0] >> 1 & 0x07) == 2) {
            snprintf(out, sizeof out, "%.*s", (int)(len - 2), (char *)pkg + 2);
            if (strncmp(out, "{\"code\":200", 11) != 0) {
                fprintf(stderr, "  entry of %s into %s answered %s\n", uid, area, out);
                ASSERT(false);
            }
            return;
        }
    }
}

/* A little play: a counter on the player and a call to another area (other worker). */
static void
play(client *c, const char *other_area)
{
    char out[1024], body[128];
    ASSERT(client_request(c, 2, "t.incr", "{\"by\":2}", out, sizeof out));
    if (strncmp(out, "{\"code\":200,", 12) != 0 || strstr(out, "\"n\":2") == NULL) {
        fprintf(stderr, "  t.incr answered %s\n", out);
        ASSERT(false);
    }
    snprintf(body, sizeof body, "{\"to\":\"%s\",\"body\":{\"k\":1}}", other_area);
    ASSERT(client_request(c, 3, "t.call", body, out, sizeof out));
    if (strstr(out, "\"status\":\"OK\"") == NULL) {
        fprintf(stderr, "  t.call answered %s\n", out);
        ASSERT(false);
    }
}

/* Requests pipelined without reading the answers: incr, a call, a slow call. */
static bool
send_burst(client *c, int n)
{
    static const char *const routes[] = {"t.incr", "t.call", "t.echo", "t.info"};
    static const char *const bodies[] = {"{}", "{\"to\":\"t-2\",\"body\":{\"z\":[1,2,3]}}",
                                         "{\"echo\":\"hello\"}", "{}"};
    uint8_t msg[256];
    for (int i = 0; i < n; i++) {
        size_t k = raw_request(msg, (uint32_t)(10 + i), routes[i % 4], bodies[i % 4]);
        if (!client_send_pkg(c, 4, msg, k))
            return false;
    }
    return true;
}

/* The node still serves: uid enters t-1 and finds itself its only player (every
 * player before it left); then the node stops (ASan: LeakSanitizer at its exit). */
static void
expect_alone_then_stop(test_node *n, const char *uid)
{
    client c = {0};
    ASSERT(client_open(&c, n->port, false));
    enter(&c, uid, "t-1", NULL);
    char out[512];
    ASSERT(client_request(&c, 2, "t.info", "{}", out, sizeof out));
    ASSERT(strstr(out, "\"players\":1,") != NULL);
    client_close(&c, false);
    client_free(&c);
    node_stop(n);
}

/* ---- regressions: a reset right after the message ---------------------------------------- */

/* Enough connections that a leak shows in the Release figures and LeakSanitizer; fewer
 * under the sanitizers, which are slower and check every block anyway. */
static int
rounds(int release, int sanitizer)
{
    return sanitized() ? sanitizer : release;
}

/* Resident growth over `conns` connections, scaled to 10,000, checked in Release. */
static void
check_growth(const char *what, size_t before, size_t after, int conns)
{
    double per10k = after > before ? (double)(after - before) * 10000.0 / conns : 0.0;
    printf("# %s: %d connections, RSS %.1f -> %.1f MB, growth %.2f MB per 10,000%s\n", what,
           conns, before / 1048576.0, after / 1048576.0, per10k / 1048576.0,
           sanitized() ? " (sanitized build: not checked; under ASan, LeakSanitizer checks at the node's exit)" : "");
    fflush(stdout);
    if (!sanitized())
        ASSERT(per10k <= CHURN_GROWTH_MAX_PER_10K);
}

/* gate.entry with a 30 KB body, then a reset before the answer: the uid's binding comes
 * back to a session that is gone, with the parsed body attached. */
TEST(entry_then_reset_leaks_nothing)
{
    test_node n;
    start_game(&n);
    int base_fds = node_fds(&n);
    client c = {0};
    /* Warm-up: the allocator's arenas and the node's tables reach their size. */
    int warm = rounds(300, 50), total = rounds(2000, 300);
    size_t rss0 = 0;
    for (int i = 0; i < warm + total; i++) {
        if (i == warm) {
            ASSERT_EQ(wait_fds(&n, base_fds, 10000), base_fds);
            rss0 = node_rss(&n);
        }
        char uid[32];
        snprintf(uid, sizeof uid, "er-%d", i);
        ASSERT(client_open(&c, n.port, i % 4 == 3));
        ASSERT(send_entry(&c, 1, uid, i % 2 ? "t-1" : "t-2", NULL, 30000));
        client_close(&c, true);
    }
    ASSERT_EQ(wait_fds(&n, base_fds, 10000), base_fds);
    usleep(200 * 1000); /* the last bindings come back and are released */
    check_growth("entry then reset", rss0, node_rss(&n), total);
    /* The node still serves, and the uids of the reset sessions are free again. */
    ASSERT(client_open(&c, n.port, false));
    enter(&c, "er-5", "t-1", NULL);
    play(&c, "t-2");
    client_close(&c, false);
    client_free(&c);
    node_stop(&n); /* ASan: LeakSanitizer runs at the node's exit */
}

/* Logged in, then requests and calls pipelined and a reset before any answer: replies,
 * call answers and pushes meet a session that is gone. */
TEST(requests_then_reset_leak_nothing)
{
    test_node n;
    start_game(&n);
    int base_fds = node_fds(&n);
    client c = {0};
    int total = rounds(1000, 200);
    for (int i = 0; i < total; i++) {
        char uid[32];
        snprintf(uid, sizeof uid, "rr-%d", i);
        ASSERT(client_open(&c, n.port, i % 3 == 2));
        enter(&c, uid, i % 2 ? "t-1" : "t-2", NULL);
        ASSERT(send_burst(&c, 12));
        client_close(&c, true);
    }
    ASSERT_EQ(wait_fds(&n, base_fds, 10000), base_fds);
    ASSERT(client_open(&c, n.port, false));
    enter(&c, "rr-1", "t-1", NULL);
    play(&c, "t-2");
    client_close(&c, false);
    client_free(&c);
    node_stop(&n);
}

/* A move to an area on the other worker, requests behind it, and a reset: the moving
 * player, its held messages and the old area's forward meet a session that is gone. */
TEST(move_then_reset_leaks_nothing)
{
    test_node n;
    start_game(&n);
    int base_fds = node_fds(&n);
    client c = {0};
    int total = rounds(1000, 200);
    uint8_t msg[256];
    for (int i = 0; i < total; i++) {
        char uid[32];
        snprintf(uid, sizeof uid, "mr-%d", i);
        const char *from = i % 2 ? "t-1" : "t-2", *to = i % 2 ? "t-2" : "t-1";
        ASSERT(client_open(&c, n.port, i % 3 == 2));
        enter(&c, uid, from, NULL);
        char body[64];
        snprintf(body, sizeof body, "{\"to\":\"%s\"}", to);
        if (i % 2) {
            /* Half of them wait for the move's answer: the requests that follow reach
             * the new area directly and are held until the fence. */
            char out[512];
            ASSERT(client_request(&c, 5, "t.move", body, out, sizeof out));
            ASSERT(strncmp(out, "{\"code\":200", 11) == 0);
        } else {
            size_t k = raw_request(msg, 5, "t.move", body);
            ASSERT(client_send_pkg(&c, 4, msg, k));
        }
        ASSERT(send_burst(&c, 8));
        client_close(&c, true);
    }
    ASSERT_EQ(wait_fds(&n, base_fds, 10000), base_fds);
    client_free(&c);
    /* Every player left both areas. */
    expect_alone_then_stop(&n, "mr-1");
}

/* ---- churn ------------------------------------------------------------------------------- */

/* The ways a connection ends. */
enum {
    WAY_CLEAN,         /* logged in, played, closed with a FIN */
    WAY_RESET,         /* logged in, played, reset */
    WAY_MID_PACKAGE,   /* logged in, played, then half a package and a close */
    WAY_NO_ACK,        /* handshake sent, never acknowledged: reset */
    WAY_DURING_ENTRY,  /* gate.entry with a body, reset before the answer */
    WAY_BURST_RESET,   /* requests and calls in flight, reset */
    WAY_MOVE_RESET,    /* a move and requests in flight, reset */
    WAY_WS_CLOSE,      /* WebSocket: logged in, played, close frame and its answer */
    WAY_WS_RESET,      /* WebSocket: logged in, requests in flight, reset */
    WAY_HALF_UPGRADE,  /* half an HTTP upgrade head, reset */
    WAY_SILENT,        /* connected, sent nothing, closed */
    WAY_FLEETING_AREA, /* entered an area of its own (destroyed 1 ms after it empties) */
    WAY_DUPLICATE,     /* a second login with the same uid kicks the first */
    WAY_COUNT,
};

static const char *const way_names[WAY_COUNT] = {
    "clean", "reset", "mid-package", "no-ack", "during-entry", "burst-reset", "move-reset",
    "ws-close", "ws-reset", "half-upgrade", "silent", "fleeting-area", "duplicate",
};

#define CHURN_THREADS 6

typedef struct churn {
    int port;
    uint64_t until_ms;
    atomic_int connections;
    atomic_int by_way[WAY_COUNT];
} churn;

typedef struct churn_thread {
    churn *ch;
    int index;
    pthread_t thread;
} churn_thread;

/* One connection that ends in `way`; returns the connections it opened. */
static int
churn_one(churn *ch, int way, int index, unsigned seq)
{
    client c = {0};
    char uid[48], area[48], out[1024];
    snprintf(uid, sizeof uid, "c%d-%u", index, seq);
    const char *home = seq % 2 ? "t-1" : "t-2", *away = seq % 2 ? "t-2" : "t-1";
    int opened = 1;
    switch (way) {
    case WAY_CLEAN:
    case WAY_RESET:
    case WAY_MID_PACKAGE:
        ASSERT(client_open(&c, ch->port, false));
        enter(&c, uid, home, NULL);
        play(&c, away);
        if (way == WAY_MID_PACKAGE) {
            uint8_t msg[64];
            size_t k = raw_request(msg, 9, "t.incr", "{}");
            uint8_t h[4] = {4, 0, 0, (uint8_t)k};
            ASSERT(raw_send(c.fd, h, 4) && raw_send(c.fd, msg, k / 2));
        }
        client_close(&c, way == WAY_RESET);
        break;
    case WAY_NO_ACK: {
        c.fd = raw_connect(ch->port);
        ASSERT(c.fd >= 0);
        static const char hs[] = "{\"sys\":{\"type\":\"churn\",\"version\":\"0.0.1\"}}";
        ASSERT(raw_send_pkg(c.fd, 1, hs, strlen(hs)));
        if (seq % 2) {
            uint8_t body[8192];
            size_t len;
            ASSERT_EQ(raw_recv_pkg(c.fd, body, sizeof body, &len, 10000), 1);
        }
        client_close(&c, true);
        break;
    }
    case WAY_DURING_ENTRY:
        ASSERT(client_open(&c, ch->port, seq % 2));
        ASSERT(send_entry(&c, 1, uid, home, NULL, 1000 + seq % 8000));
        client_close(&c, true);
        break;
    case WAY_BURST_RESET:
    case WAY_WS_RESET:
        ASSERT(client_open(&c, ch->port, way == WAY_WS_RESET));
        enter(&c, uid, home, NULL);
        ASSERT(send_burst(&c, 10));
        client_close(&c, true);
        break;
    case WAY_MOVE_RESET: {
        ASSERT(client_open(&c, ch->port, seq % 2));
        enter(&c, uid, home, NULL);
        char body[64];
        snprintf(body, sizeof body, "{\"to\":\"%s\"}", away);
        ASSERT(client_request(&c, 4, "t.move", body, out, sizeof out));
        ASSERT(send_burst(&c, 6));
        client_close(&c, true);
        break;
    }
    case WAY_WS_CLOSE: {
        ASSERT(client_open(&c, ch->port, true));
        enter(&c, uid, home, NULL);
        play(&c, away);
        uint8_t code[2] = {0x03, 0xe8}; /* 1000 */
        ASSERT(ws_send_frame(c.fd, 8, true, true, code, 2));
        /* The node answers the close frame and ends the stream. */
        uint8_t buf[4096];
        size_t len;
        int op;
        while ((op = ws_recv_frame(c.fd, buf, sizeof buf, &len, 10000)) == 2)
            ;
        ASSERT_EQ(op, 8);
        ASSERT(raw_wait_closed(c.fd, 10000));
        client_close(&c, false);
        break;
    }
    case WAY_HALF_UPGRADE: {
        c.fd = raw_connect(ch->port);
        ASSERT(c.fd >= 0);
        static const char head[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: web";
        ASSERT(raw_send(c.fd, head, sizeof head - 1));
        client_close(&c, true);
        break;
    }
    case WAY_SILENT:
        c.fd = raw_connect(ch->port);
        ASSERT(c.fd >= 0);
        client_close(&c, false);
        break;
    case WAY_FLEETING_AREA:
        snprintf(area, sizeof area, "q-%d-%u", index, seq);
        ASSERT(client_open(&c, ch->port, false));
        enter(&c, uid, area, "q");
        ASSERT(client_request(&c, 2, "q.info", "{}", out, sizeof out));
        ASSERT(strstr(out, "\"players\":1,") != NULL);
        client_close(&c, seq % 2);
        break;
    case WAY_DUPLICATE: {
        client d = {0};
        ASSERT(client_open(&c, ch->port, false));
        enter(&c, uid, home, NULL);
        ASSERT(client_open(&d, ch->port, seq % 2));
        enter(&d, uid, away, NULL);
        /* The first session is kicked; the player is the second's now. */
        uint8_t pkg[4096];
        size_t len;
        int type;
        while ((type = client_recv_pkg(&c, pkg, sizeof pkg, &len, 10000)) == 3 || type == 4)
            ;
        ASSERT_EQ(type, 5);
        ASSERT_STR((char *)pkg, "{\"reason\":\"duplicate login\"}");
        play(&d, home);
        client_close(&c, true);
        client_close(&d, seq % 3 == 0);
        client_free(&d);
        opened = 2;
        break;
    }
    }
    client_free(&c);
    return opened;
}

static void *
churn_main(void *arg)
{
    churn_thread *t = arg;
    churn *ch = t->ch;
    for (unsigned seq = 0; now_ms() < ch->until_ms; seq++) {
        int way = (int)((seq + (unsigned)t->index * 5) % WAY_COUNT);
        int opened = churn_one(ch, way, t->index, seq);
        atomic_fetch_add(&ch->connections, opened);
        atomic_fetch_add(&ch->by_way[way], 1);
    }
    return NULL;
}

/* Runs the churn for ms from CHURN_THREADS threads; returns the connections opened. */
static int
churn_for(churn *ch, int ms)
{
    atomic_store(&ch->connections, 0);
    for (int i = 0; i < WAY_COUNT; i++)
        atomic_store(&ch->by_way[i], 0);
    ch->until_ms = now_ms() + (uint64_t)ms;
    churn_thread t[CHURN_THREADS];
    for (int i = 0; i < CHURN_THREADS; i++) {
        t[i] = (churn_thread){.ch = ch, .index = i};
        ASSERT(pthread_create(&t[i].thread, NULL, churn_main, &t[i]) == 0);
    }
    for (int i = 0; i < CHURN_THREADS; i++)
        pthread_join(t[i].thread, NULL);
    return atomic_load(&ch->connections);
}

/* About 20 s: a warm-up, then the measured churn. ATOLL_CHURN_SECONDS sets the second. */
TEST(churn_leaves_nothing_behind)
{
    test_node n;
    start_game(&n);
    churn ch = {.port = n.port};
    int base_fds = node_fds(&n);
    const char *env = getenv("ATOLL_CHURN_SECONDS");
    int seconds = env ? atoi(env) : 15;
    ASSERT(seconds > 0);

    int warm = churn_for(&ch, 4000);
    ASSERT_EQ(wait_fds(&n, base_fds, 10000), base_fds);
    usleep(300 * 1000); /* fleeting areas pass their grace */
    size_t rss0 = node_rss(&n);

    uint64_t t0 = now_ms();
    int conns = churn_for(&ch, seconds * 1000);
    double elapsed = (double)(now_ms() - t0) / 1000.0;
    int fds = wait_fds(&n, base_fds, 10000);
    usleep(300 * 1000);
    size_t rss1 = node_rss(&n);

    printf("# churn: %d connections in %.1f s (%.0f/s) after a warm-up of %d; %d client "
           "threads\n", conns, elapsed, conns / elapsed, warm, CHURN_THREADS);
    printf("#   by way of leaving:");
    for (int i = 0; i < WAY_COUNT; i++)
        printf(" %s %d%s", way_names[i], atomic_load(&ch.by_way[i]), i + 1 < WAY_COUNT ? "," : "");
    printf("\n#   node file descriptors: baseline %d, after %d; peak RSS %.1f MB\n", base_fds, fds,
           node_peak_rss(&n) / 1048576.0);
    fflush(stdout);
    for (int i = 0; i < WAY_COUNT; i++)
        ASSERT(atomic_load(&ch.by_way[i]) > 0);
    ASSERT_EQ(fds, base_fds);
    check_growth("churn", rss0, rss1, conns);

    /* Still serving, with nobody left in the areas the churn used. */
    expect_alone_then_stop(&n, "after-churn");
}

TEST_MAIN(entry_then_reset_leaks_nothing, requests_then_reset_leak_nothing,
          move_then_reset_leaks_nothing, churn_leaves_nothing_behind)
