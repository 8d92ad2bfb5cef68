/* config_test.c -- the node's settings (src/node/config.c): the one table of framework
 * keys and their environment variables, --set, the file of --config (comments, blanks,
 * quotes, spaces, a bad line and its number, an unknown key, a game key kept), the
 * ATOLL_* variables and the warnings for names that are no setting, the precedence of
 * the sources as `atoll run` applies them, node.roles, every check of a cluster's
 * settings (each refused with its sentence, and the nearest accepted case next to it),
 * the cluster secret read from its file, and the admin API's address and token: a
 * token whenever the address is not a loopback one, read from its file at start.
 */
#include "node/config.h"
#include "test.h"

#include <atoll/atoll.h>

/* ---- helpers ---------------------------------------------------------------------------- */

/* Applies KEY=VALUE settings (NULL-terminated) to c, each of which must be accepted. */
static void
set_all_(atoll__config *c, const char *const *kv, int line)
{
    char err[300];
    for (size_t i = 0; kv[i]; i++) {
        if (atoll__config_set(c, kv[i], err, sizeof err) != ATOLL_OK) {
            fprintf(stderr, "  line %d: %s: %s\n", line, kv[i], err);
            ASSERT(0);
        }
    }
}
#define SET_ALL(c, ...) set_all_((c), (const char *[]){__VA_ARGS__, NULL}, __LINE__)

/* c must be refused by atoll__config_set with this KEY=VALUE, saying want. */
static void
set_refused_(atoll__config *c, const char *kv, const char *want, int line)
{
    char err[300] = "";
    if (atoll__config_set(c, kv, err, sizeof err) != ATOLL_EINVAL || strcmp(err, want) != 0) {
        fprintf(stderr, "  line %d: %s said \"%s\", want \"%s\"\n", line, kv, err, want);
        ASSERT(0);
    }
}
#define SET_REFUSED(c, kv, want) set_refused_((c), (kv), (want), __LINE__)

/* atoll__config_check of c must pass (want NULL) or refuse with a sentence holding want. */
static void
check_(const atoll__config *c, const char *want, int line)
{
    char err[600] = "";
    int rc = atoll__config_check(c, err, sizeof err);
    if (want == NULL && rc != ATOLL_OK) {
        fprintf(stderr, "  line %d: refused: %s\n", line, err);
        ASSERT(0);
    }
    if (want != NULL && (rc != ATOLL_EINVAL || strstr(err, want) == NULL)) {
        fprintf(stderr, "  line %d: rc %d \"%s\", want a refusal saying \"%s\"\n", line, rc, err,
                want);
        ASSERT(0);
    }
}
#define CHECK_OK(c) check_((c), NULL, __LINE__)
#define CHECK_REFUSED(c, want) check_((c), (want), __LINE__)

/* A file in /tmp holding text; its path in path (64 bytes). */
static void
temp_file(char *path, const char *text)
{
    snprintf(path, 64, "/tmp/atoll-config-test-XXXXXX");
    int fd = mkstemp(path);
    ASSERT(fd >= 0);
    size_t n = strlen(text);
    ASSERT_EQ(write(fd, text, n), (ssize_t)n);
    close(fd);
}

/* The warnings of atoll__config_warnings, one a line. */
typedef struct {
    char text[2048];
    int count;
} warnings;

static void
collect(void *arg, const char *sentence)
{
    warnings *w = arg;
    size_t len = strlen(w->text);
    snprintf(w->text + len, sizeof w->text - len, "%s\n", sentence);
    w->count++;
}

#define SECRET16 "0123456789abcdef"

/* Settings of a node of a cluster that every check accepts: a gate and area node on a
 * shared store, named, with a secret and an address for its links. */
static void
cluster_node(atoll__config *c)
{
    atoll__config_defaults(c);
    SET_ALL(c, "cluster.redis=redis://127.0.0.1:6379", "cluster.secret=" SECRET16,
            "node.advertise=10.0.0.5:4000", "node.name=node-a", "node.roles=gate,area",
            "store.url=postgres://atoll@db:5432/atoll");
}

/* ---- the table of keys ------------------------------------------------------------------ */

TEST(every_framework_key_has_one_variable_and_no_two_share_it)
{
    char name[96], other[96];
    size_t n = 0;
    for (; atoll__config_key(n) != NULL; n++) {
        const char *key = atoll__config_key(n);
        ASSERT(atoll__config_framework_key(key));
        ASSERT(atoll__config_env_name(key, name, sizeof name));
        for (size_t j = 0; j < n; j++) {
            ASSERT(strcmp(atoll__config_key(j), key) != 0);
            ASSERT(atoll__config_env_name(atoll__config_key(j), other, sizeof other));
            ASSERT(strcmp(other, name) != 0);
        }
    }
    /* the settings docs/operations.md lists, the cluster's among them */
    ASSERT(n >= 40);
    ASSERT(atoll__config_env_name("cluster.redis", name, sizeof name));
    ASSERT_STR(name, "ATOLL_CLUSTER_REDIS");
    ASSERT(atoll__config_env_name("net.max_conns", name, sizeof name));
    ASSERT_STR(name, "ATOLL_NET_MAX_CONNS");
    ASSERT(!atoll__config_env_name("net.max_conns", name, 19)); /* does not fit: said so */
}

