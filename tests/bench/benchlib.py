#!/usr/bin/python3
"""Helpers of the h2lb benchmark (tests/bench/run.sh).

    benchlib.py snap [PID...]            CPU snapshot (JSON) of the whole box
                                         (/proc/stat) and of each PID's
                                         process tree
    benchlib.py cpudiff A.json B.json    CPU used between two snapshots (JSON)
    benchlib.py h2load OUT LOG DURATION  one result (JSON) from h2load's
                                         stdout and its --log-file
    benchlib.py h2lbdiff [A.json] B.json what h2lb's kernel counters did
                                         between two snapshots ("" for A:
                                         since the start)
    benchlib.py record KIND WORKLOAD TARGET REP TITLE RESULT.json
                       RECORDS.jsonl [CPU.json] [--h2lb DELTA.json]
                                         append one record (KIND: grpc,
                                         rate, bytes) to RECORDS.jsonl
    benchlib.py report RECORDS.jsonl RESULTS.json [META.json]
                                         print the comparison table, write
                                         the JSON document

grpc_bench.py imports snapshot()/cpu_diff() to measure exactly its own
measurement window.  All CPU figures are seconds of CPU time; "pct" is per
cent of ONE CPU (so 2 busy CPUs = 200 %).
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1
CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq",
              "steal")


# ------------------------------------------------------------------- CPU

def _proc_stat_cpu() -> dict:
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu "):
                vals = [int(v) for v in line.split()[1:1 + len(CPU_FIELDS)]]
                return dict(zip(CPU_FIELDS, vals))
    raise RuntimeError("no cpu line in /proc/stat")


def _all_procs() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, utime+stime ticks) of every live process."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                data = f.read()
        except OSError:
            continue
        # comm may hold spaces and parentheses: split after the last ')'.
        rest = data[data.rfind(")") + 2:].split()
        # rest[0] is field 3 (state): ppid = field 4, utime/stime = 14/15.
        out[int(name)] = (int(rest[1]), int(rest[11]) + int(rest[12]))
    return out


def _tree_ticks(procs: dict, root: int) -> int | None:
    if root not in procs:
        return None
    children: dict[int, list[int]] = {}
    for pid, (ppid, _t) in procs.items():
        children.setdefault(ppid, []).append(pid)
    total, todo, seen = 0, [root], set()
    while todo and len(seen) < 100000:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += procs[pid][1]
        todo.extend(children.get(pid, ()))
    return total


def snapshot(pids=()) -> dict:
    procs = _all_procs() if pids else {}
    return {
        "t": time.monotonic(),
        "cpu": _proc_stat_cpu(),
        "procs": {str(p): _tree_ticks(procs, int(p)) for p in pids},
    }


def cpu_diff(a: dict, b: dict) -> dict:
    """CPU used between snapshots a and b (a taken first)."""
    wall = max(1e-9, b["t"] - a["t"])
    d = {k: (b["cpu"][k] - a["cpu"][k]) / HZ for k in CPU_FIELDS}
    user = d["user"] + d["nice"]
    kernel = d["system"] + d["irq"] + d["softirq"]
    # Steal is time the host gave this machine's CPUs to others: not
    # ours, but a run that had much of it was disturbed (a row of its
    # own, so that a reader sees it).
    busy = user + kernel
    out = {
        "wall_s": round(wall, 3),
        "ncpu": NCPU,
        "box_user_s": round(user, 3),
        "box_kernel_s": round(kernel, 3),      # system + irq + softirq
        "box_softirq_s": round(d["softirq"], 3),
        "box_busy_s": round(busy, 3),
        "box_user_pct": round(100 * user / wall, 1),
        "box_kernel_pct": round(100 * kernel / wall, 1),
        "box_busy_pct": round(100 * busy / wall, 1),
        "box_steal_pct": round(100 * d["steal"] / wall, 1),
    }
    procs_s = None
    for pid, t0 in a.get("procs", {}).items():
        t1 = b.get("procs", {}).get(pid)
        if t0 is None or t1 is None:
            continue
        procs_s = (procs_s or 0.0) + (t1 - t0) / HZ
    if a.get("procs"):
        out["proxy_cpu_s"] = None if procs_s is None else round(procs_s, 3)
        out["proxy_pct"] = None if procs_s is None else \
            round(100 * procs_s / wall, 1)
    return out


# ----------------------------------------------------------------- h2load

def _pct(sorted_vals, p):
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1,
                   math.ceil(p / 100.0 * len(sorted_vals)) - 1))
    return sorted_vals[k]


def h2load_result(out_path: str, log_path: str, duration: float) -> dict:
    text = open(out_path, errors="replace").read()
    res: dict = {"tool": "h2load"}
    m = re.search(r"finished in ([\d.]+)s, ([\d.]+) req/s", text)
    if not m:
        res["error"] = "no 'finished in' line in h2load's output"
        return res
    res["req_per_s"] = float(m.group(2))
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, "
                  r"(\d+) succeeded, (\d+) failed, (\d+) errored, "
                  r"(\d+) timeout", text)
    if m:
        total, _st, done, ok, failed, errored, tmo = map(int, m.groups())
        res.update(requests=total, done=done, succeeded=ok, failed=failed,
                   errored=errored, timeout=tmo)
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, "
                  r"(\d+) 5xx", text)
    if m:
        res["non_2xx"] = sum(map(int, m.groups()[1:]))
    m = re.search(r"traffic: .*?, [\d.]+\w* \((\d+)\) data", text)
    if m and duration > 0:
        res["data_bytes"] = int(m.group(1))
        res["mib_per_s"] = round(int(m.group(1)) / duration / 2**20, 1)
    lat, bad = [], 0
    try:
        with open(log_path) as f:
            for line in f:
                cols = line.split("\t")
                if len(cols) < 3:
                    continue
                if cols[1] == "-1":
                    bad += 1
                    continue
                lat.append(int(cols[2]))
    except OSError:
        pass
    lat.sort()
    if lat:
        res["p50_us"] = float(_pct(lat, 50))
        res["p90_us"] = float(_pct(lat, 90))
        res["p99_us"] = float(_pct(lat, 99))
        res["mean_us"] = round(sum(lat) / len(lat), 1)
        res["max_us"] = float(lat[-1])
    res["log_failed"] = bad
    return res


# ------------------------------------------------------------------- h2lb

def _h2lb_counters(snap) -> dict:
    """The kernel's counters, summed over CPUs. The map holds one struct
    per CPU whose field names (from BTF, include/h2lb.h) are the
    counters' names."""
    out = {}
    for e in (snap or {}).get("counters") or []:
        for per_cpu in e.get("values") or []:
            fields = per_cpu.get("value")
            if not isinstance(fields, dict):
                continue  # an older h2lb: counters keyed by index
            for name, v in fields.items():
                out[name] = out.get(name, 0) + v
    return out


