/* backends.h -- the stores behind node/store.h's table: made from the --store URL.
 *
 *   memory                  documents in a table of this process: lost at exit (tests,
 *                           and the benchmark's baseline)
 *   sqlite:PATH             one SQLite database file (WAL, synchronous=FULL), the
 *                           embedded node's store
 *   postgres://USER@HOST:PORT/DB   PostgreSQL, for clusters (libpq, pipeline mode)
 */
#ifndef ATOLL_STORE_BACKENDS_H
#define ATOLL_STORE_BACKENDS_H

#include "../node/store.h"

/* A store for url, not opened yet (ops->open does that): NULL with a sentence in err
 * for a URL that names no backend. */
atoll__store *atoll__store_new(const char *url, char *err, size_t errlen);
/* Closes (when opened) and frees it. */
void atoll__store_free(atoll__store *s);

atoll__store *atoll__store_memory_new(void);
atoll__store *atoll__store_sqlite_new(const char *path);
atoll__store *atoll__store_postgres_new(const char *conninfo);

#endif /* ATOLL_STORE_BACKENDS_H */
