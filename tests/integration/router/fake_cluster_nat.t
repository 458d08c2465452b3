#!/usr/bin/env bash
# test-timeout: 150
# fake_cluster.t with data_path.forward: nat: the router installs kernel DNAT rules for
# 5000 towards the write target it picks, and proxies only what lands on its own listener.
# Everything fake_cluster.t checks must still hold (writes follow the leader key, sessions
# to the demoted primary end, held clients, refusals, 8404 counters, reload, limits).
# Needs root (CAP_NET_ADMIN), as CI runs.
[ "$(id -u)" = 0 ] || { echo "not ok 1 - kernel NAT needs root (CAP_NET_ADMIN); CI runs as root"; exit 1; }
exec env ROUTER_IT_FORWARD=nat "$(dirname "$0")/fake_cluster.t"
