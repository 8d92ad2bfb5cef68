/* conformance_test.c -- the same conformance suite over raw TCP and over WebSocket,
 * through the C client library against a real node (protocol checklist: handshake,
 * request/response, notify, push, broadcast, kick, heartbeats, error answers, route
 * compression both ways, sessions).
 *
 * CONFORMANCE_TESTS(prefix, transport) emits one test per behaviour for a transport,
 * so a behaviour that works on one transport and not the other shows up by name.
 */
#include "game_client.h"
#include "harness.h"
#include "test.h"

static void
check_echo(atollc_transport t)
{
    test_node n;
    node_start(&n, NULL);
    atollc_sync *s = CONNECT_WITH(&n, t, 1);
    const char *body = "{\"msg\":\"hi\",\"n\":[1,2,3],\"u\":\"\xe4\xbd\xa0\xe5\xa5\xbd\"}";
    EXPECT_REPLY(s, "echo.echo", body, body);
    /* An empty object, and a body that is not JSON (handled as {}). */
    EXPECT_REPLY(s, "echo.echo", "{}", "{}");
    EXPECT_REPLY(s, "echo.echo", "not json", "{}");
    /* Without route compression too. */
    atollc_sync *plain = CONNECT_WITH(&n, t, 0);
    EXPECT_REPLY(plain, "echo.echo", "[true,null]", "[true,null]");
    atollc_sync_free(plain);
    atollc_sync_free(s);
    node_stop(&n);
}

static void
check_ids_cross_varint_sizes(atollc_transport t)
{
    test_node n;
    node_start(&n, (const char *[]){"--set", "net.rate_limit=0", NULL});
    atollc_sync *s = CONNECT_WITH(&n, t, 1);
    /* Sequential requests with growing ids cross the 1-, 2- and 3-byte varint sizes. */
    char body[64];
    for (int i = 0; i < 17000; i++) {
        snprintf(body, sizeof body, "{\"i\":%d}", i);
        EXPECT_REPLY(s, "echo.echo", body, body);
    }
    atollc_sync_free(s);
    node_stop(&n);
}

static void
check_push_and_broadcast(atollc_transport t)
{
    test_node n;
    node_start(&n, NULL);
    atollc_sync *a = CONNECT_WITH(&n, t, 1);
    atollc_sync *b = CONNECT_WITH(&n, t, 0); /* b gets pushes with string routes resolved */
    char *route = NULL, *body = NULL;
    ASSERT_EQ(atollc_sync_notify(a, "echo.push", "{\"p\":1}"), ATOLLC_OK);
    EXPECT_PUSH(a, "onPush", "{\"p\":1}");
    ASSERT_EQ(atollc_sync_notify(b, "echo.broadcast", "{\"say\":\"hi\"}"), ATOLLC_OK);
    atollc_sync *both[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        EXPECT_PUSH(both[i], "onChat", "{\"say\":\"hi\"}");
    }
    /* A notify never gets a response; nothing else is queued for a. */
    ASSERT_EQ(atollc_sync_wait_push(a, &route, &body, 300), ATOLL_ETIMEDOUT);
    atollc_sync_free(a);
    atollc_sync_free(b);
    node_stop(&n);
}

static void
check_kick(atollc_transport t)
{
    test_node n;
    node_start(&n, NULL);
    atollc_sync *s = CONNECT_WITH(&n, t, 1);
    EXPECT_REPLY(s, "echo.kick", "{}", "{\"code\":200}");
    EXPECT_KICK(s, "kick");
    atollc_sync_free(s);
    node_stop(&n);
}

static void
check_errors(atollc_transport t)
{
    test_node n;
    node_start(&n, NULL);
    atollc_sync *s = CONNECT_WITH(&n, t, 1);
    char *resp = NULL;
    EXPECT_REPLY(s, "echo.nosuch", "{}",
                 "{\"code\":500,\"message\":\"no handler for route\"}");
    EXPECT_REPLY(s, "nosuchserver.handler.method", "{}", "{\"code\":500*");
    /* A route without a dot gets no answer at all. */
    ASSERT_EQ(atollc_sync_request(s, "nodots", "{}", &resp, 500), ATOLL_ETIMEDOUT);
    /* The session still works after all that. */
    EXPECT_REPLY(s, "echo.echo", "{\"ok\":1}", "{\"ok\":1}");
    atollc_sync_free(s);
    node_stop(&n);
}

static void
check_heartbeats_keep_alive(atollc_transport t)
{
    test_node n;
    node_start(&n, (const char *[]){"--set", "net.heartbeat=1", NULL});
    atollc_sync *s = CONNECT_WITH(&n, t, 1);
    ASSERT_EQ(atollc_heartbeat_interval(atollc_sync_client(s)), 1);
    /* 3.5 s of silence from the game: the client's heartbeats keep it open (the
     * server would close it after 2 s without them). */
    atollc_sync_pump(s, 3500);
    ASSERT(atollc_sync_is_open(s));
    free(REQUEST_TEXT(s, "echo.echo", "{}"));
    atollc_sync_free(s);
    node_stop(&n);
}

static void
check_duplicate_login(atollc_transport t)
{
    test_node n;
    node_start(&n, NULL);
    atollc_sync *a = CONNECT_WITH(&n, t, 1);
    atollc_sync *b = CONNECT_WITH(&n, t, 1);
    char *kick = NULL;
    /* The echo game's answer names the area of the connection's worker. */
    const char *want = "{\"code\":200,\"uid\":\"u1\",\"area\":\"echo-";
    char *got = REQUEST_TEXT(a, "gate.entry", "{\"uid\":\"u1\"}");
    ASSERT(strncmp(got, want, strlen(want)) == 0);
    free(got);
    got = REQUEST_TEXT(b, "gate.entry", "{\"uid\":\"u1\"}");
    ASSERT(strncmp(got, want, strlen(want)) == 0);
    free(got);
    ASSERT_EQ(atollc_sync_wait_close(a, &kick, 5000), ATOLLC_OK);
    ASSERT_STR(kick, "{\"reason\":\"duplicate login\"}");
    free(kick);
    free(REQUEST_TEXT(b, "echo.echo", "{}"));
    atollc_sync_free(a);
    atollc_sync_free(b);
    node_stop(&n);
}

#define CONFORMANCE_TESTS(prefix, transport)                                                \
    TEST(prefix##_echo) { check_echo(transport); }                                          \
    TEST(prefix##_ids_cross_varint_sizes) { check_ids_cross_varint_sizes(transport); }                      \
    TEST(prefix##_push_and_broadcast) { check_push_and_broadcast(transport); }              \
    TEST(prefix##_kick) { check_kick(transport); }                                          \
    TEST(prefix##_errors) { check_errors(transport); }                                      \
    TEST(prefix##_heartbeats_keep_alive) { check_heartbeats_keep_alive(transport); }        \
    TEST(prefix##_duplicate_login) { check_duplicate_login(transport); }

CONFORMANCE_TESTS(tcp, ATOLLC_TCP)
CONFORMANCE_TESTS(ws, ATOLLC_WS)

TEST_MAIN(tcp_echo, tcp_ids_cross_varint_sizes, tcp_push_and_broadcast, tcp_kick, tcp_errors,
          tcp_heartbeats_keep_alive, tcp_duplicate_login, ws_echo, ws_ids_cross_varint_sizes,
          ws_push_and_broadcast, ws_kick, ws_errors, ws_heartbeats_keep_alive,
          ws_duplicate_login)
