#!/usr/bin/python3
"""An HTTP/2 backend far away: it acts on each frame it receives --lag-ms
after the frame arrived, as if its network were that slow one way, and
answers every request with --size bytes of DATA, --chunk bytes every
--gap-ms, within the windows it knows of at the time. So DATA it sends
under a window is still on its way when a SETTINGS that lowers the window
reaches it, as over any long path.

    lagging_server.py --port PORT [--lag-ms 50] [--size 1048576]
                      [--chunk 16384] [--gap-ms 2] [--ack-settings N]

--ack-settings N: ACK only the first N SETTINGS of each connection (it
still applies the later ones): a backend that holds a SETTINGS hostage.
"""
import argparse
import collections
import queue
import threading
import time

from h2raw import (ACK, DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS,
                   PING, PREFACE, SETTINGS, WINDOW_UPDATE, frame, read_exact,
                   read_frame, serve_forever)

INITIAL_WINDOW_SIZE = 4


def reader(conn, lag, q):
    """Frames into @q, each with the time it is due; None at the end."""
    try:
        if read_exact(conn, len(PREFACE)) is not None:
            while (f := read_frame(conn)) is not None:
                q.put((time.monotonic() + lag, f))
    except OSError:
        pass
    q.put(None)


class Conn:
    def __init__(self, conn, a):
        self.conn, self.a = conn, a
        self.iws = 65535  # the peer's SETTINGS_INITIAL_WINDOW_SIZE
        self.window = 65535  # connection send window
        self.streams = {}  # id -> [window, bytes left, next send time]
        self.acks = 0
        self.done = False

    def handle(self, f):
        ftype, flags, stream, payload = f
        if ftype == SETTINGS and not flags & ACK:
            for i in range(0, len(payload) - 5, 6):
                ident = int.from_bytes(payload[i:i + 2], "big")
                if ident == INITIAL_WINDOW_SIZE:
                    value = int.from_bytes(payload[i + 2:i + 6], "big")
                    for s in self.streams.values():
                        s[0] += value - self.iws
                    self.iws = value
            if self.a.ack_settings < 0 or self.acks < self.a.ack_settings:
                self.conn.sendall(frame(SETTINGS, ACK, 0))
                self.acks += 1
        elif ftype == WINDOW_UPDATE:
            inc = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
            if stream == 0:
                self.window += inc
            elif stream in self.streams:
                self.streams[stream][0] += inc
        elif ftype == PING and not flags & ACK:
            self.conn.sendall(frame(PING, ACK, 0, payload))
        elif ftype == HEADERS and stream not in self.streams:
            self.conn.sendall(frame(HEADERS, END_HEADERS, stream, b"\x88"))
            self.streams[stream] = [self.iws, self.a.size, 0.0]
        elif ftype == GOAWAY:
            self.done = True

    def send(self, now):
        """DATA due now, within the windows; the next time one is due."""
        nxt = now + 0.05
        for sid, s in list(self.streams.items()):
            if s[2] > now:
                nxt = min(nxt, s[2])
                continue
            n = min(self.a.chunk, s[1], s[0], self.window)
            if n <= 0 and s[1] > 0:
                continue  # a window is shut: a WINDOW_UPDATE reopens it
            s[0] -= n
            s[1] -= n
            self.window -= n
            self.conn.sendall(frame(DATA, END_STREAM if not s[1] else 0,
                                    sid, b"x" * n))
            if not s[1]:
                del self.streams[sid]
            else:
                s[2] = now + self.a.gap_ms / 1000
                nxt = min(nxt, s[2])
        return nxt


def serve(conn, a):
    q = queue.Queue()
    c = Conn(conn, a)
    due = collections.deque()
    threading.Thread(target=reader, args=(conn, a.lag_ms / 1000, q),
                     daemon=True).start()
    try:
        conn.sendall(frame(SETTINGS, 0, 0))
        nxt = time.monotonic()
        while not c.done:
            now = time.monotonic()
            wake = min(nxt, due[0][0]) if due else nxt
            try:
                item = q.get(timeout=max(0.0, wake - now))
                if item is None:
                    break
                due.append(item)
            except queue.Empty:
                pass
            now = time.monotonic()
            while due and due[0][0] <= now:
                c.handle(due.popleft()[1])
            nxt = c.send(now)
    except OSError:
        pass
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--lag-ms", type=float, default=50)
    ap.add_argument("--size", type=int, default=1 << 20)
    ap.add_argument("--chunk", type=int, default=16384)
    ap.add_argument("--gap-ms", type=float, default=2)
    ap.add_argument("--ack-settings", type=int, default=-1)
    a = ap.parse_args()
    serve_forever(a.bind, a.port, serve, a)


if __name__ == "__main__":
    main()
