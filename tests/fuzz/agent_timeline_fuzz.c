/* Fuzz the timeline history parser and the divergence decision: the history comes from the
 * leader over the network (TIMELINE_HISTORY), so any bytes must give entries or one named
 * error, never a crash or sanitizer report; whatever parses must give a verdict without
 * reading outside the entries. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/timeline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tl_switch h[64];
    size_t n = 0;
    char err[200];
    /* the input is not NUL-terminated: the parser must honour the length */
    char *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);
    if (tl_history_parse(copy, size, h, sizeof(h) / sizeof(h[0]), &n, err, sizeof(err)) == 0) {
        int64_t sp;
        char why[400];
        int leader = n ? h[n - 1].parent_tl + 1 : 2;
        for (int tl = 1; tl <= 3; tl++) {
            tl_position me = {
                .timeline = tl, .lsn = size ? (int64_t)data[0] << 20 : 0, .in_recovery = tl & 1};
            tl_diverged(h, n, leader, &me, &sp, why, sizeof(why));
        }
    } else if (!err[0]) {
        abort(); /* an error must be named */
    }
    free(copy);
    return 0;
}
