/* redis.c -- the cluster's state in Redis (redis.h): the directory of directory.h over
 * Redis, the registry of live nodes and their leases, the coordinator's lease.
 *
 * Threads. The directory's operations come from any thread (workers call them): each
 * becomes an op in a queue under `lock`, and the loop is woken with one uv_async. On
 * the loop's thread the op becomes a command on the command connection, and its reply
 * becomes the DIR_ANSWER mail, posted as dir_local.c posts it. Everything else (the
 * registry, the leases, the connections) lives on the loop's thread alone.
 *
 * Commands are EVAL, not EVALSHA: directory operations are rare (area creation and
 * removal, a worker's cache miss, a player entering an area, never per client
 * request), the scripts are a few hundred bytes, and Redis compiles a script once and
 * finds it by its SHA-1 afterwards; EVAL keeps no state that a restarted or flushed
 * Redis loses, where EVALSHA needs the scripts loaded again on every new connection
 * and a NOSCRIPT fallback. Operations that are one command (resolve, bind_player,
 * find_player, invalidate) need no script: one command is atomic by itself.
 *
 * Epochs are numbers below 2^53 in Lua (whose numbers are doubles) and decimal text in
 * Redis and in the commands: a new epoch is max(last + 1, Redis's clock in
 * microseconds), and the clock is about 1.8e15 now, 2^53 about 9.0e15 (the year 2255),
 * so every epoch is an integer a double holds exactly. They are written with
 * string.format('%.0f') (tostring would give "1.7e+15") and cas_owner compares the
 * stored text with the expected epoch's text: both are canonical decimals, so equal
 * text is an equal epoch. Area numbers may be above 2^53 (the node id is in their top
 * bits): scripts never turn them into Lua numbers, they pass through as text.
 *
 * Redis going away. A connection that drops, or fails to connect, is made again after
 * 100 ms, then 200, 400... up to 2 s between tries, until both are up (one "redis
 * down" line per outage, "redis up again" at its end). Meanwhile directory operations
 * are answered ATOLL_EIO at once, and commands in flight when the connection dropped
 * are answered ATOLL_EIO by hiredis's callbacks: nothing is dropped unanswered. A
 * Redis that hangs without closing its sockets (paused, cut off by the network) is
 * found by a watchdog: a command without a reply for REPLY_TIMEOUT_MS, or a connection
 * not made within CONNECT_TIMEOUT_MS, drops the connections as if Redis had closed
 * them. Invalidations published while the subscription is down are lost; the caches
 * they were for are corrected by the owners' `moved` answers (invariant 5).
 */
#include "redis.h"

#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/adapters/libuv.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keys (redis.h lists what each holds). */
#define KEY_AREA "atoll:area:"
#define KEY_NODE_AREAS "atoll:node_areas:"
#define KEY_PLAYER "atoll:player:"
#define KEY_EPOCH "atoll:epoch"
#define KEY_NODE "atoll:node:"
#define KEY_NODES "atoll:nodes"
#define KEY_COORD "atoll:coordinator"
#define CHANNEL_INV "atoll:inv"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 2000
#define CONNECT_TIMEOUT_MS 2000 /* a connection (blocking or not) made within this */
#define REPLY_TIMEOUT_MS 2000   /* a command answered within this, or Redis is gone */
#define WATCH_EVERY_MS 250      /* how often the watchdog looks */
#define DETACH_GRACE_MS 1000    /* detach waits this long for replies in flight */
/* A joining node's id is held this long by a placeholder record until the node's first
 * heartbeat replaces it with its own record and lease: a node that died while starting
 * gives its id back after this. */
#define JOIN_HOLD_MS 5000

#define NS_PER_MS 1000000u

/* ---- the scripts ---------------------------------------------------------------------------- */

/* A new epoch: one more than the last one given, and never less than Redis's clock in
 * microseconds, so a Redis that lost its data (FLUSHALL, a new server) still gives
 * epochs newer than the store's fencing has seen. TIME in a script that writes is
 * allowed since scripts replicate their effects (the default since Redis 5, the only
 * way since 7). */
#define LUA_NEXT_EPOCH                                                                     \
    "local function next_epoch(key)\n"                                                     \
    "  local t = redis.call('TIME')\n"                                                     \
    "  local e = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"                              \
    "  local last = tonumber(redis.call('GET', key) or '0')\n"                             \
    "  if last + 1 > e then e = last + 1 end\n"                                            \
    "  e = string.format('%.0f', e)\n"                                                     \
    "  redis.call('SET', key, e)\n"                                                        \
    "  return e\n"                                                                         \
    "end\n"

/* place: create-if-absent.
 * KEYS: area:<id>, epoch. ARGV: id, num, node, worker, type, node_areas prefix.
 * {'OK', entry...} with the new epoch, or {'EEXIST', entry...} of the one there. */
static const char PLACE_LUA[] =
    LUA_NEXT_EPOCH
    "local cur = redis.call('HMGET', KEYS[1], 'num', 'node', 'worker', 'epoch', 'type')\n"
    "if cur[4] then return {'EEXIST', cur[1], cur[2], cur[3], cur[4], cur[5]} end\n"
    "local e = next_epoch(KEYS[2])\n"
    "redis.call('HSET', KEYS[1], 'num', ARGV[2], 'node', ARGV[3], 'worker', ARGV[4],\n"
    "           'epoch', e, 'type', ARGV[5])\n"
    "redis.call('SADD', ARGV[6] .. ARGV[3], ARGV[1])\n"
    "return {'OK', ARGV[2], ARGV[3], ARGV[4], e, ARGV[5]}\n";

/* cas_owner: when the stored epoch is the expected one, the entry becomes the new one
 * (a new epoch) or goes, the id moves between the nodes' sets, and then, after the
 * write and in the same script, the old epoch is published.
 * KEYS: area:<id>, epoch. ARGV: id, expected epoch, '1' to remove, num, node, worker,
 * type, node_areas prefix, channel.
 * {'OK', entry...}, {'OK'} (removed), {'ESTATE', entry...} or {'ENOENT'}. */
static const char CAS_LUA[] =
    LUA_NEXT_EPOCH
    "local cur = redis.call('HMGET', KEYS[1], 'num', 'node', 'worker', 'epoch', 'type')\n"
    "if not cur[4] then return {'ENOENT'} end\n"
    "if cur[4] ~= ARGV[2] then return {'ESTATE', cur[1], cur[2], cur[3], cur[4], cur[5]} end\n"
    "if cur[2] then redis.call('SREM', ARGV[8] .. cur[2], ARGV[1]) end\n"
    "local out = {'OK'}\n"
    "if ARGV[3] == '1' then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "else\n"
    "  local e = next_epoch(KEYS[2])\n"
    "  redis.call('HSET', KEYS[1], 'num', ARGV[4], 'node', ARGV[5], 'worker', ARGV[6],\n"
    "             'epoch', e, 'type', ARGV[7])\n"
    "  redis.call('SADD', ARGV[8] .. ARGV[5], ARGV[1])\n"
    "  out = {'OK', ARGV[4], ARGV[5], ARGV[6], e, ARGV[7]}\n"
    "end\n"
    "redis.call('PUBLISH', ARGV[9], cur[4] .. ' ' .. ARGV[1])\n"
    "return out\n";

/* node_join: the id this name had, when no live node holds it; else an id that no node
 * ever had; else one whose node is dead (its lease is gone). An id whose dead node
 * still owns areas in the directory is not given either: the coordinator has yet to
 * take them, and would take the new node's with them (they are listed by node id).
 * Held at once by a placeholder record, so two nodes joining together never get the
 * same id.
 * KEYS: nodes. ARGV: name, node key prefix, highest id, hold ms, placeholder record,
 * node areas key prefix. */
