#!/usr/bin/python3
"""Soak: the shipped HA timing under load while the DCS leader is killed again and again.

Issue #5 asks for zero spurious failovers in a 30-minute soak with pgbench load and DCS
leader kills, and for the default ttl/loop_wait to be justified by it. This runs the whole
stack as local processes on 127.0.90.0/24 (its own range, so it can run beside the tests):

  appliance-dcs x3   127.0.90.1..3:2379/2380
  appliance-agent x3 127.0.90.10..12 (postgres :5432, REST :8008), configs/postgresN.yml
                     with only addresses, scope and data_dir changed: the shipped timing
  appliance-router   127.0.90.20:5000/5001/8404

Load for DURATION seconds: pgbench TPC-B-like through the router's write port in 60 s
segments (a segment with an aborted client means a session broke: only a failover or a
crash does that) and the write probe (tests/integration/agent/probe.py) inserting every
50 ms directly on every node (it detects two writable nodes at once). Every KILL_EVERY
seconds the DCS Raft leader is found (/v3/maintenance/status) and killed with SIGKILL;
the time until a write through the surviving members succeeds is recorded; the member is
restarted RESTART_AFTER seconds later and must rejoin.

A monitor reads the leader key and every agent's /patroni twice a second. Spurious
failover = the leader key changed or vanished, a timeline changed, an agent reported a role
other than the one it had, a pgbench segment aborted, or the probe saw an overlap. The
report prints one line per event and a summary; exit status 1 if any of those happened.

Environment: DURATION (1800), KILL_EVERY (60), RESTART_AFTER (5), PGBENCH_CLIENTS (4),
SOAK_KEEP=1 keeps the work dir,
SOAK_BIN=DIR takes the binaries from DIR instead of build/bin. Must run as root (postgres runs as the postgres user).
"""
import base64
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("SOAK_BIN") or os.path.join(REPO, "build", "bin")
PGBIN = "/usr/lib/postgresql/15/bin"
NET = "127.0.90"
SCOPE = "soak"
DCS_IPS = [f"{NET}.{n}" for n in (1, 2, 3)]
PG_IPS = [f"{NET}.{10 + n}" for n in (0, 1, 2)]
ROUTER_IP = f"{NET}.20"

DURATION = int(os.environ.get("DURATION", "1800"))
KILL_EVERY = float(os.environ.get("KILL_EVERY", "60"))
RESTART_AFTER = float(os.environ.get("RESTART_AFTER", "5"))
CLIENTS = int(os.environ.get("PGBENCH_CLIENTS", "4"))

events = []  # (ms since start, text)
events_lock = threading.Lock()
T0 = time.monotonic()


def now_s():
    return time.monotonic() - T0


def event(text):
    with events_lock:
        events.append((now_s(), text))
    print(f"# [{now_s():7.1f}s] {text}", flush=True)


def b64(s):
    return base64.b64encode(s.encode()).decode()


def http_json(url, body=None, timeout=1.0):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


class Proc:
    """One daemon in its own session, output appended to WORK/NAME.log."""

    def __init__(self, work, name, argv, env=None):
        self.work, self.name, self.argv, self.env = work, name, argv, env
        self.p = None

    def start(self):
        log = open(os.path.join(self.work, self.name + ".log"), "ab")
        self.p = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True,
                                  env=self.env)
        log.close()

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            try:
                os.killpg(self.p.pid, sig)
            except ProcessLookupError:
                pass

    def wait(self, timeout):
        try:
            self.p.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


