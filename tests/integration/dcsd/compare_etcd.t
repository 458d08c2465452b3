#!/usr/bin/python3
# test-timeout: 270
"""The v3 JSON scenario of tests/integration/dcs/golden_scenario_v3.txt, sent over real HTTP
to a real etcd 3.4 (one member, 127.0.80.10) and to our 3-member appliance-dcs cluster,
rotating the member for each request (so writes are forwarded by followers and
linearizable reads go through ReadIndex). Responses are compared field by field, modulo
what legitimately differs: cluster_id/member_id/raft_term, lease IDs (compared by grant
order), TTLs +-1 s, and decode error texts (ours starts with etcd's and names the field).
Revisions are compared exactly: both sides start empty. Then a watch stream over chunked
HTTP on both, compared the same way."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dcsd import ROOT, Cluster, b64, done, http, need_binary, ok, wait_for  # noqa: E402

SCENARIO = os.path.join(ROOT, "tests/integration/dcs/golden_scenario_v3.txt")
ETCD = "127.0.80.10"


def start_etcd(tmp):
    uc, up = "http://%s:2379" % ETCD, "http://%s:2380" % ETCD
    log = open(os.path.join(tmp, "etcd.log"), "w")
    p = subprocess.Popen(["etcd", "--name", "golden", "--data-dir", os.path.join(tmp, "etcd"),
                          "--listen-client-urls", uc, "--advertise-client-urls", uc,
                          "--listen-peer-urls", up, "--initial-advertise-peer-urls", up,
                          "--initial-cluster", "golden=" + up], stdout=log,
                         stderr=subprocess.STDOUT)
    healthy = wait_for(lambda: http("GET", uc + "/health", timeout=1)[1].get("health") == "true",
                       30)
    return p if healthy else None


def first_json(text):
    text = text.strip() if isinstance(text, str) else text
    if isinstance(text, str):
        if not text:
            return None
        return json.JSONDecoder().raw_decode(text)[0]
    return text


leases = [{}, {}]


def norm(o, side, key=None):
    if isinstance(o, dict):
        out = {}
        for k, v in o.items():
            if k == "header":
                v = {kk: vv for kk, vv in v.items()
                     if kk not in ("cluster_id", "member_id", "raft_term")}
            out[k] = norm(v, side, k)
        if isinstance(out.get("keys"), list):
            out["keys"] = sorted(out["keys"])
        return out
    if isinstance(o, list):
        return [norm(x, side, key) for x in o]
    if key in ("ID", "lease") and isinstance(o, str) and o in leases[side]:
        return leases[side][o]
    return o


def diff(a, b, path=""):
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append("%s.%s: etcd=%r ours=%r" % (path, k, a.get(k), b.get(k)))
            else:
                out += diff(a[k], b[k], path + "." + k)
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return ["%s: etcd has %d items, ours %d" % (path, len(a), len(b))]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in diff(x, y, "%s[%d]" % (path, i))]
    if path.rsplit(".", 1)[-1] in ("TTL", "grantedTTL") and a != b:
        try:
            if abs(int(a) - int(b)) <= 1:
                return []
        except (TypeError, ValueError):
            pass
    return [] if a == b else ["%s: etcd=%r ours=%r" % (path, a, b)]


def error_diff(e, o):
    d = []
    if e.get("code") != o.get("code"):
        d.append("code: etcd=%r ours=%r" % (e.get("code"), o.get("code")))
    em, om = e.get("message", ""), o.get("message", "")
    if em.startswith("etcdserver:") and em != om:
        d.append("message: etcd=%r ours=%r" % (em, om))
    elif not em.startswith("etcdserver:") and not (om.startswith(em) or
                                                    om.split(":")[0] == em.split(":")[0]):
        d.append("message: etcd=%r ours=%r" % (em, om))
    return d


need_binary()
tmp = tempfile.mkdtemp(prefix="dcsd-cmp-")
etcd = start_etcd(tmp)
c = Cluster(v2=False).start()
try:
    ok(etcd is not None, "real etcd 3.4 up on %s" % ETCD)
    ok(c.leader(15) is not None, "appliance-dcs cluster up", c.logs())
    lines = [ln.rstrip("\n") for ln in open(SCENARIO) if ln.strip() and not ln.startswith("#")]
    ids = [[], []]
    k = 0
    for line in lines:
        if line == "SNAPSHOT":
            continue
        method, target, body = (line.split(" ", 2) + [""])[:3]
        res = []
        for side in (0, 1):
            b = body
            for i in range(len(ids[side]), 0, -1):
                b = b.replace("$L%d" % i, ids[side][i - 1])
            url = "http://%s:2379" % ETCD if side == 0 else c.members[k % 3].url
            st, raw, _ = http(method, url + target, b or None, raw=True, timeout=10)
            res.append((st, first_json(raw)))
        k += 1
        (se, je), (so, jo) = res
        if target.endswith("/lease/grant") and se == 200 and so == 200:
            for side, j in ((0, je), (1, jo)):
                ids[side].append(j["ID"])
                leases[side][j["ID"]] = "$L%d" % len(ids[side])
        d = [] if se == so else ["HTTP status: etcd=%d ours=%d" % (se, so)]
        if isinstance(je, dict) and "error" in je and isinstance(jo, dict) and "error" in jo:
            d += error_diff(je, jo)
        else:
            d += diff(norm(je, 0), norm(jo, 1))
        ok(not d, "%s (via %s)" % (line[:100], c.members[(k - 1) % 3].name),
           "\n".join(d) + "\netcd: %s\nours: %s" % (json.dumps(je)[:600], json.dumps(jo)[:600]))

    # watch over chunked HTTP: create from revision 1 on a fresh prefix, then two writes
    def watch_msgs(host, port, start):
        s = socket.create_connection((host, port), timeout=5)
        body = json.dumps({"create_request": {"key": b64("w/"), "range_end": b64("w0"),
                                              "start_revision": str(start), "prev_kv": True}})
        s.sendall(("POST /v3/watch HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                   % (len(body), body)).encode())
        return s
    revs = []
    for url in ("http://%s:2379" % ETCD, c.members[1].url):
        st, j, _ = http("POST", url + "/v3/kv/put", {"key": b64("w/1"), "value": b64("a")})
        revs.append(int(j["header"]["revision"]))
        http("POST", url + "/v3/kv/put", {"key": b64("w/1"), "value": b64("b")})
        http("POST", url + "/v3/kv/deleterange", {"key": b64("w/1")})
    streams = [watch_msgs(ETCD, 2379, revs[0]), watch_msgs(c.members[2].host, 2379, revs[1])]
    got = [b"", b""]

    def three_events():
        for i, s in enumerate(streams):
            s.settimeout(0.1)
            try:
                got[i] += s.recv(65536)
            except socket.timeout:
                pass
        return all(g.count(b'"events"') >= 3 or g.count(b'"kv"') >= 3 for g in got)
    wait_for(three_events, 5)

    def parse(raw):
        body = raw.split(b"\r\n\r\n", 1)[-1].decode(errors="replace")
        objs, dec, i = [], json.JSONDecoder(), 0
        while True:
            j = body.find('{"result"', i)
            if j < 0:
                return objs
            try:
                o, i = dec.raw_decode(body, j)
            except ValueError:
                return objs
            objs.append(o)
    we, wo = parse(got[0]), parse(got[1])
    for o in we + wo:
        o["result"].pop("header", None)
    ok(b"chunked" in got[1], "watch answer is Transfer-Encoding: chunked")
    d = diff(we, wo)
    ok(not d and len(we) >= 2, "watch stream (created, events with prev_kv and DELETE) as etcd",
       "\n".join(d) + "\netcd: %s\nours: %s" % (we, wo))
    for s in streams:
        s.close()
finally:
    c.stop()
    if etcd:
        etcd.terminate()
        etcd.wait()
    shutil.rmtree(tmp, ignore_errors=True)
done()
