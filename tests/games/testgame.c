/* testgame.c -- a game built as a shared object for the runtime's integration tests
 * (tests/integration/area_test.c), loaded with `atoll run --game path/libtestgame.so`.
 * Each handler exposes one feature of atoll.h to a client so a test can drive it:
 * ordering, errors, parallel areas, timers, ticks (and a worker too busy to tick) and
 * command queues, calls between areas (fast, slow, missing, to an area created again
 * while the call travels), moves (also with the old worker busy when the fence comes),
 * creation and destruction, the area manager, and game code that is slow, stalls or
 * crashes (tests/integration/watchdog_test.c), and a failing handler's changes to the
 * player's data and the area's state being undone (tests/integration/persist_test.c).
 *
 * gate.entry {uid, area?, type?} puts the player in `area` (default "t-1") of type
 * `type` (default "t"); a body whose uid is not the player's, or that still holds a
 * token, is refused (EINVAL). init creates t-1 and t-2, which the node places on two workers.
 */
#include <atoll/atoll.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t
now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- area type "t" ---- */

static int
t_info(atoll_req *req)
{
    atoll_area *a = atoll_req_area(req);
    atoll_value *st = atoll_area_state(a);
    return atoll_reply(req, atoll_pack("{s:i,s:s,s:i,s:I,s:I}", "code", 200, "area",
                                       atoll_area_id(a), "players",
                                       (int)atoll_area_player_count(a), "entered",
                                       atoll_get_int(st, "entered", 0), "left",
                                       atoll_get_int(st, "left", 0)));
}

/* t.twice: answers twice; the second answer must be dropped (and logged), the first
 * stands. */
static int
t_twice(atoll_req *req)
{
    atoll_reply(req, atoll_pack("{s:i}", "n", 1));
    int rc = atoll_reply(req, atoll_pack("{s:i}", "n", 2));
    return rc == ATOLL_ESTATE ? ATOLL_OK : ATOLL_EINVAL;
}

/* t.who: the player's id and area. */
static int
t_who(atoll_req *req)
{
    atoll_player *p = atoll_req_player(req);
    return atoll_reply(req, atoll_pack("{s:i,s:s,s:s}", "code", 200, "uid", atoll_player_id(p),
                                       "area", atoll_area_id(atoll_player_area(p))));
}

static int
t_incr(atoll_req *req)
{
    atoll_player *p = atoll_req_player(req);
    int64_t n = atoll_incr(atoll_player_data(p), "n", atoll_get_int(atoll_req_body(req), "by", 1));
    return atoll_reply(req, atoll_pack("{s:i,s:I,s:s}", "code", 200, "n", n, "area",
                                       atoll_area_id(atoll_req_area(req))));
}

static int
t_fail(atoll_req *req)
{
    return ATOLL_ESTATE; /* answered {"code":500,"message":"not allowed in this state"} */
}

/* t.spoil {by?}: changes the player's data ("n" += by, default 100, and "spoiled")
 * and the area's state ("spoiled"), pushes onEffect {"to":"spoil"} to the player, then
 * fails: every change must be undone and the push dropped (persist_test). */
static int
t_spoil(atoll_req *req)
{
    atoll_player *p = atoll_req_player(req);
    atoll_incr(atoll_player_data(p), "n", atoll_get_int(atoll_req_body(req), "by", 100));
    atoll_set(atoll_player_data(p), "spoiled", atoll_bool(1));
    atoll_incr(atoll_area_state(atoll_req_area(req)), "spoiled", 1);
    atoll_push(p, "onEffect", atoll_pack("{s:s}", "to", "spoil"));
    return ATOLL_ESTATE;
}

/* t.spoils: what t.spoil and t.incr touch: the player's "n" and "spoiled", the area's
 * "spoiled" (0 or false when absent). */
static int
t_spoils(atoll_req *req)
{
    atoll_value *d = atoll_player_data(atoll_req_player(req));
    atoll_value *st = atoll_area_state(atoll_req_area(req));
    return atoll_reply(req, atoll_pack("{s:i,s:I,s:b,s:I}", "code", 200, "n",
                                       atoll_get_int(d, "n", 0), "spoiled",
                                       atoll_get_bool(d, "spoiled", 0), "area_spoiled",
                                       atoll_get_int(st, "spoiled", 0)));
}

/* t.peek: a query that writes the player's data ("peeked"), which atoll.h forbids: the
 * node logs it. */
static int
t_peek(atoll_req *req)
{
    atoll_incr(atoll_player_data(atoll_req_player(req)), "peeked", 1);
    return atoll_reply(req, atoll_pack("{s:i}", "code", 200));
}

static int
t_failmsg(atoll_req *req)
{
    return atoll_reply_error(req, 501, "custom failure %d", 7);
}

static int
t_spin(atoll_req *req)
{
    uint64_t ms = (uint64_t)atoll_get_int(atoll_req_body(req), "ms", 100);
    uint64_t start = now_us();
    while (now_us() - start < ms * 1000)
        ;
    return atoll_reply(req, atoll_pack("{s:i,s:I,s:I}", "code", 200, "start_us", (int64_t)start,
                                       "end_us", (int64_t)now_us()));
}

/* t.sleep {ms}: blocks its worker for ms, as game code that waits on something must
 * not. The watchdog's signal interrupts the sleep (EINTR): it sleeps what is left. */
static int
t_sleep(atoll_req *req)
{
    int64_t ms = atoll_get_int(atoll_req_body(req), "ms", 100);
    uint64_t start = now_us();
    struct timespec left = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&left, &left) != 0 && errno == EINTR)
        ;
    return atoll_reply(req, atoll_pack("{s:i,s:I}", "code", 200, "slept_ms",
                                       (int64_t)((now_us() - start) / 1000)));
}

