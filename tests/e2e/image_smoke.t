#!/usr/bin/env bash
# The image, end to end with a real Docker engine: `make image` builds it, `docker load`
# takes it, the loaded ID is the one the writer computed, and a second build gives the
# same ID and the same bytes. Then containers of it: a bad ROLE, a plain command with
# appliance-init as PID 1, PostgreSQL (initdb, start, a query, stop) under ROLE=pg's
# hardening (user postgres, seccomp; no syscall may be denied), and `docker stop`
# (SIGTERM) of a running PostgreSQL container -> exit 0 well inside the stop timeout.
#
# Starts dockerd only if no daemon answers (and then stops that one by its PID); never a
# second daemon. Removes every container it made; the image is loaded under a tag of its
# own (same ID: the tag is not part of the image config), removed at the end.
# test-timeout: 240
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
T=$(mktemp -d /tmp/image-smoke.XXXXXX)
TAG=pg-appliance:smoke-$$
NAME=pgapp-smoke-$$
STOP_TIMEOUT=30 # docker stop -t: SIGKILL after this; PostgreSQL must be out well before
. tests/e2e/lib.sh

cleanup() {
  for c in $(docker ps -aq --filter "name=^$NAME" 2>/dev/null); do docker rm -f "$c" >/dev/null 2>&1; done
  docker rmi "$TAG" >/dev/null 2>&1
  e2e_cleanup_end
}
trap cleanup EXIT

# ---- the engine ----
ensure_dockerd || exit 1
if [ -n "$dockerd_pid" ]; then ok "started dockerd (pid $dockerd_pid): no daemon was running"
else ok "reusing the running Docker engine"; fi

# ---- build (twice: determinism) and load ----
start=$(now_ms)
if make --no-print-directory image IMAGE_DIR="$T/img1" IMAGE_TAG="$TAG" >"$T/build1.log" 2>&1; then
  build_ms=$(($(now_ms) - start))
  ok "make image built $T/img1/pg-appliance.tar in $((build_ms / 1000)).$((build_ms % 1000 / 100)) s"
else
  nok "make image failed"; show "$T/build1.log"; exit 1
fi
grep -E '^(shipped|missing):' "$T/img1/contents.txt" | sed 's/^/# /'
id1=$(cat "$T/img1/image-id")
# A second build into another directory, straight from rootfs/build.sh with the very
# programs the first one shipped (its appliance layer tree: build/bin may be rebuilt by a
# concurrent make in a shared checkout): identical image ID and identical tarball bytes.
if rootfs/build.sh "$T/img2" "$T/img1/layers/appliance/usr/local/bin" "$TAG" >"$T/build2.log" 2>&1 &&
  [ "$(cat "$T/img2/image-id")" = "$id1" ] && cmp -s "$T/img1/pg-appliance.tar" "$T/img2/pg-appliance.tar"; then
  ok "deterministic: a second build gives the same image ID ${id1:7:12} and the same bytes"
else
  nok "second build differs: $id1 vs $(cat "$T/img2/image-id" 2>/dev/null)"; show "$T/build2.log"
fi
rm -rf "$T/img2"

