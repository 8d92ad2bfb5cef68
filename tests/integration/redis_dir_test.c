/* redis_dir_test.c -- the cluster's state in Redis (src/cluster/redis.c) against a real
 * server of its own (tests/support/redis.c), each case with a new server.
 *
 * The cluster thread is a thread of the test running a libuv loop: the instances of
 * atoll__redis are attached to it, and what must run on it (attach, heartbeats, leases,
 * the registry, detach) is handed to it and waited for. Directory operations are
 * called from the test's main thread, as a worker would call them from its own. The
 * mail the directories post is kept under a mutex and taken by the test as it waits.
 *
 * Cases: the directory's contract as tests/unit/directory_test.c has it for the local
 * directory (answers as mail, create-if-absent, compare-and-set on the epoch, epochs
 * that grow across a removal, cookie 0, players), invalidations that reach another
 * node's subscribers after the write, node ids from node_join, leases that expire, the
 * coordinator's lease, a node's areas, an outage (operations answered ATOLL_EIO, the
 * connections and the invalidations back after it), a Redis that hangs, epochs after a
 * FLUSHALL, and the answers of an instance that is not attached.
 *
 * Leaks: each case ends with LEAK_CHECK(), which in an ASan build asks LeakSanitizer
 * right there, because the runner ends each forked test with _exit and so skips LSan's
 * check at exit (as in tests/unit/wire_test.c).
 *
 * Without an installed redis-server this test fails (make check installs it).
 */
#include "cluster/redis.h"
#include "redis.h"
#include "test.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>

#if defined(__SANITIZE_ADDRESS__)
#define REDIS_TEST_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REDIS_TEST_LSAN 1
#endif
#endif

#ifdef REDIS_TEST_LSAN
#include <sanitizer/lsan_interface.h>
#define LEAK_CHECK() ASSERT(__lsan_do_recoverable_leak_check() == 0)
#else
#define LEAK_CHECK() ((void)0)
#endif

static redis_server server;
static char url[128];

/* ---- the cluster thread --------------------------------------------------------------------- */

static uv_loop_t loop;
static uv_async_t jobs_wake;
static pthread_t loop_thread;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;

typedef struct job {
    struct job *next;
    void (*fn)(void *arg);
    void *arg;
    bool done;
} job;
static job *jobs; /* under lock */

static void
on_jobs(uv_async_t *h)
{
    pthread_mutex_lock(&lock);
    job *j = jobs;
    jobs = NULL;
    pthread_mutex_unlock(&lock);
    while (j != NULL) {
        job *next = j->next;
        j->fn(j->arg);
        pthread_mutex_lock(&lock);
        j->done = true; /* j lives on its caller's stack: not touched after this */
        pthread_cond_broadcast(&changed);
        pthread_mutex_unlock(&lock);
        j = next;
    }
}

static void *
loop_main(void *arg)
{
    atoll__log_set_thread("cluster");
    uv_run(&loop, UV_RUN_DEFAULT);
    return NULL;
}

/* Runs fn(arg) on the cluster thread and waits until it returned. */
static void
on_loop(void (*fn)(void *), void *arg)
{
    job j = {NULL, fn, arg, false};
    pthread_mutex_lock(&lock);
    j.next = jobs;
    jobs = &j;
    uv_async_send(&jobs_wake);
    while (!j.done)
        pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
}

static long
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Waits on `changed` until deadline_ms (monotonic): false when it passed. Under lock. */
static bool
wait_until(long deadline_ms)
{
    long left = deadline_ms - now_ms();
    if (left <= 0)
        return false;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += left / 1000;
    ts.tv_nsec += (left % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&changed, &lock, &ts);
    return true;
}

/* ---- the mail the directories post ---------------------------------------------------------- */

typedef struct posted {
    int node; /* which instance posted it (its ctx) */
    atoll__addr to;
    atoll__mail *m;
} posted;

#define BOX_CAP 1024
static posted box[BOX_CAP]; /* under lock */
static int nbox;

static void
capture(void *ctx, atoll__addr to, atoll__mail *m)
{
    pthread_mutex_lock(&lock);
    if (nbox < BOX_CAP) {
        box[nbox++] = (posted){(int)(intptr_t)ctx, to, m};
        pthread_cond_broadcast(&changed);
    } else {
        atoll__mail_free(m);
    }
    pthread_mutex_unlock(&lock);
}

static void
box_clear(void)
{
    pthread_mutex_lock(&lock);
    for (int i = 0; i < nbox; i++)
        atoll__mail_free(box[i].m);
    nbox = 0;
    pthread_mutex_unlock(&lock);
}

static int
box_count(void)
{
    pthread_mutex_lock(&lock);
    int n = nbox;
    pthread_mutex_unlock(&lock);
    return n;
}

/* Takes the first mail that node posted to `to` of kind type (answers: with call_id
 * cookie; invalidations: of id, when id is not NULL), waiting ms at most. NULL: none
 * came. The caller frees it. */
