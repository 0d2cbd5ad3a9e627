#!/usr/bin/python3
"""h2lb test client: the python grpcio "h2lb.Interop" client.

    interop_client.py --target HOST:PORT [--cases a,b,...] [--iterations N]
        [--small-iterations M] [--call-timeout S] [--timeout S] [--list]

The same cases as the grpc-go client (tests/peers/go/interop_client), each
repeated on ONE channel (one HTTP/2 connection); one JSON line per case:
    {"case", "ok", "iterations", "error", "elapsed_s", "client": "python"}
--iterations (default 300) repeats the large-message cases, and
--small-iterations (default 30) the others.  A case stops at its first
failing iteration ("iterations" counts those that passed) and the channel
is then replaced, so that a broken connection fails one case only.  Every
call has a deadline (--call-timeout, default 10 s); no iteration starts
after --timeout (default 300 s).

Exit status 0 if every case passed, 1 otherwise, 2 on usage errors.
Always run with /usr/bin/python3 (the Debian python with python3-grpcio).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

import interop_pb as pb  # noqa: E402

MAX_MSG = 64 * 1024 * 1024
REQ_SIZES = (27182, 8, 1828, 45904)
RESP_SIZES = (31415, 9, 2653, 58979)
LARGE_REQ, LARGE_RESP = 271828, 314159
STATUS_MESSAGE = ("test status message: \t\ntabs, CR LF\r\n, BMP \u263a, "
                  "non-BMP \U0001f608, 100% %41")
INITIAL_VALUE = "test_initial_metadata_value"
INITIAL_BIN = bytes([0x00, 0x01, 0xfe, 0xff, 0x0a, 0x0d])
TRAILING_BIN = bytes([0xab, 0xab, 0xab, 0x00, 0xca, 0xfe])
SC = grpc.StatusCode


class Failure(Exception):
    pass


class Pipe:
    """A request iterator fed one message at a time (for ping-pong)."""

    _END = object()

    def __init__(self) -> None:
        self._q: queue.Queue = queue.Queue()

    def add(self, msg) -> None:
        self._q.put(msg)

    def close(self) -> None:
        self._q.put(self._END)

    def __iter__(self):
        return self

    def __next__(self):
        item = self._q.get()
        if item is self._END:
            raise StopIteration
        return item


def check_payload(what: str, payload: bytes, want: int) -> None:
    if len(payload) != want:
        raise Failure(f"{what}: {len(payload)} payload bytes, want {want}")
    if not pb.is_pattern(payload):
        raise Failure(f"{what}: payload of {want} bytes is not the pattern")


def want_code(what: str, err: grpc.RpcError, code, details=None) -> None:
    got = err.code()
    if got != code or (details is not None and err.details() != details):
        raise Failure(f"{what}: status {got} {err.details()!r}, want {code}"
                      + (f" {details!r}" if details is not None else ""))


def expect_error(what: str, fn, code, details=None) -> None:
    try:
        fn()
    except grpc.RpcError as err:
        want_code(what, err, code, details)
        return
    raise Failure(f"{what}: succeeded, want {code}")


class Cases:
    def __init__(self, channel, call_timeout: float) -> None:
        self.channel = channel
        self.t = call_timeout
        kw = {"request_serializer": pb.serialize,
              "response_deserializer": pb.deserialize_response}
        p = pb.method_path
        self.unary = channel.unary_unary(p("UnaryCall"), **kw)
        self.output = channel.unary_stream(p("StreamingOutputCall"), **kw)
        self.input = channel.stream_unary(p("StreamingInputCall"), **kw)
        self.duplex = channel.stream_stream(p("FullDuplexCall"), **kw)
        self.unimplemented = [
            channel.unary_unary(p("UnimplementedCall", svc), **kw)
            for svc in (pb.SERVICE, "h2lb.NoSuchService")]

    def large_unary(self):
        rep = self.unary(pb.InteropRequest(payload=pb.pattern(LARGE_REQ),
                                           response_size=LARGE_RESP),
                         timeout=self.t)
        if rep.received_bytes != LARGE_REQ:
            raise Failure(f"server got {rep.received_bytes} request bytes")
        check_payload("reply", rep.payload, LARGE_RESP)

    def server_streaming(self):
        replies = list(self.output(
            pb.InteropRequest(response_sizes=list(RESP_SIZES)),
            timeout=self.t))
        if len(replies) != len(RESP_SIZES):
            raise Failure(f"{len(replies)} replies, want {len(RESP_SIZES)}")
        for i, (rep, n) in enumerate(zip(replies, RESP_SIZES)):
            check_payload(f"reply {i + 1}", rep.payload, n)

    def client_streaming(self):
        reqs = [pb.InteropRequest(payload=pb.pattern(n)) for n in REQ_SIZES]
        rep = self.input(iter(reqs), timeout=self.t)
        if (rep.received_bytes, rep.received_messages) != (
                sum(REQ_SIZES), len(REQ_SIZES)):
            raise Failure(f"server got {rep.received_bytes} bytes in "
                          f"{rep.received_messages} messages")

    def ping_pong(self):
        pipe = Pipe()
        replies = self.duplex(pipe, timeout=self.t)
        try:
            total = 0
            for i, (n, m) in enumerate(zip(REQ_SIZES, RESP_SIZES)):
                pipe.add(pb.InteropRequest(payload=pb.pattern(n),
                                           response_size=m))
                total += n
                rep = next(replies)
                check_payload(f"pong {i + 1}", rep.payload, m)
                if (rep.received_bytes, rep.received_messages) != (total,
                                                                   i + 1):
                    raise Failure(f"pong {i + 1}: server counted "
                                  f"{rep.received_bytes} bytes in "
                                  f"{rep.received_messages} messages")
            pipe.close()
            extra = list(replies)
            if extra:
                raise Failure(f"{len(extra)} replies after the last pong")
        finally:
            pipe.close()
            replies.cancel()

    def empty_stream(self):
        replies = list(self.duplex(iter(()), timeout=self.t))
        if replies:
            raise Failure(f"{len(replies)} replies to an empty stream")

    def cancel_after_begin(self):
        pipe = Pipe()
        fut = self.input.future(pipe, timeout=self.t)
        try:
            fut.cancel()
            if not fut.cancelled():
                raise Failure("the call was not cancelled")
            try:
                fut.result(timeout=self.t)
            except grpc.FutureCancelledError:
                pass
            except grpc.RpcError as err:
                want_code("after cancel", err, SC.CANCELLED)
            else:
                raise Failure("a result after cancel")
        finally:
            pipe.close()

    def cancel_after_first_response(self):
        pipe = Pipe()
        replies = self.duplex(pipe, timeout=self.t)
        try:
            pipe.add(pb.InteropRequest(payload=pb.pattern(REQ_SIZES[0]),
                                       response_size=RESP_SIZES[0]))
            check_payload("first reply", next(replies).payload, RESP_SIZES[0])
            replies.cancel()
            expect_error("after cancel", lambda: next(replies), SC.CANCELLED)
        finally:
            pipe.close()

    def timeout_on_sleeping_server(self):
        pipe = Pipe()
        t0 = time.monotonic()
        replies = self.duplex(pipe, timeout=0.1)
        try:
            pipe.add(pb.InteropRequest(payload=pb.pattern(REQ_SIZES[0]),
                                       response_size=1, sleep_ms=5000))
            expect_error("sleeping server", lambda: next(replies),
                         SC.DEADLINE_EXCEEDED)
            took = time.monotonic() - t0
            if took > 2:
                raise Failure(f"DEADLINE_EXCEEDED after {took:.2f}s")
        finally:
            pipe.close()

    @staticmethod
    def _check_echo(initial, trailing) -> None:
        ini, trl = dict(initial or ()), dict(trailing or ())
        for what, md, key, want in (
                ("initial", ini, pb.INITIAL_KEY, INITIAL_VALUE),
                ("initial", ini, pb.INITIAL_BIN_KEY, INITIAL_BIN),
                ("trailing", trl, pb.TRAILING_BIN_KEY, TRAILING_BIN)):
            if md.get(key) != want:
                raise Failure(f"{what} metadata {key}: {md.get(key)!r}, "
                              f"want {want!r}")

    def custom_metadata(self):
        md = ((pb.INITIAL_KEY, INITIAL_VALUE),
              (pb.INITIAL_BIN_KEY, INITIAL_BIN),
              (pb.TRAILING_BIN_KEY, TRAILING_BIN))
        req = pb.InteropRequest(payload=pb.pattern(1024), response_size=2048)
        rep, call = self.unary.with_call(req, metadata=md, timeout=self.t)
        check_payload("unary reply", rep.payload, 2048)
        self._check_echo(call.initial_metadata(), call.trailing_metadata())
        replies = self.duplex(iter([req]), metadata=md, timeout=self.t)
        got = list(replies)
        if len(got) != 1:
            raise Failure(f"bidi: {len(got)} replies, want 1")
        check_payload("bidi reply", got[0].payload, 2048)
        self._check_echo(replies.initial_metadata(),
                         replies.trailing_metadata())

    def status_code_and_message(self):
        expect_error("unary", lambda: self.unary(pb.InteropRequest(
            status_code=SC.UNKNOWN.value[0], status_message=STATUS_MESSAGE),
            timeout=self.t), SC.UNKNOWN, STATUS_MESSAGE)
        req = pb.InteropRequest(status_code=SC.FAILED_PRECONDITION.value[0],
                                status_message=STATUS_MESSAGE)
        expect_error("bidi", lambda: list(self.duplex(iter([req]),
                                                      timeout=self.t)),
                     SC.FAILED_PRECONDITION, STATUS_MESSAGE)

    def unimplemented_method(self):
        for stub in self.unimplemented:
            expect_error("unimplemented", lambda: stub(
                pb.InteropRequest(), timeout=self.t), SC.UNIMPLEMENTED)


CASES = [
    ("large_unary", True), ("server_streaming", True),
    ("client_streaming", True), ("ping_pong", True),
    ("empty_stream", False), ("cancel_after_begin", False),
    ("cancel_after_first_response", False),
    ("timeout_on_sleeping_server", False), ("custom_metadata", False),
    ("status_code_and_message", False), ("unimplemented_method", False),
]


def new_channel(target: str):
    return grpc.insecure_channel(target, options=[
        ("grpc.enable_http_proxy", 0),
        ("grpc.max_send_message_length", MAX_MSG),
        ("grpc.max_receive_message_length", MAX_MSG),
        ("grpc.use_local_subchannel_pool", 1),
        ("grpc.enable_retries", 0),
    ])


def describe(err: BaseException) -> str:
    if isinstance(err, grpc.RpcError):
        return f"{err.code()}: {err.details()}"
    return f"{type(err).__name__}: {err}" if not isinstance(
        err, Failure) else str(err)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target")
    ap.add_argument("--cases", default="")
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--small-iterations", type=int, default=30)
    ap.add_argument("--call-timeout", type=float, default=10.0)
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args(argv)
    names = [c for c, _ in CASES]
    if args.list:
        print("\n".join(names))
        return 0
    if not args.target or args.iterations < 0 or args.small_iterations < 0:
        ap.print_usage(sys.stderr)
        return 2
    run = CASES
    if args.cases:
        large = dict(CASES)
        run = []
        for c in args.cases.split(","):
            if c not in large:
                print(f"interop_client.py: unknown case {c!r}",
                      file=sys.stderr)
                return 2
            run.append((c, large[c]))

    def on_alarm(_signum, _frame):
        print("interop_client.py: watchdog: the run hangs", file=sys.stderr,
              flush=True)
        os._exit(1)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(args.timeout + args.call_timeout) + 10)

    start = time.monotonic()
    end = start + args.timeout
    channel = cases = None
    reconnect = False
    failed = 0
    for name, large in run:
        if channel is None:
            channel = new_channel(args.target)
            cases = Cases(channel, args.call_timeout)
        n = args.iterations if large else args.small_iterations
        res = {"case": name, "ok": True, "iterations": 0, "client": "python"}
        if reconnect:
            res["reconnected"] = True
        fn = getattr(cases, name)
        t0 = time.monotonic()
        for i in range(1, n + 1):
            if time.monotonic() > end:
                res.update(ok=False, error=f"iteration {i}: --timeout "
                           f"{args.timeout:g}s reached")
                break
            try:
                fn()
            except Exception as err:  # noqa: BLE001 (reported, not hidden)
                res.update(ok=False, error=f"iteration {i}: {describe(err)}")
                break
            res["iterations"] = i
        res["elapsed_s"] = round(time.monotonic() - t0, 3)
        reconnect = not res["ok"]
        if reconnect:
            failed += 1
            channel.close()
            channel = None
        print(json.dumps(res), flush=True)
    if channel is not None:
        channel.close()
    print(f"interop_client.py: {len(run) - failed} passed, {failed} failed "
          f"in {time.monotonic() - start:.1f}s", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