class Cluster:
    def __init__(self, work):
        self.work = work
        self.dcs = []
        self.agents = []
        self.router = None
        self.password = None

    # ---- DCS ----
    def dcs_proc(self, n):
        ip = DCS_IPS[n]
        cluster = ",".join(f"s{m + 1}=http://{DCS_IPS[m]}:2380" for m in range(3))
        data = os.path.join(self.work, f"dcs-{n + 1}")
        state = "existing" if os.path.isdir(data) and os.listdir(data) else "new"
        os.makedirs(data, exist_ok=True)
        return Proc(self.work, f"dcs-{n + 1}", [
            os.path.join(BIN, "appliance-dcs"), "--name", f"s{n + 1}", "--data-dir", data,
            "--listen-client-urls", f"http://{ip}:2379", "--advertise-client-urls", f"http://{ip}:2379",
            "--listen-peer-urls", f"http://{ip}:2380", "--initial-advertise-peer-urls", f"http://{ip}:2380",
            "--initial-cluster", cluster, "--initial-cluster-state", state,
            "--initial-cluster-token", SCOPE])

    def dcs_put(self, key, value, only=None):
        for i, ip in enumerate(DCS_IPS):
            if only is not None and i not in only:
                continue
            try:
                http_json(f"http://{ip}:2379/v3/kv/put", {"key": b64(key), "value": b64(value)}, 1.0)
                return True
            except Exception:
                continue
        return False

    def dcs_get(self, key):
        """(ok, value): ok False when no member answered a linearizable read."""
        for ip in DCS_IPS:
            try:
                r = http_json(f"http://{ip}:2379/v3/kv/range", {"key": b64(key)}, 1.0)
            except Exception:
                continue
            kvs = r.get("kvs") or []
            return True, (base64.b64decode(kvs[0]["value"]).decode() if kvs else None)
        return False, None

    def dcs_leader_index(self):
        for i, ip in enumerate(DCS_IPS):
            if not self.dcs[i].alive():
                continue
            try:
                r = http_json(f"http://{ip}:2379/v3/maintenance/status", {}, 1.0)
            except Exception:
                continue
            leader = r.get("leader")
            if not leader or leader == "0":
                continue
            for j, jp in enumerate(DCS_IPS):
                try:
                    s = http_json(f"http://{jp}:2379/v3/maintenance/status", {}, 1.0)
                except Exception:
                    continue
                if s.get("header", {}).get("member_id") == leader:
                    return j
        return None

    def dcs_healthy(self, i):
        try:
            http_json(f"http://{DCS_IPS[i]}:2379/v3/kv/range", {"key": b64("/soak-health")}, 1.0)
            return True
        except Exception:
            return False

    # ---- agents ----
    def agent_conf(self, n):
        with open(os.path.join(REPO, "configs", f"postgres{n}.yml")) as f:
            c = yaml.safe_load(f)
        ip = PG_IPS[n]
        c["scope"] = SCOPE
        c["restapi"]["listen"] = c["restapi"]["connect_address"] = f"{ip}:8008"
        c["etcd3"]["hosts"] = ",".join(f"{d}:2379" for d in DCS_IPS)
        pg = c["postgresql"]
        pg["listen"] = pg["connect_address"] = f"{ip}:5432"
        home = os.path.join(self.work, f"pg-{n}")
        os.makedirs(home, exist_ok=True)
        shutil.chown(home, "postgres", "postgres")
        pg["data_dir"] = os.path.join(home, "data")
        self.password = pg["authentication"]["superuser"]["password"]
        path = os.path.join(self.work, f"pg-{n}.yml")
        with open(path, "w") as f:
            yaml.safe_dump(c, f)
        return path, c["bootstrap"]["dcs"]

    def rest(self, n, path):
        return http_json(f"http://{PG_IPS[n]}:8008{path}", None, 1.0)

    def postmaster_pid(self, n):
        try:
            with open(os.path.join(self.work, f"pg-{n}", "data", "postmaster.pid")) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    # ---- router ----
    def router_conf(self):
        with open(os.path.join(REPO, "configs", "router.yml")) as f:
            c = yaml.safe_load(f)
        c["scope"] = SCOPE
        c["listen"] = {"primary": f"{ROUTER_IP}:5000", "replicas": f"{ROUTER_IP}:5001",
                       "stats": f"{ROUTER_IP}:8404"}
        c["dcs"]["endpoints"] = [f"http://{d}:2379" for d in DCS_IPS]
        c["backends"] = [{"name": f"pg-{n}", "host": PG_IPS[n], "port": 5432, "check_port": 8008}
                         for n in range(3)]
        path = os.path.join(self.work, "router.yml")
        with open(path, "w") as f:
            yaml.safe_dump(c, f)
        return path


def wait_until(limit, cond, what):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            if cond():
                return True
        except Exception:
            pass
        time.sleep(0.1)
    raise SystemExit(f"soak: timed out after {limit}s waiting for {what}")


