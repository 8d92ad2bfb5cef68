/* admin_node_test.c -- the admin API of a real node (`atoll run --admin 127.0.0.1:0`)
 * through the real client, `atoll ctl`: status, areas (as a table and as JSON) and
 * metrics of a node with players in it, the routes this node leaves to the cluster
 * (501, exit status 1), the token (missing, wrong, from a file, from the environment),
 * the exit statuses of usage and of a node that cannot be reached; and the starts that
 * are refused: an admin address other machines could reach without a token, a token
 * file that cannot be read, an admin port already taken. Every node binds 127.0.0.1
 * only.
 */
#include "game_client.h"
#include "harness.h"
#include "test.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------------------- */

/* Runs `$ATOLL_BIN ctl ARGS` (ARGS: shell words) with the admin address of port, and
 * returns its exit status; what it printed (stdout, and stderr too when with_stderr) in
 * out. */
static int
ctl_(int port, const char *args, bool with_stderr, char *out, size_t cap)
{
    const char *bin = getenv("ATOLL_BIN");
    ASSERT(bin != NULL);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s ctl --admin 127.0.0.1:%d %s %s", bin, port, args,
             with_stderr ? "2>&1" : "2>/dev/null");
    FILE *p = popen(cmd, "r");
    ASSERT(p != NULL);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    /* All of it or a failure: closing the pipe on more would kill ctl by SIGPIPE
     * (exit 141), or not, as the race goes. */
    char more[4096];
    size_t rest = 0;
    for (size_t k; (k = fread(more, 1, sizeof more, p)) > 0;)
        rest += k;
    if (rest > 0)
        fprintf(stderr, "  ctl %s: %zu bytes more than the test's %zu\n", args, rest, cap - 1);
    ASSERT_EQ(rest, 0);
    int status = pclose(p);
    ASSERT(WIFEXITED(status));
    return WEXITSTATUS(status);
}
#define CTL(port, args, out) ctl_((port), (args), true, (out), sizeof(out))
#define CTL_STDOUT(port, args, out) ctl_((port), (args), false, (out), sizeof(out))

#define HAS(text, part)                                                                    \
    do {                                                                                   \
        if (strstr((text), (part)) == NULL) {                                              \
            fprintf(stderr, "  got:\n%s\n  want a part: %s\n", (text), (part));            \
            ASSERT(0);                                                                     \
        }                                                                                  \
    } while (0)

static void
start_quick_admin(test_node *n, const char *const *extra)
{
    const char *args[16] = {"--game", "quick", "--admin", "127.0.0.1:0", "--set",
                            "quick.areas=2"};
    int k = 6;
    for (int i = 0; extra && extra[i] && k < 15; i++)
        args[k++] = extra[i];
    args[k] = NULL;
    node_start(n, args);
    ASSERT(n->admin_port > 0);
}

/* Waits until the node's status says it has `players` players (its workers publish
 * their areas' stats every 100 ms). */
static void
wait_players(test_node *n, int players)
{
    char out[4096], want[64];
    snprintf(want, sizeof want, "\"players\":%d}", players);
    for (int i = 0; i < 100; i++) {
        if (CTL_STDOUT(n->admin_port, "--json status", out) == 0 && strstr(out, want) != NULL)
            return;
        usleep(50000);
    }
    fprintf(stderr, "  status: %s\n", out);
    ASSERT(0);
}

