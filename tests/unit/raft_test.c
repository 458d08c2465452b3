/* Raft core: the classic scenarios in table form (Raft paper Figure 7 and Figure 8, stale
 * candidates cannot win, a partitioned old leader cannot commit), plus PreVote,
 * CheckQuorum, ReadIndex, leadership transfer, membership rules and the wire codec.
 *
 * A tiny in-memory network drives the cores: every message goes through
 * raft_msg_encode/raft_msg_decode, storage is "persisted" by taking the Ready batch. */
#include "check.h"
#include "dcs/raft.h"

#include <stdlib.h>

#define MAXN 6
#define QCAP 4096

typedef struct qmsg {
    uint64_t to;
    uint8_t *buf;
    size_t len;
} qmsg;

typedef struct net {
    raft *n[MAXN];
    int count;
    bool cut[MAXN][MAXN]; /* cut[a][b]: a's messages to b are lost */
    qmsg q[QCAP];
    size_t qn;
    uint64_t applied[MAXN];
    uint64_t reads_ctx[MAXN], reads_index[MAXN];
    int reads_ok[MAXN];
    /* optional hook: may rewrite a message before it is queued; false drops it */
    bool (*filter)(raft_msg *m);
    int rejects;          /* APPEND_RESP rejections delivered */
    int appends_to[MAXN]; /* APPEND messages with entries queued per destination */
} net;

static raft_entry ents_buf[RAFT_MSG_MAX_ENTRIES];

static void net_drain(net *t, int i);

/* Member i+1 of an n-voter cluster with log terms[0..nlog) and hard state term. */
static raft *make_node(uint64_t id, int voters, const uint64_t *terms, int nlog, uint64_t hs_term,
                       bool pre_vote, bool check_quorum)
{
    raft_config cfg;
    raft_config_default(&cfg);
    cfg.id = id;
    cfg.seed = id * 7919;
    cfg.pre_vote = pre_vote;
    cfg.check_quorum = check_quorum;
    raft_entry e[32];
    for (int i = 0; i < nlog; i++)
        e[i] = (raft_entry){.term = terms[i], .index = (uint64_t)i + 1};
    raft_storage st = {.hs = {.term = hs_term}, .entries = e, .n_entries = (size_t)nlog};
    st.snapshot.conf.n = (uint32_t)voters;
    for (int i = 0; i < voters; i++)
        st.snapshot.conf.ids[i] = (uint64_t)i + 1;
    raft *r;
    char err[200];
    if (raft_new(&cfg, &st, &r, err, sizeof(err)) != 0) {
        printf("# raft_new: %s\n", err);
        return NULL;
    }
    return r;
}

static void net_free(net *t)
{
    for (int i = 0; i < t->count; i++)
        raft_free(t->n[i]);
    for (size_t i = 0; i < t->qn; i++)
        free(t->q[i].buf);
    t->qn = 0;
}

static void enqueue(net *t, const raft_msg *m0)
{
    raft_msg m = *m0;
    if (t->filter && !t->filter(&m))
        return;
    if (t->cut[m.from - 1][m.to - 1] || t->qn == QCAP)
        return;
    if (m.type == RAFT_MSG_APPEND && m.n_entries)
        t->appends_to[m.to - 1]++;
    size_t len = raft_msg_encoded_len(&m);
    uint8_t *b = malloc(len);
    if (!b || raft_msg_encode(&m, b, len) != len) {
        free(b);
        return;
    }
    t->q[t->qn++] = (qmsg){.to = m.to, .buf = b, .len = len};
}

static void net_drain(net *t, int i)
{
    raft_ready rd;
    while (raft_get_ready(t->n[i], &rd)) {
        for (size_t k = 0; k < rd.n_msgs; k++)
            enqueue(t, &rd.msgs[k]);
        if (rd.snapshot)
            t->applied[i] = rd.snapshot->index;
        if (rd.n_committed)
            t->applied[i] = rd.committed[rd.n_committed - 1].index;
        for (size_t k = 0; k < rd.n_reads; k++) {
            t->reads_ctx[i] = rd.reads[k].ctx;
            t->reads_index[i] = rd.reads[k].index;
            t->reads_ok[i] = rd.reads[k].ok;
        }
        raft_advance(t->n[i], &rd);
    }
}

