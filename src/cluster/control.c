/* control.c -- operating a running cluster: what the admin API asks (status, areas,
 * players, move, pin, drain), and what the cluster does on its own every heartbeat
 * (drains, rebalancing onto nodes that joined, this node's part of a drain).
 *
 * Everything here runs on the cluster thread. A request of the admin API (any thread)
 * is queued under the cluster's lock and taken at the next wake-up; its answer is a
 * JSON text given to the caller's function, from the cluster thread or, for what a
 * worker does (a move, a players list), from that worker.
 *
 * State in Redis, so that any node answers and a new coordinator carries on:
 *   atoll:areastats:<n>  JSON {"<id>": [players, messages/s, cores], ...} of node n's
 *                        areas, published by n about once a second, with n's lease
 *   atoll:pins           hash area id -> node id: areas an operator pinned
 *   atoll:drains         hash node id -> JSON {"stop":bool,"total":N,"state":...}
 * A move is always the area runtime's hand-off (src/area/migrate.c): the directory
 * decides who runs an area, and a move that fails leaves it running where it was.
 *
 * Drains. The coordinator moves the areas of every draining node away, at most
 * cluster.moves_per_cycle at a time, to the least loaded area node that is not
 * draining; areas whose type says drain_waits are left to end on their own. A draining
 * node publishes "draining" in its record (placement skips it); asked to stop, it
 * exits cleanly (as on SIGTERM) once it runs no area.
 *
 * Rebalancing (scale up). When the spread between the most and the least loaded area
 * node passes cluster.rebalance_start of their average load, the coordinator moves
 * areas from the most loaded to the least loaded, each time the one that leaves the
 * narrowest spread (so every move makes it smaller), until the spread left is below
 * cluster.rebalance_stop of the average, at most cluster.moves_per_cycle at a time. Each
 * step waits until the loads were measured again (two heartbeats and the areas' stats
 * after the moves ended); the rebalance goes on while they are rebalance_stop apart and
 * something can still move, and the next one needs rebalance_start again: the gap
 * between the two shares is the hysteresis that keeps a measurement's wobble from
 * moving areas back and forth. Loads closer than cluster.rebalance_min_load are even
 * whatever their share: an idle cluster's loads are mostly noise.
 * Pinned and drain_waits areas stay.
 */
#include "cluster_int.h"

#include <atoll/atoll.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>

#define KEY_AREASTATS "atoll:areastats:"
#define KEY_PINS "atoll:pins"
#define KEY_DRAINS "atoll:drains"
#define AREASTATS_EVERY_MS 1000
#define REBALANCE_SUSTAIN 3 /* heartbeats in a row the loads are apart before a rebalance */

typedef struct ctl_req {
    struct ctl_req *next;
    atoll__cluster *c;
    atoll__ctl_op op;
    char area[ATOLL_AREA_ID_MAX + 1];
    char node[64];
    bool stop;
    atoll__ctl_answer_fn fn;
    void *ctx;
    /* gathering (areas): what came back so far */
    int pending;
    json_t *out;
    json_t *stats;  /* area id -> [players, msgs, cores] */
    json_t *pins;   /* area id -> node id */
    int node_id;
} ctl_req;

/* Per area: its handler time at the last publish (for its share of a core). */
typedef struct area_busy {
    uint64_t hash;
    uint64_t handler_ns;
} area_busy;

static void
answer(ctl_req *q, int status, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);
    q->fn(q->ctx, status, text ? text : "{}", text ? strlen(text) : 2);
    free(text);
    json_decref(j);
}

static void
fail(ctl_req *q, int status, const char *fmt, const char *arg)
{
    char msg[300];
    snprintf(msg, sizeof msg, fmt, arg ? arg : "");
    answer(q, status, json_pack("{s:s,s:i}", "error", msg, "code", status));
}

static void
req_free(ctl_req *q)
{
    json_decref(q->out);
    json_decref(q->stats);
    json_decref(q->pins);
    atoll__free(q);
}

/* A request whose Redis reply did not come (the connection went, or it timed out):
 * answered 503 and freed. True when that was so, for the callback to return. */
static bool
no_reply(ctl_req *q, bool missing)
{
    if (!missing)
        return false;
    fail(q, 503, "Redis did not answer%s", NULL);
    req_free(q);
    return true;
}

void
atoll__cluster_control(atoll__cluster *c, atoll__ctl_op op, const char *area, const char *node,
                       bool stop, atoll__ctl_answer_fn fn, void *ctx)
{
    ctl_req *q = atoll__calloc(1, sizeof *q);
    q->c = c;
    q->op = op;
    snprintf(q->area, sizeof q->area, "%s", area ? area : "");
    snprintf(q->node, sizeof q->node, "%s", node ? node : "");
    q->stop = stop;
    q->fn = fn;
    q->ctx = ctx;
    pthread_mutex_lock(&c->lock);
    if (c->ctlq_tail)
        c->ctlq_tail->next = q;
    else
        c->ctlq = q;
    c->ctlq_tail = q;
    bool running = c->running;
    pthread_mutex_unlock(&c->lock);
    if (running)
        uv_async_send(&c->wake);
}

