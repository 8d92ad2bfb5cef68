/* persist_test.c -- players' data and areas' state kept in a real store (SQLite, --data
 * DIR) across restarts of a node: after SIGTERM (which flushes everything and exits 0),
 * after SIGKILL with --durability durable (nothing acknowledged is lost) and fast
 * (nothing acknowledged more than store.flush_ms before the kill is lost), under load;
 * a failing handler's changes undone in memory and in the store; stores that cannot be
 * opened stopping the start; a corrupt stored document refusing its player alone.
 * Each test has its own temporary --data directory, removed at its end.
 */
#include "game_client.h"
#include "harness.h"
#include "leveler.h"
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------------------- */

/* A fresh directory /tmp/atoll-persist-XXXXXX in dir (64 bytes). */
static void
make_data_dir(char *dir)
{
    snprintf(dir, 64, "/tmp/atoll-persist-XXXXXX");
    ASSERT(mkdtemp(dir) != NULL);
}

static void
rm_rf(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ASSERT_EQ(system(cmd), 0);
}

/* A node of the quick game on --data dir, with more arguments (NULL-terminated, or
 * NULL). */
static void
start_quick(test_node *n, const char *dir, const char *const *extra)
{
    const char *args[24] = {"--game", "quick", "--data", dir};
    int k = 4;
    for (int i = 0; extra && extra[i] && k < 23; i++)
        args[k++] = extra[i];
    args[k] = NULL;
    node_start(n, args);
}

/* Enters uid and returns its level from area.info (its money must be 10 a level). */
static int
level_of_(test_node *n, const char *uid, int line)
{
    atollc_sync *s = gc_enter_(n, uid, NULL, NULL, __FILE__, line);
    atoll_value *v = gc_request_value_(s, "area.info", "{}", __FILE__, line);
    int64_t level = jint(v, "level"), money = jint(v, "money");
    atoll_unref(v);
    atollc_sync_free(s);
    if (level == INT64_MIN || money != 10 * level) {
        char got[64];
        snprintf(got, sizeof got, "level %lld money %lld", (long long)level, (long long)money);
        gc_fail_at(__FILE__, line, uid, got, "money = 10 * level");
    }
    return (int)level;
}
#define LEVEL_OF(n, uid) level_of_((n), (uid), __LINE__)

/* ---- players leveling up in threads while the node is stopped or killed ---------- */

enum { PLAYERS = 8 };

static void
start_levelers(test_node *n, leveler *ls, const char *prefix)
{
    levelers_start(n, ls, PLAYERS, prefix, 3000);
}

static void
join_levelers(leveler *ls, uint64_t stopped_us)
{
    levelers_join(ls, PLAYERS, stopped_us);
}

static void
free_levelers(leveler *ls)
{
    levelers_free(ls, PLAYERS);
}


/* Restarts the node on dir: each player's level is at least `floor[i]` and at most its
 * last acknowledged level + 1 (one request may have been in flight, done but
 * unanswered). Then stops it, frees the players and removes dir. */
static void
expect_levels_after_restart_(test_node *n, const char *dir, leveler *ls, const int *floor,
                             int line)
{
    start_quick(n, dir, NULL);
    for (int i = 0; i < PLAYERS; i++) {
        int got = level_of_(n, ls[i].uid, line);
        if (got < floor[i] || got > ls[i].acked + 1) {
            char g[64], w[96];
            snprintf(g, sizeof g, "level %d", got);
            snprintf(w, sizeof w, "from %d to %d (last acknowledged %d)", floor[i],
                     ls[i].acked + 1, ls[i].acked);
            gc_fail_at(__FILE__, line, ls[i].uid, g, w);
        }
    }
    node_stop(n);
    free_levelers(ls);
    rm_rf(dir);
}
#define EXPECT_LEVELS_AFTER_RESTART(n, dir, ls, floor)                                        \
    expect_levels_after_restart_((n), (dir), (ls), (floor), __LINE__)

/* Levels each player must have reached in the time it played, for the test to mean
 * something (hundreds are usual; a stall shows as a handful). */
#define PLAYED 20

/* The levels acknowledged: every one must survive. */
static void
acked_levels(const leveler *ls, int *out)
{
    for (int i = 0; i < PLAYERS; i++) {
        out[i] = ls[i].acked;
        ASSERT(ls[i].acked >= PLAYED);
    }
}

/* ---- tests ---------------------------------------------------------------------- */