/* Delivers queued messages (FIFO) until none are left or `max` were delivered. */
static int net_run(net *t, int max)
{
    int delivered = 0;
    for (int i = 0; i < t->count; i++)
        net_drain(t, i);
    while (t->qn && delivered < max) {
        qmsg q = t->q[0];
        memmove(t->q, t->q + 1, (t->qn - 1) * sizeof(*t->q));
        t->qn--;
        raft_msg m;
        char err[200];
        int rc =
            raft_msg_decode(q.buf, q.len, &m, ents_buf, RAFT_MSG_MAX_ENTRIES, err, sizeof(err));
        if (rc == 0 && m.type == RAFT_MSG_APPEND_RESP && m.reject)
            t->rejects++;
        if (rc == 0 && m.to >= 1 && (int)m.to <= t->count) {
            raft_step(t->n[m.to - 1], &m);
            net_drain(t, (int)m.to - 1);
        }
        free(q.buf);
        delivered++;
    }
    return delivered;
}

/* Ticks member i until it starts a campaign, then runs the network. */
static void campaign(net *t, int i)
{
    for (int k = 0; k < 40 && raft_role(t->n[i]) == RAFT_FOLLOWER; k++) {
        raft_tick(t->n[i]);
        net_drain(t, i);
    }
    net_run(t, 10000);
}

/* Ticks every member once (heartbeats, timeouts) and runs the network. */
static void tick_all(net *t)
{
    for (int i = 0; i < t->count; i++) {
        raft_tick(t->n[i]);
        net_drain(t, i);
    }
    net_run(t, 10000);
}

static bool log_equals(raft *r, const uint64_t *terms, int n)
{
    if (raft_last_index(r) != (uint64_t)n)
        return false;
    for (int i = 0; i < n; i++)
        if (raft_term_at(r, (uint64_t)i + 1) != terms[i])
            return false;
    return true;
}

/* ---------------------------------------------------------------- Figure 7 */

/* The leader for term 8 brings every follower of Figure 7 to its own log. */
TEST(figure7_leader_repairs_every_follower_log)
{
    static const uint64_t leader[] = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6};
    static const struct {
        const char *name;
        uint64_t log[12];
        int n;
    } rows[] = {
        {"a: missing one entry", {1, 1, 1, 4, 4, 5, 5, 6, 6}, 9},
        {"b: missing many", {1, 1, 1, 4}, 4},
        {"c: one extra of term 6", {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6}, 11},
        {"d: extra entries of term 7", {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7}, 12},
        {"e: extra entries of term 4", {1, 1, 1, 4, 4, 4, 4}, 7},
        {"f: entries of terms 2 and 3", {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3}, 11},
    };
    for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
        net t = {.count = 3};
        uint64_t hs = rows[k].log[rows[k].n - 1] > 7 ? rows[k].log[rows[k].n - 1] : 7;
        t.n[0] = make_node(1, 3, leader, 10, 7, true, true);
        t.n[1] = make_node(2, 3, rows[k].log, rows[k].n, hs, true, true);
        t.n[2] = make_node(3, 3, leader, 10, 7, true, true);
        CHECK(t.n[0] && t.n[1] && t.n[2]);
        campaign(&t, 0);
        printf("# %s\n", rows[k].name);
        CHECK_EQ_INT(raft_role(t.n[0]), RAFT_LEADER);
        CHECK_EQ_INT(raft_term(t.n[0]), 8);
        static const uint64_t want[] = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 8};
        tick_all(&t);
        CHECK(log_equals(t.n[1], want, 11));
        /* fast back-off: whole conflicting terms are skipped, not one entry per round trip */
        printf("#   rejections before the logs matched: %d\n", t.rejects);
        CHECK(t.rejects <= 3);
        CHECK_EQ_INT(raft_commit_index(t.n[1]), 11);
        net_free(&t);
    }
}

/* ---------------------------------------------------------------- Figure 8 */

static bool drop_current_term_entries(raft_msg *m)
{
    /* keep only the entries of term 2: the new leader's no-op (term 4) "gets lost" */
    if (m->type == RAFT_MSG_APPEND) {
        uint32_t k = 0;
        while (k < m->n_entries && m->entries[k].term < 4)
            k++;
        m->n_entries = k;
    }
    return true;
}

