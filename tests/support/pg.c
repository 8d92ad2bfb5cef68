/* pg.c -- a PostgreSQL server of the test's own (pg.h): initdb, postgres on a free
 * loopback port, a database; stopped and removed at the end.
 */
#define _GNU_SOURCE
#include "pg.h"
#include "proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Debian installs each major version's server binaries side by side here. */
#define PG_LIBDIR "/usr/lib/postgresql"
#define PG_READY_MS 15000

static bool
find_bindir(pg_server *pg)
{
    const char *env = getenv("ATOLL_PG_BINDIR");
    if (env && *env) {
        snprintf(pg->bindir, sizeof pg->bindir, "%s", env);
        return true;
    }
    DIR *d = opendir(PG_LIBDIR);
    if (!d)
        return false;
    long best = -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long v = strtol(e->d_name, &end, 10);
        char initdb[512];
        snprintf(initdb, sizeof initdb, "%s/%s/bin/initdb", PG_LIBDIR, e->d_name);
        if (end != e->d_name && *end == '\0' && v > best && access(initdb, X_OK) == 0) {
            best = v;
            snprintf(pg->bindir, sizeof pg->bindir, "%s/%.32s/bin", PG_LIBDIR, e->d_name);
        }
    }
    closedir(d);
    return best >= 0;
}

/* In a forked child: become the postgres user when we are root (PostgreSQL refuses
 * root), send output to log, exec argv. Never returns. */
static void
child_exec(const pg_server *pg, const char *log, char *const argv[])
{
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    int nul = open("/dev/null", O_RDONLY);
    if (nul >= 0) {
        dup2(nul, 0);
        close(nul);
    }
    if (pg->drop_root) {
        struct passwd *pw = getpwnam("postgres");
        if (!pw || setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 ||
            setuid(pw->pw_uid) != 0) {
            fprintf(stderr, "pg: cannot become the postgres user: %s\n", strerror(errno));
            _exit(126);
        }
        setenv("HOME", pg->dir, 1);
    }
    /* A test that crashes takes its server with it (set after setuid, which clears
     * it). */
    prctl(PR_SET_PDEATHSIG, SIGINT);
    execv(argv[0], argv);
    fprintf(stderr, "pg: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}



static void
admin_conninfo(const pg_server *pg, const char *db, char *out, size_t cap)
{
    snprintf(out, cap, "host=127.0.0.1 port=%d user=atoll dbname=%s connect_timeout=5",
             pg->port, db);
}

/* Starts the postmaster on pg->port over pg->dir/data and waits until it answers. */
static bool
launch(pg_server *pg)
{
    char exe[512], data[256], port[16], log[256];
    snprintf(exe, sizeof exe, "%s/postgres", pg->bindir);
    snprintf(data, sizeof data, "%s/data", pg->dir);
    snprintf(port, sizeof port, "%d", pg->port);
    snprintf(log, sizeof log, "%s/postgres.log", pg->dir);
    /* fsync off: a test's data need not survive a crash of the machine, and the suite
     * commits many small transactions. */
    char *argv[] = {exe, "-D", data, "-k", pg->dir, "-h", "127.0.0.1", "-p", port,
                    "-c", "fsync=off", "-c", "max_connections=30", "-c",
                    "shared_buffers=16MB", NULL};
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0)
        child_exec(pg, log, argv);
    pg->pid = pid;
    char ci[200];
    admin_conninfo(pg, "postgres", ci, sizeof ci);
    long deadline = proc_now_ms() + PG_READY_MS;
    while (proc_now_ms() < deadline) {
        if (PQping(ci) == PQPING_OK)
            return true;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            pg->pid = 0;
            fprintf(stderr, "pg: postgres exited at start (status %d)\n", status);
            proc_dump_file(log);
            return false;
        }
        usleep(50 * 1000);
    }
    fprintf(stderr, "pg: postgres did not accept connections within %d ms\n", PG_READY_MS);
    proc_dump_file(log);
    return false;
}

