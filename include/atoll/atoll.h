/* atoll.h -- the one public header of atoll, the distributed game-server framework.
 *
 * Game code includes only this file. Everything named atoll_ / ATOLL_ here is the
 * supported API; anything under src/ (atoll__ names) is internal and may change.
 *
 * A game is a set of area types. An area (a map, a room, a lobby, a match) holds its
 * players and its state in memory; its handlers, hooks, timers and ticks run one at a
 * time on the one worker thread that owns it, so game code needs no locks. Handlers
 * never block and never do I/O: they change memory, reply, push, call other areas and
 * set timers, and the framework turns those effects into I/O.
 *
 * Threads: unless a comment says "any thread", a function may only be called from a
 * hook, handler, timer or callback of the area it names, while that call runs.
 *
 * Ownership of values: a function that takes an atoll_value * to send or store (set,
 * append, reply, push, call, create) takes the caller's reference, even when it fails,
 * so values can be built inline: atoll_reply(req, atoll_pack("{s:i}", "code", 200)).
 * Functions that return a value say whether it is new (the caller must atoll_unref it)
 * or borrowed (valid until the owner changes it or the call returns).
 */
#ifndef ATOLL_ATOLL_H
#define ATOLL_ATOLL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ATOLL_VERSION_MAJOR 0
#define ATOLL_VERSION_MINOR 1
#define ATOLL_VERSION_PATCH 0
#define ATOLL_VERSION_STRING "0.1.0"

/* Error codes: 0 is success, every error is negative, so one int can carry a count or
 * an error (as libuv's nread does). This X-macro list is the only copy of the numbers:
 * the enum, atoll_strerror and atoll_err_name are all expanded from it. */
#define ATOLL_ERRNO_MAP(X)                                                               \
    X(EINVAL, -1, "invalid argument")                                                    \
    X(ENOMEM, -2, "out of memory")                                                       \
    X(EPROTO, -3, "protocol error")                                                      \
    X(ELIMIT, -4, "over a configured limit")                                             \
    X(EAGAIN, -5, "need more data")                                                      \
    X(ENOENT, -6, "no such object")                                                      \
    X(EEXIST, -7, "already exists")                                                      \
    X(ECANCELED, -8, "operation canceled")                                               \
    X(ETIMEDOUT, -9, "timed out")                                                        \
    X(EIO, -10, "input/output error")                                                    \
    X(ECLOSED, -11, "connection closed")                                                 \
    X(EJSON, -12, "malformed JSON")                                                      \
    X(EUTF8, -13, "malformed UTF-8")                                                     \
    X(EADDR, -14, "address cannot be used (malformed, or in use)")                      \
    X(ESTATE, -15, "not allowed in this state")                                          \
    X(EAUTH, -16, "authentication failed")                                               \
    X(EBUSY, -17, "busy: try again later")

typedef enum atoll_err {
    ATOLL_OK = 0,
#define ATOLL_ERR_ENUM_(name, val, text) ATOLL_##name = (val),
    ATOLL_ERRNO_MAP(ATOLL_ERR_ENUM_)
#undef ATOLL_ERR_ENUM_
} atoll_err;

/* atoll_strerror returns a static English sentence for err ("unknown error" for a value
 * that is not in the map). Any thread. */
const char *atoll_strerror(int err);

/* atoll_err_name returns the code's name without the prefix, e.g. "EPROTO". Any thread. */
const char *atoll_err_name(int err);

/* atoll_main runs the atoll command line (`atoll run --game echo ...`) as if argv were
 * given to the atoll binary. A game that links atoll as a library calls this from its
 * own main(). Blocks until the node has shut down (SIGINT/SIGTERM) and returns the
 * process exit status. Main thread only; call once. */
int atoll_main(int argc, char **argv);


/* ==== values ========================================================================
 *
 * atoll_value is the JSON-like type of message bodies and of area and player state:
 * null, booleans, integers (int64), reals, strings (UTF-8), arrays and objects. Values
 * are reference counted; a new value has one reference. A value is used by one thread
 * at a time; handing it to the framework (reply, push, call) hands it over whole.
 * Every function accepts NULL where it takes a value and then fails or returns the
 * default, so a chain of calls needs one check at its end. */

typedef struct atoll_value atoll_value;

typedef enum atoll_type {
    ATOLL_NULL,
    ATOLL_BOOL,
    ATOLL_INT,
    ATOLL_REAL,
    ATOLL_STRING,
    ATOLL_ARRAY,
    ATOLL_OBJECT,
} atoll_type;

