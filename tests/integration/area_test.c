/* area_test.c -- the area runtime against real nodes running the test game
 * (tests/games/testgame.c, loaded with --game $ATOLL_TESTGAME) on two workers, through
 * the C client library: the order of one session's requests, areas of two workers in
 * parallel and one area in series, timers, ticks (missed ones skipped) and command
 * queues, handler errors, calls between areas (deadlines past the timing wheel, a
 * target created again while the call travels), moves (state, connection and order
 * kept, also when the fence comes late), duplicate entry, creation, destruction and
 * the empty grace, entry refused by on_enter, the area manager, the same game linked
 * into a program of its own, and kicks.
 *
 * Replies are parsed with atoll_parse and checked field by field. Everything waits for
 * events with timeouts; nothing sleeps longer than a timing check needs.
 */
#include "game_client.h"
#include "harness.h"
#include "test.h"

#include <stdint.h>

/* ---- helpers: each takes the caller's line, so a failure names the test's line ---- */

static void
start_game(test_node *n)
{
    /* A closed client's player leaves at once: these tests count players. Resume has
     * its own tests (resume_test.c). */
    node_start_testgame(n, (const char *[]){"--set", "session.resume_ms=0", NULL});
}

/* Connects and enters as uid in area (NULL: the game's default t-1) of type (NULL:
 * "t"); the entry must be answered {"code":200,"uid":uid,"area":area}. */
static atollc_sync *
enter_at_(test_node *n, const char *uid, const char *area, const char *type, int line)
{
    const char *fields[5] = {NULL};
    int k = 0;
    if (area) {
        fields[k++] = "area";
        fields[k++] = area;
    }
    if (type) {
        fields[k++] = "type";
        fields[k++] = type;
    }
    char want[256];
    snprintf(want, sizeof want, "{\"code\":200,\"uid\":\"%s\",\"area\":\"%s\"}", uid,
             area ? area : "t-1");
    return gc_enter_(n, uid, fields, want, __FILE__, line);
}
#define ENTER_AT(n, uid, area, type) enter_at_((n), (uid), (area), (type), __LINE__)

/* Sends t.incr; the answer must be exactly code 200 with count n in area. */
static void
expect_incr_(atollc_sync *s, int64_t n, const char *area, int line)
{
    char want[128];
    snprintf(want, sizeof want, "{\"code\":200,\"n\":%lld,\"area\":\"%s\"}", (long long)n, area);
    gc_expect_reply_(s, "t.incr", "{}", want, __FILE__, line);
}
#define EXPECT_INCR(s, n, area) expect_incr_((s), (n), (area), __LINE__)

/* Sends route (t.info, e.info); the answer must be exactly code 200 with these area
 * stats. */
static void
expect_info_(atollc_sync *s, const char *route, const char *area, int players, int entered,
             int left, int line)
{
    char want[192];
    snprintf(want, sizeof want,
             "{\"code\":200,\"area\":\"%s\",\"players\":%d,\"entered\":%d,\"left\":%d}", area,
             players, entered, left);
    gc_expect_reply_(s, route, "{}", want, __FILE__, line);
}
#define EXPECT_INFO(s, route, area, players, entered, left)                                \
    expect_info_((s), (route), (area), (players), (entered), (left), __LINE__)

/* Sends t.create body; the answer must be code 200 with this result ("OK", "EEXIST"...). */
static void
expect_create_(atollc_sync *s, const char *body, const char *result, int line)
{
    char want[128];
    snprintf(want, sizeof want, "{\"code\":200,\"result\":\"%s\"}", result);
    gc_expect_reply_(s, "t.create", body, want, __FILE__, line);
}
#define EXPECT_CREATE(s, body, result) expect_create_((s), (body), (result), __LINE__)

/* Sends route, whose handler ends the sender's session: the server may close it before
 * the request's own answer leaves, so the answer is {"code":200} or none (ECLOSED);
 * then the KICK {"reason":reason} must come. */
static void
request_then_kicked_(atollc_sync *s, const char *route, const char *reason, int line)
{
    char *resp = NULL;
    int rc = atollc_sync_request(s, route, "{}", &resp, 5000);
    if (rc != ATOLLC_OK && rc != ATOLL_ECLOSED)
        gc_fail_at(__FILE__, line, route, atoll_strerror(rc), "a response or ECLOSED");
    if (rc == ATOLLC_OK && (resp == NULL || strcmp(resp, "{\"code\":200}") != 0))
        gc_fail_at(__FILE__, line, route, resp, "{\"code\":200}");
    free(resp);
    gc_expect_kick_(s, reason, __FILE__, line);
}
#define REQUEST_THEN_KICKED(s, route, reason) request_then_kicked_((s), (route), (reason), __LINE__)

/* Asks t.info until its answer counts `players` players, up to 50 times 20 ms apart;
 * returns the last answer (the caller unrefs it). */
static atoll_value *
poll_players_(atollc_sync *s, int64_t players, int line)
{
    atoll_value *v = NULL;
    for (int i = 0; i < 50; i++) {
        atoll_unref(v);
        v = gc_request_value_(s, "t.info", "{}", __FILE__, line);
        if (jint(v, "players") == players)
            break;
        atollc_sync_pump(s, 20);
    }
    return v;
}
#define POLL_PLAYERS(s, players) poll_players_((s), (players), __LINE__)

/* The entry of area id in a t.areas answer, borrowed from it, or NULL. */
static atoll_value *
find_area(const atoll_value *areas, const char *id)
{
    atoll_value *list = jget(areas, "areas");
    for (size_t i = 0; i < atoll_len(list); i++)
        if (jstr(atoll_at(list, i), "id") && strcmp(jstr(atoll_at(list, i), "id"), id) == 0)
            return atoll_at(list, i);
    return NULL;
}

/* Polls t.areas until area id is listed (want 1) or not listed (want 0), up to ms;
 * returns whether it happened. */
static bool
wait_listed_(atollc_sync *s, const char *id, int want, int ms, int line)
{
    uint64_t deadline = gc_now_us() + (uint64_t)ms * 1000;
    for (;;) {
        atoll_value *v = gc_request_value_(s, "t.areas", "{}", __FILE__, line);
        bool listed = find_area(v, id) != NULL;
        atoll_unref(v);
        if (listed == (want != 0))
            return true;
        if (gc_now_us() >= deadline)
            return false;
        atollc_sync_pump(s, 20);
    }
}
#define WAIT_LISTED(s, id, want, ms) wait_listed_((s), (id), (want), (ms), __LINE__)

/* ---- pipelining: requests sent before any answer, through the async API ------------ */

enum { MAX_PIPE = 256 };

typedef struct slot {
    int done;
    int status;
    int order;        /* arrival rank, from 0 */
    uint64_t at_us;   /* arrival time */
    char body[512];
} slot;

static slot slots[MAX_PIPE];
static int arrivals;

static void
on_slot(atollc_client *c, int status, const char *body, size_t len, void *ud)
{
    (void)c;
    slot *sl = ud;
    sl->done = 1;
    sl->status = status;
    sl->order = arrivals++;
    sl->at_us = gc_now_us();
    snprintf(sl->body, sizeof sl->body, "%.*s", status == ATOLLC_OK ? (int)len : 0,
             status == ATOLLC_OK ? body : "");
}

static void
slots_reset(void)
{
    memset(slots, 0, sizeof slots);
    arrivals = 0;
}

/* Queues a request whose answer lands in slots[i]; it leaves at the next loop turn. */
static void
send_async_(atollc_sync *s, int i, const char *route, const char *body, int line)
{
    if (i >= MAX_PIPE)
        test_fail_(__FILE__, line, "too many pipelined requests");
    if (atollc_request(atollc_sync_client(s), route, body, strlen(body), on_slot, &slots[i]) !=
        ATOLLC_OK)
        gc_fail_at(__FILE__, line, route, "request refused", "queued");
}
#define SEND_ASYNC(s, i, route, body) send_async_((s), (i), (route), (body), __LINE__)

/* Runs the client's loop until `count` answers came, up to ms. (One client only: the
 * sync wrapper's loop runs only inside its calls, so several clients are pumped on a
 * loop of the test's own below.) */
static void
pump_until_(atollc_sync *s, int count, int ms, int line)
{
    uint64_t deadline = gc_now_us() + (uint64_t)ms * 1000;
    while (arrivals < count && gc_now_us() < deadline)
        atollc_sync_pump(s, 5);
    if (arrivals < count) {
        char got[32];
        snprintf(got, sizeof got, "%d answers", arrivals);
        gc_fail_at(__FILE__, line, "pipelined answers", got, "all of them");
    }
}
#define PUMP_UNTIL(s, count, ms) pump_until_((s), (count), (ms), __LINE__)

/* The parsed answer in slots[i]; fails unless it came with status OK. */
static atoll_value *
slot_value_(int i, int line)
{
    if (!slots[i].done || slots[i].status != ATOLLC_OK)
        gc_fail_at(__FILE__, line, "pipelined answer",
                   slots[i].done ? atoll_strerror(slots[i].status) : "none", "a response");
    return gc_parse_(slots[i].body, __FILE__, line);
}
#define SLOT_VALUE(i) slot_value_((i), __LINE__)

