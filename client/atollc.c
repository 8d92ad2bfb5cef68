/* atollc.c -- the asynchronous atoll client: one Pomelo connection on a caller-owned
 * libuv loop (include/atollc/atollc.h is the contract).
 *
 * Life of a connection: TCP connect -> (WebSocket: HTTP upgrade, 101 checked) ->
 * handshake package {"sys":{"type":"atollc","version":...},"user":...} -> the server's
 * reply (code 200, sys.heartbeat, the route dictionary) -> ack -> WORKING. A single
 * timer per client serves the connect+handshake deadline first and the heartbeat
 * schedule afterwards. The reply and the dictionary are decoded in client/reply.c, a
 * pure function of the bytes so that it can be fuzzed on its own.
 *
 * Output: every package is appended to the client's `out` buffer (on WebSocket as its
 * own masked binary frame, because a Pomelo server decodes each client message as
 * exactly one package). A uv_prepare handle, started only while `out` holds bytes,
 * writes everything once per loop turn: prepare runs after the timers and before the
 * loop polls, so requests queued from read callbacks, timers or before uv_run all leave
 * in one write before the loop sleeps. A per-client prepare handle is the cheap choice
 * for thousands of clients in one loop: starting and stopping one is a list insert
 * and remove, only clients with output are visited, and no per-loop registry is needed
 * (the loop's data pointer belongs to the application). The write is tried with
 * uv_try_write first, so the common case is one writev and no request allocation;
 * only what the socket refuses goes through uv_write, and while that is in flight new
 * output keeps gathering in `out`.
 *
 * Input: bytes are read into `in`; whole packages (TCP) or frames (WebSocket, where
 * one server message may hold several packages) are handled in place, and bodies are
 * lent to callbacks straight from that buffer. A callback may call atollc_close: the
 * loop over the buffer stops as soon as the client is no longer active, and nothing is
 * freed before the handles' close callbacks.
 *
 * Requests: ids count from 1; pending ones live in an open-addressing table keyed by
 * id (linear probing, backward-shift deletion, so no tombstones). Ids are sequential,
 * so the identity hash spreads them perfectly. On close, pending callbacks get
 * ATOLL_ECLOSED in id order from the last handle's close callback (never from inside
 * atollc_close), then the close callback runs, last, so the application may free the
 * client inside it.
 *
 * Heartbeats follow the Pomelo JS client: when a server heartbeat arrives, one client
 * heartbeat is sent H seconds later; after sending, the server must answer within 2H,
 * and any package received pushes that deadline out (it is checked lazily against
 * the time of the last read, so receiving data never touches the timer).
 */
#include "client.h"

#include "../src/net/ws.h"
#include "../src/proto/proto.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    ST_NEW = 0,    /* created; atollc_connect not called: no handles exist */
    ST_CONNECTING, /* TCP connect in progress */
    ST_UPGRADING,  /* WebSocket: upgrade request sent, waiting for the 101 */
    ST_HANDSHAKE,  /* handshake sent, waiting for the server's reply */
    ST_WORKING,    /* ack sent: requests allowed */
    ST_CLOSING,    /* handles are closing */
    ST_FINISHING,  /* handles closed; failing pending callbacks */
    ST_CLOSED,     /* the close callback is being or has been called */
};

/* Read buffer: room asked for per read, and the size above which an empty buffer is
 * released so that one large package does not pin memory on an idle client. */
#define READ_CHUNK 4096u
#define KEEP_BUF 65536u
/* Largest WebSocket frame header: 2 + 8 (length) + 4 (mask). */
#define WS_MAX_HEADER 14u

typedef struct req_slot {
    uint32_t id; /* 0: empty */
    atollc_response_cb cb;
    void *ud;
} req_slot;

struct atollc_client {
    uv_loop_t *loop;
    atollc_transport transport;
    char *host;
    int port;
    char *user_json;
    bool use_dict;
    bool auto_heartbeat;
    uint32_t max_package;
    uint32_t timeout_ms;
    struct sockaddr_storage addr;

    int state;
    int nhandles;       /* libuv handles not yet closed */
    int close_status;
    bool connect_pending;
    bool framed;        /* WebSocket established: output goes in frames */
    bool writing;       /* a uv_write is in flight (its bytes are in wbuf) */
    bool flush_armed;   /* the prepare handle is started */
    bool free_pending;  /* atollc_client_free came before the close finished */

    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_prepare_t flusher;
    uv_connect_t creq;
    uv_write_t wreq;

