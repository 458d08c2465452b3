/* The HA loop: one cycle = lease keepalive -> cluster read -> postgres status -> decision
 * (agent/ha.c) -> action -> member/status keys. Everything is asynchronous on one evloop.
 *
 * ---- Self-fencing: the timing argument ----
 * The leader key lives on this node's etcd lease (TTL = ttl). etcd starts a lease's new
 * countdown when it *processes* a keepalive, which is after we *sent* it. So if we record
 * T_sent (monotonic, before sending) for every keepalive etcd confirms with TTL > 0, the
 * lease cannot expire, and no other node can create the leader key, before
 * T_sent + ttl (elapsed time; etcd only ever extends leases on its own leader changes).
 * The fence timer fires at T_sent + ttl - margin and, unless a newer confirmation moved
 * it, stops postgres with SIGQUIT (immediate shutdown: no new commit is acknowledged
 * after the signal is handled, a few ms). margin = max(1 s, ttl/4) covers timer slack,
 * signal delivery and a clock-rate difference between hosts (< 1 %).
 * Failsafe (contracts §6.6, on by default): when etcd is unreachable, a primary may keep
 * running only while EVERY other member accepts its POST /failsafe; a member that accepted
 * refuses to take the leader lock for ttl after the acceptance. The round's send time then
 * plays the role of T_sent: the primary fences at T_round + ttl - margin unless a newer
 * round (or lease keepalive) succeeded, which is before any acceptor may race.
 *
 * ---- Shipped defaults: ttl 4 s, loop_wait 1 s, retry_timeout 1 s ----
 * Unplanned failover (kill -9 of the primary node): the lease was renewed at most
 * loop_wait (+ request time) before the kill, so it expires within ttl (<= 4 s), etcd
 * notices expiry within 0.5 s (its lessor check interval), the replicas' watch delivers the
 * DELETE at once, the race polls live peers (connection refused is immediate) and promotes
 * (~0.1-0.3 s): <= ~4.5 s, typically 3.5 s. Measured (tests/integration/agent, bench/agent):
 * kill -9 -> first write on the new primary 3.4-4.6 s (bench median 4.36 s); a primary cut
 * off from etcd (failsafe off) stops taking writes 1.7-1.9 s after the cut and a replica
 * takes writes ~4.2 s after it. Safety: loop_wait + 2*retry_timeout = 3 <= ttl (Patroni's
 * rule), and the leader renews on a timer of its own every min(loop_wait, ttl/4) = 1 s
 * (independent of the HA cycle, which may be slow), so it gets ~2 renewal attempts before
 * its fence at ttl - 1 s.
 * etcd's own leader election (election timeout 1 s by default) can make the DCS unavailable
 * for 1-2 s: renewals fail, failsafe keeps the primary up when all members answer, and etcd
 * extends every lease on a leader change, so such a hiccup does not fail over. */
#include "agent/agent.h"

#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/controldata.h"
#include "agent/pgfiles.h"
#include "log.h"

#define PEER_TIMEOUT_MS     1000
#define PG_QUERY_TIMEOUT_MS 2000
#define PG_QUICK_EXIT_MS    10000 /* a postgres that dies sooner counts as a failed start */

static void cycle_start(agent *a);
static void cycle_end(agent *a);
static void decide_and_act(agent *a);
static void start_postgres(agent *a, int replica);
static void arm_fence(agent *a);
static void publish(agent *a);

static uint64_t now_ms(agent *a)
{
    return evloop_update_now(a->loop);
}

static uint32_t dcs_timeout(const agent *a)
{
    return (uint32_t)a->dyn.retry_timeout * 1000u;
}

static void key(const agent *a, const char *name, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s%s", a->prefix, name);
}

int agent_is_leader(const agent *a)
{
    return a->am_leader;
}

int64_t agent_wal(const agent *a)
{
    if (!a->st.valid)
        return 0;
    if (!a->st.in_recovery)
        return a->st.wal_flush;
    return a->st.received > a->st.replayed ? a->st.received : a->st.replayed;
}

const char *agent_role(const agent *a)
{
    if (a->pg_running && a->st.valid)
        return a->st.in_recovery ? "replica" : AGENT_PRIMARY_ROLE;
    if (pgfiles_data_empty(a->cfg.data_dir))
        return "uninitialized";
    return a->am_leader ? AGENT_PRIMARY_ROLE : "replica";
}

static void set_state(agent *a, const char *s)
{
    snprintf(a->state, sizeof(a->state), "%s", s);
}

typedef void (*controldata_cb)(agent *a, const pg_controldata *c); /* c NULL: failed */
static int run_controldata(agent *a, controldata_cb cb);
static void switchover_pg_down(agent *a);

static void set_busy(agent *a, const char *what)
{
    a->busy = what != NULL;
    snprintf(a->busy_what, sizeof(a->busy_what), "%s", what ? what : "");
}

void agent_wake(agent *a)
{
    if (a->cycle_running) {
        a->wake_pending = 1;
        return;
    }
    if (a->cycle_timer)
        evloop_timer_cancel(a->loop, a->cycle_timer);
    a->cycle_timer = NULL;
    cycle_start(a);
}

static void on_cycle_timer(evloop *loop, void *arg)
{
    agent *a = arg;
    a->cycle_timer = NULL;
    cycle_start(a);
}

/* ---------------- fencing ---------------- */

static uint64_t fence_margin_ms(const agent *a)
{
    uint64_t m = (uint64_t)a->dyn.ttl * 250;
    return m < 1000 ? 1000 : m;
}

static void fence_now(agent *a, const char *why)
{
    if (a->dyn.pause) {
        /* Patroni's pause: nothing demotes the primary -- DCS maintenance is what pause is
         * for. Replicas do not race while paused, so no second primary appears, and when
         * the DCS answers again the running primary takes the lock back (race). Logged at
         * most every 10 s. */
        static uint64_t last_log;
        if (a->pg && now_ms(a) >= last_log + 10000) {
            last_log = now_ms(a);
            log_warn("paused: NOT stopping postgres although %s", why);
        }
        return;
    }
    if (a->pg && !a->pg_stop_requested) {
        log_error("FENCING: %s; stopping postgres immediately (no more writes)", why);
        a->pg_stop_requested = 1;
        proc_signal(a->pg, SIGQUIT);
        pgfiles_marker_set(&a->cfg, 1);
        a->needs_rewind = 1;
    }
    a->am_leader = 0;
    a->failsafe_active = 0;
}

static void on_fence(evloop *loop, void *arg)
{
    agent *a = arg;
    a->fence_timer = NULL;
    uint64_t base = a->lease_confirmed_sent_ms > a->failsafe_confirmed_sent_ms
                        ? a->lease_confirmed_sent_ms
                        : a->failsafe_confirmed_sent_ms;
    uint64_t deadline = base + (uint64_t)a->dyn.ttl * 1000 - fence_margin_ms(a);
    if (now_ms(a) + 5 < deadline) {
        arm_fence(a);
        return;
    }
    if (a->am_leader || (a->pg_running && a->st.valid && !a->st.in_recovery))
        fence_now(a, "leader lease could not be renewed in time");
}

static void arm_fence(agent *a)
{
    if (a->fence_timer)
        evloop_timer_cancel(a->loop, a->fence_timer);
    a->fence_timer = NULL;
    if (!a->am_leader && !a->failsafe_active)
        return;
    uint64_t base = a->lease_confirmed_sent_ms > a->failsafe_confirmed_sent_ms
                        ? a->lease_confirmed_sent_ms
                        : a->failsafe_confirmed_sent_ms;
    uint64_t deadline = base + (uint64_t)a->dyn.ttl * 1000 - fence_margin_ms(a);
    uint64_t now = now_ms(a);
    a->fence_timer = evloop_timer_start(a->loop, deadline > now ? deadline - now : 0, on_fence, a);
}

/* ---------------- cluster view ---------------- */

static void view_clear(agent *a)
{
    a->initialize_present = 0;
    a->initialize[0] = a->leader[0] = '\0';
    a->leader_lease = 0;
    a->failover_leader[0] = a->failover_member[0] = '\0';
    a->failover_present = 0;
    a->optime = 0;
    a->sync_present = 0;
    a->sync_leader[0] = a->sync_standby[0] = '\0';
    json_decref(a->members);
    a->members = json_object();
    json_decref(a->history);
    a->history = NULL;
    json_decref(a->failsafe);
    a->failsafe = NULL;
}

static void view_from_range(agent *a, const etcd_result *r)
{
    view_clear(a);
    size_t pl = strlen(a->prefix);
    for (size_t i = 0; i < r->nkvs; i++) {
        const etcd_kv *kv = &r->kvs[i];
        if (kv->key_len <= pl || strncmp(kv->key, a->prefix, pl) != 0)
            continue;
        const char *name = kv->key + pl;
        if (strcmp(name, "initialize") == 0) {
            a->initialize_present = 1;
            snprintf(a->initialize, sizeof(a->initialize), "%s", kv->value);
        } else if (strcmp(name, "leader") == 0) {
            snprintf(a->leader, sizeof(a->leader), "%s", kv->value);
            a->leader_lease = kv->lease;
        } else if (strcmp(name, "status") == 0) {
            json_t *j = json_loads(kv->value, JSON_DECODE_ANY, NULL);
            if (json_is_object(j))
                a->optime = json_integer_value(json_object_get(j, "optime"));
            else if (json_is_integer(j))
                a->optime = json_integer_value(j);
            json_decref(j);
        } else if (strcmp(name, "failover") == 0) {
            json_t *j = json_loads(kv->value, 0, NULL);
            a->failover_mod = kv->mod_revision;
            const char *l = json_string_value(json_object_get(j, "leader"));
            const char *m = json_string_value(json_object_get(j, "member"));
            if (l || m) {
                a->failover_present = 1;
                snprintf(a->failover_leader, sizeof(a->failover_leader), "%s", l ? l : "");
                snprintf(a->failover_member, sizeof(a->failover_member), "%s", m ? m : "");
            }
            json_decref(j);
        } else if (strcmp(name, "config") == 0) {
            json_t *j = json_loads(kv->value, 0, NULL);
            if (json_is_object(j)) {
                json_decref(a->config_json);
                a->config_json = j;
                a->config_mod = kv->mod_revision;
            } else {
                json_decref(j);
            }
        } else if (strcmp(name, "sync") == 0) {
            json_t *j = json_loads(kv->value, 0, NULL);
            const char *l = json_string_value(json_object_get(j, "leader"));
            const char *st = json_string_value(json_object_get(j, "sync_standby"));
            if (l) {
                a->sync_present = 1;
                snprintf(a->sync_leader, sizeof(a->sync_leader), "%s", l);
                /* Patroni writes several as "a,b"; we name one: take the first */
                snprintf(a->sync_standby, sizeof(a->sync_standby), "%.*s",
                         st ? (int)strcspn(st, ",") : 0, st ? st : "");
            }
            json_decref(j);
        } else if (strcmp(name, "history") == 0) {
            json_t *j = json_loads(kv->value, 0, NULL);
            if (json_is_array(j))
                a->history = j;
            else
                json_decref(j);
        } else if (strcmp(name, "failsafe") == 0) {
            json_t *j = json_loads(kv->value, 0, NULL);
            if (json_is_object(j))
                a->failsafe = j;
            else
                json_decref(j);
        } else if (strncmp(name, "members/", 8) == 0 && !strchr(name + 8, '/') && name[8]) {
            json_t *j = json_loads(kv->value, 0, NULL);
            if (json_is_object(j))
                json_object_set_new(a->members, name + 8, j);
            else
                json_decref(j);
        }
    }
    if (a->config_json) {
        agent_dyn_config d;
        char err[256];
        if (agent_dyn_config_parse(&d, a->config_json, err, sizeof(err)) == 0) {
            int params_changed = !json_equal(d.parameters, a->dyn.parameters);
            agent_dyn_config_free(&a->dyn);
            a->dyn = d;
            /* a->pg, not a->pg_running: a change that arrives while postgres is still
             * starting (e.g. right after a replica's clone) must reach it too, or it runs
             * with the old values until the next change (found by ctl_ops.t) */
            if (params_changed && a->pg) {
                log_info("postgresql.parameters changed in the DCS config");
                agent_pg_reload(a);
            }
        } else {
            log_warn("DCS config key rejected, keeping the previous values: %s", err);
        }
    }
}

/* host/port from a member's conn_url "postgres://host:port/postgres" */
static int member_conn(const agent *a, const char *name, char *host, size_t hostsz, int *port)
{
    json_t *m = json_object_get(a->members, name);
    const char *url = json_string_value(json_object_get(m, "conn_url"));
    if (!url || strncmp(url, "postgres://", 11) != 0)
        return -1;
    char hp[256];
    snprintf(hp, sizeof(hp), "%s", url + 11);
    char *at = strrchr(hp, '@');
    char *start = at ? at + 1 : hp;
    start[strcspn(start, "/")] = '\0';
    return cfg_split_host_port(start, host, hostsz, port);
}

