/* main.c -- the atoll binary: a thin wrapper around atoll_main (cli/run.c), so that a
 * game can link libatoll and ship its own binary with the same command line. */
#include <atoll/atoll.h>

int
main(int argc, char **argv)
{
    return atoll_main(argc, argv);
}
