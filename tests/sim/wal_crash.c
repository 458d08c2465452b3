/* Exhaustive crash points for the WAL and snapshot files on the simulated disk.
 *
 * A fixed workload (batches of entries with truncations, hard states, snapshots with
 * compaction and segment release, segment rotation) is run again and again; run k loses
 * power at the k-th disk operation, for every k until the workload completes untouched.
 * Each crash point is tried with several random outcomes of the unsynced writes (lost,
 * complete, torn by sector). After every crash, recovery (snapshot load + WAL replay +
 * reconcile) must hold everything acknowledged (every wal_sync that returned), must not
 * refuse, and logging must continue: one more batch, another restart, still all there.
 *
 *   wal-crash [TEAR_SEEDS]    prints one line per failure and a summary; exit 1 on failure */
#include "dcs/snap.h"
#include "dcs/wal.h"
#include "tests/sim/sim_disk.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXI 512

typedef struct expect {
    uint64_t term[MAXI]; /* acknowledged log: index -> term (0 = none) */
    uint64_t last, snap;
    raft_hard_state hs;
} expect;

static uint64_t rng_state;

static uint64_t rng(void *ctx)
{
    (void)ctx;
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static char payload[4096];

/* One batch: entries first..first+n-1 of `term` (replacing anything from `first` on). */
static int batch(wal *w, expect *ex, uint64_t first, int n, uint64_t term)
{
    raft_entry e[64];
    for (int i = 0; i < n; i++)
        e[i] = (raft_entry){.term = term,
                            .index = first + (uint64_t)i,
                            .len = (uint32_t)((first * 131 + (uint64_t)i * 17) % 900),
                            .data = (const uint8_t *)payload};
    raft_hard_state hs = {.term = term, .vote = term % 3 + 1, .commit = first - 1};
    if (wal_save(w, &hs, e, (size_t)n) != 0 || wal_sync(w) != 0)
        return -1;
    /* acknowledged: remember it */
    ex->last = first + (uint64_t)n - 1;
    for (int i = 0; i < n; i++)
        ex->term[first + (uint64_t)i] = term;
    ex->hs = hs;
    return 0;
}

static int snapshot(const wal_fs *fs, wal *w, expect *ex, uint64_t index)
{
    char err[300], data[64];
    snprintf(data, sizeof(data), "state@%" PRIu64, index);
    raft_snapshot s = {.index = index,
                       .term = ex->term[index],
                       .len = (uint32_t)strlen(data),
                       .data = (const uint8_t *)data};
    s.conf.n = 1;
    s.conf.ids[0] = 1;
    uint64_t old = ex->snap;
    if (snap_save(fs, "snap", &s, err, sizeof(err)) != 0 ||
        wal_mark_snapshot(w, index, s.term, 0) != 0 || wal_sync(w) != 0)
        return -1;
    ex->snap = index;
    if (wal_release(w, index) != 0 || snap_purge(fs, "snap", old) != 0)
        return -1;
    return 0;
}

/* The workload; returns 0 if it ran to the end, -1 when the disk "lost power". */
static int workload(const wal_fs *fs, wal *w, expect *ex)
{
    uint64_t next = ex->last + 1, term = ex->hs.term ? ex->hs.term : 1;
    for (int round = 0; round < 12; round++) {
        int n = 1 + (round * 7) % 13;
        if (batch(w, ex, next, n, term) != 0)
            return -1;
        next += (uint64_t)n;
        if (round % 4 == 3) { /* a new leader overwrites the last two entries */
            term++;
            next -= 2;
            if (batch(w, ex, next, 3, term) != 0)
                return -1;
            next += 3;
        }
        if (round == 5 || round == 10) {
            if (snapshot(fs, w, ex, next - 4) != 0)
                return -1;
        }
    }
    return 0;
}

/* Recovery as the server does it. Returns 0 and compares with ex, or -1 with why. */
static int recover_and_check(const wal_fs *fs, wal **wout, expect *ex, char *why, size_t wl)
{
    char err[300];
    raft_snapshot s;
    int skipped;
    int rc = snap_load_latest(fs, "snap", &s, &skipped, err, sizeof(err));
    if (rc < 0 || skipped) {
        snprintf(why, wl, "snapshot load: %s", err);
        return -1;
    }
    if (rc == 1)
        memset(&s, 0, sizeof(s));
    wal_state st;
    wal_options o = {.segment_bytes = 4096};
    if (wal_open(fs, "wal", &o, wout, &st, err, sizeof(err)) != 0) {
        snprintf(why, wl, "WAL refused: %s", err);
        snap_free(&s);
        return -1;
    }
    if (wal_adopt_snapshot(*wout, &st, s.index, s.term, err, sizeof(err)) != 0) {
        snprintf(why, wl, "reconcile: %s", err);
        goto bad;
    }
    if (st.snap_index < ex->snap) {
        snprintf(why, wl, "snapshot %" PRIu64 " acknowledged, recovered %" PRIu64, ex->snap,
                 st.snap_index);
        goto bad;
    }
    if (st.hs.term < ex->hs.term || (st.hs.term == ex->hs.term && st.hs.vote != ex->hs.vote)) {
        snprintf(why, wl,
                 "hard state term/vote %" PRIu64 "/%" PRIu64 " acknowledged, recovered %" PRIu64
                 "/%" PRIu64,
                 ex->hs.term, ex->hs.vote, st.hs.term, st.hs.vote);
        goto bad;
    }
    /* every acknowledged entry after the snapshot is there with its term, unless a later
     * batch (unacknowledged, but it reached the disk) replaced it from some index on with
     * entries of a higher term: from there on the log is that batch's */
    for (uint64_t i = st.snap_index + 1; i <= ex->last; i++) {
        uint64_t rt =
            i - st.snap_index <= st.n_entries ? st.entries[i - st.snap_index - 1].term : 0;
        if (rt == ex->term[i])
            continue;
        if (rt > ex->term[i])
            break;
        snprintf(why, wl,
                 "entry %" PRIu64 " (term %" PRIu64 ") acknowledged, recovered term %" PRIu64, i,
                 ex->term[i], rt);
        goto bad;
    }
    /* adopt what was recovered as the new expectation (landed unacknowledged batches are
     * legitimate) */
    ex->snap = st.snap_index;
    ex->last = st.snap_index + st.n_entries;
    for (size_t k = 0; k < st.n_entries; k++)
        ex->term[st.entries[k].index] = st.entries[k].term;
    ex->hs = st.hs;
    wal_state_free(&st);
    snap_free(&s);
    return 0;
bad:
    wal_state_free(&st);
    snap_free(&s);
    wal_close(*wout);
    *wout = NULL;
    return -1;
}

int main(int argc, char **argv)
{
    int tears = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 8;
    if (tears < 1 || tears > 10000) {
        fprintf(stderr, "usage: wal-crash [TEAR_SEEDS 1..10000]\n");
        return 2;
    }
    memset(payload, 'p', sizeof(payload));
    int failures = 0;
    uint64_t runs = 0, points = 0;
    for (uint32_t k = 0;; k++) {
        int completed = 0;
        for (int t = 0; t < tears; t++) {
            rng_state = (uint64_t)k * 1000003u + (uint64_t)t;
            sim_disk *d = sim_disk_new();
            wal_fs fs;
            sim_disk_fs(d, &fs);
            static expect ex;
            memset(&ex, 0, sizeof(ex));
            char why[600] = "";
            wal *w = NULL;
            if (recover_and_check(&fs, &w, &ex, why, sizeof(why)) != 0) {
                printf("FAIL fresh start: %s\n", why);
                return 1;
            }
            sim_disk_fail_after(d, k);
            int rc = workload(&fs, w, &ex);
            wal_close(w);
            w = NULL;
            runs++;
            if (rc == 0 && !sim_disk_failed(d)) {
                completed = 1;
                sim_disk_free(d);
                break; /* k is past the last operation: the workload ran untouched */
            }
            sim_disk_crash(d, rng, NULL);
            if (recover_and_check(&fs, &w, &ex, why, sizeof(why)) != 0) {
                printf("FAIL crash at disk operation %u (tear seed %d): %s\n", k, t, why);
                failures++;
                sim_disk_free(d);
                continue;
            }
            /* logging continues and survives another restart */
            if (batch(w, &ex, ex.last + 1, 3, ex.hs.term + 1) != 0) {
                printf("FAIL crash at disk operation %u (tear seed %d): append after recovery\n", k,
                       t);
                failures++;
            }
            wal_close(w);
            w = NULL;
            if (recover_and_check(&fs, &w, &ex, why, sizeof(why)) != 0) {
                printf("FAIL crash at disk operation %u (tear seed %d), second restart: %s\n", k, t,
                       why);
                failures++;
            }
            wal_close(w);
            sim_disk_free(d);
        }
        if (completed)
            break;
        points++;
    }
    printf("%s: %" PRIu64 " crash points x up to %d torn-write outcomes, %" PRIu64
           " runs, %d failures\n",
           failures ? "FAIL" : "ok", points, tears, runs, failures);
    return failures ? 1 : 0;
}
