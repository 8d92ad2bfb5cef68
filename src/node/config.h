/* config.h -- the node's settings (config.c): defaults, `--set KEY=VALUE`, a file of
 * settings (--config), ATOLL_* environment variables, and the checks of settings against
 * each other. Built before the workers start and read-only afterwards, so every thread
 * reads it without a lock.
 *
 * Where a setting comes from is the program's business (src/app/run.c applies defaults,
 * then the file, then the environment, then the command line); here each source is one
 * function that applies what it holds, so each is tested on its own.
 */
#ifndef ATOLL_CONFIG_H
#define ATOLL_CONFIG_H

#include "../core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>


typedef struct atoll__setting {
    char *key;
    char *value;
} atoll__setting;

/* What a node does in a cluster (node.roles): any combination; all three is the
 * embedded node. */
enum {
    ATOLL_ROLE_GATE = 1u << 0,  /* holds client connections (only gates listen) */
    ATOLL_ROLE_AREA = 1u << 1,  /* hosts areas */
    ATOLL_ROLE_COORD = 1u << 2, /* may be the coordinator (one active, on a Redis lease) */
    ATOLL_ROLE_ALL = 7u,
};

/* Bytes of a cluster secret, at least: the links' handshake derives its key from it
 * (src/cluster/link_codec.h, ATOLL_LINK_SECRET_MIN, says the same; src/app/run.c checks
 * that the two agree). */
#define ATOLL_CLUSTER_SECRET_MIN 16
/* Bytes of a secret, given as text or read from a file, at most. */
#define ATOLL_SECRET_MAX 4096
/* Bytes of the admin API's bearer token, at least (admin.token, admin.token_file): it
 * guards moving areas and draining nodes. */
#define ATOLL_ADMIN_TOKEN_MIN 16

