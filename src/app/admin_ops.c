/* admin_ops.c -- the admin API's operations that a node answers from what it holds
 * itself (app.h): GET /v1/status and /v1/areas of this node alone, and /metrics.
 *
 * The admin server (src/admin) knows nothing of areas or of the cluster; the program
 * gives it this table. Everything here is read on the admin server's thread, from what
 * the node lets any thread read: the area stats the workers publish every 100 ms
 * (atoll_node_areas), the count of open connections (an atomic), whether it stops (an
 * atomic), and its settings (read-only once it runs). So each operation answers before
 * it returns. /metrics adds the node's counters and histograms (src/node/metrics.h).
 *
 * On a node of a cluster, the operations are the cluster's (src/cluster/control.c:
 * every node's status, every area, moves, pins, drains), answered later from the
 * cluster's thread or a worker, and the players of an area are asked of its owner
 * (the area runtime's atoll__area_ops). An embedded node answers status, areas and
 * players itself; it has nowhere to move an area to (501).
 */
#include "app.h"
#include "../cluster/cluster.h"
#include "../node/metrics.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>

struct atoll__node_ops {
    atoll__node *node;
    atoll__cluster *cluster; /* NULL: the embedded node */
    /* The last sample of the process's CPU time, for the load's CPU part. */
    pthread_mutex_t mu;
    uint64_t cpu_ns_last;
    uint64_t cpu_at_ns;
};

/* ---- what the node publishes ---------------------------------------------------------- */

typedef struct {
    uint32_t areas;
    uint64_t players;
    double messages_per_s;
    uint64_t messages;
    uint64_t slow;
    double load;
} node_totals;

/* Sums the areas' stats; the load is the cluster's measure (src/cluster/cluster.c):
 * the cores the process used since the last ask, plus players / 1000, plus messages a
 * second / 10000 (the first ask has no CPU part: there is nothing to compare with). */
static node_totals
totals(atoll__node_ops *o, const atoll_area_stats *st, size_t n)
{
    node_totals t = {0};
    t.areas = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        t.players += st[i].players;
        t.messages_per_s += st[i].messages_per_s;
        t.messages += st[i].messages;
        t.slow += st[i].slow;
    }
    uint64_t now = atoll__now_ns(), cpu = atoll__cpu_ns();
    double cores = 0;
    pthread_mutex_lock(&o->mu);
    if (o->cpu_at_ns != 0 && now > o->cpu_at_ns && cpu >= o->cpu_ns_last)
        cores = (double)(cpu - o->cpu_ns_last) / (double)(now - o->cpu_at_ns);
    o->cpu_ns_last = cpu;
    o->cpu_at_ns = now;
    pthread_mutex_unlock(&o->mu);
    t.load = cores + (double)t.players / 1000.0 + t.messages_per_s / 10000.0;
    return t;
}

/* Answers with root (taken) as compact JSON. */
static void
answer_json(atoll__admin_call *c, json_t *root)
{
    char *text = root != NULL ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (text == NULL) {
        atoll__admin_fail(c, 500, "the answer could not be written as JSON");
        return;
    }
    atoll__admin_answer(c, 200, text, strlen(text));
    free(text); /* jansson's, from malloc */
}

static json_t *
roles_json(unsigned roles)
{
    json_t *a = json_array();
    if (roles & ATOLL_ROLE_GATE)
        json_array_append_new(a, json_string("gate"));
    if (roles & ATOLL_ROLE_AREA)
        json_array_append_new(a, json_string("area"));
    if (roles & ATOLL_ROLE_COORD)
        json_array_append_new(a, json_string("coordinator"));
    return a;
}

/* ---- the operations ------------------------------------------------------------------- */

/* {"coordinator":NAME|null,"nodes":[this node]}: the embedded node is its own
 * coordinator; a node of a cluster does not know here which node is. */
static void
op_status(void *ctx, atoll__admin_call *c)
{
    atoll__node_ops *o = ctx;
    const atoll__config *cfg = o->node->cfg;
    size_t n;
    atoll_area_stats *st = atoll__areas_here(o->node, &n);
    node_totals t = totals(o, st, n);
    atoll__free(st);
    bool embedded = cfg->redis_url[0] == '\0';
    json_t *node = json_pack(
        "{s:i, s:s, s:o, s:o?, s:s, s:f, s:i, s:I}", "id", cfg->node_id, "name",
        cfg->node_name, "roles", roles_json(cfg->roles), "advertise",
        cfg->advertise[0] ? json_string(cfg->advertise) : NULL, "state",
        atomic_load(&o->node->stopping) ? "stopping" : "live", "load", t.load, "areas",
        (int)t.areas, "players", (json_int_t)t.players);
    answer_json(c, json_pack("{s:o, s:[o]}", "coordinator",
                             embedded ? json_string(cfg->node_name) : json_null(), "nodes",
                             node));
}