TEST(set_stores_each_kind_of_field_and_keeps_game_keys)
{
    atoll__config c;
    atoll__config_defaults(&c);
    SET_ALL(&c, "net.max_conns=7", "net.output_cap=2048", "net.rate_limit=9", "area.slow_ms=11",
            "net.dict=off", "auth.guests=yes", "log.level=debug", "store.durability=durable",
            "net.min_client_version=1.2.0", "node.name=n.1_x-y", "quick.areas=3");
    ASSERT_EQ(c.max_conns, 7);
    ASSERT_EQ(c.output_cap, 2048);
    ASSERT(c.rate_limit == 9.0);
    ASSERT_EQ(c.slow_ms, 11);
    ASSERT_EQ(c.dict, 0);
    ASSERT_EQ(c.auth_guests, 1);
    ASSERT_EQ(c.log_level, ATOLL_LOG_DEBUG);
    ASSERT_EQ(c.store_durable, 1);
    ASSERT_STR(c.min_client_version, "1.2.0");
    ASSERT_STR(c.node_name, "n.1_x-y");
    /* A game's key is kept as text for the game, which checks it at start. */
    ASSERT_STR(atoll__config_get(&c, "quick.areas", NULL), "3");
    /* Later wins, in the field and in the text. */
    SET_ALL(&c, "net.max_conns=8");
    ASSERT_EQ(c.max_conns, 8);
    ASSERT_STR(atoll__config_get(&c, "net.max_conns", NULL), "8");
    SET_REFUSED(&c, "net.max_conns=0",
                "net.max_conns must be an integer from 1 to 10000000 (open connections for the "
                "whole node)");
    SET_REFUSED(&c, "net.dict=maybe", "net.dict must be true or false");
    SET_REFUSED(&c, "net.maxconns=5", "unknown setting 'net.maxconns'");
    SET_REFUSED(&c, "cluster.redis=http://x",
                "cluster.redis must be redis://HOST[:PORT][/DB] "
                "(got 'http://x')");
    SET_REFUSED(&c, "node.advertise=host",
                "node.advertise must be HOST:PORT with a port from "
                "0 (any free one, published as bound) to 65535 (got 'host')");
    SET_REFUSED(&c, "node.advertise=h:65536",
                "node.advertise must be HOST:PORT with a port from "
                "0 (any free one, published as bound) to 65535 (got 'h:65536')");
    SET_REFUSED(&c, "node.name=a b",
                "node.name must be 1 to 63 letters, digits, '-', '_' or "
                "'.' (got 'a b')");
    SET_REFUSED(&c, "cluster.secret=", "cluster.secret must be 1 to 4096 bytes");
    SET_REFUSED(&c, "nokey", "setting 'nokey' is not KEY=VALUE");
    /* --listen and --game as settings (a config file can hold them). */
    SET_REFUSED(&c, "net.listen=nohost", "--listen wants HOST:PORT, got 'nohost' (net.listen)");
    SET_REFUSED(&c, "net.listen=:3010", "--listen wants HOST:PORT, got ':3010' (net.listen)");
    SET_REFUSED(&c, "node.game=", "--game is empty or too long (node.game: at most 255 bytes)");
    char err[200];
    ASSERT_EQ(atoll__config_set(&c, "net.listen=[::1]:3011", err, sizeof err), ATOLL_OK);
    ASSERT_STR(c.host, "::1");
    ASSERT_EQ(c.port, 3011);
    ASSERT(c.listen_given);
    ASSERT_EQ(atoll__config_set(&c, "node.game=quick", err, sizeof err), ATOLL_OK);
    ASSERT_STR(c.game, "quick");
    ASSERT_EQ(c.max_conns, 8); /* a refused value changes nothing */
    atoll__config_fini(&c);
}

TEST(roles_are_any_combination_of_three_names)
{
    atoll__config c;
    atoll__config_defaults(&c);
    ASSERT_EQ(c.roles, ATOLL_ROLE_ALL);
    SET_ALL(&c, "node.roles=gate");
    ASSERT_EQ(c.roles, ATOLL_ROLE_GATE);
    SET_ALL(&c, "node.roles=area,gate");
    ASSERT_EQ(c.roles, ATOLL_ROLE_GATE | ATOLL_ROLE_AREA);
    SET_ALL(&c, "node.roles=coordinator");
    ASSERT_EQ(c.roles, ATOLL_ROLE_COORD);
    SET_ALL(&c, "node.roles= coordinator , area");
    ASSERT_EQ(c.roles, ATOLL_ROLE_COORD | ATOLL_ROLE_AREA);
    SET_ALL(&c, "node.roles=gate,area,coordinator,gate");
    ASSERT_EQ(c.roles, ATOLL_ROLE_ALL);
    const char *bad[] = {"", "gates", "Gate", "gate,,area", "gate,", ",area", "gate;area"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char kv[64], want[200];
        snprintf(kv, sizeof kv, "node.roles=%s", bad[i]);
        snprintf(want, sizeof want,
                 "node.roles must be a comma-separated list of gate, area, "
                 "coordinator (got '%s')",
                 bad[i]);
        SET_REFUSED(&c, kv, want);
    }
    ASSERT_EQ(c.roles, ATOLL_ROLE_ALL); /* the last good value stays */
    atoll__config_fini(&c);
}

/* ---- the file of --config --------------------------------------------------------------- */

