#!/usr/bin/env bash
# test-timeout: 30
# appliancectl's command line without a cluster: --help/-h/help and version work with no
# config file anywhere (exit 0, stdout), an unknown command or no command prints the usage
# on stderr and exits 2, a missing config file for a cluster command exits 2 naming it.
cd "$(dirname "$0")/../../.." || exit 1
ctl=build/bin/appliancectl
n=0
check() { local d=$1; shift; n=$((n + 1)); if "$@"; then echo "ok $n - $d"; else echo "not ok $n - $d"; fi; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
export APPLIANCE_CONFIG=$T/does-not-exist.yml
run() { "$ctl" "$@" >"$T/out" 2>"$T/err"; echo $? >"$T/rc"; }
for a in --help -h help; do
  run "$a"
  check "appliancectl $a: exit 0, usage on stdout, nothing on stderr, no config needed" \
    bash -c "[ \$(cat $T/rc) = 0 ] && grep -q '^usage: appliancectl' $T/out && grep -q 'provision' $T/out && [ ! -s $T/err ]"
done
run -c /nonexistent.yml --help
check "appliancectl -c MISSING --help: still exit 0" [ "$(cat "$T/rc")" = 0 ]
run version
check "appliancectl version: exit 0, one line naming the version" \
  bash -c "[ \$(cat $T/rc) = 0 ] && grep -qE '^appliancectl [0-9]+\.[0-9]+' $T/out && [ \$(wc -l <$T/out) = 1 ]"
run frobnicate
check "unknown command: exit 2, usage and the command named on stderr, stdout empty" \
  bash -c "[ \$(cat $T/rc) = 2 ] && grep -q \"unknown command 'frobnicate'\" $T/err && grep -q '^usage: appliancectl' $T/err && [ ! -s $T/out ]"
run
check "no command: exit 2, usage on stderr" bash -c "[ \$(cat $T/rc) = 2 ] && grep -q '^usage:' $T/err"
run list
check "list with a missing config file: exit 2 naming the file" \
  bash -c "[ \$(cat $T/rc) = 2 ] && grep -q 'does-not-exist.yml' $T/err"
run provision --frob
check "provision with an unknown option: exit 2, its usage" bash -c "[ \$(cat $T/rc) = 2 ] && grep -q '^usage: appliancectl provision' $T/err"
run provision --file "$T/none.sql"
check "provision with a missing SQL file: exit 2 naming it" bash -c "[ \$(cat $T/rc) = 2 ] && grep -q 'none.sql' $T/err"
printf 'SELECT 1;\n\\connect x\n' >"$T/meta.sql"
run provision --file "$T/meta.sql" --host 127.0.40.99 --timeout 1
check "provision refuses unsupported psql meta-commands before connecting (exit 2, line named)" \
  bash -c "[ \$(cat $T/rc) = 2 ] && grep -q 'meta.sql: line 2: psql meta-command .connect is not supported' $T/err"
echo "1..$n"
