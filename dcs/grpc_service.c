/* etcd's KV, Lease, Maintenance and Cluster gRPC services on top of the server's request
 * machinery: a decoded request becomes a preq whose sink answers in protobuf, so writes,
 * linearizable reads, keepalive forwarding, timeouts and leader changes behave exactly as
 * on the JSON gateway (server_http.c handle_v3). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcs/crc32c.h"
#include "dcs/grpc_internal.h"
#include "dcs/pb_etcd.h"
#include "dcs/v3_gateway.h"

#define RESP_MAX (64u << 20)

/* Per-call state of a LeaseKeepAlive stream: answers still owed before it may end. */
typedef struct kstate {
    int pending;
    bool half_closed;
} kstate;

static int endpoint_of(int m)
{
    switch (m) {
    case GM_RANGE:
        return V3_KV_RANGE;
    case GM_PUT:
        return V3_KV_PUT;
    case GM_DELETE_RANGE:
        return V3_KV_DELETE_RANGE;
    case GM_TXN:
        return V3_KV_TXN;
    case GM_COMPACT:
        return V3_KV_COMPACTION;
    case GM_LEASE_GRANT:
        return V3_LEASE_GRANT;
    case GM_LEASE_REVOKE:
        return V3_LEASE_REVOKE;
    case GM_LEASE_KEEPALIVE:
        return V3_LEASE_KEEPALIVE;
    case GM_LEASE_TIMETOLIVE:
        return V3_LEASE_TIMETOLIVE;
    case GM_LEASE_LEASES:
        return V3_LEASE_LEASES;
    case GM_WATCH:
        return V3_WATCH;
    default:
        return 0;
    }
}

/* Sends b as the call's answer; unary calls end with OK, a keepalive stream stays open. */
static void reply(grpc_call *call, pb_buf *b)
{
    if (!grpc_call_alive(call))
        return;
    if (b->failed) {
        grpc_call_finish(call, GRPC_RESOURCE_EXHAUSTED, "response too large");
        return;
    }
    if (grpc_call_send(call, b) != 0)
        return;
    if (!grpc_method_streams(grpc_call_method(call)))
        grpc_call_finish(call, GRPC_OK, NULL);
}

static void error_reply(grpc_call *call, int code, const char *msg)
{
    grpc_call_finish(call, code, msg);
}

/* A keepalive answer was delivered (or failed): end a half-closed stream once none is owed. */
static void keepalive_done(grpc_call *call)
{
    kstate *k = grpc_call_user(call);
    if (!k)
        return;
    k->pending--;
    if (k->pending > 0)
        return;
    if (!grpc_call_alive(call)) { /* the stream went first: the last answer frees */
        grpc_call_set_user(call, NULL);
        free(k);
    } else if (k->half_closed) {
        grpc_call_finish(call, GRPC_OK, NULL);
    }
}

static void release(preq *p)
{
    grpc_call *call = p->sink_arg;
    if (grpc_call_method(call) == GM_LEASE_KEEPALIVE)
        keepalive_done(call);
    preq_free(p);
    grpc_call_unref(call);
}

static void sink_error(preq *p, int code, const char *msg)
{
    error_reply(p->sink_arg, code, msg);
    release(p);
}

static void sink_applied(preq *p, const store_result *res)
{
    dcs_server *s = p->s;
    grpc_call *call = p->sink_arg;
    s->proposals_ok++;
    if (p->kind == PQ_MEMBER) {
        dcs_members_sync(s); /* as dcs_members_answer: members follow the applied record */
        if (res->err != MVCC_OK) {
            error_reply(call, GRPC_INTERNAL, "etcdserver: member record not applied");
        } else {
            pb_buf b;
            pb_buf_init(&b, RESP_MAX);
            grpc_member_answer(p, res, &b);
            reply(call, &b);
            pb_buf_free(&b);
        }
        release(p);
        return;
    }
    if (res->err) {
        v3_error e;
        v3_error_from_store(res->err, &e);
        error_reply(call, e.grpc_code, e.message);
        release(p);
        return;
    }
    v3_header h;
    dcs_header(s, &h);
    h.revision = res->revision;
    pb_buf b;
    pb_buf_init(&b, RESP_MAX);
    switch (p->v3.endpoint) {
    case V3_KV_PUT:
    case V3_KV_DELETE_RANGE:
    case V3_KV_TXN:
        pb_enc_op_resp(&b, &h, &res->op);
        break;
    case V3_LEASE_GRANT:
        pb_enc_lease_grant(&b, &h, res->lease_id, res->ttl);
        break;
    default: /* compaction, lease revoke */
        pb_enc_header_only(&b, &h);
        break;
    }
    reply(call, &b);
    pb_buf_free(&b);
    release(p);
}

