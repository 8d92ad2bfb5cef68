/* link.c -- the links between nodes: one TCP connection per pair, authenticated with
 * the cluster's secret and sealed (link_codec.h has the bytes), carrying the mail the
 * workers of two nodes send each other. Cluster thread only (cluster_int.h has the
 * design).
 *
 * A link's life: the lower node id connects to the advertised address of the other
 * (backoff 100 ms doubling to 2 s between attempts), each side sends its HELLO (the
 * accepting side only after it checked the connecting side's), then its stream header,
 * then sealed chunks. A piece of mail from a worker becomes one chunk. Pings go every
 * cluster.link_ping_ms when the link is otherwise quiet; a link that hears nothing
 * for cluster.link_timeout_ms is cut. A peer whose bytes fail any check (its HELLO, a
 * chunk that does not open, a record out of bounds) is cut with a log line; nothing
 * else of the node notices but the mail that was for it.
 *
 * What is lost when a link is cut: the chunks written to the socket and not yet read
 * by the peer. Mail that waits for a link (the peer's queue) is kept until the link is
 * back or its deadline passes. Requests of clients are made safe against the loss
 * above the links (the gate sends again, the area answers once).
 */
#include "cluster_int.h"
#include "../node/metrics.h"

#include <stdio.h>

/* Sealed bytes a link may hold for a peer that does not read them before it is cut (the
 * peer is stuck, or the network to it is): the node's memory is not the peer's queue. */
#define LINK_OUT_MAX (64u << 20)

typedef enum link_state {
    LINK_RESOLVING,
    LINK_CONNECTING,
    LINK_HELLO,     /* connected; HELLOs and headers on their way */
    LINK_UP,        /* both headers read: chunks flow */
    LINK_CLOSING,
} link_state;

struct link {
    atoll__cluster *c;
    link *next;
    link_state state;
    bool initiator;
    int peer;                   /* node id: known at once when we connect, from its
                                 * HELLO when it did */
    uv_tcp_t tcp;
    uv_getaddrinfo_t gai;
    uv_connect_t conn;
    atoll__link_crypto crypto;
    bool hello_read, header_read, header_sent;
    atoll__buf in;              /* bytes read and not used yet */
    atoll__buf plain;           /* a chunk opened */
    atoll__buf ctrl;            /* our pings and pongs, sealed at the next flush */
    atoll__buf out;             /* sealed, for the next write */
    atoll__buf wbuf;            /* being written */
    bool writing;
    uv_write_t wreq;
    uint64_t created_ms;        /* a link not up within cluster.link_timeout_ms is cut */
    uint64_t last_rx_ms, last_tx_ms, ping_sent_ms;
    atoll__buf *to_worker;      /* per worker of this node: frames of one read */
};

static uint64_t
now_ms(atoll__cluster *c)
{
    return uv_now(&c->loop);
}

/* ---- sending back what cannot be sent ------------------------------------------------- */

/* The frames of a piece's records go back to the worker that sent them as LINK mail
 * with status ATOLL_ECLOSED, which hands each to the modules to fail what waits. */
static void
piece_bounce(atoll__cluster *c, piece *p, int status, const char *why)
{
    if (p->from < 0 || p->from >= c->node->nworkers) {
        ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"mail for an unreachable node dropped\" node=%d why=\"%s\"",
                  p->to, why);
        atoll__free(p);
        return;
    }
    atoll__buf frames = ATOLL__BUF_INIT;
    for (size_t off = 0; off < p->len;) {
        atoll__link_rec rec;
        /* Our own records: well formed, any worker index of the peer's. */
        ssize_t k = atoll__link_rec_read(p->data + off, p->len - off, 65536, &rec);
        if (k <= 0)
            break;
        off += (size_t)k;
        if (rec.kind == ATOLL_LINK_REC_MAIL)
            atoll__buf_append(&frames, rec.frame, rec.frame_len);
    }
    ATOLL_LOG(ATOLL_LOG_DEBUG, "msg=\"mail for an unreachable node goes back\" node=%d why=\"%s\"",
              p->to, why);
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_LINK, frames.len);
    memcpy(m->data, atoll__buf_data(&frames), frames.len);
    m->status = status;
    m->at = atoll__addr_make(p->to, 0);
    atoll__buf_fini(&frames);
    atoll__worker_post(c->node->workers[p->from], m);
    atoll__free(p);
}

