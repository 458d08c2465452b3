/* Error table: messages and codes as etcd 3.4 sends them. */
#include "dcs/mvcc_err.h"

static const struct {
    const char *msg;
    int code;
} errs[MVCC_ERR_COUNT] = {
    [MVCC_OK] = {"", 0},
    [MVCC_ERR_COMPACTED] = {"etcdserver: mvcc: required revision has been compacted", 11},
    [MVCC_ERR_FUTURE_REV] = {"etcdserver: mvcc: required revision is a future revision", 11},
    [MVCC_ERR_LEASE_NOT_FOUND] = {"etcdserver: requested lease not found", 5},
    [MVCC_ERR_LEASE_EXISTS] = {"etcdserver: lease already exists", 9},
    [MVCC_ERR_LEASE_TTL_TOO_BIG] = {"etcdserver: too large lease TTL", 11},
    [MVCC_ERR_KEY_NOT_FOUND] = {"etcdserver: key not found", 3},
    [MVCC_ERR_EMPTY_KEY] = {"etcdserver: key is not provided", 3},
    [MVCC_ERR_VALUE_PROVIDED] = {"etcdserver: value is provided", 3},
    [MVCC_ERR_LEASE_PROVIDED] = {"etcdserver: lease is provided", 3},
    [MVCC_ERR_DUPLICATE_KEY] = {"etcdserver: duplicate key given in txn request", 3},
    [MVCC_ERR_TOO_MANY_OPS] = {"etcdserver: too many operations in txn request", 3},
    [MVCC_ERR_REQUEST_TOO_LARGE] = {"etcdserver: request is too large", 3},
    [MVCC_ERR_NOSPACE] = {"etcdserver: mvcc: database space exceeded", 8},
    [MVCC_ERR_NOMEM] = {"etcdserver: out of memory", 8},
    [MVCC_ERR_BAD_COMMAND] = {"etcdserver: malformed store command", 3},
};

const char *mvcc_err_message(int err)
{
    if (err < 0 || err >= MVCC_ERR_COUNT)
        return "etcdserver: unknown error";
    return errs[err].msg;
}

int mvcc_err_grpc_code(int err)
{
    if (err < 0 || err >= MVCC_ERR_COUNT)
        return 2;
    return errs[err].code;
}

int mvcc_grpc_http_status(int c)
{
    /* grpc-gateway v1 runtime.HTTPStatusFromCode (FailedPrecondition -> 412) */
    static const int map[] = {200, 408, 500, 400, 504, 404, 409, 403, 429,
                              412, 409, 400, 501, 500, 503, 500, 401};
    if (c < 0 || c >= (int)(sizeof(map) / sizeof(map[0])))
        return 500;
    return map[c];
}
