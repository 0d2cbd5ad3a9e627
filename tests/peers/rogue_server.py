#!/usr/bin/python3
"""An HTTP/2 backend that misbehaves on request: a request whose path
carries "!@!@MODE!@!@" gets MODE; every other request gets ":status 200"
and "ok". (HPACK's Huffman code of that marker is longer than the marker,
so encoders send it as is, curl's and nghttp2's included, and it can be
found in the header block without decoding it.)

    close       close the connection without an answer
    midbody     HEADERS, 1,000 bytes of DATA, then close the connection
    push        a PUSH_PROMISE (the client was told ENABLE_PUSH 0)
    bigblock    a response header block of 81,900 bytes (HEADERS and four
                CONTINUATIONs), beyond the 64 KiB h2lb announces
    framesize   HEADERS, then (0.1 s later) a DATA frame of 16,385 bytes
                (the limit is 16,384)
    idledata    DATA on a stream the client never opened
    overrun     HEADERS, then five DATA frames of 16,384 bytes, 50 ms apart,
                the last with END_STREAM, whatever the stream's window
                (it waits, at most 2 s, for a connection window that takes
                them, so that only the stream's can be overrun)

After misbehaving it keeps reading, and prints one JSON line per mode
played: {"mode": MODE, "goaway": CODE or null, "rst": CODE or null,
"end": HOW}: the GOAWAY and the last RST_STREAM it got on that
connection, and how the connection ended ("closed": by the peer; "ours":
by the mode; "timeout": nothing came for 3 s; else the error's name).

    rogue_server.py --port PORT
"""
import argparse
import json
import re
import socket
import struct
import sys
import threading
import time

from h2raw import (ACK, CONTINUATION, DATA, END_HEADERS, END_STREAM, GOAWAY,
                   HEADERS, PING, PREFACE, RST_STREAM, SETTINGS,
                   WINDOW_UPDATE, frame, lit, read_exact, read_frame,
                   serve_forever)

PUSH_PROMISE = 5
MODE = re.compile(rb"!@!@([a-z]+)!@!@")
out_lock = threading.Lock()


def bad_frames(mode, stream):
    """What MODE sends on @stream, and whether to close right after."""
    if mode == "close":
        return b"", True
    if mode == "midbody":
        return (frame(HEADERS, END_HEADERS, stream, b"\x88") +
                frame(DATA, 0, stream, b"x" * 1000)), True
    if mode == "push":
        block = b"\x82\x84" + lit(b":authority", b"rogue")  # GET /
        return frame(PUSH_PROMISE, END_HEADERS, stream,
                     struct.pack(">I", 2) + block), False
    if mode == "bigblock":
        chunk = 16384
        # :status 200 and one field of 81,888 bytes, a literal whose
        # length is an HPACK integer of four bytes: 81,900 in all.
        value = b"v" * (5 * chunk - 32)
        block = b"\x88" + bytes([0, 5]) + b"x-big" + hpack_len(len(value)) \
            + value
        frames = frame(HEADERS, 0, stream, block[:chunk])
        for i in range(chunk, len(block), chunk):
            last = i + chunk >= len(block)
            frames += frame(CONTINUATION, END_HEADERS if last else 0, stream,
                            block[i:i + chunk])
        return frames, False
    if mode == "framesize":
        return frame(DATA, END_STREAM, stream, b"x" * 16385), False
    if mode == "idledata":
        return frame(DATA, END_STREAM, stream + 200, b"stray"), False
    raise ValueError(mode)


def hpack_len(n):
    """An HPACK string length, no Huffman (RFC 7541 5.1, 7-bit prefix)."""
    if n < 127:
        return bytes([n])
    out, n = [127], n - 127
    while n >= 128:
        out.append(n % 128 + 128)
        n //= 128
    return bytes(out + [n])


def report(mode, goaway, rst, end):
    with out_lock:
        print(json.dumps({"mode": mode, "goaway": goaway, "rst": rst,
                          "end": end}), flush=True)


OVERRUN = 5 * 16384


def overrun(conn, stream):
    """The overrun mode, once the connection window takes it."""
    conn.sendall(frame(HEADERS, END_HEADERS, stream, b"\x88"))
    for i in range(5):
        time.sleep(0.05)
        conn.sendall(frame(DATA, END_STREAM if i == 4 else 0, stream,
                           b"o" * 16384))


def serve(conn):
    played = None  # the mode played on this connection
    goaway, rst, end = None, None, None
    window = 65535  # our connection window to send in
    waiting = None  # (stream, deadline): an overrun waiting for window
    try:
        if read_exact(conn, len(PREFACE)) is None:
            return
        conn.sendall(frame(SETTINGS, 0, 0))
        block = b""
        while True:
            if waiting and (window >= OVERRUN or
                            time.monotonic() > waiting[1]):
                overrun(conn, waiting[0])
                waiting = None
                conn.settimeout(3)
            try:
                f = read_frame(conn)
            except socket.timeout:
                if waiting:  # only looking at the window again
                    continue
                raise
            if f is None:
                break
            ftype, flags, stream, payload = f
            if ftype == WINDOW_UPDATE and stream == 0:
                window += struct.unpack(">I", payload)[0] & 0x7FFFFFFF
            elif ftype == GOAWAY:
                goaway = struct.unpack(">I", payload[4:8])[0]
            elif ftype == RST_STREAM:
                rst = struct.unpack(">I", payload)[0]
            elif ftype == SETTINGS and not flags & ACK:
                conn.sendall(frame(SETTINGS, ACK, 0))
            elif ftype == PING and not flags & ACK:
                conn.sendall(frame(PING, ACK, 0, payload))
            elif ftype in (HEADERS, CONTINUATION):
                block += payload
                if not flags & END_HEADERS:
                    continue
                m = MODE.search(block)
                block = b""
                if played or not m:
                    conn.sendall(frame(HEADERS, END_HEADERS, stream, b"\x88") +
                                 frame(DATA, END_STREAM, stream, b"ok"))
                    continue
                played = m.group(1).decode()
                if played == "overrun":
                    waiting = (stream, time.monotonic() + 2)
                    conn.settimeout(0.05)  # to look at the window
                    continue
                frames, close = bad_frames(played, stream)
                if played == "framesize":
                    # HEADERS on their own first, so that they reach the
                    # client before the frame that breaks the connection.
                    conn.sendall(frame(HEADERS, END_HEADERS, stream, b"\x88"))
                    time.sleep(0.1)
                conn.sendall(frames)
                if close:
                    time.sleep(0.2)
                    end = "ours"
                    break
                conn.settimeout(3)
        end = end or "closed"
    except socket.timeout:
        end = "timeout"
    except OSError as e:
        end = type(e).__name__
    finally:
        conn.close()
    if played:
        report(played, goaway, rst, end)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    serve_forever(args.bind, args.port, serve)


if __name__ == "__main__":
    main()
