/* Leases (grant/revoke/expire/checkpoint, leader-local deadlines, promotion without mass
 * expiry), store commands (encode/decode, strict rejection, deterministic apply) and
 * snapshots (round trip, CRC, restore of lease attachments). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dcs/lease.h"
#include "dcs/store_cmd.h"

static mvcc_arena A;

static store_cmd put_cmd(const char *k, const char *v, int64_t lease)
{
    store_cmd c;
    memset(&c, 0, sizeof(c));
    c.type = STORE_CMD_PUT;
    c.op.type = MVCC_OP_PUT;
    c.op.u.put.key = (const uint8_t *)k;
    c.op.u.put.key_len = strlen(k);
    c.op.u.put.value = (const uint8_t *)v;
    c.op.u.put.value_len = strlen(v);
    c.op.u.put.lease = lease;
    return c;
}

static store_cmd lease_cmd(int type, int64_t id, int64_t ttl)
{
    store_cmd c;
    memset(&c, 0, sizeof(c));
    c.type = type;
    c.lease_id = id;
    c.ttl = ttl;
    return c;
}

/* encode -> decode -> apply, as the Raft path does */
static int apply(dcs_store *st, const store_cmd *c, int64_t now, store_result *r)
{
    uint8_t *buf;
    size_t len;
    memset(r, 0, sizeof(*r));
    if (store_cmd_encode(c, 1 << 20, &buf, &len) != 0)
        return -100;
    int e = store_apply_bytes(st, buf, len, now, &A, r);
    free(buf);
    return e;
}

static int count_keys(dcs_store *st)
{
    mvcc_range_req q = {0};
    q.key = (const uint8_t *)"";
    q.key_len = 0;
    q.range_end = (const uint8_t *)"";
    q.range_end_len = 1;
    q.count_only = true;
    mvcc_op_resp r;
    mvcc_range(st->kv, &q, &A, &r);
    return (int)r.u.range.count;
}

static int events_seen;
static void hook(void *arg, int64_t rev, const mvcc_event *ev, size_t n)
{
    (void)arg;
    (void)rev;
    for (size_t i = 0; i < n; i++)
        if (ev[i].type == MVCC_EVENT_DELETE)
            events_seen++;
}