typedef struct atoll__config {
    char host[64];
    int port;
    int workers;            /* 0: number of cores */
    int node_id;            /* node.id: 1..ATOLL_NODE_ID_MAX, in session ids and area numbers */
    char game[256];         /* built-in name or path of a shared object */
    int log_level;
    /* net.* */
    uint32_t max_package;   /* bytes of one package body */
    int max_conns;          /* whole node */
    int heartbeat_s;        /* 0: no heartbeats */
    int heartbeat_timeout_s;/* 0: 2 * heartbeat */
    int idle_timeout_s;     /* no bytes received for this long: close */
    int handshake_timeout_s;/* must reach WORKING within this */
    size_t output_cap;      /* unsent bytes per connection before it is closed */
    double rate_limit;      /* messages per second per connection, 0: off */
    double rate_burst;      /* bucket size; 0: 2 * rate_limit */
    int dict;               /* send the route dictionary in the handshake */
    int loopback_links;     /* node.loopback_links: mail between workers as link frames */
    char min_client_version[32]; /* older clients get {"code":501}; "" = any */
    /* area.*: game code that runs long (the watchdog), kept requests */
    uint32_t slow_ms;       /* a callback longer than this is logged and counted */
    uint32_t stall_ms;      /* one still running after this: backtrace; 0 = off */
    uint32_t keep_ms;       /* default deadline of atoll_req_keep */
    /* session.* */
    uint32_t resume_ms;     /* a dropped player waits this long for gate.resume; 0 = off */
    /* auth.*: auth.jwt_secret, auth.jwt_secret_file, auth.jwt_audience are text settings */
    int jwt_leeway_s;       /* clock skew allowed for exp and nbf */
    int auth_guests;        /* auth.guests: with a secret, sessions may still enter as guests */
    /* store.*: where state documents are kept (src/node/store.h) */
    char store_url[512];    /* memory | sqlite:PATH | postgres://... */
    int store_durable;      /* store.durability: durable (1) or fast (0) */
    uint32_t flush_ms;      /* fast: changes are committed within this */
    uint32_t store_timeout_ms; /* durable: a reply waits this long for its commit */
    /* The store opened from store_url by the program (src/store picks the backend; the
     * layers above the node only see store.h). NULL: nothing is kept. */
    struct atoll__store *store;
    /* The cluster joined by the program (src/cluster) when cluster.redis is set. */
    struct atoll__cluster *cluster;
    /* node.* and cluster.*: the cluster (src/cluster). Without cluster.redis the node is
     * the embedded one: all roles, its own directory, no links. cluster.secret and
     * cluster.secret_file are text settings. */
    unsigned roles;         /* node.roles: ATOLL_ROLE_* bits */
    char node_name[64];     /* node.name: this node in logs and the registry */
    char advertise[128];    /* node.advertise: HOST:PORT of this node's links */
    char redis_url[256];    /* cluster.redis: redis://HOST:PORT ("" = embedded) */
    uint32_t lease_ms;      /* cluster.lease_ms: a node silent this long is dead */
    uint32_t beat_ms;       /* cluster.beat_ms: how often a node renews its lease */
    uint32_t link_ping_ms;  /* cluster.link_ping_ms: a quiet link is pinged this often */
    uint32_t link_timeout_ms; /* cluster.link_timeout_ms: a link silent this long is cut */
    uint32_t call_timeout_ms; /* cluster.call_timeout_ms: mail to a node with no link
                               * waits this long for one, then fails */
    uint32_t moves_per_cycle; /* cluster.moves_per_cycle: areas the coordinator moves at
                               * once (failover, drains, rebalancing) */
    double rebalance_start;   /* cluster.rebalance_start: the load spread, as a share of
                               * the average load, that starts a rebalance (0: never) */
    double rebalance_stop;    /* cluster.rebalance_stop: ... and the one that ends it */
    double rebalance_min_load; /* cluster.rebalance_min_load: a smaller spread is no spread */
    /* admin.*: the operator's API (src/admin). admin.token and admin.token_file are
     * text settings. */
    char admin_host[64];    /* admin.listen's host; "" = no admin server (the default) */
    int admin_port;         /* admin.listen's port, 0: any free one */
    /* The admin API's token, from admin.token or read from admin.token_file by
     * atoll__config_load_admin_token: visible ASCII, NUL-terminated; NULL: none (or no
     * admin server). Wiped when freed. */
    char *admin_token;
    /* Set by the program when the listen address was given (--listen) rather than left
     * at its default: a node without the gate role listens for no client, and one told
     * where to listen is refused rather than ignoring it. */
    bool listen_given;
    /* The cluster secret's bytes, from cluster.secret or read from cluster.secret_file by
     * atoll__config_load_secret (NULL for an embedded node). Wiped when freed. */
    uint8_t *cluster_secret;
    size_t cluster_secret_len;
    /* every --set KEY=VALUE, including game settings, in order */
    atoll__setting *settings;
    size_t nsettings;
} atoll__config;

/* Receives one sentence that deserves a warning line: the settings are still accepted. */
typedef void atoll__config_warn_fn(void *arg, const char *sentence);

void atoll__config_defaults(atoll__config *c);
/* Applies KEY=VALUE. Known keys (the framework's namespaces) are checked and stored in the
 * typed fields; other keys are kept for the game. Returns ATOLL_OK or ATOLL_EINVAL
 * with a sentence in err. */
int atoll__config_set(atoll__config *c, const char *kv, char *err, size_t errlen);
/* Applies the file of settings at path: one `KEY = VALUE` a line, the same keys as
 * atoll__config_set (framework's and game's); spaces around the key and the value are
 * trimmed, a value in double quotes is taken as written between them (spaces, '#',
 * empty), a line whose first non-blank character is '#' is a comment, blank lines are
 * skipped. ATOLL_EINVAL with "PATH:LINE: sentence" in err at the first bad line (the
 * settings of the lines before it are applied). */
