/* oldabi.c -- a game module that claims another ABI version: area_test checks that a
 * node refuses to load it, with a line saying why, instead of running it. */
#include <atoll/atoll.h>

static const atoll_game old_game = {.name = "oldabi"};

int
atoll_game_abi(void)
{
    return ATOLL_ABI_VERSION + 1;
}

const atoll_game *
atoll_game_module(void)
{
    return &old_game;
}
