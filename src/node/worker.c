/* worker.c -- worker threads: loop, listener, mailbox, session slots, uid registry.
 *
 * Each worker runs one libuv loop on its own thread and owns everything it accepted.
 * Other threads reach it only through atoll__worker_post: the mail is appended to a
 * mutex-guarded array and the worker is woken by uv_async_send, which coalesces many
 * posts into one wake-up; the worker swaps the array out whole and handles the mail in
 * arrival order, so posts from one sender keep their order.
 *
 * The uid registry is sharded by hash(uid) % workers. A BIND goes to the shard owner,
 * which records uid -> session and, when another session held the uid, sends that
 * session's worker a KICK; it answers the binding session's worker with BOUND. UNBIND
 * removes the entry only if it still names the closing session, so a late UNBIND of
 * a kicked session cannot remove its successor.
 */
#include "worker.h"
#include "../area/area.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define SCRATCH_LEN (64 * 1024)
#define STOP_GRACE_MS 3000
#define WHEEL_TICK_MS 100

/* ---- session slots -------------------------------------------------------------------- */

atoll_session_id
atoll__worker_add_conn(atoll__worker *w, atoll__conn *c)
{
    uint32_t slot;
    if (w->nfree > 0) {
        slot = w->free_slots[--w->nfree];
    } else {
        if (w->nslots == (1u << 24) - 1)
            atoll__oom(0); /* 16M conns on one worker: beyond any configured limit */
        slot = w->nslots++;
        if ((slot & (slot - 1)) == 0 || slot == 0) {
            uint32_t cap = slot ? slot * 2 : 64;
            w->slots = atoll__realloc(w->slots, cap * sizeof *w->slots);
            w->generations = atoll__realloc(w->generations, cap * sizeof *w->generations);
            w->free_slots = atoll__realloc(w->free_slots, cap * sizeof *w->free_slots);
            memset(w->generations + slot, 0, (cap - slot) * sizeof *w->generations);
        }
    }
    w->slots[slot] = c;
    uint32_t gen = ++w->generations[slot];
    c->all_next = w->all;
    c->all_prev = NULL;
    if (w->all)
        w->all->all_prev = c;
    w->all = c;
    w->nconns++;
    atoll_session_id id = {((uint64_t)w->index << 56) | ((uint64_t)slot << 32) | gen};
    return id;
}

void
atoll__worker_remove_conn(atoll__worker *w, atoll__conn *c)
{
    uint32_t slot = (uint32_t)(c->id.v >> 32) & 0xFFFFFF;
    if (slot < w->nslots && w->slots[slot] == c) {
        w->slots[slot] = NULL;
        w->free_slots[w->nfree++] = slot;
    }
    if (c->all_prev)
        c->all_prev->all_next = c->all_next;
    else if (w->all == c)
        w->all = c->all_next;
    if (c->all_next)
        c->all_next->all_prev = c->all_prev;
    c->all_prev = c->all_next = NULL;
    w->nconns--;
    if (w->stopping && w->nconns == 0)
        uv_stop(&w->loop);
}

atoll__worker *
atoll__worker_of(atoll__node *n, atoll_session_id id)
{
    int wi = atoll__session_worker(id);
    return wi < n->nworkers ? n->workers[wi] : NULL;
}

/* Only on the owning worker's thread. */
atoll__conn *
atoll__worker_find_conn(atoll__node *n, atoll_session_id id)
{
    atoll__worker *w = atoll__worker_of(n, id);
    if (w == NULL)
        return NULL;
    uint32_t slot = (uint32_t)(id.v >> 32) & 0xFFFFFF;
    if (slot >= w->nslots || w->generations[slot] != (uint32_t)id.v)
        return NULL;
    return w->slots[slot];
}

/* ---- uid registry shard ----------------------------------------------------------------- */

static uint32_t
hash_str(const char *s)
{
    uint32_t h = 2166136261u;
    while (*s) {
        h ^= (uint8_t)*s++;
        h *= 16777619u;
    }
    return h;
}

atoll__worker *
atoll__uid_owner(atoll__node *n, const char *uid)
{
    return n->workers[hash_str(uid) % (uint32_t)n->nworkers];
}

/* Linear probing with tombstone-free deletion (backward shift); the table is at most
 * half full, so a probe always ends at an empty slot. Needs uid_cap > 0. */
