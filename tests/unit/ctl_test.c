/* ctl_test.c -- `atoll ctl` (src/app/ctl.c) against an admin server of this process
 * whose operations answer the JSON a cluster's node sends (docs/operations.md, "Admin
 * API and atoll ctl"): the tables of status, areas and players, the lines of move, pin,
 * unpin and drain, drain --wait following a drain to its end, --json printing the
 * answer as it is, a member missing or null shown as "-", and an error's message with
 * exit status 1. The embedded node's own answers are in
 * tests/integration/admin_node_test.c.
 */
#include "app/app.h"
#include "test.h"

#include <stdatomic.h>

/* ---- a node of a cluster, as its admin API answers ---------------------------------- */

static void
answer_text(atoll__admin_call *c, const char *json)
{
    atoll__admin_answer(c, 200, json, strlen(json));
}

static void
op_status(void *ctx, atoll__admin_call *c)
{
    answer_text(c, "{\"coordinator\":\"a1\",\"nodes\":["
                   "{\"id\":1,\"name\":\"a1\",\"roles\":[\"area\",\"coordinator\"],"
                   "\"advertise\":\"127.0.0.1:7001\",\"state\":\"live\",\"load\":0.12,"
                   "\"areas\":3,\"players\":40},"
                   "{\"id\":12,\"name\":\"gate-1\",\"roles\":[\"gate\"],\"advertise\":null,"
                   "\"state\":\"draining\",\"load\":1.5,\"areas\":0,\"players\":0},"
                   "{\"id\":3,\"name\":\"a3\"}]}");
}

static void
op_areas(void *ctx, atoll__admin_call *c)
{
    answer_text(c, "{\"areas\":["
                   "{\"id\":\"room-1\",\"type\":\"room\",\"node\":\"a1\",\"worker\":0,"
                   "\"epoch\":123,\"players\":10,\"load\":0.01,\"messages_per_s\":100.5,"
                   "\"pinned\":\"a2\"},"
                   "{\"id\":\"lobby\",\"type\":\"lobby\",\"node\":\"a2\",\"worker\":3,"
                   "\"epoch\":7,\"players\":0,\"load\":0,\"messages_per_s\":0,\"pinned\":null}]}");
}

static void
op_players(void *ctx, const char *area, atoll__admin_call *c)
{
    if (strcmp(area, "room 1") != 0) {
        atoll__admin_fail(c, 404, "no area %s", area);
        return;
    }
    answer_text(c, "{\"area\":\"room 1\",\"node\":\"a1\",\"players\":["
                   "{\"uid\":\"u1\",\"connected\":true},{\"uid\":\"player-two\","
                   "\"connected\":false}]}");
}

static void
op_move(void *ctx, const char *area, const char *node, atoll__admin_call *c)
{
    char json[200];
    snprintf(json, sizeof json, "{\"area\":\"%s\",\"from\":\"a1\",\"to\":\"%s\",\"epoch\":456,"
             "\"pause_ms\":1.8}", area, node);
    answer_text(c, json);
}

static void
op_pin(void *ctx, const char *area, const char *node, atoll__admin_call *c)
{
    char json[200];
    snprintf(json, sizeof json, "{\"area\":\"%s\",\"pinned\":\"%s\"}", area, node);
    answer_text(c, json);
}

static void
op_unpin(void *ctx, const char *area, atoll__admin_call *c)
{
    char json[200];
    snprintf(json, sizeof json, "{\"area\":\"%s\",\"pinned\":null}", area);
    answer_text(c, json);
}

static atomic_int polls;

static void
op_drain(void *ctx, const char *node, bool stop, atoll__admin_call *c)
{
    if (strcmp(node, "busy") == 0) {
        atoll__admin_fail(c, 409, "node busy is draining already");
        return;
    }
    atomic_store(&polls, 0);
    char json[300];
    snprintf(json, sizeof json, "{\"node\":\"%s\",\"state\":\"draining\",\"areas_total\":100,"
             "\"areas_left\":100,\"waiting\":[],\"stop\":%s}", node, stop ? "true" : "false");
    answer_text(c, json);
}

/* Each poll a step further: 63 left and one waiting, the same again, 0 left and two
 * waiting, then done. */
