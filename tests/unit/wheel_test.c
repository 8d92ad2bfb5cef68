/* wheel_test.c -- the timing wheel: slot order, lateness bound, the horizon, removal,
 * and entries added while a slot fires. */
#include "core/wheel.h"
#include "test.h"

typedef struct {
    atoll__wheel_entry e;
    int id;
    uint64_t fired_at;
} item;

static int order[64];
static int nfired;

static void
record(atoll__wheel_entry *e, uint64_t now, void *arg)
{
    item *it = (item *)e;
    it->fired_at = now;
    order[nfired++] = it->id;
}

TEST(fires_in_deadline_order_within_a_tick)
{
    atoll__wheel w;
    atoll__wheel_init(&w, 64, 10, 1000);
    item it[5];
    uint64_t due[5] = {1500, 1010, 1255, 1001, 1300};
    for (int i = 0; i < 5; i++) {
        it[i] = (item){.id = i};
        atoll__wheel_add(&w, &it[i].e, due[i]);
    }
    ASSERT_EQ(w.count, 5);
    nfired = 0;
    atoll__wheel_advance(&w, 2000, record, NULL);
    ASSERT_EQ(nfired, 5);
    int want[5] = {1, 3, 2, 4, 0}; /* 1001 and 1010 share the first slot, in add order */
    for (int i = 0; i < 5; i++) {
        ASSERT_EQ(order[i], want[i]);
        ASSERT(it[order[i]].fired_at >= due[order[i]]);
        ASSERT(it[order[i]].fired_at < due[order[i]] + 10);
    }
    ASSERT_EQ(w.count, 0);
    atoll__wheel_fini(&w);
}

TEST(nothing_fires_before_its_slot)
{
    atoll__wheel w;
    atoll__wheel_init(&w, 16, 100, 0);
    item a = {.id = 7};
    atoll__wheel_add(&w, &a.e, 450);
    nfired = 0;
    atoll__wheel_advance(&w, 499, record, NULL);
    ASSERT_EQ(nfired, 0);
    atoll__wheel_advance(&w, 500, record, NULL);
    ASSERT_EQ(nfired, 1);
    ASSERT_EQ(a.fired_at, 500);
    atoll__wheel_fini(&w);
}

TEST(past_the_horizon_fires_early_at_the_last_slot)
{
    atoll__wheel w;
    atoll__wheel_init(&w, 8, 100, 0);
    item a = {.id = 1};
    atoll__wheel_add(&w, &a.e, 5000);
    ASSERT_EQ(a.e.slot_ms, 700);
    nfired = 0;
    atoll__wheel_advance(&w, 700, record, NULL);
    ASSERT_EQ(nfired, 1); /* early: the owner checks its deadline and adds it again */
    atoll__wheel_fini(&w);
}

TEST(removed_entries_never_fire)
{
    atoll__wheel w;
    atoll__wheel_init(&w, 8, 10, 0);
    item a = {.id = 1}, b = {.id = 2};
    atoll__wheel_add(&w, &a.e, 30);
    atoll__wheel_add(&w, &b.e, 30);
    atoll__wheel_remove(&w, &a.e);
    atoll__wheel_remove(&w, &a.e); /* twice is harmless */
    ASSERT(!atoll__wheel_linked(&a.e));
    nfired = 0;
    atoll__wheel_advance(&w, 100, record, NULL);
    ASSERT_EQ(nfired, 1);
    ASSERT_EQ(order[0], 2);
    atoll__wheel_fini(&w);
}

static atoll__wheel *readd_wheel;

static void
readd_once(atoll__wheel_entry *e, uint64_t now, void *arg)
{
    item *it = (item *)e;
    order[nfired++] = it->id;
    if (it->id == 1) {
        it->id = 2;
        atoll__wheel_add(readd_wheel, e, now); /* "now" lands one tick ahead */
    }
}

TEST(entry_added_while_firing_goes_to_a_later_slot)
{
    atoll__wheel w;
    atoll__wheel_init(&w, 8, 10, 0);
    readd_wheel = &w;
    item a = {.id = 1};
    atoll__wheel_add(&w, &a.e, 10);
    nfired = 0;
    atoll__wheel_advance(&w, 10, readd_once, NULL);
    ASSERT_EQ(nfired, 1);
    ASSERT(atoll__wheel_linked(&a.e));
    ASSERT_EQ(a.e.slot_ms, 20);
    atoll__wheel_advance(&w, 20, readd_once, NULL);
    ASSERT_EQ(nfired, 2);
    ASSERT_EQ(order[1], 2);
    atoll__wheel_fini(&w);
}

TEST_MAIN(fires_in_deadline_order_within_a_tick, nothing_fires_before_its_slot,
          past_the_horizon_fires_early_at_the_last_slot, removed_entries_never_fire,
          entry_added_while_firing_goes_to_a_later_slot)
