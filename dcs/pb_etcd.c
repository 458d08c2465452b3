/* etcd gRPC messages <-> v3 gateway structures (see pb_etcd.h). */
#include "dcs/pb_etcd.h"

#include <stdio.h>
#include <string.h>

#include "dcs/mvcc_err.h"

/* Field numbers (rpc.proto / kv.proto). */
enum {
    HDR_CLUSTER_ID = 1,
    HDR_MEMBER_ID = 2,
    HDR_REVISION = 3,
    HDR_RAFT_TERM = 4,
    KV_KEY = 1,
    KV_CREATE = 2,
    KV_MOD = 3,
    KV_VERSION = 4,
    KV_VALUE = 5,
    KV_LEASE = 6,
};

typedef struct dctx {
    mvcc_arena *a;
    v3_error *err;
    const char *type; /* message being decoded, for the error text */
} dctx;

static int bad(dctx *c, const char *what)
{
    c->err->grpc_code = 3;
    snprintf(c->err->message, sizeof(c->err->message),
             "grpc: error unmarshalling request: etcdserverpb.%s: %s", c->type, what);
    return -1;
}

static int store_err(dctx *c, int e)
{
    v3_error_from_store(e, c->err);
    return -1;
}

static int copy_bytes(dctx *c, const pb_field *f, const uint8_t **out, size_t *len)
{
    if (f->wire != PB_LEN)
        return bad(c, "wrong wire type for a bytes field");
    /* mvcc_arena_dup NUL-terminates; an empty field still gets a valid pointer */
    const char *d = mvcc_arena_dup(c->a, (const char *)f->ptr, f->len);
    if (!d)
        return store_err(c, MVCC_ERR_NOMEM);
    *out = (const uint8_t *)d;
    *len = f->len;
    return 0;
}

static int get_i64(dctx *c, const pb_field *f, int64_t *out)
{
    if (f->wire != PB_VARINT)
        return bad(c, "wrong wire type for an integer field");
    *out = (int64_t)f->u;
    return 0;
}

static int get_bool(dctx *c, const pb_field *f, bool *out)
{
    if (f->wire != PB_VARINT)
        return bad(c, "wrong wire type for a bool field");
    *out = f->u != 0;
    return 0;
}

static int get_enum(dctx *c, const pb_field *f, int max, int *out)
{
    if (f->wire != PB_VARINT)
        return bad(c, "wrong wire type for an enum field");
    /* Go's proto3 keeps unknown enum numbers; etcd then rejects or ignores them. We
     * reject them here: the store has no meaning for them. */
    if (f->u > (uint64_t)max)
        return bad(c, "enum value out of range");
    *out = (int)f->u;
    return 0;
}

#define NEXT_OR_FAIL(rd, f, rc)                                                                    \
    ((rc) = pb_next((rd), (f)), (rc) < 0 ? bad(c, "malformed protobuf") : 0)

static int dec_range(dctx *c, const uint8_t *m, size_t n, mvcc_range_req *r)
{
    memset(r, 0, sizeof(*r));
    const char *saved = c->type;
    c->type = "RangeRequest";
    pb_reader rd;
    pb_field f;
    int rc;
    pb_reader_init(&rd, m, n);
    while ((rc = pb_next(&rd, &f)) > 0) {
        int e = 0;
        switch (f.num) {
        case 1:
            e = copy_bytes(c, &f, &r->key, &r->key_len);
            break;
        case 2:
            e = copy_bytes(c, &f, &r->range_end, &r->range_end_len);
            break;
        case 3:
            e = get_i64(c, &f, &r->limit);
            break;
        case 4:
            e = get_i64(c, &f, &r->revision);
            break;
        case 5:
            e = get_enum(c, &f, 2, &r->sort_order);
            break;
        case 6:
            e = get_enum(c, &f, 4, &r->sort_target);
            break;
        case 7:
            e = get_bool(c, &f, &r->serializable);
            break;
        case 8:
            e = get_bool(c, &f, &r->keys_only);
            break;
        case 9:
            e = get_bool(c, &f, &r->count_only);
            break;
        case 10:
            e = get_i64(c, &f, &r->min_mod_revision);
            break;
        case 11:
            e = get_i64(c, &f, &r->max_mod_revision);
            break;
        case 12:
            e = get_i64(c, &f, &r->min_create_revision);
            break;
        case 13:
            e = get_i64(c, &f, &r->max_create_revision);
            break;
        default:
            break; /* unknown fields are skipped, as protobuf does */
        }
        if (e)
            return -1;
    }
    if (rc < 0)
        return bad(c, "malformed protobuf");
    c->type = saved;
    if (r->key_len == 0)
        return store_err(c, MVCC_ERR_EMPTY_KEY);
    return 0;
}

