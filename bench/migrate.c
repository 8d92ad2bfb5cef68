/* migrate.c -- atoll-migrate-bench: what moving running areas between nodes costs the
 * players (docs/design/migration.md).
 *
 * It starts its own cluster on loopback with the tests' support code (a private Redis
 * and PostgreSQL, nodes of build/atoll from $ATOLL_BIN, the quick game in durable mode,
 * `atoll ctl` for the moves) and players on one thread of its own (tests/support/
 * seqload.c), each keeping requests in flight and checking every answer and push for
 * order: a benchmark whose players lose, double or reorder anything fails (exit status
 * 1) instead of printing numbers.
 *
 *   pause    for areas of 10, 100 and 1000 players (one area, one request in flight
 *            each): the players' latency with nothing moving (its median), then 20
 *            moves of the area between two area nodes, 600 ms apart. For each move and
 *            each player, the longest wait for an answer in the window of the move minus
 *            the quiet median: the extra latency the move cost that player. Reported:
 *            p50, p99 and max over all (move, player) pairs, the worst player's of each
 *            move, and the pause the old owner measured (freeze to release). The same
 *            for 10 control windows (a `ctl status` instead of a move): what a window
 *            costs players on this machine without any move.
 *   drain    100 areas on one node (placed there before the others start: quick's
 *            hash puts 400 players into nearly all of them), players playing, then `drain NODE --stop --wait`: the time until the node is
 *            gone, and the players' worst wait meanwhile.
 *   rebalance the cluster's throughput (answers a second) while its 8 areas are moved
 *            one after another, each move as soon as the last ended, against the same
 *            load with nothing moving: 4 interleaved windows of 5 s each, medians, and
 *            the ratio.
 *
 * Output: one JSON object on stdout; progress on stderr. Usage:
 *   ATOLL_BIN=build/atoll build/bench/atoll-migrate-bench [--only pause,drain,rebalance]
 * (bench/run.sh --only migrate runs it and prints the table).
 */
#include "cluster_nodes.h"
#include "game_client.h"
#include "seqload.h"
#include "test.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static uint64_t
quantile(uint64_t *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_u64);
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/* The cluster: a1 (area, coordinator, admin), a2 (area, coordinator), a gate; quick with
 * `areas` areas. */
static void
up(cluster *c, test_node *a1, test_node *a2, test_node *g, int areas, bool broadcast)
{
    static char set_areas[48];
    snprintf(set_areas, sizeof set_areas, "quick.areas=%d", areas);
    const char *admin[] = {"--admin", "127.0.0.1:0", "--set", set_areas, "--set",
                           broadcast ? "quick.broadcast=true" : "quick.broadcast=false",
                           "--set", "quick.push_level=true", "--set",
                           "cluster.rebalance_start=0", NULL};
    cluster_up(c);
    start_member(a1, c, "area,coordinator", "a1", admin);
    start_member(a2, c, "area,coordinator", "a2", admin + 2);
    start_member(g, c, "gate", "g1", admin + 2);
}

static void
fail_if_bad(const seqload_result *r, const char *what)
{
    if (r->bad[0] != '\0' || r->closed != 0 || r->money_pushes != r->answers) {
        fprintf(stderr, "migrate-bench: %s: players saw something wrong: %s (closed %llu, "
                "answers %llu, money pushes %llu)\n", what, r->bad,
                (unsigned long long)r->closed, (unsigned long long)r->answers,
                (unsigned long long)r->money_pushes);
        exit(1);
    }
}

/* Moves area to the other area node with ctl; the old owner's pause (ms), or -1. */
static double
move_once(cluster *c, const test_node *admin, const char *area, int x, int y)
{
    char out[512];
    int from = owner_of(c, area);
    int rc = ctl(admin, out, sizeof out, "move %s %d", area, from == x ? y : x);
    if (rc != 0) {
        fprintf(stderr, "migrate-bench: move of %s failed: %s\n", area, out);
        return -1;
    }
    const char *p = strstr(out, "\"pause_ms\":");
    return p ? atof(p + 11) : -1;
}

/* ---- the pause ------------------------------------------------------------------------- */

