/* worker.h -- the structs behind atoll__worker and atoll__conn, shared by the files of
 * the runtime (src/node and src/net: conn.c, session.c). Game code never sees
 * them. See node.h for the design.
 */
#ifndef ATOLL_WORKER_H
#define ATOLL_WORKER_H

#include "../core/map.h"
#include "../core/wheel.h"
#include "node.h"

typedef enum atoll__conn_state {
    ATOLL_CONN_INIT,     /* accepted; first bytes decide TCP or WebSocket */
    ATOLL_CONN_HTTP,     /* gathering the HTTP upgrade head */
    ATOLL_CONN_INITED,   /* Pomelo INITED: waiting for the handshake */
    ATOLL_CONN_WAIT_ACK, /* handshake answered, waiting for the ack */
    ATOLL_CONN_WORKING,  /* requests, notifies, heartbeats */
    ATOLL_CONN_CLOSING,  /* flushing its last output; reads nothing */
} atoll__conn_state;

struct atoll__conn {
    uv_tcp_t tcp;             /* first: the handle's data is the conn */
    atoll__wheel_entry deadline; /* in the worker's wheel at the earliest deadline */
    atoll__worker *worker;
    atoll_session_id id;
    atoll__conn_state state;
    bool ws;                  /* WebSocket transport */
    bool writing;             /* a uv_write is in flight */
    bool in_dirty_list;
    bool closed_handles;      /* uv_close called */
    bool counted;             /* counted in node->nconns */
    bool abort;               /* close with a TCP reset (a peer that does not read) */
    atoll__conn *dirty_next;  /* worker's list of conns with output */
    atoll__conn *all_prev, *all_next; /* worker's list of open conns */

    atoll__buf in;            /* unfinished tail of input */
    atoll__buf out;           /* packages gathered this turn (one WS message) */
    atoll__buf ctrl;          /* WebSocket control frames, framed (pong, close) */
    atoll__buf wbuf;          /* output being written (uv_write) */
    uv_write_t *wreq;         /* only while a uv_write is in flight (the slow path) */
    atoll__ws_reader wsr;
    size_t http_scanned;      /* bytes of the upgrade head already searched */

    uint64_t accepted_ms;
    uint64_t last_rx_ms;
    uint64_t hb_deadline_ms;  /* WORKING with heartbeats: close when passed */
    uint64_t close_deadline_ms;
    double tokens;            /* rate-limit bucket */
    uint64_t tokens_ms;

    char *uid;                /* bound user id, owned; NULL until gate.entry */
    bool binding;             /* a BIND is in flight */
    bool entering;            /* an AREA_ENTER is in flight */
    /* The player's area, cached (0: in none): where AREA_REQ mail goes. */
    uint64_t area;
    int area_worker;
    int area_type;
};

/* Mailbox: producers splice lists in under the lock; the owner takes the list whole. */
typedef struct atoll__mailbox {
    pthread_mutex_t lock;
    atoll__mail *head, *tail;
    uv_async_t wake;
} atoll__mailbox;

/* A FIFO list of mail (outboxes, local queue, held messages, command queues). */
typedef struct atoll__mail_list {
    atoll__mail *head, *tail;
} atoll__mail_list;

static inline void
atoll__mail_list_push(atoll__mail_list *l, atoll__mail *m)
{
    m->next = NULL;
    if (l->tail)
        l->tail->next = m;
    else
        l->head = m;
    l->tail = m;
}

/* Empties l and returns what it held, first to last. */
static inline atoll__mail *
atoll__mail_list_take(atoll__mail_list *l)
{
    atoll__mail *m = l->head;
    l->head = l->tail = NULL;
    return m;
}

/* One uid registry entry (owner worker's shard). */
typedef struct atoll__uid_entry {
    char *uid;
    atoll_session_id session;
} atoll__uid_entry;

struct atoll__worker {
    atoll__node *node;
    int index;
    pthread_t thread;
    uv_loop_t loop;
    uv_tcp_t listener;
    bool listening;
    uv_check_t flush_check;   /* writes gathered output once per loop turn */
    atoll__mailbox mailbox;
    uint8_t *scratch;         /* read buffer shared by this worker's conns */
    size_t scratch_len;
    bool scratch_busy;

    atoll__conn *dirty;       /* conns with output to write this turn */
    atoll__conn *all;         /* open conns */
    size_t nconns;
    bool stopping;
    bool stopped;             /* the loop has ended: mail sent now is dropped */
    uv_timer_t stop_timer;    /* forces the remaining conns closed on shutdown */
    atoll__wheel deadlines;   /* every conn's earliest deadline */
    uv_timer_t wheel_timer;   /* advances the wheel each tick */

    /* session slots: id = worker | slot | generation */
    atoll__conn **slots;
    uint32_t *generations;
    uint32_t nslots;
    uint32_t *free_slots;
    uint32_t nfree;

    /* uid registry shard: open addressing */
    atoll__uid_entry *uids;
    size_t nuids, uid_cap;

