/* admin.c -- the admin HTTP server (admin.h) on libmicrohttpd.
 *
 * THREADS. libmicrohttpd runs a thread that accepts, and a thread per connection
 * (at most ATOLL_ADMIN_CONNS_MAX): the access handler of a request runs on its
 * connection's thread, calls the operation, and waits on the call's condition variable
 * until the operation answers, the deadline passes (504) or the server stops (503).
 * Blocking that thread is what makes answers from any thread simple: the response is
 * queued by the thread that owns the connection, never by the operation's, so an
 * answer can never touch a connection that libmicrohttpd has closed or is closing.
 * (Suspending connections would save the threads, at the price of resuming a
 * connection from another thread while it may be closing; an operator's API has a
 * handful of clients, not thousands.)
 *
 * A CALL is shared by the HTTP side and the operation, so it has two references and
 * its own lock: whichever side lets go last frees it. Once the HTTP side has stopped
 * waiting (answered, 504, 503) it marks the call gone, and a later answer only drops
 * its reference. The server's lock guards the list of calls waiting and `stopping`;
 * it is taken before a call's lock, never after, and no libmicrohttpd function is
 * called under either. atoll__admin_stop marks the server stopping and every waiting
 * call cancelled, then stops the daemon, which joins the connections' threads: each
 * answers 503 first. A call whose operation has not answered outlives the server,
 * holding nothing of it.
 *
 * THE TOKEN is compared as its SHA-256 against the SHA-256 of what the request
 * carries, with CRYPTO_memcmp: constant time, and no length to learn from timing.
 * GET /healthz needs none (a supervisor's probe; it says nothing but "this process
 * serves HTTP").
 *
 * PATHS reach the handler as sent: libmicrohttpd would percent-decode the path before
 * the routes are matched ("%2F" would become a separator), so its unescaper is
 * replaced by one that keeps the path, and atoll__admin_parse decodes each argument.
 */
#include "admin.h"
#include "../core/text.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Bytes of a body past ATOLL_ADMIN_BODY_MAX that are read and dropped so that the
 * client can be told 413 (a body sent in chunks says its size only at its end); past
 * this the connection is closed without an answer. */
#define BODY_DISCARD_MAX (16 * ATOLL_ADMIN_BODY_MAX)
/* Milliseconds a stop waits for the requests in flight to be answered (503 for the
 * calls still waiting) before it closes their connections. */
#define STOP_GRACE_MS 2000

struct atoll__admin_call {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    atomic_int refs;   /* the HTTP side's and the operation's */
    bool answered;     /* the operation answered */
    bool cancelled;    /* the server stops: the HTTP side answers 503 */
    bool gone;         /* the HTTP side waits no more: an answer is dropped */
    int status;
    char *body;
    size_t len;
    atoll__admin_call *prev, *next; /* the server's list of calls waiting (its lock) */
};

struct atoll__admin {
    struct MHD_Daemon *daemon;
    atoll__admin_ops ops;
    bool has_token;
    uint8_t token_sha256[32];
    pthread_mutex_t mu;         /* stopping, waiting, inflight */
    pthread_cond_t idle;        /* inflight fell to 0 */
    bool stopping;
    atoll__admin_call *waiting;
    int inflight;               /* requests begun and not yet completed */
    _Atomic uint32_t deadline_ms;
};

/* One HTTP request while it is read (libmicrohttpd's per-request pointer). */
typedef struct {
    atoll__buf body;
    size_t discarded;  /* bytes past ATOLL_ADMIN_BODY_MAX, dropped */
    bool queued;       /* answered from its head (401, 413, 414) */
    uint64_t started_ns;
} request;

/* ---- answers ------------------------------------------------------------------------ */

static atoll__admin_call *
call_new(void)
{
    atoll__admin_call *c = atoll__calloc(1, sizeof *c);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&c->mu, NULL);
    atomic_init(&c->refs, 2);
    return c;
}

static void
call_release(atoll__admin_call *c)
{
    if (atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cond);
    atoll__free(c->body);
    atoll__free(c);
}

