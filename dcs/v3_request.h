/* Parsing of etcd v3 JSON gateway request bodies into store requests. Rules follow the
 * grpc-gateway (jsonpb) etcd 3.4 uses: proto field names or lowerCamelCase; bytes as
 * standard base64; int64 as JSON number or decimal string; enums by name or number;
 * unknown fields ignored (as etcd); an empty body is an empty request. Anything else is
 * an InvalidArgument error whose message starts with the text etcd gives and names the
 * offending field, e.g.
 *   illegal base64 data at input byte 0 (field "key")
 *   unknown value "BAD" for enum etcdserverpb.RangeRequest_SortOrder (field "sort_order")
 * Checks that etcd's v3rpc layer makes before a request reaches the store (empty key,
 * value with ignore_value, ...) are applied here too. */
#ifndef APPLIANCE_DCS_V3_REQUEST_H
#define APPLIANCE_DCS_V3_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dcs/mvcc.h"

enum v3_endpoint {
    V3_KV_RANGE = 1,
    V3_KV_PUT,
    V3_KV_DELETE_RANGE,
    V3_KV_TXN,
    V3_KV_COMPACTION,
    V3_LEASE_GRANT,
    V3_LEASE_REVOKE,
    V3_LEASE_KEEPALIVE,
    V3_LEASE_TIMETOLIVE,
    V3_LEASE_LEASES,
    V3_WATCH,
    V3_ENDPOINT_COUNT
};

enum v3_watch_kind { V3_WATCH_CREATE = 1, V3_WATCH_CANCEL, V3_WATCH_PROGRESS };

typedef struct v3_watch_create {
    const uint8_t *key, *range_end;
    size_t key_len, range_end_len;
    int64_t start_revision, watch_id;
    bool progress_notify, prev_kv, fragment;
    bool filter_noput, filter_nodelete;
} v3_watch_create;

typedef struct v3_request {
    int endpoint;
    mvcc_op op; /* range / put / delete range / txn */
    int64_t revision;
    bool physical;   /* compaction */
    int64_t id, ttl; /* lease */
    bool keys;       /* timetolive */
    /* timetolive on a follower: 1 + the remaining TTL the leader reported (set by the
     * server, never parsed; 0 = none: the local checkpointed value is served) */
    int64_t leader_ttl_plus1;
    int watch_kind;
    v3_watch_create watch;
    int64_t watch_id; /* cancel */
} v3_request;

typedef struct v3_error {
    int grpc_code;
    char message[256];
} v3_error;

/* "/v3/kv/range" -> V3_KV_RANGE (also "/v3beta/..."; 0 when unknown). */
int v3_endpoint_of(const char *path);
/* Tests and the fuzzer: true skips the PutRequest fast path, so both parsers can be
 * compared on the same input (they must agree on everything the fast path accepts). */
extern bool v3_request_full_only;
/* Parses body for the endpoint. Strings in out point into the arena. 0 or -1 (err set). */
int v3_parse_request(int endpoint, const char *body, size_t len, mvcc_arena *a, v3_request *out,
                     v3_error *err);
/* etcd's v3rpc checkIntervals on a parsed txn (no key put twice, or put and deleted, on
 * any branch path): 0, or -1 with err. The gRPC front runs it on decoded txns too. */
int v3_check_txn(const mvcc_txn_req *t, mvcc_arena *a, v3_error *err);
/* Fills err for a store error code (mvcc_err.h). */
void v3_error_from_store(int mvcc_err, v3_error *err);

#endif