static atoll__uid_entry *
uid_find(atoll__worker *w, const char *uid, bool *found)
{
    size_t i = hash_str(uid) & (w->uid_cap - 1);
    while (w->uids[i].uid != NULL) {
        if (strcmp(w->uids[i].uid, uid) == 0) {
            *found = true;
            return &w->uids[i];
        }
        i = (i + 1) & (w->uid_cap - 1);
    }
    *found = false;
    return &w->uids[i];
}

static void
uid_grow(atoll__worker *w)
{
    atoll__uid_entry *old = w->uids;
    size_t oldcap = w->uid_cap;
    w->uid_cap *= 2;
    w->uids = atoll__calloc(w->uid_cap, sizeof *w->uids);
    for (size_t i = 0; i < oldcap; i++) {
        if (old[i].uid == NULL)
            continue;
        bool found;
        *uid_find(w, old[i].uid, &found) = old[i];
    }
    atoll__free(old);
}

static void
uid_remove(atoll__worker *w, atoll__uid_entry *e)
{
    size_t mask = w->uid_cap - 1;
    size_t i = (size_t)(e - w->uids);
    atoll__free(e->uid);
    e->uid = NULL;
    w->nuids--;
    /* Backward-shift the following run so lookups never stop at the hole. */
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (w->uids[j].uid == NULL)
            break;
        size_t home = hash_str(w->uids[j].uid) & mask;
        bool move = (j > i) ? (home <= i || home > j) : (home <= i && home > j);
        if (move) {
            w->uids[i] = w->uids[j];
            w->uids[j].uid = NULL;
            i = j;
        }
    }
}

static void
post_to_session(atoll__node *n, atoll_session_id id, atoll__mail *m)
{
    atoll__worker *w = atoll__worker_of(n, id);
    if (w == NULL) {
        atoll__mail_free(m);
        return;
    }
    m->session = id;
    atoll__worker_post(w, m);
}

static void
handle_bind(atoll__worker *w, atoll__mail *m)
{
    if (w->uid_cap == 0) {
        w->uid_cap = 64;
        w->uids = atoll__calloc(w->uid_cap, sizeof *w->uids);
    } else if (w->nuids + 1 > w->uid_cap / 2) {
        uid_grow(w);
    }
    bool found;
    atoll__uid_entry *e = uid_find(w, m->uid, &found);
    if (found && e->session.v != m->session.v) {
        atoll__mail *k = atoll__mail_new(ATOLL_MAIL_KICK, 0);
        snprintf(k->reason, sizeof k->reason, "duplicate login");
        post_to_session(w->node, e->session, k);
        e->session = m->session;
    } else if (!found) {
        e->uid = atoll__strndup(m->uid, strlen(m->uid));
        e->session = m->session;
        w->nuids++;
    }
    m->type = ATOLL_MAIL_BOUND;
    post_to_session(w->node, m->session, m);
}

static void
handle_unbind(atoll__worker *w, atoll__mail *m)
{
    bool found;
    atoll__uid_entry *e = w->uid_cap ? uid_find(w, m->uid, &found) : NULL;
    if (e && found && e->session.v == m->session.v)
        uid_remove(w, e);
    /* Whatever this mail was before (a BOUND whose session had gone carries the whole
     * gate.entry body), atoll__mail_free releases all of it. */
    atoll__mail_free(m);
}

static void
handle_bound(atoll__worker *w, atoll__mail *m)
{
    atoll__conn *c = atoll__worker_find_conn(w->node, m->session);
    if (c == NULL || c->state != ATOLL_CONN_WORKING) {
        /* The session went away while binding: release the uid again. The entry body
         * is not needed for that; it need not cross to the uid's owner either. */
        m->type = ATOLL_MAIL_UNBIND;
        atoll_unref(m->value);
        m->value = NULL;
        atoll__worker_post(atoll__uid_owner(w->node, m->uid), m);
        return;
    }
    atoll__session_bound(c, m);
}

/* ---- mailbox ------------------------------------------------------------------------------- */

static __thread atoll__worker *tls_worker;

atoll__worker *
atoll__current_worker(void)
{
    return tls_worker;
}

#define MAIL_POOL_MAX 4096

