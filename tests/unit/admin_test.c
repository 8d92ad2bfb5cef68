/* admin_test.c -- the admin API (src/admin): the parser of requests, every route and
 * every refusal (400, 404, 405, 413, 414), then a real server on 127.0.0.1 with a fake
 * table of operations, driven with libcurl: answers given at once and from other
 * threads after a delay, the token (missing, wrong, right, and /healthz without it),
 * the limits as a client meets them, an operation that answers after the deadline
 * (504), a client that hangs up before its answer, a stop with calls still waiting
 * (503, and their late answers dropped), and many clients at once. Under TSan (make
 * check's build-tsan) the answers from other threads are where races would show.
 */
#include "admin/admin.h"
#include "test.h"

#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

/* ---- the parser ----------------------------------------------------------------------- */

static int
parse(const char *method, const char *path, const char *body, atoll__admin_action *a, char *err)
{
    return atoll__admin_parse(method, path, (const uint8_t *)body, body ? strlen(body) : 0, a,
                              err, 300);
}

#define PARSES(method, path, body, route_)                                                 \
    do {                                                                                   \
        char e_[300];                                                                      \
        int st_ = parse(method, path, body, &a, e_);                                       \
        if (st_ != 200)                                                                    \
            fprintf(stderr, "  %s %s: %d %s\n", method, path, st_, e_);                    \
        ASSERT_EQ(st_, 200);                                                               \
        ASSERT_EQ(a.route, route_);                                                        \
    } while (0)

/* The request is refused with this status and a sentence holding `says`. */
#define REFUSED(method, path, body, status, says)                                          \
    do {                                                                                   \
        char e_[300];                                                                      \
        int st_ = parse(method, path, body, &a, e_);                                       \
        if (st_ != (status) || strstr(e_, (says)) == NULL)                                 \
            fprintf(stderr, "  %s %s: %d \"%s\"\n", method, path, st_, e_);                \
        ASSERT_EQ(st_, status);                                                            \
        ASSERT(strstr(e_, (says)) != NULL);                                                \
    } while (0)

TEST(every_route_parses_into_its_action)
{
    atoll__admin_action a;
    PARSES("GET", "/healthz", NULL, ATOLL_ADMIN_HEALTHZ);
    PARSES("GET", "/metrics", NULL, ATOLL_ADMIN_METRICS);
    PARSES("GET", "/v1/status", NULL, ATOLL_ADMIN_STATUS);
    PARSES("GET", "/v1/areas", NULL, ATOLL_ADMIN_AREAS);
    PARSES("GET", "/v1/areas/room-1/players", NULL, ATOLL_ADMIN_PLAYERS);
    ASSERT_STR(a.area, "room-1");
    ASSERT_STR(a.node, "");
    PARSES("POST", "/v1/areas/room-1/move", "{\"node\":\"a2\"}", ATOLL_ADMIN_MOVE);
    ASSERT_STR(a.area, "room-1");
    ASSERT_STR(a.node, "a2");
    PARSES("POST", "/v1/areas/room-1/move", " { \"node\" : 7 } ", ATOLL_ADMIN_MOVE);
    ASSERT_STR(a.node, "7"); /* a node's number, as its name would be given */
    PARSES("POST", "/v1/areas/lobby:1/pin", "{\"node\":\"area-node.2_b\"}", ATOLL_ADMIN_PIN);
    ASSERT_STR(a.area, "lobby:1");
    ASSERT_STR(a.node, "area-node.2_b");
    PARSES("DELETE", "/v1/areas/lobby:1/pin", NULL, ATOLL_ADMIN_UNPIN);
    ASSERT_STR(a.area, "lobby:1");
    PARSES("POST", "/v1/nodes/a2/drain", NULL, ATOLL_ADMIN_DRAIN);
    ASSERT_STR(a.node, "a2");
    ASSERT(!a.stop);
    PARSES("POST", "/v1/nodes/a2/drain", "{}", ATOLL_ADMIN_DRAIN);
    ASSERT(!a.stop);
    PARSES("POST", "/v1/nodes/a2/drain", "{\"stop\":true}", ATOLL_ADMIN_DRAIN);
    ASSERT(a.stop);
    PARSES("POST", "/v1/nodes/a2/drain", "{\"stop\":false}", ATOLL_ADMIN_DRAIN);
    ASSERT(!a.stop);
    PARSES("GET", "/v1/nodes/3/drain", NULL, ATOLL_ADMIN_DRAIN_STATUS);
    ASSERT_STR(a.node, "3");
    ASSERT(a.allow == NULL);
}

