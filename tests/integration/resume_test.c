/* resume_test.c -- a player whose connection drops waits for its client, which comes
 * back with gate.resume and the token of its gate.entry answer: same area, same data,
 * on_leave not run. Tokens are single-use, bound to the player, and refused with
 * {"code":401} and a closed connection when forged, used or past the window. Real node
 * processes with the test game (tests/games/testgame.c: its "t" areas count the resume
 * hooks in t.presence).
 */
#include "game_client.h"
#include "harness.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
start_game(test_node *n, const char *window_ms)
{
    char set[64];
    snprintf(set, sizeof set, "session.resume_ms=%s", window_ms);
    node_start_testgame(n, (const char *[]){"--set", set, NULL});
}

/* Enters uid in t-1 and returns the client; *token gets its resume token. */
static atollc_sync *
enter_(test_node *n, const char *uid, char *token, size_t cap, int line)
{
    char want[160];
    snprintf(want, sizeof want, "{\"code\":200,\"uid\":\"%s\",\"area\":\"t-1\"}", uid);
    gc_resume_token[0] = '\0';
    atollc_sync *s = gc_enter_(n, uid, NULL, want, __FILE__, line);
    if (gc_resume_token[0] == '\0')
        gc_fail_at(__FILE__, line, "gate.entry", "no resume token", "a token");
    snprintf(token, cap, "%s", gc_resume_token);
    return s;
}
#define ENTER_T(n, uid, tok) enter_((n), (uid), (tok), sizeof(tok), __LINE__)

static void
resume_body(char *out, size_t cap, const char *token)
{
    snprintf(out, cap, "{\"token\":\"%s\"}", token);
}

/* A new connection resumes with token: answered as gate.entry was, with a new token
 * (into *token). */
static atollc_sync *
resume_(test_node *n, const char *uid, char *token, size_t cap, int line)
{
    atollc_sync *s = gc_connect_(n, ATOLLC_TCP, 1, __FILE__, line);
    char body[600], want[160];
    resume_body(body, sizeof body, token);
    snprintf(want, sizeof want, "{\"code\":200,\"uid\":\"%s\",\"area\":\"t-1\"}", uid);
    gc_resume_token[0] = '\0';
    gc_expect_reply_(s, "gate.resume", body, want, __FILE__, line);
    if (gc_resume_token[0] == '\0' || strcmp(gc_resume_token, token) == 0)
        gc_fail_at(__FILE__, line, "gate.resume", gc_resume_token, "a new token");
    snprintf(token, cap, "%s", gc_resume_token);
    return s;
}
#define RESUME(n, uid, tok) resume_((n), (uid), (tok), sizeof(tok), __LINE__)

/* A new connection's gate.resume with body is answered 401 and the connection closes. */
static void
refused_(test_node *n, const char *body, int line)
{
    atollc_sync *s = gc_connect_(n, ATOLLC_TCP, 1, __FILE__, line);
    gc_expect_reply_(s, "gate.resume", body, "{\"code\":401,*", __FILE__, line);
    char *kick = NULL;
    if (atollc_sync_wait_close(s, &kick, 3000) != ATOLLC_OK)
        gc_fail_at(__FILE__, line, "after 401", "open", "closed");
    if (kick != NULL)
        gc_fail_at(__FILE__, line, "after 401", kick, "a close without a kick");
    atollc_sync_free(s);
}
#define REFUSED(n, body) refused_((n), (body), __LINE__)

static void
refused_token_(test_node *n, const char *token, int line)
{
    char body[600];
    resume_body(body, sizeof body, token);
    refused_(n, body, line);
}
#define REFUSED_TOKEN(n, tok) refused_token_((n), (tok), __LINE__)

/* t.presence of s's area: players, away now, and the hooks' counts. */
static void
expect_presence_(atollc_sync *s, int players, int away_now, int away, int back, int left, int line)
{
    char want[200];
    snprintf(want, sizeof want,
             "{\"code\":200,\"players\":%d,\"away_now\":%d,\"away\":%d,\"back\":%d,\"left\":%d}",
             players, away_now, away, back, left);
    gc_expect_reply_(s, "t.presence", "{}", want, __FILE__, line);
}
#define EXPECT_PRESENCE(s, p, an, a, b, l) expect_presence_((s), (p), (an), (a), (b), (l), __LINE__)

