"""Raw HTTP/2 frames for the test peers that speak the protocol by hand
(bad_client, quiet_client, h2_hpack_client, burst_client, burst_server,
stall_server, lazy_reader): what RFC 9113 section 4.1 lays out, nothing more."""
import socket
import struct
import threading

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