int agent_member_conn(const agent *a, const char *name, char *host, size_t hostsz, int *port)
{
    return member_conn(a, name, host, hostsz, port);
}

void agent_set_busy(agent *a, const char *what)
{
    set_busy(a, what);
}

const char *agent_public_state(const agent *a)
{
    return diverged_stuck(a) ? "diverged" : a->state;
}

/* ---------------- postgres ---------------- */

static void pg_status_clear(pg_status *s)
{
    json_decref(s->replication);
    json_decref(s->pending_restart);
    memset(s, 0, sizeof(*s));
}

static void conninfo_local(const agent *a, char *out, size_t outsz)
{
    char host[256];
    int port;
    if (cfg_split_host_port(a->cfg.pg_connect_address, host, sizeof(host), &port) != 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    snprintf(out, outsz,
             "host=%s port=%d user=%s dbname=postgres passfile=%s connect_timeout=2 "
             "application_name=appliance-agent",
             host, a->cfg.pg_port, a->cfg.superuser.username, a->cfg.pgpass);
}

static void move_aside(agent *a, const char *suffix);

/* POST /reinitialize, second half: postgres is down; the data dir goes aside and the HA
 * loop clones a fresh copy from the leader. */
static void reinit_continue(agent *a)
{
    a->reinit_pending = 0;
    move_aside(a, "reinit");
    pgfiles_marker_set(&a->cfg, 0);
    a->needs_rewind = 0;
    memset(&a->tlc, 0, sizeof(a->tlc)); /* also forgets a failed fix: the operator's call */
    a->data_sysid[0] = '\0';
    set_state(a, "stopped");
}

int agent_reinitialize(agent *a, char *why, size_t whysz)
{
    if (a->am_leader || (a->pg_running && a->st.valid && !a->st.in_recovery)) {
        snprintf(why, whysz, "I am the leader, can not reinitialize");
        return -1;
    }
    if (!a->leader[0]) {
        snprintf(why, whysz, "Cluster has no leader, can not reinitialize");
        return -1;
    }
    if (a->busy || a->reinit_pending) {
        snprintf(why, whysz, "reinitialize already in progress");
        return -1;
    }
    log_info("reinitialize requested: stopping postgres, moving the data directory aside, "
             "cloning from %s",
             a->leader);
    a->reinit_pending = 1;
    if (a->pg && !a->pg_stop_requested) {
        a->pg_stop_requested = 1;
        set_state(a, "stopping");
        proc_signal(a->pg, SIGINT);
    } else if (!a->pg) {
        reinit_continue(a);
        agent_wake(a);
    }
    return 0;
}

/* postgresql.callbacks: `command ACTION ROLE SCOPE`, an async child as the postgres user;
 * its output goes to our log. Fire and forget (Patroni does not wait either). */
static void run_callback(agent *a, const char *action, const char *role)
{
    const char *cmd = json_string_value(json_object_get(a->cfg.callbacks, action));
    if (!cmd)
        return;
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", cmd);
    char *argv[32];
    int n = 0;
    for (char *tok = strtok(buf, " \t"); tok && n < 28; tok = strtok(NULL, " \t"))
        argv[n++] = tok;
    if (n == 0)
        return;
    char act[32], rl[32], scope[CFG_STR];
    snprintf(act, sizeof(act), "%s", action);
    snprintf(rl, sizeof(rl), "%s", role);
    snprintf(scope, sizeof(scope), "%s", a->cfg.scope);
    argv[n++] = act;
    argv[n++] = rl;
    argv[n++] = scope;
    argv[n] = NULL;
    proc_opts o = {.log_prefix = "callback", .uid = a->uid, .gid = a->gid};
    if (!proc_spawn(a->loop, argv, &o, NULL, NULL))
        log_warn("callback %s: cannot run %s: %s", action, argv[0], strerror(errno));
}

static void on_pg_exit(proc *p, int status, const char *out, void *arg)
{
    agent *a = arg;
    a->pg = NULL;
    a->pg_gen++;
    a->pg_running = 0;
    pg_status_clear(&a->st);
    a->following[0] = '\0';
    if (!a->pg_stop_requested) {
        log_error("postgres exited unexpectedly (status %d)", status);
        /* The first crash restarts at once (restart in place as leader); a start that dies
         * again within PG_QUICK_EXIT_MS waits 1, 2, 4 ... 30 s: each attempt is logged and a
         * tight loop would flood the log and the CPU without changing the outcome. */
        if (now_ms(a) - a->pg_started_ms < PG_QUICK_EXIT_MS) {
            unsigned n = a->pg_quick_exits < 6 ? a->pg_quick_exits : 6;
            uint64_t pause = n == 0 ? 0 : (uint64_t)1000 << (n - 1);
            if (pause > 30000)
                pause = 30000;
            a->pg_quick_exits++;
            a->pg_restart_not_before_ms = now_ms(a) + pause;
            if (pause)
                log_warn("postgres died %u times right after starting: next start in %llu ms",
                         a->pg_quick_exits, (unsigned long long)pause);
        } else {
            a->pg_quick_exits = 0;
        }
    } else {
        log_info("postgres stopped");
    }
    a->pg_stop_requested = 0;
    set_state(a, "stopped");
    if (a->cb_role[0] && !a->cb_restarting) {
        run_callback(a, "on_stop", a->cb_role);
        a->cb_role[0] = '\0';
    }
    if (a->restart_stage == 1)
        a->restart_stage = 2;
    if (a->reinit_pending)
        reinit_continue(a);
    if (a->stopping) {
        return; /* the shutdown path continues from stop_done */
    }
    if (a->switchover_release_pending) {
        switchover_pg_down(a);
        return; /* agent_wake once the key is released */
    }
    agent_wake(a);
}

static void start_postgres(agent *a, int replica)
{
    char err[256];
    pg_upstream up = {0};
    char host[256], slot[64];
    int port = 0;
    if (replica && a->leader[0] && strcmp(a->leader, a->cfg.name) != 0 &&
        member_conn(a, a->leader, host, sizeof(host), &port) == 0) {
        up.host = host;
        up.port = port;
        pgfiles_slot_name(a->cfg.name, slot, sizeof(slot));
        up.slot = a->dyn.use_slots ? slot : NULL;
        snprintf(a->following, sizeof(a->following), "%s", a->leader);
    } else {
        a->following[0] = '\0';
    }
    if (replica)
        a->ssn[0] = '\0'; /* a primary's synchronous_standby_names is chosen anew */
    json_t *params = sync_conf_params(a, replica);
    int wrc = pgfiles_write_conf(&a->cfg, params, replica, &up, a->uid, a->gid, err, sizeof(err));
    json_decref(params);
    if (wrc != 0 || pgfiles_write_hba(&a->cfg, a->uid, a->gid, err, sizeof(err)) != 0) {
        log_error("cannot write postgres configuration: %s", err);
        return;
    }
    char bin[512];
    snprintf(bin, sizeof(bin), "%s/postgres", a->cfg.bin_dir);
    char *argv[] = {bin, "-D", a->cfg.data_dir, NULL};
    proc_opts o = {.log_prefix = "postgres", .uid = a->uid, .gid = a->gid};
    a->pg = proc_spawn(a->loop, argv, &o, on_pg_exit, a);
    if (!a->pg) {
        log_error("cannot start postgres: %s", strerror(errno));
        return;
    }
    a->pg_stop_requested = 0;
    a->pg_started_ms = now_ms(a);
    a->resume_candidate = 0; /* from now on postgres itself tells where it stands */
    set_state(a, "starting");
    log_info("started postgres (pid %d) as %s%s%s", (int)proc_pid(a->pg),
             replica ? "replica" : "primary", up.host ? " following " : "",
             up.host ? a->following : "");
}

void agent_pg_reload(agent *a)
{
    char err[256];
    if (pgfiles_write_hba(&a->cfg, a->uid, a->gid, err, sizeof(err)) != 0 ||
        pgfiles_write_pgpass(&a->cfg, a->uid, a->gid, err, sizeof(err)) != 0) {
        log_error("reload: %s", err);
        return;
    }
    if (!a->pg || a->pg_stop_requested)
        return; /* written again at the next start anyway */
    int replica = !(a->pg_running && a->st.valid && !a->st.in_recovery) && !a->am_leader;
    pg_upstream up = {0};
    char host[256], slot[64];
    int port;
    if (replica && a->following[0] &&
        member_conn(a, a->following, host, sizeof(host), &port) == 0) {
        pgfiles_slot_name(a->cfg.name, slot, sizeof(slot));
        up.host = host;
        up.port = port;
        up.slot = a->dyn.use_slots ? slot : NULL;
    }
    json_t *params = sync_conf_params(a, replica);
    int wrc = pgfiles_write_conf(&a->cfg, params, replica, &up, a->uid, a->gid, err, sizeof(err));
    json_decref(params);
    if (wrc != 0) {
        log_error("reload: %s", err);
        return;
    }
    proc_signal(a->pg, SIGHUP);
    log_info("postgres configuration rewritten and reloaded (SIGHUP)");
    if (a->cb_role[0])
        run_callback(a, "on_reload", a->cb_role);
}

void agent_restart_postgres(agent *a)
{
    if (!a->pg || a->pg_stop_requested)
        return;
    log_info("restarting postgres on request");
    /* the loop starts it again: as primary while I hold the lock, else as replica */
    a->cb_restarting = a->cb_role[0] != '\0';
    proc_signal(a->pg, SIGINT);
    a->pg_stop_requested = 1;
    set_state(a, "restarting");
}

/* The YAML file, or with no file (path NULL, as `patroni` without an argument) the
 * configuration from SPILO_CONFIGURATION / PATRONI_CONFIGURATION and the other variables. */
static int load_config(agent_config *cfg, const char *path, char *err, size_t errsz)
{
    if (path)
        return agent_config_load_file(cfg, path, environ, err, errsz);
    return agent_config_load_text(cfg, "", 0, environ, err, errsz);
}

/* Only what can change without restarting the agent is taken from the new file: local
 * postgresql parameters, pg_hba, credentials and tags. Identity and addresses (scope,
 * name, data_dir, listen addresses, etcd hosts) need a restart; a change is logged. */
int agent_reload_config(agent *a, char *err, size_t errsz)
{
    extern char **environ;
    agent_config n;
    if (load_config(&n, a->config_path, err, errsz) != 0)
        return -1;
    const char *fixed[][2] = {{"scope", a->cfg.scope},       {"name", a->cfg.name},
                              {"postgresql.data_dir", NULL}, {"restapi.listen", NULL},
                              {"postgresql.listen", NULL},   {"etcd3.hosts", NULL}};
    int changed[6] = {
        strcmp(n.scope, a->cfg.scope) != 0,
        strcmp(n.name, a->cfg.name) != 0,
        strcmp(n.data_dir, a->cfg.data_dir) != 0,
        strcmp(n.rest_listen_host, a->cfg.rest_listen_host) != 0 ||
            strcmp(n.rest_listen_port, a->cfg.rest_listen_port) != 0,
        strcmp(n.pg_listen_host, a->cfg.pg_listen_host) != 0 || n.pg_port != a->cfg.pg_port,
        n.n_etcd_hosts != a->cfg.n_etcd_hosts ||
            memcmp(n.etcd_hosts, a->cfg.etcd_hosts, n.n_etcd_hosts * sizeof(n.etcd_hosts[0])) != 0};
    for (int i = 0; i < 6; i++)
        if (changed[i])
            log_warn("reload: %s changed; that takes effect only after a restart of the agent",
                     fixed[i][0]);
    json_t *t;
    t = a->cfg.pg_parameters, a->cfg.pg_parameters = n.pg_parameters, n.pg_parameters = t;
    t = a->cfg.pg_hba, a->cfg.pg_hba = n.pg_hba, n.pg_hba = t;
    t = a->cfg.tags, a->cfg.tags = n.tags, n.tags = t;
    a->cfg.nofailover = n.nofailover;
    a->cfg.noloadbalance = n.noloadbalance;
    a->cfg.superuser = n.superuser;
    a->cfg.replication = n.replication;
    a->cfg.rewind = n.rewind;
    a->cfg.rest_auth = n.rest_auth;
    a->cfg.remove_data_directory_on_rewind_failure = n.remove_data_directory_on_rewind_failure;
    a->cfg.remove_data_directory_on_diverged_timelines =
        n.remove_data_directory_on_diverged_timelines;
    memset(&n.superuser, 0, sizeof(n.superuser));
    memset(&n.replication, 0, sizeof(n.replication));
    memset(&n.rewind, 0, sizeof(n.rewind));
    memset(&n.rest_auth, 0, sizeof(n.rest_auth));
    agent_config_free(&n);
    log_info("configuration reloaded from %s", a->config_path ? a->config_path : "the environment");
    agent_pg_reload(a);
    agent_wake(a); /* publish new tags at once */
    return 0;
}

static void stop_postgres(agent *a, int sig)
{
    if (a->pg && !a->pg_stop_requested) {
        a->pg_stop_requested = 1;
        set_state(a, "stopping");
        proc_signal(a->pg, sig);
    }
}

#define STATUS_SQL                                                                                 \
    "SELECT pg_is_in_recovery()::int,"                                                             \
    " CASE WHEN pg_is_in_recovery() THEN 0 ELSE"                                                   \
    "  pg_wal_lsn_diff(pg_current_wal_flush_lsn(),'0/0')::bigint END,"                             \
    " COALESCE(pg_wal_lsn_diff(pg_last_wal_receive_lsn(),'0/0')::bigint,0),"                       \
    " COALESCE(pg_wal_lsn_diff(pg_last_wal_replay_lsn(),'0/0')::bigint,0),"                        \
    " CASE WHEN pg_is_in_recovery() THEN COALESCE((SELECT received_tli FROM "                      \
    "pg_stat_wal_receiver),"                                                                       \
    "  (SELECT timeline_id FROM pg_control_checkpoint()))"                                         \
    "  ELSE ('x'||substr(pg_walfile_name(pg_current_wal_lsn()),1,8))::bit(32)::int END,"           \
    " to_char(pg_postmaster_start_time() AT TIME ZONE 'UTC','YYYY-MM-DD "                          \
    "HH24:MI:SS.US')||'+00:00',"                                                                   \
    " current_setting('server_version_num')::int,"                                                 \
    " COALESCE((SELECT status FROM pg_stat_wal_receiver),''),"                                     \
    " COALESCE(to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC',"                        \
    "  'YYYY-MM-DD HH24:MI:SS.US')||'+00:00',''),"                                                 \
    " CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused()::int ELSE 0 END,"               \
    " (SELECT COALESCE(json_agg(json_build_object('usename',usename,'application_name',"           \
    "  application_name,'client_addr',host(client_addr),'state',state,'sync_state',sync_state,"    \
    "  'sync_priority',sync_priority)),'[]') FROM pg_stat_replication)::text,"                     \
    " (SELECT system_identifier FROM pg_control_system())::text,"                                  \
    " (SELECT json_object_agg(name, current_setting(name)) FROM pg_settings"                       \
    "  WHERE pending_restart)::text"

static void after_pg_status(agent *a);

static void on_status(PGresult *res, const char *err, void *arg)
{
    agent *a = arg;
    pg_status_clear(&a->st);
    if (!res || PQntuples(res) != 1 || PQnfields(res) < 12) {
        if (a->pg_running)
            log_warn("postgres status query failed: %s", err ? err : "bad result");
        a->pg_running = 0;
        if (a->pg && !a->pg_stop_requested)
            set_state(a, "starting");
    } else {
        pg_status *s = &a->st;
        s->valid = 1;
        s->in_recovery = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
        s->wal_flush = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        s->received = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
        s->replayed = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
        s->timeline = (int)strtol(PQgetvalue(res, 0, 4), NULL, 10);
        snprintf(s->start_time, sizeof(s->start_time), "%s", PQgetvalue(res, 0, 5));
        s->server_version = (int)strtol(PQgetvalue(res, 0, 6), NULL, 10);
        snprintf(s->receiver_status, sizeof(s->receiver_status), "%s", PQgetvalue(res, 0, 7));
        snprintf(s->replayed_ts, sizeof(s->replayed_ts), "%s", PQgetvalue(res, 0, 8));
        s->replay_paused = (int)strtol(PQgetvalue(res, 0, 9), NULL, 10);
        s->replication = json_loads(PQgetvalue(res, 0, 10), 0, NULL);
        snprintf(s->sysid, sizeof(s->sysid), "%s", PQgetvalue(res, 0, 11));
        if (PQnfields(res) > 12 && !PQgetisnull(res, 0, 12)) {
            json_t *p = json_loads(PQgetvalue(res, 0, 12), 0, NULL);
            if (json_is_object(p) && json_object_size(p))
                s->pending_restart = p;
            else
                json_decref(p);
        }
        a->pg_running = 1;
        if (!a->pg_stop_requested)
            set_state(a, "running");
        /* callbacks: first time running since a start -> on_start; role flips later ->
         * on_role_change (promotion, or a primary that was restarted as a replica) */
        const char *role = s->in_recovery ? "replica" : AGENT_PRIMARY_ROLE;
        if (a->cb_restarting) { /* POST /restart: one on_restart instead of stop + start */
            a->cb_restarting = 0;
            run_callback(a, "on_restart", role);
        } else if (!a->cb_role[0]) {
            run_callback(a, "on_start", role);
        } else if (strcmp(a->cb_role, role) != 0) {
            run_callback(a, "on_role_change", role);
        }
        snprintf(a->cb_role, sizeof(a->cb_role), "%s", role);
    }
    after_pg_status(a);
}

/* ---------------- simple SQL helper ---------------- */

static void run_sql(agent *a, const char *sql, pgq_cb cb)
{
    char ci[1024];
    conninfo_local(a, ci, sizeof(ci));
    if (!pgq_run(a->loop, ci, sql, 10000, cb, a) && cb)
        cb(NULL, "cannot start query", a);
}

static void on_checkpoint_after_promote(PGresult *res, const char *err, void *arg)
{
    agent *a = arg;
    if (res) {
        a->checkpoint_after_promote_pending = 0;
        log_info("checkpoint after promote done");
    }
}

static void on_slots(PGresult *res, const char *err, void *arg)
{
    if (err)
        log_warn("replication slot maintenance failed: %s", err);
}

/* Slots of members that left: a slot this leader keeps for a member whose key is gone
 * is dropped once the member has been absent for member_slots_ttl (else the primary would
 * retain WAL for it forever and fill the disk). Only slots that belonged to members seen
 * by this agent are touched; other slots (e.g. a backup tool's) are left alone. */
static void drop_departed_slots(agent *a)
{
    if (!a->member_slots)
        a->member_slots = json_object();
    uint64_t now = now_ms(a);
    const char *name;
    json_t *m;
    json_object_foreach(a->members, name, m)
    {
        if (strcmp(name, a->cfg.name) == 0)
            continue;
        char slot[64];
        pgfiles_slot_name(name, slot, sizeof(slot));
        json_object_set_new(a->member_slots, slot, json_integer(0));
    }
    const char *slot;
    json_t *since;
    void *tmp;
    json_object_foreach_safe(a->member_slots, tmp, slot, since)
    {
        int present = 0;
        json_object_foreach(a->members, name, m)
        {
            char s[64];
            pgfiles_slot_name(name, s, sizeof(s));
            if (strcmp(s, slot) == 0)
                present = 1;
        }
        if (present)
            continue;
        if (json_integer_value(since) == 0) {
            json_integer_set(since, (json_int_t)now);
            continue;
        }
        if (now - (uint64_t)json_integer_value(since) < (uint64_t)a->dyn.member_slots_ttl * 1000)
            continue;
        char q[160] = "";
        pgfiles_quote(slot, q, sizeof(q));
        char sql[512];
        snprintf(sql, sizeof(sql),
                 "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE "
                 "slot_name = %s AND slot_type = 'physical' AND NOT active",
                 q);
        log_info("dropping replication slot %s: its member has been gone for %lld s "
                 "(member_slots_ttl)",
                 slot, (long long)a->dyn.member_slots_ttl);
        run_sql(a, sql, on_slots);
        json_object_del(a->member_slots, slot);
    }
}

static void ensure_slots(agent *a)
{
    if (!a->dyn.use_slots)
        return;
    drop_departed_slots(a);
    char sql[4096] = "SELECT pg_create_physical_replication_slot(n, true) FROM unnest(ARRAY[";
    int n = 0;
    const char *name;
    json_t *m;
    json_object_foreach(a->members, name, m)
    {
        if (strcmp(name, a->cfg.name) == 0)
            continue;
        char slot[64];
        pgfiles_slot_name(name, slot, sizeof(slot));
        char q[160] = "";
        pgfiles_quote(slot, q, sizeof(q));
        size_t l = strlen(sql);
        snprintf(sql + l, sizeof(sql) - l, "%s%s", n ? "," : "", q);
        n++;
    }
    if (n == 0)
        return;
    size_t l = strlen(sql);
    snprintf(sql + l, sizeof(sql) - l,
             "]::text[]) n WHERE n NOT IN (SELECT slot_name FROM pg_replication_slots)");
    run_sql(a, sql, on_slots);
}

/* ---------------- DCS writes ---------------- */

static void on_write_logged(const etcd_result *r, void *arg)
{
    if (!r->ok)
        log_warn("DCS write failed: %s", r->error ? r->error : "?");
}

static void put_key(agent *a, const char *name, const char *value, int64_t lease)
{
    char k[512];
    key(a, name, k, sizeof(k));
    etcd_put(a->etcd, k, strlen(k), value, strlen(value), lease, dcs_timeout(a), on_write_logged,
             a);
}

static json_t *member_json(agent *a)
{
    char conn[300], api[300];
    snprintf(conn, sizeof(conn), "postgres://%s/postgres", a->cfg.pg_connect_address);
    snprintf(api, sizeof(api), "http://%s/patroni", a->cfg.rest_connect_address);
    json_t *m = json_object();
    json_object_set_new(m, "conn_url", json_string(conn));
    json_object_set_new(m, "api_url", json_string(api));
    json_object_set_new(m, "state", json_string(agent_public_state(a)));
    json_object_set_new(m, "role", json_string(agent_role(a)));
    json_object_set_new(m, "version", json_string(AGENT_PATRONI_VERSION));
    if (a->checkpoint_after_promote_pending)
        json_object_set_new(m, "checkpoint_after_promote", json_false());
    if (json_object_size(a->cfg.tags))
        json_object_set(m, "tags", a->cfg.tags);
    if (a->pg_running && a->st.valid && a->st.pending_restart)
        json_object_set_new(m, "pending_restart", json_true());
    if (a->pg_running && a->st.valid) {
        json_object_set_new(m, "xlog_location", json_integer(agent_wal(a)));
        if (a->st.in_recovery && strcmp(a->st.receiver_status, "streaming") == 0)
            json_object_set_new(m, "replication_state", json_string("streaming"));
        if (a->st.timeline)
            json_object_set_new(m, "timeline", json_integer(a->st.timeline));
    }
    /* patronictl pause --wait polls the member keys for it */
    if (a->dyn.pause)
        json_object_set_new(m, "pause", json_true());
    return m;
}

static void iso_now(char *out, size_t outsz)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, outsz, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
}

