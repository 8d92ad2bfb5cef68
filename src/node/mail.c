/* mail.c -- mail between workers: the kinds' handlers, making and freeing mail, the
 * mailboxes, outboxes, SESS_OUT batches and the local queue (mail.h has the design).
 */
#include "metrics.h"
#include "wire.h"
#include "worker.h"

#include <stdlib.h>

#define MAIL_POOL_MAX 4096

/* ---- kinds ------------------------------------------------------------------------------- */

typedef struct mail_kind {
    atoll__mail_fn handle;
    void (*fini)(atoll__mail *m);
    int (*encode)(const atoll__mail *m, atoll__buf *out);
    int (*decode)(atoll__mail *m, const uint8_t *p, size_t n);
} mail_kind;

/* Written by atoll__mail_register before any worker starts, read-only afterwards. */
static mail_kind kinds[ATOLL_MAIL_KINDS];

void
atoll__mail_register(atoll__mail_type type, atoll__mail_fn handle, void (*fini)(atoll__mail *m))
{
    kinds[type].handle = handle;
    kinds[type].fini = fini;
}

void
atoll__mail_register_codec(atoll__mail_type type,
                           int (*encode)(const atoll__mail *m, atoll__buf *out),
                           int (*decode)(atoll__mail *m, const uint8_t *p, size_t n))
{
    kinds[type].encode = encode;
    kinds[type].decode = decode;
}

int
atoll__mail_payload_encode(const atoll__mail *m, atoll__buf *out)
{
    return kinds[m->type].encode ? kinds[m->type].encode(m, out) : ATOLL_EINVAL;
}

int
atoll__mail_payload_decode(atoll__mail *m, const uint8_t *p, size_t n)
{
    return kinds[m->type].decode ? kinds[m->type].decode(m, p, n) : ATOLL_EPROTO;
}

void
atoll__mail_dispatch(atoll__worker *w, atoll__mail *m)
{
    atoll__mail_fn fn = (unsigned)m->type < ATOLL_MAIL_KINDS ? kinds[m->type].handle : NULL;
    if (fn != NULL)
        fn(w, m);
    else
        atoll__mail_free(m);
}

/* ---- making and freeing ------------------------------------------------------------------- */

static __thread atoll__worker *tls_worker;

atoll__worker *
atoll__current_worker(void)
{
    return tls_worker;
}

void
atoll__mail_set_thread(atoll__worker *w)
{
    tls_worker = w;
}

atoll__mail *
atoll__mail_new(atoll__mail_type type, size_t len)
{
    atoll__worker *w = tls_worker;
    atoll__mail *m;
    /* Mail with a small body (a client's request, most often) comes from the free list,
     * all of whose mail has room for ATOLL_MAIL_SMALL_DATA bytes. */
    if (len <= ATOLL_MAIL_SMALL_DATA && w != NULL && w->mail_pool != NULL) {
        m = w->mail_pool;
        w->mail_pool = m->next;
        w->mail_pool_len--;
        memset(m, 0, sizeof *m); /* the data is the caller's to fill */
    } else {
        m = atoll__calloc(1, sizeof *m + (len <= ATOLL_MAIL_SMALL_DATA ? ATOLL_MAIL_SMALL_DATA : len));
    }
    m->type = type;
    m->len = len;
    m->pooled = len <= ATOLL_MAIL_SMALL_DATA;
    return m;
}

void
atoll__mail_free(atoll__mail *m)
{
    if (m->shared && atomic_fetch_sub(&m->shared->refs, 1) == 1)
        atoll__free(m->shared);
    atoll__free(m->uid);
    atoll__free(m->sessions);
    atoll_unref(m->value);
    if (m->payload != NULL && (unsigned)m->type < ATOLL_MAIL_KINDS && kinds[m->type].fini)
        kinds[m->type].fini(m);
    atoll__worker *w = tls_worker;
    if (m->pooled && w != NULL && w->mail_pool_len < MAIL_POOL_MAX) {
        m->next = w->mail_pool;
        w->mail_pool = m;
        w->mail_pool_len++;
        return;
    }
    atoll__free(m);
}

atoll__mail *
atoll__kick_new(atoll_session_id s, const char *reason)
{
    atoll__mail *k = atoll__mail_new(ATOLL_MAIL_KICK, 0);
    k->session = s;
    snprintf(k->reason, sizeof k->reason, "%s", reason);
    return k;
}

atoll__shared *
atoll__shared_new(const void *p, size_t len, int refs)
{
    atoll__shared *sh = atoll__malloc(sizeof *sh + len);
    atomic_init(&sh->refs, refs);
    sh->len = len;
    if (len > 0)
        memcpy(sh->data, p, len);
    return sh;
}

