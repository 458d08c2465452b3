#!/usr/bin/python3
# test-timeout: 60
# Debian's prometheus-haproxy-exporter (the one dashboards built for HAProxy use) scrapes
# our 8404 /;csv: haproxy_up is 1 with no CSV parse failures, haproxy_server_up follows
# each backend's state per listener (primary: the write target only; replicas: the nodes
# passing /replica), and the session and byte counters move with proxied traffic.
# Fake nodes (TCP "name:<data>" + REST API), no DCS. Addresses: 127.0.30.70-73 only.
import json, os, re, shutil, signal, socket, socketserver, subprocess, sys, tempfile, threading, time
import http.server, urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../.."))
ROUTER = os.environ.get("ROUTER_BIN", os.path.join(REPO, "build/bin/appliance-router"))
EXPORTER = shutil.which("prometheus-haproxy-exporter")
ROUTER_IP, EXP_IP = "127.0.30.70", "127.0.30.71"
NODES = {"pg-0": "127.0.30.72", "pg-1": "127.0.30.73"}
PG_PORT, REST_PORT, P5000, P5001, P8404, P9101 = 35470, 38070, 35070, 35071, 38470, 39101
signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

n = failures = 0
def ok(cond, what, detail=""):
    global n, failures
    n += 1
    failures += 0 if cond else 1
    print(f"{'ok' if cond else 'not ok'} {n} - {what}" + ("" if cond or not detail else f"\n# {detail}"), flush=True)

