#!/usr/bin/python3
# test-timeout: 240
"""python-etcd (Debian python3-etcd, the v2 client Patroni's etcd: section uses) against a
3-member appliance-dcs cluster with --enable-v2: machine discovery, set/get, create-only,
compare-and-swap by value and index, TTL expiry, a blocking watch woken by a write on
another member, recursive directory reads, compare-and-delete, error classes."""
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dcsd import Cluster, done, need_binary, ok, wait_for  # noqa: E402

import etcd  # noqa: E402


def exists(client, key):
    try:
        client.read(key)
        return True
    except etcd.EtcdKeyNotFound:
        return False


def raises(fn, exc):
    try:
        fn()
    except exc:
        return True
    except Exception as e:  # noqa: BLE001
        print("# unexpected %r" % e)
        return False
    return False


need_binary()
c = Cluster().start()
try:
    L = c.leader(15)
    ok(L is not None, "cluster up", c.logs())
    F = [m for m in c.members if m is not L]
    cl = etcd.Client(host=F[0].host, port=2379, allow_reconnect=True, read_timeout=10)
    machines = wait_for(lambda: len(cl.machines) == 3 and cl.machines, 5)
    ok(machines and sorted(machines) == sorted(m.url for m in c.members),
       "machines discovered: %s" % machines)

    r = cl.write("/service/batman/leader", "pg1", ttl=30)
    ok(r.value == "pg1" and r.ttl == 30 and r.action == "set", "set with ttl")
    ok(cl.read("/service/batman/leader").value == "pg1", "get")
    ok(cl.read("/service/batman/leader", quorum=True).value == "pg1",
       "quorum read (ReadIndex on a follower)")
    ok(raises(lambda: cl.write("/service/batman/leader", "pg2", prevExist=False),
              etcd.EtcdAlreadyExist), "create-only on an existing key: EtcdAlreadyExist")
    r = cl.write("/service/batman/leader", "pg1", ttl=30, prevValue="pg1")
    ok(r.action == "compareAndSwap", "CAS by value (Patroni's leader update)")
    ok(raises(lambda: cl.write("/service/batman/leader", "x", prevValue="nope"),
              etcd.EtcdCompareFailed), "CAS with a wrong value: EtcdCompareFailed")
    idx = cl.read("/service/batman/leader").modifiedIndex
    r = cl.write("/service/batman/leader", "pg1", prevIndex=idx)
    ok(r.modifiedIndex > idx, "CAS by index")
    ok(raises(lambda: cl.read("/service/batman/nothing"), etcd.EtcdKeyNotFound),
       "missing key: EtcdKeyNotFound")

    # TTL expiry: proposed by the leader with its clock, seen by every member
    cl.write("/service/batman/members/pg3", "m", ttl=1)
    cl.write("/service/batman/members/pg2", "m2")
    gone = wait_for(lambda: not exists(cl, "/service/batman/members/pg3"), 6)
    ok(gone, "ttl=1 key expires")

    # blocking watch on a follower, woken by a write through the other follower
    start = cl.read("/service/batman/leader").etcd_index
    got = {}

    def watcher():
        w = etcd.Client(host=F[1].host, port=2379, read_timeout=10)
        got["r"] = w.watch("/service/batman/leader", index=start + 1, timeout=10)
    t = threading.Thread(target=watcher)
    t.start()
    cl2 = etcd.Client(host=F[0].host, port=2379)
    cl2.write("/service/batman/leader", "pg2")
    t.join(12)
    ok("r" in got and got["r"].value == "pg2" and got["r"].action == "set",
       "watch(index) returns the next change made on another member",
       got.get("r"))

    # recursive directory read (Patroni's cluster read)
    d = cl.read("/service/batman", recursive=True)
    keys = sorted(ch.key for ch in d.leaves)
    ok(keys == ["/service/batman/leader", "/service/batman/members/pg2"],
       "recursive read lists the tree: %s" % keys)

    # compare-and-delete
    ok(raises(lambda: cl.delete("/service/batman/leader", prevValue="pg1"),
              etcd.EtcdCompareFailed), "delete with a wrong prevValue: EtcdCompareFailed")
    r = cl.delete("/service/batman/leader", prevValue="pg2")
    ok(r.action == "compareAndDelete" and not exists(cl, "/service/batman/leader"),
       "compare-and-delete")
    r = cl.delete("/service/batman", recursive=True)
    ok(not exists(cl, "/service/batman"), "recursive delete")
finally:
    c.stop()
done()