/* ---- tests ---------------------------------------------------------------------- */

TEST(order_of_one_sessions_requests_is_kept)
{
    enum { N = 200 };
    test_node n;
    start_game(&n);
    atollc_sync *a = ENTER_AT(&n, "ord", NULL, NULL);
    slots_reset();
    for (int i = 0; i < N; i++)
        SEND_ASYNC(a, i, "t.incr", "{}");
    PUMP_UNTIL(a, N, 10000);
    for (int i = 0; i < N; i++) {
        atoll_value *v = SLOT_VALUE(i);
        ASSERT_EQ(slots[i].order, i);
        ASSERT_EQ(jint(v, "code"), 200);
        ASSERT_EQ(jint(v, "n"), i + 1);
        ASSERT_STR(jstr(v, "area"), "t-1");
        atoll_unref(v);
    }
    /* The player's data holds the last count. */
    atoll_value *d = REQUEST_VALUE(a, "t.data", "{}");
    ASSERT_EQ(jint(d, "data.n"), N);
    atoll_unref(d);
    atollc_sync_free(a);
    node_stop(&n);
}

/* ---- several clients on one loop of the test's own, for requests that must leave
 * together and answers timed as they come (the sync wrapper runs one private loop per
 * client, only while it is called) ---- */

static uv_loop_t aloop;
static uv_timer_t aguard;
static bool aguard_fired;

static void
on_aguard(uv_timer_t *t)
{
    (void)t;
    aguard_fired = true;
}

static void
aloop_init(void)
{
    ASSERT_EQ(uv_loop_init(&aloop), 0);
    uv_timer_init(&aloop, &aguard);
}

/* Runs the loop until *done becomes true (or, when done is NULL, `count` answers came),
 * up to ms; returns whether it happened. */
static bool
arun(const int *done, int count, int ms)
{
    uv_update_time(&aloop);
    aguard_fired = false;
    uv_timer_start(&aguard, on_aguard, (uint64_t)ms, 0);
    while (!(done ? *done : arrivals >= count) && !aguard_fired)
        uv_run(&aloop, UV_RUN_ONCE);
    uv_timer_stop(&aguard);
    return done ? *done : arrivals >= count;
}

static void
on_aconnect(atollc_client *c, int status, void *ud)
{
    (void)c;
    int *st = ud;
    *st = status == ATOLLC_OK ? 1 : -1;
}

/* Connects an async client on aloop and enters as uid in area (type t); the entry must
 * be answered {"code":200,...,"area":area}. */
static atollc_client *
aenter_(test_node *n, const char *uid, const char *area, int line)
{
    atollc_opts o;
    atollc_opts_init(&o);
    o.port = n->port;
    atollc_client *c = NULL;
    if (atollc_client_new(&aloop, &o, &c) != ATOLLC_OK)
        test_fail_(__FILE__, line, "atollc_client_new");
    int st = 0;
    if (atollc_connect(c, on_aconnect, &st) != ATOLLC_OK || !arun(&st, 0, 7000) || st != 1)
        test_fail_(__FILE__, line, "async connect");
    char body[160], want[200];
    snprintf(body, sizeof body, "{\"uid\":\"%s\",\"area\":\"%s\"}", uid, area);
    snprintf(want, sizeof want, "{\"code\":200,\"uid\":\"%s\",\"area\":\"%s\"}", uid, area);
    slot sl = {0};
    if (atollc_request(c, "gate.entry", body, strlen(body), on_slot, &sl) != ATOLLC_OK ||
        !arun(&sl.done, 0, 5000))
        test_fail_(__FILE__, line, "async gate.entry");
    arrivals = 0;
    gc_strip_resume(sl.body);
    if (sl.status != ATOLLC_OK || strcmp(sl.body, want) != 0)
        gc_fail_at(__FILE__, line, "gate.entry", sl.body, want);
    return c;
}
#define AENTER(n, uid, area) aenter_((n), (uid), (area), __LINE__)

/* Queues a request on an async client, answered into slots[i]. */
static void
asend_(atollc_client *c, int i, const char *route, const char *body, int line)
{
    if (i >= MAX_PIPE ||
        atollc_request(c, route, body, strlen(body), on_slot, &slots[i]) != ATOLLC_OK)
        gc_fail_at(__FILE__, line, route, "request refused", "queued");
}
#define ASEND(c, i, route, body) asend_((c), (i), (route), (body), __LINE__)

/* Frees the clients (closing them) and the loop. */
static void
aloop_fini(atollc_client **cs, int n)
{
    for (int i = 0; i < n; i++)
        if (cs[i] != NULL)
            atollc_client_free(cs[i]);
    uv_close((uv_handle_t *)&aguard, NULL);
    uv_run(&aloop, UV_RUN_DEFAULT);
    ASSERT_EQ(uv_loop_close(&aloop), 0);
}

/* Sends t.spin {ms} from a and b in one loop turn; returns the server's intervals and
 * the wall time until both answers came. */
static void
spin_pair(atollc_client *a, atollc_client *b, int ms, int64_t iv[2][2], uint64_t *wall_us)
{
    char body[32];
    snprintf(body, sizeof body, "{\"ms\":%d}", ms);
    slots_reset();
    ASEND(a, 0, "t.spin", body);
    ASEND(b, 1, "t.spin", body);
    uint64_t t0 = gc_now_us();
    if (!arun(NULL, 2, 5000))
        test_fail_(__FILE__, __LINE__, "t.spin not answered");
    for (int i = 0; i < 2; i++) {
        atoll_value *v = SLOT_VALUE(i);
        ASSERT_EQ(jint(v, "code"), 200);
        iv[i][0] = jint(v, "start_us");
        iv[i][1] = jint(v, "end_us");
        ASSERT(iv[i][1] - iv[i][0] >= (int64_t)ms * 1000);
        atoll_unref(v);
    }
    uint64_t last = slots[0].at_us > slots[1].at_us ? slots[0].at_us : slots[1].at_us;
    *wall_us = last - t0;
}

/* Which worker serves each candidate's connection. The candidates are players of t-2
 * (worker 1). While worker 0 spins 250 ms for x, a player of t-1, each candidate sends
 * t.info: one whose connection is on worker 1 is answered at once, one on worker 0
 * only after the spin (a spinning worker reads none of its sockets). worker[i] gets 0,
 * 1, or -1 when the round trip said neither clearly. */
static void
probe_workers(atollc_client *x, atollc_client **cand, int nc, int *worker)
{
    slots_reset();
    ASEND(x, 0, "t.spin", "{\"ms\":250}");
    int never = 0;
    arun(&never, 0, 40); /* the spin has begun */
    uint64_t t0 = gc_now_us();
    for (int i = 0; i < nc; i++)
        ASEND(cand[i], 1 + i, "t.info", "{}");
    if (!arun(NULL, nc + 1, 5000))
        test_fail_(__FILE__, __LINE__, "probe not answered");
    for (int i = 0; i < nc; i++) {
        atoll_value *v = SLOT_VALUE(1 + i);
        ASSERT_STR(jstr(v, "area"), "t-2");
        atoll_unref(v);
        uint64_t rtt = slots[1 + i].at_us - t0;
        worker[i] = rtt < 80000 ? 1 : rtt > 130000 ? 0 : -1;
    }
}

