#!/usr/bin/env bash
# The seed topology from compose.yaml, from the image `make image` builds, under
# docker-compose v1: three appliance-dcs members, three appliance-agent nodes, the router.
# Asserts: a primary is elected and takes writes through pg-router:5000, a replica serves
# them through :5001, no syscall is denied anywhere, a killed primary is replaced (writes
# through :5000 land on another node), the old primary rejoins as a replica (pg_rewind),
# and `docker-compose stop` ends every long-running container with exit 0.
#
# The one change from the repository's compose.yaml: host ports are removed, since
# 5000/5001/8404 on the host would collide with other tests' routers on 127.0.0.1;
# everything here is checked from inside the compose network.
# Starts dockerd only if none answers (stops it again by PID). Cleans up its containers,
# network, image tag and data.
# test-timeout: 300
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
T=$(mktemp -d /tmp/compose-cluster.XXXXXX)
P=pgappc$$ # compose project
VER=compose-$$
TAG=pg-appliance:$VER
WAIT_STEP=0.25
. tests/e2e/lib.sh
export DEFAULT_DATA_DIR=$T/data APPLIANCE_VERSION=$VER COMPOSE_PROJECT_NAME=$P
dc() { (cd "$T/proj" && docker-compose -f compose.yaml "$@"); }

cleanup() {
  dc down -t 5 >/dev/null 2>&1
  docker rmi "$TAG" >/dev/null 2>&1
  e2e_cleanup_end
}
trap cleanup EXIT
ensure_dockerd || exit 1

if make --no-print-directory image IMAGE_DIR="$T/img" IMAGE_TAG="$TAG" >"$T/build.log" 2>&1 &&
  docker load -i "$T/img/pg-appliance.tar" >"$T/load.log" 2>&1; then
  ok "image built and loaded as $TAG"
else
  nok "make image / docker load failed"; show "$T/build.log"; show "$T/load.log"; exit 1
fi
grep -E '^(shipped|missing):' "$T/img/contents.txt" | sed 's/^/# /'
for p in appliance-dcs appliance-agent appliance-router; do
  grep -q "^shipped:.* $p" "$T/img/contents.txt" || { nok "$p is not built: the cluster cannot run"; exit 1; }
done

