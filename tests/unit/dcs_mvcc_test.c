/* MVCC key store: revisions, versions, tombstones/generations, ranges (prefix, all, limit,
 * sort, filters, historical), compaction, txn semantics, quota, watch history, and the
 * ordered index against a reference model. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dcs/lease.h"
#include "dcs/mvcc.h"
#include "dcs/mvcc_tree.h"

#define B(s) (const uint8_t *)(s), strlen(s)

static mvcc_arena A;

static int put(mvcc *s, const char *k, const char *v, int64_t lease)
{
    mvcc_op op = {.type = MVCC_OP_PUT};
    op.u.put.key = (const uint8_t *)k;
    op.u.put.key_len = strlen(k);
    op.u.put.value = (const uint8_t *)v;
    op.u.put.value_len = strlen(v);
    op.u.put.lease = lease;
    mvcc_op_resp r;
    return mvcc_write(s, &op, &A, &r);
}

static int del(mvcc *s, const char *k, const char *end, int64_t *deleted)
{
    mvcc_op op = {.type = MVCC_OP_DELETE};
    op.u.del.key = (const uint8_t *)k;
    op.u.del.key_len = strlen(k);
    if (end) {
        op.u.del.range_end = (const uint8_t *)end;
        op.u.del.range_end_len = end[0] ? strlen(end) : 1;
    }
    mvcc_op_resp r;
    int e = mvcc_write(s, &op, &A, &r);
    if (deleted)
        *deleted = r.u.del.deleted;
    return e;
}

static mvcc_op_resp get(mvcc *s, const char *k, const char *end, int64_t rev)
{
    mvcc_range_req q = {0};
    q.key = (const uint8_t *)k;
    q.key_len = strlen(k);
    if (end) {
        q.range_end = (const uint8_t *)end;
        q.range_end_len = end[0] ? strlen(end) : 1;
    }
    q.revision = rev;
    mvcc_op_resp r;
    memset(&r, 0, sizeof(r));
    r.revision = -1000 - mvcc_range(s, &q, &A, &r);
    return r;
}

static int val_is(const mvcc_kv *kv, const char *v)
{
    return kv->value_len == strlen(v) && memcmp(kv->value, v, kv->value_len) == 0;
}

TEST(revisions_versions_generations)
{
    mvcc *s = mvcc_new(NULL);
    CHECK_EQ_INT(mvcc_current_revision(s), 1);
    CHECK_EQ_INT(put(s, "a", "1", 0), 0);
    CHECK_EQ_INT(put(s, "a", "2", 0), 0);
    mvcc_op_resp r = get(s, "a", NULL, 0);
    CHECK_EQ_INT(r.u.range.nkvs, 1);
    CHECK_EQ_INT(r.u.range.kvs[0].create_revision, 2);
    CHECK_EQ_INT(r.u.range.kvs[0].mod_revision, 3);
    CHECK_EQ_INT(r.u.range.kvs[0].version, 2);
    int64_t n;
    CHECK_EQ_INT(del(s, "a", NULL, &n), 0);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(mvcc_current_revision(s), 4);
    CHECK_EQ_INT(get(s, "a", NULL, 0).u.range.nkvs, 0);
    /* deleting a missing key changes nothing, not even the revision */
    CHECK_EQ_INT(del(s, "a", NULL, &n), 0);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(mvcc_current_revision(s), 4);
    /* a new generation: create_revision and version restart */
    CHECK_EQ_INT(put(s, "a", "3", 0), 0);
    r = get(s, "a", NULL, 0);
    CHECK_EQ_INT(r.u.range.kvs[0].create_revision, 5);
    CHECK_EQ_INT(r.u.range.kvs[0].version, 1);
    /* historical reads see every generation */
    CHECK(val_is(&get(s, "a", NULL, 2).u.range.kvs[0], "1"));
    CHECK(val_is(&get(s, "a", NULL, 3).u.range.kvs[0], "2"));
    CHECK_EQ_INT(get(s, "a", NULL, 4).u.range.nkvs, 0);
    CHECK_EQ_INT(get(s, "a", NULL, 6).revision, -1000 - MVCC_ERR_FUTURE_REV);
    mvcc_free(s);
}

