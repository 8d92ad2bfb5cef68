/* cluster_test.c -- a cluster of real nodes on loopback: gates, area nodes and
 * coordinators over a Redis and a PostgreSQL of the test's own, players of the quick
 * game playing through a gate in durable mode, each checking that every answer is the
 * level after the last one.
 *
 *   - areas are placed on both area nodes, and requests, answers and pushes cross the
 *     links;
 *   - an area node killed with SIGKILL (the one holding the coordinator's lease): its
 *     areas come back on the other node, no client is disconnected, no level is lost,
 *     skipped or run twice, and new areas are still placed; the time from the kill to
 *     the first answer is printed;
 *   - one of two gates killed: its players resume on the other gate with their state;
 *   - a node with another secret, and bytes that are not a link: refused, and the
 *     cluster plays on.
 */
#include "game_client.h"
#include "harness.h"
#include "leveler.h"
#include "cluster_nodes.h"
#include "pg.h"
#include "redis.h"
#include "test.h"

#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* Each player's level, read again through the gate, is the last one it was answered:
 * it was committed. */
static void
expect_acked_levels(test_node *g, const leveler *ls, int n)
{
    for (int i = 0; i < n; i++) {
        atollc_sync *s = ENTER(g, ls[i].uid);
        atoll_value *v = REQUEST_VALUE(s, "area.info", "{}");
        ASSERT_EQ(jint(v, "level"), ls[i].acked);
        atoll_unref(v);
        atollc_sync_free(s);
    }
}

/* Plays n levels of uid through the gate, checking each. */
static void
play(test_node *gate, const char *uid, int from, int n)
{
    atollc_sync *s = ENTER(gate, uid);
    for (int i = 1; i <= n; i++) {
        atoll_value *v = REQUEST_VALUE(s, "area.levelup", "{}");
        ASSERT_EQ(jint(v, "level"), from + i);
        atoll_unref(v);
    }
    atollc_sync_free(s);
}

/* ---- tests ---------------------------------------------------------------------- */

TEST(areas_spread_over_area_nodes_and_play_through_a_gate)
{
    cluster c;
    test_node a1, a2, g;
    three_up(&c, &a1, &a2, &g);
    /* quick.areas=8 spreads uids over area-1..8: enough players to reach them all. */
    char uid[16];
    for (int i = 0; i < 24; i++) {
        snprintf(uid, sizeof uid, "p%d", i);
        play(&g, uid, 0, 5);
    }
    int owners[3] = {0, 0, 0};
    int id1 = node_id_of(&a1), id2 = node_id_of(&a2);
    ASSERT(id1 > 0 && id2 > 0 && id1 != id2);
    for (int i = 1; i <= 8; i++) {
        char area[16];
        snprintf(area, sizeof area, "area-%d", i);
        int o = owner_of(&c, area);
        owners[o == id1 ? 1 : o == id2 ? 2 : 0]++;
    }
    ASSERT_EQ(owners[0], 0);             /* every area lives on an area node */
    ASSERT(owners[1] > 0 && owners[2] > 0); /* and both carry some */
    /* State kept in the shared store: a level played again goes on from there. */
    play(&g, "p3", 5, 2);
    three_down(&c, &a1, &a2, &g);
}

