#!/usr/bin/env bash
# appliance-init side by side with tini (Debian's tini-static) and catatonit in the same run:
#   1. RSS of PID 1 while supervising 3 children (goal <= 1 MiB)
#   2. binary size (file and stripped)
#   3. log throughput: lines/s through appliance-init's log stream vs the child writing
#      straight to the file (what tini does: it passes stdout through untouched)
# Not pass/fail: prints figures and ratios.
set -uo pipefail
cd "$(dirname "$0")/../.."
INIT=build/bin/appliance-init
PROBE=build/tests/init_probe
TINI=$(command -v tini-static || command -v tini || true)
CATA=$(command -v catatonit || true)
[ -x "$INIT" ] && [ -x "$PROBE" ] || { echo "build first: make test-bins"; exit 1; }
[ -n "$TINI" ] && [ -n "$CATA" ] || { echo "tini/catatonit not installed (mk/packages.sh test)"; exit 1; }
T=$(mktemp -d /tmp/init-bench.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done; rm -rf "$T"' EXIT
ms() { echo $(( $(date +%s%N) / 1000000 )); }
kb() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
# Waits until pid has n children (up to 5 s).
wait_children() {
  for _ in $(seq 250); do
    [ "$(wc -w <"/proc/$1/task/$1/children" 2>/dev/null || echo 0)" -ge "$2" ] && return 0
    sleep 0.02
  done
  return 1
}

echo "## RSS of PID 1 supervising 3 children (VmRSS / Pss, KiB)"
printf 'a -- /bin/sleep 60\nb -- /bin/sleep 60\nc -- /bin/sleep 60\n' >"$T/three"
"$INIT" --services "$T/three" >/dev/null 2>&1 & a=$!; pids+=("$a")
ROLE=router APPLIANCE_USER=nobody "$INIT" --services "$T/three" >/dev/null 2>&1 & r=$!; pids+=("$r")
"$TINI" -s -- /bin/sh -c 'sleep 60 & sleep 60 & sleep 60 & wait' >/dev/null 2>&1 & t=$!; pids+=("$t")
"$CATA" -- /bin/sh -c 'sleep 60 & sleep 60 & sleep 60 & wait' >/dev/null 2>&1 & c=$!; pids+=("$c")
wait_children "$a" 3; wait_children "$r" 3; wait_children "$t" 1; wait_children "$c" 1; sleep 0.2
pss() { awk '$1 == "Pss:" {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null; }
ra=$(kb "$a" VmRSS) rr=$(kb "$r" VmRSS) rt=$(kb "$t" VmRSS) rc=$(kb "$c" VmRSS)
printf '%-46s %6s KiB  Pss %5s KiB\n' "appliance-init --services (3 children)" "$ra" "$(pss "$a")"
printf '%-46s %6s KiB  Pss %5s KiB\n' "appliance-init, router role (seccomp+drop)" "$rr" "$(pss "$r")"
printf '%-46s %6s KiB  Pss %5s KiB\n' "tini -s (sh with 3 children)" "$rt" "$(pss "$t")"
printf '%-46s %6s KiB  Pss %5s KiB\n' "catatonit (sh with 3 children)" "$rc" "$(pss "$c")"
awk -v a="$ra" -v t="$rt" -v c="$rc" 'BEGIN { printf "ratio appliance-init / tini RSS: %.2f, / catatonit: %.2f  (goal <= 1024 KiB: %s)\n", a / t, a / c, a <= 1024 ? "met" : "NOT met" }'
kill -TERM "$a" "$r" "$t" "$c"; wait "$a" "$r" "$t" "$c" 2>/dev/null

echo "## binary size (bytes)"
strip -o "$T/init.stripped" "$INIT"; strip -o "$T/tini.stripped" "$TINI" 2>/dev/null || cp "$TINI" "$T/tini.stripped"
strip -o "$T/cata.stripped" "$CATA" 2>/dev/null || cp "$CATA" "$T/cata.stripped"
si=$(stat -c %s "$INIT") ssi=$(stat -c %s "$T/init.stripped") st=$(stat -c %s "$TINI") sst=$(stat -c %s "$T/tini.stripped")
sc=$(stat -c %s "$CATA") ssc=$(stat -c %s "$T/cata.stripped")
printf '%-30s %8s  stripped %8s  %s\n' appliance-init "$si" "$ssi" "$(file -b "$INIT" | grep -o 'statically linked')" \
  "$(basename "$TINI")" "$st" "$sst" "$(file -b "$TINI" | grep -o 'statically linked')" \
  catatonit "$sc" "$ssc" "$(file -b "$CATA" | grep -oE 'statically linked|dynamically linked')"
awk -v a="$ssi" -v t="$sst" -v c="$ssc" 'BEGIN { printf "ratio stripped appliance-init / tini-static: %.2f, / catatonit: %.2f\n", a / t, a / c }'

echo "## log throughput (2,000,000 lines of 9..208 bytes to a file, best of 3)"
N=2000000
best() { # command... -> best wall ms of 3
  local b=999999 s e
  for _ in 1 2 3; do s=$(ms); "$@" >"$T/out" 2>/dev/null; e=$(ms); [ $((e - s)) -lt "$b" ] && b=$((e - s)); done
  echo "$b"
}
d=$(best "$PROBE" lines a "$N")
i=$(best "$INIT" -- "$PROBE" lines a "$N")
j=$(best env LOG_FORMAT=json "$INIT" -- "$PROBE" lines a "$N")
tn=$(best "$TINI" -s -- "$PROBE" lines a "$N")
ca=$(best "$CATA" -- "$PROBE" lines a "$N")
got=$(grep -c ': a [0-9]' "$T/out" 2>/dev/null || true)
for row in "direct write to the file:$d" "through tini (pass-through):$tn" "through catatonit (pass-through):$ca" "through appliance-init (text):$i" "through appliance-init (json):$j"; do
  name=${row%:*} t=${row##*:}
  awk -v n="$N" -v t="$t" -v name="$name" 'BEGIN { printf "%-36s %6d ms  %10.0f lines/s\n", name, t, n / (t / 1000) }'
done
awk -v d="$d" -v i="$i" 'BEGIN { printf "ratio appliance-init text / direct lines/s: %.2f\n", d / i }'
