/* conn.c -- one client connection: reading, transport choice, WebSocket framing,
 * deadlines, batched output and closing (the design is in conn.h).
 */
#define _GNU_SOURCE /* memmem */
#include "conn.h"

#include <stdio.h>

#define CLOSE_GRACE_MS 2000 /* how long a closing conn may take to flush */
#define READ_KEEP 4096      /* input tail buffer kept between reads */
#define OUT_KEEP 0          /* output buffer kept between turns: none (see flush_one) */

static void on_close_handle(uv_handle_t *h);
static void arm_deadline(atoll__conn *c);
static void unlink_conn(atoll__net *net, atoll__conn *c);

size_t
atoll__conn_pending(const atoll__conn *c)
{
    /* libuv counts down what is still queued of the uv_write as the socket takes it. */
    size_t queued = c->writing ? uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp) : 0;
    return c->out.len + c->ctrl.len + queued;
}

void
atoll__conn_mark_dirty(atoll__conn *c)
{
    if (c->in_dirty_list || c->closed_handles)
        return;
    c->in_dirty_list = true;
    c->dirty_next = c->net->dirty;
    c->net->dirty = c;
}

/* ---- closing ------------------------------------------------------------------------ */

static void
close_handles(atoll__conn *c)
{
    if (c->closed_handles)
        return;
    c->closed_handles = true;
    if (c->state != ATOLL_CONN_CLOSING)
        c->state = ATOLL_CONN_CLOSING;
    atoll__net *net = c->net;
    net->ops->closed(c);
    atoll__wheel_remove(&net->deadlines, &c->deadline);
    unlink_conn(net, c);
    /* A conn dropped for not reading is reset: the kernel discards what it still
     * holds for it instead of keeping it (and its memory) until the peer reads. */
    if (!c->abort || uv_tcp_close_reset(&c->tcp, on_close_handle) != 0)
        uv_close((uv_handle_t *)&c->tcp, on_close_handle);
}

/* Closes at once with a TCP reset (see close_handles). */
static void
abort_handles(atoll__conn *c)
{
    c->abort = true;
    close_handles(c);
}

static void
on_close_handle(uv_handle_t *h)
{
    atoll__conn *c = h->data;
    atoll__free(c->wreq);
    atoll__buf_fini(&c->in);
    atoll__buf_fini(&c->out);
    atoll__buf_fini(&c->wbuf);
    atoll__buf_fini(&c->ctrl);
    atoll__ws_reader_fini(&c->wsr);
    if (c->counted)
        atomic_fetch_sub(c->net->open_total, 1);
    c->net->stats.closed++;
    atoll__free(c);
}

void
atoll__conn_close(atoll__conn *c, const char *reason, int ws_code)
{
    if (c->state == ATOLL_CONN_CLOSING || c->closed_handles)
        return;
    c->state = ATOLL_CONN_CLOSING;
    ATOLL_LOG(ATOLL_LOG_DEBUG, "msg=\"connection closing\" session=%llx reason=\"%s\"",
              (unsigned long long)c->log_id, reason);
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (c->ws && ws_code)
        atoll__ws_put_close(&c->ctrl, ws_code, "");
    c->close_deadline_ms = uv_now(c->net->loop) + CLOSE_GRACE_MS;
    arm_deadline(c);
    if (atoll__conn_pending(c) == 0 && !c->writing)
        close_handles(c);
    else
        atoll__conn_mark_dirty(c);
}

/* ---- deadlines ---------------------------------------------------------------------- */

static uint64_t
next_deadline(atoll__conn *c)
{
    const atoll__net_limits *lim = c->net->limits;
    if (c->state == ATOLL_CONN_CLOSING)
        return c->close_deadline_ms;
    uint64_t d = c->last_rx_ms + (uint64_t)lim->idle_timeout_s * 1000;
    if (!c->established) {
        uint64_t h = c->accepted_ms + (uint64_t)lim->handshake_timeout_s * 1000;
        if (h < d)
            d = h;
    }
    if (c->owner_deadline_ms && c->owner_deadline_ms < d)
        d = c->owner_deadline_ms;
    return d;
}