# ---- the project: compose.yaml without host ports ----
mkdir -p "$T/proj/configs" "$T/data"
sed '/^    ports: \[/d' compose.yaml >"$T/proj/compose.yaml"
cp configs/* "$T/proj/configs/"

start=$(now_ms)
if dc up -d >"$T/up.log" 2>&1; then ok "docker-compose up -d"
else nok "docker-compose up failed"; show "$T/up.log"; exit 1; fi

# SQL from a throwaway container of the same image on the compose network.
NET=${P}_default
sql() { # PORT SQL -> psql -At output lines (without the log prefix) in $T/sql.out
  docker run --rm --network "$NET" -e PGPASSWORD=zalando -e PGCONNECT_TIMEOUT=3 "$TAG" -- \
    /usr/lib/postgresql/15/bin/psql -X -At -v ON_ERROR_STOP=1 -h pg-router -p "$1" -U postgres -c "$2" \
    >"$T/sql.raw" 2>&1
  local rc=$?
  sed -n 's/^.* psql\[[0-9]*\]: //p' "$T/sql.raw" >"$T/sql.out"
  return $rc
}
ip_of() { docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$1"; }
node_at() { # IP -> compose service name (pg-N)
  local c
  for c in $(dc ps -q pg-0 pg-1 pg-2); do
    [ "$(ip_of "$c")" = "$1" ] && docker inspect -f '{{index .Config.Labels "com.docker.compose.service"}}' "$c"
  done
}
write_ok() {
  sql 5000 "create table if not exists smoke(n int); insert into smoke values (1); select inet_server_addr()" &&
    grep -qE '^[0-9.]+$' "$T/sql.out"
}
if wait_for 120 write_ok; then
  primary=$(node_at "$(grep -E '^[0-9.]+$' "$T/sql.out")")
  ok "a write through pg-router:5000 commits on the primary $primary ($(($(now_ms) - start)) ms after up)"
else
  nok "no write through pg-router:5000 within 120 s"; show "$T/sql.raw"; dc logs --no-color >"$T/all.log" 2>&1; show "$T/all.log" 40
fi
# compose gives the router NET_ADMIN and forwarding: 5000 must be the kernel's NAT path
# (data_path.forward auto), not the proxy's fallback.
# (logs to a file first: grep -q ending a pipe early fails it under pipefail)
nat_to() {
  dc logs --no-color pg-router >"$T/router.log" 2>&1
  grep -qE "kernel NAT: 0\.0\.0\.0:5000 now forwarded to $1\$" "$T/router.log"
}
if nat_to "${primary:-pg-0}" && grep -q '5000 forwarded by kernel NAT' "$T/router.log"; then
  ok "pg-router forwards 5000 by kernel NAT (DNAT + masquerade) to the primary $primary"
else
  nok "pg-router: 5000 not on the kernel NAT path"; show "$T/router.log" 20
fi
# ... and writes really go through the kernel: the router's network namespace
# holds conntrack entries marked by our rule (mark 0x4152xxxx; closed ones stay listed in
# TIME_WAIT for 2 minutes).
write_ok # a fresh one: the first may have been held by the proxy while no primary was known
rpid=$(docker inspect -f '{{.State.Pid}}' "$(dc ps -q pg-router)" 2>/dev/null)
marked=$(nsenter -t "${rpid:-0}" -n cat /proc/net/nf_conntrack 2>/dev/null |
  grep -oE 'mark=[0-9]+' | awk -F= '{ if (int($2 / 65536) == 16722) n++ } END { print n + 0 }')
if [ "${marked:-0}" -ge 1 ]; then ok "the router's conntrack holds $marked kernel-forwarded 5000 sessions"
else nok "no kernel-forwarded session in pg-router's conntrack"; nsenter -t "${rpid:-0}" -n cat /proc/net/nf_conntrack 2>&1 | head -5 | sed 's/^/#   /'; fi
read_ok() { sql 5001 "select pg_is_in_recovery(), count(*) > 0 from smoke" && grep -qx 't|t' "$T/sql.out"; }
if wait_for 30 read_ok; then ok "a read through pg-router:5001 is served by a replica that has the row"
else nok "no replica read through :5001"; show "$T/sql.raw"; fi

# Failover: kill the primary's container outright.
primary_c=$(dc ps -q "${primary:-pg-0}")
t0=$(now_ms)
docker kill "$primary_c" >/dev/null 2>&1
moved() { write_ok && [ "$(node_at "$(grep -E '^[0-9.]+$' "$T/sql.out")")" != "$primary" ]; }
if wait_for 60 moved; then
  ok "after killing $primary, writes through :5000 commit on $(node_at "$(grep -E '^[0-9.]+$' "$T/sql.out")") ($(($(now_ms) - t0)) ms, probe overhead included)"
  newp=$(node_at "$(grep -E '^[0-9.]+$' "$T/sql.out")")
  if nat_to "$newp"; then ok "the kernel NAT rule moved to the new primary $newp"
  else nok "kernel NAT rule did not follow to $newp"; show "$T/router.log" 20; fi
else
  nok "writes did not move off the killed primary within 60 s"; show "$T/sql.raw"
fi
since=$(date -u +%Y-%m-%dT%H:%M:%SZ)
docker start "$primary_c" >/dev/null 2>&1
# Only this life's log lines (a container's log keeps its earlier lives).
rejoined() { docker logs --since "$since" "$primary_c" >"$T/rejoin.log" 2>&1; grep -q 'I am a replica following' "$T/rejoin.log"; }
if wait_for 90 rejoined; then ok "the old primary $primary rejoined as a replica"
else nok "the old primary did not rejoin within 90 s"; docker logs "$primary_c" >"$T/old.log" 2>&1; show "$T/old.log"; fi

# appliancectl in a pg container, exactly the way DESIGN says operators use it (compose
# sets APPLIANCE_CONFIG to the node's YAML).
if dc exec -T pg-0 appliancectl list >"$T/ctl.log" 2>&1 &&
  grep -q 'Leader' "$T/ctl.log" && [ "$(grep -cE 'Replica|Leader' "$T/ctl.log")" -ge 3 ]; then
  ok "docker-compose exec pg-0 appliancectl list shows a leader and 3 members"
else
  nok "appliancectl list in pg-0"; show "$T/ctl.log"
fi

# pg-cluster-init (ROLE=init: appliancectl provision) ran init_users_dbs.sql once through
# pg-router:5000 and exited 0; its role and database exist on the primary.
init_exited() { [ "$(docker inspect -f '{{.State.Status}}' "$(dc ps -q pg-cluster-init)" 2>/dev/null)" = exited ]; }
if wait_for 120 init_exited; then
  init_code=$(docker inspect -f '{{.State.ExitCode}}' "$(dc ps -q pg-cluster-init)" 2>/dev/null)
  if [ "$init_code" = 0 ]; then ok "pg-cluster-init (appliancectl provision) exited 0"
  else nok "pg-cluster-init exited $init_code"; dc logs --no-color pg-cluster-init >"$T/init.log" 2>&1; show "$T/init.log"; fi
else
  nok "pg-cluster-init did not finish within 120 s"
fi
if sql 5000 "select (select count(*) from pg_roles where rolname = 'app') || ' ' || (select count(*) from pg_database where datname = 'app')" &&
  [ "$(tail -1 "$T/sql.out")" = "1 1" ]; then
  ok "init_users_dbs.sql took effect: role app and database app exist"
else
  nok "role/database app after provisioning"; show "$T/sql.raw"
fi

dc logs --no-color >"$T/all.log" 2>&1
if ! grep -q 'seccomp: denied' "$T/all.log"; then ok "no syscall denied in any container"
else nok "seccomp denials"; grep 'seccomp: denied' "$T/all.log" | sort | uniq -c | head | sed 's/^/#   /'; fi

t0=$(now_ms)
dc stop -t 70 >"$T/stop.log" 2>&1
stop_ms=$(($(now_ms) - t0))
bad=
for s in etcd-1 etcd-2 etcd-3 pg-0 pg-1 pg-2 pg-router; do
  code=$(docker inspect -f '{{.State.ExitCode}}' "$(dc ps -q "$s")" 2>/dev/null)
  [ "$code" = 0 ] || bad="$bad $s=$code"
done
if [ -z "$bad" ]; then ok "docker-compose stop: every long-running container exited 0 ($stop_ms ms)"
else nok "docker-compose stop: exit codes$bad"; fi
echo "1..$n"
exit "$failed"
