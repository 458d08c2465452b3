#!/usr/bin/env bash
# etcd's gRPC API: appliance-dcs vs real etcd 3.4 side by side in the same run, the same
# 3-member loopback topology for both (ours 127.0.100.21-23, etcd 127.0.100.31-33), data
# directories on the same filesystem (BENCH_DIR, default /var/tmp), fsync on for both.
#  1. What an operator feels: wall time of `etcdctl put` and `etcdctl get` (a whole
#     etcdctl process: dial, one RPC, exit) against the leader, BENCH_OPS runs each,
#     median and p90.
#  2. The server alone: h2load (nghttp2's HTTP/2 load generator) sending gRPC KV/Put and
#     linearizable KV/Range messages to the leader at 1 and 16 connections (one stream at
#     a time per connection), BENCH_REQS requests each: requests/s and mean latency.
# Ratios are ours/etcd (time: lower is better; requests/s: higher is better).
# Env: BENCH_OPS (default 50), BENCH_REQS (default 4000), DCS_BIN (no make).
set -euo pipefail
cd "$(dirname "$0")/../.."
ops=${BENCH_OPS:-50}
reqs=${BENCH_REQS:-4000}
for t in etcd etcdctl h2load python3; do
  command -v $t >/dev/null || { echo "$t missing: mk/packages.sh test installs it" >&2; exit 1; }
