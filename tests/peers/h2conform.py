#!/usr/bin/python3
"""HTTP/2 conformance of a server or intermediary to what a CLIENT sends.

    h2conform.py --target HOST:PORT [--cases a,b,...] [--timeout S]
                 [--jobs N] [--warm N] [--list]

Each case opens a connection of its own, makes a correct start (preface,
SETTINGS, the ACK of the server's SETTINGS, and the server's ACK of ours;
with --warm N, then N requests, one at a time, each answered: h2lb's fast
path has switched the connection by then, docs/fast-path.md), then sends
frames that break one rule of RFC 9113 (sections 3 to 8) or RFC
7541 (HPACK), and compares the answer with the one the RFC prescribes:

  "GOAWAY <CODE>"      a connection error (RFC 9113 5.4.1): a GOAWAY with
                       that code, then the connection closed
  "RST_STREAM <CODE>"  a stream error (5.4.2): RST_STREAM with that code on
                       the stream in error, and the connection stays usable:
                       a normal GET on a new stream then gets its response
  "ignored"            no error: the same connection then serves a request
  "SETTINGS ACK"       the SETTINGS is acknowledged; a request then works
  "closed"             the connection is closed (a GOAWAY PROTOCOL_ERROR
                       before it is allowed: invalid preface, 3.4)
  "response 200"       the controls: a valid request is served

A "want" of "A or B" accepts either answer (only where the RFC text itself
allows both). After the offending frames every case sends a PING; once its
ACK is back the server has read them, and a case waits a further --grace
seconds for the answer. No answer within --timeout is "no answer", a
failure, never a hang.

Requests are valid apart from the rule a case breaks: GET or POST to
/index.txt, header fields as HPACK literals without indexing (h2raw.lit), so
the client never uses a dynamic table.

Prints one JSON line per case, in table order:
{"case", "rfc", "want", "got", "ok", "seconds"} and, for some cases, a
"note" on the RFC text behind the want; exit 0 if every case ran
(whatever the results), 2 on bad arguments.
"""
import argparse
import concurrent.futures
import json
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from h2raw import (ACK, CONTINUATION, DATA, END_HEADERS,  # noqa: E402
                   END_STREAM, GOAWAY, HEADERS, PADDED, PING, PREFACE,
                   PRIORITY, RST_STREAM, SETTINGS, WINDOW_UPDATE, frame, lit)

PRIORITY_T, PUSH_PROMISE = 2, 5      # frame types h2raw does not name
PRIORITY_F = PRIORITY                # HEADERS flag 0x20
UNKNOWN_T = 0xFA                     # an extension frame type nobody defines

ERRORS = ["NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR",
          "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT", "STREAM_CLOSED",
          "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL",
          "COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM",
          "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"]
CANCEL_CODE = 8


def ename(code):
    return ERRORS[code] if code < len(ERRORS) else "0x%x" % code


# SETTINGS identifiers (RFC 9113 6.5.2)
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS, \
    INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE = range(1, 7)


def setting(ident, value):
    return struct.pack(">HI", ident, value)


def u32(n):
    return struct.pack(">I", n)


def hpack_int(value, prefix_bits, first=0):
    """RFC 7541 5.1 integer; @first holds the bits above the prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# RFC 7541 Appendix B codes of the few symbols this file encodes or decodes
# (the digits, to read a :status sent as a Huffman literal, and the letters
# of the RFC's own example "www.example.com", which the self-test checks).
HUFFMAN = {
    "0": "00000", "1": "00001", "2": "00010", "a": "00011", "c": "00100",
    "e": "00101", "3": "011001", "4": "011010", "5": "011011",
    "6": "011100", "7": "011101", "8": "011110", "9": "011111",
    ".": "010111", "l": "101000", "m": "101001", "o": "00111",
    "p": "101011", "w": "1111000", "x": "1111001",
}


def huffman_encode(text):
    bits = "".join(HUFFMAN[c] for c in text)
    bits += "1" * (-len(bits) % 8)           # padding: EOS's leading 1s
    return int(bits, 2).to_bytes(len(bits) // 8, "big")


def huffman_decode(data):
    """Decode with the partial table; '?' when a code is not in it."""
    rev = {v: k for k, v in HUFFMAN.items()}
    bits = "".join(format(b, "08b") for b in data)
    out, cur = "", ""
    for b in bits:
        cur += b
        if cur in rev:
            out += rev[cur]
            cur = ""
        elif len(cur) > 7:
            return out + "?"
    return out


# RFC 7541 C.4.1: "www.example.com" Huffman-coded
assert huffman_encode("www.example.com") == bytes.fromhex(
    "f1e3c2e5f23a6ba0ab90f4ff")

STATUS_STATIC = {8: "200", 9: "204", 10: "206", 11: "304", 12: "400",
                 13: "404", 14: "500"}


def hpack_get_int(block, i, prefix_bits):
    limit = (1 << prefix_bits) - 1
    v = block[i] & limit
    i += 1
    if v < limit:
        return v, i
    shift = 0
    while i < len(block):
        b = block[i]
        i += 1
        v += (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    return v, i


def response_status(block):
    """The :status of a response header block, read from its first field
    line (nghttp2 and most encoders put :status first); "?" if it is not
    a static index or a literal with :status's static name."""
    try:
        i = 0
        while i < len(block) and block[i] & 0xE0 == 0x20:   # size updates
            _, i = hpack_get_int(block, i, 5)
        b = block[i]
        if b & 0x80:
            idx, _ = hpack_get_int(block, i, 7)
            return STATUS_STATIC.get(idx, "?")
        prefix = 6 if b & 0x40 else 4
        idx, i = hpack_get_int(block, i, prefix)
        if idx not in STATUS_STATIC:
            return "?"
        huff = block[i] & 0x80
        n, i = hpack_get_int(block, i, 7)
        raw = bytes(block[i:i + n])
        return huffman_decode(raw) if huff else raw.decode("latin-1")
    except (IndexError, UnicodeDecodeError):
        return "?"


