/* app.h -- what the files of the program (src/app) share: the admin API's operations
 * of this node (admin_ops.c) and `atoll ctl` (ctl.c), which run.c starts.
 */
#ifndef ATOLL_APP_H
#define ATOLL_APP_H

#include "../admin/admin.h"
#include "../node/node.h"

/* The admin operations this node answers from what it holds itself (admin_ops.c):
 * status and areas of this node alone, and its metrics; the others are NULL (501)
 * until the cluster answers them. */
typedef struct atoll__node_ops atoll__node_ops;

/* The operations of node n into *ops, with their context (ops->ctx), which lives until
 * atoll__node_ops_free: after the admin server has stopped. */
atoll__node_ops *atoll__node_ops_new(atoll__node *n, atoll__admin_ops *ops);
void atoll__node_ops_free(atoll__node_ops *o); /* NULL: nothing */

/* `atoll ctl ...` (argv[0] is "ctl"): the exit status, 0 ok, 1 the node answered an
 * error, 2 usage, 3 the node cannot be reached. */
int atoll__ctl_main(int argc, char **argv);

#endif /* ATOLL_APP_H */
