/* store_suite.c -- the conformance suite of store backends (store_suite.h). */
#include "store_suite.h"

#include "test.h"
#include "store/backends.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct suite_ctx {
    store_suite_make_fn make;
    void *ctx;
} suite_ctx;

atoll__store *
store_suite_open(store_suite_make_fn make, void *ctx)
{
    atoll__store *s = make(ctx);
    ASSERT(s != NULL);
    char err[512] = "";
    int rc = s->ops->open(s, err, sizeof err);
    if (rc != ATOLL_OK)
        fprintf(stderr, "  open: %s\n", err);
    ASSERT_EQ(rc, ATOLL_OK);
    return s;
}

void
store_suite_dispose(atoll__store *s)
{
    atoll__store_free(s); /* close frees the store */
}

static void
fill(atoll__doc_write *w, atoll__doc_kind kind, const char *key, uint64_t epoch,
     const void *bytes, size_t len)
{
    memset(w, 0, sizeof *w);
    w->kind = kind;
    snprintf(w->key, sizeof w->key, "%s", key);
    w->epoch = epoch;
    w->seq = 1;
    w->len = len;
    w->bytes = NULL;
    if (bytes) { /* an empty document still has (non-NULL) bytes: NULL is a delete */
        w->bytes = malloc(len ? len : 1);
        ASSERT(w->bytes != NULL);
        memcpy(w->bytes, bytes, len);
    }
}

int
store_suite_put(atoll__store *s, atoll__doc_kind kind, const char *key, uint64_t epoch,
                const void *bytes, size_t len)
{
    atoll__doc_write w;
    fill(&w, kind, key, epoch, bytes, len);
    int result = -1;
    char err[512] = "";
    int rc = s->ops->commit(s, &w, 1, &result, err, sizeof err);
    free(w.bytes);
    if (rc != ATOLL_OK)
        fprintf(stderr, "  commit: %s\n", err);
    ASSERT_EQ(rc, ATOLL_OK);
    return result;
}

void
store_suite_expect(atoll__store *s, atoll__doc_kind kind, const char *key, uint64_t epoch,
                   const void *bytes, size_t len)
{
    uint8_t *got = NULL;
    size_t n = 0;
    uint64_t e = 0;
    char err[512] = "";
    int rc = s->ops->load(s, kind, key, &got, &n, &e, err, sizeof err);
    if (rc != ATOLL_OK)
        fprintf(stderr, "  load %s: %s\n", key, err);
    ASSERT_EQ(rc, ATOLL_OK);
    ASSERT(got != NULL);
    ASSERT_EQ(n, len);
    ASSERT_EQ(e, epoch);
    ASSERT_MEM(got, bytes, len);
    free(got);
}

static void
expect_missing(atoll__store *s, atoll__doc_kind kind, const char *key)
{
    uint8_t *got = (uint8_t *)1;
    size_t n = 99;
    uint64_t e = 0;
    char err[512] = "";
    ASSERT_EQ(s->ops->load(s, kind, key, &got, &n, &e, err, sizeof err), ATOLL_ENOENT);
    ASSERT(got == NULL);
}

/* ---- the cases ------------------------------------------------------------------------ */

static void
case_open_twice(void *arg)
{
    suite_ctx *c = arg;
    atoll__store *s = store_suite_open(c->make, c->ctx);
    char err[512] = "";
    /* A second open over the schema the first one made finds it and accepts it. */
    ASSERT_EQ(s->ops->open(s, err, sizeof err), ATOLL_OK);
    ASSERT_EQ(store_suite_put(s, ATOLL__DOC_PLAYER, "u1", 1, "x", 1), ATOLL__WRITE_OK);
    store_suite_expect(s, ATOLL__DOC_PLAYER, "u1", 1, "x", 1);
    store_suite_dispose(s);
}

static void
case_load_missing(void *arg)
{
    suite_ctx *c = arg;
    atoll__store *s = store_suite_open(c->make, c->ctx);
    expect_missing(s, ATOLL__DOC_PLAYER, "nobody");
    expect_missing(s, ATOLL__DOC_AREA, "nowhere");
    store_suite_dispose(s);
}