def _h2lb_backends(snap) -> dict:
    out = {}
    for e in (snap or {}).get("backends") or []:
        v = e.get("value")
        if not isinstance(v, dict) or not v.get("state"):
            continue
        out[str(e.get("key"))] = {k: v.get(k, 0) for k in (
            "streams", "resets", "bytes_to", "bytes_from")}
    return out


def h2lb_diff(a: dict | None, b: dict) -> dict:
    """What h2lb's kernel counters and per-backend stats did from a to b
    (a None: since the start)."""
    ca, cb = _h2lb_counters(a), _h2lb_counters(b)
    ba, bb = _h2lb_backends(a), _h2lb_backends(b)
    counters = {k: v - ca.get(k, 0) for k, v in cb.items()}
    backends = {i: {k: v - ba.get(i, {}).get(k, 0) for k, v in st.items()}
                for i, st in bb.items()}
    out = {"counters": counters,
           "streams_per_backend": [backends[i]["streams"]
                                   for i in sorted(backends, key=int)],
           "resets_per_backend": [backends[i]["resets"]
                                  for i in sorted(backends, key=int)]}
    if b.get("daemon") is not None:
        da = (a or {}).get("daemon") or {}
        out["daemon"] = {k: v - da.get(k, 0) for k, v in b["daemon"].items()
                         if isinstance(v, (int, float))}
        # events_by_type: an array indexed by enum h2lb_event_type
        ea = da.get("events_by_type") or []
        eb = b["daemon"].get("events_by_type")
        if isinstance(eb, list):
            out["daemon"]["events_by_type"] = [
                v - (ea[i] if i < len(ea) else 0) for i, v in enumerate(eb)]
    return out


# ----------------------------------------------------------------- record

