/* MVCC key store: index (AVL over keys), per-key version lists, write transactions,
 * ranges, txn compare/branch logic, compaction, history for watches. */
#include "dcs/mvcc.h"

#include <stdlib.h>
#include <string.h>

#include "dcs/mvcc_internal.h"

void mvcc_limits_default(mvcc_limits *lim)
{
    lim->quota_bytes = (size_t)256 << 20;
    lim->max_txn_ops = 128;
    lim->max_value_bytes = (size_t)1536 * 1024;
}

mvcc *mvcc_new(const mvcc_limits *lim)
{
    mvcc *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    if (lim)
        s->lim = *lim;
    else
        mvcc_limits_default(&s->lim);
    mvcc_tree_init(&s->index);
    s->rev = 1; /* etcd starts at revision 1 with an empty store */
    s->lessor = lessor_new(s);
    if (!s->lessor) {
        free(s);
        return NULL;
    }
    return s;
}

static void free_key(mvcc_key *k)
{
    for (size_t i = 0; i < k->nvers; i++)
        free(k->vers[i].value);
    free(k->vers);
    free(k->key);
    free(k);
}

void mvcc_free(mvcc *s)
{
    if (!s)
        return;
    mvcc_key *k;
    while ((k = mvcc_seek_key(s, (const uint8_t *)"", 0, 0))) {
        mvcc_tree_remove(&s->index, k->key, k->key_len);
        free_key(k);
    }
    lessor_free(s->lessor);
    free(s->evs);
    free(s);
}

lessor *mvcc_lessor(mvcc *s)
{
    return s->lessor;
}

void mvcc_set_watch_hook(mvcc *s, mvcc_watch_hook hook, void *arg)
{
    s->hook = hook;
    s->hook_arg = arg;
}

int64_t mvcc_current_revision(const mvcc *s)
{
    return s->rev;
}

int64_t mvcc_compact_revision(const mvcc *s)
{
    return s->compact_rev;
}

size_t mvcc_bytes(const mvcc *s)
{
    return s->bytes;
}

size_t mvcc_key_count(const mvcc *s)
{
    return s->index.count;
}

mvcc_key *mvcc_seek_key(mvcc *s, const uint8_t *key, size_t n, int strict)
{
    return mvcc_tree_seek(&s->index, key, n, strict, NULL, NULL);
}

size_t mvcc_prefix_end(const uint8_t *prefix, size_t n, uint8_t *out)
{
    size_t len = n;
    while (len > 0 && prefix[len - 1] == 0xff)
        len--;
    if (len == 0) {
        out[0] = 0;
        return 1;
    }
    memcpy(out, prefix, len);
    out[len - 1]++;
    return len;
}

/* ---- version lookup ---- */

