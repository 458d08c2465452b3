/* Raft core: elections (PreVote, CheckQuorum), replication (pipelined, batched, flow
 * controlled, fast back-off), ReadIndex, snapshots, single-server membership change and
 * leadership transfer. Pure: no I/O, no clock; see dcs/raft.h for the driving protocol.
 *
 * Memory: the log lives in memory from `off`+1 to the last index; each entry owns a copy of
 * its payload. Payloads and snapshot bytes that leave the log (truncation, compaction,
 * snapshot replacement) go to a "graveyard" freed at raft_advance, because messages and the
 * Ready batch may still point at them. All growth is bounded by the config limits. */
#include "dcs/raft.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PR_PROBE, PR_REPLICATE, PR_SNAPSHOT };
#define MAX_OUTBOX   8192 /* messages per Ready; beyond that we drop (the network may too) */
#define ROUND_RING   64   /* send ticks of recent heartbeat rounds (leader lease) */
#define INFLIGHT_CAP 1024

typedef struct progress {
    uint64_t id;
    uint64_t match, next;
    int state;
    bool paused;        /* PROBE: one append outstanding */
    bool recent_active; /* heard from it in this CheckQuorum window */
    bool vote_granted, vote_answered;
    uint64_t pending_snap;
    uint32_t snap_ticks;
    uint64_t acked_round; /* highest heartbeat round acknowledged */
    uint64_t stall_match; /* REPLICATE: match when the stall clock last restarted */
    uint32_t stall_ticks;
    uint64_t *inflight; /* ring of last indices of in-flight appends */
    uint32_t in_start, in_count;
} progress;

typedef struct read_req {
    uint64_t ctx, index, from, round; /* round 0: waiting for the first commit in term */
} read_req;

struct raft {
    raft_config cfg;
    uint64_t id;
    int role;
    uint64_t term, vote, leader;
    bool busy; /* between get_ready and advance */
    /* Leader: new entries or a new commit index to send; one append per follower goes out
     * at the next raft_get_ready instead of one per proposal and one per commit advance
     * (under 16 concurrent clients that was ~7 appends, and as many answers, per Ready). */
    bool bcast_pending;

    /* log */
    raft_entry *ents;
    size_t n_ents, cap_ents;
    uint64_t off, off_term; /* ents[k].index == off + 1 + k */
    uint64_t stable;        /* last index persisted */
    uint64_t commit, applied;
    uint64_t uncommitted_bytes;

    /* snapshot we hold (to send) and whether it must be persisted/installed */
    raft_snapshot snap;
    bool snap_pending;

    /* configuration */
    raft_conf conf;      /* in force: latest in log */
    raft_conf base_conf; /* as of `off` */
    uint64_t conf_index; /* index of latest conf entry in log, 0 = base */
    uint64_t pending_conf_index;

    progress *prs;
    uint32_t n_prs;

    /* timers */
    uint32_t election_elapsed, heartbeat_elapsed, randomized_timeout;
    uint64_t ticks, rng;

    /* leader: transfer, reads, heartbeat rounds */
    uint64_t transferee;
    bool lease_revoked; /* sent TIMEOUT_NOW this term: voters may ignore stickiness */
    uint64_t hb_round;
    uint64_t round_tick[ROUND_RING];
    read_req *reads;
    size_t n_reads;

    /* output */
    raft_msg *out;
    size_t n_out, cap_out;
    raft_read_state *rs;
    size_t n_rs, cap_rs;
    raft_hard_state prev_hs;
    void **grave;
    size_t n_grave, cap_grave;
    uint64_t ready_last; /* last index handed out for persistence in current Ready */
    uint64_t ready_applied;
};

const char *raft_strerror(int err)
{
    switch (err) {
    case RAFT_OK:
        return "ok";
    case RAFT_ENOTLEADER:
        return "not the leader";
    case RAFT_EBUSY:
        return "call between raft_get_ready and raft_advance";
    case RAFT_EINVAL:
        return "invalid argument";
    case RAFT_ENOMEM:
        return "out of memory";
    case RAFT_EFULL:
        return "too much pending work, retry later";
    case RAFT_ETRANSFER:
        return "leadership transfer in progress";
    case RAFT_ECONFPENDING:
        return "membership change pending";
    case RAFT_ENOLEADER:
        return "no leader known";
    case RAFT_ECORRUPT:
        return "inconsistent storage";
    default:
        return "unknown error";
    }
}

const char *raft_role_name(int role)
{
    static const char *const names[] = {"follower", "pre-candidate", "candidate", "leader"};
    return role >= 0 && role <= RAFT_LEADER ? names[role] : "?";
}

const char *raft_msg_type_name(int type)
{
    static const char *const names[] = {
        "?",           "PREVOTE",     "PREVOTE_RESP",  "VOTE",           "VOTE_RESP",
        "APPEND",      "APPEND_RESP", "HEARTBEAT",     "HEARTBEAT_RESP", "SNAPSHOT",
        "TIMEOUT_NOW", "READINDEX",   "READINDEX_RESP"};
    return type >= 1 && type <= RAFT_MSG_TYPE_MAX ? names[type] : "?";
}

void raft_config_default(raft_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->election_ticks = 10;
    cfg->heartbeat_ticks = 1;
    cfg->max_inflight = 64;
    cfg->max_msg_bytes = 1u << 20;
    cfg->max_uncommitted_bytes = 64u << 20;
    cfg->max_entry_bytes = 1536u * 1024;
    cfg->max_pending_reads = 4096;
    cfg->compact_margin = 1000;
    cfg->pre_vote = true;
    cfg->check_quorum = true;
}

/* ---------------------------------------------------------------- small helpers */

/* Frees memory we own but reference through a const pointer (entry/snapshot data). */
static void free_const(const void *p)
{
    void *q;
    memcpy(&q, &p, sizeof(q));
    free(q);
}

static uint64_t rng_next(raft *r)
{
    /* xorshift64*: deterministic from cfg.seed, so simulations replay exactly */
    uint64_t x = r->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->rng = x;
    return x * 2685821657736338717ull;
}

static void grave_add(raft *r, const void *p)
{
    if (!p)
        return;
    if (r->n_grave == r->cap_grave) {
        size_t nc = r->cap_grave ? r->cap_grave * 2 : 64;
        void **g = realloc(r->grave, nc * sizeof(*g));
        if (!g) {
            /* Cannot defer: leak rather than risk a dangling pointer in the batch. */
            return;
        }
        r->grave = g;
        r->cap_grave = nc;
    }
    r->grave[r->n_grave++] = NULL;
    memcpy(&r->grave[r->n_grave - 1], &p, sizeof(p));
}

static void grave_empty(raft *r)
{
    for (size_t i = 0; i < r->n_grave; i++)
        free(r->grave[i]);
    r->n_grave = 0;
}

