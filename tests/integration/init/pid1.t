#!/usr/bin/env bash
# appliance-init as PID 1 of a new PID namespace: orphan reaping, signal forwarding,
# SIGHUP is no stop, the stop timeout -> SIGKILL path, setsid escapees killed at shutdown
# (as PID 1 and as a sub-reaper), and the exit-status rules.
# test-timeout: 120
source "$(dirname "$0")/lib.sh"
need "$INIT" "$PROBE"

# --- orphans: five grandchildren orphaned at once must come to PID 1 and be reaped ---
cat >"$T/orphans.sh" <<'SH'
for i in 1 2 3 4 5; do (sleep 1 &); done
echo spawned
exec sleep 60
SH
start_ns orphans -- /bin/sh "$T/orphans.sh"
children() { cat "/proc/$IPID/task/$IPID/children" 2>/dev/null | wc -w; }
zombies() { # children of init in state Z
  local c z=0
  for c in $(cat "/proc/$IPID/task/$IPID/children" 2>/dev/null); do
    [ "$(awk '{print $3}' "/proc/$c/stat" 2>/dev/null)" = Z ] && z=$((z + 1))
  done
  echo $z
}
six_children() { [ "$(children)" -eq 6 ]; }
reaped_all() { [ "$(children)" -eq 1 ] && [ "$(zombies)" -eq 0 ]; }
check "orphaned grandchildren are re-parented to PID 1" wait_for 5 six_children
check "orphan zombies reaped (no zombie left, only the main process remains)" wait_for 5 reaped_all
kill -TERM "$IPID"
finish_ns 10
check "SIGTERM stop: exit status 0, not 143 (got $RC)" [ "$RC" -eq 0 ]

# --- every forwarded signal arrives; SIGHUP does not stop ---
start_ns signals STOP_TIMEOUT=1 KILL_GRACE=1 -- "$PROBE" signals
wait_for 5 grep_out signals 'init_probe\[[0-9]+\]: armed$'
for s in HUP QUIT USR1 USR2 WINCH INT; do
  kill -"$s" "$IPID"
  check "SIG$s forwarded to the main process" wait_for 5 grep_out signals "init_probe\[[0-9]+\]: got SIG$s\$"
  if [ "$s" = HUP ]; then
    # Still alive after the reload signal: it answers the next one too, and init stays.
    kill -USR2 "$IPID"
    alive() { grep -c "got SIGUSR2" "$T/signals.out" | grep -q 1; }
    if wait_for 5 alive && kill -0 "$IPID" 2>/dev/null && ! grep -q 'exited\|killed by' "$T/signals.out"; then
      ok "SIGHUP does not stop the main process or init"
    else nok "SIGHUP does not stop the main process or init"; show "$T/signals.out"; fi
  fi
done
# SIGINT is a stop request too; the probe ignores it, so after STOP_TIMEOUT every
# remaining process gets SIGTERM, which the probe takes as its cue to exit 0.
finish_ns 15
check "SIGTERM reaches the main process (after SIGINT's stop timeout)" grep_out signals 'init_probe\[[0-9]+\]: got SIGTERM$'
check "stop requested and the main process exited 0: status 0 (got $RC)" [ "$RC" -eq 0 ]

start_ns term -- "$PROBE" signals
wait_for 5 grep_out term 'armed$'
t0=$(now_ms); kill -TERM "$IPID"; finish_ns 10; dt=$(( $(now_ms) - t0 ))
if grep_out term 'got SIGTERM$' && [ "$RC" -eq 0 ] && [ "$dt" -lt 2000 ]; then
  ok "SIGTERM forwarded as the stop signal; init exits 0 as soon as the child is gone (${dt} ms)"
else nok "SIGTERM forwarded as the stop signal (rc $RC, ${dt} ms)"; show "$T/term.out"; fi

# --- stop timeout -> SIGTERM to all -> grace -> SIGKILL ---
start_ns kill STOP_TIMEOUT=1 KILL_GRACE=500ms -- "$PROBE" ignore-term
wait_for 5 grep_out kill 'armed$'
t0=$(now_ms); kill -TERM "$IPID"; finish_ns 15; dt=$(( $(now_ms) - t0 ))
if [ "$RC" -eq 137 ] && [ "$dt" -ge 1400 ] && [ "$dt" -lt 4000 ] && grep_out kill 'stop timeout \(1000 ms\)' \
   && grep_out kill 'SIGKILL to 1 remaining'; then
  ok "stop timeout 1 s + grace 0.5 s -> SIGKILL; exit 137 after ${dt} ms"
else nok "stop timeout -> SIGKILL path (rc $RC, ${dt} ms)"; show "$T/kill.out"; fi

# --- setsid escapees: one leaves on SIGTERM, one ignores it and needs SIGKILL ---
cat >"$T/escape.sh" <<SH
setsid sh -c 'trap "echo term >$T/esc1.\$1; exit 0" TERM; echo \$\$ >$T/esc1.pid.\$1; while :; do sleep 0.05; done' sh "\$1" &
setsid sh -c 'trap "" TERM; echo \$\$ >$T/esc2.pid.\$1; while :; do sleep 0.05; done' sh "\$1" &
# The main process ends only once both escapees are set up.
i=0
until [ -s $T/esc1.pid.\$1 ] && [ -s $T/esc2.pid.\$1 ]; do i=\$((i + 1)); [ \$i -lt 250 ] || exit 9; sleep 0.02; done
echo started
exit 0
SH
start_ns esc KILL_GRACE=1 -- /bin/sh "$T/escape.sh" ns
finish_ns 15
if [ "$RC" -eq 0 ] && [ -s "$T/esc1.ns" ] && grep_out esc 'SIGTERM to [0-9]+ remaining' && grep_out esc 'SIGKILL to [0-9]+ remaining'; then
  ok "PID 1: setsid escapees get SIGTERM, the stubborn one SIGKILL, when the main process ends"
