/* run.c -- running game code in an area: a client's request, a call from another
 * area, a queued command, a tick; and what a handler gives back: replies (now or kept
 * for later), pushes to a player, to a list and to the whole area, each encoded once.
 */
#include "area.h"
#include "../node/metrics.h"
#include "../value/value.h"

#include <stdarg.h>
#include <stdio.h>

/* ---- encoding replies and pushes ------------------------------------------------------ */

/* JSON text of v ("{}" for NULL) into w->areas->scratch_out. */
static void
encode_json(atoll__worker *w, const atoll_value *v)
{
    w->areas->scratch_out.len = 0;
    if (v == NULL)
        atoll__buf_append(&w->areas->scratch_out, "{}", 2);
    else
        atoll__value_write(&w->areas->scratch_out, v);
}

void
atoll__put_response(atoll__buf *out, uint32_t id, const uint8_t *json, size_t len)
{
    const void *body = atoll__response_fit(id, json, &len);
    atoll__msg_put_response(out, id, body, len);
}

/* The encoded push package of route/body in *out, or false (logged) when too large. */
static bool
put_push(atoll__worker *w, atoll__buf *out, const char *route, const atoll_value *body)
{
    atoll__node *n = w->node;
    size_t rlen = strlen(route);
    uint16_t code = n->cfg->dict ? atoll__dict_code(n->dict, route, rlen) : 0;
    encode_json(w, body);
    if (atoll__push_pkg_size(route, rlen, code, w->areas->scratch_out.len) == 0)
        return false;
    atoll__msg_put_push(out, route, rlen, code, atoll__buf_data(&w->areas->scratch_out),
                        w->areas->scratch_out.len);
    return true;
}

void
atoll__session_out_now(atoll__worker *w, atoll_session_id s, int sw, const uint8_t *p, size_t n)
{
    if (atoll__session_node(s) == w->node->id && sw == w->index)
        atoll__session_deliver(w, s, p, n);
    else
        atoll__send_out(w->node, s, p, n);
}

void
atoll__session_out(atoll__worker *w, atoll_session_id s, int sw, const uint8_t *p, size_t n)
{
    if (atoll__fx_active(w))
        atoll__fx_out(w, s, sw, p, n);
    else if (atoll__docs_holding(w))
        atoll__docs_hold_out(w, s, sw, p, n); /* behind output that waits for a commit */
    else
        atoll__session_out_now(w, s, sw, p, n);
}

/* Answers a client's request with JSON text: staged while game code runs, unless now
 * (the answer of a kept request belongs to the message that kept it). */
static void
answer_client(atoll__worker *w, atoll_session_id s, int sw, uint32_t id, const uint8_t *json,
              size_t len, bool now)
{
    struct atoll__area_worker *aw = w->areas;
    if (aw->exact_id != 0 && id == aw->exact_id && s.v == aw->exact_session.v) {
        /* The answer of a numbered request: kept with its record (exact.c). */
        aw->exact_answer.len = 0;
        atoll__buf_append(&aw->exact_answer, json, len);
        aw->exact_caught = true;
    }
    if (!now && atoll__fx_active(w)) {
        /* The common case, a handler's reply: encoded straight into the journal. */
        size_t mark;
        atoll__put_response(atoll__fx_out_begin(w, s, sw, &mark), id, json, len);
        atoll__fx_out_end(w, mark);
        return;
    }
    /* Worker scratch: no allocation per reply. session_out copies it out. */
    atoll__buf *pkg = &w->areas->scratch_pkg;
    pkg->len = 0;
    atoll__put_response(pkg, id, json, len);
    if (now)
        atoll__docs_kept_answer(w, s, sw, id, atoll__buf_data(pkg), pkg->len);
    else
        atoll__session_out(w, s, sw, atoll__buf_data(pkg), pkg->len);
}

void
atoll__answer_client_json(atoll__worker *w, atoll_session_id s, int sw, uint32_t id,
                          const uint8_t *json, size_t len)
{
    answer_client(w, s, sw, id, json, len, false);
}