def make_record(kind: str, workload: str, target: str, rep: int,
                title: str, result: dict, cpu: dict | None,
                h2lb: dict | None = None) -> dict:
    """The measured numbers of one run of WORKLOAD via TARGET.
    kind: "grpc" (grpc_bench.py output), "rate" or "bytes" (h2load)."""
    rec = {"workload": workload, "target": target, "rep": rep,
           "title": title,
           "cpu": cpu if cpu is not None else result.get("cpu")}
    notes = []
    if h2lb is not None:
        rec["h2lb_kernel"] = h2lb
        c = h2lb.get("counters", {})
        bad = {k: c[k] for k in ("refused", "no_target", "event_drop",
                                 "proto_err") if c.get(k)}
        if bad:
            notes.append("h2lb kernel counters: " + ", ".join(
                f"{k}={v}" for k, v in bad.items()))
        spb = h2lb.get("streams_per_backend") or []
        if len(spb) > 1:
            rec["spread"] = "/".join(map(str, spb))
    if result.get("error"):
        notes.append(result["error"])
    if kind == "grpc":
        rec.update(metric="calls/s", unit="", value=result.get("calls_per_s"),
                   ops_per_s=result.get("calls_per_s"),
                   errors=result.get("errors"), ok=result.get("ok"),
                   p50_us=result.get("p50_us"), p90_us=result.get("p90_us"),
                   p99_us=result.get("p99_us"), mean_us=result.get("mean_us"),
                   max_us=result.get("max_us"),
                   by_backend=result.get("by_backend"),
                   error_codes=result.get("error_codes"))
        if result.get("error_codes"):
            notes.append(f"error codes {result['error_codes']}")
        bb = result.get("by_backend") or {}
        if target != "direct" and bb:
            # The greeters' replies name the backend: the ground truth.
            rec["spread"] = "/".join(str(v) for _k, v in sorted(bb.items()))
    else:
        errors = None
        if "failed" in result:
            errors = (result["failed"] + result.get("timeout", 0)
                      + result.get("non_2xx", 0))
        rec.update(ops_per_s=result.get("req_per_s"), errors=errors,
                   p50_us=result.get("p50_us"), p90_us=result.get("p90_us"),
                   p99_us=result.get("p99_us"), mean_us=result.get("mean_us"),
                   max_us=result.get("max_us"),
                   h2load={k: result.get(k) for k in (
                       "requests", "done", "succeeded", "failed", "errored",
                       "timeout", "non_2xx", "data_bytes", "log_failed")})
        if kind == "bytes":
            rec.update(metric="MiB/s", unit="", value=result.get("mib_per_s"),
                       req_per_s=result.get("req_per_s"))
        else:
            rec.update(metric="req/s", unit="", value=result.get("req_per_s"))
        if result.get("req_per_s") is not None and not result.get("done"):
            notes.append("h2load: no request completed in the measured "
                         f"window (stalled? {result.get('data_bytes', 0)} "
                         "bytes of DATA received)")
        if errors:
            notes.append(f"h2load: {result.get('failed')} failed "
                         f"({result.get('errored')} errored), "
                         f"{result.get('timeout')} timeout, "
                         f"{result.get('non_2xx')} non-2xx of "
                         f"{result.get('requests')} requests")
    if rec.get("value") is None and not notes:
        notes.append("no result")
    if notes:
        rec["note"] = "; ".join(notes)
    return rec


# ----------------------------------------------------------------- report

TARGETS = ("direct", "l4", "floor", "h2lb", "h2lb-vip", "h2lb-fast",
           "haproxy", "nghttpx")

# (key of _flat(), label or None for the workload's metric, unit)
ROWS = [
    ("value", None, None),
    ("mean_us", "mean latency", "us"),
    ("p50_us", "p50 latency", "us"),
    ("p99_us", "p99 latency", "us"),
    ("errors", "errors", ""),
    ("spread", "requests per backend", ""),
    ("proxy_pct", "balancer process CPU", "%cpu"),
    ("box_user_pct", "box CPU, user", "%cpu"),
    ("box_kernel_pct", "box CPU, kernel", "%cpu"),
    ("box_us_per_op", "box CPU per 1,000 requests", "ms"),
    ("box_steal_pct", "stolen by the host", "%cpu"),
]
NO_RATIO = ("errors", "spread", "proxy_pct", "box_steal_pct")


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return f"{v:,}"
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def _flat(rec: dict) -> dict:
    """The numbers of one record, by ROWS key."""
    cpu = rec.get("cpu") or {}
    out = {k: rec.get(k) for k in ("value", "mean_us", "p50_us", "p99_us",
                                   "errors", "spread")}
    out["proxy_pct"] = cpu.get("proxy_pct")
    out["box_user_pct"] = cpu.get("box_user_pct")
    out["box_kernel_pct"] = cpu.get("box_kernel_pct")
    out["box_steal_pct"] = cpu.get("box_steal_pct")
    rate = rec.get("ops_per_s")
    if cpu.get("box_busy_s") is not None and rate and cpu.get("wall_s"):
        out["box_us_per_op"] = round(
            cpu["box_busy_s"] / cpu["wall_s"] / rate * 1e6, 1)
    else:
        out["box_us_per_op"] = None
    return out