int
atoll__control_node_id(const atoll__cluster *c, const char *name)
{
    char *end;
    long v = strtol(name, &end, 10);
    if (*name != '\0' && *end == '\0' && v > 0 && v <= ATOLL_NODE_ID_MAX)
        return (v == c->id || c->peers[v].alive) ? (int)v : 0;
    if (strcmp(name, c->cfg->node_name) == 0)
        return c->id;
    for (int id = 1; id <= ATOLL_NODE_ID_MAX; id++)
        if (c->peers[id].alive && strcmp(c->peers[id].name, name) == 0)
            return id;
    return 0;
}

/* On the cluster's thread, which alone writes the peers' names. */
static const char *
node_name(const atoll__cluster *c, int id)
{
    return id == c->id ? c->cfg->node_name : c->peers[id].name;
}

/* On any other thread (a worker's answer to a move): a copy taken under the lock the
 * cluster's thread holds while it writes a name. */
static void
node_name_copy(atoll__cluster *c, int id, char *out, size_t len)
{
    if (id <= 0 || id > ATOLL_NODE_ID_MAX) {
        snprintf(out, len, "?");
        return;
    }
    pthread_mutex_lock(&c->lock);
    snprintf(out, len, "%s", node_name(c, id));
    pthread_mutex_unlock(&c->lock);
}

static const atoll_area_type *
type_at(const atoll__cluster *c, int type_index)
{
    const atoll__node *n = c->node;
    return type_index >= 0 && type_index < n->ntypes ? n->game->api->area_types[type_index] : NULL;
}

/* ---- status ------------------------------------------------------------------------------- */

static void
roles_json(json_t *o, unsigned roles)
{
    json_t *a = json_array();
    if (roles & ATOLL_ROLE_GATE)
        json_array_append_new(a, json_string("gate"));
    if (roles & ATOLL_ROLE_AREA)
        json_array_append_new(a, json_string("area"));
    if (roles & ATOLL_ROLE_COORD)
        json_array_append_new(a, json_string("coordinator"));
    json_object_set_new(o, "roles", a);
}

static void
on_status_coord(void *arg, const redisReply *x)
{
    ctl_req *q = arg;
    if (x != NULL && x->type == REDIS_REPLY_STRING) {
        int id = atoi(x->str);
        if (id > 0 && id <= ATOLL_NODE_ID_MAX)
            json_object_set_new(q->out, "coordinator", json_string(node_name(q->c, id)));
    }
    answer(q, 200, json_incref(q->out));
    req_free(q);
}

static void
on_status_nodes(void *arg, const atoll__redis_node *nodes, size_t n)
{
    ctl_req *q = arg;
    atoll__cluster *c = q->c;
    if (no_reply(q, nodes == NULL))
        return;
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *rec = json_loads(nodes[i].info, 0, NULL);
        if (rec == NULL || json_object_get(rec, "key") == NULL) {
            json_decref(rec);
            continue; /* a placeholder of a joining node */
        }
        const char *key = json_string_value(json_object_get(rec, "key"));
        if (key == NULL || strcmp(key, c->fingerprint) != 0) {
            json_decref(rec);
            continue; /* another cluster's */
        }
        json_t *o = json_object();
        json_object_set_new(o, "id", json_integer(nodes[i].id));
        json_object_set_new(o, "name", json_string(nodes[i].name));
        roles_json(o, nodes[i].roles);
        json_object_set_new(o, "advertise", json_string(nodes[i].advertise));
        const char *state = json_string_value(json_object_get(rec, "state"));
        json_object_set_new(o, "state", json_string(state ? state : "live"));
        json_object_set_new(o, "load", json_real(nodes[i].load));
        json_object_set(o, "areas", json_object_get(rec, "areas") ? json_object_get(rec, "areas")
                                                                  : json_integer(0));
        json_object_set(o, "players", json_object_get(rec, "players") ? json_object_get(rec, "players")
                                                                      : json_integer(0));
        json_object_set(o, "messages_per_s", json_object_get(rec, "msgs_per_s")
                                                  ? json_object_get(rec, "msgs_per_s")
                                                  : json_real(0));
        json_array_append_new(list, o);
        json_decref(rec);
    }
    q->out = json_pack("{s:o}", "nodes", list);
    const char *argv[] = {"GET", "atoll:coordinator"};
    atoll__redis_cmd(c->redis, 2, argv, on_status_coord, q);
}

/* ---- areas -------------------------------------------------------------------------------- */

static void areas_step(ctl_req *q);
static void on_areastats_then_entries(void *arg, const redisReply *x);