TEST(restart_keeps_levels)
{
    char dir[64];
    make_data_dir(dir);
    test_node n;
    start_quick(&n, dir, (const char *[]){"--set", "quick.areas=3", NULL});
    const char *uids[4] = {"ann", "ben", "cat", "dan"};
    for (int i = 0; i < 4; i++) {
        atollc_sync *s = ENTER(&n, uids[i]);
        for (int k = 0; k < 2 * i + 1; k++) {
            atoll_value *v = REQUEST_VALUE(s, "area.levelup", "{}");
            ASSERT_EQ(jint(v, "level"), k + 1);
            atoll_unref(v);
        }
        atollc_sync_free(s);
    }
    node_stop(&n);

    start_quick(&n, dir, (const char *[]){"--set", "quick.areas=3", NULL});
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(LEVEL_OF(&n, uids[i]), 2 * i + 1);
    ASSERT_EQ(LEVEL_OF(&n, "newcomer"), 0);
    /* Playing on adds to what was kept. */
    atollc_sync *s = ENTER(&n, "dan");
    EXPECT_REPLY(s, "area.levelup", "{}", "{\"code\":200,\"level\":8,\"money\":80}");
    atollc_sync_free(s);
    node_stop(&n);

    /* A second restart: the change after the first one was kept too. */
    start_quick(&n, dir, NULL);
    ASSERT_EQ(LEVEL_OF(&n, "dan"), 8);
    ASSERT_EQ(LEVEL_OF(&n, "ann"), 1);
    node_stop(&n);
    rm_rf(dir);
}

/* Two areas a worker, each player's money pushed to it alone, and no rate limit (one
 * player asks hundreds of times a second). */
#define LOAD_SETTINGS                                                                      \
    "--set", "quick.areas=4", "--set", "quick.broadcast=false", "--set", "net.rate_limit=0"

/* Players level up on a node of dir started with args for 1.5 s, then the node gets
 * SIGKILL; returns when, once the players' threads are joined and checked. */
static uint64_t
play_then_kill(test_node *n, const char *dir, const char *const *args, leveler *ls,
               const char *prefix)
{
    start_quick(n, dir, args);
    start_levelers(n, ls, prefix);
    usleep(1500 * 1000);
    uint64_t killed = node_kill(n);
    join_levelers(ls, killed);
    node_remove_log(n);
    return killed;
}

TEST(sigkill_durable_loses_nothing_acknowledged)
{
    char dir[64];
    make_data_dir(dir);
    test_node n;
    leveler ls[PLAYERS];
    play_then_kill(&n, dir, (const char *[]){"--durability", "durable", LOAD_SETTINGS, NULL},
                   ls, "dk");
    int floor[PLAYERS];
    acked_levels(ls, floor);

    EXPECT_LEVELS_AFTER_RESTART(&n, dir, ls, floor);
}

/* What fast may lose: what was acknowledged within flush_ms of the kill, and a margin
 * for a loaded machine (the writer's thread may run late). */
#define FLUSH_MS 100
#define MARGIN_MS 1000

TEST(sigkill_fast_loses_at_most_the_window)
{
    char dir[64];
    make_data_dir(dir);
    test_node n;
    leveler ls[PLAYERS];
    uint64_t killed = play_then_kill(
        &n, dir,
        (const char *[]){"--durability", "fast", "--set", "store.flush_ms=100", LOAD_SETTINGS,
                         NULL},
        ls, "fk");
    int floor[PLAYERS];
    uint64_t before = killed - (uint64_t)(FLUSH_MS + MARGIN_MS) * 1000;
    for (int i = 0; i < PLAYERS; i++) {
        floor[i] = 0;
        for (int level = ls[i].acked; level > 0; level--)
            if (ls[i].acked_us[level] <= before) {
                floor[i] = level;
                break;
            }
        ASSERT(floor[i] >= PLAYED); /* it played before the window too */
    }

    EXPECT_LEVELS_AFTER_RESTART(&n, dir, ls, floor);
}

/* SIGTERM while every player levels: the node flushes and exits 0, and nothing
 * acknowledged is lost, whatever the durability. */
static void
sigterm_under_load(const char *durability)
{
    char dir[64];
    make_data_dir(dir);
    test_node n;
    start_quick(&n, dir, (const char *[]){"--durability", durability, LOAD_SETTINGS, NULL});
    leveler ls[PLAYERS];
    start_levelers(&n, ls, "st");
    usleep(1000 * 1000);
    uint64_t stopped = gc_now_us();
    node_stop(&n); /* status 0 within 10 s */
    join_levelers(ls, stopped);
    int floor[PLAYERS];
    acked_levels(ls, floor);

    EXPECT_LEVELS_AFTER_RESTART(&n, dir, ls, floor);
}

