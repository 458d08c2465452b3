/* The agent's runtime state, shared by the HA loop (agent/agent.c) and the REST API
 * (agent/rest.c). One evloop; everything below is touched only from the loop's thread. */
#ifndef AGENT_AGENT_H
#define AGENT_AGENT_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent/config.h"
#include "agent/controldata.h"
#include "agent/ha.h"
#include "agent/pgconn.h"
#include "agent/proc.h"
#include "etcd_client.h"
#include "evloop.h"
#include "http.h"
#include "http_client.h"

/* Patroni 3.0.2 is the compatibility target (the reference outputs and the Debian
 * patronictl are 3.0.2): primary role is spelled "master" on the wire, version "3.0.2". */
#define AGENT_PATRONI_VERSION "3.0.2"
#define AGENT_PRIMARY_ROLE    "master"

typedef struct pg_status {
    int valid;
    int in_recovery;
    int64_t wal_flush, received, replayed;
    int timeline;
    char start_time[48];
    int server_version;
    char receiver_status[32];
    char replayed_ts[48];
    int replay_paused;
    char sysid[32];
    json_t *replication; /* array (owned) */
    /* {guc: running value} of changed settings that need a restart (pg_settings'
     * pending_restart), NULL when none (owned) */
    json_t *pending_restart;
} pg_status;

/* Divergence check of this replica against the leader's timeline history (diverged.c). */
typedef struct tl_check {
    int in_flight;
    int busy_set; /* the check holds a->busy (postgres stopped: no start meanwhile) */
    /* what the last check looked at */
    char leader[HA_NAME_MAX];
    int leader_tl_dcs; /* the leader's timeline as the DCS said when the check started */
    int running;       /* position from the running postgres (else from pg_control) */
    unsigned pg_gen;   /* a->pg_gen at the check (a stopped data dir's position is stable) */
    int key_tl;        /* running: the status query's timeline and position at the check */
    int64_t key_lsn;   /* (what later cycles compare with) */
    int my_tl, in_recovery;
    int64_t my_lsn;
    int done, error;
    unsigned errors; /* consecutive failed checks (kept across checks): retry backoff */
    uint64_t checked_at_ms;
    /* result */
    int diverged;
    int leader_tl; /* from IDENTIFY_SYSTEM */
    int64_t switchpoint;
    char why[400];
    /* a rewind / re-clone of a divergence from this leader timeline failed: not retried */
    char failed_leader[HA_NAME_MAX];
    int failed_leader_tl;
} tl_check;

typedef struct agent {
    evloop *loop;
    http_client *http;
    etcd_client *etcd;
    http_server *rest;
    agent_config cfg;
    agent_dyn_config dyn;
    char prefix[400]; /* "/service/<scope>/" */
    uid_t uid;
    gid_t gid;

    /* DCS lease and fencing (see the timing argument in agent.c) */
    int64_t lease_id;
    uint64_t lease_confirmed_sent_ms; /* send time of the last keepalive etcd confirmed */
    uint64_t failsafe_confirmed_sent_ms;
    ev_timer *fence_timer;
    ev_timer *renew_timer; /* renewal independent of the cycle (agent.c) */
    int renew_ka_in_flight, renew_fs_in_flight;

    /* last DCS view */
    int dcs_ok;
    int64_t dcs_last_seen; /* epoch seconds */
    int initialize_present;
    char initialize[64];
    char leader[HA_NAME_MAX];
    int64_t leader_lease;
    char failover_leader[HA_NAME_MAX], failover_member[HA_NAME_MAX];
    int failover_present;
    int64_t failover_mod;
    int64_t optime;
    /* DCS sync key (synchronous mode): leader and its synchronous standby ("" none) */
    int sync_present;
    char sync_leader[HA_NAME_MAX], sync_standby[HA_NAME_MAX];
    /* synchronous_standby_names this primary runs with (agent/sync.c), "" = async */
    char ssn[HA_NAME_MAX + 4];
    json_t *members;      /* object: name -> member JSON (owned) */
    json_t *config_json;  /* DCS config (owned) or NULL */
    json_t *history;      /* DCS history array (owned) or NULL */
    json_t *failsafe;     /* DCS failsafe object (owned) or NULL */
    json_t *member_slots; /* leader: slot name -> ms since its member is gone (0: present) */
    int64_t config_mod;

    /* postgres */
    proc *pg;
    int pg_stop_requested;
    pg_status st;
    char data_sysid[32]; /* from pg_controldata (also when postgres is not running) */
    char cb_role[16];    /* role last announced to callbacks ("" = postgres not running) */
    int cb_restarting;   /* a requested restart is in progress: on_restart, not stop+start */
    int pg_running;
    unsigned pg_gen; /* +1 at every postgres exit */
    int needs_rewind;
    tl_check tlc;
    /* pg_control at startup said "last ran as the primary": candidate to resume as primary
     * without a promotion (ha.c resume_blocker) until postgres is first started */
    int resume_candidate;
    int64_t resume_wal;
    int resume_timeline;
    int busy; /* async action in flight */
    char busy_what[64];
    char state[40]; /* member key "state" */
    int checkpoint_after_promote_pending;
    int promote_requested;
    char following[HA_NAME_MAX]; /* leader postgres follows ("" none) */

    /* HA */
    int am_leader;
    ha_output last_decision;
    int cycle_running, wake_pending;
    ev_timer *cycle_timer;
    uint64_t cycle_started_ms;
    uint64_t last_cycle_end_ms;
    ha_peer peers[HA_MAX_PEERS];
    size_t npeers, peers_pending;
    int peers_polled;
    uint64_t unlocked_since_ms;      /* first cycle that saw no leader key (0: locked) */
    uint64_t failsafe_hold_until_ms; /* replica: a primary confirmed itself via failsafe */
    char failsafe_primary[HA_NAME_MAX];
    int failsafe_active; /* primary: running on failsafe */

    /* watch */
    etcd_watch *watch;

    /* REST requests answered when the work is done (rest.c; NULL: none pending) */
    http_conn *restart_conn;
    int restart_stage; /* 1 stopping, 2 started again */
    uint64_t restart_deadline_ms;
    http_conn *switchover_conn;
    char switchover_from[HA_NAME_MAX], switchover_to[HA_NAME_MAX];
    int switchover_is_failover; /* the pending answer is for POST /failover */
    uint64_t switchover_deadline_ms;
    const char *config_path;
    int name_check_started, name_checked; /* unique-name check on the first DCS view */
    char name_conflict_url[300];
    int reinit_pending; /* POST /reinitialize: data dir goes aside once postgres is down */

    int stopping;
    int stop_optime_done;           /* leader shutdown: final status written (or given up) */
    int switchover_release_pending; /* switchover: release the key once postgres is down */
    /* postgres that keeps dying right after its start (e.g. a replica that cannot follow the
     * leader's timeline) is restarted with a growing pause instead of in a tight loop */
    uint64_t pg_started_ms, pg_restart_not_before_ms;
    unsigned pg_quick_exits;
    int exit_code;
} agent;

