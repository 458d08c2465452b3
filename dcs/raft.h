/* Raft consensus core as a pure state machine (no I/O, no clock, no threads).
 *
 * The server (appliance-dcs) drives one `raft` from its event loop:
 *
 *     raft_tick(r)                  every tick (e.g. 100 ms); timeouts are counted in ticks
 *     raft_step(r, &msg)            for every peer message decoded by raft_msg_decode()
 *     raft_propose(r, data, len)    a store command (opaque bytes), leader only
 *     raft_read_index(r, ctx)       linearizable read barrier, any member
 *     raft_transfer_leader(r, id)   graceful stop of the leader
 *     raft_change_member(r, op, id) single-server add/remove, leader only
 *
 * and after any of those, drains the output:
 *
 *     raft_ready rd;
 *     if (raft_get_ready(r, &rd)) {
 *         1. persist: if rd.snapshot, write the snapshot file durably (snap_save) and record
 *            it in the WAL (wal_mark_snapshot, reset=1); append rd.entries (an entry with an
 *            index already in the WAL replaces that entry and every later one) and then
 *            rd.hard_state (if rd.has_hard_state) to the WAL; if rd.must_sync, make the
 *            batch durable with ONE fdatasync (wal_sync). Group commit: everything that
 *            accumulated since the previous Ready goes out in this one batch.
 *         2. send rd.msgs (each names its destination in .to). ONLY AFTER step 1: votes and
 *            append acknowledgements promise that the term/vote/entries are on disk. (The
 *            leader's own append messages do not depend on its own fsync; we still send after
 *            it for one simple rule; the leader counts itself toward commit only once its
 *            entries are persisted, i.e. at raft_advance.)
 *         3. if rd.snapshot: replace the store's contents with rd.snapshot->data.
 *            apply rd.committed[0..n) to the store in order (after step 1: an entry can be
 *            committed in the same batch that persists it locally).
 *         4. answer rd.reads: a read with ok=1 may be served once the store has applied
 *            index >= read.index; ok=0 means the read could not be confirmed (retry).
 *         5. raft_advance(r, &rd).
 *     }
 *
 * Between raft_get_ready() and raft_advance() no other call may be made on `r` (they return
 * RAFT_EBUSY): the batch points into the core's memory, which stays valid until advance.
 *
 * Snapshots: after applying up to index I, the server may serialise its store and call
 * raft_compact(r, I, data, len): the core keeps (and owns) the latest snapshot bytes to send
 * to followers that are too far behind, and drops log entries up to I minus a trailing
 * margin. The server must persist the snapshot file durably BEFORE recording it in the WAL
 * (wal_mark_snapshot, reset=0) and only then release old WAL segments.
 *
 * Restart: load the newest valid snapshot file (snap_load_latest), replay the WAL
 * (wal_open), reconcile the two (wal_adopt_snapshot: a crash may have come between saving a
 * snapshot and recording it in the WAL), then pass both to raft_new() via raft_storage.
 * Load the snapshot into the store; entries between the snapshot and the recovered commit
 * index are returned again as committed entries to apply. tests/sim/sim.c (node_start,
 * node_drain) is a complete, tested example of the whole cycle.
 *
 * Memory: the core allocates (log entries, messages) but every structure is bounded by the
 * config (uncommitted bytes, in-flight messages, message size, pending reads, outbox); the
 * log itself is bounded by the server compacting it after snapshots. Allocation failure
 * returns RAFT_ENOMEM or drops a message (which Raft tolerates); it never corrupts state.
 *
 * Linearizable reads (ReadIndex, Raft thesis §6.4): the leader records its commit index,
 * confirms it is still leader by a heartbeat round acknowledged by a majority, and returns
 * that index; a follower forwards the request to the leader. The leader only serves reads
 * once it has committed an entry of its own term (the no-op appended on election).
 * Leader-lease option (cfg.lease_read, requires check_quorum): the leader answers at once
 * without the heartbeat round, as long as a majority acknowledged it within the last
 * election timeout. CLOCK ASSUMPTION: correct only if no member's tick runs more than
 * election_ticks / (election_ticks - 1) times faster than the leader's (the lease lasts
 * election_ticks - 1 of the leader's ticks), because
 * followers refuse votes for election_ticks after hearing from the leader (leader
 * stickiness) and the leader's lease is counted in its own ticks, from the moment it SENT
 * the heartbeat a majority acknowledged. A leadership transfer voids the lease for the rest
 * of the term (the transferee's campaign overrides stickiness), and a member that restarts
 * refuses votes for its first election timeout (it may have acknowledged the leader just
 * before going down). Every member must use the same lease_read setting. Off by default.
 *
 * Membership: the configuration in force on a member is the latest configuration entry in
 * its log, committed or not (Raft thesis §4.1). The leader accepts one change at a time
 * and only after it has committed an entry in its current term (Ongaro's fix to the
 * single-server change bug). A removed leader steps down once the removal is committed.
 *
 * Term/index arithmetic is uint64_t; node id 0 means "none". */