TEST(areas_on_two_workers_run_in_parallel)
{
    test_node n;
    start_game(&n);
    aloop_init();
    enum { NC = 8, ROUNDS = 4 };
    atollc_client *all[1 + NC * ROUNDS] = {0};
    int nall = 0;
    atollc_client *x = all[nall++] = AENTER(&n, "px", "t-1");
    /* t-1 and t-2 live on different workers. */
    slots_reset();
    ASEND(x, 0, "t.areas", "{}");
    ASSERT(arun(NULL, 1, 5000));
    atoll_value *areas = SLOT_VALUE(0);
    ASSERT(find_area(areas, "t-1") && find_area(areas, "t-2"));
    ASSERT_EQ(jint(find_area(areas, "t-1"), "worker"), 0);
    ASSERT_EQ(jint(find_area(areas, "t-2"), "worker"), 1);
    atoll_unref(areas);

    /* A request whose connection is on the other area's worker could wait for that
     * area's spin whatever the areas do (its worker reads nothing while it spins). So
     * take a with its connection on worker 0 (its area will be t-1) and b on worker 1
     * (area t-2): each request then needs only its own area's worker. The kernel
     * spreads connections over the workers (SO_REUSEPORT); probe until both are found. */
    atollc_client *a = NULL, *b = NULL;
    for (int round = 0; round < ROUNDS && (a == NULL || b == NULL); round++) {
        atollc_client *cand[NC];
        int worker[NC];
        for (int i = 0; i < NC; i++) {
            char uid[32];
            snprintf(uid, sizeof uid, "c%d-%d", round, i);
            cand[i] = all[nall++] = AENTER(&n, uid, "t-2");
        }
        probe_workers(x, cand, NC, worker);
        for (int i = 0; i < NC; i++) {
            if (a == NULL && worker[i] == 0)
                a = cand[i];
            else if (b == NULL && worker[i] == 1)
                b = cand[i];
        }
    }
    if (a == NULL || b == NULL)
        test_fail_(__FILE__, __LINE__, "found no connection on one of the two workers");
    slots_reset();
    ASEND(a, 0, "t.move", "{\"to\":\"t-1\"}");
    ASEND(a, 1, "t.info", "{}");
    ASSERT(arun(NULL, 2, 5000));
    ASSERT_STR(slots[0].body, "{\"code\":200,\"to\":\"t-1\"}");
    ASSERT(strncmp(slots[1].body, "{\"code\":200,\"area\":\"t-1\"", 24) == 0);

    /* Both spin 300 ms at once: the two intervals overlap, and both are done in less
     * than the 600 ms they would take one after the other. */
    int64_t iv[2][2];
    uint64_t wall;
    spin_pair(a, b, 300, iv, &wall);
    if (!(iv[0][0] < iv[1][1] && iv[1][0] < iv[0][1]) || wall >= 550000) {
        fprintf(stderr, "  t-1 [%lld, %lld], t-2 [%lld, %lld] (us), wall %llu us\n",
                (long long)iv[0][0], (long long)iv[0][1], (long long)iv[1][0],
                (long long)iv[1][1], (unsigned long long)wall);
        test_fail_(__FILE__, __LINE__, "t-1 and t-2 did not spin in parallel");
    }

    /* Two players of one area (a and x in t-1): its handlers run one at a time. */
    spin_pair(a, x, 200, iv, &wall);
    if (!(iv[0][1] <= iv[1][0] || iv[1][1] <= iv[0][0])) {
        fprintf(stderr, "  a [%lld, %lld], x [%lld, %lld] (us)\n", (long long)iv[0][0],
                (long long)iv[0][1], (long long)iv[1][0], (long long)iv[1][1]);
        test_fail_(__FILE__, __LINE__, "two handlers of t-1 overlapped");
    }
    ASSERT(wall >= 400000);
    aloop_fini(all, nall);
    node_stop(&n);
}

TEST(timers_fire_as_set)
{
    test_node n;
    start_game(&n);
    atollc_sync *a = ENTER_AT(&n, "tim", NULL, NULL);
    EXPECT_PUSH(a, "onEnter", "{\"area\":\"t-1\",\"players\":1}");

    /* Once, after 100 ms. */
    EXPECT_REPLY(a, "t.timer", "{\"ms\":100}", "{\"code\":200}");
    atoll_value *p = WAIT_PUSH(a, "onTimer", 2000);
    ASSERT_EQ(jint(p, "left"), 0);
    ASSERT(jint(p, "elapsed_us") >= 95000 && jint(p, "elapsed_us") <= 400000);
    atoll_unref(p);
    EXPECT_NO_PUSH(a, 150); /* and only once */

    /* Every 30 ms, five times, then the game cancels it. */
    EXPECT_REPLY(a, "t.timer", "{\"ms\":30,\"every\":true,\"count\":5}", "{\"code\":200}");
    int64_t prev = 0;
    for (int i = 0; i < 5; i++) {
        p = WAIT_PUSH(a, "onTimer", 2000);
        ASSERT_EQ(jint(p, "left"), 4 - i);
        int64_t el = jint(p, "elapsed_us");
        ASSERT(el > prev);
        ASSERT(el >= (int64_t)(i + 1) * 30000 - 5000);
        if (i > 0)
            ASSERT(el - prev >= 20000); /* a period, not a burst */
        prev = el;
        atoll_unref(p);
    }
    ASSERT(prev <= 5 * 30000 + 400000);
    EXPECT_NO_PUSH(a, 150);

    /* A cancelled timer never fires; cancelling it again finds nothing. */
    EXPECT_REPLY(a, "t.cancel", "{}", "{\"code\":200,\"first\":\"OK\",\"second\":\"ENOENT\"}");
    EXPECT_NO_PUSH(a, 100);
    atollc_sync_free(a);
    node_stop(&n);
}

TEST(ticks_and_command_queue)
{
    test_node n;
    start_game(&n);
    atollc_sync *a = ENTER_AT(&n, "tick", "g-1", "g");

    /* 20 Hz: about 10 ticks in 500 ms, 50 ms apart. */
    atoll_value *l1 = REQUEST_VALUE(a, "g.log", "{}");
    ASSERT_EQ(jint(l1, "code"), 200);
    uint64_t t1 = gc_now_us();
    atollc_sync_pump(a, 500);
    atoll_value *l2 = REQUEST_VALUE(a, "g.log", "{}");
    uint64_t t2 = gc_now_us();
    int64_t dticks = jint(l2, "ticks") - jint(l1, "ticks");
    int64_t expect = (int64_t)((t2 - t1) / 50000);
    if (dticks < expect - 4 || dticks > expect + 4) {
        fprintf(stderr, "  %lld ticks in %llu us\n", (long long)dticks,
                (unsigned long long)(t2 - t1));
        test_fail_(__FILE__, __LINE__, "not 20 ticks a second");
    }
    ASSERT(jint(l2, "dt_ms") >= 45 && jint(l2, "dt_ms") <= 55);
    ASSERT_EQ(atoll_len(jget(l2, "log")), 0);
    atoll_unref(l1);
    atoll_unref(l2);

    /* Five commands pipelined: each is applied at a tick after the ones seen before
     * they were sent, in arrival order, and answered then. */
    atoll_value *l0 = REQUEST_VALUE(a, "g.log", "{}");
    int64_t before = jint(l0, "ticks");
    atoll_unref(l0);
    slots_reset();
    for (int i = 0; i < 5; i++) {
        char body[32];
        snprintf(body, sizeof body, "{\"v\":%d}", i + 1);
        SEND_ASYNC(a, i, "g.cmd", body);
    }
    /* A query sent right behind them runs at once, before the next tick applied them:
     * it is answered first and sees none of them. */
    SEND_ASYNC(a, 5, "g.log", "{}");
    PUMP_UNTIL(a, 6, 5000);
    ASSERT_EQ(slots[5].order, 0);
    atoll_value *q = SLOT_VALUE(5);
    ASSERT_EQ(atoll_len(jget(q, "log")), 0);
    int64_t seen = jint(q, "ticks");
    ASSERT(seen >= before);
    atoll_unref(q);
    /* All five were queued when the query ran after tick `seen`, so tick seen + 1
     * applies them, before its on_tick: each reads the count on_tick left at tick
     * `seen` and answers seen + 1 (had on_tick run first, seen + 2). */
    int64_t ticks[5];
    for (int i = 0; i < 5; i++) {
        ASSERT_EQ(slots[i].order, i + 1);
        atoll_value *v = SLOT_VALUE(i);
        ASSERT_EQ(jint(v, "code"), 200);
        ticks[i] = jint(v, "tick");
        ASSERT_EQ(ticks[i], seen + 1);
        atoll_unref(v);
    }
    atoll_value *lg = REQUEST_VALUE(a, "g.log", "{}");
    ASSERT_EQ(atoll_len(jget(lg, "log")), 5);
    for (int i = 0; i < 5; i++) {
        char path[32];
        snprintf(path, sizeof path, "log.%d.v", i);
        ASSERT_EQ(jint(lg, path), i + 1);
        snprintf(path, sizeof path, "log.%d.tick", i);
        ASSERT_EQ(jint(lg, path), ticks[i]);
    }
    ASSERT(jint(lg, "ticks") >= ticks[4]);
    atoll_unref(lg);

    /* A query between ticks answers without waiting for one (loosely timed). */
    uint64_t q0 = gc_now_us();
    atoll_value *lq = REQUEST_VALUE(a, "g.log", "{}");
    ASSERT(gc_now_us() - q0 < 1000000);
    atoll_unref(lq);
    atollc_sync_free(a);
    node_stop(&n);
}

/* A worker busy for 16 tick periods (g.spin: until halfway between two due times)
 * neither runs the ticks it missed in a burst once it is free nor starts a schedule of
 * its own from then: the next tick is the next one due on the old schedule.
 * Whatever the load, ticks after the busy spell cannot outnumber the periods that
 * passed after it plus 2 (a late one, then one per due time, each due after the tick
 * before it); a burst of catch-up ticks would add about 16. And the due time of every
 * tick (g_tick: its start less its lateness) stays a whole number of periods after
 * the one before the spell; a schedule restarted at the end of the spell would be
 * half a period off. */