/* A node with a resume window of window_ms, a watcher in t-1 (past its own onEnter:
 * t pushes onEnter only to who enters), and alice, whose token goes to tok. */
static atollc_sync *
start_watched_(test_node *n, const char *window_ms, atollc_sync **alice, char *tok, size_t cap,
               int line)
{
    start_game(n, window_ms);
    atollc_sync *watcher = gc_enter_(n, "watcher", NULL, NULL, __FILE__, line);
    gc_expect_push_(watcher, "onEnter", NULL, __FILE__, line);
    *alice = enter_(n, "alice", tok, cap, line);
    return watcher;
}
#define START_WATCHED(n, window, alice, tok) \
    start_watched_((n), (window), (alice), (tok), sizeof(tok), __LINE__)

/* ---- tests ------------------------------------------------------------------------------ */

TEST(resume_within_the_window_keeps_player_area_and_data)
{
    test_node n;
    char tok[512];
    atollc_sync *a;
    atollc_sync *watcher = START_WATCHED(&n, "30000", &a, tok);
    EXPECT_REPLY(a, "t.incr", "{\"by\":5}", "{\"code\":200,\"n\":5,\"area\":\"t-1\"}");

    /* The connection drops: alice stays, away; the others are told by the game. */
    atollc_sync_free(a);
    EXPECT_PUSH(watcher, "onAway", "{\"uid\":\"alice\"}");
    EXPECT_PRESENCE(watcher, 2, 1, 1, 0, 0);

    /* She comes back on a new connection: same area, same data, on_resume ran and
     * on_leave did not. */
    a = RESUME(&n, "alice", tok);
    EXPECT_PUSH(watcher, "onBack", "{\"uid\":\"alice\"}");
    EXPECT_PUSH(a, "onBack", "{\"uid\":\"alice\"}");
    EXPECT_REPLY(a, "t.incr", "{\"by\":1}", "{\"code\":200,\"n\":6,\"area\":\"t-1\"}");
    EXPECT_PRESENCE(watcher, 2, 0, 1, 1, 0);

    /* The new token works for the next drop too. */
    atollc_sync_free(a);
    EXPECT_PUSH(watcher, "onAway", "{\"uid\":\"alice\"}");
    a = RESUME(&n, "alice", tok);
    EXPECT_REPLY(a, "t.incr", "{\"by\":1}", "{\"code\":200,\"n\":7,\"area\":\"t-1\"}");
    atollc_sync_free(a);
    atollc_sync_free(watcher);
    node_stop(&n);
}

TEST(tokens_are_single_use_bound_and_unforgeable)
{
    test_node n;
    char tok[512], used[512], bob[512];
    atollc_sync *a;
    atollc_sync *watcher = START_WATCHED(&n, "30000", &a, tok);
    atollc_sync *b = ENTER_T(&n, "bob", bob);
    snprintf(used, sizeof used, "%s", tok);
    atollc_sync_free(a);
    EXPECT_PUSH(watcher, "onAway", "{\"uid\":\"alice\"}");
    a = RESUME(&n, "alice", tok);

    /* Used once already. */
    REFUSED_TOKEN(&n, used);
    /* Forged: one hex digit of the MAC changed; the uid swapped for another. */
    char forged[512];
    snprintf(forged, sizeof forged, "%s", tok);
    forged[40] = forged[40] == 'a' ? 'b' : 'a';
    REFUSED_TOKEN(&n, forged);
    snprintf(forged, sizeof forged, "%.65sbob", tok);
    REFUSED_TOKEN(&n, forged);
    /* Malformed ones, and none at all. */
    REFUSED_TOKEN(&n, "1");
    REFUSED_TOKEN(&n, "2abc");
    REFUSED(&n, "{}");
    REFUSED(&n, "{\"token\":42}");
    /* A guest's id is never a resume's. */
    REFUSED_TOKEN(&n, "1000000000000000000000000000000000000000000000000000000000000000~0");

    /* Nothing of the refusals touched alice or bob. */
    EXPECT_REPLY(a, "t.incr", "{}", "{\"code\":200,\"n\":1,\"area\":\"t-1\"}");
    EXPECT_REPLY(b, "t.incr", "{}", "{\"code\":200,\"n\":1,\"area\":\"t-1\"}");
    EXPECT_PRESENCE(watcher, 3, 0, 1, 1, 0);

    /* gate.resume only as a new connection's first step. */
    EXPECT_REPLY(a, "gate.resume", "{\"token\":\"x\"}",
                 "{\"code\":500,\"message\":\"gate.resume must be a new connection's first message\"}");
    atollc_sync_free(a);
    atollc_sync_free(b);
    atollc_sync_free(watcher);
    node_stop(&n);
}

