/* quick_test.c -- the `quick` example game (examples/quick) against a real node with two
 * workers, through the C client library: the level/money sequence of area.levelup and
 * area.info, who gets the levelup and money pushes, the quick.broadcast and
 * quick.areas settings, the order of pipelined requests, and the error answers for an
 * unknown handler and for a request sent before gate.entry. Then where settings come
 * from (a --config file, ATOLL_* variables, the command line, in that precedence) and
 * the cluster flags that contradict each other, refused by the real binary before it
 * reaches any server (no Redis runs here).
 */
#include "game_client.h"
#include "harness.h"
#include "test.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------------------- */

static void
start_quick(test_node *n, const char *const *settings)
{
    const char *args[16] = {"--game", "quick"};
    int k = 2;
    for (int i = 0; settings && settings[i] && k < 15; i++)
        args[k++] = settings[i];
    args[k] = NULL;
    node_start(n, args);
}

/* Sends area.levelup or area.info; the answer must be exactly code 200 with this level
 * and its money (10 a level). */
static void
expect_level_(atollc_sync *s, const char *route, int level, int line)
{
    char want[96];
    snprintf(want, sizeof want, "{\"code\":200,\"level\":%d,\"money\":%d}", level, 10 * level);
    gc_expect_reply_(s, route, "{}", want, __FILE__, line);
}
#define EXPECT_LEVELUP(s, level) expect_level_((s), "area.levelup", (level), __LINE__)
#define EXPECT_INFO(s, level) expect_level_((s), "area.info", (level), __LINE__)

/* The same FNV-1a as examples/quick/quick.c: which area quick.areas puts a uid in. */
static unsigned
area_of(const char *uid, unsigned areas)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *c = (const unsigned char *)uid; *c; c++)
        h = (h ^ *c) * 16777619u;
    return h % areas + 1;
}

/* ---- tests ---------------------------------------------------------------------- */

TEST(levelup_and_info_count_up_from_zero)
{
    test_node n;
    start_quick(&n, NULL);
    atollc_sync *a = ENTER(&n, "alice");
    EXPECT_INFO(a, 0);
    char want[96];
    for (int i = 1; i <= 3; i++) {
        EXPECT_LEVELUP(a, i);
        /* The area's levelup first, then the player's own money. */
        EXPECT_PUSH(a, "levelup", "{\"playerId\":\"alice\"}");
        snprintf(want, sizeof want, "{\"money\":%d}", 10 * i);
        EXPECT_PUSH(a, "money", want);
    }
    EXPECT_INFO(a, 3);
    /* info is a read: it pushes nothing and changes nothing. */
    EXPECT_INFO(a, 3);
    EXPECT_NO_PUSH(a, 200);
    atollc_sync_free(a);
    node_stop(&n);
}

TEST(levelup_reaches_the_whole_area_money_only_the_sender)
{
    test_node n;
    start_quick(&n, NULL);
    const char *uids[3] = {"a1", "b2", "c3"};
    atollc_sync *s[3];
    for (int i = 0; i < 3; i++)
        s[i] = ENTER(&n, uids[i]);
    for (int from = 0; from < 3; from++) {
        EXPECT_LEVELUP(s[from], 1);
        char lv[128];
        snprintf(lv, sizeof lv, "{\"playerId\":\"%s\"}", uids[from]);
        for (int i = 0; i < 3; i++)
            EXPECT_PUSH(s[i], "levelup", lv);
        EXPECT_PUSH(s[from], "money", "{\"money\":10}");
        for (int i = 0; i < 3; i++)
            EXPECT_NO_PUSH(s[i], 200);
    }
    for (int i = 0; i < 3; i++)
        atollc_sync_free(s[i]);
    node_stop(&n);
}

TEST(broadcast_off_leaves_only_the_money_push)
{
    test_node n;
    start_quick(&n, (const char *[]){"--set", "quick.broadcast=false", NULL});
    atollc_sync *a = ENTER(&n, "alice"), *b = ENTER(&n, "bob");
    EXPECT_LEVELUP(a, 1);
    EXPECT_PUSH(a, "money", "{\"money\":10}");
    EXPECT_NO_PUSH(a, 300);
    EXPECT_NO_PUSH(b, 300);
    EXPECT_LEVELUP(b, 1);
    EXPECT_PUSH(b, "money", "{\"money\":10}");
    EXPECT_NO_PUSH(a, 300);
    EXPECT_NO_PUSH(b, 300);
    atollc_sync_free(a);
    atollc_sync_free(b);
    node_stop(&n);
}

