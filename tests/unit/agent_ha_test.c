/* HA decision table: DCS view + local postgres + peers -> action (contracts §6.2-6.5). */
#include <string.h>

#include "agent/ha.h"
#include "check.h"

static ha_input base(void)
{
    ha_input in;
    memset(&in, 0, sizeof(in));
    in.me = "pg-1";
    in.dcs_ok = 1;
    in.initialize_present = 1;
    in.initialize = "7000";
    in.sysid = "7000";
    in.maximum_lag_on_failover = 1048576;
    in.pg_process = in.pg_running = 1;
    in.leader = "pg-0";
    in.leader_has_conn = 1;
    in.following_leader = 1;
    in.tl_checked = 1; /* the timeline check found nothing (rows below vary it) */
    in.streaming = 1;
    return in;
}

struct row {
    const char *what;
    void (*setup)(ha_input *in);
    enum ha_action want;
};

static ha_peer peers[3];

static void s_dcs_down(ha_input *in)
{
    in->dcs_ok = 0;
}
static void s_fresh(ha_input *in)
{
    in->data_empty = 1;
    in->initialize_present = 0;
    in->leader = NULL;
    in->pg_process = in->pg_running = 0;
}
static void s_fresh_nofailover(ha_input *in)
{
    s_fresh(in);
    in->nofailover = 1;
}
static void s_fresh_init_taken(ha_input *in)
{
    s_fresh(in);
    in->initialize_present = 1;
    in->initialize = "";
}
static void s_fresh_leader(ha_input *in)
{
    s_fresh(in);
    in->initialize_present = 1;
    in->leader = "pg-0";
}
static void s_fresh_leader_noconn(ha_input *in)
{
    s_fresh_leader(in);
    in->leader_has_conn = 0;
}
static void s_sysid_mismatch(ha_input *in)
{
    in->sysid = "7001";
}
static void s_leader_down_pg(ha_input *in)
{
    in->leader = "pg-1";
    in->pg_process = in->pg_running = 0;
}
static void s_follower_down_pg(ha_input *in)
{
    in->pg_process = in->pg_running = 0;
}
static void s_former_primary(ha_input *in)
{
    s_follower_down_pg(in);
    in->needs_rewind = 1;
}
static void s_starting(ha_input *in)
{
    in->pg_running = 0;
}
static void s_starting_not_following(ha_input *in)
{
    in->pg_running = 0;
    in->following_leader = 0;
}
static void s_starting_unlocked(ha_input *in)
{
    in->pg_running = 0;
    in->following_leader = 0;
    in->leader = NULL;
}
static void s_replica(ha_input *in)
{
    (void)in;
}
static void s_primary_without_lock(ha_input *in)
{
    in->pg_primary = 1;
}
static void s_leader_replica(ha_input *in)
{
    in->leader = "pg-1";
}
static void s_leader_primary(ha_input *in)
{
    in->leader = "pg-1";
    in->pg_primary = 1;
}
static void s_switchover_unpolled(ha_input *in)
{
    s_leader_primary(in);
    in->failover_leader = "pg-1";
    in->failover_member = "pg-2";
}
static void s_switchover(ha_input *in)
{
    s_switchover_unpolled(in);
    in->peers_polled = 1;
    memset(peers, 0, sizeof(peers));
    strcpy(peers[0].name, "pg-0");
    peers[0].reachable = peers[0].running = 1;
    strcpy(peers[1].name, "pg-2");
    peers[1].reachable = peers[1].running = 1;
    in->peers = peers;
    in->npeers = 2;
}
/* the candidate answers but its postgres does not run (rewinding, cloning) */
static void s_switchover_candidate_not_running(ha_input *in)
{
    s_switchover(in);
    peers[1].running = 0;
}
static void s_unlocked(ha_input *in)
{
    in->leader = NULL;
    in->my_wal = 100;
}
static void s_unlocked_polled(ha_input *in)
{
    s_unlocked(in);
    in->peers_polled = 1;
    memset(peers, 0, sizeof(peers));
    strcpy(peers[0].name, "pg-0"); /* the dead leader: unreachable */
    strcpy(peers[1].name, "pg-2");
    peers[1].reachable = 1;
    peers[1].wal = 90;
    in->peers = peers;
    in->npeers = 2;
}
static void s_peer_ahead(ha_input *in)
{
    s_unlocked_polled(in);
    peers[1].wal = 200;
}
static void s_peer_ahead_nofailover(ha_input *in)
{
    s_peer_ahead(in);
    peers[1].nofailover = 1;
}
static void s_peer_primary(ha_input *in)
{
    s_unlocked_polled(in);
    peers[1].is_primary = 1;
}
static void s_old_primary_alive(ha_input *in)
{
    s_unlocked_polled(in);
    peers[0].reachable = 1;
    peers[0].is_primary = 1;
}
static void s_lagging(ha_input *in)
{
    s_unlocked_polled(in);
    in->cluster_optime = 100 + 2 * 1048576;
}
static void s_tie_lower_name(ha_input *in)
{
    s_unlocked_polled(in);
    peers[1].wal = 100;
    strcpy(peers[1].name, "pg-0a");
}
static void s_tie_higher_name(ha_input *in)
{
    s_unlocked_polled(in);
    peers[1].wal = 100;
}
static void s_behind_cluster_timeline(ha_input *in)
{
    s_unlocked_polled(in);
    in->my_timeline = 1;
    in->cluster_timeline = 2;
}
static void s_peer_newer_timeline(ha_input *in)
{
    s_unlocked_polled(in);
    in->my_timeline = 1;
    peers[1].timeline = 2; /* behind me in bytes, but on a newer timeline */
}
static void s_peer_older_timeline_more_wal(ha_input *in)
{
    s_peer_ahead(in);
    in->my_timeline = 3;
    peers[1].timeline = 2; /* more bytes on an older timeline: I am still the healthiest */
}
static void s_peer_starting(ha_input *in)
{
    s_unlocked_polled(in);
    peers[1].starting = 1;
    in->wait_for_starting = 1;
}
static void s_peer_starting_grace_over(ha_input *in)
{
    s_peer_starting(in);
    in->wait_for_starting = 0;
}
static void s_nofailover(ha_input *in)
{
    s_unlocked_polled(in);
    in->nofailover = 1;
}
static void s_failsafe_hold(ha_input *in)
{
    s_unlocked_polled(in);
    in->failsafe_hold = 1;
}
static void s_unlocked_primary(ha_input *in)
{
    s_unlocked(in);
    in->pg_primary = 1;
}
static void s_candidate_me(ha_input *in)
{
    s_unlocked(in);
    in->failover_leader = "pg-0";
    in->failover_member = "pg-1";
}
/* pause (Patroni's maintenance mode) */
static void s_paused_stopped_leader(ha_input *in)
{
    in->paused = 1;
    in->leader = "pg-1";
    in->pg_process = in->pg_running = 0;
}
static void s_paused_stopped_replica(ha_input *in)
{
    in->paused = 1;
    in->pg_process = in->pg_running = 0;
}
static void s_paused_second_primary(ha_input *in)
{
    in->paused = 1;
    in->pg_primary = 1;
}
static void s_paused_unlocked(ha_input *in)
{
    s_unlocked_polled(in);
    in->paused = 1;
}
static void s_paused_failover_to_me(ha_input *in)
{
    s_unlocked(in);
    in->paused = 1;
    in->failover_member = "pg-1"; /* a failover with no leader: no failover_leader */
}
static void s_paused_unlocked_primary(ha_input *in)
{
    s_unlocked_primary(in);
    in->paused = 1;
}
static void s_candidate_other(ha_input *in)
{
    s_unlocked_polled(in);
    in->failover_member = "pg-2";
    peers[1].running = 1;
}
static void s_candidate_other_not_running(ha_input *in)
{
    s_candidate_other(in);
    peers[1].running = 0;
}
static void s_candidate_other_dead(ha_input *in)
{
    s_candidate_other(in);
    peers[1].reachable = 0;
}
static void s_busy(ha_input *in)
{
    in->async_busy = 1;
    in->leader = NULL;
}
static void s_empty_with_lock(ha_input *in)
{
    s_fresh_leader(in);
    in->leader = "pg-1";
}
static void s_missing_initialize(ha_input *in)
{
    in->leader = "pg-1";
    in->pg_primary = 1;
    in->initialize_present = 0;
}