void
atoll__answer_client_error(atoll__worker *w, atoll_session_id s, int sw, uint32_t id, int code,
                    const char *msg)
{
    atoll__buf b = ATOLL__BUF_INIT;
    atoll__json_put_error(&b, code, msg);
    atoll__answer_client_json(w, s, sw, id, atoll__buf_data(&b), b.len);
    atoll__buf_fini(&b);
}

/* ---- running game code ------------------------------------------------------------------- */

/* Handler time is sampled: one run in HANDLER_SAMPLE is timed and counted
 * HANDLER_SAMPLE times. Reading the clock twice per handler cost 17 % of a call's CPU
 * in the calls benchmark (clock_gettime is not cheap on every virtual machine), and a
 * total over thousands of runs does not need every one of them. */
#define HANDLER_SAMPLE 8
static __thread uint64_t begin_ns;
static __thread unsigned sample_tick;
static __thread bool sampling;
static __thread bool timing_handler; /* the sampled run is a handler's: for GET /metrics */

void
atoll__area_begin(atoll_area *a)
{
    if (a->depth++ == 0) {
        sampling = ++sample_tick % HANDLER_SAMPLE == 0;
        if (sampling)
            begin_ns = atoll__now_ns();
    }
}

void
atoll__area_end(atoll_area *a)
{
    if (--a->depth > 0)
        return;
    if (sampling) {
        uint64_t spent = atoll__now_ns() - begin_ns;
        a->handler_ns += spent * HANDLER_SAMPLE;
        if (timing_handler) /* not a tick's, a timer's or a hook's: they are not handlers */
            atoll__metric_observe(ATOLL_HIST_HANDLER, spent);
        sampling = false;
    }
    timing_handler = false;
    if (a->has_moves)
        atoll__do_moves(a->worker, a);
    if (a->destroy_requested)
        atoll__area_destroy_now(a->worker, a, false);
}

/* Answers a request that its handler left unanswered. */
static void
finish_req(atoll__worker *w, atoll_req *r, int rc)
{
    if (r->kept || r->answered || !r->wants_answer)
        return;
    if (rc < 0) {
        if (r->kind == ATOLL__REQ_CLIENT)
            ATOLL_LOG(ATOLL_LOG_INFO, "msg=\"handler failed\" route=%s error=%s", r->route,
                      atoll_err_name(rc));
        atoll_reply_error(r, 500, "%s", atoll_strerror(rc));
    } else {
        atoll_reply(r, atoll_pack("{s:i}", "code", 200));
    }
}

static void
run_handler(atoll__worker *w, atoll_area *a, atoll_req *r, const atoll_handler *h)
{
    atoll__area_begin(a);
    timing_handler = a->depth == 1; /* not a command run by a tick */
    a->messages++;
    if (r->kind == ATOLL__REQ_CLIENT && r->route != NULL)
        atoll__metric_route(r->route, false);
    atoll__fx_begin(w);
    atoll__fx *fx = &w->areas->fx;
    if (h->flags & ATOLL_QUERY)
        fx->query = r->route;
    if (r->kind == ATOLL__REQ_CLIENT && r->wants_answer) {
        fx->req_session = r->session;
        fx->req_worker = r->session_worker;
        fx->req_id = r->request_id;
    }
    struct atoll__area_worker *aw = w->areas;
    bool numbered = r->kind == ATOLL__REQ_CLIENT && r->seq != 0 && r->wants_answer;
    if (numbered) {
        aw->exact_id = r->request_id;
        aw->exact_session = r->session;
        aw->exact_caught = false;
    }
    atoll__running run;
    atoll__game_begin(&run, a, r->kind == ATOLL__REQ_CLIENT ? "handler" : "call", r->route,
                      r->player ? r->player->uid : NULL);
    int rc = h->fn(r);
    atoll__game_end(&run, a);
    if (rc >= 0)
        finish_req(w, r, rc); /* the default answer goes with the region's output */
    atoll__fx_end(w, rc >= 0);
    if (numbered) {
        aw->exact_id = 0;
        /* What ran is recorded with what it changed, in the same commit; a region
         * that failed changed nothing, and runs again if it is sent again. */
        if (rc >= 0 && r->player != NULL)
            atoll__exact_record(w, r->player, r->session, r->seq, r->acked,
                                atoll__buf_data(&aw->exact_answer), aw->exact_answer.len,
                                aw->exact_caught);
        atoll__buf_shrink(&aw->exact_answer, 64 * 1024);
    }
    if (rc < 0 && r->answered && !r->kept)
        r->answered = false; /* its answer was dropped with the rest: the error goes */
    if (rc < 0)
        finish_req(w, r, rc);
    atoll_unref(r->body);
    r->body = NULL;
    atoll__area_end(a);
}