/* S1 leads term 4 and replicates the term-2 entry at index 2 to a majority. Counting
 * replicas must NOT commit it (S5, with a term-3 entry at index 2, could still win and
 * overwrite it); it commits only together with an entry of term 4 (Raft §5.4.2). */
TEST(figure8_prior_term_entry_not_committed_by_counting)
{
    static const struct {
        const char *name;
        bool current_term_entry_arrives;
        uint64_t want_commit;
    } rows[] = {
        {"only the term-2 entry reaches S2/S3", false, 0},
        {"the term-4 no-op arrives too", true, 3},
    };
    for (size_t k = 0; k < 2; k++) {
        net t = {.count = 5};
        static const uint64_t l12[] = {1, 2}, l1[] = {1}, l13[] = {1, 3};
        t.n[0] = make_node(1, 5, l12, 2, 3, false, false);
        t.n[1] = make_node(2, 5, l12, 2, 3, false, false);
        t.n[2] = make_node(3, 5, l1, 1, 3, false, false);
        t.n[3] = make_node(4, 5, l1, 1, 3, false, false);
        t.n[4] = make_node(5, 5, l13, 2, 3, false, false);
        for (int i = 0; i < 5; i++) /* S5 is down */
            t.cut[i][4] = t.cut[4][i] = true;
        t.filter = rows[k].current_term_entry_arrives ? NULL : drop_current_term_entries;
        campaign(&t, 0);
        printf("# %s\n", rows[k].name);
        CHECK_EQ_INT(raft_role(t.n[0]), RAFT_LEADER);
        CHECK_EQ_INT(raft_term(t.n[0]), 4);
        CHECK_EQ_INT(raft_term_at(t.n[2], 2), 2); /* replicated on S1, S2, S3 */
        CHECK_EQ_INT(raft_commit_index(t.n[0]), rows[k].want_commit);
        if (!rows[k].current_term_entry_arrives) {
            /* S1 crashes; S5 wins term 5 with S2, S3, S4 and overwrites index 2: legal
             * precisely because it was never committed */
            for (int i = 0; i < 5; i++) {
                t.cut[i][0] = t.cut[0][i] = true;
                t.cut[i][4] = t.cut[4][i] = false;
            }
            t.filter = NULL;
            /* its first try (term 4) meets voters that already voted in term 4 */
            for (int a = 0; a < 3 && raft_role(t.n[4]) != RAFT_LEADER; a++)
                campaign(&t, 4);
            CHECK_EQ_INT(raft_role(t.n[4]), RAFT_LEADER);
            tick_all(&t);
            CHECK_EQ_INT(raft_term_at(t.n[2], 2), 3);
            CHECK(raft_commit_index(t.n[4]) >= 3);
        }
        net_free(&t);
    }
}

/* ---------------------------------------------------------------- elections */

/* A candidate whose log is not at least as up-to-date as a majority's cannot win. */
TEST(stale_log_candidate_cannot_win)
{
    static const struct {
        const char *name;
        uint64_t cand[4];
        int cn;
        uint64_t voter[4];
        int vn;
        bool wins;
    } rows[] = {
        {"equal logs", {1, 1}, 2, {1, 1}, 2, true},
        {"shorter log, same last term", {1}, 1, {1, 1}, 2, false},
        {"longer log, lower last term", {1, 1, 1}, 3, {1, 2}, 2, false},
        {"shorter log, higher last term", {1, 2}, 2, {1, 1, 1}, 3, true},
        {"empty log against entries", {0}, 0, {1}, 1, false},
    };
    for (int pv = 0; pv < 2; pv++)
        for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
            net t = {.count = 3};
            t.n[0] = make_node(1, 3, rows[k].cand, rows[k].cn, 2, pv, pv);
            t.n[1] = make_node(2, 3, rows[k].voter, rows[k].vn, 2, pv, pv);
            t.n[2] = make_node(3, 3, rows[k].voter, rows[k].vn, 2, pv, pv);
            campaign(&t, 0);
            printf("# %s (pre_vote %d)\n", rows[k].name, pv);
            CHECK_EQ_INT(raft_role(t.n[0]) == RAFT_LEADER, rows[k].wins);
            net_free(&t);
        }
}

/* An old leader cut off with a minority keeps its term but cannot commit; the majority
 * elects a new leader and commits; after healing the old entry is gone. With
 * CheckQuorum the old leader also steps down by itself. */
