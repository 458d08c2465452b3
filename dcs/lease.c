/* Lease table: an ordered map ID -> lease, each with the array of its keys (a key knows
 * its slot, so attach and detach are O(1)). */
#include "dcs/lease.h"

#include <stdlib.h>
#include <string.h>

#include "dcs/mvcc_internal.h"

typedef struct lease {
    int64_t id, ttl, remaining;
    int64_t deadline_ms; /* primary only */
    uint8_t idkey[8];    /* big-endian ID: the tree key (IDs >= 0 sort numerically) */
    mvcc_key **keys;
    size_t nkeys, cap;
} lease;

struct lessor {
    mvcc *s;
    mvcc_tree byid;
    uint64_t id_seq;
    int64_t min_ttl;
    bool primary;
};

static void id_key(int64_t id, uint8_t out[8])
{
    /* flip the sign bit so negative IDs (never generated, but accepted) sort first */
    uint64_t u = (uint64_t)id ^ 0x8000000000000000ULL;
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)u;
        u >>= 8;
    }
}

static lease *find(const lessor *l, int64_t id)
{
    uint8_t k[8];
    id_key(id, k);
    return mvcc_tree_find(&l->byid, k, 8);
}

lessor *lessor_new(mvcc *s)
{
    lessor *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->s = s;
    mvcc_tree_init(&l->byid);
    l->min_ttl = 2; /* etcd default: ceil(1.5 * election timeout 1 s) */
    return l;
}

void lessor_free(lessor *l)
{
    if (!l)
        return;
    lease_record r;
    const int64_t *after = NULL; /* NULL: from the first */
    int64_t after_id;
    uint8_t k[8];
    while (lessor_next(l, after, &r) == 0) {
        after_id = r.id;
        after = &after_id;
        id_key(r.id, k);
        lease *ls = mvcc_tree_remove(&l->byid, k, 8);
        if (ls) {
            free(ls->keys);
            free(ls);
        }
    }
    mvcc_tree_clear(&l->byid);
    free(l);
}

bool lessor_exists(const lessor *l, int64_t id)
{
    return find(l, id) != NULL;
}

int lessor_attach(lessor *l, int64_t id, mvcc_key *k)
{
    lease *ls = find(l, id);
    if (!ls)
        return -1;
    if (ls->nkeys == ls->cap) {
        size_t ncap = ls->cap ? ls->cap * 2 : 4;
        mvcc_key **nk = realloc(ls->keys, ncap * sizeof(mvcc_key *));
        if (!nk)
            return -1;
        ls->keys = nk;
        ls->cap = ncap;
    }
    k->lease_slot = ls->nkeys;
    ls->keys[ls->nkeys++] = k;
    return 0;
}

void lessor_detach(lessor *l, int64_t id, mvcc_key *k)
{
    lease *ls = find(l, id);
    if (!ls || k->lease_slot >= ls->nkeys || ls->keys[k->lease_slot] != k)
        return;
    size_t slot = k->lease_slot;
    ls->keys[slot] = ls->keys[--ls->nkeys];
    ls->keys[slot]->lease_slot = slot;
}

void lessor_set_min_ttl(lessor *l, int64_t seconds)
{
    l->min_ttl = seconds > 0 ? seconds : 1;
}

/* splitmix64: a fixed bijection, so automatic IDs look like etcd's (large, spread out)
 * yet every member derives the same sequence from the replicated counter. */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

int lease_grant(mvcc *s, int64_t id, int64_t ttl, int64_t now_ms, int64_t *out_id, int64_t *out_ttl)
{
    lessor *l = s->lessor;
    if (ttl > LEASE_MAX_TTL)
        return MVCC_ERR_LEASE_TTL_TOO_BIG;
    if (id == 0) {
        do {
            id = (int64_t)(mix(++l->id_seq) & 0x7fffffffffffffffULL);
        } while (id == 0 || find(l, id));
    } else if (find(l, id)) {
        return MVCC_ERR_LEASE_EXISTS;
    }
    if (ttl < l->min_ttl)
        ttl = l->min_ttl;
    lease *ls = calloc(1, sizeof(*ls));
    if (!ls)
        return MVCC_ERR_NOMEM;
    ls->id = id;
    ls->ttl = ttl;
    id_key(id, ls->idkey);
    if (l->primary)
        ls->deadline_ms = now_ms + ttl * 1000;
    if (mvcc_tree_insert(&l->byid, ls->idkey, 8, ls) != 0) {
        free(ls);
        return MVCC_ERR_NOMEM;
    }
    if (out_id)
        *out_id = id;
    if (out_ttl)
        *out_ttl = ttl;
    return MVCC_OK;
}