atoll__mail *
atoll__mail_new(atoll__mail_type type, size_t len)
{
    atoll__worker *w = tls_worker;
    atoll__mail *m;
    if (len == 0 && w != NULL && w->mail_pool != NULL) {
        m = w->mail_pool;
        w->mail_pool = m->next;
        w->mail_pool_len--;
        memset(m, 0, sizeof *m);
    } else {
        m = atoll__calloc(1, sizeof *m + len);
    }
    m->type = type;
    m->len = len;
    m->pooled = len == 0;
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
    if (m->player)
        atoll__player_free(m->player);
    atoll__worker *w = tls_worker;
    if (m->pooled && w != NULL && w->mail_pool_len < MAIL_POOL_MAX) {
        m->next = w->mail_pool;
        w->mail_pool = m;
        w->mail_pool_len++;
        return;
    }
    atoll__free(m);
}

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
        uv_async_send(&mb->wake);
}

void
atoll__worker_post(atoll__worker *w, atoll__mail *m)
{
    post_list(w, m, m);
}

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

void
atoll__send_out(atoll__node *n, int to, atoll_session_id s, const uint8_t *p, size_t len)
{
    atoll__worker *cur = tls_worker;
    if (cur == NULL || cur->node != n || cur->stopped || to == cur->index || to < 0 ||
        to >= n->nworkers || len > UINT32_MAX) {
        atoll__mail *m = atoll__mail_new(ATOLL_MAIL_SESS_OUT, sizeof s.v + 4 + len);
        uint32_t l = (uint32_t)len;
        memcpy(m->data, &s.v, sizeof s.v);
        memcpy(m->data + sizeof s.v, &l, 4);
        memcpy(m->data + sizeof s.v + 4, p, len);
        atoll__send(n, to, m);
        return;
    }
    atoll__buf *b = &cur->out_batch[to];
    uint32_t l = (uint32_t)len;
    atoll__buf_reserve(b, sizeof s.v + 4 + len);
    atoll__buf_append(b, &s.v, sizeof s.v);
    atoll__buf_append(b, &l, 4);
    atoll__buf_append(b, p, len);
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
    if (to != cur->index)
        batch_flush(cur, to); /* what was written before this mail is read before it */
    atoll__mail_list_push(to == cur->index ? &cur->local : &cur->outbox[to], m);
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
        post_list(n->workers[i], l->head, l->tail);
        l->head = l->tail = NULL;
    }
}

static void
on_local_idle(uv_idle_t *h)
{
    atoll__worker_pump(h->data);
}

void
atoll__worker_pump(atoll__worker *w)
{
    /* Mail for other workers leaves first: they start on it while this worker runs its
     * own local mail (a slow handler here must not hold up an area elsewhere). */
    post_outboxes(w);
    /* Local mail runs here, never inside the handler that sent it. A bounded number of
     * rounds keeps a ping-pong between two local areas from starving the sockets; what
     * is left keeps the idle handle on, so the loop polls without blocking. */
    for (int round = 0; round < 16 && w->local.head != NULL; round++) {
        atoll__mail *m = w->local.head;
        w->local.head = w->local.tail = NULL;
        while (m != NULL) {
            atoll__mail *next = m->next;
            atoll__worker_deliver(w, m);
            m = next;
        }
        post_outboxes(w);
    }
    if (w->local.head != NULL)
        uv_idle_start(&w->local_idle, on_local_idle);
    else
        uv_idle_stop(&w->local_idle);
}

static void begin_stop(atoll__worker *w);