def _best(runs: list[dict]) -> dict:
    """The run with the highest value (all metrics: higher is better)."""
    return max(runs, key=lambda r: (r.get("value") is not None,
                                    r.get("value") or 0))


ROUND_KEYS = ("value", "mean_us", "p99_us")


def _round_ratios(runs: list[dict], direct_runs: list[dict]) -> dict:
    """Median over rounds of (this target / direct in the same round).

    The rounds of one workload run every target in turn, so a target and
    direct in one round met the same host; the median of those ratios is
    steadier than the ratio of two best rounds picked apart, above all
    for p99 (one disturbed round moves a best-of pick, not a median)."""
    by_rep = {r.get("rep"): _flat(r) for r in direct_runs}
    out = {}
    for k in ROUND_KEYS:
        rs = []
        for r in runs:
            d = by_rep.get(r.get("rep"), {}).get(k)
            v = _flat(r).get(k)
            if isinstance(v, (int, float)) and isinstance(d, (int, float)) \
                    and d:
                rs.append(v / d)
        out[k] = round(_median(rs), 3) if rs else None
    return out


def _median(vals: list[float]) -> float:
    s = sorted(vals)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def report(records_path: str, results_path: str, meta: dict) -> int:
    recs = []
    with open(records_path) as f:
        for line in f:
            line = line.strip()
            if line:
                recs.append(json.loads(line))
    workloads: list[str] = []
    runs: dict[tuple[str, str], list[dict]] = {}
    for r in recs:
        if r["workload"] not in workloads:
            workloads.append(r["workload"])
        runs.setdefault((r["workload"], r["target"]), []).append(r)
    targets = [t for t in TARGETS if any(k[1] == t for k in runs)]
    reps = max((len(v) for v in runs.values()), default=1)

    doc = {"meta": meta, "workloads": []}
    table: list[list[str] | str] = []      # rows of cells, or a plain line
    def all_runs(w):
        return [r for t in targets for r in runs.get((w, t), [])]

    def round_cell(rr):
        v, p = rr.get("value"), rr.get("p99_us")
        return (f"{v:.2f}x" if v is not None else "-") + (
            f" / {p:.2f}x" if p is not None else "")

    for w in workloads:
        best = {t: _best(runs[(w, t)]) for t in targets if (w, t) in runs}
        first = next(iter(best.values()))
        flats = {t: _flat(r) for t, r in best.items()}
        direct = flats.get("direct", {})
        wdoc = {"workload": w, "title": first.get("title", w),
                "metric": first.get("metric"), "targets": {}}
        table.append(first.get("title", w))
        for key, label, unit in ROWS:
            if key == "value":
                label, unit = first.get("metric"), ""
            if all(flats.get(t, {}).get(key) is None for t in targets):
                continue
            cells = []
            for t in targets:
                v = flats.get(t, {}).get(key)
                cell = _fmt(v)
                d = direct.get(key)
                if (t != "direct" and key not in NO_RATIO
                        and isinstance(v, (int, float)) and d):
                    cell += f" ({v / d:.2f}x)"
                cells.append(cell)
            name = f"  {label}" + (f" [{unit}]" if unit else "")
            table.append([name] + cells)
        if reps > 1:
            table.append(["  (every round)"] + [
                " ".join(_fmt(r.get("value")) for r in runs[(w, t)])
                if (w, t) in runs else "-" for t in targets])
            if any(r.get("p99_us") is not None for r in all_runs(w)):
                table.append(["  (every round, p99 us)"] + [
                    " ".join(_fmt(r.get("p99_us")) for r in runs[(w, t)])
                    if (w, t) in runs else "-" for t in targets])
            if (w, "direct") in runs:
                table.append(["  (median of round ratios, value/p99)"] + [
                    round_cell(_round_ratios(runs[(w, t)],
                                              runs[(w, "direct")]))
                    if (w, t) in runs and t != "direct" else "-"
                    for t in targets])
        for t, r in best.items():
            fl = flats[t]
            entry = {"best": r, "runs": runs[(w, t)],
                     "values": [x.get("value") for x in runs[(w, t)]],
                     "box_us_per_op": fl["box_us_per_op"]}
            entry["ratio_to_direct"] = {
                k: (round(fl[k] / direct[k], 3)
                    if isinstance(fl.get(k), (int, float)) and direct.get(k)
                    else None)
                for k in ("value", "mean_us", "p50_us", "p99_us",
                          "box_us_per_op")
            } if t != "direct" and direct else None
            entry["round_ratio_median"] = (
                _round_ratios(runs[(w, t)], runs[(w, "direct")])
                if t != "direct" and (w, "direct") in runs else None)
            wdoc["targets"][t] = entry
        for t in targets:
            seen = set()
            for r in runs.get((w, t), []):
                n = r.get("note")
                if n and n not in seen:
                    seen.add(n)
                    table.append(f"  ! {t} (round {r.get('rep')}): {n}")
        doc["workloads"].append(wdoc)

    widths = [len("workload / metric")] + [len(t) for t in targets]
    for row in table:
        if isinstance(row, list):
            widths = [max(a, len(c)) for a, c in zip(widths, row)]

    def fmt_row(row):
        return (f"{row[0]:<{widths[0]}}" + "".join(
            f"  {c:>{wd}}" for c, wd in zip(row[1:], widths[1:])))
    head = fmt_row(["workload / metric"] + targets)
    lines = [head, "-" * len(head)]
    lines += [fmt_row(r) if isinstance(r, list) else r for r in table]
    lines.append("")
    lines.append(
        "(x) = ratio to direct.  Each cell: the best of "
        f"{reps} round(s).  %cpu = per cent of ONE CPU ({NCPU} CPUs = "
        f"{100 * NCPU}%).")
    if reps > 1:
        lines.append(
            "median of round ratios = the median over rounds of the target's "
            "figure / direct's in the same round (steadier than best/best).")
    lines.append(
        "balancer process CPU = the balancer's own processes (h2lb: the "
        "daemon; its datapath runs in the kernel).")
    lines.append(
        "box = the whole machine from /proc/stat (client, backends, "
        "balancer, kernel = system+irq+softirq, and anything else running).")
    lines.append(
        "stolen by the host = /proc/stat steal in that round: time the "
        "hypervisor gave this machine's CPUs to others (not in box CPU); "
        "a round with much of it was slowed by them.")
    for when in ("before", "after"):
        idle = meta.get(f"idle_cpu_{when}")
        if idle:
            lines.append(f"box CPU with no traffic of ours ({when}): "
                         f"{idle.get('box_busy_pct')} %cpu"
                         + ("   <-- other load: box numbers are noisy"
                            if (idle.get("box_busy_pct") or 0) > 15 else ""))
    for ph, info in (meta.get("h2lb_phases") or {}).items():
        if isinstance(info, dict) and "counters" in info:
            c = info["counters"]
            lines.append(f"{ph} kernel counters: " + ", ".join(
                f"{k}={v}" for k, v in c.items()))
            if info.get("daemon"):
                d = info["daemon"]
                lines.append(f"{ph} daemon: " + ", ".join(
                    f"{k}={v}" for k, v in d.items() if k != "pad"))
    print("\n".join(lines))
    os.makedirs(os.path.dirname(os.path.abspath(results_path)), exist_ok=True)
    tmp = results_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(tmp, results_path)
    return 0


