/* proxy.c -- the area proxy: atoll_call and atoll_send between areas by id.
 *
 * A call finds its target in the worker's directory cache (where.c; on a miss the call
 * goes to the caller's own worker first, which waits for the directory's answer and
 * sends it on: atoll__proxy_route), is recorded on the caller's worker
 * under a call id (in the worker's map, in the caller area's list, and in a 1 ms
 * timing wheel at its deadline) and travels as AREA_CALL mail with its body handed
 * over, never copied or serialized. The target's worker answers with AREA_REPLY; the
 * first of reply, deadline or the caller's destruction settles the call and the others
 * find nothing. Callbacks run on the caller's worker from its mail or its wheel, never
 * inside atoll_call, so game code does not re-enter itself.
 *
 * A target area that is not where the directory said (destroyed; later: moved to
 * another node) answers ATOLL__EMOVED with the body back; the caller forgets its cached
 * entry, asks the directory once more and resends, or fails with ATOLL_ENOENT (invariant 5: a stale route is
 * corrected, not trusted).
 */
#include "area.h"

#define CALL_WHEEL_SLOTS 4096 /* 4 s at 1 ms a slot; longer deadlines wrap and re-add */
#define CALL_POOL_MAX 4096    /* call records kept for reuse per worker (worker.h) */

struct atoll__call {
    atoll__wheel_entry deadline; /* first: wheel callbacks get the call */
    uint64_t id;
    uint64_t deadline_ms;
    atoll_area *caller;
    atoll__call *prev, *next;    /* the caller's list */
    atoll_call_fn cb;
    void *udata;
    uint16_t route;
    bool retried;
    char to[ATOLL_AREA_ID_MAX + 1];
};

static void on_call_timer(uv_timer_t *t);

void
atoll__proxy_init(atoll__worker *w)
{
    atoll__wheel_init(&w->areas->call_wheel, CALL_WHEEL_SLOTS, 1, uv_now(&w->loop));
    uv_timer_init(&w->loop, &w->areas->call_timer);
    w->areas->call_timer.data = w;
}

static atoll__call *
call_new(atoll__worker *w)
{
    atoll__call *c = w->areas->call_pool;
    if (c == NULL)
        return atoll__calloc(1, sizeof *c);
    w->areas->call_pool = c->next;
    w->areas->call_pool_len--;
    memset(c, 0, sizeof *c);
    return c;
}

static void
call_free(atoll__worker *w, atoll__call *c)
{
    if (w->areas->call_pool_len >= CALL_POOL_MAX) {
        atoll__free(c);
        return;
    }
    c->next = w->areas->call_pool;
    w->areas->call_pool = c;
    w->areas->call_pool_len++;
}

void
atoll__proxy_fini(atoll__worker *w)
{
    for (atoll__call *c = w->areas->call_pool, *nx; c != NULL; c = nx) {
        nx = c->next;
        atoll__free(c);
    }
    /* Calls of destroyed areas were settled; what is left belongs to no area: a gate's
     * call still waiting is told, so it frees what it holds. */
    for (size_t i = 0; i < w->areas->calls.cap; i++) {
        atoll__call *c = w->areas->calls.slots[i].value;
        if (w->areas->calls.slots[i].key == 0)
            continue;
        if (c->caller == NULL)
            c->cb(NULL, ATOLL_ECANCELED, NULL, c->udata);
        atoll__free(c);
    }
    atoll__map_fini(&w->areas->calls);
    atoll__wheel_fini(&w->areas->call_wheel);
}

/* Takes c out of the map, the wheel and its caller's list. */
static void
call_unlink(atoll__worker *w, atoll__call *c)
{
    atoll__map_del(&w->areas->calls, c->id);
    atoll__wheel_remove(&w->areas->call_wheel, &c->deadline);
    if (c->prev)
        c->prev->next = c->next;
    else if (c->caller != NULL) /* a gate's call is in no area's list */
        c->caller->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (w->areas->calls.len == 0)
        uv_timer_stop(&w->areas->call_timer);
}

static void
call_settle(atoll__worker *w, atoll__call *c, int status, atoll_value *reply)
{
    atoll_area *a = c->caller;
    call_unlink(w, c);
    atoll_call_fn cb = c->cb;
    void *udata = c->udata;
    call_free(w, c);
    if (a == NULL) { /* a gate's call: framework code, no area, nothing staged */
        cb(NULL, status, reply, udata);
        atoll_unref(reply);
        return;
    }
    atoll__area_begin(a);
    atoll__fx_begin(w);
    atoll__running run;
    atoll__game_begin(&run, a, "call_done", NULL, NULL);
    cb(a, status, reply, udata);
    atoll__game_end(&run, a);
    atoll__fx_end(w, true);
    atoll_unref(reply);
    atoll__area_end(a);
}

