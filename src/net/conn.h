/* conn.h -- the connection layer: TCP and WebSocket on one port, framing of Pomelo
 * packages, deadlines, batched output, closing (conn.c), and the net of one thread with
 * its listening socket (net.c).
 *
 * It knows nothing of sessions. The layer above (src/node/session.c) registers an
 * atoll__conn_ops table: the net layer allocates ops->conn_size bytes per connection
 * (the owner's struct begins with an atoll__conn, the way libuv handles are embedded),
 * and calls the owner back when a package arrives, when the input is bad, when a
 * WebSocket ping arrives, when the owner's own deadline passes, and once when the
 * connection closes. Everything else goes down through the functions below.
 *
 * One atoll__net per worker thread holds what the connections of that thread share:
 * the loop, the read scratch buffer, the list of connections with output this turn,
 * the timing wheel of their deadlines and the listener. Only that thread touches it.
 *
 * Reading: libuv reads into the scratch buffer; bytes are decoded in place (WebSocket
 * payloads unmasked in place) and only an unfinished tail is copied into the conn's own
 * buffer. The first bytes choose the transport, as Pomelo's switcher does: an HTTP
 * method means a WebSocket upgrade, anything else a raw Pomelo stream.
 *
 * Writing: the owner appends packages to c->out during the loop turn
 * (atoll__conn_write, or in place followed by atoll__conn_mark_dirty); atoll__net_flush,
 * once per turn, writes each dirty conn's output with one uv_try_write (writev): on
 * WebSocket a frame header built on the stack, the gathered packages as one binary
 * message, then c->ctrl (pongs and the final close frame, already framed). What the
 * socket does not take is copied to c->wbuf for a uv_write; while that is in flight new
 * output keeps gathering in c->out. A conn whose unsent output passes output_cap is
 * closed with a reset: a slow reader cannot grow memory.
 *
 * Deadlines: each conn sits in the wheel at the earliest of: the handshake deadline
 * (until the owner calls atoll__conn_established), the owner's deadline
 * (atoll__conn_set_deadline: the heartbeat), the idle deadline (no bytes received) and
 * the close deadline (CLOSING). Reads and heartbeats only move deadlines later, so they
 * just record a time; an entry that fires early finds nothing due and is put back.
 *
 * Invariants: a conn is touched only by its net's thread; a CLOSING conn reads
 * nothing and is closed once its output is written or its close deadline passes;
 * ops->closed runs exactly once per conn, before its memory is freed.
 */
#ifndef ATOLL_NET_CONN_H
#define ATOLL_NET_CONN_H

#include "../core/core.h"
#include "../core/wheel.h"
#include "../proto/proto.h"
#include "ws.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <uv.h>

typedef struct atoll__net atoll__net;
typedef struct atoll__conn atoll__conn;

typedef enum atoll__conn_state {
    ATOLL_CONN_INIT,    /* accepted; the first bytes decide TCP or WebSocket */
    ATOLL_CONN_HTTP,    /* gathering the HTTP upgrade head */
    ATOLL_CONN_OPEN,    /* packages flow (raw stream or WebSocket messages) */
    ATOLL_CONN_CLOSING, /* flushing its last output; reads nothing */
} atoll__conn_state;

struct atoll__conn {
    uv_tcp_t tcp;             /* first: the handle's data is the conn */
    atoll__wheel_entry deadline; /* in the net's wheel at the earliest deadline */
    atoll__net *net;
    uint64_t log_id;          /* the owner's name for it in log lines (the session id) */
    atoll__conn_state state;
    bool ws;                  /* WebSocket transport */
    bool established;         /* the owner's handshake is done: no handshake deadline */
    bool writing;             /* a uv_write is in flight */
    bool in_dirty_list;
    bool closed_handles;      /* uv_close called, ops->closed ran */
    bool counted;             /* counted in the node's open connections */
    bool abort;               /* close with a TCP reset (a peer that does not read) */
    atoll__conn *dirty_next;  /* net's list of conns with output */
    atoll__conn *all_prev, *all_next; /* net's list of open conns */

    atoll__buf in;            /* unfinished tail of input */
    atoll__buf out;           /* packages gathered this turn (one WS message) */
    atoll__buf ctrl;          /* WebSocket control frames, framed (pong, close) */
    atoll__buf wbuf;          /* output being written (uv_write) */
    uv_write_t *wreq;         /* only while a uv_write is in flight (the slow path) */
    atoll__ws_reader wsr;
    size_t http_scanned;      /* bytes of the upgrade head already searched */

    uint64_t accepted_ms;
    uint64_t last_rx_ms;
    uint64_t owner_deadline_ms; /* 0: none */
    uint64_t close_deadline_ms;
};

/* What the owner of the connections (the session layer) is told. Every callback runs
 * on the net's thread. */
