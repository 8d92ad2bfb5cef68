/* postgres.c -- the PostgreSQL store (postgres://USER@HOST:PORT/DB), over libpq.
 *
 * SCHEMA. Two tables, made in one transaction by open when the database has neither:
 *   atoll_meta(key text primary key, value text): ('schema', ATOLL__STORE_SCHEMA) and
 *     ('program', 'atoll'), so a database is known to be ours, and of which version;
 *   atoll_docs(kind smallint, key text, epoch bigint, doc bytea, primary key(kind, key)).
 * open refuses a newer schema version (naming both) and a database that has an
 * atoll_docs table but no atoll_meta (another program's). Two nodes opening the same
 * empty database at once are serialized by a transaction-scoped advisory lock.
 *
 * FENCING. Each write is one statement that compares epochs inside the database, so no
 * read-then-write race exists between two owners:
 *   INSERT ... ON CONFLICT (kind, key) DO UPDATE SET doc = EXCLUDED.doc, epoch = ...
 *     WHERE atoll_docs.epoch <= EXCLUDED.epoch RETURNING 1
 * returns a row when it wrote, none when a newer epoch is stored (ATOLL__WRITE_FENCED,
 * and nothing changes). A delete removes the row only when its epoch is <= the write's,
 * and is fenced when a row with a newer epoch is there; deleting a missing document
 * succeeds (no tombstone is kept). Epochs are bigint: one above INT64_MAX is refused.
 *
 * WHY PIPELINE MODE. A batch is BEGIN, n statements and COMMIT. Sent one by one, that is
 * n + 2 round trips to the server, and the writer's batches grow exactly when the store
 * is far or slow. libpq's pipeline mode (PostgreSQL 14+) sends them all, then a Sync,
 * and reads the n + 2 results afterwards: one round trip per batch whatever its size.
 * Parameters are sent in binary (kind, epoch, the document's bytes): no escaping, no
 * hex doubling of the documents. When a statement fails the server skips the rest up to
 * the Sync, the transaction is rolled back and the batch returns an error: nothing of it
 * is written.
 *
 * LOST CONNECTIONS. A call that finds the connection broken (the server restarted, the
 * backend was terminated, the network dropped) fails with an error, and the connection
 * is dropped; the next call connects again (as PQreset would, with the same conninfo).
 * The writer retries a failed batch, which is safe even when the COMMIT's answer was
 * lost: a write of the same epoch passes the fence again and writes the same bytes.
 */
#include "backends.h"

#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Type OIDs of the parameters (catalog/pg_type.h, stable since PostgreSQL 7). */
#define PG_INT2OID 21
#define PG_INT8OID 20
#define PG_TEXTOID 25
#define PG_BYTEAOID 17

/* The advisory lock key of open: "atol" in ASCII, any constant would do. */
#define PG_OPEN_LOCK 0x61746f6c

typedef struct pg_store {
    atoll__store base;
    char *conninfo;
    PGconn *conn; /* NULL until connected, and after a lost connection */
} pg_store;

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* libpq's messages end with a newline (and sometimes hold several lines): the first
 * line is the sentence. */
static const char *
first_line(const char *msg, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", msg ? msg : "");
    buf[strcspn(buf, "\n")] = '\0';
    return buf;
}

/* Where the connection goes, for error sentences: "HOST:PORT/DB". */
static void
describe(PGconn *c, char *buf, size_t cap)
{
    const char *host = c ? PQhost(c) : NULL, *port = c ? PQport(c) : NULL;
    const char *db = c ? PQdb(c) : NULL;
    snprintf(buf, cap, "%s:%s/%s", host && *host ? host : "?", port && *port ? port : "?",
             db && *db ? db : "?");
}

static void
drop_conn(pg_store *s)
{
    if (s->conn)
        PQfinish(s->conn);
    s->conn = NULL;
}

static void
ignore_notice(void *arg, const char *message)
{
    (void)arg, (void)message;
}