static const char JOIN_LUA[] =
    "local function live(id)\n"
    "  return redis.call('EXISTS', ARGV[2] .. id) == 1 or\n"
    "         redis.call('SCARD', ARGV[6] .. id) > 0\n"
    "end\n"
    "local max = tonumber(ARGV[3])\n"
    "local used, pick = {}, nil\n"
    "local known = redis.call('HGETALL', KEYS[1])\n"
    "for i = 1, #known, 2 do\n"
    "  local id = tonumber(known[i])\n"
    "  if id and id >= 1 and id <= max then\n"
    "    used[id] = true\n"
    "    if known[i + 1] == ARGV[1] and (pick == nil or id < pick) and not live(id) then\n"
    "      pick = id\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if pick == nil then\n"
    "  for id = 1, max do\n"
    "    if not used[id] and not live(id) then pick = id break end\n"
    "  end\n"
    "end\n"
    "if pick == nil then\n"
    "  for id = 1, max do\n"
    "    if not live(id) then pick = id break end\n"
    "  end\n"
    "end\n"
    "if pick == nil then return redis.error_reply('every node id is held by a live node') end\n"
    "redis.call('HSET', KEYS[1], pick, ARGV[1])\n"
    "redis.call('SET', ARGV[2] .. pick, ARGV[5], 'PX', ARGV[4])\n"
    "redis.call('HDEL', 'atoll:drains', pick)\n" /* a drain was of the node that had it */
    "return pick\n";

/* node_beat: the record with its lease renewed, only while it is still there (a node
 * whose lease ran out was declared dead: it is told, 0, and decides what it is now);
 * with ARGV[4] "claim" it is written whatever was there. And the id's name in the
 * registry (which a Redis that lost its data gets back from the next heartbeat).
 * KEYS: node:<id>, nodes. ARGV: record, lease ms, id, mode. */
static const char BEAT_LUA[] =
    "if ARGV[4] ~= 'claim' and redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "local ok, rec = pcall(cjson.decode, ARGV[1])\n"
    "if ok and type(rec) == 'table' and type(rec.name) == 'string' then\n"
    "  redis.call('HSET', KEYS[2], ARGV[3], rec.name)\n"
    "end\n"
    "return 1\n";

/* nodes: id, record, id, record... of every registered node whose lease is alive.
 * KEYS: nodes. ARGV: node key prefix. */
static const char NODES_LUA[] =
    "local out = {}\n"
    "for _, id in ipairs(redis.call('HKEYS', KEYS[1])) do\n"
    "  local rec = redis.call('GET', ARGV[1] .. id)\n"
    "  if rec then out[#out + 1] = id out[#out + 1] = rec end\n"
    "end\n"
    "return out\n";

/* coord_lease: taken when nobody holds it, renewed when ours. 1 when held now.
 * KEYS: coordinator. ARGV: node id, lease ms. */
static const char COORD_LUA[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end\n"
    "if cur then return 0 end\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "return 1\n";

/* node_areas: id and entry (num, node, worker, epoch, type) of each area in the node's
 * set whose entry still names the node; the others are taken out of the set.
 * KEYS: node_areas:<n>. ARGV: area key prefix, n. */
static const char AREAS_LUA[] =
    "local out = {}\n"
    "for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
    "  local f = redis.call('HMGET', ARGV[1] .. id, 'num', 'node', 'worker', 'epoch', 'type')\n"
    "  if f[2] == ARGV[2] and f[4] then\n"
    "    out[#out + 1] = id out[#out + 1] = f[1] out[#out + 1] = f[2]\n"
    "    out[#out + 1] = f[3] out[#out + 1] = f[4] out[#out + 1] = f[5]\n"
    "  else\n"
    "    redis.call('SREM', KEYS[1], id)\n"
    "  end\n"
    "end\n"
    "return out\n";

/* node_leave: the record goes, and the coordinator's lease when it is this node's.
 * KEYS: node:<id>, coordinator. ARGV: id. */
static const char LEAVE_LUA[] =
    "redis.call('DEL', KEYS[1])\n"
    "if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end\n"
    "return 1\n";

/* ---- state ---------------------------------------------------------------------------------- */

typedef enum op_kind {
    OP_RESOLVE,
    OP_PLACE,
    OP_CAS,
    OP_BIND,
    OP_FIND,
    OP_INVALIDATE,
} op_kind;

/* A directory operation, from the caller's thread to its reply's callback. */
typedef struct dir_op {
    struct dir_op *next;
    atoll__redis *r;
    op_kind kind;
    char id[ATOLL_AREA_ID_MAX + 1]; /* the area's id (BIND: the player's area, "" none) */
    char *uid;                      /* BIND, FIND: owned */
    atoll__dir_entry e;             /* PLACE, CAS */
    bool remove;                    /* CAS to nothing */
    uint64_t epoch;                 /* CAS: the expected epoch; INVALIDATE: the epoch */
    atoll__addr reply_to;
    uint64_t cookie;
} dir_op;

typedef enum call_kind {
    CALL_NODES,
    CALL_COORD,
    CALL_AREAS,
    CALL_BEAT,
    CALL_CMD,
} call_kind;

/* A request of the loop's thread that answers through a callback. */
typedef struct loop_call {
    struct loop_call *next;
    atoll__redis *r;
    call_kind kind;
    void (*nodes_cb)(void *arg, const atoll__redis_node *nodes, size_t n);
    void (*coord_cb)(void *arg, bool held);
    void (*areas_cb)(void *arg, char **ids, const atoll__dir_entry *entries, size_t n);
    void (*beat_cb)(void *arg, int renewed);
    void (*cmd_cb)(void *arg, const struct redisReply *reply);
    void *arg;
} loop_call;

/* One of the two connections. */
typedef struct conn {
    atoll__redis *r;
    const char *name;       /* in log lines */
    redisAsyncContext *ac;  /* NULL: none (down, not made yet, or closed) */
    bool ready;             /* commands: connected; invalidations: subscribed */
    uint64_t since_ns;      /* when this connection was started */
    unsigned pending;       /* commands sent and not answered yet */
    uint64_t progress_ns;   /* the last reply, or the send that made pending 1 */
} conn;

struct atoll__redis {
    atoll__dir dir; /* first: the directory's table; atoll__redis_dir returns it */
    char host[128];
    int port;
    int db;
    char where[160]; /* HOST:PORT[/DB] for log lines and errors */
    atoll__dir_post_fn post;
    void *ctx;

    /* Any thread, under lock. */
    pthread_mutex_t lock;
    bool accepting;              /* attached and not detached: ops are queued */
    dir_op *head, *tail;         /* ops for the loop, in the order they came */
    atoll__addr *subscribers;    /* who gets DIR_INVALIDATE */
    size_t nsubscribers, subscribers_cap;

    /* The loop's thread. */
    uv_loop_t *loop;
    bool attached, detaching;
    uint64_t detach_ns;
    uv_async_t wake;    /* ops were queued */
    uv_timer_t retry;   /* the next try to connect */
    uv_timer_t watch;   /* the watchdog of replies and connects */
    uint32_t backoff_ms;
    conn cmd, sub;
    bool down;          /* an outage is on (logged once) */
    uint64_t down_ns;
    loop_call *failed, *failed_tail; /* calls to fail on the next wake-up, in order */
    uint64_t error_log_ns; /* error replies are logged once a second at most */
    unsigned errors_unlogged;
    uint64_t lost_log_ns;  /* so are writes without an answer that Redis never got */
    unsigned lost_unlogged;
};

static const atoll__dir_ops redis_dir_ops;

/* ---- the libuv adapter ---------------------------------------------------------------------- */

/* hiredis 0.14's libuv adapter returns from its poll callback on any error status, and
 * libuv has stopped the poll by then: a socket error (a reset, a refused connect) would
 * leave the context waiting forever, never told that its connection is gone. Its
 * hooks are replaced (after redisLibuvAttach made its handle) by ones whose callback
 * lets hiredis read and write on an error, so that hiredis meets the socket's error
 * itself and disconnects, as hiredis 1.0's adapter does. */
static void
poll_io(uv_poll_t *handle, int status, int events)
{
    redisLibuvEvents *p = handle->data;
    int ev = status != 0 ? p->events : events;
    if (p->context != NULL && (ev & UV_READABLE))
        redisAsyncHandleRead(p->context);
    if (p->context != NULL && (ev & UV_WRITABLE)) /* the read may have freed it */
        redisAsyncHandleWrite(p->context);
}

static void
poll_update(redisLibuvEvents *p)
{
    if (p->events)
        uv_poll_start(&p->handle, p->events, poll_io);
    else
        uv_poll_stop(&p->handle);
}

static void
poll_add_read(void *privdata)
{
    redisLibuvEvents *p = privdata;
    p->events |= UV_READABLE;
    poll_update(p);
}

static void
poll_del_read(void *privdata)
{
    redisLibuvEvents *p = privdata;
    p->events &= ~UV_READABLE;
    poll_update(p);
}

static void
poll_add_write(void *privdata)
{
    redisLibuvEvents *p = privdata;
    p->events |= UV_WRITABLE;
    poll_update(p);
}

static void
poll_del_write(void *privdata)
{
    redisLibuvEvents *p = privdata;
    p->events &= ~UV_WRITABLE;
    poll_update(p);
}

/* ---- small helpers -------------------------------------------------------------------------- */

static uint64_t
ms_since(uint64_t then_ns, uint64_t now_ns)
{
    return now_ns > then_ns ? (now_ns - then_ns) / NS_PER_MS : 0;
}

/* A key: prefix then suffix, allocated (uids have no bound of their own). */
static char *
key_of(const char *prefix, const char *suffix)
{
    size_t a = strlen(prefix), b = strlen(suffix);
    char *k = atoll__malloc(a + b + 1);
    memcpy(k, prefix, a);
    memcpy(k + a, suffix, b + 1);
    return k;
}

/* The reply's text as an unsigned decimal (a string of digits, or an integer). */
static bool
reply_u64(const redisReply *x, uint64_t *v)
{
    if (x->type == REDIS_REPLY_INTEGER) {
        if (x->integer < 0)
            return false;
        *v = (uint64_t)x->integer;
        return true;
    }
    if (x->type != REDIS_REPLY_STRING || x->len == 0 || x->len > 20)
        return false;
    uint64_t n = 0;
    for (size_t i = 0; i < x->len; i++) {
        unsigned d = (unsigned)(x->str[i] - '0');
        if (d > 9 || n > (UINT64_MAX - d) / 10)
            return false;
        n = n * 10 + d;
    }
    *v = n;
    return true;
}

/* The reply's text as an int (the area type's index, written with %d). */
static bool
reply_int(const redisReply *x, int *v)
{
    if (x->type == REDIS_REPLY_STRING && x->len > 1 && x->str[0] == '-') {
        redisReply digits = *x;
        digits.str++;
        digits.len--;
        uint64_t n;
        if (!reply_u64(&digits, &n) || n > (uint64_t)INT_MAX + 1)
            return false;
        *v = (int)(-(int64_t)n);
        return true;
    }
    uint64_t n;
    if (!reply_u64(x, &n) || n > INT_MAX)
        return false;
    *v = (int)n;
    return true;
}

/* An entry from five replies: num, node, worker, epoch, type. */
static bool
parse_entry(redisReply *const *f, atoll__dir_entry *e)
{
    uint64_t num, node, worker, epoch;
    int type;
    if (!reply_u64(f[0], &num) || !reply_u64(f[1], &node) || !reply_u64(f[2], &worker) ||
        !reply_u64(f[3], &epoch) || !reply_int(f[4], &type))
        return false;
    if (node > UINT16_MAX || worker > UINT16_MAX)
        return false;
    e->num = num;
    e->owner = atoll__addr_make((int)node, (int)worker);
    e->epoch = epoch;
    e->type_index = type;
    return true;
}

static bool
reply_is(const redisReply *x, const char *text)
{
    size_t n = strlen(text);
    return (x->type == REDIS_REPLY_STRING || x->type == REDIS_REPLY_STATUS) && x->len == n &&
           memcmp(x->str, text, n) == 0;
}

/* An error reply, logged once a second at most (a Redis that is loading its data
 * answers every command with one), with the number not logged since. */
static void
log_error_reply(atoll__redis *r, const char *what, const redisReply *reply)
{
    uint64_t now = atoll__now_ns();
    if (r->error_log_ns != 0 && ms_since(r->error_log_ns, now) < 1000) {
        r->errors_unlogged++;
        return;
    }
    ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"redis answered an error\" redis=%s command=%s error=\"%.*s\" "
              "unlogged=%u", r->where, what, (int)reply->len, reply->str, r->errors_unlogged);
    r->error_log_ns = now;
    r->errors_unlogged = 0;
}

