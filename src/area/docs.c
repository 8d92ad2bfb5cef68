/* docs.c -- state documents: every logged-in player's data and every area's state kept
 * in the store, loaded before the game sees them, written back when they change, and
 * the output of game code held until what it followed is committed (durable mode).
 *
 * Checking out. One player object (or one area) at a time holds a document on this
 * node: the node-wide table `holds` names who. An entry that wants a document another
 * holder has (the same uid entering another area while its old player is leaving, or
 * waits for its client) waits in that table, and a waiting holder is asked to leave at
 * once (AREA_EVICT); when the holder checks the document in (its final bytes handed to
 * the writer first), the next one loads it. Loads run on the writer's thread, which
 * answers with a write still waiting for its batch before the store's copy, so a
 * document is never read older than what was handed over. Loads answer as mail
 * (DOC_LOADED) to the worker that asked.
 *
 * Changes. While game code runs, the value layer journals every change (value.h). When
 * the region ends badly the journal is undone; when it ends well, each changed
 * container that is a document's root (the roots map) marks that document changed, and
 * a change deeper down marks the documents whose roots game code asked for in the
 * region. At the end of a loop phase (durable) or every store.flush_ms / 2 (fast), the
 * changed documents are encoded; one whose bytes hash as those last handed over is not
 * written again.
 *
 * Held output (durable). After anything of this worker was changed and not yet
 * committed, what game code sends (its region's journal of client bytes and staged
 * mail, replies sent after the region) waits in a FIFO instead of going out. At each
 * phase end the waiting entries get a ticket: the writer's submit count after this
 * worker's submits. The writer's commit callback tells a worker whose oldest entry's
 * ticket is committed (DOC_COMMITTED), which then releases its entries in order. An
 * entry that waits past store.timeout_ms is dropped, and its request answered 500.
 */
#include "area.h"
#include "../core/hash.h"

#include <stdio.h>

#define TAG_PLAYER ((uintptr_t)1)

static inline void *
tag_player(atoll_player *p)
{
    return (void *)((uintptr_t)p | TAG_PLAYER);
}

static inline atoll_player *
as_player(void *t)
{
    return ((uintptr_t)t & TAG_PLAYER) ? (atoll_player *)((uintptr_t)t & ~TAG_PLAYER) : NULL;
}

static inline atoll_area *
as_area(void *t)
{
    return ((uintptr_t)t & TAG_PLAYER) ? NULL : (atoll_area *)t;
}

/* ---- the node's part ----------------------------------------------------------------------- */

typedef struct waiter {
    struct waiter *next;
    atoll__addr to;
    uint64_t cookie;
} waiter;

/* A document checked out on this node, and who waits for it. */
typedef struct hold {
    atoll__strmap_node node; /* first */
    char name[ATOLL__DOC_NAME_MAX];
    atoll__addr holder;
    uint64_t holder_area;    /* the area its player is in (0: not yet) */
    waiter *waiters, *waiters_tail;
} hold;

typedef struct atoll__docs {
    atoll__node *node;
    atoll__store *store;
    atoll__writer *writer;
    pthread_mutex_t lock;
    atoll__map holds;           /* name -> hold */
    _Atomic uint64_t *want;     /* per worker: the ticket its oldest held output needs */
    atomic_int *posted;         /* per worker: a DOC_COMMITTED is on its way */
    bool *gone;                 /* per worker, under lock: its loop has ended */
    int nworkers;
    bool durable;
} atoll__docs;

typedef struct load_ctx {
    atoll__docs *d;
    atoll__addr to;
    uint64_t cookie;
    atoll__doc_kind kind;
    char key[ATOLL__DOC_KEY_MAX + 1];
} load_ctx;

static inline atoll__docs *
docs_of(const atoll__worker *w)
{
    return atoll__area_node_of(w->node)->docs;
}

static atoll__addr
me(const atoll__worker *w)
{
    return atoll__addr_make(w->node->id, w->index);
}

/* On the writer's thread: the answer goes to the worker that asked, as mail. */
static void
on_loaded(void *arg, int status, uint8_t *bytes, size_t len, uint64_t epoch, const char *err)
{
    load_ctx *c = arg;
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_DOC_LOADED, status == ATOLL_OK ? len : 0);
    if (status == ATOLL_OK && len > 0)
        memcpy(m->data, bytes, len);
    atoll__free(bytes);
    m->status = status;
    m->call_id = c->cookie;
    m->epoch = epoch;
    m->type_index = (int)c->kind;
    m->uid = atoll__strndup(c->key, strlen(c->key));
    if (err != NULL)
        m->value = atoll_str(err);
    /* Under the lock, like on_commit: a worker whose loop has ended is not woken. */
    atoll__docs *d = c->d;
    pthread_mutex_lock(&d->lock);
    if (d->gone[c->to.worker])
        atoll__mail_free(m);
    else
        atoll__send(d->node, c->to.worker, m);
    pthread_mutex_unlock(&d->lock);
    atoll__free(c);
}

