/* etcd v3 JSON request parsing (jansson), strict on types and encodings. */
#include "dcs/v3_request.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "dcs/mvcc_err.h"
#include "dcs/mvcc_tree.h"

#define V3_MAX_TXN_OPS   128
#define V3_MAX_TXN_DEPTH 16

typedef struct pctx {
    mvcc_arena *a;
    v3_error *err;
} pctx;

static int perr(pctx *c, int code, const char *f, ...) __attribute__((format(printf, 3, 4)));
static int perr(pctx *c, int code, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vsnprintf(c->err->message, sizeof(c->err->message), f, ap);
    va_end(ap);
    c->err->grpc_code = code;
    return -1;
}

static int store_err(pctx *c, int e)
{
    v3_error_from_store(e, c->err);
    return -1;
}

void v3_error_from_store(int e, v3_error *err)
{
    err->grpc_code = mvcc_err_grpc_code(e);
    snprintf(err->message, sizeof(err->message), "%s", mvcc_err_message(e));
}

static const char *go_type(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "bool";
    default:
        return "null";
    }
}

static int type_err(pctx *c, const json_t *v, const char *gotype, const char *field)
{
    return perr(c, 3, "json: cannot unmarshal %s into Go value of type %s (field \"%s\")",
                go_type(v), gotype, field);
}

/* Field by proto name, or its lowerCamelCase spelling; JSON null counts as absent. */
static json_t *field(const json_t *o, const char *proto, const char *camel, const char **used)
{
    json_t *v = json_object_get(o, proto);
    *used = proto;
    if (!v && camel) {
        v = json_object_get(o, camel);
        *used = camel;
    }
    if (v && json_typeof(v) == JSON_NULL)
        return NULL;
    return v;
}

static int get_bytes(pctx *c, const json_t *o, const char *proto, const char *camel,
                     const uint8_t **out, size_t *n)
{
    const char *name;
    json_t *v = field(o, proto, camel, &name);
    *out = NULL;
    *n = 0;
    if (!v)
        return 0;
    if (!json_is_string(v))
        return type_err(c, v, "[]uint8", name);
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    uint8_t *buf = mvcc_arena_alloc(c->a, len / 4 * 3 + 4);
    if (!buf)
        return store_err(c, MVCC_ERR_NOMEM);
    long got = base64_decode(s, len, buf);
    if (got < 0) {
        /* Go reports the offset of the first offending character */
        size_t i = 0;
        while (i < len && ((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
                           (s[i] >= '0' && s[i] <= '9') || s[i] == '+' || s[i] == '/'))
            i++;
        if (i == len)
            i = len - len % 4;
        return perr(c, 3, "illegal base64 data at input byte %zu (field \"%s\")", i, name);
    }
    *out = buf;
    *n = (size_t)got;
    return 0;
}

static int parse_i64_text(pctx *c, const char *s, const char *name, int64_t *out)
{
    if (!*s)
        return perr(c, 3, "unexpected end of JSON input (field \"%s\")", name);
    const char *p = s;
    if (*p == '-')
        p++;
    if (*p < '0' || *p > '9')
        return perr(c, 3, "invalid character '%c' looking for beginning of value (field \"%s\")",
                    *p ? *p : '?', name);
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end)
        return perr(c, 3, "invalid character '%c' after top-level value (field \"%s\")", *end,
                    name);
    if (errno == ERANGE)
        return perr(c, 3,
                    "json: cannot unmarshal number %s into Go value of type int64 (field "
                    "\"%s\")",
                    s, name);
    *out = v;
    return 0;
}

static int get_i64(pctx *c, const json_t *o, const char *proto, const char *camel, int64_t *out)
{
    const char *name;
    json_t *v = field(o, proto, camel, &name);
    *out = 0;
    if (!v)
        return 0;
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d == (double)(int64_t)d && d < 9.2e18 && d > -9.2e18) {
            *out = (int64_t)d;
            return 0;
        }
        return perr(c, 3,
                    "json: cannot unmarshal number %g into Go value of type int64 (field "
                    "\"%s\")",
                    d, name);
    }
    if (json_is_string(v))
        return parse_i64_text(c, json_string_value(v), name, out);
    return type_err(c, v, "int64", name);
}