/* Recursion with 1 KiB frames, `depth` deep: past the thread's stack, a stack
 * overflow. */
static int
recurse(int64_t depth, volatile char *prev)
{
    volatile char frame[1024];
    frame[0] = (char)(prev != NULL ? prev[0] + 1 : 0);
    if (depth <= 0)
        return frame[0];
    return recurse(depth - 1, frame) + frame[1];
}

/* Game code that crashes: a write to an address no process maps (the first page; not
 * NULL itself, which UBSan builds would catch before the fault), abort(), or a stack
 * overflow. */
static void
crash_now(const char *how)
{
    if (strcmp(how, "abort") == 0)
        abort();
    if (strcmp(how, "overflow") == 0)
        recurse(INT64_MAX, NULL);
    volatile int *volatile bad = (volatile int *)(uintptr_t)16;
    *bad = 1;
}

/* t.crash {how?}: crashes in the handler ("fault", default, "abort" or "overflow"). */
static int
t_crash(atoll_req *req)
{
    crash_now(atoll_get_str(atoll_req_body(req), "how", "fault"));
    return ATOLL_OK;
}

static void
crash_in_timer(atoll_area *a, int status, void *udata)
{
    if (status == ATOLL_OK)
        crash_now("fault");
}

/* t.crashlater {ms}: crashes in a timer of the area, ms later. */
static int
t_crashlater(atoll_req *req)
{
    atoll_timer_once(atoll_req_area(req), (uint64_t)atoll_get_int(atoll_req_body(req), "ms", 10),
                     crash_in_timer, NULL);
    return ATOLL_OK;
}

/* t.move {to, busy_ms?}: moves the player to area `to`. With busy_ms the area also
 * sends itself a t.spin of that long, which runs on this worker right after the move
 * has left: the old area's worker is then busy when the session's FENCE comes, so the
 * fence reaches the new area late (area/area.h, moving a player). */
static int
t_move(atoll_req *req)
{
    atoll_area *a = atoll_req_area(req);
    const char *to = atoll_get_str(atoll_req_body(req), "to", "");
    int64_t busy = atoll_get_int(atoll_req_body(req), "busy_ms", 0);
    int rc = atoll_player_move(atoll_req_player(req), to);
    if (rc != ATOLL_OK)
        return atoll_reply_error(req, 500, "move: %s", atoll_err_name(rc));
    if (busy > 0)
        atoll_send(a, atoll_area_id(a), "t.spin", atoll_pack("{s:I}", "ms", busy));
    return atoll_reply(req, atoll_pack("{s:i,s:s}", "code", 200, "to", to));
}

typedef struct call_ctx {
    atoll_req *kept;
    uint64_t start_us;
} call_ctx;

static void
on_call_done(atoll_area *a, int status, atoll_value *reply, void *udata)
{
    call_ctx *ctx = udata;
    atoll_reply(ctx->kept, atoll_pack("{s:i,s:s,s:o,s:I}", "code", 200, "status",
                                      status == ATOLL_OK ? "OK" : atoll_err_name(status),
                                      "reply", reply ? atoll_ref(reply) : atoll_null(),
                                      "elapsed_us", (int64_t)(now_us() - ctx->start_us)));
    free(ctx);
}

/* t.call {to, route, body, timeout, respawn?}: calls area `to` and answers with the
 * call's status, reply and time. With respawn, a one-way t.respawn goes to `to` first:
 * it destroys that area and has it created again under the same id, so the call, which
 * was resolved to the old area, reaches a worker that no longer has it and must be
 * sent again to the new one. */
static int
t_call(atoll_req *req)
{
    atoll_value *b = atoll_req_body(req);
    if (atoll_get_bool(b, "respawn", 0)) {
        int rc = atoll_send(atoll_req_area(req), atoll_get_str(b, "to", ""), "t.respawn", NULL);
        if (rc != ATOLL_OK)
            return atoll_reply_error(req, 500, "respawn: %s", atoll_err_name(rc));
    }
    call_ctx *ctx = malloc(sizeof *ctx);
    ctx->start_us = now_us();
    atoll_value *body = atoll_get(b, "body");
    int rc = atoll_call(atoll_req_area(req), atoll_get_str(b, "to", ""),
                        atoll_get_str(b, "route", "t.echo"), body ? atoll_copy(body) : NULL,
                        (uint32_t)atoll_get_int(b, "timeout", 1000), on_call_done, ctx);
    if (rc != ATOLL_OK) {
        free(ctx);
        return atoll_reply_error(req, 500, "call: %s", atoll_err_name(rc));
    }
    ctx->kept = atoll_req_keep(req, 0);
    return ATOLL_OK;
}

/* t.chain {to, n}: n calls to `to`, each made from the previous one's callback. With
 * `to` on the same worker this is a long run of local mail (more rounds than one loop
 * turn runs), so the answer arriving at all shows the worker keeps going. */
typedef struct chain_ctx {
    atoll_req *kept;
    char to[ATOLL_AREA_ID_MAX + 1];
    int64_t left, done;
} chain_ctx;

static void
on_chain(atoll_area *a, int status, atoll_value *reply, void *udata)
{
    chain_ctx *c = udata;
    if (status == ATOLL_OK)
        c->done++;
    if (status == ATOLL_OK && --c->left > 0 &&
        atoll_call(a, c->to, "t.echo", NULL, 1000, on_chain, c) == ATOLL_OK)
        return;
    atoll_reply(c->kept, atoll_pack("{s:i,s:I}", "code", 200, "done", c->done));
    free(c);
}