static int dec_put(dctx *c, const uint8_t *m, size_t n, mvcc_put_req *p)
{
    memset(p, 0, sizeof(*p));
    const char *saved = c->type;
    c->type = "PutRequest";
    pb_reader rd;
    pb_field f;
    int rc;
    pb_reader_init(&rd, m, n);
    while ((rc = pb_next(&rd, &f)) > 0) {
        int e = 0;
        switch (f.num) {
        case 1:
            e = copy_bytes(c, &f, &p->key, &p->key_len);
            break;
        case 2:
            e = copy_bytes(c, &f, &p->value, &p->value_len);
            break;
        case 3:
            e = get_i64(c, &f, &p->lease);
            break;
        case 4:
            e = get_bool(c, &f, &p->prev_kv);
            break;
        case 5:
            e = get_bool(c, &f, &p->ignore_value);
            break;
        case 6:
            e = get_bool(c, &f, &p->ignore_lease);
            break;
        default:
            break;
        }
        if (e)
            return -1;
    }
    if (rc < 0)
        return bad(c, "malformed protobuf");
    c->type = saved;
    if (p->key_len == 0)
        return store_err(c, MVCC_ERR_EMPTY_KEY);
    if (p->ignore_value && p->value_len)
        return store_err(c, MVCC_ERR_VALUE_PROVIDED);
    if (p->ignore_lease && p->lease)
        return store_err(c, MVCC_ERR_LEASE_PROVIDED);
    return 0;
}

static int dec_delete(dctx *c, const uint8_t *m, size_t n, mvcc_delete_req *d)
{
    memset(d, 0, sizeof(*d));
    const char *saved = c->type;
    c->type = "DeleteRangeRequest";
    pb_reader rd;
    pb_field f;
    int rc;
    pb_reader_init(&rd, m, n);
    while ((rc = pb_next(&rd, &f)) > 0) {
        int e = 0;
        switch (f.num) {
        case 1:
            e = copy_bytes(c, &f, &d->key, &d->key_len);
            break;
        case 2:
            e = copy_bytes(c, &f, &d->range_end, &d->range_end_len);
            break;
        case 3:
            e = get_bool(c, &f, &d->prev_kv);
            break;
        default:
            break;
        }
        if (e)
            return -1;
    }
    if (rc < 0)
        return bad(c, "malformed protobuf");
    c->type = saved;
    if (d->key_len == 0)
        return store_err(c, MVCC_ERR_EMPTY_KEY);
    return 0;
}

