/* Patroni's REST API on restapi.listen (contracts §4): health endpoints with the reference
 * status codes, /patroni, /cluster, /history, /config, /liveness, /readiness, /metrics,
 * POST /failsafe, /switchover, /restart, /reload. Basic auth on every mutating endpoint
 * when restapi.authentication is configured. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "agent/agent.h"
#include "base64.h"
#include "log.h"

static int running(const agent *a)
{
    return a->pg_running && a->st.valid;
}

json_t *rest_status_json(const agent *a)
{
    json_t *o = json_object();
    json_object_set_new(o, "state", json_string(agent_public_state(a)));
    json_t *dv = diverged_json(a);
    if (dv)
        json_object_set_new(o, "diverged", dv);
    if (running(a)) {
        json_object_set_new(o, "postmaster_start_time", json_string(a->st.start_time));
        json_object_set_new(o, "role", json_string(agent_role(a)));
        json_object_set_new(o, "server_version", json_integer(a->st.server_version));
        if (!a->st.in_recovery) {
            json_object_set_new(o, "xlog",
                                json_pack("{s:I}", "location", (json_int_t)a->st.wal_flush));
        } else {
            json_t *x = json_pack("{s:I,s:I}", "received_location", (json_int_t)a->st.received,
                                  "replayed_location", (json_int_t)a->st.replayed);
            json_object_set_new(x, "replayed_timestamp",
                                a->st.replayed_ts[0] ? json_string(a->st.replayed_ts)
                                                     : json_null());
            json_object_set_new(x, "paused", json_boolean(a->st.replay_paused));
            json_object_set_new(o, "xlog", x);
        }
        if (a->st.timeline)
            json_object_set_new(o, "timeline", json_integer(a->st.timeline));
        if (a->st.in_recovery && strcmp(a->st.receiver_status, "streaming") == 0)
            json_object_set_new(o, "replication_state", json_string("streaming"));
        if (!a->st.in_recovery && json_array_size(a->st.replication))
            json_object_set(o, "replication", a->st.replication);
    } else {
        json_object_set_new(o, "role", json_string(agent_role(a)));
    }
    if (!a->leader[0])
        json_object_set_new(o, "cluster_unlocked", json_true());
    if (a->failsafe_active)
        json_object_set_new(o, "failsafe_mode_is_active", json_true());
    if (a->dyn.pause)
        json_object_set_new(o, "pause", json_true());
    if (a->dcs_last_seen)
        json_object_set_new(o, "dcs_last_seen", json_integer(a->dcs_last_seen));
    if (json_object_size(a->cfg.tags))
        json_object_set(o, "tags", a->cfg.tags);
    if (a->st.sysid[0])
        json_object_set_new(o, "database_system_identifier", json_string(a->st.sysid));
    if (running(a) && a->st.pending_restart) {
        /* Patroni 4's pending_restart_reason: the running value and the configured one */
        json_t *why = json_object();
        const char *k;
        json_t *v;
        json_object_set_new(o, "pending_restart", json_true());
        json_object_foreach(a->st.pending_restart, k, v)
        {
            json_t *want = json_object_get(a->dyn.parameters, k);
            char *w = want ? json_dumps(want, JSON_ENCODE_ANY) : NULL;
            /* a JSON string is shown without its quotes, numbers as they are */
            json_object_set_new(why, k,
                                json_pack("{s:O,s:s}", "old_value", v, "new_value",
                                          json_is_string(want) ? json_string_value(want)
                                          : w                  ? w
                                                               : ""));
            free(w);
        }
        json_object_set_new(o, "pending_restart_reason", why);
    }
    if (running(a) && a->st.in_recovery && sync_is_standby(a))
        json_object_set_new(o, "sync_standby", json_true());
    /* Our addition: why this node did what it did last cycle (e.g. why it did not race). */
    if (a->last_decision.reason[0])
        json_object_set_new(o, "ha_decision", json_string(a->last_decision.reason));
    json_object_set_new(
        o, "patroni",
        json_pack("{s:s,s:s}", "version", AGENT_PATRONI_VERSION, "scope", a->cfg.scope));
    return o;
}

