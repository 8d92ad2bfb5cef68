/* pg.h -- a real PostgreSQL server for tests, of this test alone.
 *
 * pg_start runs initdb in a new temporary directory, starts `postgres` on 127.0.0.1 at
 * a free port with its socket directory inside that directory, waits until it accepts
 * connections (15 s at most), and creates a database "atoll_test" owned by the user
 * "atoll" (trust authentication: the server listens on loopback only and lives as long
 * as the test). The server's binaries are Debian's: the newest version directory under
 * /usr/lib/postgresql/ (or $ATOLL_PG_BINDIR). Not installed is a failure with a
 * sentence, not a skip: scripts/install-deps.sh (make check) installs the server.
 *
 * PostgreSQL refuses to run as root, and CI runs as root: then initdb and postgres run
 * as the "postgres" user that Debian's package creates (the forked child drops to it
 * with setgid/setuid after the directory was given to it), while the test itself stays
 * root. The server's log is kept in the directory and printed when it fails to start.
 */
#ifndef ATOLL_TEST_PG_H
#define ATOLL_TEST_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct pg_server {
    pid_t pid; /* the postmaster, 0 when stopped */
    int port;
    char dir[128];    /* the temporary directory: data/, the socket, the logs */
    char bindir[256]; /* where initdb and postgres are */
    bool drop_root;   /* run the server as the postgres user */
} pg_server;

/* Starts a server and writes the URL of its database "atoll_test"
 * (postgres://atoll@127.0.0.1:PORT/atoll_test) into url. False, with the reason on
 * stderr, when it cannot. */
bool pg_start(pg_server *pg, char *url, size_t cap);
/* Stops the server (fast shutdown) and starts it again on the same data and port, as a
 * restart in production would: every connection is cut. */
bool pg_restart(pg_server *pg);
/* An outage: pg_down stops the server (fast shutdown) and keeps its data; pg_up starts
 * it again on the same data and port (false, with the reason on stderr, when it cannot). */
void pg_down(pg_server *pg);
bool pg_up(pg_server *pg);
/* Creates a new empty database and writes its URL into url. */
bool pg_create_db(pg_server *pg, const char *name, char *url, size_t cap);
/* Runs one SQL statement in the database of url (a separate connection): true when it
 * succeeded; the first column of its first row, when it has one, goes into out. */
bool pg_exec(const char *url, const char *sql, char *out, size_t cap);
/* Fast shutdown (SIGINT), waits for the server, removes the directory. */
void pg_stop(pg_server *pg);

#endif /* ATOLL_TEST_PG_H */