static int dec_compare(dctx *c, const uint8_t *m, size_t n, mvcc_compare *cmp)
{
    memset(cmp, 0, sizeof(*cmp));
    const char *saved = c->type;
    c->type = "Compare";
    pb_reader rd;
    pb_field f;
    int rc, res = 0, tgt = 0;
    /* target_union is a oneof: the last member on the wire wins, as protobuf */
    int64_t num[9] = {0};
    const uint8_t *value = NULL;
    size_t value_len = 0;
    pb_reader_init(&rd, m, n);
    while ((rc = pb_next(&rd, &f)) > 0) {
        int e = 0;
        switch (f.num) {
        case 1:
            e = get_enum(c, &f, 3, &res);
            break;
        case 2:
            e = get_enum(c, &f, 4, &tgt);
            break;
        case 3:
            e = copy_bytes(c, &f, &cmp->key, &cmp->key_len);
            break;
        case 4:
        case 5:
        case 6:
        case 8:
            e = get_i64(c, &f, &num[f.num]);
            break;
        case 7:
            e = copy_bytes(c, &f, &value, &value_len);
            break;
        case 64:
            e = copy_bytes(c, &f, &cmp->range_end, &cmp->range_end_len);
            break;
        default:
            break;
        }
        if (e)
            return -1;
    }
    if (rc < 0)
        return bad(c, "malformed protobuf");
    c->type = saved;
    cmp->result = res;
    cmp->target = tgt + 1; /* proto VERSION=0.. -> mvcc_sort_target VERSION=1.. */
    switch (cmp->target) {
    case MVCC_TARGET_VERSION:
        cmp->number = num[4];
        break;
    case MVCC_TARGET_CREATE:
        cmp->number = num[5];
        break;
    case MVCC_TARGET_MOD:
        cmp->number = num[6];
        break;
    case MVCC_TARGET_LEASE:
        cmp->number = num[8];
        break;
    case MVCC_TARGET_VALUE:
        cmp->value = value;
        cmp->value_len = value_len;
        break;
    default:
        break;
    }
    return 0;
}

static int dec_txn(dctx *c, const uint8_t *m, size_t n, mvcc_txn_req *t, int depth);

static int dec_op(dctx *c, const uint8_t *m, size_t n, mvcc_op *op, int depth)
{
    memset(op, 0, sizeof(*op));
    const char *saved = c->type;
    c->type = "RequestOp";
    pb_reader rd;
    pb_field f;
    int rc;
    const uint8_t *body = NULL;
    size_t blen = 0;
    int which = 0;
    pb_reader_init(&rd, m, n);
    while ((rc = pb_next(&rd, &f)) > 0) {
        if (f.num >= 1 && f.num <= 4) {
            if (f.wire != PB_LEN)
                return bad(c, "wrong wire type for a message field");
            which = (int)f.num; /* oneof: the last one wins */
            body = f.ptr;
            blen = f.len;
        }
    }
    if (rc < 0)
        return bad(c, "malformed protobuf");
    c->type = saved;
    switch (which) {
    case 1:
        op->type = MVCC_OP_RANGE;
        return dec_range(c, body, blen, &op->u.range);
    case 2:
        op->type = MVCC_OP_PUT;
        return dec_put(c, body, blen, &op->u.put);
    case 3:
        op->type = MVCC_OP_DELETE;
        return dec_delete(c, body, blen, &op->u.del);
    case 4:
        op->type = MVCC_OP_TXN;
        return dec_txn(c, body, blen, &op->u.txn, depth + 1);
    default:
        c->err->grpc_code = 3;
        snprintf(c->err->message, sizeof(c->err->message),
                 "etcdserver: request op has no request set");
        return -1;
    }
}

/* Counts the occurrences of field num (LEN) in a message already known to parse. */
static size_t count_field(const uint8_t *m, size_t n, uint32_t num)
{
    pb_reader rd;
    pb_field f;
    size_t k = 0;
    pb_reader_init(&rd, m, n);
    while (pb_next(&rd, &f) > 0)
        if (f.num == num && f.wire == PB_LEN)
            k++;
    return k;
}