/* New values (one reference). NULL only on a bad argument (NULL string, bad UTF-8). */
atoll_value *atoll_null(void);
atoll_value *atoll_bool(int b);
atoll_value *atoll_int(int64_t i);
atoll_value *atoll_real(double d);
atoll_value *atoll_str(const char *s);            /* NUL-terminated UTF-8, copied */
atoll_value *atoll_strn(const char *s, size_t n); /* n bytes of UTF-8, copied */
atoll_value *atoll_array(void);
atoll_value *atoll_object(void);
/* Builds a value from a format, as jansson's json_pack does: "{s:i, s:s, s:[i,i]}"
 * with s string, i int, I int64_t, f double, b bool, n null, o an atoll_value * (its
 * reference is taken), O an atoll_value * (a new reference is added). NULL when the
 * format and the arguments do not match (logged); a NULL value for o or O is such a
 * mismatch (so a failed chain fails the whole pack), unless written "o?" or "O?", which
 * give JSON null for it. Every o given is released, also on failure. */
atoll_value *atoll_pack(const char *fmt, ...);
/* Parses JSON text; NULL on malformed input (err, if not NULL, gets a sentence). */
atoll_value *atoll_parse(const char *json, size_t len, char *err, size_t errlen);
/* Compact JSON text of v, NUL-terminated, *len (may be NULL) its length; free it with
 * atoll_free. NULL for NULL. */
char *atoll_dump(const atoll_value *v, size_t *len);
void atoll_free(void *p);

atoll_value *atoll_ref(atoll_value *v);   /* adds a reference, returns v */
void atoll_unref(atoll_value *v);         /* drops one; frees on the last */
atoll_value *atoll_copy(const atoll_value *v); /* new deep copy */
int atoll_equal(const atoll_value *a, const atoll_value *b);

atoll_type atoll_typeof(const atoll_value *v); /* ATOLL_NULL for NULL */
/* Scalars with a default for a missing value or another type (an int reads as a
 * real and a real as an int, truncated). The string is borrowed from v. */
int64_t atoll_as_int(const atoll_value *v, int64_t def);
double atoll_as_real(const atoll_value *v, double def);
int atoll_as_bool(const atoll_value *v, int def);
const char *atoll_as_str(const atoll_value *v, const char *def);
/* Items of an array, members of an object, bytes of a string; 0 otherwise. */
size_t atoll_len(const atoll_value *v);

/* Objects. atoll_get returns the member, borrowed, or NULL. The typed getters return
 * def when the key is missing or of another type. The setters replace the member;
 * they return ATOLL_OK, or ATOLL_EINVAL when obj is not an object or key is NULL. */
atoll_value *atoll_get(const atoll_value *obj, const char *key);
int64_t atoll_get_int(const atoll_value *obj, const char *key, int64_t def);
double atoll_get_real(const atoll_value *obj, const char *key, double def);
int atoll_get_bool(const atoll_value *obj, const char *key, int def);
const char *atoll_get_str(const atoll_value *obj, const char *key, const char *def);
int atoll_set(atoll_value *obj, const char *key, atoll_value *v); /* takes v */
int atoll_set_int(atoll_value *obj, const char *key, int64_t i);
int atoll_set_real(atoll_value *obj, const char *key, double d);
int atoll_set_bool(atoll_value *obj, const char *key, int b);
int atoll_set_str(atoll_value *obj, const char *key, const char *s);
/* Adds by to the integer member key (a missing one counts as 0) and returns the new
 * value: the one-line counter of game code (level += 1). */
int64_t atoll_incr(atoll_value *obj, const char *key, int64_t by);
int atoll_del(atoll_value *obj, const char *key); /* ATOLL_ENOENT when missing */
/* Walks an object's members in insertion order:
 *     const char *k; atoll_value *v;
 *     for (void *it = atoll_iter(obj); atoll_iter_get(it, &k, &v); it = atoll_iter_next(obj, it))
 * The object must not gain or lose members during the walk. */
void *atoll_iter(const atoll_value *obj);
void *atoll_iter_next(const atoll_value *obj, void *it);
int atoll_iter_get(void *it, const char **key, atoll_value **v);

