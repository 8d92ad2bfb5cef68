/* fuzz_snapshot.c -- libFuzzer target: the snapshot of an area moving between nodes
 * (src/area/migrate.c), which the new owner reads from another node's bytes.
 *
 * The bytes are a snapshot, read with the limits of a node of 4 workers and 3 area
 * types. Whatever they hold, the reader must answer ATOLL_OK or ATOLL_EPROTO, free
 * everything it built on the way (LeakSanitizer in the fuzzing build), and answer the
 * same again for the same bytes. References to code and data ({module, offset}) are
 * resolved against this process's modules: a module that is not loaded, or an offset
 * outside the module's segments, is refused.
 *
 * The reader belongs to the runtime library, so this target links `atoll` as well
 * (tests/CMakeLists.txt).
 */
#include "area/area.h"
#include "fuzz.h"

#include <atoll/atoll.h>

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const atoll__wire_limits lim = {.nworkers = 4, .ntypes = 3, .node_id = 1};
    int rc = atoll__snapshot_check(data, size, &lim);
    CHECK(rc == ATOLL_OK || rc == ATOLL_EPROTO);
    CHECK(atoll__snapshot_check(data, size, &lim) == rc);
    return 0;
}
