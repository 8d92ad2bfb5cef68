/* node.h -- internal contract of the node runtime: config, workers, connections,
 * sessions and the minimal handler dispatch of the built-in games.
 *
 * DESIGN. A node runs W worker threads. Each worker owns a libuv loop, its own
 * SO_REUSEPORT listening socket on the shared port (the kernel spreads accepts), the
 * connections it accepted, and one shard of the uid registry. Workers share nothing
 * mutable: they talk through mailboxes (a mutex-guarded array swapped out whole by the
 * owner, woken by one coalescing uv_async). The config and the route dictionary are
 * built before the workers start and are read-only afterwards.
 *
 * A connection's bytes are read into a per-worker scratch buffer and decoded in place;
 * only an unfinished tail is copied into the connection's own buffer, so an idle
 * connection holds no read buffer. Output (responses, pushes, kicks) is appended to the
 * connection's output buffer while the loop turn runs and written once per turn by the
 * worker's check handle (one write(2), one WebSocket frame). A connection whose unsent
 * output passes net.output_cap is closed: a slow reader cannot grow memory.
 *
 * Session ids are {worker:8 | slot:24 | generation:32}: a stale id (the connection is
 * gone, the slot reused) never matches, so cross-worker messages that name a session
 * are safe to deliver late.
 *
 * Invariants: a conn is touched only by its worker's thread; every conn is in exactly
 * one of the states INIT (transport not known), HTTP (reading the upgrade head),
 * INITED, WAIT_ACK, WORKING, CLOSING; a CLOSING conn reads nothing and is closed once
 * its output is written or its close deadline passes.
 */
#ifndef ATOLL_NODE_H
#define ATOLL_NODE_H

#include "../core/core.h"
#include "../net/ws.h"
#include "../proto/proto.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <uv.h>

/* ---- configuration --------------------------------------------------------------- */

typedef struct atoll__setting {
    char *key;
    char *value;
} atoll__setting;

typedef struct atoll__config {
    char host[64];
    int port;
    int workers;            /* 0: number of cores */
    char game[256];         /* built-in name or path of a shared object */
    int log_level;
    /* net.* */
    uint32_t max_package;   /* bytes of one package body */
    int max_conns;          /* whole node */
    int heartbeat_s;        /* 0: no heartbeats */
    int heartbeat_timeout_s;/* 0: 2 * heartbeat */
    int idle_timeout_s;     /* no bytes received for this long: close */
    int handshake_timeout_s;/* must reach WORKING within this */
    size_t output_cap;      /* unsent bytes per connection before it is closed */
    double rate_limit;      /* messages per second per connection, 0: off */
    double rate_burst;      /* bucket size; 0: 2 * rate_limit */
    int dict;               /* send the route dictionary in the handshake */
    char min_client_version[32]; /* older clients get {"code":501}; "" = any */
    /* every --set KEY=VALUE, including game settings, in order */
    atoll__setting *settings;
    size_t nsettings;
} atoll__config;

void atoll__config_defaults(atoll__config *c);
/* Applies KEY=VALUE. Known keys (net.*, log.*, node.*) are checked and stored in the
 * typed fields; other keys are kept for the game. Returns ATOLL_OK or ATOLL_EINVAL
 * with a sentence in err. */
int atoll__config_set(atoll__config *c, const char *kv, char *err, size_t errlen);
/* Checks settings against each other (heartbeat vs idle and heartbeat timeouts, output
 * cap vs package size) once all are given. ATOLL_EINVAL with a sentence in err. */
int atoll__config_check(const atoll__config *c, char *err, size_t errlen);
/* A game setting, or def when not given. */
const char *atoll__config_get(const atoll__config *c, const char *key, const char *def);
void atoll__config_fini(atoll__config *c);

/* ---- forward types ------------------------------------------------------------------ */

typedef struct atoll_node atoll__node; /* the public atoll_node of atoll.h */
typedef struct atoll__worker atoll__worker;
typedef struct atoll__conn atoll__conn;
typedef struct atoll__game atoll__game;

typedef struct atoll_session_id {
    uint64_t v;
} atoll_session_id;

/* The worker a session belongs to (the top 8 bits of its id; worker.c). */
static inline int
atoll__session_worker(atoll_session_id id)
{
    return (int)(id.v >> 56);
}

/* ---- handler dispatch (minimal, for the built-in games) ----------------------------- */

/* One decoded client message on its way to a handler. Lent for the handler call. */
typedef struct atoll__req {
    atoll__conn *conn;
    atoll__worker *worker;
    int type;               /* ATOLL_MSG_REQUEST or ATOLL_MSG_NOTIFY */
    uint32_t id;
    const char *route;      /* NUL-terminated */
    const uint8_t *body;    /* valid JSON ("{}" when the client's body was not JSON) */
    size_t body_len;
} atoll__req;

typedef void (*atoll__handler_fn)(atoll__req *req);

typedef struct atoll__route {
    const char *route;
    atoll__handler_fn fn;
} atoll__route;