# ---------------------------------------------------------------- requests

AUTHORITY = b"h2conform.test"


def fields(method=b"GET", path=b"/index.txt", extra=()):
    """A request's field block: literals without indexing, new names."""
    return (lit(b":method", method) + lit(b":scheme", b"http")
            + lit(b":path", path) + lit(b":authority", AUTHORITY)
            + b"".join(lit(n, v) for n, v in extra))


def get_block(extra=()):
    return fields(extra=extra)


def post_block(extra=()):
    return fields(method=b"POST",
                  extra=((b"content-type", b"text/plain"),) + tuple(extra))


def headers(stream, block, end_stream=True, end_headers=True):
    flags = (END_STREAM if end_stream else 0) | \
        (END_HEADERS if end_headers else 0)
    return frame(HEADERS, flags, stream, block)


# ---------------------------------------------------------------- connection


class Closed(Exception):
    pass


class Conn:
    """One client connection, frames read with deadlines."""

    def __init__(self, target, timeout, grace=1.0):
        host, port = target.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        self.timeout = timeout
        self.grace = grace
        self.buf = bytearray()
        self.eof = False
        self.server_settings = {}
        self.conn_window = 65535          # what the server granted us to send
        self.our_initial_window = 65535
        self.goaways = []                 # error codes, in order
        self.goaway_debug = []            # their debug data, in order
        self.resets = {}                  # stream -> first RST_STREAM code
        self.ended = set()                # streams the server ended
        self.status = {}                  # stream -> :status of its response
        self.ping_acks = 0
        self.settings_acks = 0
        self.window_updates = []          # (stream, increment)
        self.next_stream = 1
        self.pings_sent = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError:
            # The server may have closed already (that is then the answer).
            pass

    def stream(self):
        """A new client stream id, above every one used so far."""
        s = self.next_stream
        self.next_stream += 2
        return s

    # -- reading

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return False
        except OSError:                 # ECONNRESET and the like
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_frame(self, deadline):
        """(type, flags, stream, payload); None at the deadline; raises
        Closed at the end of the connection. Bookkeeping of what the server
        says happens here, whoever reads."""
        while True:
            if len(self.buf) >= 9:
                n = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) >= 9 + n:
                    hdr, payload = self.buf[:9], bytes(self.buf[9:9 + n])
                    del self.buf[:9 + n]
                    f = (hdr[3], hdr[4],
                         int.from_bytes(hdr[5:9], "big") & 0x7FFFFFFF,
                         payload)
                    self._note(f)
                    return f
            if self.eof:
                raise Closed()
            if not self._fill(deadline):
                if self.eof:
                    raise Closed()
                return None

    def _note(self, f):
        ftype, flags, stream, payload = f
        if ftype == GOAWAY and len(payload) >= 8:
            self.goaways.append(struct.unpack(">I", payload[4:8])[0])
            self.goaway_debug.append(
                bytes(payload[8:]).decode("utf-8", "replace"))
        elif ftype == RST_STREAM and len(payload) == 4:
            self.resets.setdefault(stream, struct.unpack(">I", payload)[0])
        elif ftype == SETTINGS:
            if flags & ACK:
                self.settings_acks += 1
            else:
                for i in range(0, len(payload) - 5, 6):
                    k, v = struct.unpack(">HI", payload[i:i + 6])
                    self.server_settings[k] = v
        elif ftype == PING:
            if flags & ACK:
                self.ping_acks += 1
            else:                       # answer the server's PINGs
                self.send(frame(PING, ACK, 0, payload))
        elif ftype == WINDOW_UPDATE and len(payload) == 4:
            inc = struct.unpack(">I", payload)[0] & 0x7FFFFFFF
            self.window_updates.append((stream, inc))
            if stream == 0:
                self.conn_window += inc
        elif ftype == HEADERS:
            block = payload
            if flags & PADDED:
                block = block[1:len(block) - block[0]]
            if flags & PRIORITY_F:
                block = block[5:]
            if stream not in self.status:
                self.status[stream] = response_status(block)
            if flags & END_STREAM:
                self.ended.add(stream)
        elif ftype == DATA:
            if flags & END_STREAM:
                self.ended.add(stream)

    def wait_for(self, pred, seconds=None):
        """Read frames until pred() is true; False at the deadline or the
        end of the connection."""
        deadline = time.monotonic() + (self.timeout if seconds is None
                                       else seconds)
        while not pred():
            try:
                if self.read_frame(deadline) is None:
                    return pred()
            except Closed:
                return pred()
        return True

    # -- the correct start

    def handshake(self, settings=b"", ack=True):
        """Preface and our SETTINGS; read up to the server's SETTINGS; ACK
        it (unless @ack is False); wait for the server's ACK of ours."""
        for i in range(0, len(settings), 6):
            k, v = struct.unpack(">HI", settings[i:i + 6])
            if k == INITIAL_WINDOW_SIZE:
                self.our_initial_window = v
        self.send(PREFACE + frame(SETTINGS, 0, 0, settings))
        deadline = time.monotonic() + self.timeout
        while True:
            f = self.read_frame(deadline)
            if f is None:
                raise RuntimeError("no SETTINGS from the server")
            if f[0] == SETTINGS and not f[1] & ACK:
                break
        if ack:
            self.send(frame(SETTINGS, ACK, 0))
        if not self.wait_for(lambda: self.settings_acks >= 1):
            raise RuntimeError("the server did not acknowledge our SETTINGS")

    def ping(self):
        self.pings_sent += 1
        self.send(frame(PING, 0, 0, b"h2conf%02d" % (self.pings_sent % 100)))

    # -- what the server answers

    def answer(self, streams=None, grace=None):
        """Wait for the server's answer to what was just sent: a GOAWAY
        (then the close), a RST_STREAM on one of @streams (any stream if
        None), or the end of the connection. Sends a PING first; @grace
        seconds after its ACK, or at the timeout, there is no answer.
        Returns ("GOAWAY", code, closed) | ("RST_STREAM", code, stream) |
        ("closed",) | ("no answer",)."""
        grace = self.grace if grace is None else grace
        acks = self.ping_acks
        self.ping()
        start = time.monotonic()
        deadline = start + self.timeout
        ack_deadline = None
        while True:
            errors = [c for c in self.goaways if c != 0]
            if errors or self.goaways and self.eof:
                code = errors[0] if errors else 0
                closed = self.wait_for(lambda: False, 2.0) or self.eof
                return ("GOAWAY", code, closed)
            hit = [s for s in self.resets
                   if streams is None or s in streams]
            if hit:
                return ("RST_STREAM", self.resets[hit[0]], hit[0])
            if self.eof:
                return ("closed",)
            now = time.monotonic()
            if ack_deadline is None and self.ping_acks > acks:
                ack_deadline = now + grace
            limit = min(deadline, ack_deadline or deadline)
            if now >= limit:
                return ("no answer",)
            try:
                self.read_frame(limit)
            except Closed:
                pass

    def request_works(self, path=b"/index.txt"):
        """A GET on a new stream: "" if it gets a complete 200 response,
        else what happened instead."""
        s = self.stream()
        out = headers(s, fields(path=path))
        if self.our_initial_window == 0:
            out += frame(WINDOW_UPDATE, 0, s, u32(65535))
        self.send(out)
        self.wait_for(lambda: s in self.ended or s in self.resets
                      or any(self.goaways) or self.eof)
        if s in self.ended:
            st = self.status.get(s, "?")
            return "" if st == "200" else "then the next request got %s" % st
        if s in self.resets:
            return "then the next request got RST_STREAM %s" % ename(
                self.resets[s])
        errors = [c for c in self.goaways if c != 0]
        if errors:
            return "then GOAWAY %s" % ename(errors[0])
        if self.eof:
            return "then closed"
        return "then the next request got no response"


