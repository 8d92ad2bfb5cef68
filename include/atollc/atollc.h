/* atollc.h -- the atoll C client library: speaks the Pomelo client protocol to an atoll
 * node (or any Pomelo server) over raw TCP or WebSocket.
 *
 * Two layers:
 *  - an asynchronous client on a libuv loop the caller owns (many clients per loop: the
 *    load generator holds thousands), with callbacks for connect, responses, pushes,
 *    kicks and close;
 *  - a blocking wrapper (atollc_sync_*) with its own private loop, for tests and tools.
 *
 * Threading: a client and its loop belong to one thread; nothing here locks.
 * Callbacks: a call that returns an error never calls its callback; a call that
 * returns ATOLLC_OK calls it exactly once, never from inside the call itself. Closing
 * a client fails every pending request callback with ATOLL_ECLOSED. Errors are the
 * negative atoll_err codes of <atoll/atoll.h> (atoll_strerror names them): ATOLL_EIO
 * when the TCP connect fails, ATOLL_EPROTO when the handshake reply is not code 200,
 * the upgrade answer is wrong or the server breaks the protocol, ATOLL_ETIMEDOUT when
 * the connect+handshake deadline or the heartbeat deadline passes.
 * Ownership: bodies passed in are copied before the call returns; bodies handed to
 * callbacks are lent and valid only during the callback.
 * Signals: libuv writes with write(2), so a program using atollc must ignore SIGPIPE.
 */
#ifndef ATOLLC_ATOLLC_H
#define ATOLLC_ATOLLC_H

#include <atoll/atoll.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ATOLLC_OK 0

typedef enum atollc_transport {
    ATOLLC_TCP = 0,
    ATOLLC_WS = 1,
} atollc_transport;

typedef struct atollc_opts {
    atollc_transport transport;
    const char *host;        /* numeric IPv4/IPv6 address, e.g. "127.0.0.1" */
    int port;
    const char *user_json;   /* handshake "user" object as JSON text; NULL: none */
    int use_dict;            /* 1: send routes compressed when the server's dict has them */
    int auto_heartbeat;      /* 1: answer the server's heartbeat schedule (default on) */
    uint32_t max_package;    /* largest package accepted from the server; 0: 16 MiB */
    uint32_t timeout_ms;     /* connect + handshake deadline; 0: 5000 */
} atollc_opts;

/* Fills opts with the defaults (TCP, 127.0.0.1, use_dict 1, auto_heartbeat 1). */
void atollc_opts_init(atollc_opts *opts);

typedef struct atollc_client atollc_client;

/* status is ATOLLC_OK once the handshake completed (the ack is sent), else an error;
 * after an error the close callback follows with the same status (free the client
 * there). When the app closes the client while it connects, this gets ATOLL_ECANCELED
 * and the close callback ATOLLC_OK. */
typedef void (*atollc_connect_cb)(atollc_client *c, int status, void *ud);
/* status ATOLLC_OK: body/len is the response body (JSON text, not NUL-terminated).
 * status < 0: the connection went away first (ATOLL_ECLOSED; why is told to the close
 * callback); body is NULL. The async API has no per-request deadline: the heartbeat
 * deadline closes a dead connection. */
typedef void (*atollc_response_cb)(atollc_client *c, int status, const char *body, size_t len,
                                   void *ud);
/* A push: route is NUL-terminated (a compressed route is resolved through the dict). */
typedef void (*atollc_push_cb)(atollc_client *c, const char *route, const char *body,
                               size_t len, void *ud);
/* A KICK package: body is its JSON ({"reason":"..."}). The close callback follows. */
typedef void (*atollc_kick_cb)(atollc_client *c, const char *body, size_t len, void *ud);
/* The connection is gone: status ATOLLC_OK after atollc_close, else why (ATOLL_ECLOSED
 * when the server closed, ATOLL_ETIMEDOUT on heartbeat timeout, ATOLL_EPROTO...). After
 * this callback the client may be freed. */
