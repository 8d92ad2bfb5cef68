/* ctl.c -- `atoll ctl`: the admin API's client for operators (app.h), over libcurl.
 *
 *   atoll ctl [--admin HOST:PORT] [--token-file PATH] [--json] COMMAND [ARGS]
 *
 * One command is one request (drain --wait: one, then one every 500 ms until the drain
 * ends). For people it prints aligned tables, built from the members each answer
 * has: a member that is missing or null is "-", so a node that knows less than
 * another (this node alone, against the cluster) still prints; --json prints the
 * server's JSON as it came, for scripts. The routes and answers are in
 * docs/operations.md ("Admin API and atoll ctl").
 *
 * Where the node is: --admin, else ATOLL_ADMIN, else 127.0.0.1:9000. The token: the
 * file of --token-file, else ATOLL_ADMIN_TOKEN_FILE's, else ATOLL_ADMIN_TOKEN (the
 * node's own variables for admin.token_file and admin.token, so one environment serves
 * both); never on the command line, where other users of the machine would see it.
 *
 * Exit status: 0 done, 1 the node answered an error (its message is printed), 2 usage,
 * 3 the node cannot be reached (or did not answer in time, or not with HTTP).
 */
#include "app.h"

#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { CTL_OK = 0, CTL_ANSWERED_ERROR = 1, CTL_USAGE = 2, CTL_UNREACHABLE = 3 };

#define CTL_DEFAULT_ADMIN "127.0.0.1:9000"
/* The node answers within its deadline (ATOLL_ADMIN_DEADLINE_MS, then 504); a little
 * more here, so that the node's 504 is what is seen. */
#define CTL_TIMEOUT_MS (ATOLL_ADMIN_DEADLINE_MS + 5000)
#define CTL_CONNECT_TIMEOUT_MS 3000
#define CTL_POLL_MS 500

typedef struct {
    char base[200];       /* http://HOST:PORT */
    char *auth;           /* "Authorization: Bearer TOKEN", or NULL */
    bool json;
    CURL *curl;
} ctl;

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: atoll ctl [--admin HOST:PORT] [--token-file PATH] [--json] COMMAND [ARGS]\n"
            "\n"
            "Asks a node's admin API (atoll run --admin HOST:PORT).\n"
            "\n"
            "commands:\n"
            "  status                 the nodes: id, name, roles, state, load, areas, players\n"
            "  areas                  the areas: type, node, epoch, players, load, messages\n"
            "                         a second, the node it is pinned to\n"
            "  players AREA           the players of an area\n"
            "  move AREA NODE         moves a running area to NODE (a name or a number)\n"
            "  pin AREA NODE          pins AREA to NODE: placement keeps it there\n"
            "  unpin AREA             removes AREA's pin\n"
            "  drain NODE [--stop] [--wait]\n"
            "                         moves every area off NODE; --stop: NODE stops once\n"
            "                         drained; --wait: follows the drain every 500 ms until\n"
            "                         it ends\n"
            "  drain-status NODE [--wait]\n"
            "                         how far the drain of NODE is (--wait: until it ends)\n"
            "  metrics                the node's metrics (Prometheus text)\n"
            "\n"
            "options:\n"
            "  --admin HOST:PORT      the node's admin address (else $ATOLL_ADMIN, else\n"
            "                         " CTL_DEFAULT_ADMIN ")\n"
            "  --token-file PATH      a file holding the node's admin token (else the file of\n"
            "                         $ATOLL_ADMIN_TOKEN_FILE, else $ATOLL_ADMIN_TOKEN)\n"
            "  --json                 prints the node's JSON as it is\n"
            "  -h, --help             this text\n"
            "\n"
            "exit status: 0 done, 1 the node answered an error, 2 usage, 3 the node cannot be\n"
            "reached\n");
}

/* ---- requests ----------------------------------------------------------------------- */

static size_t
on_data(char *p, size_t size, size_t n, void *arg)
{
    atoll__buf_append(arg, p, size * n);
    return size * n;
}

/* One request: path is already escaped, body NULL for none. CTL_OK with the HTTP status
 * at *status and the body in *out (NUL-terminated), or CTL_UNREACHABLE after a line on
 * stderr. */
