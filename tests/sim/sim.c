/* Deterministic simulator for the raft core with the real WAL and snapshot code.
 *
 * One process, up to 5 members, a simulated network (drop, duplicate, reorder, delay,
 * symmetric and one-way partitions that heal), simulated disks (crash at any operation,
 * unsynced writes lost or torn), per-member clock rates, client writes, ReadIndex reads,
 * leadership transfers, membership changes, snapshots/compaction. Every random choice
 * comes from the seed, so a seed replays exactly.
 *
 * Checked after every event: Election Safety, Leader Append-Only, Log Matching (same
 * index+term => same entry and same predecessor term), Leader Completeness (a leader of
 * term T holds every applied entry of terms < T), State Machine Safety (every member
 * applies the same entry and reaches the same state hash at each index, snapshots
 * included), reads are linearizable (a confirmed read index covers every write applied
 * anywhere before the read was issued), and after each crash the recovered disk state
 * holds everything the member had fsynced ("no acknowledged write lost"). After the
 * faults stop: a leader within a bounded time and every member of the final configuration
 * applies every committed entry.
 *
 *   raft-sim --seed N [-v]            one run, -v traces every event
 *   raft-sim --seeds FIRST COUNT      many runs; stops at the first failure
 *   raft-sim --bench ENTRIES          committed entries/s, 3 members, zero-latency network */
#include "dcs/raft.h"
#include "dcs/snap.h"
#include "dcs/wal.h"
#include "tests/sim/sim_disk.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAXN 5
#define TICK ((uint64_t)100) /* simulated time units per nominal tick */

enum { EV_TICK, EV_DELIVER, EV_FAULT, EV_RESTART, EV_HEAL, EV_CLIENT };

typedef struct event {
    uint64_t time, seq;
    int type, node;
    uint8_t *buf;
    size_t len;
} event;

typedef struct node {
    int id;
    bool exists, up, initial;
    raft *r;
    wal *w;
    sim_disk *disk;
    wal_fs fs;
    uint32_t tick_period;
    uint64_t sm_index, sm_hash;
    /* what this member has fsynced (for the crash-recovery check) */
    uint64_t *dterm;
    size_t dcap;
    uint64_t dlast, dsnap;
    raft_hard_state dhs;
    /* the batch whose sync failed (power lost during it) */
    bool fb_valid, fb_install;
    uint64_t fb_first, fb_first_term, fb_install_index;
    /* leader append-only tracking */
    uint64_t la_term, la_last, la_lterm, la_hash;
    uint64_t snap_every;
    size_t incarnation; /* tick events of an earlier life are ignored */
    uint64_t max_term;  /* the term never goes backwards, restarts included */
} node;

typedef struct cm_rec {
    uint64_t term, ehash, chain;
    uint64_t cterm; /* term of the first leader seen to count this index as committed */
    uint64_t lterm; /* the entry's term in that leader's log */
} cm_rec;

typedef struct lm_rec {
    uint64_t index, term, ehash, prev;
} lm_rec;

typedef struct read_rec {
    uint64_t ctx, need;
    bool used;
} read_rec;

typedef struct sim {
    uint64_t seed, rng;
    int verbose;
    int nn; /* nodes that may ever exist: 1..nn */
    node nodes[MAXN + 1];
    raft_conf initial;
    /* events */
    event *heap;
    size_t n_ev, cap_ev;
    uint64_t now, seq;
    /* network */
    uint32_t drop_pct, dup_pct, delay_min, delay_max, long_pct;
    bool block[MAXN + 1][MAXN + 1];
    bool faults;
    uint64_t fault_end, deadline;
    /* raft config for this seed */
    raft_config cfg;
    uint64_t seg_bytes;
    /* invariant state */
    uint64_t *leader_of_term;
    size_t lot_cap;
    cm_rec *cm;
    size_t cm_cap;
    uint64_t max_applied;
    uint64_t max_lcommit; /* highest commit index any leader reached */
    lm_rec *lm;
    size_t lm_cap, lm_n;
    read_rec reads[256];
    uint64_t next_ctx;
    uint64_t payload_seq;
    /* stats */
    uint64_t st_crash, st_torn_crash, st_part, st_oneway, st_prop, st_reads_ok, st_transfer,
        st_conf, st_installs, st_compact, st_msgs, st_dropped, st_dup, st_events;
    uint64_t first_leader_after_heal;
    char fail[600];
    bool bench;
} sim;

static raft_entry dec_ents[RAFT_MSG_MAX_ENTRIES];
static const char *prog = "build/sim/raft-sim";

/* Totals over a --seeds run, for the report line. */
static struct {
    uint64_t events, msgs, dropped, dup, crashes, torn, parts, oneway, transfers, confs, installs,
        reads, applied, max_leader_ticks, max_converge_ticks;
} agg;

/* ---------------------------------------------------------------- utilities */

