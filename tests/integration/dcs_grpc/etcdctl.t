#!/usr/bin/python3
# test-timeout: 240
"""A scripted etcdctl (ETCDCTL_API=3, Debian's etcd-client 3.4) session run against a real
3-member etcd 3.4 cluster (127.0.100.11..13) and against a 3-member appliance-dcs cluster
(127.0.100.1..3) speaking gRPC on its client port. Each command goes to the next member in
turn (so followers forward writes and keepalives, and linearizable reads take ReadIndex).
Outputs (stdout, stderr without clientv3's JSON retry warnings, exit code) are compared
line by line modulo what legitimately differs: member/cluster/lease IDs, raft term and
index, DB size, addresses, 'took' times and remaining TTL seconds. Revisions are compared
exactly (both clusters start empty). Covers put/get (--prefix, --keys-only, --rev,
--limit, --count-only, ranges, sorting), del, txn with compares from stdin, leases (grant,
keep-alive --once, timetolive, list, revoke, errors), watches fed by another client
(--rev, --prev-kv, live), compaction and its errors, member list, endpoint status and
health, -w json and table."""
import json
import os
import shutil
import subprocess
import sys
import threading

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from grpclib import (Cluster, dcs_binary, done, etcdctl, normalize, ok,  # noqa: E402
                     serialize, wait_for)


def revision(urls):
    r = etcdctl(urls[0], ["get", "foo", "-w", "json"])
    return json.loads(r[1])["header"]["revision"]


