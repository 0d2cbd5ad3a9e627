"""Tiny hand-written protobuf codec for the h2lb test Greeter service.

No protoc, no generated code: just enough of the protobuf wire format
(varints and length-delimited fields) for the three messages the test
peers exchange.  The equivalent .proto would be:

    syntax = "proto3";
    package h2lb;

    message HelloRequest {
      string name       = 1;
      bytes  payload    = 2;
      int32  count      = 3;  // messages to stream back (SayHelloStream)
      int32  delay_ms   = 4;  // server sleeps this long per reply
      int32  reply_size = 5;  // bytes of payload in each reply
    }
    message HelloReply {
      string message = 1;
      bytes  payload = 2;
    }
    message StatsReply {
      bytes json = 1;         // UTF-8 JSON document with the counters
    }

    service Greeter {
      rpc SayHello       (HelloRequest)        returns (HelloReply);
      rpc SayHelloStream (HelloRequest)        returns (stream HelloReply);
      rpc Collect        (stream HelloRequest) returns (HelloReply);
      rpc Chat           (stream HelloRequest) returns (stream HelloReply);
      rpc Stats          (HelloRequest)        returns (StatsReply);
    }

The module-level functions (serialize/deserialize) are what grpc's
request_serializer / response_deserializer hooks expect.

Run `python3 greeter_pb.py` for a self-test (round trips, plus a
cross-check against google.protobuf when it is installed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, Iterator

SERVICE = "h2lb.Greeter"
METHODS = ("SayHello", "SayHelloStream", "Collect", "Chat", "Stats")

# Wire types.
_VARINT = 0
_I64 = 1
_LEN = 2
_I32 = 5


def method_path(method: str) -> str:
    """Full HTTP/2 :path of a Greeter method, e.g. /h2lb.Greeter/SayHello."""
    return f"/{SERVICE}/{method}"


# --------------------------------------------------------------------------
# Low-level wire helpers
# --------------------------------------------------------------------------

def _enc_varint(value: int) -> bytes:
    """Encode an unsigned varint.  Negative int32/int64 values are encoded
    as their 64-bit two's complement (10 bytes), as protobuf does."""
    if value < 0:
        value &= (1 << 64) - 1
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _dec_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode a varint at buf[pos:]; returns (value, new_pos)."""
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ValueError("varint too long")


def _to_int32(value: int) -> int:
    """Interpret a decoded varint as a signed int32 (protobuf semantics)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _key(field: int, wire_type: int) -> bytes:
    return _enc_varint((field << 3) | wire_type)


def _enc_len(field: int, data: bytes) -> bytes:
    return _key(field, _LEN) + _enc_varint(len(data)) + data


def _enc_int(field: int, value: int) -> bytes:
    return _key(field, _VARINT) + _enc_varint(value)