/* ---- the command connection ----------------------------------------------------------------- */

/* Counts a reply of the command connection (ac->data is NULL once the connection was
 * given up: its count is gone with it). */
static void
replied(const redisAsyncContext *ac)
{
    conn *c = ac->data;
    if (c == NULL)
        return;
    if (c->pending > 0)
        c->pending--;
    c->progress_ns = atoll__now_ns();
}

/* Sends a command on the command connection: false (and fn never called) when it is
 * not up. */
static bool
send_argv(atoll__redis *r, redisCallbackFn *fn, void *privdata, int argc, const char **argv)
{
    conn *c = &r->cmd;
    if (c->ac == NULL || !c->ready)
        return false;
    size_t lens[16]; /* the longest command here has 14 arguments */
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    if (redisAsyncCommandArgv(c->ac, fn, privdata, argc, argv, lens) != REDIS_OK)
        return false;
    if (c->pending++ == 0)
        c->progress_ns = atoll__now_ns();
    return true;
}

/* The reply of a command nobody waits for: counted, an error logged. privdata: what
 * the command was, for the log. */
static void
on_plain_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    replied(ac);
    conn *c = ac->data;
    const redisReply *x = reply;
    if (c != NULL && x != NULL && x->type == REDIS_REPLY_ERROR)
        log_error_reply(c->r, privdata, x);
}

/* ---- directory operations ------------------------------------------------------------------- */

static void
op_free(dir_op *op)
{
    atoll__free(op->uid);
    atoll__free(op);
}

static void
op_answer(const dir_op *op, int status, const char *id, const atoll__dir_entry *e)
{
    if (op->cookie != 0)
        op->r->post(op->r->ctx, op->reply_to, atoll__dir_answer_new(op->cookie, status, id, e));
}

/* Answers op ATOLL_EIO (when it wants an answer) and frees it. */
static void
op_fail(dir_op *op)
{
    if (op->kind == OP_RESOLVE || op->kind == OP_PLACE || op->kind == OP_CAS)
        op_answer(op, ATOLL_EIO, op->id, NULL);
    else if (op->kind == OP_FIND)
        op_answer(op, ATOLL_EIO, "", NULL);
    op_free(op);
}

/* op_fail on the loop's thread: a bind_player or an invalidate, which have no answer
 * to carry the failure, is at least told in a line (once a second at most, with the
 * number not told since: an outage under load fails many). An invalidation lost
 * leaves stale caches, which the owners' `moved` answers correct. */
static void
op_fail_on_loop(atoll__redis *r, dir_op *op)
{
    if (op->kind == OP_BIND || op->kind == OP_INVALIDATE) {
        uint64_t now = atoll__now_ns();
        if (r->lost_log_ns != 0 && ms_since(r->lost_log_ns, now) < 1000) {
            r->lost_unlogged++;
        } else {
            ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"directory write not made: redis did not take it\" "
                      "redis=%s op=%s id=\"%s\" unlogged=%u", r->where,
                      op->kind == OP_BIND ? "bind_player" : "invalidate",
                      op->kind == OP_BIND ? op->uid : op->id, r->lost_unlogged);
            r->lost_log_ns = now;
            r->lost_unlogged = 0;
        }
    }
    op_fail(op);
}

