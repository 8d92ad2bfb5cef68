/* area.c -- areas on their worker: creation and destruction, players (enter, leave,
 * move with fences), running handlers, command queues, ticks, timers, replies and
 * pushes, stats. area.h has the design; this file is its single-threaded half: every
 * function here runs on the worker that owns the area it touches.
 */
#include "area.h"
#include "../value/value.h"

#include <stdarg.h>
#include <stdio.h>

/* A forward left behind by a player who moved away and whose session has not fenced
 * the old area yet (area.h, moving a player). */
typedef struct forward {
    uint64_t area;
    int worker;
} forward;

struct atoll__timer {
    uv_timer_t handle;       /* first: the handle's data is the area */
    atoll__timer *next;
    atoll_area *area;
    uint64_t id;
    atoll_timer_fn fn;
    void *udata;
    bool repeat;
};

static void deliver_held(atoll__worker *w, atoll_area *a, atoll_player *p);

static inline atoll__node *
node_of(const atoll_area *a)
{
    return a->worker->node;
}

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

static void
put_response(atoll__buf *out, uint32_t id, const uint8_t *json, size_t len)
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
atoll__session_out(atoll__worker *w, atoll_session_id s, int sw, const uint8_t *p, size_t n)
{
    if (sw == w->index)
        atoll__session_deliver(w, s, p, n);
    else
        atoll__send_out(w->node, sw, s, p, n);
}

/* Answers a client's request with JSON text. */
static void
answer_client_json(atoll__worker *w, atoll_session_id s, int sw, uint32_t id, const uint8_t *json,
                   size_t len)
{
    /* Worker scratch: no allocation per reply. session_out copies it out. */
    atoll__buf *pkg = &w->areas->scratch_pkg;
    pkg->len = 0;
    put_response(pkg, id, json, len);
    atoll__session_out(w, s, sw, atoll__buf_data(pkg), pkg->len);
}

static void
answer_client_error(atoll__worker *w, atoll_session_id s, int sw, uint32_t id, int code,
                    const char *msg)
{
    atoll__buf b = ATOLL__BUF_INIT;
    atoll__json_put_error(&b, code, msg);
    answer_client_json(w, s, sw, id, atoll__buf_data(&b), b.len);
    atoll__buf_fini(&b);
}

/* ---- players ----------------------------------------------------------------------------- */

static atoll_player *
player_new(const char *uid, atoll_session_id s, int sw)
{
    atoll_player *p = atoll__calloc(1, sizeof *p);
    p->uid = atoll__strndup(uid, strlen(uid));
    p->session = s;
    p->session_worker = sw;
    p->data = atoll_object();
    return p;
}

void
atoll__player_free(atoll_player *p)
{
    for (atoll__mail *m = p->held.head, *next; m != NULL; m = next) {
        next = m->next;
        atoll__mail_free(m);
    }
    atoll_unref(p->data);
    atoll__free(p->move_to);
    atoll__free(p->uid);
    atoll__free(p);
}

static atoll_player *
by_session(const atoll_area *a, atoll_session_id s)
{
    return atoll__map_get(&a->by_session, s.v);
}

atoll_player *
atoll_area_player(const atoll_area *a, const char *uid)
{
    if (a == NULL || uid == NULL)
        return NULL;
    for (atoll_player *p = atoll__map_get(&a->by_uid, atoll__hash_str(uid)); p; p = p->uid_next)
        if (strcmp(p->uid, uid) == 0)
            return p;
    return NULL;
}

static void grace_start(atoll_area *a);

static void
player_attach(atoll_area *a, atoll_player *p)
{
    p->area = a;
    p->prev = a->last;
    p->next = NULL;
    if (a->last)
        a->last->next = p;
    else
        a->first = p;
    a->last = p;
    a->nplayers++;
    atoll__map_put(&a->by_session, p->session.v, p);
    uint64_t h = atoll__hash_str(p->uid);
    p->uid_next = atoll__map_put(&a->by_uid, h, p);
    if (a->grace != NULL)
        uv_timer_stop(a->grace);
    atoll__dir_set_player(atoll__dir_of(node_of(a)), p->uid, a->id);
}

static void
player_detach(atoll_area *a, atoll_player *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        a->first = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        a->last = p->prev;
    p->prev = p->next = NULL;
    a->nplayers--;
    if (atoll__map_get(&a->by_session, p->session.v) == p)
        atoll__map_del(&a->by_session, p->session.v);
    uint64_t h = atoll__hash_str(p->uid);
    atoll_player *head = atoll__map_get(&a->by_uid, h);
    if (head == p) {
        if (p->uid_next)
            atoll__map_put(&a->by_uid, h, p->uid_next);
        else
            atoll__map_del(&a->by_uid, h);
    } else {
        for (atoll_player *q = head; q; q = q->uid_next)
            if (q->uid_next == p) {
                q->uid_next = p->uid_next;
                break;
            }
    }
    p->uid_next = NULL;
    p->area = NULL;
    if (a->nplayers == 0 && !a->destroyed)
        grace_start(a);
}