TEST(busy_worker_skips_missed_ticks)
{
    enum { PERIOD_US = 50000 };
    test_node n;
    start_game(&n);
    atollc_sync *a = ENTER_AT(&n, "busy", "g-1", "g");
    /* The spin is timed from the last tick: let g-1 tick first. */
    atoll_value *lg = NULL;
    for (int i = 0; i < 100 && (lg == NULL || jint(lg, "ticks") < 1); i++) {
        atoll_unref(lg);
        atollc_sync_pump(a, 20);
        lg = REQUEST_VALUE(a, "g.log", "{}");
    }
    ASSERT(jint(lg, "ticks") >= 1);
    atoll_unref(lg);
    uint64_t t0 = gc_now_us();
    atoll_value *sp = REQUEST_VALUE(a, "g.spin", "{\"periods\":16}");
    ASSERT_EQ(jint(sp, "code"), 200);
    ASSERT(jint(sp, "spun_us") >= 15 * PERIOD_US);
    int64_t before = jint(sp, "ticks"), due0 = jint(sp, "due_us");
    atoll_unref(sp);
    atollc_sync_pump(a, 300); /* a burst, if any, is over */
    lg = REQUEST_VALUE(a, "g.log", "{}");
    uint64_t t1 = gc_now_us();
    int64_t ticks = jint(lg, "ticks") - before, due1 = jint(lg, "due_us");
    atoll_unref(lg);
    int64_t after_us = (int64_t)(t1 - t0) - 15 * PERIOD_US;
    if (ticks < 1 || ticks > after_us / PERIOD_US + 2) {
        fprintf(stderr, "  %lld ticks in at most %lld us after the spin\n", (long long)ticks,
                (long long)after_us);
        test_fail_(__FILE__, __LINE__, "missed ticks were not skipped");
    }
    /* Off the schedule by less than 5 ms (what a due time read in g_tick can be off
     * by); a restarted schedule would be off by about 25 ms. */
    int64_t off = (due1 - due0) % PERIOD_US;
    if (due1 <= due0 || (off > 5000 && off < PERIOD_US - 5000)) {
        fprintf(stderr, "  due %lld us, then %lld us: %lld us off the schedule\n", (long long)due0,
                (long long)due1, (long long)off);
        test_fail_(__FILE__, __LINE__, "ticks left their schedule after a busy spell");
    }
    atollc_sync_free(a);
    node_stop(&n);
}

TEST(handler_error_answers_500_and_area_goes_on)
{
    test_node n;
    start_game(&n);
    atollc_sync *a = ENTER_AT(&n, "err", NULL, NULL);
    EXPECT_REPLY(a, "t.fail", "{}", "{\"code\":500,\"message\":\"not allowed in this state\"}");
    EXPECT_REPLY(a, "t.failmsg", "{}", "{\"code\":501,\"message\":\"custom failure 7\"}");
    EXPECT_INCR(a, 1, "t-1");
    /* A second answer is a bug of the game's: dropped, and said in the log. */
    EXPECT_REPLY(a, "t.twice", "{}", "{\"n\":1}");
    ASSERT(node_log_contains(&n, "msg=\"request answered twice: the second answer is dropped\" "
                                 "route=t.twice area=\"t-1\""));
    /* A route nobody serves; internal routes are not for clients: the same answer. */
    EXPECT_REPLY(a, "t.nope", "{}", "{\"code\":500,\"message\":\"no handler for route\"}");
    EXPECT_REPLY(a, "t.slow", "{}", "{\"code\":500,\"message\":\"no handler for route\"}");
    EXPECT_REPLY(a, "t.note", "{}", "{\"code\":500,\"message\":\"no handler for route\"}");
    /* ... and they are not in the dictionary the handshake offers. */
    int fd = raw_connect(n.port);
    static const char hs[] = "{\"sys\":{\"type\":\"t\",\"version\":\"1\"}}";
    ASSERT(raw_send_pkg(fd, 1, hs, sizeof hs - 1));
    uint8_t buf[16384];
    size_t len;
    ASSERT_EQ(raw_recv_pkg(fd, buf, sizeof buf - 1, &len, 5000), 1);
    buf[len] = '\0';
    ASSERT(strstr((char *)buf, "\"t.incr\":") != NULL);
    ASSERT(strstr((char *)buf, "\"t.relay\"") == NULL && strstr((char *)buf, "\"t.slow\"") == NULL &&
           strstr((char *)buf, "\"t.note\"") == NULL);
    close(fd);
    /* A route of another area type. */
    atoll_value *v = REQUEST_VALUE(a, "g.cmd", "{\"v\":1}");
    ASSERT_EQ(jint(v, "code"), 500);
    ASSERT(jstr(v, "message") != NULL && strstr(jstr(v, "message"), "type g") != NULL);
    atoll_unref(v);
    /* The area and the player went on. */
    EXPECT_INCR(a, 2, "t-1");
    ASSERT(atollc_sync_is_open(a));
    /* The internal route really exists: nothing was stored by the refused t.note. */
    v = REQUEST_VALUE(a, "t.notes", "{}");
    ASSERT_EQ(atoll_len(jget(v, "notes")), 0);
    atoll_unref(v);
    atollc_sync_free(a);
    node_stop(&n);
}

TEST(calls_between_areas)
{
    test_node n;
    start_game(&n);
    atollc_sync *a = ENTER_AT(&n, "caller", NULL, NULL);

    atoll_value *v =
        REQUEST_VALUE(a, "t.call", "{\"to\":\"t-2\",\"route\":\"t.echo\",\"body\":{\"x\":1}}");
    ASSERT_EQ(jint(v, "code"), 200);
    ASSERT_STR(jstr(v, "status"), "OK");
    ASSERT_STR(jstr(v, "reply.from"), "t-1");
    ASSERT_STR(jstr(v, "reply.area"), "t-2");
    ASSERT_EQ(atoll_len(jget(v, "reply.body")), 1);
    ASSERT_EQ(jint(v, "reply.body.x"), 1);
    atoll_unref(v);

    /* A missing area fails fast. */
    v = REQUEST_VALUE(a, "t.call", "{\"to\":\"nope\",\"route\":\"t.echo\"}");
    ASSERT_STR(jstr(v, "status"), "ENOENT");
    ASSERT(jint(v, "elapsed_us") >= 0 && jint(v, "elapsed_us") < 50000);
    atoll_unref(v);

    /* A slow area: past the deadline the call times out... */
    v = REQUEST_VALUE(
        a, "t.call", "{\"to\":\"t-2\",\"route\":\"t.slow\",\"timeout\":100,\"body\":{\"ms\":400}}");
    ASSERT_STR(jstr(v, "status"), "ETIMEDOUT");
    ASSERT(jget(v, "reply") != NULL && atoll_typeof(jget(v, "reply")) == ATOLL_NULL);
    if (jint(v, "elapsed_us") < 90000 || jint(v, "elapsed_us") > 350000) {
        fprintf(stderr, "  elapsed %lld us\n", (long long)jint(v, "elapsed_us"));
        test_fail_(__FILE__, __LINE__, "timeout of 100 ms not kept");
    }
    atoll_unref(v);
    /* ... and with time enough it gets the late answer. */
    v = REQUEST_VALUE(
        a, "t.call",
        "{\"to\":\"t-2\",\"route\":\"t.slow\",\"timeout\":2000,\"body\":{\"ms\":400}}");
    ASSERT_STR(jstr(v, "status"), "OK");
    ASSERT_STR(jstr(v, "reply.slow"), "done");
    ASSERT(jint(v, "elapsed_us") >= 390000 && jint(v, "elapsed_us") < 2000000);
    atoll_unref(v);

    /* A route the target's type lacks is refused by atoll_call itself. */
    EXPECT_REPLY(a, "t.call", "{\"to\":\"g-1\",\"route\":\"t.echo\"}",
                 "{\"code\":500,\"message\":\"call: EINVAL\"}");

    /* One-way send: t-2 stores the note; a player of t-2 reads it. */
    EXPECT_REPLY(a, "t.send", "{\"to\":\"t-2\",\"route\":\"t.note\",\"body\":{\"k\":1}}",
                 "{\"code\":200}");
    /* A send to an area that does not exist is dropped once the directory says so
     * (the sender is not waiting for it), with a log line. */
    EXPECT_REPLY(a, "t.send", "{\"to\":\"nope\",\"route\":\"t.note\"}", "{\"code\":200}");
    for (int i = 0; i < 100 && !node_log_contains(&n, "msg=\"send dropped\""); i++)
        usleep(10000);
    ASSERT(node_log_contains(&n, "msg=\"send dropped\" from=\"t-1\" to=\"nope\""));
    /* A route unknown to every area type is refused at once. */
    EXPECT_REPLY(a, "t.send", "{\"to\":\"t-2\",\"route\":\"t.nosuch\"}",
                 "{\"code\":500,\"message\":\"send: EINVAL\"}");
    atollc_sync *b = ENTER_AT(&n, "reader", "t-2", NULL);
    bool seen = false;
    for (int i = 0; i < 50 && !seen; i++) {
        v = REQUEST_VALUE(b, "t.notes", "{}");
        if (atoll_len(jget(v, "notes")) > 0) {
            ASSERT_EQ(atoll_len(jget(v, "notes")), 1);
            ASSERT_EQ(atoll_len(jget(v, "notes.0")), 1);
            ASSERT_EQ(jint(v, "notes.0.k"), 1);
            seen = true;
        }
        atoll_unref(v);
        if (!seen)
            atollc_sync_pump(b, 20);
    }
    ASSERT(seen);

    /* A call to the caller's own area: answered later, no deadlock. */
    v = REQUEST_VALUE(a, "t.call",
                      "{\"to\":\"t-1\",\"route\":\"t.echo\",\"body\":{\"self\":true}}");
    ASSERT_STR(jstr(v, "status"), "OK");
    ASSERT_STR(jstr(v, "reply.from"), "t-1");
    ASSERT_STR(jstr(v, "reply.area"), "t-1");
    ASSERT(atoll_as_bool(jget(v, "reply.body.self"), 0));
    atoll_unref(v);
    atollc_sync_free(a);
    atollc_sync_free(b);
    node_stop(&n);
}