def describe(conn, ans, usable_check=True):
    """The "got" text for an answer; a stream error also checks that the
    connection still serves a request."""
    kind = ans[0]
    if kind == "GOAWAY":
        txt = "GOAWAY %s" % ename(ans[1])
        return txt if ans[2] else txt + ", not closed"
    if kind == "RST_STREAM":
        txt = "RST_STREAM %s" % ename(ans[1])
        if usable_check:
            more = conn.request_works()
            if more:
                txt += ", " + more
        return txt
    return kind


def ignored(conn):
    """No error for what was sent: PING round trip, no GOAWAY or reset of
    anything, and a request on a new stream works."""
    ans = conn.answer()
    if ans[0] != "no answer":
        return describe(conn, ans)
    more = conn.request_works()
    return "ignored" if not more else "ignored, " + more


# ---------------------------------------------------------------- cases
#
# A case: name -> (RFC section, want, function(conn) -> got). The function
# gets a connection after the correct start (unless the case says
# otherwise, see RAW) and returns what the server answered.

CASES = {}
RAW = set()          # cases that make their own start
START = {}           # case -> (our SETTINGS payload, ack the server's?)
NOTES = {}           # case -> what a reader of the result should know


def case(name, rfc, want, raw=False, settings=b"", ack=True, note=""):
    def reg(fn):
        CASES[name] = (rfc, want, fn)
        if raw:
            RAW.add(name)
        START[name] = (settings, ack)
        if note:
            NOTES[name] = note
        return fn
    return reg


def violate(conn, data, streams=None):
    conn.send(data)
    return describe(conn, conn.answer(streams))


def open_post(conn):
    """A POST whose request stays open (no END_STREAM): the server has a
    stream in the "open" state and no reason to end it."""
    s = conn.stream()
    conn.send(headers(s, post_block(), end_stream=False))
    return s


# -- controls: the harness's own requests are valid

@case("control_get", "9113 8.3.1", "response 200")
def _(c):
    more = c.request_works()
    return "response 200" if not more else more


