/* chat_test.c -- the `chat` example game (examples/chat) against a real node with two
 * workers, through the C client library: onChat reaches exactly the room's members,
 * onJoin/onLeave reach the others, the members list, moving between rooms on one
 * connection, leaving to the lobby, validation of room.say and of room names, and a
 * room shared by connections of both workers.
 */
#include "game_client.h"
#include "harness.h"
#include "test.h"

/* ---- helpers ---------------------------------------------------------------------- */

/* Enters as uid straight into room (any code-200 answer). */
#define ENTER_ROOM(n, uid, room)                                                           \
    ENTER_WITH((n), (uid), ((const char *[]){"room", (room), NULL}), NULL)

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
    /* A client that drops is left for 200 ms to come back (gate.resume) before its
     * player leaves the room. */
    node_start(n, (const char *[]){"--game", "chat", "--set", "session.resume_ms=200", NULL});
}

/* room.join room; the answer must be {"code":200,"room":room}. */
static void
join_(atollc_sync *s, const char *room, int line)
{
    char body[128], want[160];
    snprintf(body, sizeof body, "{\"room\":\"%s\"}", room);
    snprintf(want, sizeof want, "{\"code\":200,\"room\":\"%s\"}", room);
    gc_expect_reply_(s, "room.join", body, want, __FILE__, line);
}
#define JOIN(s, room) join_((s), (room), __LINE__)

/* room.say text; the answer must be {"code":200}. */
#define SAY(s, text) EXPECT_REPLY((s), "room.say", say_body(text), "{\"code\":200}")

/* room.members; the answer must be room and exactly these members (a NULL-terminated
 * list of uids), in order. */
static void
expect_members_(atollc_sync *s, const char *room, const char *const *uids, int line)
{
    char want[1024];
    size_t k =
        (size_t)snprintf(want, sizeof want, "{\"code\":200,\"room\":\"%s\",\"members\":[", room);
    for (int i = 0; uids[i] != NULL && k < sizeof want; i++)
        k += (size_t)snprintf(want + k, sizeof want - k, "%s\"%s\"", i ? "," : "", uids[i]);
    if (k < sizeof want)
        snprintf(want + k, sizeof want - k, "]}");
    gc_expect_reply_(s, "room.members", "{}", want, __FILE__, line);
}
#define EXPECT_MEMBERS(s, room, ...)                                                       \
    expect_members_((s), (room), (const char *[]){__VA_ARGS__, NULL}, __LINE__)

/* Starts the chat node; alice, bob and carol enter the lobby in that order, each one
 * already there being pushed the onJoin of each newcomer. */
static void
start_with_alice_bob_carol_(test_node *n, atollc_sync **a, atollc_sync **b, atollc_sync **c,
                            int line)
{
    static const char *const uids[3] = {"alice", "bob", "carol"};
    atollc_sync *s[3];
    start_chat(n);
    for (int i = 0; i < 3; i++) {
        s[i] = gc_enter_(n, uids[i], NULL, NULL, __FILE__, line);
        for (int j = 0; j < i; j++)
            gc_expect_push_(s[j], "onJoin", who(uids[i], "lobby"), __FILE__, line);
    }
    *a = s[0];
    *b = s[1];
    *c = s[2];
}
#define START_WITH_ALICE_BOB_CAROL(n, a, b, c)                                             \
    start_with_alice_bob_carol_((n), (a), (b), (c), __LINE__)

/* ---- tests ---------------------------------------------------------------------- */

TEST(chat_join_and_leave_reach_only_the_room)
{
    test_node n;
    atollc_sync *a, *b, *c;
    START_WITH_ALICE_BOB_CAROL(&n, &a, &b, &c);

    /* alice opens "red": the lobby sees her go, nobody is in red to see her come. */
    JOIN(a, "red");
    EXPECT_PUSH(b, "onLeave", who("alice", "lobby"));
    EXPECT_PUSH(c, "onLeave", who("alice", "lobby"));
    JOIN(b, "red");
    EXPECT_PUSH(a, "onJoin", who("bob", "red"));
    EXPECT_PUSH(c, "onLeave", who("bob", "lobby"));

    /* A line in red reaches alice (the sender too) and bob, not carol in the lobby. */
    SAY(a, "hi red");
    EXPECT_PUSH(a, "onChat", chat_line("alice", "red", "hi red"));
    EXPECT_PUSH(b, "onChat", chat_line("alice", "red", "hi red"));
    SAY(c, "anyone?");
    EXPECT_PUSH(c, "onChat", chat_line("carol", "lobby", "anyone?"));
    EXPECT_NO_PUSH(a, 200);
    EXPECT_NO_PUSH(b, 200);
    EXPECT_NO_PUSH(c, 200);

    /* A disconnect: bob is away at once, and leaves when the resume window ends. */
    atollc_sync_free(b);
    EXPECT_PUSH(a, "onAway", who("bob", "red"));
    EXPECT_PUSH(a, "onLeave", who("bob", "red"));
    EXPECT_NO_PUSH(c, 200);
    atollc_sync_free(a);
    atollc_sync_free(c);
    node_stop(&n);
}