/* The call wheel spans 4.096 s (1 ms slots); a longer deadline goes round it and must
 * still be kept. Two calls at once to t-2's t.slow: with 5 s to wait for an answer due
 * after 6 s, the call times out at 5 s, not earlier; with 6 s to wait for an answer due
 * after 4.5 s, it gets the answer. */
TEST(call_deadlines_past_the_wheel_horizon)
{
    test_node n;
    start_game(&n);
    atollc_sync *a = ENTER_AT(&n, "patient", NULL, NULL);
    slots_reset();
    SEND_ASYNC(a, 0, "t.call",
               "{\"to\":\"t-2\",\"route\":\"t.slow\",\"timeout\":5000,\"body\":{\"ms\":6000}}");
    SEND_ASYNC(a, 1, "t.call",
               "{\"to\":\"t-2\",\"route\":\"t.slow\",\"timeout\":6000,\"body\":{\"ms\":4500}}");
    PUMP_UNTIL(a, 2, 15000);
    atoll_value *v = SLOT_VALUE(0);
    ASSERT_STR(jstr(v, "status"), "ETIMEDOUT");
    if (jint(v, "elapsed_us") < 4800000) {
        fprintf(stderr, "  elapsed %lld us\n", (long long)jint(v, "elapsed_us"));
        test_fail_(__FILE__, __LINE__, "a 5 s deadline expired early");
    }
    atoll_unref(v);
    v = SLOT_VALUE(1);
    ASSERT_STR(jstr(v, "status"), "OK");
    ASSERT_STR(jstr(v, "reply.slow"), "done");
    ASSERT(jint(v, "elapsed_us") >= 4490000);
    atoll_unref(v);
    /* The first t.slow answers about 1 s later, to nobody; let it, so that no request
     * is still kept by a timer when the node stops. */
    atollc_sync_pump(a, 1500);
    EXPECT_INCR(a, 1, "t-1");
    atollc_sync_free(a);
    node_stop(&n);
}

/* A call resolved to an area that is destroyed and created again under the same id
 * before the call arrives (t.call with respawn: t.respawn is sent to the target just
 * before the call) reaches a worker without that area; it is answered "moved" and sent
 * again to the new area, body and all. Twice, to the second and third life. */
TEST(call_follows_an_area_created_again)
{
    test_node n;
    start_game(&n);
    atollc_sync *a = ENTER_AT(&n, "respawner", NULL, NULL);
    EXPECT_CREATE(a, "{\"id\":\"x-1\"}", "OK");
    for (int life = 1; life <= 2; life++) {
        atoll_value *v = REQUEST_VALUE(
            a, "t.call",
            "{\"to\":\"x-1\",\"route\":\"t.echo\",\"respawn\":true,\"body\":{\"k\":7}}");
        ASSERT_EQ(jint(v, "code"), 200);
        ASSERT_STR(jstr(v, "status"), "OK");
        ASSERT_STR(jstr(v, "reply.from"), "t-1");
        ASSERT_STR(jstr(v, "reply.area"), "x-1");
        ASSERT_EQ(jint(v, "reply.body.k"), 7);
        atoll_unref(v);
    }
    /* x-1 really lives its third life: on_create got the init of the second respawn. */
    atollc_sync *b = ENTER_AT(&n, "inx", "x-1", NULL);
    atoll_value *d = REQUEST_VALUE(b, "t.data", "{}");
    ASSERT_EQ(jint(d, "state.init.respawned"), 2);
    atoll_unref(d);
    /* A one-way send right behind a respawn reaches the fourth life too: the worker it
     * reaches no longer has the area and passes it on (nobody waits for an answer). */
    EXPECT_REPLY(a, "t.send",
                 "{\"to\":\"x-1\",\"route\":\"t.note\",\"respawn\":true,\"body\":{\"k\":9}}",
                 "{\"code\":200}");
    atollc_sync_free(b);
    b = NULL;
    bool noted = false;
    for (int i = 0; i < 100 && !noted; i++) {
        b = ENTER_AT(&n, "inx", "x-1", NULL);
        d = REQUEST_VALUE(b, "t.notes", "{}");
        noted = atoll_len(jget(d, "notes")) == 1 && jint(d, "notes.0.k") == 9;
        atoll_unref(d);
        if (!noted) {
            atollc_sync_free(b);
            usleep(10000);
        }
    }
    ASSERT(noted);
    ASSERT(!node_log_contains(&n, "send dropped"));
    atollc_sync_free(b);
    atollc_sync_free(a);
    node_stop(&n);
}

/* 3000 one-way sends of an area to itself, each sent by the previous one's handler,
 * then 500 calls each from the previous one's callback to the caller's own area (same
 * worker: local mail only) and to the other worker's area. A worker runs a bounded
 * number of local rounds per loop turn and then keeps going from its idle handle; the
 * answer arriving at all, with every call counted, shows it does. */
TEST(chains_of_calls_complete_on_one_and_two_workers)
{
    test_node n;
    start_game(&n);
    atollc_sync *a = ENTER_AT(&n, "chainer", NULL, NULL);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    atoll_value *v = REQUEST_VALUE(a, "t.sendchain", "{\"n\":3000}");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ASSERT_EQ(jint(v, "code"), 200);
    ASSERT_STR(jstr(v, "relay"), "done");
    atoll_unref(v);
    /* Local mail must not wait for a timer to wake the loop: 3000 local deliveries take
     * milliseconds; waking on the 100 ms wheel tick would take about 10 s. */
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (secs > 2.0) {
        fprintf(stderr, "  3000 local sends took %.2f s\n", secs);
        test_fail_(__FILE__, __LINE__, "local mail stalls between loop turns");
    }
    v = REQUEST_VALUE(a, "t.chain", "{\"to\":\"t-1\",\"n\":500}");
    ASSERT_EQ(jint(v, "code"), 200);
    ASSERT_EQ(jint(v, "done"), 500);
    atoll_unref(v);
    v = REQUEST_VALUE(a, "t.chain", "{\"to\":\"t-2\",\"n\":500}");
    ASSERT_EQ(jint(v, "done"), 500);
    atoll_unref(v);
    /* The worker still serves clients afterwards. */
    v = REQUEST_VALUE(a, "t.incr", "{}");
    ASSERT_EQ(jint(v, "n"), 1);
    atoll_unref(v);
    atollc_sync_free(a);
    node_stop(&n);
}

TEST(moving_keeps_state_and_connection)
{
    test_node n;
    start_game(&n);
    atollc_sync *a = ENTER_AT(&n, "mover", NULL, NULL);
    atollc_client *conn = atollc_sync_client(a);
    EXPECT_PUSH(a, "onEnter", "{\"area\":\"t-1\",\"players\":1}");
    for (int i = 1; i <= 3; i++)
        EXPECT_INCR(a, i, "t-1");
    EXPECT_REPLY(a, "t.move", "{\"to\":\"t-2\"}", "{\"code\":200,\"to\":\"t-2\"}");
    EXPECT_PUSH(a, "onLeave", "{\"area\":\"t-1\"}");
    EXPECT_PUSH(a, "onEnter", "{\"area\":\"t-2\",\"players\":1}");
    EXPECT_INCR(a, 4, "t-2");
    atoll_value *d = REQUEST_VALUE(a, "t.data", "{}");
    ASSERT_EQ(jint(d, "data.visits"), 2);
    ASSERT_EQ(jint(d, "data.n"), 4);
    ASSERT_EQ(jint(d, "state.entered"), 1);
    atoll_unref(d);
    EXPECT_INFO(a, "t.info", "t-2", 1, 1, 0);
    /* Bad moves: the player stays. Where a target lives is known only after the handler returns: a move to an area
     * that does not exist is given up then, with a log line; one to its own area is
     * refused at once. */
    EXPECT_REPLY(a, "t.move", "{\"to\":\"nope\"}", "{\"code\":200,\"to\":\"nope\"}");
    EXPECT_INCR(a, 5, "t-2");
    ASSERT(node_log_contains(&n, "msg=\"move target does not exist, player stays\""));
    EXPECT_REPLY(a, "t.move", "{\"to\":\"t-2\"}", "{\"code\":500,\"message\":\"move: EINVAL\"}");
    EXPECT_INCR(a, 6, "t-2");
    /* One connection all along, never closed or kicked. */
    ASSERT(atollc_sync_client(a) == conn);
    ASSERT(atollc_sync_is_open(a));
    EXPECT_NO_PUSH(a, 50);
    /* t-1 saw the player leave. */
    atollc_sync *b = ENTER_AT(&n, "watcher", NULL, NULL);
    EXPECT_INFO(b, "t.info", "t-1", 1, 2, 1);
    atollc_sync_free(a);
    atollc_sync_free(b);
    node_stop(&n);
}

