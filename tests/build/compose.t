#!/usr/bin/env bash
# compose.yaml is valid for docker-compose v1, names the seven roles, publishes the router
# ports, and refuses to start with DEFAULT_DATA_DIR unset (no data written to a surprise
# place).
# test-timeout: 60
set -uo pipefail
cd "$(dirname "$0")/../.."
n=0
t() { n=$((n + 1)); if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; fi; }
out=$(DEFAULT_DATA_DIR=/srv/x docker-compose -f compose.yaml config 2>&1); rc=$?
t "docker-compose accepts compose.yaml" '[ $rc -eq 0 ] || { echo "$out" | sed "s/^/# /"; false; }'
services=$(DEFAULT_DATA_DIR=/srv/x docker-compose -f compose.yaml config --services 2>/dev/null | sort | tr '\n' ' ')
t "services are the seven roles" '[ "$services" = "etcd-1 etcd-2 etcd-3 pg-0 pg-1 pg-2 pg-cluster-init pg-router " ] || { echo "# got: $services"; false; }'
t "router publishes 5000, 5001, 8404" 'for p in 5000 5001 8404; do echo "$out" | grep -q "published: $p\|$p:$p" || exit 1; done'
unset_out=$(env -u DEFAULT_DATA_DIR docker-compose -f compose.yaml config 2>&1); unset_rc=$?
t "unset DEFAULT_DATA_DIR fails loudly" '[ $unset_rc -ne 0 ] && echo "$unset_out" | grep -q "set DEFAULT_DATA_DIR"'
echo "1..$n"