static void
pause_run(int players, int moves, FILE *json)
{
    cluster c;
    test_node a1, a2, g;
    /* No push to the whole area: a level-up of each of 1000 players pushed to the 1000
     * is a million pushes a second, more than this machine's gate reads (the area node's
     * link to it overruns its cap and is cut, docs/performance.md). Each player's own
     * money push is still checked. */
    up(&c, &a1, &a2, &g, 1, false);
    int id1 = node_id_of(&a1), id2 = node_id_of(&a2);
    char prefix[16];
    snprintf(prefix, sizeof prefix, "p%d-", players);
    seqload *s = seqload_start("127.0.0.1", g.port, players, 1, prefix);
    if (s == NULL) {
        fprintf(stderr, "migrate-bench: %d players could not enter\n", players);
        exit(1);
    }
    uint64_t hist[10001], maxq;
    usleep(2000 * 1000); /* warm up */
    seqload_take_hist(s, hist, &maxq);
    usleep(3000 * 1000);
    seqload_take_hist(s, hist, &maxq);
    uint64_t quiet_p50 = seqload_quantile(hist, 0.5), quiet_p99 = seqload_quantile(hist, 0.99);
    uint64_t *each = calloc((size_t)players, sizeof *each);
    /* Control windows: the same ctl process and wait, asking for the status instead of a
     * move. What players wait in these is what the window costs without a move (a ctl
     * process started on a 2-core machine is not free). */
    uint64_t *ctrl = calloc((size_t)players * 10, sizeof *ctrl);
    size_t nctrl = 0;
    for (int m = 0; m < 10; m++) {
        char out[4096];
        seqload_take_player_max(s, each);
        ctl(&a1, out, sizeof out, "status");
        usleep(300 * 1000);
        seqload_take_player_max(s, each);
        for (int i = 0; i < players; i++)
            ctrl[nctrl++] = each[i] > quiet_p50 ? each[i] - quiet_p50 : 0;
        usleep(300 * 1000);
    }
    uint64_t *extra = calloc((size_t)players * (size_t)moves, sizeof *extra);
    uint64_t *worst = calloc((size_t)moves, sizeof *worst);
    uint64_t *server = calloc((size_t)moves, sizeof *server);
    size_t nextra = 0, nmoves = 0;
    for (int m = 0; m < moves; m++) {
        seqload_take_player_max(s, each);
        double pause_ms = move_once(&c, &a1, "area-1", id1, id2);
        usleep(300 * 1000); /* answers held by the move have come by now */
        seqload_take_player_max(s, each);
        if (pause_ms < 0)
            continue;
        server[nmoves] = (uint64_t)(pause_ms * 1000);
        uint64_t w = 0;
        for (int i = 0; i < players; i++) {
            uint64_t e = each[i] > quiet_p50 ? each[i] - quiet_p50 : 0;
            extra[nextra++] = e;
            if (e > w)
                w = e;
        }
        worst[nmoves++] = w;
        usleep(300 * 1000);
    }
    seqload_result r;
    seqload_stop(s, &r);
    fail_if_bad(&r, "pause");
    fprintf(stderr, "  %d players: %zu moves, extra p50 %.1f ms p99 %.1f ms max %.1f ms "
            "(control windows: p50 %.1f p99 %.1f max %.1f); server pause p50 %.1f ms\n",
            players, nmoves, quantile(extra, nextra, 0.5) / 1e3,
            quantile(extra, nextra, 0.99) / 1e3, quantile(extra, nextra, 1.0) / 1e3,
            quantile(ctrl, nctrl, 0.5) / 1e3, quantile(ctrl, nctrl, 0.99) / 1e3,
            quantile(ctrl, nctrl, 1.0) / 1e3, quantile(server, nmoves, 0.5) / 1e3);
    fprintf(json,
            "{\"players\":%d,\"moves\":%zu,\"quiet_p50_ms\":%.2f,\"quiet_p99_ms\":%.2f,"
            "\"extra_p50_ms\":%.2f,\"extra_p99_ms\":%.2f,\"extra_max_ms\":%.2f,"
            "\"worst_player_p50_ms\":%.2f,\"worst_player_max_ms\":%.2f,"
            "\"server_pause_p50_ms\":%.2f,\"server_pause_p99_ms\":%.2f,"
            "\"server_pause_max_ms\":%.2f,\"control_p50_ms\":%.2f,\"control_p99_ms\":%.2f,"
            "\"control_max_ms\":%.2f,\"answers\":%llu}",
            players, nmoves, quiet_p50 / 1e3, quiet_p99 / 1e3, quantile(extra, nextra, 0.5) / 1e3,
            quantile(extra, nextra, 0.99) / 1e3, quantile(extra, nextra, 1.0) / 1e3,
            quantile(worst, nmoves, 0.5) / 1e3, quantile(worst, nmoves, 1.0) / 1e3,
            quantile(server, nmoves, 0.5) / 1e3, quantile(server, nmoves, 0.99) / 1e3,
            quantile(server, nmoves, 1.0) / 1e3, quantile(ctrl, nctrl, 0.5) / 1e3,
            quantile(ctrl, nctrl, 0.99) / 1e3, quantile(ctrl, nctrl, 1.0) / 1e3,
            (unsigned long long)r.answers);
    free(each);
    free(ctrl);
    free(extra);
    free(worst);
    free(server);
    three_down(&c, &a1, &a2, &g);
}

