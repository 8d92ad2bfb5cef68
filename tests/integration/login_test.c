/* login_test.c -- signed logins against real nodes: gate.entry with auth.jwt_secret.
 *
 * A node started with --set auth.jwt_secret=... admits a gate.entry only with a good
 * HS256 token in its body, and the uid is the token's sub whatever the body's "uid"
 * says (the test game refuses an entry whose body still names another uid or still
 * holds the token, so a body that reached the game unchanged would show). Forged,
 * expired, not-yet-valid, wrong-audience, malformed and missing tokens are each
 * answered {"code":401,"message":...} and the connection is closed after that answer,
 * with no KICK: over TCP, over WebSocket (the answer, then a close frame), for a
 * notify (no answer, only the close) and with a request pipelined behind the entry
 * (never answered). A player logged in with a good token is not disturbed by forged
 * tokens naming it. Sessions that skip gate.entry are not let in as guests unless
 * auth.guests=true. Without a secret the node warns at start and trusts the body's uid
 * as before. The secret file, the leeway, and settings that must stop the start.
 * Tokens are minted here with tests/support/jwt_mint.h, as a web backend would.
 */
#include "game_client.h"
#include "harness.h"
#include "jwt_mint.h"
#include "test.h"

#include <fcntl.h>
#include <sys/socket.h>

#define SECRET "login-test-secret-0123456789abcdef"

/* A token for sub signed with secret: expiring exp_in seconds from now; nbf_in (when
 * not 0) seconds from now; aud (a JSON value, or NULL for none). In a static buffer. */
static const char *
token_for(const char *secret, const char *sub, long exp_in, long nbf_in, const char *aud)
{
    static char tok[2048];
    char payload[512];
    long now = (long)time(NULL);
    int n = snprintf(payload, sizeof payload, "{\"sub\":\"%s\",\"exp\":%ld", sub, now + exp_in);
    if (nbf_in != 0)
        n += snprintf(payload + n, sizeof payload - (size_t)n, ",\"nbf\":%ld", now + nbf_in);
    if (aud != NULL)
        n += snprintf(payload + n, sizeof payload - (size_t)n, ",\"aud\":%s", aud);
    snprintf(payload + n, sizeof payload - (size_t)n, "}");
    ASSERT(jwt_mint(tok, sizeof tok, secret, payload) > 0);
    return tok;
}

/* gate.entry's body {"token":"<token>"} with more members before it (extra: "" or
 * "\"uid\":\"x\","). In a static buffer. */
static const char *
entry_body(const char *extra, const char *token)
{
    static char body[4096];
    snprintf(body, sizeof body, "{%s\"token\":\"%s\"}", extra, token);
    return body;
}

/* Sends a request (id, route, body) as one package. */
static void
send_request(int fd, uint32_t id, const char *route, const char *body)
{
    uint8_t msg[8192];
    size_t k = raw_request(msg, id, route, body);
    ASSERT(raw_send_pkg(fd, 4, msg, k));
}

/* Reads the response to request id into out: heartbeats and pushes (the test game's
 * onEnter) are skipped; anything else fails. */
static void
read_response(int fd, uint32_t id, char *out, size_t cap)
{
    uint8_t buf[8192];
    size_t len;
    do
        ASSERT_EQ(raw_recv_pkg_nohb(fd, buf, sizeof buf, &len, 5000), 4);
    while ((buf[0] & 0x0e) == 0x06); /* a push, by code (0x07) or by route (0x06) */
    raw_take_response(buf, len, id, out, cap);
    gc_strip_resume(out); /* an entry's resume token is random: checked, then left out */
}

static void
request(int fd, uint32_t id, const char *route, const char *body, char *out, size_t cap)
{
    send_request(fd, id, route, body);
    read_response(fd, id, out, cap);
}

/* The node closes fd with nothing more sent: no KICK, no other package (heartbeats,
 * which may cross the close, aside). */
