/* parse.c -- the admin API's requests turned into actions (admin.h, atoll__admin_parse).
 *
 * A pure function of the method, the path and the body, kept apart from the HTTP
 * server so that every route and every refusal has a unit test and the whole of it a
 * fuzz target. The order of the checks is the order of the answers a client sees: a
 * path too long (414), then no such path (404), a method the path does not take (405,
 * with the ones it does), then the arguments in the path (400), then the body (413 for
 * its size, 400 for what it says).
 *
 * Paths are matched on their raw segments: "/v1/areas/{area}/players" has five, the
 * fixed ones compared as sent, so "%76%31/status" is no route. Only the arguments are
 * percent-decoded, each on its own, so an area id may hold '/' ("%2F") without making
 * another route. The body of move and pin is a JSON object with "node" only; drain's
 * is empty or an object with "stop" only: an unknown member is refused rather than
 * ignored, so a misspelt one ({"stpo":true}) does not do the opposite of what was meant.
 */
#include "admin.h"
#include "../core/text.h"
#include "../node/mail.h" /* ATOLL_NODE_ID_MAX */

#include <jansson.h>
#include <stdio.h>

/* Segments of a path, at most: "/v1/areas/{area}/players" has four. One more is kept
 * so that a longer path is told from one of four. */
#define SEGMENTS_MAX 5

typedef struct {
    const char *p;
    size_t len;
} segment;

/* Splits "/a/b/c" into its segments (empty ones kept: "//" is no route): how many, or
 * -1 when the path does not start with '/' or has more than SEGMENTS_MAX. */
static int
split_path(const char *path, segment *seg)
{
    if (path[0] != '/')
        return -1;
    int n = 0;
    const char *p = path + 1;
    for (;;) {
        if (n == SEGMENTS_MAX)
            return -1;
        size_t len = strcspn(p, "/");
        seg[n++] = (segment){p, len};
        if (p[len] == '\0')
            return n;
        p += len + 1;
    }
}

static bool
is(const segment *s, const char *word)
{
    return s->len == strlen(word) && memcmp(s->p, word, s->len) == 0;
}

/* Percent-decodes s into out (room for cap bytes and a NUL): the decoded length, -1 for
 * a '%' without two hex digits, -2 when it does not fit. */