static void send_json(http_conn *c, int code, json_t *o)
{
    char *s = json_dumps(o, 0); /* Patroni: json.dumps default separators ", " ": " */
    json_decref(o);
    http_respond(c, code, "application/json", s ? s : "{}", s ? strlen(s) : 2);
    free(s);
}

static void send_text(http_conn *c, int code, const char *text)
{
    http_respond(c, code, "text/html", text, strlen(text));
}

static int64_t parse_lag(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s)
        return -1;
    while (*end == ' ')
        end++;
    double mul = 1;
    if (strncasecmp(end, "kB", 2) == 0)
        mul = 1024;
    else if (strncasecmp(end, "MB", 2) == 0)
        mul = 1024.0 * 1024;
    else if (strncasecmp(end, "GB", 2) == 0)
        mul = 1024.0 * 1024 * 1024;
    else if (*end)
        return -1;
    return (int64_t)(v * mul);
}

/* Tag filters of the replica checks (Patroni: GET /replica?tag_key=value): every
 * tag_<key>=<value> in the query must equal this member's tag, compared as lower-case text
 * (true/false for booleans); a tag the member does not have never matches. */
static int tags_match(const agent *a, const http_request *r)
{
    const char *q = r->query;
    while (q && *q) {
        size_t len = strcspn(q, "&");
        if (len > 4 && strncmp(q, "tag_", 4) == 0) {
            char name[128], want[256], have[256];
            size_t nl = strcspn(q, "=&");
            if (nl >= sizeof(name))
                return 0;
            memcpy(name, q, nl);
            name[nl] = '\0';
            if (http_query_param(r, name, want, sizeof(want)) < 0)
                return 0;
            json_t *t = json_object_get(a->cfg.tags, name + 4);
            if (json_is_true(t) || json_is_false(t))
                snprintf(have, sizeof(have), "%s", json_is_true(t) ? "true" : "false");
            else if (json_is_integer(t))
                snprintf(have, sizeof(have), "%lld", (long long)json_integer_value(t));
            else if (json_is_string(t))
                snprintf(have, sizeof(have), "%s", json_string_value(t));
            else
                return 0;
            if (strcasecmp(have, want) != 0)
                return 0;
        }
        q += len;
        if (*q == '&')
            q++;
    }
    return 1;
}

/* Health handler: codes per contracts §4.2 and reference rest_status_codes.txt. */
static int health_code(const agent *a, const http_request *r)
{
    const char *p = r->path;
    /* Leader while the lease (or a failsafe confirmation) is still ours: am_leader is
     * cleared by fencing before either could have expired elsewhere. Not tied to dcs_ok:
     * a DCS election makes every call fail for about a second, and answering 503 then
     * made the router close every write session although nothing had changed (found by
     * bench/agent/soak.py). Patroni's rule too: leader until the lock's expiry, or while
     * failsafe is active. */
    int is_leader = a->am_leader || a->failsafe_active;
    int primary_role = running(a) && !a->st.in_recovery;
    int primary_code = is_leader && primary_role ? 200 : 503;
    int leader_code = is_leader ? 200 : 503;
    char lagbuf[64];
    int lagging = 0;
    if (http_query_param(r, "lag", lagbuf, sizeof(lagbuf)) >= 0) {
        int64_t lag = parse_lag(lagbuf);
        if (lag >= 0 && a->st.valid && a->optime > a->st.replayed + lag)
            lagging = 1;
    }
    /* a replica whose WAL went past the leader's fork serves rows the cluster no longer has */
    int replica_ok = !a->cfg.noloadbalance && !lagging && running(a) && a->st.in_recovery &&
                     !a->tlc.diverged && tags_match(a, r);
    if (strstr(p, "standby_leader") || strstr(p, "standby-leader"))
        return 503;
    if (strstr(p, "leader"))
        return leader_code;
    if (strcmp(p, "/") == 0 || strstr(p, "master") || strstr(p, "primary") ||
        strstr(p, "read-write"))
        return primary_code;
    if (strstr(p, "read-only") && !strstr(p, "sync") && !strstr(p, "quorum"))
        return (primary_code == 200 || replica_ok) ? 200 : 503;
    if (strstr(p, "replica"))
        return replica_ok ? 200 : 503;
    if (strstr(p, "health"))
        return running(a) ? 200 : 503;
    /* synchronous mode: the standby the sync key names is "sync", the others "async" */
    int is_sync = sync_is_standby(a);
    if (strstr(p, "read-only-sync") || strstr(p, "read-only-synchronous"))
        return primary_code == 200 || (replica_ok && is_sync) ? 200 : 503;
    if (strstr(p, "async") || strstr(p, "asynchronous"))
        return a->dcs_ok && replica_ok && !is_sync ? 200 : 503;
    if (strstr(p, "sync"))
        return a->dcs_ok && replica_ok && is_sync ? 200 : 503;
    return 503;
}

