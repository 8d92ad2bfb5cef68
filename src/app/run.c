/* run.c -- running a node as a program: `atoll run [options]` (atoll_main, for the
 * atoll binary) and atoll_run (a program that links its own game). The top of the
 * layers: it assembles the node with the modules above it (the cluster, the area
 * runtime, the store) and the admin API's server with its operations (admin_ops.c),
 * which nothing else may do. `atoll ctl` (ctl.c), the admin API's client, is a
 * command of the same program.
 *
 * Settings come from four sources, each over the one before: the defaults, the file of
 * --config, ATOLL_* environment variables, and the command line (--set and the flags
 * that are names for settings, in their order). So the command line is read whole
 * first, and applied last. The settings are then checked against each other, before
 * anything is opened or reached: a contradiction is refused with a sentence and exit
 * status 2.
 *
 * The main thread parses options, starts the node's workers, then waits on a libuv loop
 * of its own for SIGINT/SIGTERM; on the first signal it asks the workers to stop
 * accepting, flush and close, and waits for them. A second signal gets the default
 * action (the process ends at once).
 *
 * Before any thread starts it installs the crash reports of fatal signals and the
 * stall signal's handler (core/crash.h): which handlers a process has is the program's
 * choice, so the library does it here, in atoll_main and atoll_run, and nowhere else.
 */
#include "../area/area.h"
#include "../cluster/cluster.h"
#include "../cluster/link_codec.h"
#include "../store/backends.h"
#include "app.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

/* config.c checks the cluster secret's length without the cluster's headers (a lower
 * layer); the links derive their key from it and need as many bytes. */
_Static_assert(ATOLL_CLUSTER_SECRET_MIN == ATOLL_LINK_SECRET_MIN,
               "config.h and link_codec.h disagree on the cluster secret's length");