    atoll__buf in;
    atoll__buf out;
    atoll__buf wbuf;
    atoll__ws_reader ws;
    char ws_key[32];
    uint8_t frame_mask[4];
    size_t unit_at;     /* where the unit being queued starts (its frame header) */
    uint64_t rng;

    int hb_s;              /* server's heartbeat interval, seconds; 0: none */
    uint64_t hb_send_at;   /* loop time (ms) of the next client heartbeat; 0: none */
    uint64_t hb_deadline;  /* answer expected by then (pushed by last_rx); 0: none */
    uint64_t last_rx;      /* loop time of the last read */

    atollc__dict dict;

    req_slot *reqs;
    size_t req_mask;
    size_t nreqs;
    uint32_t next_id;

    atollc_connect_cb connect_cb;
    void *connect_ud;
    atollc_push_cb push_cb;
    void *push_ud;
    atollc_kick_cb kick_cb;
    void *kick_ud;
    atollc_close_cb close_cb;
    void *close_ud;
};

static void begin_close(atollc_client *c, int status);
static void arm_flush(atollc_client *c);
static void on_timer(uv_timer_t *t);

/* ---- small helpers ------------------------------------------------------------ */

static bool
active(const atollc_client *c)
{
    return c->state > ST_NEW && c->state < ST_CLOSING;
}

/* splitmix64: WebSocket mask keys only need to be unguessable by a proxy in the
 * path, not cryptographic per frame; the seed comes from the OS CSPRNG. */
static uint64_t
rng_next(atollc_client *c)
{
    uint64_t z = (c->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* ---- pending requests ------------------------------------------------------------ */

static int
req_grow(atollc_client *c)
{
    size_t cap = c->reqs ? (c->req_mask + 1) * 2 : 16;
    req_slot *slots = calloc(cap, sizeof *slots);
    if (slots == NULL)
        return ATOLL_ENOMEM;
    for (size_t i = 0; c->reqs && i <= c->req_mask; i++) {
        if (c->reqs[i].id == 0)
            continue;
        size_t s = c->reqs[i].id & (cap - 1);
        while (slots[s].id != 0)
            s = (s + 1) & (cap - 1);
        slots[s] = c->reqs[i];
    }
    free(c->reqs);
    c->reqs = slots;
    c->req_mask = cap - 1;
    return ATOLL_OK;
}

static int
req_put(atollc_client *c, uint32_t id, atollc_response_cb cb, void *ud)
{
    if ((c->reqs == NULL || (c->nreqs + 1) * 2 > c->req_mask + 1) && req_grow(c) != ATOLL_OK)
        return ATOLL_ENOMEM;
    size_t s = id & c->req_mask;
    while (c->reqs[s].id != 0)
        s = (s + 1) & c->req_mask;
    c->reqs[s] = (req_slot){id, cb, ud};
    c->nreqs++;
    return ATOLL_OK;
}

/* Removes id from the table into *out; false when it is not pending. */
static bool
req_take(atollc_client *c, uint32_t id, req_slot *out)
{
    if (c->nreqs == 0 || id == 0)
        return false;
    size_t mask = c->req_mask;
    size_t i = id & mask;
    while (c->reqs[i].id != id) {
        if (c->reqs[i].id == 0)
            return false;
        i = (i + 1) & mask;
    }
    *out = c->reqs[i];
    /* Backward-shift deletion: pull later members of the probe run into the hole when
     * their home slot is not cyclically inside (hole, their position]. */
    for (size_t j = (i + 1) & mask; c->reqs[j].id != 0; j = (j + 1) & mask) {
        size_t home = c->reqs[j].id & mask;
        bool stays = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            c->reqs[i] = c->reqs[j];
            i = j;
        }
    }
    c->reqs[i].id = 0;
    c->nreqs--;
    return true;
}

static int
req_id_cmp(const void *a, const void *b)
{
    uint32_t x = ((const req_slot *)a)->id, y = ((const req_slot *)b)->id;
    return x < y ? -1 : x > y;
}

/* ---- output ----------------------------------------------------------------------- */

static void
on_write(uv_write_t *req, int status)
{
    atollc_client *c = req->data;
    c->writing = false;
    c->wbuf.len = 0;
    atoll__buf_shrink(&c->wbuf, KEEP_BUF);
    if (status < 0) {
        begin_close(c, ATOLL_ECLOSED);
        return;
    }
    if (c->out.len > 0 && active(c))
        arm_flush(c);
}

/* Writes everything gathered: one writev, and uv_write only for what the kernel did
 * not take. */
static void
flush(atollc_client *c)
{
    if (c->writing || c->out.len == 0 || !active(c))
        return;
    uv_buf_t b = uv_buf_init((char *)atoll__buf_data(&c->out), (unsigned)c->out.len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == (int)c->out.len) {
        c->out.len = 0;
        atoll__buf_shrink(&c->out, KEEP_BUF);
        return;
    }
    if (n < 0 && n != UV_EAGAIN) {
        begin_close(c, ATOLL_ECLOSED);
        return;
    }
    if (n > 0)
        atoll__buf_consume(&c->out, (size_t)n);
    atoll__buf t = c->wbuf;
    c->wbuf = c->out;
    c->out = t;
    b = uv_buf_init((char *)atoll__buf_data(&c->wbuf), (unsigned)c->wbuf.len);
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
        c->wbuf.len = 0;
        begin_close(c, ATOLL_ECLOSED);
        return;
    }
    c->writing = true;
}