static uint64_t last_index(const raft *r)
{
    return r->off + r->n_ents;
}

static uint64_t term_at(const raft *r, uint64_t i)
{
    if (i == r->off)
        return r->off_term;
    if (i < r->off || i > last_index(r))
        return 0;
    return r->ents[i - r->off - 1].term;
}

static uint64_t last_term(const raft *r)
{
    return term_at(r, last_index(r));
}

static raft_entry *entry_at(raft *r, uint64_t i)
{
    return &r->ents[i - r->off - 1];
}

static uint32_t quorum(const raft *r)
{
    return r->conf.n / 2 + 1;
}

static bool promotable(const raft *r)
{
    return raft_conf_has(&r->conf, r->id);
}

static progress *pr_get(raft *r, uint64_t id)
{
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].id == id)
            return &r->prs[i];
    return NULL;
}

static void reset_randomized_timeout(raft *r)
{
    uint32_t e = r->cfg.election_ticks;
    r->randomized_timeout = e + (uint32_t)(rng_next(r) % e);
}

/* ---------------------------------------------------------------- outbox */

static raft_msg *msg_new(raft *r, int type, uint64_t to)
{
    if (r->n_out == MAX_OUTBOX)
        return NULL; /* dropped: Raft tolerates message loss */
    if (r->n_out == r->cap_out) {
        size_t nc = r->cap_out ? r->cap_out * 2 : 16;
        raft_msg *o = realloc(r->out, nc * sizeof(*o));
        if (!o)
            return NULL;
        r->out = o;
        r->cap_out = nc;
    }
    raft_msg *m = &r->out[r->n_out++];
    memset(m, 0, sizeof(*m));
    m->type = (uint8_t)type;
    m->from = r->id;
    m->to = to;
    m->term = r->term;
    return m;
}

static void read_state_add(raft *r, uint64_t ctx, uint64_t index, int ok)
{
    if (r->n_rs == r->cap_rs) {
        size_t nc = r->cap_rs ? r->cap_rs * 2 : 16;
        raft_read_state *s = realloc(r->rs, nc * sizeof(*s));
        if (!s)
            return;
        r->rs = s;
        r->cap_rs = nc;
    }
    r->rs[r->n_rs++] = (raft_read_state){.ctx = ctx, .index = index, .ok = ok};
}

/* ---------------------------------------------------------------- log mutation */

static int log_reserve(raft *r, size_t extra)
{
    if (r->n_ents + extra <= r->cap_ents)
        return 0;
    size_t nc = r->cap_ents ? r->cap_ents : 64;
    while (nc < r->n_ents + extra)
        nc *= 2;
    raft_entry *e = realloc(r->ents, nc * sizeof(*e));
    if (!e)
        return -1;
    r->ents = e;
    r->cap_ents = nc;
    return 0;
}

static void conf_recompute(raft *r)
{
    for (uint64_t i = last_index(r); i > r->off; i--) {
        const raft_entry *e = &r->ents[i - r->off - 1];
        raft_conf c;
        if (e->type == RAFT_ENTRY_CONF && raft_conf_decode(e->data, e->len, &c) == 0) {
            r->conf = c;
            r->conf_index = i;
            return;
        }
    }
    r->conf = r->base_conf;
    r->conf_index = 0;
}

static void progress_rebuild(raft *r);

/* Drops entries from index `from` on (from > off). */
static void log_truncate(raft *r, uint64_t from)
{
    uint64_t last = last_index(r);
    for (uint64_t k = 0; from + k <= last && from + k >= from; k++) /* no wrap at UINT64_MAX */
        grave_add(r, entry_at(r, from + k)->data);
    r->n_ents = from - r->off - 1;
    if (r->stable >= from)
        r->stable = from - 1;
    if (r->conf_index >= from) {
        conf_recompute(r);
        progress_rebuild(r);
    }
}

/* Appends a copy of e (index must be last+1). */
static int log_append(raft *r, const raft_entry *e)
{
    if (log_reserve(r, 1) < 0)
        return RAFT_ENOMEM;
    uint8_t *d = NULL;
    if (e->len) {
        d = malloc(e->len);
        if (!d)
            return RAFT_ENOMEM;
        memcpy(d, e->data, e->len);
    }
    raft_entry *n = &r->ents[r->n_ents++];
    *n = *e;
    n->index = last_index(r);
    n->data = d;
    if (e->type == RAFT_ENTRY_CONF) {
        raft_conf c;
        if (raft_conf_decode(d, e->len, &c) == 0) {
            r->conf = c;
            r->conf_index = n->index;
            progress_rebuild(r);
        }
    }
    return 0;
}

/* Configuration as of index i (off <= i <= last). */
static void conf_at(const raft *r, uint64_t i, raft_conf *out)
{
    for (uint64_t k = i; k > r->off; k--) {
        const raft_entry *e = &r->ents[k - r->off - 1];
        if (e->type == RAFT_ENTRY_CONF && raft_conf_decode(e->data, e->len, out) == 0)
            return;
    }
    *out = r->base_conf;
}

/* Drops entries up to and including `upto` (off < upto <= applied). */
static void log_compact(raft *r, uint64_t upto)
{
    raft_conf c;
    conf_at(r, upto, &c);
    uint64_t t = term_at(r, upto);
    size_t drop = (size_t)(upto - r->off);
    for (size_t k = 0; k < drop; k++)
        grave_add(r, r->ents[k].data);
    memmove(r->ents, r->ents + drop, (r->n_ents - drop) * sizeof(*r->ents));
    r->n_ents -= drop;
    r->off = upto;
    r->off_term = t;
    r->base_conf = c;
}

/* ---------------------------------------------------------------- progress */

static void inflight_reset(progress *p)
{
    p->in_start = p->in_count = 0;
}

static void progress_rebuild(raft *r)
{
    /* One progress per voter plus self; keep what we know about members that stay. */
    progress *np = calloc(r->conf.n + 1, sizeof(*np));
    if (!np)
        return;
    uint32_t n = 0;
    for (uint32_t i = 0; i <= r->conf.n; i++) {
        uint64_t id = i < r->conf.n ? r->conf.ids[i] : r->id;
        if (i == r->conf.n && raft_conf_has(&r->conf, r->id))
            break;
        progress *old = pr_get(r, id);
        if (old) {
            np[n] = *old;
            old->inflight = NULL;
        } else {
            np[n].id = id;
            np[n].next = last_index(r) + 1;
            np[n].state = PR_PROBE;
            np[n].recent_active = true; /* grace for CheckQuorum */
            np[n].inflight = calloc(r->cfg.max_inflight, sizeof(uint64_t));
        }
        n++;
    }
    for (uint32_t i = 0; i < r->n_prs; i++)
        free(r->prs[i].inflight);
    free(r->prs);
    r->prs = np;
    r->n_prs = n;
}

