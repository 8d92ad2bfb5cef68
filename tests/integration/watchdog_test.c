/* watchdog_test.c -- game code that fails loudly and says where, against real nodes
 * running the test game (tests/games/testgame.c): a crash in a handler, in a timer and
 * an abort() each kill the node by their signal after a log line naming the signal,
 * the callback, its route, area and uid, and a backtrace that reaches the game's code;
 * a stack overflow is reported too (the handler runs on its own stack);
 * a handler past area.slow_ms is logged once and counted in its area's stats and the
 * node's; one past area.stall_ms is reported once, with a backtrace, while it still
 * runs, and the node goes on serving (and stops cleanly); area.stall_ms=0 turns the
 * stall reports off.
 */
#include "game_client.h"
#include "harness.h"
#include "test.h"

#include <stdint.h>
#include <sys/resource.h>

/* ---- helpers --------------------------------------------------------------------------- */

/* The first line of the node's log holding text, into out; false when there is none. */
static bool
log_line(const test_node *n, const char *text, char *out, size_t cap)
{
    FILE *f = fopen(n->log_path, "r");
    if (f == NULL)
        return false;
    char line[2048];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        if (strstr(line, text) != NULL) {
            snprintf(out, cap, "%s", line);
            found = true;
        }
    fclose(f);
    return found;
}

/* The integer after " key=" in line, or -1. */
static long long
field(const char *line, const char *key)
{
    char k[64];
    snprintf(k, sizeof k, " %s=", key);
    const char *p = strstr(line, k);
    return p ? strtoll(p + strlen(k), NULL, 10) : -1;
}

/* Fails (with the node's log) unless the log holds text, exactly `count` times when
 * count >= 0. */
static void
expect_log_(const test_node *n, const char *text, int count, int line)
{
    int got = node_log_count(n, text);
    if (count < 0 ? got > 0 : got == count)
        return;
    node_dump_log(n);
    char want[64];
    snprintf(want, sizeof want, count < 0 ? "at least once" : "%d time(s)", count);
    char gotn[32];
    snprintf(gotn, sizeof gotn, "%d time(s)", got);
    gc_fail_at(__FILE__, line, text, gotn, want);
}
#define EXPECT_LOG(n, text, count) expect_log_((n), (text), (count), __LINE__)

/* `obj="<the test game's path>"`: a backtrace frame in the game's own code. */
static const char *
game_frame(void)
{
    static char s[600];
    snprintf(s, sizeof s, "obj=\"%s\"", getenv("ATOLL_TESTGAME"));
    return s;
}

/* A node that will crash on purpose. The sanitizers' own handlers of SIGSEGV would
 * write their report after ours and end the process their way (ASan: exit 1, or
 * abort() under abort_on_error; TSan: exit 66), and ASan's handle_abort would do the
 * same for SIGABRT; turned off for this node only (a test runs in a process of its
 * own), so that it dies by the signal in every build, as a production node does. No
 * core file either: this test's crashes are expected. */
static void
start_crashing_node(test_node *n)
{
    const char *names[] = {"ASAN_OPTIONS", "TSAN_OPTIONS"};
    for (int i = 0; i < 2; i++) {
        const char *old = getenv(names[i]);
        char v[1024];
        snprintf(v, sizeof v, "%s%shandle_segv=0:handle_abort=0", old ? old : "",
                 old && *old ? ":" : "");
        setenv(names[i], v, 1);
    }
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    node_start_testgame(n, NULL);
}

/* Sends route with body to a node about to die: no answer may come. */
static void
request_unanswered_(atollc_sync *s, const char *route, const char *body, int line)
{
    char *resp = NULL;
    int rc = atollc_sync_request(s, route, body, &resp, 5000);
    if (rc == ATOLLC_OK)
        gc_fail_at(__FILE__, line, route, resp, "no answer: the node crashed");
    free(resp);
}
#define REQUEST_UNANSWERED(s, route, body) request_unanswered_((s), (route), (body), __LINE__)

/* Waits for the node to die and asserts the signal. */
static void
expect_killed_by_(test_node *n, int sig, int line)
{
    int status = node_wait_exit(n, 10000);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != sig) {
        node_dump_log(n);
        char got[64], want[64];
        snprintf(got, sizeof got, WIFSIGNALED(status) ? "signal %d" : "exit %d",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        snprintf(want, sizeof want, "signal %d", sig);
        gc_fail_at(__FILE__, line, "how the node ended", got, want);
    }
}
#define EXPECT_KILLED_BY(n, sig) expect_killed_by_((n), (sig), __LINE__)

/* Polls t.areas until area id's slow count is at least min (stats are published every
 * 100 ms); returns the count seen last. */
