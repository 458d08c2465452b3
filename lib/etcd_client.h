/* Asynchronous etcd v3 client over the JSON gateway (contracts §2), on lib/http_client and
 * lib/evloop. Shared by the agent (leader lease, cluster keys) and the router (watch).
 *
 * - Keys and values are byte strings (key_len/value_len); the client base64-encodes them
 *   and decodes responses. int64 fields are accepted as JSON strings or numbers.
 * - Endpoints: a list of base URLs ("http://127.0.0.1:2379"). A call goes to the current
 *   endpoint; on a transport error, HTTP 5xx, or gRPC Unavailable it moves to the next one
 *   and retries within the call's deadline (each try gets half the time left, at least
 *   500 ms); after a full round over every endpoint it pauses 100 ms, so an election
 *   (every member answers "no leader" for ~1 election timeout) is waited out until the
 *   deadline instead of failing the call in a few ms. The endpoint that answered stays
 *   current.
 * - Every callback runs exactly once per call (unless the client is freed first), on the
 *   loop. Result pointers are valid only during the callback.
 * - A failed compare in a txn is not an error: ok = 1, succeeded = 0. */
#ifndef APPLIANCE_ETCD_CLIENT_H
#define APPLIANCE_ETCD_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "evloop.h"
#include "http_client.h"

#define ETCD_MAX_ENDPOINTS 16

typedef struct etcd_client etcd_client;
typedef struct etcd_watch etcd_watch;

typedef struct etcd_kv {
    char *key; /* NUL-terminated copy (keys with NUL bytes are truncated for C users) */
    size_t key_len;
    char *value; /* NUL-terminated */
    size_t value_len;
    int64_t create_revision, mod_revision, version, lease;
} etcd_kv;

typedef struct etcd_result {
    int ok;             /* the call reached etcd and etcd answered without error */
    int grpc_code;      /* etcd error code when !ok and etcd answered (5 = NotFound...) */
    const char *error;  /* message when !ok */
    int64_t revision;   /* header.revision */
    int succeeded;      /* txn: compare held (or a nested txn in failure succeeded) */
    const etcd_kv *kvs; /* range: the keys */
    size_t nkvs;
    int64_t lease_id; /* lease grant / keepalive */
    int64_t ttl;      /* lease grant / keepalive: 0 = lease gone */
} etcd_result;

typedef void (*etcd_cb)(const etcd_result *res, void *arg);

/* Compare and operation building blocks for etcd_txn. */
enum etcd_target {
    ETCD_CMP_VERSION,
    ETCD_CMP_CREATE,
    ETCD_CMP_MOD,
    ETCD_CMP_VALUE,
    ETCD_CMP_LEASE
};
enum etcd_result_op { ETCD_EQUAL, ETCD_GREATER, ETCD_LESS, ETCD_NOT_EQUAL };
typedef struct etcd_compare {
    const char *key;
    size_t key_len;
    enum etcd_target target;
    enum etcd_result_op result;
    int64_t number;    /* VERSION/CREATE/MOD/LEASE */
    const char *value; /* VALUE */
    size_t value_len;
} etcd_compare;

enum etcd_op_type { ETCD_OP_PUT, ETCD_OP_DELETE };
typedef struct etcd_op {
    enum etcd_op_type type;
    const char *key;
    size_t key_len;
    const char *value; /* PUT */
    size_t value_len;
    int64_t lease;         /* PUT: 0 = none */
    const char *range_end; /* DELETE: NULL = single key */
    size_t range_end_len;
} etcd_op;

/* endpoints: base URLs, copied. */
etcd_client *etcd_client_new(evloop *loop, http_client *http, const char *const *endpoints,
                             size_t n);
/* Cancels every pending call and watch (no callbacks). */
void etcd_client_free(etcd_client *c);
const char *etcd_client_current_endpoint(const etcd_client *c);

/* Prefix helper: writes the range end of a prefix (last byte + 1) into out (len bytes). */
void etcd_prefix_end(const char *prefix, size_t len, char *out);

int etcd_range(etcd_client *c, const char *key, size_t key_len, const char *range_end,
               size_t range_end_len, int serializable, uint32_t timeout_ms, etcd_cb cb, void *arg);
int etcd_put(etcd_client *c, const char *key, size_t key_len, const char *value, size_t value_len,
             int64_t lease, uint32_t timeout_ms, etcd_cb cb, void *arg);
int etcd_delete(etcd_client *c, const char *key, size_t key_len, const char *range_end,
                size_t range_end_len, uint32_t timeout_ms, etcd_cb cb, void *arg);
/* One-level txn (no nested txn ops): compares, then success or failure ops. */
int etcd_txn(etcd_client *c, const etcd_compare *cmp, size_t ncmp, const etcd_op *success,
             size_t nsuccess, const etcd_op *failure, size_t nfailure, uint32_t timeout_ms,
             etcd_cb cb, void *arg);
int etcd_lease_grant(etcd_client *c, int64_t ttl, uint32_t timeout_ms, etcd_cb cb, void *arg);
int etcd_lease_keepalive(etcd_client *c, int64_t id, uint32_t timeout_ms, etcd_cb cb, void *arg);
int etcd_lease_revoke(etcd_client *c, int64_t id, uint32_t timeout_ms, etcd_cb cb, void *arg);

/* Watch: events arrive in revision order. type: 0 = PUT, 1 = DELETE. on_end runs once when
 * the stream ends (error, cancel by the server, endpoint gone); the handle is then invalid.
 * Re-create the watch from a fresh range read's revision + 1 after on_end. */
typedef void (*etcd_watch_event_cb)(int type, const etcd_kv *kv, int64_t revision, void *arg);
typedef void (*etcd_watch_end_cb)(const char *why, void *arg);
etcd_watch *etcd_watch_start(etcd_client *c, const char *key, size_t key_len, const char *range_end,
                             size_t range_end_len, int64_t start_revision,
                             etcd_watch_event_cb on_event, etcd_watch_end_cb on_end, void *arg);
/* Stops a watch; on_end does not run. */
void etcd_watch_cancel(etcd_watch *w);

/* Pure helpers (exposed for tests and the fuzzer). */
/* Splits a watch byte stream into JSON objects: feeds data, calls cb for each complete
 * top-level object. Returns -1 if the stream is malformed or an object exceeds the bound. */
typedef struct etcd_json_splitter {
    char *buf;
    size_t len, cap, max;
    int depth, in_str, esc;
    size_t scan; /* bytes of buf already scanned */
} etcd_json_splitter;
void etcd_splitter_init(etcd_json_splitter *s, size_t max_object);
void etcd_splitter_free(etcd_json_splitter *s);
int etcd_splitter_feed(etcd_json_splitter *s, const char *data, size_t len,
                       int (*cb)(const char *obj, size_t len, void *arg), void *arg);
/* Parses one unary response body into res (kvs allocated; free with etcd_result_clear). */
int etcd_parse_response(const char *body, size_t len, int http_status, etcd_result *res,
                        char *errbuf, size_t errsz);
void etcd_result_clear(etcd_result *res);

#endif
