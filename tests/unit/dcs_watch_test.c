/* Watch hub: live events, replay from start_revision, prev_kv and filters, compaction
 * cancel, cancel/duplicate IDs, progress, bounded queues with lossless catch-up for slow
 * consumers, fragmentation, DELETE events on lease expiry. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dcs/lease.h"
#include "dcs/watch.h"

static mvcc_arena A;
static int notified;
static void notify(void *arg)
{
    (void)arg;
    notified++;
}

static void put(mvcc *s, const char *k, const char *v, int64_t lease)
{
    mvcc_op op = {.type = MVCC_OP_PUT};
    op.u.put.key = (const uint8_t *)k;
    op.u.put.key_len = strlen(k);
    op.u.put.value = (const uint8_t *)v;
    op.u.put.value_len = strlen(v);
    op.u.put.lease = lease;
    mvcc_op_resp r;
    mvcc_write(s, &op, &A, &r);
}

static void del(mvcc *s, const char *k)
{
    mvcc_op op = {.type = MVCC_OP_DELETE};
    op.u.del.key = (const uint8_t *)k;
    op.u.del.key_len = strlen(k);
    mvcc_op_resp r;
    mvcc_write(s, &op, &A, &r);
}

static v3_request wreq(const char *key, const char *end, int64_t start)
{
    v3_request r;
    memset(&r, 0, sizeof(r));
    r.endpoint = V3_WATCH;
    r.watch_kind = V3_WATCH_CREATE;
    r.watch.key = (const uint8_t *)key;
    r.watch.key_len = strlen(key);
    if (end) {
        r.watch.range_end = (const uint8_t *)end;
        r.watch.range_end_len = strlen(end);
    }
    r.watch.start_revision = start;
    return r;
}

static v3_watch_resp R;
static int64_t HR;
static bool next(watch_stream *st)
{
    return watch_stream_next(st, &R, &HR);
}

TEST(live_events_and_created)
{
    mvcc *s = mvcc_new(NULL);
    watch_hub *h = watch_hub_new(s, NULL);
    watch_stream *st = watch_stream_new(h, notify, NULL);
    v3_request rq = wreq("/p/", "/p0", 0);
    watch_stream_request(st, &rq, 0);
    CHECK(next(st));
    CHECK(R.created && R.watch_id == 0 && HR == 1);
    CHECK(!next(st));
    notified = 0;
    put(s, "/p/a", "1", 0);
    put(s, "/q", "1", 0); /* outside the range */
    put(s, "/p/b", "2", 0);
    CHECK_EQ_INT(notified, 2);
    CHECK(next(st));
    CHECK_EQ_INT(R.nevents, 1);
    CHECK_EQ_INT(HR, 2);
    CHECK_EQ_INT(R.events[0].kv.mod_revision, 2);
    CHECK(!R.events[0].has_prev);
    CHECK(next(st));
    CHECK_EQ_INT(HR, 4);
    CHECK(R.events[0].kv.key_len == 4 && memcmp(R.events[0].kv.key, "/p/b", 4) == 0);
    CHECK(!next(st));
    /* a second watcher on the same stream gets the next ID */
    rq = wreq("/q", NULL, 0);
    watch_stream_request(st, &rq, 0);
    CHECK(next(st) && R.created && R.watch_id == 1);
    del(s, "/q");
    CHECK(next(st) && R.watch_id == 1 && R.events[0].type == MVCC_EVENT_DELETE);
    watch_stream_free(st);
    CHECK_EQ_INT(watch_hub_watchers(h), 0);
    watch_hub_free(h);
    mvcc_free(s);
}

