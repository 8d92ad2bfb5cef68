/* seqload.h -- many players of the quick game on one thread of the test, each keeping a
 * window of level-ups in flight and checking every answer and every push against what
 * must come next, while the test moves, drains or kills the nodes behind them.
 *
 * What each client checks:
 *   - answers come in the order sent, each the level after the last (nothing lost,
 *     duplicated, reordered or run twice);
 *   - its "money" pushes are 10 x each level, one per level, in order, and each comes
 *     before the answer of its level (as the handler sent them);
 *   - the area's "levelup" pushes of every other player come with that player's levels
 *     one after the other (none lost or duplicated);
 *   - its connection stays up and it is never kicked.
 * The first break of any of these is kept as a sentence (seqload_result.bad).
 */
#ifndef ATOLL_TEST_SEQLOAD_H
#define ATOLL_TEST_SEQLOAD_H

#include <stddef.h>
#include <stdint.h>

typedef struct seqload seqload;

typedef struct seqload_result {
    uint64_t answers;        /* level-ups answered */
    uint64_t money_pushes;   /* of its own levels */
    uint64_t area_pushes;    /* levelup pushes of other players */
    uint64_t closed;         /* clients whose connection went away or were kicked */
    /* Answers that came without their money push before them. When a node dies, a
     * request it ran whose answer died with it runs once only, and is answered again
     * from its record: its pushes are not sent again. Nothing else may cause these
     * (without push_gaps_ok they are counted as bad). */
    uint64_t push_gaps;
    uint64_t area_push_gaps; /* levelup pushes of others missed, the same way */
    char bad[256];           /* the first thing out of order, or "" */
    /* Latency of each answer, from its request: the largest, and a histogram in
     * 100 µs buckets up to 1 s (the last bucket takes the rest). */
    uint64_t max_us;
    uint64_t hist[10001];
} seqload_result;

/* Connects n players "<prefix>0".. to the gate at host:port, enters them (each asks
 * its level first), and keeps `window` level-ups of each in flight. NULL when they
 * could not all connect and enter within 10 s. */
seqload *seqload_start(const char *host, int port, int n, int window, const char *prefix);
/* A node will die under these players: answers without their pushes are counted in
 * push_gaps, not as bad. */
void seqload_allow_push_gaps(seqload *s);
/* Answers so far (any thread). */
uint64_t seqload_answers(seqload *s);
/* Takes the latency histogram so far and starts a new one (any thread). */
void seqload_take_hist(seqload *s, uint64_t hist[10001], uint64_t *max_us);
/* Each player's longest wait for an answer answered since the last call (out: one per
 * player, in µs), and starts again (any thread). */
void seqload_take_player_max(seqload *s, uint64_t *out);
/* Stops sending, waits up to 10 s for what is in flight, closes the clients and fills
 * r. */
void seqload_stop(seqload *s, seqload_result *r);
/* The latency under which q (0..1) of the histogram's answers came, in µs. */
uint64_t seqload_quantile(const uint64_t hist[10001], double q);

#endif /* ATOLL_TEST_SEQLOAD_H */
