/* store_pg_test.c -- the PostgreSQL store (src/store/postgres.c) against a real server
 * of its own (tests/support/pg.c): the backends' conformance suite (store_suite.c),
 * each case in a new empty database, then what only PostgreSQL can show: the schema's
 * rows, a newer schema and another program's database refused at open, an unreachable
 * server, a batch that fails half-way leaving nothing, and reconnection after the
 * server cut the connection (its backend terminated, then the server restarted), and a
 * batch of 4000 documents (4 MB) in one pipeline.
 *
 * Without an installed PostgreSQL server this test fails (make check installs it).
 */
#include "pg.h"
#include "store/backends.h"
#include "store_suite.h"
#include "test.h"

#include <netinet/in.h>
#include <sys/socket.h>

static pg_server server;
static char main_url[256];

/* A new database for each store the suite asks for: cases never see each other. */
static atoll__store *
make_pg(void *ctx)
{
    static int count;
    char name[64], url[256];
    snprintf(name, sizeof name, "t_%d_%d", (int)getpid(), ++count);
    if (!pg_create_db(ctx, name, url, sizeof url))
        return NULL;
    snprintf(main_url, sizeof main_url, "%s", url); /* this child's, for SQL on the side */
    return atoll__store_postgres_new(url);
}

static int
open_err(atoll__store *s, char *err, size_t cap)
{
    err[0] = '\0';
    return s->ops->open(s, err, cap);
}

/* open makes both tables and the meta rows, and only once. */
static void
schema_rows(void *arg)
{
    atoll__store *s = store_suite_open(make_pg, arg);
    char out[64];
    ASSERT(pg_exec(main_url, "SELECT value FROM atoll_meta WHERE key = 'schema'", out,
                   sizeof out));
    char want[16];
    snprintf(want, sizeof want, "%d", ATOLL__STORE_SCHEMA);
    ASSERT_STR(out, want);
    ASSERT(pg_exec(main_url, "SELECT value FROM atoll_meta WHERE key = 'program'", out,
                   sizeof out));
    ASSERT_STR(out, "atoll");
    ASSERT(pg_exec(main_url, "SELECT count(*) FROM atoll_meta", out, sizeof out));
    ASSERT_STR(out, "2");
    ASSERT(pg_exec(main_url, "SELECT to_regclass('atoll_docs') IS NOT NULL", out,
                   sizeof out));
    ASSERT_STR(out, "t");
    /* A second store over the same database opens it and sees the first one's data. */
    ASSERT_EQ(store_suite_put(s, ATOLL__DOC_PLAYER, "p", 3, "abc", 3), ATOLL__WRITE_OK);
    atoll__store *t = atoll__store_postgres_new(main_url);
    char err[512];
    ASSERT_EQ(open_err(t, err, sizeof err), ATOLL_OK);
    store_suite_expect(t, ATOLL__DOC_PLAYER, "p", 3, "abc", 3);
    ASSERT(pg_exec(main_url, "SELECT count(*) FROM atoll_meta", out, sizeof out));
    ASSERT_STR(out, "2");
    store_suite_dispose(t);
    store_suite_dispose(s);
}

static void
newer_schema_refused(void *arg)
{
    atoll__store *s = store_suite_open(make_pg, arg);
    store_suite_dispose(s);
    char sql[128];
    snprintf(sql, sizeof sql, "UPDATE atoll_meta SET value = '%d' WHERE key = 'schema'",
             ATOLL__STORE_SCHEMA + 1);
    ASSERT(pg_exec(main_url, sql, NULL, 0));
    s = atoll__store_postgres_new(main_url);
    char err[512];
    ASSERT(open_err(s, err, sizeof err) != ATOLL_OK);
    fprintf(stderr, "  # %s\n", err);
    char newer[32], ours[32];
    snprintf(newer, sizeof newer, "version %d", ATOLL__STORE_SCHEMA + 1);
    snprintf(ours, sizeof ours, "version %d", ATOLL__STORE_SCHEMA);
    ASSERT(strstr(err, newer) != NULL);
    ASSERT(strstr(err, ours) != NULL);
    /* Nothing was changed by the refusal. */
    char out[32];
    ASSERT(pg_exec(main_url, "SELECT value FROM atoll_meta WHERE key = 'schema'", out,
                   sizeof out));
    ASSERT_EQ(atoi(out), ATOLL__STORE_SCHEMA + 1);
    store_suite_dispose(s);
}

static void
foreign_db_refused(void *arg)
{
    char url[256];
    char name[64];
    snprintf(name, sizeof name, "foreign_%d", (int)getpid());
    ASSERT(pg_create_db(arg, name, url, sizeof url));
    ASSERT(pg_exec(url, "CREATE TABLE atoll_docs(id int, what text)", NULL, 0));
    atoll__store *s = atoll__store_postgres_new(url);
    char err[512];
    ASSERT(open_err(s, err, sizeof err) != ATOLL_OK);
    fprintf(stderr, "  # %s\n", err);
    ASSERT(strstr(err, "another program") != NULL);
    ASSERT(strstr(err, name) != NULL);
    char out[32];
    ASSERT(pg_exec(url, "SELECT to_regclass('atoll_meta') IS NULL", out, sizeof out));
    ASSERT_STR(out, "t"); /* the refusal made nothing */
    store_suite_dispose(s);
}

