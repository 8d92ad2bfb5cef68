/* config.c -- node settings: defaults, `--set KEY=VALUE`, a file of them, ATOLL_*
 * environment variables, and their checks.
 *
 * Every setting has a typed field and a dotted key, so the same value can come from a
 * flag (--max-conns), from --set or a file (net.max_conns) or from the environment
 * (ATOLL_NET_MAX_CONNS); keys outside the framework's namespaces (net., log., node.,
 * area., session., auth., store., cluster., admin.) belong to the game and are kept as text for
 * it. The framework's keys are one table (settings[] below): --set, the file and the
 * environment all go through it, so a key known to one is known to all.
 */
#include "config.h"
#include "mail.h"
#include "../proto/proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

void
atoll__config_defaults(atoll__config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->host, sizeof c->host, "127.0.0.1");
    c->port = 3010;
    c->workers = 0;
    c->node_id = 1;
    snprintf(c->game, sizeof c->game, "echo");
    c->log_level = ATOLL_LOG_INFO;
    c->max_package = ATOLL_PKG_BODY_DEFAULT_MAX;
    c->max_conns = 100000;
    c->heartbeat_s = 10;
    c->heartbeat_timeout_s = 0;
    c->idle_timeout_s = 90;
    c->handshake_timeout_s = 10;
    c->output_cap = 1u << 20;
    c->rate_limit = 200;
    c->rate_burst = 0;
    c->dict = 1;
    c->slow_ms = 50;
    c->stall_ms = 5000;
    c->keep_ms = 30000;
    c->resume_ms = 30000;
    /* The library's default keeps nothing on disk (a node started by a test, or a game's
     * own main, writes no file it did not ask for); `atoll run` defaults to SQLite under
     * --data. */
    snprintf(c->store_url, sizeof c->store_url, "memory");
    /* fast by default: durable did not reach 0.8 of fast on this project's benchmark
     * (docs/performance.md, "Persistence"; docs/operations.md says why). */
    c->store_durable = 0;
    c->flush_ms = 100;
    c->store_timeout_ms = 5000;
    c->roles = ATOLL_ROLE_ALL;
    snprintf(c->node_name, sizeof c->node_name, "node");
    c->lease_ms = 1500;
    c->beat_ms = 300;
    c->link_ping_ms = 500;
    c->link_timeout_ms = 3000;
    c->call_timeout_ms = 5000;
    c->moves_per_cycle = 64;
    c->rebalance_start = 0.5;
    c->rebalance_stop = 0.2;
    c->rebalance_min_load = 0.25;
}

static int
parse_long(const char *v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end != '\0' || x < lo || x > hi)
        return -1;
    *out = x;
    return 0;
}

static int
parse_bool(const char *v, int *out)
{
    if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "on") || !strcmp(v, "yes"))
        *out = 1;
    else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "off") || !strcmp(v, "no"))
        *out = 0;
    else
        return -1;
    return 0;
}

/* ---- the framework's settings: one table ------------------------------------------ */

/* The C type of an integer setting's field, so that one parser stores them all. */
typedef enum { FIELD_INT, FIELD_U32, FIELD_SIZE, FIELD_DOUBLE } field_type;
#define FIELD_TYPE(field)                                                                  \
    _Generic(((atoll__config *)0)->field, int: FIELD_INT, uint32_t: FIELD_U32,             \
             size_t: FIELD_SIZE, double: FIELD_DOUBLE)

typedef struct setting_def setting_def;
/* Checks val and stores it in c: ATOLL_OK, or ATOLL_EINVAL with a sentence in err. */
typedef int setting_parse_fn(atoll__config *c, const setting_def *d, const char *val, char *err,
                             size_t errlen);

struct setting_def {
    const char *key;
    setting_parse_fn *parse;
    size_t offset;    /* parse_int, parse_flag: the field (offsetof) */
    field_type type;  /* parse_int: its C type */
    long lo, hi;      /* parse_int: the range; parse_text: bytes */
    const char *help; /* parse_int: what the number is, for its error */
};

static int
parse_int(atoll__config *c, const setting_def *d, const char *val, char *err, size_t errlen)
{
    long v;
    if (parse_long(val, d->lo, d->hi, &v) != 0) {
        snprintf(err, errlen, "%s must be an integer from %ld to %ld (%s)", d->key, d->lo, d->hi,
                 d->help);
        return ATOLL_EINVAL;
    }
    char *field = (char *)c + d->offset;
    switch (d->type) {
    case FIELD_INT:
        *(int *)field = (int)v;
        break;
    case FIELD_U32:
        *(uint32_t *)field = (uint32_t)v;
        break;
    case FIELD_SIZE:
        *(size_t *)field = (size_t)v;
        break;
    case FIELD_DOUBLE:
        *(double *)field = (double)v;
        break;
    }
    return ATOLL_OK;
}

static int
parse_flag(atoll__config *c, const setting_def *d, const char *val, char *err, size_t errlen)
{
    if (parse_bool(val, (int *)((char *)c + d->offset)) != 0) {
        snprintf(err, errlen, "%s must be true or false", d->key);
        return ATOLL_EINVAL;
    }
    return ATOLL_OK;
}

/* A setting kept as text only, read through atoll__config_get (a secret file when the
 * node starts). */
static int
parse_text(atoll__config *c, const setting_def *d, const char *val, char *err, size_t errlen)
{
    size_t len = strlen(val);
    if (len < (size_t)d->lo || len > (size_t)d->hi) {
        snprintf(err, errlen, "%s must be %ld to %ld bytes", d->key, d->lo, d->hi);
        return ATOLL_EINVAL;
    }
    return ATOLL_OK;
}

static int
parse_min_client_version(atoll__config *c, const setting_def *d, const char *val, char *err,
                         size_t errlen)
{
    if (val[0] != '\0' &&
        (strlen(val) >= sizeof c->min_client_version || !atoll__version_valid(val))) {
        snprintf(err, errlen, "net.min_client_version must be like 1.2.0 (or empty)");
        return ATOLL_EINVAL;
    }
    snprintf(c->min_client_version, sizeof c->min_client_version, "%s", val);
    return ATOLL_OK;
}

