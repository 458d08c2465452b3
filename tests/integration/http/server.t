#!/usr/bin/env python3
# lib/http server against real clients: curl (CLI) and python3 http.client, plus raw
# sockets for what clients do not do on purpose (pipelining, garbage, slowloris, half a
# request). The server is tests/integration/http/test_server.c (sanitizer build), on
# 127.0.60.0/24 with kernel-chosen ports.
# test-timeout: 180
import http.client
import os
import select
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.abspath(__file__)) + "/../../.."
os.chdir(ROOT)
BIN = "build/san/tests/http_test_server"

n = 0
failures = 0


def ok(cond, what, detail=""):
    global n, failures
    n += 1
    if cond:
        print(f"ok {n} - {what}", flush=True)
    else:
        failures += 1
        print(f"not ok {n} - {what}", flush=True)
        if detail:
            for line in str(detail).splitlines()[:20]:
                print(f"# {line}", flush=True)


def build():
    r = subprocess.run(["make", "-s", "-f", "Makefile", "-f", "tests/integration/http/build.mk", BIN],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(f"not ok 1 - build {BIN}\n# " + r.stderr.replace("\n", "\n# "))
        print("1..1")
        sys.exit(1)


class Server:
    def __init__(self, host, *args):
        self.host = host
        self.err = tempfile.TemporaryFile()
        self.p = subprocess.Popen([BIN, host, "0", *map(str, args)], stdout=subprocess.PIPE,
                                  stderr=self.err, text=True)
        line = self.p.stdout.readline().split()
        if len(line) != 2 or line[0] != "ready":
            raise RuntimeError(f"server did not start: {line}")
        self.port = int(line[1])

    def url(self, path):
        return f"http://{self.host}:{self.port}{path}"

    def stop(self):
        self.p.terminate()
        rc = self.p.wait(30)
        self.err.seek(0)
        return rc, self.err.read().decode(errors="replace")


def curl(*args):
    r = subprocess.run(["curl", "-sS", "--max-time", "10", *args], capture_output=True)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")


def raw(srv, data=b"", timeout=5.0):
    s = socket.create_connection((srv.host, srv.port), timeout=timeout)
    if data:
        s.sendall(data)
    return s


def read_until_close(s, deadline_s=5.0):
    """Reads until EOF; returns (bytes, closed_by_peer)."""
    s.settimeout(0.2)
    out = b""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            b = s.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return out, True
        if not b:
            return out, True
        out += b
    return out, False


def read_responses(s, count, deadline_s=5.0, heads=()):
    """Reads `count` Content-Length-framed responses from a raw socket; the ones whose
    index is in `heads` answer a HEAD (no body)."""
    s.settimeout(0.2)
    buf = b""
    resps = []
    end = time.monotonic() + deadline_s
    while len(resps) < count and time.monotonic() < end:
        while True:
            i = buf.find(b"\r\n\r\n")
            if i < 0:
                break
            head = buf[:i].decode()
            cl = 0
            for line in head.split("\r\n")[1:] if len(resps) not in heads else []:
                k, _, v = line.partition(":")
                if k.lower() == "content-length":
                    cl = int(v)
            if len(buf) < i + 4 + cl:
                break
            resps.append((head, buf[i + 4:i + 4 + cl]))
            buf = buf[i + 4 + cl:]
        if len(resps) >= count:
            break
        try:
            b = s.recv(65536)
        except socket.timeout:
            continue
        if not b:
            break
        buf += b
    return resps, buf


def wait_for(cond, timeout_s, step=0.02):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()


def stats(srv):
    c = http.client.HTTPConnection(srv.host, srv.port, timeout=5)
    c.request("GET", "/stats")
    body = c.getresponse().read().decode()
    c.close()
    return dict(kv.split("=") for kv in body.split())


build()
# header timeout 1 s, idle timeout 1.5 s, 1100 connections, 1 MiB bodies
srv = Server("127.0.60.1", 1000, 1500, 1100, 1048576)
small = Server("127.0.60.2", 10000, 60000, 5)

# --- curl ---
rc, out, err = curl("-i", srv.url("/hello"))
ok(rc == 0 and out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"\r\n\r\nhello world\n")
   and b"Content-Length: 12\r\n" in out, "curl GET: status line, Content-Length, body", out)

