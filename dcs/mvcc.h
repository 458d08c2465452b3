/* The MVCC key-value store of the DCS: etcd v3 data model as a deterministic state
 * machine. Every member applies the same committed writes in the same order and reaches
 * the same state, so nothing here reads a clock or a random source.
 *
 * Model (as etcd's mvcc): a global revision counter; each write transaction (put, delete
 * range, txn, lease revoke) gets one new main revision, each change inside it a sub
 * revision. Per key: create_revision, mod_revision, version (1 on create, +1 on each put,
 * reset by delete), lease. History: every version of a key is kept (a delete leaves a
 * tombstone) until compaction, so ranges at an old revision and watch replays work.
 * Compaction at C drops every version superseded at C (and tombstones at or before C).
 *
 * Returned mvcc_kv point into the store: valid until the next compaction or restore.
 * Requests and responses live in a caller's mvcc_arena. */
#ifndef APPLIANCE_DCS_MVCC_H
#define APPLIANCE_DCS_MVCC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dcs/mvcc_arena.h"
#include "dcs/mvcc_err.h"

typedef struct mvcc mvcc;
typedef struct lessor lessor;

typedef struct mvcc_kv {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *value;
    size_t value_len;
    int64_t create_revision, mod_revision, version, lease;
} mvcc_kv;

enum mvcc_event_type { MVCC_EVENT_PUT = 0, MVCC_EVENT_DELETE = 1 };

typedef struct mvcc_event {
    int type;
    mvcc_kv kv; /* DELETE: key and mod_revision only (as etcd) */
    bool has_prev;
    mvcc_kv prev_kv;
} mvcc_event;

/* ---- requests ---- */
enum mvcc_sort_order { MVCC_SORT_NONE = 0, MVCC_SORT_ASCEND = 1, MVCC_SORT_DESCEND = 2 };
enum mvcc_sort_target {
    MVCC_TARGET_KEY = 0,
    MVCC_TARGET_VERSION = 1,
    MVCC_TARGET_CREATE = 2,
    MVCC_TARGET_MOD = 3,
    MVCC_TARGET_VALUE = 4,
    MVCC_TARGET_LEASE = 5 /* compare only */
};
enum mvcc_compare_result {
    MVCC_CMP_EQUAL = 0,
    MVCC_CMP_GREATER = 1,
    MVCC_CMP_LESS = 2,
    MVCC_CMP_NOT_EQUAL = 3
};

/* range_end: NULL/empty = the single key; "\0" (one zero byte) = every key >= key;
 * otherwise [key, range_end). */
typedef struct mvcc_range_req {
    const uint8_t *key, *range_end;
    size_t key_len, range_end_len;
    int64_t limit, revision;
    int sort_order, sort_target;
    bool serializable, keys_only, count_only;
    int64_t min_mod_revision, max_mod_revision, min_create_revision, max_create_revision;
} mvcc_range_req;

typedef struct mvcc_put_req {
    const uint8_t *key, *value;
    size_t key_len, value_len;
    int64_t lease;
    bool prev_kv, ignore_value, ignore_lease;
} mvcc_put_req;

typedef struct mvcc_delete_req {
    const uint8_t *key, *range_end;
    size_t key_len, range_end_len;
    bool prev_kv;
} mvcc_delete_req;

typedef struct mvcc_compare {
    int result, target;
    const uint8_t *key, *range_end, *value;
    size_t key_len, range_end_len, value_len;
    int64_t number; /* version / create_revision / mod_revision / lease */
} mvcc_compare;

enum mvcc_op_type { MVCC_OP_RANGE = 1, MVCC_OP_PUT, MVCC_OP_DELETE, MVCC_OP_TXN };

typedef struct mvcc_op mvcc_op;
typedef struct mvcc_txn_req {
    mvcc_compare *compare;
    size_t ncompare;
    mvcc_op *success, *failure;
    size_t nsuccess, nfailure;
} mvcc_txn_req;

