/* Leases of the DCS (etcd v3 lessor semantics).
 *
 * Replicated state (identical on every member, changed only by applied commands): each
 * lease's ID, granted TTL, last checkpointed remaining TTL and attached keys, plus the
 * counter that makes automatic IDs deterministic.
 *
 * Leader-local state: the expiry deadline of each lease on the local monotonic clock. Only
 * the Raft leader ("primary lessor") tracks it; keepalive renews it locally (as etcd: a
 * keepalive is not a Raft entry); lessor_expired() lists what the leader must propose as
 * LEASE_EXPIRE commands; lessor_promote() gives every lease a fresh deadline when a member
 * becomes leader, so a leader change never expires leases en masse (it would demote the
 * PostgreSQL primary). Time always enters as an argument (milliseconds). */
#ifndef APPLIANCE_DCS_LEASE_H
#define APPLIANCE_DCS_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dcs/mvcc.h"

#define LEASE_MAX_TTL 9000000000LL /* etcd MaxLeaseTTL, seconds */

typedef struct lease_ttl_info {
    int64_t id;
    int64_t ttl;         /* remaining seconds; -1 when the lease does not exist */
    int64_t granted_ttl; /* seconds */
    mvcc_kv *keys;       /* key/key_len only; sorted */
    size_t nkeys;
} lease_ttl_info;

/* ---- replicated operations (applied from committed commands) ---- */
/* Grants a lease. id 0 = pick the next deterministic ID. TTLs below the minimum are raised
 * to it (as etcd's minLeaseTTL). now_ms is used only for the leader-local deadline. */
int lease_grant(mvcc *s, int64_t id, int64_t ttl, int64_t now_ms, int64_t *out_id,
                int64_t *out_ttl);
/* Revokes: deletes every attached key in one revision, then the lease. */
int lease_revoke(mvcc *s, int64_t id);
/* The leader's decision that a lease expired: a revoke that is not an error when the
 * lease is already gone (the command may race with a revoke). */
int lease_expire(mvcc *s, int64_t id);
/* Refresh/checkpoint: records the remaining TTL (seconds) in the replicated state; the
 * primary also sets its deadline to now + remaining. */
int lease_checkpoint(mvcc *s, int64_t id, int64_t remaining_ttl, int64_t now_ms);

/* ---- leader-local ---- */
void lessor_set_min_ttl(lessor *l, int64_t seconds);
/* Renews a lease on the primary: deadline = now + TTL. *ttl = granted TTL.
 * MVCC_ERR_LEASE_NOT_FOUND when unknown (the gateway answers 200 without TTL). */
int lessor_keepalive(lessor *l, int64_t id, int64_t now_ms, int64_t *ttl);
int lessor_timetolive(lessor *l, int64_t id, int64_t now_ms, bool with_keys, mvcc_arena *a,
                      lease_ttl_info *out);
/* All lease IDs, ascending. */
int lessor_list(lessor *l, mvcc_arena *a, int64_t **ids, size_t *n);
/* Up to max IDs whose deadline passed (primary only; none otherwise). */
size_t lessor_expired(lessor *l, int64_t now_ms, int64_t *ids, size_t max);
/* Becoming leader: every lease gets deadline = now + (checkpointed remaining or TTL) +
 * extend_ms. */
void lessor_promote(lessor *l, int64_t now_ms, int64_t extend_ms);
/* Losing leadership: stop tracking deadlines. */
void lessor_demote(lessor *l);
bool lessor_is_primary(const lessor *l);
size_t lessor_count(const lessor *l);

/* Snapshot support: iteration and raw restore. */
typedef struct lease_record {
    int64_t id, ttl, remaining;
} lease_record;
/* Fills rec for the first lease with ID > *after (after NULL: the first lease); 0, or -1
 * when there is none. Any int64 is a valid lease ID, hence the pointer. */
int lessor_next(const lessor *l, const int64_t *after, lease_record *rec);
int lessor_restore(lessor *l, const lease_record *rec);
uint64_t lessor_id_seq(const lessor *l);
void lessor_set_id_seq(lessor *l, uint64_t seq);

#endif
