/* plaingame.c -- a game that calls no function of atoll, so that any program can
 * dlopen it, not only one that exports the atoll API: games_test loads it by a
 * relative name from the working directory. */
#include <atoll/atoll.h>

static int
plain_go(atoll_req *req)
{
    (void)req;
    return ATOLL_OK;
}

static int
plain_entry(atoll_entry *e)
{
    (void)e;
    return ATOLL_OK;
}

static const atoll_handler plain_handlers[] = {{"go", plain_go, 0}, {NULL, NULL, 0}};
static const atoll_area_type plain_room = {.name = "room", .handlers = plain_handlers};

static const atoll_game plain_game = {
    .name = "plain",
    .area_types = (const atoll_area_type *const[]){&plain_room, NULL},
    .entry = plain_entry,
};

ATOLL_GAME_MODULE(plain_game)