#ifndef APPLIANCE_RAFT_H
#define APPLIANCE_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RAFT_MAX_NODES 9 /* members in one configuration */

enum raft_err {
    RAFT_OK = 0,
    RAFT_ENOTLEADER = -1, /* proposal/change on a non-leader: see raft_leader() */
    RAFT_EBUSY = -2,      /* call between raft_get_ready and raft_advance */
    RAFT_EINVAL = -3,     /* bad argument (size, id) */
    RAFT_ENOMEM = -4,
    RAFT_EFULL = -5,        /* too much uncommitted data or too many pending reads; retry */
    RAFT_ETRANSFER = -6,    /* a leadership transfer is in progress */
    RAFT_ECONFPENDING = -7, /* a membership change is not committed yet */
    RAFT_ENOLEADER = -8,    /* read index with no known leader */
    RAFT_ECORRUPT = -9,     /* inconsistent storage handed to raft_new */
};
const char *raft_strerror(int err);

enum raft_role { RAFT_FOLLOWER, RAFT_PRECANDIDATE, RAFT_CANDIDATE, RAFT_LEADER };
const char *raft_role_name(int role);

enum raft_entry_type {
    RAFT_ENTRY_NORMAL = 0, /* store command (an empty one is the leader's no-op) */
    RAFT_ENTRY_CONF = 1,   /* new voter set, encoded by raft_conf_encode */
};

typedef struct raft_entry {
    uint64_t term;
    uint64_t index;
    uint8_t type;
    uint32_t len;
    const uint8_t *data; /* len bytes; owned by whoever produced the entry */
} raft_entry;

typedef struct raft_conf {
    uint32_t n;
    uint64_t ids[RAFT_MAX_NODES]; /* voters, sorted ascending, no duplicates, no 0 */
} raft_conf;

typedef struct raft_hard_state {
    uint64_t term;
    uint64_t vote;
    uint64_t commit;
} raft_hard_state;

typedef struct raft_snapshot {
    uint64_t index; /* last log index covered */
    uint64_t term;  /* term of that entry */
    raft_conf conf; /* configuration as of index */
    uint32_t len;
    const uint8_t *data; /* the store's serialised state */
} raft_snapshot;

enum raft_msg_type {
    RAFT_MSG_PREVOTE = 1,
    RAFT_MSG_PREVOTE_RESP,
    RAFT_MSG_VOTE,
    RAFT_MSG_VOTE_RESP,
    RAFT_MSG_APPEND,
    RAFT_MSG_APPEND_RESP,
    RAFT_MSG_HEARTBEAT,
    RAFT_MSG_HEARTBEAT_RESP,
    RAFT_MSG_SNAPSHOT,
    RAFT_MSG_TIMEOUT_NOW,
    RAFT_MSG_READINDEX,
    RAFT_MSG_READINDEX_RESP,
    RAFT_MSG_TYPE_MAX = RAFT_MSG_READINDEX_RESP
};
const char *raft_msg_type_name(int type);

