#!/usr/bin/env bash
# test-timeout: 240
# Failsafe mode (on by default, contracts §6.6): when the whole DCS is down, the primary
# keeps accepting writes as long as every other member accepts its POST /failsafe, replicas
# do not promote; once one member stops answering, the primary stops accepting writes
# (within ttl); when the DCS returns, the cluster elects a leader again.
# restapi.authentication is on: the members' POST /failsafe to each other must carry it.
. "$(dirname "$0")/lib.sh"
require_env
export AG_REST_AUTH=it-admin:it-fs-pass
cluster_up 3
L=$(node_of "$LEADER")
probe_start
t_down=$(now_ms)
etcd_kill_all
diag "all 3 etcd members killed"
fs_active() { rest_get "$L" /patroni | grep -q '"failsafe_mode_is_active": true'; }
check "primary reports failsafe_mode_is_active" wait_until 15 fs_active
# health checks (HAProxy, appliance-router) must keep seeing the primary: a 503 here would
# make them drop every write session although the primary stays writable
check "GET /primary answers 200 while failsafe keeps the primary" [ "$(rest_code "$L" /primary)" = 200 ]
check "GET /leader answers 200 while failsafe keeps the primary" [ "$(rest_code "$L" /leader)" = 200 ]
# 3 x ttl without DCS: the primary must keep writing the whole time
t_check=$(( $(now_ms) + 12000 ))
wait_until 20 bash -c "[ \$(date +%s%3N) -ge $t_check ]"
acks=$(probe_acks_since "$(node_ip "$L")" $((t_check - 2000)))
check "primary still acknowledges writes 12 s into the DCS outage ($acks in the last 2 s)" [ "$acks" -ge 10 ]
others_replicas() { local n; for n in 0 1 2; do [ "$n" = "$L" ] && continue; is_replica "$n" || return 1; done; }
check "replicas stay replicas (no promotion without the DCS)" others_replicas
# one replica dies: failsafe can no longer be confirmed by every member
R=$(( (L + 1) % 3 ))
t_kill=$(now_ms)
node_kill9 "$R"
not_writable() { ! probe_acked_after "$(node_ip "$L")"; }
probe_acked_after() { [ "$(probe_acks_since "$1" $(( $(now_ms) - 600 )))" -gt 0 ]; }
check "primary stops accepting writes once a member no longer confirms failsafe" wait_until 15 not_writable
last=$(awk -v h="$(node_ip "$L")" '$3==h && $4=="ok"{t=$2} END{print t}' "$T/probe.out")
diag "last write acknowledged by the primary $((last - t_kill)) ms after pg-$R was killed"
check "... within ttl (4 s) of losing the member" [ $((last - t_kill)) -le 4000 ]
check "GET /primary answers 503 once the primary has fenced itself" [ "$(rest_code "$L" /primary)" = 503 ]
# DCS back: a leader again
for n in 1 2 3; do etcd_member_start "$n"; done
leader_primary() { local l; l=$(dcs_leader); [ -n "$l" ] && is_primary "$(node_of "$l")"; }
check "after the DCS returns a leader is elected and writable" wait_until 40 leader_primary
probe_stop
check "no two nodes accepted writes at the same time" [ "$PROBE_OVERLAP" = 0 ]
echo "1..$_tap_n"
