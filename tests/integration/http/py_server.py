#!/usr/bin/env python3
"""A python3 http.server peer for the lib/http_client tests (a different HTTP stack than
lib/http's own server).  Usage: py_server.py HOST  -> prints "ready PORT", serves until
stdin closes.  Routes:
  /hello                 200 "hello from python\n" (HTTP/1.1, keep-alive)
  /sleep?ms=N            answers after N ms
  /chunks?n=N&ms=M       chunked body, one "part I\n" chunk every M ms
  /peer                  the client's address:port (to see connection reuse)"""
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_body(self, body, status=200):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        u = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        if u.path == "/hello":
            self.send_body(b"hello from python\n")
        elif u.path == "/sleep":
            time.sleep(int(q.get("ms", "100")) / 1000)
            self.send_body(b"slept\n")
        elif u.path == "/peer":
            self.send_body(("%s:%d" % self.client_address).encode())
        elif u.path == "/chunks":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(int(q.get("n", "3"))):
                part = b"part %d\n" % i
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.flush()
                time.sleep(int(q.get("ms", "100")) / 1000)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        else:
            self.send_body(b"not found\n", 404)


class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # Clients that time out or cancel leave on purpose in these tests.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


srv = Server((sys.argv[1], 0), Handler)
srv.daemon_threads = True
threading.Thread(target=srv.serve_forever, daemon=True).start()
print("ready", srv.server_address[1], flush=True)
sys.stdin.read()
srv.shutdown()
