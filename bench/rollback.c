/* rollback.c -- atoll-rollback-bench: what all-or-nothing handlers cost, against the
 * deep copy they avoid.
 *
 * A handler's changes are journaled (src/value/value.h) so that a failing handler can be
 * undone. The other way to get all-or-nothing is to copy the state before each request
 * and put the copy back on failure; this program measures both on the same work: a
 * request that increments one counter of a player's data and one of an area's state,
 * for area states of 1 KB, 64 KB and 1 MB (objects of members holding small objects,
 * the shape game state has). Each way runs the request N times, half of them failing
 * (undone), in alternating rounds; the per-request times printed are the medians of the
 * rounds, and the ratio is copy over journal. The journal's cost does not grow with the
 * state; the copy's does.
 *
 * Usage: atoll-rollback-bench [--rounds R] [--requests N]    (prints one JSON line)
 */
#include <atoll/atoll.h>
#include "value/value.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* An area state of about `bytes` bytes of JSON: {"cell-N": {"hp":..,"x":..,"y":..}, ...}. */
static atoll_value *
make_state(size_t bytes)
{
    atoll_value *s = atoll_object();
    char key[32];
    size_t approx = 0;
    for (int i = 0; approx < bytes; i++) {
        snprintf(key, sizeof key, "cell-%d", i);
        atoll_set(s, key, atoll_pack("{s:i,s:i,s:i}", "hp", 100, "x", i, "y", -i));
        approx += strlen(key) + 30;
    }
    atoll_set_int(s, "turn", 0);
    return s;
}

/* One request: two counters; a failing one is undone. */
static void
request_journal(atoll__vjournal *j, atoll_value *player, atoll_value *area, int fail)
{
    atoll__vj_use(j);
    atoll_incr(player, "level", 1);
    atoll_incr(area, "turn", 1);
    atoll__vj_use(NULL);
    if (fail)
        atoll__vj_rollback(j);
    else
        atoll__vj_clear(j);
}

static void
request_copy(atoll_value **player, atoll_value **area, int fail)
{
    atoll_value *p0 = atoll_copy(*player), *a0 = atoll_copy(*area);
    atoll_incr(*player, "level", 1);
    atoll_incr(*area, "turn", 1);
    if (fail) {
        atoll_unref(*player);
        atoll_unref(*area);
        *player = p0;
        *area = a0;
    } else {
        atoll_unref(p0);
        atoll_unref(a0);
    }
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
    int rounds = 7, requests = 2000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--rounds"))
            rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--requests"))
            requests = atoi(argv[i + 1]);
    }
    if (rounds < 1 || rounds > 101 || requests < 1) {
        fprintf(stderr, "usage: atoll-rollback-bench [--rounds 1..101] [--requests N]\n");
        return 2;
    }
    static const size_t sizes[] = {1024, 64 * 1024, 1024 * 1024};
    printf("{\"requests\":%d,\"rounds\":%d,\"states\":[", requests, rounds);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        atoll_value *player = atoll_pack("{s:i,s:i}", "level", 0, "money", 0);
        atoll_value *area = make_state(sizes[s]);
        size_t len = 0;
        atoll_free(atoll_dump(area, &len));
        double *tj = calloc((size_t)rounds, sizeof *tj), *tc = calloc((size_t)rounds, sizeof *tc);
        atoll__vjournal j = {0};
        /* Fewer copy requests for bigger states (a 1 MB copy takes tens of ms): about
         * as many bytes copied per round whatever the size, and at least 10. */
        int ncopy = (int)((size_t)requests * 1024 / sizes[s]);
        if (ncopy < 10)
            ncopy = 10;
        for (int r = 0; r < rounds; r++) {
            double t0 = now_s();
            for (int i = 0; i < requests; i++)
                request_journal(&j, player, area, i & 1);
            tj[r] = (now_s() - t0) / requests;
            t0 = now_s();
            for (int i = 0; i < ncopy; i++)
                request_copy(&player, &area, i & 1);
            tc[r] = (now_s() - t0) / ncopy;
        }
        qsort(tj, (size_t)rounds, sizeof *tj, cmp_double);
        qsort(tc, (size_t)rounds, sizeof *tc, cmp_double);
        double mj = tj[rounds / 2], mc = tc[rounds / 2];
        printf("%s{\"state_bytes\":%zu,\"journal_ns\":%.0f,\"copy_ns\":%.0f,\"copy_over_journal\":%.1f}",
               s ? "," : "", len, mj * 1e9, mc * 1e9, mc / mj);
        atoll__vj_fini(&j);
        free(tj);
        free(tc);
        atoll_unref(player);
        atoll_unref(area);
    }
    printf("]}\n");
    return 0;
}