# The air-gapped bundle around that tarball (what `make bundle` does after `make image`):
# the listed files, checksums that verify, the same image bytes, a compose file that
# docker-compose accepts as shipped.
start=$(now_ms)
if BUNDLE_GZIP_LEVEL=1 rootfs/bundle.sh "$T/img1/pg-appliance.tar" "$T/bundle.tar.gz" >"$T/bundle.log" 2>&1 &&
  mkdir -p "$T/unpacked" && tar xzf "$T/bundle.tar.gz" -C "$T/unpacked"; then
  b=$T/unpacked/pg-appliance-bundle
  files=$(cd "$b" && find . -type f | LC_ALL=C sort | tr '\n' ' ')
  want="./IMAGE-ID ./README.md ./SHA256SUMS ./compose.yaml ./configs/init_users_dbs.sql ./configs/postgres0.yml ./configs/postgres1.yml ./configs/postgres2.yml ./configs/router.yml ./pg-appliance.tar "
  if [ "$files" = "$want" ] && (cd "$b" && sha256sum --quiet -c SHA256SUMS) &&
    cmp -s "$b/pg-appliance.tar" "$T/img1/pg-appliance.tar" && [ "$(cat "$b/IMAGE-ID")" = "$id1" ] &&
    (cd "$b" && DEFAULT_DATA_DIR=/nonexistent docker-compose config -q) >"$T/bundle-compose.log" 2>&1; then
    ok "bundle ($(($(stat -c %s "$T/bundle.tar.gz") / 1000000)) MB, $(($(now_ms) - start)) ms): files, SHA256SUMS, image bytes, IMAGE-ID, compose config valid"
  else
    nok "bundle content: $files"; show "$T/bundle-compose.log"
  fi
else
  nok "bundle.sh failed"; show "$T/bundle.log"
fi
rm -rf "$T/unpacked" "$T/bundle.tar.gz"

if docker load -i "$T/img1/pg-appliance.tar" >"$T/load.log" 2>&1 && grep -q "Loaded image: $TAG" "$T/load.log"; then
  ok "docker load -i accepts the tarball ($TAG)"
else
  nok "docker load failed"; show "$T/load.log"; exit 1
fi
loaded=$(docker image inspect "$TAG" --format '{{.Id}}' 2>/dev/null)
if [ "$loaded" = "$id1" ]; then ok "loaded image ID is the writer's ($loaded)"
else nok "loaded image ID '$loaded' is not the writer's '$id1'"; fi
size=$(docker image inspect "$TAG" --format '{{.Size}}')
echo "# image size: $((size / 1000000)) MB (docker image inspect .Size = $size bytes; Spilo ~720 MB)"
# The bound catches a regression such as the 100+ MB LLVM JIT creeping into the closure.
if [ "$size" -gt 0 ] && [ "$size" -lt 150000000 ]; then ok "image size $((size / 1000000)) MB < 150 MB"
else nok "image size $size bytes is not below 150 MB"; fi
ep=$(docker image inspect "$TAG" --format '{{json .Config.Entrypoint}} {{.Os}}/{{.Architecture}}')
if [ "$ep" = '["/usr/local/bin/appliance-init"] linux/amd64' ]; then ok "entrypoint appliance-init, linux/amd64"
else nok "image config: $ep"; fi

# ---- containers ----
docker run --rm --name "$NAME-bogus" -e ROLE=bogus "$TAG" >"$T/bogus.log" 2>&1
rc=$?
if [ "$rc" -eq 2 ] && grep -q "valid roles: etcd, pg, router, init" "$T/bogus.log"; then
  ok "ROLE=bogus exits 2 listing the valid roles"
else
  nok "ROLE=bogus: exit $rc"; show "$T/bogus.log"
fi

docker run --rm --name "$NAME-echo" "$TAG" -- /bin/sh -c 'echo ok-from-sh; echo "ppid=$PPID"' >"$T/echo.log" 2>&1
rc=$?
if [ "$rc" -eq 0 ] && grep -q 'sh\[[0-9]*\]: ok-from-sh$' "$T/echo.log" && grep -q 'sh\[[0-9]*\]: ppid=1$' "$T/echo.log" &&
  grep -q ' appliance-init\[1\]: ' "$T/echo.log"; then
  ok "appliance-init runs as PID 1 and runs -- /bin/sh -c 'echo ok' (exit 0)"
else
  nok "plain command: exit $rc"; show "$T/echo.log"
fi