/* Pipelines `incr_before` t.incr, a t.move to `to`, then `incr_after` t.incr; checks
 * the answers came in order with n counting on from n0 and the area after the move. */
static void
pipeline_move_(atollc_sync *a, int incr_before, const char *to, int incr_after, int64_t n0,
               const char *from, int line)
{
    slots_reset();
    int k = 0;
    for (int i = 0; i < incr_before; i++)
        send_async_(a, k++, "t.incr", "{}", line);
    char body[64];
    snprintf(body, sizeof body, "{\"to\":\"%s\"}", to);
    send_async_(a, k++, "t.move", body, line);
    for (int i = 0; i < incr_after; i++)
        send_async_(a, k++, "t.incr", "{}", line);
    pump_until_(a, k, 10000, line);
    int64_t nexp = n0;
    for (int i = 0; i < k; i++) {
        if (slots[i].order != i)
            test_fail_(__FILE__, line, "answers out of order");
        atoll_value *v = slot_value_(i, line);
        if (jint(v, "code") != 200)
            gc_fail_at(__FILE__, line, "pipelined answer", slots[i].body, "code 200");
        if (i == incr_before) {
            if (jstr(v, "to") == NULL || strcmp(jstr(v, "to"), to) != 0)
                gc_fail_at(__FILE__, line, "move answer", slots[i].body, to);
        } else {
            const char *area = i < incr_before ? from : to;
            if (jint(v, "n") != ++nexp || jstr(v, "area") == NULL ||
                strcmp(jstr(v, "area"), area) != 0) {
                char want[64];
                snprintf(want, sizeof want, "n %lld in %s", (long long)nexp, area);
                gc_fail_at(__FILE__, line, "incr answer", slots[i].body, want);
            }
        }
        atoll_unref(v);
    }
}

TEST(moving_keeps_order)
{
    test_node n;
    start_game(&n);
    atollc_sync *a = ENTER_AT(&n, "pipe", NULL, NULL);
    pipeline_move_(a, 2, "t-2", 50, 0, "t-1", __LINE__);
    /* And back, with no pause: the forward from the first move may still be there. */
    pipeline_move_(a, 0, "t-1", 50, 52, "t-2", __LINE__);
    pipeline_move_(a, 3, "t-2", 20, 102, "t-1", __LINE__);
    atoll_value *d = REQUEST_VALUE(a, "t.data", "{}");
    ASSERT_EQ(jint(d, "data.n"), 125);
    ASSERT_EQ(jint(d, "data.visits"), 4);
    atoll_unref(d);
    /* Pushes: onEnter t-1, then a leave and an enter per move. */
    EXPECT_PUSH(a, "onEnter", "{\"area\":\"t-1\",\"players\":1}");
    const char *seq[3][2] = {{"t-1", "t-2"}, {"t-2", "t-1"}, {"t-1", "t-2"}};
    for (int i = 0; i < 3; i++) {
        char want[64];
        snprintf(want, sizeof want, "{\"area\":\"%s\"}", seq[i][0]);
        EXPECT_PUSH(a, "onLeave", want);
        snprintf(want, sizeof want, "{\"area\":\"%s\",\"players\":1}", seq[i][1]);
        EXPECT_PUSH(a, "onEnter", want);
    }
    EXPECT_NO_PUSH(a, 50);
    atollc_sync_free(a);
    node_stop(&n);
}

/* One move, from `from` to `to`, with the old area's worker busy for 1 s right after it
 * (t.move busy_ms), so the session's FENCE reaches the new area late: K1 t.incr
 * pipelined behind the move reach the old area and are forwarded; K2 more, sent once
 * onEnter came (the session routes them straight to the new area by then), must wait
 * there for the fence. Each answer is checked against its own request: n counts on
 * from n0 in request order, whatever order the answers came in. */
static void
fence_round_(atollc_sync *a, const char *from, const char *to, int64_t n0, int line)
{
    enum { K1 = 5, K2 = 5 };
    char body[96], want[96];
    slots_reset();
    snprintf(body, sizeof body, "{\"to\":\"%s\",\"busy_ms\":1000}", to);
    send_async_(a, 0, "t.move", body, line);
    for (int i = 1; i <= K1; i++)
        send_async_(a, i, "t.incr", "{}", line);
    snprintf(want, sizeof want, "{\"area\":\"%s\"}", from);
    gc_expect_push_(a, "onLeave", want, __FILE__, line);
    snprintf(want, sizeof want, "{\"area\":\"%s\",\"players\":1}", to);
    gc_expect_push_(a, "onEnter", want, __FILE__, line);
    for (int i = K1 + 1; i <= K1 + K2; i++)
        send_async_(a, i, "t.incr", "{}", line);
    pump_until_(a, 1 + K1 + K2, 10000, line);
    snprintf(want, sizeof want, "{\"code\":200,\"to\":\"%s\"}", to);
    if (strcmp(slots[0].body, want) != 0)
        gc_fail_at(__FILE__, line, "move answer", slots[0].body, want);
    for (int i = 1; i <= K1 + K2; i++) {
        snprintf(want, sizeof want, "{\"code\":200,\"n\":%lld,\"area\":\"%s\"}",
                 (long long)(n0 + i), to);
        if (strcmp(slots[i].body, want) != 0)
            gc_fail_at(__FILE__, line, "t.incr answer (by request)", slots[i].body, want);
    }
    for (int i = 0; i <= K1 + K2; i++)
        if (slots[i].order != i)
            test_fail_(__FILE__, line, "answers out of order");
}

/* The fence holds what the new area receives directly until what was forwarded has
 * run. Only a session whose connection is not on the old area's worker can send to
 * the new area while that worker is busy; the connection's worker is the kernel's
 * choice, so the move is made both ways (t-1 on worker 0 to t-2 on worker 1, and
 * back): one of the two is such a move. */
TEST(moving_holds_direct_requests_until_the_fence)
{
    test_node n;
    start_game(&n);
    atollc_sync *a = ENTER_AT(&n, "fenced", NULL, NULL);
    EXPECT_PUSH(a, "onEnter", "{\"area\":\"t-1\",\"players\":1}");
    fence_round_(a, "t-1", "t-2", 0, __LINE__);
    fence_round_(a, "t-2", "t-1", 10, __LINE__);
    atoll_value *d = REQUEST_VALUE(a, "t.data", "{}");
    ASSERT_EQ(jint(d, "data.n"), 20);
    ASSERT_EQ(jint(d, "data.visits"), 3);
    atoll_unref(d);
    EXPECT_NO_PUSH(a, 50);
    atollc_sync_free(a);
    node_stop(&n);
}

TEST(duplicate_entry_kicks_old_session_and_keeps_player)
{
    test_node n;
    start_game(&n);
    atollc_sync *a = ENTER_AT(&n, "dup", NULL, NULL);
    EXPECT_INCR(a, 1, "t-1");
    atollc_sync *b = ENTER_AT(&n, "dup", NULL, NULL);
    EXPECT_KICK(a, "duplicate login");
    /* Whether the player (with its data) stayed or entered anew depends on which of the
     * old session's leave and the new entry reached t-1 first; either way one player. */
    atoll_value *d = REQUEST_VALUE(b, "t.data", "{}");
    int64_t n0 = jint(d, "data.n") == INT64_MIN ? 0 : jint(d, "data.n");
    ASSERT(n0 == 0 || n0 == 1);
    atoll_unref(d);
    EXPECT_INCR(b, n0 + 1, "t-1");
    atoll_value *v = POLL_PLAYERS(b, 1);
    ASSERT_EQ(jint(v, "players"), 1);
    atoll_unref(v);
    atollc_sync_free(a);
    atollc_sync_free(b);
    node_stop(&n);
}

