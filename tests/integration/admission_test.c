/* admission_test.c -- a game's own admission, asked of one of its areas
 * (atoll_entry.admit_area): it can refuse an entry with its own code and message, take
 * its time, or not answer at all (503 after the deadline); a refused entry touches
 * nothing of the uid. Real node processes with the test game: its entry hook names the
 * area of the body's "admit", whose t.admit refuses uids on the ban list (t.ban) and
 * answers after the body's "wait_ms".
 */
#include "game_client.h"
#include "harness.h"
#include "test.h"

#include <stdio.h>
#include <string.h>

static void
start_game(test_node *n)
{
    node_start_testgame(n, (const char *[]){"--set", "session.resume_ms=0", NULL});
}

/* A new connection's gate.entry with body, answered want. */
static atollc_sync *
entry_(test_node *n, const char *body, const char *want, int line)
{
    atollc_sync *s = gc_connect_(n, ATOLLC_TCP, 1, __FILE__, line);
    gc_expect_reply_(s, "gate.entry", body, want, __FILE__, line);
    return s;
}
#define ENTRY(n, body, want) entry_((n), (body), (want), __LINE__)

TEST(the_games_area_admits_refuses_and_takes_its_time)
{
    test_node n;
    start_game(&n);
    /* The gatekeeper is an area like any other: here, one a player opened. */
    atollc_sync *keeper = ENTER_WITH(&n, "keeper", ((const char *[]){"area", "gk", NULL}),
                                     "{\"code\":200,\"uid\":\"keeper\",\"area\":\"gk\"}");
    atollc_sync *a = ENTRY(&n, "{\"uid\":\"alice\",\"admit\":\"gk\"}",
                           "{\"code\":200,\"uid\":\"alice\",\"area\":\"t-1\"}");
    EXPECT_REPLY(a, "t.incr", "{}", "{\"code\":200,\"n\":1,\"area\":\"t-1\"}");

    /* mallory is playing (logged in before the ban); the ban refuses a new login with
     * the game's code and message, and the player already in is left alone. */
    atollc_sync *m = ENTER(&n, "mallory");
    EXPECT_PUSH(m, "onEnter", NULL);
    EXPECT_REPLY(keeper, "t.ban", "{\"uid\":\"mallory\"}", "{\"code\":200,\"admitted\":1}");
    atollc_sync *m2 = ENTRY(&n, "{\"uid\":\"mallory\",\"admit\":\"gk\"}",
                            "{\"code\":403,\"message\":\"mallory is banned\"}");
    EXPECT_NO_PUSH(m, 100);
    EXPECT_REPLY(m, "t.incr", "{}", "{\"code\":200,\"n\":1,\"area\":\"t-1\"}");
    /* The refused connection stays open and may enter as someone else. */
    EXPECT_REPLY(m2, "gate.entry", "{\"uid\":\"bob\",\"admit\":\"gk\"}",
                 "{\"code\":200,\"uid\":\"bob\",\"area\":\"t-1\"}");

    /* An admission that answers later (from a timer in the gatekeeper). */
    uint64_t t0 = gc_now_us();
    atollc_sync *c = ENTRY(&n, "{\"uid\":\"carol\",\"admit\":\"gk\",\"wait_ms\":300}",
                           "{\"code\":200,\"uid\":\"carol\",\"area\":\"t-1\"}");
    ASSERT(gc_now_us() - t0 >= 290000);

    /* One that does not answer in time, and one asked of an area that does not exist:
     * refused 503, with a log line. */
    atollc_sync *d = ENTRY(&n, "{\"uid\":\"dave\",\"admit\":\"gk\",\"wait_ms\":2000,\"admit_ms\":100}",
                           "{\"code\":503,\"message\":\"admission unavailable: timed out\"}");
    atollc_sync *e = ENTRY(&n, "{\"uid\":\"erin\",\"admit\":\"nosuch\"}",
                           "{\"code\":503,*");
    ASSERT(node_log_contains(&n, "admission call failed, entry refused"));
    /* A route the game does not have is refused at once. */
    atollc_sync *f = ENTRY(&n, "{\"uid\":\"frank\",\"admit\":\"gk\",\"admit_route\":\"t.nosuch\"}",
                           "{\"code\":500,*");
    atollc_sync_free(a);
    atollc_sync_free(m);
    atollc_sync_free(m2);
    atollc_sync_free(c);
    atollc_sync_free(d);
    atollc_sync_free(e);
    atollc_sync_free(f);
    atollc_sync_free(keeper);
    node_stop(&n);
}

TEST(a_connection_that_goes_during_its_admission_leaves_nothing)
{
    test_node n;
    start_game(&n);
    atollc_sync *keeper = ENTER_WITH(&n, "keeper", ((const char *[]){"area", "gk", NULL}),
                                     "{\"code\":200,\"uid\":\"keeper\",\"area\":\"gk\"}");
    for (int i = 0; i < 20; i++) {
        atollc_sync *s = CONNECT(&n);
        char body[128];
        snprintf(body, sizeof body,
                 "{\"uid\":\"gone-%d\",\"area\":\"gk\",\"admit\":\"gk\",\"wait_ms\":%d}", i,
                 i % 4 * 20);
        ASSERT_EQ(atollc_sync_notify(s, "gate.entry", body), ATOLLC_OK);
        atollc_sync_pump(s, i % 3 * 10);
        atollc_sync_free(s);
    }
    atollc_sync_pump(keeper, 200);
    /* Every gone-* that got into gk left again; the node stops clean (ASan: nothing
     * of the waiting entries leaked). */
    atoll_value *v = REQUEST_VALUE(keeper, "t.presence", "{}");
    ASSERT_EQ(jint(v, "players"), 1);
    atoll_unref(v);
    atollc_sync_free(keeper);
    node_stop(&n);
}

TEST_MAIN(the_games_area_admits_refuses_and_takes_its_time,
          a_connection_that_goes_during_its_admission_leaves_nothing)