def wait(cond, timeout, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()

if not EXPORTER:
    print("not ok 1 - prometheus-haproxy-exporter is installed (mk/packages.sh test)")
    sys.exit(1)

class Pg(socketserver.BaseRequestHandler):
    def handle(self):
        try:
            while True:
                d = self.request.recv(65536)
                if not d:
                    break
                self.request.sendall(self.server.node.encode() + b":" + d)
        except OSError:
            pass
class Rest(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def log_message(self, *a):
        pass
    def answer(self):
        primary = self.server.node == "pg-0"
        self.send_response(200 if ("primary" in self.path) == primary else 503)
        body = json.dumps({"role": "master" if primary else "replica"}).encode()
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_OPTIONS = answer
class TS(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = daemon_threads = True
class HS(socketserver.ThreadingMixIn, http.server.HTTPServer):
    allow_reuse_address = daemon_threads = True
for node, ip in NODES.items():
    for srv in (TS((ip, PG_PORT), Pg), HS((ip, REST_PORT), Rest)):
        srv.node = node
        threading.Thread(target=srv.serve_forever, daemon=True).start()

tmp = tempfile.mkdtemp(prefix="router-exp-")
open(f"{tmp}/router.yml", "w").write(f"""scope: pg-cluster
listen: {{primary: '{ROUTER_IP}:{P5000}', replicas: '{ROUTER_IP}:{P5001}', stats: '{ROUTER_IP}:{P8404}'}}
checks: {{interval_ms: 200, rise: 1, fall: 1}}
replicas: {{fallback_to_primary: false}}
backends:
""" + "".join(f"  - {{name: {nm}, host: {ip}, port: {PG_PORT}, check_port: {REST_PORT}}}\n" for nm, ip in NODES.items()))
procs = []
procs.append(subprocess.Popen([ROUTER, "-c", f"{tmp}/router.yml"], stdout=open(f"{tmp}/router.log", "w"),
                              stderr=subprocess.STDOUT))
procs.append(subprocess.Popen([EXPORTER, f"--haproxy.scrape-uri=http://{ROUTER_IP}:{P8404}/;csv",
                               f"--web.listen-address={EXP_IP}:{P9101}"],
                              stdout=open(f"{tmp}/exporter.log", "w"), stderr=subprocess.STDOUT))

def metrics():
    try:
        with urllib.request.urlopen(f"http://{EXP_IP}:{P9101}/metrics", timeout=5) as r:
            text = r.read().decode()
    except Exception:
        return None
    m = {}
    for line in text.splitlines():
        mm = re.match(r'^([a-z_]+)(\{[^}]*\})? ([-+0-9.eE]+|NaN)$', line)
        if mm:
            m[mm.group(1) + (mm.group(2) or "")] = float(mm.group(3))
    return m

def get(m, name, **labels):
    for k, v in m.items():
        if k.split("{")[0] == name and all(f'{lk}="{lv}"' in k for lk, lv in labels.items()):
            return v
    return None

def roundtrips(port, count, payload=b"x" * 1000):
    s = socket.create_connection((ROUTER_IP, port), timeout=3)
    s.settimeout(3)
    for _ in range(count):
        s.sendall(payload)
        got = b""
        while len(got) < len(payload) + 5:
            d = s.recv(65536)
            if not d:
                break
            got += d
    s.close()

try:
    up = lambda: (lambda m: m if m and get(m, "haproxy_up") == 1 and
                  get(m, "haproxy_server_up", backend="primary", server="pg-0") == 1 and
                  get(m, "haproxy_server_up", backend="replicas", server="pg-1") == 1 else None)(metrics())
    m0 = wait(up, 15, 0.2)
    ok(m0 is not None, "haproxy_exporter scrapes our /;csv: haproxy_up 1",
       open(f"{tmp}/exporter.log").read()[-1500:])
    m0 = m0 or metrics() or {}
    ok(get(m0, "haproxy_exporter_csv_parse_failures_total") == 0 or get(m0, "haproxy_exporter_csv_parse_failures") == 0,
       "no CSV parse failures")
    ok(get(m0, "haproxy_server_up", backend="primary", server="pg-0") == 1 and
       get(m0, "haproxy_server_up", backend="primary", server="pg-1") == 0,
       "haproxy_server_up on primary: pg-0 1 (the write target), pg-1 0")
    ok(get(m0, "haproxy_server_up", backend="replicas", server="pg-1") == 1 and
       get(m0, "haproxy_server_up", backend="replicas", server="pg-0") == 0,
       "haproxy_server_up on replicas: pg-1 1, pg-0 0")
    ok(get(m0, "haproxy_backend_up", backend="primary") == 1, "haproxy_backend_up{backend=primary} 1")

    roundtrips(P5000, 20)
    roundtrips(P5001, 10)
    def moved():
        m = metrics()
        if not m:
            return None
        d = lambda name, **lb: (get(m, name, **lb) or 0) - (get(m0, name, **lb) or 0)
        f = {"w_sess": d("haproxy_server_sessions_total", backend="primary", server="pg-0"),
             "w_in": d("haproxy_server_bytes_in_total", backend="primary", server="pg-0"),
             "w_out": d("haproxy_server_bytes_out_total", backend="primary", server="pg-0"),
             "r_sess": d("haproxy_server_sessions_total", backend="replicas", server="pg-1"),
             "r_in": d("haproxy_server_bytes_in_total", backend="replicas", server="pg-1"),
             "fe_in": d("haproxy_frontend_bytes_in_total", frontend="primary"),
             "fe_sess": d("haproxy_frontend_sessions_total", frontend="primary"),
             "w_lb": d("haproxy_server_server_selected_total", backend="primary", server="pg-0")}
        return f if f["w_in"] >= 20000 and f["r_in"] >= 10000 else None
    f = wait(moved, 10, 0.3)
    print(f"# counter deltas after traffic: {f}")
    ok(f is not None and f["w_sess"] == 1 and f["r_sess"] == 1 and f["w_lb"] == 1,
       "haproxy_server_sessions_total (and server_selected_total) moved by one per listener", str(f))
    ok(f is not None and f["w_in"] == 20000 and f["w_out"] == 20 * 1005,
       "bytes in/out of the write session counted exactly (20 x 1000 in, 20 x 1005 out)", str(f))
    ok(f is not None and f["r_in"] == 10000, "bytes of the read session counted", str(f))
    ok(f is not None and f["fe_in"] == 20000 and f["fe_sess"] == 1, "frontend counters moved too", str(f))
finally:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
    if failures:
        for l in (open(f"{tmp}/router.log").read().splitlines()[-15:] + open(f"{tmp}/exporter.log").read().splitlines()[-15:]):
            print("# " + l)
    shutil.rmtree(tmp, ignore_errors=True)
print(f"1..{n}")
sys.exit(1 if failures else 0)
