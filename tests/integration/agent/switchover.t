#!/usr/bin/env bash
# test-timeout: 240
# Planned handover: SIGTERM to the primary's agent. It checkpoints, stops postgres, deletes
# its leader key; a replica takes over quickly (no waiting for the lease to expire), the
# write probe never sees two writable nodes, and the old primary rejoins as a replica.
. "$(dirname "$0")/lib.sh"
require_env
cluster_up 3
OLD=$LEADER; O=$(node_of "$OLD")
probe_start
t_term=$(now_ms)
node_term "$O"
check "the primary's agent exits after SIGTERM" wait_until 30 node_gone "$O"
check "its postgres is stopped" bash -c "! PGPASSWORD=$SUPERPASS $PGBIN/pg_isready -q -h $(node_ip "$O") -p 5432"
new_leader() { local l; l=$(dcs_leader); [ -n "$l" ] && [ "$l" != "$OLD" ] && is_primary "$(node_of "$l")"; }
check "a replica took over" wait_until 20 new_leader
NEW=$(dcs_leader); N=$(node_of "$NEW")
check "the probe writes to the new primary $NEW" wait_until 20 probe_acked_by "$(node_ip "$N")"
t_ok=$(grep " $(node_ip "$N") ok\$" "$T/probe.out" | head -1 | awk '{print $2}')
diag "first write on the new primary $((t_ok - t_term)) ms after SIGTERM"
check "the old primary published its shutdown checkpoint, then released the key" \
  grep -q 'shutdown checkpoint at .*writing status before releasing the leader key' "$T/pg-$O.log"
check "the old primary's log shows the key released" grep -q 'leader key released' "$T/pg-$O.log"
node_start "$O"
check "old primary $OLD rejoins as a streaming replica" wait_until 60 streaming "$O"
probe_stop "$t_term"
check "no two nodes accepted writes at the same time" [ "$PROBE_OVERLAP" = 0 ]
# handover does not wait for the ttl (4 s): the key is deleted, replicas race at once
check "write unavailability on handover ($PROBE_GAP ms) is below the ttl" [ "$PROBE_GAP" -lt 4000 ]
echo "1..$_tap_n"
