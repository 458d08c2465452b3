#!/usr/bin/env bash
# Log multiplexing under appliance-init as PID 1: 4 children x 100,000 lines arrive whole,
# in order, none lost; a flooding child does not stall the others or init, and what a
# slow stdout makes us drop is counted and reported; LOG_FORMAT=json lines parse.
# test-timeout: 120
source "$(dirname "$0")/lib.sh"
need "$INIT" "$PROBE"

# --- 4 x 100,000 lines, lengths 9..208 bytes, to a file ---
: >"$T/lines.services"
for c in c1 c2 c3 c4; do echo "$c -- $PROBE lines $c 100000" >>"$T/lines.services"; done
t0=$(now_ms)
run_ns lines APPLIANCE_NAME=box -- --services "$T/lines.services"
dt=$(( $(now_ms) - t0 ))
verdict=$(python3 - "$T/lines.out" <<'PY'
import sys, re
rec = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z box/cmd (c[1-4])\[(\d+)\]: (c[1-4]) (\d{7}) (x*)$")
nxt = {b"c%d" % i: 0 for i in range(1, 5)}
bad = 0
for line in open(sys.argv[1], "rb"):
    line = line.rstrip(b"\n")
    if b" appliance-init[" in line:
        continue
    m = rec.match(line)
    if not m or m.group(1) != m.group(3):
        bad += 1
        continue
    who, seq, pad = m.group(1), int(m.group(4)), len(m.group(5))
    if seq != nxt[who] or pad != seq * 7 % 200:
        bad += 1
    nxt[who] = seq + 1
ok = bad == 0 and all(v == 100000 for v in nxt.values())
print("ok" if ok else "bad", bad, *[nxt[k] for k in sorted(nxt)])
PY
)
if [ "$RC" -eq 0 ] && [[ $verdict == ok* ]]; then
  ok "4 children x 100,000 lines: none torn, interleaved, reordered or lost (${dt} ms)"
else nok "4 x 100,000 lines (rc $RC): $verdict"; grep -v 'c[1-4] [0-9]\{7\}' "$T/lines.out" | head -5 | sed 's/^/#   /'; fi
rm -f "$T/lines.out"

# --- a flooding child next to a ticking one, init's stdout read slowly (1.6 MB/s) ---
cat >"$T/flood.services" <<SV
flood -- $PROBE flood
ticker -- $PROBE tick 30 100
SV
slow_reader() { python3 -c '
import sys, time
out = open(sys.argv[1], "wb")
r = sys.stdin.buffer.raw
while True:
    b = r.read(8192)
    if not b:
        break
    out.write(b); out.flush()
    time.sleep(0.005)
' "$1"; }
env unshare --pid --fork --mount-proc "$INIT" --services "$T/flood.services" 2>"$T/flood.err" | slow_reader "$T/flood.out" &
FP=$!
cleanup_pids+=("$FP")
ticks_done() { grep -q 'ticker\[[0-9]*\]: tick 29 ' "$T/flood.out" 2>/dev/null && grep -q 'ticker\[[0-9]*\] exited' "$T/flood.out"; }
if wait_for 20 ticks_done; then ok "the ticking child's lines all got through while the other flooded"
else nok "ticker lines got through next to a flood"; fi
ipid=$(pgrep -f "appliance-init --services $T/flood.services" | while read -r p; do
  [ "$(awk '{print $4}' /proc/$p/stat)" != "$$" ] && echo "$p"; done | tail -1)
t0=$(now_ms); kill -TERM "$ipid" 2>/dev/null
wait_for 10 proc_gone "$ipid"; gone=$?; dt=$(( $(now_ms) - t0 ))
wait "$FP"
check "init answers SIGTERM promptly during the flood (${dt} ms)" [ "$gone" -eq 0 ]
# Latency from the ticker's write (its own wall clock) to init reading it (the record's
# timestamp): init kept serving the ticker's pipe while the flooder filled its own.
max_lat=$(python3 - "$T/flood.out" <<'PY'
import sys, re, datetime
m = 0
for line in open(sys.argv[1], errors="replace"):
    r = re.match(r"(\S+)Z \S+ ticker\[\d+\]: tick \d+ (\d+)$", line)
    if r:
        t = datetime.datetime.strptime(r.group(1), "%Y-%m-%dT%H:%M:%S.%f")
        ms = int(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)
        m = max(m, ms - int(r.group(2)))
print(m)
PY
)
check "each tick read by init within ${max_lat} ms of being written (< 300 ms) despite the flood" [ "$max_lat" -lt 300 ]
n_ticks=$(grep -cE 'ticker\[[0-9]+\]: tick [0-9]+ ' "$T/flood.out")
check "no tick line dropped ($n_ticks of 30)" [ "$n_ticks" -eq 30 ]
if grep -qE 'warn: dropped [0-9]+ record\(s\) \([0-9]+ bytes\) of flood\[[0-9]+\] stdout' "$T/flood.out"; then
  ok "the flooder's dropped lines are counted and reported: $(grep -oE 'dropped [0-9]+ record' "$T/flood.out" | head -1)"
else nok "flood drops reported"; tail -3 "$T/flood.out" | cut -c1-200 | sed 's/^/#   /'; fi
torn=$(grep -cvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{12}Z appliance/cmd [a-z-]+\[[0-9]+\]: ' "$T/flood.out")
check "every record in the slow stream is whole ($torn malformed)" [ "$torn" -eq 0 ]

# --- JSON lines ---
long=$(head -c 20000 /dev/zero | tr '\0' 'y')
run_ns json LOG_FORMAT=json HOSTNAME=pg-0 ROLE= -- /bin/sh -c "printf 'tab\there \"q\" \\\\ \\001\n'; echo err >&2; echo $long"
jv=$(python3 - "$T/json.out" <<'PY'
import sys, json
recs = [json.loads(l) for l in open(sys.argv[1])]
ok = all(set(r) >= {"time", "container", "role", "child", "pid", "stream", "msg"} for r in recs)
ok &= any(r["msg"] == 'tab\there "q" \\ \x01' and r["stream"] == "stdout" for r in recs)
ok &= any(r["msg"] == "err" and r["stream"] == "stderr" for r in recs)
parts = [r for r in recs if r["msg"].startswith("yyy")]
ok &= len(parts) == 2 and parts[0].get("continues") is True and "continues" not in parts[1]
ok &= sum(len(r["msg"]) for r in parts) == 20000
ok &= all(r["container"] == "pg-0" and r["role"] == "cmd" for r in recs)
print("ok" if ok else "bad")
PY
)
check "LOG_FORMAT=json: every line parses, escapes round-trip, 20 KB line split and marked" [ "$jv" = ok ]
echo "1..$n"
