/* chat_test.c -- the `chat` example game (examples/chat) against a real node with two
 * workers, through the C client library: onChat reaches exactly the room's members,
 * onJoin/onLeave reach the others, the members list, moving between rooms on one
 * connection, leaving to the lobby, validation of room.say and of room names, and a
 * room shared by connections of both workers.
 */
#include "harness.h"
#include "test.h"

#include <atollc/atollc.h>

/* ---- helpers: each takes the caller's line, so a failure names the test's line ---- */

static void
fail_at(int line, const char *what, const char *got, const char *want)
{
    char m[1400];
    snprintf(m, sizeof m, "%s: got \"%.600s\", want \"%.600s\"", what, got ? got : "(null)",
             want ? want : "(null)");
    test_fail_(__FILE__, line, m);
}

static atollc_sync *
connect_to(test_node *n)
{
    atollc_opts o;
    atollc_opts_init(&o);
    o.port = n->port;
    int err = 0;
    atollc_sync *s = atollc_sync_connect(&o, &err);
    if (s == NULL) {
        fprintf(stderr, "connect: %s\n", atoll_strerror(err));
        node_dump_log(n);
    }
    ASSERT(s != NULL);
    return s;
}

/* Sends a request; the response must be want exactly (want ending in "*": a prefix). */
static void
expect_reply_(atollc_sync *s, const char *route, const char *body, const char *want, int line)
{
    char *resp = NULL;
    int rc = atollc_sync_request(s, route, body, &resp, 5000);
    if (rc != ATOLLC_OK)
        fail_at(line, route, atoll_strerror(rc), want);
    size_t wl = strlen(want);
    int ok = want[wl - 1] == '*' ? strncmp(resp, want, wl - 1) == 0 : strcmp(resp, want) == 0;
    if (!ok)
        fail_at(line, route, resp, want);
    free(resp);
}
#define EXPECT_REPLY(s, route, body, want) expect_reply_((s), (route), (body), (want), __LINE__)

/* The next push must have this route, and this body unless body is NULL. */
static void
expect_push_(atollc_sync *s, const char *route, const char *body, int line)
{
    char *r = NULL, *b = NULL;
    int rc = atollc_sync_wait_push(s, &r, &b, 5000);
    if (rc != ATOLLC_OK)
        fail_at(line, "push", atoll_strerror(rc), body ? body : route);
    if (strcmp(r, route) != 0)
        fail_at(line, "push route", r, route);
    if (body != NULL && strcmp(b, body) != 0)
        fail_at(line, "push body", b, body);
    free(r);
    free(b);
}
#define EXPECT_PUSH(s, route, body) expect_push_((s), (route), (body), __LINE__)

/* No push may arrive within ms. */
static void
expect_no_push_(atollc_sync *s, int ms, int line)
{
    char *r = NULL, *b = NULL;
    int rc = atollc_sync_wait_push(s, &r, &b, ms);
    if (rc == ATOLLC_OK)
        fail_at(line, "unexpected push", b, r);
    if (rc != ATOLL_ETIMEDOUT)
        fail_at(line, "waiting for no push", atoll_strerror(rc), "a timeout");
}
#define EXPECT_NO_PUSH(s, ms) expect_no_push_((s), (ms), __LINE__)

/* Connects and enters the game as uid, in room (NULL: no room given, the lobby). */
static atollc_sync *
login_(test_node *n, const char *uid, const char *room, int line)
{
    atollc_sync *s = connect_to(n);
    char body[256];
    if (room != NULL)
        snprintf(body, sizeof body, "{\"uid\":\"%s\",\"room\":\"%s\"}", uid, room);
    else
        snprintf(body, sizeof body, "{\"uid\":\"%s\"}", uid);
    expect_reply_(s, "gate.entry", body, "{\"code\":200*", line);
    return s;
}
#define LOGIN(n, uid) login_((n), (uid), NULL, __LINE__)
#define LOGIN_TO(n, uid, room) login_((n), (uid), (room), __LINE__)

/* Builders of the bodies the game sends. */
static const char *
who(const char *uid, const char *room)
{
    static char buf[4][160];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, sizeof buf[0], "{\"uid\":\"%s\",\"room\":\"%s\"}", uid, room);
    return b;
}

static const char *
chat_line(const char *from, const char *room, const char *text)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "{\"from\":\"%s\",\"room\":\"%s\",\"text\":\"%s\"}", from, room,
             text);
    return buf;
}

static const char *
say_body(const char *text)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "{\"text\":\"%s\"}", text);
    return buf;
}

static void
start_chat(test_node *n)
{
    node_start(n, (const char *[]){"--game", "chat", NULL});
}

