/* sync.c -- the blocking wrapper of the atoll client (atollc_sync_*): one async client
 * on a private libuv loop that runs only inside these calls.
 *
 * Every waiting call runs the private loop one turn at a time (UV_RUN_ONCE) until its
 * condition holds or a guard timer fires, so each wait is bounded by its timeout.
 * Between calls the loop does not run: heartbeats and pushes are handled during the
 * next call (atollc_sync_pump exists to let time pass with the loop running).
 * Pushes are queued as they arrive; the kick body and the close status are kept for
 * atollc_sync_wait_close. A request that times out leaves its waiter behind, marked
 * abandoned: the late response (or the ATOLL_ECLOSED of the close) frees it.
 *
 * Calls that only queue output (notify, send_raw) run one non-blocking turn, so the
 * bytes are written before the call returns.
 */
#include <atollc/atollc.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct push_item {
    struct push_item *next;
    char *route;
    char *body;
} push_item;

typedef struct waiter {
    bool done;
    bool abandoned;
    int status;
    char *body;
} waiter;

struct atollc_sync {
    uv_loop_t loop;
    uv_timer_t guard;
    bool guard_fired;
    atollc_client *c;
    bool connect_done;
    int connect_status;
    bool closed;
    int close_status;
    char *kick_body;
    push_item *head;
    push_item *tail;
    bool oom; /* a push or kick could not be copied */
};