static void
start_load(atoll__docs *d, atoll__addr to, uint64_t cookie, atoll__doc_kind kind,
           const char *key)
{
    load_ctx *c = atoll__calloc(1, sizeof *c);
    c->d = d;
    c->to = to;
    c->cookie = cookie;
    c->kind = kind;
    snprintf(c->key, sizeof c->key, "%s", key);
    atoll__writer_load(d->writer, kind, key, on_loaded, c);
}

/* Locks the table and finds kind/key's hold (NULL: nobody holds it); name gets the
 * document's name. The caller unlocks. */
static hold *
lock_hold(atoll__docs *d, atoll__doc_kind kind, const char *key, char name[ATOLL__DOC_NAME_MAX])
{
    atoll__doc_name(name, kind, key);
    pthread_mutex_lock(&d->lock);
    return atoll__strmap_get(&d->holds, name);
}

/* Checks kind/key out for this worker, or queues the wish behind its holder. */
static void
checkout(atoll__worker *w, atoll__doc_kind kind, const char *key, uint64_t cookie,
         uint64_t area)
{
    atoll__docs *d = docs_of(w);
    char name[ATOLL__DOC_NAME_MAX];
    hold *h = lock_hold(d, kind, key, name);
    if (h != NULL) {
        waiter *x = atoll__calloc(1, sizeof *x);
        x->to = me(w);
        x->cookie = cookie;
        if (h->waiters_tail)
            h->waiters_tail->next = x;
        else
            h->waiters = x;
        h->waiters_tail = x;
        /* Each new waiter asks again: the holder may have parked since the last ask. */
        bool evict = kind == ATOLL__DOC_PLAYER && h->holder_area != 0;
        atoll__addr to = h->holder;
        uint64_t at = h->holder_area;
        pthread_mutex_unlock(&d->lock);
        if (evict) {
            atoll__mail *m = atoll__mail_new(ATOLL_MAIL_AREA_EVICT, 0);
            m->area = at;
            m->uid = atoll__strndup(key, strlen(key));
            atoll__send_to(w->node, to, m);
        }
        return;
    }
    h = atoll__calloc(1, sizeof *h);
    memcpy(h->name, name, sizeof h->name);
    h->node.key = h->name;
    h->holder = me(w);
    h->holder_area = area;
    atoll__strmap_put(&d->holds, &h->node);
    pthread_mutex_unlock(&d->lock);
    start_load(d, me(w), cookie, kind, key);
}

/* The holder is done with kind/key: the next one that waits loads it. */
static void
checkin(atoll__docs *d, atoll__doc_kind kind, const char *key)
{
    if (d == NULL)
        return;
    char name[ATOLL__DOC_NAME_MAX];
    hold *h = lock_hold(d, kind, key, name);
    if (h == NULL) {
        pthread_mutex_unlock(&d->lock);
        return;
    }
    waiter *x = h->waiters;
    if (x == NULL) {
        atoll__strmap_del(&d->holds, name);
        pthread_mutex_unlock(&d->lock);
        atoll__free(h);
        return;
    }
    h->waiters = x->next;
    if (h->waiters == NULL)
        h->waiters_tail = NULL;
    h->holder = x->to;
    h->holder_area = 0;
    pthread_mutex_unlock(&d->lock);
    start_load(d, x->to, x->cookie, kind, key);
    atoll__free(x);
}

/* The area a held player document's player is in now (for AREA_EVICT). */
static void
holder_moved(atoll__worker *w, const char *uid, uint64_t area)
{
    atoll__docs *d = docs_of(w);
    char name[ATOLL__DOC_NAME_MAX];
    hold *h = lock_hold(d, ATOLL__DOC_PLAYER, uid, name);
    if (h == NULL) {
        /* Moved in from another node, which checked it in there: held here now. */
        h = atoll__calloc(1, sizeof *h);
        memcpy(h->name, name, sizeof h->name);
        h->node.key = h->name;
        atoll__strmap_put(&d->holds, &h->node);
    }
    h->holder = me(w);
    h->holder_area = area;
    pthread_mutex_unlock(&d->lock);
}

/* On the writer's thread after each commit: workers whose oldest held output is
 * committed now are told. */
static void
on_commit(void *arg, uint64_t upto)
{
    atoll__docs *d = arg;
    /* Under the lock: a worker that stopped (atoll__docs_worker_stopped) is never woken
     * again, its loop being closed and freed while the writer still commits. */
    pthread_mutex_lock(&d->lock);
    for (int i = 0; i < d->nworkers; i++) {
        uint64_t want = atomic_load(&d->want[i]);
        if (want != 0 && want <= upto && atomic_exchange(&d->posted[i], 1) == 0)
            atoll__send(d->node, i, atoll__mail_new(ATOLL_MAIL_DOC_COMMITTED, 0));
    }
    pthread_mutex_unlock(&d->lock);
}

void
atoll__docs_worker_stopped(atoll__worker *w)
{
    atoll__docs *d = docs_of(w);
    if (d == NULL)
        return;
    /* posted stays 1: only the worker's own loop, which has ended, would clear it. */
    pthread_mutex_lock(&d->lock);
    atomic_store(&d->posted[w->index], 1);
    d->gone[w->index] = true; /* and no load's answer either */
    pthread_mutex_unlock(&d->lock);
}