/* A conn's wheel entry fired: close it if a deadline passed, else put it back. */
static void
on_deadline(atoll__wheel_entry *e, uint64_t now, void *arg)
{
    atoll__conn *c = (atoll__conn *)((char *)e - offsetof(atoll__conn, deadline));
    if (c->state == ATOLL_CONN_CLOSING) {
        if (now >= c->close_deadline_ms) {
            /* The peer does not read: drop what it did not take. */
            abort_handles(c);
            return;
        }
    } else {
        const atoll__net_limits *lim = c->net->limits;
        if (!c->established &&
            now >= c->accepted_ms + (uint64_t)lim->handshake_timeout_s * 1000) {
            atoll__conn_close(c, "handshake timeout", ATOLL_WS_CLOSE_PROTOCOL);
            return;
        }
        if (c->owner_deadline_ms && now >= c->owner_deadline_ms) {
            c->owner_deadline_ms = 0;
            c->net->ops->expired(c);
            if (c->state == ATOLL_CONN_CLOSING || c->closed_handles)
                return;
        }
        if (now >= c->last_rx_ms + (uint64_t)lim->idle_timeout_s * 1000) {
            atoll__conn_close(c, "idle timeout", ATOLL_WS_CLOSE_GOING_AWAY);
            return;
        }
    }
    arm_deadline(c);
}

void
atoll__net_deadlines(atoll__net *net)
{
    atoll__wheel_advance(&net->deadlines, uv_now(net->loop), on_deadline, NULL);
}

static void
arm_deadline(atoll__conn *c)
{
    if (c->closed_handles)
        return;
    uint64_t d = next_deadline(c);
    atoll__wheel *wh = &c->net->deadlines;
    if (atoll__wheel_linked(&c->deadline)) {
        if (c->deadline.slot_ms <= d)
            return; /* fires early and is put back then */
        atoll__wheel_remove(wh, &c->deadline);
    }
    atoll__wheel_add(wh, &c->deadline, d);
}

void
atoll__conn_established(atoll__conn *c)
{
    c->established = true;
    arm_deadline(c);
}

void
atoll__conn_set_deadline(atoll__conn *c, uint64_t ms)
{
    c->owner_deadline_ms = ms;
    arm_deadline(c);
}

/* ---- input -------------------------------------------------------------------------- */

/* Raw Pomelo stream: packages back to back. Returns bytes consumed. */
static size_t
feed_packages(atoll__conn *c, const uint8_t *p, size_t n)
{
    size_t off = 0;
    while (off < n && c->state != ATOLL_CONN_CLOSING) {
        atoll__pkg pkg;
        ssize_t k = atoll__pkg_parse(p + off, n - off, c->net->limits->max_package, &pkg);
        if (k == 0)
            break;
        if (k < 0) {
            c->net->ops->bad_input(c, k == ATOLL_ELIMIT ? "package too large" : "bad package type",
                                   0);
            return n;
        }
        off += (size_t)k;
        if (!c->net->ops->package(c, &pkg))
            return n;
    }
    return off;
}

/* One whole WebSocket binary message must hold exactly one package (Pomelo's rule). */
static void
ws_message(atoll__conn *c, const uint8_t *p, size_t n)
{
    atoll__pkg pkg;
    const atoll__conn_ops *ops = c->net->ops;
    ssize_t k = atoll__pkg_parse(p, n, c->net->limits->max_package, &pkg);
    if (k < 0) {
        ops->bad_input(c, k == ATOLL_ELIMIT ? "package too large" : "bad package type",
                       k == ATOLL_ELIMIT ? ATOLL_WS_CLOSE_TOO_BIG : ATOLL_WS_CLOSE_PROTOCOL);
        return;
    }
    if (k == 0 || (size_t)k != n) {
        ops->bad_input(c, "one package per WebSocket message", ATOLL_WS_CLOSE_PROTOCOL);
        return;
    }
    ops->package(c, &pkg);
}