TEST(partitioned_old_leader_cannot_commit)
{
    for (int cq = 0; cq < 2; cq++) {
        net t = {.count = 5};
        for (int i = 0; i < 5; i++)
            t.n[i] = make_node((uint64_t)i + 1, 5, NULL, 0, 0, cq, cq);
        campaign(&t, 0);
        CHECK_EQ_INT(raft_role(t.n[0]), RAFT_LEADER);
        uint64_t c0 = raft_commit_index(t.n[0]);
        for (int a = 0; a < 5; a++)
            for (int b = 0; b < 5; b++)
                t.cut[a][b] = (a < 2) != (b < 2);
        uint64_t idx;
        CHECK_EQ_INT(raft_propose(t.n[0], "old", 3, &idx), 0);
        for (int k = 0; k < 30; k++)
            tick_all(&t);
        printf("# check_quorum %d\n", cq);
        CHECK_EQ_INT(raft_commit_index(t.n[0]), c0);
        CHECK(raft_commit_index(t.n[1]) <= c0);
        CHECK_EQ_INT(raft_role(t.n[0]) == RAFT_LEADER, !cq);
        int leaders = 0;
        for (int i = 2; i < 5; i++)
            leaders += raft_role(t.n[i]) == RAFT_LEADER;
        CHECK_EQ_INT(leaders, 1);
        for (int i = 2; i < 5; i++)
            if (raft_role(t.n[i]) == RAFT_LEADER)
                CHECK_EQ_INT(raft_propose(t.n[i], "new", 3, NULL), 0);
        for (int k = 0; k < 3; k++)
            tick_all(&t);
        CHECK(raft_commit_index(t.n[2]) > c0);
        memset(t.cut, 0, sizeof(t.cut));
        for (int k = 0; k < 30; k++)
            tick_all(&t);
        CHECK(raft_role(t.n[0]) != RAFT_LEADER);
        const raft_entry *e = raft_entry_at(t.n[0], idx);
        CHECK(e && !(e->len == 3 && memcmp(e->data, "old", 3) == 0));
        CHECK_EQ_INT(raft_commit_index(t.n[0]), raft_commit_index(t.n[2]));
        net_free(&t);
    }
}

/* PreVote: a member isolated for a long time does not inflate its term, so it does not
 * depose the leader when it comes back. Without PreVote it does. */
TEST(prevote_keeps_isolated_member_from_disrupting)
{
    for (int pv = 0; pv < 2; pv++) {
        net t = {.count = 3};
        for (int i = 0; i < 3; i++)
            t.n[i] = make_node((uint64_t)i + 1, 3, NULL, 0, 0, pv, pv);
        campaign(&t, 0);
        CHECK_EQ_INT(raft_role(t.n[0]), RAFT_LEADER);
        uint64_t term = raft_term(t.n[0]);
        for (int i = 0; i < 3; i++)
            t.cut[i][2] = t.cut[2][i] = true;
        for (int k = 0; k < 100; k++)
            tick_all(&t);
        printf("# pre_vote %d: isolated term %llu\n", pv, (unsigned long long)raft_term(t.n[2]));
        if (pv)
            CHECK_EQ_INT(raft_term(t.n[2]), term);
        else
            CHECK(raft_term(t.n[2]) > term);
        memset(t.cut, 0, sizeof(t.cut));
        for (int k = 0; k < 25; k++)
            tick_all(&t);
        /* with PreVote the same leader in the same term; without, a new election */
        CHECK_EQ_INT(raft_term(t.n[0]) == term, pv);
        CHECK_EQ_INT(raft_role(t.n[0]) == RAFT_LEADER, pv || raft_leader(t.n[1]) == 1);
        net_free(&t);
    }
}

/* ---------------------------------------------------------------- reads, transfer, membership */