static int
request(ctl *c, const char *method, const char *path, const char *body, long *status,
        atoll__buf *out)
{
    char url[1400];
    snprintf(url, sizeof url, "%s%s", c->base, path);
    out->len = 0;
    curl_easy_reset(c->curl);
    struct curl_slist *headers = NULL;
    if (c->auth != NULL)
        headers = curl_slist_append(headers, c->auth);
    if (body != NULL)
        headers = curl_slist_append(headers, "Content-Type: application/json");
    /* The body is small: sent with the head, not after a 100 Continue. */
    headers = curl_slist_append(headers, "Expect:");
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)CTL_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, (long)CTL_TIMEOUT_MS);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, out);
    /* The token goes to this node only: no redirect is followed, no proxy is used. */
    curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c->curl, CURLOPT_NOPROXY, "*");
    /* The path as built: "." and ".." are a node's name or an area's id here, not
     * segments for curl to squash ("/v1/nodes/../drain" is node ".."). */
    curl_easy_setopt(c->curl, CURLOPT_PATH_AS_IS, 1L);
    if (body != NULL) {
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    CURLcode rc = curl_easy_perform(c->curl);
    curl_slist_free_all(headers);
    atoll__buf_push(out, '\0');
    out->len--;
    if (rc != CURLE_OK) {
        fprintf(stderr, "atoll ctl: cannot reach the admin API at %s: %s\n", c->base + 7,
                curl_easy_strerror(rc));
        return CTL_UNREACHABLE;
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, status);
    return CTL_OK;
}

/* The node's answer read: CTL_OK with the JSON at *root (an object, the caller's to
 * json_decref) for a 2xx, else a line on stderr and CTL_ANSWERED_ERROR (the node said
 * why, or sent something that is not its API's) . */
static int
answer(ctl *c, long status, const atoll__buf *body, json_t **root)
{
    const char *text = (const char *)atoll__buf_data(body);
    json_t *j = json_loadb(text ? text : "", body->len, 0, NULL);
    *root = NULL;
    if (status >= 200 && status < 300 && json_is_object(j)) {
        *root = j;
        return CTL_OK;
    }
    const char *msg = json_string_value(json_object_get(j, "error"));
    if (msg != NULL)
        fprintf(stderr, "atoll ctl: %s (HTTP %ld)\n", msg, status);
    else
        fprintf(stderr, "atoll ctl: HTTP %ld from %s, not an answer of the admin API\n", status,
                c->base + 7);
    json_decref(j);
    return CTL_ANSWERED_ERROR;
}

/* request + answer; with --json the body is printed as it came (a 2xx only: an error
 * is said on stderr either way). */
static int
ask(ctl *c, const char *method, const char *path, const char *body, json_t **root)
{
    atoll__buf out = ATOLL__BUF_INIT;
    long status = 0;
    *root = NULL;
    int rc = request(c, method, path, body, &status, &out);
    if (rc == CTL_OK)
        rc = answer(c, status, &out, root);
    if (rc == CTL_OK && c->json)
        printf("%s%s", (const char *)atoll__buf_data(&out),
               out.len > 0 && atoll__buf_data(&out)[out.len - 1] == '\n' ? "" : "\n");
    atoll__buf_fini(&out);
    return rc;
}

/* A path segment percent-encoded: "room 1" -> "room%201". The caller frees it. */
static char *
segment(ctl *c, const char *s)
{
    char *e = curl_easy_escape(c->curl, s, (int)strlen(s));
    char *copy = atoll__strndup(e, strlen(e));
    curl_free(e);
    return copy;
}

/* ---- tables --------------------------------------------------------------------------- */

#define TABLE_COLS 10

typedef struct {
    size_t ncols;
    const char *head[TABLE_COLS];
    bool right[TABLE_COLS]; /* numbers are aligned right */
    char **cells;           /* row after row */
    size_t ncells, cap;
} table;

static void
table_add(table *t, const char *text)
{
    t->cells = atoll__grow(t->cells, t->ncells, &t->cap, sizeof *t->cells, 64);
    t->cells[t->ncells++] = atoll__strndup(text, strlen(text));
}

/* A member as a cell: text as it is, numbers with `decimals` places (integers whole),
 * booleans as yes/no, an array of text joined by commas; missing or null: "-". */
