#!/usr/bin/env bash
# test-timeout: 240
# Operations through Debian's real patronictl 3.0.2 and the REST API: restart of a member,
# reload of a changed config file (and refusal of a bad one), planned switchover to a named
# candidate (answered when done, like Patroni). restapi.authentication is configured: every
# mutating endpoint answers 401 without or with wrong credentials (and changes nothing), and
# works with the right ones (patronictl and appliancectl send them from the config file).
. "$(dirname "$0")/lib.sh"
require_env
AUTH=it-admin:it-admin-pass
export AG_REST_AUTH=$AUTH
cluster_up 3
L=$(node_of "$LEADER"); R=$(( (L + 1) % 3 )); C=$(( (L + 2) % 3 ))
pc() { patronictl -c "$T/pg-$L.yml" "$@" 2>&1; }

# Basic auth on every mutating endpoint (Patroni's check_access list)
code_of() { # METHOD PATH NODE [curl args...]: HTTP status
  local m=$1 p=$2 n=$3; shift 3
  curl -s -o /dev/null -m 5 -w '%{http_code}' -X "$m" "$@" "http://$(node_ip "$n"):8008$p"
}
mutating=("POST /switchover" "POST /failover" "POST /restart" "POST /reload" "POST /reinitialize"
  "POST /failsafe" "PATCH /config" "PUT /config" "DELETE /restart" "DELETE /switchover")
pm_r=$(node_pm_pid "$R") pm_l=$(node_pm_pid "$L") cfg_before=$(dcs_get config)
bad=""
for ep in "${mutating[@]}"; do
  read -r m p <<<"$ep"
  for n in "$L" "$R"; do
    body="{\"leader\": \"pg-$L\", \"candidate\": \"pg-$R\", \"name\": \"pg-$L\", \"pause\": true}"
    got="$(code_of "$m" "$p" "$n" -d "$body") $(code_of "$m" "$p" "$n" -d "$body" -u it-admin:wrong) $(code_of "$m" "$p" "$n" -d "$body" -u nobody:it-admin-pass) $(code_of "$m" "$p" "$n" -d "$body" -H 'Authorization: Bearer x')"
    [ "$got" = "401 401 401 401" ] || bad+=" $ep@pg-$n($got)"
  done
done
check "${#mutating[@]} mutating endpoints answer 401 with no, a wrong or a non-Basic Authorization on leader and replica${bad:+:$bad}" test -z "$bad"
www=$(curl -s -D - -o /dev/null -m 5 -X POST "http://$(node_ip "$R"):8008/restart")
check "... with WWW-Authenticate: Basic realm=\"Patroni\"" grep -qi '^WWW-Authenticate: Basic realm="Patroni"' <<<"$www"
check "... and nothing happened: same postmasters, same leader, same config key" \
  test "$(node_pm_pid "$R") $(node_pm_pid "$L") $(dcs_leader) $(dcs_get config)" = "$pm_r $pm_l pg-$L $cfg_before"
check "read-only endpoints stay open (GET /patroni 200 without credentials)" [ "$(rest_code "$R" /patroni)" = 200 ]
out=$(curl -s -m 5 -u "$AUTH" -X POST -d "{\"name\": \"pg-$L\"}" -w ' %{http_code}' "http://$(node_ip "$R"):8008/failsafe")
check "POST /failsafe with the right credentials: 200 Accepted ($out)" [ "$out" = "Accepted 200" ]
out=$(curl -s -m 5 -u "$AUTH" -X PUT -d "$cfg_before" -w ' %{http_code}' "http://$(node_ip "$R"):8008/config")
check "PUT /config with the right credentials: 200 (${out: -3})" [ "${out: -3}" = 200 ]
out=$(curl -s -m 5 -u "$AUTH" -X DELETE -w ' %{http_code}' "http://$(node_ip "$R"):8008/restart")
check "DELETE /restart with the right credentials: 404 no restarts are scheduled, as Patroni ($out)" [ "$out" = "no restarts are scheduled 404" ]
out=$(curl -s -m 5 -u "$AUTH" -X DELETE -w ' %{http_code}' "http://$(node_ip "$R"):8008/switchover")
check "DELETE /switchover with the right credentials: 404 no switchover is scheduled ($out)" [ "$out" = "no switchover is scheduled 404" ]

