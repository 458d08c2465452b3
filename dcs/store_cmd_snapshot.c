/* Snapshot of the replicated state (v3 keys with their history, leases, v2 store), so
 * Raft can compact its log and a new member can catch up. Layout: magic "DCSSNAP", u8
 * format version, the state in store_cmd_buf varints, then CRC-32C (LE) of everything
 * before it. Loading validates everything (order, ranges, references) into a new store
 * and only returns it when all of it is sound. */
#include <stdlib.h>
#include <string.h>

#include "dcs/crc32c.h"
#include "dcs/mvcc_internal.h"
#include "dcs/store_cmd.h"
#include "dcs/store_cmd_buf.h"

static const uint8_t magic[7] = {'D', 'C', 'S', 'S', 'N', 'A', 'P'};
#define SNAP_VERSION 2 /* 2 added the membership records; 1 still loads */
#define SNAP_MAX     ((size_t)4 << 30)

int store_snapshot_save(dcs_store *st, uint8_t **out, size_t *len)
{
    mvcc *s = st->kv;
    cmd_writer w;
    cw_init(&w, SNAP_MAX);
    cw_raw(&w, magic, sizeof(magic));
    cw_u8(&w, SNAP_VERSION);
    cw_uvar(&w, (uint64_t)s->rev);
    cw_uvar(&w, (uint64_t)s->compact_rev);
    cw_uvar(&w, lessor_id_seq(s->lessor));
    cw_uvar(&w, lessor_count(s->lessor));
    lease_record lr;
    const int64_t *after = NULL; /* NULL: from the first */
    int64_t after_id;
    while (lessor_next(s->lessor, after, &lr) == 0) {
        after_id = lr.id;
        after = &after_id;
        cw_svar(&w, lr.id);
        cw_svar(&w, lr.ttl);
        cw_svar(&w, lr.remaining);
    }
    cw_uvar(&w, mvcc_key_count(s));
    for (mvcc_key *k = mvcc_seek_key(s, (const uint8_t *)"", 0, 0); k;
         k = mvcc_seek_key(s, k->key, k->key_len, 1)) {
        cw_bytes(&w, k->key, k->key_len);
        cw_uvar(&w, k->nvers);
        for (size_t i = 0; i < k->nvers; i++) {
            const mvcc_ver *v = &k->vers[i];
            cw_svar(&w, v->main);
            cw_svar(&w, v->sub);
            cw_svar(&w, v->create_rev);
            cw_svar(&w, v->version);
            cw_svar(&w, v->lease);
            cw_u8(&w, v->tomb);
            cw_bytes(&w, v->value, v->value_len);
        }
    }
    v2_store_save(st->v2, &w);
    cw_uvar(&w, st->nmembers);
    for (size_t i = 0; i < st->nmembers; i++) {
        cw_uvar(&w, st->members[i].id);
        cw_u8(&w, st->members[i].removed);
        cw_bytes(&w, st->members[i].peer_url, strlen(st->members[i].peer_url));
    }
    if (!w.err)
        cw_u32le(&w, crc32c(w.p, w.len));
    if (w.err) {
        cw_free(&w);
        return -1;
    }
    *out = w.p;
    *len = w.len;
    return 0;
}