static int authorized(agent *a, http_conn *c, const http_request *r)
{
    if (!a->cfg.rest_auth.username[0])
        return 1;
    const char *h = http_request_header(r, "Authorization");
    char plain[600], enc[900];
    snprintf(plain, sizeof(plain), "%s:%s", a->cfg.rest_auth.username, a->cfg.rest_auth.password);
    base64_encode(plain, strlen(plain), enc);
    int ok = 0;
    if (h && strncmp(h, "Basic ", 6) == 0) {
        const char *got = h + 6;
        size_t gl = strlen(got), el = strlen(enc);
        unsigned diff = (unsigned)(gl ^ el);
        for (size_t i = 0; i < el; i++) /* constant time over the expected length */
            diff |= (unsigned)(got[i < gl ? i : 0] ^ enc[i]);
        ok = diff == 0;
    }
    if (!ok)
        http_respond_ex(c, 401, "WWW-Authenticate: Basic realm=\"Patroni\"\r\n", "text/html",
                        h ? "not authenticated" : "no auth header received", h ? 17 : 23);
    return ok;
}

static json_t *cluster_json(agent *a)
{
    json_t *members = json_array();
    const char *name;
    json_t *m;
    /* jansson iterates in insertion order; Patroni sorts by name */
    const char *names[64];
    size_t n = 0;
    json_object_foreach(a->members, name, m)
    {
        if (n < 64)
            names[n++] = name;
    }
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            const char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    for (size_t i = 0; i < n; i++) {
        m = json_object_get(a->members, names[i]);
        int leader = strcmp(names[i], a->leader) == 0;
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(names[i]));
        int sync = !leader && a->dyn.synchronous_mode && a->sync_present &&
                   strcmp(a->sync_standby, names[i]) == 0;
        json_object_set_new(o, "role",
                            json_string(leader ? "leader"
                                        : sync ? "sync_standby"
                                               : "replica"));
        const char *rs = json_string_value(json_object_get(m, "replication_state"));
        json_object_set(o, "state",
                        !leader && rs ? json_object_get(m, "replication_state")
                                      : json_object_get(m, "state"));
        json_object_set(o, "api_url", json_object_get(m, "api_url"));
        const char *url = json_string_value(json_object_get(m, "conn_url"));
        if (url && strncmp(url, "postgres://", 11) == 0) {
            char hp[256], host[256];
            int port;
            snprintf(hp, sizeof(hp), "%s", url + 11);
            hp[strcspn(hp, "/")] = '\0';
            if (cfg_split_host_port(hp, host, sizeof(host), &port) == 0) {
                json_object_set_new(o, "host", json_string(host));
                json_object_set_new(o, "port", json_integer(port));
            }
        }
        if (json_object_get(m, "timeline"))
            json_object_set(o, "timeline", json_object_get(m, "timeline"));
        if (json_is_true(json_object_get(m, "pending_restart")))
            json_object_set_new(o, "pending_restart", json_true());
        if (json_object_get(m, "tags"))
            json_object_set(o, "tags", json_object_get(m, "tags"));
        if (!leader) {
            json_t *x = json_object_get(m, "xlog_location");
            if (json_is_integer(x) && a->optime) {
                int64_t lag = a->optime - json_integer_value(x);
                json_object_set_new(o, "lag", json_integer(lag > 0 ? lag : 0));
            } else {
                json_object_set_new(o, "lag", json_string("unknown"));
            }
        }
        json_array_append_new(members, o);
    }
    json_t *c = json_pack("{s:o,s:s}", "members", members, "scope", a->cfg.scope);
    if (a->dyn.pause)
        json_object_set_new(c, "pause", json_true());
    return c;
}