static void
expect_closed_quietly(int fd)
{
    uint8_t buf[256];
    size_t len;
    ASSERT_EQ(raw_recv_pkg_nohb(fd, buf, sizeof buf, &len, 5000), -1);
    ASSERT(raw_wait_closed(fd, 1000)); /* -1 was the end, not a timeout */
}

/* A fresh connection sends gate.entry with body: the answer must be 401 with message
 * want, then the close. */
static void
expect_401_(int port, const char *body, const char *want, int line)
{
    int fd = raw_open_client(port);
    char out[1024], exp[512];
    request(fd, 1, "gate.entry", body, out, sizeof out);
    snprintf(exp, sizeof exp, "{\"code\":401,\"message\":\"%s\"}", want);
    if (strcmp(out, exp) != 0) {
        fprintf(stderr, "  line %d: got %s, want %s\n", line, out, exp);
        ASSERT(0);
    }
    expect_closed_quietly(fd);
    close(fd);
}
#define EXPECT_401(port, body, want) expect_401_((port), (body), (want), __LINE__)

/* Starts the test game with these settings (NULL-terminated). */
static void
start_testgame(test_node *n, const char *const *settings)
{
    node_start_testgame(n, settings);
}

TEST(signed_login_enters_as_the_tokens_sub)
{
    test_node n;
    start_testgame(&n, (const char *[]){"--set", "auth.jwt_secret=" SECRET, NULL});
    ASSERT(node_log_contains(&n, "msg=\"logins need a signed token\" alg=HS256"));
    ASSERT(!node_log_contains(&n, "logins are not authenticated"));
    int fd = raw_open_client(n.port);
    char out[1024];
    /* The body's uid says mallory; the token says alice: alice it is, and the game's
     * entry hook saw uid alice and no token (else it refuses: testgame.c). */
    request(fd, 1, "gate.entry",
            entry_body("\"uid\":\"mallory\",", token_for(SECRET, "alice", 60, 0, NULL)), out,
            sizeof out);
    ASSERT_STR(out, "{\"code\":200,\"uid\":\"alice\",\"area\":\"t-1\"}");
    request(fd, 2, "t.info", "{}", out, sizeof out);
    ASSERT(strncmp(out, "{\"code\":200,\"area\":\"t-1\",\"players\":1", 36) == 0);
    /* The body's other members reach the game: "area" chooses t-2. */
    int fd2 = raw_open_client(n.port);
    request(fd2, 1, "gate.entry",
            entry_body("\"area\":\"t-2\",", token_for(SECRET, "bob", 60, 0, NULL)), out,
            sizeof out);
    ASSERT_STR(out, "{\"code\":200,\"uid\":\"bob\",\"area\":\"t-2\"}");
    /* The same token again on the same session: entered already. */
    request(fd, 3, "gate.entry", entry_body("", token_for(SECRET, "alice", 60, 0, NULL)), out,
            sizeof out);
    ASSERT_STR(out, "{\"code\":200}");
    /* A good token for another sub on a bound session: refused as before (500), and the
     * connection stays. */
    request(fd, 4, "gate.entry", entry_body("", token_for(SECRET, "carol", 60, 0, NULL)), out,
            sizeof out);
    ASSERT_STR(out, "{\"code\":500,\"message\":\"session already bound to another uid\"}");
    request(fd, 5, "t.info", "{}", out, sizeof out);
    ASSERT(strncmp(out, "{\"code\":200,\"area\":\"t-1\"", 24) == 0);
    /* A second login of alice (a good token) kicks the first, as uids always did. */
    int fd3 = raw_open_client(n.port);
    request(fd3, 1, "gate.entry", entry_body("", token_for(SECRET, "alice", 60, 0, NULL)), out,
            sizeof out);
    ASSERT_STR(out, "{\"code\":200,\"uid\":\"alice\",\"area\":\"t-1\"}");
    raw_expect_kick(fd, "duplicate login");
    close(fd);
    close(fd2);
    close(fd3);
    ASSERT(!node_log_contains(&n, SECRET));
    node_stop(&n);
}

