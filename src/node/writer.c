/* writer.c -- the node's writer thread (store.h): group commit of changed documents.
 *
 * Workers hand writes over with atoll__writer_submit; they wait in `pending`, one per
 * document (a later write of the same document replaces the earlier one: only the
 * newest bytes matter, and "coalesced" counts the others). The thread takes everything
 * pending as one batch whenever it is free and commits it in one transaction, so a
 * batch is whatever changed while the previous one committed: under load batches grow
 * and the cost of a commit is shared, idle they are single documents written at once.
 *
 * A commit that fails keeps its batch: the writes go back in front of what came since
 * (unless a newer write of the same document came meanwhile), and the thread tries
 * again after retry_ms, doubling up to 30 s, until the store is back. A fenced write (a
 * newer owner's epoch is stored) is reported to `done` and the document is written no
 * more at that epoch: its later submits are refused, until one comes with a newer epoch
 * (this node owns it again, after a failover gave it back).
 *
 * Flushing counts submits: each batch remembers how many submits had happened when it
 * was cut, and once it commits everything up to that count is in the store (the
 * coalesced ones through their newer copy).
 */
#include "metrics.h"
#include "store.h"
#include "../core/map.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define RETRY_MAX_MS 30000

/* A write waiting for its batch, found by "<kind>:<key>". */
typedef struct pending {
    atoll__strmap_node node; /* first */
    struct pending *next;    /* submission order */
    atoll__doc_write w;
    uint64_t since_ns;       /* first submit not yet committed (a replacement keeps it) */
    char name[ATOLL__DOC_NAME_MAX];
} pending;

/* A load waiting for the thread. */
typedef struct load {
    struct load *next;
    atoll__doc_kind kind;
    char key[ATOLL__DOC_KEY_MAX + 1];
    atoll__writer_load_fn fn;
    void *ctx;
} load;

struct atoll__writer {
    atoll__store *store;
    atoll__writer_done_fn done;
    void *ctx;
    uint32_t retry_ms;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;      /* the thread: something to write, or stop */
    pthread_cond_t committed; /* flushers: committed_upto moved */
    atoll__map by_name;       /* name -> pending */
    pending *head, *tail;
    load *loads, *loads_tail;
    uint64_t inflight_since_ns; /* the oldest write of the batch being committed, or 0 */
    atoll__writer_commit_fn on_commit;
    void *commit_ctx;
    atoll__map fenced;        /* name -> a record of the fenced document */
    _Atomic uint64_t submitted;      /* submits so far */
    _Atomic uint64_t committed_upto; /* every submit up to this is committed */
    bool stopping;
    atoll__writer_stats stats;
};

