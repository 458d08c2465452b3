/* Store commands: the payload of Raft proposals. Every mutating DCS operation is encoded
 * into a compact, versioned binary command; every member decodes and applies the same
 * commands in log order and reaches the same state (store_apply is deterministic: the
 * only time input, now_ms, feeds leader-local lease deadlines, never replicated state).
 *
 * Format (version 1): u8 version, u8 type, then the type's fields as LEB128 varints
 * (signed ones zigzag), u8 flags and length-prefixed byte strings. Decoding is strict:
 * unknown version/type/enum, truncation, trailing bytes, nesting deeper than 16 or more
 * than the txn op limit are errors (a corrupt entry must not change state). */
#ifndef APPLIANCE_DCS_STORE_CMD_H
#define APPLIANCE_DCS_STORE_CMD_H

#include <stdbool.h>
#include <stdint.h>

#include "dcs/lease.h"
#include "dcs/mvcc.h"
#include "dcs/v2_store.h"

#define STORE_CMD_VERSION 1

enum store_cmd_type {
    STORE_CMD_PUT = 1,
    STORE_CMD_DELETE = 2,
    STORE_CMD_TXN = 3,
    STORE_CMD_COMPACT = 4,
    STORE_CMD_LEASE_GRANT = 5,
    STORE_CMD_LEASE_REVOKE = 6,
    STORE_CMD_LEASE_EXPIRE = 7,
    STORE_CMD_LEASE_CHECKPOINT = 8, /* "refresh": replicate a remaining TTL */
    STORE_CMD_V2 = 9,
    STORE_CMD_MEMBER = 10, /* membership: a member's peer URL added, changed or removed */
    STORE_CMD_MAX_TYPE = 10
};

enum store_member_op { STORE_MEMBER_ADD = 1, STORE_MEMBER_REMOVE = 2, STORE_MEMBER_UPDATE = 3 };
#define STORE_MAX_MEMBER_RECS 32 /* members and removed IDs remembered (oldest removals go) */
#define STORE_MAX_PEER_URL    255

/* Replicated membership record (the voter set itself is Raft's configuration; this is what
 * Raft does not carry: the peer URL to dial, and which IDs were removed for good so a
 * restart does not bring back a member from --initial-cluster). */
typedef struct store_member {
    uint64_t id;
    bool removed;
    char peer_url[STORE_MAX_PEER_URL + 1];
} store_member;

typedef struct store_cmd {
    int type;
    mvcc_op op;       /* PUT (op.u.put), DELETE (op.u.del), TXN (op.u.txn) */
    int64_t revision; /* COMPACT */
    int64_t lease_id; /* lease commands; 0 in GRANT = automatic ID */
    int64_t ttl;      /* GRANT: TTL; CHECKPOINT: remaining TTL (seconds) */
    v2_request v2;    /* V2 */
    int member_op;    /* MEMBER: store_member_op */
    uint64_t member_id;
    const char *peer_url; /* MEMBER add/update; NUL-free, <= STORE_MAX_PEER_URL bytes */
    size_t peer_url_len;
} store_cmd;

/* The replicated state machine: v3 key store (with its leases) and the v2 keys store. */
typedef struct dcs_store {
    mvcc *kv;
    v2_store *v2;
    store_member members[STORE_MAX_MEMBER_RECS];
    size_t nmembers;
    uint64_t members_changed; /* bumped by every MEMBER command applied */
} dcs_store;

typedef struct store_result {
    int type;
    int err;          /* MVCC_OK or MVCC_ERR_* */
    int64_t revision; /* v3 header.revision after the command */
    mvcc_op_resp op;  /* PUT/DELETE/TXN */
    int64_t lease_id, ttl;
    v2_result v2;
} store_result;

dcs_store *dcs_store_new(const mvcc_limits *lim);
void dcs_store_free(dcs_store *st);

/* Encodes into a malloc'd buffer (*out, *len). Returns 0, or -1 (too large for max_bytes,
 * out of memory, or an invalid field such as an unknown enum). */
int store_cmd_encode(const store_cmd *c, size_t max_bytes, uint8_t **out, size_t *len);
/* Decodes; byte strings point into buf (keep it alive while using *c). Returns 0 or -1. */
int store_cmd_decode(const uint8_t *buf, size_t len, mvcc_arena *a, store_cmd *c);

/* Applies one committed command. Results live in the arena and point into the store. */
int store_apply(dcs_store *st, const store_cmd *c, int64_t now_ms, mvcc_arena *a, store_result *r);
/* decode + apply; a malformed command is MVCC_ERR_BAD_COMMAND and changes nothing. */
int store_apply_bytes(dcs_store *st, const uint8_t *buf, size_t len, int64_t now_ms, mvcc_arena *a,
                      store_result *r);

/* Snapshot of the whole replicated state, CRC-32C checked. */
int store_snapshot_save(dcs_store *st, uint8_t **out, size_t *len);
/* Builds a new store from a snapshot; NULL if it is malformed (the caller keeps its
 * current store). lim as for dcs_store_new. */
dcs_store *store_snapshot_load(const uint8_t *buf, size_t len, const mvcc_limits *lim);

#endif
