/* appliance-dcs client API on lib/http: the etcd v3 JSON gateway (writes answered after
 * apply, linearizable reads after ReadIndex, watches as chunked streams), the v2 keys API
 * (with --enable-v2), /version, /health, /metrics, member list, maintenance status. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dcs/grpc_front.h"
#include "dcs/server_internal.h"
#include "dcs/v2_codec.h"
#include "dcs/v3_cluster.h"
#include "log.h"

#define JSON_MAX (64u << 20)

static void respond_text(http_conn *c, int status, const char *text);

void dcs_respond_jw(http_conn *c, int status, const char *extra, jw *w)
{
    size_t n = 0;
    char *out = jw_take(w, &n);
    if (!out) {
        static const char e[] = "{\"error\":\"response too large\",\"code\":8,\"message\":"
                                "\"response too large\"}";
        http_respond(c, 500, "application/json", e, sizeof(e) - 1);
        return;
    }
    http_respond_ex(c, status, extra, "application/json", out, n);
    free(out);
}

static void respond_jw(http_conn *c, int status, const char *extra, jw *w)
{
    dcs_respond_jw(c, status, extra, w);
}

/* Detaches p from its connection before answering: an answer with "Connection: close"
 * closes the connection, whose on_close must not see p any more. */
static http_conn *take_conn(preq *p)
{
    http_conn *c = p->conn;
    if (c)
        http_conn_on_close(c, NULL, NULL);
    p->conn = NULL;
    return c;
}

static void v2_headers(dcs_server *s, uint64_t index, char *out, size_t n)
{
    snprintf(out, n,
             "X-Etcd-Cluster-Id: %" PRIx64 "\r\nX-Etcd-Index: %" PRIu64 "\r\nX-Raft-Index: %" PRIu64
             "\r\nX-Raft-Term: %" PRIu64 "\r\n",
             s->f.cluster_id, index, s->applied, raft_term(s->r));
}

void dcs_answer_error(preq *p, int grpc_code, const char *msg)
{
    if (p->sink) {
        p->sink->error(p, grpc_code, msg);
        return;
    }
    http_conn *c = take_conn(p);
    if (c) {
        jw w;
        jw_init(&w, JSON_MAX);
        if (p->kind == PQ_V2_WRITE || p->kind == PQ_V2_READ) {
            /* etcd v2: 300 Raft Internal Error (HTTP 500); python-etcd and Patroni retry */
            v2_result r;
            memset(&r, 0, sizeof(r));
            r.err = V2_ERR_RAFT_INTERNAL;
            r.http_status = 500;
            r.cause = msg;
            r.index = v2_store_index(p->s->st->v2);
            v2_render_result(&w, &r);
            char hdr[256];
            v2_headers(p->s, r.index, hdr, sizeof(hdr));
            respond_jw(c, 500, hdr, &w);
        } else {
            v3_error e;
            e.grpc_code = grpc_code;
            snprintf(e.message, sizeof(e.message), "%s", msg);
            v3_render_error(&w, &e);
            respond_jw(c, v3_error_http_status(&e), NULL, &w);
        }
    }
    preq_free(p);
}

void dcs_answer_applied(preq *p, const store_result *res)
{
    if (p->sink) {
        p->sink->applied(p, res);
        return;
    }
    if (p->kind == PQ_MEMBER) {
        dcs_members_answer(p, res);
        return;
    }
    dcs_server *s = p->s;
    http_conn *c = take_conn(p);
    if (c) {
        jw w;
        jw_init(&w, JSON_MAX);
        int status = 200;
        if (p->kind == PQ_V2_WRITE) {
            v2_render_result(&w, &res->v2);
            status = res->v2.http_status ? res->v2.http_status : 200;
            char hdr[256];
            v2_headers(s, res->v2.index, hdr, sizeof(hdr));
            respond_jw(c, status, hdr, &w);
        } else {
            v3_header h;
            dcs_header(s, &h);
            v3_render_result(&p->v3, res, &h, &w, &status);
            respond_jw(c, status, NULL, &w);
        }
    }
    s->proposals_ok++;
    preq_free(p);
}

