#!/usr/bin/env bash
# Role hardening under appliance-init as PID 1: a denied syscall fails with EPERM and is
# logged (and kills with SECCOMP_ACTION=kill); privilege drop to the role's user with
# NO_NEW_PRIVS and the data dir prepared; real PostgreSQL (initdb, start, pgbench -i and
# -T 10, pg_basebackup, replica, promote, pg_rewind, stop) runs clean under the pg allowlist.
# Addresses: 127.0.70.1 ports 5432/5433 and unix sockets in a temp dir.
# test-timeout: 240
source "$(dirname "$0")/lib.sh"
need "$INIT" "$PROBE"
[ "$(id -u)" = 0 ] || { echo "not ok 1 - needs root (privilege drop, postgres user)"; exit 1; }
pg_uid=$(id -u postgres) pg_gid=$(id -g postgres) pg_groups=$(id -G postgres | wc -w)

# --- seccomp: errno mode ---
run_ns deny ROLE=pg DATA_DIR="$T/d1" -- "$PROBE" denied
if grep_out deny 'init_probe\[[0-9]+\]: chroot: EPERM$' \
   && grep_out deny 'appliance-init\[1\]: warn: seccomp: denied chroot in init_probe\[[0-9]+\]$' && [ "$RC" -eq 3 ]; then
  ok "a syscall outside the pg allowlist fails with EPERM and the denial is logged"
else nok "denied syscall: EPERM + log (rc $RC)"; show "$T/deny.out"; fi

run_ns kill ROLE=pg DATA_DIR="$T/d1" SECCOMP_ACTION=kill -- "$PROBE" denied
if [ "$RC" -eq 159 ] && grep_out kill 'killed by SIGSYS' && ! grep_out kill 'chroot: '; then
  ok "SECCOMP_ACTION=kill: the violator dies with SIGSYS (exit 159)"
else nok "SECCOMP_ACTION=kill (rc $RC)"; show "$T/kill.out"; fi

# --- privilege drop ---
run_ns id ROLE=pg DATA_DIR="$T/d2" -- "$PROBE" id
if grep_out id "init_probe\[[0-9]+\]: uid=$pg_uid gid=$pg_gid groups=$pg_groups nnp=1\$" && [ "$RC" -eq 0 ]; then
  ok "privilege drop: runs as postgres ($pg_uid:$pg_gid, its $pg_groups groups only) with NO_NEW_PRIVS"
else nok "privilege drop to postgres (rc $RC)"; show "$T/id.out"; fi
st=$(stat -c '%U %a' "$T/d2" 2>/dev/null)
check "data dir created owned by the role's user, mode 0700 (got '$st')" [ "$st" = "postgres 700" ]
run_ns nobody ROLE=router APPLIANCE_USER=nobody -- "$PROBE" id
check "APPLIANCE_USER=nobody: router role runs as uid $(id -u nobody)" grep_out nobody "uid=$(id -u nobody) "
run_ns root ROLE=router APPLIANCE_USER=nobody -- /bin/sh -c 'cat /etc/shadow'
check "dropped child cannot read root-only files (rc $RC)" grep_out root 'Permission denied'

# --- capabilities: the router role keeps CAP_NET_ADMIN (12) and CAP_BPF (39) as ambient
# capabilities (kernel NAT rules, sockmap); every other role keeps none ---
run_ns capr ROLE=router -- /bin/grep -E '^Cap(Eff|Prm|Amb):' /proc/self/status
run_ns cappg ROLE=pg DATA_DIR="$T/d3" -- /bin/grep -E '^Cap(Eff|Prm|Amb):' /proc/self/status
if grep_out capr 'CapAmb:[[:space:]]+0000008000001000$' && grep_out capr 'CapEff:[[:space:]]+0000008000001000$' \
   && grep_out cappg 'CapAmb:[[:space:]]+0000000000000000$' && grep_out cappg 'CapEff:[[:space:]]+0000000000000000$'; then
  ok "router role keeps exactly CAP_NET_ADMIN + CAP_BPF (ambient, across exec); pg role keeps none"
else nok "ambient capabilities"; show "$T/capr.out"; show "$T/cappg.out"; fi
run_ns capfs ROLE=router -- /bin/cat /etc/shadow
check "router role with its capabilities still cannot read root-only files (rc $RC)" grep_out capfs 'Permission denied'