static int get_bool(pctx *c, const json_t *o, const char *proto, const char *camel, bool *out)
{
    const char *name;
    json_t *v = field(o, proto, camel, &name);
    *out = false;
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return type_err(c, v, "bool", name);
    *out = json_is_true(v);
    return 0;
}

static int get_enum(pctx *c, const json_t *o, const char *proto, const char *camel,
                    const char *type, const char *const *names, int count, int *out)
{
    const char *name;
    json_t *v = field(o, proto, camel, &name);
    *out = 0;
    if (!v)
        return 0;
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0 || i >= count)
            return perr(c, 3, "unknown value %lld for enum etcdserverpb.%s (field \"%s\")",
                        (long long)i, type, name);
        *out = (int)i;
        return 0;
    }
    if (!json_is_string(v))
        return type_err(c, v, type, name);
    const char *s = json_string_value(v);
    for (int i = 0; i < count; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return 0;
        }
    return perr(c, 3, "unknown value \"%s\" for enum etcdserverpb.%s (field \"%s\")", s, type,
                name);
}

static const char *const sort_orders[] = {"NONE", "ASCEND", "DESCEND"};
static const char *const sort_targets[] = {"KEY", "VERSION", "CREATE", "MOD", "VALUE"};
static const char *const cmp_results[] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};
static const char *const cmp_targets[] = {"VERSION", "CREATE", "MOD", "VALUE", "LEASE"};
static const char *const filter_types[] = {"NOPUT", "NODELETE"};

static int want_object(pctx *c, const json_t *v, const char *type, const char *name)
{
    if (json_is_object(v))
        return 0;
    return perr(c, 3, "json: cannot unmarshal %s into Go value of type etcdserverpb.%s%s%s%s",
                go_type(v), type, name ? " (field \"" : "", name ? name : "", name ? "\")" : "");
}

static int parse_range(pctx *c, const json_t *o, mvcc_range_req *r)
{
    memset(r, 0, sizeof(*r));
    int so, st;
    if (get_bytes(c, o, "key", NULL, &r->key, &r->key_len) ||
        get_bytes(c, o, "range_end", "rangeEnd", &r->range_end, &r->range_end_len) ||
        get_i64(c, o, "limit", NULL, &r->limit) || get_i64(c, o, "revision", NULL, &r->revision) ||
        get_enum(c, o, "sort_order", "sortOrder", "RangeRequest_SortOrder", sort_orders, 3, &so) ||
        get_enum(c, o, "sort_target", "sortTarget", "RangeRequest_SortTarget", sort_targets, 5,
                 &st) ||
        get_bool(c, o, "serializable", NULL, &r->serializable) ||
        get_bool(c, o, "keys_only", "keysOnly", &r->keys_only) ||
        get_bool(c, o, "count_only", "countOnly", &r->count_only) ||
        get_i64(c, o, "min_mod_revision", "minModRevision", &r->min_mod_revision) ||
        get_i64(c, o, "max_mod_revision", "maxModRevision", &r->max_mod_revision) ||
        get_i64(c, o, "min_create_revision", "minCreateRevision", &r->min_create_revision) ||
        get_i64(c, o, "max_create_revision", "maxCreateRevision", &r->max_create_revision))
        return -1;
    r->sort_order = so;
    r->sort_target = st;
    if (r->key_len == 0)
        return store_err(c, MVCC_ERR_EMPTY_KEY);
    return 0;
}