static int64_t last_history_tl = 0;
static int history_timeline(const agent *a);
static int leader_timeline(const agent *a);

/* The history key from postgres' own timeline history file pg_wal/<TL>.history (lines
 * "parent_tli<TAB>switch_lsn<TAB>reason"), as Patroni builds it: exact switch LSNs. Lines
 * the DCS key already has keep their timestamp and leader; new lines get now + my name.
 * NULL when the file is missing or malformed. A small local file: read directly. */
static json_t *history_from_file(const agent *a, int tl)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/pg_wal/%08X.history", a->cfg.data_dir, (unsigned)tl);
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    json_t *h = json_array();
    char line[1024], ts[40];
    iso_now(ts, sizeof(ts));
    int bad = 0;
    while (fgets(line, sizeof(line), f) && json_array_size(h) < 10000) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        char *tab1 = strchr(line, '\t');
        char *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
        if (!tab1) {
            bad = 1;
            break;
        }
        *tab1 = '\0';
        if (tab2)
            *tab2 = '\0';
        char *end;
        long tli = strtol(line, &end, 10);
        int64_t lsn = controldata_lsn(tab1 + 1);
        if (*end || tli <= 0 || lsn < 0) {
            bad = 1;
            break;
        }
        char reason[512] = "";
        if (tab2) {
            snprintf(reason, sizeof(reason), "%s", tab2 + 1);
            reason[strcspn(reason, "\r\n")] = '\0';
        }
        json_t *prev = NULL;
        size_t i;
        json_t *e;
        json_array_foreach(a->history, i, e)
        {
            if (json_integer_value(json_array_get(e, 0)) == tli && json_array_size(e) >= 5)
                prev = e;
        }
        if (prev)
            json_array_append_new(h,
                                  json_pack("[I,I,s,O,O]", (json_int_t)tli, (json_int_t)lsn, reason,
                                            json_array_get(prev, 3), json_array_get(prev, 4)));
        else
            json_array_append_new(h, json_pack("[I,I,s,s,s]", (json_int_t)tli, (json_int_t)lsn,
                                               reason, ts, a->cfg.name));
    }
    fclose(f);
    if (bad || json_array_size(h) == 0) {
        json_decref(h);
        return NULL;
    }
    return h;
}

