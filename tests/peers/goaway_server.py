#!/usr/bin/python3
"""An HTTP/2 server that fails every request: a sick backend.

It completes the handshake (sends its SETTINGS, ACKs the client's, answers
PINGs), so connections to it look healthy; but the first HEADERS on a
connection gets GOAWAY(last stream 0, INTERNAL_ERROR), and the connection
closes a moment later. Every client whose request it takes sees the same
error: the backend's failure, not the client's.
"""
import argparse
import socket
import struct
import time

from h2raw import (ACK, GOAWAY, HEADERS, PING, PREFACE, SETTINGS, frame,
                   read_exact, read_frame, serve_forever)

INTERNAL_ERROR = 2


def serve(conn, _):
    try:
        if read_exact(conn, len(PREFACE)) != PREFACE:
            return
        conn.sendall(frame(SETTINGS, 0, 0))
        while True:
            f = read_frame(conn)
            if f is None:
                return
            ftype, flags, _, payload = f
            if ftype == SETTINGS and not flags & ACK:
                conn.sendall(frame(SETTINGS, ACK, 0))
            elif ftype == PING and not flags & ACK:
                conn.sendall(frame(PING, ACK, 0, payload))
            elif ftype == HEADERS:
                conn.sendall(frame(GOAWAY, 0, 0,
                                   struct.pack(">II", 0, INTERNAL_ERROR)))
                time.sleep(0.2)
                return
    except OSError:
        pass
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--name", default="")  # tb_start_servers passes it
    args = ap.parse_args()
    socket.setdefaulttimeout(None)
    serve_forever(args.bind, args.port, serve, None)


if __name__ == "__main__":
    main()