static void answer_v2_get(dcs_server *s, http_conn *c, preq *p)
{
    v2_result res;
    memset(&res, 0, sizeof(res));
    jw w;
    jw_init(&w, JSON_MAX);
    char hdr[256];
    if (v2_store_get(s->st->v2, &p->v2, dcs_wall_ms(), &p->arena, &res) != 0 && !res.http_status) {
        jw_free(&w);
        respond_text(c, 500, "v2 read failed\n");
        return;
    }
    v2_render_result(&w, &res);
    v2_headers(s, res.index, hdr, sizeof(hdr));
    respond_jw(c, res.http_status ? res.http_status : 200, hdr, &w);
}

void dcs_answer_read(preq *p)
{
    if (p->sink) {
        p->sink->read(p);
        return;
    }
    dcs_server *s = p->s;
    http_conn *c = take_conn(p);
    if (c && p->kind == PQ_V2_READ) {
        answer_v2_get(s, c, p);
    } else if (c) {
        jw w;
        jw_init(&w, JSON_MAX);
        int status = 200;
        v3_header h;
        dcs_header(s, &h);
        mvcc_arena a;
        mvcc_arena_init(&a, 64u << 20);
        v3_execute_read(s->st, &p->v3, &h, dcs_now_ms(s), &a, &w, &status);
        respond_jw(c, status, NULL, &w);
        mvcc_arena_free(&a);
    }
    preq_free(p);
}

void dcs_answer_keepalive(preq *p, int64_t ttl)
{
    if (p->sink) {
        p->sink->keepalive(p, ttl);
        return;
    }
    dcs_server *s = p->s;
    http_conn *c = take_conn(p);
    if (c) {
        jw w;
        jw_init(&w, JSON_MAX);
        v3_header h;
        dcs_header(s, &h);
        v3_render_lease_keepalive(&w, &h, p->v3.id, ttl);
        respond_jw(c, 200, NULL, &w);
    }
    preq_free(p);
}

static void preq_conn_closed(http_conn *c, void *arg)
{
    preq *p = arg;
    p->conn = NULL; /* the entry still applies; nobody to tell */
}

void dcs_preq_attach(preq *p, http_conn *c)
{
    http_conn_on_close(c, preq_conn_closed, p);
}

/* ---- watch streams ---- */
static void watch_free(watch_conn *wc)
{
    dcs_server *s = wc->s;
    if (wc->prev)
        wc->prev->next = wc->next;
    else
        s->watches = wc->next;
    if (wc->next)
        wc->next->prev = wc->prev;
    if (wc->ws)
        watch_stream_free(wc->ws);
    free(wc);
}

static void watch_conn_closed(http_conn *c, void *arg)
{
    watch_free(arg);
}

static bool watch_alive(dcs_server *s, const watch_conn *wc)
{
    for (watch_conn *x = s->watches; x; x = x->next)
        if (x == wc)
            return true;
    return false;
}

static void watch_flush(dcs_server *s, watch_conn *wc);

static void watch_flush_cb(evloop *loop, void *arg)
{
    dcs_server *s = arg;
    s->flush_timer = NULL;
    for (watch_conn *wc = s->watches, *nx; wc; wc = nx) {
        nx = wc->next;
        if (wc->flush_scheduled) {
            wc->flush_scheduled = false;
            watch_flush(s, wc);
            /* watch_flush may have freed wc; nx was taken before */
        }
    }
}

static void watch_schedule(watch_conn *wc, int delay_ms)
{
    dcs_server *s = wc->s;
    wc->flush_scheduled = true;
    if (!s->flush_timer)
        s->flush_timer = evloop_timer_start(s->loop, (uint64_t)delay_ms, watch_flush_cb, s);
}

static void watch_notify(void *arg)
{
    watch_schedule(arg, 0);
}

static void watch_flush(dcs_server *s, watch_conn *wc)
{
    for (int n = 0; n < 256; n++) { /* bounded per turn: share the loop */
        v3_watch_resp r;
        int64_t hrev;
        if (!watch_stream_next(wc->ws, &r, &hrev)) {
            if (watch_stream_busy(wc->ws))
                watch_schedule(wc, 1);
            return;
        }
        v3_header h;
        dcs_header(s, &h);
        h.revision = hrev;
        jw w;
        jw_init(&w, JSON_MAX);
        v3_render_watch(&w, &h, &r);
        jw_raw(&w, "\n", 1); /* grpc-gateway's stream delimiter */
        size_t len;
        char *out = jw_take(&w, &len);
        int rc = out ? http_stream_write(wc->conn, out, len) : -1;
        free(out);
        if (rc != 0) {
            /* client gone or too slow: the stream is closed (on_close may have run) */
            if (watch_alive(s, wc)) {
                http_conn_on_close(wc->conn, NULL, NULL);
                watch_free(wc);
            }
            return;
        }
    }
    watch_schedule(wc, 0);
}

