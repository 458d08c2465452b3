/* Binary encoding of store commands (see store_cmd.h for the format rules). */
#include "dcs/store_cmd.h"

#include <string.h>

#include "dcs/store_cmd_buf.h"

#define MAX_DEPTH 16
#define MAX_OPS   1024 /* per list; the store's txn op limit is checked at apply */

enum { F_SERIALIZABLE = 1, F_KEYS_ONLY = 2, F_COUNT_ONLY = 4 };
enum { F_PREV_KV = 1, F_IGNORE_VALUE = 2, F_IGNORE_LEASE = 4 };
enum { F_DIR = 1, F_RECURSIVE = 2, F_SORTED = 4, F_REFRESH = 8, F_HAS_TTL = 16, F_HAS_PREV = 32 };

static int enc_ops(cmd_writer *w, const mvcc_op *ops, size_t n, int depth);

static int enc_op(cmd_writer *w, const mvcc_op *op, int depth)
{
    if (depth > MAX_DEPTH)
        return -1;
    cw_u8(w, (uint8_t)op->type);
    switch (op->type) {
    case MVCC_OP_RANGE: {
        const mvcc_range_req *r = &op->u.range;
        if (r->sort_order < 0 || r->sort_order > 2 || r->sort_target < 0 || r->sort_target > 4)
            return -1;
        cw_bytes(w, r->key, r->key_len);
        cw_bytes(w, r->range_end, r->range_end_len);
        cw_svar(w, r->limit);
        cw_svar(w, r->revision);
        cw_u8(w, (uint8_t)r->sort_order);
        cw_u8(w, (uint8_t)r->sort_target);
        cw_u8(w, (uint8_t)((r->serializable ? F_SERIALIZABLE : 0) |
                           (r->keys_only ? F_KEYS_ONLY : 0) | (r->count_only ? F_COUNT_ONLY : 0)));
        cw_svar(w, r->min_mod_revision);
        cw_svar(w, r->max_mod_revision);
        cw_svar(w, r->min_create_revision);
        cw_svar(w, r->max_create_revision);
        return 0;
    }
    case MVCC_OP_PUT: {
        const mvcc_put_req *p = &op->u.put;
        cw_bytes(w, p->key, p->key_len);
        cw_bytes(w, p->value, p->value_len);
        cw_svar(w, p->lease);
        cw_u8(w, (uint8_t)((p->prev_kv ? F_PREV_KV : 0) | (p->ignore_value ? F_IGNORE_VALUE : 0) |
                           (p->ignore_lease ? F_IGNORE_LEASE : 0)));
        return 0;
    }
    case MVCC_OP_DELETE: {
        const mvcc_delete_req *d = &op->u.del;
        cw_bytes(w, d->key, d->key_len);
        cw_bytes(w, d->range_end, d->range_end_len);
        cw_u8(w, d->prev_kv ? F_PREV_KV : 0);
        return 0;
    }
    case MVCC_OP_TXN: {
        const mvcc_txn_req *t = &op->u.txn;
        if (t->ncompare > MAX_OPS || t->nsuccess > MAX_OPS || t->nfailure > MAX_OPS)
            return -1;
        cw_uvar(w, t->ncompare);
        for (size_t i = 0; i < t->ncompare; i++) {
            const mvcc_compare *c = &t->compare[i];
            if (c->target < MVCC_TARGET_VERSION || c->target > MVCC_TARGET_LEASE || c->result < 0 ||
                c->result > 3)
                return -1;
            cw_u8(w, (uint8_t)c->target);
            cw_u8(w, (uint8_t)c->result);
            cw_bytes(w, c->key, c->key_len);
            cw_bytes(w, c->range_end, c->range_end_len);
            cw_bytes(w, c->value, c->value_len);
            cw_svar(w, c->number);
        }
        if (enc_ops(w, t->success, t->nsuccess, depth + 1) ||
            enc_ops(w, t->failure, t->nfailure, depth + 1))
            return -1;
        return 0;
    }
    default:
        return -1;
    }
}

static int enc_ops(cmd_writer *w, const mvcc_op *ops, size_t n, int depth)
{
    cw_uvar(w, n);
    for (size_t i = 0; i < n; i++)
        if (enc_op(w, &ops[i], depth))
            return -1;
    return 0;
}

