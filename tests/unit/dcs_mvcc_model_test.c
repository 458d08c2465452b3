/* Model-based check of the MVCC store: random puts, deletes, range deletes, txns, lease
 * grants/revokes and compactions (through encoded store commands) against a reference
 * that keeps the full state of every revision; after every step, ranges at random
 * (historical) revisions must equal the reference exactly, and a second store fed the
 * same commands (with a snapshot round trip in the middle) must end byte-identical. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dcs/store_cmd.h"

#define NKEYS 12
#define STEPS 3000

typedef struct ref_kv {
    int64_t create, mod, version, lease;
    int present;
    int value;
} ref_kv;

static ref_kv hist[STEPS + 2][NKEYS]; /* state at each revision */
static int64_t ref_rev = 1, ref_compact = 0;
static int64_t lease_of_key[NKEYS];
static mvcc_arena A;
static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static char keys[NKEYS][4];
static char vals[64][4];

static int apply_both(dcs_store *a, dcs_store *b, const store_cmd *c, store_result *r)
{
    uint8_t *buf;
    size_t len;
    if (store_cmd_encode(c, 1 << 20, &buf, &len) != 0)
        return -100;
    store_result rb;
    int e = store_apply_bytes(a, buf, len, 0, &A, r);
    int eb = store_apply_bytes(b, buf, len, 0, &A, &rb);
    free(buf);
    return e == eb ? e : -200;
}

static void ref_next(ref_kv *cur)
{
    ref_rev++;
    memcpy(hist[ref_rev], cur, sizeof(hist[0]));
}

static void check_range_at(dcs_store *st, int64_t rev)
{
    int lo = (int)(rnd() % NKEYS), hi = lo + 1 + (int)(rnd() % (NKEYS - lo));
    mvcc_range_req q = {0};
    q.key = (const uint8_t *)keys[lo];
    q.key_len = 2;
    if (hi < NKEYS) {
        q.range_end = (const uint8_t *)keys[hi];
        q.range_end_len = 2;
    } else {
        q.range_end = (const uint8_t *)"";
        q.range_end_len = 1;
    }
    q.revision = rev;
    mvcc_op_resp r;
    CHECK_EQ_INT(mvcc_range(st->kv, &q, &A, &r), 0);
    size_t j = 0;
    for (int k = lo; k < hi; k++) {
        const ref_kv *e = &hist[rev ? rev : ref_rev][k];
        if (!e->present)
            continue;
        CHECK(j < r.u.range.nkvs);
        const mvcc_kv *kv = &r.u.range.kvs[j++];
        CHECK(kv->key_len == 2 && memcmp(kv->key, keys[k], 2) == 0);
        CHECK_EQ_INT(kv->create_revision, e->create);
        CHECK_EQ_INT(kv->mod_revision, e->mod);
        CHECK_EQ_INT(kv->version, e->version);
        CHECK_EQ_INT(kv->lease, e->lease);
        CHECK(kv->value_len == 2 && memcmp(kv->value, vals[e->value], 2) == 0);
    }
    CHECK_EQ_INT(j, r.u.range.nkvs);
}