static void on_loaded_mail(atoll__worker *w, atoll__mail *m);
static void on_committed_mail(atoll__worker *w, atoll__mail *m);
static void on_evict_mail(atoll__worker *w, atoll__mail *m);

int
atoll__docs_open(atoll__node *n)
{
    atoll__area_node *an = atoll__area_node_of(n);
    const atoll__config *cfg = n->cfg;
    atoll__store *s = cfg->store;
    atoll__mail_register(ATOLL_MAIL_DOC_LOADED, on_loaded_mail, NULL);
    atoll__mail_register(ATOLL_MAIL_DOC_COMMITTED, on_committed_mail, NULL);
    atoll__mail_register(ATOLL_MAIL_AREA_EVICT, on_evict_mail, NULL);
    if (s == NULL) {
        /* Nothing is kept: values live as long as their player or area. */
        ATOLL_LOG(ATOLL_LOG_INFO, "msg=\"no store: state is lost when a player leaves or the "
                  "node stops\" store=memory");
        return ATOLL_OK;
    }
    atoll__docs *d = atoll__calloc(1, sizeof *d);
    d->node = n;
    d->store = s;
    d->durable = cfg->store_durable != 0;
    d->nworkers = n->nworkers;
    d->want = atoll__calloc((size_t)n->nworkers, sizeof *d->want);
    d->posted = atoll__calloc((size_t)n->nworkers, sizeof *d->posted);
    d->gone = atoll__calloc((size_t)n->nworkers, sizeof *d->gone);
    pthread_mutex_init(&d->lock, NULL);
    d->writer = atoll__writer_start(s, NULL, NULL, 100);
    if (d->writer == NULL) {
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"cannot start the writer thread\"");
        pthread_mutex_destroy(&d->lock);
        atoll__free(d->want);
        atoll__free(d->posted);
        atoll__free(d->gone);
        atoll__free(d);
        return ATOLL_ENOMEM;
    }
    atoll__writer_on_commit(d->writer, on_commit, d);
    an->docs = d;
    ATOLL_LOG(ATOLL_LOG_INFO, "msg=\"store open\" store=%s durability=%s", s->ops->name,
              d->durable ? "durable" : "fast");
    return ATOLL_OK;
}

void
atoll__docs_close(atoll__node *n)
{
    atoll__area_node *an = atoll__area_node_of(n);
    atoll__docs *d = an ? an->docs : NULL;
    if (d == NULL)
        return;
    /* The workers are gone (their loops closed): no output waits for a commit, and a
     * DOC_COMMITTED posted now would wake a closed loop, which aborts in libuv. */
    atoll__writer_on_commit(d->writer, NULL, NULL);
    atoll__writer_stats st;
    atoll__writer_stats_get(d->writer, &st);
    /* Everything the workers handed over is committed before the process ends (a
     * store that is down gets a while to come back). */
    int rc = atoll__writer_stop(d->writer, 60000);
    ATOLL_LOG(rc == ATOLL_OK ? ATOLL_LOG_INFO : ATOLL_LOG_ERROR,
              "msg=\"store closed\" flushed=%s batches=%llu docs=%llu bytes=%llu "
              "coalesced=%llu failures=%llu fenced=%llu lag_ms_max=%.1f commit_ms=%.1f "
              "loads=%llu",
              rc == ATOLL_OK ? "yes" : "NO", (unsigned long long)st.batches,
              (unsigned long long)st.docs, (unsigned long long)st.bytes,
              (unsigned long long)st.coalesced, (unsigned long long)st.failures,
              (unsigned long long)st.fenced, (double)st.lag_ns_max / 1e6,
              (double)st.commit_ns / 1e6, (unsigned long long)st.loads);
    for (size_t i = 0; i < d->holds.cap; i++) {
        hold *h = d->holds.slots[i].value;
        if (d->holds.slots[i].key == 0 || h == NULL)
            continue;
        for (waiter *x = h->waiters, *next; x != NULL; x = next) {
            next = x->next;
            atoll__free(x);
        }
    }
    atoll__strmap_clear(&d->holds, atoll__free);
    atoll__map_fini(&d->holds);
    pthread_mutex_destroy(&d->lock);
    atoll__free(d->want);
    atoll__free(d->posted);
    atoll__free(d->gone);
    atoll__free(d);
    an->docs = NULL;
}

/* ---- a worker's documents -------------------------------------------------------------- */

typedef struct atoll__held {
    struct atoll__held *next;
    atoll__buf log;           /* the effects journal's records (effects.c) */
    atoll__mail_list mail;    /* its staged mail */
    uint64_t ticket;          /* the writer's submits it waits for (once ticketed) */
    bool ticketed;            /* given at the phase end after it was held */
    uint64_t deadline_ms;
    atoll_session_id req_session; /* a client request answered in it, or 0 */
    int req_worker;
    uint32_t req_id;
    bool plain;               /* framework output sent after a region (an error answer, a
                               * kept request's answer): waits only for order, and goes
                               * at the timeout rather than being dropped */
} held;

static void flush_now(atoll__worker *w);

