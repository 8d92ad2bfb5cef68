/* client_test.c -- the atoll client library (client/) against a scripted fake server.
 *
 * The fake server is a plain-socket thread on 127.0.0.1 that speaks raw bytes: it
 * accepts one connection, performs the WebSocket upgrade when asked (with the
 * server-side helpers of src/net/ws.h, whose reader rejects unmasked client frames),
 * and runs a per-test script that reads packages and writes exact bytes. On
 * WebSocket every client message must hold exactly one package (what a Pomelo server
 * requires); the reader asserts that. Assertions in the server thread end the test
 * process like any other. Every socket read has a 5 s timeout and every client loop
 * run has a guard timer, so nothing here can hang; the harness adds a 60 s alarm.
 *
 * Most scenarios run over both transports (tcp_* and ws_* tests from one function).
 */
#include "net/ws.h"
#include "proto/proto.h"
#include "test.h"

#include <atollc/atollc.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/socket.h>

/* ---- fake server ---------------------------------------------------------------- */

typedef struct rpkg {
    int type;
    uint8_t body[4096];
    size_t len;
} rpkg;

typedef struct fake fake;
typedef void (*fake_script)(fake *f);

struct fake {
    int lfd;
    int fd;
    int port;
    bool ws;
    fake_script script;
    void *arg;
    pthread_t thread;
    uint8_t buf[65536];
    size_t len;
    atoll__ws_reader rd;
    int nrecv;            /* recv calls that returned bytes */
    uint8_t masks[16][4]; /* mask keys of the client's frames, in order */
    int nmasks;
    char handshake[1024]; /* the client's handshake body */
    char pong[128];       /* payload of the last pong */
    bool got_pong;
};

static void
fake_recv(fake *f)
{
    ASSERT(f->len < sizeof f->buf);
    ssize_t n = recv(f->fd, f->buf + f->len, sizeof f->buf - f->len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        test_fail_(__FILE__, __LINE__, "fake server: read timed out");
    if (n < 0 && errno == ECONNRESET)
        n = 0; /* a client closing with unread bytes (a heartbeat) resets: a close too */
    ASSERT(n >= 0);
    if (n > 0)
        f->nrecv++;
    f->len += (size_t)n;
    if (n == 0)
        f->len = SIZE_MAX; /* marks EOF; callers check */
}

static void
fake_consume(fake *f, size_t n)
{
    memmove(f->buf, f->buf + n, f->len - n);
    f->len -= n;
}

static void
rpkg_set(rpkg *out, const atoll__pkg *pkg)
{
    out->type = pkg->type;
    out->len = pkg->len;
    ASSERT(pkg->len <= sizeof out->body);
    if (pkg->len)
        memcpy(out->body, pkg->body, pkg->len);
}

/* Reads the next package; returns false on EOF or a WebSocket close. */
static bool
fake_read(fake *f, rpkg *out)
{
    for (;;) {
        if (f->ws) {
            atoll__ws_event ev;
            ssize_t r = atoll__ws_reader_next(&f->rd, f->buf, f->len, &ev);
            ASSERT(r >= 0);
            if (r > 0) {
                /* The key sits after the length bytes; unmasking leaves the header. */
                size_t len7 = f->buf[1] & 0x7f;
                size_t at = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
                ASSERT(f->buf[1] & 0x80);
                if (f->nmasks < 16)
                    memcpy(f->masks[f->nmasks++], f->buf + at, 4);
                if (ev.type == ATOLL_WS_EV_CLOSE) {
                    fake_consume(f, (size_t)r);
                    return false;
                }
                if (ev.type == ATOLL_WS_EV_PONG) {
                    ASSERT(ev.len < sizeof f->pong);
                    memcpy(f->pong, ev.data, ev.len);
                    f->pong[ev.len] = '\0';
                    f->got_pong = true;
                    fake_consume(f, (size_t)r);
                    continue;
                }
                ASSERT_EQ(ev.type, ATOLL_WS_EV_MESSAGE);
                atoll__pkg pkg;
                ssize_t pr = atoll__pkg_parse(ev.data, ev.len, 1 << 20, &pkg);
                ASSERT_EQ(pr, (ssize_t)ev.len); /* exactly one package per message */
                rpkg_set(out, &pkg);
                fake_consume(f, (size_t)r);
                return true;
            }
        } else if (f->len > 0) {
            atoll__pkg pkg;
            ssize_t r = atoll__pkg_parse(f->buf, f->len, 1 << 20, &pkg);
            ASSERT(r >= 0);
            if (r > 0) {
                rpkg_set(out, &pkg);
                fake_consume(f, (size_t)r);
                return true;
            }
        }
        size_t had = f->len;
        fake_recv(f);
        if (f->len == SIZE_MAX) {
            f->len = had;
            return false;
        }
    }
}

static void
send_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        ASSERT(w > 0);
        b += w;
        n -= (size_t)w;
    }
}

/* Sends bytes as one write (TCP) or one binary message (WebSocket). */
static void
fake_send(fake *f, const void *p, size_t n)
{
    if (!f->ws) {
        send_all(f->fd, p, n);
        return;
    }
    uint8_t *frame = malloc(n + 14);
    ASSERT(frame != NULL);
    size_t hl = atoll__ws_frame_header(frame, ATOLL_WS_OP_BINARY, true, n, NULL);
    memcpy(frame + hl, p, n);
    send_all(f->fd, frame, hl + n);
    free(frame);
}

/* Sends the bytes of b (as fake_send does) and frees it. */
static void
fake_send_buf(fake *f, atoll__buf *b)
{
    fake_send(f, atoll__buf_data(b), b->len);
    atoll__buf_fini(b);
}

static void
fake_send_hex(fake *f, const char *hex)
{
    uint8_t b[2048];
    fake_send(f, b, test_hex(hex, b, sizeof b));
}

static void
fake_send_pkg(fake *f, int type, const char *body)
{
    atoll__buf b = ATOLL__BUF_INIT;
    atoll__pkg_put(&b, type, body, body ? strlen(body) : 0);
    fake_send_buf(f, &b);
}

static void
fake_send_response(fake *f, uint32_t id, const char *body)
{
    atoll__buf b = ATOLL__BUF_INIT;
    atoll__msg_put_response(&b, id, body, strlen(body));
    fake_send_buf(f, &b);
}

