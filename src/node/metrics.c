/* metrics.c -- the node's counters, gauges and histograms (metrics.h), and their text
 * for GET /metrics.
 *
 * Sharded so that no two threads write one cache line: a thread takes the next of
 * METRICS_SHARDS the first time it counts. With more threads than shards two share
 * one, still without a lock (the adds are atomic). The table of peers is the one part
 * under a mutex: the cluster thread replaces it whole, ten times a second.
 */
#include "metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define METRICS_SHARDS 16
#define BOUNDS_MAX 16
#define ROUTE_OTHER ATOLL_METRICS_ROUTES_MAX /* the slot of every route past the limit */

typedef struct {
    const char *name;
    const char *help;
    bool seconds; /* observed in ns, written in s */
    int nbounds;
    uint64_t bounds[BOUNDS_MAX];
} hist_def;

#define US 1000ull
#define MS 1000000ull
#define TIME_BOUNDS                                                                          \
    16, { 50 * US, 100 * US, 250 * US, 500 * US, 1 * MS, 2500 * US, 5 * MS, 10 * MS, 25 * MS, \
          50 * MS, 100 * MS, 250 * MS, 500 * MS, 1000 * MS, 2500 * MS, 5000 * MS }
#define COUNT_BOUNDS 13, {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000}

static const hist_def hists[ATOLL_HIST_N] = {
    [ATOLL_HIST_HANDLER] =
        {"atoll_handler_seconds",
         "Time in one run of a handler, for a client or a call (one run in 8 is timed).", true,
         TIME_BOUNDS},
    [ATOLL_HIST_TICK] = {"atoll_tick_seconds", "Time of one area tick, its game code included.",
                         true, TIME_BOUNDS},
    [ATOLL_HIST_COMMIT_LAG] = {"atoll_store_commit_lag_seconds",
                               "From the oldest write of a store commit to the commit's end.",
                               true, TIME_BOUNDS},
    [ATOLL_HIST_COMMIT_DOCS] = {"atoll_store_commit_documents",
                                "Documents written by one store commit.", false, COUNT_BOUNDS},
    [ATOLL_HIST_MAIL] = {"atoll_mail_backlog",
                         "Mail from other threads a worker found waiting when it woke.", false,
                         COUNT_BOUNDS},
    [ATOLL_HIST_MOVE_PAUSE] = {"atoll_move_pause_seconds",
                               "For each area moved away: from its freeze here to the new "
                               "node's word that it runs there.",
                               true, TIME_BOUNDS},
};

/* Counters of one name with different labels are neighbours here: the head is written
 * once, before the first. */
static const struct {
    const char *name, *help, *label;
} ctrs[ATOLL_CTR_N] = {
    [ATOLL_CTR_CONNS_ACCEPTED] = {"atoll_connections_accepted_total",
                                  "Client connections accepted."},
    [ATOLL_CTR_CONNS_CLOSED] = {"atoll_connections_closed_total", "Client connections closed."},
    [ATOLL_CTR_SESSIONS_TCP] = {"atoll_sessions_opened_total",
                                "Client connections that completed the Pomelo handshake, by "
                                "transport.",
                                ",transport=\"tcp\""},
    [ATOLL_CTR_SESSIONS_WS] = {"atoll_sessions_opened_total", NULL, ",transport=\"websocket\""},
    [ATOLL_CTR_SESSIONS_TCP_CLOSED] = {"atoll_sessions_closed_total",
                                       "Of those, the ones closed since, by transport.",
                                       ",transport=\"tcp\""},
    [ATOLL_CTR_SESSIONS_WS_CLOSED] = {"atoll_sessions_closed_total", NULL,
                                      ",transport=\"websocket\""},
    [ATOLL_CTR_COMMITS] = {"atoll_store_commits_total", "Store commits that succeeded."},
    [ATOLL_CTR_COMMIT_FAILURES] = {"atoll_store_commit_failures_total",
                                   "Store commits that failed (their writes are tried again)."},
    [ATOLL_CTR_MOVES_STARTED] = {"atoll_moves_started_total",
                                 "Moves of an area away from this node begun (each ends out, "
                                 "failed or lost)."},
    [ATOLL_CTR_MOVES_OUT] = {"atoll_moves_out_total", "Areas this node handed to another node."},
    [ATOLL_CTR_MOVES_IN] = {"atoll_moves_in_total", "Areas another node handed to this one."},
    [ATOLL_CTR_MOVES_FAILED] = {"atoll_moves_failed_total",
                                "Moves of an area away from this node that left it here."},
    [ATOLL_CTR_MOVES_LOST] = {"atoll_moves_lost_total",
                              "Moves that ended with the area given to another node by the "
                              "directory meanwhile (a failover): this copy was dropped."},
    [ATOLL_CTR_LINK_CUTS] = {"atoll_link_cuts_total",
                             "Links to other nodes cut (silence, overrun, bad input)."},
};

