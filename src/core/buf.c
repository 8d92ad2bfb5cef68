/* buf.c -- atoll__buf: owned, length-tracked byte buffers with front headroom.
 *
 * Growth doubles the capacity (amortized O(1) appends); the headroom in front of the
 * data lets a transport prepend a frame header to gathered output without a copy.
 */
#include "core.h"

#include <stdlib.h>

int
atoll__buf_try_reserve(atoll__buf *b, size_t extra)
{
    if (b->cap - b->len >= extra && b->base != NULL)
        return ATOLL_OK;
    size_t need = b->len + extra;
    if (need < extra)
        return ATOLL_ENOMEM;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2)
            return ATOLL_ENOMEM;
        cap *= 2;
    }
    uint8_t *p = realloc(b->base, b->head + cap);
    if (p == NULL)
        return ATOLL_ENOMEM;
    b->base = p;
    b->cap = cap;
    return ATOLL_OK;
}

void
atoll__buf_reserve(atoll__buf *b, size_t extra)
{
    if (atoll__buf_try_reserve(b, extra) != ATOLL_OK)
        atoll__oom(b->len + extra);
}

void
atoll__buf_set_head(atoll__buf *b, size_t head)
{
    if (b->len != 0 || b->head == head)
        return;
    if (b->base != NULL) {
        uint8_t *p = realloc(b->base, head + b->cap);
        if (p == NULL)
            atoll__oom(head + b->cap);
        b->base = p;
    }
    b->head = head;
}

void
atoll__buf_append(atoll__buf *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    atoll__buf_reserve(b, n);
    memcpy(b->base + b->head + b->len, p, n);
    b->len += n;
}

void
atoll__buf_consume(atoll__buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->base + b->head, b->base + b->head + n, b->len - n);
    b->len -= n;
}

void
atoll__buf_shrink(atoll__buf *b, size_t keep)
{
    if (b->len == 0 && b->cap > keep) {
        free(b->base);
        b->base = NULL;
        b->cap = 0;
    }
}

void
atoll__buf_fini(atoll__buf *b)
{
    free(b->base);
    b->base = NULL;
    b->len = b->cap = 0;
}