static void
op_drain_status(void *ctx, const char *node, atoll__admin_call *c)
{
    static const char *const steps[] = {
        "{\"node\":\"a2\",\"state\":\"draining\",\"areas_total\":100,\"areas_left\":63,"
        "\"waiting\":[\"lobby-1\"],\"stop\":true}",
        "{\"node\":\"a2\",\"state\":\"draining\",\"areas_total\":100,\"areas_left\":63,"
        "\"waiting\":[\"lobby-1\"],\"stop\":true}",
        "{\"node\":\"a2\",\"state\":\"draining\",\"areas_total\":100,\"areas_left\":2,"
        "\"waiting\":[\"lobby-1\",\"lobby-2\"],\"stop\":true}",
        "{\"node\":\"a2\",\"state\":\"stopped\",\"areas_total\":100,\"areas_left\":0,"
        "\"waiting\":[],\"stop\":true}",
    };
    int i = atomic_fetch_add(&polls, 1);
    answer_text(c, steps[i < 3 ? i : 3]);
}

static void
op_metrics(void *ctx, atoll__buf *out)
{
    static const char text[] = "atoll_areas{node=\"a1\"} 3\n";
    atoll__buf_append(out, text, sizeof text - 1);
}

static const atoll__admin_ops cluster_ops = {
    .status = op_status,
    .areas = op_areas,
    .players = op_players,
    .move = op_move,
    .pin = op_pin,
    .unpin = op_unpin,
    .drain = op_drain,
    .drain_status = op_drain_status,
    .metrics = op_metrics,
};

/* ---- running ctl ---------------------------------------------------------------------- */

static atoll__admin *server;
static char admin_arg[64];

static void
start(const char *token)
{
    int port;
    char err[300];
    server = atoll__admin_start("127.0.0.1", 0, token, &cluster_ops, &port, err, sizeof err);
    ASSERT(server != NULL);
    snprintf(admin_arg, sizeof admin_arg, "127.0.0.1:%d", port);
}

/* The file of fd read whole into out. */
static void
slurp(int fd, char *out, size_t cap)
{
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, out, cap - 1);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
}

/* `atoll ctl --admin <the server> ARGS...` in this process: its exit status, what it
 * printed on stdout and on stderr. */
static int
ctl_(char *out, size_t outcap, char *err, size_t errcap, const char *const *args)
{
    char *argv[16] = {"ctl", "--admin", admin_arg};
    int argc = 3;
    for (; args[argc - 3] != NULL; argc++)
        argv[argc] = (char *)args[argc - 3];
    argv[argc] = NULL;
    char po[] = "/tmp/atoll-ctl-test-out-XXXXXX", pe[] = "/tmp/atoll-ctl-test-err-XXXXXX";
    int fo = mkstemp(po), fe = mkstemp(pe);
    ASSERT(fo >= 0 && fe >= 0);
    unlink(po);
    unlink(pe);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    dup2(fo, 1);
    dup2(fe, 2);
    int rc = atoll__ctl_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    slurp(fo, out, outcap);
    slurp(fe, err, errcap);
    return rc;
}
#define CTL(...) ctl_(out, sizeof out, err, sizeof err, (const char *[]){__VA_ARGS__, NULL})

#define SAYS(text, want)                                                                   \
    do {                                                                                   \
        if (strcmp((text), (want)) != 0) {                                                 \
            fprintf(stderr, "  got:\n%s  want:\n%s", (text), (want));                      \
            ASSERT(0);                                                                     \
        }                                                                                  \
    } while (0)

/* ---- tests ---------------------------------------------------------------------------- */

TEST(status_is_a_table_of_the_nodes)
{
    char out[4096], err[1024];
    start(NULL);
    ASSERT_EQ(CTL("status"), 0);
    SAYS(out, "coordinator: a1\n"
              "NODE  NAME    ROLES             STATE     LOAD  AREAS  PLAYERS\n"
              "   1  a1      area,coordinator  live      0.12      3       40\n"
              "  12  gate-1  gate              draining  1.50      0        0\n"
              "   3  a3      -                 -            -      -        -\n");
    SAYS(err, "");
    atoll__admin_stop(server);
}

TEST(areas_and_players_are_tables)
{
    char out[4096], err[1024];
    start(NULL);
    ASSERT_EQ(CTL("areas"), 0);
    SAYS(out, "AREA    TYPE   NODE  WORKER  EPOCH  PLAYERS  LOAD  MSG/S  PINNED\n"
              "room-1  room   a1         0    123       10  0.01  100.5  a2\n"
              "lobby   lobby  a2         3      7        0     0      0  -\n");
    /* An id with a space: percent-encoded on its way. */
    ASSERT_EQ(CTL("players", "room 1"), 0);
    SAYS(out, "area room 1 on a1\n"
              "UID         CONNECTED\n"
              "u1          yes\n"
              "player-two  no\n");
    ASSERT_EQ(CTL("players", "room-2"), 1);
    SAYS(out, "");
    SAYS(err, "atoll ctl: no area room-2 (HTTP 404)\n");
    atoll__admin_stop(server);
}

