/* WAL on the real file system: round trip, truncation semantics, group commit (one
 * fdatasync per batch), segment rotation and release, torn-tail recovery, refusal of
 * mid-log corruption without touching the files, snapshot adoption after a crash. */
#include "check.h"
#include "dcs/wal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];
static uint64_t fsyncs;

static int counting_fdatasync(void *ctx, int fd)
{
    fsyncs++;
    return wal_fs_posix.fdatasync(ctx, fd);
}

static wal_fs counting_fs(void)
{
    wal_fs fs = wal_fs_posix;
    fs.fdatasync = counting_fdatasync;
    return fs;
}

static void fresh_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/wal_test.XXXXXX");
    if (!mkdtemp(dir))
        abort();
}

static void rm_dir(void)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
}

static wal *open_ok(wal_state *st, uint64_t seg)
{
    wal *w = NULL;
    char err[300];
    wal_options o = {.segment_bytes = seg};
    int rc = wal_open(&wal_fs_posix, dir, &o, &w, st, err, sizeof(err));
    if (rc)
        printf("# wal_open: %s\n", err);
    return w;
}

static int save_terms(wal *w, uint64_t first, const uint64_t *terms, int n, uint64_t commit)
{
    raft_entry e[64];
    char payload[64][16];
    for (int i = 0; i < n; i++) {
        snprintf(payload[i], sizeof(payload[i]), "e%llu",
                 (unsigned long long)first + (unsigned long long)i);
        e[i] = (raft_entry){.term = terms[i],
                            .index = first + (uint64_t)i,
                            .len = (uint32_t)strlen(payload[i]),
                            .data = (const uint8_t *)payload[i]};
    }
    raft_hard_state hs = {.term = n ? terms[n - 1] : 1, .vote = 2, .commit = commit};
    if (wal_save(w, &hs, e, (size_t)n) != 0)
        return -1;
    return wal_sync(w);
}

static char *seg_name(int seq)
{
    static char p[300];
    snprintf(p, sizeof(p), "%s/%016x.wal", dir, seq);
    return p;
}

static size_t read_all(const char *path, uint8_t **buf)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        abort();
    *buf = malloc((size_t)st.st_size);
    if (!*buf || read(fd, *buf, (size_t)st.st_size) != st.st_size)
        abort();
    close(fd);
    return (size_t)st.st_size;
}

static void poke(const char *path, size_t off, uint8_t xor_with)
{
    int fd = open(path, O_RDWR);
    uint8_t b;
    if (fd < 0 || pread(fd, &b, 1, (off_t)off) != 1)
        abort();
    b ^= xor_with;
    if (pwrite(fd, &b, 1, (off_t)off) != 1)
        abort();
    close(fd);
}

/* End of the intact records of a segment file, as recovery sees it. */
static size_t data_end(const char *path)
{
    uint8_t *b;
    size_t n = read_all(path, &b), end = 0;
    wal_state st;
    char err[300];
    if (wal_parse_segment(b, n, &st, &end, err, sizeof(err)) == 0)
        wal_state_free(&st);
    free(b);
    return end;
}

TEST(roundtrip_and_truncation)
{
    fresh_dir();
    wal_state st;
    wal *w = open_ok(&st, 0);
    CHECK(w);
    CHECK_EQ_INT(st.n_entries, 0);
    static const uint64_t t1[] = {1, 1, 1, 2, 2};
    CHECK_EQ_INT(save_terms(w, 1, t1, 5, 3), 0);
    static const uint64_t t2[] = {3, 3};
    CHECK_EQ_INT(save_terms(w, 3, t2, 2, 3), 0); /* replaces 3.. with term 3 */
    wal_close(w);
    w = open_ok(&st, 0);
    CHECK(w);
    CHECK_EQ_INT(st.n_entries, 4);
    CHECK_EQ_INT(st.entries[2].index, 3);
    CHECK_EQ_INT(st.entries[2].term, 3);
    CHECK_EQ_INT(st.entries[3].term, 3);
    CHECK(st.entries[3].len == 2 && memcmp(st.entries[3].data, "e4", 2) == 0);
    CHECK_EQ_INT(st.hs.term, 3);
    CHECK_EQ_INT(st.hs.vote, 2);
    CHECK_EQ_INT(st.hs.commit, 3);
    CHECK_EQ_INT(st.torn_tail, 0);
    wal_state_free(&st);
    wal_close(w);
    rm_dir();
}