static int
parse_log_level(atoll__config *c, const setting_def *d, const char *val, char *err, size_t errlen)
{
    int lv = atoll__log_parse_level(val);
    if (lv < 0) {
        snprintf(err, errlen, "log.level must be error, warn, info or debug");
        return ATOLL_EINVAL;
    }
    c->log_level = lv;
    return ATOLL_OK;
}

static int
parse_durability(atoll__config *c, const setting_def *d, const char *val, char *err,
                 size_t errlen)
{
    if (strcmp(val, "durable") != 0 && strcmp(val, "fast") != 0) {
        snprintf(err, errlen, "store.durability must be durable or fast");
        return ATOLL_EINVAL;
    }
    c->store_durable = strcmp(val, "durable") == 0;
    return ATOLL_OK;
}

static int
parse_store_url(atoll__config *c, const setting_def *d, const char *val, char *err, size_t errlen)
{
    if (val[0] == '\0' || strlen(val) >= sizeof c->store_url) {
        snprintf(err, errlen, "store.url must be 1 to %zu bytes", sizeof c->store_url - 1);
        return ATOLL_EINVAL;
    }
    snprintf(c->store_url, sizeof c->store_url, "%s", val);
    return ATOLL_OK;
}

/* gate, area, coordinator, comma-separated in any order and combination; spaces around
 * a name are allowed (a file's `node.roles = gate, area`). */
static int
parse_roles(atoll__config *c, const setting_def *d, const char *val, char *err, size_t errlen)
{
    unsigned roles = 0;
    const char *p = val;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        size_t n = strcspn(p, ",");
        size_t word = n;
        while (word > 0 && (p[word - 1] == ' ' || p[word - 1] == '\t'))
            word--;
        unsigned role = 0;
        if (word == 4 && !strncmp(p, "gate", 4))
            role = ATOLL_ROLE_GATE;
        else if (word == 4 && !strncmp(p, "area", 4))
            role = ATOLL_ROLE_AREA;
        else if (word == 11 && !strncmp(p, "coordinator", 11))
            role = ATOLL_ROLE_COORD;
        if (role == 0) {
            snprintf(err, errlen,
                     "node.roles must be a comma-separated list of gate, area, coordinator "
                     "(got '%.100s')", val);
            return ATOLL_EINVAL;
        }
        roles |= role;
        if (p[n] == '\0')
            break;
        p += n + 1;
    }
    c->roles = roles;
    return ATOLL_OK;
}

static int
parse_node_name(atoll__config *c, const setting_def *d, const char *val, char *err, size_t errlen)
{
    size_t len = strlen(val);
    bool ok = len > 0 && len < sizeof c->node_name;
    for (size_t i = 0; ok && i < len; i++)
        ok = (val[i] >= 'a' && val[i] <= 'z') || (val[i] >= 'A' && val[i] <= 'Z') ||
             (val[i] >= '0' && val[i] <= '9') || val[i] == '-' || val[i] == '_' || val[i] == '.';
    if (!ok) {
        snprintf(err, errlen,
                 "node.name must be 1 to %zu letters, digits, '-', '_' or '.' (got '%.100s')",
                 sizeof c->node_name - 1, val);
        return ATOLL_EINVAL;
    }
    snprintf(c->node_name, sizeof c->node_name, "%s", val);
    return ATOLL_OK;
}

/* HOST:PORT with a port 0 .. 65535: the host (without the brackets of [v6]) at *host,
 * *hostlen bytes, and the port; false when it is not that. */
