#!/usr/bin/python3
"""Many raw HTTP/2 client connections that open no stream: the idle
connections, half handshakes and per-address floods of issue #11.

    conn_holder.py --target HOST:PORT --count N [--bind ADDR]
        [--send none|preface|handshake] [--extra-settings K]
        [--go FILE] [--rst] [--hold S]

Opens N connections (from ADDR if given), then sends on each: nothing,
the client preface alone, or the preface and an empty SETTINGS
("handshake", the default; the server's SETTINGS is ACKed when it comes).
Prints {"event": "open", "opened": n, "failed": n} once all are open.
It then watches them for up to --hold seconds (default 60). If FILE (--go)
appears, it sends K more empty SETTINGS on each connection still open
(each one is an event for h2lb's daemon), waits half a second, closes them
all at once (--rst: with a reset, which leaves the server's socket
closed at once, its one close event the only one), prints
{"event": "closed_all"} and exits. Otherwise, at the end, it prints
{"event": "done", "open": n, "closed_by_server": n, "close_s": [min, max]}:
how many the server closed (FIN or reset), and after how long (seconds
from their opening). The testbed's addresses only.
"""
import argparse
import errno
import json
import os
import resource
import select
import socket
import struct
import sys
import time

from h2raw import ACK, PREFACE, SETTINGS, frame

EMPTY_SETTINGS = frame(SETTINGS, 0, 0)
SETTINGS_ACK = frame(SETTINGS, ACK, 0)


def say(**kw):
    print(json.dumps(kw), flush=True)


def open_all(args):
    socks, failed = {}, 0
    host, port = args.target.rsplit(":", 1)
    for _ in range(args.count):
        s = socket.socket()
        try:
            if args.bind:
                s.bind((args.bind, 0))
            s.settimeout(5)
            s.connect((host, int(port)))
            if args.send == "preface":
                s.sendall(PREFACE)
            elif args.send == "handshake":
                s.sendall(PREFACE + EMPTY_SETTINGS)
            s.setblocking(False)
        except OSError:
            s.close()
            failed += 1
            continue
        socks[s.fileno()] = [s, time.monotonic(), False]  # sock, t0, acked
    return socks, failed


def drain(entry, send):
    """Read what is there; False once the server has closed."""
    s = entry[0]
    while True:
        try:
            data = s.recv(65536)
        except BlockingIOError:
            return True
        except OSError as e:
            if e.errno in (errno.ECONNRESET, errno.EPIPE):
                return False
            raise
        if not data:
            return False
        if send == "handshake" and not entry[2]:
            entry[2] = True
            try:
                s.sendall(SETTINGS_ACK)
            except OSError:
                return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--bind")
    ap.add_argument("--send", default="handshake",
                    choices=("none", "preface", "handshake"))
    ap.add_argument("--extra-settings", type=int, default=0)
    ap.add_argument("--go")
    ap.add_argument("--rst", action="store_true")
    ap.add_argument("--hold", type=float, default=60)
    args = ap.parse_args()

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    want = args.count + 256
    if hard != resource.RLIM_INFINITY and hard < want:
        hard = want  # root may raise it
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    socks, failed = open_all(args)
    say(event="open", opened=len(socks), failed=failed)
    ep = select.epoll()
    for fd in socks:
        ep.register(fd, select.EPOLLIN | select.EPOLLRDHUP)
    closed = []
    end = time.monotonic() + args.hold
    while time.monotonic() < end:
        if args.go and os.path.exists(args.go):
            for fd in list(socks):
                try:
                    socks[fd][0].send(EMPTY_SETTINGS * args.extra_settings)
                except OSError:
                    pass
            time.sleep(0.5)  # its events are in before its close
            for entry in socks.values():
                if args.rst:
                    entry[0].setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                        struct.pack("ii", 1, 0))
                entry[0].close()
            say(event="closed_all", closed=len(socks))
            return 0
        for fd, _ in ep.poll(0.1):
            entry = socks.get(fd)
            if entry and not drain(entry, args.send):
                closed.append(time.monotonic() - entry[1])
                ep.unregister(fd)
                entry[0].close()
                del socks[fd]
    say(event="done", open=len(socks), closed_by_server=len(closed),
        close_s=[round(min(closed), 2), round(max(closed), 2)]
        if closed else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
