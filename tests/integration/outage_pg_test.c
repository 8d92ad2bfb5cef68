/* outage_pg_test.c -- a node on a real PostgreSQL (tests/support/pg.h) keeps playing
 * while the database is down for seconds, loses nothing, and recovers by itself.
 *
 * Clients level up in the quick game in a loop, each recording every level the server
 * acknowledged. The database is stopped for 3 s under that load, then started again on
 * the same data and port. In durable mode, a request made while it is down is answered
 * late (once its commit went through) or with {"code":500} after store.timeout_ms, and
 * never left unanswered; its change stays in memory and is committed when the database
 * is back. In fast mode, replies do not wait at all. Either way, after the outage the
 * clients play on without reconnecting, the node logs the failed commits, and a restart
 * of the node on the same database gives every player at least its last acknowledged
 * level.
 */
#include "game_client.h"
#include "leveler.h"
#include "pg.h"
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>

#define PLAYERS 4

static int64_t
level_of(test_node *n, const char *uid)
{
    atollc_sync *s = ENTER(n, uid);
    atoll_value *r = REQUEST_VALUE(s, "area.info", "{}");
    int64_t level = jint(r, "level");
    atoll_unref(r);
    atollc_sync_free(s);
    return level;
}

static void
outage(const char *durability)
{
    pg_server pg;
    char url[256];
    ASSERT(pg_start(&pg, url, sizeof url));
    const char *args[] = {"--game", "quick", "--store", url, "--durability", durability,
                          "--set", "store.timeout_ms=1500", "--set", "net.rate_limit=0", NULL};
    test_node n;
    node_start(&n, args);
    outage_player ps[PLAYERS];
    pthread_t t[PLAYERS];
    for (int i = 0; i < PLAYERS; i++) {
        memset(&ps[i], 0, sizeof ps[i]);
        snprintf(ps[i].uid, sizeof ps[i].uid, "%s-%d", durability, i);
        ps[i].s = ENTER(&n, ps[i].uid);
    }
    for (int i = 0; i < PLAYERS; i++)
        pthread_create(&t[i], NULL, outage_play, &ps[i]);
    usleep(800 * 1000);
    pg_down(&pg);
    usleep(3000 * 1000);
    ASSERT(pg_up(&pg));
    /* Back: the writer's pause doubles from 100 ms, so it tries again within ~2 s. */
    int before[PLAYERS];
    for (int i = 0; i < PLAYERS; i++)
        before[i] = atomic_load(&ps[i].answered);
    usleep(4000 * 1000);
    for (int i = 0; i < PLAYERS; i++)
        atomic_store(&ps[i].stop, true);
    for (int i = 0; i < PLAYERS; i++) {
        pthread_join(t[i], NULL);
        atollc_sync_free(ps[i].s);
    }
    for (int i = 0; i < PLAYERS; i++) {
        fprintf(stderr, "# %s %s: acked up to %lld, %d answered, %d refused, longest %.0f ms\n",
                durability, ps[i].uid, (long long)ps[i].last_acked, atomic_load(&ps[i].answered),
                atomic_load(&ps[i].refused), (double)ps[i].longest_us / 1000.0);
        ASSERT(atomic_load(&ps[i].answered) > before[i]); /* played on after the outage */
        if (strcmp(durability, "durable") == 0)
            ASSERT(atomic_load(&ps[i].refused) > 0 || ps[i].longest_us > 1000000); /* it waited, or 500 */
        else
            ASSERT_EQ(atomic_load(&ps[i].refused), 0); /* fast: replies never wait for the store */
    }
    ASSERT(node_log_contains(&n, "store commit failed"));
    /* In memory: nothing went back. */
    for (int i = 0; i < PLAYERS; i++)
        ASSERT(level_of(&n, ps[i].uid) >= ps[i].last_acked);
    node_stop(&n);
    /* In the store: a new node on the same database has it all. */
    node_start(&n, args);
    for (int i = 0; i < PLAYERS; i++) {
        int64_t stored = level_of(&n, ps[i].uid);
        if (stored < ps[i].last_acked)
            node_dump_log(&n);
        ASSERT(stored >= ps[i].last_acked);
    }
    node_stop(&n);
    pg_stop(&pg);
}

TEST(durable_outage_answers_every_request_and_loses_nothing)
{
    outage("durable");
}

TEST(fast_outage_keeps_replies_flowing_and_loses_nothing)
{
    outage("fast");
}

TEST_MAIN(durable_outage_answers_every_request_and_loses_nothing,
          fast_outage_keeps_replies_flowing_and_loses_nothing)