/* ---- area lifecycle ------------------------------------------------------------------------ */

static void destroy_now(atoll__worker *w, atoll_area *a, bool shutdown);
static void do_moves(atoll__worker *w, atoll_area *a);

static void
on_grace(uv_timer_t *t)
{
    atoll_area *a = t->data;
    if (a != NULL && a->nplayers == 0 && !a->destroyed) {
        ATOLL_LOG(ATOLL_LOG_DEBUG, "msg=\"area empty past its grace, destroying\" area=\"%s\"",
                  a->id);
        destroy_now(a->worker, a, false);
    }
}

static void
grace_start(atoll_area *a)
{
    if (a->type->empty_grace_ms <= 0)
        return;
    if (a->grace == NULL) {
        a->grace = atoll__malloc(sizeof *a->grace);
        uv_timer_init(&a->worker->loop, a->grace);
        a->grace->data = a;
    }
    uv_timer_start(a->grace, on_grace, (uint64_t)a->type->empty_grace_ms, 0);
}

static void
free_handle(uv_handle_t *h)
{
    atoll__free(h);
}

/* Builds the area numbered num on this worker if the directory says it lives here. */
static atoll_area *
area_find(atoll__worker *w, uint64_t num)
{
    atoll_area *a = atoll__map_get(&w->areas->by_num, num);
    if (a != NULL || num == 0)
        return a;
    atoll__node *n = w->node;
    atoll__dir_info info;
    char id[ATOLL_AREA_ID_MAX + 1];
    if (atoll__dir_by_num(atoll__dir_of(n), num, &info, id) != ATOLL_OK || info.worker != w->index)
        return NULL;
    a = atoll__calloc(1, sizeof *a);
    a->num = num;
    memcpy(a->id, id, sizeof a->id);
    a->type_index = info.type_index;
    a->type = n->game->api->area_types[info.type_index];
    a->worker = w;
    a->state = atoll_object();
    atoll__map_put(&w->areas->by_num, num, a);
    if (a->type->tick_hz > 0) {
        a->tick_period_ns = 1000000000ull / (uint64_t)a->type->tick_hz;
        a->tick_next_ns = uv_hrtime() + a->tick_period_ns;
        atoll__tick_add(a);
    }
    atoll_value *init = atoll__dir_take_init(atoll__dir_of(n), id);
    ATOLL_LOG(ATOLL_LOG_DEBUG, "msg=\"area created\" area=\"%s\" type=%s", a->id, a->type->name);
    int rc = ATOLL_OK;
    if (a->type->on_create) {
        atoll__area_begin(a);
        rc = a->type->on_create(a, init);
        atoll__area_end(a);
    }
    atoll_unref(init);
    if (rc != ATOLL_OK && !a->destroyed) {
        ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"on_create refused the area\" area=\"%s\" error=%s",
                  a->id, atoll_err_name(rc));
        destroy_now(w, a, false);
        return NULL;
    }
    if (a->destroyed)
        return NULL;
    if (a->nplayers == 0)
        grace_start(a);
    return a;
}

static void
fail_mail(atoll__worker *w, atoll__mail *m, const char *why)
{
    if (m->type == ATOLL_MAIL_AREA_REQ && m->msg_type == ATOLL_MSG_REQUEST)
        answer_client_error(w, m->session, atoll__session_worker(m->session), m->request_id, 500, why);
    else if (m->type == ATOLL_MAIL_AREA_CALL && m->call_id != 0)
        atoll__proxy_answer(w, m->worker, m->call_id, ATOLL_ECANCELED, NULL);
    atoll__mail_free(m);
}

static void
destroy_now(atoll__worker *w, atoll_area *a, bool shutdown)
{
    if (a->destroyed)
        return;
    a->destroyed = true;
    a->depth++; /* hooks below must not trigger the deferred work again */
    atoll__dir_remove(atoll__dir_of(w->node), a->id, a->num);
    atoll__map_del(&w->areas->by_num, a->num);
    while (a->first != NULL) {
        atoll_player *p = a->first;
        p->leaving = true;
        if (a->type->on_leave)
            a->type->on_leave(a, p, ATOLL_LEAVE_DESTROY);
        if (!shutdown) {
            atoll__mail *k = atoll__mail_new(ATOLL_MAIL_KICK, 0);
            k->session = p->session;
            snprintf(k->reason, sizeof k->reason, "area closed");
            atoll__send(w->node, p->session_worker, k);
        }
        player_detach(a, p);
        atoll__dir_set_player(atoll__dir_of(w->node), p->uid, "");
        atoll__player_free(p);
    }
    for (atoll__mail *m = atoll__mail_list_take(&a->cmds), *next; m != NULL; m = next) {
        next = m->next;
        fail_mail(w, m, "area closed");
    }
    atoll__proxy_cancel_area(a);
    for (atoll__timer *t = a->timers, *next; t != NULL; t = next) {
        next = t->next;
        uv_close((uv_handle_t *)&t->handle, free_handle);
    }
    a->timers = NULL;
    atoll__tick_remove(a);
    if (a->grace) {
        uv_close((uv_handle_t *)a->grace, free_handle);
        a->grace = NULL;
    }
    if (a->type->on_destroy)
        a->type->on_destroy(a);
    ATOLL_LOG(ATOLL_LOG_DEBUG, "msg=\"area destroyed\" area=\"%s\"", a->id);
    atoll_unref(a->state);
    atoll__map_fini(&a->by_session);
    atoll__map_fini(&a->by_uid);
    atoll__free(a);
}

