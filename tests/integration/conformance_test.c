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
    char *resp = NULL;
    const char *body = "{\"msg\":\"hi\",\"n\":[1,2,3],\"u\":\"\xe4\xbd\xa0\xe5\xa5\xbd\"}";
    ASSERT_EQ(atollc_sync_request(s, "echo.echo", body, &resp, 5000), ATOLLC_OK);
    ASSERT_STR(resp, body);
    free(resp);
    /* An empty object, and a body that is not JSON (handled as {}). */
    ASSERT_EQ(atollc_sync_request(s, "echo.echo", "{}", &resp, 5000), ATOLLC_OK);
    ASSERT_STR(resp, "{}");
    free(resp);
    ASSERT_EQ(atollc_sync_request(s, "echo.echo", "not json", &resp, 5000), ATOLLC_OK);
    ASSERT_STR(resp, "{}");
    free(resp);
    /* Without route compression too. */
    atollc_sync *plain = CONNECT_WITH(&n, t, 0);
    ASSERT_EQ(atollc_sync_request(plain, "echo.echo", "[true,null]", &resp, 5000), ATOLLC_OK);
    ASSERT_STR(resp, "[true,null]");
    free(resp);
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
    char body[64], *resp = NULL;
    for (int i = 0; i < 17000; i++) {
        snprintf(body, sizeof body, "{\"i\":%d}", i);
        ASSERT_EQ(atollc_sync_request(s, "echo.echo", body, &resp, 5000), ATOLLC_OK);
        ASSERT_STR(resp, body);
        free(resp);
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
    ASSERT_EQ(atollc_sync_wait_push(a, &route, &body, 5000), ATOLLC_OK);
    ASSERT_STR(route, "onPush");
    ASSERT_STR(body, "{\"p\":1}");
    free(route);
    free(body);
    ASSERT_EQ(atollc_sync_notify(b, "echo.broadcast", "{\"say\":\"hi\"}"), ATOLLC_OK);
    atollc_sync *both[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ(atollc_sync_wait_push(both[i], &route, &body, 5000), ATOLLC_OK);
        ASSERT_STR(route, "onChat");
        ASSERT_STR(body, "{\"say\":\"hi\"}");
        free(route);
        free(body);
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
    char *resp = NULL, *kick = NULL;
    ASSERT_EQ(atollc_sync_request(s, "echo.kick", "{}", &resp, 5000), ATOLLC_OK);
    ASSERT_STR(resp, "{\"code\":200}");
    free(resp);
    ASSERT_EQ(atollc_sync_wait_close(s, &kick, 5000), ATOLLC_OK);
    ASSERT_STR(kick, "{\"reason\":\"kick\"}");
    free(kick);
    ASSERT(!atollc_sync_is_open(s));
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
    ASSERT_EQ(atollc_sync_request(s, "echo.nosuch", "{}", &resp, 5000), ATOLLC_OK);
    ASSERT_STR(resp, "{\"code\":500,\"message\":\"no handler for route\"}");
    free(resp);
    ASSERT_EQ(atollc_sync_request(s, "nosuchserver.handler.method", "{}", &resp, 5000),
              ATOLLC_OK);
    ASSERT(strncmp(resp, "{\"code\":500", 11) == 0);
    free(resp);
    /* A route without a dot gets no answer at all. */
    ASSERT_EQ(atollc_sync_request(s, "nodots", "{}", &resp, 500), ATOLL_ETIMEDOUT);
    /* The session still works after all that. */
    ASSERT_EQ(atollc_sync_request(s, "echo.echo", "{\"ok\":1}", &resp, 5000), ATOLLC_OK);
    ASSERT_STR(resp, "{\"ok\":1}");
    free(resp);
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
    char *resp = NULL;
    ASSERT_EQ(atollc_sync_request(s, "echo.echo", "{}", &resp, 5000), ATOLLC_OK);
    free(resp);
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
    char *resp = NULL, *kick = NULL;
    ASSERT_EQ(atollc_sync_request(a, "gate.entry", "{\"uid\":\"u1\"}", &resp, 5000), ATOLLC_OK);
    ASSERT_STR(resp, "{\"code\":200,\"uid\":\"u1\"}");
    free(resp);
    ASSERT_EQ(atollc_sync_request(b, "gate.entry", "{\"uid\":\"u1\"}", &resp, 5000), ATOLLC_OK);
    ASSERT_STR(resp, "{\"code\":200,\"uid\":\"u1\"}");
    free(resp);
    ASSERT_EQ(atollc_sync_wait_close(a, &kick, 5000), ATOLLC_OK);
    ASSERT_STR(kick, "{\"reason\":\"duplicate login\"}");
    free(kick);
    ASSERT_EQ(atollc_sync_request(b, "echo.echo", "{}", &resp, 5000), ATOLLC_OK);
    free(resp);
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