/* Arrays. atoll_at returns the item, borrowed, or NULL past the end. */
atoll_value *atoll_at(const atoll_value *arr, size_t i);
int atoll_append(atoll_value *arr, atoll_value *v); /* takes v */
int atoll_remove_at(atoll_value *arr, size_t i);    /* ATOLL_ENOENT past the end */

/* ==== games, areas and players ====================================================== */

typedef struct atoll_node atoll_node;     /* the running node (settings, area manager) */
typedef struct atoll_area atoll_area;     /* one area, on its worker */
typedef struct atoll_player atoll_player; /* one player, in one area */
typedef struct atoll_req atoll_req;       /* a request, notify or call being handled */

/* Limits of names, in bytes. */
#define ATOLL_AREA_ID_MAX 64  /* "area-1", "room:lobby" */
#define ATOLL_TYPE_NAME_MAX 32 /* area type names: the first part of a route */
#define ATOLL_UID_MAX 128     /* player ids */

/* A handler serves one route, "<areaType>.<name>". It returns ATOLL_OK or an error
 * code; an error from a request that was not answered yet is answered
 * {"code":500,"message":"<what the error means>"} and the area goes on. A request
 * that returns ATOLL_OK without a reply (and was not kept) is answered {"code":200}. */
typedef int (*atoll_handler_fn)(atoll_req *req);

enum {
    /* Reads only: in a command-queue area it runs at once instead of at the next tick. */
    ATOLL_QUERY = 1 << 0,
    /* Only other areas may call it (atoll_call/atoll_send): it is in no dictionary a
     * client gets, and a client that names it is answered as for an unknown route. */
    ATOLL_INTERNAL = 1 << 1,
};

typedef struct atoll_handler {
    const char *name; /* the part of the route after the dot */
    atoll_handler_fn fn;
    unsigned flags;   /* ATOLL_QUERY | ATOLL_INTERNAL */
} atoll_handler;

/* Why a player left an area (atoll_area_type.on_leave). */
typedef enum atoll_leave_reason {
    ATOLL_LEAVE_DISCONNECT, /* the session closed (logout, network, kick) */
    ATOLL_LEAVE_MOVE,       /* atoll_player_move to another area */
    ATOLL_LEAVE_DESTROY,    /* the area is being destroyed */
} atoll_leave_reason;

/* What on_tick is told about the tick it runs. */
typedef struct atoll_tick {
    uint64_t count;   /* ticks of this area so far, from 1 */
    double dt;        /* seconds since the previous tick (the period for the first) */
    uint64_t late_ns; /* how long after its scheduled time this tick started */
} atoll_tick;

/* An area type: the handlers of its routes, its hooks, its tick. Every hook is
 * optional. Hooks and handlers of one area never run at the same time. */
typedef struct atoll_area_type {
    const char *name;                /* route prefix, [A-Za-z0-9_-], not "gate" */
    const atoll_handler *handlers;   /* ends with an entry whose name is NULL */
    /* Fixed-rate tick: on_tick runs tick_hz times a second on a fixed schedule (a late
     * tick does not move the next one). 0: no tick. */
    int tick_hz;
    void (*on_tick)(atoll_area *a, const atoll_tick *t);
    /* The game-loop model: handlers not marked ATOLL_QUERY are queued as commands and
     * applied at the start of the next tick, in arrival order; queries run at once.
     * Needs tick_hz > 0. */
    int queue_commands;
    /* An area with no players for this long is destroyed; 0: only atoll_area_destroy. */
    int empty_grace_ms;
    /* The area was created; init is the value given to atoll_area_create (borrowed,
     * may be NULL). An error refuses the area: it is destroyed again at once. */
    int (*on_create)(atoll_area *a, const atoll_value *init);
    /* The area is going away; its players have left already. */
    void (*on_destroy)(atoll_area *a);
    /* A player came in (a new session, or moved here with its data). An error
     * refuses it: a client's gate.entry is answered with it, a move goes back. */
    int (*on_enter)(atoll_area *a, atoll_player *p);
    /* A player is leaving; it is still in the area during the call. */
    void (*on_leave)(atoll_area *a, atoll_player *p, atoll_leave_reason why);
    /* Resume (session.resume_ms > 0): a player whose connection dropped (not kicked)
     * stays in the area, disconnected: on_disconnect runs, pushes to it are dropped,
     * atoll_player_move refuses it (ATOLL_ESTATE) and atoll_player_kick makes it leave
     * at once. When its client comes back (gate.resume) within the window, on_resume
     * runs and play goes on with the same data; otherwise on_leave
     * (ATOLL_LEAVE_DISCONNECT) runs when the window ends. */
    void (*on_disconnect)(atoll_area *a, atoll_player *p);
    void (*on_resume)(atoll_area *a, atoll_player *p);
    /* State documents: the framework keeps each area's state (by its id) and each
     * logged-in player's data (by uid) in the store, and loads them back: an area's
     * before on_create, a player's before on_enter of the area it logs in to. What has
     * never been stored starts as these JSON objects (NULL: {}); a player's from the
     * type of that first area. Guests' data is never stored. */
    const char *state_defaults;
    const char *player_defaults;
    /* Moving a running area to another node (an operator's move, a drain, a rebalance).
     * Its state document, players, timers, tick phase, calls it waits for and queued
     * commands go along; C memory does not. on_move_out runs on the old node just
     * before the area leaves: the game puts what its udata holds into the state and
     * frees it; or it returns an error, leaving everything as it was, which refuses the
     * move (the area stays and runs on). on_move_in runs on the new node before anything
     * else reaches the area there, to build udata again from the state; it also runs on
     * the old node when a move fails after on_move_out let the area go. An area whose udata is set and whose type has no on_move_out is
     * never moved (the move is refused with a reason), nor is one waiting for a kept
     * request's answer. A timer's or a call's udata crosses only when it is NULL or
     * points into the game's static data; anything else refuses the move. */
    int (*on_move_out)(atoll_area *a);
    void (*on_move_in)(atoll_area *a);
    /* Areas of this type are never moved while they run (a game instance): a drain of
     * their node lets them end on their own, and they take no new players meanwhile. */
    int drain_waits;
} atoll_area_type;

