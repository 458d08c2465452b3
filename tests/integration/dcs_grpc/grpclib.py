"""Helpers for the gRPC front tests (tests/integration/dcs_grpc): a 3-member appliance-dcs
cluster and a 3-member real etcd 3.4 cluster on this suite's loopback range 127.0.100.x,
etcdctl (ETCDCTL_API=3) runs, output normalisation, TAP lines, waiting on conditions
with deadlines (never bare sleeps as synchronisation)."""
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
N = 0


def ok(cond, what, detail=""):
    global N
    N += 1
    print(("ok %d - %s" if cond else "not ok %d - %s") % (N, what), flush=True)
    if not cond and detail:
        for line in str(detail).splitlines()[:40]:
            print("# " + line, flush=True)
    return cond


def done():
    print("1..%d" % N, flush=True)


def wait_for(cond, timeout, interval=0.05):
    end = time.monotonic() + timeout
    while True:
        try:
            v = cond()
        except Exception:  # noqa: BLE001 - a member may be starting while we poll
            v = None
        if v:
            return v
        if time.monotonic() >= end:
            return None
        time.sleep(interval)


_lock = None


def serialize():
    """The suite owns fixed addresses: two runs at once (two checkouts) would collide."""
    global _lock
    _lock = open("/tmp/pg-appliance-dcs-grpc-tests.lock", "a")
    end = time.monotonic() + 150
    while True:
        try:
            fcntl.flock(_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError:
            if time.monotonic() > end:
                return
            time.sleep(0.2)


def dcs_binary(release=False):
    """The sanitizer build by default (memory errors abort a member and fail the test)."""
    if not release and not os.environ.get("DCSD_BIN"):
        subprocess.run(["make", "-s", "-C", ROOT, "-f", "Makefile", "-f",
                        "tests/integration/dcsd/build.mk", "build/san/bin/appliance-dcs"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    cands = [os.environ.get("DCSD_BIN")] if os.environ.get("DCSD_BIN") else []
    if not release:
        cands.append(os.path.join(ROOT, "build/san/bin/appliance-dcs"))
    cands.append(os.path.join(ROOT, "build/bin/appliance-dcs"))
    return next((p for p in cands if p and os.path.exists(p)), None)


class Cluster:
    """kind "ours" (appliance-dcs) or "etcd"; members on 127.0.100.<base+i>."""

    def __init__(self, kind, base, n=3, binary=None, tmp=None, names=None, extra=()):
        self.kind, self.base, self.n = kind, base, n
        self.dir = tempfile.mkdtemp(prefix="dcs-grpc-%s-" % kind, dir=tmp)
        self.hosts = ["127.0.100.%d" % (base + i) for i in range(1, n + 1)]
        self.names = names or ["n%d" % i for i in range(1, n + 1)]
        self.urls = ["http://%s:2379" % h for h in self.hosts]
        self.binary = binary
        self.extra = list(extra)
        self.procs = []
        self.initial = ",".join("%s=http://%s:2380" % (nm, h)
                                for nm, h in zip(self.names, self.hosts))

    def start(self):
        for nm, h, url in zip(self.names, self.hosts, self.urls):
            exe = self.binary if self.kind == "ours" else "etcd"
            args = [exe, "--name", nm, "--data-dir", os.path.join(self.dir, nm),
                    "--listen-client-urls", url, "--advertise-client-urls", url,
                    "--listen-peer-urls", "http://%s:2380" % h,
                    "--initial-advertise-peer-urls", "http://%s:2380" % h,
                    "--initial-cluster", self.initial,
                    "--initial-cluster-token", "grpc-" + self.kind,
                    "--heartbeat-interval", "50", "--election-timeout", "500",
                    "--enable-v2"] + self.extra
            log = open(os.path.join(self.dir, nm + ".log"), "w")
            env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0")
            self.procs.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                               env=env))
            log.close()
        return self

    def healthy(self, timeout=30):
        def all_ok():
            r = etcdctl(self.urls, ["endpoint", "health"], timeout=5)
            return r[0] == 0 and (r[1] + r[2]).count("is healthy") == self.n
        return wait_for(all_ok, timeout, 0.2)

    def alive(self):
        return all(p.poll() is None for p in self.procs)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        rcs = [p.returncode for p in self.procs]
        return rcs

    def logs(self, n=30):
        out = []
        for nm in self.names:
            try:
                with open(os.path.join(self.dir, nm + ".log")) as f:
                    out.append("== %s\n%s" % (nm, "".join(f.readlines()[-n:])))
            except OSError:
                pass
        return "\n".join(out)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def etcdctl(endpoints, args, stdin=None, timeout=15):
    """(exit code, stdout, stderr without clientv3's JSON retry warnings)."""
    if isinstance(endpoints, str):
        endpoints = [endpoints]
    env = dict(os.environ, ETCDCTL_API="3")
    cmd = ["etcdctl", "--endpoints=" + ",".join(endpoints), "--dial-timeout=3s",
           "--command-timeout=5s"] + args
    try:
        p = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout,
                           env=env)
    except subprocess.TimeoutExpired as e:
        return -1, e.stdout or "", "timeout"
    err = "\n".join(line for line in p.stderr.splitlines() if not line.startswith('{"level"'))
    return p.returncode, p.stdout, err