TEST(an_area_node_killed_its_players_play_on)
{
    cluster c;
    test_node a1, a2, g;
    three_up(&c, &a1, &a2, &g);
    enum { N = 16 };
    leveler ls[N];
    levelers_start(&g, ls, N, "k", 15000);
    usleep(1500 * 1000);
    /* The node holding the coordinator's lease, so that the standby must take over
     * before anything comes back. */
    char coord[16] = "";
    ASSERT(redis_exec(&c.redis, coord, sizeof coord, "GET atoll:coordinator"));
    bool first = atoi(coord) == node_id_of(&a1);
    test_node *victim = first ? &a1 : &a2, *survivor = first ? &a2 : &a1;
    int victim_areas = 0;
    for (int i = 1; i <= 8; i++) {
        char area[16];
        snprintf(area, sizeof area, "area-%d", i);
        victim_areas += owner_of(&c, area) == node_id_of(victim);
    }
    ASSERT(victim_areas > 0); /* the kill takes areas with it */
    int acked_before[N];
    for (int i = 0; i < N; i++)
        acked_before[i] = ls[i].acked;
    uint64_t killed = node_kill(victim);
    usleep(4000 * 1000);
    uint64_t stopped = gc_now_us();
    levelers_join(ls, N, stopped);
    uint64_t worst = 0;
    for (int i = 0; i < N; i++) {
        ASSERT(ls[i].acked > acked_before[i]); /* played on after the kill */
        uint64_t gap = leveler_longest_gap(&ls[i], killed);
        if (gap > worst)
            worst = gap;
    }
    fprintf(stderr, "  from the kill to the first answer, worst player: %.0f ms; requests sent "
            "again that had run already (answered from their record): %d\n",
            worst / 1000.0, node_log_count(survivor, "was run already"));
    /* Every area is on the survivor, and a new player still gets placed. */
    int sid = node_id_of(survivor);
    for (int i = 1; i <= 8; i++) {
        char area[16];
        snprintf(area, sizeof area, "area-%d", i);
        int o = owner_of(&c, area);
        ASSERT(o == 0 || o == sid);
    }
    play(&g, "newcomer", 0, 3);
    /* Levels were committed: each player's level, read again, is the last answered. */
    expect_acked_levels(&g, ls, N);
    levelers_free(ls, N);
    node_stop(&g);
    node_stop(survivor);
    node_remove_log(victim);
    cluster_down(&c);
}

TEST(a_frozen_area_node_loses_its_areas_and_rejoins_empty)
{
    cluster c;
    test_node a1, a2, g;
    three_up(&c, &a1, &a2, &g);
    enum { N = 8 };
    leveler ls[N];
    levelers_start(&g, ls, N, "f", 15000);
    usleep(2000 * 1000);
    int id1 = node_id_of(&a1), id2 = node_id_of(&a2);
    /* The node whose areas hold more of the players is frozen. */
    char area_of[N][64];
    int on1 = 0;
    for (int i = 0; i < N; i++) {
        ASSERT(redis_exec(&c.redis, area_of[i], sizeof area_of[i], "GET atoll:player:%s",
                          ls[i].uid));
        on1 += owner_of(&c, area_of[i]) == id1;
    }
    test_node *frozen = 2 * on1 >= N ? &a1 : &a2;
    int fid = frozen == &a1 ? id1 : id2, other = frozen == &a1 ? id2 : id1;
    ASSERT(areas_of(&c, fid) > 0);
    /* Frozen past its lease (1.5 s): the other node takes its areas over. */
    char before[N][64];
    bool moved[N]; /* its area was on the frozen node */
    int nmoved = 0;
    for (int i = 0; i < N; i++) {
        moved[i] = owner_of(&c, area_of[i]) == fid;
        nmoved += moved[i];
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT epoch FROM atoll_docs WHERE kind = 1 AND key = '%s'",
                 ls[i].uid);
        ASSERT(pg_exec(c.pg_url, sql, before[i], sizeof before[i]));
    }
    ASSERT_EQ(kill(frozen->pid, SIGSTOP), 0);
    usleep(3500 * 1000);
    ASSERT_EQ(areas_of(&c, fid), 0);
    ASSERT(areas_of(&c, other) > 0);
    /* The new owners wrote every moved player's document with their own, newer epoch:
     * whatever the frozen node still writes is older, and refused. */
    ASSERT(nmoved > 0);
    for (int i = 0; i < N; i++) {
        char sql[128], now[64];
        snprintf(sql, sizeof sql, "SELECT epoch FROM atoll_docs WHERE kind = 1 AND key = '%s'",
                 ls[i].uid);
        /* Written by their new owner once they entered again: wait for it (a loaded
         * machine may take a moment), as long as the rest of the test would. */
        uint64_t until = gc_now_us() + 5000000;
        do {
            ASSERT(pg_exec(c.pg_url, sql, now, sizeof now));
            if (!moved[i] || strtoull(now, NULL, 10) > strtoull(before[i], NULL, 10))
                break;
            usleep(50 * 1000);
        } while (gc_now_us() < until);
        ASSERT(strtoull(now, NULL, 10) >= strtoull(before[i], NULL, 10));
        if (moved[i])
            ASSERT(strtoull(now, NULL, 10) > strtoull(before[i], NULL, 10));
    }
    ASSERT_EQ(kill(frozen->pid, SIGCONT), 0);
    usleep(2500 * 1000);
    uint64_t stopped = gc_now_us();
    levelers_join(ls, N, stopped); /* nobody disconnected, every level the next one */
    /* It found out, dropped what it ran, and is back in the registry owning nothing;
     * the areas stay where they went: never two owners. */
    ASSERT(node_log_contains(frozen, "declared dead while it was away"));
    char rec[512] = "";
    ASSERT(redis_exec(&c.redis, rec, sizeof rec, "GET atoll:node:%d", fid));
    ASSERT(strstr(rec, "\"name\":\"") != NULL);
    ASSERT_EQ(areas_of(&c, fid), 0);
    /* What it still wrote was refused by the store, or it wrote nothing: either way the
     * levels read now are the last answered ones. */
    fprintf(stderr, "  writes of the frozen node refused by the store: %d\n",
            node_log_count(frozen, "store refused a write"));
    expect_acked_levels(&g, ls, N);
    levelers_free(ls, N);
    three_down(&c, &a1, &a2, &g);
}

