#!/usr/bin/python3
# test-timeout: 270
"""Kill -9 the appliance-dcs leader under write load (4 clients, each writing unique keys
through any member, moving to the next member on an error): writes must resume within 2
election timeouts of the kill, no acknowledged write may be lost (checked on every member,
including the killed one after its restart, which must also catch up)."""
import http.client
import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dcsd import ELECTION, Cluster, b64, done, need_binary, ok, unb64, wait_for  # noqa: E402

need_binary()
c = Cluster(v2=False).start()
acked = []  # (time sent, time acknowledged, key)
lock = threading.Lock()
stop = threading.Event()


def writer(wid):
    seq, mi, conn = 0, wid % 3, None
    while not stop.is_set():
        m = c.members[mi]
        key = "load/%d/%06d" % (wid, seq)
        seq += 1
        try:
            if conn is None:
                conn = http.client.HTTPConnection(m.host, 2379, timeout=3)
            t_sent = time.monotonic()
            conn.request("POST", "/v3/kv/put", json.dumps({"key": b64(key), "value": b64("v")}),
                         {"Content-Type": "application/json"})
            r = conn.getresponse()
            body = r.read()
            if r.status == 200 and b'"revision"' in body:
                with lock:
                    acked.append((t_sent, time.monotonic(), key))
                continue
        except (OSError, http.client.HTTPException):
            pass
        if conn:
            conn.close()
        conn = None
        mi = (mi + 1) % 3
        time.sleep(0.01)


try:
    L = c.leader(15)
    ok(L is not None, "cluster up", c.logs())
    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    wait_for(lambda: len(acked) > 200, 10)
    n_before = len(acked)
    t_kill = time.monotonic()
    L.kill(signal.SIGKILL)
    # the first write SENT after the kill that was acknowledged (earlier ones may still be
    # answered from entries the old leader had committed)
    resumed = wait_for(lambda: min((ta for ts, ta, _ in acked[n_before:] if ts > t_kill),
                                   default=None), 10)
    gap_ms = (resumed - t_kill) * 1000 if resumed else None
    ok(resumed is not None and gap_ms <= 2 * ELECTION,
       "writes resume %s ms after the leader's kill (limit 2 election timeouts = %d ms)"
       % ("%.0f" % gap_ms if gap_ms else "never", 2 * ELECTION), c.logs())
    wait_for(lambda: len(acked) > n_before + 300, 10)
    L.start()  # restart the killed member: it must recover and catch up
    wait_for(lambda: len(acked) > n_before + 600, 10)
    stop.set()
    for t in threads:
        t.join()
    keys = {k for _, _, k in acked}
    ok(len(keys) > 600, "%d writes acknowledged (%d before the kill)" % (len(keys), n_before))

    def has_all(m):
        st, j, _ = m.post("/v3/kv/range", {"key": b64("load/"), "range_end": b64("load0"),
                                            "keys_only": True, "serializable": True}, timeout=10)
        return keys - {unb64(kv["key"]) for kv in j.get("kvs", [])}
    for m in c.members:
        missing = wait_for(lambda: not has_all(m), 10)
        left = has_all(m) if not missing else set()
        ok(missing is not None, "%s has every acknowledged write%s" % (
            m.name, " (restarted after kill -9)" if m is L else ""),
           "missing %d, e.g. %s\n%s" % (len(left), sorted(left)[:5], m.tail()))
finally:
    stop.set()
    c.stop()
done()
