/* etcd v3 gateway response rendering. */
#include "dcs/v3_response.h"

#include "dcs/mvcc_err.h"

void v3_render_error(jw *w, const v3_error *e)
{
    jw_obj(w);
    jw_key(w, "error");
    jw_cstr(w, e->message);
    jw_key(w, "message");
    jw_cstr(w, e->message);
    jw_key(w, "code");
    jw_i64(w, e->grpc_code);
    jw_obj_end(w);
}

int v3_error_http_status(const v3_error *e)
{
    return mvcc_grpc_http_status(e->grpc_code);
}

static void header(jw *w, const v3_header *h)
{
    jw_key(w, "header");
    jw_obj(w);
    if (h->cluster_id) {
        jw_key(w, "cluster_id");
        jw_u64_quoted(w, h->cluster_id);
    }
    if (h->member_id) {
        jw_key(w, "member_id");
        jw_u64_quoted(w, h->member_id);
    }
    if (h->revision) {
        jw_key(w, "revision");
        jw_i64_quoted(w, h->revision);
    }
    if (h->raft_term) {
        jw_key(w, "raft_term");
        jw_u64_quoted(w, h->raft_term);
    }
    jw_obj_end(w);
}

static void i64_field(jw *w, const char *name, int64_t v)
{
    if (v) {
        jw_key(w, name);
        jw_i64_quoted(w, v);
    }
}

void v3_render_kv(jw *w, const mvcc_kv *kv)
{
    jw_obj(w);
    if (kv->key_len) {
        jw_key(w, "key");
        jw_b64(w, kv->key, kv->key_len);
    }
    i64_field(w, "create_revision", kv->create_revision);
    i64_field(w, "mod_revision", kv->mod_revision);
    i64_field(w, "version", kv->version);
    if (kv->value_len) {
        jw_key(w, "value");
        jw_b64(w, kv->value, kv->value_len);
    }
    i64_field(w, "lease", kv->lease);
    jw_obj_end(w);
}

static void kv_list(jw *w, const char *name, const mvcc_kv *kvs, size_t n)
{
    if (!n)
        return;
    jw_key(w, name);
    jw_arr(w);
    for (size_t i = 0; i < n; i++)
        v3_render_kv(w, &kvs[i]);
    jw_arr_end(w);
}

/* Body fields of an op response (after the header). */
static void op_body(jw *w, const mvcc_op_resp *r);

static void nested(jw *w, const mvcc_op_resp *r)
{
    /* etcd fills the header revision of nested range/put/delete responses, but leaves a
     * nested txn's header empty ("header":{}) */
    v3_header h = {0, 0, 0, r->type == MVCC_OP_TXN ? 0 : r->revision};
    jw_obj(w);
    header(w, &h);
    op_body(w, r);
    jw_obj_end(w);
}

static void op_body(jw *w, const mvcc_op_resp *r)
{
    switch (r->type) {
    case MVCC_OP_RANGE:
        kv_list(w, "kvs", r->u.range.kvs, r->u.range.nkvs);
        if (r->u.range.more) {
            jw_key(w, "more");
            jw_bool(w, true);
        }
        i64_field(w, "count", r->u.range.count);
        break;
    case MVCC_OP_PUT:
        if (r->u.put.has_prev) {
            jw_key(w, "prev_kv");
            v3_render_kv(w, &r->u.put.prev);
        }
        break;
    case MVCC_OP_DELETE:
        i64_field(w, "deleted", r->u.del.deleted);
        kv_list(w, "prev_kvs", r->u.del.prev_kvs, r->u.del.nprev);
        break;
    case MVCC_OP_TXN:
        if (r->u.txn.succeeded) {
            jw_key(w, "succeeded");
            jw_bool(w, true);
        }
        if (r->u.txn.n) {
            jw_key(w, "responses");
            jw_arr(w);
            for (size_t i = 0; i < r->u.txn.n; i++) {
                const mvcc_op_resp *s = &r->u.txn.responses[i];
                static const char *const names[] = {"", "response_range", "response_put",
                                                    "response_delete_range", "response_txn"};
                jw_obj(w);
                if (s->type >= MVCC_OP_RANGE && s->type <= MVCC_OP_TXN) {
                    jw_key(w, names[s->type]);
                    nested(w, s);
                }
                jw_obj_end(w);
            }
            jw_arr_end(w);
        }
        break;
    default:
        break;
    }
}