static void metrics(agent *a, http_conn *c)
{
    char buf[8192];
    size_t l = 0;
    const char *lab = "";
    char labels[600];
    snprintf(labels, sizeof(labels), "{scope=\"%s\",name=\"%s\"}", a->cfg.scope, a->cfg.name);
    lab = labels;
    int primary = running(a) && !a->st.in_recovery;
    int replica = running(a) && a->st.in_recovery;
#define M(name, help, fmt, ...)                                                                    \
    l += (size_t)snprintf(buf + l, sizeof(buf) - l,                                                \
                          "# HELP " name " " help "\n# TYPE " name " gauge\n" name "%s " fmt "\n", \
                          lab, __VA_ARGS__)
    M("patroni_version", "Patroni semver without periods.", "%s", "030002");
    M("patroni_postgres_running", "Value is 1 if Postgres is running, 0 otherwise.", "%d",
      running(a));
    M("patroni_master", "Value is 1 if this node is the leader, 0 otherwise.", "%d", primary);
    M("patroni_primary", "Value is 1 if this node is the leader, 0 otherwise.", "%d", primary);
    M("patroni_xlog_location",
      "Current location of the Postgres transaction log, 0 if this "
      "node is not the leader.",
      "%lld", (long long)(primary ? a->st.wal_flush : 0));
    M("patroni_standby_leader", "Value is 1 if this node is the standby_leader, 0 otherwise.", "%d",
      0);
    M("patroni_replica", "Value is 1 if this node is a replica, 0 otherwise.", "%d", replica);
    M("patroni_sync_standby", "Value is 1 if this node is a sync standby replica, 0 otherwise.",
      "%d", replica && sync_is_standby(a));
    M("patroni_xlog_received_location",
      "Current location of the received Postgres transaction "
      "log, 0 if this node is not a replica.",
      "%lld", (long long)(replica ? a->st.received : 0));
    M("patroni_xlog_replayed_location",
      "Current location of the replayed Postgres transaction "
      "log, 0 if this node is not a replica.",
      "%lld", (long long)(replica ? a->st.replayed : 0));
    M("patroni_xlog_paused", "Value is 1 if the Postgres xlog is paused, 0 otherwise.", "%d",
      a->st.replay_paused);
    M("patroni_postgres_streaming", "Value is 1 if Postgres is streaming, 0 otherwise.", "%d",
      replica && strcmp(a->st.receiver_status, "streaming") == 0);
    M("patroni_postgres_server_version", "Version of Postgres (if running), 0 otherwise.", "%d",
      a->st.server_version);
    M("patroni_cluster_unlocked", "Value is 1 if the cluster is unlocked, 0 if locked.", "%d",
      !a->leader[0]);
    M("patroni_failsafe_mode_is_active", "Value is 1 if failsafe mode is active, 0 if inactive.",
      "%d", a->failsafe_active);
    M("patroni_postgres_timeline", "Postgres timeline of this node (if running), 0 otherwise.",
      "%d", a->st.timeline);
    M("patroni_dcs_last_seen",
      "Epoch timestamp when DCS was last contacted successfully by "
      "Patroni.",
      "%lld", (long long)a->dcs_last_seen);
    M("patroni_pending_restart", "Value is 1 if the node needs a restart, 0 otherwise.", "%d",
      running(a) && a->st.pending_restart != NULL);
    M("patroni_is_paused", "Value is 1 if auto failover is disabled, 0 otherwise.", "%d",
      a->dyn.pause);
#undef M
    http_respond(c, 200, "text/plain; version=0.0.4", buf, l < sizeof(buf) ? l : sizeof(buf));
}

