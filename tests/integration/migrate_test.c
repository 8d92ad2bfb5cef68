/* migrate_test.c -- running areas moving between the nodes of a real cluster on
 * loopback while players play through a gate (docs/design/migration.md):
 *
 *   - areas moved back and forth between two area nodes every 100 ms while players
 *     keep a window of level-ups in flight: every answer and push in order, none lost
 *     or doubled, nobody disconnected, and the levels committed are the levels answered;
 *   - the admin API and `atoll ctl`: status, areas, players, pins, refusals;
 *   - a drain with --stop under load: the node ends empty and exits 0, players play on;
 *   - scale up: a node that joins under load receives running areas until the loads
 *     are even;
 *   - a move whose target, or whose source, is killed on the way: one owner at the end,
 *     nothing lost;
 *   - a move while the store is down (durable): given up after store.timeout_ms, the
 *     area plays on where it was, and moves once the store is back.
 */
#include "cluster_nodes.h"
#include "game_client.h"
#include "leveler.h"
#include "seqload.h"
#include "test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Settings of every member: levelup pushes to the area with the level in them. */
static const char *const PUSHING[] = {"--set", "quick.broadcast=true", "--set",
                                      "quick.push_level=true", NULL};

static const char *const PUSHING_ADMIN[] = {"--set", "quick.broadcast=true", "--set",
                                            "quick.push_level=true", "--admin", "127.0.0.1:0",
                                            NULL};

/* The other of the two area nodes. */
static int
other_of(int id, int x, int y)
{
    return id == x ? y : x;
}

/* ctl move in a child process (it waits for the move's end); its pid. */
static pid_t
ctl_in_background(const test_node *n, const char *area, const char *to)
{
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        char out[1024];
        int st = ctl(n, out, sizeof out, "move %s %s", area, to);
        if (st != 0 && st != 1) /* neither moved nor refused: what ctl said */
            fprintf(stderr, "  ctl move %s %s: status %d: %s\n", area, to, st, out);
        _exit(st);
    }
    return pid;
}

