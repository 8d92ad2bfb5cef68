/* mail.h -- messages between workers (mail.c): the mail struct, the kinds and who
 * handles them, the mailboxes, and the batching of a loop turn's mail.
 *
 * DESIGN. Workers share nothing mutable; they talk only through mail. Each worker has
 * one mailbox: producers splice a list in under its mutex and wake the owner with one
 * coalescing uv_async; the owner takes the whole list at once and handles it in
 * arrival order. A worker gathers the mail it sends during a loop turn in one outbox
 * per destination and posts each outbox with one lock per turn (atoll__mail_pump);
 * mail to itself goes through its local queue, run at the next phase boundary, so a
 * handler never runs inside another one. Mail from one worker to another arrives in
 * the order it was sent.
 *
 * Kinds: every kind is handled by the module it belongs to, which registers a handler
 * (and, for kinds that own more than the struct, a fini) before the workers start;
 * the worker dispatches through that table and knows no kind but STOP. Whatever a mail
 * became on its way, atoll__mail_free releases everything it owns.
 */
#ifndef ATOLL_NODE_MAIL_H
#define ATOLL_NODE_MAIL_H

#include "../core/core.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

typedef struct atoll_node atoll__node; /* the public atoll_node of atoll.h */
typedef struct atoll__worker atoll__worker;
typedef struct atoll_value atoll_value;

/* A session id names a connection anywhere in the cluster:
 *   {node:12 | worker:8 | slot:20 | generation:24}
 * A stale id (the connection is gone, its slot reused) never matches, so mail that names
 * a session is safe to deliver late. Area numbers carry the node that made them in their
 * top 12 bits the same way, so numbers never collide across nodes. */
typedef struct atoll_session_id {
    uint64_t v;
} atoll_session_id;

#define ATOLL_NODE_ID_MAX 4095           /* node ids: the 12 node bits */
#define ATOLL_SESSION_SLOTS (1u << 20)   /* sessions per worker */
#define ATOLL_SESSION_GEN_MASK 0xFFFFFFu

static inline atoll_session_id
atoll__session_id(int node, int worker, uint32_t slot, uint32_t gen)
{
    atoll_session_id id = {(uint64_t)node << 52 | (uint64_t)(worker & 0xFF) << 44 |
                           (uint64_t)(slot & (ATOLL_SESSION_SLOTS - 1)) << 24 |
                           (gen & ATOLL_SESSION_GEN_MASK)};
    return id;
}

/* The parts of a session id. */
static inline int
atoll__session_node(atoll_session_id id)
{
    return (int)(id.v >> 52);
}

static inline int
atoll__session_worker(atoll_session_id id)
{
    return (int)(id.v >> 44) & 0xFF;
}

static inline uint32_t
atoll__session_slot(atoll_session_id id)
{
    return (uint32_t)(id.v >> 24) & (ATOLL_SESSION_SLOTS - 1);
}

/* Where mail goes: a worker of a node. Sent with atoll__send_to, which delivers to this
 * node's worker, or (with a cluster) hands it to the link to that node. */
typedef struct atoll__addr {
    uint16_t node;
    uint16_t worker;
} atoll__addr;

static inline atoll__addr
atoll__addr_make(int node, int worker)
{
    atoll__addr a = {(uint16_t)node, (uint16_t)worker};
    return a;
}

/* The worker that holds session id. */
static inline atoll__addr
atoll__session_addr(atoll_session_id id)
{
    return atoll__addr_make(atoll__session_node(id), atoll__session_worker(id));
}

/* The node that made area number num. */
static inline int
atoll__area_num_node(uint64_t num)
{
    return (int)(num >> 52);
}