TEST(bad_tokens_are_answered_401_and_closed)
{
    test_node n;
    start_testgame(&n, (const char *[]){"--set", "auth.jwt_secret=" SECRET, NULL});
    /* alice is logged in and must stay so through every forged attempt below. */
    int alice = raw_open_client(n.port);
    char out[1024];
    request(alice, 1, "gate.entry", entry_body("", token_for(SECRET, "alice", 60, 0, NULL)), out,
            sizeof out);
    ASSERT_STR(out, "{\"code\":200,\"uid\":\"alice\",\"area\":\"t-1\"}");

    EXPECT_401(n.port,
               entry_body("", token_for("another secret, as long as ours..", "alice", 60, 0, NULL)),
               "bad token signature");
    EXPECT_401(n.port, entry_body("", token_for(SECRET, "alice", -60, 0, NULL)), "token expired");
    EXPECT_401(n.port, entry_body("", token_for(SECRET, "alice", 7200, 3600, NULL)),
               "token not valid yet (nbf)");
    EXPECT_401(n.port, entry_body("", token_for(SECRET, "alice", 60, 0, "\"game\"")),
               "token names an audience and this node has none (auth.jwt_audience)");
    EXPECT_401(n.port, entry_body("", token_for(SECRET, "~0000000000000001", 60, 0, NULL)),
               "token sub starts with ~, which is reserved for guests");
    EXPECT_401(n.port, "{\"uid\":\"alice\"}", "gate.entry needs a token");
    EXPECT_401(n.port, "{\"uid\":\"alice\",\"token\":42}", "gate.entry needs a token");
    EXPECT_401(n.port, "{}", "gate.entry needs a token");
    EXPECT_401(n.port, "not json at all", "gate.entry needs a token");
    EXPECT_401(n.port, entry_body("", "abc"), "token is not header.payload.signature");
    /* A signature-less token of alg "none". */
    char none[512], h[64], p[256];
    jwt_b64url("{\"alg\":\"none\"}", 14, h);
    snprintf(p, sizeof p, "{\"sub\":\"alice\",\"exp\":%ld}", (long)time(NULL) + 60);
    char pe[400];
    jwt_b64url(p, strlen(p), pe);
    snprintf(none, sizeof none, "%s.%s.", h, pe);
    EXPECT_401(n.port, entry_body("", none), "token is not header.payload.signature");
    /* alg "none" with a signature made with our secret all the same. */
    ASSERT(jwt_mint_raw(none, sizeof none, SECRET, strlen(SECRET), "{\"alg\":\"none\"}", p) > 0);
    EXPECT_401(n.port, entry_body("", none), "token alg must be HS256");

    /* alice was never touched. */
    request(alice, 2, "t.info", "{}", out, sizeof out);
    ASSERT(strncmp(out, "{\"code\":200,\"area\":\"t-1\",\"players\":1", 36) == 0);
    /* A bound session that sends a bad token is closed too. */
    request(alice, 3, "gate.entry", entry_body("", token_for(SECRET, "alice", -60, 0, NULL)), out,
            sizeof out);
    ASSERT_STR(out, "{\"code\":401,\"message\":\"token expired\"}");
    expect_closed_quietly(alice);
    close(alice);
    ASSERT(node_log_contains(&n, "msg=\"login refused, closing connection\""));
    node_stop(&n);
}