static void
case_binary_roundtrip(void *arg)
{
    suite_ctx *c = arg;
    atoll__store *s = store_suite_open(c->make, c->ctx);
    static const uint8_t doc[] = {0x00, 0x01, 0xff, 0x00, 'a', 0x00, 0x80, 0x7f, 0x00};
    ASSERT_EQ(store_suite_put(s, ATOLL__DOC_PLAYER, "p1", 42, doc, sizeof doc),
              ATOLL__WRITE_OK);
    store_suite_expect(s, ATOLL__DOC_PLAYER, "p1", 42, doc, sizeof doc);
    /* The kinds are separate: the same key as an area is another document. */
    expect_missing(s, ATOLL__DOC_AREA, "p1");
    ASSERT_EQ(store_suite_put(s, ATOLL__DOC_AREA, "p1", 7, "area", 4), ATOLL__WRITE_OK);
    store_suite_expect(s, ATOLL__DOC_AREA, "p1", 7, "area", 4);
    store_suite_expect(s, ATOLL__DOC_PLAYER, "p1", 42, doc, sizeof doc);
    store_suite_dispose(s);
}

/* load_many, where a store has it: every key answered as load answers it, whatever the
 * key holds (quotes, backslashes, commas and braces are an array literal's syntax in
 * PostgreSQL), missing and other-kind documents absent, up to ATOLL__LOAD_MANY_MAX keys. */
static void
case_load_many(void *arg)
{
    suite_ctx *c = arg;
    atoll__store *s = store_suite_open(c->make, c->ctx);
    if (s->ops->load_many == NULL) {
        store_suite_dispose(s); /* optional: the writer loads one by one */
        return;
    }
    static const char *const odd[] = {"plain", "with \"quotes\"", "back\\slash", "a,b",
                                      "{braces}", "NULL", " spaced ", "\xc3\xa9t\xc3\xa9"};
    enum { NODD = sizeof odd / sizeof odd[0] };
    for (int i = 0; i < NODD; i++)
        ASSERT_EQ(store_suite_put(s, ATOLL__DOC_PLAYER, odd[i], (uint64_t)i + 1, odd[i],
                                  strlen(odd[i])),
                  ATOLL__WRITE_OK);
    ASSERT_EQ(store_suite_put(s, ATOLL__DOC_AREA, "missing-as-player", 1, "area", 4),
              ATOLL__WRITE_OK);
    const char *keys[ATOLL__LOAD_MANY_MAX];
    char names[ATOLL__LOAD_MANY_MAX][24];
    atoll__doc_loaded out[ATOLL__LOAD_MANY_MAX];
    size_t n = 0;
    for (int i = 0; i < NODD; i++)
        keys[n++] = odd[i];
    keys[n++] = "missing-as-player";
    while (n < ATOLL__LOAD_MANY_MAX) {
        snprintf(names[n], sizeof names[n], "nobody-%zu", n);
        keys[n] = names[n];
        n++;
    }
    char err[300] = "";
    int rc = s->ops->load_many(s, ATOLL__DOC_PLAYER, keys, n, out, err, sizeof err);
    if (rc != ATOLL_OK)
        fprintf(stderr, "  load_many: %s\n", err);
    ASSERT_EQ(rc, ATOLL_OK);
    for (size_t i = 0; i < n; i++) {
        if (i < NODD) {
            ASSERT_EQ(out[i].status, ATOLL_OK);
            ASSERT_EQ(out[i].len, strlen(odd[i]));
            ASSERT(memcmp(out[i].bytes, odd[i], out[i].len) == 0);
            ASSERT_EQ(out[i].epoch, (uint64_t)i + 1);
        } else {
            ASSERT_EQ(out[i].status, ATOLL_ENOENT);
            ASSERT(out[i].bytes == NULL);
        }
        free(out[i].bytes);
    }
    store_suite_dispose(s);
}

static void
case_empty_doc(void *arg)
{
    suite_ctx *c = arg;
    atoll__store *s = store_suite_open(c->make, c->ctx);
    ASSERT_EQ(store_suite_put(s, ATOLL__DOC_AREA, "empty", 3, "", 0), ATOLL__WRITE_OK);
    store_suite_expect(s, ATOLL__DOC_AREA, "empty", 3, "", 0);
    store_suite_dispose(s);
}

static void
case_large_doc(void *arg)
{
    suite_ctx *c = arg;
    atoll__store *s = store_suite_open(c->make, c->ctx);
    size_t n = 1u << 20;
    uint8_t *doc = malloc(n);
    ASSERT(doc != NULL);
    uint32_t x = 2463534242u; /* xorshift: bytes that no compression or text survives */
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        doc[i] = (uint8_t)x;
    }
    ASSERT_EQ(store_suite_put(s, ATOLL__DOC_PLAYER, "big", 9, doc, n), ATOLL__WRITE_OK);
    store_suite_expect(s, ATOLL__DOC_PLAYER, "big", 9, doc, n);
    free(doc);
    store_suite_dispose(s);
}

