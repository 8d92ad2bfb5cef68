/* failover.c -- atoll-failover-bench: how long players wait when an area node dies.
 *
 * It starts a cluster of the quick game on loopback: one gate and two area nodes, both
 * with the coordinator role ("area,coordinator"), over a Redis and a PostgreSQL the
 * caller gives (bench/run.sh starts private ones), all in durable mode. Players, each
 * a thread with a blocking client (libatollc's atollc_sync_*), enter through the gate
 * and level up in a closed loop, 1 request in flight, and check every answer: it must
 * be the level after the last one (exactly once: nothing lost, skipped or run twice
 * across a failover). Then, --kills times:
 *
 *   1. the victim: the area node that owns the most areas in Redis (atoll:area:<id>),
 *      on a tie the one holding the coordinator's lease (atoll:coordinator), so that
 *      the standby must take the lease over before anything comes back;
 *   2. SIGKILL, the time taken just before it;
 *   3. the players play on until every one has been answered after the kill, and
 *      --hold-ms more (an answer that was already on its way at the kill does not end
 *      a player's wait: its next request may be the one that waits);
 *   4. the victim starts again as a fresh process with the same --node-id (so it gets
 *      its registry id back), and the cluster is left to settle for --settle-ms, and
 *      then for a random time up to --jitter-ms more: the wait depends on where in its
 *      heartbeat period (cluster.beat_ms) each node is at the kill, and a loop of fixed
 *      delays would kill at about the same phase every time (it did: kills of one
 *      node took 1.4-1.6 s, of the other 1.8-1.9 s, alternating).
 *
 * For each kill and each player, its wait: the longest time it went without an answer
 * from the kill to the end of step 3, the kill counting as its last answer (a player
 * whose area survived waits one request's time; one whose area died waits for the
 * death to be noticed, the lease to be taken over, the area to be created again and
 * its request to be sent again). Also the plain time from the kill to the player's
 * first answer after it. Per kill: the worst player's wait and the median player's
 * (and the median of the players whose area was on the victim, and the worst of the
 * others, whose area lived on). Over the kills: p50 and max of each. Waits while a
 * node restarts are reported apart (a restart should disturb nobody).
 *
 * The gate's log tells how many node deaths it saw: more than the kills would be a
 * node declared dead while it was alive (a lease not renewed in time).
 *
 * Output: a JSON object on stdout; progress on stderr. Each node's log goes to
 * --logs DIR/<name>.<start>.log (the killed processes' logs are kept). Exit status 0
 * when it ran (violations and errors are counted in the JSON, not in the status), 1
 * when the cluster could not be started or driven, 2 on bad arguments.
 */
#define _GNU_SOURCE
#include <atollc/atollc.h>
#include <hiredis/hiredis.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PLAYERS 1024
#define MAX_KILLS 100
#define MAX_ARGS 48
#define ALL_ANSWERED_MS 30000 /* a kill after which some player waits longer: an error */

static struct {
    const char *atoll;
    const char *redis; /* redis://HOST:PORT */
    const char *store; /* the area nodes' postgres:// URL */
    const char *secret;
    const char *logs;
    int players;
    int kills;
    int lease_ms; /* 0: the node's default */
    int beat_ms;
    int areas; /* quick.areas */
    int warmup_ms;
    int hold_ms;
    int settle_ms;
    int jitter_ms;
    int timeout_ms; /* one request's deadline */
} cfg = {
    .logs = ".",
    .players = 50,
    .kills = 10,
    .areas = 8,
    .warmup_ms = 2000,
    .hold_ms = 1000,
    .settle_ms = 2000,
    .jitter_ms = 1000,
    .timeout_ms = 15000,
};

static uint64_t
now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void
sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- nodes ------------------------------------------------------------------------ */

typedef struct node {
    const char *name;
    const char *roles;
    pid_t pid;
    int id;   /* the registry's id, from "running node N" (area nodes) */
    int port; /* the client port, from "listening HOST:PORT" (the gate) */
    int starts;
} node;