static void
on_areas_of(void *arg, char **ids, const atoll__dir_entry *entries, size_t n)
{
    ctl_req *q = arg;
    atoll__cluster *c = q->c;
    json_t *list = json_object_get(q->out, "areas");
    for (size_t i = 0; i < n; i++) {
        const atoll_area_type *t = type_at(c, entries[i].type_index);
        json_t *o = json_object();
        json_object_set_new(o, "id", json_string(ids[i]));
        json_object_set_new(o, "type", json_string(t ? t->name : "?"));
        json_object_set_new(o, "node", json_string(node_name(c, entries[i].owner.node)));
        json_object_set_new(o, "worker", json_integer(entries[i].owner.worker));
        json_object_set_new(o, "epoch", json_integer((json_int_t)entries[i].epoch));
        json_t *st = json_object_get(q->stats, ids[i]);
        json_object_set_new(o, "players", json_integer(json_integer_value(json_array_get(st, 0))));
        json_object_set_new(o, "messages_per_s", json_real(json_number_value(json_array_get(st, 1))));
        json_object_set_new(o, "load", json_real(json_number_value(json_array_get(st, 2))));
        int pin = atoi(json_string_value(json_object_get(q->pins, ids[i])) ?: "0");
        json_object_set_new(o, "pinned", pin > 0 ? json_string(node_name(c, pin)) : json_null());
        json_array_append_new(list, o);
    }
    q->pending--;
    areas_step(q);
}

/* The next live area node's areas and stats; the answer once every node was read. */
static void
areas_step(ctl_req *q)
{
    atoll__cluster *c = q->c;
    if (q->pending > 0)
        return;
    while (++q->node_id <= ATOLL_NODE_ID_MAX) {
        int id = q->node_id;
        bool alive = id == c->id ? (c->cfg->roles & ATOLL_ROLE_AREA) != 0
                                 : c->peers[id].alive && (c->peers[id].roles & ATOLL_ROLE_AREA);
        if (!alive)
            continue;
        /* Stats first (into q->stats), then the directory's entries, which use them. */
        char key[48];
        snprintf(key, sizeof key, KEY_AREASTATS "%d", id);
        const char *argv[] = {"GET", key};
        q->pending = 1;
        atoll__redis_cmd(c->redis, 2, argv, on_areastats_then_entries, q);
        return;
    }
    answer(q, 200, json_incref(q->out));
    req_free(q);
}

/* After the stats of node q->node_id: its entries. */
static void
areas_entries(ctl_req *q)
{
    q->pending = 1;
    atoll__redis_node_areas(q->c->redis, q->node_id, on_areas_of, q);
}

static void
on_areastats_then_entries(void *arg, const redisReply *x)
{
    ctl_req *q = arg;
    if (x != NULL && x->type == REDIS_REPLY_STRING) {
        json_t *j = json_loadb(x->str, x->len, 0, NULL);
        if (json_is_object(j))
            json_object_update(q->stats, j);
        json_decref(j);
    }
    areas_entries(q);
}

static void
on_pins(void *arg, const redisReply *x)
{
    ctl_req *q = arg;
    if (no_reply(q, x == NULL))
        return;
    for (size_t i = 0; x->type == REDIS_REPLY_ARRAY && i + 1 < x->elements; i += 2)
        json_object_set_new(q->pins, x->element[i]->str, json_string(x->element[i + 1]->str));
    if (q->op == ATOLL_CTL_AREAS) {
        q->out = json_pack("{s:[]}", "areas");
        q->node_id = 0;
        q->pending = 0;
        areas_step(q);
    }
}

/* ---- moves -------------------------------------------------------------------------------- */

typedef struct move_ctx {
    ctl_req *q;           /* the admin's request (NULL: the coordinator's own move) */
    atoll__cluster *c;
    char area[ATOLL_AREA_ID_MAX + 1];
} move_ctx;

static void
moving_del(atoll__cluster *c, const char *area)
{
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->nmoving; i++) {
        if (strcmp(c->moving[i], area) == 0) {
            memcpy(c->moving[i], c->moving[--c->nmoving], sizeof c->moving[i]);
            break;
        }
    }
    pthread_mutex_unlock(&c->lock);
}

static bool
moving_has(atoll__cluster *c, const char *area)
{
    bool has = false;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->nmoving && !has; i++)
        has = strcmp(c->moving[i], area) == 0;
    pthread_mutex_unlock(&c->lock);
    return has;
}

static size_t
moving_count(atoll__cluster *c)
{
    pthread_mutex_lock(&c->lock);
    size_t n = c->nmoving;
    pthread_mutex_unlock(&c->lock);
    return n;
}

/* On a worker: the hand-off ended. */
static void
on_moved(void *arg, int status, const char *why, uint64_t epoch, int from, int node,
         uint32_t pause_us)
{
    move_ctx *m = arg;
    atoll__cluster *c = m->c;
    moving_del(c, m->area);
    if (m->q != NULL) {
        ctl_req *q = m->q;
        if (status == ATOLL_OK) {
            char from_name[64], to_name[64]; /* peer.name's size */
            node_name_copy(c, from, from_name, sizeof from_name);
            node_name_copy(c, node, to_name, sizeof to_name);
            json_t *j = json_pack("{s:s,s:s,s:s,s:I,s:f}", "area", m->area, "from", from_name,
                                  "to", to_name, "epoch", (json_int_t)epoch, "pause_ms",
                                  pause_us / 1000.0);
            answer(q, 200, j);
        } else {
            int http = status == ATOLL_ENOENT ? 404 : status == ATOLL_EBUSY ? 503 : 409;
            char msg[400];
            snprintf(msg, sizeof msg, "area %s not moved: %s", m->area,
                     why ? why : atoll_strerror(status));
            answer(q, http, json_pack("{s:s,s:i}", "error", msg, "code", http));
        }
        req_free(q);
    } else if (status != ATOLL_OK) {
        ATOLL_LOG(ATOLL_LOG_INFO, "msg=\"a move the coordinator asked for did not happen\" "
                  "area=\"%s\" why=\"%s\"", m->area, why ? why : atoll_strerror(status));
    }
    atoll__free(m);
}

