/* cluster_nodes.h -- a cluster of real nodes on loopback for the tests: a Redis and a
 * PostgreSQL of the test's own, area nodes, gates and coordinators of the quick game
 * (or the test game), and `atoll ctl` against a node's admin API.
 */
#ifndef ATOLL_TEST_CLUSTER_NODES_H
#define ATOLL_TEST_CLUSTER_NODES_H

#include "harness.h"
#include "pg.h"
#include "redis.h"

#include <stddef.h>

#define CLUSTER_TEST_SECRET "cluster-test-secret-0123456789"

typedef struct cluster {
    pg_server pg;
    char pg_url[256];
    redis_server redis;
    char redis_url[128];
} cluster;

/* Starts (stops) the cluster's Redis and PostgreSQL. */
void cluster_up(cluster *c);
void cluster_down(cluster *c);
/* A node of the quick game in durable mode (8 areas, no broadcast, no rate limit) with
 * roles, name, and more arguments (NULL-terminated, or NULL): later ones win. */
void start_member(test_node *n, cluster *c, const char *roles, const char *name,
                  const char *const *extra);
/* A node of the cluster serving the test game (tests/games/testgame.c), with more
 * arguments (or NULL). */
void start_testgame_member(test_node *n, cluster *c, const char *roles, const char *name,
                           const char *const *extra);
/* The node id the registry gave n (from its log). */
int node_id_of(const test_node *n);
/* Which node owns area id now (0: none). */
int owner_of(cluster *c, const char *id);
/* The quick game's areas (area-1..area-8) node id owns. */
int areas_of(cluster *c, int id);
/* Two area nodes with the coordinator role (not rebalancing), and a gate. */
void three_up(cluster *c, test_node *a1, test_node *a2, test_node *g);
void three_down(cluster *c, test_node *a1, test_node *a2, test_node *g);
/* Runs `atoll ctl --admin 127.0.0.1:<n's admin port> --json <printf of fmt>`: its exit
 * status, what it printed in out (cut to outlen). */
int ctl(const test_node *n, char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif /* ATOLL_TEST_CLUSTER_NODES_H */