static void
table_cell(table *t, const json_t *v, int decimals)
{
    char text[256];
    if (json_is_string(v)) {
        table_add(t, json_string_value(v));
        return;
    }
    if (json_is_integer(v))
        snprintf(text, sizeof text, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(text, sizeof text, "%.*f", decimals, json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(text, sizeof text, "%s", json_is_true(v) ? "yes" : "no");
    else if (json_is_array(v)) {
        size_t n = 0;
        text[0] = '\0';
        for (size_t i = 0; i < json_array_size(v); i++) {
            const char *s = json_string_value(json_array_get(v, i));
            if (s != NULL)
                n += (size_t)snprintf(text + n, n < sizeof text ? sizeof text - n : 0, "%s%s",
                                      n > 0 ? "," : "", s);
        }
        if (n == 0)
            snprintf(text, sizeof text, "-");
    } else
        snprintf(text, sizeof text, "-");
    table_add(t, text);
}

static void
table_print(table *t)
{
    size_t width[TABLE_COLS] = {0};
    for (size_t i = 0; i < t->ncols; i++)
        width[i] = strlen(t->head[i]);
    for (size_t i = 0; i < t->ncells; i++) {
        size_t w = strlen(t->cells[i]);
        if (w > width[i % t->ncols])
            width[i % t->ncols] = w;
    }
    for (size_t i = 0; i < t->ncells + t->ncols; i++) {
        size_t col = i % t->ncols;
        const char *s = i < t->ncols ? t->head[i] : t->cells[i - t->ncols];
        bool last = col == t->ncols - 1;
        int w = (int)width[col];
        if (t->right[col])
            printf("%*s%s", w, s, last ? "\n" : "  ");
        else if (last)
            printf("%s\n", s);
        else
            printf("%-*s  ", w, s);
    }
    for (size_t i = 0; i < t->ncells; i++)
        atoll__free(t->cells[i]);
    atoll__free(t->cells);
}

/* ---- the commands --------------------------------------------------------------------- */

static int
cmd_status(ctl *c)
{
    json_t *root = NULL;
    int rc = ask(c, "GET", "/v1/status", NULL, &root);
    if (rc != CTL_OK || c->json) {
        json_decref(root);
        return rc;
    }
    const char *coord = json_string_value(json_object_get(root, "coordinator"));
    printf("coordinator: %s\n", coord ? coord : "-");
    table t = {7, {"NODE", "NAME", "ROLES", "STATE", "LOAD", "AREAS", "PLAYERS"},
               {true, false, false, false, true, true, true}};
    json_t *nodes = json_object_get(root, "nodes"), *n;
    size_t i;
    json_array_foreach(nodes, i, n) {
        table_cell(&t, json_object_get(n, "id"), 0);
        table_cell(&t, json_object_get(n, "name"), 0);
        table_cell(&t, json_object_get(n, "roles"), 0);
        table_cell(&t, json_object_get(n, "state"), 0);
        table_cell(&t, json_object_get(n, "load"), 2);
        table_cell(&t, json_object_get(n, "areas"), 0);
        table_cell(&t, json_object_get(n, "players"), 0);
    }
    table_print(&t);
    json_decref(root);
    return CTL_OK;
}

static int
cmd_areas(ctl *c)
{
    json_t *root = NULL;
    int rc = ask(c, "GET", "/v1/areas", NULL, &root);
    if (rc != CTL_OK || c->json) {
        json_decref(root);
        return rc;
    }
    table t = {9,
               {"AREA", "TYPE", "NODE", "WORKER", "EPOCH", "PLAYERS", "LOAD", "MSG/S", "PINNED"},
               {false, false, false, true, true, true, true, true, false}};
    json_t *areas = json_object_get(root, "areas"), *a;
    size_t i;
    json_array_foreach(areas, i, a) {
        table_cell(&t, json_object_get(a, "id"), 0);
        table_cell(&t, json_object_get(a, "type"), 0);
        table_cell(&t, json_object_get(a, "node"), 0);
        table_cell(&t, json_object_get(a, "worker"), 0);
        table_cell(&t, json_object_get(a, "epoch"), 0);
        table_cell(&t, json_object_get(a, "players"), 0);
        table_cell(&t, json_object_get(a, "load"), 2);
        table_cell(&t, json_object_get(a, "messages_per_s"), 1);
        table_cell(&t, json_object_get(a, "pinned"), 0);
    }
    table_print(&t);
    json_decref(root);
    return CTL_OK;
}

static int
cmd_players(ctl *c, const char *area)
{
    char *seg = segment(c, area), path[400];
    snprintf(path, sizeof path, "/v1/areas/%s/players", seg);
    atoll__free(seg);
    json_t *root = NULL;
    int rc = ask(c, "GET", path, NULL, &root);
    if (rc != CTL_OK || c->json) {
        json_decref(root);
        return rc;
    }
    const char *node = json_string_value(json_object_get(root, "node"));
    printf("area %s on %s\n", area, node ? node : "-");
    table t = {2, {"UID", "CONNECTED"}, {false, false}};
    json_t *players = json_object_get(root, "players"), *p;
    size_t i;
    json_array_foreach(players, i, p) {
        table_cell(&t, json_object_get(p, "uid"), 0);
        table_cell(&t, json_object_get(p, "connected"), 0);
    }
    table_print(&t);
    json_decref(root);
    return CTL_OK;
}

/* The body {"node":NODE}, NODE a name or a number as the command line gave it. */
static char *
node_body(const char *node)
{
    json_t *o = json_pack("{s:s}", "node", node);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

static int
cmd_move(ctl *c, const char *area, const char *node)
{
    char *seg = segment(c, area), path[400];
    snprintf(path, sizeof path, "/v1/areas/%s/move", seg);
    atoll__free(seg);
    char *body = node_body(node);
    json_t *root = NULL;
    int rc = body ? ask(c, "POST", path, body, &root) : CTL_USAGE;
    free(body);
    if (rc != CTL_OK || c->json) {
        json_decref(root);
        return rc;
    }
    const char *from = json_string_value(json_object_get(root, "from"));
    const char *to = json_string_value(json_object_get(root, "to"));
    printf("moved %s from %s to %s", area, from ? from : "-", to ? to : node);
    json_t *epoch = json_object_get(root, "epoch"), *pause = json_object_get(root, "pause_ms");
    if (json_is_integer(epoch))
        printf(", epoch %lld", (long long)json_integer_value(epoch));
    if (json_is_number(pause))
        printf(", paused %.1f ms", json_number_value(pause));
    printf("\n");
    json_decref(root);
    return CTL_OK;
}

/* pin (node given) or unpin (node NULL). */
static int
cmd_pin(ctl *c, const char *area, const char *node)
{
    char *seg = segment(c, area), path[400];
    snprintf(path, sizeof path, "/v1/areas/%s/pin", seg);
    atoll__free(seg);
    char *body = node ? node_body(node) : NULL;
    json_t *root = NULL;
    int rc = node && !body ? CTL_USAGE : ask(c, node ? "POST" : "DELETE", path, body, &root);
    free(body);
    if (rc != CTL_OK || c->json) {
        json_decref(root);
        return rc;
    }
    const char *pinned = json_string_value(json_object_get(root, "pinned"));
    if (pinned != NULL)
        printf("%s pinned to %s\n", area, pinned);
    else
        printf("%s not pinned\n", area);
    json_decref(root);
    return CTL_OK;
}

/* "drain a2: 37/100 areas moved, 2 waiting to end (lobby-1, lobby-2)", with the state
 * when it is not "draining". */
static void
drain_line(const json_t *d, const char *node, char *out, size_t cap)
{
    const char *state = json_string_value(json_object_get(d, "state"));
    json_t *total = json_object_get(d, "areas_total"), *left = json_object_get(d, "areas_left");
    json_t *waiting = json_object_get(d, "waiting");
    size_t n = (size_t)snprintf(out, cap, "drain %s:", node);
    if (json_is_integer(total) && json_is_integer(left))
        n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, " %lld/%lld areas moved",
                              (long long)(json_integer_value(total) - json_integer_value(left)),
                              (long long)json_integer_value(total));
    if (json_array_size(waiting) > 0) {
        n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, ", %zu waiting to end (",
                              json_array_size(waiting));
        for (size_t i = 0; i < json_array_size(waiting) && i < 5; i++) {
            const char *id = json_string_value(json_array_get(waiting, i));
            n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s", i ? ", " : "",
                                  id ? id : "?");
        }
        n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s)",
                              json_array_size(waiting) > 5 ? ", ..." : "");
    }
    if (state != NULL && strcmp(state, "draining") != 0)
        n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, " (%s)", state);
    if (json_is_true(json_object_get(d, "stop")))
        snprintf(out + n, n < cap ? cap - n : 0, "; the node stops once drained");
}

