/* loadgen.c -- atoll-loadgen: a closed-loop load generator on the async atoll client.
 *
 * N connections (spread over T threads, each with its own libuv loop) each keep D
 * requests in flight: every response immediately sends the next request on the same
 * slot, so the offered load adapts to the server (closed loop) and the latency of a
 * request is the time from queueing it to its response, client-side batching
 * included. Connections are opened at most MAX_CONNECTING at a time per thread (a
 * burst of thousands of SYNs would overflow the listen backlog and cost 1 s
 * retransmits). Once a thread's connections are all up (or failed), it runs the
 * warm-up, then the measured window; only responses that arrive inside the window
 * count. Latencies go into a log-linear histogram (HDR style: 64 linear sub-buckets
 * per power of two, under 1.6% error, no per-sample storage); threads merge theirs
 * at the end.
 *
 * --idle opens the connections, completes the handshakes and holds them (answering
 * heartbeats) for --duration seconds, for memory measurements. --ready-file PATH is
 * written once every connection has settled, so a script knows when to measure.
 *
 * Output: one JSON object on stdout:
 * {"transport","conns","depth","duration_s","requests","errors","throughput_rps",
 *  "p50_us","p99_us","p999_us","max_us","connected"}.
 * errors counts failed connects, failed requests and connections lost before the end.
 */
#include <atollc/atollc.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

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
};

static atomic_int threads_settled;
static atomic_int total_connected;
static atomic_int total_failed;

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
} lg_thread;

static void connect_more(lg_thread *t);
static void on_phase(uv_timer_t *tm);

static void on_response(atollc_client *c, int status, const char *body, size_t len, void *ud);

static void
send_slot(slot *s)
{
    lg_conn *k = s->conn;
    s->t0 = uv_hrtime();
    if (atollc_request(k->c, cfg.route, cfg.body, cfg.body_len, on_response, s) != ATOLLC_OK)
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
    if (t->phase == PH_MEASURE) {
        t->requests++;
        hist_record(&t->h, uv_hrtime() - s->t0);
    }
    send_slot(s);
}

static void
start_pipeline(lg_conn *k)
{
    if (cfg.idle)
        return;
    for (int i = 0; i < cfg.depth; i++)
        send_slot(&k->slots[i]);
}

static void
on_entry(atollc_client *c, int status, const char *body, size_t len, void *ud)
{
    lg_conn *k = ud;
    if (k->t->phase == PH_STOPPING)
        return;
    if (status != ATOLLC_OK) {
        k->t->errors++;
        return;
    }
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
    if (cfg.idle) {
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
    if (k->connected && t->phase != PH_STOPPING)
        t->errors++; /* lost before the end of the run */
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
            if (cfg.entry && !cfg.idle) {
                char uid[64];
                int n = snprintf(uid, sizeof uid, "{\"uid\":\"bench-%d\"}", k->index);
                if (atollc_request(c, "gate.entry", uid, (size_t)n, on_entry, k) != ATOLLC_OK)
                    t->errors++;
            } else {
                start_pipeline(k);
            }
        }
    } else {
        t->errors++;
    }
    connect_more(t);
    if (t->settled == t->n)
        thread_settled(t);
}

static void
connect_more(lg_thread *t)
{
    while (t->next < t->n && t->connecting < MAX_CONNECTING) {
        lg_conn *k = &t->conns[t->next++];
        atollc_opts o;
        atollc_opts_init(&o);
        o.transport = cfg.transport;
        o.host = cfg.host;
        o.port = cfg.port;
        o.use_dict = cfg.use_dict;
        o.timeout_ms = cfg.timeout_ms;
        if (atollc_client_new(&t->loop, &o, &k->c) != ATOLLC_OK) {
            t->errors++;
            t->settled++;
            k->closed = true;
            t->closed++;
            continue;
        }
        atollc_on_close(k->c, on_client_close, k);
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
        uv_timer_start(&t->phase_timer, on_phase, (uint64_t)(cfg.duration_s * 1000), 0);
        return;
    }
    t->t_end = uv_hrtime();
    t->phase = PH_STOPPING;
    uv_close((uv_handle_t *)&t->phase_timer, NULL);
    for (int i = 0; i < t->n; i++)
        if (t->conns[i].c != NULL)
            atollc_close(t->conns[i].c);
}

static void *
thread_main(void *arg)
{
    lg_thread *t = arg;
    uv_loop_init(&t->loop);
    uv_timer_init(&t->loop, &t->phase_timer);
    t->phase_timer.data = t;
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

/* ---- main ---------------------------------------------------------------------------- */

static void
usage(void)
{
    fprintf(stderr,
            "usage: atoll-loadgen --port P [--host H] [--transport tcp|ws] [--conns N]\n"
            "         [--depth D] [--duration S] [--warmup S] [--route R] [--body JSON]\n"
            "         [--entry] [--idle] [--threads T] [--no-dict] [--ready-file PATH]\n"
            "         [--timeout MS]\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--entry")) {
            cfg.entry = true;
            continue;
        }
        if (!strcmp(a, "--idle")) {
            cfg.idle = true;
            continue;
        }
        if (!strcmp(a, "--no-dict")) {
            cfg.use_dict = false;
            continue;
        }
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
        else if (!strcmp(a, "--route"))
            cfg.route = v;
        else if (!strcmp(a, "--body"))
            cfg.body = v;
        else if (!strcmp(a, "--threads"))
            cfg.threads = atoi(v);
        else if (!strcmp(a, "--ready-file"))
            cfg.ready_file = v;
        else if (!strcmp(a, "--timeout"))
            cfg.timeout_ms = (uint32_t)atoi(v);
        else
            usage();
    }
    if (cfg.port <= 0 || cfg.port > 65535 || cfg.conns < 1 || cfg.depth < 1 ||
        cfg.duration_s <= 0 || cfg.warmup_s < 0 || cfg.threads < 1 ||
        cfg.threads > MAX_THREADS)
        usage();
    if (cfg.threads > cfg.conns)
        cfg.threads = cfg.conns;
    cfg.body_len = strlen(cfg.body);

    /* Thousands of sockets: take every descriptor the hard limit allows. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);

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

    hist *all = calloc(1, sizeof *all);
    uint64_t requests = 0, errors = 0;
    double rps = 0, window = 0;
    for (int t = 0; t < cfg.threads; t++) {
        lg_thread *th = &threads[t];
        pthread_join(th->thread, NULL);
        hist_merge(all, &th->h);
        requests += th->requests;
        errors += th->errors;
        double w = th->t_end > th->t_start ? (double)(th->t_end - th->t_start) / 1e9 : 0;
        if (w > 0)
            rps += (double)th->requests / w;
        window += w / cfg.threads;
    }
    printf("{\"transport\":\"%s\",\"conns\":%d,\"depth\":%d,\"duration_s\":%.3f,"
           "\"requests\":%llu,\"errors\":%llu,\"throughput_rps\":%.1f,\"p50_us\":%.1f,"
           "\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,\"connected\":%d}\n",
           cfg.transport == ATOLLC_WS ? "ws" : "tcp", cfg.conns, cfg.idle ? 0 : cfg.depth,
           window, (unsigned long long)requests, (unsigned long long)errors, rps,
           hist_percentile(all, 0.50) / 1e3, hist_percentile(all, 0.99) / 1e3,
           hist_percentile(all, 0.999) / 1e3, all->max / 1e3, atomic_load(&total_connected));
    free(all);
    free(slots);
    free(conns);
    free(threads);
    return atomic_load(&total_connected) > 0 ? 0 : 1;
}
