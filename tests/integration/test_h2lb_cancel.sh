#!/usr/bin/env bash
# timeout: 180
#
# test_h2lb_cancel - cancellation and deadlines through h2lb, on ONE channel.
#
#   1. 8 server-streaming calls (a reply every 20 ms, 100,000 replies
#      asked for), each cancelled by the client after 3 replies. The calls
#      carry no deadline, so only the client's RST_STREAM, forwarded by
#      h2lb, can tell a backend: every backend handler must see its call
#      cancelled (probe_server.py counts it), and none may run to its end.
#   2. 8 unary calls with a 500 ms deadline that the server (3 s delay)
#      cannot meet: the client gets DEADLINE_EXCEEDED within the deadline
#      (+2 s) and each backend sees its call cancelled.
#   3. 40 more calls on the SAME channel (the same connection: h2lb accepted
#      one client connection in all) all succeed, on all four backends.
# The kernel counts a reset stream for every client cancel and holds no
# stream open at the end.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"

CALLS=${CALLS:-8}
FOLLOWUP=${FOLLOWUP:-40}
N=4

source "$TB_PEERS/probe.sh"
tb_require_cmd ip nsenter ss bpftool "$TB_PYTHON"

probe_testbed "$N" test_h2lb_cancel
clients0=$(daemon_clients)

echo "== $CALLS cancelled streams, $CALLS expired deadlines, then $FOLLOWUP calls, one channel"
out=$(probe_client --timeout 90 --call-timeout 20 cancel --calls "$CALLS" \
    --after 3 --tick-ms 20 --delay-ms 3000 --deadline-ms 500 \
    --followup "$FOLLOWUP") || fail "client: $out"
echo "   client: $out"
clients=$(($(daemon_clients) - clients0))
echo "   client connections accepted by h2lb: $clients"
"$TB_PYTHON" - "$out" "$CALLS" "$FOLLOWUP" "$N" "$clients" <<'PY' || fail "client side"
import json, sys
s = json.loads(sys.argv[1])
calls, followup, n, clients = map(int, sys.argv[2:])
assert s["cancelled"] == calls, ("cancelled", s["cancelled"])
assert s["deadline_exceeded"] == calls, ("deadline_exceeded", s["deadline_exceeded"])
assert s["ok"] == followup and s["errors"] == 0 and not s["problems"], s
assert len(s["by_backend"]) == n, f"follow-up calls reached only {sorted(s['by_backend'])}"
assert clients == 1, f"{clients} client connections, want 1 (the same channel throughout)"
PY

# The backends saw the cancellations. The client has returned already, so
# give the RST_STREAMs a moment (bounded) to land.
for ((i = 0; i < 50; i++)); do
    stats=$(probe_stats) || fail "cannot read the backends' counters"
    done_=$("$TB_PYTHON" - "$CALLS" <<PY
import json, sys
calls = int(sys.argv[1])
rows = [json.loads(l) for l in """$stats""".strip().splitlines()]
c = lambda key, m: sum(r[key].get(m, 0) for r in rows)
print(1 if c("cancelled", "Ticks") >= calls and c("cancelled", "Echo") >= calls else 0)
PY
)
    [[ $done_ == 1 ]] && break
    sleep 0.1
done
"$TB_PYTHON" - "$CALLS" "$FOLLOWUP" <<PY || fail "the backends did not see every cancellation"
import json, sys
calls, followup = map(int, sys.argv[1:])
rows = [json.loads(l) for l in """$stats""".strip().splitlines()]
c = lambda key, m: sum(r[key].get(m, 0) for r in rows)
for r in rows:
    print(f"   {r['name']}: calls {r['calls']} cancelled {r['cancelled']} completed {r['completed']}")
assert c("calls", "Ticks") == calls, ("Ticks calls", c("calls", "Ticks"))
assert c("cancelled", "Ticks") == calls, \
    f"backends saw {c('cancelled', 'Ticks')} of {calls} stream cancellations (RST_STREAM lost?)"
assert c("completed", "Ticks") == 0, "a cancelled stream ran to its end"
# Echo: 1 warm-up + the deadline calls + the follow-ups.
assert c("calls", "Echo") == 1 + calls + followup, ("Echo calls", c("calls", "Echo"))
assert c("cancelled", "Echo") == calls, \
    f"backends saw {c('cancelled', 'Echo')} of {calls} deadline cancellations"
assert c("completed", "Echo") == 1 + followup, ("Echo completed", c("completed", "Echo"))
assert sum(sum(r["failed"].values()) for r in rows) == 0, "a handler failed"
assert sum(r["inflight"] for r in rows) == 0, "calls still running on a backend"
PY

kernel=$(kernel_backends)
echo "$kernel" | sed 's/^/   kernel: /'
"$TB_PYTHON" - "$CALLS" "$FOLLOWUP" <<PY || fail "kernel counters disagree"
import json, sys
calls, followup = map(int, sys.argv[1:])
k = [json.loads(l) for l in """$kernel""".strip().splitlines()]
streams = sum(r["streams"] for r in k)
assert streams == 1 + 2 * calls + followup, ("streams", streams)
# Every client cancel resets an open stream. An expired deadline may not:
# the backend can end the call first (DEADLINE_EXCEEDED trailers), and
# the client's RST_STREAM then finds the stream closed.
resets = sum(r["resets"] for r in k)
assert resets >= calls, f"kernel saw {resets} reset streams, want >= {calls}"
print(f"   kernel: {streams} streams, {resets} ended by RST_STREAM, none open")
assert sum(r["open_streams"] for r in k) == 0, "kernel still counts open streams"
PY

h2lb_stop || fail "h2lb did not stop cleanly"
probe_passed
echo "PASS: $CALLS client cancels and $CALLS deadlines reached the backends; the same connection served $FOLLOWUP more calls"
