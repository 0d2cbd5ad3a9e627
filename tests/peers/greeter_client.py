#!/usr/bin/python3
"""h2lb test client: many gRPC calls to "h2lb.Greeter" over ONE channel.

    greeter_client.py --target HOST:PORT --calls N
        [--mode unary|server-stream|client-stream|bidi|stats]
        [--concurrency C] [--payload BYTES] [--reply-size BYTES] [--count K]
        [--delay-ms MS] [--deadline-ms MS] [--metadata-bytes B]
        [--wait-for-ready] [--print] [--json] [--allow-errors] [--timeout S]

All calls share a single grpc.insecure_channel, i.e. a single HTTP/2
connection: exactly the traffic an L4 balancer cannot spread.
--concurrency C keeps up to C calls in flight on that channel.

Per mode, one "call" is:
  unary          one SayHello
  server-stream  one SayHelloStream receiving --count replies
  client-stream  one Collect sending --count request messages
  bidi           one Chat doing --count ping-pongs (send one, await reply)
  stats          (ignores --calls) one Stats call; prints the server's JSON.
                 With --reset the server zeroes its counters afterwards.

--print prints "#N - Greeting: <first reply message>" per call (N 1-based,
in completion order; with --concurrency 1 that is call order).
--json prints one final summary line:
  {"ok":n,"errors":n,"by_backend":{"backend-1":n,...},"error_codes":{...},
   "elapsed_s":x, ...}
The backend of a call is parsed from its reply, "Hello from backend-X".

Exit status: 0 if every call succeeded (or --allow-errors), 1 otherwise,
2 on usage errors.  --timeout (default 120 s) bounds the whole run: no call
starts after it and every call's deadline ends by it.
Always run with /usr/bin/python3 (the Debian python with python3-grpcio).
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import os
import queue
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

import greeter_pb as pb  # noqa: E402

MAX_MSG = 64 * 1024 * 1024
MAX_METADATA = 1024 * 1024
PAD_HEADER = "x-h2lb-pad"
BACKEND_RE = re.compile(r"Hello from ([^:\s]+)")
MAX_ERROR_DETAILS = 5          # error details printed to stderr


def backend_of(message: str) -> str:
    m = BACKEND_RE.search(message or "")
    return m.group(1) if m else "?"


class Run:
    """Shared state of one client run (all counters under one lock)."""

    def __init__(self, args) -> None:
        self.args = args
        self.lock = threading.Lock()
        self.next_call = itertools.count()
        self.ok = 0
        self.errors = 0
        self.messages = 0
        self.by_backend: collections.Counter[str] = collections.Counter()
        self.error_codes: collections.Counter[str] = collections.Counter()
        self.error_details_printed = 0
        self.printed = 0
        self.t0 = time.monotonic()
        self.end = self.t0 + args.timeout

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def success(self, message: str, messages: int) -> None:
        backend = backend_of(message)
        with self.lock:
            self.ok += 1
            self.messages += messages
            self.by_backend[backend] += 1
            if self.args.print:
                self.printed += 1
                print(f"#{self.printed} - Greeting: {message}", flush=True)

    def failure(self, code: str, detail: str) -> None:
        with self.lock:
            self.errors += 1
            self.error_codes[code] += 1
            if self.error_details_printed < MAX_ERROR_DETAILS:
                self.error_details_printed += 1
                print(f"greeter_client: call failed: {code}: {detail}",
                      file=sys.stderr, flush=True)
            if self.args.print:
                self.printed += 1
                print(f"#{self.printed} - Error: {code}", flush=True)

    def summary(self, calls: int) -> dict:
        with self.lock:
            elapsed = time.monotonic() - self.t0
            return {
                "ok": self.ok,
                "errors": self.errors,
                "calls": calls,
                "mode": self.args.mode,
                "messages": self.messages,
                "by_backend": dict(sorted(self.by_backend.items())),
                "error_codes": dict(sorted(self.error_codes.items())),
                "elapsed_s": round(elapsed, 3),
                "calls_per_s": round(self.ok / elapsed, 1) if elapsed else 0,
            }


def make_request(args, name: str) -> pb.HelloRequest:
    return pb.HelloRequest(name=name, payload=b"p" * args.payload,
                           count=args.count, delay_ms=args.delay_ms,
                           reply_size=args.reply_size)


def call_once(run: Run, stubs: dict, index: int) -> None:
    """Do call number `index` (0-based) and record its outcome."""
    args = run.args
    timeout = run.remaining()
    if args.deadline_ms:
        timeout = min(timeout, args.deadline_ms / 1000.0)
    if timeout <= 0:
        run.failure("CLIENT_TIMEOUT", "overall --timeout reached")
        return
    metadata = ((PAD_HEADER, "m" * args.metadata_bytes),) \
        if args.metadata_bytes else None
    kw = {"timeout": timeout, "metadata": metadata,
          "wait_for_ready": args.wait_for_ready}
    name = f"call-{index + 1}"
    req_q: queue.Queue | None = None
    try:
        if args.mode == "unary":
            rep = stubs["SayHello"](make_request(args, name), **kw)
            run.success(rep.message, 1)
        elif args.mode == "server-stream":
            first, n = None, 0
            for rep in stubs["SayHelloStream"](make_request(args, name), **kw):
                first = rep.message if first is None else first
                n += 1
            want = max(1, args.count)
            if n != want:
                run.failure("SHORT_STREAM", f"got {n} of {want} replies")
            else:
                run.success(first or "", n)
        elif args.mode == "client-stream":
            n = max(1, args.count)
            reqs = (make_request(args, f"{name}.{i}") for i in range(n))
            rep = stubs["Collect"](reqs, **kw)
            run.success(rep.message, n)
        elif args.mode == "bidi":
            # Strict ping-pong: the next request is queued only after the
            # reply to the previous one arrived.  None ends the stream.
            want = max(1, args.count)
            req_q = queue.Queue()
            req_q.put(make_request(args, f"{name}.0"))
            first, n = None, 0
            for rep in stubs["Chat"](iter(req_q.get, None), **kw):
                first = rep.message if first is None else first
                n += 1
                if n < want:
                    req_q.put(make_request(args, f"{name}.{n}"))
                else:
                    req_q.put(None)
            if n != want:
                run.failure("SHORT_STREAM", f"got {n} of {want} replies")
            else:
                run.success(first or "", n)
        else:  # pragma: no cover - argparse restricts the choices
            raise ValueError(args.mode)
    except grpc.RpcError as exc:
        code = exc.code().name if exc.code() else "UNKNOWN"
        run.failure(code, exc.details() or "")
    except Exception as exc:  # noqa: BLE001 - any failure counts as error
        run.failure("CLIENT_EXCEPTION", repr(exc))
    finally:
        if req_q is not None:
            req_q.put(None)  # unblock grpc's request-consumer thread


def worker(run: Run, stubs: dict, calls: int) -> None:
    while True:
        with run.lock:
            index = next(run.next_call)
        if index >= calls:
            return
        if run.remaining() <= 0:
            # Account for every call that can no longer start.
            run.failure("CLIENT_TIMEOUT", "overall --timeout reached")
            continue
        call_once(run, stubs, index)


def make_stubs(channel: grpc.Channel) -> dict:
    ser, rep_de = pb.serialize, pb.deserialize_reply
    return {
        "SayHello": channel.unary_unary(
            pb.method_path("SayHello"), request_serializer=ser,
            response_deserializer=rep_de),
        "SayHelloStream": channel.unary_stream(
            pb.method_path("SayHelloStream"), request_serializer=ser,
            response_deserializer=rep_de),
        "Collect": channel.stream_unary(
            pb.method_path("Collect"), request_serializer=ser,
            response_deserializer=rep_de),
        "Chat": channel.stream_stream(
            pb.method_path("Chat"), request_serializer=ser,
            response_deserializer=rep_de),
        "Stats": channel.unary_unary(
            pb.method_path("Stats"), request_serializer=ser,
            response_deserializer=pb.deserialize_stats),
    }


def nonneg(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="Many gRPC calls to h2lb.Greeter over ONE channel.")
    ap.add_argument("--target", required=True, help="HOST:PORT")
    ap.add_argument("--calls", type=nonneg, default=1)
    ap.add_argument("--mode", default="unary",
                    choices=["unary", "server-stream", "client-stream",
                             "bidi", "stats"])
    ap.add_argument("--concurrency", type=int, default=1,
                    help="calls in flight at once on the one channel")
    ap.add_argument("--payload", type=nonneg, default=0,
                    help="request payload bytes (per message)")
    ap.add_argument("--reply-size", type=nonneg, default=0,
                    help="reply payload bytes (per message)")
    ap.add_argument("--count", type=nonneg, default=1,
                    help="messages per stream (streaming modes)")
    ap.add_argument("--delay-ms", type=nonneg, default=0,
                    help="server-side delay per reply")
    ap.add_argument("--deadline-ms", type=nonneg, default=0,
                    help="per-call deadline (0 = none besides --timeout)")
    ap.add_argument("--metadata-bytes", type=nonneg, default=0,
                    help=f"add a '{PAD_HEADER}' request header of that size")
    ap.add_argument("--wait-for-ready", action="store_true",
                    help="calls wait for the channel to connect instead of "
                         "failing fast while it is down")
    ap.add_argument("--print", action="store_true",
                    help='print "#N - Greeting: ..." for every call')
    ap.add_argument("--json", action="store_true",
                    help="print a final one-line JSON summary")
    ap.add_argument("--allow-errors", action="store_true",
                    help="exit 0 even if some calls failed")
    ap.add_argument("--reset", action="store_true",
                    help="stats mode: zero the server's counters")
    ap.add_argument("--tls-ca", metavar="PEM",
                    help="TLS, trusting this certificate")
    ap.add_argument("--tls-name", metavar="NAME",
                    help="the name the server's certificate must have")
    ap.add_argument("--timeout", type=float, default=120.0,
                    help="overall time limit in seconds (default 120)")
    args = ap.parse_args(argv)
    if not 1 <= args.concurrency <= 1000:
        ap.error("--concurrency must be 1..1000")
    if args.timeout <= 0:
        ap.error("--timeout must be > 0")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)

    # Hard stop: if anything hangs past the overall timeout, bail out.
    def on_alarm(_signum, _frame):
        print("greeter_client: hard timeout, exiting", file=sys.stderr,
              flush=True)
        os._exit(1)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(args.timeout) + 15)

    options = [
        ("grpc.enable_http_proxy", 0),
        ("grpc.max_send_message_length", MAX_MSG),
        ("grpc.max_receive_message_length", MAX_MSG),
        ("grpc.max_metadata_size", MAX_METADATA),
        # Keep this channel's connection private (no global subchannel
        # sharing), so "one channel" really means one HTTP/2 connection.
        ("grpc.use_local_subchannel_pool", 1),
    ]
    if args.tls_ca:
        with open(args.tls_ca, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        if args.tls_name:
            options.append(("grpc.ssl_target_name_override", args.tls_name))
        channel = grpc.secure_channel(args.target, creds, options=options)
    else:
        channel = grpc.insecure_channel(args.target, options=options)
    stubs = make_stubs(channel)

    if args.mode == "stats":
        try:
            rep = stubs["Stats"](pb.HelloRequest(
                name="reset" if args.reset else ""),
                timeout=min(args.timeout, 30.0),
                wait_for_ready=args.wait_for_ready)
        except grpc.RpcError as exc:
            print(f"greeter_client: Stats failed: {exc.code()}: "
                  f"{exc.details()}", file=sys.stderr)
            return 1
        finally:
            channel.close()
        print(json.dumps(rep.to_dict(), sort_keys=True,
                         separators=(",", ":")))
        return 0

    run = Run(args)
    nthreads = min(args.concurrency, max(1, args.calls))
    threads = [threading.Thread(target=worker, args=(run, stubs, args.calls),
                                name=f"call-{i}", daemon=True)
               for i in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        # Per-call deadlines end by run.end; allow a little slack.
        t.join(max(0.0, run.remaining()) + 10.0)
    hung = sum(t.is_alive() for t in threads)
    channel.close()

    summary = run.summary(args.calls)
    if hung:
        summary["hung_threads"] = hung
    if args.json:
        print(json.dumps(summary, separators=(",", ":")), flush=True)
    elif not args.print:
        print(f"greeter_client: {summary['ok']}/{args.calls} ok, "
              f"{summary['errors']} errors in {summary['elapsed_s']}s; "
              f"by backend {summary['by_backend']}", file=sys.stderr)
    all_ok = summary["ok"] == args.calls and not hung
    return 0 if all_ok or args.allow_errors else 1


if __name__ == "__main__":
    sys.exit(main())
