/* memory.c -- the store that keeps documents in this process only (`--store memory`):
 * for tests and as the benchmark's baseline. Everything is lost when the node exits.
 * It follows the same rules as the real stores (fencing by epoch, a batch applied
 * whole), so code above it behaves the same.
 */
#include "backends.h"
#include "../core/map.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct mem_doc {
    atoll__strmap_node node; /* first: key is "<kind>:<key>" */
    uint64_t epoch;
    uint8_t *bytes;
    size_t len;
    char name[];
} mem_doc;

typedef struct mem_store {
    atoll__store base;
    pthread_mutex_t lock; /* loads come from any thread, commits from the writer's */
    atoll__map docs;
} mem_store;

static int
mem_open(atoll__store *base, char *err, size_t errlen)
{
    (void)base;
    (void)err;
    (void)errlen;
    return ATOLL_OK;
}

static int
mem_load(atoll__store *base, atoll__doc_kind kind, const char *key, uint8_t **bytes,
         size_t *len, uint64_t *epoch, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    mem_store *s = (mem_store *)base;
    *bytes = NULL;
    *len = 0;
    char name[ATOLL__DOC_NAME_MAX];
    atoll__doc_name(name, kind, key);
    pthread_mutex_lock(&s->lock);
    mem_doc *d = atoll__strmap_get(&s->docs, name);
    if (d != NULL) {
        *bytes = atoll__malloc(d->len ? d->len : 1);
        memcpy(*bytes, d->bytes, d->len);
        *len = d->len;
        *epoch = d->epoch;
    }
    pthread_mutex_unlock(&s->lock);
    return d != NULL ? ATOLL_OK : ATOLL_ENOENT;
}

static void
doc_free(void *p)
{
    mem_doc *d = p;
    atoll__free(d->bytes);
    atoll__free(d);
}

static int
mem_commit(atoll__store *base, const atoll__doc_write *batch, size_t n, int *results,
           char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    mem_store *s = (mem_store *)base;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < n; i++) {
        const atoll__doc_write *w = &batch[i];
        char name[ATOLL__DOC_NAME_MAX];
        atoll__doc_name(name, w->kind, w->key);
        mem_doc *d = atoll__strmap_get(&s->docs, name);
        if (d != NULL && d->epoch > w->epoch) {
            results[i] = ATOLL__WRITE_FENCED;
            continue;
        }
        results[i] = ATOLL__WRITE_OK;
        if (d != NULL)
            doc_free(atoll__strmap_del(&s->docs, name));
        if (w->bytes == NULL)
            continue; /* a delete */
        size_t nlen = strlen(name);
        d = atoll__malloc(sizeof *d + nlen + 1);
        memcpy(d->name, name, nlen + 1);
        d->node.key = d->name;
        d->epoch = w->epoch;
        d->len = w->len;
        d->bytes = atoll__malloc(w->len ? w->len : 1);
        memcpy(d->bytes, w->bytes, w->len);
        atoll__strmap_put(&s->docs, &d->node);
    }
    pthread_mutex_unlock(&s->lock);
    return ATOLL_OK;
}

static void
mem_close(atoll__store *base)
{
    mem_store *s = (mem_store *)base;
    atoll__strmap_clear(&s->docs, doc_free);
    atoll__map_fini(&s->docs);
    pthread_mutex_destroy(&s->lock);
    atoll__free(s);
}

static const atoll__store_ops mem_ops = {
    .name = "memory",
    .open = mem_open,
    .load = mem_load,
    .commit = mem_commit,
    .close = mem_close,
};

atoll__store *
atoll__store_memory_new(void)
{
    mem_store *s = atoll__calloc(1, sizeof *s);
    s->base.ops = &mem_ops;
    pthread_mutex_init(&s->lock, NULL);
    return &s->base;
}