/* POST /failsafe from the primary: accept it (and refuse to race for ttl) */
static void post_failsafe(agent *a, http_conn *c, const http_request *r)
{
    if (!a->dyn.failsafe_mode) {
        send_text(c, 502, "Failsafe mode is not enabled");
        return;
    }
    if (running(a) && !a->st.in_recovery) {
        send_text(c, 500, "Running as a leader");
        return;
    }
    json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
    const char *name = json_string_value(json_object_get(j, "name"));
    if (!name) {
        json_decref(j);
        send_text(c, 400, "name is required");
        return;
    }
    a->failsafe_hold_until_ms = evloop_now_ms(a->loop) + (uint64_t)a->dyn.ttl * 1000;
    snprintf(a->failsafe_primary, sizeof(a->failsafe_primary), "%s", name);
    json_decref(j);
    send_text(c, 200, "Accepted");
}

static void on_switchover_conn_closed(http_conn *c, void *arg)
{
    agent *a = arg;
    if (a->switchover_conn == c)
        a->switchover_conn = NULL;
}

static void on_restart_conn_closed(http_conn *c, void *arg)
{
    agent *a = arg;
    if (a->restart_conn == c)
        a->restart_conn = NULL;
}

/* POST /switchover and /failover (Patroni 3.0.2's rules): a switchover needs the current
 * leader's name; a failover needs a candidate and works without a leader too (the
 * candidate takes the lock: the operator's way out when no member would be elected), and
 * in synchronous mode it may name an asynchronous standby (the operator's explicit choice;
 * a switchover may not). */
static void post_switchover(agent *a, http_conn *c, const http_request *r, int failover)
{
    json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        send_text(c, 400, "Bad request");
        return;
    }
    json_t *sched = json_object_get(j, "scheduled_at"); /* patronictl sends null */
    if (sched && !json_is_null(sched)) {
        json_decref(j);
        send_text(c, 400, "scheduled switchovers are not supported");
        return;
    }
    const char *leader = json_string_value(json_object_get(j, "leader"));
    const char *cand = json_string_value(json_object_get(j, "candidate"));
    if (!cand)
        cand = json_string_value(json_object_get(j, "member"));
    if (failover && (!cand || !cand[0])) {
        json_decref(j);
        send_text(c, 400, "Failover could be performed only to a specific candidate");
        return;
    }
    if (!failover && (!leader || !leader[0])) {
        json_decref(j);
        send_text(c, 400, "Switchover could be performed only from a specific leader");
        return;
    }
    if (!leader || !leader[0])
        leader = a->leader; /* failover: from the current leader, "" when there is none */
    if (leader[0] && strcmp(leader, a->leader) != 0) {
        json_decref(j);
        send_text(c, 412, "leader name does not match");
        return;
    }
    if (cand && strcmp(cand, leader) == 0) {
        json_decref(j);
        send_text(c, 400, "Switchover target and source are the same");
        return;
    }
    /* Synchronous mode (Patroni's is_failover_possible): only the synchronous standby can
     * take over without losing acknowledged commits, so it is the only candidate. */
    int sync_named = a->dyn.synchronous_mode && a->sync_present && a->sync_standby[0];
    if (!failover && cand && a->dyn.synchronous_mode &&
        (!sync_named || strcmp(cand, a->sync_standby) != 0)) {
        json_decref(j);
        send_text(c, 412, "candidate name does not match with sync_standby");
        return;
    }
    if (!failover && !cand && a->dyn.synchronous_mode && !sync_named) {
        json_decref(j);
        send_text(c, 412, "switchover is not possible: can not find sync_standby");
        return;
    }
    if (cand && !json_object_get(a->members, cand)) {
        json_decref(j);
        send_text(c, 412, "candidate does not exists");
        return;
    }
    if (leader[0] && json_object_size(a->members) < 2) {
        json_decref(j);
        send_text(c, 412,
                  "switchover is not possible: cluster does not have members except "
                  "leader");
        return;
    }
    json_t *fo = leader[0] ? json_pack("{s:s}", "leader", leader) : json_object();
    if (cand)
        json_object_set_new(fo, "member", json_string(cand));
    char *s = json_dumps(fo, JSON_COMPACT);
    json_decref(fo);
    char k[512];
    snprintf(k, sizeof(k), "%sfailover", a->prefix);
    etcd_put(a->etcd, k, strlen(k), s, strlen(s), 0, 2000, NULL, NULL);
    free(s);
    json_decref(j);
    /* Like Patroni, the answer waits for the outcome: 200 once another member holds the
     * leader key (and it is the candidate, if one was named), 503 after 30 s. One pending
     * switchover answer at a time. */
    if (a->switchover_conn) {
        send_text(c, 503, "Switchover already in progress");
        return;
    }
    a->switchover_conn = c;
    snprintf(a->switchover_from, sizeof(a->switchover_from), "%s", leader);
    snprintf(a->switchover_to, sizeof(a->switchover_to), "%s", cand ? cand : "");
    a->switchover_is_failover = failover;
    a->switchover_deadline_ms = evloop_now_ms(a->loop) + 30000;
    http_conn_on_close(c, on_switchover_conn_closed, a);
    agent_wake(a);
}