TEST(move_pin_and_unpin_say_what_was_done)
{
    char out[4096], err[1024];
    start(NULL);
    ASSERT_EQ(CTL("move", "room-1", "a2"), 0);
    SAYS(out, "moved room-1 from a1 to a2, epoch 456, paused 1.8 ms\n");
    /* ".." is an id like any other: sent as it is, not squashed by the client. */
    ASSERT_EQ(CTL("move", "..", "a.b"), 0);
    SAYS(out, "moved .. from a1 to a.b, epoch 456, paused 1.8 ms\n");
    ASSERT_EQ(CTL("pin", "room-1", "a2"), 0);
    SAYS(out, "room-1 pinned to a2\n");
    ASSERT_EQ(CTL("unpin", "room-1"), 0);
    SAYS(out, "room-1 not pinned\n");
    ASSERT_EQ(CTL("--json", "pin", "room-1", "7"), 0);
    SAYS(out, "{\"area\":\"room-1\",\"pinned\":\"7\"}\n");
    atoll__admin_stop(server);
}

TEST(drain_wait_follows_the_drain_to_its_end)
{
    char out[4096], err[1024];
    start(NULL);
    ASSERT_EQ(CTL("drain", "a2", "--stop", "--wait"), 0);
    /* A line each time the state changes: the poll that says the same prints nothing. */
    SAYS(out, "drain a2: 0/100 areas moved; the node stops once drained\n"
              "drain a2: 37/100 areas moved, 1 waiting to end (lobby-1); the node stops once "
              "drained\n"
              "drain a2: 98/100 areas moved, 2 waiting to end (lobby-1, lobby-2); the node "
              "stops once drained\n"
              "drain a2: 100/100 areas moved (stopped); the node stops once drained\n");
    ASSERT_EQ(atomic_load(&polls), 4);
    /* Without --wait: the one answer. */
    ASSERT_EQ(CTL("drain", "a2"), 0);
    SAYS(out, "drain a2: 0/100 areas moved\n");
    ASSERT_EQ(CTL("--json", "drain", "a2"), 0);
    SAYS(out, "{\"node\":\"a2\",\"state\":\"draining\",\"areas_total\":100,\"areas_left\":100,"
              "\"waiting\":[],\"stop\":false}\n");
    ASSERT_EQ(CTL("drain", "busy", "--wait"), 1);
    SAYS(err, "atoll ctl: node busy is draining already (HTTP 409)\n");
    atoll__admin_stop(server);
}

TEST(json_and_metrics_are_printed_as_they_came)
{
    char out[4096], err[1024];
    start(NULL);
    ASSERT_EQ(CTL("--json", "areas"), 0);
    ASSERT(strncmp(out, "{\"areas\":[{\"id\":\"room-1\",", 25) == 0);
    ASSERT_EQ(CTL("metrics"), 0);
    SAYS(out, "atoll_areas{node=\"a1\"} 3\n");
    atoll__admin_stop(server);
}

TEST(the_token_comes_from_the_environment_or_a_file)
{
    char out[4096], err[1024];
    start("0123456789abcdef-ctl");
    unsetenv("ATOLL_ADMIN_TOKEN");
    unsetenv("ATOLL_ADMIN_TOKEN_FILE");
    ASSERT_EQ(CTL("status"), 1);
    SAYS(err, "atoll ctl: this node's admin API needs a bearer token (Authorization: Bearer "
              "TOKEN) (HTTP 401)\n");
    setenv("ATOLL_ADMIN_TOKEN", "0123456789abcdef-ctl", 1);
    ASSERT_EQ(CTL("status"), 0);
    char path[] = "/tmp/atoll-ctl-token-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_EQ(write(fd, "0123456789abcdef-ctl\r\n", 22), 22);
    close(fd);
    setenv("ATOLL_ADMIN_TOKEN_FILE", path, 1);
    ASSERT_EQ(CTL("status"), 2); /* two sources: which one was meant? */
    SAYS(err, "atoll ctl: ATOLL_ADMIN_TOKEN_FILE and ATOLL_ADMIN_TOKEN both give the token: "
              "give one\n");
    unsetenv("ATOLL_ADMIN_TOKEN");
    ASSERT_EQ(CTL("status"), 0);
    unsetenv("ATOLL_ADMIN_TOKEN_FILE");
    ASSERT_EQ(CTL("--token-file", path, "areas"), 0);
    unlink(path);
    atoll__admin_stop(server);
}

TEST_MAIN(status_is_a_table_of_the_nodes, areas_and_players_are_tables,
          move_pin_and_unpin_say_what_was_done, drain_wait_follows_the_drain_to_its_end,
          json_and_metrics_are_printed_as_they_came,
          the_token_comes_from_the_environment_or_a_file)