/* The AREA_CALL for a call (call_id != 0) or a send to area to_id. Where to_id lives
 * is known from the cache (entry e) or not yet (e NULL): then the mail goes to this
 * worker first with the id in its data, and on from there once the directory answers
 * (atoll__proxy_route). Either way it is staged with the caller's effects. While mail
 * by id to to_id is on its way through this worker, later mail to it takes the same way,
 * so the target gets them in the order they were sent. A send always carries the id:
 * a worker it reaches that no longer has the area sends it on (a call's caller does
 * that itself when answered "moved"). */
static void
post_call(atoll__worker *w, const atoll_area *from, const char *to_id,
          const atoll__dir_entry *e, uint16_t route, uint64_t call_id, atoll_value *body)
{
    if (e != NULL && atoll__where_queued(w, to_id))
        e = NULL;
    size_t idlen = e && call_id ? 0 : strlen(to_id) + 1;
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_AREA_CALL, idlen);
    m->route = route;
    m->call_id = call_id;
    m->at = atoll__addr_make(w->node->id, w->index);
    m->value = body;
    const char *fid = from != NULL ? from->id : "gate"; /* the gate's admission calls */
    memcpy(m->from, fid, strlen(fid) + 1);
    if (idlen > 0)
        memcpy(m->data, to_id, idlen);
    if (e != NULL) {
        m->area = e->num;
        atoll__area_send_to(w, e->owner, m);
    } else {
        atoll__where_queue(w, to_id, 1);
        atoll__area_send(w, w->index, m);
    }
}

/* Checks route against the target's type; returns its code or 0. type_index -1: only
 * that the route exists. */
static uint16_t
route_code(const atoll__node *n, const char *route, int type_index)
{
    uint16_t code = atoll__dict_code(n->dict, route, strlen(route));
    if (code == 0 || n->routes[code].handler == NULL ||
        (type_index >= 0 && n->routes[code].type_index != type_index))
        return 0;
    return code;
}

static void
arm_timer(atoll__worker *w)
{
    if (!uv_is_active((uv_handle_t *)&w->areas->call_timer))
        uv_timer_start(&w->areas->call_timer, on_call_timer, 1, 1);
}

/* Records a call of area from (NULL: the gate's) to to_id under a new id with its
 * deadline, and posts it. */
static void
start_call(atoll__worker *w, atoll_area *from, const char *to_id, const atoll__dir_entry *e,
           uint16_t code, atoll_value *body, uint32_t timeout_ms, atoll_call_fn cb, void *udata)
{
    atoll__call *c = call_new(w);
    c->id = ++w->areas->next_call_id;
    c->caller = from;
    c->cb = cb;
    c->udata = udata;
    c->route = code;
    memcpy(c->to, to_id, strlen(to_id) + 1); /* the id was checked by the caller */
    if (from != NULL) { /* a gate's call is in no area's list */
        c->next = from->calls;
        if (from->calls)
            from->calls->prev = c;
        from->calls = c;
    }
    atoll__map_put(&w->areas->calls, c->id, c);
    c->deadline_ms = uv_now(&w->loop) + (timeout_ms ? timeout_ms : 1);
    atoll__wheel_add(&w->areas->call_wheel, &c->deadline, c->deadline_ms);
    arm_timer(w);
    post_call(w, from, to_id, e, code, c->id, body);
}

int
atoll_call(atoll_area *from, const char *to_id, const char *route, atoll_value *body,
           uint32_t timeout_ms, atoll_call_fn cb, void *udata)
{
    atoll__worker *w = atoll__current_worker();
    if (from == NULL || to_id == NULL || route == NULL || cb == NULL || w == NULL ||
        from->worker != w || from->destroyed || !atoll__area_id_valid(to_id)) {
        atoll_unref(body);
        return ATOLL_EINVAL;
    }
    /* A route the target's type lacks is refused now when the target is cached, and
     * through the callback (ATOLL_EINVAL) when it is known later. */
    const atoll__dir_entry *e = atoll__where_cached(w, to_id);
    uint16_t code = route_code(w->node, route, e ? e->type_index : -1);
    if (code == 0) {
        atoll_unref(body);
        return ATOLL_EINVAL;
    }
    start_call(w, from, to_id, e, code, body, timeout_ms, cb, udata);
    return ATOLL_OK;
}