TEST(areas_setting_spreads_players_by_uid_hash)
{
    enum { N = 12, AREAS = 4 };
    test_node n;
    start_quick(&n, (const char *[]){"--set", "quick.areas=4", NULL});
    char uids[N][8];
    unsigned area[N], count[AREAS + 1] = {0};
    atollc_sync *s[N];
    for (int i = 0; i < N; i++) {
        snprintf(uids[i], sizeof uids[i], "p%d", i);
        area[i] = area_of(uids[i], AREAS);
        count[area[i]]++;
        s[i] = ENTER(&n, uids[i]);
    }
    /* The test means something only if the uids fill several areas, some with company. */
    int used = 0, shared = 0;
    for (int k = 1; k <= AREAS; k++) {
        used += count[k] > 0;
        shared += count[k] > 1;
    }
    ASSERT(used >= 2 && shared >= 1);

    for (int from = 0; from < N; from++) {
        EXPECT_LEVELUP(s[from], 1);
        char lv[128];
        snprintf(lv, sizeof lv, "{\"playerId\":\"%s\"}", uids[from]);
        for (int i = 0; i < N; i++)
            if (area[i] == area[from])
                EXPECT_PUSH(s[i], "levelup", lv);
        EXPECT_PUSH(s[from], "money", "{\"money\":10}");
    }
    /* Players of other areas saw none of it: nothing is left in anyone's queue. */
    for (int i = 0; i < N; i++)
        EXPECT_NO_PUSH(s[i], 100);
    for (int i = 0; i < N; i++)
        atollc_sync_free(s[i]);
    node_stop(&n);
}

/* ---- pipelining: 50 requests sent before any answer, through the async API ---- */

enum { PIPELINED = 50 };

static struct {
    int done;
    int order[PIPELINED]; /* order[k]: which request the k-th answer belongs to */
    char body[PIPELINED][96];
} answers;

static void
on_levelup(atollc_client *c, int status, const char *body, size_t len, void *ud)
{
    (void)c;
    int k = answers.done++;
    if (k >= PIPELINED)
        return;
    answers.order[k] = (int)(intptr_t)ud;
    snprintf(answers.body[k], sizeof answers.body[k], "%.*s", status == ATOLLC_OK ? (int)len : 0,
             status == ATOLLC_OK ? body : "");
}

TEST(pipelined_levelups_are_answered_in_order)
{
    test_node n;
    start_quick(&n, NULL);
    atollc_sync *a = ENTER(&n, "alice");
    atollc_client *c = atollc_sync_client(a);
    for (int i = 1; i <= PIPELINED; i++)
        ASSERT_EQ(atollc_request(c, "area.levelup", "{}", 2, on_levelup, (void *)(intptr_t)i),
                  ATOLLC_OK);
    for (int waited = 0; answers.done < PIPELINED && waited < 10000; waited += 20)
        atollc_sync_pump(a, 20);
    ASSERT_EQ(answers.done, PIPELINED);
    for (int k = 0; k < PIPELINED; k++) {
        char want[96];
        snprintf(want, sizeof want, "{\"code\":200,\"level\":%d,\"money\":%d}", k + 1,
                 10 * (k + 1));
        ASSERT_EQ(answers.order[k], k + 1);
        ASSERT_STR(answers.body[k], want);
    }
    /* The pushes kept their order too: levelup, money, levelup, money... */
    for (int k = 1; k <= PIPELINED; k++) {
        char want[64];
        snprintf(want, sizeof want, "{\"money\":%d}", 10 * k);
        EXPECT_PUSH(a, "levelup", "{\"playerId\":\"alice\"}");
        EXPECT_PUSH(a, "money", want);
    }
    EXPECT_NO_PUSH(a, 200);
    atollc_sync_free(a);
    node_stop(&n);
}

/* ---- errors ---- */