TEST(redis_restarted_play_goes_on)
{
    cluster c;
    test_node a1, a2, g;
    three_up(&c, &a1, &a2, &g);
    enum { N = 8 };
    leveler ls[N];
    levelers_start(&g, ls, N, "r", 15000);
    usleep(2000 * 1000);
    int id1 = node_id_of(&a1), id2 = node_id_of(&a2);
    int before1 = areas_of(&c, id1), before2 = areas_of(&c, id2);
    int acked[N];
    for (int i = 0; i < N; i++)
        acked[i] = ls[i].acked;
    /* Down for longer than a lease: every record's lease ends meanwhile. */
    redis_down(&c.redis);
    usleep(2500 * 1000);
    ASSERT(redis_up(&c.redis));
    usleep(4000 * 1000);
    uint64_t stopped = gc_now_us();
    levelers_join(ls, N, stopped);
    for (int i = 0; i < N; i++)
        ASSERT(ls[i].acked > acked[i] + 10); /* played through it */
    /* Settled: both nodes alive again, the areas where they were, nobody evicted. */
    char rec[512];
    ASSERT(redis_exec(&c.redis, rec, sizeof rec, "GET atoll:node:%d", id1) && rec[0] == '{');
    ASSERT(redis_exec(&c.redis, rec, sizeof rec, "GET atoll:node:%d", id2) && rec[0] == '{');
    ASSERT_EQ(areas_of(&c, id1), before1);
    ASSERT_EQ(areas_of(&c, id2), before2);
    ASSERT(!node_log_contains(&a1, "declared dead while it was away"));
    ASSERT(!node_log_contains(&a2, "declared dead while it was away"));
    play(&g, "after-redis", 0, 3);
    levelers_free(ls, N);
    three_down(&c, &a1, &a2, &g);
}

TEST(a_gate_killed_its_players_resume_on_another)
{
    cluster c;
    cluster_up(&c);
    test_node a1, g1, g2;
    start_member(&a1, &c, "area,coordinator", "a1", NULL);
    start_member(&g1, &c, "gate", "g1", NULL);
    start_member(&g2, &c, "gate", "g2", NULL);
    atollc_sync *s = ENTER(&g1, "roamer"); /* its resume token in gc_resume_token */
    char token[256];
    snprintf(token, sizeof token, "%s", gc_resume_token);
    ASSERT(token[0] != '\0');
    for (int i = 1; i <= 3; i++) {
        atoll_value *v = REQUEST_VALUE(s, "area.levelup", "{}");
        ASSERT_EQ(jint(v, "level"), i);
        atoll_unref(v);
    }
    node_kill(&g1);
    atollc_sync_free(s);
    /* The other gate finds the player where it waits (the gate's key comes from the
     * cluster's secret), with its level. */
    atollc_sync *s2 = CONNECT(&g2);
    char body[400];
    snprintf(body, sizeof body, "{\"token\":\"%s\"}", token);
    EXPECT_REPLY(s2, "gate.resume", body, "{\"code\":200,*");
    atoll_value *v = REQUEST_VALUE(s2, "area.levelup", "{}");
    ASSERT_EQ(jint(v, "level"), 4);
    atoll_unref(v);
    atollc_sync_free(s2);
    node_stop(&g2);
    node_remove_log(&g1);
    node_stop(&a1);
    cluster_down(&c);
}

