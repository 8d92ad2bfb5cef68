/* games_test.c -- what a game's definition must pass before a node starts with it
 * (atoll__game_check): area types with good names and tick rates, handlers with names
 * and functions, and an entry hook; each mistake is a start-up error that says what. */
#include "node/node.h"
#include "test.h"

#include <string.h>

static int ok_handler(atoll_req *req) { (void)req; return ATOLL_OK; }
static int ok_entry(atoll_entry *e) { (void)e; return ATOLL_OK; }

static const atoll_handler handlers[] = {{"go", ok_handler, 0}, {NULL, NULL, 0}};
static const atoll_area_type room = {.name = "room", .handlers = handlers};
static const atoll_area_type *const one_type[] = {&room, NULL};

/* Checks g; returns the error text ("" when it passes). */
static const char *
check(const atoll_game *g, int want_rc)
{
    static char err[256];
    err[0] = '\0';
    int ntypes = -1;
    int rc = atoll__game_check(g, &ntypes, err, sizeof err);
    ASSERT_EQ(rc, want_rc);
    if (rc == ATOLL_OK)
        ASSERT_EQ(ntypes, 1);
    return err;
}

TEST(a_good_game_passes)
{
    atoll_game g = {.name = "good", .area_types = one_type, .entry = ok_entry};
    ASSERT_STR(check(&g, ATOLL_OK), "");
}

TEST(a_game_without_entry_hook_is_refused_at_start)
{
    atoll_game g = {.name = "noentry", .area_types = one_type};
    const char *err = check(&g, ATOLL_EINVAL);
    ASSERT(strstr(err, "has no entry hook") != NULL);
    /* A guest hook alone does not make up for it: logging in must work too. */
    g.guest = ok_entry;
    check(&g, ATOLL_EINVAL);
}

TEST(bad_types_and_handlers_are_refused)
{
    atoll_game g = {.name = "bad", .entry = ok_entry};
    ASSERT(strstr(check(&g, ATOLL_EINVAL), "no area types") != NULL);

    atoll_area_type gate = {.name = "gate", .handlers = handlers};
    const atoll_area_type *const gate_types[] = {&gate, NULL};
    g.area_types = gate_types;
    ASSERT(strstr(check(&g, ATOLL_EINVAL), "not gate") != NULL);

    atoll_area_type dotted = {.name = "a.b", .handlers = handlers};
    const atoll_area_type *const dotted_types[] = {&dotted, NULL};
    g.area_types = dotted_types;
    check(&g, ATOLL_EINVAL);

    const atoll_area_type *const twice[] = {&room, &room, NULL};
    g.area_types = twice;
    ASSERT(strstr(check(&g, ATOLL_EINVAL), "two area types") != NULL);

    atoll_area_type queued = {.name = "q", .handlers = handlers, .queue_commands = 1};
    const atoll_area_type *const queued_types[] = {&queued, NULL};
    g.area_types = queued_types;
    ASSERT(strstr(check(&g, ATOLL_EINVAL), "tick_hz") != NULL);

    const atoll_handler nofn[] = {{"go", NULL, 0}, {NULL, NULL, 0}};
    atoll_area_type broken = {.name = "r", .handlers = nofn};
    const atoll_area_type *const broken_types[] = {&broken, NULL};
    g.area_types = broken_types;
    ASSERT(strstr(check(&g, ATOLL_EINVAL), "needs a name") != NULL);
}

TEST_MAIN(a_good_game_passes, a_game_without_entry_hook_is_refused_at_start,
          bad_types_and_handlers_are_refused)