/* full down/up: the former leader comes back first (ha.c resume_blocker) */
static void s_resume(ha_input *in)
{
    in->leader = NULL;
    in->pg_process = in->pg_running = 0;
    in->needs_rewind = 1;
    in->resume_candidate = 1;
    in->resume_wal = 5000;
    in->resume_timeline = 3;
    in->cluster_timeline = 3;
    in->cluster_optime = 5000; /* the shutdown checkpoint it published itself */
    in->peers_polled = 1;
    memset(peers, 0, sizeof(peers));
    strcpy(peers[0].name, "pg-0");
    peers[0].reachable = 1;
    peers[0].starting = 1;
    peers[0].timeline = 3;
    peers[0].wal = 4900;
    in->peers = peers;
    in->npeers = 1;
}
static void s_resume_unpolled(ha_input *in)
{
    s_resume(in);
    in->peers_polled = 0;
}
static void s_resume_no_history(ha_input *in)
{
    s_resume(in);
    in->cluster_timeline = 0; /* never failed over: timeline 1 */
    in->resume_timeline = 1;
    peers[0].timeline = 1;
}
static void s_resume_old_timeline(ha_input *in)
{
    s_resume(in);
    in->cluster_timeline = 4; /* someone was promoted after it */
}
static void s_resume_optime_ahead(ha_input *in)
{
    s_resume(in);
    in->cluster_optime = 5001;
}
static void s_resume_peer_newer(ha_input *in)
{
    s_resume(in);
    peers[0].timeline = 4;
}
static void s_resume_peer_more_wal(ha_input *in)
{
    s_resume(in);
    peers[0].wal = 5001;
}
static void s_resume_peer_primary(ha_input *in)
{
    s_resume(in);
    peers[0].is_primary = 1;
}
static void s_resume_switchover(ha_input *in)
{
    s_resume(in);
    in->failover_member = "pg-0";
}
static void s_resume_nofailover(ha_input *in)
{
    s_resume(in);
    in->nofailover = 1;
}
static void s_resume_locked(ha_input *in)
{
    s_resume(in);
    in->leader = "pg-0";
}