/* Starts n and waits for its first line on stdout. false with a message on failure. */
static bool
node_start(node *n)
{
    bool gate = strstr(n->roles, "gate") != NULL;
    char lease[48], beat[48], areas[48], log[512];
    snprintf(lease, sizeof lease, "cluster.lease_ms=%d", cfg.lease_ms);
    snprintf(beat, sizeof beat, "cluster.beat_ms=%d", cfg.beat_ms);
    snprintf(areas, sizeof areas, "quick.areas=%d", cfg.areas);
    snprintf(log, sizeof log, "%s/%s.%d.log", cfg.logs, n->name, ++n->starts);
    const char *argv[MAX_ARGS] = {cfg.atoll, "run", "--game", "quick", "--workers", "2",
                                  "--roles", n->roles, "--node-id", n->name,
                                  "--advertise", "127.0.0.1:0", "--redis", cfg.redis,
                                  "--cluster-secret", cfg.secret, "--durability", "durable",
                                  "--set", areas, "--set", "quick.broadcast=false",
                                  "--set", "net.rate_limit=0"};
    int k = 24;
    if (gate) {
        /* A gate keeps no documents: memory, not the default ./data/atoll.db. */
        argv[k++] = "--listen";
        argv[k++] = "127.0.0.1:0";
        argv[k++] = "--store";
        argv[k++] = "memory";
    } else {
        argv[k++] = "--store";
        argv[k++] = cfg.store;
    }
    if (cfg.lease_ms > 0) {
        argv[k++] = "--set";
        argv[k++] = lease;
    }
    if (cfg.beat_ms > 0) {
        argv[k++] = "--set";
        argv[k++] = beat;
    }
    argv[k] = NULL;
    int out[2];
    int logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (logfd < 0 || pipe(out) != 0) {
        fprintf(stderr, "atoll-failover-bench: cannot create %s or a pipe: %s\n", log,
                strerror(errno));
        return false;
    }
    pid_t pid = fork();
    if (pid == 0) {
        /* This program killed or crashed: its nodes go with it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(out[1], 1);
        dup2(logfd, 2);
        close(out[0]);
        execv(cfg.atoll, (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    close(logfd);
    if (pid < 0) {
        close(out[0]);
        fprintf(stderr, "atoll-failover-bench: fork: %s\n", strerror(errno));
        return false;
    }
    n->pid = pid;
    char line[128];
    size_t len = 0;
    uint64_t deadline = now_us() + 15000000u;
    while (len < sizeof line - 1) {
        struct pollfd pfd = {out[0], POLLIN, 0};
        int64_t left = (int64_t)(deadline - now_us()) / 1000;
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            break;
        if (read(out[0], line + len, 1) != 1 || line[len] == '\n')
            break;
        len++;
    }
    line[len] = '\0';
    close(out[0]);
    if (gate && strncmp(line, "listening ", 10) == 0 && strrchr(line, ':') != NULL) {
        n->port = atoi(strrchr(line, ':') + 1);
        return true;
    }
    if (!gate && sscanf(line, "running node %d", &n->id) == 1)
        return true;
    fprintf(stderr, "atoll-failover-bench: %s did not start (said \"%s\"); see %s\n", n->name, line,
            log);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    n->pid = 0;
    return false;
}

static void
node_stop(node *n)
{
    if (n->pid <= 0)
        return;
    kill(n->pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(n->pid, NULL, WNOHANG) == n->pid) {
            n->pid = 0;
            return;
        }
        sleep_ms(100);
    }
    kill(n->pid, SIGKILL);
    waitpid(n->pid, NULL, 0);
    n->pid = 0;
}

/* ---- Redis --------------------------------------------------------------------------- */

static redisContext *rc;

static bool
redis_open(void)
{
    char host[128];
    int port = 6379, db = 0;
    const char *rest = strncmp(cfg.redis, "redis://", 8) == 0 ? cfg.redis + 8 : NULL;
    if (rest == NULL || sscanf(rest, "%127[^:/]", host) != 1)
        return false;
    rest += strlen(host);
    if (*rest == ':')
        port = (int)strtol(rest + 1, (char **)&rest, 10);
    if (*rest == '/')
        db = atoi(rest + 1); /* the nodes' database of the server: the same keys */
    struct timeval tv = {2, 0};
    rc = redisConnectWithTimeout(host, port, tv);
    if (rc == NULL || rc->err != 0)
        return false;
    redisReply *r = redisCommand(rc, "SELECT %d", db);
    bool ok = r != NULL && r->type == REDIS_REPLY_STATUS;
    if (r != NULL)
        freeReplyObject(r);
    return ok;
}

/* An integer reply or string holding one; -1 when there is none. */
static long
redis_int(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    long v = -1;
    if (r != NULL && r->type == REDIS_REPLY_STRING)
        v = atol(r->str);
    else if (r != NULL && r->type == REDIS_REPLY_INTEGER)
        v = (long)r->integer;
    if (r != NULL)
        freeReplyObject(r);
    return v;
}

/* The node id owning area-<k> (1-based), or -1. */
static int
owner_of(int k)
{
    return (int)redis_int("HGET atoll:area:area-%d node", k);
}

/* ---- players --------------------------------------------------------------------------- */

typedef struct player {
    pthread_t thread;
    atollc_sync *s;
    char uid[64];
    int area; /* area-<area>, as the quick game's entry chooses it */
    atomic_bool stop;
    atomic_bool dead;         /* its request failed: it plays no more */
    _Atomic uint64_t last_us; /* its last answer */
    /* Written by its thread only, read by main after the join. */
    int acked;
    uint64_t *at_us; /* at_us[i]: the time of answer i (i from 0) */
    size_t n, cap;
    int violations;
    char first_violation[200];
    char error[200];
} player;

static player players[MAX_PLAYERS];

/* The quick game's area for a uid: FNV-1a of the uid, modulo quick.areas, plus 1
 * (examples/quick/quick.c; stable across runs, the tests compute it too). */
static int
area_of(const char *uid)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *c = (const unsigned char *)uid; *c; c++)
        h = (h ^ *c) * 16777619u;
    return (int)(h % (uint32_t)cfg.areas) + 1;
}

