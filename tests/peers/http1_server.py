#!/usr/bin/env python3
"""An HTTP/1.1 server for tests of connections that are not HTTP/2.

  GET  /bytes/N          N bytes of a fixed pattern (pattern(N) below),
                         with Content-Length, keep-alive
  GET  /bytes/N?close=1  the same without Content-Length: the body ends
                         when the server closes the connection
  POST /sha256           the SHA-256 of the request body (Content-Length)

Every answer carries "X-Backend: NAME". Each connection is logged with
its peer, so a test can count connections per backend.
"""
import argparse
import hashlib
import http.server
import logging
import sys
import threading

CHUNK = 1 << 16


BLOCK = bytes(range(256)) * (CHUNK // 256)


def pattern(n: int):
    """n bytes in CHUNK pieces: piece k is BLOCK rotated by k, so that a
    piece lost, repeated or out of order changes the whole."""
    for k, off in enumerate(range(0, n, CHUNK)):
        r = k % 256
        yield (BLOCK[r:] + BLOCK[:r])[:n - off]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "http1_server"

    def log_message(self, fmt, *args):
        logging.debug("%s " + fmt, self.client_address[0], *args)

    def setup(self):
        super().setup()
        with self.server.lock:
            self.server.conns += 1
        logging.info("connection from %s:%d", *self.client_address)

    def send_body(self, pieces, length: int, close: bool):
        self.send_response(200)
        self.send_header("X-Backend", self.server.name)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        for piece in pieces:
            self.wfile.write(piece)

    def do_GET(self):
        path, _, query = self.path.partition("?")
        if path.startswith("/bytes/"):
            try:
                n = int(path[len("/bytes/"):])
            except ValueError:
                n = -1
            if 0 <= n <= 1 << 30:
                self.send_body(pattern(n), n, "close=1" in query)
                return
        if path == "/stats":
            body = b"%d\n" % self.server.conns
            self.send_body([body], len(body), False)
            return
        self.send_error(404)

    def do_POST(self):
        if self.path != "/sha256":
            self.send_error(404)
            return
        left = int(self.headers.get("Content-Length", "0"))
        h = hashlib.sha256()
        while left > 0:
            chunk = self.rfile.read(min(left, CHUNK))
            if not chunk:
                return
            h.update(chunk)
            left -= len(chunk)
        body = h.hexdigest().encode() + b"\n"
        self.send_body([body], len(body), False)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bind", default="0.0.0.0")
    args = ap.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format=f"%(asctime)s http1[{args.name}] %(message)s")
    srv = http.server.ThreadingHTTPServer((args.bind, args.port), Handler)
    srv.daemon_threads = True
    srv.name = args.name
    srv.lock = threading.Lock()
    srv.conns = 0
    logging.info("listening on %s:%d", args.bind, args.port)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