static atoll__node node;

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: atoll run [options]\n"
            "       atoll ctl [options] COMMAND   (the admin API's client: atoll ctl --help)\n"
            "\n"
            "Starts an atoll node: clients connect with the Pomelo protocol over raw TCP or\n"
            "WebSocket on one port. Without --redis it is the embedded node: every role in\n"
            "one process, state in SQLite.\n"
            "\n"
            "options:\n"
            "  --game NAME|PATH       game to serve: a built-in one (echo, quick, chat;\n"
            "                         default echo) or a game built as a shared object\n"
            "  --listen HOST:PORT     address or host name to listen on for clients (default\n"
            "                         127.0.0.1:3010; port 0 picks a free port; gates only)\n"
            "  --workers N            worker threads (default: number of cores)\n"
            "  --config PATH          a file of settings: one KEY = VALUE a line, the keys of\n"
            "                         --set (not the flags' names); # starts a comment line\n"
            "  --set KEY=VALUE        any setting, e.g. net.heartbeat=3 (repeatable)\n"
            "  --max-conns N          same as --set net.max_conns=N\n"
            "  --max-package BYTES    same as --set net.max_package=BYTES\n"
            "  --heartbeat SECONDS    same as --set net.heartbeat=SECONDS\n"
            "  --log-level LEVEL      error, warn, info or debug (default info)\n"
            "  --store URL            where players' and areas' state is kept: memory (lost\n"
            "                         at exit), sqlite:PATH, postgres://USER@HOST:PORT/DB\n"
            "                         (default: SQLite in --data)\n"
            "  --data DIR             directory of the embedded SQLite store (default data,\n"
            "                         in the working directory): DIR/atoll.db\n"
            "  --durability MODE      fast (the default: changes are committed within\n"
            "                         store.flush_ms) or durable (a reply waits for its\n"
            "                         change to be committed)\n"
            "  -h, --help             this text\n"
            "\n"
            "cluster (docs/operations.md, \"Cluster flags\"):\n"
            "  --redis URL            redis://HOST[:PORT][/DB]: this node is one of the\n"
            "                         cluster whose directory is there (cluster.redis)\n"
            "  --roles LIST           gate, area, coordinator, comma-separated, any of them\n"
            "                         (node.roles; default all three, the only choice\n"
            "                         without --redis)\n"
            "  --node-id NAME         this node's name in the cluster (node.name)\n"
            "  --advertise HOST:PORT  where this node listens for links from the other\n"
            "                         nodes, as it publishes it to them (node.advertise)\n"
            "  --cluster-secret-file PATH\n"
            "                         the secret the nodes of the cluster share, read at\n"
            "                         start: 16 bytes or more (cluster.secret_file)\n"
            "  --cluster-secret SECRET\n"
            "                         the same given as text (cluster.secret): other users\n"
            "                         of the machine see it in the process list\n"
            "\n"
            "admin API (docs/operations.md, \"Admin API and atoll ctl\"):\n"
            "  --admin HOST:PORT      serve the operator's API, JSON over HTTP, there\n"
            "                         (admin.listen; default: none); port 0 picks one\n"
            "  --admin-token-file PATH\n"
            "                         the bearer token every request must carry, read at\n"
            "                         start (admin.token_file); needed when --admin is not\n"
            "                         a loopback address\n"
            "\n"
            "Each source of settings overrides the one before: the defaults, the --config\n"
            "file, environment variables (ATOLL_ and the key in capitals, '.' as '_':\n"
            "net.max_conns is ATOLL_NET_MAX_CONNS; the framework's keys only), then the\n"
            "command line in its order.\n"
            "\n"
            "settings (docs/operations.md has the full list):\n"
            "  net.max_package, net.max_conns, net.heartbeat, net.heartbeat_timeout,\n"
            "  net.idle_timeout, net.handshake_timeout, net.output_cap, net.rate_limit,\n"
            "  net.rate_burst, net.dict, net.min_client_version, node.workers, log.level,\n"
            "  auth.jwt_secret, auth.jwt_secret_file, auth.jwt_audience, auth.jwt_leeway,\n"
            "  auth.guests (signed logins)\n"
            "  area.slow_ms, area.stall_ms (game code that runs long: logged, reported)\n"
            "  area.keep_ms (deadline of kept requests), session.resume_ms (resume window)\n"
            "  store.url, store.durability, store.flush_ms, store.timeout_ms\n"
            "  node.roles, node.name, node.advertise, cluster.redis, cluster.secret,\n"
            "  cluster.secret_file, cluster.lease_ms, cluster.beat_ms, cluster.link_ping_ms,\n"
            "  cluster.link_timeout_ms, cluster.call_timeout_ms, cluster.moves_per_cycle\n"
            "  admin.listen, admin.token, admin.token_file\n"
            "  and the settings the game declares (an unknown key stops the start)\n");
}


/* The first SIGINT/SIGTERM starts a clean stop. Closing both signal handles restores
 * the default action, so a second signal ends the process at once. */
static void
on_signal(uv_signal_t *s, int signum)
{
    ATOLL_LOG(ATOLL_LOG_INFO, "msg=\"shutting down (a second signal exits at once)\" signal=%d",
              signum);
    atoll__node_stop(&node);
    uv_close((uv_handle_t *)s->data, NULL);
    uv_close((uv_handle_t *)s, NULL);
}

static int
set_or_die(atoll__config *cfg, const char *kv)
{
    char err[300];
    if (atoll__config_set(cfg, kv, err, sizeof err) != ATOLL_OK) {
        fprintf(stderr, "atoll: %s\n", err);
        return -1;
    }
    return 0;
}

/* set_or_die of key=value: a flag that is a name for a setting. The value is not cut
 * whatever its length (a secret may be 4096 bytes). */
static int
set_key_or_die(atoll__config *cfg, const char *key, const char *value)
{
    size_t klen = strlen(key), vlen = strlen(value);
    char *kv = atoll__malloc(klen + vlen + 2);
    memcpy(kv, key, klen);
    kv[klen] = '=';
    memcpy(kv + klen + 1, value, vlen + 1);
    int rc = set_or_die(cfg, kv);
    atoll__free(kv);
    return rc;
}