static void
peer_bounce_all(atoll__cluster *c, peer *pr, int status, const char *why)
{
    for (piece *p = pr->pending, *next; p != NULL; p = next) {
        next = p->next;
        piece_bounce(c, p, status, why);
    }
    pr->pending = pr->pending_tail = NULL;
}

/* ---- closing ---------------------------------------------------------------------------- */

static void
on_link_closed(uv_handle_t *h)
{
    link *l = h->data;
    atoll__cluster *c = l->c;
    for (link **pp = &c->links; *pp; pp = &(*pp)->next) {
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    }
    atoll__buf_fini(&l->in);
    atoll__buf_fini(&l->plain);
    atoll__buf_fini(&l->ctrl);
    atoll__buf_fini(&l->out);
    atoll__buf_fini(&l->wbuf);
    for (int i = 0; i < c->node->nworkers; i++)
        atoll__buf_fini(&l->to_worker[i]);
    atoll__free(l->to_worker);
    atoll__link_crypto_wipe(&l->crypto);
    atoll__free(l);
}

static void
link_close(link *l, const char *why)
{
    if (l->state == LINK_CLOSING)
        return;
    atoll__cluster *c = l->c;
    bool was_up = l->state == LINK_UP, resolving = l->state == LINK_RESOLVING;
    l->state = LINK_CLOSING;
    if (was_up && why[0] != '\0') /* "" is this node's stop */
        atoll__metric_add(ATOLL_CTR_LINK_CUTS, 1);
    if (l->peer > 0 && c->peers[l->peer].link == l) {
        peer *pr = &c->peers[l->peer];
        pr->link = NULL;
        if (pr->backoff_ms == 0)
            pr->backoff_ms = 100;
        pr->next_try_ms = now_ms(c) + pr->backoff_ms;
        pr->backoff_ms = pr->backoff_ms * 2 > 2000 ? 2000 : pr->backoff_ms * 2;
    }
    if (was_up || why[0] != '\0')
        ATOLL_LOG(was_up ? ATOLL_LOG_WARN : ATOLL_LOG_INFO, "msg=\"link closed\" peer=%d why=\"%s\"",
                  l->peer, why);
    if (was_up) /* a process that died closes its sockets: watch its lease closely */
        c->suspect_until_ms = now_ms(c) + c->cfg->lease_ms + c->cfg->beat_ms;
    /* A link still resolving is closed when the resolver answers (on_resolved), so
     * that the request never outlives it. */
    if (!resolving)
        uv_close((uv_handle_t *)&l->tcp, on_link_closed);
}

static link *
link_new(atoll__cluster *c, bool initiator, int peer_id)
{
    link *l = atoll__calloc(1, sizeof *l);
    l->c = c;
    l->initiator = initiator;
    l->peer = peer_id;
    l->crypto.initiator = initiator;
    l->to_worker = atoll__calloc((size_t)c->node->nworkers, sizeof *l->to_worker);
    uv_tcp_init(&c->loop, &l->tcp);
    uv_tcp_nodelay(&l->tcp, 1);
    l->tcp.data = l;
    l->created_ms = l->last_rx_ms = l->last_tx_ms = now_ms(c);
    l->next = c->links;
    c->links = l;
    return l;
}

/* ---- writing ---------------------------------------------------------------------------- */

static void link_write(link *l);

static void
on_written(uv_write_t *req, int status)
{
    link *l = req->data;
    l->writing = false;
    l->wbuf.len = 0;
    atoll__buf_shrink(&l->wbuf, 256 * 1024);
    if (l->state == LINK_CLOSING)
        return;
    if (status < 0) {
        link_close(l, uv_strerror(status));
        return;
    }
    if (l->out.len > 0)
        link_write(l);
}