# restart (once pg-R's agent has announced its running postgres: on_start callback)
cb_has() { grep -qx "$2" "$T/pg-$1/callbacks.log" 2>/dev/null; }
check "callback on_start replica ran on pg-$R" wait_until 10 cb_has "$R" "on_start replica $SCOPE"
pm_before=$(node_pm_pid "$R")
out=$(pc restart "$SCOPE" "pg-$R" --force)
check "patronictl restart pg-$R succeeds" grep -q "Success: restart on member pg-$R" <<<"$out" || diag "$out"
check "postgres of pg-$R really restarted (new postmaster pid)" [ "$(node_pm_pid "$R")" != "$pm_before" ]
check "pg-$R streams again after the restart" wait_until 30 streaming "$R"
check "callback on_restart replica ran on pg-$R (not on_stop/on_start)" \
  wait_until 10 bash -c "grep -qx 'on_restart replica $SCOPE' $T/pg-$R/callbacks.log && ! grep -q on_stop $T/pg-$R/callbacks.log" || diag "$(cat "$T/pg-$R/callbacks.log")"

# reload: a local parameter changes in the file
/usr/bin/python3 - "$T/pg-$R.yml" <<'PY'
import sys, yaml
p = sys.argv[1]; c = yaml.safe_load(open(p))
c["postgresql"].setdefault("parameters", {})["work_mem"] = "7MB"
yaml.safe_dump(c, open(p, "w"))
PY
out=$(pc reload "$SCOPE" "pg-$R" --force)
check "patronictl reload pg-$R is accepted" grep -q "Reload request received for member pg-$R" <<<"$out" || diag "$out"
work_mem() { [ "$(psql_n "$R" 'SHOW work_mem')" = 7MB ]; }
check "the new work_mem is live on pg-$R" wait_until 15 work_mem
check "callback on_reload replica ran on pg-$R" wait_until 10 cb_has "$R" "on_reload replica $SCOPE"
# a bad file is refused with the key named, and the agent keeps running
cp "$T/pg-$R.yml" "$T/pg-$R.yml.good"
sed -i "s/listen: $(node_ip "$R"):5432/listen: $(node_ip "$R"):notaport/" "$T/pg-$R.yml"
body=$(curl -s -m 5 -u "$AUTH" -X POST -w ' %{http_code}' "http://$(node_ip "$R"):8008/reload")
check "POST /reload with a bad file: 400 naming postgresql.listen ($body)" grep -q "postgresql.listen: .* 400$" <<<"$body"
check "pg-$R keeps running after a refused reload" streaming "$R"
cp "$T/pg-$R.yml.good" "$T/pg-$R.yml"

# reinitialize a replica (patronictl reinit -> POST /reinitialize)
out=$(pc reinit "$SCOPE" "pg-$R" --force)
check "patronictl reinit pg-$R is accepted" grep -q "Success: reinitialize for member pg-$R" <<<"$out" || diag "$out"
check "pg-$R moved its data directory aside and cloned again" wait_until 30 test -d "$T/pg-$R/data.reinit"
check "pg-$R streams again after the reinit" wait_until 60 streaming "$R"
check "the re-cloned pg-$R has the rows of the primary" wait_until 20 bash -c \
  "[ \"\$(PGPASSWORD=$SUPERPASS $PGBIN/psql -X -At -h $(node_ip "$R") -U postgres -d postgres -c 'SELECT count(*) FROM pg_database' 2>/dev/null)\" -ge 3 ]"
out=$(curl -s -m 5 -u "$AUTH" -X POST -w ' %{http_code}' "http://$(node_ip "$L"):8008/reinitialize")
check "POST /reinitialize on the leader is refused ($out)" grep -q "I am the leader, can not reinitialize 503" <<<"$out"