bool
atoll__split_hostport(const char *val, const char **host, size_t *hostlen, int *port)
{
    const char *colon = strrchr(val, ':');
    if (colon == NULL || colon == val)
        return false;
    size_t hl = (size_t)(colon - val);
    const char *h = val;
    if (hl >= 2 && val[0] == '[' && val[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    char *end = NULL;
    long p = strtol(colon + 1, &end, 10);
    if (hl == 0 || end == colon + 1 || *end != '\0' || p < 0 || p > 65535)
        return false;
    *host = h;
    *hostlen = hl;
    *port = (int)p;
    return true;
}

/* net.listen (--listen): HOST:PORT, the host a name or an address ([v6] too), port 0
 * for any free one. */
static int
parse_listen(atoll__config *c, const setting_def *d, const char *val, char *err, size_t errlen)
{
    const char *h;
    size_t hl;
    int port;
    if (!atoll__split_hostport(val, &h, &hl, &port) || hl >= sizeof c->host) {
        snprintf(err, errlen, "--listen wants HOST:PORT, got '%.150s' (net.listen)", val);
        return ATOLL_EINVAL;
    }
    memcpy(c->host, h, hl);
    c->host[hl] = '\0';
    c->port = port;
    c->listen_given = true;
    return ATOLL_OK;
}

/* admin.listen (--admin): HOST:PORT of the admin API, port 0 for any free one; empty:
 * no admin server. */
static int
parse_admin_listen(atoll__config *c, const setting_def *d, const char *val, char *err,
                   size_t errlen)
{
    const char *h;
    size_t hl;
    int port;
    if (val[0] == '\0') {
        c->admin_host[0] = '\0';
        c->admin_port = 0;
        return ATOLL_OK;
    }
    if (!atoll__split_hostport(val, &h, &hl, &port) || hl >= sizeof c->admin_host) {
        snprintf(err, errlen, "--admin wants HOST:PORT, got '%.150s' (admin.listen; empty: no "
                 "admin server)", val);
        return ATOLL_EINVAL;
    }
    memcpy(c->admin_host, h, hl);
    c->admin_host[hl] = '\0';
    c->admin_port = port;
    return ATOLL_OK;
}

/* node.game (--game): a built-in game's name or a shared object's path. */
static int
parse_game(atoll__config *c, const setting_def *d, const char *val, char *err, size_t errlen)
{
    if (val[0] == '\0' || strlen(val) >= sizeof c->game) {
        snprintf(err, errlen, "--game is empty or too long (node.game: at most %zu bytes)",
                 sizeof c->game - 1);
        return ATOLL_EINVAL;
    }
    snprintf(c->game, sizeof c->game, "%s", val);
    return ATOLL_OK;
}

static int
parse_advertise(atoll__config *c, const setting_def *d, const char *val, char *err, size_t errlen)
{
    const char *h;
    size_t hl;
    int port;
    if (!atoll__split_hostport(val, &h, &hl, &port) || strlen(val) >= sizeof c->advertise) {
        snprintf(err, errlen,
                 "node.advertise must be HOST:PORT with a port from 0 (any free one, published "
                 "as bound) to 65535 (got '%.150s')",
                 val);
        return ATOLL_EINVAL;
    }
    snprintf(c->advertise, sizeof c->advertise, "%s", val);
    return ATOLL_OK;
}

static int
parse_redis(atoll__config *c, const setting_def *d, const char *val, char *err, size_t errlen)
{
    if (strncmp(val, "redis://", 8) != 0 || val[8] == '\0' || strlen(val) >= sizeof c->redis_url) {
        snprintf(err, errlen, "cluster.redis must be redis://HOST[:PORT][/DB] (got '%.200s')", val);
        return ATOLL_EINVAL;
    }
    snprintf(c->redis_url, sizeof c->redis_url, "%s", val);
    return ATOLL_OK;
}

/* A number with a fraction (a double field), from lo to hi. */
static int
parse_real(atoll__config *c, const setting_def *d, const char *val, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (*val == '\0' || *end != '\0' || errno != 0 || !(v >= (double)d->lo) ||
        !(v <= (double)d->hi)) {
        snprintf(err, errlen, "%s must be a number from %ld to %ld (%s)", d->key, d->lo, d->hi,
                 d->help);
        return ATOLL_EINVAL;
    }
    *(double *)((char *)c + d->offset) = v;
    return ATOLL_OK;
}

#define INT(key, field, lo, hi, help)                                                      \
    {key, parse_int, offsetof(atoll__config, field), FIELD_TYPE(field), lo, hi, help}
#define REAL(key, field, lo, hi, help)                                                     \
    {key, parse_real, offsetof(atoll__config, field), FIELD_DOUBLE, lo, hi, help}
#define BOOL(key, field) {key, parse_flag, offsetof(atoll__config, field), FIELD_INT, 0, 0, NULL}
#define TEXT(key) {key, parse_text, 0, FIELD_INT, 1, ATOLL_SECRET_MAX, NULL}
#define OWN(key, fn) {key, fn, 0, FIELD_INT, 0, 0, NULL}

/* Every framework setting, in the order of docs/operations.md's table. */
static const setting_def settings[] = {
    INT("net.max_package", max_package, 1024, ATOLL_PKG_BODY_CEILING, "bytes of one package body"),
    INT("net.max_conns", max_conns, 1, 10000000, "open connections for the whole node"),
    INT("net.heartbeat", heartbeat_s, 0, 3600, "heartbeat interval in seconds, 0 = off"),
    INT("net.heartbeat_timeout", heartbeat_timeout_s, 0, 7200,
        "seconds without a client heartbeat, 0 = 2 x heartbeat"),
    INT("net.idle_timeout", idle_timeout_s, 1, 86400, "seconds without a received byte"),
    INT("net.handshake_timeout", handshake_timeout_s, 1, 3600, "seconds to finish the handshake"),
    INT("net.output_cap", output_cap, 1024, 1L << 30,
        "unsent bytes per connection before it is closed"),
    INT("net.rate_limit", rate_limit, 0, 1000000, "messages per second per connection, 0 = off"),
    INT("net.rate_burst", rate_burst, 0, 10000000, "rate-limit bucket, 0 = 2 x rate"),
    BOOL("net.dict", dict),
    OWN("net.min_client_version", parse_min_client_version),
    OWN("log.level", parse_log_level),
    INT("node.workers", workers, 0, 255, "worker threads, 0 = number of cores"),
    INT("node.id", node_id, 1, ATOLL_NODE_ID_MAX,
        "this node's number in session ids and area numbers; a cluster assigns it, and names "
        "a node by node.name, --node-id"),
    OWN("net.listen", parse_listen),
    OWN("node.game", parse_game),
    OWN("node.roles", parse_roles),
    OWN("node.name", parse_node_name),
    OWN("node.advertise", parse_advertise),
    BOOL("node.loopback_links", loopback_links),
    INT("session.resume_ms", resume_ms, 0, 86400000,
        "how long a dropped player waits for gate.resume, 0 = off"),
    INT("area.keep_ms", keep_ms, 1, 86400000, "default deadline of a kept request"),
    INT("area.slow_ms", slow_ms, 1, 3600000,
        "a handler, tick or timer longer than this is logged and counted"),
    INT("area.stall_ms", stall_ms, 0, 3600000,
        "one still running after this is logged with a backtrace, 0 = off"),
    OWN("store.url", parse_store_url),
    OWN("store.durability", parse_durability),
    INT("store.flush_ms", flush_ms, 1, 60000, "fast durability: changes are committed within this"),
    INT("store.timeout_ms", store_timeout_ms, 1, 3600000,
        "durable: a reply waits this long for its commit, then 500"),
    TEXT("auth.jwt_secret"),
    TEXT("auth.jwt_secret_file"),
    TEXT("auth.jwt_audience"),
    INT("auth.jwt_leeway", jwt_leeway_s, 0, 3600,
        "seconds of clock skew allowed for a token's exp and nbf"),
    BOOL("auth.guests", auth_guests),
    OWN("cluster.redis", parse_redis),
    TEXT("cluster.secret"),
    TEXT("cluster.secret_file"),
    INT("cluster.lease_ms", lease_ms, 200, 600000,
        "a node that has not renewed its lease for this long is dead"),
    INT("cluster.beat_ms", beat_ms, 50, 60000,
        "how often a node renews its lease (less than cluster.lease_ms)"),
    INT("cluster.link_ping_ms", link_ping_ms, 50, 60000,
        "a quiet link between nodes is pinged this often"),
    INT("cluster.link_timeout_ms", link_timeout_ms, 100, 600000,
        "a link that has said nothing for this long is cut"),
    INT("cluster.call_timeout_ms", call_timeout_ms, 100, 600000,
        "mail for a node without a link waits this long, then fails"),
    INT("cluster.moves_per_cycle", moves_per_cycle, 1, 100000,
        "areas the coordinator moves at once (failover, drains, rebalancing)"),
    REAL("cluster.rebalance_start", rebalance_start, 0, 100,
        "the coordinator moves running areas when the most and least loaded area nodes "
        "differ by this share of their average load (0.5: half of it); 0 = never"),
    REAL("cluster.rebalance_stop", rebalance_stop, 0, 100,
        "... and stops once they differ by less than this share (below rebalance_start)"),
    REAL("cluster.rebalance_min_load", rebalance_min_load, 0, 1000,
        "loads that differ by less than this are even, whatever their share (1: a core "
        "busy, or 1000 players, or 10,000 messages a second); new areas go to the nodes "
        "within it of the lowest"),
    OWN("admin.listen", parse_admin_listen),
    TEXT("admin.token"),
    TEXT("admin.token_file"),
};
#define NSETTINGS (sizeof settings / sizeof settings[0])

static const setting_def *
find_setting(const char *key)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strcmp(settings[i].key, key) == 0)
            return &settings[i];
    return NULL;
}

