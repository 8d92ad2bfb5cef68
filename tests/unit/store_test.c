/* store_test.c -- the stores behind node/store.h (memory and SQLite: the same rules for
 * both) and the writer thread: documents round-trip byte for byte, a batch lands whole,
 * an older epoch is fenced, SQLite refuses a newer schema and another program's file,
 * (the conformance suite of tests/support/store_suite.c, which PostgreSQL's test runs
 * too), and the writer coalesces, commits in groups, retries a failing store without losing
 * anything, and stops writing a fenced document.
 */
#include "node/store.h"
#include "store/backends.h"
#include "store_suite.h"
#include "test.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A fresh database path in a temporary directory (removed by the test's end). */
static char dir[64];

static const char *
db_path(void)
{
    static char path[128];
    if (dir[0] == '\0') {
        snprintf(dir, sizeof dir, "/tmp/atoll-store-XXXXXX");
        ASSERT(mkdtemp(dir) != NULL);
    }
    snprintf(path, sizeof path, "%s/atoll.db", dir);
    return path;
}

static void
cleanup(void)
{
    char cmd[128];
    if (dir[0] != '\0') {
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        ASSERT_EQ(system(cmd), 0);
    }
}

static atoll__store *
opened(const char *url)
{
    char err[300] = "";
    atoll__store *s = atoll__store_new(url, err, sizeof err);
    ASSERT(s != NULL);
    int rc = s->ops->open(s, err, sizeof err);
    if (rc != ATOLL_OK)
        fprintf(stderr, "  open %s: %s\n", url, err);
    ASSERT_EQ(rc, ATOLL_OK);
    return s;
}

static atoll__doc_write
doc(atoll__doc_kind kind, const char *key, uint64_t epoch, const void *bytes, size_t len)
{
    atoll__doc_write w = {.kind = kind, .epoch = epoch, .len = len};
    snprintf(w.key, sizeof w.key, "%s", key);
    if (bytes != NULL) {
        w.bytes = malloc(len ? len : 1);
        memcpy(w.bytes, bytes, len);
    }
    return w;
}

/* Commits one write; returns its result. */
static int
put(atoll__store *s, atoll__doc_kind kind, const char *key, uint64_t epoch, const void *bytes,
    size_t len)
{
    atoll__doc_write w = doc(kind, key, epoch, bytes, len);
    int result = -1;
    char err[300];
    ASSERT_EQ(s->ops->commit(s, &w, 1, &result, err, sizeof err), ATOLL_OK);
    free(w.bytes);
    return result;
}

/* Loads kind/key and checks its bytes and epoch. */
static void
expect_doc(atoll__store *s, atoll__doc_kind kind, const char *key, const void *bytes, size_t len,
           uint64_t epoch)
{
    uint8_t *got = NULL;
    size_t n = 0;
    uint64_t e = 0;
    char err[300];
    ASSERT_EQ(s->ops->load(s, kind, key, &got, &n, &e, err, sizeof err), ATOLL_OK);
    ASSERT_EQ(n, len);
    ASSERT(memcmp(got, bytes, len) == 0);
    ASSERT_EQ(e, epoch);
    atoll__free(got);
}

/* The suite's stores: memory, and SQLite in a new file of the test's directory for each
 * case (the suite wants an empty place every time). */
static atoll__store *
make_memory(void *ctx)
{
    (void)ctx;
    return atoll__store_memory_new();
}

static atoll__store *
make_sqlite(void *ctx)
{
    int *n = ctx;
    char path[160];
    db_path();
    snprintf(path, sizeof path, "%s/case-%d.db", dir, (*n)++);
    return atoll__store_sqlite_new(path);
}

TEST(memory_store_keeps_the_rules)
{
    ASSERT_EQ(store_suite_run("memory", make_memory, NULL), 0);
}

TEST(sqlite_store_keeps_the_rules_and_its_data)
{
    int n = 0;
    db_path(); /* the directory, made here: the suite's cases run in forked children */
    ASSERT_EQ(store_suite_run("sqlite", make_sqlite, &n), 0);
    /* Closed and opened again, a file keeps its schema and what was committed. */
    char url[160];
    snprintf(url, sizeof url, "sqlite:%s", db_path());
    atoll__store *s = opened(url);
    ASSERT_EQ(put(s, ATOLL__DOC_PLAYER, "carol", 4, "c", 1), ATOLL__WRITE_OK);
    atoll__store_free(s);
    s = opened(url);
    expect_doc(s, ATOLL__DOC_PLAYER, "carol", "c", 1, 4);
    ASSERT_EQ(put(s, ATOLL__DOC_PLAYER, "carol", 3, "older", 5), ATOLL__WRITE_FENCED);
    atoll__store_free(s);
    cleanup();
}

