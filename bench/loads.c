/* loads.c -- atoll-load-bench: how fast a node reads players' state documents back from
 * its store, as when thousands of players log in at once after a restart.
 *
 * It fills a store with N player documents through the node's writer (one group
 * commit), then asks the writer for all N at once, as N logins arriving together would
 * (src/area/docs.c checks each one out and the writer's thread loads them one by one,
 * between batches), and times until the last answer came. Every answer is checked: found,
 * and the bytes that were written. The store is SQLite in a new temporary directory
 * (removed at the end) unless --store names another one (a PostgreSQL database; its
 * documents of this run are keyed "loadbench-...").
 *
 * Usage: atoll-load-bench [--store URL] [--docs N]     (prints one JSON line)
 */
#include "node/store.h"
#include "store/backends.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct tally {
    pthread_mutex_t lock;
    pthread_cond_t done;
    int answered, found, wrong;
    size_t want_len;
} tally;

static void
on_load(void *ctx, int status, uint8_t *bytes, size_t len, uint64_t epoch, const char *err)
{
    (void)epoch;
    (void)err;
    tally *t = ctx;
    pthread_mutex_lock(&t->lock);
    t->answered++;
    if (status == ATOLL_OK && len == t->want_len && bytes != NULL && bytes[0] == '{')
        t->found++;
    else
        t->wrong++;
    pthread_cond_signal(&t->done);
    pthread_mutex_unlock(&t->lock);
    free(bytes);
}

/* The document every player gets: a small state, as the quick game's plus an
 * inventory. */
static const char DOC[] = "{\"level\":57,\"money\":570,\"inv\":[{\"id\":1,\"n\":3},{\"id\":7,"
                          "\"n\":1}],\"pos\":{\"x\":12.5,\"y\":-3}}";

int
main(int argc, char **argv)
{
    const char *url = NULL;
    int docs = 10000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--store"))
            url = argv[i + 1];
        else if (!strcmp(argv[i], "--docs"))
            docs = atoi(argv[i + 1]);
    }
    if (docs < 1 || docs > 10000000) {
        fprintf(stderr, "usage: atoll-load-bench [--store URL] [--docs 1..10000000]\n");
        return 2;
    }
    char dir[] = "/tmp/atoll-load-bench-XXXXXX", sqlite_url[128];
    bool temp = url == NULL;
    if (temp) {
        if (mkdtemp(dir) == NULL) {
            perror("mkdtemp");
            return 1;
        }
        snprintf(sqlite_url, sizeof sqlite_url, "sqlite:%s/atoll.db", dir);
        url = sqlite_url;
    }
    char err[300] = "";
    atoll__store *s = atoll__store_new(url, err, sizeof err);
    if (s == NULL || s->ops->open(s, err, sizeof err) != ATOLL_OK) {
        fprintf(stderr, "atoll-load-bench: %s: %s\n", url, err);
        return 1;
    }
    atoll__writer *w = atoll__writer_start(s, NULL, NULL, 100);
    double t0 = now_s();
    for (int i = 0; i < docs; i++) {
        atoll__doc_write d = {.kind = ATOLL__DOC_PLAYER, .len = sizeof DOC - 1, .seq = 1};
        snprintf(d.key, sizeof d.key, "loadbench-%d", i);
        d.bytes = malloc(d.len);
        memcpy(d.bytes, DOC, d.len);
        atoll__writer_submit(w, &d);
    }
    if (atoll__writer_flush(w, 600000) != ATOLL_OK) {
        fprintf(stderr, "atoll-load-bench: the documents were not committed\n");
        return 1;
    }
    double fill_s = now_s() - t0;

    tally t = {.lock = PTHREAD_MUTEX_INITIALIZER, .done = PTHREAD_COND_INITIALIZER,
               .want_len = sizeof DOC - 1};
    t0 = now_s();
    for (int i = 0; i < docs; i++) {
        char key[64];
        snprintf(key, sizeof key, "loadbench-%d", i);
        atoll__writer_load(w, ATOLL__DOC_PLAYER, key, on_load, &t);
    }
    pthread_mutex_lock(&t.lock);
    while (t.answered < docs)
        pthread_cond_wait(&t.done, &t.lock);
    pthread_mutex_unlock(&t.lock);
    double load_s = now_s() - t0;

    atoll__writer_stop(w, 60000);
    atoll__store_free(s);
    if (temp) {
        char path[160];
        static const char *const files[] = {"atoll.db", "atoll.db-wal", "atoll.db-shm"};
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
            snprintf(path, sizeof path, "%s/%s", dir, files[i]);
            unlink(path);
        }
        rmdir(dir);
    }
    printf("{\"store\":\"%s\",\"docs\":%d,\"doc_bytes\":%zu,\"fill_s\":%.3f,\"load_s\":%.3f,"
           "\"loads_per_s\":%.0f,\"found\":%d,\"wrong\":%d}\n",
           temp ? "sqlite" : "given", docs, sizeof DOC - 1, fill_s, load_s, docs / load_s,
           t.found, t.wrong);
    return t.wrong == 0 && t.found == docs ? 0 : 1;
}
