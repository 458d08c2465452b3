#!/usr/bin/env bash
# test-timeout: 200
# Synchronous mode (PATCH /config {"synchronous_mode": true}): the leader makes one streaming
# replica synchronous (synchronous_standby_names, pg_stat_replication 'sync') and names it in
# the DCS sync key; /sync, /async and /read-only-sync answer per member; patronictl and
# appliancectl list it as "Sync Standby". The lower-named replica carries the nosync tag, so
# the synchronous standby is the one the equal-WAL tie-break would NOT pick: after a kill -9
# of the primary it must still be the one that takes over (only it has every acknowledged
# commit), and the other replica says why it does not race.
. "$(dirname "$0")/lib.sh"
require_env
cluster_up 3
L=$(node_of "$LEADER")
others=()
for n in 0 1 2; do [ "$n" = "$L" ] || others+=("$n"); done
A=${others[0]} S=${others[1]} # A: lower name, nosync tag; S: becomes the synchronous standby
/usr/bin/python3 - "$T/pg-$A.yml" <<'PY'
import sys, yaml
p = sys.argv[1]; c = yaml.safe_load(open(p))
c["tags"]["nosync"] = True
yaml.safe_dump(c, open(p, "w"))
PY
check "pg-$A reloads with the nosync tag" [ "$(rest_code "$A" /reload POST)" = 202 ]
tagged() { dcs_get "members/pg-$A" | grep -q '"nosync": *true'; }
check "... its member key shows it" wait_until 10 tagged
out=$(curl -s -m 5 -X PATCH -d '{"synchronous_mode": true}' -w ' %{http_code}' "http://$(node_ip "$L"):8008/config")
check "PATCH /config synchronous_mode: true ($out)" grep -q ' 200$' <<<"$out"

sync_key_is() { [ "$(dcs_get sync | tr -d ' ')" = "{\"leader\":\"pg-$1\",\"sync_standby\":\"pg-$2\"}" ]; }
check "sync key names pg-$S as pg-$L's synchronous standby" wait_until 20 sync_key_is "$L" "$S" || diag "sync: $(dcs_get sync)"
check "primary runs with synchronous_standby_names = \"pg-$S\"" [ "$(psql_n "$L" 'SHOW synchronous_standby_names')" = "\"pg-$S\"" ]
check "pg_stat_replication: pg-$S sync, pg-$A async" [ "$(psql_n "$L" "SELECT string_agg(application_name || '=' || sync_state, ',' ORDER BY application_name) FROM pg_stat_replication")" = "$(printf 'pg-%s=%s\n' "$A" async "$S" sync | sort | paste -sd,)" ]
# each member reads the sync key in its next cycle
sync_codes() { [ "$(rest_code "$S" /sync) $(rest_code "$A" /sync) $(rest_code "$L" /sync)" = "200 503 503" ]; }
check "GET /sync: 200 on pg-$S, 503 on pg-$A and on the primary" wait_until 5 sync_codes \
  || diag "got $(rest_code "$S" /sync) $(rest_code "$A" /sync) $(rest_code "$L" /sync)"
check "GET /async: 503 on pg-$S, 200 on pg-$A" [ "$(rest_code "$S" /async) $(rest_code "$A" /async)" = "503 200" ]
check "GET /read-only-sync: 200 on the primary and pg-$S, 503 on pg-$A" \
  [ "$(rest_code "$L" /read-only-sync) $(rest_code "$S" /read-only-sync) $(rest_code "$A" /read-only-sync)" = "200 200 503" ]
check "GET /patroni on pg-$S says sync_standby: true" grep -q '"sync_standby": true' <<<"$(rest_get "$S" /patroni)"
out=$(curl -s -m 5 -X POST -d "{\"leader\": \"pg-$L\", \"candidate\": \"pg-$A\"}" -w ' %{http_code}' "http://$(node_ip "$L"):8008/switchover")
check "switchover to the asynchronous pg-$A is refused as by Patroni ($out)" [ "$out" = "candidate name does not match with sync_standby 412" ]
check "metric patroni_sync_standby 1 on pg-$S" grep -q '^patroni_sync_standby{.*} 1$' <<<"$(rest_get "$S" /metrics)"
out=$(patronictl -c "$T/pg-0.yml" list -f json 2>&1)
check "patronictl list: pg-$S is the Sync Standby" /usr/bin/python3 -c '
import json,sys
rows={r["Member"]: r["Role"] for r in json.loads(sys.argv[1])}
assert rows[sys.argv[2]]=="Sync Standby" and rows[sys.argv[3]]=="Replica", rows' "$out" "pg-$S" "pg-$A" || diag "$out"
check "appliancectl list: pg-$S Sync Standby" grep -q "^pg-$S .* Sync Standby " <<<"$("$REPO/build/bin/appliancectl" -c "$T/pg-0.yml" list)"
psql_n "$L" "CREATE TABLE synced(x int); INSERT INTO synced VALUES (1)" >/dev/null
check "a commit on the primary is on pg-$S when acknowledged" [ "$(psql_n "$S" 'SELECT count(*) FROM synced')" = 1 ]

# the primary dies: only the synchronous standby may take over
node_kill9 "$L"
check "pg-$S (the synchronous standby) takes over, not pg-$A" wait_until 30 leader_is "pg-$S" || diag "leader: $(dcs_leader)"
check "pg-$S is a writable primary" wait_until 15 is_primary "$S"
check "pg-$A explained why it did not race" grep -q "synchronous mode: only the synchronous standby pg-$S may take over" "$T/pg-$A.log"
new_key() { dcs_get sync | grep -q "\"leader\": *\"pg-$S\""; }
check "the sync key now names pg-$S as leader" wait_until 15 new_key || diag "sync: $(dcs_get sync)"
check "with no eligible standby left (nosync, dead), pg-$S runs asynchronously: writes go on" \
  wait_until 15 bash -c "PGPASSWORD=$SUPERPASS PGCONNECT_TIMEOUT=2 $PGBIN/psql -X -At -h $(node_ip "$S") -U postgres -d postgres -c 'SET statement_timeout = 3000; INSERT INTO synced VALUES (2)' >/dev/null 2>&1"
# strict: no synchronous standby means commits wait (synchronous_standby_names = '*')
out=$(curl -s -m 5 -X PATCH -d '{"synchronous_mode_strict": true}' -w ' %{http_code}' "http://$(node_ip "$S"):8008/config")
star() { [ "$(psql_n "$S" 'SHOW synchronous_standby_names')" = '*' ]; }
check "synchronous_mode_strict with no eligible standby: synchronous_standby_names = '*' ($out)" wait_until 15 star
node_kill9 "$A"
waits() { # the INSERT's commit has not returned after 3 s (timeout's exit status 124)
  PGPASSWORD=$SUPERPASS timeout 3 "$PGBIN/psql" -X -At -h "$(node_ip "$S")" -U postgres -d postgres \
    -c "INSERT INTO synced VALUES (3)" >/dev/null 2>&1
  [ $? = 124 ]
}
check "... and with no standby left at all, a commit waits for one" waits
out=$(curl -s -m 5 -X PATCH -d '{"synchronous_mode": null}' -w ' %{http_code}' "http://$(node_ip "$S"):8008/config")
no_sync_key() { [ -z "$(dcs_get sync)" ]; }
check "synchronous mode off: the sync key is removed" wait_until 15 no_sync_key || diag "sync: $(dcs_get sync) ($out)"
echo "1..$_tap_n"
