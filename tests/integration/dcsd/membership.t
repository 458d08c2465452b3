#!/usr/bin/python3
# test-timeout: 240
"""Membership changes on a running appliance-dcs cluster, under writes (--snapshot-count
300, so the log is compacted and a new member must catch up by snapshot):
member 3 is killed and its data directory wiped, removed (member/remove), added again
(member/add: a new, unique ID), started with --initial-cluster-state existing: it joins,
installs a snapshot from the leader and serves the same data; no acknowledged write is
lost. A 4th member is added, joins, and is removed through a follower (forwarded to the
leader); it stops itself. Errors and shapes as
etcd 3.4's: unknown ID, duplicate peer URL, promote of a voter; v2 POST/DELETE /v2/members."""
import http.client as http_client
import json
import os
import shutil
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dcsd import Cluster, Member, b64, done, http, need_binary, ok, wait_for  # noqa: E402

need_binary()
c = Cluster(v2=True, extra=["--snapshot-count", "300"]).start()
acked = {}  # key -> value of every acknowledged put
stop = threading.Event()


def writer(wid):
    i = 0
    while not stop.is_set():
        k, v = "w%d/%05d" % (wid, i), "v%d" % i
        for m in list(c.members):
            if not m.up():
                continue
            try:
                st, _, _ = m.post("/v3/kv/put", {"key": b64(k), "value": b64(v)}, timeout=3)
            except OSError:
                continue
            if st == 200:
                acked[k] = v
                break
        i += 1