/* The value of the sample that starts with `sample` ("name{labels}"), or -1. */
static double
metric_value(const char *text, const char *sample)
{
    size_t len = strlen(sample);
    for (const char *l = text; l != NULL && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
        if (strncmp(l, sample, len) == 0 && l[len] == ' ')
            return strtod(l + len + 1, NULL);
    return -1;
}

/* Whether every line of text is a comment or a sample as the text format (0.0.4) has
 * it: name{label="value",...} value, the values escaped (\\, \" and \n). */
static bool
prometheus_text(const char *text)
{
    for (const char *l = text; *l;) {
        const char *end = strchr(l, '\n');
        if (end == NULL)
            return false; /* every line ends with a newline */
        if (*l != '#') {
            const char *p = l;
            if (!(isalpha((unsigned char)*p) || *p == '_' || *p == ':'))
                return false;
            while (isalnum((unsigned char)*p) || *p == '_' || *p == ':')
                p++;
            if (*p == '{') {
                p++;
                while (*p != '}') {
                    if (!(isalpha((unsigned char)*p) || *p == '_'))
                        return false;
                    while (isalnum((unsigned char)*p) || *p == '_')
                        p++;
                    if (p[0] != '=' || p[1] != '"')
                        return false;
                    for (p += 2; *p != '"'; p++) {
                        if (p >= end)
                            return false;
                        if (*p == '\\' && !(p[1] == '\\' || p[1] == '"' || p[1] == 'n'))
                            return false;
                        if (*p == '\\')
                            p++;
                    }
                    p++;
                    if (*p == ',')
                        p++;
                    else if (*p != '}')
                        return false;
                }
                p++;
            }
            if (*p++ != ' ')
                return false;
            char *after;
            if (strncmp(p, "+Inf", 4) == 0 || strncmp(p, "NaN", 3) == 0)
                after = (char *)p + (p[0] == '+' ? 4 : 3);
            else
                strtod(p, &after);
            if (after == p || after != end)
                return false;
        }
        l = end + 1;
    }
    return true;
}

/* ---- tests ---------------------------------------------------------------------- */

TEST(ctl_shows_the_status_areas_and_metrics_of_a_node)
{
    test_node n;
    /* A store of its own (SQLite), written before each answer: commits to count. */
    char data[] = "/tmp/atoll-test-data-XXXXXX";
    ASSERT(mkdtemp(data) != NULL);
    const char *stored[] = {"--data", data, "--durability", "durable", NULL};
    start_quick_admin(&n, stored);
    ASSERT(node_log_contains(&n, "msg=\"admin API listening (HTTP)\" host=127.0.0.1"));
    atollc_sync *a = ENTER(&n, "alice");
    atollc_sync *b = ENTER(&n, "bob");
    atollc_sync *c = ENTER(&n, "carol");
    wait_players(&n, 3);

    char out[8192];
    ASSERT_EQ(CTL(n.admin_port, "status", out), 0);
    HAS(out, "coordinator: node\n");
    HAS(out, "NODE  NAME  ROLES                  STATE  LOAD  AREAS  PLAYERS\n");
    HAS(out, "   1  node  gate,area,coordinator  live   ");
    HAS(out, "      2        3\n");

    /* As JSON: the node's answer as it is. */
    ASSERT_EQ(CTL_STDOUT(n.admin_port, "--json areas", out), 0);
    json_error_t je;
    json_t *root = json_loads(out, 0, &je);
    ASSERT(root != NULL);
    json_t *areas = json_object_get(root, "areas");
    ASSERT_EQ(json_array_size(areas), 2);
    int players = 0;
    for (size_t i = 0; i < 2; i++) {
        json_t *ar = json_array_get(areas, i);
        char id[16];
        snprintf(id, sizeof id, "area-%zu", i + 1); /* by id */
        ASSERT_STR(json_string_value(json_object_get(ar, "id")), id);
        ASSERT_STR(json_string_value(json_object_get(ar, "type")), "area");
        ASSERT_STR(json_string_value(json_object_get(ar, "node")), "node");
        ASSERT(json_is_integer(json_object_get(ar, "worker")));
        ASSERT(json_is_null(json_object_get(ar, "epoch")));
        ASSERT(json_is_null(json_object_get(ar, "pinned")));
        ASSERT(json_is_number(json_object_get(ar, "messages_per_s")));
        players += (int)json_integer_value(json_object_get(ar, "players"));
    }
    ASSERT_EQ(players, 3);
    json_decref(root);
    /* As a table: what this node does not know is "-". */
    ASSERT_EQ(CTL(n.admin_port, "areas", out), 0);
    HAS(out, "AREA    TYPE  NODE  WORKER  EPOCH  PLAYERS  LOAD  MSG/S  PINNED\n");
    HAS(out, "area-1  area  node  ");
    HAS(out, "area-2  area  node  ");

    static char big[65536];
    ASSERT_EQ(CTL(n.admin_port, "metrics", big), 0);
    HAS(big, "# TYPE atoll_players gauge\n");
    HAS(big, "atoll_players{node=\"node\"} 3\n");
    HAS(big, "atoll_areas{node=\"node\"} 2\n");
    HAS(big, "atoll_connections{node=\"node\"} 3\n");
    HAS(big, "atoll_node_info{node=\"node\",roles=\"gate,area,coordinator\",game=\"quick\"");
    HAS(big, "atoll_area_messages{node=\"node\"} ");
    /* Counted as they happen: three connections, two requests of area.levelup run by
     * its handler, a route no area has refused, and commits of the players' documents. */
    gc_expect_reply_(a, "area.levelup", "{}", "{\"code\":200,\"level\":1,\"money\":10}",
                     __FILE__, __LINE__);
    gc_expect_reply_(b, "area.levelup", "{}", "{\"code\":200,\"level\":1,\"money\":10}",
                     __FILE__, __LINE__);
    free(REQUEST_TEXT(c, "area.nosuch", "{}"));
    ASSERT_EQ(CTL_STDOUT(n.admin_port, "metrics", big), 0);
    HAS(big, "atoll_connections_accepted_total{node=\"node\"} 3\n");
    HAS(big, "atoll_requests_total{node=\"node\",route=\"area.levelup\"} 2\n");
    HAS(big, "atoll_request_errors_total{node=\"node\",route=\"unknown\"} 1\n");
    HAS(big, "# TYPE atoll_handler_seconds histogram\n");
    HAS(big, "atoll_tick_seconds_bucket{node=\"node\",le=\"+Inf\"} ");
    ASSERT(strstr(big, "atoll_store_commits_total{node=\"node\"} 0\n") == NULL);
    ASSERT(strstr(big, "atoll_store_commit_documents_count{node=\"node\"} 0\n") == NULL);
    ASSERT(prometheus_text(big));
    /* The handler histogram grows with the requests (one run in 8 is timed, and a tick
     * may take the turn: more requests until one of area.levelup's is), and the count
     * of the route with every one of them. */
    const char *handled = "atoll_handler_seconds_count{node=\"node\"}";
    double timed = metric_value(big, handled);
    ASSERT(timed >= 0);
    int sent = 2;
    while (metric_value(big, handled) == timed && sent < 2 + 400) {
        for (int i = 0; i < 16; i++, sent++)
            free(REQUEST_TEXT(a, "area.levelup", "{}"));
        ASSERT_EQ(CTL_STDOUT(n.admin_port, "metrics", big), 0);
    }
    ASSERT(metric_value(big, handled) > timed);
    ASSERT_EQ(metric_value(big, "atoll_requests_total{node=\"node\",route=\"area.levelup\"}"),
              (double)sent);
    ASSERT(prometheus_text(big));
    /* Sessions by transport: the three players speak raw TCP; a WebSocket client past
     * its handshake is one more, and its close is counted. */
    ASSERT_EQ(metric_value(big, "atoll_sessions_open{node=\"node\",transport=\"tcp\"}"), 3);
    ASSERT_EQ(metric_value(big, "atoll_sessions_open{node=\"node\",transport=\"websocket\"}"), 0);
    int ws = ws_open_client(n.port);
    ASSERT_EQ(CTL_STDOUT(n.admin_port, "metrics", big), 0);
    ASSERT_EQ(metric_value(big, "atoll_sessions_open{node=\"node\",transport=\"websocket\"}"), 1);
    ASSERT_EQ(metric_value(big, "atoll_sessions_opened_total{node=\"node\",transport=\"websocket\"}"),
              1);
    close(ws);
    const char *ws_closed = "atoll_sessions_closed_total{node=\"node\",transport=\"websocket\"}";
    for (int i = 0; i < 100 && metric_value(big, ws_closed) != 1; i++) {
        usleep(20 * 1000);
        ASSERT_EQ(CTL_STDOUT(n.admin_port, "metrics", big), 0);
    }
    ASSERT_EQ(metric_value(big, ws_closed), 1);
    ASSERT_EQ(metric_value(big, "atoll_sessions_open{node=\"node\",transport=\"websocket\"}"), 0);
    ASSERT_EQ(metric_value(big, "atoll_sessions_open{node=\"node\",transport=\"tcp\"}"), 3);

    /* The players of each area, from the node that runs it: here, this one. */
    ASSERT_EQ(CTL(n.admin_port, "players area-1", out), 0);
    HAS(out, "area area-1 on node\n");
    ASSERT_EQ(CTL_STDOUT(n.admin_port, "--json players area-2", out), 0);
    HAS(out, "\"node\":\"node\"");
    ASSERT_EQ(CTL(n.admin_port, "players no-such-area", out), 1);
    HAS(out, "(HTTP 404)");

    /* What this node leaves to the cluster: said, exit status 1. */
    ASSERT_EQ(CTL(n.admin_port, "move area-1 a2", out), 1);
    ASSERT_EQ(CTL(n.admin_port, "drain node --stop --wait", out), 1);
    HAS(out, "(HTTP 501)");
    /* The node checks what it is given before anything is asked of it. */
    ASSERT_EQ(CTL(n.admin_port, "pin 'bad\"id' a2", out), 1);
    HAS(out, "atoll ctl: not an area id");
    HAS(out, "(HTTP 400)");
    ASSERT_EQ(CTL(n.admin_port, "move area-1 'a b'", out), 1);
    HAS(out, "(HTTP 400)");

    atollc_sync_free(a);
    atollc_sync_free(b);
    atollc_sync_free(c);
    node_stop(&n);
    char rm[128];
    snprintf(rm, sizeof rm, "rm -rf %s", data);
    ASSERT_EQ(system(rm), 0);
}

TEST(ctl_exit_statuses_of_usage_and_of_a_node_it_cannot_reach)
{
    test_node n;
    start_quick_admin(&n, NULL);
    char out[4096];
    ASSERT_EQ(CTL(n.admin_port, "", out), 2);
    HAS(out, "usage: atoll ctl");
    ASSERT_EQ(CTL(n.admin_port, "--help", out), 0);
    HAS(out, "exit status: 0 done, 1 the node answered an error, 2 usage, 3 the node cannot be");
    ASSERT_EQ(CTL(n.admin_port, "frobnicate", out), 2);
    HAS(out, "atoll ctl: unknown command 'frobnicate'");
    ASSERT_EQ(CTL(n.admin_port, "players", out), 2);
    HAS(out, "atoll ctl: players takes 1 argument");
    ASSERT_EQ(CTL(n.admin_port, "status --stop", out), 2);
    HAS(out, "--stop is drain's, --wait drain's and drain-status's");
    /* The address from the environment when --admin is not given. */
    const char *bin = getenv("ATOLL_BIN");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ATOLL_ADMIN=127.0.0.1:%d %s ctl status >/dev/null 2>&1", n.admin_port,
             bin);
    int st = system(cmd);
    ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    snprintf(cmd, sizeof cmd, "%s ctl --admin nonsense status >/dev/null 2>&1", bin);
    st = system(cmd);
    ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    int port = n.admin_port;
    node_stop(&n);
    /* The node is gone: nothing listens there. */
    ASSERT_EQ(CTL(port, "status", out), 3);
    HAS(out, "atoll ctl: cannot reach the admin API at 127.0.0.1:");
}