/* A usable connection, connecting (again) when there is none or it broke. */
static int
ensure_conn(pg_store *s, char *err, size_t errlen)
{
    if (s->conn && PQstatus(s->conn) == CONNECTION_OK)
        return ATOLL_OK;
    drop_conn(s);
    s->conn = PQconnectdb(s->conninfo);
    if (!s->conn) {
        set_err(err, errlen, "postgres: out of memory connecting");
        return ATOLL_ENOMEM;
    }
    if (PQstatus(s->conn) != CONNECTION_OK) {
        char where[300], line[300];
        describe(s->conn, where, sizeof where);
        set_err(err, errlen, "postgres: cannot connect to %s: %s", where,
                first_line(PQerrorMessage(s->conn), line, sizeof line));
        drop_conn(s);
        return ATOLL_ECLOSED;
    }
    /* libpq prints the server's notices on stderr by default: none of ours matter, and
     * the node's log is its own. */
    PQsetNoticeProcessor(s->conn, ignore_notice, NULL);
    return ATOLL_OK;
}

/* After a failed statement: a broken connection is dropped (the next call connects
 * again), and the error code says which it was. */
static int
fail_conn(pg_store *s)
{
    if (s->conn && PQstatus(s->conn) == CONNECTION_BAD) {
        drop_conn(s);
        return ATOLL_ECLOSED;
    }
    return ATOLL_EIO;
}

/* Runs sql (no parameters) and expects a command or rows: the result, or NULL with the
 * sentence in err. */
