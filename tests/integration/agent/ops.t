#!/usr/bin/env bash
# test-timeout: 240
# Operations through Debian's real patronictl 3.0.2 and the REST API: restart of a member,
# reload of a changed config file (and refusal of a bad one), planned switchover to a named
# candidate (answered when done, like Patroni).
. "$(dirname "$0")/lib.sh"
require_env
cluster_up 3
L=$(node_of "$LEADER"); R=$(( (L + 1) % 3 )); C=$(( (L + 2) % 3 ))
pc() { patronictl -c "$T/pg-$L.yml" "$@" 2>&1; }

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
body=$(curl -s -m 5 -X POST -w ' %{http_code}' "http://$(node_ip "$R"):8008/reload")
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
out=$(curl -s -m 5 -X POST -w ' %{http_code}' "http://$(node_ip "$L"):8008/reinitialize")
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
body=$(curl -s -m 5 -X PATCH -d '{"ttl": "x"}' -w ' %{http_code}' "http://$(node_ip "$R"):8008/config")
check "PATCH /config with a bad value: 400 naming the key ($body)" grep -q "ttl: expected an integer, got 'x' 400" <<<"$body"
echo "1..$_tap_n"
