/* leveler.c -- players leveling up in threads (leveler.h). */
#include "leveler.h"
#include "game_client.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *
level_loop(void *arg)
{
    leveler *l = arg;
    while (!atomic_load(&l->stop)) {
        char *resp = NULL;
        if (atollc_sync_request(l->s, "area.levelup", "{}", &resp, l->timeout_ms) != ATOLLC_OK) {
            snprintf(l->bad, sizeof l->bad, "no answer within %d ms after level %d",
                     l->timeout_ms, l->acked);
            break; /* the node is gone (or stopped answering) */
        }
        uint64_t now = gc_now_us();
        int level = -1;
        if (sscanf(resp, "{\"code\":200,\"level\":%d,", &level) != 1 || level != l->acked + 1) {
            snprintf(l->bad, sizeof l->bad, "%s after level %d", resp, l->acked);
            free(resp);
            break;
        }
        free(resp);
        if ((size_t)level >= l->cap) {
            l->cap = l->cap ? 2 * l->cap : 1024;
            l->acked_us = realloc(l->acked_us, l->cap * sizeof *l->acked_us);
        }
        l->acked_us[level] = now;
        l->acked = level;
        /* The money pushes queue up in the client: drop them as they come. */
        char *r = NULL, *b = NULL;
        while (atollc_sync_wait_push(l->s, &r, &b, 0) == ATOLLC_OK) {
            free(r);
            free(b);
        }
    }
    l->ended_us = gc_now_us();
    return NULL;
}

void
levelers_start(test_node *node, leveler *ls, int n, const char *prefix, int timeout_ms)
{
    for (int i = 0; i < n; i++) {
        memset(&ls[i], 0, sizeof ls[i]);
        snprintf(ls[i].uid, sizeof ls[i].uid, "%s%d", prefix, i);
        ls[i].timeout_ms = timeout_ms;
        ls[i].s = ENTER(node, ls[i].uid);
    }
    for (int i = 0; i < n; i++)
        ASSERT_EQ(pthread_create(&ls[i].thread, NULL, level_loop, &ls[i]), 0);
}

void
levelers_join(leveler *ls, int n, uint64_t stopped_us)
{
    for (int i = 0; i < n; i++) {
        atomic_store(&ls[i].stop, 1);
        pthread_join(ls[i].thread, NULL);
        atollc_sync_free(ls[i].s);
        ls[i].s = NULL;
    }
    for (int i = 0; i < n; i++) {
        if (ls[i].ended_us < stopped_us) {
            gc_fail_at(__FILE__, __LINE__, ls[i].uid,
                       ls[i].bad[0] ? ls[i].bad : "its connection failed",
                       "played until it was stopped");
        } else if (ls[i].bad[0] != '\0' && strncmp(ls[i].bad, "no answer", 9) != 0) {
            gc_fail_at(__FILE__, __LINE__, ls[i].uid, ls[i].bad, "the next level");
        }
    }
}

uint64_t
leveler_longest_gap(const leveler *l, uint64_t since_us)
{
    uint64_t longest = 0, prev = since_us;
    for (int level = 1; level <= l->acked; level++) {
        uint64_t t = l->acked_us[level];
        if (t < since_us)
            continue;
        if (t - prev > longest)
            longest = t - prev;
        prev = t;
    }
    return longest;
}

void
levelers_free(leveler *ls, int n)
{
    for (int i = 0; i < n; i++) {
        free(ls[i].acked_us);
        ls[i].acked_us = NULL;
    }
}

void *
outage_play(void *arg)
{
    outage_player *p = arg;
    while (!atomic_load(&p->stop)) {
        uint64_t t0 = gc_now_us();
        atoll_value *r = REQUEST_VALUE(p->s, "area.levelup", "{}");
        uint64_t waited = gc_now_us() - t0;
        if (waited > p->longest_us)
            p->longest_us = waited;
        int64_t code = jint(r, "code");
        if (code == 200) {
            int64_t level = jint(r, "level");
            ASSERT(level > p->last_acked);
            p->last_acked = level;
            atomic_fetch_add(&p->answered, 1);
        } else {
            ASSERT_EQ(code, 500);
            atomic_fetch_add(&p->refused, 1);
        }
        atoll_unref(r);
    }
    return NULL;
}