/* gate.entry {uid, ...}: the game chooses the area of a player that logs in (and the
 * guest hook that of a guest). Called on the connection's worker, maybe on several
 * workers at once: it may read settings and its arguments, nothing else. It fills
 * area_id and area_type (the type to create the area with when it does not exist yet)
 * and returns ATOLL_OK, or an error that answers the message with {"code":500}. */
typedef struct atoll_entry {
    atoll_node *node;
    const char *uid;
    const atoll_value *body;            /* the gate.entry body, borrowed; NULL for a guest */
    int worker;                         /* the connection's worker: 0 .. workers-1 */
    char area_id[ATOLL_AREA_ID_MAX + 1]; /* out */
    const char *area_type;              /* out */
    /* out: an area that does not exist yet is created on the connection's worker
     * rather than where the node places it, so its players' messages take no hop
     * between workers (an area per worker: name it after `worker`). */
    int local;
    /* out, optional: an admission that takes time (a ban list, a capacity, anything an
     * area knows). The framework calls the handler admit_route ("<type>.<name>",
     * usually ATOLL_INTERNAL) of area admit_area with {"uid":..., "area": the area_id
     * chosen above, "body": the gate.entry body}; the handler may answer at once or keep
     * the request and answer later. {"code":200} admits; any other code refuses the entry
     * with that code and message ({"code":403,"message":"banned"}), and nothing of the
     * uid is touched. No answer within admit_timeout_ms (0: 5000), or no such area or
     * route, refuses with {"code":503}. Nothing set: admitted at once. */
    char admit_area[ATOLL_AREA_ID_MAX + 1];
    const char *admit_route;
    uint32_t admit_timeout_ms;
} atoll_entry;

/* A setting of the game (`--set KEY=VALUE`), declared so the node checks it at start as
 * it checks its own: a --set key that is neither the framework's (net., log., node.,
 * area., session., auth., store.) nor declared by the game stops the node with an error (a
 * misspelt key never passes silently), and so does a value that does not parse or is
 * out of range. atoll_setting* then return the given value, or the declared default. */
typedef enum atoll_setting_type {
    ATOLL_SETTING_INT,    /* an integer from min to max */
    ATOLL_SETTING_BOOL,   /* true/false/yes/no/on/off/1/0 */
    ATOLL_SETTING_STRING, /* any text of at most max bytes (0: no limit) */
} atoll_setting_type;

typedef struct atoll_setting_decl {
    const char *key;         /* "mygame.rooms": by custom, the game's name and a dot */
    atoll_setting_type type;
    const char *def;         /* the default as it would be written in --set */
    int64_t min, max;        /* the range of an INT; max: the length of a STRING */
    const char *help;        /* one line for `atoll run --help` and error messages */
} atoll_setting_decl;

