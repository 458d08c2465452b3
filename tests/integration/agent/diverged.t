#!/usr/bin/env bash
# test-timeout: 240
# A replica whose WAL went past the new leader's fork is rewound (or re-cloned), after an
# asynchronous failover. Every node in a network namespace of its own (NET=ns), so one
# replica's replication can be cut with iptables inside its namespace while the other keeps
# streaming.
#  1. pg-0 primary; pg-1 (A) stops receiving WAL; rows written on pg-0 reach only pg-2 (B,
#     tagged nofailover), whose agent is then stopped; kill -9 of pg-0; A takes over
#     (timeline 2) and gets new rows; B starts again. B must be found diverged from its
#     pg_control (minimum recovery point past A's switchpoint) before postgres starts,
#     pg_rewind'ed, stream from A on timeline 2, have A's rows and no longer the rows A
#     never had. (Cases 2-4 find the divergence of a running B.)
#  2. use_pg_rewind off in the DCS, B has remove_data_directory_on_diverged_timelines: the
#     same with pg-0 (back as a replica) as the one cut off and A killed: B is re-cloned
#     from pg-0 (timeline 3), its old data dir moved aside.
#  3. neither allowed (B's remove_data_directory_on_diverged_timelines turned off by a
#     reload): pg-1 back, cut off, pg-0 killed, pg-1 leads on timeline 4. B must say so
#     and do nothing else: state "diverged" in appliancectl list, /replica 503 (it holds
#     rows the cluster does not have), the verdict in /patroni, no rewind or clone tried;
#     then appliancectl reinit re-clones it.
#  4. pg_rewind fails (B's rewind password is wrong; use_pg_rewind back on, no removal
#     allowed): pg-0 back, cut off, pg-1 killed, pg-0 leads. B runs pg_rewind once, then
#     reports "the fix failed", leaves its postgres stopped and does not try again.
NET=ns
. "$(dirname "$0")/lib.sh"
require_env
command -v iptables >/dev/null || bail "iptables is installed"

# cut_replication N LEADER on|off: node N's packets to and from LEADER's postgres vanish
# (rules inside node N's namespace; its other traffic, e.g. REST and the DCS, flows).
cut_replication() {
  local act=-I; [ "$3" = off ] && act=-D
  ip netns exec "$NS-n$1" iptables $act OUTPUT -p tcp -d "$(node_ip "$2")" --dport 5432 -j DROP
  ip netns exec "$NS-n$1" iptables $act INPUT -p tcp -s "$(node_ip "$2")" --sport 5432 -j DROP
}
count_on() { psql_n "$1" "SELECT count(*) FROM $2"; }
has_rows() { [ "$(count_on "$1" "$2")" = "$3" ]; }
lacks_table() { [ "$(psql_n "$1" "SELECT to_regclass('$2') IS NULL")" = t ]; }
timeline_of() { rest_get "$1" /patroni | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin).get("timeline",0))'; }
on_timeline() { [ "$(timeline_of "$1")" = "$2" ] && streaming "$1"; }
new_leader_is() { leader_is "pg-$1" && is_primary "$1"; }

etcd_start
for n in 0 1 2; do node_conf "$n"; done
# B = pg-2: never a failover candidate, and allowed to re-clone when it cannot rewind
sed -i 's/nofailover: false/nofailover: true/' "$T/pg-2.yml"
sed -i 's/^postgresql:$/postgresql:\n  remove_data_directory_on_diverged_timelines: true/' "$T/pg-2.yml"
node_start 0
wait_until 60 new_leader_is 0 || bail "pg-0 bootstraps and leads"
node_start 1
node_start 2
wait_until 60 streaming 1 || bail "pg-1 streams from pg-0"
wait_until 60 streaming 2 || bail "pg-2 streams from pg-0"
t0=$(now_ms)

# ---- 1: diverged replica is rewound
cut_replication 1 0 on
psql_n 0 "CREATE TABLE lost1 AS SELECT generate_series(1,100) AS id" >/dev/null
check "pg-2 received the rows written on pg-0 after pg-1 was cut off" wait_until 20 has_rows 2 lost1 100
check "pg-1 did not receive them" lacks_table 1 lost1
# pg-2 is down during the failover: its data dir is judged from pg_control at its start
node_term 2
check "pg-2's agent stops (postgres shut down in recovery)" wait_until 30 node_gone 2
node_kill9 0
check "pg-1 takes over although pg-2 has more WAL (pg-2 is nofailover)" wait_until 30 new_leader_is 1
cut_replication 1 0 off
psql_n 1 "CREATE TABLE after1 AS SELECT generate_series(1,50) AS id" >/dev/null
node_start 2
check "pg-2 checks its stopped data dir (pg_control) before starting" \
  wait_until 30 grep -q 'timeline check: my timeline 1, position [0-9A-F/]* (pg_control)' "$T/pg-2.log"
check "pg-2 was found diverged from pg-1's timeline 2" \
  wait_until 30 grep -q 'DIVERGED from leader pg-1: timeline 1 forked off into timeline 2 at .* (past the switchpoint' "$T/pg-2.log"
