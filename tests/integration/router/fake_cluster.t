#!/usr/bin/python3
# test-timeout: 150
# appliance-router (release binary) against real etcd 3.4 and fake pg nodes: each node is a
# TCP server that answers "<name>:<data>" and a REST API whose /primary and /replica codes
# the test sets. Covers: DCS leader change moves writes (and closes sessions to the old
# primary) with the latency measured; writes never go to a node whose /primary is non-200;
# no leader -> held then refused; reads balanced and failing over; backend down/up;
# 8404 CSV header = HAProxy 2.6's, JSON, /metrics, slowloris and garbage; SIGHUP reload
# keeps established sessions; 10,000 idle clients; a bad config is refused with a clear
# message.
# ROUTER_IT_LOOPS=N runs the router with N proxying event loops (data_path.loops): every
# check then also covers the loops that are not the main one (fake_cluster_2loops.t).
# Addresses: 127.0.30.0/24 only.
import base64, json, os, shutil, signal, socket, subprocess, sys, tempfile, threading, time
import http.server, socketserver, urllib.request

ROOT = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(ROOT, "../../.."))
ROUTER = os.environ.get("ROUTER_BIN", os.path.join(REPO, "build/bin/appliance-router"))
ETCD_IP, ROUTER_IP = "127.0.30.1", "127.0.30.2"
NODES = {"pg-0": "127.0.30.10", "pg-1": "127.0.30.11", "pg-2": "127.0.30.12"}
PG_PORT, REST_PORT, ETCD_PORT = 35432, 38008, 32379
P5000, P5001, P8404 = 35000, 35001, 38404
LOOPS = int(os.environ.get("ROUTER_IT_LOOPS", "1"))
# ROUTER_IT_SPLICE: data_path.splice for the router (default auto, which is the in-kernel
# sockmap path as root, as CI runs); fake_cluster_userspace.t runs the user-space one.
SPLICE = os.environ.get("ROUTER_IT_SPLICE", "auto")
# ROUTER_IT_FORWARD=nat (fake_cluster_nat.t): 5000 is forwarded by kernel NAT rules the
# router installs (data_path.forward: nat); the router only proxies what lands on its own
# 5000 listener (no primary: held clients; over the connection limit: refused).
FORWARD = os.environ.get("ROUTER_IT_FORWARD", "proxy")
NAT = FORWARD == "nat"
# Idle clients at once: with NAT every one is a connection to the fake node (a Python
# thread each), so that variant opens fewer; the router holds none of them itself.
IDLE_N = 2000 if NAT else 10000

# A timeout (tests/run.sh sends SIGTERM) must still run the cleanup in `finally`.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

n = 0
failures = 0
def ok(cond, what, detail=""):
    global n, failures
    n += 1
    if cond:
        print(f"ok {n} - {what}", flush=True)
    else:
        failures += 1
        print(f"not ok {n} - {what}" + (f"\n# {detail}" if detail else ""), flush=True)

def wait(cond, timeout, step=0.01):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()

# ---- fake nodes ----
codes = {name: {"primary": 503, "replica": 503} for name in NODES}
rest_up = {name: True for name in NODES}
pg_conns = {name: [] for name in NODES}

class PgHandler(socketserver.BaseRequestHandler):
    def handle(self):
        name = self.server.node
        pg_conns[name].append(self.request)
        try:
            while True:
                d = self.request.recv(65536)
                if not d:
                    break
                self.request.sendall(name.encode() + b":" + d)
        except OSError:
            pass

class RestHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def log_message(self, *a):
        pass
    def answer(self):
        name = self.server.node
        if not rest_up[name]:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        path = self.path.split("?")[0]
        code = codes[name]["primary" if "primary" in path else "replica" if "replica" in path else "x"] \
            if ("primary" in path or "replica" in path) else 503
        self.send_response(code)
        self.end_headers()
    do_OPTIONS = answer
    do_GET = answer

