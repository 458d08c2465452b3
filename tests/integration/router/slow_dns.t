#!/usr/bin/python3
# test-timeout: 90
# Name resolution does not block the proxy. The router (release binary, musl) runs in a
# mount namespace whose /etc/resolv.conf points at a test name server on 127.0.30.53:53
# that first stays silent (every lookup of a backend name hangs for the resolver timeout,
# 3 s) and later answers. Meanwhile a client keeps doing round trips through 5000 to a
# backend with a numeric address: none may wait for the hanging lookups (inline lookups
# stalled the loop for the whole timeout). Then the name server answers and the named
# backend, re-resolved after its failures, takes 5001 sessions.
# Addresses: 127.0.30.0/24 only (50-61 here).
import os, shutil, signal, socket, struct, subprocess, sys, tempfile, threading, time
import http.server, socketserver, urllib.request, json

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../.."))
ROUTER = os.environ.get("ROUTER_BIN", os.path.join(REPO, "build/bin/appliance-router"))
DNS_IP, ROUTER_IP, FAST_IP, SLOW_IP = "127.0.30.53", "127.0.30.50", "127.0.30.60", "127.0.30.61"
NAME = "slow-pg.router-test.invalid"
PG_PORT, REST_PORT = 35440, 38040
P5000, P5001, P8404 = 35050, 35051, 38450
signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

n = failures = 0
def ok(cond, what, detail=""):
    global n, failures
    n += 1
    failures += 0 if cond else 1
    print(f"{'ok' if cond else 'not ok'} {n} - {what}" + ("" if cond or not detail else f"\n# {detail}"), flush=True)

def wait(cond, timeout, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()

# ---- test name server: silent, then answering NAME with SLOW_IP ----
dns = {"answer": False, "queries": 0}
def dns_serve(sock):
    while True:
        try:
            q, peer = sock.recvfrom(512)
        except OSError:
            return
        if len(q) < 12:
            continue
        qname_end = q.index(b"\x00", 12) + 5  # name, type, class
        labels, i = [], 12
        while q[i]:
            labels.append(q[i + 1:i + 1 + q[i]].decode(errors="replace"))
            i += 1 + q[i]
        if ".".join(labels).lower() != NAME:
            continue
        qtype = struct.unpack("!H", q[qname_end - 4:qname_end - 2])[0]
        dns["queries"] += 1
        if not dns["answer"]:
            continue  # silent: the client waits for its timeout
        an = b""
        if qtype == 1:
            an = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 5, 4) + socket.inet_aton(SLOW_IP)
        hdr = q[:2] + struct.pack("!HHHHH", 0x8180, 1, 1 if an else 0, 0, 0)
        sock.sendto(hdr + q[12:qname_end] + an, peer)

dsock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dsock.bind((DNS_IP, 53))
threading.Thread(target=dns_serve, args=(dsock,), daemon=True).start()