static int
t_chain(atoll_req *req)
{
    atoll_value *b = atoll_req_body(req);
    chain_ctx *c = calloc(1, sizeof *c);
    snprintf(c->to, sizeof c->to, "%s", atoll_get_str(b, "to", "t-1"));
    c->left = atoll_get_int(b, "n", 100);
    if (atoll_call(atoll_req_area(req), c->to, "t.echo", NULL, 1000, on_chain, c) != ATOLL_OK) {
        free(c);
        return ATOLL_EINVAL;
    }
    c->kept = atoll_req_keep(req, 0);
    return ATOLL_OK;
}

/* t.relay {left} (internal): sends itself to its own area until left is 0, then
 * answers the request t.sendchain kept in the area's udata. One-way sends set no timer,
 * so nothing but the worker's own local-mail handling keeps the chain moving. */
static int
t_relay(atoll_req *req)
{
    atoll_area *a = atoll_req_area(req);
    int64_t left = atoll_get_int(atoll_req_body(req), "left", 0);
    if (left > 0)
        return atoll_send(a, atoll_area_id(a), "t.relay", atoll_pack("{s:I}", "left", left - 1));
    atoll_req *kept = atoll_area_udata(a);
    atoll_area_set_udata(a, NULL);
    if (kept != NULL)
        atoll_reply(kept, atoll_pack("{s:i,s:s}", "code", 200, "relay", "done"));
    return ATOLL_OK;
}

static int
t_sendchain(atoll_req *req)
{
    atoll_area *a = atoll_req_area(req);
    if (atoll_area_udata(a) != NULL)
        return ATOLL_ESTATE;
    int rc = atoll_send(a, atoll_area_id(a), "t.relay",
                        atoll_pack("{s:I}", "left", atoll_get_int(atoll_req_body(req), "n", 100)));
    if (rc == ATOLL_OK)
        atoll_area_set_udata(a, atoll_req_keep(req, 0));
    return rc;
}

/* t.send {to, route, body, respawn?}: a one-way send; with respawn, t.respawn goes to
 * `to` first (as for t.call), so the send reaches a worker that no longer has it. */
static int
t_send(atoll_req *req)
{
    atoll_value *b = atoll_req_body(req);
    if (atoll_get_bool(b, "respawn", 0))
        atoll_send(atoll_req_area(req), atoll_get_str(b, "to", ""), "t.respawn", NULL);
    atoll_value *body = atoll_get(b, "body");
    int rc = atoll_send(atoll_req_area(req), atoll_get_str(b, "to", ""),
                        atoll_get_str(b, "route", "t.note"), body ? atoll_copy(body) : NULL);
    if (rc != ATOLL_OK)
        return atoll_reply_error(req, 500, "send: %s", atoll_err_name(rc));
    return ATOLL_OK;
}

static int
t_echo(atoll_req *req)
{
    const char *from = atoll_req_from(req);
    return atoll_reply(req, atoll_pack("{s:s,s:s,s:O}", "from", from ? from : "",
                                       "area", atoll_area_id(atoll_req_area(req)), "body",
                                       atoll_req_body(req)));
}

static void
slow_answer(atoll_area *a, int status, void *udata)
{
    /* ATOLL_ECANCELED: the area is being destroyed, the timer's last call. */
    atoll_reply(udata, atoll_pack("{s:s}", "slow", status == ATOLL_OK ? "done" : "cancelled"));
}

/* t.hold (internal): keeps the call and never answers it; the framework answers it
 * when the area is destroyed. */
static int
t_hold(atoll_req *req)
{
    atoll_req_keep(req, 0);
    return ATOLL_OK;
}

static int
t_slow(atoll_req *req)
{
    uint64_t ms = (uint64_t)atoll_get_int(atoll_req_body(req), "ms", 500);
    atoll_timer_once(atoll_req_area(req), ms, slow_answer, atoll_req_keep(req, 0));
    return ATOLL_OK;
}

static int
t_note(atoll_req *req)
{
    atoll_value *st = atoll_area_state(atoll_req_area(req));
    if (atoll_get(st, "notes") == NULL)
        atoll_set(st, "notes", atoll_array());
    atoll_append(atoll_get(st, "notes"), atoll_copy(atoll_req_body(req)));
    return ATOLL_OK;
}

static int
t_notes(atoll_req *req)
{
    atoll_value *notes = atoll_get(atoll_area_state(atoll_req_area(req)), "notes");
    return atoll_reply(req, atoll_pack("{s:i,s:o}", "code", 200, "notes",
                                       notes ? atoll_ref(notes) : atoll_array()));
}

typedef struct timer_ctx {
    atoll_player *p; /* valid: the test stays in the area while its timers run */
    char uid[ATOLL_UID_MAX + 1];
    int64_t left;
    uint64_t id;
    uint64_t start_us;
} timer_ctx;

static void
on_test_timer(atoll_area *a, int status, void *udata)
{
    timer_ctx *t = udata;
    if (status != ATOLL_OK) {
        free(t); /* the area is gone: the timer's last call */
        return;
    }
    atoll_player *p = atoll_area_player(a, t->uid);
    if (p != NULL)
        atoll_push(p, "onTimer", atoll_pack("{s:I,s:I}", "left", t->left - 1, "elapsed_us",
                                            (int64_t)(now_us() - t->start_us)));
    if (--t->left <= 0) {
        if (t->id != 0)
            atoll_timer_cancel(a, t->id);
        free(t);
    }
}

static int
t_timer(atoll_req *req)
{
    atoll_value *b = atoll_req_body(req);
    timer_ctx *t = calloc(1, sizeof *t);
    snprintf(t->uid, sizeof t->uid, "%s", atoll_player_id(atoll_req_player(req)));
    t->left = atoll_get_int(b, "count", 1);
    t->start_us = now_us();
    uint64_t ms = (uint64_t)atoll_get_int(b, "ms", 50);
    if (atoll_get_bool(b, "every", 0))
        t->id = atoll_timer_every(atoll_req_area(req), ms, on_test_timer, t);
    else
        atoll_timer_once(atoll_req_area(req), ms, on_test_timer, t);
    return ATOLL_OK;
}