typedef struct atoll_game {
    const char *name;
    const atoll_area_type *const *area_types; /* NULL-terminated */
    int (*entry)(atoll_entry *e);
    /* Once at start, on the main thread before any worker runs: check settings,
     * create the areas that must exist from the start. An error stops the node. */
    int (*init)(atoll_node *n);
    /* Routes the game pushes; put in the route dictionary so they travel as codes.
     * NULL-terminated; may be NULL. */
    const char *const *push_routes;
    /* Guests: a session that sends a message to an area route before gate.entry enters
     * the game as a guest, and the message follows. guest chooses its area as entry
     * does; e->uid is the guest's id, "~" and 16 hex digits (gate.entry refuses uids
     * that start with "~"). NULL: such messages are answered {"code":500} ("not in an
     * area: send gate.entry first"). A guest that sends gate.entry leaves its area and
     * enters as that uid. */
    int (*guest)(atoll_entry *e);
    /* The game's settings, ending with an entry whose key is NULL; NULL: none (then
     * every --set key outside the framework's namespaces is an error). */
    const atoll_setting_decl *settings;
} atoll_game;

/* The layout of the structs above and the meaning of the functions; a node refuses a
 * game module built against another one (bumped on any incompatible change). */
#define ATOLL_ABI_VERSION 6

/* A game built as a shared object exports its atoll_game with this macro; `atoll run
 * --game path/to/game.so` loads it, after checking it was built with this ABI. */
#define ATOLL_GAME_MODULE(game) ATOLL_GAME_ENTRY(atoll, game)
/* The same entry under other names (prefix_game_abi, prefix_game_module), for a game
 * compiled into a program next to others: the atoll binary's built-in games register
 * through it, with the same checks as a shared object. */
#define ATOLL_GAME_ENTRY(prefix, game)                                                   \
    int prefix##_game_abi(void) { return ATOLL_ABI_VERSION; }                           \
    const atoll_game *prefix##_game_module(void) { return &(game); }

/* A game that links atoll as a library calls this from its main(): the `atoll`
 * command line (`run`, options, settings) serving that game. Blocks until the node has
 * stopped and returns the exit status. Main thread only. */
int atoll_run(const atoll_game *game, int argc, char **argv);

/* ---- settings: the framework's and the game's declared ones; any thread ---- */
const char *atoll_setting(const atoll_node *n, const char *key, const char *def);
int64_t atoll_setting_int(const atoll_node *n, const char *key, int64_t def);
/* true/false/yes/no/on/off/1/0; def for anything else. */
int atoll_setting_bool(const atoll_node *n, const char *key, int def);

/* ---- areas ---- */
atoll_node *atoll_area_node(const atoll_area *a);
const char *atoll_area_id(const atoll_area *a);
const char *atoll_area_type_name(const atoll_area *a);
/* The area's state: an object owned by the area, created empty, for the game to fill. */
atoll_value *atoll_area_state(atoll_area *a);
/* A pointer of the game's own for C state the value type does not suit. */
void *atoll_area_udata(const atoll_area *a);
void atoll_area_set_udata(atoll_area *a, void *udata);
size_t atoll_area_player_count(const atoll_area *a);
atoll_player *atoll_area_player(const atoll_area *a, const char *uid);
/* Players in the order they came in:
 *     for (atoll_player *p = atoll_area_first(a); p; p = atoll_area_next(p)) */
atoll_player *atoll_area_first(const atoll_area *a);
atoll_player *atoll_area_next(const atoll_player *p);
/* Creates area id of type type on the worker the node chooses; init (taken, may be
 * NULL) goes to on_create. ATOLL_ENOENT for an unknown type, ATOLL_EINVAL for a bad
 * id, ATOLL_EEXIST when this worker knows the id is taken (it has seen the area, or
 * is creating it). A creation that then finds the id taken elsewhere is dropped with
 * a log line (and init with it). Calls, sends and moves that this handler makes to the
 * new area reach it; on_create runs on its worker before anything else it receives. Any thread of the node (a handler, or the game's init). */
int atoll_area_create(atoll_node *n, const char *type, const char *id, atoll_value *init);
/* Destroys a once the current hook or handler returns: players leave
 * (ATOLL_LEAVE_DESTROY) and their sessions are kicked ("area closed"), calls of its
 * own that wait for replies get ATOLL_ECANCELED, on_destroy runs, the id is free. */
