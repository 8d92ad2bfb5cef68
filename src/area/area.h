/* area.h -- internal contract of the area runtime: areas, players, the directory, the
 * area proxy (calls), and how mail reaches them.
 *
 * DESIGN. Every area is owned by one worker; only that worker's thread touches it. A
 * message for an area (a client's request, a call, a player moving in) is mail to the
 * owner, which runs it on the area with no lock. Mail a worker sends to itself goes
 * through its local queue, so a handler never runs inside another one.
 *
 * The directory (node/directory.h) is the node's one record of which area lives where:
 * id -> {number, owner, epoch, type}. It is asked asynchronously, its answers come as
 * mail, and each worker caches them by epoch (where.c). A new area is claimed by the
 * worker placement picks: it asks the directory to record the id there, holds what
 * arrives for it meanwhile, then builds it (on_create, before anything else) and runs
 * what waited; an id that lives elsewhere sends what waited there
 * (docs/design/directory.md).
 *
 * Sessions cache their player's route (area number, worker, type) in the connection
 * (invariant 5: a cache, corrected by the area). A request travels as AREA_REQ mail
 * with its body bytes to the area; replies and pushes go back encoded, as SESS_OUT or
 * SESS_PUSH mail (one shared encoding per push to many).
 *
 * Moving a player (the one-player form of an area's move between nodes):
 *   1. old area A: on_leave(MOVE), the player leaves A; A's worker records a forward
 *      session -> B, and sends MOVE_IN (the player with its data) to B;
 *   2. B: on_enter; the player is "unfenced": messages that reach B directly are held;
 *      B tells the session's worker SESS_ROUTE {B, old A};
 *   3. the session's worker points its cache at B and sends FENCE to A;
 *   4. A forwards everything for that session to B (marked forwarded, run at once),
 *      then the FENCE, and drops the forward;
 *   5. B, on the FENCE, runs the held messages in order and serves directly.
 * So every message of a session runs in the order the client sent it.
 *
 * Calls: the caller's worker keeps each call under a call id with its deadline in a
 * 1 ms timing wheel; the target answers with AREA_REPLY. A target that has no such
 * area answers ATOLL__EMOVED with the body back, and the caller forgets its cached
 * entry and asks the directory once more before failing with ATOLL_ENOENT.
 */
#ifndef ATOLL_AREA_H
#define ATOLL_AREA_H

#include "../core/map.h"
#include "../core/wheel.h"
#include "../node/directory.h"
#include "../node/session.h"
#include "../node/store.h"
#include "../node/wire.h"
#include "../value/value.h"
#include "token.h"

/* Internal status of a call answered by a worker that does not have the area. */
#define ATOLL__EMOVED (-1000)
/* Claims an AREA_ENTER may cause before it fails "area is gone" (counted in its
 * status field). */
#define ATOLL__ENTER_CLAIMS 4

typedef struct atoll__timer atoll__timer;
typedef struct atoll__call atoll__call;
typedef struct atoll__migration atoll__migration;

/* Set in every live player and cleared when it is freed: an atoll_player* that game code
 * kept past its callback and uses after the player left is caught (logged and refused)
 * instead of writing into freed memory (ASan builds catch it as a use after free). */
#define ATOLL__PLAYER_MAGIC 0x706c6179u /* "play" */

struct atoll_player {
    char *uid;
    uint32_t magic;
    struct atoll_area *area;
    atoll_session_id session;
    int session_worker;
    atoll_value *data;
    atoll_player *prev, *next;    /* the area's players, in entry order */
    atoll_player *uid_next;       /* same uid hash in the area (rare) */
    bool unfenced;                /* moved in; direct messages wait for the fence */
    atoll__mail_list held;        /* those messages */
    char *move_to;                /* atoll_player_move waiting for the handler to end */
    char *resolving;              /* the id the directory is asked about for its move;
                                   * its messages wait meanwhile (NULL: none) */
    bool leaving;                 /* being removed; pushes to it are dropped */
    /* Resume (resume.c): the nonce of its current token; parked while its client is
     * away (session gone, pushes dropped) until resume_timer ends the window. */
    uint8_t resume_nonce[16];
    bool disconnected;
    uint64_t resume_timer;
    /* Its state document (docs.c): kept in the store (a logged-in player, not a guest),
     * the hash of the bytes last handed to the writer, its place in the worker's list
     * of changed documents + 1 (0: unchanged). */
    bool persisted;
    bool refused;                 /* on_enter refused it: its document is not written */
    uint64_t doc_hash;
    uint32_t dirty_at;
    /* The fencing epoch of its document: the stored one when loaded, then the largest of
     * it and its area's epoch at each write (an area's new owner after a failover has a
     * newer epoch than the dead one's: the dead one's late writes are refused). */
    uint64_t doc_epoch;
    struct atoll__exact *exact;   /* the requests it ran, for a failover (exact.c) */
    /* Came with its area from another node (migrate.c): the node whose forward brings
     * its session's fence (-1: none). If that node dies, the fence never comes. */
    int fence_node;
};