static atoll__mail *
take_within(int node, atoll__mail_type type, atoll__addr to, uint64_t cookie, const char *id,
            int ms)
{
    long deadline = now_ms() + ms;
    pthread_mutex_lock(&lock);
    for (;;) {
        for (int i = 0; i < nbox; i++) {
            posted *p = &box[i];
            if (p->node != node || p->m->type != type || p->to.node != to.node ||
                p->to.worker != to.worker)
                continue;
            if (type == ATOLL_MAIL_DIR_ANSWER && p->m->call_id != cookie)
                continue;
            if (id != NULL && strcmp(p->m->from, id) != 0)
                continue;
            atoll__mail *m = p->m;
            memmove(box + i, box + i + 1, (size_t)(nbox - i - 1) * sizeof *box);
            nbox--;
            pthread_mutex_unlock(&lock);
            return m;
        }
        if (!wait_until(deadline))
            break;
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

static const atoll__addr ME = {1, 2};

/* The answer of node's directory for cookie (3 s at most): its status, and the mail in
 * *out when out is not NULL (the caller frees it). */
static int
answer_of(int node, uint64_t cookie, atoll__mail **out)
{
    atoll__mail *m = take_within(node, ATOLL_MAIL_DIR_ANSWER, ME, cookie, NULL, 3000);
    if (m == NULL) {
        fprintf(stderr, "  no answer for cookie %llu\n", (unsigned long long)cookie);
        ASSERT(m != NULL);
    }
    int status = m->status;
    if (out)
        *out = m;
    else
        atoll__mail_free(m);
    return status;
}

/* The invalidation node posted to `to` for id (3 s at most); its epoch. */
static uint64_t
invalidation_of(int node, atoll__addr to, const char *id)
{
    atoll__mail *m = take_within(node, ATOLL_MAIL_DIR_INVALIDATE, to, 0, id, 3000);
    if (m == NULL) {
        fprintf(stderr, "  no invalidation of %s for %u/%u\n", id, to.node, to.worker);
        ASSERT(m != NULL);
    }
    ASSERT_STR(m->from, id);
    uint64_t epoch = m->epoch;
    atoll__mail_free(m);
    return epoch;
}

static atoll__dir_entry
entry(uint64_t num, int node, int worker)
{
    atoll__dir_entry e = {num, {(uint16_t)node, (uint16_t)worker}, 0, 1};
    return e;
}

/* ---- instances and what runs on the loop ---------------------------------------------------- */

#define NODES_MAX 3
static atoll__redis *nodes[NODES_MAX + 1]; /* by the node number the test gives them */

/* A request to run on the loop, and its outcome. */
typedef struct request {
    atoll__redis *r;
    int node_id;
    uint32_t lease_ms;
    const char *json;
    bool done; /* under lock */
    bool held;
    bool up;
    bool claim;   /* a beat that writes the record whatever was there */
    int renewed;  /* a beat's answer */
    size_t n;
    atoll__redis_node nodes[8];
    char ids[16][ATOLL_AREA_ID_MAX + 1];
    atoll__dir_entry entries[16];
} request;

static void
do_attach(void *arg)
{
    atoll__redis_attach(((request *)arg)->r, &loop);
}

static void
do_detach(void *arg)
{
    atoll__redis_detach(((request *)arg)->r);
}

static void
do_up(void *arg)
{
    request *q = arg;
    q->up = atoll__redis_up(q->r);
}

static void
do_leave(void *arg)
{
    request *q = arg;
    atoll__redis_node_leave(q->r, q->node_id);
}

static void
mark_done(request *q)
{
    pthread_mutex_lock(&lock);
    q->done = true;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static void
nodes_done(void *arg, const atoll__redis_node *list, size_t n)
{
    request *q = arg;
    ASSERT((n == 0) == (list == NULL));
    q->n = n < 8 ? n : 8;
    for (size_t i = 0; i < q->n; i++)
        q->nodes[i] = list[i];
    mark_done(q);
}

static void
do_nodes(void *arg)
{
    request *q = arg;
    atoll__redis_nodes(q->r, nodes_done, q);
    ASSERT(!q->done); /* never answered inside the call */
}

static void
beat_done(void *arg, int renewed)
{
    request *q = arg;
    q->renewed = renewed;
    mark_done(q);
}

static void
do_beat(void *arg)
{
    request *q = arg;
    atoll__redis_node_beat(q->r, q->node_id, q->json, q->lease_ms, q->claim, beat_done, q);
}

static void
coord_done(void *arg, bool held)
{
    request *q = arg;
    q->held = held;
    mark_done(q);
}

static void
do_coord(void *arg)
{
    request *q = arg;
    atoll__redis_coord_lease(q->r, q->node_id, q->lease_ms, coord_done, q);
    ASSERT(!q->done);
}

static void
areas_done(void *arg, char **ids, const atoll__dir_entry *entries, size_t n)
{
    request *q = arg;
    q->n = n < 16 ? n : 16;
    for (size_t i = 0; i < q->n; i++) {
        snprintf(q->ids[i], sizeof q->ids[i], "%s", ids[i]);
        q->entries[i] = entries[i];
    }
    mark_done(q);
}

static void
do_areas(void *arg)
{
    request *q = arg;
    atoll__redis_node_areas(q->r, q->node_id, areas_done, q);
    ASSERT(!q->done);
}

static void
wait_done(request *q)
{
    long deadline = now_ms() + 5000;
    pthread_mutex_lock(&lock);
    while (!q->done && wait_until(deadline))
        ;
    bool done = q->done;
    pthread_mutex_unlock(&lock);
    ASSERT(done);
}

static bool
is_up(atoll__redis *r)
{
    request q = {.r = r};
    on_loop(do_up, &q);
    return q.up;
}

static void
wait_up(atoll__redis *r, bool up, int ms)
{
    long deadline = now_ms() + ms;
    while (is_up(r) != up) {
        ASSERT(now_ms() < deadline);
        usleep(10 * 1000);
    }
}

/* A heartbeat that writes the record (claim) or renews it only while it is there;
 * returns its answer: 1 renewed or written, 0 the record was gone, -1 no answer. */
static int
beat_as(atoll__redis *r, int node_id, const char *json, uint32_t lease_ms, bool claim)
{
    request q = {.r = r, .node_id = node_id, .json = json, .lease_ms = lease_ms, .claim = claim};
    on_loop(do_beat, &q);
    wait_done(&q);
    return q.renewed;
}

static void
beat(atoll__redis *r, int node_id, const char *json, uint32_t lease_ms)
{
    ASSERT_EQ(beat_as(r, node_id, json, lease_ms, true), 1);
}

static void
leave(atoll__redis *r, int node_id)
{
    request q = {.r = r, .node_id = node_id};
    on_loop(do_leave, &q);
}

static bool
coord(atoll__redis *r, int node_id, uint32_t lease_ms)
{
    request q = {.r = r, .node_id = node_id, .lease_ms = lease_ms};
    on_loop(do_coord, &q);
    wait_done(&q);
    return q.held;
}

/* The live nodes into *q. */
static void
live_nodes(atoll__redis *r, request *q)
{
    memset(q, 0, sizeof *q);
    q->r = r;
    on_loop(do_nodes, q);
    wait_done(q);
}

static void
areas_of(atoll__redis *r, int node_id, request *q)
{
    memset(q, 0, sizeof *q);
    q->r = r;
    q->node_id = node_id;
    on_loop(do_areas, q);
    wait_done(q);
}

static atoll__dir *
dir_of(int node)
{
    return atoll__redis_dir(nodes[node]);
}

/* A server, the cluster thread, and n instances (nodes 1..n) attached and up. */
static void
start(int n)
{
    ASSERT(redis_start(&server, url, sizeof url));
    ASSERT_EQ(uv_loop_init(&loop), 0);
    ASSERT_EQ(uv_async_init(&loop, &jobs_wake, on_jobs), 0);
    ASSERT_EQ(pthread_create(&loop_thread, NULL, loop_main, NULL), 0);
    for (int i = 1; i <= n; i++) {
        char err[256] = "";
        nodes[i] = atoll__redis_new(url, capture, (void *)(intptr_t)i, err, sizeof err);
        if (nodes[i] == NULL)
            fprintf(stderr, "  %s\n", err);
        ASSERT(nodes[i] != NULL);
        request q = {.r = nodes[i]};
        on_loop(do_attach, &q);
        wait_up(nodes[i], true, 3000);
    }
}

static void
close_jobs(void *arg)
{
    uv_close((uv_handle_t *)&jobs_wake, NULL);
}

/* Detaches every instance, lets the loop end (it ends only with no handle left), frees
 * everything and stops the server. */
static void
finish(void)
{
    for (int i = 1; i <= NODES_MAX; i++) {
        if (nodes[i] == NULL)
            continue;
        request q = {.r = nodes[i]};
        on_loop(do_detach, &q);
    }
    on_loop(close_jobs, NULL);
    ASSERT_EQ(pthread_join(loop_thread, NULL), 0);
    ASSERT_EQ(uv_loop_close(&loop), 0); /* UV_EBUSY if a handle were left */
    for (int i = 1; i <= NODES_MAX; i++) {
        atoll__redis_free(nodes[i]);
        nodes[i] = NULL;
    }
    box_clear();
    redis_stop(&server);
    LEAK_CHECK();
}

/* Makes sure that `to`, subscribed to node sub's directory, hears invalidations that
 * node pub publishes (a subscription is confirmed some time after the connection is
 * up), then empties the box. */
static void
sync_invalidations(int pub, int sub, atoll__addr to)
{
    long deadline = now_ms() + 5000;
    for (int i = 1;; i++) {
        ASSERT(now_ms() < deadline);
        char id[32];
        snprintf(id, sizeof id, "probe-%d", i);
        dir_of(pub)->ops->invalidate(dir_of(pub), id, (uint64_t)i);
        atoll__mail *m = take_within(sub, ATOLL_MAIL_DIR_INVALIDATE, to, 0, id, 100);
        if (m != NULL) {
            ASSERT_EQ(m->epoch, i);
            atoll__mail_free(m);
            break;
        }
    }
    usleep(50 * 1000); /* the probes' copies for other subscribers */
    box_clear();
}

/* ---- stderr, for the log lines of an outage ------------------------------------------------- */

static int saved_stderr = -1;
static char log_path[300];

/* The process's stderr goes to a file in the server's directory until log_end, which
 * echoes what was written. No assertion between the two: a failure's sentence would
 * go to the file. */
static void
log_begin(void)
{
    snprintf(log_path, sizeof log_path, "%s/test-stderr.log", server.dir);
    fflush(stderr);
    saved_stderr = dup(2);
    int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    close(fd);
}

static void
log_end(void)
{
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    saved_stderr = -1;
    FILE *f = fopen(log_path, "r");
    ASSERT(f != NULL);
    char text[4096];
    size_t n;
    while ((n = fread(text, 1, sizeof text, f)) > 0)
        fwrite(text, 1, n, stderr);
    fclose(f);
    unlink(log_path);
}

/* Whether what was written since log_begin has text, waiting ms at most. */
static bool
log_wait(const char *text, int ms)
{
    long deadline = now_ms() + ms;
    static char seen[16384];
    for (;;) {
        FILE *f = fopen(log_path, "r");
        if (f != NULL) {
            size_t n = fread(seen, 1, sizeof seen - 1, f);
            seen[n] = '\0';
            fclose(f);
            if (strstr(seen, text) != NULL)
                return true;
        }
        if (now_ms() >= deadline)
            return false;
        usleep(20 * 1000);
    }
}

/* ---- the directory's contract --------------------------------------------------------------- */

TEST(contract)
{
    start(1);
    atoll__dir *d = dir_of(1);
    const atoll__addr sub1 = {1, 0}, sub2 = {1, 1};
    d->ops->subscribe(d, sub1);
    d->ops->subscribe(d, sub2);
    sync_invalidations(1, 1, sub1);

    /* Answers come as mail, with the cookie and the id. */
    d->ops->resolve(d, "room", ME, 7);
    atoll__mail *m;
    ASSERT_EQ(answer_of(1, 7, &m), ATOLL_ENOENT);
    ASSERT_STR(m->from, "room");
    atoll__mail_free(m);
    atoll__dir_entry e = entry(100, 1, 3);
    d->ops->place(d, "room", &e, ME, 8);
    ASSERT_EQ(answer_of(1, 8, &m), ATOLL_OK);
    ASSERT_STR(m->from, "room");
    uint64_t room_epoch = m->epoch;
    ASSERT(room_epoch > 0);
    atoll__mail_free(m);
    d->ops->resolve(d, "room", ME, 9);
    ASSERT_EQ(answer_of(1, 9, &m), ATOLL_OK);
    atoll__dir_entry got = atoll__dir_answer_entry(m);
    ASSERT_EQ(got.num, 100);
    ASSERT_EQ(got.owner.node, 1);
    ASSERT_EQ(got.owner.worker, 3);
    ASSERT_EQ(got.epoch, room_epoch);
    ASSERT_EQ(got.type_index, 1);
    atoll__mail_free(m);

    /* Cookie 0: nothing is posted (the answer of a later call comes after it would). */
    d->ops->resolve(d, "room", ME, 0);
    d->ops->resolve(d, "room", ME, 10);
    ASSERT_EQ(answer_of(1, 10, NULL), ATOLL_OK);
    ASSERT_EQ(box_count(), 0);

    /* place is create-if-absent. */
    atoll__dir_entry a = entry(1, 1, 0), b = entry(2, 1, 1), moved = entry(1, 1, 1);
    d->ops->place(d, "x", &a, ME, 1);
    ASSERT_EQ(answer_of(1, 1, &m), ATOLL_OK);
    uint64_t e1 = m->epoch;
    atoll__mail_free(m);
    d->ops->place(d, "x", &b, ME, 2);
    ASSERT_EQ(answer_of(1, 2, &m), ATOLL_EEXIST);
    ASSERT_EQ(m->area, 1); /* the first one stays */
    ASSERT_EQ(m->at.worker, 0);
    ASSERT_EQ(m->epoch, e1);
    atoll__mail_free(m);

    /* A stale epoch loses and changes nothing; nobody is told anything. */
    d->ops->cas_owner(d, "x", e1 + 5, &moved, ME, 3);
    ASSERT_EQ(answer_of(1, 3, &m), ATOLL_ESTATE);
    ASSERT_EQ(m->epoch, e1);
    ASSERT_EQ(m->at.worker, 0);
    atoll__mail_free(m);

    /* The right epoch wins: a new epoch, and both subscribers hear of the old one. */
    d->ops->cas_owner(d, "x", e1, &moved, ME, 4);
    ASSERT_EQ(answer_of(1, 4, &m), ATOLL_OK);
    uint64_t e2 = m->epoch;
    ASSERT(e2 > e1);
    ASSERT_EQ(m->at.worker, 1);
    ASSERT_EQ(m->area, 1);
    atoll__mail_free(m);
    ASSERT_EQ(invalidation_of(1, sub1, "x"), e1);
    ASSERT_EQ(invalidation_of(1, sub2, "x"), e1);

    /* Removal is a compare-and-set to nothing (cookie 0: the invalidations alone);
     * placed again, the id's epoch still grows. */
    d->ops->cas_owner(d, "x", e2, NULL, ME, 0);
    ASSERT_EQ(invalidation_of(1, sub1, "x"), e2);
    ASSERT_EQ(invalidation_of(1, sub2, "x"), e2);
    d->ops->resolve(d, "x", ME, 5);
    ASSERT_EQ(answer_of(1, 5, NULL), ATOLL_ENOENT);
    ASSERT_EQ(box_count(), 0); /* no answer for cookie 0, no invalidation of the ESTATE */
    d->ops->place(d, "x", &a, ME, 6);
    ASSERT_EQ(answer_of(1, 6, &m), ATOLL_OK);
    ASSERT(m->epoch > e2);
    atoll__mail_free(m);
    /* A removal answered with a cookie: OK and no entry. */
    d->ops->resolve(d, "room", ME, 11);
    ASSERT_EQ(answer_of(1, 11, &m), ATOLL_OK);
    uint64_t room_now = m->epoch;
    atoll__mail_free(m);
    d->ops->cas_owner(d, "room", room_now, NULL, ME, 12);
    ASSERT_EQ(answer_of(1, 12, &m), ATOLL_OK);
    ASSERT_EQ(m->epoch, 0);
    ASSERT_STR(m->from, "room");
    atoll__mail_free(m);
    invalidation_of(1, sub1, "room");
    invalidation_of(1, sub2, "room");

    /* Of an id that is not there. */
    d->ops->cas_owner(d, "nope", 1, NULL, ME, 13);
    ASSERT_EQ(answer_of(1, 13, NULL), ATOLL_ENOENT);
    /* invalidate publishes by itself too. */
    d->ops->invalidate(d, "y", 42);
    ASSERT_EQ(invalidation_of(1, sub1, "y"), 42);
    ASSERT_EQ(invalidation_of(1, sub2, "y"), 42);

    /* Players are bound and found. */
    d->ops->bind_player(d, "alice", "room");
    d->ops->find_player(d, "alice", ME, 20);
    ASSERT_EQ(answer_of(1, 20, &m), ATOLL_OK);
    ASSERT_STR(m->from, "room");
    atoll__mail_free(m);
    d->ops->bind_player(d, "alice", "hall");
    d->ops->find_player(d, "alice", ME, 21);
    ASSERT_EQ(answer_of(1, 21, &m), ATOLL_OK);
    ASSERT_STR(m->from, "hall");
    atoll__mail_free(m);
    d->ops->bind_player(d, "alice", NULL);
    d->ops->find_player(d, "alice", ME, 22);
    ASSERT_EQ(answer_of(1, 22, &m), ATOLL_ENOENT);
    ASSERT_STR(m->from, "");
    atoll__mail_free(m);
    d->ops->bind_player(d, "bob", "room");
    d->ops->bind_player(d, "bob", "");
    d->ops->find_player(d, "bob", ME, 23);
    ASSERT_EQ(answer_of(1, 23, NULL), ATOLL_ENOENT);

    /* Every field of an entry comes back as it went: a number above 2^53 (the node's
     * bits on top), a negative type index. */
    atoll__dir_entry odd = {(uint64_t)4095 << 52 | 12345, {4095, 255}, 0, -3};
    d->ops->place(d, "odd", &odd, ME, 30);
    ASSERT_EQ(answer_of(1, 30, NULL), ATOLL_OK);
    d->ops->resolve(d, "odd", ME, 31);
    ASSERT_EQ(answer_of(1, 31, &m), ATOLL_OK);
    got = atoll__dir_answer_entry(m);
    ASSERT(got.num == ((uint64_t)4095 << 52 | 12345));
    ASSERT_EQ(got.owner.node, 4095);
    ASSERT_EQ(got.owner.worker, 255);
    ASSERT_EQ(got.type_index, -3);
    atoll__mail_free(m);

    /* Many ids, sent at once, each found with its own entry. */
    char id[32];
    for (int i = 0; i < 500; i++) {
        snprintf(id, sizeof id, "area-%d", i);
        atoll__dir_entry ei = entry((uint64_t)i + 1, 1 + i % 3, i % 4);
        d->ops->place(d, id, &ei, ME, 0);
    }
    for (int i = 0; i < 500; i += 37) {
        snprintf(id, sizeof id, "area-%d", i);
        d->ops->resolve(d, id, ME, 1000 + (uint64_t)i);
    }
    for (int i = 0; i < 500; i += 37) {
        ASSERT_EQ(answer_of(1, 1000 + (uint64_t)i, &m), ATOLL_OK);
        ASSERT_EQ(m->area, (uint64_t)i + 1);
        ASSERT_EQ(m->at.node, 1 + i % 3);
        ASSERT_EQ(m->at.worker, i % 4);
        atoll__mail_free(m);
    }
    ASSERT_EQ(box_count(), 0);
    finish();
}

/* Another node's subscribers hear of a write once it is in Redis: what they resolve
 * then is the new entry. Each node tells only its own subscribers. */
TEST(invalidations_reach_other_nodes_after_the_write)
{
    start(2);
    atoll__dir *a = dir_of(1), *b = dir_of(2);
    const atoll__addr worker_a = {1, 0}, worker_b = {2, 0};
    a->ops->subscribe(a, worker_a);
    b->ops->subscribe(b, worker_b);
    sync_invalidations(1, 2, worker_b);
    sync_invalidations(2, 1, worker_a);

    atoll__dir_entry e = entry(7, 1, 0), moved = entry(7, 2, 0);
    a->ops->place(a, "hall", &e, ME, 1);
    atoll__mail *m;
    ASSERT_EQ(answer_of(1, 1, &m), ATOLL_OK);
    uint64_t e1 = m->epoch;
    atoll__mail_free(m);
    a->ops->cas_owner(a, "hall", e1, &moved, ME, 0);
    ASSERT_EQ(invalidation_of(2, worker_b, "hall"), e1);
    b->ops->resolve(b, "hall", ME, 2);
    ASSERT_EQ(answer_of(2, 2, &m), ATOLL_OK);
    ASSERT(m->epoch > e1);
    ASSERT_EQ(m->at.node, 2);
    atoll__mail_free(m);
    ASSERT_EQ(invalidation_of(1, worker_a, "hall"), e1);

    /* invalidate of one node reaches the other's subscribers too. */
    b->ops->invalidate(b, "hall", 99);
    ASSERT_EQ(invalidation_of(1, worker_a, "hall"), 99);
    ASSERT_EQ(invalidation_of(2, worker_b, "hall"), 99);
    usleep(50 * 1000);
    ASSERT_EQ(box_count(), 0); /* nothing went to the other node's workers */
    finish();
}

/* ---- the registry --------------------------------------------------------------------------- */

static int
join(const char *name)
{
    char err[256] = "";
    int id = 0;
    int rc = atoll__redis_node_join(nodes[1], name, &id, err, sizeof err);
    if (rc != ATOLL_OK)
        fprintf(stderr, "  join %s: %s\n", name, err);
    ASSERT_EQ(rc, ATOLL_OK);
    ASSERT(id >= 1 && id <= ATOLL_NODE_ID_MAX);
    return id;
}

static void
beat_named(int id, const char *name, uint32_t lease_ms)
{
    char json[128];
    snprintf(json, sizeof json, "{\"name\":\"%s\",\"advertise\":\"\",\"roles\":3,\"load\":0}",
             name);
    beat(nodes[1], id, json, lease_ms);
}

TEST(node_join_gives_ids)
{
    start(1);
    int alpha = join("alpha"), beta = join("beta");
    ASSERT(alpha != beta);
    /* alpha's id is held (its join's placeholder): a second "alpha" gets another. */
    int alpha2 = join("alpha");
    ASSERT(alpha2 != alpha && alpha2 != beta);
    beat_named(alpha, "alpha", 250);
    beat_named(alpha2, "alpha", 250);
    beat_named(beta, "beta", 10000);
    request q;
    live_nodes(nodes[1], &q); /* the beats are in (one connection keeps the order) */
    ASSERT_EQ(q.n, 3);
    usleep(400 * 1000);
    /* Dead, alpha gets the id it had back; beta, alive, is never given its own. */
    ASSERT_EQ(join("alpha"), alpha);
    int beta2 = join("beta");
    ASSERT(beta2 != beta && beta2 != alpha && beta2 != alpha2);
    int gamma = join("gamma");
    ASSERT(gamma != alpha && gamma != alpha2 && gamma != beta && gamma != beta2);

    /* Every id was used once: a new name gets a dead node's id, never a live one's. */
    ASSERT(redis_exec(&server, NULL, 0, "FLUSHALL"));
    ASSERT(redis_exec(&server, NULL, 0,
                      "EVAL %s 0", "for i = 1, 4095 do redis.call('HSET', 'atoll:nodes', i, "
                                   "'old' .. i) end"));
    ASSERT(redis_exec(&server, NULL, 0, "SET atoll:node:1 {} PX 10000"));
    ASSERT(redis_exec(&server, NULL, 0, "SET atoll:node:2 {} PX 10000"));
    ASSERT_EQ(join("newcomer"), 3);
    ASSERT_EQ(join("old2"), 4); /* its own id is live; 3 is held by newcomer now */
    ASSERT_EQ(join("old5"), 5); /* its own, dead */
    /* A dead node whose areas were not taken yet keeps its id from everyone, itself
     * included: the coordinator lists areas by node id. */
    ASSERT(redis_exec(&server, NULL, 0, "SADD atoll:node_areas:6 some-area"));
    int six = join("old6");
    ASSERT(six != 6);
    ASSERT(redis_exec(&server, NULL, 0, "DEL atoll:node_areas:6"));
    ASSERT_EQ(join("old6"), 6); /* taken over now: its id again */
    char out[64];
    ASSERT(redis_exec(&server, out, sizeof out, "HGET atoll:nodes 4"));
    ASSERT_STR(out, "old2");

    /* All held: refused with a sentence. */
    ASSERT(redis_exec(&server, NULL, 0,
                      "EVAL %s 0", "for i = 1, 4095 do redis.call('SET', 'atoll:node:' .. i, "
                                   "'{}', 'PX', 10000) end"));
    char err[256] = "";
    int id = -1;
    ASSERT_EQ(atoll__redis_node_join(nodes[1], "late", &id, err, sizeof err), ATOLL_ELIMIT);
    ASSERT(strstr(err, "live node") != NULL);
    ASSERT_EQ(id, -1);
    ASSERT_EQ(atoll__redis_node_join(nodes[1], "", &id, err, sizeof err), ATOLL_EINVAL);
    finish();
}

TEST(leases_expire)
{
    start(1);
    request q;
    live_nodes(nodes[1], &q);
    ASSERT_EQ(q.n, 0);
    const char *rec1 =
        "{\"name\":\"n1\",\"advertise\":\"127.0.0.1:7001\",\"roles\":3,\"load\":0.5}";
    const char *rec2 =
        "{\"name\":\"n2\",\"advertise\":\"127.0.0.1:7002\",\"roles\":4,\"load\":2}";
    beat(nodes[1], 2, rec2, 10000);
    beat(nodes[1], 1, rec1, 300);
    live_nodes(nodes[1], &q);
    ASSERT_EQ(q.n, 2);
    ASSERT_EQ(q.nodes[0].id, 1); /* by id */
    ASSERT_STR(q.nodes[0].name, "n1");
    ASSERT_STR(q.nodes[0].advertise, "127.0.0.1:7001");
    ASSERT_EQ(q.nodes[0].roles, 3);
    ASSERT(q.nodes[0].load == 0.5);
    ASSERT_STR(q.nodes[0].info, rec1);
    ASSERT_EQ(q.nodes[1].id, 2);
    ASSERT_STR(q.nodes[1].name, "n2");
    ASSERT_EQ(q.nodes[1].roles, 4);
    ASSERT(q.nodes[1].load == 2);

    /* Node 1 stops beating: gone once its lease ends. */
    usleep(450 * 1000);
    live_nodes(nodes[1], &q);
    ASSERT_EQ(q.n, 1);
    ASSERT_EQ(q.nodes[0].id, 2);
    /* Its next plain heartbeat is told so, and does not bring it back to life; a claim
     * does. */
    ASSERT_EQ(beat_as(nodes[1], 1, rec1, 300, false), 0);
    live_nodes(nodes[1], &q);
    ASSERT_EQ(q.n, 1);
    ASSERT_EQ(beat_as(nodes[1], 1, rec1, 300, true), 1);
    ASSERT_EQ(beat_as(nodes[1], 1, rec1, 300, false), 1);
    live_nodes(nodes[1], &q);
    ASSERT_EQ(q.n, 2);
    usleep(450 * 1000);
    /* A beat renews the lease: it starts again. */
    beat(nodes[1], 2, rec2, 400);
    usleep(150 * 1000);
    beat(nodes[1], 2, rec2, 400);
    live_nodes(nodes[1], &q); /* after the beat: one connection keeps the order */
    ASSERT_EQ(q.n, 1);
    char out[32];
    ASSERT(redis_exec(&server, out, sizeof out, "PTTL atoll:node:2"));
    ASSERT(atoi(out) > 300); /* 250 at most without the second beat */
    /* A clean stop ends the lease at once. */
    leave(nodes[1], 2);
    live_nodes(nodes[1], &q);
    ASSERT_EQ(q.n, 0);
    finish();
}

TEST(coordinator_lease_is_exclusive_and_moves)
{
    start(2);
    atoll__redis *a = nodes[1], *b = nodes[2];
    ASSERT(coord(a, 1, 1000));
    ASSERT(!coord(b, 2, 1000));
    /* Renewed by its holder: the lease starts again. */
    usleep(300 * 1000);
    ASSERT(coord(a, 1, 1000));
    char out[32];
    ASSERT(redis_exec(&server, out, sizeof out, "PTTL atoll:coordinator"));
    ASSERT(atoi(out) > 800);
    ASSERT(redis_exec(&server, out, sizeof out, "GET atoll:coordinator"));
    ASSERT_STR(out, "1");
    ASSERT(!coord(b, 2, 1000));

    /* The holder stops renewing (its last lease short): the other node takes it once
     * the lease ended. */
    ASSERT(coord(a, 1, 150));
    usleep(250 * 1000);
    ASSERT(coord(b, 2, 1000));
    ASSERT(!coord(a, 1, 1000));
    /* A clean stop of the holder frees it at once (b's command goes on b's connection:
     * a's may come first to Redis, so the test waits for the DEL). */
    leave(b, 2);
    long deadline = now_ms() + 500;
    while (redis_exec(&server, out, sizeof out, "EXISTS atoll:coordinator") &&
           strcmp(out, "0") != 0) {
        ASSERT(now_ms() < deadline);
        usleep(5 * 1000);
    }
    ASSERT(coord(a, 1, 1000));
    /* node_leave of a node that does not hold it leaves it alone. */
    leave(b, 2);
    ASSERT(coord(a, 1, 1000));
    ASSERT(!coord(b, 2, 1000));
    finish();
}

TEST(node_areas_follow_the_directory)
{
    start(1);
    atoll__dir *d = dir_of(1);
    atoll__dir_entry x = entry(11, 1, 0), y = entry(12, 1, 1), z = entry(13, 2, 0);
    d->ops->place(d, "x", &x, ME, 1);
    d->ops->place(d, "y", &y, ME, 2);
    d->ops->place(d, "z", &z, ME, 3);
    atoll__mail *m;
    ASSERT_EQ(answer_of(1, 1, &m), ATOLL_OK);
    uint64_t ex = m->epoch;
    atoll__mail_free(m);
    ASSERT_EQ(answer_of(1, 2, &m), ATOLL_OK);
    uint64_t ey = m->epoch;
    atoll__mail_free(m);
    ASSERT_EQ(answer_of(1, 3, NULL), ATOLL_OK);

    request q;
    areas_of(nodes[1], 1, &q);
    ASSERT_EQ(q.n, 2);
    ASSERT_STR(q.ids[0], "x");
    ASSERT_EQ(q.entries[0].num, 11);
    ASSERT_EQ(q.entries[0].epoch, ex);
    ASSERT_STR(q.ids[1], "y");
    ASSERT_EQ(q.entries[1].owner.worker, 1);
    areas_of(nodes[1], 2, &q);
    ASSERT_EQ(q.n, 1);
    ASSERT_STR(q.ids[0], "z");

    /* x moves to node 2, y goes. */
    atoll__dir_entry x2 = entry(11, 2, 3);
    d->ops->cas_owner(d, "x", ex, &x2, ME, 4);
    ASSERT_EQ(answer_of(1, 4, NULL), ATOLL_OK);
    d->ops->cas_owner(d, "y", ey, NULL, ME, 5);
    ASSERT_EQ(answer_of(1, 5, NULL), ATOLL_OK);
    areas_of(nodes[1], 1, &q);
    ASSERT_EQ(q.n, 0);
    areas_of(nodes[1], 2, &q);
    ASSERT_EQ(q.n, 2);
    ASSERT_STR(q.ids[0], "x");
    ASSERT_EQ(q.entries[0].owner.node, 2);
    ASSERT_EQ(q.entries[0].owner.worker, 3);
    ASSERT_STR(q.ids[1], "z");

    /* An id in a node's set whose entry names another node is dropped, from the answer
     * and from the set. */
    ASSERT(redis_exec(&server, NULL, 0, "SADD atoll:node_areas:1 z gone"));
    areas_of(nodes[1], 1, &q);
    ASSERT_EQ(q.n, 0);
    char out[16];
    ASSERT(redis_exec(&server, out, sizeof out, "SCARD atoll:node_areas:1"));
    ASSERT_STR(out, "0");
    finish();
}

/* ---- Redis going away ----------------------------------------------------------------------- */

TEST(outage_answers_eio_and_recovers)
{
    start(2);
    atoll__dir *a = dir_of(1), *b = dir_of(2);
    const atoll__addr worker_a = {1, 0}, worker_b = {2, 0};
    a->ops->subscribe(a, worker_a);
    b->ops->subscribe(b, worker_b);
    atoll__dir_entry e = entry(5, 1, 0);
    a->ops->place(a, "keep", &e, ME, 1);
    atoll__mail *m;
    ASSERT_EQ(answer_of(1, 1, &m), ATOLL_OK);
    uint64_t e1 = m->epoch;
    atoll__mail_free(m);
    a->ops->bind_player(a, "carol", "keep");
    sync_invalidations(1, 2, worker_b);
    sync_invalidations(2, 1, worker_a);

    log_begin();
    redis_down(&server);
    /* Sent as Redis goes: each answered, ATOLL_EIO (none is lost). */
    for (uint64_t i = 0; i < 20; i++)
        a->ops->resolve(a, "keep", ME, 100 + i);
    long deadline = now_ms() + 3000;
    while ((is_up(nodes[1]) || is_up(nodes[2])) && now_ms() < deadline)
        usleep(10 * 1000);
    bool went_down = !is_up(nodes[1]) && !is_up(nodes[2]);
    bool logged_down = log_wait("msg=\"redis down\"", 1000);
    log_end();
    ASSERT(went_down);
    ASSERT(logged_down);
    for (uint64_t i = 0; i < 20; i++)
        ASSERT_EQ(answer_of(1, 100 + i, NULL), ATOLL_EIO);

    /* While it is down: every operation answered ATOLL_EIO at once. */
    long t0 = now_ms();
    a->ops->resolve(a, "keep", ME, 200);
    a->ops->place(a, "new", &e, ME, 201);
    a->ops->cas_owner(a, "keep", e1, NULL, ME, 202);
    a->ops->find_player(a, "carol", ME, 203);
    for (uint64_t c = 200; c <= 203; c++)
        ASSERT_EQ(answer_of(1, c, NULL), ATOLL_EIO);
    ASSERT(now_ms() - t0 < 500);
    ASSERT(!coord(nodes[1], 1, 1000));
    request q;
    live_nodes(nodes[1], &q);
    ASSERT_EQ(q.n, 0);
    areas_of(nodes[1], 1, &q);
    ASSERT_EQ(q.n, 0);

    /* Back: the connections come again by themselves, the data is there (the
     * append-only file), and invalidations flow again both ways. */
    usleep(500 * 1000);
    log_begin();
    bool restarted = redis_up(&server);
    bool logged_up = restarted && log_wait("msg=\"redis up again\"", 6000);
    /* The first "up again" is one connection of one node: the others follow within
     * their retry (100 ms), later on a loaded machine. */
    long back_by = now_ms() + 6000;
    bool came_back = false;
    while (restarted && !(came_back = is_up(nodes[1]) && is_up(nodes[2])) && now_ms() < back_by)
        usleep(50 * 1000);
    log_end();
    ASSERT(restarted);
    ASSERT(logged_up); /* both connections of both nodes, the subscriptions too */
    ASSERT(came_back);
    sync_invalidations(1, 2, worker_b);
    sync_invalidations(2, 1, worker_a);
    b->ops->resolve(b, "keep", ME, 300);
    ASSERT_EQ(answer_of(2, 300, &m), ATOLL_OK);
    ASSERT_EQ(m->epoch, e1);
    atoll__mail_free(m);
    a->ops->find_player(a, "carol", ME, 301);
    ASSERT_EQ(answer_of(1, 301, NULL), ATOLL_OK);
    atoll__dir_entry moved = entry(5, 2, 0);
    a->ops->cas_owner(a, "keep", e1, &moved, ME, 302);
    ASSERT_EQ(answer_of(1, 302, NULL), ATOLL_OK);
    ASSERT_EQ(invalidation_of(2, worker_b, "keep"), e1);
    ASSERT_EQ(invalidation_of(1, worker_a, "keep"), e1);

    /* A quick restart: the same, with no pause between the stop and the start. */
    a->ops->resolve(a, "keep", ME, 400);
    ASSERT_EQ(answer_of(1, 400, &m), ATOLL_OK);
    uint64_t e2 = m->epoch;
    atoll__mail_free(m);
    ASSERT(redis_restart(&server));
    long restart_deadline = now_ms() + 5000;
    for (uint64_t c = 401;; c++) {
        ASSERT(now_ms() < restart_deadline);
        a->ops->resolve(a, "keep", ME, c);
        int status = answer_of(1, c, &m);
        uint64_t epoch = m->epoch;
        atoll__mail_free(m);
        if (status == ATOLL_OK) {
            ASSERT_EQ(epoch, e2);
            break;
        }
        ASSERT_EQ(status, ATOLL_EIO);
        usleep(20 * 1000);
    }
    sync_invalidations(1, 2, worker_b);
    sync_invalidations(2, 1, worker_a);
    finish();
}

/* A Redis that stops answering without closing its connections (paused here, cut off
 * by a network in production): what waits for it is answered ATOLL_EIO after the reply
 * timeout, and the connections come back once it answers again. */
TEST(hung_redis_answers_eio)
{
    start(1);
    atoll__dir *d = dir_of(1);
    atoll__dir_entry e = entry(9, 1, 0);
    d->ops->place(d, "h", &e, ME, 1);
    ASSERT_EQ(answer_of(1, 1, NULL), ATOLL_OK);
    ASSERT_EQ(kill(server.pid, SIGSTOP), 0);
    long t0 = now_ms();
    d->ops->resolve(d, "h", ME, 2);
    atoll__mail *m = take_within(1, ATOLL_MAIL_DIR_ANSWER, ME, 2, NULL, 5000);
    long waited = now_ms() - t0;
    kill(server.pid, SIGCONT);
    ASSERT(m != NULL);
    ASSERT_EQ(m->status, ATOLL_EIO);
    atoll__mail_free(m);
    fprintf(stderr, "  # answered after %ld ms\n", waited);
    ASSERT(waited >= 1500 && waited < 4000);
    /* Back: answers again (after the connections were made anew). */
    long deadline = now_ms() + 6000;
    for (uint64_t c = 10;; c++) {
        ASSERT(now_ms() < deadline);
        d->ops->resolve(d, "h", ME, c);
        if (answer_of(1, c, NULL) == ATOLL_OK)
            break;
        usleep(50 * 1000);
    }
    finish();
}

/* ---- a connection reset --------------------------------------------------------------------- */

/* A server that answers the first connection's PING (atoll__redis_new's check) and
 * resets each later connection when its first command comes (SO_LINGER 0: RST, not
 * FIN), one connection after the other: the connection is up on the client's side
 * when the reset comes. */
static int fake_fd = -1;
static pthread_t fake_thread;

static void *
fake_main(void *arg)
{
    bool first = true;
    for (;;) {
        int c = accept(fake_fd, NULL, NULL);
        if (c < 0)
            return NULL; /* shut down */
        char buf[512];
        if (first) {
            first = false;
            if (read(c, buf, sizeof buf) > 0)
                (void)!write(c, "+PONG\r\n", 7);
            while (read(c, buf, sizeof buf) > 0) /* until the client closes it */
                ;
            close(c);
            continue;
        }
        if (read(c, buf, sizeof buf) > 0) {
            struct linger reset = {1, 0};
            setsockopt(c, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        }
        close(c);
    }
}

/* A connection reset by the peer is seen when it happens (libuv reports it as a poll
 * error, which hiredis 0.14's adapter drops): the directory answers ATOLL_EIO at once,
 * not after the reply timeout. */
TEST(connection_reset_is_seen_at_once)
{
    fake_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    ASSERT(bind(fake_fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    ASSERT(getsockname(fake_fd, (struct sockaddr *)&sa, &len) == 0);
    ASSERT(listen(fake_fd, 16) == 0);
    ASSERT_EQ(pthread_create(&fake_thread, NULL, fake_main, NULL), 0);
    char fake_url[64], err[256] = "";
    snprintf(fake_url, sizeof fake_url, "redis://127.0.0.1:%d", ntohs(sa.sin_port));

    ASSERT_EQ(uv_loop_init(&loop), 0);
    ASSERT_EQ(uv_async_init(&loop, &jobs_wake, on_jobs), 0);
    ASSERT_EQ(pthread_create(&loop_thread, NULL, loop_main, NULL), 0);
    nodes[1] = atoll__redis_new(fake_url, capture, (void *)(intptr_t)1, err, sizeof err);
    ASSERT(nodes[1] != NULL);
    request q = {.r = nodes[1]};
    on_loop(do_attach, &q);
    wait_up(nodes[1], true, 3000);
    atoll__dir *d = dir_of(1);
    long t0 = now_ms();
    d->ops->resolve(d, "x", ME, 1);
    ASSERT_EQ(answer_of(1, 1, NULL), ATOLL_EIO);
    long waited = now_ms() - t0;
    fprintf(stderr, "  # answered after %ld ms\n", waited);
    ASSERT(waited < 1000);
    ASSERT(!is_up(nodes[1]));

    on_loop(do_detach, &q);
    on_loop(close_jobs, NULL);
    ASSERT_EQ(pthread_join(loop_thread, NULL), 0);
    ASSERT_EQ(uv_loop_close(&loop), 0);
    atoll__redis_free(nodes[1]);
    nodes[1] = NULL;
    shutdown(fake_fd, SHUT_RDWR);
    ASSERT_EQ(pthread_join(fake_thread, NULL), 0);
    close(fake_fd);
    box_clear();
    LEAK_CHECK();
}

/* Epochs grow across a Redis that lost its data (they are never less than its clock in
 * microseconds) and follow the counter when it is ahead of the clock, exactly up to
 * 2^53. */
TEST(epochs_grow_after_flushall)
{
    start(1);
    atoll__dir *d = dir_of(1);
    atoll__dir_entry e = entry(1, 1, 0);
    d->ops->place(d, "f", &e, ME, 1);
    atoll__mail *m;
    ASSERT_EQ(answer_of(1, 1, &m), ATOLL_OK);
    uint64_t e1 = m->epoch;
    atoll__mail_free(m);
    ASSERT(redis_exec(&server, NULL, 0, "FLUSHALL"));
    d->ops->place(d, "f", &e, ME, 2);
    ASSERT_EQ(answer_of(1, 2, &m), ATOLL_OK); /* the entry went with the data */
    ASSERT(m->epoch > e1);
    atoll__mail_free(m);

    /* A counter ahead of the clock: one more each time, exact near 2^53. */
    ASSERT(redis_exec(&server, NULL, 0, "SET atoll:epoch 9007199254740000"));
    d->ops->place(d, "g", &e, ME, 3);
    ASSERT_EQ(answer_of(1, 3, &m), ATOLL_OK);
    ASSERT_EQ(m->epoch, 9007199254740001ull);
    atoll__mail_free(m);
    atoll__dir_entry moved = entry(1, 1, 1);
    d->ops->cas_owner(d, "g", 9007199254740001ull, &moved, ME, 4);
    ASSERT_EQ(answer_of(1, 4, &m), ATOLL_OK);
    ASSERT_EQ(m->epoch, 9007199254740002ull);
    atoll__mail_free(m);
    char out[32];
    ASSERT(redis_exec(&server, out, sizeof out, "HGET atoll:area:g epoch"));
    ASSERT_STR(out, "9007199254740002");
    /* The expected epoch is compared exactly: one less loses. */
    d->ops->cas_owner(d, "g", 9007199254740001ull, &moved, ME, 5);
    ASSERT_EQ(answer_of(1, 5, NULL), ATOLL_ESTATE);
    finish();
}

/* Not attached (before attach, after detach): answered ATOLL_EIO at once; a server that
 * does not answer, or a URL that is not one, is refused with a sentence. */
TEST(unattached_and_unreachable)
{
    ASSERT(redis_start(&server, url, sizeof url));
    char err[256] = "";
    atoll__redis *r = atoll__redis_new(url, capture, (void *)(intptr_t)1, err, sizeof err);
    ASSERT(r != NULL);
    atoll__dir *d = atoll__redis_dir(r);
    d->ops->resolve(d, "x", ME, 1);
    d->ops->find_player(d, "u", ME, 2);
    d->ops->bind_player(d, "u", "x"); /* no answer, nothing kept */
    ASSERT_EQ(answer_of(1, 1, NULL), ATOLL_EIO);
    ASSERT_EQ(answer_of(1, 2, NULL), ATOLL_EIO);
    ASSERT_EQ(box_count(), 0);
    d->ops->free(d); /* the directory is r's: nothing happens */
    atoll__redis_free(r);

    ASSERT(atoll__redis_new("http://127.0.0.1", capture, NULL, err, sizeof err) == NULL);
    fprintf(stderr, "  # %s\n", err);
    ASSERT(strstr(err, "redis://") != NULL);
    ASSERT(atoll__redis_new("redis://127.0.0.1:99999", capture, NULL, err, sizeof err) == NULL);
    ASSERT(strstr(err, "port") != NULL);
    int port = server.port;
    redis_stop(&server);
    char down[64];
    snprintf(down, sizeof down, "redis://127.0.0.1:%d", port);
    ASSERT(atoll__redis_new(down, capture, NULL, err, sizeof err) == NULL);
    fprintf(stderr, "  # %s\n", err);
    char where[32];
    snprintf(where, sizeof where, "127.0.0.1:%d", port);
    ASSERT(strstr(err, where) != NULL);
    box_clear();
    LEAK_CHECK();
}

/* Operations queued when the instance is detached are answered too. */
TEST(detach_answers_what_was_queued)
{
    start(1);
    atoll__dir *d = dir_of(1);
    for (uint64_t c = 1; c <= 50; c++)
        d->ops->resolve(d, "x", ME, c);
    request q = {.r = nodes[1]};
    on_loop(do_detach, &q);
    d->ops->resolve(d, "x", ME, 51); /* after: at once */
    for (uint64_t c = 1; c <= 51; c++) {
        int status = answer_of(1, c, NULL);
        ASSERT(status == ATOLL_ENOENT || status == ATOLL_EIO);
    }
    ASSERT_EQ(box_count(), 0);
    finish();
}

TEST_MAIN(contract, invalidations_reach_other_nodes_after_the_write, node_join_gives_ids,
          leases_expire, coordinator_lease_is_exclusive_and_moves,
          node_areas_follow_the_directory, outage_answers_eio_and_recovers,
          hung_redis_answers_eio, connection_reset_is_seen_at_once,
          epochs_grow_after_flushall, unattached_and_unreachable,
          detach_answers_what_was_queued)