rc, out, err = curl("-I", srv.url("/hello"))
ok(rc == 0 and b"Content-Length: 12\r\n" in out and out.endswith(b"\r\n\r\n"),
   "curl HEAD: headers with the GET's Content-Length, no body", out)

payload = os.urandom(200000)
with tempfile.NamedTemporaryFile() as f:
    f.write(payload)
    f.flush()
    rc, out, err = curl("--data-binary", "@" + f.name, srv.url("/echo?a=b%20c"), "-D", "/dev/stderr")
    ok(rc == 0 and out == payload and "X-Method: POST" in err and "X-Query-A: b c" in err,
       "curl POST 200 kB binary body echoed; query parameter decoded", err)
    t0 = time.monotonic()
    rc, out, err = curl("-H", "Transfer-Encoding: chunked", "-H", "Expect: 100-continue",
                        "--data-binary", "@" + f.name,
                        srv.url("/echo"), "-v")
    took = time.monotonic() - t0
    ok(rc == 0 and out == payload and "100 Continue" in err and took < 0.9,
       f"curl chunked upload (Expect: 100-continue answered, {took:.2f}s) echoed", err[-800:])

rc, out, err = curl("-X", "PUT", "--data-binary", "x" * 10, srv.url("/%65cho%2Fz%20y"), "-D",
                    "/dev/stderr")
ok(rc == 0 and "X-Path: /echo/z y" in err and "X-Method: PUT" in err,
   "percent-decoded path reaches the handler", err)

