/* crash.c -- crash reports of fatal signals, and reports of game code that stalls a
 * worker (crash.h has the design).
 *
 * The two signal handlers run in a thread that may be in any state: inside malloc,
 * holding a lock, on an overflowed stack. So they use only async-signal-safe calls
 * (write, clock_gettime, sigaction, raise, nanosleep), format their lines themselves on
 * the alternate signal stack (no printf: it may allocate and takes locks; no gmtime:
 * it takes the time-zone lock), and never allocate. backtrace() is not on POSIX's
 * list, but the only unsafe thing it does is load libgcc on its first call, which
 * atoll__crash_install does ahead of time; dladdr takes the loader's lock, which is
 * recursive, so it is safe unless the crash happened inside the loader of another
 * thread (then the report stops after its first line, and the process still dies).
 */
#define _GNU_SOURCE /* dladdr, pthread_sigqueue */
#include "crash.h"
#include "core.h"

#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

_Thread_local atoll__running *atoll__running_now;
_Thread_local atoll__watch_slot *atoll__watch_self;
_Thread_local uint64_t atoll__slow_ns = UINT64_MAX;

/* ---- lines written from a signal handler -------------------------------------------------- */

typedef struct line {
    char b[1024];
    size_t n;
} line;

static void
put_n(line *l, const char *s, size_t n)
{
    for (size_t i = 0; i < n && l->n < sizeof l->b - 1; i++)
        l->b[l->n++] = s[i];
}

static void
put(line *l, const char *s)
{
    put_n(l, s, strlen(s));
}

static void
put_u64(line *l, uint64_t v, int min_digits)
{
    char d[24];
    int k = 0;
    do {
        d[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0 || k < min_digits);
    while (k > 0 && l->n < sizeof l->b - 1)
        l->b[l->n++] = d[--k];
}

static void
put_hex(line *l, uint64_t v)
{
    char d[16];
    int k = 0;
    do {
        d[k++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v != 0);
    put(l, "0x");
    while (k > 0 && l->n < sizeof l->b - 1)
        l->b[l->n++] = d[--k];
}

/* A quoted logfmt value; quotes, backslashes and control characters become ' (as
 * atoll_log does), so a uid cannot break the line. */
static void
put_quoted(line *l, const char *s)
{
    put(l, "\"");
    for (; *s != '\0' && l->n < sizeof l->b - 2; s++) {
        unsigned char c = (unsigned char)*s;
        l->b[l->n++] = (c < 0x20 || c == '"' || c == '\\' || c == 0x7f) ? '\'' : (char)c;
    }
    put(l, "\"");
}

/* "ts=... level=... t=... " as log.c writes it. The civil date is computed here
 * (gmtime_r may take the time-zone lock): days since 1970 to year, month, day. */
static void
put_head(line *l, const char *level)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t secs = (uint64_t)ts.tv_sec;
    int64_t z = (int64_t)(secs / 86400) + 719468;
    int64_t era = z / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t day = doy - (153 * mp + 2) / 5 + 1;
    int64_t month = mp < 10 ? mp + 3 : mp - 9;
    int64_t year = yoe + era * 400 + (month <= 2);
    uint64_t sod = secs % 86400;
    l->n = 0;
    put(l, "ts=");
    put_u64(l, (uint64_t)year, 4);
    put(l, "-");
    put_u64(l, (uint64_t)month, 2);
    put(l, "-");
    put_u64(l, (uint64_t)day, 2);
    put(l, "T");
    put_u64(l, sod / 3600, 2);
    put(l, ":");
    put_u64(l, sod / 60 % 60, 2);
    put(l, ":");
    put_u64(l, sod % 60, 2);
    put(l, ".");
    put_u64(l, (uint64_t)ts.tv_nsec / 1000000, 3);
    put(l, "Z level=");
    put(l, level);
    put(l, " t=");
    put(l, atoll__log_thread());
    put(l, " ");
}

/* What runs: in=<kind> route=... area="..." uid="..." (in=atoll: no game code). */
static void
put_where(line *l, const atoll__running *r)
{
    put(l, " in=");
    if (r == NULL) {
        put(l, "atoll");
        return;
    }
    put(l, r->in);
    if (r->route != NULL) {
        put(l, " route=");
        put(l, r->route);
    }
    if (r->area != NULL) {
        put(l, " area=");
        put_quoted(l, r->area);
    }
    if (r->uid != NULL) {
        put(l, " uid=");
        put_quoted(l, r->uid);
    }
}

static void
line_write(line *l)
{
    l->b[l->n++] = '\n';
    const char *p = l->b;
    size_t left = l->n;
    while (left > 0) {
        ssize_t k = write(2, p, left);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return;
        p += k;
        left -= (size_t)k;
    }
}

/* One line per frame: msg="backtrace" frame=N pc=0x... obj="..." off=0x... fn=name+0x...
 * (off: the address in its object, for `addr2line -f -e OBJ OFF`; fn only when the
 * loader knows a symbol there: exported functions, not static ones). The first frames
 * are this handler's own and the kernel's signal trampoline. */
static void
write_backtrace(const char *level)
{
    void *pcs[48];
    int n = backtrace(pcs, 48);
    line l;
    for (int i = 0; i < n; i++) {
        put_head(&l, level);
        put(&l, "msg=\"backtrace\" frame=");
        put_u64(&l, (uint64_t)i, 1);
        put(&l, " pc=");
        put_hex(&l, (uint64_t)(uintptr_t)pcs[i]);
        Dl_info info;
        if (dladdr(pcs[i], &info) != 0 && info.dli_fname != NULL) {
            put(&l, " obj=");
            put_quoted(&l, info.dli_fname);
            put(&l, " off=");
            put_hex(&l, (uint64_t)((uintptr_t)pcs[i] - (uintptr_t)info.dli_fbase));
            if (info.dli_sname != NULL) {
                put(&l, " fn=");
                put(&l, info.dli_sname);
                put(&l, "+");
                put_hex(&l, (uint64_t)((uintptr_t)pcs[i] - (uintptr_t)info.dli_saddr));
            }
        }
        line_write(&l);
    }
}

/* ---- fatal signals ------------------------------------------------------------------------ */

static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
#define NFATAL (sizeof fatal_signals / sizeof fatal_signals[0])
static struct sigaction previous[NFATAL];
static atomic_int crashing;            /* a thread is writing its report */
static _Thread_local bool crashing_here;

static const char *
signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGABRT: return "SIGABRT";
    default: return "?";
    }
}