@case("control_huffman_value", "7541 5.2", "response 200")
def _(c):
    s = c.stream()
    # x-h: "a" as a Huffman literal with correct padding (0x1f)
    c.send(headers(s, get_block() + b"\x00\x03x-h" + b"\x81\x1f"))
    c.wait_for(lambda: s in c.ended or s in c.resets or c.eof
               or any(c.goaways))
    if s in c.ended:
        return "response %s" % c.status.get(s, "?")
    return describe(c, c.answer([s]), usable_check=False)


# -- frame sizes (4.2, 6.x)

@case("priority_length_4", "9113 6.3", "RST_STREAM FRAME_SIZE_ERROR")
def _(c):
    s = open_post(c)
    return violate(c, frame(PRIORITY_T, 0, s, u32(0)[:4]), [s])


@case("rst_stream_length_3", "9113 6.4", "GOAWAY FRAME_SIZE_ERROR")
def _(c):
    s = open_post(c)
    return violate(c, frame(RST_STREAM, 0, s, b"\x00\x00\x08"))


@case("window_update_length_3", "9113 6.9", "GOAWAY FRAME_SIZE_ERROR")
def _(c):
    return violate(c, frame(WINDOW_UPDATE, 0, 0, b"\x00\x00\x01"))


@case("ping_length_7", "9113 6.7", "GOAWAY FRAME_SIZE_ERROR")
def _(c):
    return violate(c, frame(PING, 0, 0, b"1234567"))


@case("settings_length_5", "9113 6.5", "GOAWAY FRAME_SIZE_ERROR")
def _(c):
    return violate(c, frame(SETTINGS, 0, 0, setting(ENABLE_PUSH, 0)[:5]))


@case("settings_ack_with_payload", "9113 6.5", "GOAWAY FRAME_SIZE_ERROR",
      ack=False)
def _(c):
    # our ACK of the server's SETTINGS, with a payload
    return violate(c, frame(SETTINGS, ACK, 0, setting(ENABLE_PUSH, 0)))


@case("goaway_length_7", "9113 4.2", "GOAWAY FRAME_SIZE_ERROR")
def _(c):
    # too small for the mandatory last-stream-id and error code; a frame
    # on stream 0: a connection error
    return violate(c, frame(GOAWAY, 0, 0, u32(0) + b"\x00\x00\x00"))


@case("data_pad_not_shorter", "9113 6.1", "GOAWAY PROTOCOL_ERROR")
def _(c):
    s = open_post(c)
    # payload of 5 octets: Pad Length 5, 4 octets; padding >= payload
    return violate(c, frame(DATA, PADDED, s, b"\x05abcd"))


@case("data_pad_not_shorter_after_headers", "9113 6.1",
      "GOAWAY PROTOCOL_ERROR", note="the HEADERS and the DATA in one write "
      "(bpf/frame.h, stream_run: a frame with padding starts a message)")
def _(c):
    s = c.stream()
    return violate(c, headers(s, post_block(), end_stream=False)
                   + frame(DATA, PADDED, s, b"\x05abcd"))


@case("headers_pad_not_shorter", "9113 6.2", "GOAWAY PROTOCOL_ERROR")
def _(c):
    s = c.stream()
    block = get_block()
    payload = bytes([1 + len(block)]) + block
    return violate(c, frame(HEADERS, END_HEADERS | END_STREAM | PADDED, s,
                            payload))


# -- stream 0 and non-zero streams (6.x)

@case("data_on_stream_0", "9113 6.1", "GOAWAY PROTOCOL_ERROR")
def _(c):
    return violate(c, frame(DATA, 0, 0, b"x"))


@case("headers_on_stream_0", "9113 6.2", "GOAWAY PROTOCOL_ERROR")
def _(c):
    return violate(c, headers(0, get_block()))


@case("priority_on_stream_0", "9113 6.3", "GOAWAY PROTOCOL_ERROR")
def _(c):
    return violate(c, frame(PRIORITY_T, 0, 0, u32(0) + b"\x10"))


@case("rst_stream_on_stream_0", "9113 6.4", "GOAWAY PROTOCOL_ERROR")
def _(c):
    return violate(c, frame(RST_STREAM, 0, 0, u32(CANCEL_CODE)))


@case("continuation_on_stream_0", "9113 6.10", "GOAWAY PROTOCOL_ERROR")
def _(c):
    return violate(c, frame(CONTINUATION, END_HEADERS, 0, get_block()))


@case("settings_on_stream_1", "9113 6.5", "GOAWAY PROTOCOL_ERROR")
def _(c):
    return violate(c, frame(SETTINGS, 0, 1))


@case("ping_on_stream_1", "9113 6.7", "GOAWAY PROTOCOL_ERROR")
def _(c):
    return violate(c, frame(PING, 0, 1, b"12345678"))


@case("goaway_on_stream_1", "9113 6.8", "GOAWAY PROTOCOL_ERROR")
def _(c):
    return violate(c, frame(GOAWAY, 0, 1, u32(0) + u32(0)))


# -- stream states (5.1)

@case("data_on_idle_stream", "9113 5.1 idle", "GOAWAY PROTOCOL_ERROR")
def _(c):
    return violate(c, frame(DATA, END_STREAM, c.next_stream, b"x"))


@case("rst_stream_on_idle_stream", "9113 5.1 idle, 6.4",
      "GOAWAY PROTOCOL_ERROR or ignored",
      note="h2lb ignores it on purpose (grpc's C core sends it; "
           "docs/conformance.md)")
def _(c):
    c.send(frame(RST_STREAM, 0, c.stream(), u32(CANCEL_CODE)))
    return ignored(c)