TEST(unknown_handler_gets_500)
{
    test_node n;
    start_quick(&n, NULL);
    atollc_sync *a = ENTER(&n, "alice");
    EXPECT_REPLY(a, "area.nosuch", "{}", "{\"code\":500*");
    EXPECT_REPLY(a, "nosuch.levelup", "{}", "{\"code\":500*");
    /* The session and the player are unharmed. */
    EXPECT_LEVELUP(a, 1);
    atollc_sync_free(a);
    node_stop(&n);
}

TEST(levelup_before_entry_gets_500)
{
    test_node n;
    start_quick(&n, NULL);
    atollc_sync *a = CONNECT(&n);
    EXPECT_REPLY(a, "area.levelup", "{}", "{\"code\":500*");
    EXPECT_REPLY(a, "area.info", "{}", "{\"code\":500*");
    EXPECT_NO_PUSH(a, 200);
    /* After entry the player starts from zero: the refused levelup counted for nothing. */
    EXPECT_REPLY(a, "gate.entry", "{\"uid\":\"late\"}", "{\"code\":200*");
    EXPECT_INFO(a, 0);
    EXPECT_LEVELUP(a, 1);
    atollc_sync_free(a);
    node_stop(&n);
}

/* A node of the quick game with one --set that must stop it at start, saying `says`. */
static void
refused_setting_(const char *set, const char *says, int line)
{
    char args[512];
    snprintf(args, sizeof args, "--store memory --game quick --set '%s'", set);
    node_expect_refused_(args, says, __FILE__, line);
}
#define REFUSED_SETTING(set, says) refused_setting_((set), (says), __LINE__)

TEST(bad_game_settings_stop_the_node)
{
    /* quick.areas=0 would divide by zero in entry: the declared range refuses it. */
    REFUSED_SETTING("quick.areas=0", "quick.areas must be an integer from 1 to 100000");
    REFUSED_SETTING("quick.areas=many", "quick.areas must be an integer from 1 to 100000");
    REFUSED_SETTING("quick.broadcast=maybe", "quick.broadcast must be true or false");
    /* A misspelt key is named, with the keys the game has. */
    REFUSED_SETTING("quick.area=2",
                    "unknown setting 'quick.area' (the game's settings: quick.areas, quick.broadcast, "
                    "quick.push_level)");
    /* The framework's own namespaces are checked as before. */
    REFUSED_SETTING("session.resume=5", "unknown setting 'session.resume'");
}

/* ---- where settings come from ------------------------------------------------------- */

/* A file in /tmp holding text; its path in path (64 bytes). */
static void
temp_file(char *path, const char *text)
{
    snprintf(path, 64, "/tmp/atoll-quick-test-XXXXXX");
    int fd = mkstemp(path);
    ASSERT(fd >= 0);
    size_t n = strlen(text);
    ASSERT_EQ(write(fd, text, n), (ssize_t)n);
    close(fd);
}