static bool
drain_over(const json_t *d)
{
    const char *state = json_string_value(json_object_get(d, "state"));
    return state != NULL && (strcmp(state, "done") == 0 || strcmp(state, "stopped") == 0);
}

/* drain (start: POST) or drain-status (only look: GET), followed with --wait. */
static int
cmd_drain(ctl *c, const char *node, bool start, bool stop, bool wait)
{
    char *seg = segment(c, node), path[400];
    snprintf(path, sizeof path, "/v1/nodes/%s/drain", seg);
    atoll__free(seg);
    json_t *d = NULL;
    int rc = start ? ask(c, "POST", path, stop ? "{\"stop\":true}" : "{}", &d)
                   : ask(c, "GET", path, NULL, &d);
    char line[600], last[600] = "";
    while (rc == CTL_OK) {
        if (!c->json) {
            drain_line(d, node, line, sizeof line);
            if (strcmp(line, last) != 0)
                printf("%s\n", line);
            snprintf(last, sizeof last, "%s", line);
        }
        fflush(stdout);
        if (!wait || drain_over(d))
            break;
        json_decref(d);
        d = NULL;
        struct timespec pause = {0, CTL_POLL_MS * 1000000L};
        nanosleep(&pause, NULL);
        rc = ask(c, "GET", path, NULL, &d);
    }
    json_decref(d);
    return rc;
}