static bool inflight_full(const raft *r, const progress *p)
{
    return p->in_count >= r->cfg.max_inflight;
}

static void inflight_add(raft *r, progress *p, uint64_t last)
{
    if (!p->inflight || inflight_full(r, p))
        return;
    p->inflight[(p->in_start + p->in_count) % r->cfg.max_inflight] = last;
    p->in_count++;
}

static void inflight_free_to(raft *r, progress *p, uint64_t upto)
{
    while (p->in_count && p->inflight[p->in_start] <= upto) {
        p->in_start = (p->in_start + 1) % r->cfg.max_inflight;
        p->in_count--;
    }
}

static void pr_become_probe(progress *p)
{
    if (p->state == PR_SNAPSHOT) {
        uint64_t ps = p->pending_snap;
        p->next = (p->match > ps ? p->match : ps) + 1;
    } else {
        p->next = p->match + 1;
    }
    p->state = PR_PROBE;
    p->paused = false;
    p->pending_snap = 0;
    inflight_reset(p);
}

static void pr_become_replicate(progress *p)
{
    p->state = PR_REPLICATE;
    p->next = p->match + 1;
    p->paused = false;
    p->pending_snap = 0;
    inflight_reset(p);
}

/* ---------------------------------------------------------------- sending */

static void send_snapshot(raft *r, progress *p)
{
    if (r->snap.index == 0 || r->snap.index < r->off)
        return; /* nothing to send: cannot happen while off <= snap.index */
    raft_msg *m = msg_new(r, RAFT_MSG_SNAPSHOT, p->id);
    if (!m)
        return;
    m->has_snapshot = 1;
    m->snapshot = r->snap;
    m->commit = r->commit;
    p->state = PR_SNAPSHOT;
    p->pending_snap = r->snap.index;
    p->snap_ticks = 0;
    p->paused = false;
    inflight_reset(p);
}

/* Sends entries from p->next (or an empty append carrying the commit index). */
static void send_append(raft *r, progress *p, bool send_if_empty)
{
    if (p->id == r->id)
        return;
    if (p->state == PR_SNAPSHOT || (p->state == PR_PROBE && p->paused) ||
        (p->state == PR_REPLICATE && inflight_full(r, p)))
        return;
    uint64_t prev = p->next - 1;
    if (prev < r->off) {
        send_snapshot(r, p);
        return;
    }
    uint64_t last = last_index(r);
    size_t n = 0, bytes = 0;
    for (uint64_t i = p->next; i <= last && i >= p->next && n < RAFT_MSG_MAX_ENTRIES; i++) {
        uint32_t len = entry_at(r, i)->len;
        if (n > 0 && bytes + len > r->cfg.max_msg_bytes)
            break;
        bytes += len;
        n++;
    }
    if (n == 0 && !send_if_empty)
        return;
    raft_entry *copy = NULL;
    if (n) {
        copy = malloc(n * sizeof(*copy));
        if (!copy)
            return;
        memcpy(copy, entry_at(r, p->next), n * sizeof(*copy));
    }
    raft_msg *m = msg_new(r, RAFT_MSG_APPEND, p->id);
    if (!m) {
        free(copy);
        return;
    }
    grave_add(r, copy); /* the copy of the entry array lives until advance */
    m->index = prev;
    m->log_term = term_at(r, prev);
    m->entries = copy;
    m->n_entries = (uint32_t)n;
    m->commit = r->commit;
    if (n) {
        uint64_t hi = prev + n;
        if (p->state == PR_REPLICATE) {
            p->next = hi + 1;
            inflight_add(r, p, hi);
        } else {
            p->paused = true;
        }
    } else if (p->state == PR_PROBE) {
        p->paused = true;
    }
}

static void bcast_append(raft *r)
{
    for (uint32_t i = 0; i < r->n_prs; i++)
        send_append(r, &r->prs[i], true);
}

static void bcast_heartbeat(raft *r)
{
    r->hb_round++;
    r->round_tick[r->hb_round % ROUND_RING] = r->ticks;
    for (uint32_t i = 0; i < r->n_prs; i++) {
        progress *p = &r->prs[i];
        if (p->id == r->id)
            continue;
        raft_msg *m = msg_new(r, RAFT_MSG_HEARTBEAT, p->id);
        if (!m)
            continue;
        /* never tell a follower to commit past what it is known to hold */
        m->commit = p->match < r->commit ? p->match : r->commit;
        m->ctx = r->hb_round;
    }
}

/* Hands leadership to `to`. Its campaign overrides leader stickiness, so from here on
 * this term's lease is void (reads fall back to a heartbeat round). */
static void send_timeout_now(raft *r, uint64_t to)
{
    r->lease_revoked = true;
    msg_new(r, RAFT_MSG_TIMEOUT_NOW, to);
}

/* ---------------------------------------------------------------- reads */

static void reads_fail_all(raft *r)
{
    for (size_t i = 0; i < r->n_reads; i++)
        if (r->reads[i].from == r->id)
            read_state_add(r, r->reads[i].ctx, 0, 0);
    r->n_reads = 0;
}

static void read_answer(raft *r, const read_req *q)
{
    if (q->from == r->id) {
        read_state_add(r, q->ctx, q->index, 1);
    } else {
        raft_msg *m = msg_new(r, RAFT_MSG_READINDEX_RESP, q->from);
        if (m) {
            m->ctx = q->ctx;
            m->index = q->index;
        }
    }
}

static bool committed_in_term(const raft *r)
{
    return term_at(r, r->commit) == r->term;
}

/* Highest heartbeat round acknowledged by a quorum of voters (self counts as current). */
static uint64_t confirmed_round(raft *r)
{
    uint64_t v[RAFT_MAX_NODES];
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->conf.n; i++) {
        progress *p = pr_get(r, r->conf.ids[i]);
        v[n++] = r->conf.ids[i] == r->id ? r->hb_round : (p ? p->acked_round : 0);
    }
    if (n == 0)
        return 0;
    for (uint32_t i = 1; i < n; i++) /* insertion sort, descending */
        for (uint32_t k = i; k > 0 && v[k] > v[k - 1]; k--) {
            uint64_t t = v[k];
            v[k] = v[k - 1];
            v[k - 1] = t;
        }
    return v[quorum(r) - 1];
}

static void reads_release(raft *r)
{
    uint64_t ok = confirmed_round(r);
    size_t k = 0;
    while (k < r->n_reads && r->reads[k].round != 0 && r->reads[k].round <= ok)
        read_answer(r, &r->reads[k++]);
    if (k) {
        memmove(r->reads, r->reads + k, (r->n_reads - k) * sizeof(*r->reads));
        r->n_reads -= k;
    }
}