static void publish(agent *a)
{
    if (!a->dcs_ok || a->lease_id == 0 || !a->name_checked)
        return;
    json_t *m = member_json(a);
    char *s = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    char name[300];
    snprintf(name, sizeof(name), "members/%s", a->cfg.name);
    if (s)
        put_key(a, name, s, a->lease_id);
    free(s);
    if (!a->am_leader || !a->pg_running || a->st.in_recovery)
        return;
    char st[64];
    snprintf(st, sizeof(st), "{\"optime\":%" PRId64 "}", a->st.wal_flush);
    put_key(a, "status", st, 0);
    /* history: one line per timeline switch we have seen while primary */
    int tl = a->st.timeline;
    if (tl > 1 && history_timeline(a) < tl && last_history_tl != tl) {
        json_t *h = history_from_file(a, tl);
        if (!h) { /* fallback: the last published optime approximates the switch point */
            h = a->history ? json_deep_copy(a->history) : json_array();
            char ts[40];
            iso_now(ts, sizeof(ts));
            json_array_append_new(h, json_pack("[I,I,s,s,s]", (json_int_t)(tl - 1),
                                               (json_int_t)a->optime,
                                               "no recovery target specified", ts, a->cfg.name));
        }
        char *hs = json_dumps(h, JSON_COMPACT);
        json_decref(h);
        if (hs)
            put_key(a, "history", hs, 0);
        free(hs);
        last_history_tl = tl;
    } else if (tl == 1 && !a->history) {
        put_key(a, "history", "[]", 0);
    }
    if (a->dyn.failsafe_mode) {
        json_t *fs = json_object();
        const char *n;
        json_t *mm;
        json_object_foreach(a->members, n, mm)
        {
            json_t *u = json_object_get(mm, "api_url");
            if (json_is_string(u))
                json_object_set(fs, n, u);
        }
        char api[300];
        snprintf(api, sizeof(api), "http://%s/patroni", a->cfg.rest_connect_address);
        json_object_set_new(fs, a->cfg.name, json_string(api));
        if (!a->failsafe || !json_equal(fs, a->failsafe)) {
            char *fss = json_dumps(fs, JSON_COMPACT);
            if (fss)
                put_key(a, "failsafe", fss, 0);
            free(fss);
        }
        json_decref(fs);
    }
}

/* ---------------- bootstrap ---------------- */

static void bootstrap_failed(agent *a, const char *why)
{
    log_error("bootstrap failed: %s; removing the initialize key and moving the data "
              "directory aside",
              why);
    char k[512];
    key(a, "initialize", k, sizeof(k));
    etcd_delete(a->etcd, k, strlen(k), NULL, 0, dcs_timeout(a), NULL, NULL);
    if (a->pg)
        stop_postgres(a, SIGQUIT);
    char failed[600];
    snprintf(failed, sizeof(failed), "%s.failed", a->cfg.data_dir);
    char cmd[1300];
    snprintf(cmd, sizeof(cmd), "%s", failed);
    if (rename(a->cfg.data_dir, failed) != 0)
        log_error("rename %s: %s", a->cfg.data_dir, strerror(errno));
    a->exit_code = 1;
    a->stopping = 1;
    evloop_stop(a->loop);
}

static void bootstrap_step(agent *a, int step);

static void on_bootstrap_leader(const etcd_result *r, void *arg)
{
    agent *a = arg;
    if (!r->ok) {
        bootstrap_failed(a, r->error ? r->error : "cannot write leader key");
        return;
    }
    a->am_leader = 1;
    a->lease_confirmed_sent_ms = now_ms(a);
    arm_fence(a);
    snprintf(a->leader, sizeof(a->leader), "%.127s", a->cfg.name);
    put_key(a, "initialize", a->st.sysid, 0);
    char *cfgs = json_dumps(a->cfg.bootstrap_dcs, JSON_COMPACT);
    if (cfgs)
        put_key(a, "config", cfgs, 0);
    free(cfgs);
    log_info("bootstrap done: leader with system identifier %s", a->st.sysid);
    set_busy(a, NULL);
    agent_wake(a);
}

static void on_bootstrap_sql(PGresult *res, const char *err, void *arg)
{
    agent *a = arg;
    if (!res) {
        bootstrap_failed(a, err ? err : "bootstrap SQL failed");
        return;
    }
    bootstrap_step(a, 3);
}

static void on_bootstrap_probe(PGresult *res, const char *err, void *arg)
{
    agent *a = arg;
    if (!res) {
        if (!a->pg) {
            bootstrap_failed(a, "postgres exited during bootstrap");
            return;
        }
        bootstrap_step(a, 1); /* not up yet: probe again */
        return;
    }
    snprintf(a->st.sysid, sizeof(a->st.sysid), "%s", PQgetvalue(res, 0, 0));
    bootstrap_step(a, 2);
}

static void on_probe_timer(evloop *loop, void *arg)
{
    agent *a = arg;
    run_sql(a, "SELECT system_identifier::text FROM pg_control_system()", on_bootstrap_probe);
}

static void bootstrap_step(agent *a, int step)
{
    if (step == 1) {
        evloop_timer_start(a->loop, 100, on_probe_timer, a);
        return;
    }
    if (step == 2) {
        char sql[4096] = "";
        char pw[600] = "";
        pgfiles_quote(a->cfg.replication.password, pw, sizeof(pw));
        snprintf(sql, sizeof(sql), "CREATE ROLE \"%s\" WITH REPLICATION LOGIN PASSWORD %s;",
                 a->cfg.replication.username, pw);
        if (a->cfg.rewind.username[0]) {
            pw[0] = '\0';
            pgfiles_quote(a->cfg.rewind.password, pw, sizeof(pw));
            size_t l = strlen(sql);
            snprintf(sql + l, sizeof(sql) - l,
                     "CREATE ROLE \"%s\" WITH LOGIN PASSWORD %s;"
                     "GRANT EXECUTE ON function pg_catalog.pg_ls_dir(text, boolean, boolean) TO "
                     "\"%s\";"
                     "GRANT EXECUTE ON function pg_catalog.pg_stat_file(text, boolean) TO \"%s\";"
                     "GRANT EXECUTE ON function pg_catalog.pg_read_binary_file(text) TO \"%s\";"
                     "GRANT EXECUTE ON function pg_catalog.pg_read_binary_file(text, bigint, "
                     "bigint, boolean) TO \"%s\";",
                     a->cfg.rewind.username, pw, a->cfg.rewind.username, a->cfg.rewind.username,
                     a->cfg.rewind.username, a->cfg.rewind.username);
        }
        run_sql(a, sql, on_bootstrap_sql);
        return;
    }
    if (step == 3) {
        /* Leader key: unconditional put with my lease (Patroni's take_leader). */
        char k[512];
        key(a, "leader", k, sizeof(k));
        etcd_put(a->etcd, k, strlen(k), a->cfg.name, strlen(a->cfg.name), a->lease_id,
                 dcs_timeout(a), on_bootstrap_leader, a);
    }
}

static void on_initdb(proc *p, int status, const char *out, void *arg)
{
    agent *a = arg;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        bootstrap_failed(a, "initdb failed");
        return;
    }
    char from[600], to[600];
    snprintf(from, sizeof(from), "%s/postgresql.conf", a->cfg.data_dir);
    snprintf(to, sizeof(to), "%s/postgresql.base.conf", a->cfg.data_dir);
    if (rename(from, to) != 0) {
        bootstrap_failed(a, "cannot keep initdb's postgresql.conf");
        return;
    }
    pgfiles_marker_set(&a->cfg, 1);
    a->needs_rewind = 1;
    start_postgres(a, 0);
    if (!a->pg) {
        bootstrap_failed(a, "cannot start postgres");
        return;
    }
    bootstrap_step(a, 1);
}

static int make_dir_for_pg(agent *a, const char *dir)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -1;
    if (getuid() == 0 && a->uid && chown(dir, a->uid, a->gid) != 0)
        return -1;
    return chmod(dir, 0700);
}

static void do_bootstrap(agent *a)
{
    set_busy(a, "bootstrap");
    set_state(a, "initializing new cluster");
    char err[256];
    if (make_dir_for_pg(a, a->cfg.data_dir) != 0) {
        bootstrap_failed(a, strerror(errno));
        return;
    }
    if (pgfiles_write_pgpass(&a->cfg, a->uid, a->gid, err, sizeof(err)) != 0) {
        bootstrap_failed(a, err);
        return;
    }
    /* superuser password via a pwfile readable only by the postgres user */
    char pwfile[600];
    snprintf(pwfile, sizeof(pwfile), "%s.pwfile", a->cfg.data_dir);
    FILE *f = fopen(pwfile, "we");
    if (!f) {
        bootstrap_failed(a, "cannot write pwfile");
        return;
    }
    fprintf(f, "%s\n", a->cfg.superuser.password);
    fclose(f);
    chmod(pwfile, 0600);
    if (getuid() == 0 && a->uid && chown(pwfile, a->uid, a->gid) != 0)
        log_warn("chown %s: %s", pwfile, strerror(errno));
    static char args[24][700];
    char *argv[32];
    int n = 0;
    snprintf(args[n], sizeof(args[n]), "%s/initdb", a->cfg.bin_dir);
    argv[n] = args[n];
    n++;
    snprintf(args[n], sizeof(args[n]), "--pgdata=%s", a->cfg.data_dir);
    argv[n] = args[n];
    n++;
    snprintf(args[n], sizeof(args[n]), "--username=%s", a->cfg.superuser.username);
    argv[n] = args[n];
    n++;
    snprintf(args[n], sizeof(args[n]), "--pwfile=%s", pwfile);
    argv[n] = args[n];
    n++;
    snprintf(args[n], sizeof(args[n]), "--auth-host=scram-sha-256");
    argv[n] = args[n];
    n++;
    snprintf(args[n], sizeof(args[n]), "--auth-local=trust");
    argv[n] = args[n];
    n++;
    size_t i;
    json_t *o;
    json_array_foreach(a->cfg.bootstrap_initdb, i, o)
    {
        if (n >= 22)
            break;
        if (json_is_string(o)) {
            snprintf(args[n], sizeof(args[n]), "--%s", json_string_value(o));
        } else {
            const char *k = json_object_iter_key(json_object_iter(o));
            json_t *v = json_object_iter_value(json_object_iter(o));
            if (json_is_integer(v))
                snprintf(args[n], sizeof(args[n]), "--%s=%lld", k,
                         (long long)json_integer_value(v));
            else
                snprintf(args[n], sizeof(args[n]), "--%s=%s", k, json_string_value(v));
        }
        argv[n] = args[n];
        n++;
    }
    argv[n] = NULL;
    proc_opts po = {.log_prefix = "initdb", .uid = a->uid, .gid = a->gid};
    if (!proc_spawn(a->loop, argv, &po, on_initdb, a))
        bootstrap_failed(a, "cannot run initdb");
}

static void on_init_race(const etcd_result *r, void *arg)
{
    agent *a = arg;
    if (!r->ok) {
        log_warn("initialize race: %s", r->error);
        set_busy(a, NULL);
        return;
    }
    if (!r->succeeded) {
        log_info("lost the bootstrap race: waiting for the leader to bootstrap");
        set_busy(a, NULL);
        agent_wake(a);
        return;
    }
    log_info("won the bootstrap race: running initdb");
    do_bootstrap(a);
}

/* ---------------- clone / rewind ---------------- */

static void move_aside(agent *a, const char *suffix)
{
    char aside[600], cmd[1400];
    snprintf(aside, sizeof(aside), "%s.%s", a->cfg.data_dir, suffix);
    /* keep one: remove the previous copy (recursive delete via a child would be async;
     * a rename of the old one first keeps this step non-blocking for the big tree) */
    char old[620];
    snprintf(old, sizeof(old), "%s.old", aside);
    if (access(aside, F_OK) == 0) {
        rename(aside, old);
        char *argv[] = {"/bin/rm", "-rf", old, NULL};
        proc_opts o = {.log_prefix = "rm", .quiet = 1};
        proc_spawn(a->loop, argv, &o, NULL, NULL);
    }
    snprintf(cmd, sizeof(cmd), "%s", aside);
    if (rename(a->cfg.data_dir, aside) != 0)
        log_error("cannot move %s aside: %s", a->cfg.data_dir, strerror(errno));
    else
        log_warn("moved diverged data directory to %s", aside);
}

