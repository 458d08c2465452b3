#!/usr/bin/env bash
# test-timeout: 240
# Bootstrap of a 3-node cluster on real etcd 3.4: one leader, two streaming replicas,
# the DCS keys as Patroni writes them, writes replicated to every replica.
. "$(dirname "$0")/lib.sh"
require_env
t0=$(now_ms)
cluster_up 3
ok "bootstrap: leader $LEADER + 2 streaming replicas in $(( $(now_ms) - t0 )) ms"
L=$(node_of "$LEADER")

# DCS keys (contracts §1): initialize = sysid of the leader's data dir, member keys JSON.
sysid=$("$PGBIN/pg_controldata" "$T/pg-$L/data" | awk -F: '/system identifier/{gsub(/ /,"",$2);print $2}')
check "initialize key holds the system identifier ($sysid)" [ "$(dcs_get initialize)" = "$sysid" ]
# member keys follow postgres by up to one HA cycle: poll
member_ok() {
  python3 -c '
import json,sys
m=json.loads(sys.argv[1])
assert m["role"]=="master" and m["state"]=="running", m
assert m["conn_url"].startswith("postgres://127.0.40.") and m["api_url"].endswith("/patroni"), m
assert isinstance(m["xlog_location"],int) and m["timeline"]==1 and m["version"]=="3.0.2", m' "$(dcs_get "members/$LEADER")"
}
check "leader member key is Patroni-shaped JSON" wait_until 10 member_ok || diag "$(dcs_get "members/$LEADER")"
check "config key holds bootstrap.dcs" python3 -c '
import json,sys; c=json.loads(sys.argv[1]); assert c["ttl"]==4 and c["loop_wait"]==1, c' "$(dcs_get config)"
check "history key is [] on timeline 1" [ "$(dcs_get history)" = "[]" ]
check "status key has the leader optime" python3 -c '
import json,sys; s=json.loads(sys.argv[1]); assert s["optime"]>0, s' "$(dcs_get status)"
slots=$(psql_n "$L" "SELECT string_agg(slot_name||':'||active, ',' ORDER BY slot_name) FROM pg_replication_slots")
want=""; for n in 0 1 2; do [ "$n" = "$L" ] || want+="${want:+,}pg_$n:true"; done
check "leader has an active physical slot per replica ($slots)" [ "$slots" = "$want" ]

# writes replicated
psql_n "$L" "CREATE TABLE it_t(id int primary key, v text); INSERT INTO it_t SELECT g, 'x'||g FROM generate_series(1,1000) g" >/dev/null
for n in 0 1 2; do
  [ "$n" = "$L" ] && continue
  check "pg-$n has the 1000 rows written on the leader" wait_until 20 bash -c "[ \"\$(PGPASSWORD=$SUPERPASS $PGBIN/psql -X -At -h $(node_ip $n) -U postgres -d postgres -c 'SELECT count(*) FROM it_t' 2>/dev/null)\" = 1000 ]"
  check "pg-$n refuses writes (read-only replica)" bash -c "! PGPASSWORD=$SUPERPASS $PGBIN/psql -X -h $(node_ip $n) -U postgres -d postgres -c 'INSERT INTO it_t VALUES (5000, null)' >/dev/null 2>&1"
done

# A replica that leaves: its slot stays for member_slots_ttl (default 30 min), is dropped
# once that is 0, and comes back when the member returns.
R=$(( (L + 1) % 3 ))
slot_state() { psql_n "$L" "SELECT COALESCE((SELECT active::text FROM pg_replication_slots WHERE slot_name='pg_$R'),'none')"; }
node_kill9 "$R"
member_gone() { [ -z "$(dcs_get "members/pg-$R")" ]; }
wait_until 20 member_gone || bail "member key of killed pg-$R expires"
inactive() { [ "$(slot_state)" = false ]; }
wait_until 10 inactive
t_gone=$(now_ms)
# a negative check needs a window: 2 leader cycles after the key expired
wait_until 10 bash -c "[ \$(date +%s%3N) -ge $((t_gone + 2500)) ]"
check "slot pg_$R is kept while its member is gone (member_slots_ttl 30 min)" inactive
cfg=$(dcs_get config | /usr/bin/python3 -c 'import json,sys; c=json.load(sys.stdin); c["member_slots_ttl"]=0; print(json.dumps(c,separators=(",",":")))')
dcsctl put "/service/$SCOPE/config" "$cfg"
slot_dropped() { [ "$(slot_state)" = none ]; }
check "slot pg_$R is dropped with member_slots_ttl 0" wait_until 15 slot_dropped
check "the leader logged why" grep -q "dropping replication slot pg_$R" "$T/pg-$L.log"
node_start "$R"
active() { [ "$(slot_state)" = true ]; }
check "slot pg_$R is back and active when pg-$R returns" wait_until 60 active
echo "1..$_tap_n"