TEST(a_file_of_settings_with_comments_blanks_quotes_and_spaces)
{
    char path[64], err[400];
    temp_file(path, "# the settings of one node\n"
                    "\n"
                    "   \t\n"
                    "net.max_conns = 500\n"
                    "net.heartbeat=4\r\n"
                    "\tlog.level\t=\twarn   \n"
                    "   # an indented comment = not a setting\n"
                    "store.url = postgres://atoll@db:5432/atoll?sslmode=require\n"
                    "auth.jwt_audience = \"  two words # not a comment  \"\n"
                    "net.min_client_version = \"\"\n"
                    "cluster.secret = a#b \"c\" d=e\n"
                    "mygame.motto = \"say \"hi\" here\"\n"
                    "quick.broadcast = false\n"
                    "net.max_conns = 600\n");
    atoll__config c;
    atoll__config_defaults(&c);
    ASSERT_EQ(atoll__config_load_file(&c, path, err, sizeof err), ATOLL_OK);
    ASSERT_EQ(c.max_conns, 600); /* the later line wins, as with --set */
    ASSERT_EQ(c.heartbeat_s, 4); /* a CRLF line */
    ASSERT_EQ(c.log_level, ATOLL_LOG_WARN);
    ASSERT_STR(c.store_url, "postgres://atoll@db:5432/atoll?sslmode=require");
    ASSERT_STR(atoll__config_get(&c, "auth.jwt_audience", NULL), "  two words # not a comment  ");
    ASSERT_STR(c.min_client_version, "");
    /* Unquoted, a value is the rest of the line: '#', quotes and '=' in it are its own. */
    ASSERT_STR(atoll__config_get(&c, "cluster.secret", NULL), "a#b \"c\" d=e");
    /* Only the outer quotes go. */
    ASSERT_STR(atoll__config_get(&c, "mygame.motto", NULL), "say \"hi\" here");
    ASSERT_STR(atoll__config_get(&c, "quick.broadcast", NULL), "false");
    ASSERT(atoll__config_get(&c, "net.idle_timeout", NULL) == NULL);
    unlink(path);
    atoll__config_fini(&c);
}

/* The file's first bad line stops it, named by path and number. */
static void
file_refused_(const char *text, const char *want_after_path, int line)
{
    char path[64], err[400], want[400];
    temp_file(path, text);
    atoll__config c;
    atoll__config_defaults(&c);
    int rc = atoll__config_load_file(&c, path, err, sizeof err);
    snprintf(want, sizeof want, "%s:%s", path, want_after_path);
    unlink(path);
    atoll__config_fini(&c);
    if (rc != ATOLL_EINVAL || strcmp(err, want) != 0) {
        fprintf(stderr, "  line %d: rc %d \"%s\", want \"%s\"\n", line, rc, err, want);
        ASSERT(0);
    }
}
#define FILE_REFUSED(text, want) file_refused_((text), (want), __LINE__)

TEST(a_bad_line_is_named_by_its_file_and_number)
{
    FILE_REFUSED("# ok\nnet.heartbeat = 3\n\nnet.heartbeat 3\n",
                 "4: not KEY = VALUE (a comment line starts with #)");
    FILE_REFUSED("net.max_conns = 5\nnet.maxconns = 5\n", "2: unknown setting 'net.maxconns'");
    FILE_REFUSED("\n\n\nnet.max_conns = lots\n",
                 "4: net.max_conns must be an integer from 1 to 10000000 (open connections for "
                 "the whole node)");
    FILE_REFUSED("= 5\n", "1: no key before '='");
    FILE_REFUSED("net. max_conns = 5\n", "1: 'net. max_conns' is not a key: a key has no spaces");
    FILE_REFUSED("auth.jwt_audience = \"open\n", "1: the value's opening quote has no closing "
                                                 "quote at the end of the line");
    FILE_REFUSED("auth.jwt_audience = \"\n", "1: the value's opening quote has no closing "
                                             "quote at the end of the line");
    FILE_REFUSED("cluster.secret =\n", "1: cluster.secret must be 1 to 4096 bytes");
    char err[300];
    atoll__config c;
    atoll__config_defaults(&c);
    ASSERT_EQ(atoll__config_load_file(&c, "/nonexistent/atoll.conf", err, sizeof err),
              ATOLL_EINVAL);
    ASSERT_STR(err, "cannot read the config file /nonexistent/atoll.conf: No such file or "
                    "directory");
    atoll__config_fini(&c);
}

TEST(the_flags_names_are_not_keys_of_the_file)
{
    /* "redis" names no namespace of the framework, so it is a game's key: kept, and the
     * game's check at start refuses it as unknown; nothing of the cluster is set. */
    char path[64], err[300];
    temp_file(path, "redis = redis://127.0.0.1\nroles = gate\n");
    atoll__config c;
    atoll__config_defaults(&c);
    ASSERT_EQ(atoll__config_load_file(&c, path, err, sizeof err), ATOLL_OK);
    ASSERT_STR(c.redis_url, "");
    ASSERT_EQ(c.roles, ATOLL_ROLE_ALL);
    ASSERT_STR(atoll__config_get(&c, "redis", NULL), "redis://127.0.0.1");
    unlink(path);
    atoll__config_fini(&c);
}

/* ---- the environment ------------------------------------------------------------------- */