void atoll_area_destroy(atoll_area *a);

/* ---- players ---- */
const char *atoll_player_id(const atoll_player *p);
/* True while p's client is away and may come back (on_disconnect .. on_resume). */
int atoll_player_disconnected(const atoll_player *p);
atoll_area *atoll_player_area(const atoll_player *p);
/* The player's data: an object that starts empty and moves with the player. */
atoll_value *atoll_player_data(atoll_player *p);
/* Moves p to area to_id (on this or another worker) once the current handler returns:
 * on_leave(ATOLL_LEAVE_MOVE) here, on_enter there, with its data and its session; the
 * client's connection is untouched and its next requests reach the new area in order.
 * ATOLL_EINVAL to its own area or a bad id. Where to_id lives may be known only after
 * the handler (the directory is asked): when no such area exists, the move is given
 * up then with a log line and the player stays. */
int atoll_player_move(atoll_player *p, const char *to_id);
/* Closes the player's session with a KICK {"reason":reason}; it then leaves. */
void atoll_player_kick(atoll_player *p, const char *reason);

/* ---- pushes: encoded once, written with the connection's other output of the loop
 * turn. They take body (NULL sends {}); ATOLL_ELIMIT when too large for a package. */
int atoll_push(atoll_player *p, const char *route, atoll_value *body);
/* An atoll_player* is valid only during the hook, handler or callback that handed it
 * over (or found it with atoll_area_player/atoll_area_first): a player may leave at any
 * time in between. Code that reaches a player later (a timer, a call's callback) keeps
 * its uid and pushes with this: ATOLL_ENOENT, and nothing sent, when uid is not in area
 * a any more. (A stale pointer given to atoll_push and the other player functions is
 * refused with an error line when the memory still shows it freed; ASan builds catch
 * every such use.) */
int atoll_push_uid(atoll_area *a, const char *uid, const char *route, atoll_value *body);
int atoll_push_area(atoll_area *a, const char *route, atoll_value *body);
/* To every session of the node that has finished its handshake, whether it entered
 * an area or not (server announcements); from game code on a worker. */
int atoll_broadcast(atoll_node *n, const char *route, atoll_value *body);
/* To n players of area a (players of other areas are skipped). */
int atoll_push_list(atoll_area *a, atoll_player *const *players, size_t n, const char *route,
                    atoll_value *body);

/* ---- requests ---- */
atoll_area *atoll_req_area(const atoll_req *req);
/* The player who sent it; NULL for a call from another area. */
atoll_player *atoll_req_player(const atoll_req *req);
const char *atoll_req_route(const atoll_req *req);
/* Id of the calling area for atoll_call/atoll_send; NULL for a client's message. */
const char *atoll_req_from(const atoll_req *req);
/* The body, borrowed: an object (empty when the client sent none or no JSON). */
atoll_value *atoll_req_body(atoll_req *req);
/* Answers a request or a call, once; takes body (NULL answers {}). A notify or a send
 * takes no answer: ATOLL_OK, nothing sent. ATOLL_ESTATE when already answered. */
int atoll_reply(atoll_req *req, atoll_value *body);
/* Answers with JSON text already encoded (a cached answer, or the request's own body):
 * json[0..len) is copied. ATOLL_EINVAL when it is not one valid JSON value. */
int atoll_reply_json(atoll_req *req, const char *json, size_t len);
/* The body of a client's message as the JSON text it came in (borrowed for the
 * handler; "{}" when the client sent none or no JSON), *len its length. NULL for a call
 * from another area. */