void
atoll__areas_shutdown(atoll__worker *w)
{
    while (w->areas->by_num.len > 0) {
        for (size_t i = 0; i < w->areas->by_num.cap; i++) {
            if (w->areas->by_num.slots[i].key != 0) {
                destroy_now(w, w->areas->by_num.slots[i].value, true);
                break;
            }
        }
    }
    for (size_t i = 0; i < w->areas->forwards.cap; i++)
        if (w->areas->forwards.slots[i].key != 0)
            atoll__free(w->areas->forwards.slots[i].value);
    atoll__map_fini(&w->areas->forwards);
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
        a->handler_ns += (atoll__now_ns() - begin_ns) * HANDLER_SAMPLE;
        sampling = false;
    }
    if (a->has_moves)
        do_moves(a->worker, a);
    if (a->destroy_requested)
        destroy_now(a->worker, a, false);
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
    a->messages++;
    int rc = h->fn(r);
    finish_req(w, r, rc);
    atoll_unref(r->body);
    r->body = NULL;
    atoll__area_end(a);
}

static const atoll__route_entry *
route_of(atoll__worker *w, uint16_t code)
{
    if (code == 0 || code > atoll__dict_count(w->node->dict))
        return NULL;
    return &w->node->routes[code];
}

/* Runs a client's message (AREA_REQ) on a's player p. */
static void
run_client(atoll__worker *w, atoll_area *a, atoll_player *p, atoll__mail *m)
{
    const atoll__route_entry *re = route_of(w, m->route);
    if (re == NULL || re->handler == NULL || re->type_index != a->type_index ||
        (re->handler->flags & ATOLL_INTERNAL)) {
        fail_mail(w, m, "no handler for route in this area");
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
    };
    run_handler(w, a, &r, re->handler);
    atoll__mail_free(m);
}