/* POST /restart: fast stop, the HA loop starts postgres again in its role; answered once
 * postgres runs again (Patroni answers after the restart too). Scheduled and conditional
 * restarts (schedule, restart_pending, postgres_version) are not supported: 400/412. */
static void post_restart(agent *a, http_conn *c, const http_request *r)
{
    json_t *j = r->body_len ? json_loadb(r->body, r->body_len, 0, NULL) : json_object();
    if (!json_is_object(j)) {
        json_decref(j);
        send_text(c, 400, "Bad request");
        return;
    }
    json_t *sched = json_object_get(j, "schedule");
    if (sched && !json_is_null(sched)) {
        json_decref(j);
        send_text(c, 400, "scheduled restarts are not supported");
        return;
    }
    const char *role = json_string_value(json_object_get(j, "role"));
    if (role && strcmp(role, "any") != 0) {
        int primary = running(a) && !a->st.in_recovery;
        int want_primary = strcmp(role, "master") == 0 || strcmp(role, "primary") == 0 ||
                           strcmp(role, "leader") == 0;
        if (want_primary != primary) {
            json_decref(j);
            send_text(c, 503, "restart conditions are not satisfied");
            return;
        }
    }
    json_decref(j);
    if (!a->pg || a->pg_stop_requested || a->restart_conn) {
        send_text(c, 503, "postgres is not running");
        return;
    }
    a->restart_conn = c;
    a->restart_stage = 1;
    a->restart_deadline_ms = evloop_now_ms(a->loop) + 60000;
    http_conn_on_close(c, on_restart_conn_closed, a);
    agent_restart_postgres(a);
}

void rest_cycle(agent *a)
{
    uint64_t now = evloop_now_ms(a->loop);
    if (a->restart_conn) {
        if (a->restart_stage == 2 && running(a)) {
            http_conn *c = a->restart_conn;
            a->restart_conn = NULL;
            a->restart_stage = 0;
            send_text(c, 200, "restarted successfully");
        } else if (now > a->restart_deadline_ms) {
            http_conn *c = a->restart_conn;
            a->restart_conn = NULL;
            a->restart_stage = 0;
            send_text(c, 503, "restart failed");
        }
    }
    if (a->switchover_conn) {
        int moved = a->leader[0] && strcmp(a->leader, a->switchover_from) != 0 &&
                    (!a->switchover_to[0] || strcmp(a->leader, a->switchover_to) == 0);
        if (moved || now > a->switchover_deadline_ms) {
            http_conn *c = a->switchover_conn;
            a->switchover_conn = NULL;
            char msg[300];
            if (moved)
                snprintf(msg, sizeof(msg), "Successfully %s over to \"%s\"",
                         a->switchover_is_failover ? "failed" : "switched", a->leader);
            else
                snprintf(msg, sizeof(msg), "Switchover status unknown");
            send_text(c, moved ? 200 : 503, msg);
            if (!moved)
                agent_switchover_expired(a);
        }
    }
}

/* ---- PATCH/PUT /config (patronictl pause/resume/edit-config go through these) ---- */

typedef struct config_req {
    agent *a;
    http_conn *conn; /* NULL once the client is gone */
    char *text;      /* the config written */
} config_req;

static void on_config_conn_closed(http_conn *c, void *arg)
{
    config_req *q = arg;
    q->conn = NULL;
}

