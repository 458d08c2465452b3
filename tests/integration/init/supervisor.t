#!/usr/bin/env bash
# The supervisor under appliance-init as PID 1: restart backoff spacing measured against
# the policy (1 s, 2 s, 4 s ...), reset after a healthy uptime, permanent failure exit
# code, readiness through an s6-style notification fd, and dependency order.
# test-timeout: 90
source "$(dirname "$0")/lib.sh"
need "$INIT" "$PROBE"

# Timestamps (ms since epoch) of the "started NAME[pid]" records of a run.
starts() { # file name
  python3 - "$1" "$2" <<'PY'
import sys, re, datetime
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"(\S+)Z \S+ appliance-init\[\d+\]: info: started %s\[" % re.escape(sys.argv[2]), line)
    if m:
        t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f")
        print(int(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000))
PY
}
# spacing_ok FILE NAME EXPECTED_MS...: gaps between starts are each within
# [expected - 20 ms, expected + 700 ms] (the child runs ms; the timer is never early; the
# slack is for a loaded 2-core CI machine, far below the policy's doubling).
spacing_ok() {
  local f=$1 name=$2; shift 2
  mapfile -t ts < <(starts "$f" "$name")
  local i=0 gaps=""
  for want in "$@"; do
    [ -n "${ts[$((i + 1))]:-}" ] || { echo "# only ${#ts[@]} starts"; return 1; }
    local gap=$(( ts[i + 1] - ts[i] ))
    gaps="$gaps $gap"
    if [ "$gap" -lt $((want - 20)) ] || [ "$gap" -gt $((want + 700)) ]; then
      echo "# gap $((i + 1)) is $gap ms, policy says $want ms"; return 1
    fi
    i=$((i + 1))
  done
  echo "# measured restart gaps (ms):$gaps"
}

# --- backoff 1 s, 2 s, 4 s for a child failing at once ---
start_ns backoff RESTART=on-failure -- /bin/sh -c 'echo run; exit 1'
four_starts() { [ "$(starts "$T/backoff.out" sh | wc -l)" -ge 4 ]; }
wait_for 12 four_starts
kill -TERM "$IPID"; finish_ns 10
check "restart backoff spacing follows the policy: 1 s, 2 s, 4 s" spacing_ok "$T/backoff.out" sh 1000 2000 4000
check "restarts and their reasons are logged" grep_out backoff 'sh\[[0-9]+\] exited with code 1 after [0-9.]+ s; restart 3 in 4.000 s \(restart=on-failure\)'
check "stop during backoff: exit status is the last failure (1, got $RC)" [ "$RC" -eq 1 ]

# --- a run longer than HEALTHY_UPTIME resets the backoff: 1 s every time ---
start_ns healthy RESTART=on-failure HEALTHY_UPTIME=300ms -- /bin/sh -c 'sleep 0.4; exit 1'
three_starts() { [ "$(starts "$T/healthy.out" sh | wc -l)" -ge 3 ]; }
wait_for 10 three_starts
kill -TERM "$IPID"; finish_ns 10
check "backoff reset after a healthy uptime (gaps 0.4 s run + 1 s, twice)" spacing_ok "$T/healthy.out" sh 1400 1400

# --- permanent failure exit code stops restarts even with restart=always ---
run_ns perm RESTART=always PERMANENT_FAILURE_EXIT=7 -- /bin/sh -c 'exit 7'
if [ "$RC" -eq 7 ] && [ "$(starts "$T/perm.out" sh | wc -l)" -eq 1 ] && grep_out perm 'not restarted: permanent failure exit code'; then
  ok "permanent failure exit code: one run, no restart, exit 7"
else nok "permanent failure exit code (rc $RC)"; show "$T/perm.out"; fi

# --- readiness: 'web' (after=db) starts only once db wrote its newline on fd 3 ---
cat >"$T/ready.services" <<SV
# db becomes ready after 600 ms; web depends on it
db notify-fd=3 -- $PROBE notify 3 600
web after=db -- $PROBE tick 1 0
SV
start_ns ready -- --services "$T/ready.services"
wait_for 10 grep_out ready 'web\[[0-9]+\]: tick 0'
kill -TERM "$IPID"; finish_ns 10
notified=$(grep -oE 'db\[[0-9]+\]: notifying at [0-9]+' "$T/ready.out" | awk '{print $NF}')
ticked=$(grep -oE 'web\[[0-9]+\]: tick 0 [0-9]+' "$T/ready.out" | awk '{print $NF}')
order=$(grep -nE 'db\[[0-9]+\] is ready|started web\[' "$T/ready.out" | cut -d: -f1 | tr '\n' ' ')
if [ -n "$notified" ] && [ -n "$ticked" ] && [ "$ticked" -ge "$notified" ] && grep_out ready 'db\[[0-9]+\] is ready' \
   && [ "$(echo $order | awk '{print ($1 < $2)}')" = 1 ]; then
  ok "readiness fd: dependent started after db signalled ready (db ready at $notified, web ran at $ticked)"
else nok "readiness fd / dependency order ($notified / $ticked / $order)"; show "$T/ready.out"; fi
check "services stopped on SIGTERM: status 0 (got $RC)" [ "$RC" -eq 0 ]

# --- dependencies stop in reverse order: web gets its stop signal before db; per-service
# stop signal and environment ---
cat >"$T/order.services" <<SV
db -- $PROBE signals
web after=db stop-signal=INT -- $PROBE signals SIGINT
env env=GREETING='hello there' -- /bin/sh -c 'echo "greeting: \$GREETING"'
SV
start_ns order -- --services "$T/order.services"
both_armed() { [ "$(grep -c ': armed$' "$T/order.out")" -eq 2 ]; }
wait_for 5 both_armed
kill -TERM "$IPID"; finish_ns 10
order=$(grep -nE 'sending SIG(TERM|INT) to (web|db)\[' "$T/order.out" | sed -E 's/.*sending (SIG[A-Z]+) to (web|db).*/\2:\1/' | tr '\n' ' ')
check "stop order is reverse dependency order, each with its stop signal (got: $order)" [ "$order" = "web:SIGINT db:SIGTERM " ]
check "the service's own stop signal arrives (web got SIGINT, exit status $RC)" grep_out order 'web\[[0-9]+\]: got SIGINT$'
check "per-service environment (env=KEY=VALUE)" grep_out order 'env\[[0-9]+\]: greeting: hello there$'

# --- STOP_SIGNAL overrides the main process's stop signal; the stop still counts as one ---
start_ns stopsig STOP_SIGNAL=USR1 -- "$PROBE" signals SIGUSR1
wait_for 5 grep_out stopsig 'armed$'
kill -TERM "$IPID"; finish_ns 10
if grep_out stopsig 'sending SIGUSR1 to init_probe' && grep_out stopsig 'got SIGUSR1$' && [ "$RC" -eq 0 ]; then
  ok "STOP_SIGNAL=USR1: SIGTERM to init becomes SIGUSR1 to the main process; exit 0"
else nok "STOP_SIGNAL override (rc $RC)"; show "$T/stopsig.out"; fi
echo "1..$n"
