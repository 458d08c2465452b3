#!/usr/bin/env bash
# The release binaries are static (no interpreter, no shared libraries, so nothing is read
# from the build host at run time) and the dependency prefix is a warm cache hit.
# test-timeout: 60
set -uo pipefail
cd "$(dirname "$0")/../.."
n=0
for b in build/bin/*; do
  [ -f "$b" ] || continue
  n=$((n + 1))
  desc=$(file -b "$b")
  if [[ $desc == *"statically linked"* ]] && ! readelf -d "$b" 2>/dev/null | grep -q NEEDED \
     && ! readelf -l "$b" | grep -q 'Requesting program interpreter'; then
    echo "ok $n - $(basename "$b") is statically linked"
  else
    echo "not ok $n - $(basename "$b") is not static: $desc"
  fi
done
n=$((n + 1))
start=$(date +%s%N)
prefix=$(mk/deps.sh 2>/dev/null)
ms=$(( ($(date +%s%N) - start) / 1000000 ))
expected=$(grep -oP '(?<=DEPS_PREFIX := ).*' build/deps.mk)
if [ "$prefix" = "$expected" ] && [ -f "$prefix/.complete" ] && [ "$ms" -lt 5000 ]; then
  echo "ok $n - dependency prefix is a cache hit (${ms} ms, $prefix)"
else
  echo "not ok $n - dependency prefix rebuilt or moved: '$prefix' vs '$expected' (${ms} ms)"
fi
echo "1..$n"