@case("rst_stream_on_idle_even_stream", "9113 5.1 idle, 6.4",
      "GOAWAY PROTOCOL_ERROR")
def _(c):
    return violate(c, frame(RST_STREAM, 0, 2, u32(CANCEL_CODE)))


@case("headers_below_idle_reset", "9113 5.1.1", "GOAWAY PROTOCOL_ERROR or "
      "ignored, then GOAWAY PROTOCOL_ERROR")
def _(c):
    # An id a reset made used (h2lb: ignored, the id used) cannot open a
    # stream afterwards; a server that failed the connection at the reset
    # already answered.
    base = c.next_stream
    c.next_stream = base + 6
    c.send(frame(RST_STREAM, 0, base + 4, u32(CANCEL_CODE)))
    first = c.answer()
    if first[0] != "no answer":
        return describe(c, first)
    c.send(headers(base + 2, get_block()))
    return "ignored, then " + describe(c, c.answer())


@case("window_update_on_idle_stream", "9113 5.1 idle",
      "GOAWAY PROTOCOL_ERROR")
def _(c):
    return violate(c, frame(WINDOW_UPDATE, 0, c.next_stream, u32(1)))


def half_closed(c):
    """A GET of the 1 MiB file, our stream window 0 (SETTINGS of the
    case): the server has the request, answers its HEADERS and cannot end
    the stream. For the server the stream is half-closed (remote)."""
    s = c.stream()
    c.send(headers(s, fields(path=b"/big.bin")))
    c.wait_for(lambda: s in c.status or s in c.resets or c.eof)
    return s


@case("data_on_half_closed_stream", "9113 5.1 half-closed (remote), 6.1",
      "RST_STREAM STREAM_CLOSED", settings=setting(INITIAL_WINDOW_SIZE, 0))
def _(c):
    s = half_closed(c)
    return violate(c, frame(DATA, END_STREAM, s, b"x"), [s])


@case("headers_on_half_closed_stream", "9113 5.1 half-closed (remote)",
      "RST_STREAM STREAM_CLOSED", settings=setting(INITIAL_WINDOW_SIZE, 0))
def _(c):
    s = half_closed(c)
    return violate(c, headers(s, lit(b"x-trailer", b"1")), [s])


CLOSED_WANT = "RST_STREAM STREAM_CLOSED or GOAWAY STREAM_CLOSED"


def closed_get(c):
    """A GET whose response ended: the stream is closed both ways (5.1).
    Its id, or None if the response did not end."""
    s = c.stream()
    c.send(headers(s, get_block()))
    return s if c.wait_for(lambda: s in c.ended) else None


@case("data_on_closed_stream", "9113 6.1 (5.1 closed: MAY GOAWAY)",
      CLOSED_WANT, note="6.1: a stream error; 5.1 closed lets a receiver "
      "make it a connection error STREAM_CLOSED")
def _(c):
    s = closed_get(c)
    if s is None:
        return "the GET got no complete response"
    return violate(c, frame(DATA, 0, s, b"x"), [s])


@case("headers_on_closed_stream", "9113 5.1 closed", CLOSED_WANT,
      note="5.1: frames after END_STREAM both ways MAY be a connection "
      "error STREAM_CLOSED; h2lb knows such a stream from one never "
      "opened by a bit per recent stream, not a record (bpf/stream.h)")
def _(c):
    s = closed_get(c)
    if s is None:
        return "the GET got no complete response"
    return violate(c, headers(s, get_block()), [s])


@case("data_after_client_reset", "9113 6.1 (5.1 closed: MAY GOAWAY)",
      CLOSED_WANT, note="6.1: a stream error; 5.1 closed lets a receiver "
      "make it a connection error STREAM_CLOSED")
def _(c):
    s = open_post(c)
    return violate(c, frame(RST_STREAM, 0, s, u32(CANCEL_CODE))
                   + frame(DATA, 0, s, b"x"), [s])


@case("trailers_after_client_reset", "9113 5.1 closed, 6.4",
      CLOSED_WANT, note="5.1: frames other than PRIORITY after the client's "
      "own RST_STREAM are a stream error STREAM_CLOSED (a receiver MAY make "
      "it a connection error)")
def _(c):
    s = open_post(c)
    return violate(c, frame(RST_STREAM, 0, s, u32(CANCEL_CODE))
                   + headers(s, lit(b"x-trailer", b"1")), [s])


@case("trailers_after_server_reset", "9113 5.1 closed, 5.4.2",
      "ignored", note="the server reset the stream (a malformed request): "
      "frames the client had in flight for it are ignored, not errors")
def _(c):
    s = c.stream()
    c.send(headers(s, req(*ALL, extra=lit(b"X-Upper", b"1")),
                   end_stream=False))
    if not c.wait_for(lambda: s in c.resets or c.eof):
        return "the malformed request was not reset"
    c.send(headers(s, lit(b"x-trailer", b"1")))
    ans = c.answer([])  # the reset it already had is no answer
    if ans[0] != "no answer":
        return describe(c, ans)
    more = c.request_works()
    return "ignored" if not more else "ignored, " + more


# -- field blocks (4.3, 5.5, 6.2, 6.10)

def open_block(c):
    """HEADERS without END_HEADERS: a field block the server must see
    continued by a CONTINUATION of the same stream."""
    s = c.stream()
    c.send(headers(s, fields()[:20], end_headers=False))
    return s