static int dec_txn(dctx *c, const uint8_t *m, size_t n, mvcc_txn_req *t, int depth)
{
    memset(t, 0, sizeof(*t));
    if (depth > PB_MAX_TXN_DEPTH)
        return store_err(c, MVCC_ERR_TOO_MANY_OPS);
    const char *saved = c->type;
    c->type = "TxnRequest";
    pb_reader rd;
    pb_field f;
    int rc;
    pb_reader_init(&rd, m, n);
    while ((rc = pb_next(&rd, &f)) > 0)
        if (f.num >= 1 && f.num <= 3 && f.wire != PB_LEN)
            return bad(c, "wrong wire type for a message field");
    if (rc < 0)
        return bad(c, "malformed protobuf");
    size_t nc = count_field(m, n, 1), ns = count_field(m, n, 2), nf = count_field(m, n, 3);
    if (nc > PB_MAX_TXN_OPS || ns > PB_MAX_TXN_OPS || nf > PB_MAX_TXN_OPS)
        return store_err(c, MVCC_ERR_TOO_MANY_OPS);
    if ((nc && !(t->compare = mvcc_arena_alloc(c->a, nc * sizeof(mvcc_compare)))) ||
        (ns && !(t->success = mvcc_arena_alloc(c->a, ns * sizeof(mvcc_op)))) ||
        (nf && !(t->failure = mvcc_arena_alloc(c->a, nf * sizeof(mvcc_op)))))
        return store_err(c, MVCC_ERR_NOMEM);
    pb_reader_init(&rd, m, n);
    while (pb_next(&rd, &f) > 0) {
        int e = 0;
        switch (f.num) {
        case 1:
            e = dec_compare(c, f.ptr, f.len, &t->compare[t->ncompare++]);
            break;
        case 2:
            e = dec_op(c, f.ptr, f.len, &t->success[t->nsuccess++], depth);
            break;
        case 3:
            e = dec_op(c, f.ptr, f.len, &t->failure[t->nfailure++], depth);
            break;
        default:
            break;
        }
        if (e)
            return -1;
    }
    c->type = saved;
    return 0;
}

static int dec_watch(dctx *c, const uint8_t *m, size_t n, v3_request *r)
{
    pb_reader rd;
    pb_field f;
    int rc;
    const uint8_t *body = NULL;
    size_t blen = 0;
    int which = 0;
    pb_reader_init(&rd, m, n);
    while ((rc = pb_next(&rd, &f)) > 0) {
        if (f.num >= 1 && f.num <= 3) {
            if (f.wire != PB_LEN)
                return bad(c, "wrong wire type for a message field");
            which = (int)f.num;
            body = f.ptr;
            blen = f.len;
        }
    }
    if (rc < 0)
        return bad(c, "malformed protobuf");
    pb_reader_init(&rd, body, blen);
    if (which == 1) {
        c->type = "WatchCreateRequest";
        v3_watch_create *w = &r->watch;
        r->watch_kind = V3_WATCH_CREATE;
        while ((rc = pb_next(&rd, &f)) > 0) {
            int e = 0, ft = 0;
            switch (f.num) {
            case 1:
                e = copy_bytes(c, &f, &w->key, &w->key_len);
                break;
            case 2:
                e = copy_bytes(c, &f, &w->range_end, &w->range_end_len);
                break;
            case 3:
                e = get_i64(c, &f, &w->start_revision);
                break;
            case 4:
                e = get_bool(c, &f, &w->progress_notify);
                break;
            case 5:
                if (f.wire == PB_LEN) { /* packed repeated enum */
                    pb_reader pr;
                    pb_reader_init(&pr, f.ptr, f.len);
                    uint64_t v = 0;
                    for (size_t i = 0; i < f.len;) {
                        /* decode one varint by hand: a packed list has no tags */
                        int shift = 0;
                        v = 0;
                        for (;;) {
                            if (i >= f.len || shift > 63)
                                return bad(c, "malformed packed field");
                            uint8_t b = f.ptr[i++];
                            v |= (uint64_t)(b & 0x7f) << shift;
                            shift += 7;
                            if (!(b & 0x80))
                                break;
                        }
                        if (v > 1)
                            return bad(c, "enum value out of range");
                        if (v == 0)
                            w->filter_noput = true;
                        else
                            w->filter_nodelete = true;
                    }
                    break;
                }
                e = get_enum(c, &f, 1, &ft);
                if (!e && ft == 0)
                    w->filter_noput = true;
                else if (!e)
                    w->filter_nodelete = true;
                break;
            case 6:
                e = get_bool(c, &f, &w->prev_kv);
                break;
            case 7:
                e = get_i64(c, &f, &w->watch_id);
                break;
            case 8:
                e = get_bool(c, &f, &w->fragment);
                break;
            default:
                break;
            }
            if (e)
                return -1;
        }
        return rc < 0 ? bad(c, "malformed protobuf") : 0;
    }
    if (which == 2) {
        c->type = "WatchCancelRequest";
        r->watch_kind = V3_WATCH_CANCEL;
        while ((rc = pb_next(&rd, &f)) > 0)
            if (f.num == 1 && get_i64(c, &f, &r->watch_id))
                return -1;
        return rc < 0 ? bad(c, "malformed protobuf") : 0;
    }
    if (which == 3) {
        r->watch_kind = V3_WATCH_PROGRESS;
        return 0;
    }
    /* etcd ignores a WatchRequest with no member set; the caller skips kind 0 */
    return 0;
}