typedef enum atoll__mail_type {
    ATOLL_MAIL_STOP,      /* to every worker: stop accepting, flush, close (worker.c) */
    /* to a session's worker or a uid's owner (session.c, uids.c) */
    ATOLL_MAIL_BIND,      /* to the uid's owner: bind uid to session */
    ATOLL_MAIL_BOUND,     /* back to the session's worker: uid bound, enter the game */
    ATOLL_MAIL_UNBIND,    /* to the uid's owner: session closed */
    ATOLL_MAIL_KICK,      /* to a session's worker: kick it */
    ATOLL_MAIL_BROADCAST, /* to every worker: write the shared bytes to every session */
    ATOLL_MAIL_SESS_OUT,  /* encoded packages for sessions: records of {session id,
                           * length, bytes}, a loop turn's worth for one worker */
    ATOLL_MAIL_SESS_PUSH, /* shared encoded push for a list of sessions */
    /* to an area's worker (src/area) */
    ATOLL_MAIL_AREA_CREATE, /* build the area now (on_create) */
    ATOLL_MAIL_AREA_ENTER,  /* a session's player enters */
    ATOLL_MAIL_AREA_REQ,    /* a client's request or notify, body bytes inline */
    ATOLL_MAIL_AREA_LEAVE,  /* the session closed */
    ATOLL_MAIL_AREA_FENCE,  /* no more forwarded messages for this session follow */
    ATOLL_MAIL_AREA_MOVE_IN,/* a player moves in from another area */
    ATOLL_MAIL_AREA_CALL,   /* atoll_call / atoll_send from another area */
    ATOLL_MAIL_AREA_REPLY,  /* to the caller's worker: a call's answer */
    ATOLL_MAIL_SESS_ROUTE,  /* to a session's worker: its player is now in this area */
    ATOLL_MAIL_LINK,        /* frames of encoded mail, as a node link carries them (wire.h);
                             * between workers with node.loopback_links */
    /* from the directory (directory.h) */
    ATOLL_MAIL_DIR_ANSWER,  /* the answer to an operation: status, id, entry, cookie */
    ATOLL_MAIL_DIR_INVALIDATE, /* to subscribers: entries of id up to epoch are stale */
    ATOLL_MAIL_AREA_RESUME, /* gate.resume: the player of uid takes this session (src/area) */
    ATOLL_MAIL_AREA_EVICT,  /* another entry wants uid's document: a player of uid that
                             * waits for its client leaves now (src/area/docs.c) */
    ATOLL_MAIL_DOC_LOADED,  /* from the writer's thread: a document asked for (docs.c) */
    ATOLL_MAIL_DOC_COMMITTED, /* from the writer's thread: output may go (docs.c) */
    ATOLL_MAIL_NODE_DOWN,   /* from the cluster's thread: node at.node is dead (its lease
                             * ended); sessions and players it held are seen to */
    /* moving a running area to another node (src/area/migrate.c) */
    ATOLL_MAIL_AREA_MOVE_ASK, /* from a thread of this node to one of its workers: move area
                               * `from` to node status (payload: who to tell); never crosses */
    ATOLL_MAIL_AREA_HANDOFF,  /* to the area's owner: hand area (number, id in from) over to
                               * node `status`; answer HANDOFF_DONE to at with call_id.
                               * With msg_type 1 (and MOVE_ASK's) it asks for the area's
                               * players instead: the answer's data is their JSON */
    ATOLL_MAIL_AREA_MIGRATE,  /* old owner -> new: the whole area (payload: its snapshot),
                               * its directory epoch in epoch, the old owner in at */
    ATOLL_MAIL_AREA_MIGRATED, /* new owner -> old: status of the hand-off; the entry it left
                               * in area/at/epoch */
    ATOLL_MAIL_AREA_HANDOFF_DONE, /* owner -> whoever asked (call_id): status, the new entry
                               * in area/at/epoch, the pause clients saw in request_id (µs) */
    ATOLL_MAIL_KINDS
} atoll__mail_type;

/* Bytes encoded once and shared by several workers; freed by the last reader. */
typedef struct atoll__shared {
    atomic_int refs;
    size_t len;
    uint8_t data[];
} atoll__shared;