static void
on_flush_timer(uv_timer_t *t)
{
    atoll__worker *w = t->data;
    w->areas->docs.flush_armed = false;
    flush_now(w);
    atoll__mail_pump(w);
}

void
atoll__docs_worker_init(atoll__worker *w)
{
    atoll__docs_worker *dw = &w->areas->docs;
    uv_timer_init(&w->loop, &dw->flush_timer);
    dw->flush_timer.data = w;
}

static void
held_free(atoll__worker *w, held *h, bool cancel)
{
    if (cancel)
        atoll__fx_drop_mail(w, atoll__mail_list_take(&h->mail));
    else
        atoll__mail_free_list(atoll__mail_list_take(&h->mail));
    atoll__buf_fini(&h->log);
    atoll__free(h);
}

void
atoll__docs_worker_fini(atoll__worker *w)
{
    atoll__docs_worker *dw = &w->areas->docs;
    for (held *h = dw->held, *next; h != NULL; h = next) {
        next = h->next;
        held_free(w, h, false);
    }
    dw->held = dw->held_tail = NULL;
    atoll__map_fini(&dw->roots);
    for (size_t i = 0; i < dw->loads.cap; i++)
        if (dw->loads.slots[i].key != 0)
            atoll__mail_free(dw->loads.slots[i].value);
    atoll__map_fini(&dw->loads);
    atoll__free(dw->dirty);
    atoll__free(dw->touched);
    atoll__buf_fini(&dw->scratch);
    if (!uv_is_closing((uv_handle_t *)&dw->flush_timer))
        uv_close((uv_handle_t *)&dw->flush_timer, NULL);
}

static atoll_value *
root_of(void *t)
{
    atoll_player *p = as_player(t);
    return p ? p->data : as_area(t)->state;
}

static uint32_t *
dirty_slot(void *t)
{
    atoll_player *p = as_player(t);
    return p ? &p->dirty_at : &as_area(t)->dirty_at;
}

static void
mark_dirty(atoll__worker *w, void *t)
{
    atoll__docs_worker *dw = &w->areas->docs;
    atoll_player *p = as_player(t);
    if ((p != NULL && !p->persisted) || docs_of(w) == NULL)
        return;
    uint32_t *slot = dirty_slot(t);
    if (*slot != 0)
        return;
    dw->dirty = atoll__grow(dw->dirty, dw->ndirty, &dw->cap_dirty, sizeof *dw->dirty, 32);
    dw->dirty[dw->ndirty++] = t;
    *slot = (uint32_t)dw->ndirty;
    const atoll__docs *d = docs_of(w);
    if (!d->durable && !dw->flush_armed) {
        uint64_t ms = w->node->cfg->flush_ms / 2;
        uv_timer_start(&dw->flush_timer, on_flush_timer, ms ? ms : 1, 0);
        dw->flush_armed = true;
    }
}

/* The epoch a player's document is written with: never older than the stored one,
 * nor than its area's (docs/design/cluster.md, "Fencing"). */
static uint64_t
player_epoch(atoll_player *p)
{
    if (p->area != NULL && p->area->epoch > p->doc_epoch)
        p->doc_epoch = p->area->epoch;
    return p->doc_epoch;
}

/* Encodes the document of t and hands it to the writer when its bytes changed. */
static void
write_doc(atoll__worker *w, void *t)
{
    atoll__docs_worker *dw = &w->areas->docs;
    atoll__docs *d = docs_of(w);
    atoll_player *p = as_player(t);
    atoll_area *a = as_area(t);
    uint32_t *slot = dirty_slot(t);
    if (*slot != 0) {
        dw->dirty[*slot - 1] = NULL;
        *slot = 0;
    }
    if ((p != NULL && !p->persisted) || d == NULL)
        return;
    dw->scratch.len = 0;
    atoll__value_write(&dw->scratch, root_of(t));
    if (p != NULL)
        atoll__exact_put(&dw->scratch, p); /* committed with what they changed */
    uint64_t h = atoll__hash_bytes(atoll__buf_data(&dw->scratch), dw->scratch.len);
    uint64_t *last = p ? &p->doc_hash : &a->doc_hash;
    if (h == *last)
        return;
    if (dw->scratch.len > ATOLL__DOC_MAX) {
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"document over the store's limit, not written\" "
                  "doc=\"%s:%s\" bytes=%zu limit=%u", p ? "player" : "area",
                  p ? p->uid : a->id, dw->scratch.len, ATOLL__DOC_MAX);
        return;
    }
    atoll__doc_write dwr = {
        .kind = p ? ATOLL__DOC_PLAYER : ATOLL__DOC_AREA,
        .epoch = p ? player_epoch(p) : a->epoch,
        .seq = ++dw->next_cookie,
        .len = dw->scratch.len,
    };
    snprintf(dwr.key, sizeof dwr.key, "%s", p ? p->uid : a->id);
    dwr.bytes = atoll__malloc(dwr.len ? dwr.len : 1);
    memcpy(dwr.bytes, atoll__buf_data(&dw->scratch), dwr.len);
    if (atoll__writer_submit(d->writer, &dwr) == ATOLL_OK)
        *last = h;
    dw->last_ticket = atoll__writer_submitted(d->writer);
    atoll__buf_shrink(&dw->scratch, 1 << 20);
}

