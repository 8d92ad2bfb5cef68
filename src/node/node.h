/* node.h -- one atoll node (node.c): its read-only state, the modules above it, the
 * route table, and starting and stopping its workers.
 *
 * DESIGN. A node is built before its worker threads start: config, game, route
 * dictionary, handshake replies, route table; all of it is read-only afterwards, which
 * is what lets the workers share it without locks. The node layer (workers, mail,
 * sessions, uids) knows nothing of areas: the modules above it (src/area) hand it an
 * atoll__module table, and through it register their mail kinds (mail.h), their route
 * handlers (the table below) and the session hooks (session.h), and keep their own
 * per-worker state. Calls go up only through what was registered, the way libuv calls
 * its user back.
 */
#ifndef ATOLL_NODE_H
#define ATOLL_NODE_H

#include "../core/core.h"
#include "../core/crash.h"
#include "../net/conn.h"
#include "../proto/proto.h"
#include "config.h"
#include "mail.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <uv.h>

typedef struct atoll__session atoll__session;
typedef struct atoll__game atoll__game;
typedef struct atoll__jwt_key atoll__jwt_key; /* auth.h */

/* ---- route handlers ---------------------------------------------------------------------- */

/* One decoded client message on its way to a handler, lent for the call. */
typedef struct atoll__req {
    atoll__session *session;
    atoll__worker *worker;
    int type;               /* ATOLL_MSG_REQUEST or ATOLL_MSG_NOTIFY */
    uint32_t id;
    uint16_t code;          /* the route's code in the dictionary */
    const char *route;      /* NUL-terminated */
    const uint8_t *body;    /* valid JSON ("{}" when the client's body was not JSON) */
    size_t body_len;
} atoll__req;

/* Runs on the session's worker. */
typedef void (*atoll__handler_fn)(atoll__req *req);

/* A game as the node sees it: a game of atoll.h (api), whose routes are
 * "<areaType>.<handler>" and run in areas, with its push routes counted. */
struct atoll__game {
    const char *name;
    const char *const *push_routes; /* routes the game pushes (put in the dictionary) */
    size_t npush;
    const atoll_game *api;
};

/* What a route code leads to: the function run on the session's worker (gate.entry,
 * or the area module's forwarding to the player's area), and for area routes the
 * game's handler and its area type. */
typedef struct atoll__route_entry {
    atoll__handler_fn gate;
    const atoll_handler *handler;
    int type_index;
} atoll__route_entry;

/* Registers a built-in game of the program before any node starts, through its entry
 * (ATOLL_GAME_ENTRY), checked as a shared object's would be. The library registers
 * none (cli/builtins.c does for atoll). */
void atoll__games_add_entry(const char *name, const atoll_game *(*module)(void),
                            int (*abi)(void));
/* Resolves --game: a built-in name, or a path (with a '/' or ending in .so) to a shared
 * object exporting atoll_game_module (ATOLL_GAME_MODULE). *dl gets the handle to
 * dlclose at the end (NULL for built-ins). NULL with a log line on failure. */
const atoll__game *atoll__game_load(const char *name_or_path, atoll__game *storage, void **dl);
/* Checks the game's setting declarations, and every --set key outside the framework's
 * namespaces against them (declared, and its value fits). A sentence in err. */
int atoll__game_check_settings(const atoll_game *g, const atoll__config *c, char *err,
                               size_t errlen);
/* The declaration of a game setting, or NULL. */
const atoll_setting_decl *atoll__game_setting(const atoll_game *g, const char *key);
/* Checks a game of atoll.h (names, tick rates); *ntypes gets its area types. */
int atoll__game_check(const atoll_game *g, int *ntypes, char *err, size_t errlen);

/* ---- modules ------------------------------------------------------------------------------ */