/* One message between workers. */
typedef struct atoll__mail {
    struct atoll__mail *next;  /* mailbox, outbox, local queue, held and command lists */
    atoll__mail_type type;
    atoll_session_id session;
    uint32_t request_id;
    bool reply;                /* BIND/BOUND/ENTER: answer request_id (not for a notify) */
    bool forwarded;            /* AREA_*: forwarded by the area the player moved from */
    uint8_t doc;               /* AREA_ENTER on its area's worker: 1 its player's stored
                                * document is in value (NULL: none), 2 it could not be
                                * loaded (src/area/docs.c) */
    uint8_t msg_type;          /* AREA_REQ: ATOLL_MSG_REQUEST or NOTIFY */
    uint16_t route;            /* AREA_REQ/AREA_CALL: route code */
    int status;                /* AREA_REPLY, DIR_ANSWER; AREA_ENTER: claims it caused */
    atoll__addr at;            /* AREA_CALL: the caller (its answer goes there);
                                * SESS_ROUTE: the area's worker; DIR_ANSWER: the owner;
                                * AREA_CREATE, AREA_ENTER: the placer */
    uint64_t area;             /* AREA_*: target area; SESS_ROUTE: new area */
    uint64_t area_old;         /* SESS_ROUTE after a move: the area to fence; MOVE_IN: from */
    uint64_t call_id;          /* AREA_CALL (0: a send) and AREA_REPLY; DIR_ANSWER: the
                                * cookie; AREA_CREATE, AREA_ENTER: answer the placer;
                                * AREA_REQ numbered by its gate (epoch): every request
                                * up to this number was answered (src/area/exact.c) */
    uint64_t epoch;            /* DIR_*: a directory epoch; AREA_REQ: its gate's number
                                * of the request in its session (0: none) */
    uint64_t doc_epoch;        /* AREA_ENTER on its area's worker with its player's
                                * document (doc 1): the epoch stored with it */
    int type_index;            /* SESS_ROUTE, AREA_ENTER: area type */
    char *uid;                 /* owned (BIND, BOUND, UNBIND, ENTER) */
    char reason[48];           /* KICK */
    atoll__shared *shared;     /* BROADCAST, SESS_PUSH: holds one reference */
    atoll_session_id *sessions;/* SESS_PUSH: owned */
    size_t nsessions;
    atoll_value *value;        /* owned: ENTER body, CALL body, REPLY body */
    void *payload;             /* owned by the kind (MOVE_IN: the player); its fini frees it */
    /* AREA_CALL: the calling area's id; AREA_CREATE, AREA_ENTER: the target's id (with
     * type_index), to create it where it arrives if it does not exist; DIR_*: the id */
    char from[ATOLL_AREA_ID_MAX + 1];
    atoll__addr at_old;        /* SESS_ROUTE: worker of area_old; MOVE_IN: where it came from */
    atoll__addr fx_to;         /* held by the effects stage: where it goes (src/area) */
    bool pooled;               /* has room for a small body: may go to a worker's free list */
    size_t len;                /* bytes in data: AREA_REQ body, SESS_OUT packages */
    uint8_t data[];
} atoll__mail;

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

/* Mailbox: producers splice lists in under the lock; the owner takes the list whole. */
typedef struct atoll__mailbox {
    pthread_mutex_t lock;
    atoll__mail *head, *tail;
} atoll__mailbox;

/* ---- kinds ------------------------------------------------------------------------------ */

/* Handles one mail on its worker's thread; takes m. */
typedef void (*atoll__mail_fn)(atoll__worker *w, atoll__mail *m);

/* Registers the handler of a kind, and its fini (NULL: none) which frees what the
 * kind keeps in m->payload. Before any worker starts; the same for every node of the
 * process. */
void atoll__mail_register(atoll__mail_type type, atoll__mail_fn handle,
                          void (*fini)(atoll__mail *m));
/* Registers how a kind's payload crosses nodes: encode appends its bytes (ATOLL_OK or
 * an error), decode sets m->payload from n bytes of untrusted input (ATOLL_OK, or an
 * error and nothing set). */
void atoll__mail_register_codec(atoll__mail_type type,
                                int (*encode)(const atoll__mail *m, atoll__buf *out),
                                int (*decode)(atoll__mail *m, const uint8_t *p, size_t n));
