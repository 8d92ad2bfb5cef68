/* loadgen.c -- atoll-loadgen: a load generator on the async atoll client, in three modes.
 *
 * Closed loop (the default): N connections (spread over T threads, each with its own
 * libuv loop) each keep D requests in flight: every response immediately sends the next
 * request on the same slot, so the offered load adapts to the server (closed loop) and
 * the latency of a request is the time from queueing it to its response, client-side
 * batching included. Connections are opened at most MAX_CONNECTING at a time per thread
 * (a burst of thousands of SYNs would overflow the listen backlog and cost 1 s
 * retransmits). Once a thread's connections are all up (or failed), it runs the
 * warm-up, then the measured window; only responses that arrive inside the window
 * count. Latencies go into a log-linear histogram (HDR style: 64 linear sub-buckets
 * per power of two, under 1.6% error, no per-sample storage); threads merge theirs
 * at the end. --entry sends gate.entry {"uid":"bench-<pid>-<n>"} (plus "room" with
 * --room) on each connection first: the pid keeps uids unique across runs against one
 * server, so a run never kicks the sessions of the one before ("duplicate login") while
 * their close is still on its way. --jwt-secret S adds "token": an HS256 JSON Web Token
 * with that uid as sub, valid for an hour, signed with S (as a game's web backend mints
 * them), so the same traffic enters a node with auth.jwt_secret=S (which takes the uid
 * from the token) and one without (which takes the body's uid). --repeat-entry makes the
 * closed loop's request the connection's own gate.entry again (route and body as the
 * first), which a node answers {"code":200} without entering anew: every request is a
 * whole entry's parsing and, with a secret, token check, and nothing else.
 * --uid-prefix P makes the uids P-<n> instead, so that a run can enter players whose
 * documents a store already holds; the closed loop's JSON then also tells "entries"
 * (gate.entry answered 200) and "entry_s", from the first entry sent to the last one
 * answered (with the connects: at most MAX_CONNECTING of them at a time per thread).
 *
 * --fanout (open loop, for a chat room): every connection enters (gate.entry, --room)
 * and says --route (room.say) {"text":"<send time>"} --rate times a second, the sends of
 * all connections spread evenly over the period (connection i is offset by i/N of it),
 * whatever the server answers. The send time is CLOCK_MONOTONIC in nanoseconds; every
 * client takes each push of --push-route (onChat) it receives, reads the time back from
 * its "text" and records now - then, so the latency is from the sender's send to each
 * receiver's read, on one machine and one clock. The window is global: it starts
 * --warmup seconds after the last connection entered (so every say in it has all
 * members listening) and lasts --duration; a say counts when its send time is in the
 * window, a push when the say it carries is. Saying stops at the window's end and the
 * clients listen --grace seconds more before closing: a push later than that counts as
 * lost. Expected pushes = says in the window x members; the generator's own lateness
 * (send time - scheduled time) is reported apart, to show whether it kept up.
 *
 * --once: one connection (gate.entry first with --entry), one request of --route with
 * --body, the response body printed on stdout: bench/run.sh's control channel to the
 * bench game (ctl.calls, ctl.ticks, ctl.areas).
 *
 * --idle opens the connections, completes the handshakes and holds them (answering
 * heartbeats) for --duration seconds, for memory measurements. --ready-file PATH is
 * written once every connection has settled, so a script knows when to measure.
 *
 * --cpu-pids PID,PID,... (closed loop): the CPU time (utime + stime of /proc/PID/stat)
 * of each of those processes is read when the first thread opens its measured window
 * and when the last one closes its own, here rather than in the calling script, so
 * that the reads sit on the window's edges (a script's sleeps would be late by its
 * scheduling on a busy machine). Each process's CPU seconds over that span, divided by
 * the span and by the throughput, is its CPU per request answered: "cpu_s_<i>" and
 * "cpu_us_per_req_<i>" for the i-th pid (from 0), and "cpu_window_s".
 *
 * Output: one JSON object on stdout. Closed loop and idle:
 * {"transport","conns","depth","duration_s","requests","errors","throughput_rps",
 *  "p50_us","p99_us","p999_us","max_us","connected"} (and the cpu_ members above).
 * errors counts failed connects, failed requests and connections lost before the end.
 * Fan-out: {"mode":"fanout","conns","members","rate_per_conn","duration_s","says",
 *  "say_errors","pushes_expected","pushes","delivered","pushes_per_s","p50_us","p99_us",
 *  "p999_us","max_us","lag_p99_us","lag_max_us","errors","connected"}, latencies being
 * the pushes'.
 */
#define _GNU_SOURCE /* memmem */
#include <atollc/atollc.h>
#include "jwt_mint.h" /* tests/support: the one token minter, checked by the unit tests */

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNECTING 256
#define MAX_THREADS 64

/* ---- histogram -------------------------------------------------------------------- */

/* Values (nanoseconds) below 128 have a bucket each; above, each power of two is cut
 * into 64 equal sub-buckets. */
#define SUB_BITS 7
#define SUB (1u << SUB_BITS)
#define HALF (SUB / 2)
#define NBUCKETS ((64 - SUB_BITS + 2) * HALF)