TEST(chat_members_in_order_and_leave_to_lobby)
{
    test_node n;
    atollc_sync *a, *b, *c;
    START_WITH_ALICE_BOB_CAROL(&n, &a, &b, &c);
    EXPECT_MEMBERS(b, "lobby", "alice", "bob", "carol");

    JOIN(a, "blue");
    EXPECT_PUSH(b, "onLeave", who("alice", "lobby"));
    EXPECT_PUSH(c, "onLeave", who("alice", "lobby"));
    EXPECT_MEMBERS(a, "blue", "alice");
    JOIN(c, "blue");
    EXPECT_PUSH(a, "onJoin", who("carol", "blue"));
    EXPECT_PUSH(b, "onLeave", who("carol", "lobby"));
    EXPECT_MEMBERS(c, "blue", "alice", "carol");
    EXPECT_MEMBERS(b, "lobby", "bob");

    /* room.leave goes back to the lobby, at the end of its order. */
    EXPECT_REPLY(a, "room.leave", "{}", "{\"code\":200,\"room\":\"lobby\"}");
    EXPECT_PUSH(c, "onLeave", who("alice", "blue"));
    EXPECT_PUSH(b, "onJoin", who("alice", "lobby"));
    EXPECT_MEMBERS(a, "lobby", "bob", "alice");
    EXPECT_REPLY(a, "room.leave", "{}", "{\"code\":500,\"message\":\"already in the lobby\"}");

    /* Joining the room you are in answers and moves nobody: no onLeave/onJoin. */
    JOIN(a, "lobby");
    JOIN(c, "blue");
    EXPECT_MEMBERS(a, "lobby", "bob", "alice");
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
    atollc_sync *w1 = ENTER_ROOM(&n, "w1", "r1");
    atollc_sync *w2 = ENTER_ROOM(&n, "w2", "r2");
    atollc_sync *x = ENTER(&n, "mover");
    atollc_sync *watch[2] = {w1, w2};
    const char *rooms[2] = {"r1", "r2"};

    /* Hop r1, r2, r1, ... on one connection: each say lands in the room just joined. */
    for (int hop = 0; hop < 10; hop++) {
        int here = hop % 2, there = 1 - here;
        char text[32];
        JOIN(x, rooms[here]);
        EXPECT_PUSH(watch[here], "onJoin", who("mover", rooms[here]));
        if (hop > 0)
            EXPECT_PUSH(watch[there], "onLeave", who("mover", rooms[there]));
        snprintf(text, sizeof text, "hop %d", hop);
        SAY(x, text);
        EXPECT_PUSH(x, "onChat", chat_line("mover", rooms[here], text));
        EXPECT_PUSH(watch[here], "onChat", chat_line("mover", rooms[here], text));
        EXPECT_NO_PUSH(watch[there], 50);
        ASSERT(atollc_sync_is_open(x));
    }
    /* After the last hop (to r2) the members say where mover is. */
    EXPECT_MEMBERS(x, "r2", "w2", "mover");
    EXPECT_MEMBERS(w1, "r1", "w1");
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
    atollc_sync *a = ENTER(&n, "alice");
    atollc_sync *b = ENTER(&n, "bob");
    EXPECT_PUSH(a, "onJoin", who("bob", "lobby"));

    const char *bad_say[] = {"{}", "{\"text\":\"\"}", "{\"text\":5}", "{\"text\":[\"hi\"]}",
                             "{\"text\":null}", "not json"};
    for (size_t i = 0; i < sizeof bad_say / sizeof bad_say[0]; i++)
        EXPECT_REPLY(a, "room.say", bad_say[i], "{\"code\":500*");

    /* 512 bytes is the most; the limit counts bytes, not characters. */
    char text[600];
    memset(text, 'x', 513);
    text[513] = '\0';
    EXPECT_REPLY(a, "room.say", say_body(text), "{\"code\":500*");
    text[512] = '\0';
    SAY(a, text);
    EXPECT_PUSH(a, "onChat", chat_line("alice", "lobby", text));
    EXPECT_PUSH(b, "onChat", chat_line("alice", "lobby", text));
    text[0] = '\0';
    for (int i = 0; i < 171; i++) /* 171 x 3 bytes = 513 */
        strcat(text, "\xe2\x82\xac");
    EXPECT_REPLY(a, "room.say", say_body(text), "{\"code\":500*");
    text[170 * 3] = '\0';
    SAY(a, text);
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
        atollc_sync *s = CONNECT(&n);
        char body[160];
        snprintf(body, sizeof body, "{\"uid\":\"bad%zu\",\"room\":%s}", i, bad[i]);
        EXPECT_REPLY(s, "gate.entry", body, "{\"code\":500*");
        /* Refused: the player is in no room. */
        EXPECT_REPLY(s, "room.members", "{}", "{\"code\":500*");
        atollc_sync_free(s);
    }
    /* The longest name and every kind of character allowed. */
    atollc_sync *a = ENTER_ROOM(&n, "alice", "abcdefghijklmnopqrstuvwxyz012345");
    EXPECT_MEMBERS(a, "abcdefghijklmnopqrstuvwxyz012345", "alice");
    JOIN(a, "Az_09-x");

    /* room.join checks the name the same way, and a refused join moves nobody. */
    const char *bad_join[] = {"{}", "{\"room\":\"no spaces\"}", "{\"room\":\"\"}",
                              "{\"room\":12}",
                              "{\"room\":\"abcdefghijklmnopqrstuvwxyz0123456\"}"};
    for (size_t i = 0; i < sizeof bad_join / sizeof bad_join[0]; i++)
        EXPECT_REPLY(a, "room.join", bad_join[i], "{\"code\":500*");
    EXPECT_MEMBERS(a, "Az_09-x", "alice");
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
            s[i] = ENTER_ROOM(&n, uid[i], "shared");
        } else {
            s[i] = ENTER(&n, uid[i]);
            JOIN(s[i], "shared");
        }
        for (int j = 0; j < i; j++)
            EXPECT_PUSH(s[j], "onJoin", who(uid[i], "shared"));
    }
    for (int from = 0; from < N; from++) {
        char text[96];
        snprintf(text, sizeof text, "line from %s", uid[from]);
        SAY(s[from], text);
        for (int i = 0; i < N; i++)
            EXPECT_PUSH(s[i], "onChat", chat_line(uid[from], "shared", text));
    }
    for (int i = 0; i < N; i++)
        EXPECT_NO_PUSH(s[i], 50);
    for (int i = 0; i < N; i++)
        atollc_sync_free(s[i]);
    node_stop(&n);
}