static int parse_put(pctx *c, const json_t *o, mvcc_put_req *p)
{
    memset(p, 0, sizeof(*p));
    if (get_bytes(c, o, "key", NULL, &p->key, &p->key_len) ||
        get_bytes(c, o, "value", NULL, &p->value, &p->value_len) ||
        get_i64(c, o, "lease", NULL, &p->lease) ||
        get_bool(c, o, "prev_kv", "prevKv", &p->prev_kv) ||
        get_bool(c, o, "ignore_value", "ignoreValue", &p->ignore_value) ||
        get_bool(c, o, "ignore_lease", "ignoreLease", &p->ignore_lease))
        return -1;
    if (p->key_len == 0)
        return store_err(c, MVCC_ERR_EMPTY_KEY);
    if (p->ignore_value && p->value_len)
        return store_err(c, MVCC_ERR_VALUE_PROVIDED);
    if (p->ignore_lease && p->lease)
        return store_err(c, MVCC_ERR_LEASE_PROVIDED);
    return 0;
}

static int parse_delete(pctx *c, const json_t *o, mvcc_delete_req *d)
{
    memset(d, 0, sizeof(*d));
    if (get_bytes(c, o, "key", NULL, &d->key, &d->key_len) ||
        get_bytes(c, o, "range_end", "rangeEnd", &d->range_end, &d->range_end_len) ||
        get_bool(c, o, "prev_kv", "prevKv", &d->prev_kv))
        return -1;
    if (d->key_len == 0)
        return store_err(c, MVCC_ERR_EMPTY_KEY);
    return 0;
}

static int parse_txn(pctx *c, const json_t *o, mvcc_txn_req *t, int depth);

static int parse_compare(pctx *c, const json_t *o, mvcc_compare *cmp)
{
    memset(cmp, 0, sizeof(*cmp));
    int res, tgt;
    if (want_object(c, o, "Compare", "compare") ||
        get_enum(c, o, "result", NULL, "Compare_CompareResult", cmp_results, 4, &res) ||
        get_enum(c, o, "target", NULL, "Compare_CompareTarget", cmp_targets, 5, &tgt) ||
        get_bytes(c, o, "key", NULL, &cmp->key, &cmp->key_len) ||
        get_bytes(c, o, "range_end", "rangeEnd", &cmp->range_end, &cmp->range_end_len))
        return -1;
    cmp->result = res;
    cmp->target = tgt + 1; /* proto VERSION=0.. -> mvcc_sort_target VERSION=1.. */
    /* target_union is a oneof: the field matching the target counts, others read as 0 */
    switch (cmp->target) {
    case MVCC_TARGET_VERSION:
        return get_i64(c, o, "version", NULL, &cmp->number);
    case MVCC_TARGET_CREATE:
        return get_i64(c, o, "create_revision", "createRevision", &cmp->number);
    case MVCC_TARGET_MOD:
        return get_i64(c, o, "mod_revision", "modRevision", &cmp->number);
    case MVCC_TARGET_VALUE:
        return get_bytes(c, o, "value", NULL, &cmp->value, &cmp->value_len);
    case MVCC_TARGET_LEASE:
        return get_i64(c, o, "lease", NULL, &cmp->number);
    default:
        return 0;
    }
}

static int parse_op(pctx *c, const json_t *o, mvcc_op *op, int depth)
{
    const char *name;
    json_t *v;
    if (want_object(c, o, "RequestOp", NULL))
        return -1;
    memset(op, 0, sizeof(*op));
    if ((v = field(o, "request_range", "requestRange", &name))) {
        op->type = MVCC_OP_RANGE;
        return want_object(c, v, "RangeRequest", name) ? -1 : parse_range(c, v, &op->u.range);
    }
    if ((v = field(o, "request_put", "requestPut", &name))) {
        op->type = MVCC_OP_PUT;
        return want_object(c, v, "PutRequest", name) ? -1 : parse_put(c, v, &op->u.put);
    }
    if ((v = field(o, "request_delete_range", "requestDeleteRange", &name))) {
        op->type = MVCC_OP_DELETE;
        return want_object(c, v, "DeleteRangeRequest", name) ? -1 : parse_delete(c, v, &op->u.del);
    }
    if ((v = field(o, "request_txn", "requestTxn", &name))) {
        op->type = MVCC_OP_TXN;
        return want_object(c, v, "TxnRequest", name) ? -1 : parse_txn(c, v, &op->u.txn, depth + 1);
    }
    /* etcd: a RequestOp with no request set is rejected by the server */
    return perr(c, 3, "etcdserver: request op has no request set (field \"request\")");
}