static int
by_id(const void *a, const void *b)
{
    return strcmp(((const atoll_area_stats *)a)->id, ((const atoll_area_stats *)b)->id);
}

/* {"areas":[...]} of this node, by id. What only the directory knows (the epoch, a
 * pin) is null, and so is an area's load, which the node does not measure apart. */
static void
op_areas(void *ctx, atoll__admin_call *c)
{
    atoll__node_ops *o = ctx;
    size_t n;
    atoll_area_stats *st = atoll__areas_here(o->node, &n);
    qsort(st, n, sizeof *st, by_id);
    json_t *areas = json_array();
    for (size_t i = 0; i < n; i++) {
        /* Ids and types are the game's: jansson refuses text that is not UTF-8, which
         * the area runtime does not check, so such an id or type is shown as null. */
        json_array_append_new(
            areas, json_pack("{s:o?, s:o?, s:s, s:i, s:n, s:I, s:n, s:f, s:n}", "id",
                             json_string(st[i].id), "type", json_string(st[i].type), "node",
                             o->node->cfg->node_name, "worker", st[i].worker, "epoch",
                             "players", (json_int_t)st[i].players, "load", "messages_per_s",
                             st[i].messages_per_s, "pinned"));
    }
    atoll__free(st);
    answer_json(c, json_pack("{s:o}", "areas", areas));
}

static void
put_text(atoll__buf *b, const char *s)
{
    atoll__buf_append(b, s, strlen(s));
}

/* One gauge: its help, its type and its one sample, labelled with the node's name. */
static void
put_gauge(atoll__buf *b, const char *name, const char *help, const char *node, double v)
{
    char line[256];
    snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s gauge\n%s{node=\"", name, help, name,
             name);
    put_text(b, line);
    atoll__metrics_put_label(b, node);
    snprintf(line, sizeof line, "\"} %.17g\n", v);
    put_text(b, line);
}

static void
op_metrics(void *ctx, atoll__buf *out)
{
    atoll__node_ops *o = ctx;
    const atoll__config *cfg = o->node->cfg;
    size_t n;
    atoll_area_stats *st = atoll__areas_here(o->node, &n);
    node_totals t = totals(o, st, n);
    atoll__free(st);
    const char *name = cfg->node_name;
    char roles[40];
    snprintf(roles, sizeof roles, "%s%s%s", cfg->roles & ATOLL_ROLE_GATE ? "gate," : "",
             cfg->roles & ATOLL_ROLE_AREA ? "area," : "",
             cfg->roles & ATOLL_ROLE_COORD ? "coordinator," : "");
    roles[strlen(roles) - (roles[0] ? 1 : 0)] = '\0';
    put_text(out, "# HELP atoll_node_info This node: its roles, game and version.\n"
                  "# TYPE atoll_node_info gauge\natoll_node_info{node=\"");
    atoll__metrics_put_label(out, name);
    put_text(out, "\",roles=\"");
    atoll__metrics_put_label(out, roles);
    put_text(out, "\",game=\"");
    atoll__metrics_put_label(out, cfg->game);
    put_text(out, "\",version=\"" ATOLL_VERSION_STRING "\"} 1\n");
    put_gauge(out, "atoll_node_stopping", "1 once the node has been asked to stop.", name,
              atomic_load(&o->node->stopping) ? 1 : 0);
    put_gauge(out, "atoll_connections", "Open client connections of this node.", name,
              (double)atomic_load(&o->node->nconns));
    put_gauge(out, "atoll_areas", "Areas this node runs.", name, t.areas);
    put_gauge(out, "atoll_players", "Players in the areas of this node.", name,
              (double)t.players);
    put_gauge(out, "atoll_load", "This node's load as placement weighs it.", name, t.load);
    put_gauge(out, "atoll_area_messages_per_second",
              "Messages handled a second by the areas of this node, over the last second.",
              name, t.messages_per_s);
    put_gauge(out, "atoll_area_messages",
              "Messages handled by the areas this node runs now, since each was created.", name,
              (double)t.messages);
    put_gauge(out, "atoll_area_slow",
              "Game callbacks longer than area.slow_ms in the areas this node runs now.", name,
              (double)t.slow);
    atoll__metrics_write(out, name);
}

