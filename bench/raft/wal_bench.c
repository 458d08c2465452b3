/* WAL throughput on the real disk: group commit (many entries per fdatasync, what the raft
 * Ready loop does) versus one fdatasync per entry. Prints entries/s for both and the ratio.
 *   wal-bench DIR ENTRIES_GROUP BATCH ENTRIES_SINGLE */
#include "dcs/wal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Appends `total` 128-byte entries, `batch` per wal_sync; returns entries/s or -1. */
static double run(const char *dir, unsigned long total, unsigned long batch, uint64_t *syncs)
{
    char err[512];
    wal *w;
    wal_state st;
    wal_options o = {.segment_bytes = 64u << 20};
    if (wal_open(&wal_fs_posix, dir, &o, &w, &st, err, sizeof(err)) != 0) {
        fprintf(stderr, "wal-bench: %s\n", err);
        return -1;
    }
    uint64_t next = st.snap_index + st.n_entries + 1;
    wal_state_free(&st);
    uint8_t payload[128];
    memset(payload, 0x5a, sizeof(payload));
    raft_entry *e = calloc(batch, sizeof(*e));
    if (!e)
        return -1;
    double t0 = now_s();
    for (unsigned long done = 0; done < total;) {
        unsigned long n = total - done < batch ? total - done : batch;
        for (unsigned long i = 0; i < n; i++)
            e[i] =
                (raft_entry){.term = 1, .index = next++, .len = sizeof(payload), .data = payload};
        raft_hard_state hs = {.term = 1, .vote = 1, .commit = next - 1};
        if (wal_save(w, &hs, e, n) != 0 || wal_sync(w) != 0) {
            fprintf(stderr, "wal-bench: write failed\n");
            free(e);
            wal_close(w);
            return -1;
        }
        done += n;
    }
    double secs = now_s() - t0;
    *syncs = wal_sync_count(w);
    free(e);
    wal_close(w);
    return (double)total / secs;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: wal-bench DIR ENTRIES_GROUP BATCH ENTRIES_SINGLE\n");
        return 2;
    }
    char d1[600], d2[600];
    snprintf(d1, sizeof(d1), "%s/group", argv[1]);
    snprintf(d2, sizeof(d2), "%s/single", argv[1]);
    unsigned long ng = strtoul(argv[2], NULL, 10), b = strtoul(argv[3], NULL, 10),
                  ns = strtoul(argv[4], NULL, 10);
    if (!ng || !b || !ns) {
        fprintf(stderr, "wal-bench: counts must be positive\n");
        return 2;
    }
    uint64_t s1 = 0, s2 = 0;
    double g = run(d1, ng, b, &s1);
    double s = run(d2, ns, 1, &s2);
    if (g < 0 || s < 0)
        return 1;
    printf("wal_group_commit entries=%lu batch=%lu fdatasyncs=%llu entries_per_second=%.0f\n", ng,
           b, (unsigned long long)s1, g);
    printf("wal_fsync_per_entry entries=%lu fdatasyncs=%llu entries_per_second=%.0f\n", ns,
           (unsigned long long)s2, s);
    printf("ratio_group_over_single=%.1f\n", g / s);
    return 0;
}
