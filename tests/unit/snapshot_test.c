/* snapshot_test.c -- the reader of a moving area's snapshot (src/area/migrate.c), the
 * bytes a node takes from another when an area moves to it.
 *
 * Its seed corpus (tests/fuzz/corpus/snapshot/, written by tests/fuzz/make_corpus.py
 * from the format migrate.c states) is also its table of cases: every file whose name
 * starts with "bad-" must be refused, every other one read. And bytes cut anywhere, or
 * with any one byte changed, are read or refused, never more.
 */
#include "area/area.h"
#include "test.h"

#include <atoll/atoll.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const atoll__wire_limits LIM = {.nworkers = 4, .ntypes = 3, .node_id = 1};

static uint8_t *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ASSERT(f != NULL);
    uint8_t *b = malloc(1 << 20);
    *len = fread(b, 1, 1 << 20, f);
    fclose(f);
    return b;
}

TEST(every_seed_is_read_or_refused_as_its_name_says)
{
    DIR *d = opendir(ATOLL_SNAPSHOT_CORPUS);
    ASSERT(d != NULL);
    int good = 0, bad = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", ATOLL_SNAPSHOT_CORPUS, e->d_name);
        size_t len;
        uint8_t *b = slurp(path, &len);
        int rc = atoll__snapshot_check(b, len, &LIM);
        bool want_bad = strncmp(e->d_name, "bad-", 4) == 0;
        if (rc != (want_bad ? ATOLL_EPROTO : ATOLL_OK))
            fprintf(stderr, "  %s: %s\n", e->d_name, atoll_err_name(rc));
        ASSERT_EQ(rc, want_bad ? ATOLL_EPROTO : ATOLL_OK);
        if (want_bad)
            bad++;
        else
            good++;
        free(b);
    }
    closedir(d);
    ASSERT(good >= 5 && bad >= 10);
}

TEST(a_snapshot_cut_or_changed_is_read_or_refused)
{
    char path[512];
    snprintf(path, sizeof path, "%s/players", ATOLL_SNAPSHOT_CORPUS);
    size_t len;
    uint8_t *b = slurp(path, &len);
    ASSERT_EQ(atoll__snapshot_check(b, len, &LIM), ATOLL_OK);
    /* Every cut is refused: the reader needs the whole of it and nothing after. */
    for (size_t n = 0; n < len; n++)
        ASSERT_EQ(atoll__snapshot_check(b, n, &LIM), ATOLL_EPROTO);
    /* Every byte changed: an answer, either one (a changed score in the JSON is still a
     * snapshot; a changed count is not). */
    for (size_t i = 0; i < len; i++) {
        uint8_t keep = b[i];
        for (int v = 0; v < 256; v += 37) {
            b[i] = (uint8_t)v;
            int rc = atoll__snapshot_check(b, len, &LIM);
            ASSERT(rc == ATOLL_OK || rc == ATOLL_EPROTO);
        }
        b[i] = keep;
    }
    free(b);
}

TEST_MAIN(every_seed_is_read_or_refused_as_its_name_says, a_snapshot_cut_or_changed_is_read_or_refused)