typedef struct hist {
    uint64_t counts[NBUCKETS];
    uint64_t total;
    uint64_t max;
} hist;

static size_t
hist_index(uint64_t v)
{
    if (v < SUB)
        return (size_t)v;
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - (SUB_BITS - 1);
    return (size_t)(shift + 1) * HALF + (size_t)(v >> shift) - HALF;
}

/* Largest value that falls in bucket i. */
static uint64_t
hist_upper(size_t i)
{
    if (i < SUB)
        return i;
    size_t shift = i / HALF - 1;
    uint64_t sub = i % HALF + HALF;
    return ((sub + 1) << shift) - 1;
}

static void
hist_record(hist *h, uint64_t v)
{
    h->counts[hist_index(v)]++;
    h->total++;
    if (v > h->max)
        h->max = v;
}

static void
hist_merge(hist *into, const hist *h)
{
    for (size_t i = 0; i < NBUCKETS; i++)
        into->counts[i] += h->counts[i];
    into->total += h->total;
    if (h->max > into->max)
        into->max = h->max;
}

static uint64_t
hist_percentile(const hist *h, double p)
{
    if (h->total == 0)
        return 0;
    uint64_t want = (uint64_t)(p * (double)h->total + 0.999999);
    if (want == 0)
        want = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < NBUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= want) {
            uint64_t v = hist_upper(i);
            return v < h->max ? v : h->max;
        }
    }
    return h->max;
}

/* ---- configuration ------------------------------------------------------------------ */

static struct {
    const char *host;
    int port;
    atollc_transport transport;
    int conns;
    int depth;
    double duration_s;
    double warmup_s;
    const char *route;
    const char *body;
    size_t body_len;
    bool entry;
    bool idle;
    bool use_dict;
    int threads;
    const char *ready_file;
    uint32_t timeout_ms;
    const char *room; /* gate.entry's "room", or NULL */
    bool fanout;
    bool once;
    bool check_code;        /* closed loop: an answer with a code other than 200 is an error */
    const char *jwt_secret; /* gate.entry carries a token signed with it, or NULL */
    bool repeat_entry;      /* closed loop: the request is the connection's gate.entry again */
    double rate;            /* fan-out: says per second per connection */
    double grace_s;         /* fan-out: listening after the window */
    const char *push_route; /* fan-out: the pushes that carry the says */
    const char *uid_prefix; /* entry uids are <prefix>-<n>, or NULL: bench-<pid>-<n> */
    const char *cpu_pids;   /* closed loop: processes whose CPU per request is told */
} cfg = {
    .host = "127.0.0.1",
    .transport = ATOLLC_TCP,
    .conns = 100,
    .depth = 1,
    .duration_s = 10,
    .warmup_s = 2,
    .route = "echo.echo",
    .body = "{\"msg\":\"hello\"}",
    .use_dict = true,
    .threads = 1,
    .timeout_ms = 10000,
    .rate = 2,
    .grace_s = 2,
    .push_route = "onChat",
};

static atomic_int threads_settled;
static atomic_int total_connected;
static atomic_int total_failed;

/* ---- CPU of other processes (--cpu-pids) ------------------------------------------- */

#define MAX_CPU_PIDS 16
static int cpu_pid[MAX_CPU_PIDS];
static int ncpu_pids;
static atomic_int cpu_measuring;      /* threads inside their measured window */
static atomic_int cpu_windows_opened; /* threads that opened it */
static long long cpu_before[MAX_CPU_PIDS], cpu_after[MAX_CPU_PIDS]; /* clock ticks, -1: unread */
static uint64_t cpu_t0, cpu_t1; /* uv_hrtime() of the two reads */

/* utime + stime of pid in clock ticks, or -1. The command name (field 2) is in
 * parentheses and may hold spaces: the fields are counted after its closing one. */
static long long
proc_cpu_ticks(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    /* After ")": state (3), ppid, pgrp, session, tty_nr, tpgid, flags, minflt, cminflt,
     * majflt, cmajflt, utime (14), stime (15). */
    unsigned long long ut = 0, st = 0;
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (long long)(ut + st);
}

static void
cpu_read(long long *into)
{
    for (int i = 0; i < ncpu_pids; i++)
        into[i] = proc_cpu_ticks(cpu_pid[i]);
}

/* A thread opens its window: the first one reads the processes' CPU. */
static void
cpu_window_open(void)
{
    if (ncpu_pids == 0)
        return;
    atomic_fetch_add(&cpu_measuring, 1);
    if (atomic_fetch_add(&cpu_windows_opened, 1) == 0) {
        cpu_read(cpu_before);
        cpu_t0 = uv_hrtime();
    }
}

/* A thread closes its window: the last one still inside reads again. (Threads open
 * their windows within milliseconds of each other, once their connections are up, so
 * one closes before another opens only when a thread's connections all failed.) */
static void
cpu_window_close(void)
{
    if (ncpu_pids == 0)
        return;
    if (atomic_fetch_sub(&cpu_measuring, 1) == 1) {
        cpu_t1 = uv_hrtime();
        cpu_read(cpu_after);
    }
}