static void on_config_written(const etcd_result *r, void *arg)
{
    config_req *q = arg;
    if (q->conn) {
        http_conn_on_close(q->conn, NULL, NULL); /* q is freed below */
        if (!r->ok)
            send_text(q->conn, 503, "DCS is not accessible");
        else if (!r->succeeded)
            send_text(q->conn, 409, "Config was changed meanwhile");
        else
            http_respond(q->conn, 200, "application/json", q->text, strlen(q->text));
    }
    if (r->ok && r->succeeded)
        agent_wake(q->a); /* apply it at once */
    free(q->text);
    free(q);
}

/* RFC 7386 merge patch, as Patroni's PATCH /config: null deletes, objects merge. */
static void merge_patch(json_t *target, json_t *patch)
{
    const char *k;
    json_t *v;
    json_object_foreach(patch, k, v)
    {
        json_t *cur = json_object_get(target, k);
        if (json_is_null(v))
            json_object_del(target, k);
        else if (json_is_object(v) && json_is_object(cur))
            merge_patch(cur, v);
        else
            json_object_set(target, k, v);
    }
}

static void write_config(agent *a, http_conn *c, const http_request *r, int patch)
{
    json_t *body = json_loadb(r->body, r->body_len, 0, NULL);
    if (!json_is_object(body)) {
        json_decref(body);
        send_text(c, 400, "Bad request: expected a JSON object");
        return;
    }
    if (patch && !a->config_json) {
        json_decref(body);
        send_text(c, 503, "No configuration in DCS");
        return;
    }
    json_t *cfg = patch ? json_deep_copy(a->config_json) : json_incref(body);
    if (patch)
        merge_patch(cfg, body);
    json_decref(body);
    agent_dyn_config d;
    char err[300];
    if (agent_dyn_config_parse(&d, cfg, err, sizeof(err)) != 0) {
        json_decref(cfg);
        send_text(c, 400, err);
        return;
    }
    agent_dyn_config_free(&d);
    config_req *q = calloc(1, sizeof(*q));
    char *text = json_dumps(cfg, JSON_COMPACT);
    json_decref(cfg);
    if (!q || !text) {
        free(q);
        free(text);
        send_text(c, 500, "out of memory");
        return;
    }
    q->a = a;
    q->conn = c;
    q->text = text;
    http_conn_on_close(c, on_config_conn_closed, q);
    char k[512];
    snprintf(k, sizeof(k), "%sconfig", a->prefix);
    /* PATCH: compare-and-swap on the revision we read (a concurrent edit answers 409);
     * PUT: unconditional, as Patroni. */
    etcd_compare cmp = {
        .key = k, .key_len = strlen(k), .target = ETCD_CMP_MOD, .number = a->config_mod};
    etcd_op op = {.type = ETCD_OP_PUT,
                  .key = k,
                  .key_len = strlen(k),
                  .value = text,
                  .value_len = strlen(text)};
    if (etcd_txn(a->etcd, &cmp, patch ? 1 : 0, &op, 1, NULL, 0, 2000, on_config_written, q) != 0) {
        http_conn_on_close(c, NULL, NULL);
        send_text(c, 503, "DCS is not accessible");
        free(q->text);
        free(q);
    }
}