void
atoll__worker_deliver(atoll__worker *w, atoll__mail *m)
{
    switch (m->type) {
    case ATOLL_MAIL_BIND:
        handle_bind(w, m);
        return;
    case ATOLL_MAIL_BOUND:
        handle_bound(w, m);
        return;
    case ATOLL_MAIL_UNBIND:
        handle_unbind(w, m);
        return;
    case ATOLL_MAIL_KICK: {
        atoll__conn *c = atoll__worker_find_conn(w->node, m->session);
        if (c != NULL)
            atoll__kick(c, m->reason);
        break;
    }
    case ATOLL_MAIL_BROADCAST:
        for (atoll__conn *c = w->all, *next; c != NULL; c = next) {
            next = c->all_next; /* out_room may close c (a slow reader) */
            if (c->state != ATOLL_CONN_WORKING || !atoll__conn_out_room(c, m->shared->len))
                continue;
            atoll__buf_append(&c->out, m->shared->data, m->shared->len);
            atoll__conn_mark_dirty(c);
        }
        break;
    case ATOLL_MAIL_STOP:
        begin_stop(w);
        break;
    case ATOLL_MAIL_AREA_CREATE:
    case ATOLL_MAIL_AREA_ENTER:
    case ATOLL_MAIL_AREA_REQ:
    case ATOLL_MAIL_AREA_LEAVE:
    case ATOLL_MAIL_AREA_FENCE:
    case ATOLL_MAIL_AREA_MOVE_IN:
    case ATOLL_MAIL_AREA_CALL:
        atoll__area_mail(w, m);
        return;
    case ATOLL_MAIL_AREA_REPLY:
        atoll__proxy_reply_mail(w, m);
        return;
    case ATOLL_MAIL_SESS_OUT:
    case ATOLL_MAIL_SESS_PUSH:
    case ATOLL_MAIL_SESS_ROUTE:
        atoll__session_mail(w, m);
        return;
    }
    atoll__mail_free(m);
}

static void
on_wake(uv_async_t *a)
{
    atoll__worker *w = a->data;
    atoll__mailbox *mb = &w->mailbox;
    for (;;) {
        pthread_mutex_lock(&mb->lock);
        atoll__mail *m = mb->head;
        mb->head = mb->tail = NULL;
        pthread_mutex_unlock(&mb->lock);
        if (m == NULL)
            break;
        while (m != NULL) {
            atoll__mail *next = m->next;
            atoll__worker_deliver(w, m);
            m = next;
        }
    }
    atoll__worker_pump(w);
}

/* ---- loop, listener, stop --------------------------------------------------------------- */

/* Before the loop blocks (after timers ran) and after it polled (after reads and
 * mail): run local mail, post the outboxes, write what the connections gathered. */
static void
on_check(uv_check_t *h)
{
    atoll__worker_pump(h->data);
    atoll__worker_flush(h->data);
}

static void
on_prepare(uv_prepare_t *h)
{
    atoll__worker_pump(h->data);
    atoll__worker_flush(h->data);
}

static void
on_connection(uv_stream_t *server, int status)
{
    atoll__worker *w = server->data;
    if (status < 0) {
        ATOLL_LOG_CLIENT(ATOLL_LOG_WARN, "msg=\"accept failed\" error=\"%s\"", uv_strerror(status));
        return;
    }
    atoll__conn_accept(w, server);
}

static void
on_wheel_tick(uv_timer_t *t)
{
    atoll__worker_deadlines(t->data);
    atoll__areas_publish(t->data);
}

static void
on_stop_timer(uv_timer_t *t)
{
    atoll__worker *w = t->data;
    ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"shutdown grace over, dropping connections\" open=%zu",
              w->nconns);
    uv_stop(&w->loop);
}

static void
begin_stop(atoll__worker *w)
{
    if (w->stopping)
        return;
    w->stopping = true;
    if (w->listening) {
        uv_close((uv_handle_t *)&w->listener, NULL);
        w->listening = false;
    }
    /* Flush and close every connection; WebSocket clients get 1001 "going away". */
    atoll__conn *next;
    for (atoll__conn *c = w->all; c != NULL; c = next) {
        next = c->all_next;
        atoll__conn_close(c, "shutdown", ATOLL_WS_CLOSE_GOING_AWAY);
    }
    if (w->nconns == 0) {
        uv_stop(&w->loop);
        return;
    }
    uv_timer_start(&w->stop_timer, on_stop_timer, STOP_GRACE_MS, 0);
}

static int
parse_addr(const char *host, int port, struct sockaddr_storage *ss, socklen_t *slen)
{
    memset(ss, 0, sizeof *ss);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0) {
        *slen = sizeof(struct sockaddr_in);
        return AF_INET;
    }
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0) {
        *slen = sizeof(struct sockaddr_in6);
        return AF_INET6;
    }
    return -1;
}

/* A TCP socket bound to host:port with SO_REUSEADDR (TIME_WAIT leftovers pass) and,
 * when asked, SO_REUSEPORT; logs why not. Returns the fd, or an error. */
