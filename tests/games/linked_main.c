/* linked_main.c -- the test game linked into a program of its own instead of loaded as a
 * shared object: main() hands the game to atoll_run, which is the whole `atoll` command
 * line serving it (`atoll-linked-test run --listen ...`). area_test checks it serves. */
#include "testgame.c"

int
main(int argc, char **argv)
{
    return atoll_run(&testgame, argc, argv);
}
