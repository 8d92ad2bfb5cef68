/* admin.h -- the node's operator API (src/admin): JSON over HTTP on admin.listen
 * (--admin HOST:PORT), served by libmicrohttpd, and the pure parser of its requests.
 *
 * The admin server knows nothing of areas or of the cluster: the program (src/app)
 * hands it a table of operations (atoll__admin_ops), the way the area runtime hands the
 * node a module, and each request becomes one call of one operation. An operation may
 * need another thread (the cluster's, a worker's) to answer, so it answers later, from
 * any thread, through atoll__admin_answer; the HTTP side waits for that answer with a
 * deadline (ATOLL_ADMIN_DEADLINE_MS, then 504), and an answer that comes after the
 * deadline, after the client left or after the server stopped is dropped, never
 * written to a connection that is gone.
 *
 * Requests are turned into actions by atoll__admin_parse, a pure function of the
 * method, the path and the body (unit tests in tests/unit/admin_test.c, the libFuzzer
 * target tests/fuzz/fuzz_admin.c), so what reaches an operation is already checked:
 * a valid area id, a valid node name, the body's fields. The routes, the token rule and
 * the JSON of each answer are in docs/operations.md ("Admin API and atoll ctl").
 */
#ifndef ATOLL_ADMIN_H
#define ATOLL_ADMIN_H

#include "../core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- named limits ----------------------------------------------------------------- */

/* Bytes of a request body, at most (a larger one is 413, and is not kept). */
#define ATOLL_ADMIN_BODY_MAX (64 * 1024)
/* Bytes of a request's path (without its query), at most (a longer one is 414). The
 * longest route with an area id of ATOLL_AREA_ID_MAX bytes, each percent-encoded, is
 * under 250. */
#define ATOLL_ADMIN_URL_MAX 1024
/* Connections served at once; more wait in the kernel's backlog. Each has a thread
 * while it is open (thread per connection: an operation's wait blocks only its own). */
#define ATOLL_ADMIN_CONNS_MAX 64
/* Seconds a connection may stay silent (keep-alive between requests, a slow client)
 * before it is closed. */
#define ATOLL_ADMIN_CONN_TIMEOUT_S 30
/* Milliseconds an operation has to answer before the client gets 504. */
#define ATOLL_ADMIN_DEADLINE_MS 15000
/* Bytes of a node's name as the API takes it: node.name's rule (config.h). */
#define ATOLL_ADMIN_NODE_MAX 63

/* ---- the parser: a request into an action ------------------------------------------ */

typedef enum atoll__admin_route {
    ATOLL_ADMIN_HEALTHZ,      /* GET /healthz */
    ATOLL_ADMIN_METRICS,      /* GET /metrics */
    ATOLL_ADMIN_STATUS,       /* GET /v1/status */
    ATOLL_ADMIN_AREAS,        /* GET /v1/areas */
    ATOLL_ADMIN_PLAYERS,      /* GET /v1/areas/{area}/players */
    ATOLL_ADMIN_MOVE,         /* POST /v1/areas/{area}/move {"node":...} */
    ATOLL_ADMIN_PIN,          /* POST /v1/areas/{area}/pin {"node":...} */
    ATOLL_ADMIN_UNPIN,        /* DELETE /v1/areas/{area}/pin */
    ATOLL_ADMIN_DRAIN,        /* POST /v1/nodes/{node}/drain [{"stop":true}] */
    ATOLL_ADMIN_DRAIN_STATUS, /* GET /v1/nodes/{node}/drain */
} atoll__admin_route;

/* A request once checked: the route and its arguments, percent-decoded. */
typedef struct atoll__admin_action {
    atoll__admin_route route;
    char area[ATOLL_AREA_ID_MAX + 1];   /* players, move, pin, unpin; "" otherwise */
    char node[ATOLL_ADMIN_NODE_MAX + 1]; /* move and pin (the body's), drain and
                                          * drain_status (the path's); "" otherwise */
    bool stop;                          /* drain: the node stops once drained */
    const char *allow;                  /* on 405: the methods of the path ("GET, POST"),
                                         * for the Allow header; NULL otherwise */
} atoll__admin_action;