static void
unreachable(void *arg)
{
    /* A port that nothing listens on: bound, then closed. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    ASSERT(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    ASSERT(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
    int port = ntohs(sa.sin_port);
    close(fd);
    char url[128], where[64];
    snprintf(url, sizeof url, "postgres://atoll@127.0.0.1:%d/nowhere", port);
    snprintf(where, sizeof where, "127.0.0.1:%d/nowhere", port);
    atoll__store *s = atoll__store_postgres_new(url);
    ASSERT(s != NULL);
    char err[512];
    ASSERT_EQ(open_err(s, err, sizeof err), ATOLL_ECLOSED);
    fprintf(stderr, "  # %s\n", err);
    ASSERT(strstr(err, where) != NULL);
    /* load and commit say the same, without a crash. */
    uint8_t *b = NULL;
    size_t n = 0;
    uint64_t e = 0;
    ASSERT_EQ(s->ops->load(s, ATOLL__DOC_PLAYER, "k", &b, &n, &e, err, sizeof err),
              ATOLL_ECLOSED);
    atoll__doc_write w = {.kind = ATOLL__DOC_PLAYER, .key = "k", .epoch = 1,
                          .bytes = (uint8_t *)"x", .len = 1};
    int result = -1;
    ASSERT_EQ(s->ops->commit(s, &w, 1, &result, err, sizeof err), ATOLL_ECLOSED);
    ASSERT(strstr(err, where) != NULL);
    store_suite_dispose(s);
    /* A URL that is not one is an error too. */
    s = atoll__store_postgres_new("postgres://[broken");
    ASSERT(open_err(s, err, sizeof err) != ATOLL_OK);
    store_suite_dispose(s);
}

/* A write the server rejects (a key that is not UTF-8, in a UTF-8 database) in the
 * middle of a batch: the whole batch fails, the writes before it are not there, and
 * the store commits the next batch normally. */
static void
batch_atomic(void *arg)
{
    atoll__store *s = store_suite_open(make_pg, arg);
    ASSERT_EQ(store_suite_put(s, ATOLL__DOC_PLAYER, "kept", 1, "old", 3), ATOLL__WRITE_OK);
    atoll__doc_write w[3] = {
        {.kind = ATOLL__DOC_PLAYER, .key = "kept", .epoch = 2, .bytes = (uint8_t *)"new", .len = 3},
        {.kind = ATOLL__DOC_PLAYER, .key = "bad\xff\xfe", .epoch = 1, .bytes = (uint8_t *)"b", .len = 1},
        {.kind = ATOLL__DOC_AREA, .key = "after", .epoch = 1, .bytes = (uint8_t *)"a", .len = 1},
    };
    int results[3];
    char err[512] = "";
    ASSERT(s->ops->commit(s, w, 3, results, err, sizeof err) != ATOLL_OK);
    fprintf(stderr, "  # %s\n", err);
    ASSERT(strstr(err, "UTF8") != NULL);
    store_suite_expect(s, ATOLL__DOC_PLAYER, "kept", 1, "old", 3);
    uint8_t *b = NULL;
    size_t n;
    uint64_t e;
    ASSERT_EQ(s->ops->load(s, ATOLL__DOC_AREA, "after", &b, &n, &e, err, sizeof err),
              ATOLL_ENOENT);
    /* The same connection goes on: no transaction was left open or aborted. */
    ASSERT_EQ(s->ops->commit(s, w, 1, results, err, sizeof err), ATOLL_OK);
    ASSERT_EQ(results[0], ATOLL__WRITE_OK);
    store_suite_expect(s, ATOLL__DOC_PLAYER, "kept", 2, "new", 3);
    store_suite_dispose(s);
}

/* A batch far larger than the socket buffers, in one pipeline: libpq reads the
 * server's answers while it still sends, so neither side waits on the other. */
static void
big_batch(void *arg)
{
    atoll__store *s = store_suite_open(make_pg, arg);
    enum { N = 4000, LEN = 1024 };
    atoll__doc_write *w = calloc(N, sizeof *w);
    int *results = calloc(N, sizeof *results);
    ASSERT(w && results);
    for (int i = 0; i < N; i++) {
        w[i].kind = ATOLL__DOC_PLAYER;
        snprintf(w[i].key, sizeof w[i].key, "u%d", i);
        w[i].epoch = 1;
        w[i].bytes = malloc(LEN);
        ASSERT(w[i].bytes != NULL);
        memset(w[i].bytes, i & 0xff, LEN);
        w[i].len = LEN;
    }
    char err[512] = "";
    int rc = s->ops->commit(s, w, N, results, err, sizeof err);
    if (rc != ATOLL_OK)
        fprintf(stderr, "  commit: %s\n", err);
    ASSERT_EQ(rc, ATOLL_OK);
    for (int i = 0; i < N; i++)
        ASSERT_EQ(results[i], ATOLL__WRITE_OK);
    store_suite_expect(s, ATOLL__DOC_PLAYER, "u3999", 1, w[N - 1].bytes, LEN);
    char out[32];
    ASSERT(pg_exec(main_url, "SELECT count(*) FROM atoll_docs", out, sizeof out));
    ASSERT_EQ(atoi(out), N);
    for (int i = 0; i < N; i++)
        free(w[i].bytes);
    free(w);
    free(results);
    store_suite_dispose(s);
}

