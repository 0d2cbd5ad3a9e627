#!/usr/bin/python3
"""Clients that hold streams open, from one source address.

Opens --conns connections from --bind to --target; on each, --streams
requests whose HEADERS do not end the stream (the server waits for a body
that never comes), so they stay open. Then reads for --wait seconds and
prints one JSON line: streams opened, how many were refused
(RST_STREAM(REFUSED_STREAM)), and how many got any other answer. With
--get, one plain GET instead, and the :status line it got (the last
byte of an indexed :status is not decoded: "2xx" means it came).
"""
import argparse
import json
import socket
import time

from h2raw import (END_HEADERS, END_STREAM, HEADERS, PREFACE, RST_STREAM,
                   SETTINGS, frame, lit)

REFUSED_STREAM = 7


def block(host, path):
    return bytes([0x82, 0x86]) + lit(b":path", path) + \
        lit(b":authority", host.encode())


def frames_in(buf):
    """Whole frames at the start of @buf, and what is left."""
    out = []
    while len(buf) >= 9:
        n = int.from_bytes(buf[:3], "big")
        if len(buf) < 9 + n:
            break
        out.append((buf[3], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF,
                    buf[9:9 + n]))
        buf = buf[9 + n:]
    return out, buf


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--bind", default=None)
    ap.add_argument("--conns", type=int, default=1)
    ap.add_argument("--streams", type=int, default=10)
    ap.add_argument("--wait", type=float, default=1.0)
    ap.add_argument("--get", action="store_true")
    args = ap.parse_args()
    host, port = args.target.rsplit(":", 1)

    socks = []
    for _ in range(args.conns):
        s = socket.socket()
        if args.bind:
            s.bind((args.bind, 0))
        s.connect((host, int(port)))
        out = PREFACE + frame(SETTINGS, 0, 0)
        if args.get:
            out += frame(HEADERS, END_HEADERS | END_STREAM, 1,
                         block(host, b"/index.txt"))
        else:
            for i in range(args.streams):
                out += frame(HEADERS, END_HEADERS, 1 + 2 * i,
                             block(host, b"/upload"))
        s.sendall(out)
        socks.append(s)

    refused, answered, status = set(), set(), None
    deadline = time.monotonic() + args.wait
    bufs = [b""] * len(socks)
    while time.monotonic() < deadline:
        for i, s in enumerate(socks):
            s.settimeout(0.05)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                continue
            got, bufs[i] = frames_in(bufs[i] + chunk)
            for ftype, stream, payload in got:
                if not stream:
                    continue
                if ftype == RST_STREAM and \
                        int.from_bytes(payload[:4], "big") == REFUSED_STREAM:
                    refused.add((i, stream))
                else:
                    answered.add((i, stream))
                    if ftype == HEADERS:
                        status = "2xx"
        if args.get and status:
            break
    for s in socks:
        s.close()
    print(json.dumps({"opened": 1 if args.get else args.conns * args.streams,
                      "refused": len(refused),
                      "answered": len(answered - refused),
                      "status": status}))


if __name__ == "__main__":
    main()