typedef struct raft_msg {
    uint8_t type;
    uint64_t from, to, term;
    /* APPEND: index/log_term of the entry before entries[0]; VOTE/PREVOTE: candidate's last
     * index/term; APPEND_RESP: highest index now matching (or the rejected index);
     * READINDEX_RESP: the read index. */
    uint64_t index, log_term;
    uint64_t commit;
    uint8_t reject;
    uint8_t transfer;     /* VOTE caused by leadership transfer: ignore leader stickiness */
    uint64_t reject_hint; /* APPEND_RESP reject: follower's best guess of the match point */
    uint64_t hint_term;   /* ... and its term there (fast back-off) */
    uint64_t ctx;         /* HEARTBEAT(_RESP)/READINDEX(_RESP): read context */
    uint32_t n_entries;
    const raft_entry *entries;
    uint8_t has_snapshot; /* SNAPSHOT */
    raft_snapshot snapshot;
} raft_msg;

typedef struct raft_read_state {
    uint64_t ctx;   /* as given to raft_read_index */
    uint64_t index; /* serve once applied >= index */
    int ok;         /* 0: not confirmed (leadership lost); the caller should retry */
} raft_read_state;

typedef struct raft_ready {
    int has_hard_state;
    raft_hard_state hard_state;
    const raft_snapshot *snapshot; /* installed from the leader: persist, then load */
    const raft_entry *entries;     /* to append to the WAL */
    size_t n_entries;
    int must_sync; /* term, vote or entries changed: fdatasync before sending */
    const raft_msg *msgs;
    size_t n_msgs;
    const raft_entry *committed; /* to apply, in order */
    size_t n_committed;
    const raft_read_state *reads;
    size_t n_reads;
    /* soft state, for logging/metrics/headers */
    uint64_t leader;
    int role;
} raft_ready;

typedef struct raft_config {
    uint64_t id;
    uint32_t election_ticks;        /* base election timeout; randomised in [e, 2e) */
    uint32_t heartbeat_ticks;       /* leader heartbeat period, < election_ticks */
    uint32_t max_inflight;          /* append messages in flight per follower (pipelining) */
    uint32_t max_msg_bytes;         /* entry bytes per append message (batching) */
    uint64_t max_uncommitted_bytes; /* proposals beyond this fail with RAFT_EFULL */
    uint32_t max_entry_bytes;       /* largest proposal */
    uint32_t max_pending_reads;
    uint32_t compact_margin; /* entries kept behind a snapshot for slow followers */
    bool pre_vote;
    bool check_quorum;
    bool lease_read; /* see the clock assumption above */
    uint64_t seed;   /* randomises election timeouts; give each member a different one */
} raft_config;

/* Sensible defaults: election 10 ticks, heartbeat 1, 64 in flight, 1 MiB messages,
 * PreVote and CheckQuorum on. id and seed must still be set. */
void raft_config_default(raft_config *cfg);

/* What was recovered from disk (or the bootstrap state of a brand-new member). */
typedef struct raft_storage {
    raft_hard_state hs;
    raft_snapshot snapshot;    /* index 0 = none; snapshot.conf is the bootstrap configuration */
    const raft_entry *entries; /* following snapshot.index, contiguous */
    size_t n_entries;
} raft_storage;

typedef struct raft raft;

/* Creates a member. Everything in st is copied. A fresh cluster member passes an empty log
 * and the initial cluster in st->snapshot.conf (index 0); a member added later passes an
 * empty configuration and learns it from the leader. err gets a description on failure. */
int raft_new(const raft_config *cfg, const raft_storage *st, raft **out, char *err, size_t errlen);
void raft_free(raft *r);