TEST(ranges_prefix_all_limit_sort_filters)
{
    mvcc *s = mvcc_new(NULL);
    const char *keys[] = {"a", "ab", "abc", "b", "c\xff", "c\xff\xff"};
    for (int i = 0; i < 6; i++)
        CHECK_EQ_INT(put(s, keys[i], i % 2 ? "x" : "y", 0), 0);
    uint8_t end[16];
    size_t en = mvcc_prefix_end(B("ab"), end);
    CHECK_EQ_INT(en, 2);
    CHECK(end[0] == 'a' && end[1] == 'c');
    CHECK_EQ_INT(mvcc_prefix_end(B("c\xff\xff"), end), 1);
    CHECK(end[0] == 'd');
    CHECK_EQ_INT(mvcc_prefix_end(B("\xff"), end), 1);
    CHECK(end[0] == 0);
    CHECK_EQ_INT(get(s, "ab", "ac", 0).u.range.count, 2);
    CHECK_EQ_INT(get(s, "b", "", 0).u.range.nkvs, 3); /* "\0" end = every key >= "b" */
    mvcc_range_req q = {0};
    q.key = (const uint8_t *)"a";
    q.key_len = 1;
    q.range_end = (const uint8_t *)"";
    q.range_end_len = 1;
    q.limit = 2;
    mvcc_op_resp r;
    CHECK_EQ_INT(mvcc_range(s, &q, &A, &r), 0);
    CHECK_EQ_INT(r.u.range.nkvs, 2);
    CHECK_EQ_INT(r.u.range.count, 6);
    CHECK(r.u.range.more);
    q.limit = 0;
    q.sort_order = MVCC_SORT_DESCEND;
    q.sort_target = MVCC_TARGET_VALUE;
    CHECK_EQ_INT(mvcc_range(s, &q, &A, &r), 0);
    /* values y,y,y then x,x,x; ties by key in the same direction */
    CHECK(val_is(&r.u.range.kvs[0], "y") && r.u.range.kvs[0].key[0] == 'c');
    CHECK(val_is(&r.u.range.kvs[5], "x") && r.u.range.kvs[5].key_len == 2);
    q.sort_order = MVCC_SORT_NONE;
    q.sort_target = MVCC_TARGET_KEY;
    q.min_mod_revision = 4;
    q.max_mod_revision = 5;
    q.keys_only = true;
    CHECK_EQ_INT(mvcc_range(s, &q, &A, &r), 0);
    CHECK_EQ_INT(r.u.range.nkvs, 2);
    CHECK_EQ_INT(r.u.range.count, 6); /* count ignores filters, as etcd */
    CHECK(r.u.range.kvs[0].value == NULL && r.u.range.kvs[0].value_len == 0);
    q.count_only = true;
    CHECK_EQ_INT(mvcc_range(s, &q, &A, &r), 0);
    CHECK_EQ_INT(r.u.range.nkvs, 0);
    CHECK_EQ_INT(r.u.range.count, 6);
    int64_t n;
    CHECK_EQ_INT(del(s, "a", "b", &n), 0);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(mvcc_current_revision(s), 8); /* one revision for the whole range */
    mvcc_free(s);
}

TEST(compaction)
{
    mvcc *s = mvcc_new(NULL);
    put(s, "a", "1", 0);     /* 2 */
    put(s, "a", "2", 0);     /* 3 */
    put(s, "b", "1", 0);     /* 4 */
    del(s, "b", NULL, NULL); /* 5 */
    put(s, "a", "3", 0);     /* 6 */
    size_t before = mvcc_bytes(s);
    CHECK_EQ_INT(mvcc_compact(s, 7), MVCC_ERR_FUTURE_REV);
    CHECK_EQ_INT(mvcc_compact(s, 5), 0);
    CHECK(mvcc_bytes(s) < before);
    CHECK_EQ_INT(mvcc_compact(s, 5), MVCC_ERR_COMPACTED);
    CHECK_EQ_INT(mvcc_compact(s, 4), MVCC_ERR_COMPACTED);
    CHECK_EQ_INT(mvcc_key_count(s), 1); /* b's tombstone is gone with its history */
    CHECK_EQ_INT(get(s, "a", NULL, 4).revision, -1000 - MVCC_ERR_COMPACTED);
    CHECK(val_is(&get(s, "a", NULL, 5).u.range.kvs[0], "2")); /* the compact revision reads */
    CHECK(val_is(&get(s, "a", NULL, 0).u.range.kvs[0], "3"));
    CHECK_EQ_INT(get(s, "a", NULL, 0).u.range.kvs[0].version, 3);
    CHECK_EQ_INT(mvcc_compact_suggest(s, 10), 0);
    CHECK_EQ_INT(mvcc_compact_suggest(s, 1), 0 + 5 > 5 ? 5 : 0);
    for (int i = 0; i < 20; i++)
        put(s, "c", "x", 0);
    CHECK_EQ_INT(mvcc_compact_suggest(s, 10), mvcc_current_revision(s) - 10);
    mvcc_free(s);
}