/* Opening url must fail with a sentence holding `says`. */
static void
refused(const char *url, const char *says)
{
    char err[300] = "";
    atoll__store *s = atoll__store_new(url, err, sizeof err);
    ASSERT(s != NULL);
    ASSERT(s->ops->open(s, err, sizeof err) != ATOLL_OK);
    if (strstr(err, says) == NULL)
        fprintf(stderr, "  open %s: \"%s\", want \"%s\"\n", url, err, says);
    ASSERT(strstr(err, says) != NULL);
    atoll__store_free(s);
}

static void
sql(const char *path, const char *text)
{
    sqlite3 *db = NULL;
    ASSERT_EQ(sqlite3_open(path, &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, text, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

TEST(sqlite_refuses_what_is_not_its_own)
{
    char url[160];
    const char *path = db_path();
    snprintf(url, sizeof url, "sqlite:%s", path);
    /* A newer schema than this code knows. */
    atoll__store_free(opened(url));
    sql(path, "UPDATE atoll_meta SET value='99' WHERE key='schema'");
    refused(url, "schema version 99 is newer than this atoll's (1)");
    unlink(path);
    /* A database of another program. */
    sql(path, "CREATE TABLE users(name TEXT)");
    refused(url, "a database of another program");
    unlink(path);
    /* Not a database at all. */
    FILE *f = fopen(path, "w");
    ASSERT(f != NULL);
    fputs("this is a text file, not a database, long enough to have a header\n", f);
    fclose(f);
    refused(url, "not an SQLite database");
    cleanup();
    /* A URL of no store. */
    char err[300] = "";
    ASSERT(atoll__store_new("mongodb://x", err, sizeof err) == NULL);
    ASSERT(strstr(err, "unknown store 'mongodb://x'") != NULL);
}

/* ---- the writer ----------------------------------------------------------------------- */

/* A store that fails its first `fail_first` commits (an outage), over a memory store. */
typedef struct flaky {
    atoll__store base;
    atoll__store *inner;
    int fail_first;
    int commits;
} flaky;

static int
flaky_open(atoll__store *b, char *err, size_t len)
{
    flaky *f = (flaky *)b;
    return f->inner->ops->open(f->inner, err, len);
}

static int
flaky_load(atoll__store *b, atoll__doc_kind k, const char *key, uint8_t **bytes, size_t *len,
           uint64_t *epoch, char *err, size_t errlen)
{
    flaky *f = (flaky *)b;
    return f->inner->ops->load(f->inner, k, key, bytes, len, epoch, err, errlen);
}

static int
flaky_commit(atoll__store *b, const atoll__doc_write *batch, size_t n, int *results, char *err,
             size_t errlen)
{
    flaky *f = (flaky *)b;
    if (f->commits++ < __atomic_load_n(&f->fail_first, __ATOMIC_SEQ_CST)) {
        snprintf(err, errlen, "the store is down (test)");
        return ATOLL_EIO;
    }
    return f->inner->ops->commit(f->inner, batch, n, results, err, errlen);
}

static void
flaky_close(atoll__store *b)
{
    flaky *f = (flaky *)b;
    atoll__store_free(f->inner);
}

static const atoll__store_ops flaky_ops = {"flaky", flaky_open, flaky_load, flaky_commit,
                                           flaky_close};

typedef struct seen {
    pthread_mutex_t lock;
    int ok, fenced;
    uint64_t last_seq;
} seen;

static void
on_done(void *ctx, atoll__doc_kind kind, const char *key, uint64_t seq, int status)
{
    (void)kind;
    (void)key;
    seen *s = ctx;
    pthread_mutex_lock(&s->lock);
    if (status == ATOLL__WRITE_OK)
        s->ok++;
    else
        s->fenced++;
    s->last_seq = seq;
    pthread_mutex_unlock(&s->lock);
}

static void
submit(atoll__writer *w, atoll__doc_kind kind, const char *key, uint64_t epoch, uint64_t seq,
       const char *text)
{
    atoll__doc_write d = doc(kind, key, epoch, text, strlen(text));
    d.seq = seq;
    ASSERT_EQ(atoll__writer_submit(w, &d), ATOLL_OK);
    ASSERT(d.bytes == NULL); /* taken */
}

typedef struct load_arg {
    atoll__writer *w;
    int thread;
} load_arg;

static void *
hammer(void *p)
{
    load_arg *a = p;
    char key[32], text[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof key, "p%d-%d", a->thread, i % 50);
        snprintf(text, sizeof text, "v%d", i);
        atoll__doc_write d = doc(ATOLL__DOC_PLAYER, key, 1, text, strlen(text));
        d.seq = (uint64_t)i;
        if (atoll__writer_submit(a->w, &d) != ATOLL_OK)
            abort();
    }
    return NULL;
}

TEST(writer_coalesces_and_commits_in_groups)
{
    char url[160];
    snprintf(url, sizeof url, "sqlite:%s", db_path());
    atoll__store *s = opened(url);
    seen done = {.lock = PTHREAD_MUTEX_INITIALIZER};
    atoll__writer *w = atoll__writer_start(s, on_done, &done, 10);
    ASSERT(w != NULL);
    /* Four threads write 8000 times to 200 documents. */
    pthread_t th[4];
    load_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (load_arg){w, i};
        ASSERT_EQ(pthread_create(&th[i], NULL, hammer, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    ASSERT_EQ(atoll__writer_flush(w, 20000), ATOLL_OK);
    /* The last value of each document is in the store. */
    char key[32], text[32];
    for (int t = 0; t < 4; t++)
        for (int k = 0; k < 50; k++) {
            snprintf(key, sizeof key, "p%d-%d", t, k);
            snprintf(text, sizeof text, "v%d", 1950 + k);
            expect_doc(s, ATOLL__DOC_PLAYER, key, text, strlen(text), 1);
        }
    atoll__writer_stats st;
    atoll__writer_stats_get(w, &st);
    /* Every submit is either written or replaced by a later one; batches hold many. */
    ASSERT_EQ(st.docs + st.coalesced, (uint64_t)8000);
    ASSERT_EQ((uint64_t)done.ok, st.docs);
    ASSERT(st.batches < st.docs);
    ASSERT_EQ(st.failures, (uint64_t)0);
    fprintf(stderr, "# 8000 submits: %llu written in %llu batches, %llu coalesced\n",
            (unsigned long long)st.docs, (unsigned long long)st.batches,
            (unsigned long long)st.coalesced);
    ASSERT_EQ(atoll__writer_stop(w, 5000), ATOLL_OK);
    atoll__store_free(s);
    cleanup();
}

TEST(writer_retries_a_failing_store_and_loses_nothing)
{
    flaky *f = calloc(1, sizeof *f);
    f->base.ops = &flaky_ops;
    f->inner = atoll__store_memory_new();
    f->fail_first = 3;
    char err[300];
    ASSERT_EQ(f->base.ops->open(&f->base, err, sizeof err), ATOLL_OK);
    seen done = {.lock = PTHREAD_MUTEX_INITIALIZER};
    atoll__writer *w = atoll__writer_start(&f->base, on_done, &done, 20);
    submit(w, ATOLL__DOC_PLAYER, "alice", 1, 1, "a1");
    submit(w, ATOLL__DOC_AREA, "lobby", 1, 1, "l1");
    usleep(30000); /* a first failure or two */
    submit(w, ATOLL__DOC_PLAYER, "alice", 1, 2, "a2"); /* newer: replaces the kept one */
    ASSERT_EQ(atoll__writer_flush(w, 10000), ATOLL_OK);
    expect_doc(&f->base, ATOLL__DOC_PLAYER, "alice", "a2", 2, 1);
    expect_doc(&f->base, ATOLL__DOC_AREA, "lobby", "l1", 2, 1);
    atoll__writer_stats st;
    atoll__writer_stats_get(w, &st);
    ASSERT_EQ(st.failures, (uint64_t)3);
    ASSERT_EQ(done.fenced, 0);
    ASSERT_EQ(atoll__writer_stop(w, 5000), ATOLL_OK);
    atoll__store_free(&f->base);
    free(f);
}

TEST(writer_stops_writing_a_fenced_document)
{
    atoll__store *s = opened("memory");
    ASSERT_EQ(put(s, ATOLL__DOC_AREA, "arena", 9, "new owner", 9), ATOLL__WRITE_OK);
    seen done = {.lock = PTHREAD_MUTEX_INITIALIZER};
    atoll__writer *w = atoll__writer_start(s, on_done, &done, 10);
    submit(w, ATOLL__DOC_AREA, "arena", 4, 17, "stale owner");
    submit(w, ATOLL__DOC_AREA, "other", 4, 1, "fine");
    ASSERT_EQ(atoll__writer_flush(w, 5000), ATOLL_OK);
    ASSERT_EQ(done.fenced, 1);
    ASSERT_EQ(done.ok, 1);
    expect_doc(s, ATOLL__DOC_AREA, "arena", "new owner", 9, 9);
    /* The fenced document is refused from then on, at that epoch or an older one. */
    atoll__doc_write d = doc(ATOLL__DOC_AREA, "arena", 4, "again", 5);
    ASSERT_EQ(atoll__writer_submit(w, &d), ATOLL_ESTATE);
    ASSERT(d.bytes == NULL);
    d = doc(ATOLL__DOC_AREA, "arena", 3, "older", 5);
    ASSERT_EQ(atoll__writer_submit(w, &d), ATOLL_ESTATE);
    atoll__writer_stats st;
    atoll__writer_stats_get(w, &st);
    ASSERT_EQ(st.fenced, (uint64_t)1);
    /* Owned again with a newer epoch than the store's (a failover gave it back): written. */
    submit(w, ATOLL__DOC_AREA, "arena", 12, 5, "back again");
    ASSERT_EQ(atoll__writer_flush(w, 5000), ATOLL_OK);
    expect_doc(s, ATOLL__DOC_AREA, "arena", "back again", 10, 12);
    ASSERT_EQ(atoll__writer_stop(w, 5000), ATOLL_OK);
    atoll__store_free(s);
}

/* What atoll__writer_load and the commit callback hand back, for the test thread. */
typedef struct answers {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int loads, status;
    char bytes[64];
    uint64_t upto;
} answers;

static void
on_load(void *ctx, int status, uint8_t *bytes, size_t len, uint64_t epoch, const char *err)
{
    (void)epoch;
    (void)err;
    answers *a = ctx;
    pthread_mutex_lock(&a->lock);
    a->status = status;
    snprintf(a->bytes, sizeof a->bytes, "%.*s", (int)len, bytes ? (char *)bytes : "");
    a->loads++;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
    free(bytes);
}

static void
on_commit(void *ctx, uint64_t upto)
{
    answers *a = ctx;
    pthread_mutex_lock(&a->lock);
    a->upto = upto;
    pthread_mutex_unlock(&a->lock);
}

static void
load_and_wait(atoll__writer *w, answers *a, const char *key)
{
    pthread_mutex_lock(&a->lock);
    int before = a->loads;
    pthread_mutex_unlock(&a->lock);
    atoll__writer_load(w, ATOLL__DOC_PLAYER, key, on_load, a);
    pthread_mutex_lock(&a->lock);
    while (a->loads == before)
        pthread_cond_wait(&a->cond, &a->lock);
    pthread_mutex_unlock(&a->lock);
}

TEST(writer_loads_see_waiting_writes_and_report_the_lag)
{
    flaky *f = calloc(1, sizeof *f);
    f->base.ops = &flaky_ops;
    f->inner = atoll__store_memory_new();
    f->fail_first = 1 << 30; /* down until the test says otherwise */
    char err[300];
    ASSERT_EQ(f->base.ops->open(&f->base, err, sizeof err), ATOLL_OK);
    answers a = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    atoll__writer *w = atoll__writer_start(&f->base, NULL, NULL, 20);
    atoll__writer_on_commit(w, on_commit, &a);
    submit(w, ATOLL__DOC_PLAYER, "alice", 0, 1, "a1");
    usleep(60000);
    /* The store is down: a load is still answered (during the pause), with the write
     * that waits rather than with nothing. */
    load_and_wait(w, &a, "alice");
    ASSERT_EQ(a.status, ATOLL_OK);
    ASSERT_STR(a.bytes, "a1");
    load_and_wait(w, &a, "bob");
    ASSERT_EQ(a.status, ATOLL_ENOENT);
    atoll__writer_stats st;
    atoll__writer_stats_get(w, &st);
    ASSERT(st.failures >= 1);
    ASSERT(st.lag_ns_now >= 50000000u); /* the write has waited since the submit */
    ASSERT_EQ(atoll__writer_committed(w), (uint64_t)0);
    ASSERT_EQ(atoll__writer_submitted(w), (uint64_t)1);
    __atomic_store_n(&f->fail_first, 0, __ATOMIC_SEQ_CST); /* back */
    ASSERT_EQ(atoll__writer_flush(w, 40000), ATOLL_OK);
    ASSERT_EQ(atoll__writer_committed(w), (uint64_t)1);
    /* Told after the commit (the callback may run just after flush returned). */
    uint64_t upto = 0;
    for (int i = 0; i < 500 && upto == 0; i++) {
        pthread_mutex_lock(&a.lock);
        upto = a.upto;
        pthread_mutex_unlock(&a.lock);
        if (upto == 0)
            usleep(2000);
    }
    ASSERT_EQ(upto, (uint64_t)1);
    atoll__writer_stats_get(w, &st);
    ASSERT_EQ(st.lag_ns_now, (uint64_t)0);
    ASSERT_EQ(st.loads, (uint64_t)2);
    load_and_wait(w, &a, "alice"); /* from the store now */
    ASSERT_STR(a.bytes, "a1");
    ASSERT_EQ(atoll__writer_stop(w, 5000), ATOLL_OK);
    atoll__store_free(&f->base);
    free(f);
}

TEST_MAIN(writer_loads_see_waiting_writes_and_report_the_lag, memory_store_keeps_the_rules, sqlite_store_keeps_the_rules_and_its_data,
          sqlite_refuses_what_is_not_its_own, writer_coalesces_and_commits_in_groups,
          writer_retries_a_failing_store_and_loses_nothing,
          writer_stops_writing_a_fenced_document)
