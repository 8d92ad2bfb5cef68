/* cluster_nodes.c -- the cluster of the tests: its Redis and PostgreSQL, and its
 * nodes (cluster_nodes.h).
 */
#include "cluster_nodes.h"
#include "test.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

void
cluster_up(cluster *c)
{
    ASSERT(pg_start(&c->pg, c->pg_url, sizeof c->pg_url));
    ASSERT(redis_start(&c->redis, c->redis_url, sizeof c->redis_url));
}

void
cluster_down(cluster *c)
{
    redis_stop(&c->redis);
    pg_stop(&c->pg);
}

/* A node of the cluster: roles, name, and more arguments (NULL-terminated, or NULL). */
void
start_member(test_node *n, cluster *c, const char *roles, const char *name,
             const char *const *extra)
{
    const char *args[40] = {"--game", "quick", "--roles", roles, "--node-id", name,
                            "--advertise", "127.0.0.1:0", "--redis", c->redis_url,
                            "--cluster-secret", CLUSTER_TEST_SECRET, "--durability", "durable",
                            "--set", "quick.areas=8", "--set", "quick.broadcast=false",
                            "--set", "net.rate_limit=0"};
    int k = 20;
    if (strstr(roles, "area") != NULL) {
        args[k++] = "--store";
        args[k++] = c->pg_url;
    }
    for (int i = 0; extra && extra[i] && k < 39; i++)
        args[k++] = extra[i];
    args[k] = NULL;
    node_start(n, args);
}

/* A node of the cluster serving the test game (tests/games/testgame.c). */
void
start_testgame_member(test_node *n, cluster *c, const char *roles, const char *name,
                      const char *const *extra)
{
    const char *game = getenv("ATOLL_TESTGAME");
    ASSERT(game != NULL);
    const char *args[40] = {"--game", game, "--roles", roles, "--node-id", name,
                            "--advertise", "127.0.0.1:0", "--redis", c->redis_url,
                            "--cluster-secret", CLUSTER_TEST_SECRET, "--set", "net.rate_limit=0"};
    int k = 14;
    if (strstr(roles, "area") != NULL) {
        args[k++] = "--store";
        args[k++] = c->pg_url;
    }
    for (int i = 0; extra && extra[i] && k < 39; i++)
        args[k++] = extra[i];
    args[k] = NULL;
    node_start(n, args);
}

/* The node id the registry gave n, from its log line "joined the cluster" node=N. */
int
node_id_of(const test_node *n)
{
    FILE *f = fopen(n->log_path, "r");
    ASSERT(f != NULL);
    char line[1024];
    int id = 0;
    while (id == 0 && fgets(line, sizeof line, f) != NULL) {
        const char *p = strstr(line, "msg=\"joined the cluster\" node=");
        if (p != NULL)
            id = atoi(p + strlen("msg=\"joined the cluster\" node="));
    }
    fclose(f);
    ASSERT(id > 0);
    return id;
}

/* Which node owns area id now (0: none). */
int
owner_of(cluster *c, const char *id)
{
    char out[32] = "";
    redis_exec(&c->redis, out, sizeof out, "HGET atoll:area:%s node", id);
    return atoi(out);
}

/* The usual cluster: two area nodes with the coordinator role, and a gate. */
void
three_up(cluster *c, test_node *a1, test_node *a2, test_node *g)
{
    cluster_up(c);
    /* No rebalancing: its tests say where areas go after a death or an outage, and a
     * node that comes back empty would be given areas again (migrate_test tests that). */
    const char *still[] = {"--set", "cluster.rebalance_start=0", NULL};
    start_member(a1, c, "area,coordinator", "a1", still);
    start_member(a2, c, "area,coordinator", "a2", still);
    start_member(g, c, "gate", "g1", NULL);
}

void
three_down(cluster *c, test_node *a1, test_node *a2, test_node *g)
{
    node_stop(g);
    node_stop(a2);
    node_stop(a1);
    cluster_down(c);
}


/* The areas of the quick game node id owns in the directory. */
int
areas_of(cluster *c, int id)
{
    int n = 0;
    for (int i = 1; i <= 8; i++) {
        char area[16];
        snprintf(area, sizeof area, "area-%d", i);
        n += owner_of(c, area) == id;
    }
    return n;
}

int
ctl(const test_node *n, char *out, size_t outlen, const char *fmt, ...)
{
    const char *bin = getenv("ATOLL_BIN");
    ASSERT(bin != NULL);
    char args[512], cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s ctl --admin 127.0.0.1:%d --json %s 2>&1", bin, n->admin_port,
             args);
    FILE *p = popen(cmd, "r");
    ASSERT(p != NULL);
    size_t len = out != NULL && outlen > 0 ? fread(out, 1, outlen - 1, p) : 0;
    if (out != NULL && outlen > 0)
        out[len] = '\0';
    char sink[256];
    while (fread(sink, 1, sizeof sink, p) > 0) {
    }
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