TEST(arguments_are_percent_decoded_one_by_one)
{
    atoll__admin_action a;
    PARSES("GET", "/v1/areas/room%2F1/players", NULL, ATOLL_ADMIN_PLAYERS);
    ASSERT_STR(a.area, "room/1"); /* a '/' in an id, not another segment */
    PARSES("GET", "/v1/areas/room%201/players", NULL, ATOLL_ADMIN_PLAYERS);
    ASSERT_STR(a.area, "room 1");
    PARSES("GET", "/v1/areas/caf%C3%a9/players", NULL, ATOLL_ADMIN_PLAYERS);
    ASSERT_STR(a.area, "caf\xc3\xa9"); /* either case of hex digits */
    PARSES("GET", "/v1/areas/a+b/players", NULL, ATOLL_ADMIN_PLAYERS);
    ASSERT_STR(a.area, "a+b"); /* '+' is a '+' in a path */
    PARSES("GET", "/v1/nodes/a%32/drain", NULL, ATOLL_ADMIN_DRAIN_STATUS);
    ASSERT_STR(a.node, "a2");
    /* An id of exactly ATOLL_AREA_ID_MAX bytes, each one encoded. */
    char path[400] = "/v1/areas/", id[ATOLL_AREA_ID_MAX + 1];
    for (int i = 0; i < ATOLL_AREA_ID_MAX; i++) {
        strcat(path, "%41");
        id[i] = 'A';
    }
    id[ATOLL_AREA_ID_MAX] = '\0';
    strcat(path, "/players");
    PARSES("GET", path, NULL, ATOLL_ADMIN_PLAYERS);
    ASSERT_STR(a.area, id);
    /* The fixed segments are compared as sent: an encoded "v1" is no route. */
    REFUSED("GET", "/%76%31/status", NULL, 404, "no such path");
    REFUSED("GET", "/v1/areas/room%2F1%2Fplayers", NULL, 404, "no such path");
}

TEST(paths_that_are_no_route_are_404)
{
    atoll__admin_action a;
    static const char *const paths[] = {
        "",          "/",           "v1/status",     "/v1",          "/v1/",
        "/v1/status/", "/v2/status", "/V1/status",   "/healthz/",    "/metrics/x",
        "/v1/areas/", "/v1/areas//players", "/v1/areas/x/y", "/v1/areas/x/players/extra",
        "/v1/nodes/a2", "/v1/nodes//drain", "/v1/nodes/a2/drain/x", "//v1/status",
        "/v1/areas/x/players/", "/v1/status?x=1",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        char e[300];
        int st = parse("GET", paths[i], NULL, &a, e);
        if (st != 404)
            fprintf(stderr, "  GET '%s': %d %s\n", paths[i], st, e);
        ASSERT_EQ(st, 404);
        ASSERT(a.allow == NULL);
    }
}

TEST(a_method_the_path_does_not_take_is_405_with_the_ones_it_does)
{
    atoll__admin_action a;
    REFUSED("POST", "/v1/status", NULL, 405, "this path takes GET only");
    ASSERT_STR(a.allow, "GET");
    REFUSED("HEAD", "/healthz", NULL, 405, "GET");
    ASSERT_STR(a.allow, "GET");
    REFUSED("PUT", "/metrics", NULL, 405, "GET");
    REFUSED("DELETE", "/v1/areas", NULL, 405, "GET");
    REFUSED("POST", "/v1/areas/x/players", NULL, 405, "GET");
    REFUSED("GET", "/v1/areas/x/move", NULL, 405, "POST");
    ASSERT_STR(a.allow, "POST");
    REFUSED("PUT", "/v1/areas/x/pin", NULL, 405, "POST, DELETE");
    ASSERT_STR(a.allow, "POST, DELETE");
    REFUSED("GET", "/v1/areas/x/pin", NULL, 405, "POST, DELETE");
    REFUSED("DELETE", "/v1/nodes/a/drain", NULL, 405, "GET, POST");
    ASSERT_STR(a.allow, "GET, POST");
    REFUSED("post", "/v1/nodes/a/drain", NULL, 405, "GET, POST"); /* methods are case-sensitive */
    /* The method is checked before the arguments: a bad id with the wrong method. */
    REFUSED("PATCH", "/v1/areas/%zz/move", NULL, 405, "POST");
}

