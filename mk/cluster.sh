#!/usr/bin/env bash
# make up / make down: the seed topology as local processes on loopback addresses
# (DESIGN.md): etcd-N 127.0.10.N:2379/2380, pg-N 127.0.20.(10+N):5432/8008, router
# 127.0.0.1:5000/5001/8404. State lives under build/local/; `down` keeps it and a second
# `up` resumes the same cluster. DCS: appliance-dcs when built, else Debian etcd (below).
#
# Every process runs under build/bin/appliance-init WITH its role, as in the image:
# ROLE=etcd (appliance-dcs), ROLE=pg (appliance-agent, which runs postgres), ROLE=router,
# and ROLE=init (appliancectl provision: configs/init_users_dbs.sql once per cluster, through
# the router's write port). So seccomp applies locally too (a denied syscall is logged as
# "seccomp: denied ..." in the role's log), and as root every role drops to the postgres
# user (APPLIANCE_USER overrides), which then has to own the state: `up` chowns build/local's
# role directories to it (data written by an older `up` that ran everything as root
# included). Not root: appliance-init logs that no privilege drop is possible and runs the
# roles as the invoking user. DCS=etcd (Debian's etcd, a comparison peer, not our code)
# runs under appliance-init without a role: our etcd allowlist is derived for appliance-dcs.
#
# The addresses can be moved (tests run a private copy on their own range):
#   LOCAL_ROOT (build/local), LOCAL_DCS_NET (127.0.10: members .1-.3),
#   LOCAL_PG_NET (127.0.20: nodes .10-.12), LOCAL_ROUTER_HOST (127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
root=${LOCAL_ROOT:-$PWD/build/local}
dcs_net=${LOCAL_DCS_NET:-127.0.10}
pg_net=${LOCAL_PG_NET:-127.0.20}
router_host=${LOCAL_ROUTER_HOST:-127.0.0.1}
bin=$PWD/build/bin
mkdir -p "$root"
dcs_eps=http://$dcs_net.1:2379,http://$dcs_net.2:2379,http://$dcs_net.3:2379
run_user=${APPLIANCE_USER:-postgres}
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

# run_bg NAME ROLE [VAR=VALUE...] [-- CMD...]: starts appliance-init in its own session,
# with ROLE (empty: a bare command) and the environment given; log in $root/NAME.log.
run_bg() {
  local name=$1 role=$2; shift 2
  local envs=(APPLIANCE_NAME="$name")
  [ -n "$role" ] && envs+=(ROLE="$role")
  while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
  [ "${1:-}" = -- ] && shift
  if [ ! -x "$bin/appliance-init" ]; then
    echo "build/bin/appliance-init is not built" >&2
    return 1
  fi
  setsid env "${envs[@]}" "$bin/appliance-init" ${1:+--} "$@" >>"$root/$name.log" 2>&1 </dev/null &
  echo $! >"$root/$name.pid"
}

