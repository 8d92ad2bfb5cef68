/* crash.h -- game code that fails loudly and says where (crash.c): what runs on each
 * thread, the crash report of a fatal signal, and the watchdog of code that runs long.
 *
 * DESIGN. Just before the framework calls game code (a handler, a hook, a tick, a
 * timer, a call's callback) it pushes an atoll__running record, on its own stack,
 * naming what runs (the kind of callback, the route, the area id, the player's uid),
 * and pops it when the code returns. The thread-local pointer to the innermost record
 * is all a signal handler needs to say where the thread was. Pushing and popping cost
 * a few stores and two reads of the coarse monotonic clock (served by the vDSO from
 * the kernel's tick, about 5 ns, with the tick's resolution of 1 to 4 ms): the hot
 * path runs more than a million callbacks a second, which is why neither the precise
 * clock nor anything shared with other threads is touched there.
 *
 *  * Fatal signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT): atoll__crash_install sets
 *    a handler that writes one logfmt line (msg="fatal signal", the signal, where) and
 *    the thread's backtrace to stderr, then hands the signal to whatever handled it
 *    before (the default: the process dies by the signal, with its core).
 *  * Slow code: atoll__running_end returns how long the code ran; the caller compares
 *    it with atoll__slow_ns (area.slow_ms) and logs and counts what was slow.
 *  * Stalls: each watched thread (a worker) publishes, through two atomics in its
 *    atoll__watch_slot, the number and start of the callback it runs. The node's one
 *    watchdog thread looks a few times per area.stall_ms; a callback running longer
 *    than that gets its thread sent ATOLL__STALL_SIGNAL carrying the callback's number,
 *    and that thread's handler writes msg="stalled" with its own backtrace, once per
 *    callback. The thread then goes on with the code it was running.
 *
 * Everything a signal handler does is async-signal-safe: write(2), clock_gettime,
 * sigaction, raise, its own integer and string formatting on the stack; backtrace() is
 * called once at install so that libgcc is loaded before any signal needs it, and
 * dladdr only reads the loader's tables.
 */
#ifndef ATOLL_CRASH_H
#define ATOLL_CRASH_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* The signal the watchdog sends a stalled thread. SIGURG: its default action is to be
 * ignored (a stray one harms nothing) and nothing of atoll or libuv uses out-of-band
 * socket data, which is what the kernel sends it for. */
#define ATOLL__STALL_SIGNAL SIGURG

/* Game code running on this thread: on the stack of the code that called it. */
typedef struct atoll__running {
    const char *in;       /* the kind of callback: "handler", "on_tick", "timer", ... */
    const char *route;    /* a handler's route, or NULL */
    const char *area;     /* the area's id, or NULL */
    const char *uid;      /* the player's uid, or NULL */
    uint64_t start_ns;    /* coarse monotonic clock */
    uint64_t seq;         /* its number on a watched thread (0: not watched) */
    struct atoll__running *prev; /* the game code this one runs inside (rare), or NULL */
} atoll__running;

/* What a watched thread (a worker) shows the watchdog. */
typedef struct atoll__watch_slot {
    _Atomic uint64_t seq;      /* number of the callback running, 0: none */
    _Atomic uint64_t start_ns; /* when it began (coarse clock) */
    uint64_t next_seq;         /* its thread only */
    uint64_t reported;         /* the watchdog's only: the last number it reported */
    pthread_t thread;          /* written by its thread before its first callback */
} atoll__watch_slot;

/* The thread's innermost game code (NULL: the framework's own code runs), its watch
 * slot (NULL: not watched) and its threshold of slow code (UINT64_MAX: none). */
extern _Thread_local atoll__running *atoll__running_now;
extern _Thread_local atoll__watch_slot *atoll__watch_self;
extern _Thread_local uint64_t atoll__slow_ns;

/* Installs the fatal-signal and stall handlers (process-wide; once, later calls do
 * nothing) and the calling thread's alternate signal stack. The program does this
 * (app/run.c), before it starts any thread. */
void atoll__crash_install(void);
/* A thread that runs game code: its alternate signal stack (so that a stack overflow
 * is reported too), its watch slot (NULL: not watched) and area.slow_ms. */
void atoll__crash_thread_start(atoll__watch_slot *slot, uint32_t slow_ms);
/* The thread ends: its stack and slot are released. */
void atoll__crash_thread_end(void);

static inline uint64_t
atoll__coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Game code starts on this thread: r (on the caller's stack) names it until
 * atoll__running_end(r). The strings must live until then. */
static inline void
atoll__running_begin(atoll__running *r, const char *in, const char *route, const char *area,
                     const char *uid)
{
    r->in = in;
    r->route = route;
    r->area = area;
    r->uid = uid;
    r->start_ns = atoll__coarse_ns();
    r->prev = atoll__running_now;
    r->seq = 0;
    atoll__watch_slot *s = atoll__watch_self;
    if (s != NULL) {
        r->seq = ++s->next_seq;
        atomic_store_explicit(&s->start_ns, r->start_ns, memory_order_relaxed);
        atomic_store_explicit(&s->seq, r->seq, memory_order_release);
    }
    /* A signal handler of this thread sees r only once it is filled in. */
    atomic_signal_fence(memory_order_seq_cst);
    atoll__running_now = r;
}

/* The game code of r returned: how long it ran, in nanoseconds (coarse clock). */
static inline uint64_t
atoll__running_end(atoll__running *r)
{
    uint64_t ns = atoll__coarse_ns() - r->start_ns;
    atoll__running_now = r->prev;
    atomic_signal_fence(memory_order_seq_cst);
    atoll__watch_slot *s = atoll__watch_self;
    if (s != NULL) {
        if (r->prev != NULL)
            atomic_store_explicit(&s->start_ns, r->prev->start_ns, memory_order_relaxed);
        atomic_store_explicit(&s->seq, r->prev ? r->prev->seq : 0, memory_order_release);
    }
    return ns;
}

/* ---- the watchdog: one thread per node --------------------------------------------------- */

typedef struct atoll__watchdog {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool running;
    bool stop;
    atoll__watch_slot **slots;
    int nslots;
    uint64_t stall_ns;
    uint64_t interval_ns;
    _Atomic uint64_t stalled;  /* callbacks reported stalled */
} atoll__watchdog;

/* Starts watching the slots (their threads may not have started yet; the array must
 * live until stop): a callback running longer than stall_ms is reported once, from its
 * own thread. stall_ms 0 starts nothing. ATOLL_OK or ATOLL_EIO. */
int atoll__watchdog_start(atoll__watchdog *wd, atoll__watch_slot **slots, int nslots,
                          uint32_t stall_ms);
/* Stops and joins the watchdog (nothing when it did not start); before the watched
 * threads are joined, so that it never signals a thread that has gone. */
void atoll__watchdog_stop(atoll__watchdog *wd);

#endif /* ATOLL_CRASH_H */
