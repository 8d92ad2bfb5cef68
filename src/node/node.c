/* node.c -- one atoll node: builds the read-only state (config, game, dictionary),
 * starts the workers with their listeners, and stops them.
 *
 * Everything built here before the threads start is read-only afterwards, which is
 * what lets the workers share it without locks.
 */
#include "auth.h"
#include "session.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
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
/* The workers have ended (joined, or never started): the modules that reach them from
 * threads of their own stop doing so, before the workers are freed. Once. */
static void
halt_modules(atoll__node *n)
{
    if (n->halted)
        return;
    n->halted = true;
    for (const atoll__module *const *m = n->modules; m && *m; m++)
        if ((*m)->halt)
            (*m)->halt(n);
}

static void
release(atoll__node *n, int created)
{
    halt_modules(n);
    for (int j = 0; j < created; j++)
        atoll__worker_free(n->workers[j], NULL);
    atoll__free(n->workers);
    atoll__dict_free(n->dict);
    atoll__free(n->routes);
    atoll__buf_fini(&n->hs_full);
    atoll__buf_fini(&n->hs_cached);
    atoll__jwt_key_free(n->jwt);
    n->jwt = NULL;
    for (const atoll__module *const *m = n->modules; m && *m; m++)
        if ((*m)->stop)
            (*m)->stop(n);
    /* Last: nothing of the game's code or data is used past this point. */
    if (n->dl)
        dlclose(n->dl);
    n->dl = NULL;
}

/* The route dictionary: gate.entry, the game's handler routes ("<type>.<name>") and
 * its push routes; internal handlers (ATOLL_INTERNAL, for calls between areas) get codes
 * of their own that no client is offered. */
static atoll__dict *
build_dict(const atoll__game *g, int ntypes)
{
    size_t nall = 2;
    for (int t = 0; t < ntypes; t++)
        for (const atoll_handler *h = g->api->area_types[t]->handlers; h && h->name; h++)
            nall++;
    char **names = atoll__calloc(nall, sizeof *names);    /* clients' */
    char **hidden = atoll__calloc(nall, sizeof *hidden);  /* internal */
    size_t nh = 0, nhid = 0;
    names[nh++] = atoll__strndup("gate.entry", 10);
    names[nh++] = atoll__strndup("gate.resume", 11);
    for (int t = 0; t < ntypes; t++) {
        const atoll_area_type *type = g->api->area_types[t];
        for (const atoll_handler *h = type->handlers; h && h->name; h++) {
            size_t len = strlen(type->name) + 1 + strlen(h->name);
            char *r = atoll__malloc(len + 1);
            snprintf(r, len + 1, "%s.%s", type->name, h->name);
            if (h->flags & ATOLL_INTERNAL)
                hidden[nhid++] = r;
            else
                names[nh++] = r;
        }
    }
    atoll__dict *d = atoll__dict_new_hidden((const char *const *)names, nh, g->push_routes,
                                            g->npush, (const char *const *)hidden, nhid);
    for (size_t i = 0; i < nh; i++)
        atoll__free(names[i]);
    for (size_t i = 0; i < nhid; i++)
        atoll__free(hidden[i]);
    atoll__free(names);
    atoll__free(hidden);
    return d;
}

/* The route table by code: the area handlers of the game's types (the modules above
 * set what runs them); gate.entry is set by the session layer. */
static void
build_routes(atoll__node *n)
{
    n->routes = atoll__calloc(atoll__dict_count(n->dict) + 1, sizeof *n->routes);
    for (int t = 0; t < n->ntypes; t++) {
        const atoll_area_type *type = n->game->api->area_types[t];
        for (const atoll_handler *h = type->handlers; h && h->name; h++) {
            char r[ATOLL_ROUTE_MAX + 1];
            snprintf(r, sizeof r, "%s.%s", type->name, h->name);
            atoll__route_entry *e = &n->routes[atoll__dict_code(n->dict, r, strlen(r))];
            e->handler = h;
            e->type_index = t;
        }
    }
}

