#!/usr/bin/python3
"""A raw HTTP/2 client for test_h2lb_fast_path: writes of one connection
that end inside a frame, once the fast path switched its requests
(docs/fast-path.md, F9: the unfinished bytes wait in fast_held for the
next write).

It sends --warmup GET requests one after the other (each answered before
the next: the connection's answers and then its requests switch to the
fast path), and then --rounds rounds of each shape below, every request's
answer read before the next round:

    split-header       a HEADERS frame in two writes, the first ending
                       inside its 9-byte frame header
    split-payload      a HEADERS frame in two writes, the first ending
                       inside its payload
    partial-then-full  part of a HEADERS frame, then its rest and a whole
                       second request in one write
    full-then-partial  a whole request and part of a second one in one
                       write, then the second's rest
    post-body          a POST: its HEADERS (no END_STREAM) in one write,
                       then a DATA frame of --body bytes with END_STREAM
                       in three writes (the first ending inside the frame
                       header, the second inside the payload); with --echo
                       (a backend that echoes what is uploaded: nghttpd
                       --echo-upload), its answer must be that body, byte
                       for byte
    big-block          a GET whose header block is larger than a frame
                       (--block bytes of header fields: a HEADERS frame of
                       16 KiB and CONTINUATIONs) in three writes, the first
                       ending inside its first CONTINUATION, the second
                       inside its last; more than a frame waits for the
                       next write each time

With --held, the first warm-up write also holds a POST, before its GET:
the POST's HEADERS open a stream whose body waits until the rounds are
over (the backend answers nothing meanwhile, so the leg it went to stays
quiet), then goes as one DATA frame of --body bytes with END_STREAM, and
its answer must come (with --echo, that body).

With --stall-block SECONDS, after the warm-up and the rounds, it starts
a GET whose header block is longer than a frame (a HEADERS frame of
16 KiB without END_HEADERS and the first 5,000 bytes of a CONTINUATION),
prints {"stalled": true}, waits that long, and closes the connection
without finishing it or sending its PING.

And last a PING, whose ACK must come. Every stream must end with a
response whose :status is 200 (END_STREAM seen); no RST_STREAM and no
GOAWAY may come. It prints one JSON line: {"responses": {SHAPE: N, ...},
"resets", "goaways", "split_writes": writes after the warm-up that ended
inside a frame, "ping": true once its ACK came, and with --held "held":
true once the held stream's answer came}, and exits 0 if all went
well, else 1 with the reason on stderr. Every read waits at most 3 s, all
of it at most --deadline seconds.

    pieces_client.py --target HOST:PORT [--rounds 20] [--warmup 10]
                     [--body 300] [--block 40000] [--echo] [--held]
                     [--path /index.txt] [--stall-block SECONDS]
                     [--deadline 60]
"""
import argparse
import json
import os
import socket
import sys
import time

from h2conform import response_status
from h2raw import (ACK, CONTINUATION, DATA, END_HEADERS, END_STREAM, GOAWAY,
                   HEADERS, MAX_WINDOW_UPDATE, PADDED, PING, PREFACE,
                   PRIORITY, RST_STREAM, SETTINGS, frame, lit, read_frame)

SHAPES = ("split-header", "split-payload", "partial-then-full",
          "full-then-partial", "post-body", "big-block")
MAX_FRAME = 16384  # SETTINGS_MAX_FRAME_SIZE: h2lb does not raise it
PAUSE = 0.01  # between the writes of a shape: each its own sendmsg


class Failure(Exception):
    pass