TEST(a_second_login_through_another_gate_kicks_the_first)
{
    cluster c;
    cluster_up(&c);
    test_node a1, g1, g2;
    start_member(&a1, &c, "area,coordinator", "a1", NULL);
    start_member(&g1, &c, "gate", "g1", NULL);
    start_member(&g2, &c, "gate", "g2", NULL);
    atollc_sync *first = ENTER(&g1, "twice");
    atoll_value *v = REQUEST_VALUE(first, "area.levelup", "{}");
    ASSERT_EQ(jint(v, "level"), 1);
    atoll_unref(v);
    /* The same uid through the other gate: one player, now on the second connection;
     * the first is told and closed, as on one node. */
    atollc_sync *second = ENTER(&g2, "twice");
    EXPECT_KICK(first, "duplicate login");
    v = REQUEST_VALUE(second, "area.levelup", "{}");
    ASSERT_EQ(jint(v, "level"), 2);
    atoll_unref(v);
    atollc_sync_free(first);
    atollc_sync_free(second);
    node_stop(&g2);
    node_stop(&g1);
    node_stop(&a1);
    cluster_down(&c);
}

TEST(calls_and_moves_cross_nodes)
{
    cluster c;
    cluster_up(&c);
    test_node a1, a2, g;
    start_testgame_member(&a1, &c, "area,coordinator", "a1", NULL);
    start_testgame_member(&a2, &c, "area,coordinator", "a2", NULL);
    start_testgame_member(&g, &c, "gate", "g1", NULL);
    int id1 = node_id_of(&a1), id2 = node_id_of(&a2);
    /* Players enter areas m-0.. until two of them live on different nodes. */
    atollc_sync *s[8];
    char here[16] = "", there[16] = "";
    int n = 0;
    for (; n < 8 && there[0] == '\0'; n++) {
        char uid[16], area[16], body[96];
        snprintf(uid, sizeof uid, "mover%d", n);
        snprintf(area, sizeof area, "m-%d", n);
        s[n] = CONNECT(&g);
        snprintf(body, sizeof body, "{\"uid\":\"%s\",\"area\":\"%s\"}", uid, area);
        EXPECT_REPLY(s[n], "gate.entry", body, "{\"code\":200,*");
        int o = owner_of(&c, area);
        ASSERT(o == id1 || o == id2);
        if (here[0] == '\0')
            snprintf(here, sizeof here, "%s", area);
        else if (o != owner_of(&c, here))
            snprintf(there, sizeof there, "%s", area);
    }
    ASSERT(there[0] != '\0');
    /* A call from an area of one node to an area of the other, and its answer. */
    char body[160];
    snprintf(body, sizeof body, "{\"to\":\"%s\",\"route\":\"t.echo\",\"body\":{\"x\":7}}", there);
    atoll_value *v = REQUEST_VALUE(s[0], "t.call", body);
    ASSERT_STR(jstr(v, "status"), "OK");
    ASSERT_STR(jstr(v, "reply.from"), here);
    ASSERT_STR(jstr(v, "reply.area"), there);
    ASSERT_EQ(jint(v, "reply.body.x"), 7);
    atoll_unref(v);
    /* The player's data goes with it to the other node, and its messages follow it. */
    v = REQUEST_VALUE(s[0], "t.incr", "{\"by\":5}");
    ASSERT_EQ(jint(v, "n"), 5);
    atoll_unref(v);
    snprintf(body, sizeof body, "{\"to\":\"%s\"}", there);
    v = REQUEST_VALUE(s[0], "t.move", body);
    ASSERT_EQ(jint(v, "code"), 200);
    atoll_unref(v);
    v = REQUEST_VALUE(s[0], "t.incr", "{\"by\":1}");
    ASSERT_EQ(jint(v, "n"), 6);
    ASSERT_STR(jstr(v, "area"), there);
    atoll_unref(v);
    v = REQUEST_VALUE(s[0], "t.who", "{}");
    ASSERT_STR(jstr(v, "area"), there);
    atoll_unref(v);
    /* And back. */
    snprintf(body, sizeof body, "{\"to\":\"%s\"}", here);
    v = REQUEST_VALUE(s[0], "t.move", body);
    ASSERT_EQ(jint(v, "code"), 200);
    atoll_unref(v);
    v = REQUEST_VALUE(s[0], "t.incr", "{\"by\":1}");
    ASSERT_EQ(jint(v, "n"), 7);
    ASSERT_STR(jstr(v, "area"), here);
    atoll_unref(v);
    for (int i = 0; i < n; i++)
        atollc_sync_free(s[i]);
    three_down(&c, &a1, &a2, &g);
}

