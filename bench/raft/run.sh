#!/usr/bin/env bash
# Raft benchmarks (issue 3). There is no "real peer" to compare the core with here, so this
# suite reports absolute figures and one ratio:
#   1. entries committed per second by the raft core in the simulator: 3 members,
#      zero-latency network, the real WAL code on the simulated disk (core overhead);
#   2. WAL append + fdatasync on the real disk (build/ directory): group commit (64 entries
#      per fdatasync, as the Ready loop batches) versus one fdatasync per entry, and the ratio.
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s build/sim/raft-sim-fast build/sim/wal-bench >/dev/null
echo "-- raft core in the simulator"
build/sim/raft-sim-fast --bench "${RAFT_BENCH_ENTRIES:-200000}"
echo "-- WAL on the real disk ($(df -T build | awk 'NR==2 {print $2}') under build/)"
dir=$(mktemp -d build/wal-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT
build/sim/wal-bench "$dir" "${WAL_BENCH_GROUP:-50000}" 64 "${WAL_BENCH_SINGLE:-1000}"