TEST(after_the_window_the_player_leaves_and_the_token_is_refused)
{
    test_node n;
    char tok[512];
    atollc_sync *a;
    atollc_sync *watcher = START_WATCHED(&n, "300", &a, tok);
    atollc_sync_free(a);
    EXPECT_PUSH(watcher, "onAway", "{\"uid\":\"alice\"}");
    EXPECT_PRESENCE(watcher, 2, 1, 1, 0, 0);
    atollc_sync_pump(watcher, 600);
    EXPECT_PRESENCE(watcher, 1, 0, 1, 0, 1); /* on_leave ran when the window ended */
    REFUSED_TOKEN(&n, tok);
    atollc_sync_free(watcher);
    node_stop(&n);
}

TEST(resume_takes_over_a_connection_the_server_still_holds)
{
    /* The client thinks its connection died; the server has not noticed yet. The
     * resume takes the player and the old connection is kicked. */
    test_node n;
    start_game(&n, "30000");
    char tok[512];
    atollc_sync *old = ENTER_T(&n, "alice", tok);
    EXPECT_REPLY(old, "t.incr", "{\"by\":2}", "{\"code\":200,\"n\":2,\"area\":\"t-1\"}");
    atollc_sync *fresh = RESUME(&n, "alice", tok);
    EXPECT_KICK(old, "resumed elsewhere");
    EXPECT_REPLY(fresh, "t.incr", "{}", "{\"code\":200,\"n\":3,\"area\":\"t-1\"}");
    /* The old connection's end does not take the player away. */
    atollc_sync_pump(fresh, 100);
    EXPECT_PRESENCE(fresh, 1, 0, 0, 0, 0);
    atollc_sync_free(old);
    atollc_sync_free(fresh);
    node_stop(&n);
}

TEST(kicked_players_and_moves_while_away)
{
    test_node n;
    char tok[512], tok2[512];
    atollc_sync *a;
    atollc_sync *watcher = START_WATCHED(&n, "30000", &a, tok);
    atollc_sync_free(a);
    EXPECT_PUSH(watcher, "onAway", "{\"uid\":\"alice\"}");
    /* A player who is away stays where its client will come back to. */
    EXPECT_REPLY(watcher, "t.moveaway", "{\"uid\":\"alice\",\"to\":\"t-2\"}",
                 "{\"code\":200,\"rc\":\"ESTATE\"}");
    /* Kicking it makes it leave at once, and its token is then refused. */
    EXPECT_REPLY(watcher, "t.kickother", "{\"uid\":\"alice\"}", "{\"code\":200,\"found\":true}");
    atollc_sync_pump(watcher, 100);
    EXPECT_PRESENCE(watcher, 1, 0, 1, 0, 1);
    REFUSED_TOKEN(&n, tok);

    /* A player the game kicked while connected does not wait for its client. */
    atollc_sync *b = ENTER_T(&n, "bob", tok2);
    ASSERT_EQ(atollc_sync_notify(b, "t.kick", "{}"), ATOLLC_OK);
    EXPECT_KICK(b, "bye");
    atollc_sync_pump(watcher, 100);
    EXPECT_PRESENCE(watcher, 1, 0, 1, 0, 2);
    REFUSED_TOKEN(&n, tok2);
    atollc_sync_free(b);
    atollc_sync_free(watcher);
    node_stop(&n);
}