TEST(a_wrong_secret_and_garbage_are_refused)
{
    cluster c;
    cluster_up(&c);
    test_node a1, g, bad;
    start_member(&a1, &c, "area,coordinator", "a1", NULL);
    start_member(&g, &c, "gate", "g1", NULL);
    play(&g, "before", 0, 2);
    /* Bytes that are not a link, to the area node's link port. */
    char adv[256] = "";
    int id1 = node_id_of(&a1);
    ASSERT(redis_exec(&c.redis, adv, sizeof adv, "GET atoll:node:%d", id1));
    const char *p = strstr(adv, "\"advertise\":\"127.0.0.1:");
    ASSERT(p != NULL);
    int port = atoi(p + strlen("\"advertise\":\"127.0.0.1:"));
    int fd = raw_connect(port);
    ASSERT(fd >= 0);
    static const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n and some more bytes than a HELLO";
    raw_send(fd, junk, sizeof junk);
    ASSERT(raw_wait_closed(fd, 3000));
    close(fd);
    /* A HELLO that never ends: its bytes one by one, each a valid start, never silent
     * for long: cut once it is not up within cluster.link_timeout_ms (3 s). */
    static const uint8_t hello[] = {'A', 'T', 'O', 'L', 'L', 'N', 'K', '1', 1, 1, 5, 0, 3,
                                    'a', 'b', 'c', 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};
    fd = raw_connect(port);
    ASSERT(fd >= 0);
    uint64_t t0 = gc_now_us();
    bool cut = false;
    for (size_t i = 0; i < sizeof hello && !cut; i++) {
        raw_send(fd, &hello[i], 1);
        cut = raw_wait_closed(fd, 300);
    }
    ASSERT(cut);
    ASSERT(gc_now_us() - t0 >= 2500000); /* not cut for a bad byte: for its slowness */
    close(fd);
    /* A node with another secret: its links are refused, nothing is placed on it. */
    const char *other[] = {"--game", "quick", "--roles", "area", "--node-id", "intruder",
                           "--advertise", "127.0.0.1:0", "--redis", c.redis_url,
                           "--cluster-secret", "another-secret-0123456789abcdef",
                           "--store", c.pg_url, "--durability", "durable",
                           "--set", "quick.areas=8", NULL};
    node_start(&bad, other);
    usleep(1000 * 1000);
    for (int i = 0; i < 12; i++) {
        char uid[16];
        snprintf(uid, sizeof uid, "after%d", i);
        play(&g, uid, 0, 2);
    }
    play(&g, "before", 2, 1);
    ASSERT(node_log_contains(&a1, "link peer sent bad bytes"));
    node_stop(&bad);
    node_stop(&g);
    node_stop(&a1);
    cluster_down(&c);
}

TEST_MAIN(areas_spread_over_area_nodes_and_play_through_a_gate,
          an_area_node_killed_its_players_play_on,
          a_frozen_area_node_loses_its_areas_and_rejoins_empty, redis_restarted_play_goes_on,
          a_gate_killed_its_players_resume_on_another,
          a_second_login_through_another_gate_kicks_the_first, calls_and_moves_cross_nodes,
          a_wrong_secret_and_garbage_are_refused)
