/* main.c -- mygame as a program of its own: it links the atoll library and hands the
 * game to atoll_run, which is the whole `atoll run` command line serving this game
 * (`./mygame-server run --listen 127.0.0.1:3010`). */
#include <atoll/atoll.h>

extern const atoll_game mygame; /* mygame.c */

int
main(int argc, char **argv)
{
    return atoll_run(&mygame, argc, argv);
}