void
atoll__mail_free_list(atoll__mail *m)
{
    while (m != NULL) {
        atoll__mail *next = m->next;
        atoll__mail_free(m);
        m = next;
    }
}

/* ---- mailboxes ------------------------------------------------------------------------------ */

/* Splices the list first..last into w's mailbox; wakes w when it was empty. */
static void
post_list(atoll__worker *w, atoll__mail *first, atoll__mail *last)
{
    atoll__mailbox *mb = &w->mailbox;
    last->next = NULL;
    pthread_mutex_lock(&mb->lock);
    bool was_empty = mb->head == NULL;
    if (was_empty)
        mb->head = first;
    else
        mb->tail->next = first;
    mb->tail = last;
    pthread_mutex_unlock(&mb->lock);
    if (was_empty)
        uv_async_send(&w->wake);
}

/* ---- loopback links ------------------------------------------------------------------------ */

/* With node.loopback_links every mail between workers is encoded, framed as a node link
 * frames it, and decoded by the receiver, as if each worker were a node: the proof
 * that every kind crosses nodes whole. The list first..(NULL) becomes one LINK mail. */
static atoll__mail *
link_encode(atoll__mail *first)
{
    atoll__buf b = ATOLL__BUF_INIT;
    for (atoll__mail *m = first, *next; m != NULL; m = next) {
        next = m->next;
        int rc = atoll__wire_encode(m, &b);
        if (rc != ATOLL_OK)
            ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"mail cannot cross a link, dropped\" kind=%d error=%s",
                      (int)m->type, atoll_err_name(rc));
        atoll__mail_free(m);
    }
    atoll__mail *l = atoll__mail_new(ATOLL_MAIL_LINK, b.len);
    memcpy(l->data, atoll__buf_data(&b), b.len);
    atoll__buf_fini(&b);
    return l;
}

/* LINK mail carries frames: between workers of this node with node.loopback_links
 * (at.node 0), from a peer node through the cluster's link (at.node: the peer), or
 * back from the link when the node it was for cannot be reached (status ATOLL_ECLOSED
 * or ATOLL_ETIMEDOUT: undeliverable, handed to the modules to fail what waits for it). */
static void
on_link_mail(atoll__worker *w, atoll__mail *l)
{
    atoll__node *n = w->node;
    atoll__wire_limits lim = {.nworkers = n->nworkers, .ntypes = n->ntypes, .node_id = n->id};
    for (size_t off = 0; off < l->len;) {
        atoll__mail *m;
        ssize_t k = atoll__wire_decode(l->data + off, l->len - off, &lim, &m);
        if (k <= 0) {
            ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"bad frame on a link, rest dropped\" peer=%u error=%s",
                      (unsigned)l->at.node, k == 0 ? "truncated" : atoll_err_name((int)k));
            /* From a peer node this is bad input: its link is cut. Between this node's
             * own workers (node.loopback_links, a mode for tests) it can only be a frame
             * its encoder and decoder disagree on: stopped at once, where the test sees
             * it, rather than as a request that times out later. */
            if (l->at.node == 0 && l->status == 0) {
                ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"a frame between this node's workers does not "
                          "decode: the wire's encoder and decoder disagree\"");
                abort();
            }
            if (l->at.node != 0 && l->status == 0 && n->remote != NULL)
                n->remote->bad_peer(n, l->at.node);
            break;
        }
        off += (size_t)k;
        if (l->status != 0) {
            bool taken = false;
            for (const atoll__module *const *mod = n->modules; mod && *mod && !taken; mod++)
                if ((*mod)->worker_undeliverable) {
                    (*mod)->worker_undeliverable(w, m, l->status);
                    taken = true;
                }
            if (!taken)
                atoll__mail_free(m);
            continue;
        }
        atoll__mail_dispatch(w, m);
    }
    atoll__mail_free(l);
}

static bool
loopback(const atoll__worker *from, const atoll__worker *to)
{
    return from != NULL && from != to && from->node == to->node && to->node->cfg->loopback_links;
}

void
atoll__worker_post(atoll__worker *w, atoll__mail *m)
{
    if (m->type != ATOLL_MAIL_STOP && m->type != ATOLL_MAIL_LINK && loopback(tls_worker, w)) {
        m->next = NULL;
        m = link_encode(m);
    }
    post_list(w, m, m);
}

void
atoll__mail_receive(atoll__worker *w)
{
    atoll__mailbox *mb = &w->mailbox;
    for (;;) {
        pthread_mutex_lock(&mb->lock);
        atoll__mail *m = mb->head;
        mb->head = mb->tail = NULL;
        pthread_mutex_unlock(&mb->lock);
        if (m == NULL)
            break;
        uint64_t taken = 0;
        while (m != NULL) {
            atoll__mail *next = m->next;
            atoll__mail_dispatch(w, m);
            m = next;
            taken++;
        }
        atoll__metric_observe(ATOLL_HIST_MAIL, taken);
    }
    atoll__mail_pump(w);
}