TEST(lease_lifecycle)
{
    dcs_store *st = dcs_store_new(NULL);
    lessor *l = mvcc_lessor(st->kv);
    lessor_promote(l, 1000, 0);
    store_result r;
    store_cmd c = lease_cmd(STORE_CMD_LEASE_GRANT, 0, 1);
    CHECK_EQ_INT(apply(st, &c, 1000, &r), 0);
    int64_t id = r.lease_id;
    CHECK(id > 0);
    CHECK_EQ_INT(r.ttl, 2); /* raised to the minimum TTL, as etcd */
    c = lease_cmd(STORE_CMD_LEASE_GRANT, id, 30);
    CHECK_EQ_INT(apply(st, &c, 1000, &r), MVCC_ERR_LEASE_EXISTS);
    c = lease_cmd(STORE_CMD_LEASE_GRANT, 5, LEASE_MAX_TTL + 1);
    CHECK_EQ_INT(apply(st, &c, 1000, &r), MVCC_ERR_LEASE_TTL_TOO_BIG);
    c = lease_cmd(STORE_CMD_LEASE_GRANT, 7, 30);
    CHECK_EQ_INT(apply(st, &c, 1000, &r), 0);
    mvcc_set_watch_hook(st->kv, hook, NULL);
    c = put_cmd("/s/leader", "pg1", 7);
    CHECK_EQ_INT(apply(st, &c, 1000, &r), 0);
    c = put_cmd("/s/members/pg1", "{}", 7);
    CHECK_EQ_INT(apply(st, &c, 1000, &r), 0);
    c = put_cmd("/s/config", "{}", 0);
    CHECK_EQ_INT(apply(st, &c, 1000, &r), 0);
    /* moving a key to another lease detaches it from the first */
    c = put_cmd("/s/config", "{}", id);
    CHECK_EQ_INT(apply(st, &c, 1000, &r), 0);
    c = put_cmd("/s/config", "{}", 0);
    CHECK_EQ_INT(apply(st, &c, 1000, &r), 0);
    lease_ttl_info t;
    CHECK_EQ_INT(lessor_timetolive(l, 7, 11500, true, &A, &t), 0);
    CHECK_EQ_INT(t.granted_ttl, 30);
    CHECK_EQ_INT(t.ttl, 19); /* 30 s from 1000 ms, read at 11500 ms: 19.5 truncated */
    CHECK_EQ_INT(t.nkeys, 2);
    CHECK_EQ_INT(lessor_timetolive(l, 99, 0, true, &A, &t), 0);
    CHECK_EQ_INT(t.ttl, -1);
    /* keepalive renews on the leader's clock */
    int64_t ttl;
    CHECK_EQ_INT(lessor_keepalive(l, 7, 20000, &ttl), 0);
    CHECK_EQ_INT(ttl, 30);
    int64_t ids[8];
    CHECK_EQ_INT(lessor_expired(l, 49999, ids, 8), 1); /* only the 2 s lease */
    CHECK_EQ_INT(ids[0], id);
    CHECK_EQ_INT(lessor_expired(l, 50000, ids, 8), 2);
    /* past its deadline a lease cannot be renewed any more */
    CHECK_EQ_INT(lessor_keepalive(l, id, 50000, &ttl), MVCC_ERR_LEASE_NOT_FOUND);
    /* expiry is a command: deletes both keys in one revision */
    int64_t rev = mvcc_current_revision(st->kv);
    c = lease_cmd(STORE_CMD_LEASE_EXPIRE, 7, 0);
    CHECK_EQ_INT(apply(st, &c, 50000, &r), 0);
    CHECK_EQ_INT(mvcc_current_revision(st->kv), rev + 1);
    CHECK_EQ_INT(events_seen, 2);
    CHECK_EQ_INT(count_keys(st), 1);
    CHECK_EQ_INT(apply(st, &c, 50000, &r), 0); /* expire again: not an error */
    c = lease_cmd(STORE_CMD_LEASE_REVOKE, 7, 0);
    CHECK_EQ_INT(apply(st, &c, 50000, &r), MVCC_ERR_LEASE_NOT_FOUND);
    c = lease_cmd(STORE_CMD_LEASE_REVOKE, id, 0);
    CHECK_EQ_INT(apply(st, &c, 50000, &r), 0);
    CHECK_EQ_INT(mvcc_current_revision(st->kv), rev + 1); /* no keys: no new revision */
    CHECK_EQ_INT(lessor_count(l), 0);
    dcs_store_free(st);
}

TEST(promotion_refreshes_instead_of_mass_expiry)
{
    dcs_store *st = dcs_store_new(NULL);
    lessor *l = mvcc_lessor(st->kv);
    store_result r;
    /* a follower applies grants without tracking deadlines */
    for (int i = 1; i <= 3; i++) {
        store_cmd c = lease_cmd(STORE_CMD_LEASE_GRANT, i, 30);
        CHECK_EQ_INT(apply(st, &c, 0, &r), 0);
    }
    store_cmd cp = lease_cmd(STORE_CMD_LEASE_CHECKPOINT, 2, 5);
    CHECK_EQ_INT(apply(st, &cp, 0, &r), 0);
    int64_t ids[8];
    CHECK(!lessor_is_primary(l));
    CHECK_EQ_INT(lessor_expired(l, INT64_MAX / 2, ids, 8), 0);
    /* becoming leader much later: every lease gets its (remaining) TTL from now */
    lessor_promote(l, 1000000, 1000);
    CHECK_EQ_INT(lessor_expired(l, 1000000, ids, 8), 0);
    CHECK_EQ_INT(lessor_expired(l, 1000000 + 5999, ids, 8), 0);
    CHECK_EQ_INT(lessor_expired(l, 1000000 + 6000, ids, 8), 1); /* checkpointed 5 s + 1 s */
    CHECK_EQ_INT(ids[0], 2);
    CHECK_EQ_INT(lessor_expired(l, 1000000 + 31000, ids, 8), 3);
    lessor_demote(l);
    CHECK_EQ_INT(lessor_expired(l, INT64_MAX / 2, ids, 8), 0);
    dcs_store_free(st);
}

TEST(auto_ids_are_deterministic)
{
    dcs_store *a = dcs_store_new(NULL), *b = dcs_store_new(NULL);
    store_result ra, rb;
    for (int i = 0; i < 50; i++) {
        store_cmd c = lease_cmd(STORE_CMD_LEASE_GRANT, 0, 10);
        CHECK_EQ_INT(apply(a, &c, i, &ra), 0);
        CHECK_EQ_INT(apply(b, &c, 1000000 + i, &rb), 0); /* different clocks */
        CHECK_EQ_INT(ra.lease_id, rb.lease_id);
        CHECK(ra.lease_id > 0);
    }
    dcs_store_free(a);
    dcs_store_free(b);
}