struct atoll_area {
    uint64_t num;                 /* node-unique number, the routing key */
    uint64_t epoch;               /* its directory entry's */
    char id[ATOLL_AREA_ID_MAX + 1];
    const atoll_area_type *type;
    int type_index;
    atoll__worker *worker;
    atoll_value *state;
    void *udata;
    atoll_player *first, *last;
    uint32_t nplayers;
    atoll__map by_session;        /* session id -> player */
    atoll__map by_uid;            /* hash(uid) -> player (chain by uid_next) */
    atoll__timer *timers;         /* its timers (list) */
    size_t tick_slot;             /* heap index + 1 in the worker's ticks, 0: none */
    uint64_t tick_period_ns, tick_next_ns, tick_last_ns, tick_count;
    uv_timer_t *grace;            /* empty-area grace timer, or NULL */
    atoll__mail_list cmds;        /* queued commands (queue_commands) */
    uint32_t ncmds;
    atoll__call *calls;           /* its calls waiting for answers (list) */
    atoll_req *kept;              /* its kept requests not answered yet (list) */
    int depth;                    /* hooks/handlers running (nesting through atoll_*) */
    bool destroy_requested;
    bool destroyed;
    bool has_moves;               /* some player has move_to set */
    /* stats */
    uint64_t messages, messages_last, handler_ns, tick_ns_max, tick_late_max;
    double messages_per_s;
    uint64_t slow;                /* its game code that ran past area.slow_ms (watch.h) */
    uint64_t doc_hash;            /* as the player's (docs.c) */
    uint32_t dirty_at;
    bool refused;                 /* on_create refused it: its state is not written */
    /* Moving to another node, or arriving from one (migrate.c): while frozen nothing of
     * it runs (no handler, tick or timer) and the mail for it waits in `frozen_held`. */
    bool frozen;
    atoll__mail_list frozen_held;
    struct atoll__migration *mig; /* the hand-off it is in, on either side (NULL: none) */
};

/* ---- the area runtime of one worker ------------------------------------------------------ */

/* The effects stage of a worker (effects.c): what the running game code sent. */
typedef struct atoll__fx {
    int depth;                /* regions open (game code running) */
    atoll__buf log;           /* journal: client bytes and places of staged mail */
    atoll__mail_list mail;    /* staged mail, in order */
    atoll_player **moved;     /* players whose move was asked in the region */
    size_t nmoved, cap_moved;
    atoll__vjournal journal;  /* what game code changed in values (value.h), for undo */
    const char *query;        /* the route of the query handler running, or NULL */
    /* The client request of the region (its answer becomes a 500 if its commit does not
     * come in store.timeout_ms, in durable mode). */
    atoll_session_id req_session;
    int req_worker;
    uint32_t req_id;
} atoll__fx;

/* The documents of one worker (docs.c). */
typedef struct atoll__docs_worker {
    atoll__map roots;         /* a document's root value -> its player (tagged 1) or area */
    void **dirty;             /* changed documents (tagged like roots), in order */
    size_t ndirty, cap_dirty;
    void **touched;           /* documents whose root game code asked for in the region */
    size_t ntouched, cap_touched;
    struct atoll__held *held, *held_tail; /* output waiting for its commit (durable) */
    uint64_t last_ticket;     /* the writer's submit count after this worker's last submit */
    atoll__map loads;         /* cookie -> AREA_ENTER waiting for its player's document */
    uint64_t next_cookie;
    uv_timer_t flush_timer;   /* fast mode: changes are handed over every flush_ms / 2 */
    bool flush_armed;
    atoll__buf scratch;       /* a document being encoded */
    bool releasing;           /* held output is being sent */
} atoll__docs_worker;

/* What the area runtime keeps per worker (the worker holds it as w->areas). */
struct atoll__area_worker {
    atoll__map by_num;        /* area number -> atoll_area */
    atoll__map forwards;      /* session -> forward (a player moved away, not fenced) */
    atoll__map calls;         /* call id -> atoll__call */
    atoll__wheel call_wheel;  /* call deadlines, 1 ms */
    uv_timer_t call_timer;
    uint64_t next_call_id;
    uint64_t next_timer_id;
    int tick_fd;              /* timerfd at the earliest area tick (ticks.c) */
    uv_poll_t tick_poll;
    struct atoll_area **tick_heap; /* ticking areas by next tick time */
    size_t tick_len, tick_cap;
    atoll__buf scratch_out;   /* JSON of a reply or push being encoded */
    atoll__buf scratch_pkg;   /* its Pomelo package */
    atoll__buf scratch_stats; /* the stats being published */
    /* A free list of call records: calls come and go in batches of hundreds per loop
     * turn (see the mail pool in worker.h). Bounded. */
    void *call_pool;
    size_t call_pool_len;
    atoll__fx fx;
    atoll__map where;         /* id -> cached directory entry (where.c) */
    atoll__map lookups;       /* id -> lookup in flight with its waiters */
    atoll__map tombstones;    /* id -> epoch invalidated while not cached (where.c) */
    atoll__map queued;        /* id -> mail by id to it on the local queue */
    struct atoll__claim *claims; /* areas being placed here, waiting for the directory */
    atoll__map resumes;       /* directory cookie -> gate.resume waiting for find_player */
    uint64_t next_resume;
    atoll__docs_worker docs;
    atoll__buf rejoins;       /* sessions to enter their area again, when (failover.c) */
    /* The answer of the numbered request running now, caught for its record (exact.c). */
    uint32_t exact_id;        /* its request id; 0: none runs */
    atoll_session_id exact_session;
    bool exact_caught;
    atoll__buf exact_answer;
    /* Areas that moved to another node (migrate.c): number -> where, for mail that still
     * comes here; call ids of calls they made -> where, for the answers. Both expire. */
    atoll__map area_forwards;
    atoll__map call_forwards;
    atoll__map migrations_in;     /* directory cookie -> number of an area arriving here */
    atoll__map asks;              /* moves asked for from this worker, by cookie */
    uint64_t next_migration;
    /* The areas this worker dropped when this node was declared dead while it was away
     * (failover.c): numbers, until dropped_until_ms. */
    atoll__map dropped_areas;
    uint64_t dropped_until_ms;
};

/* The area runtime as a module of the node (module.c): registers its mail kinds, the
 * route handlers of area routes and the session hooks, and keeps the directory. */
extern const atoll__module atoll__area_module;

/* ---- place.c: what the area runtime keeps for the whole node ---------------------------- */