static void
link_write(link *l)
{
    if (l->writing || l->out.len == 0 || l->state == LINK_CLOSING)
        return;
    atoll__buf t = l->wbuf;
    l->wbuf = l->out;
    l->out = t;
    l->out.len = 0;
    uv_buf_t b = uv_buf_init((char *)atoll__buf_data(&l->wbuf), (unsigned)l->wbuf.len);
    l->wreq.data = l;
    l->writing = true;
    l->last_tx_ms = now_ms(l->c);
    int rc = uv_write(&l->wreq, (uv_stream_t *)&l->tcp, &b, 1, on_written);
    if (rc != 0) {
        l->writing = false;
        link_close(l, uv_strerror(rc));
    }
}

/* Seals a piece's records into the link's output; the piece is freed. */
static void
link_send_piece(link *l, piece *p)
{
    if (l->out.len + l->wbuf.len > LINK_OUT_MAX) {
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"link peer reads nothing: over the link's output cap, "
                  "cut\" peer=%d bytes=%zu", l->peer, l->out.len + l->wbuf.len);
        link_close(l, "peer does not read");
        piece_bounce(l->c, p, ATOLL_ETIMEDOUT, "the peer does not read its link");
        return;
    }
    int rc = atoll__link_seal(&l->crypto, p->data, p->len, &l->out);
    if (rc != ATOLL_OK)
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"mail too large for a link, dropped\" node=%d bytes=%zu",
                  p->to, p->len);
    atoll__free(p);
}

void
atoll__links_flush(atoll__cluster *c)
{
    for (link *l = c->links; l != NULL; l = l->next) {
        if (l->state != LINK_UP && !(l->state == LINK_HELLO && l->out.len > 0))
            continue;
        if (l->state == LINK_UP && l->ctrl.len > 0) {
            atoll__link_seal(&l->crypto, atoll__buf_data(&l->ctrl), l->ctrl.len, &l->out);
            l->ctrl.len = 0;
        }
        link_write(l);
    }
}

/* ---- reading ---------------------------------------------------------------------------- */

/* The link is up both ways: what waited for it goes, oldest first. */
static void
link_up(link *l)
{
    atoll__cluster *c = l->c;
    peer *pr = &c->peers[l->peer];
    if (!l->initiator) {
        /* A peer that connects again replaces its old link (which may be half dead). */
        if (pr->link != NULL && pr->link != l)
            link_close(pr->link, "replaced by a new link");
        pr->link = l;
    }
    l->state = LINK_UP;
    pr->backoff_ms = 0;
    ATOLL_LOG(ATOLL_LOG_INFO, "msg=\"link up\" peer=%d name=%s", l->peer, pr->name[0] ? pr->name : "?");
    for (piece *p = pr->pending, *next; p != NULL; p = next) {
        next = p->next;
        link_send_piece(l, p);
    }
    pr->pending = pr->pending_tail = NULL;
}

/* Hands each worker the frames this read brought for it, as one LINK mail. */
static void
deliver(link *l)
{
    atoll__cluster *c = l->c;
    for (int i = 0; i < c->node->nworkers; i++) {
        atoll__buf *b = &l->to_worker[i];
        if (b->len == 0)
            continue;
        atoll__mail *m = atoll__mail_new(ATOLL_MAIL_LINK, b->len);
        memcpy(m->data, atoll__buf_data(b), b->len);
        m->at = atoll__addr_make(l->peer, 0);
        b->len = 0;
        atoll__buf_shrink(b, 256 * 1024);
        atoll__worker_post(c->node->workers[i], m);
    }
}

/* The records of one opened chunk: 0, or an error for the link. */
static int
read_records(link *l)
{
    atoll__cluster *c = l->c;
    const uint8_t *p = atoll__buf_data(&l->plain);
    size_t n = l->plain.len;
    for (size_t off = 0; off < n;) {
        atoll__link_rec rec;
        ssize_t k = atoll__link_rec_read(p + off, n - off, c->node->nworkers, &rec);
        if (k <= 0)
            return ATOLL_EPROTO;
        off += (size_t)k;
        switch (rec.kind) {
        case ATOLL_LINK_REC_MAIL:
            atoll__buf_append(&l->to_worker[rec.worker], rec.frame, rec.frame_len);
            break;
        case ATOLL_LINK_REC_PING:
            atoll__link_put_ping(&l->ctrl, ATOLL_LINK_REC_PONG, rec.t);
            break;
        default: /* a PONG: hearing anything is what keeps the link */
            break;
        }
    }
    return ATOLL_OK;
}