/* Turns a request into an action: method as sent ("GET"), path without its query and
 * not yet percent-decoded ("/v1/areas/room%2D1/move"), and the body (NULL when len is
 * 0). Returns the HTTP status: 200 with *out filled, or 400 (bad body, field, area id,
 * node name or percent-encoding), 404 (no such path), 405 (the path takes other
 * methods: out->allow says which), 413 (body over ATOLL_ADMIN_BODY_MAX), 414 (path
 * over ATOLL_ADMIN_URL_MAX), each with a sentence in err (valid UTF-8, never the
 * request's bytes that are not). Reads nothing but its arguments; any thread. */
int atoll__admin_parse(const char *method, const char *path, const uint8_t *body, size_t len,
                       atoll__admin_action *out, char *err, size_t errlen);
/* The rules the parser applies, for the program and the tests: an area id (1 to
 * ATOLL_AREA_ID_MAX bytes of UTF-8, no control character, quote or backslash: the area
 * runtime's rule, atoll__area_id_valid, plus UTF-8 so that every answer stays JSON) and
 * a node (node.name's: 1 to ATOLL_ADMIN_NODE_MAX letters, digits, '-', '_', '.'; a
 * node's number is one of those). */
bool atoll__admin_area_valid(const char *id, size_t len);
bool atoll__admin_node_valid(const char *node, size_t len);

/* ---- the server --------------------------------------------------------------------- */

typedef struct atoll__admin atoll__admin;
typedef struct atoll__admin_call atoll__admin_call; /* one HTTP request waiting for its answer */

/* Answers a call, from any thread, exactly once: the HTTP status and a JSON body
 * (copied). The call must not be used afterwards. */
void atoll__admin_answer(atoll__admin_call *c, int http_status, const char *json, size_t len);
/* atoll__admin_answer with {"error":"<the printf of fmt>","code":http_status}. */
void atoll__admin_fail(atoll__admin_call *c, int http_status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* What the program does for each route. Arguments are checked by the parser and
 * borrowed for the call only (copy what must outlive it). */
typedef struct atoll__admin_ops {
    void *ctx;
    /* Each starts an operation and answers later with atoll__admin_answer (any thread;
     * may answer before returning). NULL: 501 "not available on this node". */
    void (*status)(void *ctx, atoll__admin_call *c);
    void (*areas)(void *ctx, atoll__admin_call *c);
    void (*players)(void *ctx, const char *area, atoll__admin_call *c);
    void (*move)(void *ctx, const char *area, const char *node, atoll__admin_call *c);
    void (*pin)(void *ctx, const char *area, const char *node, atoll__admin_call *c);
    void (*unpin)(void *ctx, const char *area, atoll__admin_call *c);
    void (*drain)(void *ctx, const char *node, bool stop, atoll__admin_call *c);
    void (*drain_status)(void *ctx, const char *node, atoll__admin_call *c);
    /* Prometheus text of this node, appended to out; synchronous, any thread. */
    void (*metrics)(void *ctx, atoll__buf *out);
} atoll__admin_ops;

/* Starts serving on host:port (an address or a name; port 0 picks one: *bound_port
 * tells). token NULL or "": none; else every request but GET /healthz must carry
 * "Authorization: Bearer <token>". ops is copied. NULL with a sentence in err when the
 * address cannot be resolved or bound. Binds only that address. */
atoll__admin *atoll__admin_start(const char *host, int port, const char *token,
                                 const atoll__admin_ops *ops, int *bound_port, char *err,
                                 size_t errlen);
/* Milliseconds an operation has to answer from now on (ATOLL_ADMIN_DEADLINE_MS at
 * start); for tests, which cannot wait 15 s. Any thread. */
void atoll__admin_set_deadline_ms(atoll__admin *a, uint32_t ms);
/* Stops serving and frees the server: calls not answered yet are answered 503 and
 * their connections closed; their operations may still answer them later (the answer
 * is dropped). NULL: nothing. */
void atoll__admin_stop(atoll__admin *a);

#endif /* ATOLL_ADMIN_H */