/* The stats of one worker's areas, as it last published them. */
typedef struct atoll__stats_slot {
    pthread_mutex_t lock;
    atoll_area_stats *list;
    size_t len, cap;
} atoll__stats_slot;

typedef struct atoll__area_node {
    atoll__dir *dir;            /* where areas live (node/directory.h) */
    bool dir_owned;             /* the embedded node's own, freed with it (a cluster's is the
                                 * cluster's) */
    atomic_uint_fast64_t next_num; /* area numbers given on this node */
    atomic_int *load;           /* areas per worker: being placed, or running */
    atoll__stats_slot *stats;   /* per worker */
    int nworkers;
    uint8_t resume_key[32];     /* MAC key of resume tokens, drawn at start (resume.c) */
    struct atoll__docs *docs;   /* the store, its writer, documents checked out (docs.c) */
} atoll__area_node;

static inline atoll__area_node *
atoll__area_node_of(const atoll__node *n)
{
    return (atoll__area_node *)n->module_data;
}

atoll__area_node *atoll__area_node_new(atoll__node *n);
void atoll__area_node_free(atoll__area_node *an);
/* Placement: the worker with the fewest areas (ties: the lowest index, so two areas
 * made on an idle node land on two workers), counted at once. A placement that finds
 * the id taken gives its count back. */
int atoll__place_pick(atoll__node *n);
/* Where a new area id should run: in a cluster a worker of the least loaded area node
 * (the cluster's placement, by load), else (or when that is this node) this node's
 * least loaded worker, counted. ATOLL_ENOENT: a cluster with no area node known. */
int atoll__place_pick_for(atoll__node *n, const char *id, atoll__addr *out);
void atoll__place_count(atoll__node *n, int worker, int delta);
/* A new area number: {node id:12 | counter:52}. */
uint64_t atoll__area_num_new(atoll__node *n);
/* Worker `worker` replaces its published stats; the list of the node's areas. */
void atoll__stats_publish(atoll__node *n, int worker, const atoll_area_stats *list, size_t len);
size_t atoll__stats_list(atoll__node *n, atoll_area_stats *out, size_t cap);

/* ---- where.c: where areas live, as this worker knows it ----------------------------------- */

/* Cookies of the directory operations a worker starts (DIR_ANSWER's call_id). */
enum {
    ATOLL__DIR_COOKIE_RESOLVE = 1, /* a lookup of this worker */
    ATOLL__DIR_COOKIE_PLACE = 2,   /* the answer to a placement this worker asked for */
    ATOLL__DIR_COOKIE_CLAIM = 3,   /* a claim of this worker (area.c) */
    ATOLL__DIR_COOKIE_FIND = 4,    /* low 3 bits: find_player of a gate.resume (resume.c) */
    /* 5: ATOLL_DIR_COOKIE_TAKEOVER (directory.h), a coordinator's */
    ATOLL__DIR_COOKIE_MIGRATE_IN = 6, /* low 3 bits: an arriving area's flip (migrate.c) */
    ATOLL__DIR_COOKIE_RECLAIM = 7,    /* low 3 bits: an old owner takes its area back */
};
/* ---- exact.c: each request runs once across a failover -------------------------------------- */

typedef struct atoll__exact atoll__exact;
/* m (a client's request numbered by its gate) ran already for p: answered from the
 * record (true), or not (false: run it). */
bool atoll__exact_replay(atoll__worker *w, atoll_player *p, const atoll__mail *m);
/* Request n of session s ran, answered answer[0..len) (known false: kept by the game,
 * answer unknown): recorded, and p's document is marked changed. Answers of requests up
 * to acked (answered, seen by the gate) are no longer kept. */
void atoll__exact_record(atoll__worker *w, atoll_player *p, atoll_session_id s, uint64_t n,
                         uint64_t acked, const uint8_t *answer, size_t len, bool known);
/* Appends p's record into the JSON text of its document (an object) in doc. */
void atoll__exact_put(atoll__buf *doc, const atoll_player *p);
/* Appends p's data with its record as the wire carries JSON (u32 length, the text): a
 * player that moves to another node takes its record along. */
void atoll__exact_put_data(atoll__buf *b, const atoll_player *p);
/* Takes the record out of a loaded document's data. */
void atoll__exact_take(atoll_player *p, atoll_value *data);
void atoll__exact_free(atoll_player *p);
/* p moves to another node (its document was handed to the writer as it left its
 * area): this node's hold of it ends, the other node holds it from its arrival. */
void atoll__docs_player_away(atoll__worker *w, atoll_player *p);
/* Writes p's document (a's state) again as it is, with its epoch now: in a cluster, a
 * document loaded from the store is claimed this way, so that a previous owner's late
 * writes are refused (docs.c). */
void atoll__docs_claim_player(atoll__worker *w, atoll_player *p);
void atoll__docs_claim_area(atoll__worker *w, atoll_area *a);
/* Marks p's document changed (docs.c). */
void atoll__docs_mark_player(atoll__worker *w, atoll_player *p);

/* ---- failover.c: another node of the cluster died ------------------------------------------ */

/* True when area number num was dropped here because this node was declared dead while
 * it was away (failover.c): a numbered request for it, sent before the failover, is
 * sent again by its gate to the new owner and needs no answer from here. */
bool atoll__area_was_dropped(atoll__worker *w, uint64_t num);
/* NODE_DOWN: sessions whose area was there enter it again, players whose session was
 * there are dropped, cached entries naming it are forgotten. Takes m. */
void atoll__area_node_down_mail(atoll__worker *w, atoll__mail *m);
/* The entry of a session that enters its area again failed (the directory still names
 * the dead node): true when it is tried again later (the failure is not the client's
 * to hear), false when it gave up. */
