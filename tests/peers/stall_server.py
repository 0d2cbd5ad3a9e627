#!/usr/bin/python3
"""An HTTP/2 server that stops reading: the slowest possible backend.

It completes the handshake (reads the client preface and SETTINGS, sends its
own SETTINGS and an ACK), grants nothing beyond the RFC's initial windows
(with --grant: the largest windows HTTP/2 allows, 2^31-1, for the
connection and every stream), then never reads its socket again. Whatever a
client sends toward it piles up in the kernel, unless the balancer's flow
control holds it back.
"""
import argparse
import time

from h2raw import ACK, MAX_WINDOW_SETTINGS, MAX_WINDOW_UPDATE, SETTINGS, \
    frame, serve_forever


def serve(conn, grant):
    conn.recv(4096)  # preface and SETTINGS (and whatever else fits)
    if grant:
        conn.sendall(frame(SETTINGS, 0, 0, MAX_WINDOW_SETTINGS) +
                     frame(SETTINGS, ACK, 0) + MAX_WINDOW_UPDATE)
    else:
        conn.sendall(frame(SETTINGS, 0, 0) + frame(SETTINGS, ACK, 0))
    time.sleep(3600)  # never read again


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--grant", action="store_true")
    args = ap.parse_args()
    serve_forever(args.bind, args.port, serve, args.grant)


if __name__ == "__main__":
    main()