/* --cpu-pids's list; false when it is not one. */
static bool
parse_cpu_pids(const char *list)
{
    const char *p = list;
    while (*p) {
        char *end;
        long pid = strtol(p, &end, 10);
        if (end == p || pid <= 0 || ncpu_pids == MAX_CPU_PIDS || (*end && *end != ','))
            return false;
        cpu_pid[ncpu_pids++] = (int)pid;
        p = *end ? end + 1 : end;
    }
    return ncpu_pids > 0;
}

/* Fan-out: connections whose entry is over (entered, refused, or never connected);
 * members, the ones that entered; and the global window (CLOCK_MONOTONIC ns; 0 until the
 * last connection settled). */
static atomic_int fo_settled;
static atomic_int fo_members;
static _Atomic uint64_t fo_window_start;

/* Closed loop with --entry: the first gate.entry sent and the last one answered 200
 * (CLOCK_MONOTONIC ns), and how many were. */
static _Atomic uint64_t entry_first, entry_last;
static atomic_int entries_ok;
static uint64_t fo_duration_ns, fo_warmup_ns, fo_grace_ns;

/* The clock of the says' send times: CLOCK_MONOTONIC, which every process of the
 * machine shares (uv_hrtime reads the same clock). */
static uint64_t
mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
entry_sent(void)
{
    uint64_t now = mono_ns(), cur = atomic_load(&entry_first);
    while ((cur == 0 || now < cur) && !atomic_compare_exchange_weak(&entry_first, &cur, now)) {
    }
}

static void
entry_answered(void)
{
    uint64_t now = mono_ns(), cur = atomic_load(&entry_last);
    while (now > cur && !atomic_compare_exchange_weak(&entry_last, &cur, now)) {
    }
    atomic_fetch_add(&entries_ok, 1);
}

/* ---- per thread ---------------------------------------------------------------------- */

enum { PH_CONNECTING, PH_WARMUP, PH_MEASURE, PH_STOPPING };

struct lg_thread;

typedef struct slot {
    struct lg_conn *conn;
    uint64_t t0;
} slot;

typedef struct lg_conn {
    struct lg_thread *t;
    atollc_client *c;
    int index; /* global connection number, for the entry uid */
    bool connected;
    bool closed;
    bool entered; /* fan-out: gate.entry answered 200 */
    bool fo_done; /* fan-out: counted in fo_settled */
    char *entry;  /* its gate.entry body (malloc'd), for --repeat-entry */
    size_t entry_len;
    slot *slots;
} lg_conn;

typedef struct lg_thread {
    int index;
    pthread_t thread;
    uv_loop_t loop;
    uv_timer_t phase_timer;
    lg_conn *conns;
    int n;
    int next;       /* next connection to open */
    int connecting; /* opens in progress */
    int settled;    /* connected or failed */
    int connected;
    int closed;
    int phase;
    uint64_t t_start, t_end;
    uint64_t requests;
    uint64_t errors;
    hist h;
    /* fan-out */
    uv_timer_t pace_timer;
    uint64_t fo_created; /* when the thread started (mono_ns) */
    uint64_t fo_base;    /* scheduled time of the thread's say number 0 */
    uint64_t fo_next;    /* the thread's next say number */
    uint64_t says;       /* sent with a send time in the window */
    uint64_t say_errors; /* refused by the client, or not answered 200 */
    uint64_t pushes;     /* received, carrying a say of the window */
    uint64_t bad_pushes; /* of push_route, without a readable send time */
    hist lag;            /* send time - scheduled time */
} lg_thread;

static void connect_more(lg_thread *t);
static void on_phase(uv_timer_t *tm);

static void on_response(atollc_client *c, int status, const char *body, size_t len, void *ud);

/* An answer that carries a "code" other than 200 is a refusal (the node answers errors
 * {"code":500,...}; the baseline echoes bodies, which carry no code). */
static bool
refused(const char *body, size_t len)
{
    return body != NULL && memmem(body, len, "\"code\":", 7) != NULL &&
           memmem(body, len, "\"code\":200", 10) == NULL;
}

static void
send_slot(slot *s)
{
    lg_conn *k = s->conn;
    s->t0 = uv_hrtime();
    int rc = cfg.repeat_entry
                 ? atollc_request(k->c, "gate.entry", k->entry, k->entry_len, on_response, s)
                 : atollc_request(k->c, cfg.route, cfg.body, cfg.body_len, on_response, s);
    if (rc != ATOLLC_OK)
        k->t->errors++;
}

static void
on_response(atollc_client *c, int status, const char *body, size_t len, void *ud)
{
    slot *s = ud;
    lg_thread *t = s->conn->t;
    if (t->phase == PH_STOPPING)
        return; /* answers and ECLOSED of the final close are not counted */
    if (status != ATOLLC_OK) {
        t->errors++;
        return;
    }
    if (cfg.check_code && refused(body, len)) {
        t->errors++; /* counted, and the slot stops: a refusal is not a rate */
        return;
    }
    if (t->phase == PH_MEASURE) {
        t->requests++;
        hist_record(&t->h, uv_hrtime() - s->t0);
    }
    send_slot(s);
}