static void *
play(void *arg)
{
    player *p = arg;
    while (!atomic_load(&p->stop)) {
        char *resp = NULL;
        int st = atollc_sync_request(p->s, "area.levelup", "{}", &resp, cfg.timeout_ms);
        uint64_t t = now_us();
        if (st != ATOLLC_OK) {
            snprintf(p->error, sizeof p->error, "area.levelup after level %d: %s", p->acked,
                     atoll_strerror(st));
            atomic_store(&p->dead, true);
            break;
        }
        int level = -1;
        if (sscanf(resp, "{\"code\":200,\"level\":%d,", &level) != 1) {
            snprintf(p->error, sizeof p->error, "after level %d: %.120s", p->acked, resp);
            free(resp);
            atomic_store(&p->dead, true);
            break;
        }
        if (level != p->acked + 1) {
            /* Lost (a skip), run twice (the same level again or less): counted, and the
             * count goes on from what the node says. */
            if (p->violations++ == 0)
                snprintf(p->first_violation, sizeof p->first_violation, "level %d after level %d",
                         level, p->acked);
        }
        free(resp);
        p->acked = level;
        if (p->n == p->cap) {
            p->cap = p->cap ? 2 * p->cap : 4096;
            p->at_us = realloc(p->at_us, p->cap * sizeof *p->at_us);
        }
        p->at_us[p->n++] = t;
        atomic_store(&p->last_us, t);
        /* The money pushes queue up in the client: drop them. */
        char *r = NULL, *b = NULL;
        while (atollc_sync_wait_push(p->s, &r, &b, 0) == ATOLLC_OK) {
            free(r);
            free(b);
        }
    }
    return NULL;
}

