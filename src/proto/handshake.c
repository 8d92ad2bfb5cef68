/* handshake.c -- the Pomelo handshake: the client's JSON and the server's answers.
 *
 * Client -> server: {"sys":{"type":..,"version":..,...},"user":{...}}; the server only
 * requires valid JSON with a truthy "sys" (JavaScript truthiness, as Pomelo checks it).
 * Server -> client: {"code":200,"sys":{heartbeat?, dict?, routeToCode?, codeToRoute?,
 * dictVersion?, useDict?}} with keys in exactly Pomelo's order, or {"code":500} /
 * {"code":501} before a close.
 *
 * The client's JSON is first checked by the allocation-free validator (depth and UTF-8
 * limits), then parsed by jansson to read the few fields we use: the tree jansson
 * builds is bounded by ATOLL_HANDSHAKE_MAX.
 */
#include "proto.h"

#include <jansson.h>
#include <stdio.h>

static bool
js_truthy(const json_t *v)
{
    if (v == NULL)
        return false;
    switch (json_typeof(v)) {
    case JSON_NULL:
    case JSON_FALSE:
        return false;
    case JSON_INTEGER:
        return json_integer_value(v) != 0;
    case JSON_REAL:
        return json_real_value(v) != 0.0; /* NaN cannot occur in JSON text */
    case JSON_STRING:
        return json_string_length(v) != 0;
    default:
        return true;
    }
}

static void
copy_field(const json_t *sys, const char *key, char *out, size_t cap)
{
    out[0] = '\0';
    const json_t *v = json_is_object(sys) ? json_object_get(sys, key) : NULL;
    if (json_is_string(v))
        snprintf(out, cap, "%s", json_string_value(v));
}

int
atoll__handshake_parse(const uint8_t *p, size_t n, atoll__handshake *out)
{
    memset(out, 0, sizeof *out);
    if (n > ATOLL_HANDSHAKE_MAX)
        return ATOLL_ELIMIT;
    if (!atoll__json_valid(p, n, ATOLL_JSON_MAX_DEPTH))
        return ATOLL_EJSON;
    json_error_t err;
    /* JSON_DECODE_INT_AS_REAL: JSON numbers have no size limit and Pomelo (JSON.parse)
     * accepts any; jansson's default refuses integers past 2^63 ("too big integer"),
     * which would turn a valid handshake into a 500. We read only strings and truthiness,
     * so reals lose nothing. */
    json_t *root = json_loadb((const char *)p, n,
                              JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &err);
    if (root == NULL)
        return ATOLL_EJSON;
    int rc = ATOLL_OK;
    const json_t *sys = json_is_object(root) ? json_object_get(root, "sys") : NULL;
    if (!json_is_object(root))
        rc = ATOLL_EJSON;
    else if (!js_truthy(sys))
        rc = ATOLL_EPROTO;
    else {
        copy_field(sys, "type", out->type, sizeof out->type);
        copy_field(sys, "version", out->version, sizeof out->version);
        copy_field(sys, "dictVersion", out->dict_version, sizeof out->dict_version);
    }
    json_decref(root);
    return rc;
}

static void
put_str(atoll__buf *b, const char *s)
{
    atoll__buf_append(b, s, strlen(s));
}

void
atoll__handshake_reply(atoll__buf *b, int heartbeat_s, const atoll__dict *dict,
                       const char *client_dict_version)
{
    atoll__buf json = ATOLL__BUF_INIT;
    char num[32];
    bool comma = false;
    put_str(&json, "{\"code\":200,\"sys\":{");
    if (heartbeat_s > 0) {
        snprintf(num, sizeof num, "\"heartbeat\":%d", heartbeat_s);
        put_str(&json, num);
        comma = true;
    }
    if (dict != NULL) {
        bool send_dict = client_dict_version == NULL ||
                         strcmp(client_dict_version, atoll__dict_version(dict)) != 0;
        if (send_dict) {
            size_t n = atoll__dict_public(dict);
            /* "dict" and "routeToCode" are the same object (jsclient and Unity read the
             * first, libpomelo2 the second). */
            for (int pass = 0; pass < 2; pass++) {
                put_str(&json, comma ? "," : "");
                put_str(&json, pass == 0 ? "\"dict\":{" : "\"routeToCode\":{");
                for (size_t i = 1; i <= n; i++) {
                    const char *r = atoll__dict_route(dict, (uint16_t)i);
                    if (i > 1)
                        atoll__buf_push(&json, ',');
                    atoll__json_put_string(&json, r, strlen(r));
                    snprintf(num, sizeof num, ":%zu", i);
                    put_str(&json, num);
                }
                atoll__buf_push(&json, '}');
                comma = true;
            }
            put_str(&json, ",\"codeToRoute\":{");
            for (size_t i = 1; i <= n; i++) {
                const char *r = atoll__dict_route(dict, (uint16_t)i);
                snprintf(num, sizeof num, "%s\"%zu\":", i > 1 ? "," : "", i);
                put_str(&json, num);
                atoll__json_put_string(&json, r, strlen(r));
            }
            put_str(&json, "},\"dictVersion\":");
            const char *v = atoll__dict_version(dict);
            atoll__json_put_string(&json, v, strlen(v));
        }
        put_str(&json, comma ? ",\"useDict\":true" : "\"useDict\":true");
    }
    put_str(&json, "}}");
    atoll__pkg_put(b, ATOLL_PKG_HANDSHAKE, atoll__buf_data(&json), json.len);
    atoll__buf_fini(&json);
}

/* Reads one numeric part and the separator after it; stops at anything else. */
static const char *
version_part(const char *s, unsigned long *out)
{
    unsigned long v = 0;
    while (*s >= '0' && *s <= '9') {
        if (v < 100000000ul)
            v = v * 10 + (unsigned long)(*s - '0');
        s++;
    }
    *out = v;
    return *s == '.' ? s + 1 : NULL;
}

int
atoll__version_cmp(const char *a, const char *b)
{
    while (a != NULL || b != NULL) {
        unsigned long x = 0, y = 0;
        if (a != NULL)
            a = version_part(a, &x);
        if (b != NULL)
            b = version_part(b, &y);
        if (x != y)
            return x < y ? -1 : 1;
    }
    return 0;
}

bool
atoll__version_valid(const char *v)
{
    bool digit = false;
    for (; *v; v++) {
        if (*v >= '0' && *v <= '9')
            digit = true;
        else if (*v == '.' && digit)
            digit = false;
        else
            return false;
    }
    return digit;
}

void
atoll__handshake_error(atoll__buf *b, int code)
{
    char body[32];
    int n = snprintf(body, sizeof body, "{\"code\":%d}", code);
    atoll__pkg_put(b, ATOLL_PKG_HANDSHAKE, body, (size_t)n);
}

void
atoll__kick_put(atoll__buf *b, const char *reason)
{
    atoll__buf json = ATOLL__BUF_INIT;
    put_str(&json, "{\"reason\":");
    atoll__json_put_string(&json, reason, strlen(reason));
    atoll__buf_push(&json, '}');
    atoll__pkg_put(b, ATOLL_PKG_KICK, atoll__buf_data(&json), json.len);
    atoll__buf_fini(&json);
}