TEST(logging_in_again_while_away_resumes_the_player)
{
    test_node n;
    char tok[512], tok2[512];
    atollc_sync *a;
    atollc_sync *watcher = START_WATCHED(&n, "30000", &a, tok);
    EXPECT_REPLY(a, "t.incr", "{\"by\":3}", "{\"code\":200,\"n\":3,\"area\":\"t-1\"}");
    atollc_sync_free(a);
    EXPECT_PUSH(watcher, "onAway", "{\"uid\":\"alice\"}");
    /* A full login instead of a resume finds the player waiting: same data. */
    a = ENTER_T(&n, "alice", tok2);
    EXPECT_PUSH(watcher, "onBack", "{\"uid\":\"alice\"}");
    EXPECT_REPLY(a, "t.incr", "{}", "{\"code\":200,\"n\":4,\"area\":\"t-1\"}");
    /* The token of the first login was replaced by the second's. */
    REFUSED_TOKEN(&n, tok);
    atollc_sync_free(a);
    atollc_sync_free(watcher);
    node_stop(&n);
}

TEST(resume_off_means_players_leave_at_once)
{
    test_node n;
    start_game(&n, "0");
    atollc_sync *watcher = ENTER(&n, "watcher");
    EXPECT_PUSH(watcher, "onEnter", NULL); /* its own: t pushes onEnter to who enters */
    gc_resume_token[0] = '\0';
    atollc_sync *a = ENTER(&n, "alice");
    if (gc_resume_token[0] != '\0')
        FAIL_AT("gate.entry with resume off", gc_resume_token, "no token");
    atollc_sync_free(a);
    atollc_sync_pump(watcher, 100);
    EXPECT_PRESENCE(watcher, 1, 0, 0, 0, 1);
    atollc_sync *r = CONNECT(&n);
    EXPECT_REPLY(r, "gate.resume", "{\"token\":\"1\"}",
                 "{\"code\":500,\"message\":\"resume is off on this node (session.resume_ms=0)\"}");
    atollc_sync_free(r);
    atollc_sync_free(watcher);
    node_stop(&n);
}

TEST(an_entry_sent_during_a_resume_is_refused_and_touches_nobody)
{
    test_node n;
    char tok[512];
    atollc_sync *a;
    atollc_sync *watcher = START_WATCHED(&n, "30000", &a, tok);
    atollc_sync *bob = ENTER(&n, "bob");
    atollc_sync_free(a);
    EXPECT_PUSH(watcher, "onAway", "{\"uid\":\"alice\"}");
    /* A new connection resumes alice and, without waiting, logs in as bob: the login
     * is refused (an entry is in progress), bob keeps his session, alice is back. */
    atollc_sync *c = CONNECT(&n);
    char body[600];
    resume_body(body, sizeof body, tok);
    ASSERT_EQ(atollc_sync_notify(c, "gate.resume", body), ATOLLC_OK);
    /* Refused either way: while the resume is on its way, or (a slow machine) once it
     * bound alice to this connection. */
    char *got = REQUEST_TEXT(c, "gate.entry", "{\"uid\":\"bob\"}");
    if (strcmp(got, "{\"code\":500,\"message\":\"entry already in progress\"}") != 0 &&
        strcmp(got, "{\"code\":500,\"message\":\"session already bound to another uid\"}") != 0)
        FAIL_AT("gate.entry during a resume", got, "a refusal");
    free(got);
    EXPECT_PUSH(watcher, "onBack", "{\"uid\":\"alice\"}");
    EXPECT_REPLY(c, "t.incr", "{}", "{\"code\":200,\"n\":1,\"area\":\"t-1\"}");
    EXPECT_REPLY(bob, "t.incr", "{}", "{\"code\":200,\"n\":1,\"area\":\"t-1\"}");
    atollc_sync_free(c);
    atollc_sync_free(bob);
    atollc_sync_free(watcher);
    node_stop(&n);
}

TEST_MAIN(resume_within_the_window_keeps_player_area_and_data,
          tokens_are_single_use_bound_and_unforgeable,
          after_the_window_the_player_leaves_and_the_token_is_refused,
          resume_takes_over_a_connection_the_server_still_holds,
          kicked_players_and_moves_while_away,
          logging_in_again_while_away_resumes_the_player,
          resume_off_means_players_leave_at_once,
          an_entry_sent_during_a_resume_is_refused_and_touches_nobody)
