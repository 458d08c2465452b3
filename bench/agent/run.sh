#!/usr/bin/env bash
# appliance-agent vs real Patroni 3.0.2 (Debian), same machine, same run, same real etcd 3.4
# (3 members), same PostgreSQL 15. For each configuration, ROUNDS times:
#   bootstrap_ms   start of 3 daemons on empty data dirs -> first write acknowledged
#   full_ms        ... -> 1 primary + 2 streaming replicas
#   rss_kb         resident memory of one replica's HA daemon (process tree without postgres)
#   failover_ms    kill -9 of the whole primary node -> a writer inserting every 50 ms
#                  against every node sees its next acknowledged write (unavailability)
# Configurations (ttl/loop_wait/retry_timeout):
#   agent          4/1/1   our shipped defaults
#   patroni-4-1-1  4/1/1   Patroni with our timing (it accepts it; see the results whether
#                          it copes: a configuration that fails is reported, not fatal)
#   patroni        10/2/4  a conservative fast Patroni timing (the router tests use it)
#   agent-10-2-4   10/2/4  ours with that timing: the same-timing comparison
# Prints one line per measurement, then medians and ratios (ours / Patroni; < 1 = better).
# Uses the agent tests' harness (loopback 127.0.40.0/24, cleanup on exit).
set -uo pipefail
ROUNDS=${ROUNDS:-3}
. "$(dirname "$0")/../../tests/integration/agent/lib.sh"
require_env
command -v patroni >/dev/null || bail "patroni (Debian 3.0.2) is installed"
SCOPE=bench-agent
PG_UID=$(id -u postgres)
PG_GID=$(id -g postgres)
results=$T/results

patroni_conf() { # N TTL LOOP_WAIT RETRY
  local n=$1 ip; ip=$(node_ip "$n")
  mkdir -p "$T/pg-$n/sock"
  chown -R postgres: "$T/pg-$n"
  cat >"$T/pg-$n.yml" <<EOF
scope: $SCOPE
namespace: /service/
name: pg-$n
restapi: {listen: '$ip:8008', connect_address: '$ip:8008'}
etcd3: {hosts: '127.0.40.1:2379,127.0.40.2:2379,127.0.40.3:2379'}
bootstrap:
  dcs:
    ttl: $2
    loop_wait: $3
    retry_timeout: $4
    maximum_lag_on_failover: 1048576
    failsafe_mode: true
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters: {max_connections: 50, shared_buffers: 16MB}
  initdb: [{encoding: UTF8}, {locale: C.UTF-8}, data-checksums]
  pg_hba:
    - host replication replicator 127.0.0.0/8 scram-sha-256
    - host all all 127.0.0.0/8 scram-sha-256
postgresql:
  listen: '$ip:5432'
  connect_address: '$ip:5432'
  data_dir: $T/pg-$n/data
  bin_dir: $PGBIN
  pgpass: $T/pg-$n/pgpass
  authentication:
    superuser: {username: postgres, password: $SUPERPASS}
    replication: {username: replicator, password: it-rep-pass}
    rewind: {username: rewind_user, password: it-rewind-pass}
  parameters: {unix_socket_directories: '$T/pg-$n/sock'}
EOF
  chown postgres: "$T/pg-$n.yml"
}

start_nodes() { # SYSTEM
  local n
  for n in 0 1 2; do
    rm -rf "$T/pg-$n" "$T/pg-$n.yml" "$T/pg-$n.log"
    if [ "$1" = agent ]; then
      node_conf "$n"
      node_start "$n"
    else
      patroni_conf "$n" "$P_TTL" "$P_LW" "$P_RT"
      bg "pg-$n" setpriv --reuid="$PG_UID" --regid="$PG_GID" --init-groups \
        env HOME="$T" /usr/bin/patroni "$T/pg-$n.yml"
    fi
  done
}

stop_nodes() {
  local n
  for n in 0 1 2; do node_kill9 "$n" 2>/dev/null; done
  dcsctl del-prefix "/service/$SCOPE/"
}

first_write() { # any node accepts a write
  local n
  for n in 0 1 2; do
    psql_n "$n" "CREATE TABLE IF NOT EXISTS b(x int); INSERT INTO b VALUES (1)" >/dev/null && return 0
  done
  return 1
}

all_streaming() {
  local l n; l=$(dcs_leader); [ -n "$l" ] || return 1
  is_primary "$(node_of "$l")" || return 1
  for n in 0 1 2; do [ "pg-$n" = "$l" ] || streaming "$n" || return 1; done
}