TEST(a_node_with_a_token_wants_it_from_ctl)
{
    char token_path[] = "/tmp/atoll-admin-token-XXXXXX";
    int fd = mkstemp(token_path);
    ASSERT(fd >= 0);
    static const char token[] = "c2VjcmV0LXRva2VuLWZvci10ZXN0cw==";
    ASSERT_EQ(write(fd, token, strlen(token)), (ssize_t)strlen(token));
    ASSERT_EQ(write(fd, "\n", 1), 1);
    close(fd);
    test_node n;
    start_quick_admin(&n, (const char *[]){"--admin-token-file", token_path, NULL});
    ASSERT(node_log_contains(&n, "token=yes"));
    char out[4096], args[256];
    unsetenv("ATOLL_ADMIN_TOKEN");
    ASSERT_EQ(CTL(n.admin_port, "status", out), 1);
    HAS(out, "atoll ctl: this node's admin API needs a bearer token (Authorization: Bearer "
             "TOKEN) (HTTP 401)\n");
    snprintf(args, sizeof args, "--token-file %s status", token_path);
    ASSERT_EQ(CTL(n.admin_port, args, out), 0);
    HAS(out, "coordinator: node");
    snprintf(args, sizeof args, "--token-file %s metrics", token_path);
    static char metrics[65536];
    ASSERT_EQ(CTL(n.admin_port, args, metrics), 0);
    HAS(metrics, "# TYPE atoll_players gauge\n");
    ASSERT_EQ(setenv("ATOLL_ADMIN_TOKEN", token, 1), 0);
    ASSERT_EQ(CTL(n.admin_port, "--json status", out), 0);
    ASSERT_EQ(setenv("ATOLL_ADMIN_TOKEN", "c2VjcmV0LXRva2VuLWZvci10ZXN0cx==", 1), 0);
    ASSERT_EQ(CTL(n.admin_port, "status", out), 1);
    HAS(out, "atoll ctl: the token is not valid (HTTP 401)\n");
    unsetenv("ATOLL_ADMIN_TOKEN");
    ASSERT_EQ(setenv("ATOLL_ADMIN_TOKEN_FILE", token_path, 1), 0);
    ASSERT_EQ(CTL(n.admin_port, "status", out), 0);
    unsetenv("ATOLL_ADMIN_TOKEN_FILE");
    ASSERT_EQ(CTL(n.admin_port, "--token-file /nonexistent/token status", out), 2);
    HAS(out, "cannot open --token-file /nonexistent/token");
    node_stop(&n);
    unlink(token_path);
}