/* PLACE and CAS: {'OK'|'EEXIST'|'ESTATE'|'ENOENT', entry...}. */
static int
entry_reply(const redisReply *x, atoll__dir_entry *e, bool *has_entry)
{
    *has_entry = false;
    if (x->type != REDIS_REPLY_ARRAY || x->elements < 1)
        return ATOLL_EIO;
    static const struct {
        const char *text;
        int status;
    } statuses[] = {{"OK", ATOLL_OK}, {"EEXIST", ATOLL_EEXIST}, {"ESTATE", ATOLL_ESTATE},
                    {"ENOENT", ATOLL_ENOENT}};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        if (!reply_is(x->element[0], statuses[i].text))
            continue;
        if (x->elements == 6) {
            if (!parse_entry(x->element + 1, e))
                return ATOLL_EIO;
            *has_entry = true;
        } else if (x->elements != 1) {
            return ATOLL_EIO;
        }
        return statuses[i].status;
    }
    return ATOLL_EIO;
}

static void
on_op_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    replied(ac);
    dir_op *op = privdata;
    const redisReply *x = reply;
    if (x == NULL) { /* the connection went before the reply came */
        op_fail_on_loop(op->r, op);
        return;
    }
    if (x->type == REDIS_REPLY_ERROR) {
        static const char *const names[] = {"resolve", "place", "cas_owner", "bind_player",
                                            "find_player", "invalidate"};
        log_error_reply(op->r, names[op->kind], x);
        op_fail_on_loop(op->r, op);
        return;
    }
    atoll__dir_entry e = {0};
    bool has_entry;
    int status;
    switch (op->kind) {
    case OP_RESOLVE: /* HMGET num node worker epoch type: epoch nil when there is none */
        if (x->type != REDIS_REPLY_ARRAY || x->elements != 5)
            status = ATOLL_EIO;
        else if (x->element[3]->type == REDIS_REPLY_NIL)
            status = ATOLL_ENOENT;
        else
            status = parse_entry(x->element, &e) ? ATOLL_OK : ATOLL_EIO;
        op_answer(op, status, op->id, status == ATOLL_OK ? &e : NULL);
        break;
    case OP_PLACE:
    case OP_CAS:
        status = entry_reply(x, &e, &has_entry);
        op_answer(op, status, op->id, has_entry ? &e : NULL);
        break;
    case OP_FIND:
        if (x->type == REDIS_REPLY_STRING) {
            char area[ATOLL_AREA_ID_MAX + 1];
            snprintf(area, sizeof area, "%.*s", (int)x->len, x->str);
            op_answer(op, ATOLL_OK, area, NULL);
        } else {
            op_answer(op, x->type == REDIS_REPLY_NIL ? ATOLL_ENOENT : ATOLL_EIO, "", NULL);
        }
        break;
    case OP_BIND:
    case OP_INVALIDATE:
        break; /* no answer */
    }
    op_free(op);
}

/* Sends op on the command connection (loop thread): false when it is not up. */
static bool
op_send(atoll__redis *r, dir_op *op)
{
    char num[24], node[8], worker[8], type[16], epoch[24];
    snprintf(num, sizeof num, "%" PRIu64, op->e.num);
    snprintf(node, sizeof node, "%u", op->e.owner.node);
    snprintf(worker, sizeof worker, "%u", op->e.owner.worker);
    snprintf(type, sizeof type, "%d", op->e.type_index);
    snprintf(epoch, sizeof epoch, "%" PRIu64, op->epoch);
    char *key = NULL;
    bool sent = false;
    switch (op->kind) {
    case OP_RESOLVE: {
        key = key_of(KEY_AREA, op->id);
        const char *argv[] = {"HMGET", key, "num", "node", "worker", "epoch", "type"};
        sent = send_argv(r, on_op_reply, op, 7, argv);
        break;
    }
    case OP_PLACE: {
        key = key_of(KEY_AREA, op->id);
        const char *argv[] = {"EVAL", PLACE_LUA, "2", key, KEY_EPOCH, op->id, num, node,
                              worker, type, KEY_NODE_AREAS};
        sent = send_argv(r, on_op_reply, op, 11, argv);
        break;
    }
    case OP_CAS: {
        key = key_of(KEY_AREA, op->id);
        const char *argv[] = {"EVAL", CAS_LUA, "2", key, KEY_EPOCH, op->id, epoch,
                              op->remove ? "1" : "0", num, node, worker, type, KEY_NODE_AREAS,
                              CHANNEL_INV};
        sent = send_argv(r, on_op_reply, op, 14, argv);
        break;
    }
    case OP_BIND: {
        key = key_of(KEY_PLAYER, op->uid);
        if (op->id[0] != '\0') {
            const char *argv[] = {"SET", key, op->id};
            sent = send_argv(r, on_op_reply, op, 3, argv);
        } else {
            const char *argv[] = {"DEL", key};
            sent = send_argv(r, on_op_reply, op, 2, argv);
        }
        break;
    }
    case OP_FIND: {
        key = key_of(KEY_PLAYER, op->uid);
        const char *argv[] = {"GET", key};
        sent = send_argv(r, on_op_reply, op, 2, argv);
        break;
    }
    case OP_INVALIDATE: {
        char msg[sizeof epoch + sizeof op->id + 1]; /* "<epoch> <id>", as CAS_LUA's */
        snprintf(msg, sizeof msg, "%s %s", epoch, op->id);
        const char *argv[] = {"PUBLISH", CHANNEL_INV, msg};
        sent = send_argv(r, on_op_reply, op, 3, argv);
        break;
    }
    }
    atoll__free(key); /* hiredis copied the command */
    return sent;
}

/* Any thread: queues op for the loop, or answers it ATOLL_EIO at once when r is not
 * attached (before atoll__redis_attach, after atoll__redis_detach). */
static void
op_submit(atoll__redis *r, dir_op *op)
{
    op->r = r;
    pthread_mutex_lock(&r->lock);
    if (r->accepting) {
        if (r->tail)
            r->tail->next = op;
        else
            r->head = op;
        r->tail = op;
        uv_async_send(&r->wake); /* under the lock: detach closes the handle under it */
        pthread_mutex_unlock(&r->lock);
        return;
    }
    pthread_mutex_unlock(&r->lock);
    op_fail(op);
}

static dir_op *
op_new(op_kind kind, const char *id, atoll__addr reply_to, uint64_t cookie)
{
    dir_op *op = atoll__calloc(1, sizeof *op);
    op->kind = kind;
    if (id != NULL)
        snprintf(op->id, sizeof op->id, "%s", id); /* cut as dir_local.c cuts it */
    op->reply_to = reply_to;
    op->cookie = cookie;
    return op;
}

static void
redis_resolve(atoll__dir *d, const char *id, atoll__addr reply_to, uint64_t cookie)
{
    op_submit((atoll__redis *)d, op_new(OP_RESOLVE, id, reply_to, cookie));
}

static void
redis_place(atoll__dir *d, const char *id, const atoll__dir_entry *e, atoll__addr reply_to,
            uint64_t cookie)
{
    dir_op *op = op_new(OP_PLACE, id, reply_to, cookie);
    op->e = *e;
    op_submit((atoll__redis *)d, op);
}

static void
redis_cas_owner(atoll__dir *d, const char *id, uint64_t expected, const atoll__dir_entry *e,
                atoll__addr reply_to, uint64_t cookie)
{
    dir_op *op = op_new(OP_CAS, id, reply_to, cookie);
    op->epoch = expected;
    if (e != NULL)
        op->e = *e;
    else
        op->remove = true;
    op_submit((atoll__redis *)d, op);
}

static void
redis_bind_player(atoll__dir *d, const char *uid, const char *area_id)
{
    dir_op *op = op_new(OP_BIND, area_id, atoll__addr_make(0, 0), 0);
    op->uid = atoll__strndup(uid, strlen(uid));
    op_submit((atoll__redis *)d, op);
}