static int
t_cancel(atoll_req *req)
{
    /* A repeating timer cancelled before it fires never runs; cancelling twice fails. */
    uint64_t id = atoll_timer_every(atoll_req_area(req), 20, on_test_timer, NULL);
    int first = atoll_timer_cancel(atoll_req_area(req), id);
    int second = atoll_timer_cancel(atoll_req_area(req), id);
    return atoll_reply(req, atoll_pack("{s:i,s:s,s:s}", "code", 200, "first",
                                       atoll_err_name(first), "second", atoll_err_name(second)));
}

static int
t_create(atoll_req *req)
{
    atoll_value *b = atoll_req_body(req);
    atoll_value *init = atoll_get(b, "init");
    int rc = atoll_area_create(atoll_area_node(atoll_req_area(req)), atoll_get_str(b, "type", "t"),
                               atoll_get_str(b, "id", ""), init ? atoll_copy(init) : NULL);
    return atoll_reply(req, atoll_pack("{s:i,s:s}", "code", 200, "result",
                                       rc == ATOLL_OK ? "OK" : atoll_err_name(rc)));
}

static int
t_destroy(atoll_req *req)
{
    atoll_area_destroy(atoll_req_area(req));
    return ATOLL_OK;
}

/* t.respawn (internal): destroys this area; t_destroyed creates it again. */
static int
t_respawn(atoll_req *req)
{
    atoll_area *a = atoll_req_area(req);
    atoll_set(atoll_area_state(a), "respawn", atoll_bool(1));
    atoll_area_destroy(a); /* when this handler returns */
    return ATOLL_OK;
}

/* An area destroyed by t.respawn is created again under its id (its number changes),
 * with init {"respawned": n}, n counting its lives. */
static void
t_destroyed(atoll_area *a)
{
    atoll_value *st = atoll_area_state(a);
    if (!atoll_get_bool(st, "respawn", 0))
        return;
    int64_t n = atoll_get_int(atoll_get(st, "init"), "respawned", 0) + 1;
    atoll_area_create(atoll_area_node(a), "t", atoll_area_id(a),
                      atoll_pack("{s:I}", "respawned", n));
}

static int
t_areas(atoll_req *req)
{
    atoll_area_stats st[64];
    size_t n = atoll_node_areas(atoll_area_node(atoll_req_area(req)), st, 64);
    atoll_value *list = atoll_array();
    for (size_t i = 0; i < n && i < 64; i++)
        atoll_append(list, atoll_pack("{s:s,s:s,s:i,s:i,s:I,s:I,s:i,s:I}", "id", st[i].id,
                                      "type", st[i].type, "worker", st[i].worker, "players",
                                      (int)st[i].players, "messages", (int64_t)st[i].messages,
                                      "ticks", (int64_t)st[i].ticks, "queue",
                                      (int)st[i].queue_depth, "slow", (int64_t)st[i].slow));
    return atoll_reply(req, atoll_pack("{s:i,s:i,s:o}", "code", 200, "count", (int)n, "areas",
                                       list));
}

static int
t_kick(atoll_req *req)
{
    atoll_player_kick(atoll_req_player(req), "bye");
    return ATOLL_OK;
}

static int
t_data(atoll_req *req)
{
    return atoll_reply(req, atoll_pack("{s:i,s:O,s:O}", "code", 200, "data",
                                       atoll_player_data(atoll_req_player(req)), "state",
                                       atoll_area_state(atoll_req_area(req))));
}

static int
t_init(atoll_area *a, const atoll_value *init)
{
    if (init != NULL)
        atoll_set(atoll_area_state(a), "init", atoll_copy(init));
    if (atoll_get_bool(init, "refuse", 0))
        return ATOLL_EINVAL;
    return ATOLL_OK;
}

static int
t_enter(atoll_area *a, atoll_player *p)
{
    atoll_incr(atoll_area_state(a), "entered", 1);
    atoll_incr(atoll_player_data(p), "visits", 1);
    atoll_push(p, "onEnter", atoll_pack("{s:s,s:i}", "area", atoll_area_id(a), "players",
                                        (int)atoll_area_player_count(a)));
    return ATOLL_OK;
}

static void
t_leave(atoll_area *a, atoll_player *p, atoll_leave_reason why)
{
    atoll_incr(atoll_area_state(a), "left", 1);
    /* A change deep in the player's data (the areas it left, a list in it): the
     * persistence tests check that what on_leave changes is written, even when the
     * player leaves from a timer (its resume window ending). */
    atoll_value *data = atoll_player_data(p);
    if (atoll_get(data, "left") == NULL)
        atoll_set(data, "left", atoll_array());
    atoll_append(atoll_get(data, "left"), atoll_str(atoll_area_id(a)));
    if (why == ATOLL_LEAVE_MOVE)
        atoll_push(p, "onLeave", atoll_pack("{s:s}", "area", atoll_area_id(a)));
}

/* Resume: the area counts who went away and came back, and tells the others. */
static void
t_disconnect(atoll_area *a, atoll_player *p)
{
    atoll_incr(atoll_area_state(a), "away", 1);
    atoll_push_area(a, "onAway", atoll_pack("{s:s}", "uid", atoll_player_id(p)));
}

static void
t_resume(atoll_area *a, atoll_player *p)
{
    atoll_incr(atoll_area_state(a), "back", 1);
    atoll_push_area(a, "onBack", atoll_pack("{s:s}", "uid", atoll_player_id(p)));
}