static int load_keys(mvcc *s, cmd_reader *r)
{
    uint64_t nkeys = cr_uvar(r);
    if (r->err || nkeys > cr_left(r) / 2)
        return -1;
    const uint8_t *prev = NULL;
    size_t prev_n = 0;
    for (uint64_t i = 0; i < nkeys; i++) {
        const uint8_t *key;
        size_t kn;
        cr_bytes(r, &key, &kn);
        uint64_t nv = cr_uvar(r);
        if (r->err || nv == 0 || nv > cr_left(r) / 7)
            return -1;
        if (i > 0 && mvcc_key_cmp(prev, prev_n, key, kn) >= 0)
            return -1; /* keys strictly ascending, no duplicates */
        prev = key;
        prev_n = kn;
        mvcc_ver last = {0};
        for (uint64_t j = 0; j < nv; j++) {
            mvcc_ver v = {0};
            v.main = cr_svar(r);
            v.sub = cr_svar(r);
            v.create_rev = cr_svar(r);
            v.version = cr_svar(r);
            v.lease = cr_svar(r);
            uint8_t tomb = cr_u8(r);
            const uint8_t *val;
            size_t vn;
            cr_bytes(r, &val, &vn);
            if (r->err || tomb > 1 || v.main < 1 || v.main > s->rev || v.sub < 0 ||
                v.create_rev < 0 || v.create_rev > v.main || v.version < 0 || (tomb && vn))
                return -1;
            if (j > 0 && (v.main < last.main || (v.main == last.main && v.sub <= last.sub)))
                return -1;
            v.tomb = tomb;
            if (vn) {
                v.value = malloc(vn);
                if (!v.value)
                    return -1;
                memcpy(v.value, val, vn);
                v.value_len = vn;
            }
            if (mvcc_restore_version(s, key, kn, &v) != MVCC_OK) {
                free(v.value);
                return -1;
            }
            last = v;
        }
        /* the current version's lease must exist: attach the key to it */
        if (!last.tomb && last.lease) {
            mvcc_key *k = mvcc_seek_key(s, key, kn, 0);
            if (!lessor_exists(s->lessor, last.lease) || lessor_attach(s->lessor, last.lease, k))
                return -1;
        }
    }
    return 0;
}

dcs_store *store_snapshot_load(const uint8_t *buf, size_t len, const mvcc_limits *lim)
{
    if (len < sizeof(magic) + 1 + 4 || memcmp(buf, magic, sizeof(magic)) != 0)
        return NULL;
    const uint8_t *t = buf + len - 4;
    uint32_t crc =
        (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
    if (crc32c(buf, len - 4) != crc)
        return NULL;
    cmd_reader r;
    cr_init(&r, buf + sizeof(magic), len - sizeof(magic) - 4);
    uint8_t version = cr_u8(&r);
    if (version != 1 && version != SNAP_VERSION)
        return NULL;
    dcs_store *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->kv = mvcc_new(lim);
    if (!st->kv)
        goto fail;
    mvcc *s = st->kv;
    uint64_t rev = cr_uvar(&r), crev = cr_uvar(&r);
    if (r.err || rev < 1 || rev > INT64_MAX || crev > rev)
        goto fail;
    s->rev = (int64_t)rev;
    s->compact_rev = (int64_t)crev;
    lessor_set_id_seq(s->lessor, cr_uvar(&r));
    uint64_t nleases = cr_uvar(&r);
    if (r.err || nleases > cr_left(&r) / 3)
        goto fail;
    for (uint64_t i = 0; i < nleases; i++) {
        lease_record lr;
        lr.id = cr_svar(&r);
        lr.ttl = cr_svar(&r);
        lr.remaining = cr_svar(&r);
        if (r.err || lr.ttl < 1 || lr.ttl > LEASE_MAX_TTL || lr.remaining < 0 ||
            lr.remaining > lr.ttl || lessor_restore(s->lessor, &lr) != MVCC_OK)
            goto fail;
    }
    if (load_keys(s, &r) != 0)
        goto fail;
    st->v2 = v2_store_load(&r);
    if (!st->v2 || r.err)
        goto fail;
    if (version >= 2) {
        uint64_t nm = cr_uvar(&r);
        if (r.err || nm > STORE_MAX_MEMBER_RECS)
            goto fail;
        for (uint64_t i = 0; i < nm; i++) {
            store_member *m = &st->members[i];
            const uint8_t *u;
            size_t un;
            m->id = cr_uvar(&r);
            uint8_t removed = cr_u8(&r);
            cr_bytes(&r, &u, &un);
            if (r.err || m->id == 0 || removed > 1 || un > STORE_MAX_PEER_URL ||
                (un && memchr(u, 0, un)))
                goto fail;
            for (uint64_t j = 0; j < i; j++)
                if (st->members[j].id == m->id)
                    goto fail;
            m->removed = removed;
            if (un)
                memcpy(m->peer_url, u, un);
            m->peer_url[un] = 0;
        }
        st->nmembers = (size_t)nm;
    }
    if (cr_left(&r) != 0)
        goto fail;
    mvcc_limits dl;
    mvcc_limits_default(&dl);
    v2_store_set_quota(st->v2, (lim ? lim : &dl)->quota_bytes);
    return st;
fail:
    dcs_store_free(st);
    return NULL;
}
