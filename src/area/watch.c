/* watch.c -- game code that ran longer than area.slow_ms (watch.h): one warn line
 * naming it, and a count in its area's stats and the worker's (summed for the node).
 *
 * A game whose every tick is slow would write twenty lines a second per area; the
 * lines (not the counts) are limited to SLOW_LINES_PER_S per worker, and the next line
 * in a later second says how many were left out (suppressed=N).
 */
#include "area.h"

#include <stdio.h>

#define SLOW_LINES_PER_S 10

static _Thread_local uint64_t line_second;
static _Thread_local unsigned lines_used, lines_dropped;

/* " key=\"value\"" into out; a client's uid may hold quotes or newlines, which would
 * break the logfmt line: they become ' (as in atoll_log and the crash reports). */
static void
put_quoted(char *out, size_t cap, const char *key, const char *value)
{
    int n = snprintf(out, cap, " %s=\"%s\"", key, value);
    size_t end = n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
    for (size_t i = strlen(key) + 3; i + 1 < end; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c < 0x20 || c == '"' || c == '\\' || c == 0x7f)
            out[i] = '\'';
    }
    if (end > 0)
        out[end - 1] = '"';
}

void
atoll__game_slow(const atoll__running *r, atoll_area *a, uint64_t ns)
{
    if (a != NULL)
        a->slow++;
    atoll__worker *w = atoll__current_worker();
    if (w != NULL)
        w->stats.slow++;
    if (ATOLL_LOG_WARN > atoll__log_threshold)
        return;
    uint64_t second = atoll__coarse_ns() / 1000000000u;
    if (second != line_second) {
        line_second = second;
        lines_used = 0;
    }
    if (lines_used >= SLOW_LINES_PER_S) {
        lines_dropped++;
        return;
    }
    lines_used++;
    char route[ATOLL_ROUTE_MAX + 16] = "", area[ATOLL_AREA_ID_MAX + 16] = "";
    char uid[ATOLL_UID_MAX + 16] = "", dropped[32] = "";
    if (r->route != NULL)
        snprintf(route, sizeof route, " route=%s", r->route);
    if (r->area != NULL)
        put_quoted(area, sizeof area, "area", r->area);
    if (r->uid != NULL)
        put_quoted(uid, sizeof uid, "uid", r->uid);
    if (lines_dropped > 0)
        snprintf(dropped, sizeof dropped, " suppressed=%u", lines_dropped);
    lines_dropped = 0;
    atoll__log_write(ATOLL_LOG_WARN, "msg=\"slow game code\" in=%s%s%s%s ms=%llu slow_ms=%llu%s",
                     r->in, route, area, uid, (unsigned long long)(ns / 1000000),
                     (unsigned long long)(atoll__slow_ns / 1000000), dropped);
}
