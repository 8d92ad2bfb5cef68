/* game_client.c -- drive a node's game through the C client library and check its
 * answers, failing at the caller's file and line (game_client.h). */
#include "game_client.h"
#include "test.h"

/* How long a request, a push or a kick may take. */
enum { WAIT_MS = 5000 };

void
gc_fail_at(const char *file, int line, const char *what, const char *got, const char *want)
{
    char m[1600];
    snprintf(m, sizeof m, "%s: got \"%.700s\", want \"%.600s\"", what, got ? got : "(null)",
             want ? want : "(null)");
    test_fail_(file, line, m);
}

uint64_t
gc_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- connecting and requests ------------------------------------------------------------- */

atollc_sync *
gc_connect_(test_node *n, atollc_transport transport, int use_dict, const char *file, int line)
{
    atollc_opts o;
    atollc_opts_init(&o);
    o.transport = transport;
    o.port = n->port;
    o.use_dict = use_dict;
    int err = 0;
    atollc_sync *s = atollc_sync_connect(&o, &err);
    if (s == NULL) {
        node_dump_log(n);
        gc_fail_at(file, line, "connect", atoll_strerror(err), "a connection");
    }
    return s;
}

char *
gc_request_text_(atollc_sync *s, const char *route, const char *body, const char *file, int line)
{
    char *resp = NULL;
    int rc = atollc_sync_request(s, route, body, &resp, WAIT_MS);
    if (rc != ATOLLC_OK)
        gc_fail_at(file, line, route, atoll_strerror(rc), "a response");
    return resp;
}

atoll_value *
gc_request_value_(atollc_sync *s, const char *route, const char *body, const char *file, int line)
{
    char *resp = gc_request_text_(s, route, body, file, line);
    atoll_value *v = gc_parse_(resp, file, line);
    free(resp);
    return v;
}

char gc_resume_token[256];

void
gc_strip_resume(char *resp)
{
    static const char key[] = ",\"resume\":\"";
    char *at = resp ? strstr(resp, key) : NULL;
    if (at == NULL)
        return;
    char *tok = at + sizeof key - 1;
    char *end = strchr(tok, '"');
    if (end == NULL || tok[0] != '1' || end - tok < 66 || (size_t)(end - tok) >= sizeof gc_resume_token)
        return; /* not a token: left in, so the comparison fails */
    memcpy(gc_resume_token, tok, (size_t)(end - tok));
    gc_resume_token[end - tok] = '\0';
    memmove(at, end + 1, strlen(end + 1) + 1);
}

void
gc_expect_reply_(atollc_sync *s, const char *route, const char *body, const char *want,
                 const char *file, int line)
{
    char *resp = gc_request_text_(s, route, body, file, line);
    if (strcmp(route, "gate.entry") == 0 || strcmp(route, "gate.resume") == 0)
        gc_strip_resume(resp);
    size_t wl = strlen(want);
    bool ok =
        wl > 0 && want[wl - 1] == '*' ? strncmp(resp, want, wl - 1) == 0 : strcmp(resp, want) == 0;
    if (!ok)
        gc_fail_at(file, line, route, resp, want);
    free(resp);
}

/* ---- pushes and kicks -------------------------------------------------------------------- */

/* Waits for the next push and checks its route; returns its body (the caller frees it). */
static char *
next_push(atollc_sync *s, const char *route, int timeout_ms, const char *file, int line)
{
    char *r = NULL, *b = NULL;
    int rc = atollc_sync_wait_push(s, &r, &b, timeout_ms);
    if (rc != ATOLLC_OK)
        gc_fail_at(file, line, "push", atoll_strerror(rc), route);
    if (strcmp(r, route) != 0)
        gc_fail_at(file, line, "push route", r, route);
    free(r);
    return b;
}

void
gc_expect_push_(atollc_sync *s, const char *route, const char *body, const char *file, int line)
{
    char *b = next_push(s, route, WAIT_MS, file, line);
    if (body != NULL && strcmp(b, body) != 0)
        gc_fail_at(file, line, "push body", b, body);
    free(b);
}

atoll_value *
gc_wait_push_(atollc_sync *s, const char *route, int timeout_ms, const char *file, int line)
{
    char *b = next_push(s, route, timeout_ms, file, line);
    atoll_value *v = gc_parse_(b, file, line);
    free(b);
    return v;
}

void
gc_expect_no_push_(atollc_sync *s, int ms, const char *file, int line)
{
    char *r = NULL, *b = NULL;
    int rc = atollc_sync_wait_push(s, &r, &b, ms);
    if (rc == ATOLLC_OK)
        gc_fail_at(file, line, "unexpected push", b, r);
    if (rc != ATOLL_ETIMEDOUT)
        gc_fail_at(file, line, "waiting for no push", atoll_strerror(rc), "a timeout");
}

void
gc_expect_kick_(atollc_sync *s, const char *reason, const char *file, int line)
{
    char *kick = NULL;
    int rc = atollc_sync_wait_close(s, &kick, WAIT_MS);
    if (rc != ATOLLC_OK)
        gc_fail_at(file, line, "kick", atoll_strerror(rc), reason);
    char want[256];
    snprintf(want, sizeof want, "{\"reason\":\"%s\"}", reason);
    if (kick == NULL || strcmp(kick, want) != 0)
        gc_fail_at(file, line, "kick body", kick, want);
    free(kick);
    if (atollc_sync_is_open(s))
        gc_fail_at(file, line, "after the kick", "open", "closed");
}

/* ---- entering the game ------------------------------------------------------------------- */

atollc_sync *
gc_enter_(test_node *n, const char *uid, const char *const *fields, const char *want,
          const char *file, int line)
{
    atollc_sync *s = gc_connect_(n, ATOLLC_TCP, 1, file, line);
    char body[512];
    size_t k = (size_t)snprintf(body, sizeof body, "{\"uid\":\"%s\"", uid);
    for (int i = 0; fields != NULL && fields[i] != NULL && k < sizeof body; i += 2)
        k +=
            (size_t)snprintf(body + k, sizeof body - k, ",\"%s\":\"%s\"", fields[i], fields[i + 1]);
    if (k < sizeof body)
        k += (size_t)snprintf(body + k, sizeof body - k, "}");
    if (k >= sizeof body)
        gc_fail_at(file, line, "gate.entry body", body, "one that fits");
    gc_expect_reply_(s, "gate.entry", body, want ? want : "{\"code\":200*", file, line);
    return s;
}

/* ---- parsed JSON ------------------------------------------------------------------------- */

atoll_value *
gc_parse_(const char *text, const char *file, int line)
{
    char err[128];
    atoll_value *v = atoll_parse(text, strlen(text), err, sizeof err);
    if (v == NULL)
        gc_fail_at(file, line, "JSON", text, err);
    return v;
}

atoll_value *
jget(const atoll_value *v, const char *path)
{
    char key[128];
    while (v != NULL && *path) {
        const char *dot = strchr(path, '.');
        size_t k = dot ? (size_t)(dot - path) : strlen(path);
        snprintf(key, sizeof key, "%.*s", (int)k, path);
        if (atoll_typeof(v) == ATOLL_ARRAY)
            v = atoll_at(v, (size_t)strtoul(key, NULL, 10));
        else
            v = atoll_get(v, key);
        path += k + (dot ? 1 : 0);
    }
    return (atoll_value *)v;
}

int64_t
jint(const atoll_value *v, const char *path)
{
    return atoll_as_int(jget(v, path), INT64_MIN);
}

const char *
jstr(const atoll_value *v, const char *path)
{
    return atoll_as_str(jget(v, path), NULL);
}