TEST(sigterm_under_load_durable)
{
    sigterm_under_load("durable");
}

TEST(sigterm_under_load_fast)
{
    sigterm_under_load("fast");
}

/* ---- a failing handler's changes are undone, in memory and in the store ---- */

#define UNSPOILED(n) "{\"code\":200,\"n\":" #n ",\"spoiled\":false,\"area_spoiled\":0}"

/* Polls the node's log for up to 3 s (lines reach the file as they are written). */
static bool
log_soon(const test_node *n, const char *text)
{
    for (int i = 0; i < 150; i++) {
        if (node_log_contains(n, text))
            return true;
        usleep(20 * 1000);
    }
    return false;
}

TEST(rollback)
{
    char dir[64];
    make_data_dir(dir);
    test_node n;
    node_start_testgame(&n, (const char *[]){"--data", dir, NULL});
    atollc_sync *a = ENTER(&n, "rb");
    EXPECT_PUSH(a, "onEnter", NULL);
    EXPECT_REPLY(a, "t.incr", "{\"by\":5}", "{\"code\":200,\"n\":5,\"area\":\"t-1\"}");
    EXPECT_REPLY(a, "t.spoil", "{}", "{\"code\":500,\"message\":\"not allowed in this state\"}");
    EXPECT_NO_PUSH(a, 300);
    EXPECT_REPLY(a, "t.spoils", "{}", UNSPOILED(5));
    /* Twice more, and a change that succeeds after them counts from the same value. */
    EXPECT_REPLY(a, "t.spoil", "{\"by\":7}", "{\"code\":500*");
    EXPECT_REPLY(a, "t.spoil", "{}", "{\"code\":500*");
    EXPECT_NO_PUSH(a, 200);
    EXPECT_REPLY(a, "t.incr", "{}", "{\"code\":200,\"n\":6,\"area\":\"t-1\"}");
    EXPECT_REPLY(a, "t.spoils", "{}", UNSPOILED(6));
    /* A query that writes is told about in the log. */
    ASSERT(!node_log_contains(&n, "a query handler changed a document"));
    EXPECT_REPLY(a, "t.peek", "{}", "{\"code\":200}");
    if (!log_soon(&n, "a query handler changed a document")) {
        node_dump_log(&n);
        ASSERT(!"the node logs a query handler's change");
    }
    atollc_sync_free(a);
    node_stop(&n);

    node_start_testgame(&n, (const char *[]){"--data", dir, NULL});
    a = ENTER(&n, "rb");
    EXPECT_PUSH(a, "onEnter", NULL);
    EXPECT_REPLY(a, "t.spoils", "{}", UNSPOILED(6));
    /* What did change was kept: the player's two entries, the area's, the peek. */
    atoll_value *v = REQUEST_VALUE(a, "t.data", "{}");
    ASSERT_EQ(jint(v, "data.visits"), 2);
    ASSERT_EQ(jint(v, "data.peeked"), 1);
    ASSERT_EQ(jint(v, "state.entered"), 2);
    atoll_unref(v);
    atollc_sync_free(a);
    node_stop(&n);
    rm_rf(dir);
}

/* A player whose client went away leaves when its resume window ends (a timer): what
 * on_leave changed, deep in its data, is written with it, and the next login finds it. */
TEST(what_on_leave_changes_is_written)
{
    char dir[64];
    make_data_dir(dir);
    test_node n;
    const char *args[] = {"--data", dir, "--set", "session.resume_ms=200", NULL};
    node_start_testgame(&n, args);
    atollc_sync *a = ENTER(&n, "lv");
    EXPECT_REPLY(a, "t.incr", "{\"by\":3}", "{\"code\":200,\"n\":3,\"area\":\"t-1\"}");
    atollc_sync_free(a); /* the connection drops: the player waits 200 ms, then leaves */
    usleep(800 * 1000);
    a = ENTER(&n, "lv");
    atoll_value *v = REQUEST_VALUE(a, "t.data", "{}");
    ASSERT_EQ(jint(v, "data.n"), 3);
    ASSERT_STR(jstr(v, "data.left.0"), "t-1"); /* on_leave's append, loaded back */
    atoll_unref(v);
    atollc_sync_free(a);
    node_stop(&n);
    /* And in the store: a new node has it too (and the second leave's append). */
    node_start_testgame(&n, args);
    a = ENTER(&n, "lv");
    v = REQUEST_VALUE(a, "t.data", "{}");
    ASSERT_EQ(jint(v, "data.n"), 3);
    ASSERT_STR(jstr(v, "data.left.0"), "t-1");
    ASSERT_STR(jstr(v, "data.left.1"), "t-1");
    atoll_unref(v);
    atollc_sync_free(a);
    node_stop(&n);
    rm_rf(dir);
}

