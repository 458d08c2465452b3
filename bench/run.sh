#!/usr/bin/env bash
# Runs every benchmark suite bench/NAME/run.sh (BENCH_FILTER=regex picks some). Each suite
# measures our part side by side with the real peer in the same run and prints ratios.
set -uo pipefail
cd "$(dirname "$0")/.."
rc=0
for s in bench/*/run.sh; do
  [ -x "$s" ] || continue
  [ -n "${BENCH_FILTER:-}" ] && ! [[ $s =~ $BENCH_FILTER ]] && continue
  echo "== $s"
  "$s" || { echo "bench suite $s failed"; rc=1; }
done
exit $rc