static void
redis_find_player(atoll__dir *d, const char *uid, atoll__addr reply_to, uint64_t cookie)
{
    dir_op *op = op_new(OP_FIND, NULL, reply_to, cookie);
    op->uid = atoll__strndup(uid, strlen(uid));
    op_submit((atoll__redis *)d, op);
}

static void
redis_subscribe(atoll__dir *d, atoll__addr who)
{
    atoll__redis *r = (atoll__redis *)d;
    pthread_mutex_lock(&r->lock);
    r->subscribers = atoll__grow(r->subscribers, r->nsubscribers, &r->subscribers_cap,
                                 sizeof *r->subscribers, 8);
    r->subscribers[r->nsubscribers++] = who;
    pthread_mutex_unlock(&r->lock);
}

static void
redis_invalidate(atoll__dir *d, const char *id, uint64_t epoch)
{
    dir_op *op = op_new(OP_INVALIDATE, id, atoll__addr_make(0, 0), 0);
    op->epoch = epoch;
    op_submit((atoll__redis *)d, op);
}

/* The directory is part of r: atoll__redis_free frees both. */
static void
redis_dir_free(atoll__dir *d)
{
    (void)d;
}

static const atoll__dir_ops redis_dir_ops = {
    .name = "redis",
    .resolve = redis_resolve,
    .place = redis_place,
    .cas_owner = redis_cas_owner,
    .bind_player = redis_bind_player,
    .find_player = redis_find_player,
    .subscribe = redis_subscribe,
    .invalidate = redis_invalidate,
    .free = redis_dir_free,
};

/* ---- invalidations -------------------------------------------------------------------------- */

/* A message on the channel, "<epoch> <id>": DIR_INVALIDATE {from = id, epoch} to every
 * subscriber, as dir_local.c's publish. Posted under the lock, so a subscriber added
 * meanwhile either gets it or does not, never half. */
static void
deliver_invalidation(atoll__redis *r, const char *text, size_t len)
{
    uint64_t epoch = 0;
    size_t i = 0;
    for (; i < len && i < 20 && text[i] >= '0' && text[i] <= '9'; i++)
        epoch = epoch * 10 + (uint64_t)(text[i] - '0');
    if (i == 0 || i >= len || text[i] != ' ') {
        ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"malformed invalidation, dropped\" redis=%s text=\"%.*s\"",
                  r->where, (int)(len > 80 ? 80 : len), text);
        return;
    }
    const char *id = text + i + 1;
    int idlen = (int)(len - i - 1);
    pthread_mutex_lock(&r->lock);
    for (size_t s = 0; s < r->nsubscribers; s++) {
        atoll__mail *m = atoll__mail_new(ATOLL_MAIL_DIR_INVALIDATE, 0);
        snprintf(m->from, sizeof m->from, "%.*s", idlen, id);
        m->epoch = epoch;
        r->post(r->ctx, r->subscribers[s], m);
    }
    pthread_mutex_unlock(&r->lock);
}

static void check_up(atoll__redis *r);

/* Everything the subscription receives: its confirmation, then messages. */
static void
on_sub_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    conn *c = ac->data;
    const redisReply *x = reply;
    if (c == NULL || x == NULL || x->type != REDIS_REPLY_ARRAY || x->elements < 3)
        return; /* the connection is going (its end is handled by on_disconnect) */
    atoll__redis *r = c->r;
    if (reply_is(x->element[0], "message") && x->element[2]->type == REDIS_REPLY_STRING) {
        deliver_invalidation(r, x->element[2]->str, x->element[2]->len);
    } else if (reply_is(x->element[0], "subscribe")) {
        c->ready = true;
        check_up(r);
    }
}

/* ---- connections ---------------------------------------------------------------------------- */

static void conn_open(atoll__redis *r, conn *c);

static void
on_retry(uv_timer_t *t)
{
    atoll__redis *r = t->data;
    if (r->cmd.ac == NULL)
        conn_open(r, &r->cmd);
    if (r->sub.ac == NULL)
        conn_open(r, &r->sub);
}

/* The next try, after the backoff, which doubles up to its ceiling until both
 * connections are up. */
static void
schedule_retry(atoll__redis *r)
{
    if (r->detaching || uv_is_active((uv_handle_t *)&r->retry))
        return;
    uv_timer_start(&r->retry, on_retry, r->backoff_ms, 0);
    r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
}

/* c is gone or could not be made: one line per outage, and a try later. */
static void
conn_lost(atoll__redis *r, conn *c, const char *why)
{
    c->ac = NULL;
    c->ready = false;
    c->pending = 0;
    if (r->detaching)
        return;
    if (!r->down) {
        r->down = true;
        r->down_ns = atoll__now_ns();
        ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"redis down\" redis=%s conn=%s error=\"%s\" retry_ms=%u",
                  r->where, c->name, why, r->backoff_ms);
    } else {
        ATOLL_LOG(ATOLL_LOG_DEBUG, "msg=\"redis still down\" redis=%s conn=%s error=\"%s\" "
                  "retry_ms=%u", r->where, c->name, why, r->backoff_ms);
    }
    schedule_retry(r);
}

/* Gives c up at once (a watchdog's verdict or a detach): the replies it waited for
 * are answered as failures by hiredis's callbacks. */
static void
conn_drop(atoll__redis *r, conn *c, const char *why)
{
    redisAsyncContext *ac = c->ac;
    if (ac == NULL)
        return;
    /* Detached from c first: its callbacks, run by the free, find no connection to
     * count on or to report lost, and whatever they start finds c down. */
    c->ac = NULL;
    c->ready = false;
    ac->data = NULL;
    redisAsyncFree(ac);
    conn_lost(r, c, why);
}

static void
check_up(atoll__redis *r)
{
    if (!r->cmd.ready || !r->sub.ready)
        return;
    r->backoff_ms = BACKOFF_FIRST_MS;
    if (r->down) {
        r->down = false;
        ATOLL_LOG(ATOLL_LOG_INFO, "msg=\"redis up again\" redis=%s down_ms=%" PRIu64, r->where,
                  ms_since(r->down_ns, atoll__now_ns()));
    }
}

static void
on_connect(const redisAsyncContext *ac, int status)
{
    conn *c = ac->data;
    if (c == NULL)
        return;
    if (status != REDIS_OK) { /* hiredis frees ac after this */
        conn_lost(c->r, c, ac->errstr);
        return;
    }
    if (c == &c->r->cmd) {
        c->ready = true;
        c->progress_ns = atoll__now_ns();
        check_up(c->r);
    } /* the subscription is ready when Redis confirms it (on_sub_reply) */
}

static void finish_detach(atoll__redis *r);

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
    conn *c = ac->data;
    if (c == NULL)
        return;
    atoll__redis *r = c->r;
    if (r->detaching) {
        c->ac = NULL;
        c->ready = false;
        finish_detach(r);
        return;
    }
    conn_lost(r, c, status == REDIS_OK ? "connection closed" : ac->errstr);
}

/* Starts connection c. A host name is looked up here, on the loop (hiredis 0.14 has
 * no asynchronous lookup): cluster.redis names an address, or a name the machine
 * resolves at once. */