static size_t
feed_ws(atoll__conn *c, uint8_t *p, size_t n)
{
    size_t off = 0;
    while (off < n && c->state != ATOLL_CONN_CLOSING) {
        atoll__ws_event ev;
        ssize_t k = atoll__ws_reader_next(&c->wsr, p + off, n - off, &ev);
        if (k == 0)
            break;
        if (k < 0) {
            const char *why = c->wsr.error_code == ATOLL_WS_CLOSE_UNSUPPORTED
                                  ? "text WebSocket message"
                              : c->wsr.error_code == ATOLL_WS_CLOSE_TOO_BIG
                                  ? "WebSocket message too large"
                                  : "WebSocket protocol error";
            c->net->ops->bad_input(c, why, c->wsr.error_code);
            return n;
        }
        off += (size_t)k;
        switch (ev.type) {
        case ATOLL_WS_EV_MESSAGE:
            ws_message(c, ev.data, ev.len);
            break;
        case ATOLL_WS_EV_PING: {
            if (!c->net->ops->ping(c))
                return n;
            uint8_t h[14];
            size_t hl = atoll__ws_frame_header(h, ATOLL_WS_OP_PONG, true, ev.len, NULL);
            atoll__buf_append(&c->ctrl, h, hl);
            atoll__buf_append(&c->ctrl, ev.data, ev.len);
            atoll__conn_mark_dirty(c);
            break;
        }
        case ATOLL_WS_EV_CLOSE:
            atoll__conn_close(c, "client closed", ATOLL_WS_CLOSE_NORMAL);
            return n;
        default:
            break;
        }
    }
    return off;
}

static void flush_one(atoll__conn *c);

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    atoll__conn *c = h->data;
    /* The scratch buffer is lent for one read callback at a time; libuv reads one
     * stream per callback on this thread, so it is never handed out twice. */
    buf->base = (char *)c->net->scratch;
    buf->len = c->net->scratch_len;
}

/* Decodes what is in p[0..n) by the conn's current mode; returns bytes consumed. The
 * mode may change inside (INIT -> HTTP -> WebSocket), so it loops until no progress. */
static size_t
feed(atoll__conn *c, uint8_t *p, size_t n)
{
    size_t off = 0;
    for (;;) {
        size_t before = off;
        if (c->state == ATOLL_CONN_CLOSING || off >= n)
            return n;
        if (c->state == ATOLL_CONN_INIT) {
            if (atoll__http_looks_like(p + off, n - off)) {
                c->state = ATOLL_CONN_HTTP;
            } else if (p[off] == ATOLL_PKG_HANDSHAKE || n - off >= 4) {
                c->state = ATOLL_CONN_OPEN;
            } else {
                /* Fewer than 4 bytes that could still be a method ("GE"): wait. */
                return off;
            }
        }
        if (c->state == ATOLL_CONN_HTTP) {
            /* The parser keeps no state and rescans the head on each call: call it only
             * on the first bytes (to refuse a non-GET at once) and once the blank line
             * has arrived, so a client sending a byte at a time costs linear time. */
            size_t avail = n - off;
            size_t from = c->http_scanned > 3 ? c->http_scanned - 3 : 0;
            bool first = c->http_scanned == 0;
            c->http_scanned = avail;
            if (!first && avail < ATOLL_HTTP_HEAD_MAX &&
                memmem(p + off + from, avail - from, "\r\n\r\n", 4) == NULL)
                return off;
            atoll__http_upgrade req;
            ssize_t k = atoll__http_upgrade_parse(p + off, n - off, &req);
            if (k == 0)
                return off;
            if (k < 0) {
                atoll__http_put_error(&c->ctrl, k == ATOLL_ELIMIT ? 431 : 400,
                                      k == ATOLL_ELIMIT ? "Request Header Fields Too Large"
                                                        : "Bad Request");
                atoll__conn_close(c, "bad HTTP upgrade request", 0);
                return n;
            }
            off += (size_t)k;
            c->ws = true;
            /* A message is one package: its body plus the 4-byte header. */
            atoll__ws_reader_init(&c->wsr, true,
                                  (size_t)c->net->limits->max_package + ATOLL_PKG_HEADER_LEN);
            c->state = ATOLL_CONN_OPEN;
            atoll__http_put_101(&c->ctrl, &req);
            /* Written at once: every frame that follows must come after it. The write
             * can fail and close the conn; then nothing more is decoded. */
            flush_one(c);
            if (c->state == ATOLL_CONN_CLOSING)
                return n;
        } else if (c->ws) {
            off += feed_ws(c, p + off, n - off);
        } else {
            off += feed_packages(c, p + off, n - off);
        }
        if (off == before)
            return off;
    }
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    atoll__conn *c = s->data;
    if (nread < 0) {
        if (nread == UV_EOF) {
            /* Half-closed: what we owe the client is still written. */
            atoll__conn_close(c, "client closed", 0);
        } else {
            /* A reset socket cannot take output either. */
            c->out.len = c->ctrl.len = 0;
            atoll__conn_close(c, "read error", 0);
            if (!c->writing)
                close_handles(c);
        }
        return;
    }
    if (nread == 0)
        return;
    c->last_rx_ms = uv_now(c->net->loop);
    uint8_t *p = (uint8_t *)buf->base;
    size_t n = (size_t)nread;
    if (c->in.len > 0) {
        /* An unfinished tail is waiting: decode from the conn's own buffer. */
        atoll__buf_append(&c->in, p, n);
        size_t used = feed(c, atoll__buf_data(&c->in), c->in.len);
        atoll__buf_consume(&c->in, used);
    } else {
        size_t used = feed(c, p, n);
        if (used < n && c->state != ATOLL_CONN_CLOSING)
            atoll__buf_append(&c->in, p + used, n - used);
    }
    if (c->in.len == 0)
        atoll__buf_shrink(&c->in, READ_KEEP);
}