static char *
dup_n(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s != NULL) {
        if (n)
            memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

static void
on_guard(uv_timer_t *t)
{
    atollc_sync *s = t->data;
    s->guard_fired = true;
}

/* Runs the loop until pred(s, arg) holds or timeout_ms passes; returns pred's value. */
static bool
run_until(atollc_sync *s, bool (*pred)(atollc_sync *, void *), void *arg, int timeout_ms)
{
    if (pred(s, arg))
        return true;
    /* No time to wait: one turn that does not block. (A guard of 0 ms would fire in the
     * turn's timer phase, before its poll, which would then block until some I/O.) */
    if (timeout_ms <= 0) {
        uv_run(&s->loop, UV_RUN_NOWAIT);
        return pred(s, arg);
    }
    s->guard_fired = false;
    /* The loop's clock is cached: after an idle spell it is stale, and a guard timed
     * from it would fire at once (the wait then blocks in poll until some I/O). */
    uv_update_time(&s->loop);
    uv_timer_start(&s->guard, on_guard, (uint64_t)timeout_ms, 0);
    while (!pred(s, arg) && !s->guard_fired)
        uv_run(&s->loop, UV_RUN_ONCE);
    uv_timer_stop(&s->guard);
    return pred(s, arg);
}

static bool
is_connect_done(atollc_sync *s, void *arg)
{
    return s->connect_done;
}

static bool
is_closed(atollc_sync *s, void *arg)
{
    return s->closed;
}

static bool
has_push_or_closed(atollc_sync *s, void *arg)
{
    return s->head != NULL || s->closed;
}

static bool
waiter_done(atollc_sync *s, void *arg)
{
    return ((waiter *)arg)->done;
}

static bool
never(atollc_sync *s, void *arg)
{
    return false;
}

static void
on_connect(atollc_client *c, int status, void *ud)
{
    atollc_sync *s = ud;
    s->connect_done = true;
    s->connect_status = status;
}

static void
on_push(atollc_client *c, const char *route, const char *body, size_t len, void *ud)
{
    atollc_sync *s = ud;
    push_item *it = calloc(1, sizeof *it);
    if (it == NULL || (it->route = strdup(route)) == NULL ||
        (it->body = dup_n(body, len)) == NULL) {
        if (it)
            free(it->route);
        free(it);
        s->oom = true;
        atollc_close(c);
        return;
    }
    if (s->tail)
        s->tail->next = it;
    else
        s->head = it;
    s->tail = it;
}

static void
on_kick(atollc_client *c, const char *body, size_t len, void *ud)
{
    atollc_sync *s = ud;
    free(s->kick_body);
    if ((s->kick_body = dup_n(body, len)) == NULL)
        s->oom = true;
}

static void
on_close(atollc_client *c, int status, void *ud)
{
    atollc_sync *s = ud;
    s->closed = true;
    s->close_status = status;
}

static void
on_response(atollc_client *c, int status, const char *body, size_t len, void *ud)
{
    waiter *w = ud;
    if (w->abandoned) {
        free(w);
        return;
    }
    w->done = true;
    w->status = status;
    if (status == ATOLLC_OK && (w->body = dup_n(body, len)) == NULL)
        w->status = ATOLL_ENOMEM;
}

/* Closes the loop once every handle is gone; the guard timer is the last one. */
static void
loop_fini(atollc_sync *s)
{
    uv_close((uv_handle_t *)&s->guard, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);
}

atollc_sync *
atollc_sync_connect(const atollc_opts *opts, int *err)
{
    int dummy;
    if (err == NULL)
        err = &dummy;
    atollc_sync *s = calloc(1, sizeof *s);
    if (s == NULL) {
        *err = ATOLL_ENOMEM;
        return NULL;
    }
    if (uv_loop_init(&s->loop) != 0) {
        free(s);
        *err = ATOLL_EIO;
        return NULL;
    }
    uv_timer_init(&s->loop, &s->guard);
    s->guard.data = s;
    int r = atollc_client_new(&s->loop, opts, &s->c);
    if (r == ATOLLC_OK) {
        atollc_on_push(s->c, on_push, s);
        atollc_on_kick(s->c, on_kick, s);
        atollc_on_close(s->c, on_close, s);
        r = atollc_connect(s->c, on_connect, s);
    }
    if (r == ATOLLC_OK) {
        /* The client enforces opts->timeout_ms itself; the margin only guards a bug. */
        int limit = (int)(opts->timeout_ms ? opts->timeout_ms : 5000) + 2000;
        if (!run_until(s, is_connect_done, NULL, limit))
            atollc_close(s->c);
        else if (s->connect_status == ATOLLC_OK) {
            *err = ATOLLC_OK;
            return s;
        }
        r = s->connect_done ? s->connect_status : ATOLL_ETIMEDOUT;
        run_until(s, is_closed, NULL, 5000);
    }
    *err = r;
    atollc_client_free(s->c);
    loop_fini(s);
    free(s->kick_body);
    free(s);
    return NULL;
}

int
atollc_sync_request(atollc_sync *s, const char *route, const char *body, char **resp,
                    int timeout_ms)
{
    if (s == NULL || route == NULL || resp == NULL)
        return ATOLL_EINVAL;
    *resp = NULL;
    waiter *w = calloc(1, sizeof *w);
    if (w == NULL)
        return ATOLL_ENOMEM;
    const char *b = body ? body : "{}";
    int r = atollc_request(s->c, route, b, strlen(b), on_response, w);
    if (r != ATOLLC_OK) {
        free(w);
        return r;
    }
    if (!run_until(s, waiter_done, w, timeout_ms)) {
        w->abandoned = true; /* freed by the late callback */
        return ATOLL_ETIMEDOUT;
    }
    r = w->status;
    *resp = w->body;
    free(w);
    return r;
}

int
atollc_sync_notify(atollc_sync *s, const char *route, const char *body)
{
    if (s == NULL || route == NULL)
        return ATOLL_EINVAL;
    const char *b = body ? body : "{}";
    int r = atollc_notify(s->c, route, b, strlen(b));
    if (r == ATOLLC_OK)
        uv_run(&s->loop, UV_RUN_NOWAIT);
    return r;
}

int
atollc_sync_wait_push(atollc_sync *s, char **route, char **body, int timeout_ms)
{
    if (s == NULL || route == NULL || body == NULL)
        return ATOLL_EINVAL;
    *route = *body = NULL;
    if (!run_until(s, has_push_or_closed, NULL, timeout_ms))
        return ATOLL_ETIMEDOUT;
    push_item *it = s->head;
    if (it == NULL)
        return s->oom ? ATOLL_ENOMEM : ATOLL_ECLOSED;
    if ((s->head = it->next) == NULL)
        s->tail = NULL;
    *route = it->route;
    *body = it->body;
    free(it);
    return ATOLLC_OK;
}

int
atollc_sync_wait_close(atollc_sync *s, char **kick_body, int timeout_ms)
{
    if (s == NULL)
        return ATOLL_EINVAL;
    if (kick_body != NULL)
        *kick_body = NULL;
    if (!run_until(s, is_closed, NULL, timeout_ms))
        return ATOLL_ETIMEDOUT;
    if (kick_body != NULL && s->kick_body != NULL) {
        *kick_body = s->kick_body;
        s->kick_body = NULL;
    }
    return ATOLLC_OK;
}

int
atollc_sync_send_raw(atollc_sync *s, const void *bytes, size_t len)
{
    if (s == NULL)
        return ATOLL_EINVAL;
    int r = atollc_send_raw(s->c, bytes, len);
    if (r == ATOLLC_OK)
        uv_run(&s->loop, UV_RUN_NOWAIT);
    return r;
}

void
atollc_sync_pump(atollc_sync *s, int ms)
{
    if (s != NULL)
        run_until(s, never, NULL, ms);
}

int
atollc_sync_is_open(const atollc_sync *s)
{
    return s != NULL && s->connect_done && s->connect_status == ATOLLC_OK && !s->closed;
}

atollc_client *
atollc_sync_client(atollc_sync *s)
{
    return s ? s->c : NULL;
}

void
atollc_sync_free(atollc_sync *s)
{
    if (s == NULL)
        return;
    if (!s->closed) {
        atollc_close(s->c);
        run_until(s, is_closed, NULL, 5000);
    }
    /* Closing takes one loop turn; if it somehow did not finish, the deferred free
     * of atollc_client_free still releases the client once the handles are closed. */
    atollc_client_free(s->c);
    loop_fini(s);
    while (s->head != NULL) {
        push_item *it = s->head;
        s->head = it->next;
        free(it->route);
        free(it->body);
        free(it);
    }
    free(s->kick_body);
    free(s);
}