static void
conn_open(atoll__redis *r, conn *c)
{
    redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);
    if (ac == NULL) {
        conn_lost(r, c, "out of memory");
        return;
    }
    if (ac->err) {
        char why[128];
        snprintf(why, sizeof why, "%s", ac->errstr);
        redisAsyncFree(ac);
        conn_lost(r, c, why);
        return;
    }
    if (redisLibuvAttach(ac, r->loop) != REDIS_OK) {
        /* The adapter set its cleanup hook before it failed, with nothing to clean up. */
        ac->ev.cleanup = NULL;
        redisAsyncFree(ac);
        conn_lost(r, c, "cannot watch the socket");
        return;
    }
    ac->ev.addRead = poll_add_read;
    ac->ev.delRead = poll_del_read;
    ac->ev.addWrite = poll_add_write;
    ac->ev.delWrite = poll_del_write;
    ac->data = c;
    c->ac = ac;
    c->ready = false;
    c->pending = 0;
    c->since_ns = atoll__now_ns();
    /* The connect callback is set after the hooks: setting it asks for the first
     * writable event, which tells that the connection is made. */
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* The first commands of the connection, sent once it is made, before any other. */
    if (c == &r->sub) {
        redisAsyncCommand(ac, on_sub_reply, NULL, "SUBSCRIBE %s", CHANNEL_INV);
    } else if (r->db != 0) {
        redisAsyncCommand(ac, on_plain_reply, "SELECT", "SELECT %d", r->db);
        c->pending++;
        c->progress_ns = c->since_ns;
    }
}

/* The watchdog: a Redis that stopped answering without closing its sockets. */
static void
on_watch(uv_timer_t *t)
{
    atoll__redis *r = t->data;
    uint64_t now = atoll__now_ns();
    if (r->detaching) {
        if (r->cmd.ac != NULL && ms_since(r->detach_ns, now) >= DETACH_GRACE_MS)
            conn_drop(r, &r->cmd, "detached");
        finish_detach(r);
        return;
    }
    char why[64];
    conn *both[] = {&r->cmd, &r->sub};
    for (int i = 0; i < 2; i++) {
        conn *c = both[i];
        if (c->ac != NULL && !c->ready && ms_since(c->since_ns, now) >= CONNECT_TIMEOUT_MS) {
            snprintf(why, sizeof why, "not connected within %d ms", CONNECT_TIMEOUT_MS);
            conn_drop(r, c, why);
        }
    }
    conn *c = &r->cmd;
    if (c->ac != NULL && c->ready && c->pending > 0 &&
        ms_since(c->progress_ns, now) >= REPLY_TIMEOUT_MS) {
        /* The subscription on the same server hears nothing either, and cannot tell. */
        snprintf(why, sizeof why, "no reply within %d ms", REPLY_TIMEOUT_MS);
        conn_drop(r, &r->cmd, why);
        conn_drop(r, &r->sub, why);
    }
}

/* ---- loop calls ----------------------------------------------------------------------------- */

/* Tells call's caller that it failed, and frees it. */
static void
call_fail(loop_call *call)
{
    switch (call->kind) {
    case CALL_NODES: call->nodes_cb(call->arg, NULL, 0); break;
    case CALL_COORD: call->coord_cb(call->arg, false); break;
    case CALL_AREAS: call->areas_cb(call->arg, NULL, NULL, 0); break;
    case CALL_BEAT: call->beat_cb(call->arg, -1); break;
    case CALL_CMD: call->cmd_cb(call->arg, NULL); break;
    }
    atoll__free(call);
}

/* A call that cannot be sent fails on the next wake-up, never inside the function that
 * started it (its caller may not expect its callback yet); at once when r is not
 * attached (there is no wake-up to wait for). */
static void
call_defer_fail(atoll__redis *r, loop_call *call)
{
    if (!r->attached || r->detaching) {
        call_fail(call);
        return;
    }
    call->next = NULL;
    if (r->failed_tail)
        r->failed_tail->next = call;
    else
        r->failed = call;
    r->failed_tail = call;
    uv_async_send(&r->wake);
}

/* The list is taken whole first: a callback that asks again (and fails again while
 * Redis is down) is answered on the next wake-up, not in this loop forever. */
static void
run_failed_calls(atoll__redis *r)
{
    loop_call *call = r->failed;
    r->failed = r->failed_tail = NULL;
    while (call != NULL) {
        loop_call *next = call->next;
        call_fail(call);
        call = next;
    }
}

static loop_call *
call_new(atoll__redis *r, call_kind kind, void *arg)
{
    loop_call *call = atoll__calloc(1, sizeof *call);
    call->r = r;
    call->kind = kind;
    call->arg = arg;
    return call;
}

static int
node_cmp(const void *a, const void *b)
{
    const atoll__redis_node *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* A node's record: {"name", "advertise", "roles", "load"}; false when it is not one. */
static bool
parse_node(const char *text, size_t len, atoll__redis_node *n)
{
    json_t *root = json_loadb(text, len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return false;
    }
    const char *name = json_string_value(json_object_get(root, "name"));
    const char *advertise = json_string_value(json_object_get(root, "advertise"));
    json_t *roles = json_object_get(root, "roles");
    json_t *load = json_object_get(root, "load");
    snprintf(n->name, sizeof n->name, "%s", name ? name : "");
    snprintf(n->advertise, sizeof n->advertise, "%s", advertise ? advertise : "");
    double v = json_is_number(roles) ? json_number_value(roles) : 0;
    n->roles = v > 0 && v <= UINT_MAX ? (unsigned)v : 0;
    n->load = json_is_number(load) ? json_number_value(load) : 0;
    /* The text as published, when it fits; the fields above are what callers read. */
    if (len < sizeof n->info)
        snprintf(n->info, sizeof n->info, "%.*s", (int)len, text);
    json_decref(root);
    return name != NULL;
}

static void
on_nodes_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    replied(ac);
    loop_call *call = privdata;
    const redisReply *x = reply;
    if (x == NULL || x->type != REDIS_REPLY_ARRAY) {
        if (x != NULL && x->type == REDIS_REPLY_ERROR)
            log_error_reply(call->r, "nodes", x);
        call_fail(call);
        return;
    }
    size_t n = 0;
    atoll__redis_node *nodes = atoll__calloc(x->elements / 2 + 1, sizeof *nodes);
    for (size_t i = 0; i + 1 < x->elements; i += 2) {
        uint64_t id;
        const redisReply *rec = x->element[i + 1];
        if (!reply_u64(x->element[i], &id) || id < 1 || id > ATOLL_NODE_ID_MAX ||
            rec->type != REDIS_REPLY_STRING)
            continue;
        atoll__redis_node *node = &nodes[n];
        memset(node, 0, sizeof *node);
        node->id = (int)id;
        if (parse_node(rec->str, rec->len, node))
            n++;
        else
            ATOLL_LOG(ATOLL_LOG_DEBUG, "msg=\"node record unreadable, skipped\" node=%d", (int)id);
    }
    qsort(nodes, n, sizeof *nodes, node_cmp);
    call->nodes_cb(call->arg, n ? nodes : NULL, n);
    atoll__free(nodes);
    atoll__free(call);
}

static void
on_coord_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    replied(ac);
    loop_call *call = privdata;
    const redisReply *x = reply;
    if (x != NULL && x->type == REDIS_REPLY_ERROR)
        log_error_reply(call->r, "coord_lease", x);
    call->coord_cb(call->arg, x != NULL && x->type == REDIS_REPLY_INTEGER && x->integer == 1);
    atoll__free(call);
}

typedef struct owned_area {
    char *id;
    atoll__dir_entry e;
} owned_area;

static int
owned_cmp(const void *a, const void *b)
{
    return strcmp(((const owned_area *)a)->id, ((const owned_area *)b)->id);
}

static void
on_areas_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    replied(ac);
    loop_call *call = privdata;
    const redisReply *x = reply;
    if (x == NULL || x->type != REDIS_REPLY_ARRAY) {
        if (x != NULL && x->type == REDIS_REPLY_ERROR)
            log_error_reply(call->r, "node_areas", x);
        call_fail(call);
        return;
    }
    size_t n = 0, cap = x->elements / 6;
    owned_area *areas = atoll__calloc(cap + 1, sizeof *areas);
    for (size_t i = 0; i + 6 <= x->elements; i += 6) {
        const redisReply *id = x->element[i];
        if (id->type != REDIS_REPLY_STRING || !parse_entry(x->element + i + 1, &areas[n].e))
            continue;
        areas[n++].id = atoll__strndup(id->str, id->len);
    }
    qsort(areas, n, sizeof *areas, owned_cmp); /* a set has no order of its own */
    char **ids = atoll__calloc(n + 1, sizeof *ids);
    atoll__dir_entry *entries = atoll__calloc(n + 1, sizeof *entries);
    for (size_t i = 0; i < n; i++) {
        ids[i] = areas[i].id;
        entries[i] = areas[i].e;
    }
    call->areas_cb(call->arg, n ? ids : NULL, n ? entries : NULL, n);
    for (size_t i = 0; i < n; i++)
        atoll__free(ids[i]);
    atoll__free(ids);
    atoll__free(entries);
    atoll__free(areas);
    atoll__free(call);
}