TEST(replay_then_live_prev_kv_filters)
{
    mvcc *s = mvcc_new(NULL);
    watch_hub *h = watch_hub_new(s, NULL);
    for (int i = 0; i < 10; i++)
        put(s, "k", i % 2 ? "odd" : "even", 0); /* revisions 2..11 */
    del(s, "k");                                /* 12 */
    watch_stream *st = watch_stream_new(h, notify, NULL);
    v3_request rq = wreq("k", NULL, 5);
    rq.watch.prev_kv = true;
    watch_stream_request(st, &rq, 0);
    CHECK(next(st) && R.created);
    int64_t expect = 5;
    while (next(st)) {
        for (size_t i = 0; i < R.nevents; i++, expect++) {
            CHECK_EQ_INT(R.events[i].kv.mod_revision, expect);
            CHECK(R.events[i].has_prev);
            CHECK_EQ_INT(R.events[i].prev_kv.mod_revision, expect - 1);
        }
    }
    CHECK_EQ_INT(expect, 13);
    CHECK(!watch_stream_busy(st));
    put(s, "k", "new", 0); /* 13: live, a new generation: no prev */
    CHECK(next(st) && R.events[0].kv.mod_revision == 13 && !R.events[0].has_prev);
    /* filters */
    rq = wreq("k", NULL, 0);
    rq.watch.filter_noput = true;
    watch_stream_request(st, &rq, 0);
    CHECK(next(st) && R.created);
    put(s, "k", "x", 0);
    CHECK(next(st) && R.watch_id == 0); /* only the first watcher sees the put */
    CHECK(!next(st));
    del(s, "k");
    int seen = 0;
    while (next(st))
        seen += R.nevents && R.events[0].type == MVCC_EVENT_DELETE;
    CHECK_EQ_INT(seen, 2);
    watch_hub_free(h);
    mvcc_free(s);
}

TEST(compacted_start_cancel_and_duplicates)
{
    mvcc *s = mvcc_new(NULL);
    watch_hub *h = watch_hub_new(s, NULL);
    for (int i = 0; i < 5; i++)
        put(s, "k", "v", 0);
    CHECK_EQ_INT(mvcc_compact(s, 4), 0);
    watch_stream *st = watch_stream_new(h, notify, NULL);
    v3_request rq = wreq("k", NULL, 3);
    watch_stream_request(st, &rq, 0);
    CHECK(next(st) && R.created && !R.canceled);
    CHECK(next(st) && R.canceled && R.compact_revision == 4 && HR == 0);
    CHECK_EQ_INT(watch_hub_watchers(h), 0);
    rq = wreq("k", NULL, 4); /* the compact revision itself is fine */
    watch_stream_request(st, &rq, 0);
    CHECK(next(st) && R.created);
    CHECK(next(st) && R.nevents == 3 && R.events[0].kv.mod_revision == 4);
    CHECK_EQ_INT(R.events[2].kv.mod_revision, 6);
    CHECK(!next(st));
    rq = wreq("a", NULL, 0);
    rq.watch.watch_id = 7;
    watch_stream_request(st, &rq, 0);
    CHECK(next(st) && R.created && R.watch_id == 7);
    watch_stream_request(st, &rq, 0);
    CHECK(next(st) && R.watch_id == -1 && R.created && R.canceled);
    CHECK_STR(R.cancel_reason, "mvcc: duplicate watch ID provided on the WatchStream");
    v3_request c;
    memset(&c, 0, sizeof(c));
    c.watch_kind = V3_WATCH_CANCEL;
    c.watch_id = 7;
    watch_stream_request(st, &c, 0);
    CHECK(next(st) && R.canceled && R.watch_id == 7);
    watch_stream_request(st, &c, 0); /* unknown now: no answer, as etcd */
    CHECK(!next(st));
    c.watch_kind = V3_WATCH_PROGRESS;
    watch_stream_request(st, &c, 0);
    CHECK(next(st) && R.watch_id == -1 && !R.created && HR == 6);
    watch_hub_free(h);
    mvcc_free(s);
}

TEST(progress_notify)
{
    mvcc *s = mvcc_new(NULL);
    watch_limits lim;
    watch_limits_default(&lim);
    lim.progress_interval_ms = 1000;
    watch_hub *h = watch_hub_new(s, &lim);
    watch_stream *st = watch_stream_new(h, notify, NULL);
    v3_request rq = wreq("k", NULL, 0);
    rq.watch.progress_notify = true;
    watch_stream_request(st, &rq, 0);
    CHECK(next(st) && R.created);
    watch_hub_tick(h, 999);
    CHECK(!next(st));
    watch_hub_tick(h, 1000);
    CHECK(next(st) && R.nevents == 0 && !R.created && HR == 1);
    put(s, "k", "v", 0); /* activity resets the idle clock */
    CHECK(next(st) && R.nevents == 1);
    watch_hub_tick(h, 1500);
    CHECK(!next(st));
    watch_hub_free(h);
    mvcc_free(s);
}

