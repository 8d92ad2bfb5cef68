/* fanout_test.c -- pushes to many: one client's broadcasts must not get clients that
 * read dropped, and clients that do not read must cost the node bounded memory
 * (net.output_cap each), whatever one sender does within its rate limit.
 */
#include "harness.h"
#include "test.h"

#include <pthread.h>
#include <sys/socket.h>

enum { BURST = 300, BODY = 30000 };

typedef struct {
    int fd;
    int pushes;  /* onChat pushes received */
    bool closed; /* the node closed the connection */
} reader;

/* Reads packages until BURST pushes came, the connection closed, or 30 s passed. */
static void *
read_pushes(void *arg)
{
    reader *r = arg;
    static _Thread_local uint8_t body[BODY + 1024];
    size_t len;
    while (r->pushes < BURST) {
        int type = raw_recv_pkg(r->fd, body, sizeof body, &len, 30000);
        if (type < 0) {
            r->closed = true;
            break;
        }
        if (type == 4 && (body[0] == 0x06 || body[0] == 0x07))
            r->pushes++;
    }
    return NULL;
}

static uint8_t *
broadcast_burst(size_t *out_len)
{
    /* BURST notifies of echo.broadcast with a BODY-byte string body, in one buffer. */
    static const char route[] = "echo.broadcast";
    size_t rl = sizeof route - 1, mlen = 2 + rl + BODY;
    uint8_t *all = malloc(BURST * (4 + mlen));
    size_t off = 0;
    for (int i = 0; i < BURST; i++) {
        uint8_t *p = all + off;
        p[0] = 4;
        p[1] = (uint8_t)(mlen >> 16);
        p[2] = (uint8_t)(mlen >> 8);
        p[3] = (uint8_t)mlen;
        p[4] = 0x02;
        p[5] = (uint8_t)rl;
        memcpy(p + 6, route, rl);
        uint8_t *b = p + 6 + rl;
        memset(b, 'x', BODY);
        b[0] = '"';
        b[BODY - 1] = '"';
        off += 4 + mlen;
    }
    *out_len = off;
    return all;
}

TEST(readers_keep_up_with_a_broadcast_burst)
{
    test_node n;
    node_start(&n, NULL); /* default output cap (1 MiB) and rate limit (burst 400) */
    reader victim = {raw_connect(n.port), 0, false};
    reader sender = {raw_connect(n.port), 0, false};
    raw_pomelo_open(victim.fd, true);
    raw_pomelo_open(sender.fd, true);
    pthread_t tv, ts;
    pthread_create(&tv, NULL, read_pushes, &victim);
    pthread_create(&ts, NULL, read_pushes, &sender);
    size_t len;
    uint8_t *all = broadcast_burst(&len);
    ASSERT(raw_send(sender.fd, all, len)); /* 9 MB to every session */
    free(all);
    pthread_join(tv, NULL);
    pthread_join(ts, NULL);
    /* Both read as fast as they can: every push arrives, nobody is dropped. */
    ASSERT_EQ(victim.pushes, BURST);
    ASSERT_EQ(sender.pushes, BURST);
    ASSERT(!victim.closed && !sender.closed);
    ASSERT(!node_log_contains(&n, "closing slow reader"));
    close(victim.fd);
    close(sender.fd);
    node_stop(&n);
}

TEST(clients_that_do_not_read_cost_bounded_memory)
{
    test_node n;
    node_start(&n, NULL);
    enum { IDLE = 40 };
    int idle[IDLE];
    for (int i = 0; i < IDLE; i++) {
        idle[i] = raw_connect(n.port);
        int small = 4096;
        setsockopt(idle[i], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        raw_pomelo_open(idle[i], true);
    }
    reader sender = {raw_connect(n.port), 0, false};
    raw_pomelo_open(sender.fd, true);
    pthread_t ts;
    pthread_create(&ts, NULL, read_pushes, &sender);
    size_t before = node_peak_rss(&n), len;
    uint8_t *all = broadcast_burst(&len);
    ASSERT(raw_send(sender.fd, all, len));
    free(all);
    pthread_join(ts, NULL);
    size_t peak = node_peak_rss(&n);
    /* 40 x 9 MB were owed; each non-reader is dropped near the 1 MiB cap. */
    ASSERT_EQ(sender.pushes, BURST);
    for (int i = 0; i < IDLE; i++) {
        ASSERT(raw_wait_closed(idle[i], 5000));
        close(idle[i]);
    }
    /* Resident memory is only meaningful with the real allocator: a sanitizer's keeps
     * freed memory in quarantine. The behaviour above is checked in every build. */
    const char *san = getenv("ATOLL_SANITIZED");
    if (san == NULL || strcmp(san, "1") != 0)
        ASSERT(peak - before < (size_t)IDLE * (2u << 20));
    ASSERT(node_log_count(&n, "closing slow reader") >= 1);
    close(sender.fd);
    node_stop(&n);
}

TEST_MAIN(readers_keep_up_with_a_broadcast_burst, clients_that_do_not_read_cost_bounded_memory)
