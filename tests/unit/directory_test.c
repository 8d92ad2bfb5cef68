/* directory_test.c -- the in-process directory through its operations table: answers
 * come as mail (never returned), place is create-if-absent, compare-and-set honours the
 * epoch, epochs only grow (across an id removed and placed again), invalidations go to
 * every subscriber after the write, players are bound and found, cookie 0 gets no
 * answer. */
#include "node/directory.h"
#include "test.h"

#include <stdio.h>

/* The mail the directory posted, in order, with where it went. */
static atoll__mail *posted[64];
static atoll__addr posted_to[64];
static int nposted;

static void
capture(void *ctx, atoll__addr to, atoll__mail *m)
{
    (void)ctx;
    if (nposted < 64) {
        posted_to[nposted] = to;
        posted[nposted++] = m;
    } else {
        atoll__mail_free(m);
    }
}

static void
clear(void)
{
    for (int i = 0; i < nposted; i++)
        atoll__mail_free(posted[i]);
    nposted = 0;
}

static const atoll__addr ME = {1, 2};

static atoll__dir_entry
entry(uint64_t num, int worker)
{
    atoll__dir_entry e = {num, {1, (uint16_t)worker}, 0, 1};
    return e;
}

/* The single answer posted since the last clear. */
static const atoll__mail *
only_answer(void)
{
    ASSERT_EQ(nposted, 1);
    ASSERT_EQ(posted[0]->type, ATOLL_MAIL_DIR_ANSWER);
    ASSERT_EQ(posted_to[0].node, ME.node);
    ASSERT_EQ(posted_to[0].worker, ME.worker);
    return posted[0];
}

TEST(resolve_answers_through_mail)
{
    atoll__dir *d = atoll__dir_local_new(capture, NULL);
    d->ops->resolve(d, "room", ME, 7);
    const atoll__mail *m = only_answer();
    ASSERT_EQ(m->status, ATOLL_ENOENT);
    ASSERT_EQ(m->call_id, 7);
    ASSERT_STR(m->from, "room");
    clear();

    atoll__dir_entry e = entry(100, 3);
    d->ops->place(d, "room", &e, ME, 8);
    m = only_answer();
    ASSERT_EQ(m->status, ATOLL_OK);
    ASSERT_EQ(m->call_id, 8);
    ASSERT(m->epoch > 0);
    uint64_t epoch = m->epoch;
    clear();

    d->ops->resolve(d, "room", ME, 9);
    m = only_answer();
    ASSERT_EQ(m->status, ATOLL_OK);
    atoll__dir_entry got = atoll__dir_answer_entry(m);
    ASSERT_EQ(got.num, 100);
    ASSERT_EQ(got.owner.worker, 3);
    ASSERT_EQ(got.owner.node, 1);
    ASSERT_EQ(got.epoch, epoch);
    ASSERT_EQ(got.type_index, 1);
    clear();

    /* Cookie 0: nothing is posted. */
    d->ops->resolve(d, "room", ME, 0);
    ASSERT_EQ(nposted, 0);
    d->ops->free(d);
}

TEST(place_is_create_if_absent)
{
    atoll__dir *d = atoll__dir_local_new(capture, NULL);
    atoll__dir_entry a = entry(1, 0), b = entry(2, 1);
    d->ops->place(d, "x", &a, ME, 1);
    clear();
    d->ops->place(d, "x", &b, ME, 1);
    const atoll__mail *m = only_answer();
    ASSERT_EQ(m->status, ATOLL_EEXIST);
    ASSERT_EQ(m->area, 1); /* the first one stays */
    ASSERT_EQ(m->at.worker, 0);
    clear();
    d->ops->free(d);
}