TEST(audience_is_checked_when_the_node_names_one)
{
    test_node n;
    start_testgame(&n, (const char *[]){"--set", "auth.jwt_secret=" SECRET, "--set",
                                        "auth.jwt_audience=game", NULL});
    EXPECT_401(n.port, entry_body("", token_for(SECRET, "a", 60, 0, "\"web\"")),
               "token is for another audience");
    EXPECT_401(n.port, entry_body("", token_for(SECRET, "a", 60, 0, NULL)), "token has no aud");
    EXPECT_401(n.port, entry_body("", token_for(SECRET, "a", 60, 0, "[\"web\",\"admin\"]")),
               "token is for another audience");
    int fd = raw_open_client(n.port);
    char out[1024];
    request(fd, 1, "gate.entry",
            entry_body("", token_for(SECRET, "a", 60, 0, "[\"web\",\"game\"]")), out, sizeof out);
    ASSERT_STR(out, "{\"code\":200,\"uid\":\"a\",\"area\":\"t-1\"}");
    close(fd);
    int fd2 = raw_open_client(n.port);
    request(fd2, 1, "gate.entry", entry_body("", token_for(SECRET, "b", 60, 0, "\"game\"")), out,
            sizeof out);
    ASSERT_STR(out, "{\"code\":200,\"uid\":\"b\",\"area\":\"t-1\"}");
    close(fd2);
    node_stop(&n);
}

TEST(a_refused_login_is_answered_then_closed_on_every_path)
{
    test_node n;
    node_start(&n, (const char *[]){"--set", "auth.jwt_secret=" SECRET, NULL});
    const char *bad = entry_body("", token_for(SECRET, "x", -60, 0, NULL));
    char out[1024];

    /* A request pipelined behind the refused entry, in the same write: never run. */
    int fd = raw_open_client(n.port);
    uint8_t both[8192], msg[4096];
    size_t k = raw_request(msg, 1, "gate.entry", bad);
    size_t off = raw_put_pkg(both, 4, msg, k);
    k = raw_request(msg, 2, "echo.echo", "{\"after\":1}");
    off += raw_put_pkg(both + off, 4, msg, k);
    ASSERT(raw_send(fd, both, off));
    read_response(fd, 1, out, sizeof out);
    ASSERT_STR(out, "{\"code\":401,\"message\":\"token expired\"}");
    expect_closed_quietly(fd);
    close(fd);

    /* gate.entry as a notify: no answer, only the close. */
    fd = raw_open_client(n.port);
    size_t bl = strlen(bad);
    msg[0] = 0x02;
    msg[1] = 10;
    memcpy(msg + 2, "gate.entry", 10);
    memcpy(msg + 12, bad, bl);
    ASSERT(raw_send_pkg(fd, 4, msg, 12 + bl));
    expect_closed_quietly(fd);
    close(fd);

    /* WebSocket: the answer in a binary frame, then a close frame (1000), then the end. */
    fd = ws_open_client(n.port);
    k = raw_request(msg, 1, "gate.entry", bad);
    off = raw_put_pkg(both, 4, msg, k);
    ASSERT(ws_send_frame(fd, 2, true, true, both, off));
    uint8_t frame[4096];
    size_t len;
    int op;
    while ((op = ws_recv_frame(fd, frame, sizeof frame, &len, 5000)) == 2 && frame[0] == 3)
        ; /* heartbeats */
    ASSERT_EQ(op, 2);
    ASSERT_EQ(frame[0], 4); /* a DATA package: the response */
    frame[len] = '\0';
    ASSERT_STR((char *)frame + 4 + 2, "{\"code\":401,\"message\":\"token expired\"}");
    ASSERT_EQ(ws_recv_frame(fd, frame, sizeof frame, &len, 5000), 8);
    ASSERT(len >= 2 && frame[0] == 0x03 && frame[1] == 0xe8); /* 1000 */
    ASSERT(raw_wait_closed(fd, 5000));
    close(fd);
    node_stop(&n);
}

