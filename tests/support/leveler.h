/* leveler.h -- players of the quick game leveling up in threads of the test, each
 * checking that every answer is the level after the last one (nothing lost, skipped or
 * run twice), while the test stops, kills or moves the nodes behind them.
 */
#ifndef ATOLL_TEST_LEVELER_H
#define ATOLL_TEST_LEVELER_H

#include "harness.h"

#include <atollc/atollc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

typedef struct leveler {
    pthread_t thread;
    atollc_sync *s;
    char uid[16];
    int timeout_ms;     /* how long one answer may take */
    atomic_int stop;
    atomic_int acked;   /* the last level acknowledged (read by the test while it plays) */
    uint64_t *acked_us; /* acked_us[level]: when that level's answer came */
    size_t cap;
    char bad[160];      /* an answer out of sequence */
    uint64_t ended_us;  /* when it stopped: asked to, or its connection failed */
} leveler;

/* Enters n players named <prefix>0.. through node (a gate) and starts their threads;
 * each request may take timeout_ms. */
void levelers_start(test_node *node, leveler *ls, int n, const char *prefix, int timeout_ms);
/* Stops and joins the threads; each must have played until stopped_us (its connection
 * failing no sooner) and seen only the next level each time. */
void levelers_join(leveler *ls, int n, uint64_t stopped_us);
/* The longest wait between two answers of l after since_us (or from since_us to the
 * first answer after it), in microseconds. */
uint64_t leveler_longest_gap(const leveler *l, uint64_t since_us);
void levelers_free(leveler *ls, int n);

#endif /* ATOLL_TEST_LEVELER_H */
