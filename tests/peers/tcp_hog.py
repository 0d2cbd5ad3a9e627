#!/usr/bin/python3
"""Holds TCP memory on the node: connections whose receiver never reads.

    tcp_hog.py --addr ADDR --mib N [--hold S]

Listens on ADDR (a port the kernel picks), connects to itself until the
node's TCP memory count (/proc/net/sockstat "mem", one for the whole
machine) has risen by N MiB, or 256 connections: each sender writes until
its send queue and its peer's receive queue are full, and nobody reads.
Prints {"connections": n, "mib": m} (m: how much the count rose), then
holds everything for S seconds (default 120) or until killed, and exits
(the kernel frees it all).
The testbed's addresses only (ADDR is one of its namespaces').
"""
import argparse
import json
import socket
import time

PAGE = 4096
BUF = 4 << 20  # asked of each socket; the kernel doubles it (rmem_max caps)


def tcp_mem_mib():
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                w = line.split()
                return int(w[w.index("mem") + 1]) * PAGE / (1 << 20)
    raise SystemExit("no TCP line in /proc/net/sockstat")


def fill(s):
    """Write until the connection takes no more."""
    chunk = b"\0" * 65536
    s.setblocking(False)
    stalls = 0
    while stalls < 10:
        try:
            s.send(chunk)
            stalls = 0
        except BlockingIOError:
            stalls += 1
            time.sleep(0.002)  # the peer's window may still open


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--mib", type=int, required=True)
    ap.add_argument("--hold", type=float, default=120)
    a = ap.parse_args()
    if not a.addr.startswith(("198.18.", "198.19.")):
        raise SystemExit("--addr must be in 198.18.0.0/15 (the testbed's)")

    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUF)  # accepted ones
    ls.bind((a.addr, 0))
    ls.listen(256)
    start = tcp_mem_mib()
    held = []
    for _ in range(256):
        c = socket.socket()
        c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUF)
        c.connect(ls.getsockname())
        r, _ = ls.accept()
        held += [c, r]
        fill(c)
        if tcp_mem_mib() - start >= a.mib:
            break
    print(json.dumps({"connections": len(held) // 2,
                      "mib": round(tcp_mem_mib() - start, 1)}), flush=True)
    time.sleep(a.hold)


if __name__ == "__main__":
    main()