/* Reads served from the local store, as v3_execute_read does for the gateway. */
static void sink_read(preq *p)
{
    dcs_server *s = p->s;
    grpc_call *call = p->sink_arg;
    dcs_store *st = s->st;
    v3_header h;
    dcs_header(s, &h);
    h.revision = mvcc_current_revision(st->kv);
    mvcc_arena a;
    mvcc_arena_init(&a, 64u << 20);
    pb_buf b;
    pb_buf_init(&b, RESP_MAX);
    int e = MVCC_OK;
    const v3_request *req = &p->v3;
    switch (req->endpoint) {
    case V3_KV_RANGE: {
        mvcc_op_resp r;
        e = mvcc_range(st->kv, &req->op.u.range, &a, &r);
        if (!e)
            pb_enc_op_resp(&b, &h, &r);
        break;
    }
    case V3_LEASE_KEEPALIVE: {
        int64_t ttl = 0;
        /* unknown or expired: TTL 0 (clientv3 reads it as "lease expired or revoked") */
        if (lessor_keepalive(mvcc_lessor(st->kv), req->id, dcs_now_ms(s), &ttl) != MVCC_OK)
            ttl = 0;
        pb_enc_lease_keepalive(&b, &h, req->id, ttl);
        break;
    }
    case V3_LEASE_TIMETOLIVE: {
        lease_ttl_info t;
        e = lessor_timetolive(mvcc_lessor(st->kv), req->id, dcs_now_ms(s), req->keys, &a, &t);
        if (!e && t.ttl >= 0 && req->leader_ttl_plus1 > 0)
            t.ttl = req->leader_ttl_plus1 - 1; /* a follower: the leader's remaining TTL */
        if (!e && t.ttl == -1)
            memset(&h, 0, sizeof(h)); /* etcd answers a missing lease with an empty header */
        if (!e)
            pb_enc_lease_timetolive(&b, &h, &t);
        break;
    }
    case V3_LEASE_LEASES: {
        int64_t *ids;
        size_t n;
        e = lessor_list(mvcc_lessor(st->kv), &a, &ids, &n);
        if (!e)
            pb_enc_lease_leases(&b, &h, ids, n);
        break;
    }
    default:
        error_reply(call, GRPC_UNIMPLEMENTED, "Not Implemented");
        e = -1;
        break;
    }
    if (e > 0) {
        v3_error err;
        v3_error_from_store(e, &err);
        error_reply(call, err.grpc_code, err.message);
    } else if (e == 0) {
        reply(call, &b);
    }
    pb_buf_free(&b);
    mvcc_arena_free(&a);
    release(p);
}

static void sink_keepalive(preq *p, int64_t ttl)
{
    v3_header h;
    dcs_header(p->s, &h);
    pb_buf b;
    pb_buf_init(&b, 4096);
    pb_enc_lease_keepalive(&b, &h, p->v3.id, ttl);
    reply(p->sink_arg, &b);
    pb_buf_free(&b);
    release(p);
}

static const preq_sink grpc_sink = {sink_applied, sink_error, sink_read, sink_keepalive};

void grpc_preq_attach(preq *p, grpc_call *call)
{
    p->sink = &grpc_sink;
    p->sink_arg = call;
    grpc_call_ref(call);
}

/* ---- Maintenance / Cluster: answered from member state at once ---- */
static void member_list(dcs_server *s, grpc_call *call)
{
    /* the same member view as the gateway's /v3/cluster/member/list */
    v3_member m[DCS_MAX_MEMBERS];
    const char *purls[DCS_MAX_MEMBERS][1];
    const char *curls[DCS_MAX_MEMBERS][DCS_MAX_URLS];
    size_t n = dcs_member_view(s, m, purls, curls);
    for (size_t i = 1; i < n; i++) /* etcd lists members by ID */
        for (size_t j = i; j > 0 && m[j - 1].id > m[j].id; j--) {
            v3_member t = m[j];
            m[j] = m[j - 1];
            m[j - 1] = t;
        }
    v3_header h;
    dcs_header(s, &h);
    h.revision = 0; /* etcd sends the member list header without a revision */
    pb_buf b;
    pb_buf_init(&b, RESP_MAX);
    pb_enc_member_list(&b, &h, m, n);
    reply(call, &b);
    pb_buf_free(&b);
}