static const struct {
    const char *name, *help;
} gauges[ATOLL_GAUGE_N] = {
    [ATOLL_GAUGE_LINK_QUEUED_BYTES] = {"atoll_link_queued_bytes",
                                       "Bytes waiting to be written on links to other nodes."},
    [ATOLL_GAUGE_LINK_PENDING_BYTES] = {"atoll_link_pending_bytes",
                                        "Bytes of mail for other nodes waiting for a link."},
};

typedef struct {
    _Atomic uint64_t ctr[ATOLL_CTR_N];
    _Atomic uint64_t bucket[ATOLL_HIST_N][BOUNDS_MAX + 1]; /* the last: past every bound */
    _Atomic uint64_t sum[ATOLL_HIST_N];
    _Atomic uint64_t requests[ATOLL_METRICS_ROUTES_MAX + 1];
    _Atomic uint64_t errors[ATOLL_METRICS_ROUTES_MAX + 1];
} __attribute__((aligned(64))) shard;

static shard shards[METRICS_SHARDS];
static _Atomic int next_shard;
static _Thread_local shard *my_shard;

static _Atomic uint64_t gauge_values[ATOLL_GAUGE_N];

static pthread_mutex_t peers_lock = PTHREAD_MUTEX_INITIALIZER;
static atoll__metric_peer peer_table[ATOLL_METRICS_PEERS_MAX];
static int npeers;

/* The route table: a slot is claimed by its hash (compare-and-swap), then named, then
 * marked ready; a reader writes only the ready ones. */
static struct {
    _Atomic uint64_t hash;
    _Atomic bool ready;
    char name[ATOLL_METRICS_ROUTE_MAX];
} routes[ATOLL_METRICS_ROUTES_MAX];

static shard *
mine(void)
{
    if (my_shard == NULL)
        my_shard = &shards[atomic_fetch_add_explicit(&next_shard, 1, memory_order_relaxed) %
                           METRICS_SHARDS];
    return my_shard;
}

static void
add(_Atomic uint64_t *p, uint64_t n)
{
    atomic_fetch_add_explicit(p, n, memory_order_relaxed);
}

static uint64_t
get(_Atomic uint64_t *p)
{
    return atomic_load_explicit(p, memory_order_relaxed);
}

void
atoll__metric_add(atoll__ctr c, uint64_t n)
{
    add(&mine()->ctr[c], n);
}

void
atoll__metric_observe(atoll__hist h, uint64_t v)
{
    const hist_def *d = &hists[h];
    int b = 0;
    while (b < d->nbounds && v > d->bounds[b])
        b++;
    shard *s = mine();
    add(&s->bucket[h][b], 1);
    add(&s->sum[h], v);
}

void
atoll__metric_set(atoll__gauge g, uint64_t v)
{
    atomic_store_explicit(&gauge_values[g], v, memory_order_relaxed);
}

void
atoll__metric_peers(const atoll__metric_peer *peers, int n)
{
    if (n > ATOLL_METRICS_PEERS_MAX)
        n = ATOLL_METRICS_PEERS_MAX;
    if (peers == NULL || n < 0)
        n = 0;
    pthread_mutex_lock(&peers_lock);
    if (n > 0)
        memcpy(peer_table, peers, (size_t)n * sizeof *peers);
    for (int i = 0; i < n; i++) /* a name that fills its array is cut, not read past */
        peer_table[i].name[sizeof peer_table[i].name - 1] = '\0';
    npeers = n;
    pthread_mutex_unlock(&peers_lock);
}

