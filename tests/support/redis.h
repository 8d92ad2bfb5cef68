/* redis.h -- a real Redis server for tests, of this test alone (redis.c).
 *
 * redis_start runs /usr/bin/redis-server (Debian's redis-server package, which
 * scripts/install-deps.sh installs) on 127.0.0.1 at a free port, in a new temporary
 * directory (under $TMPDIR, or /tmp) that holds its data and its log. No snapshots,
 * an append-only file fsynced every second: a server restarted on the same directory
 * has the data it had when it was stopped (SIGTERM writes the file out), as a
 * production Redis with AOF would. It waits until the server answers PING (5 s at most)
 * and prints the server's log when it does not. Not installed is a failure with a
 * sentence, not a skip.
 *
 * The server is the child of the calling thread and dies with it (PR_SET_PDEATHSIG),
 * so a test that crashes leaves no server behind: start it from the test's main
 * thread. A test that fails ends with _exit, without redis_stop: a janitor process,
 * started with the first server, removes the directory once the test's process is
 * gone, so nothing is left in the temporary directory either way. Redis runs as root
 * without complaint, so unlike pg.c nothing drops root.
 */
#ifndef ATOLL_TEST_REDIS_H
#define ATOLL_TEST_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct redis_server {
    pid_t pid; /* the server, 0 when stopped */
    int port;
    char dir[256]; /* the temporary directory: the append-only files and redis.log */
    pid_t janitor; /* removes dir if the test dies without redis_stop; 0: none */
    int janitor_fd;/* the pipe whose end tells the janitor that the test is gone */
} redis_server;

/* Starts a server and writes its URL (redis://127.0.0.1:PORT) into url. False, with the
 * reason on stderr, when it cannot. */
bool redis_start(redis_server *s, char *url, size_t cap);
/* Stops the server (SIGTERM: it writes its append-only file and exits) and starts it
 * again on the same directory and port, as a restart in production would: every
 * connection is cut, the data stays. */
bool redis_restart(redis_server *s);
/* An outage: redis_down stops the server and keeps its data; redis_up starts it again
 * on the same directory and port (false, with the reason on stderr, when it cannot). */
void redis_down(redis_server *s);
bool redis_up(redis_server *s);
/* Runs one command on a connection of its own (hiredis's format, as redisCommand):
 * true when the server answered without an error; the answer as text (a string, a
 * status, an integer; "" for nil or an array) goes into out when out is not NULL. */
bool redis_exec(const redis_server *s, char *out, size_t cap, const char *fmt, ...);
/* Stops the server and removes its directory. */
void redis_stop(redis_server *s);

#endif /* ATOLL_TEST_REDIS_H */
