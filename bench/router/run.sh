#!/usr/bin/env bash
# appliance-router vs HAProxy 2.6 in the same run: pgbench throughput (direct / ours /
# ours with splice / HAProxy), leader-change-to-new-connection latency, RSS idle and per
# connection. Details and env knobs: bench/router/bench.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "bench/router needs root (runs postgres as user postgres)" >&2; exit 1; }
make -s build/bin/appliance-router
exec /usr/bin/python3 bench/router/bench.py