def _iter_fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field_number, wire_type, value) for every field in buf.
    Varints come back as int, length-delimited fields as bytes; fixed32 /
    fixed64 fields are returned as raw bytes (we have none but must skip
    them if a peer sends unknown fields)."""
    pos = 0
    n = len(buf)
    while pos < n:
        key, pos = _dec_varint(buf, pos)
        field, wire_type = key >> 3, key & 7
        if field == 0:
            raise ValueError("invalid field number 0")
        if wire_type == _VARINT:
            value, pos = _dec_varint(buf, pos)
            yield field, wire_type, value
        elif wire_type == _LEN:
            length, pos = _dec_varint(buf, pos)
            if pos + length > n:
                raise ValueError("truncated length-delimited field")
            yield field, wire_type, bytes(buf[pos:pos + length])
            pos += length
        elif wire_type == _I64:
            if pos + 8 > n:
                raise ValueError("truncated fixed64")
            yield field, wire_type, bytes(buf[pos:pos + 8])
            pos += 8
        elif wire_type == _I32:
            if pos + 4 > n:
                raise ValueError("truncated fixed32")
            yield field, wire_type, bytes(buf[pos:pos + 4])
            pos += 4
        else:  # 3/4 (groups) and 6/7 are not supported
            raise ValueError(f"unsupported wire type {wire_type}")


def _expect(wire_type: int, want: int, field: int) -> None:
    if wire_type != want:
        raise ValueError(f"field {field}: wire type {wire_type}, want {want}")


# --------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------

@dataclass
class HelloRequest:
    name: str = ""
    payload: bytes = b""
    count: int = 0
    delay_ms: int = 0
    reply_size: int = 0

    def SerializeToString(self) -> bytes:  # noqa: N802 (protobuf naming)
        out = bytearray()
        # proto3: fields equal to their default value are not emitted.
        if self.name:
            out += _enc_len(1, self.name.encode("utf-8"))
        if self.payload:
            out += _enc_len(2, bytes(self.payload))
        if self.count:
            out += _enc_int(3, self.count)
        if self.delay_ms:
            out += _enc_int(4, self.delay_ms)
        if self.reply_size:
            out += _enc_int(5, self.reply_size)
        return bytes(out)

    @classmethod
    def FromString(cls, buf: bytes) -> "HelloRequest":  # noqa: N802
        msg = cls()
        for field, wt, value in _iter_fields(buf):
            if field == 1:
                _expect(wt, _LEN, field)
                msg.name = value.decode("utf-8")
            elif field == 2:
                _expect(wt, _LEN, field)
                msg.payload = value
            elif field in (3, 4, 5):
                _expect(wt, _VARINT, field)
                setattr(msg, ("count", "delay_ms", "reply_size")[field - 3],
                        _to_int32(value))
            # unknown fields are skipped, as protobuf does
        return msg


@dataclass
class HelloReply:
    message: str = ""
    payload: bytes = b""

    def SerializeToString(self) -> bytes:  # noqa: N802
        out = bytearray()
        if self.message:
            out += _enc_len(1, self.message.encode("utf-8"))
        if self.payload:
            out += _enc_len(2, bytes(self.payload))
        return bytes(out)

    @classmethod
    def FromString(cls, buf: bytes) -> "HelloReply":  # noqa: N802
        msg = cls()
        for field, wt, value in _iter_fields(buf):
            if field == 1:
                _expect(wt, _LEN, field)
                msg.message = value.decode("utf-8")
            elif field == 2:
                _expect(wt, _LEN, field)
                msg.payload = value
        return msg


@dataclass
class StatsReply:
    json: bytes = b""

    def SerializeToString(self) -> bytes:  # noqa: N802
        return _enc_len(1, self.json) if self.json else b""

    @classmethod
    def FromString(cls, buf: bytes) -> "StatsReply":  # noqa: N802
        msg = cls()
        for field, wt, value in _iter_fields(buf):
            if field == 1:
                _expect(wt, _LEN, field)
                msg.json = value
        return msg

    @classmethod
    def from_dict(cls, data: dict) -> "StatsReply":
        return cls(json=json.dumps(data, sort_keys=True).encode("utf-8"))

    def to_dict(self) -> dict:
        return json.loads(self.json.decode("utf-8")) if self.json else {}


# --------------------------------------------------------------------------
# grpc (de)serializer hooks
# --------------------------------------------------------------------------

def serialize(msg) -> bytes:
    """request_serializer / response_serializer for any message here."""
    return msg.SerializeToString()


def deserializer(cls) -> Callable[[bytes], object]:
    """Returns a deserializer for cls, for request_/response_deserializer."""
    return cls.FromString


deserialize_request = HelloRequest.FromString
deserialize_reply = HelloReply.FromString
deserialize_stats = StatsReply.FromString


# --------------------------------------------------------------------------
# Self-test
# --------------------------------------------------------------------------

def _selftest() -> None:
    cases = [
        HelloRequest(),
        HelloRequest(name="x"),
        HelloRequest(name="héllo", payload=b"\x00\xff" * 300, count=7,
                     delay_ms=150, reply_size=1 << 20),
        HelloRequest(count=-1, delay_ms=2**31 - 1, reply_size=-(2**31)),
    ]
    for req in cases:
        assert HelloRequest.FromString(req.SerializeToString()) == req, req
    for rep in (HelloReply(), HelloReply(message="Hello from backend-1",
                                         payload=b"a" * 200)):
        assert HelloReply.FromString(rep.SerializeToString()) == rep, rep
    st = StatsReply.from_dict({"calls": {"SayHello": 3}, "total": 3})
    assert StatsReply.FromString(st.SerializeToString()).to_dict()["total"] == 3
    # Unknown fields of every wire type are skipped.
    junk = (_enc_int(9, 5) + _key(10, _I64) + b"\0" * 8
            + _key(11, _I32) + b"\0" * 4 + _enc_len(12, b"zz"))
    assert HelloRequest.FromString(junk + _enc_len(1, b"n")).name == "n"
    # Truncated input is rejected.
    for bad in (b"\x0a\x05ab", b"\x18", b"\x18\x80"):
        try:
            HelloRequest.FromString(bad)
        except ValueError:
            pass
        else:
            raise AssertionError(f"accepted truncated {bad!r}")

    # Cross-check the encoding against the real protobuf library if present.
    try:
        from google.protobuf import descriptor_pb2, descriptor_pool
        from google.protobuf import message_factory
    except ImportError:
        print("greeter_pb selftest OK (google.protobuf not installed)")
        return
    fdp = descriptor_pb2.FileDescriptorProto(
        name="h2lb_greeter_selftest.proto", package="h2lb", syntax="proto3")
    m = fdp.message_type.add(name="HelloRequest")
    F = descriptor_pb2.FieldDescriptorProto
    for num, (fname, ftype) in enumerate(
            [("name", F.TYPE_STRING), ("payload", F.TYPE_BYTES),
             ("count", F.TYPE_INT32), ("delay_ms", F.TYPE_INT32),
             ("reply_size", F.TYPE_INT32)], start=1):
        m.field.add(name=fname, number=num, type=ftype, label=F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    desc = pool.FindMessageTypeByName("h2lb.HelloRequest")
    if hasattr(message_factory, "GetMessageClass"):
        cls = message_factory.GetMessageClass(desc)
    else:  # older protobuf releases
        cls = message_factory.MessageFactory(pool).GetPrototype(desc)
    for req in cases:
        ref = cls(name=req.name, payload=req.payload, count=req.count,
                  delay_ms=req.delay_ms, reply_size=req.reply_size)
        assert ref.SerializeToString() == req.SerializeToString(), req
        back = cls.FromString(req.SerializeToString())
        assert (back.name, back.payload, back.count, back.delay_ms,
                back.reply_size) == (req.name, req.payload, req.count,
                                     req.delay_ms, req.reply_size)
    print("greeter_pb selftest OK (cross-checked with google.protobuf)")


if __name__ == "__main__":
    _selftest()