TEST(create_destroy_and_grace)
{
    test_node n;
    start_game(&n);
    atollc_sync *a = ENTER_AT(&n, "maker", NULL, NULL);
    EXPECT_CREATE(a, "{\"id\":\"x-1\"}", "OK");
    EXPECT_CREATE(a, "{\"id\":\"x-1\"}", "EEXIST");
    EXPECT_CREATE(a, "{\"id\":\"x-9\",\"type\":\"nosuch\"}", "ENOENT");
    EXPECT_CREATE(a, "{\"id\":\"\"}", "EINVAL");
    ASSERT(WAIT_LISTED(a, "x-1", 1, 1000));
    ASSERT(!WAIT_LISTED(a, "x-9", 1, 0));

    /* on_create refuses x-2: created, then destroyed again at once. */
    EXPECT_CREATE(a, "{\"id\":\"x-2\",\"init\":{\"refuse\":true}}", "OK");
    ASSERT(WAIT_LISTED(a, "x-2", 0, 1000));
    /* Its id is free again. */
    EXPECT_CREATE(a, "{\"id\":\"x-2\"}", "OK");
    /* The init value reached on_create. */
    EXPECT_CREATE(a, "{\"id\":\"x-3\",\"init\":{\"hello\":5}}", "OK");
    atollc_sync *c = ENTER_AT(&n, "x3", "x-3", NULL);
    atoll_value *d = REQUEST_VALUE(c, "t.data", "{}");
    ASSERT_EQ(jint(d, "state.init.hello"), 5);
    atoll_unref(d);
    atollc_sync_free(c);

    /* A player of x-1 destroys it: it is kicked and the area is gone. */
    atollc_sync *b = ENTER_AT(&n, "inx", "x-1", NULL);
    EXPECT_PUSH(b, "onEnter", "{\"area\":\"x-1\",\"players\":1}");
    REQUEST_THEN_KICKED(b, "t.destroy", "area closed");
    ASSERT(WAIT_LISTED(a, "x-1", 0, 1000));
    atollc_sync_free(b);

    /* Empty grace: e-1 outlives its last player by 200 ms, then goes. */
    atollc_sync *e = ENTER_AT(&n, "ghost", "e-1", "e");
    EXPECT_INFO(e, "e.info", "e-1", 1, 0, 0);
    ASSERT(WAIT_LISTED(a, "e-1", 1, 0));
    /* Stats catch up within 100 ms: the area shows its player before it leaves. */
    atollc_sync_free(e);
    uint64_t closed = gc_now_us();
    ASSERT(WAIT_LISTED(a, "e-1", 1, 0));
    atollc_sync_pump(a, 100);
    if (gc_now_us() - closed < 150000)
        ASSERT(WAIT_LISTED(a, "e-1", 1, 0)); /* still within its grace */
    ASSERT(WAIT_LISTED(a, "e-1", 0, 2000));
    ASSERT(gc_now_us() - closed >= 190000);
    atollc_sync_free(a);
    node_stop(&n);
}

/* Sessions enter and leave an area that is destroyed 1 ms after it empties: an entry
 * can reach the area's worker just after the area was destroyed. Every entry must
 * still succeed (the worker creates the area again). */
TEST(entry_racing_the_empty_grace_succeeds)
{
    test_node n;
    start_game(&n);
    char uid[32];
    for (int i = 0; i < 150; i++) {
        snprintf(uid, sizeof uid, "racer-%d", i);
        atollc_sync *c = ENTER_AT(&n, uid, "q-1", "q");
        atoll_value *v = REQUEST_VALUE(c, "q.info", "{}");
        ASSERT_EQ(jint(v, "code"), 200);
        /* The racer before may still be counted: its close and this entry reach q-1
         * from two sessions, in either order (it leaves about a millisecond later).
         * What must hold is that the count comes back to this one player. */
        for (int k = 0; k < 100 && jint(v, "players") != 1; k++) {
            atoll_unref(v);
            atollc_sync_pump(c, 5);
            v = REQUEST_VALUE(c, "q.info", "{}");
        }
        ASSERT_EQ(jint(v, "players"), 1);
        atoll_unref(v);
        atollc_sync_free(c);
        if (i % 3 == 0)
            usleep(1500); /* sometimes let the grace run out first */
    }
    node_stop(&n);
}

TEST(entry_refused_by_on_enter)
{
    test_node n;
    start_game(&n);
    atollc_sync *a = CONNECT(&n);
    EXPECT_REPLY(a, "gate.entry", "{\"uid\":\"ref\",\"area\":\"r-1\",\"type\":\"r\"}",
                 "{\"code\":500,\"message\":\"not allowed in this state\"}");
    ASSERT(atollc_sync_is_open(a));
    /* Not in any area after the refusal. */
    EXPECT_REPLY(a, "t.incr", "{}", "{\"code\":500*");
    /* The same session, same uid, enters elsewhere. */
    EXPECT_REPLY(a, "gate.entry", "{\"uid\":\"ref\",\"area\":\"t-1\"}",
                 "{\"code\":200,\"uid\":\"ref\",\"area\":\"t-1\"}");
    EXPECT_INCR(a, 1, "t-1");
    EXPECT_INFO(a, "t.info", "t-1", 1, 1, 0);
    atollc_sync_free(a);
    node_stop(&n);
}

/* Admission runs before the uid is bound: an entry the game refuses (its entry hook
 * names an unknown area type) leaves the player who holds the uid alone, and binds
 * nothing, so the refused session may still log in as somebody else. */
TEST(refused_login_leaves_the_real_player_alone)
{
    test_node n;
    start_game(&n);
    atollc_sync *alice = ENTER_AT(&n, "alice", "t-1", NULL);
    EXPECT_PUSH(alice, "onEnter", "{\"area\":\"t-1\",\"players\":1}");
    EXPECT_INCR(alice, 1, "t-1");
    atollc_sync *x = CONNECT(&n);
    EXPECT_REPLY(x, "gate.entry", "{\"uid\":\"alice\",\"type\":\"nosuch\"}",
                 "{\"code\":500,\"message\":\"entry refused: no such object\"}");
    /* alice was not kicked and is still herself, in her area, with her data. */
    EXPECT_NO_PUSH(alice, 100);
    ASSERT(atollc_sync_is_open(alice));
    EXPECT_INCR(alice, 2, "t-1");
    EXPECT_INFO(alice, "t.info", "t-1", 1, 1, 0);
    /* x is bound to nothing: it may enter as another uid. */
    EXPECT_REPLY(x, "gate.entry", "{\"uid\":\"bob\"}",
                 "{\"code\":200,\"uid\":\"bob\",\"area\":\"t-1\"}");
    EXPECT_INFO(x, "t.info", "t-1", 2, 2, 0);
    atollc_sync_free(x);
    atollc_sync_free(alice);
    node_stop(&n);
}

TEST(area_manager_lists_stats)
{
    test_node n;
    start_game(&n);
    atollc_sync *a = ENTER_AT(&n, "stats", NULL, NULL);
    for (int i = 0; i < 5; i++)
        EXPECT_REPLY(a, "t.incr", "{}", "{\"code\":200*");
    atoll_value *v = NULL;
    bool ok = false;
    for (int i = 0; i < 50 && !ok; i++) {
        atoll_unref(v);
        v = REQUEST_VALUE(a, "t.areas", "{}");
        atoll_value *t1 = find_area(v, "t-1"), *g1 = find_area(v, "g-1");
        ok = t1 && g1 && jint(t1, "players") >= 1 && jint(t1, "messages") >= 5 &&
             jint(g1, "ticks") > 0;
        if (!ok)
            atollc_sync_pump(a, 20);
    }
    if (!ok) {
        char *j = atoll_dump(v, NULL);
        FAIL_AT("t.areas", j, "t-1 with a player and 5 messages, g-1 ticking");
    }
    ASSERT_EQ(jint(v, "count"), 3);
    ASSERT_EQ(atoll_len(jget(v, "areas")), 3);
    atoll_value *t1 = find_area(v, "t-1"), *t2 = find_area(v, "t-2"), *g1 = find_area(v, "g-1");
    ASSERT(t2 != NULL);
    ASSERT_STR(jstr(t1, "type"), "t");
    ASSERT_STR(jstr(t2, "type"), "t");
    ASSERT_STR(jstr(g1, "type"), "g");
    ASSERT_EQ(jint(t1, "worker"), 0);
    ASSERT_EQ(jint(t2, "worker"), 1);
    ASSERT(jint(g1, "worker") == 0 || jint(g1, "worker") == 1);
    ASSERT_EQ(jint(t2, "players"), 0);
    ASSERT_EQ(jint(t1, "ticks"), 0);
    ASSERT_EQ(jint(g1, "queue"), 0);
    atoll_unref(v);
    /* Ticks go on: 20 a second. */
    int64_t before = -1, after = -1;
    v = REQUEST_VALUE(a, "t.areas", "{}");
    before = jint(find_area(v, "g-1"), "ticks");
    atoll_unref(v);
    atollc_sync_pump(a, 300);
    v = REQUEST_VALUE(a, "t.areas", "{}");
    after = jint(find_area(v, "g-1"), "ticks");
    atoll_unref(v);
    ASSERT(after - before >= 2 && after - before <= 12);
    atollc_sync_free(a);
    node_stop(&n);
}

/* Runs a shell command; returns its exit status (-1 when it did not exit) and its
 * output (stdout and stderr) in out. */