static void status(dcs_server *s, grpc_call *call)
{
    v3_status st;
    dcs_status_fill(s, &st);
    v3_header h;
    dcs_header(s, &h);
    pb_buf b;
    pb_buf_init(&b, 65536);
    pb_enc_status(&b, &h, &st);
    reply(call, &b);
    pb_buf_free(&b);
}

static void alarm(dcs_server *s, grpc_call *call, const uint8_t *msg, size_t len)
{
    /* No alarms exist here: the quota is enforced per write (NOSPACE errors), never
     * latched. GET lists none; ACTIVATE/DEACTIVATE change nothing and list none. */
    pb_reader rd;
    pb_field f;
    int rc;
    pb_reader_init(&rd, msg, len);
    while ((rc = pb_next(&rd, &f)) > 0) {
    }
    if (rc < 0) {
        error_reply(call, GRPC_INTERNAL,
                    "grpc: error unmarshalling request: etcdserverpb.AlarmRequest: malformed");
        return;
    }
    v3_header h;
    dcs_header(s, &h);
    pb_buf b;
    pb_buf_init(&b, 4096);
    pb_enc_header_only(&b, &h);
    reply(call, &b);
    pb_buf_free(&b);
}

/* One uint64/int64 field of a small request message; 0 when absent. -1 if malformed. */
static int small_field(const uint8_t *msg, size_t len, uint32_t num, uint64_t *out)
{
    pb_reader rd;
    pb_field f;
    int rc;
    *out = 0;
    pb_reader_init(&rd, msg, len);
    while ((rc = pb_next(&rd, &f)) > 0)
        if (f.num == num && f.wire == PB_VARINT)
            *out = f.u;
    return rc < 0 ? -1 : 0;
}

static void put_le64(uint8_t *b, int64_t v)
{
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((uint64_t)v >> (8 * i));
}

/* HashKV: a CRC-32C over every live key at the revision (key, value, create/mod revision,
 * version, lease). Not etcd's number (its hash covers its bolt encoding), but members at
 * the same revision agree, which is what `etcdctl endpoint hashkv` is used to check. */
static void hashkv(dcs_server *s, grpc_call *call, const uint8_t *msg, size_t len)
{
    uint64_t rev;
    if (small_field(msg, len, 1, &rev) != 0) {
        error_reply(call, GRPC_INTERNAL,
                    "grpc: error unmarshalling request: etcdserverpb.HashKVRequest: malformed");
        return;
    }
    static const uint8_t all[1] = {0};
    mvcc_range_req rq;
    memset(&rq, 0, sizeof(rq));
    rq.key = all;
    rq.key_len = 1;
    rq.range_end = all;
    rq.range_end_len = 1;
    rq.revision = (int64_t)rev;
    mvcc_arena a;
    mvcc_arena_init(&a, 64u << 20);
    mvcc_op_resp r;
    int e = mvcc_range(s->st->kv, &rq, &a, &r);
    if (e) {
        v3_error err;
        v3_error_from_store(e, &err);
        error_reply(call, err.grpc_code, err.message);
        mvcc_arena_free(&a);
        return;
    }
    uint32_t crc = 0;
    for (size_t i = 0; i < r.u.range.nkvs; i++) {
        const mvcc_kv *kv = &r.u.range.kvs[i];
        uint8_t nums[40];
        put_le64(nums, (int64_t)kv->key_len);
        put_le64(nums + 8, kv->create_revision);
        put_le64(nums + 16, kv->mod_revision);
        put_le64(nums + 24, kv->version);
        put_le64(nums + 32, kv->lease);
        crc = crc32c_update(crc, nums, sizeof(nums));
        crc = crc32c_update(crc, kv->key, kv->key_len);
        crc = crc32c_update(crc, kv->value, kv->value_len);
    }
    mvcc_arena_free(&a);
    v3_header h;
    dcs_header(s, &h);
    pb_buf b;
    pb_buf_init(&b, 4096);
    pb_enc_header_only(&b, &h);
    pb_u64(&b, 2, crc);
    pb_i64(&b, 3, mvcc_compact_revision(s->st->kv));
    reply(call, &b);
    pb_buf_free(&b);
}

