/* games.c -- the table of games built into the atoll binary, found by name. */
#include "node.h"

extern const atoll__game atoll__game_echo;

static const atoll__game *const builtin_games[] = {
    &atoll__game_echo,
};

const atoll__game *
atoll__game_find(const char *name)
{
    for (size_t i = 0; i < sizeof builtin_games / sizeof builtin_games[0]; i++)
        if (strcmp(builtin_games[i]->name, name) == 0)
            return builtin_games[i];
    return NULL;
}
