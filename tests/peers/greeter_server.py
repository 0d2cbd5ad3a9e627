#!/usr/bin/python3
"""h2lb test backend: a gRPC "h2lb.Greeter" server that counts what it serves.

    greeter_server.py --name backend-1 --port 50051 [--bind 0.0.0.0] [--workers 64]

Methods (see greeter_pb.py for the messages):
  SayHello        unary           "Hello from NAME", reply_size bytes of
                                  payload, after sleeping delay_ms
  SayHelloStream  server-streaming count replies (at least 1), delay_ms
                                  between them
  Collect         client-streaming counts the request messages and replies
                                  "Hello from NAME: got K messages, B bytes"
                                  (B = sum of the request payload sizes)
  Chat            bidi ping-pong  one reply per request message
  Stats           unary           this server's counters as JSON (StatsReply);
                                  a request with name "reset" zeroes the
                                  counters after taking the snapshot

Stats JSON: {"name", "calls": {method: n}, "total" (all methods but Stats),
"messages_in", "messages_out", "bytes_in", "bytes_out" (payload bytes),
"peers" (distinct peer addresses seen), "peer_calls" ({peer: n}, capped;
both leave out Stats calls),
"max_metadata_bytes", "uptime_s"}.  Counting is under one lock, so it is
exact; a call is counted when its handler starts.

Every reply carries the trailing metadata "x-backend: NAME".
Logs go to stderr; SIGTERM/SIGINT stop the server cleanly (1 s grace).
Always run with /usr/bin/python3 (the Debian python with python3-grpcio).
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import signal
import sys
import threading
import time
from concurrent import futures

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

import greeter_pb as pb  # noqa: E402

MAX_MSG = 64 * 1024 * 1024          # 64 MiB send/receive limit
MAX_METADATA = 1024 * 1024          # header list size we accept (1 MiB)
MAX_REPLY_SIZE = MAX_MSG - 1024     # leave room for the message framing
MAX_DELAY_MS = 600_000              # never sleep more than 10 minutes
PEER_CAP = 256                      # distinct peers kept in peer_calls

log = logging.getLogger("greeter")


class Counters:
    """Thread-safe, exact counters of everything this server served."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._reset_locked()

    def _reset_locked(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        self.peer_calls: collections.Counter[str] = collections.Counter()
        self.peers_overflow = 0
        self.messages_in = 0
        self.messages_out = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.max_metadata_bytes = 0

    def call(self, method: str, context: grpc.ServicerContext) -> None:
        peer = context.peer() or "?"
        md_bytes = sum(len(k) + len(v) for k, v in
                       (context.invocation_metadata() or ()))
        with self._lock:
            self.calls[method] += 1
            if method == "Stats":
                pass  # monitoring: not a client connection of interest
            elif peer in self.peer_calls or len(self.peer_calls) < PEER_CAP:
                self.peer_calls[peer] += 1
            else:
                self.peers_overflow += 1
            if md_bytes > self.max_metadata_bytes:
                self.max_metadata_bytes = md_bytes

    def message_in(self, req: pb.HelloRequest) -> None:
        with self._lock:
            self.messages_in += 1
            self.bytes_in += len(req.payload)

    def message_out(self, rep: pb.HelloReply) -> None:
        with self._lock:
            self.messages_out += 1
            self.bytes_out += len(rep.payload)

    def snapshot(self, name: str, reset: bool = False) -> dict:
        with self._lock:
            calls = dict(self.calls)
            data = {
                "name": name,
                "pid": os.getpid(),
                "calls": calls,
                "total": sum(n for m, n in calls.items() if m != "Stats"),
                "messages_in": self.messages_in,
                "messages_out": self.messages_out,
                "bytes_in": self.bytes_in,
                "bytes_out": self.bytes_out,
                "peers": len(self.peer_calls)
                + (1 if self.peers_overflow else 0),
                "peer_calls": dict(self.peer_calls),
                "peer_calls_overflow": self.peers_overflow,
                "max_metadata_bytes": self.max_metadata_bytes,
                "uptime_s": round(time.monotonic() - self._started, 3),
            }
            if reset:
                self._reset_locked()
            return data


class Greeter:
    """Handlers for the generic "h2lb.Greeter" service."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.stats = Counters()
        self.hello = f"Hello from {name}"

    # -- helpers ---------------------------------------------------------
    def _check(self, req: pb.HelloRequest, context) -> None:
        if not 0 <= req.reply_size <= MAX_REPLY_SIZE:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"reply_size must be 0..{MAX_REPLY_SIZE}")
        if not 0 <= req.delay_ms <= MAX_DELAY_MS:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"delay_ms must be 0..{MAX_DELAY_MS}")

    def _reply(self, message: str, size: int) -> pb.HelloReply:
        rep = pb.HelloReply(message=message, payload=b"x" * size)
        self.stats.message_out(rep)
        return rep

    @staticmethod
    def _sleep(delay_ms: int, context) -> None:
        # Sleep in small slices so a cancelled call does not hold a worker.
        end = time.monotonic() + delay_ms / 1000.0
        while context.is_active():
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.05))

    def _trailer(self, context) -> None:
        context.set_trailing_metadata((("x-backend", self.name),))

    # -- methods ---------------------------------------------------------
    def say_hello(self, req: pb.HelloRequest, context) -> pb.HelloReply:
        self.stats.call("SayHello", context)
        self.stats.message_in(req)
        self._check(req, context)
        if req.delay_ms > 0:
            self._sleep(req.delay_ms, context)
        self._trailer(context)
        return self._reply(self.hello, req.reply_size)

    def say_hello_stream(self, req: pb.HelloRequest, context):
        self.stats.call("SayHelloStream", context)
        self.stats.message_in(req)
        self._check(req, context)
        self._trailer(context)
        for i in range(max(1, req.count)):
            if i and req.delay_ms > 0:
                self._sleep(req.delay_ms, context)
            if not context.is_active():
                return
            yield self._reply(self.hello, req.reply_size)

    def collect(self, request_iterator, context) -> pb.HelloReply:
        self.stats.call("Collect", context)
        count = nbytes = 0
        reply_size = 0
        for req in request_iterator:
            self.stats.message_in(req)
            if count == 0:
                self._check(req, context)
                reply_size = req.reply_size
            count += 1
            nbytes += len(req.payload)
        self._trailer(context)
        return self._reply(
            f"{self.hello}: got {count} messages, {nbytes} bytes", reply_size)

    def chat(self, request_iterator, context):
        self.stats.call("Chat", context)
        self._trailer(context)
        for req in request_iterator:
            self.stats.message_in(req)
            self._check(req, context)
            if req.delay_ms > 0:
                self._sleep(req.delay_ms, context)
            yield self._reply(self.hello, req.reply_size)

    def stats_rpc(self, req: pb.HelloRequest, context) -> pb.StatsReply:
        self.stats.call("Stats", context)
        snap = self.stats.snapshot(self.name, reset=(req.name == "reset"))
        return pb.StatsReply.from_dict(snap)

    def handler(self) -> grpc.GenericRpcHandler:
        req_de = pb.deserialize_request
        ser = pb.serialize
        return grpc.method_handlers_generic_handler(pb.SERVICE, {
            "SayHello": grpc.unary_unary_rpc_method_handler(
                self.say_hello, request_deserializer=req_de,
                response_serializer=ser),
            "SayHelloStream": grpc.unary_stream_rpc_method_handler(
                self.say_hello_stream, request_deserializer=req_de,
                response_serializer=ser),
            "Collect": grpc.stream_unary_rpc_method_handler(
                self.collect, request_deserializer=req_de,
                response_serializer=ser),
            "Chat": grpc.stream_stream_rpc_method_handler(
                self.chat, request_deserializer=req_de,
                response_serializer=ser),
            "Stats": grpc.unary_unary_rpc_method_handler(
                self.stats_rpc, request_deserializer=req_de,
                response_serializer=ser),
        })


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--name", required=True, help="backend name, e.g. backend-1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bind", default="0.0.0.0",
                    help="address to listen on (default 0.0.0.0)")
    ap.add_argument("--workers", type=int, default=64,
                    help="handler threads = max concurrently served calls "
                         "(default 64)")
    ap.add_argument("--tls", metavar="CERT,KEY",
                    help="serve TLS with this PEM certificate and key")
    ap.add_argument("--verbose", action="store_true", help="debug logging")
    args = ap.parse_args(argv)

    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.verbose else logging.INFO,
        format=f"%(asctime)s greeter[{args.name}] %(levelname)s %(message)s")

    options = [
        ("grpc.so_reuseport", 0),
        ("grpc.max_send_message_length", MAX_MSG),
        ("grpc.max_receive_message_length", MAX_MSG),
        ("grpc.max_metadata_size", MAX_METADATA),
    ]
    greeter = Greeter(args.name)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=args.workers,
                                   thread_name_prefix="greeter"),
        handlers=[greeter.handler()], options=options)
    bind = args.bind
    addr = f"[{bind}]:{args.port}" if ":" in bind else f"{bind}:{args.port}"
    try:
        if args.tls:
            cert, key = args.tls.split(",")
            with open(cert, "rb") as c, open(key, "rb") as k:
                creds = grpc.ssl_server_credentials([(k.read(), c.read())])
            port = server.add_secure_port(addr, creds)
        else:
            port = server.add_insecure_port(addr)
    except RuntimeError as exc:  # newer grpcio raises instead of returning 0
        log.error("cannot listen on %s: %s", addr, exc)
        return 1
    if not port:
        log.error("cannot listen on %s", addr)
        return 1

    stop = threading.Event()

    def on_signal(signum, _frame):
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    server.start()
    log.info("listening on %s (pid %d, %d workers)", addr, os.getpid(),
             args.workers)
    # Event.wait with a timeout keeps the main thread responsive to signals.
    while not stop.wait(1.0):
        pass
    server.stop(grace=1.0).wait(5.0)
    snap = greeter.stats.snapshot(args.name)
    log.info("stopped; served %s", json.dumps(snap["calls"], sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