static int revoke(mvcc *s, int64_t id, bool missing_ok)
{
    lessor *l = s->lessor;
    lease *ls = find(l, id);
    if (!ls)
        return missing_ok ? MVCC_OK : MVCC_ERR_LEASE_NOT_FOUND;
    int err = MVCC_OK;
    if (ls->nkeys) {
        /* Deleting detaches keys from ls->keys, so work on a copy; sorted by key so the
         * events (and sub revisions) come in the same order on every member. */
        size_t n = ls->nkeys;
        mvcc_key **keys = malloc(n * sizeof(mvcc_key *));
        if (!keys)
            return MVCC_ERR_NOMEM;
        memcpy(keys, ls->keys, n * sizeof(mvcc_key *));
        for (size_t i = 1; i < n; i++) { /* insertion sort: lease key sets are small */
            mvcc_key *x = keys[i];
            size_t j = i;
            while (j > 0 &&
                   mvcc_key_cmp(keys[j - 1]->key, keys[j - 1]->key_len, x->key, x->key_len) > 0) {
                keys[j] = keys[j - 1];
                j--;
            }
            keys[j] = x;
        }
        mvcc_txn_begin(s);
        for (size_t i = 0; i < n; i++)
            mvcc_txn_delete_key(s, keys[i]);
        err = mvcc_txn_end(s);
        free(keys);
    }
    mvcc_tree_remove(&l->byid, ls->idkey, 8);
    free(ls->keys);
    free(ls);
    return err;
}

int lease_revoke(mvcc *s, int64_t id)
{
    return revoke(s, id, false);
}

int lease_expire(mvcc *s, int64_t id)
{
    return revoke(s, id, true);
}

int lease_checkpoint(mvcc *s, int64_t id, int64_t remaining_ttl, int64_t now_ms)
{
    lease *ls = find(s->lessor, id);
    if (!ls)
        return MVCC_ERR_LEASE_NOT_FOUND;
    if (remaining_ttl < 0)
        remaining_ttl = 0;
    if (remaining_ttl > ls->ttl)
        remaining_ttl = ls->ttl;
    ls->remaining = remaining_ttl;
    if (s->lessor->primary)
        ls->deadline_ms = now_ms + (remaining_ttl ? remaining_ttl : ls->ttl) * 1000;
    return MVCC_OK;
}

int lessor_keepalive(lessor *l, int64_t id, int64_t now_ms, int64_t *ttl)
{
    lease *ls = find(l, id);
    if (!ls)
        return MVCC_ERR_LEASE_NOT_FOUND;
    /* A lease past its deadline is as good as gone: etcd refuses to renew it, so a client
     * cannot revive a lease whose expiry is already being proposed. */
    if (l->primary && ls->deadline_ms <= now_ms)
        return MVCC_ERR_LEASE_NOT_FOUND;
    if (l->primary)
        ls->deadline_ms = now_ms + ls->ttl * 1000;
    ls->remaining = 0;
    *ttl = ls->ttl;
    return MVCC_OK;
}

static int key_ptr_cmp(const void *pa, const void *pb)
{
    const mvcc_kv *a = pa, *b = pb;
    return mvcc_key_cmp(a->key, a->key_len, b->key, b->key_len);
}

