#!/usr/bin/env bash
# test-timeout: 240
# Compatibility on a running 3-node cluster: REST status codes per role (GET and OPTIONS)
# equal the reference table measured on real Patroni 3.0.2, /patroni and /cluster shapes,
# and Debian's real `patronictl list` shows our cluster correctly.
. "$(dirname "$0")/lib.sh"
require_env
REF=/work/shared/reference/patroni-3.0.2/rest_status_codes.txt
AG_CONF_IN_ENV=2 # pg-2 runs with no config file: all of it in PATRONI_CONFIGURATION
cluster_up 3
L=$(node_of "$LEADER"); R=$(( (L + 1) % 3 ))
# wait until both REST views have settled (the replica's status query after streaming)
wait_until 20 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' http://$(node_ip "$R"):8008/replica)\" = 200 ]" \
  || bail "replica pg-$R answers /replica 200"
mismatch="" checked=0
while read -r ep pg po rg ro || [ -n "$ep" ]; do
  case $ep in /*) ;; *) continue ;; esac
  checked=$((checked + 1))
  got="$(rest_code "$L" "$ep") $(rest_code "$L" "$ep" OPTIONS) $(rest_code "$R" "$ep") $(rest_code "$R" "$ep" OPTIONS)"
  [ "$got" = "$pg $po $rg $ro" ] || mismatch+=" $ep(want $pg/$po/$rg/$ro got ${got// //})"
done <"$REF"
check "REST status codes of $checked endpoints per role match Patroni 3.0.2 (primary/replica, GET/OPTIONS)${mismatch:+:$mismatch}" \
  test -z "$mismatch" -a "$checked" -ge 14

# tag filters on the replica checks (lib.sh gives node N the tag zone: zN)
check "GET /replica?tag_zone=z$R matches the replica's tag (200)" [ "$(rest_code "$R" "/replica?tag_zone=z$R")" = 200 ]
check "GET /replica?tag_zone=Z$R: compared case-insensitively (200)" [ "$(rest_code "$R" "/replica?tag_zone=Z$R")" = 200 ]
check "GET /replica?tag_zone=elsewhere does not match (503)" [ "$(rest_code "$R" '/replica?tag_zone=elsewhere')" = 503 ]
check "GET /replica?tag_rack=x: a tag the member lacks never matches (503)" [ "$(rest_code "$R" '/replica?tag_rack=x')" = 503 ]
check "GET /patroni on the primary is Patroni-shaped" /usr/bin/python3 -c '
import json,sys
p=json.loads(sys.argv[1])
assert p["state"]=="running" and p["role"]=="master", p
assert isinstance(p["xlog"]["location"],int) and p["timeline"]==1, p
assert p["patroni"]["version"]=="3.0.2" and p["patroni"]["scope"]==sys.argv[2], p
assert len(p["replication"])==2 and all(r["state"]=="streaming" for r in p["replication"]), p
assert isinstance(p["server_version"],int) and p["database_system_identifier"].isdigit(), p' \
  "$(rest_get "$L" /patroni)" "$SCOPE"
check "GET /patroni on a replica is Patroni-shaped" /usr/bin/python3 -c '
import json,sys
p=json.loads(sys.argv[1])
assert p["state"]=="running" and p["role"]=="replica", p
x=p["xlog"]; assert isinstance(x["received_location"],int) and isinstance(x["replayed_location"],int) and x["paused"] is False, p' \
  "$(rest_get "$R" /patroni)"
# member keys follow postgres by up to one HA cycle: poll
cluster_ok() {
  /usr/bin/python3 -c '
import json,sys
c=json.loads(sys.argv[1]); m=c["members"]
assert len(m)==3, c
roles=sorted(x["role"] for x in m); assert roles==["leader","replica","replica"], roles
assert all(x["state"] in ("running","streaming") for x in m), m' "$(rest_get "$R" /cluster)"
}
check "pg-2 runs from PATRONI_CONFIGURATION alone (no file argument)" \
  bash -c "tr '\\0' ' ' </proc/$(node_agent_pid 2)/cmdline | grep -qE 'appliance-agent \$'"
check "GET /cluster lists 3 members with one leader, all running" wait_until 10 cluster_ok || diag "$(rest_get "$R" /cluster)"

# Debian's real patronictl (3.0.2), reading our DCS keys
out=$(patronictl -c "$T/pg-0.yml" list -f json 2>"$T/patronictl.err")
check "patronictl list shows 1 Leader and 2 running Replicas on TL 1" /usr/bin/python3 -c '
import json,sys
rows=json.loads(sys.argv[1]); leader=sys.argv[2]
assert len(rows)==3, rows
for r in rows:
    assert r["Cluster"]==sys.argv[3] and r["TL"]==1 and r["State"] in ("running","streaming"), r
    assert r["Role"]==("Leader" if r["Member"]==leader else "Replica"), r
    assert r["Host"].startswith("127.0.40.1"), r
    if r["Role"]=="Replica": assert r["Lag in MB"]==0, r' "$out" "$LEADER" "$SCOPE" || diag "patronictl: $out $(cat "$T/patronictl.err")"
out=$(patronictl -c "$T/pg-0.yml" history -f json 2>>"$T/patronictl.err")
check "patronictl history parses (timeline 1: empty)" [ "$out" = "[]" ]

# run without appliance-init (as here), the agent stamps its own lines (ISO-8601 UTC)
check "agent log lines start with an ISO-8601 UTC timestamp outside appliance-init" \
  grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z info: ' "$T/pg-$R.log" || diag "$(head -2 "$T/pg-$R.log")"
check "... postgres' own lines passed through too" \
  grep -qE '^[0-9]{4}-[0-9-]+T[0-9:.]+Z info: postgres: ' "$T/pg-$R.log" || diag "$(grep -m2 'postgres' "$T/pg-$R.log")"

# a second agent that calls itself like a running member (other addresses) must refuse
node_conf 3
sed -i "s/^name: pg-3/name: pg-$R/" "$T/pg-3.yml"
node_start 3
check "an agent with a duplicate name (pg-$R) exits" wait_until 15 node_gone 3
check "... saying why" grep -q "name: another member named 'pg-$R' is running at http://$(node_ip "$R"):8008/patroni" "$T/pg-3.log"
member_intact() { dcs_get "members/pg-$R" | grep -q "$(node_ip "$R"):8008"; }
check "... without touching pg-$R's member key" member_intact
echo "1..$_tap_n"