TEST(read_index_on_leader_and_follower)
{
    net t = {.count = 3};
    for (int i = 0; i < 3; i++)
        t.n[i] = make_node((uint64_t)i + 1, 3, NULL, 0, 0, true, true);
    campaign(&t, 0);
    CHECK_EQ_INT(raft_propose(t.n[0], "x", 1, NULL), 0);
    net_run(&t, 10000);
    uint64_t c = raft_commit_index(t.n[0]);
    CHECK_EQ_INT(raft_read_index(t.n[0], 77), 0);
    CHECK_EQ_INT(t.reads_ok[0], 0); /* needs a heartbeat round first */
    net_run(&t, 10000);
    CHECK_EQ_INT(t.reads_ctx[0], 77);
    CHECK_EQ_INT(t.reads_ok[0], 1);
    CHECK_EQ_INT(t.reads_index[0], c);
    CHECK_EQ_INT(raft_read_index(t.n[1], 78), 0); /* forwarded to the leader */
    net_run(&t, 10000);
    CHECK_EQ_INT(t.reads_ctx[1], 78);
    CHECK_EQ_INT(t.reads_ok[1], 1);
    CHECK_EQ_INT(t.reads_index[1], c);
    /* a leader cut off from everyone cannot confirm a read */
    for (int i = 1; i < 3; i++)
        t.cut[0][i] = t.cut[i][0] = true;
    t.reads_ctx[0] = 0;
    CHECK_EQ_INT(raft_read_index(t.n[0], 79), 0);
    net_run(&t, 10000);
    CHECK(t.reads_ctx[0] != 79 || !t.reads_ok[0]);
    net_free(&t);
}

TEST(leadership_transfer)
{
    net t = {.count = 3};
    for (int i = 0; i < 3; i++)
        t.n[i] = make_node((uint64_t)i + 1, 3, NULL, 0, 0, true, true);
    campaign(&t, 0);
    CHECK_EQ_INT(raft_transfer_leader(t.n[0], 3), 0);
    CHECK_EQ_INT(raft_propose(t.n[0], "x", 1, NULL), RAFT_ETRANSFER);
    net_run(&t, 10000);
    CHECK_EQ_INT(raft_role(t.n[2]), RAFT_LEADER);
    CHECK_EQ_INT(raft_role(t.n[0]), RAFT_FOLLOWER);
    CHECK_EQ_INT(raft_leader(t.n[0]), 3);
    CHECK_EQ_INT(raft_transfer_leader(t.n[2], 9), RAFT_EINVAL);
    net_free(&t);
}

TEST(membership_one_change_at_a_time)
{
    net t = {.count = 4};
    for (int i = 0; i < 3; i++)
        t.n[i] = make_node((uint64_t)i + 1, 3, NULL, 0, 0, true, true);
    t.n[3] = make_node(4, 0, NULL, 0, 0, true, true); /* joins with no configuration */
    CHECK(t.n[3]);
    campaign(&t, 0);
    uint64_t idx;
    CHECK_EQ_INT(raft_change_member(t.n[0], RAFT_CONF_ADD, 4, &idx), 0);
    CHECK_EQ_INT(raft_change_member(t.n[0], RAFT_CONF_REMOVE, 2, NULL), RAFT_ECONFPENDING);
    CHECK_EQ_INT(raft_get_conf(t.n[0])->n, 4); /* in force once in the log */
    net_run(&t, 10000);
    tick_all(&t);
    CHECK(raft_commit_index(t.n[0]) >= idx);
    CHECK_EQ_INT(raft_get_conf(t.n[3])->n, 4);
    CHECK_EQ_INT(raft_commit_index(t.n[3]), raft_commit_index(t.n[0]));
    CHECK_EQ_INT(raft_change_member(t.n[0], RAFT_CONF_ADD, 4, NULL), RAFT_EINVAL);
    /* the leader removes itself: it steps down once the change is committed */
    CHECK_EQ_INT(raft_change_member(t.n[0], RAFT_CONF_REMOVE, 1, NULL), 0);
    for (int k = 0; k < 40; k++)
        tick_all(&t);
    CHECK(raft_role(t.n[0]) != RAFT_LEADER);
    int leaders = 0;
    for (int i = 1; i < 4; i++)
        leaders += raft_role(t.n[i]) == RAFT_LEADER;
    CHECK_EQ_INT(leaders, 1);
    net_free(&t);
}