/* ---- tests ---------------------------------------------------------------------- */

TEST(chat_join_and_leave_reach_only_the_room)
{
    test_node n;
    start_chat(&n);
    atollc_sync *a = LOGIN(&n, "alice");
    atollc_sync *b = LOGIN(&n, "bob");
    EXPECT_PUSH(a, "onJoin", who("bob", "lobby"));
    atollc_sync *c = LOGIN(&n, "carol");
    EXPECT_PUSH(a, "onJoin", who("carol", "lobby"));
    EXPECT_PUSH(b, "onJoin", who("carol", "lobby"));

    /* alice opens "red": the lobby sees her go, nobody is in red to see her come. */
    EXPECT_REPLY(a, "room.join", "{\"room\":\"red\"}", "{\"code\":200,\"room\":\"red\"}");
    EXPECT_PUSH(b, "onLeave", who("alice", "lobby"));
    EXPECT_PUSH(c, "onLeave", who("alice", "lobby"));
    EXPECT_REPLY(b, "room.join", "{\"room\":\"red\"}", "{\"code\":200,\"room\":\"red\"}");
    EXPECT_PUSH(a, "onJoin", who("bob", "red"));
    EXPECT_PUSH(c, "onLeave", who("bob", "lobby"));

    /* A line in red reaches alice (the sender too) and bob, not carol in the lobby. */
    EXPECT_REPLY(a, "room.say", say_body("hi red"), "{\"code\":200}");
    EXPECT_PUSH(a, "onChat", chat_line("alice", "red", "hi red"));
    EXPECT_PUSH(b, "onChat", chat_line("alice", "red", "hi red"));
    EXPECT_REPLY(c, "room.say", say_body("anyone?"), "{\"code\":200}");
    EXPECT_PUSH(c, "onChat", chat_line("carol", "lobby", "anyone?"));
    EXPECT_NO_PUSH(a, 200);
    EXPECT_NO_PUSH(b, 200);
    EXPECT_NO_PUSH(c, 200);

    /* A disconnect is a leave too. */
    atollc_sync_free(b);
    EXPECT_PUSH(a, "onLeave", who("bob", "red"));
    EXPECT_NO_PUSH(c, 200);
    atollc_sync_free(a);
    atollc_sync_free(c);
    node_stop(&n);
}

TEST(chat_members_in_order_and_leave_to_lobby)
{
    test_node n;
    start_chat(&n);
    atollc_sync *a = LOGIN(&n, "alice");
    atollc_sync *b = LOGIN(&n, "bob");
    EXPECT_PUSH(a, "onJoin", who("bob", "lobby"));
    atollc_sync *c = LOGIN(&n, "carol");
    EXPECT_PUSH(a, "onJoin", who("carol", "lobby"));
    EXPECT_PUSH(b, "onJoin", who("carol", "lobby"));
    EXPECT_REPLY(b, "room.members", "{}",
                 "{\"code\":200,\"room\":\"lobby\",\"members\":[\"alice\",\"bob\",\"carol\"]}");

    EXPECT_REPLY(a, "room.join", "{\"room\":\"blue\"}", "{\"code\":200,\"room\":\"blue\"}");
    EXPECT_PUSH(b, "onLeave", who("alice", "lobby"));
    EXPECT_PUSH(c, "onLeave", who("alice", "lobby"));
    EXPECT_REPLY(a, "room.members", "{}",
                 "{\"code\":200,\"room\":\"blue\",\"members\":[\"alice\"]}");
    EXPECT_REPLY(c, "room.join", "{\"room\":\"blue\"}", "{\"code\":200,\"room\":\"blue\"}");
    EXPECT_PUSH(a, "onJoin", who("carol", "blue"));
    EXPECT_PUSH(b, "onLeave", who("carol", "lobby"));
    EXPECT_REPLY(c, "room.members", "{}",
                 "{\"code\":200,\"room\":\"blue\",\"members\":[\"alice\",\"carol\"]}");
    EXPECT_REPLY(b, "room.members", "{}",
                 "{\"code\":200,\"room\":\"lobby\",\"members\":[\"bob\"]}");

    /* room.leave goes back to the lobby, at the end of its order. */
    EXPECT_REPLY(a, "room.leave", "{}", "{\"code\":200,\"room\":\"lobby\"}");
    EXPECT_PUSH(c, "onLeave", who("alice", "blue"));
    EXPECT_PUSH(b, "onJoin", who("alice", "lobby"));
    EXPECT_REPLY(a, "room.members", "{}",
                 "{\"code\":200,\"room\":\"lobby\",\"members\":[\"bob\",\"alice\"]}");
    EXPECT_REPLY(a, "room.leave", "{}", "{\"code\":500,\"message\":\"already in the lobby\"}");

    /* Joining the room you are in answers and moves nobody: no onLeave/onJoin. */
    EXPECT_REPLY(a, "room.join", "{\"room\":\"lobby\"}", "{\"code\":200,\"room\":\"lobby\"}");
    EXPECT_REPLY(c, "room.join", "{\"room\":\"blue\"}", "{\"code\":200,\"room\":\"blue\"}");
    EXPECT_REPLY(a, "room.members", "{}",
                 "{\"code\":200,\"room\":\"lobby\",\"members\":[\"bob\",\"alice\"]}");
    EXPECT_NO_PUSH(a, 200);
    EXPECT_NO_PUSH(b, 200);
    EXPECT_NO_PUSH(c, 200);
    atollc_sync_free(a);
    atollc_sync_free(b);
    atollc_sync_free(c);
    node_stop(&n);
}