/* Asks the area runtime to move area to node id; q answered when it ends (NULL: the
 * coordinator's). False when it could not be asked. */
static bool
start_move(atoll__cluster *c, ctl_req *q, const char *area, int to)
{
    move_ctx *m = atoll__calloc(1, sizeof *m);
    m->q = q;
    m->c = c;
    snprintf(m->area, sizeof m->area, "%s", area);
    pthread_mutex_lock(&c->lock);
    c->moving = atoll__grow(c->moving, c->nmoving, &c->cap_moving, sizeof *c->moving, 8);
    snprintf(c->moving[c->nmoving++], sizeof *c->moving, "%s", area);
    pthread_mutex_unlock(&c->lock);
    if (c->node->area_ops == NULL ||
        c->node->area_ops->move(c->node, area, to, on_moved, m) != ATOLL_OK) {
        moving_del(c, area);
        atoll__free(m);
        return false;
    }
    return true;
}

static void
on_move_pin(void *arg, const redisReply *x)
{
    ctl_req *q = arg;
    atoll__cluster *c = q->c;
    int to = atoll__control_node_id(c, q->node);
    if (no_reply(q, x == NULL))
        return;
    int pin = x->type == REDIS_REPLY_STRING ? atoi(x->str) : 0;
    if (q->op == ATOLL_CTL_MOVE && pin > 0 && pin != to) {
        char msg[200];
        snprintf(msg, sizeof msg, "area %s is pinned to %s: unpin it first", q->area,
                 node_name(c, pin));
        answer(q, 409, json_pack("{s:s,s:i}", "error", msg, "code", 409));
        req_free(q);
        return;
    }
    if (!start_move(c, q, q->area, to)) {
        fail(q, 400, "area id %s is not valid", q->area);
        req_free(q);
    }
}

static void
on_pin_set(void *arg, const redisReply *x)
{
    ctl_req *q = arg;
    atoll__cluster *c = q->c;
    if (no_reply(q, x == NULL))
        return;
    if (q->op == ATOLL_CTL_UNPIN) {
        answer(q, 200, json_pack("{s:s,s:n}", "area", q->area, "pinned"));
        req_free(q);
        return;
    }
    /* Pinned: moved there now unless it is there already (the move says so). */
    int to = atoll__control_node_id(c, q->node);
    json_t *j = json_pack("{s:s,s:s}", "area", q->area, "pinned", node_name(c, to));
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    /* The answer is the pin; the move goes on by itself (its outcome is logged). */
    q->fn(q->ctx, 200, text, strlen(text));
    free(text);
    char area[ATOLL_AREA_ID_MAX + 1];
    memcpy(area, q->area, sizeof area);
    req_free(q);
    start_move(c, NULL, area, to);
}

/* ---- drains ------------------------------------------------------------------------------- */

static void
drain_answer(ctl_req *q, const redisReply *drain, long long left, json_t *waiting)
{
    atoll__cluster *c = q->c;
    json_t *d = drain && drain->type == REDIS_REPLY_STRING ? json_loadb(drain->str, drain->len, 0, NULL)
                                                            : NULL;
    if (d == NULL) {
        json_decref(waiting);
        fail(q, 404, "node %s is not being drained", q->node);
        return;
    }
    int id = q->node_id;
    bool alive = id == c->id || c->peers[id].alive;
    const char *state = json_string_value(json_object_get(d, "state"));
    bool stop = json_is_true(json_object_get(d, "stop"));
    if (!alive && state != NULL && strcmp(state, "draining") == 0)
        state = "stopped";
    else if (alive && left == 0)
        state = stop ? "stopping" : "done"; /* with --stop: over once the node is gone */
    json_t *j = json_pack("{s:s,s:s,s:I,s:I,s:o,s:b}", "node", node_name(c, id), "state",
                          state ? state : "draining", "areas_total",
                          (json_int_t)json_integer_value(json_object_get(d, "total")),
                          "areas_left", (json_int_t)left, "waiting", waiting, "stop", stop);
    json_decref(d);
    answer(q, 200, j);
}

typedef struct drain_read {
    ctl_req *q;
    redisReply *drain; /* kept: the reply is borrowed */
    char *text;
} drain_read;

