#!/usr/bin/env bash
# test-timeout: 240
# appliancectl's cluster commands against 3 real agents (PostgreSQL 15, DCS etcd 3.4), with
# REST credentials configured (sent from the config file): show-config prints YAML that
# reads back (PyYAML, as Patroni reads it) as the DCS config key; edit-config -s/-p/--apply
# changes it through PATCH /config and every postgres picks the GUC up; bad values and bad
# keys are refused with the key named and nothing changes; a restart-only setting shows up
# as pending restart (REST, metrics, list) and restart --pending applies it, replicas first;
# pause/resume --wait reach every member; while paused the DCS may go away (no fencing),
# postgres stopped by hand stays stopped (the leader gives its lock up, nobody is promoted);
# member (list shows "Maintenance mode: on"), twice is an error; failover --candidate moves
# the leader; with the cluster paused and the leader killed (nobody takes over by itself)
# failover --candidate makes the named member the leader, and the killed node rejoins;
# history shows the promotion; reload reaches every member.
. "$(dirname "$0")/../agent/lib.sh"
require_env
export AG_REST_AUTH=ctl-admin:ctl-pass
cluster_up 3
L=$(node_of "$LEADER"); R=$(( (L + 1) % 3 ))
ctl=$REPO/build/bin/appliancectl
CN=$R # the member whose config (and REST API) appliancectl uses
run() { "$ctl" -c "$T/pg-$CN.yml" "$@" >"$T/out" 2>"$T/err"; echo $? >"$T/rc"; }
rc_is() { [ "$(cat "$T/rc")" = "$1" ]; }
out_has() { grep -qE -- "$1" "$T/out"; }
err_has() { grep -qE -- "$1" "$T/err"; }
show() { diag "rc $(cat "$T/rc"); stdout: $(head -c 600 "$T/out"); stderr: $(head -c 600 "$T/err")"; }
cfg_json() { dcs_get config; }
yaml_is_dcs_config() { # stdout (YAML) == the DCS config key (JSON)
  cfg_json >"$T/cfg.json"
  python3 -c 'import json,sys,yaml; sys.exit(0 if yaml.safe_load(open(sys.argv[1])) == json.load(open(sys.argv[2])) else 1)' "$T/out" "$T/cfg.json"
}
guc_everywhere() { local n; for n in 0 1 2; do [ "$(psql_n "$n" "SHOW $1")" = "$2" ] || return 1; done; }

run show-config
check "show-config: exit 0, YAML that reads back (PyYAML) as the DCS config key" \
  eval 'rc_is 0 && yaml_is_dcs_config' || show

run edit-config -p work_mem=7MB -s loop_wait=2 -s postgresql.parameters.log_min_duration_statement=250
check "edit-config -p/-s: exit 0, prints the new config" \
  eval 'rc_is 0 && out_has "work_mem: 7MB" && out_has "loop_wait: 2"' || show
check "the DCS config key holds the changes (typed: loop_wait an integer)" python3 -c '
import json, sys
c = json.loads(sys.argv[1])
p = c["postgresql"]["parameters"]
sys.exit(0 if c["loop_wait"] == 2 and p["work_mem"] == "7MB" and p["log_min_duration_statement"] == 250 else 1)' "$(cfg_json)"
check "every postgres runs with work_mem 7MB (agents reloaded)" wait_until 30 guc_everywhere work_mem 7MB

before=$(cfg_json)
run edit-config -s ttl=abc
check "edit-config -s ttl=abc: exit 1, the agent's reason names ttl" \
  eval 'rc_is 1 && err_has ttl' || show
run edit-config -s work_mem
check "edit-config -s without '=': exit 2 naming the option" \
  eval 'rc_is 2 && err_has "needs KEY=VALUE"' || show
run edit-config -s 'postgresql..x=1'
check "edit-config with an empty key part: exit 2, bad key named" \
  eval 'rc_is 2 && err_has "bad key .postgresql\.\.x."' || show
run edit-config -s 'x=[unclosed'
check "edit-config with a value that is not YAML: exit 2 naming the key" \
  eval 'rc_is 2 && err_has "value of x"' || show
