/* Applying committed store commands to the replicated state machine. */
#include <stdlib.h>
#include <string.h>

#include "dcs/store_cmd.h"

dcs_store *dcs_store_new(const mvcc_limits *lim)
{
    dcs_store *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->kv = mvcc_new(lim);
    st->v2 = v2_store_new();
    if (!st->kv || !st->v2) {
        dcs_store_free(st);
        return NULL;
    }
    mvcc_limits dl;
    mvcc_limits_default(&dl);
    v2_store_set_quota(st->v2, (lim ? lim : &dl)->quota_bytes);
    return st;
}

void dcs_store_free(dcs_store *st)
{
    if (!st)
        return;
    mvcc_free(st->kv);
    v2_store_free(st->v2);
    free(st);
}

static store_member *member_rec(dcs_store *st, uint64_t id)
{
    for (size_t i = 0; i < st->nmembers; i++)
        if (st->members[i].id == id)
            return &st->members[i];
    if (st->nmembers == STORE_MAX_MEMBER_RECS) { /* bounded: forget the oldest removal */
        size_t k = 0;
        while (k < st->nmembers && !st->members[k].removed)
            k++;
        if (k == st->nmembers)
            return NULL;
        memmove(&st->members[k], &st->members[k + 1],
                (st->nmembers - k - 1) * sizeof(st->members[0]));
        st->nmembers--;
    }
    store_member *m = &st->members[st->nmembers++];
    memset(m, 0, sizeof(*m));
    m->id = id;
    return m;
}

static int apply_member(dcs_store *st, const store_cmd *c)
{
    store_member *m = member_rec(st, c->member_id);
    if (!m)
        return MVCC_ERR_NOMEM;
    m->removed = c->member_op == STORE_MEMBER_REMOVE;
    if (c->member_op != STORE_MEMBER_REMOVE) {
        memcpy(m->peer_url, c->peer_url ? c->peer_url : "", c->peer_url_len);
        m->peer_url[c->peer_url_len] = 0;
    }
    st->members_changed++;
    return MVCC_OK;
}

int store_apply(dcs_store *st, const store_cmd *c, int64_t now_ms, mvcc_arena *a, store_result *r)
{
    memset(r, 0, sizeof(*r));
    r->type = c->type;
    switch (c->type) {
    case STORE_CMD_PUT:
    case STORE_CMD_DELETE:
    case STORE_CMD_TXN:
        r->err = mvcc_write(st->kv, &c->op, a, &r->op);
        break;
    case STORE_CMD_COMPACT:
        r->err = mvcc_compact(st->kv, c->revision);
        break;
    case STORE_CMD_LEASE_GRANT:
        r->err = lease_grant(st->kv, c->lease_id, c->ttl, now_ms, &r->lease_id, &r->ttl);
        break;
    case STORE_CMD_LEASE_REVOKE:
        r->lease_id = c->lease_id;
        r->err = lease_revoke(st->kv, c->lease_id);
        break;
    case STORE_CMD_LEASE_EXPIRE:
        r->lease_id = c->lease_id;
        r->err = lease_expire(st->kv, c->lease_id);
        break;
    case STORE_CMD_LEASE_CHECKPOINT:
        r->lease_id = c->lease_id;
        r->ttl = c->ttl;
        r->err = lease_checkpoint(st->kv, c->lease_id, c->ttl, now_ms);
        break;
    case STORE_CMD_MEMBER:
        r->err = apply_member(st, c);
        break;
    case STORE_CMD_V2:
        r->err = v2_store_apply(st->v2, &c->v2, a, &r->v2) == 0 ? MVCC_OK : MVCC_ERR_NOMEM;
        break;
    default:
        r->err = MVCC_ERR_BAD_COMMAND;
        break;
    }
    r->revision = mvcc_current_revision(st->kv);
    return r->err;
}

int store_apply_bytes(dcs_store *st, const uint8_t *buf, size_t len, int64_t now_ms, mvcc_arena *a,
                      store_result *r)
{
    store_cmd c;
    if (store_cmd_decode(buf, len, a, &c) != 0) {
        memset(r, 0, sizeof(*r));
        r->err = MVCC_ERR_BAD_COMMAND;
        r->revision = mvcc_current_revision(st->kv);
        return r->err;
    }
    return store_apply(st, &c, now_ms, a, r);
}