/* ---- output ----------------------------------------------------------------------- */

static void on_write(uv_write_t *req, int status);

static void
flush_one(atoll__conn *c)
{
    if (c->writing || c->closed_handles)
        return;
    uv_buf_t iov[3];
    int niov = 0;
    uint8_t hdr[14];
    if (c->out.len > 0) {
        if (c->ws) {
            size_t hl = atoll__ws_frame_header(hdr, ATOLL_WS_OP_BINARY, true, c->out.len, NULL);
            iov[niov++] = uv_buf_init((char *)hdr, (unsigned)hl);
        }
        iov[niov++] = uv_buf_init((char *)atoll__buf_data(&c->out), (unsigned)c->out.len);
    }
    if (c->ctrl.len > 0)
        iov[niov++] = uv_buf_init((char *)atoll__buf_data(&c->ctrl), (unsigned)c->ctrl.len);
    if (niov == 0) {
        if (c->state == ATOLL_CONN_CLOSING)
            close_handles(c);
        return;
    }
    size_t total = 0;
    for (int i = 0; i < niov; i++)
        total += iov[i].len;
    int k = uv_try_write((uv_stream_t *)&c->tcp, iov, (unsigned)niov);
    size_t written = k > 0 ? (size_t)k : 0;
    if (k < 0 && k != UV_EAGAIN) {
        c->out.len = c->ctrl.len = 0;
        if (c->state != ATOLL_CONN_CLOSING)
            atoll__conn_close(c, "write error", 0);
        close_handles(c);
        return;
    }
    if (written < total) {
        /* Copy what the socket did not take into wbuf and hand it to uv_write. */
        c->wbuf.len = 0;
        size_t skip = written;
        for (int i = 0; i < niov; i++) {
            if (skip >= iov[i].len) {
                skip -= iov[i].len;
                continue;
            }
            atoll__buf_append(&c->wbuf, iov[i].base + skip, iov[i].len - skip);
            skip = 0;
        }
        uv_buf_t wb = uv_buf_init((char *)atoll__buf_data(&c->wbuf), (unsigned)c->wbuf.len);
        c->writing = true;
        if (c->wreq == NULL)
            c->wreq = atoll__malloc(sizeof *c->wreq);
        if (uv_write(c->wreq, (uv_stream_t *)&c->tcp, &wb, 1, on_write) != 0) {
            c->writing = false;
            close_handles(c);
            return;
        }
    }
    c->out.len = 0;
    c->ctrl.len = 0;
    /* Give the output buffers back after each flush: an idle connection then holds
     * none, and a busy one pays a malloc/free pair per turn (a thread-cache hit, tens
     * of nanoseconds next to the write(2) it comes with). */
    atoll__buf_shrink(&c->out, OUT_KEEP);
    atoll__buf_shrink(&c->ctrl, 0);
    if (!c->writing && c->state == ATOLL_CONN_CLOSING)
        close_handles(c);
}

