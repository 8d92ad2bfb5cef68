/* config.h -- the node's settings (config.c): defaults, `--set KEY=VALUE`, and the
 * checks of settings against each other. Built before the workers start and read-only
 * afterwards, so every thread reads it without a lock.
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
    uint32_t moves_per_cycle; /* cluster.moves_per_cycle: areas the coordinator gives
                               * new owners per cycle */
    /* every --set KEY=VALUE, including game settings, in order */
    atoll__setting *settings;
    size_t nsettings;
} atoll__config;

void atoll__config_defaults(atoll__config *c);
/* Applies KEY=VALUE. Known keys (the framework's namespaces) are checked and stored in the
 * typed fields; other keys are kept for the game. Returns ATOLL_OK or ATOLL_EINVAL
 * with a sentence in err. */
int atoll__config_set(atoll__config *c, const char *kv, char *err, size_t errlen);
/* Checks settings against each other (heartbeat vs idle and heartbeat timeouts, output
 * cap vs package size, one source of the auth secret) once all are given. ATOLL_EINVAL with a sentence in err. */
int atoll__config_check(const atoll__config *c, char *err, size_t errlen);
/* Whether key is in one of the framework's namespaces (net., log., node., area., cluster.,
 * session., auth., store.): checked by the node, never a game's. */
bool atoll__config_framework_key(const char *key);
/* A game setting, or def when not given. */
const char *atoll__config_get(const atoll__config *c, const char *key, const char *def);
void atoll__config_fini(atoll__config *c);

#endif /* ATOLL_CONFIG_H */
