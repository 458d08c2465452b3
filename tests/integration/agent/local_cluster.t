#!/usr/bin/env bash
# test-timeout: 240
# `make up` / `make down` (mk/cluster.sh) on a private copy (our 127.0.40.x range, state in
# the temp dir): every process runs under appliance-init with its ROLE, as in the image --
# seccomp filter on, the postgres user when root, state owned by it -- and after bootstrap,
# provisioning and a switchover no syscall was denied anywhere. Provisioning (ROLE=init,
# appliancectl provision through the router): the SQL file's users and databases exist, a
# second run is a no-op, an SQL error exits non-zero naming the file and line and leaves
# nothing behind (then a fixed file runs). A full down/up resumes the cluster.
. "$(dirname "$0")/lib.sh"
require_env
[ -x "$REPO/build/bin/appliance-init" ] || bail "build/bin/appliance-init is built"
[ -x "$REPO/build/bin/appliance-router" ] || bail "build/bin/appliance-router is built"
export LOCAL_ROOT=$T/local LOCAL_DCS_NET=127.0.40 LOCAL_PG_NET=127.0.40 LOCAL_ROUTER_HOST=127.0.40.20
export DCS=appliance
L=$LOCAL_ROOT
PASS=zalando # configs/postgres*.yml
cluster() { "$REPO/mk/cluster.sh" "$@"; }
# cleanup: a graceful down first, then lib.sh's trap kills what is left (groups in _pids)
local_cleanup() {
  cluster down >/dev/null 2>&1
  local f
  for f in "$L"/*.pid; do [ -f "$f" ] && kill -KILL -- "-$(cat "$f")" 2>/dev/null; done
  for f in "$L"/pg-*/data/postmaster.pid; do [ -f "$f" ] && kill -KILL "$(head -1 "$f")" 2>/dev/null; done
  cleanup
}
trap local_cleanup EXIT
psql_at() { # HOST PORT SQL [DB]
  PGPASSWORD=$PASS "$PGBIN/psql" -X -q -At -h "$1" -p "$2" -U postgres -d "${4:-postgres}" -v ON_ERROR_STOP=1 -c "$3" 2>&1
}

t0=$(now_ms)
out=$(cluster up 2>&1)
rc=$?
check "mk/cluster.sh up exits 0 ($(( $(now_ms) - t0 )) ms)" [ "$rc" = 0 ] || { diag "$out"; dump_logs; }
check "... and reports the provisioning" grep -q "^provisioned: appliancectl provision: .*2 statements run" <<<"$out" || diag "$out"

# every role under appliance-init with its role's hardening
pg_uid=$(id -u postgres)
role_ok() { # NAME: appliance-init's child runs with a seccomp filter as postgres
  local init child st
  init=$(cat "$L/$1.pid") || return 1
  child=$(pgrep -P "$init" | head -1)
  [ -n "$child" ] || return 1
  st=$(cat "/proc/$child/status") || return 1
  grep -qE '^Seccomp:\s+2' <<<"$st" && grep -qE "^Uid:\s+$pg_uid\s" <<<"$st"
}
bad=""
for r in etcd-1 etcd-2 etcd-3 pg-0 pg-1 pg-2 router; do role_ok "$r" || bad+=" $r"; done
check "etcd-1..3, pg-0..2, router: each main process has a seccomp filter and runs as postgres${bad:+ (not:$bad)}" test -z "$bad"
pm_ok() { local f pm; for f in "$L"/pg-*/data/postmaster.pid; do pm=$(head -1 "$f"); grep -qE '^Seccomp:\s+2' "/proc/$pm/status" || return 1; done; }
check "every postmaster inherits the pg role's seccomp filter" pm_ok
check "log lines carry the role (pg-0/pg, etcd-1/etcd, router/router)" \
  bash -c "grep -q ' pg-0/pg ' '$L/pg-0.log' && grep -q ' etcd-1/etcd ' '$L/etcd-1.log' && grep -q ' router/router ' '$L/router.log'"
# configs/router.yml says forward: auto; under appliance-init the router keeps CAP_NET_ADMIN
# (ambient) after dropping to postgres, so 5000 is the kernel's NAT path here too
check "router (as postgres, ambient CAP_NET_ADMIN) forwards 5000 by kernel NAT" \
  grep -q '5000 forwarded by kernel NAT' "$L/router.log"
# timestamps: appliance-init stamps its children's lines, so the agent adds none there
agent_line=$(grep -m1 ' appliance-agent\[[0-9]*\]: info: ' "$L/pg-0.log")
check "under appliance-init the agent's lines carry init's stamp only (no second one)" \
  grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z pg-0/pg appliance-agent\[[0-9]+\]: info: ' <<<"$agent_line" || diag "$agent_line"
owner_ok() { [ -z "$(find "$L/etcd-1" "$L/pg-0" ! -user postgres | head -1)" ]; }
check "state directories are owned by postgres (etcd-1, pg-0 trees)" owner_ok || diag "$(find "$L/etcd-1" "$L/pg-0" ! -user postgres | head -3)"

