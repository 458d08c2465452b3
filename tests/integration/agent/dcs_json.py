#!/usr/bin/python3
"""Tiny etcd v3 JSON-gateway client for the agent tests (works with real etcd 3.4 and with
appliance-dcs, which serves the gateway but not gRPC, so etcdctl cannot be used with it).

  dcs_json.py ENDPOINTS get KEY          prints the value (nothing if absent), exit 0
  dcs_json.py ENDPOINTS put KEY VALUE
  dcs_json.py ENDPOINTS del-prefix PREFIX
  dcs_json.py ENDPOINTS health           exit 0 when a linearizable read succeeds
ENDPOINTS: comma-separated base URLs; the first that answers is used."""
import base64, json, sys, urllib.request

def b64(s):
    return base64.b64encode(s.encode()).decode()

def call(eps, path, body):
    last = None
    for ep in eps.split(","):
        try:
            req = urllib.request.Request(ep + path, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=2) as r:
                return json.loads(r.read())
        except Exception as e:  # next endpoint
            last = e
    raise SystemExit("dcs_json: %s failed on every endpoint: %s" % (path, last))

def prefix_end(p):
    b = bytearray(p.encode())
    b[-1] += 1
    return base64.b64encode(bytes(b)).decode()

eps, cmd = sys.argv[1], sys.argv[2]
if cmd == "get":
    r = call(eps, "/v3/kv/range", {"key": b64(sys.argv[3])})
    for kv in r.get("kvs", []):
        sys.stdout.write(base64.b64decode(kv.get("value", "")).decode() + "\n")
elif cmd == "put":
    call(eps, "/v3/kv/put", {"key": b64(sys.argv[3]), "value": b64(sys.argv[4])})
elif cmd == "del-prefix":
    call(eps, "/v3/kv/deleterange", {"key": b64(sys.argv[3]), "range_end": prefix_end(sys.argv[3])})
elif cmd == "health":
    call(eps, "/v3/kv/range", {"key": b64("health-probe")})
else:
    raise SystemExit("usage: dcs_json.py ENDPOINTS get|put|del-prefix|health ...")