/* ---- stores that cannot be used ---- */

/* `atoll run` of the quick game with these store arguments must stop at start, saying
 * `says`. */
static void
refused_store_(const char *store_args, const char *says, int line)
{
    char args[512];
    snprintf(args, sizeof args, "--game quick %s", store_args);
    node_expect_refused_(args, says, __FILE__, line);
}
#define REFUSED_STORE(args, says) refused_store_((args), (says), __LINE__)

TEST(bad_data_stops_the_start)
{
    char dir[64], db[96], args[128];
    make_data_dir(dir);
    snprintf(db, sizeof db, "%s/atoll.db", dir);
    FILE *f = fopen(db, "w");
    ASSERT(f != NULL);
    fputs("hello\n", f);
    fclose(f);
    snprintf(args, sizeof args, "--data %s", dir);
    REFUSED_STORE(args, "cannot open the store");
    /* It was left as it was. */
    char text[16] = "";
    f = fopen(db, "r");
    ASSERT(f != NULL);
    text[fread(text, 1, sizeof text - 1, f)] = '\0';
    fclose(f);
    ASSERT_STR(text, "hello\n");
    REFUSED_STORE("--store bogus://x", "bad store");
    rm_rf(dir);
}

/* Runs sqlite3 on db with this SQL; returns its first output line (out, 64 bytes). */
static void
sqlite_(const char *db, const char *sql, char *out, int line)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "sqlite3 '%s' \"%s\" 2>&1", db, sql);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        gc_fail_at(__FILE__, line, "popen sqlite3", NULL, sql);
    out[0] = '\0';
    if (fgets(out, 64, p) == NULL)
        out[0] = '\0';
    out[strcspn(out, "\n")] = '\0';
    int status = pclose(p);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        gc_fail_at(__FILE__, line, "sqlite3", out, sql);
}
#define SQLITE(db, sql, out) sqlite_((db), (sql), (out), __LINE__)

TEST(bad_document_refuses_its_player_alone)
{
    char dir[64], db[96], out[64];
    make_data_dir(dir);
    snprintf(db, sizeof db, "%s/atoll.db", dir);
    test_node n;
    start_quick(&n, dir, NULL);
    const char *uids[2] = {"good", "bad"};
    for (int i = 0; i < 2; i++) {
        atollc_sync *s = ENTER(&n, uids[i]);
        EXPECT_REPLY(s, "area.levelup", "{}", "{\"code\":200,\"level\":1,\"money\":10}");
        EXPECT_REPLY(s, "area.levelup", "{}", "{\"code\":200,\"level\":2,\"money\":20}");
        atollc_sync_free(s);
    }
    node_stop(&n);

    SQLITE(db, "UPDATE atoll_docs SET doc='not json' WHERE kind=1 AND key='bad'; SELECT changes();",
           out);
    ASSERT_STR(out, "1");

    start_quick(&n, dir, NULL);
    atollc_sync *s = ENTER_WITH(&n, "bad", NULL, "{\"code\":500*");
    atollc_sync_free(s);
    if (!log_soon(&n, "stored document cannot be read") ||
        !node_log_contains(&n, "doc=\"player:bad\"")) {
        node_dump_log(&n);
        ASSERT(!"the node logs the bad document");
    }
    /* The others play on, and a second try of the bad one is refused too. */
    ASSERT_EQ(LEVEL_OF(&n, "good"), 2);
    ASSERT_EQ(LEVEL_OF(&n, "other"), 0);
    s = ENTER_WITH(&n, "bad", NULL, "{\"code\":500*");
    atollc_sync_free(s);
    s = ENTER(&n, "good");
    EXPECT_REPLY(s, "area.levelup", "{}", "{\"code\":200,\"level\":3,\"money\":30}");
    atollc_sync_free(s);
    node_stop(&n);
    /* The bad document was left as it was, not overwritten with defaults. */
    SQLITE(db, "SELECT doc FROM atoll_docs WHERE kind=1 AND key='bad';", out);
    ASSERT_STR(out, "not json");
    rm_rf(dir);
}

TEST_MAIN(what_on_leave_changes_is_written, restart_keeps_levels, sigkill_durable_loses_nothing_acknowledged,
          sigkill_fast_loses_at_most_the_window, sigterm_under_load_durable,
          sigterm_under_load_fast, rollback, bad_data_stops_the_start,
          bad_document_refuses_its_player_alone)