static void header_reply(dcs_server *s, grpc_call *call)
{
    v3_header h;
    dcs_header(s, &h);
    pb_buf b;
    pb_buf_init(&b, 4096);
    pb_enc_header_only(&b, &h);
    reply(call, &b);
    pb_buf_free(&b);
}

/* MoveLeader: etcd answers once the transferee leads (or after a bounded wait). */
typedef struct move_wait {
    dcs_server *s;
    grpc_call *call;
    uint64_t target;
    int64_t deadline_ms;
} move_wait;

static void move_poll(evloop *loop, void *arg)
{
    move_wait *mw = arg;
    dcs_server *s = mw->s;
    if (raft_leader(s->r) == mw->target) {
        header_reply(s, mw->call);
    } else if (dcs_now_ms(s) >= mw->deadline_ms || !grpc_call_alive(mw->call)) {
        error_reply(mw->call, 4, "etcdserver: request timed out, leader transfer took too long");
    } else if (evloop_timer_start(loop, 10, move_poll, mw)) {
        return;
    } else {
        error_reply(mw->call, GRPC_RESOURCE_EXHAUSTED, "out of memory");
    }
    grpc_call_unref(mw->call);
    free(mw);
}

static void move_leader(dcs_server *s, grpc_call *call, const uint8_t *msg, size_t len)
{
    uint64_t target;
    if (small_field(msg, len, 1, &target) != 0) {
        error_reply(call, GRPC_INTERNAL,
                    "grpc: error unmarshalling request: "
                    "etcdserverpb.MoveLeaderRequest: malformed");
        return;
    }
    if (raft_role(s->r) != RAFT_LEADER) {
        error_reply(call, 9, "etcdserver: not leader");
        return;
    }
    if (target == s->id) {
        header_reply(s, call);
        return;
    }
    if (raft_transfer_leader(s->r, target) != 0) {
        error_reply(call, 9, "etcdserver: bad leader transferee");
        return;
    }
    dcs_schedule_drain(s);
    move_wait *mw = calloc(1, sizeof(*mw));
    if (!mw) {
        error_reply(call, GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    mw->s = s;
    mw->call = call;
    mw->target = target;
    mw->deadline_ms = dcs_now_ms(s) + 2 * (int64_t)s->f.election_ms;
    grpc_call_ref(call);
    if (!evloop_timer_start(s->loop, 10, move_poll, mw)) {
        grpc_call_unref(call);
        free(mw);
        error_reply(call, GRPC_RESOURCE_EXHAUSTED, "out of memory");
    }
}

/* grpc.health.v1: SERVING while this member knows a leader (it can serve linearizable
 * requests), NOT_SERVING otherwise. */
static void health(dcs_server *s, grpc_call *call)
{
    pb_buf b;
    pb_buf_init(&b, 64);
    pb_u64(&b, 1, raft_leader(s->r) ? 1 : 2);
    reply(call, &b);
    pb_buf_free(&b);
}

/* ---- dispatch ---- */
static void kv_lease(dcs_server *s, grpc_call *call, int ep, const uint8_t *msg, size_t len)
{
    kstate *k = grpc_call_user(call);
    preq *p = preq_new(s, NULL, PQ_V3_WRITE);
    if (!p) {
        error_reply(call, GRPC_UNAVAILABLE, "etcdserver: too many requests");
        return;
    }
    grpc_preq_attach(p, call);
    if (k)
        k->pending++;
    v3_error err;
    if (pb_decode_request(ep, msg, len, &p->arena, &p->v3, &err) != 0) {
        dcs_answer_error(p, err.grpc_code, err.message);
        return;
    }
    store_cmd cmd;
    if (v3_request_command(&p->v3, &cmd)) {
        uint8_t *buf;
        size_t blen;
        if (store_cmd_encode(&cmd, (1u << 20) + 65536, &buf, &blen) != 0) {
            dcs_answer_error(p, GRPC_INVALID_ARGUMENT, "etcdserver: request is too large");
            return;
        }
        dcs_submit(s, p, buf, blen);
        return;
    }
    p->kind = PQ_V3_READ;
    if (ep == V3_LEASE_KEEPALIVE && raft_role(s->r) != RAFT_LEADER) {
        p->kind = PQ_KEEPALIVE; /* leases live on the leader */
        dcs_forward_keepalive(s, p);
        return;
    }
    if (ep == V3_LEASE_TIMETOLIVE && raft_role(s->r) != RAFT_LEADER) {
        dcs_forward_timetolive(s, p); /* the leader holds the deadlines (as etcd) */
        return;
    }
    if (ep == V3_KV_RANGE && !p->v3.op.u.range.serializable) {
        dcs_read_barrier(s, p);
        return;
    }
    dcs_answer_read(p);
}

static void on_message(grpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
    grpc_front *g = arg;
    dcs_server *s = g->s;
    int m = grpc_call_method(call);
    switch (m) {
    case GM_WATCH:
        grpc_watch_message(g, call, msg, len);
        return;
    case GM_STATUS:
        status(s, call);
        return;
    case GM_ALARM:
        alarm(s, call, msg, len);
        return;
    case GM_MEMBER_LIST:
        member_list(s, call);
        return;
    case GM_HEALTH_CHECK:
        health(s, call);
        return;
    case GM_MEMBER_ADD:
    case GM_MEMBER_REMOVE:
    case GM_MEMBER_UPDATE:
    case GM_MEMBER_PROMOTE:
        grpc_member_change(s, call, msg, len);
        return;
    /* Authentication is not implemented: answer as an etcd with auth disabled, so clients
     * configured with credentials still work (clientv3 goes on without a token when
     * Authenticate says auth is not enabled) and read-only auth commands show nothing. */
    case GM_AUTHENTICATE:
        error_reply(call, 9, "etcdserver: authentication is not enabled");
        return;
    case GM_AUTH_ENABLE:
        error_reply(call, 9, "etcdserver: root user does not exist");
        return;
    case GM_USER_GET:
        error_reply(call, 9, "etcdserver: user name not found");
        return;
    case GM_ROLE_GET:
        error_reply(call, 9, "etcdserver: role name not found");
        return;
    case GM_AUTH_DISABLE: /* already off */
    case GM_USER_LIST:    /* no users, no roles */
    case GM_ROLE_LIST:
    case GM_DEFRAGMENT: /* nothing to defragment: the store lives in memory */
        header_reply(s, call);
        return;
    case GM_HASHKV:
        hashkv(s, call, msg, len);
        return;
    case GM_MOVE_LEADER:
        move_leader(s, call, msg, len);
        return;
    case GM_LEASE_KEEPALIVE:
        if (!grpc_call_user(call)) {
            kstate *k = calloc(1, sizeof(*k));
            if (!k) {
                error_reply(call, GRPC_RESOURCE_EXHAUSTED, "out of memory");
                return;
            }
            grpc_call_set_user(call, k);
        }
        break;
    default:
        break;
    }
    if (s->stopping) {
        error_reply(call, GRPC_UNAVAILABLE, "etcdserver: server stopped");
        return;
    }
    kv_lease(s, call, endpoint_of(m), msg, len);
}

static void on_half_close(grpc_call *call, void *arg)
{
    if (grpc_call_method(call) != GM_LEASE_KEEPALIVE)
        return; /* unary calls are answered on their message; a watch stays open (etcd) */
    kstate *k = grpc_call_user(call);
    if (!k || k->pending == 0) {
        grpc_call_finish(call, GRPC_OK, NULL);
        return;
    }
    k->half_closed = true;
}

static void on_gone(grpc_call *call, void *arg)
{
    grpc_front *g = arg;
    if (grpc_call_method(call) == GM_WATCH) {
        grpc_watch_gone(g, call);
        return;
    }
    /* pending preqs keep their reference and find the call dead */
    if (grpc_call_method(call) == GM_LEASE_KEEPALIVE) {
        kstate *k = grpc_call_user(call);
        if (k && k->pending == 0) { /* else the last answer frees it */
            grpc_call_set_user(call, NULL);
            free(k);
        }
    }
}

void grpc_service_init(grpc_service *svc)
{
    svc->on_message = on_message;
    svc->on_half_close = on_half_close;
    svc->on_gone = on_gone;
}
