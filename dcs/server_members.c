/* Membership of appliance-dcs: etcd's member add/remove/update/promote (v3 JSON gateway)
 * and POST/PUT/DELETE /v2/members on the leader; the replicated member records (store
 * MEMBER commands) applied to the member list and the peer transport; and how a member
 * started with --initial-cluster-state existing and an empty data directory joins: it asks
 * the running members over the peer port for its ID and the cluster ID (as etcd asks its
 * peers for the cluster's members), then learns the log or a snapshot from the leader.
 *
 * A change is two log entries proposed together by the leader: Raft's single-server
 * configuration change (the voter set) and a MEMBER store command (the peer URL, or the
 * removal, which Raft's configuration does not carry); the client is answered when the
 * second applies. IDs of added members hash the peer URL, the cluster token and the time
 * of the add, like etcd's: a member removed and added again gets a new ID. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dcs/server_internal.h"
#include "log.h"

#define JSON_MAX (1u << 20)

/* ---- the member list follows the replicated records ---- */
static int member_index(const dcs_server *s, uint64_t id)
{
    for (size_t i = 0; i < s->f.nmembers; i++)
        if (s->f.members[i].id == id)
            return (int)i;
    return -1;
}

static void remove_at(dcs_server *s, size_t i)
{
    size_t tail = s->f.nmembers - i - 1;
    memmove(&s->f.members[i], &s->f.members[i + 1], tail * sizeof(s->f.members[0]));
    memmove(&s->peers[i], &s->peers[i + 1], tail * sizeof(s->peers[0]));
    s->f.nmembers--;
    if (s->f.self > i)
        s->f.self--;
}

void dcs_members_sync(dcs_server *s)
{
    s->members_seen = s->st->members_changed;
    for (size_t r = 0; r < s->st->nmembers; r++) {
        const store_member *rec = &s->st->members[r];
        int i = member_index(s, rec->id);
        if (rec->removed) {
            if (i < 0)
                continue;
            if ((size_t)i == s->f.self) {
                if (!s->removed)
                    log_warn("this member (%016llx) was removed from the cluster: stopping",
                             (unsigned long long)s->id);
                s->removed = true;
                evloop_stop(s->loop);
                continue;
            }
            transport_remove_peer(s->tp, rec->id);
            remove_at(s, (size_t)i);
            log_info("member %016llx removed", (unsigned long long)rec->id);
            continue;
        }
        dcs_url u;
        char err[300];
        if (dcs_url_parse(rec->peer_url, &u, "member peer URL", err, sizeof(err)) != 0) {
            log_warn("member %016llx: %s", (unsigned long long)rec->id, err);
            continue;
        }
        if (i < 0) {
            if (s->f.nmembers == DCS_MAX_MEMBERS)
                continue;
            dcs_member_cfg *m = &s->f.members[s->f.nmembers];
            memset(m, 0, sizeof(*m));
            m->id = rec->id;
            m->peer = u;
            memset(&s->peers[s->f.nmembers], 0, sizeof(s->peers[0]));
            s->f.nmembers++;
            if (rec->id != s->id)
                transport_add_peer(s->tp, rec->id, u.host, u.port);
            log_info("member %016llx added (%s)", (unsigned long long)rec->id, u.text);
        } else if (strcmp(s->f.members[i].peer.text, u.text) != 0) {
            s->f.members[i].peer = u;
            if (rec->id != s->id) {
                transport_remove_peer(s->tp, rec->id);
                transport_add_peer(s->tp, rec->id, u.host, u.port);
            }
            log_info("member %016llx peer URL now %s", (unsigned long long)rec->id, u.text);
        }
    }
}

/* ---- identity of a member that joined a running cluster ---- */
typedef struct ident {
    uint64_t self, cluster;
    size_t n;
    uint64_t ids[DCS_MAX_MEMBERS];
    char urls[DCS_MAX_MEMBERS][DCS_MAX_STR];
} ident;

static void ident_path(const dcs_server *s, char *out, size_t n)
{
    snprintf(out, n, "%s/member/identity", s->f.data_dir);
}