const char *atoll_req_json(const atoll_req *req, size_t *len);
/* Answers {"code":code,"message":"<printf of fmt>"}. */
int atoll_reply_error(atoll_req *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Keeps req past its handler, to answer it later (from a timer, a call's callback):
 * returns a handle to pass to atoll_reply/atoll_reply_error, which frees it. Only
 * atoll_reply* may be used on a kept request, on the same area's worker.
 * The framework answers it for the game, frees the handle, and the handle must not be
 * used afterwards, when
 *   - timeout_ms pass first (0: the setting area.keep_ms, 30 s by default): answered
 *     {"code":500,"message":"request timed out"} (ATOLL_ETIMEDOUT to a caller), with a
 *     log line;
 *   - the area is destroyed first: its timers and calls get ATOLL_ECANCELED (the last
 *     chance to answer), then {"code":500,"message":"area closed"} (ATOLL_ECANCELED to
 *     a caller);
 *   - its deadline passes after the client's session ended (the player left, or waits
 *     to resume): it is freed without a word. Until then the game may still answer
 *     it; the answer goes nowhere.
 * A notify or a send has no answer: atoll_reply on its handle only frees it (so does
 * its deadline). */
atoll_req *atoll_req_keep(atoll_req *req, uint32_t timeout_ms);

/* ---- timers: owned by the area ----
 * fn runs on the area's worker with status ATOLL_OK each time the timer fires. When the
 * area is destroyed while a timer is pending, fn runs once more with ATOLL_ECANCELED
 * (before on_destroy): its last call, where udata can be freed and kept requests it
 * holds answered. A timer cancelled with atoll_timer_cancel is not called again. */
typedef void (*atoll_timer_fn)(atoll_area *a, int status, void *udata);
/* Returns a timer id (never 0), or 0 when a is NULL or fn is NULL. */
uint64_t atoll_timer_once(atoll_area *a, uint64_t ms, atoll_timer_fn fn, void *udata);
uint64_t atoll_timer_every(atoll_area *a, uint64_t ms, atoll_timer_fn fn, void *udata);
/* ATOLL_OK, or ATOLL_ENOENT when it already fired (once) or is unknown. */
int atoll_timer_cancel(atoll_area *a, uint64_t id);

/* ---- the area proxy: calls between areas by id ----
 * The target may be on this worker or another; the callback always runs later, on the
 * caller's worker, never inside atoll_call. atoll_call returns ATOLL_EINVAL for a route
 * no area type has, or that the target's type lacks when the target is known already.
 * status is ATOLL_OK with the reply (borrowed for the callback), ATOLL_ENOENT when no
 * such area exists, ATOLL_EINVAL when the target's type lacks the route,
 * ATOLL_ETIMEDOUT when no reply came within timeout_ms, ATOLL_ECANCELED when the
 * caller is destroyed first, or the error the target's handler returned. */
typedef void (*atoll_call_fn)(atoll_area *a, int status, atoll_value *reply, void *udata);
int atoll_call(atoll_area *from, const char *to_id, const char *route, atoll_value *body,
               uint32_t timeout_ms, atoll_call_fn fn, void *udata);
/* One-way: no reply, no callback. ATOLL_EINVAL for a route no area type has (or, when
 * the target is known already, not its type's). A target that does not exist is known
 * only later: the message is then dropped with a log line. */
int atoll_send(atoll_area *from, const char *to_id, const char *route, atoll_value *body);

/* ---- the area manager: every area of the node with its stats; any thread ---- */
typedef struct atoll_area_stats {
    char id[ATOLL_AREA_ID_MAX + 1];
    char type[ATOLL_TYPE_NAME_MAX + 1];
    int worker;              /* the worker that owns it */
    uint32_t players;
    uint64_t messages;       /* handled since creation (requests, notifies, calls) */
    double messages_per_s;   /* over the last second */
    uint64_t handler_ns;     /* total time in its handlers and hooks */
    uint64_t ticks;
    uint64_t tick_ns_max;    /* longest on_tick (with queued commands) of the last second */
    uint64_t tick_late_ns_max; /* latest tick start of the last second */
    uint32_t queue_depth;    /* commands waiting for the next tick */
    uint64_t slow;           /* its handlers, hooks, ticks, timers and callbacks that ran
                              * longer than area.slow_ms (each one also logged) */
} atoll_area_stats;
/* Copies the stats of up to cap areas into out and returns how many areas exist (may
 * be more than cap). Stats are published by the owning worker about every 100 ms. */
size_t atoll_node_areas(atoll_node *n, atoll_area_stats *out, size_t cap);

/* ---- logging and time; any thread ---- */
/* The one set of log levels, the framework's and the game's: a line is written when its
 * level is at most log.level. */
typedef enum atoll_log_level {
    ATOLL_LOG_ERROR = 0,
    ATOLL_LOG_WARN = 1,
    ATOLL_LOG_INFO = 2,
    ATOLL_LOG_DEBUG = 3,
} atoll_log_level;
/* One logfmt line: msg="<printf of fmt>" with the thread's name. */
void atoll_log(atoll_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Monotonic milliseconds. */
uint64_t atoll_now_ms(void);

#ifdef __cplusplus
}
#endif
#endif /* ATOLL_ATOLL_H */