/* A dropped chatter is away, not gone: the room is told, and when the client comes back
 * with gate.resume the room is told again and the chatter talks on in the same room. */
TEST(chat_away_and_back)
{
    test_node n;
    node_start(&n, (const char *[]){"--game", "chat", "--set", "session.resume_ms=30000", NULL});
    atollc_sync *a = ENTER(&n, "alice");
    atollc_sync *b = ENTER(&n, "bob");
    EXPECT_PUSH(a, "onJoin", who("bob", "lobby"));
    JOIN(a, "red");
    JOIN(b, "red");
    EXPECT_PUSH(b, "onLeave", who("alice", "lobby"));
    EXPECT_PUSH(a, "onJoin", who("bob", "red"));
    char tok[256];
    snprintf(tok, sizeof tok, "%s", gc_resume_token); /* bob's, from his entry */
    atollc_sync_free(b);
    EXPECT_PUSH(a, "onAway", who("bob", "red"));
    b = CONNECT(&n);
    char body[400];
    snprintf(body, sizeof body, "{\"token\":\"%s\"}", tok);
    EXPECT_REPLY(b, "gate.resume", body, "{\"code\":200,\"uid\":\"bob\",\"area\":\"red\"}");
    EXPECT_PUSH(a, "onBack", who("bob", "red"));
    SAY(b, "back");
    EXPECT_PUSH(a, "onChat", chat_line("bob", "red", "back"));
    EXPECT_PUSH(b, "onChat", chat_line("bob", "red", "back"));
    atollc_sync_free(a);
    atollc_sync_free(b);
    node_stop(&n);
}

TEST_MAIN(chat_join_and_leave_reach_only_the_room, chat_members_in_order_and_leave_to_lobby,
          chat_moving_keeps_the_connection, chat_say_validation, chat_bad_room_names_are_refused,
          chat_one_room_across_both_workers, chat_away_and_back)
