/* A replica whose WAL went past the point where the new leader forked its timeline (an
 * asynchronous failover where this replica had received more than the promoted one) can
 * never follow it. This file finds out (Patroni: rewind.py _check_timeline_and_lsn) and
 * keeps the verdict; agent/ha.c decides what to do with it (pg_rewind, re-clone, or stay
 * and report), agent/agent.c carries it out.
 *
 * One check: my timeline and position (running: IDENTIFY_SYSTEM on a replication connection
 * to my own postgres, as Patroni's get_replica_timeline -- a standby answers with the
 * timeline it replays and max(replayed, received on that timeline): WAL received is on disk
 * and will be replayed. The status query's timeline is not good enough: without a WAL
 * receiver it falls back to the last restartpoint's timeline, which lags behind a timeline
 * switch for minutes, and a healthy replica would look diverged. Stopped: pg_control's
 * minimum recovery point, or the checkpoint of a cleanly stopped primary), then on a replication
 * connection to the leader IDENTIFY_SYSTEM (its timeline, and the system id must be ours)
 * and TIMELINE_HISTORY <its timeline> (the switchpoints), then tl_diverged(). Everything is
 * asynchronous (libpq on the loop, pg_controldata as a child); a check of a stopped replica
 * holds a->busy so postgres is not started meanwhile.
 *
 * A verdict "diverged" sticks until the data dir was rewound or re-cloned or the leader (or
 * its timeline) changes; a failed fix is remembered for that leader timeline and never
 * retried by itself (no loop): the member then stays as it is -- a running postgres keeps
 * running read-only (/replica answers 503), a stopped one stays stopped (started, it would
 * exit at once) -- and its state says "diverged" (REST /patroni, the member key,
 * appliancectl list) until an operator reinitializes it. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/controldata.h"
#include "agent/timeline.h"
#include "log.h"

#define TL_CHECK_TIMEOUT_MS 3000
#define TL_CHECK_RETRY_MS   5000  /* a running replica: a failed or outdated check, again after */
#define TL_CHECK_RETRY_MAX  60000 /* ... doubling per consecutive failure up to this */

static uint64_t now_ms(agent *a)
{
    return evloop_update_now(a->loop);
}

static int64_t running_pos(const agent *a)
{
    return a->st.received > a->st.replayed ? a->st.received : a->st.replayed;
}

int diverged_checked(agent *a, int leader_tl, int running)
{
    const tl_check *c = &a->tlc;
    if (c->in_flight)
        return 1;
    if (!c->done || strcmp(c->leader, a->leader) != 0 || c->leader_tl_dcs != leader_tl)
        return 0;
    if (c->diverged)
        return 1; /* sticky: the position only moves on, until a rewind or a re-clone */
    if (!running) /* a stopped data dir does not move: one check per stop */
        return !c->running && c->pg_gen == a->pg_gen;
    if (!c->running)
        return 0;
    if (!c->error && c->key_tl == a->st.timeline && c->key_lsn == running_pos(a))
        return 1;
    /* e.g. pg_hba refuses the replication connection to myself: every 5 s forever would
     * only fill the log */
    unsigned shift = c->errors > 1 ? c->errors - 1 : 0;
    uint64_t delay = (uint64_t)TL_CHECK_RETRY_MS << (shift > 4 ? 4 : shift);
    return now_ms(a) < c->checked_at_ms + (delay > TL_CHECK_RETRY_MAX ? TL_CHECK_RETRY_MAX : delay);
}

int diverged_fix(const agent *a)
{
    const tl_check *c = &a->tlc;
    if (!c->diverged)
        return 0;
    if (c->failed_leader[0] && strcmp(c->failed_leader, a->leader) == 0 &&
        c->failed_leader_tl == c->leader_tl_dcs)
        return 0;
    if (a->dyn.use_pg_rewind)
        return 1;
    return a->cfg.remove_data_directory_on_diverged_timelines ? 2 : 0;
}