static void
on_prepare(uv_prepare_t *p)
{
    atollc_client *c = p->data;
    c->flush_armed = false;
    uv_prepare_stop(p);
    flush(c);
}

static void
arm_flush(atollc_client *c)
{
    if (!c->flush_armed && !c->writing) {
        c->flush_armed = true;
        uv_prepare_start(&c->flusher, on_prepare);
    }
}

/* out_begin / out_end bracket one outgoing unit of exactly `len` bytes (a package, or
 * the raw bytes of atollc_send_raw). On an established WebSocket the unit becomes one
 * masked binary frame: the header goes in first and the payload is masked in place
 * once written. Room for everything is reserved here, so the codec's appends (which
 * abort on allocation failure, a server-core policy) never need to grow the buffer. */
static int
out_begin(atollc_client *c, int opcode, size_t len, size_t *start)
{
    if (atoll__buf_try_reserve(&c->out, len + WS_MAX_HEADER) != ATOLL_OK)
        return ATOLL_ENOMEM;
    c->unit_at = c->out.len;
    if (c->framed) {
        uint64_t r = rng_next(c);
        memcpy(c->frame_mask, &r, 4);
        uint8_t hdr[WS_MAX_HEADER];
        size_t hl = atoll__ws_frame_header(hdr, opcode, true, len, c->frame_mask);
        atoll__buf_append(&c->out, hdr, hl);
    }
    *start = c->out.len;
    return ATOLL_OK;
}

static int
out_end(atollc_client *c, size_t start, size_t len)
{
    if (c->out.len - start != len) {
        /* The codec wrote another length than the protocol says: drop the unit rather
         * than send a frame whose header lies about its payload. */
        c->out.len = c->unit_at;
        return ATOLL_EPROTO;
    }
    if (c->framed)
        atoll__ws_mask(atoll__buf_data(&c->out) + start, len, c->frame_mask, 0);
    arm_flush(c);
    return ATOLL_OK;
}

static int
queue_bytes(atollc_client *c, int opcode, const void *p, size_t n)
{
    size_t start;
    int r = out_begin(c, opcode, n, &start);
    if (r != ATOLL_OK)
        return r;
    atoll__buf_append(&c->out, p, n);
    return out_end(c, start, n);
}

static int
queue_empty_pkg(atollc_client *c, int type)
{
    uint8_t hdr[ATOLL_PKG_HEADER_LEN];
    atoll__pkg_header(hdr, type, 0);
    return queue_bytes(c, ATOLL_WS_OP_BINARY, hdr, sizeof hdr);
}

static int
queue_handshake(atollc_client *c)
{
    static const char head[] =
        "{\"sys\":{\"type\":\"atollc\",\"version\":\"" ATOLL_VERSION_STRING "\"}";
    size_t ulen = c->user_json ? strlen(c->user_json) : 0;
    size_t blen = sizeof head - 1 + (c->user_json ? 8 + ulen : 0) + 1;
    size_t start;
    int r = out_begin(c, ATOLL_WS_OP_BINARY, ATOLL_PKG_HEADER_LEN + blen, &start);
    if (r != ATOLL_OK)
        return r;
    uint8_t hdr[ATOLL_PKG_HEADER_LEN];
    atoll__pkg_header(hdr, ATOLL_PKG_HANDSHAKE, (uint32_t)blen);
    atoll__buf_append(&c->out, hdr, sizeof hdr);
    atoll__buf_append(&c->out, head, sizeof head - 1);
    if (c->user_json) {
        atoll__buf_append(&c->out, ",\"user\":", 8);
        atoll__buf_append(&c->out, c->user_json, ulen);
    }
    atoll__buf_append(&c->out, "}", 1);
    return out_end(c, start, ATOLL_PKG_HEADER_LEN + blen);
}

