/* Fuzz target: the WAL segment reader (record checks, torn-tail decision, entry replay).
 * Any input must give a clean result or a clean error: no crash, no hang, no leak. */
#include "dcs/wal.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wal_state st;
    size_t end = 0;
    char err[300];
    if (wal_parse_segment(data, size, &st, &end, err, sizeof(err)) == 0) {
        if (end > size)
            abort();
        for (size_t i = 1; i < st.n_entries; i++)
            if (st.entries[i].index != st.entries[i - 1].index + 1)
                abort(); /* replay must yield a contiguous log */
        wal_state_free(&st);
    }
    return 0;
}
