#!/usr/bin/env python3
"""A server-first TCP server for tests of connections that are not HTTP/2.

On each connection it sends "220 NAME ready\\r\\n" at once, then answers
every line it gets with "NAME: LINE", and closes once the client has
closed its side (after answering all it got).
"""
import argparse
import logging
import socketserver
import sys


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        name = self.server.name.encode()
        self.wfile.write(b"220 " + name + b" ready\r\n")
        self.wfile.flush()
        for line in self.rfile:
            self.wfile.write(name + b": " + line)
            self.wfile.flush()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bind", default="0.0.0.0")
    args = ap.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format=f"%(asctime)s greeting[{args.name}] %(message)s")
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    srv = socketserver.ThreadingTCPServer((args.bind, args.port), Handler)
    srv.daemon_threads = True
    srv.name = args.name
    logging.info("listening on %s:%d", args.bind, args.port)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