static void start_watch(dcs_server *s, http_conn *c, const v3_request *req)
{
    watch_conn *wc = calloc(1, sizeof(*wc));
    if (!wc) {
        http_respond(c, 503, "text/plain", "out of memory\n", 14);
        return;
    }
    wc->s = s;
    wc->conn = c;
    wc->ws = watch_stream_new(s->hub, watch_notify, wc);
    if (!wc->ws || http_stream_begin(c, 200, "application/json") != 0) {
        if (wc->ws)
            watch_stream_free(wc->ws);
        free(wc);
        return;
    }
    wc->next = s->watches;
    if (s->watches)
        s->watches->prev = wc;
    s->watches = wc;
    http_conn_on_close(c, watch_conn_closed, wc);
    watch_stream_request(wc->ws, req, dcs_now_ms(s));
    watch_schedule(wc, 0);
}

/* ---- v2 long polls ---- */
static void v2wait_free(v2_wait *vw)
{
    dcs_server *s = vw->s;
    if (vw->prev)
        vw->prev->next = vw->next;
    else
        s->v2waits = vw->next;
    if (vw->next)
        vw->next->prev = vw->prev;
    s->nv2waits--;
    mvcc_arena_free(&vw->arena);
    free(vw);
}

static void v2wait_closed(http_conn *c, void *arg)
{
    v2_wait *vw = arg;
    v2_waiters_remove(vw->s->v2w, vw->handle);
    v2wait_free(vw);
}

static void v2wait_fire(void *arg, const v2_result *ev)
{
    v2_wait *vw = arg;
    dcs_server *s = vw->s;
    http_conn *c = vw->conn;
    http_conn_on_close(c, NULL, NULL);
    jw w;
    jw_init(&w, JSON_MAX);
    v2_render_result(&w, ev);
    char hdr[256];
    v2_headers(s, ev->index, hdr, sizeof(hdr));
    v2wait_free(vw); /* the waiter table dropped it already (one-shot) */
    respond_jw(c, 200, hdr, &w);
}

void dcs_http_store_reset(dcs_server *s)
{
    grpc_front_store_reset(s->grpc);
    watch_conn *wc = s->watches;
    s->watches = NULL;
    while (wc) {
        watch_conn *nx = wc->next;
        http_conn *c = wc->conn;
        http_conn_on_close(c, NULL, NULL);
        watch_stream_free(wc->ws);
        free(wc);
        http_stream_end(c); /* the client re-watches (Patroni and etcd clients do) */
        wc = nx;
    }
    v2_wait *vw = s->v2waits;
    s->v2waits = NULL;
    s->nv2waits = 0;
    while (vw) {
        v2_wait *nx = vw->next;
        http_conn *c = vw->conn;
        http_conn_on_close(c, NULL, NULL);
        mvcc_arena_free(&vw->arena);
        free(vw);
        char hdr[256];
        v2_headers(s, v2_store_index(s->st->v2), hdr, sizeof(hdr));
        /* etcd's answer to a wait that ends without an event: empty 200; clients retry */
        http_respond_ex(c, 200, hdr, "application/json", "", 0);
        vw = nx;
    }
}

/* ---- request handlers ---- */
static void respond_text(http_conn *c, int status, const char *text)
{
    http_respond(c, status, "text/plain; charset=utf-8", text, strlen(text));
}

static void too_many(http_conn *c)
{
    static const char e[] = "{\"error\":\"etcdserver: too many requests\",\"code\":14,"
                            "\"message\":\"etcdserver: too many requests\"}";
    http_respond(c, 503, "application/json", e, sizeof(e) - 1);
}

