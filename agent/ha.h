/* The HA decision as pure logic (no I/O, no clock): one cycle's view of the DCS, of the
 * local postgres and of the peers goes in, one action and a human-readable reason come
 * out. agent/agent.c executes the action. Follows contracts §6.2-6.5 (Patroni's
 * _run_cycle), simplified where noted. */
#ifndef AGENT_HA_H
#define AGENT_HA_H

#include <stddef.h>
#include <stdint.h>

#define HA_MAX_PEERS 16
#define HA_NAME_MAX  128

typedef struct ha_peer {
    char name[HA_NAME_MAX];
    int reachable;  /* answered GET /patroni */
    int is_primary; /* reported role master/primary */
    int64_t wal;    /* primary: location; replica: max(received, replayed) */
    int timeline;   /* reported timeline, 0 unknown */
    int starting;   /* agent answers, its postgres (with data) is not running yet */
    int running;    /* its postgres runs (state "running") */
    int nofailover;
} ha_peer;

typedef struct ha_input {
    const char *me;
    int nofailover;
    int paused;
    /* DCS view (valid when dcs_ok) */
    int dcs_ok;
    int initialize_present;
    const char *initialize;      /* "" while bootstrap is in progress */
    const char *leader;          /* NULL: cluster unlocked */
    int leader_has_conn;         /* leader's member key gives a conn_url */
    const char *failover_leader; /* failover key fields, NULL when absent */
    const char *failover_member;
    int64_t cluster_optime; /* status.optime, 0 if unknown */
    int64_t maximum_lag_on_failover;
    /* local postgres */
    int data_empty;
    const char *sysid; /* from pg_controldata; "" if unknown */
    int pg_process;    /* postmaster child exists */
    int pg_running;    /* answered the status query */
    int pg_primary;    /* running and not in recovery */
    int needs_rewind;  /* data last ran as a primary: rewind before following (a replica
                        * that diverged: see the timeline fields below) */
    int64_t my_wal;
    int my_timeline;       /* 0 unknown */
    int cluster_timeline;  /* last known timeline from the history key, 0 unknown */
    int following_leader;  /* postgres was started/reloaded with the leader as upstream */
    int wait_for_starting; /* still within the grace for peers whose postgres is starting */
    int async_busy;        /* initdb/clone/rewind/stop... in flight */
    int failsafe_hold;     /* a primary sent POST /failsafe less than ttl ago */
    /* synchronous mode: the DCS sync key (NULL when absent) */
    int sync_mode;
    const char *sync_leader;
    const char *sync_standby; /* "" no synchronous standby */
    /* postgres not started yet by this agent, and pg_control says the data dir last ran as
     * the primary ("shut down" or "in production"): where it stopped. See resume_blocker. */
    int resume_candidate;
    int64_t resume_wal;  /* pg_control: latest checkpoint location */
    int resume_timeline; /* pg_control: latest checkpoint's timeline */
    /* Diverged timelines (agent/timeline.h, agent/diverged.c). After a failover a replica
     * may hold WAL of the old timeline past the new leader's fork point. */
    int leader_timeline; /* the leader's timeline (its member key, else the history key); 0 */
    int streaming;       /* my WAL receiver streams */
    int tl_checked;      /* a divergence check for this leader, its timeline and my position
                          * has a result (or is in flight, or failed and waits to retry) */
    int diverged;        /* that check found my WAL past the fork (or my timeline off it) */
    int diverged_fix;    /* 0: none allowed (or it failed already), 1: pg_rewind, 2: re-clone */
    /* peers (valid when peers_polled) */
    int peers_polled;
    const ha_peer *peers;
    size_t npeers;
} ha_input;

enum ha_action {
    HA_WAIT,             /* nothing to do this cycle */
    HA_INIT_RACE,        /* create initialize="" if absent; winner bootstraps */
    HA_CLONE,            /* pg_basebackup from the leader */
    HA_RELEASE,          /* delete my leader key (e.g. data dir vanished) */
    HA_WRITE_INITIALIZE, /* put initialize = my sysid */
    HA_START_PRIMARY,    /* start postgres in place (leader; crash restart within lease) */
    HA_START_REPLICA,    /* start postgres as a replica of the leader (or read-only alone) */
    HA_REWIND,           /* pg_rewind from the leader, then start as replica */
    HA_POLL_PEERS,       /* ask every other member's /patroni, then decide again */
    HA_ACQUIRE,          /* create the leader key with my lease, then promote */
    HA_PROMOTE,          /* I hold the lock, postgres is a replica: promote */
    HA_LEAD,             /* I hold the lock and postgres is primary: all is well */
    HA_DEMOTE,           /* running primary without the lock: stop now (immediate) */
    HA_SWITCHOVER,       /* leader asked to hand over: graceful demote, release key */
    HA_FOLLOW,           /* replica of the leader: keep/adjust primary_conninfo */
    HA_FATAL,            /* refuse to go on (system id mismatch) */
    HA_CHECK_TIMELINE,   /* compare my position with the leader's timeline history */
    HA_REINITIALIZE,     /* diverged: stop postgres, move the data dir aside, clone again */
};

typedef struct ha_output {
    enum ha_action action;
    char reason[256];
} ha_output;

void ha_decide(const ha_input *in, ha_output *out);
const char *ha_action_name(enum ha_action a);

#endif