/* Whether the peer of a HELLO may have this link: the one we connected to, or any
 * node when it connected to us. */
static bool
hello_accept(link *l, const atoll__link_peer *who)
{
    atoll__cluster *c = l->c;
    if (who->node == c->id) {
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"link refused: the peer has this node's id\" peer_name=%s",
                  who->name);
        return false;
    }
    if (l->initiator && who->node != l->peer) {
        ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"link refused: another node answered\" want=%d got=%d",
                  l->peer, who->node);
        return false;
    }
    peer *pr = &c->peers[who->node];
    if (!pr->alive) {
        /* Not in the registry (yet, or any more: a node declared dead while it was away
         * must not deliver what it still holds). A new node is seen within a heartbeat,
         * and its next attempt is taken. */
        ATOLL_LOG(ATOLL_LOG_INFO, "msg=\"link refused: not a live node of the registry\" "
                  "peer=%d name=%s", who->node, who->name);
        return false;
    }
    /* A connecting peer becomes the peer's link only once a chunk of it opened (link_up):
     * a HELLO can be recorded and sent again by anyone, who then has no keys. */
    if (!l->initiator)
        l->peer = who->node;
    if (pr->name[0] == '\0') {
        pthread_mutex_lock(&c->lock); /* workers read names under it */
        snprintf(pr->name, sizeof pr->name, "%s", who->name);
        pthread_mutex_unlock(&c->lock);
    }
    return true;
}

/* Uses what was read: the HELLO, the header, then chunks. An error cuts the link. */
static void
link_consume(link *l)
{
    atoll__cluster *c = l->c;
    const uint8_t *p = atoll__buf_data(&l->in);
    size_t n = l->in.len, off = 0;
    const char *bad = NULL;
    if (!l->hello_read) {
        atoll__link_peer who;
        ssize_t k = atoll__link_hello_read(&l->crypto, &c->key, p, n, &who);
        if (k < 0) {
            bad = k == ATOLL_EAUTH ? "HELLO does not verify: another cluster secret"
                                   : "not a link HELLO";
            goto fail;
        }
        if (k == 0)
            goto keep;
        off += (size_t)k;
        l->hello_read = true;
        if (!hello_accept(l, &who)) {
            link_close(l, "");
            return;
        }
        if (!l->initiator)
            atoll__link_hello_answer(&l->crypto, &c->key, &c->me, &l->out);
        atoll__link_tx_header(&l->crypto, &l->out);
        l->header_sent = true;
        /* A first chunk at once: it proves to the peer that this side has the keys. */
        atoll__buf ping = ATOLL__BUF_INIT;
        atoll__link_put_ping(&ping, ATOLL_LINK_REC_PING, now_ms(c));
        atoll__link_seal(&l->crypto, atoll__buf_data(&ping), ping.len, &l->out);
        atoll__buf_fini(&ping);
    }
    if (!l->header_read) {
        ssize_t k = atoll__link_rx_header(&l->crypto, p + off, n - off);
        if (k < 0) {
            bad = "bad stream header";
            goto fail;
        }
        if (k == 0)
            goto keep;
        off += (size_t)k;
        l->header_read = true;
        if (l->initiator) /* the responder's HELLO answered ours: it has the keys */
            link_up(l);
    }
    for (;;) {
        ssize_t k = atoll__link_open(&l->crypto, p + off, n - off, &l->plain);
        if (k < 0) {
            bad = k == ATOLL_ELIMIT ? "chunk over the limit" : "chunk does not open";
            goto fail;
        }
        if (k == 0)
            break;
        off += (size_t)k;
        if (l->state != LINK_UP)
            link_up(l); /* the connecting peer's first chunk opened: it has the keys */
        if (read_records(l) != ATOLL_OK) {
            bad = "bad record in a chunk";
            goto fail;
        }
    }
keep:
    if (off > 0) {
        memmove(atoll__buf_data(&l->in), p + off, n - off);
        l->in.len = n - off;
    }
    deliver(l);
    return;
fail:
    ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"link peer sent bad bytes, cut\" peer=%d why=\"%s\"", l->peer, bad);
    deliver(l); /* what came whole before the bad bytes */
    link_close(l, bad);
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    link *l = h->data;
    b->base = (char *)l->c->readbuf;
    b->len = sizeof l->c->readbuf;
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    link *l = s->data;
    if (nread == 0 || l->state == LINK_CLOSING)
        return;
    if (nread < 0) {
        link_close(l, nread == UV_EOF ? "closed by the peer" : uv_strerror((int)nread));
        return;
    }
    l->last_rx_ms = now_ms(l->c);
    atoll__buf_append(&l->in, b->base, (size_t)nread);
    link_consume(l);
}

