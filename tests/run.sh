#!/usr/bin/env bash
# Runs every test and ends with one line: "N passed, N failed, N skipped".
#
# A test is an executable that prints TAP lines ("ok N - name", "not ok N - name",
# "ok N - name # SKIP why"); each line counts once. A test that exits non-zero without a
# "not ok" line, prints no result at all, or outlives its time limit counts as one failure.
#   - unit tests: build/san/tests/*_test (ASan+UBSan), built by 'make test-bins'
#   - script tests: tests/**/*.t (any language), run from the repository root
#   - short fuzz runs: build/fuzz/*_fuzz, FUZZ_SECONDS each (default 10)
#   - lint: tests/lint.sh
# TEST_FILTER=regex runs only the tests whose path matches. TEST_TIMEOUT (s) bounds each
# test unless its file says "# test-timeout: N" in its first 20 lines.
set -uo pipefail
cd "$(dirname "$0")/.."
logs=build/test-logs
mkdir -p "$logs" # per-test files are overwritten; concurrent runs of other tests keep theirs
filter=${TEST_FILTER:-}
default_timeout=${TEST_TIMEOUT:-600}
passed=0 failed=0 skipped=0
failures=()

run_one() { # display-name timeout command...
  local name=$1 limit=$2; shift 2
  local log="$logs/$(echo "$name" | tr '/' '_').log"
  local start=$SECONDS rc
  timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1 </dev/null
  rc=$?
  local p f s
  p=$(grep -cE '^ok [0-9]+' "$log" | tr -d ' '); s=$(grep -cE '^ok [0-9]+.*# SKIP' "$log")
  f=$(grep -cE '^not ok [0-9]+' "$log")
  p=$((p - s))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then echo "not ok - $name: timed out after ${limit}s" >>"$log"
    else echo "not ok - $name: exited $rc" >>"$log"; fi
  elif [ "$rc" -eq 0 ] && [ $((p + f + s)) -eq 0 ]; then
    f=1; echo "not ok - $name: printed no test result" >>"$log"
  fi
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
  local status=PASS
  [ "$f" -gt 0 ] && status=FAIL && failures+=("$name")
  printf '%-4s %-48s %3d passed %2d failed %2d skipped  %4ds\n' "$status" "$name" "$p" "$f" "$s" $((SECONDS - start))
  if [ "$f" -gt 0 ]; then
    grep -E '^not ok|^#' "$log" | head -30 | sed 's/^/     | /'
    echo "     | (full log: $log; last lines follow)"
    tail -15 "$log" | sed 's/^/     | /'
  fi
}

wanted() { [ -z "$filter" ] || [[ $1 =~ $filter ]]; }

timeout_of() { # file -> seconds
  local t
  t=$(head -20 "$1" 2>/dev/null | grep -aoE 'test-timeout: [0-9]+' | head -1 | grep -oE '[0-9]+')
  echo "${t:-$default_timeout}"
}

for t in build/san/tests/*_test; do
  [ -x "$t" ] || continue
  name="unit/$(basename "$t")"; wanted "$name" || continue
  run_one "$name" "$(timeout_of "tests/unit/$(basename "$t").c")" "$t"
done

while IFS= read -r t; do
  name=${t#tests/}; wanted "$name" || continue
  run_one "$name" "$(timeout_of "$t")" "$t"
done < <(find tests -name '*.t' -type f -perm -u+x | sort)

for t in build/fuzz/*_fuzz; do
  [ -f "$t" ] && [ -x "$t" ] || continue  # not the corpus-NAME_fuzz dirs fuzz/run.sh makes
  name="fuzz/$(basename "$t")"; wanted "$name" || continue
  run_one "$name" 300 tests/fuzz/run.sh --tap "$t"
done

if wanted lint; then run_one lint 900 tests/lint.sh; fi

echo
[ ${#failures[@]} -gt 0 ] && printf 'failed: %s\n' "${failures[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