TEST(slow_consumer_bounded_and_lossless)
{
    mvcc *s = mvcc_new(NULL);
    watch_limits lim;
    watch_limits_default(&lim);
    lim.max_queue_items = 4;
    lim.replay_batch = 3;
    watch_hub *h = watch_hub_new(s, &lim);
    watch_stream *st = watch_stream_new(h, notify, NULL);
    v3_request rq = wreq("", "", 0); /* everything: key "" .. "\0" */
    rq.watch.range_end = (const uint8_t *)"";
    rq.watch.range_end_len = 1;
    watch_stream_request(st, &rq, 0);
    CHECK(next(st) && R.created);
    char k[16];
    for (int i = 0; i < 200; i++) {
        snprintf(k, sizeof(k), "k%03d", i % 37);
        put(s, k, "v", 0);
        CHECK(watch_stream_queued_bytes(st) <= lim.max_queue_bytes);
    }
    int64_t expect = 2;
    int rounds = 0;
    while (expect <= 202 && rounds++ < 10000) {
        if (!next(st))
            continue;
        for (size_t i = 0; i < R.nevents; i++)
            CHECK_EQ_INT(R.events[i].kv.mod_revision, expect++);
        if (expect == 120)
            put(s, "late", "v", 0); /* live writes while catching up are not lost */
    }
    CHECK_EQ_INT(expect, 203); /* 200 puts + the late one, in order, none lost */
    CHECK(!next(st));
    CHECK(!watch_stream_busy(st));
    /* a slow consumer overtaken by compaction is canceled with the compact revision */
    for (int i = 0; i < 20; i++)
        put(s, "x", "v", 0);
    CHECK_EQ_INT(mvcc_compact(s, mvcc_current_revision(s)), 0);
    bool canceled = false;
    while (next(st))
        canceled = canceled || (R.canceled && R.compact_revision == mvcc_current_revision(s));
    CHECK(canceled);
    CHECK_EQ_INT(watch_hub_watchers(h), 0);
    watch_hub_free(h);
    mvcc_free(s);
}

TEST(fragments_and_lease_expiry_deletes)
{
    mvcc *s = mvcc_new(NULL);
    watch_limits lim;
    watch_limits_default(&lim);
    lim.fragment_bytes = 300;
    watch_hub *h = watch_hub_new(s, &lim);
    CHECK_EQ_INT(lease_grant(s, 9, 10, 0, NULL, NULL), 0);
    watch_stream *st = watch_stream_new(h, notify, NULL);
    v3_request rq = wreq("/m/", "/m0", 0);
    rq.watch.fragment = true;
    watch_stream_request(st, &rq, 0);
    CHECK(next(st) && R.created);
    char k[16];
    for (int i = 0; i < 10; i++) {
        snprintf(k, sizeof(k), "/m/%d", i);
        put(s, k, "value", 9);
    }
    while (next(st))
        ;
    CHECK_EQ_INT(lease_revoke(s, 9), 0); /* 10 deletes in one revision */
    size_t total = 0;
    int frags = 0, last_frag = 1;
    while (next(st)) {
        total += R.nevents;
        frags++;
        last_frag = R.fragment;
        for (size_t i = 0; i < R.nevents; i++)
            CHECK_EQ_INT(R.events[i].type, MVCC_EVENT_DELETE);
    }
    CHECK_EQ_INT(total, 10);
    CHECK(frags > 1);
    CHECK(!last_frag);
    watch_hub_free(h);
    mvcc_free(s);
}

int main(void)
{
    mvcc_arena_init(&A, 0);
    RUN(live_events_and_created);
    RUN(replay_then_live_prev_kv_filters);
    RUN(compacted_start_cancel_and_duplicates);
    RUN(progress_notify);
    RUN(slow_consumer_bounded_and_lossless);
    RUN(fragments_and_lease_expiry_deletes);
    mvcc_arena_free(&A);
    return check_done();
}