static int
queue_upgrade(atollc_client *c)
{
    uint8_t raw[16];
    for (int i = 0; i < 16; i += 8) {
        uint64_t r = rng_next(c);
        memcpy(raw + i, &r, 8);
    }
    EVP_EncodeBlock((unsigned char *)c->ws_key, raw, sizeof raw);
    char host[INET6_ADDRSTRLEN + 16];
    if (strchr(c->host, ':'))
        snprintf(host, sizeof host, "[%s]:%d", c->host, c->port);
    else
        snprintf(host, sizeof host, "%s:%d", c->host, c->port);
    if (atoll__buf_try_reserve(&c->out, 512 + strlen(host)) != ATOLL_OK)
        return ATOLL_ENOMEM;
    atoll__http_put_upgrade_request(&c->out, host, "/", c->ws_key);
    arm_flush(c);
    return ATOLL_OK;
}

/* ---- closing ---------------------------------------------------------------------- */

static void
finish(atollc_client *c)
{
    c->state = ST_FINISHING;
    atoll__buf_fini(&c->in);
    atoll__buf_fini(&c->out);
    atoll__buf_fini(&c->wbuf);
    if (c->transport == ATOLLC_WS)
        atoll__ws_reader_fini(&c->ws);
    int status = c->close_status;

    if (c->connect_pending) {
        c->connect_pending = false;
        c->connect_cb(c, status == ATOLLC_OK ? ATOLL_ECANCELED : status, c->connect_ud);
    }
    /* Fail pending requests oldest first: the table is compacted and sorted in place
     * (no allocation on this path) and detached before the first callback, so a
     * callback that sends gets an error instead of a new entry. */
    req_slot *pending = c->reqs;
    size_t k = 0;
    for (size_t i = 0; pending != NULL && i <= c->req_mask; i++)
        if (pending[i].id != 0)
            pending[k++] = pending[i];
    if (k > 1)
        qsort(pending, k, sizeof *pending, req_id_cmp);
    c->reqs = NULL;
    c->req_mask = 0;
    c->nreqs = 0;
    for (size_t i = 0; i < k; i++)
        pending[i].cb(c, ATOLL_ECLOSED, NULL, 0, pending[i].ud);
    free(pending);
    c->state = ST_CLOSED;
    if (c->free_pending) {
        atollc_client_free(c);
        return;
    }
    /* Last use of c: the application may free it inside this callback. */
    if (c->close_cb != NULL)
        c->close_cb(c, status, c->close_ud);
}

static void
on_handle_closed(uv_handle_t *h)
{
    atollc_client *c = h->data;
    if (--c->nhandles == 0)
        finish(c);
}

/* Starts closing with status (ATOLLC_OK when the application asked). Output already
 * gathered is written best-effort without waiting; on WebSocket a close frame goes
 * with it. Everything else happens in the handles' close callbacks. */
static void
begin_close(atollc_client *c, int status)
{
    if (!active(c))
        return;
    bool connected = c->state >= ST_UPGRADING;
    c->state = ST_CLOSING;
    c->close_status = status;
    if (connected) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        if (c->framed && status == ATOLLC_OK) {
            uint8_t code[2] = {ATOLL_WS_CLOSE_NORMAL >> 8, ATOLL_WS_CLOSE_NORMAL & 0xff};
            queue_bytes(c, ATOLL_WS_OP_CLOSE, code, sizeof code);
        }
        if (!c->writing && c->out.len > 0) {
            uv_buf_t b = uv_buf_init((char *)atoll__buf_data(&c->out), (unsigned)c->out.len);
            uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        }
    }
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->flusher, on_handle_closed);
}

/* ---- heartbeats and deadlines -------------------------------------------------------- */