static void on_basebackup(proc *p, int status, const char *out, void *arg)
{
    agent *a = arg;
    set_busy(a, NULL);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        log_error("pg_basebackup failed; will retry");
        move_aside(a, "failed-clone");
        set_state(a, "stopped");
        agent_wake(a);
        return;
    }
    /* The copied postgresql.conf is the leader's generated one; keep the base config. */
    pgfiles_marker_set(&a->cfg, 0);
    a->needs_rewind = 0;
    memset(&a->tlc, 0, sizeof(a->tlc)); /* a fresh copy of the leader: nothing diverged */
    start_postgres(a, 1);
    agent_wake(a);
}

static void do_clone(agent *a)
{
    char host[256];
    int port;
    if (member_conn(a, a->leader, host, sizeof(host), &port) != 0)
        return;
    char err[256];
    if (pgfiles_write_pgpass(&a->cfg, a->uid, a->gid, err, sizeof(err)) != 0) {
        log_error("%s", err);
        return;
    }
    /* pg_basebackup wants an empty or absent directory it can create. */
    char parent[600];
    snprintf(parent, sizeof(parent), "%s", a->cfg.data_dir);
    rmdir(a->cfg.data_dir);
    set_busy(a, "clone");
    set_state(a, "creating replica");
    char bin[512], d[600], h[300], pt[16], u[128], pass[600];
    snprintf(bin, sizeof(bin), "%s/pg_basebackup", a->cfg.bin_dir);
    snprintf(d, sizeof(d), "--pgdata=%s", a->cfg.data_dir);
    snprintf(h, sizeof(h), "--host=%s", host);
    snprintf(pt, sizeof(pt), "--port=%d", port);
    snprintf(u, sizeof(u), "--username=%s", a->cfg.replication.username);
    snprintf(pass, sizeof(pass), "PGPASSFILE=%s", a->cfg.pgpass);
    char *argv[] = {bin, d, h, pt, u, "--wal-method=stream", "--checkpoint=fast", "--no-password",
                    NULL};
    char *env[] = {pass, NULL};
    proc_opts o = {.log_prefix = "pg_basebackup", .uid = a->uid, .gid = a->gid, .extra_env = env};
    /* the parent directory must be writable by the postgres user */
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        if (getuid() == 0 && a->uid && chown(parent, a->uid, a->gid) != 0)
            log_warn("chown %s: %s", parent, strerror(errno));
    }
    log_info("cloning from %s (%s:%d)", a->leader, host, port);
    if (!proc_spawn(a->loop, argv, &o, on_basebackup, a))
        set_busy(a, NULL);
}

static void on_rewind(proc *p, int status, const char *out, void *arg)
{
    agent *a = arg;
    set_busy(a, NULL);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        log_error("pg_rewind failed");
        if (a->cfg.remove_data_directory_on_rewind_failure ||
            (a->tlc.diverged && a->cfg.remove_data_directory_on_diverged_timelines)) {
            move_aside(a, "diverged");
            log_warn("falling back to a fresh clone (%s)",
                     a->cfg.remove_data_directory_on_rewind_failure
                         ? "remove_data_directory_on_rewind_failure"
                         : "remove_data_directory_on_diverged_timelines");
            pgfiles_marker_set(&a->cfg, 0);
            a->needs_rewind = 0;
            memset(&a->tlc, 0, sizeof(a->tlc));
        } else {
            /* Before: needs_rewind stayed set and every cycle ran pg_rewind again, forever.
             * Now the failure is remembered for this leader timeline; the divergence check
             * decides how the data dir starts (as it is, reported as diverged). The marker
             * stays: an agent restart tries once more. */
            a->needs_rewind = 0;
            diverged_fix_failed(a, leader_timeline(a), "pg_rewind");
        }
        agent_wake(a);
        return;
    }
    log_info("pg_rewind done");
    pgfiles_marker_set(&a->cfg, 0);
    a->needs_rewind = 0;
    memset(&a->tlc, 0, sizeof(a->tlc));
    start_postgres(a, 1);
    agent_wake(a);
}

static void do_rewind(agent *a)
{
    char host[256];
    int port;
    json_t *lm = json_object_get(a->members, a->leader);
    if (json_is_false(json_object_get(lm, "checkpoint_after_promote"))) {
        log_info("waiting for leader %s to checkpoint after promote before pg_rewind", a->leader);
        return;
    }
    if (!a->dyn.use_pg_rewind) {
        log_warn("use_pg_rewind is off: moving the data directory aside and re-cloning");
        move_aside(a, "diverged");
        agent_wake(a);
        return;
    }
    if (member_conn(a, a->leader, host, sizeof(host), &port) != 0)
        return;
    char err[256];
    if (pgfiles_write_pgpass(&a->cfg, a->uid, a->gid, err, sizeof(err)) != 0) {
        log_error("%s", err);
        return;
    }
    set_busy(a, "rewind");
    set_state(a, "rewinding");
    const cfg_credentials *c = a->cfg.rewind.username[0] ? &a->cfg.rewind : &a->cfg.superuser;
    char bin[512], d[600], src[900], pass[600];
    snprintf(bin, sizeof(bin), "%s/pg_rewind", a->cfg.bin_dir);
    snprintf(d, sizeof(d), "--target-pgdata=%s", a->cfg.data_dir);
    snprintf(src, sizeof(src),
             "--source-server=host=%s port=%d user=%s dbname=postgres passfile=%s "
             "connect_timeout=3",
             host, port, c->username, a->cfg.pgpass);
    snprintf(pass, sizeof(pass), "PGPASSFILE=%s", a->cfg.pgpass);
    char *argv[] = {bin, d, src, NULL};
    char *env[] = {pass, NULL};
    proc_opts o = {.log_prefix = "pg_rewind", .uid = a->uid, .gid = a->gid, .extra_env = env};
    log_info("rewinding from %s", a->leader);
    if (!proc_spawn(a->loop, argv, &o, on_rewind, a))
        set_busy(a, NULL);
}

/* ---------------- leader race / promote / demote ---------------- */

static void on_pg_ctl_promote(proc *p, int status, const char *out, void *arg)
{
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        log_error("pg_ctl promote failed (status %d); the next cycle retries", status);
}

/* Promotion goes through `pg_ctl promote -W` (as Patroni does), an asynchronous child.
 * Writing promote.signal and sending SIGUSR1 ourselves was tried first and did not promote
 * reliably in testing (the startup process kept waiting for WAL), while pg_ctl did every
 * time; pg_ctl also validates the data dir's postmaster.pid. -W: do not wait, the HA loop
 * sees the result in the next status query. */
/* A member promoted while its timeline is behind the cluster's newest (a manual failover
 * to a replica that had not yet followed the last promotion) would give its new timeline
 * the ID of that newest one: PostgreSQL takes the highest history file it knows + 1, and
 * it never saw the file of a timeline it did not stream. Two different histories under one
 * ID: pg_rewind on a member of the other branch then says "same timeline, no rewind
 * required" and that member can never follow (found by ctl_ops.t). The history key holds
 * every switch the cluster made, so the missing files are written from it first; the
 * promotion then takes a fresh ID and records where it forked off. (A leader that died
 * before publishing its promotion in the history key stays a blind spot, as in Patroni.) */
static void write_missing_history(agent *a)
{
    int newest = history_timeline(a), mine = a->st.timeline;
    if (mine <= 0 || newest <= mine)
        return;
    for (int t = mine + 1; t <= newest; t++) {
        char path[600], tmp[620];
        snprintf(path, sizeof(path), "%s/pg_wal/%08X.history", a->cfg.data_dir, (unsigned)t);
        if (access(path, F_OK) == 0)
            continue;
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        FILE *f = fopen(tmp, "we");
        if (!f) {
            log_error("cannot write %s: %s", tmp, strerror(errno));
            return;
        }
        size_t i;
        json_t *e;
        json_array_foreach(a->history, i, e)
        {
            json_int_t tl = json_integer_value(json_array_get(e, 0));
            json_int_t lsn = json_integer_value(json_array_get(e, 1));
            const char *why = json_string_value(json_array_get(e, 2));
            if (tl > 0 && tl < t && lsn >= 0)
                fprintf(f, "%lld\t%X/%X\t%s\n", (long long)tl, (unsigned)((uint64_t)lsn >> 32),
                        (unsigned)((uint64_t)lsn & 0xffffffffu), why ? why : "from the DCS");
        }
        int bad = ferror(f) | (fchown(fileno(f), a->uid, a->gid) != 0 && getuid() == 0);
        bad |= fclose(f) != 0;
        if (bad || rename(tmp, path) != 0) {
            log_error("cannot write %s: %s", path, strerror(errno));
            unlink(tmp);
            return;
        }
        log_warn("my timeline %d is behind the cluster's %d: wrote %08X.history from the DCS "
                 "history key before promoting (so the new timeline gets a fresh ID)",
                 mine, newest, (unsigned)t);
    }
}

static void promote(agent *a)
{
    if (!a->pg || a->promote_requested)
        return;
    write_missing_history(a);
    pgfiles_marker_set(&a->cfg, 1);
    a->needs_rewind = 1;
    a->promote_requested = 1;
    a->checkpoint_after_promote_pending = 1;
    char bin[512];
    snprintf(bin, sizeof(bin), "%s/pg_ctl", a->cfg.bin_dir);
    char *argv[] = {bin, "promote", "-W", "-D", a->cfg.data_dir, NULL};
    proc_opts o = {.log_prefix = "pg_ctl", .uid = a->uid, .gid = a->gid};
    if (!proc_spawn(a->loop, argv, &o, on_pg_ctl_promote, a)) {
        log_error("cannot run pg_ctl promote: %s", strerror(errno));
        a->promote_requested = 0;
        return;
    }
    log_info("promoting postgres");
}

static void clear_failover_key(agent *a)
{
    if (a->failover_present)
        put_key(a, "failover", "{}", 0);
}

void agent_switchover_expired(agent *a)
{
    /* the REST caller got its 503: a request that could not be carried out must not fire
     * later by surprise (e.g. when the candidate becomes healthy an hour from now) */
    if (a->am_leader) {
        log_warn("switchover: not carried out within the deadline; request withdrawn");
        clear_failover_key(a);
    }
}

static void on_acquire(const etcd_result *r, void *arg)
{
    agent *a = arg;
    if (!r->ok || !r->succeeded) {
        log_info("leader race lost%s%s", r->ok ? "" : ": ", r->ok ? "" : r->error);
        cycle_end(a);
        return;
    }
    log_info("acquired the leader lock");
    a->am_leader = 1;
    snprintf(a->leader, sizeof(a->leader), "%.127s", a->cfg.name);
    arm_fence(a);
    clear_failover_key(a);
    if (a->st.in_recovery)
        promote(a);
    publish(a);
    cycle_end(a);
}

static void acquire(agent *a)
{
    char k[512];
    key(a, "leader", k, sizeof(k));
    etcd_compare c = {.key = k, .key_len = strlen(k), .target = ETCD_CMP_CREATE, .number = 0};
    etcd_op op = {.type = ETCD_OP_PUT,
                  .key = k,
                  .key_len = strlen(k),
                  .value = a->cfg.name,
                  .value_len = strlen(a->cfg.name),
                  .lease = a->lease_id};
    etcd_txn(a->etcd, &c, 1, &op, 1, NULL, 0, dcs_timeout(a), on_acquire, a);
}

static void release_leader(agent *a, etcd_cb cb)
{
    char k[512];
    key(a, "leader", k, sizeof(k));
    etcd_compare c = {.key = k,
                      .key_len = strlen(k),
                      .target = ETCD_CMP_VALUE,
                      .value = a->cfg.name,
                      .value_len = strlen(a->cfg.name)};
    etcd_op op = {.type = ETCD_OP_DELETE, .key = k, .key_len = strlen(k)};
    a->am_leader = 0;
    arm_fence(a);
    etcd_txn(a->etcd, &c, 1, &op, 1, NULL, 0, dcs_timeout(a), cb ? cb : on_write_logged, a);
}

/* Switchover, postgres down: publish its shutdown checkpoint as status.optime (as the
 * SIGTERM path does), then release the key; the candidates race from here. */
static void on_switchover_released(const etcd_result *r, void *arg)
{
    agent *a = arg;
    if (!r->ok)
        log_warn("switchover: releasing the leader key failed: %s (it expires with the lease)",
                 r->error ? r->error : "?");
    else
        log_info("switchover: leader key released after the shutdown checkpoint");
    set_busy(a, NULL);
    agent_wake(a);
}

static void on_switchover_status(const etcd_result *r, void *arg)
{
    agent *a = arg;
    if (!r->ok)
        log_warn("switchover: could not write the final status key: %s", r->error ? r->error : "?");
    release_leader(a, on_switchover_released);
}

