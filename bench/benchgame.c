/* benchgame.c -- the benchmark game: area-to-area calls and tick jitter, measured
 * inside the node, loaded as a shared object:
 *
 *     build/atoll run --game build/bench/libatoll_benchgame.so --workers 2
 *
 * Why a game of its own: a request/reply between two areas never leaves the node, so a
 * client cannot time it; the calling area counts its own replies instead. And tick
 * lateness (atoll_tick.late_ns) is only seen by on_tick.
 *
 * Areas, all created by init in this order (the node puts each new area on its
 * least-loaded worker; ctl.areas tells where each one landed):
 *
 *   ping   (pinger)  pinger.run {inflight, ms, to}: keeps `inflight` atoll_call's to
 *                    area `to` (default "pong"), route ponger.pong, in flight for `ms`
 *                    milliseconds (each reply sends the next call until the time is up),
 *                    then answers {code:200, calls, errors, seconds, per_s}. Internal.
 *   pong, pong2 (ponger)  ponger.pong: replies {} at once. Internal. Two of them so
 *                    that one may share ping's worker and one not (ctl.areas says which).
 *   tick   (ticker)  20 Hz; on_tick records late_ns. ticker.report answers
 *                    {code:200, ticks, p50_us, p99_us, max_us} and starts over. Internal.
 *   load-0, load-1 (load)  load.levelup {}: level += 1, money += 10 in the player's data,
 *                    answers {code:200, level, money}: a client-driven load (the work of
 *                    the quick game's area.levelup, without its pushes) to measure the
 *                    ticker's jitter under.
 *   ctl    (ctl)     where the control client lives, so that no player (and none of its
 *                    messages) sits in a measured area:
 *                      ctl.calls {inflight, ms, to}  -> forwards to ping's pinger.run
 *                      ctl.ticks {}                  -> forwards to tick's ticker.report
 *                      ctl.areas {}                  -> {code:200, <area id>: worker, ...}
 *
 * gate.entry {uid, room}: room "load" puts the player in load-0 or load-1 (by a hash of
 * the uid); anything else in ctl.
 *
 * Invariants: each area's C state (udata) is touched only by its own handlers, hooks
 * and callbacks, which the node runs on the area's worker one at a time; nothing here
 * locks.
 */
#include <atoll/atoll.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Deadline of one ping->pong call: far above any reply time; a call that hits it is
 * counted as an error, not waited for. */
#define PONG_TIMEOUT_MS 10000
/* Slack the control area gives a pinger run (or a report) over its own duration. */
#define CTL_SLACK_MS 30000
/* Upper bound of pinger.run's inflight: each call is one mailbox entry on each side. */
#define MAX_INFLIGHT 65536
#define MAX_RUN_MS 600000

static uint64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- ponger ------------------------------------------------------------------------ */

static int
pong_pong(atoll_req *req)
{
    return atoll_reply(req, NULL);
}

static const atoll_handler ponger_handlers[] = {
    {"pong", pong_pong, ATOLL_INTERNAL},
    {NULL, NULL, 0},
};

static const atoll_area_type ponger_type = {
    .name = "ponger",
    .handlers = ponger_handlers,
};

/* ---- pinger ------------------------------------------------------------------------ */

/* One pinger.run at a time per pinger area; a second one while it runs is refused. */
typedef struct ping_run {
    atoll_req *kept; /* the ctl's call, answered when the last call is back */
    char to[ATOLL_AREA_ID_MAX + 1];
    uint64_t t0, deadline;
    uint64_t calls, errors;
    int outstanding;
    int first_error; /* the first error a call returned, for the log */
} ping_run;

static void on_pong(atoll_area *a, int status, atoll_value *reply, void *udata);

/* Sends one call; false when atoll_call refused it (then no callback will come). */
static int
send_ping(atoll_area *a, ping_run *r)
{
    /* No body: a NULL body is an empty one, so no value is built per call. */
    int err = atoll_call(a, r->to, "ponger.pong", NULL, PONG_TIMEOUT_MS, on_pong, r);
    if (err != ATOLL_OK) {
        if (r->first_error == 0)
            r->first_error = err;
        r->errors++;
        return 0;
    }
    r->outstanding++;
    return 1;
}

static void
finish_run(atoll_area *a, ping_run *r)
{
    double s = (double)(now_ns() - r->t0) / 1e9;
    if (r->first_error != 0)
        atoll_log(ATOLL_LOG_WARN, "pinger %s: %llu calls failed, the first with %s", atoll_area_id(a),
                  (unsigned long long)r->errors, atoll_err_name(r->first_error));
    atoll_reply(r->kept, atoll_pack("{s:i, s:I, s:I, s:f, s:f}", "code", 200, "calls",
                                    (int64_t)r->calls, "errors", (int64_t)r->errors, "seconds", s,
                                    "per_s", s > 0 ? (double)r->calls / s : 0.0));
    atoll_area_set_udata(a, NULL);
    free(r);
}