TEST(bad_arguments_in_the_path_are_400)
{
    atoll__admin_action a;
    REFUSED("GET", "/v1/areas/room%2/players", NULL, 400, "without two hex digits");
    REFUSED("GET", "/v1/areas/room%/players", NULL, 400, "without two hex digits");
    REFUSED("GET", "/v1/areas/%zz/players", NULL, 400, "without two hex digits");
    REFUSED("GET", "/v1/areas/%00/players", NULL, 400, "not an area id");
    REFUSED("GET", "/v1/areas/a%00b/players", NULL, 400, "not an area id");
    REFUSED("GET", "/v1/areas/a%0Ab/players", NULL, 400, "not an area id");
    REFUSED("GET", "/v1/areas/a%22b/players", NULL, 400, "not an area id");
    REFUSED("GET", "/v1/areas/a%5Cb/players", NULL, 400, "not an area id");
    REFUSED("GET", "/v1/areas/a%7Fb/players", NULL, 400, "not an area id");
    REFUSED("GET", "/v1/areas/%FF/players", NULL, 400, "not an area id"); /* not UTF-8 */
    REFUSED("GET", "/v1/areas/%C3/players", NULL, 400, "not an area id");
    ASSERT_STR(a.area, "");
    char path[400] = "/v1/areas/";
    for (int i = 0; i <= ATOLL_AREA_ID_MAX; i++)
        strcat(path, "x");
    strcat(path, "/players");
    REFUSED("GET", path, NULL, 400, "longer than 64 bytes");
    REFUSED("POST", "/v1/nodes/a%20b/drain", NULL, 400, "not a node");
    REFUSED("POST", "/v1/nodes/a%2Fb/drain", NULL, 400, "not a node");
    REFUSED("GET", "/v1/nodes/a:b/drain", NULL, 400, "not a node");
    REFUSED("GET", "/v1/nodes/%/drain", NULL, 400, "not a node");
    char node[200] = "/v1/nodes/";
    for (int i = 0; i <= ATOLL_ADMIN_NODE_MAX; i++)
        strcat(node, "n");
    strcat(node, "/drain");
    REFUSED("GET", node, NULL, 400, "not a node");
    ASSERT_STR(a.node, "");
}

TEST(bodies_are_checked_member_by_member)
{
    atoll__admin_action a;
    REFUSED("POST", "/v1/areas/r/move", NULL, 400, "the body needs \"node\"");
    REFUSED("POST", "/v1/areas/r/move", "{}", 400, "the body needs \"node\"");
    REFUSED("POST", "/v1/areas/r/move", "{\"node\":\"\"}", 400, "the body needs \"node\"");
    REFUSED("POST", "/v1/areas/r/move", "{\"node\":\"a b\"}", 400, "the body needs \"node\"");
    REFUSED("POST", "/v1/areas/r/move", "{\"node\":\"a\\u0000b\"}", 400, "not a JSON object");
    REFUSED("POST", "/v1/areas/r/move", "{\"node\":0}", 400, "or its number (1 to 4095)");
    REFUSED("POST", "/v1/areas/r/move", "{\"node\":4096}", 400, "needs \"node\"");
    REFUSED("POST", "/v1/areas/r/move", "{\"node\":2.0}", 400, "needs \"node\"");
    REFUSED("POST", "/v1/areas/r/move", "{\"node\":true}", 400, "needs \"node\"");
    REFUSED("POST", "/v1/areas/r/move", "{\"node\":null}", 400, "needs \"node\"");
    REFUSED("POST", "/v1/areas/r/pin", "{\"node\":[\"a\"]}", 400, "needs \"node\"");
    REFUSED("POST", "/v1/areas/r/move", "node=a2", 400, "not a JSON object (line 1, column ");
    REFUSED("POST", "/v1/areas/r/move", "{\"node\":\"a2\"", 400, "not a JSON object");
    REFUSED("POST", "/v1/areas/r/move", "[\"a2\"]", 400, "not a JSON object");
    REFUSED("POST", "/v1/areas/r/move", "\"a2\"", 400, "not a JSON object");
    REFUSED("POST", "/v1/areas/r/move", "{\"node\":\"a2\"} {}", 400, "not a JSON object");
    REFUSED("POST", "/v1/areas/r/move", "{\"node\":\"a\",\"node\":\"b\"}", 400, "not a JSON");
    REFUSED("POST", "/v1/areas/r/move", "{\"node\":\"a2\",\"now\":true}", 400,
            "unknown member \"now\" in the body (it takes \"node\")");
    /* A NUL in a name or in text: jansson refuses it (without JSON_ALLOW_NUL). */
    REFUSED("POST", "/v1/areas/r/move", "{\"node\\u0000x\":\"a2\"}", 400, "not a JSON object");
    REFUSED("POST", "/v1/nodes/a/drain", "{\"stpo\":true}", 400, "unknown member \"stpo\"");
    REFUSED("POST", "/v1/nodes/a/drain", "{\"stop\":\"yes\"}", 400, "\"stop\" must be true or");
    REFUSED("POST", "/v1/nodes/a/drain", "{\"stop\":1}", 400, "\"stop\" must be true or false");
    REFUSED("POST", "/v1/nodes/a/drain", "true", 400, "not a JSON object");
    /* Routes that take no body refuse one rather than ignore it. */
    REFUSED("GET", "/v1/status", "{}", 400, "GET of this path takes no body");
    REFUSED("DELETE", "/v1/areas/r/pin", "{\"node\":\"a\"}", 400, "DELETE of this path takes no");
    REFUSED("GET", "/v1/nodes/a/drain", "{\"stop\":true}", 400, "takes no body");
    /* A member's name that cannot be shown as it is is not shown. */
    REFUSED("POST", "/v1/areas/r/move", "{\"n\\u00e9\":1}", 400, "unknown member in the body");
    REFUSED("POST", "/v1/areas/r/move",
            "{\"a_name_longer_than_thirty_two_bytes_in_all\":1}", 400, "unknown member in");
}