static bool lease_valid(raft *r)
{
    if (!r->cfg.lease_read || !r->cfg.check_quorum || r->lease_revoked)
        return false;
    uint64_t c = confirmed_round(r);
    if (c == 0 || r->hb_round - c >= ROUND_RING)
        return false;
    /* followers will not vote for anyone else before election_ticks of their own ticks
     * after receiving round c; keep one tick of margin for tick granularity */
    return r->ticks + 1 < r->round_tick[c % ROUND_RING] + r->cfg.election_ticks;
}

/* Leader side of a read request, local (from == self) or forwarded. */
static int leader_read(raft *r, uint64_t ctx, uint64_t from)
{
    if (r->conf.n == 1 && committed_in_term(r)) {
        read_answer(r, &(read_req){.ctx = ctx, .index = r->commit, .from = from});
        return 0;
    }
    if (committed_in_term(r) && lease_valid(r)) {
        read_answer(r, &(read_req){.ctx = ctx, .index = r->commit, .from = from});
        return 0;
    }
    if (r->n_reads >= r->cfg.max_pending_reads)
        return RAFT_EFULL;
    read_req *q = realloc(r->reads, (r->n_reads + 1) * sizeof(*q));
    if (!q)
        return RAFT_ENOMEM;
    r->reads = q;
    read_req *n = &r->reads[r->n_reads++];
    *n = (read_req){.ctx = ctx, .from = from};
    if (committed_in_term(r)) {
        n->index = r->commit;
        bcast_heartbeat(r);
        n->round = r->hb_round;
        reads_release(r); /* a one-member quorum confirms at once */
    }
    return 0;
}

/* First commit in a new term: reads that waited get the commit index and a round. */
static void reads_on_commit(raft *r)
{
    bool any = false;
    for (size_t i = 0; i < r->n_reads; i++)
        if (r->reads[i].round == 0)
            any = true;
    if (!any)
        return;
    bcast_heartbeat(r);
    for (size_t i = 0; i < r->n_reads; i++)
        if (r->reads[i].round == 0) {
            r->reads[i].index = r->commit;
            r->reads[i].round = r->hb_round;
        }
    reads_release(r);
}

/* ---------------------------------------------------------------- role changes */

static void reset_common(raft *r, uint64_t term)
{
    if (r->term != term) {
        r->term = term;
        r->vote = 0;
    }
    r->leader = 0;
    r->election_elapsed = 0;
    r->heartbeat_elapsed = 0;
    reset_randomized_timeout(r);
    r->transferee = 0;
    r->lease_revoked = false;
    reads_fail_all(r);
    for (uint32_t i = 0; i < r->n_prs; i++) {
        progress *p = &r->prs[i];
        p->match = 0;
        p->next = last_index(r) + 1;
        p->state = PR_PROBE;
        p->paused = false;
        p->recent_active = false;
        p->vote_granted = p->vote_answered = false;
        p->pending_snap = 0;
        p->acked_round = 0;
        inflight_reset(p);
    }
}

static void become_follower(raft *r, uint64_t term, uint64_t leader)
{
    reset_common(r, term);
    r->role = RAFT_FOLLOWER;
    r->leader = leader;
}

static void become_leader(raft *r)
{
    reset_common(r, r->term);
    r->role = RAFT_LEADER;
    r->leader = r->id;
    r->uncommitted_bytes = 0;
    for (uint32_t i = 0; i < r->n_prs; i++)
        r->prs[i].recent_active = true;
    /* Any configuration entry we cannot see as committed may still be pending. */
    r->pending_conf_index = last_index(r);
    /* The no-op of the new term: commits everything before it (Raft §5.4.2, §8) */
    raft_entry noop = {.term = r->term, .type = RAFT_ENTRY_NORMAL};
    if (log_append(r, &noop) == 0)
        bcast_append(r);
}

static void poll_votes(raft *r);

static void campaign(raft *r, bool pre, bool transfer)
{
    uint64_t vterm;
    int type;
    if (pre) {
        reset_common(r, r->term);
        r->role = RAFT_PRECANDIDATE;
        vterm = r->term + 1;
        type = RAFT_MSG_PREVOTE;
    } else {
        reset_common(r, r->term + 1);
        r->role = RAFT_CANDIDATE;
        r->vote = r->id;
        vterm = r->term;
        type = RAFT_MSG_VOTE;
    }
    progress *self = pr_get(r, r->id);
    if (self)
        self->vote_granted = self->vote_answered = true;
    for (uint32_t i = 0; i < r->conf.n; i++) {
        uint64_t id = r->conf.ids[i];
        if (id == r->id)
            continue;
        raft_msg *m = msg_new(r, type, id);
        if (!m)
            continue;
        m->term = vterm;
        m->index = last_index(r);
        m->log_term = last_term(r);
        m->transfer = transfer;
    }
    poll_votes(r);
}

static void poll_votes(raft *r)
{
    uint32_t granted = 0, rejected = 0;
    for (uint32_t i = 0; i < r->conf.n; i++) {
        progress *p = pr_get(r, r->conf.ids[i]);
        if (!p || !p->vote_answered)
            continue;
        if (p->vote_granted)
            granted++;
        else
            rejected++;
    }
    if (granted >= quorum(r)) {
        if (r->role == RAFT_PRECANDIDATE)
            campaign(r, false, false);
        else
            become_leader(r);
    } else if (rejected >= quorum(r)) {
        become_follower(r, r->term, 0);
    }
}

/* ---------------------------------------------------------------- commit */

static void commit_to(raft *r, uint64_t c)
{
    if (c <= r->commit)
        return;
    if (r->role == RAFT_LEADER) {
        /* counted so that i never wraps: a log ending at UINT64_MAX (peer input can put
         * it there) made `i <= c` always true (raft_msg_fuzz) */
        for (uint64_t i = r->commit; i < c;) {
            uint32_t l = entry_at(r, ++i)->len;
            r->uncommitted_bytes = r->uncommitted_bytes > l ? r->uncommitted_bytes - l : 0;
        }
    }
    r->commit = c;
}

static uint64_t self_match(const raft *r)
{
    return r->stable;
}