/* The server ends the store's connection (an administrator, a failover): the next
 * commit fails, the one after it connects again and succeeds. */
static void
reconnect_after_terminate(void *arg)
{
    atoll__store *s = store_suite_open(make_pg, arg);
    ASSERT_EQ(store_suite_put(s, ATOLL__DOC_PLAYER, "r", 1, "one", 3), ATOLL__WRITE_OK);
    char out[32];
    ASSERT(pg_exec(main_url,
                   "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                   "datname = current_database() AND pid <> pg_backend_pid()",
                   out, sizeof out));
    ASSERT_STR(out, "1");
    usleep(100 * 1000); /* the backend's exit reaches the socket */
    atoll__doc_write w = {.kind = ATOLL__DOC_PLAYER, .key = "r", .epoch = 2,
                          .bytes = (uint8_t *)"two", .len = 3};
    int result = -1;
    char err[512] = "";
    int rc = s->ops->commit(s, &w, 1, &result, err, sizeof err);
    fprintf(stderr, "  # first commit: %d %s\n", rc, err);
    ASSERT(rc != ATOLL_OK);
    ASSERT_EQ(s->ops->commit(s, &w, 1, &result, err, sizeof err), ATOLL_OK);
    ASSERT_EQ(result, ATOLL__WRITE_OK);
    store_suite_expect(s, ATOLL__DOC_PLAYER, "r", 2, "two", 3);
    store_suite_dispose(s);
}

/* The same across a real restart of the server (pg_stop + start on the same data and
 * port). It runs in the test's main process, which owns the server; so its checks
 * count failures instead of ending the process. */
static int
reconnect_after_restart(void)
{
    int failed = 0;
#define CHECK(c)                                                                           \
    do {                                                                                   \
        if (!(c)) {                                                                        \
            fprintf(stderr, "  FAIL %s:%d: %s\n", __FILE__, __LINE__, #c);                 \
            failed = 1;                                                                    \
            goto out;                                                                      \
        }                                                                                  \
    } while (0)
    char url[256];
    atoll__store *s = NULL;
    CHECK(pg_create_db(&server, "restart", url, sizeof url));
    s = atoll__store_postgres_new(url);
    char err[512] = "";
    CHECK(s->ops->open(s, err, sizeof err) == ATOLL_OK);
    atoll__doc_write w = {.kind = ATOLL__DOC_AREA, .key = "r", .epoch = 1,
                          .bytes = (uint8_t *)"before", .len = 6};
    int result = -1;
    CHECK(s->ops->commit(s, &w, 1, &result, err, sizeof err) == ATOLL_OK);
    CHECK(pg_restart(&server));
    w.epoch = 2;
    w.bytes = (uint8_t *)"after!";
    int rc = s->ops->commit(s, &w, 1, &result, err, sizeof err);
    fprintf(stderr, "  # first commit after the restart: %d %s\n", rc, err);
    CHECK(rc != ATOLL_OK);
    CHECK(s->ops->commit(s, &w, 1, &result, err, sizeof err) == ATOLL_OK);
    CHECK(result == ATOLL__WRITE_OK);
    uint8_t *b = NULL;
    size_t n = 0;
    uint64_t e = 0;
    CHECK(s->ops->load(s, ATOLL__DOC_AREA, "r", &b, &n, &e, err, sizeof err) == ATOLL_OK);
    CHECK(n == 6 && e == 2 && memcmp(b, "after!", 6) == 0);
    free(b);
out:
    if (s)
        store_suite_dispose(s);
    printf("%s - postgres: reconnect_after_restart\n", failed ? "not ok" : "ok");
    return failed;
#undef CHECK
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!pg_start(&server, main_url, sizeof main_url)) {
        printf("not ok - postgres: the test server did not start\n0 passed, 1 failed\n");
        return 1;
    }
    int total = 0, failed = 0;
    static const struct {
        const char *name;
        void (*fn)(void *);
    } own[] = {
        {"schema_rows", schema_rows},
        {"newer_schema_refused", newer_schema_refused},
        {"foreign_db_refused", foreign_db_refused},
        {"unreachable", unreachable},
        {"batch_atomic", batch_atomic},
        {"big_batch", big_batch},
        {"reconnect_after_terminate", reconnect_after_terminate},
    };
    failed += store_suite_run("postgres", make_pg, &server);
    total += 11; /* the suite's cases (store_suite.c) */
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++, total++)
        failed += store_suite_case("postgres", own[i].name, own[i].fn, &server);
    failed += reconnect_after_restart();
    total++;
    pg_stop(&server);
    printf("%d passed, %d failed\n", total - failed, failed);
    return failed ? 1 : 0;
}