static int parse_ops(pctx *c, const json_t *o, const char *proto, mvcc_op **ops, size_t *n,
                     int depth)
{
    const char *name;
    json_t *v = field(o, proto, NULL, &name);
    *ops = NULL;
    *n = 0;
    if (!v)
        return 0;
    if (!json_is_array(v))
        return type_err(c, v, "[]*etcdserverpb.RequestOp", name);
    size_t cnt = json_array_size(v);
    if (cnt > V3_MAX_TXN_OPS)
        return store_err(c, MVCC_ERR_TOO_MANY_OPS);
    if (!cnt)
        return 0;
    *ops = mvcc_arena_alloc(c->a, cnt * sizeof(**ops));
    if (!*ops)
        return store_err(c, MVCC_ERR_NOMEM);
    *n = cnt;
    for (size_t i = 0; i < cnt; i++)
        if (parse_op(c, json_array_get(v, i), &(*ops)[i], depth))
            return -1;
    return 0;
}

static int parse_txn(pctx *c, const json_t *o, mvcc_txn_req *t, int depth)
{
    memset(t, 0, sizeof(*t));
    if (depth > V3_MAX_TXN_DEPTH)
        return store_err(c, MVCC_ERR_TOO_MANY_OPS);
    const char *name;
    json_t *v = field(o, "compare", NULL, &name);
    if (v) {
        if (!json_is_array(v))
            return type_err(c, v, "[]*etcdserverpb.Compare", name);
        size_t cnt = json_array_size(v);
        if (cnt > V3_MAX_TXN_OPS)
            return store_err(c, MVCC_ERR_TOO_MANY_OPS);
        if (cnt) {
            t->compare = mvcc_arena_alloc(c->a, cnt * sizeof(*t->compare));
            if (!t->compare)
                return store_err(c, MVCC_ERR_NOMEM);
        }
        t->ncompare = cnt;
        for (size_t i = 0; i < cnt; i++)
            if (parse_compare(c, json_array_get(v, i), &t->compare[i]))
                return -1;
    }
    if (parse_ops(c, o, "success", &t->success, &t->nsuccess, depth) ||
        parse_ops(c, o, "failure", &t->failure, &t->nfailure, depth))
        return -1;
    return 0;
}

static int parse_watch(pctx *c, const json_t *o, v3_request *r)
{
    const char *name;
    json_t *v;
    if ((v = field(o, "create_request", "createRequest", &name))) {
        if (want_object(c, v, "WatchCreateRequest", name))
            return -1;
        v3_watch_create *w = &r->watch;
        r->watch_kind = V3_WATCH_CREATE;
        if (get_bytes(c, v, "key", NULL, &w->key, &w->key_len) ||
            get_bytes(c, v, "range_end", "rangeEnd", &w->range_end, &w->range_end_len) ||
            get_i64(c, v, "start_revision", "startRevision", &w->start_revision) ||
            get_bool(c, v, "progress_notify", "progressNotify", &w->progress_notify) ||
            get_bool(c, v, "prev_kv", "prevKv", &w->prev_kv) ||
            get_i64(c, v, "watch_id", "watchId", &w->watch_id) ||
            get_bool(c, v, "fragment", NULL, &w->fragment))
            return -1;
        json_t *f = field(v, "filters", NULL, &name);
        if (f) {
            if (!json_is_array(f))
                return type_err(c, f, "[]etcdserverpb.WatchCreateRequest_FilterType", name);
            for (size_t i = 0; i < json_array_size(f); i++) {
                json_t *wrap = json_pack("{sO}", "filters", json_array_get(f, i));
                int ft = 0;
                int rc = wrap ? get_enum(c, wrap, "filters", NULL, "WatchCreateRequest_FilterType",
                                         filter_types, 2, &ft)
                              : store_err(c, MVCC_ERR_NOMEM);
                json_decref(wrap);
                if (rc)
                    return -1;
                if (ft == 0)
                    w->filter_noput = true;
                else
                    w->filter_nodelete = true;
            }
        }
        return 0;
    }
    if ((v = field(o, "cancel_request", "cancelRequest", &name))) {
        if (want_object(c, v, "WatchCancelRequest", name))
            return -1;
        r->watch_kind = V3_WATCH_CANCEL;
        return get_i64(c, v, "watch_id", "watchId", &r->watch_id);
    }
    if ((v = field(o, "progress_request", "progressRequest", &name))) {
        if (want_object(c, v, "WatchProgressRequest", name))
            return -1;
        r->watch_kind = V3_WATCH_PROGRESS;
        return 0;
    }
    return perr(c, 3, "etcdserver: watch request has no request set (field \"request_union\")");
}

