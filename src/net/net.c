/* net.c -- the net of one thread: its listening socket (one SO_REUSEPORT socket per
 * worker thread on the node's port: the kernel spreads new connections over them with
 * no shared accept lock), the probe that refuses a port another process already listens
 * on, accepting, and stopping.
 */
#include "conn.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

static void net_accept(atoll__net *net, uv_stream_t *server);

static void
on_connection(uv_stream_t *server, int status)
{
    if (status < 0) {
        ATOLL_LOG_CLIENT(ATOLL_LOG_WARN, "msg=\"accept failed\" error=\"%s\"", uv_strerror(status));
        return;
    }
    net_accept(server->data, server);
}

/* host as an address, or a name resolved once at start (getaddrinfo: "localhost",
 * a host name from /etc/hosts or DNS). Of a name's addresses the first IPv4 one is
 * taken, else the first IPv6 one: "localhost" then means 127.0.0.1, where clients and
 * tools look first. */
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
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL)
        return -1;
    const struct addrinfo *v4 = NULL, *v6 = NULL;
    for (const struct addrinfo *a = res; a != NULL; a = a->ai_next) {
        if (a->ai_family == AF_INET && v4 == NULL)
            v4 = a;
        else if (a->ai_family == AF_INET6 && v6 == NULL)
            v6 = a;
    }
    const struct addrinfo *pick = v4 ? v4 : v6;
    int family = -1;
    if (pick != NULL && pick->ai_addrlen <= sizeof *ss) {
        memcpy(ss, pick->ai_addr, pick->ai_addrlen);
        *slen = (socklen_t)pick->ai_addrlen;
        family = pick->ai_family;
        if (family == AF_INET)
            ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
        else
            ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    }
    freeaddrinfo(res);
    return family;
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
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"bad listen address: not an IP address, and no host "
                  "of that name\" host=\"%s\"", host);
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
            ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"bad listen address: not an IP address, and no host "
                  "of that name\" host=\"%s\"", host);
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

int
atoll__net_listen(atoll__net *net, const char *host, int port, int *bound_port)
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
    uv_tcp_init(net->loop, &net->listener);
    net->listener.data = net;
    if (uv_tcp_open(&net->listener, fd) != 0) {
        close(fd);
        uv_close((uv_handle_t *)&net->listener, NULL);
        return ATOLL_EADDR;
    }
    if (uv_listen((uv_stream_t *)&net->listener, 1024, on_connection) != 0) {
        uv_close((uv_handle_t *)&net->listener, NULL); /* closes fd too */
        return ATOLL_EADDR;
    }
    net->listening = true;
    return ATOLL_OK;
}


/* ---- accepting ------------------------------------------------------------------------ */

static void
net_accept(atoll__net *net, uv_stream_t *server)
{
    atoll__conn *c = atoll__calloc(1, net->ops->conn_size);
    c->net = net;
    uv_tcp_init(net->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)atoll__free);
        return;
    }
    int open = atomic_fetch_add(net->open_total, 1) + 1;
    if (open > net->limits->max_conns || net->stopping) {
        atomic_fetch_sub(net->open_total, 1);
        net->stats.rejected_full++;
        ATOLL_LOG(ATOLL_LOG_DEBUG, "msg=\"connection refused: node full\" max_conns=%d",
                  net->limits->max_conns);
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)atoll__free);
        return;
    }
    net->stats.accepted++;
    c->counted = true;
    uv_tcp_nodelay(&c->tcp, 1);
    c->state = ATOLL_CONN_INIT;
    c->accepted_ms = c->last_rx_ms = uv_now(net->loop);
    atoll__net_link(net, c);
    net->ops->opened(c);
    atoll__conn_start(c);
}

/* ---- the net of one thread ------------------------------------------------------------- */

#define SCRATCH_LEN (64 * 1024)

void
atoll__net_init(atoll__net *net, uv_loop_t *loop, const atoll__conn_ops *ops,
                const atoll__net_limits *limits, atomic_int *open_total)
{
    memset(net, 0, sizeof *net);
    net->loop = loop;
    net->ops = ops;
    net->limits = limits;
    net->open_total = open_total;
    net->scratch_len = SCRATCH_LEN;
    net->scratch = atoll__malloc(SCRATCH_LEN);
    /* Deadlines are seconds long: a 100 ms tick over 1024 slots (102 s) is precise
     * enough and costs ten wake-ups a second per thread. */
    atoll__wheel_init(&net->deadlines, 1024, ATOLL_NET_WHEEL_TICK_MS, uv_now(loop));
}

void
atoll__net_stop(atoll__net *net, int ws_code)
{
    if (net->stopping)
        return;
    net->stopping = true;
    if (net->listening) {
        uv_close((uv_handle_t *)&net->listener, NULL);
        net->listening = false;
    }
    for (atoll__conn *c = net->all, *next; c != NULL; c = next) {
        next = c->all_next;
        atoll__conn_close(c, "shutdown", ws_code);
    }
    if (net->nconns == 0 && net->drained)
        net->drained(net);
}

void
atoll__net_sweep(atoll__net *net)
{
    for (atoll__conn *c = net->all, *next; c != NULL; c = next) {
        next = c->all_next;
        c->out.len = c->ctrl.len = 0;
        c->state = ATOLL_CONN_CLOSING;
        if (!c->closed_handles) {
            c->closed_handles = true;
            net->ops->closed(c);
            atoll__wheel_remove(&net->deadlines, &c->deadline);
            uv_close((uv_handle_t *)&c->tcp, NULL);
        }
    }
}

void
atoll__net_fini(atoll__net *net)
{
    /* Conns closed by the sweep (close callbacks NULL) are freed here. */
    for (atoll__conn *c = net->all, *next; c != NULL; c = next) {
        next = c->all_next;
        atoll__buf_fini(&c->in);
        atoll__buf_fini(&c->out);
        atoll__buf_fini(&c->wbuf);
        atoll__buf_fini(&c->ctrl);
        atoll__ws_reader_fini(&c->wsr);
        atoll__free(c->wreq);
        if (c->counted)
            atomic_fetch_sub(net->open_total, 1);
        atoll__free(c);
    }
    net->all = NULL;
    atoll__free(net->scratch);
    net->scratch = NULL;
    atoll__wheel_fini(&net->deadlines);
}
