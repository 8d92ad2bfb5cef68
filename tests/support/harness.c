/* harness.c -- start/stop real atoll nodes and speak raw bytes to them (harness.h). */
#include "harness.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <arpa/inet.h>
#include <sys/prctl.h>
#include <sys/socket.h>

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* One line of the node's stdout into line (without its newline), waiting until
 * deadline at most: what came by then. */
static void
read_line(int fd, char *line, size_t cap, uint64_t deadline)
{
    size_t len = 0;
    while (len < cap - 1) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int left = (int)(deadline - now_ms());
        if (left <= 0 || poll(&pfd, 1, left) <= 0)
            break;
        ssize_t k = read(fd, line + len, 1);
        if (k <= 0)
            break;
        if (line[len] == '\n')
            break;
        len++;
    }
    line[len] = '\0';
}

void
node_start(test_node *n, const char *const *args)
{
    const char *bin = getenv("ATOLL_BIN");
    if (bin == NULL)
        test_fail_(__FILE__, __LINE__, "ATOLL_BIN is not set (run through ctest)");
    memset(n, 0, sizeof *n);
    snprintf(n->log_path, sizeof n->log_path, "/tmp/atoll-test-%d-XXXXXX", (int)getpid());
    int logfd = mkstemp(n->log_path);
    int out[2];
    if (logfd < 0 || pipe(out) != 0)
        test_fail_(__FILE__, __LINE__, "cannot create log file or pipe");
    const char *argv[64];
    int argc = 0;
    argv[argc++] = bin;
    argv[argc++] = "run";
    /* Only gates listen for clients: a cluster node given roles without "gate" gets no
     * --listen (it would be refused), and says "running" instead of "listening". */
    bool gate = true;
    for (int i = 0; args && args[i] && args[i + 1]; i++)
        if (strcmp(args[i], "--roles") == 0 && strstr(args[i + 1], "gate") == NULL)
            gate = false;
    if (gate) {
        argv[argc++] = "--listen";
        argv[argc++] = "127.0.0.1:0";
    }
    argv[argc++] = "--workers";
    argv[argc++] = "2";
    /* The suite's second pass: every mail between workers as node-link frames. */
    const char *loop = getenv("ATOLL_LOOPBACK_LINKS");
    if (loop != NULL && strcmp(loop, "1") == 0) {
        argv[argc++] = "--set";
        argv[argc++] = "node.loopback_links=true";
    }
    /* ATOLL_TEST_LOG=debug: every node logs at that level (a failure to look into). */
    const char *level = getenv("ATOLL_TEST_LOG");
    static char level_set[48];
    if (level != NULL && *level != '\0') {
        snprintf(level_set, sizeof level_set, "log.level=%s", level);
        argv[argc++] = "--set";
        argv[argc++] = level_set;
    }
    /* State is kept in memory unless the test names a store: tests running side by side
     * must not share the command's default data/ directory. */
    bool named = false;
    for (int i = 0; args && args[i]; i++)
        if (strcmp(args[i], "--store") == 0 || strcmp(args[i], "--data") == 0)
            named = true;
    if (!named) {
        argv[argc++] = "--store";
        argv[argc++] = "memory";
    }
    for (int i = 0; args && args[i] && argc < 62; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        /* A test that fails exits at once (test.h): the node must not outlive it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(out[1], 1);
        dup2(logfd, 2);
        close(out[0]);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    close(logfd);
    n->pid = pid;
    char line[128], admin[128] = "";
    uint64_t deadline = now_ms() + 10000;
    read_line(out[0], line, sizeof line, deadline);
    bool admin_asked = false;
    for (int i = 0; args && args[i]; i++)
        admin_asked |= strcmp(args[i], "--admin") == 0;
    if (admin_asked)
        read_line(out[0], admin, sizeof admin, deadline);
    close(out[0]);
    if (admin_asked) {
        const char *admin_colon = strrchr(admin, ':');
        if (strncmp(admin, "admin on ", 9) != 0 || admin_colon == NULL) {
            node_dump_log(n);
            kill(pid, SIGKILL);
            test_fail_(__FILE__, __LINE__, "node did not start its admin API");
        }
        n->admin_port = atoi(admin_colon + 1);
    }
    const char *colon = strrchr(line, ':');
    if (!gate && strncmp(line, "running ", 8) == 0) {
        n->port = 0;
        return;
    }
    if (strncmp(line, "listening ", 10) != 0 || colon == NULL) {
        node_dump_log(n);
        kill(pid, SIGKILL);
        test_fail_(__FILE__, __LINE__, "node did not start");
    }
    n->port = atoi(colon + 1);
}

uint64_t
node_kill(test_node *n)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t at = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    if (kill(n->pid, SIGKILL) != 0)
        test_fail_(__FILE__, __LINE__, "cannot send SIGKILL to the node");
    int status = 0;
    if (waitpid(n->pid, &status, 0) != n->pid || !WIFSIGNALED(status) ||
        WTERMSIG(status) != SIGKILL)
        test_fail_(__FILE__, __LINE__, "the node did not die by SIGKILL");
    n->pid = 0;
    return at;
}

void
node_expect_refused_(const char *args, const char *says, const char *file, int line)
{
    const char *bin = getenv("ATOLL_BIN");
    if (bin == NULL)
        test_fail_(file, line, "ATOLL_BIN is not set (run through ctest)");
    char log[] = "/tmp/atoll-refused-XXXXXX";
    int fd = mkstemp(log);
    if (fd < 0)
        test_fail_(file, line, "cannot create a log file");
    close(fd);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "timeout 10 %s run --listen 127.0.0.1:0 --workers 1 %s >/dev/null 2>%s", bin,
             args, log);
    int status = system(cmd);
    char text[4096] = "";
    FILE *f = fopen(log, "r");
    if (f != NULL) {
        text[fread(text, 1, sizeof text - 1, f)] = '\0';
        fclose(f);
    }
    unlink(log);
    if (!WIFEXITED(status) || WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 124 ||
        strstr(text, says) == NULL) {
        fprintf(stderr, "  atoll run %s: status %d, said \"%s\"; want a refusal saying \"%s\"\n",
                args, status, text, says);
        test_fail_(file, line, "the node did not refuse to start as it should");
    }
}

void
node_dump_log(const test_node *n)
{
    FILE *f = fopen(n->log_path, "r");
    if (f == NULL)
        return;
    char buf[4096];
    size_t k;
    fprintf(stderr, "---- node log (%s) ----\n", n->log_path);
    while ((k = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, k, stderr);
    fprintf(stderr, "---- end of node log ----\n");
    fclose(f);
}

void
node_start_testgame(test_node *n, const char *const *extra)
{
    const char *game = getenv("ATOLL_TESTGAME");
    if (game == NULL)
        test_fail_(__FILE__, __LINE__, "ATOLL_TESTGAME is not set (run through ctest)");
    const char *args[32] = {"--game", game};
    int k = 2;
    for (int i = 0; extra && extra[i] && k < 31; i++)
        args[k++] = extra[i];
    args[k] = NULL;
    node_start(n, args);
}

/* Waits up to timeout_ms for the node's process to end: true with its wait status, or
 * false after killing it (SIGKILL) when it was still running. */
static bool
wait_node(test_node *n, int timeout_ms, int *status)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    pid_t got = 0;
    while ((got = waitpid(n->pid, status, WNOHANG)) == 0 && now_ms() < deadline)
        usleep(10000);
    if (got != 0)
        return true;
    kill(n->pid, SIGKILL);
    waitpid(n->pid, status, 0);
    return false;
}

static void
stop(test_node *n, bool keep_log)
{
    if (n->pid <= 0)
        return;
    kill(n->pid, SIGTERM);
    int status = 0;
    if (!wait_node(n, 10000, &status)) {
        node_dump_log(n);
        test_fail_(__FILE__, __LINE__, "node did not stop within 10 s of SIGTERM");
    }
    n->pid = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        node_dump_log(n);
        test_fail_(__FILE__, __LINE__, "node did not exit cleanly (status != 0)");
    }
    if (!keep_log)
        node_remove_log(n);
}

