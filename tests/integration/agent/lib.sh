# Shared harness for the appliance-agent integration tests (sourced by *.t in this dir).
#
# Each test gets: a real 3-member etcd 3.4 cluster (Debian /usr/bin/etcd) on
# 127.0.40.1..3:2379/2380, up to three agent nodes pg-0..pg-2 on 127.0.40.10..12
# (postgres :5432, REST :8008) -- or the same inside network namespaces (NET=ns below) -- a private temp dir, TAP helpers, wait-for-condition
# helpers with deadlines, and an EXIT trap that kills everything it started (also when
# the test fails half-way). Tests run one at a time (tests/run.sh), so the fixed
# addresses do not collide between these tests; the 127.0.40.0/24 range is ours.
#
# Environment knobs: AGENT_IT_KEEP=1 keeps the temp dir (logs, data) for debugging.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.." || exit 1
REPO=$PWD
AGENT_BIN=$REPO/build/bin/appliance-agent
PGBIN=/usr/lib/postgresql/15/bin
SUPERPASS=it-super-pass
export PGCONNECT_TIMEOUT=2

# One run of these tests at a time on this machine: they use fixed addresses, and a second
# checkout (e.g. a CI clone next to the working tree) running them concurrently would
# collide ("Address in use") instead of testing anything.
exec 9>/tmp/appliance-agent-it.lock
if ! flock -w "${AGENT_IT_LOCK_WAIT:-200}" 9; then
  echo "not ok 1 - another run of the agent integration tests held /tmp/appliance-agent-it.lock too long"
  exit 1
fi
T=$(mktemp -d /tmp/agent-it.XXXXXX)
chmod 755 "$T"
NS=ag$$ # prefix of this run's network namespaces and veth names (unique per run)
# The DCS: real etcd 3.4 by default; AGENT_IT_DCS=appliance runs the same tests against our
# own build/bin/appliance-dcs (same flags), a cross-check of both implementations.
if [ "${AGENT_IT_DCS:-etcd}" = appliance ]; then DCS_BIN=$REPO/build/bin/appliance-dcs; else DCS_BIN=/usr/bin/etcd; fi
SCOPE=it-$(basename "$0" .t)
# NET=lo (default): everything on our loopback addresses. NET=ns (set before sourcing):
# every node in its own network namespace $NS-nN, etcd and the test's own clients in
# $NS-hub, joined by a bridge (10.240.40.0/24 exists only inside these namespaces), so a
# node can be cut off with iptables inside its namespace (loopback rules cannot isolate by
# source: every local client socket gets 127.0.0.1).
NET=${NET:-lo}
if [ "$NET" = ns ]; then NET_PREFIX=10.240.40; NSX=(ip netns exec "$NS-hub"); else NET_PREFIX=127.0.40; NSX=(); fi
etcd_ip() { echo "$NET_PREFIX.$1"; }
ETCD_EPS=http://$(etcd_ip 1):2379,http://$(etcd_ip 2):2379,http://$(etcd_ip 3):2379