static int
child_status(pid_t pid)
{
    int st = 0;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void
expect_clean(const seqload_result *r, const char *what)
{
    fprintf(stderr, "  %s: %llu answers, %llu money pushes, %llu area pushes, max %llu ms, "
            "p99 %llu us\n", what, (unsigned long long)r->answers,
            (unsigned long long)r->money_pushes, (unsigned long long)r->area_pushes,
            (unsigned long long)r->max_us / 1000,
            (unsigned long long)seqload_quantile(r->hist, 0.99));
    if (r->bad[0] != '\0')
        fprintf(stderr, "  first problem: %s\n", r->bad);
    ASSERT_EQ(r->bad[0], '\0');
    ASSERT_EQ(r->closed, 0);
    ASSERT_EQ(r->money_pushes + r->push_gaps, r->answers);
}

TEST(areas_move_back_and_forth_while_players_play)
{
    cluster c;
    test_node a1, a2, g;
    cluster_up(&c);
    start_member(&a1, &c, "area,coordinator", "a1", PUSHING_ADMIN);
    start_member(&a2, &c, "area,coordinator", "a2", PUSHING);
    start_member(&g, &c, "gate", "g1", PUSHING);
    int id1 = node_id_of(&a1), id2 = node_id_of(&a2);
    seqload *s = seqload_start("127.0.0.1", g.port, 200, 4, "mv");
    ASSERT(s != NULL);
    /* Every 100 ms the next area (of 8) is moved to the other node, each move by a
     * `ctl move` of its own, so that a slow move (a sanitizer build) does not slow the
     * others down: each area moves every 800 ms. For 30 s and at least 200 moves asked;
     * a sanitizer build (make check runs the suite under two) for 15 s and 100 moves,
     * which it asks more slowly on a busy machine; at most 60 s. */
    const char *sanitized = getenv("ATOLL_SANITIZED");
    bool fast = sanitized == NULL || strcmp(sanitized, "1") != 0;
    uint64_t seconds = fast ? 30 : 15;
    int enough = fast ? 200 : 100;
    uint64_t start = gc_now_us(), end = start + seconds * 1000000ull,
             cap = start + 60 * 1000000ull;
    int moves = 0, refused = 0, asked = 0;
    pid_t movers[8] = {0};
    for (int i = 0; (gc_now_us() < end || asked < enough) && gc_now_us() < cap; i++) {
        int k = i % 8;
        if (movers[k] != 0) {
            int st = child_status(movers[k]); /* its area's previous move */
            moves += st == 0;
            refused += st == 1;
            ASSERT(st == 0 || st == 1);
            movers[k] = 0;
        }
        char area[16];
        snprintf(area, sizeof area, "area-%d", k + 1);
        int from = owner_of(&c, area);
        if (from != 0) {
            char to[16];
            snprintf(to, sizeof to, "%d", other_of(from, id1, id2));
            movers[k] = ctl_in_background(&a1, area, to);
            asked++;
        }
        usleep(100 * 1000);
    }
    for (int k = 0; k < 8; k++) {
        if (movers[k] != 0) {
            int st = child_status(movers[k]);
            moves += st == 0;
            refused += st == 1;
        }
    }
    seqload_result r;
    seqload_stop(s, &r);
    fprintf(stderr, "  %d moves asked in %.1f s, %d done, %d refused (the area was not still)\n",
            asked, (double)(gc_now_us() - start) / 1e6, moves, refused);
    expect_clean(&r, "200 players");
    ASSERT(asked >= enough);
    ASSERT(moves >= asked / 2);
    ASSERT(r.answers > 2000); /* ten each at least (a ThreadSanitizer build is slow) */
    ASSERT(node_log_contains(&a1, "area moved"));
    ASSERT(node_log_contains(&a2, "area moved"));
    /* The pause in its parts, for an operator to see which one was slow. */
    ASSERT(node_log_contains(&a1, "snapshot_us="));
    ASSERT(node_log_contains(&a1, "flush_us="));
    ASSERT(node_log_contains(&a1, "remote_us="));
    three_down(&c, &a1, &a2, &g);
}

/* An area of the quick game that `node` owns and that has players (0 when none). */
static int
area_on(cluster *c, int node, char *area, size_t len)
{
    for (int i = 1; i <= 8; i++) {
        snprintf(area, len, "area-%d", i);
        if (owner_of(c, area) == node)
            return i;
    }
    return 0;
}

/* Sends one raw HTTP request to the admin API; the status line's code. */
static int
raw_http(int port, const char *request)
{
    int fd = raw_connect(port);
    ASSERT(fd >= 0);
    ASSERT(raw_send(fd, request, strlen(request)));
    char buf[512] = "";
    raw_recv(fd, buf, sizeof buf - 1, 3000);
    close(fd);
    int code = 0;
    sscanf(buf, "HTTP/1.%*d %d", &code);
    return code;
}

TEST(the_admin_api_tells_moves_pins_and_refuses)
{
    cluster c;
    test_node a1, a2, g;
    cluster_up(&c);
    const char *no_rebalance[] = {"--admin", "127.0.0.1:0", "--set", "cluster.rebalance_start=0",
                                  NULL};
    start_member(&a1, &c, "area,coordinator", "a1", no_rebalance);
    start_member(&a2, &c, "area,coordinator", "a2", no_rebalance + 2);
    start_member(&g, &c, "gate", "g1", NULL);
    int id1 = node_id_of(&a1), id2 = node_id_of(&a2);
    seqload *s = seqload_start("127.0.0.1", g.port, 24, 1, "adm");
    ASSERT(s != NULL);
    usleep(1200 * 1000); /* the areas' stats are published every second */
    static char out[65536];
    ASSERT_EQ(ctl(&a1, out, sizeof out, "status"), 0);
    ASSERT(strstr(out, "\"name\":\"a1\"") && strstr(out, "\"name\":\"a2\"") &&
           strstr(out, "\"name\":\"g1\"") && strstr(out, "\"coordinator\":\"a"));
    ASSERT_EQ(ctl(&a1, out, sizeof out, "areas"), 0);
    for (int i = 1; i <= 8; i++) {
        char want[32];
        snprintf(want, sizeof want, "\"id\":\"area-%d\"", i);
        ASSERT(strstr(out, want) != NULL);
    }
    char area[16];
    ASSERT(area_on(&c, id1, area, sizeof area) > 0);
    ASSERT_EQ(ctl(&a1, out, sizeof out, "players %s", area), 0);
    ASSERT(strstr(out, "\"uid\":\"adm") != NULL);
    /* And of an area on the other node, asked of this one: its owner answers over the
     * link (the ask names no target node). */
    char remote[16];
    ASSERT(area_on(&c, id2, remote, sizeof remote) > 0);
    ASSERT_EQ(ctl(&a1, out, sizeof out, "players %s", remote), 0);
    ASSERT(strstr(out, "\"uid\":\"adm") != NULL && strstr(out, "\"node\":\"a2\"") != NULL);
    /* Refusals, each with its reason and exit status 1. */
    ASSERT_EQ(ctl(&a1, out, sizeof out, "move %s nosuchnode", area), 1);
    ASSERT(strstr(out, "no live area node") != NULL);
    ASSERT_EQ(ctl(&a1, out, sizeof out, "move %s g1", area), 1); /* a gate runs no area */
    ASSERT_EQ(ctl(&a1, out, sizeof out, "move no-such-area a2"), 1);
    ASSERT(strstr(out, "no such area") != NULL);
    ASSERT_EQ(ctl(&a1, out, sizeof out, "move %s a1", area), 1);
    ASSERT(strstr(out, "runs on that node already") != NULL);
    ASSERT_EQ(raw_http(a1.admin_port, "POST /v1/areas/area-1/move HTTP/1.1\r\nHost: x\r\n"
                                      "Content-Length: 5\r\n\r\n{bad}"), 400);
    ASSERT_EQ(raw_http(a1.admin_port, "GET /v1/nothing HTTP/1.1\r\nHost: x\r\n\r\n"), 404);
    /* A pin moves the area there and keeps it: a move elsewhere is refused until unpinned. */
    ASSERT_EQ(ctl(&a1, out, sizeof out, "pin %s a2", area), 0);
    for (int i = 0; i < 50 && owner_of(&c, area) != id2; i++)
        usleep(100 * 1000);
    ASSERT_EQ(owner_of(&c, area), id2);
    ASSERT_EQ(ctl(&a1, out, sizeof out, "move %s a1", area), 1);
    ASSERT(strstr(out, "pinned") != NULL);
    ASSERT_EQ(ctl(&a1, out, sizeof out, "areas"), 0);
    ASSERT(strstr(out, "\"pinned\":\"a2\"") != NULL);
    ASSERT_EQ(ctl(&a1, out, sizeof out, "unpin %s", area), 0);
    ASSERT_EQ(ctl(&a1, out, sizeof out, "move %s %d", area, id1), 0);
    ASSERT_EQ(owner_of(&c, area), id1);
    /* The answer names both nodes. */
    if (strstr(out, "\"from\":\"a2\"") == NULL || strstr(out, "\"to\":\"a1\"") == NULL)
        fprintf(stderr, "  the move said: %s\n", out);
    ASSERT(strstr(out, "\"from\":\"a2\"") != NULL && strstr(out, "\"to\":\"a1\"") != NULL);
    /* Counted where it happened: the one move into a1 (the pin moved the area out of
     * a1, or found it on a2 already), and the requests a1's areas ran. */
    ASSERT_EQ(ctl(&a1, out, sizeof out, "metrics"), 0);
    ASSERT(strstr(out, "atoll_moves_in_total{node=\"a1\"} 1\n") != NULL);
    ASSERT(strstr(out, "atoll_moves_failed_total{node=\"a1\"} 0\n") != NULL);
    /* The pin's move out of a1 began and ended out; none lost. */
    ASSERT(strstr(out, "atoll_moves_started_total{node=\"a1\"} 1\n") != NULL);
    ASSERT(strstr(out, "atoll_moves_out_total{node=\"a1\"} 1\n") != NULL);
    ASSERT(strstr(out, "atoll_moves_lost_total{node=\"a1\"} 0\n") != NULL);
    ASSERT(strstr(out, "atoll_requests_total{node=\"a1\",route=\"area.levelup\"} ") != NULL);
    /* Its links, one by one: to the other area node and to the gate, both up. */
    ASSERT(strstr(out, "atoll_peer_link_up{node=\"a1\",peer=\"a2\"} 1\n") != NULL);
    ASSERT(strstr(out, "atoll_peer_link_up{node=\"a1\",peer=\"g1\"} 1\n") != NULL);
    ASSERT(strstr(out, "atoll_peer_link_queued_bytes{node=\"a1\",peer=\"a2\"} ") != NULL);
    seqload_result r;
    seqload_stop(s, &r);
    expect_clean(&r, "24 players");
    three_down(&c, &a1, &a2, &g);
}

TEST(a_drained_node_ends_empty_and_stops)
{
    cluster c;
    test_node a1, a2, a3, g;
    cluster_up(&c);
    const char *admin[] = {"--admin", "127.0.0.1:0", "--set", "cluster.rebalance_start=0",
                           "--set", "quick.broadcast=true", "--set", "quick.push_level=true", NULL};
    start_member(&a1, &c, "area,coordinator", "a1", admin);
    start_member(&a2, &c, "area,coordinator", "a2", admin + 2);
    start_member(&a3, &c, "area", "a3", admin + 2);
    start_member(&g, &c, "gate", "g1", admin + 4);
    int id3 = node_id_of(&a3);
    seqload *s = seqload_start("127.0.0.1", g.port, 100, 2, "dr");
    ASSERT(s != NULL);
    char area[16], out[4096];
    if (area_on(&c, id3, area, sizeof area) == 0) /* placement gave it none: one is moved there */
        ASSERT_EQ(ctl(&a1, out, sizeof out, "move area-1 a3"), 0);
    ASSERT(areas_of(&c, id3) > 0);
    usleep(500 * 1000);
    uint64_t t0 = gc_now_us();
    ASSERT_EQ(ctl(&a1, out, sizeof out, "drain a3 --stop --wait"), 0);
    fprintf(stderr, "  drained in %.0f ms\n", (gc_now_us() - t0) / 1000.0);
    ASSERT_EQ(node_wait_exit(&a3, 10000), 0); /* a clean stop */
    ASSERT_EQ(areas_of(&c, id3), 0);
    ASSERT(node_log_contains(&a3, "drained: every area moved away, stopping"));
    ASSERT_EQ(ctl(&a1, out, sizeof out, "drain-status a3"), 0);
    ASSERT(strstr(out, "\"state\":\"stopped\"") != NULL);
    ASSERT_EQ(ctl(&a1, out, sizeof out, "drain a3"), 1); /* gone: not drained again */
    usleep(500 * 1000);
    seqload_result r;
    seqload_stop(s, &r);
    expect_clean(&r, "100 players");
    node_remove_log(&a3);
    three_down(&c, &a1, &a2, &g);
}

TEST(a_node_that_joins_receives_areas_until_loads_are_even)
{
    cluster c;
    test_node a1, a2, g;
    cluster_up(&c);
    start_member(&a1, &c, "area,coordinator", "a1", PUSHING_ADMIN);
    start_member(&g, &c, "gate", "g1", PUSHING);
    int id1 = node_id_of(&a1);
    seqload *s = seqload_start("127.0.0.1", g.port, 160, 4, "up");
    ASSERT(s != NULL);
    usleep(1500 * 1000);
    ASSERT_EQ(areas_of(&c, id1), 8);
    start_member(&a2, &c, "area", "a2", PUSHING);
    int id2 = node_id_of(&a2);
    /* The coordinator moves areas onto it until the loads differ by less than
     * cluster.rebalance_stop; then it stops moving them. */
    uint64_t until = gc_now_us() + 30 * 1000000ull;
    while (gc_now_us() < until && areas_of(&c, id2) < 3)
        usleep(200 * 1000);
    /* Settled: no move for 5 s (a step waits 2.6 s for the loads to be measured again). */
    int moves = node_log_count(&a1, "rebalance: moving an area");
    uint64_t quiet_since = gc_now_us();
    until = gc_now_us() + 40 * 1000000ull;
    while (gc_now_us() < until && gc_now_us() - quiet_since < 5 * 1000000ull) {
        usleep(250 * 1000);
        int now = node_log_count(&a1, "rebalance: moving an area");
        if (now != moves)
            moves = now, quiet_since = gc_now_us();
    }
    ASSERT(gc_now_us() - quiet_since >= 5 * 1000000ull);
    int got = areas_of(&c, id2);
    fprintf(stderr, "  the new node runs %d of 8 areas after %d moves\n", got, moves);
    /* A real share, not all: which areas make the loads even depends on the loads read
     * (a ThreadSanitizer build under load reads them wide apart, and may move one back);
     * that they are even is checked below. */
    ASSERT(got >= 2 && got <= 6);
    ASSERT_EQ(areas_of(&c, id1) + areas_of(&c, id2), 8);
    ASSERT(moves >= 3);
    /* Even now, by the coordinator's own rule: the loads differ by less than the share
     * that starts a rebalance (cluster.rebalance_start, 0.5), or by less than
     * cluster.rebalance_min_load (0.25), below which loads are noise. Each is measured
     * over a heartbeat on a shared machine: at least three of five readings. */
    static char out[8192];
    int even = 0;
    for (int k = 0; k < 5; k++) {
        ASSERT_EQ(ctl(&a1, out, sizeof out, "status"), 0);
        atoll_value *st = atoll_parse(out, strlen(out), NULL, 0);
        ASSERT(st != NULL);
        double load[2] = {0, 0};
        atoll_value *nodes = atoll_get(st, "nodes");
        for (size_t i = 0; i < atoll_len(nodes); i++) {
            atoll_value *nd = atoll_at(nodes, i);
            int id = (int)atoll_get_int(nd, "id", 0);
            if (id == id1 || id == id2)
                load[id == id2] = atoll_as_real(atoll_get(nd, "load"), 0);
        }
        atoll_unref(st);
        ASSERT(load[0] > 0 && load[1] > 0);
        double spread = load[0] > load[1] ? load[0] - load[1] : load[1] - load[0];
        double share = spread / ((load[0] + load[1]) / 2);
        bool is_even = spread < 0.25 || share < 0.5;
        even += is_even;
        fprintf(stderr, "  loads: %.2f and %.2f%s\n", load[0], load[1], is_even ? "" : " (apart)");
        usleep(400 * 1000);
    }
    ASSERT(even >= 3);
    /* And it stays so: at most one more step in 3 s (a sanitizer build's measurements
     * wobble more than the hysteresis on a loaded machine: two moves at most), and
     * areas on both nodes. */
    usleep(3000 * 1000);
    ASSERT(node_log_count(&a1, "rebalance: moving an area") <= moves + 2);
    got = areas_of(&c, id2);
    ASSERT(got >= 2 && got <= 6);
    seqload_result r;
    seqload_stop(s, &r);
    expect_clean(&r, "160 players");
    three_down(&c, &a1, &a2, &g);
}

TEST(a_move_whose_target_dies_leaves_the_area_where_it_was)
{
    cluster c;
    test_node a1, a2, g;
    cluster_up(&c);
    const char *fast[] = {"--set", "cluster.call_timeout_ms=1000", "--set",
                          "cluster.rebalance_start=0", "--set", "quick.broadcast=true", "--set",
                          "quick.push_level=true", "--admin", "127.0.0.1:0", NULL};
    start_member(&a1, &c, "area,coordinator", "a1", fast);
    start_member(&a2, &c, "area,coordinator", "a2", fast);
    fast[8] = NULL;
    start_member(&g, &c, "gate", "g1", fast);
    int id1 = node_id_of(&a1);
    seqload *s = seqload_start("127.0.0.1", g.port, 48, 2, "td");
    ASSERT(s != NULL);
    seqload_allow_push_gaps(s); /* a2 dies, and its areas fail over */
    char area[16];
    ASSERT(area_on(&c, id1, area, sizeof area) > 0);
    uint64_t epoch_before = 0;
    char e[32] = "";
    redis_exec(&c.redis, e, sizeof e, "HGET atoll:area:%s epoch", area);
    epoch_before = strtoull(e, NULL, 10);
    ASSERT_EQ(kill(a2.pid, SIGSTOP), 0); /* the snapshot will reach a node that reads nothing */
    pid_t mover = ctl_in_background(&a1, area, "a2");
    usleep(300 * 1000);
    node_kill(&a2);
    int rc = child_status(mover);
    ASSERT_EQ(rc, 1); /* not moved: the new node did not take it */
    /* One owner: the old one, which took it back with a newer epoch. */
    ASSERT_EQ(owner_of(&c, area), id1);
    redis_exec(&c.redis, e, sizeof e, "HGET atoll:area:%s epoch", area);
    ASSERT(strtoull(e, NULL, 10) > epoch_before);
    ASSERT(node_log_contains(&a1, "area not moved, it runs here"));
    usleep(2500 * 1000); /* a2's other areas come back on a1 */
    seqload_result r;
    seqload_stop(s, &r);
    expect_clean(&r, "48 players");
    ASSERT(r.push_gaps <= (uint64_t)node_log_count(&a1, "answered from its record"));
    ASSERT_EQ(areas_of(&c, id1), 8);
    node_remove_log(&a2);
    node_stop(&g);
    node_stop(&a1);
    cluster_down(&c);
}

TEST(a_move_whose_source_dies_lands_on_its_target)
{
    cluster c;
    test_node a1, a2, g;
    cluster_up(&c);
    const char *opts[] = {"--set", "cluster.rebalance_start=0", "--set", "quick.broadcast=true",
                          "--set", "quick.push_level=true", "--admin", "127.0.0.1:0", NULL};
    start_member(&a1, &c, "area,coordinator", "a1", opts);
    start_member(&a2, &c, "area,coordinator", "a2", opts);
    start_member(&g, &c, "gate", "g1", opts); /* the admin API of the gate, which lives */
    int id1 = node_id_of(&a1), id2 = node_id_of(&a2);
    seqload *s = seqload_start("127.0.0.1", g.port, 48, 2, "sd");
    ASSERT(s != NULL);
    seqload_allow_push_gaps(s); /* a1 dies: see below */
    char area[16];
    ASSERT(area_on(&c, id1, area, sizeof area) > 0);
    ASSERT_EQ(kill(a2.pid, SIGSTOP), 0); /* the snapshot waits in its socket */
    pid_t mover = ctl_in_background(&g, area, "a2");
    /* The snapshot leaves once the area is still and its documents are committed (slow
     * under a sanitizer); then a moment for the link to write it. */
    uint64_t until = gc_now_us() + 20 * 1000000ull;
    while (gc_now_us() < until && !node_log_contains(&a1, "area shipped"))
        usleep(50 * 1000);
    ASSERT(node_log_contains(&a1, "area shipped"));
    usleep(300 * 1000);
    node_kill(&a1); /* the source dies with the area frozen and the snapshot sent */
    ASSERT_EQ(kill(a2.pid, SIGCONT), 0);
    child_status(mover); /* whatever it heard: the node that answered it died */
    /* The target's flip won before the coordinator could take a1's areas: it runs the
     * area with the snapshot's state; the others come back from the store. */
    until = gc_now_us() + 5000000;
    while (gc_now_us() < until && areas_of(&c, id2) < 8)
        usleep(100 * 1000);
    ASSERT_EQ(owner_of(&c, area), id2);
    ASSERT(node_log_contains(&a2, "area arrived"));
    usleep(1000 * 1000);
    seqload_result r;
    seqload_stop(s, &r);
    /* The requests lost with a1 were sent again and ran once each. Those a1 had run
     * and whose answers died with it are answered from their record, without their
     * pushes: the only pushes missing. */
    expect_clean(&r, "48 players");
    int replays = node_log_count(&a2, "answered from its record");
    fprintf(stderr, "  answered from their record: %d, answers without their push: %llu\n",
            replays, (unsigned long long)r.push_gaps);
    ASSERT(r.push_gaps <= (uint64_t)replays);
    ASSERT_EQ(areas_of(&c, id2), 8);
    node_remove_log(&a1);
    node_stop(&g);
    node_stop(&a2);
    cluster_down(&c);
}

/* Moves area id to the other of the two area nodes and waits for the move's answer. */
static void
move_to_other(cluster *c, const test_node *admin, const char *id, int x, int y)
{
    char out[512];
    int from = owner_of(c, id);
    ASSERT(from != 0);
    int rc = ctl(admin, out, sizeof out, "move %s %d", id, other_of(from, x, y));
    if (rc != 0)
        fprintf(stderr, "  move of %s: %s\n", id, out);
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(owner_of(c, id), other_of(from, x, y));
}

TEST(an_area_moves_whole_with_its_timers_tick_calls_commands_and_c_state)
{
    cluster c;
    test_node a1, a2, g;
    cluster_up(&c);
    const char *opts[] = {"--set", "cluster.rebalance_start=0", "--admin", "127.0.0.1:0", NULL};
    start_testgame_member(&a1, &c, "area,coordinator", "a1", opts);
    start_testgame_member(&a2, &c, "area,coordinator", "a2", opts);
    start_testgame_member(&g, &c, "gate", "g1", opts);
    int id1 = node_id_of(&a1), id2 = node_id_of(&a2);
    const char *mv[] = {"area", "mv-1", "type", "mv", NULL};
    atollc_sync *p = ENTER_WITH(&g, "mover", mv, NULL);
    usleep(300 * 1000); /* some ticks */
    /* A timer of 1.5 s, a call answered in 1 s, and commands queued for the next tick. */
    EXPECT_REPLY(p, "mv.arm", "{\"ms\":1500}", "{\"code\":200}");
    EXPECT_REPLY(p, "mv.callslow", "{\"to\":\"t-1\",\"ms\":1000}", "{\"code\":200}");
    atoll_value *before = REQUEST_VALUE(p, "mv.info", "{}");
    ASSERT(atollc_sync_notify(p, "mv.cmd", "{}") == ATOLLC_OK);
    ASSERT(atollc_sync_notify(p, "mv.cmd", "{}") == ATOLLC_OK);
    move_to_other(&c, &a1, "mv-1", id1, id2);
    atoll_value *after = REQUEST_VALUE(p, "mv.info", "{}");
    /* The C state came back through the hooks; the tick went on from where it was. */
    ASSERT_EQ(jint(before, "moved_in"), 0);
    ASSERT_EQ(jint(after, "moved_in"), 1);
    ASSERT_EQ(jint(after, "state.moves_out"), 1);
    ASSERT(jint(after, "state.ticks") >= jint(before, "state.ticks"));
    ASSERT(jint(after, "state.armed_at") == jint(before, "state.armed_at"));
    usleep(2000 * 1000);
    atoll_value *later = REQUEST_VALUE(p, "mv.info", "{}");
    /* The commands ran at a tick on the new node; the timer fired there once, 1.5 s after
     * it was armed (not 1.5 s after the move), with its udata found in the game's static
     * data; the call's answer came to the new node. */
    ASSERT_EQ(jint(later, "state.cmds"), 2);
    int64_t late = jint(later, "state.fired_at") - jint(later, "state.armed_at");
    fprintf(stderr, "  timer of 1500 ms fired after %lld ms\n", (long long)late);
    ASSERT(late >= 1500 && late < 1900);
    ASSERT(strcmp(jstr(later, "state.fired_tag"), "same") == 0);
    ASSERT_EQ(jint(later, "state.call_status"), 0);
    ASSERT(strcmp(jstr(later, "state.call_tag"), "same") == 0);
    ASSERT(jint(later, "state.ticks") > jint(after, "state.ticks"));
    atoll_unref(before);
    atoll_unref(after);
    atoll_unref(later);
    /* And back: the counters go on. */
    move_to_other(&c, &a1, "mv-1", id1, id2);
    atoll_value *back = REQUEST_VALUE(p, "mv.info", "{}");
    ASSERT_EQ(jint(back, "moved_in"), 2);
    ASSERT_EQ(jint(back, "state.moves_out"), 2);
    atoll_unref(back);
    /* on_move_out refusing: the area stays, runs on, and on_move_in rebuilt its state. */
    EXPECT_REPLY(p, "mv.set", "{\"refuse_move\":true}", "{\"code\":200}");
    char out[512];
    int from = owner_of(&c, "mv-1");
    ASSERT_EQ(ctl(&a1, out, sizeof out, "move mv-1 %d", other_of(from, id1, id2)), 1);
    ASSERT(strstr(out, "on_move_out refused") != NULL);
    ASSERT_EQ(owner_of(&c, "mv-1"), from);
    atoll_value *stayed = REQUEST_VALUE(p, "mv.info", "{}");
    ASSERT_EQ(jint(stayed, "moved_in"), 2); /* its C state untouched, no hook after it */
    ASSERT_EQ(jint(stayed, "state.moves_out"), 2);
    atoll_unref(stayed);
    EXPECT_REPLY(p, "mv.cmd", "{}", "{\"code\":200,\"cmds\":3}");
    atollc_sync_free(p);
    /* C state without the hooks: never moved, said so. */
    const char *nomv[] = {"area", "nomv-1", "type", "nomv", NULL};
    atollc_sync *q = ENTER_WITH(&g, "stayer", nomv, NULL);
    from = owner_of(&c, "nomv-1");
    ASSERT_EQ(ctl(&a1, out, sizeof out, "move nomv-1 %d", other_of(from, id1, id2)), 1);
    ASSERT(strstr(out, "udata") != NULL);
    ASSERT_EQ(owner_of(&c, "nomv-1"), from);
    atollc_sync_free(q);
    three_down(&c, &a1, &a2, &g);
}

TEST(a_drain_waits_for_the_areas_that_end_on_their_own)
{
    cluster c;
    test_node a1, a2, g;
    cluster_up(&c);
    const char *opts[] = {"--set", "cluster.rebalance_start=0", "--admin", "127.0.0.1:0", NULL};
    /* a2 first, alone: the instance is placed there (an instance cannot be moved). */
    start_testgame_member(&a2, &c, "area,coordinator", "a2", opts);
    start_testgame_member(&g, &c, "gate", "g1", opts);
    int id2 = node_id_of(&a2);
    char out[2048];
    const char *inst[] = {"area", "inst-1", "type", "inst", NULL};
    atollc_sync *p = ENTER_WITH(&g, "player1", inst, NULL);
    ASSERT_EQ(owner_of(&c, "inst-1"), id2);
    start_testgame_member(&a1, &c, "area,coordinator", "a1", opts);
    usleep(500 * 1000);
    ASSERT_EQ(ctl(&a1, out, sizeof out, "move inst-1 a1"), 1);
    ASSERT(strstr(out, "drain_waits") != NULL);
    ASSERT_EQ(ctl(&a1, out, sizeof out, "drain a2 --stop"), 0);
    usleep(1500 * 1000);
    /* It waits for inst-1: listed, the node alive, and no new player may enter it. */
    ASSERT_EQ(ctl(&a1, out, sizeof out, "drain-status a2"), 0);
    ASSERT(strstr(out, "\"waiting\":[\"inst-1\"]") != NULL);
    ASSERT(strstr(out, "\"state\":\"draining\"") != NULL);
    ASSERT_EQ(owner_of(&c, "inst-1"), id2);
    atollc_sync *late = ENTER_WITH(&g, "player2", inst, "{\"code\":500*");
    atollc_sync_free(late);
    EXPECT_REPLY(p, "inst.info", "{}", "{\"code\":200*"); /* its player plays on */
    /* The game ends it: the drain ends, the node stops by itself. */
    EXPECT_REPLY(p, "inst.end", "{}", "{\"code\":200}");
    ASSERT_EQ(node_wait_exit(&a2, 10000), 0);
    atollc_sync_free(p);
    node_remove_log(&a2);
    node_stop(&g);
    node_stop(&a1);
    cluster_down(&c);
}

/* In durable mode a move ships nothing the store has not committed. With the store
 * down that commit never comes: the move is given up after store.timeout_ms and the
 * area runs on where it was (not frozen until the store is back), and it moves once the
 * store is back, with every level answered. */
TEST(a_move_while_the_store_is_down_gives_up_and_the_area_plays_on)
{
    cluster c;
    test_node a1, a2, g;
    cluster_up(&c);
    const char *args[] = {"--set", "quick.areas=1", "--set", "store.timeout_ms=1500", "--set",
                          "cluster.rebalance_start=0", "--admin", "127.0.0.1:0", NULL};
    start_member(&a1, &c, "area,coordinator", "a1", args);
    start_member(&a2, &c, "area,coordinator", "a2", args);
    args[6] = NULL;
    start_member(&g, &c, "gate", "g1", args);
    int id1 = node_id_of(&a1), id2 = node_id_of(&a2);
    outage_player p = {.s = ENTER(&g, "outage-1")};
    int home = owner_of(&c, "area-1");
    ASSERT(home == id1 || home == id2);
    const char *away = home == id1 ? "a2" : "a1";
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, outage_play, &p), 0);
    usleep(500 * 1000);
    ASSERT(atomic_load(&p.answered) > 0);
    pg_down(&c.pg);
    usleep(200 * 1000); /* a level-up's write waits for the store now */
    static char out[4096];
    uint64_t t0 = gc_now_us();
    ASSERT_EQ(ctl(&a1, out, sizeof out, "move area-1 %s", away), 1);
    uint64_t took_ms = (gc_now_us() - t0) / 1000;
    fprintf(stderr, "  the move gave up after %llu ms: %s\n", (unsigned long long)took_ms, out);
    ASSERT(strstr(out, "store.timeout_ms") != NULL);
    /* Given up after store.timeout_ms (1.5 s), not at the outage's end. Its answer goes
     * out in order behind the node's output that waits for the store (a request's 500
     * at its own timeout), which can add as much again. */
    ASSERT(took_ms >= 1400 && took_ms < 8000);
    ASSERT_EQ(owner_of(&c, "area-1"), home);
    int answered = atomic_load(&p.answered), refused = atomic_load(&p.refused);
    ASSERT(pg_up(&c.pg));
    /* The writer tries again with a pause that doubled through the outage (3.2 s after
     * 3 s of it, 6.4 s after 6): it played on once that commit went in. */
    for (int i = 0; i < 150 && atomic_load(&p.answered) <= answered; i++)
        usleep(100 * 1000);
    ASSERT(atomic_load(&p.answered) > answered);
    ASSERT(atomic_load(&p.refused) >= refused);
    ASSERT_EQ(ctl(&a1, out, sizeof out, "move area-1 %s", away), 0);
    ASSERT_EQ(owner_of(&c, "area-1"), home == id1 ? id2 : id1);
    atomic_store(&p.stop, true);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    /* What was answered is there after the move. */
    atoll_value *r = REQUEST_VALUE(p.s, "area.info", "{}");
    ASSERT(jint(r, "level") >= p.last_acked);
    atoll_unref(r);
    fprintf(stderr, "  %d answered, %d refused while the store was down, level %lld\n",
            atomic_load(&p.answered), atomic_load(&p.refused), (long long)p.last_acked);
    atollc_sync_free(p.s);
    three_down(&c, &a1, &a2, &g);
}

TEST_MAIN(areas_move_back_and_forth_while_players_play,
          the_admin_api_tells_moves_pins_and_refuses, a_drained_node_ends_empty_and_stops,
          a_node_that_joins_receives_areas_until_loads_are_even,
          a_move_whose_target_dies_leaves_the_area_where_it_was,
          a_move_whose_source_dies_lands_on_its_target,
          an_area_moves_whole_with_its_timers_tick_calls_commands_and_c_state,
          a_drain_waits_for_the_areas_that_end_on_their_own,
          a_move_while_the_store_is_down_gives_up_and_the_area_plays_on)