int diverged_stuck(const agent *a)
{
    return a->tlc.diverged && diverged_fix(a) == 0 && strcmp(a->tlc.leader, a->leader) == 0;
}

void diverged_fix_failed(agent *a, int leader_tl, const char *what)
{
    tl_check *c = &a->tlc;
    snprintf(c->failed_leader, sizeof(c->failed_leader), "%s", a->leader);
    c->failed_leader_tl = leader_tl;
    log_error("DIVERGED: %s failed; not retried while %s leads on timeline %d: this member "
              "stays as it is (it cannot follow the leader) until it is reinitialized (POST "
              "/reinitialize, appliancectl reinit)",
              what, a->leader, leader_tl);
}

json_t *diverged_json(const agent *a)
{
    const tl_check *c = &a->tlc;
    if (!c->diverged)
        return NULL;
    char mine[24], sp[24];
    tl_format_lsn(c->my_lsn, mine, sizeof(mine));
    tl_format_lsn(c->switchpoint, sp, sizeof(sp));
    int fix = diverged_fix(a);
    return json_pack("{s:s,s:i,s:i,s:s,s:s,s:s,s:s}", "leader", c->leader, "leader_timeline",
                     c->leader_tl, "timeline", c->my_tl, "lsn", mine, "switchpoint",
                     c->switchpoint >= 0 ? sp : "", "action",
                     fix == 1   ? "pg_rewind"
                     : fix == 2 ? "reinitialize"
                     : c->failed_leader[0] && strcmp(c->failed_leader, a->leader) == 0
                         ? "none: the fix failed, reinitialize this member"
                         : "none: use_pg_rewind is off and "
                           "remove_data_directory_on_diverged_timelines is not set",
                     "detail", c->why);
}

/* ---- the check ---- */

static void finish(agent *a, int error, int diverged)
{
    tl_check *c = &a->tlc;
    c->in_flight = 0;
    c->done = 1;
    c->error = error;
    c->errors = error ? c->errors + 1 : 0;
    c->diverged = !error && diverged;
    c->checked_at_ms = now_ms(a);
    if (c->busy_set) {
        c->busy_set = 0;
        agent_set_busy(a, NULL);
    }
    if (error)
        log_warn("timeline check against leader %s failed (%u in a row): %s%s", c->leader,
                 c->errors, c->why,
                 c->running ? " (retried later, 5 s doubling to 60 s)"
                            : " (starting postgres anyway)");
    else if (c->diverged)
        log_error("DIVERGED from leader %s: %s", c->leader, c->why);
    else
        log_info("timeline check against leader %s: not diverged: %s", c->leader, c->why);
    agent_wake(a);
}

/* to the leader, or (self) to my own postgres */
static void replication_conninfo(agent *a, int self, char *out, size_t outsz)
{
    char host[256];
    int port = 5432;
    if (self) {
        if (cfg_split_host_port(a->cfg.pg_connect_address, host, sizeof(host), &port) != 0)
            snprintf(host, sizeof(host), "127.0.0.1");
        port = a->cfg.pg_port;
    } else if (agent_member_conn(a, a->tlc.leader, host, sizeof(host), &port) != 0) {
        host[0] = '\0';
    }
    snprintf(out, outsz,
             "host=%s port=%d user=%s passfile=%s replication=true connect_timeout=2 "
             "application_name=appliance-agent-timeline-check",
             host, port, a->cfg.replication.username, a->cfg.pgpass);
}

