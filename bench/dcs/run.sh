#!/usr/bin/env bash
# appliance-dcs vs real etcd 3.4, side by side in the same run: the same 3-member loopback
# topology for both (ours 127.0.80.31-33, etcd 127.0.80.41-43), data directories on the
# same filesystem (BENCH_DIR, default /var/tmp), fsync on for both (etcd always syncs; ours
# fdatasyncs every Ready batch), the same load generator (wrk, keep-alive POST
# /v3/kv/put of 1000 keys x 64-byte values, sent to the leader) at 1 and 16 connections.
# Reports puts/s, p50/p99 latency, puts per leader WAL fdatasync at 16 connections (group
# commit), RSS of the leader idle and after load, and ratios
# ours/etcd (throughput: higher is better; latency and RSS: lower is better).
# Env: BENCH_SECONDS (default 10) per measurement; DCS_BIN measures another appliance-dcs
# binary (no make); BENCH_KEEP=DIR keeps the members' logs and data there.
# BENCH_PUTS=N (e.g. 1000000) adds a count-bounded load: N puts at 16 connections over a
# bounded key space of 10,000 keys (like etcd's benchmark --key-space-size; 64-byte
# values) on each cluster, then reports the leaders' RSS and the disk use of the data
# directories (leader and all three members) after it.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${BENCH_SECONDS:-10}
command -v wrk >/dev/null || { echo "wrk missing: mk/packages.sh test installs it" >&2; exit 1; }
dcs_bin=${DCS_BIN:-build/bin/appliance-dcs}
[ -n "${DCS_BIN:-}" ] || make -s build/bin/appliance-dcs
tmp=$(mktemp -d -p "${BENCH_DIR:-/var/tmp}" dcs-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; [ -n "${BENCH_KEEP:-}" ] && cp -r "$tmp" "$BENCH_KEEP"; rm -rf "$tmp"; }
trap cleanup EXIT

start_cluster() { # kind base(31|41)
  local kind=$1 base=$2 ic="" i
  for i in 1 2 3; do ic+="${ic:+,}m$i=http://127.0.80.$((base + i - 1)):2380"; done
  for i in 1 2 3; do
    local ip=127.0.80.$((base + i - 1)) bin=$dcs_bin
    [ "$kind" = etcd ] && bin=etcd
    "$bin" --name m$i --data-dir "$tmp/$kind$i" --initial-cluster "$ic" \
      --initial-cluster-token bench-$kind --listen-client-urls http://$ip:2379 \
      --advertise-client-urls http://$ip:2379 --listen-peer-urls http://$ip:2380 \
      --initial-advertise-peer-urls http://$ip:2380 >"$tmp/$kind$i.log" 2>&1 &
    pids+=($!)
    eval "${kind}_pid$i=$!"
  done
}

