/* watch.h -- the area runtime's side of the watchdog (watch.c, core/crash.h): every
 * call into game code is named while it runs, and measured.
 *
 * Each place that calls game code (a handler, a hook, a tick, a timer, a call's
 * callback, the game's entry hooks) wraps the call:
 *
 *     atoll__running run;
 *     atoll__game_begin(&run, a, "timer", NULL, NULL);
 *     t->fn(a, ATOLL_OK, t->udata);
 *     atoll__game_end(&run, a);
 *
 * so that a fatal signal or a stall report says what ran (core/crash.c), and a call
 * longer than area.slow_ms is logged and counted in the area's stats and the node's.
 * Both are inline: the hot path pays a few stores and two reads of the coarse clock.
 * The strings must live until the end: routes are the dictionary's, area ids and uids
 * those of an area and a player that outlive the call. Included at the end of area.h,
 * which it needs (struct atoll_area).
 */
#ifndef ATOLL_AREA_WATCH_H
#define ATOLL_AREA_WATCH_H

#include "../core/crash.h"

/* What ran past area.slow_ms (ns): a warn line and the counts. a may be NULL. */
void atoll__game_slow(const atoll__running *r, atoll_area *a, uint64_t ns);

/* in: "handler", "call", "on_create", "on_enter", "on_leave", "on_disconnect",
 * "on_resume", "on_destroy", "on_tick", "timer", "call_done" (a call's callback),
 * "entry", "guest", "init". a (may be NULL:
 * the entry hooks) and uid (NULL: no player) name where. */
static inline void
atoll__game_begin(atoll__running *r, const atoll_area *a, const char *in, const char *route,
                  const char *uid)
{
    atoll__running_begin(r, in, route, a != NULL ? a->id : NULL, uid);
}

/* The game code of r returned (a as given to begin, still alive). */
static inline void
atoll__game_end(atoll__running *r, atoll_area *a)
{
    uint64_t ns = atoll__running_end(r);
    if (ns > atoll__slow_ns)
        atoll__game_slow(r, a, ns);
}

#endif /* ATOLL_AREA_WATCH_H */
