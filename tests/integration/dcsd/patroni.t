#!/usr/bin/python3
# test-timeout: 450
"""Real Patroni 3.0.2 (Debian, `etcd3:` section) runs a 3-node PostgreSQL 15 cluster on a
3-member appliance-dcs cluster: bootstrap, replication, `patronictl list` (leader + 2
replicas), the DCS leader killed (-9) under Patroni without the PostgreSQL primary losing
its leader key, a `patronictl switchover`, and a failover after kill -9 of the Patroni
leader and its PostgreSQL. Nodes on 127.0.80.11..13 (PostgreSQL :5432, REST :8008)."""
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dcsd import Cluster, b64, done, need_binary, ok, wait_for  # noqa: E402

PGBIN = "/usr/lib/postgresql/15/bin"
NODES = {"pg1": "127.0.80.11", "pg2": "127.0.80.12", "pg3": "127.0.80.13"}
need_binary()
pg = pwd.getpwnam("postgres")
tmp = tempfile.mkdtemp(prefix="dcsd-patroni-")
os.chmod(tmp, 0o755)
os.chown(tmp, pg.pw_uid, pg.pw_gid)
procs = {}
dcs = Cluster(v2=False)
HOSTS = ",".join("%s:2379" % m.host for m in dcs.members)


def yml(node):
    ip, d = NODES[node], "%s/%s" % (tmp, node)
    os.makedirs(d + "/sock", exist_ok=True)
    for x in (d, d + "/sock"):
        os.chown(x, pg.pw_uid, pg.pw_gid)
    path = d + "/patroni.yml"
    with open(path, "w") as f:
        f.write("""scope: dcsd
namespace: /service
name: %(node)s
restapi: {listen: '%(ip)s:8008', connect_address: '%(ip)s:8008'}
etcd3: {hosts: '%(hosts)s'}
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 2
    retry_timeout: 4
    maximum_lag_on_failover: 1048576
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters: {wal_log_hints: 'on', max_wal_senders: 10, max_replication_slots: 10}
  initdb: [{encoding: UTF8}, {locale: C}]
postgresql:
  pg_hba:
    - host replication replicator 127.0.0.0/8 trust
    - host all all 127.0.0.0/8 trust
  listen: '%(ip)s:5432'
  connect_address: '%(ip)s:5432'
  data_dir: %(d)s/data
  bin_dir: %(bin)s
  pgpass: %(d)s/pgpass
  authentication:
    replication: {username: replicator, password: rep}
    superuser: {username: postgres, password: pg}
    rewind: {username: rewinder, password: rw}
  parameters: {unix_socket_directories: '%(d)s/sock', shared_buffers: 16MB, max_connections: 30,
               fsync: 'off'}
""" % {"node": node, "ip": ip, "hosts": HOSTS, "d": d, "bin": PGBIN})
    os.chown(path, pg.pw_uid, pg.pw_gid)
    return path


def start_patroni(node):
    log = open("%s/%s.log" % (tmp, node), "a")
    procs[node] = subprocess.Popen(
        ["setpriv", "--reuid=%d" % pg.pw_uid, "--regid=%d" % pg.pw_gid, "--init-groups",
         "patroni", yml(node)], stdout=log, stderr=subprocess.STDOUT, cwd=tmp,
        env=dict(os.environ, HOME=tmp))


def postmaster_pid(node):
    try:
        with open("%s/%s/data/postmaster.pid" % (tmp, node)) as f:
            return int(f.readline())
    except (OSError, ValueError):
        return None


def kill_node(node):
    p = procs.get(node)
    if p and p.poll() is None:
        p.kill()
        p.wait()
    pid = postmaster_pid(node)
    if pid:
        kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                              text=True).stdout.split()
        for x in [pid] + [int(k) for k in kids]:
            try:
                os.kill(x, signal.SIGKILL)
            except ProcessLookupError:
                pass


def cluster():
    for ip in NODES.values():
        try:
            with urllib.request.urlopen("http://%s:8008/cluster" % ip, timeout=1) as r:
                return json.loads(r.read())
        except Exception:  # noqa: BLE001
            continue
    return None