else nok "PID 1: setsid escapees killed (rc $RC)"; show "$T/esc.out"; fi

# Not PID 1 (sub-reaper): the escapees must still be gone when init exits, since no
# namespace teardown would kill them for us.
env KILL_GRACE=1 "$INIT" /bin/sh "$T/escape.sh" host >"$T/host.out" 2>&1 &
hp=$!; cleanup_pids+=("$hp")
wait_for 15 proc_gone "$hp"; wait "$hp"; RC=$?
e1=$(cat "$T/esc1.pid.host" 2>/dev/null); e2=$(cat "$T/esc2.pid.host" 2>/dev/null)
if [ "$RC" -eq 0 ] && [ -n "$e1" ] && [ -n "$e2" ] && proc_gone "$e1" && proc_gone "$e2" && [ -s "$T/esc1.host" ]; then
  ok "sub-reaper (not PID 1): setsid escapees gone before init exits"
else nok "sub-reaper: escapees gone (rc $RC, pids '$e1' '$e2')"; show "$T/host.out"
  kill -KILL "$e1" "$e2" 2>/dev/null; fi

# --- exit status rules ---
run_ns st3 -- /bin/sh -c 'exit 3'
check "exit code passed through (3, got $RC)" [ "$RC" -eq 3 ]
run_ns st137 -- /bin/sh -c 'kill -KILL $$'
check "killed by a signal without a stop request: 128+9 (got $RC)" [ "$RC" -eq 137 ]
start_ns st5 -- /bin/sh -c 'trap "exit 5" TERM; echo armed; while :; do sleep 0.05; done'
wait_for 5 grep_out st5 'armed$'; kill -TERM "$IPID"; finish_ns 10
check "stop requested but the main process failed (exit 5): status 5 (got $RC)" [ "$RC" -eq 5 ]
run_ns st127 -- /nonexistent/program
if [ "$RC" -eq 127 ] && grep_out st127 'cannot execute /nonexistent/program: No such file or directory'; then
  ok "exec ENOENT: 127 with a message naming the path"
else nok "exec ENOENT: 127 (got $RC)"; show "$T/st127.out"; fi
printf 'not a program\n' >"$T/noexec"; chmod 0644 "$T/noexec"
run_ns st126 -- "$T/noexec"
if [ "$RC" -eq 126 ] && grep_out st126 "cannot execute $T/noexec: Permission denied"; then
  ok "exec EACCES: 126 with a message naming the path"
else nok "exec EACCES: 126 (got $RC)"; show "$T/st126.out"; fi

# --- role dispatch: the program beside appliance-init, hardened, stopped, restarted ---
mkdir -p "$T/rbin"; cp "$INIT" "$T/rbin/appliance-init"; chmod 0755 "$T/rbin"
cat >"$T/rbin/appliance-agent" <<'SH'
#!/bin/sh
trap 'echo "agent stopping"; exit 0' TERM
echo "agent as $(id -un) in $PWD args:$*"
while :; do sleep 0.05; done
SH
printf '#!/bin/sh\necho "ctl args:$*"\n' >"$T/rbin/appliancectl"
printf '#!/bin/sh\necho router run; exit 1\n' >"$T/rbin/appliance-router"
chmod 0755 "$T/rbin/appliance-agent" "$T/rbin/appliancectl" "$T/rbin/appliance-router"
INIT=$T/rbin/appliance-init start_ns role ROLE=pg DATA_DIR="$T/rdata" -- 
agent_up() { grep_out role 'appliance-agent\[[0-9]+\]: agent as postgres in /var/lib/postgresql args:$'; }
if wait_for 5 agent_up; then ok "ROLE=pg runs appliance-agent from appliance-init's directory as postgres"
else nok "ROLE=pg runs appliance-agent"; show "$T/role.out"; fi
kill -TERM "$IPID"; finish_ns 10
check "ROLE=pg: SIGTERM reaches the agent, which stops; exit 0 (got $RC)" grep_out role 'agent stopping$'
INIT=$T/rbin/appliance-init run_ns ctl ROLE=init ROLE_ARGS="--wait 'a  b'" --
if [ "$RC" -eq 0 ] && grep_out ctl 'appliancectl\[[0-9]+\]: ctl args:provision --wait a  b$' && ! grep_out ctl 'restart 1'; then
  ok "ROLE=init runs 'appliancectl provision' + ROLE_ARGS once (one-shot, exit 0)"
else nok "ROLE=init one-shot (rc $RC)"; show "$T/ctl.out"; fi
INIT=$T/rbin/appliance-init start_ns router ROLE=router --
restarted() { grep_out router 'appliance-router\[[0-9]+\] exited with code 1 after [0-9.]+ s; restart 2 in 2.000 s \(restart=on-failure\)'; }
check "ROLE=router: a failing program is restarted with backoff (on-failure)" wait_for 8 restarted
kill -TERM "$IPID"; finish_ns 10
echo "1..$n"