int
atoll__proxy_gate_call(atoll__worker *w, const char *to_id, const char *route, atoll_value *body,
                       uint32_t timeout_ms, atoll_call_fn cb, void *udata)
{
    const atoll__dir_entry *e = atoll__where_cached(w, to_id);
    uint16_t code = route_code(w->node, route, e ? e->type_index : -1);
    if (code == 0 || !atoll__area_id_valid(to_id)) {
        atoll_unref(body);
        return ATOLL_EINVAL;
    }
    start_call(w, NULL, to_id, e, code, body, timeout_ms, cb, udata);
    return ATOLL_OK;
}

int
atoll_send(atoll_area *from, const char *to_id, const char *route, atoll_value *body)
{
    atoll__worker *w = atoll__current_worker();
    if (from == NULL || to_id == NULL || route == NULL || w == NULL || from->worker != w ||
        !atoll__area_id_valid(to_id)) {
        atoll_unref(body);
        return ATOLL_EINVAL;
    }
    const atoll__dir_entry *e = atoll__where_cached(w, to_id);
    uint16_t code = route_code(w->node, route, e ? e->type_index : -1);
    if (code == 0) {
        atoll_unref(body);
        return ATOLL_EINVAL;
    }
    post_call(w, from, to_id, e, code, 0, body);
    return ATOLL_OK;
}

/* The target of a call or send sent by id is known (or known not to exist). */
static void
call_resolved(atoll__worker *w, int status, const atoll__dir_entry *e, const char *id,
              atoll__mail *m, uint64_t arg)
{
    (void)arg;
    if (status == ATOLL_OK && route_code(w->node, atoll__dict_route(w->node->dict, m->route),
                                         e->type_index) != m->route)
        status = ATOLL_EINVAL;
    if (status != ATOLL_OK) {
        if (m->call_id != 0) {
            atoll__proxy_answer(w, m->at, m->call_id, status, NULL);
        } else {
            ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"send dropped\" from=\"%s\" to=\"%s\" route=%s "
                      "error=%s", m->from, id, atoll__dict_route(w->node->dict, m->route),
                      atoll_err_name(status));
        }
        atoll__mail_free(m);
        return;
    }
    m->area = e->num;
    atoll__send_to(w->node, e->owner, m);
}

/* The target's id a call or send carries in its data (NUL-terminated), or false. */
static bool
target_of(const atoll__mail *m, char id[ATOLL_AREA_ID_MAX + 1])
{
    if (m->len == 0 || m->len > ATOLL_AREA_ID_MAX + 1 || m->data[m->len - 1] != '\0')
        return false;
    memcpy(id, m->data, m->len);
    return true;
}

void
atoll__proxy_route(atoll__worker *w, atoll__mail *m)
{
    char id[ATOLL_AREA_ID_MAX + 1];
    if (!target_of(m, id)) {
        atoll__area_fail_mail(w, m, "bad call");
        return;
    }
    if (m->status == 0) /* sent by this worker's game code (not one passed on) */
        atoll__where_queue(w, id, -1);
    /* Behind mail that waits for the same id, to keep their order. */
    const atoll__dir_entry *e = atoll__where_cached(w, id);
    if (e != NULL && !atoll__where_waiting(w, id))
        call_resolved(w, ATOLL_OK, e, id, m, 0);
    else
        atoll__where_lookup(w, id, call_resolved, m, 0);
}

void
atoll__proxy_send_moved(atoll__worker *w, atoll__mail *m)
{
    char id[ATOLL_AREA_ID_MAX + 1];
    if (m->status >= 2 || !target_of(m, id)) {
        ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"send dropped: its area is gone\" from=\"%s\" route=%s",
                  m->from, atoll__dict_route(w->node->dict, m->route));
        atoll__mail_free(m);
        return;
    }
    /* A stale route (the area was destroyed and made again elsewhere): this worker asks
     * where it lives now and passes the send on, at most twice. */
    const atoll__dir_entry *e = atoll__where_cached(w, id);
    if (e != NULL && e->num == m->area)
        atoll__where_forget(w, id, e->epoch);
    m->status++;
    m->area = 0;
    atoll__proxy_route(w, m);
}

void
atoll__proxy_answer(atoll__worker *w, atoll__addr caller, uint64_t call_id, int status,
                    atoll_value *value)
{
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_AREA_REPLY, 0);
    m->call_id = call_id;
    m->status = status;
    m->value = value;
    atoll__area_send_to(w, caller, m);
}