# Everything inside the image: initdb (calls /bin/sh and locale -a), pg_ctl start (via
# /bin/sh), psql over Debian's default socket dir /var/run/postgresql, stop, and the
# agent's "/bin/rm -rf" of a data dir.
pgscript='set -e
B=/usr/lib/postgresql/15/bin D=/home/postgres/pgdata/data
$B/initdb -D $D -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --data-checksums >/dev/null
$B/pg_ctl -D $D -l /tmp/pg.log -w -t 60 start >/dev/null
$B/psql -X -At -U postgres -c "select 40 + 2, datcollate, current_user from pg_database where datname = current_database()"
$B/psql -X -At -U postgres -c "select count(*) > 0 from pg_collation where collname = '"'C.utf8'"'"
$B/pg_ctl -D $D -m fast -w stop >/dev/null
/bin/rm -rf $D && [ ! -e $D ] && echo rm-done
echo pg-done'
docker run --rm --name "$NAME-pg" -e ROLE=pg "$TAG" -- /bin/sh -c "$pgscript" >"$T/pg.log" 2>&1
rc=$?
if [ "$rc" -eq 0 ] && grep -q 'sh\[[0-9]*\]: 42|C.UTF-8|postgres$' "$T/pg.log" && grep -q 'pg-done$' "$T/pg.log"; then
  ok "ROLE=pg: initdb, pg_ctl start, psql query (C.UTF-8), stop as postgres in the image"
else
  nok "ROLE=pg PostgreSQL run: exit $rc"; show "$T/pg.log" 30
fi
if grep -q 'sh\[[0-9]*\]: rm-done$' "$T/pg.log"; then ok "/bin/rm -rf of a data dir works (the agent's reinit runs it)"
else nok "/bin/rm -rf of the data dir failed"; fi
if grep -q 'sh\[[0-9]*\]: t$' "$T/pg.log"; then ok "initdb imported the OS collations (locale -a works)"
else nok "no C.utf8 collation imported"; fi
if grep -q 'role pg: user postgres.*seccomp errno' "$T/pg.log" && ! grep -q 'seccomp: denied' "$T/pg.log"; then
  ok "ROLE=pg hardening applied (user postgres, seccomp) and no syscall denied"
else
  nok "hardening not applied or syscalls denied"; grep -E 'role pg|seccomp' "$T/pg.log" | head -10 | sed 's/^/#   /'
fi

# SIGTERM: PostgreSQL as the main process; docker stop must end it cleanly, exit 0.
runscript='set -e
B=/usr/lib/postgresql/15/bin D=/home/postgres/pgdata/data
$B/initdb -D $D -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
exec $B/postgres -D $D -c listen_addresses='"''"
if docker run -d --name "$NAME-run" -e ROLE=pg "$TAG" -- /bin/sh -c "$runscript" >/dev/null 2>"$T/run.err"; then
  ok "started a long-running PostgreSQL container"
else
  nok "docker run -d failed"; show "$T/run.err"
fi
ready() { docker exec -u postgres "$NAME-run" /usr/lib/postgresql/15/bin/psql -X -At -c 'select 1' 2>/dev/null | grep -qx 1; }
if wait_for 60 ready; then ok "PostgreSQL in the container answers a query (docker exec psql)"
else nok "PostgreSQL did not answer within 60 s"; docker logs "$NAME-run" >"$T/run.log" 2>&1; show "$T/run.log"; fi
start=$(now_ms)
docker stop -t "$STOP_TIMEOUT" "$NAME-run" >/dev/null 2>&1
stop_ms=$(($(now_ms) - start))
code=$(docker inspect "$NAME-run" --format '{{.State.ExitCode}}' 2>/dev/null)
docker logs "$NAME-run" >"$T/run.log" 2>&1
echo "# docker stop took $stop_ms ms"
if [ "$code" = 0 ] && [ "$stop_ms" -lt $((STOP_TIMEOUT * 1000)) ] && grep -q 'database system is shut down' "$T/run.log"; then
  ok "SIGTERM (docker stop): PostgreSQL shut down, container exit 0 in $stop_ms ms"
else
  nok "docker stop: exit code '$code' after $stop_ms ms"; show "$T/run.log"
fi
docker rm -f "$NAME-run" >/dev/null 2>&1

echo "1..$n"
exit "$failed"
