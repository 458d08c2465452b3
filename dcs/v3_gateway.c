/* Request -> command / read execution -> rendered response. */
#include "dcs/v3_gateway.h"

#include <string.h>

int v3_request_command(const v3_request *req, store_cmd *cmd)
{
    memset(cmd, 0, sizeof(*cmd));
    switch (req->endpoint) {
    case V3_KV_PUT:
        cmd->type = STORE_CMD_PUT;
        break;
    case V3_KV_DELETE_RANGE:
        cmd->type = STORE_CMD_DELETE;
        break;
    case V3_KV_TXN:
        cmd->type = STORE_CMD_TXN;
        break;
    case V3_KV_COMPACTION:
        cmd->type = STORE_CMD_COMPACT;
        cmd->revision = req->revision;
        return 1;
    case V3_LEASE_GRANT:
        cmd->type = STORE_CMD_LEASE_GRANT;
        cmd->lease_id = req->id;
        cmd->ttl = req->ttl;
        return 1;
    case V3_LEASE_REVOKE:
        cmd->type = STORE_CMD_LEASE_REVOKE;
        cmd->lease_id = req->id;
        return 1;
    default:
        return 0;
    }
    cmd->op = req->op;
    return 1;
}

static void error_out(int e, jw *w, int *status)
{
    v3_error err;
    v3_error_from_store(e, &err);
    v3_render_error(w, &err);
    *status = v3_error_http_status(&err);
}

void v3_render_result(const v3_request *req, const store_result *res, const v3_header *h, jw *w,
                      int *status)
{
    if (res->err) {
        error_out(res->err, w, status);
        return;
    }
    *status = 200;
    v3_header hh = *h;
    hh.revision = res->revision;
    switch (req->endpoint) {
    case V3_KV_PUT:
    case V3_KV_DELETE_RANGE:
    case V3_KV_TXN:
        v3_render_op_resp(w, &hh, &res->op);
        break;
    case V3_LEASE_GRANT:
        v3_render_lease_grant(w, &hh, res->lease_id, res->ttl);
        break;
    default:
        v3_render_header_only(w, &hh);
        break;
    }
}

void v3_execute_read(dcs_store *st, const v3_request *req, v3_header *h, int64_t now_ms,
                     mvcc_arena *a, jw *w, int *status)
{
    h->revision = mvcc_current_revision(st->kv);
    *status = 200;
    switch (req->endpoint) {
    case V3_KV_RANGE: {
        mvcc_op_resp r;
        int e = mvcc_range(st->kv, &req->op.u.range, a, &r);
        if (e)
            error_out(e, w, status);
        else
            v3_render_op_resp(w, h, &r);
        return;
    }
    case V3_LEASE_KEEPALIVE: {
        int64_t ttl = 0;
        /* Unknown or expired lease: 200 without TTL, as etcd (Patroni relies on it). */
        if (lessor_keepalive(mvcc_lessor(st->kv), req->id, now_ms, &ttl) != MVCC_OK)
            ttl = 0;
        v3_render_lease_keepalive(w, h, req->id, ttl);
        return;
    }
    case V3_LEASE_TIMETOLIVE: {
        lease_ttl_info t;
        int e = lessor_timetolive(mvcc_lessor(st->kv), req->id, now_ms, req->keys, a, &t);
        if (!e && t.ttl >= 0 && req->leader_ttl_plus1 > 0)
            t.ttl = req->leader_ttl_plus1 - 1; /* the leader keeps the deadlines */
        if (e)
            error_out(e, w, status);
        else
            v3_render_lease_timetolive(w, h, &t);
        return;
    }
    case V3_LEASE_LEASES: {
        int64_t *ids;
        size_t n;
        int e = lessor_list(mvcc_lessor(st->kv), a, &ids, &n);
        if (e)
            error_out(e, w, status);
        else
            v3_render_lease_leases(w, h, ids, n);
        return;
    }
    default: {
        v3_error err = {12, "Not Implemented"};
        v3_render_error(w, &err);
        *status = v3_error_http_status(&err);
        return;
    }
    }
}