static int apply_ident(dcs_server *s, const ident *id, char *err, size_t errlen)
{
    dcs_member_cfg nm[DCS_MAX_MEMBERS];
    size_t n = 0, self = DCS_MAX_MEMBERS;
    for (size_t i = 0; i < id->n && n < DCS_MAX_MEMBERS; i++) {
        dcs_member_cfg *m = &nm[n];
        memset(m, 0, sizeof(*m));
        if (dcs_url_parse(id->urls[i], &m->peer, "member peer URL", err, errlen) != 0)
            return -1;
        m->id = id->ids[i];
        for (size_t k = 0; k < s->f.nmembers; k++) /* names from --initial-cluster */
            if (strcmp(s->f.members[k].peer.text, m->peer.text) == 0)
                snprintf(m->name, sizeof(m->name), "%s", s->f.members[k].name);
        if (m->id == id->self) {
            self = n;
            snprintf(m->name, sizeof(m->name), "%s", s->f.name);
        }
        n++;
    }
    if (self == DCS_MAX_MEMBERS) {
        snprintf(err, errlen, "identity: this member is not in its own member list");
        return -1;
    }
    memcpy(s->f.members, nm, n * sizeof(nm[0]));
    s->f.nmembers = n;
    s->f.self = self;
    s->f.cluster_id = id->cluster;
    s->id = id->self;
    return 0;
}

static int load_ident(const char *path, ident *id)
{
    FILE *fp = fopen(path, "re");
    if (!fp)
        return errno == ENOENT ? 1 : -1;
    memset(id, 0, sizeof(*id));
    char line[512];
    int rc = 0;
    while (fgets(line, sizeof(line), fp)) {
        line[strcspn(line, "\n")] = 0;
        char *end = NULL;
        if (strncmp(line, "id ", 3) == 0) {
            id->self = strtoull(line + 3, &end, 16);
        } else if (strncmp(line, "cluster ", 8) == 0) {
            id->cluster = strtoull(line + 8, &end, 16);
        } else if (strncmp(line, "member ", 7) == 0 && id->n < DCS_MAX_MEMBERS) {
            id->ids[id->n] = strtoull(line + 7, &end, 16);
            if (*end != ' ' || strlen(end + 1) >= sizeof(id->urls[0]) || !id->ids[id->n]) {
                rc = -1;
                continue;
            }
            snprintf(id->urls[id->n++], sizeof(id->urls[0]), "%s", end + 1);
            continue;
        } else if (strncmp(line, "appliance-dcs identity 1", 24) == 0) {
            continue;
        } else {
            rc = -1;
            continue;
        }
        if (!end || *end)
            rc = -1;
    }
    fclose(fp);
    return rc == 0 && id->self && id->cluster && id->n ? 0 : -1;
}

static int save_ident(const char *path, const ident *id)
{
    char tmp[1300];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *fp = fopen(tmp, "we");
    if (!fp)
        return -1;
    fprintf(fp, "appliance-dcs identity 1\nid %016llx\ncluster %016llx\n",
            (unsigned long long)id->self, (unsigned long long)id->cluster);
    for (size_t i = 0; i < id->n; i++)
        fprintf(fp, "member %016llx %s\n", (unsigned long long)id->ids[i], id->urls[i]);
    int rc = fflush(fp) == 0 && fdatasync(fileno(fp)) == 0 ? 0 : -1;
    if (fclose(fp) != 0)
        rc = -1;
    return rc == 0 ? rename(tmp, path) : -1;
}

static bool dir_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return true;
    struct dirent *e;
    bool empty = true;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            empty = false;
    closedir(d);
    return empty;
}