/* A game as the node sees it: either built-in connection-level handlers (the echo game,
 * which serves clients that never enter an area) or a game of atoll.h (api), whose
 * routes are "<areaType>.<handler>" and run in areas. */
struct atoll__game {
    const char *name;
    const atoll__route *routes; /* connection-level handler routes */
    size_t nroutes;
    const char *const *push_routes; /* routes the game pushes (put in the dictionary) */
    size_t npush;
    const atoll_game *api;      /* NULL for connection-level games */
};

/* What a route code leads to: a connection-level handler, or an area handler. */
typedef struct atoll__route_entry {
    atoll__handler_fn gate;          /* run on the connection's worker */
    const atoll_handler *handler;    /* run in the player's area */
    int type_index;                  /* the handler's area type */
} atoll__route_entry;

/* Fills node->routes from the dictionary and the game's routes (session.c). */
void atoll__dispatch_build(atoll__node *n);

/* Built-in games by name; NULL when unknown. */
const atoll__game *atoll__game_find(const char *name);
/* Resolves --game: a built-in name, or a path (with a '/' or ending in .so) to a shared
 * object exporting atoll_game_module (ATOLL_GAME_MODULE). *dl gets the handle to
 * dlclose at the end (NULL for built-ins). NULL with a log line on failure. */
const atoll__game *atoll__game_load(const char *name_or_path, atoll__game *storage, void **dl);
/* Checks a game of atoll.h (names, tick rates); *ntypes gets its area types. */
int atoll__game_check(const atoll_game *g, int *ntypes, char *err, size_t errlen);

/* Handler effects. All run on the request's worker thread and never block. */
/* Replies to a request (no-op for a notify). body must be JSON; NULL/0 sends "{}". */
void atoll__reply(atoll__req *req, const char *body, size_t len);
/* Replies {"code":<code>,"message":"<msg>"} (no-op for a notify). */
void atoll__reply_error(atoll__req *req, int code, const char *msg);
/* Pushes to one connection. */
void atoll__push(atoll__conn *c, const char *route, const char *body, size_t len);
/* Pushes to every WORKING connection of the node, encoded once. */
void atoll__broadcast(atoll__worker *w, const char *route, const char *body, size_t len);
/* Sends a KICK {"reason":...} (WORKING only) and closes after the output is written. */
void atoll__kick(atoll__conn *c, const char *reason);

/* ---- node ---------------------------------------------------------------------------- */

/* Counters, kept per worker (plain integers: no cache line is shared on the request
 * path) and summed by atoll__node_stats once the workers have stopped. */
typedef struct atoll__stats {
    uint64_t accepted;
    uint64_t rejected_full;
    uint64_t closed;
    uint64_t messages;
    uint64_t protocol_errors;
} atoll__stats;

struct atoll_node {
    atoll__config *cfg;
    const atoll__game *game;
    atoll__dict *dict;
    /* The two handshake replies, encoded once at start: with the dictionary, and for a
     * client that already has it (its dictVersion matches). */
    atoll__buf hs_full;
    atoll__buf hs_cached;
    atoll__route_entry *routes; /* by route code; [0] and push routes are empty */
    atoll__game game_storage;   /* a loaded or linked game's wrapper */
    void *dl;                   /* dlopen handle of a --game path.so */
    int ntypes;                 /* area types of game->api */
    struct atoll__directory *dir; /* areas and players of the node (area/directory.c) */
    atoll__worker **workers;
    int nworkers;
    int bound_port;             /* the real port (when cfg->port was 0) */
    atomic_int nconns;          /* open connections, all workers */
    atomic_bool stopping;
};

/* Starts the workers and their listeners, serving `linked` (a game linked into the
 * program, atoll_run) or else the game cfg->game names. Returns ATOLL_OK or an error
 * (bind failed: ATOLL_EADDR with a log line). */
int atoll__node_start(atoll__node *n, atoll__config *cfg, const atoll_game *linked);
/* Asks every worker to stop accepting, flush and close; returns at once. Any thread. */
void atoll__node_stop(atoll__node *n);
/* Waits for the workers to finish and frees everything; out (may be NULL) gets the
 * summed counters of all workers. */
void atoll__node_join(atoll__node *n, atoll__stats *out);

/* ---- workers and mailboxes ----------------------------------------------------------- */

