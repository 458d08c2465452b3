#!/usr/bin/env bash
# test-timeout: 300
# Unplanned failover: kill -9 of the whole primary node (agent + postgres). Another member
# promotes within the lease time, a write probe (every 50 ms, against every node) never sees
# two nodes accepting writes, and the old primary rejoins as a replica through pg_rewind.
. "$(dirname "$0")/lib.sh"
require_env
cluster_up 3
OLD=$LEADER; O=$(node_of "$OLD")
probe_start
t_kill=$(now_ms)
node_kill9 "$O"
diag "killed $OLD (agent + postgres) at $t_kill"
new_leader() { local l; l=$(dcs_leader); [ -n "$l" ] && [ "$l" != "$OLD" ] && is_primary "$(node_of "$l")"; }
check "another member took the leader lock and promoted" wait_until 30 new_leader
NEW=$(dcs_leader); N=$(node_of "$NEW")
check "the probe writes to the new primary $NEW" wait_until 20 probe_acked_by "$(node_ip "$N")"
t_ok=$(grep " $(node_ip "$N") ok\$" "$T/probe.out" | head -1 | awk '{print $2}')
diag "first write acknowledged by the new primary $((t_ok - t_kill)) ms after the kill"
for n in 0 1 2; do
  [ "$n" = "$O" ] || [ "$n" = "$N" ] && continue
  check "the third member pg-$n follows the new primary" wait_until 30 streaming "$n"
done
# more writes on the new timeline, then the old primary comes back
psql_n "$N" "CREATE TABLE after_failover AS SELECT generate_series(1,100) AS id" >/dev/null
# Without the marker file the agent keeps beside the data dir, pg_control alone must tell
# that this data dir last ran as a primary (state "in production" after kill -9).
rm -f "$T/pg-$O/data.was-primary"
node_start "$O"
check "old primary $OLD rejoins as a streaming replica" wait_until 60 streaming "$O"
check "old primary knew from pg_control that it was a primary" grep -q 'pg_control says the data directory last ran as a primary' "$T/pg-$O.log"
check "old primary ran pg_rewind before following" grep -q 'pg_rewind done' "$T/pg-$O.log"
check "old primary has the rows written after the failover" \
  wait_until 20 bash -c "[ \"\$(PGPASSWORD=$SUPERPASS $PGBIN/psql -X -At -h $(node_ip "$O") -U postgres -d postgres -c 'SELECT count(*) FROM after_failover' 2>/dev/null)\" = 100 ]"
check "history key records the timeline switch at the LSN of postgres' history file" /usr/bin/python3 -c '
import json,sys
h=json.loads(sys.argv[1])
tli,lsn,reason=open(sys.argv[3]).read().split("\n")[0].split("\t")
hi,lo=lsn.split("/")
assert len(h)==1 and h[0][0]==1 and h[0][4]==sys.argv[2], h
assert h[0][1]==(int(hi,16)<<32|int(lo,16)) and h[0][2]==reason, (h, lsn, reason)' \
  "$(dcs_get history)" "$NEW" "$T/pg-$N/data/pg_wal/00000002.history" || diag "history: $(dcs_get history)"
out=$(patronictl -c "$T/pg-$N.yml" history -f json 2>&1)
check "Debian patronictl history shows the switch to $NEW" /usr/bin/python3 -c '
import json,sys; h=json.loads(sys.argv[1]); assert len(h)==1 and h[0]["TL"]==1 and h[0]["New Leader"]==sys.argv[2], h' \
  "$out" "$NEW" || diag "$out"
probe_stop "$t_kill"
check "no two nodes accepted writes at the same time" [ "$PROBE_OVERLAP" = 0 ]
check "write unavailability after kill -9 ($PROBE_GAP ms) is within 8 s" [ "$PROBE_GAP" -le 8000 ]
echo "1..$_tap_n"