TEST(environment_variables_give_framework_settings_only)
{
    char *envp[] = {
        "PATH=/usr/bin",
        "ATOLL_CLUSTER_REDIS=redis://10.0.0.1:6379/2",
        "ATOLL_NET_MAX_CONNS=42",
        "ATOLL_NODE_ROLES=gate,coordinator",
        "ATOLL_AUTH_JWT_AUDIENCE=game = one",
        "ATOLL_QUICK_AREAS=5",    /* a game's: never from the environment */
        "ATOLL_NET_MAXCONNS=9",   /* a typo */
        "ATOLL_LOOPBACK_LINKS=1", /* the test suite's, read by its harness */
        "ATOLL_BIN=build/atoll",  /* the test suite's */
        "atoll_net_max_conns=3",  /* not ATOLL_: not ours */
        "ATOLL_net_max_conns=3",  /* names are in capitals */
        NULL,
    };
    atoll__config c;
    atoll__config_defaults(&c);
    char err[300];
    ASSERT_EQ(atoll__config_load_env(&c, envp, err, sizeof err), ATOLL_OK);
    ASSERT_STR(c.redis_url, "redis://10.0.0.1:6379/2");
    ASSERT_EQ(c.max_conns, 42);
    ASSERT_EQ(c.roles, ATOLL_ROLE_GATE | ATOLL_ROLE_COORD);
    ASSERT_STR(atoll__config_get(&c, "auth.jwt_audience", NULL), "game = one");
    ASSERT(atoll__config_get(&c, "quick.areas", NULL) == NULL);
    ASSERT(atoll__config_get(&c, "loopback_links", NULL) == NULL);
    ASSERT_EQ(c.loopback_links, 0);

    warnings w = {"", 0};
    atoll__config_warnings(&c, envp, collect, &w);
    ASSERT_EQ(w.count, 3);
    ASSERT(strstr(w.text, "environment variable ATOLL_QUICK_AREAS names no setting, ignored") !=
           NULL);
    ASSERT(strstr(w.text, "environment variable ATOLL_NET_MAXCONNS names no setting, ignored "
                          "(a setting's is ATOLL_ and its key in capitals, '.' as '_')") != NULL);
    ASSERT(strstr(w.text, "ATOLL_net_max_conns names no setting") != NULL);
    ASSERT(strstr(w.text, "LOOPBACK") == NULL);
    ASSERT(strstr(w.text, "ATOLL_BIN") == NULL);

    /* A bad value is an error naming the variable. */
    char *bad[] = {"ATOLL_NET_HEARTBEAT=often", NULL};
    ASSERT_EQ(atoll__config_load_env(&c, bad, err, sizeof err), ATOLL_EINVAL);
    ASSERT_STR(err, "ATOLL_NET_HEARTBEAT: net.heartbeat must be an integer from 0 to 3600 "
                    "(heartbeat interval in seconds, 0 = off)");
    /* A name shown in a warning is only letters, digits and '_'. */
    char *odd[] = {"ATOLL_A\"B=1", NULL};
    w = (warnings){"", 0};
    atoll__config_warnings(&c, odd, collect, &w);
    ASSERT_EQ(w.count, 1);
    ASSERT(strstr(w.text, "ATOLL_A?B names no setting") != NULL);
    atoll__config_fini(&c);
}

TEST(file_then_environment_then_command_line)
{
    /* As `atoll run` applies them: defaults, the file, the environment, the command line
     * in its order; each overrides only what it gives. */
    char path[64], err[300];
    temp_file(path, "net.heartbeat = 20\nnet.idle_timeout = 200\nnet.max_conns = 1000\n"
                    "quick.areas = 4\n");
    char *envp[] = {"ATOLL_NET_HEARTBEAT=30", "ATOLL_NET_MAX_CONNS=2000", NULL};
    atoll__config c;
    atoll__config_defaults(&c);
    ASSERT_EQ(c.heartbeat_s, 10);
    ASSERT_EQ(atoll__config_load_file(&c, path, err, sizeof err), ATOLL_OK);
    ASSERT_EQ(c.heartbeat_s, 20);
    ASSERT_EQ(atoll__config_load_env(&c, envp, err, sizeof err), ATOLL_OK);
    ASSERT_EQ(c.heartbeat_s, 30);
    ASSERT_EQ(c.max_conns, 2000);
    SET_ALL(&c, "net.heartbeat=40", "net.max_conns=3000", "net.heartbeat=50");
    ASSERT_EQ(c.heartbeat_s, 50); /* the command line, its last word */
    ASSERT_EQ(c.max_conns, 3000);
    ASSERT_EQ(c.idle_timeout_s, 200);     /* the file's, which nothing later gave */
    ASSERT_EQ(c.handshake_timeout_s, 10); /* the default, which nothing gave */
    ASSERT_STR(atoll__config_get(&c, "quick.areas", NULL), "4");
    ASSERT_STR(atoll__config_get(&c, "net.heartbeat", NULL), "50");
    CHECK_OK(&c);
    unlink(path);
    atoll__config_fini(&c);
}

/* ---- the checks ------------------------------------------------------------------------- */

TEST(without_redis_only_the_embedded_node)
{
    atoll__config c;
    atoll__config_defaults(&c);
    CHECK_OK(&c);
    c.listen_given = true; /* an embedded node is a gate: it listens */
    CHECK_OK(&c);
    SET_ALL(&c, "node.roles=gate,area,coordinator", "node.name=solo");
    CHECK_OK(&c);
    SET_ALL(&c, "node.roles=area");
    CHECK_REFUSED(&c, "--roles needs --redis: a node with only some roles is part of a cluster "
                      "(node.roles, cluster.redis)");
    SET_ALL(&c, "node.roles=gate,area");
    CHECK_REFUSED(&c, "--roles needs --redis");
    atoll__config_fini(&c);

    atoll__config_defaults(&c);
    SET_ALL(&c, "node.advertise=10.0.0.5:4000");
    CHECK_REFUSED(&c, "--advertise needs --redis: only a node of a cluster has links to other "
                      "nodes (node.advertise, cluster.redis)");
    atoll__config_fini(&c);
    atoll__config_defaults(&c);
    SET_ALL(&c, "cluster.secret=" SECRET16);
    CHECK_REFUSED(&c, "--cluster-secret needs --redis: only a node of a cluster has links to "
                      "other nodes to secure (cluster.secret, cluster.redis)");
    atoll__config_fini(&c);
    atoll__config_defaults(&c);
    SET_ALL(&c, "cluster.secret_file=/x");
    CHECK_REFUSED(&c, "--cluster-secret-file needs --redis");
    atoll__config_fini(&c);
}

