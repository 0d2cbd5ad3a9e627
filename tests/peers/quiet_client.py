#!/usr/bin/python3
"""An HTTP/2 client that sends everything at once and then stays quiet.

It writes the preface, its SETTINGS and a GET in one go right after
connecting, before the server's SETTINGS arrives, and then sends nothing
more except answers to PINGs (it never acknowledges the server's SETTINGS).
Bytes that reach a sockmap socket before accept() are parsed only when
another segment arrives (docs/kernel-facts.md K8), so without a watchdog that
draws a segment, the request would never be seen. Prints one JSON line per
connection: the :status and the seconds it took, or a timeout.
"""
import argparse
import json
import socket
import time

from h2raw import PREFACE, frame, lit


def once(host, port, path, timeout):
    block = bytes([0x82, 0x86]) + lit(b":path", path) + \
        lit(b":authority", host.encode())
    req = PREFACE + frame(4, 0, 0) + frame(1, 0x5, 1, block)
    t0 = time.monotonic()
    s = socket.create_connection((host, port), timeout=timeout)
    s.sendall(req)
    s.settimeout(timeout)
    buf = b""
    try:
        while time.monotonic() - t0 < timeout:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            while len(buf) >= 9:
                n = int.from_bytes(buf[:3], "big")
                if len(buf) < 9 + n:
                    break
                ftype, flags = buf[3], buf[4]
                stream = int.from_bytes(buf[5:9], "big") & 0x7fffffff
                payload, buf = buf[9:9 + n], buf[9 + n:]
                if ftype == 6 and not flags & 1:  # PING: answer it
                    s.sendall(frame(6, 1, 0, payload))
                if ftype == 1 and stream == 1:
                    return {"status": "ok", "seconds": round(time.monotonic() - t0, 3)}
    except socket.timeout:
        pass
    finally:
        s.close()
    return {"status": "timeout", "seconds": round(time.monotonic() - t0, 3)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--path", default="/index.txt")
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=3.0)
    args = ap.parse_args()
    host, port = args.target.rsplit(":", 1)
    for _ in range(args.count):
        print(json.dumps(once(host, int(port), args.path.encode(), args.timeout)),
              flush=True)


if __name__ == "__main__":
    main()