    /* Mail to other workers gathered this loop turn, one list per destination, posted
     * with one lock each by atoll__worker_flush_mail; mail to itself (local). */
    atoll__mail_list *outbox;
    atoll__buf *out_batch;    /* per destination: SESS_OUT records of this turn */
    atoll__mail_list local;
    uv_prepare_t prepare;     /* flushes before the loop blocks (after timers) */
    uv_idle_t local_idle;     /* keeps the loop from blocking while local mail waits */

    /* areas (src/area) */
    atoll__map areas;         /* area number -> atoll_area */
    atoll__map forwards;      /* session -> forward (a player moved away, not fenced) */
    atoll__map calls;         /* call id -> atoll__call */
    atoll__wheel call_wheel;  /* call deadlines, 1 ms */
    uv_timer_t call_timer;
    uint64_t next_call_id;
    uint64_t next_timer_id;
    int tick_fd;              /* timerfd at the earliest area tick (area/ticks.c) */
    uv_poll_t tick_poll;
    struct atoll_area **tick_heap; /* ticking areas by next tick time */
    size_t tick_len, tick_cap;
    atoll__buf scratch_out;   /* JSON of a reply or push being encoded */
    atoll__buf scratch_pkg;   /* its Pomelo package */
    /* Free lists of mail without data and of call records. Mail and calls come and go
     * in batches of hundreds per loop turn, which overflow glibc's per-thread caches
     * (7 entries a size); a list of our own made calls 20 % cheaper. Bounded. */
    atoll__mail *mail_pool;
    size_t mail_pool_len;
    void *call_pool;
    size_t call_pool_len;

    atoll__stats stats;       /* this worker's counters; its thread only */
    char name[16];
};

/* ---- conn.c -------------------------------------------------------------------------- */

void atoll__conn_accept(atoll__worker *w, uv_stream_t *server);
/* Queues the conn for this turn's flush. */
void atoll__conn_mark_dirty(atoll__conn *c);
/* Writes the gathered output of every dirty conn (the check handle). */
void atoll__worker_flush(atoll__worker *w);
/* Starts closing: no more reads; output already gathered is written first (at most
 * 2 s), then the handles close. For WebSocket a close frame with ws_code is added
 * (0: none). reason is only logged, during the call. */
void atoll__conn_close(atoll__conn *c, const char *reason, int ws_code);
/* Re-arms the conn's deadline after it moved earlier (entering WORKING). */
void atoll__conn_rearm(atoll__conn *c);
/* Runs the deadlines that are due (the worker's wheel timer). */
void atoll__worker_deadlines(atoll__worker *w);
/* Makes sure n more bytes of output keep the conn within net.output_cap: flushes what
 * is gathered when needed, and closes the conn as a slow reader (returning false) when
 * it stays over. Call before appending anything large or fanned out. */
bool atoll__conn_out_room(atoll__conn *c, size_t n);
/* Bytes waiting to be written. */
size_t atoll__conn_pending(const atoll__conn *c);

/* ---- session.c: the Pomelo state machine over decoded packages ------------------------ */

/* Handles one package; returns false when the conn is closing and the rest of the
 * input must be dropped. */
bool atoll__session_package(atoll__conn *c, const atoll__pkg *pkg);
void atoll__session_closed(atoll__conn *c);
/* Rate limit: true when the client may send one more package (or WebSocket ping);
 * false after kicking it ("rate limit"). */
bool atoll__session_allow(atoll__conn *c);
/* Protocol error: kick (WORKING), WebSocket close frame, close. */
void atoll__session_fail(atoll__conn *c, const char *reason, int ws_code);

/* ---- worker.c ------------------------------------------------------------------------ */

atoll__worker *atoll__worker_new(atoll__node *n, int index);
/* Fails with ATOLL_EADDR when another socket listens on host:port already. Needed
 * because SO_REUSEPORT would let this node silently share the port with another
 * process of the same user (a node started twice). Port 0 always passes. */
int atoll__listen_probe(const char *host, int port);
/* Opens the worker's SO_REUSEPORT listener; *bound_port gets the real port. */
int atoll__worker_listen(atoll__worker *w, const char *host, int port, int *bound_port);
int atoll__worker_start(atoll__worker *w);
/* After the thread is joined: closes what is left, frees; out (may be NULL) gets the
 * worker's counters. */
void atoll__worker_free(atoll__worker *w, atoll__stats *out);

atoll_session_id atoll__worker_add_conn(atoll__worker *w, atoll__conn *c);
void atoll__worker_remove_conn(atoll__worker *w, atoll__conn *c);
atoll__conn *atoll__worker_find_conn(atoll__node *n, atoll_session_id id);
atoll__worker *atoll__worker_of(atoll__node *n, atoll_session_id id);
/* Handles one mail on its worker (worker.c dispatches by type); takes m. */
void atoll__worker_deliver(atoll__worker *w, atoll__mail *m);
/* Runs the local queue and posts the outboxes (called at each loop phase boundary). */
void atoll__worker_pump(atoll__worker *w);

/* ---- session.c: mail for sessions ------------------------------------------------------ */
void atoll__session_mail(atoll__worker *w, atoll__mail *m);
/* The uid is bound: enter the game's area (or answer gate.entry for connection-level
 * games). Takes m. */
void atoll__session_bound(atoll__conn *c, atoll__mail *m);

#endif /* ATOLL_WORKER_H */
