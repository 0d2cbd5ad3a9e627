#!/usr/bin/python3
"""Backend failure, seen from ONE gRPC channel through the balancer.

Phase 1: CALLS slow unary calls in flight (server delay); once they all
started, SIGKILL the backend VICTIM (its pid is given). Calls held by the
victim must fail with UNAVAILABLE, promptly, and only those.
Phase 2: more calls on the same channel: all succeed, none on the victim.
Phase 3: run RESTART (a shell command that starts the victim again), then
call until the victim serves a call again; report how long that took.

Prints one JSON line with what it saw; the test asserts on it.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import greeter_pb as pb  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--victim", required=True, help="backend name, e.g. backend-2")
    ap.add_argument("--victim-pid", type=int, required=True)
    ap.add_argument("--restart", required=True, help="shell command")
    ap.add_argument("--calls", type=int, default=40)
    ap.add_argument("--delay-ms", type=int, default=3000)
    args = ap.parse_args()

    ch = grpc.insecure_channel(args.target, options=[("grpc.enable_http_proxy", 0)])
    hello = ch.unary_unary(pb.method_path("SayHello"),
                           request_serializer=pb.serialize,
                           response_deserializer=pb.deserialize_reply)
    out = {"phase1": {}, "phase2": {}, "restart_s": None}

    # Phase 1: slow calls, then kill the victim while they are in flight.
    results = []
    lock = threading.Lock()

    def slow_call(i):
        t0 = time.monotonic()
        try:
            r = hello(pb.HelloRequest(name=f"slow-{i}", delay_ms=args.delay_ms),
                      timeout=30)
            res = ("OK", r.message.split()[-1], time.monotonic() - t0)
        except grpc.RpcError as e:
            res = (e.code().name, e.details(), time.monotonic() - t0)
        with lock:
            results.append(res)

    hello(pb.HelloRequest(name="warmup"), timeout=10)
    threads = [threading.Thread(target=slow_call, args=(i,)) for i in range(args.calls)]
    for t in threads:
        t.start()
    time.sleep(min(1.0, args.delay_ms / 3000.0))
    os.kill(args.victim_pid, signal.SIGKILL)
    for t in threads:
        t.join(timeout=40)
    ok = [r for r in results if r[0] == "OK"]
    failed = [r for r in results if r[0] != "OK"]
    out["phase1"] = {
        "ok": len(ok),
        "ok_on_victim": sum(1 for r in ok if r[1] == args.victim),
        "failed": len(failed),
        "codes": sorted({r[0] for r in failed}),
        "max_failed_s": max((r[2] for r in failed), default=0),
        "details": sorted({r[1] for r in failed})[:3],
    }

    # Phase 2: the same channel keeps working, without the victim.
    by = {}
    errors = 0
    for i in range(200):
        try:
            r = hello(pb.HelloRequest(name=f"after-{i}"), timeout=10)
            b = r.message.split()[-1]
            by[b] = by.get(b, 0) + 1
        except grpc.RpcError:
            errors += 1
    out["phase2"] = {"errors": errors, "by_backend": by}

    # Phase 3: the victim comes back and gets calls again.
    subprocess.run(["bash", "-c", args.restart], check=True)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 10:
        try:
            r = hello(pb.HelloRequest(name="back?"), timeout=5)
            if r.message.split()[-1] == args.victim:
                break
        except grpc.RpcError:
            pass
    else:
        t0 = None
    # Measured from the moment the restarted server listens.
    out["restart_s"] = None if t0 is None else round(time.monotonic() - t0, 3)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