/* synchronous mode: pg-0 was the leader, the sync key names the synchronous standby */
static void s_sync(ha_input *in, const char *standby)
{
    s_unlocked_polled(in);
    in->sync_mode = 1;
    in->sync_leader = "pg-0";
    in->sync_standby = standby;
}
static void s_sync_not_me(ha_input *in)
{
    s_sync(in, "pg-2");
}
static void s_sync_me_tie_with_async_lower_name(ha_input *in)
{
    s_sync(in, "pg-1");
    in->me = "pg-3";
    in->sync_standby = "pg-3";
    memset(peers, 0, sizeof(peers));
    strcpy(peers[0].name, "pg-1"); /* asynchronous, same WAL, lower name: does not compete */
    peers[0].reachable = 1;
    peers[0].wal = in->my_wal;
    in->peers = peers;
    in->npeers = 1;
}
static void s_sync_empty_standby(ha_input *in)
{
    s_sync(in, "");
}
static void s_sync_mode_off(ha_input *in)
{
    s_sync(in, "pg-2");
    in->sync_mode = 0;
}

/* diverged timelines: leader pg-0 on timeline 2, I replay timeline 1 */
static void s_tl_stopped_unchecked(ha_input *in)
{
    s_follower_down_pg(in);
    in->tl_checked = 0;
}
static void s_tl_stopped_unchecked_noconn(ha_input *in)
{
    s_tl_stopped_unchecked(in);
    in->leader_has_conn = 0;
}
static void s_tl_stopped_diverged_rewind(ha_input *in)
{
    s_follower_down_pg(in);
    in->diverged = 1;
    in->diverged_fix = 1;
    in->leader_timeline = 2;
}
static void s_tl_stopped_diverged_reclone(ha_input *in)
{
    s_tl_stopped_diverged_rewind(in);
    in->diverged_fix = 2;
}
static void s_tl_stopped_diverged_stuck(ha_input *in)
{
    s_tl_stopped_diverged_rewind(in);
    in->diverged_fix = 0;
}
static void s_tl_running_not_streaming(ha_input *in)
{
    in->streaming = 0;
    in->my_timeline = 1;
    in->leader_timeline = 2;
    in->tl_checked = 0;
}
static void s_tl_running_streaming(ha_input *in)
{
    s_tl_running_not_streaming(in);
    in->streaming = 1;
}
static void s_tl_running_same_timeline(ha_input *in)
{
    s_tl_running_not_streaming(in);
    in->my_timeline = 2;
}
static void s_tl_running_not_following_yet(ha_input *in)
{
    s_tl_running_not_streaming(in);
    in->following_leader = 0;
}
static void s_tl_running_checked(ha_input *in)
{
    s_tl_running_not_streaming(in);
    in->tl_checked = 1;
}
static void s_tl_running_diverged_rewind(ha_input *in)
{
    s_tl_running_not_streaming(in);
    in->tl_checked = 1;
    in->diverged = 1;
    in->diverged_fix = 1;
}
static void s_tl_running_diverged_reclone(ha_input *in)
{
    s_tl_running_diverged_rewind(in);
    in->diverged_fix = 2;
}
static void s_tl_running_diverged_stuck(ha_input *in)
{
    s_tl_running_diverged_rewind(in);
    in->diverged_fix = 0;
}
static void s_tl_leader_diverged_flag_ignored(ha_input *in)
{
    s_leader_primary(in);
    in->diverged = 1;
    in->diverged_fix = 1;
}