/* ---- etcd's checkIntervals: no key may be put twice or put and deleted by one txn ----
 * Run on the success and on the failure list of the top-level txn (as etcd's v3rpc layer
 * does, before anything is proposed). A nested txn's then/else branches exclude each
 * other, so the same key may be put in both. */
typedef struct key_set {
    const mvcc_put_req **puts;
    size_t nputs, pcap;
    const mvcc_delete_req **dels;
    size_t ndels, dcap;
} key_set;

static bool del_covers(const mvcc_delete_req *d, const uint8_t *k, size_t kn)
{
    int c = mvcc_key_cmp(k, kn, d->key, d->key_len);
    if (d->range_end_len == 0)
        return c == 0;
    if (c < 0)
        return false;
    if (d->range_end_len == 1 && d->range_end[0] == 0)
        return true;
    return mvcc_key_cmp(k, kn, d->range_end, d->range_end_len) < 0;
}

static bool set_has_put(const key_set *s, const uint8_t *k, size_t kn)
{
    for (size_t i = 0; i < s->nputs; i++)
        if (mvcc_key_cmp(s->puts[i]->key, s->puts[i]->key_len, k, kn) == 0)
            return true;
    return false;
}

static bool set_dels_cover(const key_set *s, const uint8_t *k, size_t kn)
{
    for (size_t i = 0; i < s->ndels; i++)
        if (del_covers(s->dels[i], k, kn))
            return true;
    return false;
}

static int set_add_put(pctx *c, key_set *s, const mvcc_put_req *p)
{
    if (s->nputs == s->pcap) {
        size_t ncap = s->pcap ? s->pcap * 2 : 8;
        const mvcc_put_req **np = mvcc_arena_alloc(c->a, ncap * sizeof(const mvcc_put_req *));
        if (!np)
            return store_err(c, MVCC_ERR_NOMEM);
        if (s->nputs)
            memcpy(np, s->puts, s->nputs * sizeof(const mvcc_put_req *));
        s->puts = np;
        s->pcap = ncap;
    }
    s->puts[s->nputs++] = p;
    return 0;
}

static int set_add_del(pctx *c, key_set *s, const mvcc_delete_req *d)
{
    if (s->ndels == s->dcap) {
        size_t ncap = s->dcap ? s->dcap * 2 : 8;
        const mvcc_delete_req **nd = mvcc_arena_alloc(c->a, ncap * sizeof(const mvcc_delete_req *));
        if (!nd)
            return store_err(c, MVCC_ERR_NOMEM);
        if (s->ndels)
            memcpy(nd, s->dels, s->ndels * sizeof(const mvcc_delete_req *));
        s->dels = nd;
        s->dcap = ncap;
    }
    s->dels[s->ndels++] = d;
    return 0;
}