static void build_history(dcs_store *st, int64_t now)
{
    store_result r;
    store_cmd c = lease_cmd(STORE_CMD_LEASE_GRANT, 0, 60);
    apply(st, &c, now, &r);
    int64_t id = r.lease_id;
    char k[32], v[32];
    for (int i = 0; i < 40; i++) {
        snprintf(k, sizeof(k), "/k/%02d", i % 13);
        snprintf(v, sizeof(v), "v%d", i);
        c = put_cmd(k, v, i % 3 == 0 ? id : 0);
        apply(st, &c, now, &r);
    }
    store_cmd d;
    memset(&d, 0, sizeof(d));
    d.type = STORE_CMD_DELETE;
    d.op.type = MVCC_OP_DELETE;
    d.op.u.del.key = (const uint8_t *)"/k/05";
    d.op.u.del.key_len = 5;
    d.op.u.del.range_end = (const uint8_t *)"/k/08";
    d.op.u.del.range_end_len = 5;
    apply(st, &d, now, &r);
    c = lease_cmd(STORE_CMD_COMPACT, 0, 0);
    c.revision = 20;
    apply(st, &c, now, &r);
    c = lease_cmd(STORE_CMD_LEASE_CHECKPOINT, id, 17);
    apply(st, &c, now, &r);
    store_cmd v2;
    memset(&v2, 0, sizeof(v2));
    v2.type = STORE_CMD_V2;
    v2.v2.method = V2_PUT;
    v2.v2.key = "/service/b/leader";
    v2.v2.key_len = strlen(v2.v2.key);
    v2.v2.value = "pg1";
    v2.v2.value_len = 3;
    v2.v2.prev_exist = -1;
    v2.v2.has_ttl = true;
    v2.v2.ttl = 30;
    v2.v2.time_ms = 1700000000000;
    apply(st, &v2, now, &r);
}

TEST(apply_is_deterministic_and_snapshot_round_trips)
{
    dcs_store *a = dcs_store_new(NULL), *b = dcs_store_new(NULL);
    lessor_promote(mvcc_lessor(a->kv), 0, 0); /* leader-local state must not matter */
    build_history(a, 5);
    build_history(b, 999999);
    uint8_t *sa, *sb, *sc;
    size_t la, lb, lc;
    CHECK_EQ_INT(store_snapshot_save(a, &sa, &la), 0);
    CHECK_EQ_INT(store_snapshot_save(b, &sb, &lb), 0);
    CHECK_EQ_INT(la, lb);
    CHECK(memcmp(sa, sb, la) == 0);
    dcs_store *c = store_snapshot_load(sa, la, NULL);
    CHECK(c != NULL);
    CHECK_EQ_INT(store_snapshot_save(c, &sc, &lc), 0);
    CHECK_EQ_INT(lc, la);
    CHECK(memcmp(sa, sc, la) == 0);
    CHECK_EQ_INT(mvcc_current_revision(c->kv), mvcc_current_revision(a->kv));
    CHECK_EQ_INT(mvcc_compact_revision(c->kv), 20);
    /* lease attachments survive: revoking the lease deletes the same keys */
    int64_t ids[4];
    lessor_promote(mvcc_lessor(c->kv), 0, 0);
    CHECK_EQ_INT(lessor_expired(mvcc_lessor(c->kv), 16999, ids, 4), 0);
    CHECK_EQ_INT(lessor_expired(mvcc_lessor(c->kv), 17000, ids, 4), 1); /* checkpoint kept */
    store_result r;
    store_cmd rv = lease_cmd(STORE_CMD_LEASE_REVOKE, ids[0], 0);
    CHECK_EQ_INT(apply(c, &rv, 0, &r), 0);
    CHECK_EQ_INT(apply(a, &rv, 0, &r), 0);
    CHECK_EQ_INT(count_keys(c), count_keys(a));
    /* every corruption is detected: flip each byte in turn */
    for (size_t i = 0; i < la; i++) {
        sa[i] ^= 0x5a;
        dcs_store *bad = store_snapshot_load(sa, la, NULL);
        CHECK(bad == NULL);
        sa[i] ^= 0x5a;
    }
    CHECK(store_snapshot_load(sa, la - 1, NULL) == NULL);
    free(sa);
    free(sb);
    free(sc);
    dcs_store_free(a);
    dcs_store_free(b);
    dcs_store_free(c);
}