static void
run_call(atoll__worker *w, atoll_area *a, atoll__mail *m)
{
    const atoll__route_entry *re = route_of(w, m->route);
    if (re == NULL || re->handler == NULL || re->type_index != a->type_index) {
        if (m->call_id != 0)
            atoll__proxy_answer(w, m->worker, m->call_id, ATOLL_EINVAL, NULL);
        atoll__mail_free(m);
        return;
    }
    atoll_req r = {
        .kind = ATOLL__REQ_CALL,
        .area = a,
        .route = atoll__dict_route(w->node->dict, m->route),
        .from = m->from,
        .caller_worker = m->worker,
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
static bool
queue_if_command(atoll_area *a, const atoll__route_entry *re, atoll__mail *m)
{
    if (!a->type->queue_commands || re == NULL || re->handler == NULL ||
        (re->handler->flags & ATOLL_QUERY))
        return false;
    atoll__mail_list_push(&a->cmds, m);
    a->ncmds++;
    return true;
}

static void
run_command(atoll__worker *w, atoll_area *a, atoll__mail *m)
{
    if (m->type == ATOLL_MAIL_AREA_CALL) {
        run_call(w, a, m);
        return;
    }
    atoll_player *p = by_session(a, m->session);
    if (p == NULL) {
        fail_mail(w, m, "player left the area");
        return;
    }
    run_client(w, a, p, m);
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
            fail_mail(w, m, "area closed");
        else
            run_command(w, a, m);
        m = next;
    }
    if (!a->destroy_requested && a->type->on_tick)
        a->type->on_tick(a, &info);
    uint64_t spent = uv_hrtime() - now;
    if (spent > a->tick_ns_max)
        a->tick_ns_max = spent;
    bool gone = a->destroy_requested;
    atoll__area_end(a); /* may free a */
    return !gone;
}

/* ---- mail for areas -------------------------------------------------------------------------- */

static forward *
forward_of(atoll__worker *w, atoll_session_id s)
{
    return atoll__map_get(&w->areas->forwards, s.v);
}

/* Passes m on to the area its session's player moved to. */
static void
forward_mail(atoll__worker *w, forward *f, atoll__mail *m)
{
    m->forwarded = true;
    m->area = f->area;
    atoll__send(w->node, f->worker, m);
}

static void
send_route(atoll__worker *w, atoll_player *p, atoll_area *a, const atoll__mail *cause,
           const uint8_t *reply, size_t reply_len)
{
    atoll__mail *r = atoll__mail_new(ATOLL_MAIL_SESS_ROUTE, reply_len);
    r->session = p->session;
    r->area = a ? a->num : 0;
    r->worker = w->index;
    r->type_index = a ? a->type_index : -1;
    if (cause->type == ATOLL_MAIL_AREA_MOVE_IN) {
        r->area_old = cause->area_old;
        r->worker_old = cause->worker_old;
    }
    if (reply_len)
        memcpy(r->data, reply, reply_len);
    atoll__send(w->node, p->session_worker, r);
}

/* The answer to gate.entry: {"code":200,"uid":...,"area":...} or {"code":500,...}. */
static void
entry_answer(atoll__buf *pkg, const atoll__mail *m, const char *area_id, int rc)
{
    if (!m->reply)
        return;
    atoll__buf j = ATOLL__BUF_INIT;
    if (rc == ATOLL_OK) {
        static const char head[] = "{\"code\":200,\"uid\":";
        atoll__buf_append(&j, head, sizeof head - 1);
        atoll__json_put_string(&j, m->uid, strlen(m->uid));
        atoll__buf_append(&j, ",\"area\":", 8);
        atoll__json_put_string(&j, area_id, strlen(area_id));
        atoll__buf_push(&j, '}');
    } else {
        atoll__json_put_error(&j, 500, area_id ? atoll_strerror(rc) : "area is gone");
    }
    put_response(pkg, m->request_id, atoll__buf_data(&j), j.len);
    atoll__buf_fini(&j);
}

static void
on_enter_mail(atoll__worker *w, atoll_area *a, atoll__mail *m)
{
    int sw = atoll__session_worker(m->session);
    atoll__buf pkg = ATOLL__BUF_INIT;
    atoll_player none = {.session = m->session, .session_worker = sw};
    if (a == NULL && !m->forwarded && m->from[0] != '\0') {
        /* The area went away (empty past its grace) while this entry was on its way:
         * place it again and pass the entry on, once. */
        atoll__dir_info info;
        const char *type = w->node->game->api->area_types[m->type_index]->name;
        if (atoll__area_place(w->node, type, m->from, NULL, false, &info) == ATOLL_OK) {
            m->forwarded = true;
            m->area = info.num;
            atoll__send(w->node, info.worker, m);
            return;
        }
    }
    if (a == NULL) {
        entry_answer(&pkg, m, NULL, ATOLL_ENOENT);
        send_route(w, &none, NULL, m, atoll__buf_data(&pkg), pkg.len);
        atoll__buf_fini(&pkg);
        atoll__mail_free(m);
        return;
    }
    atoll__area_begin(a); /* a destroy or move asked for in on_enter waits for the answer */
    atoll_player *p = atoll_area_player(a, m->uid);
    int rc = ATOLL_OK;
    if (p != NULL) {
        /* The same uid logged in again (its old session is being kicked): the player
         * stays, with its data; only its session changes. */
        atoll__map_del(&a->by_session, p->session.v);
        p->session = m->session;
        p->session_worker = sw;
        atoll__map_put(&a->by_session, p->session.v, p);
    } else {
        p = player_new(m->uid, m->session, sw);
        player_attach(a, p);
        if (a->type->on_enter)
            rc = a->type->on_enter(a, p);
        if (rc != ATOLL_OK) {
            player_detach(a, p);
            atoll__dir_set_player(atoll__dir_of(w->node), p->uid, "");
            atoll__player_free(p);
            p = NULL;
        }
    }
    entry_answer(&pkg, m, a->id, rc);
    send_route(w, p ? p : &none, p ? a : NULL, m, atoll__buf_data(&pkg), pkg.len);
    atoll__buf_fini(&pkg);
    atoll__mail_free(m);
    atoll__area_end(a);
}

/* A moving player that cannot be taken in: its session is kicked with reason, the
 * session's worker gets a route to no area (which fences the old one), p is freed. */
static void
drop_moving_player(atoll__worker *w, atoll_player *p, const atoll__mail *m, const char *reason)
{
    atoll__mail *k = atoll__mail_new(ATOLL_MAIL_KICK, 0);
    k->session = p->session;
    snprintf(k->reason, sizeof k->reason, "%s", reason);
    atoll__send(w->node, p->session_worker, k);
    send_route(w, p, NULL, m, NULL, 0);
    atoll__player_free(p);
}

static void
on_move_in(atoll__worker *w, atoll_area *a, atoll__mail *m)
{
    atoll_player *p = m->payload;
    m->payload = NULL;
    p->session = m->session;
    if (a == NULL || atoll_area_player(a, p->uid) != NULL) {
        /* The target went away (empty past its grace) while the player was on its way.
         * It is not created again here: the old area's forward points at the old
         * number. */
        ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"move target gone, kicking the player\" uid=\"%s\"",
                  p->uid);
        drop_moving_player(w, p, m, "move failed");
        atoll__mail_free(m);
        return;
    }
    p->unfenced = true;
    atoll__area_begin(a);
    player_attach(a, p);
    int rc = ATOLL_OK;
    if (a->type->on_enter)
        rc = a->type->on_enter(a, p);
    if (rc != ATOLL_OK) {
        ATOLL_LOG(ATOLL_LOG_INFO, "msg=\"on_enter refused a moving player, kicking it\" "
                  "uid=\"%s\" area=\"%s\"", p->uid, a->id);
        player_detach(a, p);
        atoll__dir_set_player(atoll__dir_of(w->node), p->uid, "");
        drop_moving_player(w, p, m, "move refused");
    } else {
        send_route(w, p, a, m, NULL, 0);
    }
    atoll__mail_free(m);
    atoll__area_end(a);
}

