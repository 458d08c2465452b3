#!/bin/sh
# The PostgreSQL workload the pg seccomp allowlist is derived from (derive_pg_allowlist.sh,
# under strace -f) and checked against (pg_seccomp.t, under appliance-init ROLE=pg):
# initdb, start, psql, pgbench -i and -T, pg_basebackup, a streaming replica, promote,
# pg_rewind of the old primary, stop. Runs as the postgres user with /bin/sh, the way the
# agent will drive these binaries.
#
# Usage: pg_workload.sh DIR   (DIR empty and writable; addresses 127.0.70.1:5432/5433 and
# unix sockets in DIR). PGBENCH_SECONDS (default 10).
set -eu
D=$1
B=/usr/lib/postgresql/15/bin
T=${PGBENCH_SECONDS:-10}
step() { echo "workload: $*"; }
# Whatever happens, leave no server running (a traced or supervised run waits for them).
cleanup() {
  for d in "$D/a" "$D/b"; do
    [ -f "$d/postmaster.pid" ] && "$B/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1
  done
  return 0
}
trap cleanup EXIT

step initdb
"$B/initdb" -D "$D/a" -U postgres --auth=trust --data-checksums -E UTF8 --locale=C.UTF-8 >"$D/initdb.log"
conf() { # datadir port
  cat >>"$1/postgresql.conf" <<CONF
listen_addresses = '127.0.70.1'
port = $2
unix_socket_directories = '$D'
wal_level = replica
max_wal_senders = 4
hot_standby = on
wal_log_hints = on
wal_keep_size = 256MB
shared_buffers = 16MB
logging_collector = off
CONF
}
conf "$D/a" 5432
echo "host replication postgres 127.0.70.1/32 trust" >>"$D/a/pg_hba.conf"

step start primary
"$B/pg_ctl" -D "$D/a" -l "$D/a.log" -w -t 60 start >/dev/null
"$B/psql" -X -q -h "$D" -p 5432 -U postgres -c 'select 1' postgres >/dev/null

step pgbench -i, then -T "$T" over TCP
"$B/pgbench" -q -h "$D" -p 5432 -U postgres -i -s 2 postgres 2>"$D/pgbench-init.log"
"$B/pgbench" -h 127.0.70.1 -p 5432 -U postgres -c 4 -j 2 -T "$T" postgres >"$D/pgbench.log" 2>&1
grep 'tps' "$D/pgbench.log" | head -1

step pg_basebackup
"$B/pg_basebackup" -h 127.0.70.1 -p 5432 -U postgres -D "$D/b" -R -X stream -c fast
sed -i 's/^port = 5432$/port = 5433/' "$D/b/postgresql.conf"
chmod 0700 "$D/b"

step start replica
"$B/pg_ctl" -D "$D/b" -l "$D/b.log" -w -t 60 start >/dev/null
"$B/psql" -X -q -h "$D" -p 5432 -U postgres -c 'create table w(x int); insert into w values (1)' postgres
n=0
until [ "$("$B/psql" -X -Atq -h "$D" -p 5433 -U postgres -c 'select count(*) from w' postgres 2>/dev/null)" = 1 ]; do
  n=$((n + 1)); [ $n -lt 300 ] || { echo "replica never caught up" >&2; exit 1; }
  sleep 0.1
done

step promote replica, rewind the old primary
"$B/pg_ctl" -D "$D/b" -w -t 60 promote >/dev/null
"$B/psql" -X -q -h "$D" -p 5433 -U postgres -c 'insert into w values (2); checkpoint' postgres
"$B/pg_ctl" -D "$D/a" -m fast -w -t 60 stop >/dev/null
"$B/pg_rewind" -D "$D/a" --source-server="host=$D port=5433 user=postgres dbname=postgres" >"$D/rewind.log" 2>&1

step stop
"$B/pg_ctl" -D "$D/b" -m fast -w -t 60 stop >/dev/null
step done