TEST(with_redis_one_secret_of_16_bytes_an_address_and_a_name)
{
    atoll__config c;
    cluster_node(&c);
    CHECK_OK(&c);
    SET_ALL(&c, "cluster.secret_file=/run/secret");
    CHECK_REFUSED(&c, "--cluster-secret and --cluster-secret-file both give the cluster secret: "
                      "give one (cluster.secret, cluster.secret_file)");
    atoll__config_fini(&c);

    /* Neither: built without cluster_node's secret. */
    atoll__config_defaults(&c);
    SET_ALL(&c, "cluster.redis=redis://r", "node.advertise=h:1", "node.name=n");
    CHECK_REFUSED(&c, "--redis needs --cluster-secret-file PATH (or --cluster-secret): the nodes "
                      "of a cluster prove with it that they belong to it (cluster.secret_file, "
                      "cluster.secret)");
    SET_ALL(&c, "cluster.secret=0123456789abcde"); /* 15 bytes */
    CHECK_REFUSED(&c, "--cluster-secret must be at least 16 bytes (cluster.secret)");
    SET_ALL(&c, "cluster.secret=" SECRET16);
    CHECK_OK(&c);
    atoll__config_fini(&c);

    atoll__config_defaults(&c);
    SET_ALL(&c, "cluster.redis=redis://r", "cluster.secret_file=/run/secret", "node.name=n");
    CHECK_REFUSED(&c, "--redis needs --advertise HOST:PORT: where this node listens for links "
                      "from the other nodes, which it publishes to them (node.advertise)");
    SET_ALL(&c, "node.advertise=h:1");
    CHECK_OK(&c); /* the file is read later, by atoll__config_load_secret */
    atoll__config_fini(&c);

    /* The default name is not a name: two nodes would share it. */
    atoll__config_defaults(&c);
    SET_ALL(&c, "cluster.redis=redis://r", "cluster.secret=" SECRET16, "node.advertise=h:1");
    CHECK_REFUSED(&c, "--redis needs --node-id NAME: each node of a cluster has a name of its "
                      "own, in its record and in the logs (node.name)");
    SET_ALL(&c, "node.name=node");
    CHECK_OK(&c);
    SET_ALL(&c, "node.id=1");
    CHECK_REFUSED(&c, "node.id cannot be given with --redis: the cluster assigns each node its "
                      "number; use --node-id NAME to name this node");
    atoll__config_fini(&c);
}

TEST(only_gates_listen_for_clients)
{
    atoll__config c;
    cluster_node(&c);
    SET_ALL(&c, "node.roles=area");
    CHECK_OK(&c); /* the default address is not a request to listen */
    c.listen_given = true;
    CHECK_REFUSED(&c, "--listen on a node without the gate role (--roles area): only gates "
                      "listen for clients");
    SET_ALL(&c, "node.roles=area,coordinator");
    CHECK_REFUSED(&c, "(--roles area,coordinator): only gates listen for clients");
    SET_ALL(&c, "node.roles=coordinator,gate");
    CHECK_OK(&c);
    atoll__config_fini(&c);
}

TEST(a_clusters_area_node_needs_a_shared_store)
{
    atoll__config c;
    cluster_node(&c);
    CHECK_OK(&c);
    SET_ALL(&c, "store.url=postgresql://atoll@db/atoll");
    CHECK_OK(&c);
    SET_ALL(&c, "store.url=sqlite:data/atoll.db");
    CHECK_REFUSED(&c, "an area node of a cluster (--roles gate,area with --redis) needs a shared "
                      "store, --store postgres://USER@HOST:PORT/DB: the areas of a node that "
                      "dies are loaded by another node, which cannot read this machine's SQLite "
                      "file (--store sqlite:..., --data, or the default)");
    /* A gate keeps no area: its store is not the cluster's concern. */
    SET_ALL(&c, "node.roles=gate,coordinator");
    CHECK_OK(&c);
    /* The embedded node keeps its own SQLite file, as always. */
    atoll__config_fini(&c);
    atoll__config_defaults(&c);
    SET_ALL(&c, "store.url=sqlite:data/atoll.db");
    CHECK_OK(&c);
    atoll__config_fini(&c);

    /* memory is accepted (tests), with a warning. */
    cluster_node(&c);
    SET_ALL(&c, "store.url=memory");
    CHECK_OK(&c);
    warnings w = {"", 0};
    char *none[] = {NULL};
    atoll__config_warnings(&c, none, collect, &w);
    ASSERT_EQ(w.count, 1);
    ASSERT_STR(w.text, "--store memory on an area node of a cluster: the state of its areas and "
                       "players is lost when another node takes them over\n");
    SET_ALL(&c, "node.roles=gate");
    w = (warnings){"", 0};
    atoll__config_warnings(&c, none, collect, &w);
    ASSERT_EQ(w.count, 0);
    atoll__config_fini(&c);
    /* Nor for the embedded node, whose memory store is the tests' usual one. */
    atoll__config_defaults(&c);
    SET_ALL(&c, "store.url=memory");
    atoll__config_warnings(&c, none, collect, &w);
    ASSERT_EQ(w.count, 0);
    atoll__config_fini(&c);
}