static void
on_pong(atoll_area *a, int status, atoll_value *reply, void *udata)
{
    ping_run *r = udata;
    r->outstanding--;
    if (status == ATOLL_OK) {
        r->calls++;
    } else {
        if (r->first_error == 0)
            r->first_error = status;
        r->errors++;
    }
    /* The area being destroyed cancels the calls: stop, do not send more. */
    if (status != ATOLL_ECANCELED && now_ns() < r->deadline && send_ping(a, r))
        return;
    if (r->outstanding == 0)
        finish_run(a, r);
}

static int
ping_run_handler(atoll_req *req)
{
    atoll_area *a = atoll_req_area(req);
    if (atoll_area_udata(a) != NULL)
        return atoll_reply_error(req, 409, "a run is in progress");
    atoll_value *b = atoll_req_body(req);
    int64_t inflight = atoll_get_int(b, "inflight", 1);
    int64_t ms = atoll_get_int(b, "ms", 1000);
    const char *to = atoll_get_str(b, "to", "pong");
    if (inflight < 1 || inflight > MAX_INFLIGHT || ms < 1 || ms > MAX_RUN_MS ||
        strlen(to) > ATOLL_AREA_ID_MAX)
        return atoll_reply_error(req, 400, "inflight 1..%d, ms 1..%d, to an area id", MAX_INFLIGHT,
                                 MAX_RUN_MS);
    ping_run *r = calloc(1, sizeof *r);
    if (r == NULL)
        return ATOLL_ENOMEM;
    memcpy(r->to, to, strlen(to) + 1);
    r->t0 = now_ns();
    r->deadline = r->t0 + (uint64_t)ms * 1000000u;
    for (int64_t i = 0; i < inflight; i++)
        if (!send_ping(a, r))
            break;
    if (r->outstanding == 0) { /* not even one call went out */
        int err = r->first_error;
        free(r);
        return atoll_reply_error(req, 500, "atoll_call to %s: %s", to, atoll_strerror(err));
    }
    r->kept = atoll_req_keep(req, 0);
    atoll_area_set_udata(a, r);
    return ATOLL_OK;
}

static void
ping_destroy(atoll_area *a)
{
    /* Its calls were cancelled (each callback saw ATOLL_ECANCELED and the last one
     * answered and freed the run), so normally nothing is left here. */
    free(atoll_area_udata(a));
}

static const atoll_handler pinger_handlers[] = {
    {"run", ping_run_handler, ATOLL_INTERNAL},
    {NULL, NULL, 0},
};

static const atoll_area_type pinger_type = {
    .name = "pinger",
    .handlers = pinger_handlers,
    .on_destroy = ping_destroy,
};

/* ---- ticker ------------------------------------------------------------------------ */

/* Every tick's lateness since the last report: at 20 Hz an hour is 72,000 samples
 * (576 KB), so they are kept exactly and sorted at report time. */
typedef struct tick_log {
    uint64_t *late;
    size_t n, cap;
} tick_log;

static int
tick_create(atoll_area *a, const atoll_value *init)
{
    tick_log *l = calloc(1, sizeof *l);
    if (l == NULL)
        return ATOLL_ENOMEM;
    atoll_area_set_udata(a, l);
    return ATOLL_OK;
}

static void
tick_destroy(atoll_area *a)
{
    tick_log *l = atoll_area_udata(a);
    if (l != NULL)
        free(l->late);
    free(l);
}

static void
tick_tick(atoll_area *a, const atoll_tick *t)
{
    tick_log *l = atoll_area_udata(a);
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        uint64_t *p = realloc(l->late, cap * sizeof *p);
        if (p == NULL)
            return; /* the sample is lost; the report's tick count shows it */
        l->late = p;
        l->cap = cap;
    }
    l->late[l->n++] = t->late_ns;
}

static int
cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return (a > b) - (a < b);
}