# appliancectl (our CLI) reads the same REST API
ctl=$REPO/build/bin/appliancectl
out=$("$ctl" -c "$T/pg-$R.yml" list 2>&1)
check "appliancectl list shows the leader and 2 replicas" bash -c \
  "grep -q '^pg-$L .* Leader ' <<<\"\$1\" && [ \$(grep -c ' Replica ' <<<\"\$1\") = 2 ]" _ "$out" || diag "$out"

# planned switchover to a named candidate
out=$(pc switchover "$SCOPE" --leader "pg-$L" --candidate "pg-$C" --force)
check "patronictl switchover reports success" grep -q "Successfully switched over to \"pg-$C\"" <<<"$out" || diag "$out"
check "pg-$C holds the leader key" leader_is "pg-$C"
check "pg-$C is a writable primary" wait_until 10 is_primary "$C"
check "the old leader pg-$L follows pg-$C" wait_until 60 streaming "$L"
check "callback on_role_change master ran on pg-$C" wait_until 10 cb_has "$C" "on_role_change master $SCOPE" || diag "$(cat "$T/pg-$C/callbacks.log")"
check "callbacks on pg-$L: on_stop master, then on_start replica" \
  wait_until 10 bash -c "grep -qx 'on_stop master $SCOPE' $T/pg-$L/callbacks.log && grep -qx 'on_start replica $SCOPE' $T/pg-$L/callbacks.log" || diag "$(cat "$T/pg-$L/callbacks.log")"
list_ok() {
  /usr/bin/python3 -c '
import json,sys
rows=json.loads(sys.argv[1])
assert [r["Member"] for r in rows if r["Role"]=="Leader"]==[sys.argv[2]], rows
assert all(r["State"] in ("running","streaming") for r in rows), rows' "$(pc list -f json)" "pg-$C"
}
check "patronictl list shows pg-$C as Leader, others running replicas" wait_until 15 list_ok || diag "$(pc list)"
# and back with appliancectl (to any healthy member)
out=$("$ctl" -c "$T/pg-$R.yml" switchover 2>&1)
check "appliancectl switchover succeeds" grep -q "Successfully switched over to" <<<"$out" || diag "$out"
away() { local l; l=$(dcs_leader); [ -n "$l" ] && [ "$l" != "pg-$C" ] && is_primary "$(node_of "$l")"; }
check "the leader moved away from pg-$C" wait_until 20 away

# pause / resume (PATCH /config {"pause": true|null}, a compare-and-swap on the config key)
out=$(pc pause "$SCOPE" 2>&1)
check "patronictl pause succeeds" grep -q "Success: cluster management is paused" <<<"$out" || diag "$out"
paused() { pc list | grep -q "Maintenance mode: on"; }
check "patronictl list shows maintenance mode" wait_until 10 paused
check "GET /patroni reports pause" wait_until 10 bash -c "curl -s http://$(node_ip "$R"):8008/patroni | grep -q '\"pause\": true'"
out=$(pc resume "$SCOPE" 2>&1)
check "patronictl resume succeeds" grep -q "Success: cluster management is resumed" <<<"$out" || diag "$out"
no_pause() { ! dcs_get config | grep -q pause; }
check "the config key has no pause any more" no_pause
body=$(curl -s -m 5 -u "$AUTH" -X PATCH -d '{"ttl": "x"}' -w ' %{http_code}' "http://$(node_ip "$R"):8008/config")
check "PATCH /config with a bad value: 400 naming the key ($body)" grep -q "ttl: expected an integer, got 'x' 400" <<<"$body"
# POST /failover with the right credentials (a planned one: leader and candidate named)
F=$(node_of "$(dcs_leader)"); G=$(( (F + 1) % 3 ))
out=$(curl -s -m 40 -u "$AUTH" -X POST -d "{\"leader\": \"pg-$F\", \"candidate\": \"pg-$G\"}" -w ' %{http_code}' "http://$(node_ip "$F"):8008/failover")
check "POST /failover with the right credentials moves the leader to pg-$G ($out)" [ "$out" = "Successfully failed over to \"pg-$G\" 200" ]
echo "1..$_tap_n"