/* Pipelining is bounded by max_inflight and entries are batched up to max_msg_bytes. */
TEST(pipelining_is_bounded_and_batched)
{
    net t = {.count = 3};
    for (int i = 0; i < 3; i++)
        t.n[i] = make_node((uint64_t)i + 1, 3, NULL, 0, 0, true, true);
    campaign(&t, 0);
    CHECK_EQ_INT(raft_role(t.n[0]), RAFT_LEADER);
    tick_all(&t);       /* followers move to the replicate state */
    t.cut[1][0] = true; /* follower 2's acknowledgements are lost */
    memset(t.appends_to, 0, sizeof(t.appends_to));
    char big[600];
    memset(big, 'x', sizeof(big));
    for (int k = 0; k < 200; k++) {
        CHECK_EQ_INT(raft_propose(t.n[0], big, sizeof(big), NULL), 0);
        net_run(&t, 10000);
    }
    /* default max_inflight is 64: no more unacknowledged appends than that */
    printf("# appends to the silent follower: %d, to the healthy one: %d\n", t.appends_to[1],
           t.appends_to[2]);
    CHECK(t.appends_to[1] <= 64);
    CHECK(t.appends_to[2] >= 100);
    CHECK_EQ_INT(raft_commit_index(t.n[0]), raft_last_index(t.n[0]));
    /* follower 2 misses 200 more entries entirely; once back it catches up in batches of
     * up to 1 MiB (120 KB here), not one message per entry */
    t.cut[0][1] = true;
    for (int k = 0; k < 200; k++) {
        CHECK_EQ_INT(raft_propose(t.n[0], big, sizeof(big), NULL), 0);
        net_run(&t, 10000);
    }
    t.cut[1][0] = t.cut[0][1] = false;
    memset(t.appends_to, 0, sizeof(t.appends_to));
    for (int k = 0; k < 25; k++)
        tick_all(&t);
    CHECK_EQ_INT(raft_last_index(t.n[1]), raft_last_index(t.n[0]));
    printf("# catch-up appends: %d\n", t.appends_to[1]);
    CHECK(t.appends_to[1] <= 5);
    net_free(&t);
}

/* Proposals between two Ready batches leave as ONE append per follower (with the commit
 * index), not one per proposal: under concurrent clients that was ~7 appends, and as many
 * acknowledgements, per batch. */
TEST(proposals_of_one_batch_share_an_append)
{
    net t = {.count = 3};
    for (int i = 0; i < 3; i++)
        t.n[i] = make_node((uint64_t)i + 1, 3, NULL, 0, 0, true, true);
    campaign(&t, 0);
    CHECK_EQ_INT(raft_role(t.n[0]), RAFT_LEADER);
    tick_all(&t);
    net_run(&t, 10000);
    memset(t.appends_to, 0, sizeof(t.appends_to));
    uint64_t first = raft_last_index(t.n[0]) + 1;
    for (int k = 0; k < 10; k++)
        CHECK_EQ_INT(raft_propose(t.n[0], "v", 1, NULL), 0);
    net_drain(&t, 0); /* one Ready of the leader */
    CHECK_EQ_INT(t.appends_to[1], 1);
    CHECK_EQ_INT(t.appends_to[2], 1);
    net_run(&t, 10000);
    CHECK(raft_commit_index(t.n[0]) >= first + 9);
    CHECK_EQ_INT(raft_commit_index(t.n[1]), raft_commit_index(t.n[0])); /* commit carried */
    net_free(&t);
}

TEST(calls_between_ready_and_advance_are_refused)
{
    raft *r = make_node(1, 1, NULL, 0, 0, true, true);
    CHECK(r);
    for (int k = 0; k < 40 && raft_role(r) != RAFT_LEADER; k++) {
        raft_tick(r);
        raft_ready rd;
        while (raft_get_ready(r, &rd))
            raft_advance(r, &rd);
    }
    CHECK_EQ_INT(raft_role(r), RAFT_LEADER);
    CHECK_EQ_INT(raft_propose(r, "a", 1, NULL), 0);
    raft_ready rd;
    CHECK(raft_get_ready(r, &rd));
    CHECK_EQ_INT(raft_propose(r, "b", 1, NULL), RAFT_EBUSY);
    CHECK_EQ_INT(raft_tick(r), RAFT_EBUSY);
    raft_advance(r, &rd);
    CHECK_EQ_INT(raft_propose(r, "b", 1, NULL), 0);
    raft_free(r);
}