static void handler(http_conn *c, const http_request *r, void *arg)
{
    agent *a = arg;
    const char *m = r->method;
    const char *p = r->path;
    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0) {
        int get = strcmp(m, "OPTIONS") != 0;
        if (get && strcmp(p, "/patroni") == 0) {
            send_json(c, 200, rest_status_json(a));
            return;
        }
        if (get && strcmp(p, "/cluster") == 0) {
            send_json(c, 200, cluster_json(a));
            return;
        }
        if (get && strcmp(p, "/history") == 0) {
            send_json(c, 200, a->history ? json_incref(a->history) : json_array());
            return;
        }
        if (get && strcmp(p, "/config") == 0) {
            if (!a->config_json) {
                send_text(c, 502, "No configuration in DCS");
                return;
            }
            send_json(c, 200, json_incref(a->config_json));
            return;
        }
        if (get && strcmp(p, "/failsafe") == 0) {
            if (!a->dyn.failsafe_mode || !a->failsafe) {
                send_text(c, 502, "Failsafe mode is not enabled");
                return;
            }
            send_json(c, 200, json_incref(a->failsafe));
            return;
        }
        if (strcmp(m, "GET") == 0 && strcmp(p, "/liveness") == 0) {
            uint64_t now = evloop_now_ms(a->loop);
            uint64_t limit = (uint64_t)a->dyn.ttl * 1000 * (a->am_leader ? 1 : 2);
            int alive =
                a->last_cycle_end_ms == 0 || now - a->last_cycle_end_ms < limit || a->cycle_running;
            http_respond(c, alive ? 200 : 503, NULL, "", 0);
            return;
        }
        if (strcmp(m, "GET") == 0 && strcmp(p, "/readiness") == 0) {
            int ready = (a->am_leader && a->dcs_ok) || (running(a) && a->dcs_ok);
            http_respond(c, ready ? 200 : 503, NULL, "", 0);
            return;
        }
        if (get && strcmp(p, "/metrics") == 0) {
            metrics(a, c);
            return;
        }
        int code = health_code(a, r);
        if (strcmp(m, "OPTIONS") == 0) {
            http_respond(c, code, NULL, "", 0);
            return;
        }
        send_json(c, code, rest_status_json(a));
        return;
    }
    /* Everything else may change state: Basic auth first (when configured), whatever the
     * method or path, so no mutating endpoint can be reached without it (Patroni's
     * check_access on each do_POST/PATCH/PUT/DELETE handler). Members send the same
     * credentials to each other with POST /failsafe (agent.c failsafe_round). */
    if (!authorized(a, c, r))
        return;
    if (strcmp(m, "POST") == 0 && strcmp(p, "/failsafe") == 0) {
        post_failsafe(a, c, r);
        return;
    }
    if (strcmp(m, "POST") == 0 || strcmp(m, "PATCH") == 0 || strcmp(m, "PUT") == 0 ||
        strcmp(m, "DELETE") == 0) {
        if (strcmp(m, "POST") == 0 &&
            (strcmp(p, "/switchover") == 0 || strcmp(p, "/failover") == 0)) {
            post_switchover(a, c, r, strcmp(p, "/failover") == 0);
            return;
        }
        if (strcmp(m, "POST") == 0 && strcmp(p, "/reload") == 0) {
            /* Patroni answers 202 and logs errors; a bad file is answered 400 here with
             * the message naming the key, and the running configuration stays. */
            char err[600];
            if (agent_reload_config(a, err, sizeof(err)) != 0) {
                send_text(c, 400, err);
                return;
            }
            send_text(c, 202, "reload scheduled");
            return;
        }
        if ((strcmp(m, "PATCH") == 0 || strcmp(m, "PUT") == 0) && strcmp(p, "/config") == 0) {
            write_config(a, c, r, strcmp(m, "PATCH") == 0);
            return;
        }
        if (strcmp(m, "POST") == 0 && strcmp(p, "/reinitialize") == 0) {
            char why[200];
            if (agent_reinitialize(a, why, sizeof(why)) != 0) {
                send_text(c, 503, why);
                return;
            }
            send_text(c, 200, "reinitialize started");
            agent_wake(a);
            return;
        }
        if (strcmp(m, "POST") == 0 && strcmp(p, "/restart") == 0) {
            post_restart(a, c, r);
            return;
        }
        /* Patroni cancels a scheduled restart/switchover here; we schedule none. */
        if (strcmp(m, "DELETE") == 0 && strcmp(p, "/restart") == 0) {
            send_text(c, 404, "no restarts are scheduled");
            return;
        }
        if (strcmp(m, "DELETE") == 0 && strcmp(p, "/switchover") == 0) {
            send_text(c, 404, "no switchover is scheduled");
            return;
        }
    }
    send_text(c, 501, "Unsupported method");
}

int rest_start(agent *a)
{
    http_limits lim;
    http_limits_default(&lim);
    lim.max_body_bytes = 65536;
    lim.max_connections = 256;
    a->rest = http_server_new(a->loop, &lim, handler, a);
    if (!a->rest)
        return -1;
    return http_server_listen(a->rest, a->cfg.rest_listen_host, a->cfg.rest_listen_port);
}
