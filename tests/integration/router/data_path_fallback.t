#!/usr/bin/python3
# test-timeout: 60
# appliance-router without CAP_BPF (run as uid 65534, as in a container without cap_add):
# data_path.splice auto falls back to the user-space data path with one log line saying
# why, and proxies; sockmap (explicitly asked for) refuses to start with a message naming
# the key and the reason. As root, auto takes the kernel path (the same session, checked
# with the same traffic and exact 8404 byte counts). The same for data_path.forward (kernel
# NAT for 5000, needs CAP_NET_ADMIN): auto falls back to the proxy with one line, nat
# refuses to start without it; as root nat forwards and 8404 counts the flow.
# Addresses 127.0.30.80-82.
import json, os, re, signal, socket, socketserver, http.server, subprocess, sys, tempfile, threading, time
import urllib.request

ROOT = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(ROOT, "../../.."))
ROUTER = os.environ.get("ROUTER_BIN", os.path.join(REPO, "build/bin/appliance-router"))
ROUTER_IP, PG_IP = "127.0.30.80", "127.0.30.81"
PG_PORT, REST_PORT = 45432, 48008
n = 0
failures = 0


def ok(cond, what, detail=""):
    global n, failures
    n += 1
    print(f"{'ok' if cond else 'not ok'} {n} - {what}", flush=True)
    if not cond:
        failures += 1
        for line in str(detail).splitlines()[-15:]:
            print(f"# {line}")


