"""Helpers for the appliance-dcs integration tests: a 3-member cluster on 127.0.80.1..3
(client :2379, peer :2380), a real etcd 3.4 on 127.0.80.10, TAP output, JSON over HTTP,
and waiting on conditions with deadlines (never bare sleeps as synchronisation)."""
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def _build_san():
    """The sanitizer build catches memory errors under the tests (built on demand: the main
    Makefile includes only one directory level of module.mk)."""
    if os.environ.get("DCSD_BIN"):
        return
    subprocess.run(["make", "-s", "-C", ROOT, "-f", "Makefile", "-f",
                    "tests/integration/dcsd/build.mk", "build/san/bin/appliance-dcs"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


_build_san()
# DCSD_BIN overrides (e.g. the release binary).
BIN = os.environ.get("DCSD_BIN") or next(
    (p for p in (os.path.join(ROOT, "build/san/bin/appliance-dcs"),
                 os.path.join(ROOT, "build/bin/appliance-dcs")) if os.path.exists(p)), None)
HB, ELECTION = 50, 500  # ms: fast elections keep the tests short
N = 0


def ok(cond, what, detail=""):
    global N
    N += 1
    print(("ok %d - %s" if cond else "not ok %d - %s") % (N, what), flush=True)
    if not cond and detail:
        for line in str(detail).splitlines()[:30]:
            print("# " + line, flush=True)
    return cond


def done():
    print("1..%d" % N, flush=True)


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def unb64(s):
    return base64.b64decode(s).decode()


def http(method, url, body=None, timeout=5.0, raw=False, form=None):
    """Returns (status, parsed JSON or text, headers). Never raises for HTTP errors."""
    data = None
    headers = {}
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, text, hdrs = r.status, r.read().decode(), r.headers
    except urllib.error.HTTPError as e:
        status, text, hdrs = e.code, e.read().decode(), e.headers
    if raw:
        return status, text, hdrs
    try:
        return status, json.loads(text), hdrs
    except ValueError:
        return status, text, hdrs


def wait_for(cond, timeout, interval=0.05):
    """Polls cond() until it returns a true value or the deadline passes."""
    end = time.monotonic() + timeout
    while True:
        try:
            v = cond()
        except Exception:  # noqa: BLE001 - a member may be down while we poll
            v = None
        if v:
            return v
        if time.monotonic() >= end:
            return None
        time.sleep(interval)


class Member:
    def __init__(self, cluster, i):
        self.cluster, self.i = cluster, i
        self.name = "n%d" % i
        self.host = "127.0.80.%d" % i
        self.url = "http://%s:2379" % self.host
        self.data = os.path.join(cluster.dir, self.name)
        self.log = os.path.join(cluster.dir, self.name + ".log")
        self.proc = None

    def args(self):
        c = self.cluster
        return [BIN, "--name", self.name, "--data-dir", self.data,
                "--initial-cluster", c.initial, "--initial-cluster-token", c.token,
                "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                "--listen-peer-urls", "http://%s:2380" % self.host,
                "--initial-advertise-peer-urls", "http://%s:2380" % self.host,
                "--heartbeat-interval", str(HB), "--election-timeout", str(ELECTION)] + \
            (["--enable-v2"] if c.v2 else []) + c.extra

    def start(self, extra=()):
        logf = open(self.log, "a")
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0")
        self.proc = subprocess.Popen(self.args() + list(extra), stdout=logf, stderr=logf,
                                     env=env)
        logf.close()

    def up(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.up():
            self.proc.send_signal(sig)
        if self.proc:
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode if self.proc else None
        self.proc = None
        return rc

    def post(self, path, body, timeout=5.0):
        return http("POST", self.url + path, body, timeout=timeout)

    def status(self):
        try:
            st, j, _ = self.post("/v3/maintenance/status", {}, timeout=1)
        except OSError:
            return None
        return j if st == 200 else None

    def tail(self, n=40):
        try:
            with open(self.log) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


class Cluster:
    def __init__(self, n=3, v2=True, token="dcsd-test", extra=()):
        self.dir = tempfile.mkdtemp(prefix="dcsd-")
        self.token, self.v2, self.extra = token, v2, list(extra)
        self.members = [Member(self, i) for i in range(1, n + 1)]
        self.initial = ",".join("%s=http://%s:2380" % (m.name, m.host) for m in self.members)

    def start(self):
        for m in self.members:
            m.start()
        return self

    def leader(self, timeout=10.0, among=None):
        """The member all running members agree is the leader, or None."""
        among = among or [m for m in self.members if m.up()]

        def agreed():
            ids = set()
            for m in among:
                s = m.status()
                if not s or s.get("leader") in (None, "0"):
                    return None
                ids.add(s["leader"])
            if len(ids) != 1:
                return None
            lid = ids.pop()
            for m in self.members:
                s = m.status() if m.up() else None
                if s and s["header"]["member_id"] == lid:
                    return m
            return None
        return wait_for(agreed, timeout)

    def stop(self):
        for m in self.members:
            m.kill(signal.SIGTERM)
        shutil.rmtree(self.dir, ignore_errors=True)

    def logs(self):
        return "\n".join("== %s\n%s" % (m.name, m.tail()) for m in self.members)


_lock_fd = None


def _serialize():
    """These tests own fixed addresses (127.0.80.x:2379/2380): two runs at once (two
    checkouts, or CI next to a developer) would take each other's ports. Hold a host-wide
    lock for the whole test, waiting up to 150 s for another run to finish."""
    global _lock_fd
    import fcntl
    _lock_fd = open("/tmp/pg-appliance-dcsd-tests.lock", "a")
    end = time.monotonic() + 150
    while True:
        try:
            fcntl.flock(_lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError:
            if time.monotonic() > end:
                return  # go ahead; a collision shows up as a failed bind in the logs
            time.sleep(0.2)


def need_binary():
    _serialize()
    if not BIN:
        print("not ok 1 - appliance-dcs binary missing (run make)")
        print("1..1")
        sys.exit(1)