TEST(links_and_clients_need_ports_of_their_own)
{
    atoll__config c;
    cluster_node(&c);
    snprintf(c.host, sizeof c.host, "10.0.0.5");
    c.port = 4000;
    CHECK_REFUSED(&c, "--advertise 10.0.0.5:4000 is the --listen address 10.0.0.5:4000: links "
                      "from other nodes and clients need ports of their own");
    c.port = 4001;
    CHECK_OK(&c);
    /* every interface takes the port on every address */
    snprintf(c.host, sizeof c.host, "0.0.0.0");
    c.port = 4000;
    CHECK_REFUSED(&c, "is the --listen address 0.0.0.0:4000");
    SET_ALL(&c, "node.advertise=0.0.0.0:4000");
    snprintf(c.host, sizeof c.host, "10.0.0.9");
    CHECK_REFUSED(&c, "--advertise 0.0.0.0:4000 is the --listen address");
    /* IPv6 in brackets, as --listen takes it */
    SET_ALL(&c, "node.advertise=[::1]:4000");
    snprintf(c.host, sizeof c.host, "::1");
    CHECK_REFUSED(&c, "--advertise [::1]:4000 is the --listen address ::1:4000");
    snprintf(c.host, sizeof c.host, "::2");
    CHECK_OK(&c);
    /* a node that is no gate listens for no client */
    snprintf(c.host, sizeof c.host, "::1");
    SET_ALL(&c, "node.roles=area");
    CHECK_OK(&c);
    atoll__config_fini(&c);
}

TEST(beats_and_pings_fit_twice_in_their_timeouts)
{
    atoll__config c;
    atoll__config_defaults(&c);
    SET_ALL(&c, "cluster.lease_ms=1500", "cluster.beat_ms=749");
    CHECK_OK(&c);
    SET_ALL(&c, "cluster.beat_ms=750");
    CHECK_REFUSED(&c, "cluster.beat_ms (750) must be below half of cluster.lease_ms (1500): a "
                      "node renews its lease at least twice before it runs out, so that one "
                      "late renewal does not make it dead");
    SET_ALL(&c, "cluster.lease_ms=1501");
    CHECK_OK(&c);
    SET_ALL(&c, "cluster.link_timeout_ms=3000", "cluster.link_ping_ms=1499");
    CHECK_OK(&c);
    SET_ALL(&c, "cluster.link_ping_ms=1500");
    CHECK_REFUSED(&c, "cluster.link_ping_ms (1500) must be below half of "
                      "cluster.link_timeout_ms (3000): a quiet link is pinged at least twice "
                      "before it is cut, so that one late ping does not cut it");
    atoll__config_fini(&c);
}

TEST(a_rebalance_stops_below_where_it_starts)
{
    atoll__config c;
    atoll__config_defaults(&c);
    CHECK_OK(&c); /* 0.5 and 0.2 */
    SET_ALL(&c, "cluster.rebalance_start=0.3", "cluster.rebalance_stop=0.29");
    CHECK_OK(&c);
    SET_ALL(&c, "cluster.rebalance_stop=0.3");
    CHECK_REFUSED(&c, "cluster.rebalance_stop (0.3) must be below cluster.rebalance_start (0.3): "
                      "the gap between them keeps a rebalance from moving areas back and forth");
    SET_ALL(&c, "cluster.rebalance_start=0"); /* off: the stop does not matter */
    CHECK_OK(&c);
    char err[300] = "";
    ASSERT_EQ(atoll__config_set(&c, "cluster.rebalance_start=half", err, sizeof err),
              ATOLL_EINVAL);
    ASSERT(strstr(err, "cluster.rebalance_start must be a number from 0 to 100") != NULL);
    ASSERT_EQ(atoll__config_set(&c, "cluster.rebalance_start=-1", err, sizeof err), ATOLL_EINVAL);
    ASSERT_EQ(atoll__config_set(&c, "cluster.rebalance_start=0.75", err, sizeof err), ATOLL_OK);
    ASSERT(c.rebalance_start == 0.75);
    ASSERT(c.rebalance_min_load == 0.25); /* the default */
    ASSERT_EQ(atoll__config_set(&c, "cluster.rebalance_min_load=1.5", err, sizeof err), ATOLL_OK);
    ASSERT(c.rebalance_min_load == 1.5);
    ASSERT_EQ(atoll__config_set(&c, "cluster.rebalance_min_load=1001", err, sizeof err),
              ATOLL_EINVAL);
    atoll__config_fini(&c);
}

/* ---- the cluster secret ----------------------------------------------------------------- */