const char *
atoll__config_key(size_t i)
{
    return i < NSETTINGS ? settings[i].key : NULL;
}

int
atoll__config_set(atoll__config *c, const char *kv, char *err, size_t errlen)
{
    const char *eq = strchr(kv, '=');
    if (eq == NULL || eq == kv) {
        snprintf(err, errlen, "setting '%.200s' is not KEY=VALUE", kv);
        return ATOLL_EINVAL;
    }
    char key[128];
    size_t klen = (size_t)(eq - kv);
    if (klen >= sizeof key) {
        snprintf(err, errlen, "setting key too long");
        return ATOLL_EINVAL;
    }
    memcpy(key, kv, klen);
    key[klen] = '\0';
    const char *val = eq + 1;

    const setting_def *d = find_setting(key);
    if (d != NULL) {
        int rc = d->parse(c, d, val, err, errlen);
        if (rc != ATOLL_OK)
            return rc;
    } else if (atoll__config_framework_key(key)) {
        snprintf(err, errlen, "unknown setting '%s'", key);
        return ATOLL_EINVAL;
    }
    /* Every setting given is kept as text too: a game reads its own through
     * atoll__config_get, and the checks tell a value given from a default. */
    for (size_t i = 0; i < c->nsettings; i++) {
        if (strcmp(c->settings[i].key, key) == 0) {
            atoll__free(c->settings[i].value);
            c->settings[i].value = atoll__strndup(val, strlen(val));
            return ATOLL_OK;
        }
    }
    c->settings = atoll__realloc(c->settings, (c->nsettings + 1) * sizeof *c->settings);
    c->settings[c->nsettings].key = atoll__strndup(key, klen);
    c->settings[c->nsettings].value = atoll__strndup(val, strlen(val));
    c->nsettings++;
    return ATOLL_OK;
}

/* KEY=VALUE from a key and a value apart (a file's line, a variable), through
 * atoll__config_set. */
static int
set_pair(atoll__config *c, const char *key, size_t klen, const char *val, size_t vlen, char *err,
         size_t errlen)
{
    char *kv = atoll__malloc(klen + vlen + 2);
    memcpy(kv, key, klen);
    kv[klen] = '=';
    memcpy(kv + klen + 1, val, vlen);
    kv[klen + 1 + vlen] = '\0';
    int rc = atoll__config_set(c, kv, err, errlen);
    OPENSSL_cleanse(kv, klen + vlen + 2); /* it may have been a secret */
    atoll__free(kv);
    return rc;
}

/* ---- a file of settings ----------------------------------------------------------- */

static bool
is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* One line of a settings file, without its newline: applied, skipped (blank, comment),
 * or ATOLL_EINVAL with a sentence. */
static int
file_line(atoll__config *c, const char *line, size_t len, char *err, size_t errlen)
{
    if (memchr(line, '\0', len) != NULL) {
        snprintf(err, errlen, "the line holds a NUL byte");
        return ATOLL_EINVAL;
    }
    const char *p = line, *end = line + len;
    while (p < end && is_blank(*p))
        p++;
    while (end > p && is_blank(end[-1]))
        end--;
    if (p == end || *p == '#')
        return ATOLL_OK;
    const char *eq = memchr(p, '=', (size_t)(end - p));
    if (eq == NULL) {
        snprintf(err, errlen, "not KEY = VALUE (a comment line starts with #)");
        return ATOLL_EINVAL;
    }
    const char *kend = eq;
    while (kend > p && is_blank(kend[-1]))
        kend--;
    if (kend == p) {
        snprintf(err, errlen, "no key before '='");
        return ATOLL_EINVAL;
    }
    for (const char *k = p; k < kend; k++) {
        if (is_blank(*k)) {
            snprintf(err, errlen, "'%.*s' is not a key: a key has no spaces", (int)(kend - p), p);
            return ATOLL_EINVAL;
        }
    }
    const char *v = eq + 1;
    while (v < end && is_blank(*v))
        v++;
    /* A quoted value is what lies between its quotes: spaces at either end, a '#', or
     * nothing at all. Quotes inside are kept as they are; only the outer pair goes. */
    if (v < end && *v == '"') {
        if (end - v < 2 || end[-1] != '"') {
            snprintf(err, errlen, "the value's opening quote has no closing quote at the end "
                                  "of the line");
            return ATOLL_EINVAL;
        }
        v++;
        end--;
    }
    return set_pair(c, p, (size_t)(kend - p), v, (size_t)(end - v), err, errlen);
}