@case("block_then_priority", "9113 6.2, 6.3", "GOAWAY PROTOCOL_ERROR")
def _(c):
    s = open_block(c)
    return violate(c, frame(PRIORITY_T, 0, s, u32(0) + b"\x10"))


@case("block_then_unknown_frame", "9113 5.5", "GOAWAY PROTOCOL_ERROR")
def _(c):
    s = open_block(c)
    return violate(c, frame(UNKNOWN_T, 0, s, b"ext"))


@case("block_then_headers_other_stream", "9113 6.2",
      "GOAWAY PROTOCOL_ERROR")
def _(c):
    open_block(c)
    return violate(c, headers(c.stream(), get_block()))


@case("block_then_data", "9113 6.2", "GOAWAY PROTOCOL_ERROR")
def _(c):
    s = open_block(c)
    return violate(c, frame(DATA, 0, s, b"x"))


@case("continuation_without_block", "9113 6.10", "GOAWAY PROTOCOL_ERROR")
def _(c):
    return violate(c, frame(CONTINUATION, END_HEADERS, 1, get_block()))


@case("continuation_after_data", "9113 6.10", "GOAWAY PROTOCOL_ERROR")
def _(c):
    s = open_post(c)
    return violate(c, frame(DATA, 0, s, b"x")
                   + frame(CONTINUATION, END_HEADERS, s,
                           lit(b"x-more", b"1")))


# -- priority and push

@case("headers_depends_on_itself", "7540 5.3.1 (9113 5.3.2)",
      "RST_STREAM PROTOCOL_ERROR",
      note="the rule is RFC 7540's; RFC 9113 deprecates the priority "
      "scheme but keeps its frame fields and their handling")
def _(c):
    s = c.stream()
    payload = u32(s) + b"\x10" + get_block()
    return violate(c, frame(HEADERS, END_HEADERS | END_STREAM | PRIORITY_F,
                            s, payload), [s])


@case("priority_depends_on_itself", "7540 5.3.1 (9113 5.3.2)",
      "RST_STREAM PROTOCOL_ERROR",
      note="the rule is RFC 7540's; RFC 9113 deprecates the priority "
      "scheme but keeps its frame fields and their handling")
def _(c):
    s = open_post(c)
    return violate(c, frame(PRIORITY_T, 0, s, u32(s) + b"\x10"), [s])


@case("push_promise_from_client", "9113 8.4, 6.6", "GOAWAY PROTOCOL_ERROR")
def _(c):
    s = open_post(c)
    return violate(c, frame(PUSH_PROMISE, END_HEADERS, s,
                            u32(2) + get_block()))


# -- SETTINGS values (6.5.2, 6.5.3); a second SETTINGS after the start

@case("settings_enable_push_2", "9113 6.5.2", "GOAWAY PROTOCOL_ERROR")
def _(c):
    return violate(c, frame(SETTINGS, 0, 0, setting(ENABLE_PUSH, 2)))


@case("settings_initial_window_2^31", "9113 6.5.2",
      "GOAWAY FLOW_CONTROL_ERROR")
def _(c):
    return violate(c, frame(SETTINGS, 0, 0,
                            setting(INITIAL_WINDOW_SIZE, 2**31)))


@case("settings_max_frame_16383", "9113 6.5.2", "GOAWAY PROTOCOL_ERROR")
def _(c):
    return violate(c, frame(SETTINGS, 0, 0, setting(MAX_FRAME_SIZE, 16383)))


@case("settings_max_frame_2^24", "9113 6.5.2", "GOAWAY PROTOCOL_ERROR")
def _(c):
    return violate(c, frame(SETTINGS, 0, 0, setting(MAX_FRAME_SIZE, 2**24)))


@case("settings_20_params_last_invalid", "9113 6.5.3",
      "GOAWAY PROTOCOL_ERROR")
def _(c):
    # 19 valid parameters (the defaults, and unknown identifiers that
    # MUST be ignored), then ENABLE_PUSH = 2: every parameter is
    # processed, in order
    valid = [setting(HEADER_TABLE_SIZE, 4096), setting(ENABLE_PUSH, 0),
             setting(MAX_CONCURRENT_STREAMS, 100),
             setting(INITIAL_WINDOW_SIZE, 65535),
             setting(MAX_FRAME_SIZE, 16384),
             setting(MAX_HEADER_LIST_SIZE, 65536)]
    params = [valid[i % len(valid)] if i % 3 else setting(0xF000 + i, i)
              for i in range(19)]
    payload = b"".join(params) + setting(ENABLE_PUSH, 2)
    assert len(payload) == 20 * 6
    return violate(c, frame(SETTINGS, 0, 0, payload))


@case("settings_unknown_ignored", "9113 6.5.2, 6.5.3", "SETTINGS ACK")
def _(c):
    acks = c.settings_acks
    c.send(frame(SETTINGS, 0, 0, setting(0xF0F0, 7)))
    if not c.wait_for(lambda: c.settings_acks > acks or any(c.goaways)
                      or c.eof):
        return "no answer"
    if c.settings_acks <= acks:
        return describe(c, c.answer())
    more = c.request_works()
    return "SETTINGS ACK" if not more else "SETTINGS ACK, " + more


# -- flow control (6.9)