# ------------------------------------------------------------------- main

def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[0], argv[1:]
    if cmd == "snap":
        print(json.dumps(snapshot([int(p) for p in args])))
    elif cmd == "cpudiff" and len(args) == 2:
        a, b = (json.load(open(p)) for p in args)
        print(json.dumps(cpu_diff(a, b)))
    elif cmd == "h2load" and len(args) == 3:
        print(json.dumps(h2load_result(args[0], args[1], float(args[2]))))
    elif cmd == "h2lbdiff" and len(args) == 2:
        a = json.load(open(args[0])) if args[0] else None
        print(json.dumps(h2lb_diff(a, json.load(open(args[1])))))
    elif cmd == "record" and len(args) >= 7:
        h2lb = None
        if "--h2lb" in args:
            i = args.index("--h2lb")
            try:
                h2lb = json.load(open(args[i + 1]))
            except (OSError, ValueError, IndexError):
                h2lb = None
            args = args[:i] + args[i + 2:]
        kind, workload, target, rep, title, res_path, records = args[:7]
        try:
            result = json.load(open(res_path))
        except (OSError, ValueError) as exc:
            result = {"error": f"no result ({exc.__class__.__name__})"}
        cpu = None
        if len(args) > 7 and args[7]:
            try:
                cpu = json.load(open(args[7]))
            except (OSError, ValueError):
                cpu = None
        rec = make_record(kind, workload, target, int(rep), title, result,
                          cpu, h2lb)
        with open(records, "a") as f:
            f.write(json.dumps(rec, separators=(",", ":")) + "\n")
    elif cmd == "report" and len(args) >= 2:
        meta = json.load(open(args[2])) if len(args) > 2 else {}
        return report(args[0], args[1], meta)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
