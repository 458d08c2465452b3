#!/usr/bin/env bash
# make up / make down: the seed topology as local processes on loopback addresses
# (DESIGN.md): etcd-N 127.0.10.N:2379/2380, pg-N 127.0.20.(10+N):5432/8008, router
# 127.0.0.1:5000/5001/8404. State lives under build/local/; `down` keeps it and a second
# `up` resumes the same cluster. DCS: appliance-dcs when built, else Debian etcd (below).
# Each process runs under build/bin/appliance-init when that binary exists, else directly.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD/build/local
bin=$PWD/build/bin
mkdir -p "$root"
# DCS=appliance (build/bin/appliance-dcs; the default when it is built) or DCS=etcd (Debian's
# etcd 3.4; the default otherwise). Both take the same flags; the agents run unchanged on
# either (tests/integration/agent pass with AGENT_IT_DCS=appliance too). The kind is
# recorded at the first `up` (the data formats differ); a later `up` resumes with it.
if [ -f "$root/dcs-kind" ]; then
  recorded=$(cat "$root/dcs-kind")
  if [ -n "${DCS:-}" ] && [ "$DCS" != "$recorded" ]; then
    echo "DCS=$DCS, but $root was created with DCS=$recorded; 'make down' and remove $root to switch" >&2
    exit 2
  fi
  DCS=$recorded
elif [ -z "${DCS:-}" ]; then
  if [ -d "$root/etcd-1/member" ]; then DCS=etcd # state from before dcs-kind was recorded
  elif [ -x "$bin/appliance-dcs" ]; then DCS=appliance
  else DCS=etcd; fi
fi
case $DCS in
  appliance) dcs_bin=$bin/appliance-dcs ;;
  etcd) dcs_bin=/usr/bin/etcd ;;
  *) echo "DCS=$DCS: expected appliance or etcd" >&2; exit 2 ;;
esac

run_bg() { # name logfile cmd...
  local name=$1 log=$2; shift 2
  if [ -x "$bin/appliance-init" ]; then set -- "$bin/appliance-init" -- "$@"; fi
  setsid "$@" >>"$log" 2>&1 < /dev/null &
  echo $! >"$root/$name.pid"
}

alive() { [ -f "$root/$1.pid" ] && kill -0 "$(cat "$root/$1.pid")" 2>/dev/null; }

wait_for() { # seconds description command...
  local t=$1 what=$2; shift 2
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $end ]; then echo "timed out waiting for $what" >&2; return 1; fi
    sleep 0.2
  done
}

up() {
  [ -x "$dcs_bin" ] || { echo "DCS=$DCS: $dcs_bin is not built/installed" >&2; return 1; }
  echo "$DCS" >"$root/dcs-kind"
  local cluster="etcd-1=http://127.0.10.1:2380,etcd-2=http://127.0.10.2:2380,etcd-3=http://127.0.10.3:2380"
  for n in 1 2 3; do
    alive "etcd-$n" && continue
    local state=new; [ -d "$root/etcd-$n/member" ] && state=existing
    mkdir -p "$root/etcd-$n"
    run_bg "etcd-$n" "$root/etcd-$n.log" "$dcs_bin" --name "etcd-$n" \
      --data-dir "$root/etcd-$n" \
      --listen-client-urls "http://127.0.10.$n:2379" --advertise-client-urls "http://127.0.10.$n:2379" \
      --listen-peer-urls "http://127.0.10.$n:2380" --initial-advertise-peer-urls "http://127.0.10.$n:2380" \
      --initial-cluster "$cluster" --initial-cluster-state "$state" --initial-cluster-token pg-appliance-local
  done
  # a linearizable read through the v3 JSON gateway answers once there is a quorum (works
  # for both DCS kinds; appliance-dcs has no gRPC, so no etcdctl)
  wait_for 30 "DCS quorum" tests/integration/agent/dcs_json.py http://127.0.10.1:2379,http://127.0.10.2:2379,http://127.0.10.3:2379 health
  if [ ! -x "$bin/appliance-agent" ]; then
    echo "appliance-agent is not built yet (waits for lib/http_client.c); etcd is up" >&2
    return 1
  fi
  id postgres >/dev/null 2>&1 || { echo "a 'postgres' user is needed to run postgres" >&2; return 1; }
  for n in 0 1 2; do
    alive "pg-$n" && continue
    mkdir -p "$root/pg-$n"
    chown postgres: "$root/pg-$n" 2>/dev/null || true
    sed -e "s|data_dir: .*|data_dir: $root/pg-$n/data|" configs/postgres$n.yml >"$root/pg-$n/agent.yml"
    run_bg "pg-$n" "$root/pg-$n.log" "$bin/appliance-agent" "$root/pg-$n/agent.yml"
  done
  if [ -x "$bin/appliance-router" ] && [ -f configs/router.yml ]; then
    alive router || run_bg router "$root/router.log" "$bin/appliance-router" -c configs/router.yml
  else
    echo "router: appliance-router is not built yet" >&2
  fi
  wait_for 60 "a leader" curl -fsS http://127.0.20.10:8008/leader -o /dev/null -w '' \
    || wait_for 30 "a leader" bash -c 'for n in 0 1 2; do curl -fs -o /dev/null http://127.0.20.1$n:8008/leader && exit 0; done; exit 1'
  echo "endpoints: DCS ($DCS) http://127.0.10.{1,2,3}:2379  postgres 127.0.20.{10,11,12}:5432  REST :8008  router 127.0.0.1:5000/5001/8404"
  patronictl -c "$root/pg-0/agent.yml" list 2>/dev/null || true
}

down() {
  # Replicas first, the leader last: stopping the leader first would hand over to a replica
  # that is stopped a moment later (a needless promotion and timeline switch per `down`).
  local leader order="" n
  leader=$(timeout 5 tests/integration/agent/dcs_json.py http://127.0.10.1:2379,http://127.0.10.2:2379,http://127.0.10.3:2379 \
    get /service/pg-cluster/leader 2>/dev/null || true)
  for n in pg-0 pg-1 pg-2; do [ "$n" = "$leader" ] || order+=" $n"; done
  [ -n "$leader" ] && order+=" $leader"
  for name in router $order etcd-1 etcd-2 etcd-3; do
    if alive "$name"; then
      local pid; pid=$(cat "$root/$name.pid")
      kill -TERM "$pid" 2>/dev/null || true
      wait_for 30 "$name to stop" bash -c "! kill -0 $pid" || kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$root/$name.pid"
  done
  echo "stopped; data kept under $root"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
