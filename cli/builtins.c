/* builtins.c -- the games built into the atoll binary: echo (connection-level), and the
 * quick and chat examples through the same entry a game built as a shared object
 * exports (ATOLL_GAME_ENTRY). The framework library itself names no game. */
#include "../src/node/node.h"

extern const atoll__game atoll__game_echo;
int quick_game_abi(void);
const atoll_game *quick_game_module(void);
int chat_game_abi(void);
const atoll_game *chat_game_module(void);

void atoll__cli_builtins(void);

void
atoll__cli_builtins(void)
{
    atoll__games_add(&atoll__game_echo);
    atoll__games_add_entry("quick", quick_game_module, quick_game_abi);
    atoll__games_add_entry("chat", chat_game_module, chat_game_abi);
}
