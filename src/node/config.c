/* config.c -- node settings: defaults, `--set KEY=VALUE`, and their checks.
 *
 * Every setting has a typed field and a dotted key, so the same value can come from a
 * flag (--max-conns) or from --set (net.max_conns); keys outside the framework's
 * namespaces (net., log., node., area., session., auth., store., cluster.) belong to the game and are
 * kept as text for it.
 */
#include "config.h"
#include "mail.h"
#include "../proto/proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

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

/* Integer settings: key, field offset by pointer, range. */
typedef struct {
    const char *key;
    long lo, hi;
    const char *help;
} int_setting;

static const int_setting int_settings[] = {
    {"net.max_package", 1024, ATOLL_PKG_BODY_CEILING, "bytes of one package body"},
    {"net.max_conns", 1, 10000000, "open connections for the whole node"},
    {"net.heartbeat", 0, 3600, "heartbeat interval in seconds, 0 = off"},
    {"net.heartbeat_timeout", 0, 7200, "seconds without a client heartbeat, 0 = 2 x heartbeat"},
    {"net.idle_timeout", 1, 86400, "seconds without a received byte"},
    {"net.handshake_timeout", 1, 3600, "seconds to finish the handshake"},
    {"net.output_cap", 1024, 1L << 30, "unsent bytes per connection before it is closed"},
    {"net.rate_limit", 0, 1000000, "messages per second per connection, 0 = off"},
    {"net.rate_burst", 0, 10000000, "rate-limit bucket, 0 = 2 x rate"},
    {"node.workers", 0, 255, "worker threads, 0 = number of cores"},
    {"node.id", 1, ATOLL_NODE_ID_MAX, "this node's id in the cluster (in session ids and area numbers)"},
    {"area.slow_ms", 1, 3600000, "a handler, tick or timer longer than this is logged and counted"},
    {"area.stall_ms", 0, 3600000, "one still running after this is logged with a backtrace, 0 = off"},
    {"area.keep_ms", 1, 86400000, "default deadline of a kept request"},
    {"session.resume_ms", 0, 86400000, "how long a dropped player waits for gate.resume, 0 = off"},
    {"auth.jwt_leeway", 0, 3600, "seconds of clock skew allowed for a token's exp and nbf"},
    {"store.flush_ms", 1, 60000, "fast durability: changes are committed within this"},
    {"store.timeout_ms", 1, 3600000, "durable: a reply waits this long for its commit, then 500"},
    {"cluster.lease_ms", 200, 600000, "a node that has not renewed its lease for this long is dead"},
    {"cluster.beat_ms", 50, 60000, "how often a node renews its lease (less than cluster.lease_ms)"},
    {"cluster.link_ping_ms", 50, 60000, "a quiet link between nodes is pinged this often"},
    {"cluster.link_timeout_ms", 100, 600000, "a link that has said nothing for this long is cut"},
    {"cluster.call_timeout_ms", 100, 600000, "mail for a node without a link waits this long, then fails"},
    {"cluster.moves_per_cycle", 1, 100000, "areas the coordinator gives new owners per cycle"},
};

static void
store_int(atoll__config *c, const char *key, long v)
{
    if (!strcmp(key, "net.max_package"))
        c->max_package = (uint32_t)v;
    else if (!strcmp(key, "net.max_conns"))
        c->max_conns = (int)v;
    else if (!strcmp(key, "net.heartbeat"))
        c->heartbeat_s = (int)v;
    else if (!strcmp(key, "net.heartbeat_timeout"))
        c->heartbeat_timeout_s = (int)v;
    else if (!strcmp(key, "net.idle_timeout"))
        c->idle_timeout_s = (int)v;
    else if (!strcmp(key, "net.handshake_timeout"))
        c->handshake_timeout_s = (int)v;
    else if (!strcmp(key, "net.output_cap"))
        c->output_cap = (size_t)v;
    else if (!strcmp(key, "net.rate_limit"))
        c->rate_limit = (double)v;
    else if (!strcmp(key, "net.rate_burst"))
        c->rate_burst = (double)v;
    else if (!strcmp(key, "node.workers"))
        c->workers = (int)v;
    else if (!strcmp(key, "node.id"))
        c->node_id = (int)v;
    else if (!strcmp(key, "area.slow_ms"))
        c->slow_ms = (uint32_t)v;
    else if (!strcmp(key, "area.stall_ms"))
        c->stall_ms = (uint32_t)v;
    else if (!strcmp(key, "area.keep_ms"))
        c->keep_ms = (uint32_t)v;
    else if (!strcmp(key, "session.resume_ms"))
        c->resume_ms = (uint32_t)v;
    else if (!strcmp(key, "auth.jwt_leeway"))
        c->jwt_leeway_s = (int)v;
    else if (!strcmp(key, "store.flush_ms"))
        c->flush_ms = (uint32_t)v;
    else if (!strcmp(key, "store.timeout_ms"))
        c->store_timeout_ms = (uint32_t)v;
    else if (!strcmp(key, "cluster.lease_ms"))
        c->lease_ms = (uint32_t)v;
    else if (!strcmp(key, "cluster.beat_ms"))
        c->beat_ms = (uint32_t)v;
    else if (!strcmp(key, "cluster.link_ping_ms"))
        c->link_ping_ms = (uint32_t)v;
    else if (!strcmp(key, "cluster.link_timeout_ms"))
        c->link_timeout_ms = (uint32_t)v;
    else if (!strcmp(key, "cluster.call_timeout_ms"))
        c->call_timeout_ms = (uint32_t)v;
    else if (!strcmp(key, "cluster.moves_per_cycle"))
        c->moves_per_cycle = (uint32_t)v;
}