int atoll__config_load_file(atoll__config *c, const char *path, char *err, size_t errlen);
/* Applies every framework setting that envp (a NULL-terminated NAME=VALUE list, like
 * environ) gives as its environment variable (atoll__config_env_name). Game settings are
 * never taken from the environment. ATOLL_EINVAL with "NAME: sentence" in err. */
int atoll__config_load_env(atoll__config *c, char *const *envp, char *err, size_t errlen);
/* The environment variable of a framework key: ATOLL_ and the key in capitals, '.' as
 * '_' (cluster.redis: ATOLL_CLUSTER_REDIS). False when out is too small. */
bool atoll__config_env_name(const char *key, char *out, size_t cap);
/* The framework's keys, one list for --set, the file and the environment: the i-th, or
 * NULL past the last. */
const char *atoll__config_key(size_t i);
/* Checks settings against each other once all are given: heartbeat vs idle and heartbeat
 * timeouts, output cap vs package size, one source of each secret, and the cluster's
 * (docs/operations.md, "Cluster flags": roles, advertise, secret, node name, who
 * listens, a shared store, lease and link timing). ATOLL_EINVAL with a sentence that
 * names the flags (and keys) involved in err. Reads no file and reaches no server, so a
 * contradiction is refused before the node connects anywhere. */
int atoll__config_check(const atoll__config *c, char *err, size_t errlen);
/* Passes warn each sentence about settings that are accepted but probably not meant:
 * an ATOLL_* variable of envp that names no setting (a typo), a cluster's area node
 * that keeps its state in memory. */
void atoll__config_warnings(const atoll__config *c, char *const *envp, atoll__config_warn_fn *warn,
                            void *arg);
/* Reads the secret file path, which the setting label names in errors (its content never
 * appears in them): at least min_len and at most ATOLL_SECRET_MAX bytes once one
 * trailing newline (LF or CRLF, as echo and editors leave) is trimmed. *out
 * (atoll__malloc) is wiped by atoll__secret_free. */
int atoll__secret_read_file(const char *label, const char *path, size_t min_len, uint8_t **out,
                            size_t *len, char *err, size_t errlen);
void atoll__secret_free(uint8_t *secret, size_t len);
/* The cluster secret of a node of a cluster into c->cluster_secret: cluster.secret's
 * text, or cluster.secret_file's content read now. Nothing for an embedded node. Call it
 * after atoll__config_check. ATOLL_EINVAL with a sentence in err (never the secret). */
int atoll__config_load_secret(atoll__config *c, char *err, size_t errlen);
/* The admin API's token into c->admin_token when admin.listen is set: admin.token's
 * text, or admin.token_file's content read now (ATOLL_ADMIN_TOKEN_MIN to
 * ATOLL_SECRET_MAX bytes of visible ASCII, as a bearer token is sent). Nothing without
 * admin.listen or a token. Call it after atoll__config_check. ATOLL_EINVAL with a
 * sentence in err (never the token). */
int atoll__config_load_admin_token(atoll__config *c, char *err, size_t errlen);
/* Whether host (an address or a name, without brackets) is this machine's loopback:
 * 127.0.0.0/8, ::1 (or ::ffff:127.x.y.z), or the name localhost. Other names count as
 * reachable from elsewhere: they are not resolved here. */
bool atoll__host_is_loopback(const char *host);
/* Whether key is in one of the framework's namespaces (net., log., node., area., cluster.,
 * session., auth., store., admin.): checked by the node, never a game's. */
bool atoll__config_framework_key(const char *key);
/* A game setting, or def when not given. */
const char *atoll__config_get(const atoll__config *c, const char *key, const char *def);
void atoll__config_fini(atoll__config *c);
/* HOST:PORT with a port 0 .. 65535 (net.listen, node.advertise, the advertised address
 * of a peer): the host, without the brackets of [v6], at *host for *hostlen bytes, and
 * the port; false when it is not that. */
bool atoll__split_hostport(const char *val, const char **host, size_t *hostlen, int *port);

#endif /* ATOLL_CONFIG_H */
