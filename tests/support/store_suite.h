/* store_suite.h -- one conformance suite for every store backend (node/store.h).
 *
 * The suite knows a store only through its table of functions: each case asks make
 * for a new store over an EMPTY place (a new database, file or table: the backend's
 * test decides), opens it, and checks what store.h promises: the schema is made at
 * open and a second open is fine, a missing document is ATOLL_ENOENT, bytes (NULs, an
 * empty document, 1 MiB, a key of ATOLL__DOC_KEY_MAX bytes) and epochs come back as
 * written, the two kinds are separate, a batch's writes all land, fencing by epoch
 * (older refused and nothing changed, equal and newer pass, in a batch next to writes
 * that pass), and deletes with the same fencing.
 *
 * Each case runs in a forked child (a failed ASSERT of test.h ends that case alone)
 * and prints a TAP-like line "ok - LABEL: CASE". Checks that need the backend's own
 * means (schema rows, a foreign database, a lost connection) are the backend test's.
 */
#ifndef ATOLL_TEST_STORE_SUITE_H
#define ATOLL_TEST_STORE_SUITE_H

#include "node/store.h"

#include <stddef.h>

/* A new store, not opened, over an empty place; the suite frees it with
 * atoll__store_free (close frees, store/backends.h). NULL fails the case. */
typedef atoll__store *(*store_suite_make_fn)(void *ctx);

/* Runs every case; returns the number that failed (0: the backend conforms). */
int store_suite_run(const char *label, store_suite_make_fn make, void *ctx);

/* Runs fn(arg) in a forked child as one case, printing its line: 0 when it passed, 1
 * when it failed. For a backend test's own cases next to the suite. */
int store_suite_case(const char *label, const char *name, void (*fn)(void *arg),
                     void *arg);

/* Helpers for the backend tests' own cases: a store opened (ASSERT on failure), one
 * write committed with its result returned, a load that expects bytes. */
atoll__store *store_suite_open(store_suite_make_fn make, void *ctx);
void store_suite_dispose(atoll__store *s);
int store_suite_put(atoll__store *s, atoll__doc_kind kind, const char *key, uint64_t epoch,
                    const void *bytes, size_t len);
void store_suite_expect(atoll__store *s, atoll__doc_kind kind, const char *key,
                        uint64_t epoch, const void *bytes, size_t len);

#endif /* ATOLL_TEST_STORE_SUITE_H */
