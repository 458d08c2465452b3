/* The snapshot writer thread: a submitted snapshot becomes a durable file that
 * snap_load_latest reads back byte for byte, the completion arrives on the event loop (the
 * loop keeps turning meanwhile), one snapshot at a time (a second submit is refused while
 * one is in flight), a failure (directory cannot be created) is reported, and freeing the
 * writer with a job in flight neither leaks nor crashes. Waits poll with a deadline. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "dcs/snap.h"
#include "dcs/snap_writer.h"
#include "dcs/wal_fs.h"
#include "evloop.h"

typedef struct done_rec {
    int calls;
    uint64_t index, term;
    int rc;
    char err[256];
} done_rec;

static void on_done(void *arg, uint64_t index, uint64_t term, int rc, const char *err)
{
    done_rec *d = arg;
    d->calls++;
    d->index = index;
    d->term = term;
    d->rc = rc;
    snprintf(d->err, sizeof(d->err), "%s", err);
}

static int wait_done(evloop *loop, done_rec *d, int want)
{
    uint64_t end = evloop_update_now(loop) + 10000;
    while (d->calls < want && evloop_update_now(loop) < end)
        evloop_run_once(loop, 50);
    return d->calls >= want;
}

static uint8_t *pattern(size_t len, uint8_t seed)
{
    uint8_t *p = malloc(len);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(i * 31 + seed);
    return p;
}

static raft_snapshot meta(uint64_t index, uint64_t term, uint32_t len)
{
    raft_snapshot s;
    memset(&s, 0, sizeof(s));
    s.index = index;
    s.term = term;
    s.conf.n = 3;
    s.conf.ids[0] = 1;
    s.conf.ids[1] = 2;
    s.conf.ids[2] = 3;
    s.len = len;
    return s;
}

TEST(writes_durable_file_and_reports_on_loop)
{
    char dir[] = "/tmp/dcs-snapw-XXXXXX";
    CHECK(mkdtemp(dir));
    evloop *loop = evloop_new();
    done_rec d = {0};
    snap_writer *w = snap_writer_new(loop, dir, on_done, &d);
    CHECK(w);
    size_t len = 3u << 20;
    raft_snapshot s = meta(1234, 7, (uint32_t)len);
    CHECK_EQ_INT(snap_writer_submit(w, &s, pattern(len, 1)), 0);
    CHECK(snap_writer_busy(w));
    uint8_t *extra = pattern(16, 2);
    raft_snapshot s2 = meta(1300, 7, 16);
    CHECK_EQ_INT(snap_writer_submit(w, &s2, extra), -1); /* one at a time */
    free(extra);
    CHECK(wait_done(loop, &d, 1));
    CHECK_EQ_INT(d.rc, 0);
    CHECK_EQ_INT(d.index, 1234);
    CHECK_EQ_INT(d.term, 7);
    CHECK(!snap_writer_busy(w));
    raft_snapshot got;
    int skipped = 0;
    char err[256];
    CHECK_EQ_INT(snap_load_latest(&wal_fs_posix, dir, &got, &skipped, err, sizeof(err)), 0);
    CHECK_EQ_INT(got.index, 1234);
    CHECK_EQ_INT(got.len, len);
    CHECK_EQ_INT(got.conf.n, 3);
    uint8_t *want = pattern(len, 1);
    CHECK(memcmp(got.data, want, len) == 0);
    free(want);
    snap_free(&got);
    /* the slot is free again */
    raft_snapshot s3 = meta(2000, 8, 16);
    CHECK_EQ_INT(snap_writer_submit(w, &s3, pattern(16, 3)), 0);
    CHECK(wait_done(loop, &d, 2));
    CHECK_EQ_INT(d.index, 2000);
    snap_writer_free(w);
    snap_purge(&wal_fs_posix, dir, ~0ull);
    evloop_free(loop);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK_EQ_INT(system(cmd), 0);
}

TEST(failure_is_reported)
{
    evloop *loop = evloop_new();
    done_rec d = {0};
    /* a directory below a regular file cannot be created */
    snap_writer *w = snap_writer_new(loop, "/dev/null/snap", on_done, &d);
    CHECK(w);
    raft_snapshot s = meta(5, 1, 8);
    CHECK_EQ_INT(snap_writer_submit(w, &s, pattern(8, 0)), 0);
    CHECK(wait_done(loop, &d, 1));
    CHECK(d.rc != 0);
    CHECK(strstr(d.err, "/dev/null/snap") != NULL);
    snap_writer_free(w);
    evloop_free(loop);
}

TEST(free_with_job_in_flight)
{
    char dir[] = "/tmp/dcs-snapw-XXXXXX";
    CHECK(mkdtemp(dir));
    evloop *loop = evloop_new();
    done_rec d = {0};
    snap_writer *w = snap_writer_new(loop, dir, on_done, &d);
    CHECK(w);
    raft_snapshot s = meta(9, 2, 1u << 20);
    CHECK_EQ_INT(snap_writer_submit(w, &s, pattern(1u << 20, 5)), 0);
    snap_writer_free(w); /* waits for the save, reports nothing */
    CHECK_EQ_INT(d.calls, 0);
    evloop_free(loop);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK_EQ_INT(system(cmd), 0);
}

int main(void)
{
    RUN(writes_durable_file_and_reports_on_loop);
    RUN(failure_is_reported);
    RUN(free_with_job_in_flight);
    return check_done();
}