typedef enum atoll__mail_type {
    ATOLL_MAIL_BIND,      /* to the uid's owner: bind uid to session */
    ATOLL_MAIL_BOUND,     /* back to the session's worker: uid bound, enter the game */
    ATOLL_MAIL_UNBIND,    /* to the uid's owner: session closed */
    ATOLL_MAIL_KICK,      /* to a session's worker: kick it */
    ATOLL_MAIL_BROADCAST, /* to every worker: write the shared bytes to every session */
    ATOLL_MAIL_STOP,      /* stop accepting, flush, close */
    /* to an area's worker (area.c) */
    ATOLL_MAIL_AREA_CREATE, /* build the area now (on_create) */
    ATOLL_MAIL_AREA_ENTER,  /* a session's player enters */
    ATOLL_MAIL_AREA_REQ,    /* a client's request or notify, body bytes inline */
    ATOLL_MAIL_AREA_LEAVE,  /* the session closed */
    ATOLL_MAIL_AREA_FENCE,  /* no more forwarded messages for this session follow */
    ATOLL_MAIL_AREA_MOVE_IN,/* a player moves in from another area */
    ATOLL_MAIL_AREA_CALL,   /* atoll_call / atoll_send from another area */
    ATOLL_MAIL_AREA_REPLY,  /* to the caller's worker: a call's answer */
    /* to a session's worker (session.c) */
    ATOLL_MAIL_SESS_OUT,    /* encoded packages for sessions: records of {session id,
                             * length, bytes}, a loop turn's worth for one worker */
    ATOLL_MAIL_SESS_PUSH,   /* shared encoded push for a list of sessions */
    ATOLL_MAIL_SESS_ROUTE,  /* the session's player is now in this area */
} atoll__mail_type;

/* Bytes encoded once and shared by several workers; freed by the last reader. */
typedef struct atoll__shared {
    atomic_int refs;
    size_t len;
    uint8_t data[];
} atoll__shared;

/* Opaque to the node: defined in src/area. */
typedef struct atoll_player atoll_player;
typedef struct atoll_value atoll_value;

/* One message between workers. Mail from one worker to another arrives in the order it
 * was sent; mail a worker sends to itself goes through its local queue, in order too. */
typedef struct atoll__mail {
    struct atoll__mail *next;  /* mailbox, outbox, local queue, held and command lists */
    atoll__mail_type type;
    atoll_session_id session;
    uint32_t request_id;
    bool reply;                /* BIND/BOUND/ENTER: answer request_id (not for a notify) */
    bool forwarded;            /* AREA_*: forwarded by the area the player moved from */
    uint8_t msg_type;          /* AREA_REQ: ATOLL_MSG_REQUEST or NOTIFY */
    uint16_t route;            /* AREA_REQ/AREA_CALL: route code */
    int status;                /* AREA_REPLY */
    int worker;                /* AREA_CALL: caller's worker; SESS_ROUTE: area's worker */
    uint64_t area;             /* AREA_*: target area; SESS_ROUTE: new area */
    uint64_t area_old;         /* SESS_ROUTE after a move: the area to fence; MOVE_IN: from */
    uint64_t call_id;          /* AREA_CALL (0: a send) and AREA_REPLY */
    int type_index;            /* SESS_ROUTE, AREA_ENTER: area type */
    char *uid;                 /* owned (BIND, BOUND, UNBIND, ENTER) */
    char reason[48];           /* KICK */
    atoll__shared *shared;     /* BROADCAST, SESS_PUSH: holds one reference */
    atoll_session_id *sessions;/* SESS_PUSH: owned */
    size_t nsessions;
    atoll_value *value;        /* owned: ENTER body, CALL body, REPLY body */
    atoll_player *player;      /* owned: MOVE_IN */
    /* AREA_CALL: the calling area's id; AREA_ENTER: the target's id (with type_index),
     * to create it again if it was destroyed on the way */
    char from[ATOLL_AREA_ID_MAX + 1];
    int worker_old;            /* SESS_ROUTE: worker of area_old */
    bool pooled;               /* allocated without data: may go to a worker's free list */
    size_t len;                /* bytes in data: AREA_REQ body, SESS_OUT packages */
    uint8_t data[];
} atoll__mail;

/* New zeroed mail with room for len bytes of data (m->len set). Every mail is made
 * here, whatever its kind. */
atoll__mail *atoll__mail_new(atoll__mail_type type, size_t len);
/* Frees mail and everything it owns (uid, value, player, sessions, shared bytes),
 * whatever its kind is or became on the way. The one way to drop mail: a path that
 * frees the struct alone leaks what it carries (a gate.entry body per reset client
 * was such a leak). */
void atoll__mail_free(atoll__mail *m);

/* Sends mail to worker `to` from the calling thread: a worker thread batches it in its
 * outbox (one lock per destination per loop turn) or, to itself, in its local queue;
 * any other thread posts it at once. Takes ownership. */
void atoll__send(atoll__node *n, int to, atoll__mail *m);
/* Sends encoded packages to session s on worker `to` (not the calling worker): appended
 * to this turn's SESS_OUT batch for that worker, one mail per turn instead of one per
 * reply. Other mail sent to `to` later is queued after the batch, so order holds. */
void atoll__send_out(atoll__node *n, int to, atoll_session_id s, const uint8_t *p, size_t len);
/* The worker running on this thread, or NULL. */
atoll__worker *atoll__current_worker(void);

/* Posts mail to worker w at once (a lock and a wake-up); takes ownership. Any thread.
 * Prefer atoll__send, which batches. */
void atoll__worker_post(atoll__worker *w, atoll__mail *m);

/* Worker that owns a uid in the registry. */
atoll__worker *atoll__uid_owner(atoll__node *n, const char *uid);

#endif /* ATOLL_NODE_H */