static int check_intervals(pctx *c, const mvcc_op *ops, size_t n, key_set *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < n; i++) /* this level's deletes first */
        if (ops[i].type == MVCC_OP_DELETE && set_add_del(c, out, &ops[i].u.del))
            return -1;
    for (size_t i = 0; i < n; i++) { /* children's puts and deletes */
        if (ops[i].type != MVCC_OP_TXN)
            continue;
        key_set then_s, else_s;
        const mvcc_txn_req *t = &ops[i].u.txn;
        if (check_intervals(c, t->success, t->nsuccess, &then_s) ||
            check_intervals(c, t->failure, t->nfailure, &else_s))
            return -1;
        for (size_t j = 0; j < then_s.nputs; j++) {
            const mvcc_put_req *p = then_s.puts[j];
            if (set_has_put(out, p->key, p->key_len) || set_dels_cover(out, p->key, p->key_len))
                return store_err(c, MVCC_ERR_DUPLICATE_KEY);
            if (set_add_put(c, out, p))
                return -1;
        }
        for (size_t j = 0; j < else_s.nputs; j++) {
            const mvcc_put_req *p = else_s.puts[j];
            if ((set_has_put(out, p->key, p->key_len) &&
                 !set_has_put(&then_s, p->key, p->key_len)) ||
                set_dels_cover(out, p->key, p->key_len))
                return store_err(c, MVCC_ERR_DUPLICATE_KEY);
            if (set_add_put(c, out, p))
                return -1;
        }
        for (size_t j = 0; j < then_s.ndels; j++)
            if (set_add_del(c, out, then_s.dels[j]))
                return -1;
        for (size_t j = 0; j < else_s.ndels; j++)
            if (set_add_del(c, out, else_s.dels[j]))
                return -1;
    }
    for (size_t i = 0; i < n; i++) { /* this level's puts */
        if (ops[i].type != MVCC_OP_PUT)
            continue;
        const mvcc_put_req *p = &ops[i].u.put;
        if (set_has_put(out, p->key, p->key_len) || set_dels_cover(out, p->key, p->key_len))
            return store_err(c, MVCC_ERR_DUPLICATE_KEY);
        if (set_add_put(c, out, p))
            return -1;
    }
    return 0;
}

int v3_check_txn(const mvcc_txn_req *t, mvcc_arena *a, v3_error *err)
{
    pctx c = {a, err};
    key_set ks;
    return check_intervals(&c, t->success, t->nsuccess, &ks) ||
                   check_intervals(&c, t->failure, t->nfailure, &ks)
               ? -1
               : 0;
}

static const char *const type_names[V3_ENDPOINT_COUNT] = {
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

int v3_endpoint_of(const char *path)
{
    static const struct {
        const char *p;
        int ep;
    } map[] = {
        {"/kv/range", V3_KV_RANGE},
        {"/kv/put", V3_KV_PUT},
        {"/kv/deleterange", V3_KV_DELETE_RANGE},
        {"/kv/txn", V3_KV_TXN},
        {"/kv/compaction", V3_KV_COMPACTION},
        {"/lease/grant", V3_LEASE_GRANT},
        {"/lease/revoke", V3_LEASE_REVOKE},
        {"/kv/lease/revoke", V3_LEASE_REVOKE},
        {"/lease/keepalive", V3_LEASE_KEEPALIVE},
        {"/lease/timetolive", V3_LEASE_TIMETOLIVE},
        {"/kv/lease/timetolive", V3_LEASE_TIMETOLIVE},
        {"/lease/leases", V3_LEASE_LEASES},
        {"/kv/lease/leases", V3_LEASE_LEASES},
        {"/watch", V3_WATCH},
    };
    const char *rest = NULL;
    if (strncmp(path, "/v3beta/", 8) == 0)
        rest = path + 7;
    else if (strncmp(path, "/v3/", 4) == 0)
        rest = path + 3;
    if (!rest)
        return 0;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(rest, map[i].p) == 0)
            return map[i].ep;
    return 0;
}

/* ---- fast path for the common PutRequest ----
 * {"key":"<base64>","value":"<base64>"} with optional "lease" (plain integer) and
 * "prev_kv"/"prevKv" (true/false) is what Patroni and every benchmark send. jansson spent
 * ~21,000 instructions building a tree for it, 36 % of the leader's work per put. This
 * scanner accepts only that shape (no escapes, no null, no other or repeated field) and
 * returns 0 ("not mine") for anything else, which then takes the full jansson path, so
 * every error message and every unusual spelling stays exactly as before. */
bool v3_request_full_only;

typedef struct fscan {
    const char *p, *end;
} fscan;

