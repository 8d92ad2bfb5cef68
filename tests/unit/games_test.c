/* games_test.c -- what a game's definition must pass before a node starts with it
 * (atoll__game_check): area types with good names and tick rates, handlers with names
 * and functions, and an entry hook; each mistake is a start-up error that says what.
 * And how --game finds the game (atoll__game_load): a built-in name, or a shared object
 * by path, where a bare file name means the file in the working directory. */
#include "node/node.h"
#include "test.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

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

/* ---- finding the game ---- */

/* Copies the file at from to the path to (a copy, not a link: the dynamic loader takes
 * two names of one file for one library). */
static void
copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY);
    ASSERT(in >= 0);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    ASSERT(out >= 0);
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        ASSERT_EQ(write(out, buf, (size_t)n), n);
    ASSERT_EQ(n, 0);
    close(in);
    close(out);
}

/* Loads name_or_path as --game does; returns the game's name, or NULL when it does not
 * load (the reason is logged). */
static const char *
load(const char *name_or_path)
{
    static atoll__game storage;
    void *dl = NULL;
    const atoll__game *g = atoll__game_load(name_or_path, &storage, &dl);
    if (g == NULL) {
        ASSERT(dl == NULL);
        return NULL;
    }
    return g->name; /* the module stays loaded: the name lives in it */
}

static const atoll_game builtin_game = {.name = "the-builtin"};
static int builtin_abi(void) { return ATOLL_ABI_VERSION; }
static const atoll_game *builtin_module(void) { return &builtin_game; }

TEST(a_game_file_is_found_in_the_working_directory)
{
    /* tests/games/plaingame.c: it calls nothing of atoll, so this program can load it. */
    const char *so = ATOLL_PLAINGAME_PATH;
    char dir[] = "/tmp/atoll-games-test-XXXXXX";
    ASSERT(mkdtemp(dir) != NULL);
    ASSERT_EQ(chdir(dir), 0);
    copy_file(so, "libmine.so");
    copy_file(so, "mine");
    copy_file(so, "quick");
    ASSERT_EQ(mkdir("sub", 0755), 0);
    copy_file(so, "sub/libsub.so");

    /* `--game libmine.so`: no slash, yet the file in the working directory (dlopen
     * alone would search the library path and not find it). */
    ASSERT_STR(load("libmine.so"), "plain");
    ASSERT_STR(load("./libmine.so"), "plain");
    ASSERT_STR(load("sub/libsub.so"), "plain");
    /* A file of the working directory is a game whatever its name... */
    ASSERT_STR(load("mine"), "plain");
    /* ...but a built-in name stays the built-in game, files or not. */
    atoll__games_add_entry("quick", builtin_module, builtin_abi);
    ASSERT_STR(load("quick"), "the-builtin");
    ASSERT_STR(load("./quick"), "plain");

    /* From another directory the same names are not there: refused, as is a name that
     * is neither a file nor a built-in game. */
    ASSERT_EQ(chdir("sub"), 0);
    ASSERT(load("libmine.so") == NULL);
    ASSERT(load("mine") == NULL);
    ASSERT_STR(load("libsub.so"), "plain");
    ASSERT(load("nosuchgame.so") == NULL);

    ASSERT_EQ(unlink("libsub.so"), 0);
    ASSERT_EQ(chdir(".."), 0);
    ASSERT_EQ(rmdir("sub"), 0);
    ASSERT_EQ(unlink("libmine.so"), 0);
    ASSERT_EQ(unlink("mine"), 0);
    ASSERT_EQ(unlink("quick"), 0);
    ASSERT_EQ(chdir("/"), 0);
    ASSERT_EQ(rmdir(dir), 0);
}

TEST_MAIN(a_good_game_passes, a_game_without_entry_hook_is_refused_at_start,
          bad_types_and_handlers_are_refused, a_game_file_is_found_in_the_working_directory)
