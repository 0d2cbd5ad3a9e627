#!/usr/bin/python3
"""h2lb test backend: the python grpcio "h2lb.Interop" server.

    interop_server.py --port 50051 [--bind 0.0.0.0] [--name backend-1]
                      [--workers 32]

The service is in interop.proto (the grpc-go server in tests/peers/go/ is
the same): request payloads must be the pattern (else DATA_LOSS), replies
carry the pattern of the sizes asked for, the server sleeps sleep_ms before
each reply (waking early if the call ends), a non-zero status_code ends the
call with that code and status_message, the metadata keys
x-interop-initial(-bin) are echoed as initial and x-interop-trailing-bin as
trailing metadata (with "x-backend: NAME").  UnimplementedCall is not
served: grpc answers UNIMPLEMENTED.

Logs go to stderr; SIGTERM/SIGINT stop the server (1 s grace).
Always run with /usr/bin/python3 (the Debian python with python3-grpcio).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from concurrent import futures

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

import interop_pb as pb  # noqa: E402

MAX_MSG = 64 * 1024 * 1024
CODES = {c.value[0]: c for c in grpc.StatusCode}

log = logging.getLogger("interop")


class Interop:
    def __init__(self, name: str) -> None:
        self.name = name

    # -- helpers ---------------------------------------------------------

    def _begin(self, context) -> threading.Event:
        """Echo the metadata; returns an Event set when the call ends."""
        initial, trailing = [], [("x-backend", self.name)]
        for key, value in context.invocation_metadata() or ():
            if key in (pb.INITIAL_KEY, pb.INITIAL_BIN_KEY):
                initial.append((key, value))
            elif key == pb.TRAILING_BIN_KEY:
                trailing.append((key, value))
        context.send_initial_metadata(tuple(initial))
        context.set_trailing_metadata(tuple(trailing))
        done = threading.Event()
        context.add_callback(done.set)
        return done

    @staticmethod
    def _check(req: pb.InteropRequest, context) -> None:
        if not pb.is_pattern(req.payload):
            context.abort(grpc.StatusCode.DATA_LOSS,
                          f"request payload of {len(req.payload)} bytes is "
                          "not the pattern")

    @staticmethod
    def _sleep(req: pb.InteropRequest, done: threading.Event,
               context) -> None:
        if req.sleep_ms > 0 and done.wait(req.sleep_ms / 1000.0):
            # The call ended (deadline, cancel): nobody waits for a reply.
            context.abort(grpc.StatusCode.CANCELLED, "call ended")

    @staticmethod
    def _status(req: pb.InteropRequest, context) -> None:
        if req.status_code:
            code = CODES.get(req.status_code, grpc.StatusCode.UNKNOWN)
            context.abort(code, req.status_message)

    # -- methods ---------------------------------------------------------

    def unary_call(self, req, context):
        done = self._begin(context)
        self._check(req, context)
        self._sleep(req, done, context)
        self._status(req, context)
        return pb.InteropResponse(payload=pb.pattern(req.response_size),
                                  received_bytes=len(req.payload),
                                  received_messages=1)

    def streaming_output_call(self, req, context):
        done = self._begin(context)
        self._check(req, context)
        self._status(req, context)
        for size in req.response_sizes:
            self._sleep(req, done, context)
            yield pb.InteropResponse(payload=pb.pattern(size),
                                     received_bytes=len(req.payload),
                                     received_messages=1)

    def streaming_input_call(self, requests, context):
        self._begin(context)
        got = msgs = 0
        for req in requests:
            self._check(req, context)
            self._status(req, context)
            got += len(req.payload)
            msgs += 1
        return pb.InteropResponse(received_bytes=got, received_messages=msgs)

    def full_duplex_call(self, requests, context):
        done = self._begin(context)
        got = msgs = 0
        for req in requests:
            self._check(req, context)
            got += len(req.payload)
            msgs += 1
            self._sleep(req, done, context)
            self._status(req, context)
            for size in req.response_sizes or [req.response_size]:
                yield pb.InteropResponse(payload=pb.pattern(size),
                                         received_bytes=got,
                                         received_messages=msgs)

    def handler(self) -> grpc.GenericRpcHandler:
        de, se = pb.deserialize_request, pb.serialize
        kw = {"request_deserializer": de, "response_serializer": se}
        return grpc.method_handlers_generic_handler(pb.SERVICE, {
            "UnaryCall": grpc.unary_unary_rpc_method_handler(
                self.unary_call, **kw),
            "StreamingOutputCall": grpc.unary_stream_rpc_method_handler(
                self.streaming_output_call, **kw),
            "StreamingInputCall": grpc.stream_unary_rpc_method_handler(
                self.streaming_input_call, **kw),
            "FullDuplexCall": grpc.stream_stream_rpc_method_handler(
                self.full_duplex_call, **kw),
        })


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=50051)
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--name", default="python-interop")
    ap.add_argument("--workers", type=int, default=32)
    args = ap.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO,
        format=f"%(asctime)s interop[{args.name}] %(levelname)s %(message)s")

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=args.workers,
                                   thread_name_prefix="interop"),
        handlers=[Interop(args.name).handler()],
        options=[("grpc.so_reuseport", 0),
                 ("grpc.max_send_message_length", MAX_MSG),
                 ("grpc.max_receive_message_length", MAX_MSG)])
    bind = args.bind
    addr = f"[{bind}]:{args.port}" if ":" in bind else f"{bind}:{args.port}"
    try:
        port = server.add_insecure_port(addr)
    except RuntimeError as exc:
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
    log.info("listening on %s (pid %d, grpcio %s)", addr, os.getpid(),
             grpc.__version__)
    while not stop.wait(1.0):
        pass
    server.stop(grace=1.0).wait(5.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