static void on_switchover_controldata(agent *a, const pg_controldata *c)
{
    char st[64], k[512];
    if (!c || !a->dcs_ok) {
        release_leader(a, on_switchover_released);
        return;
    }
    snprintf(st, sizeof(st), "{\"optime\":%" PRId64 "}", c->checkpoint_lsn);
    key(a, "status", k, sizeof(k));
    log_info("switchover: shutdown checkpoint at %" PRId64 " (timeline %d); releasing the leader "
             "key",
             c->checkpoint_lsn, c->timeline);
    if (etcd_put(a->etcd, k, strlen(k), st, strlen(st), 0, dcs_timeout(a), on_switchover_status,
                 a) != 0)
        release_leader(a, on_switchover_released);
}

static void switchover_pg_down(agent *a)
{
    a->switchover_release_pending = 0;
    if (run_controldata(a, on_switchover_controldata) != 0)
        release_leader(a, on_switchover_released);
}

/* ---------------- peers ---------------- */

static void peers_done(agent *a)
{
    a->peers_polled = 1;
    decide_and_act(a);
}

typedef struct peer_req {
    agent *a;
    size_t idx;
} peer_req;

static void on_peer(const http_client_result *res, void *arg)
{
    peer_req *pr = arg;
    agent *a = pr->a;
    ha_peer *p = &a->peers[pr->idx];
    free(pr);
    if (res->status == 200) {
        json_t *j = json_loadb(res->body, res->body_len, 0, NULL);
        if (json_is_object(j)) {
            p->reachable = 1;
            const char *role = json_string_value(json_object_get(j, "role"));
            p->is_primary = role && (strcmp(role, "master") == 0 || strcmp(role, "primary") == 0) &&
                            json_is_string(json_object_get(j, "state")) &&
                            strcmp(json_string_value(json_object_get(j, "state")), "running") == 0;
            json_t *x = json_object_get(j, "xlog");
            int64_t loc = json_integer_value(json_object_get(x, "location"));
            int64_t rec = json_integer_value(json_object_get(x, "received_location"));
            int64_t rep = json_integer_value(json_object_get(x, "replayed_location"));
            p->wal = loc > rec ? loc : rec;
            if (rep > p->wal)
                p->wal = rep;
            p->nofailover = json_is_true(json_object_get(json_object_get(j, "tags"), "nofailover"));
            p->timeline = (int)json_integer_value(json_object_get(j, "timeline"));
            /* "starting": its postgres is coming up. "stopped" counts only while that
             * agent talks to the DCS (dcs_last_seen at most 2 s old), i.e. it is about to
             * start postgres; a primary that fenced itself because it lost the DCS stays
             * stopped and must not hold up the race (seen in partition.t: +8 s). */
            const char *st = json_string_value(json_object_get(j, "state"));
            p->running = st && strcmp(st, "running") == 0;
            json_int_t seen = json_integer_value(json_object_get(j, "dcs_last_seen"));
            int talks_to_dcs = seen > 0 && (json_int_t)time(NULL) - seen <= 2;
            p->starting =
                !p->is_primary && st &&
                (strcmp(st, "starting") == 0 || (strcmp(st, "stopped") == 0 && talks_to_dcs)) &&
                (!role || strcmp(role, "uninitialized") != 0);
        }
        json_decref(j);
    }
    if (--a->peers_pending == 0)
        peers_done(a);
}

static void poll_peers(agent *a)
{
    a->npeers = 0;
    a->peers_pending = 0;
    const char *name;
    json_t *m;
    /* members of the view plus failsafe members (the dead leader's key may be gone) */
    json_t *all = json_deep_copy(a->members);
    if (a->failsafe) {
        const char *fn;
        json_t *u;
        json_object_foreach(a->failsafe, fn, u)
        {
            if (!json_object_get(all, fn))
                json_object_set_new(all, fn, json_pack("{s:O}", "api_url", u));
        }
    }
    json_object_foreach(all, name, m)
    {
        if (strcmp(name, a->cfg.name) == 0 || a->npeers >= HA_MAX_PEERS)
            continue;
        const char *url = json_string_value(json_object_get(m, "api_url"));
        if (!url)
            continue;
        ha_peer *p = &a->peers[a->npeers];
        memset(p, 0, sizeof(*p));
        snprintf(p->name, sizeof(p->name), "%s", name);
        peer_req *pr = malloc(sizeof(*pr));
        if (!pr)
            continue;
        pr->a = a;
        pr->idx = a->npeers++;
        a->peers_pending++;
        http_client_opts o = {.timeout_ms = PEER_TIMEOUT_MS, .connect_timeout_ms = 500};
        if (!http_client_request(a->http, url, &o, on_peer, pr)) {
            free(pr);
            a->peers_pending--;
        }
    }
    json_decref(all);
    if (a->peers_pending == 0)
        peers_done(a);
}

/* ---------------- the cycle ---------------- */

static void cycle_end(agent *a)
{
    publish(a);
    rest_cycle(a);
    a->cycle_running = 0;
    a->last_cycle_end_ms = now_ms(a);
    if (a->stopping)
        return;
    uint64_t next = a->cycle_started_ms + (uint64_t)a->dyn.loop_wait * 1000;
    uint64_t now = now_ms(a);
    uint64_t delay = next > now ? next - now : 0;
    if (a->wake_pending) {
        a->wake_pending = 0;
        delay = 0;
    }
    if (a->cycle_timer)
        evloop_timer_cancel(a->loop, a->cycle_timer);
    a->cycle_timer = evloop_timer_start(a->loop, delay, on_cycle_timer, a);
}

static void act(agent *a, const ha_output *d)
{
    switch (d->action) {
    case HA_INIT_RACE: {
        char k[512];
        key(a, "initialize", k, sizeof(k));
        etcd_compare c = {.key = k, .key_len = strlen(k), .target = ETCD_CMP_CREATE};
        etcd_op op = {.type = ETCD_OP_PUT, .key = k, .key_len = strlen(k), .value = ""};
        set_busy(a, "initialize race");
        etcd_txn(a->etcd, &c, 1, &op, 1, NULL, 0, dcs_timeout(a), on_init_race, a);
        break;
    }
    case HA_CLONE:
        do_clone(a);
        break;
    case HA_RELEASE:
        release_leader(a, NULL);
        break;
    case HA_WRITE_INITIALIZE:
        put_key(a, "initialize", a->st.sysid, 0);
        break;
    case HA_START_PRIMARY:
        start_postgres(a, 0);
        break;
    case HA_START_REPLICA:
        start_postgres(a, 1);
        break;
    case HA_REWIND:
        if (a->pg) { /* a diverged replica: pg_rewind wants a cleanly stopped target */
            log_info("stopping postgres (fast) to rewind from %s", a->leader);
            stop_postgres(a, SIGINT);
        } else {
            do_rewind(a);
        }
        break;
    case HA_REINITIALIZE:
        if (a->pg) {
            log_info("stopping postgres (fast) to re-clone from %s", a->leader);
            stop_postgres(a, SIGINT);
        } else {
            log_warn("diverged from %s: moving the data directory aside, cloning again", a->leader);
            move_aside(a, "diverged");
            pgfiles_marker_set(&a->cfg, 0);
            a->needs_rewind = 0;
            a->data_sysid[0] = '\0';
            memset(&a->tlc, 0, sizeof(a->tlc));
            set_state(a, "stopped");
            a->wake_pending = 1;
        }
        break;
    case HA_CHECK_TIMELINE:
        diverged_check_start(a, leader_timeline(a));
        break;
    case HA_ACQUIRE:
        acquire(a);
        return; /* cycle_end from the callback */
    case HA_PROMOTE:
        promote(a);
        break;
    case HA_LEAD:
        if (a->promote_requested && !a->st.in_recovery) {
            a->promote_requested = 0;
            run_sql(a, "CHECKPOINT", on_checkpoint_after_promote);
        }
        if (a->failover_present && !a->failover_member[0] && !a->failover_leader[0])
            break;
        ensure_slots(a);
        if (!a->st.in_recovery && a->st.valid)
            sync_leader_step(a);
        break;
    case HA_DEMOTE:
        log_warn("demoting: %s", d->reason);
        fence_now(a, d->reason);
        break;
    case HA_SWITCHOVER:
        /* graceful: fast shutdown first; the key is released only once postgres is down
         * (switchover_pg_down). Releasing it at once let the candidate promote while the old
         * primary was still writing its shutdown checkpoint (and could still be committing):
         * the candidate forked before WAL another replica had already received, so that
         * replica could no longer follow (found by local_cluster.t). Postgres' walsenders
         * send everything up to the shutdown checkpoint to connected standbys before it exits;
         * the lease keeps being renewed meanwhile, and fencing still applies if it cannot be. */
        log_info("switchover: %s", d->reason);
        pgfiles_marker_set(&a->cfg, 1);
        a->needs_rewind = 1;
        a->switchover_release_pending = 1;
        set_busy(a, "switchover: stopping postgres before releasing the leader key");
        stop_postgres(a, SIGINT);
        if (!a->pg) /* nothing to stop */
            switchover_pg_down(a);
        break;
    case HA_FOLLOW:
        if (a->needs_rewind && a->pg) {
            log_info("former primary running read-only: stopping it to rewind from %s", a->leader);
            stop_postgres(a, SIGINT);
        } else if (strcmp(a->following, a->leader) != 0 && a->pg) {
            /* PG >= 13 reloads primary_conninfo on SIGHUP */
            char err[256];
            char host[256], slot[64];
            int port;
            if (member_conn(a, a->leader, host, sizeof(host), &port) == 0) {
                pgfiles_slot_name(a->cfg.name, slot, sizeof(slot));
                pg_upstream up = {
                    .host = host, .port = port, .slot = a->dyn.use_slots ? slot : NULL};
                if (pgfiles_write_conf(&a->cfg, a->dyn.parameters, 1, &up, a->uid, a->gid, err,
                                       sizeof(err)) == 0) {
                    proc_signal(a->pg, SIGHUP);
                    snprintf(a->following, sizeof(a->following), "%s", a->leader);
                    log_info("now following %s", a->leader);
                }
            }
        }
        break;
    case HA_FATAL:
        log_error("%s", d->reason);
        a->exit_code = 1;
        a->stopping = 1;
        if (a->pg)
            stop_postgres(a, SIGINT);
        evloop_stop(a->loop);
        break;
    case HA_POLL_PEERS:
        poll_peers(a);
        return;
    case HA_WAIT:
        break;
    }
    cycle_end(a);
}

/* The cluster's current timeline as the history key tells it (Patroni: last line's
 * timeline + 1); 0 when unknown. */
static int history_timeline(const agent *a)
{
    size_t n = json_array_size(a->history);
    if (n == 0)
        return 0;
    json_t *last = json_array_get(a->history, n - 1);
    json_int_t tl = json_integer_value(json_array_get(last, 0));
    return tl > 0 && tl < 1000000 ? (int)tl + 1 : 0;
}

/* The leader's timeline: its member key (published while its postgres runs), else what
 * the history key says; 0 when unknown. */
static int leader_timeline(const agent *a)
{
    json_t *m = json_object_get(a->members, a->leader);
    json_int_t t = json_integer_value(json_object_get(m, "timeline"));
    int h = history_timeline(a);
    int lt = t > 0 && t < 1000000 ? (int)t : 0;
    return lt > h ? lt : h;
}

