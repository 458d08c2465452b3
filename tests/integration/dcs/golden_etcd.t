#!/usr/bin/env python3
# test-timeout: 180
"""Golden comparison against REAL etcd 3.4: the v3 JSON and v2 keys scenarios
(golden_scenario_v3.txt, golden_scenario_watch.txt, golden_scenario_v2.txt) run request by request against a
single-member etcd (127.0.50.10, --enable-v2) and against our state machine + codecs
(build/san/tests/dcs_driver: request -> store command -> encode/decode -> apply -> JSON).
Responses are compared field by field after removing what legitimately differs:
cluster_id/member_id/raft_term, lease IDs etcd generates (compared by grant order), the v2
index offset (etcd's v2 store also counts its own membership writes), expiration instants;
TTLs may differ by one second (time passes between the two requests). Error messages of
JSON decoding must start with etcd's text (ours also names the field)."""
import http.client, json, os, re, shutil, socket, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(ROOT, "../../.."))
DRIVER = os.path.join(REPO, "build/san/tests/dcs_driver")
HOST, PORT, PEER = "127.0.50.10", 2379, 2380
n = 0
failures = 0


def tap(ok, what, diag=None):
    global n, failures
    n += 1
    print(("ok" if ok else "not ok") + " %d - %s" % (n, what))
    if not ok:
        failures += 1
        for line in (diag or "").splitlines():
            print("# " + line)
    sys.stdout.flush()