int atoll__mail_payload_encode(const atoll__mail *m, atoll__buf *out);
int atoll__mail_payload_decode(atoll__mail *m, const uint8_t *p, size_t n);
/* Runs the registered handler (mail of an unregistered kind is dropped). */
void atoll__mail_dispatch(atoll__worker *w, atoll__mail *m);

/* ---- making and freeing ----------------------------------------------------------------- */

/* New zeroed mail with room for len bytes of data (m->len set). Every mail is made
 * here, whatever its kind. */
atoll__mail *atoll__mail_new(atoll__mail_type type, size_t len);
/* Frees mail and everything it owns (uid, value, sessions, shared bytes, the kind's
 * payload), whatever its kind is or became on the way. The one way to drop mail: a
 * path that frees the struct alone leaks what it carries (a gate.entry body per reset
 * client was such a leak). */
void atoll__mail_free(atoll__mail *m);
/* Frees a list of mail (next-linked). */
void atoll__mail_free_list(atoll__mail *m);
/* Data bytes every mail made with len <= this has room for (it may be refilled in
 * place up to this many bytes). */
#define ATOLL_MAIL_SMALL_DATA 64
/* A KICK of session s with reason (cut to fit). */
atoll__mail *atoll__kick_new(atoll_session_id s, const char *reason);
/* Bytes shared by `refs` readers, a copy of p[0..len). */
atoll__shared *atoll__shared_new(const void *p, size_t len, int refs);

/* ---- sending ---------------------------------------------------------------------------- */

/* Sends mail to worker `to` from the calling thread: a worker thread batches it in its
 * outbox (one lock per destination per loop turn) or, to itself, in its local queue;
 * any other thread posts it at once. Takes ownership. */
void atoll__send(atoll__node *n, int to, atoll__mail *m);
/* A SESS_OUT mail of one record {session id u64, length u32, bytes}, little-endian. */
atoll__mail *atoll__sess_out_new(atoll_session_id s, const uint8_t *p, size_t len);
/* Sends encoded packages to session s of another worker: appended to this turn's
 * SESS_OUT batch for the session's worker, one mail per turn instead of one per reply
 * (other mail sent there later is queued after the batch, so order holds); a session
 * of another node gets a SESS_OUT of its own, sent to its address. */
void atoll__send_out(atoll__node *n, atoll_session_id s, const uint8_t *p, size_t len);
/* Sends mail to address to: a worker of this node through atoll__send; a worker of
 * another node through the cluster's link to it (encoded into this turn's records for
 * that node, handed over at the end of the turn; in the embedded node, which has no
 * other node, it is dropped with a log line). Takes ownership. */
void atoll__send_to(atoll__node *n, atoll__addr to, atoll__mail *m);
/* Worker w (its thread) dropped everything it ran: this node was declared dead while it
 * was away. The records for other nodes it gathered this turn are stale and dropped,
 * and the cluster is told that what w sends from now on is the node's new life. */
void atoll__send_remote_dropped(atoll__worker *w);
/* Posts mail to worker w at once (a lock and a wake-up); takes ownership. Any thread.
 * Prefer atoll__send, which batches. */
void atoll__worker_post(atoll__worker *w, atoll__mail *m);
/* The worker running on this thread, or NULL. */
atoll__worker *atoll__current_worker(void);

/* ---- the worker's side (worker.c calls these) -------------------------------------------- */

/* Per worker: outboxes and SESS_OUT batches for nworkers destinations. */
void atoll__mail_worker_init(atoll__worker *w, int nworkers);
/* After the loop: frees unread mail, outboxes, batches and the free list. */
void atoll__mail_worker_fini(atoll__worker *w);
/* Marks the calling thread as w's (NULL: none): mail sent from it is batched. */
void atoll__mail_set_thread(atoll__worker *w);
/* Takes and handles everything in w's mailbox, in order (the wake-up). */
void atoll__mail_receive(atoll__worker *w);
/* Runs the local queue and posts the outboxes (at each loop phase boundary). */
void atoll__mail_pump(atoll__worker *w);

#endif /* ATOLL_NODE_MAIL_H */
