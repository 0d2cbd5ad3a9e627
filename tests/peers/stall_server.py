#!/usr/bin/python3
"""An HTTP/2 server that stops reading: the slowest possible backend.

It completes the handshake (reads the client preface and SETTINGS, sends its
own SETTINGS and an ACK), grants nothing beyond the RFC's initial windows,
then never reads its socket again. Whatever a client sends toward it piles
up in the kernel, unless the balancer's flow control holds it back.
"""
import argparse
import socket
import threading
import time

SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
SETTINGS_ACK = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"


def serve(conn):
    conn.recv(4096)  # preface and SETTINGS (and whatever else fits)
    conn.sendall(SETTINGS + SETTINGS_ACK)
    time.sleep(3600)  # never read again


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((args.bind, args.port))
    s.listen(64)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