leader_of() { # base -> "ip pid-var-index" of the leader
  local base=$1 i st lid mid
  for _ in $(seq 100); do
    for i in 1 2 3; do
      st=$(curl -s -m 1 -XPOST http://127.0.80.$((base + i - 1)):2379/v3/maintenance/status -d '{}' || true)
      lid=$(echo "$st" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j.get("leader",""))' 2>/dev/null || true)
      mid=$(echo "$st" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["header"]["member_id"])' 2>/dev/null || true)
      if [ -n "$lid" ] && [ "$lid" != 0 ] && [ "$lid" = "$mid" ]; then echo "127.0.80.$((base + i - 1)) $i"; return; fi
    done
    sleep 0.1
  done
  echo "no leader at base $base" >&2; exit 1
}

revision() { curl -s -m 5 -XPOST "http://$1:2379/v3/maintenance/status" -d '{}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])' 2>/dev/null || echo 0; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# wrk script: 1000 pre-encoded put bodies, round robin
python3 - "$tmp/put.lua" <<'PY'
import base64, sys
bodies = []
for i in range(1000):
    k = base64.b64encode(b"bench/key%04d" % i).decode()
    v = base64.b64encode(b"v" * 64).decode()
    bodies.append('{"key":"%s","value":"%s"}' % (k, v))
with open(sys.argv[1], "w") as f:
    f.write("local bodies = {\n" + ",\n".join('"%s"' % b.replace('"', '\\"') for b in bodies) + "}\n")
    f.write("""local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, "/v3/kv/put", nil, bodies[i])
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %.0f %.3f %.3f %d\\n", summary.requests,
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status + summary.errors.connect +
    summary.errors.read + summary.errors.write + summary.errors.timeout))
end
""")
PY

# count-bounded load over 10,000 keys (stopped from outside, see below)
python3 - "$tmp/count.lua" <<'PY'
import base64, sys
path = sys.argv[1]
v = base64.b64encode(b"v" * 64).decode()
bodies = ['{"key":"%s","value":"%s"}' % (base64.b64encode(b"bench/k%05d" % i).decode(), v)
          for i in range(10000)]
with open(path, "w") as f:
    f.write("local bodies = {\n" + ",\n".join('"%s"' % b.replace('"', '\\"') for b in bodies) + "}\n")
    f.write("""init = function(args)
  k = math.random(0, 9999)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end
request = function()
  k = k % #bodies + 1
  return wrk.format(nil, "/v3/kv/put", nil, bodies[k])
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %.0f %.3f %.3f %d\\n", summary.requests,
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status + summary.errors.connect +
    summary.errors.read + summary.errors.write + summary.errors.timeout))
end
""")
PY

start_cluster ours 31
start_cluster etcd 41
read -r ours_ip ours_i < <(leader_of 31)
read -r etcd_ip etcd_i < <(leader_of 41)
ours_pid=$(eval echo "\$ours_pid$ours_i"); etcd_pid=$(eval echo "\$etcd_pid$etcd_i")
sleep 1
idle_ours=$(rss_kb "$ours_pid"); idle_etcd=$(rss_kb "$etcd_pid")

declare -A R F
fsyncs() { curl -s -m 5 "http://$1:2379/metrics" | awk '/^etcd_disk_wal_fsync_duration_seconds_count/ {print $2}'; }
run() { # kind ip conns; also the leader's WAL fdatasyncs during the run (F)
  local out threads=$(( $3 < 2 ? 1 : 2 )) f0
  f0=$(fsyncs "$2")
  out=$(wrk -t"$threads" -c"$3" -d"${secs}s" -s "$tmp/put.lua" "http://$2:2379" | grep RESULT)
  R[$1,$3]=$out
  F[$1,$3]=$(( $(fsyncs "$2") - f0 ))
}
for c in 1 16; do
  run ours "$ours_ip" $c
  run etcd "$etcd_ip" $c
done
load_ours=$(rss_kb "$ours_pid"); load_etcd=$(rss_kb "$etcd_pid")
# the disk's share of the tail: both leaders' WAL fdatasync histograms (same metric name)
fsync_tail() { # ip -> "count >4ms% >16ms%"
  curl -s -m 5 "http://$1:2379/metrics" | python3 -c '
import sys
b = {}
for ln in sys.stdin:
    if ln.startswith("etcd_disk_wal_fsync_duration_seconds_bucket"):
        le = ln.split("le=\"")[1].split("\"")[0]
        b[le] = float(ln.split()[-1])
n = b.get("+Inf", 0) or 1
print("%d %.2f %.2f" % (n, 100 * (n - b.get("0.004", 0)) / n, 100 * (n - b.get("0.016", 0)) / n))'
}
read -r fs_n_o fs4_o fs16_o < <(fsync_tail "$ours_ip"); read -r fs_n_e fs4_e fs16_e < <(fsync_tail "$etcd_ip")
if [ "${BENCH_PUTS:-0}" -gt 0 ]; then
  for k in ours etcd; do
    ip=$ours_ip; [ $k = etcd ] && ip=$etcd_ip
    # wrk's main thread sleeps for -d whatever its threads do: stop it with SIGINT (it then
    # reports) once the revision shows BENCH_PUTS more puts
    r0=$(revision "$ip")
    wrk -t2 -c16 -d3600s -s "$tmp/count.lua" "http://$ip:2379" >"$tmp/wrk.$k" &
    w=$!
    while kill -0 $w 2>/dev/null && [ $(( $(revision "$ip") - r0 )) -lt "$BENCH_PUTS" ]; do sleep 1; done
    kill -INT $w 2>/dev/null || true
    wait $w || true
    R[$k,N]=$(grep RESULT "$tmp/wrk.$k")
  done
  sleep 6 # one compaction check and snapshot write after the load (ours checks every 5 s)
  n_ours=$(rss_kb "$ours_pid"); n_etcd=$(rss_kb "$etcd_pid")
  du_l_o=$(du -sk "$tmp/ours$ours_i" | cut -f1); du_l_e=$(du -sk "$tmp/etcd$etcd_i" | cut -f1)
  du_a_o=$(du -sck "$tmp"/ours[123] | tail -1 | cut -f1); du_a_e=$(du -sck "$tmp"/etcd[123] | tail -1 | cut -f1)
fi

ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print('%.2f' % (a/b) if b else 'n/a')" "$1" "$2"; }
printf '%-22s %12s %12s %8s\n' "metric" "appliance" "etcd-3.4" "ratio"
for c in 1 16; do
  read -r _ n_o rps_o p50_o p99_o err_o <<<"${R[ours,$c]}"
  read -r _ n_e rps_e p50_e p99_e err_e <<<"${R[etcd,$c]}"
  printf '%-22s %12s %12s %8s\n' "puts/s c=$c" "$rps_o" "$rps_e" "$(ratio "$rps_o" "$rps_e")"
  printf '%-22s %12s %12s %8s\n' "p50 ms c=$c" "$p50_o" "$p50_e" "$(ratio "$p50_o" "$p50_e")"
  printf '%-22s %12s %12s %8s\n' "p99 ms c=$c" "$p99_o" "$p99_e" "$(ratio "$p99_o" "$p99_e")"
  printf '%-22s %12s %12s\n' "errors c=$c" "$err_o" "$err_e"
done
total_o=$(( $(echo "${R[ours,1]}" | awk '{print $2}') + $(echo "${R[ours,16]}" | awk '{print $2}') ))
printf '%-22s %12s %12s %8s\n' "RSS idle (kB)" "$idle_ours" "$idle_etcd" "$(ratio "$idle_ours" "$idle_etcd")"
printf '%-22s %12s %12s %8s\n' "RSS after load (kB)" "$load_ours" "$load_etcd" "$(ratio "$load_ours" "$load_etcd")"
# group commit: puts per leader fdatasync at 16 connections (both sync every batch)
per_sync() { python3 -c "import sys; n,f=int(sys.argv[1]),int(sys.argv[2]); print('%.2f' % (n/f) if f>0 else 'n/a')" "$1" "$2"; }
printf '%-22s %12s %12s\n' "puts/fsync c=16" "$(per_sync "$(echo "${R[ours,16]}" | awk '{print $2}')" "${F[ours,16]}")" \
  "$(per_sync "$(echo "${R[etcd,16]}" | awk '{print $2}')" "${F[etcd,16]}")"
printf '%-22s %12s %12s\n' "leader fsyncs" "$fs_n_o" "$fs_n_e"
printf '%-22s %12s %12s\n' "  of them > 4 ms (%)" "$fs4_o" "$fs4_e"
printf '%-22s %12s %12s\n' "  of them > 16 ms (%)" "$fs16_o" "$fs16_e"
echo "(leaders; after $total_o puts on ours)"
if [ "${BENCH_PUTS:-0}" -gt 0 ]; then
  read -r _ n_o rps_o p50_o p99_o err_o <<<"${R[ours,N]}"
  read -r _ n_e rps_e p50_e p99_e err_e <<<"${R[etcd,N]}"
  echo "--- $BENCH_PUTS puts at 16 connections, 10,000-key space (after the runs above) ---"
  printf '%-22s %12s %12s %8s\n' "puts done" "$n_o" "$n_e" ""
  printf '%-22s %12s %12s %8s\n' "puts/s" "$rps_o" "$rps_e" "$(ratio "$rps_o" "$rps_e")"
  printf '%-22s %12s %12s %8s\n' "p99 ms" "$p99_o" "$p99_e" "$(ratio "$p99_o" "$p99_e")"
  printf '%-22s %12s %12s\n' "errors" "$err_o" "$err_e"
  printf '%-22s %12s %12s %8s\n' "RSS leader (kB)" "$n_ours" "$n_etcd" "$(ratio "$n_ours" "$n_etcd")"
  printf '%-22s %12s %12s %8s\n' "disk leader (kB)" "$du_l_o" "$du_l_e" "$(ratio "$du_l_o" "$du_l_e")"
  printf '%-22s %12s %12s %8s\n' "disk 3 members (kB)" "$du_a_o" "$du_a_e" "$(ratio "$du_a_o" "$du_a_e")"
fi
