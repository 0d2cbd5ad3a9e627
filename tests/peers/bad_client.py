#!/usr/bin/python3
"""Raw HTTP/2 clients that break the protocol, one way each.

Each case connects and sends the preface and its SETTINGS, reads the
server's SETTINGS, then sends the rest of its bytes (acknowledging that
SETTINGS, then the violation), then reads frames until a GOAWAY arrives or
the connection closes. Prints one JSON line per case:
{"case": ..., "goaway": error code or null, "closed": bool, "seconds": t}.

The case "http1" is not HTTP/2 at all: it sends an HTTP/1.1 request at
once, and reads whatever comes back (h2lb forwards such a connection whole
to a backend) until the connection closes; "answer" is its first line.
"""
import argparse
import json
import socket
import struct
import time

from h2raw import PREFACE, frame, read_exact

SETTINGS = frame(4, 0, 0)
SETTINGS_ACK = frame(4, 1, 0)
# HEADERS with ":method: GET" (0x82), ":path: /" (0x84), ":scheme: http" (0x86)
HEADERS_BLOCK = bytes([0x82, 0x84, 0x86])

# What follows a correct connection start (preface, SETTINGS, and the ACK
# of the server's SETTINGS); None: send only the bad bytes.
HELLO = PREFACE + SETTINGS
START = SETTINGS_ACK
CASES = {
    # not HTTP/2 at all
    "http1": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    # a DATA frame header announcing 20000 bytes (> 16384 allowed)
    "oversized": START + frame(0, 0, 1, length=20000) + b"x" * 100,
    # client streams are odd
    "even_stream": START + frame(1, 0x5, 2, HEADERS_BLOCK),
    # CONTINUATION with no HEADERS before it
    "stray_continuation": START + frame(9, 0x4, 1, HEADERS_BLOCK),
    # stream ids must increase
    "stream_id_backwards": START + frame(1, 0x5, 5, HEADERS_BLOCK)
    + frame(1, 0x5, 3, HEADERS_BLOCK),
}


def not_http2(s, res, t0, timeout):
    got = b""
    s.sendall(CASES["http1"])
    try:
        while time.monotonic() - t0 < timeout:
            chunk = s.recv(65536)
            if not chunk:
                res["closed"] = True
                break
            got += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    res["answer"] = got.split(b"\r\n", 1)[0].decode("latin-1")
    res["seconds"] = round(time.monotonic() - t0, 3)
    s.close()
    return res


def run(target, name, timeout):
    host, port = target.rsplit(":", 1)
    t0 = time.monotonic()
    s = socket.create_connection((host, int(port)), timeout=timeout)
    s.settimeout(timeout)
    res = {"case": name, "goaway": None, "closed": False}
    if name == "http1":
        return not_http2(s, res, t0, timeout)
    s.sendall(HELLO)
    hdr = read_exact(s, 9)  # the server's SETTINGS comes first
    assert hdr and hdr[3] == 4, "first frame is not SETTINGS"
    read_exact(s, int.from_bytes(hdr[:3], "big"))
    s.sendall(CASES[name])
    try:
        while time.monotonic() - t0 < timeout:
            hdr = read_exact(s, 9)
            if hdr is None:
                res["closed"] = True
                break
            payload = read_exact(s, int.from_bytes(hdr[:3], "big"))
            if payload is None:
                res["closed"] = True
                break
            if hdr[3] == 7:  # GOAWAY
                res["goaway"] = struct.unpack(">I", payload[4:8])[0]
    except (socket.timeout, ConnectionResetError):
        res["closed"] = res["closed"] or False
    res["seconds"] = round(time.monotonic() - t0, 3)
    s.close()
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--timeout", type=float, default=5.0)
    args = ap.parse_args()
    for name in CASES:
        print(json.dumps(run(args.target, name, args.timeout)), flush=True)


if __name__ == "__main__":
    main()
