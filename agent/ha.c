/* Pure HA decision. Order of checks follows Patroni's _run_cycle (contracts §6.2). */
#include "agent/ha.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void out_set(ha_output *out, enum ha_action a, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void out_set(ha_output *out, enum ha_action a, const char *fmt, ...)
{
    out->action = a;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
    va_end(ap);
}

const char *ha_action_name(enum ha_action a)
{
    static const char *const names[] = {
        "wait",          "init_race",  "clone",      "release", "write_initialize", "start_primary",
        "start_replica", "rewind",     "poll_peers", "acquire", "promote",          "lead",
        "demote",        "switchover", "follow",     "fatal",   "check_timeline",   "reinitialize"};
    return (unsigned)a < sizeof(names) / sizeof(names[0]) ? names[a] : "?";
}

static int is_me(const ha_input *in, const char *name)
{
    return name && strcmp(name, in->me) == 0;
}

/* The leader race (contracts §6.4), with one deliberate change from Patroni: peers' LIVE
 * WAL positions decide (the dead leader's status.optime only disqualifies a node lagging
 * more than maximum_lag_on_failover behind what the leader last published). */
static void race(const ha_input *in, ha_output *out)
{
    if (in->failsafe_hold) {
        out_set(out, HA_WAIT,
                "not racing: a primary confirmed itself via failsafe less than ttl ago");
        return;
    }
    if (in->nofailover) {
        out_set(out, in->pg_primary ? HA_DEMOTE : HA_WAIT,
                "not racing for the leader lock: tag nofailover is set");
        return;
    }
    /* paused: no automatic failover, but an operator's failover to this member goes on */
    if (in->paused && !in->pg_primary && !(in->failover_member && is_me(in, in->failover_member))) {
        out_set(out, HA_WAIT, "paused: replicas do not take the leader lock");
        return;
    }
    /* Synchronous mode: only the standby the sync key names (it has every acknowledged
     * commit) or that key's leader itself may take over (Patroni: sync.matches). */
    if (in->sync_mode && in->sync_leader && in->sync_leader[0] && in->sync_standby &&
        in->sync_standby[0] && !is_me(in, in->sync_leader) && !is_me(in, in->sync_standby)) {
        out_set(out, HA_WAIT,
                "synchronous mode: only the synchronous standby %s may take over from %s",
                in->sync_standby, in->sync_leader);
        return;
    }
    /* Switchover in progress: the old leader stays out while someone else can win; a
     * named candidate wins alone if it is reachable. */
    if (in->failover_member && in->failover_member[0] && !is_me(in, in->failover_member)) {
        if (!in->peers_polled) {
            out_set(out, HA_POLL_PEERS, "checking switchover candidate %s", in->failover_member);
            return;
        }
        for (size_t i = 0; i < in->npeers; i++)
            if (strcmp(in->peers[i].name, in->failover_member) == 0 && in->peers[i].reachable &&
                !in->peers[i].nofailover && (in->peers[i].running || in->peers[i].starting)) {
                out_set(out, in->pg_primary ? HA_DEMOTE : HA_WAIT,
                        "switchover candidate %s is healthy; leaving the lock to it",
                        in->failover_member);
                return;
            }
    }
    if (in->failover_member && is_me(in, in->failover_member)) {
        out_set(out, HA_ACQUIRE, "I am the switchover candidate");
        return;
    }
    if (in->pg_primary && !is_me(in, in->failover_leader)) {
        out_set(out, HA_ACQUIRE, "postgres already runs as primary here; taking the lock back");
        return;
    }
    if (!in->peers_polled) {
        out_set(out, HA_POLL_PEERS, "cluster has no leader: asking the other members");
        return;
    }
    if (in->cluster_optime > 0 && in->cluster_optime - in->my_wal > in->maximum_lag_on_failover &&
        !(in->failover_leader && in->failover_leader[0])) {
        out_set(out, HA_WAIT,
                "not healthy enough for leader race: my wal %lld lags %lld bytes behind last "
                "leader optime (maximum_lag_on_failover %lld)",
                (long long)in->my_wal, (long long)(in->cluster_optime - in->my_wal),
                (long long)in->maximum_lag_on_failover);
        return;
    }
    /* Timelines first (as Patroni): WAL positions on different timelines are not
     * comparable, and a node still on an older timeline than the cluster has reached
     * would promote into a history that diverges from what was already acknowledged. */
    if (in->my_timeline > 0 && in->cluster_timeline > in->my_timeline) {
        out_set(out, HA_WAIT, "my timeline %d is behind the cluster's last known timeline %d",
                in->my_timeline, in->cluster_timeline);
        return;
    }
    int others_healthy = 0;
    int sync_restricted = in->sync_mode && in->sync_leader && in->sync_leader[0] &&
                          in->sync_standby && in->sync_standby[0];
    for (size_t i = 0; i < in->npeers; i++) {
        const ha_peer *p = &in->peers[i];
        if (!p->reachable || is_me(in, p->name))
            continue;
        /* synchronous mode: a member that may not take over does not compete either (an
         * asynchronous standby may even hold WAL no commit was acknowledged for) */
        if (sync_restricted && !p->is_primary && strcmp(p->name, in->sync_standby) != 0 &&
            strcmp(p->name, in->sync_leader) != 0)
            continue;
        if (p->is_primary) {
            out_set(out, HA_WAIT, "primary %s is still alive", p->name);
            return;
        }
        if (p->nofailover)
            continue;
        if (in->failover_leader && strcmp(p->name, in->failover_leader) == 0)
            continue; /* the old leader of a switchover does not compete */
        others_healthy++;
        /* A peer whose postgres is still starting (e.g. the whole cluster restarts) may
         * be the one with the newest WAL; its position is unknown yet. Wait for it, but
         * only for a bounded time (a standby that cannot start must not block the
         * cluster forever). */
        if (p->starting && in->wait_for_starting) {
            out_set(out, HA_WAIT, "%s is starting: waiting for its WAL position", p->name);
            return;
        }
        if (in->my_timeline > 0 && p->timeline > in->my_timeline) {
            out_set(out, HA_WAIT, "%s is on a newer timeline (%d > %d)", p->name, p->timeline,
                    in->my_timeline);
            return;
        }
        if (in->my_timeline > 0 && p->timeline > 0 && p->timeline < in->my_timeline)
            continue; /* I am on the newer timeline */
        if (p->wal > in->my_wal) {
            out_set(out, HA_WAIT, "%s is ahead of me (wal %lld > %lld)", p->name, (long long)p->wal,
                    (long long)in->my_wal);
            return;
        }
        /* Equal positions: the lower name goes first so both do not race needlessly;
         * the create-if-absent on the leader key is the real arbiter anyway. */
        if (p->wal == in->my_wal && strcmp(p->name, in->me) < 0) {
            out_set(out, HA_WAIT, "%s has the same wal position and a lower name", p->name);
            return;
        }
    }
    if (is_me(in, in->failover_leader) && others_healthy > 0) {
        out_set(out, HA_WAIT, "switchover away from me in progress");
        return;
    }
    out_set(out, HA_ACQUIRE, "I am the healthiest member (wal %lld)", (long long)in->my_wal);
}