static void
on_drain_areas(void *arg, char **ids, const atoll__dir_entry *entries, size_t n)
{
    drain_read *r = arg;
    ctl_req *q = r->q;
    json_t *waiting = json_array();
    for (size_t i = 0; i < n; i++) {
        const atoll_area_type *t = type_at(q->c, entries[i].type_index);
        if (t != NULL && t->drain_waits)
            json_array_append_new(waiting, json_string(ids[i]));
    }
    redisReply fake = {.type = r->text ? REDIS_REPLY_STRING : REDIS_REPLY_NIL,
                       .str = r->text, .len = r->text ? strlen(r->text) : 0};
    drain_answer(q, &fake, (long long)n, waiting);
    atoll__free(r->text);
    atoll__free(r);
    req_free(q);
}

static void
on_drain_get(void *arg, const redisReply *x)
{
    ctl_req *q = arg;
    if (no_reply(q, x == NULL))
        return;
    drain_read *r = atoll__calloc(1, sizeof *r);
    r->q = q;
    if (x->type == REDIS_REPLY_STRING)
        r->text = atoll__strndup(x->str, x->len);
    atoll__redis_node_areas(q->c->redis, q->node_id, on_drain_areas, r);
}

static void
drain_status(ctl_req *q)
{
    char id[16];
    snprintf(id, sizeof id, "%d", q->node_id);
    const char *argv[] = {"HGET", KEY_DRAINS, id};
    atoll__redis_cmd(q->c->redis, 3, argv, on_drain_get, q);
}

static void
on_drain_set(void *arg, const redisReply *x)
{
    ctl_req *q = arg;
    if (no_reply(q, x == NULL))
        return;
    ATOLL_LOG(ATOLL_LOG_INFO, "msg=\"drain asked\" node=%d stop=%s", q->node_id,
              q->stop ? "yes" : "no");
    drain_status(q);
}

static void
on_drain_count(void *arg, const redisReply *x)
{
    ctl_req *q = arg;
    if (no_reply(q, x == NULL || x->type != REDIS_REPLY_INTEGER))
        return;
    char id[16], val[96];
    snprintf(id, sizeof id, "%d", q->node_id);
    snprintf(val, sizeof val, "{\"stop\":%s,\"total\":%lld,\"state\":\"draining\"}",
             q->stop ? "true" : "false", x->integer);
    const char *argv[] = {"HSET", KEY_DRAINS, id, val};
    atoll__redis_cmd(q->c->redis, 4, argv, on_drain_set, q);
}

static void
on_drain_live(void *arg, const redisReply *x)
{
    ctl_req *q = arg;
    if (no_reply(q, x == NULL || x->type != REDIS_REPLY_INTEGER))
        return;
    if (x->integer == 0) {
        fail(q, 404, "node %s is not live", q->node);
        req_free(q);
        return;
    }
    char key[48];
    snprintf(key, sizeof key, "atoll:node_areas:%d", q->node_id);
    const char *argv[] = {"SCARD", key};
    atoll__redis_cmd(q->c->redis, 2, argv, on_drain_count, q);
}

/* ---- requests ----------------------------------------------------------------------------- */

static void
run_req(ctl_req *q)
{
    atoll__cluster *c = q->c;
    switch (q->op) {
    case ATOLL_CTL_STATUS:
        atoll__redis_nodes(c->redis, on_status_nodes, q);
        return;
    case ATOLL_CTL_AREAS: {
        q->stats = json_object();
        q->pins = json_object();
        const char *argv[] = {"HGETALL", KEY_PINS};
        atoll__redis_cmd(c->redis, 2, argv, on_pins, q);
        return;
    }
    case ATOLL_CTL_PLAYERS:
        /* The area's owner lists them (the area runtime asks it): not the cluster's. */
        fail(q, 501, "players are listed by the node's area runtime%s", NULL);
        req_free(q);
        return;
    case ATOLL_CTL_MOVE:
    case ATOLL_CTL_PIN: {
        int to = atoll__control_node_id(c, q->node);
        bool area_node = to == c->id ? (c->cfg->roles & ATOLL_ROLE_AREA) != 0
                                     : to > 0 && (c->peers[to].roles & ATOLL_ROLE_AREA);
        if (to == 0 || !area_node) {
            fail(q, 404, "no live area node named %s", q->node);
            req_free(q);
            return;
        }
        if (q->op == ATOLL_CTL_PIN) {
            char id[16];
            snprintf(id, sizeof id, "%d", to);
            const char *argv[] = {"HSET", KEY_PINS, q->area, id};
            atoll__redis_cmd(c->redis, 4, argv, on_pin_set, q);
        } else {
            const char *argv[] = {"HGET", KEY_PINS, q->area};
            atoll__redis_cmd(c->redis, 3, argv, on_move_pin, q);
        }
        return;
    }
    case ATOLL_CTL_UNPIN: {
        const char *argv[] = {"HDEL", KEY_PINS, q->area};
        atoll__redis_cmd(c->redis, 3, argv, on_pin_set, q);
        return;
    }
    case ATOLL_CTL_DRAIN:
    case ATOLL_CTL_DRAIN_STATUS: {
        char *end;
        long v = strtol(q->node, &end, 10);
        q->node_id = atoll__control_node_id(c, q->node);
        if (q->node_id == 0 && q->op == ATOLL_CTL_DRAIN_STATUS) {
            /* A node that stopped after its drain is not live: found by its name. */
            if (*q->node && *end == '\0' && v > 0 && v <= ATOLL_NODE_ID_MAX)
                q->node_id = (int)v;
            for (int id = 1; id <= ATOLL_NODE_ID_MAX && q->node_id == 0; id++)
                if (c->peers[id].ever && strcmp(c->peers[id].name, q->node) == 0)
                    q->node_id = id;
        }
        if (q->node_id == 0) {
            fail(q, 404, "no node named %s", q->node);
            req_free(q);
            return;
        }
        if (q->op == ATOLL_CTL_DRAIN_STATUS) {
            drain_status(q);
            return;
        }
        /* Its record, not this node's table (a heartbeat old): a node that just
         * stopped is not drained again. */
        char key[48];
        snprintf(key, sizeof key, "atoll:node:%d", q->node_id);
        const char *argv[] = {"EXISTS", key};
        atoll__redis_cmd(c->redis, 2, argv, on_drain_live, q);
        return;
    }
    }
    fail(q, 400, "unknown operation%s", NULL);
    req_free(q);
}