static void fs_ws(fscan *f)
{
    while (f->p < f->end && (*f->p == ' ' || *f->p == '\n' || *f->p == '\r' || *f->p == '\t'))
        f->p++;
}

static bool fs_char(fscan *f, char ch)
{
    fs_ws(f);
    if (f->p == f->end || *f->p != ch)
        return false;
    f->p++;
    return true;
}

/* a string of printable ASCII without escapes; [*s, *s + *n) */
static bool fs_plain_string(fscan *f, const char **s, size_t *n)
{
    if (!fs_char(f, '"'))
        return false;
    const char *b = f->p;
    while (f->p < f->end && *f->p != '"') {
        if (*f->p == '\\' || (unsigned char)*f->p < 0x20 || (unsigned char)*f->p >= 0x7f)
            return false;
        f->p++;
    }
    if (f->p == f->end)
        return false;
    *s = b;
    *n = (size_t)(f->p - b);
    f->p++;
    return true;
}

static bool fs_is_end(const fscan *f)
{
    return f->p == f->end || *f->p == ' ' || *f->p == '\n' || *f->p == '\r' || *f->p == '\t' ||
           *f->p == ',' || *f->p == '}';
}

/* 0, or -?[1-9][0-9]{0,17}: no fraction, exponent or leading zero, always fits int64 */
static bool fs_int(fscan *f, int64_t *out)
{
    fs_ws(f);
    bool neg = f->p < f->end && *f->p == '-';
    if (neg)
        f->p++;
    if (f->p == f->end || *f->p < '0' || *f->p > '9')
        return false;
    if (*f->p == '0') {
        f->p++;
        *out = 0;
        return !neg && fs_is_end(f);
    }
    int64_t v = 0;
    int digits = 0;
    while (f->p < f->end && *f->p >= '0' && *f->p <= '9') {
        if (++digits > 18)
            return false;
        v = v * 10 + (*f->p++ - '0');
    }
    *out = neg ? -v : v;
    return fs_is_end(f);
}

static bool fs_bool(fscan *f, bool *out)
{
    fs_ws(f);
    size_t left = (size_t)(f->end - f->p);
    if (left >= 4 && memcmp(f->p, "true", 4) == 0) {
        f->p += 4;
        *out = true;
    } else if (left >= 5 && memcmp(f->p, "false", 5) == 0) {
        f->p += 5;
        *out = false;
    } else {
        return false;
    }
    return fs_is_end(f);
}

static bool fs_b64(pctx *c, const char *s, size_t n, const uint8_t **out, size_t *outlen)
{
    uint8_t *buf = mvcc_arena_alloc(c->a, n / 4 * 3 + 4);
    if (!buf)
        return false;
    long got = base64_decode(s, n, buf);
    if (got < 0)
        return false;
    *out = buf;
    *outlen = (size_t)got;
    return true;
}

/* 1 = p filled from the common shape; 0 = not that shape (take the full path) */
static int put_fast(pctx *c, const char *body, size_t len, mvcc_put_req *p)
{
    fscan f = {body, body + len};
    enum { F_KEY = 1, F_VALUE = 2, F_LEASE = 4, F_PREV = 8 };
    unsigned seen = 0;
    memset(p, 0, sizeof(*p));
    if (!fs_char(&f, '{'))
        return 0;
    if (fs_char(&f, '}'))
        return 0; /* no key: the full path names the error */
    for (;;) {
        const char *name, *sv;
        size_t nl, sl;
        if (!fs_plain_string(&f, &name, &nl) || !fs_char(&f, ':'))
            return 0;
        unsigned bit;
        if (nl == 3 && memcmp(name, "key", 3) == 0) {
            bit = F_KEY;
            if ((seen & bit) || !fs_plain_string(&f, &sv, &sl) ||
                !fs_b64(c, sv, sl, &p->key, &p->key_len))
                return 0;
        } else if (nl == 5 && memcmp(name, "value", 5) == 0) {
            bit = F_VALUE;
            if ((seen & bit) || !fs_plain_string(&f, &sv, &sl) ||
                !fs_b64(c, sv, sl, &p->value, &p->value_len))
                return 0;
        } else if (nl == 5 && memcmp(name, "lease", 5) == 0) {
            bit = F_LEASE;
            if ((seen & bit) || !fs_int(&f, &p->lease))
                return 0;
        } else if ((nl == 7 && memcmp(name, "prev_kv", 7) == 0) ||
                   (nl == 6 && memcmp(name, "prevKv", 6) == 0)) {
            bit = F_PREV;
            if ((seen & bit) || !fs_bool(&f, &p->prev_kv))
                return 0;
        } else {
            return 0;
        }
        seen |= bit;
        if (fs_char(&f, '}'))
            break;
        if (!fs_char(&f, ','))
            return 0;
    }
    /* what follows the object is never read (as with JSON_DISABLE_EOF_CHECK) */
    return p->key_len > 0 ? 1 : 0;
}