bool atoll__area_rejoin_failed(atoll__worker *w, atoll__session *s);
/* s enters its area again and sends again what it has in flight (a FENCE it sent could
 * not reach the old owner of a moved area: what it sent there may be lost). */
void atoll__area_rejoin(atoll__worker *w, atoll__session *s);
/* Every 100 ms: the entries to try again now. */
void atoll__area_rejoin_tick(atoll__worker *w);
/* Area id's directory entry changed (a dead node's area taken, or created anew):
 * sessions waiting to enter it again try at once. */
void atoll__area_rejoin_wake(atoll__worker *w, const char *id);
/* A copy of a client's request (AREA_REQ) as the gate keeps it in flight. */
atoll__mail *atoll__area_req_copy(const atoll__mail *m);
/* Sends the AREA_ENTER of s's player into s->area_id again (no answer to the client). */
void atoll__area_enter_again(atoll__session *s);
/* Forgets every cached entry whose owner is on node `node`. */
void atoll__where_forget_node(atoll__worker *w, int node);

/* ---- migrate.c: a running area moves to another node ------------------------------------ */

/* The mail of a hand-off: MOVE_ASK (from a thread of this node), HANDOFF (to the owner),
 * MIGRATE (to the new owner), MIGRATED (its answer), HANDOFF_DONE (to whoever asked). */
void atoll__migrate_mail(atoll__worker *w, atoll__mail *m);
/* Mail for an area number this worker does not have: passed on when the area moved
 * from here (true, m taken). */
bool atoll__migrate_forward(atoll__worker *w, atoll__mail *m);
/* An AREA_REPLY for a call this worker no longer has: passed on when its caller moved
 * from here (true, m taken). */
bool atoll__migrate_forward_reply(atoll__worker *w, atoll__mail *m);
/* The directory's answer to a hand-off's compare-and-set (cookie low bits 6 or 7). */
void atoll__migrate_dir_answer(atoll__worker *w, atoll__mail *m);
/* Node `dead` died: hand-offs to or from it are settled, fences it owed are given up. */
void atoll__migrate_node_down(atoll__worker *w, int dead);
/* MIGRATE mail came back undeliverable: settled as if its answer never came. Takes m. */
void atoll__migrate_undeliverable(atoll__worker *w, atoll__mail *m);
/* a is destroyed (the node stops) while it moves: the hand-off is given up. True when
 * a was freed with it (it was arriving: never the area's here). */
bool atoll__migrate_forget(atoll__worker *w, atoll_area *a);
/* Parses a snapshot from a peer (untrusted bytes) and frees it: ATOLL_OK or
 * ATOLL_EPROTO. For the tests and the fuzz target. */
int atoll__snapshot_check(const uint8_t *p, size_t len, const atoll__wire_limits *lim);
/* The area runtime's operations for the node's other parts (node.h). */
extern const atoll__area_ops atoll__area_ops_impl;
/* Every 100 ms: forwards past their time are forgotten. */
void atoll__migrate_tick(atoll__worker *w);
void atoll__migrate_fini(atoll__worker *w);
/* MIGRATE's payload (the snapshot's bytes): its fini and codec. */
void atoll__migrate_payload_fini(atoll__mail *m);
int atoll__migrate_payload_encode(const atoll__mail *m, atoll__buf *out);
int atoll__migrate_payload_decode(atoll__mail *m, const uint8_t *p, size_t n);

/* What a hand-off needs of timers.c, proxy.c, docs.c, resume.c and ticks. */
typedef struct atoll__timer_info {
    uint64_t id;
    uint64_t due_ms;        /* until it fires */
    uint64_t period_ms;     /* repeats with this period (0: once) */
    atoll_timer_fn fn;
    void *udata;
} atoll__timer_info;
/* Stops every timer of a, remembering when each was due; resume starts them again. */
void atoll__timers_pause(atoll_area *a);
void atoll__timers_resume(atoll_area *a);
/* The paused timers of a (up to cap; returns how many there are). */
size_t atoll__timers_list(const atoll_area *a, atoll__timer_info *out, size_t cap);
/* Closes every timer of a without calling it (the area lives on elsewhere). */
void atoll__timers_drop(atoll_area *a);
/* A paused timer of a with this id (an arriving area's). */
void atoll__timer_adopt(atoll_area *a, const atoll__timer_info *ti);
/* The calls a waits for, as the hand-off ships them. */
typedef struct atoll__call_info {
    uint64_t id;
    uint64_t due_ms;        /* until its deadline */
    uint16_t route;
    bool retried;
    atoll_call_fn cb;
    void *udata;
    char to[ATOLL_AREA_ID_MAX + 1];
} atoll__call_info;
size_t atoll__proxy_list(const atoll_area *a, atoll__call_info *out, size_t cap);
/* Forgets a's calls without calling back (their answers will be passed on). */
void atoll__proxy_drop_area(atoll__worker *w, atoll_area *a);
/* Takes over a call of an arriving area under its id. */
void atoll__proxy_adopt(atoll__worker *w, atoll_area *a, const atoll__call_info *ci);
/* Hands every changed document of this worker to the writer; the writer's count to
 * wait for. True once what was handed over up to `ticket` is committed and the output
 * that waited for it has gone (at once in fast mode, or with no store). */
uint64_t atoll__docs_flush(atoll__worker *w);
bool atoll__docs_flushed(atoll__worker *w, uint64_t ticket);
/* a's documents leave this worker's care without being written (they were, or must not
 * be): its state's, and its players' (player_out and player_away do those). */