/* A full stop of the cluster (make down / docker-compose stop) and a start where the former
 * leader comes back first. Patroni 3.0.2 starts it read-only (no leader key), lets it win
 * the race and promotes it: a new timeline for every full restart, although nothing
 * happened. We start it as the primary directly -- leader key first, then postgres without
 * standby.signal: no promotion, no new timeline -- when that is provably safe:
 * - it was the primary of its timeline T when it stopped (pg_control "shut down" or "in
 *   production"; a demoted or fenced primary restarts as a standby and reads "shut down in
 *   recovery", a replica too);
 * - T is the cluster's newest timeline: every promotion appends to the history key, so no
 *   other member was promoted after it (T >= history's last timeline + 1), and no member
 *   that answers reports a newer timeline;
 * - on T only one server was ever primary (a timeline starts with one promotion), and
 *   replicas only receive WAL the primary has written, so nobody has WAL it lacks: the
 *   status key's optime (the last position a leader published; the shutdown checkpoint
 *   when the leader stopped cleanly) must not exceed its checkpoint, and no reachable
 *   member may report more WAL on T;
 * - no switchover is pending, no nofailover tag, not paused, no member runs as primary.
 * The leader key is still taken with create-if-absent: if another member won meanwhile,
 * this one follows it (rewinding first) as before. The one exposure is shared with
 * Patroni: a member promoted and killed before it could write the history key, and down
 * now, comes back diverged and is rewound (Patroni would promote the former leader to a
 * new timeline over that member's writes just the same). After a kill -9 of everything
 * ("in production"), the checkpoint usually lies behind the published optime, so the
 * usual read-only start and race apply. Returns NULL when safe, else why not. */