/* ---- the loop's side ------------------------------------------------------------------------ */

/* Ops were queued: each is sent, or answered ATOLL_EIO when Redis is down. */
static void
on_wake(uv_async_t *h)
{
    atoll__redis *r = h->data;
    pthread_mutex_lock(&r->lock);
    dir_op *op = r->head;
    r->head = r->tail = NULL;
    pthread_mutex_unlock(&r->lock);
    while (op != NULL) {
        dir_op *next = op->next;
        op->next = NULL;
        if (!op_send(r, op))
            op_fail_on_loop(r, op);
        op = next;
    }
    run_failed_calls(r);
}

bool
atoll__redis_up(const atoll__redis *r)
{
    return r->cmd.ready;
}

static void
on_beat_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    replied(ac);
    loop_call *call = privdata;
    const redisReply *x = reply;
    if (x != NULL && x->type == REDIS_REPLY_ERROR)
        log_error_reply(call->r, "node_beat", x);
    int renewed = x == NULL || x->type != REDIS_REPLY_INTEGER ? -1 : x->integer == 1;
    if (call->beat_cb != NULL)
        call->beat_cb(call->arg, renewed);
    atoll__free(call);
}

void
atoll__redis_node_beat(atoll__redis *r, int node_id, const char *info_json, uint32_t lease_ms,
                       bool claim, void (*cb)(void *arg, int renewed), void *arg)
{
    char key[32], id[16], lease[16];
    snprintf(key, sizeof key, KEY_NODE "%d", node_id);
    snprintf(id, sizeof id, "%d", node_id);
    snprintf(lease, sizeof lease, "%u", lease_ms);
    loop_call *call = call_new(r, CALL_BEAT, arg);
    call->beat_cb = cb;
    const char *argv[] = {"EVAL", BEAT_LUA, "2", key, KEY_NODES, info_json, lease, id,
                          claim ? "claim" : "renew"};
    if (!send_argv(r, on_beat_reply, call, 9, argv)) {
        ATOLL_LOG(ATOLL_LOG_DEBUG, "msg=\"heartbeat not sent: redis is down\" redis=%s node=%d",
                  r->where, node_id);
        call_defer_fail(r, call);
    }
}

void
atoll__redis_nodes(atoll__redis *r,
                   void (*cb)(void *arg, const atoll__redis_node *nodes, size_t n), void *arg)
{
    loop_call *call = call_new(r, CALL_NODES, arg);
    call->nodes_cb = cb;
    const char *argv[] = {"EVAL", NODES_LUA, "1", KEY_NODES, KEY_NODE};
    if (!send_argv(r, on_nodes_reply, call, 5, argv))
        call_defer_fail(r, call);
}

void
atoll__redis_coord_lease(atoll__redis *r, int node_id, uint32_t lease_ms,
                         void (*cb)(void *arg, bool held), void *arg)
{
    loop_call *call = call_new(r, CALL_COORD, arg);
    call->coord_cb = cb;
    char id[16], lease[16];
    snprintf(id, sizeof id, "%d", node_id);
    snprintf(lease, sizeof lease, "%u", lease_ms);
    const char *argv[] = {"EVAL", COORD_LUA, "1", KEY_COORD, id, lease};
    if (!send_argv(r, on_coord_reply, call, 6, argv))
        call_defer_fail(r, call);
}

void
atoll__redis_node_areas(atoll__redis *r, int node_id,
                        void (*cb)(void *arg, char **ids, const atoll__dir_entry *entries,
                                   size_t n),
                        void *arg)
{
    loop_call *call = call_new(r, CALL_AREAS, arg);
    call->areas_cb = cb;
    char key[40], id[16];
    snprintf(key, sizeof key, KEY_NODE_AREAS "%d", node_id);
    snprintf(id, sizeof id, "%d", node_id);
    const char *argv[] = {"EVAL", AREAS_LUA, "1", key, KEY_AREA, id};
    if (!send_argv(r, on_areas_reply, call, 6, argv))
        call_defer_fail(r, call);
}

static void
on_cmd_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    replied(ac);
    loop_call *call = privdata;
    const redisReply *x = reply;
    if (x == NULL || x->type == REDIS_REPLY_ERROR) {
        if (x != NULL)
            log_error_reply(call->r, "command", x);
        call_fail(call);
        return;
    }
    call->cmd_cb(call->arg, x);
    atoll__free(call);
}

void
atoll__redis_cmd(atoll__redis *r, int argc, const char **argv,
                 void (*cb)(void *arg, const struct redisReply *reply), void *arg)
{
    loop_call *call = call_new(r, CALL_CMD, arg);
    call->cmd_cb = cb;
    if (argc > 16 || !send_argv(r, on_cmd_reply, call, argc, argv)) /* send_argv's limit */
        call_defer_fail(r, call);
}

void
atoll__redis_node_leave(atoll__redis *r, int node_id)
{
    char key[32], id[16];
    snprintf(key, sizeof key, KEY_NODE "%d", node_id);
    snprintf(id, sizeof id, "%d", node_id);
    const char *argv[] = {"EVAL", LEAVE_LUA, "2", key, KEY_COORD, id};
    if (!send_argv(r, on_plain_reply, "node_leave", 6, argv))
        ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"node record not dropped: redis is down; its lease "
                  "ends by itself\" redis=%s node=%d", r->where, node_id);
}

void
atoll__redis_attach(atoll__redis *r, uv_loop_t *loop)
{
    r->loop = loop;
    r->attached = true;
    uv_async_init(loop, &r->wake, on_wake);
    r->wake.data = r;
    uv_timer_init(loop, &r->retry);
    r->retry.data = r;
    uv_timer_init(loop, &r->watch);
    r->watch.data = r;
    uv_timer_start(&r->watch, on_watch, WATCH_EVERY_MS, WATCH_EVERY_MS);
    pthread_mutex_lock(&r->lock);
    r->accepting = true;
    pthread_mutex_unlock(&r->lock);
    conn_open(r, &r->cmd);
    conn_open(r, &r->sub);
}

/* The last step of a detach, once both connections are gone: the watchdog, which
 * waited for the command connection's replies, goes too. */
static void
finish_detach(atoll__redis *r)
{
    if (r->cmd.ac == NULL && r->sub.ac == NULL && !uv_is_closing((uv_handle_t *)&r->watch))
        uv_close((uv_handle_t *)&r->watch, NULL);
}

void
atoll__redis_detach(atoll__redis *r)
{
    if (!r->attached || r->detaching)
        return;
    r->detaching = true;
    r->detach_ns = atoll__now_ns();
    /* What was queued and not sent yet is answered now; nothing is queued after. */
    pthread_mutex_lock(&r->lock);
    r->accepting = false;
    dir_op *op = r->head;
    r->head = r->tail = NULL;
    uv_close((uv_handle_t *)&r->wake, NULL);
    pthread_mutex_unlock(&r->lock);
    while (op != NULL) {
        dir_op *next = op->next;
        op_fail_on_loop(r, op);
        op = next;
    }
    run_failed_calls(r);
    uv_timer_stop(&r->retry);
    uv_close((uv_handle_t *)&r->retry, NULL);
    conn_drop(r, &r->sub, "detached"); /* nothing of it to wait for */
    /* Commands in flight (a node_leave just before) get their replies: the
     * connection closes once they came, or after DETACH_GRACE_MS (on_watch). */
    if (r->cmd.ac != NULL && r->cmd.ready)
        redisAsyncDisconnect(r->cmd.ac);
    else
        conn_drop(r, &r->cmd, "detached");
    finish_detach(r);
}

