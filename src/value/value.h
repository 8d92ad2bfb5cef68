/* value.h -- internal functions of the value type (value.c) for the runtime. */
#ifndef ATOLL_VALUE_H
#define ATOLL_VALUE_H

#include "../core/core.h"

/* Appends the compact JSON text of v (null for NULL) to b. The runtime's encoder for
 * every reply and push, and atoll_dump's: jansson's own dumper formats each integer
 * through snprintf and went through a callback per token, which made it a fifth of a
 * level-up's user-space CPU. */
void atoll__value_write(atoll__buf *b, const atoll_value *v);

/* ---- the undo journal: all-or-nothing game code --------------------------------------
 *
 * While a journal is current on a thread, every change made through the public setters
 * (atoll_set and its typed forms, atoll_incr, atoll_del, atoll_append, atoll_remove_at)
 * is recorded with what it replaced. Rolling back undoes them newest first, so a
 * handler that fails leaves every value it changed as it was, at a cost per change and
 * not per byte of state: nothing is copied up front. The records hold references to
 * what they name, so a value dropped meanwhile is still there to be restored.
 *
 * A rollback restores contents, not every detail of layout: a member that was deleted
 * and is put back goes to the end of its object's order. */
typedef struct atoll__vj_rec {
    uint8_t op;
    atoll_value *container; /* the object or array changed (a reference) */
    atoll_value *old;       /* what was there (a reference), or NULL */
    char *key;
    int64_t old_int;
    size_t index;
} atoll__vj_rec;

typedef struct atoll__vjournal {
    atoll__vj_rec *recs;
    size_t n, cap;
} atoll__vjournal;

/* Makes j the thread's current journal (NULL: none). */
void atoll__vj_use(atoll__vjournal *j);
atoll__vjournal *atoll__vj_current(void);
/* Undoes every record of j, newest first, and empties it. */
void atoll__vj_rollback(atoll__vjournal *j);
/* Forgets the records (the changes stay) and drops their references. */
void atoll__vj_clear(atoll__vjournal *j);
void atoll__vj_fini(atoll__vjournal *j);

/* Documents: the compact text of a value for the store, and back. Decoding refuses
 * anything but an object, and text over ATOLL__VALUE_DOC_MAX or nested deeper than
 * jansson's limit (2048), with a sentence in err. */
#define ATOLL__VALUE_DOC_MAX (16u << 20)
atoll_value *atoll__value_doc_decode(const uint8_t *p, size_t n, char *err, size_t errlen);

#endif /* ATOLL_VALUE_H */