static void
start_pipeline(lg_conn *k)
{
    if (cfg.idle || cfg.fanout)
        return;
    for (int i = 0; i < cfg.depth; i++)
        send_slot(&k->slots[i]);
}

/* The gate.entry body of connection index (-1: the --once client). */
static int
entry_body(char *buf, size_t cap, int index)
{
    char uid[64];
    if (cfg.uid_prefix != NULL && index >= 0)
        snprintf(uid, sizeof uid, "%.40s-%d", cfg.uid_prefix, index);
    else if (index < 0)
        snprintf(uid, sizeof uid, "bench-%ld-once", (long)getpid());
    else
        snprintf(uid, sizeof uid, "bench-%ld-%d", (long)getpid(), index);
    char token[512] = "";
    if (cfg.jwt_secret != NULL) {
        char claims[128];
        snprintf(claims, sizeof claims, "{\"sub\":\"%s\",\"exp\":%lld}", uid,
                 (long long)time(NULL) + 3600);
        if (jwt_mint(token, sizeof token, cfg.jwt_secret, claims) == 0)
            return -1;
    }
    int k = snprintf(buf, cap, "{\"uid\":\"%s\"", uid);
    if (k > 0 && (size_t)k < cap && cfg.room)
        k += snprintf(buf + k, cap - (size_t)k, ",\"room\":\"%s\"", cfg.room);
    if (k > 0 && (size_t)k < cap && token[0])
        k += snprintf(buf + k, cap - (size_t)k, ",\"token\":\"%s\"", token);
    if (k > 0 && (size_t)k < cap)
        k += snprintf(buf + k, cap - (size_t)k, "}");
    return k > 0 && (size_t)k < cap ? k : -1;
}

/* ---- fan-out ------------------------------------------------------------------------- */

/* k's entry is over (entered or not). The last connection to settle opens the window,
 * one warm-up from now, for every thread. */
static void
fo_settle(lg_conn *k, bool entered)
{
    if (!cfg.fanout || k->fo_done)
        return;
    k->fo_done = true;
    k->entered = entered;
    if (entered)
        atomic_fetch_add(&fo_members, 1);
    if (atomic_fetch_add(&fo_settled, 1) + 1 == cfg.conns) {
        atomic_store(&fo_window_start, mono_ns() + fo_warmup_ns);
        fprintf(stderr, "atoll-loadgen: %d of %d connections entered; saying\n",
                atomic_load(&fo_members), cfg.conns);
    }
}

static void
on_say_reply(atollc_client *c, int status, const char *body, size_t len, void *ud)
{
    lg_conn *k = ud;
    if (k->t->phase == PH_STOPPING)
        return;
    if (status != ATOLLC_OK || refused(body, len))
        k->t->say_errors++;
}

static void
send_say(lg_thread *t, lg_conn *k, uint64_t sched, uint64_t ws, uint64_t we)
{
    char body[64];
    uint64_t now = mono_ns();
    int n = snprintf(body, sizeof body, "{\"text\":\"%llu\"}", (unsigned long long)now);
    if (atollc_request(k->c, cfg.route, body, (size_t)n, on_say_reply, k) != ATOLLC_OK) {
        t->say_errors++;
        return;
    }
    if (now >= ws && now < we) {
        t->says++;
        hist_record(&t->lag, now > sched ? now - sched : 0);
    }
}

static void
stop_thread(lg_thread *t)
{
    t->t_end = uv_hrtime();
    t->phase = PH_STOPPING;
    uv_close((uv_handle_t *)&t->phase_timer, NULL);
    if (cfg.fanout)
        uv_close((uv_handle_t *)&t->pace_timer, NULL);
    for (int i = 0; i < t->n; i++)
        if (t->conns[i].c != NULL)
            atollc_close(t->conns[i].c);
}

/* Every millisecond: sends the says that are due. The thread's says are numbered in
 * time order: say number m is connection j = m % n's say of period m / n, scheduled at
 * base + (m / n) * period + (global index of j) * period / conns, which grows with m
 * because a thread's connections have consecutive global indexes. */
static void
on_pace(uv_timer_t *tm)
{
    lg_thread *t = tm->data;
    uint64_t ws = atomic_load(&fo_window_start), now = mono_ns();
    if (t->phase == PH_STOPPING)
        return;
    if (ws == 0) {
        /* Connections that never settle would hang the run: a node that does not
         * answer gate.entry within the connect deadline and a minute fails it. */
        if (now - t->fo_created > (uint64_t)cfg.timeout_ms * 1000000u + 60000000000u) {
            fprintf(stderr, "atoll-loadgen: gate.entry unanswered; giving up\n");
            t->errors++;
            stop_thread(t);
        }
        return;
    }
    uint64_t we = ws + fo_duration_ns;
    if (now >= we + fo_grace_ns) {
        stop_thread(t);
        return;
    }
    if (t->fo_base == 0)
        t->fo_base = ws - fo_warmup_ns;
    uint64_t period = (uint64_t)(1e9 / cfg.rate);
    for (;;) {
        lg_conn *k = &t->conns[t->fo_next % (uint64_t)t->n];
        uint64_t sched = t->fo_base + t->fo_next / (uint64_t)t->n * period +
                         (uint64_t)k->index * period / (uint64_t)cfg.conns;
        if (sched > now || sched >= we)
            break;
        t->fo_next++;
        if (k->entered && k->c != NULL)
            send_say(t, k, sched, ws, we);
    }
}