static int
cmd_metrics(ctl *c)
{
    atoll__buf out = ATOLL__BUF_INIT;
    long status = 0;
    int rc = request(c, "GET", "/metrics", NULL, &status, &out);
    if (rc == CTL_OK && status == 200) {
        fwrite(atoll__buf_data(&out), 1, out.len, stdout);
    } else if (rc == CTL_OK) {
        json_t *root = NULL;
        rc = answer(c, status, &out, &root); /* an error: said on stderr */
        json_decref(root);
        if (rc == CTL_OK)
            rc = CTL_ANSWERED_ERROR;
    }
    atoll__buf_fini(&out);
    return rc;
}

/* ---- the command line ------------------------------------------------------------------- */

/* The token's header line from --token-file, ATOLL_ADMIN_TOKEN_FILE or ATOLL_ADMIN_TOKEN:
 * CTL_OK with c->auth (NULL: no token), or CTL_USAGE after a line on stderr. */
static int
read_token(ctl *c, const char *file)
{
    const char *env_file = getenv("ATOLL_ADMIN_TOKEN_FILE"), *env = getenv("ATOLL_ADMIN_TOKEN");
    if (file == NULL && env_file != NULL && env_file[0] != '\0') {
        if (env != NULL && env[0] != '\0') {
            fprintf(stderr, "atoll ctl: ATOLL_ADMIN_TOKEN_FILE and ATOLL_ADMIN_TOKEN both give "
                            "the token: give one\n");
            return CTL_USAGE;
        }
        file = env_file;
    }
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (file != NULL) {
        char err[600];
        if (atoll__secret_read_file("--token-file", file, 1, &bytes, &len, err, sizeof err) !=
            ATOLL_OK) {
            fprintf(stderr, "atoll ctl: %s\n", err);
            return CTL_USAGE;
        }
    } else if (env != NULL && env[0] != '\0') {
        len = strlen(env);
        bytes = atoll__malloc(len);
        memcpy(bytes, env, len);
    } else {
        return CTL_OK;
    }
    static const char head[] = "Authorization: Bearer ";
    c->auth = atoll__malloc(sizeof head + len);
    memcpy(c->auth, head, sizeof head - 1);
    memcpy(c->auth + sizeof head - 1, bytes, len);
    c->auth[sizeof head - 1 + len] = '\0';
    atoll__secret_free(bytes, len);
    if (strlen(c->auth) != sizeof head - 1 + len || strpbrk(c->auth, "\r\n") != NULL) {
        fprintf(stderr, "atoll ctl: the token holds a NUL or a line break\n");
        return CTL_USAGE;
    }
    return CTL_OK;
}

/* http://HOST:PORT of --admin (brackets for an IPv6 address): false when it is not
 * HOST:PORT. */
static bool
set_base(ctl *c, const char *admin)
{
    const char *host;
    size_t hl;
    int port;
    if (!atoll__split_hostport(admin, &host, &hl, &port) || port == 0 || hl > 128)
        return false;
    bool v6 = memchr(host, ':', hl) != NULL;
    snprintf(c->base, sizeof c->base, "http://%s%.*s%s:%d", v6 ? "[" : "", (int)hl, host,
             v6 ? "]" : "", port);
    return true;
}

