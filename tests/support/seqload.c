/* seqload.c -- players of the quick game on one libuv thread, checking the order of
 * everything they get (seqload.h).
 */
#define _GNU_SOURCE /* memmem */
#include "seqload.h"

#include <atollc/atollc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define WINDOW_MAX 64

typedef enum { C_CONNECTING, C_ENTERING, C_INFO, C_RUNNING, C_DONE } cstate;

typedef struct client {
    struct seqload *s;
    int index;
    char uid[32];
    atollc_client *c;
    cstate state;
    int64_t next_level;      /* the level the next answer must have */
    int64_t sent_level;      /* the level the last request sent will reach */
    int64_t money_level;     /* the level of the last money push */
    uint64_t sent_ns[WINDOW_MAX];
    int sent_head, sent_len;
    int32_t *seen;           /* per other player: the last level pushed (-1: none yet) */
    _Atomic uint64_t max_us; /* its longest answer since seqload_take_player_max */
    bool closed;
} client;

struct seqload {
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t timer;
    pthread_t thread;
    char host[64];
    int port;
    int n, window;
    char prefix[16];
    client *clients;
    atomic_bool stopping;
    atomic_bool stopped;
    atomic_bool push_gaps_ok;
    atomic_int entered;
    atomic_int failed;
    pthread_mutex_t lock;    /* result (counts, bad, histogram) */
    seqload_result r;
    uint64_t answers_total;
    _Atomic uint64_t stop_deadline_ns; /* set before `stopping` */
};