static mvcc_compare cmp_of(const char *k, int target, int result, int64_t num, const char *v)
{
    mvcc_compare c = {0};
    c.key = (const uint8_t *)k;
    c.key_len = strlen(k);
    c.target = target;
    c.result = result;
    c.number = num;
    if (v) {
        c.value = (const uint8_t *)v;
        c.value_len = strlen(v);
    }
    return c;
}

static mvcc_op put_op(const char *k, const char *v)
{
    mvcc_op op = {.type = MVCC_OP_PUT};
    op.u.put.key = (const uint8_t *)k;
    op.u.put.key_len = strlen(k);
    op.u.put.value = (const uint8_t *)v;
    op.u.put.value_len = strlen(v);
    return op;
}

TEST(txn_semantics)
{
    mvcc *s = mvcc_new(NULL);
    put(s, "leader", "pg1", 0); /* 2 */
    /* VALUE compare on a missing key is false, whatever the result operator */
    mvcc_compare c[2] = {cmp_of("nokey", MVCC_TARGET_VALUE, MVCC_CMP_NOT_EQUAL, 0, "x")};
    mvcc_op ok = put_op("x", "1");
    mvcc_op t = {.type = MVCC_OP_TXN};
    t.u.txn.compare = c;
    t.u.txn.ncompare = 1;
    t.u.txn.success = &ok;
    t.u.txn.nsuccess = 1;
    mvcc_op_resp r;
    CHECK_EQ_INT(mvcc_write(s, &t, &A, &r), 0);
    CHECK(!r.u.txn.succeeded);
    CHECK_EQ_INT(r.revision, 2);
    /* CREATE == 0 on a missing key is true (zero KeyValue) */
    c[0] = cmp_of("nokey", MVCC_TARGET_CREATE, MVCC_CMP_EQUAL, 0, NULL);
    CHECK_EQ_INT(mvcc_write(s, &t, &A, &r), 0);
    CHECK(r.u.txn.succeeded);
    CHECK_EQ_INT(r.revision, 3);
    CHECK_EQ_INT(r.u.txn.responses[0].revision, 3);
    /* nested txn in failure: branches are decided on the state before the txn */
    mvcc_compare inner_c = cmp_of("y", MVCC_TARGET_CREATE, MVCC_CMP_EQUAL, 0, NULL);
    mvcc_op inner_ops[1] = {put_op("y", "2")};
    mvcc_op failure[2];
    failure[0] = put_op("z", "1");
    failure[1].type = MVCC_OP_TXN;
    memset(&failure[1].u.txn, 0, sizeof(failure[1].u.txn));
    failure[1].u.txn.compare = &inner_c;
    failure[1].u.txn.ncompare = 1;
    failure[1].u.txn.success = inner_ops;
    failure[1].u.txn.nsuccess = 1;
    c[0] = cmp_of("leader", MVCC_TARGET_VALUE, MVCC_CMP_EQUAL, 0, "someone");
    c[1] = cmp_of("leader", MVCC_TARGET_MOD, MVCC_CMP_LESS, 100, NULL);
    t.u.txn.ncompare = 2;
    t.u.txn.failure = failure;
    t.u.txn.nfailure = 2;
    CHECK_EQ_INT(mvcc_write(s, &t, &A, &r), 0);
    CHECK(!r.u.txn.succeeded);
    CHECK_EQ_INT(r.u.txn.n, 2);
    CHECK(r.u.txn.responses[1].u.txn.succeeded);
    CHECK_EQ_INT(r.revision, 4); /* one revision for both puts */
    mvcc_op_resp g = get(s, "y", NULL, 0);
    CHECK_EQ_INT(g.u.range.kvs[0].mod_revision, 4);
    CHECK_EQ_INT(get(s, "z", NULL, 0).u.range.kvs[0].mod_revision, 4);
    /* duplicate put keys are refused before anything is applied */
    mvcc_op dup[2] = {put_op("d", "1"), put_op("d", "2")};
    mvcc_op t2 = {.type = MVCC_OP_TXN};
    t2.u.txn.success = dup;
    t2.u.txn.nsuccess = 2;
    CHECK_EQ_INT(mvcc_write(s, &t2, &A, &r), MVCC_ERR_DUPLICATE_KEY);
    /* lease must exist; nothing applied on error */
    dup[1] = put_op("e", "1");
    dup[1].u.put.lease = 77;
    CHECK_EQ_INT(mvcc_write(s, &t2, &A, &r), MVCC_ERR_LEASE_NOT_FOUND);
    CHECK_EQ_INT(get(s, "d", NULL, 0).u.range.nkvs, 0);
    CHECK_EQ_INT(mvcc_current_revision(s), 4);
    /* ignore_value on a missing key */
    mvcc_op iv = put_op("missing", "");
    iv.u.put.ignore_value = true;
    CHECK_EQ_INT(mvcc_write(s, &iv, &A, &r), MVCC_ERR_KEY_NOT_FOUND);
    iv = put_op("leader", "");
    iv.u.put.ignore_value = true;
    iv.u.put.prev_kv = true;
    CHECK_EQ_INT(mvcc_write(s, &iv, &A, &r), 0);
    CHECK(r.u.put.has_prev && val_is(&r.u.put.prev, "pg1"));
    CHECK(val_is(&get(s, "leader", NULL, 0).u.range.kvs[0], "pg1"));
    mvcc_free(s);
}

