/* etcd v2 keys store (what /v2/keys serves): a tree of nodes (files with a value, or
 * directories), each with createdIndex/modifiedIndex and an optional TTL; one store-wide
 * index bumped by every change; a window of the last 1000 events for wait/waitIndex.
 *
 * Deterministic like the v3 store: a mutation carries the leader's wall clock (unix ms)
 * in the request, so every member computes the same expiration times; expiry happens only
 * through an applied V2_EXPIRE command carrying the leader's time (etcd's SYNC request).
 * Reads (GET, ttl rendering) take the reading member's clock as an argument. */
#ifndef APPLIANCE_DCS_V2_STORE_H
#define APPLIANCE_DCS_V2_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dcs/mvcc_arena.h"

#define V2_HISTORY 1000
/* Bounds of replicated times (unix ms) and TTLs (s): time + ttl never overflows. */
#define V2_MAX_TIME_MS (INT64_C(1) << 52)
#define V2_MAX_TTL     (INT64_C(1) << 40)

enum v2_method { V2_GET = 1, V2_PUT = 2, V2_POST = 3, V2_DELETE = 4, V2_EXPIRE = 5 };

/* etcd v2 error codes */
enum v2_error {
    V2_ERR_KEY_NOT_FOUND = 100,
    V2_ERR_TEST_FAILED = 101,
    V2_ERR_NOT_FILE = 102,
    V2_ERR_NOT_DIR = 104,
    V2_ERR_NODE_EXIST = 105,
    V2_ERR_ROOT_RONLY = 107,
    V2_ERR_DIR_NOT_EMPTY = 108,
    V2_ERR_PREV_VALUE_REQUIRED = 201,
    V2_ERR_TTL_NAN = 202,
    V2_ERR_INDEX_NAN = 203,
    V2_ERR_INVALID_FIELD = 209,
    V2_ERR_INVALID_FORM = 210,
    V2_ERR_RAFT_INTERNAL = 300, /* also: our v2 store quota is exhausted */
    V2_ERR_EVENT_INDEX_CLEARED = 401,
};

typedef struct v2_request {
    int method;
    const char *key; /* as given, e.g. "/service/batman/leader"; cleaned by the store */
    size_t key_len;
    const char *value;
    size_t value_len;
    const char *prev_value;
    size_t prev_value_len;
    bool has_prev_value;
    uint64_t prev_index; /* 0 = no index condition (etcd) */
    int prev_exist;      /* -1 unset, 0 false, 1 true */
    int64_t ttl;         /* seconds, when has_ttl */
    bool has_ttl;
    bool dir, recursive, sorted, refresh;
    bool wait;           /* GET: long poll */
    uint64_t wait_index; /* GET wait: first index wanted (0 = next change) */
    int64_t time_ms;     /* mutations: leader wall clock, unix ms */
} v2_request;

typedef struct v2_node_out v2_node_out;
struct v2_node_out {
    const char *key;
    const char *value; /* NULL for directories */
    size_t value_len;
    bool dir;
    uint64_t created_index, modified_index;
    int64_t expiration_ms; /* 0 = permanent */
    int64_t ttl;           /* seconds left (rounded up) when expiration_ms != 0 */
    v2_node_out *nodes;    /* children (dir listing); etcd omits an empty list */
    size_t nnodes;
};

typedef struct v2_result {
    int err;           /* 0 or V2_ERR_* */
    const char *cause; /* error cause (arena) */
    int http_status;   /* 200, 201, 404, 412, 403, 400 ... */
    uint64_t index;    /* X-Etcd-Index (error body "index" too) */
    const char *action;
    v2_node_out *node, *prev_node;
    bool pending; /* GET wait: no event yet; register a waiter */
} v2_result;

typedef struct v2_store v2_store;

v2_store *v2_store_new(void);
void v2_store_free(v2_store *s);
uint64_t v2_store_index(const v2_store *s);
/* Bounded memory: node bytes (keys, values, overhead) the v2 store may hold; a write
 * that would pass it fails with 300 (HTTP 500; Patroni retries). 0 = unlimited. */
void v2_store_set_quota(v2_store *s, size_t bytes);
size_t v2_store_bytes(const v2_store *s);

/* Mutations (PUT/POST/DELETE/EXPIRE), applied from commands. */
int v2_store_apply(v2_store *s, const v2_request *req, mvcc_arena *a, v2_result *res);
/* GET (with wait: answers from history or sets res->pending). now_ms renders TTLs. */
int v2_store_get(v2_store *s, const v2_request *req, int64_t now_ms, mvcc_arena *a, v2_result *res);
/* Earliest expiration among nodes (unix ms), 0 when none: the leader proposes
 * V2_EXPIRE with its time once that passes. */
int64_t v2_store_next_expiry(const v2_store *s);

/* Called with every event (for waiters): the event as a result (action, node, prevNode). */
typedef void (*v2_event_hook)(void *arg, const v2_result *event);
void v2_store_set_hook(v2_store *s, v2_event_hook hook, void *arg);
/* Does the event of `ev` match a waiter on key (recursive: key or below)? */
bool v2_event_matches(const v2_result *ev, const char *key, bool recursive);

/* Snapshot: serialize into / restore from the store's binary writer format. */
struct cmd_writer;
struct cmd_reader;
void v2_store_save(const v2_store *s, struct cmd_writer *w);
v2_store *v2_store_load(struct cmd_reader *r);

#endif
