/* baseline.c -- atoll-baseline: the least work a server can do and still speak the
 * Pomelo client protocol, as the yardstick the atoll node is measured against.
 *
 * One port serves raw TCP and WebSocket, chosen by the first byte (0x01 starts every
 * raw Pomelo stream; an HTTP method starts an upgrade), with the same codec and
 * WebSocket helpers as the node (src/proto, src/net/ws.h). W worker threads each run
 * their own libuv loop on their own SO_REUSEPORT listening socket, so the kernel
 * spreads connections and the workers share nothing. Per connection: handshake ->
 * {"code":200,"sys":{"heartbeat":H}} (the client's JSON is not parsed), ack -> one
 * heartbeat, heartbeat -> echoed, REQUEST -> RESPONSE with the request's id and body
 * ("{}" for an empty one), NOTIFY -> dropped. No routing, sessions, JSON, rate limits
 * or heartbeat timeouts: whatever the node costs above this is its own overhead.
 *
 * Output is gathered per connection and written once per loop turn by a uv_check
 * handle (it runs right after the poll phase that produced the output) with one
 * uv_try_write; on WebSocket the whole turn's output is one binary message whose
 * header is written into the buffer's front headroom (no copy). Reads go into one
 * 64 KiB buffer per worker and only a partial package is copied into the connection,
 * so an idle connection holds no buffers: its cost is the uv_tcp_t and this struct.
 *
 * Usage: atoll-baseline --listen HOST:PORT [--workers W] [--heartbeat H]
 * Stops on SIGINT or SIGTERM.
 */
#include "../src/net/ws.h"
#include "../src/proto/proto.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define READ_BUF 65536u
#define MAX_WORKERS 64
/* Front headroom for an unmasked server frame header: 2 + 8 length bytes. */
#define WS_HEAD 10u

enum { MODE_DETECT, MODE_HTTP, MODE_RAW, MODE_WS };
enum { ST_INIT, ST_WAIT_ACK, ST_WORKING };

typedef struct worker {
    int index;
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_check_t flusher;
    struct conn *dirty; /* connections with output gathered this turn */
    pthread_t thread;
    uint8_t rbuf[READ_BUF];
} worker;

typedef struct write_req {
    uv_write_t req;
    struct conn *c;
    atoll__buf buf;
} write_req;

typedef struct conn {
    uv_tcp_t tcp;
    worker *w;
    struct conn *next_dirty;
    uint8_t mode;
    uint8_t state;
    bool dirty;
    bool closing;
    write_req *writing; /* the write in flight, or NULL */
    atoll__buf in;      /* a partial package or frame carried to the next read */
    atoll__buf out;
    atoll__ws_reader *ws;
} conn;

static uint8_t handshake_reply[64];
static size_t handshake_reply_len;
static const uint8_t heartbeat_pkg[4] = {ATOLL_PKG_HEARTBEAT, 0, 0, 0};

/* ---- connections ------------------------------------------------------------------ */

static void
on_conn_closed(uv_handle_t *h)
{
    conn *c = h->data;
    atoll__buf_fini(&c->in);
    atoll__buf_fini(&c->out);
    if (c->ws != NULL) {
        atoll__ws_reader_fini(c->ws);
        free(c->ws);
    }
    free(c);
}

/* Safe at any point of a turn: the check phase, which empties the dirty list, always
 * runs before the closing phase frees the connection. */
