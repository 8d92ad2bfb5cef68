/* game_client.h -- integration-test support: drive a node's game through the C client
 * library (the blocking atollc_sync API) and check what comes back, next to harness.h.
 *
 * Connecting, requests (as text or parsed), exact or prefix replies, pushes, the
 * absence of pushes, kicks, entering the game with gate.entry, and reading parsed JSON
 * by dotted path. Every check is a macro that passes the caller's __FILE__ and
 * __LINE__ to a function ending in `_`, so a failure names the test's own line, not
 * one in here; a test's local helpers that take a line pass it on the same way (as
 * gc_expect_reply_(s, route, body, want, __FILE__, line)).
 * Requests, pushes and kicks wait up to 5 s (WAIT_PUSH as long as it is told). Texts
 * and values returned are the caller's (free() texts, atoll_unref() values); replies
 * and push bodies are compared as the exact text the server sent.
 */
#ifndef ATOLL_GAME_CLIENT_H
#define ATOLL_GAME_CLIENT_H

#include "harness.h"

#include <atoll/atoll.h>
#include <atollc/atollc.h>
#include <stdint.h>

/* Fails the test at file:line with `what: got "<got>", want "<want>"` (NULL prints
 * as (null)). */
void gc_fail_at(const char *file, int line, const char *what, const char *got, const char *want);
/* The resume token of a gate.entry or gate.resume answer ({"code":200,...,"resume":"1..."})
 * is checked for its form, kept in gc_resume_token and cut out of resp, so answers
 * compare as they would without it. gc_expect_reply_ does it for those two routes. */
void gc_strip_resume(char *resp);
extern char gc_resume_token[256];
#define FAIL_AT(what, got, want) gc_fail_at(__FILE__, __LINE__, (what), (got), (want))

/* Monotonic clock in microseconds, for deadlines and timing checks. */
uint64_t gc_now_us(void);

/* ---- connecting and requests ------------------------------------------------------------- */

/* A blocking client connected to node n (127.0.0.1) over transport, with route
 * compression when use_dict is 1; on failure prints the error and the node's log and
 * fails the test. CONNECT: TCP with route compression (atollc_opts_init's defaults). */
atollc_sync *gc_connect_(test_node *n, atollc_transport transport, int use_dict, const char *file,
                         int line);
#define CONNECT(n) gc_connect_((n), ATOLLC_TCP, 1, __FILE__, __LINE__)
#define CONNECT_WITH(n, transport, use_dict)                                                       \
    gc_connect_((n), (transport), (use_dict), __FILE__, __LINE__)

/* Sends a request and returns the response text (the caller frees it); fails the test
 * when no response comes. */
char *gc_request_text_(atollc_sync *s, const char *route, const char *body, const char *file,
                       int line);
#define REQUEST_TEXT(s, route, body) gc_request_text_((s), (route), (body), __FILE__, __LINE__)

/* Sends a request and returns the parsed response (the caller unrefs it); fails the
 * test when no response comes or it is not JSON. */
atoll_value *gc_request_value_(atollc_sync *s, const char *route, const char *body,
                               const char *file, int line);
#define REQUEST_VALUE(s, route, body) gc_request_value_((s), (route), (body), __FILE__, __LINE__)

/* Sends a request; the response must be want exactly (want ending in "*": a prefix,
 * e.g. "{\"code\":500*"). */
void gc_expect_reply_(atollc_sync *s, const char *route, const char *body, const char *want,
                      const char *file, int line);
#define EXPECT_REPLY(s, route, body, want)                                                         \
    gc_expect_reply_((s), (route), (body), (want), __FILE__, __LINE__)

/* ---- pushes and kicks -------------------------------------------------------------------- */

/* The next push must have this route, and this body exactly unless body is NULL (any
 * body). */
void gc_expect_push_(atollc_sync *s, const char *route, const char *body, const char *file,
                     int line);
#define EXPECT_PUSH(s, route, body) gc_expect_push_((s), (route), (body), __FILE__, __LINE__)

/* Waits up to timeout_ms for the next push, which must have this route; returns its
 * parsed body (the caller unrefs it). */
atoll_value *gc_wait_push_(atollc_sync *s, const char *route, int timeout_ms, const char *file,
                           int line);
#define WAIT_PUSH(s, route, ms) gc_wait_push_((s), (route), (ms), __FILE__, __LINE__)

/* No push may arrive within ms (the wait must end in ATOLL_ETIMEDOUT). */
void gc_expect_no_push_(atollc_sync *s, int ms, const char *file, int line);
#define EXPECT_NO_PUSH(s, ms) gc_expect_no_push_((s), (ms), __FILE__, __LINE__)

/* The server must close the connection within 5 s with a KICK {"reason":"<reason>"},
 * leaving the client closed. */
void gc_expect_kick_(atollc_sync *s, const char *reason, const char *file, int line);
#define EXPECT_KICK(s, reason) gc_expect_kick_((s), (reason), __FILE__, __LINE__)

/* ---- entering the game ------------------------------------------------------------------- */

/* Connects (as CONNECT) and sends gate.entry {"uid":"<uid>"} followed by the string
 * members of fields, a NULL-terminated list of name, value pairs (NULL: none), in
 * order; the response must be want (as EXPECT_REPLY; NULL: "{\"code\":200*"). Returns
 * the client. ENTER: uid alone, any code-200 answer. */
atollc_sync *gc_enter_(test_node *n, const char *uid, const char *const *fields, const char *want,
                       const char *file, int line);
#define ENTER(n, uid) gc_enter_((n), (uid), NULL, NULL, __FILE__, __LINE__)
#define ENTER_WITH(n, uid, fields, want) gc_enter_((n), (uid), (fields), (want), __FILE__, __LINE__)

/* ---- parsed JSON ------------------------------------------------------------------------- */

/* Parses JSON text into a value (the caller unrefs it); fails the test on bad JSON. */
atoll_value *gc_parse_(const char *text, const char *file, int line);
#define PARSE_JSON(text) gc_parse_((text), __FILE__, __LINE__)

/* The member at a dotted path ("reply.body.x"; numbers index arrays: "log.0.v"),
 * borrowed from v, or NULL when any step is missing (or v is NULL). */
atoll_value *jget(const atoll_value *v, const char *path);
/* jget's number as an integer (a real truncated), or INT64_MIN when it is missing or
 * not a number. */
int64_t jint(const atoll_value *v, const char *path);
/* jget's string, borrowed, or NULL when it is missing or not a string. */
const char *jstr(const atoll_value *v, const char *path);

#endif /* ATOLL_GAME_CLIENT_H */