def psql(ip, port, sql, password):
    env = dict(os.environ, PGPASSWORD=password, PGCONNECT_TIMEOUT="2")
    r = subprocess.run([f"{PGBIN}/psql", "-X", "-q", "-At", "-h", ip, "-p", str(port), "-U", "postgres",
                        "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       capture_output=True, text=True, env=env, timeout=10)
    return r.stdout.strip() if r.returncode == 0 else None


class Monitor(threading.Thread):
    """Leader key + every agent's role/timeline, twice a second; records every change."""

    def __init__(self, cl):
        super().__init__(daemon=True)
        self.cl = cl
        self.stop = threading.Event()
        self.leader = None
        self.roles = {}
        self.timelines = {}
        self.leader_changes = 0
        self.role_changes = 0
        self.timeline_changes = 0
        self.dcs_unreadable = 0

    def run(self):
        while not self.stop.is_set():
            ok, leader = self.cl.dcs_get(f"/service/{SCOPE}/leader")
            if not ok:
                self.dcs_unreadable += 1
            elif leader != self.leader:
                if self.leader is not None:
                    self.leader_changes += 1
                    event(f"LEADER KEY CHANGED: {self.leader} -> {leader}")
                self.leader = leader
            for n in range(3):
                try:
                    p = self.cl.rest(n, "/patroni")
                except Exception:
                    continue
                role, tl = p.get("role"), p.get("timeline")
                if n in self.roles and role != self.roles[n]:
                    self.role_changes += 1
                    event(f"pg-{n} ROLE CHANGED: {self.roles[n]} -> {role}")
                self.roles[n] = role
                if tl is not None:
                    if n in self.timelines and tl != self.timelines[n]:
                        self.timeline_changes += 1
                        event(f"pg-{n} TIMELINE CHANGED: {self.timelines[n]} -> {tl}")
                    self.timelines[n] = tl
            self.stop.wait(0.5)


class Load(threading.Thread):
    """pgbench TPC-B-like through the router's write port in 60 s segments."""

    def __init__(self, cl, work, end_at):
        super().__init__(daemon=True)
        self.cl, self.work, self.end_at = cl, work, end_at
        self.segments = []  # (tps, ok, transactions)
        self.stop = threading.Event()
        self.proc = None

    def run(self):
        env = dict(os.environ, PGPASSWORD=self.cl.password)
        while not self.stop.is_set():
            left = int(self.end_at - now_s())
            if left < 5:
                break
            seg = min(60, left)
            self.proc = subprocess.Popen(
                ["/usr/bin/pgbench", "-h", ROUTER_IP, "-p", "5000", "-U", "postgres", "-n",
                 "-c", str(CLIENTS), "-j", "2", "-T", str(seg), "postgres"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
            out, _ = self.proc.communicate()
            tps = re.search(r"tps = ([0-9.]+)", out)
            tx = re.search(r"number of transactions actually processed: (\d+)", out)
            failed = re.search(r"number of failed transactions: (\d+)", out)
            aborted = ("aborted" in out or self.proc.returncode != 0
                       or (failed is not None and int(failed.group(1)) > 0))
            if self.stop.is_set() and aborted:
                break  # cut short by the end of the soak
            self.segments.append((float(tps.group(1)) if tps else 0.0, not aborted,
                                  int(tx.group(1)) if tx else 0))
            if aborted:
                tail = " | ".join(out.strip().splitlines()[-4:])
                event(f"PGBENCH SEGMENT ABORTED (exit {self.proc.returncode}): {tail}")
                with open(os.path.join(self.work, "pgbench-aborts.log"), "a") as f:
                    f.write(out + "\n----\n")


def main():
    global BIN
    if os.geteuid() != 0:
        raise SystemExit("soak: run as root (postgres runs as the postgres user)")
    for b in ("appliance-dcs", "appliance-agent", "appliance-router"):
        if not os.access(os.path.join(BIN, b), os.X_OK):
            raise SystemExit(f"soak: build/bin/{b} is not built (run make)")
    work = tempfile.mkdtemp(prefix="soak.", dir="/tmp")
    os.chmod(work, 0o755)
    # Private copies: other work may rebuild build/bin during a 30-minute run, and a DCS
    # member restarted mid-soak must run the same binary as the others.
    own = os.path.join(work, "bin")
    os.makedirs(own)
    for b in ("appliance-dcs", "appliance-agent", "appliance-router"):
        shutil.copy2(os.path.join(BIN, b), own)
    BIN = own
    cl = Cluster(work)
    procs = []
    failed = False
    try:
        print(f"# work dir {work}; DURATION={DURATION}s KILL_EVERY={KILL_EVERY}s "
              f"RESTART_AFTER={RESTART_AFTER}s pgbench clients={CLIENTS}", flush=True)
        for n in range(3):
            cl.dcs.append(cl.dcs_proc(n))
            cl.dcs[n].start()
            procs.append(cl.dcs[n])
        for n in range(3):
            wait_until(30, lambda n=n: cl.dcs_healthy(n), f"DCS member {n + 1}")
        timing = None
        for n in range(3):
            path, timing = cl.agent_conf(n)
            a = Proc(work, f"pg-{n}", [os.path.join(BIN, "appliance-agent"), path])
            a.start()
            cl.agents.append(a)
            procs.append(a)
        print(f"# shipped timing: ttl={timing['ttl']} loop_wait={timing['loop_wait']} "
              f"retry_timeout={timing['retry_timeout']} failsafe_mode={timing.get('failsafe_mode')}",
              flush=True)
        cl.router = Proc(work, "router", [os.path.join(BIN, "appliance-router"), "-c", cl.router_conf()])
        cl.router.start()
        procs.append(cl.router)
        wait_until(90, lambda: cl.dcs_get(f"/service/{SCOPE}/leader")[1], "a pg leader")
        leader = cl.dcs_get(f"/service/{SCOPE}/leader")[1]
        for n in range(3):
            if f"pg-{n}" == leader:
                continue
            wait_until(120, lambda n=n: psql(PG_IPS[n], 5432, "SELECT status FROM pg_stat_wal_receiver",
                                             cl.password) == "streaming", f"pg-{n} streaming")
        wait_until(30, lambda: psql(ROUTER_IP, 5000, "SELECT 1", cl.password) == "1", "router write port")
        env = dict(os.environ, PGPASSWORD=cl.password)
        subprocess.run(["/usr/bin/pgbench", "-h", ROUTER_IP, "-p", "5000", "-U", "postgres", "-i", "-s", "5",
                        "-q", "postgres"], check=True, env=env, capture_output=True)
        psql(ROUTER_IP, 5000, "CREATE TABLE IF NOT EXISTS probe(id bigserial primary key, host text, t bigint)",
             cl.password)
        print(f"# cluster ready at {now_s():.1f}s: leader {leader}", flush=True)

        rss0 = {p.name: rss_kb(p.p.pid) for p in procs}
        start = now_s()
        end_at = start + DURATION
        mon = Monitor(cl)
        mon.start()
        probe_out = os.path.join(work, "probe.out")
        probe_stop = os.path.join(work, "probe.stop")
        probe = Proc(work, "probe", ["/usr/bin/python3", os.path.join(REPO, "tests/integration/agent/probe.py"),
                                     "run", probe_out, probe_stop, cl.password] + PG_IPS)
        probe.start()
        probe_t0_ms = int(time.time() * 1000)
        load = Load(cl, work, end_at)
        load.start()

        kills = []  # (member, resume_ms)
        rejoin_fail = 0
        next_kill = start + KILL_EVERY
        while now_s() < end_at:
            time.sleep(min(1.0, max(0.0, end_at - now_s())))
            if now_s() < next_kill or now_s() > end_at - 10:
                continue
            i = cl.dcs_leader_index()
            if i is None:
                event("no DCS leader found to kill (will retry)")
                next_kill = now_s() + 5
                continue
            cl.dcs[i].signal(signal.SIGKILL)
            cl.dcs[i].wait(10)
            t_kill = time.monotonic()
            others = [j for j in range(3) if j != i]
            resumed = None
            while time.monotonic() - t_kill < 30:
                if cl.dcs_put("/soak-tick", str(t_kill), only=others):
                    resumed = (time.monotonic() - t_kill) * 1000
                    break
                time.sleep(0.02)
            kills.append((i + 1, resumed))
            event(f"killed DCS leader s{i + 1}; writes resumed after "
                  f"{'%.0f ms' % resumed if resumed is not None else 'NEVER (30 s)'}")
            time.sleep(RESTART_AFTER)  # a scheduled outage length, not a synchronization
            cl.dcs[i] = cl.dcs_proc(i)
            cl.dcs[i].start()
            procs.append(cl.dcs[i])
            try:
                wait_until(30, lambda: cl.dcs_healthy(i), f"s{i + 1} rejoining")
            except SystemExit as e:
                rejoin_fail += 1
                event(str(e))
            next_kill = now_s() + KILL_EVERY

        load.stop.set()
        load.join(90)
        with open(probe_stop, "w"):
            pass
        probe.wait(15)
        mon.stop.set()
        mon.join(5)
        rep = subprocess.run(["/usr/bin/python3", os.path.join(REPO, "tests/integration/agent/probe.py"),
                              "report", probe_out, str(probe_t0_ms)], capture_output=True, text=True)
        pr = dict(line.split("=", 1) for line in rep.stdout.split() if "=" in line)
        final_leader = cl.dcs_get(f"/service/{SCOPE}/leader")[1]
        history = cl.dcs_get(f"/service/{SCOPE}/history")[1]
        live = [p for p in procs if p.alive()]
        rss1 = {p.name: rss_kb(p.p.pid) for p in live}
        pm_rss = {f"pg-{n}": rss_kb(cl.postmaster_pid(n) or 0) for n in range(3)}

        seg_ok = sum(1 for s in load.segments if s[1])
        tps = [s[0] for s in load.segments if s[1]]
        resumes = [r for _, r in kills if r is not None]
        print("# ---- soak report")
        print(f"duration_s={DURATION} dcs_leader_kills={len(kills)} "
              f"dcs_resume_ms_median={statistics.median(resumes) if resumes else -1:.0f} "
              f"dcs_resume_ms_max={max(resumes) if resumes else -1:.0f} dcs_never_resumed={len(kills) - len(resumes)} "
              f"dcs_rejoin_failures={rejoin_fail}")
        print(f"pg_leader_start={leader} pg_leader_end={final_leader} leader_key_changes={mon.leader_changes} "
              f"role_changes={mon.role_changes} timeline_changes={mon.timeline_changes} "
              f"dcs_unreadable_polls={mon.dcs_unreadable} history={history!r}")
        print(f"pgbench_segments={len(load.segments)} pgbench_segments_ok={seg_ok} "
              f"pgbench_tx={sum(s[2] for s in load.segments)} "
              f"pgbench_tps_min={min(tps) if tps else 0:.0f} pgbench_tps_median={statistics.median(tps) if tps else 0:.0f}")
        print(f"probe_acked={pr.get('acked')} probe_max_gap_ms={pr.get('max_gap_ms')} "
              f"probe_overlap={pr.get('overlap')} probe_hosts={pr.get('hosts')}")
        for name in sorted(rss1):
            print(f"rss_kb {name} start={rss0.get(name, '-')} end={rss1[name]}")
        for name, v in pm_rss.items():
            print(f"rss_kb postmaster-{name} end={v}")
        failed = (mon.leader_changes or mon.role_changes or mon.timeline_changes
                  or seg_ok != len(load.segments) or pr.get("overlap") != "0"
                  or final_leader != leader or len(kills) != len(resumes) or rejoin_fail)
        print(f"verdict={'SPURIOUS-FAILOVER-OR-ERROR' if failed else 'zero spurious failovers'}")
    finally:
        for a in cl.agents:
            a.signal(signal.SIGTERM)
        for a in cl.agents:
            if not a.wait(30):
                a.signal(signal.SIGKILL)
        for n in range(3):
            pm = cl.postmaster_pid(n)
            if pm:
                try:
                    os.kill(pm, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for p in procs:
            p.signal(signal.SIGKILL)
        if failed or os.environ.get("SOAK_KEEP") == "1":
            print(f"# kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
