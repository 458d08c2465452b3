#!/usr/bin/env bash
# mk/packages.sh as non-root with a package missing prints the exact apt-get line and fails
# without changing anything; with nothing missing it succeeds silently. dpkg-query is
# shimmed so that "postgresql-15" looks missing.
# test-timeout: 60
set -uo pipefail
cd "$(dirname "$0")/../.."
shim=$(mktemp -d); trap 'rm -rf "$shim"' EXIT
cat >"$shim/dpkg-query" <<'SH'
#!/bin/sh
for a; do last=$a; done
[ "$last" = postgresql-15 ] && exit 1
printf 'install ok installed'
SH
chmod 755 "$shim" "$shim/dpkg-query"
out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups env PATH="$shim:$PATH" mk/packages.sh test 2>&1); rc=$?
if [ $rc -ne 0 ] && echo "$out" | grep -q 'run as root: apt-get install -y --no-install-recommends postgresql-15$'; then
  echo "ok 1 - non-root with a missing package prints the apt-get line and fails"
else
  echo "not ok 1 - non-root output (rc $rc): $out"
fi
out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups mk/packages.sh build 2>&1); rc=$?
if [ $rc -eq 0 ] && [ -z "$out" ]; then echo "ok 2 - nothing missing: silent success"
else echo "not ok 2 - nothing missing gave rc $rc: $out"; fi
echo "1..2"