/* ---- connecting ------------------------------------------------------------------------- */

static void
on_connected(uv_connect_t *req, int status)
{
    link *l = req->data;
    if (l->state == LINK_CLOSING)
        return;
    if (status < 0) {
        link_close(l, uv_strerror(status));
        return;
    }
    l->state = LINK_HELLO;
    l->last_rx_ms = now_ms(l->c);
    atoll__link_hello_start(&l->crypto, &l->c->key, &l->c->me, &l->out);
    uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read);
    link_write(l);
}

static void
on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    link *l = req->data;
    if (l->state == LINK_CLOSING) {
        uv_freeaddrinfo(res);
        uv_close((uv_handle_t *)&l->tcp, on_link_closed);
        return;
    }
    if (status < 0 || res == NULL) {
        uv_freeaddrinfo(res);
        link_close(l, "cannot resolve the peer's advertised address");
        return;
    }
    l->state = LINK_CONNECTING;
    l->conn.data = l;
    int rc = uv_tcp_connect(&l->conn, &l->tcp, res->ai_addr, on_connected);
    uv_freeaddrinfo(res);
    if (rc != 0)
        link_close(l, uv_strerror(rc));
}

/* HOST:PORT into a host and a port for getaddrinfo (config.c splits). */
static bool
split_hostport(const char *hp, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *h;
    size_t hl;
    int p;
    if (!atoll__split_hostport(hp, &h, &hl, &p) || hl >= hcap)
        return false;
    memcpy(host, h, hl);
    host[hl] = '\0';
    snprintf(port, pcap, "%d", p);
    return true;
}

static void
link_connect(atoll__cluster *c, int id)
{
    peer *pr = &c->peers[id];
    char host[128], port[16];
    if (!split_hostport(pr->advertise, host, sizeof host, port, sizeof port)) {
        pr->next_try_ms = now_ms(c) + 2000;
        return;
    }
    link *l = link_new(c, true, id);
    pr->link = l;
    l->state = LINK_RESOLVING;
    l->gai.data = l;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rc = uv_getaddrinfo(&c->loop, &l->gai, on_resolved, host, port, &hints);
    if (rc != 0) {
        l->state = LINK_CONNECTING; /* nothing to cancel */
        link_close(l, uv_strerror(rc));
    }
}

/* ---- accepting -------------------------------------------------------------------------- */

static void
on_accept(uv_stream_t *server, int status)
{
    atoll__cluster *c = server->data;
    if (status < 0)
        return;
    link *l = link_new(c, false, 0);
    if (uv_accept(server, (uv_stream_t *)&l->tcp) != 0) {
        link_close(l, "");
        return;
    }
    l->state = LINK_HELLO;
    uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read);
}

