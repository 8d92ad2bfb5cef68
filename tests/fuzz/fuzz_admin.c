/* fuzz_admin.c -- libFuzzer target over the admin API's request parser
 * (atoll__admin_parse, src/admin/parse.c), which reads what an operator's client (or
 * anyone who reaches the admin port) sends.
 *
 * Input: "METHOD PATH\nBODY": the first line is split at its first space (method, then
 * path, each cut at a NUL as the server's C strings are), the rest is the body, handed
 * over in an allocation of its exact size so that ASan sees a read past it.
 *
 * Checks, beyond no crash and no undefined behaviour:
 *  - the status is one of 200, 400, 404, 405, 413, 414; 414 exactly when the path is
 *    over ATOLL_ADMIN_URL_MAX; the sentence is empty exactly on 200, NUL-terminated and
 *    valid UTF-8 (it goes into a JSON answer); Allow is given exactly on 405, is the
 *    list of one of the shapes, and does not name the method refused;
 *  - on 200: the arguments follow their rules (atoll__admin_area_valid,
 *    atoll__admin_node_valid), only the routes that take one have one, and the area or
 *    the node of the path is what a reference percent-decoder written here makes of its
 *    segment; the body agrees with jansson's reading of it (move, pin: one member
 *    "node", a name or a number; drain: nothing, or one member "stop", a boolean);
 *  - the same input parses the same again, and a request written back from the action
 *    (every byte of the arguments percent-encoded, hex digits in the case the input
 *    picks) parses into the same action.
 */
#include "admin/admin.h"
#include "core/text.h"

#include <jansson.h>
#include <stdlib.h>

#include "fuzz.h"

static const char *const ALLOWS[] = {"GET", "POST", "POST, DELETE", "GET, POST"};

static bool
takes_area(atoll__admin_route r)
{
    return r == ATOLL_ADMIN_PLAYERS || r == ATOLL_ADMIN_MOVE || r == ATOLL_ADMIN_PIN ||
           r == ATOLL_ADMIN_UNPIN;
}