void
atoll__proxy_reply_mail(atoll__worker *w, atoll__mail *m)
{
    atoll__call *c = atoll__map_get(&w->areas->calls, m->call_id);
    if (c == NULL) {
        if (atoll__migrate_forward_reply(w, m))
            return; /* its caller moved to another node */
        atoll__mail_free(m); /* settled already: timed out or cancelled */
        return;
    }
    if (c->caller != NULL && c->caller->frozen) {
        /* Its area is moving: the answer waits with the area's other mail. */
        atoll__mail_list_push(&c->caller->frozen_held, m);
        return;
    }
    if (m->status == ATOLL__EMOVED) {
        /* The target was not where this worker's cache said: forget that and ask the
         * directory again, once. */
        atoll__where_forget(w, c->to, UINT64_MAX);
        if (!c->retried) {
            c->retried = true;
            post_call(w, c->caller, c->to, NULL, c->route, c->id, m->value);
            m->value = NULL;
            atoll__mail_free(m);
            return;
        }
        m->status = ATOLL_ENOENT;
    }
    atoll_value *v = m->value;
    m->value = NULL;
    int status = m->status;
    atoll__mail_free(m);
    call_settle(w, c, status, v);
}

void
atoll__proxy_cancel_call(atoll__worker *w, uint64_t call_id)
{
    atoll__call *c = atoll__map_get(&w->areas->calls, call_id);
    if (c != NULL)
        call_settle(w, c, ATOLL_ECANCELED, NULL);
}

void
atoll__proxy_cancel_area(atoll_area *a)
{
    atoll__worker *w = a->worker;
    while (a->calls != NULL) {
        atoll__call *c = a->calls;
        call_unlink(w, c);
        atoll_call_fn cb = c->cb;
        void *udata = c->udata;
        call_free(w, c);
        atoll__fx_begin(w);
        atoll__running run;
        atoll__game_begin(&run, a, "call_done", NULL, NULL);
        cb(a, ATOLL_ECANCELED, NULL, udata);
        atoll__game_end(&run, a);
        atoll__fx_end(w, true);
    }
}

static void
on_deadline(atoll__wheel_entry *e, uint64_t now, void *arg)
{
    atoll__worker *w = arg;
    atoll__call *c = (atoll__call *)e;
    if (now < c->deadline_ms) {
        atoll__wheel_add(&w->areas->call_wheel, &c->deadline, c->deadline_ms); /* past the horizon */
        return;
    }
    if (c->caller != NULL && c->caller->frozen) {
        /* Its area is moving (migrate.c): nothing of it runs now. The deadline is seen
         * to where the area runs next. */
        atoll__wheel_add(&w->areas->call_wheel, &c->deadline, now + 1);
        return;
    }
    call_settle(w, c, ATOLL_ETIMEDOUT, NULL);
}

static void
on_call_timer(uv_timer_t *t)
{
    atoll__worker *w = t->data;
    atoll__wheel_advance(&w->areas->call_wheel, uv_now(&w->loop), on_deadline, w);
    if (w->areas->calls.len == 0)
        uv_timer_stop(&w->areas->call_timer);
}

/* ---- a hand-off to another node (migrate.c) ------------------------------------------------ */

size_t
atoll__proxy_list(const atoll_area *a, atoll__call_info *out, size_t cap)
{
    uint64_t now = uv_now(&a->worker->loop);
    size_t n = 0;
    for (const atoll__call *c = a->calls; c != NULL; c = c->next, n++) {
        if (n >= cap)
            continue;
        atoll__call_info *ci = &out[n];
        ci->id = c->id;
        ci->due_ms = c->deadline_ms > now ? c->deadline_ms - now : 0;
        ci->route = c->route;
        ci->retried = c->retried;
        ci->cb = c->cb;
        ci->udata = c->udata;
        memcpy(ci->to, c->to, sizeof ci->to);
    }
    return n;
}

void
atoll__proxy_drop_area(atoll__worker *w, atoll_area *a)
{
    while (a->calls != NULL) {
        atoll__call *c = a->calls;
        call_unlink(w, c);
        call_free(w, c);
    }
}

void
atoll__proxy_adopt(atoll__worker *w, atoll_area *a, const atoll__call_info *ci)
{
    atoll__call *c = call_new(w);
    c->id = ci->id;
    c->caller = a;
    c->cb = ci->cb;
    c->udata = ci->udata;
    c->route = ci->route;
    c->retried = ci->retried;
    memcpy(c->to, ci->to, sizeof c->to);
    c->next = a->calls;
    if (a->calls)
        a->calls->prev = c;
    a->calls = c;
    atoll__map_put(&w->areas->calls, c->id, c);
    c->deadline_ms = uv_now(&w->loop) + (ci->due_ms ? ci->due_ms : 1);
    atoll__wheel_add(&w->areas->call_wheel, &c->deadline, c->deadline_ms);
    arm_timer(w);
}