static void
halt(pg_server *pg)
{
    if (pg->pid <= 0)
        return;
    proc_stop(pg->pid, SIGINT, 15000); /* fast shutdown: cut the sessions, stop cleanly */
    pg->pid = 0;
}

bool
pg_start(pg_server *pg, char *url, size_t cap)
{
    memset(pg, 0, sizeof *pg);
    if (!find_bindir(pg)) {
        fprintf(stderr,
                "pg: the PostgreSQL server is not installed (no " PG_LIBDIR
                "/<version>/bin/initdb, and ATOLL_PG_BINDIR is not set): "
                "scripts/install-deps.sh installs the postgresql package\n");
        return false;
    }
    snprintf(pg->dir, sizeof pg->dir, "/tmp/atoll-pg-XXXXXX");
    if (!mkdtemp(pg->dir)) {
        fprintf(stderr, "pg: mkdtemp: %s\n", strerror(errno));
        return false;
    }
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        if (!pw) {
            fprintf(stderr, "pg: running as root, and there is no postgres user to run "
                            "the server as (Debian's postgresql package creates it)\n");
            pg_stop(pg);
            return false;
        }
        if (chown(pg->dir, pw->pw_uid, pw->pw_gid) != 0) {
            fprintf(stderr, "pg: chown %s: %s\n", pg->dir, strerror(errno));
            pg_stop(pg);
            return false;
        }
        pg->drop_root = true;
    }

    char exe[512], data[256], log[256];
    snprintf(exe, sizeof exe, "%s/initdb", pg->bindir);
    snprintf(data, sizeof data, "%s/data", pg->dir);
    snprintf(log, sizeof log, "%s/initdb.log", pg->dir);
    char *argv[] = {exe, "-D", data, "-U", "atoll", "-A", "trust", "-E", "UTF8",
                    "--locale=C", "--no-sync", NULL};
    pid_t pid = fork();
    if (pid < 0) {
        pg_stop(pg);
        return false;
    }
    if (pid == 0)
        child_exec(pg, log, argv);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "pg: initdb failed (status %d)\n", status);
        proc_dump_file(log);
        pg_stop(pg);
        return false;
    }

    /* The free port may be taken between our probe and the server's bind: try again. */
    for (int attempt = 0; attempt < 3; attempt++) {
        pg->port = proc_free_port();
        if (pg->port > 0 && launch(pg))
            return pg_create_db(pg, "atoll_test", url, cap);
    }
    pg_stop(pg);
    return false;
}

bool
pg_restart(pg_server *pg)
{
    halt(pg);
    return launch(pg);
}

void
pg_down(pg_server *pg)
{
    halt(pg);
}

bool
pg_up(pg_server *pg)
{
    return launch(pg);
}

bool
pg_create_db(pg_server *pg, const char *name, char *url, size_t cap)
{
    char ci[200], sql[200];
    admin_conninfo(pg, "postgres", ci, sizeof ci);
    snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\"", name);
    if (!pg_exec(ci, sql, NULL, 0))
        return false;
    snprintf(url, cap, "postgres://atoll@127.0.0.1:%d/%s", pg->port, name);
    return true;
}

bool
pg_exec(const char *url, const char *sql, char *out, size_t cap)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "pg: connect %s: %s", url, PQerrorMessage(c));
        PQfinish(c);
        return false;
    }
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "pg: %s: %s", sql, PQresultErrorMessage(r));
    if (out && cap) {
        out[0] = '\0';
        if (ok && st == PGRES_TUPLES_OK && PQntuples(r) > 0 && PQnfields(r) > 0)
            snprintf(out, cap, "%s", PQgetvalue(r, 0, 0));
    }
    PQclear(r);
    PQfinish(c);
    return ok;
}

void
pg_stop(pg_server *pg)
{
    halt(pg);
    if (pg->dir[0])
        proc_rm_tree(pg->dir);
    pg->dir[0] = '\0';
}
