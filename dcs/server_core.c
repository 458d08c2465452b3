/* appliance-dcs core: recovery, the Raft Ready cycle (persist -> send -> apply -> reads ->
 * advance, as tests/sim/sim.c), proposals and their forwarding to the leader, leases owned
 * by the leader, snapshots and WAL cleanup, graceful leadership transfer. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "dcs/server_internal.h"
#include "dcs/snap.h"
#include "dcs/snap_writer.h"
#include "le_bytes.h"
#include "log.h"

/* Forwarded-proposal protocol (transport kinds FWD_REQ / FWD_RESP), little-endian:
 *   REQ:  u8 op (1 propose, 2 keepalive, 3 timetolive) | u64 request id | propose: command
 *         bytes; keepalive, timetolive: i64 lease id; member: u8 op | u64 member id |
 *         peer URL bytes
 *   RESP: u64 request id | u8 status (0 ok, 1 not leader, 2 busy) | u64 index | u64 term |
 *         i64 keepalive TTL (0 = lease not found) or timetolive: 1 + remaining TTL (0 = not
 *         found)
 * Raft followers cannot propose (raft_propose is leader-only), so a follower ships the
 * encoded command to the leader, which proposes it and answers with the entry's index and
 * term; the follower answers its client when IT applies that index (its own store renders
 * the same result, every member applying the same commands). The answer travels on the
 * same ordered connection as the leader's appends, so the index is known before the entry
 * can apply here. */
enum { FWD_PROPOSE = 1, FWD_KEEPALIVE = 2, FWD_TIMETOLIVE = 3, FWD_MEMBER = 4 };
enum { FWD_OK = 0, FWD_NOT_LEADER = 1, FWD_BUSY = 2, FWD_UNHEALTHY = 3 };
#define FWD_RESP_LEN 33

int64_t dcs_now_ms(dcs_server *s)
{
    return (int64_t)evloop_update_now(s->loop);
}

int64_t dcs_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void dcs_header(dcs_server *s, v3_header *h)
{
    uint64_t t = raft_term(s->r);
    if (t > s->max_term)
        s->max_term = t;
    h->cluster_id = s->f.cluster_id;
    h->member_id = s->id;
    h->raft_term = s->max_term;
    h->revision = mvcc_current_revision(s->st->kv);
}

/* ---- pending requests ---- */
preq *preq_new(dcs_server *s, http_conn *conn, int kind)
{
    if (s->npending >= DCS_MAX_PENDING)
        return NULL;
    preq *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->s = s;
    p->conn = conn;
    p->kind = kind;
    mvcc_arena_init(&p->arena, 8u << 20);
    p->deadline_ms = dcs_now_ms(s) + s->request_timeout_ms;
    p->next = s->pending;
    if (s->pending)
        s->pending->prev = p;
    s->pending = p;
    s->npending++;
    return p;
}

void preq_free(preq *p)
{
    dcs_server *s = p->s;
    if (p->prev)
        p->prev->next = p->next;
    else
        s->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
    s->npending--;
    mvcc_arena_free(&p->arena);
    free(p->cmd);
    free(p);
}

static void fail_pending(dcs_server *s, int (*match)(const preq *), const char *msg)
{
    preq *p = s->pending;
    while (p) {
        preq *nx = p->next;
        if (match(p))
            dcs_answer_error(p, 14, msg);
        p = nx;
    }
}

/* ---- Ready cycle ---- */
static void fatal_disk(dcs_server *s, const char *what, const char *detail)
{
    /* A member that cannot persist must not keep voting or acknowledging: stop. */
    log_error("%s failed: %s; stopping (the data directory is consistent up to the last sync)",
              what, detail);
    s->dead = true;
    evloop_stop(s->loop);
}

/* Messages only a leader sends and that promise nothing about the sender's disk: raft.h
 * documents that the leader's appends do not depend on its own fsync (it counts itself
 * toward commit only at raft_advance). Sending them BEFORE the fdatasync overlaps the
 * leader's sync with the followers' (etcd does the same); everything else (votes,
 * acknowledgements) still goes out only after the sync. */
static bool leader_only_msg(const raft_msg *m)
{
    return m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
           m->type == RAFT_MSG_SNAPSHOT;
}