static bool leader_maybe_commit(raft *r)
{
    uint64_t v[RAFT_MAX_NODES];
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->conf.n; i++) {
        uint64_t id = r->conf.ids[i];
        progress *p = pr_get(r, id);
        v[n++] = id == r->id ? self_match(r) : (p ? p->match : 0);
    }
    if (n == 0)
        return false;
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t k = i; k > 0 && v[k] > v[k - 1]; k--) {
            uint64_t t = v[k];
            v[k] = v[k - 1];
            v[k - 1] = t;
        }
    uint64_t idx = v[quorum(r) - 1];
    /* Only entries of the current term are committed by counting (Raft §5.4.2). */
    if (idx > r->commit && term_at(r, idx) == r->term) {
        bool first = !committed_in_term(r);
        commit_to(r, idx);
        if (first)
            reads_on_commit(r);
        /* A leader removed from the configuration steps down once that is committed. */
        if (r->conf_index <= r->commit && !promotable(r)) {
            become_follower(r, r->term, 0);
            return true;
        }
        r->bcast_pending = true; /* the new commit index rides on the next Ready's appends */
        return true;
    }
    return false;
}

/* ---------------------------------------------------------------- follower handlers */

static void send_resp(raft *r, const raft_msg *req, int type, uint64_t index, bool reject)
{
    raft_msg *m = msg_new(r, type, req->from);
    if (!m)
        return;
    m->index = index;
    m->reject = reject;
    m->ctx = req->ctx;
}

/* Largest index <= i whose term is <= t (fast back-off, both directions). */
static uint64_t find_conflict_by_term(const raft *r, uint64_t i, uint64_t t)
{
    if (i > last_index(r))
        i = last_index(r);
    while (i > r->off && term_at(r, i) > t)
        i--;
    return i;
}

static void handle_append(raft *r, const raft_msg *m)
{
    if (m->index < r->commit) {
        send_resp(r, m, RAFT_MSG_APPEND_RESP, r->commit, false);
        return;
    }
    bool ok = m->index == 0 ? m->log_term == 0 : term_at(r, m->index) == m->log_term;
    if (m->index > last_index(r))
        ok = false;
    if (!ok) {
        uint64_t hint = find_conflict_by_term(r, m->index, m->log_term);
        raft_msg *resp = msg_new(r, RAFT_MSG_APPEND_RESP, m->from);
        if (resp) {
            resp->index = m->index;
            resp->reject = 1;
            resp->reject_hint = hint;
            resp->hint_term = term_at(r, hint);
        }
        return;
    }
    uint64_t last_new = m->index + m->n_entries;
    for (uint32_t k = 0; k < m->n_entries; k++) {
        const raft_entry *e = &m->entries[k];
        uint64_t idx = m->index + 1 + k;
        if (idx <= last_index(r)) {
            if (term_at(r, idx) == e->term)
                continue;
            if (idx <= r->commit)
                return; /* would rewrite committed history: refuse (leader is broken) */
            log_truncate(r, idx);
        }
        raft_entry ne = *e;
        ne.index = idx;
        if (log_append(r, &ne) != 0)
            return; /* out of memory: no ack, the leader will retry */
    }
    uint64_t c = m->commit < last_new ? m->commit : last_new;
    commit_to(r, c);
    send_resp(r, m, RAFT_MSG_APPEND_RESP, last_new, false);
}

static void handle_heartbeat(raft *r, const raft_msg *m)
{
    if (m->commit <= last_index(r))
        commit_to(r, m->commit);
    send_resp(r, m, RAFT_MSG_HEARTBEAT_RESP, 0, false);
}

static void handle_snapshot(raft *r, const raft_msg *m)
{
    const raft_snapshot *s = &m->snapshot;
    if (!m->has_snapshot || s->index <= r->commit) {
        send_resp(r, m, RAFT_MSG_APPEND_RESP, r->commit, false);
        return;
    }
    if (term_at(r, s->index) == s->term && s->index <= last_index(r)) {
        /* we have the log up to there: just fast-forward the commit index */
        commit_to(r, s->index);
        send_resp(r, m, RAFT_MSG_APPEND_RESP, s->index, false);
        return;
    }
    uint8_t *d = NULL;
    if (s->len) {
        d = malloc(s->len);
        if (!d)
            return;
        memcpy(d, s->data, s->len);
    }
    /* Replace the whole log with the snapshot. */
    for (size_t k = 0; k < r->n_ents; k++)
        grave_add(r, r->ents[k].data);
    r->n_ents = 0;
    grave_add(r, r->snap.data);
    r->snap = *s;
    r->snap.data = d;
    r->snap_pending = true;
    r->off = s->index;
    r->off_term = s->term;
    r->stable = s->index;
    r->commit = s->index;
    r->base_conf = s->conf;
    r->conf = s->conf;
    r->conf_index = 0;
    progress_rebuild(r);
    send_resp(r, m, RAFT_MSG_APPEND_RESP, s->index, false);
}

/* ---------------------------------------------------------------- leader handlers */

static void handle_append_resp(raft *r, progress *p, const raft_msg *m)
{
    p->recent_active = true;
    if (m->reject) {
        /* stale rejections refer to appends we already superseded */
        if (p->state == PR_REPLICATE ? m->index <= p->match : m->index != p->next - 1)
            return;
        /* the follower lacks a match at m->index: retry further back, skipping a whole
         * conflicting term at once when the follower told us its term there */
        uint64_t prev = m->index ? m->index - 1 : 0;
        if (m->reject_hint <= m->index) {
            uint64_t h = m->reject_hint;
            if (m->hint_term > 0)
                h = find_conflict_by_term(r, h, m->hint_term);
            if (h < prev)
                prev = h;
        }
        p->next = (prev > p->match ? prev : p->match) + 1;
        if (p->state == PR_REPLICATE)
            p->state = PR_PROBE;
        p->paused = false;
        inflight_reset(p);
        send_append(r, p, true);
        return;
    }
    bool progressed = false;
    if (m->index > p->match) {
        p->match = m->index;
        progressed = true;
    }
    if (p->next < p->match + 1)
        p->next = p->match + 1;
    inflight_free_to(r, p, m->index);
    if (p->state == PR_PROBE && (progressed || m->index == p->match)) {
        pr_become_replicate(p);
    } else if (p->state == PR_SNAPSHOT && p->match >= p->pending_snap) {
        pr_become_probe(p);
        pr_become_replicate(p);
    }
    if (progressed)
        leader_maybe_commit(r);
    if (r->role != RAFT_LEADER)
        return;
    if (pr_get(r, m->from) != p)
        p = pr_get(r, m->from);
    if (!p)
        return;
    while (p->next <= last_index(r) && p->state == PR_REPLICATE && !inflight_full(r, p)) {
        uint64_t before = p->next;
        send_append(r, p, false);
        if (p->next == before)
            break;
    }
    if (r->transferee == p->id && p->match == last_index(r))
        send_timeout_now(r, p->id);
}