static PGresult *
exec_sql(pg_store *s, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(s->conn, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    char line[300];
    set_err(err, errlen, "postgres: %s: %s", sql,
            first_line(r ? PQresultErrorMessage(r) : PQerrorMessage(s->conn), line,
                       sizeof line));
    PQclear(r);
    return NULL;
}

static bool
exec_ok(pg_store *s, const char *sql, char *err, size_t errlen)
{
    PGresult *r = exec_sql(s, sql, err, errlen);
    PQclear(r);
    return r != NULL;
}

/* Checks (or makes) the schema, inside the transaction open has begun. */
static int
check_schema(pg_store *s, char *err, size_t errlen)
{
    char where[300];
    describe(s->conn, where, sizeof where);
    PGresult *r = exec_sql(s,
                           "SELECT to_regclass('atoll_meta') IS NOT NULL, "
                           "to_regclass('atoll_docs') IS NOT NULL",
                           err, errlen);
    if (!r)
        return fail_conn(s);
    bool has_meta = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    bool has_docs = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
    PQclear(r);

    if (!has_meta) {
        if (has_docs) {
            set_err(err, errlen,
                    "postgres: database %s has an atoll_docs table but no atoll_meta: it "
                    "belongs to another program, refusing to use it",
                    where);
            return ATOLL_ESTATE;
        }
        char ins[200];
        snprintf(ins, sizeof ins,
                 "INSERT INTO atoll_meta(key, value) VALUES ('schema', '%d'), "
                 "('program', 'atoll')",
                 ATOLL__STORE_SCHEMA);
        if (!exec_ok(s, "CREATE TABLE atoll_meta(key text PRIMARY KEY, value text)", err,
                     errlen) ||
            !exec_ok(s, ins, err, errlen) ||
            !exec_ok(s,
                     "CREATE TABLE atoll_docs(kind smallint, key text, epoch bigint NOT "
                     "NULL, doc bytea NOT NULL, PRIMARY KEY(kind, key))",
                     err, errlen))
            return fail_conn(s);
        return ATOLL_OK;
    }

    r = exec_sql(s,
                 "SELECT (SELECT value FROM atoll_meta WHERE key = 'program'), "
                 "(SELECT value FROM atoll_meta WHERE key = 'schema')",
                 err, errlen);
    if (!r)
        return fail_conn(s);
    char program[64], version[64];
    snprintf(program, sizeof program, "%s", PQgetvalue(r, 0, 0));
    snprintf(version, sizeof version, "%s", PQgetvalue(r, 0, 1));
    bool null_version = PQgetisnull(r, 0, 1);
    PQclear(r);
    if (strcmp(program, "atoll") != 0) {
        set_err(err, errlen,
                "postgres: database %s has an atoll_meta table whose program is '%s', not "
                "atoll: refusing to use it",
                where, program);
        return ATOLL_ESTATE;
    }
    char *end = NULL;
    long v = null_version ? -1 : strtol(version, &end, 10);
    if (null_version || end == version || *end != '\0' || v < 1) {
        set_err(err, errlen, "postgres: database %s has a malformed schema version '%s'",
                where, version);
        return ATOLL_ESTATE;
    }
    if (v > ATOLL__STORE_SCHEMA) {
        set_err(err, errlen,
                "postgres: database %s holds atoll schema version %ld, newer than version "
                "%d that this program knows: refusing to use it (upgrade atoll)",
                where, v, ATOLL__STORE_SCHEMA);
        return ATOLL_ESTATE;
    }
    if (!has_docs) { /* ours, but its documents' table went away: make it again */
        if (!exec_ok(s,
                     "CREATE TABLE atoll_docs(kind smallint, key text, epoch bigint NOT "
                     "NULL, doc bytea NOT NULL, PRIMARY KEY(kind, key))",
                     err, errlen))
            return fail_conn(s);
    }
    return ATOLL_OK;
}

static int
pg_open(atoll__store *base, char *err, size_t errlen)
{
    pg_store *s = (pg_store *)base;
    int rc = ensure_conn(s, err, errlen);
    if (rc != ATOLL_OK)
        return rc;
    char lock[100];
    snprintf(lock, sizeof lock, "SELECT pg_advisory_xact_lock(%d)", PG_OPEN_LOCK);
    if (!exec_ok(s, "BEGIN", err, errlen) || !exec_ok(s, lock, err, errlen))
        return fail_conn(s);
    rc = check_schema(s, err, errlen);
    if (rc == ATOLL_OK && !exec_ok(s, "COMMIT", err, errlen))
        rc = fail_conn(s);
    if (rc != ATOLL_OK && s->conn) {
        PGresult *rb = PQexec(s->conn, "ROLLBACK");
        PQclear(rb);
    }
    return rc;
}

static void
put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void
put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static int
pg_load(atoll__store *base, atoll__doc_kind kind, const char *key, uint8_t **bytes,
        size_t *len, uint64_t *epoch, char *err, size_t errlen)
{
    pg_store *s = (pg_store *)base;
    *bytes = NULL;
    *len = 0;
    int rc = ensure_conn(s, err, errlen);
    if (rc != ATOLL_OK)
        return rc;
    uint8_t k[2];
    put_be16(k, (uint16_t)kind);
    const char *values[2] = {(const char *)k, key};
    int lengths[2] = {2, 0};
    int formats[2] = {1, 0};
    Oid types[2] = {PG_INT2OID, PG_TEXTOID};
    PGresult *r = PQexecParams(s->conn,
                               "SELECT doc, epoch FROM atoll_docs WHERE kind = $1 AND key = $2",
                               2, types, values, lengths, formats, 1 /* binary results */);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        char line[300];
        set_err(err, errlen, "postgres: load: %s",
                first_line(r ? PQresultErrorMessage(r) : PQerrorMessage(s->conn), line,
                           sizeof line));
        PQclear(r);
        return fail_conn(s);
    }
    if (PQntuples(r) == 0) {
        PQclear(r);
        return ATOLL_ENOENT;
    }
    size_t n = (size_t)PQgetlength(r, 0, 0);
    const uint8_t *e = (const uint8_t *)PQgetvalue(r, 0, 1);
    if (PQgetlength(r, 0, 1) != 8) {
        PQclear(r);
        set_err(err, errlen, "postgres: load: epoch is not a bigint");
        return ATOLL_EPROTO;
    }
    uint8_t *out = malloc(n ? n : 1); /* an empty document is not "none" */
    if (!out) {
        PQclear(r);
        set_err(err, errlen, "postgres: load: out of memory for %zu bytes", n);
        return ATOLL_ENOMEM;
    }
    memcpy(out, PQgetvalue(r, 0, 0), n);
    uint64_t ep = 0;
    for (int i = 0; i < 8; i++)
        ep = ep << 8 | e[i];
    PQclear(r);
    *bytes = out;
    *len = n;
    *epoch = ep;
    return ATOLL_OK;
}

/* Many documents in one query: the keys travel as one text[] literal, each element
 * quoted ("..." with a backslash before " and backslash), and the rows come back with
 * their key. */