s = raw(srv, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n" + b"y" * 1000)
out, closed = read_until_close(s)
ok(out.startswith(b"HTTP/1.1 413 ") and closed, "Content-Length above max_body_bytes -> 413",
   out[:200])

# --- python http.client ---
c = http.client.HTTPConnection(srv.host, srv.port, timeout=5)
socks = set()
bodies = []
for i in range(3):
    c.request("GET", "/hello")
    r = c.getresponse()
    bodies.append(r.read())
    socks.add(id(c.sock))
c.request("POST", "/echo", body=iter([b"ab", b"cd", b"ef"]), encode_chunked=True,
          headers={"Transfer-Encoding": "chunked"})
r = c.getresponse()
echoed = r.read()
socks.add(id(c.sock))
ok(bodies == [b"hello world\n"] * 3 and len(socks) == 1 and echoed == b"abcdef",
   "http.client: keep-alive over 4 requests incl. chunked request body", (bodies, socks, echoed))

c.request("GET", "/stream?n=5&ms=200")
r = c.getresponse()
t0 = time.monotonic()
stamps = []
data = b""
while True:
    line = r.readline()
    if not line:
        break
    stamps.append(time.monotonic() - t0)
    data += line
ok(r.getheader("Transfer-Encoding") == "chunked" and data == b"".join(
    b"chunk %d\n" % i for i in range(5)) and stamps[0] < 0.5 and stamps[-1] > 0.7,
   f"streaming response: chunks arrive as sent ({', '.join(f'{s:.2f}' for s in stamps)} s)", data)
c.request("GET", "/hello")
ok(c.getresponse().read() == b"hello world\n", "connection reusable after a chunked stream")
c.close()

c = http.client.HTTPConnection(srv.host, srv.port, timeout=5)
c.request("GET", "/hello", headers={"Connection": "close"})
r = c.getresponse()
body = r.read()
s = c.sock
ok(r.getheader("Connection") == "close" and body == b"hello world\n",
   "Connection: close is answered with Connection: close")
c.close()

# --- raw sockets: pipelining, HEAD framing, HTTP/1.0 ---
s = raw(srv, b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
             b"GET /defer?ms=150 HTTP/1.1\r\nHost: x\r\n\r\n"
             b"HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n"
             b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nping"
             b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
resps, rest = read_responses(s, 5, heads=(2,))
tail, closed = read_until_close(s)
got = [b for h, b in resps]
ok(got == [b"hello world\n", b"deferred 150\n", b"", b"ping", b"hello world\n"] and
   resps[2][0].endswith("Content-Length: 12") and resps[4][0].endswith("Connection: close") and
   rest + tail == b"" and closed,
   "pipelined requests (one deferred, a HEAD) answered in order, then closed", (resps, rest, tail))
s.close()

# A deep pipeline: 3000 requests in one burst, answered in order (the server takes a
# bounded number per loop turn, so it also keeps serving others meanwhile).
N = 3000
s = raw(srv, b"".join(b"GET /echo?a=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(N)))
t0 = time.monotonic()
cc = http.client.HTTPConnection(srv.host, srv.port, timeout=5)
cc.request("GET", "/hello")
other = cc.getresponse().read()
other_took = time.monotonic() - t0
cc.close()
resps, rest = read_responses(s, N, deadline_s=30)
order = [h.split("X-Query-A: ")[1].split("\r\n")[0] if "X-Query-A: " in h else "?" for h, b in resps]
ok(len(resps) == N and order == [str(i) for i in range(N)] and other == b"hello world\n",
   f"deep pipeline: {len(resps)} of {N} answered in order in {time.monotonic() - t0:.2f}s; "
   f"another client served after {other_took:.3f}s", (len(resps), order[:5], rest[:100]))
s.close()

s = raw(srv, b"GET /hello HTTP/1.0\r\n\r\n")
out, closed = read_until_close(s)
ok(out.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in out and closed,
   "HTTP/1.0 request: answered and closed", out)
s = raw(srv, b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
resps, _ = read_responses(s, 1)
s.sendall(b"GET /stream?n=2&ms=10 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
out, closed = read_until_close(s)
ok(len(resps) == 1 and "Connection: keep-alive" in resps[0][0] and
   out.endswith(b"\r\n\r\nchunk 0\nchunk 1\n") and b"chunked" not in out and closed,
   "HTTP/1.0 keep-alive honoured; a 1.0 stream is close-delimited", (resps, out))
s.close()

# --- bad clients ---
s = raw(srv, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage")
out, closed = read_until_close(s)
ok(out.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"Connection: close" in out and closed
   and out.endswith(b"\r\n\r\nBad Request: invalid character in the method\n"),
   "garbage bytes -> 400 naming the problem, and close", out)
s = raw(srv, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10000 + b"\r\n\r\n")
out, closed = read_until_close(s)
ok(out.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n") and closed,
   "oversized header section -> 431 and close", out[:200])
s = raw(srv, b"GET / HTTP/2.0\r\n\r\n")
out, closed = read_until_close(s)
ok(out.startswith(b"HTTP/1.1 505 ") and closed, "HTTP/2.0 request line -> 505", out[:200])
s = raw(srv, b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n")
out, closed = read_until_close(s)
ok(out.startswith(b"HTTP/1.1 501 ") and closed, "unknown Transfer-Encoding -> 501", out[:200])

# Slowloris: one byte every 150 ms never completes the request; meanwhile other clients are
# served at once; the slow one gets 408 and is closed at the 1 s header timeout.
slow = raw(srv)
t0 = time.monotonic()
slow.setblocking(False)
partial = b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 100
served = []
sent = 0
closed_at = None
answer = b""
while time.monotonic() - t0 < 4 and closed_at is None:
    try:
        slow.send(partial[sent:sent + 1])
        sent += 1
    except (BlockingIOError, BrokenPipeError, ConnectionResetError):
        pass
    t1 = time.monotonic()
    cc = http.client.HTTPConnection(srv.host, srv.port, timeout=5)
    cc.request("GET", "/hello")
    if cc.getresponse().read() == b"hello world\n":
        served.append(time.monotonic() - t1)
    cc.close()
    r, _, _ = select.select([slow], [], [], 0.15)
    if r:
        try:
            b = slow.recv(4096)
        except ConnectionResetError:
            b = b""
        answer += b
        if not b:
            closed_at = time.monotonic() - t0
slow.close()
ok(closed_at is not None and 0.9 <= closed_at <= 2.0 and answer.startswith(b"HTTP/1.1 408 "),
   f"slowloris dropped at the header timeout ({closed_at}s) with 408", answer)
ok(len(served) >= 4 and max(served) < 0.25,
   f"other clients served promptly meanwhile ({len(served)} requests, max {max(served or [9]):.3f}s)")

# Idle keep-alive connection closed after the idle timeout (1.5 s).
s = raw(srv, b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
resps, _ = read_responses(s, 1)
t0 = time.monotonic()
out, closed = read_until_close(s, 4)
took = time.monotonic() - t0
ok(len(resps) == 1 and closed and out == b"" and 1.3 <= took <= 2.5,
   f"idle keep-alive connection closed after the idle timeout ({took:.2f}s)")

# A half request followed by EOF: closed without an answer, server unharmed.
s = raw(srv, b"GET /hello HTTP/1.1\r\nHo")
s.shutdown(socket.SHUT_WR)
out, closed = read_until_close(s)
ok(closed and out == b"", "half a request then EOF: closed silently", out)

# A client leaving a deferred request and a watch stream: on_close runs for both.
before = int(stats(srv)["closed"])
s1 = raw(srv, b"GET /defer?ms=5000 HTTP/1.1\r\nHost: x\r\n\r\n")
s2 = raw(srv, b"GET /watch HTTP/1.1\r\nHost: x\r\n\r\n")
s2.settimeout(5)
first = b""
while b"chunk 0" not in first:
    b = s2.recv(4096)
    if not b:
        break
    first += b
s1.close()
s2.close()
got = wait_for(lambda: int(stats(srv)["closed"]) - before >= 2, 5)
ok(first.startswith(b"HTTP/1.1 200 OK") and b"chunk 0" in first and got,
   "client leaving a deferred request and a watch stream: on_close ran for both",
   (first, stats(srv)))

# 1,000 concurrent idle connections, then every one of them served.
conns = []
err = None
try:
    for i in range(1000):
        conns.append(socket.create_connection((srv.host, srv.port), timeout=5))
except OSError as e:
    err = e
for s in conns:
    s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
good = 0
for s in conns:
    resps, _ = read_responses(s, 1)
    good += len(resps) == 1 and resps[0][1] == b"hello world\n"
for s in conns:
    s.close()
ok(err is None and good == 1000, f"1000 concurrent connections open, all served ({good})", err)

# max_connections: the 6th connection to a server limited to 5 is closed at once.
held = [raw(small) for _ in range(5)]
for h in held:
    h.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    read_responses(h, 1)
extra = raw(small, b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
out, closed = read_until_close(extra, 3)
held[0].close()
ok(closed and out == b"", "connection beyond max_connections closed at once", out)
after = wait_for(lambda: (lambda s: (s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"),
                                      read_responses(s, 1)[0])[1])(raw(small)), 5, 0.1)
ok(bool(after), "a slot freed by a closed connection is usable again")
for h in held[1:]:
    h.close()

for name, server in (("main", srv), ("small", small)):
    rc, err = server.stop()
    bad = [l for l in err.splitlines() if "Sanitizer" in l or "runtime error" in l or "leak" in l]
    ok(rc == 0 and not bad, f"{name} server exits cleanly on SIGTERM, no sanitizer report",
       "\n".join(bad[:10]) or err[-1500:])

print(f"1..{n}")
sys.exit(1 if failures else 0)