void
atoll__admin_answer(atoll__admin_call *c, int http_status, const char *json, size_t len)
{
    pthread_mutex_lock(&c->mu);
    if (c->answered) {
        /* A second answer: the operation's mistake, which must not free the call twice. */
        pthread_mutex_unlock(&c->mu);
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"admin call answered twice; the second answer is "
                                   "dropped\" status=%d", http_status);
        return;
    }
    c->answered = true;
    if (!c->gone) {
        c->status = http_status;
        c->body = atoll__malloc(len + 1);
        memcpy(c->body, json, len);
        c->body[len] = '\0';
        c->len = len;
        pthread_cond_signal(&c->cond);
    }
    pthread_mutex_unlock(&c->mu);
    call_release(c);
}

/* {"error":"<msg>","code":status} into b. */
static void
put_error(atoll__buf *b, int status, const char *msg)
{
    static const char head[] = "{\"error\":";
    atoll__buf_append(b, head, sizeof head - 1);
    atoll__json_put_string(b, msg, strlen(msg));
    char tail[32];
    int n = snprintf(tail, sizeof tail, ",\"code\":%d}", status);
    atoll__buf_append(b, tail, (size_t)n);
}

void
atoll__admin_fail(atoll__admin_call *c, int http_status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    atoll__buf b = ATOLL__BUF_INIT;
    put_error(&b, http_status, msg);
    atoll__admin_answer(c, http_status, (const char *)atoll__buf_data(&b), b.len);
    atoll__buf_fini(&b);
}

/* ---- responses ---------------------------------------------------------------------- */

