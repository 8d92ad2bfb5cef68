/* directory.h -- the directory's operations: which area lives where, which player is in
 * which area. One table of functions, whatever holds the data: the in-process
 * directory of a single node (dir_local.c), Redis in a cluster.
 *
 * DESIGN. Every operation is asynchronous, because a directory on another machine is:
 * a function starts it and returns; the answer comes back later as DIR_ANSWER mail to
 * the address the caller gave, carrying the caller's cookie (cookie 0: no answer
 * wanted). The in-process directory answers that way too, although it could answer at
 * once, so the code above it is the code a cluster runs.
 *
 * Each id's entry has an epoch, set from one counter of the directory at every write,
 * so a later entry of an id always has a larger epoch than an earlier one, even across
 * the id being removed and placed again. After a write that changes or removes an
 * entry, the directory publishes DIR_INVALIDATE {id, old epoch} to every subscriber
 * (after the write, never before). Workers cache answers and drop what an invalidation
 * names; a cache that is still stale when it is used is corrected by the owner, which
 * answers `moved` for an area it does not have (docs/design/directory.md).
 *
 * Placement (which worker or node should run a new area), the values an area is
 * created with and the stats of areas are not directory data and live elsewhere
 * (src/area).
 */
#ifndef ATOLL_NODE_DIRECTORY_H
#define ATOLL_NODE_DIRECTORY_H

#include "mail.h"

/* Where an area lives. */
typedef struct atoll__dir_entry {
    uint64_t num;       /* the area's number (never reused) */
    atoll__addr owner;  /* the worker that runs it */
    uint64_t epoch;     /* set by the directory */
    int type_index;     /* its area type (every node of a cluster runs the same game) */
} atoll__dir_entry;

typedef struct atoll__dir atoll__dir;

typedef struct atoll__dir_ops {
    const char *name;
    /* Where area id lives: DIR_ANSWER ATOLL_OK with the entry, or ATOLL_ENOENT. */
    void (*resolve)(atoll__dir *d, const char *id, atoll__addr reply_to, uint64_t cookie);
    /* Records e for id when id has no entry: ATOLL_OK with the entry and its new epoch
     * (e->epoch is ignored), or ATOLL_EEXIST with the entry that is there. */
    void (*place)(atoll__dir *d, const char *id, const atoll__dir_entry *e,
                  atoll__addr reply_to, uint64_t cookie);
    /* Compare-and-set: when id's entry still has epoch `expected`, it becomes e with a
     * new epoch (e NULL: the entry is removed), ATOLL_OK; else ATOLL_ESTATE with the
     * entry that is there, or ATOLL_ENOENT. Subscribers are told after the write. */
    void (*cas_owner)(atoll__dir *d, const char *id, uint64_t expected,
                      const atoll__dir_entry *e, atoll__addr reply_to, uint64_t cookie);
    /* Records the area player uid is in ("" or NULL: none). No answer. */
    void (*bind_player)(atoll__dir *d, const char *uid, const char *area_id);
    /* Where player uid is: DIR_ANSWER ATOLL_OK with the area's id in `from`, or
     * ATOLL_ENOENT. */
    void (*find_player)(atoll__dir *d, const char *uid, atoll__addr reply_to, uint64_t cookie);
    /* who gets DIR_INVALIDATE mail from now on. */
    void (*subscribe)(atoll__dir *d, atoll__addr who);
    /* Publishes DIR_INVALIDATE {id, epoch} to every subscriber: entries of id with
     * this epoch or an older one are stale. */
    void (*invalidate)(atoll__dir *d, const char *id, uint64_t epoch);
    void (*free)(atoll__dir *d);
} atoll__dir_ops;

/* Every directory starts with its table. */
struct atoll__dir {
    const atoll__dir_ops *ops;
};

/* The cookie of a coordinator's cas_owner that takes an area from a dead node (low 3
 * bits; the area type's index above them): the worker it answers gives the area a new
 * owner when the entry was removed (src/area/where.c). */
#define ATOLL_DIR_COOKIE_TAKEOVER 5u

/* Where a directory's mail goes: the node's atoll__send_to, or a test's capture. */
typedef void (*atoll__dir_post_fn)(void *ctx, atoll__addr to, atoll__mail *m);

/* The in-process directory (dir_local.c): a table under one mutex, any thread. */
atoll__dir *atoll__dir_local_new(atoll__dir_post_fn post, void *ctx);

/* DIR_ANSWER mail: status, the id in `from`, the entry in area/at/epoch/type_index,
 * the cookie in call_id. */
atoll__mail *atoll__dir_answer_new(uint64_t cookie, int status, const char *id,
                                   const atoll__dir_entry *e);
/* The entry a DIR_ANSWER carries. */
atoll__dir_entry atoll__dir_answer_entry(const atoll__mail *m);

#endif /* ATOLL_NODE_DIRECTORY_H */
