/* quick_test.c -- the `quick` example game (examples/quick) against a real node with two
 * workers, through the C client library: the level/money sequence of area.levelup and
 * area.info, who gets the levelup and money pushes, the quick.broadcast and
 * quick.areas settings, the order of pipelined requests, and the error answers for an
 * unknown handler and for a request sent before gate.entry.
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
                    "unknown setting 'quick.area' (the game's settings: quick.areas, quick.broadcast)");
    /* The framework's own namespaces are checked as before. */
    REFUSED_SETTING("session.resume=5", "unknown setting 'session.resume'");
}

TEST_MAIN(levelup_and_info_count_up_from_zero, levelup_reaches_the_whole_area_money_only_the_sender,
          broadcast_off_leaves_only_the_money_push, areas_setting_spreads_players_by_uid_hash,
          pipelined_levelups_are_answered_in_order, unknown_handler_gets_500,
          levelup_before_entry_gets_500, bad_game_settings_stop_the_node)