void atoll__docs_area_away(atoll__worker *w, atoll_area *a);
/* An area that arrived holds its document on this node. */
void atoll__docs_area_held(atoll__worker *w, atoll_area *a);
/* A parked player's window goes on for due_ms on an area that arrived (paused). */
void atoll__resume_adopt(atoll_area *a, atoll_player *p, uint64_t due_ms);
/* Whether timer id of a is p's resume window (not shipped as a game timer). */
bool atoll__resume_is_window(const atoll_area *a, uint64_t id);
/* The player joins or leaves a without the directory hearing of it (its area is the
 * same, only on another node now). */
void atoll__player_attach_quiet(atoll_area *a, atoll_player *p);
/* Builds an arriving area (frozen, no on_create): number, id, type, epoch, state
 * (taken), the hash of its stored bytes. */
atoll_area *atoll__area_arrive(atoll__worker *w, const char *id, const atoll__dir_entry *e,
                               atoll_value *state, uint64_t hash);
/* Frees an area that left (or never arrived): no hooks, no documents written. */
void atoll__area_free_quiet(atoll__worker *w, atoll_area *a);
/* Starts the empty grace of a, when it has no players. */
void atoll__area_grace(atoll_area *a);

/* A coordinator took area id (of type index ti) from a dead node: it is created anew
 * on a node placement picks, which loads its state from the store. */
void atoll__area_takeover(atoll__worker *w, const char *id, int ti);

/* Runs when the lookup of id ends: ATOLL_OK with e, or ATOLL_ENOENT (e NULL). Takes m
 * (may be NULL), the mail that waited, with arg. */
typedef void (*atoll__where_fn)(atoll__worker *w, int status, const atoll__dir_entry *e,
                                const char *id, atoll__mail *m, uint64_t arg);

atoll__dir *atoll__dir_of_worker(const atoll__worker *w);
/* The cached entry of id, or NULL. */
const atoll__dir_entry *atoll__where_cached(atoll__worker *w, const char *id);
/* Records an entry learned from an answer (an older epoch than the cached one is
 * ignored); forgets id's entry when its epoch is `epoch` or older. */
void atoll__where_learn(atoll__worker *w, const char *id, const atoll__dir_entry *e);
void atoll__where_forget(atoll__worker *w, const char *id, uint64_t epoch);
/* Waits for id's entry (one directory resolve per id however many wait); fn runs
 * later from the answer's mail, never inside this call. */
void atoll__where_lookup(atoll__worker *w, const char *id, atoll__where_fn fn, atoll__mail *m,
                         uint64_t arg);
/* This worker places id: lookups of id wait for the placement's answer. */
void atoll__where_placing(atoll__worker *w, const char *id);
/* Mail by id to id queued on this worker's own queue (delta +1 when staged, -1 when
 * routed or dropped), and whether any is: later mail to id then takes the same way. */
void atoll__where_queue(atoll__worker *w, const char *id, int delta);
bool atoll__where_queued(atoll__worker *w, const char *id);
/* Whether mail waits on a lookup of id. */
bool atoll__where_waiting(atoll__worker *w, const char *id);
bool atoll__where_pending(atoll__worker *w, const char *id);
void atoll__where_answer_mail(atoll__worker *w, atoll__mail *m);
void atoll__where_invalidate_mail(atoll__worker *w, atoll__mail *m);
/* Once a second: forgets the invalidations kept for answers still on their way. */
void atoll__where_tick(atoll__worker *w);
void atoll__where_fini(atoll__worker *w);

static inline atoll__node *
atoll__node_of(const atoll_area *a)
{
    return a->worker->node;
}

/* True when p is a live player; logs the misuse otherwise (what names the function). */
bool atoll__player_ok(const atoll_player *p, const char *what);

/* ---- area.c: areas and their players ------------------------------------------------------ */

atoll_player *atoll__player_new(const char *uid, atoll_session_id s, int sw);
/* The player joins a (lists, maps, directory); detach undoes it (and starts the empty
 * grace when a is left empty). */
void atoll__player_attach(atoll_area *a, atoll_player *p);
void atoll__player_detach(atoll_area *a, atoll_player *p);
/* The player is in no area any more (it left the node's areas, or was refused). */
void atoll__player_unbind(atoll__worker *w, const atoll_player *p);
atoll_player *atoll__player_by_session(const atoll_area *a, atoll_session_id s);
/* The area numbered num on this worker, or NULL. */
atoll_area *atoll__area_find(atoll__worker *w, uint64_t num);
/* Claims an area for this worker: m is an AREA_CREATE, or an AREA_ENTER for an area
 * this worker does not have (its id and type travel in it). The directory is asked to
 * record the id here; mail for it waits until it answers. Takes m. */
void atoll__area_claim(atoll__worker *w, atoll__mail *m);
/* Holds m when its area is being claimed here; false when it is not. */
bool atoll__area_hold_claimed(atoll__worker *w, atoll__mail *m);
/* The directory's answer to a claim: the area is built (on_create) and what waited
 * runs, or, when the id lives elsewhere, what waited follows it there. */
void atoll__area_claim_answer(atoll__worker *w, atoll__mail *m);
/* Frees the claims still waiting (worker shutdown). */
void atoll__area_claims_fini(atoll__worker *w);
/* Drops mail that cannot run (the area is gone): a request is answered 500 with why, a
 * call ATOLL_ECANCELED. */
void atoll__area_fail_mail(atoll__worker *w, atoll__mail *m, const char *why);
/* Mail this worker sent to a node that cannot be reached, back (the node's hook): a
 * request or call fails, an entry is refused, a player whose move was lost is kicked;
 * output for a gate that is gone is dropped. Takes m. */
void atoll__area_undeliverable(atoll__worker *w, atoll__mail *m, int status);
/* Destroys a now: on_leave for each player (kicked unless shutdown), commands failed,
 * calls cancelled, timers closed, on_destroy, freed. */
void atoll__area_destroy_now(atoll__worker *w, atoll_area *a, bool shutdown);