TEST(guests_are_refused_unless_auth_guests)
{
    /* The echo game lets sessions play as guests; with a secret, not by default. */
    test_node n;
    node_start(&n, (const char *[]){"--set", "auth.jwt_secret=" SECRET, NULL});
    int fd = raw_open_client(n.port);
    char out[1024];
    request(fd, 1, "echo.echo", "{\"hi\":1}", out, sizeof out);
    ASSERT_STR(out, "{\"code\":500,\"message\":\"not in an area: send gate.entry first\"}");
    /* Still open: a login follows. */
    request(fd, 2, "gate.entry", entry_body("", token_for(SECRET, "dora", 60, 0, NULL)), out,
            sizeof out);
    ASSERT(strncmp(out, "{\"code\":200,\"uid\":\"dora\",\"area\":\"echo-", 38) == 0);
    request(fd, 3, "echo.echo", "{\"hi\":2}", out, sizeof out);
    ASSERT_STR(out, "{\"hi\":2}");
    close(fd);
    node_stop(&n);

    node_start(&n, (const char *[]){"--set", "auth.jwt_secret=" SECRET, "--set",
                                    "auth.guests=true", NULL});
    ASSERT(node_log_contains(&n, "guests=true"));
    fd = raw_open_client(n.port);
    request(fd, 1, "echo.echo", "{\"hi\":1}", out, sizeof out);
    ASSERT_STR(out, "{\"hi\":1}");
    /* A guest that logs in still needs a good token. */
    request(fd, 2, "gate.entry", "{\"uid\":\"dora\"}", out, sizeof out);
    ASSERT_STR(out, "{\"code\":401,\"message\":\"gate.entry needs a token\"}");
    expect_closed_quietly(fd);
    close(fd);
    node_stop(&n);
}

TEST(without_a_secret_the_node_warns_and_trusts_the_uid)
{
    test_node n;
    node_start(&n, NULL);
    ASSERT(node_log_contains(
        &n, "level=warn t=main msg=\"logins are not authenticated (set auth.jwt_secret)\""));
    int fd = raw_open_client(n.port);
    char out[1024];
    /* A token means nothing here: the uid is missing. */
    request(fd, 1, "gate.entry", entry_body("", token_for(SECRET, "alice", 60, 0, NULL)), out,
            sizeof out);
    ASSERT_STR(out, "{\"code\":500,\"message\":\"gate.entry needs a uid (string of 1 to 128 bytes)\"}");
    request(fd, 2, "gate.entry", "{\"uid\":\"erin\"}", out, sizeof out);
    ASSERT(strncmp(out, "{\"code\":200,\"uid\":\"erin\",\"area\":\"echo-", 38) == 0);
    /* Guests as before. */
    int g = raw_open_client(n.port);
    request(g, 1, "echo.echo", "{\"g\":1}", out, sizeof out);
    ASSERT_STR(out, "{\"g\":1}");
    close(fd);
    close(g);
    node_stop(&n);
}

TEST(the_secret_file_and_the_leeway)
{
    char path[64] = "/tmp/atoll-login-test-XXXXXX";
    int f = mkstemp(path);
    ASSERT(f >= 0);
    ASSERT_EQ(write(f, SECRET "\n", strlen(SECRET) + 1), (ssize_t)strlen(SECRET) + 1);
    close(f);
    char file_kv[128];
    snprintf(file_kv, sizeof file_kv, "auth.jwt_secret_file=%s", path);
    test_node n;
    start_testgame(&n, (const char *[]){"--set", file_kv, "--set", "auth.jwt_leeway=30", NULL});
    unlink(path); /* read once at the start */
    int fd = raw_open_client(n.port);
    char out[1024];
    /* Expired 10 s ago, within the 30 s of leeway. */
    request(fd, 1, "gate.entry", entry_body("", token_for(SECRET, "late", -10, 0, NULL)), out,
            sizeof out);
    ASSERT_STR(out, "{\"code\":200,\"uid\":\"late\",\"area\":\"t-1\"}");
    close(fd);
    EXPECT_401(n.port, entry_body("", token_for(SECRET, "later", -60, 0, NULL)), "token expired");
    /* nbf 10 s ahead: within the leeway too. */
    fd = raw_open_client(n.port);
    request(fd, 1, "gate.entry", entry_body("", token_for(SECRET, "early", 60, 10, NULL)), out,
            sizeof out);
    ASSERT_STR(out, "{\"code\":200,\"uid\":\"early\",\"area\":\"t-1\"}");
    close(fd);
    ASSERT(!node_log_contains(&n, SECRET));
    ASSERT(!node_log_contains(&n, "shorter than 32 bytes"));
    node_stop(&n);

    /* A short secret serves, with a warning that does not show it. */
    node_start(&n, (const char *[]){"--set", "auth.jwt_secret=tiny-secret", NULL});
    ASSERT(node_log_contains(&n, "level=warn"));
    ASSERT(node_log_contains(&n, "shorter than 32 bytes"));
    ASSERT(!node_log_contains(&n, "tiny-secret"));
    node_stop(&n);
}