struct mvcc_op {
    int type;
    union {
        mvcc_range_req range;
        mvcc_put_req put;
        mvcc_delete_req del;
        mvcc_txn_req txn;
    } u;
};

/* ---- responses ---- */
typedef struct mvcc_op_resp mvcc_op_resp;
struct mvcc_op_resp {
    int type;
    int64_t revision; /* header.revision */
    union {
        struct {
            mvcc_kv *kvs;
            size_t nkvs;
            int64_t count;
            bool more;
        } range;
        struct {
            bool has_prev;
            mvcc_kv prev;
        } put;
        struct {
            int64_t deleted;
            mvcc_kv *prev_kvs;
            size_t nprev;
        } del;
        struct {
            bool succeeded;
            mvcc_op_resp *responses;
            size_t n;
        } txn;
    } u;
};

/* ---- store ---- */
typedef struct mvcc_limits {
    size_t quota_bytes;     /* keys+values+overhead incl. history; default 256 MiB */
    size_t max_txn_ops;     /* default 128, as etcd --max-txn-ops */
    size_t max_value_bytes; /* key+value of one put; default 1.5 MiB as etcd's request limit */
} mvcc_limits;

typedef void (*mvcc_watch_hook)(void *arg, int64_t revision, const mvcc_event *events, size_t n);

void mvcc_limits_default(mvcc_limits *lim);
mvcc *mvcc_new(const mvcc_limits *lim);
void mvcc_free(mvcc *s);
/* The lease table of this store (lease.h). */
lessor *mvcc_lessor(mvcc *s);
/* Called after each committed write revision with its events (in sub-revision order). */
void mvcc_set_watch_hook(mvcc *s, mvcc_watch_hook hook, void *arg);

int64_t mvcc_current_revision(const mvcc *s);
int64_t mvcc_compact_revision(const mvcc *s);
size_t mvcc_bytes(const mvcc *s);     /* accounted bytes, for the quota */
size_t mvcc_key_count(const mvcc *s); /* keys in the index, tombstoned ones included */

/* Read: returns MVCC_OK or an error (compacted/future revision, nomem). */
int mvcc_range(mvcc *s, const mvcc_range_req *req, mvcc_arena *a, mvcc_op_resp *resp);
/* Write: one put / delete range / txn as one transaction (all or nothing: every check
 * that can fail runs before the first change). The one exception is MVCC_ERR_NOMEM from
 * inside the apply: the state may then be partly changed and differ from the other
 * members, so the server must treat it as fatal (stop, restart from snapshot + log). */
int mvcc_write(mvcc *s, const mvcc_op *op, mvcc_arena *a, mvcc_op_resp *resp);
/* Compaction at rev: MVCC_ERR_COMPACTED if rev <= current compaction, FUTURE_REV if
 * rev > current revision. */
int mvcc_compact(mvcc *s, int64_t rev);
/* Revision to compact to so that at most `retain` revisions of history stay (0 = none
 * needed). The leader proposes this periodically: the bounded-memory policy. */
int64_t mvcc_compact_suggest(const mvcc *s, int64_t retain);

/* History for watch replay: the events with revision in [from, to] on keys in
 * [key, range_end) (range_end rules as in range), in revision order, at most max events
 * (a revision is never split: fewer may be returned). *next_rev = first revision not yet
 * returned. MVCC_ERR_COMPACTED when from < compact revision. with_prev fills prev_kv. */
int mvcc_history(mvcc *s, const uint8_t *key, size_t key_len, const uint8_t *range_end,
                 size_t range_end_len, int64_t from, int64_t to, size_t max, bool with_prev,
                 mvcc_arena *a, mvcc_event **events, size_t *n, int64_t *next_rev);

/* The one-past-the-end key of a prefix (etcd's prefix range end), written to out (len+1
 * bytes); returns its length; "\0" (length 1) for an empty or all-0xff prefix. */
size_t mvcc_prefix_end(const uint8_t *prefix, size_t n, uint8_t *out);

#endif