int
atoll__config_load_file(atoll__config *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cannot read the config file %s: %s", path, strerror(errno));
        return ATOLL_EINVAL;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, rc = ATOLL_OK;
    while (rc == ATOLL_OK && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (len > 0 && line[len - 1] == '\n')
            len--;
        if (len > 0 && line[len - 1] == '\r')
            len--;
        char why[300];
        if (file_line(c, line, (size_t)len, why, sizeof why) != ATOLL_OK) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
            rc = ATOLL_EINVAL;
        }
    }
    if (rc == ATOLL_OK && ferror(f)) {
        snprintf(err, errlen, "cannot read the config file %s: %s", path, strerror(errno));
        rc = ATOLL_EINVAL;
    }
    if (line != NULL)
        OPENSSL_cleanse(line, cap); /* the file may hold a secret */
    free(line); /* getline's, from malloc */
    fclose(f);
    return rc;
}

/* ---- environment variables -------------------------------------------------------- */

bool
atoll__config_env_name(const char *key, char *out, size_t cap)
{
    size_t n = strlen(key);
    if (cap < n + 7)
        return false;
    memcpy(out, "ATOLL_", 6);
    for (size_t i = 0; i < n; i++) {
        char ch = key[i];
        out[6 + i] = ch == '.' ? '_' : (ch >= 'a' && ch <= 'z') ? (char)(ch - 'a' + 'A') : ch;
    }
    out[6 + n] = '\0';
    return true;
}

/* The value of NAME in envp, or NULL. */
static const char *
env_lookup(char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; envp && envp[i]; i++)
        if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
            return envp[i] + n + 1;
    return NULL;
}

int
atoll__config_load_env(atoll__config *c, char *const *envp, char *err, size_t errlen)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        char name[96];
        if (!atoll__config_env_name(settings[i].key, name, sizeof name))
            continue; /* no key is that long; a name that cannot be made is not set */
        const char *val = env_lookup(envp, name);
        if (val == NULL)
            continue;
        char why[300];
        if (set_pair(c, settings[i].key, strlen(settings[i].key), val, strlen(val), why,
                     sizeof why) != ATOLL_OK) {
            snprintf(err, errlen, "%s: %s", name, why);
            return ATOLL_EINVAL;
        }
    }
    return ATOLL_OK;
}

/* ATOLL_* variables that are not settings and are never warned about: the test suite
 * and the scripts of this repository set them around the nodes they start (the suite's
 * second pass, the binaries and games under test, the benchmarks' build), and a node
 * inherits them; an operator's shell may hold atoll ctl's. ATOLL_LOOPBACK_LINKS is read by the harness, which gives each node
 * `--set node.loopback_links=true` (tests/support/harness.c). */
static const char *const tool_variables[] = {
    "ATOLL_LOOPBACK_LINKS", "ATOLL_BIN",         "ATOLL_TESTGAME",      "ATOLL_LINKED_BIN",
    "ATOLL_OLDABI_GAME",    "ATOLL_SANITIZED",   "ATOLL_SANITIZERS",    "ATOLL_PG_BINDIR",
    "ATOLL_CHURN_SECONDS",  "ATOLL_JS_VERBOSE",  "ATOLL_JS_SERVER_ARGS", "ATOLL_BUILD_DIR",
    "ATOLL_ADMIN", /* atoll ctl's address of a node's admin API (src/app/ctl.c) */
};

/* Whether the variable NAME=... (name n bytes) is a setting's or one of the tools'. */
static bool
env_known(const char *name, size_t n)
{
    char want[96];
    for (size_t i = 0; i < NSETTINGS; i++)
        if (atoll__config_env_name(settings[i].key, want, sizeof want) && strlen(want) == n &&
            strncmp(want, name, n) == 0)
            return true;
    for (size_t i = 0; i < sizeof tool_variables / sizeof tool_variables[0]; i++)
        if (strlen(tool_variables[i]) == n && strncmp(tool_variables[i], name, n) == 0)
            return true;
    return false;
}

static bool
given(const atoll__config *c, const char *key)
{
    return atoll__config_get(c, key, NULL) != NULL;
}

/* node.roles as it is written: "gate,area". */
static void
roles_text(unsigned roles, char *out, size_t cap)
{
    snprintf(out, cap, "%s%s%s%s%s", roles & ATOLL_ROLE_GATE ? "gate" : "",
             (roles & ATOLL_ROLE_GATE) && (roles & ~ATOLL_ROLE_GATE & ATOLL_ROLE_ALL) ? "," : "",
             roles & ATOLL_ROLE_AREA ? "area" : "",
             (roles & ATOLL_ROLE_AREA) && (roles & ATOLL_ROLE_COORD) ? "," : "",
             roles & ATOLL_ROLE_COORD ? "coordinator" : "");
}

/* A host every interface answers for: its port is taken on every address. */
static bool
wildcard_host(const char *host, size_t len)
{
    return (len == 7 && !strncmp(host, "0.0.0.0", 7)) || (len == 2 && !strncmp(host, "::", 2));
}

/* Whether node.advertise names the address clients are listened for on: the same port
 * on the same host, or on a host that is every interface. Names are not resolved
 * (localhost and 127.0.0.1 differ here): the bind at start still fails for those. */
static bool
advertise_is_listen(const atoll__config *c)
{
    const char *colon = strrchr(c->advertise, ':');
    /* Port 0 on either side is any free port: two binds, two ports. */
    if (colon == NULL || atoi(colon + 1) != c->port || c->port == 0)
        return false;
    const char *host = c->advertise;
    size_t len = (size_t)(colon - host);
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        host++;
        len -= 2;
    }
    return (strlen(c->host) == len && strncmp(c->host, host, len) == 0) ||
           wildcard_host(host, len) || wildcard_host(c->host, strlen(c->host));
}

