"""Raw HTTP/2 frames for the test peers that speak the protocol by hand
(bad_client, quiet_client, h2_hpack_client, burst_client, burst_server,
stall_server, lazy_reader, ...): what RFC 9113 section 4.1 lays out, and a
client's frame counter for the peers that only count what they are sent."""
import socket
import struct
import threading
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20
CANCEL = 0x8


def frame(ftype, flags, stream, payload=b"", length=None):
    """One frame; @length, if given, is what the header announces."""
    n = len(payload) if length is None else length
    return struct.pack(">I", n)[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


def lit(name, value):
    """A header field literal without indexing, new name, no Huffman
    (RFC 7541 6.2.2)."""
    return bytes([0, len(name)]) + name + bytes([len(value)]) + value


# The largest windows a peer can grant (RFC 9113 6.9.1): the SETTINGS
# payload for every stream, and the WINDOW_UPDATE that takes the
# connection's window from 65535 to the same.
MAX_WINDOW = 2**31 - 1
MAX_WINDOW_SETTINGS = (4).to_bytes(2, "big") + MAX_WINDOW.to_bytes(4, "big")
MAX_WINDOW_UPDATE = frame(WINDOW_UPDATE, 0, 0,
                          (MAX_WINDOW - 65535).to_bytes(4, "big"))


def read_exact(sock, n):
    """@n bytes, or None if the connection ends first."""
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def read_frame(sock):
    """(type, flags, stream, payload), or None if the connection ends."""
    hdr = read_exact(sock, 9)
    if hdr is None:
        return None
    payload = read_exact(sock, int.from_bytes(hdr[:3], "big"))
    if payload is None:
        return None
    stream = int.from_bytes(hdr[5:9], "big") & 0x7FFFFFFF
    return hdr[3], hdr[4], stream, payload


class FrameCounter:
    """A client's reading side: one frame at a time until a deadline,
    answering the server's SETTINGS, counting SETTINGS ACKs, DATA (in all
    and by stream) and the streams ended. With @strict, a RST_STREAM or
    GOAWAY raises ConnectionError."""

    def __init__(self, sock, deadline, strict=False):
        self.sock, self.deadline, self.strict = sock, deadline, strict
        self.acks = 0
        self.data = 0
        self.by_stream = {}
        self.ended = set()
        self.reset = set()
        self.last = None  # the last frame read

    def step(self, timeout=None):
        """Read one frame; False on timeout (or at the deadline)."""
        left = self.deadline - time.monotonic()
        if timeout is not None:
            left = min(left, timeout)
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            f = read_frame(self.sock)
        except socket.timeout:
            return False
        if f is None:
            raise ConnectionError("connection closed")
        self.last = f
        ftype, flags, stream, payload = f
        if ftype == RST_STREAM:
            self.reset.add(stream)
        if ftype == SETTINGS and flags & ACK:
            self.acks += 1
        elif ftype == SETTINGS:
            self.sock.sendall(frame(SETTINGS, ACK, 0))
        elif ftype == DATA:
            self.data += len(payload)
            self.by_stream[stream] = \
                self.by_stream.get(stream, 0) + len(payload)
        elif ftype in (RST_STREAM, GOAWAY) and self.strict:
            raise ConnectionError(f"frame type {ftype} on stream {stream}: "
                                  f"{payload.hex()}")
        if flags & END_STREAM and ftype in (DATA, HEADERS):
            self.ended.add(stream)
        return True

    def settle(self, quiet):
        """Read until nothing comes for @quiet s."""
        while self.step(quiet):
            pass


def serve_forever(bind, port, handler, *args):
    """Accept connections on @bind:@port, each in a thread of its own
    running handler(conn, *args)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((bind, port))
    s.listen(64)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=handler, args=(conn, *args),
                         daemon=True).start()
