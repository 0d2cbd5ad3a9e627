#!/usr/bin/python3
"""A client whose connection window is nearly used up when a stream of
its goes to a leg bound only then.

    late_leg_client.py --target HOST:PORT [--early] [--path /big.bin]
                       [--window N] [--settle S] [--timeout S]

Its connection window is N in all (more than its legs' first 65,535 bytes
can take); its stream windows are the largest there are, so only the
connection window limits what it is sent. It GETs PATH on stream 1 and
grants nothing more: the response stops once the window is used up. It
then GETs PATH on stream 3, which goes to a backend with no stream open:
over a leg bound now, whose connection starts with 65,535 bytes of window
that no WINDOW_UPDATE takes back, or over an idle leg that holds a share
of the client's window. With --early, stream 1 goes with the preface,
before the client has acknowledged h2lb's SETTINGS, so it is on the first
leg, and stream 3 on a leg bound then. After --settle s with no DATA, it
counts what came on both streams: more than N is DATA beyond its window
(RFC 9113 6.9.1). Then it grants the largest window and reads both
responses to their end (64 MiB more: enough for any PATH the testbed
serves).

Prints one JSON line: {"window", "stalled" (DATA before stream 3),
"received" (DATA before the grant), "beyond", "streams" (the same, by
stream), "total", "complete",
"error" (a RST_STREAM or GOAWAY, or null)}; exit 0
if nothing came beyond the window and both responses were complete, 1
otherwise.
"""
import argparse
import json
import socket
import sys
import time

from h2raw import (END_HEADERS, END_STREAM, HEADERS, MAX_WINDOW_SETTINGS,
                   PREFACE, SETTINGS, WINDOW_UPDATE, FrameCounter, frame,
                   lit)

DEFAULT_WINDOW = 65535


def get(host, path, stream):
    block = lit(b":method", b"GET") + lit(b":scheme", b"http") + \
        lit(b":path", path.encode()) + lit(b":authority", host.encode())
    return frame(HEADERS, END_STREAM | END_HEADERS, stream, block)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--path", default="/big.bin")
    ap.add_argument("--window", type=int, default=512 << 10)
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--early", action="store_true")
    ap.add_argument("--timeout", type=float, default=20)
    a = ap.parse_args()
    host, port = a.target.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=a.timeout)
    c = FrameCounter(sock, time.monotonic() + a.timeout, strict=True)
    grant = frame(WINDOW_UPDATE, 0, 0,
                  (a.window - DEFAULT_WINDOW).to_bytes(4, "big"))
    hello = PREFACE + frame(SETTINGS, 0, 0, MAX_WINDOW_SETTINGS) + grant
    if a.early:
        sock.sendall(hello + get(host, a.path, 1))
    else:
        sock.sendall(hello)
        while c.acks < 1 and c.step():
            pass
        sock.sendall(get(host, a.path, 1))
    c.settle(a.settle)
    stalled = c.data
    sock.sendall(get(host, a.path, 3))
    c.settle(a.settle)
    received = c.data
    streams = dict(c.by_stream)
    error = None
    try:
        sock.sendall(frame(WINDOW_UPDATE, 0, 0, (64 << 20).to_bytes(4, "big")))
        while len(c.ended) < 2 and c.step():
            pass
    except ConnectionError as e:
        error = str(e)
    ok = received <= a.window and c.ended == {1, 3}
    print(json.dumps({"window": a.window, "stalled": stalled,
                      "received": received,
                      "beyond": max(0, received - a.window),
                      "streams": streams,
                      "total": c.data, "complete": c.ended == {1, 3},
                      "error": error}))
    sock.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