/* Hands every changed document over, then gives waiting output its ticket. */
static void
flush_now(atoll__worker *w)
{
    atoll__docs_worker *dw = &w->areas->docs;
    atoll__docs *d = docs_of(w);
    for (size_t i = 0; i < dw->ndirty; i++)
        if (dw->dirty[i] != NULL)
            write_doc(w, dw->dirty[i]);
    dw->ndirty = 0;
    if (dw->held == NULL)
        return;
    bool fresh = false;
    for (held *h = dw->held; h != NULL; h = h->next) {
        if (!h->ticketed) {
            /* Everything this worker handed over so far (0: nothing: it waits for order
             * only, and goes as soon as what is before it goes). */
            h->ticket = dw->last_ticket;
            h->ticketed = true;
            fresh = true;
        }
    }
    if (!fresh)
        return;
    atomic_store(&d->want[w->index], dw->held->ticket ? dw->held->ticket : 1);
    /* A commit that came before `want` was set told nobody: look once more. */
    if (atoll__writer_committed(d->writer) >= dw->held->ticket &&
        atomic_exchange(&d->posted[w->index], 1) == 0)
        atoll__send(w->node, w->index, atoll__mail_new(ATOLL_MAIL_DOC_COMMITTED, 0));
}

void
atoll__docs_phase_end(atoll__worker *w)
{
    if (w->areas == NULL)
        return;
    atoll__docs_worker *dw = &w->areas->docs;
    atoll__docs *d = docs_of(w);
    if (d != NULL && d->durable && (dw->ndirty > 0 || (dw->held_tail && !dw->held_tail->ticketed)))
        flush_now(w);
}

static void
touch(atoll__worker *w, void *t)
{
    if (!atoll__fx_active(w) || docs_of(w) == NULL)
        return;
    atoll__docs_worker *dw = &w->areas->docs;
    dw->touched = atoll__grow(dw->touched, dw->ntouched, &dw->cap_touched, sizeof *dw->touched, 8);
    dw->touched[dw->ntouched++] = t;
}

void
atoll__docs_mark_player(atoll__worker *w, atoll_player *p)
{
    mark_dirty(w, tag_player(p));
}

void
atoll__docs_claim_player(atoll__worker *w, atoll_player *p)
{
    p->doc_hash = 0; /* written even though its bytes are those stored */
    mark_dirty(w, tag_player(p));
}

void
atoll__docs_claim_area(atoll__worker *w, atoll_area *a)
{
    a->doc_hash = 0;
    mark_dirty(w, a);
}

void
atoll__docs_touch_player(atoll_player *p)
{
    if (p->area != NULL && p->persisted)
        touch(p->area->worker, tag_player(p));
}

void
atoll__docs_touch_area(atoll_area *a)
{
    touch(a->worker, a);
}

void
atoll__docs_region_end(atoll__worker *w, bool keep)
{
    atoll__fx *fx = &w->areas->fx;
    atoll__docs_worker *dw = &w->areas->docs;
    atoll__vjournal *j = &fx->journal;
    if (!keep) {
        atoll__vj_rollback(j);
    } else if (j->n > 0 && docs_of(w) == NULL) {
        atoll__vj_clear(j); /* nothing is kept: no document to mark */
    } else if (j->n > 0) {
        bool deep = false, wrote_doc = false;
        for (size_t i = 0; i < j->n; i++) {
            void *t = atoll__map_get(&dw->roots, (uint64_t)(uintptr_t)j->recs[i].container);
            if (t != NULL) {
                mark_dirty(w, t);
                wrote_doc = true;
            } else {
                deep = true;
            }
        }
        if (deep)
            for (size_t i = 0; i < dw->ntouched; i++)
                if (dw->touched[i] != NULL) /* NULL: it left meanwhile */
                    mark_dirty(w, dw->touched[i]);
        if (fx->query != NULL && wrote_doc) {
            ATOLL_LOG_CLIENT(ATOLL_LOG_WARN, "msg=\"a query handler changed a document: queries "
                          "must only read (the change is kept and written)\" route=%s",
                          fx->query);
        }
        atoll__vj_clear(j);
    }
    dw->ntouched = 0;
}

bool
atoll__docs_holding(atoll__worker *w)
{
    atoll__docs_worker *dw = &w->areas->docs;
    atoll__docs *d = docs_of(w);
    if (d == NULL || !d->durable)
        return false;
    return dw->ndirty > 0 || dw->held != NULL ||
           dw->last_ticket > atoll__writer_committed(d->writer);
}

static held *
held_new(atoll__worker *w)
{
    atoll__docs_worker *dw = &w->areas->docs;
    held *h = atoll__calloc(1, sizeof *h);
    h->deadline_ms = uv_now(&w->loop) + w->node->cfg->store_timeout_ms;
    if (dw->held_tail)
        dw->held_tail->next = h;
    else
        dw->held = h;
    dw->held_tail = h;
    return h;
}