static void on_history(PGresult *res, const char *err, void *arg)
{
    agent *a = arg;
    tl_check *c = &a->tlc;
    if (!res || PQntuples(res) != 1 || PQnfields(res) < 2) {
        snprintf(c->why, sizeof(c->why), "TIMELINE_HISTORY %d: %s", c->leader_tl,
                 err ? err : "unexpected result");
        finish(a, 1, 0);
        return;
    }
    tl_switch *h = calloc(TL_HISTORY_MAX, sizeof(*h));
    size_t n = 0;
    char perr[200];
    if (!h) {
        snprintf(c->why, sizeof(c->why), "out of memory");
        finish(a, 1, 0);
        return;
    }
    /* the walsender sends the file as is (text format): no bytea decoding */
    if (tl_history_parse(PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1), h, TL_HISTORY_MAX,
                         &n, perr, sizeof(perr)) != 0) {
        snprintf(c->why, sizeof(c->why), "leader %s: %s", c->leader, perr);
        free(h);
        finish(a, 1, 0);
        return;
    }
    tl_position me = {.timeline = c->my_tl, .lsn = c->my_lsn, .in_recovery = c->in_recovery};
    enum tl_verdict v =
        tl_diverged(h, n, c->leader_tl, &me, &c->switchpoint, c->why, sizeof(c->why));
    free(h);
    finish(a, v == TL_INVALID, v == TL_DIVERGED);
}

static void on_identify(PGresult *res, const char *err, void *arg)
{
    agent *a = arg;
    tl_check *c = &a->tlc;
    if (!res || PQntuples(res) != 1 || PQnfields(res) < 2) {
        snprintf(c->why, sizeof(c->why), "IDENTIFY_SYSTEM: %s", err ? err : "unexpected result");
        finish(a, 1, 0);
        return;
    }
    const char *sysid = PQgetvalue(res, 0, 0);
    const char *mine = a->st.sysid[0] ? a->st.sysid : a->data_sysid;
    char *end;
    long tl = strtol(PQgetvalue(res, 0, 1), &end, 10);
    if (end == PQgetvalue(res, 0, 1) || *end || tl <= 0 || tl > 0x7fffffffL) {
        snprintf(c->why, sizeof(c->why), "IDENTIFY_SYSTEM: bad timeline \"%.20s\"",
                 PQgetvalue(res, 0, 1));
        finish(a, 1, 0);
        return;
    }
    if (mine[0] && strcmp(sysid, mine) != 0) {
        snprintf(c->why, sizeof(c->why), "leader's system id %.30s is not mine (%.30s)", sysid,
                 mine);
        finish(a, 1, 0);
        return;
    }
    c->leader_tl = (int)tl;
    if (c->leader_tl <= c->my_tl) { /* no history needed to decide */
        tl_position me = {.timeline = c->my_tl, .lsn = c->my_lsn, .in_recovery = c->in_recovery};
        enum tl_verdict v =
            tl_diverged(NULL, 0, c->leader_tl, &me, &c->switchpoint, c->why, sizeof(c->why));
        finish(a, v == TL_INVALID, v == TL_DIVERGED);
        return;
    }
    char ci[1024], sql[64];
    replication_conninfo(a, 0, ci, sizeof(ci));
    snprintf(sql, sizeof(sql), "TIMELINE_HISTORY %d", c->leader_tl);
    if (!pgq_run(a->loop, ci, sql, TL_CHECK_TIMEOUT_MS, on_history, a))
        on_history(NULL, "cannot start the query", a);
}

static void ask_leader(agent *a)
{
    tl_check *c = &a->tlc;
    char mine[24];
    tl_format_lsn(c->my_lsn, mine, sizeof(mine));
    log_info("timeline check: my timeline %d, %s %s (%s); asking leader %s for its timeline "
             "history",
             c->my_tl, c->in_recovery ? "position" : "checkpoint", mine,
             c->running ? "running postgres" : "pg_control", c->leader);
    char ci[1024];
    replication_conninfo(a, 0, ci, sizeof(ci));
    if (!pgq_run(a->loop, ci, "IDENTIFY_SYSTEM", TL_CHECK_TIMEOUT_MS, on_identify, a))
        on_identify(NULL, "cannot start the query", a);
}