TEST(random_operations_match_reference)
{
    for (int i = 0; i < NKEYS; i++) {
        keys[i][0] = (char)('a' + i / 26);
        keys[i][1] = (char)('a' + i % 26);
    }
    for (int i = 0; i < 64; i++) {
        vals[i][0] = (char)('0' + i / 10);
        vals[i][1] = (char)('0' + i % 10);
    }
    dcs_store *a = dcs_store_new(NULL), *b = dcs_store_new(NULL);
    ref_kv cur[NKEYS];
    memset(cur, 0, sizeof(cur));
    memcpy(hist[1], cur, sizeof(cur));
    int64_t live_lease = 0;
    for (int step = 0; step < STEPS && ref_rev < STEPS; step++) {
        store_cmd c;
        memset(&c, 0, sizeof(c));
        store_result r;
        int k = (int)(rnd() % NKEYS), v = (int)(rnd() % 64);
        switch (rnd() % 8) {
        case 0:
        case 1:
        case 2: { /* put, sometimes with the live lease */
            int64_t lease = live_lease && rnd() % 3 == 0 ? live_lease : 0;
            c.type = STORE_CMD_PUT;
            c.op.type = MVCC_OP_PUT;
            c.op.u.put.key = (const uint8_t *)keys[k];
            c.op.u.put.key_len = 2;
            c.op.u.put.value = (const uint8_t *)vals[v];
            c.op.u.put.value_len = 2;
            c.op.u.put.lease = lease;
            CHECK_EQ_INT(apply_both(a, b, &c, &r), 0);
            ref_kv *e = &cur[k];
            int64_t nrev = ref_rev + 1;
            e->create = e->present ? e->create : nrev;
            e->version = e->present ? e->version + 1 : 1;
            e->present = 1;
            e->mod = nrev;
            e->value = v;
            e->lease = lease;
            lease_of_key[k] = lease;
            ref_next(cur);
            break;
        }
        case 3: { /* range delete [k, k2) */
            int k2 = k + 1 + (int)(rnd() % 3);
            if (k2 > NKEYS)
                k2 = NKEYS;
            c.type = STORE_CMD_DELETE;
            c.op.type = MVCC_OP_DELETE;
            c.op.u.del.key = (const uint8_t *)keys[k];
            c.op.u.del.key_len = 2;
            if (k2 < NKEYS) {
                c.op.u.del.range_end = (const uint8_t *)keys[k2];
                c.op.u.del.range_end_len = 2;
            } else {
                c.op.u.del.range_end = (const uint8_t *)"";
                c.op.u.del.range_end_len = 1;
            }
            CHECK_EQ_INT(apply_both(a, b, &c, &r), 0);
            int any = 0;
            for (int i = k; i < k2; i++)
                if (cur[i].present) {
                    any = 1;
                    memset(&cur[i], 0, sizeof(cur[i]));
                }
            if (any)
                ref_next(cur);
            CHECK_EQ_INT(r.op.u.del.deleted > 0, any);
            break;
        }
        case 4: { /* txn: if version(k) == x then put k else delete k2 */
            int k2 = (int)(rnd() % NKEYS);
            int64_t want = (int64_t)(rnd() % 3);
            mvcc_compare cmp = {.target = MVCC_TARGET_VERSION, .result = MVCC_CMP_EQUAL};
            cmp.key = (const uint8_t *)keys[k];
            cmp.key_len = 2;
            cmp.number = want;
            mvcc_op sop = {.type = MVCC_OP_PUT}, fop = {.type = MVCC_OP_DELETE};
            sop.u.put.key = (const uint8_t *)keys[k];
            sop.u.put.key_len = 2;
            sop.u.put.value = (const uint8_t *)vals[v];
            sop.u.put.value_len = 2;
            fop.u.del.key = (const uint8_t *)keys[k2];
            fop.u.del.key_len = 2;
            c.type = STORE_CMD_TXN;
            c.op.type = MVCC_OP_TXN;
            c.op.u.txn.compare = &cmp;
            c.op.u.txn.ncompare = 1;
            c.op.u.txn.success = &sop;
            c.op.u.txn.nsuccess = 1;
            c.op.u.txn.failure = &fop;
            c.op.u.txn.nfailure = 1;
            CHECK_EQ_INT(apply_both(a, b, &c, &r), 0);
            int64_t ver = cur[k].present ? cur[k].version : 0;
            CHECK_EQ_INT(r.op.u.txn.succeeded, ver == want);
            if (ver == want) {
                ref_kv *e = &cur[k];
                e->create = e->present ? e->create : ref_rev + 1;
                e->version = e->present ? e->version + 1 : 1;
                e->present = 1;
                e->mod = ref_rev + 1;
                e->value = v;
                e->lease = 0;
                lease_of_key[k] = 0;
                ref_next(cur);
            } else if (cur[k2].present) {
                memset(&cur[k2], 0, sizeof(cur[k2]));
                ref_next(cur);
            }
            break;
        }
        case 5: /* lease: grant one, or revoke the live one */
            if (!live_lease) {
                c.type = STORE_CMD_LEASE_GRANT;
                c.ttl = 60;
                CHECK_EQ_INT(apply_both(a, b, &c, &r), 0);
                live_lease = r.lease_id;
            } else {
                c.type = STORE_CMD_LEASE_REVOKE;
                c.lease_id = live_lease;
                CHECK_EQ_INT(apply_both(a, b, &c, &r), 0);
                int any = 0;
                for (int i = 0; i < NKEYS; i++)
                    if (cur[i].present && cur[i].lease == live_lease) {
                        memset(&cur[i], 0, sizeof(cur[i]));
                        any = 1;
                    }
                if (any)
                    ref_next(cur);
                live_lease = 0;
            }
            break;
        case 6: /* compaction now and then */
            if (rnd() % 10 == 0 && ref_rev - 20 > ref_compact) {
                c.type = STORE_CMD_COMPACT;
                c.revision = ref_rev - 20;
                CHECK_EQ_INT(apply_both(a, b, &c, &r), 0);
                ref_compact = c.revision;
            }
            break;
        default: { /* snapshot round trip of store b */
            if (rnd() % 20)
                break;
            uint8_t *buf;
            size_t len;
            CHECK_EQ_INT(store_snapshot_save(b, &buf, &len), 0);
            dcs_store *nb = store_snapshot_load(buf, len, NULL);
            free(buf);
            CHECK(nb != NULL);
            dcs_store_free(b);
            b = nb;
            break;
        }
        }
        CHECK_EQ_INT(mvcc_current_revision(a->kv), ref_rev);
        check_range_at(a, 0);
        int64_t lo = ref_compact > 1 ? ref_compact : 1;
        check_range_at(a, lo + (int64_t)(rnd() % (uint64_t)(ref_rev - lo + 1)));
        check_range_at(b, 0);
        if (step % 100 == 0)
            mvcc_arena_free(&A);
    }
    uint8_t *sa, *sb;
    size_t la, lb;
    CHECK_EQ_INT(store_snapshot_save(a, &sa, &la), 0);
    CHECK_EQ_INT(store_snapshot_save(b, &sb, &lb), 0);
    CHECK(la == lb && memcmp(sa, sb, la) == 0);
    free(sa);
    free(sb);
    CHECK(ref_rev > STEPS / 3);
    dcs_store_free(a);
    dcs_store_free(b);
}

int main(void)
{
    mvcc_arena_init(&A, 0);
    RUN(random_operations_match_reference);
    mvcc_arena_free(&A);
    return check_done();
}
