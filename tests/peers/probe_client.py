#!/usr/bin/python3
"""h2lb test client for the "h2lb.Probe" service (probe_server.py).

Every scenario runs on ONE grpc.aio channel (one HTTP/2 connection),
checks everything it can see from the client side, prints one JSON line
with what it saw, and exits 0 only if every check passed (1 otherwise).
Checks that fail are listed in "problems" (and on stderr).

    probe_client.py --target HOST:PORT SCENARIO [options]

Scenarios:
  stats [--reset]      the server's counters (JSON), one Stats call
  streams              server-streaming (Ticks), client-streaming (Sink)
                       and bidi ping-pong (PingPong), --count messages
                       each, --calls times each; every message checked
  big                  --calls Echo calls with a --size byte random
                       request (server echoes length and sha256), then
                       --calls Echo calls with a --size byte reply
                       (content recomputed and compared)
  concurrent           --calls Echo calls started at once, each held by
                       the server until a common release time (--hold s
                       after the start); all must succeed
  metadata             --calls Echo calls, --concurrency in flight, each
                       with --md-bytes of request metadata (split over
                       several headers, one of them unique per call);
                       the echoed size and digest must match.
                       --reply-md N asks for N bytes of response metadata.
  hpack                --calls Echo calls, --concurrency in flight,
                       started right when the channel is created, each
                       with distinct metadata (unique x-req-id, and
                       headers whose values repeat with variations); the
                       server's echo of every value must match
  cancel               --calls server-streaming calls cancelled after
                       --after messages, then --calls unary calls whose
                       deadline (--deadline-ms) expires while the server
                       waits (--delay-ms), then --followup unary calls on
                       the same channel, which must all succeed

Common: --timeout S bounds the whole run (default 120 s).
Always run with /usr/bin/python3 (python3-grpcio).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

import greeter_pb as pb  # noqa: E402

SERVICE = "h2lb.Probe"
MAX_MSG = 64 * 1024 * 1024
MAX_METADATA = 1024 * 1024
SMALL_VALUE = 256
MAX_PROBLEMS = 20


def pattern(tag: str, n: int) -> bytes:
    return hashlib.shake_256(tag.encode()).digest(n) if n > 0 else b""


def md_summary(md) -> dict:
    """What probe_server.md_summary computes, for the metadata we sent."""
    pairs = sorted((k, v) for k, v in md
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


class Result:
    def __init__(self, scenario: str) -> None:
        self.out: dict = {"scenario": scenario, "ok": 0, "errors": 0,
                          "by_backend": collections.Counter(),
                          "error_codes": collections.Counter()}
        self.problems: list[str] = []
        self.t0 = time.monotonic()

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)
            print(f"probe_client: {text}", file=sys.stderr, flush=True)
        self.out["problems_total"] = self.out.get("problems_total", 0) + 1

    def ok(self, backend: str | None) -> None:
        self.out["ok"] += 1
        self.out["by_backend"][backend or "?"] += 1

    def error(self, what: str, exc: BaseException) -> None:
        self.out["errors"] += 1
        code = exc.code().name if isinstance(exc, grpc.RpcError) and \
            exc.code() else type(exc).__name__
        self.out["error_codes"][code] += 1
        detail = exc.details() if isinstance(exc, grpc.aio.AioRpcError) \
            else repr(exc)
        self.problem(f"{what}: {code}: {detail}")

    def finish(self) -> int:
        self.out["elapsed_s"] = round(time.monotonic() - self.t0, 3)
        self.out["by_backend"] = dict(sorted(self.out["by_backend"].items()))
        self.out["error_codes"] = dict(self.out["error_codes"])
        self.out["problems"] = self.problems
        print(json.dumps(self.out, separators=(",", ":")), flush=True)
        return 0 if not self.problems and not self.out.get(
            "problems_total") else 1


class Stubs:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        ser, de = pb.serialize, pb.deserialize_reply

        def path(m):
            return f"/{SERVICE}/{m}"
        self.echo = channel.unary_unary(path("Echo"), request_serializer=ser,
                                        response_deserializer=de)
        self.ticks = channel.unary_stream(path("Ticks"),
                                          request_serializer=ser,
                                          response_deserializer=de)
        self.sink = channel.stream_unary(path("Sink"), request_serializer=ser,
                                         response_deserializer=de)
        self.ping_pong = channel.stream_stream(path("PingPong"),
                                               request_serializer=ser,
                                               response_deserializer=de)
        self.stats = channel.unary_unary(path("Stats"),
                                         request_serializer=ser,
                                         response_deserializer=de)


def make_channel(target: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(target, options=[
        ("grpc.enable_http_proxy", 0),
        ("grpc.max_send_message_length", MAX_MSG),
        ("grpc.max_receive_message_length", MAX_MSG),
        ("grpc.max_metadata_size", MAX_METADATA),
        ("grpc.use_local_subchannel_pool", 1),
        # Only this test's traffic on the connection: no keepalive pings.
        ("grpc.keepalive_time_ms", 3600 * 1000),
    ])


def parse(rep: pb.HelloReply) -> dict:
    return json.loads(rep.message)


# ---------------------------------------------------------------- scenarios

async def sc_stats(args, stubs: Stubs, res: Result) -> None:
    rep = await stubs.stats(pb.HelloRequest(name="reset" if args.reset
                                            else ""), timeout=20,
                            wait_for_ready=True)
    print(rep.message, flush=True)
    res.out = None  # type: ignore[assignment]


async def sc_streams(args, stubs: Stubs, res: Result) -> None:
    n = args.count
    res.out["count"] = n
    res.out["calls_each"] = args.calls
    res.out["by_pattern"] = {}
    for k in range(args.calls):
        # Server-streaming: n replies, in order, payload verified.
        tag = f"ticks-{k}"
        try:
            seqs, backends = [], set()
            async for rep in stubs.ticks(pb.HelloRequest(
                    name=tag, count=n, reply_size=args.size),
                    timeout=args.call_timeout, wait_for_ready=True):
                d = parse(rep)
                if rep.payload != pattern(f"{tag}.{d['seq']}", args.size):
                    res.problem(f"{tag}: bad payload in reply {d['seq']}")
                seqs.append(d["seq"])
                backends.add(d["backend"])
            if seqs != list(range(n)):
                res.problem(f"{tag}: got {len(seqs)} replies, want {n} "
                            f"in order (first bad at "
                            f"{next((i for i, s in enumerate(seqs) if s != i), len(seqs))})")
            elif len(backends) != 1:
                res.problem(f"{tag}: replies from {sorted(backends)}")
            else:
                res.ok(backends.pop())
                res.out["by_pattern"]["server-stream"] = \
                    res.out["by_pattern"].get("server-stream", 0) + 1
        except grpc.RpcError as exc:
            res.error(tag, exc)

        # Client-streaming: n requests; the server reports count, bytes,
        # digest and order.
        tag = f"sink-{k}"
        rng = random.Random(tag)
        payloads = [rng.randbytes(args.size) for _ in range(n)]

        async def gen():
            for i, p in enumerate(payloads):
                yield pb.HelloRequest(name=str(i), payload=p)
        try:
            d = parse(await stubs.sink(gen(), timeout=args.call_timeout,
                                       wait_for_ready=True))
            want = {"count": n, "bytes": n * args.size, "in_order": True,
                    "sha256": hashlib.sha256(b"".join(payloads)).hexdigest()}
            got = {key: d.get(key) for key in want}
            if got != want:
                res.problem(f"{tag}: server saw {got}, want {want}")
            else:
                res.ok(d["backend"])
                res.out["by_pattern"]["client-stream"] = \
                    res.out["by_pattern"].get("client-stream", 0) + 1
        except grpc.RpcError as exc:
            res.error(tag, exc)

        # Bidi ping-pong: send one, wait for its reply, n times.
        tag = f"pingpong-{k}"
        call = stubs.ping_pong(timeout=args.call_timeout, wait_for_ready=True)
        try:
            backends = set()
            good = 0
            for i in range(n):
                p = pattern(f"{tag}.{i}", args.size)
                await call.write(pb.HelloRequest(name=str(i), payload=p))
                rep = await call.read()
                if rep is grpc.aio.EOF:
                    res.problem(f"{tag}: stream ended after {i} replies")
                    break
                d = parse(rep)
                if d["seq"] != str(i) or rep.payload != p:
                    res.problem(f"{tag}: reply {i} is {d['seq']!r}"
                                f" (payload {'ok' if rep.payload == p else 'bad'})")
                    break
                backends.add(d["backend"])
                good += 1
            await call.done_writing()
            extra = await call.read()
            if extra is not grpc.aio.EOF:
                res.problem(f"{tag}: unexpected extra reply")
            if await call.code() != grpc.StatusCode.OK:
                res.problem(f"{tag}: status {await call.code()}")
            elif good == n and len(backends) == 1:
                res.ok(backends.pop())
                res.out["by_pattern"]["bidi"] = \
                    res.out["by_pattern"].get("bidi", 0) + 1
            elif good == n:
                res.problem(f"{tag}: replies from {sorted(backends)}")
        except grpc.RpcError as exc:
            res.error(tag, exc)


async def sc_big(args, stubs: Stubs, res: Result) -> None:
    size = args.size
    res.out["size"] = size
    for k in range(args.calls):
        tag = f"big-req-{k}"
        payload = random.Random(tag).randbytes(size)
        try:
            d = parse(await stubs.echo(
                pb.HelloRequest(name=tag, payload=payload),
                timeout=args.call_timeout, wait_for_ready=True))
            want = hashlib.sha256(payload).hexdigest()
            if d["len"] != size or d["sha256"] != want:
                res.problem(f"{tag}: server got {d['len']} bytes "
                            f"sha256 {d['sha256'][:16]}, want {size} "
                            f"{want[:16]}")
            else:
                res.ok(d["backend"])
        except grpc.RpcError as exc:
            res.error(tag, exc)
    for k in range(args.calls):
        tag = f"big-rep-{k}"
        try:
            rep = await stubs.echo(pb.HelloRequest(name=tag, reply_size=size),
                                   timeout=args.call_timeout,
                                   wait_for_ready=True)
            d = parse(rep)
            if rep.payload != pattern(tag, size):
                res.problem(f"{tag}: reply payload of {len(rep.payload)} "
                            f"bytes differs from the {size} bytes sent")
            else:
                res.ok(d["backend"])
        except grpc.RpcError as exc:
            res.error(tag, exc)


async def sc_concurrent(args, stubs: Stubs, res: Result) -> None:
    n = args.calls
    # Connect first, so that the hold time is not eaten by the handshake.
    release = time.time() + args.hold
    md = (("x-probe-hold-until", f"{release:.3f}"),)
    started = time.monotonic()

    async def one(i):
        tag = f"conc-{i}"
        try:
            d = parse(await stubs.echo(pb.HelloRequest(name=tag),
                                       metadata=md,
                                       timeout=args.call_timeout,
                                       wait_for_ready=True))
            if d["tag"] != tag:
                res.problem(f"{tag}: reply is for {d['tag']}")
            else:
                res.ok(d["backend"])
        except grpc.RpcError as exc:
            res.error(tag, exc)
    await asyncio.gather(*(one(i) for i in range(n)))
    res.out["calls"] = n
    res.out["hold_s"] = args.hold
    res.out["wall_s"] = round(time.monotonic() - started, 3)


def big_metadata(tag: str, nbytes: int) -> list[tuple[str, str]]:
    """About nbytes of metadata in four headers of distinct content."""
    md = [("x-req-id", tag)]
    left = max(0, nbytes - sum(len(k) + len(v) for k, v in md))
    rng = random.Random(tag)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    for j in range(4):
        key = f"x-big-{j}"
        n = left // (4 - j) - len(key)
        left -= n + len(key)
        md.append((key, "".join(rng.choice(alphabet) for _ in range(n))))
    return md


def check_echo(res: Result, tag: str, md, d: dict) -> bool:
    want = md_summary(md)
    if d.get("tag") != tag:
        res.problem(f"{tag}: reply is for {d.get('tag')!r}")
        return False
    if d["md_bytes"] != want["md_bytes"] or d["md_sha256"] != want["md_sha256"]:
        diff = {k: (v, d["md"].get(k)) for k, v in want["md"].items()
                if d["md"].get(k) != v}
        extra = sorted(set(d["md"]) - set(want["md"]))
        res.problem(f"{tag}: server saw {d['md_bytes']} metadata bytes, "
                    f"sent {want['md_bytes']}; differing {str(diff)[:300]}"
                    f"{' extra ' + str(extra) if extra else ''}")
        return False
    return True


async def run_bounded(n: int, concurrency: int, fn) -> None:
    sem = asyncio.Semaphore(concurrency)

    async def one(i):
        async with sem:
            await fn(i)
    await asyncio.gather(*(one(i) for i in range(n)))


async def sc_metadata(args, stubs: Stubs, res: Result) -> None:
    res.out["md_bytes"] = args.md_bytes
    res.out["reply_md"] = args.reply_md

    async def one(i):
        tag = f"md-{i}"
        md = big_metadata(tag, args.md_bytes)
        sent = md + ([("x-probe-reply-md", str(args.reply_md))]
                     if args.reply_md else [])
        try:
            call = stubs.echo(pb.HelloRequest(name=tag,
                                              reply_size=args.size),
                              metadata=tuple(sent),
                              timeout=args.call_timeout, wait_for_ready=True)
            rep = await call
            d = parse(rep)
            good = check_echo(res, tag, md, d)
            if rep.payload != pattern(tag, args.size):
                res.problem(f"{tag}: reply payload differs")
                good = False
            if args.reply_md:
                im = await call.initial_metadata()
                big = [v for k, v in im if k == "x-probe-big"]
                if big != ["r" * args.reply_md]:
                    res.problem(f"{tag}: response metadata x-probe-big has "
                                f"{[len(v) for v in big]} bytes, want "
                                f"[{args.reply_md}]")
                    good = False
            if good:
                res.ok(d["backend"])
        except grpc.RpcError as exc:
            res.error(tag, exc)
    await run_bounded(args.calls, args.concurrency, one)


USERS = [f"user-{i:03d}@example.test" for i in range(40)]
PATHS = ["/orders", "/orders/items", "/cart", "/checkout", "/profile"]


def churn_metadata(i: int, rng: random.Random) -> list[tuple[str, str]]:
    """Metadata whose values partly repeat and partly vary per call, so an
    HPACK encoder keeps inserting into and evicting from its table."""
    return [
        ("x-req-id", f"req-{i:06d}-{rng.getrandbits(64):016x}"),
        ("x-user", rng.choice(USERS)),
        ("x-tenant", f"tenant-{i % 7}"),
        ("x-route", f"{rng.choice(PATHS)}/{i % 13}"),
        ("x-trace", f"{rng.getrandbits(128):032x}-{i % 3}"),
        ("x-attempt", str(i % 5)),
        ("x-blob", "v" * (50 + (i * 37) % 400)),
    ]


async def sc_hpack(args, stubs: Stubs, res: Result) -> None:
    # No channel_ready() wait: the first calls are queued before the
    # connection exists and go out together with the client's preface,
    # i.e. before it has acked the balancer's SETTINGS.
    rng = random.Random(1234)
    mds = [churn_metadata(i, rng) for i in range(args.calls)]
    first_done: list[float] = []

    async def one(i):
        tag = f"hp-{i}"
        try:
            d = parse(await stubs.echo(pb.HelloRequest(name=tag),
                                       metadata=tuple(mds[i]),
                                       timeout=args.call_timeout,
                                       wait_for_ready=True))
            if check_echo(res, tag, mds[i], d):
                # Compare every echoed value, too (long ones by digest).
                for k, v in md_summary(mds[i])["md"].items():
                    if d["md"].get(k) != v:
                        res.problem(f"{tag}: {k} echoed as "
                                    f"{str(d['md'].get(k))[:80]!r}, sent "
                                    f"{str(v)[:80]!r}")
                        return
                res.ok(d["backend"])
                if i < args.concurrency:
                    first_done.append(d["backend"])
        except grpc.RpcError as exc:
            res.error(tag, exc)
    await run_bounded(args.calls, args.concurrency, one)
    res.out["calls"] = args.calls
    res.out["first_wave_backends"] = dict(collections.Counter(first_done))


async def sc_cancel(args, stubs: Stubs, res: Result) -> None:
    out = res.out
    out["cancelled"] = 0
    out["deadline_exceeded"] = 0
    await asyncio.wait_for(stubs.echo(pb.HelloRequest(name="warmup"),
                                      wait_for_ready=True), 20)

    # 1. Server-streaming calls, cancelled by the client mid-stream.  No
    #    deadline: only the client's RST_STREAM can tell the server.
    async def cancel_one(i):
        tag = f"cancel-{i}"
        call = stubs.ticks(pb.HelloRequest(name=tag, count=100000,
                                           delay_ms=args.tick_ms))
        got = 0
        try:
            async with asyncio.timeout(args.call_timeout):
                async for rep in call:
                    if parse(rep)["seq"] != got:
                        res.problem(f"{tag}: reply {got} out of order")
                    got += 1
                    if got >= args.after:
                        call.cancel()
                        break
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                res.error(tag, exc)
                return
        except TimeoutError:
            res.problem(f"{tag}: only {got} messages in "
                        f"{args.call_timeout}s")
            call.cancel()
            return
        if got < args.after:
            res.problem(f"{tag}: stream ended after {got} messages")
            return
        if not call.cancelled():
            res.problem(f"{tag}: call not cancelled")
            return
        out["cancelled"] += 1
    await asyncio.gather(*(cancel_one(i) for i in range(args.calls)))

    # 2. Unary calls whose deadline expires while the server waits.
    async def deadline_one(i):
        tag = f"deadline-{i}"
        t0 = time.monotonic()
        try:
            await stubs.echo(pb.HelloRequest(name=tag,
                                             delay_ms=args.delay_ms),
                             timeout=args.deadline_ms / 1000.0)
            res.problem(f"{tag}: succeeded despite its deadline")
        except grpc.RpcError as exc:
            took = time.monotonic() - t0
            if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                res.error(tag, exc)
            elif took > args.deadline_ms / 1000.0 + 2.0:
                res.problem(f"{tag}: DEADLINE_EXCEEDED only after "
                            f"{took:.2f}s")
            else:
                out["deadline_exceeded"] += 1
    await asyncio.gather(*(deadline_one(i) for i in range(args.calls)))

    # 3. The same channel carries on.
    async def follow(i):
        tag = f"after-{i}"
        try:
            d = parse(await stubs.echo(pb.HelloRequest(name=tag),
                                       timeout=args.call_timeout))
            if d["tag"] != tag:
                res.problem(f"{tag}: reply is for {d['tag']}")
            else:
                res.ok(d["backend"])
        except grpc.RpcError as exc:
            res.error(tag, exc)
    await run_bounded(args.followup, 4, follow)
    out["followup"] = args.followup
    for what, n in (("cancelled", out["cancelled"]),
                    ("deadline_exceeded", out["deadline_exceeded"]),
                    ("followup ok", out["ok"])):
        want = args.followup if what == "followup ok" else args.calls
        if n != want:
            res.problem(f"{what}: {n} of {want}")


SCENARIOS = {
    "stats": sc_stats, "streams": sc_streams, "big": sc_big,
    "concurrent": sc_concurrent, "metadata": sc_metadata,
    "hpack": sc_hpack, "cancel": sc_cancel,
}


async def amain(args) -> int:
    res = Result(args.scenario)
    channel = make_channel(args.target)
    stubs = Stubs(channel)
    try:
        if args.scenario == "concurrent":
            await asyncio.wait_for(channel.channel_ready(), 20)
        await asyncio.wait_for(SCENARIOS[args.scenario](args, stubs, res),
                               args.timeout)
    except asyncio.TimeoutError:
        res.problem(f"scenario did not finish within {args.timeout}s")
    except grpc.RpcError as exc:
        if args.scenario == "stats":
            print(f"probe_client: Stats failed: {exc.code()}: "
                  f"{exc.details()}", file=sys.stderr)
            return 1
        res.error(args.scenario, exc)
    finally:
        await channel.close()
    if res.out is None:
        return 0
    return res.finish()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target", required=True)
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("--calls", type=int, default=1)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--size", type=int, default=0,
                    help="payload bytes (streams: per message)")
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--hold", type=float, default=3.0)
    ap.add_argument("--md-bytes", type=int, default=32768)
    ap.add_argument("--reply-md", type=int, default=0)
    ap.add_argument("--after", type=int, default=3)
    ap.add_argument("--tick-ms", type=int, default=20)
    ap.add_argument("--delay-ms", type=int, default=3000)
    ap.add_argument("--deadline-ms", type=int, default=500)
    ap.add_argument("--followup", type=int, default=40)
    ap.add_argument("--call-timeout", type=float, default=60.0)
    ap.add_argument("--reset", action="store_true")
    ap.add_argument("--timeout", type=float, default=120.0)
    args = ap.parse_args(argv)
    # Hard stop: grpc threads must not keep a hung client alive.
    import signal

    def on_alarm(_s, _f):
        print("probe_client: hard timeout, exiting", file=sys.stderr,
              flush=True)
        os._exit(1)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(args.timeout) + 20)
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
