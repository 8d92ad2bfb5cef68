/* store.c -- picks the store a --store URL names (backends.h). */
#include "backends.h"

#include <stdio.h>

atoll__store *
atoll__store_new(const char *url, char *err, size_t errlen)
{
    if (url == NULL || strcmp(url, "memory") == 0)
        return atoll__store_memory_new();
    if (strncmp(url, "sqlite:", 7) == 0 && url[7] != '\0')
        return atoll__store_sqlite_new(url + 7);
    if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0)
        return atoll__store_postgres_new(url);
    snprintf(err, errlen, "unknown store '%.200s': memory, sqlite:PATH or "
             "postgres://USER@HOST:PORT/DB", url);
    return NULL;
}

void
atoll__store_free(atoll__store *s)
{
    if (s != NULL)
        s->ops->close(s);
}