static void handle_v3(dcs_server *s, http_conn *c, const http_request *req, int ep)
{
    preq *p = preq_new(s, c, PQ_V3_WRITE);
    if (!p) {
        too_many(c);
        return;
    }
    v3_error err;
    if (v3_parse_request(ep, req->body, req->body_len, &p->arena, &p->v3, &err) != 0) {
        jw w;
        jw_init(&w, JSON_MAX);
        v3_render_error(&w, &err);
        respond_jw(c, v3_error_http_status(&err), NULL, &w);
        p->conn = NULL;
        preq_free(p);
        return;
    }
    if (ep == V3_WATCH) {
        v3_request wr = p->v3; /* start_watch copies what it needs from the arena */
        start_watch(s, c, &wr);
        p->conn = NULL;
        preq_free(p);
        return;
    }
    http_conn_on_close(c, preq_conn_closed, p);
    store_cmd cmd;
    if (v3_request_command(&p->v3, &cmd)) {
        uint8_t *buf;
        size_t len;
        if (store_cmd_encode(&cmd, (1u << 20) + 65536, &buf, &len) != 0) {
            dcs_answer_error(p, 8, "etcdserver: request is too large");
            return;
        }
        dcs_submit(s, p, buf, len);
        return;
    }
    p->kind = PQ_V3_READ;
    if (ep == V3_LEASE_KEEPALIVE && raft_role(s->r) != RAFT_LEADER) {
        p->kind = PQ_KEEPALIVE; /* leases live on the leader (etcd forwards too) */
        dcs_forward_keepalive(s, p);
        return;
    }
    if (ep == V3_LEASE_TIMETOLIVE && raft_role(s->r) != RAFT_LEADER) {
        dcs_forward_timetolive(s, p);
        return;
    }
    if (ep == V3_KV_RANGE && !p->v3.op.u.range.serializable) {
        dcs_read_barrier(s, p);
        return;
    }
    dcs_answer_read(p);
}

size_t dcs_member_view(dcs_server *s, v3_member *m, const char *purls[][1],
                       const char *curls[][DCS_MAX_URLS])
{
    size_t n = s->f.nmembers;
    for (size_t i = 0; i < n; i++) {
        m[i].id = s->f.members[i].id;
        purls[i][0] = s->f.members[i].peer.text;
        m[i].peer_urls = purls[i];
        m[i].npeer = 1;
        m[i].is_learner = false;
        if (i == s->f.self) {
            m[i].name = s->f.name;
            for (size_t k = 0; k < s->f.nadvertise_client; k++)
                curls[i][k] = s->f.advertise_client[k].text;
            m[i].nclient = s->f.nadvertise_client;
        } else {
            m[i].name = s->peers[i].name; /* "" until the peer told us (as etcd) */
            for (size_t k = 0; k < s->peers[i].nclient; k++)
                curls[i][k] = s->peers[i].client_urls[k];
            m[i].nclient = s->peers[i].nclient;
        }
        m[i].client_urls = curls[i];
    }
    return n;
}

static void handle_members(dcs_server *s, http_conn *c, int v2)
{
    v3_member m[DCS_MAX_MEMBERS];
    const char *purls[DCS_MAX_MEMBERS][1];
    const char *curls[DCS_MAX_MEMBERS][DCS_MAX_URLS];
    size_t n = dcs_member_view(s, m, purls, curls);
    jw w;
    jw_init(&w, JSON_MAX);
    if (v2) {
        jw_obj(&w);
        jw_key(&w, "members");
        jw_arr(&w);
        for (size_t i = 0; i < n; i++) {
            char id[17];
            snprintf(id, sizeof(id), "%" PRIx64, m[i].id);
            jw_obj(&w);
            jw_key(&w, "id");
            jw_cstr(&w, id);
            jw_key(&w, "name");
            jw_cstr(&w, m[i].name);
            jw_key(&w, "peerURLs");
            jw_arr(&w);
            jw_cstr(&w, m[i].peer_urls[0]);
            jw_arr_end(&w);
            jw_key(&w, "clientURLs");
            jw_arr(&w);
            for (size_t k = 0; k < m[i].nclient; k++)
                jw_cstr(&w, m[i].client_urls[k]);
            jw_arr_end(&w);
            jw_obj_end(&w);
        }
        jw_arr_end(&w);
        jw_obj_end(&w);
    } else {
        v3_header h;
        dcs_header(s, &h);
        h.revision = 0;
        v3_render_member_list(&w, &h, m, n);
    }
    respond_jw(c, 200, NULL, &w);
}