TEST(quota_nospace_and_recovery)
{
    mvcc_limits lim;
    mvcc_limits_default(&lim);
    lim.quota_bytes = 4096;
    mvcc *s = mvcc_new(&lim);
    char k[16];
    int e = 0, i;
    for (i = 0; i < 1000 && !e; i++) {
        snprintf(k, sizeof(k), "k%d", i);
        e = put(s, k, "0123456789012345678901234567890123456789", 0);
    }
    CHECK_EQ_INT(e, MVCC_ERR_NOSPACE);
    CHECK(i > 5 && i < 1000);
    CHECK(mvcc_bytes(s) <= 4096);
    /* deletes and compaction always work and give room back */
    CHECK_EQ_INT(del(s, "k", "", NULL), 0);
    CHECK_EQ_INT(mvcc_compact(s, mvcc_current_revision(s)), 0);
    CHECK_EQ_INT(put(s, "again", "x", 0), 0);
    mvcc_free(s);
}

static int hook_calls;
static int64_t hook_rev;
static size_t hook_n;
static void hook(void *arg, int64_t rev, const mvcc_event *ev, size_t n)
{
    (void)arg;
    (void)ev;
    hook_calls++;
    hook_rev = rev;
    hook_n = n;
}

TEST(history_and_hook)
{
    mvcc *s = mvcc_new(NULL);
    mvcc_set_watch_hook(s, hook, NULL);
    put(s, "p/a", "1", 0);                     /* 2 */
    put(s, "p/b", "1", 0);                     /* 3 */
    put(s, "q", "1", 0);                       /* 4 */
    put(s, "p/a", "2", 0);                     /* 5 */
    CHECK_EQ_INT(del(s, "p/", "p0", NULL), 0); /* 6: two deletes */
    CHECK_EQ_INT(hook_calls, 5);
    CHECK_EQ_INT(hook_rev, 6);
    CHECK_EQ_INT(hook_n, 2);
    mvcc_event *ev;
    size_t n;
    int64_t next;
    CHECK_EQ_INT(mvcc_history(s, B("p/"), B("p0"), 1, 100, 0, true, &A, &ev, &n, &next), 0);
    CHECK_EQ_INT(n, 5);
    CHECK_EQ_INT(next, 7);
    CHECK_EQ_INT(ev[0].kv.mod_revision, 2);
    CHECK_EQ_INT(ev[2].kv.mod_revision, 5);
    CHECK(ev[2].has_prev && val_is(&ev[2].prev_kv, "1"));
    CHECK_EQ_INT(ev[3].type, MVCC_EVENT_DELETE);
    CHECK_EQ_INT(ev[4].type, MVCC_EVENT_DELETE);
    /* a cut never splits a revision */
    CHECK_EQ_INT(mvcc_history(s, B("p/"), B("p0"), 1, 100, 4, false, &A, &ev, &n, &next), 0);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(next, 6);
    CHECK_EQ_INT(mvcc_history(s, B("p/"), B("p0"), 6, 100, 1, false, &A, &ev, &n, &next), 0);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(mvcc_compact(s, 3), 0);
    CHECK_EQ_INT(mvcc_history(s, B("p/"), B("p0"), 2, 100, 0, false, &A, &ev, &n, &next),
                 MVCC_ERR_COMPACTED);
    CHECK_EQ_INT(mvcc_history(s, B("p/"), B("p0"), 4, 100, 0, false, &A, &ev, &n, &next), 0);
    CHECK_EQ_INT(n, 3);
    mvcc_free(s);
}