static void
set_bad(struct seqload *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
set_bad(struct seqload *s, const char *fmt, ...)
{
    pthread_mutex_lock(&s->lock);
    if (s->r.bad[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->r.bad, sizeof s->r.bad, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&s->lock);
}

static int64_t
json_int(const char *body, size_t len, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = memmem(body, len, pat, strlen(pat));
    if (p == NULL)
        return -1;
    return strtoll(p + strlen(pat), NULL, 10);
}

static void send_more(client *k);

static void
on_levelup(atollc_client *c, int status, const char *body, size_t len, void *ud)
{
    (void)c;
    client *k = ud;
    struct seqload *s = k->s;
    if (status != ATOLLC_OK)
        return; /* the close callback says why */
    uint64_t now = uv_hrtime();
    uint64_t us = k->sent_len > 0 ? (now - k->sent_ns[k->sent_head]) / 1000u : 0;
    if (k->sent_len > 0) {
        k->sent_head = (k->sent_head + 1) % WINDOW_MAX;
        k->sent_len--;
    }
    if (us > atomic_load_explicit(&k->max_us, memory_order_relaxed))
        atomic_store_explicit(&k->max_us, us, memory_order_relaxed);
    int64_t level = json_int(body, len, "level");
    if (level != k->next_level)
        set_bad(s, "%s: answer %.*s where level %lld was next", k->uid, (int)(len < 120 ? len : 120),
                body, (long long)k->next_level);
    else if (k->money_level < level && atomic_load(&s->push_gaps_ok)) {
        pthread_mutex_lock(&s->lock);
        s->r.push_gaps++;
        pthread_mutex_unlock(&s->lock);
        k->money_level = level; /* the next push is the next level's */
    } else if (k->money_level < level)
        set_bad(s, "%s: the answer of level %lld came before its money push (last %lld)",
                k->uid, (long long)level, (long long)k->money_level);
    k->next_level = level + 1;
    pthread_mutex_lock(&s->lock);
    s->r.answers++;
    s->answers_total++;
    s->r.hist[us / 100 < 10000 ? us / 100 : 10000]++;
    if (us > s->r.max_us)
        s->r.max_us = us;
    pthread_mutex_unlock(&s->lock);
    send_more(k);
}

static void
send_more(client *k)
{
    struct seqload *s = k->s;
    if (k->state != C_RUNNING || k->closed)
        return;
    if (atomic_load(&s->stopping)) {
        if (k->sent_len == 0) {
            k->state = C_DONE;
            atollc_close(k->c);
        }
        return;
    }
    while (k->sent_len < s->window) {
        if (atollc_request(k->c, "area.levelup", "{}", 2, on_levelup, k) != ATOLLC_OK)
            return;
        k->sent_ns[(k->sent_head + k->sent_len) % WINDOW_MAX] = uv_hrtime();
        k->sent_len++;
        k->sent_level++;
    }
}

static void
on_push(atollc_client *c, const char *route, const char *body, size_t len, void *ud)
{
    (void)c;
    client *k = ud;
    struct seqload *s = k->s;
    if (strcmp(route, "money") == 0) {
        int64_t money = json_int(body, len, "money");
        if (money != (k->money_level + 1) * 10)
            set_bad(s, "%s: money push %lld after level %lld's", k->uid, (long long)money,
                    (long long)k->money_level);
        k->money_level = money / 10;
        pthread_mutex_lock(&s->lock);
        s->r.money_pushes++;
        pthread_mutex_unlock(&s->lock);
    } else if (strcmp(route, "levelup") == 0) {
        const char *p = memmem(body, len, "\"playerId\":\"", 12);
        int64_t level = json_int(body, len, "level");
        size_t plen = strlen(s->prefix);
        if (p == NULL || level < 0 || strncmp(p + 12, s->prefix, plen) != 0)
            return; /* not one of ours */
        int other = atoi(p + 12 + plen);
        if (other < 0 || other >= s->n || other == k->index)
            return;
        if (k->seen[other] >= 0 && level > k->seen[other] + 1 && atomic_load(&s->push_gaps_ok)) {
            pthread_mutex_lock(&s->lock);
            s->r.area_push_gaps++;
            pthread_mutex_unlock(&s->lock);
        } else if (k->seen[other] >= 0 && level != k->seen[other] + 1) {
            set_bad(s, "%s: levelup push of %s%d level %lld after level %d", k->uid, s->prefix,
                    other, (long long)level, k->seen[other]);
        }
        k->seen[other] = (int32_t)level;
        pthread_mutex_lock(&s->lock);
        s->r.area_pushes++;
        pthread_mutex_unlock(&s->lock);
    }
}

static void
on_kick(atollc_client *c, const char *body, size_t len, void *ud)
{
    (void)c;
    client *k = ud;
    set_bad(k->s, "%s kicked: %.*s", k->uid, (int)(len < 100 ? len : 100), body);
}

static void
on_close(atollc_client *c, int status, void *ud)
{
    (void)c;
    client *k = ud;
    k->closed = true;
    if (k->state != C_DONE) {
        set_bad(k->s, "%s: connection closed (%d) while playing", k->uid, status);
        pthread_mutex_lock(&k->s->lock);
        k->s->r.closed++;
        pthread_mutex_unlock(&k->s->lock);
        if (k->state != C_RUNNING)
            atomic_fetch_add(&k->s->failed, 1);
    }
}

static void
on_info(atollc_client *c, int status, const char *body, size_t len, void *ud)
{
    (void)c;
    client *k = ud;
    if (status != ATOLLC_OK || json_int(body, len, "code") != 200) {
        atomic_fetch_add(&k->s->failed, 1);
        return;
    }
    int64_t level = json_int(body, len, "level");
    k->next_level = level + 1;
    k->sent_level = level;
    k->money_level = level;
    k->state = C_RUNNING;
    atomic_fetch_add(&k->s->entered, 1);
    send_more(k);
}

static void
on_entry(atollc_client *c, int status, const char *body, size_t len, void *ud)
{
    client *k = ud;
    if (status != ATOLLC_OK || json_int(body, len, "code") != 200) {
        atomic_fetch_add(&k->s->failed, 1);
        return;
    }
    k->state = C_INFO;
    atollc_request(c, "area.info", "{}", 2, on_info, k);
}

static void
on_connect(atollc_client *c, int status, void *ud)
{
    client *k = ud;
    if (status != ATOLLC_OK)
        return; /* the close callback counts it */
    char body[96];
    int n = snprintf(body, sizeof body, "{\"uid\":\"%s\"}", k->uid);
    k->state = C_ENTERING;
    atollc_request(c, "gate.entry", body, (size_t)n, on_entry, k);
}

static void
on_wake(uv_async_t *a)
{
    struct seqload *s = a->data;
    if (!atomic_load(&s->stopping))
        return;
    for (int i = 0; i < s->n; i++)
        send_more(&s->clients[i]);
}

static void
on_timer(uv_timer_t *t)
{
    struct seqload *s = t->data;
    if (!atomic_load(&s->stopping))
        return;
    bool all = true;
    for (int i = 0; i < s->n; i++) {
        client *k = &s->clients[i];
        if (k->closed)
            continue;
        all = false;
        if (k->state != C_RUNNING && k->state != C_DONE) {
            k->state = C_DONE;
            atollc_close(k->c);
        } else if (uv_hrtime() > atomic_load(&s->stop_deadline_ns) && k->state != C_DONE) {
            set_bad(s, "%s: %d answers still missing 10 s after the stop", k->uid, k->sent_len);
            k->state = C_DONE;
            atollc_close(k->c);
        }
    }
    if (all) {
        uv_close((uv_handle_t *)&s->wake, NULL);
        uv_close((uv_handle_t *)&s->timer, NULL);
    }
}

static void *
run(void *arg)
{
    struct seqload *s = arg;
    uv_run(&s->loop, UV_RUN_DEFAULT);
    return NULL;
}

seqload *
seqload_start(const char *host, int port, int n, int window, const char *prefix)
{
    struct seqload *s = calloc(1, sizeof *s);
    snprintf(s->host, sizeof s->host, "%s", host);
    snprintf(s->prefix, sizeof s->prefix, "%s", prefix);
    s->port = port;
    s->n = n;
    s->window = window < 1 ? 1 : window > WINDOW_MAX ? WINDOW_MAX : window;
    pthread_mutex_init(&s->lock, NULL);
    uv_loop_init(&s->loop);
    uv_async_init(&s->loop, &s->wake, on_wake);
    s->wake.data = s;
    uv_timer_init(&s->loop, &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, on_timer, 50, 50);
    s->clients = calloc((size_t)n, sizeof *s->clients);
    atollc_opts o;
    atollc_opts_init(&o);
    o.host = s->host;
    o.port = port;
    o.timeout_ms = 10000;
    for (int i = 0; i < n; i++) {
        client *k = &s->clients[i];
        k->s = s;
        k->index = i;
        snprintf(k->uid, sizeof k->uid, "%s%d", prefix, i);
        k->seen = malloc((size_t)n * sizeof *k->seen);
        memset(k->seen, 0xff, (size_t)n * sizeof *k->seen); /* -1 */
        atollc_client_new(&s->loop, &o, &k->c);
        atollc_on_push(k->c, on_push, k);
        atollc_on_kick(k->c, on_kick, k);
        atollc_on_close(k->c, on_close, k);
        atollc_connect(k->c, on_connect, k);
    }
    pthread_create(&s->thread, NULL, run, s);
    for (int waited = 0; waited < 10000; waited += 20) {
        if (atomic_load(&s->entered) + atomic_load(&s->failed) >= n)
            break;
        usleep(20000);
    }
    if (atomic_load(&s->entered) < n) {
        fprintf(stderr, "seqload: %d of %d players entered\n", atomic_load(&s->entered), n);
        seqload_result r;
        seqload_stop(s, &r);
        return NULL;
    }
    return s;
}

void
seqload_allow_push_gaps(seqload *s)
{
    atomic_store(&s->push_gaps_ok, true);
}

void
seqload_take_player_max(seqload *s, uint64_t *out)
{
    for (int i = 0; i < s->n; i++)
        out[i] = atomic_exchange_explicit(&s->clients[i].max_us, 0, memory_order_relaxed);
}

uint64_t
seqload_answers(seqload *s)
{
    pthread_mutex_lock(&s->lock);
    uint64_t n = s->answers_total;
    pthread_mutex_unlock(&s->lock);
    return n;
}

void
seqload_take_hist(seqload *s, uint64_t hist[10001], uint64_t *max_us)
{
    pthread_mutex_lock(&s->lock);
    memcpy(hist, s->r.hist, sizeof s->r.hist);
    *max_us = s->r.max_us;
    memset(s->r.hist, 0, sizeof s->r.hist);
    s->r.max_us = 0;
    pthread_mutex_unlock(&s->lock);
}

void
seqload_stop(seqload *s, seqload_result *r)
{
    /* The deadline first: the loop's timer may see `stopping` before its wake-up runs
     * (libuv runs timers first), and must not take every request in flight for lost. */
    atomic_store(&s->stop_deadline_ns, uv_hrtime() + 10000000000ull);
    atomic_store(&s->stopping, true);
    uv_async_send(&s->wake);
    pthread_join(s->thread, NULL);
    for (int i = 0; i < s->n; i++) {
        atollc_client_free(s->clients[i].c);
        free(s->clients[i].seen);
    }
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);
    free(s->clients);
    *r = s->r;
    pthread_mutex_destroy(&s->lock);
    free(s);
}

uint64_t
seqload_quantile(const uint64_t hist[10001], double q)
{
    uint64_t total = 0;
    for (int i = 0; i <= 10000; i++)
        total += hist[i];
    if (total == 0)
        return 0;
    uint64_t want = (uint64_t)(q * (double)total), acc = 0;
    for (int i = 0; i <= 10000; i++) {
        acc += hist[i];
        if (acc > want || (acc == total))
            return (uint64_t)i * 100 + 100;
    }
    return 1000000;
}