run edit-config
check "edit-config with no change: exit 2 (no interactive editor)" eval 'rc_is 2'
check "refused edits changed nothing in the DCS" [ "$(cfg_json)" = "$before" ]

printf 'postgresql:\n  parameters:\n    work_mem: 9MB\n' >"$T/patch.yml"
run edit-config --apply "$T/patch.yml" -q
check "edit-config --apply FILE -q: exit 0, quiet" eval 'rc_is 0 && [ ! -s "$T/out" ]' || show
check "every postgres runs with work_mem 9MB" wait_until 30 guc_everywhere work_mem 9MB
run edit-config -s loop_wait= -s postgresql.parameters.log_min_duration_statement=null
check "edit-config KEY= and KEY=null delete keys" python3 -c '
import json, sys
c = json.loads(sys.argv[1])
sys.exit(0 if "loop_wait" not in c and "log_min_duration_statement" not in c["postgresql"]["parameters"] else 1)' "$(cfg_json)"

# a setting that needs a restart: every member shows it pending (REST, metrics, list), and
# restart --pending applies it (replicas first)
run edit-config -p max_connections=120 -q
check "edit-config -p max_connections=120: exit 0" eval 'rc_is 0' || show
all_pending() { local n; for n in 0 1 2; do rest_get "$n" /patroni | grep -q '"pending_restart": *true' || return 1; done; }
check "every member's /patroni says pending_restart (reason max_connections)" \
  eval 'wait_until 30 all_pending && rest_get "$L" /patroni | grep -qE "\"max_connections\": *{\"old_value\": *\"[0-9]+\", *\"new_value\": *\"120\"}"' || diag "$(rest_get "$L" /patroni)"
check "patroni_pending_restart 1 in /metrics" eval 'rest_get "$L" /metrics | grep -qE "^patroni_pending_restart\{.*\} 1$"'
list_pending() { run list; rc_is 0 && out_has "Pending restart" && [ "$(grep -cE '  \*$' "$T/out")" = 3 ]; }
check "list shows a Pending restart column with * for all three" wait_until 15 list_pending || show
run restart --pending
check "restart --pending: exit 0, each member restarted, the leader last" \
  eval 'rc_is 0 && [ "$(grep -cE "^pg-[0-2]: " "$T/out")" = 3 ] && tail -1 "$T/out" | grep -q "^pg-$L: "' || show
max_conn_everywhere() { guc_everywhere max_connections 120; }
check "every postgres runs with max_connections 120" wait_until 60 max_conn_everywhere
none_pending() { local n; for n in 0 1 2; do rest_get "$n" /patroni | grep -q '"pending_restart"' && return 1; done; return 0; }
check "no member is pending a restart any more" wait_until 15 none_pending
check "the replicas stream again" eval 'wait_until 60 streaming "$R" && wait_until 60 streaming "$(( (L + 2) % 3 ))"'
run restart --pending
check "restart --pending with nothing pending: exit 0, says so" eval 'rc_is 0 && out_has "no member needs a restart"' || show

all_paused() { local n; for n in 0 1 2; do rest_get "$n" /patroni | grep -q "\"pause\": *$1" || return 1; done; }
run pause --wait
check "pause --wait: exit 0 once every member reports it" \
  eval 'rc_is 0 && out_has "cluster management is paused"' || show
check "every member's /patroni says pause: true" all_paused true
run list
check "list shows ' Maintenance mode: on'" eval 'rc_is 0 && out_has "^ Maintenance mode: on"' || show
run pause
check "pause again: exit 1, already paused" eval 'rc_is 1 && err_has "already paused"' || show
# Patroni's pause semantics. The DCS gone while paused: the primary is NOT fenced (failsafe
# off first: with it, every member's confirmation would keep the primary up anyway).
run edit-config -s failsafe_mode=false -q
fs_off() { rest_get "$L" /config | grep -q '"failsafe_mode": *false'; }
check "edit-config -s failsafe_mode=false reached the leader" eval 'rc_is 0 && wait_until 15 fs_off' || show
etcd_kill_all
not_fenced_logged() { grep -q "paused: NOT stopping postgres" "$T/pg-$L.log"; }
check "paused, DCS killed: the leader says it does not fence" wait_until 30 not_fenced_logged
check "... and pg-$L still runs as primary" is_primary "$L"
for e in 1 2 3; do etcd_member_start "$e"; done
check "DCS back: pg-$L holds the leader key again, still primary (no failover)" \
  eval 'wait_until 60 leader_is "pg-$L" && is_primary "$L"'