def write_many(m, prefix, n):
    conn = http_client.HTTPConnection(m.host, 2379, timeout=10)
    good = 0
    for i in range(n):
        conn.request("POST", "/v3/kv/put",
                     json.dumps({"key": b64("%s/%05d" % (prefix, i)), "value": b64("x" * 32)}),
                     {"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        good += r.status == 200
    conn.close()
    return good


def count(m, prefix="w"):
    st, j, _ = m.post("/v3/kv/range", {"key": b64(prefix), "range_end": b64(prefix[:-1] + chr(ord(prefix[-1]) + 1)),
                                        "count_only": True, "serializable": True}, timeout=5)
    return int(j.get("count", "0")) if st == 200 else -1


def members(m):
    st, j, _ = m.post("/v3/cluster/member/list", {})
    return j.get("members", []) if st == 200 else []


def applied(m):
    s = m.status()
    return int(s.get("raftAppliedIndex", "0")) if s else 0


def metric(m, name):
    st, text, _ = http("GET", m.url + "/metrics", raw=True)
    for ln in text.splitlines():
        if ln.startswith(name + " "):
            return float(ln.split()[1])
    return None


threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(3)]
try:
    L = c.leader(15)
    ok(L is not None, "cluster up", c.logs())
    for t in threads:
        t.start()
    ok(wait_for(lambda: len(acked) > 200, 20), "writers running (%d acked)" % len(acked))
    before = {x["ID"]: x for x in members(L)}
    ok(len(before) == 3, "3 members listed", before)

    # errors first (no change made)
    st, j, _ = L.post("/v3/cluster/member/remove", {"ID": "12345"})
    ok(st == 404 and j.get("message") == "etcdserver: member not found" and j.get("code") == 5,
       "remove of an unknown ID: etcd's NotFound", (st, j))
    st, j, _ = L.post("/v3/cluster/member/add", {"peerURLs": [c.members[1].host.join(["http://", ":2380"])]})
    ok(st == 412 and j.get("message") == "etcdserver: Peer URLs already exists",
       "add of a peer URL in use: etcd's FailedPrecondition", (st, j))
    some = [x for x in before if x != L.status()["header"]["member_id"]][0]
    st, j, _ = L.post("/v3/cluster/member/promote", {"ID": some})
    ok(st == 412 and j.get("message") == "etcdserver: can only promote a learner member",
       "promote of a voter answers as etcd 3.4", (st, j))

    # member 3: killed, wiped, removed
    m3 = c.members[2]
    if m3 is L:  # keep the leader; wipe a follower
        m3 = c.members[1]
    old_id = [x["ID"] for x in members(L) if x.get("name") == m3.name][0]
    m3.kill(signal.SIGKILL)
    shutil.rmtree(m3.data)
    st, j, _ = L.post("/v3/cluster/member/remove", {"ID": old_id})
    ok(st == 200 and len(j.get("members", [])) == 2 and old_id not in [x["ID"] for x in j["members"]],
       "member/remove answers with the 2 remaining members", (st, j))
    ok(wait_for(lambda: all(len(members(m)) == 2 for m in c.members if m.up()), 5),
       "every running member lists 2 members")
    n_before = len(acked)
    ok(write_many(L, "burst", 1500) == 1500 and len(acked) > n_before,
       "writes continue on 2 members: 1500 more puts (the log is compacted past them)")

    # added again: a new ID; started with state existing; catches up by snapshot
    url3 = "http://%s:2380" % m3.host
    st, j, _ = L.post("/v3/cluster/member/add", {"peerURLs": [url3]})
    new_id = j.get("member", {}).get("ID") if st == 200 else None
    ok(st == 200 and new_id and new_id != old_id and j["member"].get("peerURLs") == [url3]
       and len(j.get("members", [])) == 3,
       "member/add: a new unique ID, etcd's response shape", (st, j))
    m3.start(["--initial-cluster-state", "existing"])
    ok(wait_for(lambda: m3.status() is not None and applied(m3) >= applied(L) - 50, 30),
       "re-added member joins and catches up", m3.tail())
    ok("installed snapshot" in m3.tail(200), "... by an installed snapshot", m3.tail())
    ok(m3.status()["header"]["member_id"] == new_id, "it runs under the new ID")
    ok(wait_for(lambda: any(x.get("name") == m3.name and x["ID"] == new_id for x in members(L)), 5),
       "the leader lists it by name once it started", members(L))

    # a 4th member: added, joins, removed (stops itself)
    c4 = Member(c, 4)
    c.members.append(c4)
    url4 = "http://%s:2380" % c4.host
    st, j, _ = http("POST", L.url + "/v2/members", {"peerURLs": [url4]})
    id4 = j.get("id") if st == 201 else None
    ok(st == 201 and id4 and j.get("peerURLs") == [url4] and j.get("clientURLs") == [],
       "v2 POST /v2/members adds a 4th member (201, etcd's shape)", (st, j))
    init4 = c.initial + ",%s=%s" % (c4.name, url4)
    args4 = c4.args()
    args4[args4.index("--initial-cluster") + 1] = init4
    c4.args = lambda: args4  # noqa: E731 - its own --initial-cluster lists all four
    c4.start(["--initial-cluster-state", "existing"])
    ok(wait_for(lambda: c4.status() is not None and applied(c4) >= applied(L) - 50, 30),
       "4th member joins and catches up", c4.tail())
    ok(len(members(L)) == 4, "4 members listed", members(L))
    F = [m for m in c.members if m.up() and m is not L and m is not c4][0]
    st, txt, _ = http("DELETE", F.url + "/v2/members/" + id4, raw=True)
    ok(st == 204, "v2 DELETE /v2/members/<id> through a follower removes it (204)", (st, txt))
    ok(wait_for(lambda: not c4.up(), 10), "the removed member stops itself", c4.tail())
    st, j, _ = http("DELETE", L.url + "/v2/members/" + id4)
    ok(st == 404 and "No such member" in json.dumps(j), "deleting it again: 404", (st, j))
    ok(wait_for(lambda: len(members(L)) == 3, 5), "back to 3 members")

    # no acknowledged write lost; every member serves the same data
    stop.set()
    for t in threads:
        t.join(10)
    L = c.leader(10) or L
    final = dict(acked)
    lost = []
    for k, v in list(final.items())[::7]:  # a sample: every 7th acknowledged write
        st, j, _ = L.post("/v3/kv/range", {"key": b64(k)})
        if st != 200 or not j.get("kvs") or j["kvs"][0]["value"] != b64(v):
            lost.append(k)
    ok(not lost, "no acknowledged write lost (%d checked of %d)" % (len(final) // 7, len(final)),
       lost[:5])
    want = count(L)
    ok(wait_for(lambda: all(count(m) == want for m in c.members if m.up()), 10),
       "every member serves the same %d keys" % want,
       [count(m) for m in c.members if m.up()])
    ok(metric(m3, "appliance_dcs_snapshots_installed_total") >= 1,
       "/metrics of the re-added member counts the installed snapshot")
finally:
    stop.set()
    c.stop()
done()