void
node_stop(test_node *n)
{
    stop(n, false);
}

void
node_stop_keep_log(test_node *n)
{
    stop(n, true);
}

int
node_wait_exit(test_node *n, int timeout_ms)
{
    if (n->pid <= 0)
        test_fail_(__FILE__, __LINE__, "node_wait_exit: no node running");
    int status = 0;
    if (!wait_node(n, timeout_ms, &status)) {
        n->pid = 0;
        node_dump_log(n);
        test_fail_(__FILE__, __LINE__, "node still running (node_wait_exit)");
    }
    n->pid = 0;
    return status;
}

void
node_remove_log(test_node *n)
{
    if (n->log_path[0] != '\0')
        unlink(n->log_path);
    n->log_path[0] = '\0';
}

int
node_log_count_both(const test_node *n, const char *text, const char *also)
{
    FILE *f = fopen(n->log_path, "r");
    if (f == NULL)
        return 0;
    char line[2048];
    int count = 0;
    while (fgets(line, sizeof line, f))
        count += strstr(line, text) != NULL && (also == NULL || strstr(line, also) != NULL);
    fclose(f);
    return count;
}

int
node_log_count(const test_node *n, const char *text)
{
    return node_log_count_both(n, text, NULL);
}

bool
node_log_contains(const test_node *n, const char *text)
{
    return node_log_count(n, text) > 0;
}

