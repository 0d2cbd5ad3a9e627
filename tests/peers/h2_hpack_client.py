#!/usr/bin/python3
"""Raw HTTP/2 (h2c) gRPC client that drives HPACK around the SETTINGS ACK.

    h2_hpack_client.py --target HOST:PORT [--pre N] [--post M]
        [--inflight K] [--timeout S]

It talks to the "h2lb.Probe" service (probe_server.py, method Echo) with its
own frame and HPACK code, because a real gRPC client chooses itself when
to use its dynamic table; here the test chooses:

  phase "pre":  right after the connection preface and our SETTINGS, before
                reading anything from the server (so before acknowledging
                the balancer's SETTINGS_HEADER_TABLE_SIZE = 0), N requests
                whose header blocks use the HPACK dynamic table (default
                4096 bytes): literals with incremental indexing, references
                to entries added by earlier blocks, evictions (unique
                x-req-id values churn the table).
  ack:          read up to the server's SETTINGS, send the SETTINGS ACK.
  phase "post": M requests, at most K in flight, whose first header block
                starts with a dynamic table size update to 0 (RFC 7541
                4.2) and that never index anything again.

Every response must be a gRPC reply whose echo (probe_server.py) shows the
exact tag and x-* metadata of its request, followed by trailers that end the
stream; no RST_STREAM and no GOAWAY may arrive.  A mismatch means a backend
decoded a header block against the wrong HPACK state.

Prints one JSON line: {"ok", "errors", "pre": {backend: n},
"post": {backend: n}, "problems": [...]}; exit 0 only if all N + M calls
came back intact.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import random
import select
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import greeter_pb as pb  # noqa: E402

from h2raw import (ACK, CONTINUATION, DATA, END_HEADERS,  # noqa: E402,F401
                   END_STREAM, GOAWAY, HEADERS, PADDED, PING, PREFACE,
                   PRIORITY, RST_STREAM, SETTINGS, WINDOW_UPDATE, frame)

MAX_FRAME = 16384
MAX_PROBLEMS = 20

# RFC 7541 Appendix A: the entries we refer to.
STATIC = {(":authority", ""): 1, (":method", "POST"): 3, (":path", "/"): 4,
          (":scheme", "http"): 6, ("content-type", ""): 31}
STATIC_NAMES = {":authority": 1, ":path": 4, "content-type": 31}
STATIC_LEN = 61


def hpack_int(value: int, prefix: int, first: int = 0) -> bytes:
    limit = (1 << prefix) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 127) | 128)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_str(text: str) -> bytes:
    raw = text.encode()
    return hpack_int(len(raw), 7) + raw  # no Huffman


class Encoder:
    """HPACK encoder with a dynamic table (RFC 7541 2.3, 4, 6)."""

    def __init__(self, max_size: int = 4096) -> None:
        self.table: list[tuple[str, str]] = []   # newest first
        self.size = 0
        self.max_size = max_size
        self.indexing = True
        self.pending_update: int | None = None
        self.stats = collections.Counter()

    @staticmethod
    def entry_size(name: str, value: str) -> int:
        return len(name.encode()) + len(value.encode()) + 32

    def _evict(self) -> None:
        while self.size > self.max_size and self.table:
            n, v = self.table.pop()
            self.size -= self.entry_size(n, v)
            self.stats["evicted"] += 1

    def set_max_size(self, size: int) -> None:
        self.max_size = size
        self._evict()
        self.pending_update = size
        self.indexing = size > 0

    def _add(self, name: str, value: str) -> None:
        self.table.insert(0, (name, value))
        self.size += self.entry_size(name, value)
        self.stats["inserted"] += 1
        self._evict()

    def encode(self, headers: list[tuple[str, str]]) -> bytes:
        out = bytearray()
        if self.pending_update is not None:
            out += hpack_int(self.pending_update, 5, 0x20)
            self.pending_update = None
        for name, value in headers:
            if (name, value) in STATIC:
                out += hpack_int(STATIC[(name, value)], 7, 0x80)
                self.stats["static"] += 1
                continue
            if self.indexing and (name, value) in self.table:
                idx = STATIC_LEN + 1 + self.table.index((name, value))
                out += hpack_int(idx, 7, 0x80)
                self.stats["dynamic_ref"] += 1
                continue
            name_idx = STATIC_NAMES.get(name)
            if self.indexing:
                # Literal with incremental indexing (6-bit prefix).
                if name_idx is None:
                    out += b"\x40" + hpack_str(name)
                else:
                    out += hpack_int(name_idx, 6, 0x40)
                out += hpack_str(value)
                self._add(name, value)
                self.stats["literal_indexed"] += 1
            else:
                # Literal without indexing (4-bit prefix).
                if name_idx is None:
                    out += b"\x00" + hpack_str(name)
                else:
                    out += hpack_int(name_idx, 4, 0x00)
                out += hpack_str(value)
                self.stats["literal"] += 1
        return bytes(out)


USERS = [f"user-{i:02d}@example.test" for i in range(24)]


def request_headers(authority: str, i: int, rng: random.Random):
    md = [
        ("x-req-id", f"req-{i:05d}-{rng.getrandbits(48):012x}"),
        ("x-user", rng.choice(USERS)),
        ("x-tenant", f"tenant-{i % 5}"),
        ("x-shard", f"shard-{rng.randrange(9)}-{'z' * rng.randrange(0, 60)}"),
    ]
    headers = [(":method", "POST"), (":scheme", "http"),
               (":path", "/h2lb.Probe/Echo"), (":authority", authority),
               ("content-type", "application/grpc"), ("te", "trailers")]
    return headers + md, md


def grpc_message(tag: str) -> bytes:
    msg = pb.HelloRequest(name=tag).SerializeToString()
    return b"\x00" + struct.pack(">I", len(msg)) + msg


def md_digest(md) -> str:
    h = hashlib.sha256()
    for k, v in sorted(md):
        h.update(f"{k}:{v}\n".encode())
    return h.hexdigest()


class Conn:
    def __init__(self, host: str, port: int, deadline: float) -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.deadline = deadline
        self.send_window = 65535           # connection window toward server
        self.peer_initial_window = 65535
        self.peer_max_streams = 100

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_frame(self):
        """(type, flags, stream, payload), or None at EOF/deadline."""
        while True:
            if len(self.buf) >= 9:
                length = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) >= 9 + length:
                    ftype, flags = self.buf[3], self.buf[4]
                    stream = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
                    payload = bytes(self.buf[9:9 + length])
                    del self.buf[:9 + length]
                    return ftype, flags, stream, payload
            left = self.deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.sock], [], [], min(left, 1.0))
            if not r:
                continue
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                return None
            self.buf += chunk


def header_block_frames(stream: int, block: bytes, end_stream: bool) -> bytes:
    out = bytearray()
    first = True
    while True:
        chunk, block = block[:MAX_FRAME], block[MAX_FRAME:]
        flags = (END_HEADERS if not block else 0)
        if first:
            flags |= END_STREAM if end_stream else 0
            out += frame(HEADERS, flags, stream, chunk)
            first = False
        else:
            out += frame(CONTINUATION, flags, stream, chunk)
        if not block:
            return bytes(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target", required=True)
    ap.add_argument("--pre", type=int, default=60)
    ap.add_argument("--post", type=int, default=1000)
    ap.add_argument("--inflight", type=int, default=64)
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args(argv)
    host, _, port = args.target.rpartition(":")
    deadline = time.monotonic() + args.timeout
    rng = random.Random(7)
    problems: list[str] = []
    nproblems = 0

    def problem(text: str) -> None:
        nonlocal nproblems
        nproblems += 1
        if len(problems) < MAX_PROBLEMS:
            problems.append(text)
            print(f"h2_hpack_client: {text}", file=sys.stderr, flush=True)

    conn = Conn(host, int(port), deadline)
    enc = Encoder(4096)
    # Our SETTINGS: large stream windows, and a large connection window.
    conn.send(PREFACE + frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 1 << 24))
              + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", (1 << 30))))

    calls: dict[int, dict] = {}      # stream id -> state
    next_stream = 1
    total = args.pre + args.post

    def start_call(i: int, phase: str) -> None:
        nonlocal next_stream
        sid = next_stream
        next_stream += 2
        tag = f"{phase}-{i}"
        headers, md = request_headers(host, i, rng)
        block = enc.encode(headers)
        body = grpc_message(tag)
        conn.send(header_block_frames(sid, block, False)
                  + frame(DATA, END_STREAM, sid, body))
        conn.send_window -= len(body)
        calls[sid] = {"tag": tag, "md": md, "phase": phase, "data": b"",
                      "done": False, "headers": 0}

    # Phase "pre": before we read (and so acknowledge) the server SETTINGS.
    for i in range(args.pre):
        start_call(i, "pre")
    pre_stats = dict(enc.stats)

    # Acknowledge the server's SETTINGS; frames of pre-ACK calls that come
    # first are kept for later.
    early = []
    acked = False
    while not acked:
        f = conn.read_frame()
        if f is None:
            problem("no SETTINGS from the server")
            break
        ftype, flags, sid, payload = f
        if ftype == SETTINGS and not flags & ACK:
            for off in range(0, len(payload) - 5, 6):
                key, value = struct.unpack(">HI", payload[off:off + 6])
                if key == 1:
                    enc.set_max_size(min(value, 4096))
                elif key == 3:
                    conn.peer_max_streams = value
                elif key == 4:
                    conn.peer_initial_window = value
            conn.send(frame(SETTINGS, ACK, 0))
            acked = True
        else:
            early.append(f)
    if enc.max_size != 0:
        problem(f"server advertised HEADER_TABLE_SIZE {enc.max_size}, "
                "not 0: the post-ACK phase tests nothing new")

    results = collections.Counter()
    by_backend = {"pre": collections.Counter(), "post": collections.Counter()}
    open_block = None
    done = 0
    started_post = 0
    inflight_limit = max(1, min(args.inflight, conn.peer_max_streams))

    def handle(f) -> bool:
        """Process one frame; False on a connection-level failure."""
        nonlocal open_block, done
        ftype, flags, sid, payload = f
        if open_block is not None and not (ftype == CONTINUATION
                                           and sid == open_block):
            problem(f"frame type {ftype} on stream {sid} inside the header "
                    f"block of stream {open_block}")
            return False
        if ftype in (HEADERS, CONTINUATION):
            open_block = None if flags & END_HEADERS else sid
        if ftype == PING and not flags & ACK:
            conn.send(frame(PING, ACK, 0, payload))
            return True
        if ftype == SETTINGS:
            if not flags & ACK:
                conn.send(frame(SETTINGS, ACK, 0))
            return True
        if ftype == WINDOW_UPDATE:
            if sid == 0:
                conn.send_window += struct.unpack(">I", payload)[0] & 0x7FFFFFFF
            return True
        if ftype == GOAWAY:
            last, code = struct.unpack(">II", payload[:8])
            problem(f"GOAWAY last_stream={last & 0x7FFFFFFF} code={code} "
                    f"{payload[8:]!r}")
            return False
        if sid == 0 or sid not in calls:
            return True
        c = calls[sid]
        if ftype == RST_STREAM:
            problem(f"{c['tag']}: RST_STREAM code "
                    f"{struct.unpack('>I', payload)[0]}")
            c["done"] = True
            done += 1
            results["errors"] += 1
            return True
        if ftype == DATA:
            data = payload
            if flags & PADDED:
                data = payload[1:len(payload) - payload[0]]
            c["data"] += data
            # Give the window back as we go (both levels).
            if payload:
                conn.send(frame(WINDOW_UPDATE, 0, 0,
                                struct.pack(">I", len(payload)))
                          + frame(WINDOW_UPDATE, 0, sid,
                                  struct.pack(">I", len(payload))))
        elif ftype == HEADERS:
            c["headers"] += 1
        if flags & END_STREAM and ftype in (DATA, HEADERS) and not c["done"]:
            c["done"] = True
            done += 1
            check(c)
        return True

    def check(c) -> None:
        data = c["data"]
        if len(data) < 5 or c["headers"] < 2:
            problem(f"{c['tag']}: no reply ({len(data)} DATA bytes, "
                    f"{c['headers']} header blocks)")
            results["errors"] += 1
            return
        n = struct.unpack(">I", data[1:5])[0]
        try:
            rep = pb.HelloReply.FromString(data[5:5 + n])
            echo = json.loads(rep.message)
        except Exception as exc:  # noqa: BLE001
            problem(f"{c['tag']}: bad reply: {exc!r}")
            results["errors"] += 1
            return
        want_md = {k: v for k, v in c["md"]}
        if echo.get("tag") != c["tag"] or echo.get("md") != want_md or \
                echo.get("md_sha256") != md_digest(c["md"]):
            diff = {k: (v, echo.get("md", {}).get(k))
                    for k, v in want_md.items()
                    if echo.get("md", {}).get(k) != v}
            problem(f"{c['tag']}: echo mismatch: tag {echo.get('tag')!r}, "
                    f"differing {diff}")
            results["errors"] += 1
            return
        results["ok"] += 1
        by_backend[c["phase"]][echo.get("backend", "?")] += 1

    ok = True
    for f in early:
        ok = ok and handle(f)
    while ok and done < total and time.monotonic() < deadline:
        while (started_post < args.post
               and (next_stream - 1) // 2 - done < inflight_limit
               and conn.send_window > 1024):
            start_call(started_post, "post")
            started_post += 1
        f = conn.read_frame()
        if f is None:
            problem("connection closed or timed out")
            break
        ok = handle(f)
    if done < total:
        problem(f"only {done} of {total} calls ended")
    try:
        conn.send(frame(GOAWAY, 0, 0, struct.pack(">II", 0, 0)))
        conn.sock.close()
    except OSError:
        pass
    out = {"ok": results["ok"], "errors": results["errors"], "calls": total,
           "pre": dict(sorted(by_backend["pre"].items())),
           "post": dict(sorted(by_backend["post"].items())),
           "hpack_pre": pre_stats, "hpack_all": dict(enc.stats),
           "problems_total": nproblems, "problems": problems}
    print(json.dumps(out, separators=(",", ":")), flush=True)
    return 0 if results["ok"] == total and not nproblems else 1


if __name__ == "__main__":
    sys.exit(main())
