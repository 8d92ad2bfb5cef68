/* log.c -- structured (logfmt) log lines to stderr, one write(2) per line.
 *
 * A line is formatted in a stack buffer and written with a single write, so lines from
 * different threads never interleave. The level check happens in the ATOLL_LOG macro,
 * before any argument is evaluated.
 */
#include "core.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

int atoll__log_threshold = ATOLL_LOG_INFO;

static _Thread_local char thread_name[16] = "main";

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void
atoll__log_set_thread(const char *name)
{
    snprintf(thread_name, sizeof thread_name, "%s", name);
}

const char *
atoll__log_thread(void)
{
    return thread_name;
}

int
atoll__log_parse_level(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

void
atoll__log_write(int level, const char *fmt, ...)
{
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    if (level < 0 || level > 3)
        level = ATOLL_LOG_ERROR;
    int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s t=%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, level_names[level], thread_name);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    (void)!write(2, line, len);
}

static _Thread_local uint64_t budget_second;
static _Thread_local unsigned budget_used, budget_dropped;

bool
atoll__log_budget(void)
{
    uint64_t second = atoll__now_ns() / 1000000000u;
    if (second != budget_second) {
        unsigned dropped = budget_dropped;
        budget_second = second;
        budget_used = 0;
        budget_dropped = 0;
        if (dropped > 0)
            atoll__log_write(ATOLL_LOG_WARN, "msg=\"log lines suppressed\" count=%u", dropped);
    }
    if (budget_used < ATOLL_LOG_CLIENT_PER_S) {
        budget_used++;
        return true;
    }
    budget_dropped++;
    return false;
}

uint64_t
atoll__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t
atoll__cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- for game code (atoll.h) ---- */

void
atoll_log(atoll_log_level level, const char *fmt, ...)
{
    if ((int)level > atoll__log_threshold)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Quotes and newlines would break the logfmt line. */
    for (char *p = msg; *p; p++)
        if (*p == '"' || *p == '\n' || *p == '\r')
            *p = '\'';
    atoll__log_write((int)level, "msg=\"%s\" src=game", msg);
}

uint64_t
atoll_now_ms(void)
{
    return atoll__now_ns() / 1000000;
}
