#!/usr/bin/python3
"""GET each --path in turn on ONE HTTP/2 connection (prior knowledge), each
after the one before ended, and print what came, as one JSON line:

    {"requests": [{"path": P, "status": 200|503|..., "bytes": N,
                   "reset": CODE or null, "ended": true|false}, ...],
     "goaway": CODE or null, "stray": [[TYPE, STREAM], ...]}

"status" is read from a response header block this client can read
without a decoder: ":status" as an index of the static table (200 is
0x88) or as a literal with an indexed name and a raw value (h2lb's own
answers); else null. "stray": frames on streams other than the one asked
(PUSH_PROMISE and DATA of streams never opened among them).

    seq_client.py --target ADDR:PORT --path /a --path /b [--timeout S]
                  [--conn-window]
"""
import argparse
import json
import socket
import struct
import time

from h2raw import (ACK, CONTINUATION, DATA, END_HEADERS, END_STREAM, GOAWAY,
                   HEADERS, MAX_WINDOW_UPDATE, PREFACE, RST_STREAM, SETTINGS,
                   frame, lit, read_frame)

PUSH_PROMISE = 5
STATIC_STATUS = {0x88: 200, 0x89: 204, 0x8a: 206, 0x8b: 304, 0x8c: 400,
                 0x8d: 404, 0x8e: 500}


def status_of(block):
    if block and block[0] in STATIC_STATUS:
        return STATIC_STATUS[block[0]]
    # literal without indexing, name index 8..14 (":status"), raw value
    if len(block) >= 5 and block[0] in range(0x08, 0x0f) and block[1] == 3:
        return int(block[2:5])
    return None


def get(sock, stream, path, host, deadline, out):
    block = (b"\x82\x86" + lit(b":path", path.encode()) +
             lit(b":authority", host.encode()))
    sock.sendall(frame(HEADERS, END_HEADERS | END_STREAM, stream, block))
    req = {"path": path, "status": None, "bytes": 0, "reset": None,
           "ended": False}
    hdr, end = b"", False
    while time.monotonic() < deadline:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            f = read_frame(sock)
        except socket.timeout:
            break
        if f is None:
            break
        ftype, flags, sid, payload = f
        if ftype == SETTINGS and not flags & ACK:
            sock.sendall(frame(SETTINGS, ACK, 0))
            continue
        if ftype == GOAWAY:
            out["goaway"] = struct.unpack(">I", payload[4:8])[0]
            continue
        if sid == 0:
            continue
        if sid != stream or ftype == PUSH_PROMISE:
            out["stray"].append([ftype, sid])
            continue
        if ftype in (HEADERS, CONTINUATION):
            if ftype == HEADERS:
                hdr, end = b"", flags & END_STREAM
            hdr += payload
            if not flags & END_HEADERS:
                continue
            if req["status"] is None:
                req["status"] = status_of(hdr)
            if end:
                req["ended"] = True
                break
        elif ftype == DATA:
            req["bytes"] += len(payload)
            if flags & END_STREAM:
                req["ended"] = True
                break
        elif ftype == RST_STREAM:
            req["reset"] = struct.unpack(">I", payload)[0]
            break
    return req


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--path", action="append", required=True)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--conn-window", action="store_true",
                    help="grant the largest connection window at once "
                    "(stream windows stay at 65,535)")
    args = ap.parse_args()
    host, port = args.target.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=args.timeout)
    sock.sendall(PREFACE + frame(SETTINGS, 0, 0, struct.pack(">HI", 2, 0)) +
                 (MAX_WINDOW_UPDATE if args.conn_window else b""))
    out = {"requests": [], "goaway": None, "stray": []}
    for i, path in enumerate(args.path):
        deadline = time.monotonic() + args.timeout
        out["requests"].append(get(sock, 1 + 2 * i, path, args.target,
                                   deadline, out))
    sock.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