/* Handles the AREA_* mail (except REPLY) on the area's worker; takes m. */
void atoll__area_mail(atoll__worker *w, atoll__mail *m);
/* MOVE_IN's fini: frees the player it carries; its codec for node links. */
void atoll__area_move_fini(atoll__mail *m);
int atoll__area_move_encode(const atoll__mail *m, atoll__buf *out);
int atoll__area_move_decode(atoll__mail *m, const uint8_t *bytes, size_t len);
/* Stats publishing, every wheel tick (100 ms). */
void atoll__areas_publish(atoll__worker *w);
/* Worker shutdown: destroys every area (hooks run, nothing is sent). */
void atoll__areas_shutdown(atoll__worker *w);
/* Runs one handler or hook of a (the caller sets up nothing): counts time and
 * messages, and afterwards carries out deferred destroys and moves. */
void atoll__area_begin(atoll_area *a);
void atoll__area_end(atoll_area *a);
void atoll__player_free(atoll_player *p);
/* Area ids: 1..ATOLL_AREA_ID_MAX bytes, no control characters, quotes or backslashes. */
bool atoll__area_id_valid(const char *id);
/* The index of area type `type`, or -1. */
int atoll__area_type_index(const atoll__node *n, const char *type);
/* Sends encoded packages to a session (its worker appends them to the connection). */
void atoll__session_out(atoll__worker *w, atoll_session_id s, int sw, const uint8_t *p, size_t n);

/* ---- docs.c: state documents, their store and the output that waits for commits -------- */

/* Opens the store cfg->store_url names and starts the writer (area_start); an error
 * with a log line that names the store. Closing flushes what is left. */
int atoll__docs_open(atoll__node *n);
void atoll__docs_close(atoll__node *n);
/* On a worker's thread once its loop has ended (atoll__areas_shutdown): the writer's
 * commits no longer post to it. */
void atoll__docs_worker_stopped(atoll__worker *w);
void atoll__docs_worker_init(atoll__worker *w);
void atoll__docs_worker_fini(atoll__worker *w);
/* End of a loop phase: changed documents are encoded and handed to the writer
 * (durable; fast mode does it on a timer), waiting output gets its commit ticket. */
void atoll__docs_phase_end(atoll__worker *w);
/* Every 100 ms: waiting output past store.timeout_ms is answered with an error. */
void atoll__docs_tick(atoll__worker *w);
/* Game code asked for a document's root (atoll_player_data, atoll_area_state). */
void atoll__docs_touch_player(atoll_player *p);
void atoll__docs_touch_area(atoll_area *a);
/* The end of a region of game code: what it changed is undone (keep false) or marked
 * changed; a query that changed a document is reported. */
void atoll__docs_region_end(atoll__worker *w, bool keep);
/* Whether output must wait for a commit now (durable, and something this worker
 * changed is not committed yet). */
bool atoll__docs_holding(atoll__worker *w);
/* Output that waits: a region's journal and staged mail (taken, the journal's bytes
 * copied), or bytes for one session. */
void atoll__docs_hold_region(atoll__worker *w, atoll__buf *log, atoll__mail_list *mail);
void atoll__docs_hold_out(atoll__worker *w, atoll_session_id s, int sw, const uint8_t *p,
                          size_t n);
/* The answer to kept request id of session s (a package): at once, or (durable) after
 * what this worker changed so far, the region that sends it included, is committed
 * (whether that region fails or not; a 500 at the timeout, never a late success). */
void atoll__docs_kept_answer(atoll__worker *w, atoll_session_id s, int sw, uint32_t id,
                             const uint8_t *p, size_t n);
/* Mail to another worker while output is held waits behind it (the node's hook). */
bool atoll__docs_hold_mail(atoll__worker *w, atoll__addr to, atoll__mail *m);
/* Whether another entry waits for p's document (a parked player then leaves at once). */
bool atoll__docs_wanted(atoll__worker *w, const atoll_player *p);
/* An AREA_ENTER for a player that is not in area a: true when it waits for the
 * player's document (taken; it comes back through on_enter_mail with the player's
 * data in m->value), false when it goes on now (a guest; a document loaded already). */
bool atoll__docs_enter_wait(atoll__worker *w, atoll__mail *m);
/* The area id's document, before on_create: answered by atoll__area_loaded. */
void atoll__docs_area_load(atoll__worker *w, const char *id);
/* p or a joined or left this worker's documents (attach / detach). */
void atoll__docs_player_in(atoll__worker *w, atoll_player *p);
void atoll__docs_player_out(atoll__worker *w, atoll_player *p);
void atoll__docs_area_in(atoll__worker *w, atoll_area *a);
/* p leaves the game on this node: its document is written if it changed and checked
 * in, and p is freed. */
void atoll__player_gone(atoll__worker *w, atoll_player *p);
/* a is destroyed: its document is written if it changed, and checked in. */
void atoll__docs_area_gone(atoll__worker *w, atoll_area *a);
/* area.c: the document of a claimed area is here (state NULL: none stored; err set: it
 * cannot be used, the area is refused), hash: of its stored bytes. Takes state. */
void atoll__area_loaded(atoll__worker *w, const char *id, atoll_value *state, uint64_t hash,
                        const char *err);
/* What a new player's data or a new area's state starts as: the stored document
 * (taken), else the declared defaults (JSON text; NULL: an empty object). */
atoll_value *atoll__docs_start(atoll_value *stored, const char *defaults);

/* ---- run.c: running game code and its answers ---------------------------------------------- */

/* Appends a RESPONSE package for request id with JSON body json[0..len). */
void atoll__put_response(atoll__buf *out, uint32_t id, const uint8_t *json, size_t len);
/* Answers a client's request with JSON text, or {"code":code,"message":msg}. */
void atoll__answer_client_json(atoll__worker *w, atoll_session_id s, int sw, uint32_t id,
                               const uint8_t *json, size_t len);
