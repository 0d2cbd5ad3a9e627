#!/usr/bin/env bash
# timeout: 240
#
# test_h2lb_concurrent_streams - 1,000 streams in flight on ONE connection.
#
# One gRPC channel starts 1,000 unary calls at once; each backend holds
# every call until a common release time, so all 1,000 streams are open
# together (h2lb advertises SETTINGS_MAX_CONCURRENT_STREAMS 1000 by
# default). All must succeed, spread over all four backends; the backends'
# peak in-flight counts must add up to 1,000 (they really overlapped), and
# the kernel must count 1,000 streams and none left open.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"

CALLS=${CALLS:-1000}
HOLD=${HOLD:-5}      # seconds from the first call to the common release
N=4

source "$TB_PEERS/probe.sh"
tb_require_cmd ip nsenter ss bpftool "$TB_PYTHON"

probe_testbed "$N" test_h2lb_concurrent_streams
clients0=$(daemon_clients)

echo "== $CALLS concurrent calls on one channel, held ${HOLD}s by the servers"
out=$(probe_client --timeout 90 --call-timeout 60 concurrent --calls "$CALLS" \
    --hold "$HOLD") || fail "concurrent calls failed: $out"
echo "   client: $out"
stats=$(probe_stats) || fail "cannot read the backends' counters"
kernel=$(kernel_backends)
clients=$(($(daemon_clients) - clients0))
"$TB_PYTHON" -c '
import json, sys
for l in sys.stdin:
    r = json.loads(l)
    print("   %s: %d calls, peak %d in flight"
          % (r["name"], r["calls"].get("Echo", 0), r["peak_inflight"]))' <<<"$stats"
echo "$kernel" | sed 's/^/   kernel: /'
echo "   client connections accepted by h2lb: $clients"

"$TB_PYTHON" - "$out" "$CALLS" "$N" "$clients" <<PY || fail "see the assertion above"
import json, sys
s, calls, n, clients = json.loads(sys.argv[1]), *map(int, sys.argv[2:])
assert s["ok"] == calls and s["errors"] == 0 and not s["problems"], \
    ("client", s["ok"], s["errors"], s["problems"][:3])
assert clients == 1, f"{clients} client connections, want 1 (one channel)"
by = s["by_backend"]
assert len(by) == n, f"calls reached {sorted(by)}, want all {n} backends"
for b, c in by.items():
    # least-streams with all calls open at once: an even split; allow slack.
    assert c >= calls // n // 2, f"{b} served only {c} of {calls}"
rows = [json.loads(l) for l in """$stats""".strip().splitlines()]
served = sum(r["calls"].get("Echo", 0) for r in rows)
assert served == calls, f"backends served {served} calls, want {calls}"
assert {r["name"]: r["calls"].get("Echo", 0) for r in rows} == by, \
    "backends' counts differ from the client's"
peak = sum(r["peak_inflight"] for r in rows)
assert peak == calls, f"only {peak} calls were in flight at once, want {calls}"
k = [json.loads(l) for l in """$kernel""".strip().splitlines()]
assert sum(r["streams"] for r in k) == calls, ("kernel streams", k)
assert [r["streams"] for r in k] == [by.get(f"backend-{i+1}", 0) for i in range(n)], \
    ("kernel per-backend streams differ from the backends'", k)
assert sum(r["open_streams"] for r in k) == 0, "kernel still counts open streams"
PY

h2lb_stop || fail "h2lb did not stop cleanly"
probe_passed
echo "PASS: $CALLS calls in flight at once on one connection, all served, split over $N backends"