static int dec_simple(dctx *c, const uint8_t *m, size_t n, v3_request *r)
{
    pb_reader rd;
    pb_field f;
    int rc;
    pb_reader_init(&rd, m, n);
    while ((rc = pb_next(&rd, &f)) > 0) {
        int e = 0;
        switch (r->endpoint) {
        case V3_KV_COMPACTION:
            if (f.num == 1)
                e = get_i64(c, &f, &r->revision);
            else if (f.num == 2)
                e = get_bool(c, &f, &r->physical);
            break;
        case V3_LEASE_GRANT:
            if (f.num == 1)
                e = get_i64(c, &f, &r->ttl);
            else if (f.num == 2)
                e = get_i64(c, &f, &r->id);
            break;
        case V3_LEASE_REVOKE:
        case V3_LEASE_KEEPALIVE:
            if (f.num == 1)
                e = get_i64(c, &f, &r->id);
            break;
        case V3_LEASE_TIMETOLIVE:
            if (f.num == 1)
                e = get_i64(c, &f, &r->id);
            else if (f.num == 2)
                e = get_bool(c, &f, &r->keys);
            break;
        default:
            break;
        }
        if (e)
            return -1;
    }
    return rc < 0 ? bad(c, "malformed protobuf") : 0;
}

int pb_decode_request(int ep, const uint8_t *msg, size_t len, mvcc_arena *a, v3_request *out,
                      v3_error *err)
{
    static const char *const names[V3_ENDPOINT_COUNT] = {
        [V3_KV_RANGE] = "RangeRequest",
        [V3_KV_PUT] = "PutRequest",
        [V3_KV_DELETE_RANGE] = "DeleteRangeRequest",
        [V3_KV_TXN] = "TxnRequest",
        [V3_KV_COMPACTION] = "CompactionRequest",
        [V3_LEASE_GRANT] = "LeaseGrantRequest",
        [V3_LEASE_REVOKE] = "LeaseRevokeRequest",
        [V3_LEASE_KEEPALIVE] = "LeaseKeepAliveRequest",
        [V3_LEASE_TIMETOLIVE] = "LeaseTimeToLiveRequest",
        [V3_LEASE_LEASES] = "LeaseLeasesRequest",
        [V3_WATCH] = "WatchRequest",
    };
    memset(out, 0, sizeof(*out));
    memset(err, 0, sizeof(*err));
    if (ep <= 0 || ep >= V3_ENDPOINT_COUNT) {
        err->grpc_code = 12;
        snprintf(err->message, sizeof(err->message), "Not Implemented");
        return -1;
    }
    dctx c = {a, err, names[ep]};
    out->endpoint = ep;
    switch (ep) {
    case V3_KV_RANGE:
        out->op.type = MVCC_OP_RANGE;
        return dec_range(&c, msg, len, &out->op.u.range);
    case V3_KV_PUT:
        out->op.type = MVCC_OP_PUT;
        return dec_put(&c, msg, len, &out->op.u.put);
    case V3_KV_DELETE_RANGE:
        out->op.type = MVCC_OP_DELETE;
        return dec_delete(&c, msg, len, &out->op.u.del);
    case V3_KV_TXN:
        out->op.type = MVCC_OP_TXN;
        if (dec_txn(&c, msg, len, &out->op.u.txn, 0) != 0)
            return -1;
        return v3_check_txn(&out->op.u.txn, a, err); /* as the JSON gateway, before Raft */
    case V3_WATCH:
        return dec_watch(&c, msg, len, out);
    default:
        return dec_simple(&c, msg, len, out);
    }
}

