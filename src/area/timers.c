/* timers.c -- an area's timers (atoll_timer_once, atoll_timer_every): libuv timers
 * on the owner's loop, listed in the area so that destroying it closes them.
 */
#include "area.h"
#include "../value/value.h"

#include <stdarg.h>
#include <stdio.h>

static void
free_handle(uv_handle_t *h)
{
    atoll__free(h);
}

struct atoll__timer {
    uv_timer_t handle;       /* first: the handle's data is the area */
    atoll__timer *next;
    atoll_area *area;
    uint64_t id;
    atoll_timer_fn fn;
    void *udata;
    bool repeat;
    uint64_t period_ms;     /* a repeating timer's */
    uint64_t paused_due_ms; /* while its area is frozen (migrate.c): when it was due */
};

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
    atoll__fx_begin(a->worker);
    atoll__running run;
    atoll__game_begin(&run, a, "timer", NULL, NULL);
    t->fn(a, ATOLL_OK, t->udata); /* t may be cancelled (freed later) in here */
    atoll__game_end(&run, a);
    atoll__fx_end(a->worker, true);
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
    t->period_ms = repeat ? period : 0;
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
atoll__timers_close(atoll_area *a)
{
    /* Taken first: a callback may cancel other timers; a new one on a destroyed area is
     * refused (timer_start). */
    atoll__timer *t = a->timers;
    a->timers = NULL;
    while (t != NULL) {
        atoll__timer *next = t->next;
        uv_timer_stop(&t->handle);
        atoll__fx_begin(a->worker);
        atoll__running run;
        atoll__game_begin(&run, a, "timer", NULL, NULL);
        t->fn(a, ATOLL_ECANCELED, t->udata); /* its last call: udata may be freed */
        atoll__game_end(&run, a);
        atoll__fx_end(a->worker, true);
        uv_close((uv_handle_t *)&t->handle, free_handle);
        t = next;
    }
}

/* ---- a hand-off to another node (migrate.c) ------------------------------------------------ */

void
atoll__timers_pause(atoll_area *a)
{
    for (atoll__timer *t = a->timers; t; t = t->next) {
        t->paused_due_ms = uv_timer_get_due_in(&t->handle);
        uv_timer_stop(&t->handle);
    }
}

void
atoll__timers_resume(atoll_area *a)
{
    for (atoll__timer *t = a->timers; t; t = t->next)
        uv_timer_start(&t->handle, on_timer, t->paused_due_ms, t->period_ms);
}

size_t
atoll__timers_list(const atoll_area *a, atoll__timer_info *out, size_t cap)
{
    size_t n = 0;
    for (const atoll__timer *t = a->timers; t; t = t->next, n++) {
        if (n < cap) {
            out[n] = (atoll__timer_info){.id = t->id, .due_ms = t->paused_due_ms,
                                         .period_ms = t->period_ms, .fn = t->fn,
                                         .udata = t->udata};
        }
    }
    return n;
}

void
atoll__timers_drop(atoll_area *a)
{
    atoll__timer *t = a->timers;
    a->timers = NULL;
    while (t != NULL) {
        atoll__timer *next = t->next;
        uv_close((uv_handle_t *)&t->handle, free_handle);
        t = next;
    }
}

void
atoll__timer_adopt(atoll_area *a, const atoll__timer_info *ti)
{
    atoll__timer *t = atoll__calloc(1, sizeof *t);
    uv_timer_init(&a->worker->loop, &t->handle);
    t->area = a;
    t->id = ti->id;
    t->fn = ti->fn;
    t->udata = ti->udata;
    t->repeat = ti->period_ms != 0;
    t->period_ms = ti->period_ms;
    t->paused_due_ms = ti->due_ms;
    t->next = a->timers;
    a->timers = t;
}