/* ---- the drain --------------------------------------------------------------------------- */

static void
drain_run(FILE *json)
{
    cluster c;
    test_node a1, a2, a3, g;
    cluster_up(&c);
    const char *opts[] = {"--admin", "127.0.0.1:0", "--set", "quick.areas=100", "--set",
                          "quick.broadcast=true", "--set", "quick.push_level=true", "--set",
                          "cluster.rebalance_start=0", NULL};
    /* a3 alone first: the 100 areas are created there as the players enter. */
    start_member(&a3, &c, "area,coordinator", "a3", opts + 2);
    start_member(&g, &c, "gate", "g1", opts + 2);
    seqload *s = seqload_start("127.0.0.1", g.port, 400, 1, "dr");
    if (s == NULL)
        exit(1);
    int id3 = node_id_of(&a3);
    start_member(&a1, &c, "area,coordinator", "a1", opts);
    start_member(&a2, &c, "area,coordinator", "a2", opts + 2);
    int on3 = 0;
    for (int i = 1; i <= 100; i++) {
        char area[16];
        snprintf(area, sizeof area, "area-%d", i);
        on3 += owner_of(&c, area) == id3;
    }
    usleep(2000 * 1000);
    uint64_t hist[10001], maxq;
    seqload_take_hist(s, hist, &maxq);
    char out[1024];
    uint64_t t0 = gc_now_us();
    int rc = ctl(&a1, out, sizeof out, "drain a3 --stop --wait");
    uint64_t drained = gc_now_us();
    int st = node_wait_exit(&a3, 20000);
    uint64_t exited = gc_now_us();
    seqload_take_hist(s, hist, &maxq);
    seqload_result r;
    seqload_stop(s, &r);
    fail_if_bad(&r, "drain");
    if (rc != 0 || st != 0) {
        fprintf(stderr, "migrate-bench: the drain failed (ctl %d, exit %d): %s\n", rc, st, out);
        exit(1);
    }
    fprintf(stderr, "  drain of %d areas: %.0f ms (node gone after %.0f ms), players' worst "
            "wait %.0f ms\n", on3, (drained - t0) / 1e3, (exited - t0) / 1e3, maxq / 1e3);
    fprintf(json, "{\"areas\":%d,\"players\":400,\"drain_ms\":%.0f,\"exit_ms\":%.0f,"
            "\"worst_wait_ms\":%.1f,\"p99_wait_ms\":%.1f}", on3, (drained - t0) / 1e3,
            (exited - t0) / 1e3, maxq / 1e3, seqload_quantile(hist, 0.99) / 1e3);
    node_remove_log(&a3);
    node_stop(&g);
    node_stop(&a2);
    node_stop(&a1);
    cluster_down(&c);
}

/* ---- throughput while areas move ----------------------------------------------------------- */

typedef struct mover {
    cluster *c;
    const test_node *admin;
    int x, y;
    volatile int run;
    int moves;
    pthread_t thread;
} mover;