/* A part above the node (the area runtime). Every hook may be NULL. */
typedef struct atoll__module {
    const char *name;
    /* Before the workers exist: register mail kinds, routes and session hooks. */
    int (*start)(atoll__node *n);
    /* The game's init may run now: the workers exist, no thread runs yet. */
    int (*ready)(atoll__node *n);
    void (*worker_init)(atoll__worker *w);
    /* Every 100 ms on each worker. */
    void (*worker_tick)(atoll__worker *w);
    /* At the end of each phase of a loop turn, before mail is posted and connections
     * written: what the turn's game code changed is handed to the store here. */
    void (*worker_phase_end)(atoll__worker *w);
    /* Mail this worker sends to another one (of this node or another): true when the
     * module keeps it to send later (output held for a commit keeps its order with
     * what follows). */
    bool (*worker_hold_mail)(atoll__worker *w, atoll__addr to, atoll__mail *m);
    /* Mail this worker sent to another node that cannot be delivered, decoded back:
     * why is ATOLL_ECLOSED when the node is dead or unknown, ATOLL_ETIMEDOUT when no
     * link to it came up in time. The module fails what waits for it (a call, a
     * client's request). Takes m. */
    void (*worker_undeliverable)(atoll__worker *w, atoll__mail *m, int why);
    /* A worker's loop has ended (its connections are closed): last hooks may run,
     * whatever they send is dropped. */
    void (*worker_stopped)(atoll__worker *w);
    void (*worker_fini)(atoll__worker *w);
    /* Every worker's thread has ended (or none started): a module with a thread of its
     * own stops handing the workers mail, before they are freed. */
    void (*halt)(atoll__node *n);
    /* After every worker is freed. */
    void (*stop)(atoll__node *n);
} atoll__module;

/* ---- the node ----------------------------------------------------------------------------- */

/* Counters, kept per worker (plain integers: no cache line is shared on the request
 * path) and summed by atoll__node_join once the workers have stopped. */
typedef struct atoll__stats {
    uint64_t accepted;
    uint64_t rejected_full;
    uint64_t closed;
    uint64_t messages;
    uint64_t protocol_errors;
    uint64_t slow;              /* game callbacks longer than area.slow_ms */
    uint64_t stalled;           /* ... still running after area.stall_ms (the watchdog's
                                 * count, for the whole node) */
} atoll__stats;

/* What the session layer asks of the modules above it. */
typedef struct atoll__session_hooks {
    /* gate.entry of uid, before anything is bound: may this session enter as uid? 0
     * admits (what the module chose for the entry may be kept in s->admitted); an
     * error refuses, and msg[0..len) says why. Nothing of uid is touched: its session,
     * if any, stays. NULL: every entry is admitted. */
    int (*admit)(atoll__session *s, const char *uid, const atoll_value *body, char *msg,
                 size_t len);
    /* (admit may also return ATOLL__ADMIT_LATER: the answer comes later through
     * atoll__gate_admitted; the session keeps the entry meanwhile.) */
    /* gate.entry bound the session's uid (again: it was bound already, to the same
     * uid): enter the game and answer request_id when reply. body is the gate.entry
     * body, borrowed for the call. NULL: answer {"code":200,"uid":...} at once. */
    void (*enter)(atoll__session *s, uint32_t request_id, bool reply, const atoll_value *body,
                  bool again);
    /* The session is closing (its uid is released after this); it frees s->admitted. */
    void (*closed)(atoll__session *s);
} atoll__session_hooks;

/* The other nodes of a cluster, as the cluster module (src/cluster) gives them to the
 * node: NULL in the embedded node, which has none. Any thread. */
typedef struct atoll__remote_ops {
    /* Takes a copy of len bytes of records (wire.h: ATOLL_WIRE_REC_MAIL) for node `to`,
     * sent by worker `from` of this node (-1: another thread), in the order given. */
    void (*post)(atoll__node *n, int to, int from, const uint8_t *p, size_t len);
    /* Where a new area id should run: a worker of the least loaded area node. ATOLL_OK
     * with *out, or ATOLL_ENOENT when no area node is known. */
    int (*place)(atoll__node *n, const char *id, atoll__addr *out);
    /* A peer's record could not be decoded by a worker: its link is cut. */
    void (*bad_peer)(atoll__node *n, int node);
    /* The worker of area node `node` that area id goes to when it moves there: ATOLL_OK
     * with *out, ATOLL_ENOENT when `node` is not a live area node. */
    int (*worker_for)(atoll__node *n, int node, const char *id, atoll__addr *out);
    /* Worker `worker` dropped everything it ran because this node was declared dead
     * while it was away: what it posted before this is stale and is not sent. */
    void (*dropped)(atoll__node *n, int worker);
} atoll__remote_ops;