/* ---- outboxes and batches ------------------------------------------------------------------- */

/* Moves the SESS_OUT records gathered for worker `to` into one mail in its outbox. */
static void
batch_flush(atoll__worker *w, int to)
{
    atoll__buf *b = &w->out_batch[to];
    if (b->len == 0)
        return;
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_SESS_OUT, b->len);
    memcpy(m->data, atoll__buf_data(b), b->len);
    b->len = 0;
    atoll__buf_shrink(b, 64 * 1024); /* a burst does not pin its memory */
    atoll__mail_list_push(&w->outbox[to], m);
}

atoll__mail *
atoll__sess_out_new(atoll_session_id s, const uint8_t *p, size_t len)
{
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_SESS_OUT, 12 + len);
    atoll__wire_store_u64(m->data, s.v);
    atoll__wire_store_u32(m->data + 8, (uint32_t)len);
    memcpy(m->data + 12, p, len);
    return m;
}

void
atoll__send_out(atoll__node *n, atoll_session_id s, const uint8_t *p, size_t len)
{
    if (atoll__session_node(s) != n->id) {
        /* A gate of another node: one SESS_OUT of its own, for that node's link. */
        atoll__send_to(n, atoll__session_addr(s), atoll__sess_out_new(s, p, len));
        return;
    }
    int to = atoll__session_worker(s);
    atoll__worker *cur = tls_worker;
    if (cur == NULL || cur->node != n || cur->stopped || to == cur->index || to < 0 ||
        to >= n->nworkers || len > UINT32_MAX) {
        atoll__send(n, to, atoll__sess_out_new(s, p, len));
        return;
    }
    /* Records are little-endian like every mail that can cross nodes (wire.h). */
    atoll__buf *b = &cur->out_batch[to];
    atoll__buf_reserve(b, 12 + len);
    atoll__wire_put_u64(b, s.v);
    atoll__wire_put_u32(b, (uint32_t)len);
    atoll__buf_append(b, p, len);
}

/* Whether a module keeps m to send later (durable output waiting for its commit). */
static bool
held(atoll__worker *cur, atoll__addr to, atoll__mail *m)
{
    for (const atoll__module *const *mod = cur->node->modules; mod && *mod; mod++)
        if ((*mod)->worker_hold_mail && (*mod)->worker_hold_mail(cur, to, m))
            return true;
    return false;
}

void
atoll__send(atoll__node *n, int to, atoll__mail *m)
{
    atoll__worker *cur = tls_worker;
    if (to < 0 || to >= n->nworkers) {
        atoll__mail_free(m);
        return;
    }
    if (cur == NULL || cur->node != n) {
        atoll__worker_post(n->workers[to], m);
        return;
    }
    if (cur->stopped) {
        /* The loop has ended: the node is going down and nobody will read this. */
        atoll__mail_free(m);
        return;
    }
    if (to != cur->index) {
        if (held(cur, atoll__addr_make(n->id, to), m))
            return;
        batch_flush(cur, to); /* what was written before this mail is read before it */
    }
    atoll__mail_list_push(to == cur->index ? &cur->local : &cur->outbox[to], m);
}

/* A worker hands a node's records to its link once this many bytes have gathered,
 * without waiting for the end of the turn: a sealed chunk stays well under the link's
 * limit, whatever a turn sends. */
#define REMOTE_OUT_FLUSH (1u << 20)

static void
remote_flush(atoll__worker *w, struct atoll__remote_out *ro)
{
    if (ro->records.len == 0)
        return;
    w->node->remote->post(w->node, ro->node, w->index, atoll__buf_data(&ro->records),
                          ro->records.len);
    ro->records.len = 0;
    atoll__buf_shrink(&ro->records, 64 * 1024);
}

static struct atoll__remote_out *
remote_out_of(atoll__worker *w, int node)
{
    for (int i = 0; i < w->nremote_out; i++)
        if (w->remote_out[i].node == node)
            return &w->remote_out[i];
    w->remote_out = atoll__realloc(w->remote_out, (size_t)(w->nremote_out + 1) * sizeof *w->remote_out);
    struct atoll__remote_out *ro = &w->remote_out[w->nremote_out++];
    ro->node = node;
    ro->records = (atoll__buf)ATOLL__BUF_INIT;
    return ro;
}

