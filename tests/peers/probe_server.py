#!/usr/bin/python3
"""h2lb test backend "h2lb.Probe": a gRPC server (grpc.aio) that echoes
what it received, so that a client can verify every byte that crossed the
balancer, and that records how each call ended (completed or cancelled).

    probe_server.py --name backend-1 --port 50052 [--bind 0.0.0.0]

Messages are greeter_pb.HelloRequest / HelloReply (see greeter_pb.py).
Methods of service "h2lb.Probe":

  Echo      unary.  Waits delay_ms (and until the epoch time in request
            metadata "x-probe-hold-until", if given, at most 60 s), then
            replies message = JSON {"backend", "tag" (request name),
            "len", "sha256" (of the request payload), "md_bytes",
            "md_sha256", "md" (see below)} and payload =
            shake_256(tag).digest(reply_size).  Request metadata
            "x-probe-reply-md: N" makes it send N bytes of initial
            metadata ("x-probe-big") before the reply.
  Ticks     server-streaming.  count replies (message = JSON {"backend",
            "seq"}), delay_ms before each but the first.
  Sink      client-streaming.  Replies JSON {"backend", "count", "bytes",
            "sha256" (of all payloads, in order), "in_order" (request i
            was named str(i))}.
  PingPong  bidi.  One reply per request: JSON {"backend", "seq": name}.
  Stats     unary.  This server's counters as JSON (in the reply message);
            request name "reset" zeroes them after the snapshot.

Metadata echo: "md" maps every request metadata key that starts with "x-"
(except x-probe-*) to its value when the value is at most 256 bytes, else
to {"len": n, "sha256": hex}.  md_bytes = sum of len(key) + len(value)
over those keys; md_sha256 = sha256 of "key:value\n" over them, sorted.

Counters: calls / completed / cancelled / failed per method, where
"cancelled" means the handler was cancelled by the transport (client
RST_STREAM, or the call's deadline), "inflight" now and "peak_inflight"
(most calls inside handlers at once), "md_max_bytes".
Always run with /usr/bin/python3 (python3-grpcio); SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import json
import logging
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402
from grpc._cython import cygrpc  # noqa: E402

import greeter_pb as pb  # noqa: E402

SERVICE = "h2lb.Probe"
MAX_MSG = 64 * 1024 * 1024
MAX_METADATA = 1024 * 1024
MAX_HOLD_S = 60.0
SMALL_VALUE = 256

log = logging.getLogger("probe")


def pattern(tag: str, n: int) -> bytes:
    """The reply payload the client can recompute: shake_256(tag)."""
    return hashlib.shake_256(tag.encode()).digest(n) if n > 0 else b""


def md_summary(md) -> dict:
    pairs = sorted((k, v if isinstance(v, str) else v.hex())
                   for k, v in (md or ())
                   if k.startswith("x-") and not k.startswith("x-probe-"))
    h = hashlib.sha256()
    echo: dict = {}
    nbytes = 0
    for k, v in pairs:
        h.update(f"{k}:{v}\n".encode())
        nbytes += len(k) + len(v)
        echo[k] = v if len(v) <= SMALL_VALUE else {
            "len": len(v), "sha256": hashlib.sha256(v.encode()).hexdigest()}
    return {"md_bytes": nbytes, "md_sha256": h.hexdigest(), "md": echo}


def md_get(md, key: str) -> str | None:
    for k, v in md or ():
        if k == key:
            return v
    return None


class Counters:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.generation = getattr(self, "generation", 0) + 1
        self.calls: collections.Counter[str] = collections.Counter()
        self.completed: collections.Counter[str] = collections.Counter()
        self.cancelled: collections.Counter[str] = collections.Counter()
        self.failed: collections.Counter[str] = collections.Counter()
        self.inflight = 0
        self.peak_inflight = 0
        self.md_max_bytes = 0
        self.messages_in = 0
        self.messages_out = 0


class Probe:
    def __init__(self, name: str) -> None:
        self.name = name
        self.c = Counters()
        self.started = time.monotonic()

    # Every handler runs inside track(), which counts how each call ended.
    # grpc.aio tells a handler that its call was cancelled by the transport
    # (client RST_STREAM, or the deadline) by cancelling the handler's task
    # (CancelledError); a write that races with the cancellation fails
    # with ExecuteBatchError instead.  Both count as "cancelled" (the
    # server saw the call end early); context.cancelled() is not reliable
    # in grpcio 1.51.  Anything else a handler raises is "failed".
    async def track(self, method: str, context, coro_fn):
        c = self.c
        c.calls[method] += 1
        c.inflight += 1
        c.peak_inflight = max(c.peak_inflight, c.inflight)
        md = context.invocation_metadata()
        c.md_max_bytes = max(c.md_max_bytes, md_summary(md)["md_bytes"])
        gen = c.generation

        def count(counter, how: str) -> None:
            if c.generation == gen:  # not reset meanwhile
                counter[method] += 1
            if how:
                log.info("%s %s", method, how)

        try:
            result = await coro_fn(md)
        except asyncio.CancelledError:
            count(c.cancelled, "cancelled")
            raise
        except cygrpc.ExecuteBatchError as exc:
            count(c.cancelled, f"cancelled (write failed: {exc})")
            raise
        except Exception as exc:
            count(c.failed, f"failed: {exc!r}")
            raise
        finally:
            c.inflight -= 1
        count(c.completed, "")
        return result

    async def _wait(self, delay_ms: int, md) -> None:
        end = time.time() + min(max(delay_ms, 0) / 1000.0, MAX_HOLD_S)
        hold = md_get(md, "x-probe-hold-until")
        if hold:
            end = max(end, min(float(hold), time.time() + MAX_HOLD_S))
        left = end - time.time()
        if left > 0:
            await asyncio.sleep(left)

    def _reply(self, data: dict, payload: bytes = b"") -> pb.HelloReply:
        self.c.messages_out += 1
        return pb.HelloReply(message=json.dumps(data, sort_keys=True),
                             payload=payload)

    # -- methods ---------------------------------------------------------
    async def echo(self, req: pb.HelloRequest, context):
        async def body(md):
            self.c.messages_in += 1
            await self._wait(req.delay_ms, md)
            big = md_get(md, "x-probe-reply-md")
            if big:
                await context.send_initial_metadata(
                    (("x-probe-big", "r" * int(big)),))
            data = {"backend": self.name, "tag": req.name,
                    "len": len(req.payload),
                    "sha256": hashlib.sha256(req.payload).hexdigest()}
            data.update(md_summary(md))
            return self._reply(data, pattern(req.name, req.reply_size))
        return await self.track("Echo", context, body)

    # Streaming handlers are coroutines that use context.read()/write()
    # (not async generators), so that a cancellation always lands inside
    # track(), whatever the handler is waiting for.
    async def ticks(self, req: pb.HelloRequest, context):
        async def body(md):
            self.c.messages_in += 1
            for i in range(max(1, req.count)):
                if i and req.delay_ms > 0:
                    await asyncio.sleep(req.delay_ms / 1000.0)
                await context.write(self._reply(
                    {"backend": self.name, "seq": i},
                    pattern(f"{req.name}.{i}", req.reply_size)))
        return await self.track("Ticks", context, body)

    async def sink(self, request_iterator, context):
        async def body(md):
            h = hashlib.sha256()
            count = nbytes = 0
            in_order = True
            async for req in request_iterator:
                self.c.messages_in += 1
                in_order = in_order and req.name == str(count)
                h.update(req.payload)
                nbytes += len(req.payload)
                count += 1
            return self._reply({"backend": self.name, "count": count,
                                "bytes": nbytes, "sha256": h.hexdigest(),
                                "in_order": in_order})
        return await self.track("Sink", context, body)

    async def ping_pong(self, request_iterator, context):
        async def body(md):
            async for req in request_iterator:
                self.c.messages_in += 1
                await context.write(self._reply(
                    {"backend": self.name, "seq": req.name}, req.payload))
        return await self.track("PingPong", context, body)

    async def stats(self, req: pb.HelloRequest, context):
        c = self.c
        snap = {
            "name": self.name, "pid": os.getpid(),
            "calls": dict(c.calls), "completed": dict(c.completed),
            "cancelled": dict(c.cancelled), "failed": dict(c.failed),
            "total": sum(n for m, n in c.calls.items() if m != "Stats"),
            "inflight": c.inflight, "peak_inflight": c.peak_inflight,
            "md_max_bytes": c.md_max_bytes,
            "messages_in": c.messages_in, "messages_out": c.messages_out,
            "uptime_s": round(time.monotonic() - self.started, 3),
        }
        if req.name == "reset":
            # Calls still running keep their in-flight count.
            inflight = c.inflight
            c.reset()
            c.inflight = inflight
        return pb.HelloReply(message=json.dumps(snap, sort_keys=True))

    def handler(self) -> grpc.GenericRpcHandler:
        de, ser = pb.deserialize_request, pb.serialize
        return grpc.method_handlers_generic_handler(SERVICE, {
            "Echo": grpc.unary_unary_rpc_method_handler(
                self.echo, request_deserializer=de, response_serializer=ser),
            "Ticks": grpc.unary_stream_rpc_method_handler(
                self.ticks, request_deserializer=de, response_serializer=ser),
            "Sink": grpc.stream_unary_rpc_method_handler(
                self.sink, request_deserializer=de, response_serializer=ser),
            "PingPong": grpc.stream_stream_rpc_method_handler(
                self.ping_pong, request_deserializer=de,
                response_serializer=ser),
            "Stats": grpc.unary_unary_rpc_method_handler(
                self.stats, request_deserializer=de, response_serializer=ser),
        })


async def serve(args) -> int:
    options = [
        ("grpc.so_reuseport", 0),
        ("grpc.max_send_message_length", MAX_MSG),
        ("grpc.max_receive_message_length", MAX_MSG),
        ("grpc.max_metadata_size", MAX_METADATA),
        ("grpc.max_concurrent_streams", 4096),
    ]
    probe = Probe(args.name)
    server = grpc.aio.server(handlers=[probe.handler()], options=options)
    addr = f"{args.bind}:{args.port}"
    try:
        port = server.add_insecure_port(addr)
    except RuntimeError as exc:
        log.error("cannot listen on %s: %s", addr, exc)
        return 1
    if not port:
        log.error("cannot listen on %s", addr)
        return 1
    await server.start()
    log.info("listening on %s (pid %d)", addr, os.getpid())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1.0)
    log.info("stopped; calls %s cancelled %s", dict(probe.c.calls),
             dict(probe.c.cancelled))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.verbose else logging.INFO,
        format=f"%(asctime)s probe[{args.name}] %(levelname)s %(message)s")
    return asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
