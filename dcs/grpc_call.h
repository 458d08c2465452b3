/* gRPC over one HTTP/2 stream (h2_conn.h): method lookup by :path, length-prefixed
 * message framing in both directions, status trailers (grpc-status, percent-encoded
 * grpc-message), as grpc-go sends them, so etcd's clients (etcdctl, clientv3) see the same
 * bytes as from etcd. No compression (a compressed message is answered UNIMPLEMENTED, as a
 * server without a decompressor does).
 *
 * A grpc_call lives while its stream does and while a service holds a reference (an
 * answer may come after the client left: grpc_call_alive() says whether to send). */
#ifndef APPLIANCE_DCS_GRPC_CALL_H
#define APPLIANCE_DCS_GRPC_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dcs/h2_conn.h"
#include "dcs/pb_wire.h"

#define GRPC_MAX_MSG (2u << 20) /* etcd: 1.5 MiB requests + gRPC overhead */

/* gRPC status codes used here. */
enum {
    GRPC_OK = 0,
    GRPC_CANCELLED = 1,
    GRPC_UNKNOWN = 2,
    GRPC_INVALID_ARGUMENT = 3,
    GRPC_NOT_FOUND = 5,
    GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_UNIMPLEMENTED = 12,
    GRPC_INTERNAL = 13,
    GRPC_UNAVAILABLE = 14,
};

enum grpc_method {
    GM_NONE = 0,
    GM_RANGE,
    GM_PUT,
    GM_DELETE_RANGE,
    GM_TXN,
    GM_COMPACT,
    GM_LEASE_GRANT,
    GM_LEASE_REVOKE,
    GM_LEASE_KEEPALIVE, /* bidi stream */
    GM_LEASE_TIMETOLIVE,
    GM_LEASE_LEASES,
    GM_WATCH, /* bidi stream */
    GM_STATUS,
    GM_ALARM,
    GM_MEMBER_LIST,
    GM_DEFRAGMENT,
    GM_HASHKV,
    GM_MOVE_LEADER,
    GM_HEALTH_CHECK, /* grpc.health.v1.Health/Check, which etcd registers too */
    /* Auth, as an etcd with authentication disabled answers (we have none) */
    GM_AUTHENTICATE,
    GM_AUTH_ENABLE,
    GM_AUTH_DISABLE,
    GM_USER_LIST,
    GM_ROLE_LIST,
    GM_USER_GET,
    GM_ROLE_GET,
    GM_MEMBER_ADD,
    GM_MEMBER_REMOVE,
    GM_MEMBER_UPDATE,
    GM_MEMBER_PROMOTE,
    GM_COUNT
};

typedef struct grpc_call grpc_call;

typedef struct grpc_service {
    /* One complete request message. Unary methods get exactly one. */
    void (*on_message)(grpc_call *call, const uint8_t *msg, size_t len, void *arg);
    /* The client finished sending (streams: after its last message). */
    void (*on_half_close)(grpc_call *call, void *arg);
    /* The stream is gone (done, reset, connection closed): drop per-call state. */
    void (*on_gone)(grpc_call *call, void *arg);
} grpc_service;

/* The h2 handler that routes streams to grpc calls of svc. */
void grpc_h2_handler(h2_handler *h);
/* What h2_conn_new's arg must point to. */
typedef struct grpc_ctx {
    const grpc_service *svc;
    void *arg;
} grpc_ctx;

/* "/etcdserverpb.KV/Range" -> GM_RANGE; GM_NONE when unknown. */
int grpc_method_of(const char *path);
bool grpc_method_streams(int method);

int grpc_call_method(const grpc_call *call);
bool grpc_call_alive(const grpc_call *call);
void grpc_call_set_user(grpc_call *call, void *user);
void *grpc_call_user(const grpc_call *call);
void grpc_call_ref(grpc_call *call);
void grpc_call_unref(grpc_call *call);
/* Sends one response message (b holds the protobuf bytes). -1 when the client is gone or
 * too slow (the stream is then reset). */
int grpc_call_send(grpc_call *call, const pb_buf *b);
/* Bytes sent but not yet taken by the connection (watch back-pressure). */
size_t grpc_call_queued(const grpc_call *call);
/* Ends the call with a status; message may be NULL. At most once. */
void grpc_call_finish(grpc_call *call, int code, const char *message);

/* grpc-message percent-encoding (grpc's rule: bytes outside 0x20..0x7e and '%'). */
void grpc_percent_encode(const char *in, char *out, size_t outsz);

#endif