static const struct option ctl_options[] = {
    {"admin", required_argument, NULL, 'a'},
    {"token-file", required_argument, NULL, 't'},
    {"json", no_argument, NULL, 'j'},
    {"stop", no_argument, NULL, 's'},
    {"wait", no_argument, NULL, 'w'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* The command and its arguments: the exit status. */
static int
run_command(ctl *c, int argc, char **argv, bool stop, bool wait)
{
    const char *cmd = argv[0];
    /* How many arguments each command takes. */
    static const struct {
        const char *name;
        int args;
    } takes[] = {{"status", 0}, {"areas", 0}, {"players", 1}, {"move", 2},
                 {"pin", 2},    {"unpin", 1}, {"drain", 1},   {"drain-status", 1},
                 {"metrics", 0}};
    int want = -1;
    for (size_t i = 0; i < sizeof takes / sizeof takes[0]; i++)
        if (strcmp(cmd, takes[i].name) == 0)
            want = takes[i].args;
    if (want < 0) {
        fprintf(stderr, "atoll ctl: unknown command '%s' (try 'atoll ctl --help')\n", cmd);
        return CTL_USAGE;
    }
    if (argc - 1 != want) {
        fprintf(stderr, "atoll ctl: %s takes %d argument%s (try 'atoll ctl --help')\n", cmd, want,
                want == 1 ? "" : "s");
        return CTL_USAGE;
    }
    if ((stop && strcmp(cmd, "drain") != 0) ||
        (wait && strcmp(cmd, "drain") != 0 && strcmp(cmd, "drain-status") != 0)) {
        fprintf(stderr, "atoll ctl: --stop is drain's, --wait drain's and drain-status's\n");
        return CTL_USAGE;
    }
    if (!strcmp(cmd, "status"))
        return cmd_status(c);
    if (!strcmp(cmd, "areas"))
        return cmd_areas(c);
    if (!strcmp(cmd, "players"))
        return cmd_players(c, argv[1]);
    if (!strcmp(cmd, "move"))
        return cmd_move(c, argv[1], argv[2]);
    if (!strcmp(cmd, "pin"))
        return cmd_pin(c, argv[1], argv[2]);
    if (!strcmp(cmd, "unpin"))
        return cmd_pin(c, argv[1], NULL);
    if (!strcmp(cmd, "drain"))
        return cmd_drain(c, argv[1], true, stop, wait);
    if (!strcmp(cmd, "drain-status"))
        return cmd_drain(c, argv[1], false, false, wait);
    return cmd_metrics(c);
}

int
atoll__ctl_main(int argc, char **argv)
{
    ctl c = {.json = false};
    const char *admin = getenv("ATOLL_ADMIN"), *token_file = NULL;
    bool stop = false, wait = false;
    int ch;
    optind = 0; /* glibc's getopt starts over whole (a second call in one process) */
    while ((ch = getopt_long(argc, argv, "h", ctl_options, NULL)) != -1) {
        switch (ch) {
        case 'a':
            admin = optarg;
            break;
        case 't':
            token_file = optarg;
            break;
        case 'j':
            c.json = true;
            break;
        case 's':
            stop = true;
            break;
        case 'w':
            wait = true;
            break;
        case 'h':
            usage(stdout);
            return CTL_OK;
        default:
            usage(stderr);
            return CTL_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return CTL_USAGE;
    }
    if (admin == NULL || admin[0] == '\0')
        admin = CTL_DEFAULT_ADMIN;
    if (!set_base(&c, admin)) {
        fprintf(stderr, "atoll ctl: --admin wants HOST:PORT with a port from 1 to 65535, got "
                        "'%.150s'\n", admin);
        return CTL_USAGE;
    }
    int rc = read_token(&c, token_file);
    if (rc == CTL_OK) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(c.curl = curl_easy_init())) {
            fprintf(stderr, "atoll ctl: libcurl did not start\n");
            rc = CTL_UNREACHABLE;
        } else {
            rc = run_command(&c, argc - optind, argv + optind, stop, wait);
            curl_easy_cleanup(c.curl);
        }
        curl_global_cleanup();
    }
    if (c.auth != NULL) {
        OPENSSL_cleanse(c.auth, strlen(c.auth));
        atoll__free(c.auth);
    }
    fflush(stdout);
    return rc;
}
