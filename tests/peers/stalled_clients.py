#!/usr/bin/python3
"""Many HTTP/2 clients that stop reading.

Opens --n connections to --target, one after the other (at most --rate a
second). Each asks for a
4 KiB receive buffer, sends the preface, an empty SETTINGS (so its windows
are the protocol's 65535 bytes) and, unless --idle, a GET for --path, and
then never reads. Once all are open it prints {"event": "holding", ...}
and keeps them --hold seconds, then closes them all and prints
{"event": "done", ...}. Needs an open-files limit above --n.
"""
import argparse
import json
import socket
import sys
import time

from h2raw import END_HEADERS, END_STREAM, HEADERS, PREFACE, SETTINGS, \
    frame, lit


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--path", default="/big.bin")
    ap.add_argument("--idle", action="store_true", help="send no request")
    ap.add_argument("--hold", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=0,
                    help="connections per second (0: as fast as it can)")
    args = ap.parse_args()
    host, port = args.target.rsplit(":", 1)
    block = bytes([0x82, 0x86]) + lit(b":path", args.path.encode()) + \
        lit(b":authority", host.encode())
    hello = PREFACE + frame(SETTINGS, 0, 0)
    if not args.idle:
        hello += frame(HEADERS, END_HEADERS | END_STREAM, 1, block)

    socks, failed = [], 0
    t0 = time.monotonic()
    for i in range(args.n):
        if args.rate:
            ahead = t0 + i / args.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(5)
        try:
            s.connect((host, int(port)))
            s.sendall(hello)
        except OSError:
            failed += 1
            s.close()
            continue
        socks.append(s)
    print(json.dumps({"event": "holding", "open": len(socks),
                      "failed": failed,
                      "seconds": round(time.monotonic() - t0, 2)}),
          flush=True)
    time.sleep(args.hold)
    for s in socks:
        s.close()
    print(json.dumps({"event": "done"}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
