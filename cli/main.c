/* main.c -- the atoll binary: its built-in games (builtins.c), then atoll_main
 * (src/app/run.c, in the library), so that a game can link libatoll and ship its own
 * binary with the same command line. */
#include <atoll/atoll.h>

void atoll__cli_builtins(void);

int
main(int argc, char **argv)
{
    atoll__cli_builtins();
    return atoll_main(argc, argv);
}
