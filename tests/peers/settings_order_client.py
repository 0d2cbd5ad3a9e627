#!/usr/bin/python3
"""A client that holds its server to the stream window it has acknowledged.

    settings_order_client.py --target HOST:PORT --mode first|raise|lower
                             [--path /big.bin] [--window N] [--low N[,N...]]
                             [--hold S] [--allow-reset] [--timeout S]

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

  lower  its first SETTINGS says INITIAL_WINDOW_SIZE = N; once its ACK is
         back, the GET is sent; at its first DATA, a second SETTINGS
         lowers the window to --low (--low A,B,...: one SETTINGS per
         value, in one write). At each ACK the stream's window moves by
         the change (RFC 9113 6.9.2), and DATA beyond it is an overrun.
         The client gives back nothing until --hold s after the last ACK
         (what a server sent under the old window is all that can come
         then), then all it read, and then each frame as it reads it.

The connection window is raised to the most at the start, so only stream
windows limit the server. Prints one JSON line: {"mode", "before_ack",
"allowed", "total", "complete"} (lower: also "overrun", the most bytes
beyond the window, "reset", and "ack_s", the seconds the ACK took); exit 0
if the server kept to the window (before_ack <= allowed; lower: no
overrun) and the response was complete (or, with --allow-reset, the
stream was reset), 1 otherwise.
"""
import argparse
import json
import socket
import sys
import time

from h2raw import (ACK, DATA, END_HEADERS, END_STREAM, HEADERS,
                   MAX_WINDOW_UPDATE, PREFACE, SETTINGS, WINDOW_UPDATE,
                   FrameCounter, frame, lit)

DEFAULT_WINDOW = 65535
INITIAL_WINDOW_SIZE = 4


def window_settings(value):
    return frame(SETTINGS, 0, 0, INITIAL_WINDOW_SIZE.to_bytes(2, "big") +
                 value.to_bytes(4, "big"))


def get(host, path):
    block = lit(b":method", b"GET") + lit(b":scheme", b"http") + \
        lit(b":path", path.encode()) + lit(b":authority", host.encode())
    return frame(HEADERS, END_STREAM | END_HEADERS, 1, block)


def stream_window_update(inc):
    return frame(WINDOW_UPDATE, 0, 1, inc.to_bytes(4, "big"))


def lower(sock, c, a, host):
    """Mode lower: the window changes under a running download."""
    lows = [int(v) for v in a.low.split(",")]
    values = [a.window] + lows  # in force from ACK 1, 2, ...
    while c.acks < 1 and c.step():
        pass
    sock.sendall(get(host, a.path))
    while not c.by_stream.get(1) and 1 not in c.reset and c.step():
        pass
    window = a.window - c.by_stream.get(1, 0)
    sock.sendall(b"".join(window_settings(v) for v in lows))
    sent = time.monotonic()
    ack_s, before_ack, hold_until = None, 0, None
    overrun, held = 0, c.by_stream.get(1, 0)  # read, not given back yet
    # Until the stream ends and every ACK is in, whichever comes first.
    while (1 not in c.ended and 1 not in c.reset) or c.acks < len(values):
        now = time.monotonic()
        if now >= c.deadline:
            break
        if hold_until is not None and now >= hold_until and held:
            sock.sendall(stream_window_update(held))
            window += held
            held = 0
        if not c.step(hold_until - now if hold_until and now < hold_until
                      else None):
            continue
        ftype, flags, stream, payload = c.last
        if ftype == SETTINGS and flags & ACK and c.acks <= len(values):
            # RFC 9113 6.9.2: the window moves by the change.
            window += values[c.acks - 1] - values[c.acks - 2]
            if c.acks == len(values):
                ack_s = time.monotonic() - sent
                before_ack = c.by_stream.get(1, 0)
                hold_until = time.monotonic() + a.hold
        elif ftype == DATA and stream == 1 and payload:
            window -= len(payload)
            overrun = max(overrun, -window)
            held += len(payload)
    acked = c.acks == len(values)
    complete = acked and 1 in c.ended
    reset = 1 in c.reset
    print(json.dumps({"mode": a.mode, "before_ack": before_ack,
                      "allowed": lows[-1], "total": c.by_stream.get(1, 0),
                      "overrun": overrun, "complete": complete,
                      "reset": reset,
                      "ack_s": None if ack_s is None else round(ack_s, 3)}))
    return 0 if acked and not overrun and \
        (complete or (a.allow_reset and reset)) else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--mode", choices=("first", "raise", "lower"),
                    required=True)
    ap.add_argument("--path", default="/big.bin")
    ap.add_argument("--window", type=int, default=1 << 20)
    ap.add_argument("--low", default="65536")
    ap.add_argument("--hold", type=float, default=0.3)
    ap.add_argument("--allow-reset", action="store_true")
    ap.add_argument("--settle", type=float, default=0.3)
    ap.add_argument("--timeout", type=float, default=10)
    a = ap.parse_args()
    host, port = a.target.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=a.timeout)
    c = FrameCounter(sock, time.monotonic() + a.timeout)
    first = window_settings(a.window) if a.mode != "raise" else \
        frame(SETTINGS, 0, 0)
    sock.sendall(PREFACE + first + MAX_WINDOW_UPDATE)
    if a.mode == "lower":
        return lower(sock, c, a, host)
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