TEST(a_body_past_the_limit_is_413_and_a_path_past_its_limit_414)
{
    atoll__admin_action a;
    char e[300];
    /* Exactly ATOLL_ADMIN_BODY_MAX bytes: taken (the object padded with spaces). */
    size_t n = ATOLL_ADMIN_BODY_MAX;
    char *body = malloc(n + 2);
    memset(body, ' ', n + 1);
    memcpy(body, "{\"node\":\"a2\"}", 13);
    body[n] = '\0';
    ASSERT_EQ(atoll__admin_parse("POST", "/v1/areas/r/move", (uint8_t *)body, n, &a, e, sizeof e),
              200);
    ASSERT_STR(a.node, "a2");
    body[n] = ' ';
    body[n + 1] = '\0';
    ASSERT_EQ(atoll__admin_parse("POST", "/v1/areas/r/move", (uint8_t *)body, n + 1, &a, e,
                                 sizeof e),
              413);
    ASSERT(strstr(e, "larger than 65536 bytes") != NULL);
    /* The arguments of the path are checked before the body's size. */
    ASSERT_EQ(atoll__admin_parse("POST", "/v1/areas/%zz/move", (uint8_t *)body, n + 1, &a, e,
                                 sizeof e),
              400);
    free(body);

    char path[ATOLL_ADMIN_URL_MAX + 2];
    memset(path, 'x', sizeof path);
    path[0] = '/';
    path[ATOLL_ADMIN_URL_MAX] = '\0'; /* exactly the limit: no such path, but not too long */
    ASSERT_EQ(parse("GET", path, NULL, &a, e), 404);
    path[ATOLL_ADMIN_URL_MAX] = 'x';
    path[ATOLL_ADMIN_URL_MAX + 1] = '\0';
    ASSERT_EQ(parse("GET", path, NULL, &a, e), 414);
    ASSERT(strstr(e, "longer than 1024 bytes") != NULL);
    ASSERT_EQ(parse("POST", path, "{", &a, e), 414); /* before anything else */
}

TEST(the_rules_of_ids_and_nodes)
{
    ASSERT(atoll__admin_area_valid("room-1", 6));
    ASSERT(atoll__admin_area_valid("a/b c:d", 7));
    ASSERT(!atoll__admin_area_valid("", 0));
    ASSERT(!atoll__admin_area_valid("a\tb", 3));
    ASSERT(atoll__admin_node_valid("a2", 2));
    ASSERT(atoll__admin_node_valid("4095", 4));
    ASSERT(!atoll__admin_node_valid("a2 ", 3));
    ASSERT(!atoll__admin_node_valid("", 0));
}

/* ---- a real server -------------------------------------------------------------------- */

/* The operations of the tests: status answers at once, areas and players from another
 * thread after `delay_ms`, move after `late_ms` (past a short deadline: 504), pin is kept
 * for the test to answer (or the stop), drain echoes its arguments; unpin is absent
 * (501). Threads started for answers are joined by fake_join. */
typedef struct {
    atomic_int delay_ms;
    int late_ms;
    pthread_mutex_t mu;
    pthread_t threads[256];
    int nthreads;
    atoll__admin_call *held[8];
    int nheld;
    atomic_int calls;
} fake;

static fake F = {.delay_ms = 50, .late_ms = 600, .mu = PTHREAD_MUTEX_INITIALIZER};

typedef struct {
    atoll__admin_call *c;
    int ms;
    char json[200];
} later;