static int
pg_load_many(atoll__store *base, atoll__doc_kind kind, const char *const *keys, size_t n,
             atoll__doc_loaded *out, char *err, size_t errlen)
{
    pg_store *s = (pg_store *)base;
    for (size_t i = 0; i < n; i++)
        out[i] = (atoll__doc_loaded){.status = ATOLL_ENOENT};
    int rc = ensure_conn(s, err, errlen);
    if (rc != ATOLL_OK)
        return rc;
    atoll__buf arr = ATOLL__BUF_INIT;
    atoll__buf_push(&arr, '{');
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            atoll__buf_push(&arr, ',');
        atoll__buf_push(&arr, '"');
        for (const char *c = keys[i]; *c; c++) {
            if (*c == '"' || *c == '\\')
                atoll__buf_push(&arr, '\\');
            atoll__buf_push(&arr, (uint8_t)*c);
        }
        atoll__buf_push(&arr, '"');
    }
    atoll__buf_push(&arr, '}');
    atoll__buf_push(&arr, '\0');
    uint8_t k[2];
    put_be16(k, (uint16_t)kind);
    const char *values[2] = {(const char *)k, (const char *)atoll__buf_data(&arr)};
    int lengths[2] = {2, 0};
    int formats[2] = {1, 0};
    Oid types[2] = {PG_INT2OID, 0 /* the server infers text[] from the cast */};
    PGresult *r = PQexecParams(s->conn,
                               "SELECT key, doc, epoch FROM atoll_docs "
                               "WHERE kind = $1 AND key = ANY($2::text[])",
                               2, types, values, lengths, formats, 1 /* binary results */);
    atoll__buf_fini(&arr);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        char line[300];
        set_err(err, errlen, "postgres: load of %zu documents: %s", n,
                first_line(r ? PQresultErrorMessage(r) : PQerrorMessage(s->conn), line,
                           sizeof line));
        PQclear(r);
        return fail_conn(s);
    }
    /* Rows in no particular order: each finds its key (n is at most a few hundred). */
    for (int row = 0; row < PQntuples(r); row++) {
        const char *key = PQgetvalue(r, row, 0);
        size_t klen = (size_t)PQgetlength(r, row, 0);
        size_t i = 0;
        while (i < n && !(strlen(keys[i]) == klen && memcmp(keys[i], key, klen) == 0))
            i++;
        if (i == n || out[i].status == ATOLL_OK || PQgetlength(r, row, 2) != 8)
            continue; /* not asked for (cannot be), twice, or not a bigint */
        size_t len = (size_t)PQgetlength(r, row, 1);
        uint8_t *bytes = malloc(len ? len : 1);
        if (bytes == NULL) {
            for (size_t j = 0; j < n; j++)
                free(out[j].bytes), out[j] = (atoll__doc_loaded){.status = ATOLL_ENOENT};
            PQclear(r);
            set_err(err, errlen, "postgres: load: out of memory for %zu bytes", len);
            return ATOLL_ENOMEM;
        }
        memcpy(bytes, PQgetvalue(r, row, 1), len);
        const uint8_t *e = (const uint8_t *)PQgetvalue(r, row, 2);
        uint64_t ep = 0;
        for (int b = 0; b < 8; b++)
            ep = ep << 8 | e[b];
        out[i] = (atoll__doc_loaded){ATOLL_OK, bytes, len, ep};
    }
    PQclear(r);
    return ATOLL_OK;
}

static const char UPSERT_SQL[] =
    "INSERT INTO atoll_docs(kind, key, epoch, doc) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (kind, key) DO UPDATE SET doc = EXCLUDED.doc, epoch = EXCLUDED.epoch "
    "WHERE atoll_docs.epoch <= EXCLUDED.epoch RETURNING 1";
/* The DELETE in the WITH runs whatever the SELECT reads; the SELECT sees the rows as
 * they were before it, so it returns a row unless a newer epoch is stored (fenced). */
static const char DELETE_SQL[] =
    "WITH d AS (DELETE FROM atoll_docs WHERE kind = $1 AND key = $2 AND epoch <= $3) "
    "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM atoll_docs WHERE kind = $1 AND key = $2 "
    "AND epoch > $3)";