static int
run_cmd(const char *cmd, char *out, size_t cap)
{
    FILE *f = popen(cmd, "r");
    ASSERT(f != NULL);
    size_t len = 0, k;
    while (len < cap - 1 && (k = fread(out + len, 1, cap - 1 - len, f)) > 0)
        len += k;
    out[len] = '\0';
    int status = pclose(f);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(linked_program_serves_the_game)
{
    const char *linked = getenv("ATOLL_LINKED_BIN");
    const char *bin = getenv("ATOLL_BIN");
    ASSERT(linked != NULL && bin != NULL);
    /* node_start runs $ATOLL_BIN: point it at the linked program (this test's process
     * only); its --workers 1 comes after the harness's --workers 2 and wins. */
    setenv("ATOLL_BIN", linked, 1);
    test_node n;
    node_start(&n, (const char *[]){"--workers", "1", NULL});
    atollc_sync *a = ENTER_AT(&n, "linked", NULL, NULL);
    EXPECT_INFO(a, "t.info", "t-1", 1, 1, 0);
    EXPECT_INCR(a, 1, "t-1");
    atoll_value *v = REQUEST_VALUE(a, "t.areas", "{}");
    ASSERT_EQ(jint(v, "count"), 3);
    ASSERT_EQ(jint(find_area(v, "t-1"), "worker"), 0);
    ASSERT_EQ(jint(find_area(v, "t-2"), "worker"), 0); /* one worker */
    atoll_unref(v);
    atollc_sync_free(a);
    node_stop(&n);
    setenv("ATOLL_BIN", bin, 1);

    char cmd[2048], out[8192];
    /* A game path that cannot be loaded stops the node with an error (timeout's 124
     * would mean it came up and ran instead). */
    snprintf(cmd, sizeof cmd,
             "timeout 10 %s run --game /nonexistent.so --listen 127.0.0.1:0 --workers 1 "
             "2>&1 >/dev/null",
             bin);
    int rc = run_cmd(cmd, out, sizeof out);
    if (rc == 0 || rc == 124 || rc == -1 || strstr(out, "cannot load game") == NULL ||
        strstr(out, "/nonexistent.so") == NULL)
        FAIL_AT("--game /nonexistent.so", out, "a non-zero exit and \"cannot load game\"");
    /* So does an unknown built-in name. */
    snprintf(cmd, sizeof cmd,
             "timeout 10 %s run --game nosuchgame --listen 127.0.0.1:0 --workers 1 "
             "2>&1 >/dev/null",
             bin);
    rc = run_cmd(cmd, out, sizeof out);
    if (rc == 0 || rc == 124 || rc == -1 || strstr(out, "unknown game") == NULL)
        FAIL_AT("--game nosuchgame", out, "a non-zero exit and \"unknown game\"");
    /* A module built for another ABI is refused before any of its code runs. */
    const char *oldabi = getenv("ATOLL_OLDABI_GAME");
    ASSERT(oldabi != NULL);
    snprintf(cmd, sizeof cmd,
             "timeout 10 %s run --game %s --listen 127.0.0.1:0 --workers 1 2>&1 >/dev/null", bin,
             oldabi);
    rc = run_cmd(cmd, out, sizeof out);
    if (rc == 0 || rc == 124 || rc == -1 || strstr(out, "another atoll ABI") == NULL)
        FAIL_AT("--game liboldabigame.so", out, "a non-zero exit and \"another atoll ABI\"");
    /* The linked program serves its own game only. */
    snprintf(cmd, sizeof cmd,
             "timeout 10 %s run --game echo --listen 127.0.0.1:0 --workers 1 2>&1 >/dev/null",
             linked);
    rc = run_cmd(cmd, out, sizeof out);
    if (rc == 0 || rc == 124 || rc == -1 || strstr(out, "--game is not for it") == NULL)
        FAIL_AT("linked --game echo", out, "a non-zero exit and a clear error");
}


/* A session that sends an area route before gate.entry enters as a guest (the game's
 * guest hook: t-2), and the messages it sent while entering follow in order; logging in
 * later takes it out of the guest area and into the game's. */
TEST(guests_enter_at_their_first_message_and_may_log_in)
{
    test_node n;
    start_game(&n);
    atollc_sync *g = CONNECT(&n);
    /* Three notifies and a request in a row, before the guest's area is known. */
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(atollc_sync_notify(g, "t.incr", "{}"), ATOLLC_OK);
    EXPECT_INCR(g, 4, "t-2");
    atoll_value *v = REQUEST_VALUE(g, "t.who", "{}");
    const char *uid = jstr(v, "uid");
    ASSERT(uid != NULL && uid[0] == '~' && strlen(uid) == 17);
    ASSERT_STR(jstr(v, "area"), "t-2");
    atoll_unref(v);
    atollc_sync *w = ENTER_AT(&n, "watcher", "t-2", NULL);
    EXPECT_INFO(w, "t.info", "t-2", 2, 2, 0);
    /* Logging in: the guest leaves t-2 (on_leave) and enters t-1 as "named". */
    EXPECT_REPLY(g, "gate.entry", "{\"uid\":\"named\"}",
                 "{\"code\":200,\"uid\":\"named\",\"area\":\"t-1\"}");
    v = REQUEST_VALUE(g, "t.who", "{}");
    ASSERT_STR(jstr(v, "uid"), "named");
    ASSERT_STR(jstr(v, "area"), "t-1");
    atoll_unref(v);
    EXPECT_INCR(g, 1, "t-1"); /* a new player: its data starts empty */
    v = POLL_PLAYERS(w, 1);
    ASSERT_EQ(jint(v, "left"), 1);
    atoll_unref(v);
    atollc_sync_free(g);
    atollc_sync_free(w);
    node_stop(&n);
}

TEST(player_kick)
{
    test_node n;
    start_game(&n);
    atollc_sync *b = ENTER_AT(&n, "stay", NULL, NULL);
    atollc_sync *a = ENTER_AT(&n, "kicked", NULL, NULL);
    EXPECT_INFO(b, "t.info", "t-1", 2, 2, 0);
    REQUEST_THEN_KICKED(a, "t.kick", "bye");
    atoll_value *v = POLL_PLAYERS(b, 1);
    ASSERT_EQ(jint(v, "players"), 1);
    ASSERT_EQ(jint(v, "left"), 1);
    atoll_unref(v);
    /* The kicked uid may log in again; it starts anew. */
    atollc_sync *c = ENTER_AT(&n, "kicked", NULL, NULL);
    EXPECT_INCR(c, 1, "t-1");
    atollc_sync_free(a);
    atollc_sync_free(b);
    atollc_sync_free(c);
    node_stop(&n);
}

/* Destroying an area ends what it holds: a pending timer gets its last call with
 * ATOLL_ECANCELED (here it answers the call it kept), and a kept request nobody answers
 * is answered by the framework, so callers hear at once instead of at their deadline. */
TEST(destroying_an_area_cancels_its_timers_and_kept_requests)
{
    test_node n;
    start_game(&n);
    atollc_sync *a = ENTER_AT(&n, "holder", NULL, NULL);
    atollc_sync *b = ENTER_AT(&n, "doomed", "t-9", NULL);
    slots_reset();
    SEND_ASYNC(a, 0, "t.call", "{\"to\":\"t-9\",\"route\":\"t.slow\",\"timeout\":8000,"
                              "\"body\":{\"ms\":6000}}");
    SEND_ASYNC(a, 1, "t.call", "{\"to\":\"t-9\",\"route\":\"t.hold\",\"timeout\":8000}");
    atollc_sync_pump(a, 200); /* both calls reach t-9 and are kept */
    uint64_t start = gc_now_us();
    REQUEST_THEN_KICKED(b, "t.destroy", "area closed");
    PUMP_UNTIL(a, 2, 4000);
    ASSERT(gc_now_us() - start < 3000000); /* not at the 6 s timer nor the 8 s deadline */
    atoll_value *v = SLOT_VALUE(0);
    ASSERT_STR(jstr(v, "status"), "OK");
    ASSERT_STR(jstr(v, "reply.slow"), "cancelled");
    atoll_unref(v);
    v = SLOT_VALUE(1);
    ASSERT_STR(jstr(v, "status"), "ECANCELED");
    atoll_unref(v);
    atollc_sync_free(a);
    atollc_sync_free(b);
    node_stop(&n);
}

TEST_MAIN(order_of_one_sessions_requests_is_kept, areas_on_two_workers_run_in_parallel,
          chains_of_calls_complete_on_one_and_two_workers, entry_racing_the_empty_grace_succeeds,
          timers_fire_as_set, ticks_and_command_queue, busy_worker_skips_missed_ticks,
          handler_error_answers_500_and_area_goes_on, calls_between_areas,
          call_deadlines_past_the_wheel_horizon, call_follows_an_area_created_again,
          moving_keeps_state_and_connection, moving_keeps_order,
          moving_holds_direct_requests_until_the_fence,
          duplicate_entry_kicks_old_session_and_keeps_player, create_destroy_and_grace,
          entry_refused_by_on_enter, area_manager_lists_stats, linked_program_serves_the_game,
          guests_enter_at_their_first_message_and_may_log_in,
          refused_login_leaves_the_real_player_alone,
          player_kick, destroying_an_area_cancels_its_timers_and_kept_requests)
