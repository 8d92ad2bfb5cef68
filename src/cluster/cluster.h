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

#endif /* ATOLL_CLUSTER_H */