/* ---- responses ---- */
static void enc_header(pb_buf *b, const v3_header *h)
{
    size_t m = pb_begin(b, 1);
    pb_u64(b, HDR_CLUSTER_ID, h->cluster_id);
    pb_u64(b, HDR_MEMBER_ID, h->member_id);
    pb_i64(b, HDR_REVISION, h->revision);
    pb_u64(b, HDR_RAFT_TERM, h->raft_term);
    pb_end(b, m);
}

static void enc_kv(pb_buf *b, uint32_t field, const mvcc_kv *kv)
{
    size_t m = pb_begin(b, field);
    pb_bytes(b, KV_KEY, kv->key, kv->key_len);
    pb_i64(b, KV_CREATE, kv->create_revision);
    pb_i64(b, KV_MOD, kv->mod_revision);
    pb_i64(b, KV_VERSION, kv->version);
    pb_bytes(b, KV_VALUE, kv->value, kv->value_len);
    pb_i64(b, KV_LEASE, kv->lease);
    pb_end(b, m);
}

static void op_body(pb_buf *b, const mvcc_op_resp *r);

static void op_nested(pb_buf *b, uint32_t field, const mvcc_op_resp *r)
{
    size_t m = pb_begin(b, field);
    /* etcd fills the revision of nested range/put/delete headers, not of a nested txn */
    v3_header h = {0, 0, 0, r->type == MVCC_OP_TXN ? 0 : r->revision};
    enc_header(b, &h);
    op_body(b, r);
    pb_end(b, m);
}

static void op_body(pb_buf *b, const mvcc_op_resp *r)
{
    switch (r->type) {
    case MVCC_OP_RANGE:
        for (size_t i = 0; i < r->u.range.nkvs; i++)
            enc_kv(b, 2, &r->u.range.kvs[i]);
        pb_bool(b, 3, r->u.range.more);
        pb_i64(b, 4, r->u.range.count);
        break;
    case MVCC_OP_PUT:
        if (r->u.put.has_prev)
            enc_kv(b, 2, &r->u.put.prev);
        break;
    case MVCC_OP_DELETE:
        pb_i64(b, 2, r->u.del.deleted);
        for (size_t i = 0; i < r->u.del.nprev; i++)
            enc_kv(b, 3, &r->u.del.prev_kvs[i]);
        break;
    case MVCC_OP_TXN:
        pb_bool(b, 2, r->u.txn.succeeded);
        for (size_t i = 0; i < r->u.txn.n; i++) {
            const mvcc_op_resp *s = &r->u.txn.responses[i];
            size_t m = pb_begin(b, 3); /* ResponseOp */
            if (s->type >= MVCC_OP_RANGE && s->type <= MVCC_OP_TXN)
                op_nested(b, (uint32_t)s->type, s); /* oneof numbers follow the op types */
            pb_end(b, m);
        }
        break;
    default:
        break;
    }
}

void pb_enc_op_resp(pb_buf *b, const v3_header *h, const mvcc_op_resp *r)
{
    enc_header(b, h);
    op_body(b, r);
}

void pb_enc_header_only(pb_buf *b, const v3_header *h)
{
    enc_header(b, h);
}

