/* fuzz.h -- what the fuzz targets share: CHECK, an assertion that aborts, so libFuzzer
 * (and the corpus replay) report a broken contract as a crash with the input saved. */
#ifndef ATOLL_FUZZ_H
#define ATOLL_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(c)                                                                           \
    do {                                                                                   \
        if (!(c)) {                                                                        \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #c);          \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

#endif /* ATOLL_FUZZ_H */
