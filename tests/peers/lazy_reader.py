#!/usr/bin/python3
"""An HTTP/2 client that grants everything and then reads nothing.

It connects with a small receive buffer, announces the largest windows
HTTP/2 allows (SETTINGS_INITIAL_WINDOW_SIZE and a connection
WINDOW_UPDATE to 2^31-1), completes the SETTINGS exchange (so that its
requests are balanced, not pinned to the first leg), sends --streams GETs
at once and then stops reading for --hold seconds: whatever the servers
send meanwhile is limited by nothing but the balancer's own bounds. Then
it reads everything and checks every response.

Prints a JSON line {"event": "holding"} when it stops reading, and at the
end {"event": "done", "complete": N, "bytes": [per stream], "errors": [...]}.
"""
import argparse
import json
import socket
import time

from h2raw import ACK, DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS, \
    MAX_WINDOW_SETTINGS, MAX_WINDOW_UPDATE, PING, PREFACE, RST_STREAM, \
    SETTINGS, frame, lit, read_frame


def is_200(block):
    """The header block starts with the indexed ":status: 200" (0x88),
    after any dynamic table size updates (RFC 7541 6.3: 001xxxxx, with
    the integer's continuation bytes when all five bits are set)."""
    i = 0
    while i < len(block) and block[i] & 0xe0 == 0x20:
        more = block[i] & 0x1f == 0x1f
        i += 1
        while more and i < len(block):
            more = block[i] & 0x80
            i += 1
    return block[i:i + 1] == b"\x88"


def say(**kv):
    print(json.dumps(kv), flush=True)


def handshake(s, deadline):
    """Settle SETTINGS both ways; answer PINGs on the way."""
    acked = seen = False
    while not (acked and seen) and time.monotonic() < deadline:
        f = read_frame(s)
        if f is None:
            raise SystemExit("connection closed during the handshake")
        ftype, flags, _, payload = f
        if ftype == SETTINGS and flags & ACK:
            acked = True
        elif ftype == SETTINGS:
            s.sendall(frame(SETTINGS, ACK, 0))
            seen = True
        elif ftype == PING and not flags & ACK:
            s.sendall(frame(PING, ACK, 0, payload))
    if not (acked and seen):
        raise SystemExit("no SETTINGS exchange in time")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--path", default="/big.bin")
    ap.add_argument("--size", type=int, default=1 << 20,
                    help="expected body bytes per response")
    ap.add_argument("--streams", type=int, default=32)
    ap.add_argument("--hold", type=float, default=3.0)
    ap.add_argument("--rcvbuf", type=int, default=65536)
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()
    host, port = args.target.rsplit(":", 1)

    s = socket.socket()
    # Before connect(), so that the window TCP offers stays small too.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
    s.settimeout(args.timeout)
    s.connect((host, int(port)))
    s.sendall(PREFACE + frame(SETTINGS, 0, 0, MAX_WINDOW_SETTINGS) +
              MAX_WINDOW_UPDATE)
    deadline = time.monotonic() + args.timeout
    handshake(s, deadline)

    block = bytes([0x82, 0x86]) + lit(b":path", args.path.encode()) + \
        lit(b":authority", host.encode())
    ids = [1 + 2 * i for i in range(args.streams)]
    s.sendall(b"".join(frame(HEADERS, END_STREAM | END_HEADERS, i, block)
                       for i in ids))
    say(event="holding")
    time.sleep(args.hold)

    got = {i: 0 for i in ids}
    status = {}
    done, errors = set(), []
    while len(done) < len(ids) and time.monotonic() < deadline:
        f = read_frame(s)
        if f is None:
            errors.append("connection closed")
            break
        ftype, flags, stream, payload = f
        if ftype == PING and not flags & ACK:
            s.sendall(frame(PING, ACK, 0, payload))
        elif ftype == GOAWAY:
            errors.append(f"GOAWAY {payload[4:8].hex()}")
            break
        elif ftype == RST_STREAM:
            errors.append(f"RST_STREAM on {stream}")
            done.add(stream)
        elif ftype == HEADERS and stream in got:
            status[stream] = is_200(payload)
        elif ftype == DATA and stream in got:
            got[stream] += len(payload)
        if ftype in (HEADERS, DATA) and flags & END_STREAM:
            done.add(stream)
    complete = sum(1 for i in ids
                   if i in done and status.get(i) and got[i] == args.size)
    if len(done) < len(ids):
        errors.append(f"{len(ids) - len(done)} streams unfinished")
    s.close()
    say(event="done", complete=complete, bytes=[got[i] for i in ids],
        errors=errors)


if __name__ == "__main__":
    main()