static enum MHD_Result
respond(struct MHD_Connection *conn, int status, const char *type, const void *body, size_t len,
        const char *allow)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (allow != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result
respond_json(struct MHD_Connection *conn, int status, const char *json, size_t len)
{
    return respond(conn, status, "application/json", json, len, NULL);
}

static enum MHD_Result
respond_error(struct MHD_Connection *conn, int status, const char *msg, const char *allow)
{
    atoll__buf b = ATOLL__BUF_INIT;
    put_error(&b, status, msg);
    enum MHD_Result rc =
        respond(conn, status, "application/json", atoll__buf_data(&b), b.len, allow);
    atoll__buf_fini(&b);
    return rc;
}

/* ---- a request ---------------------------------------------------------------------- */

/* Whether the request carries the token: "Authorization: Bearer <token>" (the scheme's
 * name in any case, RFC 7235). *missing: it carries no bearer token at all. */
static bool
authorized(const atoll__admin *a, struct MHD_Connection *conn, bool *missing)
{
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    *missing = h == NULL || strncasecmp(h, "Bearer ", 7) != 0;
    if (*missing)
        return false;
    const char *token = h + 7;
    while (*token == ' ')
        token++;
    uint8_t md[32];
    unsigned mdlen = 0;
    if (EVP_Digest(token, strlen(token), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return false;
    return CRYPTO_memcmp(md, a->token_sha256, sizeof md) == 0;
}

/* What can be answered from the head alone, before any body is read: a missing or
 * wrong token (401), a body announced too large (413), a path too long (414). MHD_YES
 * with r->queued when it answered. */
static enum MHD_Result
on_head(atoll__admin *a, struct MHD_Connection *conn, const char *url, request *r)
{
    bool missing;
    if (a->has_token && strcmp(url, "/healthz") != 0 && !authorized(a, conn, &missing)) {
        r->queued = true;
        ATOLL_LOG(ATOLL_LOG_DEBUG, "msg=\"admin request refused: %s token\"",
                  missing ? "no" : "wrong");
        return respond_error(conn, 401, missing ? "this node's admin API needs a bearer "
                                                  "token (Authorization: Bearer TOKEN)"
                                                : "the token is not valid", NULL);
    }
    if (strlen(url) > ATOLL_ADMIN_URL_MAX) {
        r->queued = true;
        char msg[80];
        snprintf(msg, sizeof msg, "the path is longer than %d bytes", ATOLL_ADMIN_URL_MAX);
        return respond_error(conn, 414, msg, NULL);
    }
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl != NULL && strtoull(cl, NULL, 10) > ATOLL_ADMIN_BODY_MAX) {
        r->queued = true;
        char msg[80];
        snprintf(msg, sizeof msg, "the body is larger than %d bytes", ATOLL_ADMIN_BODY_MAX);
        return respond_error(conn, 413, msg, NULL);
    }
    return MHD_YES;
}

/* CLOCK_MONOTONIC's time ms from now, for pthread_cond_timedwait. */
static struct timespec
in_ms(uint32_t ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

/* Calls the operation of action and waits for its answer: the status, and the body at
 * *json (the caller's to free), or the deadline's 504 or the stop's 503. */
static int
call_op(atoll__admin *a, const atoll__admin_action *act, char **json, size_t *len)
{
    atoll__admin_call *c = call_new();
    pthread_mutex_lock(&a->mu);
    bool stopping = a->stopping;
    if (!stopping) {
        c->next = a->waiting;
        if (a->waiting != NULL)
            a->waiting->prev = c;
        a->waiting = c;
    }
    pthread_mutex_unlock(&a->mu);
    if (stopping) {
        call_release(c);
        call_release(c);
        return 503;
    }

    const atoll__admin_ops *o = &a->ops;
    switch (act->route) {
    case ATOLL_ADMIN_STATUS:
        o->status(o->ctx, c);
        break;
    case ATOLL_ADMIN_AREAS:
        o->areas(o->ctx, c);
        break;
    case ATOLL_ADMIN_PLAYERS:
        o->players(o->ctx, act->area, c);
        break;
    case ATOLL_ADMIN_MOVE:
        o->move(o->ctx, act->area, act->node, c);
        break;
    case ATOLL_ADMIN_PIN:
        o->pin(o->ctx, act->area, act->node, c);
        break;
    case ATOLL_ADMIN_UNPIN:
        o->unpin(o->ctx, act->area, c);
        break;
    case ATOLL_ADMIN_DRAIN:
        o->drain(o->ctx, act->node, act->stop, c);
        break;
    case ATOLL_ADMIN_DRAIN_STATUS:
        o->drain_status(o->ctx, act->node, c);
        break;
    default: /* not reached: serve answers the others itself */
        atoll__admin_fail(c, 500, "no operation for this route");
    }

    struct timespec until = in_ms(atomic_load(&a->deadline_ms));
    int status;
    pthread_mutex_lock(&c->mu);
    while (!c->answered && !c->cancelled)
        if (pthread_cond_timedwait(&c->cond, &c->mu, &until) == ETIMEDOUT)
            break;
    if (c->answered) {
        status = c->status;
        *json = c->body;
        *len = c->len;
        c->body = NULL;
    } else {
        status = c->cancelled ? 503 : 504;
    }
    c->gone = true;
    pthread_mutex_unlock(&c->mu);

    pthread_mutex_lock(&a->mu);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        a->waiting = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&a->mu);
    call_release(c);
    return status;
}

static const char *
route_name(atoll__admin_route r)
{
    static const char *const names[] = {"healthz", "metrics", "status", "areas", "players",
                                        "move", "pin", "unpin", "drain", "drain_status"};
    return (size_t)r < sizeof names / sizeof names[0] ? names[r] : "?";
}

/* Whether the program gave the operation of route. */
static bool
op_given(const atoll__admin_ops *o, atoll__admin_route route)
{
    switch (route) {
    case ATOLL_ADMIN_STATUS:
        return o->status != NULL;
    case ATOLL_ADMIN_AREAS:
        return o->areas != NULL;
    case ATOLL_ADMIN_PLAYERS:
        return o->players != NULL;
    case ATOLL_ADMIN_MOVE:
        return o->move != NULL;
    case ATOLL_ADMIN_PIN:
        return o->pin != NULL;
    case ATOLL_ADMIN_UNPIN:
        return o->unpin != NULL;
    case ATOLL_ADMIN_DRAIN:
        return o->drain != NULL;
    case ATOLL_ADMIN_DRAIN_STATUS:
        return o->drain_status != NULL;
    default:
        return false;
    }
}

/* The whole request is in: parsed, then answered (by its operation, or here). */
static enum MHD_Result
serve(atoll__admin *a, struct MHD_Connection *conn, const char *url, const char *method,
      request *r)
{
    if (r->discarded > 0) {
        char msg[80];
        snprintf(msg, sizeof msg, "the body is larger than %d bytes", ATOLL_ADMIN_BODY_MAX);
        return respond_error(conn, 413, msg, NULL);
    }
    atoll__admin_action act;
    char err[300];
    int status = atoll__admin_parse(method, url, atoll__buf_data(&r->body), r->body.len, &act,
                                    err, sizeof err);
    if (status != 200)
        return respond_error(conn, status, err, act.allow);
    enum MHD_Result rc;
    if (act.route == ATOLL_ADMIN_HEALTHZ) {
        static const char ok[] = "{\"ok\":true}";
        rc = respond_json(conn, 200, ok, sizeof ok - 1);
    } else if (act.route == ATOLL_ADMIN_METRICS) {
        if (a->ops.metrics == NULL) {
            status = 501;
            rc = respond_error(conn, 501, "not available on this node", NULL);
        } else {
            atoll__buf text = ATOLL__BUF_INIT;
            a->ops.metrics(a->ops.ctx, &text);
            rc = respond(conn, 200, "text/plain; version=0.0.4", atoll__buf_data(&text), text.len,
                         NULL);
            atoll__buf_fini(&text);
        }
    } else {
        char *json = NULL;
        size_t len = 0;
        if (!op_given(&a->ops, act.route)) {
            status = 501;
            rc = respond_error(conn, 501, "not available on this node", NULL);
        } else {
            status = call_op(a, &act, &json, &len);
            if (json != NULL)
                rc = respond_json(conn, status, json, len);
            else
                rc = respond_error(conn, status, status == 504 ? "the operation did not answer "
                                                                 "in time"
                                                               : "the admin server is stopping",
                                   NULL);
            atoll__free(json);
        }
    }
    ATOLL_LOG(ATOLL_LOG_DEBUG, "msg=\"admin request\" route=%s status=%d ms=%.1f",
              route_name(act.route), status, (double)(atoll__now_ns() - r->started_ns) / 1e6);
    return rc;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload, size_t *upload_len, void **state)
{
    atoll__admin *a = cls;
    request *r = *state;
    if (r == NULL) {
        atoll__log_set_thread("admin");
        r = atoll__calloc(1, sizeof *r);
        r->started_ns = atoll__now_ns();
        *state = r;
        pthread_mutex_lock(&a->mu);
        a->inflight++;
        pthread_mutex_unlock(&a->mu);
        return on_head(a, conn, url, r);
    }
    if (r->queued)
        return MHD_YES;
    if (*upload_len > 0) {
        size_t n = *upload_len;
        *upload_len = 0;
        if (r->discarded == 0 && r->body.len + n <= ATOLL_ADMIN_BODY_MAX) {
            atoll__buf_append(&r->body, upload, n);
            return MHD_YES;
        }
        r->discarded += n;
        atoll__buf_fini(&r->body);
        return r->discarded <= BODY_DISCARD_MAX ? MHD_YES : MHD_NO;
    }
    return serve(a, conn, url, method, r);
}

/* A request is over: its answer sent, or its connection closed. */
static void
on_completed(void *cls, struct MHD_Connection *conn, void **state,
             enum MHD_RequestTerminationCode why)
{
    atoll__admin *a = cls;
    request *r = *state;
    if (r == NULL)
        return;
    atoll__buf_fini(&r->body);
    atoll__free(r);
    *state = NULL;
    pthread_mutex_lock(&a->mu);
    if (--a->inflight == 0)
        pthread_cond_broadcast(&a->idle);
    pthread_mutex_unlock(&a->mu);
}

/* Keeps the path as sent (the parser decodes each argument itself). */
static size_t
keep_escapes(void *cls, struct MHD_Connection *conn, char *s)
{
    return strlen(s);
}

/* libmicrohttpd's own messages (a client that broke the protocol, the connection limit)
 * as log lines within the budget of lines caused by clients. */
static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[256];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strcspn(line, "\r\n");
    line[n] = '\0';
    for (char *p = line; *p; p++)
        if (*p == '"' || (unsigned char)*p < 0x20)
            *p = '\'';
    ATOLL_LOG_CLIENT(ATOLL_LOG_WARN, "msg=\"admin server: %s\"", line);
}

/* ---- starting and stopping ---------------------------------------------------------- */

/* A listening socket on host:port, the first IPv4 address of the name, else its first
 * IPv6 one (the rule of net.listen): the socket, or -1 with a sentence. */
static int
listen_on(const char *host, int port, bool *v6, int *bound_port, char *err, size_t errlen)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    char ps[8];
    snprintf(ps, sizeof ps, "%d", port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    const struct addrinfo *pick = NULL;
    for (const struct addrinfo *ai = res; ai != NULL && pick == NULL; ai = ai->ai_next)
        if (ai->ai_family == AF_INET)
            pick = ai;
    for (const struct addrinfo *ai = res; ai != NULL && pick == NULL; ai = ai->ai_next)
        if (ai->ai_family == AF_INET6)
            pick = ai;
    if (pick == NULL) {
        freeaddrinfo(res);
        snprintf(err, errlen, "%s has no IPv4 or IPv6 address", host);
        return -1;
    }
    *v6 = pick->ai_family == AF_INET6;
    int fd = socket(pick->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (*v6) /* [::] is IPv6 only: bind only what was asked */
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
    if (fd < 0 || bind(fd, pick->ai_addr, pick->ai_addrlen) != 0 ||
        listen(fd, ATOLL_ADMIN_CONNS_MAX) != 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

atoll__admin *
atoll__admin_start(const char *host, int port, const char *token, const atoll__admin_ops *ops,
                   int *bound_port, char *err, size_t errlen)
{
    bool v6 = false;
    int bound = 0;
    int fd = listen_on(host, port, &v6, &bound, err, errlen);
    if (fd < 0)
        return NULL;
    atoll__admin *a = atoll__calloc(1, sizeof *a);
    a->ops = *ops;
    a->has_token = token != NULL && token[0] != '\0';
    if (a->has_token)
        EVP_Digest(token, strlen(token), a->token_sha256, NULL, EVP_sha256(), NULL);
    pthread_mutex_init(&a->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&a->idle, &attr);
    pthread_condattr_destroy(&attr);
    atomic_init(&a->deadline_ms, ATOLL_ADMIN_DEADLINE_MS);
    unsigned flags = MHD_USE_ERROR_LOG | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL | (v6 ? MHD_USE_IPv6 : 0);
    a->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, a,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)ATOLL_ADMIN_CONNS_MAX,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)ATOLL_ADMIN_CONN_TIMEOUT_S,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, a,
        MHD_OPTION_UNESCAPE_CALLBACK, keep_escapes, NULL,
        MHD_OPTION_END);
    if (a->daemon == NULL) {
        snprintf(err, errlen, "cannot start the HTTP server on %s:%d", host, bound);
        pthread_mutex_destroy(&a->mu);
        pthread_cond_destroy(&a->idle);
        OPENSSL_cleanse(a->token_sha256, sizeof a->token_sha256);
        atoll__free(a);
        return NULL;
    }
    if (bound_port != NULL)
        *bound_port = bound;
    return a;
}

void
atoll__admin_set_deadline_ms(atoll__admin *a, uint32_t ms)
{
    atomic_store(&a->deadline_ms, ms);
}

void
atoll__admin_stop(atoll__admin *a)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->mu);
    a->stopping = true;
    for (atoll__admin_call *c = a->waiting; c != NULL; c = c->next) {
        pthread_mutex_lock(&c->mu);
        c->cancelled = true;
        pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&c->mu);
    }
    /* The answers (503 for the calls cancelled) are sent before the connections are
     * closed; a client that sends its request slowly is not waited for long. */
    struct timespec until = in_ms(STOP_GRACE_MS);
    while (a->inflight > 0)
        if (pthread_cond_timedwait(&a->idle, &a->mu, &until) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&a->mu);
    /* Joins every connection's thread, and closes the listening socket. */
    MHD_stop_daemon(a->daemon);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->idle);
    OPENSSL_cleanse(a->token_sha256, sizeof a->token_sha256);
    atoll__free(a);
}
