/* etcd's gRPC messages (etcdserverpb, mvccpb of etcd 3.4) on the protobuf wire, mapped to
 * and from the same structures the v3 JSON gateway uses (v3_request, mvcc_op_resp,
 * v3_watch_resp, v3_member, v3_status), so the gRPC front and the gateway share every
 * store, lease and watch call. Field numbers follow api/etcdserverpb/rpc.proto and
 * api/mvccpb/kv.proto. Requests get the same checks etcd's v3rpc layer makes before
 * anything reaches the store (empty key, value with ignore_value, ...), with etcd's
 * messages; a malformed message is InvalidArgument naming the message type. */
#ifndef APPLIANCE_DCS_PB_ETCD_H
#define APPLIANCE_DCS_PB_ETCD_H

#include <stddef.h>
#include <stdint.h>

#include "dcs/lease.h"
#include "dcs/mvcc.h"
#include "dcs/pb_wire.h"
#include "dcs/v3_cluster.h"
#include "dcs/v3_request.h"
#include "dcs/v3_response.h"

#define PB_MAX_TXN_OPS   128 /* etcd --max-txn-ops default */
#define PB_MAX_TXN_DEPTH 16

/* Decodes the request message of endpoint (enum v3_endpoint) into req. Byte strings are
 * copied into the arena, so msg may go away afterwards. 0, or -1 with err filled. */
int pb_decode_request(int endpoint, const uint8_t *msg, size_t len, mvcc_arena *a, v3_request *req,
                      v3_error *err);

/* Responses: each writes one whole top-level message into b. */
void pb_enc_op_resp(pb_buf *b, const v3_header *h, const mvcc_op_resp *r);
void pb_enc_header_only(pb_buf *b, const v3_header *h);
void pb_enc_lease_grant(pb_buf *b, const v3_header *h, int64_t id, int64_t ttl);
void pb_enc_lease_keepalive(pb_buf *b, const v3_header *h, int64_t id, int64_t ttl);
void pb_enc_lease_timetolive(pb_buf *b, const v3_header *h, const lease_ttl_info *t);
void pb_enc_lease_leases(pb_buf *b, const v3_header *h, const int64_t *ids, size_t n);
void pb_enc_watch(pb_buf *b, const v3_header *h, const v3_watch_resp *r);
/* MemberListResponse; also MemberRemove/UpdateResponse (the same fields). */
void pb_enc_member_list(pb_buf *b, const v3_header *h, const v3_member *m, size_t n);
/* MemberAddResponse: the added member, then every member. */
void pb_enc_member_add(pb_buf *b, const v3_header *h, const v3_member *m, size_t n, uint64_t added);
void pb_enc_status(pb_buf *b, const v3_header *h, const v3_status *st);

#endif
