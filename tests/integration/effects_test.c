/* effects_test.c -- the effects stage against a real node running the test game: what
 * a handler sends (replies, pushes to a player and to the area, kicks, moves, calls)
 * goes out when it returns successfully and is dropped when it fails, whose answer is
 * then the error. Through area "x" of tests/games/testgame.c (x.effects does what its
 * body asks, then fails when "fail" is true), on a node of two workers.
 */
#include "game_client.h"
#include "harness.h"
#include "test.h"

static void
start_game(test_node *n)
{
    node_start_testgame(n, NULL);
}

/* Enters uid into area x-<k> (created on demand) and takes its entry answer. */
static atollc_sync *
enter_x_(test_node *n, const char *uid, const char *area, int line)
{
    const char *fields[] = {"area", area, "type", "x", NULL};
    char want[160];
    snprintf(want, sizeof want, "{\"code\":200,\"uid\":\"%s\",\"area\":\"%s\"}", uid, area);
    return gc_enter_(n, uid, fields, want, __FILE__, line);
}
#define ENTER_X(n, uid, area) enter_x_((n), (uid), (area), __LINE__)

#define FAILED "{\"code\":500,\"message\":\"not allowed in this state\"}"

TEST(a_successful_handler_sends_everything)
{
    test_node n;
    start_game(&n);
    atollc_sync *a = ENTER_X(&n, "fx-a", "x-1");
    atollc_sync *b = ENTER_X(&n, "fx-b", "x-1");
    EXPECT_REPLY(a, "x.effects", "{\"push\":true,\"area\":true,\"reply\":true}",
                 "{\"code\":200,\"from\":\"handler\"}");
    EXPECT_PUSH(a, "onEffect", "{\"to\":\"player\"}");
    EXPECT_PUSH(a, "onEffect", "{\"to\":\"area\"}");
    EXPECT_PUSH(b, "onEffect", "{\"to\":\"area\"}");
    atollc_sync_free(a);
    atollc_sync_free(b);
    node_stop(&n);
}

TEST(a_failing_handler_sends_no_push_and_answers_the_error)
{
    test_node n;
    start_game(&n);
    atollc_sync *a = ENTER_X(&n, "fx-a", "x-1");
    atollc_sync *b = ENTER_X(&n, "fx-b", "x-1");
    /* Its own reply is dropped too: the client gets the handler's error instead. */
    EXPECT_REPLY(a, "x.effects", "{\"push\":true,\"area\":true,\"reply\":true,\"fail\":true}",
                 FAILED);
    EXPECT_NO_PUSH(a, 300);
    EXPECT_NO_PUSH(b, 300);
    /* The same request that succeeds pushes: the drop was the failure's doing. */
    EXPECT_REPLY(a, "x.effects", "{\"push\":true}", "{\"code\":200}");
    EXPECT_PUSH(a, "onEffect", "{\"to\":\"player\"}");
    atollc_sync_free(a);
    atollc_sync_free(b);
    node_stop(&n);
}

TEST(a_failing_handler_neither_kicks_nor_moves)
{
    test_node n;
    start_game(&n);
    atollc_sync *other = ENTER_X(&n, "fx-other", "x-2"); /* x-2 exists */
    atollc_sync *a = ENTER_X(&n, "fx-a", "x-1");
    EXPECT_REPLY(a, "x.effects", "{\"kick\":true,\"fail\":true}", FAILED);
    EXPECT_REPLY(a, "x.effects", "{\"move\":\"x-2\",\"fail\":true}", FAILED);
    /* Still connected, still in x-1. */
    atoll_value *v = REQUEST_VALUE(a, "x.info", "{}");
    ASSERT_STR(jstr(v, "area"), "x-1");
    atoll_unref(v);
    /* And when it succeeds, the move happens: the next request runs in x-2. */
    EXPECT_REPLY(a, "x.effects", "{\"move\":\"x-2\"}", "{\"code\":200}");
    v = REQUEST_VALUE(a, "x.info", "{}");
    ASSERT_STR(jstr(v, "area"), "x-2");
    atoll_unref(v);
    atollc_sync_free(a);
    atollc_sync_free(other);
    node_stop(&n);
}

TEST(a_failing_handler_s_call_is_cancelled_and_never_arrives)
{
    test_node n;
    start_game(&n);
    atollc_sync *other = ENTER_X(&n, "fx-other", "x-2");
    atollc_sync *a = ENTER_X(&n, "fx-a", "x-1");
    EXPECT_REPLY(a, "x.effects", "{\"call\":\"x-2\",\"fail\":true}", FAILED);
    /* The callback learnt it at once: the call never left. */
    atoll_value *v = REQUEST_VALUE(a, "x.data", "{}");
    ASSERT_STR(jstr(v, "state.call_status"), "ECANCELED");
    atoll_unref(v);
    v = REQUEST_VALUE(other, "x.notes", "{}");
    ASSERT(jget(v, "notes.0") == NULL);
    atoll_unref(v);
    /* A successful one arrives and is answered. */
    EXPECT_REPLY(a, "x.effects", "{\"call\":\"x-2\"}", "{\"code\":200}");
    for (int i = 0; i < 100; i++) {
        v = REQUEST_VALUE(a, "x.data", "{}");
        bool done = jstr(v, "state.call_status") && strcmp(jstr(v, "state.call_status"), "OK") == 0;
        atoll_unref(v);
        if (done)
            break;
        usleep(20 * 1000);
    }
    v = REQUEST_VALUE(a, "x.data", "{}");
    ASSERT_STR(jstr(v, "state.call_status"), "OK");
    atoll_unref(v);
    v = REQUEST_VALUE(other, "x.notes", "{}");
    ASSERT_STR(jstr(v, "notes.0.from"), "x-1");
    ASSERT(jget(v, "notes.1") == NULL);
    atoll_unref(v);
    atollc_sync_free(a);
    atollc_sync_free(other);
    node_stop(&n);
}

TEST_MAIN(a_successful_handler_sends_everything,
          a_failing_handler_sends_no_push_and_answers_the_error,
          a_failing_handler_neither_kicks_nor_moves,
          a_failing_handler_s_call_is_cancelled_and_never_arrives)