void
atoll__area_mail(atoll__worker *w, atoll__mail *m)
{
    atoll_area *a = area_find(w, m->area);
    switch (m->type) {
    case ATOLL_MAIL_AREA_CREATE:
        atoll__mail_free(m); /* area_find built it */
        return;
    case ATOLL_MAIL_AREA_ENTER:
        on_enter_mail(w, a, m);
        return;
    case ATOLL_MAIL_AREA_MOVE_IN:
        on_move_in(w, a, m);
        return;
    case ATOLL_MAIL_AREA_CALL:
        if (a == NULL) {
            if (m->call_id != 0) {
                /* Not here (gone, or a stale route): the body goes back for a retry. */
                atoll__proxy_answer(w, m->worker, m->call_id, ATOLL__EMOVED, m->value);
                m->value = NULL;
            }
            atoll__mail_free(m);
            return;
        }
        if (!queue_if_command(a, route_of(w, m->route), m))
            run_call(w, a, m);
        return;
    default:
        break;
    }
    /* Messages of a session: REQ, LEAVE, FENCE. */
    atoll_player *p = a ? by_session(a, m->session) : NULL;
    if (p == NULL) {
        forward *f = forward_of(w, m->session);
        if (f != NULL) {
            if (m->type == ATOLL_MAIL_AREA_FENCE && !m->forwarded) {
                /* The session now talks to the new area: nothing more will come here. */
                forward_mail(w, f, m);
                atoll__free(atoll__map_del(&w->areas->forwards, m->session.v));
            } else {
                forward_mail(w, f, m);
            }
            return;
        }
        if (m->type == ATOLL_MAIL_AREA_REQ)
            fail_mail(w, m, a ? "not in this area" : "area is gone");
        else
            atoll__mail_free(m);
        return;
    }
    if (m->type == ATOLL_MAIL_AREA_FENCE) {
        atoll__mail_free(m);
        if (p->unfenced) {
            p->unfenced = false;
            deliver_held(w, a, p);
        }
        return;
    }
    if (p->unfenced && !m->forwarded) {
        atoll__mail_list_push(&p->held, m);
        return;
    }
    if (m->type == ATOLL_MAIL_AREA_LEAVE) {
        atoll__area_begin(a);
        p->leaving = true;
        if (a->type->on_leave)
            a->type->on_leave(a, p, ATOLL_LEAVE_DISCONNECT);
        player_detach(a, p);
        atoll__dir_set_player(atoll__dir_of(w->node), p->uid, "");
        atoll__player_free(p);
        atoll__mail_free(m);
        atoll__area_end(a);
        return;
    }
    if (!queue_if_command(a, route_of(w, m->route), m))
        run_client(w, a, p, m);
}

/* The fence came: run what waited, in order, as if forwarded. A held message may move
 * the player (the rest then follow it through the new forward) or destroy the area, so
 * the area is looked up again by number (never reused) instead of trusted. A move asked
 * for before the fence happens now. */
static void
deliver_held(atoll__worker *w, atoll_area *a, atoll_player *p)
{
    uint64_t num = a->num;
    atoll__mail *m = atoll__mail_list_take(&p->held);
    while (m != NULL) {
        atoll__mail *next = m->next;
        m->forwarded = true;
        atoll__area_mail(w, m);
        m = next;
    }
    a = atoll__map_get(&w->areas->by_num, num);
    if (a != NULL && a->has_moves && a->depth == 0)
        do_moves(w, a);
}

/* ---- moving players ---------------------------------------------------------------------- */