static void
report_fatal(int sig, const siginfo_t *si)
{
    line l;
    put_head(&l, "error");
    put(&l, "msg=\"fatal signal\" signal=");
    put(&l, signal_name(sig));
    if (si != NULL && si->si_code > 0 && sig != SIGABRT) {
        /* Raised by the hardware: the faulting address. */
        put(&l, " addr=");
        put_hex(&l, (uint64_t)(uintptr_t)si->si_addr);
    }
    put_where(&l, atoll__running_now);
    line_write(&l);
    write_backtrace("error");
}

static void
on_fatal(int sig, siginfo_t *si, void *uctx)
{
    int saved = errno;
    size_t i = 0;
    while (i < NFATAL && fatal_signals[i] != sig)
        i++;
    if (!crashing_here) {
        if (atomic_exchange(&crashing, 1) != 0) {
            /* Another thread is reporting and will end the process; its report is
             * the one to read. Wait for that (5 s at most, then go on alone). */
            for (int k = 0; k < 50; k++) {
                struct timespec d = {0, 100 * 1000 * 1000};
                nanosleep(&d, NULL);
            }
        }
        crashing_here = true;
        report_fatal(sig, si);
    }
    /* Hand the signal to what handled it before (the default: the process dies by it,
     * with its core; a sanitizer's handler: its own report). A fault returns to the
     * faulting instruction, which faults again; a signal sent by kill or raise (abort)
     * is sent again, and arrives once this handler returns. */
    struct sigaction old = i < NFATAL ? previous[i] : (struct sigaction){0};
    if (i >= NFATAL || (!(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_IGN)) {
        memset(&old, 0, sizeof old);
        old.sa_handler = SIG_DFL;
    }
    sigaction(sig, &old, NULL);
    if (si == NULL || si->si_code <= 0)
        raise(sig);
    errno = saved;
}

/* ---- stalls ------------------------------------------------------------------------------- */

/* ATOLL__STALL_SIGNAL from the watchdog: the callback it numbered still runs on this
 * thread (a callback that ended meanwhile is not reported: the numbers differ). */
static void
on_stall(int sig, siginfo_t *si, void *uctx)
{
    int saved = errno;
    const atoll__running *r = atoll__running_now;
    if (si != NULL && si->si_code == SI_QUEUE && r != NULL && r->seq != 0 &&
        r->seq == (uint64_t)(uintptr_t)si->si_value.sival_ptr) {
        line l;
        put_head(&l, "error");
        put(&l, "msg=\"stalled\"");
        put_where(&l, r);
        put(&l, " ms=");
        put_u64(&l, (atoll__coarse_ns() - r->start_ns) / 1000000, 1);
        line_write(&l);
        write_backtrace("error");
    }
    errno = saved;
}

/* ---- installing --------------------------------------------------------------------------- */

static _Thread_local void *own_stack;
static _Thread_local size_t own_stack_size;

void
atoll__crash_install(void)
{
    static atomic_bool done;
    if (atomic_exchange(&done, true))
        return;
    /* The first backtrace() loads libgcc (dlopen, malloc): now, not in a handler. */
    void *warm[4];
    backtrace(warm, 4);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fatal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    /* A second fault of any kind inside the handler kills the process at once (a
     * blocked synchronous signal takes its default action): no report loops. */
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < NFATAL; i++)
        sigaddset(&sa.sa_mask, fatal_signals[i]);
    sigaddset(&sa.sa_mask, ATOLL__STALL_SIGNAL);
    for (size_t i = 0; i < NFATAL; i++)
        sigaction(fatal_signals[i], &sa, &previous[i]);

    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_stall;
    /* SA_RESTART: the stalled code goes on as if nothing happened (most blocking calls
     * are restarted; a sleep returns early with EINTR, as with any signal). */
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(ATOLL__STALL_SIGNAL, &sa, NULL);
    atoll__crash_thread_start(NULL, 0);
}