static void handle_heartbeat_resp(raft *r, progress *p, const raft_msg *m)
{
    p->recent_active = true;
    if (m->ctx > p->acked_round && m->ctx <= r->hb_round)
        p->acked_round = m->ctx;
    if (p->state == PR_PROBE)
        p->paused = false;
    else if (p->state == PR_REPLICATE && inflight_full(r, p) && p->in_count) {
        p->in_start = (p->in_start + 1) % r->cfg.max_inflight;
        p->in_count--;
    }
    if (p->match < last_index(r))
        send_append(r, p, p->state == PR_PROBE);
    reads_release(r);
}

/* ---------------------------------------------------------------- step */

static bool up_to_date(const raft *r, uint64_t index, uint64_t term)
{
    uint64_t lt = last_term(r);
    return term > lt || (term == lt && index >= last_index(r));
}

static void handle_vote(raft *r, const raft_msg *m)
{
    bool pre = m->type == RAFT_MSG_PREVOTE;
    bool can = r->vote == m->from || (r->vote == 0 && r->leader == 0) || (pre && m->term > r->term);
    raft_msg *resp = msg_new(r, pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP, m->from);
    if (can && up_to_date(r, m->index, m->log_term)) {
        if (resp)
            resp->term = m->term;
        if (!pre) {
            r->vote = m->from;
            r->election_elapsed = 0;
        }
    } else if (resp) {
        resp->reject = 1;
    }
}

static int step_inner(raft *r, const raft_msg *m)
{
    if (m->type < 1 || m->type > RAFT_MSG_TYPE_MAX || m->to != r->id || m->from == 0 ||
        m->from == r->id)
        return RAFT_EINVAL;
    bool termless = m->type == RAFT_MSG_READINDEX || m->type == RAFT_MSG_READINDEX_RESP;
    if (termless) {
        /* read requests carry no term: answer if leader, deliver if follower */
        if (m->type == RAFT_MSG_READINDEX) {
            if (r->role == RAFT_LEADER && pr_get(r, m->from))
                leader_read(r, m->ctx, m->from);
        } else if (r->role != RAFT_LEADER) {
            read_state_add(r, m->ctx, m->index, 1);
        }
        return 0;
    }
    if (m->term > r->term) {
        if (m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE) {
            /* leader stickiness: a member that recently heard from a leader ignores
             * campaigns (removed or partitioned members cannot disrupt) */
            /* With leases, so does a member that (re)started less than an election
             * timeout ago: it may have acknowledged a leader just before going down, and
             * that leader's lease counts on this member's stickiness. (Costs up to one
             * election timeout of availability after a start, hence only with leases.) */
            bool in_lease = r->cfg.check_quorum &&
                            ((r->leader != 0 && r->election_elapsed < r->cfg.election_ticks) ||
                             (r->cfg.lease_read && r->ticks < r->cfg.election_ticks));
            if (in_lease && !m->transfer)
                return 0;
        }
        if (m->type == RAFT_MSG_PREVOTE || (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject)) {
            /* no term change: a pre-vote asks about a future term, and a granted answer
             * carries the term we would campaign in */
        } else if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
                   m->type == RAFT_MSG_SNAPSHOT) {
            become_follower(r, m->term, m->from);
        } else {
            /* A higher term from a campaign is not a leader: keep our election clock
             * running (Raft §5.2: only a leader's message or a granted vote resets it),
             * else members that keep losing elections starve the one that could win. */
            uint32_t elapsed = r->election_elapsed;
            become_follower(r, m->term, 0);
            r->election_elapsed = elapsed;
        }
    } else if (m->term < r->term) {
        if ((r->cfg.check_quorum || r->cfg.pre_vote) &&
            (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT)) {
            /* tell a stale leader about the new term so it steps down */
            msg_new(r, RAFT_MSG_APPEND_RESP, m->from);
        } else if (m->type == RAFT_MSG_PREVOTE) {
            raft_msg *resp = msg_new(r, RAFT_MSG_PREVOTE_RESP, m->from);
            if (resp)
                resp->reject = 1;
        }
        return 0;
    }

    if (m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE) {
        handle_vote(r, m);
        return 0;
    }

    switch (r->role) {
    case RAFT_LEADER: {
        progress *p = pr_get(r, m->from);
        if (!p)
            return 0;
        if (m->type == RAFT_MSG_APPEND_RESP)
            handle_append_resp(r, p, m);
        else if (m->type == RAFT_MSG_HEARTBEAT_RESP)
            handle_heartbeat_resp(r, p, m);
        return 0;
    }
    case RAFT_PRECANDIDATE:
    case RAFT_CANDIDATE:
        if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
            m->type == RAFT_MSG_SNAPSHOT) {
            become_follower(r, m->term, m->from);
            break; /* handle as follower below */
        }
        if ((r->role == RAFT_PRECANDIDATE && m->type == RAFT_MSG_PREVOTE_RESP) ||
            (r->role == RAFT_CANDIDATE && m->type == RAFT_MSG_VOTE_RESP)) {
            progress *p = pr_get(r, m->from);
            if (p && !p->vote_answered) {
                p->vote_answered = true;
                p->vote_granted = !m->reject;
                poll_votes(r);
            }
        }
        return 0;
    default:
        break;
    }

    /* follower */
    switch (m->type) {
    case RAFT_MSG_APPEND:
        r->election_elapsed = 0;
        r->leader = m->from;
        handle_append(r, m);
        break;
    case RAFT_MSG_HEARTBEAT:
        r->election_elapsed = 0;
        r->leader = m->from;
        handle_heartbeat(r, m);
        break;
    case RAFT_MSG_SNAPSHOT:
        r->election_elapsed = 0;
        r->leader = m->from;
        handle_snapshot(r, m);
        break;
    case RAFT_MSG_TIMEOUT_NOW:
        if (promotable(r))
            campaign(r, false, true);
        break;
    default:
        break;
    }
    return 0;
}

int raft_step(raft *r, const raft_msg *m)
{
    if (r->busy)
        return RAFT_EBUSY;
    return step_inner(r, m);
}

/* ---------------------------------------------------------------- tick */