def wait(cond, timeout, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()


if os.geteuid() != 0:
    print("1..0 # SKIP needs root to run the router with and without CAP_BPF")
    sys.exit(0)


class Pg(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            d = self.request.recv(65536)
            if not d:
                break
            self.request.sendall(b"pg:" + d)


class Rest(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *a):
        pass

    def answer(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
    do_GET = do_OPTIONS = answer


class TS(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = daemon_threads = True


class HS(socketserver.ThreadingMixIn, http.server.HTTPServer):
    allow_reuse_address = daemon_threads = True


for srv in (TS((PG_IP, PG_PORT), Pg), HS((PG_IP, REST_PORT), Rest)):
    threading.Thread(target=srv.serve_forever, daemon=True).start()

tmp = tempfile.mkdtemp(prefix="router-fallback-")
os.chmod(tmp, 0o755)
nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]


def run_router(splice, port, as_nobody, forward="proxy"):
    cfg = f"{tmp}/r{port}.yml"
    open(cfg, "w").write(f"""listen: {{primary: '{ROUTER_IP}:{port}', replicas: '', stats: '{ROUTER_IP}:{port + 1}'}}
checks: {{interval_ms: 200, rise: 1, fall: 1, primary_role: false}}
data_path: {{splice: {splice}, forward: {forward}}}
backends:
  - {{name: pg-0, host: {PG_IP}, port: {PG_PORT}, check_port: {REST_PORT}}}
""")
    os.chmod(cfg, 0o644)
    log = f"{tmp}/r{port}.log"
    p = subprocess.Popen((nobody if as_nobody else []) + [ROUTER, "-c", cfg], stdout=open(log, "w"),
                         stderr=subprocess.STDOUT, env=dict(os.environ, LOG_LEVEL="info"))
    return p, log


def stats(port):
    try:
        with urllib.request.urlopen(f"http://{ROUTER_IP}:{port + 1}/;json", timeout=2) as r:
            return json.loads(r.read())
    except Exception:
        return None


def traffic(port):
    """10 round trips of 1000 bytes; True when every answer came back whole."""
    s = socket.create_connection((ROUTER_IP, port), timeout=3)
    s.settimeout(3)
    good = True
    for _ in range(10):
        s.sendall(b"y" * 1000)
        got = b""
        while len(got) < 1003:
            d = s.recv(65536)
            if not d:
                break
            got += d
        good &= got == b"pg:" + b"y" * 1000
    s.close()
    return good


def bytes_in_out(port):
    try:
        with urllib.request.urlopen(f"http://{ROUTER_IP}:{port + 1}/;csv", timeout=2) as r:
            for line in r.read().decode().splitlines():
                f = line.split(",")
                if f[:2] == ["primary", "pg-0"]:
                    return int(f[8]), int(f[9])
    except Exception:
        return None
    return None


procs = []


def refused_start(splice, port, forward="proxy"):
    """Runs the router as uid 65534 and waits for it to give up: (exit code or None, log)."""
    p, log = run_router(splice, port, True, forward=forward)
    procs.append(p)
    try:
        rc = p.wait(10)
    except subprocess.TimeoutExpired:
        rc = None
    return rc, open(log).read()


try:
    for port, as_nobody, want in ((45000, True, "userspace"), (45010, False, "sockmap (in-kernel)")):
        who = "uid 65534 (no CAP_BPF)" if as_nobody else "root"
        p, log = run_router("auto", port, as_nobody)
        procs.append(p)
        up = wait(lambda: (stats(port) or {}).get("write_target") == "pg-0", 10)
        text = open(log).read()
        ok(up and f"data path {want}" in text, f"{who}: auto starts with data path {want}", text)
        if as_nobody:
            lines = [l for l in text.splitlines() if "in-kernel splicing is unavailable" in l]
            ok(len(lines) == 1 and re.search(r"\(bpf\(BPF_\w+[^)]*\): Operation not permitted", lines[0]),
               f"{who}: one log line says why: {lines[0].strip() if lines else '(none)'}", text)
        ok(traffic(port), f"{who}: 10 round trips of 1000 bytes proxied")
        moved = wait(lambda: (lambda b: b if b and b[0] >= 10000 else None)(bytes_in_out(port)), 3)
        ok(moved == (10000, 10030), f"{who}: 8404 bytes in/out exact after the session: {moved}")
        if not as_nobody:
            # a reload cannot switch the data path of a running router: it says so and keeps it
            cfg = f"{tmp}/r{port}.yml"
            text = open(cfg).read().replace("splice: auto", "splice: userspace")
            open(cfg, "w").write(text)
            p.send_signal(signal.SIGHUP)
            said = wait(lambda: "data_path.splice applies at start only (running sockmap)" in open(log).read(), 5)
            ok(said and traffic(port), "root: a reload asking for userspace warns, keeps sockmap, still proxies",
               open(log).read()[-600:])
    # kernel NAT for 5000: without CAP_NET_ADMIN auto proxies (one line saying why), nat
    # refuses to start; as root the kernel forwards and 8404 still counts the session
    p, log = run_router("userspace", 45030, True, forward="auto")
    procs.append(p)
    up = wait(lambda: (stats(45030) or {}).get("write_target") == "pg-0", 10)
    text = open(log).read()
    lines = [l for l in text.splitlines() if "kernel NAT is unavailable" in l]
    ok(up and len(lines) == 1 and "Operation not permitted" in lines[0] and traffic(45030)
       and (stats(45030) or {}).get("kernel_nat", {}).get("state") == "off",
       f"uid 65534: forward auto proxies 5000, one log line says why: {lines[0].strip() if lines else '(none)'}",
       text)
    rc, text = refused_start("userspace", 45040, forward="nat")
    ok(rc == 1 and "data_path.forward is nat, but nf_tables" in text and "Operation not permitted" in text,
       f"uid 65534: forward nat refuses to start (exit {rc}) naming the key and reason", text)
    p, log = run_router("userspace", 45050, False, forward="nat")
    procs.append(p)
    up = wait(lambda: (stats(45050) or {}).get("kernel_nat", {}).get("state") == "installed", 10)
    ok(up and traffic(45050), "root: forward nat: 10 round trips of 1000 bytes forwarded by the kernel",
       open(log).read())
    # conntrack counts IP bytes (headers included): at least the payload, both ways
    moved = wait(lambda: (lambda b: b if b and b[0] >= 10000 and b[1] >= 10030 else None)(bytes_in_out(45050)), 5)
    st = stats(45050) or {}
    ok(moved and st.get("kernel_nat", {}).get("sessions_total") == 1 and st.get("sessions") == 0,
       f"root: 8404 counts the kernel-forwarded session: bytes {moved}, kernel sessions "
       f"{st.get('kernel_nat')}, open now {st.get('sessions')}", json.dumps(st)[:600])
    cfg = f"{tmp}/r45050.yml"
    text = open(cfg).read().replace("forward: nat", "forward: proxy")
    open(cfg, "w").write(text)
    p.send_signal(signal.SIGHUP)
    said = wait(lambda: "data_path.forward applies at start only (running nat)" in open(log).read(), 5)
    ok(said and traffic(45050) and (stats(45050) or {}).get("kernel_nat", {}).get("sessions_total") == 2,
       "root: a reload asking for forward proxy warns and keeps the kernel path", open(log).read()[-600:])
    # sockmap asked for explicitly, without the capability: refuse to start, say why
    rc, text = refused_start("sockmap", 45020)
    ok(rc == 1 and "data_path.splice is sockmap, but bpf(" in text,
       f"uid 65534: splice sockmap refuses to start (exit {rc}) naming the key and reason", text)
finally:
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
print(f"1..{n}")
sys.exit(1 if failures else 0)