void
atoll__docs_hold_region(atoll__worker *w, atoll__buf *log, atoll__mail_list *mail)
{
    atoll__fx *fx = &w->areas->fx;
    held *h = held_new(w);
    atoll__buf_append(&h->log, atoll__buf_data(log), log->len);
    h->mail = *mail;
    mail->head = mail->tail = NULL;
    h->req_session = fx->req_session;
    h->req_worker = fx->req_worker;
    h->req_id = fx->req_id;
}

void
atoll__docs_hold_out(atoll__worker *w, atoll_session_id s, int sw, const uint8_t *p, size_t n)
{
    held *h = held_new(w);
    h->plain = true;
    atoll__fx_put_out(&h->log, s, sw, p, n);
}

bool
atoll__docs_hold_mail(atoll__worker *w, atoll__addr to, atoll__mail *m)
{
    if (w->areas == NULL || w->areas->docs.releasing || !atoll__docs_holding(w))
        return false;
    held *h = held_new(w);
    h->plain = true;
    atoll__fx_put_mail(&h->log, &h->mail, m, to);
    return true;
}

static void
release_one(atoll__worker *w, held *h)
{
    atoll__docs_worker *dw = &w->areas->docs;
    dw->releasing = true; /* its mail goes out now, not back into the queue */
    atoll__fx_release_journal(w, &h->log, &h->mail);
    dw->releasing = false;
}

void
atoll__docs_kept_answer(atoll__worker *w, atoll_session_id s, int sw, uint32_t id,
                        const uint8_t *p, size_t n)
{
    atoll__docs *d = docs_of(w);
    if (d != NULL && d->durable && atoll__fx_active(w)) {
        /* The region may change what this answer tells: it waits like the region's own
         * output (its ticket, at the phase end, covers the region's changes), but goes
         * whether the region fails or not, and is a request's answer at the timeout. */
        atoll__docs_hold_out(w, s, sw, p, n);
        held *h = w->areas->docs.held_tail;
        h->plain = false;
        h->req_session = s;
        h->req_worker = sw;
        h->req_id = id;
    } else if (atoll__docs_holding(w)) {
        atoll__docs_hold_out(w, s, sw, p, n);
    } else {
        atoll__session_out_now(w, s, sw, p, n);
    }
}

/* Releases the held output whose commits are in, oldest first. */
static void
release_held(atoll__worker *w)
{
    atoll__docs_worker *dw = &w->areas->docs;
    atoll__docs *d = docs_of(w);
    uint64_t committed = atoll__writer_committed(d->writer);
    while (dw->held != NULL && dw->held->ticketed && dw->held->ticket <= committed) {
        held *h = dw->held;
        dw->held = h->next;
        if (dw->held == NULL)
            dw->held_tail = NULL;
        release_one(w, h);
        held_free(w, h, false);
    }
    atomic_store(&d->want[w->index],
                 dw->held && dw->held->ticketed ? (dw->held->ticket ? dw->held->ticket : 1) : 0);
    if (dw->held != NULL && dw->held->ticketed &&
        atoll__writer_committed(d->writer) >= dw->held->ticket &&
        atomic_exchange(&d->posted[w->index], 1) == 0)
        atoll__send(w->node, w->index, atoll__mail_new(ATOLL_MAIL_DOC_COMMITTED, 0));
}

static void
on_committed_mail(atoll__worker *w, atoll__mail *m)
{
    atoll__mail_free(m);
    atomic_store(&docs_of(w)->posted[w->index], 0);
    if (w->areas != NULL)
        release_held(w);
}

/* Worker 0, once a second: in fast mode, a commit that lags behind store.flush_ms
 * breaks the promise that mode makes, and the operator hears of it (at most every 10 s). */
static void
check_lag(atoll__worker *w)
{
    static __thread uint64_t next_check_ms, next_warn_ms;
    atoll__docs *d = docs_of(w);
    uint64_t now = uv_now(&w->loop);
    if (d == NULL || d->durable || w->index != 0 || now < next_check_ms)
        return;
    next_check_ms = now + 1000;
    atoll__writer_stats st;
    atoll__writer_stats_get(d->writer, &st);
    uint64_t lag_ms = (st.lag_ns_now > st.lag_ns_last ? st.lag_ns_now : st.lag_ns_last) / 1000000u;
    if (lag_ms > w->node->cfg->flush_ms && now >= next_warn_ms) {
        next_warn_ms = now + 10000;
        ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"commit lag over store.flush_ms: a crash now would lose "
                  "more than the fast mode promises\" lag_ms=%llu flush_ms=%u failures=%llu",
                  (unsigned long long)lag_ms, w->node->cfg->flush_ms,
                  (unsigned long long)st.failures);
    }
}