int dcs_members_identity(dcs_server *s, char *err, size_t errlen)
{
    char path[1200];
    ident id;
    ident_path(s, path, sizeof(path));
    int rc = load_ident(path, &id);
    if (rc < 0) {
        snprintf(err, errlen, "%s: unreadable or malformed", path);
        return -1;
    }
    if (rc == 0)
        return apply_ident(s, &id, err, errlen);
    if (s->f.state_new || !dir_empty(s->wal_dir) || !dir_empty(s->snap_dir))
        return 0; /* a member of the initial cluster: IDs from --initial-cluster */
    /* joining: a member add must have made our peer URL known to the running members */
    const dcs_url *me = &s->f.members[s->f.self].peer;
    char last[600] = "no other member in --initial-cluster";
    struct timespec pause = {0, 300 * 1000000L};
    for (int round = 0; round < 40; round++) {
        for (size_t i = 0; i < s->f.nmembers; i++) {
            if (i == s->f.self)
                continue;
            transport_join_info ji;
            const dcs_url *u = &s->f.members[i].peer;
            if (transport_join_query(u->host, u->port, me->host, me->port, 1000, &ji, last,
                                     sizeof(last)) != 0)
                continue;
            memset(&id, 0, sizeof(id));
            id.self = ji.self_id;
            id.cluster = ji.cluster_id;
            id.ids[id.n] = ji.answered_by;
            snprintf(id.urls[id.n++], sizeof(id.urls[0]), "%s", u->text);
            for (size_t k = 0; k < ji.n && id.n < DCS_MAX_MEMBERS; k++) {
                id.ids[id.n] = ji.ids[k];
                snprintf(id.urls[id.n++], sizeof(id.urls[0]), "http://%s:%s", ji.host[k],
                         ji.port[k]);
            }
            if (apply_ident(s, &id, err, errlen) != 0)
                return -1;
            if (save_ident(path, &id) != 0) {
                snprintf(err, errlen, "%s: %s", path, strerror(errno));
                return -1;
            }
            log_info("joined cluster %016llx as member %016llx (asked %s)",
                     (unsigned long long)id.cluster, (unsigned long long)id.self, u->text);
            return 0;
        }
        if (round == 0)
            log_warn("--initial-cluster-state existing: waiting to be let in: %s", last);
        nanosleep(&pause, NULL);
    }
    snprintf(err, errlen,
             "--initial-cluster-state existing: no running member let this member in (%s); "
             "add it first (member add) and list the running members in --initial-cluster",
             last);
    return -1;
}

/* ---- HTTP: member add/remove/update/promote ---- */
static void answer_err(dcs_server *s, http_conn *c, bool v2, int code, const char *msg)
{
    jw w;
    jw_init(&w, JSON_MAX);
    if (v2) { /* etcd v2 members API: {"message":...} */
        static const int v2status[] = {[5] = 404, [6] = 409, [9] = 409, [3] = 400};
        int st = code >= 0 && code < 10 && v2status[code] ? v2status[code] : 500;
        jw_obj(&w);
        jw_key(&w, "message");
        jw_cstr(&w, msg);
        jw_obj_end(&w);
        dcs_respond_jw(c, st, NULL, &w);
        return;
    }
    v3_error e;
    e.grpc_code = code;
    snprintf(e.message, sizeof(e.message), "%s", msg);
    v3_render_error(&w, &e);
    dcs_respond_jw(c, v3_error_http_status(&e), NULL, &w);
}

/* "ID": a uint64 as a JSON string (grpc-gateway) or number */
static bool json_id(const json_t *o, uint64_t *id)
{
    const json_t *v = json_object_get(o, "ID");
    if (json_is_integer(v) && json_integer_value(v) > 0) {
        *id = (uint64_t)json_integer_value(v);
        return true;
    }
    if (!json_is_string(v))
        return false;
    const char *t = json_string_value(v);
    char *end;
    errno = 0;
    unsigned long long x = strtoull(t, &end, 10);
    if (!*t || *end || errno || x == 0)
        return false;
    *id = x;
    return true;
}

/* peerURLs: exactly one http URL (one peer URL per member here) */
static const char *json_peer_url(const json_t *o, dcs_url *u, char *err, size_t errlen)
{
    const json_t *a = json_object_get(o, "peerURLs");
    if (!json_is_array(a) || json_array_size(a) == 0) {
        snprintf(err, errlen, "member: peerURLs: want a list of one URL");
        return NULL;
    }
    if (json_array_size(a) > 1) {
        snprintf(err, errlen, "appliance-dcs: one peer URL per member");
        return NULL;
    }
    const json_t *v = json_array_get(a, 0);
    if (!json_is_string(v) || strlen(json_string_value(v)) > STORE_MAX_PEER_URL ||
        dcs_url_parse(json_string_value(v), u, "peerURLs", err, errlen) != 0) {
        if (json_is_string(v) && !*err)
            snprintf(err, errlen, "peerURLs: bad URL");
        if (!json_is_string(v))
            snprintf(err, errlen, "peerURLs: want strings");
        return NULL;
    }
    return u->text;
}

static bool url_in_use(const dcs_server *s, const char *url, uint64_t except)
{
    for (size_t i = 0; i < s->f.nmembers; i++)
        if (s->f.members[i].id != except && strcmp(s->f.members[i].peer.text, url) == 0)
            return true;
    return false;
}