static void
do_moves(atoll__worker *w, atoll_area *a)
{
    a->has_moves = false;
    for (atoll_player *p = a->first, *next; p != NULL; p = next) {
        next = p->next;
        if (p->move_to == NULL)
            continue;
        if (p->unfenced) {
            a->has_moves = true; /* after its own fence */
            continue;
        }
        atoll__dir_info info;
        char *to = p->move_to;
        p->move_to = NULL;
        int rc = atoll__dir_lookup(atoll__dir_of(w->node), to, &info);
        if (rc != ATOLL_OK || info.num == a->num) {
            ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"move target gone, player stays\" uid=\"%s\" to=\"%s\"",
                      p->uid, to);
            atoll__free(to);
            continue;
        }
        p->leaving = true;
        if (a->type->on_leave) {
            a->depth++;
            a->type->on_leave(a, p, ATOLL_LEAVE_MOVE);
            a->depth--;
        }
        p->leaving = false;
        player_detach(a, p);
        forward *f = atoll__map_get(&w->areas->forwards, p->session.v);
        if (f == NULL) {
            f = atoll__malloc(sizeof *f);
            atoll__map_put(&w->areas->forwards, p->session.v, f);
        }
        f->area = info.num;
        f->worker = info.worker;
        atoll__mail *m = atoll__mail_new(ATOLL_MAIL_AREA_MOVE_IN, 0);
        m->area = info.num;
        m->area_old = a->num;
        m->worker_old = w->index;
        m->session = p->session;
        m->payload = p;
        atoll__free(to);
        /* The held list of a player that moves again is empty: it moves only fenced. */
        atoll__send(w->node, info.worker, m);
    }
}

int
atoll_player_move(atoll_player *p, const char *to_id)
{
    if (p == NULL || to_id == NULL || p->area == NULL || p->leaving)
        return ATOLL_EINVAL;
    if (strcmp(to_id, p->area->id) == 0)
        return ATOLL_EINVAL;
    atoll__dir_info info;
    if (atoll__dir_lookup(atoll__dir_of(node_of(p->area)), to_id, &info) != ATOLL_OK)
        return ATOLL_ENOENT;
    atoll__free(p->move_to);
    p->move_to = atoll__strndup(to_id, strlen(to_id));
    p->area->has_moves = true;
    if (p->area->depth == 0)
        do_moves(p->area->worker, p->area);
    return ATOLL_OK;
}

void
atoll_player_kick(atoll_player *p, const char *reason)
{
    if (p == NULL || p->area == NULL)
        return;
    atoll__mail *k = atoll__mail_new(ATOLL_MAIL_KICK, 0);
    k->session = p->session;
    snprintf(k->reason, sizeof k->reason, "%s", reason ? reason : "kick");
    atoll__send(node_of(p->area), p->session_worker, k);
}

/* ---- creating and destroying ---------------------------------------------------------- */

static int
type_index_of(const atoll__node *n, const char *type)
{
    for (int i = 0; i < n->ntypes; i++)
        if (strcmp(n->game->api->area_types[i]->name, type) == 0)
            return i;
    return -1;
}

bool
atoll__area_id_valid(const char *id)
{
    size_t len = id ? strlen(id) : 0;
    if (len == 0 || len > ATOLL_AREA_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)id[i] < 0x20 || id[i] == '"' || id[i] == '\\' || id[i] == 0x7f)
            return false;
    return true;
}

int
atoll__area_place(atoll__node *n, const char *type, const char *id, atoll_value *init,
                  bool must_be_new, atoll__dir_info *out)
{
    int ti = n->game->api ? type_index_of(n, type ? type : "") : -1;
    if (ti < 0) {
        atoll_unref(init);
        return ATOLL_ENOENT;
    }
    if (!atoll__area_id_valid(id)) {
        atoll_unref(init);
        return ATOLL_EINVAL;
    }
    int rc = atoll__dir_place(atoll__dir_of(n), id, ti, type, init, out);
    if (rc == ATOLL_EEXIST && !must_be_new)
        return ATOLL_OK;
    if (rc == ATOLL_OK) {
        /* Build it now, so on_create runs even if nothing is ever sent to it. */
        atoll__mail *m = atoll__mail_new(ATOLL_MAIL_AREA_CREATE, 0);
        m->area = out->num;
        atoll__send(n, out->worker, m);
    }
    return rc;
}

int
atoll_area_create(atoll_node *n, const char *type, const char *id, atoll_value *init)
{
    if (n == NULL) {
        atoll_unref(init);
        return ATOLL_EINVAL;
    }
    atoll__dir_info info;
    return atoll__area_place(n, type, id, init, true, &info);
}

void
atoll_area_destroy(atoll_area *a)
{
    if (a == NULL || a->destroyed)
        return;
    a->destroy_requested = true;
    if (a->depth == 0)
        destroy_now(a->worker, a, false);
}

/* ---- stats ----------------------------------------------------------------------------- */