# RSS (kB) of a process tree, postgres processes excluded
rss_tree() {
  local root=$1 total=0 pid
  local pids=("$root") i=0
  while [ $i -lt ${#pids[@]} ]; do
    for pid in $(cat /proc/"${pids[$i]}"/task/*/children 2>/dev/null); do pids+=("$pid"); done
    i=$((i + 1))
  done
  for pid in "${pids[@]}"; do
    [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = postgres ] && continue
    total=$((total + $(awk '/VmRSS/{print $2}' /proc/"$pid"/status 2>/dev/null || echo 0)))
  done
  echo "$total"
}

# A configuration that does not work is a result, not a crash of the bench: report it,
# keep its logs, clean up and go on with the next configuration.
fail_round() { # LABEL WHY
  echo "$1 FAILED $2" | tee -a "$results"
  mkdir -p "$T/failed-$1"
  cp "$T"/pg-*.log "$T/failed-$1/" 2>/dev/null
  echo "# logs kept in $T/failed-$1"
  _tap_failed=1 # keeps $T on exit
  stop_nodes
}

run_system() { # SYSTEM LABEL
  local sys=$1 label=$2 r
  for ((r = 1; r <= ROUNDS; r++)); do
    SCOPE=bench-$label-$r
    local t0 t1 t2
    t0=$(now_ms)
    start_nodes "$sys"
    if ! wait_until 120 first_write; then fail_round "$label" "no write within 120 s of the start"; return; fi
    t1=$(now_ms)
    if ! wait_until 120 all_streaming; then fail_round "$label" "no 1 primary + 2 streaming replicas within 120 s"; return; fi
    t2=$(now_ms)
    echo "$label bootstrap_ms $((t1 - t0))" | tee -a "$results"
    echo "$label full_ms $((t2 - t0))" | tee -a "$results"
    # idle for a few HA cycles, then memory of one replica's daemon
    LEADER=$(dcs_leader)
    local L; L=$(node_of "$LEADER")
    local R=$(((L + 1) % 3))
    wait_until 10 bash -c "[ \$(date +%s%3N) -ge $(($(now_ms) + 5000)) ]"
    echo "$label rss_kb $(rss_tree "$(node_agent_pid "$R")")" | tee -a "$results"
    probe_start
    local t_kill; t_kill=$(now_ms)
    node_kill9 "$L"
    new_leader() { local l; l=$(dcs_leader); [ -n "$l" ] && [ "$l" != "$LEADER" ] && is_primary "$(node_of "$l")"; }
    if ! wait_until 120 new_leader; then fail_round "$label" "no new primary within 120 s of kill -9"; probe_stop; return; fi
    local N; N=$(node_of "$(dcs_leader)")
    if ! wait_until 30 probe_acked_by "$(node_ip "$N")"; then fail_round "$label" "no write on the new primary"; probe_stop; return; fi
    probe_stop "$t_kill"
    [ "$PROBE_OVERLAP" = 0 ] || echo "# $label: WARNING two nodes accepted writes at the same time"
    echo "$label failover_ms $PROBE_GAP" | tee -a "$results"
    stop_nodes
  done
}

etcd_start
AG_TTL=4 AG_LW=1 AG_RT=1 run_system agent agent
P_TTL=4 P_LW=1 P_RT=1 run_system patroni patroni-4-1-1
P_TTL=10 P_LW=2 P_RT=4 run_system patroni patroni
AG_TTL=10 AG_LW=2 AG_RT=4 run_system agent agent-10-2-4

/usr/bin/python3 - "$results" <<'EOF'
import statistics, sys, collections
v = collections.defaultdict(list)
failed = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, key, val = line.split(None, 2)
    if key == "FAILED":
        failed[label].append(val.strip())
    else:
        v[(label, key)].append(int(val))
def med(label, key):
    x = v.get((label, key))
    return statistics.median(x) if x else None
def fmt(x):
    return "%d" % x if x is not None else "-"
def ratio(a, b):
    return "%.2f" % (a / b) if a is not None and b else "-"
print("\nmedians (same machine, same etcd 3.4, same PostgreSQL 15; ttl/loop_wait/retry_timeout):")
labels = ["agent", "patroni-4-1-1", "patroni", "agent-10-2-4"]
print("  %-13s" % "" + "".join("%16s" % l for l in labels) + "   agent/patroni-4-1-1  agent-10-2-4/patroni")
for key in ("bootstrap_ms", "full_ms", "failover_ms", "rss_kb"):
    m = [med(l, key) for l in labels]
    print("  %-13s" % key + "".join("%16s" % fmt(x) for x in m) +
          "   %19s  %20s" % (ratio(m[0], m[1]), ratio(m[3], m[2])))
for l, why in failed.items():
    print("  %s FAILED in %d round(s): %s" % (l, len(why), "; ".join(sorted(set(why)))))
EOF
ok "bench finished"