# ---- fake nodes: TCP "name:<data>" and a REST API (fast: primary, slow: replica) ----
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
        primary = self.server.node == "fast"
        self.send_response(200 if ("primary" in self.path) == primary else 503)
        self.send_header("Content-Type", "application/json")
        body = json.dumps({"role": "master" if primary else "replica"}).encode()
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_OPTIONS = answer
class TS(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = daemon_threads = True
class HS(socketserver.ThreadingMixIn, http.server.HTTPServer):
    allow_reuse_address = daemon_threads = True
for node, ip in (("fast", FAST_IP), ("slow", SLOW_IP)):
    for srv in (TS((ip, PG_PORT), Pg), HS((ip, REST_PORT), Rest)):
        srv.node = node
        threading.Thread(target=srv.serve_forever, daemon=True).start()

tmp = tempfile.mkdtemp(prefix="router-dns-")
open(f"{tmp}/resolv.conf", "w").write(f"nameserver {DNS_IP}\noptions timeout:3 attempts:1\n")
open(f"{tmp}/router.yml", "w").write(f"""scope: pg-cluster
listen: {{primary: '{ROUTER_IP}:{P5000}', replicas: '{ROUTER_IP}:{P5001}', stats: '{ROUTER_IP}:{P8404}'}}
checks: {{interval_ms: 200, rise: 1, fall: 1}}
replicas: {{fallback_to_primary: false}}
backends:
  - {{name: fast, host: {FAST_IP}, port: {PG_PORT}, check_port: {REST_PORT}}}
  - {{name: slow, host: {NAME}, port: {PG_PORT}, check_host: {SLOW_IP}, check_port: {REST_PORT}}}
""")
t_start = time.monotonic()
router = subprocess.Popen(["unshare", "-m", "sh", "-c",
                           f"mount --bind {tmp}/resolv.conf /etc/resolv.conf && exec {ROUTER} -c {tmp}/router.yml"],
                          stdout=open(f"{tmp}/router.log", "w"), stderr=subprocess.STDOUT)

def stats():
    try:
        with urllib.request.urlopen(f"http://{ROUTER_IP}:{P8404}/;json", timeout=1) as r:
            return json.loads(r.read())
    except Exception:
        return None

def land(port, timeout=2.0):
    try:
        s = socket.create_connection((ROUTER_IP, port), timeout=timeout)
        s.settimeout(timeout)
        s.sendall(b"x")
        d = s.recv(100)
        s.close()
        return d.split(b":")[0].decode() if d and not d.startswith(b"E") else None
    except OSError:
        return None

try:
    ready = wait(lambda: (stats() or {}).get("write_target") == "fast", 10)
    dt = time.monotonic() - t_start
    ok(ready and dt < 2.5, f"router up with the numeric backend as write target in {dt:.2f} s "
       "(the named backend's lookup hangs for 3 s meanwhile)")
    ok(wait(lambda: dns["queries"] > 0, 5), f"the backend name was looked up ({dns['queries']} queries so far)")

    # Round trips through 5000 for 7 s: two full hanging lookups (3 s each) and their retries.
    worst, trips, bad = 0.0, 0, 0
    q0 = dns["queries"]
    s = socket.create_connection((ROUTER_IP, P5000), timeout=5)
    s.settimeout(5)
    end = time.monotonic() + 7
    while time.monotonic() < end:
        t = time.monotonic()
        try:
            s.sendall(b"ping")
            d = s.recv(100)
        except OSError:
            d = b""
        worst = max(worst, time.monotonic() - t)
        trips += 1
        bad += d != b"fast:ping"
        time.sleep(0.01)
    s.close()
    print(f"# {trips} round trips while lookups hung: worst {worst * 1000:.1f} ms; {dns['queries'] - q0} queries")
    ok(bad == 0 and trips > 100, f"{trips} round trips through 5000 all answered by the numeric backend")
    ok(worst < 0.5, f"no round trip waited for a hanging lookup (worst {worst * 1000:.1f} ms, a lookup hangs 3000 ms)")
    st = stats()
    ok(st is not None and st["sessions"] >= 0, "8404 answers while lookups hang")
    ok(dns["queries"] - q0 >= 2, f"a failed lookup is retried ({dns['queries'] - q0} more queries in 7 s)")
    ok(land(P5001) is None, "no read target while the replica's name does not resolve")

    dns["answer"] = True
    got = wait(lambda: land(P5001, 1.0) == "slow", 10, 0.2)
    ok(got, "once the name server answers, the named replica is re-resolved and takes 5001 sessions")
finally:
    router.send_signal(signal.SIGTERM)
    try:
        router.wait(5)
        ok(router.returncode == 0, "router exits 0 on SIGTERM (a lookup may still hang)")
    except subprocess.TimeoutExpired:
        router.kill()
        ok(False, "router exits 0 on SIGTERM (a lookup may still hang)")
    if failures:
        for l in open(f"{tmp}/router.log").read().splitlines()[-30:]:
            print("# " + l)
    shutil.rmtree(tmp, ignore_errors=True)
print(f"1..{n}")
sys.exit(1 if failures else 0)