void
atoll__areas_publish(atoll__worker *w)
{
    /* Called every 100 ms; rates and maxima cover the last whole second. */
    static __thread unsigned calls;
    bool second = ++calls % 10 == 0;
    for (size_t i = 0; i < w->areas->by_num.cap; i++) {
        if (w->areas->by_num.slots[i].key == 0)
            continue;
        atoll_area *a = w->areas->by_num.slots[i].value;
        atoll_area_stats st = {0};
        memcpy(st.id, a->id, sizeof st.id);
        snprintf(st.type, sizeof st.type, "%s", a->type->name);
        st.worker = w->index;
        st.players = a->nplayers;
        st.messages = a->messages;
        st.handler_ns = a->handler_ns;
        st.ticks = a->tick_count;
        st.tick_ns_max = a->tick_ns_max;
        st.tick_late_ns_max = a->tick_late_max;
        st.queue_depth = a->ncmds;
        if (second) {
            a->messages_per_s = (double)(a->messages - a->messages_last);
            a->messages_last = a->messages;
            a->tick_ns_max = 0;
            a->tick_late_max = 0;
        }
        st.messages_per_s = a->messages_per_s;
        atoll__dir_publish(atoll__dir_of(w->node), &st);
    }
}

size_t
atoll_node_areas(atoll_node *n, atoll_area_stats *out, size_t cap)
{
    if (n == NULL || atoll__dir_of(n) == NULL)
        return 0;
    return atoll__dir_list(atoll__dir_of(n), out, cap);
}

/* ---- accessors --------------------------------------------------------------------------- */

atoll_node *atoll_area_node(const atoll_area *a) { return a ? node_of(a) : NULL; }
const char *atoll_area_id(const atoll_area *a) { return a ? a->id : NULL; }
const char *atoll_area_type_name(const atoll_area *a) { return a ? a->type->name : NULL; }
atoll_value *atoll_area_state(atoll_area *a) { return a ? a->state : NULL; }
void *atoll_area_udata(const atoll_area *a) { return a ? a->udata : NULL; }
void atoll_area_set_udata(atoll_area *a, void *udata) { if (a) a->udata = udata; }
size_t atoll_area_player_count(const atoll_area *a) { return a ? a->nplayers : 0; }
atoll_player *atoll_area_first(const atoll_area *a) { return a ? a->first : NULL; }
atoll_player *atoll_area_next(const atoll_player *p) { return p ? p->next : NULL; }
const char *atoll_player_id(const atoll_player *p) { return p ? p->uid : NULL; }
atoll_area *atoll_player_area(const atoll_player *p) { return p ? p->area : NULL; }
atoll_value *atoll_player_data(atoll_player *p) { return p ? p->data : NULL; }
atoll_area *atoll_req_area(const atoll_req *r) { return r ? r->area : NULL; }
atoll_player *atoll_req_player(const atoll_req *r) { return r ? r->player : NULL; }
const char *atoll_req_route(const atoll_req *r) { return r ? r->route : NULL; }
const char *atoll_req_from(const atoll_req *r) { return r && r->kind == ATOLL__REQ_CALL ? r->from : NULL; }

atoll_value *
atoll_req_body(atoll_req *r)
{
    if (r == NULL)
        return NULL;
    if (r->body == NULL) {
        if (r->body_len > 0)
            r->body = atoll_parse((const char *)r->body_bytes, r->body_len, NULL, 0);
        if (atoll_typeof(r->body) != ATOLL_OBJECT) {
            atoll_unref(r->body);
            r->body = atoll_object();
        }
    }
    return r->body;
}

/* ---- replies -------------------------------------------------------------------------------- */

int
atoll_reply(atoll_req *r, atoll_value *body)
{
    if (r == NULL) {
        atoll_unref(body);
        return ATOLL_EINVAL;
    }
    if (r->answered) {
        atoll_unref(body);
        return ATOLL_ESTATE;
    }
    r->answered = true;
    atoll__worker *w = atoll__current_worker();
    if (!r->wants_answer || w == NULL) {
        atoll_unref(body);
    } else if (r->kind == ATOLL__REQ_CLIENT) {
        encode_json(w, body);
        atoll_unref(body);
        answer_client_json(w, r->session, r->session_worker, r->request_id,
                           atoll__buf_data(&w->areas->scratch_out), w->areas->scratch_out.len);
    } else if (r->mail != NULL) {
        /* The call's own mail carries the answer back, so it is freed by the thread that
         * allocated it (glibc's caches stay local: cross-thread frees were the largest
         * cost of a call). */
        atoll__mail *m = r->mail;
        r->mail = NULL;
        m->type = ATOLL_MAIL_AREA_REPLY;
        m->status = ATOLL_OK;
        m->value = body;
        atoll__send(w->node, r->caller_worker, m);
    } else {
        atoll__proxy_answer(w, r->caller_worker, r->call_id, ATOLL_OK, body);
    }
    if (r->kept)
        atoll__free(r);
    return ATOLL_OK;
}

int
atoll_reply_error(atoll_req *r, int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt ? fmt : "", ap);
    va_end(ap);
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
atoll_req_keep(atoll_req *r)
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
    k->route = NULL;
    k->from = NULL;
    k->mail = NULL;
    r->kept = true; /* the handler's copy must not answer on return */
    return k;
}

/* ---- pushes ---------------------------------------------------------------------------------- */

