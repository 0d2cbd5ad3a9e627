#!/usr/bin/python3
"""A raw HTTP/2 client for test_h2lb_leg_burst: opens --streams GET
streams at once on one connection, reads until every stream has either a
response with END_STREAM or an RST_STREAM, prints one JSON line
{"responses", "resets"}, one {"read": bytes it read from its socket} and
one {"bad_padding": DATA frames whose pad length is not shorter than the
frame, RFC 9113 6.1}, and then keeps the connection open for --hold
seconds, so that the test can look at the balancer's books while the
connection still lives (its close would end any stream left over).
With --trickle, everything it sends goes one byte per send() (frame
headers in pieces: test_h2lb_fast_path); with --one-write, all of it in
one send(); with --ping-after S, it reads nothing for S seconds after its
requests, then sends a PING before it reads, and reads up to its ACK (the
ACK is not in the bytes it says it read); with --final-request, once it
has read every answer it sends one more request and reads its answer,
twice.

    burst_client.py --target HOST:PORT [--streams 20] [--hold 3]
                    [--trickle | --one-write] [--ping-after S]
                    [--final-request]
"""
import argparse
import json
import socket
import sys
import time

from h2raw import (ACK, DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS,
                   PADDED, PING, PREFACE, RST_STREAM, SETTINGS, frame,
                   read_frame)


def bad_padding(ftype, flags, payload):
    return ftype == DATA and flags & PADDED and \
        (not payload or payload[0] >= len(payload))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--streams", type=int, default=20)
    ap.add_argument("--hold", type=float, default=3.0)
    ap.add_argument("--trickle", action="store_true")
    ap.add_argument("--one-write", action="store_true")
    ap.add_argument("--ping-after", type=float, default=0)
    ap.add_argument("--final-request", action="store_true")
    args = ap.parse_args()
    host, port = args.target.rsplit(":", 1)
    conn = socket.create_connection((host, int(port)), timeout=10)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # GET / : the static HPACK indices of :method GET, :scheme http,
    # :path /, and :authority as a literal without indexing.
    block = b"\x82\x86\x84\x01" + bytes([len(host)]) + host.encode()
    ids = [2 * i + 1 for i in range(args.streams)]
    out = [PREFACE + frame(SETTINGS, 0, 0),
           b"".join(frame(HEADERS, END_HEADERS | END_STREAM, s, block)
                    for s in ids)]
    if args.one_write:
        out = [b"".join(out)]
    for chunk in out:
        if args.trickle:
            for i in range(len(chunk)):
                conn.sendall(chunk[i:i + 1])
        else:
            conn.sendall(chunk)
    if args.ping_after:
        time.sleep(args.ping_after)
        conn.sendall(frame(PING, 0, 0, b"unread!!"))
    done, responses, resets, read, bad = set(), 0, 0, 0, 0
    # With --ping-after, also until the PING's ACK: it comes after all
    # that was sent to the client before it.
    ping_acked = not args.ping_after
    deadline = time.time() + 10
    while (len(done) < len(ids) or not ping_acked) and \
            time.time() < deadline:
        f = read_frame(conn)
        if f is None:
            break
        ftype, flags, stream, payload = f
        read += 9 + len(payload)
        bad += bad_padding(ftype, flags, payload)
        if ftype == SETTINGS and not flags & ACK:
            conn.sendall(frame(SETTINGS, ACK, 0))
        elif ftype == PING and not flags & ACK:
            conn.sendall(frame(PING, ACK, 0, payload))
        elif ftype == PING and payload == b"unread!!":
            ping_acked = True
            read -= 9 + len(payload)  # not sent before the PING
        elif ftype == GOAWAY:
            break
        elif ftype in (DATA, HEADERS) and flags & END_STREAM and \
                stream not in done:
            done.add(stream)
            responses += 1
        elif ftype == RST_STREAM and stream not in done:
            done.add(stream)
            resets += 1
    # With --final-request, two more requests, one after the other, once
    # every answer was read: the fast path switches a connection's answers
    # to ingress at a message of a client that has read everything
    # (docs/fast-path.md, rule R), and the first may find a late frame
    # (our SETTINGS' ACK) unread. (Not at a PING: its ACK goes back
    # through our TCP in the same verdict.)
    for extra in range(2 if args.final_request else 0):
        last = ids[-1] + 2 * (extra + 1)
        conn.sendall(frame(HEADERS, END_HEADERS | END_STREAM, last, block))
        while time.time() < deadline:
            f = read_frame(conn)
            if f is None:
                break
            ftype, flags, stream, payload = f
            read += 9 + len(payload)
            if stream == last and flags & END_STREAM:
                break
            if ftype == PING and not flags & ACK:
                conn.sendall(frame(PING, ACK, 0, payload))
    print(json.dumps({"responses": responses, "resets": resets}))
    print(json.dumps({"read": read}))
    print(json.dumps({"bad_padding": bad}), flush=True)
    time.sleep(args.hold)
    conn.close()
    return 0 if len(done) == len(ids) else 1


if __name__ == "__main__":
    sys.exit(main())