void
atoll__control_run(atoll__cluster *c)
{
    pthread_mutex_lock(&c->lock);
    ctl_req *q = c->ctlq;
    c->ctlq = c->ctlq_tail = NULL;
    pthread_mutex_unlock(&c->lock);
    while (q != NULL) {
        ctl_req *next = q->next;
        q->next = NULL;
        run_req(q);
        q = next;
    }
}

/* ---- every heartbeat: this node's areas' stats and its drain ---------------------------- */

static void
on_plain(void *arg, const redisReply *x)
{
    (void)arg;
    (void)x;
}

static uint64_t
hash_id(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h ? h : 1;
}

/* Publishes {"<id>": [players, messages/s, cores]} of this node's areas. */
static void
publish_areastats(atoll__cluster *c)
{
    uint64_t now = uv_now(&c->loop);
    if (now - c->areastats_at_ms < AREASTATS_EVERY_MS && c->areastats_at_ms != 0)
        return;
    uint64_t dt_ms = c->areastats_at_ms ? now - c->areastats_at_ms : 0;
    c->areastats_at_ms = now;
    size_t n;
    atoll_area_stats *st = atoll__areas_here(c->node, &n);
    area_busy *busy = atoll__calloc(n + 1, sizeof *busy);
    json_t *j = json_object();
    for (size_t i = 0; i < n; i++) {
        uint64_t h = hash_id(st[i].id);
        double cores = 0;
        for (size_t k = 0; k < c->nbusy; k++) {
            if (c->busy[k].hash == h && st[i].handler_ns >= c->busy[k].handler_ns && dt_ms > 0) {
                cores = (double)(st[i].handler_ns - c->busy[k].handler_ns) / 1e6 / (double)dt_ms;
                break;
            }
        }
        busy[i].hash = h;
        busy[i].handler_ns = st[i].handler_ns;
        json_object_set_new(j, st[i].id, json_pack("[i,f,f]", (json_int_t)st[i].players,
                                                   st[i].messages_per_s, cores));
    }
    atoll__free(c->busy);
    c->busy = busy;
    c->nbusy = n;
    atoll__free(st);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    char key[48], px[24];
    snprintf(key, sizeof key, KEY_AREASTATS "%d", c->id);
    snprintf(px, sizeof px, "%u", c->cfg->lease_ms + AREASTATS_EVERY_MS);
    const char *argv[] = {"SET", key, text, "PX", px};
    atoll__redis_cmd(c->redis, 5, argv, on_plain, NULL);
    free(text);
}

static void
on_own_drain(void *arg, const redisReply *x)
{
    atoll__cluster *c = arg;
    if (x == NULL)
        return; /* Redis did not answer: as it was */
    json_t *d = x->type == REDIS_REPLY_STRING ? json_loadb(x->str, x->len, 0, NULL) : NULL;
    const char *state = json_string_value(json_object_get(d, "state"));
    bool draining = d != NULL && state != NULL && strcmp(state, "draining") == 0;
    if (draining && !c->draining)
        ATOLL_LOG(ATOLL_LOG_INFO, "msg=\"this node is being drained: its areas move away\" "
                  "node=%d stop=%s", c->id, json_is_true(json_object_get(d, "stop")) ? "yes" : "no");
    c->draining = draining;
    atomic_store(&c->node->draining, draining);
    c->drain_stop = draining && json_is_true(json_object_get(d, "stop"));
    json_decref(d);
    if (!c->drain_stop || c->stopping_drained)
        return;
    if (atoll_node_areas(c->node, NULL, 0) == 0) {
        /* Empty: it says so, then stops as on SIGTERM (a clean stop, exit status 0). */
        c->stopping_drained = true;
        char id[16];
        snprintf(id, sizeof id, "%d", c->id);
        char val[96];
        snprintf(val, sizeof val, "{\"stop\":true,\"total\":0,\"state\":\"stopped\"}");
        const char *argv[] = {"HSET", KEY_DRAINS, id, val};
        atoll__redis_cmd(c->redis, 4, argv, on_plain, NULL);
        ATOLL_LOG(ATOLL_LOG_INFO, "msg=\"drained: every area moved away, stopping\" node=%d",
                  c->id);
        raise(SIGTERM); /* to the process's handler (libuv's), on any thread */
    }
}