static bool
shared_store(const char *url)
{
    return strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0;
}

/* The checks of a node with cluster.redis, or of the settings only such a node may have
 * when it has none. */
static int
check_cluster(const atoll__config *c, char *err, size_t errlen)
{
    bool cluster = c->redis_url[0] != '\0';
    bool secret = given(c, "cluster.secret"), secret_file = given(c, "cluster.secret_file");
    if (!cluster) {
        if (c->roles != ATOLL_ROLE_ALL) {
            snprintf(err, errlen, "--roles needs --redis: a node with only some roles is part "
                                  "of a cluster (node.roles, cluster.redis)");
            return ATOLL_EINVAL;
        }
        if (c->advertise[0] != '\0') {
            snprintf(err, errlen, "--advertise needs --redis: only a node of a cluster has "
                                  "links to other nodes (node.advertise, cluster.redis)");
            return ATOLL_EINVAL;
        }
        if (secret || secret_file) {
            snprintf(err, errlen, "%s needs --redis: only a node of a cluster has links to "
                     "other nodes to secure (%s, cluster.redis)",
                     secret ? "--cluster-secret" : "--cluster-secret-file",
                     secret ? "cluster.secret" : "cluster.secret_file");
            return ATOLL_EINVAL;
        }
        return ATOLL_OK;
    }
    if (secret && secret_file) {
        snprintf(err, errlen, "--cluster-secret and --cluster-secret-file both give the cluster "
                              "secret: give one (cluster.secret, cluster.secret_file)");
        return ATOLL_EINVAL;
    }
    if (!secret && !secret_file) {
        snprintf(err, errlen, "--redis needs --cluster-secret-file PATH (or --cluster-secret): "
                              "the nodes of a cluster prove with it that they belong to it "
                              "(cluster.secret_file, cluster.secret)");
        return ATOLL_EINVAL;
    }
    if (secret && strlen(atoll__config_get(c, "cluster.secret", "")) < ATOLL_CLUSTER_SECRET_MIN) {
        snprintf(err, errlen, "--cluster-secret must be at least %d bytes (cluster.secret); "
                 "32 random bytes or more, from a file (--cluster-secret-file), are better",
                 ATOLL_CLUSTER_SECRET_MIN);
        return ATOLL_EINVAL;
    }
    if (c->advertise[0] == '\0') {
        snprintf(err, errlen, "--redis needs --advertise HOST:PORT: where this node listens for "
                              "links from the other nodes, which it publishes to them "
                              "(node.advertise)");
        return ATOLL_EINVAL;
    }
    if (!given(c, "node.name")) {
        snprintf(err, errlen, "--redis needs --node-id NAME: each node of a cluster has a name "
                              "of its own, in its record and in the logs (node.name)");
        return ATOLL_EINVAL;
    }
    if (given(c, "node.id")) {
        snprintf(err, errlen, "node.id cannot be given with --redis: the cluster assigns each "
                              "node its number; use --node-id NAME to name this node");
        return ATOLL_EINVAL;
    }
    return ATOLL_OK;
}

bool
atoll__host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcasecmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return false;
}

/* A token as a bearer token is sent: visible ASCII, no space. */
static bool
token_chars_ok(const char *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (t[i] <= 0x20 || t[i] >= 0x7f)
            return false;
    return true;
}

/* The admin API's settings: one source of its token, a token fit to be sent, and a
 * token whenever other machines can reach it. */
static int
check_admin(const atoll__config *c, char *err, size_t errlen)
{
    bool token = given(c, "admin.token"), token_file = given(c, "admin.token_file");
    if (token && token_file) {
        snprintf(err, errlen, "admin.token and admin.token_file (--admin-token-file) both give "
                              "the admin API's token: give one");
        return ATOLL_EINVAL;
    }
    const char *text = atoll__config_get(c, "admin.token", "");
    if (token && (strlen(text) < ATOLL_ADMIN_TOKEN_MIN || !token_chars_ok(text, strlen(text)))) {
        snprintf(err, errlen, "admin.token must be at least %d bytes of visible ASCII (no "
                 "spaces), as it is sent in an Authorization header; a file of 32 random "
                 "bytes or more in hex or base64 (--admin-token-file) is better",
                 ATOLL_ADMIN_TOKEN_MIN);
        return ATOLL_EINVAL;
    }
    if (c->admin_host[0] != '\0' && !token && !token_file &&
        !atoll__host_is_loopback(c->admin_host)) {
        bool v6 = strchr(c->admin_host, ':') != NULL;
        snprintf(err, errlen, "--admin %s%.64s%s:%d is not a loopback address: an admin API "
                 "that other machines can reach needs a token, --admin-token-file PATH "
                 "(admin.token_file, or admin.token)", v6 ? "[" : "", c->admin_host,
                 v6 ? "]" : "", c->admin_port);
        return ATOLL_EINVAL;
    }
    return ATOLL_OK;
}