/* The outcome of a move of a running area (atoll__area_ops.move), on a worker of the
 * node that asked: ATOLL_OK with the area's new epoch and node and the pause its clients
 * saw, or an error and why. from: the node that ran it when the move was asked (0 when
 * the directory did not know the area). */
typedef void (*atoll__move_done_fn)(void *ctx, int status, const char *why, uint64_t epoch,
                                    int from, int node, uint32_t pause_us);

/* What the area runtime offers the node's other parts (the cluster's coordinator, the
 * admin API), set by its module's start. Any thread. */
typedef void (*atoll__info_done_fn)(void *ctx, int status, const char *json, size_t len);

typedef struct atoll__area_ops {
    /* Moves area id, wherever it runs, to node `node` (src/area/migrate.c); done runs
     * once, later. ATOLL_EINVAL for an id that cannot be an area's. */
    int (*move)(atoll__node *n, const char *id, int node, atoll__move_done_fn done, void *ctx);
    /* The players of area id, asked of its owner: done(ctx, ATOLL_OK, JSON {"area",
     * "node", "players": [{"uid", "connected"}]}) or an error (json NULL). */
    int (*players)(atoll__node *n, const char *id, atoll__info_done_fn done, void *ctx);
} atoll__area_ops;

struct atoll_node {
    atoll__config *cfg;
    int id;                     /* node.id */
    atoll__net_limits net_limits; /* from cfg, for the net layer */
    const atoll__game *game;
    atoll__dict *dict;
    /* The two handshake replies, encoded once at start: with the dictionary, and for a
     * client that already has it (its dictVersion matches). */
    atoll__buf hs_full;
    atoll__buf hs_cached;
    atoll__route_entry *routes; /* by route code; [0] and push routes are empty */
    atoll__session_hooks hooks;
    atoll__jwt_key *jwt;        /* auth.jwt_secret's key: gate.entry wants a token; NULL: not */
    const atoll__module *const *modules; /* NULL-terminated */
    void *module_data;          /* the area module's node-wide state (its directory) */
    /* The cluster (set by its module's start, before the area module's): the other
     * nodes, their data, and the directory in Redis. NULL: the embedded node. */
    const atoll__remote_ops *remote;
    const atoll__area_ops *area_ops;
    void *remote_data;
    struct atoll__dir *dir;
    /* A key derived from the cluster's secret, the same on every node (resume tokens
     * are checked by any gate with a key derived from it). */
    uint8_t cluster_key[32];
    bool cluster_key_set;
    atoll__game game_storage;   /* a loaded or linked game's wrapper */
    void *dl;                   /* dlopen handle of a --game path.so */
    int ntypes;                 /* area types of game->api */
    atoll__worker **workers;
    int nworkers;
    int bound_port;             /* the real port (when cfg->port was 0) */
    atomic_int nconns;          /* open connections, all workers */
    atomic_bool stopping;
    /* The cluster is draining this node (src/cluster/control.c): its areas move away,
     * and those that wait for their end (drain_waits) take no new players. */
    atomic_bool draining;
    bool halted;                /* the modules were told the workers ended */
    /* Game code that runs too long (core/crash.h): one watchdog over the workers. */
    atoll__watchdog watchdog;
    atoll__watch_slot **watch_slots;
};

/* Whether a session may enter as a guest (asked by src/area before the game's guest
 * hook): always when logins are not authenticated; with auth.jwt_secret only when
 * auth.guests=true, so that a game with guests does not let every client past the
 * token check by skipping gate.entry. */
static inline bool
atoll__guests_allowed(const atoll__node *n)
{
    return n->jwt == NULL || n->cfg->auth_guests;
}

/* Starts the workers and their listeners, serving `linked` (a game linked into the
 * program, atoll_run) or else the game cfg->game names, with the modules above the node
 * (NULL-terminated; NULL: none). Returns ATOLL_OK or an error (bind failed: ATOLL_EADDR
 * with a log line). */
int atoll__node_start(atoll__node *n, atoll__config *cfg, const atoll_game *linked,
                      const atoll__module *const *modules);
/* Asks every worker to stop accepting, flush and close; returns at once. Any thread. */
void atoll__node_stop(atoll__node *n);
/* Waits for the workers to finish and frees everything; out (may be NULL) gets the
 * summed counters of all workers. */
void atoll__node_join(atoll__node *n, atoll__stats *out);

#endif /* ATOLL_NODE_H */
