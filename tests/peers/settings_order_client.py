#!/usr/bin/python3
"""A client that holds its server to the stream window it has acknowledged.

    settings_order_client.py --target HOST:PORT --mode first|raise
                             [--path /big.bin] [--window N] [--timeout S]

RFC 9113 6.5.3: the values of a SETTINGS frame are in force for its sender
once the peer has acknowledged them. grpc core takes that literally: until
the ACK of a SETTINGS that raised SETTINGS_INITIAL_WINDOW_SIZE arrives,
DATA beyond the old window fails the connection ("frame of size 16384
overflows local window"). This client counts, for one GET of PATH, the DATA
bytes that arrive before the ACK of the SETTINGS that raised its window:

  first  its first SETTINGS says INITIAL_WINDOW_SIZE = N (before its ACK,
         the window is the default 65,535); the GET goes right after it;
  raise  its first SETTINGS keeps the default; once its ACK is back, the
         GET is sent and answered up to the 65,535-byte window; after
         --settle s with no more DATA, a second SETTINGS raises the
         window to N.

The connection window is raised to the most at the start, so only stream
windows limit the server. Prints one JSON line: {"mode", "before_ack",
"allowed", "total", "complete"}; exit 0 if the server kept to the window
(before_ack <= allowed) and the response was complete, 1 otherwise.
"""
import argparse
import json
import socket
import sys
import time

from h2raw import (END_HEADERS, END_STREAM, HEADERS, MAX_WINDOW_UPDATE,
                   PREFACE, SETTINGS, FrameCounter, frame, lit)

DEFAULT_WINDOW = 65535
INITIAL_WINDOW_SIZE = 4


def window_settings(value):
    return frame(SETTINGS, 0, 0, INITIAL_WINDOW_SIZE.to_bytes(2, "big") +
                 value.to_bytes(4, "big"))


def get(host, path):
    block = lit(b":method", b"GET") + lit(b":scheme", b"http") + \
        lit(b":path", path.encode()) + lit(b":authority", host.encode())
    return frame(HEADERS, END_STREAM | END_HEADERS, 1, block)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--mode", choices=("first", "raise"), required=True)
    ap.add_argument("--path", default="/big.bin")
    ap.add_argument("--window", type=int, default=1 << 20)
    ap.add_argument("--settle", type=float, default=0.3)
    ap.add_argument("--timeout", type=float, default=10)
    a = ap.parse_args()
    host, port = a.target.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=a.timeout)
    c = FrameCounter(sock, time.monotonic() + a.timeout)
    first = window_settings(a.window) if a.mode == "first" else \
        frame(SETTINGS, 0, 0)
    sock.sendall(PREFACE + first + MAX_WINDOW_UPDATE)
    want_acks = 1
    if a.mode == "raise":
        while c.acks < 1 and c.step():
            pass
        sock.sendall(get(host, a.path))
        # Up to the default window, then nothing more for --settle s.
        while c.step(a.settle):
            pass
        sock.sendall(window_settings(a.window))
        want_acks = 2
    else:
        sock.sendall(get(host, a.path))
    while c.acks < want_acks and c.step():
        pass
    before_ack = c.by_stream.get(1, 0)
    while 1 not in c.ended and c.step():
        pass
    complete = 1 in c.ended
    ok = before_ack <= DEFAULT_WINDOW and complete
    print(json.dumps({"mode": a.mode, "before_ack": before_ack,
                      "allowed": DEFAULT_WINDOW,
                      "total": c.by_stream.get(1, 0),
                      "complete": complete}))
    sock.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
