/* leveler.h -- players of the quick game leveling up in threads of the test, each
 * checking that every answer is the level after the last one (nothing lost, skipped or
 * run twice), while the test stops, kills or moves the nodes behind them; and players
 * of a store outage, whose requests may also be refused.
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

/* A player of a store outage (durable mode), leveling up in a thread of its own until
 * stopped: each answer must come within 5 s (the client's limit fails the test), 200
 * with a level above the last (levels only go up, even across refusals) or 500 (its
 * commit did not come within store.timeout_ms). Entered by the test's main thread (the
 * client helpers' globals). */
typedef struct outage_player {
    atollc_sync *s;
    char uid[32];
    atomic_bool stop;
    int64_t last_acked;  /* the highest level answered with code 200 */
    atomic_int answered; /* replies 200, read by the test while it plays */
    atomic_int refused;  /* replies 500 */
    uint64_t longest_us; /* the longest wait for a reply */
} outage_player;

/* The thread of an outage_player (arg). */
void *outage_play(void *arg);

#endif /* ATOLL_TEST_LEVELER_H */