void
atoll__docs_tick(atoll__worker *w)
{
    atoll__docs_worker *dw = &w->areas->docs;
    check_lag(w);
    if (dw->held == NULL)
        return;
    uint64_t now = uv_now(&w->loop);
    bool dropped = false;
    release_held(w); /* what is committed goes first, whatever its age */
    while (dw->held != NULL && dw->held->deadline_ms <= now) {
        held *h = dw->held;
        dw->held = h->next;
        if (dw->held == NULL)
            dw->held_tail = NULL;
        if (h->plain) {
            release_one(w, h);
        } else if (h->req_session.v != 0) {
            ATOLL_LOG_CLIENT(ATOLL_LOG_ERROR, "msg=\"a change is not committed within "
                          "store.timeout_ms: its request is answered 500 (the change stays in "
                          "memory and is written when the store is back)\" timeout_ms=%u",
                          w->node->cfg->store_timeout_ms);
            atoll__answer_client_error(w, h->req_session, h->req_worker, h->req_id, 500,
                                       "state not saved: the store is unavailable");
        }
        held_free(w, h, true);
        dropped = true;
    }
    if (dropped)
        release_held(w);
}

/* ---- players and areas coming and going -------------------------------------------------- */

void
atoll__docs_player_in(atoll__worker *w, atoll_player *p)
{
    atoll__map_put(&w->areas->docs.roots, (uint64_t)(uintptr_t)p->data, tag_player(p));
    if (p->persisted)
        holder_moved(w, p->uid, p->area ? p->area->num : 0);
}

/* t leaves this worker's documents: the region that runs may no longer mark it. */
static void
untouch(atoll__docs_worker *dw, void *t)
{
    for (size_t i = 0; i < dw->ntouched; i++)
        if (dw->touched[i] == t)
            dw->touched[i] = NULL;
}

void
atoll__docs_player_out(atoll__worker *w, atoll_player *p)
{
    atoll__docs_worker *dw = &w->areas->docs;
    untouch(dw, tag_player(p));
    if (atoll__map_get(&dw->roots, (uint64_t)(uintptr_t)p->data) == tag_player(p))
        atoll__map_del(&dw->roots, (uint64_t)(uintptr_t)p->data);
    /* Handed over before it leaves this worker: its next one writes from then on. */
    if (p->dirty_at != 0)
        write_doc(w, tag_player(p));
}

void
atoll__docs_player_away(atoll__worker *w, atoll_player *p)
{
    if (p->persisted)
        checkin(docs_of(w), ATOLL__DOC_PLAYER, p->uid);
}

void
atoll__docs_area_in(atoll__worker *w, atoll_area *a)
{
    atoll__map_put(&w->areas->docs.roots, (uint64_t)(uintptr_t)a->state, a);
}

void
atoll__player_gone(atoll__worker *w, atoll_player *p)
{
    untouch(&w->areas->docs, tag_player(p));
    if (p->persisted && p->refused) {
        if (p->dirty_at != 0)
            w->areas->docs.dirty[p->dirty_at - 1] = NULL;
        checkin(docs_of(w), ATOLL__DOC_PLAYER, p->uid); /* refused: as it was stored */
    } else if (p->persisted) {
        write_doc(w, tag_player(p)); /* whatever changed, in on_leave too */
        checkin(docs_of(w), ATOLL__DOC_PLAYER, p->uid);
    } else if (p->dirty_at != 0) {
        w->areas->docs.dirty[p->dirty_at - 1] = NULL;
    }
    atoll__player_free(p);
}

void
atoll__docs_area_gone(atoll__worker *w, atoll_area *a)
{
    atoll__map_del(&w->areas->docs.roots, (uint64_t)(uintptr_t)a->state);
    untouch(&w->areas->docs, a);
    if (!a->refused)
        write_doc(w, a); /* a refused area's state was never the game's: not written */
    else if (a->dirty_at != 0)
        w->areas->docs.dirty[a->dirty_at - 1] = NULL;
    checkin(docs_of(w), ATOLL__DOC_AREA, a->id);
}

/* ---- loading ----------------------------------------------------------------------------- */

bool
atoll__docs_wanted(atoll__worker *w, const atoll_player *p)
{
    atoll__docs *d = docs_of(w);
    if (d == NULL || !p->persisted)
        return false;
    char name[ATOLL__DOC_NAME_MAX];
    hold *h = lock_hold(d, ATOLL__DOC_PLAYER, p->uid, name);
    bool wanted = h != NULL && h->waiters != NULL;
    pthread_mutex_unlock(&d->lock);
    return wanted;
}

bool
atoll__docs_enter_wait(atoll__worker *w, atoll__mail *m)
{
    if (m->uid[0] == '~' || m->doc != 0 || docs_of(w) == NULL)
        return false; /* a guest, its document is here, or nothing is kept */
    atoll__docs_worker *dw = &w->areas->docs;
    uint64_t cookie = ++dw->next_cookie;
    atoll__map_put(&dw->loads, cookie, m);
    checkout(w, ATOLL__DOC_PLAYER, m->uid, cookie, m->area);
    return true;
}

void
atoll__docs_area_load(atoll__worker *w, const char *id)
{
    if (docs_of(w) == NULL)
        atoll__area_loaded(w, id, NULL, 0, NULL);
    else
        checkout(w, ATOLL__DOC_AREA, id, 0, 0);
}