static int
pg_commit(atoll__store *base, const atoll__doc_write *batch, size_t n, int *results,
          char *err, size_t errlen)
{
    pg_store *s = (pg_store *)base;
    for (size_t i = 0; i < n; i++) {
        if (batch[i].epoch > (uint64_t)INT64_MAX) {
            set_err(err, errlen, "postgres: epoch %llu of %s is over a bigint",
                    (unsigned long long)batch[i].epoch, batch[i].key);
            return ATOLL_EINVAL;
        }
        if (batch[i].len > ATOLL__DOC_MAX || batch[i].len > (size_t)INT32_MAX) {
            set_err(err, errlen, "postgres: document %s of %zu bytes is over the limit",
                    batch[i].key, batch[i].len);
            return ATOLL_ELIMIT;
        }
    }
    int rc = ensure_conn(s, err, errlen);
    if (rc != ATOLL_OK)
        return rc;
    PGconn *c = s->conn;
    if (!PQenterPipelineMode(c)) {
        char line[300];
        set_err(err, errlen, "postgres: cannot enter pipeline mode: %s",
                first_line(PQerrorMessage(c), line, sizeof line));
        return fail_conn(s);
    }

    /* Send everything, then one Sync: a single round trip. */
    bool sent = PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
    for (size_t i = 0; sent && i < n; i++) {
        const atoll__doc_write *w = &batch[i];
        uint8_t k[2], e[8];
        put_be16(k, (uint16_t)w->kind);
        put_be64(e, w->epoch);
        const char *values[4] = {(const char *)k, w->key, (const char *)e,
                                 w->bytes ? (const char *)w->bytes : ""};
        int lengths[4] = {2, 0, 8, (int)w->len};
        int formats[4] = {1, 0, 1, 1};
        Oid types[4] = {PG_INT2OID, PG_TEXTOID, PG_INT8OID, PG_BYTEAOID};
        if (w->bytes)
            sent = PQsendQueryParams(c, UPSERT_SQL, 4, types, values, lengths, formats, 0);
        else
            sent = PQsendQueryParams(c, DELETE_SQL, 3, types, values, lengths, formats, 0);
    }
    sent = sent && PQsendQueryParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0);
    sent = sent && PQpipelineSync(c);
    if (!sent) {
        char line[300];
        set_err(err, errlen, "postgres: commit: cannot send the batch: %s",
                first_line(PQerrorMessage(c), line, sizeof line));
        drop_conn(s); /* the pipeline is in an unknown state: start afresh */
        return ATOLL_ECLOSED;
    }

    /* Results come in order: BEGIN (query 0), the n writes, COMMIT (n + 1), each
     * followed by a NULL, and then the Sync's. */
    size_t q = 0;
    bool failed = false, committed = false, lost = false;
    if (err && errlen)
        err[0] = '\0';
    for (;;) {
        PGresult *r = PQgetResult(c);
        if (!r) {
            if (PQstatus(c) == CONNECTION_BAD || q > n + 2) {
                lost = true;
                break;
            }
            q++;
            continue;
        }
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            break;
        }
        if (st == PGRES_TUPLES_OK && q >= 1 && q <= n) {
            results[q - 1] = PQntuples(r) > 0 ? ATOLL__WRITE_OK : ATOLL__WRITE_FENCED;
        } else if (st == PGRES_COMMAND_OK && (q == 0 || q == n + 1)) {
            committed = q == n + 1;
        } else {
            if (!failed && st != PGRES_PIPELINE_ABORTED) {
                char line[300];
                set_err(err, errlen, "postgres: commit of %zu documents failed: %s", n,
                        first_line(PQresultErrorMessage(r), line, sizeof line));
            }
            failed = true;
        }
        PQclear(r);
        if (PQstatus(c) == CONNECTION_BAD) {
            lost = true;
            break;
        }
    }
    if (lost) {
        if (!failed || !err || !err[0]) {
            char line[300];
            set_err(err, errlen, "postgres: commit: connection lost: %s",
                    first_line(PQerrorMessage(c), line, sizeof line));
        }
        drop_conn(s);
        return ATOLL_ECLOSED;
    }
    PQexitPipelineMode(c);
    if (failed || !committed) {
        /* An error inside BEGIN leaves the transaction aborted after the Sync. */
        if (PQtransactionStatus(c) != PQTRANS_IDLE) {
            PGresult *rb = PQexec(c, "ROLLBACK");
            PQclear(rb);
        }
        if (err && errlen && !err[0])
            set_err(err, errlen, "postgres: commit of %zu documents failed", n);
        return fail_conn(s);
    }
    return ATOLL_OK;
}

static void
pg_close(atoll__store *base)
{
    pg_store *s = (pg_store *)base;
    drop_conn(s);
    atoll__free(s); /* close frees, as every store's does (backends.h) */
}

static const atoll__store_ops PG_OPS = {
    .name = "postgres",
    .open = pg_open,
    .load = pg_load,
    .load_many = pg_load_many,
    .commit = pg_commit,
    .close = pg_close,
};

/* One allocation with its conninfo: close frees it. */
atoll__store *
atoll__store_postgres_new(const char *conninfo)
{
    if (!conninfo)
        return NULL;
    size_t n = strlen(conninfo) + 1;
    pg_store *s = atoll__calloc(1, sizeof *s + n);
    s->base.ops = &PG_OPS;
    s->conninfo = (char *)(s + 1);
    memcpy(s->conninfo, conninfo, n);
    return &s->base;
}