static const struct row rows[] = {
    {"stopped replica: check the leader's timeline history before starting", s_tl_stopped_unchecked,
     HA_CHECK_TIMELINE},
    {"stopped replica, leader without conn_url: start (nothing to check against)",
     s_tl_stopped_unchecked_noconn, HA_START_REPLICA},
    {"stopped replica, diverged, use_pg_rewind: rewind", s_tl_stopped_diverged_rewind, HA_REWIND},
    {"stopped replica, diverged, re-clone allowed: reinitialize", s_tl_stopped_diverged_reclone,
     HA_REINITIALIZE},
    {"stopped replica, diverged, no fix allowed: stays stopped (no restart loop)",
     s_tl_stopped_diverged_stuck, HA_WAIT},
    {"running replica on an older timeline, not streaming: check", s_tl_running_not_streaming,
     HA_CHECK_TIMELINE},
    {"... streaming: nothing to check", s_tl_running_streaming, HA_FOLLOW},
    {"... same timeline as the leader: nothing to check", s_tl_running_same_timeline, HA_FOLLOW},
    {"... not following the leader yet: follow first", s_tl_running_not_following_yet, HA_FOLLOW},
    {"... already checked: follow", s_tl_running_checked, HA_FOLLOW},
    {"running replica diverged, use_pg_rewind: rewind (stops postgres first)",
     s_tl_running_diverged_rewind, HA_REWIND},
    {"running replica diverged, re-clone allowed: reinitialize", s_tl_running_diverged_reclone,
     HA_REINITIALIZE},
    {"running replica diverged, no fix allowed: stays as is (no loop)", s_tl_running_diverged_stuck,
     HA_FOLLOW},
    {"the leader never acts on a divergence flag", s_tl_leader_diverged_flag_ignored, HA_LEAD},
    {"sync mode: not the synchronous standby: wait", s_sync_not_me, HA_WAIT},
    {"sync mode: the synchronous standby ignores async peers' tie-break",
     s_sync_me_tie_with_async_lower_name, HA_ACQUIRE},
    {"sync mode, no synchronous standby named: race as usual", s_sync_empty_standby, HA_ACQUIRE},
    {"sync key left over with sync mode off: race as usual", s_sync_mode_off, HA_ACQUIRE},
    {"former leader first after full stop: take the lock, start as primary", s_resume, HA_ACQUIRE},
    {"... asks the other members first", s_resume_unpolled, HA_POLL_PEERS},
    {"... on timeline 1 with no history key", s_resume_no_history, HA_ACQUIRE},
    {"... not when a later timeline exists (read-only start)", s_resume_old_timeline,
     HA_START_REPLICA},
    {"... not when the published optime is past its checkpoint", s_resume_optime_ahead,
     HA_START_REPLICA},
    {"... not when a member is on a newer timeline", s_resume_peer_newer, HA_START_REPLICA},
    {"... not when a member has more WAL", s_resume_peer_more_wal, HA_START_REPLICA},
    {"... not when a member runs as primary", s_resume_peer_primary, HA_START_REPLICA},
    {"... not during a switchover", s_resume_switchover, HA_START_REPLICA},
    {"... not with nofailover", s_resume_nofailover, HA_START_REPLICA},
    {"... someone else holds the lock: rewind and follow", s_resume_locked, HA_REWIND},
    {"DCS down: wait", s_dcs_down, HA_WAIT},
    {"fresh cluster: race for initialize", s_fresh, HA_INIT_RACE},
    {"fresh, nofailover: wait", s_fresh_nofailover, HA_WAIT},
    {"initialize taken: wait for leader", s_fresh_init_taken, HA_WAIT},
    {"empty data, leader: clone", s_fresh_leader, HA_CLONE},
    {"empty data, leader without conn_url: wait", s_fresh_leader_noconn, HA_WAIT},
    {"empty data with my lock: release", s_empty_with_lock, HA_RELEASE},
    {"sysid mismatch: fatal", s_sysid_mismatch, HA_FATAL},
    {"leader whose postgres died: restart in place", s_leader_down_pg, HA_START_PRIMARY},
    {"replica whose postgres died: start replica", s_follower_down_pg, HA_START_REPLICA},
    {"former primary: rewind", s_former_primary, HA_REWIND},
    {"postgres starting: wait", s_starting, HA_WAIT},
    {"postgres starting without following the leader: follow", s_starting_not_following, HA_FOLLOW},
    {"postgres starting, no leader: wait", s_starting_unlocked, HA_WAIT},
    {"replica with leader: follow", s_replica, HA_FOLLOW},
    {"primary without lock: demote", s_primary_without_lock, HA_DEMOTE},
    {"lock holder still replica: promote", s_leader_replica, HA_PROMOTE},
    {"lock holder primary: lead", s_leader_primary, HA_LEAD},
    {"switchover requested: graceful handover", s_switchover, HA_SWITCHOVER},
    {"switchover requested: candidates checked first", s_switchover_unpolled, HA_POLL_PEERS},
    {"switchover to a candidate whose postgres is down: keep leading",
     s_switchover_candidate_not_running, HA_LEAD},
    {"unlocked, peers unknown: poll", s_unlocked, HA_POLL_PEERS},
    {"unlocked, healthiest: acquire", s_unlocked_polled, HA_ACQUIRE},
    {"unlocked, a peer is ahead: wait", s_peer_ahead, HA_WAIT},
    {"unlocked, ahead peer is nofailover: acquire", s_peer_ahead_nofailover, HA_ACQUIRE},
    {"unlocked, a peer is primary: wait", s_peer_primary, HA_WAIT},
    {"unlocked, old primary answers as primary: wait", s_old_primary_alive, HA_WAIT},
    {"unlocked, lagging beyond maximum_lag_on_failover: wait", s_lagging, HA_WAIT},
    {"tie, peer has lower name: wait", s_tie_lower_name, HA_WAIT},
    {"tie, I have the lower name: acquire", s_tie_higher_name, HA_ACQUIRE},
    {"behind the cluster's timeline: wait", s_behind_cluster_timeline, HA_WAIT},
    {"a peer is on a newer timeline: wait", s_peer_newer_timeline, HA_WAIT},
    {"more WAL on an older timeline does not win", s_peer_older_timeline_more_wal, HA_ACQUIRE},
    {"a peer's postgres is starting: wait for its position", s_peer_starting, HA_WAIT},
    {"starting peer, grace over: race", s_peer_starting_grace_over, HA_ACQUIRE},
    {"nofailover: never race", s_nofailover, HA_WAIT},
    {"failsafe hold: never race", s_failsafe_hold, HA_WAIT},
    {"already primary, unlocked: take lock back", s_unlocked_primary, HA_ACQUIRE},
    {"I am the switchover candidate: acquire", s_candidate_me, HA_ACQUIRE},
    {"paused, my postgres stopped, I hold the lock: release it", s_paused_stopped_leader,
     HA_RELEASE},
    {"paused, my postgres stopped: not started", s_paused_stopped_replica, HA_WAIT},
    {"paused, primary while another holds the lock: not demoted", s_paused_second_primary, HA_WAIT},
    {"paused, no leader: replicas do not race", s_paused_unlocked, HA_WAIT},
    {"paused, failover to me with no leader: acquire", s_paused_failover_to_me, HA_ACQUIRE},
    {"paused, unlocked primary: takes the lock back", s_paused_unlocked_primary, HA_ACQUIRE},
    {"other healthy candidate: wait", s_candidate_other, HA_WAIT},
    {"candidate whose postgres does not run: race", s_candidate_other_not_running, HA_ACQUIRE},
    {"candidate unreachable: race", s_candidate_other_dead, HA_ACQUIRE},
    {"async action running: wait", s_busy, HA_WAIT},
    {"lock holder without initialize key: write it", s_missing_initialize, HA_WRITE_INITIALIZE},
};