int raft_tick(raft *r)
{
    if (r->busy)
        return RAFT_EBUSY;
    r->ticks++;
    if (r->role != RAFT_LEADER) {
        r->election_elapsed++;
        if (promotable(r) && r->election_elapsed >= r->randomized_timeout) {
            r->election_elapsed = 0;
            campaign(r, r->cfg.pre_vote, false);
        }
        return 0;
    }
    r->heartbeat_elapsed++;
    r->election_elapsed++;
    if (r->election_elapsed >= r->cfg.election_ticks) {
        r->election_elapsed = 0;
        r->transferee = 0; /* a transfer that did not finish in time is abandoned */
        if (r->cfg.check_quorum) {
            uint32_t active = 0;
            for (uint32_t i = 0; i < r->conf.n; i++) {
                progress *p = pr_get(r, r->conf.ids[i]);
                if (r->conf.ids[i] == r->id || (p && p->recent_active))
                    active++;
            }
            if (active < quorum(r)) {
                become_follower(r, r->term, 0);
                return 0;
            }
            for (uint32_t i = 0; i < r->n_prs; i++)
                r->prs[i].recent_active = r->prs[i].id == r->id;
        }
    }
    for (uint32_t i = 0; i < r->n_prs; i++) {
        progress *p = &r->prs[i];
        /* a lost snapshot message would stall the follower forever: retry */
        if (p->state == PR_SNAPSHOT && ++p->snap_ticks >= r->cfg.election_ticks) {
            p->pending_snap = 0; /* unknown whether it arrived: probe from match */
            pr_become_probe(p);
        }
        /* Appends lost or reordered in REPLICATE leave the follower behind with nothing
         * left to send (next > last): without new proposals nothing would resend them.
         * No progress for an election timeout while behind: probe again from match. */
        if (p->state == PR_REPLICATE && p->id != r->id && p->match < last_index(r)) {
            if (p->match != p->stall_match) {
                p->stall_match = p->match;
                p->stall_ticks = 0;
            } else if (++p->stall_ticks >= r->cfg.election_ticks) {
                p->stall_ticks = 0;
                pr_become_probe(p);
                send_append(r, p, true);
            }
        } else {
            p->stall_ticks = 0;
        }
    }
    if (r->heartbeat_elapsed >= r->cfg.heartbeat_ticks) {
        r->heartbeat_elapsed = 0;
        bcast_heartbeat(r);
    }
    return 0;
}

/* ---------------------------------------------------------------- API calls */

int raft_propose(raft *r, const void *data, uint32_t len, uint64_t *index)
{
    if (r->busy)
        return RAFT_EBUSY;
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    if (r->transferee)
        return RAFT_ETRANSFER;
    if (len > r->cfg.max_entry_bytes || (len && !data))
        return RAFT_EINVAL;
    if (r->uncommitted_bytes + len > r->cfg.max_uncommitted_bytes)
        return RAFT_EFULL;
    raft_entry e = {.term = r->term, .type = RAFT_ENTRY_NORMAL, .len = len, .data = data};
    int rc = log_append(r, &e);
    if (rc)
        return rc;
    r->uncommitted_bytes += len;
    if (index)
        *index = last_index(r);
    r->bcast_pending = true; /* batched with this turn's other proposals */
    return 0;
}

int raft_change_member(raft *r, int op, uint64_t id, uint64_t *index)
{
    if (r->busy)
        return RAFT_EBUSY;
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    if (r->transferee)
        return RAFT_ETRANSFER;
    /* one change at a time, and not before the leader committed in its term */
    if (r->pending_conf_index > r->commit || !committed_in_term(r))
        return RAFT_ECONFPENDING;
    if (id == 0)
        return RAFT_EINVAL;
    raft_conf c = r->conf;
    if (op == RAFT_CONF_ADD) {
        if (raft_conf_has(&c, id) || c.n >= RAFT_MAX_NODES)
            return RAFT_EINVAL;
        uint32_t k = c.n;
        while (k > 0 && c.ids[k - 1] > id) {
            c.ids[k] = c.ids[k - 1];
            k--;
        }
        c.ids[k] = id;
        c.n++;
    } else if (op == RAFT_CONF_REMOVE) {
        if (!raft_conf_has(&c, id) || c.n == 1)
            return RAFT_EINVAL;
        uint32_t k = 0;
        for (uint32_t i = 0; i < c.n; i++)
            if (c.ids[i] != id)
                c.ids[k++] = c.ids[i];
        c.n = k;
    } else {
        return RAFT_EINVAL;
    }
    uint8_t buf[2 + 8 * RAFT_MAX_NODES];
    int n = raft_conf_encode(&c, buf, sizeof(buf));
    if (n < 0)
        return RAFT_EINVAL;
    raft_entry e = {.term = r->term, .type = RAFT_ENTRY_CONF, .len = (uint32_t)n, .data = buf};
    int rc = log_append(r, &e);
    if (rc)
        return rc;
    r->pending_conf_index = last_index(r);
    if (index)
        *index = last_index(r);
    /* the new member starts probing from our last index */
    bcast_append(r);
    /* in a one-voter configuration the leader may now commit alone */
    leader_maybe_commit(r);
    return 0;
}

int raft_read_index(raft *r, uint64_t ctx)
{
    if (r->busy)
        return RAFT_EBUSY;
    if (r->role == RAFT_LEADER)
        return leader_read(r, ctx, r->id);
    if (r->leader == 0)
        return RAFT_ENOLEADER;
    raft_msg *m = msg_new(r, RAFT_MSG_READINDEX, r->leader);
    if (!m)
        return RAFT_EFULL;
    m->term = 0;
    m->ctx = ctx;
    return 0;
}

int raft_transfer_leader(raft *r, uint64_t to)
{
    if (r->busy)
        return RAFT_EBUSY;
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    if (to == r->id)
        return 0;
    progress *p = pr_get(r, to);
    if (!p || !raft_conf_has(&r->conf, to))
        return RAFT_EINVAL;
    r->transferee = to;
    r->election_elapsed = 0; /* the transfer is abandoned after one election timeout */
    if (p->match == last_index(r))
        send_timeout_now(r, to);
    else
        send_append(r, p, true);
    return 0;
}

int raft_compact(raft *r, uint64_t index, uint8_t *data, uint32_t len)
{
    if (r->busy)
        return RAFT_EBUSY;
    if (index <= r->snap.index || index > r->applied || index < r->off)
        return RAFT_EINVAL;
    raft_snapshot s = {.index = index, .term = term_at(r, index), .len = len, .data = data};
    conf_at(r, index, &s.conf);
    grave_add(r, r->snap.data);
    r->snap = s;
    uint64_t upto = index > r->cfg.compact_margin ? index - r->cfg.compact_margin : 0;
    if (upto > r->off)
        log_compact(r, upto);
    return 0;
}

/* ---------------------------------------------------------------- ready / advance */

static raft_hard_state hard_state(const raft *r)
{
    return (raft_hard_state){.term = r->term, .vote = r->vote, .commit = r->commit};
}