/* ---- the coordinator: drains and rebalancing ------------------------------------------- */

/* The live area node with the least load that is not being drained (and not `not`). */
static int
least_loaded(atoll__cluster *c, const bool *draining, int not)
{
    int best = 0;
    double best_load = 0;
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < c->nplaceable; i++) {
        int id = c->placeable[i].node;
        if (id == not || draining[id])
            continue;
        if (best == 0 || c->placeable[i].load < best_load) {
            best = id;
            best_load = c->placeable[i].load;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return best;
}

typedef struct coord_round {
    atoll__cluster *c;
    bool draining[ATOLL_NODE_ID_MAX + 1];
    int drained;        /* the node whose areas are read (drains) */
    json_t *pins;
    json_t *stats;      /* rebalance: the most loaded node's areas' stats */
    int from, to;
    double spread, most, mean;
} coord_round;

static void
round_free(coord_round *r)
{
    json_decref(r->pins);
    json_decref(r->stats);
    atoll__free(r);
}

static void
on_drain_node_areas(void *arg, char **ids, const atoll__dir_entry *entries, size_t n)
{
    coord_round *r = arg;
    atoll__cluster *c = r->c;
    for (size_t i = 0; i < n; i++) {
        if (moving_count(c) >= c->cfg->moves_per_cycle)
            break;
        const atoll_area_type *t = type_at(c, entries[i].type_index);
        if ((t != NULL && t->drain_waits) || moving_has(c, ids[i]))
            continue;
        int to = least_loaded(c, r->draining, r->drained);
        if (to == 0) {
            ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"drain: no other area node to move to\" node=%d",
                      r->drained);
            break;
        }
        start_move(c, NULL, ids[i], to);
    }
    round_free(r);
}

/* An area's load from its stats [players, messages/s, cores], as a node's is counted. */
static double
area_load(const json_t *v)
{
    return json_integer_value(json_array_get(v, 0)) / 1000.0 +
           json_number_value(json_array_get(v, 1)) / 10000.0 + json_number_value(json_array_get(v, 2));
}

static void
on_rebalance_stats(void *arg, const redisReply *x)
{
    coord_round *r = arg;
    atoll__cluster *c = r->c;
    json_t *st = x && x->type == REDIS_REPLY_STRING ? json_loadb(x->str, x->len, 0, NULL) : NULL;
    /* Moving an area of load L from the most to the least loaded node leaves a spread
     * of |spread - 2L|: narrower for any L below the spread. Each move takes the area
     * that leaves the narrowest, so the spread shrinks at every move and no area can
     * go back and forth while the loads stay what they are. */
    const char *key;
    json_t *v;
    size_t started = 0;
    /* The node's load (its record, measured each heartbeat) and the sum of its areas'
     * (measured each second) do not quite agree: the spread is put in the areas' units. */
    double sum = 0;
    json_object_foreach(st, key, v)
        sum += area_load(v);
    double scale = r->most > 0 && sum > 0 ? sum / r->most : 1;
    r->spread *= scale;
    /* Moves until the spread left is below cluster.rebalance_stop of the average. */
    double enough = c->cfg->rebalance_stop * r->mean * scale;
    while (json_is_object(st) && started < c->cfg->moves_per_cycle && r->spread > enough) {
        const char *best = NULL;
        double best_load = 0, best_left = r->spread;
        json_object_foreach(st, key, v) {
            double load = area_load(v), left = fabs(r->spread - 2 * load);
            if (load > 0 && left < best_left && !moving_has(c, key) &&
                json_object_get(r->pins, key) == NULL) {
                best = key;
                best_load = load;
                best_left = left;
            }
        }
        if (best == NULL)
            break;
        char id[ATOLL_AREA_ID_MAX + 1];
        snprintf(id, sizeof id, "%s", best);
        json_object_del(st, id);
        if (start_move(c, NULL, id, r->to)) {
            started++;
            r->spread = best_left;
            ATOLL_LOG(ATOLL_LOG_INFO, "msg=\"rebalance: moving an area\" area=\"%s\" from=%d to=%d "
                      "area_load=%.3f spread_left=%.3f", id, r->from, r->to, best_load, r->spread);
        }
    }
    json_decref(st);
    /* No move narrows the spread: the areas are as even as whole areas get, and the
     * next rebalance needs rebalance_start again. */
    if (started == 0)
        c->rebalancing = false;
    /* The next step only once the loads and the areas' stats were measured after
     * these moves (the beats that see them under way push this further). */
    if (started > 0)
        c->rebalance_quiet_until_ms = uv_now(&c->loop) + 2u * c->cfg->beat_ms +
                                      2u * AREASTATS_EVERY_MS;
    round_free(r);
}