grep 'DIVERGED from leader' "$T/pg-2.log" | head -1 | sed 's/^/# /'
check "pg-2 was rewound (pg_rewind done)" wait_until 30 grep -q 'pg_rewind done' "$T/pg-2.log"
check "pg-2 streams from pg-1 on timeline 2" wait_until 30 on_timeline 2 2
check "pg-2 has the rows written on pg-1" wait_until 20 has_rows 2 after1 50
check "pg-2 no longer has the rows pg-1 never had" lacks_table 2 lost1
check "pg-2 was checked, not re-cloned" bash -c "[ ! -e '$T/pg-2/data.diverged' ]"
diag "case 1 took $(($(now_ms) - t0)) ms"
t1=$(now_ms)

# ---- 2: rewind off -> re-clone (remove_data_directory_on_diverged_timelines)
cfg=$(dcs_get config | /usr/bin/python3 -c 'import json,sys; c=json.load(sys.stdin); c.setdefault("postgresql",{})["use_pg_rewind"]=False; print(json.dumps(c,separators=(",",":")))')
dcsctl put "/service/$SCOPE/config" "$cfg" >/dev/null || bail "config key updated (use_pg_rewind off)"
rewind_off() { rest_get 2 /config | grep -q '"use_pg_rewind": false'; }
wait_until 10 rewind_off || bail "pg-2 sees use_pg_rewind off"
node_start 0 # the old primary comes back (it rewinds itself as a former primary)
check "pg-0 rejoins as a replica of pg-1" wait_until 60 on_timeline 0 2
cut_replication 0 1 on
psql_n 1 "CREATE TABLE lost2 AS SELECT generate_series(1,70) AS id" >/dev/null
check "pg-2 received the rows written on pg-1 after pg-0 was cut off" wait_until 20 has_rows 2 lost2 70
check "pg-0 did not receive them" lacks_table 0 lost2
node_kill9 1
check "pg-0 takes over (timeline 3)" wait_until 30 new_leader_is 0
cut_replication 0 1 off
psql_n 0 "CREATE TABLE after2 AS SELECT generate_series(1,30) AS id" >/dev/null
check "pg-2 was found diverged from pg-0's timeline 3" \
  wait_until 30 grep -q 'DIVERGED from leader pg-0: timeline 2 forked off into timeline 3' "$T/pg-2.log"
check "pg-2 decided to re-clone (use_pg_rewind off)" \
  wait_until 20 grep -q 're-cloning (remove_data_directory_on_diverged_timelines' "$T/pg-2.log"
check "pg-2 streams from pg-0 on timeline 3" wait_until 40 on_timeline 2 3
check "pg-2's diverged data dir was moved aside" [ -f "$T/pg-2/data.diverged/PG_VERSION" ]
check "pg-2 has the rows written on pg-0" wait_until 20 has_rows 2 after2 30
check "pg-2 no longer has the rows pg-0 never had" lacks_table 2 lost2
check "pg-2 ran pg_rewind only once (case 1)" [ "$(grep -c 'pg_rewind done' "$T/pg-2.log")" = 1 ]
diag "case 2 took $(($(now_ms) - t1)) ms"
t2=$(now_ms)

# ---- 3: no fix allowed -> reported, left alone; the operator reinitializes
sed -i 's/remove_data_directory_on_diverged_timelines: true/remove_data_directory_on_diverged_timelines: false/' "$T/pg-2.yml"
kill -HUP "$(node_agent_pid 2)"
wait_until 10 grep -q 'configuration reloaded' "$T/pg-2.log" || bail "pg-2 reloads its configuration"
node_start 1
check "pg-1 rejoins as a replica of pg-0" wait_until 60 on_timeline 1 3
cut_replication 1 0 on
psql_n 0 "CREATE TABLE lost3 AS SELECT generate_series(1,20) AS id" >/dev/null
check "pg-2 received the rows written on pg-0 after pg-1 was cut off" wait_until 20 has_rows 2 lost3 20
node_kill9 0
check "pg-1 takes over (timeline 4)" wait_until 30 new_leader_is 1
cut_replication 1 0 off
diverged_reported() {
  rest_get 2 /patroni | /usr/bin/python3 -c '
import json,sys; p=json.load(sys.stdin); d=p.get("diverged") or {}
assert p["state"]=="diverged" and d.get("leader")=="pg-1" and d.get("leader_timeline")==4, p
assert d.get("timeline")==3 and d["action"].startswith("none: use_pg_rewind is off"), d'
}
check "pg-2 reports the divergence in /patroni (state diverged, leader timeline 4, no action)" \
  wait_until 30 diverged_reported || diag "$(rest_get 2 /patroni)"
list_shows_diverged() { "${NSX[@]}" build/bin/appliancectl -c "$T/pg-1.yml" list 2>&1 | grep -qE '^pg-2 .* diverged '; }
check "appliancectl list shows pg-2 as diverged" wait_until 10 list_shows_diverged ||
  diag "$("${NSX[@]}" build/bin/appliancectl -c "$T/pg-1.yml" list 2>&1)"
