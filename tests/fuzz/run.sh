#!/usr/bin/env bash
# Runs libFuzzer targets for FUZZ_SECONDS each (default 10), seeded from
# tests/fuzz/corpus/NAME/ (committed seeds) and growing a working corpus in build/fuzz/.
# Any crash, leak, hang (-timeout) or sanitizer report fails the target; the reproducer is
# kept in build/fuzz/artifacts/. --tap prints one TAP line per target.
set -uo pipefail
cd "$(dirname "$0")/../.."
tap=0
if [ "${1:-}" = --tap ]; then tap=1; shift; fi
secs=${FUZZ_SECONDS:-10}
n=0 bad=0
for bin in "$@"; do
  name=$(basename "$bin"); n=$((n + 1))
  work="build/fuzz/corpus-$name"; art="build/fuzz/artifacts/$name/"
  mkdir -p "$work" "$art"
  seeds=()
  [ -d "tests/fuzz/corpus/${name%_fuzz}" ] && seeds=("tests/fuzz/corpus/${name%_fuzz}")
  if "$bin" -max_total_time="$secs" -timeout=5 -rss_limit_mb=1024 -max_len=65536 \
       -artifact_prefix="$art" -print_final_stats=1 "$work" "${seeds[@]}" 2>&1 | tail -25; then
    [ $tap = 1 ] && echo "ok $n - $name fuzzed ${secs}s"
  else
    bad=$((bad + 1))
    [ $tap = 1 ] && echo "not ok $n - $name: crash or sanitizer report, reproducer in $art"
  fi
done
[ "$bad" -eq 0 ]
