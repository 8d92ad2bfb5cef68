/* sqlite.c -- the embedded node's store: one SQLite database file (`--store
 * sqlite:PATH`, or `--data DIR` for DIR/atoll.db).
 *
 * WAL mode, so that loads read while the writer commits, and synchronous=FULL, so that
 * a committed batch survives a power cut as well as a crash: `durable` must mean it. A
 * batch is one IMMEDIATE transaction. Fencing is in the upsert itself: a row is replaced
 * only when its stored epoch is not newer than the write's, and a write that changes no
 * row was fenced. The connection is opened serialized (SQLite's own mutex): loads come
 * from the threads that ask, commits from the writer's.
 */
#include "backends.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct sql_store {
    atoll__store base;
    sqlite3 *db;
    sqlite3_stmt *load, *upsert, *del, *epoch_of;
    char path[];
} sql_store;

static int
fail(sql_store *s, char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "%s: %s (%s)", s->path, what, s->db ? sqlite3_errmsg(s->db) : "");
    return ATOLL_EIO;
}

static int
exec(sql_store *s, const char *sql, char *err, size_t errlen)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return fail(s, err, errlen, sql);
    return ATOLL_OK;
}

/* The schema version the file was made with: 0 when it has no atoll_meta table, -1 when
 * it holds tables of another program (or is not a database at all: err says). */
static int
schema_of(sql_store *s, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int version = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM sqlite_master WHERE type='table'", -1,
                           &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        fail(s, err, errlen, "not an SQLite database, or unreadable");
        return -1;
    }
    int tables = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (tables == 0)
        return 0;
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM atoll_meta WHERE key='schema'", -1, &st,
                           NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        snprintf(err, errlen, "%s: a database of another program (it has tables but no atoll "
                 "schema row); atoll will not write into it", s->path);
        return -1;
    }
    version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return version;
}