int lessor_timetolive(lessor *l, int64_t id, int64_t now_ms, bool with_keys, mvcc_arena *a,
                      lease_ttl_info *out)
{
    memset(out, 0, sizeof(*out));
    out->id = id;
    lease *ls = find(l, id);
    if (!ls) {
        out->ttl = -1;
        return MVCC_OK; /* etcd answers TTL -1, not an error */
    }
    out->granted_ttl = ls->ttl;
    if (l->primary) {
        int64_t left = ls->deadline_ms - now_ms;
        out->ttl = left > 0 ? left / 1000 : 0; /* etcd truncates to whole seconds */
    } else {
        out->ttl = ls->remaining ? ls->remaining : ls->ttl;
    }
    if (with_keys && ls->nkeys) {
        out->keys = mvcc_arena_alloc(a, ls->nkeys * sizeof(*out->keys));
        if (!out->keys)
            return MVCC_ERR_NOMEM;
        for (size_t i = 0; i < ls->nkeys; i++) {
            out->keys[i].key = ls->keys[i]->key;
            out->keys[i].key_len = ls->keys[i]->key_len;
        }
        out->nkeys = ls->nkeys;
        qsort(out->keys, out->nkeys, sizeof(*out->keys), key_ptr_cmp);
    }
    return MVCC_OK;
}

int lessor_next(const lessor *l, const int64_t *after, lease_record *rec)
{
    lease *ls;
    if (!after) {
        ls = mvcc_tree_seek(&l->byid, (const uint8_t *)"", 0, 0, NULL, NULL);
    } else {
        uint8_t k[8];
        id_key(*after, k);
        ls = mvcc_tree_seek(&l->byid, k, 8, 1, NULL, NULL);
    }
    if (!ls)
        return -1;
    rec->id = ls->id;
    rec->ttl = ls->ttl;
    rec->remaining = ls->remaining;
    return 0;
}

int lessor_list(lessor *l, mvcc_arena *a, int64_t **ids, size_t *n)
{
    *n = 0;
    *ids = mvcc_arena_alloc(a, (l->byid.count + 1) * sizeof(**ids));
    if (!*ids)
        return MVCC_ERR_NOMEM;
    lease_record r;
    const int64_t *after = NULL; /* NULL: from the first */
    int64_t after_id;
    while (lessor_next(l, after, &r) == 0) {
        (*ids)[(*n)++] = r.id;
        after_id = r.id;
        after = &after_id;
    }
    return MVCC_OK;
}

size_t lessor_expired(lessor *l, int64_t now_ms, int64_t *ids, size_t max)
{
    if (!l->primary)
        return 0;
    /* A linear scan: the lease count of a DCS for a handful of Patroni nodes is small; the
     * leader calls this a few times per second. */
    size_t n = 0;
    lease_record r;
    const int64_t *after = NULL; /* NULL: from the first */
    int64_t after_id;
    while (n < max && lessor_next(l, after, &r) == 0) {
        after_id = r.id;
        after = &after_id;
        lease *ls = find(l, r.id);
        if (ls && ls->deadline_ms <= now_ms)
            ids[n++] = r.id;
    }
    return n;
}

void lessor_promote(lessor *l, int64_t now_ms, int64_t extend_ms)
{
    l->primary = true;
    lease_record r;
    const int64_t *after = NULL; /* NULL: from the first */
    int64_t after_id;
    while (lessor_next(l, after, &r) == 0) {
        after_id = r.id;
        after = &after_id;
        lease *ls = find(l, r.id);
        int64_t left = ls->remaining ? ls->remaining : ls->ttl;
        ls->deadline_ms = now_ms + left * 1000 + extend_ms;
    }
}

void lessor_demote(lessor *l)
{
    l->primary = false;
}

bool lessor_is_primary(const lessor *l)
{
    return l->primary;
}

size_t lessor_count(const lessor *l)
{
    return l->byid.count;
}

int lessor_restore(lessor *l, const lease_record *rec)
{
    if (find(l, rec->id))
        return MVCC_ERR_LEASE_EXISTS;
    lease *ls = calloc(1, sizeof(*ls));
    if (!ls)
        return MVCC_ERR_NOMEM;
    ls->id = rec->id;
    ls->ttl = rec->ttl;
    ls->remaining = rec->remaining;
    id_key(rec->id, ls->idkey);
    if (mvcc_tree_insert(&l->byid, ls->idkey, 8, ls) != 0) {
        free(ls);
        return MVCC_ERR_NOMEM;
    }
    return MVCC_OK;
}

uint64_t lessor_id_seq(const lessor *l)
{
    return l->id_seq;
}

void lessor_set_id_seq(lessor *l, uint64_t seq)
{
    l->id_seq = seq;
}