/* t.presence: the players and what the resume hooks counted. */
static int
t_presence(atoll_req *req)
{
    atoll_area *a = atoll_req_area(req);
    atoll_value *st = atoll_area_state(a);
    int away_now = 0;
    for (atoll_player *p = atoll_area_first(a); p; p = atoll_area_next(p))
        away_now += atoll_player_disconnected(p) ? 1 : 0;
    return atoll_reply(req, atoll_pack("{s:i,s:i,s:i,s:I,s:I,s:I}", "code", 200, "players",
                                       (int)atoll_area_player_count(a), "away_now", away_now,
                                       "away", atoll_get_int(st, "away", 0), "back",
                                       atoll_get_int(st, "back", 0), "left",
                                       atoll_get_int(st, "left", 0)));
}

/* t.moveaway {uid, to}: moves another player of the area (a disconnected one is
 * refused: answered with the error's name). */
static int
t_moveaway(atoll_req *req)
{
    atoll_value *b = atoll_req_body(req);
    atoll_player *p = atoll_area_player(atoll_req_area(req), atoll_get_str(b, "uid", ""));
    int rc = p ? atoll_player_move(p, atoll_get_str(b, "to", "")) : ATOLL_ENOENT;
    return atoll_reply(req, atoll_pack("{s:i,s:s}", "code", 200, "rc", atoll_err_name(rc)));
}

/* t.kickother {uid}: kicks another player of the area. */
static int
t_kickother(atoll_req *req)
{
    atoll_player *p = atoll_area_player(atoll_req_area(req),
                                        atoll_get_str(atoll_req_body(req), "uid", ""));
    atoll_player_kick(p, "kicked");
    return atoll_reply(req, atoll_pack("{s:i,s:b}", "code", 200, "found", p != NULL));
}

/* t.keepfor {ms}: keeps the request with a deadline of ms and never answers it: the
 * framework does when the deadline passes. */
static int
t_keepfor(atoll_req *req)
{
    int64_t ms = atoll_get_int(atoll_req_body(req), "ms", 100);
    return atoll_req_keep(req, (uint32_t)ms) != NULL ? ATOLL_OK : ATOLL_ESTATE;
}

typedef struct later {
    char uid[ATOLL_UID_MAX + 1];
} later;

static void
on_later(atoll_area *a, int status, void *udata)
{
    later *l = udata;
    if (status == ATOLL_OK) {
        int rc = atoll_push_uid(a, l->uid, "onLater", atoll_pack("{s:s}", "to", l->uid));
        atoll_set(atoll_area_state(a), "later_rc", atoll_str(atoll_err_name(rc)));
    }
    free(l);
}

/* t.pushlater {uid, ms}: after ms, pushes onLater to player uid by its id (the player
 * may have left by then); t.laterrc tells what atoll_push_uid returned. */
static int
t_pushlater(atoll_req *req)
{
    atoll_value *b = atoll_req_body(req);
    later *l = calloc(1, sizeof *l);
    snprintf(l->uid, sizeof l->uid, "%s", atoll_get_str(b, "uid", ""));
    atoll_timer_once(atoll_req_area(req), (uint64_t)atoll_get_int(b, "ms", 100), on_later, l);
    return ATOLL_OK;
}

static int
t_laterrc(atoll_req *req)
{
    return atoll_reply(req, atoll_pack("{s:i,s:s}", "code", 200, "rc",
                                       atoll_get_str(atoll_area_state(atoll_req_area(req)),
                                                     "later_rc", "")));
}

/* t.admit (internal), the game's admission: refuses uids on the area's ban list (403),
 * counts who it let in, and answers after "wait_ms" of the entry body when there is one
 * (an answer that takes time, from a timer). */
static void
admit_later(atoll_area *a, int status, void *udata)
{
    (void)a;
    atoll_req *k = udata;
    if (status == ATOLL_OK)
        atoll_reply(k, atoll_pack("{s:i}", "code", 200));
}

static int
t_admit(atoll_req *req)
{
    atoll_area *a = atoll_req_area(req);
    atoll_value *st = atoll_area_state(a);
    atoll_value *b = atoll_req_body(req);
    const char *uid = atoll_get_str(b, "uid", "");
    atoll_value *banned = atoll_get(st, "banned");
    for (size_t i = 0; banned && i < atoll_len(banned); i++)
        if (strcmp(atoll_as_str(atoll_at(banned, i), ""), uid) == 0)
            return atoll_reply_error(req, 403, "%s is banned", uid);
    atoll_incr(st, "admitted", 1);
    int64_t wait = atoll_get_int(atoll_get(b, "body"), "wait_ms", 0);
    if (wait > 0) {
        atoll_timer_once(a, (uint64_t)wait, admit_later, atoll_req_keep(req, 0));
        return ATOLL_OK;
    }
    return atoll_reply(req, atoll_pack("{s:i}", "code", 200));
}

/* t.ban {uid}: puts uid on this area's ban list. */
static int
t_ban(atoll_req *req)
{
    atoll_value *st = atoll_area_state(atoll_req_area(req));
    if (atoll_get(st, "banned") == NULL)
        atoll_set(st, "banned", atoll_array());
    atoll_append(atoll_get(st, "banned"),
                 atoll_str(atoll_get_str(atoll_req_body(req), "uid", "")));
    return atoll_reply(req, atoll_pack("{s:i,s:I}", "code", 200, "admitted",
                                       atoll_get_int(st, "admitted", 0)));
}

/* The bug safety_test shows being caught: t.keepme keeps the caller's atoll_player*
 * past its callback (which atoll.h forbids), t.usestale pushes through it later, after
 * that player left, and answers what atoll_push returned (if the node is still up). */
static atoll_player *kept_player;

static int
t_keepme(atoll_req *req)
{
    kept_player = atoll_req_player(req);
    return ATOLL_OK;
}

