/* safety_test.c -- game code that holds on to things past its callback: kept requests
 * get a deadline and are answered for the game when it passes, or freed when their
 * client goes; players are reached later by uid (atoll_push_uid), which says when the
 * player is gone. Real node processes with the test game (tests/games/testgame.c).
 */
#include "game_client.h"
#include "harness.h"
#include "test.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static void
start_game(test_node *n)
{
    /* Players leave as their clients go: these tests watch what happens then. */
    node_start_testgame(n, (const char *[]){"--set", "session.resume_ms=0", NULL});
}

TEST(a_kept_request_past_its_deadline_is_answered_for_the_game)
{
    test_node n;
    start_game(&n);
    atollc_sync *a = ENTER(&n, "keeper");
    uint64_t t0 = gc_now_us();
    EXPECT_REPLY(a, "t.keepfor", "{\"ms\":150}", "{\"code\":500,\"message\":\"request timed out\"}");
    ASSERT(gc_now_us() - t0 >= 140000);
    ASSERT(node_log_contains(&n, "kept request not answered before its deadline"));
    ASSERT(node_log_contains(&n, "route=t.keepfor"));
    /* The area goes on. */
    EXPECT_REPLY(a, "t.incr", "{}", "{\"code\":200,\"n\":1,\"area\":\"t-1\"}");
    atollc_sync_free(a);
    node_stop(&n);
}

TEST(a_kept_request_of_a_client_that_went_ends_quietly)
{
    test_node n;
    start_game(&n);
    atollc_sync *watcher = ENTER(&n, "watcher");
    atollc_sync *b = ENTER(&n, "leaver");
    ASSERT_EQ(atollc_sync_notify(b, "t.keepfor", "{\"ms\":300}"), ATOLLC_OK);
    atollc_sync_pump(b, 50);
    atollc_sync_free(b);
    atollc_sync_pump(watcher, 600);
    /* Its client went: the deadline frees it without the line that tells of a game that
     * forgot to answer. (Under ASan the node's exit also proves it was freed.) */
    ASSERT(!node_log_contains(&n, "kept request not answered before its deadline"));
    atollc_sync_free(watcher);
    node_stop(&n);
}

TEST(players_are_reached_later_by_uid_and_a_gone_one_is_an_error)
{
    test_node n;
    start_game(&n);
    atollc_sync *a = ENTER(&n, "alice");
    atollc_sync *b = ENTER(&n, "bob");
    EXPECT_PUSH(a, "onEnter", NULL);
    EXPECT_PUSH(b, "onEnter", NULL);
    EXPECT_REPLY(a, "t.pushlater", "{\"uid\":\"bob\",\"ms\":50}", "{\"code\":200}");
    EXPECT_PUSH(b, "onLater", "{\"to\":\"bob\"}");
    EXPECT_REPLY(a, "t.laterrc", "{}", "{\"code\":200,\"rc\":\"OK\"}");

    /* bob leaves before the timer: the push by uid finds nobody and says so. */
    EXPECT_REPLY(a, "t.pushlater", "{\"uid\":\"bob\",\"ms\":200}", "{\"code\":200}");
    atollc_sync_free(b);
    atollc_sync_pump(a, 400);
    EXPECT_REPLY(a, "t.laterrc", "{}", "{\"code\":200,\"rc\":\"ENOENT\"}");
    EXPECT_NO_PUSH(a, 50);
    atollc_sync_free(a);
    node_stop(&n);
}

/* Game code that keeps an atoll_player* past its callback and pushes through it after
 * the player left: AddressSanitizer and ThreadSanitizer builds stop the node on the use
 * after free ("heap-use-after-free" in either's report); other builds refuse the push
 * (ATOLL_EINVAL) with an error line naming the function, and the node goes on. */
TEST(a_stale_player_pointer_is_caught)
{
    const char *san = getenv("ATOLL_SANITIZERS");
    bool sanitizer_sees_it =
        san != NULL && (strstr(san, "address") != NULL || strstr(san, "thread") != NULL);
    test_node n;
    start_game(&n);
    atollc_sync *a = ENTER(&n, "alice");
    atollc_sync *b = ENTER(&n, "bob");
    EXPECT_REPLY(b, "t.keepme", "{}", "{\"code\":200}");
    atollc_sync_free(b); /* bob leaves: the kept pointer now points at freed memory */
    atollc_sync_pump(a, 100);
    if (sanitizer_sees_it) {
        ASSERT_EQ(atollc_sync_notify(a, "t.usestale", "{}"), ATOLLC_OK);
        int status = node_wait_exit(&n, 10000);
        ASSERT(!WIFEXITED(status) || WEXITSTATUS(status) != 0);
        ASSERT(node_log_contains(&n, "heap-use-after-free"));
        node_remove_log(&n);
    } else {
        EXPECT_REPLY(a, "t.usestale", "{}", "{\"code\":200,\"rc\":\"EINVAL\"}");
        ASSERT(node_log_contains(&n, "atoll_push: stale atoll_player pointer"));
        EXPECT_REPLY(a, "t.incr", "{}", "{\"code\":200,\"n\":1,\"area\":\"t-1\"}");
        node_stop(&n);
    }
    atollc_sync_free(a);
}

TEST_MAIN(a_kept_request_past_its_deadline_is_answered_for_the_game,
          a_kept_request_of_a_client_that_went_ends_quietly,
          players_are_reached_later_by_uid_and_a_gone_one_is_an_error,
          a_stale_player_pointer_is_caught)
