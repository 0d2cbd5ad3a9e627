#!/usr/bin/python3
"""Silent TCP connections to a port, kept open: a scraper's idle peers.

    idle_holder.py --target HOST:PORT --count N [--hold S]

Opens N connections (non-blocking connects: "open" once each has sent its
SYN) and sends nothing on them. A connection the server
closes is opened again at once, so that N stay open (or connecting) for
--hold seconds (default 60), or until SIGTERM. Prints {"event": "open",
"opened": n} once the N first are open, and at the end {"event": "done",
"reopened": n}: how many the server closed and were opened again.
The testbed's addresses only.
"""
import argparse
import errno
import json
import os
import select
import signal
import socket
import sys
import time


def connect(host, port):
    """A non-blocking connect, under way: a server too busy to accept
    still gets its SYNs (and its backlog fills)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    err = s.connect_ex((host, port))
    if err not in (0, errno.EINPROGRESS):
        s.close()
        raise OSError(err, os.strerror(err))
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--hold", type=float, default=60)
    a = ap.parse_args()
    host, port = a.target.rsplit(":", 1)
    port = int(port)
    if not host.startswith("198.18."):
        sys.exit("idle_holder.py: the testbed's addresses only")
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    socks = []
    for _ in range(a.count):
        try:
            socks.append(connect(host, port))
        except OSError:
            pass  # topped up below
    print(json.dumps({"event": "open", "opened": len(socks)}), flush=True)
    reopened = 0
    end = time.monotonic() + a.hold
    while not stop and time.monotonic() < end:
        r, _, _ = select.select(socks, [], [], 0.2) if socks else ([], 0, 0)
        for s in r:
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if data:
                continue  # an answer to nothing: keep it open
            socks.remove(s)
            s.close()
            try:
                socks.append(connect(host, port))
                reopened += 1
            except OSError:
                pass
        while len(socks) < a.count and not stop:
            try:
                socks.append(connect(host, port))
                reopened += 1
            except OSError:
                break
    print(json.dumps({"event": "done", "reopened": reopened}), flush=True)


if __name__ == "__main__":
    main()