const atoll__route_entry *
atoll__route_of(atoll__worker *w, uint16_t code)
{
    if (code == 0 || code > atoll__dict_count(w->node->dict))
        return NULL;
    return &w->node->routes[code];
}

/* Runs a client's message (AREA_REQ) on a's player p. */
void
atoll__run_client(atoll__worker *w, atoll_area *a, atoll_player *p, atoll__mail *m)
{
    const atoll__route_entry *re = atoll__route_of(w, m->route);
    if (re == NULL || re->handler == NULL || re->type_index != a->type_index ||
        (re->handler->flags & ATOLL_INTERNAL)) {
        atoll__metric_route("unknown", true); /* a client's route: not a label of its own */
        atoll__area_fail_mail(w, m, "no handler for route in this area");
        return;
    }
    if (atoll__exact_replay(w, p, m)) {
        atoll__mail_free(m); /* ran already, before its node failed: answered again */
        return;
    }
    atoll_req r = {
        .kind = ATOLL__REQ_CLIENT,
        .area = a,
        .player = p,
        .route = atoll__dict_route(w->node->dict, m->route),
        .session = m->session,
        .session_worker = p->session_worker,
        .request_id = m->request_id,
        .wants_answer = m->msg_type == ATOLL_MSG_REQUEST,
        .body_bytes = m->data,
        .body_len = m->len,
        .seq = m->epoch,
        .acked = m->call_id,
    };
    run_handler(w, a, &r, re->handler);
    atoll__mail_free(m);
}

void
atoll__run_call(atoll__worker *w, atoll_area *a, atoll__mail *m)
{
    const atoll__route_entry *re = atoll__route_of(w, m->route);
    if (re == NULL || re->handler == NULL || re->type_index != a->type_index) {
        if (m->call_id != 0)
            atoll__proxy_answer(w, m->at, m->call_id, ATOLL_EINVAL, NULL);
        atoll__mail_free(m);
        return;
    }
    atoll_req r = {
        .kind = ATOLL__REQ_CALL,
        .area = a,
        .route = atoll__dict_route(w->node->dict, m->route),
        .from = m->from,
        .caller = m->at,
        .call_id = m->call_id,
        .wants_answer = m->call_id != 0,
        .body = m->value,
        .mail = m,
    };
    m->value = NULL;
    run_handler(w, a, &r, re->handler);
    if (r.mail != NULL)
        atoll__mail_free(r.mail); /* not answered in the handler (kept, or a send) */
}

/* True when the message waits for the next tick (command-queue areas). */
bool
atoll__queue_if_command(atoll_area *a, const atoll__route_entry *re, atoll__mail *m)
{
    if (!a->type->queue_commands || re == NULL || re->handler == NULL ||
        (re->handler->flags & ATOLL_QUERY))
        return false;
    atoll__mail_list_push(&a->cmds, m);
    a->ncmds++;
    return true;
}

int
atoll__hook_enter(atoll_area *a, atoll_player *p)
{
    if (a->type->on_enter == NULL)
        return ATOLL_OK;
    atoll__fx_begin(a->worker);
    atoll__running run;
    atoll__game_begin(&run, a, "on_enter", NULL, p->uid);
    int rc = a->type->on_enter(a, p);
    atoll__game_end(&run, a);
    atoll__fx_end(a->worker, rc == ATOLL_OK);
    return rc;
}

void
atoll__hook_leave(atoll_area *a, atoll_player *p, atoll_leave_reason why)
{
    if (a->type->on_leave == NULL)
        return;
    atoll__fx_begin(a->worker);
    atoll__running run;
    atoll__game_begin(&run, a, "on_leave", NULL, p->uid);
    a->type->on_leave(a, p, why);
    atoll__game_end(&run, a);
    atoll__fx_end(a->worker, true);
}