check "pg-2 answers /replica with 503 (it has rows the cluster does not)" [ "$(rest_code 2 /replica)" = 503 ]
check "pg-2's postgres still runs as it was (not stopped, not rewound)" has_rows 2 lost3 20
check "pg-2 logged the DIVERGED decision with the LSNs" \
  grep -q 'DIVERGED from leader pg-1: timeline 3 forked off into timeline 4 at [0-9A-F]*/[0-9A-F]*; my position on timeline 3 is' "$T/pg-2.log"
check "pg-2 tried nothing: one re-clone (case 2), one pg_rewind (case 1)" \
  bash -c "[ \$(grep -c 'moving the data directory aside' '$T/pg-2.log') = 1 ] && [ \$(grep -c 'info: rewinding from' '$T/pg-2.log') = 1 ]"
out=$("${NSX[@]}" build/bin/appliancectl -c "$T/pg-1.yml" reinit pg-2 2>&1); rc=$?
check "appliancectl reinit pg-2 is accepted" [ "$rc" = 0 ] || diag "$out"
# (the leader's timeline, not a fixed 4: on a loaded machine pg-1 may fence itself and
# promote again meanwhile, which this case is not about)
follows_leader_timeline_of() { local l; l=$(dcs_leader); [ -n "$l" ] && [ "$l" != "pg-$1" ] && on_timeline "$1" "$(timeline_of "$(node_of "$l")")"; }
follows_leader_timeline() { follows_leader_timeline_of 2; }
check "after the reinit pg-2 streams from the leader on its timeline" wait_until 40 follows_leader_timeline
no_divergence() { ! rest_get 2 /patroni | grep -q '"diverged"'; }
check "... and no longer reports a divergence" no_divergence || diag "$(rest_get 2 /patroni)"
diag "case 3 took $(($(now_ms) - t2)) ms"
t3=$(now_ms)

# ---- 4: pg_rewind fails -> tried once, reported, left alone
cfg=$(dcs_get config | /usr/bin/python3 -c 'import json,sys; c=json.load(sys.stdin); c["postgresql"]["use_pg_rewind"]=True; print(json.dumps(c,separators=(",",":")))')
dcsctl put "/service/$SCOPE/config" "$cfg" >/dev/null || bail "config key updated (use_pg_rewind on)"
sed -i 's/password: it-rewind-pass/password: wrong-rewind-pass/; s/^postgresql:$/postgresql:\n  remove_data_directory_on_rewind_failure: false/' "$T/pg-2.yml"
kill -HUP "$(node_agent_pid 2)"
rewind_on() { rest_get 2 /config | grep -q '"use_pg_rewind": true'; }
wait_until 10 rewind_on || bail "pg-2 sees use_pg_rewind on"
wait_until 10 bash -c "[ \$(grep -c 'configuration reloaded' '$T/pg-2.log') = 2 ]" || bail "pg-2 reloads its configuration"
node_start 0
check "pg-0 rejoins as a replica of pg-1" wait_until 60 follows_leader_timeline_of 0
cut_replication 0 1 on
psql_n 1 "CREATE TABLE lost4 AS SELECT generate_series(1,40) AS id" >/dev/null
check "pg-2 received the rows written on pg-1 after pg-0 was cut off" wait_until 20 has_rows 2 lost4 40
node_kill9 1
check "pg-0 takes over" wait_until 30 new_leader_is 0
cut_replication 0 1 off
fix_failed_reported() {
  rest_get 2 /patroni | /usr/bin/python3 -c '
import json,sys; p=json.load(sys.stdin); d=p.get("diverged") or {}
assert p["state"]=="diverged" and d.get("leader")=="pg-0", p
assert d["action"].startswith("none: the fix failed"), d'
}
check "pg-2's pg_rewind fails and it reports the divergence (action: the fix failed)" \
  wait_until 40 fix_failed_reported || diag "$(rest_get 2 /patroni)"
rewinds() { grep -c 'error: pg_rewind failed$' "$T/pg-2.log"; }
check "pg-2 ran pg_rewind exactly once" [ "$(rewinds)" = 1 ]
# a retry loop would show within a few HA cycles (loop_wait 1 s): watch a 3 s window
no_second_rewind() { local i; for i in $(seq 30); do [ "$(rewinds)" -gt 1 ] && return 1; sleep 0.1; done; }
check "... and does not try again (3 s window: 3 HA cycles)" no_second_rewind
check "pg-2 answers /replica with 503" [ "$(rest_code 2 /replica)" = 503 ]
# started again it would only die at once (the leader's newer timeline is in its pg_wal)
check "pg-2's postgres stays stopped: no start after the failed pg_rewind" \
  bash -c "! sed -n '/error: pg_rewind failed\$/,\$p' '$T/pg-2.log' | grep -q 'started postgres'"
check "pg-2's data dir was left as it was (not moved aside again)" \
  [ "$(grep -c 'moving the data directory aside' "$T/pg-2.log")" = 2 ]
diag "case 4 took $(($(now_ms) - t3)) ms"
echo "1..$_tap_n"
