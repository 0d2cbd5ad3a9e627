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
import struct

from h2raw import (ACK, CANCEL, DATA, END_HEADERS, END_STREAM, HEADERS,
                   PADDED, PING, PREFACE, RST_STREAM, SETTINGS, frame,
                   read_exact, read_frame, serve_forever)


def data(stream, bad_pad):
    if bad_pad:
        return frame(DATA, END_STREAM | PADDED, stream, bytes([200]) + b"ok")
    return frame(DATA, END_STREAM, stream, b"ok")


def serve(conn, want, bad_pad):
    streams = []
    try:
        if read_exact(conn, len(PREFACE)) is None:
            return
        conn.sendall(frame(SETTINGS, 0, 0))
        while (f := read_frame(conn)) is not None:
            ftype, flags, stream, payload = f
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
                        data(s, bad_pad and s == streams[half - 1])
                        for s in streams[:half])
                    out += b"".join(
                        frame(RST_STREAM, 0, s, struct.pack(">I", CANCEL))
                        for s in streams[half:])
                    conn.sendall(out)
                    streams = []
    except OSError:
        pass
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--streams", type=int, default=20)
    ap.add_argument("--bad-pad", action="store_true")
    args = ap.parse_args()
    serve_forever(args.bind, args.port, serve, args.streams, args.bad_pad)


if __name__ == "__main__":
    main()