void atoll__answer_client_error(atoll__worker *w, atoll_session_id s, int sw, uint32_t id,
                                int code, const char *msg);
/* The route entry of a code (NULL when out of range). */
const atoll__route_entry *atoll__route_of(atoll__worker *w, uint16_t code);
/* True when m waits for a's next tick (command-queue areas); then it is queued. */
bool atoll__queue_if_command(atoll_area *a, const atoll__route_entry *re, atoll__mail *m);
/* Runs a client's message (AREA_REQ) of player p, or a call (AREA_CALL); take m. */
void atoll__run_client(atoll__worker *w, atoll_area *a, atoll_player *p, atoll__mail *m);
void atoll__run_call(atoll__worker *w, atoll_area *a, atoll__mail *m);

/* ---- flow.c: the mail of areas, and players moving --------------------------------------- */

/* Carries out the moves asked for in a (atoll_player_move), once no handler runs. */
void atoll__do_moves(atoll__worker *w, atoll_area *a);
/* The fence of p came: runs the messages held for it, in order. */
void atoll__deliver_held(atoll__worker *w, atoll_area *a, atoll_player *p);

/* Answers every kept request of a that is still unanswered (area closed) and frees it. */
void atoll__kept_close(atoll_area *a);
/* The kept requests of session s will answer nobody (its client is gone): the game's
 * answer or their deadline only frees them. */
void atoll__kept_drop_session(atoll_area *a, atoll_session_id s);
/* Runs on_enter (staged: its effects are dropped when it refuses the player) and
 * on_leave (staged, released). */
int atoll__hook_enter(atoll_area *a, atoll_player *p);
void atoll__hook_leave(atoll_area *a, atoll_player *p, atoll_leave_reason why);
/* Sends bytes to a session now, past the effects stage. */
void atoll__session_out_now(atoll__worker *w, atoll_session_id s, int sw, const uint8_t *p,
                            size_t n);

/* ---- effects.c: the effects stage --------------------------------------------------------- */

/* A region of game code: what it sends is held until fx_end, then released in order
 * (keep) or dropped (its calls are settled with ATOLL_ECANCELED, its moves forgotten). */
void atoll__fx_begin(atoll__worker *w);
void atoll__fx_end(atoll__worker *w, bool keep);
bool atoll__fx_active(const atoll__worker *w);
/* Holds bytes for a client (atoll__session_out while a region is open). Or in place:
 * begin returns the journal to append the bytes to, end closes the record. */
void atoll__fx_out(atoll__worker *w, atoll_session_id s, int sw, const uint8_t *p, size_t n);
atoll__buf *atoll__fx_out_begin(atoll__worker *w, atoll_session_id s, int sw, size_t *mark);
void atoll__fx_out_end(atoll__worker *w, size_t mark);
/* The journal's records, written into any journal (docs.c keeps held ones): bytes for a
 * session (begin/end around bytes appended in place, or whole), mail staged in list. */
atoll__buf *atoll__fx_put_out_begin(atoll__buf *log, atoll_session_id s, int sw, size_t *mark);
void atoll__fx_put_out_end(atoll__buf *log, size_t mark);
void atoll__fx_put_out(atoll__buf *log, atoll_session_id s, int sw, const uint8_t *p, size_t n);
void atoll__fx_put_mail(atoll__buf *log, atoll__mail_list *list, atoll__mail *m, atoll__addr to);
/* Mail that game code causes: held while a region is open, else sent at once (to a
 * worker of this node, or to an address). */
void atoll__area_send(atoll__worker *w, int to, atoll__mail *m);
void atoll__area_send_to(atoll__worker *w, atoll__addr to, atoll__mail *m);
/* A move was asked for p in the open region (forgotten if it fails). */
void atoll__fx_moved(atoll__worker *w, atoll_player *p);
void atoll__fx_fini(atoll__worker *w);
/* Sends a journal's records in order (client bytes, and mail of the list), as a region
 * that ends well does; docs.c releases held output through it. */
void atoll__fx_release_journal(atoll__worker *w, atoll__buf *log, atoll__mail_list *mail);
/* Drops staged mail (a list): calls it held are settled with ATOLL_ECANCELED. */
void atoll__fx_drop_mail(atoll__worker *w, atoll__mail *m);

/* ---- timers.c ------------------------------------------------------------------------------- */

/* Closes every timer of a (the area is being destroyed). */
void atoll__timers_close(atoll_area *a);

/* ---- entry.c: the gate's side of areas ---------------------------------------------------- */

/* Route handler of every area route: to the player's area, through the session's
 * cached route. */
void atoll__area_route(atoll__req *req);
/* The session hooks (node.h): entering the game's area after gate.entry, and the LEAVE
 * of a closing session. */
void atoll__area_enter(atoll__session *s, uint32_t request_id, bool reply, const atoll_value *body,
                       bool again);
void atoll__area_session_closed(atoll__session *s);
/* The admit hook: the game's entry hook runs before the uid is bound, and its choice
 * is kept in s->admitted for the entry that follows. */
int atoll__area_admit(atoll__session *s, const char *uid, const atoll_value *body, char *msg,
                      size_t len);
/* SESS_ROUTE: the session's player is now in another area (or none). */
void atoll__area_route_mail(atoll__worker *w, atoll__mail *m);

/* ---- resume.c: coming back after a dropped connection ----------------------------------- */

/* SESS_ROUTE answering a resume (its call_id), and its status when the player was not
 * in the area the directory named (the gate asks again). */
#define ATOLL__ROUTE_RESUME 1
#define ATOLL__RESUME_AGAIN 409