def start_etcd(tmp):
    etcd = shutil.which("etcd") or "/usr/bin/etcd"
    url_c, url_p = "http://%s:%d" % (HOST, PORT), "http://%s:%d" % (HOST, PEER)
    log = open(os.path.join(tmp, "etcd.log"), "w")
    proc = subprocess.Popen([etcd, "--name", "golden", "--data-dir", os.path.join(tmp, "data"),
                             "--listen-client-urls", url_c, "--advertise-client-urls", url_c,
                             "--listen-peer-urls", url_p, "--initial-advertise-peer-urls", url_p,
                             "--initial-cluster", "golden=" + url_p, "--enable-v2"],
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            break
        try:
            c = http.client.HTTPConnection(HOST, PORT, timeout=2)
            c.request("GET", "/health")
            r = c.getresponse()
            if r.status == 200 and b"true" in r.read():
                return proc
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("not ok 1 - etcd did not become healthy (see %s)" % tmp)


def etcd_call(method, target, body):
    c = http.client.HTTPConnection(HOST, PORT, timeout=10)
    headers = {}
    if target.startswith("/v2/") and method in ("PUT", "POST"):
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        c.request(method, target, body=body.encode() if body else None, headers=headers)
        r = c.getresponse()
        data = r.read().decode()
    except OSError as ex:  # e.g. a v2 wait that never fires
        return 0, None, '{"timeout":"%s"}' % ex
    return r.status, r.getheader("X-Etcd-Index"), data


class Driver:
    def __init__(self):
        self.p = subprocess.Popen([DRIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, bufsize=1)

    def call(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        out = self.p.stdout.readline()
        if not out:
            raise RuntimeError("driver died")
        return out.rstrip("\n")


def first_json(text):
    text = text.strip()
    if not text:
        return None
    obj, _ = json.JSONDecoder().raw_decode(text)
    return obj


def shape(text):
    """The JSON with every scalar replaced by "_" but object keys in their original order:
    etcd's gateway prints fields in proto order, and so must we (some clients read the
    raw text)."""
    text = text.strip()
    if not text:
        return ""
    obj, _ = json.JSONDecoder(object_pairs_hook=lambda pairs: pairs).raw_decode(text)

    def walk(o):
        if isinstance(o, list) and all(isinstance(p, tuple) for p in o) and o:
            return "{" + ",".join("%s:%s" % (k, walk(v)) for k, v in o) + "}"
        if isinstance(o, list):
            return "[" + ",".join(walk(x) for x in o) + "]"
        return "_"
    return walk(obj)


# ---------- v3 ----------
lease_names = [{}, {}]  # side -> id -> placeholder
lease_ids = [[], []]  # side -> ids in grant order


def norm_v3(obj, side):
    def walk(o, key=None):
        if isinstance(o, dict):
            out = {}
            for k, v in o.items():
                if k == "header" and isinstance(v, dict):
                    v = {kk: vv for kk, vv in v.items()
                         if kk not in ("cluster_id", "member_id", "raft_term")}
                out[k] = walk(v, k)
            return out
        if isinstance(o, list):
            return [walk(x, key) for x in o]
        if key in ("ID", "lease") and isinstance(o, str) and o in lease_names[side]:
            return lease_names[side][o]
        return o
    return walk(obj)


def cmp_values(a, b, path, tol_keys):
    """etcd value a vs ours b; returns list of differences."""
    diffs = []
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                diffs.append("%s.%s: etcd=%r ours=%r" % (path, k, a.get(k), b.get(k)))
            else:
                diffs += cmp_values(a[k], b[k], path + "." + k, tol_keys)
        return diffs
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return ["%s: etcd has %d items, ours %d" % (path, len(a), len(b))]
        for i, (x, y) in enumerate(zip(a, b)):
            diffs += cmp_values(x, y, "%s[%d]" % (path, i), tol_keys)
        return diffs
    last = path.rsplit(".", 1)[-1]
    if last in tol_keys:
        try:
            if abs(int(a) - int(b)) <= 1:
                return []
        except (TypeError, ValueError):
            pass
    if a != b:
        diffs.append("%s: etcd=%r ours=%r" % (path, a, b))
    return diffs


def compare_errors(e, o):
    """error bodies: same code; store errors same text; decode errors start with etcd's."""
    diffs = []
    if e.get("code") != o.get("code"):
        diffs.append("code: etcd=%r ours=%r" % (e.get("code"), o.get("code")))
    em, om = e.get("message", ""), o.get("message", "")
    if em.startswith("etcdserver:") or not em.startswith(("json:", "illegal", "invalid",
                                                          "unknown", "unexpected")):
        if em != om:
            diffs.append("message: etcd=%r ours=%r" % (em, om))
    elif not (om.startswith(em) or om.split(" (field")[0].split(":")[0] == em.split(":")[0]):
        diffs.append("message: etcd=%r ours=%r" % (em, om))
    if o.get("error") != om:
        diffs.append("error and message differ in ours: %r" % o)
    return diffs


def run_v3(drv, lines):
    for line in lines:
        if line == "SNAPSHOT":
            out = drv.call(line)
            tap(out.startswith("200 "), "v3 snapshot round trip (%s)" % out)
            continue
        method, target, body = (line.split(" ", 2) + [""])[:3]
        bodies = []
        for side in (0, 1):
            b = body
            for i in range(len(lease_ids[side]), 0, -1):
                b = b.replace("$L%d" % i, lease_ids[side][i - 1])
            bodies.append(b)
        st_e, _, raw_e = etcd_call(method, target, bodies[0])
        out = drv.call("%s %s %s" % (method, target, bodies[1]))
        st_o, raw_o = out.split(" ", 1)
        st_o = int(st_o)
        try:
            je, jo = first_json(raw_e), first_json(raw_o)
        except ValueError as ex:
            tap(False, "v3 %s" % line, "unparsable JSON: %s\netcd: %s\nours: %s" % (ex, raw_e, raw_o))
            continue
        if target.endswith("/lease/grant") and st_e == 200 and st_o == 200:
            for side, j in ((0, je), (1, jo)):
                lid = j["ID"]
                lease_ids[side].append(lid)
                if lid not in lease_names[side]:
                    lease_names[side][lid] = "$L%d" % len(lease_ids[side])
        diffs = []
        if st_e != st_o:
            diffs.append("HTTP status: etcd=%d ours=%d" % (st_e, st_o))
        if isinstance(je, dict) and "error" in je and isinstance(jo, dict) and "error" in jo:
            diffs += compare_errors(je, jo)
        else:
            ne, no = norm_v3(je, 0), norm_v3(jo, 1)
            for j in (ne, no):  # etcd lists a lease's keys in Go map order: compare as sets
                if isinstance(j, dict) and isinstance(j.get("keys"), list):
                    j["keys"] = sorted(j["keys"])
            diffs += cmp_values(ne, no, "", {"TTL"})
        if not diffs and shape(raw_e) != shape(raw_o):
            diffs.append("field order: etcd %s ours %s" % (shape(raw_e), shape(raw_o)))
        # keepalive is a stream: one object then a newline, like etcd
        if target.endswith("/lease/keepalive") and raw_o.strip() != raw_o.rstrip("\n").strip():
            diffs.append("keepalive framing")
        tap(not diffs, "v3 %s" % line[:110],
            "\n".join(diffs) + "\netcd: %s\nours: %s" % (raw_e.strip(), raw_o))


def poll_gone(drv, method, target_e, target_o, body):
    """Repeats a read on both sides until the key is gone (v3: no kvs; v2: error 100),
    as lease/TTL expiry happens on each side's own clock. Returns the final answers."""
    deadline = time.time() + 15
    done = [None, None]
    while time.time() < deadline and None in done:
        if done[0] is None:
            st, idx, raw = etcd_call(method, target_e, body)
            j = first_json(raw) or {}
            if ("kvs" not in j) if target_e.startswith("/v3/") else j.get("errorCode") == 100:
                done[0] = (st, idx, raw)
        if done[1] is None:
            out = drv.call("%s %s %s" % (method, target_o, body))
            parts = out.split(" ", 2) if target_o.startswith("/v2/") else out.split(" ", 1)
            j = first_json(parts[-1]) or {}
            if ("kvs" not in j) if target_o.startswith("/v3/") else j.get("errorCode") == 100:
                done[1] = out
        if None in done:
            time.sleep(0.1)  # polling interval while waiting for the expiry condition
    return done


# ---------- watch streams ----------
class EtcdWatch:
    """One /v3/watch request to etcd: the body sent at once, the chunked response read
    incrementally and split into JSON messages."""

    def __init__(self, body):
        self.sock = socket.create_connection((HOST, PORT), timeout=5)
        data = body.encode()
        self.sock.sendall(b"POST /v3/watch HTTP/1.1\r\nHost: golden\r\nContent-Type: "
                          b"application/json\r\nContent-Length: %d\r\n\r\n" % len(data) + data)
        self.raw = b""
        self.body = b""
        self.headers = None
        self.msgs = []

    def _parse(self):
        if self.headers is None:
            i = self.raw.find(b"\r\n\r\n")
            if i < 0:
                return
            self.headers, self.raw = self.raw[:i], self.raw[i + 4:]
        while True:
            i = self.raw.find(b"\r\n")
            if i < 0:
                return
            size = int(self.raw[:i].split(b";")[0], 16)
            if len(self.raw) < i + 2 + size + 2:
                return
            self.body += self.raw[i + 2:i + 2 + size]
            self.raw = self.raw[i + 2 + size + 2:]
            text = self.body.decode()
            dec = json.JSONDecoder()
            pos = 0
            while True:
                while pos < len(text) and text[pos].isspace():
                    pos += 1
                try:
                    obj, end = dec.raw_decode(text, pos)
                except ValueError:
                    break
                self.msgs.append(obj)
                pos = end
            self.body = text[pos:].encode()

    def read(self, count, timeout):
        """Messages until `count` are there or the deadline passes."""
        deadline = time.time() + timeout
        while len(self.msgs) < count and time.time() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.time()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                break
            if not data:
                break
            self.raw += data
            self._parse()
        out, self.msgs = self.msgs[:count], self.msgs[count:]
        return out


def run_watch(drv, lines):
    streams = []
    last_rev = [0]

    def subst(text):
        return re.sub(r"\$REV([+-]\d+)?", lambda m: str(last_rev[0] + int(m.group(1) or 0)), text)

    for line in lines:
        line = subst(line)
        if line.startswith("WATCH "):
            body = line[6:]
            streams.append(EtcdWatch(body))
            out = drv.call(line)
            tap(out.startswith("200 "), "watch: open stream %d (%s)" % (len(streams), body[:80]))
            continue
        if line.startswith("WATCHREAD "):
            n = int(line.split()[1])
            out = drv.call(line)
            ours = json.loads(out.split(" ", 1)[1])
            theirs = streams[n - 1].read(len(ours), 5.0)
            extra = streams[n - 1].read(1, 0.3) if len(theirs) == len(ours) else []

            def canon(msgs, side):
                # etcd serves the watchers of one stream in Go map order: event messages
                # of the same revision are compared as a set (ordered by watch_id)
                out = [norm_v3(m, side) for m in msgs]
                i = 0
                while i < len(out):
                    j = i
                    rev = out[i].get("result", {}).get("header", {}).get("revision")
                    while (j < len(out) and "events" in out[j].get("result", {}) and
                           out[j]["result"]["header"].get("revision") == rev):
                        j += 1
                    if j > i + 1:
                        out[i:j] = sorted(out[i:j], key=lambda m: int(m["result"].get("watch_id", 0)))
                    i = max(j, i + 1)
                return out
            diffs = cmp_values(canon(theirs + extra, 0), canon(ours, 1), "", set())
            tap(not diffs, "watch: stream %d sends %d messages" % (n, len(ours)),
                "\n".join(diffs) + "\netcd: %s\nours: %s" % (json.dumps(theirs + extra), out))
            continue
        poll = line.startswith("POLLGONE ")
        if poll:
            line = line[9:]
        method, target, body = (line.split(" ", 2) + [""])[:3]
        if poll:
            got_e, out = poll_gone(drv, method, target, target, body)
            if got_e is None or out is None:
                tap(False, "watch: %s never went away (etcd %s, ours %s)" % (line, got_e, out))
                continue
            st_e, _, raw_e = got_e
        else:
            st_e, _, raw_e = etcd_call(method, target, body)
            out = drv.call(line)
        st_o, raw_o = out.split(" ", 1)
        je, jo = first_json(raw_e), first_json(raw_o)
        diffs = cmp_values(norm_v3(je, 0), norm_v3(jo, 1), "", {"TTL"})
        if st_e != int(st_o):
            diffs.append("HTTP status: etcd=%d ours=%s" % (st_e, st_o))
        tap(not diffs, "watch: %s" % line[:100], "\n".join(diffs) + "\netcd: %s\nours: %s" % (raw_e, raw_o))
        rev = (je or {}).get("header", {}).get("revision")
        if rev:
            last_rev[0] = int(rev)
    for s in streams:
        s.sock.close()


# ---------- v2 ----------
def run_v2(drv, lines):
    offset = None
    last = [0, 0]

    def norm(o, side):
        def sub(v):
            return v - offset if side == 0 and isinstance(v, int) and v else v

        def walk(x, key=None):
            if isinstance(x, dict):
                return {k: walk(v, k) for k, v in x.items()}
            if isinstance(x, list):
                return [walk(v, key) for v in x]
            if key in ("modifiedIndex", "createdIndex", "index"):
                return sub(x)
            if key == "key" and side == 0:
                return re.sub(r"\d{20}", lambda m: "%020d" % (int(m.group(0)) - offset), x)
            if key == "expiration":
                return "<time>"
            if key == "cause" and side == 0:  # "[prevIndex != modifiedIndex]"
                # the given prevIndex is shifted too when the request used INDEX
                shift_given = offset if "INDEX" in target else 0
                return re.sub(r"\[(\d+) != (\d+)\]",
                              lambda m: "[%d != %d]" % (int(m.group(1)) - shift_given,
                                                        int(m.group(2)) - offset), x)
            return x

        def unsorted(x):  # etcd lists a directory in Go map order: compare as a set
            if isinstance(x, dict):
                if isinstance(x.get("nodes"), list):
                    x["nodes"] = sorted((unsorted(c) for c in x["nodes"]), key=lambda c: c["key"])
                return x
            return x
        o = walk(o)
        if "sorted=true" not in target and isinstance(o, dict) and isinstance(o.get("node"), dict):
            unsorted(o["node"])
        return o

    for line in lines:
        if line == "SNAPSHOT":
            out = drv.call(line)
            tap(out.startswith("200 "), "v2 snapshot round trip (%s)" % out)
            continue
        poll = line.startswith("POLLGONE ")
        if poll:
            line = line[9:]
        method, target, body = (line.split(" ", 2) + [""])[:3]
        targets = []
        for side in (0, 1):
            targets.append(re.sub(r"INDEX([+-]\d+)", lambda m: str(last[side] + int(m.group(1))),
                                  target))
        if poll:
            got_e, out = poll_gone(drv, method, targets[0], targets[1], body)
            if got_e is None or out is None:
                tap(False, "v2 %s never went away (etcd %s, ours %s)" % (line, got_e, out))
                continue
            st_e, idx_e, raw_e = got_e
        else:
            st_e, idx_e, raw_e = etcd_call(method, targets[0], body)
            out = drv.call("%s %s %s" % (method, targets[1], body))
        st_o, idx_o, raw_o = out.split(" ", 2)
        st_o, idx_o = int(st_o), int(idx_o)
        idx_e = int(idx_e or 0)
        if offset is None:
            offset = idx_e - idx_o
        last = [idx_e, idx_o]
        je, jo = first_json(raw_e), first_json(raw_o)
        diffs = []
        if st_e != st_o:
            diffs.append("HTTP status: etcd=%d ours=%d" % (st_e, st_o))
        # etcd sends no X-Etcd-Index with request (form) errors; ours reports 0 then
        if (idx_e - offset if idx_e else 0) != idx_o:
            diffs.append("X-Etcd-Index: etcd=%d (-%d) ours=%d" % (idx_e, offset, idx_o))
        ne, no = norm(je, 0), norm(jo, 1)
        # request errors (2xx codes) carry index 0 on both sides: no offset
        if isinstance(je, dict) and 200 <= je.get("errorCode", 0) < 300:
            ne["index"] = je.get("index")
        diffs += cmp_values(ne, no, "", {"ttl"})
        tap(not diffs, "v2 %s" % line[:110],
            "\n".join(diffs) + "\netcd: %s\nours: %s" % (raw_e.strip(), raw_o))


def load(name):
    with open(os.path.join(ROOT, name)) as f:
        return [l.rstrip("\n") for l in f if l.strip() and not l.startswith("#")]


def main():
    if not os.access(DRIVER, os.X_OK):
        print("not ok 1 - driver %s not built (make test-bins)" % DRIVER)
        return 1
    tmp = tempfile.mkdtemp(prefix="dcs-golden-")
    etcd = start_etcd(tmp)
    drv = Driver()
    try:
        run_v3(drv, load("golden_scenario_v3.txt"))
        run_watch(drv, load("golden_scenario_watch.txt"))
        run_v2(drv, load("golden_scenario_v2.txt"))
    finally:
        etcd.terminate()
        try:
            etcd.wait(10)
        except subprocess.TimeoutExpired:
            etcd.kill()
        drv.p.stdin.close()
        drv.p.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    tap(drv.p.returncode == 0, "driver exited cleanly (no sanitizer report)")
    print("1..%d" % n)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