static const char *resume_blocker(const ha_input *in, char *buf, size_t bufsz)
{
    if (in->nofailover)
        return "tag nofailover is set";
    if (in->paused)
        return "paused";
    if ((in->failover_member && in->failover_member[0]) ||
        (in->failover_leader && in->failover_leader[0]))
        return "a switchover is pending";
    if (in->sync_mode && in->sync_leader && in->sync_leader[0] && !is_me(in, in->sync_leader))
        return "synchronous mode: the sync key names another leader";
    int cluster_tl = in->cluster_timeline > 0 ? in->cluster_timeline : 1;
    if (in->resume_timeline < cluster_tl) {
        snprintf(buf, bufsz, "my timeline %d is older than the cluster's %d", in->resume_timeline,
                 cluster_tl);
        return buf;
    }
    if (in->cluster_optime > in->resume_wal) {
        snprintf(buf, bufsz, "the last published optime %lld is past my checkpoint %lld",
                 (long long)in->cluster_optime, (long long)in->resume_wal);
        return buf;
    }
    for (size_t i = 0; in->peers_polled && i < in->npeers; i++) {
        const ha_peer *p = &in->peers[i];
        if (!p->reachable || is_me(in, p->name))
            continue;
        if (p->is_primary) {
            snprintf(buf, bufsz, "%s runs as primary", p->name);
            return buf;
        }
        if (p->timeline > in->resume_timeline ||
            (p->timeline == in->resume_timeline && p->wal > in->resume_wal)) {
            snprintf(buf, bufsz, "%s has newer WAL (timeline %d, wal %lld)", p->name, p->timeline,
                     (long long)p->wal);
            return buf;
        }
    }
    return NULL;
}

/* Diverged from the leader: rewind or re-clone when allowed (1), else say so and go on as
 * before (0: the caller decides; never a loop of attempts: a failed fix is not offered
 * again for the same leader timeline). */
static int diverged_act(const ha_input *in, ha_output *out, const char *when)
{
    if (in->diverged_fix == 1) {
        out_set(out, HA_REWIND,
                "my WAL went past the fork of leader %s's timeline %d: pg_rewind (%s)", in->leader,
                in->leader_timeline, when);
        return 1;
    }
    if (in->diverged_fix == 2) {
        out_set(out, HA_REINITIALIZE,
                "my WAL went past the fork of leader %s's timeline %d: re-cloning "
                "(remove_data_directory_on_diverged_timelines; %s)",
                in->leader, in->leader_timeline, when);
        return 1;
    }
    return 0;
}