TEST(one_fdatasync_per_batch)
{
    fresh_dir();
    wal_fs fs = counting_fs();
    wal *w;
    wal_state st;
    char err[300];
    CHECK_EQ_INT(wal_open(&fs, dir, NULL, &w, &st, err, sizeof(err)), 0);
    uint64_t terms[64];
    for (int i = 0; i < 64; i++)
        terms[i] = 1;
    uint64_t before = fsyncs;
    for (int b = 0; b < 10; b++)
        CHECK_EQ_INT(save_terms(w, 1 + 64 * (uint64_t)b, terms, 64, 0), 0);
    CHECK_EQ_INT(fsyncs - before, 10); /* 640 entries, 10 batches, 10 fdatasyncs */
    CHECK_EQ_INT(wal_sync(w), 0);      /* empty batch: no fdatasync */
    CHECK_EQ_INT(fsyncs - before, 10);
    wal_state_free(&st);
    wal_close(w);
    rm_dir();
}

TEST(segments_rotate_and_release)
{
    fresh_dir();
    wal_state st;
    wal *w = open_ok(&st, 4096);
    uint64_t terms[32];
    for (int i = 0; i < 32; i++)
        terms[i] = 1;
    for (int b = 0; b < 20; b++)
        CHECK_EQ_INT(save_terms(w, 1 + 32 * (uint64_t)b, terms, 32, 32 * (uint64_t)b), 0);
    CHECK(access(seg_name(3), F_OK) == 0); /* 640 entries do not fit in 4 KiB */
    CHECK_EQ_INT(wal_mark_snapshot(w, 600, 1, 0), 0);
    CHECK_EQ_INT(wal_release(w, 600), 0); /* marker not durable yet: nothing released */
    CHECK(access(seg_name(1), F_OK) == 0);
    CHECK_EQ_INT(wal_sync(w), 0);
    CHECK_EQ_INT(wal_release(w, 600), 0);
    CHECK(access(seg_name(1), F_OK) != 0);
    wal_close(w);
    w = open_ok(&st, 4096);
    CHECK(w);
    CHECK_EQ_INT(st.snap_index, 600);
    CHECK_EQ_INT(st.n_entries, 40);
    CHECK_EQ_INT(st.entries[0].index, 601);
    CHECK_EQ_INT(st.hs.commit, 608);
    wal_state_free(&st);
    wal_close(w);
    rm_dir();
}

TEST(torn_tail_is_cut_and_logging_continues)
{
    /* batch B = six 40-byte entry records and a hard state; wherever it is damaged, the
     * whole unfinished batch goes (a batch is all or nothing) */
    static const struct {
        const char *name;
        size_t off; /* from the start of the unfinished batch */
        size_t want_entries;
    } rows[] = {{"first record header", 2, 3},
                {"first record payload", 25, 3},
                {"sixth entry", 210, 3},
                {"hard state record", 250, 3}};
    for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
        fresh_dir();
        wal_state st;
        wal *w = open_ok(&st, 0);
        static const uint64_t a[] = {1, 1, 1};
        CHECK_EQ_INT(save_terms(w, 1, a, 3, 1), 0);
        size_t a_end = data_end(seg_name(1));
        static const uint64_t b[] = {1, 1, 1, 1, 1, 1};
        CHECK_EQ_INT(save_terms(w, 4, b, 6, 3), 0);
        wal_close(w);
        size_t b_end = data_end(seg_name(1));
        CHECK(a_end + rows[k].off < b_end);
        size_t off = a_end + rows[k].off;
        poke(seg_name(1), off, 0x40); /* the batch that "never finished its fdatasync" */
        w = open_ok(&st, 0);
        printf("# %s\n", rows[k].name);
        CHECK(w);
        CHECK_EQ_INT(st.torn_tail, 1);
        CHECK_EQ_INT(st.n_entries, rows[k].want_entries);
        CHECK_EQ_INT(st.hs.commit, 1);
        wal_state_free(&st);
        static const uint64_t c[] = {2, 2};
        CHECK_EQ_INT(save_terms(w, 4, c, 2, 4), 0);
        wal_close(w);
        w = open_ok(&st, 0);
        CHECK(w);
        CHECK_EQ_INT(st.torn_tail, 0);
        CHECK_EQ_INT(st.n_entries, 5);
        CHECK_EQ_INT(st.entries[4].term, 2);
        wal_state_free(&st);
        wal_close(w);
        rm_dir();
    }
}