TEST(cas_owner_checks_the_epoch_and_publishes_after)
{
    atoll__dir *d = atoll__dir_local_new(capture, NULL);
    atoll__addr sub1 = {1, 0}, sub2 = {1, 1};
    d->ops->subscribe(d, sub1);
    d->ops->subscribe(d, sub2);
    atoll__dir_entry a = entry(1, 0), moved = entry(1, 1);
    d->ops->place(d, "x", &a, ME, 1);
    uint64_t e1 = only_answer()->epoch;
    clear();

    /* A stale epoch loses and changes nothing; nobody is told anything. */
    d->ops->cas_owner(d, "x", e1 + 5, &moved, ME, 2);
    const atoll__mail *m = only_answer();
    ASSERT_EQ(m->status, ATOLL_ESTATE);
    ASSERT_EQ(m->epoch, e1);
    ASSERT_EQ(m->at.worker, 0);
    clear();

    /* The right epoch wins: a new epoch, then both subscribers hear of the old one. */
    d->ops->cas_owner(d, "x", e1, &moved, ME, 3);
    ASSERT_EQ(nposted, 3);
    ASSERT_EQ(posted[0]->type, ATOLL_MAIL_DIR_ANSWER);
    ASSERT_EQ(posted[0]->status, ATOLL_OK);
    uint64_t e2 = posted[0]->epoch;
    ASSERT(e2 > e1);
    ASSERT_EQ(posted[0]->at.worker, 1);
    for (int i = 1; i < 3; i++) {
        ASSERT_EQ(posted[i]->type, ATOLL_MAIL_DIR_INVALIDATE);
        ASSERT_STR(posted[i]->from, "x");
        ASSERT_EQ(posted[i]->epoch, e1);
    }
    ASSERT_EQ(posted_to[1].worker, 0);
    ASSERT_EQ(posted_to[2].worker, 1);
    clear();

    /* Removal is a compare-and-set to nothing; placed again, the id's epoch still
     * grows, so a cache can tell the new entry from the old one. */
    d->ops->cas_owner(d, "x", e2, NULL, ME, 0);
    ASSERT_EQ(nposted, 2); /* the two invalidations, no answer */
    ASSERT_EQ(posted[0]->epoch, e2);
    clear();
    d->ops->resolve(d, "x", ME, 1);
    ASSERT_EQ(only_answer()->status, ATOLL_ENOENT);
    clear();
    d->ops->place(d, "x", &a, ME, 1);
    ASSERT(only_answer()->epoch > e2);
    clear();

    /* Of an id that is not there. */
    d->ops->cas_owner(d, "nope", 1, NULL, ME, 4);
    ASSERT_EQ(only_answer()->status, ATOLL_ENOENT);
    clear();
    /* invalidate publishes by itself too. */
    d->ops->invalidate(d, "y", 42);
    ASSERT_EQ(nposted, 2);
    ASSERT_EQ(posted[1]->epoch, 42);
    clear();
    d->ops->free(d);
}

TEST(players_are_bound_and_found)
{
    atoll__dir *d = atoll__dir_local_new(capture, NULL);
    d->ops->bind_player(d, "alice", "room");
    ASSERT_EQ(nposted, 0);
    d->ops->find_player(d, "alice", ME, 5);
    const atoll__mail *m = only_answer();
    ASSERT_EQ(m->status, ATOLL_OK);
    ASSERT_STR(m->from, "room");
    clear();
    d->ops->bind_player(d, "alice", "hall");
    d->ops->find_player(d, "alice", ME, 5);
    ASSERT_STR(only_answer()->from, "hall");
    clear();
    d->ops->bind_player(d, "alice", NULL);
    d->ops->find_player(d, "alice", ME, 5);
    ASSERT_EQ(only_answer()->status, ATOLL_ENOENT);
    clear();
    d->ops->bind_player(d, "bob", "room"); /* freed with the directory */
    d->ops->free(d);
}

TEST(many_ids_stay_apart)
{
    /* Enough ids to grow the table several times, each found with its own entry. */
    atoll__dir *d = atoll__dir_local_new(capture, NULL);
    char id[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "area-%d", i);
        atoll__dir_entry e = entry((uint64_t)i + 1, i % 4);
        d->ops->place(d, id, &e, ME, 0);
    }
    for (int i = 0; i < 1000; i += 37) {
        snprintf(id, sizeof id, "area-%d", i);
        d->ops->resolve(d, id, ME, 1);
        const atoll__mail *m = only_answer();
        ASSERT_EQ(m->area, (uint64_t)i + 1);
        ASSERT_EQ(m->at.worker, i % 4);
        clear();
    }
    d->ops->free(d);
}

TEST_MAIN(resolve_answers_through_mail, place_is_create_if_absent,
          cas_owner_checks_the_epoch_and_publishes_after, players_are_bound_and_found,
          many_ids_stay_apart)
