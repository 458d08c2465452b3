#!/usr/bin/env bash
# Static checks as TAP: clang-format (the repo's .clang-format), cppcheck and clang-tidy
# over every tracked C file. Each tool that finds anything fails its line.
set -uo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.c' '*.h')
mapfile -t cfiles < <(git ls-files --cached --others --exclude-standard '*.c')
n=0
report() { # ok? description log
  n=$((n + 1))
  if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; sed 's/^/# /' "$3" | head -40; fi
}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

clang-format --dry-run --Werror "${files[@]}" >"$tmp/fmt" 2>&1
report $? "clang-format" "$tmp/fmt"

cppcheck --quiet --error-exitcode=1 --enable=warning,portability,performance \
  --inline-suppr --std=c11 -D_GNU_SOURCE -Ilib -I. --suppress=missingIncludeSystem \
  "${cfiles[@]}" >"$tmp/cpp" 2>&1
report $? "cppcheck" "$tmp/cpp"

# clang-tidy is the slow one (the analyzer): one process per file, all cores.
tidy_ok=0
printf '%s\0' "${cfiles[@]}" | xargs -0 -P "$(nproc)" -I{} sh -c \
  'clang-tidy --quiet "$1" -- -std=c11 -D_GNU_SOURCE -Ilib -I. -Itests/unit >"$2/tidy.$(echo "$1" | tr / _)" 2>&1 || echo "$1" >>"$2/tidy.failed"' \
  _ {} "$tmp" || tidy_ok=1
cat "$tmp"/tidy.* >"$tmp/tidy" 2>/dev/null || : >"$tmp/tidy"
grep -qE 'warning:|error:' "$tmp/tidy" && tidy_ok=1
[ -s "$tmp/tidy.failed" ] && tidy_ok=1
report $tidy_ok "clang-tidy" "$tmp/tidy"
echo "1..$n"