int
atoll__links_listen(atoll__cluster *c, char *err, size_t errlen)
{
    char host[128], port[16];
    if (!split_hostport(c->cfg->advertise, host, sizeof host, port, sizeof port)) {
        snprintf(err, errlen, "node.advertise '%s' is not HOST:PORT", c->cfg->advertise);
        return ATOLL_EINVAL;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        snprintf(err, errlen, "node.advertise '%s': %s", c->cfg->advertise, gai_strerror(rc));
        return ATOLL_EADDR;
    }
    uv_tcp_init(&c->loop, &c->listener);
    c->listener.data = c;
    rc = uv_tcp_bind(&c->listener, res->ai_addr, 0);
    freeaddrinfo(res);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&c->listener, 128, on_accept);
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen for links on %s: %s", c->cfg->advertise,
                 uv_strerror(rc));
        return ATOLL_EADDR;
    }
    if (strcmp(port, "0") == 0) {
        /* Any free port: the one bound is what the registry publishes. */
        struct sockaddr_storage ss;
        int len = sizeof ss;
        uv_tcp_getsockname(&c->listener, (struct sockaddr *)&ss, &len);
        int bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
        char adv[sizeof c->cfg->advertise + 16];
        if (strchr(host, ':') != NULL)
            snprintf(adv, sizeof adv, "[%s]:%d", host, bound);
        else
            snprintf(adv, sizeof adv, "%s:%d", host, bound);
        snprintf(c->cfg->advertise, sizeof c->cfg->advertise, "%.*s",
                 (int)sizeof c->cfg->advertise - 1, adv);
    }
    return ATOLL_OK;
}

/* ---- what the workers hand over --------------------------------------------------------- */

/* A piece whose from is PIECE_DROP asks for its peer's link to be cut (a worker could
 * not decode what came on it). */
void
atoll__links_take(atoll__cluster *c, piece *list)
{
    uint64_t now = now_ms(c);
    for (piece *p = list, *next; p != NULL; p = next) {
        next = p->next;
        p->next = NULL;
        if (p->from == ATOLL__PIECE_DROPPED) {
            if (p->to >= 0 && p->to < (int)(sizeof c->stale_worker))
                c->stale_worker[p->to] = false;
            atoll__free(p);
            continue;
        }
        if (p->from >= 0 && p->from < (int)(sizeof c->stale_worker) &&
            c->stale_worker[p->from]) {
            atoll__free(p); /* said before its worker dropped what it ran: stale */
            continue;
        }
        peer *pr = &c->peers[p->to];
        if (p->from == ATOLL__PIECE_DROP) {
            if (pr->link != NULL)
                link_close(pr->link, "a worker could not decode its mail");
            atoll__free(p);
            continue;
        }
        if (pr->link != NULL && pr->link->state == LINK_UP && pr->pending == NULL) {
            link_send_piece(pr->link, p);
            continue;
        }
        if (!pr->alive && pr->link == NULL) {
            piece_bounce(c, p, ATOLL_ECLOSED,
                         pr->ever ? "the node is dead" : "no such node in the cluster");
            continue;
        }
        p->deadline_ms = now + c->cfg->call_timeout_ms;
        if (pr->pending_tail)
            pr->pending_tail->next = p;
        else
            pr->pending = p;
        pr->pending_tail = p;
        if (pr->link == NULL && c->id < p->to && now >= pr->next_try_ms)
            link_connect(c, p->to);
    }
}

void
atoll__links_drop_peer(atoll__cluster *c, int id, const char *why)
{
    if (id > 0 && id <= ATOLL_NODE_ID_MAX && c->peers[id].link != NULL)
        link_close(c->peers[id].link, why);
}

void
atoll__links_silence(atoll__cluster *c)
{
    size_t dropped = 0;
    for (int id = 1; id <= ATOLL_NODE_ID_MAX; id++) {
        peer *pr = &c->peers[id];
        for (piece *p = pr->pending, *next; p != NULL; p = next) {
            next = p->next;
            atoll__free(p);
            dropped++;
        }
        pr->pending = pr->pending_tail = NULL;
    }
    for (int w = 0; w < c->node->nworkers && w < (int)(sizeof c->stale_worker); w++)
        c->stale_worker[w] = true;
    if (dropped > 0)
        ATOLL_LOG(ATOLL_LOG_INFO, "msg=\"stale mail for other nodes dropped\" pieces=%zu", dropped);
}

void
atoll__links_peer_dead(atoll__cluster *c, int id)
{
    peer *pr = &c->peers[id];
    if (pr->link != NULL)
        link_close(pr->link, "the node's lease ended");
    peer_bounce_all(c, pr, ATOLL_ECLOSED, "the node is dead");
}

