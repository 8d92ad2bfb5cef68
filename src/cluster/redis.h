/* redis.h -- the cluster's state in Redis (redis.c): the directory (the operations of
 * src/node/directory.h), the registry of live nodes with their leases and loads, and
 * the coordinator's lease. The single source of truth of a cluster: which area lives on
 * which node at which epoch, which player is in which area, which nodes are alive.
 *
 * DESIGN. hiredis's asynchronous API on the cluster thread's libuv loop (its libuv
 * adapter), over two connections: one for commands, one subscribed to the channel of
 * invalidations. The directory's operations may be called from any thread (workers
 * call them): they are queued under a mutex and the loop is woken (uv_async); answers
 * go back as DIR_ANSWER mail through the post function, as the in-process directory's
 * do. Everything else runs on the loop's thread.
 *
 * Keys (prefix "atoll:"), each change atomic: a Lua script for a change that reads
 * before it writes or touches several keys, one command otherwise (player:<uid>):
 *   area:<id>        hash {num, node, worker, epoch, type}: where area id lives
 *   node_areas:<n>   set of the area ids node n owns (for failover and draining)
 *   player:<uid>     the area id player uid is in
 *   epoch            the counter of epochs; a new epoch is max(counter + 1, Redis's
 *                    clock in microseconds), so epochs grow across a Redis that lost
 *                    its data, and the store's fencing (epochs of area documents)
 *                    still holds
 *   node:<n>         a live node's record (JSON text: name, advertise, roles, load),
 *                    with a TTL: its lease, renewed by its heartbeat
 *   nodes            hash node id -> name of every node that ever joined (ids are
 *                    reused only once their lease is gone)
 *   coordinator      the active coordinator's node id, with a TTL: its lease
 * Invalidations are published on channel "atoll:inv" as "<epoch> <id>" by the script
 * that changed the entry, after the write (never before).
 *
 * Redis going away: commands fail (directory operations are answered ATOLL_EIO),
 * both connections are made again with backoff (100 ms doubling to 2 s), and the
 * subscription is renewed; what a worker cached stays usable meanwhile (invariant 5:
 * an owner that lost its area answers `moved`). A Redis that stops answering without
 * closing its connections is treated the same once a command waited 2 s.
 */
#ifndef ATOLL_CLUSTER_REDIS_H
#define ATOLL_CLUSTER_REDIS_H

#include "../node/directory.h"

#include <stdbool.h>
#include <uv.h>

typedef struct atoll__redis atoll__redis;

/* A live node as the registry has it. */
typedef struct atoll__redis_node {
    int id;
    char name[64];
    char advertise[128];   /* HOST:PORT of its links */
    unsigned roles;        /* ATOLL_ROLE_* bits (config.h) */
    double load;           /* its measured load (higher is busier) */
    char info[512];        /* the record's JSON text as it was published */
} atoll__redis_node;

/* Parses url (redis://HOST[:PORT][/DB], port 6379 by default) and checks that the
 * server answers (a blocking PING, 2 s at most): NULL with a sentence in err when it
 * does not. The connections of the loop are made by atoll__redis_attach. */
atoll__redis *atoll__redis_new(const char *url, atoll__dir_post_fn post, void *ctx, char *err,
                               size_t errlen);
/* Blocking, before the cluster thread starts: takes a node id for name (a new one, or
 * the one name had if its lease is gone; never the id of a live node), 1..4095.
 * ATOLL_OK, or an error with a sentence in err (ATOLL_ELIMIT: every id is live). The id
 * is held from here by a record without roles, for 5 s, until the node's first
 * heartbeat replaces it. */
int atoll__redis_node_join(atoll__redis *r, const char *name, int *node_id, char *err,
                           size_t errlen);
/* Starts the connections on loop (the cluster thread's), from that thread. */
void atoll__redis_attach(atoll__redis *r, uv_loop_t *loop);
/* The directory over r: its operations may be called from any thread once attached
 * (before atoll__redis_attach and after atoll__redis_detach they are answered
 * ATOLL_EIO at once). It is part of r: its free does nothing, atoll__redis_free frees
 * it. */
atoll__dir *atoll__redis_dir(atoll__redis *r);

/* Loop thread only, from here on. Between attach and detach, a callback below runs on
 * the loop thread and never before the call that asked for it has returned, also when
 * it reports a failure (outside that span it reports the failure at once). */

/* Whether the command connection is up now. */
bool atoll__redis_up(const atoll__redis *r);
/* Publishes this node's record (JSON text) with a lease of lease_ms: the heartbeat. It
 * renews a record that is still there only: a node whose lease ran out was declared
 * dead, and is told (cb's renewed 0) instead of coming back to life unseen; claim
 * writes the record whatever was there (the first beat, and a node that knows what it
 * is after that). cb (may be NULL): renewed 1, 0 (the record was gone), -1 (Redis did
 * not answer). */
void atoll__redis_node_beat(atoll__redis *r, int node_id, const char *info_json,
                            uint32_t lease_ms, bool claim, void (*cb)(void *arg, int renewed),
                            void *arg);
/* The live nodes: cb(arg, nodes, n) on the loop thread (n 0 and nodes NULL on error). */
void atoll__redis_nodes(atoll__redis *r,
                        void (*cb)(void *arg, const atoll__redis_node *nodes, size_t n),
                        void *arg);
/* Takes or renews the coordinator's lease for node_id: cb(arg, true) when node_id holds
 * it now (for lease_ms), false when another node does or Redis did not answer. */
void atoll__redis_coord_lease(atoll__redis *r, int node_id, uint32_t lease_ms,
                              void (*cb)(void *arg, bool held), void *arg);
/* The areas node_id owns: cb(arg, ids, entries, n) (n 0 on error). */
void atoll__redis_node_areas(atoll__redis *r, int node_id,
                             void (*cb)(void *arg, char **ids, const atoll__dir_entry *entries,
                                        size_t n),
                             void *arg);
/* Any other command (argv of argc strings): cb(arg, reply) with the reply (borrowed for
 * the call), or NULL when Redis did not answer or answered an error (logged). */
struct redisReply;
void atoll__redis_cmd(atoll__redis *r, int argc, const char **argv,
                      void (*cb)(void *arg, const struct redisReply *reply), void *arg);
/* A clean stop: drops node_id's record (its lease ends now) and, when held, the
 * coordinator's lease. */
void atoll__redis_node_leave(atoll__redis *r, int node_id);
/* Closes the connections (loop thread); the loop then has no handle of r left once it
 * has run. atoll__redis_free afterwards, from any thread. */
void atoll__redis_detach(atoll__redis *r);
void atoll__redis_free(atoll__redis *r);

#endif /* ATOLL_CLUSTER_REDIS_H */