void ha_decide(const ha_input *in, ha_output *out)
{
    if (!in->dcs_ok) {
        out_set(out, HA_WAIT, "DCS is not accessible");
        return;
    }
    if (in->async_busy) {
        out_set(out, HA_WAIT, "an action is in progress");
        return;
    }
    int locked = in->leader && in->leader[0];
    int mine = locked && is_me(in, in->leader);

    if (in->data_empty) {
        if (mine) {
            out_set(out, HA_RELEASE, "data directory is empty but I hold the lock");
            return;
        }
        if (locked) {
            if (!in->leader_has_conn) {
                out_set(out, HA_WAIT, "leader %s has not published its conn_url yet", in->leader);
                return;
            }
            out_set(out, HA_CLONE, "cloning a replica from leader %s", in->leader);
            return;
        }
        if (!in->initialize_present) {
            if (in->nofailover) {
                out_set(out, HA_WAIT, "waiting for a leader to bootstrap (nofailover)");
                return;
            }
            out_set(out, HA_INIT_RACE, "cluster not initialized: trying to bootstrap");
            return;
        }
        out_set(out, HA_WAIT, "waiting for leader to bootstrap");
        return;
    }

    if (in->initialize_present && in->initialize && in->initialize[0] && in->sysid &&
        in->sysid[0] && strcmp(in->initialize, in->sysid) != 0) {
        out_set(out, HA_FATAL, "system ID mismatch: node has %s, cluster %s", in->sysid,
                in->initialize);
        return;
    }
    if (mine && (!in->initialize_present || !in->initialize || !in->initialize[0]) && in->sysid &&
        in->sysid[0]) {
        out_set(out, HA_WRITE_INITIALIZE, "initialize key missing: writing my system id");
        return;
    }

    if (!in->pg_process) {
        /* Paused (Patroni's maintenance mode): a stopped postgres is not started -- the
         * operator stopped it or will start it -- and a leader without a running postgres
         * gives the lock up rather than holding it for nothing. */
        if (in->paused && mine) {
            out_set(out, HA_RELEASE, "paused: postgres is not running: releasing the leader lock");
            return;
        }
        if (in->paused) {
            out_set(out, HA_WAIT,
                    "paused: postgres is not running and is not started while paused");
            return;
        }
        if (mine) {
            out_set(out, HA_START_PRIMARY, "starting postgres in place: I still hold the lock");
            return;
        }
        if (locked && in->needs_rewind) {
            out_set(out, HA_REWIND, "former primary: rewinding from leader %s before following",
                    in->leader);
            return;
        }
        /* A replica about to start: if its WAL went past the leader's fork, postgres would
         * refuse to follow ("requested timeline does not contain minimum recovery point"). */
        if (locked && !mine && in->leader_has_conn && !in->tl_checked) {
            out_set(out, HA_CHECK_TIMELINE,
                    "checking my position against the timeline history of leader %s before "
                    "starting",
                    in->leader);
            return;
        }
        if (locked && !mine && in->diverged) {
            if (diverged_act(in, out, "before starting"))
                return;
            /* Starting it would not help: postgres finds the leader's newer timeline in
             * pg_wal (the WAL receiver fetched its history) and exits at once ("requested
             * timeline is not a child of this server's history"), a restart loop that only
             * fills the log. Stopped and reported, the operator decides. */
            out_set(out, HA_WAIT,
                    "DIVERGED from leader %s and no rewind or re-clone is allowed (or it "
                    "failed): postgres stays stopped; reinitialize this member",
                    in->leader);
            return;
        }
        char why[200];
        const char *blocked = NULL;
        if (!locked && in->resume_candidate) {
            blocked = resume_blocker(in, why, sizeof(why));
            if (!blocked && !in->peers_polled) {
                out_set(out, HA_POLL_PEERS,
                        "former primary, cluster has no leader: asking the other members");
                return;
            }
            if (!blocked) {
                out_set(out, HA_ACQUIRE,
                        "resuming as the primary of timeline %d without a promotion (it stopped "
                        "as the primary at wal %lld and nobody has newer data)",
                        in->resume_timeline, (long long)in->resume_wal);
                return;
            }
        }
        if (locked)
            out_set(out, HA_START_REPLICA, "starting as a replica of %s", in->leader);
        else
            out_set(out, HA_START_REPLICA, "starting read-only: cluster has no leader%s%s%s",
                    blocked ? " (not resuming as primary: " : "", blocked ? blocked : "",
                    blocked ? ")" : "");
        return;
    }
    if (!in->pg_running) {
        /* A standby started while there was no leader (or another one) has no WAL source
         * and may never finish starting: point it at the leader now (or, for a former
         * primary, stop it for pg_rewind) instead of waiting for it. */
        if (locked && !mine && !in->following_leader) {
            out_set(out, HA_FOLLOW, "postgres is starting without following leader %s", in->leader);
            return;
        }
        out_set(out, HA_WAIT, "postgres is starting");
        return;
    }
    if (!locked) {
        race(in, out);
        return;
    }
    if (mine) {
        if (!in->pg_primary) {
            out_set(out, HA_PROMOTE, "I hold the lock: promoting postgres");
            return;
        }
        int requested = (in->failover_member && in->failover_member[0]) ||
                        (in->failover_leader && in->failover_leader[0]);
        if (requested && !is_me(in, in->failover_member) &&
            (!in->failover_leader || !in->failover_leader[0] || is_me(in, in->failover_leader))) {
            /* Hand over only to a replica whose postgres runs (Patroni: is_failover_possible):
             * demoting towards a candidate that is still rewinding or cloning would leave the
             * cluster without a leader (ops.t caught it). Until one is ready: keep leading;
             * the request is withdrawn when its REST caller's deadline passes. */
            if (!in->peers_polled) {
                out_set(out, HA_POLL_PEERS, "switchover requested: checking the candidates");
                return;
            }
            int ready = 0;
            for (size_t i = 0; i < in->npeers; i++) {
                const ha_peer *p = &in->peers[i];
                if (p->reachable && p->running && !p->is_primary && !p->nofailover &&
                    (!in->failover_member || !in->failover_member[0] ||
                     strcmp(p->name, in->failover_member) == 0))
                    ready = 1;
            }
            if (!ready) {
                out_set(out, HA_LEAD,
                        "switchover to %s waits: no running replica may take over yet",
                        (in->failover_member && in->failover_member[0]) ? in->failover_member
                                                                        : "any member");
                return;
            }
            out_set(out, HA_SWITCHOVER, "switchover requested to %s",
                    (in->failover_member && in->failover_member[0]) ? in->failover_member
                                                                    : "any member");
            return;
        }
        out_set(out, HA_LEAD, "no action: I am the leader with the lock");
        return;
    }
    if (in->pg_primary && in->paused) {
        /* Patroni: a second primary is reported, not demoted, while paused */
        out_set(out, HA_WAIT,
                "paused: postgres runs as primary while %s holds the leader lock: "
                "NOT demoting it (resume to let the HA loop decide)",
                in->leader);
        return;
    }
    if (in->pg_primary) {
        out_set(out, HA_DEMOTE, "demoting: %s holds the leader lock", in->leader);
        return;
    }
    if (in->following_leader && !in->needs_rewind) {
        if (in->diverged && diverged_act(in, out, "stopping postgres first"))
            return;
        /* A replica that does not stream and sits on an older timeline than the leader
         * either catches up to the fork (and then follows by itself) or went past it and
         * never will: find out which. */
        if (!in->streaming && in->my_timeline > 0 && in->leader_timeline > in->my_timeline &&
            in->leader_has_conn && !in->tl_checked) {
            out_set(out, HA_CHECK_TIMELINE,
                    "not streaming on timeline %d while leader %s is on timeline %d: checking "
                    "its timeline history",
                    in->my_timeline, in->leader, in->leader_timeline);
            return;
        }
        if (in->diverged) {
            out_set(out, HA_FOLLOW,
                    "DIVERGED from leader %s and no rewind or re-clone is allowed (or it "
                    "failed): staying as is; reinitialize this member",
                    in->leader);
            return;
        }
    }
    out_set(out, HA_FOLLOW, "no action: I am a replica following %s", in->leader);
}