/* Reads the handshake (kept in f->handshake), answers with reply, reads the ack and,
 * like Pomelo, sends one heartbeat when heartbeat is set. */
static void
fake_handshake(fake *f, const char *reply, bool heartbeat)
{
    rpkg p;
    ASSERT(fake_read(f, &p));
    ASSERT_EQ(p.type, ATOLL_PKG_HANDSHAKE);
    ASSERT(p.len < sizeof f->handshake);
    memcpy(f->handshake, p.body, p.len);
    f->handshake[p.len] = '\0';
    fake_send_pkg(f, ATOLL_PKG_HANDSHAKE, reply);
    ASSERT(fake_read(f, &p));
    ASSERT_EQ(p.type, ATOLL_PKG_HANDSHAKE_ACK);
    ASSERT_EQ(p.len, 0);
    if (heartbeat)
        fake_send_hex(f, "03 00 00 00");
}

/* Reads until the client closes, ignoring packages. */
static void
fake_expect_close(fake *f)
{
    rpkg p;
    while (fake_read(f, &p))
        ;
}

/* Helpers below that check something take the caller's line (their capitalised
 * macros pass __FILE__ and __LINE__), so a failure names the test's own line. */
#include <stdarg.h>

static void
fail_at_(const char *file, int line, const char *fmt, ...)
{
    char m[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    test_fail_(file, line, m);
}

/* Reads n packages (the client's requests) without looking at them. */
static void
fake_skip_(fake *f, int n, const char *file, int line)
{
    rpkg p;
    for (int i = 0; i < n; i++)
        if (!fake_read(f, &p))
            fail_at_(file, line, "fake server: connection closed before package %d of %d",
                     i + 1, n);
}
#define FAKE_SKIP(f, n) fake_skip_((f), (n), __FILE__, __LINE__)

/* Reads the next package into *p and checks that its body is the given hex bytes. */
static void
fake_expect_body_(fake *f, rpkg *p, const char *hex, const char *file, int line)
{
    uint8_t want[256];
    size_t n = test_hex(hex, want, sizeof want);
    if (!fake_read(f, p))
        fail_at_(file, line, "fake server: connection closed, want a package");
    if (p->len != n)
        fail_at_(file, line, "package body: %zu bytes, want %zu", p->len, n);
    if (memcmp(p->body, want, n) != 0)
        fail_at_(file, line, "package body differs from %s", hex);
}
#define FAKE_EXPECT_BODY(f, p, hex) fake_expect_body_((f), (p), (hex), __FILE__, __LINE__)

static void
fake_upgrade(fake *f)
{
    for (;;) {
        atoll__http_upgrade up;
        ssize_t r = atoll__http_upgrade_parse(f->buf, f->len, &up);
        ASSERT(r >= 0);
        if (r > 0) {
            ASSERT(f->len >= 16 && memcmp(f->buf, "GET / HTTP/1.1\r\n", 16) == 0);
            fake_consume(f, (size_t)r);
            atoll__buf b = ATOLL__BUF_INIT;
            atoll__http_put_101(&b, &up);
            send_all(f->fd, atoll__buf_data(&b), b.len);
            atoll__buf_fini(&b);
            return;
        }
        fake_recv(f);
        ASSERT(f->len != SIZE_MAX);
    }
}

static void *
fake_main(void *arg)
{
    fake *f = arg;
    struct pollfd pfd = {f->lfd, POLLIN, 0};
    ASSERT_EQ(poll(&pfd, 1, 5000), 1);
    f->fd = accept(f->lfd, NULL, NULL);
    ASSERT(f->fd >= 0);
    struct timeval tv = {5, 0};
    setsockopt(f->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (f->ws) {
        fake_upgrade(f);
        atoll__ws_reader_init(&f->rd, true, 1 << 20);
    }
    f->script(f);
    close(f->fd);
    return NULL;
}

static int
listen_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT(fd >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ASSERT_EQ(listen(fd, 8), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    return fd;
}

static fake *
fake_start(bool ws, fake_script script, void *arg)
{
    fake *f = calloc(1, sizeof *f);
    ASSERT(f != NULL);
    f->ws = ws;
    f->script = script;
    f->arg = arg;
    f->fd = -1;
    f->lfd = listen_loopback(&f->port);
    ASSERT_EQ(pthread_create(&f->thread, NULL, fake_main, f), 0);
    return f;
}

static void
fake_join(fake *f)
{
    pthread_join(f->thread, NULL);
    close(f->lfd);
    if (f->ws)
        atoll__ws_reader_fini(&f->rd);
    free(f);
}

static atollc_opts
opts_for(const fake *f)
{
    atollc_opts o;
    atollc_opts_init(&o);
    o.transport = f->ws ? ATOLLC_WS : ATOLLC_TCP;
    o.port = f->port;
    o.timeout_ms = 3000;
    return o;
}

#define REPLY_PLAIN "{\"code\":200,\"sys\":{\"heartbeat\":3}}"
#define REPLY_DICT                                                                         \
    "{\"code\":200,\"sys\":{\"heartbeat\":3,\"dict\":{\"echo.echo\":1,\"area.move\":2,"      \
    "\"onPush\":7},\"routeToCode\":{\"echo.echo\":1,\"area.move\":2,\"onPush\":7},"         \
    "\"codeToRoute\":{\"1\":\"echo.echo\",\"2\":\"area.move\",\"7\":\"onPush\"},"           \
    "\"dictVersion\":\"v1\",\"useDict\":true}}"

/* ---- async harness ------------------------------------------------------------------- */

typedef struct actx {
    uv_loop_t loop;
    atollc_client *c;
    bool connect_done;
    int connect_status;
    bool closed;
    int close_status;
    int nresp;
    int resp_status[16];
    int resp_tag[16];  /* which request each response answered, in arrival order */
    char resp_body[16][128];
    int npush;
    char push_route[8][64];
    char push_body[8][128];
    bool close_in_response; /* atollc_close from inside the first response callback */
    int resp_at_close;      /* responses seen when the close callback ran */
} actx;

typedef struct req_tag {
    actx *a;
    int tag;
} req_tag;

static void
on_guard(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* Runs the loop until *flag or ms pass. */
static void
run_until(uv_loop_t *loop, const bool *flag, int ms)
{
    bool fired = false;
    uv_timer_t guard;
    uv_timer_init(loop, &guard);
    guard.data = &fired;
    uv_timer_start(&guard, on_guard, (uint64_t)ms, 0);
    while (!*flag && !fired)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static void
a_on_connect(atollc_client *c, int status, void *ud)
{
    actx *a = ud;
    a->connect_done = true;
    a->connect_status = status;
}

static void
a_on_close(atollc_client *c, int status, void *ud)
{
    actx *a = ud;
    a->closed = true;
    a->close_status = status;
    a->resp_at_close = a->nresp;
    atollc_client_free(c); /* allowed from the close callback */
    a->c = NULL;
}

static void
a_on_response(atollc_client *c, int status, const char *body, size_t len, void *ud)
{
    req_tag *t = ud;
    actx *a = t->a;
    ASSERT(a->nresp < 16);
    int i = a->nresp++;
    a->resp_status[i] = status;
    a->resp_tag[i] = t->tag;
    if (status == ATOLLC_OK) {
        ASSERT(len < sizeof a->resp_body[i]);
        memcpy(a->resp_body[i], body, len);
        a->resp_body[i][len] = '\0';
    } else {
        ASSERT(body == NULL);
    }
    if (a->close_in_response && i == 0) {
        atollc_close(c);
        atollc_close(c); /* twice: harmless */
        ASSERT(atollc_request(c, "x.y", "{}", 2, a_on_response, t) < 0);
    }
}

static void
a_on_push(atollc_client *c, const char *route, const char *body, size_t len, void *ud)
{
    actx *a = ud;
    ASSERT(a->npush < 8);
    int i = a->npush++;
    snprintf(a->push_route[i], sizeof a->push_route[i], "%s", route);
    ASSERT(len < sizeof a->push_body[i]);
    memcpy(a->push_body[i], body, len);
    a->push_body[i][len] = '\0';
}

static void
a_start(actx *a, const atollc_opts *o)
{
    memset(a, 0, sizeof *a);
    ASSERT_EQ(uv_loop_init(&a->loop), 0);
    ASSERT_EQ(atollc_client_new(&a->loop, o, &a->c), ATOLLC_OK);
    atollc_on_close(a->c, a_on_close, a);
    atollc_on_push(a->c, a_on_push, a);
    ASSERT_EQ(atollc_connect(a->c, a_on_connect, a), ATOLLC_OK);
}

/* Closes the client if needed and checks that no handle is left in the loop. */
static void
a_finish(actx *a)
{
    if (a->c != NULL && !a->closed)
        atollc_close(a->c);
    run_until(&a->loop, &a->closed, 5000);
    ASSERT(a->closed);
    ASSERT_EQ(uv_loop_close(&a->loop), 0);
}

/* a_start, then runs the loop until the connect callback, which must report success. */
static void
a_connect_(actx *a, const atollc_opts *o, const char *file, int line)
{
    a_start(a, o);
    run_until(&a->loop, &a->connect_done, 5000);
    if (a->connect_status != ATOLLC_OK)
        fail_at_(file, line, "connect status %d", a->connect_status);
}
#define A_CONNECT(a, o) a_connect_((a), (o), __FILE__, __LINE__)

/* Sends echo.echo {} whose response a_on_response records under t->tag. */
static void
a_request_echo_(actx *a, req_tag *t, const char *file, int line)
{
    int rc = atollc_request(a->c, "echo.echo", "{}", 2, a_on_response, t);
    if (rc != ATOLLC_OK)
        fail_at_(file, line, "atollc_request: status %d", rc);
}
#define A_REQUEST_ECHO(a, t) a_request_echo_((a), (t), __FILE__, __LINE__)

static atollc_sync *
sync_connect_(const atollc_opts *o, const char *file, int line)
{
    atollc_sync *s = atollc_sync_connect(o, NULL);
    if (s == NULL)
        fail_at_(file, line, "atollc_sync_connect failed");
    return s;
}
#define SYNC_CONNECT(o) sync_connect_((o), __FILE__, __LINE__)

/* A request within 3 s that must succeed with exactly want. */
static void
expect_response_(atollc_sync *s, const char *route, const char *body, const char *want,
                 const char *file, int line)
{
    char *resp = NULL;
    int rc = atollc_sync_request(s, route, body, &resp, 3000);
    if (rc != ATOLLC_OK)
        fail_at_(file, line, "request %s: status %d", route, rc);
    if (resp == NULL || strcmp(resp, want) != 0)
        fail_at_(file, line, "request %s: got \"%.400s\", want \"%.400s\"", route,
                 resp ? resp : "(null)", want);
    free(resp);
}
#define EXPECT_RESPONSE(s, route, body, want)                                              \
    expect_response_((s), (route), (body), (want), __FILE__, __LINE__)

/* The next push within 3 s must be this route and body. */
static void
expect_push_(atollc_sync *s, const char *want_route, const char *want_body, const char *file,
             int line)
{
    char *route = NULL, *body = NULL;
    int rc = atollc_sync_wait_push(s, &route, &body, 3000);
    if (rc != ATOLLC_OK)
        fail_at_(file, line, "wait_push: status %d", rc);
    if (route == NULL || strcmp(route, want_route) != 0)
        fail_at_(file, line, "push route: got \"%s\", want \"%s\"", route ? route : "(null)",
                 want_route);
    if (body == NULL || strcmp(body, want_body) != 0)
        fail_at_(file, line, "push body: got \"%.400s\", want \"%.400s\"",
                 body ? body : "(null)", want_body);
    free(route);
    free(body);
}
#define EXPECT_PUSH(s, route, body) expect_push_((s), (route), (body), __FILE__, __LINE__)

#define BOTH(name)                                                                         \
    TEST(tcp_##name) { name(false); }                                                       \
    TEST(ws_##name) { name(true); }

/* ---- handshake ------------------------------------------------------------------------ */

static void
script_handshake(fake *f)
{
    fake_handshake(f, REPLY_PLAIN, true);
    ASSERT_STR(f->handshake, "{\"sys\":{\"type\":\"atollc\",\"version\":\"0.1.0\"},"
                             "\"user\":{\"token\":\"abc\"}}");
    fake_expect_close(f);
}

static void
handshake(bool ws)
{
    fake *f = fake_start(ws, script_handshake, NULL);
    atollc_opts o = opts_for(f);
    o.user_json = "{\"token\":\"abc\"}";
    int err = 1;
    atollc_sync *s = atollc_sync_connect(&o, &err);
    ASSERT(s != NULL);
    ASSERT_EQ(err, ATOLLC_OK);
    ASSERT(atollc_sync_is_open(s));
    ASSERT_EQ(atollc_heartbeat_interval(atollc_sync_client(s)), 3);
    ASSERT_EQ(atollc_route_code(atollc_sync_client(s), "echo.echo"), 0);
    atollc_sync_free(s);
    fake_join(f);
}
BOTH(handshake)

static void
script_handshake_nouser(fake *f)
{
    fake_handshake(f, "{\"code\":200,\"sys\":{}}", false);
    ASSERT_STR(f->handshake, "{\"sys\":{\"type\":\"atollc\",\"version\":\"0.1.0\"}}");
    fake_expect_close(f);
}

TEST(tcp_handshake_without_user)
{
    fake *f = fake_start(false, script_handshake_nouser, NULL);
    atollc_opts o = opts_for(f);
    atollc_sync *s = SYNC_CONNECT(&o);
    ASSERT_EQ(atollc_heartbeat_interval(atollc_sync_client(s)), 0);
    atollc_sync_free(s);
    fake_join(f);
}

TEST(bad_options)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    atollc_opts o;
    atollc_opts_init(&o);
    atollc_client *c = NULL;
    ASSERT_EQ(atollc_client_new(&loop, &o, &c), ATOLL_EINVAL); /* no port */
    o.port = 3010;
    o.host = "localhost"; /* numeric addresses only */
    ASSERT_EQ(atollc_client_new(&loop, &o, &c), ATOLL_EINVAL);
    o.host = "::1";
    o.user_json = "{not json";
    ASSERT_EQ(atollc_client_new(&loop, &o, &c), ATOLL_EINVAL);
    o.user_json = NULL;
    ASSERT_EQ(atollc_client_new(&loop, &o, &c), ATOLLC_OK);
    /* Not connected: requests fail at once, close is a no-op, free is allowed. */
    ASSERT_EQ(atollc_request(c, "a.b", "{}", 2, a_on_response, NULL), ATOLL_ECLOSED);
    ASSERT_EQ(atollc_notify(c, "a.b", "{}", 2), ATOLL_ECLOSED);
    ASSERT_EQ(atollc_pending(c), 0);
    atollc_close(c);
    atollc_client_free(c);
    ASSERT_EQ(uv_loop_close(&loop), 0);
}

/* ---- dictionary compression --------------------------------------------------------- */

static void
script_dict(fake *f)
{
    fake_handshake(f, REPLY_DICT, true);
    rpkg p;
    /* echo.echo has code 1: flag 01 (request, compressed), id 1, code 00 01. */
    FAKE_EXPECT_BODY(f, &p, "01 01 00 01 7b 22 61 22 3a 31 7d");
    ASSERT_EQ(p.type, ATOLL_PKG_DATA);
    fake_send_response(f, 1, "{\"a\":1}");
    /* A route outside the dictionary goes as a string: flag 00, id 2, len 0b. */
    FAKE_EXPECT_BODY(f, &p, "00 02 0b 6f 74 68 65 72 2e 72 6f 75 74 65 7b 7d");
    fake_send_response(f, 2, "{\"code\":500}");
    /* Notify area.move (code 2): flag 03, no id. */
    FAKE_EXPECT_BODY(f, &p, "03 00 02 7b 7d");
    /* send_raw: exactly the given bytes. */
    ASSERT(fake_read(f, &p));
    ASSERT_EQ(p.type, ATOLL_PKG_HEARTBEAT);
    fake_expect_close(f);
}

static void
dict(bool ws)
{
    fake *f = fake_start(ws, script_dict, NULL);
    atollc_opts o = opts_for(f);
    atollc_sync *s = SYNC_CONNECT(&o);
    atollc_client *c = atollc_sync_client(s);
    ASSERT_EQ(atollc_route_code(c, "echo.echo"), 1);
    ASSERT_EQ(atollc_route_code(c, "area.move"), 2);
    ASSERT_EQ(atollc_route_code(c, "onPush"), 7);
    ASSERT_EQ(atollc_route_code(c, "echo"), 0);
    EXPECT_RESPONSE(s, "echo.echo", "{\"a\":1}", "{\"a\":1}");
    EXPECT_RESPONSE(s, "other.route", "{}", "{\"code\":500}");
    ASSERT_EQ(atollc_sync_notify(s, "area.move", "{}"), ATOLLC_OK);
    uint8_t hb[4] = {3, 0, 0, 0};
    ASSERT_EQ(atollc_sync_send_raw(s, hb, sizeof hb), ATOLLC_OK);
    atollc_sync_free(s);
    fake_join(f);
}
BOTH(dict)

static void
script_nodict(fake *f)
{
    fake_handshake(f, REPLY_DICT, true);
    rpkg p;
    FAKE_EXPECT_BODY(f, &p, "00 01 09 65 63 68 6f 2e 65 63 68 6f 7b 7d");
    fake_send_response(f, 1, "{}");
    fake_expect_close(f);
}

TEST(tcp_use_dict_off)
{
    fake *f = fake_start(false, script_nodict, NULL);
    atollc_opts o = opts_for(f);
    o.use_dict = 0;
    atollc_sync *s = SYNC_CONNECT(&o);
    EXPECT_RESPONSE(s, "echo.echo", "{}", "{}");
    atollc_sync_free(s);
    fake_join(f);
}

/* ---- responses matched by id, pipelined output ------------------------------------------- */

static void
out_of_order_connect(atollc_client *c, int status, void *ud)
{
    req_tag *tags = ud;
    a_on_connect(c, status, tags[0].a);
    ASSERT_EQ(status, ATOLLC_OK);
    for (int i = 1; i <= 3; i++) {
        char body[16];
        int n = snprintf(body, sizeof body, "{\"n\":%d}", i);
        ASSERT_EQ(atollc_request(c, "echo.echo", body, (size_t)n, a_on_response, &tags[i]),
                  ATOLLC_OK);
    }
    ASSERT_EQ(atollc_pending(c), 3);
}

static void
script_out_of_order(fake *f)
{
    fake_handshake(f, REPLY_PLAIN, false);
    int recvs = f->nrecv;
    rpkg p;
    for (uint32_t id = 1; id <= 3; id++) {
        ASSERT(fake_read(f, &p));
        atoll__msg m;
        ASSERT_EQ(atoll__msg_decode(p.body, p.len, &m), ATOLL_OK);
        ASSERT_EQ(m.type, ATOLL_MSG_REQUEST);
        ASSERT_EQ(m.id, id);
    }
    /* The ack and the three requests were queued in one loop turn: one write. */
    ASSERT_EQ(f->nrecv, recvs);
    if (f->ws) {
        ASSERT(f->nmasks >= 4); /* handshake, ack, 3 requests: fresh key per frame */
        ASSERT(memcmp(f->masks[f->nmasks - 1], f->masks[f->nmasks - 2], 4) != 0);
    }
    fake_send_response(f, 3, "{\"n\":3}");
    fake_send_response(f, 1, "{\"n\":1}");
    fake_send_response(f, 2, "{\"n\":2}");
    fake_expect_close(f);
}

static void
out_of_order(bool ws)
{
    fake *f = fake_start(ws, script_out_of_order, NULL);
    atollc_opts o = opts_for(f);
    actx a;
    memset(&a, 0, sizeof a);
    req_tag tags[4] = {{&a, 0}, {&a, 1}, {&a, 2}, {&a, 3}};
    ASSERT_EQ(uv_loop_init(&a.loop), 0);
    ASSERT_EQ(atollc_client_new(&a.loop, &o, &a.c), ATOLLC_OK);
    atollc_on_close(a.c, a_on_close, &a);
    ASSERT_EQ(atollc_connect(a.c, out_of_order_connect, tags), ATOLLC_OK);
    for (int i = 0; i < 100 && a.nresp < 3 && !a.closed; i++)
        run_until(&a.loop, &a.closed, 50);
    ASSERT_EQ(a.nresp, 3);
    ASSERT_EQ(a.resp_tag[0], 3);
    ASSERT_EQ(a.resp_tag[1], 1);
    ASSERT_EQ(a.resp_tag[2], 2);
    for (int i = 0; i < 3; i++) {
        char want[16];
        snprintf(want, sizeof want, "{\"n\":%d}", a.resp_tag[i]);
        ASSERT_EQ(a.resp_status[i], ATOLLC_OK);
        ASSERT_STR(a.resp_body[i], want);
    }
    ASSERT_EQ(atollc_pending(a.c), 0);
    a_finish(&a);
    ASSERT_EQ(a.close_status, ATOLLC_OK);
    fake_join(f);
}
BOTH(out_of_order)

/* ---- many requests in flight, answered out of order --------------------------------------
 *
 * The client keeps 8 requests in flight for its first MANY_NARROW ids (its pending
 * table keeps its first 16 slots), then MANY_WINDOW: the table grows to 128 slots with
 * ids far past its old size inside, which must be placed again by the new size. Ids
 * run on to MANY_TOTAL, wrapping around the table many times. The fake server answers
 * in a shuffled order, and after MANY_NARROW holds every MANY_STICKY_EVERY-th id back
 * for about MANY_STICKY of those (320 ids, more than the table spans), so old and new
 * ids share probe runs, runs cross the end of the table, and removals shift entries
 * back across it. Each answer names the id it answers, and each callback checks that
 * it got its own. */

enum {
    MANY_TOTAL = 1500,
    MANY_NARROW = 300,
    MANY_WINDOW = 48,
    MANY_POOL = 16, /* the server answers once it holds this many (not sticky) */
    MANY_STICKY_EVERY = 16,
    MANY_STICKY = 20, /* sticky ids held back at most */
};

static struct {
    int sent, answered, wrong;
    bool done;
    int tags[MANY_TOTAL + 1]; /* tags[i] == i: the ud of request i */
    bool seen[MANY_TOTAL + 1];
    char first_wrong[200];
} many;

static void many_on_response(atollc_client *c, int status, const char *body, size_t len, void *ud);

/* Tops the client up to MANY_WINDOW requests in flight. */
static void
many_send(atollc_client *c)
{
    while (many.sent < MANY_TOTAL &&
           many.sent - many.answered < (many.sent < MANY_NARROW ? 8 : MANY_WINDOW)) {
        int id = ++many.sent;
        many.tags[id] = id;
        ASSERT_EQ(atollc_request(c, "echo.echo", "{}", 2, many_on_response, &many.tags[id]),
                  ATOLLC_OK);
    }
    ASSERT_EQ(atollc_pending(c), (size_t)(many.sent - many.answered));
}

static void
many_on_response(atollc_client *c, int status, const char *body, size_t len, void *ud)
{
    int id = *(const int *)ud;
    char want[32];
    int n = snprintf(want, sizeof want, "{\"id\":%d}", id);
    if (status != ATOLLC_OK || len != (size_t)n || memcmp(body, want, len) != 0 || many.seen[id]) {
        if (many.wrong++ == 0)
            snprintf(many.first_wrong, sizeof many.first_wrong,
                     "request %d: status %d, body \"%.*s\"%s", id, status,
                     status == ATOLLC_OK ? (int)len : 0, status == ATOLLC_OK ? body : "",
                     many.seen[id] ? " (answered twice)" : "");
    }
    many.seen[id] = true;
    if (++many.answered == MANY_TOTAL || status != ATOLLC_OK) {
        many.done = true;
        return;
    }
    many_send(c);
}

static void
fake_answer_id(fake *f, uint32_t id)
{
    char body[32];
    snprintf(body, sizeof body, "{\"id\":%u}", id);
    fake_send_response(f, id, body);
}

static void
script_many(fake *f)
{
    fake_handshake(f, REPLY_PLAIN, false);
    uint32_t pool[MANY_WINDOW], sticky[MANY_STICKY];
    int npool = 0, nsticky = 0, received = 0, answered = 0;
    uint64_t rng = 0x9e3779b97f4a7c15ull; /* fixed: the same shuffle every run */
    while (answered < MANY_TOTAL) {
        /* Read while holding few; the client has more in flight than we hold, so a
         * read always finds a request (or all were read). */
        if (received < MANY_TOTAL && npool < (received < MANY_NARROW ? 4 : MANY_POOL)) {
            rpkg p;
            ASSERT(fake_read(f, &p));
            atoll__msg m;
            ASSERT_EQ(atoll__msg_decode(p.body, p.len, &m), ATOLL_OK);
            ASSERT_EQ(m.type, ATOLL_MSG_REQUEST);
            ASSERT_EQ(m.id, (uint32_t)received + 1);
            received++;
            if (m.id <= MANY_NARROW || m.id % MANY_STICKY_EVERY != 0) {
                pool[npool++] = m.id;
                continue;
            }
            if (nsticky == MANY_STICKY) { /* the oldest goes */
                fake_answer_id(f, sticky[0]);
                answered++;
                memmove(sticky, sticky + 1, (MANY_STICKY - 1) * sizeof *sticky);
                nsticky--;
            }
            sticky[nsticky++] = m.id;
            continue;
        }
        uint32_t id;
        if (npool > 0) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            int k = (int)(rng % (uint64_t)npool);
            id = pool[k];
            pool[k] = pool[--npool];
        } else {
            id = sticky[--nsticky]; /* all read: the rest, newest first */
        }
        fake_answer_id(f, id);
        answered++;
    }
    fake_expect_close(f);
}

static void
many_in_flight_out_of_order(bool ws)
{
    fake *f = fake_start(ws, script_many, NULL);
    atollc_opts o = opts_for(f);
    actx a;
    A_CONNECT(&a, &o);
    memset(&many, 0, sizeof many);
    many_send(a.c);
    /* Until all are answered, or nothing more came for 2 s (answers lost in the table:
     * told here, before the server's 5 s read timeout ends the test less clearly). */
    int last = -1;
    uint64_t progress_at = uv_hrtime();
    while (!many.done && uv_hrtime() - progress_at < 2000000000u) {
        run_until(&a.loop, &many.done, 100);
        if (many.answered != last) {
            last = many.answered;
            progress_at = uv_hrtime();
        }
    }
    if (many.wrong > 0)
        fail_at_(__FILE__, __LINE__, "%d wrong answers; first: %s", many.wrong, many.first_wrong);
    if (many.answered != MANY_TOTAL)
        fail_at_(__FILE__, __LINE__, "%d of %d requests answered", many.answered, MANY_TOTAL);
    ASSERT_EQ(atollc_pending(a.c), 0);
    a_finish(&a);
    ASSERT_EQ(a.close_status, ATOLLC_OK);
    fake_join(f);
}
BOTH(many_in_flight_out_of_order)

/* ---- several packages in one read / one WebSocket message ------------------------------ */

static void
script_batch(fake *f)
{
    fake_handshake(f, REPLY_DICT, true);
    FAKE_SKIP(f, 2);
    /* Two responses, a compressed push, an uncompressed UTF-8 push: one write. */
    atoll__buf b = ATOLL__BUF_INIT;
    atoll__msg_put_response(&b, 2, "{\"r\":2}", 7);
    atoll__msg_put_push(&b, "onPush", 6, 7, "{\"p\":1}", 7);
    atoll__msg_put_response(&b, 1, "{\"r\":1}", 7);
    atoll__msg_put_push(&b, "onChat", 6, 0, "{\"msg\":\"\xe4\xbd\xa0\"}", 13);
    fake_send_buf(f, &b);
    fake_expect_close(f);
}

static void
batch(bool ws)
{
    fake *f = fake_start(ws, script_batch, NULL);
    atollc_opts o = opts_for(f);
    actx a;
    req_tag tags[2];
    A_CONNECT(&a, &o);
    for (int i = 0; i < 2; i++) {
        tags[i] = (req_tag){&a, i + 1};
        A_REQUEST_ECHO(&a, &tags[i]);
    }
    for (int i = 0; i < 100 && (a.nresp < 2 || a.npush < 2) && !a.closed; i++)
        run_until(&a.loop, &a.closed, 50);
    ASSERT_EQ(a.nresp, 2);
    ASSERT_EQ(a.resp_tag[0], 2);
    ASSERT_STR(a.resp_body[0], "{\"r\":2}");
    ASSERT_EQ(a.resp_tag[1], 1);
    ASSERT_STR(a.resp_body[1], "{\"r\":1}");
    ASSERT_EQ(a.npush, 2);
    ASSERT_STR(a.push_route[0], "onPush");
    ASSERT_STR(a.push_body[0], "{\"p\":1}");
    ASSERT_STR(a.push_route[1], "onChat");
    ASSERT_STR(a.push_body[1], "{\"msg\":\"\xe4\xbd\xa0\"}");
    a_finish(&a);
    fake_join(f);
}
BOTH(batch)

/* A package split over several TCP segments is reassembled. */
static void
script_split(fake *f)
{
    fake_handshake(f, REPLY_PLAIN, true);
    rpkg p;
    ASSERT(fake_read(f, &p));
    atoll__buf b = ATOLL__BUF_INIT;
    atoll__msg_put_response(&b, 1, "{\"split\":true}", 14);
    const uint8_t *d = atoll__buf_data(&b);
    send_all(f->fd, d, 2);
    usleep(20000);
    send_all(f->fd, d + 2, 5);
    usleep(20000);
    send_all(f->fd, d + 7, b.len - 7);
    atoll__buf_fini(&b);
    fake_expect_close(f);
}

TEST(tcp_split_package)
{
    fake *f = fake_start(false, script_split, NULL);
    atollc_opts o = opts_for(f);
    atollc_sync *s = SYNC_CONNECT(&o);
    EXPECT_RESPONSE(s, "echo.echo", "{}", "{\"split\":true}");
    atollc_sync_free(s);
    fake_join(f);
}

/* ---- pushes ------------------------------------------------------------------------------ */

static void
script_push(fake *f)
{
    fake_handshake(f, REPLY_DICT, true);
    /* Compressed route code 7 (onPush), then the §11.1 uncompressed onChat push. */
    fake_send_hex(f, "04 00 00 0a 07 00 07 7b 22 78 22 3a 31 7d");
    fake_send_hex(f, "04 00 00 23 06 06 6f 6e 43 68 61 74 7b 22 6d 73 67 22 3a 22 68 65 6c 6c 6f 22"
                     " 2c 22 66 72 6f 6d 22 3a 22 75 31 22 7d");
    fake_expect_close(f);
}

static void
push(bool ws)
{
    fake *f = fake_start(ws, script_push, NULL);
    atollc_opts o = opts_for(f);
    o.use_dict = 0; /* sending without the dict still resolves compressed pushes */
    atollc_sync *s = SYNC_CONNECT(&o);
    EXPECT_PUSH(s, "onPush", "{\"x\":1}");
    EXPECT_PUSH(s, "onChat", "{\"msg\":\"hello\",\"from\":\"u1\"}");
    char *route = NULL, *body = NULL;
    ASSERT_EQ(atollc_sync_wait_push(s, &route, &body, 100), ATOLL_ETIMEDOUT);
    atollc_sync_free(s);
    fake_join(f);
}
BOTH(push)

/* ---- kick, server close, heartbeats -------------------------------------------------------- */

static void
script_kick(fake *f)
{
    fake_handshake(f, REPLY_PLAIN, true);
    fake_send_hex(f, "05 00 00 11 7b 22 72 65 61 73 6f 6e 22 3a 22 6b 69 63 6b 22 7d");
    usleep(20000);
    /* The server closes right after the kick, as Pomelo does. */
}

static void
kick(bool ws)
{
    fake *f = fake_start(ws, script_kick, NULL);
    atollc_opts o = opts_for(f);
    atollc_sync *s = SYNC_CONNECT(&o);
    char *kick_body = NULL;
    ASSERT_EQ(atollc_sync_wait_close(s, &kick_body, 3000), ATOLLC_OK);
    ASSERT_STR(kick_body, "{\"reason\":\"kick\"}");
    free(kick_body);
    ASSERT(!atollc_sync_is_open(s));
    char *resp = NULL;
    ASSERT(atollc_sync_request(s, "echo.echo", "{}", &resp, 100) < 0);
    char *route, *body;
    ASSERT_EQ(atollc_sync_wait_push(s, &route, &body, 100), ATOLL_ECLOSED);
    atollc_sync_free(s);
    fake_join(f);
}
BOTH(kick)

static void
script_close_mid_request(fake *f)
{
    fake_handshake(f, REPLY_PLAIN, true);
    FAKE_SKIP(f, 2);
    /* Two requests pending: close without answering. */
}

static void
close_mid_request(bool ws)
{
    fake *f = fake_start(ws, script_close_mid_request, NULL);
    atollc_opts o = opts_for(f);
    actx a;
    req_tag tags[2] = {{&a, 1}, {&a, 2}};
    A_CONNECT(&a, &o);
    A_REQUEST_ECHO(&a, &tags[0]);
    A_REQUEST_ECHO(&a, &tags[1]);
    run_until(&a.loop, &a.closed, 5000);
    ASSERT(a.closed);
    ASSERT_EQ(a.close_status, ATOLL_ECLOSED);
    ASSERT_EQ(a.nresp, 2);
    ASSERT_EQ(a.resp_at_close, 2); /* pending callbacks fail before the close callback */
    ASSERT_EQ(a.resp_tag[0], 1);   /* in id order */
    ASSERT_EQ(a.resp_status[0], ATOLL_ECLOSED);
    ASSERT_EQ(a.resp_tag[1], 2);
    ASSERT_EQ(a.resp_status[1], ATOLL_ECLOSED);
    a_finish(&a);
    fake_join(f);
}
BOTH(close_mid_request)

static void
script_close_in_callback(fake *f)
{
    fake_handshake(f, REPLY_PLAIN, true);
    FAKE_SKIP(f, 2);
    /* Answer the first only, followed by a push the client must not deliver. */
    atoll__buf b = ATOLL__BUF_INIT;
    atoll__msg_put_response(&b, 1, "{}", 2);
    atoll__msg_put_push(&b, "late", 4, 0, "{}", 2);
    fake_send_buf(f, &b);
    fake_expect_close(f);
}

static void
close_in_callback(bool ws)
{
    fake *f = fake_start(ws, script_close_in_callback, NULL);
    atollc_opts o = opts_for(f);
    actx a;
    req_tag tags[2] = {{&a, 1}, {&a, 2}};
    A_CONNECT(&a, &o);
    a.close_in_response = true; /* read only by the response callback */
    A_REQUEST_ECHO(&a, &tags[0]);
    A_REQUEST_ECHO(&a, &tags[1]);
    run_until(&a.loop, &a.closed, 5000);
    ASSERT(a.closed);
    ASSERT_EQ(a.close_status, ATOLLC_OK);
    ASSERT_EQ(a.nresp, 2);
    ASSERT_EQ(a.resp_status[0], ATOLLC_OK);
    ASSERT_EQ(a.resp_status[1], ATOLL_ECLOSED);
    ASSERT_EQ(a.npush, 0);
    a_finish(&a);
    fake_join(f);
}
BOTH(close_in_callback)

static void
script_heartbeat_timeout(fake *f)
{
    fake_handshake(f, "{\"code\":200,\"sys\":{\"heartbeat\":1}}", true);
    uint64_t t0 = uv_hrtime();
    rpkg p;
    ASSERT(fake_read(f, &p));
    ASSERT_EQ(p.type, ATOLL_PKG_HEARTBEAT);
    double dt = (double)(uv_hrtime() - t0) / 1e9;
    ASSERT(dt > 0.8 && dt < 2.0); /* H = 1 s after the server's heartbeat */
    /* No answer: the client must give up 2H later. */
    fake_expect_close(f);
}

static void
heartbeat_timeout(bool ws)
{
    fake *f = fake_start(ws, script_heartbeat_timeout, NULL);
    atollc_opts o = opts_for(f);
    actx a;
    A_CONNECT(&a, &o);
    uint64_t t0 = uv_hrtime();
    run_until(&a.loop, &a.closed, 8000);
    double dt = (double)(uv_hrtime() - t0) / 1e9;
    ASSERT(a.closed);
    ASSERT_EQ(a.close_status, ATOLL_ETIMEDOUT);
    ASSERT(dt > 2.5 && dt < 4.5); /* heartbeat at +1 s, deadline 2 s later */
    a_finish(&a);
    fake_join(f);
}
BOTH(heartbeat_timeout)

static void
script_heartbeat_echo(fake *f)
{
    fake_handshake(f, "{\"code\":200,\"sys\":{\"heartbeat\":1}}", true);
    rpkg p;
    int beats = 0;
    while (fake_read(f, &p)) {
        ASSERT_EQ(p.type, ATOLL_PKG_HEARTBEAT);
        beats++;
        fake_send_hex(f, "03 00 00 00");
    }
    ASSERT(beats >= 2);
}

TEST(tcp_heartbeat_answered)
{
    fake *f = fake_start(false, script_heartbeat_echo, NULL);
    atollc_opts o = opts_for(f);
    atollc_sync *s = SYNC_CONNECT(&o);
    atollc_sync_pump(s, 3600); /* past the 2H deadline of a client that got no answer */
    ASSERT(atollc_sync_is_open(s));
    atollc_sync_free(s);
    fake_join(f);
}

/* ---- connect failures ------------------------------------------------------------------- */

static void
script_silent(fake *f)
{
    rpkg p;
    ASSERT(fake_read(f, &p));
    ASSERT_EQ(p.type, ATOLL_PKG_HANDSHAKE);
    fake_expect_close(f); /* never answers */
}

static void
connect_timeout(bool ws)
{
    fake *f = fake_start(ws, script_silent, NULL);
    atollc_opts o = opts_for(f);
    o.timeout_ms = 300;
    int err = 0;
    uint64_t t0 = uv_hrtime();
    ASSERT(atollc_sync_connect(&o, &err) == NULL);
    double dt = (double)(uv_hrtime() - t0) / 1e9;
    ASSERT_EQ(err, ATOLL_ETIMEDOUT);
    ASSERT(dt > 0.25 && dt < 2.0);
    fake_join(f);
}
BOTH(connect_timeout)

static void
script_refuse(fake *f)
{
    rpkg p;
    ASSERT(fake_read(f, &p));
    fake_send_hex(f, "01 00 00 0c 7b 22 63 6f 64 65 22 3a 35 30 30 7d"); /* {"code":500} */
    fake_expect_close(f);
}

static void
handshake_refused(bool ws)
{
    fake *f = fake_start(ws, script_refuse, NULL);
    atollc_opts o = opts_for(f);
    actx a;
    a_start(&a, &o);
    run_until(&a.loop, &a.closed, 5000);
    ASSERT(a.connect_done);
    ASSERT_EQ(a.connect_status, ATOLL_EPROTO);
    ASSERT(a.closed);
    ASSERT_EQ(a.close_status, ATOLL_EPROTO); /* the close callback follows the failure */
    a_finish(&a);
    fake_join(f);
}
BOTH(handshake_refused)

TEST(tcp_connection_refused)
{
    int port;
    int fd = listen_loopback(&port);
    close(fd); /* nothing listens there now */
    atollc_opts o;
    atollc_opts_init(&o);
    o.port = port;
    actx a;
    a_start(&a, &o);
    run_until(&a.loop, &a.closed, 5000);
    ASSERT(a.connect_done);
    ASSERT_EQ(a.connect_status, ATOLL_EIO);
    ASSERT(a.closed);
    a_finish(&a);
}

static void
script_any(fake *f)
{
    fake_expect_close(f);
}

TEST(tcp_close_while_connecting)
{
    fake *f = fake_start(false, script_any, NULL);
    atollc_opts o = opts_for(f);
    actx a;
    a_start(&a, &o);
    atollc_close(a.c); /* before the loop ran: callbacks come later, not from here */
    ASSERT(!a.connect_done);
    ASSERT(!a.closed);
    run_until(&a.loop, &a.closed, 5000);
    ASSERT_EQ(a.connect_status, ATOLL_ECANCELED);
    ASSERT_EQ(a.close_status, ATOLLC_OK);
    a_finish(&a);
    /* Whether or not the kernel had completed that connection, give the fake one to
     * accept, so it never waits for its accept timeout. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)f->port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(s, (struct sockaddr *)&addr, sizeof addr), 0);
    close(s);
    fake_join(f);
}

/* ---- WebSocket specifics ----------------------------------------------------------------- */

static void
script_ping(fake *f)
{
    fake_handshake(f, REPLY_PLAIN, true);
    uint8_t ping[16];
    size_t hl = atoll__ws_frame_header(ping, ATOLL_WS_OP_PING, true, 2, NULL);
    memcpy(ping + hl, "hi", 2);
    send_all(f->fd, ping, hl + 2);
    rpkg p;
    ASSERT(fake_read(f, &p)); /* the heartbeat sent through send_raw, after the pong */
    ASSERT(f->got_pong);
    ASSERT_STR(f->pong, "hi");
    fake_expect_close(f);
}

TEST(ws_ping_pong)
{
    fake *f = fake_start(true, script_ping, NULL);
    atollc_opts o = opts_for(f);
    atollc_sync *s = SYNC_CONNECT(&o);
    atollc_sync_pump(s, 200);
    uint8_t hb[4] = {3, 0, 0, 0};
    ASSERT_EQ(atollc_sync_send_raw(s, hb, sizeof hb), ATOLLC_OK);
    atollc_sync_free(s);
    fake_join(f);
}

/* A request timed out by the sync wrapper leaves no dangling waiter when the late
 * answer comes or the client closes. */
static void
script_late(fake *f)
{
    fake_handshake(f, REPLY_PLAIN, true);
    FAKE_SKIP(f, 2);
    fake_send_response(f, 1, "{\"late\":1}");
    fake_send_response(f, 2, "{\"on\":\"time\"}");
    fake_expect_close(f);
}

TEST(tcp_sync_request_timeout)
{
    fake *f = fake_start(false, script_late, NULL);
    atollc_opts o = opts_for(f);
    atollc_sync *s = SYNC_CONNECT(&o);
    char *resp = NULL;
    ASSERT_EQ(atollc_sync_request(s, "echo.echo", "{}", &resp, 50), ATOLL_ETIMEDOUT);
    ASSERT(resp == NULL);
    EXPECT_RESPONSE(s, "echo.echo", "{}", "{\"on\":\"time\"}");
    atollc_sync_free(s);
    fake_join(f);
}

TEST_MAIN(tcp_handshake, ws_handshake, tcp_handshake_without_user, bad_options, tcp_dict, ws_dict,
          tcp_use_dict_off, tcp_out_of_order, ws_out_of_order, tcp_batch, ws_batch,
          tcp_split_package, tcp_push, ws_push, tcp_kick, ws_kick, tcp_close_mid_request,
          ws_close_mid_request, tcp_close_in_callback, ws_close_in_callback, tcp_heartbeat_timeout,
          ws_heartbeat_timeout, tcp_heartbeat_answered, tcp_connect_timeout, ws_connect_timeout,
          tcp_handshake_refused, ws_handshake_refused, tcp_connection_refused,
          tcp_close_while_connecting, ws_ping_pong, tcp_sync_request_timeout,
          tcp_many_in_flight_out_of_order, ws_many_in_flight_out_of_order)