static void decide_and_act(agent *a)
{
    ha_input in;
    memset(&in, 0, sizeof(in));
    in.me = a->cfg.name;
    in.nofailover = a->cfg.nofailover;
    in.paused = a->dyn.pause;
    in.dcs_ok = a->dcs_ok;
    in.initialize_present = a->initialize_present;
    in.initialize = a->initialize;
    in.leader = a->leader[0] ? a->leader : NULL;
    char h[256];
    int p;
    in.leader_has_conn = a->leader[0] && member_conn(a, a->leader, h, sizeof(h), &p) == 0;
    in.failover_leader = a->failover_present ? a->failover_leader : NULL;
    in.failover_member = a->failover_present ? a->failover_member : NULL;
    in.cluster_optime = a->optime;
    in.maximum_lag_on_failover = a->dyn.maximum_lag_on_failover;
    in.data_empty = pgfiles_data_empty(a->cfg.data_dir);
    in.sysid = a->st.sysid[0] ? a->st.sysid : a->data_sysid;
    in.pg_process = a->pg != NULL;
    in.pg_running = a->pg_running && a->st.valid;
    in.pg_primary = in.pg_running && !a->st.in_recovery;
    in.needs_rewind = a->needs_rewind;
    in.my_wal = agent_wal(a);
    in.my_timeline = a->st.valid ? a->st.timeline : 0;
    in.cluster_timeline = history_timeline(a);
    in.following_leader = a->leader[0] && strcmp(a->following, a->leader) == 0;
    /* Grace for starting peers: 2 x ttl from the moment this node saw the cluster
     * unlocked (a kill -9 failover never needs it: the survivors are running). */
    if (a->leader[0])
        a->unlocked_since_ms = 0;
    else if (a->unlocked_since_ms == 0)
        a->unlocked_since_ms = now_ms(a);
    in.wait_for_starting =
        a->unlocked_since_ms && now_ms(a) < a->unlocked_since_ms + (uint64_t)a->dyn.ttl * 2000;
    in.async_busy = a->busy || (a->pg && a->pg_stop_requested) ||
                    (!a->pg && now_ms(a) < a->pg_restart_not_before_ms);
    in.failsafe_hold = now_ms(a) < a->failsafe_hold_until_ms;
    in.sync_mode = a->dyn.synchronous_mode;
    in.sync_leader = a->sync_present ? a->sync_leader : NULL;
    in.sync_standby = a->sync_present ? a->sync_standby : NULL;
    in.resume_candidate = a->resume_candidate && !a->pg;
    in.resume_wal = a->resume_wal;
    in.resume_timeline = a->resume_timeline;
    int ltl = a->leader[0] ? leader_timeline(a) : 0;
    in.leader_timeline = ltl;
    in.streaming = a->st.valid && strcmp(a->st.receiver_status, "streaming") == 0;
    in.tl_checked = a->leader[0] ? diverged_checked(a, ltl, in.pg_running && a->st.in_recovery) : 1;
    in.diverged =
        a->tlc.diverged && strcmp(a->tlc.leader, a->leader) == 0 && a->tlc.leader_tl_dcs == ltl;
    in.diverged_fix = in.diverged ? diverged_fix(a) : 0;
    if (in.diverged && a->tlc.leader_tl > 0) /* the leader's own word (IDENTIFY_SYSTEM) */
        in.leader_timeline = a->tlc.leader_tl;
    in.peers_polled = a->peers_polled;
    in.peers = a->peers;
    in.npeers = a->npeers;
    ha_output d;
    ha_decide(&in, &d);
    if (d.action != a->last_decision.action || strcmp(d.reason, a->last_decision.reason) != 0)
        log_info("ha: %s (%s)", d.reason, ha_action_name(d.action));
    a->last_decision = d;
    act(a, &d);
}

static void after_pg_status(agent *a)
{
    /* The lock is mine only if the key says so and is on my lease; re-attach otherwise. */
    if (a->dcs_ok) {
        int mine = strcmp(a->leader, a->cfg.name) == 0;
        if (mine && a->leader_lease != a->lease_id && a->lease_id) {
            char k[512];
            key(a, "leader", k, sizeof(k));
            etcd_compare c = {.key = k,
                              .key_len = strlen(k),
                              .target = ETCD_CMP_VALUE,
                              .value = a->cfg.name,
                              .value_len = strlen(a->cfg.name)};
            etcd_op op = {.type = ETCD_OP_PUT,
                          .key = k,
                          .key_len = strlen(k),
                          .value = a->cfg.name,
                          .value_len = strlen(a->cfg.name),
                          .lease = a->lease_id};
            etcd_txn(a->etcd, &c, 1, &op, 1, NULL, 0, dcs_timeout(a), on_write_logged, a);
        }
        if (a->am_leader && !mine)
            log_warn("lost the leader lock (leader is now '%s')", a->leader);
        a->am_leader = mine;
        arm_fence(a);
    }
    a->peers_polled = 0;
    decide_and_act(a);
}

static void pg_status_step(agent *a)
{
    if (!a->pg || a->pg_stop_requested) {
        pg_status_clear(&a->st);
        a->pg_running = 0;
        after_pg_status(a);
        return;
    }
    char ci[1024];
    conninfo_local(a, ci, sizeof(ci));
    if (!pgq_run(a->loop, ci, STATUS_SQL, PG_QUERY_TIMEOUT_MS, on_status, a))
        on_status(NULL, "cannot start query", a);
}

/* failsafe: ask every other member to accept me as the primary */
typedef struct fs_round {
    agent *a;
    size_t pending, accepted, total;
    uint64_t sent_ms;
    char *body;     /* must outlive the requests */
    int from_cycle; /* 0: started by the renewal timer (see on_renew_timer) */
} fs_round;

static void fs_finish(fs_round *r)
{
    agent *a = r->a;
    if (!r->from_cycle) {
        a->renew_fs_in_flight = 0;
        if (a->dcs_ok) { /* the DCS came back meanwhile: the lease is what counts again */
            free(r->body);
            free(r);
            return;
        }
    }
    if (r->accepted == r->total && r->total > 0) {
        if (!a->failsafe_active)
            log_warn("DCS is not accessible: continuing as primary, failsafe mode is on and "
                     "all %zu members accepted",
                     r->total);
        a->failsafe_active = 1;
        a->failsafe_confirmed_sent_ms = r->sent_ms;
        arm_fence(a);
    } else {
        a->failsafe_active = 0;
        log_error("DCS is not accessible and only %zu of %zu members accepted failsafe: "
                  "demoting",
                  r->accepted, r->total);
        fence_now(a, "DCS lost and failsafe not confirmed by every member");
    }
    int from_cycle = r->from_cycle;
    free(r->body);
    free(r);
    if (from_cycle)
        cycle_end(a);
}

static void on_fs_reply(const http_client_result *res, void *arg)
{
    fs_round *r = arg;
    if (res->status == 200)
        r->accepted++;
    if (--r->pending == 0)
        fs_finish(r);
}

static void failsafe_round(agent *a, int from_cycle)
{
    fs_round *r = calloc(1, sizeof(*r));
    if (!r) {
        if (from_cycle)
            cycle_end(a);
        return;
    }
    r->a = a;
    r->from_cycle = from_cycle;
    if (!from_cycle)
        a->renew_fs_in_flight = 1;
    r->sent_ms = now_ms(a);
    json_t *targets = a->failsafe ? a->failsafe : a->members;
    char api[300];
    snprintf(api, sizeof(api), "http://%s/patroni", a->cfg.rest_connect_address);
    json_t *body = json_pack("{s:s,s:s,s:s}", "name", a->cfg.name, "conn_url", "", "api_url", api);
    char conn[300];
    snprintf(conn, sizeof(conn), "postgres://%s/postgres", a->cfg.pg_connect_address);
    json_object_set_new(body, "conn_url", json_string(conn));
    char *bs = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    const char *name;
    json_t *v;
    /* members check restapi.authentication on POST /failsafe: send ours (the same for the
     * whole cluster, as with Patroni) */
    char auth[512];
    const char *hdrs[] = {"Content-Type: application/json", NULL, NULL};
    if (cfg_basic_auth_header(&a->cfg.rest_auth, auth, sizeof(auth)) == 0)
        hdrs[1] = auth;
    json_object_foreach(targets, name, v)
    {
        if (strcmp(name, a->cfg.name) == 0)
            continue;
        const char *url = json_is_string(v) ? json_string_value(v)
                                            : json_string_value(json_object_get(v, "api_url"));
        if (!url)
            continue;
        char fu[400];
        snprintf(fu, sizeof(fu), "%s", url);
        char *pp = strstr(fu, "/patroni");
        if (pp)
            *pp = '\0';
        strncat(fu, "/failsafe", sizeof(fu) - strlen(fu) - 1);
        r->total++;
        r->pending++;
        http_client_opts o = {.method = "POST",
                              .headers = hdrs,
                              .body = bs,
                              .body_len = bs ? strlen(bs) : 0,
                              .timeout_ms = 800,
                              .connect_timeout_ms = 500};
        if (!http_client_request(a->http, fu, &o, on_fs_reply, r))
            r->pending--;
    }
    r->body = bs;
    if (r->pending == 0)
        fs_finish(r);
}

static void dcs_error(agent *a, const char *why)
{
    if (a->dcs_ok)
        log_error("DCS is not accessible: %s", why);
    a->dcs_ok = 0;
    int primary = a->pg_running && a->st.valid && !a->st.in_recovery;
    if (!primary) {
        /* replica: keep running read-only; refresh the local postgres state for REST */
        pg_status_step(a);
        return;
    }
    if (a->dyn.failsafe_mode && (a->am_leader || a->failsafe_active)) {
        failsafe_round(a, 1);
        return;
    }
    fence_now(a, "DCS is not accessible and failsafe mode is off");
    cycle_end(a);
}

/* ---- unique member name: refuse to run as a second member with the same name ---- */

static void on_name_probe(const http_client_result *res, void *arg)
{
    agent *a = arg;
    if (res->status == 200) {
        log_error("name: another member named '%s' is running at %s; member names must be "
                  "unique in the cluster, refusing to start",
                  a->cfg.name, a->name_conflict_url);
        a->exit_code = 2;
        a->stopping = 1;
        evloop_stop(a->loop);
        return;
    }
    a->name_checked = 1; /* the key is a stale one of an earlier incarnation */
    agent_wake(a);
}

/* First DCS view: a live key members/<my name> with another api_url is either this node's
 * previous incarnation at another address (its agent is gone) or a duplicate name. Ask
 * that api_url; until the answer, publish nothing (so a duplicate cannot overwrite the
 * running member's key). */
static void check_name(agent *a)
{
    a->name_check_started = 1;
    json_t *m = json_object_get(a->members, a->cfg.name);
    const char *url = json_string_value(json_object_get(m, "api_url"));
    char mine[300];
    snprintf(mine, sizeof(mine), "http://%s/patroni", a->cfg.rest_connect_address);
    if (!url || strcmp(url, mine) == 0) {
        a->name_checked = 1;
        return;
    }
    snprintf(a->name_conflict_url, sizeof(a->name_conflict_url), "%s", url);
    http_client_opts o = {.timeout_ms = PEER_TIMEOUT_MS, .connect_timeout_ms = 500};
    if (!http_client_request(a->http, a->name_conflict_url, &o, on_name_probe, a))
        a->name_checked = 1;
}

static void on_range(const etcd_result *r, void *arg)
{
    agent *a = arg;
    if (!r->ok) {
        dcs_error(a, r->error ? r->error : "range failed");
        return;
    }
    a->dcs_ok = 1;
    a->failsafe_active = 0;
    a->dcs_last_seen = (int64_t)time(NULL);
    view_from_range(a, r);
    if (!a->name_check_started)
        check_name(a);
    if (!a->name_checked) {
        cycle_end(a); /* nothing else until the name is known to be ours */
        return;
    }
    pg_status_step(a);
}

static void read_cluster(agent *a)
{
    char end[400];
    size_t pl = strlen(a->prefix);
    etcd_prefix_end(a->prefix, pl, end);
    etcd_range(a->etcd, a->prefix, pl, end, pl, 0, dcs_timeout(a), on_range, a);
}

typedef struct ka_ctx {
    agent *a;
    uint64_t sent;
} ka_ctx;

static void on_grant(const etcd_result *r, void *arg)
{
    ka_ctx *k = arg;
    agent *a = k->a;
    if (!r->ok || r->lease_id == 0) {
        free(k);
        dcs_error(a, r->error ? r->error : "lease grant failed");
        return;
    }
    a->lease_id = r->lease_id;
    a->lease_confirmed_sent_ms = k->sent;
    free(k);
    log_info("granted lease %" PRIx64 " (ttl %d s)", (uint64_t)a->lease_id, a->dyn.ttl);
    read_cluster(a);
}

static void on_keepalive(const etcd_result *r, void *arg)
{
    ka_ctx *k = arg;
    agent *a = k->a;
    if (!r->ok) {
        free(k);
        dcs_error(a, r->error ? r->error : "keepalive failed");
        return;
    }
    if (r->ttl <= 0) {
        log_warn("lease %" PRIx64 " expired; granting a new one", (uint64_t)a->lease_id);
        a->lease_id = 0;
        /* A primary that ran on failsafe while etcd was unreachable finds its lease (and
         * so its leader key) expired when etcd comes back. Every member accepted its
         * failsafe POST less than ttl ago, so none of them may race yet: keep postgres
         * running, grant a new lease and take the key back in this cycle (the race sees
         * "postgres already runs as primary here"). If someone else holds the key after
         * all, the next decision demotes. Without a live failsafe confirmation: fence. */
        uint64_t fs_deadline =
            a->failsafe_confirmed_sent_ms + (uint64_t)a->dyn.ttl * 1000 - fence_margin_ms(a);
        if (a->am_leader && !(a->failsafe_active && now_ms(a) < fs_deadline))
            fence_now(a, "leader lease expired");
        else if (a->am_leader)
            log_warn("lease expired while on failsafe: taking the leader key back");
        k->sent = now_ms(a);
        etcd_lease_grant(a->etcd, a->dyn.ttl, dcs_timeout(a), on_grant, k);
        return;
    }
    if (k->sent > a->lease_confirmed_sent_ms) /* the renewal timer may have a newer one */
        a->lease_confirmed_sent_ms = k->sent;
    free(k);
    arm_fence(a);
    read_cluster(a);
}