# --- real PostgreSQL under the pg allowlist ---
if [ ! -x /usr/lib/postgresql/15/bin/postgres ]; then
  nok "PostgreSQL 15 not installed (mk/packages.sh test installs it)"
else
  mkdir -p "$T/pg"
  t0=$(now_ms)
  run_ns pg ROLE=pg DATA_DIR="$T/pg" STOP_TIMEOUT=30 -- /bin/sh "$HERE/pg_workload.sh" "$T/pg"
  dt=$(( $(now_ms) - t0 ))
  denials=$(grep -c 'seccomp: denied' "$T/pg.out")
  if [ "$RC" -eq 0 ] && grep_out pg 'workload: done' && [ "$denials" -eq 0 ]; then
    ok "PostgreSQL runs clean under the pg allowlist: initdb, start, pgbench -i/-T 10, pg_basebackup, replica, promote, pg_rewind, stop (${dt} ms, $(grep -oE 'tps = [0-9.]+' "$T/pg.out" | head -1))"
  else
    nok "PostgreSQL under the pg allowlist (rc $RC, $denials denials)"
    grep -E 'seccomp|workload|error|FATAL' "$T/pg.out" | head -20 | sed 's/^/#   /'
    for l in "$T"/pg/*.log; do echo "# $l"; tail -5 "$l" | sed 's/^/#   /'; done
  fi
fi

# --- our own agent (static musl) under the pg role: bootstrap a primary against a real
# etcd 3.4, serve Patroni's /primary, stop on SIGTERM; no syscall denied ---
AGENT=$ROOT/build/bin/appliance-agent
if [ ! -x "$AGENT" ] || [ ! -x /usr/bin/etcd ]; then
  nok "appliance-agent ($AGENT) and etcd needed (make test-bins; mk/packages.sh test)"
else
  mkdir -p "$T/etcd" "$T/abin"; cp "$INIT" "$AGENT" "$T/abin/"
  /usr/bin/etcd --name e1 --data-dir "$T/etcd" --listen-client-urls http://127.0.70.5:2379 \
    --advertise-client-urls http://127.0.70.5:2379 --listen-peer-urls http://127.0.70.5:2380 \
    --initial-advertise-peer-urls http://127.0.70.5:2380 --initial-cluster e1=http://127.0.70.5:2380 \
    >"$T/etcd.log" 2>&1 &
  EP=$!; cleanup_pids+=("$EP")
  sed -e 's/127\.0\.20\.10/127.0.70.6/g' -e 's/^  hosts: .*/  hosts: 127.0.70.5:2379/' \
      -e "s|^  data_dir: .*|  data_dir: $T/agentdata/pg-0|" "$ROOT/configs/postgres0.yml" >"$T/agent.yml"
  chmod 0644 "$T/agent.yml"
  etcd_up() { curl -sf http://127.0.70.5:2379/version >/dev/null; }
  wait_for 20 etcd_up
  INIT=$T/abin/appliance-init start_ns agent ROLE=pg DATA_DIR="$T/agentdata" ROLE_ARGS="$T/agent.yml" \
    APPLIANCE_NAME=pg-0 --
  primary() { [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.70.6:8008/primary)" = 200 ]; }
  if wait_for 60 primary; then up=1; else up=0; fi
  kill -TERM "$IPID"; finish_ns 70
  kill -TERM "$EP" 2>/dev/null; wait "$EP" 2>/dev/null
  denials=$(grep -c 'seccomp: denied' "$T/agent.out")
  if [ "$up" = 1 ] && [ "$RC" -eq 0 ] && [ "$denials" -eq 0 ]; then
    ok "appliance-agent under ROLE=pg: bootstraps a primary (GET /primary 200), stops on SIGTERM, exit 0, no syscall denied"
  else
    nok "appliance-agent under ROLE=pg (primary $up, rc $RC, $denials denials)"
    grep -E 'seccomp|error|FATAL' "$T/agent.out" | head -10 | cut -c1-200 | sed 's/^/#   /'; show "$T/agent.out" 8
  fi
fi
echo "1..$n"
