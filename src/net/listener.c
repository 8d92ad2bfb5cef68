/* listener.c -- the listening sockets: one SO_REUSEPORT socket per worker thread on the
 * node's port (the kernel spreads new connections over them with no shared accept
 * lock), and the probe that refuses a port another process already listens on.
 */
#include "conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

void atoll__net_accept(atoll__net *net, uv_stream_t *server); /* conn.c */

static void
on_connection(uv_stream_t *server, int status)
{
    if (status < 0) {
        ATOLL_LOG_CLIENT(ATOLL_LOG_WARN, "msg=\"accept failed\" error=\"%s\"", uv_strerror(status));
        return;
    }
    atoll__net_accept(server->data, server);
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