/* A push: the latency of a say of the window, read back from its text. */
static void
on_push(atollc_client *c, const char *route, const char *body, size_t len, void *ud)
{
    uint64_t now = mono_ns();
    lg_conn *k = ud;
    lg_thread *t = k->t;
    if (t->phase == PH_STOPPING || strcmp(route, cfg.push_route) != 0)
        return;
    const char *p = memmem(body, len, "\"text\":\"", 8), *end = body + len;
    uint64_t sent = 0;
    int digits = 0;
    for (p = p ? p + 8 : end; p < end && *p >= '0' && *p <= '9'; p++, digits++)
        sent = sent * 10 + (uint64_t)(*p - '0');
    if (digits == 0 || digits > 19) {
        t->bad_pushes++;
        return;
    }
    uint64_t ws = atomic_load_explicit(&fo_window_start, memory_order_relaxed);
    if (ws == 0 || sent < ws || sent >= ws + fo_duration_ns)
        return; /* a say of the warm-up */
    t->pushes++;
    hist_record(&t->h, now > sent ? now - sent : 0);
}

/* ---- connections ----------------------------------------------------------------------- */

static void
on_entry(atollc_client *c, int status, const char *body, size_t len, void *ud)
{
    lg_conn *k = ud;
    if (k->t->phase == PH_STOPPING)
        return;
    if (status != ATOLLC_OK || refused(body, len)) {
        if (status == ATOLLC_OK)
            fprintf(stderr, "atoll-loadgen: gate.entry refused: %.*s\n", (int)len, body);
        k->t->errors++;
        fo_settle(k, false);
        return;
    }
    entry_answered();
    fo_settle(k, true);
    start_pipeline(k);
}

static void
write_ready_file(void)
{
    int ok = atomic_load(&total_connected), bad = atomic_load(&total_failed);
    fprintf(stderr, "atoll-loadgen: %d connected, %d failed\n", ok, bad);
    if (cfg.ready_file == NULL)
        return;
    FILE *f = fopen(cfg.ready_file, "w");
    if (f != NULL) {
        fprintf(f, "{\"connected\":%d,\"failed\":%d}\n", ok, bad);
        fclose(f);
    }
}

static void
thread_settled(lg_thread *t)
{
    atomic_fetch_add(&total_connected, t->connected);
    atomic_fetch_add(&total_failed, t->n - t->connected);
    if (atomic_fetch_add(&threads_settled, 1) + 1 == cfg.threads)
        write_ready_file();
    if (cfg.fanout) {
        t->phase = PH_MEASURE; /* the pace timer follows the global window */
    } else if (cfg.idle) {
        t->phase = PH_MEASURE;
        t->t_start = uv_hrtime();
        uv_timer_start(&t->phase_timer, on_phase, (uint64_t)(cfg.duration_s * 1000), 0);
    } else {
        t->phase = PH_WARMUP;
        uv_timer_start(&t->phase_timer, on_phase, (uint64_t)(cfg.warmup_s * 1000), 0);
    }
}

static void
on_client_close(atollc_client *c, int status, void *ud)
{
    lg_conn *k = ud;
    lg_thread *t = k->t;
    if (k->connected && t->phase != PH_STOPPING) {
        t->errors++; /* lost before the end of the run */
        fprintf(stderr, "atoll-loadgen: connection %d lost: %s\n", k->index,
                atoll_strerror(status));
    }
    fo_settle(k, false);
    k->closed = true;
    k->c = NULL;
    atollc_client_free(c);
    t->closed++;
}

static void
on_connect(atollc_client *c, int status, void *ud)
{
    lg_conn *k = ud;
    lg_thread *t = k->t;
    t->connecting--;
    t->settled++;
    if (status == ATOLLC_OK) {
        k->connected = true;
        t->connected++;
        if (t->phase != PH_STOPPING) {
            if ((cfg.entry || cfg.fanout) && !cfg.idle) {
                char body[1024];
                int n = entry_body(body, sizeof body, k->index);
                if (n >= 0 && cfg.repeat_entry && k->entry == NULL) {
                    k->entry = strndup(body, (size_t)n);
                    k->entry_len = (size_t)n;
                }
                entry_sent();
                if (n < 0 ||
                    atollc_request(c, "gate.entry", body, (size_t)n, on_entry, k) != ATOLLC_OK) {
                    t->errors++;
                    fo_settle(k, false);
                }
            } else {
                start_pipeline(k);
            }
        }
    } else {
        t->errors++;
        fo_settle(k, false);
    }
    connect_more(t);
    if (t->settled == t->n)
        thread_settled(t);
}