# owned_by_run_user DIR: as root, the role's user must own its state (an older `up` ran
# everything as root); as anyone else there is nobody to hand it to.
owned_by_run_user() {
  mkdir -p "$1"
  if [ "$(id -u)" = 0 ]; then chown -R "$run_user": "$1"; fi
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
  if [ "$(id -u)" = 0 ] && ! id "$run_user" >/dev/null 2>&1; then
    echo "as root every role drops to the user '$run_user', which does not exist" >&2
    return 1
  fi
  echo "$DCS" >"$root/dcs-kind"
  local cluster="etcd-1=http://$dcs_net.1:2380,etcd-2=http://$dcs_net.2:2380,etcd-3=http://$dcs_net.3:2380"
  for n in 1 2 3; do
    alive "etcd-$n" && continue
    local state=new; [ -d "$root/etcd-$n/member" ] && state=existing
    local args="--name etcd-$n --data-dir $root/etcd-$n"
    args+=" --listen-client-urls http://$dcs_net.$n:2379 --advertise-client-urls http://$dcs_net.$n:2379"
    args+=" --listen-peer-urls http://$dcs_net.$n:2380 --initial-advertise-peer-urls http://$dcs_net.$n:2380"
    args+=" --initial-cluster $cluster --initial-cluster-state $state --initial-cluster-token pg-appliance-local"
    if [ "$DCS" = appliance ]; then
      owned_by_run_user "$root/etcd-$n"
      run_bg "etcd-$n" etcd DATA_DIR="$root/etcd-$n" ROLE_ARGS="$args"
    else
      mkdir -p "$root/etcd-$n"
      # shellcheck disable=SC2086 # the flags are words
      run_bg "etcd-$n" "" -- "$dcs_bin" $args
    fi
  done
  # a linearizable read through the v3 JSON gateway answers once there is a quorum (works
  # for both DCS kinds; appliance-dcs has no gRPC, so no etcdctl)
  wait_for 30 "DCS quorum" tests/integration/agent/dcs_json.py "$dcs_eps" health
  if [ ! -x "$bin/appliance-agent" ]; then
    echo "appliance-agent is not built yet; etcd is up" >&2
    return 1
  fi
  # the member that was the leader at `down` starts first: it stopped last, with the newest
  # WAL, and resumes as the primary without a promotion (no new timeline; agent/ha.c)
  local order="0 1 2" last
  last=$(cat "$root/last-leader" 2>/dev/null || true)
  case $last in pg-[012]) order="${last#pg-} ${order/${last#pg-}/}" ;; esac
  for n in $order; do
    alive "pg-$n" && continue
    owned_by_run_user "$root/pg-$n"
    sed -e "s|data_dir: .*|data_dir: $root/pg-$n/data|" -e "s|127\.0\.20\.|$pg_net.|g" \
      -e "s|127\.0\.10\.|$dcs_net.|g" configs/postgres$n.yml >"$root/pg-$n/agent.yml"
    chmod 600 "$root/pg-$n/agent.yml" # passwords
    [ "$(id -u)" = 0 ] && chown "$run_user": "$root/pg-$n/agent.yml"
    run_bg "pg-$n" pg DATA_DIR="$root/pg-$n" ROLE_ARGS="$root/pg-$n/agent.yml"
  done
  local router=0
  if [ -x "$bin/appliance-router" ] && [ -f configs/router.yml ]; then
    sed -e "s|127\.0\.20\.|$pg_net.|g" -e "s|127\.0\.10\.|$dcs_net.|g" \
      -e "s|127\.0\.0\.1:|$router_host:|g" configs/router.yml >"$root/router.yml"
    alive router || run_bg router router ROLE_ARGS="-c $root/router.yml"
    router=1
  else
    echo "router: appliance-router is not built yet" >&2
  fi
  wait_for 60 "a leader" bash -c "for n in 0 1 2; do curl -fs -o /dev/null http://$pg_net.1\$n:8008/leader && exit 0; done; exit 1"
  if [ "$router" = 1 ]; then provision; fi
  echo "endpoints: DCS ($DCS) http://$dcs_net.{1,2,3}:2379  postgres $pg_net.{10,11,12}:5432  REST :8008  router $router_host:5000/5001/8404"
  patronictl -c "$root/pg-0/agent.yml" list 2>/dev/null || true
}

# provision: ROLE=init (appliancectl provision) in the foreground, as pg-cluster-init in
# compose: configs/init_users_dbs.sql through the router's write port, once per cluster
# (a later `up` finds the record and does nothing). PROVISION_SQL picks another file.
provision() {
  local sql=${PROVISION_SQL:-$PWD/configs/init_users_dbs.sql} pw
  pw=$(sed -n '/superuser:/,/password:/s/^ *password: *//p' configs/postgres0.yml | head -1)
  local rc=0
  env APPLIANCE_NAME=pg-cluster-init ROLE=init PGPASSWORD_SUPERUSER="${PGPASSWORD_SUPERUSER:-$pw}" \
    ROLE_ARGS="--host $router_host --port 5000 --file $sql --timeout ${PROVISION_TIMEOUT:-60}" \
    "$bin/appliance-init" >>"$root/pg-cluster-init.log" 2>&1 </dev/null || rc=$?
  if [ "$rc" = 0 ]; then
    echo "provisioned: $(grep -o 'appliancectl provision: .*' "$root/pg-cluster-init.log" | tail -1)"
  else
    echo "pg-cluster-init (ROLE=init) exited $rc; see $root/pg-cluster-init.log:" >&2
    tail -5 "$root/pg-cluster-init.log" >&2
    return 1
  fi
}

down() {
  # Replicas first, the leader last: stopping the leader first would hand over to a replica
  # that is stopped a moment later (a needless promotion and timeline switch per `down`).
  local leader order="" n
  leader=$(timeout 5 tests/integration/agent/dcs_json.py "$dcs_eps" get /service/pg-cluster/leader 2>/dev/null || true)
  for n in pg-0 pg-1 pg-2; do [ "$n" = "$leader" ] || order+=" $n"; done
  [ -n "$leader" ] && order+=" $leader"
  [ -n "$leader" ] && echo "$leader" >"$root/last-leader"
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
  provision) provision ;;
  *) echo "usage: $0 up|down|provision" >&2; exit 2 ;;
esac