TEST(command_decoder_is_strict)
{
    mvcc_compare cmp = {.target = MVCC_TARGET_VALUE, .result = MVCC_CMP_EQUAL};
    cmp.key = (const uint8_t *)"k";
    cmp.key_len = 1;
    cmp.value = (const uint8_t *)"v";
    cmp.value_len = 1;
    store_cmd in = put_cmd("k", "v", 0);
    mvcc_op succ = in.op;
    store_cmd t;
    memset(&t, 0, sizeof(t));
    t.type = STORE_CMD_TXN;
    t.op.type = MVCC_OP_TXN;
    t.op.u.txn.compare = &cmp;
    t.op.u.txn.ncompare = 1;
    t.op.u.txn.success = &succ;
    t.op.u.txn.nsuccess = 1;
    uint8_t *buf;
    size_t len;
    CHECK_EQ_INT(store_cmd_encode(&t, 1 << 20, &buf, &len), 0);
    store_cmd out;
    CHECK_EQ_INT(store_cmd_decode(buf, len, &A, &out), 0);
    CHECK_EQ_INT(out.type, STORE_CMD_TXN);
    CHECK_EQ_INT(out.op.u.txn.ncompare, 1);
    CHECK_EQ_INT(out.op.u.txn.compare[0].target, MVCC_TARGET_VALUE);
    CHECK(out.op.u.txn.success[0].u.put.value_len == 1 &&
          out.op.u.txn.success[0].u.put.value[0] == 'v');
    for (size_t i = 0; i < len; i++) /* every truncation fails */
        CHECK(store_cmd_decode(buf, i, &A, &out) != 0);
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    CHECK(store_cmd_decode(longer, len + 1, &A, &out) != 0); /* trailing byte */
    longer[0] = 2;
    CHECK(store_cmd_decode(longer, len, &A, &out) != 0); /* unknown version */
    free(longer);
    free(buf);
    CHECK(store_cmd_encode(&t, 4, &buf, &len) != 0); /* over the size bound */
    cmp.target = 99;
    CHECK(store_cmd_encode(&t, 1 << 20, &buf, &len) != 0); /* invalid enum */
    /* a bad command changes nothing */
    dcs_store *st = dcs_store_new(NULL);
    store_result r;
    uint8_t junk[] = {1, 1, 1, 200};
    CHECK_EQ_INT(store_apply_bytes(st, junk, sizeof(junk), 0, &A, &r), MVCC_ERR_BAD_COMMAND);
    CHECK_EQ_INT(mvcc_current_revision(st->kv), 1);
    dcs_store_free(st);
}

TEST(extreme_lease_ids)
{
    dcs_store *st = dcs_store_new(NULL);
    store_result r;
    int64_t want[] = {INT64_MIN, -1, 0x7fffffffffffffffLL};
    for (int i = 0; i < 3; i++) {
        store_cmd c = lease_cmd(STORE_CMD_LEASE_GRANT, want[i], 10);
        CHECK_EQ_INT(apply(st, &c, 0, &r), 0);
    }
    int64_t *ids;
    size_t n;
    CHECK_EQ_INT(lessor_list(mvcc_lessor(st->kv), &A, &ids, &n), 0);
    CHECK_EQ_INT(n, 3);
    for (int i = 0; i < 3; i++)
        CHECK(ids[i] == want[i]); /* ascending, the minimum included */
    uint8_t *buf;
    size_t len;
    CHECK_EQ_INT(store_snapshot_save(st, &buf, &len), 0);
    dcs_store *back = store_snapshot_load(buf, len, NULL);
    CHECK(back != NULL);
    CHECK_EQ_INT(lessor_count(mvcc_lessor(back->kv)), 3);
    free(buf);
    dcs_store_free(back);
    dcs_store_free(st); /* LeakSanitizer checks that every lease was freed */
}

int main(void)
{
    mvcc_arena_init(&A, 0);
    RUN(lease_lifecycle);
    RUN(promotion_refreshes_instead_of_mass_expiry);
    RUN(auto_ids_are_deterministic);
    RUN(apply_is_deterministic_and_snapshot_round_trips);
    RUN(command_decoder_is_strict);
    RUN(extreme_lease_ids);
    mvcc_arena_free(&A);
    return check_done();
}