static void
timer_rearm(atollc_client *c)
{
    uint64_t now = uv_now(c->loop), due = 0;
    if (c->hb_send_at)
        due = c->hb_send_at;
    if (c->hb_deadline) {
        uint64_t d = c->hb_deadline;
        if (due == 0 || d < due)
            due = d;
    }
    if (due == 0) {
        uv_timer_stop(&c->timer);
        return;
    }
    uv_timer_start(&c->timer, on_timer, due > now ? due - now : 0, 0);
}

static void
on_timer(uv_timer_t *t)
{
    atollc_client *c = t->data;
    if (c->state < ST_WORKING) {
        begin_close(c, ATOLL_ETIMEDOUT); /* connect + handshake deadline */
        return;
    }
    if (c->state != ST_WORKING)
        return;
    uint64_t now = uv_now(c->loop), period = (uint64_t)c->hb_s * 1000;
    if (c->hb_send_at && now >= c->hb_send_at) {
        c->hb_send_at = 0;
        if (queue_empty_pkg(c, ATOLL_PKG_HEARTBEAT) != ATOLL_OK) {
            begin_close(c, ATOLL_ENOMEM);
            return;
        }
        c->hb_deadline = now + 2 * period;
    }
    if (c->hb_deadline) {
        /* Any package received since the heartbeat went out pushes the deadline. */
        if (c->last_rx + 2 * period > c->hb_deadline)
            c->hb_deadline = c->last_rx + 2 * period;
        if (now >= c->hb_deadline) {
            begin_close(c, ATOLL_ETIMEDOUT);
            return;
        }
    }
    timer_rearm(c);
}

static void
on_server_heartbeat(atollc_client *c)
{
    if (!c->auto_heartbeat || c->hb_s <= 0)
        return;
    c->hb_deadline = 0;
    if (c->hb_send_at == 0)
        c->hb_send_at = uv_now(c->loop) + (uint64_t)c->hb_s * 1000;
    timer_rearm(c);
}

/* ---- input ------------------------------------------------------------------------ */

static void
on_handshake_reply(atollc_client *c, const uint8_t *body, size_t len)
{
    int r = atollc__reply_parse(body, len, &c->hb_s, &c->dict);
    if (r == ATOLL_OK)
        r = queue_empty_pkg(c, ATOLL_PKG_HANDSHAKE_ACK);
    if (r != ATOLL_OK) {
        begin_close(c, r);
        return;
    }
    c->state = ST_WORKING;
    uv_timer_stop(&c->timer);
    c->connect_pending = false;
    c->connect_cb(c, ATOLLC_OK, c->connect_ud);
}

static void
on_data(atollc_client *c, const uint8_t *body, size_t len)
{
    atoll__msg m;
    if (atoll__msg_decode(body, len, &m) != ATOLL_OK) {
        begin_close(c, ATOLL_EPROTO);
        return;
    }
    const char *mbody = m.body ? (const char *)m.body : "";
    if (m.type == ATOLL_MSG_RESPONSE) {
        req_slot s;
        if (req_take(c, m.id, &s))
            s.cb(c, ATOLLC_OK, mbody, m.body_len, s.ud);
        return; /* an unknown id is a late answer to nothing: ignored */
    }
    if (m.type != ATOLL_MSG_PUSH) {
        begin_close(c, ATOLL_EPROTO);
        return;
    }
    char route[ATOLL_ROUTE_MAX + 1];
    const char *rp = route;
    if (m.compressed) {
        rp = atollc__dict_find_code(&c->dict, m.route_code);
        if (rp == NULL) {
            begin_close(c, ATOLL_EPROTO); /* the server used a code it never announced */
            return;
        }
    } else {
        memcpy(route, m.route, m.route_len);
        route[m.route_len] = '\0';
    }
    if (c->push_cb != NULL)
        c->push_cb(c, rp, mbody, m.body_len, c->push_ud);
}

static void
on_package(atollc_client *c, const atoll__pkg *pkg)
{
    switch (pkg->type) {
    case ATOLL_PKG_HANDSHAKE:
        if (c->state != ST_HANDSHAKE) {
            begin_close(c, ATOLL_EPROTO);
            return;
        }
        on_handshake_reply(c, pkg->body, pkg->len);
        return;
    case ATOLL_PKG_HEARTBEAT:
        if (c->state == ST_WORKING)
            on_server_heartbeat(c);
        return;
    case ATOLL_PKG_DATA:
        if (c->state != ST_WORKING) {
            begin_close(c, ATOLL_EPROTO);
            return;
        }
        on_data(c, pkg->body, pkg->len);
        return;
    case ATOLL_PKG_KICK:
        if (c->kick_cb != NULL)
            c->kick_cb(c, pkg->body ? (const char *)pkg->body : "", pkg->len, c->kick_ud);
        return; /* the server closes the connection next */
    default:
        begin_close(c, ATOLL_EPROTO);
        return;
    }
}

