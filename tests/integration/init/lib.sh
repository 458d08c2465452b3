# shellcheck shell=bash
# Shared helpers for tests/integration/init/*.t: TAP lines, event waits with deadlines
# (never bare sleeps as synchronization), and appliance-init run as PID 1 of a new PID
# namespace (unshare --pid --fork --mount-proc).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
INIT=$ROOT/build/bin/appliance-init
PROBE=$ROOT/build/tests/init_probe
HERE=$ROOT/tests/integration/init
T=$(mktemp -d /tmp/init-test.XXXXXX)
chmod 0755 "$T"
n=0
failed=0
cleanup_pids=()
cleanup() {
  for p in "${cleanup_pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  if [ "$failed" -eq 0 ]; then rm -rf "$T"; else echo "# test files kept in $T"; fi
}
trap cleanup EXIT

ok() { n=$((n + 1)); echo "ok $n - $*"; }
nok() { n=$((n + 1)); failed=1; echo "not ok $n - $*"; }
# check DESCRIPTION COMMAND...: one TAP line from a command's success.
check() { local d=$1; shift; if "$@"; then ok "$d"; else nok "$d"; fi; }
# Shows a file's tail in the TAP log (as comments) to explain a failure.
show() { sed 's/^/#   /' "$1" | tail -${2:-15}; }
need() { # prerequisite files, else every test of the file fails loudly
  for f in "$@"; do [ -e "$f" ] || { echo "not ok 1 - missing $f (run make test-bins)"; exit 1; }; done
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# wait_for SECONDS COMMAND...: polls COMMAND every 20 ms until it succeeds or the deadline.
wait_for() {
  local end=$(( $(now_ms) + ${1%.*} * 1000 )); shift
  until "$@"; do
    [ "$(now_ms)" -ge "$end" ] && return 1
    sleep 0.02
  done
}

# start_ns NAME [VAR=VALUE...] -- ARGS...: appliance-init ARGS as PID 1 of a new PID
# namespace, stdout in $T/NAME.out, stderr in $T/NAME.err. Sets UPID (unshare) and IPID
# (appliance-init's pid as seen from here).
start_ns() {
  local name=$1; shift
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  env "${envs[@]}" unshare --pid --fork --mount-proc "$INIT" "$@" >"$T/$name.out" 2>"$T/$name.err" &
  UPID=$!
  cleanup_pids+=("$UPID")
  IPID=
  wait_for 5 child_of_unshare || { echo "# appliance-init did not start"; return 1; }
  cleanup_pids+=("$IPID")
}
child_of_unshare() {
  IPID=$(cat "/proc/$UPID/task/$UPID/children" 2>/dev/null | awk '{print $1}')
  [ -n "$IPID" ]
}
# finish_ns SECONDS: waits for the namespace's init to exit; sets RC (124 on timeout).
finish_ns() {
  if wait_for "$1" proc_gone "$UPID"; then wait "$UPID"; RC=$?; else RC=124; kill -KILL "$IPID" 2>/dev/null; fi
}
proc_gone() { ! kill -0 "$1" 2>/dev/null || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
# grep_out NAME REGEX: the pattern is in NAME's output.
grep_out() { grep -qE -- "$2" "$T/$1.out"; }
# run_ns NAME [VAR=VALUE...] -- ARGS...: runs to the end (at most 60 s); sets RC.
run_ns() {
  local name=$1; shift
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  timeout -k 5 60 env "${envs[@]}" unshare --pid --fork --mount-proc "$INIT" "$@" \
    >"$T/$name.out" 2>"$T/$name.err"
  RC=$?
}
