#!/usr/bin/python3
"""An HTTP/2 backend that answers in one burst: it waits until a client
connection has opened --streams streams, then writes in ONE send a
complete response (HEADERS ":status 200", DATA "ok" with END_STREAM) for
the first half of them, in stream order, followed by RST_STREAM(CANCEL)
for the second half. Through h2lb, the responses reach the balancer as
back-to-back frames of many streams on one backend connection, then
stream resets right after them.

    burst_server.py --port PORT --streams N
"""
import argparse
import socket
import struct
import threading

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HEADERS, DATA, RST_STREAM, SETTINGS, PING = 0x1, 0x0, 0x3, 0x4, 0x6
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
CANCEL = 0x8


def frame(ftype, flags, stream, payload=b""):
    n = len(payload)
    return struct.pack(">BHBBI", n >> 16, n & 0xFFFF, ftype, flags,
                       stream) + payload


def read_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def serve(conn, want):
    streams = []
    try:
        read_exact(conn, len(PREFACE))
        conn.sendall(frame(SETTINGS, 0, 0))
        while True:
            hdr = read_exact(conn, 9)
            hi, lo, ftype, flags, stream = struct.unpack(">BHBBI", hdr)
            payload = read_exact(conn, hi << 16 | lo)
            stream &= 0x7FFFFFFF
            if ftype == SETTINGS and not flags & ACK:
                conn.sendall(frame(SETTINGS, ACK, 0))
            elif ftype == PING and not flags & ACK:
                conn.sendall(frame(PING, ACK, 0, payload))
            elif ftype == HEADERS and stream not in streams:
                streams.append(stream)
                if len(streams) == want:
                    half = want // 2
                    out = b"".join(
                        frame(HEADERS, END_HEADERS, s, b"\x88") +
                        frame(DATA, END_STREAM, s, b"ok")
                        for s in streams[:half])
                    out += b"".join(
                        frame(RST_STREAM, 0, s, struct.pack(">I", CANCEL))
                        for s in streams[half:])
                    conn.sendall(out)
                    streams = []
    except (EOFError, OSError):
        pass
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--streams", type=int, default=20)
    args = ap.parse_args()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((args.bind, args.port))
    s.listen(64)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn, args.streams),
                         daemon=True).start()


if __name__ == "__main__":
    main()
