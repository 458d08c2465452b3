#!/usr/bin/env bash
# test-timeout: 300
# Network partition between the primary and the DCS, with every node and etcd in network
# namespaces of their own (iptables in etcd's namespace drops all packets to and from the
# primary's address).
#  1. failsafe_mode on (default): the other members still reach the primary, so it keeps
#     running as primary through failsafe and nobody else takes over.
#  2. failsafe_mode off: the primary fences itself (stops accepting writes) BEFORE its lease
#     expires, i.e. before any other member can take the leader key; a replica then takes
#     over. A write probe against every node never sees two writable nodes.
NET=ns
. "$(dirname "$0")/lib.sh"
require_env
command -v iptables >/dev/null || bail "iptables is installed"
cluster_up 3
L=$(node_of "$LEADER")
probe_start

# ---- 1: failsafe on
partition_dcs "$L" on
t_cut=$(now_ms)
diag "pg-$L cut off from etcd (failsafe on)"
t_check=$(( t_cut + 10000 ))
wait_until 20 bash -c "[ \$(date +%s%3N) -ge $t_check ]"
check "failsafe: primary still acknowledges writes 10 s after losing the DCS" \
  [ "$(probe_acks_since "$(node_ip "$L")" $((t_check - 2000)))" -ge 10 ]
no_other_leader() { local l; l=$(dcs_leader); [ -z "$l" ] || [ "$l" = "$LEADER" ]; }
check "failsafe: no other member took the leader key (leader: '$(dcs_leader)')" no_other_leader
partition_dcs "$L" off
check "failsafe: after healing, $LEADER holds the leader key again" wait_until 20 leader_is "$LEADER"

# ---- 2: failsafe off (dynamic config in the DCS, as patronictl edit-config would do)
cfg=$(dcs_get config | /usr/bin/python3 -c 'import json,sys; c=json.load(sys.stdin); c["failsafe_mode"]=False; print(json.dumps(c,separators=(",",":")))')
dcsctl put "/service/$SCOPE/config" "$cfg" || bail "config key updated"
fs_off() { ! rest_get "$L" /config | grep -q '"failsafe_mode": true'; }
wait_until 10 fs_off || diag "REST /config still shows failsafe_mode true"
sleep_cycles_done() { grep -q '"failsafe_mode": false' <(rest_get "$L" /config); }
wait_until 10 sleep_cycles_done
partition_dcs "$L" on
t_cut=$(now_ms)
diag "pg-$L cut off from etcd (failsafe off)"
new_leader() { local l; l=$(dcs_leader); [ -n "$l" ] && [ "$l" != "$LEADER" ] && is_primary "$(node_of "$l")"; }
check "a replica took the leader key and promoted" wait_until 30 new_leader
NEW=$(dcs_leader); N=$(node_of "$NEW")
t_new=$(now_ms)
check "the probe writes to the new primary $NEW" wait_until 20 probe_acked_by "$(node_ip "$N")"
last_old=$(awk -v h="$(node_ip "$L")" '$3==h && $4=="ok"{t=$2} END{print t}' "$T/probe.out")
first_new=$(awk -v h="$(node_ip "$N")" '$3==h && $4=="ok"{print $1; exit}' "$T/probe.out")
diag "old primary: last write acknowledged $((last_old - t_cut)) ms after the cut; new primary: first write started $((first_new - t_cut)) ms after the cut"
# the lease was renewed at most loop_wait before the cut, so it can expire at the earliest
# ttl - loop_wait = 3 s after it: the old primary must be fenced before that
check "old primary stopped acknowledging writes before its lease could expire (< 3000 ms)" \
  [ $((last_old - t_cut)) -lt 3000 ]
check "old primary fenced itself (log)" grep -q 'FENCING' "$T/pg-$L.log"
# lease expiry (<= ttl 4 s) + race + promote; the fenced old primary must not hold up the
# race (its agent answers REST but has no DCS)
check "the new primary accepted writes within 8 s of the cut ($((first_new - t_cut)) ms)" \
  [ $((first_new - t_cut)) -le 8000 ]
probe_stop
check "no two nodes accepted writes at the same time" [ "$PROBE_OVERLAP" = 0 ]
partition_dcs "$L" off
check "after healing, the old primary rejoins as a replica of $NEW" wait_until 60 streaming "$L"
echo "1..$_tap_n"