static int
route_slot(const char *route)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a, never 0 (0: a free slot) */
    size_t len = strnlen(route, ATOLL_METRICS_ROUTE_MAX - 1);
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)route[i]) * 1099511628211ull;
    h |= 1;
    for (int k = 0; k < ATOLL_METRICS_ROUTES_MAX; k++) {
        int i = (int)((h + (uint64_t)k) % ATOLL_METRICS_ROUTES_MAX);
        uint64_t cur = atomic_load_explicit(&routes[i].hash, memory_order_acquire);
        if (cur == h)
            return i;
        if (cur != 0)
            continue;
        uint64_t expected = 0;
        if (atomic_compare_exchange_strong(&routes[i].hash, &expected, h)) {
            memcpy(routes[i].name, route, len);
            routes[i].name[len] = '\0';
            atomic_store_explicit(&routes[i].ready, true, memory_order_release);
            return i;
        }
        if (expected == h)
            return i;
    }
    return ROUTE_OTHER;
}

void
atoll__metric_route(const char *route, bool error)
{
    int i = route_slot(route);
    shard *s = mine();
    add(error ? &s->errors[i] : &s->requests[i], 1);
}

/* ---- the text ---------------------------------------------------------------------------- */

void
atoll__metrics_put_label(atoll__buf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            atoll__buf_push(b, '\\');
        if (*v == '\n') {
            atoll__buf_append(b, "\\n", 2);
            continue;
        }
        atoll__buf_push(b, (uint8_t)*v);
    }
}

static void
put(atoll__buf *b, const char *s)
{
    atoll__buf_append(b, s, strlen(s));
}

static void
put_head(atoll__buf *b, const char *name, const char *help, const char *type)
{
    char line[512];
    snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    put(b, line);
}

/* name{node="node"[,extra]} value */
static void
put_sample(atoll__buf *b, const char *name, const char *node, const char *extra, double v)
{
    char line[128];
    put(b, name);
    put(b, "{node=\"");
    atoll__metrics_put_label(b, node);
    put(b, "\"");
    if (extra != NULL)
        put(b, extra);
    snprintf(line, sizeof line, "} %.17g\n", v);
    put(b, line);
}

static uint64_t
sum_shards(size_t offset)
{
    uint64_t t = 0;
    for (int i = 0; i < METRICS_SHARDS; i++)
        t += get((_Atomic uint64_t *)((char *)&shards[i] + offset));
    return t;
}

static void
write_routes(atoll__buf *b, const char *node, bool errors)
{
    put_head(b, errors ? "atoll_request_errors_total" : "atoll_requests_total",
             errors ? "Client requests answered with an error, by route."
                    : "Client requests run by a handler, by route.",
             "counter");
    for (int i = 0; i <= ATOLL_METRICS_ROUTES_MAX; i++) {
        bool other = i == ROUTE_OTHER;
        if (!other && !atomic_load_explicit(&routes[i].ready, memory_order_acquire))
            continue;
        uint64_t n = errors ? sum_shards(offsetof(shard, errors) + (size_t)i * sizeof(_Atomic uint64_t))
                            : sum_shards(offsetof(shard, requests) + (size_t)i * sizeof(_Atomic uint64_t));
        if (other && n == 0)
            continue;
        atoll__buf label = ATOLL__BUF_INIT;
        put(&label, ",route=\"");
        atoll__metrics_put_label(&label, other ? "other" : routes[i].name);
        put(&label, "\"");
        atoll__buf_push(&label, '\0');
        put_sample(b, errors ? "atoll_request_errors_total" : "atoll_requests_total", node,
                   (const char *)atoll__buf_data(&label), (double)n);
        atoll__buf_fini(&label);
    }
}

/* The links one by one, each labelled with its peer (the sums are the gauges above). */
static void
write_peers(atoll__buf *b, const char *node)
{
    static const struct {
        const char *name, *help;
    } per_peer[] = {
        {"atoll_peer_link_up", "1 when the link to this peer is up (handshake done), else 0."},
        {"atoll_peer_link_queued_bytes", "Bytes waiting to be written on the link to this peer."},
        {"atoll_peer_link_pending_bytes", "Bytes of mail for this peer waiting for its link."},
    };
    atoll__metric_peer copy[ATOLL_METRICS_PEERS_MAX];
    pthread_mutex_lock(&peers_lock);
    int n = npeers;
    memcpy(copy, peer_table, (size_t)n * sizeof *copy);
    pthread_mutex_unlock(&peers_lock);
    for (size_t k = 0; k < sizeof per_peer / sizeof per_peer[0]; k++) {
        put_head(b, per_peer[k].name, per_peer[k].help, "gauge");
        for (int i = 0; i < n; i++) {
            atoll__buf label = ATOLL__BUF_INIT;
            put(&label, ",peer=\"");
            atoll__metrics_put_label(&label, copy[i].name);
            put(&label, "\"");
            atoll__buf_push(&label, '\0');
            double v = k == 0 ? (copy[i].up ? 1 : 0)
                       : k == 1 ? (double)copy[i].queued : (double)copy[i].pending;
            put_sample(b, per_peer[k].name, node, (const char *)atoll__buf_data(&label), v);
            atoll__buf_fini(&label);
        }
    }
}