/* A server WebSocket message: one or more whole packages. */
static void
on_ws_message(atollc_client *c, const uint8_t *p, size_t n)
{
    size_t off = 0;
    while (off < n && active(c)) {
        atoll__pkg pkg;
        ssize_t r = atoll__pkg_parse(p + off, n - off, c->max_package, &pkg);
        if (r <= 0) {
            begin_close(c, ATOLL_EPROTO); /* bad header, or a package cut by the message end */
            return;
        }
        off += (size_t)r;
        on_package(c, &pkg);
    }
}

/* Consumes what it can of in[0..len); returns the bytes used. */
static size_t
process_input(atollc_client *c)
{
    uint8_t *p = atoll__buf_data(&c->in);
    size_t n = c->in.len, off = 0;
    while (off < n && active(c)) {
        ssize_t r;
        if (c->state == ST_UPGRADING) {
            r = atoll__http_response_parse(p + off, n - off, c->ws_key);
            if (r == 0)
                break;
            if (r < 0) {
                begin_close(c, ATOLL_EPROTO);
                break;
            }
            off += (size_t)r;
            c->framed = true;
            c->state = ST_HANDSHAKE;
            if ((r = queue_handshake(c)) != ATOLL_OK)
                begin_close(c, (int)r);
            continue;
        }
        if (c->transport == ATOLLC_WS) {
            atoll__ws_event ev;
            r = atoll__ws_reader_next(&c->ws, p + off, n - off, &ev);
            if (r == 0)
                break;
            if (r < 0) {
                begin_close(c, ATOLL_EPROTO);
                break;
            }
            off += (size_t)r;
            if (ev.type == ATOLL_WS_EV_MESSAGE) {
                on_ws_message(c, ev.data, ev.len);
            } else if (ev.type == ATOLL_WS_EV_PING) {
                if (queue_bytes(c, ATOLL_WS_OP_PONG, ev.data, ev.len) != ATOLL_OK)
                    begin_close(c, ATOLL_ENOMEM);
            } else if (ev.type == ATOLL_WS_EV_CLOSE) {
                /* Answer with a close frame (RFC 6455 5.5.1), written as the socket
                 * closes. */
                uint8_t code[2] = {ATOLL_WS_CLOSE_NORMAL >> 8, ATOLL_WS_CLOSE_NORMAL & 0xff};
                queue_bytes(c, ATOLL_WS_OP_CLOSE, code, sizeof code);
                begin_close(c, ATOLL_ECLOSED);
            }
            continue;
        }
        atoll__pkg pkg;
        r = atoll__pkg_parse(p + off, n - off, c->max_package, &pkg);
        if (r == 0)
            break;
        if (r < 0) {
            begin_close(c, ATOLL_EPROTO);
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
    atollc_client *c = h->data;
    if (atoll__buf_try_reserve(&c->in, READ_CHUNK) != ATOLL_OK) {
        *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
        return;
    }
    *buf = uv_buf_init((char *)atoll__buf_data(&c->in) + c->in.len,
                       (unsigned)(c->in.cap - c->in.len));
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    atollc_client *c = s->data;
    if (nread == 0 || !active(c))
        return;
    if (nread < 0) {
        begin_close(c, nread == UV_ENOBUFS ? ATOLL_ENOMEM : ATOLL_ECLOSED);
        return;
    }
    c->in.len += (size_t)nread;
    c->last_rx = uv_now(c->loop);
    atoll__buf_consume(&c->in, process_input(c));
    atoll__buf_shrink(&c->in, KEEP_BUF);
}

static void
on_connect(uv_connect_t *req, int status)
{
    atollc_client *c = req->data;
    if (c->state != ST_CONNECTING)
        return; /* closed while connecting (status is UV_ECANCELED) */
    if (status < 0) {
        begin_close(c, ATOLL_EIO);
        return;
    }
    int r;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
        begin_close(c, ATOLL_EIO);
        return;
    }
    if (c->transport == ATOLLC_WS) {
        c->state = ST_UPGRADING;
        r = queue_upgrade(c);
    } else {
        c->state = ST_HANDSHAKE;
        r = queue_handshake(c);
    }
    if (r != ATOLL_OK)
        begin_close(c, r);
}

/* ---- public API ------------------------------------------------------------------- */

void
atollc_opts_init(atollc_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->transport = ATOLLC_TCP;
    opts->host = "127.0.0.1";
    opts->use_dict = 1;
    opts->auto_heartbeat = 1;
}

int
atollc_client_new(uv_loop_t *loop, const atollc_opts *opts, atollc_client **out)
{
    if (out == NULL)
        return ATOLL_EINVAL;
    *out = NULL;
    if (loop == NULL || opts == NULL || opts->host == NULL || opts->port <= 0 ||
        opts->port > 65535 || (opts->transport != ATOLLC_TCP && opts->transport != ATOLLC_WS))
        return ATOLL_EINVAL;
    if (opts->user_json != NULL &&
        !atoll__json_valid((const uint8_t *)opts->user_json, strlen(opts->user_json),
                           ATOLL_JSON_MAX_DEPTH))
        return ATOLL_EINVAL;
    atollc_client *c = calloc(1, sizeof *c);
    if (c == NULL)
        return ATOLL_ENOMEM;
    if (uv_ip4_addr(opts->host, opts->port, (struct sockaddr_in *)&c->addr) != 0 &&
        uv_ip6_addr(opts->host, opts->port, (struct sockaddr_in6 *)&c->addr) != 0) {
        free(c);
        return ATOLL_EINVAL; /* numeric addresses only: no resolver on the loop */
    }
    c->host = strdup(opts->host);
    c->user_json = opts->user_json ? strdup(opts->user_json) : NULL;
    if (c->host == NULL || (opts->user_json && c->user_json == NULL)) {
        free(c->host);
        free(c->user_json);
        free(c);
        return ATOLL_ENOMEM;
    }
    c->loop = loop;
    c->transport = opts->transport;
    c->port = opts->port;
    c->use_dict = opts->use_dict != 0;
    c->auto_heartbeat = opts->auto_heartbeat != 0;
    c->max_package = opts->max_package && opts->max_package < ATOLL_PKG_BODY_CEILING
                         ? opts->max_package
                         : ATOLL_PKG_BODY_CEILING;
    c->timeout_ms = opts->timeout_ms ? opts->timeout_ms : 5000;
    c->next_id = 1;
    uint64_t seed;
    if (RAND_bytes((unsigned char *)&seed, sizeof seed) != 1)
        seed = uv_hrtime() ^ (uint64_t)(uintptr_t)c;
    c->rng = seed;
    *out = c;
    return ATOLLC_OK;
}

int
atollc_connect(atollc_client *c, atollc_connect_cb cb, void *ud)
{
    if (c == NULL || cb == NULL || c->state != ST_NEW)
        return ATOLL_EINVAL;
    if (uv_tcp_init(c->loop, &c->tcp) < 0)
        return ATOLL_EIO;
    uv_timer_init(c->loop, &c->timer);
    uv_prepare_init(c->loop, &c->flusher);
    c->tcp.data = c->timer.data = c->flusher.data = c->creq.data = c;
    c->nhandles = 3;
    uv_tcp_nodelay(&c->tcp, 1); /* applied when connect creates the socket */
    if (c->transport == ATOLLC_WS) {
        /* A server message may batch packages: allow a few maximal ones. */
        atoll__ws_reader_init(&c->ws, false, (size_t)c->max_package * 2 + 64);
    }
    c->connect_cb = cb;
    c->connect_ud = ud;
    c->connect_pending = true;
    c->state = ST_CONNECTING;
    c->last_rx = uv_now(c->loop);
    uv_timer_start(&c->timer, on_timer, c->timeout_ms, 0);
    /* A failure here (EMFILE...) is reported through the callbacks like any other, so
     * the handles above are closed before the application may free the client. */
    if (uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&c->addr, on_connect) < 0)
        begin_close(c, ATOLL_EIO);
    return ATOLLC_OK;
}