static uint64_t rnd(sim *s)
{
    /* splitmix64 */
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rnd_cb(void *ctx)
{
    return rnd(ctx);
}

static uint64_t below(sim *s, uint64_t n)
{
    return n ? rnd(s) % n : 0;
}

static void fail(sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(sim *s, const char *fmt, ...)
{
    if (s->fail[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->fail, sizeof(s->fail), fmt, ap);
    va_end(ap);
}

static void trace(sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void trace(sim *s, const char *fmt, ...)
{
    if (!s->verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    printf("%8" PRIu64 " ", s->now);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

static void *xalloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "raft-sim: out of memory\n");
        exit(2);
    }
    return q;
}

static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        /* callers pass initialised bytes; the analyzer cannot see through entry data */
        // NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t entry_hash(const raft_entry *e)
{
    uint64_t h = fnv(&e->type, 1, 0xcbf29ce484222325ull);
    return fnv(e->data, e->len, h);
}

static uint64_t chain_next(uint64_t prev, const raft_entry *e)
{
    uint64_t v[4] = {prev, e->index, e->term, entry_hash(e)};
    return fnv(v, sizeof(v), 0xcbf29ce484222325ull);
}

/* ---------------------------------------------------------------- event heap */

static bool ev_less(const event *a, const event *b)
{
    return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

static void ev_push(sim *s, uint64_t time, int type, int who, uint8_t *buf, size_t len)
{
    if (s->n_ev == s->cap_ev) {
        s->cap_ev = s->cap_ev ? s->cap_ev * 2 : 256;
        s->heap = xalloc(s->heap, s->cap_ev * sizeof(*s->heap));
    }
    size_t i = s->n_ev++;
    event e = {.time = time, .seq = s->seq++, .type = type, .node = who, .buf = buf, .len = len};
    while (i > 0 && ev_less(&e, &s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = e;
}

static event ev_pop(sim *s)
{
    event top = s->heap[0];
    event last = s->heap[--s->n_ev];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const event *cand = &last;
        if (l < s->n_ev && ev_less(&s->heap[l], cand)) {
            m = l;
            cand = &s->heap[l];
        }
        if (r < s->n_ev && ev_less(&s->heap[r], cand))
            m = r;
        if (m == i)
            break;
        s->heap[i] = s->heap[m];
        i = m;
    }
    if (s->n_ev)
        s->heap[i] = last;
    return top;
}

/* ---------------------------------------------------------------- global records */

static void lot_check(sim *s, uint64_t term, int id)
{
    if (term >= s->lot_cap) {
        size_t nc = s->lot_cap ? s->lot_cap : 64;
        while (nc <= term)
            nc *= 2;
        s->leader_of_term = xalloc(s->leader_of_term, nc * sizeof(uint64_t));
        memset(s->leader_of_term + s->lot_cap, 0, (nc - s->lot_cap) * sizeof(uint64_t));
        s->lot_cap = nc;
    }
    if (s->leader_of_term[term] && s->leader_of_term[term] != (uint64_t)id)
        fail(s, "Election Safety: term %" PRIu64 " has leaders %" PRIu64 " and %d", term,
             s->leader_of_term[term], id);
    s->leader_of_term[term] = (uint64_t)id;
}

static cm_rec *cm_at(sim *s, uint64_t index)
{
    if (index >= s->cm_cap) {
        size_t nc = s->cm_cap ? s->cm_cap : 256;
        while (nc <= index)
            nc *= 2;
        s->cm = xalloc(s->cm, nc * sizeof(*s->cm));
        memset(s->cm + s->cm_cap, 0, (nc - s->cm_cap) * sizeof(*s->cm));
        s->cm_cap = nc;
    }
    return &s->cm[index];
}

/* Log Matching: one (entry hash, predecessor term) per (index, term) ever persisted. */
static void lm_check(sim *s, int id, uint64_t index, uint64_t term, uint64_t ehash, uint64_t prev)
{
    if (s->lm_n * 2 >= s->lm_cap) {
        size_t oc = s->lm_cap, nc = oc ? oc * 2 : 1024;
        lm_rec *old = s->lm;
        s->lm = calloc(nc, sizeof(*s->lm));
        if (!s->lm)
            exit(2);
        s->lm_cap = nc;
        for (size_t i = 0; i < oc; i++)
            if (old[i].index) {
                size_t h =
                    (size_t)((old[i].index * 31 + old[i].term) * 0x9e3779b97f4a7c15ull) & (nc - 1);
                while (s->lm[h].index)
                    h = (h + 1) & (nc - 1);
                s->lm[h] = old[i];
            }
        free(old);
    }
    size_t h = (size_t)((index * 31 + term) * 0x9e3779b97f4a7c15ull) & (s->lm_cap - 1);
    while (s->lm[h].index) {
        lm_rec *r = &s->lm[h];
        if (r->index == index && r->term == term) {
            if (r->ehash != ehash)
                fail(s,
                     "Log Matching: node %d has a different entry at index %" PRIu64
                     " term %" PRIu64,
                     id, index, term);
            if (prev && r->prev && r->prev != prev)
                fail(s,
                     "Log Matching: node %d entry %" PRIu64 "/%" PRIu64 " follows term %" PRIu64
                     ", elsewhere %" PRIu64,
                     id, index, term, prev, r->prev);
            if (!r->prev)
                r->prev = prev;
            return;
        }
        h = (h + 1) & (s->lm_cap - 1);
    }
    s->lm[h] = (lm_rec){.index = index, .term = term, .ehash = ehash, .prev = prev};
    s->lm_n++;
}

/* ---------------------------------------------------------------- state machine */

static void sm_apply(sim *s, node *n, const raft_entry *e)
{
    if (e->index != n->sm_index + 1) {
        fail(s, "node %d applies index %" PRIu64 " after %" PRIu64, n->id, e->index, n->sm_index);
        return;
    }
    uint64_t chain = chain_next(n->sm_hash, e);
    cm_rec *c = cm_at(s, e->index);
    if (c->term) {
        if (c->term != e->term || c->ehash != entry_hash(e) || c->chain != chain)
            fail(s,
                 "State Machine Safety: node %d applied a different entry or state at "
                 "index %" PRIu64 " (term %" PRIu64 " vs %" PRIu64 ")",
                 n->id, e->index, e->term, c->term);
    } else {
        c->term = e->term;
        c->ehash = entry_hash(e);
        c->chain = chain;
    }
    n->sm_index = e->index;
    n->sm_hash = chain;
    if (e->index > s->max_applied)
        s->max_applied = e->index;
}

/* The store's snapshot: index, state hash, and filler so snapshots have some size. */
#define SNAP_DATA_LEN 96
static void sm_encode(const node *n, uint8_t *buf)
{
    memset(buf, 0, SNAP_DATA_LEN);
    memcpy(buf, &n->sm_index, 8);
    memcpy(buf + 8, &n->sm_hash, 8);
    for (int i = 16; i < SNAP_DATA_LEN; i++)
        buf[i] = (uint8_t)(n->sm_hash >> (i % 8)) ^ (uint8_t)i;
}

static void sm_install(sim *s, node *n, const raft_snapshot *snap)
{
    if (snap->len != SNAP_DATA_LEN) {
        fail(s, "node %d: snapshot data has %u bytes", n->id, snap->len);
        return;
    }
    uint64_t idx, hash;
    memcpy(&idx, snap->data, 8);
    memcpy(&hash, snap->data + 8, 8);
    if (idx != snap->index)
        fail(s, "node %d: snapshot says index %" PRIu64 ", data %" PRIu64, n->id, snap->index, idx);
    cm_rec *c = cm_at(s, idx);
    if (!c->term || c->chain != hash || c->term != snap->term)
        fail(s,
             "State Machine Safety: node %d installs a snapshot at %" PRIu64
             " that does not match the applied history",
             n->id, idx);
    n->sm_index = idx;
    n->sm_hash = hash;
}

/* ---------------------------------------------------------------- durable expectations */

static void dterm_set(node *n, uint64_t i, uint64_t t)
{
    if (i >= n->dcap) {
        size_t nc = n->dcap ? n->dcap : 256;
        while (nc <= i)
            nc *= 2;
        n->dterm = xalloc(n->dterm, nc * sizeof(uint64_t));
        memset(n->dterm + n->dcap, 0, (nc - n->dcap) * sizeof(uint64_t));
        n->dcap = nc;
    }
    n->dterm[i] = t;
}

/* After a crash: what came back must hold everything fsynced before it. */
static void check_recovered(sim *s, node *n, const wal_state *st)
{
    const raft_hard_state *h = &st->hs;
    if (h->term < n->dhs.term || (h->term == n->dhs.term && n->dhs.vote && h->vote != n->dhs.vote))
        fail(s,
             "node %d lost its fsynced term/vote: had %" PRIu64 "/%" PRIu64 ", recovered %" PRIu64
             "/%" PRIu64,
             n->id, n->dhs.term, n->dhs.vote, h->term, h->vote);
    if (h->commit < n->dhs.commit)
        fail(s, "node %d lost its fsynced commit index %" PRIu64 " (recovered %" PRIu64 ")", n->id,
             n->dhs.commit, h->commit);
    if (st->snap_index < n->dsnap)
        fail(s, "node %d lost its snapshot %" PRIu64 " (recovered %" PRIu64 ")", n->id, n->dsnap,
             st->snap_index);
    if (n->fb_valid && n->fb_install && st->snap_index >= n->fb_install_index)
        return; /* the install that was being written replaced the log */
    uint64_t lo = (st->snap_index > n->dsnap ? st->snap_index : n->dsnap) + 1;
    uint64_t rlast = st->snap_index + st->n_entries;
    bool fb_landed = false;
    if (n->fb_valid && n->fb_first > st->snap_index && n->fb_first <= rlast &&
        st->entries[n->fb_first - st->snap_index - 1].term == n->fb_first_term)
        fb_landed = true;
    for (uint64_t i = lo; i <= n->dlast; i++) {
        uint64_t rt = i <= rlast ? st->entries[i - st->snap_index - 1].term : 0;
        if (rt == n->dterm[i])
            continue;
        if (fb_landed && i >= n->fb_first)
            continue; /* replaced by the batch in flight at the crash */
        fail(s, "node %d lost fsynced entry %" PRIu64 " (term %" PRIu64 ", recovered %" PRIu64 ")",
             n->id, i, n->dterm[i], rt);
        return;
    }
}

/* ---------------------------------------------------------------- nodes */

static void node_start(sim *s, node *n);

static void node_crash(sim *s, node *n, const char *why)
{
    trace(s, "node %d CRASH (%s)", n->id, why);
    s->st_crash++;
    if (sim_disk_failed(n->disk))
        s->st_torn_crash++; /* power went out inside a disk operation */
    raft_free(n->r);
    n->r = NULL;
    wal_close(n->w);
    n->w = NULL;
    sim_disk_crash(n->disk, rnd_cb, s);
    n->up = false;
    uint64_t delay = s->faults ? TICK * (1 + below(s, 30)) : 1;
    ev_push(s, s->now + delay, EV_RESTART, n->id, NULL, 0);
}

static void net_send(sim *s, const raft_msg *m)
{
    s->st_msgs++;
    int to = (int)m->to, from = (int)m->from;
    if (to < 1 || to > s->nn)
        return;
    if (s->faults && (s->block[from][to] || below(s, 100) < s->drop_pct)) {
        s->st_dropped++;
        return;
    }
    size_t len = raft_msg_encoded_len(m);
    int copies = s->faults && below(s, 100) < s->dup_pct ? 2 : 1;
    if (copies == 2)
        s->st_dup++;
    for (int c = 0; c < copies; c++) {
        uint8_t *buf = xalloc(NULL, len);
        if (raft_msg_encode(m, buf, len) != len) {
            fail(s, "raft_msg_encode failed for %s", raft_msg_type_name(m->type));
            free(buf);
            return;
        }
        uint64_t d = s->delay_min + below(s, s->delay_max - s->delay_min + 1);
        if (s->faults && below(s, 100) < s->long_pct)
            d += below(s, 5 * TICK); /* reordering */
        ev_push(s, s->now + d, EV_DELIVER, to, buf, len);
    }
}

static void maybe_compact(sim *s, node *n)
{
    uint64_t si = raft_snapshot_index(n->r);
    if (n->sm_index < si + n->snap_every || n->sm_index > raft_applied_index(n->r))
        return;
    uint8_t *data = xalloc(NULL, SNAP_DATA_LEN);
    sm_encode(n, data);
    char err[256];
    if (raft_compact(n->r, n->sm_index, data, SNAP_DATA_LEN) != 0) {
        free(data);
        return;
    }
    s->st_compact++;
    /* the core filled in term and the configuration as of the index */
    raft_snapshot snap = *raft_get_snapshot(n->r);
    if (snap_save(&n->fs, "snap", &snap, err, sizeof(err)) != 0 ||
        wal_mark_snapshot(n->w, snap.index, snap.term, 0) != 0 || wal_sync(n->w) != 0) {
        node_crash(s, n, "disk failed during snapshot");
        return;
    }
    if (snap.index > n->dsnap)
        n->dsnap = snap.index;
    if (wal_release(n->w, snap.index) != 0 || snap_purge(&n->fs, "snap", si) != 0)
        node_crash(s, n, "disk failed during release");
}

/* Takes every Ready batch: persist -> send -> apply -> advance. */
static void node_drain(sim *s, node *n)
{
    raft_ready rd;
    char err[256];
    while (n->up && !s->fail[0] && raft_get_ready(n->r, &rd)) {
        /* 1. persist */
        n->fb_valid = true;
        n->fb_install = rd.snapshot != NULL;
        n->fb_install_index = rd.snapshot ? rd.snapshot->index : 0;
        n->fb_first = rd.n_entries ? rd.entries[0].index : 0;
        n->fb_first_term = rd.n_entries ? rd.entries[0].term : 0;
        if (rd.n_entries == 0)
            n->fb_first = 0;
        bool ok = true;
        if (rd.snapshot) {
            ok = snap_save(&n->fs, "snap", rd.snapshot, err, sizeof(err)) == 0 &&
                 wal_mark_snapshot(n->w, rd.snapshot->index, rd.snapshot->term, 1) == 0;
        }
        if (ok)
            ok = wal_save(n->w, rd.has_hard_state ? &rd.hard_state : NULL, rd.entries,
                          rd.n_entries) == 0;
        if (ok && rd.must_sync)
            ok = wal_sync(n->w) == 0;
        if (!ok) {
            if (rd.n_entries == 0)
                n->fb_first = 0;
            node_crash(s, n, "disk failed while persisting");
            return;
        }
        n->fb_valid = false;
        if (rd.must_sync) {
            if (rd.snapshot) {
                n->dsnap = rd.snapshot->index;
                n->dlast = rd.snapshot->index;
            }
            if (rd.n_entries) {
                n->dlast = rd.entries[0].index - 1;
                for (size_t i = 0; i < rd.n_entries; i++)
                    dterm_set(n, rd.entries[i].index, rd.entries[i].term);
                n->dlast = rd.entries[rd.n_entries - 1].index;
            }
            if (rd.has_hard_state)
                n->dhs = rd.hard_state;
        }
        for (size_t i = 0; i < rd.n_entries; i++) {
            const raft_entry *e = &rd.entries[i];
            lm_check(s, n->id, e->index, e->term, entry_hash(e), raft_term_at(n->r, e->index - 1));
        }
        /* 2. send */
        for (size_t i = 0; i < rd.n_msgs; i++)
            net_send(s, &rd.msgs[i]);
        /* 3. apply */
        if (rd.snapshot) {
            s->st_installs++;
            sm_install(s, n, rd.snapshot);
        }
        for (size_t i = 0; i < rd.n_committed; i++)
            sm_apply(s, n, &rd.committed[i]);
        /* 4. reads */
        for (size_t i = 0; i < rd.n_reads; i++) {
            const raft_read_state *q = &rd.reads[i];
            read_rec *rr = &s->reads[q->ctx % 256];
            if (!rr->used || rr->ctx != q->ctx)
                continue; /* duplicate answer of a forwarded read */
            rr->used = false;
            if (!q->ok)
                continue;
            s->st_reads_ok++;
            if (q->index < rr->need)
                fail(s,
                     "stale read on node %d: read index %" PRIu64 " but index %" PRIu64
                     " was applied before the read began",
                     n->id, q->index, rr->need);
        }
        raft_advance(n->r, &rd);
        maybe_compact(s, n);
    }
}

static void node_start(sim *s, node *n)
{
    char err[512];
    if (!n->disk) {
        n->disk = sim_disk_new();
        sim_disk_fs(n->disk, &n->fs);
    }
    raft_snapshot snap;
    int skipped;
    int rc = snap_load_latest(&n->fs, "snap", &snap, &skipped, err, sizeof(err));
    if (rc < 0 || skipped) {
        fail(s, "node %d: snapshot load: %s", n->id, rc < 0 ? "I/O error" : err);
        return;
    }
    if (rc == 1)
        memset(&snap, 0, sizeof(snap));
    wal_state st;
    wal_options wo = {.segment_bytes = s->seg_bytes};
    if (wal_open(&n->fs, "wal", &wo, &n->w, &st, err, sizeof(err)) != 0) {
        if (sim_disk_failed(n->disk)) { /* power lost again during recovery */
            snap_free(&snap);
            sim_disk_crash(n->disk, rnd_cb, s);
            ev_push(s, s->now + TICK, EV_RESTART, n->id, NULL, 0);
            return;
        }
        fail(s, "node %d: WAL recovery refused: %s", n->id, err);
        snap_free(&snap);
        return;
    }
    if (wal_adopt_snapshot(n->w, &st, snap.index, snap.term, err, sizeof(err)) != 0) {
        if (sim_disk_failed(n->disk)) { /* power lost again while recording it */
            wal_state_free(&st);
            snap_free(&snap);
            wal_close(n->w);
            n->w = NULL;
            sim_disk_crash(n->disk, rnd_cb, s);
            ev_push(s, s->now + TICK, EV_RESTART, n->id, NULL, 0);
            return;
        }
        fail(s, "node %d: %s", n->id, err);
        wal_state_free(&st);
        snap_free(&snap);
        return;
    }
    if (n->exists)
        check_recovered(s, n, &st);
    raft_storage stor = {.hs = st.hs, .entries = st.entries, .n_entries = st.n_entries};
    stor.snapshot = snap;
    if (snap.index == 0 && n->initial)
        stor.snapshot.conf = s->initial;
    raft_config cfg = s->cfg;
    cfg.id = (uint64_t)n->id;
    cfg.seed = rnd(s);
    if (raft_new(&cfg, &stor, &n->r, err, sizeof(err)) != 0) {
        fail(s, "node %d: raft_new: %s", n->id, err);
        wal_state_free(&st);
        snap_free(&snap);
        return;
    }
    n->sm_index = 0;
    n->sm_hash = 0;
    if (snap.index)
        sm_install(s, n, &snap);
    n->dsnap = st.snap_index;
    n->dlast = st.snap_index + st.n_entries;
    for (size_t i = 0; i < st.n_entries; i++)
        dterm_set(n, st.entries[i].index, st.entries[i].term);
    n->dhs = st.hs;
    n->fb_valid = false;
    n->la_term = 0;
    wal_state_free(&st);
    snap_free(&snap);
    n->exists = true;
    n->up = true;
    trace(s, "node %d START term %" PRIu64 " last %" PRIu64 " commit %" PRIu64, n->id,
          raft_term(n->r), raft_last_index(n->r), raft_commit_index(n->r));
    /* one tick chain per life: a restart before the old chain's next tick must not leave
     * two chains running (that would double this member's clock rate) */
    n->incarnation++;
    ev_push(s, s->now + below(s, n->tick_period) + 1, EV_TICK, n->id, NULL, n->incarnation);
}

/* ---------------------------------------------------------------- invariants */

static void check_node(sim *s, node *n)
{
    if (!n->up)
        return;
    /* clients (Patroni) see raft_term in every response and require it monotonic */
    if (raft_term(n->r) < n->max_term)
        fail(s, "node %d: term went back from %" PRIu64 " to %" PRIu64, n->id, n->max_term,
             raft_term(n->r));
    n->max_term = raft_term(n->r);
    if (raft_role(n->r) != RAFT_LEADER)
        return;
    raft *r = n->r;
    uint64_t term = raft_term(r), last = raft_last_index(r);
    lot_check(s, term, n->id);
    /* Leader Append-Only */
    /* The entry at the leader's previous last index must still be the same entry (term AND
     * content hash): a leader that truncated and re-appended in its own term would keep the
     * term but not the content. With Log Matching checked across members, an unchanged last
     * entry means an unchanged prefix. */
    if (n->la_term == term) {
        uint64_t first = raft_first_index(r);
        const raft_entry *e = n->la_last >= first ? raft_entry_at(r, n->la_last) : NULL;
        if (last < n->la_last ||
            (n->la_last >= first && raft_term_at(r, n->la_last) != n->la_lterm) ||
            (e && n->la_hash && entry_hash(e) != n->la_hash))
            fail(s, "Leader Append-Only: leader %d of term %" PRIu64 " rewrote its log", n->id,
                 term);
    }
    n->la_term = term;
    n->la_last = last;
    n->la_lterm = raft_term_at(r, last);
    const raft_entry *le = raft_entry_at(r, last);
    n->la_hash = le ? entry_hash(le) : 0;
    /* Leader Completeness: an entry committed in term C is in the log of every leader of a
     * term > C. Commit terms are recorded from the leaders' commit indexes. */
    uint64_t c = raft_commit_index(r);
    for (uint64_t i = s->max_lcommit + 1; i <= c; i++) {
        cm_at(s, i)->cterm = term;
        s->cm[i].lterm = raft_term_at(r, i);
    }
    if (c > s->max_lcommit)
        s->max_lcommit = c;
    for (uint64_t i = s->max_lcommit; i > 0; i--) {
        const cm_rec *m = cm_at(s, i);
        if (m->cterm == 0 || m->cterm >= term)
            continue;
        if (i <= raft_snapshot_index(r) || i < raft_first_index(r))
            break; /* in its snapshot */
        uint64_t want = m->term ? m->term : m->lterm;
        if (want == 0)
            break; /* compacted in the committing leader already: covered by snapshots */
        if (raft_term_at(r, i) != want)
            fail(s,
                 "Leader Completeness: leader %d of term %" PRIu64 " lacks entry %" PRIu64
                 " (term %" PRIu64 ") committed in term %" PRIu64,
                 n->id, term, i, want, m->cterm);
        break;
    }
}

static void check_all(sim *s)
{
    for (int i = 1; i <= s->nn; i++)
        check_node(s, &s->nodes[i]);
}

/* ---------------------------------------------------------------- faults and clients */

static node *find_leader(sim *s)
{
    node *best = NULL;
    for (int i = 1; i <= s->nn; i++) {
        node *n = &s->nodes[i];
        if (n->up && raft_role(n->r) == RAFT_LEADER &&
            (!best || raft_term(n->r) > raft_term(best->r)))
            best = n;
    }
    return best;
}

static node *random_up(sim *s)
{
    int c[MAXN], k = 0;
    for (int i = 1; i <= s->nn; i++)
        if (s->nodes[i].up)
            c[k++] = i;
    return k ? &s->nodes[c[below(s, (uint64_t)k)]] : NULL;
}

static void client_write(sim *s)
{
    node *l = find_leader(s);
    if (!l)
        return;
    uint32_t len = (uint32_t)below(s, 64);
    if (below(s, 20) == 0)
        len = 300 + (uint32_t)below(s, 3000); /* bigger than a batch */
    uint8_t *buf = xalloc(NULL, len + 8);
    uint64_t id = ++s->payload_seq;
    memcpy(buf, &id, 8);
    for (uint32_t i = 8; i < len; i++)
        buf[i] = (uint8_t)rnd(s);
    int rc = raft_propose(l->r, buf, len, NULL);
    free(buf);
    if (rc == 0)
        s->st_prop++;
    node_drain(s, l);
}

static void client_read(sim *s)
{
    node *n = random_up(s);
    if (!n)
        return;
    uint64_t ctx = ++s->next_ctx;
    read_rec *rr = &s->reads[ctx % 256];
    rr->ctx = ctx;
    rr->need = s->max_applied;
    rr->used = true;
    if (raft_read_index(n->r, ctx) != 0)
        rr->used = false;
    node_drain(s, n);
}

static void fault(sim *s)
{
    uint64_t k = below(s, 100);
    if (k < 8) { /* symmetric partition */
        uint32_t side = (uint32_t)below(s, 1u << s->nn);
        for (int a = 1; a <= s->nn; a++)
            for (int b = 1; b <= s->nn; b++)
                if (((side >> (a - 1)) & 1) != ((side >> (b - 1)) & 1))
                    s->block[a][b] = true;
        s->st_part++;
        trace(s, "PARTITION mask %x", side);
        ev_push(s, s->now + TICK * (5 + below(s, 40)), EV_HEAL, 0, NULL, 0);
    } else if (k < 13) { /* one-way */
        int a = 1 + (int)below(s, (uint64_t)s->nn), b = 1 + (int)below(s, (uint64_t)s->nn);
        s->block[a][b] = true;
        s->st_oneway++;
        trace(s, "ONE-WAY block %d->%d", a, b);
        ev_push(s, s->now + TICK * (5 + below(s, 40)), EV_HEAL, 0, NULL, 0);
    } else if (k < 18) { /* crash now */
        node *n = random_up(s);
        if (n)
            node_crash(s, n, "power off");
    } else if (k < 24) { /* power loss in the middle of a coming disk operation */
        node *n = random_up(s);
        if (n)
            sim_disk_fail_after(n->disk, (uint32_t)below(s, 12));
    } else if (k < 30) { /* leadership transfer (graceful stop) */
        node *l = find_leader(s);
        if (l) {
            const raft_conf *c = raft_get_conf(l->r);
            uint64_t to = c->ids[below(s, c->n)];
            if (raft_transfer_leader(l->r, to) == 0) {
                s->st_transfer++;
                trace(s, "TRANSFER %d -> %" PRIu64, l->id, to);
            }
            node_drain(s, l);
        }
    } else if (k < 34) { /* membership change */
        node *l = find_leader(s);
        if (!l)
            return;
        const raft_conf *c = raft_get_conf(l->r);
        int op = 0;
        uint64_t id = 0;
        if (c->n <= 3 || (c->n < (uint32_t)s->nn && below(s, 2))) {
            for (int i = 1; i <= s->nn; i++)
                if (!raft_conf_has(c, (uint64_t)i)) {
                    id = (uint64_t)i;
                    break;
                }
            op = RAFT_CONF_ADD;
            if (id && !s->nodes[id].up && !s->nodes[id].exists)
                node_start(s, &s->nodes[id]);
        } else {
            id = c->ids[below(s, c->n)];
            op = RAFT_CONF_REMOVE;
        }
        if (id && raft_change_member(l->r, op, id, NULL) == 0) {
            s->st_conf++;
            trace(s, "CONF %s %" PRIu64 " by %d", op == RAFT_CONF_ADD ? "add" : "remove", id,
                  l->id);
        }
        node_drain(s, l);
    }
}

static void heal_all(sim *s)
{
    memset(s->block, 0, sizeof(s->block));
}

/* ---------------------------------------------------------------- run */

static void deliver(sim *s, event *e)
{
    node *n = &s->nodes[e->node];
    if (!n->up)
        return;
    raft_msg m;
    char err[200];
    if (raft_msg_decode(e->buf, e->len, &m, dec_ents, RAFT_MSG_MAX_ENTRIES, err, sizeof(err)) !=
        0) {
        fail(s, "decode of an encoded message failed: %s", err);
        return;
    }
    if (s->verbose)
        trace(s,
              "%d -> %d %s term %" PRIu64 " idx %" PRIu64 " lt %" PRIu64 " n %u commit %" PRIu64
              "%s",
              (int)m.from, (int)m.to, raft_msg_type_name(m.type), m.term, m.index, m.log_term,
              m.n_entries, m.commit, m.reject ? " REJECT" : "");
    raft_step(n->r, &m);
    node_drain(s, n);
}

static bool converged(sim *s)
{
    node *l = find_leader(s);
    if (!l)
        return false;
    raft *r = l->r;
    uint64_t c = raft_commit_index(r);
    if (raft_term_at(r, c) != raft_term(r) || c != raft_last_index(r))
        return false;
    const raft_conf *conf = raft_get_conf(r);
    for (uint32_t i = 0; i < conf->n; i++) {
        node *n = &s->nodes[conf->ids[i]];
        if (!n->up || n->sm_index != c || raft_term(n->r) != raft_term(r))
            return false;
    }
    return true;
}

static void setup(sim *s, uint64_t seed)
{
    memset(s, 0, sizeof(*s));
    s->seed = seed;
    s->rng = seed * 0x2545f4914f6cdd1dull + 1;
    int voters = below(s, 3) == 0 ? 5 : 3;
    s->nn = voters == 5 ? 5 : 3 + (int)below(s, 3); /* spare members to add */
    s->initial.n = (uint32_t)voters;
    for (int i = 0; i < voters; i++)
        s->initial.ids[i] = (uint64_t)i + 1;
    raft_config_default(&s->cfg);
    s->cfg.election_ticks = 10;
    s->cfg.heartbeat_ticks = 1 + (uint32_t)below(s, 3);
    s->cfg.max_inflight = 1 + (uint32_t)below(s, 16);
    s->cfg.max_msg_bytes = 256 + (uint32_t)below(s, 4096);
    s->cfg.compact_margin = (uint32_t)below(s, 8);
    s->cfg.max_uncommitted_bytes = (uint64_t)64 * 1024;
    bool plain = below(s, 8) == 0; /* textbook Raft without the extensions, sometimes */
    s->cfg.pre_vote = !plain;
    s->cfg.check_quorum = !plain;
    /* clock rates: +-10 %, sometimes +-50 % (safety must not depend on clocks at all) */
    uint32_t drift = below(s, 4) == 0 ? 50 : 10; /* percent */
    if (!plain && below(s, 4) == 0) {
        s->cfg.lease_read = true;
        drift = 3; /* the documented clock assumption of the lease */
    }
    s->seg_bytes = 4096 * (1 + below(s, 4));
    s->drop_pct = (uint32_t)below(s, 15);
    s->dup_pct = (uint32_t)below(s, 5);
    s->delay_min = 1;
    s->delay_max = 1 + (uint32_t)below(s, 60);
    s->long_pct = (uint32_t)below(s, 10);
    s->faults = true;
    s->fault_end = TICK * (100 + below(s, 100));
    s->deadline = s->fault_end + TICK * 400;
    for (int i = 1; i <= s->nn; i++) {
        node *n = &s->nodes[i];
        n->id = i;
        n->initial = i <= voters;
        n->tick_period = TICK - drift + (uint32_t)below(s, 2 * drift + 1);
        n->snap_every = 10 + below(s, 40);
    }
}

static void teardown(sim *s)
{
    for (int i = 1; i <= s->nn; i++) {
        node *n = &s->nodes[i];
        raft_free(n->r);
        wal_close(n->w);
        sim_disk_free(n->disk);
        free(n->dterm);
    }
    for (size_t i = 0; i < s->n_ev; i++)
        free(s->heap[i].buf);
    free(s->heap);
    free(s->leader_of_term);
    free(s->cm);
    free(s->lm);
}

static int run_seed(uint64_t seed, int verbose, bool summary)
{
    static sim S;
    sim *s = &S;
    setup(s, seed);
    s->verbose = verbose;
    for (int i = 1; i <= s->nn; i++)
        if (s->nodes[i].initial)
            node_start(s, &s->nodes[i]);
    ev_push(s, TICK, EV_FAULT, 0, NULL, 0);
    ev_push(s, TICK / 2, EV_CLIENT, 0, NULL, 0);
    bool healed = false, done = false;
    uint64_t final_writes = 0;
    while (s->n_ev && !s->fail[0]) {
        event e = ev_pop(s);
        s->now = e.time;
        s->st_events++;
        if (!healed && s->now >= s->fault_end) {
            healed = true;
            s->faults = false;
            heal_all(s);
            for (int i = 1; i <= s->nn; i++)
                if (s->nodes[i].exists && !s->nodes[i].up)
                    ev_push(s, s->now + 1, EV_RESTART, i, NULL, 0);
            trace(s, "FAULTS END");
        }
        if (s->now > s->deadline) {
            free(e.buf);
            break;
        }
        switch (e.type) {
        case EV_TICK: {
            node *n = &s->nodes[e.node];
            if (!n->up || e.len != n->incarnation)
                break;
            raft_tick(n->r);
            node_drain(s, n);
            if (n->up)
                ev_push(s, s->now + n->tick_period, EV_TICK, n->id, NULL, n->incarnation);
            break;
        }
        case EV_DELIVER:
            deliver(s, &e);
            break;
        case EV_FAULT:
            if (s->faults) {
                fault(s);
                ev_push(s, s->now + TICK / 2 + below(s, 3 * TICK), EV_FAULT, 0, NULL, 0);
            }
            break;
        case EV_HEAL:
            if (s->faults)
                heal_all(s);
            break;
        case EV_RESTART: {
            node *n = &s->nodes[e.node];
            if (!n->up)
                node_start(s, n);
            break;
        }
        case EV_CLIENT:
            if (healed && final_writes > 3)
                break; /* let the cluster settle */
            if (below(s, 3) == 0)
                client_read(s);
            else
                client_write(s);
            if (healed)
                final_writes++;
            ev_push(s, s->now + 1 + below(s, TICK), EV_CLIENT, 0, NULL, 0);
            break;
        default:
            break;
        }
        free(e.buf);
        check_all(s);
        if (healed && final_writes > 3 && converged(s)) {
            done = true;
            break;
        }
        if (healed && !s->first_leader_after_heal && find_leader(s))
            s->first_leader_after_heal = s->now - s->fault_end;
    }
    if (!s->fail[0] && !done)
        fail(s, "liveness: no converged cluster %d ticks after the faults stopped (leader %s)",
             (int)((s->deadline - s->fault_end) / TICK), find_leader(s) ? "yes" : "none");
    int rc = s->fail[0] ? 1 : 0;
    agg.events += s->st_events;
    agg.msgs += s->st_msgs;
    agg.dropped += s->st_dropped;
    agg.dup += s->st_dup;
    agg.crashes += s->st_crash;
    agg.torn += s->st_torn_crash;
    agg.parts += s->st_part;
    agg.oneway += s->st_oneway;
    agg.transfers += s->st_transfer;
    agg.confs += s->st_conf;
    agg.installs += s->st_installs;
    agg.reads += s->st_reads_ok;
    agg.applied += s->max_applied;
    if (s->first_leader_after_heal / TICK > agg.max_leader_ticks)
        agg.max_leader_ticks = s->first_leader_after_heal / TICK;
    if (done && (s->now - s->fault_end) / TICK > agg.max_converge_ticks)
        agg.max_converge_ticks = (s->now - s->fault_end) / TICK;
    if (rc || summary) {
        node *l = find_leader(s);
        printf("%sseed %" PRIu64 ": %s%s\n", rc ? "FAIL " : "", seed, rc ? s->fail : "ok", "");
        printf("#   members %d (voters %u), events %" PRIu64 ", msgs %" PRIu64 " (dropped %" PRIu64
               ", dup %" PRIu64 "), proposals %" PRIu64 ", applied %" PRIu64 ", crashes %" PRIu64
               ", mid-write power losses %" PRIu64 ", partitions %" PRIu64 " + one-way %" PRIu64
               ", transfers %" PRIu64 ", conf changes %" PRIu64 ", snapshots %" PRIu64
               " installed %" PRIu64 ", reads ok %" PRIu64 ", term %" PRIu64 "\n",
               s->nn, s->initial.n, s->st_events, s->st_msgs, s->st_dropped, s->st_dup, s->st_prop,
               s->max_applied, s->st_crash, s->st_torn_crash, s->st_part, s->st_oneway,
               s->st_transfer, s->st_conf, s->st_compact, s->st_installs, s->st_reads_ok,
               l ? raft_term(l->r) : 0);
        if (rc)
            printf("#   reproduce: %s --seed %" PRIu64 " -v\n", prog, seed);
    }
    teardown(s);
    return rc;
}

/* Zero-latency network, no faults, no disk sync cost: how fast the core commits. */
static int bench(uint64_t entries)
{
    static sim S;
    sim *s = &S;
    setup(s, 1);
    s->nn = 3;
    s->initial.n = 3;
    s->cfg.lease_read = false;
    s->cfg.pre_vote = s->cfg.check_quorum = true;
    s->cfg.max_inflight = 64;
    s->cfg.max_msg_bytes = 64 * 1024;
    s->cfg.max_uncommitted_bytes = 1u << 30;
    s->seg_bytes = 64u << 20;
    s->faults = false;
    s->delay_min = s->delay_max = 0;
    for (int i = 1; i <= 3; i++) {
        s->nodes[i].initial = true;
        s->nodes[i].snap_every = 1u << 30;
        s->nodes[i].tick_period = TICK;
        node_start(s, &s->nodes[i]);
    }
    node *l = NULL;
    while (!l && s->n_ev) {
        event e = ev_pop(s);
        s->now = e.time;
        if (e.type == EV_TICK) {
            node *n = &s->nodes[e.node];
            raft_tick(n->r);
            node_drain(s, n);
            ev_push(s, s->now + n->tick_period, EV_TICK, n->id, NULL, n->incarnation);
        } else if (e.type == EV_DELIVER) {
            deliver(s, &e);
        }
        free(e.buf);
        l = find_leader(s);
    }
    if (!l) {
        printf("bench: no leader\n");
        return 1;
    }
    uint8_t payload[128];
    memset(payload, 0x5a, sizeof(payload));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t start = raft_commit_index(l->r), proposed = 0;
    while (raft_commit_index(l->r) < start + entries && !s->fail[0]) {
        /* keep 256 proposals in flight, deliver everything at once (zero latency) */
        while (proposed < entries && raft_last_index(l->r) - raft_commit_index(l->r) < 256 &&
               raft_propose(l->r, payload, sizeof(payload), NULL) == 0)
            proposed++;
        node_drain(s, l);
        if (!s->n_ev)
            break;
        event e = ev_pop(s);
        s->now = e.time;
        if (e.type == EV_DELIVER)
            deliver(s, &e);
        else if (e.type == EV_TICK) {
            node *n = &s->nodes[e.node];
            raft_tick(n->r);
            node_drain(s, n);
            ev_push(s, s->now + n->tick_period, EV_TICK, n->id, NULL, n->incarnation);
        }
        free(e.buf);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    uint64_t done = raft_commit_index(l->r) - start;
    printf("core_entries_committed=%" PRIu64 " seconds=%.3f entries_per_second=%.0f "
           "(3 members, 128-byte entries, real WAL on the simulated disk)\n",
           done, secs, (double)done / secs);
    int rc = s->fail[0] ? 1 : 0;
    if (rc)
        printf("bench failed: %s\n", s->fail);
    teardown(s);
    return rc;
}

int main(int argc, char **argv)
{
    prog = argv[0];
    if (argc >= 3 && strcmp(argv[1], "--seed") == 0) {
        int v = argc >= 4 && strcmp(argv[3], "-v") == 0;
        return run_seed(strtoull(argv[2], NULL, 10), v, true);
    }
    if (argc >= 4 && strcmp(argv[1], "--seeds") == 0) {
        uint64_t first = strtoull(argv[2], NULL, 10), count = strtoull(argv[3], NULL, 10);
        for (uint64_t i = 0; i < count; i++)
            if (run_seed(first + i, 0, false) != 0) {
                printf("FAILED after %" PRIu64 " seeds\n", i);
                return 1;
            }
        printf("all %" PRIu64 " seeds from %" PRIu64 " passed: %" PRIu64 " events, %" PRIu64
               " messages (%" PRIu64 " dropped, %" PRIu64 " duplicated), %" PRIu64
               " entries applied, %" PRIu64 " crashes + %" PRIu64
               " power losses inside disk operations, %" PRIu64 " partitions + %" PRIu64
               " one-way, %" PRIu64 " transfers, %" PRIu64 " membership changes, %" PRIu64
               " snapshots installed, %" PRIu64 " reads confirmed; after the faults: leader "
               "within %" PRIu64 " ticks, converged within %" PRIu64 " ticks (worst seed)\n",
               count, first, agg.events, agg.msgs, agg.dropped, agg.dup, agg.applied, agg.crashes,
               agg.torn, agg.parts, agg.oneway, agg.transfers, agg.confs, agg.installs, agg.reads,
               agg.max_leader_ticks, agg.max_converge_ticks);
        return 0;
    }
    if (argc >= 3 && strcmp(argv[1], "--bench") == 0)
        return bench(strtoull(argv[2], NULL, 10));
    fprintf(stderr, "usage: raft-sim --seed N [-v] | --seeds FIRST COUNT | --bench ENTRIES\n");
    return 2;
}
