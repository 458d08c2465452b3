#!/usr/bin/env bash
# test-timeout: 420
# Deterministic raft simulator (tests/sim/sim.c): many seeds, each a run with message
# loss/duplication/reordering/delay, partitions, crashes with torn writes, clock drift,
# transfers, membership changes and snapshots, checking the Raft safety properties after
# every event and liveness after the faults stop. A failing seed prints its reproduction
# command. SIM_SEEDS / SIM_SAN_SEEDS override the counts (CI: 40,000 fast + 3,000 ASan).
set -uo pipefail
cd "$(dirname "$0")/../.."
fast=build/sim/raft-sim-fast san=build/sim/raft-sim crash=build/sim/wal-crash
n=0
t() { # description command...
  local d=$1; shift
  n=$((n + 1))
  local out
  if out=$("$@" 2>&1); then
    echo "ok $n - $d"
    echo "$out" | tail -1 | sed 's/^/# /'
  else
    echo "not ok $n - $d"
    echo "$out" | tail -20 | sed 's/^/# /'
  fi
}
for b in $fast $san $crash; do
  [ -x "$b" ] || { echo "not ok 1 - $b not built (make test-bins)"; echo "1..1"; exit 1; }
done
t "${SIM_SEEDS:-40000} seeds, optimised build" $fast --seeds 1 "${SIM_SEEDS:-40000}"
t "${SIM_SAN_SEEDS:-3000} seeds under ASan+UBSan" $san --seeds 1000001 "${SIM_SAN_SEEDS:-3000}"
t "WAL + snapshot files: power lost at every disk operation of a workload, 16 torn-write outcomes each" \
  $crash 16
# Same seed, same run: the trace of a seed must be byte-identical twice.
n=$((n + 1))
a=$($fast --seed 4242 -v | md5sum) b=$($fast --seed 4242 -v | md5sum)
if [ "$a" = "$b" ] && [ "$($fast --seed 4242 -v | wc -l)" -gt 100 ]; then
  echo "ok $n - a seed replays exactly (identical event trace)"
else
  echo "not ok $n - seed 4242 produced different traces"
fi
# The fault injection really happens: a summary over a fixed seed range shows each fault.
n=$((n + 1))
sum=$(for s in $(seq 1 40); do $fast --seed "$s"; done | grep '^#   members')
ok=1
for k in 'crashes' 'mid-write power losses' 'partitions' 'one-way' 'transfers' 'conf changes' \
  'installed' 'reads ok' 'dropped' 'dup'; do
  tot=$(echo "$sum" | grep -oE "$k [0-9]+" | awk '{s+=$NF} END {print s+0}')
  [ "$tot" -gt 0 ] || { ok=0; echo "# no '$k' across seeds 1-40"; }
done
if [ $ok = 1 ]; then echo "ok $n - every fault kind occurs in seeds 1-40"; else echo "not ok $n - a fault kind never occurs"; fi
echo "1..$n"