static bool
players_start(int port)
{
    atollc_opts o;
    atollc_opts_init(&o);
    o.port = port;
    for (int i = 0; i < cfg.players; i++) {
        player *p = &players[i];
        /* A uid of this run alone: its level starts at 0 in the shared store. */
        snprintf(p->uid, sizeof p->uid, "fo-%d-%ld-%d", (int)getpid(), (long)time(NULL), i);
        p->area = area_of(p->uid);
        int err = 0;
        p->s = atollc_sync_connect(&o, &err);
        char body[128], *resp = NULL;
        snprintf(body, sizeof body, "{\"uid\":\"%s\"}", p->uid);
        if (p->s == NULL ||
            atollc_sync_request(p->s, "gate.entry", body, &resp, cfg.timeout_ms) != ATOLLC_OK ||
            strncmp(resp, "{\"code\":200", 11) != 0) {
            fprintf(stderr, "atoll-failover-bench: player %s could not enter: %s\n", p->uid,
                    resp ? resp : atoll_strerror(err));
            free(resp);
            return false;
        }
        free(resp);
    }
    for (int i = 0; i < cfg.players; i++)
        pthread_create(&players[i].thread, NULL, play, &players[i]);
    return true;
}

/* ---- waits ------------------------------------------------------------------------------ */

/* p's longest time without an answer in [from, to], from counting as an answer (and
 * to as one, so that a wait still open at the end counts as far as it went); its
 * first answer after from goes to *first (0: none). */
static uint64_t
longest_wait(const player *p, uint64_t from, uint64_t to, uint64_t *first)
{
    uint64_t prev = from, longest = 0;
    *first = 0;
    for (size_t i = 0; i < p->n; i++) {
        uint64_t t = p->at_us[i];
        if (t <= from)
            continue;
        if (t > to)
            break;
        if (*first == 0)
            *first = t - from;
        if (t - prev > longest)
            longest = t - prev;
        prev = t;
    }
    if (to - prev > longest)
        longest = to - prev;
    return longest;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The median (the lower middle of an even count) of v[0..n), sorted in place. */
static double
median_ms(uint64_t *v, int n)
{
    if (n == 0)
        return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_u64);
    return (double)v[(n - 1) / 2] / 1000.0;
}

static double
max_ms(const uint64_t *v, int n)
{
    uint64_t m = 0;
    for (int i = 0; i < n; i++)
        if (v[i] > m)
            m = v[i];
    return (double)m / 1000.0;
}

/* Lines of path holding needle (0 when it cannot be read). */
static int
count_lines(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof line, f) != NULL)
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

typedef struct kill_rec {
    char victim[16];
    int node_id;
    bool coordinator;
    int areas;    /* areas the victim owned */
    int affected; /* players in them */
    uint64_t kill_us, answered_us, end_us, restarted_us, settled_us;
    double worst_ms, median_ms, affected_median_ms, first_worst_ms;
    double others_worst_ms;  /* the longest wait of a player whose area lived on; -1: none */
    double restart_worst_ms; /* the longest wait while it restarted and settled */
} kill_rec;

static kill_rec kills[MAX_KILLS];
static bool in_victim[MAX_KILLS][MAX_PLAYERS]; /* the player's area was the victim's */

/* text as a JSON string's content: quotes and backslashes become ', control bytes go. */
static void
print_json_text(const char *text)
{
    for (const char *c = text; *c; c++)
        if (*c == '"' || *c == '\\')
            putchar('\'');
        else if ((unsigned char)*c >= 0x20)
            putchar(*c);
}