static void
case_longest_key(void *arg)
{
    suite_ctx *c = arg;
    atoll__store *s = store_suite_open(c->make, c->ctx);
    char key[ATOLL__DOC_KEY_MAX + 1];
    memset(key, 'k', ATOLL__DOC_KEY_MAX);
    key[ATOLL__DOC_KEY_MAX] = '\0';
    ASSERT_EQ(store_suite_put(s, ATOLL__DOC_PLAYER, key, 1, "v", 1), ATOLL__WRITE_OK);
    store_suite_expect(s, ATOLL__DOC_PLAYER, key, 1, "v", 1);
    key[ATOLL__DOC_KEY_MAX - 1] = '\0'; /* a prefix is another key */
    expect_missing(s, ATOLL__DOC_PLAYER, key);
    store_suite_dispose(s);
}

static void
case_batch_lands(void *arg)
{
    suite_ctx *c = arg;
    atoll__store *s = store_suite_open(c->make, c->ctx);
    enum { N = 25 };
    atoll__doc_write w[N];
    int results[N];
    for (int i = 0; i < N; i++) {
        char key[32], body[32];
        snprintf(key, sizeof key, "b%d", i);
        snprintf(body, sizeof body, "doc %d", i);
        fill(&w[i], i % 2 ? ATOLL__DOC_AREA : ATOLL__DOC_PLAYER, key, (uint64_t)i + 1, body,
             strlen(body));
        results[i] = -1;
    }
    char err[512] = "";
    int rc = s->ops->commit(s, w, N, results, err, sizeof err);
    if (rc != ATOLL_OK)
        fprintf(stderr, "  commit: %s\n", err);
    ASSERT_EQ(rc, ATOLL_OK);
    for (int i = 0; i < N; i++) {
        ASSERT_EQ(results[i], ATOLL__WRITE_OK);
        store_suite_expect(s, w[i].kind, w[i].key, w[i].epoch, w[i].bytes, w[i].len);
        free(w[i].bytes);
    }
    /* An empty batch commits nothing, and is not an error. */
    ASSERT_EQ(s->ops->commit(s, w, 0, results, err, sizeof err), ATOLL_OK);
    store_suite_dispose(s);
}

static void
case_overwrite(void *arg)
{
    suite_ctx *c = arg;
    atoll__store *s = store_suite_open(c->make, c->ctx);
    ASSERT_EQ(store_suite_put(s, ATOLL__DOC_PLAYER, "o", 2, "first", 5), ATOLL__WRITE_OK);
    ASSERT_EQ(store_suite_put(s, ATOLL__DOC_PLAYER, "o", 2, "second!", 7), ATOLL__WRITE_OK);
    store_suite_expect(s, ATOLL__DOC_PLAYER, "o", 2, "second!", 7);
    ASSERT_EQ(store_suite_put(s, ATOLL__DOC_PLAYER, "o", 3, "3", 1), ATOLL__WRITE_OK);
    store_suite_expect(s, ATOLL__DOC_PLAYER, "o", 3, "3", 1);
    store_suite_dispose(s);
}

static void
case_fencing(void *arg)
{
    suite_ctx *c = arg;
    atoll__store *s = store_suite_open(c->make, c->ctx);
    ASSERT_EQ(store_suite_put(s, ATOLL__DOC_PLAYER, "f", 5, "five", 4), ATOLL__WRITE_OK);
    /* An older owner is refused, and what the newer one wrote stays. */
    ASSERT_EQ(store_suite_put(s, ATOLL__DOC_PLAYER, "f", 3, "three", 5),
              ATOLL__WRITE_FENCED);
    store_suite_expect(s, ATOLL__DOC_PLAYER, "f", 5, "five", 4);
    ASSERT_EQ(store_suite_put(s, ATOLL__DOC_PLAYER, "f", 5, "five2", 5), ATOLL__WRITE_OK);
    store_suite_expect(s, ATOLL__DOC_PLAYER, "f", 5, "five2", 5);
    ASSERT_EQ(store_suite_put(s, ATOLL__DOC_PLAYER, "f", 7, "seven", 5), ATOLL__WRITE_OK);
    store_suite_expect(s, ATOLL__DOC_PLAYER, "f", 7, "seven", 5);
    ASSERT_EQ(store_suite_put(s, ATOLL__DOC_PLAYER, "f", 5, "late", 4), ATOLL__WRITE_FENCED);
    store_suite_expect(s, ATOLL__DOC_PLAYER, "f", 7, "seven", 5);
    /* Fencing is per document: another key at an old epoch is fine. */
    ASSERT_EQ(store_suite_put(s, ATOLL__DOC_PLAYER, "g", 1, "g", 1), ATOLL__WRITE_OK);
    store_suite_dispose(s);
}

