/* builtins.c -- the games built into the atoll binary: the echo, quick and chat
 * examples, through the same entry a game built as a shared object exports
 * (ATOLL_GAME_ENTRY). The framework library itself names no game. */
#include "../src/node/node.h"

int echo_game_abi(void);
const atoll_game *echo_game_module(void);
int quick_game_abi(void);
const atoll_game *quick_game_module(void);
int chat_game_abi(void);
const atoll_game *chat_game_module(void);

void atoll__cli_builtins(void);

void
atoll__cli_builtins(void)
{
    atoll__games_add_entry("echo", echo_game_module, echo_game_abi);
    atoll__games_add_entry("quick", quick_game_module, quick_game_abi);
    atoll__games_add_entry("chat", chat_game_module, chat_game_abi);
}