static void
run_command(atoll__worker *w, atoll_area *a, atoll__mail *m)
{
    if (m->type == ATOLL_MAIL_AREA_CALL) {
        atoll__run_call(w, a, m);
        return;
    }
    atoll_player *p = atoll__player_by_session(a, m->session);
    if (p == NULL) {
        atoll__area_fail_mail(w, m, "player left the area");
        return;
    }
    atoll__run_client(w, a, p, m);
}

bool
atoll__area_tick(atoll_area *a, uint64_t now)
{
    atoll__worker *w = a->worker;
    uint64_t late = now > a->tick_next_ns ? now - a->tick_next_ns : 0;
    atoll_tick info = {
        .count = ++a->tick_count,
        .dt = a->tick_last_ns ? (double)(now - a->tick_last_ns) / 1e9
                              : (double)a->tick_period_ns / 1e9,
        .late_ns = late,
    };
    a->tick_last_ns = now;
    /* Fixed rate: the next tick is due one period after this one was due; ticks
     * missed while the worker was busy are skipped, not run in a burst. */
    a->tick_next_ns += a->tick_period_ns;
    if (a->tick_next_ns <= now)
        a->tick_next_ns += ((now - a->tick_next_ns) / a->tick_period_ns + 1) * a->tick_period_ns;
    if (late > a->tick_late_max)
        a->tick_late_max = late;

    atoll__area_begin(a);
    /* Commands that arrived before this tick, in arrival order; those they cause wait
     * for the next one. After a command asks for a destroy, the rest fail. */
    atoll__mail *m = atoll__mail_list_take(&a->cmds);
    a->ncmds = 0;
    while (m != NULL) {
        atoll__mail *next = m->next;
        if (a->destroy_requested)
            atoll__area_fail_mail(w, m, "area closed");
        else
            run_command(w, a, m);
        m = next;
    }
    if (!a->destroy_requested && a->type->on_tick) {
        atoll__fx_begin(w);
        atoll__running run;
        atoll__game_begin(&run, a, "on_tick", NULL, NULL);
        a->type->on_tick(a, &info);
        atoll__game_end(&run, a);
        atoll__fx_end(w, true);
    }
    uint64_t spent = uv_hrtime() - now;
    atoll__metric_observe(ATOLL_HIST_TICK, spent);
    if (spent > a->tick_ns_max)
        a->tick_ns_max = spent;
    bool gone = a->destroy_requested;
    atoll__area_end(a); /* may free a */
    return !gone;
}

/* ---- replies -------------------------------------------------------------------------------- */

/* A kept request leaves its owner's list and is freed (answered, or its area closed). */
static void
kept_release(atoll_req *k)
{
    atoll_area *a = k->owner;
    if (a != NULL && k->deadline_timer != 0 && !a->destroyed)
        atoll_timer_cancel(a, k->deadline_timer);
    if (a != NULL) {
        if (k->kept_prev)
            k->kept_prev->kept_next = k->kept_next;
        else
            a->kept = k->kept_next;
        if (k->kept_next)
            k->kept_next->kept_prev = k->kept_prev;
    }
    atoll__free(k);
}

/* The framework answers a kept request the game did not (its deadline, its area's end):
 * a calling area gets call_status, a client {"code":500,"message":msg}; k is freed. */
static void
kept_answer_for_game(atoll_area *a, atoll_req *k, int call_status, const char *msg)
{
    if (k->kind == ATOLL__REQ_CALL && k->wants_answer && k->mail == NULL) {
        atoll__proxy_answer(a->worker, k->caller, k->call_id, call_status, NULL);
        k->answered = true;
        kept_release(k);
    } else {
        atoll_reply_error(k, 500, "%s", msg); /* frees k */
    }
}

/* A kept request's deadline passed before the game answered it: the framework answers
 * ({"code":500}, or ATOLL_ETIMEDOUT to a caller) and frees it. */