static void
on_coord_pins(void *arg, const redisReply *x)
{
    coord_round *r = arg;
    atoll__cluster *c = r->c;
    r->pins = json_object();
    for (size_t i = 0; x && x->type == REDIS_REPLY_ARRAY && i + 1 < x->elements; i += 2)
        json_object_set_new(r->pins, x->element[i]->str, json_string(x->element[i + 1]->str));
    /* Rebalancing only when nothing drains, no move is under way, and the loads were
     * measured again since the last moves ended. */
    uint64_t now = uv_now(&c->loop);
    if (moving_count(c) > 0) {
        c->rebalance_quiet_until_ms = now + 2u * c->cfg->beat_ms + 2u * AREASTATS_EVERY_MS;
        round_free(r);
        return;
    }
    double most = 0, least = 0, sum = 0;
    int from = 0, to = 0, nodes = 0;
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < c->nplaceable; i++) {
        int id = c->placeable[i].node;
        double load = c->placeable[i].load;
        if (r->draining[id])
            continue;
        nodes++;
        sum += load;
        if (from == 0 || load > most)
            from = id, most = load;
        if (to == 0 || load < least)
            to = id, least = load;
    }
    pthread_mutex_unlock(&c->lock);
    /* The spread as a share of the average load (loads measured on a busy machine
     * wander by a fifth or so), and never for loads too small to tell apart. */
    double spread = most - least, mean = nodes > 0 ? sum / nodes : 0;
    double share = mean > 0 ? spread / mean : 0;
    /* A rebalance starts past rebalance_start and goes on down to rebalance_stop. */
    if (now < c->rebalance_quiet_until_ms) {
        round_free(r);
        return;
    }
    bool apart = spread >= c->cfg->rebalance_min_load &&
                 share >= (c->rebalancing ? c->cfg->rebalance_stop : c->cfg->rebalance_start) &&
                 from != to && from != 0 && to != 0;
    /* A new rebalance needs the loads apart for REBALANCE_SUSTAIN heartbeats in a row:
     * one reading's wobble (a node's CPU measured over one beat on a busy machine)
     * does not move areas. One under way goes on while they are apart. */
    c->rebalance_apart_beats = apart ? c->rebalance_apart_beats + 1 : 0;
    c->rebalancing = apart && (c->rebalancing || c->rebalance_apart_beats >= REBALANCE_SUSTAIN);
    if (!c->rebalancing) {
        round_free(r);
        return;
    }
    r->from = from;
    r->to = to;
    r->spread = spread;
    r->most = most;
    r->mean = mean;
    char key[48];
    snprintf(key, sizeof key, KEY_AREASTATS "%d", from);
    const char *argv[] = {"GET", key};
    atoll__redis_cmd(c->redis, 2, argv, on_rebalance_stats, r);
}

static void
on_coord_drains(void *arg, const redisReply *x)
{
    atoll__cluster *c = arg;
    if (x == NULL || x->type != REDIS_REPLY_ARRAY)
        return;
    coord_round *base = atoll__calloc(1, sizeof *base);
    base->c = c;
    for (size_t i = 0; i + 1 < x->elements; i += 2) {
        int id = atoi(x->element[i]->str);
        json_t *d = json_loadb(x->element[i + 1]->str, x->element[i + 1]->len, 0, NULL);
        const char *state = json_string_value(json_object_get(d, "state"));
        if (id > 0 && id <= ATOLL_NODE_ID_MAX && state && strcmp(state, "draining") == 0)
            base->draining[id] = true;
        json_decref(d);
    }
    bool any = false;
    for (int id = 1; id <= ATOLL_NODE_ID_MAX; id++) {
        if (!base->draining[id] || !(id == c->id || c->peers[id].alive))
            continue;
        any = true;
        coord_round *r = atoll__malloc(sizeof *r);
        *r = *base;
        r->drained = id;
        atoll__redis_node_areas(c->redis, id, on_drain_node_areas, r);
    }
    if (any || c->cfg->rebalance_start <= 0) {
        atoll__free(base);
        return;
    }
    const char *argv[] = {"HGETALL", KEY_PINS};
    atoll__redis_cmd(c->redis, 2, argv, on_coord_pins, base);
}

void
atoll__control_beat(atoll__cluster *c)
{
    if (c->cfg->roles & ATOLL_ROLE_AREA) {
        publish_areastats(c);
        char id[16];
        snprintf(id, sizeof id, "%d", c->id);
        const char *argv[] = {"HGET", KEY_DRAINS, id};
        atoll__redis_cmd(c->redis, 3, argv, on_own_drain, c);
    }
    if (c->coordinator) {
        const char *argv[] = {"HGETALL", KEY_DRAINS};
        atoll__redis_cmd(c->redis, 2, argv, on_coord_drains, c);
    }
}

void
atoll__control_fini(atoll__cluster *c)
{
    pthread_mutex_lock(&c->lock);
    ctl_req *q = c->ctlq;
    c->ctlq = c->ctlq_tail = NULL;
    pthread_mutex_unlock(&c->lock);
    while (q != NULL) {
        ctl_req *next = q->next;
        fail(q, 503, "the node is stopping%s", NULL);
        req_free(q);
        q = next;
    }
    atoll__free(c->moving);
    c->moving = NULL;
    atoll__free(c->busy);
    c->busy = NULL;
}