/* ---- the table ------------------------------------------------------------------------ */

/* ---- a cluster's operations ------------------------------------------------------------ */

static void
ctl_answered(void *ctx, int status, const char *json, size_t len)
{
    atoll__admin_answer(ctx, status, json, len);
}

static void
op_cluster_status(void *ctx, atoll__admin_call *c)
{
    atoll__node_ops *o = ctx;
    atoll__cluster_control(o->cluster, ATOLL_CTL_STATUS, NULL, NULL, false, ctl_answered, c);
}

static void
op_cluster_areas(void *ctx, atoll__admin_call *c)
{
    atoll__node_ops *o = ctx;
    atoll__cluster_control(o->cluster, ATOLL_CTL_AREAS, NULL, NULL, false, ctl_answered, c);
}

static void
op_move(void *ctx, const char *area, const char *node, atoll__admin_call *c)
{
    atoll__node_ops *o = ctx;
    atoll__cluster_control(o->cluster, ATOLL_CTL_MOVE, area, node, false, ctl_answered, c);
}

static void
op_pin(void *ctx, const char *area, const char *node, atoll__admin_call *c)
{
    atoll__node_ops *o = ctx;
    atoll__cluster_control(o->cluster, ATOLL_CTL_PIN, area, node, false, ctl_answered, c);
}

static void
op_unpin(void *ctx, const char *area, atoll__admin_call *c)
{
    atoll__node_ops *o = ctx;
    atoll__cluster_control(o->cluster, ATOLL_CTL_UNPIN, area, NULL, false, ctl_answered, c);
}

static void
op_drain(void *ctx, const char *node, bool stop, atoll__admin_call *c)
{
    atoll__node_ops *o = ctx;
    atoll__cluster_control(o->cluster, ATOLL_CTL_DRAIN, NULL, node, stop, ctl_answered, c);
}

static void
op_drain_status(void *ctx, const char *node, atoll__admin_call *c)
{
    atoll__node_ops *o = ctx;
    atoll__cluster_control(o->cluster, ATOLL_CTL_DRAIN_STATUS, NULL, node, false, ctl_answered,
                           c);
}

/* On a worker of this node: the owner's list of the area's players. */
static void
players_listed(void *ctx, int status, const char *json, size_t len)
{
    if (status == ATOLL_OK)
        atoll__admin_answer(ctx, 200, json, len);
    else if (status == ATOLL_ENOENT)
        atoll__admin_fail(ctx, 404, "no such area");
    else
        atoll__admin_fail(ctx, 503, "the area's node did not answer: %s", atoll_strerror(status));
}

static void
op_players(void *ctx, const char *area, atoll__admin_call *c)
{
    atoll__node_ops *o = ctx;
    if (o->node->area_ops == NULL ||
        o->node->area_ops->players(o->node, area, players_listed, c) != ATOLL_OK)
        atoll__admin_fail(c, 400, "not an area id");
}

atoll__node_ops *
atoll__node_ops_new(atoll__node *n, atoll__admin_ops *ops)
{
    atoll__node_ops *o = atoll__calloc(1, sizeof *o);
    o->node = n;
    o->cluster = n->cfg->cluster;
    pthread_mutex_init(&o->mu, NULL);
    *ops = (atoll__admin_ops){
        .ctx = o,
        .status = op_status,
        .areas = op_areas,
        .players = op_players,
        .metrics = op_metrics,
        /* move, pin, unpin, drain, drain_status: a cluster's (NULL: 501) */
    };
    if (o->cluster != NULL) {
        ops->status = op_cluster_status;
        ops->areas = op_cluster_areas;
        ops->move = op_move;
        ops->pin = op_pin;
        ops->unpin = op_unpin;
        ops->drain = op_drain;
        ops->drain_status = op_drain_status;
    }
    return o;
}

void
atoll__node_ops_free(atoll__node_ops *o)
{
    if (o == NULL)
        return;
    pthread_mutex_destroy(&o->mu);
    atoll__free(o);
}