TEST(settings_come_from_the_file_then_the_environment_then_the_command_line)
{
    /* The values are seen in the sentence of a check that refuses them: the heartbeat
     * each source gives is named. */
    char conf[64], args[256];
    temp_file(conf, "# two settings that contradict each other\n"
                    "net.heartbeat = 20\n"
                    "net.idle_timeout = 5\n");
    snprintf(args, sizeof args, "--store memory --game quick --config %s", conf);
    NODE_REFUSES(args, "net.idle_timeout (5 s) must be longer than net.heartbeat (20 s)");
    ASSERT_EQ(setenv("ATOLL_NET_HEARTBEAT", "30", 1), 0);
    NODE_REFUSES(args, "net.idle_timeout (5 s) must be longer than net.heartbeat (30 s)");
    /* The command line wins wherever it stands, --config after it too. */
    snprintf(args, sizeof args, "--store memory --game quick --heartbeat 40 --config %s", conf);
    NODE_REFUSES(args, "net.idle_timeout (5 s) must be longer than net.heartbeat (40 s)");
    /* ... and in its own order: the last word. */
    snprintf(args, sizeof args,
             "--store memory --game quick --heartbeat 40 --config %s --set net.heartbeat=50", conf);
    NODE_REFUSES(args, "net.idle_timeout (5 s) must be longer than net.heartbeat (50 s)");
    unsetenv("ATOLL_NET_HEARTBEAT");
    unlink(conf);

    /* The store a file or a variable names is given: the command's default SQLite store
     * does not replace it. */
    temp_file(conf, "store.url = bogus://from-the-file\n");
    snprintf(args, sizeof args, "--game quick --config %s", conf);
    NODE_REFUSES(args, "bad store 'bogus://from-the-file'");
    ASSERT_EQ(setenv("ATOLL_STORE_URL", "bogus://from-the-environment", 1), 0);
    NODE_REFUSES(args, "bad store 'bogus://from-the-environment'");
    unsetenv("ATOLL_STORE_URL");
    /* --store and --data on one command line still contradict each other. */
    NODE_REFUSES("--game quick --store memory --data /nonexistent/dir",
                 "--store and --data both say where state is kept: give one");
    unlink(conf);

    /* A bad line, a bad variable, a missing file: each named. */
    temp_file(conf, "net.heartbeat = 3\n\nnet.heartbeat 3\n");
    snprintf(args, sizeof args, "--store memory --game quick --config %s", conf);
    char want[128];
    snprintf(want, sizeof want, "%s:3: not KEY = VALUE", conf);
    NODE_REFUSES(args, want);
    unlink(conf);
    ASSERT_EQ(setenv("ATOLL_NET_MAX_CONNS", "lots", 1), 0);
    NODE_REFUSES("--store memory --game quick",
                 "ATOLL_NET_MAX_CONNS: net.max_conns must be an integer from 1 to 10000000");
    unsetenv("ATOLL_NET_MAX_CONNS");
    NODE_REFUSES("--store memory --config /nonexistent/atoll.conf",
                 "cannot read the config file /nonexistent/atoll.conf: No such file or directory");
}

TEST(a_node_serves_the_settings_of_its_file)
{
    /* The game's setting from the file, quoted, between comments and blank lines; a
     * misspelt variable is a warning and the node starts. */
    char conf[64];
    temp_file(conf, "# the quick game, without its levelup broadcast\n"
                    "\n"
                    "  quick.broadcast = \"false\"\n"
                    "net.heartbeat = 5   \n");
    ASSERT_EQ(setenv("ATOLL_NET_MAXCONNS", "5", 1), 0);
    test_node n;
    start_quick(&n, (const char *[]){"--config", conf, NULL});
    ASSERT(node_log_contains(&n, "level=warn t=main msg=\"environment variable ATOLL_NET_MAXCONNS "
                                 "names no setting, ignored"));
    /* The test suite's own variables (ATOLL_BIN, and ATOLL_LOOPBACK_LINKS in make check's
     * second pass) are around every node it starts, and are no typo. */
    ASSERT(!node_log_contains(&n, "ATOLL_BIN"));
    ASSERT(!node_log_contains(&n, "ATOLL_LOOPBACK_LINKS"));
    atollc_sync *a = ENTER(&n, "alice"), *b = ENTER(&n, "bob");
    EXPECT_LEVELUP(a, 1);
    EXPECT_PUSH(a, "money", "{\"money\":10}");
    EXPECT_NO_PUSH(a, 300);
    EXPECT_NO_PUSH(b, 300);
    atollc_sync_free(a);
    atollc_sync_free(b);
    node_stop(&n);
    unsetenv("ATOLL_NET_MAXCONNS");
    unlink(conf);
}

/* ---- cluster flags that contradict each other ---------------------------------------- */

/* Nothing listens on port 1: a node that tried to reach this Redis would not get past
 * it, and every case below is refused before it tries. */
#define REDIS "--redis redis://127.0.0.1:1"
#define SECRET "--cluster-secret 0123456789abcdef"
#define ADVERTISE "--advertise 127.0.0.1:4701"