/* Client options from the command line. */
static void
client_opts(atollc_opts *o)
{
    atollc_opts_init(o);
    o->transport = cfg.transport;
    o->host = cfg.host;
    o->port = cfg.port;
    o->use_dict = cfg.use_dict;
    o->timeout_ms = cfg.timeout_ms;
}

static void
connect_more(lg_thread *t)
{
    while (t->next < t->n && t->connecting < MAX_CONNECTING) {
        lg_conn *k = &t->conns[t->next++];
        atollc_opts o;
        client_opts(&o);
        if (atollc_client_new(&t->loop, &o, &k->c) != ATOLLC_OK) {
            t->errors++;
            t->settled++;
            k->closed = true;
            t->closed++;
            fo_settle(k, false);
            continue;
        }
        atollc_on_close(k->c, on_client_close, k);
        if (cfg.fanout)
            atollc_on_push(k->c, on_push, k);
        atollc_connect(k->c, on_connect, k); /* failures arrive through on_connect */
        t->connecting++;
    }
}

static void
on_phase(uv_timer_t *tm)
{
    lg_thread *t = tm->data;
    if (t->phase == PH_WARMUP) {
        t->phase = PH_MEASURE;
        t->t_start = uv_hrtime();
        cpu_window_open();
        uv_timer_start(&t->phase_timer, on_phase, (uint64_t)(cfg.duration_s * 1000), 0);
        return;
    }
    if (t->phase == PH_MEASURE && !cfg.idle && !cfg.fanout)
        cpu_window_close();
    stop_thread(t);
}

static void *
thread_main(void *arg)
{
    lg_thread *t = arg;
    uv_loop_init(&t->loop);
    uv_timer_init(&t->loop, &t->phase_timer);
    t->phase_timer.data = t;
    if (cfg.fanout) {
        t->fo_created = mono_ns();
        uv_timer_init(&t->loop, &t->pace_timer);
        t->pace_timer.data = t;
        uv_timer_start(&t->pace_timer, on_pace, 1, 1);
    }
    if (t->n == 0) {
        thread_settled(t);
    } else {
        connect_more(t);
        if (t->settled == t->n)
            thread_settled(t);
    }
    uv_run(&t->loop, UV_RUN_DEFAULT);
    uv_loop_close(&t->loop);
    return NULL;
}

/* ---- once ------------------------------------------------------------------------------ */

/* One request on one blocking connection; its answer on stdout. */
static int
run_once(void)
{
    atollc_opts o;
    client_opts(&o); /* the sync client's deadline is the connect timeout here too */
    int err;
    atollc_sync *s = atollc_sync_connect(&o, &err);
    if (s == NULL) {
        fprintf(stderr, "atoll-loadgen: connect: %s\n", atoll_strerror(err));
        return 1;
    }
    char *resp = NULL;
    if (cfg.entry) {
        char body[1024];
        if (entry_body(body, sizeof body, -1) < 0) {
            fprintf(stderr, "atoll-loadgen: --room too long\n");
            atollc_sync_free(s);
            return 1;
        }
        err = atollc_sync_request(s, "gate.entry", body, &resp, (int)cfg.timeout_ms);
        if (err != ATOLLC_OK || refused(resp, strlen(resp))) {
            fprintf(stderr, "atoll-loadgen: gate.entry: %s\n",
                    err != ATOLLC_OK ? atoll_strerror(err) : resp);
            free(resp);
            atollc_sync_free(s);
            return 1;
        }
        free(resp);
    }
    err = atollc_sync_request(s, cfg.route, cfg.body, &resp, (int)cfg.timeout_ms);
    atollc_sync_free(s);
    if (err != ATOLLC_OK) {
        fprintf(stderr, "atoll-loadgen: %s: %s\n", cfg.route, atoll_strerror(err));
        return 1;
    }
    printf("%s\n", resp);
    free(resp);
    return 0;
}

/* The CPU members of --cpu-pids, inside the closed loop's JSON object. A process's CPU
 * per request is its CPU seconds over the span between the two reads divided by the
 * requests answered in that span: the span's length times the summed rate of the
 * threads (each thread counts answers in its own window only, and the windows open and
 * close within milliseconds of the span's edges). */
static void
print_cpu(double rps)
{
    double span = cpu_t1 > cpu_t0 ? (double)(cpu_t1 - cpu_t0) / 1e9 : 0;
    double hz = (double)sysconf(_SC_CLK_TCK);
    printf(",\"cpu_window_s\":%.3f", span);
    for (int i = 0; i < ncpu_pids; i++) {
        if (cpu_before[i] < 0 || cpu_after[i] < cpu_before[i] || span <= 0 || rps <= 0) {
            /* The process was gone at either read (or the run measured nothing). */
            printf(",\"cpu_s_%d\":null,\"cpu_us_per_req_%d\":null", i, i);
            continue;
        }
        double cpu_s = (double)(cpu_after[i] - cpu_before[i]) / hz;
        printf(",\"cpu_s_%d\":%.2f,\"cpu_us_per_req_%d\":%.2f", i, cpu_s, i,
               cpu_s / (span * rps) * 1e6);
    }
}