int
atoll__node_start(atoll__node *n, atoll__config *cfg, const atoll_game *linked,
                  const atoll__module *const *modules)
{
    memset(n, 0, sizeof *n);
    n->cfg = cfg;
    n->id = cfg->node_id;
    n->modules = modules;
    /* The login key first: a node that cannot check tokens must not serve at all. */
    char err[200];
    if (atoll__jwt_key_load(cfg, &n->jwt, err, sizeof err) != ATOLL_OK) {
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"bad auth settings\" error=\"%s\"", err);
        return ATOLL_EINVAL;
    }
    if (n->jwt == NULL)
        ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"logins are not authenticated (set auth.jwt_secret)\"");
    else
        ATOLL_LOG(ATOLL_LOG_INFO,
                  "msg=\"logins need a signed token\" alg=HS256 audience=\"%s\" leeway_s=%d "
                  "guests=%s",
                  n->jwt->audience ? n->jwt->audience : "", n->jwt->leeway_s,
                  cfg->auth_guests ? "true" : "false");
    if (linked != NULL) {
        n->game_storage.name = linked->name;
        n->game_storage.api = linked;
        n->game_storage.push_routes = linked->push_routes;
        for (const char *const *r = linked->push_routes; r && *r; r++)
            n->game_storage.npush++;
        n->game = &n->game_storage;
    } else {
        n->game = atoll__game_load(cfg->game, &n->game_storage, &n->dl);
    }
    if (n->game == NULL) {
        atoll__jwt_key_free(n->jwt);
        n->jwt = NULL;
        return ATOLL_ENOENT;
    }
    if (atoll__game_check(n->game->api, &n->ntypes, err, sizeof err) != ATOLL_OK) {
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"bad game definition\" game=\"%s\" error=\"%s\"",
                  n->game->name ? n->game->name : cfg->game, err);
        release(n, 0);
        return ATOLL_EINVAL;
    }
    char serr[600];
    if (atoll__game_check_settings(n->game->api, cfg, serr, sizeof serr) != ATOLL_OK) {
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"bad setting\" game=\"%s\" error=\"%s\"",
                  n->game->name ? n->game->name : cfg->game, serr);
        release(n, 0);
        return ATOLL_EINVAL;
    }
    n->dict = build_dict(n->game, n->ntypes);
    if (n->dict == NULL) {
        release(n, 0);
        return ATOLL_ELIMIT;
    }
    build_routes(n);
    atoll__session_start(n);
    const atoll__dict *dict = cfg->dict ? n->dict : NULL;
    atoll__handshake_reply(&n->hs_full, cfg->heartbeat_s, dict, NULL);
    atoll__handshake_reply(&n->hs_cached, cfg->heartbeat_s, dict, atoll__dict_version(n->dict));

    if (cfg->rate_burst < 1)
        cfg->rate_burst = cfg->rate_limit * 2 > 1 ? cfg->rate_limit * 2 : 1;
    raise_fd_limit(cfg);
    n->net_limits = (atoll__net_limits){
        .max_package = cfg->max_package,
        .max_conns = cfg->max_conns,
        .idle_timeout_s = cfg->idle_timeout_s,
        .handshake_timeout_s = cfg->handshake_timeout_s,
        .output_cap = cfg->output_cap,
    };
    n->nworkers = cfg->workers > 0 ? cfg->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n->nworkers < 1)
        n->nworkers = 1;
    if (n->nworkers > 255)
        n->nworkers = 255;
    /* A worker numbers its sessions in ATOLL_SESSION_SLOTS slots. */
    long slots = (long)n->nworkers * (ATOLL_SESSION_SLOTS - 1);
    if (cfg->max_conns > slots) {
        ATOLL_LOG(ATOLL_LOG_INFO, "msg=\"net.max_conns capped by the session slots\" now=%ld",
                  slots);
        cfg->max_conns = (int)slots;
        n->net_limits.max_conns = cfg->max_conns;
    }
    /* Only gates hold client connections: an area node or a coordinator listens for
     * nothing but its links (the cluster's). */
    bool gate = (cfg->roles & ATOLL_ROLE_GATE) != 0;
    int rc = gate ? atoll__listen_probe(cfg->host, cfg->port) : ATOLL_OK;
    if (rc != ATOLL_OK) {
        release(n, 0);
        return rc;
    }
    int total = n->nworkers;
    for (const atoll__module *const *m = n->modules; m && *m; m++) {
        rc = (*m)->start ? (*m)->start(n) : ATOLL_OK;
        if (rc != ATOLL_OK) {
            release(n, 0);
            return rc;
        }
    }
    n->workers = atoll__calloc((size_t)total, sizeof *n->workers);
    int port = cfg->port;
    for (int i = 0; i < total; i++) {
        n->workers[i] = atoll__worker_new(n, i);
        rc = gate ? atoll__worker_listen(n->workers[i], cfg->host, port, &n->bound_port)
                  : ATOLL_OK;
        if (rc != ATOLL_OK) {
            release(n, i + 1);
            return rc;
        }
        /* Port 0 picks a free port once; the other workers join it. */
        port = n->bound_port;
    }
    for (const atoll__module *const *m = n->modules; m && *m; m++) {
        rc = (*m)->ready ? (*m)->ready(n) : ATOLL_OK;
        if (rc != ATOLL_OK) {
            release(n, total);
            return rc;
        }
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
    /* The watchdog of game code that runs long (core/crash.h). Without it the node
     * still serves: only stalls go unreported. */
    n->watch_slots = atoll__calloc((size_t)total, sizeof *n->watch_slots);
    for (int i = 0; i < total; i++)
        n->watch_slots[i] = &n->workers[i]->watch;
    if (atoll__watchdog_start(&n->watchdog, n->watch_slots, total, cfg->stall_ms) != ATOLL_OK)
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"cannot start the watchdog thread: stalls go unreported\"");
    return ATOLL_OK;
}

