/* store.h -- where players' and areas' state documents are kept: one table of
 * functions whatever holds them (src/store: SQLite for the embedded node, PostgreSQL
 * for a cluster, or memory), and the node's one writer thread (writer.c) that commits
 * what changed in batches.
 *
 * DESIGN. Game code never touches the store (invariant 2): it changes documents in
 * memory, and the framework hands the changed ones, encoded, to the writer. The writer
 * runs on its own thread and cuts a batch whenever it is free: everything submitted
 * while the previous batch committed goes into the next one, as one transaction (group
 * commit, invariant 4). A document submitted twice before its batch is cut is written
 * once, the later bytes winning. Each write carries its owner's epoch: the store
 * refuses a write whose epoch is older than the one it holds for that document
 * (fencing, invariant 1), and the writer then stops writing that document and says so.
 * A store that fails (a lost connection, a full disk) does not lose anything: the batch
 * stays, and is tried again with a growing pause, while newer writes of the same
 * documents replace older ones in it.
 *
 * The backends are called on the writer's thread (and, for loads, on the thread that
 * asks), one call at a time per store: they may block, and need no lock of their own
 * beyond what their library wants for a second connection.
 */
#ifndef ATOLL_NODE_STORE_H
#define ATOLL_NODE_STORE_H

#include "../core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The kinds of documents. */
typedef enum atoll__doc_kind {
    ATOLL__DOC_PLAYER = 1, /* keyed by the player's uid */
    ATOLL__DOC_AREA = 2,   /* keyed by the area's id */
} atoll__doc_kind;

/* Limits of what a store keeps. */
#define ATOLL__DOC_KEY_MAX 128          /* bytes of a key: a uid or an area id */
#define ATOLL__DOC_MAX (16u << 20)      /* bytes of one encoded document */

/* A document's name in maps of documents: "<kind>:<key>", at most this many bytes. */
#define ATOLL__DOC_NAME_MAX (ATOLL__DOC_KEY_MAX + 16)

/* The version of the schema this code writes and reads (a row of the store holds the
 * version it was created with; a newer one is refused at open). */
#define ATOLL__STORE_SCHEMA 1

/* One document to write: its bytes are owned by the write. */
typedef struct atoll__doc_write {
    atoll__doc_kind kind;
    char key[ATOLL__DOC_KEY_MAX + 1];
    uint64_t epoch;     /* the owner's epoch: older than the stored one is refused */
    uint64_t seq;       /* the submitter's count of this document's changes */
    uint8_t *bytes;     /* NULL with len 0: delete the document */
    size_t len;
} atoll__doc_write;

/* What a commit says of each write of its batch. */
enum {
    ATOLL__WRITE_OK = 0,
    ATOLL__WRITE_FENCED = 1, /* a newer owner's epoch is stored: refused */
};

typedef struct atoll__store atoll__store;

/* One answer of load_many. */
typedef struct atoll__doc_loaded {
    int status;        /* ATOLL_OK or ATOLL_ENOENT */
    uint8_t *bytes;    /* ATOLL_OK: malloc'd, the caller frees them */
    size_t len;
    uint64_t epoch;
} atoll__doc_loaded;

/* The most keys one load_many is given. */
#define ATOLL__LOAD_MANY_MAX 512

static inline void
atoll__doc_name(char out[ATOLL__DOC_NAME_MAX], atoll__doc_kind kind, const char *key)
{
    snprintf(out, ATOLL__DOC_NAME_MAX, "%d:%s", (int)kind, key);
}

typedef struct atoll__store_ops {
    const char *name;
    /* Creates the schema when the store is empty, checks its version otherwise:
     * ATOLL_OK, or an error with a sentence in err (a newer schema, a file or database
     * of another program, a store that cannot be reached). */
    int (*open)(atoll__store *s, char *err, size_t errlen);
    /* The document kind/key: ATOLL_OK with its bytes (malloc'd, the caller frees them)
     * and its epoch, ATOLL_ENOENT when there is none, or an error (with a sentence);
     * *bytes is NULL unless ATOLL_OK. */
    int (*load)(atoll__store *s, atoll__doc_kind kind, const char *key, uint8_t **bytes,
                size_t *len, uint64_t *epoch, char *err, size_t errlen);
    /* Writes the n documents of batch in one transaction. ATOLL_OK with results[i] for
     * each (ATOLL__WRITE_OK or ATOLL__WRITE_FENCED: fenced writes change nothing, the
     * others commit together); or an error when the transaction did not commit (nothing
     * of the batch is written), with a sentence in err. */
    int (*commit)(atoll__store *s, const atoll__doc_write *batch, size_t n, int *results,
                  char *err, size_t errlen);
    void (*close)(atoll__store *s);
    /* Optional: the n (at most ATOLL__LOAD_MANY_MAX, all different) documents kind/keys[i]
     * at once, in one round trip where the store is far (a thousand players logging in
     * after a restart): ATOLL_OK with out[i] for each, or an error for all of them (a
     * sentence in err; no bytes left in out). NULL: the writer loads them one by one. */
    int (*load_many)(atoll__store *s, atoll__doc_kind kind, const char *const *keys, size_t n,
                     atoll__doc_loaded *out, char *err, size_t errlen);
} atoll__store_ops;