static void
on_kept_deadline(atoll_area *a, int status, void *udata)
{
    if (status != ATOLL_OK)
        return; /* the area is closing: atoll__kept_close answers it */
    atoll_req *k = udata;
    k->deadline_timer = 0;
    if (k->orphaned) { /* its client went: nobody waits for it, nothing to say */
        atoll_reply(k, NULL); /* frees k */
        return;
    }
    ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"kept request not answered before its deadline, answered "
              "for the game\" route=%s area=\"%s\"", k->route ? k->route : "", a->id);
    kept_answer_for_game(a, k, ATOLL_ETIMEDOUT, "request timed out");
}

void
atoll__kept_drop_session(atoll_area *a, atoll_session_id s)
{
    for (atoll_req *k = a->kept, *next; k != NULL; k = next) {
        next = k->kept_next;
        if (k->kind == ATOLL__REQ_CLIENT && k->session.v == s.v) {
            /* Nobody to answer: the game's answer (or the deadline) only frees it. The
             * game may still hold the handle, so it is not freed here. */
            k->wants_answer = false;
            k->orphaned = true;
        }
    }
}

void
atoll__kept_close(atoll_area *a)
{
    while (a->kept != NULL)
        kept_answer_for_game(a, a->kept, ATOLL_ECANCELED, "area closed");
}

/* A game's second answer to one request is a bug in the game: said, not sent. */
static void
answered_twice(const atoll_req *r)
{
    ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"request answered twice: the second answer is dropped\" "
              "route=%s area=\"%s\"", r->route ? r->route : "", r->area ? r->area->id : "");
}

int
atoll_reply(atoll_req *r, atoll_value *body)
{
    if (r == NULL) {
        atoll_unref(body);
        return ATOLL_EINVAL;
    }
    if (r->answered) {
        atoll_unref(body);
        answered_twice(r);
        return ATOLL_ESTATE;
    }
    r->answered = true;
    atoll__worker *w = atoll__current_worker();
    if (!r->wants_answer || w == NULL) {
        atoll_unref(body);
    } else if (r->kind == ATOLL__REQ_CLIENT) {
        encode_json(w, body);
        atoll_unref(body);
        answer_client(w, r->session, r->session_worker, r->request_id,
                      atoll__buf_data(&w->areas->scratch_out), w->areas->scratch_out.len, r->kept);
    } else if (r->mail != NULL) {
        /* The call's own mail carries the answer back, so it is freed by the thread that
         * allocated it (glibc's caches stay local: cross-thread frees were the largest
         * cost of a call). */
        atoll__mail *m = r->mail;
        r->mail = NULL;
        m->type = ATOLL_MAIL_AREA_REPLY;
        m->status = ATOLL_OK;
        m->value = body;
        atoll__area_send_to(w, r->caller, m);
    } else {
        atoll__proxy_answer(w, r->caller, r->call_id, ATOLL_OK, body);
    }
    if (r->kept)
        kept_release(r);
    return ATOLL_OK;
}

int
atoll_reply_json(atoll_req *r, const char *json, size_t len)
{
    /* The request's own body was checked when it arrived (echoing it is the common case
     * worth not checking twice). */
    bool own = r != NULL && r->kind == ATOLL__REQ_CLIENT && json == (const char *)r->body_bytes &&
               len == r->body_len;
    if (r == NULL || json == NULL || (!own && !atoll__json_valid((const uint8_t *)json, len, 64)))
        return ATOLL_EINVAL;
    if (r->answered) {
        answered_twice(r);
        return ATOLL_ESTATE;
    }
    atoll__worker *w = atoll__current_worker();
    if (r->kind != ATOLL__REQ_CLIENT || w == NULL) /* a call's answer is a value */
        return atoll_reply(r, atoll_parse(json, len, NULL, 0));
    r->answered = true;
    if (r->wants_answer)
        answer_client(w, r->session, r->session_worker, r->request_id, (const uint8_t *)json,
                      len, r->kept);
    if (r->kept)
        kept_release(r);
    return ATOLL_OK;
}

const char *
atoll_req_json(const atoll_req *r, size_t *len)
{
    if (r == NULL || r->kind != ATOLL__REQ_CLIENT) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = r->body_len ? r->body_len : 2;
    return r->body_len ? (const char *)r->body_bytes : "{}";
}