void
atoll__crash_thread_start(atoll__watch_slot *slot, uint32_t slow_ms)
{
    /* A thread that has an alternate stack already (a sanitizer's) keeps it. */
    stack_t old;
    if (own_stack == NULL && sigaltstack(NULL, &old) == 0 && (old.ss_flags & SS_DISABLE)) {
        size_t size = 64 * 1024;
#ifdef _SC_SIGSTKSZ
        long min = sysconf(_SC_SIGSTKSZ);
        if (min > 0 && (size_t)min > size)
            size = (size_t)min;
#endif
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED) {
            stack_t st = {.ss_sp = p, .ss_size = size, .ss_flags = 0};
            if (sigaltstack(&st, NULL) == 0) {
                own_stack = p;
                own_stack_size = size;
            } else {
                munmap(p, size);
            }
        }
    }
    atoll__slow_ns = slow_ms > 0 ? (uint64_t)slow_ms * 1000000u : UINT64_MAX;
    if (slot != NULL) {
        slot->thread = pthread_self();
        slot->next_seq = 0;
    }
    atoll__watch_self = slot;
}

void
atoll__crash_thread_end(void)
{
    atoll__watch_self = NULL;
    if (own_stack != NULL) {
        stack_t st = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
        sigaltstack(&st, NULL);
        munmap(own_stack, own_stack_size);
        own_stack = NULL;
    }
}

/* ---- the watchdog ------------------------------------------------------------------------- */

static void
watch(atoll__watchdog *wd)
{
    uint64_t now = atoll__coarse_ns();
    for (int i = 0; i < wd->nslots; i++) {
        atoll__watch_slot *s = wd->slots[i];
        uint64_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
        if (seq == 0 || seq <= s->reported)
            continue;
        /* Read after seq: a start newer than seq's (the next callback's) only makes
         * this one look younger; the stuck thread checks the number itself. */
        uint64_t start = atomic_load_explicit(&s->start_ns, memory_order_relaxed);
        if (now < start || now - start < wd->stall_ns)
            continue;
        s->reported = seq;
        atomic_fetch_add_explicit(&wd->stalled, 1, memory_order_relaxed);
        union sigval v = {.sival_ptr = (void *)(uintptr_t)seq};
        pthread_sigqueue(s->thread, ATOLL__STALL_SIGNAL, v);
    }
}

static void *
watchdog_main(void *arg)
{
    atoll__watchdog *wd = arg;
    atoll__log_set_thread("watchdog");
    pthread_mutex_lock(&wd->lock);
    while (!wd->stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        uint64_t ns = (uint64_t)until.tv_nsec + wd->interval_ns;
        until.tv_sec += (time_t)(ns / 1000000000u);
        until.tv_nsec = (long)(ns % 1000000000u);
        pthread_cond_timedwait(&wd->cond, &wd->lock, &until);
        if (!wd->stop)
            watch(wd);
    }
    pthread_mutex_unlock(&wd->lock);
    return NULL;
}

int
atoll__watchdog_start(atoll__watchdog *wd, atoll__watch_slot **slots, int nslots,
                      uint32_t stall_ms)
{
    memset(wd, 0, sizeof *wd);
    if (stall_ms == 0 || nslots <= 0)
        return ATOLL_OK;
    wd->slots = slots;
    wd->nslots = nslots;
    wd->stall_ns = (uint64_t)stall_ms * 1000000u;
    /* A few looks per stall period: a stall is reported between stall_ms and 1.25 x
     * stall_ms after its callback began (plus the coarse clock's tick). */
    uint64_t every = wd->stall_ns / 4;
    if (every < 10000000u)
        every = 10000000u;
    if (every > 1000000000u)
        every = 1000000000u;
    wd->interval_ns = every;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&wd->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&wd->lock, NULL);
    /* The watchdog takes no signal meant for the process (SIGINT, SIGTERM): it is born
     * with every signal blocked. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&wd->thread, NULL, watchdog_main, wd);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&wd->cond);
        pthread_mutex_destroy(&wd->lock);
        return ATOLL_EIO;
    }
    wd->running = true;
    return ATOLL_OK;
}

void
atoll__watchdog_stop(atoll__watchdog *wd)
{
    if (!wd->running)
        return;
    pthread_mutex_lock(&wd->lock);
    wd->stop = true;
    pthread_cond_signal(&wd->cond);
    pthread_mutex_unlock(&wd->lock);
    pthread_join(wd->thread, NULL);
    pthread_cond_destroy(&wd->cond);
    pthread_mutex_destroy(&wd->lock);
    wd->running = false;
}
