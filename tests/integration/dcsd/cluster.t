#!/usr/bin/python3
# test-timeout: 270
"""appliance-dcs 3-member cluster over real HTTP: election, /version, member list, writes
through followers (forwarded to the leader), linearizable and serializable reads, leases
kept alive through a follower, expiry deleting attached keys (with DELETE watch events),
chunked watch streams, etcd's errors, a member with another cluster token refused, a
member without quorum answering promptly, SIGTERM on the leader handing over, restart
recovering from the WAL."""
import json
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dcsd import (Cluster, Member, b64, done, http, need_binary, ok, unb64,  # noqa: E402
                  wait_for, ELECTION)

need_binary()
c = Cluster().start()
try:
    L = c.leader(15)
    ok(L is not None, "3 members elect one leader", c.logs())
    if L is None:
        done()
        sys.exit(1)
    F = [m for m in c.members if m is not L]

    st, v, _ = http("GET", F[0].url + "/version")
    cl = tuple(int(x) for x in v["etcdcluster"].split("."))
    ok(st == 200 and cl >= (3, 4, 0), "/version etcdcluster >= 3.4.0 (%s)" % v)
    st, h, _ = http("GET", F[1].url + "/health")
    ok(st == 200 and h == {"health": "true"}, "/health true with a leader")

    def members_known():
        st, j, _ = F[0].post("/v3/cluster/member/list", {})
        urls = sorted(u for m in j["members"] for u in m.get("clientURLs", []))
        return urls == sorted(m.url for m in c.members) and j
    ml = wait_for(members_known, 5)
    ok(bool(ml), "member list names all 3 members with their client URLs", ml)

    # writes through a follower are forwarded; the answer comes after apply
    st, put, _ = F[0].post("/v3/kv/put", {"key": b64("/svc/a"), "value": b64("1")})
    ok(st == 200 and int(put["header"]["revision"]) >= 2, "put through a follower", put)
    rev = int(put["header"]["revision"])
    st, rng, _ = F[1].post("/v3/kv/range", {"key": b64("/svc/a")})
    ok(st == 200 and rng["kvs"][0]["value"] == b64("1") and
       int(rng["kvs"][0]["mod_revision"]) == rev,
       "linearizable range on the other follower sees it at once", rng)
    terms = {int(m.post("/v3/kv/range", {"key": b64("x"), "serializable": True})[1]["header"]
                 ["raft_term"]) for m in c.members}
    ok(len(terms) == 1, "every member reports the same raft_term", terms)

    # txn as Patroni's leader race
    race = {"compare": [{"key": b64("/svc/leader"), "target": "CREATE", "create_revision": "0"}],
            "success": [{"request_put": {"key": b64("/svc/leader"), "value": b64("pg1")}}]}
    st, t1, _ = F[1].post("/v3/kv/txn", race)
    st2, t2, _ = L.post("/v3/kv/txn", race)
    ok(t1.get("succeeded") is True and "succeeded" not in t2,
       "create-if-absent txn: first wins, second fails (no succeeded key)", (t1, t2))

    # missing lease: etcd's NotFound
    st, e, _ = F[0].post("/v3/kv/put", {"key": b64("k"), "value": b64("v"), "lease": "12345"})
    ok(st == 404 and e.get("code") == 5 and e.get("error") == "etcdserver: requested lease not found",
       "put with an unknown lease -> 404 code 5", (st, e))
    st, e, _ = F[0].post("/v3/kv/put", {"key": "!!!"})
    ok(st == 400 and e.get("code") == 3, "bad base64 -> 400 InvalidArgument", (st, e))

    # watch stream (chunked) on a follower, fed by a write on another member
    s = socket.create_connection((F[1].host, 2379), timeout=5)
    body = json.dumps({"create_request": {"key": b64("/svc/"), "range_end": b64("/svc0"),
                                          "start_revision": str(rev)}})
    s.sendall(("POST /v3/watch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               "Content-Length: %d\r\n\r\n%s" % (len(body), body)).encode())
    buf = b""

    def watch_has(text):
        global buf
        s.settimeout(0.2)
        try:
            buf += s.recv(65536)
        except socket.timeout:
            pass
        return text.encode() in buf
    ok(wait_for(lambda: watch_has('"created":true'), 5) is not None and
       b"Transfer-Encoding: chunked" in buf, "watch answers chunked, created first", buf[:400])
    ok(wait_for(lambda: watch_has(b64("/svc/a")), 5) is not None,
       "watch replays from start_revision (inclusive)")

    # lease granted and kept alive through a follower, expiry deletes the attached key
    st, g, _ = F[0].post("/v3/lease/grant", {"TTL": 2})
    lid = g.get("ID")
    ok(st == 200 and lid and g.get("TTL") == "2", "lease grant through a follower", g)
    F[0].post("/v3/kv/put", {"key": b64("/svc/member"), "value": b64("m"), "lease": lid})
    kept = True
    for _ in range(6):  # 3 s of keepalives through a follower: longer than the TTL
        st, ka, _ = F[1].post("/v3/lease/keepalive", {"ID": lid})
        kept = kept and ka["result"].get("TTL") == "2"
        time.sleep(0.5)
    st, r, _ = L.post("/v3/kv/range", {"key": b64("/svc/member")})
    ok(kept and r.get("count") == "1", "keepalive through a follower holds the lease (3 s > TTL)",
       (ka, r))
    gone = wait_for(lambda: "kvs" not in F[0].post("/v3/kv/range",
                                                    {"key": b64("/svc/member")})[1], 6)
    ok(gone is not None, "lease expiry (proposed by the leader) deletes the attached key")
    ok(wait_for(lambda: watch_has('"type":"DELETE"'), 5) is not None,
       "the watch sees the expiry as a DELETE event")
    st, ka, _ = F[1].post("/v3/lease/keepalive", {"ID": lid})
    ok(st == 200 and "TTL" not in ka["result"], "keepalive of an expired lease: 200 without TTL",
       ka)
    s.close()

    # timetolive on a follower is the leader's (etcd forwards it there): exact within 1 s
    st, g, _ = L.post("/v3/lease/grant", {"TTL": 60})
    lid2 = g.get("ID")
    time.sleep(2.5)  # not synchronisation: the TTL must visibly run down
    st, tl, _ = L.post("/v3/lease/timetolive", {"ID": lid2})
    st2, tf, _ = F[0].post("/v3/lease/timetolive", {"ID": lid2})
    ok(st == 200 and st2 == 200 and tf.get("grantedTTL") == "60" and int(tf["TTL"]) <= 58
       and abs(int(tl["TTL"]) - int(tf["TTL"])) <= 1,
       "timetolive on a follower: the leader's remaining TTL (%s vs %s)"
       % (tf.get("TTL"), tl.get("TTL")), (tl, tf))
    st, tf, _ = F[0].post("/v3/lease/timetolive", {"ID": "4242"})
    ok(st == 200 and tf.get("TTL") == "-1", "timetolive of an unknown lease on a follower: TTL -1",
       tf)

    # v2 on the same port
    st, j, hd = http("PUT", F[0].url + "/v2/keys/dir/x", form={"value": "v"})
    ok(st == 201 and j["action"] == "set" and hd.get("X-Etcd-Index"),
       "v2 PUT through a follower: 201 set with X-Etcd-Index", (st, j))
    st, j, _ = http("GET", F[1].url + "/v2/keys/nope")
    ok(st == 404 and j.get("errorCode") == 100, "v2 missing key -> 404 errorCode 100", j)
    st, t, _ = http("GET", F[1].url + "/v2/machines", raw=True)
    ok(st == 200 and all(m.url in t for m in c.members), "/v2/machines lists client URLs", t)

    # a member with another cluster token is refused by its peers
    stranger = Member(c, 3)
    stranger.name, stranger.data = "n3", os.path.join(c.dir, "stranger")
    stranger.log = os.path.join(c.dir, "stranger.log")
    # same name/addresses as n3 but token "other": run it on n3's ports after stopping n3
    n3 = c.members[2]
    n3.kill(signal.SIGTERM)
    c.token = "other"
    try:
        stranger.start()
        refused = wait_for(lambda: "refused us" in stranger.tail(50) and
                           "cluster ID mismatch" in stranger.tail(50) and stranger.status(), 8)
        ok(refused is not None and refused.get("leader") in (None, "0"),
           "a member with another --initial-cluster-token is refused (and elects nobody)",
           stranger.tail() + c.logs())
    finally:
        stranger.kill(signal.SIGTERM)
    c.token = "dcsd-test"

    # restart recovers from the WAL (with --initial-cluster-state existing, as a resumed
    # deployment passes it: the flag is ignored once the data directory exists)
    n3.start(extra=["--initial-cluster-state", "existing"])
    got = wait_for(lambda: n3.post("/v3/kv/range", {"key": b64("/svc/a"), "serializable": True})
                   [1].get("kvs"), 10)
    ok(got and got[0]["value"] == b64("1"), "restarted member recovers its data", n3.tail())
    knows = wait_for(lambda: (n3.status() or {}).get("leader") not in (None, "0"), 5)
    st, put, _ = n3.post("/v3/kv/put", {"key": b64("/svc/after"), "value": b64("2")})
    ok(knows and st == 200, "... knows the leader and takes writes", (put, n3.tail()))

    # SIGTERM on the leader hands leadership over first
    L = c.leader(10)
    t0 = time.monotonic()
    rc = L.kill(signal.SIGTERM)
    rest = [m for m in c.members if m is not L]
    L2 = c.leader(5, among=rest)
    ok(rc == 0 and L2 is not None and time.monotonic() - t0 < 3,
       "SIGTERM on the leader: exits 0 and a new leader is there within %.1f s"
       % (time.monotonic() - t0), c.logs())
    ok(any("transferring leadership" in m for m in [L.tail(30)]),
       "the stopping leader transferred leadership", L.tail())

    # without quorum: a prompt etcd error, never a hang
    rest[0].kill(signal.SIGKILL)
    lone = rest[1]
    t0 = time.monotonic()
    st, e, _ = lone.post("/v3/kv/put", {"key": b64("q"), "value": b64("1")}, timeout=15)
    dt = time.monotonic() - t0
    ok(st == 503 and e.get("code") == 14 and dt < 4,
       "lone member: write fails with Unavailable in %.1f s (%s)" % (dt, e.get("error")), e)
    t0 = time.monotonic()
    st, e, _ = lone.post("/v3/kv/range", {"key": b64("q")}, timeout=15)
    dt = time.monotonic() - t0
    ok(st == 503 and dt < 4, "lone member: linearizable read fails in %.1f s" % dt, e)
    t0 = time.monotonic()
    st, e, _ = http("GET", lone.url + "/v2/keys/dir/x?quorum=true", timeout=15)
    dt = time.monotonic() - t0
    ok(st == 500 and e.get("errorCode") == 300 and dt < 4,
       "lone member: v2 quorum read fails with errorCode 300 in %.1f s" % dt, e)
    st, e, _ = http("GET", lone.url + "/v2/keys/dir/x")
    ok(st == 200 and e["node"]["value"] == "v", "lone member: v2 local read still served", e)
    st, r, _ = lone.post("/v3/kv/range", {"key": b64("/svc/a"), "serializable": True})
    ok(st == 200 and r.get("kvs"), "lone member: serializable read still served")
    for m in c.members:
        if m.up():
            rc = m.kill(signal.SIGTERM)
            ok(rc == 0, "%s exits 0 on SIGTERM (no sanitizer report)" % m.name, m.tail())

    # full down, then up again as a resumed deployment does (--initial-cluster-state
    # existing; no snapshot yet, so the configuration must come from --initial-cluster)
    for m in c.members:
        m.kill(signal.SIGTERM)
    for m in c.members:
        m.start(extra=["--initial-cluster-state", "existing"])
    L = c.leader(10)
    got = L and L.post("/v3/kv/range", {"key": b64("/svc/a")})[1].get("kvs")
    ok(L is not None and got and got[0]["value"] == b64("1"),
       "all members restarted together (state existing) elect a leader and keep the data",
       c.logs())
finally:
    c.stop()
done()