static void
conn_close(conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void
mark_dirty(conn *c)
{
    if (!c->dirty) {
        c->dirty = true;
        c->next_dirty = c->w->dirty;
        c->w->dirty = c;
    }
}

static void flush(conn *c);

static void
on_write(uv_write_t *req, int status)
{
    write_req *wr = req->data;
    conn *c = wr->c;
    atoll__buf_fini(&wr->buf);
    free(wr);
    if (status == UV_ECANCELED)
        return; /* the connection is closing */
    c->writing = NULL;
    if (status < 0)
        conn_close(c);
    else if (c->out.len > 0)
        mark_dirty(c);
}

static void
flush(conn *c)
{
    if (c->closing || c->writing != NULL || c->out.len == 0)
        return;
    uint8_t *p = atoll__buf_data(&c->out);
    size_t n = c->out.len;
    if (c->mode == MODE_WS) {
        size_t hl = atoll__ws_header_len(n);
        p -= hl;
        atoll__ws_frame_header(p, ATOLL_WS_OP_BINARY, true, n, NULL);
        n += hl;
    }
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (r == (int)n) {
        /* Release the buffer: an idle connection should hold none. */
        atoll__buf_fini(&c->out);
        return;
    }
    if (r < 0 && r != UV_EAGAIN) {
        conn_close(c);
        return;
    }
    size_t done = r > 0 ? (size_t)r : 0;
    write_req *wr = malloc(sizeof *wr);
    if (wr == NULL) {
        conn_close(c);
        return;
    }
    wr->c = c;
    wr->buf = c->out; /* the remaining bytes stay where they are; the request owns them */
    wr->req.data = wr;
    c->out = (atoll__buf)ATOLL__BUF_INIT;
    if (c->mode == MODE_WS)
        atoll__buf_set_head(&c->out, WS_HEAD);
    b = uv_buf_init((char *)p + done, (unsigned)(n - done));
    if (uv_write(&wr->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
        atoll__buf_fini(&wr->buf);
        free(wr);
        conn_close(c);
        return;
    }
    c->writing = wr;
}

static void
on_check(uv_check_t *h)
{
    worker *w = h->data;
    while (w->dirty != NULL) {
        conn *c = w->dirty;
        w->dirty = c->next_dirty;
        c->dirty = false;
        flush(c);
    }
}

/* ---- protocol ------------------------------------------------------------------- */

static void
on_package(conn *c, const atoll__pkg *pkg)
{
    switch (pkg->type) {
    case ATOLL_PKG_HANDSHAKE:
        if (c->state == ST_INIT) {
            atoll__buf_append(&c->out, handshake_reply, handshake_reply_len);
            c->state = ST_WAIT_ACK;
            mark_dirty(c);
        }
        return;
    case ATOLL_PKG_HANDSHAKE_ACK:
        if (c->state == ST_WAIT_ACK) {
            c->state = ST_WORKING;
            atoll__buf_append(&c->out, heartbeat_pkg, sizeof heartbeat_pkg);
            mark_dirty(c);
        }
        return;
    case ATOLL_PKG_HEARTBEAT:
        if (c->state == ST_WORKING) {
            atoll__buf_append(&c->out, heartbeat_pkg, sizeof heartbeat_pkg);
            mark_dirty(c);
        }
        return;
    case ATOLL_PKG_DATA: {
        atoll__msg m;
        if (c->state != ST_WORKING || atoll__msg_decode(pkg->body, pkg->len, &m) != ATOLL_OK)
            return;
        if (m.type != ATOLL_MSG_REQUEST)
            return;
        if (m.body_len > 0)
            atoll__msg_put_response(&c->out, m.id, m.body, m.body_len);
        else
            atoll__msg_put_response(&c->out, m.id, "{}", 2);
        mark_dirty(c);
        return;
    }
    default:
        conn_close(c); /* KICK from a client: no handler, Pomelo disconnects */
        return;
    }
}

/* Every package of a whole buffer (a WebSocket message). */
static void
on_packages(conn *c, const uint8_t *p, size_t n)
{
    size_t off = 0;
    while (off < n && !c->closing) {
        atoll__pkg pkg;
        ssize_t r = atoll__pkg_parse(p + off, n - off, ATOLL_PKG_BODY_DEFAULT_MAX, &pkg);
        if (r <= 0) {
            conn_close(c);
            return;
        }
        on_package(c, &pkg);
        off += (size_t)r;
    }
}

/* Handles what it can of p[0..n), which it may modify; returns the bytes used. */
static size_t
process(conn *c, uint8_t *p, size_t n)
{
    size_t off = 0;
    while (off < n && !c->closing) {
        ssize_t r;
        if (c->mode == MODE_DETECT) {
            if (p[off] == ATOLL_PKG_HANDSHAKE)
                c->mode = MODE_RAW;
            else if (atoll__http_looks_like(p + off, n - off))
                c->mode = MODE_HTTP;
            else
                conn_close(c);
            continue;
        }
        if (c->mode == MODE_HTTP) {
            atoll__http_upgrade up;
            r = atoll__http_upgrade_parse(p + off, n - off, &up);
            if (r == 0)
                break;
            if (r < 0 || (c->ws = malloc(sizeof *c->ws)) == NULL) {
                conn_close(c);
                break;
            }
            off += (size_t)r;
            atoll__ws_reader_init(c->ws, true, ATOLL_PKG_BODY_DEFAULT_MAX + 4);
            /* The 101 leaves unframed, now; later output is framed per turn. */
            atoll__http_put_101(&c->out, &up);
            flush(c);
            c->mode = MODE_WS;
            if (c->out.len == 0)
                atoll__buf_set_head(&c->out, WS_HEAD);
            continue;
        }
        if (c->mode == MODE_WS) {
            atoll__ws_event ev;
            r = atoll__ws_reader_next(c->ws, p + off, n - off, &ev);
            if (r == 0)
                break;
            if (r < 0) {
                conn_close(c);
                break;
            }
            off += (size_t)r;
            if (ev.type == ATOLL_WS_EV_MESSAGE)
                on_packages(c, ev.data, ev.len);
            else if (ev.type == ATOLL_WS_EV_CLOSE)
                conn_close(c);
            continue; /* pings are not answered: no client of this benchmark sends one */
        }
        atoll__pkg pkg;
        r = atoll__pkg_parse(p + off, n - off, ATOLL_PKG_BODY_DEFAULT_MAX, &pkg);
        if (r == 0)
            break;
        if (r < 0) {
            conn_close(c);
            break;
        }
        off += (size_t)r;
        on_package(c, &pkg);
    }
    return off;
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn *c = h->data;
    if (c->in.len == 0) {
        *buf = uv_buf_init((char *)c->w->rbuf, READ_BUF);
        return;
    }
    if (atoll__buf_try_reserve(&c->in, 4096) != ATOLL_OK) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init((char *)atoll__buf_data(&c->in) + c->in.len,
                       (unsigned)(c->in.cap - c->in.len));
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn *c = s->data;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0 || c->closing)
        return;
    if (buf->base == (char *)c->w->rbuf) {
        size_t used = process(c, c->w->rbuf, (size_t)nread);
        if (!c->closing && used < (size_t)nread)
            atoll__buf_append(&c->in, c->w->rbuf + used, (size_t)nread - used);
        return;
    }
    c->in.len += (size_t)nread;
    atoll__buf_consume(&c->in, process(c, atoll__buf_data(&c->in), c->in.len));
    if (c->in.len == 0)
        atoll__buf_fini(&c->in);
}

static void
on_connection(uv_stream_t *server, int status)
{
    worker *w = server->data;
    if (status < 0)
        return;
    conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return;
    c->w = w;
    c->tcp.data = c;
    uv_tcp_init(&w->loop, &c->tcp);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c);
}