static bool
takes_node(atoll__admin_route r)
{
    return r == ATOLL_ADMIN_MOVE || r == ATOLL_ADMIN_PIN || r == ATOLL_ADMIN_DRAIN ||
           r == ATOLL_ADMIN_DRAIN_STATUS;
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The reference: the second-to-last segment of path ("/v1/areas/SEG/players"),
 * decoded into out; its length, or -1 when an escape is bad. */
static int
reference_argument(const char *path, char *out, size_t cap)
{
    const char *end = strrchr(path, '/');
    const char *start = end;
    while (start > path && start[-1] != '/')
        start--;
    size_t n = 0;
    for (const char *p = start; p < end; p++) {
        int c = (unsigned char)*p;
        if (c == '%') {
            if (end - p < 3 || hexval(p[1]) < 0 || hexval(p[2]) < 0)
                return -1;
            c = hexval(p[1]) * 16 + hexval(p[2]);
            p += 2;
        }
        CHECK(n + 1 < cap);
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return (int)n;
}

static void
percent_encode(const char *s, bool upper, char *out, size_t cap)
{
    static const char lo[] = "0123456789abcdef", up[] = "0123456789ABCDEF";
    const char *digits = upper ? up : lo;
    size_t n = 0;
    for (; *s; s++) {
        CHECK(n + 4 < cap);
        out[n++] = '%';
        out[n++] = digits[(unsigned char)*s >> 4];
        out[n++] = digits[(unsigned char)*s & 15];
    }
    out[n] = '\0';
}

/* The request an action was made from, written again: method, path and body. */
static void
write_back(const atoll__admin_action *a, bool upper, const char **method, char *path,
           size_t cap, char *body, size_t bcap)
{
    char arg[3 * 80];
    body[0] = '\0';
    percent_encode(takes_area(a->route) ? a->area : a->node, upper, arg, sizeof arg);
    switch (a->route) {
    case ATOLL_ADMIN_HEALTHZ:
        *method = "GET", snprintf(path, cap, "/healthz");
        break;
    case ATOLL_ADMIN_METRICS:
        *method = "GET", snprintf(path, cap, "/metrics");
        break;
    case ATOLL_ADMIN_STATUS:
        *method = "GET", snprintf(path, cap, "/v1/status");
        break;
    case ATOLL_ADMIN_AREAS:
        *method = "GET", snprintf(path, cap, "/v1/areas");
        break;
    case ATOLL_ADMIN_PLAYERS:
        *method = "GET", snprintf(path, cap, "/v1/areas/%s/players", arg);
        break;
    case ATOLL_ADMIN_MOVE:
    case ATOLL_ADMIN_PIN:
        *method = "POST";
        snprintf(path, cap, "/v1/areas/%s/%s", arg, a->route == ATOLL_ADMIN_MOVE ? "move" : "pin");
        snprintf(body, bcap, "{\"node\":\"%s\"}", a->node);
        break;
    case ATOLL_ADMIN_UNPIN:
        *method = "DELETE", snprintf(path, cap, "/v1/areas/%s/pin", arg);
        break;
    case ATOLL_ADMIN_DRAIN:
        *method = "POST", snprintf(path, cap, "/v1/nodes/%s/drain", arg);
        if (a->stop)
            snprintf(body, bcap, "{\"stop\":true}");
        break;
    case ATOLL_ADMIN_DRAIN_STATUS:
        *method = "GET", snprintf(path, cap, "/v1/nodes/%s/drain", arg);
        break;
    }
}

/* The body of a move, pin or drain accepted: what jansson reads in it must say the same. */
static void
check_body(const atoll__admin_action *a, const uint8_t *body, size_t len)
{
    if (a->route == ATOLL_ADMIN_DRAIN && len == 0) {
        CHECK(!a->stop);
        return;
    }
    if (a->route != ATOLL_ADMIN_MOVE && a->route != ATOLL_ADMIN_PIN &&
        a->route != ATOLL_ADMIN_DRAIN) {
        CHECK(len == 0);
        return;
    }
    json_t *o = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, NULL);
    CHECK(json_is_object(o));
    if (a->route == ATOLL_ADMIN_DRAIN) {
        json_t *stop = json_object_get(o, "stop");
        CHECK(json_object_size(o) == (stop ? 1u : 0u));
        CHECK(stop == NULL || json_is_boolean(stop));
        CHECK(a->stop == json_is_true(stop));
    } else {
        json_t *node = json_object_get(o, "node");
        CHECK(json_object_size(o) == 1 && node != NULL);
        if (json_is_string(node)) {
            CHECK(strcmp(json_string_value(node), a->node) == 0);
        } else {
            CHECK(json_is_integer(node));
            char num[24];
            snprintf(num, sizeof num, "%lld", (long long)json_integer_value(node));
            CHECK(strcmp(num, a->node) == 0);
        }
    }
    json_decref(o);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t line = nl ? (size_t)(nl - data) : size;
    char *head = malloc(line + 1);
    memcpy(head, data, line);
    head[line] = '\0';
    char *sp = strchr(head, ' ');
    const char *method = head, *path = "";
    if (sp != NULL) {
        *sp = '\0';
        path = sp + 1;
    }
    size_t blen = nl ? size - line - 1 : 0;
    uint8_t *body = malloc(blen ? blen : 1);
    if (blen)
        memcpy(body, nl + 1, blen);

    atoll__admin_action a, again;
    char err[300], err2[300];
    memset(err, 'x', sizeof err);
    int st = atoll__admin_parse(method, path, blen ? body : NULL, blen, &a, err, sizeof err);
    CHECK(st == 200 || st == 400 || st == 404 || st == 405 || st == 413 || st == 414);
    CHECK(memchr(err, '\0', sizeof err) != NULL);
    CHECK((st == 200) == (err[0] == '\0'));
    CHECK(atoll__utf8_valid((const uint8_t *)err, strlen(err)));
    CHECK((st == 414) == (strlen(path) > ATOLL_ADMIN_URL_MAX));
    CHECK((st == 405) == (a.allow != NULL));
    if (a.allow != NULL) {
        bool known = false;
        for (size_t i = 0; i < sizeof ALLOWS / sizeof ALLOWS[0]; i++)
            known |= strcmp(a.allow, ALLOWS[i]) == 0;
        CHECK(known);
        /* the method refused is none of those allowed */
        const char *p = a.allow;
        while (*p) {
            size_t n = strcspn(p, ",");
            CHECK(!(strlen(method) == n && strncmp(p, method, n) == 0));
            p += n;
            while (*p == ',' || *p == ' ')
                p++;
        }
    }
    if (st == 200) {
        CHECK(blen <= ATOLL_ADMIN_BODY_MAX);
        CHECK(takes_area(a.route) ? atoll__admin_area_valid(a.area, strlen(a.area))
                                  : a.area[0] == '\0');
        CHECK(takes_node(a.route) ? atoll__admin_node_valid(a.node, strlen(a.node))
                                  : a.node[0] == '\0');
        CHECK(!a.stop || a.route == ATOLL_ADMIN_DRAIN);
        if (takes_area(a.route) ||
            a.route == ATOLL_ADMIN_DRAIN || a.route == ATOLL_ADMIN_DRAIN_STATUS) {
            char ref[ATOLL_ADMIN_URL_MAX + 1];
            CHECK(reference_argument(path, ref, sizeof ref) >= 0);
            CHECK(strcmp(ref, takes_area(a.route) ? a.area : a.node) == 0);
        }
        check_body(&a, body, blen);
    }

    /* The same again. */
    int st2 = atoll__admin_parse(method, path, blen ? body : NULL, blen, &again, err2,
                                 sizeof err2);
    CHECK(st2 == st && strcmp(err, err2) == 0);
    CHECK(again.route == a.route && again.stop == a.stop && again.allow == a.allow);
    CHECK(strcmp(again.area, a.area) == 0 && strcmp(again.node, a.node) == 0);

    /* Written back, it parses into the same action. */
    if (st == 200) {
        const char *m2 = NULL;
        char path2[ATOLL_ADMIN_URL_MAX + 1], body2[200];
        write_back(&a, size % 2 == 1, &m2, path2, sizeof path2, body2, sizeof body2);
        CHECK(atoll__admin_parse(m2, path2, (const uint8_t *)body2, strlen(body2), &again, err2,
                                 sizeof err2) == 200);
        CHECK(again.route == a.route && again.stop == a.stop);
        CHECK(strcmp(again.area, a.area) == 0 && strcmp(again.node, a.node) == 0);
    }
    free(body);
    free(head);
    return 0;
}