int
atoll__config_check(const atoll__config *c, char *err, size_t errlen)
{
    if (c->heartbeat_s > 0 && c->idle_timeout_s <= c->heartbeat_s) {
        snprintf(err, errlen,
                 "net.idle_timeout (%d s) must be longer than net.heartbeat (%d s), or every "
                 "quiet client would be closed between two heartbeats",
                 c->idle_timeout_s, c->heartbeat_s);
        return ATOLL_EINVAL;
    }
    if (c->heartbeat_s > 0 && c->heartbeat_timeout_s > 0 &&
        c->heartbeat_timeout_s <= c->heartbeat_s) {
        snprintf(err, errlen,
                 "net.heartbeat_timeout (%d s) must be longer than net.heartbeat (%d s)",
                 c->heartbeat_timeout_s, c->heartbeat_s);
        return ATOLL_EINVAL;
    }
    if (given(c, "auth.jwt_secret") && given(c, "auth.jwt_secret_file")) {
        snprintf(err, errlen, "auth.jwt_secret and auth.jwt_secret_file are both set: give one");
        return ATOLL_EINVAL;
    }
    if (c->output_cap < (size_t)c->max_package + 64) {
        snprintf(err, errlen,
                 "net.output_cap (%zu) must hold at least one largest package "
                 "(net.max_package %u + 64)",
                 c->output_cap, c->max_package);
        return ATOLL_EINVAL;
    }
    if (check_cluster(c, err, errlen) != ATOLL_OK)
        return ATOLL_EINVAL;
    if (check_admin(c, err, errlen) != ATOLL_OK)
        return ATOLL_EINVAL;
    char roles[32];
    roles_text(c->roles, roles, sizeof roles);
    if (c->listen_given && !(c->roles & ATOLL_ROLE_GATE)) {
        snprintf(err, errlen, "--listen on a node without the gate role (--roles %s): only "
                 "gates listen for clients", roles);
        return ATOLL_EINVAL;
    }
    bool cluster = c->redis_url[0] != '\0';
    if (cluster && (c->roles & ATOLL_ROLE_AREA) && strcmp(c->store_url, "memory") != 0 &&
        !shared_store(c->store_url)) {
        snprintf(err, errlen, "an area node of a cluster (--roles %s with --redis) needs a "
                 "shared store, --store postgres://USER@HOST:PORT/DB: the areas of a node that "
                 "dies are loaded by another node, which cannot read this machine's SQLite "
                 "file (--store sqlite:..., --data, or the default)", roles);
        return ATOLL_EINVAL;
    }
    if (cluster && (c->roles & ATOLL_ROLE_GATE) && advertise_is_listen(c)) {
        snprintf(err, errlen, "--advertise %.128s is the --listen address %.64s:%d: links from "
                 "other nodes and clients need ports of their own",
                 c->advertise, c->host, c->port);
        return ATOLL_EINVAL;
    }
    /* A lease renewed only once per lease would expire at the first late renewal (a busy
     * Redis, a pause); at least two renewals a lease leave room for one to be late. The
     * same for the pings of a link and its timeout. */
    if ((uint64_t)c->beat_ms * 2 >= c->lease_ms) {
        snprintf(err, errlen, "cluster.beat_ms (%u) must be below half of cluster.lease_ms "
                 "(%u): a node renews its lease at least twice before it runs out, so that one "
                 "late renewal does not make it dead", c->beat_ms, c->lease_ms);
        return ATOLL_EINVAL;
    }
    /* Without a gap between the two, a rebalance that ends could start again at the
     * next measurement and move the same areas back. */
    if (c->rebalance_start > 0 && c->rebalance_stop >= c->rebalance_start) {
        snprintf(err, errlen, "cluster.rebalance_stop (%g) must be below "
                 "cluster.rebalance_start (%g): the gap between them keeps a rebalance from "
                 "moving areas back and forth", c->rebalance_stop, c->rebalance_start);
        return ATOLL_EINVAL;
    }
    if ((uint64_t)c->link_ping_ms * 2 >= c->link_timeout_ms) {
        snprintf(err, errlen, "cluster.link_ping_ms (%u) must be below half of "
                 "cluster.link_timeout_ms (%u): a quiet link is pinged at least twice before "
                 "it is cut, so that one late ping does not cut it",
                 c->link_ping_ms, c->link_timeout_ms);
        return ATOLL_EINVAL;
    }
    return ATOLL_OK;
}

void
atoll__config_warnings(const atoll__config *c, char *const *envp, atoll__config_warn_fn *warn,
                       void *arg)
{
    for (size_t i = 0; envp && envp[i]; i++) {
        const char *var = envp[i];
        if (strncmp(var, "ATOLL_", 6) != 0)
            continue;
        size_t n = strcspn(var, "=");
        if (env_known(var, n))
            continue;
        /* The name as it may be shown on a log line: letters, digits and '_' only. */
        char shown[72], sentence[200];
        size_t k = 0;
        for (; k < n && k < sizeof shown - 1; k++) {
            char ch = var[k];
            bool plain = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                         (ch >= '0' && ch <= '9') || ch == '_';
            shown[k] = plain ? ch : '?';
        }
        shown[k] = '\0';
        snprintf(sentence, sizeof sentence, "environment variable %s%s names no setting, "
                 "ignored (a setting's is ATOLL_ and its key in capitals, '.' as '_')",
                 shown, k < n ? "..." : "");
        warn(arg, sentence);
    }
    if (c->redis_url[0] != '\0' && (c->roles & ATOLL_ROLE_AREA) &&
        strcmp(c->store_url, "memory") == 0)
        warn(arg, "--store memory on an area node of a cluster: the state of its areas and "
                  "players is lost when another node takes them over");
    if (c->admin_host[0] == '\0' && (given(c, "admin.token") || given(c, "admin.token_file")))
        warn(arg, "an admin token is set (admin.token or admin.token_file) but no --admin "
                  "address (admin.listen): no admin server runs, the token is not used");
}

/* ---- secrets ---------------------------------------------------------------------- */

/* One byte more than the longest file that can hold a secret (its trailing CRLF
 * included), so a longer file is refused rather than cut. */
#define SECRET_FILE_READ (ATOLL_SECRET_MAX + 3)