static void handle_machines(dcs_server *s, http_conn *c)
{
    char out[4096];
    size_t off = 0;
    out[0] = 0;
    for (size_t i = 0; i < s->f.nmembers; i++) {
        size_t nc = i == s->f.self ? s->f.nadvertise_client : s->peers[i].nclient;
        for (size_t k = 0; k < nc; k++) {
            const char *u =
                i == s->f.self ? s->f.advertise_client[k].text : s->peers[i].client_urls[k];
            int n = snprintf(out + off, sizeof(out) - off, "%s%s", off ? ", " : "", u);
            if (n < 0 || (size_t)n >= sizeof(out) - off)
                break;
            off += (size_t)n;
        }
    }
    http_respond(c, 200, "text/plain; charset=utf-8", out, off);
}

void dcs_status_fill(dcs_server *s, v3_status *st)
{
    static const char *const noleader[] = {"etcdserver: no leader"};
    memset(st, 0, sizeof(*st));
    st->version = DCS_SERVER_VERSION;
    st->db_size = (int64_t)mvcc_bytes(s->st->kv);
    st->db_size_in_use = st->db_size;
    st->leader = raft_leader(s->r);
    st->raft_index = raft_last_index(s->r);
    st->raft_term = raft_term(s->r);
    st->raft_applied_index = s->applied;
    if (!st->leader) {
        st->errors = noleader;
        st->nerrors = 1;
    }
}

static void handle_status(dcs_server *s, http_conn *c)
{
    v3_status st;
    dcs_status_fill(s, &st);
    v3_header h;
    dcs_header(s, &h);
    jw w;
    jw_init(&w, JSON_MAX);
    v3_render_status(&w, &h, &st);
    respond_jw(c, 200, NULL, &w);
}