static void
sleep_ms(int ms)
{
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static void *
answer_later(void *arg)
{
    later *l = arg;
    sleep_ms(l->ms);
    atoll__admin_answer(l->c, 200, l->json, strlen(l->json));
    free(l);
    return NULL;
}

static void
answer_from_thread(atoll__admin_call *c, int ms, const char *json)
{
    later *l = calloc(1, sizeof *l);
    l->c = c;
    l->ms = ms;
    snprintf(l->json, sizeof l->json, "%s", json);
    pthread_mutex_lock(&F.mu);
    ASSERT(F.nthreads < 256);
    ASSERT_EQ(pthread_create(&F.threads[F.nthreads++], NULL, answer_later, l), 0);
    pthread_mutex_unlock(&F.mu);
}

static void
fake_join(void)
{
    for (;;) {
        pthread_mutex_lock(&F.mu);
        if (F.nthreads == 0) {
            pthread_mutex_unlock(&F.mu);
            return;
        }
        pthread_t t = F.threads[--F.nthreads];
        pthread_mutex_unlock(&F.mu);
        pthread_join(t, NULL);
    }
}

static void
op_status(void *ctx, atoll__admin_call *c)
{
    atomic_fetch_add(&F.calls, 1);
    static const char json[] = "{\"coordinator\":\"a1\",\"nodes\":[]}";
    atoll__admin_answer(c, 200, json, sizeof json - 1);
}

static void
op_areas(void *ctx, atoll__admin_call *c)
{
    atomic_fetch_add(&F.calls, 1);
    answer_from_thread(c, atomic_load(&F.delay_ms), "{\"areas\":[]}");
}

static void
op_players(void *ctx, const char *area, atoll__admin_call *c)
{
    atomic_fetch_add(&F.calls, 1);
    char json[200];
    snprintf(json, sizeof json, "{\"area\":\"%s\",\"players\":[]}", area);
    answer_from_thread(c, atomic_load(&F.delay_ms), json);
}

static void
op_move(void *ctx, const char *area, const char *node, atoll__admin_call *c)
{
    atomic_fetch_add(&F.calls, 1);
    answer_from_thread(c, F.late_ms, "{\"late\":true}");
}

static void
op_pin(void *ctx, const char *area, const char *node, atoll__admin_call *c)
{
    pthread_mutex_lock(&F.mu);
    F.held[F.nheld++] = c;
    pthread_mutex_unlock(&F.mu);
    atomic_fetch_add(&F.calls, 1);
}

static void
op_drain(void *ctx, const char *node, bool stop, atoll__admin_call *c)
{
    atomic_fetch_add(&F.calls, 1);
    if (strcmp(node, "fails") == 0) {
        atoll__admin_fail(c, 409, "node %s cannot drain: \"%s\"", node, "a reason");
        return;
    }
    char json[200];
    snprintf(json, sizeof json, "{\"node\":\"%s\",\"stop\":%s}", node, stop ? "true" : "false");
    atoll__admin_answer(c, 200, json, strlen(json));
}

static void
op_drain_status(void *ctx, const char *node, atoll__admin_call *c)
{
    atomic_fetch_add(&F.calls, 1);
    atoll__admin_fail(c, 404, "no drain of %s", node);
}

static void
op_metrics(void *ctx, atoll__buf *out)
{
    static const char text[] = "# TYPE atoll_areas gauge\natoll_areas{node=\"a1\"} 3\n";
    atoll__buf_append(out, text, sizeof text - 1);
}

static const atoll__admin_ops fake_ops = {
    .status = op_status,
    .areas = op_areas,
    .players = op_players,
    .move = op_move,
    .pin = op_pin,
    .drain = op_drain,
    .drain_status = op_drain_status,
    .metrics = op_metrics,
};

#define TOKEN "0123456789abcdef-token"

static atoll__admin *
start(const char *token, int *port)
{
    char err[300] = "";
    curl_global_init(CURL_GLOBAL_DEFAULT);
    atoll__admin *a = atoll__admin_start("127.0.0.1", 0, token, &fake_ops, port, err, sizeof err);
    if (a == NULL)
        fprintf(stderr, "  %s\n", err);
    ASSERT(a != NULL);
    ASSERT(*port > 0);
    return a;
}

typedef struct {
    long status;
    char body[4096];
    size_t len;
    char headers[4096];
    size_t hlen;
    CURLcode rc;
} http_answer;

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
    http_answer *h = arg;
    size_t k = size * n;
    if (h->len + k < sizeof h->body) {
        memcpy(h->body + h->len, p, k);
        h->len += k;
        h->body[h->len] = '\0';
    }
    return k;
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
    http_answer *h = arg;
    size_t k = size * n;
    if (h->hlen + k < sizeof h->headers) {
        memcpy(h->headers + h->hlen, p, k);
        h->hlen += k;
        h->headers[h->hlen] = '\0';
    }
    return k;
}

/* One request with curl: auth is a whole header line or NULL; timeout_ms 0 is 10 s. */
static http_answer
http(int port, const char *method, const char *path, const char *body, const char *auth,
     long timeout_ms)
{
    http_answer h = {0};
    char url[2200];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    struct curl_slist *hs = NULL;
    if (auth != NULL)
        hs = curl_slist_append(hs, auth);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms ? timeout_ms : 10000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &h);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    h.rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &h.status);
    curl_slist_free_all(hs);
    curl_easy_cleanup(c);
    return h;
}

#define GET(port, path) http((port), "GET", (path), NULL, NULL, 0)