# ---- normalisation: what legitimately differs between two clusters ----
VOLATILE_JSON = {"cluster_id", "member_id", "raft_term", "ID", "leader", "raftTerm",
                 "raftIndex", "raftAppliedIndex", "dbSize", "dbSizeInUse", "id"}
VOLATILE_COLS = {"ID", "DB SIZE", "IS LEADER", "RAFT TERM", "RAFT INDEX", "RAFT APPLIED INDEX"}


def _walk(v):
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if k in VOLATILE_JSON:
                out[k] = "*"
            elif k == "ttl" and isinstance(x, int) and x > 0:
                out[k] = "%d+-1" % ((x + 1) // 2 * 2)  # remaining TTL: +-1 s
            elif k == "members" and isinstance(x, list):
                # etcd lists members by ID, and IDs differ between clusters: by name here
                out[k] = sorted((_walk(m) for m in x), key=lambda m: str(m.get("name")))
            else:
                out[k] = _walk(x)
        return out
    if isinstance(v, list):
        return [_walk(x) for x in v]
    return v


def _text(line):
    line = re.sub(r"\b[0-9a-f]{10,16}\b", "<id>", line)  # %x IDs (no zero padding)
    line = re.sub(r"127\.0\.100\.\d+", "127.0.100.X", line)
    line = re.sub(r"took = [0-9.]+[µmn]?s", "took = T", line)
    line = re.sub(r"remaining\(\d+s\)", "remaining(Ns)", line)
    return line


def normalize(text, sort=False):
    out, header = [], None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("{") or s.startswith("["):
            try:
                out.append(_text(json.dumps(_walk(json.loads(s)), sort_keys=True)))
                continue
            except ValueError:
                pass
        if s.startswith("+-"):
            continue  # table borders: widths follow the (differing) addresses
        if s.startswith("|"):
            cells = [c.strip() for c in s.strip("|").split("|")]
            if header is None:
                header = cells
            else:
                cells = ["*" if i < len(header) and header[i] in VOLATILE_COLS else c
                         for i, c in enumerate(cells)]
            out.append("|".join(_text(c) for c in cells))
            continue
        if line.startswith("ETCD_INITIAL_CLUSTER="):  # members in ID order: IDs differ
            line = "ETCD_INITIAL_CLUSTER=" + ",".join(sorted(line.split("=", 1)[1].strip(
                '"').split(",")))
        out.append(_text(line))
    if sort:
        out.sort()
    return out