/* The start's warnings (config.c) as log lines. */
static void
warn_line(void *arg, const char *sentence)
{
    ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"%s\"", sentence);
}

/* Makes the directories above a sqlite: path (--data DIR need not exist yet). */
static int
make_parent_dirs(const char *url)
{
    if (strncmp(url, "sqlite:", 7) != 0)
        return 0;
    char dir[512];
    snprintf(dir, sizeof dir, "%s", url + 7);
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            return -1;
        if (c == '\0')
            return 0;
        *p = c;
    }
}

/* The store URL as it may be shown: a password (postgres://USER:PASSWORD@...) becomes
 * "***", so that an error line never carries it into logs. */
static void
url_for_log(const char *url, char *out, size_t cap)
{
    const char *scheme = strstr(url, "://");
    const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
    const char *colon = scheme ? strchr(scheme + 3, ':') : NULL;
    if (at == NULL || colon == NULL || colon > at) {
        snprintf(out, cap, "%s", url);
        return;
    }
    snprintf(out, cap, "%.*s:***%s", (int)(colon - url), url, at);
}

/* The store --store or --data names, opened (its schema made or checked) in *out: 0,
 * or -1 after a line on stderr that names it. A store that cannot be reached at start
 * stops the start: a node must not serve players whose state it cannot load.
 * `memory` is no store at all (*out NULL): state lives as long as its player or area,
 * for tests and as the benchmarks' baseline. */