TEST(corruption_of_acknowledged_data_is_refused_untouched)
{
    static const struct {
        const char *name;
        int segment;   /* damaged file */
        bool two_segs; /* write enough to seal segment 1 */
    } rows[] = {{"record followed by a later batch", 1, false},
                {"record in a sealed segment", 1, true}};
    for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
        fresh_dir();
        wal_state st;
        wal *w = open_ok(&st, 4096);
        static const uint64_t a[] = {1, 1, 1};
        CHECK_EQ_INT(save_terms(w, 1, a, 3, 1), 0);
        size_t a_end = data_end(seg_name(1));
        uint64_t terms[32];
        for (int i = 0; i < 32; i++)
            terms[i] = 1;
        int batches = rows[k].two_segs ? 10 : 1;
        for (int b = 0; b < batches; b++)
            CHECK_EQ_INT(save_terms(w, 4 + 32 * (uint64_t)b, terms, 32, 3), 0);
        wal_close(w);
        poke(seg_name(rows[k].segment), a_end - 12, 0x01); /* inside batch A's hard state */
        uint8_t *before, *after;
        size_t nb = read_all(seg_name(1), &before);
        wal *w2 = NULL;
        char err[300] = "";
        wal_options o = {.segment_bytes = 4096};
        int rc = wal_open(&wal_fs_posix, dir, &o, &w2, &st, err, sizeof(err));
        printf("# %s: %s\n", rows[k].name, err);
        CHECK(rc != 0 && w2 == NULL);
        CHECK(strstr(err, "0000000000000001.wal") != NULL);
        CHECK(strstr(err, "refusing") != NULL);
        size_t na = read_all(seg_name(1), &after);
        CHECK(na == nb && memcmp(before, after, na) == 0); /* nothing deleted or zeroed */
        free(before);
        free(after);
        rm_dir();
    }
}

TEST(adopting_a_newer_snapshot_after_a_crash)
{
    static const struct {
        const char *name;
        uint64_t snap_index, snap_term;
        int want_rc;
        size_t want_entries;
    } rows[] = {
        {"WAL holds the snapshot's entry: keep the log after it", 3, 1, 0, 2},
        {"different history at the index: drop the log", 3, 7, 0, 0},
        {"snapshot beyond the log", 9, 7, 0, 0},
    };
    for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
        fresh_dir();
        wal_state st;
        wal *w = open_ok(&st, 0);
        static const uint64_t a[] = {1, 1, 1, 1, 1};
        CHECK_EQ_INT(save_terms(w, 1, a, 5, 2), 0);
        wal_close(w);
        w = open_ok(&st, 0);
        char err[300] = "";
        int rc =
            wal_adopt_snapshot(w, &st, rows[k].snap_index, rows[k].snap_term, err, sizeof(err));
        printf("# %s\n", rows[k].name);
        CHECK_EQ_INT(rc, rows[k].want_rc);
        CHECK_EQ_INT(st.n_entries, rows[k].want_entries);
        CHECK_EQ_INT(st.hs.commit, rows[k].snap_index);
        wal_state_free(&st);
        wal_close(w);
        /* the decision was recorded: the next recovery sees the same log */
        w = open_ok(&st, 0);
        CHECK_EQ_INT(st.snap_index, rows[k].snap_index);
        CHECK_EQ_INT(st.n_entries, rows[k].want_entries);
        char e2[300];
        CHECK(wal_adopt_snapshot(w, &st, 0, 0, e2, sizeof(e2)) != 0); /* snapshot file lost */
        CHECK(strstr(e2, "newest valid snapshot") != NULL);
        wal_state_free(&st);
        wal_close(w);
        rm_dir();
    }
}

TEST(segment_parser_rejects_garbage)
{
    wal_state st;
    size_t end;
    char err[300];
    uint8_t junk[64];
    memset(junk, 0xab, sizeof(junk));
    CHECK_EQ_INT(wal_parse_segment(junk, sizeof(junk), &st, &end, err, sizeof(err)), -1);
    CHECK(strstr(err, "header") != NULL);
    memset(junk, 0, sizeof(junk));
    CHECK_EQ_INT(wal_parse_segment(junk, sizeof(junk), &st, &end, err, sizeof(err)), -1);
}

int main(void)
{
    RUN(roundtrip_and_truncation);
    RUN(one_fdatasync_per_batch);
    RUN(segments_rotate_and_release);
    RUN(torn_tail_is_cut_and_logging_continues);
    RUN(corruption_of_acknowledged_data_is_refused_untouched);
    RUN(adopting_a_newer_snapshot_after_a_crash);
    RUN(segment_parser_rejects_garbage);
    return check_done();
}