def watch_session(urls, args, puts, want_events, timeout=10):
    """Starts `etcdctl watch ARGS` on one member, runs `puts` from another etcdctl process
    (another member), waits until want_events events were printed; returns the output."""
    env = dict(os.environ, ETCDCTL_API="3")
    w = subprocess.Popen(["etcdctl", "--endpoints=" + urls[1], "watch"] + args,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    os.set_blocking(w.stdout.fileno(), False)
    buf = []

    def events():
        chunk = w.stdout.read()
        if chunk:
            buf.append(chunk)
        text = "".join(buf)
        return text.count("PUT\n") + text.count("DELETE\n") >= want_events
    try:
        for p in puts:
            etcdctl(urls[2], p)
        wait_for(events, timeout)
    finally:
        w.terminate()
        w.wait(timeout=5)
    rest = w.stdout.read() if w.stdout else ""
    return "".join(buf) + (rest or "")


def live_watch(urls, timeout=10):
    """A watch with no start revision: put until the watcher shows the key (when the watch
    is registered is not observable from outside), then compare the event's shape."""
    env = dict(os.environ, ETCDCTL_API="3")
    w = subprocess.Popen(["etcdctl", "--endpoints=" + urls[0], "watch", "live"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    os.set_blocking(w.stdout.fileno(), False)
    buf = []

    def seen():
        etcdctl(urls[1], ["put", "live", "v"])
        chunk = w.stdout.read()
        if chunk:
            buf.append(chunk)
        return "PUT\nlive\nv\n" in "".join(buf)
    got = wait_for(seen, timeout, 0.2)
    w.terminate()
    w.wait(timeout=5)
    return "PUT\nlive\nv\n" if got else "".join(buf)


TXN_OK = 'mod("zoo") > "0"\nvalue("zoo") = "z"\n\nput zoo z2\nget zoo\n\nput zoo bad\n\n'
TXN_FAIL = 'value("zoo") = "nope"\n\nput zoo never\n\nget zoo\nget foo/b\n\n'
TXN_DEL = 'version("foo/b") = "1"\n\ndel foo/b\n\n\n'
TXN_DUP_UNTAKEN = 'value("zz") = "q"\n\nput d 1\nput d 2\n\nput e 1\n\n'
TXN_DUP_TAKEN = '\n\nput d 1\nput d 2\n\n\n'


def grpc_raw(url, path):
    """One gRPC call with an empty request message through nghttp (nghttp2-client): the
    response body bytes and the grpc-status/grpc-message headers it printed."""
    p = subprocess.run(["nghttp", "-v", "-d", "/dev/stdin", "-H", ":method: POST",
                        "-H", "content-type: application/grpc", "-H", "te: trailers",
                        url + path], input=b"\0\0\0\0\0", capture_output=True, timeout=10)
    hdrs = [ln.split(b") ", 1)[1].decode() for ln in p.stdout.splitlines()
            if b"recv (stream_id=13) grpc-status" in ln]
    q = subprocess.run(["nghttp", "-d", "/dev/stdin", "-H", ":method: POST", "-H",
                        "content-type: application/grpc", "-H", "te: trailers", url + path],
                       input=b"\0\0\0\0\0", capture_output=True, timeout=10)
    return q.stdout.hex() + " " + " ".join(hdrs)


def scenario(c):
    """Runs the session on cluster c; returns [(name, rc, stdout, stderr, sort)]."""
    urls, res, step = c.urls, [], [0]

    def run(name, args, stdin=None, sort=False, all_members=False):
        ep = urls if all_members else urls[step[0] % len(urls)]
        step[0] += 1
        rc, out, err = etcdctl(ep, args, stdin=stdin)
        res.append((name, rc, out, err, sort))

    run("put foo", ["put", "foo", "bar"])
    run("put foo/a", ["put", "foo/a", "1"])
    run("put foo/b -w json", ["put", "foo/b", "2", "-w", "json"])
    run("put zoo", ["put", "zoo", "z"])
    run("put foo/a again --prev-kv", ["put", "foo/a", "11", "--prev-kv"])
    run("get foo", ["get", "foo"])
    run("get foo -w json", ["get", "foo", "-w", "json"])
    run("get --prefix foo", ["get", "--prefix", "foo"])
    run("get --prefix foo --keys-only", ["get", "--prefix", "foo", "--keys-only"])
    run("get --prefix foo -w json", ["get", "--prefix", "foo", "-w", "json"])
    run("get foo/a --rev=3", ["get", "foo/a", "--rev=3"])
    run("get foo/a --rev=3 -w json", ["get", "foo/a", "--rev=3", "-w", "json"])
    run("get --prefix foo --limit=1 -w json", ["get", "--prefix", "foo", "--limit=1", "-w",
                                               "json"])
    run("get --prefix foo --count-only -w json", ["get", "--prefix", "foo", "--count-only",
                                                  "-w", "json"])
    run("get range foo/a..zoo", ["get", "foo/a", "zoo"])
    run("get --from-key --keys-only", ["get", "--from-key", "", "--keys-only"])
    run("get --prefix sorted by modify desc", ["get", "--prefix", "foo", "--sort-by=MODIFY",
                                               "--order=DESCEND"])
    run("get -w table", ["get", "foo", "-w", "table"])
    run("get missing", ["get", "nothing-here"])
    run("get --consistency=s (serializable)", ["get", "foo", "--consistency=s", "-w", "json"])
    run("put --ignore-value", ["put", "foo", "--ignore-value", "-w", "json"])
    run("put --ignore-value on a missing key", ["put", "nokey", "--ignore-value"])
    run("put --ignore-lease", ["put", "foo", "bar2", "--ignore-lease"])
    run("get --rev in the future", ["get", "foo", "--rev=1000"])
    run("txn success from stdin", ["txn"], stdin=TXN_OK)
    run("txn failure from stdin -w json", ["txn", "-w", "json"], stdin=TXN_FAIL)
    run("txn delete", ["txn"], stdin=TXN_DEL)
    run("txn duplicate put on the untaken branch", ["txn"], stdin=TXN_DUP_UNTAKEN)
    run("txn duplicate put on the taken branch", ["txn"], stdin=TXN_DUP_TAKEN)
    run("del foo/a", ["del", "foo/a"])
    run("del missing", ["del", "nothing-here"])
    run("put for del --prefix", ["put", "foo/c", "3"])
    run("del --prefix foo --prev-kv", ["del", "--prefix", "foo", "--prev-kv"])
    run("del -w json", ["del", "zoo", "-w", "json"])
    # leases
    rc, out, _ = etcdctl(urls[0], ["lease", "grant", "60"])
    lease = out.split()[1] if rc == 0 and len(out.split()) > 1 else "0"
    res.append(("lease grant 60", rc, out, "", False))
    run("put --lease", ["put", "lk", "lv", "--lease=" + lease])
    run("lease timetolive --keys", ["lease", "timetolive", lease, "--keys"])
    run("lease timetolive -w json", ["lease", "timetolive", lease, "-w", "json"])
    run("lease keep-alive --once", ["lease", "keep-alive", "--once", lease])
    run("lease list", ["lease", "list"])
    run("lease grant -w json", ["lease", "grant", "30", "-w", "json"])
    run("lease revoke", ["lease", "revoke", lease])
    run("get key of revoked lease", ["get", "lk"])
    run("lease revoke again (not found)", ["lease", "revoke", lease])
    run("lease timetolive revoked", ["lease", "timetolive", lease])
    run("lease keep-alive --once revoked", ["lease", "keep-alive", "--once", lease])
    run("put with unknown lease", ["put", "x", "y", "--lease=1234abcd"])
    # a running keep-alive stream sees its lease revoked by another client
    rc, out, _ = etcdctl(urls[0], ["lease", "grant", "6"])
    short = out.split()[1] if rc == 0 and len(out.split()) > 1 else "0"
    env = dict(os.environ, ETCDCTL_API="3")
    ka = subprocess.Popen(["etcdctl", "--endpoints=" + urls[1], "lease", "keep-alive", short],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    got = []
    reader = threading.Thread(target=lambda: got.extend(iter(ka.stdout.readline, "")),
                              daemon=True)
    reader.start()
    wait_for(lambda: any("keepalived" in ln for ln in got), 10)  # the stream is running
    etcdctl(urls[2], ["lease", "revoke", short])
    try:
        ka.wait(timeout=15)
    except subprocess.TimeoutExpired:
        ka.kill()
        ka.wait()
        got.append("(keep-alive did not end)")
    reader.join(timeout=5)
    kout = "".join(got)
    lines = sorted(set(ln for ln in kout.splitlines() if not ln.startswith('{"level"')))
    res.append(("lease keep-alive ends when another client revokes", ka.returncode,
                "\n".join(lines), "", False))
    # watches fed by another client
    r = revision(urls)
    out = watch_session(urls, ["--prefix", "w", "--rev=%d" % (r + 1)],
                        [["put", "w/1", "a"], ["put", "w/1", "b"], ["del", "w/1"]], 3)
    res.append(("watch --prefix --rev (put, put, del from another client)", 0, out, "", False))
    r = revision(urls)
    out = watch_session(urls, ["w/2", "--prev-kv", "--rev=%d" % (r + 1)],
                        [["put", "w/2", "a"], ["put", "w/2", "b"], ["del", "w/2"]], 3)
    res.append(("watch --prev-kv", 0, out, "", False))
    # compaction
    r = revision(urls)
    run("compaction", ["compaction", str(r - 2)])
    run("get --rev below compaction", ["get", "foo", "--rev=2"])
    rc, out, err = etcdctl(urls[0], ["watch", "foo", "--rev=2"], timeout=15)
    res.append(("watch --rev below compaction", rc, out, err, False))
    run("compaction again (already compacted)", ["compaction", str(r - 3)])
    run("compaction in the future", ["compaction", str(r + 100)])
    # cluster and maintenance
    run("member list", ["member", "list"], sort=True)
    run("member list -w table", ["member", "list", "-w", "table"], sort=True)
    run("member list -w json", ["member", "list", "-w", "json"])
    # membership: add (an unstarted 4th member keeps the quorum of 3), update, remove
    new = c.hosts[0].rsplit(".", 1)[0] + ".%d" % (c.base + 4)
    box = []
    # etcd refuses changes until its members have been active a while: retry
    wait_for(lambda: box.append(etcdctl(urls[1], ["member", "add", "n4", "--peer-urls=http://%s"
                                                  ":2380" % new])) or box[-1][0] == 0, 20, 0.5)
    res.append(("member add", box[-1][0], box[-1][1], box[-1][2], False))
    run("member list with an unstarted member", ["member", "list"], sort=True)
    rc, out, _ = etcdctl(urls[0], ["member", "list"])
    mid = next((ln.split(",")[0] for ln in out.splitlines() if new + ":" in ln), "0")
    run("member update", ["member", "update", mid, "--peer-urls=http://%s:2381" % new])
    run("member remove", ["member", "remove", mid])
    run("member remove again (not found)", ["member", "remove", mid])
    run("member add with a peer URL in use", ["member", "add", "x", "--peer-urls=http://%s:2380"
                                              % c.hosts[0]])
    run("member list after remove", ["member", "list"], sort=True)
    run("endpoint status -w table", ["endpoint", "status", "-w", "table"], sort=True,
        all_members=True)
    run("endpoint status -w json", ["endpoint", "status", "-w", "json"], all_members=True)
    run("endpoint health", ["endpoint", "health"], sort=True, all_members=True)
    run("alarm list", ["alarm", "list"])
    run("defrag", ["defrag"], sort=True, all_members=True)
    run("user list (auth disabled)", ["user", "list"])
    run("role list (auth disabled)", ["role", "list"])
    run("user get root (auth disabled)", ["user", "get", "root"])
    run("auth enable without a root user", ["auth", "enable"])
    run("auth disable", ["auth", "disable"])
    run("get with --user while auth is disabled", ["--user=root:pw", "get", "foo"])
    run("move-leader to an unknown member", ["move-leader", "1234abcd"], all_members=True)
    rc, out, _ = etcdctl(urls, ["endpoint", "status", "-w", "json"])
    try:
        st = [e["Status"] for e in json.loads(out)]
        follower = next(e["header"]["member_id"] for e in st if e["leader"] !=
                        e["header"]["member_id"])
    except (ValueError, KeyError, TypeError, StopIteration):
        follower = 0
    run("move-leader to a follower", ["move-leader", "%x" % follower], all_members=True)
    rc, out, _ = etcdctl(urls, ["endpoint", "status", "-w", "json"])
    try:
        moved = all(e["Status"]["leader"] == follower for e in json.loads(out))
    except (ValueError, KeyError, TypeError):
        moved = False
    res.append(("every member follows the new leader after move-leader", 0,
                "moved" if moved else out, "", False))
    res.append(("live watch sees a put from another client", 0, live_watch(urls), "", False))
    if shutil.which("nghttp"):
        res.append(("(nghttp) grpc.health.v1.Health/Check", 0,
                    grpc_raw(urls[0], "/grpc.health.v1.Health/Check"), "", False))
    return res


def main():
    serialize()
    binary = dcs_binary()
    if not binary:
        ok(False, "appliance-dcs binary missing (run make)")
        done()
        return 1
    etcd = Cluster("etcd", 10).start()
    ours = Cluster("ours", 0, binary=binary).start()
    try:
        up = ok(etcd.healthy(), "real etcd 3.4 cluster healthy (etcdctl endpoint health)",
                etcd.logs())
        up = ok(ours.healthy(), "appliance-dcs cluster healthy over gRPC (etcdctl endpoint "
                "health)", ours.logs()) and up
        if not up:
            return 1
        want = scenario(etcd)
        got = scenario(ours)
        for (name, rc1, o1, e1, srt), (_, rc2, o2, e2, _) in zip(want, got):
            a = [str(rc1)] + normalize(o1, srt) + normalize(e1)
            b = [str(rc2)] + normalize(o2, srt) + normalize(e2)
            detail = "etcd:\n  " + "\n  ".join(a) + "\nours:\n  " + "\n  ".join(b)
            # a step whose reference output is empty proves nothing for watches
            meaningful = (rc1, o1) != (-1, "") and (not name.startswith(("watch", "live"))
                                                   or (o1 + e1).strip())
            ok(a == b and meaningful, "etcdctl %s: same output as etcd" % name, detail)
        # one leader among the endpoints, as etcd
        rc, out, _ = etcdctl(ours.urls, ["endpoint", "status", "-w", "json"])
        leaders = set()
        try:
            for e in json.loads(out):
                leaders.add(e["Status"]["leader"])
            ids = {e["Status"]["header"]["member_id"] for e in json.loads(out)}
        except (ValueError, KeyError, TypeError):
            ids = set()
        ok(len(leaders) == 1 and leaders <= ids, "endpoint status: every member names the "
           "same leader, one of the members", out)
        rc, out, _ = etcdctl(ours.urls[0], ["member", "list", "-w", "json"])
        try:
            ids = [m["ID"] for m in json.loads(out)["members"]]
        except (ValueError, KeyError, TypeError):
            ids = []
        ok(len(ids) == 3 and ids == sorted(ids), "member list: members ordered by ID, as etcd",
           out)
        rev = revision(ours.urls)
        last = [""]

        def agree():  # at one revision (a follower may still be applying it: retry)
            rc, out, err = etcdctl(ours.urls, ["endpoint", "hashkv", "--rev=%d" % rev,
                                               "-w", "json"])
            last[0] = out + err
            hashes = {e["HashKV"]["hash"] for e in json.loads(out)}
            return rc == 0 and len(hashes) == 1 and hashes != {0}
        ok(wait_for(agree, 10, 0.2), "endpoint hashkv --rev: the members agree", last[0])
        ok(ours.alive(), "no member crashed (sanitizer build)", ours.logs())
    finally:
        rcs = ours.stop()
        etcd.stop()
        ok(all(rc == 0 for rc in rcs), "members exit 0 on SIGTERM (no sanitizer report)",
           ours.logs() if any(rcs) else "")
        ours.cleanup()
        etcd.cleanup()
    done()
    return 0


if __name__ == "__main__":
    sys.exit(main())