static int
percent_decode(const segment *s, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < s->len; i++) {
        char c = s->p[i];
        if (c == '%') {
            if (s->len - i < 3)
                return -1;
            int hi = atoll__hex_digit((uint8_t)s->p[i + 1]);
            int lo = atoll__hex_digit((uint8_t)s->p[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (n == cap)
            return -2;
        out[n++] = c;
    }
    out[n] = '\0';
    return (int)n;
}

bool
atoll__admin_area_valid(const char *id, size_t len)
{
    if (len == 0 || len > ATOLL_AREA_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c < 0x20 || c == '"' || c == '\\' || c == 0x7f)
            return false;
    }
    return atoll__utf8_valid((const uint8_t *)id, len);
}

bool
atoll__admin_node_valid(const char *node, size_t len)
{
    if (len == 0 || len > ATOLL_ADMIN_NODE_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = node[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

/* The area id of the path into out->area: 200, or 400 with a sentence. */
static int
take_area(const segment *s, atoll__admin_action *out, char *err, size_t errlen)
{
    int n = percent_decode(s, out->area, ATOLL_AREA_ID_MAX);
    if (n == -1) {
        snprintf(err, errlen, "the area id in the path has a '%%' without two hex digits");
        return 400;
    }
    if (n == -2) {
        snprintf(err, errlen, "the area id is longer than %d bytes", ATOLL_AREA_ID_MAX);
        return 400;
    }
    if (!atoll__admin_area_valid(out->area, (size_t)n)) {
        out->area[0] = '\0';
        snprintf(err, errlen, "not an area id: 1 to %d bytes of UTF-8 without control "
                 "characters, quotes or backslashes", ATOLL_AREA_ID_MAX);
        return 400;
    }
    return 200;
}

/* The node of the path into out->node: 200, or 400 with a sentence. */
static int
take_node(const segment *s, atoll__admin_action *out, char *err, size_t errlen)
{
    int n = percent_decode(s, out->node, ATOLL_ADMIN_NODE_MAX);
    if (n < 0 || !atoll__admin_node_valid(out->node, (size_t)n)) {
        out->node[0] = '\0';
        snprintf(err, errlen, "not a node: its name or number, 1 to %d letters, digits, "
                 "'-', '_' or '.'", ATOLL_ADMIN_NODE_MAX);
        return 400;
    }
    return 200;
}

/* A member name as it may be shown in a sentence: printable ASCII of at most 32 bytes,
 * else nothing (the sentence must stay valid UTF-8 and short). */
static const char *
shown_key(const char *key)
{
    size_t n = strlen(key);
    if (n == 0 || n > 32)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (key[i] < 0x20 || key[i] > 0x7e || key[i] == '"' || key[i] == '\\')
            return NULL;
    return key;
}

/* The body as a JSON object whose one member may be `member`: the object (the caller's
 * to json_decref), or NULL after 400's sentence. */
static json_t *
body_object(const uint8_t *body, size_t len, const char *member, char *err, size_t errlen)
{
    json_error_t je;
    json_t *o = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &je);
    if (o == NULL || !json_is_object(o)) {
        if (o == NULL)
            snprintf(err, errlen, "the body is not a JSON object (line %d, column %d)",
                     je.line, je.column);
        else
            snprintf(err, errlen, "the body is not a JSON object");
        json_decref(o);
        return NULL;
    }
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        /* jansson refuses "\u0000" unless told to (JSON_ALLOW_NUL); were one let in, a
         * name with a NUL ("node\u0000x") would read as its first bytes, and the lookup
         * by the name as C text would find another member, or none. */
        if (strcmp(key, member) == 0 && json_object_get(o, member) == v)
            continue;
        const char *shown = shown_key(key);
        if (shown != NULL)
            snprintf(err, errlen, "unknown member \"%s\" in the body (it takes \"%s\")", shown,
                     member);
        else
            snprintf(err, errlen, "unknown member in the body (it takes \"%s\")", member);
        json_decref(o);
        return NULL;
    }
    return o;
}

/* move and pin: {"node": NAME or number}: 200, or 400. */
static int
take_body_node(const uint8_t *body, size_t len, atoll__admin_action *out, char *err,
               size_t errlen)
{
    json_t *o = len > 0 ? body_object(body, len, "node", err, errlen) : NULL;
    if (o == NULL) {
        if (len == 0)
            snprintf(err, errlen, "the body needs \"node\": {\"node\":\"NAME\"}");
        return 400;
    }
    json_t *node = json_object_get(o, "node");
    int rc = 200;
    if (json_is_string(node) &&
        atoll__admin_node_valid(json_string_value(node), json_string_length(node)) &&
        strlen(json_string_value(node)) == json_string_length(node)) {
        snprintf(out->node, sizeof out->node, "%s", json_string_value(node));
    } else if (json_is_integer(node) && json_integer_value(node) >= 1 &&
               json_integer_value(node) <= ATOLL_NODE_ID_MAX) {
        snprintf(out->node, sizeof out->node, "%lld", (long long)json_integer_value(node));
    } else {
        snprintf(err, errlen, "the body needs \"node\": the name of a node (1 to %d letters, "
                 "digits, '-', '_' or '.') or its number (1 to %d)", ATOLL_ADMIN_NODE_MAX,
                 ATOLL_NODE_ID_MAX);
        rc = 400;
    }
    json_decref(o);
    return rc;
}

/* drain: nothing, or {"stop": true|false}: 200, or 400. */
static int
take_body_stop(const uint8_t *body, size_t len, atoll__admin_action *out, char *err,
               size_t errlen)
{
    out->stop = false;
    if (len == 0)
        return 200;
    json_t *o = body_object(body, len, "stop", err, errlen);
    if (o == NULL)
        return 400;
    json_t *stop = json_object_get(o, "stop");
    int rc = 200;
    if (stop != NULL && !json_is_boolean(stop)) {
        snprintf(err, errlen, "\"stop\" must be true or false");
        rc = 400;
    }
    out->stop = json_is_true(stop);
    json_decref(o);
    return rc;
}

/* The route of a path's shape, and the methods it takes. */
typedef struct {
    const char *method;
    atoll__admin_route route;
} method_route;

typedef struct {
    const char *allow;       /* for 405 */
    method_route by[2];      /* method -> route; unused slots have method NULL */
    int arg;                 /* the segment of the argument, -1: none */
    bool arg_is_node;        /* the argument is a node (else an area) */
} shape;

/* The shape a path matches, or NULL (404). */
static const shape *
match(const segment *seg, int n)
{
    static const shape healthz = {"GET", {{"GET", ATOLL_ADMIN_HEALTHZ}}, -1, false};
    static const shape metrics = {"GET", {{"GET", ATOLL_ADMIN_METRICS}}, -1, false};
    static const shape status = {"GET", {{"GET", ATOLL_ADMIN_STATUS}}, -1, false};
    static const shape areas = {"GET", {{"GET", ATOLL_ADMIN_AREAS}}, -1, false};
    static const shape players = {"GET", {{"GET", ATOLL_ADMIN_PLAYERS}}, 2, false};
    static const shape move = {"POST", {{"POST", ATOLL_ADMIN_MOVE}}, 2, false};
    static const shape pin = {"POST, DELETE",
                              {{"POST", ATOLL_ADMIN_PIN}, {"DELETE", ATOLL_ADMIN_UNPIN}}, 2,
                              false};
    static const shape drain = {"GET, POST",
                                {{"POST", ATOLL_ADMIN_DRAIN}, {"GET", ATOLL_ADMIN_DRAIN_STATUS}},
                                2, true};
    if (n == 1 && is(&seg[0], "healthz"))
        return &healthz;
    if (n == 1 && is(&seg[0], "metrics"))
        return &metrics;
    if (n < 2 || !is(&seg[0], "v1"))
        return NULL;
    if (n == 2 && is(&seg[1], "status"))
        return &status;
    if (n == 2 && is(&seg[1], "areas"))
        return &areas;
    if (n != 4 || seg[2].len == 0)
        return NULL;
    if (is(&seg[1], "areas") && is(&seg[3], "players"))
        return &players;
    if (is(&seg[1], "areas") && is(&seg[3], "move"))
        return &move;
    if (is(&seg[1], "areas") && is(&seg[3], "pin"))
        return &pin;
    if (is(&seg[1], "nodes") && is(&seg[3], "drain"))
        return &drain;
    return NULL;
}

int
atoll__admin_parse(const char *method, const char *path, const uint8_t *body, size_t len,
                   atoll__admin_action *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (errlen > 0)
        err[0] = '\0';
    if (strlen(path) > ATOLL_ADMIN_URL_MAX) {
        snprintf(err, errlen, "the path is longer than %d bytes", ATOLL_ADMIN_URL_MAX);
        return 414;
    }
    segment seg[SEGMENTS_MAX];
    int n = split_path(path, seg);
    const shape *s = n > 0 ? match(seg, n) : NULL;
    if (s == NULL) {
        snprintf(err, errlen, "no such path (the routes are under /v1/, and /metrics, "
                              "/healthz)");
        return 404;
    }
    const method_route *mr = NULL;
    for (size_t i = 0; i < 2 && s->by[i].method != NULL; i++)
        if (strcmp(method, s->by[i].method) == 0)
            mr = &s->by[i];
    if (mr == NULL) {
        out->allow = s->allow;
        snprintf(err, errlen, "this path takes %s only", s->allow);
        return 405;
    }
    out->route = mr->route;
    if (s->arg >= 0) {
        int rc = s->arg_is_node ? take_node(&seg[s->arg], out, err, errlen)
                                : take_area(&seg[s->arg], out, err, errlen);
        if (rc != 200)
            return rc;
    }
    if (len > ATOLL_ADMIN_BODY_MAX) {
        snprintf(err, errlen, "the body is larger than %d bytes", ATOLL_ADMIN_BODY_MAX);
        return 413;
    }
    switch (out->route) {
    case ATOLL_ADMIN_MOVE:
    case ATOLL_ADMIN_PIN:
        return take_body_node(body, len, out, err, errlen);
    case ATOLL_ADMIN_DRAIN:
        return take_body_stop(body, len, out, err, errlen);
    default:
        if (len > 0) {
            snprintf(err, errlen, "%s of this path takes no body", mr->method);
            return 400;
        }
        return 200;
    }
}