int
atoll_reply_error(atoll_req *r, int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt ? fmt : "", ap);
    va_end(ap);
    if (r != NULL && r->kind == ATOLL__REQ_CLIENT && r->wants_answer && !r->answered &&
        r->route != NULL)
        atoll__metric_route(r->route, true);
    if (r != NULL && r->kind == ATOLL__REQ_CALL && r->wants_answer && !r->answered) {
        /* A call's callback gets the error object as its reply, with status OK: the
         * target answered. */
        return atoll_reply(r, atoll_pack("{s:i,s:s}", "code", code, "message", msg));
    }
    atoll_value *v = atoll_pack("{s:i,s:s}", "code", code, "message", msg);
    if (v == NULL) /* msg was not UTF-8 */
        v = atoll_pack("{s:i,s:s}", "code", code, "message", "error");
    return atoll_reply(r, v);
}

atoll_req *
atoll_req_keep(atoll_req *r, uint32_t timeout_ms)
{
    if (r == NULL || r->kept || r->answered)
        return NULL;
    atoll_req *k = atoll__malloc(sizeof *k);
    *k = *r;
    k->kept = true;
    k->body = NULL;
    k->body_bytes = NULL;
    k->body_len = 0;
    k->area = NULL;
    k->player = NULL;
    k->from = NULL; /* route stays: the dictionary's strings live as long as the node */
    k->mail = NULL;
    k->owner = r->area;
    k->kept_prev = NULL;
    k->kept_next = r->area ? r->area->kept : NULL;
    if (r->area != NULL) {
        if (r->area->kept)
            r->area->kept->kept_prev = k;
        r->area->kept = k;
    }
    r->kept = true; /* the handler's copy must not answer on return */
    if (r->area != NULL) {
        atoll__worker *w = r->area->worker;
        uint32_t ms = timeout_ms ? timeout_ms : w->node->cfg->keep_ms;
        k->deadline_timer = atoll_timer_once(r->area, ms, on_kept_deadline, k);
    }
    return k;
}

/* ---- pushes ---------------------------------------------------------------------------------- */

/* The push package of route/body in the worker's scratch, or NULL when too large.
 * Takes body. */
static atoll__buf *
push_pkg(atoll__worker *w, const char *route, atoll_value *body)
{
    atoll__buf *pkg = &w->areas->scratch_pkg;
    pkg->len = 0;
    bool ok = put_push(w, pkg, route, body);
    atoll_unref(body);
    return ok ? pkg : NULL;
}

int
atoll_push(atoll_player *p, const char *route, atoll_value *body)
{
    atoll__worker *w = atoll__current_worker();
    if (p != NULL && !atoll__player_ok(p, "atoll_push")) {
        atoll_unref(body);
        return ATOLL_EINVAL;
    }
    if (p != NULL && p->area == NULL)
        ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"push to a player in no area (it left, or is moving), "
                  "dropped\" uid=\"%s\" route=%s", p->uid, route ? route : "");
    if (p == NULL || route == NULL || w == NULL || p->area == NULL) {
        atoll_unref(body);
        return ATOLL_EINVAL;
    }
    if (p->disconnected) { /* its client is away: pushes are not promised */
        atoll_unref(body);
        return ATOLL_OK;
    }
    atoll__buf *pkg = push_pkg(w, route, body);
    if (pkg == NULL)
        return ATOLL_ELIMIT;
    atoll__session_out(w, p->session, p->session_worker, atoll__buf_data(pkg), pkg->len);
    return ATOLL_OK;
}

int
atoll_push_uid(atoll_area *a, const char *uid, const char *route, atoll_value *body)
{
    atoll_player *p = atoll_area_player(a, uid);
    if (p == NULL || p->leaving) {
        atoll_unref(body);
        return a == NULL || uid == NULL || route == NULL ? ATOLL_EINVAL : ATOLL_ENOENT;
    }
    return atoll_push(p, route, body);
}