/* Runs `atoll run` with the settings (NULL-terminated KEY=VALUE list); it must exit by
 * itself within 10 s with a non-zero status and say want on stderr. */
static void
refused_start_(const char *const *settings, const char *want, int line)
{
    char cmd[2048], out[8192];
    int n = snprintf(cmd, sizeof cmd, "timeout 10 %s run --store memory --listen 127.0.0.1:0 --workers 1",
                     getenv("ATOLL_BIN"));
    for (size_t i = 0; settings[i]; i++)
        n += snprintf(cmd + n, sizeof cmd - (size_t)n, " --set '%s'", settings[i]);
    snprintf(cmd + n, sizeof cmd - (size_t)n, " 2>&1 >/dev/null");
    FILE *f = popen(cmd, "r");
    ASSERT(f != NULL);
    size_t len = fread(out, 1, sizeof out - 1, f);
    out[len] = '\0';
    int status = pclose(f);
    int rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (rc == 0 || rc == 124 || rc == -1 || strstr(out, want) == NULL) {
        fprintf(stderr, "  line %d: exit %d, output:\n%s\n  want a non-zero exit and \"%s\"\n",
                line, rc, out, want);
        ASSERT(0);
    }
}
#define REFUSED_START(want, ...) refused_start_((const char *[]){__VA_ARGS__, NULL}, (want), __LINE__)

TEST(bad_auth_settings_stop_the_start)
{
    REFUSED_START("auth.jwt_secret and auth.jwt_secret_file are both set: give one",
                  "auth.jwt_secret=" SECRET, "auth.jwt_secret_file=/etc/hostname");
    REFUSED_START("cannot open auth.jwt_secret_file /nonexistent/secret",
                  "auth.jwt_secret_file=/nonexistent/secret");
    char path[64] = "/tmp/atoll-login-test-XXXXXX";
    int f = mkstemp(path);
    ASSERT(f >= 0);
    ASSERT_EQ(write(f, "\n", 1), 1);
    close(f);
    char kv[128];
    snprintf(kv, sizeof kv, "auth.jwt_secret_file=%s", path);
    REFUSED_START("is empty", kv);
    unlink(path);
    REFUSED_START("auth.jwt_audience needs auth.jwt_secret", "auth.jwt_audience=game");
    REFUSED_START("auth.guests must be true or false", "auth.guests=maybe");
    REFUSED_START("auth.jwt_secret must be 1 to 4096 bytes", "auth.jwt_secret=");
}

TEST_MAIN(signed_login_enters_as_the_tokens_sub, bad_tokens_are_answered_401_and_closed,
          audience_is_checked_when_the_node_names_one,
          a_refused_login_is_answered_then_closed_on_every_path, guests_are_refused_unless_auth_guests,
          without_a_secret_the_node_warns_and_trusts_the_uid, the_secret_file_and_the_leeway,
          bad_auth_settings_stop_the_start)