class Client:
    def __init__(self, target, path, body, block, echo, deadline):
        host, port = target.rsplit(":", 1)
        self.deadline = time.monotonic() + deadline
        self.conn = socket.create_connection((host, int(port)), timeout=3)
        self.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.path = path.encode()
        self.body = body
        self.block_bytes = block
        self.echo = echo
        self.authority = host.encode()
        self.next_id = 1
        self.resets = 0
        self.goaways = 0
        self.split_writes = 0
        self.ping_acked = False
        self.status = {}        # stream -> saw :status 200
        self.block = {}         # stream -> header block in CONTINUATIONs
        self.first_block = {}   # stream -> its answer's first bytes
        self.expect = {}        # stream -> the body it must echo
        self.got = {}           # stream -> what it answered of it so far
        self.send([PREFACE + frame(SETTINGS, 0, 0) + MAX_WINDOW_UPDATE])

    def request(self, method=b"GET", end_stream=True, pad=0):
        """A HEADERS frame of a new request, and its stream id; with @pad,
        at least that many bytes of x-pad-* fields follow the pseudo
        fields, and the block goes in as many frames as it takes (a
        HEADERS frame and CONTINUATIONs, joined)."""
        sid = self.next_id
        self.next_id += 2
        block = lit(b":method", method) + lit(b":scheme", b"http") + \
            lit(b":path", self.path) + lit(b":authority", self.authority)
        i = 0
        while pad and len(block) < pad:
            block += lit(b"x-pad-%03d" % i, os.urandom(55).hex().encode())
            i += 1
        es = END_STREAM if end_stream else 0
        if len(block) <= MAX_FRAME:
            return frame(HEADERS, END_HEADERS | es, sid, block), sid
        parts = [block[i:i + MAX_FRAME]
                 for i in range(0, len(block), MAX_FRAME)]
        out = frame(HEADERS, es, sid, parts[0])
        for i, part in enumerate(parts[1:], 1):
            last = i == len(parts) - 1
            out += frame(CONTINUATION, END_HEADERS if last else 0, sid, part)
        return out, sid

    def send(self, frames, cuts=(), count=False):
        """The frames @frames (bytes each), joined, in writes that end at
        the offsets @cuts and at the end; with @count, count the writes
        that end inside a frame."""
        data = b"".join(frames)
        ends, at = set(), 0
        for f in frames:
            at += len(f)
            ends.add(at)
        start = 0
        for end in list(cuts) + [len(data)]:
            if start:
                time.sleep(PAUSE)
            self.conn.sendall(data[start:end])
            if count and end not in ends:
                self.split_writes += 1
            start = end

    def wait(self, ids):
        """Read until every stream of @ids ended; fails on anything
        else."""
        ids = set(ids)
        while ids:
            f = self.read("streams %s to end" % sorted(ids))
            ftype, flags, sid, payload = f
            if sid in ids and ftype in (HEADERS, DATA) and flags & END_STREAM:
                if not self.status.get(sid):
                    raise Failure("stream %d ended without a :status 200 "
                                  "(its header block starts %s)" % (
                                      sid, self.first_block.get(
                                          sid, b"").hex() or "nowhere"))
                if sid in self.expect and \
                        self.got.get(sid, b"") != self.expect[sid]:
                    raise Failure("stream %d echoed %d bytes, not the %d it "
                                  "uploaded" % (sid, len(self.got.get(
                                      sid, b"")), len(self.expect[sid])))
                ids.discard(sid)

    def read(self, what):
        """The next frame, after what it asks of us; fails on a timeout,
        the end of the connection, a GOAWAY or an RST_STREAM."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Failure("deadline passed, waiting for %s" % what)
        self.conn.settimeout(min(3.0, left))
        try:
            f = read_frame(self.conn)
        except socket.timeout:
            raise Failure("nothing for 3 s, waiting for %s" % what) from None
        except OSError as e:
            raise Failure("%s, waiting for %s" % (e, what)) from None
        if f is None:
            raise Failure("connection closed, waiting for %s" % what)
        ftype, flags, sid, payload = f
        if ftype == SETTINGS and not flags & ACK:
            self.conn.sendall(frame(SETTINGS, ACK, 0))
        elif ftype == PING and not flags & ACK:
            self.conn.sendall(frame(PING, ACK, 0, payload))
        elif ftype == PING and payload == b"pieces!!":
            self.ping_acked = True
        elif ftype == GOAWAY:
            self.goaways += 1
            raise Failure("GOAWAY (last stream %d, error %d), waiting for %s"
                          % (int.from_bytes(payload[:4], "big") & 0x7FFFFFFF,
                             int.from_bytes(payload[4:8], "big"), what))
        elif ftype == RST_STREAM:
            self.resets += 1
            raise Failure("RST_STREAM on stream %d (error %d), waiting for %s"
                          % (sid, int.from_bytes(payload[:4], "big"), what))
        elif ftype in (HEADERS, CONTINUATION):
            self.header_block(ftype, flags, sid, payload)
        elif ftype == DATA and sid in self.expect:
            if flags & PADDED:
                payload = payload[1:len(payload) - payload[0]]
            self.got[sid] = self.got.get(sid, b"") + payload
        return f

    def header_block(self, ftype, flags, sid, payload):
        if ftype == HEADERS:
            if flags & PADDED:
                payload = payload[1:len(payload) - payload[0]]
            if flags & PRIORITY:
                payload = payload[5:]
            self.block[sid] = b""
        self.block[sid] = self.block.get(sid, b"") + payload
        if flags & END_HEADERS:
            block = self.block.pop(sid)
            # (a second block is trailers: the first one decided; the
            # backends' answers start with a dynamic table size update,
            # after h2lb's SETTINGS_HEADER_TABLE_SIZE of 0)
            self.status.setdefault(sid, response_status(block) == "200")
            self.first_block.setdefault(sid, block[:16])

    def body_frame(self, sid):
        """A DATA frame of --body random bytes that ends stream @sid; with
        --echo, its answer must be those bytes."""
        body = os.urandom(self.body)
        if self.echo:
            self.expect[sid] = body
        return frame(DATA, END_STREAM, sid, body)

    def shape(self, name):
        """One round of shape @name; the number of its streams, all
        answered."""
        a, i1 = self.request(b"POST" if name == "post-body" else b"GET",
                             end_stream=name != "post-body")
        if name == "post-body":
            d = self.body_frame(i1)
            self.send([a], count=True)
            self.send([d], cuts=(5, 9 + self.body // 2), count=True)
            ids = [i1]
        elif name == "split-header":
            self.send([a], cuts=(5,), count=True)
            ids = [i1]
        elif name == "big-block":
            a, i1 = self.request(pad=self.block_bytes)
            # inside the first CONTINUATION, then inside the last frame
            first = 9 + MAX_FRAME
            self.send([a], cuts=(first + 100, len(a) - 100), count=True)
            ids = [i1]
        elif name == "split-payload":
            self.send([a], cuts=(15,), count=True)
            ids = [i1]
        else:
            b, i2 = self.request()
            cut = 12 if name == "partial-then-full" else len(a) + 12
            self.send([a, b], cuts=(cut,), count=True)
            ids = [i1, i2]
        self.wait(ids)
        return len(ids)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--body", type=int, default=300)
    ap.add_argument("--block", type=int, default=40000)
    ap.add_argument("--echo", action="store_true")
    ap.add_argument("--held", action="store_true")
    ap.add_argument("--path", default="/index.txt")
    ap.add_argument("--deadline", type=float, default=60)
    ap.add_argument("--stall-block", type=float, default=0)
    args = ap.parse_args()
    if args.held and args.warmup < 1:
        ap.error("--held goes with the first warm-up request: "
                 "--warmup 1 or more")
    responses = {s: 0 for s in SHAPES}
    error = None
    c = None
    held_answered = False
    try:
        c = Client(args.target, args.path, args.body, args.block, args.echo,
                   args.deadline)
        for i in range(args.warmup):
            p = b""
            if args.held and not i:
                p, held = c.request(b"POST", end_stream=False)
            h, sid = c.request()
            c.send([p + h])
            c.wait([sid])
        for _ in range(args.rounds):
            for s in SHAPES:
                responses[s] += c.shape(s)
        if args.held:
            c.send([c.body_frame(held)])
            c.wait([held])
            held_answered = True
        if args.stall_block:
            a, _ = c.request(pad=2 * MAX_FRAME)
            c.send([a[:9 + MAX_FRAME + 5000]])
            print(json.dumps({"stalled": True}), flush=True)
            time.sleep(args.stall_block)
            c.conn.close()
            return 0
        c.send([frame(PING, 0, 0, b"pieces!!")])
        while not c.ping_acked:
            c.read("the ACK of our PING")
    except Failure as e:
        error = str(e)
    except OSError as e:
        error = "socket: %s" % e
    out = {"responses": responses,
           "resets": c.resets if c else 0,
           "goaways": c.goaways if c else 0,
           "split_writes": c.split_writes if c else 0,
           "ping": bool(c and c.ping_acked)}
    if args.held:
        out["held"] = held_answered
    print(json.dumps(out), flush=True)
    if c:
        c.conn.close()
    if error:
        done = sum(responses.values())
        print("pieces_client: %s (after %d answered requests past the "
              "warm-up)" % (error, done), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