/* Nearest-rank percentile of n sorted samples. */
static double
pct_us(const uint64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t rank = (size_t)(p * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return (double)v[rank - 1] / 1e3;
}

static int
tick_report(atoll_req *req)
{
    tick_log *l = atoll_area_udata(atoll_req_area(req));
    qsort(l->late, l->n, sizeof *l->late, cmp_u64);
    int err = atoll_reply(req, atoll_pack("{s:i, s:I, s:f, s:f, s:f}", "code", 200, "ticks",
                                          (int64_t)l->n, "p50_us", pct_us(l->late, l->n, 0.50),
                                          "p99_us", pct_us(l->late, l->n, 0.99), "max_us",
                                          l->n ? (double)l->late[l->n - 1] / 1e3 : 0.0));
    l->n = 0;
    return err;
}

static const atoll_handler ticker_handlers[] = {
    {"report", tick_report, ATOLL_INTERNAL},
    {NULL, NULL, 0},
};

static const atoll_area_type ticker_type = {
    .name = "ticker",
    .handlers = ticker_handlers,
    .tick_hz = 20,
    .on_tick = tick_tick,
    .on_create = tick_create,
    .on_destroy = tick_destroy,
};

/* ---- load -------------------------------------------------------------------------- */

static int
load_levelup(atoll_req *req)
{
    atoll_player *p = atoll_req_player(req);
    if (p == NULL)
        return ATOLL_EINVAL;
    atoll_value *d = atoll_player_data(p);
    int64_t level = atoll_incr(d, "level", 1);
    int64_t money = atoll_incr(d, "money", 10);
    return atoll_reply(req,
                       atoll_pack("{s:i, s:I, s:I}", "code", 200, "level", level, "money", money));
}

static const atoll_handler load_handlers[] = {
    {"levelup", load_levelup, 0},
    {NULL, NULL, 0},
};

static const atoll_area_type load_type = {
    .name = "load",
    .handlers = load_handlers,
};

/* ---- ctl --------------------------------------------------------------------------- */

/* A call's reply is lent to the callback: the client gets a copy. */
static void
on_forwarded(atoll_area *a, int status, atoll_value *reply, void *udata)
{
    atoll_req *kept = udata;
    if (status != ATOLL_OK)
        atoll_reply_error(kept, 500, "%s", atoll_strerror(status));
    else
        atoll_reply(kept, atoll_copy(reply));
}

static int
ctl_forward(atoll_req *req, const char *to, const char *route, uint32_t timeout_ms)
{
    /* Kept before the call: the callback gets the handle as its udata (it never runs
     * inside atoll_call, so the order is only about what to pass). */
    atoll_req *kept = atoll_req_keep(req, 0);
    int err = atoll_call(atoll_req_area(req), to, route, atoll_copy(atoll_req_body(req)),
                         timeout_ms, on_forwarded, kept);
    if (err != ATOLL_OK)
        atoll_reply_error(kept, 500, "atoll_call to %s: %s", to, atoll_strerror(err));
    return ATOLL_OK;
}

static int
ctl_calls(atoll_req *req)
{
    int64_t ms = atoll_get_int(atoll_req_body(req), "ms", 1000);
    if (ms < 1 || ms > MAX_RUN_MS)
        return atoll_reply_error(req, 400, "ms 1..%d", MAX_RUN_MS);
    return ctl_forward(req, "ping", "pinger.run", (uint32_t)ms + CTL_SLACK_MS);
}

static int
ctl_ticks(atoll_req *req)
{
    return ctl_forward(req, "tick", "ticker.report", CTL_SLACK_MS);
}

#define MAX_AREAS 64

static int
ctl_areas(atoll_req *req)
{
    atoll_area_stats st[MAX_AREAS];
    size_t n = atoll_node_areas(atoll_area_node(atoll_req_area(req)), st, MAX_AREAS);
    if (n > MAX_AREAS)
        n = MAX_AREAS;
    atoll_value *out = atoll_pack("{s:i}", "code", 200);
    for (size_t i = 0; i < n; i++)
        atoll_set_int(out, st[i].id, st[i].worker);
    return atoll_reply(req, out);
}

static const atoll_handler ctl_handlers[] = {
    {"calls", ctl_calls, 0},
    {"ticks", ctl_ticks, 0},
    {"areas", ctl_areas, ATOLL_QUERY},
    {NULL, NULL, 0},
};

static const atoll_area_type ctl_type = {
    .name = "ctl",
    .handlers = ctl_handlers,
};

/* ---- the game ---------------------------------------------------------------------- */

static int
bench_entry(atoll_entry *e)
{
    const char *room = atoll_get_str(e->body, "room", "");
    if (strcmp(room, "load") == 0) {
        uint32_t h = 2166136261u; /* FNV-1a of the uid */
        for (const char *c = e->uid; *c; c++)
            h = (h ^ (uint8_t)*c) * 16777619u;
        strcpy(e->area_id, h & 1 ? "load-1" : "load-0");
        e->area_type = "load";
    } else {
        strcpy(e->area_id, "ctl");
        e->area_type = "ctl";
    }
    return ATOLL_OK;
}

static int
bench_init(atoll_node *n)
{
    static const char *const areas[][2] = {
        {"pinger", "ping"}, {"ponger", "pong"}, {"ponger", "pong2"}, {"ticker", "tick"},
        {"ctl", "ctl"},     {"load", "load-0"}, {"load", "load-1"},
    };
    for (size_t i = 0; i < sizeof areas / sizeof areas[0]; i++) {
        int err = atoll_area_create(n, areas[i][0], areas[i][1], NULL);
        if (err != ATOLL_OK) {
            atoll_log(ATOLL_LOG_ERROR, "benchgame: cannot create area %s: %s", areas[i][1],
                      atoll_strerror(err));
            return err;
        }
    }
    return ATOLL_OK;
}

static const atoll_area_type *const bench_types[] = {
    &pinger_type, &ponger_type, &ticker_type, &load_type, &ctl_type, NULL,
};

static const atoll_game bench_game = {
    .name = "bench",
    .area_types = bench_types,
    .entry = bench_entry,
    .init = bench_init,
};

ATOLL_GAME_MODULE(bench_game)