typedef void (*atollc_close_cb)(atollc_client *c, int status, void *ud);

/* Creates a client on loop. Returns ATOLLC_OK or ATOLL_EINVAL/ATOLL_ENOMEM. */
int atollc_client_new(uv_loop_t *loop, const atollc_opts *opts, atollc_client **out);

/* Connects, upgrades to WebSocket when asked, sends the handshake and the ack. */
int atollc_connect(atollc_client *c, atollc_connect_cb cb, void *ud);

/* Sends a request; cb gets the response. Ids are numbered from 1. Returns the error
 * at once when not connected. Requests of one loop turn leave in one write (on
 * WebSocket one frame per package, as Pomelo servers require). */
int atollc_request(atollc_client *c, const char *route, const void *body, size_t len,
                   atollc_response_cb cb, void *ud);
/* Sends a notify (no response). */
int atollc_notify(atollc_client *c, const char *route, const void *body, size_t len);
/* Sends bytes exactly as given (one WebSocket binary message on WS): for tests of bad
 * input. Allowed as soon as the handshake was sent. */
int atollc_send_raw(atollc_client *c, const void *bytes, size_t len);

void atollc_on_push(atollc_client *c, atollc_push_cb cb, void *ud);
void atollc_on_kick(atollc_client *c, atollc_kick_cb cb, void *ud);
void atollc_on_close(atollc_client *c, atollc_close_cb cb, void *ud);

/* Requests in flight (sent, not yet answered). */
size_t atollc_pending(const atollc_client *c);
/* Heartbeat interval the server announced, seconds (0: none). */
int atollc_heartbeat_interval(const atollc_client *c);
/* Route code from the server's dictionary, 0 when absent. */
uint16_t atollc_route_code(const atollc_client *c, const char *route);

/* Starts closing; the close callback fires once the handle is closed. Safe from any
 * callback of this client. */
void atollc_close(atollc_client *c);
/* Frees a client that is closed (after its close callback) or never connected. On a
 * client still open it closes it first and frees it once the handles are closed,
 * without calling the close callback. */
void atollc_client_free(atollc_client *c);

/* ---- blocking wrapper -------------------------------------------------------------- */

typedef struct atollc_sync atollc_sync;

/* Connects and completes the handshake, or fails within timeout_ms. On error returns
 * NULL and stores the code in *err (when err is not NULL; ATOLLC_OK on success). */
atollc_sync *atollc_sync_connect(const atollc_opts *opts, int *err);
/* Sends a request and waits for its response. On ATOLLC_OK *body is a NUL-terminated
 * copy the caller frees with free(). */
int atollc_sync_request(atollc_sync *s, const char *route, const char *body, char **resp,
                        int timeout_ms);
int atollc_sync_notify(atollc_sync *s, const char *route, const char *body);
/* Waits for the next push (pushes are queued as they arrive). *route and *body are
 * copies the caller frees. ATOLL_ETIMEDOUT when none came in time, ATOLL_ECLOSED when
 * the connection is gone. */
int atollc_sync_wait_push(atollc_sync *s, char **route, char **body, int timeout_ms);
/* Waits until the server closes the connection. Returns ATOLLC_OK when it closed
 * (*kick_body gets the kick JSON or NULL when none came; may be NULL), ATOLL_ETIMEDOUT. */
int atollc_sync_wait_close(atollc_sync *s, char **kick_body, int timeout_ms);
int atollc_sync_send_raw(atollc_sync *s, const void *bytes, size_t len);
/* Runs the private loop for ms milliseconds (heartbeats, pushes are received). */
void atollc_sync_pump(atollc_sync *s, int ms);
int atollc_sync_is_open(const atollc_sync *s);
atollc_client *atollc_sync_client(atollc_sync *s);
/* Closes (if open) and frees. */
void atollc_sync_free(atollc_sync *s);

#ifdef __cplusplus
}
#endif
#endif /* ATOLLC_ATOLLC_H */