int
atollc_request(atollc_client *c, const char *route, const void *body, size_t len,
               atollc_response_cb cb, void *ud)
{
    if (c == NULL || route == NULL || cb == NULL || (len > 0 && body == NULL))
        return ATOLL_EINVAL;
    if (c->state != ST_WORKING)
        return ATOLL_ECLOSED;
    size_t rlen = strlen(route);
    if (rlen > ATOLL_ROUTE_MAX)
        return ATOLL_EINVAL;
    uint16_t code = c->use_dict ? atollc__dict_code(&c->dict, route, rlen) : 0;
    uint32_t id = c->next_id;
    size_t msg_len = atoll__msg_size(ATOLL_MSG_REQUEST, id, rlen, code, len);
    if (msg_len > ATOLL_PKG_BODY_CEILING)
        return ATOLL_ELIMIT;
    if (req_put(c, id, cb, ud) != ATOLL_OK)
        return ATOLL_ENOMEM;
    size_t start;
    int r = out_begin(c, ATOLL_WS_OP_BINARY, ATOLL_PKG_HEADER_LEN + msg_len, &start);
    if (r == ATOLL_OK) {
        atoll__msg_put_request(&c->out, id, route, rlen, code, body, len);
        r = out_end(c, start, ATOLL_PKG_HEADER_LEN + msg_len);
    }
    if (r != ATOLL_OK) {
        req_slot s;
        req_take(c, id, &s);
        return r;
    }
    c->next_id = id + 1 ? id + 1 : 1; /* 0 means "no id" on the wire */
    return ATOLLC_OK;
}

