/* redis.c -- a Redis server of the test's own (redis.h): redis-server on a free loopback
 * port over a temporary directory; stopped, started again, and removed at the end.
 */
#define _GNU_SOURCE
#include "redis.h"
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REDIS_SERVER_BIN "/usr/bin/redis-server"
#define REDIS_READY_MS 5000
#define REDIS_STOP_MS 10000


static void
log_path(const redis_server *s, char *out, size_t cap)
{
    snprintf(out, cap, "%s/redis.log", s->dir);
}

static void
dump_log(const redis_server *s)
{
    char path[300];
    log_path(s, path, sizeof path);
    proc_dump_file(path);
}

/* Whether the server answers PING with PONG (not LOADING: a server that is still
 * reading its append-only file answers commands with an error). */
static bool
answers_ping(const redis_server *s)
{
    char out[16];
    return redis_exec(s, out, sizeof out, "PING") && strcmp(out, "PONG") == 0;
}

/* Starts redis-server on s->port over s->dir and waits until it answers. */
static bool
launch(redis_server *s)
{
    char port[16], log[300];
    snprintf(port, sizeof port, "%d", s->port);
    log_path(s, log, sizeof log);
    /* No snapshots; the append-only file keeps the data across a stop (fsynced every
     * second, and written out at a SIGTERM). Loopback only, no password: the server
     * lives as long as the test. */
    char *argv[] = {REDIS_SERVER_BIN, "--bind", "127.0.0.1", "--port", port, "--dir", s->dir,
                    "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
                    "--daemonize", "no", "--logfile", log, NULL};
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "redis: fork: %s\n", strerror(errno));
        return false;
    }
    if (pid == 0) {
        int nul = open("/dev/null", O_RDWR);
        if (nul >= 0) {
            dup2(nul, 0);
            dup2(nul, 1);
            close(nul);
        }
        /* A test that crashes takes its server with it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execv(argv[0], argv);
        fprintf(stderr, "redis: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    s->pid = pid;
    long deadline = proc_now_ms() + REDIS_READY_MS;
    while (proc_now_ms() < deadline) {
        if (answers_ping(s))
            return true;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            s->pid = 0;
            fprintf(stderr, "redis: redis-server exited at start (status %d)\n", status);
            dump_log(s);
            return false;
        }
        usleep(20 * 1000);
    }
    fprintf(stderr, "redis: redis-server did not answer PING within %d ms\n", REDIS_READY_MS);
    dump_log(s);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    s->pid = 0;
    return false;
}

static void
halt(redis_server *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGCONT); /* a test may have paused it */
    proc_stop(s->pid, SIGTERM, REDIS_STOP_MS); /* writes the append-only file out, then exits */
    s->pid = 0;
}

/* The janitor waits for the end of a pipe whose only writer is the test's process (the
 * write end is close-on-exec: the server does not hold it). The test's exit, however
 * it comes, or redis_stop closes it; then a directory still there is removed, after
 * the server (killed by its PR_SET_PDEATHSIG at the same moment) had time to go. Forked
 * while the test has one thread (redis_start comes before the test starts others). */
static void
janitor_start(redis_server *s)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return; /* best effort: redis_stop still cleans up */
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        close(fds[1]);
        char c;
        ssize_t n;
        do
            n = read(fds[0], &c, 1);
        while (n > 0 || (n < 0 && errno == EINTR));
        for (int i = 0; i < 3 && access(s->dir, F_OK) == 0; i++) {
            usleep(100 * 1000);
            proc_rm_tree(s->dir);
        }
        _exit(0);
    }
    close(fds[0]);
    s->janitor = pid;
    s->janitor_fd = fds[1];
}

bool
redis_start(redis_server *s, char *url, size_t cap)
{
    memset(s, 0, sizeof *s);
    if (access(REDIS_SERVER_BIN, X_OK) != 0) {
        fprintf(stderr, "redis: the Redis server is not installed (no " REDIS_SERVER_BIN
                        "): scripts/install-deps.sh installs the redis-server package\n");
        return false;
    }
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || *tmp == '\0')
        tmp = "/tmp";
    int n = snprintf(s->dir, sizeof s->dir, "%s/atoll-redis-XXXXXX", tmp);
    if (n < 0 || (size_t)n >= sizeof s->dir) {
        fprintf(stderr, "redis: TMPDIR is too long: %s\n", tmp);
        s->dir[0] = '\0';
        return false;
    }
    if (!mkdtemp(s->dir)) {
        fprintf(stderr, "redis: mkdtemp %s: %s\n", s->dir, strerror(errno));
        s->dir[0] = '\0';
        return false;
    }
    janitor_start(s);
    /* The free port may be taken between our probe and the server's bind: try again. */
    for (int attempt = 0; attempt < 3; attempt++) {
        s->port = proc_free_port();
        if (s->port > 0 && launch(s)) {
            snprintf(url, cap, "redis://127.0.0.1:%d", s->port);
            return true;
        }
    }
    redis_stop(s);
    return false;
}

bool
redis_restart(redis_server *s)
{
    halt(s);
    return launch(s);
}

void
redis_down(redis_server *s)
{
    halt(s);
}

bool
redis_up(redis_server *s)
{
    return launch(s);
}

bool
redis_exec(const redis_server *s, char *out, size_t cap, const char *fmt, ...)
{
    if (out && cap)
        out[0] = '\0';
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", s->port, tv);
    if (c == NULL || c->err) {
        if (c)
            redisFree(c);
        return false;
    }
    redisSetTimeout(c, tv);
    va_list ap;
    va_start(ap, fmt);
    redisReply *reply = redisvCommand(c, fmt, ap);
    va_end(ap);
    bool ok = reply != NULL && reply->type != REDIS_REPLY_ERROR;
    if (reply && out && cap) {
        if (reply->type == REDIS_REPLY_INTEGER)
            snprintf(out, cap, "%lld", reply->integer);
        else if (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS ||
                 reply->type == REDIS_REPLY_ERROR)
            snprintf(out, cap, "%.*s", (int)reply->len, reply->str);
    }
    if (reply)
        freeReplyObject(reply);
    redisFree(c);
    return ok;
}

void
redis_stop(redis_server *s)
{
    halt(s);
    if (s->dir[0])
        proc_rm_tree(s->dir);
    if (s->janitor > 0) { /* it finds the directory gone and ends at once */
        close(s->janitor_fd);
        waitpid(s->janitor, NULL, 0);
        s->janitor = 0;
    }
    s->dir[0] = '\0';
}
