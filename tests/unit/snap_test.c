/* Snapshot files on the real file system: round trip, newest valid one wins, a damaged
 * file is skipped with a reason, purge keeps the newest, strict decoding. */
#include "check.h"
#include "dcs/snap.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

static char dir[256];

static raft_snapshot mk(uint64_t index, uint64_t term, const char *data)
{
    raft_snapshot s = {
        .index = index, .term = term, .len = (uint32_t)strlen(data), .data = (const uint8_t *)data};
    s.conf.n = 3;
    for (uint32_t i = 0; i < 3; i++)
        s.conf.ids[i] = i + 1;
    return s;
}

static void rm_dir(void)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
}

TEST(save_load_fallback_purge)
{
    snprintf(dir, sizeof(dir), "/tmp/snap_test.XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    char err[300] = "";
    raft_snapshot a = mk(10, 2, "state-at-10"), b = mk(20, 3, "state-at-20");
    CHECK_EQ_INT(snap_save(&wal_fs_posix, dir, &a, err, sizeof(err)), 0);
    CHECK_EQ_INT(snap_save(&wal_fs_posix, dir, &b, err, sizeof(err)), 0);
    raft_snapshot got;
    int skipped;
    CHECK_EQ_INT(snap_load_latest(&wal_fs_posix, dir, &got, &skipped, err, sizeof(err)), 0);
    CHECK_EQ_INT(got.index, 20);
    CHECK_EQ_INT(got.term, 3);
    CHECK_EQ_INT(got.conf.n, 3);
    CHECK_EQ_INT(skipped, 0);
    CHECK(got.len == 11 && memcmp(got.data, "state-at-20", 11) == 0);
    snap_free(&got);

    /* damage the newest: loading falls back to the older one and says why */
    char path[400];
    snprintf(path, sizeof(path), "%s/%016x-%016x.snap", dir, 3, 20);
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    CHECK(pwrite(fd, "X", 1, 40) == 1);
    close(fd);
    CHECK_EQ_INT(snap_load_latest(&wal_fs_posix, dir, &got, &skipped, err, sizeof(err)), 0);
    CHECK_EQ_INT(got.index, 10);
    CHECK_EQ_INT(skipped, 1);
    printf("# %s\n", err);
    CHECK(strstr(err, "CRC mismatch") != NULL);
    snap_free(&got);

    /* a leftover temporary file is ignored, and purge removes it and older snapshots */
    snprintf(path, sizeof(path), "%s/%016x-%016x.snap.tmp", dir, 9, 99);
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    CHECK(fd >= 0);
    close(fd);
    CHECK_EQ_INT(snap_purge(&wal_fs_posix, dir, 20), 0);
    CHECK(access(path, F_OK) != 0);
    CHECK_EQ_INT(snap_load_latest(&wal_fs_posix, dir, &got, &skipped, err, sizeof(err)), 1);
    CHECK_EQ_INT(skipped, 1); /* only the damaged one is left */
    rm_dir();
}

TEST(decoder_is_strict)
{
    raft_snapshot s = mk(5, 1, "abc"), d;
    uint8_t *buf;
    size_t len;
    CHECK_EQ_INT(snap_encode(&s, &buf, &len), 0);
    char err[200];
    CHECK_EQ_INT(snap_decode(buf, len, &d, err, sizeof(err)), 0);
    CHECK_EQ_INT(d.index, 5);
    CHECK(d.len == 3 && memcmp(d.data, "abc", 3) == 0);
    CHECK_EQ_INT(snap_decode(buf, len - 1, &d, err, sizeof(err)), -1);
    CHECK_EQ_INT(snap_decode(buf, 10, &d, err, sizeof(err)), -1);
    CHECK(strstr(err, "shorter") != NULL);
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x10;
        CHECK_EQ_INT(snap_decode(buf, len, &d, err, sizeof(err)), -1);
        buf[i] ^= 0x10;
    }
    free(buf);
}

int main(void)
{
    RUN(save_load_fallback_purge);
    RUN(decoder_is_strict);
    return check_done();
}