/* Index of the last version with main <= rev, or -1. */
static long ver_at(const mvcc_key *k, int64_t rev)
{
    long lo = 0, hi = (long)k->nvers - 1, found = -1;
    while (lo <= hi) {
        long mid = lo + (hi - lo) / 2;
        if (k->vers[mid].main <= rev) {
            found = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return found;
}

static const mvcc_ver *live_at(const mvcc_key *k, int64_t rev)
{
    long i = ver_at(k, rev);
    if (i < 0 || k->vers[i].tomb)
        return NULL;
    return &k->vers[i];
}

static const mvcc_ver *live(const mvcc_key *k)
{
    if (k->nvers == 0 || k->vers[k->nvers - 1].tomb)
        return NULL;
    return &k->vers[k->nvers - 1];
}

static mvcc_kv kv_of(const mvcc_key *k, const mvcc_ver *v)
{
    mvcc_kv kv = {k->key,        k->key_len, v->value,   v->value_len,
                  v->create_rev, v->main,    v->version, v->lease};
    return kv;
}

/* Iteration over [key, end): end rules of etcd (empty = single key, "\0" = to the end). */
typedef struct range_it {
    mvcc *s;
    const uint8_t *key, *end;
    size_t key_len, end_len;
    mvcc_key *cur;
    int single, open;
} range_it;

static void it_init(range_it *it, mvcc *s, const uint8_t *key, size_t kn, const uint8_t *end,
                    size_t en)
{
    it->s = s;
    it->key = key;
    it->key_len = kn;
    it->end = end;
    it->end_len = en;
    it->single = en == 0;
    it->open = en == 1 && end[0] == 0;
    if (it->single)
        it->cur = mvcc_tree_find(&s->index, key, kn);
    else
        it->cur = mvcc_seek_key(s, key, kn, 0);
    if (it->cur && !it->single && !it->open &&
        mvcc_key_cmp(it->cur->key, it->cur->key_len, end, en) >= 0)
        it->cur = NULL;
}

static void it_next(range_it *it)
{
    if (!it->cur || it->single) {
        it->cur = NULL;
        return;
    }
    it->cur = mvcc_seek_key(it->s, it->cur->key, it->cur->key_len, 1);
    if (it->cur && !it->open &&
        mvcc_key_cmp(it->cur->key, it->cur->key_len, it->end, it->end_len) >= 0)
        it->cur = NULL;
}

/* ---- range ---- */

/* Revision visible to reads now (inside a write txn: including its changes). */
static int64_t visible_rev(const mvcc *s)
{
    return s->wsub > 0 ? s->wrev : s->rev;
}

static int sort_target_g;
static int sort_desc_g;

static int cmp_i64(int64_t a, int64_t b)
{
    return a < b ? -1 : a > b ? 1 : 0;
}

static int kv_sort_cmp(const void *pa, const void *pb)
{
    const mvcc_kv *a = pa, *b = pb;
    int c = 0;
    switch (sort_target_g) {
    case MVCC_TARGET_VERSION:
        c = cmp_i64(a->version, b->version);
        break;
    case MVCC_TARGET_CREATE:
        c = cmp_i64(a->create_revision, b->create_revision);
        break;
    case MVCC_TARGET_MOD:
        c = cmp_i64(a->mod_revision, b->mod_revision);
        break;
    case MVCC_TARGET_VALUE:
        c = mvcc_key_cmp(a->value, a->value_len, b->value, b->value_len);
        break;
    default:
        break;
    }
    if (sort_desc_g)
        c = -c;
    /* Ties (and target KEY) by key in the requested direction, so the result is total
     * and the same on every member. */
    if (c == 0) {
        c = mvcc_key_cmp(a->key, a->key_len, b->key, b->key_len);
        if (sort_desc_g)
            c = -c;
    }
    return c;
}

static bool kv_passes(const mvcc_range_req *r, const mvcc_kv *kv)
{
    if (r->min_mod_revision && kv->mod_revision < r->min_mod_revision)
        return false;
    if (r->max_mod_revision && kv->mod_revision > r->max_mod_revision)
        return false;
    if (r->min_create_revision && kv->create_revision < r->min_create_revision)
        return false;
    if (r->max_create_revision && kv->create_revision > r->max_create_revision)
        return false;
    return true;
}

int mvcc_range(mvcc *s, const mvcc_range_req *r, mvcc_arena *a, mvcc_op_resp *resp)
{
    int64_t cur = visible_rev(s);
    int64_t at = r->revision > 0 ? r->revision : cur;
    if (at > cur)
        return MVCC_ERR_FUTURE_REV;
    if (at < s->compact_rev)
        return MVCC_ERR_COMPACTED;
    memset(resp, 0, sizeof(*resp));
    resp->type = MVCC_OP_RANGE;
    resp->revision = cur;

    /* As etcd's applyRange: with sorting or filters everything is fetched, then
     * filtered, sorted and truncated; otherwise fetching stops at limit+1. count is the
     * number of keys in the range at that revision, before filters and limit. */
    bool fetch_all = r->sort_order != MVCC_SORT_NONE || r->min_mod_revision ||
                     r->max_mod_revision || r->min_create_revision || r->max_create_revision;
    size_t cap = 0, n = 0;
    mvcc_kv *kvs = NULL;
    int64_t count = 0;
    range_it it;
    for (it_init(&it, s, r->key, r->key_len, r->range_end, r->range_end_len); it.cur;
         it_next(&it)) {
        const mvcc_ver *v = live_at(it.cur, at);
        if (!v)
            continue;
        count++;
        if (r->count_only)
            continue;
        if (!fetch_all && r->limit > 0 && (int64_t)n > r->limit)
            continue;
        mvcc_kv kv = kv_of(it.cur, v);
        if (!kv_passes(r, &kv))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            mvcc_kv *nk = mvcc_arena_alloc(a, ncap * sizeof(*nk));
            if (!nk)
                return MVCC_ERR_NOMEM;
            if (n)
                memcpy(nk, kvs, n * sizeof(*nk));
            kvs = nk;
            cap = ncap;
        }
        kvs[n++] = kv;
    }
    int order = r->sort_order;
    if (r->sort_target != MVCC_TARGET_KEY && order == MVCC_SORT_NONE)
        order = MVCC_SORT_ASCEND; /* etcd: non-key target implies ascending */
    if (order != MVCC_SORT_NONE && n > 1) {
        sort_target_g = r->sort_target;
        sort_desc_g = order == MVCC_SORT_DESCEND;
        qsort(kvs, n, sizeof(*kvs), kv_sort_cmp);
    }
    if (r->limit > 0 && (int64_t)n > r->limit) {
        n = (size_t)r->limit;
        resp->u.range.more = true;
    }
    if (r->keys_only)
        for (size_t i = 0; i < n; i++) {
            kvs[i].value = NULL;
            kvs[i].value_len = 0;
        }
    resp->u.range.kvs = kvs;
    resp->u.range.nkvs = n;
    resp->u.range.count = count;
    return MVCC_OK;
}

/* ---- write transactions ---- */

void mvcc_txn_begin(mvcc *s)
{
    s->wrev = s->rev + 1;
    s->wsub = 0;
    s->nevs = 0;
    s->write_err = 0;
}

static void add_event(mvcc *s, const mvcc_event *ev)
{
    if (s->nevs == s->evcap) {
        size_t ncap = s->evcap ? s->evcap * 2 : 16;
        mvcc_event *ne = realloc(s->evs, ncap * sizeof(*ne));
        if (!ne) {
            s->write_err = MVCC_ERR_NOMEM;
            return;
        }
        s->evs = ne;
        s->evcap = ncap;
    }
    s->evs[s->nevs++] = *ev;
}

static mvcc_ver *push_ver(mvcc *s, mvcc_key *k)
{
    if (k->nvers == k->cap) {
        size_t ncap = k->cap ? k->cap * 2 : 2;
        mvcc_ver *nv = realloc(k->vers, ncap * sizeof(*nv));
        if (!nv) {
            s->write_err = MVCC_ERR_NOMEM;
            return NULL;
        }
        k->vers = nv;
        k->cap = ncap;
    }
    mvcc_ver *v = &k->vers[k->nvers++];
    memset(v, 0, sizeof(*v));
    s->bytes += MVCC_VER_OVERHEAD;
    return v;
}

static mvcc_key *get_or_create_key(mvcc *s, const uint8_t *key, size_t n)
{
    mvcc_key *k = mvcc_tree_find(&s->index, key, n);
    if (k)
        return k;
    k = calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    k->key = malloc(n ? n : 1);
    if (!k->key) {
        free(k);
        return NULL;
    }
    if (n)
        memcpy(k->key, key, n);
    k->key_len = n;
    if (mvcc_tree_insert(&s->index, k->key, n, k) != 0) {
        free(k->key);
        free(k);
        return NULL;
    }
    s->bytes += MVCC_KEY_OVERHEAD + n;
    return k;
}

void mvcc_txn_delete_key(mvcc *s, mvcc_key *k)
{
    const mvcc_ver *cur = live(k);
    if (!cur)
        return;
    int64_t lease = cur->lease;
    size_t idx = k->nvers - 1;
    mvcc_ver *v = push_ver(s, k);
    if (!v)
        return;
    const mvcc_ver *prev = &k->vers[idx]; /* after a possible realloc */
    v->main = s->wrev;
    v->sub = s->wsub++;
    v->tomb = true;
    if (lease)
        lessor_detach(s->lessor, lease, k);
    mvcc_event ev = {0};
    ev.type = MVCC_EVENT_DELETE;
    ev.kv.key = k->key;
    ev.kv.key_len = k->key_len;
    ev.kv.mod_revision = s->wrev;
    ev.has_prev = true;
    ev.prev_kv = kv_of(k, prev);
    add_event(s, &ev);
}

int mvcc_txn_end(mvcc *s)
{
    if (s->wsub > 0) {
        s->rev = s->wrev;
        if (s->hook && s->nevs)
            s->hook(s->hook_arg, s->rev, s->evs, s->nevs);
    }
    s->wsub = 0;
    s->nevs = 0;
    return s->write_err;
}

static void apply_put(mvcc *s, const mvcc_put_req *p, mvcc_op_resp *resp)
{
    memset(resp, 0, sizeof(*resp));
    resp->type = MVCC_OP_PUT;
    mvcc_key *k = get_or_create_key(s, p->key, p->key_len);
    if (!k) {
        s->write_err = MVCC_ERR_NOMEM;
        return;
    }
    const mvcc_ver *cur = live(k);
    mvcc_kv prevkv = {0};
    bool has_prev = cur != NULL;
    if (cur)
        prevkv = kv_of(k, cur);
    const uint8_t *val = p->value;
    size_t vlen = p->value_len;
    int64_t lease = p->lease;
    if (p->ignore_value && cur) {
        val = cur->value;
        vlen = cur->value_len;
    }
    if (p->ignore_lease && cur)
        lease = cur->lease;
    uint8_t *copy = NULL;
    if (vlen) {
        copy = malloc(vlen);
        if (!copy) {
            s->write_err = MVCC_ERR_NOMEM;
            return;
        }
        memcpy(copy, val, vlen);
    }
    int64_t old_lease = cur ? cur->lease : 0;
    int64_t create = cur ? cur->create_rev : s->wrev;
    int64_t version = cur ? cur->version + 1 : 1;
    mvcc_ver *v = push_ver(s, k);
    if (!v) {
        free(copy);
        return;
    }
    v->main = s->wrev;
    v->sub = s->wsub++;
    v->create_rev = create;
    v->version = version;
    v->lease = lease;
    v->value = copy;
    v->value_len = vlen;
    s->bytes += vlen;
    if (old_lease != lease) {
        if (old_lease)
            lessor_detach(s->lessor, old_lease, k);
        if (lease && lessor_attach(s->lessor, lease, k) != 0)
            s->write_err = MVCC_ERR_NOMEM;
    }
    mvcc_event ev = {0};
    ev.type = MVCC_EVENT_PUT;
    ev.kv = kv_of(k, v);
    ev.has_prev = has_prev;
    ev.prev_kv = prevkv;
    add_event(s, &ev);
    resp->revision = s->wrev;
    if (p->prev_kv && has_prev) {
        resp->u.put.has_prev = true;
        resp->u.put.prev = prevkv;
    }
}

static void apply_delete(mvcc *s, const mvcc_delete_req *d, mvcc_arena *a, mvcc_op_resp *resp)
{
    memset(resp, 0, sizeof(*resp));
    resp->type = MVCC_OP_DELETE;
    size_t cap = 0;
    range_it it;
    /* Collect first: deleting while iterating is safe (keys stay in the index as
     * tombstones), but prev kvs must be the pre-delete versions. */
    for (it_init(&it, s, d->key, d->key_len, d->range_end, d->range_end_len); it.cur;
         it_next(&it)) {
        const mvcc_ver *v = live(it.cur);
        if (!v)
            continue;
        if (d->prev_kv) {
            if (resp->u.del.nprev == cap) {
                size_t ncap = cap ? cap * 2 : 8;
                mvcc_kv *nk = mvcc_arena_alloc(a, ncap * sizeof(*nk));
                if (!nk) {
                    s->write_err = MVCC_ERR_NOMEM;
                    return;
                }
                if (resp->u.del.nprev)
                    memcpy(nk, resp->u.del.prev_kvs, resp->u.del.nprev * sizeof(*nk));
                resp->u.del.prev_kvs = nk;
                cap = ncap;
            }
            resp->u.del.prev_kvs[resp->u.del.nprev++] = kv_of(it.cur, v);
        }
        mvcc_txn_delete_key(s, it.cur);
        resp->u.del.deleted++;
    }
    resp->revision = visible_rev(s);
}

/* ---- txn: compares, validation, apply ---- */

static bool compare_kv(const mvcc_compare *c, const mvcc_kv *kv)
{
    int r;
    switch (c->target) {
    case MVCC_TARGET_VALUE:
        r = mvcc_key_cmp(kv->value, kv->value_len, c->value, c->value_len);
        break;
    case MVCC_TARGET_VERSION:
        r = cmp_i64(kv->version, c->number);
        break;
    case MVCC_TARGET_CREATE:
        r = cmp_i64(kv->create_revision, c->number);
        break;
    case MVCC_TARGET_MOD:
        r = cmp_i64(kv->mod_revision, c->number);
        break;
    case MVCC_TARGET_LEASE:
        r = cmp_i64(kv->lease, c->number);
        break;
    default:
        return false;
    }
    switch (c->result) {
    case MVCC_CMP_EQUAL:
        return r == 0;
    case MVCC_CMP_GREATER:
        return r > 0;
    case MVCC_CMP_LESS:
        return r < 0;
    case MVCC_CMP_NOT_EQUAL:
        return r != 0;
    default:
        return false;
    }
}

/* etcd applyCompare: every key in the range must satisfy the compare; no key at all
 * compares a zero KeyValue, except that a VALUE compare on a missing key is false. */
static bool eval_compare(mvcc *s, const mvcc_compare *c)
{
    range_it it;
    bool any = false;
    for (it_init(&it, s, c->key, c->key_len, c->range_end, c->range_end_len); it.cur;
         it_next(&it)) {
        const mvcc_ver *v = live(it.cur);
        if (!v)
            continue;
        any = true;
        mvcc_kv kv = kv_of(it.cur, v);
        if (!compare_kv(c, &kv))
            return false;
    }
    if (!any) {
        if (c->target == MVCC_TARGET_VALUE)
            return false;
        mvcc_kv zero = {0};
        return compare_kv(c, &zero);
    }
    return true;
}

/* The branch each (nested) txn takes, decided on the state before the transaction, as
 * etcd's compareToPath. path[i] for the i-th txn in depth-first order. */
typedef struct txn_path {
    bool *taken;
    size_t n, cap;
} txn_path;

static int path_build(mvcc *s, const mvcc_txn_req *t, txn_path *p, mvcc_arena *a, int depth)
{
    if (depth > 16)
        return MVCC_ERR_TOO_MANY_OPS;
    bool ok = true;
    for (size_t i = 0; i < t->ncompare && ok; i++)
        ok = eval_compare(s, &t->compare[i]);
    if (p->n == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 8;
        bool *nb = mvcc_arena_alloc(a, ncap);
        if (!nb)
            return MVCC_ERR_NOMEM;
        if (p->n)
            memcpy(nb, p->taken, p->n);
        p->taken = nb;
        p->cap = ncap;
    }
    p->taken[p->n++] = ok;
    const mvcc_op *ops = ok ? t->success : t->failure;
    size_t nops = ok ? t->nsuccess : t->nfailure;
    for (size_t i = 0; i < nops; i++)
        if (ops[i].type == MVCC_OP_TXN) {
            int e = path_build(s, &ops[i].u.txn, p, a, depth + 1);
            if (e)
                return e;
        }
    return MVCC_OK;
}

typedef struct check_ctx {
    const mvcc_put_req **puts;
    size_t nputs, cap;
    const mvcc_delete_req **dels;
    size_t ndels, dcap;
    size_t put_bytes;
    size_t pi; /* path index while walking */
} check_ctx;

static bool in_range(const uint8_t *k, size_t kn, const uint8_t *key, size_t keyn,
                     const uint8_t *end, size_t endn)
{
    if (endn == 0)
        return mvcc_key_cmp(k, kn, key, keyn) == 0;
    if (mvcc_key_cmp(k, kn, key, keyn) < 0)
        return false;
    if (endn == 1 && end[0] == 0)
        return true;
    return mvcc_key_cmp(k, kn, end, endn) < 0;
}

static int check_ops(mvcc *s, const mvcc_op *ops, size_t n, const txn_path *p, check_ctx *c,
                     mvcc_arena *a);

static int check_op(mvcc *s, const mvcc_op *op, const txn_path *p, check_ctx *c, mvcc_arena *a)
{
    switch (op->type) {
    case MVCC_OP_RANGE: {
        const mvcc_range_req *r = &op->u.range;
        if (r->key_len == 0)
            return MVCC_ERR_EMPTY_KEY;
        if (r->revision > s->rev)
            return MVCC_ERR_FUTURE_REV;
        if (r->revision > 0 && r->revision < s->compact_rev)
            return MVCC_ERR_COMPACTED;
        return MVCC_OK;
    }
    case MVCC_OP_PUT: {
        const mvcc_put_req *pr = &op->u.put;
        if (pr->key_len == 0)
            return MVCC_ERR_EMPTY_KEY;
        if (pr->ignore_value && pr->value_len)
            return MVCC_ERR_VALUE_PROVIDED;
        if (pr->ignore_lease && pr->lease)
            return MVCC_ERR_LEASE_PROVIDED;
        if (pr->key_len + pr->value_len > s->lim.max_value_bytes)
            return MVCC_ERR_REQUEST_TOO_LARGE;
        if (pr->ignore_value || pr->ignore_lease) {
            mvcc_key *k = mvcc_tree_find(&s->index, pr->key, pr->key_len);
            if (!k || !live(k))
                return MVCC_ERR_KEY_NOT_FOUND;
        }
        if (pr->lease && !pr->ignore_lease && !lessor_exists(s->lessor, pr->lease))
            return MVCC_ERR_LEASE_NOT_FOUND;
        for (size_t i = 0; i < c->nputs; i++)
            if (mvcc_key_cmp(c->puts[i]->key, c->puts[i]->key_len, pr->key, pr->key_len) == 0)
                return MVCC_ERR_DUPLICATE_KEY;
        for (size_t i = 0; i < c->ndels; i++)
            if (in_range(pr->key, pr->key_len, c->dels[i]->key, c->dels[i]->key_len,
                         c->dels[i]->range_end, c->dels[i]->range_end_len))
                return MVCC_ERR_DUPLICATE_KEY;
        if (c->nputs == c->cap) {
            size_t ncap = c->cap ? c->cap * 2 : 8;
            const mvcc_put_req **np = mvcc_arena_alloc(a, ncap * sizeof(const mvcc_put_req *));
            if (!np)
                return MVCC_ERR_NOMEM;
            if (c->nputs)
                memcpy(np, c->puts, c->nputs * sizeof(const mvcc_put_req *));
            c->puts = np;
            c->cap = ncap;
        }
        c->puts[c->nputs++] = pr;
        c->put_bytes += pr->key_len + pr->value_len + MVCC_VER_OVERHEAD + MVCC_KEY_OVERHEAD;
        return MVCC_OK;
    }
    case MVCC_OP_DELETE: {
        const mvcc_delete_req *d = &op->u.del;
        if (d->key_len == 0)
            return MVCC_ERR_EMPTY_KEY;
        for (size_t i = 0; i < c->nputs; i++)
            if (in_range(c->puts[i]->key, c->puts[i]->key_len, d->key, d->key_len, d->range_end,
                         d->range_end_len))
                return MVCC_ERR_DUPLICATE_KEY;
        if (c->ndels == c->dcap) {
            size_t ncap = c->dcap ? c->dcap * 2 : 8;
            const mvcc_delete_req **nd =
                mvcc_arena_alloc(a, ncap * sizeof(const mvcc_delete_req *));
            if (!nd)
                return MVCC_ERR_NOMEM;
            if (c->ndels)
                memcpy(nd, c->dels, c->ndels * sizeof(const mvcc_delete_req *));
            c->dels = nd;
            c->dcap = ncap;
        }
        c->dels[c->ndels++] = d;
        return MVCC_OK;
    }
    case MVCC_OP_TXN: {
        const mvcc_txn_req *t = &op->u.txn;
        if (t->ncompare > s->lim.max_txn_ops || t->nsuccess > s->lim.max_txn_ops ||
            t->nfailure > s->lim.max_txn_ops)
            return MVCC_ERR_TOO_MANY_OPS;
        bool ok = p->taken[c->pi++];
        return check_ops(s, ok ? t->success : t->failure, ok ? t->nsuccess : t->nfailure, p, c, a);
    }
    default:
        return MVCC_ERR_BAD_COMMAND;
    }
}

static int check_ops(mvcc *s, const mvcc_op *ops, size_t n, const txn_path *p, check_ctx *c,
                     mvcc_arena *a)
{
    for (size_t i = 0; i < n; i++) {
        int e = check_op(s, &ops[i], p, c, a);
        if (e)
            return e;
    }
    return MVCC_OK;
}

static void apply_ops(mvcc *s, const mvcc_op *ops, size_t n, const txn_path *p, size_t *pi,
                      mvcc_arena *a, mvcc_op_resp *out);

static void apply_op(mvcc *s, const mvcc_op *op, const txn_path *p, size_t *pi, mvcc_arena *a,
                     mvcc_op_resp *resp)
{
    switch (op->type) {
    case MVCC_OP_RANGE:
        if (mvcc_range(s, &op->u.range, a, resp) != MVCC_OK)
            s->write_err = MVCC_ERR_NOMEM; /* revision errors were excluded by check */
        break;
    case MVCC_OP_PUT:
        apply_put(s, &op->u.put, resp);
        break;
    case MVCC_OP_DELETE:
        apply_delete(s, &op->u.del, a, resp);
        break;
    case MVCC_OP_TXN: {
        const mvcc_txn_req *t = &op->u.txn;
        bool ok = p->taken[(*pi)++];
        memset(resp, 0, sizeof(*resp));
        resp->type = MVCC_OP_TXN;
        resp->u.txn.succeeded = ok;
        const mvcc_op *ops = ok ? t->success : t->failure;
        size_t nops = ok ? t->nsuccess : t->nfailure;
        if (nops) {
            resp->u.txn.responses = mvcc_arena_alloc(a, nops * sizeof(mvcc_op_resp));
            if (!resp->u.txn.responses) {
                s->write_err = MVCC_ERR_NOMEM;
                return;
            }
            resp->u.txn.n = nops;
            apply_ops(s, ops, nops, p, pi, a, resp->u.txn.responses);
        }
        resp->revision = visible_rev(s);
        break;
    }
    default:
        break;
    }
}

static void apply_ops(mvcc *s, const mvcc_op *ops, size_t n, const txn_path *p, size_t *pi,
                      mvcc_arena *a, mvcc_op_resp *out)
{
    for (size_t i = 0; i < n; i++)
        apply_op(s, &ops[i], p, pi, a, &out[i]);
}

int mvcc_write(mvcc *s, const mvcc_op *op, mvcc_arena *a, mvcc_op_resp *resp)
{
    txn_path path = {0};
    if (op->type == MVCC_OP_TXN) {
        int e = path_build(s, &op->u.txn, &path, a, 0);
        if (e)
            return e;
    }
    check_ctx c = {0};
    int e = check_op(s, op, &path, &c, a);
    if (e)
        return e;
    /* Quota: writes that would grow the store past it fail as etcd's NOSPACE; deletes and
     * compactions still work, so an operator can always recover. */
    if (c.put_bytes && s->bytes + c.put_bytes > s->lim.quota_bytes)
        return MVCC_ERR_NOSPACE;
    mvcc_txn_begin(s);
    size_t pi = 0;
    apply_op(s, op, &path, &pi, a, resp);
    /* etcd: a txn's nested headers carry the txn's own revision, and the outer header the
     * revision after the txn. */
    e = mvcc_txn_end(s);
    if (op->type == MVCC_OP_TXN)
        resp->revision = s->rev;
    return e;
}

/* ---- compaction ---- */

int mvcc_compact(mvcc *s, int64_t rev)
{
    if (rev <= s->compact_rev)
        return MVCC_ERR_COMPACTED;
    if (rev > s->rev)
        return MVCC_ERR_FUTURE_REV;
    s->compact_rev = rev;
    mvcc_key *k = mvcc_seek_key(s, (const uint8_t *)"", 0, 0);
    while (k) {
        mvcc_key *next = mvcc_seek_key(s, k->key, k->key_len, 1);
        long i = ver_at(k, rev);
        if (i >= 0) {
            size_t drop = (size_t)i + (k->vers[i].tomb ? 1 : 0);
            for (size_t j = 0; j < drop; j++) {
                free(k->vers[j].value);
                s->bytes -= k->vers[j].value_len + MVCC_VER_OVERHEAD;
            }
            memmove(k->vers, k->vers + drop, (k->nvers - drop) * sizeof(*k->vers));
            k->nvers -= drop;
            if (k->nvers == 0) {
                mvcc_tree_remove(&s->index, k->key, k->key_len);
                s->bytes -= MVCC_KEY_OVERHEAD + k->key_len;
                free_key(k);
            }
        }
        k = next;
    }
    return MVCC_OK;
}

int64_t mvcc_compact_suggest(const mvcc *s, int64_t retain)
{
    if (retain < 1)
        retain = 1;
    int64_t target = s->rev - retain;
    return target > s->compact_rev ? target : 0;
}

/* ---- history for watches ---- */

typedef struct hist_ev {
    mvcc_event ev;
    int64_t sub;
} hist_ev;

static int hist_cmp(const void *pa, const void *pb)
{
    const hist_ev *a = pa, *b = pb;
    int c = cmp_i64(a->ev.kv.mod_revision, b->ev.kv.mod_revision);
    return c ? c : cmp_i64(a->sub, b->sub);
}

int mvcc_history(mvcc *s, const uint8_t *key, size_t key_len, const uint8_t *range_end,
                 size_t range_end_len, int64_t from, int64_t to, size_t max, bool with_prev,
                 mvcc_arena *a, mvcc_event **events, size_t *n, int64_t *next_rev)
{
    *events = NULL;
    *n = 0;
    if (from < 1)
        from = 1;
    if (to > s->rev)
        to = s->rev;
    *next_rev = to + 1;
    /* as etcd's watchable store: the compact revision itself is still readable */
    if (from < s->compact_rev)
        return MVCC_ERR_COMPACTED;
    if (from > to)
        return MVCC_OK;
    hist_ev *hv = NULL;
    size_t hn = 0, hcap = 0;
    /* Only keys inside the range are visited, only their versions in [from, to]; the
     * caller bounds the work by the width of [from, to]. Revisions beyond a cut at max
     * events are fetched by the next call (from = *next_rev). */
    range_it it;
    for (it_init(&it, s, key, key_len, range_end, range_end_len); it.cur; it_next(&it)) {
        mvcc_key *k = it.cur;
        long i = ver_at(k, from - 1) + 1;
        for (; i < (long)k->nvers && k->vers[i].main <= to; i++) {
            if (hn == hcap) {
                size_t ncap = hcap ? hcap * 2 : 32;
                hist_ev *nh = realloc(hv, ncap * sizeof(*nh));
                if (!nh) {
                    free(hv);
                    return MVCC_ERR_NOMEM;
                }
                hv = nh;
                hcap = ncap;
            }
            const mvcc_ver *v = &k->vers[i];
            hist_ev *h = &hv[hn++];
            memset(h, 0, sizeof(*h));
            h->sub = v->sub;
            if (v->tomb) {
                h->ev.type = MVCC_EVENT_DELETE;
                h->ev.kv.key = k->key;
                h->ev.kv.key_len = k->key_len;
                h->ev.kv.mod_revision = v->main;
            } else {
                h->ev.type = MVCC_EVENT_PUT;
                h->ev.kv = kv_of(k, v);
            }
            if (with_prev && i > 0 && !k->vers[i - 1].tomb) {
                h->ev.has_prev = true;
                h->ev.prev_kv = kv_of(k, &k->vers[i - 1]);
            }
        }
    }
    if (hn == 0) {
        free(hv);
        return MVCC_OK;
    }
    qsort(hv, hn, sizeof(*hv), hist_cmp);
    size_t take = hn;
    if (max && hn > max) {
        take = max;
        /* never split a revision, unless one revision alone exceeds max */
        while (take > 0 && hv[take].ev.kv.mod_revision == hv[take - 1].ev.kv.mod_revision)
            take--;
        if (take == 0) {
            take = max;
            while (take < hn && hv[take].ev.kv.mod_revision == hv[take - 1].ev.kv.mod_revision)
                take++;
        }
        if (take < hn)
            *next_rev = hv[take].ev.kv.mod_revision;
    }
    mvcc_event *out = mvcc_arena_alloc(a, take * sizeof(*out));
    if (!out) {
        free(hv);
        return MVCC_ERR_NOMEM;
    }
    for (size_t i = 0; i < take; i++)
        out[i] = hv[i].ev;
    free(hv);
    *events = out;
    *n = take;
    return MVCC_OK;
}

int mvcc_restore_version(mvcc *s, const uint8_t *key, size_t key_len, const mvcc_ver *v)
{
    mvcc_key *k = get_or_create_key(s, key, key_len);
    if (!k)
        return MVCC_ERR_NOMEM;
    s->write_err = 0;
    mvcc_ver *nv = push_ver(s, k);
    if (!nv)
        return MVCC_ERR_NOMEM;
    *nv = *v;
    s->bytes += v->value_len;
    return MVCC_OK;
}