# ---------------- TAP ----------------
_tap_n=0
_tap_failed=0
ok() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $*"; }
not_ok() { _tap_n=$((_tap_n + 1)); _tap_failed=$((_tap_failed + 1)); echo "not ok $_tap_n - $*"; }
# check DESCRIPTION COMMAND...: one TAP line from a command's exit status.
# It returns the command's verdict, so `check ... || diag "details"` explains a failure.
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; return 1; fi; }
diag() { echo "# $*"; }
# A failed precondition: report it, dump the logs, stop the test (the trap cleans up).
bail() { not_ok "$*"; dump_logs; exit 1; }
dump_logs() {
  local f
  for f in "$T"/*.log; do
    [ -f "$f" ] || continue
    echo "# ---- last lines of $(basename "$f")"
    tail -25 "$f" | sed 's/^/#   /'
  done
}

# wait_until SECONDS COMMAND...: polls the condition every 100 ms until it holds (0) or
# the deadline passes (1). This is the only way tests wait: on events, never bare sleeps.
wait_until() {
  local limit=$1; shift
  local end=$(($(date +%s%N) / 1000000 + limit * 1000))
  until "$@" >/dev/null 2>&1; do
    [ $(($(date +%s%N) / 1000000)) -ge $end ] && return 1
    sleep 0.1
  done
  return 0
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# ---------------- cleanup ----------------
_pids=() # process-group leaders started with setsid
cleanup() {
  local p
  for p in "${_pids[@]}"; do kill -KILL -- "-$p" 2>/dev/null; done
  # postgres runs in its own process group under each agent: kill by postmaster.pid
  for p in "$T"/pg-*/data/postmaster.pid; do
    [ -f "$p" ] || continue
    local pm; pm=$(head -1 "$p")
    kill -KILL -- "-$(ps -o pgid= -p "$pm" 2>/dev/null | tr -d ' ')" 2>/dev/null
    kill -KILL "$pm" 2>/dev/null
  done
  for p in "${_pids[@]}"; do
    local i=0
    while kill -0 -- "-$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  done
  if [ "${AGENT_IT_KEEP:-0}" = 1 ] || [ "$_tap_failed" -gt 0 ]; then
    echo "# kept $T for inspection"
  else
    rm -rf "$T"
  fi
  # leave no namespaces behind (partition test)
  for ns in $(ip netns list 2>/dev/null | awk -v p="$NS-" 'index($1, p) == 1 {print $1}'); do ip netns del "$ns"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# bg NAME CMD...: runs a command in its own session (process group) with its output in
# $T/NAME.log; the group id lands in $T/NAME.pid.
bg() {
  local name=$1; shift
  setsid "$@" >>"$T/$name.log" 2>&1 </dev/null 9>&- &
  local pid=$!
  disown "$pid" 2>/dev/null
  echo "$pid" >"$T/$name.pid"
  _pids+=("$pid")
}

require_env() {
  [ "$(id -u)" = 0 ] || { echo "1..0 # SKIP needs root (postgres runs as the postgres user)"; exit 0; }
  [ -x "$AGENT_BIN" ] || bail "build/bin/appliance-agent is built"
  [ -x "$DCS_BIN" ] || bail "$DCS_BIN is installed/built"
  id postgres >/dev/null 2>&1 || bail "a postgres user exists"
}

# ---------------- etcd ----------------
etcd_start() {
  local n
  [ "$NET" = ns ] && ns_setup
  for n in 1 2 3; do etcd_member_start "$n"; done
  # every member must answer a linearizable read (a quorum with a leader)
  local m
  for m in 1 2 3; do
    wait_until 30 dcsctl_at "http://$(etcd_ip "$m"):2379" health || bail "3-member DCS cluster is healthy (member $m)"
  done
}
# etcd_member_start N: starts member eN (again: its data dir makes it rejoin)
etcd_member_start() {
  local n=$1 ip cluster="" m
  ip=$(etcd_ip "$n")
  for m in 1 2 3; do cluster+="${cluster:+,}e$m=http://$(etcd_ip $m):2380"; done
  mkdir -p "$T/etcd-$n"
  local ns=(); [ "$NET" = ns ] && ns=(ip netns exec $NS-dcs)
  bg "etcd-$n" "${ns[@]}" "$DCS_BIN" --name "e$n" --data-dir "$T/etcd-$n" \
    --listen-client-urls "http://$ip:2379" --advertise-client-urls "http://$ip:2379" \
    --listen-peer-urls "http://$ip:2380" --initial-advertise-peer-urls "http://$ip:2380" \
    --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token "$SCOPE"
}
# DCS access through the v3 JSON gateway (dcs_json.py), so the same helpers work against
# etcd and appliance-dcs: dcsctl get KEY | put KEY VALUE | del-prefix PREFIX | health
dcsctl_at() { "${NSX[@]}" /usr/bin/python3 "$REPO/tests/integration/agent/dcs_json.py" "$@"; }
dcsctl() { dcsctl_at "$ETCD_EPS" "$@"; }
dcs_get() { dcsctl get "/service/$SCOPE/$1"; }
dcs_leader() { dcs_get leader; }

# ---------------- nodes ----------------
node_ip() { echo "$NET_PREFIX.$((10 + $1))"; }

# ns_setup: the namespaces of NET=ns (hub with bridge + etcd addresses, one per node)
ns_setup() {
  local n
  ip netns add $NS-hub || bail "create network namespace $NS-hub"
  ip -n $NS-hub link set lo up
  ip -n $NS-hub link add br0 type bridge
  ip -n $NS-hub link set br0 up
  # the test's own clients (probe, psql, curl) live in the hub with an address of their own
  ip -n $NS-hub addr add "$NET_PREFIX.254/24" dev br0
  # etcd in a namespace of its own, so "drop packets from etcd" does not hit the clients
  ip netns add $NS-dcs
  ip -n $NS-dcs link set lo up
  ip link add ${NS}vd type veth peer name eth0 netns $NS-dcs
  ip link set ${NS}vd netns $NS-hub
  ip -n $NS-hub link set ${NS}vd master br0 up
  for n in 1 2 3; do ip -n $NS-dcs addr add "$(etcd_ip "$n")/24" dev eth0; done
  ip -n $NS-dcs link set eth0 up
  for n in 0 1 2; do
    ip netns add "$NS-n$n"
    ip -n "$NS-n$n" link set lo up
    ip link add "${NS}v$n" type veth peer name eth0 netns "$NS-n$n"
    ip link set "${NS}v$n" netns $NS-hub
    ip -n $NS-hub link set "${NS}v$n" master br0 up
    ip -n "$NS-n$n" addr add "$(node_ip "$n")/24" dev eth0
    ip -n "$NS-n$n" link set eth0 up
  done
}
# partition_dcs N on|off: packets between node N and every etcd member vanish, both ways
# (rules inside the etcd namespace; one-way drops would let requests through and only
# lose the answers, which is a different failure)
partition_dcs() {
  local act=-I; [ "$2" = off ] && act=-D
  ip netns exec $NS-dcs iptables $act INPUT -s "$(node_ip "$1")" -j DROP
  ip netns exec $NS-dcs iptables $act OUTPUT -d "$(node_ip "$1")" -j DROP
}

# node_conf N [extra YAML appended at top level]: writes $T/pg-N.yml. AG_REST_AUTH=user:pass
# configures restapi.authentication (Basic auth on every mutating endpoint).
node_conf() {
  local n=$1 ip; ip=$(node_ip "$1")
  mkdir -p "$T/pg-$n"
  chown postgres: "$T/pg-$n"
  # postgresql.callbacks record "ACTION ROLE SCOPE" lines in pg-N/callbacks.log
  printf '#!/bin/sh\nf=$1; shift; echo "$*" >>"$f"\n' >"$T/callback.sh"
  chmod 755 "$T/callback.sh"
  cat >"$T/pg-$n.yml" <<EOF
scope: $SCOPE
namespace: /service/
name: pg-$n
restapi:
  listen: $ip:8008
  connect_address: $ip:8008
${AG_REST_AUTH:+  authentication:
    username: ${AG_REST_AUTH%%:*}
    password: ${AG_REST_AUTH#*:}}
etcd3:
  hosts: $(etcd_ip 1):2379,$(etcd_ip 2):2379,$(etcd_ip 3):2379
bootstrap:
  dcs:
    ttl: ${AG_TTL:-4}
    loop_wait: ${AG_LW:-1}
    retry_timeout: ${AG_RT:-1}
    maximum_lag_on_failover: 1048576
    failsafe_mode: true
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        max_connections: 50
        shared_buffers: 16MB
  initdb:
    - encoding: UTF8
    - locale: C.UTF-8
    - data-checksums
postgresql:
  listen: $ip:5432
  connect_address: $ip:5432
  data_dir: $T/pg-$n/data
  bin_dir: $PGBIN
  callbacks:
    on_start: $T/callback.sh $T/pg-$n/callbacks.log
    on_stop: $T/callback.sh $T/pg-$n/callbacks.log
    on_role_change: $T/callback.sh $T/pg-$n/callbacks.log
    on_restart: $T/callback.sh $T/pg-$n/callbacks.log
    on_reload: $T/callback.sh $T/pg-$n/callbacks.log
  pg_hba:
    - host replication replicator 127.0.0.0/8 scram-sha-256
    - host all all 127.0.0.0/8 scram-sha-256
    - host replication replicator $NET_PREFIX.0/24 scram-sha-256
    - host all all $NET_PREFIX.0/24 scram-sha-256
  authentication:
    superuser:
      username: postgres
      password: $SUPERPASS
    replication:
      username: replicator
      password: it-rep-pass
    rewind:
      username: rewind_user
      password: it-rewind-pass
tags:
  nofailover: false
  zone: z$n
EOF
  if [ $# -gt 1 ]; then printf '%s\n' "$2" >>"$T/pg-$n.yml"; fi
}

# node_start N: starts the agent of pg-N (writes a default config if none yet).
# AG_CONF_IN_ENV=N: node N gets its configuration from PATRONI_CONFIGURATION, no file.
node_start() {
  local n=$1
  [ -f "$T/pg-$n.yml" ] || node_conf "$n"
  local ns=(); [ "$NET" = ns ] && ns=(ip netns exec "$NS-n$n")
  if [ "${AG_CONF_IN_ENV:-}" = "$n" ]; then
    # no file: the whole configuration in PATRONI_CONFIGURATION (as `patroni` with no argument)
    bg "pg-$n" "${ns[@]}" env LOG_LEVEL=${AGENT_LOG_LEVEL:-info} PATRONI_CONFIGURATION="$(cat "$T/pg-$n.yml")" "$AGENT_BIN"
  else
    bg "pg-$n" "${ns[@]}" env LOG_LEVEL=${AGENT_LOG_LEVEL:-info} "$AGENT_BIN" "$T/pg-$n.yml"
  fi
}
node_agent_pid() { cat "$T/pg-$1.pid"; }
node_pm_pid() { [ -f "$T/pg-$1/data/postmaster.pid" ] && head -1 "$T/pg-$1/data/postmaster.pid"; }
# node_kill9 N: the whole node dies at once (agent, postmaster and its children).
node_kill9() {
  local n=$1 pm pgid=""
  pm=$(node_pm_pid "$n")
  # the postmaster may sit in a process group of its own (ours) or another one (Patroni's
  # spawner): kill it by pid and by its group
  [ -n "$pm" ] && pgid=$(ps -o pgid= -p "$pm" 2>/dev/null | tr -d ' ')
  kill -KILL -- "-$(node_agent_pid "$n")" 2>/dev/null
  [ -n "$pm" ] && kill -KILL "$pm" 2>/dev/null
  [ -n "$pgid" ] && kill -KILL -- "-$pgid" 2>/dev/null
  wait_until 10 bash -c "! kill -0 $(node_agent_pid "$n") 2>/dev/null" || true
  [ -n "$pm" ] && { wait_until 10 bash -c "! kill -0 $pm 2>/dev/null" || true; }
}
node_term() { kill -TERM "$(node_agent_pid "$1")" 2>/dev/null; }
node_gone() { ! kill -0 "$(node_agent_pid "$1")" 2>/dev/null; }

# psql_n N SQL: one query as the superuser over TCP; prints unaligned tuples.
psql_n() {
  PGPASSWORD=$SUPERPASS "${NSX[@]}" "$PGBIN/psql" -X -q -At -h "$(node_ip "$1")" -p 5432 -U postgres -d postgres \
    -v ON_ERROR_STOP=1 -c "$2" 2>/dev/null
}
# rest_code N PATH [METHOD]: HTTP status of the node's REST API.
rest_code() {
  "${NSX[@]}" curl -s -o /dev/null -m 3 -w '%{http_code}' -X "${3:-GET}" "http://$(node_ip "$1"):8008$2"
}
rest_get() { "${NSX[@]}" curl -s -m 3 "http://$(node_ip "$1"):8008$2"; }

is_primary() { [ "$(psql_n "$1" 'SELECT pg_is_in_recovery()')" = f ]; }
is_replica() { [ "$(psql_n "$1" 'SELECT pg_is_in_recovery()')" = t ]; }
# streaming N: pg-N is a replica whose WAL receiver streams
streaming() { [ "$(psql_n "$1" "SELECT status FROM pg_stat_wal_receiver")" = streaming ]; }
# leader_is NAME: the DCS leader key names NAME
leader_is() { [ "$(dcs_leader)" = "$1" ]; }
has_leader() { [ -n "$(dcs_leader)" ]; }
node_of() { echo "${1#pg-}"; } # "pg-1" -> 1

# cluster_up COUNT: starts etcd and COUNT nodes, waits for 1 primary + COUNT-1 streaming
# replicas. Prints the leader's member name into $LEADER.
cluster_up() {
  local count=${1:-3} n
  etcd_start
  for ((n = 0; n < count; n++)); do node_conf "$n"; node_start "$n"; done
  wait_until 60 has_leader || bail "a leader was elected"
  LEADER=$(dcs_leader)
  wait_until 60 is_primary "$(node_of "$LEADER")" || bail "leader $LEADER runs postgres as primary"
  for ((n = 0; n < count; n++)); do
    [ "pg-$n" = "$LEADER" ] && continue
    wait_until 90 streaming "$n" || bail "pg-$n streams from $LEADER"
  done
}

# ---------------- write probe (probe.py) ----------------
probe_start() { # starts writers against every node; waits for the first acknowledged write
  psql_n "$(node_of "$LEADER")" "CREATE TABLE IF NOT EXISTS probe(id bigserial primary key, host text, t bigint)" >/dev/null
  rm -f "$T/probe.stop" "$T/probe.out"
  bg probe "${NSX[@]}" /usr/bin/python3 "$REPO/tests/integration/agent/probe.py" run "$T/probe.out" "$T/probe.stop" \
    "$SUPERPASS" "$(node_ip 0)" "$(node_ip 1)" "$(node_ip 2)"
  wait_until 20 grep -q ' ok$' "$T/probe.out" || bail "write probe gets its first write acknowledged"
}
probe_stop() { # probe_stop [T0_MS]: stops the probe, sets PROBE_* from its report
  touch "$T/probe.stop"
  wait_until 10 bash -c "! kill -0 $(cat "$T/probe.pid") 2>/dev/null" || true
  local k v
  while IFS='=' read -r k v; do
    case $k in
      acked) PROBE_ACKED=$v ;; max_gap_ms) PROBE_GAP=$v ;; overlap) PROBE_OVERLAP=$v ;; hosts) PROBE_HOSTS=$v ;;
    esac
  done < <(/usr/bin/python3 "$REPO/tests/integration/agent/probe.py" report "$T/probe.out" "${1:-0}")
  diag "probe: acked=$PROBE_ACKED max_gap_ms=$PROBE_GAP overlap=$PROBE_OVERLAP hosts=$PROBE_HOSTS"
}
# probe_acked_by HOST: the probe has an acknowledged write on HOST
probe_acked_by() { grep -q " $1 ok\$" "$T/probe.out"; }
etcd_kill_all() { local n; for n in 1 2 3; do kill -KILL -- "-$(cat "$T/etcd-$n.pid")" 2>/dev/null; done; }
# probe_acks_since HOST MS: number of writes HOST acknowledged that started after MS
probe_acks_since() { awk -v h="$1" -v t="$2" '$3==h && $4=="ok" && $1>=t' "$T/probe.out" | wc -l; }