int store_cmd_encode(const store_cmd *c, size_t max_bytes, uint8_t **out, size_t *len)
{
    cmd_writer w;
    cw_init(&w, max_bytes);
    cw_u8(&w, STORE_CMD_VERSION);
    cw_u8(&w, (uint8_t)c->type);
    int bad = 0;
    switch (c->type) {
    case STORE_CMD_PUT:
        bad = c->op.type != MVCC_OP_PUT || enc_op(&w, &c->op, 0);
        break;
    case STORE_CMD_DELETE:
        bad = c->op.type != MVCC_OP_DELETE || enc_op(&w, &c->op, 0);
        break;
    case STORE_CMD_TXN:
        bad = c->op.type != MVCC_OP_TXN || enc_op(&w, &c->op, 0);
        break;
    case STORE_CMD_COMPACT:
        cw_svar(&w, c->revision);
        break;
    case STORE_CMD_LEASE_GRANT:
    case STORE_CMD_LEASE_CHECKPOINT:
        cw_svar(&w, c->lease_id);
        cw_svar(&w, c->ttl);
        break;
    case STORE_CMD_LEASE_REVOKE:
    case STORE_CMD_LEASE_EXPIRE:
        cw_svar(&w, c->lease_id);
        break;
    case STORE_CMD_MEMBER:
        if (c->member_op < STORE_MEMBER_ADD || c->member_op > STORE_MEMBER_UPDATE ||
            c->member_id == 0 || c->peer_url_len > STORE_MAX_PEER_URL ||
            (c->peer_url_len && memchr(c->peer_url, 0, c->peer_url_len))) {
            bad = 1;
            break;
        }
        cw_u8(&w, (uint8_t)c->member_op);
        cw_uvar(&w, c->member_id);
        cw_bytes(&w, c->peer_url, c->peer_url_len);
        break;
    case STORE_CMD_V2: {
        const v2_request *v = &c->v2;
        if (v->method < V2_PUT || v->method > V2_EXPIRE) {
            bad = 1;
            break;
        }
        cw_u8(&w, (uint8_t)v->method);
        cw_bytes(&w, v->key, v->key_len);
        cw_bytes(&w, v->value, v->value_len);
        cw_bytes(&w, v->prev_value, v->prev_value_len);
        cw_uvar(&w, v->prev_index);
        cw_svar(&w, v->prev_exist);
        cw_svar(&w, v->ttl);
        cw_u8(&w, (uint8_t)((v->dir ? F_DIR : 0) | (v->recursive ? F_RECURSIVE : 0) |
                            (v->sorted ? F_SORTED : 0) | (v->refresh ? F_REFRESH : 0) |
                            (v->has_ttl ? F_HAS_TTL : 0) | (v->has_prev_value ? F_HAS_PREV : 0)));
        cw_svar(&w, v->time_ms);
        break;
    }
    default:
        bad = 1;
    }
    if (bad || w.err) {
        cw_free(&w);
        return -1;
    }
    *out = w.p;
    *len = w.len;
    return 0;
}

static int dec_ops(cmd_reader *r, mvcc_arena *a, mvcc_op **ops, size_t *n, int depth);

static int dec_op(cmd_reader *r, mvcc_arena *a, mvcc_op *op, int depth)
{
    if (depth > MAX_DEPTH)
        return -1;
    op->type = cr_u8(r);
    switch (op->type) {
    case MVCC_OP_RANGE: {
        mvcc_range_req *q = &op->u.range;
        cr_bytes(r, &q->key, &q->key_len);
        cr_bytes(r, &q->range_end, &q->range_end_len);
        q->limit = cr_svar(r);
        q->revision = cr_svar(r);
        q->sort_order = cr_u8(r);
        q->sort_target = cr_u8(r);
        uint8_t f = cr_u8(r);
        q->serializable = f & F_SERIALIZABLE;
        q->keys_only = f & F_KEYS_ONLY;
        q->count_only = f & F_COUNT_ONLY;
        q->min_mod_revision = cr_svar(r);
        q->max_mod_revision = cr_svar(r);
        q->min_create_revision = cr_svar(r);
        q->max_create_revision = cr_svar(r);
        if (q->sort_order > 2 || q->sort_target > 4 || (f & ~7))
            return -1;
        return r->err ? -1 : 0;
    }
    case MVCC_OP_PUT: {
        mvcc_put_req *p = &op->u.put;
        cr_bytes(r, &p->key, &p->key_len);
        cr_bytes(r, &p->value, &p->value_len);
        p->lease = cr_svar(r);
        uint8_t f = cr_u8(r);
        p->prev_kv = f & F_PREV_KV;
        p->ignore_value = f & F_IGNORE_VALUE;
        p->ignore_lease = f & F_IGNORE_LEASE;
        return r->err || (f & ~7) ? -1 : 0;
    }
    case MVCC_OP_DELETE: {
        mvcc_delete_req *d = &op->u.del;
        cr_bytes(r, &d->key, &d->key_len);
        cr_bytes(r, &d->range_end, &d->range_end_len);
        uint8_t f = cr_u8(r);
        d->prev_kv = f & F_PREV_KV;
        return r->err || (f & ~1) ? -1 : 0;
    }
    case MVCC_OP_TXN: {
        mvcc_txn_req *t = &op->u.txn;
        uint64_t nc = cr_uvar(r);
        /* every compare takes at least 6 bytes: bounds the allocation by the input */
        if (r->err || nc > MAX_OPS || nc > cr_left(r) / 6)
            return -1;
        t->ncompare = (size_t)nc;
        if (nc) {
            t->compare = mvcc_arena_alloc(a, nc * sizeof(*t->compare));
            if (!t->compare)
                return -1;
        }
        for (size_t i = 0; i < nc; i++) {
            mvcc_compare *c = &t->compare[i];
            c->target = cr_u8(r);
            c->result = cr_u8(r);
            cr_bytes(r, &c->key, &c->key_len);
            cr_bytes(r, &c->range_end, &c->range_end_len);
            cr_bytes(r, &c->value, &c->value_len);
            c->number = cr_svar(r);
            if (r->err || c->target < MVCC_TARGET_VERSION || c->target > MVCC_TARGET_LEASE ||
                c->result > 3)
                return -1;
        }
        if (dec_ops(r, a, &t->success, &t->nsuccess, depth + 1) ||
            dec_ops(r, a, &t->failure, &t->nfailure, depth + 1))
            return -1;
        return 0;
    }
    default:
        return -1;
    }
}