void
atoll__send_to(atoll__node *n, atoll__addr to, atoll__mail *m)
{
    if (to.node == n->id) {
        atoll__send(n, to.worker, m);
        return;
    }
    if (n->remote == NULL) {
        ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"mail for another node, no cluster: dropped\" node=%u kind=%d",
                  (unsigned)to.node, (int)m->type);
        atoll__mail_free(m);
        return;
    }
    atoll__worker *cur = tls_worker;
    bool on_worker = cur != NULL && cur->node == n;
    if (on_worker && cur->stopped) {
        atoll__mail_free(m);
        return;
    }
    if (on_worker && held(cur, to, m))
        return;
    atoll__buf one = ATOLL__BUF_INIT;
    struct atoll__remote_out *ro = on_worker ? remote_out_of(cur, to.node) : NULL;
    atoll__buf *b = ro ? &ro->records : &one;
    int rc = atoll__wire_encode_for(m, to.worker, b);
    if (rc != ATOLL_OK)
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"mail cannot cross a link, dropped\" kind=%d error=%s",
                  (int)m->type, atoll_err_name(rc));
    atoll__mail_free(m);
    if (ro == NULL) {
        if (one.len > 0)
            n->remote->post(n, to.node, -1, atoll__buf_data(&one), one.len);
        atoll__buf_fini(&one);
    } else if (ro->records.len >= REMOTE_OUT_FLUSH) {
        remote_flush(cur, ro);
    }
}

void
atoll__send_remote_dropped(atoll__worker *w)
{
    for (int i = 0; i < w->nremote_out; i++)
        w->remote_out[i].records.len = 0;
    if (w->node->remote != NULL)
        w->node->remote->dropped(w->node, w->index);
}

/* Splices each non-empty outbox into its worker's mailbox. */
static void
post_outboxes(atoll__worker *w)
{
    atoll__node *n = w->node;
    for (int i = 0; i < n->nworkers; i++) {
        if (w->out_batch[i].len > 0)
            batch_flush(w, i);
        atoll__mail_list *l = &w->outbox[i];
        if (l->head == NULL)
            continue;
        if (loopback(w, n->workers[i])) {
            atoll__mail *link = link_encode(atoll__mail_list_take(l));
            post_list(n->workers[i], link, link);
            continue;
        }
        post_list(n->workers[i], l->head, l->tail);
        l->head = l->tail = NULL;
    }
    for (int i = 0; i < w->nremote_out; i++)
        remote_flush(w, &w->remote_out[i]);
}

static void
on_local_idle(uv_idle_t *h)
{
    atoll__mail_pump(h->data);
}

void
atoll__mail_pump(atoll__worker *w)
{
    /* Mail for other workers leaves first: they start on it while this worker runs its
     * own local mail (a slow handler here must not hold up an area elsewhere). */
    post_outboxes(w);
    /* Local mail runs here, never inside the handler that sent it. A bounded number of
     * rounds keeps a ping-pong between two local areas from starving the sockets; what
     * is left keeps the idle handle on, so the loop polls without blocking. */
    for (int round = 0; round < 16 && w->local.head != NULL; round++) {
        atoll__mail *m = atoll__mail_list_take(&w->local);
        while (m != NULL) {
            atoll__mail *next = m->next;
            atoll__mail_dispatch(w, m);
            m = next;
        }
        post_outboxes(w);
    }
    if (w->local.head != NULL)
        uv_idle_start(&w->local_idle, on_local_idle);
    else
        uv_idle_stop(&w->local_idle);
}

/* ---- a worker's mail, start to end --------------------------------------------------------- */

void
atoll__mail_worker_init(atoll__worker *w, int nworkers)
{
    atoll__mail_register(ATOLL_MAIL_LINK, on_link_mail, NULL);
    pthread_mutex_init(&w->mailbox.lock, NULL);
    size_t k = (size_t)(nworkers > 0 ? nworkers : 1);
    w->outbox = atoll__calloc(k, sizeof *w->outbox);
    w->out_batch = atoll__calloc(k, sizeof *w->out_batch);
}

void
atoll__mail_worker_fini(atoll__worker *w)
{
    /* Mail nobody will read: what arrived after the loop ended, what was never posted. */
    atoll__mail_free_list(w->mailbox.head);
    atoll__mail_free_list(w->local.head);
    w->mailbox.head = w->local.head = NULL;
    for (int i = 0; i < w->node->nworkers; i++)
        atoll__mail_free_list(w->outbox[i].head);
    atoll__free(w->outbox);
    for (int i = 0; i < w->node->nworkers; i++)
        atoll__buf_fini(&w->out_batch[i]);
    atoll__free(w->out_batch);
    for (int i = 0; i < w->nremote_out; i++)
        atoll__buf_fini(&w->remote_out[i].records);
    atoll__free(w->remote_out);
    w->remote_out = NULL;
    w->nremote_out = 0;
    for (atoll__mail *m = w->mail_pool, *nx; m != NULL; m = nx) {
        nx = m->next;
        atoll__free(m);
    }
    w->mail_pool = NULL;
    pthread_mutex_destroy(&w->mailbox.lock);
}