static int64_t
area_slow_(atollc_sync *s, const char *id, int64_t min, int line)
{
    int64_t slow = -1;
    for (int i = 0; i < 50; i++) {
        atoll_value *v = gc_request_value_(s, "t.areas", "{}", __FILE__, line);
        atoll_value *list = jget(v, "areas");
        for (size_t k = 0; k < atoll_len(list); k++)
            if (jstr(atoll_at(list, k), "id") && strcmp(jstr(atoll_at(list, k), "id"), id) == 0)
                slow = jint(atoll_at(list, k), "slow");
        atoll_unref(v);
        if (slow >= min)
            break;
        atollc_sync_pump(s, 20);
    }
    return slow;
}
#define AREA_SLOW(s, id, min) area_slow_((s), (id), (min), __LINE__)

/* ---- crashes --------------------------------------------------------------------------- */

TEST(crash_in_a_handler_is_reported_and_kills_the_node)
{
    test_node n;
    start_crashing_node(&n);
    atollc_sync *s = ENTER(&n, "crasher");
    EXPECT_REPLY(s, "t.incr", "{}", "{\"code\":200*");
    REQUEST_UNANSWERED(s, "t.crash", "{}");
    EXPECT_KILLED_BY(&n, SIGSEGV);
    /* The line before the node died: what crashed, where, for whom; the game wrote to
     * address 16. */
    EXPECT_LOG(&n,
               "level=error t=w0 msg=\"fatal signal\" signal=SIGSEGV addr=0x10 in=handler "
               "route=t.crash area=\"t-1\" uid=\"crasher\"\n",
               1);
    /* Then the thread's backtrace, through the signal into the game's code. */
    EXPECT_LOG(&n, "msg=\"backtrace\" frame=0 ", 1);
    EXPECT_LOG(&n, game_frame(), -1);
    atollc_sync_free(s);
    node_remove_log(&n);
}

TEST(crash_in_a_timer_names_the_timer)
{
    test_node n;
    start_crashing_node(&n);
    atollc_sync *s = ENTER(&n, "timed");
    EXPECT_REPLY(s, "t.crashlater", "{\"ms\":20}", "{\"code\":200}");
    EXPECT_KILLED_BY(&n, SIGSEGV);
    /* A timer has no route and no player: the area alone says where. */
    EXPECT_LOG(&n, "msg=\"fatal signal\" signal=SIGSEGV addr=0x10 in=timer area=\"t-1\"\n", 1);
    EXPECT_LOG(&n, game_frame(), -1);
    atollc_sync_free(s);
    node_remove_log(&n);
}

TEST(abort_in_a_handler_is_reported)
{
    test_node n;
    start_crashing_node(&n);
    atollc_sync *s = ENTER(&n, "aborter");
    REQUEST_UNANSWERED(s, "t.crash", "{\"how\":\"abort\"}");
    EXPECT_KILLED_BY(&n, SIGABRT);
    /* Sent by abort(), not raised by the hardware: no address. */
    EXPECT_LOG(&n,
               "msg=\"fatal signal\" signal=SIGABRT in=handler route=t.crash area=\"t-1\" "
               "uid=\"aborter\"\n",
               1);
    EXPECT_LOG(&n, game_frame(), -1);
    atollc_sync_free(s);
    node_remove_log(&n);
}

TEST(stack_overflow_is_reported)
{
    test_node n;
    start_crashing_node(&n);
    atollc_sync *s = ENTER(&n, "deep");
    REQUEST_UNANSWERED(s, "t.crash", "{\"how\":\"overflow\"}");
    EXPECT_KILLED_BY(&n, SIGSEGV);
    /* The handler ran on the worker's alternate signal stack: the thread's own stack
     * had no room left. */
    EXPECT_LOG(&n,
               "msg=\"fatal signal\" signal=SIGSEGV addr=0x",
               1);
    EXPECT_LOG(&n, "in=handler route=t.crash area=\"t-1\" uid=\"deep\"\n", 1);
    EXPECT_LOG(&n, game_frame(), -1);
    atollc_sync_free(s);
    node_remove_log(&n);
}

/* ---- slow and stalled code ----------------------------------------------------------------- */