static int
sql_open(atoll__store *base, char *err, size_t errlen)
{
    sql_store *s = (sql_store *)base;
    if (sqlite3_open_v2(s->path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK)
        return fail(s, err, errlen, "cannot open");
    sqlite3_busy_timeout(s->db, 5000);
    int version = schema_of(s, err, errlen);
    if (version < 0)
        return ATOLL_EINVAL;
    if (version > ATOLL__STORE_SCHEMA) {
        snprintf(err, errlen, "%s: schema version %d is newer than this atoll's (%d): run the "
                 "atoll that wrote it, or a newer one", s->path, version, ATOLL__STORE_SCHEMA);
        return ATOLL_EINVAL;
    }
    int rc;
    if ((rc = exec(s, "PRAGMA journal_mode=WAL", err, errlen)) != ATOLL_OK ||
        (rc = exec(s, "PRAGMA synchronous=FULL", err, errlen)) != ATOLL_OK)
        return rc;
    if (version == 0) {
        char sql[512];
        snprintf(sql, sizeof sql,
                 "BEGIN IMMEDIATE;"
                 "CREATE TABLE atoll_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                 "INSERT INTO atoll_meta VALUES('schema','%d'),('program','atoll');"
                 "CREATE TABLE atoll_docs(kind INTEGER NOT NULL, key TEXT NOT NULL,"
                 " epoch INTEGER NOT NULL, doc BLOB NOT NULL, PRIMARY KEY(kind, key))"
                 " WITHOUT ROWID;"
                 "COMMIT;",
                 ATOLL__STORE_SCHEMA);
        if ((rc = exec(s, sql, err, errlen)) != ATOLL_OK) {
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
    }
    static const char *const sqls[] = {
        "SELECT doc, epoch FROM atoll_docs WHERE kind=?1 AND key=?2",
        "INSERT INTO atoll_docs(kind, key, epoch, doc) VALUES(?1, ?2, ?3, ?4)"
        " ON CONFLICT(kind, key) DO UPDATE SET epoch=excluded.epoch, doc=excluded.doc"
        " WHERE atoll_docs.epoch <= excluded.epoch",
        "DELETE FROM atoll_docs WHERE kind=?1 AND key=?2 AND epoch <= ?3",
        "SELECT epoch FROM atoll_docs WHERE kind=?1 AND key=?2",
    };
    sqlite3_stmt **out[] = {&s->load, &s->upsert, &s->del, &s->epoch_of};
    for (size_t i = 0; i < 4; i++)
        if (sqlite3_prepare_v2(s->db, sqls[i], -1, out[i], NULL) != SQLITE_OK)
            return fail(s, err, errlen, "cannot prepare its statements");
    return ATOLL_OK;
}

static int
sql_load(atoll__store *base, atoll__doc_kind kind, const char *key, uint8_t **bytes,
         size_t *len, uint64_t *epoch, char *err, size_t errlen)
{
    sql_store *s = (sql_store *)base;
    *bytes = NULL;
    *len = 0;
    sqlite3_mutex_enter(sqlite3_db_mutex(s->db)); /* the statement is shared */
    sqlite3_stmt *st = s->load;
    sqlite3_bind_int(st, 1, (int)kind);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int out = ATOLL_ENOENT;
    if (rc == SQLITE_ROW) {
        int n = sqlite3_column_bytes(st, 0);
        const void *p = sqlite3_column_blob(st, 0);
        *bytes = atoll__malloc(n > 0 ? (size_t)n : 1);
        if (n > 0)
            memcpy(*bytes, p, (size_t)n);
        *len = (size_t)n;
        *epoch = (uint64_t)sqlite3_column_int64(st, 1);
        out = ATOLL_OK;
    } else if (rc != SQLITE_DONE) {
        out = fail(s, err, errlen, "load failed");
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    sqlite3_mutex_leave(sqlite3_db_mutex(s->db));
    return out;
}

/* One write of a batch, inside its transaction: ATOLL_OK with *result, or an error. */
static int
write_one(sql_store *s, const atoll__doc_write *w, int *result)
{
    sqlite3_stmt *st = w->bytes ? s->upsert : s->del;
    sqlite3_bind_int(st, 1, (int)w->kind);
    sqlite3_bind_text(st, 2, w->key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)w->epoch);
    if (w->bytes)
        sqlite3_bind_blob(st, 4, w->bytes, (int)w->len, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE)
        return ATOLL_EIO;
    *result = ATOLL__WRITE_OK;
    if (sqlite3_changes(s->db) == 0) {
        /* Nothing changed: fenced by a newer epoch, or a delete of nothing. */
        sqlite3_stmt *q = s->epoch_of;
        sqlite3_bind_int(q, 1, (int)w->kind);
        sqlite3_bind_text(q, 2, w->key, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW && (uint64_t)sqlite3_column_int64(q, 0) > w->epoch)
            *result = ATOLL__WRITE_FENCED;
        sqlite3_reset(q);
        sqlite3_clear_bindings(q);
    }
    return ATOLL_OK;
}

static int
sql_commit(atoll__store *base, const atoll__doc_write *batch, size_t n, int *results,
           char *err, size_t errlen)
{
    sql_store *s = (sql_store *)base;
    sqlite3_mutex_enter(sqlite3_db_mutex(s->db));
    int rc = exec(s, "BEGIN IMMEDIATE", err, errlen);
    for (size_t i = 0; rc == ATOLL_OK && i < n; i++) {
        if (batch[i].len > ATOLL__DOC_MAX) {
            snprintf(err, errlen, "%s: document %s is %zu bytes (limit %u)", s->path,
                     batch[i].key, batch[i].len, ATOLL__DOC_MAX);
            rc = ATOLL_ELIMIT;
        } else if (write_one(s, &batch[i], &results[i]) != ATOLL_OK) {
            rc = fail(s, err, errlen, "write failed");
        }
    }
    if (rc == ATOLL_OK)
        rc = exec(s, "COMMIT", err, errlen);
    if (rc != ATOLL_OK)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_mutex_leave(sqlite3_db_mutex(s->db));
    return rc;
}

static void
sql_close(atoll__store *base)
{
    sql_store *s = (sql_store *)base;
    sqlite3_finalize(s->load);
    sqlite3_finalize(s->upsert);
    sqlite3_finalize(s->del);
    sqlite3_finalize(s->epoch_of);
    if (s->db)
        sqlite3_close(s->db);
    atoll__free(s);
}

static const atoll__store_ops sql_ops = {
    .name = "sqlite",
    .open = sql_open,
    .load = sql_load,
    .commit = sql_commit,
    .close = sql_close,
};

atoll__store *
atoll__store_sqlite_new(const char *path)
{
    size_t n = strlen(path);
    sql_store *s = atoll__calloc(1, sizeof *s + n + 1);
    memcpy(s->path, path, n + 1);
    s->base.ops = &sql_ops;
    return &s->base;
}