static size_t
proc_status_kb(const test_node *n, const char *field)
{
    char path[64], line[256], fmt[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)n->pid);
    snprintf(fmt, sizeof fmt, "%s: %%zu kB", field);
    FILE *f = fopen(path, "r");
    size_t kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, fmt, &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb * 1024;
}

size_t
node_rss(const test_node *n)
{
    return proc_status_kb(n, "VmRSS");
}

size_t
node_peak_rss(const test_node *n)
{
    return proc_status_kb(n, "VmHWM");
}

/* ---- raw sockets ---------------------------------------------------------------------- */

int
raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

bool
raw_send(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        b += k;
        n -= (size_t)k;
    }
    return true;
}

size_t
raw_recv(int fd, void *p, size_t n, int timeout_ms)
{
    uint8_t *b = p;
    size_t got = 0;
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    while (got < n) {
        int left = (int)(deadline - now_ms());
        struct pollfd pfd = {fd, POLLIN, 0};
        if (left <= 0 || poll(&pfd, 1, left) <= 0)
            break;
        ssize_t k = recv(fd, b + got, n - got, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    return got;
}

bool
raw_wait_closed(int fd, int timeout_ms)
{
    uint8_t buf[4096];
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        int left = (int)(deadline - now_ms());
        struct pollfd pfd = {fd, POLLIN, 0};
        if (left <= 0 || poll(&pfd, 1, left) <= 0)
            return false;
        ssize_t k = recv(fd, buf, sizeof buf, 0);
        if (k == 0 || (k < 0 && errno != EINTR && errno != EAGAIN))
            return true;
    }
}

int
raw_recv_pkg(int fd, uint8_t *body, size_t cap, size_t *len, int timeout_ms)
{
    uint8_t h[4];
    if (raw_recv(fd, h, 4, timeout_ms) != 4)
        return -1;
    size_t n = ((size_t)h[1] << 16) | ((size_t)h[2] << 8) | h[3];
    if (n > cap)
        test_fail_(__FILE__, __LINE__, "package larger than the test's buffer");
    if (raw_recv(fd, body, n, timeout_ms) != n)
        return -1;
    *len = n;
    return h[0];
}

int
raw_recv_pkg_nohb(int fd, uint8_t *body, size_t cap, size_t *len, int timeout_ms)
{
    int type;
    while ((type = raw_recv_pkg(fd, body, cap, len, timeout_ms)) == 3)
        ;
    return type;
}

bool
raw_send_pkg(int fd, int type, const void *body, size_t len)
{
    uint8_t h[4] = {(uint8_t)type, (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
    return raw_send(fd, h, 4) && (len == 0 || raw_send(fd, body, len));
}

size_t
raw_put_pkg(uint8_t *out, int type, const void *body, size_t len)
{
    out[0] = (uint8_t)type;
    out[1] = (uint8_t)(len >> 16);
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
    memcpy(out + 4, body, len);
    return 4 + len;
}

void
raw_expect_kick(int fd, const char *reason)
{
    uint8_t body[4096];
    size_t len;
    ASSERT_EQ(raw_recv_pkg_nohb(fd, body, sizeof body - 1, &len, 5000), 5);
    body[len] = '\0';
    char want[256];
    snprintf(want, sizeof want, "{\"reason\":\"%s\"}", reason);
    ASSERT_STR((char *)body, want);
    ASSERT(raw_wait_closed(fd, 5000));
}

int
raw_open_client(int port)
{
    int fd = raw_connect(port);
    ASSERT(fd >= 0);
    raw_pomelo_open(fd, true);
    return fd;
}

static const char handshake_json[] = "{\"sys\":{\"type\":\"raw-test\",\"version\":\"0.0.1\"}}";

void
raw_pomelo_open(int fd, bool expect_heartbeat)
{
    uint8_t body[8192];
    size_t len;
    ASSERT(raw_send_pkg(fd, 1, handshake_json, strlen(handshake_json)));
    ASSERT_EQ(raw_recv_pkg(fd, body, sizeof body, &len, 5000), 1);
    ASSERT(len > 12 && memcmp(body, "{\"code\":200", 11) == 0);
    ASSERT(raw_send_pkg(fd, 2, NULL, 0));
    if (expect_heartbeat)
        ASSERT_EQ(raw_recv_pkg(fd, body, sizeof body, &len, 5000), 3);
}

size_t
raw_request(uint8_t *out, uint32_t id, const char *route, const char *body)
{
    size_t n = 0;
    out[n++] = 0;
    do {
        uint8_t b = id & 0x7f;
        id >>= 7;
        out[n++] = id ? (b | 0x80) : b;
    } while (id);
    size_t rl = strlen(route);
    out[n++] = (uint8_t)rl;
    memcpy(out + n, route, rl);
    n += rl;
    memcpy(out + n, body, strlen(body));
    return n + strlen(body);
}

/* ---- raw WebSocket ------------------------------------------------------------------- */

void
ws_upgrade(int fd)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";
    ASSERT(raw_send(fd, req, strlen(req)));
    char head[2048];
    size_t n = 0;
    while (n < sizeof head - 1) {
        if (raw_recv(fd, head + n, 1, 5000) != 1)
            break;
        n++;
        if (n >= 4 && memcmp(head + n - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    head[n] = '\0';
    ASSERT(strncmp(head, "HTTP/1.1 101", 12) == 0);
    ASSERT(strstr(head, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != NULL);
}

bool
ws_send_frame(int fd, int opcode, bool fin, bool mask, const void *p, size_t n)
{
    uint8_t h[14];
    size_t hl = 0;
    h[hl++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
    uint8_t mbit = mask ? 0x80 : 0;
    if (n < 126) {
        h[hl++] = (uint8_t)(mbit | n);
    } else if (n < 65536) {
        h[hl++] = mbit | 126;
        h[hl++] = (uint8_t)(n >> 8);
        h[hl++] = (uint8_t)n;
    } else {
        h[hl++] = mbit | 127;
        for (int i = 7; i >= 0; i--)
            h[hl++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
    uint8_t *payload = malloc(n ? n : 1);
    memcpy(payload, p, n);
    if (mask) {
        memcpy(h + hl, key, 4);
        hl += 4;
        for (size_t i = 0; i < n; i++)
            payload[i] ^= key[i % 4];
    }
    bool ok = raw_send(fd, h, hl) && (n == 0 || raw_send(fd, payload, n));
    free(payload);
    return ok;
}

int
ws_recv_frame(int fd, uint8_t *p, size_t cap, size_t *len, int timeout_ms)
{
    uint8_t h[2];
    if (raw_recv(fd, h, 2, timeout_ms) != 2)
        return -1;
    uint64_t n = h[1] & 0x7f;
    if (n == 126) {
        uint8_t e[2];
        if (raw_recv(fd, e, 2, timeout_ms) != 2)
            return -1;
        n = ((uint64_t)e[0] << 8) | e[1];
    } else if (n == 127) {
        uint8_t e[8];
        if (raw_recv(fd, e, 8, timeout_ms) != 8)
            return -1;
        n = 0;
        for (int i = 0; i < 8; i++)
            n = (n << 8) | e[i];
    }
    if (h[1] & 0x80)
        test_fail_(__FILE__, __LINE__, "server frame is masked");
    if (n > cap)
        test_fail_(__FILE__, __LINE__, "frame larger than the test's buffer");
    if (raw_recv(fd, p, (size_t)n, timeout_ms) != n)
        return -1;
    *len = (size_t)n;
    return h[0] & 0x0f;
}

void
ws_pomelo_open(int fd, bool expect_heartbeat)
{
    uint8_t buf[8192];
    size_t len;
    ws_upgrade(fd);
    size_t hl = strlen(handshake_json);
    buf[0] = 1;
    buf[1] = 0;
    buf[2] = (uint8_t)(hl >> 8);
    buf[3] = (uint8_t)hl;
    memcpy(buf + 4, handshake_json, hl);
    ASSERT(ws_send_frame(fd, 2, true, true, buf, hl + 4));
    ASSERT_EQ(ws_recv_frame(fd, buf, sizeof buf, &len, 5000), 2);
    ASSERT(buf[0] == 1 && len > 16 && memcmp(buf + 4, "{\"code\":200", 11) == 0);
    uint8_t ack[4] = {2, 0, 0, 0};
    ASSERT(ws_send_frame(fd, 2, true, true, ack, 4));
    if (expect_heartbeat) {
        ASSERT_EQ(ws_recv_frame(fd, buf, sizeof buf, &len, 5000), 2);
        ASSERT(len == 4 && buf[0] == 3);
    }
}

int
ws_open_client(int port)
{
    int fd = raw_connect(port);
    ASSERT(fd >= 0);
    ws_pomelo_open(fd, true);
    return fd;
}

void
raw_take_response(const uint8_t *buf, size_t len, uint32_t id, char *out, size_t cap)
{
    ASSERT(len >= 2);
    ASSERT_EQ(buf[0], 0x04); /* a push here would be one the test did not expect */
    size_t off = 1;
    uint32_t got = 0;
    for (int shift = 0; off < len && shift < 35; shift += 7) {
        got |= (uint32_t)(buf[off] & 0x7f) << shift;
        if (!(buf[off++] & 0x80))
            break;
    }
    ASSERT_EQ(got, id);
    ASSERT(len - off < cap);
    memcpy(out, buf + off, len - off);
    out[len - off] = '\0';
}