static int
t_usestale(atoll_req *req)
{
    int rc = atoll_push(kept_player, "onStale", NULL);
    kept_player = NULL;
    return atoll_reply(req, atoll_pack("{s:i,s:s}", "code", 200, "rc", atoll_err_name(rc)));
}

static const atoll_area_type type_t = {
    .name = "t",
    .handlers = (const atoll_handler[]){
        {"info", t_info, ATOLL_QUERY},
        {"who", t_who, ATOLL_QUERY},
        {"twice", t_twice, 0},
        {"incr", t_incr, 0},
        {"fail", t_fail, 0},
        {"failmsg", t_failmsg, 0},
        {"spoil", t_spoil, 0},
        {"spoils", t_spoils, ATOLL_QUERY},
        {"peek", t_peek, ATOLL_QUERY},
        {"spin", t_spin, 0},
        {"sleep", t_sleep, 0},
        {"crash", t_crash, 0},
        {"crashlater", t_crashlater, 0},
        {"move", t_move, 0},
        {"call", t_call, 0},
        {"send", t_send, 0},
        {"chain", t_chain, 0},
        {"relay", t_relay, ATOLL_INTERNAL},
        {"sendchain", t_sendchain, 0},
        {"echo", t_echo, 0},
        {"slow", t_slow, ATOLL_INTERNAL},
        {"hold", t_hold, ATOLL_INTERNAL},
        {"note", t_note, ATOLL_INTERNAL},
        {"notes", t_notes, ATOLL_QUERY},
        {"timer", t_timer, 0},
        {"cancel", t_cancel, 0},
        {"create", t_create, 0},
        {"destroy", t_destroy, 0},
        {"respawn", t_respawn, ATOLL_INTERNAL},
        {"areas", t_areas, ATOLL_QUERY},
        {"kick", t_kick, 0},
        {"data", t_data, ATOLL_QUERY},
        {"presence", t_presence, ATOLL_QUERY},
        {"admit", t_admit, ATOLL_INTERNAL},
        {"ban", t_ban, 0},
        {"keepfor", t_keepfor, 0},
        {"keepme", t_keepme, 0},
        {"usestale", t_usestale, 0},
        {"pushlater", t_pushlater, 0},
        {"laterrc", t_laterrc, ATOLL_QUERY},
        {"moveaway", t_moveaway, 0},
        {"kickother", t_kickother, 0},
        {NULL, NULL, 0},
    },
    .on_create = t_init,
    .on_destroy = t_destroyed,
    .on_enter = t_enter,
    .on_leave = t_leave,
    .on_disconnect = t_disconnect,
    .on_resume = t_resume,
};

/* ---- area type "g": the game-loop model, 20 Hz with queued commands ---- */

#define G_HZ 20
#define G_PERIOD_US (1000000 / G_HZ)

static int
g_cmd(atoll_req *req)
{
    atoll_value *st = atoll_area_state(atoll_req_area(req));
    if (atoll_get(st, "log") == NULL)
        atoll_set(st, "log", atoll_array());
    /* Which tick applied it: commands run at the start of a tick, before on_tick. */
    atoll_append(atoll_get(st, "log"),
                 atoll_pack("{s:I,s:I}", "v", atoll_get_int(atoll_req_body(req), "v", 0), "tick",
                            atoll_get_int(st, "ticks", 0) + 1));
    return atoll_reply(req, atoll_pack("{s:i,s:I}", "code", 200, "tick",
                                       atoll_get_int(st, "ticks", 0) + 1));
}

static int
g_log(atoll_req *req)
{
    atoll_value *st = atoll_area_state(atoll_req_area(req));
    atoll_value *log = atoll_get(st, "log");
    return atoll_reply(req, atoll_pack("{s:i,s:o,s:I,s:I,s:I,s:I}", "code", 200, "log",
                                       log ? atoll_ref(log) : atoll_array(), "ticks",
                                       atoll_get_int(st, "ticks", 0), "late_max_us",
                                       atoll_get_int(st, "late_max_us", 0), "dt_ms",
                                       atoll_get_int(st, "dt_ms", 0), "due_us",
                                       atoll_get_int(st, "due_us", 0)));
}

/* g.spin {periods} (a query, so it runs at once): keeps the worker busy until halfway
 * between two due times, `periods` tick periods after the last tick was due, missing
 * the ticks due meanwhile. Answers the tick count and due time of that last tick. */
static int
g_spin(atoll_req *req)
{
    atoll_value *st = atoll_area_state(atoll_req_area(req));
    int64_t due = atoll_get_int(st, "due_us", 0);
    int64_t periods = atoll_get_int(atoll_req_body(req), "periods", 16);
    uint64_t start = now_us();
    uint64_t end = (uint64_t)(due + periods * G_PERIOD_US + G_PERIOD_US / 2);
    while (now_us() < end)
        ;
    return atoll_reply(req, atoll_pack("{s:i,s:I,s:I,s:I}", "code", 200, "ticks",
                                       atoll_get_int(st, "ticks", 0), "due_us", due, "spun_us",
                                       (int64_t)(now_us() - start)));
}

static void
g_tick(atoll_area *a, const atoll_tick *t)
{
    atoll_value *st = atoll_area_state(a);
    atoll_set_int(st, "ticks", (int64_t)t->count);
    atoll_set_int(st, "dt_ms", (int64_t)(t->dt * 1000.0 + 0.5));
    /* When it was due (started late_ns after that): on the schedule, whatever the load. */
    atoll_set_int(st, "due_us", (int64_t)(now_us() - t->late_ns / 1000));
    int64_t late = (int64_t)(t->late_ns / 1000);
    if (t->count > 1 && late > atoll_get_int(st, "late_max_us", 0))
        atoll_set_int(st, "late_max_us", late);
}