TEST(bad_storage_is_refused_with_a_reason)
{
    raft_config cfg;
    raft_config_default(&cfg);
    cfg.id = 1;
    raft_entry e[2] = {{.term = 2, .index = 1}, {.term = 1, .index = 2}};
    raft_storage st = {.entries = e, .n_entries = 2};
    raft *r = NULL;
    char err[200] = "";
    CHECK_EQ_INT(raft_new(&cfg, &st, &r, err, sizeof(err)), RAFT_ECORRUPT);
    CHECK(strstr(err, "entry 1") != NULL);
    e[1].term = 2;
    st.hs.commit = 5;
    CHECK_EQ_INT(raft_new(&cfg, &st, &r, err, sizeof(err)), RAFT_ECORRUPT);
    CHECK(strstr(err, "commit index 5") != NULL);
    cfg.id = 0;
    CHECK_EQ_INT(raft_new(&cfg, &st, &r, err, sizeof(err)), RAFT_EINVAL);
    CHECK(r == NULL);
}

/* ---------------------------------------------------------------- wire codec */

TEST(message_codec_roundtrip_and_rejections)
{
    raft_entry e[2] = {{.term = 3, .index = 8, .len = 3, .data = (const uint8_t *)"abc"},
                       {.term = 4, .index = 9, .type = RAFT_ENTRY_CONF, .len = 0}};
    raft_msg m = {.type = RAFT_MSG_APPEND,
                  .from = 1,
                  .to = 2,
                  .term = 4,
                  .index = 7,
                  .log_term = 3,
                  .commit = 6,
                  .ctx = 99,
                  .n_entries = 2,
                  .entries = e};
    uint8_t buf[512];
    size_t n = raft_msg_encode(&m, buf, sizeof(buf));
    CHECK_EQ_INT(n, raft_msg_encoded_len(&m));
    char err[200];
    CHECK_EQ_INT(raft_msg_frame_len(buf, RAFT_MSG_HEADER_LEN, err, sizeof(err)), n);
    raft_msg d;
    raft_entry de[4];
    CHECK_EQ_INT(raft_msg_decode(buf, n, &d, de, 4, err, sizeof(err)), 0);
    CHECK_EQ_INT(d.type, RAFT_MSG_APPEND);
    CHECK_EQ_INT(d.term, 4);
    CHECK_EQ_INT(d.ctx, 99);
    CHECK_EQ_INT(d.n_entries, 2);
    CHECK(d.entries[0].len == 3 && memcmp(d.entries[0].data, "abc", 3) == 0);
    CHECK_EQ_INT(d.entries[1].type, RAFT_ENTRY_CONF);
    CHECK_EQ_INT(raft_msg_decode(buf, n, &d, de, 1, err, sizeof(err)), -1); /* too many */

    static const struct {
        size_t off;
        uint8_t val;
        const char *why;
    } bad[] = {
        {0, 'X', "bad magic"},     {4, 2, "unsupported version"}, {5, 99, "unknown type"},
        {6, 1, "reserved header"}, {30, 0xff, "CRC mismatch"},    {8, 0xff, "header says"},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        uint8_t c[512];
        memcpy(c, buf, n);
        c[bad[k].off] = bad[k].val;
        err[0] = 0;
        CHECK_EQ_INT(raft_msg_decode(c, n, &d, de, 4, err, sizeof(err)), -1);
        printf("# %s -> %s\n", bad[k].why, err);
        CHECK(strstr(err, bad[k].why) != NULL);
    }
    CHECK_EQ_INT(raft_msg_decode(buf, n - 1, &d, de, 4, err, sizeof(err)), -1);
    CHECK_EQ_INT(raft_msg_encode(&m, buf, n - 1), 0); /* does not fit */
}

int main(void)
{
    RUN(figure7_leader_repairs_every_follower_log);
    RUN(figure8_prior_term_entry_not_committed_by_counting);
    RUN(stale_log_candidate_cannot_win);
    RUN(partitioned_old_leader_cannot_commit);
    RUN(prevote_keeps_isolated_member_from_disrupting);
    RUN(read_index_on_leader_and_follower);
    RUN(leadership_transfer);
    RUN(membership_one_change_at_a_time);
    RUN(pipelining_is_bounded_and_batched);
    RUN(proposals_of_one_batch_share_an_append);
    RUN(calls_between_ready_and_advance_are_refused);
    RUN(bad_storage_is_refused_with_a_reason);
    RUN(message_codec_roundtrip_and_rejections);
    return check_done();
}