static long rss_kb(void)
{
    FILE *fp = fopen("/proc/self/statm", "r");
    char line[128];
    long rss = 0;
    if (!fp)
        return 0;
    if (fgets(line, sizeof(line), fp)) {
        char *sp = strchr(line, ' ');
        rss = sp ? strtol(sp + 1, NULL, 10) : 0;
    }
    fclose(fp);
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static void handle_metrics(dcs_server *s, http_conn *c)
{
    char out[4096];
    int n = snprintf(
        out, sizeof(out),
        "# TYPE etcd_server_has_leader gauge\netcd_server_has_leader %d\n"
        "# TYPE etcd_server_is_leader gauge\netcd_server_is_leader %d\n"
        "# TYPE etcd_server_leader_changes_seen_total counter\n"
        "etcd_server_leader_changes_seen_total %" PRIu64 "\n"
        "# TYPE etcd_server_proposals_applied_total gauge\n"
        "etcd_server_proposals_applied_total %" PRIu64 "\n"
        "# TYPE etcd_server_proposals_committed_total gauge\n"
        "etcd_server_proposals_committed_total %" PRIu64 "\n"
        "# TYPE etcd_server_proposals_failed_total counter\n"
        "etcd_server_proposals_failed_total %" PRIu64 "\n"
        "# TYPE etcd_server_proposals_pending gauge\netcd_server_proposals_pending %zu\n"
        "# TYPE etcd_mvcc_db_total_size_in_bytes gauge\n"
        "etcd_mvcc_db_total_size_in_bytes %zu\n"
        "# TYPE etcd_debugging_mvcc_keys_total gauge\netcd_debugging_mvcc_keys_total %zu\n"
        "# TYPE etcd_debugging_mvcc_watcher_total gauge\n"
        "etcd_debugging_mvcc_watcher_total %zu\n"
        "# TYPE appliance_dcs_snapshots_total counter\nappliance_dcs_snapshots_total %" PRIu64 "\n"
        "# TYPE appliance_dcs_snapshots_installed_total counter\n"
        "appliance_dcs_snapshots_installed_total %" PRIu64 "\n"
        "# TYPE appliance_dcs_forwarded_total counter\nappliance_dcs_forwarded_total %" PRIu64 "\n"
        "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %ld\n",
        raft_leader(s->r) != 0, raft_role(s->r) == RAFT_LEADER, s->leader_changes, s->applied,
        raft_commit_index(s->r), s->proposals_failed, s->npending, mvcc_bytes(s->st->kv),
        mvcc_key_count(s->st->kv), watch_hub_watchers(s->hub), s->snapshots, s->snapshots_installed,
        s->forwarded, rss_kb() * 1024);
    const char *h = "etcd_disk_wal_fsync_duration_seconds";
    if (n > 0 && (size_t)n < sizeof(out))
        n += snprintf(out + n, sizeof(out) - (size_t)n, "# TYPE %s histogram\n", h);
    for (int i = 0; i <= DCS_FSYNC_BUCKETS && n > 0 && (size_t)n < sizeof(out); i++) {
        if (i < DCS_FSYNC_BUCKETS)
            n += snprintf(out + n, sizeof(out) - (size_t)n, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", h,
                          0.001 * (double)(1u << i), s->fsync_hist[i]);
        else
            n += snprintf(out + n, sizeof(out) - (size_t)n,
                          "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n%s_sum %.6f\n%s_count %" PRIu64 "\n",
                          h, s->fsync_count, h, (double)s->fsync_sum_us / 1e6, h, s->fsync_count);
    }
    http_respond(c, 200, "text/plain; version=0.0.4", out,
                 n > 0 && (size_t)n < sizeof(out) ? (size_t)n : 0);
}

static void handle_v2_keys(dcs_server *s, http_conn *c, const http_request *req)
{
    preq *p = preq_new(s, c, PQ_V2_WRITE);
    if (!p) {
        too_many(c);
        return;
    }
    v2_result res;
    int64_t wall = dcs_wall_ms();
    char hdr[256];
    if (v2_parse_request(req->method, req->path, req->query, req->body, req->body_len, wall,
                         &p->arena, &p->v2, &res) != 0) {
        jw w;
        jw_init(&w, JSON_MAX);
        v2_render_result(&w, &res);
        v2_headers(s, res.index, hdr, sizeof(hdr));
        respond_jw(c, res.http_status ? res.http_status : 400, hdr, &w);
        p->conn = NULL;
        preq_free(p);
        return;
    }
    if (p->v2.method != V2_GET) {
        store_cmd cmd;
        memset(&cmd, 0, sizeof(cmd));
        cmd.type = STORE_CMD_V2;
        cmd.v2 = p->v2;
        uint8_t *buf;
        size_t len;
        http_conn_on_close(c, preq_conn_closed, p);
        if (store_cmd_encode(&cmd, (1u << 20) + 65536, &buf, &len) != 0) {
            dcs_answer_error(p, 8, "request is too large");
            return;
        }
        dcs_submit(s, p, buf, len);
        return;
    }
    /* GET ?quorum=true (not a long poll): linearizable, after a ReadIndex barrier, as
     * etcd; otherwise served from the local store */
    char qv[8];
    if (!p->v2.wait && http_query_param(req, "quorum", qv, sizeof(qv)) >= 0 &&
        strcmp(qv, "true") == 0) {
        p->kind = PQ_V2_READ;
        http_conn_on_close(c, preq_conn_closed, p);
        dcs_read_barrier(s, p);
        return;
    }
    if (v2_store_get(s->st->v2, &p->v2, wall, &p->arena, &res) != 0 && !res.http_status) {
        respond_text(c, 500, "v2 read failed\n");
        p->conn = NULL;
        preq_free(p);
        return;
    }
    if (res.pending) {
        v2_wait *vw = calloc(1, sizeof(*vw));
        if (vw) {
            vw->s = s;
            vw->conn = c;
            mvcc_arena_init(&vw->arena, 0);
            const char *key = mvcc_arena_dup(&vw->arena, p->v2.key, p->v2.key_len);
            vw->handle = key ? v2_waiters_add(s->v2w, key, p->v2.recursive, p->v2.wait_index,
                                              v2wait_fire, vw)
                             : 0;
        }
        if (!vw || !vw->handle) {
            if (vw) {
                mvcc_arena_free(&vw->arena);
                free(vw);
            }
            v2_headers(s, res.index, hdr, sizeof(hdr));
            http_respond_ex(c, 200, hdr, "application/json", "", 0); /* client retries */
        } else {
            vw->next = s->v2waits;
            if (s->v2waits)
                s->v2waits->prev = vw;
            s->v2waits = vw;
            s->nv2waits++;
            http_conn_on_close(c, v2wait_closed, vw);
            /* etcd sends the headers of a long poll at once (X-Etcd-Index = index when the
             * watch started); we answer headers and body together when the event comes */
        }
        p->conn = NULL;
        preq_free(p);
        return;
    }
    jw w;
    jw_init(&w, JSON_MAX);
    v2_render_result(&w, &res);
    v2_headers(s, res.index, hdr, sizeof(hdr));
    respond_jw(c, res.http_status ? res.http_status : 200, hdr, &w);
    p->conn = NULL;
    preq_free(p);
}

static void handler(http_conn *c, const http_request *req, void *arg)
{
    dcs_server *s = arg;
    const char *path = req->path;
    if (strcmp(path, "/version") == 0) {
        jw w;
        jw_init(&w, 4096);
        v3_render_version(&w, DCS_SERVER_VERSION, DCS_CLUSTER_VERSION);
        respond_jw(c, 200, NULL, &w);
        return;
    }
    if (strcmp(path, "/health") == 0) {
        jw w;
        jw_init(&w, 4096);
        bool ok = raft_leader(s->r) != 0;
        v3_render_health(&w, ok);
        respond_jw(c, ok ? 200 : 503, NULL, &w);
        return;
    }
    if (strcmp(path, "/metrics") == 0) {
        handle_metrics(s, c);
        return;
    }
    if (strncmp(path, "/v3/", 4) == 0 || strncmp(path, "/v3beta/", 8) == 0) {
        const char *rest = strchr(path + 1, '/');
        if (strcmp(req->method, "POST") != 0 && strcmp(req->method, "PUT") != 0) {
            respond_text(c, 405, "Method Not Allowed\n");
            return;
        }
        if (strcmp(rest, "/cluster/member/list") == 0) {
            handle_members(s, c, 0);
            return;
        }
        if (dcs_members_http(s, c, req))
            return;
        if (strcmp(rest, "/maintenance/status") == 0) {
            handle_status(s, c);
            return;
        }
        int ep = v3_endpoint_of(path);
        if (ep) {
            handle_v3(s, c, req, ep);
            return;
        }
    }
    if (s->f.enable_v2 && strncmp(path, "/v2/", 4) == 0) {
        if (strcmp(path, "/v2/keys") == 0 || strncmp(path, "/v2/keys/", 9) == 0) {
            handle_v2_keys(s, c, req);
            return;
        }
        if ((strcmp(path, "/v2/members") == 0 || strcmp(path, "/v2/members/") == 0) &&
            strcmp(req->method, "GET") == 0) {
            handle_members(s, c, 1);
            return;
        }
        if (dcs_members_http(s, c, req))
            return;
        if (strcmp(path, "/v2/machines") == 0) {
            handle_machines(s, c);
            return;
        }
    }
    respond_text(c, 404, "404 page not found\n");
}

int dcs_http_start(dcs_server *s, char *err, size_t errlen)
{
    http_limits lim;
    http_limits_default(&lim);
    lim.max_body_bytes = (2u << 20); /* etcd's default max request bytes is 1.5 MiB */
    lim.idle_timeout_ms = 300000;    /* Patroni keeps its connections open between cycles */
    s->http = http_server_new(s->loop, &lim, handler, s);
    if (!s->http) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->grpc = grpc_front_new(s);
    if (!s->grpc) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* one port for both, as etcd: grpc_front hands HTTP/1.1 connections to s->http */
    for (size_t i = 0; i < s->f.nlisten_client; i++)
        if (grpc_front_listen(s->grpc, s->f.listen_client[i].host, s->f.listen_client[i].port) !=
            0) {
            snprintf(err, errlen, "--listen-client-urls %s: %s", s->f.listen_client[i].text,
                     strerror(errno));
            return -1;
        }
    return 0;
}

void dcs_http_stop(dcs_server *s)
{
    if (s->flush_timer) {
        evloop_timer_cancel(s->loop, s->flush_timer);
        s->flush_timer = NULL;
    }
    grpc_front_free(s->grpc); /* its calls answer nobody any more */
    s->grpc = NULL;
    http_server_free(s->http); /* on_close callbacks free watches and v2 waits */
    s->http = NULL;
}
