/* cluster.h -- a node as part of a cluster (src/cluster): what the program (src/app)
 * asks of it. The design is in cluster_int.h and docs/design/cluster.md.
 *
 * The program opens the cluster before the node starts (the secret, Redis, this
 * node's id in the registry, the port of its links: a node that cannot join must not
 * start), puts it in cfg->cluster, and lists atoll__cluster_module before the area
 * module, so that the node's other nodes and the directory in Redis are there when the
 * areas start.
 */
#ifndef ATOLL_CLUSTER_H
#define ATOLL_CLUSTER_H

#include "../node/node.h"

typedef struct atoll__cluster atoll__cluster;

/* Joins the cluster cfg names (cfg->redis_url set): reads the secret, reaches Redis,
 * takes a node id for node.name (cfg->node_id is set to it) and binds node.advertise.
 * NULL with a sentence in err when any of it fails. */
atoll__cluster *atoll__cluster_open(atoll__config *cfg, char *err, size_t errlen);
/* After the node has stopped (its module's stop ended the cluster's thread). */
void atoll__cluster_free(atoll__cluster *c);

extern const atoll__module atoll__cluster_module;

/* The stats of every area node runs (atoll_node_areas), in a new array of *n that the
 * caller frees: for the cluster's heartbeats and the admin API's lists. */
atoll_area_stats *atoll__areas_here(atoll_node *node, size_t *n);

/* ---- operations (control.c): what the admin API asks of the cluster, from any thread ---- */

/* The answer to an operation: an HTTP status and a JSON body (borrowed), from the
 * cluster's thread or a worker. */
typedef void (*atoll__ctl_answer_fn)(void *ctx, int http_status, const char *json, size_t len);

typedef enum atoll__ctl_op {
    ATOLL_CTL_STATUS,       /* the nodes, their roles, loads, areas and players */
    ATOLL_CTL_AREAS,        /* every area: node, epoch, players, load, pin */
    ATOLL_CTL_PLAYERS,      /* the players of `area` */
    ATOLL_CTL_MOVE,         /* move `area` to `node` */
    ATOLL_CTL_PIN,          /* keep `area` on `node` (moved there now) */
    ATOLL_CTL_UNPIN,        /* `area` may move again */
    ATOLL_CTL_DRAIN,        /* move every area off `node`; `stop`: then it exits */
    ATOLL_CTL_DRAIN_STATUS, /* how far the drain of `node` is */
} atoll__ctl_op;

/* Starts op; fn(ctx, ...) answers it once, later. area and node are copied. */
void atoll__cluster_control(atoll__cluster *c, atoll__ctl_op op, const char *area,
                            const char *node, bool stop, atoll__ctl_answer_fn fn, void *ctx);

#endif /* ATOLL_CLUSTER_H */