class TS(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 4096  # kernel-NAT clients connect to the node itself, in bursts
class HS(socketserver.ThreadingMixIn, http.server.HTTPServer):
    allow_reuse_address = True
    daemon_threads = True

servers = []
for name, ip in NODES.items():
    s = TS((ip, PG_PORT), PgHandler); s.node = name
    h = HS((ip, REST_PORT), RestHandler); h.node = name
    for x in (s, h):
        threading.Thread(target=x.serve_forever, daemon=True).start()
        servers.append(x)

# ---- etcd ----
tmp = tempfile.mkdtemp(prefix="router-it-")
procs = []
def cleanup():
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    shutil.rmtree(tmp, ignore_errors=True)

etcd = subprocess.Popen(["etcd", "--name", "r1", "--data-dir", f"{tmp}/etcd",
    "--listen-client-urls", f"http://{ETCD_IP}:{ETCD_PORT}",
    "--advertise-client-urls", f"http://{ETCD_IP}:{ETCD_PORT}",
    "--listen-peer-urls", f"http://{ETCD_IP}:32380",
    "--initial-advertise-peer-urls", f"http://{ETCD_IP}:32380",
    "--initial-cluster", f"r1=http://{ETCD_IP}:32380"],
    stdout=open(f"{tmp}/etcd.log", "w"), stderr=subprocess.STDOUT)
procs.append(etcd)

def etcd_call(path, body):
    req = urllib.request.Request(f"http://{ETCD_IP}:{ETCD_PORT}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())
b64 = lambda s: base64.b64encode(s.encode()).decode()
KEY = "/service/pg-cluster/leader"
def set_leader(name):
    if name is None:
        etcd_call("/v3/kv/deleterange", {"key": b64(KEY)})
    else:
        etcd_call("/v3/kv/put", {"key": b64(KEY), "value": b64(name)})

def etcd_ready():
    try:
        etcd_call("/v3/kv/range", {"key": b64("x")})
        return True
    except Exception:
        return False

if not wait(etcd_ready, 20, 0.1):
    print("not ok 1 - etcd did not start")
    print(open(f"{tmp}/etcd.log").read()[-2000:])
    cleanup()
    sys.exit(1)

# ---- router ----
def write_config(path, backends=("pg-0", "pg-1", "pg-2"), hold_ms=1500, extra=None, max_conn=10000):
    lines = [
        "scope: pg-cluster",
        "listen:",
        f"  primary: {ROUTER_IP}:{P5000}",
        f"  replicas: {ROUTER_IP}:{P5001}",
        f"  stats: {ROUTER_IP}:{P8404}",
        "dcs:",
        f"  endpoints: [http://{ETCD_IP}:{ETCD_PORT}]",
        "checks: {interval_ms: 200, timeout_ms: 500, rise: 2, fall: 2, fast_interval_ms: 10}",
        f"limits: {{hold_ms: {hold_ms}, connect_timeout_ms: 500, max_connections: {max_conn}}}",
        "backends:",
    ]
    for b in backends:
        lines.append(f"  - {{name: {b}, host: {NODES[b]}, port: {PG_PORT}, check_port: {REST_PORT}}}")
    if extra:
        lines[lines.index("dcs:") + 1] += "\n  " + extra.split("{", 1)[1].rstrip("}").strip()
    open(path, "w").write("\n".join(lines) + "\n")

cfg = f"{tmp}/router.yml"
write_config(cfg)
rlog = open(f"{tmp}/router.log", "w")
router = subprocess.Popen([ROUTER, "-c", cfg], stdout=rlog, stderr=subprocess.STDOUT,
                          env=dict(os.environ, LOG_LEVEL="info", ROUTER_DATA_PATH_LOOPS=str(LOOPS),
                                   ROUTER_DATA_PATH_FORWARD=FORWARD,
                                   **({"ROUTER_DATA_PATH_SPLICE": SPLICE} if SPLICE else {})))
procs.append(router)

def stats_json():
    try:
        with urllib.request.urlopen(f"http://{ROUTER_IP}:{P8404}/;json", timeout=2) as r:
            return json.loads(r.read())
    except Exception:
        return None

def land(port, payload=b"hi", timeout=3.0):
    """Connects, sends, returns (node name or None, socket)."""
    s = socket.create_connection((ROUTER_IP, port), timeout=timeout)
    s.settimeout(timeout)
    try:
        s.sendall(payload)
        d = s.recv(100)
    except OSError:
        d = b""
    if not d or d.startswith(b"E\x00"):  # nothing, or a PostgreSQL ErrorResponse (refused)
        s.close()
        return None, None
    return d.split(b":")[0].decode(), s

def ended(s, timeout=2.0):
    """The session to a withdrawn target is over. The proxy closes it at once; a kernel-NAT
    flow is ended in conntrack, so the client learns on its next segment: a reset, and
    never an answer from the old node."""
    if not NAT:
        return closed_by_peer(s, timeout)
    s.settimeout(timeout)
    try:
        s.sendall(b"after")
        d = s.recv(100)
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    return d == b""

def closed_by_peer(s, timeout=2.0):
    s.settimeout(timeout)
    try:
        return s.recv(10) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False

try:
    ok(wait(lambda: stats_json() is not None, 10), "router starts and serves 8404")
    # as root (CI) auto must pick the kernel path; elsewhere it falls back with a reason
    want = SPLICE if SPLICE not in ("", "auto") else ("sockmap" if os.geteuid() == 0 else "userspace")
    log_text = open(f"{tmp}/router.log").read()
    shown = "sockmap (in-kernel)" if want == "sockmap" else want
    ok(f"data path {shown}" in log_text and (want != "userspace" or SPLICE == "userspace"
                                             or "in-kernel splicing is unavailable (" in log_text),
       f"data path {want} (data_path.splice {SPLICE or 'default'})", log_text[-800:])
    if NAT:
        ok("5000 forwarded by kernel NAT" in log_text, "data_path.forward nat: the kernel forwards 5000",
           log_text[-800:])

    # --- writes follow the DCS leader, only with a passing /primary ---
    codes["pg-0"] = {"primary": 200, "replica": 503}
    codes["pg-1"] = {"primary": 503, "replica": 200}
    codes["pg-2"] = {"primary": 503, "replica": 200}
    set_leader("pg-0")
    ok(wait(lambda: (stats_json() or {}).get("write_target") == "pg-0", 5), "leader pg-0 with /primary 200 becomes the write target")
    who, s0 = land(P5000)
    ok(who == "pg-0", "a write session lands on pg-0", f"got {who}")
    # more write sessions: with several loops the kernel spreads them over all of them
    more = [land(P5000) for _ in range(16)]
    ok(all(w == "pg-0" for w, _ in more), "16 more write sessions land on pg-0")
    if NAT:
        def nat_counted():
            j = stats_json() or {}
            be = [b for b in j.get("backends", []) if b["name"] == "pg-0"]
            return j.get("kernel_nat", {}).get("state") == "installed" and be and \
                be[0]["primary"]["current"] == 17 and be[0]["primary"]["total"] >= 17 and \
                be[0]["primary"]["bytes_in"] >= 17 * 2 and j.get("sessions") == 17 and \
                j["kernel_nat"]["sessions_total"] >= 17
        ok(wait(nat_counted, 3, 0.05), "8404 counts the 17 kernel-forwarded sessions: current, total, bytes, sessions",
           json.dumps((stats_json() or {}).get("backends", [])[:1]))
    if LOOPS > 1:
        per_loop = wait(lambda: (lambda v: v if v and len(v) == LOOPS and all(x > 0 for x in v) else None)(
            (stats_json() or {}).get("loop_sessions_total")), 3)
        ok(per_loop, f"sessions were accepted by each of the {LOOPS} loops: {per_loop}",
           str((stats_json() or {}).get("loop_sessions_total")))

    # switchover: pg-1 promoted, leader key moves
    codes["pg-0"] = {"primary": 503, "replica": 200}
    codes["pg-1"] = {"primary": 200, "replica": 503}
    t0 = time.monotonic()
    set_leader("pg-1")
    def new_conn_on_pg1():
        try:
            w, s = land(P5000, timeout=1.0)
        except OSError:
            return False
        if s:
            s.close()
        return w == "pg-1"
    landed = wait(new_conn_on_pg1, 5, 0.002)
    dt = (time.monotonic() - t0) * 1000
    print(f"# leader key change -> new connection on the new primary: {dt:.1f} ms")
    ok(landed and dt < 1000, f"writes follow the leader key change ({dt:.0f} ms)")
    if NAT:  # the kernel's flows are ended by the router's conntrack thread, just after the swap
        said = wait(lambda: "kernel-forwarded write sessions to pg-0" in open(f"{tmp}/router.log").read(), 3)
        ok(said, "the router ended the kernel's flows to the demoted primary",
           open(f"{tmp}/router.log").read()[-600:])
    ok(s0 is not None and ended(s0), "the session to the demoted primary is closed")
    ok(all(s is not None and ended(s, 1) for _, s in more), "every session to the demoted primary is closed (all loops)")

    # the DCS names pg-2 but pg-2's /primary says 503: no writes there; held, then dispatched
    set_leader("pg-2")
    ok(wait(lambda: (stats_json() or {}).get("write_target") is None, 3), "leader pg-2 with /primary 503: no write target")
    res = {}
    def held_client():
        t = time.monotonic()
        try:
            res["who"], s = land(P5000, timeout=5)
            if s:
                s.close()
        except OSError as e:
            res["who"] = repr(e)
        res["dt"] = time.monotonic() - t
    th = threading.Thread(target=held_client); th.start()
    others = [{} for _ in range(8)]  # more held clients: several loops hold theirs too
    def held_other(o):
        try:
            o["who"], s = land(P5000, timeout=5)
            if s:
                s.close()
        except OSError as e:
            o["who"] = repr(e)
    ths = [threading.Thread(target=held_other, args=(o,)) for o in others]
    for t in ths:
        t.start()
    time.sleep(0.4)
    codes["pg-1"] = {"primary": 503, "replica": 200}
    codes["pg-2"] = {"primary": 200, "replica": 503}
    th.join(6)
    for t in ths:
        t.join(6)
    ok(res.get("who") == "pg-2" and res["dt"] >= 0.3, "a client arriving without a primary is held, then served by the new one",
       str(res))
    ok(all(o.get("who") == "pg-2" for o in others), "8 more held clients are all served by the new primary", str(others))

    # leader key deleted: hold window, then a prompt refusal (never hung)
    set_leader(None)
    ok(wait(lambda: (stats_json() or {}).get("write_target") is None, 3), "leader key deleted: no write target")
    t = time.monotonic()
    who, s = land(P5000, timeout=5)
    dt = time.monotonic() - t
    ok(who is None and 1.2 < dt < 3.0, f"no primary: refused after the hold window ({dt:.2f} s)")
    # libpq (psycopg2) gets a FATAL ErrorResponse it can show, with and without SSL negotiation
    import psycopg2
    for mode in ("disable", "prefer"):
        t = time.monotonic()
        try:
            psycopg2.connect(host=ROUTER_IP, port=P5000, user="x", dbname="x", sslmode=mode, connect_timeout=5).close()
            msg = "connected?"
        except psycopg2.OperationalError as e:
            msg = str(e)
        dt = time.monotonic() - t
        ok("no primary available" in msg and dt < 3.0, f"libpq (sslmode={mode}) reports the refusal: {msg.strip()!r}")
    set_leader("pg-2")
    ok(wait(lambda: (stats_json() or {}).get("write_target") == "pg-2", 3), "leader back: pg-2 is the write target")

    # --- reads: least-conn over healthy replicas, failover, backend down/up ---
    codes["pg-0"] = {"primary": 503, "replica": 200}
    codes["pg-1"] = {"primary": 503, "replica": 200}
    ok(wait(lambda: all(b["replicas"]["up"] for b in (stats_json() or {"backends": [{"replicas": {"up": 0}}]})["backends"] if b["name"] != "pg-2"), 3),
       "pg-0 and pg-1 are read targets")
    socks = []
    seen = {}
    for i in range(6):
        w, s = land(P5001)
        seen[w] = seen.get(w, 0) + 1
        socks.append((w, s))
    ok(seen == {"pg-0": 3, "pg-1": 3}, f"6 read sessions balanced 3/3 over the replicas: {seen}")
    rest_up["pg-1"] = False  # pg-1's agent goes away
    on1 = [s for w, s in socks if w == "pg-1"]
    ok(all(closed_by_peer(s, 3) for s in on1), "a replica failing its checks loses its read sessions")
    w, s = land(P5001)
    ok(w == "pg-0", f"new reads go to the remaining replica ({w})")
    if s: s.close()
    rest_up["pg-1"] = True
    ok(wait(lambda: any(b["name"] == "pg-1" and b["replicas"]["up"] for b in (stats_json() or {"backends": []})["backends"]), 3),
       "pg-1 back up: a read target again")
    codes["pg-0"]["replica"] = 503
    codes["pg-1"]["replica"] = 503
    ok(wait(lambda: not any(b["replicas"]["up"] for b in (stats_json() or {"backends": [{"replicas": {"up": 1}}]})["backends"]), 3),
       "no replica passes")
    w, s = land(P5001)
    ok(w == "pg-2", f"reads fall back to the primary ({w})")
    if s: s.close()
    for _, s in socks:
        s.close()

    # --- 8404 ---
    with urllib.request.urlopen(f"http://{ROUTER_IP}:{P8404}/;csv", timeout=2) as r:
        csv = r.read().decode()
    ref = open(os.path.join(ROOT, "fixtures/haproxy-2.6-patroni-stats.csv")).readline().rstrip("\n")
    ok(csv.split("\n")[0] == ref, "/;csv header is HAProxy 2.6's, column for column")
    rows = [l for l in csv.split("\n")[1:] if l]
    ok(len(rows) == 10 and all(l.count(",") == ref.count(",") for l in rows), "/;csv rows: FRONTEND, 3 servers, BACKEND per listener, all columns")
    ok(any(l.startswith("primary,pg-2,") and ",UP," in l for l in rows), "/;csv shows pg-2 UP on primary")
    with urllib.request.urlopen(f"http://{ROUTER_IP}:{P8404}/metrics", timeout=2) as r:
        m = r.read().decode()
    ok('router_server_is_primary{server="pg-2"} 1' in m, "/metrics names the primary")
    with urllib.request.urlopen(f"http://{ROUTER_IP}:{P8404}/", timeout=2) as r:
        html = r.read().decode()
    ok("<table>" in html and "pg-2" in html, "/ HTML page lists the backends")

    # slowloris: a client dribbling a header is cut off; others are served meanwhile
    slow = socket.create_connection((ROUTER_IP, P8404))
    slow.sendall(b"GET / HTTP/1.1\r\n")
    t = time.monotonic()
    served = stats_json() is not None
    ok(served, "8404 serves others while a slow client dribbles")
    cut = False
    slow.settimeout(0.5)
    while time.monotonic() - t < 9:
        try:
            slow.sendall(b"X-a: b\r\n")
            d = slow.recv(4096)
            if d == b"" or d.startswith(b"HTTP/1.1 408") or d.startswith(b"HTTP/1.1 4"):
                cut = True
                break
        except socket.timeout:
            continue
        except OSError:
            cut = True
            break
    ok(cut and time.monotonic() - t < 8, f"slowloris client cut off after {time.monotonic() - t:.1f} s")
    slow.close()
    g = socket.create_connection((ROUTER_IP, P8404), timeout=3)
    g.sendall(b"\x16\x03\x01garbage\x00\xff\r\n\r\n")
    d = g.recv(100)
    ok(d.startswith(b"HTTP/1.1 400"), f"garbage on 8404 answers 400 ({d[:20]!r})")
    g.close()
    ok(stats_json() is not None and router.poll() is None, "router alive after slowloris and garbage")

    # --- IDLE_N (10,000; NAT: 2,000) concurrent idle clients on the release binary ---
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    rss0 = int([l for l in open(f"/proc/{router.pid}/status") if l.startswith("VmRSS:")][0].split()[1])
    idle = []
    try:
        for i in range(IDLE_N):
            idle.append(socket.create_connection((ROUTER_IP, P5000), timeout=5))
        ok(wait(lambda: (stats_json() or {}).get("sessions") == IDLE_N, 20), f"{IDLE_N} idle clients connected at once",
           str((stats_json() or {}).get("sessions")))
        rss1 = int([l for l in open(f"/proc/{router.pid}/status") if l.startswith("VmRSS:")][0].split()[1])
        print(f"# router VmRSS {rss0} kB -> {rss1} kB with {IDLE_N} idle clients ({(rss1 - rss0) * 1024 / IDLE_N:.0f} B each)")
        idle[-1].sendall(b"alive")
        idle[-1].settimeout(3)
        ok(idle[-1].recv(100) == b"pg-2:alive", f"one of them is served while {IDLE_N - 1} idle")
    except OSError as e:
        ok(False, f"{IDLE_N} idle clients connected at once", repr(e))
    finally:
        for c in idle:
            c.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    ok(wait(lambda: (stats_json() or {}).get("sessions") == 0, 20), f"all {IDLE_N} closed cleanly",
       str((stats_json() or {}).get("sessions")))

    # --- SIGHUP reload keeps established sessions ---
    who, keep = land(P5000)
    ok(who == "pg-2", "session on pg-2 before reload")
    write_config(cfg, backends=("pg-0", "pg-2"), hold_ms=1000)
    router.send_signal(signal.SIGHUP)
    ok(wait(lambda: len((stats_json() or {}).get("backends", [1, 2, 3])) == 2, 3), "reload applied (pg-1 removed)")
    keep.sendall(b"again")
    try:
        d = keep.recv(100)
    except OSError:
        d = b""
    ok(d == b"pg-2:again", "the established session survived the reload")
    keep.close()
    open(cfg, "w").write("checks: {interval_ms: soon}\n")
    router.send_signal(signal.SIGHUP)
    time.sleep(0.3)
    ok(router.poll() is None and stats_json() is not None, "a bad config on reload is rejected; the router keeps running")

    # --- DCS lost: the last view is kept for dcs.grace_ms, then the checks alone decide ---
    write_config(cfg, backends=("pg-0", "pg-2"), hold_ms=1000, extra="dcs: {grace_ms: 1500}")
    router.send_signal(signal.SIGHUP)
    time.sleep(0.3)
    etcd.kill()
    etcd.wait()
    ok(wait(lambda: (stats_json() or {}).get("dcs", {}).get("state") == "unknown", 8), "etcd gone: DCS view unknown")
    ok((stats_json() or {}).get("write_target") == "pg-2", "the last write target stays while the DCS is away")
    codes["pg-2"] = {"primary": 503, "replica": 200}
    codes["pg-0"] = {"primary": 200, "replica": 503}
    ok(wait(lambda: (stats_json() or {}).get("write_target") == "pg-0", 5), "without the DCS, /primary checks alone move writes")
    who, s = land(P5000)
    ok(who == "pg-0", f"writes land on pg-0 ({who})")
    if s: s.close()

    # --- limits.max_connections holds for the process, whatever loop a client lands in ---
    write_config(cfg, backends=("pg-0", "pg-2"), hold_ms=1000, extra="dcs: {grace_ms: 1500}", max_conn=6)
    router.send_signal(signal.SIGHUP)
    def slim():
        try:
            with urllib.request.urlopen(f"http://{ROUTER_IP}:{P8404}/;csv", timeout=2) as r:
                row = [l for l in r.read().decode().splitlines() if l.startswith("primary,FRONTEND,")][0]
            return row.split(",")[6]
        except Exception:
            return None
    ok(wait(lambda: slim() == "6", 3), "reload to max_connections 6 applied")
    held = [land(P5000) for _ in range(10)]
    served = sum(1 for w, _ in held if w == "pg-0")
    ok(served == 6, f"10 clients with max_connections 6: {served} served, the rest refused (all loops count)")
    for _, s in held:
        if s: s.close()

    # --- bad config at start ---
    open(cfg, "w").write("checks: {interval_ms: soon}\n")
    r = subprocess.run([ROUTER, "-c", cfg], capture_output=True, text=True, timeout=10)
    ok(r.returncode == 2 and "checks.interval_ms: 'soon' is not a non-negative integer (line 1)" in r.stderr,
       "a bad config at start exits 2 naming key, value and line", r.stderr)
finally:
    router.send_signal(signal.SIGTERM)
    try:
        router.wait(5)
        ok(router.returncode == 0, "router exits 0 on SIGTERM")
    except subprocess.TimeoutExpired:
        ok(False, "router exits 0 on SIGTERM")
    if failures:
        print("# router log tail:")
        for l in open(f"{tmp}/router.log").read().splitlines()[-40:]:
            print("# " + l)
    cleanup()
print(f"1..{n}")
sys.exit(1 if failures else 0)