/* Every store starts with its table. */
struct atoll__store {
    const atoll__store_ops *ops;
};

/* The backends are made by src/store (store/backends.h), which the program uses to
 * pick one from --store; every other part sees only this table. */

/* ---- writer.c: the node's writer thread ------------------------------------------------ */

typedef struct atoll__writer atoll__writer;

/* Runs on the writer's thread when a document's write is settled: status
 * ATOLL__WRITE_OK (committed: seq is the change that reached the store),
 * ATOLL__WRITE_FENCED (refused; the writer writes that document no more). */
typedef void (*atoll__writer_done_fn)(void *ctx, atoll__doc_kind kind, const char *key,
                                      uint64_t seq, int status);

/* Counters of the writer, for logs and benchmarks. */
typedef struct atoll__writer_stats {
    uint64_t batches;       /* transactions committed */
    uint64_t docs;          /* documents written */
    uint64_t bytes;         /* their encoded bytes */
    uint64_t coalesced;     /* writes replaced by a later one before their batch */
    uint64_t failures;      /* commits that failed and were tried again */
    uint64_t fenced;        /* writes refused for an older epoch */
    uint64_t commit_ns;     /* time in commits */
    uint64_t lag_ns_max;    /* longest wait of a write from its submit to its commit */
    uint64_t lag_ns_last;   /* that wait for the oldest write of the last batch */
    uint64_t lag_ns_now;    /* how long the oldest write not committed yet has waited */
    uint64_t loads;         /* documents asked for through atoll__writer_load */
} atoll__writer_stats;

/* Runs on the writer's thread after each batch committed: every submit up to `upto`
 * (atoll__writer_submitted) is in the store. */
typedef void (*atoll__writer_commit_fn)(void *ctx, uint64_t upto);

/* The answer to atoll__writer_load, on the writer's thread: status ATOLL_OK with the
 * bytes (the callee owns them), ATOLL_ENOENT, or an error with a sentence. */
typedef void (*atoll__writer_load_fn)(void *ctx, int status, uint8_t *bytes, size_t len,
                                      uint64_t epoch, const char *err);

/* Starts the writer thread over an opened store (not taken). done may be NULL. The
 * first retry after a failed commit waits retry_ms, doubling up to 30 s. */
atoll__writer *atoll__writer_start(atoll__store *s, atoll__writer_done_fn done, void *ctx,
                                   uint32_t retry_ms);
/* Hands a write over (any thread; takes d->bytes): it goes into the next batch,
 * replacing a write of the same document that has not been cut into a batch yet.
 * Refused (ATOLL_ESTATE, bytes freed) for a document the store fenced. */
int atoll__writer_submit(atoll__writer *w, atoll__doc_write *d);
/* Called after every committed batch (set before the first submit). */
void atoll__writer_on_commit(atoll__writer *w, atoll__writer_commit_fn fn, void *ctx);
/* Submits so far, and how many of them are committed (any thread). */
uint64_t atoll__writer_submitted(atoll__writer *w);
uint64_t atoll__writer_committed(atoll__writer *w);
/* Reads a document on the writer's thread, between batches: a write of it that waits
 * for its batch is the answer (it is newer than the store's copy), else the store's.
 * So a document written and read back at once is never read stale. Any thread. */
void atoll__writer_load(atoll__writer *w, atoll__doc_kind kind, const char *key,
                        atoll__writer_load_fn fn, void *ctx);
/* Waits until everything submitted before the call is committed (or timeout_ms
 * passed: ATOLL_ETIMEDOUT). Any thread but the writer's. */
int atoll__writer_flush(atoll__writer *w, uint32_t timeout_ms);
void atoll__writer_stats_get(atoll__writer *w, atoll__writer_stats *out);
/* Flushes (up to timeout_ms), stops the thread and frees the writer. Writes not
 * committed by then are dropped with a log line (ATOLL_ETIMEDOUT). */
int atoll__writer_stop(atoll__writer *w, uint32_t timeout_ms);

#endif /* ATOLL_NODE_STORE_H */