/* agent.c */
void agent_wake(agent *a);
/* POST /switchover|/failover answered 503 at its deadline: withdraw the request. */
void agent_switchover_expired(agent *a); /* run an HA cycle as soon as possible */
int agent_is_leader(const agent *a);
const char *agent_role(const agent *a); /* "master", "replica", "uninitialized"... */
int64_t agent_wal(const agent *a);
/* Rewrites postgresql.conf / pg_hba.conf / pgpass for the current role and upstream and
 * sends SIGHUP to postgres (if running). */
void agent_pg_reload(agent *a);
/* Re-reads the config file; applies what can change at run time. 0, or -1 with err. */
int agent_reload_config(agent *a, char *err, size_t errsz);
/* POST /reinitialize: a replica throws its data dir away and clones it again. 0 started,
 * -1 refused (why says why, Patroni's wording). */
int agent_reinitialize(agent *a, char *why, size_t whysz);
/* Fast-stops postgres; the HA loop starts it again in its role. */
void agent_restart_postgres(agent *a);
/* agent.c helpers shared with diverged.c */
void agent_set_busy(agent *a, const char *what); /* NULL: not busy */
int agent_member_conn(const agent *a, const char *name, char *host, size_t hostsz, int *port);
typedef void (*agent_controldata_cb)(agent *a, const pg_controldata *c); /* NULL: failed */
int agent_run_controldata(agent *a, agent_controldata_cb cb);
/* "state" as members and REST report it: "diverged" for a replica that cannot follow. */
const char *agent_public_state(const agent *a);

/* diverged.c: replica WAL past the leader's fork (see there). */
/* A check result for this leader, its timeline and my position exists (or is in flight). */
int diverged_checked(agent *a, int leader_tl, int running);
void diverged_check_start(agent *a, int leader_tl);
int diverged_fix(const agent *a);   /* 0 none allowed, 1 pg_rewind, 2 re-clone */
int diverged_stuck(const agent *a); /* diverged from the current leader, no fix left */
void diverged_fix_failed(agent *a, int leader_tl, const char *what);
json_t *diverged_json(const agent *a); /* REST detail (new reference) or NULL */

/* rest.c */
/* Called at the end of every HA cycle: answers deferred REST requests. */
void rest_cycle(agent *a);
int rest_start(agent *a);
json_t *rest_status_json(const agent *a);

/* Synchronous mode (agent/sync.c). */
void sync_leader_step(agent *a);
/* postgresql.parameters for this node's postgresql.conf: the DCS ones plus the primary's
 * synchronous_standby_names. New reference. */
json_t *sync_conf_params(const agent *a, int replica);
/* This member is the synchronous standby named in the sync key (synchronous mode on). */
int sync_is_standby(const agent *a);

#endif
