#!/usr/bin/env bash
# test-timeout: 60
# The agent binary refuses a bad configuration before touching anything: exit status 2 and
# one message naming the key path and the offending value.
set -uo pipefail
cd "$(dirname "$0")/../../.." || exit 1
B=$PWD/build/bin/appliance-agent
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $*"; }
[ -x "$B" ] || { not_ok "build/bin/appliance-agent is built"; exit 1; }
cat >"$T/base.yml" <<'YML'
scope: s1
name: n1
restapi:
  listen: 127.0.40.10:8008
  connect_address: 127.0.40.10:8008
etcd3:
  hosts: 127.0.40.1:2379
bootstrap:
  dcs:
    ttl: 4
postgresql:
  listen: 127.0.40.10:5432
  connect_address: 127.0.40.10:5432
  data_dir: /nonexistent-agent-test/data
  authentication:
    superuser: {username: postgres, password: x}
    replication: {username: replicator, password: secret-rep}
YML
# case NAME SED-EXPR EXPECTED-MESSAGE-SUBSTRING [ENV=VALUE]
case_() {
  local name=$1 expr=$2 want=$3 env=${4:-}
  sed "$expr" "$T/base.yml" >"$T/bad.yml"
  local out rc
  out=$(timeout 5 env $env "$B" "$T/bad.yml" 2>&1 >/dev/null)
  rc=$?
  if [ "$rc" = 2 ] && [[ $out == *"$want"* ]] && [[ $out != *secret-rep* ]]; then
    ok "$name: exit 2, '$want'"
  else
    not_ok "$name: want exit 2 and '$want', got $rc: $out"
  fi
}
case_ "ttl not a number" 's/ttl: 4/ttl: abc/' "bootstrap.dcs.ttl: expected an integer, got 'abc'"
case_ "ttl out of range" 's/ttl: 4/ttl: 1/' "bootstrap.dcs.ttl: 1 is out of range"
case_ "loop_wait 0" 's/ttl: 4/loop_wait: 0/' "bootstrap.dcs.loop_wait: 0 is out of range"
case_ "data_dir missing" '/data_dir/d' "postgresql.data_dir: required key is missing"
case_ "data_dir relative" 's|data_dir: .*|data_dir: relative/x|' "postgresql.data_dir: 'relative/x' must be an absolute path"
case_ "etcd port out of range" 's/hosts: .*/hosts: "127.0.40.1:99999"/' "etcd3.hosts[0]: '127.0.40.1:99999'"
case_ "restapi.listen without port" 's/listen: 127.0.40.10:8008/listen: 127.0.40.10:port/' "restapi.listen: '127.0.40.10:port'"
case_ "postgres port out of range" 's/listen: 127.0.40.10:5432/listen: 127.0.40.10:70000/' "postgresql.listen: '127.0.40.10:70000'"
case_ "YAML syntax" 's/scope: s1/scope: [s1/' "YAML: line 2"
case_ "password missing (value never echoed)" 's/password: x}/}/' "postgresql.authentication.superuser.password: required key is missing"
case_ "unknown callback event" 's|  data_dir: /nonexistent-agent-test/data|  data_dir: /nonexistent-agent-test/data\n  callbacks: {on_boot: /bin/true}|' "postgresql.callbacks.on_boot: unknown event"
case_ "callback not a command" 's|  data_dir: /nonexistent-agent-test/data|  data_dir: /nonexistent-agent-test/data\n  callbacks: {on_start: [1]}|' "postgresql.callbacks.on_start: expected a command string"
case_ "bad name from PATRONI_NAME" 's/x/x/' "name: 'bad/name' contains a character not allowed here (value from environment variable PATRONI_NAME)" PATRONI_NAME=bad/name
case_ "bad etcd hosts from PATRONI_ETCD3_HOSTS" 's/x/x/' "PATRONI_ETCD3_HOSTS" PATRONI_ETCD3_HOSTS=host:notaport
# SPILO_CONFIGURATION / PATRONI_CONFIGURATION: merged into the file; errors name the variable
out=$(SPILO_CONFIGURATION=$'postgresql:\n  - not a mapping' timeout 5 "$B" "$T/base.yml" 2>&1); rc=$?
want="SPILO_CONFIGURATION: postgresql: expected a mapping (as in the config file), got a list"
if [ $rc = 2 ] && [[ $out == *"$want"* ]]; then ok "env YAML conflicting with the file: exit 2, '$want'"; else not_ok "env YAML conflict: $rc $out"; fi
# no file at all (as `patroni` without an argument): the whole configuration from the variable
out=$(PATRONI_CONFIGURATION="$(sed 's/ttl: 4/ttl: abc/' "$T/base.yml")" timeout 5 "$B" 2>&1); rc=$?
want="bootstrap.dcs.ttl: expected an integer, got 'abc' (value from environment variable PATRONI_CONFIGURATION)"
if [ $rc = 2 ] && [[ $out == *"$want"* ]] && [[ $out != *secret-rep* ]]; then ok "no file, PATRONI_CONFIGURATION only: read and checked ('$want')"; else not_ok "no file: $rc $out"; fi
out=$(timeout 5 "$B" 2>&1); rc=$?
if [ $rc = 2 ] && [[ $out == *usage:* ]]; then ok "no file and no configuration variable: usage, exit 2"; else not_ok "no args: $rc $out"; fi
out=$(timeout 5 "$B" "$T/missing.yml" 2>&1); rc=$?
if [ $rc = 2 ] && [[ $out == *"missing.yml"* ]]; then ok "missing file named"; else not_ok "missing file: $rc $out"; fi
echo "1..$n"