/* ---- workers and main ---------------------------------------------------------------- */

/* A listening socket of its own per worker: SO_REUSEPORT lets the kernel balance
 * connections across them (libuv 1.44 has no flag for it, so the socket is made here
 * and handed to uv_tcp_open). */
static int
listen_socket(const struct sockaddr *addr, socklen_t len)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        bind(fd, addr, len) != 0 || listen(fd, 4096) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

static void *
worker_main(void *arg)
{
    worker *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    return NULL;
}

static int
parse_listen(const char *s, struct sockaddr_storage *ss)
{
    char host[128];
    const char *colon = strrchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= sizeof host)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    int port = atoi(colon + 1);
    if (port <= 0 || port > 65535)
        return -1;
    char *h = host;
    if (h[0] == '[') {
        h++;
        h[strlen(h) - 1] = '\0';
    }
    if (uv_ip4_addr(h, port, (struct sockaddr_in *)ss) == 0)
        return 0;
    return uv_ip6_addr(h, port, (struct sockaddr_in6 *)ss) == 0 ? 0 : -1;
}

static void
usage(void)
{
    fprintf(stderr, "usage: atoll-baseline --listen HOST:PORT [--workers W] [--heartbeat H]\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    const char *listen_at = NULL;
    int nworkers = 2, heartbeat = 10;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--listen") && i + 1 < argc)
            listen_at = argv[++i];
        else if (!strcmp(argv[i], "--workers") && i + 1 < argc)
            nworkers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--heartbeat") && i + 1 < argc)
            heartbeat = atoi(argv[++i]);
        else
            usage();
    }
    struct sockaddr_storage addr;
    if (listen_at == NULL || parse_listen(listen_at, &addr) != 0 || nworkers < 1 ||
        nworkers > MAX_WORKERS || heartbeat < 0)
        usage();

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);

    char body[48];
    int blen = heartbeat > 0
                   ? snprintf(body, sizeof body, "{\"code\":200,\"sys\":{\"heartbeat\":%d}}",
                              heartbeat)
                   : snprintf(body, sizeof body, "{\"code\":200,\"sys\":{}}");
    atoll__pkg_header(handshake_reply, ATOLL_PKG_HANDSHAKE, (uint32_t)blen);
    memcpy(handshake_reply + ATOLL_PKG_HEADER_LEN, body, (size_t)blen);
    handshake_reply_len = ATOLL_PKG_HEADER_LEN + (size_t)blen;

    /* Signals go to the main thread only, which waits for them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    socklen_t alen = addr.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                : sizeof(struct sockaddr_in);
    worker *workers = calloc((size_t)nworkers, sizeof *workers);
    if (workers == NULL)
        return 1;
    for (int i = 0; i < nworkers; i++) {
        worker *w = &workers[i];
        w->index = i;
        uv_loop_init(&w->loop);
        int fd = listen_socket((const struct sockaddr *)&addr, alen);
        if (fd < 0) {
            fprintf(stderr, "atoll-baseline: listen %s: %s\n", listen_at, strerror(-fd));
            return 1;
        }
        uv_tcp_init(&w->loop, &w->listener);
        w->listener.data = w;
        int r = uv_tcp_open(&w->listener, fd);
        if (r == 0)
            r = uv_listen((uv_stream_t *)&w->listener, 4096, on_connection);
        if (r != 0) {
            fprintf(stderr, "atoll-baseline: listen %s: %s\n", listen_at, uv_strerror(r));
            return 1;
        }
        uv_check_init(&w->loop, &w->flusher);
        w->flusher.data = w;
        uv_check_start(&w->flusher, on_check);
    }
    for (int i = 0; i < nworkers; i++)
        pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
    fprintf(stderr, "atoll-baseline: listening on %s with %d workers\n", listen_at, nworkers);

    int sig = 0;
    sigwait(&set, &sig);
    /* Nothing to save: leave without tearing the loops down under their threads. */
    _exit(0);
}