static void
usage(void)
{
    fprintf(stderr, "usage: atoll-failover-bench --atoll BIN --redis redis://HOST:PORT\n"
                    "         --store postgres://... --secret SECRET [--logs DIR] [--players N]\n"
                    "         [--kills K] [--lease-ms MS] [--beat-ms MS] [--areas N]\n"
                    "         [--warmup-ms MS] [--hold-ms MS] [--settle-ms MS] [--jitter-ms MS]\n"
                    "         [--timeout-ms MS]\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--atoll"))
            cfg.atoll = v;
        else if (!strcmp(a, "--redis"))
            cfg.redis = v;
        else if (!strcmp(a, "--store"))
            cfg.store = v;
        else if (!strcmp(a, "--secret"))
            cfg.secret = v;
        else if (!strcmp(a, "--logs"))
            cfg.logs = v;
        else if (!strcmp(a, "--players"))
            cfg.players = atoi(v);
        else if (!strcmp(a, "--kills"))
            cfg.kills = atoi(v);
        else if (!strcmp(a, "--lease-ms"))
            cfg.lease_ms = atoi(v);
        else if (!strcmp(a, "--beat-ms"))
            cfg.beat_ms = atoi(v);
        else if (!strcmp(a, "--areas"))
            cfg.areas = atoi(v);
        else if (!strcmp(a, "--warmup-ms"))
            cfg.warmup_ms = atoi(v);
        else if (!strcmp(a, "--hold-ms"))
            cfg.hold_ms = atoi(v);
        else if (!strcmp(a, "--settle-ms"))
            cfg.settle_ms = atoi(v);
        else if (!strcmp(a, "--jitter-ms"))
            cfg.jitter_ms = atoi(v);
        else if (!strcmp(a, "--timeout-ms"))
            cfg.timeout_ms = atoi(v);
        else
            usage();
    }
    if (argc % 2 == 0 || !cfg.atoll || !cfg.redis || !cfg.store || !cfg.secret || cfg.players < 1 ||
        cfg.players > MAX_PLAYERS || cfg.kills < 1 || cfg.kills > MAX_KILLS || cfg.areas < 1 ||
        cfg.timeout_ms < 1 || cfg.jitter_ms < 0)
        usage();
    signal(SIGPIPE, SIG_IGN);
    srand48((long)time(NULL) ^ (long)getpid());
    if (!redis_open()) {
        fprintf(stderr, "atoll-failover-bench: cannot connect to %s\n", cfg.redis);
        return 1;
    }

    node area[2] = {{.name = "fo-a1", .roles = "area,coordinator"},
                    {.name = "fo-a2", .roles = "area,coordinator"}};
    node gate = {.name = "fo-g1", .roles = "gate"};
    int rc_exit = 1, done = 0; /* kills done */
    if (!node_start(&area[0]) || !node_start(&area[1]) || !node_start(&gate))
        goto out;
    if (!players_start(gate.port))
        goto out;
    sleep_ms(cfg.warmup_ms + (int)(drand48() * cfg.jitter_ms));

    for (int k = 0; k < cfg.kills; k++) {
        kill_rec *kr = &kills[k];
        /* The victim: most areas, then the coordinator's lease. */
        long coord = redis_int("GET atoll:coordinator");
        int owned[2] = {0, 0};
        for (int a = 1; a <= cfg.areas; a++)
            for (int j = 0; j < 2; j++)
                owned[j] += owner_of(a) == area[j].id;
        int v = owned[1] > owned[0] || (owned[1] == owned[0] && coord == area[1].id);
        node *victim = &area[v];
        snprintf(kr->victim, sizeof kr->victim, "%s", victim->name);
        kr->node_id = victim->id;
        kr->coordinator = coord == victim->id;
        kr->areas = owned[v];
        for (int i = 0; i < cfg.players; i++) {
            in_victim[k][i] = owner_of(players[i].area) == victim->id;
            kr->affected += in_victim[k][i];
        }
        if (kr->areas == 0) {
            fprintf(stderr, "atoll-failover-bench: no area node owns an area\n");
            goto out;
        }

        kr->kill_us = now_us();
        kill(victim->pid, SIGKILL);
        waitpid(victim->pid, NULL, 0);
        victim->pid = 0;

        /* Every live player answered after the kill, then the hold. */
        uint64_t give_up = kr->kill_us + ALL_ANSWERED_MS * 1000u;
        for (;;) {
            int waiting = 0;
            for (int i = 0; i < cfg.players; i++)
                waiting += !atomic_load(&players[i].dead) &&
                           atomic_load(&players[i].last_us) <= kr->kill_us;
            if (waiting == 0 || now_us() > give_up)
                break;
            sleep_ms(5);
        }
        kr->answered_us = now_us();
        sleep_ms(cfg.hold_ms);
        kr->end_us = now_us();

        if (!node_start(victim))
            goto out;
        kr->restarted_us = now_us();
        sleep_ms(cfg.settle_ms + (int)(drand48() * cfg.jitter_ms));
        kr->settled_us = now_us();
        done = k + 1;
        fprintf(stderr,
                "  kill %d: %s (node %d%s, %d areas, %d of %d players in them); all answered "
                "%.0f ms after the kill; back as node %d\n",
                k + 1, kr->victim, kr->node_id, kr->coordinator ? ", coordinator" : "", kr->areas,
                kr->affected, cfg.players, (double)(kr->answered_us - kr->kill_us) / 1000.0,
                victim->id);
    }
    rc_exit = 0;