int v3_parse_request(int ep, const char *body, size_t len, mvcc_arena *a, v3_request *out,
                     v3_error *err)
{
    memset(out, 0, sizeof(*out));
    memset(err, 0, sizeof(*err));
    pctx c = {a, err};
    if (ep <= 0 || ep >= V3_ENDPOINT_COUNT)
        return perr(&c, 12, "Not Implemented");
    out->endpoint = ep;
    if (ep == V3_KV_PUT && !v3_request_full_only && put_fast(&c, body, len, &out->op.u.put)) {
        out->op.type = MVCC_OP_PUT;
        return 0;
    }
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t'))
        i++;
    json_t *o;
    if (i == len) {
        o = json_object(); /* grpc-gateway: an empty body (EOF) is an empty message */
    } else {
        json_error_t je;
        /* The gateway decodes one JSON value from the stream; trailing data after it is
         * never read (watch streams send several). */
        o = json_loadb(body, len, JSON_DISABLE_EOF_CHECK, &je);
        if (!o)
            return perr(&c, 3, "json: %s", je.text);
    }
    if (!o)
        return store_err(&c, MVCC_ERR_NOMEM);
    int rc = want_object(&c, o, type_names[ep], NULL);
    if (rc == 0) {
        switch (ep) {
        case V3_KV_RANGE:
            out->op.type = MVCC_OP_RANGE;
            rc = parse_range(&c, o, &out->op.u.range);
            break;
        case V3_KV_PUT:
            out->op.type = MVCC_OP_PUT;
            rc = parse_put(&c, o, &out->op.u.put);
            break;
        case V3_KV_DELETE_RANGE:
            out->op.type = MVCC_OP_DELETE;
            rc = parse_delete(&c, o, &out->op.u.del);
            break;
        case V3_KV_TXN: {
            out->op.type = MVCC_OP_TXN;
            rc = parse_txn(&c, o, &out->op.u.txn, 0);
            key_set ks;
            if (rc == 0)
                rc = check_intervals(&c, out->op.u.txn.success, out->op.u.txn.nsuccess, &ks) ||
                     check_intervals(&c, out->op.u.txn.failure, out->op.u.txn.nfailure, &ks);
            break;
        }
        case V3_KV_COMPACTION:
            rc = get_i64(&c, o, "revision", NULL, &out->revision) ||
                 get_bool(&c, o, "physical", NULL, &out->physical);
            break;
        case V3_LEASE_GRANT:
            rc = get_i64(&c, o, "TTL", NULL, &out->ttl) || get_i64(&c, o, "ID", NULL, &out->id);
            break;
        case V3_LEASE_REVOKE:
        case V3_LEASE_KEEPALIVE:
            rc = get_i64(&c, o, "ID", NULL, &out->id);
            break;
        case V3_LEASE_TIMETOLIVE:
            rc = get_i64(&c, o, "ID", NULL, &out->id) || get_bool(&c, o, "keys", NULL, &out->keys);
            break;
        case V3_LEASE_LEASES:
            break;
        case V3_WATCH:
            rc = parse_watch(&c, o, out);
            break;
        default:
            break;
        }
    }
    json_decref(o);
    return rc ? -1 : 0;
}