TEST(chat_moving_keeps_the_connection)
{
    test_node n;
    start_chat(&n);
    atollc_sync *w1 = LOGIN_TO(&n, "w1", "r1");
    atollc_sync *w2 = LOGIN_TO(&n, "w2", "r2");
    atollc_sync *x = LOGIN(&n, "mover");
    atollc_sync *watch[2] = {w1, w2};
    const char *rooms[2] = {"r1", "r2"};

    /* Hop r1, r2, r1, ... on one connection: each say lands in the room just joined. */
    for (int hop = 0; hop < 10; hop++) {
        int here = hop % 2, there = 1 - here;
        char body[64], want[64], text[32];
        snprintf(body, sizeof body, "{\"room\":\"%s\"}", rooms[here]);
        snprintf(want, sizeof want, "{\"code\":200,\"room\":\"%s\"}", rooms[here]);
        EXPECT_REPLY(x, "room.join", body, want);
        EXPECT_PUSH(watch[here], "onJoin", who("mover", rooms[here]));
        if (hop > 0)
            EXPECT_PUSH(watch[there], "onLeave", who("mover", rooms[there]));
        snprintf(text, sizeof text, "hop %d", hop);
        EXPECT_REPLY(x, "room.say", say_body(text), "{\"code\":200}");
        EXPECT_PUSH(x, "onChat", chat_line("mover", rooms[here], text));
        EXPECT_PUSH(watch[here], "onChat", chat_line("mover", rooms[here], text));
        EXPECT_NO_PUSH(watch[there], 50);
        ASSERT(atollc_sync_is_open(x));
    }
    /* After the last hop (to r2) the members say where mover is. */
    EXPECT_REPLY(x, "room.members", "{}",
                 "{\"code\":200,\"room\":\"r2\",\"members\":[\"w2\",\"mover\"]}");
    EXPECT_REPLY(w1, "room.members", "{}",
                 "{\"code\":200,\"room\":\"r1\",\"members\":[\"w1\"]}");
    EXPECT_NO_PUSH(x, 200);
    EXPECT_NO_PUSH(w1, 100);
    EXPECT_NO_PUSH(w2, 100);
    atollc_sync_free(x);
    atollc_sync_free(w1);
    atollc_sync_free(w2);
    node_stop(&n);
}

TEST(chat_say_validation)
{
    test_node n;
    start_chat(&n);
    atollc_sync *a = LOGIN(&n, "alice");
    atollc_sync *b = LOGIN(&n, "bob");
    EXPECT_PUSH(a, "onJoin", who("bob", "lobby"));

    EXPECT_REPLY(a, "room.say", "{}", "{\"code\":500*");
    EXPECT_REPLY(a, "room.say", "{\"text\":\"\"}", "{\"code\":500*");
    EXPECT_REPLY(a, "room.say", "{\"text\":5}", "{\"code\":500*");
    EXPECT_REPLY(a, "room.say", "{\"text\":[\"hi\"]}", "{\"code\":500*");
    EXPECT_REPLY(a, "room.say", "{\"text\":null}", "{\"code\":500*");
    EXPECT_REPLY(a, "room.say", "not json", "{\"code\":500*");

    /* 512 bytes is the most; the limit counts bytes, not characters. */
    char text[600];
    memset(text, 'x', 513);
    text[513] = '\0';
    EXPECT_REPLY(a, "room.say", say_body(text), "{\"code\":500*");
    text[512] = '\0';
    EXPECT_REPLY(a, "room.say", say_body(text), "{\"code\":200}");
    EXPECT_PUSH(a, "onChat", chat_line("alice", "lobby", text));
    EXPECT_PUSH(b, "onChat", chat_line("alice", "lobby", text));
    text[0] = '\0';
    for (int i = 0; i < 171; i++) /* 171 x 3 bytes = 513 */
        strcat(text, "\xe2\x82\xac");
    EXPECT_REPLY(a, "room.say", say_body(text), "{\"code\":500*");
    text[170 * 3] = '\0';
    EXPECT_REPLY(a, "room.say", say_body(text), "{\"code\":200}");
    EXPECT_PUSH(a, "onChat", NULL);
    EXPECT_PUSH(b, "onChat", NULL);

    /* The refused lines reached nobody. */
    EXPECT_NO_PUSH(a, 200);
    EXPECT_NO_PUSH(b, 200);
    atollc_sync_free(a);
    atollc_sync_free(b);
    node_stop(&n);
}