static bool
has_header(const http_answer *h, const char *line)
{
    return strstr(h->headers, line) != NULL;
}

TEST(a_server_answers_every_route)
{
    int port;
    atoll__admin *a = start(NULL, &port);
    http_answer h = GET(port, "/v1/status");
    ASSERT_EQ(h.status, 200);
    ASSERT_STR(h.body, "{\"coordinator\":\"a1\",\"nodes\":[]}");
    ASSERT(has_header(&h, "Content-Type: application/json"));
    h = GET(port, "/v1/areas"); /* answered from another thread */
    ASSERT_EQ(h.status, 200);
    ASSERT_STR(h.body, "{\"areas\":[]}");
    h = GET(port, "/v1/areas/room%2F1/players?ignored=1");
    ASSERT_EQ(h.status, 200);
    ASSERT_STR(h.body, "{\"area\":\"room/1\",\"players\":[]}");
    h = http(port, "POST", "/v1/nodes/a2/drain", "{\"stop\":true}", NULL, 0);
    ASSERT_EQ(h.status, 200);
    ASSERT_STR(h.body, "{\"node\":\"a2\",\"stop\":true}");
    h = http(port, "POST", "/v1/nodes/a2/drain", NULL, NULL, 0);
    ASSERT_STR(h.body, "{\"node\":\"a2\",\"stop\":false}");
    h = http(port, "POST", "/v1/nodes/fails/drain", "{}", NULL, 0);
    ASSERT_EQ(h.status, 409);
    ASSERT_STR(h.body, "{\"error\":\"node fails cannot drain: \\\"a reason\\\"\",\"code\":409}");
    h = GET(port, "/v1/nodes/a2/drain");
    ASSERT_EQ(h.status, 404);
    ASSERT_STR(h.body, "{\"error\":\"no drain of a2\",\"code\":404}");
    h = GET(port, "/metrics");
    ASSERT_EQ(h.status, 200);
    ASSERT(has_header(&h, "Content-Type: text/plain; version=0.0.4"));
    ASSERT_STR(h.body, "# TYPE atoll_areas gauge\natoll_areas{node=\"a1\"} 3\n");
    h = GET(port, "/healthz");
    ASSERT_EQ(h.status, 200);
    ASSERT_STR(h.body, "{\"ok\":true}");
    /* An operation the program did not give. */
    h = http(port, "DELETE", "/v1/areas/r/pin", NULL, NULL, 0);
    ASSERT_EQ(h.status, 501);
    ASSERT_STR(h.body, "{\"error\":\"not available on this node\",\"code\":501}");
    /* The parser's refusals, as a client meets them. */
    h = GET(port, "/v1/nope");
    ASSERT_EQ(h.status, 404);
    ASSERT(strstr(h.body, "\"code\":404}") != NULL);
    h = http(port, "POST", "/v1/status", "{}", NULL, 0);
    ASSERT_EQ(h.status, 405);
    ASSERT(has_header(&h, "Allow: GET\r\n"));
    h = http(port, "PUT", "/v1/areas/r/pin", NULL, NULL, 0);
    ASSERT_EQ(h.status, 405);
    ASSERT(has_header(&h, "Allow: POST, DELETE\r\n"));
    h = http(port, "POST", "/v1/areas/r/move", "{\"node\":\"a b\"}", NULL, 0);
    ASSERT_EQ(h.status, 400);
    h = GET(port, "/v1/areas/%ff/players");
    ASSERT_EQ(h.status, 400);
    ASSERT(strstr(h.body, "not an area id") != NULL);
    ASSERT_EQ(atomic_load(&F.calls), 7);
    atoll__admin_stop(a);
    fake_join();
}

TEST(the_limits_as_a_client_meets_them)
{
    int port;
    atoll__admin *a = start(NULL, &port);
    /* A path too long: 414, from the head. */
    char path[ATOLL_ADMIN_URL_MAX + 32] = "/v1/areas/";
    while (strlen(path) <= ATOLL_ADMIN_URL_MAX)
        strcat(path, "x");
    http_answer h = GET(port, path);
    ASSERT_EQ(h.status, 414);
    ASSERT(strstr(h.body, "longer than 1024 bytes") != NULL);
    /* A body announced too large: 413 from the head, before it is read. */
    size_t n = ATOLL_ADMIN_BODY_MAX + 1;
    char *body = malloc(n + 1);
    memset(body, ' ', n);
    body[0] = '{';
    body[n - 1] = '}';
    body[n] = '\0';
    h = http(port, "POST", "/v1/areas/r/move", body, NULL, 0);
    ASSERT_EQ(h.status, 413);
    ASSERT(strstr(h.body, "larger than 65536 bytes") != NULL);
    /* The same body in chunks, whose size is known at its end only: 413 then. */
    h = http(port, "POST", "/v1/areas/r/move", body, "Transfer-Encoding: chunked", 0);
    ASSERT_EQ(h.status, 413);
    free(body);
    /* The server still serves. */
    h = GET(port, "/v1/status");
    ASSERT_EQ(h.status, 200);
    atoll__admin_stop(a);
    fake_join();
}