/* The queues' depths, for GET /metrics: in total (links still in their handshake, whose
 * peer is not known yet, included) and by peer, for each live node or one with a link
 * or mail waiting. */
static void
publish_depths(atoll__cluster *c)
{
    uint64_t queued = 0, pending = 0;
    for (link *l = c->links; l != NULL; l = l->next)
        queued += l->out.len + l->wbuf.len;
    atoll__metric_peer list[ATOLL_METRICS_PEERS_MAX];
    int n = 0;
    for (int id = 1; id <= ATOLL_NODE_ID_MAX; id++) {
        peer *pr = &c->peers[id];
        uint64_t waiting = 0;
        for (piece *p = pr->pending; p != NULL; p = p->next)
            waiting += p->len;
        pending += waiting;
        if (id == c->id || n == ATOLL_METRICS_PEERS_MAX ||
            (!pr->alive && pr->link == NULL && waiting == 0))
            continue;
        atoll__metric_peer *m = &list[n++];
        if (pr->name[0] != '\0')
            snprintf(m->name, sizeof m->name, "%s", pr->name);
        else
            snprintf(m->name, sizeof m->name, "%d", id);
        m->up = pr->link != NULL && pr->link->state == LINK_UP;
        m->queued = pr->link != NULL ? pr->link->out.len + pr->link->wbuf.len : 0;
        m->pending = waiting;
    }
    atoll__metric_set(ATOLL_GAUGE_LINK_QUEUED_BYTES, queued);
    atoll__metric_set(ATOLL_GAUGE_LINK_PENDING_BYTES, pending);
    atoll__metric_peers(list, n);
}

void
atoll__links_tick(atoll__cluster *c)
{
    uint64_t now = now_ms(c);
    for (link *l = c->links; l != NULL; l = l->next) {
        if (l->state == LINK_CLOSING || l->state == LINK_RESOLVING)
            continue;
        if (now - l->last_rx_ms > c->cfg->link_timeout_ms) {
            link_close(l, "silent past cluster.link_timeout_ms");
            continue;
        }
        /* A peer that trickles a handshake byte by byte is never silent, and never up. */
        if (l->state != LINK_UP && now - l->created_ms > c->cfg->link_timeout_ms) {
            link_close(l, "no handshake within cluster.link_timeout_ms");
            continue;
        }
        if (l->state == LINK_UP && now - l->last_tx_ms >= c->cfg->link_ping_ms &&
            now - l->ping_sent_ms >= c->cfg->link_ping_ms) {
            atoll__link_put_ping(&l->ctrl, ATOLL_LINK_REC_PING, now);
            l->ping_sent_ms = now;
        }
    }
    publish_depths(c);
    for (int id = 1; id <= ATOLL_NODE_ID_MAX; id++) {
        peer *pr = &c->peers[id];
        if (pr->pending != NULL && pr->pending->deadline_ms <= now)
            peer_bounce_all(c, pr, ATOLL_ETIMEDOUT, "no link came up within cluster.call_timeout_ms");
        /* The lower id keeps a link to every live node, mail or not, so that the other
         * side never waits for one. */
        if (pr->alive && pr->link == NULL && c->id < id && now >= pr->next_try_ms &&
            pr->advertise[0] != '\0')
            link_connect(c, id);
    }
    atoll__links_flush(c);
}

void
atoll__links_close(atoll__cluster *c)
{
    for (link *l = c->links; l != NULL; l = l->next)
        link_close(l, "");
    if (uv_is_active((uv_handle_t *)&c->listener) || c->listener.data == c)
        uv_close((uv_handle_t *)&c->listener, NULL);
}

void
atoll__links_fini(atoll__cluster *c)
{
    for (int id = 1; id <= ATOLL_NODE_ID_MAX; id++) {
        for (piece *p = c->peers[id].pending, *next; p != NULL; p = next) {
            next = p->next;
            atoll__free(p);
        }
        c->peers[id].pending = c->peers[id].pending_tail = NULL;
    }
}
