/* Rendering of etcd v3 JSON gateway responses exactly as etcd 3.4's grpc-gateway prints
 * them: proto field names in proto order, int64/uint64 as quoted decimals, zero values
 * omitted (false, 0, "", empty lists, enum 0), bytes as base64, errors as
 * {"error":M,"message":M,"code":N}, streaming RPCs (keepalive, watch) as {"result":{...}}. */
#ifndef APPLIANCE_DCS_V3_RESPONSE_H
#define APPLIANCE_DCS_V3_RESPONSE_H

#include "dcs/lease.h"
#include "dcs/mvcc.h"
#include "dcs/v3_jsonw.h"
#include "dcs/v3_request.h"

typedef struct v3_header {
    uint64_t cluster_id, member_id, raft_term;
    int64_t revision;
} v3_header;

typedef struct v3_watch_resp {
    int64_t watch_id;
    bool created, canceled, fragment;
    int64_t compact_revision;
    const char *cancel_reason;
    const mvcc_event *events;
    size_t nevents;
} v3_watch_resp;

void v3_render_error(jw *w, const v3_error *e);
/* HTTP status grpc-gateway uses for the error's code. */
int v3_error_http_status(const v3_error *e);
void v3_render_kv(jw *w, const mvcc_kv *kv);
/* Range, put, delete range or txn response. */
void v3_render_op_resp(jw *w, const v3_header *h, const mvcc_op_resp *r);
/* Header-only response (compaction, lease revoke). */
void v3_render_header_only(jw *w, const v3_header *h);
void v3_render_lease_grant(jw *w, const v3_header *h, int64_t id, int64_t ttl);
/* {"result":{header,ID[,TTL]}} followed by a newline, as the gateway streams it; ttl 0
 * (lease gone) leaves TTL out. */
void v3_render_lease_keepalive(jw *w, const v3_header *h, int64_t id, int64_t ttl);
void v3_render_lease_timetolive(jw *w, const v3_header *h, const lease_ttl_info *t);
void v3_render_lease_leases(jw *w, const v3_header *h, const int64_t *ids, size_t n);
/* One watch stream message {"result":{...}} (no trailing newline). */
void v3_render_watch(jw *w, const v3_header *h, const v3_watch_resp *r);

#endif