void pb_enc_lease_grant(pb_buf *b, const v3_header *h, int64_t id, int64_t ttl)
{
    enc_header(b, h);
    pb_i64(b, 2, id);
    pb_i64(b, 3, ttl);
}

void pb_enc_lease_keepalive(pb_buf *b, const v3_header *h, int64_t id, int64_t ttl)
{
    enc_header(b, h);
    pb_i64(b, 2, id);
    pb_i64(b, 3, ttl);
}

void pb_enc_lease_timetolive(pb_buf *b, const v3_header *h, const lease_ttl_info *t)
{
    enc_header(b, h);
    pb_i64(b, 2, t->id);
    pb_i64(b, 3, t->ttl);
    pb_i64(b, 4, t->granted_ttl);
    for (size_t i = 0; i < t->nkeys; i++)
        pb_bytes_rep(b, 5, t->keys[i].key, t->keys[i].key_len);
}

void pb_enc_lease_leases(pb_buf *b, const v3_header *h, const int64_t *ids, size_t n)
{
    enc_header(b, h);
    for (size_t i = 0; i < n; i++) {
        size_t m = pb_begin(b, 2);
        pb_i64(b, 1, ids[i]);
        pb_end(b, m);
    }
}

void pb_enc_watch(pb_buf *b, const v3_header *h, const v3_watch_resp *r)
{
    enc_header(b, h);
    pb_i64(b, 2, r->watch_id);
    pb_bool(b, 3, r->created);
    pb_bool(b, 4, r->canceled);
    pb_i64(b, 5, r->compact_revision);
    pb_str(b, 6, r->cancel_reason);
    pb_bool(b, 7, r->fragment);
    for (size_t i = 0; i < r->nevents; i++) {
        const mvcc_event *e = &r->events[i];
        size_t m = pb_begin(b, 11);
        pb_u64(b, 1, e->type == MVCC_EVENT_DELETE ? 1 : 0);
        enc_kv(b, 2, &e->kv);
        if (e->has_prev)
            enc_kv(b, 3, &e->prev_kv);
        pb_end(b, m);
    }
}

static void enc_member(pb_buf *b, uint32_t field, const v3_member *mem)
{
    size_t m = pb_begin(b, field);
    pb_u64(b, 1, mem->id);
    pb_str(b, 2, mem->name);
    for (size_t k = 0; k < mem->npeer; k++)
        pb_bytes_rep(b, 3, mem->peer_urls[k], strlen(mem->peer_urls[k]));
    for (size_t k = 0; k < mem->nclient; k++)
        pb_bytes_rep(b, 4, mem->client_urls[k], strlen(mem->client_urls[k]));
    pb_bool(b, 5, mem->is_learner);
    pb_end(b, m);
}

void pb_enc_member_list(pb_buf *b, const v3_header *h, const v3_member *mem, size_t n)
{
    enc_header(b, h);
    for (size_t i = 0; i < n; i++)
        enc_member(b, 2, &mem[i]);
}

void pb_enc_member_add(pb_buf *b, const v3_header *h, const v3_member *mem, size_t n,
                       uint64_t added)
{
    enc_header(b, h);
    for (size_t i = 0; i < n; i++)
        if (mem[i].id == added)
            enc_member(b, 2, &mem[i]);
    for (size_t i = 0; i < n; i++)
        enc_member(b, 3, &mem[i]);
}

void pb_enc_status(pb_buf *b, const v3_header *h, const v3_status *st)
{
    enc_header(b, h);
    pb_str(b, 2, st->version);
    pb_i64(b, 3, st->db_size);
    pb_u64(b, 4, st->leader);
    pb_u64(b, 5, st->raft_index);
    pb_u64(b, 6, st->raft_term);
    pb_u64(b, 7, st->raft_applied_index);
    for (size_t i = 0; i < st->nerrors; i++)
        pb_bytes_rep(b, 8, st->errors[i], strlen(st->errors[i]));
    pb_i64(b, 9, st->db_size_in_use);
    pb_bool(b, 10, st->is_learner);
}