TEST(a_token_is_required_on_every_route_but_healthz)
{
    int port;
    atoll__admin *a = start(TOKEN, &port);
    http_answer h = GET(port, "/v1/status");
    ASSERT_EQ(h.status, 401);
    ASSERT(has_header(&h, "WWW-Authenticate: Bearer"));
    ASSERT(strstr(h.body, "needs a bearer token") != NULL);
    h = http(port, "GET", "/v1/status", NULL, "Authorization: Bearer wrong-token-of-some-length", 0);
    ASSERT_EQ(h.status, 401);
    ASSERT(has_header(&h, "WWW-Authenticate: Bearer"));
    ASSERT_STR(h.body, "{\"error\":\"the token is not valid\",\"code\":401}");
    /* A prefix of the token, the token and more, another scheme: all wrong. */
    h = http(port, "GET", "/v1/status", NULL, "Authorization: Bearer 0123456789abcdef", 0);
    ASSERT_EQ(h.status, 401);
    h = http(port, "GET", "/v1/status", NULL, "Authorization: Bearer " TOKEN "x", 0);
    ASSERT_EQ(h.status, 401);
    h = http(port, "GET", "/v1/status", NULL, "Authorization: Basic " TOKEN, 0);
    ASSERT_EQ(h.status, 401);
    ASSERT(strstr(h.body, "needs a bearer token") != NULL);
    /* Every route, and the refusals too: nothing is learnt without the token. */
    h = GET(port, "/metrics");
    ASSERT_EQ(h.status, 401);
    h = GET(port, "/v1/nope");
    ASSERT_EQ(h.status, 401);
    h = http(port, "POST", "/v1/areas/r/move", "{\"node\":\"a2\"}", NULL, 0);
    ASSERT_EQ(h.status, 401);
    ASSERT_EQ(atomic_load(&F.calls), 0);
    /* The token: any case of the scheme's name. */
    h = http(port, "GET", "/v1/status", NULL, "Authorization: Bearer " TOKEN, 0);
    ASSERT_EQ(h.status, 200);
    h = http(port, "GET", "/metrics", NULL, "Authorization: bearer " TOKEN, 0);
    ASSERT_EQ(h.status, 200);
    /* A supervisor's probe needs none. */
    h = GET(port, "/healthz");
    ASSERT_EQ(h.status, 200);
    atoll__admin_stop(a);
    fake_join();
}

TEST(an_answer_after_the_deadline_is_504_and_then_dropped)
{
    int port;
    atoll__admin *a = start(NULL, &port);
    atoll__admin_set_deadline_ms(a, 200);
    long t0 = (long)(atoll__now_ns() / 1000000);
    http_answer h = http(port, "POST", "/v1/areas/r/move", "{\"node\":\"a2\"}", NULL, 0);
    long took = (long)(atoll__now_ns() / 1000000) - t0;
    ASSERT_EQ(h.status, 504);
    ASSERT_STR(h.body, "{\"error\":\"the operation did not answer in time\",\"code\":504}");
    ASSERT(took >= 150 && took < 550);
    /* The late answer comes (600 ms) while the server serves others; it is dropped. */
    h = GET(port, "/v1/areas");
    ASSERT_EQ(h.status, 200);
    fake_join();
    h = GET(port, "/v1/status");
    ASSERT_EQ(h.status, 200);
    atoll__admin_stop(a);
}

TEST(a_client_that_hangs_up_before_its_answer)
{
    int port;
    atoll__admin *a = start(NULL, &port);
    F.delay_ms = 400;
    http_answer h = http(port, "GET", "/v1/areas", NULL, NULL, 100);
    ASSERT_EQ(h.rc, CURLE_OPERATION_TIMEDOUT); /* gone before the answer */
    fake_join(); /* the answer came, for a connection that is gone */
    F.delay_ms = 10;
    h = GET(port, "/v1/areas");
    ASSERT_EQ(h.status, 200);
    /* Many hang up at once. */
    F.delay_ms = 200;
    for (int i = 0; i < 10; i++)
        http(port, "GET", "/v1/areas/x/players", NULL, NULL, 20);
    atoll__admin_stop(a); /* some answers may still be on their way: they are dropped */
    fake_join();
}

typedef struct {
    int port;
    const char *method, *path, *body;
    http_answer h;  /* read once the thread is joined */
    atomic_bool done;
} client;

static void *
client_run(void *arg)
{
    client *c = arg;
    c->h = http(c->port, c->method, c->path, c->body, NULL, 0);
    atomic_store(&c->done, true);
    return NULL;
}

