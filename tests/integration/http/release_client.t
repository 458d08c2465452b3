#!/usr/bin/env bash
# lib/http_client as shipped: the client unit test (tests/unit/http_client_test.c) built as
# a release binary (musl, static, the private prefix's HTTP-only curl with its threaded
# resolver) and run; the sanitizer build of the same test runs as unit/http_client_test.
# test-timeout: 180
set -uo pipefail
cd "$(dirname "$0")/../../.."
bin=build/tests/http_client_test_release
if ! out=$(make -s -f Makefile -f tests/integration/http/build.mk "$bin" 2>&1); then
  echo "not ok 1 - build $bin"
  echo "$out" | sed 's/^/# /' | tail -30
  exit 1
fi
"$bin" | sed -E 's/^(ok|not ok) ([0-9]+) - /\1 \2 - release build: /'
exit "${PIPESTATUS[0]}"
