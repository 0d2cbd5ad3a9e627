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
{"event": "done", "open": n, "closed_by_server": n, "close_s": [min, max],
"goaway": {code: n}}: how many the server closed (FIN or reset), after how
long (seconds from their opening), and the GOAWAYs they got before.
It stops opening connections when the machine has less than
--min-avail-mib (default 512) MiB available. The testbed's addresses only.
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

from h2raw import ACK, GOAWAY, PREFACE, SETTINGS, frame

EMPTY_SETTINGS = frame(SETTINGS, 0, 0)
SETTINGS_ACK = frame(SETTINGS, ACK, 0)


def say(**kw):
    print(json.dumps(kw), flush=True)


def mem_avail_mib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    return 1 << 30


def open_all(args):
    socks, failed = {}, 0
    host, port = args.target.rsplit(":", 1)
    for i in range(args.count):
        if i % 250 == 0 and mem_avail_mib() < args.min_avail_mib:
            say(event="low_memory", opened=len(socks))
            break
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
        # sock, t0, acked, bytes not parsed yet
        socks[s.fileno()] = [s, time.monotonic(), False, b""]
    return socks, failed


def frames(entry, goaways):
    """Count the GOAWAYs among the whole frames received so far."""
    buf = entry[3]
    while len(buf) >= 9:
        n = int.from_bytes(buf[:3], "big")
        if len(buf) < 9 + n:
            break
        if buf[3] == GOAWAY and n >= 8:
            code = int.from_bytes(buf[13:17], "big")
            goaways[code] = goaways.get(code, 0) + 1
        buf = buf[9 + n:]
    entry[3] = buf


def drain(entry, send, goaways):
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
        entry[3] += data
        frames(entry, goaways)
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
    ap.add_argument("--min-avail-mib", type=int, default=512)
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
    closed, goaways = [], {}
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
            if entry and not drain(entry, args.send, goaways):
                closed.append(time.monotonic() - entry[1])
                ep.unregister(fd)
                entry[0].close()
                del socks[fd]
    say(event="done", open=len(socks), closed_by_server=len(closed),
        close_s=[round(min(closed), 2), round(max(closed), 2)]
        if closed else None, goaway=goaways)
    return 0


if __name__ == "__main__":
    sys.exit(main())
