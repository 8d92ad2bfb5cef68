/* core.h -- internal contract of src/core: allocation, byte buffers, logging, clock.
 *
 * Allocation: atoll__malloc and friends abort through one out-of-memory path in the
 * server core (Redis's policy: a server that cannot allocate cannot keep its
 * promises, so it says so loudly and stops). The codec never allocates except through
 * atoll__buf, and the client library checks atoll__buf_try_reserve's result.
 *
 * atoll__buf is an owned, length-tracked byte buffer with explicit len and cap. It
 * keeps `head` spare bytes in front of the data so that a framing header (the
 * WebSocket frame header) can be written in front of already-gathered output
 * without copying it.
 *
 * Logging: ATOLL_LOG(level, ...) checks the level before it evaluates any argument.
 * Lines are logfmt ("ts=... level=info w=1 msg=\"...\" key=value"), one write(2) per
 * line, safe from any thread.
 */
#ifndef ATOLL_CORE_H
#define ATOLL_CORE_H

#include <atoll/atoll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- allocation ------------------------------------------------------------- */

void *atoll__malloc(size_t n);
void *atoll__calloc(size_t count, size_t n);
void *atoll__realloc(void *p, size_t n);
char *atoll__strndup(const char *s, size_t n);
/* Room for one more item in an array of len items in *cap slots of size bytes: returns
 * the array, moved to twice the slots (`first` at first) when it was full. */
void *atoll__grow(void *items, size_t len, size_t *cap, size_t size, size_t first);
void atoll__free(void *p);
/* Called on allocation failure in the server core; logs and aborts. */
void atoll__oom(size_t n) __attribute__((noreturn));

/* ---- byte buffers ------------------------------------------------------------- */

typedef struct atoll__buf {
    uint8_t *base; /* allocation; data starts at base + head */
    size_t head;   /* spare bytes kept in front of the data */
    size_t len;    /* bytes of data */
    size_t cap;    /* bytes allocated after head */
} atoll__buf;

#define ATOLL__BUF_INIT {NULL, 0, 0, 0}

/* Data pointer (valid until the next call that may grow the buffer). */
static inline uint8_t *
atoll__buf_data(const atoll__buf *b)
{
    return b->base ? b->base + b->head : NULL;
}

/* Make room for `extra` more bytes; amortized doubling. Returns ATOLL_OK or
 * ATOLL_ENOMEM (never aborts: the client library and codec need the error). */
int atoll__buf_try_reserve(atoll__buf *b, size_t extra);
/* Same, but aborts through atoll__oom on failure (server core). */
void atoll__buf_reserve(atoll__buf *b, size_t extra);
/* Ask for `head` spare bytes in front of the data; only on an empty buffer. */
void atoll__buf_set_head(atoll__buf *b, size_t head);
void atoll__buf_append(atoll__buf *b, const void *p, size_t n);
static inline void
atoll__buf_push(atoll__buf *b, uint8_t c)
{
    if (b->len == b->cap)
        atoll__buf_reserve(b, 1);
    b->base[b->head + b->len++] = c;
}
/* Drop the first n bytes of data (memmove of the rest). */
void atoll__buf_consume(atoll__buf *b, size_t n);
/* Free the allocation when it has grown past `keep` bytes and is empty, so one burst
 * does not pin memory on an idle connection. */
void atoll__buf_shrink(atoll__buf *b, size_t keep);
void atoll__buf_fini(atoll__buf *b);

/* ---- logging ------------------------------------------------------------------ */

/* Levels: atoll_log_level of atoll.h, the one enum for the framework and games. */
extern int atoll__log_threshold;

/* Name of the calling thread for log lines ("main", "w0", ...). */
void atoll__log_set_thread(const char *name);
/* That name (for crash.c's signal handlers, which cannot call printf). */
const char *atoll__log_thread(void);
int atoll__log_parse_level(const char *s); /* -1 when unknown */
void atoll__log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* msg is a plain sentence; the remaining arguments are "key=value" pairs in fmt. */
#define ATOLL_LOG(level, ...)                                                              \
    do {                                                                                   \
        if ((level) <= atoll__log_threshold)                                               \
            atoll__log_write((level), __VA_ARGS__);                                        \
    } while (0)

/* Lines caused by clients (bad input, floods, slow readers) go through a per-thread
 * budget of ATOLL_LOG_CLIENT_PER_S lines a second, so a hostile client cannot flood
 * the log; what is dropped is counted and reported by the next such line in a later
 * second ("log lines suppressed"). */
#define ATOLL_LOG_CLIENT_PER_S 20
bool atoll__log_budget(void);
#define ATOLL_LOG_CLIENT(level, ...)                                                       \
    do {                                                                                   \
        if ((level) <= atoll__log_threshold && atoll__log_budget())                        \
            atoll__log_write((level), __VA_ARGS__);                                        \
    } while (0)

/* ---- clock -------------------------------------------------------------------- */

/* Monotonic clock in nanoseconds. */
uint64_t atoll__now_ns(void);
/* CPU time the process has used, all its threads, in nanoseconds: the CPU part of a
 * node's load. Not wall time in handlers: on a busy machine a thread waiting for a
 * core would count as busy, and a node's load would follow its neighbours'. */
uint64_t atoll__cpu_ns(void);

#endif /* ATOLL_CORE_H */