static void
deadline_in(struct timespec *ts, uint32_t ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void
pending_free(void *p)
{
    pending *e = p;
    atoll__free(e->w.bytes);
    atoll__free(e);
}

/* Takes every pending write out, in submission order (lock held). */
static pending *
take_all(atoll__writer *w, size_t *n)
{
    pending *list = w->head;
    size_t k = 0;
    for (pending *e = list; e != NULL; e = e->next) {
        atoll__strmap_del(&w->by_name, e->name);
        k++;
    }
    w->head = w->tail = NULL;
    *n = k;
    return list;
}

/* A failed batch goes back in front of what came since, except documents written again
 * meanwhile (lock held). */
static void
put_back(atoll__writer *w, pending *list)
{
    pending *keep = NULL, *last = NULL;
    for (pending *e = list, *next; e != NULL; e = next) {
        next = e->next;
        if (atoll__strmap_get(&w->by_name, e->name) != NULL) {
            w->stats.coalesced++; /* written again since: the newer bytes win */
            pending_free(e);
            continue;
        }
        atoll__strmap_put(&w->by_name, &e->node);
        e->next = NULL;
        if (last != NULL)
            last->next = e;
        else
            keep = e;
        last = e;
    }
    if (keep != NULL) {
        last->next = w->head;
        if (w->head == NULL)
            w->tail = last;
        w->head = keep;
    }
}

/* Loads from the store the documents of `batch` (n loads of one kind, lock not held)
 * and answers each: in one load_many when the store has it, else one by one. Loads of
 * the same document share the store's answer. */
static void
load_from_store(atoll__writer *w, load **batch, size_t n)
{
    char err[300] = "";
    if (w->store->ops->load_many != NULL && n > 1) {
        const char *keys[ATOLL__LOAD_MANY_MAX];
        size_t first_of[ATOLL__LOAD_MANY_MAX], nkeys = 0;
        atoll__doc_loaded out[ATOLL__LOAD_MANY_MAX];
        for (size_t i = 0; i < n; i++) {
            size_t k = 0;
            while (k < nkeys && strcmp(keys[k], batch[i]->key) != 0)
                k++;
            if (k == nkeys)
                keys[nkeys++] = batch[i]->key;
            first_of[i] = k;
        }
        memset(out, 0, nkeys * sizeof *out);
        int rc = w->store->ops->load_many(w->store, batch[0]->kind, keys, nkeys, out, err,
                                          sizeof err);
        for (size_t i = 0; i < n; i++) {
            atoll__doc_loaded *o = &out[first_of[i]];
            if (rc != ATOLL_OK) {
                batch[i]->fn(batch[i]->ctx, rc, NULL, 0, 0, err);
                continue;
            }
            uint8_t *copy = NULL;
            if (o->status == ATOLL_OK) {
                copy = atoll__malloc(o->len ? o->len : 1);
                memcpy(copy, o->bytes, o->len);
            }
            batch[i]->fn(batch[i]->ctx, o->status, copy, o->len, o->epoch, NULL);
        }
        for (size_t k = 0; k < nkeys; k++)
            free(out[k].bytes);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t *bytes = NULL;
        size_t len = 0;
        uint64_t epoch = 0;
        int rc = w->store->ops->load(w->store, batch[i]->kind, batch[i]->key, &bytes, &len,
                                     &epoch, err, sizeof err);
        batch[i]->fn(batch[i]->ctx, rc, bytes, len, epoch,
                     rc == ATOLL_OK || rc == ATOLL_ENOENT ? NULL : err);
    }
}

/* Serves the loads that wait (lock held; released around the callbacks and the store).
 * A document with a write waiting for its batch is answered with that write's bytes;
 * the others go to the store in batches of one kind. */
static void
serve_loads(atoll__writer *w)
{
    while (w->loads != NULL) {
        load *batch[ATOLL__LOAD_MANY_MAX];
        size_t n = 0;
        atoll__doc_kind kind = w->loads->kind;
        load *l = w->loads;
        while (l != NULL && n < ATOLL__LOAD_MANY_MAX && l->kind == kind) {
            w->loads = l->next;
            if (w->loads == NULL)
                w->loads_tail = NULL; /* before the lock is let go: loads come meanwhile */
            w->stats.loads++;
            char name[ATOLL__DOC_NAME_MAX];
            atoll__doc_name(name, l->kind, l->key);
            pending *e = atoll__strmap_get(&w->by_name, name);
            if (e == NULL) {
                batch[n++] = l;
            } else {
                uint8_t *copy = NULL;
                if (e->w.bytes != NULL) {
                    copy = atoll__malloc(e->w.len ? e->w.len : 1);
                    memcpy(copy, e->w.bytes, e->w.len);
                }
                size_t len = e->w.len;
                uint64_t epoch = e->w.epoch;
                pthread_mutex_unlock(&w->lock);
                if (copy != NULL)
                    l->fn(l->ctx, ATOLL_OK, copy, len, epoch, NULL);
                else
                    l->fn(l->ctx, ATOLL_ENOENT, NULL, 0, 0, NULL); /* a delete waits */
                atoll__free(l);
                pthread_mutex_lock(&w->lock);
            }
            l = w->loads;
        }
        if (n == 0)
            continue;
        pthread_mutex_unlock(&w->lock);
        load_from_store(w, batch, n);
        for (size_t i = 0; i < n; i++)
            atoll__free(batch[i]);
        pthread_mutex_lock(&w->lock);
    }
}

static void *
writer_main(void *arg)
{
    atoll__writer *w = arg;
    atoll__log_set_thread("writer");
    uint32_t backoff = w->retry_ms;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (w->head == NULL && w->loads == NULL && !w->stopping)
            pthread_cond_wait(&w->wake, &w->lock);
        serve_loads(w);
        if (w->head == NULL && w->stopping)
            break;
        if (w->head == NULL)
            continue;
        size_t n;
        pending *list = take_all(w, &n);
        uint64_t upto = w->submitted;
        w->inflight_since_ns = UINT64_MAX;
        for (pending *e = list; e != NULL; e = e->next)
            if (e->since_ns < w->inflight_since_ns)
                w->inflight_since_ns = e->since_ns;
        pthread_mutex_unlock(&w->lock);

        atoll__doc_write *batch = atoll__malloc(n * sizeof *batch);
        int *results = atoll__calloc(n, sizeof *results);
        size_t i = 0;
        for (pending *e = list; e != NULL; e = e->next)
            batch[i++] = e->w; /* borrowed: the pending records keep the bytes */
        char err[300] = "";
        uint64_t t0 = atoll__now_ns();
        int rc = w->store->ops->commit(w->store, batch, n, results, err, sizeof err);
        uint64_t spent = atoll__now_ns() - t0;
        atoll__free(batch);

        pthread_mutex_lock(&w->lock);
        uint64_t oldest = w->inflight_since_ns;
        w->inflight_since_ns = 0; /* committed, or back among the pending */
        if (rc != ATOLL_OK) {
            w->stats.failures++;
            atoll__metric_add(ATOLL_CTR_COMMIT_FAILURES, 1);
            ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"store commit failed, kept to try again\" "
                      "store=%s docs=%zu retry_ms=%u error=\"%s\"", w->store->ops->name, n,
                      backoff, err);
            put_back(w, list);
            atoll__free(results);
            if (!w->stopping) {
                serve_loads(w); /* what came during the failed commit is answered now */
                struct timespec ts;
                deadline_in(&ts, backoff);
                /* New submits do not cut the pause short (a node under load would
                 * hammer a store that is down); a stop does. */
                while (!w->stopping &&
                       pthread_cond_timedwait(&w->wake, &w->lock, &ts) != ETIMEDOUT)
                    serve_loads(w); /* loads are answered meanwhile (an error, if the
                                     * store is still down), not after the pause */
                backoff = backoff * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : backoff * 2;
            } else {
                break; /* stopping: what is left is dropped below, with a line */
            }
            continue;
        }
        backoff = w->retry_ms;
        w->stats.batches++;
        w->stats.commit_ns += spent;
        uint64_t now = atoll__now_ns(); /* after the commit: the lag includes it */
        w->stats.lag_ns_last = oldest < now ? now - oldest : 0;
        atoll__metric_add(ATOLL_CTR_COMMITS, 1);
        atoll__metric_observe(ATOLL_HIST_COMMIT_LAG, w->stats.lag_ns_last);
        atoll__metric_observe(ATOLL_HIST_COMMIT_DOCS, n);
        if (w->stats.lag_ns_last > w->stats.lag_ns_max)
            w->stats.lag_ns_max = w->stats.lag_ns_last;
        i = 0;
        for (pending *e = list, *next; e != NULL; e = next, i++) {
            next = e->next;
            if (results[i] == ATOLL__WRITE_FENCED) {
                w->stats.fenced++;
                ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"store refused a write: a newer owner's "
                          "epoch is stored; this document is written no more\" doc=\"%s\" "
                          "epoch=%llu", e->name, (unsigned long long)e->w.epoch);
                pending *f = atoll__strmap_get(&w->fenced, e->name);
                if (f == NULL) {
                    f = atoll__calloc(1, sizeof *f);
                    memcpy(f->name, e->name, sizeof f->name);
                    f->node.key = f->name;
                    atoll__strmap_put(&w->fenced, &f->node);
                }
                if (e->w.epoch > f->w.epoch)
                    f->w.epoch = e->w.epoch; /* writes up to this epoch are refused */
            } else {
                w->stats.docs++;
                w->stats.bytes += e->w.len;
            }
            if (w->done != NULL) {
                pthread_mutex_unlock(&w->lock);
                w->done(w->ctx, e->w.kind, e->w.key, e->w.seq, results[i]);
                pthread_mutex_lock(&w->lock);
            }
            pending_free(e);
        }
        atoll__free(results);
        if (upto > w->committed_upto)
            w->committed_upto = upto;
        pthread_cond_broadcast(&w->committed);
        /* Read under the lock: atoll__writer_on_commit may change it meanwhile. */
        atoll__writer_commit_fn on_commit = w->on_commit;
        void *commit_ctx = w->commit_ctx;
        if (on_commit != NULL) {
            pthread_mutex_unlock(&w->lock);
            on_commit(commit_ctx, upto);
            pthread_mutex_lock(&w->lock);
        }
    }
    serve_loads(w);
    size_t left = 0;
    pending *list = take_all(w, &left);
    pthread_mutex_unlock(&w->lock);
    if (left > 0)
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"writer stopped with writes not committed\" docs=%zu",
                  left);
    for (pending *e = list, *next; e != NULL; e = next) {
        next = e->next;
        pending_free(e);
    }
    return NULL;
}

