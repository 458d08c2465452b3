# Shared by the tests in tests/e2e (sourced; $T must be set first): TAP lines, a deadline
# poll, and a Docker engine that is started only when none answers (never a second daemon)
# and then stopped again by its PID.
n=0 failed=0 dockerd_pid=
ok() { n=$((n + 1)); echo "ok $n - $*"; }
nok() { n=$((n + 1)); failed=1; echo "not ok $n - $*"; }
show() { sed 's/^/#   /' "$1" | tail -"${2:-20}"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
wait_for() { # SECONDS COMMAND...: poll every WAIT_STEP s (0.1) until COMMAND succeeds or the deadline
  local end=$(($(now_ms) + $1 * 1000)); shift
  until "$@"; do
    [ "$(now_ms)" -ge "$end" ] && return 1
    sleep "${WAIT_STEP:-0.1}"
  done
}

# ensure_dockerd: 0 when an engine answers (dockerd_pid set if we started it), else prints a
# "not ok" line and returns 1. Our own daemon uses the default bridge: never --bridge=none in
# the host netns (it would delete another daemon's docker0; none answered, so none exists).
ensure_dockerd() {
  docker version >/dev/null 2>&1 && return 0
  command -v dockerd >/dev/null || { nok "dockerd not installed (mk/packages.sh test)"; return 1; }
  dockerd >"$T/dockerd.log" 2>&1 &
  dockerd_pid=$!
  wait_for 30 docker version >/dev/null 2>&1 && return 0
  nok "dockerd did not answer within 30 s"; show "$T/dockerd.log"
  return 1
}

# e2e_cleanup_end: stops the daemon we started; removes $T unless something failed.
e2e_cleanup_end() {
  if [ -n "$dockerd_pid" ]; then
    kill -TERM "$dockerd_pid" 2>/dev/null
    wait_for 20 sh -c "! kill -0 $dockerd_pid 2>/dev/null" || kill -KILL "$dockerd_pid" 2>/dev/null
    wait "$dockerd_pid" 2>/dev/null
  fi
  if [ "$failed" -eq 0 ]; then rm -rf "$T"; else echo "# files kept in $T"; fi
}
