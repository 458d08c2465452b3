#!/usr/bin/python3
# test-timeout: 180
"""A gRPC watch open on a follower while that follower's store is replaced by an installed
snapshot (appliance-dcs, --snapshot-count 200): the follower is frozen (SIGSTOP) with
etcdctl's watch stream open, the leader moves its log past the follower (> 1200 entries),
the follower resumes and catches up by snapshot. The watch stream pointed into the old
store: the server must end it (UNAVAILABLE, as on a member restart), not crash, and
etcdctl's client re-watches from its last revision: either a put made afterwards shows up
in the same etcdctl watch process, or (when the installed snapshot no longer holds that
revision's history) etcdctl prints etcd's "required revision has been compacted"
cancellation. Sanitizer build: members exit 0 on SIGTERM."""
import http.client
import json
import os
import signal
import subprocess
import sys
import threading

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from grpclib import Cluster, dcs_binary, done, etcdctl, ok, serialize, wait_for  # noqa: E402


def status(url):
    r = etcdctl(url, ["endpoint", "status", "-w", "json"], timeout=5)
    return json.loads(r[1])[0]["Status"] if r[0] == 0 else None


def main():
    serialize()
    binary = dcs_binary()
    if not binary:
        ok(False, "appliance-dcs binary missing (run make)")
        done()
        return 1
    c = Cluster("ours", 50, binary=binary, extra=["--snapshot-count", "200"]).start()
    watcher = None
    try:
        if not ok(c.healthy(), "3-member cluster healthy", c.logs()):
            return 1
        sts = [status(u) for u in c.urls]
        lead = next(i for i, s in enumerate(sts) if s and s["leader"] == s["header"]["member_id"])
        fol = (lead + 1) % 3
        env = dict(os.environ, ETCDCTL_API="3")
        watcher = subprocess.Popen(["etcdctl", "--endpoints=" + c.urls[fol], "watch",
                                    "--prefix", "r/"], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, env=env)
        seen = []
        threading.Thread(target=lambda: seen.extend(iter(watcher.stdout.readline, "")),
                         daemon=True).start()

        def shows(key):
            return lambda: any(ln.strip() == key for ln in list(seen))
        n = [0]

        def ready():
            n[0] += 1
            etcdctl(c.urls[lead], ["put", "r/ready", str(n[0])])
            return shows("r/ready")()
        ok(wait_for(ready, 20, 0.2), "etcdctl watch on a follower receives events", "".join(seen))
        pid = c.procs[fol].pid
        os.kill(pid, signal.SIGSTOP)
        try:
            conn = http.client.HTTPConnection(c.hosts[lead], 2379, timeout=10)
            good = 0
            for i in range(1300):
                conn.request("POST", "/v3/kv/put", json.dumps(
                    {"key": "YnVsay8=", "value": "eA=="}), {"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                good += r.status == 200
            ok(good == 1300, "1300 writes while the follower is frozen")
        finally:
            os.kill(pid, signal.SIGCONT)

        def caught_up():
            a, b = status(c.urls[lead]), status(c.urls[fol])
            return a and b and b["raftAppliedIndex"] >= a["raftAppliedIndex"] - 2
        ok(wait_for(caught_up, 30, 0.2), "the follower catches up (snapshot install)", c.logs())
        with open(os.path.join(c.dir, c.names[fol] + ".log")) as f:
            installed = "installed snapshot" in f.read()
        ok(installed, "the follower's store was replaced by a snapshot (its log says so)",
           c.logs())
        ok(c.procs[fol].poll() is None, "the follower survived the store replacement",
           c.logs())

        def after():
            etcdctl(c.urls[lead], ["put", "r/after", "1"])
            return shows("r/after")()
        compacted = "watch was canceled (etcdserver: mvcc: required revision has been " \
                    "compacted)"
        ok(wait_for(lambda: after() or any(compacted in ln for ln in list(seen)), 30, 0.5),
           "the etcdctl watch re-watches: it carries on, or is told its resume revision was "
           "compacted", "".join(seen[-20:]) + c.logs())
    finally:
        if watcher:
            watcher.terminate()
            watcher.wait(timeout=10)
        rcs = c.stop()
        ok(all(rc == 0 for rc in rcs), "members exit 0 on SIGTERM (no sanitizer report)",
           c.logs() if any(rcs) else "")
        c.cleanup()
    done()
    return 0


if __name__ == "__main__":
    sys.exit(main())
