/* Errors of the DCS state machine, each with etcd's exact message and gRPC code (the
 * gateway maps the code to the HTTP status). Messages match etcd 3.4
 * api/v3rpc/rpctypes/error.go, which clients (Patroni) match by text. */
#ifndef APPLIANCE_DCS_MVCC_ERR_H
#define APPLIANCE_DCS_MVCC_ERR_H

enum mvcc_err {
    MVCC_OK = 0,
    MVCC_ERR_COMPACTED,         /* 11 "etcdserver: mvcc: required revision has been compacted" */
    MVCC_ERR_FUTURE_REV,        /* 11 "etcdserver: mvcc: required revision is a future revision" */
    MVCC_ERR_LEASE_NOT_FOUND,   /* 5 */
    MVCC_ERR_LEASE_EXISTS,      /* 9 */
    MVCC_ERR_LEASE_TTL_TOO_BIG, /* 11 */
    MVCC_ERR_KEY_NOT_FOUND,     /* 3 (ignore_value / ignore_lease on a missing key) */
    MVCC_ERR_EMPTY_KEY,         /* 3 */
    MVCC_ERR_VALUE_PROVIDED,    /* 3 */
    MVCC_ERR_LEASE_PROVIDED,    /* 3 */
    MVCC_ERR_DUPLICATE_KEY,     /* 3 */
    MVCC_ERR_TOO_MANY_OPS,      /* 3 */
    MVCC_ERR_REQUEST_TOO_LARGE, /* 3 */
    MVCC_ERR_NOSPACE,           /* 8 "etcdserver: mvcc: database space exceeded" */
    MVCC_ERR_NOMEM,             /* 8, our own: allocation failed */
    MVCC_ERR_BAD_COMMAND,       /* 3, our own: a store command failed to decode */
    MVCC_ERR_COUNT
};

/* etcd's message text, e.g. "etcdserver: requested lease not found". */
const char *mvcc_err_message(int err);
/* gRPC status code (3 InvalidArgument, 5 NotFound, ...). */
int mvcc_err_grpc_code(int err);
/* HTTP status grpc-gateway uses for a gRPC code. */
int mvcc_grpc_http_status(int grpc_code);

#endif