static const atoll_area_type type_g = {
    .name = "g",
    .handlers = (const atoll_handler[]){
        {"cmd", g_cmd, 0},
        {"log", g_log, ATOLL_QUERY},
        {"spin", g_spin, ATOLL_QUERY},
        {NULL, NULL, 0},
    },
    .tick_hz = G_HZ,
    .on_tick = g_tick,
    .queue_commands = 1,
};

/* ---- "e": destroyed 200 ms after its last player left; "r": refuses players; "q" ---- */

static const atoll_area_type type_e = {
    .name = "e",
    .handlers = (const atoll_handler[]){{"info", t_info, ATOLL_QUERY}, {NULL, NULL, 0}},
    .empty_grace_ms = 200,
};

/* "q": destroyed 1 ms after it empties, so entries race its destruction. */
static const atoll_area_type type_q = {
    .name = "q",
    .handlers = (const atoll_handler[]){{"info", t_info, ATOLL_QUERY}, {NULL, NULL, 0}},
    .empty_grace_ms = 1,
};

static int
r_enter(atoll_area *a, atoll_player *p)
{
    return ATOLL_ESTATE;
}

static const atoll_area_type type_r = {
    .name = "r",
    .handlers = (const atoll_handler[]){{"info", t_info, 0}, {NULL, NULL, 0}},
    .on_enter = r_enter,
};

/* ---- "x": the effects stage ---- */

/* x.effects {push, area, reply, kick, move, call, fail}: pushes "onEffect" to the
 * player and/or the area, replies, kicks, moves to `move`, calls x.note in `call`, as
 * the body asks; then fails (ATOLL_ESTATE) when fail is true, so that every one of
 * them must be dropped. A call's callback records its status in the area's state. */
static void
x_call_done(atoll_area *a, int status, atoll_value *reply, void *udata)
{
    atoll_set_str(atoll_area_state(a), "call_status",
                  status == ATOLL_OK ? "OK" : atoll_err_name(status));
}

static int
x_effects(atoll_req *req)
{
    atoll_value *b = atoll_req_body(req);
    atoll_player *p = atoll_req_player(req);
    atoll_area *a = atoll_req_area(req);
    if (atoll_get_bool(b, "push", 0))
        atoll_push(p, "onEffect", atoll_pack("{s:s}", "to", "player"));
    if (atoll_get_bool(b, "area", 0))
        atoll_push_area(a, "onEffect", atoll_pack("{s:s}", "to", "area"));
    if (atoll_get_bool(b, "reply", 0))
        atoll_reply(req, atoll_pack("{s:i,s:s}", "code", 200, "from", "handler"));
    if (atoll_get_bool(b, "kick", 0))
        atoll_player_kick(p, "effects");
    const char *to = atoll_get_str(b, "move", NULL);
    if (to != NULL)
        atoll_player_move(p, to);
    const char *target = atoll_get_str(b, "call", NULL);
    if (target != NULL) {
        atoll_set_str(atoll_area_state(a), "call_status", "pending");
        atoll_call(a, target, "x.note", atoll_pack("{s:s}", "from", atoll_area_id(a)), 5000,
                   x_call_done, NULL);
    }
    return atoll_get_bool(b, "fail", 0) ? ATOLL_ESTATE : ATOLL_OK;
}

static const atoll_area_type type_x = {
    .name = "x",
    .handlers = (const atoll_handler[]){
        {"effects", x_effects, 0},
        {"info", t_info, ATOLL_QUERY},
        {"note", t_note, ATOLL_INTERNAL},
        {"notes", t_notes, ATOLL_QUERY},
        {"data", t_data, ATOLL_QUERY},
        {NULL, NULL, 0},
    },
};

/* ---- areas that move between nodes (migrate_test) -------------------------------------------
 * "mv": C state in udata (moved_in counts the arrivals), given over by on_move_out and
 * built again by on_move_in; a tick (t->count kept in the state), queued commands, a
 * timer whose udata points into the game's static data, and a call it waits for.
 * "nomv": udata without the hooks: never moved. "inst": drain_waits, ended by inst.end. */

typedef struct mv_c {
    int64_t moved_in;
} mv_c;

static const char mv_tag[] = "static-tag"; /* a timer's and a call's udata */

static int
mv_create(atoll_area *a, const atoll_value *init)
{
    (void)init;
    atoll_area_set_udata(a, calloc(1, sizeof(mv_c)));
    return ATOLL_OK;
}

static void
mv_destroy(atoll_area *a)
{
    free(atoll_area_udata(a));
}

static int
mv_move_out(atoll_area *a)
{
    if (atoll_get_bool(atoll_area_state(a), "refuse_move", 0))
        return ATOLL_ESTATE; /* refused: everything stays as it is */
    mv_c *c = atoll_area_udata(a);
    atoll_set_int(atoll_area_state(a), "moved_in_c", c->moved_in);
    atoll_incr(atoll_area_state(a), "moves_out", 1);
    free(c);
    atoll_area_set_udata(a, NULL);
    return ATOLL_OK;
}

static void
mv_move_in(atoll_area *a)
{
    mv_c *c = calloc(1, sizeof *c);
    c->moved_in = atoll_get_int(atoll_area_state(a), "moved_in_c", 0) + 1;
    atoll_area_set_udata(a, c);
}

static void
mv_tick(atoll_area *a, const atoll_tick *t)
{
    atoll_set_int(atoll_area_state(a), "ticks", (int64_t)t->count);
}

static int
mv_cmd(atoll_req *req)
{
    int64_t n = atoll_incr(atoll_area_state(atoll_req_area(req)), "cmds", 1);
    return atoll_reply(req, atoll_pack("{s:i,s:I}", "code", 200, "cmds", n));
}