int
atoll__config_set(atoll__config *c, const char *kv, char *err, size_t errlen)
{
    const char *eq = strchr(kv, '=');
    if (eq == NULL || eq == kv) {
        snprintf(err, errlen, "setting '%s' is not KEY=VALUE", kv);
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

    for (size_t i = 0; i < sizeof int_settings / sizeof int_settings[0]; i++) {
        if (strcmp(key, int_settings[i].key) != 0)
            continue;
        long v;
        if (parse_long(val, int_settings[i].lo, int_settings[i].hi, &v) != 0) {
            snprintf(err, errlen, "%s must be an integer from %ld to %ld (%s)", key,
                     int_settings[i].lo, int_settings[i].hi, int_settings[i].help);
            return ATOLL_EINVAL;
        }
        store_int(c, key, v);
        goto keep;
    }
    if (!strcmp(key, "net.dict")) {
        if (parse_bool(val, &c->dict) != 0) {
            snprintf(err, errlen, "net.dict must be true or false");
            return ATOLL_EINVAL;
        }
        goto keep;
    }
    if (!strcmp(key, "node.loopback_links")) {
        if (parse_bool(val, &c->loopback_links) != 0) {
            snprintf(err, errlen, "node.loopback_links must be true or false");
            return ATOLL_EINVAL;
        }
        goto keep;
    }
    if (!strcmp(key, "net.min_client_version")) {
        if (val[0] != '\0' && (strlen(val) >= sizeof c->min_client_version ||
                               !atoll__version_valid(val))) {
            snprintf(err, errlen, "net.min_client_version must be like 1.2.0 (or empty)");
            return ATOLL_EINVAL;
        }
        snprintf(c->min_client_version, sizeof c->min_client_version, "%s", val);
        goto keep;
    }
    if (!strcmp(key, "log.level")) {
        int lv = atoll__log_parse_level(val);
        if (lv < 0) {
            snprintf(err, errlen, "log.level must be error, warn, info or debug");
            return ATOLL_EINVAL;
        }
        c->log_level = lv;
        goto keep;
    }
    if (!strcmp(key, "store.durability")) {
        if (strcmp(val, "durable") != 0 && strcmp(val, "fast") != 0) {
            snprintf(err, errlen, "store.durability must be durable or fast");
            return ATOLL_EINVAL;
        }
        c->store_durable = strcmp(val, "durable") == 0;
        goto keep;
    }
    if (!strcmp(key, "store.url")) {
        if (val[0] == '\0' || strlen(val) >= sizeof c->store_url) {
            snprintf(err, errlen, "store.url must be 1 to %zu bytes", sizeof c->store_url - 1);
            return ATOLL_EINVAL;
        }
        snprintf(c->store_url, sizeof c->store_url, "%s", val);
        goto keep;
    }
    if (!strcmp(key, "auth.guests")) {
        if (parse_bool(val, &c->auth_guests) != 0) {
            snprintf(err, errlen, "auth.guests must be true or false");
            return ATOLL_EINVAL;
        }
        goto keep;
    }
    if (!strcmp(key, "auth.jwt_secret") || !strcmp(key, "auth.jwt_secret_file") ||
        !strcmp(key, "auth.jwt_audience")) {
        if (val[0] == '\0' || strlen(val) > 4096) {
            snprintf(err, errlen, "%s must be 1 to 4096 bytes", key);
            return ATOLL_EINVAL;
        }
        goto keep; /* read through atoll__config_get; the secret file when the node starts */
    }
    if (!strcmp(key, "node.roles")) {
        unsigned roles = 0;
        char buf[64];
        if (strlen(val) >= sizeof buf) {
            snprintf(err, errlen, "node.roles must be a list of gate, area, coordinator");
            return ATOLL_EINVAL;
        }
        snprintf(buf, sizeof buf, "%s", val);
        for (char *save = NULL, *r = strtok_r(buf, ",", &save); r; r = strtok_r(NULL, ",", &save)) {
            if (!strcmp(r, "gate"))
                roles |= ATOLL_ROLE_GATE;
            else if (!strcmp(r, "area"))
                roles |= ATOLL_ROLE_AREA;
            else if (!strcmp(r, "coordinator"))
                roles |= ATOLL_ROLE_COORD;
            else
                roles = 0, r = NULL;
            if (r == NULL)
                break;
        }
        if (roles == 0) {
            snprintf(err, errlen,
                     "node.roles must be a comma-separated list of gate, area, coordinator "
                     "(got '%s')", val);
            return ATOLL_EINVAL;
        }
        c->roles = roles;
        goto keep;
    }
    if (!strcmp(key, "node.name")) {
        size_t len = strlen(val);
        bool ok = len > 0 && len < sizeof c->node_name;
        for (size_t i = 0; ok && i < len; i++)
            ok = (val[i] >= 'a' && val[i] <= 'z') || (val[i] >= 'A' && val[i] <= 'Z') ||
                 (val[i] >= '0' && val[i] <= '9') || val[i] == '-' || val[i] == '_' ||
                 val[i] == '.';
        if (!ok) {
            snprintf(err, errlen,
                     "node.name must be 1 to %zu letters, digits, '-', '_' or '.' (got '%s')",
                     sizeof c->node_name - 1, val);
            return ATOLL_EINVAL;
        }
        snprintf(c->node_name, sizeof c->node_name, "%s", val);
        goto keep;
    }
    if (!strcmp(key, "node.advertise")) {
        const char *colon = strrchr(val, ':');
        char *end = NULL;
        long port = colon ? strtol(colon + 1, &end, 10) : -1;
        if (colon == NULL || colon == val || strlen(val) >= sizeof c->advertise || end == colon + 1 ||
            *end != '\0' || port < 1 || port > 65535) {
            snprintf(err, errlen, "node.advertise must be HOST:PORT with a port from 1 to 65535 "
                                  "(got '%s')", val);
            return ATOLL_EINVAL;
        }
        snprintf(c->advertise, sizeof c->advertise, "%s", val);
        goto keep;
    }
    if (!strcmp(key, "cluster.redis")) {
        if (strncmp(val, "redis://", 8) != 0 || val[8] == '\0' || strlen(val) >= sizeof c->redis_url) {
            snprintf(err, errlen, "cluster.redis must be redis://HOST[:PORT][/DB] (got '%s')", val);
            return ATOLL_EINVAL;
        }
        snprintf(c->redis_url, sizeof c->redis_url, "%s", val);
        goto keep;
    }
    if (!strcmp(key, "cluster.secret") || !strcmp(key, "cluster.secret_file")) {
        if (val[0] == '\0' || strlen(val) > 4096) {
            snprintf(err, errlen, "%s must be 1 to 4096 bytes", key);
            return ATOLL_EINVAL;
        }
        goto keep; /* read through atoll__config_get; the file when the node starts */
    }
    if (atoll__config_framework_key(key)) {
        snprintf(err, errlen, "unknown setting '%s'", key);
        return ATOLL_EINVAL;
    }
keep:
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
    if (atoll__config_get(c, "auth.jwt_secret", NULL) != NULL &&
        atoll__config_get(c, "auth.jwt_secret_file", NULL) != NULL) {
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
    return ATOLL_OK;
}

bool
atoll__config_framework_key(const char *key)
{
    static const char *const spaces[] = {"net.", "log.", "node.", "area.", "session.", "auth.",
                                         "store.", "cluster."};
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
        atoll__free(c->settings[i].value);
    }
    atoll__free(c->settings);
    c->settings = NULL;
    c->nsettings = 0;
}