static void
on_write(uv_write_t *req, int status)
{
    atoll__conn *c = req->handle->data;
    c->writing = false;
    c->wbuf.len = 0;
    atoll__buf_shrink(&c->wbuf, 0);
    atoll__free(c->wreq);
    c->wreq = NULL;
    if (c->closed_handles)
        return;
    if (status < 0) {
        c->out.len = c->ctrl.len = 0;
        atoll__conn_close(c, "write error", 0);
        close_handles(c);
        return;
    }
    if (c->out.len || c->ctrl.len || c->state == ATOLL_CONN_CLOSING)
        atoll__conn_mark_dirty(c);
}

/* A reader slower than the node writes: what it is owed is dropped and it is closed. */
static void
drop_slow_reader(atoll__conn *c)
{
    ATOLL_LOG_CLIENT(ATOLL_LOG_WARN, "msg=\"closing slow reader\" session=%llx pending=%zu",
                     (unsigned long long)c->log_id, atoll__conn_pending(c));
    c->out.len = 0;
    c->ctrl.len = 0;
    atoll__conn_close(c, "output over cap", 0);
    abort_handles(c); /* cancels a uv_write in flight */
}

bool
atoll__conn_out_room(atoll__conn *c, size_t n)
{
    if (c->state == ATOLL_CONN_CLOSING || c->closed_handles)
        return false;
    size_t cap = c->net->limits->output_cap;
    if (atoll__conn_pending(c) + n <= cap)
        return true;
    /* Over the cap: hand what is gathered to the socket now; a client that reads keeps
     * up (its kernel buffer takes it), one that does not stays over and is dropped. */
    flush_one(c);
    if (c->closed_handles)
        return false;
    if (atoll__conn_pending(c) + n <= cap)
        return true;
    drop_slow_reader(c);
    return false;
}

bool
atoll__conn_write(atoll__conn *c, const void *p, size_t n)
{
    if (!atoll__conn_out_room(c, n))
        return false;
    atoll__buf_append(&c->out, p, n);
    atoll__conn_mark_dirty(c);
    return true;
}

void
atoll__net_flush(atoll__net *net)
{
    size_t cap = net->limits->output_cap;
    while (net->dirty) {
        atoll__conn *c = net->dirty;
        net->dirty = c->dirty_next;
        c->in_dirty_list = false;
        c->dirty_next = NULL;
        if (c->closed_handles)
            continue;
        flush_one(c);
        /* Judged on what the socket did not take, not on what the turn gathered. */
        if (!c->closed_handles && c->state != ATOLL_CONN_CLOSING && atoll__conn_pending(c) > cap)
            drop_slow_reader(c);
    }
}

/* ---- the net's list of conns ------------------------------------------------------------ */

void
atoll__net_link(atoll__net *net, atoll__conn *c)
{
    c->all_next = net->all;
    c->all_prev = NULL;
    if (net->all)
        net->all->all_prev = c;
    net->all = c;
    net->nconns++;
}

static void
unlink_conn(atoll__net *net, atoll__conn *c)
{
    if (c->all_prev)
        c->all_prev->all_next = c->all_next;
    else if (net->all == c)
        net->all = c->all_next;
    if (c->all_next)
        c->all_next->all_prev = c->all_prev;
    c->all_prev = c->all_next = NULL;
    net->nconns--;
    if (net->stopping && net->nconns == 0 && net->drained)
        net->drained(net);
}


void
atoll__conn_start(atoll__conn *c)
{
    arm_deadline(c);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        atoll__conn_close(c, "read start failed", 0);
}