/* early: send only the leader's pre-sync messages; !early: only the others */
static void send_msgs(dcs_server *s, const raft_msg *msgs, size_t n, bool leader, bool early)
{
    static uint8_t *buf;
    static size_t cap;
    for (size_t i = 0; i < n; i++) {
        if ((leader && leader_only_msg(&msgs[i])) != early)
            continue;
        size_t len = raft_msg_encoded_len(&msgs[i]);
        if (len > cap) {
            uint8_t *nb = realloc(buf, len);
            if (!nb)
                continue; /* dropped; Raft retransmits */
            buf = nb;
            cap = len;
        }
        if (raft_msg_encode(&msgs[i], buf, len) != len)
            continue;
        transport_send(s->tp, msgs[i].to, TRANSPORT_RAFT, buf, len);
    }
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* etcd_disk_wal_fsync_duration_seconds: etcd's buckets (1 ms doubling to 8 s), so the
 * disk's share of the latency can be read off /metrics the same way for both. */
static void fsync_observe(dcs_server *s, int64_t us)
{
    for (int i = 0; i < DCS_FSYNC_BUCKETS; i++)
        if (us <= (1000ll << i))
            s->fsync_hist[i]++;
    s->fsync_count++;
    s->fsync_sum_us += (uint64_t)us;
}

static void install_store(dcs_server *s, dcs_store *nst)
{
    dcs_http_store_reset(s); /* watch streams and v2 waiters point into the old store */
    v2_waiters_free(s->v2w);
    watch_hub_free(s->hub);
    dcs_store_free(s->st);
    s->st = nst;
    s->hub = watch_hub_new(s->st->kv, NULL);
    s->v2w = v2_waiters_new(s->st->v2, 1024);
    dcs_members_sync(s);
    if (s->role == RAFT_LEADER)
        lessor_promote(mvcc_lessor(s->st->kv), dcs_now_ms(s), s->f.election_ms);
}

static int match_index_le(dcs_server *s, preq *p, uint64_t index)
{
    return p->state == PS_WAIT_APPLY && p->index <= index;
}

static void apply_entry(dcs_server *s, const raft_entry *e)
{
    store_result res;
    mvcc_arena a;
    bool applied = false;
    mvcc_arena_init(&a, 64u << 20);
    if (e->type == RAFT_ENTRY_NORMAL && e->len > 0) {
        int rc = store_apply_bytes(s->st, e->data, e->len, dcs_now_ms(s), &a, &res);
        if (rc != 0 && res.err == MVCC_ERR_BAD_COMMAND)
            log_warn("entry %" PRIu64 ": malformed store command ignored", e->index);
        applied = true;
        if (s->st->members_changed != s->members_seen)
            dcs_members_sync(s);
    }
    s->applied = e->index;
    for (preq *p = s->pending, *nx; p; p = nx) {
        nx = p->next;
        if (!match_index_le(s, p, e->index))
            continue;
        if (p->index == e->index && p->term == e->term && applied)
            dcs_answer_applied(p, &res);
        else
            dcs_answer_error(p, 14, "etcdserver: leader changed");
    }
    mvcc_arena_free(&a);
}

static void serve_reads(dcs_server *s)
{
    for (preq *p = s->pending, *nx; p; p = nx) {
        nx = p->next;
        if (p->state == PS_WAIT_READ_APPLY && p->index <= s->applied)
            dcs_answer_read(p);
    }
}

/* Snapshots are taken on the loop (a consistent image at one applied index) and written
 * by the snap_writer thread; the loop keeps serving meanwhile. The in-memory log is
 * compacted at once (the WAL still holds every entry until the marker below is synced). */
static void maybe_snapshot(dcs_server *s)
{
    if (s->applied < s->snap_index + s->f.snapshot_count || s->applied > raft_applied_index(s->r) ||
        snap_writer_busy(s->sw) || dcs_now_ms(s) < s->snap_retry_ms)
        return;
    uint8_t *data, *copy;
    size_t len;
    if (store_snapshot_save(s->st, &data, &len) != 0 || len > RAFT_MSG_MAX_BODY - 4096) {
        log_warn("snapshot at %" PRIu64 ": store serialisation failed (%zu bytes)", s->applied,
                 len);
        s->snap_retry_ms = dcs_now_ms(s) + 1000;
        return;
    }
    copy = malloc(len ? len : 1); /* the writer's own: the core may drop its copy any time */
    if (!copy || raft_compact(s->r, s->applied, data, (uint32_t)len) != 0) {
        free(copy);
        free(data);
        s->snap_retry_ms = dcs_now_ms(s) + 1000;
        return;
    }
    memcpy(copy, data, len); /* data belongs to the core now, unchanged until the next call */
    raft_snapshot snap = *raft_get_snapshot(s->r);
    if (snap_writer_submit(s->sw, &snap, copy) != 0)
        free(copy);
}

/* The snapshot file is durable: record it in the WAL, then release what it covers. */
static void snap_written(void *arg, uint64_t index, uint64_t term, int rc, const char *err)
{
    dcs_server *s = arg;
    if (s->dead)
        return;
    if (rc != 0) {
        /* nothing is lost: the WAL still holds every entry; try again in a second */
        log_warn("snapshot at index %" PRIu64 " not saved: %s", index, err);
        s->snap_retry_ms = dcs_now_ms(s) + 1000;
        return;
    }
    if (index <= s->snap_index) { /* a snapshot from the leader overtook it */
        snap_purge(&wal_fs_posix, s->snap_dir, s->snap_index);
        return;
    }
    uint64_t prev = s->snap_index;
    if (wal_mark_snapshot(s->w, index, term, 0) != 0 || wal_sync(s->w) != 0) {
        fatal_disk(s, "WAL snapshot marker", strerror(errno));
        return;
    }
    s->snap_index = index;
    s->snapshots++;
    wal_release(s->w, index);
    snap_purge(&wal_fs_posix, s->snap_dir, prev);
    log_info("snapshot at index %" PRIu64 "; older WAL segments released", index);
    maybe_snapshot(s); /* far behind already under a heavy write load */
}

static void role_changed(dcs_server *s, int role, uint64_t leader)
{
    int64_t now = dcs_now_ms(s);
    if (leader != s->leader) {
        s->leader_changes++;
        if (leader)
            log_info("leader is now %016llx (term %" PRIu64 ")%s", (unsigned long long)leader,
                     raft_term(s->r), leader == s->id ? " (this member)" : "");
        else
            log_info("no leader (term %" PRIu64 ")", raft_term(s->r));
    }
    if (role == RAFT_LEADER && s->role != RAFT_LEADER) {
        /* Leases: fresh deadlines (remaining TTL + one election timeout) instead of expiring
         * everything the old leader was tracking (that would demote the PostgreSQL primary). */
        lessor_promote(mvcc_lessor(s->st->kv), now, s->f.election_ms);
    } else if (role != RAFT_LEADER && s->role == RAFT_LEADER) {
        lessor_demote(mvcc_lessor(s->st->kv));
    }
    s->role = role;
    s->leader = leader;
}

static int is_fwd_waiting(const preq *p)
{
    return p->state == PS_WAIT_FWD;
}

static void drain(dcs_server *s)
{
    raft_ready rd;
    char err[256];
    while (!s->dead && raft_get_ready(s->r, &rd)) {
        /* 1. persist */
        if (rd.snapshot) {
            if (snap_save(&wal_fs_posix, s->snap_dir, rd.snapshot, err, sizeof(err)) != 0) {
                fatal_disk(s, "snapshot save", err);
                return;
            }
            if (wal_mark_snapshot(s->w, rd.snapshot->index, rd.snapshot->term, 1) != 0) {
                fatal_disk(s, "WAL snapshot marker", strerror(errno));
                return;
            }
        }
        bool leader = rd.role == RAFT_LEADER;
        if (wal_save(s->w, rd.has_hard_state ? &rd.hard_state : NULL, rd.entries, rd.n_entries) !=
            0) {
            fatal_disk(s, "WAL write", strerror(errno));
            return;
        }
        if (leader) {
            send_msgs(s, rd.msgs, rd.n_msgs, true, true);
            transport_flush(s->tp); /* out before our own sync: both overlap */
        }
        if (rd.must_sync) {
            int64_t t0 = mono_us();
            if (wal_sync(s->w) != 0) {
                fatal_disk(s, "WAL sync", strerror(errno));
                return;
            }
            fsync_observe(s, mono_us() - t0);
        }
        /* 2. send */
        send_msgs(s, rd.msgs, rd.n_msgs, leader, false);
        transport_flush(s->tp);
        /* 3. apply */
        if (rd.snapshot) {
            dcs_store *nst = store_snapshot_load(rd.snapshot->data, rd.snapshot->len, NULL);
            if (!nst) {
                fatal_disk(s, "snapshot from the leader", "malformed store snapshot");
                return;
            }
            install_store(s, nst);
            /* requests waiting for entries the snapshot covers cannot get their own
             * result any more: answer now rather than at the timeout (outcome unknown to
             * the client, as with a leader change) */
            for (preq *p = s->pending, *nx; p; p = nx) {
                nx = p->next;
                if (p->state == PS_WAIT_APPLY && p->index <= rd.snapshot->index)
                    dcs_answer_error(p, 14, "etcdserver: leader changed");
            }
            s->applied = rd.snapshot->index;
            s->snap_index = rd.snapshot->index;
            s->snapshots_installed++;
            log_info("installed snapshot at index %" PRIu64 " from the leader", rd.snapshot->index);
        }
        for (size_t i = 0; i < rd.n_committed; i++)
            apply_entry(s, &rd.committed[i]);
        /* 4. reads */
        for (size_t i = 0; i < rd.n_reads; i++) {
            const raft_read_state *q = &rd.reads[i];
            for (preq *p = s->pending; p; p = p->next) {
                if (p->state != PS_WAIT_READ || p->id != q->ctx)
                    continue;
                if (q->ok) {
                    p->state = PS_WAIT_READ_APPLY;
                    p->index = q->index;
                } else {
                    p->state = PS_READ_RETRY;
                }
                break;
            }
        }
        serve_reads(s);
        if (rd.role != s->role || rd.leader != s->leader) {
            bool leader_changed = rd.leader != s->leader;
            role_changed(s, rd.role, rd.leader);
            /* a forward whose answer has not come may have gone to a dead leader: answer
             * now (etcd's "leader changed"; the client retries) instead of at the timeout */
            if (leader_changed)
                fail_pending(s, is_fwd_waiting, "etcdserver: leader changed");
        }
        /* 5. advance */
        raft_advance(s->r, &rd);
        maybe_snapshot(s);
    }
    /* a leader whose role changed without a Ready still needs its soft state noted */
    if (raft_role(s->r) != s->role || raft_leader(s->r) != s->leader)
        role_changed(s, raft_role(s->r), raft_leader(s->r));
}

static void drain_cb(evloop *loop, void *arg)
{
    dcs_server *s = arg;
    s->drain_timer = NULL;
    drain(s);
}

/* Coalesces every event of one loop turn into one Ready batch (one fdatasync: group
 * commit under concurrent clients). */
void dcs_schedule_drain(dcs_server *s)
{
    if (!s->drain_timer)
        s->drain_timer = evloop_timer_start(s->loop, 0, drain_cb, s);
    if (!s->drain_timer)
        drain(s);
}

/* ---- proposals ---- */
static void propose_local(dcs_server *s, const uint8_t *cmd, size_t len)
{
    uint64_t idx;
    if (raft_propose(s->r, cmd, (uint32_t)len, &idx) == 0)
        dcs_schedule_drain(s);
}

void dcs_submit(dcs_server *s, preq *p, uint8_t *cmd, size_t len)
{
    if (s->stopping) {
        free(cmd);
        dcs_answer_error(p, 14, "etcdserver: server stopped");
        return;
    }
    uint64_t leader = raft_leader(s->r);
    if (!leader) {
        free(cmd);
        dcs_answer_error(p, 14, "etcdserver: no leader");
        return;
    }
    if (leader == s->id) {
        uint64_t idx;
        int rc = raft_propose(s->r, cmd, (uint32_t)len, &idx);
        free(cmd);
        if (rc != 0) {
            s->proposals_failed++;
            dcs_answer_error(p, 14,
                             rc == RAFT_EFULL       ? "etcdserver: too many requests"
                             : rc == RAFT_ETRANSFER ? "etcdserver: leader changed"
                                                    : "etcdserver: request timed out");
            return;
        }
        p->state = PS_WAIT_APPLY;
        p->index = idx;
        p->term = raft_term(s->r);
        dcs_schedule_drain(s);
        return;
    }
    p->id = ++s->next_id;
    p->state = PS_WAIT_FWD;
    uint8_t hdr[9];
    hdr[0] = FWD_PROPOSE;
    put_u64(hdr + 1, p->id);
    if (transport_send2(s->tp, leader, TRANSPORT_FWD_REQ, hdr, sizeof(hdr), cmd, len) != 0) {
        free(cmd);
        dcs_answer_error(p, 14, "etcdserver: no leader"); /* not connected to it yet */
        return;
    }
    s->forwarded++;
    free(cmd);
}

/* A request a follower forwards to the leader: the leader to send it to (the request now
 * waits for its answer), or 0 after answering "no leader". */
static uint64_t forward_begin(dcs_server *s, preq *p)
{
    uint64_t leader = raft_leader(s->r);
    if (!leader) {
        dcs_answer_error(p, 14, "etcdserver: no leader");
        return 0;
    }
    p->id = ++s->next_id;
    p->state = PS_WAIT_FWD;
    return leader;
}

static void forward_lease_op(dcs_server *s, preq *p, uint8_t op)
{
    uint64_t leader = forward_begin(s, p);
    if (!leader)
        return;
    uint8_t m[17];
    m[0] = op;
    put_u64(m + 1, p->id);
    put_u64(m + 9, (uint64_t)p->v3.id);
    if (transport_send(s->tp, leader, TRANSPORT_FWD_REQ, m, sizeof(m)) != 0)
        dcs_answer_error(p, 14, "etcdserver: no leader");
}

void dcs_forward_member(dcs_server *s, preq *p, const char *url)
{
    uint64_t leader = forward_begin(s, p);
    if (!leader)
        return;
    uint8_t m[18];
    m[0] = FWD_MEMBER;
    put_u64(m + 1, p->id);
    m[9] = (uint8_t)p->member_op;
    put_u64(m + 10, p->member_id);
    size_t ul = url ? strlen(url) : 0;
    if (transport_send2(s->tp, leader, TRANSPORT_FWD_REQ, m, sizeof(m), url, ul) != 0)
        dcs_answer_error(p, 14, "etcdserver: no leader");
}

void dcs_forward_keepalive(dcs_server *s, preq *p)
{
    forward_lease_op(s, p, FWD_KEEPALIVE);
}

/* etcd forwards LeaseTimeToLive to the leader too: only the leader's deadlines are exact
 * (followers hold the last checkpointed remaining TTL). */
void dcs_forward_timetolive(dcs_server *s, preq *p)
{
    p->ttl_fwd = true;
    forward_lease_op(s, p, FWD_TIMETOLIVE);
}

void dcs_read_barrier(dcs_server *s, preq *p)
{
    p->id = ++s->next_id;
    int rc = raft_read_index(s->r, p->id);
    if (rc == RAFT_ENOLEADER) {
        dcs_answer_error(p, 14, "etcdserver: no leader");
        return;
    }
    if (rc == RAFT_EBUSY) { /* cannot happen outside a Ready; retry on the next tick */
        p->state = PS_READ_RETRY;
        return;
    }
    if (rc != 0) {
        dcs_answer_error(p, 14, "etcdserver: too many requests");
        return;
    }
    p->state = PS_WAIT_READ;
    dcs_schedule_drain(s);
}

static void fwd_answer(dcs_server *s, uint64_t to, uint64_t id, int status, uint64_t index,
                       uint64_t term, int64_t ttl)
{
    uint8_t m[FWD_RESP_LEN];
    put_u64(m, id);
    m[8] = (uint8_t)status;
    put_u64(m + 9, index);
    put_u64(m + 17, term);
    put_u64(m + 25, (uint64_t)ttl);
    transport_send(s->tp, to, TRANSPORT_FWD_RESP, m, sizeof(m));
}

static void on_fwd_req(dcs_server *s, uint64_t from, const uint8_t *b, size_t len)
{
    if (len < 9)
        return;
    uint64_t id = get_u64(b + 1);
    if (raft_role(s->r) != RAFT_LEADER || s->stopping) {
        fwd_answer(s, from, id, FWD_NOT_LEADER, 0, 0, 0);
        return;
    }
    if (b[0] == FWD_PROPOSE) {
        uint64_t idx;
        if (len - 9 > UINT32_MAX || raft_propose(s->r, b + 9, (uint32_t)(len - 9), &idx) != 0) {
            fwd_answer(s, from, id, FWD_BUSY, 0, 0, 0);
            return;
        }
        fwd_answer(s, from, id, FWD_OK, idx, raft_term(s->r), 0);
        dcs_schedule_drain(s);
    } else if (b[0] == FWD_KEEPALIVE && len == 17) {
        int64_t ttl = 0;
        if (lessor_keepalive(mvcc_lessor(s->st->kv), (int64_t)get_u64(b + 9), dcs_now_ms(s),
                             &ttl) != MVCC_OK)
            ttl = 0;
        fwd_answer(s, from, id, FWD_OK, 0, 0, ttl);
    } else if (b[0] == FWD_MEMBER && len >= 18 && len - 18 <= STORE_MAX_PEER_URL) {
        char url[STORE_MAX_PEER_URL + 1];
        memcpy(url, b + 18, len - 18);
        url[len - 18] = 0;
        uint64_t idx;
        int rc = strlen(url) != len - 18
                     ? RAFT_EINVAL
                     : dcs_member_propose(s, b[9], get_u64(b + 10), len > 18 ? url : NULL, &idx);
        if (rc == 0)
            fwd_answer(s, from, id, FWD_OK, idx, raft_term(s->r), 0);
        else
            fwd_answer(s, from, id, rc == RAFT_ENOTLEADER ? FWD_NOT_LEADER : FWD_UNHEALTHY, 0, 0,
                       0);
    } else if (b[0] == FWD_TIMETOLIVE && len == 17) {
        lease_ttl_info t;
        mvcc_arena a;
        mvcc_arena_init(&a, 1u << 20);
        int64_t r = 0;
        if (lessor_timetolive(mvcc_lessor(s->st->kv), (int64_t)get_u64(b + 9), dcs_now_ms(s), false,
                              &a, &t) == MVCC_OK &&
            t.ttl >= 0)
            r = t.ttl + 1;
        mvcc_arena_free(&a);
        fwd_answer(s, from, id, FWD_OK, 0, 0, r);
    }
}

static void on_fwd_resp(dcs_server *s, const uint8_t *b, size_t len)
{
    if (len != FWD_RESP_LEN)
        return;
    uint64_t id = get_u64(b);
    for (preq *p = s->pending; p; p = p->next) {
        if (p->state != PS_WAIT_FWD || p->id != id)
            continue;
        if (b[8] != FWD_OK) {
            dcs_answer_error(p, 14,
                             b[8] == FWD_BUSY        ? "etcdserver: too many requests"
                             : b[8] == FWD_UNHEALTHY ? "etcdserver: unhealthy cluster"
                                                     : "etcdserver: leader changed");
            return;
        }
        if (p->kind == PQ_KEEPALIVE) {
            dcs_answer_keepalive(p, (int64_t)get_u64(b + 25));
            return;
        }
        if (p->ttl_fwd) {
            p->v3.leader_ttl_plus1 = (int64_t)get_u64(b + 25);
            dcs_answer_read(p);
            return;
        }
        p->state = PS_WAIT_APPLY;
        p->index = get_u64(b + 9);
        p->term = get_u64(b + 17);
        if (p->index <= s->applied) /* cannot happen on one ordered stream; be safe */
            dcs_answer_error(p, 14, "etcdserver: leader changed");
        return;
    }
}

/* INFO: "name\0url,url" (what etcd publishes as member attributes through its log) */
static void on_info(dcs_server *s, uint64_t from, const uint8_t *b, size_t len)
{
    for (size_t i = 0; i < s->f.nmembers; i++) {
        if (s->f.members[i].id != from || i == s->f.self)
            continue;
        peer_info *pi = &s->peers[i];
        const uint8_t *z = memchr(b, 0, len);
        if (!z || (size_t)(z - b) >= sizeof(pi->name) ||
            (size_t)(len - (size_t)(z - b) - 1) >= sizeof(pi->client_urls[0]) * DCS_MAX_URLS)
            return;
        memcpy(pi->name, b, (size_t)(z - b) + 1);
        char urls[DCS_MAX_STR * DCS_MAX_URLS];
        size_t ul = len - (size_t)(z - b) - 1;
        memcpy(urls, z + 1, ul);
        urls[ul] = 0;
        pi->nclient = 0;
        for (char *save = NULL, *u = strtok_r(urls, ",", &save); u && pi->nclient < DCS_MAX_URLS;
             u = strtok_r(NULL, ",", &save))
            if (strlen(u) < sizeof(pi->client_urls[0]))
                snprintf(pi->client_urls[pi->nclient++], sizeof(pi->client_urls[0]), "%s", u);
        return;
    }
}

static void send_info(dcs_server *s)
{
    char b[DCS_MAX_STR * (DCS_MAX_URLS + 1) + 8];
    size_t off = (size_t)snprintf(b, sizeof(b), "%s", s->f.name) + 1;
    for (size_t k = 0; k < s->f.nadvertise_client && off < sizeof(b); k++)
        off += (size_t)snprintf(b + off, sizeof(b) - off, "%s%s", k ? "," : "",
                                s->f.advertise_client[k].text);
    if (off > sizeof(b))
        off = sizeof(b);
    for (size_t i = 0; i < s->f.nmembers; i++) {
        if (i == s->f.self)
            continue;
        peer_info *pi = &s->peers[i];
        if (!transport_connected(s->tp, s->f.members[i].id)) {
            pi->sent = false;
            continue;
        }
        if (!pi->sent && transport_send(s->tp, s->f.members[i].id, TRANSPORT_INFO, b, off) == 0)
            pi->sent = true;
    }
}

static void on_peer(void *arg, uint64_t from, int kind, const uint8_t *body, size_t len)
{
    dcs_server *s = arg;
    if (s->dead)
        return;
    if (kind == TRANSPORT_RAFT) {
        raft_msg m;
        char err[128];
        if (raft_msg_decode(body, len, &m, s->rx_ents, RAFT_MSG_MAX_ENTRIES, err, sizeof(err)) !=
            0) {
            log_warn("peer %016llx: bad raft message: %s", (unsigned long long)from, err);
            return;
        }
        if (m.from != from)
            return; /* a member speaks only for itself */
        if (raft_step(s->r, &m) == RAFT_EBUSY)
            return;
        dcs_schedule_drain(s);
    } else if (kind == TRANSPORT_FWD_REQ) {
        on_fwd_req(s, from, body, len);
    } else if (kind == TRANSPORT_FWD_RESP) {
        on_fwd_resp(s, body, len);
    } else if (kind == TRANSPORT_INFO) {
        on_info(s, from, body, len);
    } else if (kind == TRANSPORT_REFUSED) {
        /* a member of our cluster says we were removed (etcd: "the member has been
         * permanently removed from the cluster"): stop instead of campaigning forever */
        char me[40];
        snprintf(me, sizeof(me), "member %016llx was removed", (unsigned long long)s->id);
        if (memmem(body, len, me, strlen(me)) && !s->removed) {
            log_warn("peer %016llx: this member was removed from the cluster: stopping",
                     (unsigned long long)from);
            s->removed = true;
            evloop_stop(s->loop);
        }
    }
}

/* ---- periodic work of the leader: lease and v2 TTL expiry, compaction ---- */
static void propose_cmd(dcs_server *s, const store_cmd *c)
{
    uint8_t *buf;
    size_t len;
    if (store_cmd_encode(c, 1u << 20, &buf, &len) != 0)
        return;
    propose_local(s, buf, len);
    free(buf);
}

/* The revision to compact to now, 0 for none. Periodic mode remembers (time, revision)
 * samples in a ring spanning the retention and picks the revision that was current
 * `retention` ago. */
static int64_t compaction_target(dcs_server *s, int64_t now)
{
    uint64_t ret = s->f.compaction_retention;
    if (ret == 0)
        return 0;
    if (!s->f.compaction_periodic)
        return mvcc_compact_suggest(s->st->kv, (int64_t)ret);
    int64_t every = (int64_t)(ret / (DCS_COMPACT_SAMPLES - 8));
    if (every < 1000)
        every = 1000;
    if (s->ncsamples == 0 ||
        now - s->csamples[(s->csample_head + DCS_COMPACT_SAMPLES - 1) % DCS_COMPACT_SAMPLES].ms >=
            every) {
        s->csamples[s->csample_head].ms = now;
        s->csamples[s->csample_head].rev = mvcc_current_revision(s->st->kv);
        s->csample_head = (s->csample_head + 1) % DCS_COMPACT_SAMPLES;
        if (s->ncsamples < DCS_COMPACT_SAMPLES)
            s->ncsamples++;
    }
    int64_t target = 0;
    for (size_t i = 0; i < s->ncsamples; i++) { /* oldest first */
        size_t k = (s->csample_head + DCS_COMPACT_SAMPLES - s->ncsamples + i) % DCS_COMPACT_SAMPLES;
        if (now - s->csamples[k].ms < (int64_t)ret)
            break;
        target = s->csamples[k].rev;
    }
    return target > mvcc_compact_revision(s->st->kv) ? target : 0;
}

static void leader_duties(dcs_server *s, int64_t now)
{
    if (raft_role(s->r) != RAFT_LEADER || s->stopping)
        return;
    /* leases: the leader's clock decides; expiry goes through the log (so every member
     * deletes the attached keys at the same revision). Re-proposed at most every 500 ms
     * until applied (a duplicate expire is harmless). */
    if (now - s->last_expire_ms >= 500) {
        int64_t ids[64];
        size_t n = lessor_expired(mvcc_lessor(s->st->kv), now, ids, 64);
        for (size_t i = 0; i < n; i++) {
            store_cmd c;
            memset(&c, 0, sizeof(c));
            c.type = STORE_CMD_LEASE_EXPIRE;
            c.lease_id = ids[i];
            propose_cmd(s, &c);
        }
        if (n)
            s->last_expire_ms = now;
    }
    /* v2 TTLs: expire with the leader's wall clock carried in the command */
    int64_t wall = dcs_wall_ms();
    int64_t nx = v2_store_next_expiry(s->st->v2);
    if (nx && nx <= wall && now - s->last_v2_expire_ms >= 500) {
        store_cmd c;
        memset(&c, 0, sizeof(c));
        c.type = STORE_CMD_V2;
        c.v2.method = V2_EXPIRE;
        c.v2.key = "/";
        c.v2.key_len = 1;
        c.v2.time_ms = wall;
        propose_cmd(s, &c);
        s->last_v2_expire_ms = now;
    }
    /* bounded memory: automatic compaction of old revisions (flags.h explains the default).
     * Checked every 5 s (etcd's revision compactor runs every 5 minutes) so that under a
     * write burst the history, and with it every snapshot's size and the time to take it,
     * stays bounded. In revision mode also as soon as DCS_COMPACT_BURST revisions more than
     * the retention piled up: at 12,000 puts/s five seconds are 60,000 revisions, and
     * serialising them into a snapshot held the loop 13-18 ms (the c=16 p99 doubled). */
    int64_t done = mvcc_compact_revision(s->st->kv);
    if (s->compact_proposed > done)
        done = s->compact_proposed; /* proposed, not applied yet: do not repeat it */
    bool burst = !s->f.compaction_periodic && s->f.compaction_retention &&
                 mvcc_current_revision(s->st->kv) - done >
                     (int64_t)s->f.compaction_retention + DCS_COMPACT_BURST;
    if (burst || now - s->last_compact_ms >= 5000) {
        s->last_compact_ms = now;
        int64_t rev = compaction_target(s, now);
        if (rev > mvcc_compact_revision(s->st->kv) && (!burst || rev > s->compact_proposed)) {
            s->compact_proposed = rev;
            store_cmd c;
            memset(&c, 0, sizeof(c));
            c.type = STORE_CMD_COMPACT;
            c.revision = rev;
            propose_cmd(s, &c);
        }
    }
}

static void tick_cb(evloop *loop, void *arg)
{
    dcs_server *s = arg;
    s->tick_timer = evloop_timer_start(loop, s->f.heartbeat_ms, tick_cb, s);
    if (s->dead)
        return;
    int64_t now = dcs_now_ms(s);
    if (raft_tick(s->r) == RAFT_EBUSY)
        return;
    leader_duties(s, now);
    send_info(s);
    watch_hub_tick(s->hub, now);
    /* bounded waits: a member without quorum answers instead of hanging its client */
    for (preq *p = s->pending, *nx; p; p = nx) {
        nx = p->next;
        if (p->state == PS_READ_RETRY && now < p->deadline_ms) {
            dcs_read_barrier(s, p);
            continue;
        }
        if (now >= p->deadline_ms)
            dcs_answer_error(p, 14, "etcdserver: request timed out");
    }
    if (s->stopping) {
        if (raft_role(s->r) != RAFT_LEADER || now >= s->stop_deadline_ms) {
            log_info("stopping (%s)", raft_role(s->r) != RAFT_LEADER
                                          ? "leadership handed over"
                                          : "leadership transfer timed out");
            evloop_stop(loop);
            return;
        }
    }
    dcs_schedule_drain(s);
}

void dcs_server_shutdown(dcs_server *s)
{
    if (s->stopping)
        return;
    s->stopping = true;
    s->stop_deadline_ms = dcs_now_ms(s) + 2 * (int64_t)s->f.election_ms;
    if (raft_role(s->r) != RAFT_LEADER) {
        log_info("SIGTERM: stopping");
        evloop_stop(s->loop);
        return;
    }
    /* hand over to a connected peer (the core picks it up once that peer's log matches) */
    const raft_conf *c = raft_get_conf(s->r);
    for (uint32_t i = 0; i < c->n; i++) {
        if (c->ids[i] == s->id || !transport_connected(s->tp, c->ids[i]))
            continue;
        if (raft_transfer_leader(s->r, c->ids[i]) == 0) {
            log_info("SIGTERM: transferring leadership to %016llx before stopping",
                     (unsigned long long)c->ids[i]);
            dcs_schedule_drain(s);
            return;
        }
    }
    log_info("SIGTERM: no peer to hand leadership to; stopping");
    evloop_stop(s->loop);
}

/* ---- start-up ---- */
static int mkdirs(const char *path)
{
    char tmp[1200];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(tmp, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

static int recover(dcs_server *s, char *err, size_t errlen)
{
    raft_snapshot snap;
    int skipped = 0;
    char e2[512];
    int rc = snap_load_latest(&wal_fs_posix, s->snap_dir, &snap, &skipped, e2, sizeof(e2));
    if (rc < 0) {
        snprintf(err, errlen, "%s: cannot read snapshots: %s", s->snap_dir, e2);
        return -1;
    }
    if (skipped)
        log_warn("%s: skipped %d damaged snapshot file(s): %s", s->snap_dir, skipped, e2);
    if (rc == 1)
        memset(&snap, 0, sizeof(snap));
    wal_state ws;
    wal_options wo = {.segment_bytes = 16u << 20};
    if (wal_open(&wal_fs_posix, s->wal_dir, &wo, &s->w, &ws, e2, sizeof(e2)) != 0) {
        snprintf(err, errlen, "WAL recovery refused: %s", e2);
        snap_free(&snap);
        return -1;
    }
    if (ws.torn_tail)
        log_warn("WAL: cut a torn tail (a batch whose sync never completed)");
    if (wal_adopt_snapshot(s->w, &ws, snap.index, snap.term, e2, sizeof(e2)) != 0) {
        snprintf(err, errlen, "WAL/snapshot mismatch: %s", e2);
        wal_state_free(&ws);
        snap_free(&snap);
        return -1;
    }
    bool fresh = snap.index == 0 && ws.n_entries == 0 && ws.hs.term == 0;
    raft_storage stor = {.hs = ws.hs, .entries = ws.entries, .n_entries = ws.n_entries};
    stor.snapshot = snap;
    if (snap.index == 0 && (s->f.state_new || !fresh)) {
        /* bootstrap configuration: the voters of --initial-cluster. Also for a member that
         * has a WAL but no snapshot yet, whatever --initial-cluster-state says now (etcd
         * ignores the flag once the data directory exists): the bootstrap configuration
         * is not in the log, so without this a restart with "existing" had no voters and
         * never elected (found by `make up` after `make down`). Membership changes are not
         * supported yet, so the initial cluster is the configuration. */
        raft_conf c = {0};
        for (size_t i = 0; i < s->f.nmembers; i++) {
            uint64_t id = s->f.members[i].id;
            size_t j = c.n;
            while (j > 0 && c.ids[j - 1] > id) {
                c.ids[j] = c.ids[j - 1];
                j--;
            }
            c.ids[j] = id;
            c.n++;
        }
        stor.snapshot.conf = c;
    }
    raft_config cfg;
    raft_config_default(&cfg);
    cfg.id = s->id;
    cfg.seed = s->id ^ (uint64_t)dcs_wall_ms();
    cfg.heartbeat_ticks = 1;
    cfg.election_ticks = s->f.election_ms / s->f.heartbeat_ms;
    if (raft_new(&cfg, &stor, &s->r, e2, sizeof(e2)) != 0) {
        snprintf(err, errlen, "raft: %s", e2);
        wal_state_free(&ws);
        snap_free(&snap);
        return -1;
    }
    if (snap.index) {
        dcs_store *nst = store_snapshot_load(snap.data, snap.len, NULL);
        if (!nst) {
            snprintf(err, errlen, "%s: snapshot at index %" PRIu64 " has a malformed store",
                     s->snap_dir, snap.index);
            wal_state_free(&ws);
            snap_free(&snap);
            return -1;
        }
        dcs_store_free(s->st);
        s->st = nst;
        s->applied = snap.index;
        s->snap_index = snap.index;
    }
    log_info("%s member %s (%016llx): term %" PRIu64 ", snapshot %" PRIu64 ", %zu WAL entries",
             fresh ? "new" : "recovered", s->f.name, (unsigned long long)s->id, ws.hs.term,
             snap.index, ws.n_entries);
    wal_state_free(&ws);
    snap_free(&snap);
    return 0;
}

dcs_server *dcs_server_new(evloop *loop, const dcs_flags *f, char *err, size_t errlen)
{
    dcs_server *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->f = *f;
    s->id = f->members[f->self].id;
    s->role = RAFT_FOLLOWER;
    /* bounded client waits: long enough for a leader election and a commit, short enough
     * that Patroni (retry_timeout 10 s over 3 endpoints) can try another member */
    uint32_t to = 2 * f->election_ms + 1000;
    s->request_timeout_ms = to > 10000 ? 10000 : to;
    snprintf(s->wal_dir, sizeof(s->wal_dir), "%s/member/wal", f->data_dir);
    snprintf(s->snap_dir, sizeof(s->snap_dir), "%s/member/snap", f->data_dir);
    s->rx_ents = calloc(RAFT_MSG_MAX_ENTRIES, sizeof(raft_entry));
    s->st = dcs_store_new(NULL);
    if (!s->rx_ents || !s->st) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (mkdirs(s->wal_dir) != 0 || mkdirs(s->snap_dir) != 0) {
        snprintf(err, errlen, "--data-dir %s: %s", f->data_dir, strerror(errno));
        goto fail;
    }
    if (dcs_members_identity(s, err, errlen) != 0)
        goto fail;
    s->id = s->f.members[s->f.self].id; /* a member that joined has the ID it was given */
    if (recover(s, err, errlen) != 0)
        goto fail;
    s->hub = watch_hub_new(s->st->kv, NULL);
    s->v2w = v2_waiters_new(s->st->v2, 1024);
    transport_config tc;
    memset(&tc, 0, sizeof(tc));
    const dcs_flags *cf = &s->f; /* the member list as recovered, not as given */
    tc.cluster_id = cf->cluster_id;
    tc.self_id = s->id;
    snprintf(tc.local_host, sizeof(tc.local_host), "%s", cf->members[cf->self].peer.host);
    for (size_t i = 0; i < cf->nmembers; i++) {
        if (i == cf->self)
            continue;
        tc.peer_ids[tc.npeers] = cf->members[i].id;
        snprintf(tc.peer_host[tc.npeers], sizeof(tc.peer_host[0]), "%s", cf->members[i].peer.host);
        snprintf(tc.peer_port[tc.npeers], sizeof(tc.peer_port[0]), "%s", cf->members[i].peer.port);
        tc.npeers++;
    }
    s->tp = transport_new(loop, &tc, on_peer, s);
    s->sw = snap_writer_new(loop, s->snap_dir, snap_written, s);
    if (!s->hub || !s->v2w || !s->tp || !s->sw) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    dcs_members_sync(s); /* records recovered with the snapshot */
    for (size_t i = 0; i < f->nlisten_peer; i++)
        if (transport_listen(s->tp, f->listen_peer[i].host, f->listen_peer[i].port) != 0) {
            snprintf(err, errlen, "--listen-peer-urls %s: %s", f->listen_peer[i].text,
                     strerror(errno));
            goto fail;
        }
    if (dcs_http_start(s, err, errlen) != 0)
        goto fail;
    s->tick_timer = evloop_timer_start(loop, f->heartbeat_ms, tick_cb, s);
    dcs_schedule_drain(s); /* committed entries recovered from the WAL */
    return s;
fail:
    dcs_server_free(s);
    return NULL;
}

void dcs_server_free(dcs_server *s)
{
    if (!s)
        return;
    while (s->pending)
        dcs_answer_error(s->pending, 14, "etcdserver: server stopped");
    dcs_http_stop(s);
    if (s->tick_timer)
        evloop_timer_cancel(s->loop, s->tick_timer);
    if (s->drain_timer)
        evloop_timer_cancel(s->loop, s->drain_timer);
    snap_writer_free(s->sw);
    transport_free(s->tp);
    v2_waiters_free(s->v2w);
    watch_hub_free(s->hub);
    dcs_store_free(s->st);
    if (s->r)
        raft_free(s->r);
    if (s->w)
        wal_close(s->w);
    free(s->rx_ents);
    free(s);
}