TEST(starts_that_are_refused)
{
    /* Other machines could reach it, and no token: refused before anything is bound. */
    NODE_REFUSES("--store memory --admin 0.0.0.0:0",
                 "atoll: --admin 0.0.0.0:0 is not a loopback address: an admin API that other "
                 "machines can reach needs a token, --admin-token-file PATH (admin.token_file, "
                 "or admin.token)");
    NODE_REFUSES("--store memory --admin '[::]:0'", "--admin [::]:0 is not a loopback address");
    NODE_REFUSES("--store memory --admin 127.0.0.1:0 --admin-token-file /nonexistent/token",
                 "atoll: cannot open --admin-token-file /nonexistent/token: No such file");
    NODE_REFUSES("--store memory --admin 127.0.0.1",
                 "--admin wants HOST:PORT, got '127.0.0.1' (admin.listen");
    /* The address's port taken: the node stops, as one whose client port is taken. */
    test_node n;
    start_quick_admin(&n, NULL);
    char args[128], says[160];
    snprintf(args, sizeof args, "--store memory --admin 127.0.0.1:%d", n.admin_port);
    snprintf(says, sizeof says, "atoll: cannot start the admin API: cannot listen on "
                                "127.0.0.1:%d: Address already in use", n.admin_port);
    NODE_REFUSES(args, says);
    node_stop(&n);
}

TEST_MAIN(ctl_shows_the_status_areas_and_metrics_of_a_node,
          ctl_exit_statuses_of_usage_and_of_a_node_it_cannot_reach,
          a_node_with_a_token_wants_it_from_ctl, starts_that_are_refused)