/* Deterministic PRNG for the property test (xorshift). */
static uint64_t rng = 88172645463325252ULL;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

TEST(tree_matches_reference)
{
    enum { N = 512 };
    static uint8_t keys[N][2];
    static int present[N];
    mvcc_tree t;
    mvcc_tree_init(&t);
    for (int i = 0; i < N; i++) {
        keys[i][0] = (uint8_t)(i >> 8);
        keys[i][1] = (uint8_t)i;
    }
    for (int step = 0; step < 20000; step++) {
        int i = (int)(rnd() % N);
        if (rnd() % 2) {
            int rc = mvcc_tree_insert(&t, keys[i], 2, &present[i]);
            CHECK_EQ_INT(rc, present[i] ? 1 : 0);
            present[i] = 1;
        } else {
            void *it = mvcc_tree_remove(&t, keys[i], 2);
            CHECK((it != NULL) == (present[i] != 0));
            present[i] = 0;
        }
        if (step % 1000 == 0) {
            size_t cnt = 0;
            int expect = -1;
            for (int j = 0; j < N; j++)
                if (present[j]) {
                    cnt++;
                    if (expect < 0)
                        expect = j;
                }
            CHECK_EQ_INT(t.count, cnt);
            /* in-order walk via seek(strict) visits exactly the present keys */
            const uint8_t *fk;
            size_t fn;
            void *it = mvcc_tree_seek(&t, (const uint8_t *)"", 0, 0, &fk, &fn);
            size_t walked = 0;
            while (it) {
                int j = fk[0] << 8 | fk[1];
                CHECK(present[j]);
                walked++;
                it = mvcc_tree_seek(&t, fk, fn, 1, &fk, &fn);
            }
            CHECK_EQ_INT(walked, cnt);
        }
    }
    mvcc_tree_clear(&t);
}

TEST(many_keys_scale)
{
    /* 100k puts and point reads: the sorted index keeps each op O(log n); a sanitizer
     * build does this in well under the test budget (an O(n) op would not). */
    mvcc *s = mvcc_new(NULL);
    char k[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(k, sizeof(k), "/service/k%08d", (int)((uint64_t)i * 2654435761u % 100000));
        CHECK_EQ_INT(put(s, k, "v", 0), 0);
        if (i % 1000 == 0)
            mvcc_arena_free(&A);
    }
    CHECK_EQ_INT(mvcc_key_count(s), 100000);
    for (int i = 0; i < 100000; i += 7) {
        snprintf(k, sizeof(k), "/service/k%08d", i);
        CHECK_EQ_INT(get(s, k, NULL, 0).u.range.nkvs, 1);
        if (i % 7000 == 0)
            mvcc_arena_free(&A);
    }
    CHECK_EQ_INT(mvcc_compact(s, mvcc_current_revision(s)), 0);
    mvcc_free(s);
}

/* Freed minimum-size blocks are reused (mvcc_arena.c keeps a few): what comes back is zeroed
 * memory again, and the per-arena limit still counts from 0. */
TEST(arena_reuse_is_clean)
{
    mvcc_arena a;
    mvcc_arena_init(&a, (size_t)64 * 1024);
    unsigned char *p = mvcc_arena_alloc(&a, 1000);
    CHECK(p != NULL);
    memset(p, 0xAB, 1000);
    mvcc_arena_free(&a);
    for (int round = 0; round < 3; round++) {
        mvcc_arena_init(&a, (size_t)64 * 1024);
        int clean = 1;
        for (int i = 0; i < 8; i++) { /* 8 x 8 KiB: several blocks, up to the limit */
            unsigned char *q = mvcc_arena_alloc(&a, 8192);
            if (!q) {
                clean = 0;
                break;
            }
            for (size_t k = 0; k < 8192; k++)
                if (q[k])
                    clean = 0;
            memset(q, 0xCD, 8192);
        }
        CHECK(clean);
        CHECK(mvcc_arena_alloc(&a, 16) == NULL); /* over the 64 KiB limit */
        mvcc_arena_free(&a);
    }
}

int main(void)
{
    mvcc_arena_init(&A, 0);
    RUN(revisions_versions_generations);
    RUN(ranges_prefix_all_limit_sort_filters);
    RUN(compaction);
    RUN(txn_semantics);
    RUN(quota_nospace_and_recovery);
    RUN(history_and_hook);
    RUN(tree_matches_reference);
    RUN(many_keys_scale);
    RUN(arena_reuse_is_clean);
    mvcc_arena_free(&A);
    return check_done();
}