int raft_tick(raft *r);
int raft_step(raft *r, const raft_msg *m);
/* On success *index (if not NULL) is the log index the command will have if committed. */
int raft_propose(raft *r, const void *data, uint32_t len, uint64_t *index);
int raft_read_index(raft *r, uint64_t ctx);
int raft_transfer_leader(raft *r, uint64_t to);
enum raft_conf_op { RAFT_CONF_ADD = 1, RAFT_CONF_REMOVE = 2 };
int raft_change_member(raft *r, int op, uint64_t id, uint64_t *index);
/* Takes ownership of data (malloc'd) on success: the snapshot of the store at applied index
 * `index`. */
int raft_compact(raft *r, uint64_t index, uint8_t *data, uint32_t len);

/* Returns 1 and fills rd when there is something to do, 0 otherwise. */
int raft_get_ready(raft *r, raft_ready *rd);
void raft_advance(raft *r, const raft_ready *rd);

/* Read-only accessors. */
uint64_t raft_id(const raft *r);
uint64_t raft_term(const raft *r);
uint64_t raft_leader(const raft *r);
int raft_role(const raft *r);
uint64_t raft_commit_index(const raft *r);
uint64_t raft_applied_index(const raft *r);
uint64_t raft_last_index(const raft *r);
uint64_t raft_first_index(const raft *r); /* first entry still in memory */
/* Term of entry `index`, 0 if unknown (compacted or beyond the end). */
uint64_t raft_term_at(const raft *r, uint64_t index);
/* Entry `index` if still in memory (points into the core; valid until the next call). */
const raft_entry *raft_entry_at(const raft *r, uint64_t index);
const raft_conf *raft_get_conf(const raft *r);
uint64_t raft_snapshot_index(const raft *r);
/* The latest snapshot the core holds (its data is what raft_compact was given or what the
 * leader sent); index 0 if none. Valid until the next call that changes it. */
const raft_snapshot *raft_get_snapshot(const raft *r);

/* Configuration entries carry the full voter set. */
int raft_conf_encode(const raft_conf *c, uint8_t *buf, size_t cap); /* bytes or -1 */
int raft_conf_decode(const uint8_t *buf, size_t len, raft_conf *c); /* 0 or -1 */
bool raft_conf_has(const raft_conf *c, uint64_t id);

/* ---- wire encoding of messages (dcs/raft_msg.c) ----
 * Frame: 24-byte header then body, all integers little-endian:
 *   u32 magic "RFT1" | u8 version (1) | u8 type | u16 reserved (0)
 *   u32 body length | u32 CRC-32C of body | u64 reserved (0)
 * The transport reads the header, calls raft_msg_frame_len() to learn the total size,
 * reads the rest and calls raft_msg_decode(). */
#define RAFT_MSG_HEADER_LEN  24
#define RAFT_MSG_MAX_BODY    (64u << 20) /* bounds a snapshot carried in one message */
#define RAFT_MSG_MAX_ENTRIES 65536u
/* Bytes raft_msg_encode needs for m. */
size_t raft_msg_encoded_len(const raft_msg *m);
/* Encodes m into buf (cap bytes); returns bytes written or 0 if it does not fit. */
size_t raft_msg_encode(const raft_msg *m, uint8_t *buf, size_t cap);
/* From a header: total frame length, or 0 with err set if the header is invalid. */
size_t raft_msg_frame_len(const uint8_t *hdr, size_t len, char *err, size_t errlen);
/* Decodes one whole frame. Entry and snapshot data point into buf (zero copy); entries go
 * into ents[0..max_ents) (give RAFT_MSG_MAX_ENTRIES: a leader may send that many). Returns
 * 0, or -1 with err naming the bad field. A snapshot travels in one message, so the store's
 * serialised size is bounded by RAFT_MSG_MAX_BODY (no chunking yet). */
int raft_msg_decode(const uint8_t *buf, size_t len, raft_msg *m, raft_entry *ents, size_t max_ents,
                    char *err, size_t errlen);

#endif