int
atoll_push(atoll_player *p, const char *route, atoll_value *body)
{
    atoll__worker *w = atoll__current_worker();
    if (p == NULL || route == NULL || w == NULL || p->area == NULL) {
        atoll_unref(body);
        return ATOLL_EINVAL;
    }
    atoll__buf *pkg = &w->areas->scratch_pkg;
    pkg->len = 0;
    bool ok = put_push(w, pkg, route, body);
    atoll_unref(body);
    if (ok)
        atoll__session_out(w, p->session, p->session_worker, atoll__buf_data(pkg), pkg->len);
    return ok ? ATOLL_OK : ATOLL_ELIMIT;
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
    atoll__buf *pkg = &w->areas->scratch_pkg;
    pkg->len = 0;
    bool ok = put_push(w, pkg, route, body);
    atoll_unref(body);
    if (!ok)
        return ATOLL_ELIMIT;
    size_t nw = (size_t)node->nworkers;
    atoll__mail *mails_stack[16] = {0};
    atoll__mail **mails = nw <= 16 ? mails_stack : atoll__calloc(nw, sizeof *mails);
    size_t counts_stack[16] = {0};
    size_t *counts = nw <= 16 ? counts_stack : atoll__calloc(nw, sizeof *counts);
    size_t remote = 0;
    for (size_t i = 0; i < n; i++) {
        atoll_player *p = players[i];
        if (p == NULL || p->area != a)
            continue;
        if (p->session_worker == w->index)
            atoll__session_out(w, p->session, w->index, atoll__buf_data(pkg), pkg->len);
        else if (counts[p->session_worker]++ == 0)
            remote++;
    }
    if (remote > 0) {
        atoll__shared *sh = atoll__malloc(sizeof *sh + pkg->len);
        atomic_init(&sh->refs, (int)remote);
        sh->len = pkg->len;
        memcpy(sh->data, atoll__buf_data(pkg), pkg->len);
        for (size_t k = 0; k < nw; k++) {
            if (counts[k] == 0)
                continue;
            mails[k] = atoll__mail_new(ATOLL_MAIL_SESS_PUSH, 0);
            mails[k]->shared = sh;
            mails[k]->sessions = atoll__malloc(counts[k] * sizeof *mails[k]->sessions);
        }
        for (size_t i = 0; i < n; i++) {
            atoll_player *p = players[i];
            if (p != NULL && p->area == a && p->session_worker != w->index) {
                atoll__mail *m = mails[p->session_worker];
                m->sessions[m->nsessions++] = p->session;
            }
        }
        for (size_t k = 0; k < nw; k++)
            if (mails[k] != NULL)
                atoll__send(node, (int)k, mails[k]);
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

/* ---- timers ------------------------------------------------------------------------------- */

static void
timer_unlink(atoll_area *a, atoll__timer *t)
{
    for (atoll__timer **pp = &a->timers; *pp; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            return;
        }
}

static void
on_timer(uv_timer_t *h)
{
    atoll__timer *t = (atoll__timer *)h;
    atoll_area *a = t->area;
    if (!t->repeat) {
        timer_unlink(a, t);
        uv_close((uv_handle_t *)h, free_handle);
    }
    atoll__area_begin(a);
    t->fn(a, t->udata); /* t may be cancelled (freed later) in here */
    atoll__area_end(a);
}

static uint64_t
timer_start(atoll_area *a, uint64_t ms, atoll_timer_fn fn, void *udata, bool repeat)
{
    if (a == NULL || fn == NULL || a->destroyed)
        return 0;
    atoll__timer *t = atoll__calloc(1, sizeof *t);
    uv_timer_init(&a->worker->loop, &t->handle);
    t->area = a;
    t->id = ++a->worker->areas->next_timer_id;
    t->fn = fn;
    t->udata = udata;
    t->repeat = repeat;
    t->next = a->timers;
    a->timers = t;
    uint64_t period = repeat && ms == 0 ? 1 : ms;
    uv_timer_start(&t->handle, on_timer, ms, repeat ? period : 0);
    return t->id;
}

uint64_t
atoll_timer_once(atoll_area *a, uint64_t ms, atoll_timer_fn fn, void *udata)
{
    return timer_start(a, ms, fn, udata, false);
}

uint64_t
atoll_timer_every(atoll_area *a, uint64_t ms, atoll_timer_fn fn, void *udata)
{
    return timer_start(a, ms, fn, udata, true);
}

int
atoll_timer_cancel(atoll_area *a, uint64_t id)
{
    if (a == NULL)
        return ATOLL_EINVAL;
    for (atoll__timer *t = a->timers; t; t = t->next) {
        if (t->id == id) {
            timer_unlink(a, t);
            uv_close((uv_handle_t *)&t->handle, free_handle);
            return ATOLL_OK;
        }
    }
    return ATOLL_ENOENT;
}

void
atoll__area_move_fini(atoll__mail *m)
{
    atoll__player_free(m->payload);
    m->payload = NULL;
}
