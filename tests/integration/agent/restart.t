#!/usr/bin/env bash
# test-timeout: 240
# Whole-cluster restart (what `make down; make up` does, in the worst order): SIGTERM the
# primary first (a replica takes over), then the other two; start all three at once. The
# cluster must come back with one primary, two streaming replicas, no lost rows, and
# nobody promoted from an older timeline (which would fork the history).
. "$(dirname "$0")/lib.sh"
require_env
cluster_up 3
L=$(node_of "$LEADER")
psql_n "$L" "CREATE TABLE keep AS SELECT generate_series(1,500) AS id" >/dev/null
order="$L"; for n in 0 1 2; do [ "$n" = "$L" ] || order+=" $n"; done
for n in $order; do
  node_term "$n"
  wait_until 30 node_gone "$n" || bail "pg-$n stops after SIGTERM"
done
ok "all three agents stopped (primary first)"
for n in 0 1 2; do node_start "$n"; done
leader_primary() { local l; l=$(dcs_leader); [ -n "$l" ] && is_primary "$(node_of "$l")"; }
check "a leader is elected after the restart" wait_until 60 leader_primary
NEW=$(dcs_leader); N=$(node_of "$NEW")
for n in 0 1 2; do
  [ "$n" = "$N" ] && continue
  check "pg-$n streams from $NEW" wait_until 60 streaming "$n"
done
tl=$(psql_n "$N" "SELECT timeline_id FROM pg_control_checkpoint()")
for n in 0 1 2; do
  [ "$n" = "$N" ] && continue
  check "pg-$n is on the leader's timeline $tl" wait_until 20 bash -c "[ \"\$(PGPASSWORD=$SUPERPASS ${NSX[*]} $PGBIN/psql -X -At -h $(node_ip "$n") -U postgres -d postgres -c 'SELECT received_tli FROM pg_stat_wal_receiver' 2>/dev/null)\" = $tl ]"
done
check "rows written before the restart survived" [ "$(psql_n "$N" 'SELECT count(*) FROM keep')" = 500 ]
psql_n "$N" "INSERT INTO keep VALUES (501)" >/dev/null
for n in 0 1 2; do
  [ "$n" = "$N" ] && continue
  check "pg-$n replicates a write made after the restart" wait_until 20 bash -c "[ \"\$(PGPASSWORD=$SUPERPASS $PGBIN/psql -X -At -h $(node_ip "$n") -U postgres -d postgres -c 'SELECT count(*) FROM keep' 2>/dev/null)\" = 501 ]"
done
echo "1..$_tap_n"