TEST(contradicting_cluster_flags_stop_the_node)
{
    /* Without --redis, the embedded node: all roles, no links. */
    NODE_REFUSES("--store memory --roles area",
                 "--roles needs --redis: a node with only some roles is part of a cluster");
    NODE_REFUSES("--store memory --roles gate,coordinator", "--roles needs --redis");
    NODE_REFUSES("--store memory " ADVERTISE, "--advertise needs --redis");
    NODE_REFUSES("--store memory " SECRET, "--cluster-secret needs --redis");
    NODE_REFUSES("--store memory --cluster-secret-file /nonexistent/secret",
                 "--cluster-secret-file needs --redis");
    /* With --redis: one secret, an address for links, a name. */
    NODE_REFUSES("--store memory " REDIS,
                 "--redis needs --cluster-secret-file PATH (or --cluster-secret)");
    NODE_REFUSES("--store memory " REDIS " " SECRET " --cluster-secret-file /nonexistent/secret",
                 "--cluster-secret and --cluster-secret-file both give the cluster secret: "
                 "give one");
    NODE_REFUSES("--store memory " REDIS " --cluster-secret too-short",
                 "--cluster-secret must be at least 16 bytes");
    NODE_REFUSES("--store memory " REDIS " " SECRET " --node-id g1",
                 "--redis needs --advertise HOST:PORT");
    NODE_REFUSES("--store memory " REDIS " " SECRET " " ADVERTISE,
                 "--redis needs --node-id NAME");
    NODE_REFUSES("--store memory " REDIS " " SECRET " " ADVERTISE " --node-id g1 --set node.id=2",
                 "node.id cannot be given with --redis: the cluster assigns each node its "
                 "number; use --node-id NAME to name this node");
    /* The harness gives every refused start --listen: an area node is told to listen. */
    NODE_REFUSES("--store memory " REDIS " " SECRET " " ADVERTISE " --node-id a1 --roles area",
                 "--listen on a node without the gate role (--roles area): only gates listen "
                 "for clients");
    /* An area node of a cluster on this machine's SQLite file, given or by default. */
    NODE_REFUSES(REDIS " " SECRET " " ADVERTISE " --node-id a1 --roles gate,area",
                 "an area node of a cluster (--roles gate,area with --redis) needs a shared "
                 "store, --store postgres://USER@HOST:PORT/DB");
    NODE_REFUSES(REDIS " " SECRET " " ADVERTISE " --node-id a1 --store sqlite:/nonexistent/a.db",
                 "needs a shared store");
    NODE_REFUSES("--store memory " REDIS " " SECRET " --advertise 127.0.0.1:4702 --node-id g1 "
                 "--roles gate --listen 127.0.0.1:4702",
                 "--advertise 127.0.0.1:4702 is the --listen address 127.0.0.1:4702");
    /* Timing, here from the environment. */
    ASSERT_EQ(setenv("ATOLL_CLUSTER_BEAT_MS", "800", 1), 0);
    NODE_REFUSES("--store memory", "cluster.beat_ms (800) must be below half of "
                                   "cluster.lease_ms (1500)");
    unsetenv("ATOLL_CLUSTER_BEAT_MS");

    /* The secret file: missing, or too short (config_test shows its content is never said). */
    NODE_REFUSES("--store memory " REDIS " --cluster-secret-file /nonexistent/cluster-secret "
                 ADVERTISE " --node-id g1 --roles gate",
                 "cannot open --cluster-secret-file /nonexistent/cluster-secret: No such file "
                 "or directory");
    char secret[64], args[256], want[128];
    temp_file(secret, "fifteen-bytes!!\n");
    snprintf(args, sizeof args, "--store memory " REDIS " --cluster-secret-file %s " ADVERTISE
             " --node-id g1 --roles gate", secret);
    snprintf(want, sizeof want, "--cluster-secret-file %s holds fewer than 16 bytes", secret);
    NODE_REFUSES(args, want);
    unlink(secret);
}

TEST_MAIN(levelup_and_info_count_up_from_zero, levelup_reaches_the_whole_area_money_only_the_sender,
          broadcast_off_leaves_only_the_money_push, areas_setting_spreads_players_by_uid_hash,
          pipelined_levelups_are_answered_in_order, unknown_handler_gets_500,
          levelup_before_entry_gets_500, bad_game_settings_stop_the_node,
          settings_come_from_the_file_then_the_environment_then_the_command_line,
          a_node_serves_the_settings_of_its_file, contradicting_cluster_flags_stop_the_node)
