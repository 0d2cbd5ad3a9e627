#!/usr/bin/python3
"""A raw HTTP/2 client for test_h2lb_leg_burst: opens --streams GET
streams at once on one connection, reads until every stream has either a
response with END_STREAM or an RST_STREAM, prints one JSON line
{"responses", "resets"} and then keeps the connection open for --hold
seconds, so that the test can look at the balancer's books while the
connection still lives (its close would end any stream left over).

    burst_client.py --target HOST:PORT [--streams 20] [--hold 3]
"""
import argparse
import json
import socket
import struct
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY = 0x0, 0x1, 0x3, 0x4, 0x6, 0x7
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1


def frame(ftype, flags, stream, payload=b""):
    n = len(payload)
    return struct.pack(">BHBBI", n >> 16, n & 0xFFFF, ftype, flags,
                       stream) + payload


def read_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--streams", type=int, default=20)
    ap.add_argument("--hold", type=float, default=3.0)
    args = ap.parse_args()
    host, port = args.target.rsplit(":", 1)
    conn = socket.create_connection((host, int(port)), timeout=10)
    conn.sendall(PREFACE + frame(SETTINGS, 0, 0))
    # GET / : the static HPACK indices of :method GET, :scheme http,
    # :path /, and :authority as a literal without indexing.
    block = b"\x82\x86\x84\x01" + bytes([len(host)]) + host.encode()
    ids = [2 * i + 1 for i in range(args.streams)]
    conn.sendall(b"".join(frame(HEADERS, END_HEADERS | END_STREAM, s, block)
                          for s in ids))
    done, responses, resets = set(), 0, 0
    deadline = time.time() + 10
    while len(done) < len(ids) and time.time() < deadline:
        hi, lo, ftype, flags, stream = struct.unpack(">BHBBI",
                                                     read_exact(conn, 9))
        payload = read_exact(conn, hi << 16 | lo)
        stream &= 0x7FFFFFFF
        if ftype == SETTINGS and not flags & ACK:
            conn.sendall(frame(SETTINGS, ACK, 0))
        elif ftype == PING and not flags & ACK:
            conn.sendall(frame(PING, ACK, 0, payload))
        elif ftype == GOAWAY:
            break
        elif ftype in (DATA, HEADERS) and flags & END_STREAM and \
                stream not in done:
            done.add(stream)
            responses += 1
        elif ftype == RST_STREAM and stream not in done:
            done.add(stream)
            resets += 1
    print(json.dumps({"responses": responses, "resets": resets}), flush=True)
    time.sleep(args.hold)
    conn.close()
    return 0 if len(done) == len(ids) else 1


if __name__ == "__main__":
    sys.exit(main())