int
atoll_broadcast(atoll_node *n, const char *route, atoll_value *body)
{
    atoll__worker *w = atoll__current_worker();
    if (n == NULL || route == NULL || w == NULL || w->node != n) {
        atoll_unref(body);
        return ATOLL_EINVAL;
    }
    atoll__buf *pkg = push_pkg(w, route, body);
    if (pkg == NULL)
        return ATOLL_ELIMIT;
    /* Encoded once; one BROADCAST per worker (this one's too, through its local queue),
     * staged with the handler's other effects. */
    atoll__shared *sh = atoll__shared_new(atoll__buf_data(pkg), pkg->len, n->nworkers);
    for (int i = 0; i < n->nworkers; i++) {
        atoll__mail *m = atoll__mail_new(ATOLL_MAIL_BROADCAST, 0);
        m->shared = sh;
        atoll__area_send(w, i, m);
    }
    return ATOLL_OK;
}

int
atoll_push_list(atoll_area *a, atoll_player *const *players, size_t n, const char *route,
                atoll_value *body)
{
    atoll__worker *w = atoll__current_worker();
    if (a == NULL || route == NULL || w == NULL || (players == NULL && n > 0)) {
        atoll_unref(body);
        return ATOLL_EINVAL;
    }
    atoll__node *node = w->node;
    /* Encoded once; this worker's sessions get it at once, every other worker one mail
     * with the shared bytes and its list of sessions. Two passes over the players
     * whatever the number of workers: count per worker, then fill. */
    atoll__buf *pkg = push_pkg(w, route, body);
    if (pkg == NULL)
        return ATOLL_ELIMIT;
    size_t nw = (size_t)node->nworkers;
    atoll__mail *mails_stack[16] = {0};
    atoll__mail **mails = nw <= 16 ? mails_stack : atoll__calloc(nw, sizeof *mails);
    size_t counts_stack[16] = {0};
    size_t *counts = nw <= 16 ? counts_stack : atoll__calloc(nw, sizeof *counts);
    size_t remote = 0;
    for (size_t i = 0; i < n; i++) {
        atoll_player *p = players[i];
        if (p == NULL || p->area != a || p->disconnected)
            continue;
        if (p->session_worker == w->index || atoll__session_node(p->session) != node->id)
            atoll__session_out(w, p->session, p->session_worker, atoll__buf_data(pkg), pkg->len);
        else if (counts[p->session_worker]++ == 0)
            remote++;
    }
    if (remote > 0) {
        atoll__shared *sh = atoll__shared_new(atoll__buf_data(pkg), pkg->len, (int)remote);
        for (size_t k = 0; k < nw; k++) {
            if (counts[k] == 0)
                continue;
            mails[k] = atoll__mail_new(ATOLL_MAIL_SESS_PUSH, 0);
            mails[k]->shared = sh;
            mails[k]->sessions = atoll__malloc(counts[k] * sizeof *mails[k]->sessions);
        }
        for (size_t i = 0; i < n; i++) {
            atoll_player *p = players[i];
            if (p != NULL && p->area == a && !p->disconnected && p->session_worker != w->index &&
                atoll__session_node(p->session) == node->id) {
                atoll__mail *m = mails[p->session_worker];
                m->sessions[m->nsessions++] = p->session;
            }
        }
        for (size_t k = 0; k < nw; k++)
            if (mails[k] != NULL)
                atoll__area_send(w, (int)k, mails[k]);
    }
    if (counts != counts_stack) {
        atoll__free(counts);
        atoll__free(mails);
    }
    return ATOLL_OK;
}

int
atoll_push_area(atoll_area *a, const char *route, atoll_value *body)
{
    if (a == NULL) {
        atoll_unref(body);
        return ATOLL_EINVAL;
    }
    atoll_player *stack[64] = {0};
    atoll_player **ps = a->nplayers <= 64 ? stack : atoll__malloc(a->nplayers * sizeof *ps);
    size_t n = 0;
    for (atoll_player *p = a->first; p != NULL; p = p->next)
        if (!p->leaving)
            ps[n++] = p;
    int rc = atoll_push_list(a, ps, n, route, body);
    if (ps != stack)
        atoll__free(ps);
    return rc;
}

