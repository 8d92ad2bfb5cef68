/* ticks.c -- when each ticking area of a worker ticks: a min-heap of the areas by their
 * next tick time, and one timerfd per worker armed at the earliest of them.
 *
 * Why not a libuv timer per area: libuv timers have millisecond resolution against a
 * clock cached at the start of each loop turn, so a tick due at t ran between t and
 * t + 2 ms (median 0.75 ms late in the tick benchmark). A timerfd armed at an absolute
 * CLOCK_MONOTONIC time (libuv's uv_hrtime clock) wakes the loop within microseconds of
 * the due time, so what is left of a tick's lateness is what the worker was busy with.
 * One fd per worker, not per area: a thousand 20 Hz areas cost one heap operation per
 * tick, not a thousand kernel timers.
 *
 * Invariant: a->tick_slot is the area's heap index + 1, or 0 when it is not in the heap
 * (no tick, being run, or destroyed). Worker thread only.
 */
#include "area.h"

#include <errno.h>
#include <sys/timerfd.h>
#include <unistd.h>

static bool
earlier(const atoll_area *x, const atoll_area *y)
{
    return x->tick_next_ns < y->tick_next_ns;
}

static void
place(atoll__worker *w, size_t i, atoll_area *a)
{
    w->areas->tick_heap[i] = a;
    a->tick_slot = i + 1;
}

static void
sift_up(atoll__worker *w, size_t i)
{
    atoll_area *a = w->areas->tick_heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!earlier(a, w->areas->tick_heap[parent]))
            break;
        place(w, i, w->areas->tick_heap[parent]);
        i = parent;
    }
    place(w, i, a);
}

static void
sift_down(atoll__worker *w, size_t i)
{
    atoll_area *a = w->areas->tick_heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= w->areas->tick_len)
            break;
        if (child + 1 < w->areas->tick_len && earlier(w->areas->tick_heap[child + 1], w->areas->tick_heap[child]))
            child++;
        if (!earlier(w->areas->tick_heap[child], a))
            break;
        place(w, i, w->areas->tick_heap[child]);
        i = child;
    }
    place(w, i, a);
}

/* Arms the timerfd at the earliest tick (or disarms it). */
static void
rearm(atoll__worker *w)
{
    struct itimerspec its = {0};
    if (w->areas->tick_len > 0) {
        uint64_t due = w->areas->tick_heap[0]->tick_next_ns;
        its.it_value.tv_sec = (time_t)(due / 1000000000u);
        its.it_value.tv_nsec = (long)(due % 1000000000u);
        if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
            its.it_value.tv_nsec = 1; /* zero would disarm it */
    }
    timerfd_settime(w->areas->tick_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

void
atoll__tick_add(atoll_area *a)
{
    atoll__worker *w = a->worker;
    w->areas->tick_heap = atoll__grow(w->areas->tick_heap, w->areas->tick_len,
                                      &w->areas->tick_cap, sizeof *w->areas->tick_heap, 16);
    place(w, w->areas->tick_len++, a);
    sift_up(w, w->areas->tick_len - 1);
    if (w->areas->tick_heap[0] == a)
        rearm(w);
}

void
atoll__tick_remove(atoll_area *a)
{
    if (a->tick_slot == 0)
        return;
    atoll__worker *w = a->worker;
    size_t i = a->tick_slot - 1;
    a->tick_slot = 0;
    atoll_area *last = w->areas->tick_heap[--w->areas->tick_len];
    if (i < w->areas->tick_len) {
        place(w, i, last);
        sift_down(w, i);
        sift_up(w, last->tick_slot - 1);
    }
    if (i == 0)
        rearm(w);
}

static void
on_tick_fd(uv_poll_t *h, int status, int events)
{
    atoll__worker *w = h->data;
    uint64_t expirations;
    if (read(w->areas->tick_fd, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
        ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"tick timer read failed\" error=\"%s\"", strerror(errno));
    /* Every area due now ticks once, earliest first; one whose tick took so long that
     * it is due again waits for the next wake-up rather than starving the loop. */
    uint64_t now = uv_hrtime();
    size_t budget = w->areas->tick_len;
    while (w->areas->tick_len > 0 && budget-- > 0 && w->areas->tick_heap[0]->tick_next_ns <= now) {
        atoll_area *a = w->areas->tick_heap[0];
        atoll__tick_remove(a);
        if (atoll__area_tick(a, uv_hrtime()))
            atoll__tick_add(a);
    }
    rearm(w);
}

int
atoll__ticks_init(atoll__worker *w)
{
    w->areas->tick_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (w->areas->tick_fd < 0)
        return ATOLL_EIO;
    uv_poll_init(&w->loop, &w->areas->tick_poll, w->areas->tick_fd);
    w->areas->tick_poll.data = w;
    uv_poll_start(&w->areas->tick_poll, UV_READABLE, on_tick_fd);
    return ATOLL_OK;
}

void
atoll__ticks_fini(atoll__worker *w)
{
    /* The poll handle was closed with the loop's other handles. */
    if (w->areas->tick_fd >= 0)
        close(w->areas->tick_fd);
    w->areas->tick_fd = -1;
    atoll__free(w->areas->tick_heap);
    w->areas->tick_heap = NULL;
    w->areas->tick_len = w->areas->tick_cap = 0;
}
