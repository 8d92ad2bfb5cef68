/* node.c -- one atoll node: builds the read-only state (config, game, dictionary),
 * starts the workers with their listeners, and stops them.
 *
 * Everything built here before the threads start is read-only afterwards, which is
 * what lets the workers share it without locks.
 */
#include "worker.h"

#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>


static void
raise_fd_limit(atoll__config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    /* Leave room for listeners, the loop's own descriptors and logs. */
    rlim_t room = rl.rlim_cur > 256 ? rl.rlim_cur - 128 : rl.rlim_cur / 2;
    if ((rlim_t)cfg->max_conns > room) {
        ATOLL_LOG(ATOLL_LOG_INFO,
                  "msg=\"net.max_conns capped by the file descriptor limit\" max_conns=%d "
                  "now=%llu",
                  cfg->max_conns, (unsigned long long)room);
        cfg->max_conns = (int)room;
    }
}

/* Frees what node_start built, with the first `created` workers (threads joined or
 * never started). */
static void
release(atoll__node *n, int created)
{
    for (int j = 0; j < created; j++)
        atoll__worker_free(n->workers[j], NULL);
    atoll__free(n->workers);
    atoll__dict_free(n->dict);
    atoll__free(n->handlers);
    atoll__buf_fini(&n->hs_full);
    atoll__buf_fini(&n->hs_cached);
}

int
atoll__node_start(atoll__node *n, atoll__config *cfg)
{
    memset(n, 0, sizeof *n);
    n->cfg = cfg;
    n->game = atoll__game_find(cfg->game);
    if (n->game == NULL) {
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"unknown game\" game=\"%s\"", cfg->game);
        return ATOLL_ENOENT;
    }
    /* Dictionary: the framework's routes, the game's handler routes, its push routes. */
    size_t nh = n->game->nroutes + 1;
    const char **handlers = atoll__calloc(nh, sizeof *handlers);
    handlers[0] = "gate.entry";
    for (size_t i = 0; i < n->game->nroutes; i++)
        handlers[i + 1] = n->game->routes[i].route;
    n->dict = atoll__dict_new(handlers, nh, n->game->push_routes, n->game->npush);
    atoll__free(handlers);
    if (n->dict == NULL)
        return ATOLL_ELIMIT;
    atoll__dispatch_build(n);
    const atoll__dict *dict = cfg->dict ? n->dict : NULL;
    atoll__handshake_reply(&n->hs_full, cfg->heartbeat_s, dict, NULL);
    atoll__handshake_reply(&n->hs_cached, cfg->heartbeat_s, dict, atoll__dict_version(n->dict));

    if (cfg->rate_burst < 1)
        cfg->rate_burst = cfg->rate_limit * 2 > 1 ? cfg->rate_limit * 2 : 1;
    raise_fd_limit(cfg);
    n->nworkers = cfg->workers > 0 ? cfg->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n->nworkers < 1)
        n->nworkers = 1;
    if (n->nworkers > 255)
        n->nworkers = 255;
    int rc = atoll__listen_probe(cfg->host, cfg->port);
    if (rc != ATOLL_OK) {
        release(n, 0);
        return rc;
    }
    int total = n->nworkers;
    n->workers = atoll__calloc((size_t)total, sizeof *n->workers);
    int port = cfg->port;
    for (int i = 0; i < total; i++) {
        n->workers[i] = atoll__worker_new(n, i);
        rc = atoll__worker_listen(n->workers[i], cfg->host, port, &n->bound_port);
        if (rc != ATOLL_OK) {
            release(n, i + 1);
            return rc;
        }
        /* Port 0 picks a free port once; the other workers join it. */
        port = n->bound_port;
    }
    for (int i = 0; i < total; i++) {
        if (atoll__worker_start(n->workers[i]) != ATOLL_OK) {
            ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"cannot start worker thread\" worker=%d", i);
            /* Stop and join the ones already running, then free all of them. */
            n->nworkers = i;
            atoll__node_stop(n);
            for (int j = 0; j < i; j++)
                pthread_join(n->workers[j]->thread, NULL);
            release(n, total);
            return ATOLL_EIO;
        }
    }
    return ATOLL_OK;
}

void
atoll__node_stop(atoll__node *n)
{
    if (atomic_exchange(&n->stopping, true))
        return;
    for (int i = 0; i < n->nworkers; i++) {
        atoll__mail *m = atoll__calloc(1, sizeof *m);
        m->type = ATOLL_MAIL_STOP;
        atoll__worker_post(n->workers[i], m);
    }
}

void
atoll__node_join(atoll__node *n, atoll__stats *out)
{
    for (int i = 0; i < n->nworkers; i++)
        pthread_join(n->workers[i]->thread, NULL);
    atoll__stats sum = {0};
    for (int i = 0; i < n->nworkers; i++) {
        /* Freeing runs the last close callbacks, which still count closes. */
        atoll__stats st;
        atoll__worker_free(n->workers[i], &st);
        sum.accepted += st.accepted;
        sum.rejected_full += st.rejected_full;
        sum.closed += st.closed;
        sum.messages += st.messages;
        sum.protocol_errors += st.protocol_errors;
    }
    if (out)
        *out = sum;
    release(n, 0);
}
