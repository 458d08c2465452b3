#!/usr/bin/env bash
# Bad input to appliance-init: unknown or missing ROLE, missing role program, unusable data
# dir, invalid env values, unknown user, bad services file -> a clear message naming the
# value, a non-zero exit, and nothing deleted.
# test-timeout: 60
source "$(dirname "$0")/lib.sh"
need "$INIT"
# A copy in an empty directory: the role programs are looked up beside the executable,
# and build/bin may hold real ones.
mkdir -p "$T/bin"; cp "$INIT" "$T/bin/appliance-init"; INIT=$T/bin/appliance-init

expect() { # description exit-code regex [VAR=VALUE...] [-- ARGS...]
  local d=$1 want=$2 re=$3; shift 3
  local envs=() args=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
  [ $# -gt 0 ] && { shift; args=("$@"); }
  env -u ROLE "${envs[@]}" timeout 20 unshare --pid --fork --mount-proc "$INIT" "${args[@]}" >"$T/o" 2>&1
  local rc=$?
  if [ "$rc" -eq "$want" ] && grep -qE -- "$re" "$T/o"; then ok "$d (exit $rc)"
  else nok "$d (exit $rc, wanted $want)"; show "$T/o" 5; fi
}
roles='valid roles: etcd, pg, router, init'
expect "unknown ROLE named, valid roles listed" 2 "ROLE='postgres' is not a role; $roles" ROLE=postgres
expect "missing ROLE: valid roles listed" 2 "ROLE is not set; $roles"
expect "missing role program: 127 naming its path" 127 "cannot execute $T/bin/appliance-dcs: No such file or directory" \
  ROLE=etcd DATA_DIR="$T/etcd"
expect "init role runs 'appliancectl provision' from the same dir" 127 "cannot execute $T/bin/appliancectl: No such file" ROLE=init
for kv in STOP_TIMEOUT=soon KILL_GRACE=10m STOP_SIGNAL=SIGSEGV RESTART=sometimes PERMANENT_FAILURE_EXIT=300 \
          HEALTHY_UPTIME=-5 SECCOMP_ACTION=off LOG_FORMAT=xml APPLIANCE_USER=Bad.User DATA_DIR=relative \
          APPLIANCE_NAME='two words'; do
  expect "invalid ${kv%%=*} named with its value" 2 "${kv%%=*}='${kv#*=}'" ROLE=pg "$kv"
done
expect "user that does not exist: exit 2 naming it" 2 "user 'nosuchuser' .* does not exist" \
  ROLE=router APPLIANCE_USER=nosuchuser
expect "unknown option" 2 "unknown option '-x'" -- -x
expect "services file with a bad value: file, line, key and value named" 2 ":2: restart='maybe'" \
  -- --services <(printf 'a -- /bin/true\nb restart=maybe -- /bin/true\n')

# Data dir that is a file: refused, the file untouched.
echo keep >"$T/file"
expect "DATA_DIR that is a file: refused" 2 "DATA_DIR='$T/file' exists and is not a directory" ROLE=pg DATA_DIR="$T/file"
check "  ... and the file is untouched" grep -qx keep "$T/file"

# Data dir the role's user cannot reach (parent is root-only): refused, content kept.
mkdir -p "$T/private/data"; chmod 0700 "$T/private"; echo precious >"$T/private/data/PG_VERSION"
expect "DATA_DIR the role's user cannot use: refused naming dir and uid" 2 \
  "DATA_DIR='$T/private/data' is not usable by uid $(id -u postgres): Permission denied" ROLE=pg DATA_DIR="$T/private/data"
check "  ... and nothing in it was deleted" grep -qx precious "$T/private/data/PG_VERSION"

# Not root: a data dir owned by someone else cannot be taken over.
mkdir -p "$T/rootdir"; chmod 0700 "$T/rootdir"; echo mine >"$T/rootdir/f"
chmod 0755 "$T/bin" "$T/bin/appliance-init"
setpriv --reuid=nobody --regid=nogroup --clear-groups env -u ROLE ROLE=router DATA_DIR="$T/rootdir" "$INIT" >"$T/o" 2>&1
rc=$?
if [ "$rc" -eq 2 ] && grep -qE "DATA_DIR='$T/rootdir' is owned by uid 0, not uid $(id -u nobody)" "$T/o" && grep -qx mine "$T/rootdir/f"; then
  ok "not root: someone else's data dir refused, untouched (exit 2)"
else nok "not root: foreign data dir (exit $rc)"; show "$T/o" 5; fi
echo "1..$n"