def healthy(exclude=()):
    c = cluster()
    if not c:
        return None
    leaders = [m["name"] for m in c["members"] if m["role"] == "leader" and
               m["state"] == "running" and m["name"] not in exclude]
    reps = [m for m in c["members"] if m["role"] == "replica" and m["state"] == "running" and
            isinstance(m.get("lag"), int) and m["name"] not in exclude]
    want = 2 - len(exclude)
    return leaders[0] if len(leaders) == 1 and len(reps) == want else None


def leader_key():
    for m in dcs.members:
        if not m.up():
            continue
        try:
            st, j, _ = m.post("/v3/kv/range", {"key": b64("/service/dcsd/leader"),
                                                "serializable": True}, timeout=1)
            kvs = j.get("kvs") or []
            return (kvs[0]["create_revision"], kvs[0].get("lease")) if kvs else None
        except OSError:
            continue
    return None


def logs():
    out = []
    for node in NODES:
        try:
            with open("%s/%s.log" % (tmp, node)) as f:
                out.append("== %s\n%s" % (node, "".join(f.readlines()[-12:])))
        except OSError:
            pass
    return "\n".join(out) + "\n" + dcs.logs()


try:
    dcs.start()
    ok(dcs.leader(15) is not None, "appliance-dcs cluster up", dcs.logs())
    for node in NODES:
        start_patroni(node)
        time.sleep(0.5)  # pg1 first: it bootstraps, the others clone
    leader = wait_for(healthy, 120, 0.3)
    ok(leader is not None, "Patroni bootstraps: 1 leader + 2 streaming replicas (%s)" % leader,
       logs())
    if leader is None:
        raise SystemExit
    out = subprocess.run(["patronictl", "-c", yml(leader), "list"], capture_output=True,
                         text=True, timeout=30)
    rows = [ln for ln in out.stdout.splitlines() if ln.startswith("|") and "127.0.80" in ln]
    ok(out.returncode == 0 and sum("Leader" in r for r in rows) == 1 and
       sum("Replica" in r for r in rows) == 2, "patronictl list: leader + 2 replicas",
       out.stdout + out.stderr)

    # the DCS leader dies under Patroni: the leader key (and its lease) must survive
    key = leader_key()
    L = dcs.leader(5)
    L.kill(signal.SIGKILL)
    t0 = time.monotonic()
    stable = True
    while time.monotonic() - t0 < 12:  # longer than Patroni's ttl (10 s)
        k = leader_key()
        if k is not None and k != key:
            stable = False
            break
        time.sleep(0.5)
    ok(stable and leader_key() == key and healthy(exclude=()) in (leader, None) and
       wait_for(lambda: cluster() and any(m["name"] == leader and m["role"] == "leader"
                                          for m in cluster()["members"]), 10),
       "DCS leader killed: Patroni keeps its leader key and lease (%s) through the DCS "
       "leader change" % (key,), logs())
    L.start()
    ok(dcs.leader(15) is not None, "killed DCS member restarted and rejoined")

    # switchover
    cand = [n for n in NODES if n != leader][0]
    out = subprocess.run(["patronictl", "-c", yml(leader), "switchover", "--leader", leader,
                          "--candidate", cand, "--force"], capture_output=True, text=True,
                         timeout=60)
    new = wait_for(lambda: healthy() == cand and cand, 60, 0.3)
    ok(out.returncode == 0 and new == cand, "patronictl switchover %s -> %s" % (leader, cand),
       out.stdout + out.stderr + logs())

    # failover: kill -9 the Patroni leader and its PostgreSQL
    old = healthy() or cand
    kill_node(old)
    new = wait_for(lambda: healthy(exclude=(old,)), 60, 0.3)
    ok(new is not None and new != old, "failover after kill -9 of %s: new leader %s" % (old, new),
       logs())
finally:
    for node in NODES:
        kill_node(node)
    dcs.stop()
    shutil.rmtree(tmp, ignore_errors=True)
done()