static int
bind_socket(const char *host, int port, bool reuseport, int *family_out)
{
    struct sockaddr_storage ss;
    socklen_t slen;
    int family = parse_addr(host, port, &ss, &slen);
    if (family < 0) {
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"bad listen address\" host=\"%s\"", host);
        return ATOLL_EADDR;
    }
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return ATOLL_EIO;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, slen) != 0) {
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"cannot listen\" host=%s port=%d error=\"%s\"", host,
                  port, strerror(errno));
        close(fd);
        return ATOLL_EADDR;
    }
    *family_out = family;
    return fd;
}

int
atoll__listen_probe(const char *host, int port)
{
    struct sockaddr_storage ss;
    socklen_t slen;
    if (port == 0) {
        if (parse_addr(host, port, &ss, &slen) < 0) {
            ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"bad listen address\" host=\"%s\"", host);
            return ATOLL_EADDR;
        }
        return ATOLL_OK;
    }
    /* Without SO_REUSEPORT: a live listener (another node, reuseport or not) is in the
     * way, so the bind fails. */
    int family;
    int fd = bind_socket(host, port, false, &family);
    if (fd < 0)
        return fd;
    close(fd);
    return ATOLL_OK;
}

/* Creates the worker's own SO_REUSEPORT socket on the node's port: the kernel spreads
 * new connections over the workers with no shared accept lock. */
static int
open_listener(atoll__worker *w, const char *host, int port, int *bound_port)
{
    int family;
    int fd = bind_socket(host, port, true, &family);
    if (fd < 0)
        return fd;
    if (listen(fd, 1024) != 0) {
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"cannot listen\" host=%s port=%d error=\"%s\"", host,
                  port, strerror(errno));
        close(fd);
        return ATOLL_EADDR;
    }
    struct sockaddr_storage got;
    socklen_t glen = sizeof got;
    getsockname(fd, (struct sockaddr *)&got, &glen);
    *bound_port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&got)->sin_port
                                          : ((struct sockaddr_in6 *)&got)->sin6_port);
    uv_tcp_init(&w->loop, &w->listener);
    w->listener.data = w;
    if (uv_tcp_open(&w->listener, fd) != 0) {
        close(fd);
        uv_close((uv_handle_t *)&w->listener, NULL);
        return ATOLL_EADDR;
    }
    if (uv_listen((uv_stream_t *)&w->listener, 1024, on_connection) != 0) {
        uv_close((uv_handle_t *)&w->listener, NULL); /* closes fd too */
        return ATOLL_EADDR;
    }
    w->listening = true;
    return ATOLL_OK;
}

static void *
worker_main(void *arg)
{
    atoll__worker *w = arg;
    tls_worker = w;
    atoll__log_set_thread(w->name);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    w->stopped = true;
    /* Close what is left (connections past the grace period, the worker's handles). */
    atoll__conn *next;
    for (atoll__conn *c = w->all; c != NULL; c = next) {
        next = c->all_next;
        c->out.len = c->ctrl.len = 0;
        c->state = ATOLL_CONN_CLOSING;
        if (!c->closed_handles) {
            c->closed_handles = true;
            atoll__session_closed(c);
            atoll__wheel_remove(&w->deadlines, &c->deadline);
            uv_close((uv_handle_t *)&c->tcp, NULL);
        }
    }
    /* Areas go last: their hooks run, whatever they send is dropped. */
    atoll__areas_shutdown(w);
    tls_worker = NULL;
    return NULL;
}