# provisioning through the router (127.0.40.20:5000)
RH=$LOCAL_ROUTER_HOST
check "the SQL file's role 'app' exists" [ "$(psql_at "$RH" 5000 "SELECT rolname FROM pg_roles WHERE rolname = 'app'")" = app ]
check "the SQL file's database 'app' exists, owned by app" [ "$(psql_at "$RH" 5000 "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'app'")" = app ]
check "the run is recorded in appliance.provisioned" grep -q "configs/init_users_dbs.sql" <<<"$(psql_at "$RH" 5000 "TABLE appliance.provisioned")"
out=$(cluster provision 2>&1)
check "a second provisioning is a no-op (exit 0, 'already provisioned')" grep -q "already provisioned at .*nothing to do" <<<"$out" || diag "$out"
# an SQL error, in a database with no record yet: exit 1 naming file:line, nothing kept
printf 'CREATE TABLE prov_t1 (x int);\nINSERT INTO prov_t1 VALUES (1);\nSELECT x,\n  nosuchcol\nFROM prov_t1;\n' >"$T/bad.sql"
chmod 644 "$T/bad.sql"
prov() { # FILE: ROLE=init against the app database
  env APPLIANCE_NAME=pg-cluster-init ROLE=init PGPASSWORD_SUPERUSER=$PASS \
    ROLE_ARGS="--host $RH --port 5000 --dbname app --file $1 --timeout 30" "$REPO/build/bin/appliance-init" 2>&1
}
out=$(prov "$T/bad.sql"); rc=$?
check "SQL error: non-zero exit ($rc)" [ "$rc" != 0 ]
check "... naming the file and the line of the error (bad.sql:4)" grep -q "$T/bad.sql:4: ERROR:  column \"nosuchcol\" does not exist" <<<"$out" || diag "$out"
check "... and the statement" grep -q "statement: SELECT x," <<<"$out" || diag "$out"
check "... nothing of the failed run was kept (no prov_t1, no record)" \
  [ "$(psql_at "$RH" 5000 "SELECT to_regclass('prov_t1') IS NULL AND to_regclass('appliance.provisioned') IS NULL" app)" = t ]
sed -i 's/nosuchcol/x + 1/' "$T/bad.sql"
out=$(prov "$T/bad.sql"); rc=$?
check "the fixed file runs (exit $rc) and its table exists" [ "$rc" = 0 ] && [ "$(psql_at "$RH" 5000 "SELECT count(*) FROM prov_t1" app)" = 1 ] || diag "$out"

# switchover with appliancectl, writes through the router follow
ctl() { "$REPO/build/bin/appliancectl" -c "$L/pg-0/agent.yml" "$@"; }
leader() { "$REPO/tests/integration/agent/dcs_json.py" "http://127.0.40.1:2379,http://127.0.40.2:2379" get /service/pg-cluster/leader; }
old=$(leader)
out=$(ctl switchover 2>&1)
check "appliancectl switchover succeeds" grep -q "Successfully switched over to" <<<"$out" || diag "$out"
new=$(leader)
write_lands() { [ "$(psql_at "$RH" 5000 "SELECT inet_server_addr()")" = "127.0.40.1${new#pg-}" ]; }
check "writes through the router land on the new leader $new (was $old)" wait_until 15 write_lands
others_stream() {
  local n
  for n in 0 1 2; do
    [ "pg-$n" = "$new" ] && continue
    [ "$(psql_at "127.0.40.1$n" 5432 "SELECT status FROM pg_stat_wal_receiver")" = streaming ] || return 1
  done
}
check "the other two stream from it" wait_until 60 others_stream
# the old leader released its key only once postgres was down (shutdown checkpoint written
# and streamed): releasing it earlier let the candidate fork before WAL the third node had
released_after_shutdown() {
  awk '/database system is shut down/ && !down {down = NR}
       /switchover: leader key released after the shutdown checkpoint/ {rel = NR}
       END {exit !(down && rel && down < rel)}' "$L/$old.log"
}
check "the old leader $old released the key after its postgres shut down" released_after_shutdown

denials() { grep -h 'seccomp: denied' "$L"/*.log 2>/dev/null; }
check "no syscall denied in any role's log after bootstrap, provisioning and switchover" test -z "$(denials)" || diag "$(denials | sort | uniq -c | head)"

# make down / make up: the same cluster resumes, the former leader as primary on the same
# timeline (no promotion after a clean full stop; Patroni 3.0.2 would promote: a new timeline)
rest_tl() { curl -s -m 3 "http://127.0.40.1${1#pg-}:8008/patroni" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin).get("timeline", 0))'; }
tl_before=$(rest_tl "$new")
hist_before=$("$REPO/tests/integration/agent/dcs_json.py" "http://127.0.40.1:2379,http://127.0.40.2:2379" get /service/pg-cluster/history)
out=$(cluster down 2>&1)
check "mk/cluster.sh down stops everything" bash -c "! ls '$L'/*.pid >/dev/null 2>&1" || diag "$out"
out=$(cluster up 2>&1); rc=$?
check "a second up resumes (exit $rc) and provisioning stays done" grep -q "already provisioned" <<<"$out" || diag "$out"
hist_now() { "$REPO/tests/integration/agent/dcs_json.py" http://127.0.40.1:2379 get /service/pg-cluster/history; }
leader_is_new() { [ "$(leader)" = "$new" ]; }
check "after down/up $new is the leader again" wait_until 20 leader_is_new || diag "leader: $(leader)"
same_tl() { [ "$(rest_tl "$new")" = "$tl_before" ] && [ "$(hist_now)" = "$hist_before" ]; }
check "... on the same timeline ($tl_before), history key unchanged" wait_until 10 same_tl \
  || diag "timeline now $(rest_tl "$new"), history $(hist_now)"
check "... it resumed without a promotion (its log says so)" grep -q "resuming as the primary of timeline $tl_before without a promotion" "$L/$new.log"
check "... and the replicas stream from it again" wait_until 60 others_stream
check "the provisioned role is still there" [ "$(psql_at "$RH" 5000 "SELECT rolname FROM pg_roles WHERE rolname = 'app'")" = app ]
check "still no syscall denied" test -z "$(denials)" || diag "$(denials | sort | uniq -c | head)"
echo "1..$_tap_n"