@case("window_update_0_on_stream", "9113 6.9", "RST_STREAM PROTOCOL_ERROR")
def _(c):
    s = open_post(c)
    return violate(c, frame(WINDOW_UPDATE, 0, s, u32(0)), [s])


@case("window_update_0_on_connection", "9113 6.9", "GOAWAY PROTOCOL_ERROR")
def _(c):
    return violate(c, frame(WINDOW_UPDATE, 0, 0, u32(0)))


@case("window_overflow_on_stream", "9113 6.9.1",
      "RST_STREAM FLOW_CONTROL_ERROR")
def _(c):
    # the server's window to send on the stream is our 65,535: adding
    # 2^31-1 takes it past 2^31-1
    s = open_post(c)
    return violate(c, frame(WINDOW_UPDATE, 0, s, u32(2**31 - 1)), [s])


@case("window_overflow_on_connection", "9113 6.9.1",
      "GOAWAY FLOW_CONTROL_ERROR")
def _(c):
    return violate(c, frame(WINDOW_UPDATE, 0, 0, u32(2**31 - 1)))


@case("data_beyond_connection_window", "9113 6.9, 6.9.1",
      "GOAWAY FLOW_CONTROL_ERROR",
      note="a receiver that grants window as it reads (nghttp2's automatic "
      "WINDOW_UPDATE) has granted more by the time the last frame arrives")
def _(c):
    # Every octet the server granted on the connection (65,535 and the
    # WINDOW_UPDATEs on stream 0 it sent during the start), and one full
    # frame more, spread over POST streams so that no stream window
    # (the server's INITIAL_WINDOW_SIZE) is exceeded; sent at once.
    budget = c.conn_window + 16384
    per_stream = c.server_settings.get(INITIAL_WINDOW_SIZE, 65535)
    max_frame = min(16384, c.server_settings.get(MAX_FRAME_SIZE, 16384))
    out = b""
    while budget > 0:
        s = c.stream()
        out += headers(s, post_block(), end_stream=False)
        room = per_stream
        while budget > 0 and room > 0:
            n = min(max_frame, room, budget)
            out += frame(DATA, 0, s, b"\0" * n)
            room -= n
            budget -= n
    return violate(c, out)


# -- connection preface (3.4)

@case("invalid_preface", "9113 3.4", "closed", raw=True,
      note="a GOAWAY PROTOCOL_ERROR before the close is allowed")
def _(c):
    c.send(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + frame(SETTINGS, 0, 0))
    deadline = time.monotonic() + c.timeout
    try:
        while c.read_frame(deadline) is not None:
            pass
    except Closed:
        pass
    if not c.eof:
        return "not closed"
    errors = [e for e in c.goaways if e != 0]
    if not errors or errors[0] == 1:
        return "closed"          # GOAWAY PROTOCOL_ERROR first is allowed
    return "GOAWAY %s" % ename(errors[0])


# -- HPACK (RFC 7541; RFC 9113 4.3: a decoding error is a connection error
#    COMPRESSION_ERROR)

def bad_block(c, block):
    return violate(c, headers(c.stream(), block))


@case("hpack_index_0", "7541 6.1", "GOAWAY COMPRESSION_ERROR")
def _(c):
    return bad_block(c, get_block() + b"\x80")


@case("hpack_index_past_static_table", "7541 2.3.3",
      "GOAWAY COMPRESSION_ERROR")
def _(c):
    # index 62 with an empty dynamic table (we never add to it)
    return bad_block(c, get_block() + hpack_int(62, 7, 0x80))


@case("hpack_size_update_above_setting", "7541 6.3, 4.2",
      "GOAWAY COMPRESSION_ERROR")
def _(c):
    limit = c.server_settings.get(HEADER_TABLE_SIZE, 4096)
    return bad_block(c, hpack_int(limit + 1, 5, 0x20) + get_block())


@case("hpack_size_update_not_first", "7541 4.2",
      "GOAWAY COMPRESSION_ERROR")
def _(c):
    return bad_block(c, get_block() + hpack_int(0, 5, 0x20))


@case("hpack_huffman_truncated", "7541 5.2",
      "GOAWAY COMPRESSION_ERROR",
      note="the string's length runs past the end of the field block")
def _(c):
    # a Huffman value announced as 5 octets; the block ends after 1
    return bad_block(c, get_block() + b"\x00\x03x-h" + b"\x85\x1f")


@case("hpack_huffman_padding_over_7_bits", "7541 5.2",
      "GOAWAY COMPRESSION_ERROR")
def _(c):
    # "a" (00011), then 11 bits of 1s: padding longer than 7 bits
    return bad_block(c, get_block() + b"\x00\x03x-h" + b"\x82\x1f\xff")


@case("hpack_huffman_padding_not_eos", "7541 5.2",
      "GOAWAY COMPRESSION_ERROR")
def _(c):
    # "a" (00011), then 000: padding that is not a prefix of EOS
    return bad_block(c, get_block() + b"\x00\x03x-h" + b"\x81\x18")


# -- malformed requests (8.1.1, 8.2, 8.3): stream error PROTOCOL_ERROR

def malformed(c, block, data=None):
    s = c.stream()
    if data is None:
        c.send(headers(s, block))
    else:
        c.send(headers(s, block, end_stream=False)
               + frame(DATA, END_STREAM, s, data))
    ans = c.answer([s])
    if ans[0] == "no answer" and s in c.ended:
        return "response %s" % c.status.get(s, "?")
    return describe(c, ans)


