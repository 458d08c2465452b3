/* Cluster, maintenance status, version and health JSON. */
#include "dcs/v3_cluster.h"

static void u64_field(jw *w, const char *name, uint64_t v)
{
    if (v) {
        jw_key(w, name);
        jw_u64_quoted(w, v);
    }
}

static void header(jw *w, const v3_header *h)
{
    /* same rules as v3_response.c: zero fields omitted */
    jw_key(w, "header");
    jw_obj(w);
    u64_field(w, "cluster_id", h->cluster_id);
    u64_field(w, "member_id", h->member_id);
    if (h->revision) {
        jw_key(w, "revision");
        jw_i64_quoted(w, h->revision);
    }
    u64_field(w, "raft_term", h->raft_term);
    jw_obj_end(w);
}

static void str_list(jw *w, const char *name, const char *const *v, size_t n)
{
    if (!n)
        return;
    jw_key(w, name);
    jw_arr(w);
    for (size_t i = 0; i < n; i++)
        jw_cstr(w, v[i]);
    jw_arr_end(w);
}

static void member_obj(jw *w, const v3_member *m)
{
    jw_obj(w);
    u64_field(w, "ID", m->id);
    if (m->name && *m->name) {
        jw_key(w, "name");
        jw_cstr(w, m->name);
    }
    str_list(w, "peerURLs", m->peer_urls, m->npeer);
    str_list(w, "clientURLs", m->client_urls, m->nclient);
    if (m->is_learner) {
        jw_key(w, "isLearner");
        jw_bool(w, true);
    }
    jw_obj_end(w);
}

void v3_render_member_change(jw *w, const v3_header *h, const v3_member *changed,
                             const v3_member *m, size_t n)
{
    jw_obj(w);
    header(w, h);
    if (changed) {
        jw_key(w, "member");
        member_obj(w, changed);
    }
    if (n) {
        jw_key(w, "members");
        jw_arr(w);
        for (size_t i = 0; i < n; i++)
            member_obj(w, &m[i]);
        jw_arr_end(w);
    }
    jw_obj_end(w);
}

void v3_render_member_list(jw *w, const v3_header *h, const v3_member *m, size_t n)
{
    v3_render_member_change(w, h, NULL, m, n);
}

void v3_render_status(jw *w, const v3_header *h, const v3_status *st)
{
    jw_obj(w);
    header(w, h);
    if (st->version && *st->version) {
        jw_key(w, "version");
        jw_cstr(w, st->version);
    }
    if (st->db_size) {
        jw_key(w, "dbSize");
        jw_i64_quoted(w, st->db_size);
    }
    u64_field(w, "leader", st->leader);
    u64_field(w, "raftIndex", st->raft_index);
    u64_field(w, "raftTerm", st->raft_term);
    u64_field(w, "raftAppliedIndex", st->raft_applied_index);
    str_list(w, "errors", st->errors, st->nerrors);
    if (st->db_size_in_use) {
        jw_key(w, "dbSizeInUse");
        jw_i64_quoted(w, st->db_size_in_use);
    }
    if (st->is_learner) {
        jw_key(w, "isLearner");
        jw_bool(w, true);
    }
    jw_obj_end(w);
}

void v3_render_version(jw *w, const char *server, const char *cluster)
{
    jw_obj(w);
    jw_key(w, "etcdserver");
    jw_cstr(w, server);
    jw_key(w, "etcdcluster");
    jw_cstr(w, cluster);
    jw_obj_end(w);
}

void v3_render_health(jw *w, bool healthy)
{
    jw_obj(w);
    jw_key(w, "health");
    jw_cstr(w, healthy ? "true" : "false");
    jw_obj_end(w);
}