void v3_render_op_resp(jw *w, const v3_header *h, const mvcc_op_resp *r)
{
    jw_obj(w);
    header(w, h);
    op_body(w, r);
    jw_obj_end(w);
}

void v3_render_header_only(jw *w, const v3_header *h)
{
    jw_obj(w);
    header(w, h);
    jw_obj_end(w);
}

void v3_render_lease_grant(jw *w, const v3_header *h, int64_t id, int64_t ttl)
{
    jw_obj(w);
    header(w, h);
    i64_field(w, "ID", id);
    i64_field(w, "TTL", ttl);
    jw_obj_end(w);
}

void v3_render_lease_keepalive(jw *w, const v3_header *h, int64_t id, int64_t ttl)
{
    jw_obj(w);
    jw_key(w, "result");
    jw_obj(w);
    header(w, h);
    i64_field(w, "ID", id);
    i64_field(w, "TTL", ttl);
    jw_obj_end(w);
    jw_obj_end(w);
    jw_raw(w, "\n", 1);
}

void v3_render_lease_timetolive(jw *w, const v3_header *h, const lease_ttl_info *t)
{
    jw_obj(w);
    header(w, h);
    i64_field(w, "ID", t->id);
    i64_field(w, "TTL", t->ttl);
    i64_field(w, "grantedTTL", t->granted_ttl);
    if (t->nkeys) {
        jw_key(w, "keys");
        jw_arr(w);
        for (size_t i = 0; i < t->nkeys; i++)
            jw_b64(w, t->keys[i].key, t->keys[i].key_len);
        jw_arr_end(w);
    }
    jw_obj_end(w);
}

void v3_render_lease_leases(jw *w, const v3_header *h, const int64_t *ids, size_t n)
{
    jw_obj(w);
    header(w, h);
    if (n) {
        jw_key(w, "leases");
        jw_arr(w);
        for (size_t i = 0; i < n; i++) {
            jw_obj(w);
            i64_field(w, "ID", ids[i]);
            jw_obj_end(w);
        }
        jw_arr_end(w);
    }
    jw_obj_end(w);
}

void v3_render_watch(jw *w, const v3_header *h, const v3_watch_resp *r)
{
    jw_obj(w);
    jw_key(w, "result");
    jw_obj(w);
    header(w, h);
    i64_field(w, "watch_id", r->watch_id);
    if (r->created) {
        jw_key(w, "created");
        jw_bool(w, true);
    }
    if (r->canceled) {
        jw_key(w, "canceled");
        jw_bool(w, true);
    }
    i64_field(w, "compact_revision", r->compact_revision);
    if (r->cancel_reason && *r->cancel_reason) {
        jw_key(w, "cancel_reason");
        jw_cstr(w, r->cancel_reason);
    }
    if (r->fragment) {
        jw_key(w, "fragment");
        jw_bool(w, true);
    }
    if (r->nevents) {
        jw_key(w, "events");
        jw_arr(w);
        for (size_t i = 0; i < r->nevents; i++) {
            const mvcc_event *e = &r->events[i];
            jw_obj(w);
            if (e->type == MVCC_EVENT_DELETE) {
                jw_key(w, "type");
                jw_cstr(w, "DELETE");
            }
            jw_key(w, "kv");
            v3_render_kv(w, &e->kv);
            if (e->has_prev) {
                jw_key(w, "prev_kv");
                v3_render_kv(w, &e->prev_kv);
            }
            jw_obj_end(w);
        }
        jw_arr_end(w);
    }
    jw_obj_end(w);
    jw_obj_end(w);
}