REQ = {
    "method": lit(b":method", b"GET"), "scheme": lit(b":scheme", b"http"),
    "path": lit(b":path", b"/index.txt"),
    "authority": lit(b":authority", AUTHORITY),
}


def req(*names, extra=b""):
    return b"".join(REQ[n] for n in names) + extra


ALL = ("method", "scheme", "path", "authority")


@case("uppercase_field_name", "9113 8.2.1", "RST_STREAM PROTOCOL_ERROR")
def _(c):
    return malformed(c, req(*ALL, extra=lit(b"X-Upper", b"1")))


@case("unknown_pseudo_header", "9113 8.3", "RST_STREAM PROTOCOL_ERROR")
def _(c):
    return malformed(c, req(*ALL, extra=lit(b":foo", b"bar")))


@case("response_pseudo_in_request", "9113 8.3", "RST_STREAM PROTOCOL_ERROR")
def _(c):
    return malformed(c, req(*ALL, extra=lit(b":status", b"200")))


@case("pseudo_after_regular_field", "9113 8.3", "RST_STREAM PROTOCOL_ERROR")
def _(c):
    return malformed(c, req("method", "scheme", "path")
                     + lit(b"x-a", b"1") + REQ["authority"])


@case("duplicate_path", "9113 8.3", "RST_STREAM PROTOCOL_ERROR")
def _(c):
    return malformed(c, req(*ALL) + lit(b":path", b"/index.txt"))


@case("missing_method", "9113 8.3.1", "RST_STREAM PROTOCOL_ERROR")
def _(c):
    return malformed(c, req("scheme", "path", "authority"))


@case("empty_path", "9113 8.3.1", "RST_STREAM PROTOCOL_ERROR")
def _(c):
    return malformed(c, req("method", "scheme", "authority")
                     + lit(b":path", b""))


@case("connection_header", "9113 8.2.2", "RST_STREAM PROTOCOL_ERROR")
def _(c):
    return malformed(c, req(*ALL, extra=lit(b"connection", b"keep-alive")))


@case("te_not_trailers", "9113 8.2.2", "RST_STREAM PROTOCOL_ERROR")
def _(c):
    return malformed(c, req(*ALL, extra=lit(b"te", b"gzip")))


@case("content_length_mismatch", "9113 8.1.1", "RST_STREAM PROTOCOL_ERROR")
def _(c):
    block = fields(method=b"POST", extra=((b"content-length", b"10"),))
    return malformed(c, block, data=b"abc")


# ---------------------------------------------------------------- runner

def run_case(target, name, timeout, grace, warm=0):
    rfc, want, fn = CASES[name]
    t0 = time.monotonic()
    conn = None
    try:
        conn = Conn(target, timeout, grace)
        got = None
        if name not in RAW:
            settings, ack = START[name]
            conn.handshake(settings, ack)
            for i in range(warm):
                # REFUSED_STREAM is safe to retry (RFC 9113 8.7): a
                # balancer whose pool of backend connections is empty
                # for a moment answers it.
                for _ in range(20):
                    more = conn.request_works()
                    if "REFUSED_STREAM" not in more:
                        break
                    # Retried: that reset is answered, not the case's
                    # answer (answer() takes any stream's reset).
                    conn.resets.pop(conn.next_stream - 2, None)
                    time.sleep(0.05)
                if more:
                    got = "warm-up request %d: %s" % (i + 1, more)
                    break
        if got is None:
            got = fn(conn)
    except Exception as e:          # a broken start is a result, not a crash
        got = "error: %s" % (e,)
    finally:
        if conn is not None:
            conn.close()
    res = {"case": name, "rfc": rfc, "want": want, "got": got,
           "ok": got in want.split(" or "),
           "seconds": round(time.monotonic() - t0, 3)}
    if name in NOTES:
        res["note"] = NOTES[name]
    debug = [d for d in (conn.goaway_debug if conn else []) if d]
    if debug:
        res["debug"] = debug[0]
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target", help="HOST:PORT")
    ap.add_argument("--cases", default="",
                    help="comma list of cases (default: all)")
    ap.add_argument("--timeout", type=float, default=3.0,
                    help="seconds a case waits for an answer")
    ap.add_argument("--grace", type=float, default=1.0,
                    help="seconds a case waits for an answer after the "
                    "server answered the PING sent behind the offence")
    ap.add_argument("--jobs", type=int, default=4,
                    help="cases run at once, each on its own connection")
    ap.add_argument("--warm", type=int, default=0,
                    help="requests each case makes, one at a time, after "
                    "the correct start and before its offence")
    ap.add_argument("--list", action="store_true",
                    help="print the case table and exit")
    args = ap.parse_args()
    names = [n for n in args.cases.replace(" ", ",").split(",") if n]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        print("unknown case(s): %s" % ", ".join(unknown), file=sys.stderr)
        return 2
    names = names or list(CASES)
    if args.list:
        for n in names:
            row = {"case": n, "rfc": CASES[n][0], "want": CASES[n][1]}
            if n in NOTES:
                row["note"] = NOTES[n]
            print(json.dumps(row))
        return 0
    if not args.target:
        print("--target is required", file=sys.stderr)
        return 2
    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        futs = [pool.submit(run_case, args.target, n, args.timeout,
                            args.grace, args.warm) for n in names]
        for f in futs:
            print(json.dumps(f.result()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