/* ---- making and freeing --------------------------------------------------------------------- */

/* redis://HOST[:PORT][/DB]; HOST may be [IPv6]. */
static bool
parse_url(atoll__redis *r, const char *url, char *err, size_t errlen)
{
    static const char scheme[] = "redis://";
    if (url == NULL || strncmp(url, scheme, sizeof scheme - 1) != 0) {
        snprintf(err, errlen, "redis URL must be redis://HOST[:PORT][/DB], not \"%s\"",
                 url ? url : "");
        return false;
    }
    const char *p = url + sizeof scheme - 1;
    const char *host = p, *host_end;
    if (*p == '[') {
        host = p + 1;
        host_end = strchr(host, ']');
        if (host_end == NULL) {
            snprintf(err, errlen, "redis URL \"%s\": no ] after the IPv6 address", url);
            return false;
        }
        p = host_end + 1;
    } else {
        host_end = p + strcspn(p, ":/");
        p = host_end;
    }
    size_t hostlen = (size_t)(host_end - host);
    if (hostlen == 0 || hostlen >= sizeof r->host) {
        snprintf(err, errlen, "redis URL \"%s\": the host is empty or too long", url);
        return false;
    }
    memcpy(r->host, host, hostlen);
    r->host[hostlen] = '\0';
    r->port = 6379;
    r->db = 0;
    char *end;
    if (*p == ':') {
        errno = 0;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || errno || port < 1 || port > 65535 || (*end && *end != '/')) {
            snprintf(err, errlen, "redis URL \"%s\": the port must be 1..65535", url);
            return false;
        }
        r->port = (int)port;
        p = end;
    }
    if (*p == '/' && p[1] != '\0') {
        errno = 0;
        long db = strtol(p + 1, &end, 10);
        if (end == p + 1 || errno || db < 0 || db > INT_MAX || *end) {
            snprintf(err, errlen, "redis URL \"%s\": the database must be a number", url);
            return false;
        }
        r->db = (int)db;
    } else if (*p != '\0' && strcmp(p, "/") != 0) {
        snprintf(err, errlen, "redis URL \"%s\": unexpected \"%s\"", url, p);
        return false;
    }
    if (r->db != 0)
        snprintf(r->where, sizeof r->where, "%s:%d/%d", r->host, r->port, r->db);
    else
        snprintf(r->where, sizeof r->where, "%s:%d", r->host, r->port);
    return true;
}

/* A blocking connection for the calls made before the loop runs (new, node_join), on
 * r's database, with CONNECT_TIMEOUT_MS for connecting and for each reply. */
static redisContext *
connect_blocking(const atoll__redis *r, char *err, size_t errlen)
{
    struct timeval tv = {CONNECT_TIMEOUT_MS / 1000, (CONNECT_TIMEOUT_MS % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(r->host, r->port, tv);
    if (c == NULL || c->err) {
        snprintf(err, errlen, "redis at %s: cannot connect: %s", r->where,
                 c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (r->db != 0) {
        redisReply *x = redisCommand(c, "SELECT %d", r->db);
        bool ok = x != NULL && x->type != REDIS_REPLY_ERROR;
        if (!ok)
            snprintf(err, errlen, "redis at %s: cannot use database %d: %s", r->where, r->db,
                     x ? x->str : c->errstr);
        if (x)
            freeReplyObject(x);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

atoll__redis *
atoll__redis_new(const char *url, atoll__dir_post_fn post, void *ctx, char *err, size_t errlen)
{
    atoll__redis *r = atoll__calloc(1, sizeof *r);
    if (!parse_url(r, url, err, errlen)) {
        atoll__free(r);
        return NULL;
    }
    redisContext *c = connect_blocking(r, err, errlen);
    if (c == NULL) {
        atoll__free(r);
        return NULL;
    }
    redisReply *x = redisCommand(c, "PING");
    bool ok = x != NULL && x->type == REDIS_REPLY_STATUS;
    if (!ok)
        snprintf(err, errlen, "redis at %s did not answer PING: %s", r->where,
                 x ? x->str : c->errstr);
    if (x)
        freeReplyObject(x);
    redisFree(c);
    if (!ok) {
        atoll__free(r);
        return NULL;
    }
    r->dir.ops = &redis_dir_ops;
    r->post = post;
    r->ctx = ctx;
    pthread_mutex_init(&r->lock, NULL);
    r->cmd = (conn){.r = r, .name = "commands"};
    r->sub = (conn){.r = r, .name = "invalidations"};
    r->backoff_ms = BACKOFF_FIRST_MS;
    return r;
}

int
atoll__redis_node_join(atoll__redis *r, const char *name, int *node_id, char *err,
                       size_t errlen)
{
    if (name == NULL || name[0] == '\0' || strlen(name) >= sizeof ((atoll__redis_node *)0)->name) {
        snprintf(err, errlen, "node name must be 1 to %zu bytes",
                 sizeof ((atoll__redis_node *)0)->name - 1);
        return ATOLL_EINVAL;
    }
    /* The placeholder is a record like a heartbeat's, with no roles: nobody sends the
     * joining node anything before it says what it does. */
    json_t *rec = json_pack("{s:s, s:s, s:i, s:f}", "name", name, "advertise", "", "roles", 0,
                            "load", 0.0);
    char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    if (text == NULL) {
        snprintf(err, errlen, "node name \"%s\" is not valid UTF-8", name);
        return ATOLL_EINVAL;
    }
    redisContext *c = connect_blocking(r, err, errlen);
    if (c == NULL) {
        free(text);
        return ATOLL_EIO;
    }
    char max[16], hold[16];
    snprintf(max, sizeof max, "%d", ATOLL_NODE_ID_MAX);
    snprintf(hold, sizeof hold, "%d", JOIN_HOLD_MS);
    const char *argv[] = {"EVAL", JOIN_LUA, "1", KEY_NODES, name, KEY_NODE, max, hold, text,
                          KEY_NODE_AREAS};
    size_t lens[10];
    for (int i = 0; i < 10; i++)
        lens[i] = strlen(argv[i]);
    redisReply *x = redisCommandArgv(c, 10, argv, lens);
    free(text);
    int rc;
    if (x == NULL) {
        snprintf(err, errlen, "redis at %s did not answer the join: %s", r->where, c->errstr);
        rc = ATOLL_EIO;
    } else if (x->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "redis at %s refused the join of \"%s\": %s", r->where, name,
                 x->str);
        rc = strstr(x->str, "every node id") ? ATOLL_ELIMIT : ATOLL_EIO;
    } else if (x->type != REDIS_REPLY_INTEGER || x->integer < 1 ||
               x->integer > ATOLL_NODE_ID_MAX) {
        snprintf(err, errlen, "redis at %s gave no node id for \"%s\"", r->where, name);
        rc = ATOLL_EIO;
    } else {
        *node_id = (int)x->integer;
        rc = ATOLL_OK;
    }
    if (x)
        freeReplyObject(x);
    redisFree(c);
    return rc;
}

atoll__dir *
atoll__redis_dir(atoll__redis *r)
{
    return &r->dir;
}

void
atoll__redis_free(atoll__redis *r)
{
    if (r == NULL)
        return;
    dir_op *op = r->head; /* none once detached; an op queued with no loop to run it */
    while (op != NULL) {
        dir_op *next = op->next;
        op_free(op);
        op = next;
    }
    for (loop_call *call = r->failed, *next; call != NULL; call = next) {
        next = call->next;
        atoll__free(call);
    }
    atoll__free(r->subscribers);
    pthread_mutex_destroy(&r->lock);
    atoll__free(r);
}