int
atollc_notify(atollc_client *c, const char *route, const void *body, size_t len)
{
    if (c == NULL || route == NULL || (len > 0 && body == NULL))
        return ATOLL_EINVAL;
    if (c->state != ST_WORKING)
        return ATOLL_ECLOSED;
    size_t rlen = strlen(route);
    if (rlen > ATOLL_ROUTE_MAX)
        return ATOLL_EINVAL;
    uint16_t code = c->use_dict ? atollc__dict_code(&c->dict, route, rlen) : 0;
    size_t msg_len = atoll__msg_size(ATOLL_MSG_NOTIFY, 0, rlen, code, len);
    if (msg_len > ATOLL_PKG_BODY_CEILING)
        return ATOLL_ELIMIT;
    size_t start;
    int r = out_begin(c, ATOLL_WS_OP_BINARY, ATOLL_PKG_HEADER_LEN + msg_len, &start);
    if (r != ATOLL_OK)
        return r;
    atoll__msg_put_notify(&c->out, route, rlen, code, body, len);
    return out_end(c, start, ATOLL_PKG_HEADER_LEN + msg_len);
}

int
atollc_send_raw(atollc_client *c, const void *bytes, size_t len)
{
    if (c == NULL || (len > 0 && bytes == NULL))
        return ATOLL_EINVAL;
    /* Allowed once the transport is up (handshake sent), so tests can send anything. */
    if (c->state != ST_HANDSHAKE && c->state != ST_WORKING)
        return ATOLL_ECLOSED;
    return queue_bytes(c, ATOLL_WS_OP_BINARY, bytes, len);
}

void
atollc_on_push(atollc_client *c, atollc_push_cb cb, void *ud)
{
    c->push_cb = cb;
    c->push_ud = ud;
}

void
atollc_on_kick(atollc_client *c, atollc_kick_cb cb, void *ud)
{
    c->kick_cb = cb;
    c->kick_ud = ud;
}

void
atollc_on_close(atollc_client *c, atollc_close_cb cb, void *ud)
{
    c->close_cb = cb;
    c->close_ud = ud;
}

size_t
atollc_pending(const atollc_client *c)
{
    return c->nreqs;
}

int
atollc_heartbeat_interval(const atollc_client *c)
{
    return c->hb_s;
}

uint16_t
atollc_route_code(const atollc_client *c, const char *route)
{
    return route ? atollc__dict_code(&c->dict, route, strlen(route)) : 0;
}

void
atollc_close(atollc_client *c)
{
    if (c != NULL)
        begin_close(c, ATOLLC_OK);
}

void
atollc_client_free(atollc_client *c)
{
    if (c == NULL)
        return;
    if (c->state != ST_NEW && c->state != ST_CLOSED) {
        /* Handles are still in the loop (or callbacks are being failed): close first
         * and free after the last one, without calling the close callback. */
        c->free_pending = true;
        begin_close(c, ATOLLC_OK);
        return;
    }
    atollc__dict_clear(&c->dict);
    free(c->reqs);
    free(c->host);
    free(c->user_json);
    free(c);
}