static void
case_fenced_in_batch(void *arg)
{
    suite_ctx *c = arg;
    atoll__store *s = store_suite_open(c->make, c->ctx);
    ASSERT_EQ(store_suite_put(s, ATOLL__DOC_AREA, "a", 10, "ten", 3), ATOLL__WRITE_OK);
    atoll__doc_write w[3];
    fill(&w[0], ATOLL__DOC_PLAYER, "x", 1, "x1", 2);
    fill(&w[1], ATOLL__DOC_AREA, "a", 9, "nine", 4); /* fenced */
    fill(&w[2], ATOLL__DOC_PLAYER, "y", 1, "y1", 2);
    int results[3] = {-1, -1, -1};
    char err[512] = "";
    ASSERT_EQ(s->ops->commit(s, w, 3, results, err, sizeof err), ATOLL_OK);
    ASSERT_EQ(results[0], ATOLL__WRITE_OK);
    ASSERT_EQ(results[1], ATOLL__WRITE_FENCED);
    ASSERT_EQ(results[2], ATOLL__WRITE_OK);
    store_suite_expect(s, ATOLL__DOC_PLAYER, "x", 1, "x1", 2);
    store_suite_expect(s, ATOLL__DOC_AREA, "a", 10, "ten", 3);
    store_suite_expect(s, ATOLL__DOC_PLAYER, "y", 1, "y1", 2);
    for (int i = 0; i < 3; i++)
        free(w[i].bytes);
    store_suite_dispose(s);
}

static void
case_delete(void *arg)
{
    suite_ctx *c = arg;
    atoll__store *s = store_suite_open(c->make, c->ctx);
    ASSERT_EQ(store_suite_put(s, ATOLL__DOC_PLAYER, "d", 4, "four", 4), ATOLL__WRITE_OK);
    /* A delete by an older owner is refused, and the document stays. */
    ASSERT_EQ(store_suite_put(s, ATOLL__DOC_PLAYER, "d", 2, NULL, 0), ATOLL__WRITE_FENCED);
    store_suite_expect(s, ATOLL__DOC_PLAYER, "d", 4, "four", 4);
    ASSERT_EQ(store_suite_put(s, ATOLL__DOC_PLAYER, "d", 4, NULL, 0), ATOLL__WRITE_OK);
    expect_missing(s, ATOLL__DOC_PLAYER, "d");
    /* Deleting what is not there is done already. */
    ASSERT_EQ(store_suite_put(s, ATOLL__DOC_PLAYER, "none", 1, NULL, 0), ATOLL__WRITE_OK);
    /* And a newer epoch deletes. */
    ASSERT_EQ(store_suite_put(s, ATOLL__DOC_AREA, "d2", 1, "1", 1), ATOLL__WRITE_OK);
    ASSERT_EQ(store_suite_put(s, ATOLL__DOC_AREA, "d2", 8, NULL, 0), ATOLL__WRITE_OK);
    expect_missing(s, ATOLL__DOC_AREA, "d2");
    store_suite_dispose(s);
}

/* ---- running ------------------------------------------------------------------------- */

int
store_suite_case(const char *label, const char *name, void (*fn)(void *arg), void *arg)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(TEST_TIMEOUT_S);
        fn(arg);
        fflush(stdout);
        _exit(0);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        status = -1;
    int ok = pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok && pid > 0 && WIFSIGNALED(status))
        fprintf(stderr, "  %s: killed by signal %d%s\n", name, WTERMSIG(status),
                WTERMSIG(status) == SIGALRM ? " (timeout)" : "");
    printf("%s - %s: %s\n", ok ? "ok" : "not ok", label, name);
    fflush(stdout);
    return ok ? 0 : 1;
}

int
store_suite_run(const char *label, store_suite_make_fn make, void *ctx)
{
    static const struct {
        const char *name;
        void (*fn)(void *);
    } cases[] = {
        {"open_twice", case_open_twice},
        {"load_missing", case_load_missing},
        {"binary_roundtrip", case_binary_roundtrip},
        {"load_many", case_load_many},
        {"empty_doc", case_empty_doc},
        {"large_doc", case_large_doc},
        {"longest_key", case_longest_key},
        {"batch_lands", case_batch_lands},
        {"overwrite", case_overwrite},
        {"fencing", case_fencing},
        {"fenced_in_batch", case_fenced_in_batch},
        {"delete", case_delete},
    };
    suite_ctx c = {make, ctx};
    int failed = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        failed += store_suite_case(label, cases[i].name, cases[i].fn, &c);
    return failed;
}