atoll__writer *
atoll__writer_start(atoll__store *s, atoll__writer_done_fn done, void *ctx, uint32_t retry_ms)
{
    atoll__writer *w = atoll__calloc(1, sizeof *w);
    w->store = s;
    w->done = done;
    w->ctx = ctx;
    w->retry_ms = retry_ms ? retry_ms : 100;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    pthread_cond_init(&w->committed, NULL);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        pthread_cond_destroy(&w->committed);
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->lock);
        atoll__free(w);
        return NULL;
    }
    return w;
}

int
atoll__writer_submit(atoll__writer *w, atoll__doc_write *d)
{
    pending *e = atoll__calloc(1, sizeof *e);
    atoll__doc_name(e->name, d->kind, d->key);
    e->node.key = e->name;
    e->w = *d;
    e->since_ns = atoll__now_ns();
    d->bytes = NULL;
    d->len = 0;
    pthread_mutex_lock(&w->lock);
    pending *fence = atoll__strmap_get(&w->fenced, e->name);
    if (fence != NULL && e->w.epoch > fence->w.epoch) {
        /* Owned again with a newer epoch (this node got the area or player back after
         * losing it): written again. */
        atoll__free(atoll__strmap_del(&w->fenced, e->name));
        fence = NULL;
    }
    if (fence != NULL || w->stopping) {
        pthread_mutex_unlock(&w->lock);
        pending_free(e);
        return ATOLL_ESTATE;
    }
    w->submitted++;
    pending *old = atoll__strmap_del(&w->by_name, e->name);
    if (old != NULL) {
        /* Replaced in place: the document keeps its place in the order. */
        w->stats.coalesced++;
        atoll__free(old->w.bytes);
        old->w = e->w; /* since_ns stays: the change waits since the first submit */
        atoll__free(e);
        atoll__strmap_put(&w->by_name, &old->node);
    } else {
        atoll__strmap_put(&w->by_name, &e->node);
        if (w->tail)
            w->tail->next = e;
        else
            w->head = e;
        w->tail = e;
    }
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    return ATOLL_OK;
}