TEST(the_cluster_secret_is_read_from_its_file_at_start)
{
    char path[64], kv[96], err[300];
    atoll__config c;
    /* The embedded node has none. */
    atoll__config_defaults(&c);
    ASSERT_EQ(atoll__config_load_secret(&c, err, sizeof err), ATOLL_OK);
    ASSERT(c.cluster_secret == NULL);
    atoll__config_fini(&c);

    /* Given as text: its bytes. */
    cluster_node(&c);
    ASSERT_EQ(atoll__config_load_secret(&c, err, sizeof err), ATOLL_OK);
    ASSERT_EQ(c.cluster_secret_len, 16);
    ASSERT_MEM(c.cluster_secret, SECRET16, 16);
    atoll__config_fini(&c);

    /* From a file: one trailing newline is not part of it, LF or CRLF. */
    const char *files[] = {SECRET16 "\n", SECRET16 "\r\n", SECRET16};
    for (size_t i = 0; i < 3; i++) {
        atoll__config_defaults(&c);
        temp_file(path, files[i]);
        snprintf(kv, sizeof kv, "cluster.secret_file=%s", path);
        SET_ALL(&c, "cluster.redis=redis://r", "node.advertise=h:1", "node.name=n", kv);
        CHECK_OK(&c);
        ASSERT_EQ(atoll__config_load_secret(&c, err, sizeof err), ATOLL_OK);
        ASSERT_EQ(c.cluster_secret_len, 16);
        ASSERT_MEM(c.cluster_secret, SECRET16, 16);
        unlink(path);
        atoll__config_fini(&c);
    }

    /* Missing, empty, too short, a directory: refused, and the secret never shown. */
    struct {
        const char *content; /* NULL: no such file */
        const char *says;
    } bad[] = {
        {NULL, "cannot open --cluster-secret-file /nonexistent/cluster-secret: No such file or "
               "directory"},
        {"", "is empty"},
        {"\n", "is empty"},
        {"secret-of-15-by\n", "holds fewer than 16 bytes"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        atoll__config_defaults(&c);
        if (bad[i].content != NULL)
            temp_file(path, bad[i].content);
        else
            snprintf(path, sizeof path, "/nonexistent/cluster-secret");
        snprintf(kv, sizeof kv, "cluster.secret_file=%s", path);
        SET_ALL(&c, "cluster.redis=redis://r", "node.advertise=h:1", "node.name=n", kv);
        ASSERT_EQ(atoll__config_load_secret(&c, err, sizeof err), ATOLL_EINVAL);
        ASSERT(strstr(err, bad[i].says) != NULL);
        ASSERT(strstr(err, "--cluster-secret-file") != NULL);
        ASSERT(strstr(err, "secret-of") == NULL);
        ASSERT(c.cluster_secret == NULL);
        if (bad[i].content != NULL)
            unlink(path);
        atoll__config_fini(&c);
    }
    atoll__config_defaults(&c);
    SET_ALL(&c, "cluster.redis=redis://r", "cluster.secret_file=/tmp");
    ASSERT_EQ(atoll__config_load_secret(&c, err, sizeof err), ATOLL_EINVAL);
    ASSERT(strstr(err, "cannot read --cluster-secret-file /tmp") != NULL);
    atoll__config_fini(&c);
}

/* ---- the admin API ---------------------------------------------------------------------- */

TEST(the_admin_api_needs_a_token_when_it_is_not_on_loopback)
{
    atoll__config c;
    atoll__config_defaults(&c);
    ASSERT_STR(c.admin_host, ""); /* off by default */
    SET_ALL(&c, "admin.listen=127.0.0.1:9000");
    ASSERT_STR(c.admin_host, "127.0.0.1");
    ASSERT_EQ(c.admin_port, 9000);
    CHECK_OK(&c);
    static const char *const loopback[] = {"admin.listen=127.3.4.5:0", "admin.listen=[::1]:9000",
                                           "admin.listen=localhost:9000",
                                           "admin.listen=LOCALHOST:1",
                                           "admin.listen=[::ffff:127.0.0.1]:9000"};
    for (size_t i = 0; i < sizeof loopback / sizeof loopback[0]; i++) {
        SET_ALL(&c, loopback[i]);
        CHECK_OK(&c);
    }
    SET_ALL(&c, "admin.listen=0.0.0.0:9000");
    CHECK_REFUSED(&c, "--admin 0.0.0.0:9000 is not a loopback address: an admin API that other "
                      "machines can reach needs a token, --admin-token-file PATH "
                      "(admin.token_file, or admin.token)");
    static const char *const elsewhere[] = {"admin.listen=[::]:9000", "admin.listen=10.0.0.5:9000",
                                            "admin.listen=128.0.0.1:9000",
                                            "admin.listen=admin.example:9000",
                                            "admin.listen=[::2]:9000"};
    for (size_t i = 0; i < sizeof elsewhere / sizeof elsewhere[0]; i++) {
        SET_ALL(&c, elsewhere[i]);
        CHECK_REFUSED(&c, "is not a loopback address");
    }
    /* With a token, anywhere; the token from a file is read later, at start. */
    SET_ALL(&c, "admin.listen=0.0.0.0:9000", "admin.token_file=/nonexistent/token");
    CHECK_OK(&c);
    atoll__config_fini(&c);
    atoll__config_defaults(&c);
    SET_ALL(&c, "admin.listen=0.0.0.0:9000", "admin.token=" SECRET16);
    CHECK_OK(&c);
    SET_ALL(&c, "admin.token_file=/x");
    CHECK_REFUSED(&c, "admin.token and admin.token_file (--admin-token-file) both give the admin "
                      "API's token: give one");
    atoll__config_fini(&c);
    /* A token too short, or one that cannot be sent in a header. */
    static const char *const weak[] = {"admin.token=0123456789abcde", "admin.token=0123456789 abcdef",
                                       "admin.token=0123456789abcdef\xc3\xa9"};
    for (size_t i = 0; i < sizeof weak / sizeof weak[0]; i++) {
        atoll__config_defaults(&c);
        SET_ALL(&c, weak[i]);
        CHECK_REFUSED(&c, "admin.token must be at least 16 bytes of visible ASCII (no spaces)");
        atoll__config_fini(&c);
    }
    /* Not HOST:PORT; empty is off again. */
    atoll__config_defaults(&c);
    SET_REFUSED(&c, "admin.listen=9000",
                "--admin wants HOST:PORT, got '9000' (admin.listen; empty: no admin server)");
    SET_REFUSED(&c, "admin.listen=host:65536",
                "--admin wants HOST:PORT, got 'host:65536' (admin.listen; empty: no admin server)");
    SET_ALL(&c, "admin.listen=0.0.0.0:9000", "admin.listen=");
    ASSERT_STR(c.admin_host, "");
    CHECK_OK(&c);
    atoll__config_fini(&c);
}

TEST(the_admin_token_is_read_from_its_file_at_start)
{
    char path[64], kv[96], err[300];
    atoll__config c;
    /* No admin server: no token read, even when one is given (a warning says so). */
    atoll__config_defaults(&c);
    SET_ALL(&c, "admin.token_file=/nonexistent/token");
    ASSERT_EQ(atoll__config_load_admin_token(&c, err, sizeof err), ATOLL_OK);
    ASSERT(c.admin_token == NULL);
    warnings w = {"", 0};
    atoll__config_warnings(&c, NULL, collect, &w);
    ASSERT(strstr(w.text, "an admin token is set (admin.token or admin.token_file) but no "
                          "--admin address (admin.listen): no admin server runs") != NULL);
    atoll__config_fini(&c);
    /* As text. */
    atoll__config_defaults(&c);
    SET_ALL(&c, "admin.listen=127.0.0.1:0", "admin.token=" SECRET16 "xyz");
    ASSERT_EQ(atoll__config_load_admin_token(&c, err, sizeof err), ATOLL_OK);
    ASSERT_STR(c.admin_token, SECRET16 "xyz");
    atoll__config_fini(&c);
    ASSERT(c.admin_token == NULL);
    /* From a file, without its trailing newline; none at all on loopback is fine. */
    temp_file(path, "Zm9vYmFyYmF6cXV4cXV1eA==\n");
    atoll__config_defaults(&c);
    snprintf(kv, sizeof kv, "admin.token_file=%s", path);
    SET_ALL(&c, "admin.listen=0.0.0.0:0", kv);
    CHECK_OK(&c);
    ASSERT_EQ(atoll__config_load_admin_token(&c, err, sizeof err), ATOLL_OK);
    ASSERT_STR(c.admin_token, "Zm9vYmFyYmF6cXV4cXV1eA==");
    atoll__config_fini(&c);
    unlink(path);
    atoll__config_defaults(&c);
    SET_ALL(&c, "admin.listen=127.0.0.1:0");
    ASSERT_EQ(atoll__config_load_admin_token(&c, err, sizeof err), ATOLL_OK);
    ASSERT(c.admin_token == NULL);
    atoll__config_fini(&c);
    /* Refused: too short, a space, a byte past ASCII, no file; never shown. */
    struct {
        const char *content; /* NULL: no such file */
        const char *says;
    } bad[] = {
        {"short-token\n", "holds fewer than 16 bytes"},
        {"a token with spaces\n", "holds a byte that cannot be in a bearer token"},
        {"token-\xc3\xa9-of-some-length\n", "holds a byte that cannot be in a bearer token"},
        {NULL, "cannot open --admin-token-file /nonexistent/admin-token: No such file"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (bad[i].content != NULL)
            temp_file(path, bad[i].content);
        else
            snprintf(path, sizeof path, "/nonexistent/admin-token");
        atoll__config_defaults(&c);
        snprintf(kv, sizeof kv, "admin.token_file=%s", path);
        SET_ALL(&c, "admin.listen=127.0.0.1:0", kv);
        ASSERT_EQ(atoll__config_load_admin_token(&c, err, sizeof err), ATOLL_EINVAL);
        if (strstr(err, bad[i].says) == NULL)
            fprintf(stderr, "  %s\n", err);
        ASSERT(strstr(err, bad[i].says) != NULL);
        ASSERT(strstr(err, "token with") == NULL && strstr(err, "short-token") == NULL);
        ASSERT(c.admin_token == NULL);
        atoll__config_fini(&c);
        if (bad[i].content != NULL)
            unlink(path);
    }
}

TEST_MAIN(every_framework_key_has_one_variable_and_no_two_share_it,
          set_stores_each_kind_of_field_and_keeps_game_keys,
          roles_are_any_combination_of_three_names,
          a_file_of_settings_with_comments_blanks_quotes_and_spaces,
          a_bad_line_is_named_by_its_file_and_number, the_flags_names_are_not_keys_of_the_file,
          environment_variables_give_framework_settings_only,
          file_then_environment_then_command_line, without_redis_only_the_embedded_node,
          with_redis_one_secret_of_16_bytes_an_address_and_a_name, only_gates_listen_for_clients,
          a_clusters_area_node_needs_a_shared_store, links_and_clients_need_ports_of_their_own,
          beats_and_pings_fit_twice_in_their_timeouts, a_rebalance_stops_below_where_it_starts,
          the_cluster_secret_is_read_from_its_file_at_start,
          the_admin_api_needs_a_token_when_it_is_not_on_loopback,
          the_admin_token_is_read_from_its_file_at_start)
