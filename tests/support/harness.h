/* harness.h -- integration-test support: start and stop real atoll nodes, and talk
 * to them with raw sockets (for bad input) next to the real client library.
 *
 * A node is started as `$ATOLL_BIN run --listen 127.0.0.1:0 ...`: the kernel picks a
 * free port, the node prints "listening HOST:PORT" on stdout, so parallel tests never
 * collide. Its stderr (logs) goes to a temporary file that is shown when a test fails.
 * Stopping sends SIGTERM and requires a clean exit (status 0): under ASan that also
 * proves the node freed everything. With ATOLL_LOOPBACK_LINKS=1 in the environment,
 * every node is started with node.loopback_links=true (make check's second pass).
 */
#ifndef ATOLL_HARNESS_H
#define ATOLL_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct test_node {
    pid_t pid;
    int port;
    int admin_port; /* with --admin: the port of its "admin on HOST:PORT" line; else 0 */
    char log_path[64];
} test_node;

/* Starts a node with extra arguments (NULL-terminated list, e.g. "--set",
 * "net.heartbeat=1", NULL). Fails the test when it does not come up within 10 s. A
 * cluster node whose --roles has no gate gets no --listen and no port (port 0). With
 * --admin among the arguments, the node's second line gives admin_port. */
void node_start(test_node *n, const char *const *args);
/* node_start with the test game (tests/games/testgame.c, $ATOLL_TESTGAME) and the
 * extra arguments (NULL-terminated list, or NULL). */
void node_start_testgame(test_node *n, const char *const *extra);
/* SIGKILL, and the wait for it: no flush, no goodbye. Returns when it was sent
 * (CLOCK_MONOTONIC, microseconds). The log stays: node_remove_log afterwards. */
uint64_t node_kill(test_node *n);
/* SIGTERM, then waits up to 10 s; asserts exit status 0. */
void node_stop(test_node *n);
/* node_stop that keeps the log for the test to read (its last line, "stopped", has the
 * node's counters): node_remove_log afterwards. */
void node_stop_keep_log(test_node *n);
/* Waits up to timeout_ms for a node that ends by itself (it crashed) and returns its
 * wait status (WIFSIGNALED, WTERMSIG...); kills it and fails the test when it is still
 * running then. Its log stays for the test to read: node_remove_log afterwards. */
int node_wait_exit(test_node *n, int timeout_ms);
void node_remove_log(test_node *n);
/* Runs `$ATOLL_BIN run --listen 127.0.0.1:0 --workers 1 ARGS` (ARGS: shell words),
 * which must stop by itself at start: a non-zero exit within 10 s (timeout's 124 would
 * mean it came up and ran instead) with `says` on its stderr. Fails the test at
 * file:line otherwise, showing what it said. */
void node_expect_refused_(const char *args, const char *says, const char *file, int line);
#define NODE_REFUSES(args, says) node_expect_refused_((args), (says), __FILE__, __LINE__)
/* Prints the node's log to stderr (on failure paths). */
void node_dump_log(const test_node *n);
/* True when the node's log holds this text. */
bool node_log_contains(const test_node *n, const char *text);
/* Lines of the node's log that hold this text. */
int node_log_count(const test_node *n, const char *text);
/* Lines that hold both texts (also NULL: text alone). */
int node_log_count_both(const test_node *n, const char *text, const char *also);
/* Resident memory of the node in bytes (from /proc): now, and its peak. */
size_t node_rss(const test_node *n);
size_t node_peak_rss(const test_node *n);

/* ---- raw sockets ------------------------------------------------------------------------ */

/* Blocking TCP connection to 127.0.0.1:port; -1 on failure. */
int raw_connect(int port);
/* Writes all bytes; false when the peer is gone. */
bool raw_send(int fd, const void *p, size_t n);
/* Reads exactly n bytes within timeout_ms; returns bytes read (< n on EOF/timeout). */
size_t raw_recv(int fd, void *p, size_t n, int timeout_ms);
/* True when the peer closes (EOF or reset) within timeout_ms, reading and discarding
 * anything that arrives first. */
bool raw_wait_closed(int fd, int timeout_ms);

/* Reads one Pomelo package: returns its type (1..5), body in body[0..*len), or -1 on
 * timeout/EOF. */
int raw_recv_pkg(int fd, uint8_t *body, size_t cap, size_t *len, int timeout_ms);
/* raw_recv_pkg that skips heartbeats: the next package of any other type, or -1. */
int raw_recv_pkg_nohb(int fd, uint8_t *body, size_t cap, size_t *len, int timeout_ms);
/* Writes one package. */
bool raw_send_pkg(int fd, int type, const void *body, size_t len);
/* Puts one package (4-byte header, then the body) at out, for a test that sends many
 * in one write; returns its size. */
size_t raw_put_pkg(uint8_t *out, int type, const void *body, size_t len);
/* Expects a KICK {"reason":"<reason>"} (heartbeats before it are skipped), then the
 * close; fails the test otherwise. */
void raw_expect_kick(int fd, const char *reason);
/* Handshake + ack over raw TCP: returns after the server's first heartbeat (or at once
 * when heartbeats are off: pass expect_heartbeat false). Fails the test on error. */
void raw_pomelo_open(int fd, bool expect_heartbeat);
/* raw_connect to port (asserting it connects) and raw_pomelo_open(fd, true): a client
 * past its first heartbeat. */
int raw_open_client(int port);
/* Reads a DATA package's body (buf[0..len)) that must be the RESPONSE to request id:
 * its JSON body goes to out (NUL-terminated); anything else fails the test. */
void raw_take_response(const uint8_t *buf, size_t len, uint32_t id, char *out, size_t cap);
/* Encodes a request message with a string route into out; returns its length. */
size_t raw_request(uint8_t *out, uint32_t id, const char *route, const char *body);

/* ---- raw WebSocket ---------------------------------------------------------------------- */

/* HTTP upgrade on fd; fails the test unless the answer is 101. */
void ws_upgrade(int fd);
/* Sends one frame (masked when mask is true). */
bool ws_send_frame(int fd, int opcode, bool fin, bool mask, const void *p, size_t n);
/* Reads one server frame: returns the opcode, payload in p[0..*len), -1 on timeout/EOF. */
int ws_recv_frame(int fd, uint8_t *p, size_t cap, size_t *len, int timeout_ms);
/* Handshake + ack over WebSocket (one package per message); waits for the heartbeat. */
void ws_pomelo_open(int fd, bool expect_heartbeat);
/* raw_connect to port (asserting it connects) and ws_pomelo_open(fd, true). */
int ws_open_client(int port);

#endif /* ATOLL_HARNESS_H */