TEST(slow_handler_is_logged_and_counted)
{
    test_node n;
    node_start_testgame(&n, (const char *const[]){"--set", "area.slow_ms=50", NULL});
    const char *fields[] = {"area", "s-1", NULL};
    atollc_sync *s = ENTER_WITH(&n, "slowpoke", fields, "{\"code\":200,\"uid\":\"slowpoke\",\"area\":\"s-1\"}");
    EXPECT_REPLY(s, "t.incr", "{}", "{\"code\":200*");
    atoll_value *v = REQUEST_VALUE(s, "t.sleep", "{\"ms\":120}");
    ASSERT_EQ(jint(v, "code"), 200);
    ASSERT(jint(v, "slept_ms") >= 120);
    atoll_unref(v);
    EXPECT_REPLY(s, "t.incr", "{}", "{\"code\":200*");
    /* One warn line names the route, area and player, and how long it ran (the coarse
     * clock's tick is at most 4 ms). */
    const char *want = "msg=\"slow game code\" in=handler route=t.sleep area=\"s-1\" "
                       "uid=\"slowpoke\" ms=";
    EXPECT_LOG(&n, want, 1);
    char line[2048];
    ASSERT(log_line(&n, want, line, sizeof line));
    ASSERT(strstr(line, " level=warn ") != NULL);
    ASSERT(field(line, "ms") >= 110 && field(line, "ms") < 1000);
    ASSERT_EQ(field(line, "slow_ms"), 50);
    /* The area counts what its lines say: t.sleep (and any quick callback of the area
     * that the machine happened to hold up past 50 ms, which is logged too). */
    int64_t slow = AREA_SLOW(s, "s-1", 1);
    ASSERT(slow >= 1);
    ASSERT_EQ(slow, node_log_count_both(&n, "msg=\"slow game code\"", "area=\"s-1\""));
    atollc_sync_free(s);
    /* The node's count, in its last line: every slow line of every area. */
    node_stop_keep_log(&n);
    ASSERT(log_line(&n, "msg=\"stopped\"", line, sizeof line));
    ASSERT_EQ(field(line, "slow"), node_log_count(&n, "msg=\"slow game code\""));
    ASSERT_EQ(field(line, "stalled"), 0);
    node_remove_log(&n);
}

TEST(stalled_handler_is_reported_while_it_runs)
{
    test_node n;
    node_start_testgame(&n, (const char *const[]){"--set", "area.stall_ms=200", NULL});
    const char *fields[] = {"area", "z-1", NULL};
    atollc_sync *s = ENTER_WITH(&n, "sleeper", fields, "{\"code\":200,\"uid\":\"sleeper\",\"area\":\"z-1\"}");
    atoll_value *v = REQUEST_VALUE(s, "t.sleep", "{\"ms\":700}");
    ASSERT_EQ(jint(v, "code"), 200);
    ASSERT(jint(v, "slept_ms") >= 700);
    atoll_unref(v);
    /* Reported once, although it ran past three watchdog periods, and while it ran:
     * the time it had run then is under the 700 ms it took. */
    const char *want = "msg=\"stalled\" in=handler route=t.sleep area=\"z-1\" "
                       "uid=\"sleeper\" ms=";
    EXPECT_LOG(&n, want, 1);
    char line[2048];
    ASSERT(log_line(&n, want, line, sizeof line));
    ASSERT(strstr(line, " level=error ") != NULL);
    ASSERT(field(line, "ms") >= 190 && field(line, "ms") < 700);
    /* With the stuck thread's backtrace, down in the game's sleeping handler. */
    EXPECT_LOG(&n, game_frame(), -1);
    EXPECT_LOG(&n, "fn=nanosleep+", -1);
    /* The node goes on serving, on that worker and the other. */
    EXPECT_REPLY(s, "t.incr", "{}", "{\"code\":200*");
    atollc_sync *t = ENTER(&n, "other");
    EXPECT_REPLY(t, "t.incr", "{}", "{\"code\":200*");
    atollc_sync_free(t);
    atollc_sync_free(s);
    node_stop_keep_log(&n);
    ASSERT(log_line(&n, "msg=\"stopped\"", line, sizeof line));
    ASSERT_EQ(field(line, "stalled"), 1);
    node_remove_log(&n);
}

TEST(stall_reports_off_with_stall_ms_0)
{
    test_node n;
    node_start_testgame(&n, (const char *const[]){"--set", "area.stall_ms=0", NULL});
    atollc_sync *s = ENTER(&n, "dozer");
    EXPECT_REPLY(s, "t.sleep", "{\"ms\":300}", "{\"code\":200*");
    EXPECT_LOG(&n, "msg=\"slow game code\" in=handler route=t.sleep", 1);
    ASSERT_EQ(node_log_count(&n, "msg=\"stalled\""), 0);
    atollc_sync_free(s);
    node_stop(&n);
}

TEST_MAIN(crash_in_a_handler_is_reported_and_kills_the_node, crash_in_a_timer_names_the_timer,
          abort_in_a_handler_is_reported, stack_overflow_is_reported,
          slow_handler_is_logged_and_counted,
          stalled_handler_is_reported_while_it_runs, stall_reports_off_with_stall_ms_0)