TEST(chat_bad_room_names_are_refused)
{
    test_node n;
    start_chat(&n);
    const char *bad[] = {
        "\"bad name\"", "\"\"", "\"abcdefghijklmnopqrstuvwxyz0123456\"" /* 33 */, "\"a/b\"",
        "\"caf\xc3\xa9\"", "\"a.b\"", "7", "null", "[\"lobby\"]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        atollc_sync *s = connect_to(&n);
        char body[160];
        snprintf(body, sizeof body, "{\"uid\":\"bad%zu\",\"room\":%s}", i, bad[i]);
        EXPECT_REPLY(s, "gate.entry", body, "{\"code\":500*");
        /* Refused: the player is in no room. */
        EXPECT_REPLY(s, "room.members", "{}", "{\"code\":500*");
        atollc_sync_free(s);
    }
    /* The longest name and every kind of character allowed. */
    atollc_sync *a = LOGIN_TO(&n, "alice", "abcdefghijklmnopqrstuvwxyz012345");
    EXPECT_REPLY(a, "room.members", "{}",
                 "{\"code\":200,\"room\":\"abcdefghijklmnopqrstuvwxyz012345\","
                 "\"members\":[\"alice\"]}");
    EXPECT_REPLY(a, "room.join", "{\"room\":\"Az_09-x\"}", "{\"code\":200,\"room\":\"Az_09-x\"}");

    /* room.join checks the name the same way, and a refused join moves nobody. */
    const char *bad_join[] = {"{}", "{\"room\":\"no spaces\"}", "{\"room\":\"\"}",
                              "{\"room\":12}",
                              "{\"room\":\"abcdefghijklmnopqrstuvwxyz0123456\"}"};
    for (size_t i = 0; i < sizeof bad_join / sizeof bad_join[0]; i++)
        EXPECT_REPLY(a, "room.join", bad_join[i], "{\"code\":500*");
    EXPECT_REPLY(a, "room.members", "{}",
                 "{\"code\":200,\"room\":\"Az_09-x\",\"members\":[\"alice\"]}");
    atollc_sync_free(a);
    node_stop(&n);
}

TEST(chat_one_room_across_both_workers)
{
    /* The node has two workers and the kernel spreads connections over them, so eight
     * clients almost surely sit on both; the room lives on one worker, and the others
     * reach it through the workers' mailboxes. Half enter the room directly, half come
     * from the lobby. */
    enum { N = 8 };
    test_node n;
    start_chat(&n);
    atollc_sync *s[N];
    char uid[N][8];
    for (int i = 0; i < N; i++) {
        snprintf(uid[i], sizeof uid[i], "u%d", i);
        if (i % 2 == 0) {
            s[i] = LOGIN_TO(&n, uid[i], "shared");
        } else {
            s[i] = LOGIN(&n, uid[i]);
            EXPECT_REPLY(s[i], "room.join", "{\"room\":\"shared\"}",
                         "{\"code\":200,\"room\":\"shared\"}");
        }
        for (int j = 0; j < i; j++)
            EXPECT_PUSH(s[j], "onJoin", who(uid[i], "shared"));
    }
    for (int from = 0; from < N; from++) {
        char text[96];
        snprintf(text, sizeof text, "line from %s", uid[from]);
        EXPECT_REPLY(s[from], "room.say", say_body(text), "{\"code\":200}");
        for (int i = 0; i < N; i++)
            EXPECT_PUSH(s[i], "onChat", chat_line(uid[from], "shared", text));
    }
    for (int i = 0; i < N; i++)
        EXPECT_NO_PUSH(s[i], 50);
    for (int i = 0; i < N; i++)
        atollc_sync_free(s[i]);
    node_stop(&n);
}

TEST_MAIN(chat_join_and_leave_reach_only_the_room, chat_members_in_order_and_leave_to_lobby,
          chat_moving_keeps_the_connection, chat_say_validation, chat_bad_room_names_are_refused,
          chat_one_room_across_both_workers)