static int dec_ops(cmd_reader *r, mvcc_arena *a, mvcc_op **ops, size_t *n, int depth)
{
    uint64_t cnt = cr_uvar(r);
    *ops = NULL;
    *n = 0;
    /* an op is at least 2 bytes (type + one field) */
    if (r->err || cnt > MAX_OPS || cnt > cr_left(r) / 2)
        return -1;
    if (cnt == 0)
        return 0;
    *ops = mvcc_arena_alloc(a, cnt * sizeof(**ops));
    if (!*ops)
        return -1;
    *n = (size_t)cnt;
    for (size_t i = 0; i < cnt; i++)
        if (dec_op(r, a, &(*ops)[i], depth))
            return -1;
    return 0;
}

int store_cmd_decode(const uint8_t *buf, size_t len, mvcc_arena *a, store_cmd *c)
{
    memset(c, 0, sizeof(*c));
    cmd_reader r;
    cr_init(&r, buf, len);
    if (cr_u8(&r) != STORE_CMD_VERSION)
        return -1;
    c->type = cr_u8(&r);
    switch (c->type) {
    case STORE_CMD_PUT:
    case STORE_CMD_DELETE:
    case STORE_CMD_TXN: {
        static const int want[] = {0, MVCC_OP_PUT, MVCC_OP_DELETE, MVCC_OP_TXN};
        if (dec_op(&r, a, &c->op, 0) || c->op.type != want[c->type])
            return -1;
        break;
    }
    case STORE_CMD_COMPACT:
        c->revision = cr_svar(&r);
        break;
    case STORE_CMD_LEASE_GRANT:
    case STORE_CMD_LEASE_CHECKPOINT:
        c->lease_id = cr_svar(&r);
        c->ttl = cr_svar(&r);
        break;
    case STORE_CMD_LEASE_REVOKE:
    case STORE_CMD_LEASE_EXPIRE:
        c->lease_id = cr_svar(&r);
        break;
    case STORE_CMD_MEMBER: {
        const uint8_t *p;
        size_t n;
        c->member_op = cr_u8(&r);
        c->member_id = cr_uvar(&r);
        cr_bytes(&r, &p, &n);
        if (r.err || c->member_op < STORE_MEMBER_ADD || c->member_op > STORE_MEMBER_UPDATE ||
            c->member_id == 0 || n > STORE_MAX_PEER_URL || (n && memchr(p, 0, n)))
            return -1;
        c->peer_url = (const char *)p;
        c->peer_url_len = n;
        break;
    }
    case STORE_CMD_V2: {
        v2_request *v = &c->v2;
        const uint8_t *p;
        size_t n;
        v->method = cr_u8(&r);
        cr_bytes(&r, &p, &n);
        v->key = (const char *)p;
        v->key_len = n;
        cr_bytes(&r, &p, &n);
        v->value = (const char *)p;
        v->value_len = n;
        cr_bytes(&r, &p, &n);
        v->prev_value = (const char *)p;
        v->prev_value_len = n;
        v->prev_index = cr_uvar(&r);
        int64_t pe = cr_svar(&r);
        v->ttl = cr_svar(&r);
        uint8_t f = cr_u8(&r);
        v->time_ms = cr_svar(&r);
        /* times and TTLs must be sane so that time + ttl can never overflow */
        if (v->method < V2_PUT || v->method > V2_EXPIRE || pe < -1 || pe > 1 || (f & ~63) ||
            v->ttl < 0 || v->ttl > V2_MAX_TTL || v->time_ms < 0 || v->time_ms > V2_MAX_TIME_MS ||
            (v->key_len && memchr(v->key, 0, v->key_len))) /* v2 paths are C strings */
            return -1;
        v->prev_exist = (int)pe;
        v->dir = f & F_DIR;
        v->recursive = f & F_RECURSIVE;
        v->sorted = f & F_SORTED;
        v->refresh = f & F_REFRESH;
        v->has_ttl = f & F_HAS_TTL;
        v->has_prev_value = f & F_HAS_PREV;
        break;
    }
    default:
        return -1;
    }
    if (r.err || cr_left(&r) != 0)
        return -1;
    return 0;
}
