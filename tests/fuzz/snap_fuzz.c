/* Fuzz target: the snapshot file loader. A decoded snapshot must re-encode to the same
 * bytes (one canonical form), anything else must be rejected cleanly. */
#include "dcs/snap.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    raft_snapshot s;
    char err[300];
    if (snap_decode(data, size, &s, err, sizeof(err)) != 0)
        return 0;
    uint8_t *buf;
    size_t len;
    if (snap_encode(&s, &buf, &len) != 0)
        abort();
    if (len != size || memcmp(buf, data, size) != 0)
        abort();
    free(buf);
    return 0;
}