void atoll__resume_key_new(uint8_t key[ATOLL__RESUME_KEY]);
/* The key of a cluster, the same on every node: derived from the cluster's key. */
void atoll__resume_key_derive(uint8_t key[ATOLL__RESUME_KEY], const uint8_t *secret, size_t len);
bool atoll__resume_on(const atoll__node *n);
/* Draws p's next nonce: every token given before no longer matches. */
void atoll__resume_rotate(atoll_player *p);
/* Appends ,"resume":"<token>" for p to a JSON object being written. */
void atoll__resume_put_token(atoll__buf *json, const atoll__node *n, const atoll_player *p);
/* p's client went (a LEAVE that may resume): on_disconnect, and the window starts. */
void atoll__resume_park(atoll__worker *w, atoll_area *a, atoll_player *p);
/* A parked player is kicked: its window ends now (after the running code). */
void atoll__resume_end_now(atoll_area *a, atoll_player *p);
/* Stops p's window timer (p leaves the area another way). */
void atoll__resume_forget(atoll_area *a, atoll_player *p);
/* p takes the session of m (a login of the same uid, or a resume); on_resume when it
 * was parked. */
void atoll__resume_take_session(atoll__worker *w, atoll_area *a, atoll_player *p,
                                atoll__mail *m);
/* AREA_RESUME on the area's worker; takes m. */
void atoll__resume_mail(atoll__worker *w, atoll_area *a, atoll__mail *m);
/* find_player's answer for a gate.resume (DIR_ANSWER with a FIND cookie); takes m. */
void atoll__resume_found(atoll__worker *w, atoll__mail *m);
/* The gate.resume route. */
void atoll__gate_resume(atoll__req *req);
/* SESS_ROUTE: true when it answers a resume and was handled whole (m taken); false
 * when it is a resume's success, to be taken as any route. */
bool atoll__resume_route(atoll__worker *w, atoll__session *s, atoll__mail *m);

/* ---- ticks.c: the worker's ticking areas ------------------------------------------------- */

int atoll__ticks_init(atoll__worker *w);
void atoll__ticks_fini(atoll__worker *w);
/* Schedules a's next tick at a->tick_next_ns. */
void atoll__tick_add(atoll_area *a);
void atoll__tick_remove(atoll_area *a);
/* Runs a's tick (area.c); false when the area is gone afterwards. */
bool atoll__area_tick(atoll_area *a, uint64_t now_ns);

/* ---- proxy.c --------------------------------------------------------------------------- */

void atoll__proxy_reply_mail(atoll__worker *w, atoll__mail *m);
/* A call from the gate itself (no calling area: an asynchronous admission): as
 * atoll_call, and cb gets area NULL; runs outside any area. ATOLL_EINVAL for a bad id or
 * a route no area type has (body taken either way). */
int atoll__proxy_gate_call(atoll__worker *w, const char *to_id, const char *route,
                           atoll_value *body, uint32_t timeout_ms, atoll_call_fn cb, void *udata);
/* An AREA_CALL this worker sent itself with the target's id in its data (the id was
 * not cached when atoll_call ran): sent on to where the id lives once known. Takes m. */
void atoll__proxy_route(atoll__worker *w, atoll__mail *m);
/* A send (AREA_CALL without a call id) reached this worker, which does not have its
 * area: passed on to where the id it carries lives now (twice at most). Takes m. */
void atoll__proxy_send_moved(atoll__worker *w, atoll__mail *m);
/* Answers a call (req's call part): status and value (taken). */
void atoll__proxy_answer(atoll__worker *w, atoll__addr caller, uint64_t call_id, int status,
                         atoll_value *value);
/* Settles call call_id of this worker with ATOLL_ECANCELED (its AREA_CALL was dropped
 * with the effects of failed game code); nothing when it is settled already. */
void atoll__proxy_cancel_call(atoll__worker *w, uint64_t call_id);
/* Fails every call of a with ATOLL_ECANCELED (area being destroyed). */
void atoll__proxy_cancel_area(atoll_area *a);
/* Runs the calls whose deadline passed (the worker's call-wheel timer). */
void atoll__proxy_init(atoll__worker *w);
void atoll__proxy_fini(atoll__worker *w);

/* ---- the request being handled (area.c) ----------------------------------------------- */

typedef enum atoll__req_kind {
    ATOLL__REQ_CLIENT, /* a client's request or notify */
    ATOLL__REQ_CALL,   /* atoll_call (call_id != 0) or atoll_send */
} atoll__req_kind;

struct atoll_req {
    atoll__req_kind kind;
    atoll_area *area;
    atoll_player *player;        /* client messages */
    const char *route;
    const char *from;            /* calls */
    atoll_session_id session;    /* client messages */
    int session_worker;
    uint32_t request_id;         /* 0 for a notify */
    atoll__addr caller;          /* calls: the caller's worker */
    uint64_t call_id;            /* 0 for a send */
    const uint8_t *body_bytes;   /* client body (JSON) */
    size_t body_len;
    atoll_value *body;           /* parsed or given; owned */
    atoll__mail *mail;           /* a call's mail, reused for its answer */
    atoll_area *owner;           /* a kept request: the area that keeps it (NULL: none) */
    atoll_req *kept_prev, *kept_next; /* the owner's kept requests */
    uint64_t deadline_timer;     /* a kept request's deadline (an area timer), 0: none */
    bool answered;
    bool kept;                   /* a heap copy from atoll_req_keep */
    bool orphaned;               /* kept, and its client went: answers go nowhere */
    bool wants_answer;
    uint64_t seq;                /* client messages: its gate's number (exact.c), 0: none */
    uint64_t acked;              /* ... and every request up to this one was answered */
};

/* Naming and timing each call into game code (the watchdog). */
#include "watch.h"

#endif /* ATOLL_AREA_H */
