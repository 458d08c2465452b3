/* etcd's Cluster MemberAdd/Remove/Update/Promote over gRPC, on the server's membership
 * machinery (server_members.c: dcs_member_propose on the leader, dcs_forward_member from a
 * follower; the answer comes when the member record applies here). Checks and messages
 * follow the gateway's /v3/cluster/member/... handlers. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "dcs/grpc_internal.h"
#include "dcs/pb_etcd.h"

#define URL_MAX 8

typedef struct member_req {
    uint64_t id;
    const char *urls[URL_MAX];
    size_t nurls;
    bool learner;
    char buf[URL_MAX][DCS_MAX_STR];
} member_req;

static int decode(const uint8_t *msg, size_t len, int m, member_req *r)
{
    memset(r, 0, sizeof(*r));
    uint32_t url_field = m == GM_MEMBER_ADD ? 1 : 2;
    pb_reader rd;
    pb_field f;
    int rc;
    pb_reader_init(&rd, msg, len);
    while ((rc = pb_next(&rd, &f)) > 0) {
        if (m != GM_MEMBER_ADD && f.num == 1 && f.wire == PB_VARINT) {
            r->id = f.u;
        } else if (m == GM_MEMBER_ADD && f.num == 2 && f.wire == PB_VARINT) {
            r->learner = f.u != 0;
        } else if (f.num == url_field && f.wire == PB_LEN) {
            if (r->nurls == URL_MAX || f.len >= DCS_MAX_STR)
                return -1;
            memcpy(r->buf[r->nurls], f.ptr, f.len);
            r->buf[r->nurls][f.len] = 0;
            r->urls[r->nurls] = r->buf[r->nurls];
            r->nurls++;
        }
    }
    return rc < 0 ? -1 : 0;
}

static void finish(grpc_call *call, int code, const char *msg)
{
    grpc_call_finish(call, code, msg);
}

static bool known(dcs_server *s, uint64_t id, const char *url, uint64_t except, bool *url_used)
{
    v3_member m[DCS_MAX_MEMBERS];
    const char *purls[DCS_MAX_MEMBERS][1];
    const char *curls[DCS_MAX_MEMBERS][DCS_MAX_URLS];
    size_t n = dcs_member_view(s, m, purls, curls);
    bool found = false;
    *url_used = false;
    for (size_t i = 0; i < n; i++) {
        if (m[i].id == id)
            found = true;
        if (url && m[i].id != except && strcmp(m[i].peer_urls[0], url) == 0)
            *url_used = true;
    }
    return found;
}

static uint64_t new_id(dcs_server *s, const char *url)
{
    for (int salt = 0;; salt++) {
        char t[64];
        bool used;
        snprintf(t, sizeof(t), "added-%lld-%d", (long long)dcs_wall_ms(), salt);
        uint64_t id = dcs_member_id(t, url, s->f.token);
        if (!known(s, id, NULL, 0, &used))
            return id;
    }
}

void grpc_member_change(dcs_server *s, grpc_call *call, const uint8_t *msg, size_t len)
{
    int m = grpc_call_method(call);
    member_req r;
    if (decode(msg, len, m, &r) != 0) {
        finish(call, GRPC_INTERNAL, "grpc: error unmarshalling request: malformed member request");
        return;
    }
    int op = m == GM_MEMBER_ADD      ? STORE_MEMBER_ADD
             : m == GM_MEMBER_REMOVE ? STORE_MEMBER_REMOVE
                                     : STORE_MEMBER_UPDATE;
    const char *url = NULL;
    bool used = false;
    if (m == GM_MEMBER_ADD || m == GM_MEMBER_UPDATE) {
        dcs_url u;
        char err[300];
        if (r.nurls != 1 || dcs_url_parse(r.urls[0], &u, "peer URL", err, sizeof(err)) != 0) {
            finish(call, GRPC_INVALID_ARGUMENT, "etcdserver: given member URLs are invalid");
            return;
        }
        url = r.urls[0];
    }
    if (m == GM_MEMBER_ADD) {
        if (r.learner) {
            finish(call, GRPC_UNIMPLEMENTED, "appliance-dcs: learner members are not supported");
            return;
        }
        known(s, 0, url, 0, &used);
        if (used) {
            finish(call, 9, "etcdserver: Peer URLs already exists");
            return;
        }
        r.id = new_id(s, url);
    } else {
        if (!known(s, r.id, url, r.id, &used)) {
            finish(call, GRPC_NOT_FOUND, "etcdserver: member not found");
            return;
        }
        if (m == GM_MEMBER_PROMOTE) {
            finish(call, 9, "etcdserver: can only promote a learner member");
            return;
        }
        if (used) {
            finish(call, 9, "etcdserver: Peer URLs already exists");
            return;
        }
    }
    preq *p = preq_new(s, NULL, PQ_MEMBER);
    if (!p) {
        finish(call, GRPC_RESOURCE_EXHAUSTED, "etcdserver: too many requests");
        return;
    }
    grpc_preq_attach(p, call);
    p->member_id = r.id;
    p->member_op = op;
    if (raft_role(s->r) != RAFT_LEADER) {
        dcs_forward_member(s, p, url); /* answered when the record applies here */
        return;
    }
    uint64_t idx;
    int rc = dcs_member_propose(s, op, r.id, url, &idx);
    if (rc != 0) {
        dcs_answer_error(p, 14,
                         rc == RAFT_ECONFPENDING ? "etcdserver: unhealthy cluster (a membership "
                                                   "change is still in progress)"
                                                 : "etcdserver: unhealthy cluster");
        return;
    }
    p->state = PS_WAIT_APPLY;
    p->index = idx;
    p->term = raft_term(s->r);
}

void grpc_member_answer(preq *p, const store_result *res, pb_buf *b)
{
    dcs_server *s = p->s;
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
    h.revision = 0;
    if (p->member_op == STORE_MEMBER_ADD)
        pb_enc_member_add(b, &h, m, n, p->member_id);
    else
        pb_enc_member_list(b, &h, m, n); /* Remove/UpdateResponse: header, members = 2 */
    (void)res;
}