TEST(decision_table)
{
    int bad = 0;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        ha_input in = base();
        rows[i].setup(&in);
        ha_output out;
        ha_decide(&in, &out);
        if (out.action != rows[i].want) {
            printf("# %s: got %s (%s), want %s\n", rows[i].what, ha_action_name(out.action),
                   out.reason, ha_action_name(rows[i].want));
            bad++;
        }
        CHECK(out.reason[0] != '\0');
    }
    CHECK_EQ_INT(bad, 0);
}

TEST(reason_names_the_lag)
{
    ha_input in = base();
    s_lagging(&in);
    ha_output out;
    ha_decide(&in, &out);
    CHECK(strstr(out.reason, "maximum_lag_on_failover") != NULL);
}

TEST(diverged_stuck_reason_says_so)
{
    ha_input in = base();
    s_tl_running_diverged_stuck(&in);
    ha_output out;
    ha_decide(&in, &out);
    CHECK(strstr(out.reason, "DIVERGED") != NULL);
    in = base();
    s_tl_stopped_diverged_stuck(&in);
    ha_decide(&in, &out);
    CHECK(strstr(out.reason, "DIVERGED") != NULL);
}

int main(void)
{
    RUN(decision_table);
    RUN(diverged_stuck_reason_says_so);
    RUN(reason_names_the_lag);
    return check_done();
}