TEST(a_stop_answers_503_to_calls_waiting_and_drops_their_late_answers)
{
    int port;
    atoll__admin *a = start(NULL, &port);
    client cl[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        cl[i] = (client){port, "POST", "/v1/areas/r/pin", "{\"node\":\"a2\"}"};
        ASSERT_EQ(pthread_create(&t[i], NULL, client_run, &cl[i]), 0);
    }
    for (int i = 0; i < 500 && atomic_load(&F.calls) < 3; i++)
        sleep_ms(10);
    ASSERT_EQ(atomic_load(&F.calls), 3);
    /* One is answered before the stop, two are not. */
    atoll__admin_answer(F.held[0], 200, "{\"area\":\"r\",\"pinned\":\"a2\"}", 27);
    for (int i = 0; i < 500; i++) {
        int done = 0;
        for (int k = 0; k < 3; k++)
            done += atomic_load(&cl[k].done);
        if (done == 1)
            break;
        sleep_ms(10);
    }
    atoll__admin_stop(a);
    int ok = 0, stopped = 0;
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        ok += cl[i].h.status == 200;
        stopped += cl[i].h.status == 503;
        if (cl[i].h.status == 503)
            ASSERT_STR(cl[i].h.body,
                       "{\"error\":\"the admin server is stopping\",\"code\":503}");
    }
    ASSERT_EQ(ok, 1);
    ASSERT_EQ(stopped, 2);
    /* The operations answer after the server is gone: each answer is dropped and its
     * call freed (ASan would see a use after free or a leak). */
    atoll__admin_answer(F.held[1], 200, "{}", 2);
    atoll__admin_fail(F.held[2], 500, "too late");
    /* A new server on the same port later: the old one closed its socket. */
    char err[300];
    atoll__admin *b = atoll__admin_start("127.0.0.1", port, NULL, &fake_ops, NULL, err, sizeof err);
    ASSERT(b != NULL);
    atoll__admin_stop(b);
}

TEST(many_clients_at_once_with_answers_from_other_threads)
{
    int port;
    atoll__admin *a = start(NULL, &port);
    F.delay_ms = 5;
    enum { CLIENTS = 12, EACH = 8 };
    client cl[CLIENTS];
    pthread_t t[CLIENTS];
    for (int round = 0; round < EACH; round++) {
        for (int i = 0; i < CLIENTS; i++) {
            cl[i] = (client){port, "GET", i % 3 == 0 ? "/v1/status"
                                          : i % 3 == 1 ? "/v1/areas" : "/v1/areas/a%20b/players",
                             NULL};
            ASSERT_EQ(pthread_create(&t[i], NULL, client_run, &cl[i]), 0);
        }
        for (int i = 0; i < CLIENTS; i++) {
            pthread_join(t[i], NULL);
            ASSERT_EQ(cl[i].h.status, 200);
        }
        fake_join();
    }
    ASSERT_EQ(atomic_load(&F.calls), CLIENTS * EACH);
    atoll__admin_stop(a);
}

TEST(only_the_address_asked_is_bound_and_a_taken_one_is_said)
{
    int port;
    atoll__admin *a = start(NULL, &port);
    char err[300] = "";
    ASSERT(atoll__admin_start("127.0.0.1", port, NULL, &fake_ops, NULL, err, sizeof err) == NULL);
    char want[80];
    snprintf(want, sizeof want, "cannot listen on 127.0.0.1:%d: Address already in use", port);
    ASSERT_STR(err, want);
    /* 127.0.0.2 is loopback too, and was not bound by the server of 127.0.0.1. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(0x7f000002);
    ASSERT_EQ(connect(fd, (struct sockaddr *)&sa, sizeof sa), -1);
    close(fd);
    atoll__admin_stop(a);
    atoll__admin_stop(NULL);
}

TEST_MAIN(every_route_parses_into_its_action, arguments_are_percent_decoded_one_by_one,
          paths_that_are_no_route_are_404, a_method_the_path_does_not_take_is_405_with_the_ones_it_does,
          bad_arguments_in_the_path_are_400, bodies_are_checked_member_by_member,
          a_body_past_the_limit_is_413_and_a_path_past_its_limit_414, the_rules_of_ids_and_nodes,
          a_server_answers_every_route, the_limits_as_a_client_meets_them,
          a_token_is_required_on_every_route_but_healthz,
          an_answer_after_the_deadline_is_504_and_then_dropped,
          a_client_that_hangs_up_before_its_answer,
          a_stop_answers_503_to_calls_waiting_and_drops_their_late_answers,
          many_clients_at_once_with_answers_from_other_threads,
          only_the_address_asked_is_bound_and_a_taken_one_is_said)