atoll__worker *
atoll__worker_new(atoll__node *n, int index)
{
    atoll__worker *w = atoll__calloc(1, sizeof *w);
    w->node = n;
    w->index = index;
    snprintf(w->name, sizeof w->name, "w%d", index);
    uv_loop_init(&w->loop);
    pthread_mutex_init(&w->mailbox.lock, NULL);
    uv_async_init(&w->loop, &w->mailbox.wake, on_wake);
    w->mailbox.wake.data = w;
    uv_check_init(&w->loop, &w->flush_check);
    w->flush_check.data = w;
    uv_check_start(&w->flush_check, on_check);
    uv_prepare_init(&w->loop, &w->prepare);
    w->prepare.data = w;
    uv_prepare_start(&w->prepare, on_prepare);
    uv_idle_init(&w->loop, &w->local_idle);
    w->local_idle.data = w;
    w->outbox = atoll__calloc((size_t)(n->nworkers > 0 ? n->nworkers : 1), sizeof *w->outbox);
    w->out_batch = atoll__calloc((size_t)(n->nworkers > 0 ? n->nworkers : 1), sizeof *w->out_batch);
    atoll__proxy_init(w);
    if (atoll__ticks_init(w) != ATOLL_OK) {
        /* Only when the process is out of file descriptors before it even started. */
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"cannot create the tick timer\" error=\"%s\"",
                  strerror(errno));
        abort();
    }
    uv_timer_init(&w->loop, &w->stop_timer);
    w->stop_timer.data = w;
    /* Deadlines are seconds long: a 100 ms tick over 1024 slots (102 s) is precise
     * enough and costs ten wake-ups a second per worker. */
    atoll__wheel_init(&w->deadlines, 1024, WHEEL_TICK_MS, uv_now(&w->loop));
    uv_timer_init(&w->loop, &w->wheel_timer);
    w->wheel_timer.data = w;
    uv_timer_start(&w->wheel_timer, on_wheel_tick, WHEEL_TICK_MS, WHEEL_TICK_MS);
    w->scratch_len = SCRATCH_LEN;
    w->scratch = atoll__malloc(SCRATCH_LEN);
    return w;
}

int
atoll__worker_listen(atoll__worker *w, const char *host, int port, int *bound_port)
{
    return open_listener(w, host, port, bound_port);
}

int
atoll__worker_start(atoll__worker *w)
{
    return pthread_create(&w->thread, NULL, worker_main, w) == 0 ? ATOLL_OK : ATOLL_EIO;
}

static void
close_walk(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void
atoll__worker_free(atoll__worker *w, atoll__stats *out)
{
    /* The thread has been joined: this thread now owns the loop. */
    uv_walk(&w->loop, close_walk, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    /* Connections closed by worker_main's sweep (close callbacks NULL) are freed here. */
    atoll__conn *next;
    for (atoll__conn *c = w->all; c != NULL; c = next) {
        next = c->all_next;
        atoll__buf_fini(&c->in);
        atoll__buf_fini(&c->out);
        atoll__buf_fini(&c->wbuf);
        atoll__buf_fini(&c->ctrl);
        atoll__ws_reader_fini(&c->wsr);
        atoll__free(c->uid);
        atoll__free(c->wreq);
        atoll__free(c);
    }
    uv_loop_close(&w->loop);
    /* Mail nobody will read: what arrived after the loop ended, what was never posted. */
    atoll__mail *lists[] = {w->mailbox.head, w->local.head};
    for (size_t k = 0; k < sizeof lists / sizeof lists[0]; k++)
        for (atoll__mail *m = lists[k], *nx; m != NULL; m = nx) {
            nx = m->next;
            atoll__mail_free(m);
        }
    for (int i = 0; i < w->node->nworkers; i++)
        for (atoll__mail *m = w->outbox[i].head, *nx; m != NULL; m = nx) {
            nx = m->next;
            atoll__mail_free(m);
        }
    atoll__free(w->outbox);
    for (int i = 0; i < w->node->nworkers; i++)
        atoll__buf_fini(&w->out_batch[i]);
    atoll__free(w->out_batch);
    for (atoll__mail *m = w->mail_pool, *nx; m != NULL; m = nx) {
        nx = m->next;
        atoll__free(m);
    }
    atoll__proxy_fini(w);
    atoll__ticks_fini(w);
    atoll__map_fini(&w->areas);
    atoll__map_fini(&w->forwards);
    atoll__buf_fini(&w->scratch_out);
    atoll__buf_fini(&w->scratch_pkg);
    pthread_mutex_destroy(&w->mailbox.lock);
    for (size_t i = 0; i < w->uid_cap; i++)
        atoll__free(w->uids[i].uid);
    atoll__free(w->uids);
    atoll__free(w->slots);
    atoll__free(w->generations);
    atoll__free(w->free_slots);
    atoll__free(w->scratch);
    atoll__wheel_fini(&w->deadlines);
    if (out)
        *out = w->stats;
    atoll__free(w);
}