/* ---- main ---------------------------------------------------------------------------- */

static void
usage(void)
{
    fprintf(stderr,
            "usage: atoll-loadgen --port P [--host H] [--transport tcp|ws] [--conns N]\n"
            "         [--depth D] [--duration S] [--warmup S] [--route R] [--body JSON]\n"
            "         [--entry] [--room NAME] [--jwt-secret S] [--repeat-entry]\n"
            "         [--check-code] [--idle] [--threads T] [--no-dict] [--ready-file PATH]\n"
            "         [--timeout MS] [--uid-prefix P] [--cpu-pids PID,PID,...]\n"
            "       atoll-loadgen --fanout --port P [--rate SAYS_PER_S] [--conns N]\n"
            "         [--route room.say] [--push-route onChat] [--room NAME] [--duration S]\n"
            "         [--warmup S] [--grace S] [--threads T]\n"
            "       atoll-loadgen --once --port P [--entry] [--room NAME] [--jwt-secret S]\n"
            "         --route R\n"
            "         [--body JSON] [--timeout MS]\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    bool route_set = false; /* --fanout's default route differs */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        /* Flags without a value: the option and the setting it turns on (or off). */
        const struct {
            const char *name;
            bool *field;
            bool value;
        } flags[] = {
            {"--entry", &cfg.entry, true},   {"--idle", &cfg.idle, true},
            {"--no-dict", &cfg.use_dict, false}, {"--fanout", &cfg.fanout, true},
            {"--once", &cfg.once, true},     {"--check-code", &cfg.check_code, true},
            {"--repeat-entry", &cfg.repeat_entry, true},
        };
        bool was_flag = false;
        for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++) {
            if (strcmp(a, flags[k].name) == 0) {
                *flags[k].field = flags[k].value;
                was_flag = true;
            }
        }
        if (was_flag)
            continue;
        if (v == NULL)
            usage();
        i++;
        if (!strcmp(a, "--host"))
            cfg.host = v;
        else if (!strcmp(a, "--port"))
            cfg.port = atoi(v);
        else if (!strcmp(a, "--transport") && !strcmp(v, "tcp"))
            cfg.transport = ATOLLC_TCP;
        else if (!strcmp(a, "--transport") && !strcmp(v, "ws"))
            cfg.transport = ATOLLC_WS;
        else if (!strcmp(a, "--conns"))
            cfg.conns = atoi(v);
        else if (!strcmp(a, "--depth"))
            cfg.depth = atoi(v);
        else if (!strcmp(a, "--duration"))
            cfg.duration_s = atof(v);
        else if (!strcmp(a, "--warmup"))
            cfg.warmup_s = atof(v);
        else if (!strcmp(a, "--route")) {
            cfg.route = v;
            route_set = true;
        } else if (!strcmp(a, "--body"))
            cfg.body = v;
        else if (!strcmp(a, "--threads"))
            cfg.threads = atoi(v);
        else if (!strcmp(a, "--ready-file"))
            cfg.ready_file = v;
        else if (!strcmp(a, "--timeout"))
            cfg.timeout_ms = (uint32_t)atoi(v);
        else if (!strcmp(a, "--room"))
            cfg.room = v;
        else if (!strcmp(a, "--rate"))
            cfg.rate = atof(v);
        else if (!strcmp(a, "--grace"))
            cfg.grace_s = atof(v);
        else if (!strcmp(a, "--uid-prefix"))
            cfg.uid_prefix = v;
        else if (!strcmp(a, "--push-route"))
            cfg.push_route = v;
        else if (!strcmp(a, "--jwt-secret"))
            cfg.jwt_secret = v;
        else if (!strcmp(a, "--cpu-pids") && parse_cpu_pids(v))
            cfg.cpu_pids = v;
        else
            usage();
    }
    signal(SIGPIPE, SIG_IGN);
    if (cfg.once) {
        if (cfg.port <= 0 || cfg.port > 65535)
            usage();
        return run_once();
    }
    if (cfg.fanout) {
        if (!route_set)
            cfg.route = "room.say";
        if (cfg.rate <= 0 || cfg.rate > 1e6 || cfg.grace_s < 0 || cfg.idle)
            usage();
        fo_duration_ns = (uint64_t)(cfg.duration_s * 1e9);
        fo_warmup_ns = (uint64_t)(cfg.warmup_s * 1e9);
        fo_grace_ns = (uint64_t)(cfg.grace_s * 1e9);
    }
    if (cfg.port <= 0 || cfg.port > 65535 || cfg.conns < 1 || cfg.depth < 1 ||
        cfg.duration_s <= 0 || cfg.warmup_s < 0 || cfg.threads < 1 || cfg.threads > MAX_THREADS)
        usage();
    if (cfg.repeat_entry && (!cfg.entry || cfg.idle || cfg.fanout))
        usage(); /* it repeats the entry: --entry, closed loop */
    if (cfg.cpu_pids && (cfg.idle || cfg.fanout))
        usage(); /* per request answered: closed loop */
    if (cfg.threads > cfg.conns)
        cfg.threads = cfg.conns;
    cfg.body_len = strlen(cfg.body);

    /* Thousands of sockets: take every descriptor the hard limit allows. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    lg_thread *threads = calloc((size_t)cfg.threads, sizeof *threads);
    lg_conn *conns = calloc((size_t)cfg.conns, sizeof *conns);
    slot *slots = cfg.idle ? NULL : calloc((size_t)cfg.conns * (size_t)cfg.depth, sizeof *slots);
    if (threads == NULL || conns == NULL || (!cfg.idle && slots == NULL)) {
        fprintf(stderr, "atoll-loadgen: out of memory\n");
        return 1;
    }
    /* Connection i goes to thread i % T; each thread's share is contiguous. */
    int at = 0;
    for (int t = 0; t < cfg.threads; t++) {
        lg_thread *th = &threads[t];
        th->index = t;
        th->n = cfg.conns / cfg.threads + (t < cfg.conns % cfg.threads);
        th->conns = conns + at;
        for (int i = 0; i < th->n; i++) {
            lg_conn *k = &th->conns[i];
            k->t = th;
            k->index = at + i;
            if (!cfg.idle) {
                k->slots = slots + (size_t)(at + i) * (size_t)cfg.depth;
                for (int d = 0; d < cfg.depth; d++)
                    k->slots[d].conn = k;
            }
        }
        at += th->n;
    }
    for (int t = 0; t < cfg.threads; t++)
        pthread_create(&threads[t].thread, NULL, thread_main, &threads[t]);

    hist *all = calloc(1, sizeof *all), *lag = calloc(1, sizeof *lag);
    uint64_t requests = 0, errors = 0, says = 0, say_errors = 0, pushes = 0, bad_pushes = 0;
    double rps = 0, window = 0;
    for (int t = 0; t < cfg.threads; t++) {
        lg_thread *th = &threads[t];
        pthread_join(th->thread, NULL);
        hist_merge(all, &th->h);
        hist_merge(lag, &th->lag);
        requests += th->requests;
        errors += th->errors;
        says += th->says;
        say_errors += th->say_errors;
        pushes += th->pushes;
        bad_pushes += th->bad_pushes;
        double w = th->t_end > th->t_start ? (double)(th->t_end - th->t_start) / 1e9 : 0;
        if (w > 0)
            rps += (double)th->requests / w;
        window += w / cfg.threads;
    }
    if (cfg.fanout) {
        int members = atomic_load(&fo_members);
        uint64_t expected = says * (uint64_t)members;
        if (bad_pushes > 0)
            fprintf(stderr, "atoll-loadgen: %llu pushes without a readable send time\n",
                    (unsigned long long)bad_pushes);
        printf("{\"mode\":\"fanout\",\"conns\":%d,\"members\":%d,\"rate_per_conn\":%g,"
               "\"duration_s\":%.3f,\"says\":%llu,\"say_errors\":%llu,"
               "\"pushes_expected\":%llu,\"pushes\":%llu,\"delivered\":%.6f,"
               "\"pushes_per_s\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
               "\"max_us\":%.1f,\"lag_p99_us\":%.1f,\"lag_max_us\":%.1f,\"errors\":%llu,"
               "\"connected\":%d}\n",
               cfg.conns, members, cfg.rate, cfg.duration_s, (unsigned long long)says,
               (unsigned long long)say_errors, (unsigned long long)expected,
               (unsigned long long)pushes, expected ? (double)pushes / (double)expected : 0.0,
               (double)pushes / cfg.duration_s, hist_percentile(all, 0.50) / 1e3,
               hist_percentile(all, 0.99) / 1e3, hist_percentile(all, 0.999) / 1e3, all->max / 1e3,
               hist_percentile(lag, 0.99) / 1e3, lag->max / 1e3, (unsigned long long)errors,
               atomic_load(&total_connected));
    } else {
        printf("{\"transport\":\"%s\",\"conns\":%d,\"depth\":%d,\"duration_s\":%.3f,"
               "\"requests\":%llu,\"errors\":%llu,\"throughput_rps\":%.1f,\"p50_us\":%.1f,"
               "\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,\"connected\":%d,"
               "\"entries\":%d,\"entry_s\":%.3f",
               cfg.transport == ATOLLC_WS ? "ws" : "tcp", cfg.conns, cfg.idle ? 0 : cfg.depth,
               window, (unsigned long long)requests, (unsigned long long)errors, rps,
               hist_percentile(all, 0.50) / 1e3, hist_percentile(all, 0.99) / 1e3,
               hist_percentile(all, 0.999) / 1e3, all->max / 1e3, atomic_load(&total_connected),
               atomic_load(&entries_ok),
               entry_last > entry_first ? (double)(entry_last - entry_first) / 1e9 : 0.0);
        if (ncpu_pids > 0)
            print_cpu(rps);
        printf("}\n");
    }
    free(all);
    free(lag);
    for (int i = 0; i < cfg.conns; i++)
        free(conns[i].entry);
    free(slots);
    free(conns);
    free(threads);
    return atomic_load(&total_connected) > 0 ? 0 : 1;
}
