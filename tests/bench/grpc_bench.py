#!/usr/bin/python3
"""h2lb benchmark client: sequential unary gRPC calls on ONE channel.

    grpc_bench.py --target HOST:PORT [--duration S] [--warmup S]
                  [--max-calls N] [--timeout S]

Calls h2lb.Greeter/SayHello back to back (one in flight at a time) over a
single grpc.insecure_channel (one HTTP/2 connection), first for --warmup
seconds (not measured), then for --duration seconds, and prints one JSON
line:

  {"ok":n,"errors":n,"elapsed_s":x,"calls_per_s":x,
   "p50_us":x,"p90_us":x,"p99_us":x,"mean_us":x,"max_us":x,
   "by_backend":{"backend-1":n,...},"error_codes":{...}}

Latency is the client-side wall time of each measured call (stub call to
reply decoded).  With --cpu-pids P,..., "cpu" holds the CPU used over the
measured phase (benchlib.cpu_diff: whole box and those process trees).
--max-calls bounds the measured calls; --timeout (default
duration + warmup + 30 s) is a hard limit on the whole run.  Exit status:
0 if no call failed, 1 otherwise.  Run with /usr/bin/python3 (python3-grpcio).
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import re
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "peers"))

import grpc  # noqa: E402

import greeter_pb as pb  # noqa: E402

sys.path.insert(0, HERE)
import benchlib  # noqa: E402

BACKEND_RE = re.compile(r"Hello from ([^:\s]+)")
CALL_DEADLINE_S = 10.0


def pct(sorted_vals: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list (0 if empty)."""
    if not sorted_vals:
        return 0.0
    k = max(0, min(len(sorted_vals) - 1,
                   math.ceil(p / 100.0 * len(sorted_vals)) - 1))
    return sorted_vals[k]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", required=True)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--max-calls", type=int, default=10_000_000)
    ap.add_argument("--timeout", type=float, default=0.0)
    ap.add_argument("--cpu-pids", default="",
                    help="comma-separated PIDs whose process trees' CPU "
                         "time is measured over the measured phase")
    args = ap.parse_args(argv)
    if args.duration <= 0 or args.warmup < 0 or args.max_calls < 1:
        ap.error("bad --duration/--warmup/--max-calls")
    hard = args.timeout or args.duration + args.warmup + 30.0

    def on_alarm(_signum, _frame):
        print("grpc_bench: hard timeout, exiting", file=sys.stderr, flush=True)
        os._exit(1)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(hard) + 1)

    channel = grpc.insecure_channel(args.target, options=[
        ("grpc.enable_http_proxy", 0),
        ("grpc.use_local_subchannel_pool", 1),
    ])
    say = channel.unary_unary(pb.method_path("SayHello"),
                              request_serializer=pb.serialize,
                              response_deserializer=pb.deserialize_reply)
    req = pb.HelloRequest(name="bench")
    by_backend: collections.Counter[str] = collections.Counter()
    codes: collections.Counter[str] = collections.Counter()
    lat: list[float] = []
    errors = 0

    # Connect first (not measured), then warm up.
    try:
        grpc.channel_ready_future(channel).result(timeout=10)
    except grpc.FutureTimeoutError:
        print("grpc_bench: channel not ready after 10 s", file=sys.stderr)
        return 1
    now = time.monotonic
    end = now() + args.warmup
    while now() < end:
        try:
            say(req, timeout=CALL_DEADLINE_S)
        except grpc.RpcError as exc:
            print(f"grpc_bench: warm-up call failed: {exc.code()}",
                  file=sys.stderr)
            errors += 1
            if errors > 100:
                return 1
            time.sleep(0.01)
    errors = 0

    pids = [int(p) for p in args.cpu_pids.split(",") if p]
    snap0 = benchlib.snapshot(pids)
    t0 = now()
    end = t0 + args.duration
    while len(lat) + errors < args.max_calls:
        s = now()
        if s >= end:
            break
        try:
            rep = say(req, timeout=CALL_DEADLINE_S)
        except grpc.RpcError as exc:
            errors += 1
            codes[exc.code().name if exc.code() else "UNKNOWN"] += 1
            if errors <= 3:
                print(f"grpc_bench: call failed: {exc.code()}: "
                      f"{exc.details()}", file=sys.stderr)
            continue
        lat.append(now() - s)
        m = BACKEND_RE.search(rep.message or "")
        by_backend[m.group(1) if m else "?"] += 1
    elapsed = now() - t0
    snap1 = benchlib.snapshot(pids)
    channel.close()

    lat.sort()
    us = 1e6
    out = {
        "ok": len(lat),
        "errors": errors,
        "elapsed_s": round(elapsed, 3),
        "calls_per_s": round(len(lat) / elapsed, 1) if elapsed else 0.0,
        "p50_us": round(pct(lat, 50) * us, 1),
        "p90_us": round(pct(lat, 90) * us, 1),
        "p99_us": round(pct(lat, 99) * us, 1),
        "mean_us": round(sum(lat) / len(lat) * us, 1) if lat else 0.0,
        "max_us": round(lat[-1] * us, 1) if lat else 0.0,
        "by_backend": dict(sorted(by_backend.items())),
        "error_codes": dict(sorted(codes.items())),
        "cpu": benchlib.cpu_diff(snap0, snap1),
    }
    print(json.dumps(out, separators=(",", ":")), flush=True)
    return 0 if errors == 0 and lat else 1


if __name__ == "__main__":
    sys.exit(main())