int raft_get_ready(raft *r, raft_ready *rd)
{
    memset(rd, 0, sizeof(*rd));
    if (r->busy)
        return 0;
    if (r->bcast_pending && r->role == RAFT_LEADER)
        bcast_append(r);
    r->bcast_pending = false;
    raft_hard_state hs = hard_state(r);
    bool hs_changed = memcmp(&hs, &r->prev_hs, sizeof(hs)) != 0;
    uint64_t last = last_index(r);
    uint64_t apply_from = r->snap_pending ? r->snap.index : r->applied;
    uint64_t apply_to = r->commit;
    if (!hs_changed && !r->snap_pending && r->stable >= last && r->n_out == 0 &&
        apply_to <= apply_from && r->n_rs == 0) {
        grave_empty(r); /* nothing can point at dead memory now */
        return 0;
    }
    rd->has_hard_state = hs_changed;
    rd->hard_state = hs;
    if (r->snap_pending)
        rd->snapshot = &r->snap;
    if (r->stable < last) {
        rd->entries = entry_at(r, r->stable + 1);
        rd->n_entries = (size_t)(last - r->stable);
    }
    rd->must_sync = r->snap_pending || rd->n_entries > 0 || hs.term != r->prev_hs.term ||
                    hs.vote != r->prev_hs.vote;
    rd->msgs = r->out;
    rd->n_msgs = r->n_out;
    if (apply_to > apply_from) {
        rd->committed = entry_at(r, apply_from + 1);
        rd->n_committed = (size_t)(apply_to - apply_from);
    }
    rd->reads = r->rs;
    rd->n_reads = r->n_rs;
    rd->leader = r->leader;
    rd->role = r->role;
    r->busy = true;
    r->ready_last = last;
    r->ready_applied = apply_to > apply_from ? apply_to : apply_from;
    return 1;
}

void raft_advance(raft *r, const raft_ready *rd)
{
    if (!r->busy)
        return;
    r->busy = false;
    if (rd->has_hard_state)
        r->prev_hs = rd->hard_state;
    r->snap_pending = false;
    r->stable = r->ready_last;
    r->applied = r->ready_applied;
    r->n_out = 0;
    r->n_rs = 0;
    grave_empty(r);
    if (r->role == RAFT_LEADER) {
        /* our own entries are durable now: they count toward the quorum */
        leader_maybe_commit(r);
    }
}

/* ---------------------------------------------------------------- lifecycle */

int raft_new(const raft_config *cfg, const raft_storage *st, raft **out, char *err, size_t errlen)
{
    *out = NULL;
    if (cfg->id == 0 || cfg->election_ticks < 2 || cfg->heartbeat_ticks == 0 ||
        cfg->heartbeat_ticks >= cfg->election_ticks || cfg->max_inflight == 0 ||
        cfg->max_inflight > INFLIGHT_CAP || cfg->max_msg_bytes == 0) {
        snprintf(err, errlen,
                 "raft config: need id != 0, election_ticks >= 2, 0 < heartbeat_ticks < "
                 "election_ticks, 0 < max_inflight <= %d, max_msg_bytes > 0",
                 INFLIGHT_CAP);
        return RAFT_EINVAL;
    }
    if (cfg->lease_read && !cfg->check_quorum) {
        snprintf(err, errlen, "raft config: lease_read requires check_quorum");
        return RAFT_EINVAL;
    }
    const raft_snapshot *s = &st->snapshot;
    for (size_t i = 0; i < st->n_entries; i++)
        if (st->entries[i].index != s->index + 1 + i || st->entries[i].term < s->term ||
            (i && st->entries[i].term < st->entries[i - 1].term)) {
            snprintf(err, errlen,
                     "raft storage: entry %zu has index %llu term %llu, expected "
                     "index %llu after snapshot %llu",
                     i, (unsigned long long)st->entries[i].index,
                     (unsigned long long)st->entries[i].term,
                     (unsigned long long)s->index + 1 + (unsigned long long)i,
                     (unsigned long long)s->index);
            return RAFT_ECORRUPT;
        }
    uint64_t last = s->index + st->n_entries;
    if (st->hs.commit > last) {
        snprintf(err, errlen, "raft storage: commit index %llu beyond last log index %llu",
                 (unsigned long long)st->hs.commit, (unsigned long long)last);
        return RAFT_ECORRUPT;
    }
    raft *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return RAFT_ENOMEM;
    }
    r->cfg = *cfg;
    r->id = cfg->id;
    r->rng = (cfg->seed ^ (cfg->id * 0x9e3779b97f4a7c15ull)) | 1;
    r->term = st->hs.term;
    r->vote = st->hs.vote;
    r->off = s->index;
    r->off_term = s->term;
    r->snap = *s;
    r->snap.data = NULL;
    if (s->len) {
        uint8_t *d = malloc(s->len);
        if (!d) {
            free(r);
            snprintf(err, errlen, "out of memory");
            return RAFT_ENOMEM;
        }
        memcpy(d, s->data, s->len);
        r->snap.data = d;
    }
    r->base_conf = s->conf;
    r->conf = s->conf;
    for (size_t i = 0; i < st->n_entries; i++)
        if (log_append(r, &st->entries[i]) != 0) {
            raft_free(r);
            snprintf(err, errlen, "out of memory");
            return RAFT_ENOMEM;
        }
    r->stable = last;
    r->commit = st->hs.commit > s->index ? st->hs.commit : s->index;
    r->applied = s->index;
    r->prev_hs = hard_state(r);
    progress_rebuild(r);
    become_follower(r, r->term, 0);
    grave_empty(r);
    *out = r;
    return 0;
}

void raft_free(raft *r)
{
    if (!r)
        return;
    grave_empty(r);
    for (size_t i = 0; i < r->n_ents; i++)
        free_const(r->ents[i].data);
    free(r->ents);
    free_const(r->snap.data);
    for (uint32_t i = 0; i < r->n_prs; i++)
        free(r->prs[i].inflight);
    free(r->prs);
    free(r->reads);
    free(r->out);
    free(r->rs);
    free(r->grave);
    free(r);
}

/* ---------------------------------------------------------------- accessors */

uint64_t raft_id(const raft *r)
{
    return r->id;
}
uint64_t raft_term(const raft *r)
{
    return r->term;
}
uint64_t raft_leader(const raft *r)
{
    return r->leader;
}
int raft_role(const raft *r)
{
    return r->role;
}
uint64_t raft_commit_index(const raft *r)
{
    return r->commit;
}
uint64_t raft_applied_index(const raft *r)
{
    return r->applied;
}
uint64_t raft_last_index(const raft *r)
{
    return last_index(r);
}
uint64_t raft_first_index(const raft *r)
{
    return r->off + 1;
}
uint64_t raft_term_at(const raft *r, uint64_t index)
{
    return term_at(r, index);
}
const raft_entry *raft_entry_at(const raft *r, uint64_t index)
{
    if (index <= r->off || index > last_index(r))
        return NULL;
    return &r->ents[index - r->off - 1];
}
const raft_conf *raft_get_conf(const raft *r)
{
    return &r->conf;
}
uint64_t raft_snapshot_index(const raft *r)
{
    return r->snap.index;
}
const raft_snapshot *raft_get_snapshot(const raft *r)
{
    return &r->snap;
}