static int
open_store(const atoll__config *cfg, atoll__store **out)
{
    char err[300] = "", shown[600];
    *out = NULL;
    if (strcmp(cfg->store_url, "memory") == 0)
        return 0;
    url_for_log(cfg->store_url, shown, sizeof shown);
    if (make_parent_dirs(cfg->store_url) != 0) {
        fprintf(stderr, "atoll: cannot make the directory of %s: %s\n", shown, strerror(errno));
        return -1;
    }
    atoll__store *s = atoll__store_new(cfg->store_url, err, sizeof err);
    if (s == NULL) {
        fprintf(stderr, "atoll: bad store '%s': %s\n", shown, err);
        return -1;
    }
    if (s->ops->open(s, err, sizeof err) != ATOLL_OK) {
        fprintf(stderr, "atoll: cannot open the store %s: %s\n", shown, err);
        atoll__store_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

/* The options of `atoll run`; the letters are getopt's values, never typed. */
static const struct option run_options[] = {
    {"game", required_argument, NULL, 'g'},
    {"listen", required_argument, NULL, 'l'},
    {"workers", required_argument, NULL, 'w'},
    {"config", required_argument, NULL, 'f'},
    {"set", required_argument, NULL, 's'},
    {"max-conns", required_argument, NULL, 'M'},
    {"max-package", required_argument, NULL, 'P'},
    {"heartbeat", required_argument, NULL, 'H'},
    {"log-level", required_argument, NULL, 'L'},
    {"store", required_argument, NULL, 'S'},
    {"data", required_argument, NULL, 'D'},
    {"durability", required_argument, NULL, 'U'},
    {"redis", required_argument, NULL, 'R'},
    {"roles", required_argument, NULL, 'r'},
    {"node-id", required_argument, NULL, 'n'},
    {"advertise", required_argument, NULL, 'a'},
    {"cluster-secret", required_argument, NULL, 'c'},
    {"cluster-secret-file", required_argument, NULL, 'C'},
    {"admin", required_argument, NULL, 'A'},
    {"admin-token-file", required_argument, NULL, 'T'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* One option of the command line, kept until the file and the environment are applied. */
typedef struct {
    int opt;
    const char *arg;
} cli_option;

/* What only the command line can say: which of --store and --data it gave. */
typedef struct {
    bool store, data;
} cli_given;

/* The setting each flag is a name for (NULL: a flag that is not one). */
static const char *
flag_key(int opt)
{
    switch (opt) {
    case 'l':
        return "net.listen";
    case 'w':
        return "node.workers";
    case 'M':
        return "net.max_conns";
    case 'P':
        return "net.max_package";
    case 'H':
        return "net.heartbeat";
    case 'L':
        return "log.level";
    case 'S':
        return "store.url";
    case 'U':
        return "store.durability";
    case 'R':
        return "cluster.redis";
    case 'r':
        return "node.roles";
    case 'n':
        return "node.name";
    case 'a':
        return "node.advertise";
    case 'c':
        return "cluster.secret";
    case 'C':
        return "cluster.secret_file";
    case 'A':
        return "admin.listen";
    case 'T':
        return "admin.token_file";
    default:
        return NULL;
    }
}

/* Applies one option of the command line: 0, or -1 after a line on stderr. */
static int
apply_option(atoll__config *cfg, const cli_option *o, const atoll_game *linked, cli_given *given)
{
    const char *key = flag_key(o->opt);
    if (key != NULL) {
        given->store |= o->opt == 'S';
        return set_key_or_die(cfg, key, o->arg);
    }
    switch (o->opt) {
    case 'g':
        if (linked != NULL) {
            fprintf(stderr, "atoll: this program serves the game %s; --game is not for it\n",
                    linked->name);
            return -1;
        }
        return set_key_or_die(cfg, "node.game", o->arg);
    case 's':
        return set_or_die(cfg, o->arg);
    case 'D': {
        if (o->arg[0] == '\0' || strlen(o->arg) > 400) {
            fprintf(stderr, "atoll: --data wants a directory (at most 400 bytes)\n");
            return -1;
        }
        char kv[448];
        snprintf(kv, sizeof kv, "store.url=sqlite:%s/atoll.db", o->arg);
        given->data = true;
        return set_or_die(cfg, kv);
    }
    default:
        return -1; /* not reached: read_options keeps only the options above */
    }
}

/* Reads the command line into opts[0..*nopts) (argc slots) and the --config path, applying
 * nothing: 0, 1 after --help was printed, or -1 after a line on stderr. */
static int
read_options(int argc, char **argv, cli_option *opts, size_t *nopts, const char **config_path)
{
    int ch;
    *nopts = 0;
    *config_path = NULL;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", run_options, NULL)) != -1) {
        switch (ch) {
        case 'h':
            usage(stdout);
            return 1;
        case 'f':
            if (*config_path != NULL) {
                fprintf(stderr, "atoll: --config is given twice: give one file\n");
                return -1;
            }
            *config_path = optarg;
            break;
        case '?':
        case ':':
            usage(stderr);
            return -1;
        default:
            opts[(*nopts)++] = (cli_option){ch, optarg};
        }
    }
    if (optind < argc) {
        fprintf(stderr, "atoll: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}

/* The settings of `atoll run` from every source, in the order of their precedence, then
 * checked: 0, 1 after --help, or -1 after a line on stderr. */
static int
configure(atoll__config *cfg, int argc, char **argv, const atoll_game *linked)
{
    cli_option *opts = atoll__calloc((size_t)argc + 1, sizeof *opts);
    size_t nopts;
    const char *config_path;
    char err[600];
    int rc = read_options(argc, argv, opts, &nopts, &config_path);
    if (rc == 0 && config_path != NULL &&
        atoll__config_load_file(cfg, config_path, err, sizeof err) != ATOLL_OK) {
        fprintf(stderr, "atoll: %s\n", err);
        rc = -1;
    }
    if (rc == 0 && atoll__config_load_env(cfg, environ, err, sizeof err) != ATOLL_OK) {
        fprintf(stderr, "atoll: %s\n", err);
        rc = -1;
    }
    cli_given given = {false, false};
    for (size_t i = 0; rc == 0 && i < nopts; i++)
        rc = apply_option(cfg, &opts[i], linked, &given);
    atoll__free(opts);
    if (rc != 0)
        return rc;
    /* The command line's own: a file or variable may give store.url, which either flag
     * overrides; both flags at once contradict each other. */
    if (given.store && given.data) {
        fprintf(stderr, "atoll: --store and --data both say where state is kept: give one\n");
        return -1;
    }
    /* The command's default, unlike the library's: state survives a restart. Given by no
     * source at all, not by the file, the environment or the command line. A node of a
     * cluster without the area role keeps no state at all (its areas' nodes do). */
    bool keeps_state = cfg->redis_url[0] == '\0' || (cfg->roles & ATOLL_ROLE_AREA);
    if (atoll__config_get(cfg, "store.url", NULL) == NULL)
        snprintf(cfg->store_url, sizeof cfg->store_url, "%s",
                 keeps_state ? "sqlite:data/atoll.db" : "memory");
    if (atoll__config_check(cfg, err, sizeof err) != ATOLL_OK) {
        fprintf(stderr, "atoll: %s\n", err);
        return -1;
    }
    atoll__log_threshold = cfg->log_level;
    atoll__config_warnings(cfg, environ, warn_line, NULL);
    /* The secret file is read now, before the node reaches Redis or any other node. */
    if (atoll__config_load_secret(cfg, err, sizeof err) != ATOLL_OK ||
        atoll__config_load_admin_token(cfg, err, sizeof err) != ATOLL_OK) {
        fprintf(stderr, "atoll: %s\n", err);
        return -1;
    }
    return 0;
}

static int
cmd_run(int argc, char **argv, const atoll_game *linked)
{
    static atoll__config cfg;
    atoll__config_defaults(&cfg);
    int rc = configure(&cfg, argc, argv, linked);
    if (rc != 0) {
        atoll__config_fini(&cfg);
        return rc == 1 ? 0 : 2;
    }
    atoll__store *store;
    if (open_store(&cfg, &store) != 0) {
        atoll__config_fini(&cfg);
        return 1;
    }
    cfg.store = store;
    /* A node of a cluster joins it before it starts: Redis reached, its node id taken,
     * its links' port bound. A node that cannot join does not serve at all. */
    atoll__cluster *cluster = NULL;
    if (cfg.redis_url[0] != '\0') {
        char err[300];
        cluster = atoll__cluster_open(&cfg, err, sizeof err);
        if (cluster == NULL) {
            fprintf(stderr, "atoll: cannot join the cluster: %s\n", err);
            atoll__store_free(store);
            atoll__config_fini(&cfg);
            return 1;
        }
        cfg.cluster = cluster;
    }
    signal(SIGPIPE, SIG_IGN);
    /* Also this thread's alternate signal stack, kept for the life of the process (the
     * handlers stay installed after a node stops). */
    atoll__crash_install();

    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_signal_t sigint, sigterm;
    uv_signal_init(&loop, &sigint);
    uv_signal_init(&loop, &sigterm);
    sigint.data = &sigterm;
    sigterm.data = &sigint;
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_start(&sigterm, on_signal, SIGTERM);

    if (linked != NULL)
        snprintf(cfg.game, sizeof cfg.game, "%s", linked->name ? linked->name : "linked");
    /* The cluster's module first: the area runtime starts on its directory and links. */
    static const atoll__module *const modules[] = {&atoll__cluster_module, &atoll__area_module,
                                                   NULL};
    rc = atoll__node_start(&node, &cfg, linked, modules);
    if (rc != ATOLL_OK) {
        fprintf(stderr, "atoll: cannot start: %s\n", atoll_strerror(rc));
        uv_close((uv_handle_t *)&sigint, NULL);
        uv_close((uv_handle_t *)&sigterm, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        atoll__cluster_free(cluster);
        atoll__store_free(store);
        atoll__config_fini(&cfg);
        return 1;
    }
    /* The admin API once the node runs: its operations read the node. A node whose
     * admin API cannot listen stops, as one whose client port cannot. */
    atoll__admin_ops ops;
    atoll__node_ops *node_ops = NULL;
    atoll__admin *admin = NULL;
    int admin_port = 0;
    if (cfg.admin_host[0] != '\0') {
        char err[300];
        node_ops = atoll__node_ops_new(&node, &ops);
        admin = atoll__admin_start(cfg.admin_host, cfg.admin_port, cfg.admin_token, &ops,
                                   &admin_port, err, sizeof err);
        if (admin == NULL) {
            fprintf(stderr, "atoll: cannot start the admin API: %s\n", err);
            atoll__node_stop(&node);
            uv_close((uv_handle_t *)&sigint, NULL);
            uv_close((uv_handle_t *)&sigterm, NULL);
            rc = 1;
        }
    }
    /* One machine-readable line on stdout for scripts and tests: where clients connect,
     * or, on a node that holds no client connections, that it runs; then, with --admin,
     * where the admin API listens. */
    if (rc == ATOLL_OK && (cfg.roles & ATOLL_ROLE_GATE)) {
        ATOLL_LOG(ATOLL_LOG_INFO,
                  "msg=\"atoll listening (TCP and WebSocket)\" game=%s host=%s port=%d "
                  "workers=%d version=%s",
                  cfg.game, cfg.host, node.bound_port, node.nworkers, ATOLL_VERSION_STRING);
        printf("listening %s:%d\n", cfg.host, node.bound_port);
    } else if (rc == ATOLL_OK) {
        ATOLL_LOG(ATOLL_LOG_INFO, "msg=\"atoll running (no client port: not a gate)\" game=%s "
                  "workers=%d version=%s", cfg.game, node.nworkers, ATOLL_VERSION_STRING);
        printf("running node %d\n", cfg.node_id);
    }
    if (admin != NULL) {
        bool v6 = strchr(cfg.admin_host, ':') != NULL;
        ATOLL_LOG(ATOLL_LOG_INFO, "msg=\"admin API listening (HTTP)\" host=%s port=%d token=%s",
                  cfg.admin_host, admin_port, cfg.admin_token ? "yes" : "no");
        printf("admin on %s%s%s:%d\n", v6 ? "[" : "", cfg.admin_host, v6 ? "]" : "",
               admin_port);
    }
    fflush(stdout);

    uv_run(&loop, UV_RUN_DEFAULT);
    /* Before the workers end: the operations read them. Calls still waiting are
     * answered 503. */
    atoll__admin_stop(admin);
    atoll__node_ops_free(node_ops);
    atoll__stats st;
    atoll__node_join(&node, &st);
    uv_loop_close(&loop);
    ATOLL_LOG(ATOLL_LOG_INFO,
              "msg=\"stopped\" accepted=%llu refused_full=%llu closed=%llu messages=%llu "
              "protocol_errors=%llu slow=%llu stalled=%llu",
              (unsigned long long)st.accepted, (unsigned long long)st.rejected_full,
              (unsigned long long)st.closed, (unsigned long long)st.messages,
              (unsigned long long)st.protocol_errors, (unsigned long long)st.slow,
              (unsigned long long)st.stalled);
    atoll__cluster_free(cluster);
    atoll__store_free(store); /* committed by now: the node flushed its writer when it stopped */
    atoll__config_fini(&cfg);
    return rc;
}

static int
command(int argc, char **argv, const atoll_game *linked)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
        !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("atoll %s\n", ATOLL_VERSION_STRING);
        return 0;
    }
    if (!strcmp(argv[1], "run"))
        return cmd_run(argc - 1, argv + 1, linked);
    if (!strcmp(argv[1], "ctl"))
        return atoll__ctl_main(argc - 1, argv + 1);
    fprintf(stderr, "atoll: unknown command '%s' (try 'atoll run --help')\n", argv[1]);
    return 2;
}

int
atoll_main(int argc, char **argv)
{
    return command(argc, argv, NULL);
}

int
atoll_run(const atoll_game *game, int argc, char **argv)
{
    if (game == NULL) {
        fprintf(stderr, "atoll: atoll_run needs a game\n");
        return 2;
    }
    return command(argc, argv, game);
}