# A replica's postgres stopped by hand stays stopped.
C=$(( (L + 2) % 3 ))
kill -INT "$(node_pm_pid "$R")"
decided() { rest_get "$1" /patroni | grep -q "\"ha_decision\": *\"$2"; }
check "paused: pg-$R's postgres, stopped by hand, is not started again" \
  eval 'wait_until 20 decided "$R" "paused: postgres is not running" && ! is_replica "$R"'
# The leader's postgres stopped by hand: the lock is given up, nobody is promoted.
kill -INT "$(node_pm_pid "$L")"
no_leader() { ! has_leader; }
check "paused: the leader's postgres stopped by hand -> leader key released" wait_until 20 no_leader
check "... and pg-$C stays a replica (its HA decision: paused)" \
  eval 'wait_until 10 decided "$C" "paused: replicas do not take" && is_replica "$C"'
run resume --wait
check "resume --wait: exit 0" eval 'rc_is 0 && out_has "cluster management is resumed"' || show
three_up() { local n p=0; for n in 0 1 2; do is_primary "$n" && p=$((p + 1)); done; [ "$p" = 1 ] &&
  for n in 0 1 2; do is_primary "$n" || streaming "$n" || return 1; done; }
check "resumed: one primary, two streaming replicas again" wait_until 90 three_up
L=$(node_of "$(dcs_leader)"); R=$(( (L + 1) % 3 )); CN=$R
run list
check "list has no maintenance footer after resume" eval '! out_has "Maintenance mode"' 
run resume
check "resume again: exit 1, not paused" eval 'rc_is 1 && err_has "not paused"' || show

run failover
check "failover without --candidate: exit 2" eval 'rc_is 2 && err_has "needs --candidate"' 
run failover --candidate pg-9
check "failover to a non-member: exit 1 naming it" eval 'rc_is 1 && err_has "pg-9 is not a member"' 
run failover --candidate "pg-$R" --force
check "failover --candidate pg-$R: exit 0" eval 'rc_is 0' || show
check "pg-$R holds the leader key and runs as primary" \
  eval 'wait_until 30 leader_is "pg-$R" && wait_until 30 is_primary "$R"' 
history_shows() { run history; rc_is 0 && tail -1 "$T/out" | grep -qE "^ +[0-9]+ +[0-9]+ .*pg-$R\$"; }
check "history: its last row is the promotion of pg-$R (once the new leader wrote the key)" \
  wait_until 20 history_shows || show
# failover with NO leader: paused (no member races), the leader node killed; the operator
# names the new leader
C=$(( (R + 1) % 3 )); CN=$C
run pause --wait
check "pause --wait (for the no-leader failover)" eval 'rc_is 0' || show
node_kill9 "$R"
no_leader() { ! has_leader; }
check "the killed leader's key expires" wait_until 20 no_leader
decided_paused() { rest_get "$C" /patroni | grep -q '"ha_decision": *"paused'; }
check "pg-$C does not race while paused (its HA decision says so)" wait_until 10 decided_paused
run failover --candidate "pg-$C"
check "failover --candidate pg-$C with no leader: exit 0, 'Successfully failed over'" \
  eval 'rc_is 0 && out_has "Successfully failed over to .pg-$C."' || show
check "pg-$C holds the leader key and runs as primary" \
  eval 'wait_until 30 leader_is "pg-$C" && wait_until 30 is_primary "$C"'
run resume --wait
check "resume --wait" eval 'rc_is 0' || show
node_start "$R"
check "the killed former leader pg-$R comes back as a replica of pg-$C (rewound)" wait_until 90 streaming "$R"

run reload
check "reload: every member answers" \
  eval 'rc_is 0 && [ "$(grep -cE "^pg-[0-2]: " "$T/out")" = 3 ]' || show
run reload pg-7
check "reload of a non-member: exit 1 naming it" eval 'rc_is 1 && err_has "pg-7 is not a member"' 
echo "1..$_tap_n"