void
atoll__writer_on_commit(atoll__writer *w, atoll__writer_commit_fn fn, void *ctx)
{
    pthread_mutex_lock(&w->lock);
    w->on_commit = fn;
    w->commit_ctx = ctx;
    pthread_mutex_unlock(&w->lock);
}

uint64_t
atoll__writer_submitted(atoll__writer *w)
{
    return atomic_load(&w->submitted);
}

uint64_t
atoll__writer_committed(atoll__writer *w)
{
    return atomic_load(&w->committed_upto);
}

void
atoll__writer_load(atoll__writer *w, atoll__doc_kind kind, const char *key,
                   atoll__writer_load_fn fn, void *ctx)
{
    load *l = atoll__calloc(1, sizeof *l);
    l->kind = kind;
    snprintf(l->key, sizeof l->key, "%s", key);
    l->fn = fn;
    l->ctx = ctx;
    pthread_mutex_lock(&w->lock);
    if (w->loads_tail != NULL)
        w->loads_tail->next = l;
    else
        w->loads = l;
    w->loads_tail = l;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
}

int
atoll__writer_flush(atoll__writer *w, uint32_t timeout_ms)
{
    struct timespec ts;
    deadline_in(&ts, timeout_ms);
    int rc = ATOLL_OK;
    pthread_mutex_lock(&w->lock);
    uint64_t want = w->submitted;
    while (w->committed_upto < want) {
        if (pthread_cond_timedwait(&w->committed, &w->lock, &ts) == ETIMEDOUT) {
            rc = w->committed_upto < want ? ATOLL_ETIMEDOUT : ATOLL_OK;
            break;
        }
    }
    pthread_mutex_unlock(&w->lock);
    return rc;
}

void
atoll__writer_stats_get(atoll__writer *w, atoll__writer_stats *out)
{
    pthread_mutex_lock(&w->lock);
    *out = w->stats;
    uint64_t oldest = w->inflight_since_ns ? w->inflight_since_ns : UINT64_MAX;
    for (pending *e = w->head; e != NULL; e = e->next) /* put_back keeps no order of age */
        if (e->since_ns < oldest)
            oldest = e->since_ns;
    pthread_mutex_unlock(&w->lock);
    uint64_t now = atoll__now_ns();
    out->lag_ns_now = oldest != UINT64_MAX && oldest < now ? now - oldest : 0;
}

int
atoll__writer_stop(atoll__writer *w, uint32_t timeout_ms)
{
    int rc = atoll__writer_flush(w, timeout_ms);
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    atoll__strmap_clear(&w->fenced, atoll__free);
    atoll__map_fini(&w->fenced);
    atoll__map_fini(&w->by_name);
    pthread_cond_destroy(&w->committed);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    atoll__free(w);
    return rc;
}