int dcs_member_propose(dcs_server *s, int op, uint64_t id, const char *url, uint64_t *idx)
{
    if (raft_role(s->r) != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    dcs_url u;
    char err[300];
    if (op < STORE_MEMBER_ADD || op > STORE_MEMBER_UPDATE || id == 0 ||
        (op != STORE_MEMBER_REMOVE &&
         (!url || dcs_url_parse(url, &u, "peer URL", err, sizeof(err)) != 0)))
        return RAFT_EINVAL; /* a forwarded change is checked again here */
    if (op != STORE_MEMBER_UPDATE) {
        uint64_t ci;
        int rc = raft_change_member(s->r, op == STORE_MEMBER_ADD ? RAFT_CONF_ADD : RAFT_CONF_REMOVE,
                                    id, &ci);
        if (rc != 0)
            return rc;
    }
    store_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = STORE_CMD_MEMBER;
    cmd.member_op = op;
    cmd.member_id = id;
    cmd.peer_url = url;
    cmd.peer_url_len = url ? strlen(url) : 0;
    uint8_t *buf;
    size_t len;
    if (store_cmd_encode(&cmd, 4096, &buf, &len) != 0)
        return RAFT_ENOMEM;
    int rc = raft_propose(s->r, buf, (uint32_t)len, idx);
    free(buf);
    if (rc != 0) {
        log_error("member %016llx: configuration changed but its record was not proposed; "
                  "repeat the request (member update)",
                  (unsigned long long)id);
        return rc;
    }
    log_info("member %s %016llx%s%s proposed",
             op == STORE_MEMBER_ADD      ? "add"
             : op == STORE_MEMBER_REMOVE ? "remove"
                                         : "update",
             (unsigned long long)id, url ? " " : "", url ? url : "");
    dcs_schedule_drain(s);
    return 0;
}

static void start_change(dcs_server *s, http_conn *c, bool v2, int op, uint64_t id, const char *url)
{
    preq *p = preq_new(s, c, PQ_MEMBER);
    if (!p) {
        answer_err(s, c, v2, 8, "etcdserver: too many requests");
        return;
    }
    p->member_id = id;
    p->member_op = op;
    p->member_v2 = v2;
    dcs_preq_attach(p, c);
    if (raft_role(s->r) != RAFT_LEADER) {
        /* a follower ships the change to the leader and answers when it applies here */
        dcs_forward_member(s, p, url);
        return;
    }
    uint64_t idx;
    int rc = dcs_member_propose(s, op, id, url, &idx);
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

static uint64_t new_member_id(dcs_server *s, const char *url)
{
    for (int salt = 0;; salt++) {
        char t[64];
        snprintf(t, sizeof(t), "added-%lld-%d", (long long)dcs_wall_ms(), salt);
        uint64_t id = dcs_member_id(t, url, s->f.token);
        bool used = member_index(s, id) >= 0;
        for (size_t i = 0; i < s->st->nmembers; i++)
            if (s->st->members[i].id == id)
                used = true;
        if (!used)
            return id;
    }
}

bool dcs_members_http(dcs_server *s, http_conn *c, const http_request *req)
{
    const char *path = req->path, *op = NULL;
    bool v2 = false;
    uint64_t id = 0;
    if (strncmp(path, "/v3/cluster/member/", 19) == 0)
        op = path + 19;
    else if (strncmp(path, "/v3beta/cluster/member/", 23) == 0)
        op = path + 23;
    else if (strncmp(path, "/v2/members", 11) == 0 && (path[11] == 0 || path[11] == '/')) {
        v2 = true;
        const char *rest = path[11] ? path + 12 : "";
        if (strcmp(req->method, "POST") == 0 && !*rest) {
            op = "add";
        } else if ((strcmp(req->method, "DELETE") == 0 || strcmp(req->method, "PUT") == 0) &&
                   *rest) {
            char *end;
            errno = 0;
            id = strtoull(rest, &end, 16);
            if (*end || errno || !id) {
                answer_err(s, c, true, 3, "invalid member ID");
                return true;
            }
            op = req->method[0] == 'D' ? "remove" : "update";
        } else {
            answer_err(s, c, true, 3, "method not allowed");
            return true;
        }
    } else {
        return false;
    }
    json_error_t je;
    json_t *o = req->body_len ? json_loadb(req->body, req->body_len, 0, &je) : json_object();
    if (!json_is_object(o)) {
        json_decref(o);
        answer_err(s, c, v2, 3, "member: request body must be a JSON object");
        return true;
    }
    char err[300] = "";
    dcs_url u;
    if (strcmp(op, "add") == 0) {
        const char *url = json_peer_url(o, &u, err, sizeof(err));
        if (!url) {
            answer_err(s, c, v2, 3, err);
        } else if (json_is_true(json_object_get(o, "isLearner"))) {
            answer_err(s, c, v2, 12, "appliance-dcs: learner members are not supported");
        } else if (url_in_use(s, url, 0)) {
            answer_err(s, c, v2, 9, "etcdserver: Peer URLs already exists");
        } else {
            start_change(s, c, v2, STORE_MEMBER_ADD, new_member_id(s, url), url);
        }
    } else if (strcmp(op, "remove") == 0 || strcmp(op, "update") == 0 ||
               strcmp(op, "promote") == 0) {
        if (!v2 && !json_id(o, &id)) {
            answer_err(s, c, v2, 3, "member: ID: want a member ID");
        } else if (member_index(s, id) < 0) {
            if (v2) {
                char m[64];
                snprintf(m, sizeof(m), "No such member: %" PRIx64, id);
                answer_err(s, c, true, 5, m);
            } else {
                answer_err(s, c, false, 5, "etcdserver: member not found");
            }
        } else if (strcmp(op, "promote") == 0) {
            answer_err(s, c, v2, 9, "etcdserver: can only promote a learner member");
        } else if (strcmp(op, "remove") == 0) {
            start_change(s, c, v2, STORE_MEMBER_REMOVE, id, NULL);
        } else {
            const char *url = json_peer_url(o, &u, err, sizeof(err));
            if (!url)
                answer_err(s, c, v2, 3, err);
            else if (url_in_use(s, url, id))
                answer_err(s, c, v2, 9, "etcdserver: Peer URLs already exists");
            else
                start_change(s, c, v2, STORE_MEMBER_UPDATE, id, url);
        }
    } else {
        answer_err(s, c, v2, 12, "Not Implemented");
    }
    json_decref(o);
    return true;
}

void dcs_members_answer(preq *p, const store_result *res)
{
    dcs_server *s = p->s;
    dcs_members_sync(s);
    http_conn *c = p->conn;
    if (c)
        http_conn_on_close(c, NULL, NULL);
    p->conn = NULL;
    if (c && res->err != MVCC_OK) {
        answer_err(s, c, p->member_v2, 13, "etcdserver: member record not applied");
    } else if (c) {
        v3_member m[DCS_MAX_MEMBERS];
        const char *purls[DCS_MAX_MEMBERS][1];
        const char *curls[DCS_MAX_MEMBERS][DCS_MAX_URLS];
        size_t n = dcs_member_view(s, m, purls, curls);
        const v3_member *changed = NULL;
        for (size_t i = 0; i < n; i++)
            if (m[i].id == p->member_id && p->member_op == STORE_MEMBER_ADD)
                changed = &m[i];
        jw w;
        jw_init(&w, JSON_MAX);
        if (p->member_v2 && p->member_op != STORE_MEMBER_ADD) {
            http_respond(c, 204, "application/json", "", 0);
        } else if (p->member_v2) {
            char hex[17];
            snprintf(hex, sizeof(hex), "%" PRIx64, p->member_id);
            jw_obj(&w);
            jw_key(&w, "id");
            jw_cstr(&w, hex);
            jw_key(&w, "name");
            jw_cstr(&w, "");
            jw_key(&w, "peerURLs");
            jw_arr(&w);
            if (changed)
                jw_cstr(&w, changed->peer_urls[0]);
            jw_arr_end(&w);
            jw_key(&w, "clientURLs");
            jw_arr(&w);
            jw_arr_end(&w);
            jw_obj_end(&w);
            dcs_respond_jw(c, 201, NULL, &w);
        } else {
            v3_header h;
            dcs_header(s, &h);
            h.revision = 0;
            v3_member added;
            if (changed) { /* a new member has no name and no client URLs yet (as etcd) */
                added = *changed;
                added.name = "";
                added.nclient = 0;
            }
            v3_render_member_change(&w, &h, changed ? &added : NULL, m, n);
            dcs_respond_jw(c, 200, NULL, &w);
        }
        jw_free(&w);
    }
    s->proposals_ok++;
    preq_free(p);
}
