/* alloc.c -- the one allocation seam of the server core, with an abort-on-OOM policy.
 *
 * Everything in src/ allocates through these functions so that accounting, limits and
 * fault injection can be added in one place later.
 */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void
atoll__oom(size_t n)
{
    char line[128];
    int len = snprintf(line, sizeof line, "level=error msg=\"out of memory\" size=%zu\n", n);
    if (len > 0)
        (void)!write(2, line, (size_t)len);
    abort();
}

void *
atoll__malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        atoll__oom(n);
    return p;
}

void *
atoll__calloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (p == NULL)
        atoll__oom(count * n);
    return p;
}

void *
atoll__realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        atoll__oom(n);
    return q;
}

void *
atoll__grow(void *items, size_t len, size_t *cap, size_t size, size_t first)
{
    if (len < *cap)
        return items;
    *cap = *cap ? *cap * 2 : first;
    return atoll__realloc(items, *cap * size);
}

char *
atoll__strndup(const char *s, size_t n)
{
    char *p = atoll__malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void
atoll__free(void *p)
{
    free(p);
}
