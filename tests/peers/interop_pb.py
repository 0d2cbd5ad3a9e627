"""Hand-written protobuf codec for the "h2lb.Interop" test service.

The service and its two messages are defined in interop.proto (beside this
file; the grpc-go peers generate their code from it).  No protoc here: the
wire helpers of greeter_pb.py encode and decode the two messages, and
`python3 interop_pb.py` cross-checks them against google.protobuf.

Also here, shared by interop_server.py and interop_client.py: the payload
pattern (byte i of an n-byte payload is (i + n) % 251), the method paths
and the metadata keys the servers echo.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from functools import lru_cache

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from greeter_pb import (  # noqa: E402
    _LEN, _VARINT, _dec_varint, _enc_int, _enc_len, _enc_varint, _expect,
    _iter_fields, _to_int32)

SERVICE = "h2lb.Interop"
INITIAL_KEY = "x-interop-initial"
INITIAL_BIN_KEY = "x-interop-initial-bin"
TRAILING_BIN_KEY = "x-interop-trailing-bin"


def method_path(method: str, service: str = SERVICE) -> str:
    return f"/{service}/{method}"


@lru_cache(maxsize=64)
def pattern(n: int) -> bytes:
    """The n-byte payload: byte i is (i + n) % 251."""
    if n <= 0:
        return b""
    block = bytes((i + n) % 251 for i in range(251))
    reps = n // 251 + 1
    return (block * reps)[:n]


def is_pattern(b: bytes) -> bool:
    return b == pattern(len(b))


def _to_int64(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value & (1 << 63) else value


@dataclass
class InteropRequest:
    payload: bytes = b""
    response_size: int = 0
    response_sizes: list = field(default_factory=list)
    sleep_ms: int = 0
    status_code: int = 0
    status_message: str = ""

    def SerializeToString(self) -> bytes:  # noqa: N802 (protobuf naming)
        out = bytearray()
        if self.payload:
            out += _enc_len(1, bytes(self.payload))
        if self.response_size:
            out += _enc_int(2, self.response_size)
        if self.response_sizes:  # proto3: repeated scalars are packed
            out += _enc_len(3, b"".join(_enc_varint(v)
                                        for v in self.response_sizes))
        if self.sleep_ms:
            out += _enc_int(4, self.sleep_ms)
        if self.status_code:
            out += _enc_int(5, self.status_code)
        if self.status_message:
            out += _enc_len(6, self.status_message.encode("utf-8"))
        return bytes(out)

    @classmethod
    def FromString(cls, buf: bytes) -> "InteropRequest":  # noqa: N802
        msg = cls()
        for num, wt, value in _iter_fields(buf):
            if num == 1:
                _expect(wt, _LEN, num)
                msg.payload = value
            elif num == 3:
                if wt == _LEN:  # packed
                    pos = 0
                    while pos < len(value):
                        v, pos = _dec_varint(value, pos)
                        msg.response_sizes.append(_to_int32(v))
                else:
                    _expect(wt, _VARINT, num)
                    msg.response_sizes.append(_to_int32(value))
            elif num in (2, 4, 5):
                _expect(wt, _VARINT, num)
                setattr(msg, {2: "response_size", 4: "sleep_ms",
                              5: "status_code"}[num], _to_int32(value))
            elif num == 6:
                _expect(wt, _LEN, num)
                msg.status_message = value.decode("utf-8")
        return msg


@dataclass
class InteropResponse:
    payload: bytes = b""
    received_bytes: int = 0
    received_messages: int = 0

    def SerializeToString(self) -> bytes:  # noqa: N802
        out = bytearray()
        if self.payload:
            out += _enc_len(1, bytes(self.payload))
        if self.received_bytes:
            out += _enc_int(2, self.received_bytes)
        if self.received_messages:
            out += _enc_int(3, self.received_messages)
        return bytes(out)

    @classmethod
    def FromString(cls, buf: bytes) -> "InteropResponse":  # noqa: N802
        msg = cls()
        for num, wt, value in _iter_fields(buf):
            if num == 1:
                _expect(wt, _LEN, num)
                msg.payload = value
            elif num == 2:
                _expect(wt, _VARINT, num)
                msg.received_bytes = _to_int64(value)
            elif num == 3:
                _expect(wt, _VARINT, num)
                msg.received_messages = _to_int32(value)
        return msg


def serialize(msg) -> bytes:
    return msg.SerializeToString()


deserialize_request = InteropRequest.FromString
deserialize_response = InteropResponse.FromString


def _selftest() -> None:
    reqs = [
        InteropRequest(),
        InteropRequest(payload=pattern(27182), response_size=31415),
        InteropRequest(response_sizes=[31415, 9, 2653, 58979], sleep_ms=5,
                       status_code=2, status_message="\t\n\u263a \U0001f608 %"),
        InteropRequest(response_size=-1, response_sizes=[0, -5]),
    ]
    for r in reqs:
        assert InteropRequest.FromString(r.SerializeToString()) == r, r
    reps = [InteropResponse(), InteropResponse(payload=pattern(9),
                                               received_bytes=74922,
                                               received_messages=4)]
    for r in reps:
        assert InteropResponse.FromString(r.SerializeToString()) == r, r
    assert is_pattern(pattern(314159)) and len(pattern(314159)) == 314159
    assert pattern(3) == bytes([3, 4, 5]) and pattern(252)[248:] == bytes(
        [249, 250, 0, 1])
    # Unpacked repeated fields decode too.
    assert InteropRequest.FromString(
        _enc_int(3, 7) + _enc_int(3, 8)).response_sizes == [7, 8]

    from google.protobuf import descriptor_pb2, descriptor_pool
    from google.protobuf import message_factory
    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(
        name="h2lb_interop_selftest.proto", package="h2lb", syntax="proto3")
    m = fdp.message_type.add(name="InteropRequest")
    for num, (fname, ftype, label) in enumerate([
            ("payload", F.TYPE_BYTES, F.LABEL_OPTIONAL),
            ("response_size", F.TYPE_INT32, F.LABEL_OPTIONAL),
            ("response_sizes", F.TYPE_INT32, F.LABEL_REPEATED),
            ("sleep_ms", F.TYPE_INT32, F.LABEL_OPTIONAL),
            ("status_code", F.TYPE_INT32, F.LABEL_OPTIONAL),
            ("status_message", F.TYPE_STRING, F.LABEL_OPTIONAL)], start=1):
        m.field.add(name=fname, number=num, type=ftype, label=label)
    m = fdp.message_type.add(name="InteropResponse")
    for num, (fname, ftype) in enumerate([
            ("payload", F.TYPE_BYTES), ("received_bytes", F.TYPE_INT64),
            ("received_messages", F.TYPE_INT32)], start=1):
        m.field.add(name=fname, number=num, type=ftype,
                    label=F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)

    def cls_of(name):
        desc = pool.FindMessageTypeByName(name)
        if hasattr(message_factory, "GetMessageClass"):
            return message_factory.GetMessageClass(desc)
        return message_factory.MessageFactory(pool).GetPrototype(desc)

    req_cls, rep_cls = cls_of("h2lb.InteropRequest"), cls_of(
        "h2lb.InteropResponse")
    for r in reqs:
        ref = req_cls(payload=r.payload, response_size=r.response_size,
                      response_sizes=r.response_sizes, sleep_ms=r.sleep_ms,
                      status_code=r.status_code,
                      status_message=r.status_message)
        assert ref.SerializeToString() == r.SerializeToString(), r
        assert InteropRequest.FromString(ref.SerializeToString()) == r, r
    for r in reps:
        ref = rep_cls(payload=r.payload, received_bytes=r.received_bytes,
                      received_messages=r.received_messages)
        assert ref.SerializeToString() == r.SerializeToString(), r
    print("interop_pb selftest OK (cross-checked with google.protobuf)")


if __name__ == "__main__":
    _selftest()