/* ---- lease renewal independent of the HA cycle ----
 * A cycle can take seconds (a postgres status query waits up to 2 s on a busy server, a
 * starved CPU slows everything). The leader's renewal must not wait for it: the fence fires
 * ttl - margin after the last CONFIRMED renewal, so a slow cycle alone would stop a healthy
 * primary. This timer renews every min(loop_wait, ttl/4) while this node leads: a lease
 * keepalive while the DCS answers, a failsafe round while it does not (failsafe mode). */
static uint64_t renew_interval_ms(const agent *a)
{
    uint64_t lw = (uint64_t)a->dyn.loop_wait * 1000, q = (uint64_t)a->dyn.ttl * 250;
    uint64_t i = lw < q ? lw : q;
    return i < 250 ? 250 : i;
}

static void on_renew_keepalive(const etcd_result *r, void *arg)
{
    ka_ctx *k = arg;
    agent *a = k->a;
    a->renew_ka_in_flight = 0;
    if (r->ok && r->ttl > 0 && r->lease_id == a->lease_id && k->sent > a->lease_confirmed_sent_ms) {
        a->lease_confirmed_sent_ms = k->sent;
        arm_fence(a);
    }
    /* failures are handled by the HA cycle (lease expiry, failsafe, fencing) */
    free(k);
}

static void on_renew_timer(evloop *loop, void *arg)
{
    agent *a = arg;
    a->renew_timer = NULL;
    if (a->stopping)
        return;
    uint64_t now = now_ms(a), iv = renew_interval_ms(a);
    if (a->am_leader && a->lease_id && a->dcs_ok && !a->renew_ka_in_flight &&
        now >= a->lease_confirmed_sent_ms + iv) {
        ka_ctx *k = malloc(sizeof(*k));
        if (k) {
            k->a = a;
            k->sent = now;
            a->renew_ka_in_flight = 1;
            if (etcd_lease_keepalive(a->etcd, a->lease_id, dcs_timeout(a), on_renew_keepalive, k) !=
                0) {
                a->renew_ka_in_flight = 0;
                free(k);
            }
        }
    } else if (a->failsafe_active && !a->dcs_ok && a->dyn.failsafe_mode && !a->renew_fs_in_flight &&
               now >= a->failsafe_confirmed_sent_ms + iv) {
        failsafe_round(a, 0);
    }
    a->renew_timer = evloop_timer_start(a->loop, iv, on_renew_timer, a);
}

static void cycle_start(agent *a)
{
    if (a->stopping || a->cycle_running)
        return;
    a->cycle_running = 1;
    a->cycle_started_ms = now_ms(a);
    ka_ctx *k = malloc(sizeof(*k));
    if (!k) {
        cycle_end(a);
        return;
    }
    k->a = a;
    k->sent = now_ms(a);
    if (a->lease_id == 0)
        etcd_lease_grant(a->etcd, a->dyn.ttl, dcs_timeout(a), on_grant, k);
    else
        etcd_lease_keepalive(a->etcd, a->lease_id, dcs_timeout(a), on_keepalive, k);
}

/* ---------------- watch: wake replicas at once when the leader key changes -------------- */

static void watch_start(agent *a);

static void on_watch_timer(evloop *loop, void *arg)
{
    watch_start(arg);
}

static void on_watch_event(int type, const etcd_kv *kv, int64_t rev, void *arg)
{
    agent *a = arg;
    size_t pl = strlen(a->prefix);
    if (kv->key_len < pl)
        return;
    const char *name = kv->key + pl;
    if (strcmp(name, "leader") == 0 || strcmp(name, "failover") == 0 ||
        (strcmp(name, "initialize") == 0 && type == 0)) {
        if (!a->am_leader || strcmp(name, "failover") == 0)
            agent_wake(a);
    }
}

static void on_watch_end(const char *why, void *arg)
{
    agent *a = arg;
    a->watch = NULL;
    if (!a->stopping)
        evloop_timer_start(a->loop, 500, on_watch_timer, a);
}

static void watch_start(agent *a)
{
    if (a->stopping || a->watch)
        return;
    char end[400];
    size_t pl = strlen(a->prefix);
    etcd_prefix_end(a->prefix, pl, end);
    a->watch =
        etcd_watch_start(a->etcd, a->prefix, pl, end, pl, 0, on_watch_event, on_watch_end, a);
    if (!a->watch)
        evloop_timer_start(a->loop, 500, on_watch_timer, a);
}

/* ---------------- pg_controldata ---------------- */

typedef struct cd_req {
    agent *a;
    controldata_cb cb;
} cd_req;

static void on_controldata(proc *p, int status, const char *out, void *arg)
{
    cd_req *r = arg;
    pg_controldata c;
    int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && controldata_parse(out, &c) == 0;
    if (!ok)
        log_warn("pg_controldata failed or printed something unexpected (status %d)", status);
    r->cb(r->a, ok ? &c : NULL);
    free(r);
}

static int run_controldata(agent *a, controldata_cb cb)
{
    cd_req *r = malloc(sizeof(*r));
    if (!r)
        return -1;
    r->a = a;
    r->cb = cb;
    char bin[512];
    snprintf(bin, sizeof(bin), "%s/pg_controldata", a->cfg.bin_dir);
    char *argv[] = {bin, "-D", a->cfg.data_dir, NULL};
    /* LC_ALL=C.UTF-8 (proc's environment) keeps the labels in English */
    proc_opts o = {.log_prefix = "pg_controldata", .uid = a->uid, .gid = a->gid, .quiet = 1};
    if (!proc_spawn(a->loop, argv, &o, on_controldata, r)) {
        free(r);
        return -1;
    }
    return 0;
}

int agent_run_controldata(agent *a, agent_controldata_cb cb)
{
    return run_controldata(a, cb);
}

/* Startup: the data dir's identity and last role come from pg_control itself, so a data dir
 * that last ran as a primary is rewound before following even if the marker file beside
 * it was lost (e.g. a restored volume), and the system id is checked before starting. */
static void on_startup_controldata(agent *a, const pg_controldata *c)
{
    set_busy(a, NULL);
    if (c) {
        snprintf(a->data_sysid, sizeof(a->data_sysid), "%s", c->sysid);
        if (controldata_was_primary(c)) {
            a->resume_candidate = 1;
            a->resume_wal = c->checkpoint_lsn;
            a->resume_timeline = c->timeline;
        }
        if (controldata_was_primary(c) && !a->needs_rewind) {
            log_info("pg_control says the data directory last ran as a primary (%s, timeline "
                     "%d): it will be rewound before following another leader",
                     c->state, c->timeline);
            a->needs_rewind = 1;
        }
    }
    agent_wake(a);
}

/* ---------------- shutdown ---------------- */

static void on_stop_released(const etcd_result *r, void *arg)
{
    agent *a = arg;
    log_info("leader key released; exiting");
    evloop_stop(a->loop);
}

static void on_stop_poll(evloop *loop, void *arg);

static void on_stop_status(const etcd_result *r, void *arg)
{
    agent *a = arg;
    if (!r->ok)
        log_warn("could not write the final status key: %s", r->error ? r->error : "?");
    release_leader(a, on_stop_released);
}

/* The leader's postgres is down: publish its shutdown checkpoint as status.optime (Patroni
 * does the same), so the replicas' race knows exactly how far the old primary got. */
static void on_stop_controldata(agent *a, const pg_controldata *c)
{
    if (!c || !a->dcs_ok) {
        release_leader(a, on_stop_released);
        return;
    }
    char st[64], k[512];
    snprintf(st, sizeof(st), "{\"optime\":%" PRId64 "}", c->checkpoint_lsn);
    key(a, "status", k, sizeof(k));
    log_info("shutdown checkpoint at %" PRId64 " (timeline %d): writing status before releasing "
             "the leader key",
             c->checkpoint_lsn, c->timeline);
    if (etcd_put(a->etcd, k, strlen(k), st, strlen(st), 0, dcs_timeout(a), on_stop_status, a) != 0)
        release_leader(a, on_stop_released);
}

static void stop_continue(agent *a)
{
    if (a->pg) {
        evloop_timer_start(a->loop, 50, on_stop_poll, a);
        return;
    }
    if (a->am_leader && !a->stop_optime_done) {
        /* status.optime = shutdown checkpoint, then delete the key: replicas race now */
        a->stop_optime_done = 1;
        if (run_controldata(a, on_stop_controldata) != 0)
            release_leader(a, on_stop_released);
        return;
    }
    evloop_stop(a->loop);
}

static void on_stop_poll(evloop *loop, void *arg)
{
    stop_continue(arg);
}

static void on_stop_checkpoint(PGresult *res, const char *err, void *arg)
{
    agent *a = arg;
    stop_postgres(a, SIGINT);
    stop_continue(a);
}

static void on_signal(evloop *loop, int fd, uint32_t events, void *arg)
{
    agent *a = arg;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
            if (a->stopping)
                continue;
            log_info("received signal %u: stopping (%s)", si.ssi_signo,
                     a->am_leader ? "leader: checkpoint, fast stop, release the key"
                                  : "replica: fast stop");
            a->stopping = 1;
            if (a->cycle_timer)
                evloop_timer_cancel(a->loop, a->cycle_timer);
            a->cycle_timer = NULL;
            if (a->am_leader && a->pg_running)
                run_sql(a, "CHECKPOINT", on_stop_checkpoint);
            else {
                stop_postgres(a, SIGINT);
                stop_continue(a);
            }
        } else if (si.ssi_signo == SIGHUP) {
            char err[600];
            if (agent_reload_config(a, err, sizeof(err)) != 0)
                log_error("SIGHUP: configuration not reloaded, keeping the running one: %s", err);
        }
    }
}

/* ---------------- main ---------------- */

int agent_main(const char *config_path);
int agent_main(const char *config_path)
{
    extern char **environ;
    static agent A;
    agent *a = &A;
    a->config_path = config_path;
    char err[600];
    if (load_config(&a->cfg, config_path, err, sizeof(err)) != 0) {
        log_error("invalid configuration: %s", err);
        return 2;
    }
    if (agent_dyn_config_parse(&a->dyn, a->cfg.bootstrap_dcs, err, sizeof(err)) != 0) {
        log_error("invalid configuration: bootstrap.dcs.%s", err);
        return 2;
    }
    snprintf(a->prefix, sizeof(a->prefix), "%.190s/%.190s/", a->cfg.namespace_, a->cfg.scope);
    if (getuid() == 0) {
        struct passwd *pw = getpwnam(a->cfg.pg_user);
        if (!pw) {
            log_error("postgresql.run_as: user '%s' does not exist (postgres refuses to run as "
                      "root)",
                      a->cfg.pg_user);
            return 2;
        }
        a->uid = pw->pw_uid;
        a->gid = pw->pw_gid;
    }
    a->members = json_object();
    set_state(a, "stopped");
    a->needs_rewind = pgfiles_marker_get(&a->cfg);
    a->loop = evloop_new();
    a->http = http_client_new(a->loop);
    const char *eps[CFG_MAX_HOSTS];
    for (size_t i = 0; i < a->cfg.n_etcd_hosts; i++)
        eps[i] = a->cfg.etcd_hosts[i];
    a->etcd = etcd_client_new(a->loop, a->http, eps, a->cfg.n_etcd_hosts);
    if (!a->loop || !a->http || !a->etcd)
        return 1;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    evloop_add_fd(a->loop, sfd, EPOLLIN, on_signal, a);
    if (rest_start(a) != 0) {
        log_error("restapi.listen: cannot listen on %s:%s: %s", a->cfg.rest_listen_host,
                  a->cfg.rest_listen_port, strerror(errno));
        return 1;
    }
    log_info("appliance-agent %s starting: scope %s, member %s, DCS %s (ttl %d, loop_wait %d, "
             "retry_timeout %d)",
             AGENT_PATRONI_VERSION, a->cfg.scope, a->cfg.name, a->cfg.etcd_hosts[0], a->dyn.ttl,
             a->dyn.loop_wait, a->dyn.retry_timeout);
    if (!pgfiles_data_empty(a->cfg.data_dir)) {
        set_busy(a, "reading pg_controldata");
        if (run_controldata(a, on_startup_controldata) != 0)
            set_busy(a, NULL);
    }
    watch_start(a);
    cycle_start(a);
    a->renew_timer = evloop_timer_start(a->loop, renew_interval_ms(a), on_renew_timer, a);
    evloop_run(a->loop);
    if (a->pg)
        proc_detach(a->pg);
    return a->exit_code;
}
