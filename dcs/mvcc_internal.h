/* Internals shared by mvcc*.c, lease*.c and store_cmd_snapshot.c only: the per-key record
 * and the hooks between the key store and the lease table. Not for other components. */
#ifndef APPLIANCE_DCS_MVCC_INTERNAL_H
#define APPLIANCE_DCS_MVCC_INTERNAL_H

#include "dcs/mvcc.h"
#include "dcs/mvcc_tree.h"

typedef struct mvcc_ver {
    int64_t main, sub, create_rev, version, lease;
    uint8_t *value; /* owned; NULL when empty */
    size_t value_len;
    bool tomb;
} mvcc_ver;

typedef struct mvcc_key {
    uint8_t *key; /* owned */
    size_t key_len;
    mvcc_ver *vers; /* ordered by (main, sub); last = current state */
    size_t nvers, cap;
    size_t lease_slot; /* position in the lease's key array while attached */
} mvcc_key;

struct mvcc {
    mvcc_tree index; /* key bytes -> mvcc_key */
    int64_t rev, compact_rev;
    size_t bytes;
    mvcc_limits lim;
    lessor *lessor;
    mvcc_watch_hook hook;
    void *hook_arg;
    /* the write transaction in progress */
    int64_t wrev, wsub;
    mvcc_event *evs;
    size_t nevs, evcap;
    int write_err; /* first allocation failure inside the transaction */
};

/* Approximate bytes a key/version costs, for the quota (same on every member). */
#define MVCC_KEY_OVERHEAD 96
#define MVCC_VER_OVERHEAD 64

/* Write transactions, used by lease revoke. */
void mvcc_txn_begin(mvcc *s);
/* Tombstones a key (no-op when not live); records the event. */
void mvcc_txn_delete_key(mvcc *s, mvcc_key *k);
/* Ends the transaction: bumps the revision if anything changed, runs the watch hook.
 * Returns MVCC_OK or the first error met inside. */
int mvcc_txn_end(mvcc *s);
/* Restores a raw version (snapshot load); the key is created when absent. */
int mvcc_restore_version(mvcc *s, const uint8_t *key, size_t key_len, const mvcc_ver *v);
/* First key record with key >= (strict: >) the given one. */
mvcc_key *mvcc_seek_key(mvcc *s, const uint8_t *key, size_t n, int strict);

/* lease.c side, called by the key store */
lessor *lessor_new(mvcc *s);
void lessor_free(lessor *l);
bool lessor_exists(const lessor *l, int64_t id);
int lessor_attach(lessor *l, int64_t id, mvcc_key *k);
void lessor_detach(lessor *l, int64_t id, mvcc_key *k);

#endif