static void
mv_fired(atoll_area *a, int status, void *udata)
{
    if (status != ATOLL_OK)
        return;
    atoll_set_int(atoll_area_state(a), "fired_at", (int64_t)atoll_now_ms());
    atoll_set_str(atoll_area_state(a), "fired_tag", udata == mv_tag ? "same" : "other");
}

static int
mv_arm(atoll_req *req)
{
    atoll_area *a = atoll_req_area(req);
    int64_t ms = atoll_get_int(atoll_req_body(req), "ms", 1000);
    atoll_set_int(atoll_area_state(a), "armed_at", (int64_t)atoll_now_ms());
    atoll_timer_once(a, (uint64_t)ms, mv_fired, (void *)mv_tag);
    return ATOLL_OK;
}

static void
mv_called(atoll_area *a, int status, atoll_value *reply, void *udata)
{
    atoll_set_int(atoll_area_state(a), "call_status", status);
    atoll_set_str(atoll_area_state(a), "call_tag", udata == mv_tag ? "same" : "other");
    (void)reply;
}

static int
mv_callslow(atoll_req *req)
{
    atoll_value *b = atoll_req_body(req);
    atoll_area *a = atoll_req_area(req);
    atoll_set_str(atoll_area_state(a), "call_status", "pending");
    atoll_call(a, atoll_get_str(b, "to", "t-1"), "t.slow",
               atoll_pack("{s:I}", "ms", atoll_get_int(b, "ms", 1000)), 10000, mv_called,
               (void *)mv_tag);
    return ATOLL_OK;
}

static int
mv_set(atoll_req *req)
{
    atoll_value *b = atoll_req_body(req);
    atoll_set_bool(atoll_area_state(atoll_req_area(req)), "refuse_move",
                   atoll_get_bool(b, "refuse_move", 0));
    return ATOLL_OK;
}

static int
mv_info(atoll_req *req)
{
    atoll_area *a = atoll_req_area(req);
    mv_c *c = atoll_area_udata(a);
    return atoll_reply(req, atoll_pack("{s:i,s:O,s:I,s:s}", "code", 200, "state",
                                       atoll_area_state(a), "moved_in", c ? c->moved_in : -1,
                                       "node", atoll_setting(atoll_area_node(a), "node.name", "")));
}

static const atoll_area_type type_mv = {
    .name = "mv",
    .handlers = (const atoll_handler[]){
        {"cmd", mv_cmd, 0},
        {"arm", mv_arm, ATOLL_QUERY},
        {"callslow", mv_callslow, ATOLL_QUERY},
        {"set", mv_set, ATOLL_QUERY},
        {"info", mv_info, ATOLL_QUERY},
        {NULL, NULL, 0},
    },
    .tick_hz = 20,
    .on_tick = mv_tick,
    .queue_commands = 1,
    .on_create = mv_create,
    .on_destroy = mv_destroy,
    .on_move_out = mv_move_out,
    .on_move_in = mv_move_in,
};

static const atoll_area_type type_nomv = {
    .name = "nomv",
    .handlers = (const atoll_handler[]){{"info", t_info, ATOLL_QUERY}, {NULL, NULL, 0}},
    .on_create = mv_create,
    .on_destroy = mv_destroy,
};

static int
inst_end(atoll_req *req)
{
    atoll_area_destroy(atoll_req_area(req));
    return ATOLL_OK;
}

static const atoll_area_type type_inst = {
    .name = "inst",
    .handlers = (const atoll_handler[]){
        {"info", t_info, ATOLL_QUERY}, {"end", inst_end, 0}, {NULL, NULL, 0}},
    .drain_waits = 1,
};

static int
entry(atoll_entry *e)
{
    /* What a game's entry hook sees of a signed login (login_test): the body's uid is
     * the player's (the token's sub with auth.jwt_secret), and no token. */
    const char *body_uid = atoll_get_str(e->body, "uid", NULL);
    if ((body_uid != NULL && strcmp(body_uid, e->uid) != 0) || atoll_get(e->body, "token") != NULL)
        return ATOLL_EINVAL;
    snprintf(e->area_id, sizeof e->area_id, "%s", atoll_get_str(e->body, "area", "t-1"));
    e->area_type = atoll_get_str(e->body, "type", "t");
    /* {"admit": "<area>"}: that area's t.admit decides (admission_test). */
    const char *gate = atoll_get_str(e->body, "admit", NULL);
    if (gate != NULL) {
        snprintf(e->admit_area, sizeof e->admit_area, "%s", gate);
        e->admit_route = atoll_get_str(e->body, "admit_route", "t.admit");
        e->admit_timeout_ms = (uint32_t)atoll_get_int(e->body, "admit_ms", 0);
    }
    /* e->area_type points into the body, which lives until the entry is placed. */
    return ATOLL_OK;
}

/* Guests (sessions that send a t.* message before gate.entry) go to t-2. */
static int
guest(atoll_entry *e)
{
    snprintf(e->area_id, sizeof e->area_id, "t-2");
    e->area_type = "t";
    return ATOLL_OK;
}

static int
init(atoll_node *n)
{
    int rc = atoll_area_create(n, "t", "t-1", NULL);
    if (rc == ATOLL_OK)
        rc = atoll_area_create(n, "t", "t-2", NULL);
    if (rc == ATOLL_OK)
        rc = atoll_area_create(n, "g", "g-1", NULL);
    return rc;
}

static const char *const pushes[] = {"onEnter", "onLeave", "onTimer", "onEffect", NULL};

static const atoll_game testgame = {
    .name = "testgame",
    .area_types = (const atoll_area_type *const[]){&type_t, &type_g, &type_e, &type_r, &type_q,
                                                    &type_x, &type_mv, &type_nomv, &type_inst,
                                                    NULL},
    .entry = entry,
    .init = init,
    .push_routes = pushes,
    .guest = guest,
};

ATOLL_GAME_MODULE(testgame)