void
atoll__node_stop(atoll__node *n)
{
    if (atomic_exchange(&n->stopping, true))
        return;
    for (int i = 0; i < n->nworkers; i++) {
        atoll__mail *m = atoll__mail_new(ATOLL_MAIL_STOP, 0);
        atoll__worker_post(n->workers[i], m);
    }
}

void
atoll__node_join(atoll__node *n, atoll__stats *out)
{
    /* Before the workers are joined: it must never signal a thread that has gone. */
    atoll__watchdog_stop(&n->watchdog);
    atoll__free(n->watch_slots);
    n->watch_slots = NULL;
    for (int i = 0; i < n->nworkers; i++)
        pthread_join(n->workers[i]->thread, NULL);
    halt_modules(n);
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
        sum.slow += st.slow;
    }
    sum.stalled = atomic_load(&n->watchdog.stalled);
    if (out)
        *out = sum;
    release(n, 0);
}

/* ---- settings for game code (atoll.h) ------------------------------------------------ */

const char *
atoll_setting(const atoll_node *n, const char *key, const char *def)
{
    if (n == NULL || key == NULL)
        return def;
    const char *v = atoll__config_get(n->cfg, key, NULL);
    if (v != NULL)
        return v;
    const atoll_setting_decl *d = atoll__game_setting(n->game ? n->game->api : NULL, key);
    return d != NULL && d->def != NULL ? d->def : def;
}

int64_t
atoll_setting_int(const atoll_node *n, const char *key, int64_t def)
{
    const char *v = atoll_setting(n, key, NULL);
    if (v == NULL || *v == '\0')
        return def;
    char *end;
    long long x = strtoll(v, &end, 10);
    return *end == '\0' ? (int64_t)x : def;
}

int
atoll_setting_bool(const atoll_node *n, const char *key, int def)
{
    const char *v = atoll_setting(n, key, NULL);
    if (v == NULL)
        return def;
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return 1;
        if (strcasecmp(v, no[i]) == 0)
            return 0;
    }
    return def;
}