void
atoll__metrics_write(atoll__buf *b, const char *node)
{
    uint64_t n[ATOLL_CTR_N];
    for (int c = 0; c < ATOLL_CTR_N; c++) {
        n[c] = sum_shards(offsetof(shard, ctr) + (size_t)c * sizeof(_Atomic uint64_t));
        if (ctrs[c].help != NULL)
            put_head(b, ctrs[c].name, ctrs[c].help, "counter");
        put_sample(b, ctrs[c].name, node, ctrs[c].label, (double)n[c]);
    }
    for (int g = 0; g < ATOLL_GAUGE_N; g++) {
        put_head(b, gauges[g].name, gauges[g].help, "gauge");
        put_sample(b, gauges[g].name, node, NULL, (double)get(&gauge_values[g]));
    }
    write_peers(b, node);
    /* Open now: opened less closed. The two sums are read at different moments, so a
     * close counted between them could read one below the truth for a scrape: never
     * below zero. */
    put_head(b, "atoll_sessions_open", "Client connections past the Pomelo handshake open now, "
             "by transport.", "gauge");
    uint64_t tcp = n[ATOLL_CTR_SESSIONS_TCP] > n[ATOLL_CTR_SESSIONS_TCP_CLOSED]
                       ? n[ATOLL_CTR_SESSIONS_TCP] - n[ATOLL_CTR_SESSIONS_TCP_CLOSED] : 0;
    uint64_t ws = n[ATOLL_CTR_SESSIONS_WS] > n[ATOLL_CTR_SESSIONS_WS_CLOSED]
                      ? n[ATOLL_CTR_SESSIONS_WS] - n[ATOLL_CTR_SESSIONS_WS_CLOSED] : 0;
    put_sample(b, "atoll_sessions_open", node, ",transport=\"tcp\"", (double)tcp);
    put_sample(b, "atoll_sessions_open", node, ",transport=\"websocket\"", (double)ws);
    write_routes(b, node, false);
    write_routes(b, node, true);
    for (int h = 0; h < ATOLL_HIST_N; h++) {
        const hist_def *d = &hists[h];
        char name[96], le[64];
        put_head(b, d->name, d->help, "histogram");
        snprintf(name, sizeof name, "%s_bucket", d->name);
        uint64_t cumulative = 0;
        for (int k = 0; k <= d->nbounds; k++) {
            cumulative += sum_shards(offsetof(shard, bucket) +
                                     ((size_t)h * (BOUNDS_MAX + 1) + (size_t)k) * sizeof(_Atomic uint64_t));
            if (k == d->nbounds)
                snprintf(le, sizeof le, ",le=\"+Inf\"");
            else if (d->seconds)
                snprintf(le, sizeof le, ",le=\"%g\"", (double)d->bounds[k] / 1e9);
            else
                snprintf(le, sizeof le, ",le=\"%llu\"", (unsigned long long)d->bounds[k]);
            put_sample(b, name, node, le, (double)cumulative);
        }
        uint64_t sum = sum_shards(offsetof(shard, sum) + (size_t)h * sizeof(_Atomic uint64_t));
        snprintf(name, sizeof name, "%s_sum", d->name);
        put_sample(b, name, node, NULL, d->seconds ? (double)sum / 1e9 : (double)sum);
        snprintf(name, sizeof name, "%s_count", d->name);
        put_sample(b, name, node, NULL, (double)cumulative);
    }
}

void
atoll__metrics_reset(void)
{
    memset(shards, 0, sizeof shards);
    memset(routes, 0, sizeof routes);
    memset(gauge_values, 0, sizeof gauge_values);
    atoll__metric_peers(NULL, 0);
}
