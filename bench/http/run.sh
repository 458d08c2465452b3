#!/usr/bin/env bash
# lib/http server throughput and memory, side by side in the same run with:
#   - HAProxy 2.6 answering from its config (http-request return), one thread: the real C
#     event-loop peer the router replaces;
#   - python3 http.server (threading, HTTP/1.1 keep-alive): the floor (Patroni's REST API
#     is built on it).
# Each serves a 12-byte text body; wrk drives keep-alive GETs at 50 and 1000 connections.
# Reports requests/s, peak RSS (VmHWM) and the ratios ours/peer.
# Env: BENCH_SECONDS (default 5) per measurement.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${BENCH_SECONDS:-5}
command -v wrk >/dev/null || { echo "wrk missing: mk/packages.sh test installs it" >&2; exit 1; }
make -s -f Makefile -f tests/integration/http/build.mk build/bench/http_test_server
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

# Ours (release build: musl, static, -O2), kernel-chosen port.
build/bench/http_test_server 127.0.60.10 0 10000 60000 4096 >"$tmp/ours.out" &
pids+=($!); ours_pid=$!
# HAProxy
cat >"$tmp/haproxy.cfg" <<CFG
global
  maxconn 8192
  nbthread 1
defaults
  mode http
  timeout client 30s
  timeout connect 5s
  timeout server 30s
frontend bench
  bind 127.0.60.11:18091
  http-request return status 200 content-type text/plain string "hello world!"
CFG
haproxy -f "$tmp/haproxy.cfg" -db >"$tmp/haproxy.log" 2>&1 &
pids+=($!); haproxy_pid=$!
# python3 http.server
cat >"$tmp/py.py" <<'PY'
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "12")
        self.end_headers()
        self.wfile.write(b"hello world\n")
s = ThreadingHTTPServer(("127.0.60.12", 18092), H)
s.daemon_threads = True
s.request_queue_size = 1024
print("ready", flush=True)
s.serve_forever()
PY
python3 "$tmp/py.py" >"$tmp/py.out" 2>&1 &
pids+=($!); py_pid=$!

wait_ready() { # url
  for _ in $(seq 100); do curl -sf -o /dev/null "$1" && return 0; sleep 0.05; done
  echo "server at $1 did not come up" >&2; return 1
}
for _ in $(seq 100); do [ -s "$tmp/ours.out" ] && break; sleep 0.05; done
ours_port=$(awk '{print $2}' "$tmp/ours.out")
ours_url="http://127.0.60.10:$ours_port/hello"
haproxy_url="http://127.0.60.11:18091/"
py_url="http://127.0.60.12:18092/"
for u in "$ours_url" "$haproxy_url" "$py_url"; do wait_ready "$u"; done

rps() { # conns url -> requests/s
  local threads=2
  wrk -t"$threads" -c"$1" -d"${secs}s" --timeout 10s "$2" 2>&1 | tee -a "$tmp/wrk.log" |
    awk '/Requests\/sec/ {print $2}'
}
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

printf '%-34s %12s %12s %12s\n' "measurement" "lib/http" "haproxy" "python3"
for c in 50 1000; do
  o=$(rps "$c" "$ours_url"); h=$(rps "$c" "$haproxy_url"); p=$(rps "$c" "$py_url")
  printf '%-34s %12s %12s %12s\n' "requests/s, keep-alive, $c conns" "$o" "$h" "$p"
  printf '%-34s %12s %12s\n' "  ratio lib/http / peer" "" "$(ratio "$o" "$h")  $(ratio "$o" "$p")"
done
o=$(hwm_kb $ours_pid); h=$(hwm_kb $haproxy_pid); p=$(hwm_kb $py_pid)
printf '%-34s %12s %12s %12s\n' "peak RSS kB (after all runs)" "$o" "$h" "$p"
printf '%-34s %12s %12s\n' "  ratio lib/http / peer" "" "$(ratio "$o" "$h")  $(ratio "$o" "$p")"
if grep -q 'Socket errors' "$tmp/wrk.log"; then
  echo "note: wrk reported socket errors:"; grep 'Socket errors' "$tmp/wrk.log" | sed 's/^/  /'
fi