int
atoll__secret_read_file(const char *label, const char *path, size_t min_len, uint8_t **out,
                        size_t *len, char *err, size_t errlen)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s %s: %s", label, path, strerror(errno));
        return ATOLL_EINVAL;
    }
    uint8_t *buf = atoll__malloc(SECRET_FILE_READ);
    size_t n = 0;
    int rc = ATOLL_OK;
    while (n < SECRET_FILE_READ) {
        ssize_t k = read(fd, buf + n, SECRET_FILE_READ - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            snprintf(err, errlen, "cannot read %s %s: %s", label, path, strerror(errno));
            rc = ATOLL_EINVAL;
            break;
        }
        if (k == 0)
            break;
        n += (size_t)k;
    }
    close(fd);
    if (rc == ATOLL_OK) {
        if (n > 0 && buf[n - 1] == '\n')
            n--;
        if (n > 0 && buf[n - 1] == '\r')
            n--;
        if (n > ATOLL_SECRET_MAX) { /* also every file of SECRET_FILE_READ bytes */
            snprintf(err, errlen, "%s %s holds more than %d bytes", label, path,
                     ATOLL_SECRET_MAX);
            rc = ATOLL_EINVAL;
        } else if (n == 0) {
            snprintf(err, errlen, "%s %s is empty", label, path);
            rc = ATOLL_EINVAL;
        } else if (n < min_len) {
            snprintf(err, errlen, "%s %s holds fewer than %zu bytes", label, path, min_len);
            rc = ATOLL_EINVAL;
        }
    }
    if (rc != ATOLL_OK) {
        atoll__secret_free(buf, SECRET_FILE_READ);
        return rc;
    }
    *out = buf;
    *len = n;
    return ATOLL_OK;
}

void
atoll__secret_free(uint8_t *secret, size_t len)
{
    if (secret == NULL)
        return;
    OPENSSL_cleanse(secret, len);
    atoll__free(secret);
}

int
atoll__config_load_secret(atoll__config *c, char *err, size_t errlen)
{
    atoll__secret_free(c->cluster_secret, c->cluster_secret_len);
    c->cluster_secret = NULL;
    c->cluster_secret_len = 0;
    if (c->redis_url[0] == '\0')
        return ATOLL_OK;
    const char *text = atoll__config_get(c, "cluster.secret", NULL);
    const char *path = atoll__config_get(c, "cluster.secret_file", NULL);
    if (path != NULL)
        return atoll__secret_read_file("--cluster-secret-file", path, ATOLL_CLUSTER_SECRET_MIN,
                                       &c->cluster_secret, &c->cluster_secret_len, err, errlen);
    if (text == NULL || strlen(text) < ATOLL_CLUSTER_SECRET_MIN) {
        /* atoll__config_check refused this already; said again for a caller that skipped it */
        snprintf(err, errlen, "--cluster-secret must be at least %d bytes (cluster.secret)",
                 ATOLL_CLUSTER_SECRET_MIN);
        return ATOLL_EINVAL;
    }
    c->cluster_secret_len = strlen(text);
    c->cluster_secret = atoll__malloc(c->cluster_secret_len);
    memcpy(c->cluster_secret, text, c->cluster_secret_len);
    return ATOLL_OK;
}

int
atoll__config_load_admin_token(atoll__config *c, char *err, size_t errlen)
{
    if (c->admin_token != NULL)
        OPENSSL_cleanse(c->admin_token, strlen(c->admin_token));
    atoll__free(c->admin_token);
    c->admin_token = NULL;
    const char *text = atoll__config_get(c, "admin.token", NULL);
    const char *path = atoll__config_get(c, "admin.token_file", NULL);
    if (c->admin_host[0] == '\0' || (text == NULL && path == NULL))
        return ATOLL_OK;
    if (path == NULL) {
        if (strlen(text) < ATOLL_ADMIN_TOKEN_MIN || !token_chars_ok(text, strlen(text))) {
            /* atoll__config_check refused this already; said again for a caller that skipped it */
            snprintf(err, errlen, "admin.token must be at least %d bytes of visible ASCII",
                     ATOLL_ADMIN_TOKEN_MIN);
            return ATOLL_EINVAL;
        }
        c->admin_token = atoll__strndup(text, strlen(text));
        return ATOLL_OK;
    }
    uint8_t *bytes;
    size_t len;
    if (atoll__secret_read_file("--admin-token-file", path, ATOLL_ADMIN_TOKEN_MIN, &bytes, &len,
                                err, errlen) != ATOLL_OK)
        return ATOLL_EINVAL;
    if (!token_chars_ok((const char *)bytes, len)) {
        snprintf(err, errlen, "--admin-token-file %s holds a byte that cannot be in a bearer "
                 "token: visible ASCII only, no spaces (hex or base64 is fine)", path);
        atoll__secret_free(bytes, SECRET_FILE_READ);
        return ATOLL_EINVAL;
    }
    c->admin_token = atoll__strndup((const char *)bytes, len);
    atoll__secret_free(bytes, SECRET_FILE_READ);
    return ATOLL_OK;
}

bool
atoll__config_framework_key(const char *key)
{
    static const char *const spaces[] = {"net.", "log.", "node.", "area.", "session.", "auth.",
                                         "store.", "cluster.", "admin."};
    for (size_t i = 0; i < sizeof spaces / sizeof spaces[0]; i++)
        if (strncmp(key, spaces[i], strlen(spaces[i])) == 0)
            return true;
    return false;
}

const char *
atoll__config_get(const atoll__config *c, const char *key, const char *def)
{
    for (size_t i = 0; i < c->nsettings; i++)
        if (strcmp(c->settings[i].key, key) == 0)
            return c->settings[i].value;
    return def;
}

void
atoll__config_fini(atoll__config *c)
{
    for (size_t i = 0; i < c->nsettings; i++) {
        atoll__free(c->settings[i].key);
        /* wiped: the secrets given as text are among them */
        OPENSSL_cleanse(c->settings[i].value, strlen(c->settings[i].value));
        atoll__free(c->settings[i].value);
    }
    atoll__free(c->settings);
    c->settings = NULL;
    c->nsettings = 0;
    atoll__secret_free(c->cluster_secret, c->cluster_secret_len);
    c->cluster_secret = NULL;
    c->cluster_secret_len = 0;
    if (c->admin_token != NULL)
        OPENSSL_cleanse(c->admin_token, strlen(c->admin_token));
    atoll__free(c->admin_token);
    c->admin_token = NULL;
}