done
dcs_bin=${DCS_BIN:-build/bin/appliance-dcs}
[ -n "${DCS_BIN:-}" ] || make -s build/bin/appliance-dcs
tmp=$(mktemp -d -p "${BENCH_DIR:-/var/tmp}" dcs-grpc-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
export ETCDCTL_API=3

start_cluster() { # kind base
  local kind=$1 base=$2 ic="" i
  for i in 1 2 3; do ic+="${ic:+,}m$i=http://127.0.100.$((base + i)):2380"; done
  for i in 1 2 3; do
    local ip=127.0.100.$((base + i)) bin=$dcs_bin
    [ "$kind" = etcd ] && bin=etcd
    "$bin" --name m$i --data-dir "$tmp/$kind$i" --initial-cluster "$ic" \
      --initial-cluster-token bench-grpc-$kind --listen-client-urls http://$ip:2379 \
      --advertise-client-urls http://$ip:2379 --listen-peer-urls http://$ip:2380 \
      --initial-advertise-peer-urls http://$ip:2380 >"$tmp/$kind$i.log" 2>&1 &
    pids+=($!)
  done
}

leader_url() { # base -> client URL of the leader (asked over gRPC)
  local base=$1 eps="" i
  for i in 1 2 3; do eps+="${eps:+,}http://127.0.100.$((base + i)):2379"; done
  for _ in $(seq 150); do
    local u
    u=$(etcdctl --endpoints="$eps" endpoint status -w json 2>/dev/null | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    if e["Status"]["leader"] == e["Status"]["header"]["member_id"]:
        print(e["Endpoint"])' 2>/dev/null || true)
    [ -n "$u" ] && { echo "$u"; return; }
    sleep 0.1
  done
  echo "no leader at base $base" >&2; exit 1
}

start_cluster ours 20
start_cluster etcd 30
ours=$(leader_url 20)
etcd=$(leader_url 30)
echo "leaders: ours $ours, etcd $etcd"

# gRPC request bodies for h2load: 5-byte message prefix + protobuf
python3 - "$tmp" <<'PY'
import struct, sys
def v(n):
    out = bytearray()
    while True:
        b = n & 0x7f; n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n: return bytes(out)
def f(num, payload): return v(num << 3 | 2) + v(len(payload)) + payload
put = f(1, b"bench/grpc-key") + f(2, b"v" * 64)
rng = f(1, b"bench/grpc-key")
for name, m in (("put", put), ("range", rng)):
    open(sys.argv[1] + "/" + name + ".bin", "wb").write(b"\0" + struct.pack(">I", len(m)) + m)
PY

# 1. etcdctl wall time per command (median, p90) in ms; ours and etcd alternate run by run
#    so a load change on the host hits both alike
etcdctl_times() { # verb args... -> "ours_median ours_p90 etcd_median etcd_p90"
  python3 - "$ours" "$etcd" "$ops" "$@" <<'PY'
import subprocess, sys, time
urls, n, args = sys.argv[1:3], int(sys.argv[3]), sys.argv[4:]
ts = {u: [] for u in urls}
for i in range(n):
    for u in urls:
        a = [x.replace("{i}", str(i)) for x in args]
        t = time.perf_counter()
        r = subprocess.run(["etcdctl", "--endpoints=" + u] + a, capture_output=True)
        ts[u].append((time.perf_counter() - t) * 1000)
        if r.returncode != 0:
            sys.exit("etcdctl failed: " + r.stderr.decode()[-300:])
out = []
for u in urls:
    v = sorted(ts[u])
    out += ["%.2f" % v[len(v) // 2], "%.2f" % v[int(len(v) * 0.9)]]
print(" ".join(out))
PY
}

ratio() { python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print('%.2f' % (a / b) if b else 'n/a')" "$1" "$2"; }

printf '\n%-34s %12s %12s %8s\n' "etcdctl (whole process), ms" "ours" "etcd" "ratio"
for verb in put get; do
  if [ $verb = put ]; then args=(put "bench/etcdctl-{i}" value-{i}); else args=(get bench/etcdctl-1); fi
  read -r om o9 em e9 < <(etcdctl_times "${args[@]}")
  printf '%-34s %12s %12s %8s\n' "etcdctl $verb median" "$om" "$em" "$(ratio "$om" "$em")"
  printf '%-34s %12s %12s %8s\n' "etcdctl $verb p90" "$o9" "$e9" "$(ratio "$o9" "$e9")"
done

# 2. h2load: server-side gRPC latency and throughput
h2() { # url method body conns -> "req/s mean_ms"
  local url=$1 method=$2 body=$3 c=$4 out
  out=$(h2load -n "$reqs" -c "$c" -m 1 -d "$body" -H 'content-type: application/grpc' \
        -H 'te: trailers' "$url/etcdserverpb.KV/$method" 2>&1)
  echo "$out" | grep -q "$reqs succeeded" || { echo "h2load $method on $url failed: $out" >&2; exit 1; }
  echo "$out" | python3 -c '
import re, sys
t = sys.stdin.read()
rps = re.search(r"finished in [0-9.]+m?s, ([0-9.]+) req/s", t).group(1)
m = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", t).group(1)  # the mean
unit = re.sub(r"[0-9.]", "", m)
ms = {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit] * float(re.match(r"[0-9.]+", m).group(0))
print(rps, "%.3f" % ms)'
}

printf '\n%-34s %12s %12s %8s\n' "gRPC via h2load" "ours" "etcd" "ratio"
for c in 1 16; do
  for m in Put Range; do
    body="$tmp/put.bin"; [ $m = Range ] && body="$tmp/range.bin"
    read -r orps oms < <(h2 "$ours" $m "$body" $c)
    read -r erps ems < <(h2 "$etcd" $m "$body" $c)
    printf '%-34s %12s %12s %8s\n' "$m c=$c req/s" "$orps" "$erps" "$(ratio "$orps" "$erps")"
    printf '%-34s %12s %12s %8s\n' "$m c=$c mean latency ms" "$oms" "$ems" "$(ratio "$oms" "$ems")"
  done
done
# the puts landed (h2load counts HTTP statuses, not grpc-status)
n=$(etcdctl --endpoints="$ours" get bench/grpc-key -w json | python3 -c 'import json,sys; print(json.load(sys.stdin)["kvs"][0]["version"])')
echo "ours: bench/grpc-key version $n after the Put runs"