out:
    for (int i = 0; i < cfg.players; i++)
        atomic_store(&players[i].stop, true);
    for (int i = 0; i < cfg.players; i++)
        if (players[i].s != NULL && players[i].thread != 0)
            pthread_join(players[i].thread, NULL);
    node_stop(&gate);
    node_stop(&area[0]);
    node_stop(&area[1]);
    if (rc_exit != 0)
        return rc_exit;

    /* Per kill, from the answer times. */
    static uint64_t w[MAX_PLAYERS], wv[MAX_PLAYERS], wo[MAX_PLAYERS], f[MAX_PLAYERS],
        r[MAX_PLAYERS];
    uint64_t worst[MAX_KILLS], med[MAX_KILLS], vmed[MAX_KILLS];
    for (int k = 0; k < done; k++) {
        kill_rec *kr = &kills[k];
        int nv = 0, no = 0;
        for (int i = 0; i < cfg.players; i++) {
            uint64_t ignored;
            w[i] = longest_wait(&players[i], kr->kill_us, kr->end_us, &f[i]);
            if (in_victim[k][i])
                wv[nv++] = w[i];
            else
                wo[no++] = w[i];
            /* From the restart to the next kill (or the end of this one's settling). */
            uint64_t to = k + 1 < done ? kills[k + 1].kill_us : kr->settled_us;
            r[i] = longest_wait(&players[i], kr->restarted_us, to, &ignored);
        }
        kr->worst_ms = max_ms(w, cfg.players);
        kr->first_worst_ms = max_ms(f, cfg.players);
        kr->restart_worst_ms = max_ms(r, cfg.players);
        kr->median_ms = median_ms(w, cfg.players);
        kr->affected_median_ms = median_ms(wv, nv);
        kr->others_worst_ms = no > 0 ? max_ms(wo, no) : -1; /* -1: no area lived on */
        worst[k] = (uint64_t)(kr->worst_ms * 1000);
        med[k] = (uint64_t)(kr->median_ms * 1000);
        vmed[k] = (uint64_t)(kr->affected_median_ms * 1000);
        char others[64] = "no other players";
        if (no > 0)
            snprintf(others, sizeof others, "worst of the %d others %.0f ms", no,
                     kr->others_worst_ms);
        fprintf(stderr,
                "  kill %d: worst player %.0f ms, median player %.0f ms, median of the %d "
                "players of the dead node's areas %.0f ms, %s; worst wait during its restart "
                "%.0f ms\n",
                k + 1, kr->worst_ms, kr->median_ms, nv, kr->affected_median_ms, others,
                kr->restart_worst_ms);
    }
    uint64_t restart_worst = 0, others_worst = 0;
    for (int k = 0; k < done; k++) {
        if ((uint64_t)(kills[k].restart_worst_ms * 1000) > restart_worst)
            restart_worst = (uint64_t)(kills[k].restart_worst_ms * 1000);
        if (kills[k].others_worst_ms >= 0 &&
            (uint64_t)(kills[k].others_worst_ms * 1000) > others_worst)
            others_worst = (uint64_t)(kills[k].others_worst_ms * 1000);
    }
    int violations = 0, errors = 0;
    long levels = 0;
    const char *first_violation = "", *first_error = "";
    for (int i = 0; i < cfg.players; i++) {
        violations += players[i].violations;
        levels += players[i].acked;
        if (players[i].violations && !first_violation[0])
            first_violation = players[i].first_violation;
        if (players[i].error[0]) {
            errors++;
            if (!first_error[0])
                first_error = players[i].error;
        }
    }
    /* null: the node's default, not given. */
    char lease[16] = "null", beat[16] = "null";
    if (cfg.lease_ms > 0)
        snprintf(lease, sizeof lease, "%d", cfg.lease_ms);
    if (cfg.beat_ms > 0)
        snprintf(beat, sizeof beat, "%d", cfg.beat_ms);
    printf("{\"players\":%d,\"kills\":%d,\"lease_ms\":%s,\"beat_ms\":%s,\"areas\":%d,", cfg.players,
           done, lease, beat, cfg.areas);
    printf("\"worst_p50_ms\":%.1f,\"worst_max_ms\":%.1f,", median_ms(worst, done),
           max_ms(worst, done));
    printf("\"median_p50_ms\":%.1f,\"median_max_ms\":%.1f,", median_ms(med, done),
           max_ms(med, done));
    printf("\"victim_players_median_p50_ms\":%.1f,\"victim_players_median_max_ms\":%.1f,",
           median_ms(vmed, done), max_ms(vmed, done));
    printf("\"others_worst_max_ms\":%.1f,\"restart_worst_max_ms\":%.1f,\"levels\":%ld,"
           "\"violations\":%d,\"errors\":%d,",
           (double)others_worst / 1000.0, (double)restart_worst / 1000.0, levels, violations,
           errors);
    /* Deaths the gate saw: one a kill, any more a node declared dead while it lived (its
     * lease not renewed in time: the price of a short lease on a busy machine). The
     * gate lives through the whole run and is stopped first, so it sees no stop. */
    char gate_log[512];
    snprintf(gate_log, sizeof gate_log, "%s/%s.1.log", cfg.logs, gate.name);
    int deaths = count_lines(gate_log, "msg=\"node gone: its lease ended\"");
    printf("\"deaths_seen_by_gate\":%d,\"false_deaths\":%d,", deaths,
           deaths > done ? deaths - done : 0);
    printf("\"first_violation\":\"");
    print_json_text(first_violation);
    printf("\",\"first_error\":\"");
    print_json_text(first_error);
    printf("\",\"runs\":[");
    for (int k = 0; k < done; k++) {
        kill_rec *kr = &kills[k];
        char others[24] = "null";
        if (kr->others_worst_ms >= 0)
            snprintf(others, sizeof others, "%.1f", kr->others_worst_ms);
        printf("%s{\"victim\":\"%s\",\"node\":%d,\"coordinator\":%s,\"victim_areas\":%d,"
               "\"victim_players\":%d,\"worst_ms\":%.1f,\"median_ms\":%.1f,"
               "\"victim_players_median_ms\":%.1f,\"others_worst_ms\":%s,"
               "\"first_answer_worst_ms\":%.1f,\"all_answered_ms\":%.1f,"
               "\"restart_worst_ms\":%.1f}",
               k ? "," : "", kr->victim, kr->node_id, kr->coordinator ? "true" : "false", kr->areas,
               kr->affected, kr->worst_ms, kr->median_ms, kr->affected_median_ms, others,
               kr->first_worst_ms, (double)(kr->answered_us - kr->kill_us) / 1000.0,
               kr->restart_worst_ms);
    }
    printf("]}\n");
    for (int i = 0; i < cfg.players; i++) {
        free(players[i].at_us);
        atollc_sync_free(players[i].s);
    }
    redisFree(rc);
    return 0;
}