static void
on_loaded_mail(atoll__worker *w, atoll__mail *m)
{
    char err[300] = "";
    atoll_value *doc = NULL;
    const char *kind = m->type_index == ATOLL__DOC_AREA ? "area" : "player";
    if (m->status == ATOLL_OK) {
        doc = atoll__value_doc_decode(m->data, m->len, err, sizeof err);
        if (doc == NULL)
            ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"stored document cannot be read: it is left as "
                      "it is and not used\" doc=\"%s:%s\" error=\"%s\"", kind, m->uid, err);
    } else if (m->status != ATOLL_ENOENT) {
        snprintf(err, sizeof err, "%s", atoll_as_str(m->value, atoll_strerror(m->status)));
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"cannot load a document from the store\" "
                  "doc=\"%s:%s\" error=\"%s\"", kind, m->uid, err);
    }
    bool failed = doc == NULL && m->status != ATOLL_ENOENT;
    uint64_t hash = m->status == ATOLL_OK ? atoll__hash_bytes(m->data, m->len) : 0;
    if (m->type_index == ATOLL__DOC_AREA) {
        if (failed)
            checkin(docs_of(w), ATOLL__DOC_AREA, m->uid);
        atoll__area_loaded(w, m->uid, doc, hash, failed ? err : NULL);
        atoll__mail_free(m);
        return;
    }
    atoll__mail *entry = atoll__map_del(&w->areas->docs.loads, m->call_id);
    if (entry == NULL) {
        atoll_unref(doc);
        checkin(docs_of(w), ATOLL__DOC_PLAYER, m->uid);
        atoll__mail_free(m);
        return;
    }
    atoll_unref(entry->value);
    entry->value = NULL;
    if (atoll__area_find(w, entry->area) == NULL) {
        /* Its area went away while the document loaded: the entry starts over where
         * the area is made again, and checks the document out there. */
        atoll_unref(doc);
        checkin(docs_of(w), ATOLL__DOC_PLAYER, m->uid);
        atoll__mail_free(m);
        atoll__area_mail(w, entry);
        return;
    }
    if (failed) {
        checkin(docs_of(w), ATOLL__DOC_PLAYER, m->uid);
        entry->doc = 2;
        entry->value = NULL;
    } else {
        entry->doc = 1;
        entry->value = doc; /* NULL: none stored, the defaults */
        entry->epoch = hash;
        entry->doc_epoch = m->epoch;
    }
    atoll__mail_free(m);
    atoll__area_mail(w, entry);
}

static void
on_evict_mail(atoll__worker *w, atoll__mail *m)
{
    atoll_area *a = w->areas ? atoll__area_find(w, m->area) : NULL;
    atoll_player *p = a ? atoll_area_player(a, m->uid) : NULL;
    if (p != NULL && p->disconnected && !p->leaving) {
        ATOLL_LOG(ATOLL_LOG_DEBUG, "msg=\"player logged in elsewhere, its wait for the client "
                  "ends\" uid=\"%s\" area=\"%s\"", p->uid, a->id);
        atoll__resume_end_now(a, p);
    }
    atoll__mail_free(m);
}

atoll_value *
atoll__docs_start(atoll_value *stored, const char *defaults)
{
    if (stored != NULL)
        return stored;
    atoll_value *v = defaults ? atoll_parse(defaults, strlen(defaults), NULL, 0) : NULL;
    return v ? v : atoll_object();
}

/* ---- a hand-off to another node (migrate.c) ------------------------------------------------ */

uint64_t
atoll__docs_flush(atoll__worker *w)
{
    if (docs_of(w) == NULL)
        return 0;
    flush_now(w);
    return w->areas->docs.last_ticket;
}

bool
atoll__docs_flushed(atoll__worker *w, uint64_t ticket)
{
    atoll__docs *d = docs_of(w);
    if (d == NULL || !d->durable)
        return true; /* fast: what left already may be lost, as fast mode says */
    atoll__docs_worker *dw = &w->areas->docs;
    if (atoll__writer_committed(d->writer) < ticket)
        return false;
    release_held(w); /* a DOC_COMMITTED may still be on its way */
    return dw->held == NULL || !dw->held->ticketed || dw->held->ticket > ticket;
}

void
atoll__docs_area_away(atoll__worker *w, atoll_area *a)
{
    atoll__docs_worker *dw = &w->areas->docs;
    atoll__map_del(&dw->roots, (uint64_t)(uintptr_t)a->state);
    untouch(dw, a);
    if (a->dirty_at != 0) {
        dw->dirty[a->dirty_at - 1] = NULL;
        a->dirty_at = 0;
    }
    checkin(docs_of(w), ATOLL__DOC_AREA, a->id);
}

void
atoll__docs_area_held(atoll__worker *w, atoll_area *a)
{
    atoll__docs *d = docs_of(w);
    if (d == NULL)
        return;
    char name[ATOLL__DOC_NAME_MAX];
    hold *h = lock_hold(d, ATOLL__DOC_AREA, a->id, name);
    if (h == NULL) {
        h = atoll__calloc(1, sizeof *h);
        memcpy(h->name, name, sizeof h->name);
        h->node.key = h->name;
        atoll__strmap_put(&d->holds, &h->node);
    }
    h->holder = me(w);
    h->holder_area = 0;
    pthread_mutex_unlock(&d->lock);
}