static void *
keep_moving(void *arg)
{
    mover *m = arg;
    for (int i = 0; m->run; i++) {
        char area[16];
        snprintf(area, sizeof area, "area-%d", i % 8 + 1);
        if (move_once(m->c, m->admin, area, m->x, m->y) >= 0)
            m->moves++;
    }
    return NULL;
}

static void
rebalance_run(FILE *json)
{
    cluster c;
    test_node a1, a2, g;
    up(&c, &a1, &a2, &g, 8, true);
    seqload *s = seqload_start("127.0.0.1", g.port, 200, 4, "rb");
    if (s == NULL)
        exit(1);
    usleep(3000 * 1000);
    double quiet[4], moving[4];
    int moves = 0;
    for (int round = 0; round < 4; round++) {
        uint64_t a = seqload_answers(s), t = gc_now_us();
        usleep(5000 * 1000);
        quiet[round] = (double)(seqload_answers(s) - a) / ((gc_now_us() - t) / 1e6);
        mover m = {&c, &a1, node_id_of(&a1), node_id_of(&a2), 1, 0, 0};
        pthread_create(&m.thread, NULL, keep_moving, &m);
        a = seqload_answers(s);
        t = gc_now_us();
        usleep(5000 * 1000);
        moving[round] = (double)(seqload_answers(s) - a) / ((gc_now_us() - t) / 1e6);
        m.run = 0;
        pthread_join(m.thread, NULL);
        moves += m.moves;
        fprintf(stderr, "  round %d: %.0f answers/s quiet, %.0f while moving (%d moves)\n",
                round, quiet[round], moving[round], m.moves);
    }
    seqload_result r;
    seqload_stop(s, &r);
    fail_if_bad(&r, "rebalance");
    uint64_t q[4], mv[4];
    for (int i = 0; i < 4; i++) {
        q[i] = (uint64_t)quiet[i];
        mv[i] = (uint64_t)moving[i];
    }
    uint64_t qm = (quantile(q, 4, 0.34) + quantile(q, 4, 0.67)) / 2;
    uint64_t mm = (quantile(mv, 4, 0.34) + quantile(mv, 4, 0.67)) / 2;
    fprintf(stderr, "  median: %llu quiet, %llu moving: ratio %.3f (%d moves in 20 s)\n",
            (unsigned long long)qm, (unsigned long long)mm, qm ? (double)mm / (double)qm : 0,
            moves);
    fprintf(json, "{\"players\":200,\"window\":4,\"areas\":8,\"quiet_per_s\":%llu,"
            "\"moving_per_s\":%llu,\"ratio\":%.3f,\"moves\":%d,\"seconds_moving\":20}",
            (unsigned long long)qm, (unsigned long long)mm, qm ? (double)mm / (double)qm : 0,
            moves);
    three_down(&c, &a1, &a2, &g);
}

int
main(int argc, char **argv)
{
    const char *only = "pause,drain,rebalance";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf(stderr, "usage: atoll-migrate-bench [--only pause,drain,rebalance]\n");
            return 2;
        }
    }
    if (getenv("ATOLL_BIN") == NULL) {
        fprintf(stderr, "migrate-bench: set ATOLL_BIN to the atoll binary\n");
        return 2;
    }
    FILE *json = stdout;
    fprintf(json, "{");
    const char *sep = "";
    if (strstr(only, "pause") != NULL) {
        fprintf(json, "\"pause\":[");
        static const int sizes[] = {10, 100, 1000};
        for (int i = 0; i < 3; i++) {
            if (i > 0)
                fprintf(json, ",");
            fprintf(stderr, "pause: one area of %d players, 20 moves\n", sizes[i]);
            pause_run(sizes[i], 20, json);
        }
        fprintf(json, "]");
        sep = ",";
    }
    if (strstr(only, "drain") != NULL) {
        fprintf(stderr, "drain: a node with 100 areas under load\n");
        fprintf(json, "%s\"drain\":", sep);
        drain_run(json);
        sep = ",";
    }
    if (strstr(only, "rebalance") != NULL) {
        fprintf(stderr, "rebalance: throughput while areas move\n");
        fprintf(json, "%s\"moving\":", sep);
        rebalance_run(json);
    }
    fprintf(json, "}\n");
    return 0;
}