/* Running standby: IDENTIFY_SYSTEM on myself gives the replayed timeline and position. */
static void on_self_identify(PGresult *res, const char *err, void *arg)
{
    agent *a = arg;
    tl_check *c = &a->tlc;
    const char *tls =
        res && PQntuples(res) == 1 && PQnfields(res) >= 3 ? PQgetvalue(res, 0, 1) : "";
    char *end;
    long tl = strtol(tls, &end, 10);
    int64_t pos = res && tls[0] ? controldata_lsn(PQgetvalue(res, 0, 2)) : -1;
    if (!res || end == tls || *end || tl <= 0 || tl > 0x7fffffffL || pos < 0) {
        snprintf(c->why, sizeof(c->why),
                 "IDENTIFY_SYSTEM on my own postgres (replication user %s; pg_hba must allow "
                 "it): %s",
                 a->cfg.replication.username, err ? err : "unexpected result");
        finish(a, 1, 0);
        return;
    }
    c->my_tl = (int)tl;
    c->my_lsn = pos;
    ask_leader(a);
}

/* Stopped data dir: where it stands, as Patroni reads it (_get_local_timeline_lsn_from_
 * controldata): a standby's minimum recovery point (0/0 means it ran as a primary when it
 * stopped), a cleanly stopped primary's checkpoint; anything else is unknown. */
static void on_controldata(agent *a, const pg_controldata *cd)
{
    tl_check *c = &a->tlc;
    if (!cd) {
        snprintf(c->why, sizeof(c->why), "pg_controldata failed");
        finish(a, 1, 0);
        return;
    }
    int standby = strcmp(cd->state, "shut down in recovery") == 0 ||
                  strcmp(cd->state, "in archive recovery") == 0;
    if (standby && cd->min_recovery_lsn > 0 && cd->min_recovery_timeline > 0) {
        c->in_recovery = 1;
        c->my_lsn = cd->min_recovery_lsn;
        c->my_tl = cd->min_recovery_timeline;
    } else if (standby || strcmp(cd->state, "shut down") == 0) {
        c->in_recovery = 0;
        c->my_lsn = cd->checkpoint_lsn;
        c->my_tl = cd->timeline;
    } else {
        snprintf(c->why, sizeof(c->why),
                 "pg_control state \"%s\" gives no reliable position (not cleanly stopped)",
                 cd->state);
        finish(a, 1, 0);
        return;
    }
    ask_leader(a);
}

void diverged_check_start(agent *a, int leader_tl_dcs)
{
    tl_check *c = &a->tlc;
    if (c->in_flight)
        return;
    char fl[HA_NAME_MAX];
    int ft = c->failed_leader_tl;
    unsigned errors = c->errors;
    snprintf(fl, sizeof(fl), "%s", c->failed_leader);
    memset(c, 0, sizeof(*c));
    snprintf(c->failed_leader, sizeof(c->failed_leader), "%s", fl);
    c->failed_leader_tl = ft;
    c->errors = errors;
    snprintf(c->leader, sizeof(c->leader), "%s", a->leader);
    c->leader_tl_dcs = leader_tl_dcs;
    c->switchpoint = -1;
    c->in_flight = 1;
    c->pg_gen = a->pg_gen;
    if (a->pg && a->pg_running && a->st.valid && a->st.in_recovery) {
        c->running = 1;
        c->in_recovery = 1;
        c->key_tl = a->st.timeline;
        c->key_lsn = running_pos(a);
        char ci[1024];
        replication_conninfo(a, 1, ci, sizeof(ci));
        if (!pgq_run(a->loop, ci, "IDENTIFY_SYSTEM", TL_CHECK_TIMEOUT_MS, on_self_identify, a))
            on_self_identify(NULL, "cannot start the query", a);
        return;
    }
    if (a->pg) { /* starting or stopping: nothing reliable to compare now */
        snprintf(c->why, sizeof(c->why), "postgres is neither running nor stopped");
        finish(a, 1, 0);
        return;
    }
    c->busy_set = 1;
    agent_set_busy(a, "timeline check");
    if (agent_run_controldata(a, on_controldata) != 0) {
        snprintf(c->why, sizeof(c->why), "cannot run pg_controldata");
        finish(a, 1, 0);
    }
}