typedef struct atoll__conn_ops {
    size_t conn_size;         /* bytes per conn, >= sizeof(atoll__conn); zeroed */
    /* Accepted, before anything is read: the owner sets up its part (and log_id). */
    void (*opened)(atoll__conn *c);
    /* One package, in order. Returns false when the rest of the input must be dropped
     * (the owner closed the conn). */
    bool (*package)(atoll__conn *c, const atoll__pkg *pkg);
    /* Input that breaks the framing (a bad package header, a WebSocket protocol
     * error): the owner answers as its protocol says and closes with ws_code. */
    void (*bad_input)(atoll__conn *c, const char *reason, int ws_code);
    /* A WebSocket ping: true when the client may send it (rate limits); false after
     * the owner closed the conn. */
    bool (*ping)(atoll__conn *c);
    /* The owner's deadline passed (atoll__conn_set_deadline). */
    void (*expired)(atoll__conn *c);
    /* The conn is closing for good: the owner's last look at it. */
    void (*closed)(atoll__conn *c);
} atoll__conn_ops;

/* Limits of the net layer, from the node's settings. */
typedef struct atoll__net_limits {
    uint32_t max_package;     /* bytes of one package body */
    int max_conns;            /* open connections of the whole node */
    int idle_timeout_s;
    int handshake_timeout_s;
    size_t output_cap;
} atoll__net_limits;

typedef struct atoll__net_stats {
    uint64_t accepted;
    uint64_t rejected_full;
    uint64_t closed;
} atoll__net_stats;

struct atoll__net {
    uv_loop_t *loop;
    const atoll__conn_ops *ops;
    const atoll__net_limits *limits;
    atomic_int *open_total;   /* the node's open connections, all threads */
    uint8_t *scratch;         /* read buffer shared by this net's conns */
    size_t scratch_len;
    atoll__conn *dirty;       /* conns with output to write this turn */
    atoll__conn *all;         /* open conns */
    size_t nconns;
    atoll__wheel deadlines;   /* every conn's earliest deadline */
    uv_tcp_t listener;
    bool listening;
    bool stopping;            /* accepts nothing; drained() when the last conn is gone */
    void (*drained)(atoll__net *net);
    void *data;               /* the owner's (its worker) */
    atoll__net_stats stats;
};

/* ---- the net of one thread ---------------------------------------------------------------- */

void atoll__net_init(atoll__net *net, uv_loop_t *loop, const atoll__conn_ops *ops,
                     const atoll__net_limits *limits, atomic_int *open_total);
/* After the loop has closed every handle: frees what is left of the conns. */
void atoll__net_fini(atoll__net *net);
/* Fails with ATOLL_EADDR when another socket listens on host:port already. Needed
 * because SO_REUSEPORT would let this node silently share the port with another
 * process of the same user (a node started twice). Port 0 always passes. */
int atoll__listen_probe(const char *host, int port);
/* Opens this net's own SO_REUSEPORT listener (the kernel spreads accepts over the
 * threads with no shared lock); *bound_port gets the real port. */
int atoll__net_listen(atoll__net *net, const char *host, int port, int *bound_port);
/* Writes the gathered output of every dirty conn (once per loop turn). */
void atoll__net_flush(atoll__net *net);
/* Runs the deadlines that are due (the owner's wheel timer, every wheel tick). */
void atoll__net_deadlines(atoll__net *net);
/* Tick of the deadline wheel, in ms. */
#define ATOLL_NET_WHEEL_TICK_MS 100
/* Stops listening and closes every conn (flushing first); net->drained runs once the
 * last one is gone (at once when there is none). */
void atoll__net_stop(atoll__net *net, int ws_code);
/* The loop has ended: closes what is left at once, output dropped. */
void atoll__net_sweep(atoll__net *net);

/* ---- one connection ------------------------------------------------------------------------ */

/* Starts closing: no more reads; output already gathered is written first (at most
 * 2 s), then the handles close. For WebSocket a close frame with ws_code is added
 * (0: none). reason is only logged, during the call. */
void atoll__conn_close(atoll__conn *c, const char *reason, int ws_code);
/* The owner's handshake is done: the handshake deadline no longer applies. */
void atoll__conn_established(atoll__conn *c);
/* The owner's deadline (ms on the loop's clock; 0: none). Only moves it; a later
 * deadline costs nothing. */
void atoll__conn_set_deadline(atoll__conn *c, uint64_t ms);
/* Queues the conn for this turn's flush (after appending to c->out or c->ctrl). */
void atoll__conn_mark_dirty(atoll__conn *c);
/* Makes sure n more bytes of output keep the conn within output_cap: flushes what is
 * gathered when needed, and closes the conn as a slow reader (returning false) when it
 * stays over. Call before appending anything large or fanned out. */
bool atoll__conn_out_room(atoll__conn *c, size_t n);
/* out_room, append, mark dirty: false when the conn is closing or was dropped. */
bool atoll__conn_write(atoll__conn *c, const void *p, size_t n);
/* Bytes waiting to be written. */
size_t atoll__conn_pending(const atoll__conn *c);
/* Inside the net layer (net.c): a conn just accepted joins the net's list, then
 * starts its deadline and reading. */
void atoll__net_link(atoll__net *net, atoll__conn *c);
void atoll__conn_start(atoll__conn *c);
/* The loop's clock (ms). */
static inline uint64_t
atoll__conn_now(const atoll__conn *c)
{
    return uv_now(c->net->loop);
}

#endif /* ATOLL_NET_CONN_H */
