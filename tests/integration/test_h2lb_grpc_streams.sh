#!/usr/bin/env bash
# timeout: 300
#
# test_h2lb_grpc_streams - gRPC streaming and large messages through h2lb.
#
# Four "h2lb.Probe" backends (tests/peers/probe_server.py) behind h2lb, ONE
# gRPC channel (tests/peers/probe_client.py), every message checked:
#   - server-streaming: 1,000 replies per call, in order, payloads verified
#   - client-streaming: 1,000 requests per call; the server reports count,
#     bytes, order and the sha256 of all payloads, which must match
#   - bidi ping-pong: 1,000 strict round trips per call, each reply checked
#   - a 4 MiB request (server echoes its length and sha256) and a 4 MiB
#     reply (content recomputed by the client)
# The backends' own counters and the kernel's per-backend counters must
# agree with what the client saw. On the fast path, the request bytes must
# have gone from the client's own socket (docs/fast-path.md).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"

CALLS=${CALLS:-4}            # calls per pattern
COUNT=${COUNT:-1000}         # messages per streaming call
MSG_SIZE=${MSG_SIZE:-100}    # payload bytes per streamed message
BIG=${BIG:-4194304}          # 4 MiB
N=4

source "$TB_PEERS/probe.sh"
tb_require_cmd ip nsenter ss bpftool "$TB_PYTHON"

probe_testbed "$N" test_h2lb_grpc_streams

echo "== streaming: $CALLS x (server-stream, client-stream, bidi) x $COUNT messages"
t0=$EPOCHREALTIME
out=$(probe_client --timeout 150 --call-timeout 60 streams --calls "$CALLS" \
    --count "$COUNT" --size "$MSG_SIZE") || fail "streaming calls failed: $out"
echo "   client: $out"
"$TB_PYTHON" - "$out" "$CALLS" <<'PY' || fail "streaming: client summary is wrong"
import json, sys
s, calls = json.loads(sys.argv[1]), int(sys.argv[2])
want = {"server-stream": calls, "client-stream": calls, "bidi": calls}
assert s["by_pattern"] == want, s["by_pattern"]
assert s["ok"] == 3 * calls and s["errors"] == 0 and not s["problems"], s
PY
stats=$(probe_stats) || fail "cannot read the backends' counters"
"$TB_PYTHON" - "$CALLS" "$COUNT" <<PY || fail "streaming: backends' counters disagree"
import json
calls, count = int("$CALLS"), int("$COUNT")
rows = [json.loads(l) for l in """$stats""".strip().splitlines()]
tot = lambda key, m: sum(r[key].get(m, 0) for r in rows)
for m in ("Ticks", "Sink", "PingPong"):
    assert tot("calls", m) == calls, (m, "calls", tot("calls", m))
    assert tot("completed", m) == calls, (m, "completed", tot("completed", m))
    assert tot("cancelled", m) == 0 and tot("failed", m) == 0, m
# Requests: 1 per Ticks call + count per Sink call + count per PingPong call.
want_in = calls * (1 + 2 * count)
got_in = sum(r["messages_in"] for r in rows)
assert got_in == want_in, ("messages_in", got_in, want_in)
# Replies: count per Ticks call + 1 per Sink call + count per PingPong call.
want_out = calls * (2 * count + 1)
got_out = sum(r["messages_out"] for r in rows)
assert got_out == want_out, ("messages_out", got_out, want_out)
print(f"   backends: {got_in} messages in, {got_out} out, as sent")
PY
echo "   took $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')s"

echo "== large messages: $CALLS x $BIG-byte request, $CALLS x $BIG-byte reply"
t0=$EPOCHREALTIME
out=$(probe_client --timeout 120 --call-timeout 60 big --calls "$CALLS" \
    --size "$BIG") || fail "large-message calls failed: $out"
echo "   client: $out"
"$TB_PYTHON" - "$out" "$CALLS" <<'PY' || fail "large messages: client summary is wrong"
import json, sys
s, calls = json.loads(sys.argv[1]), int(sys.argv[2])
assert s["ok"] == 2 * calls and s["errors"] == 0 and not s["problems"], s
PY
echo "   took $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')s"

# The kernel saw every stream, moved at least the payload bytes each way,
# and holds no stream open.
kernel=$(kernel_backends)
echo "$kernel" | sed 's/^/   kernel: /'
"$TB_PYTHON" - "$CALLS" "$COUNT" "$MSG_SIZE" "$BIG" <<PY || fail "kernel counters disagree"
import json, sys
calls, count, size, big = map(int, sys.argv[1:])
rows = [json.loads(l) for l in """$kernel""".strip().splitlines()]
streams = sum(r["streams"] for r in rows)
assert streams == 5 * calls, ("streams", streams, 5 * calls)
assert sum(r["open_streams"] for r in rows) == 0, "streams still open"
# DATA payload includes gRPC/protobuf framing, so >= the raw payloads.
to_min = calls * (2 * count * size + big)
from_min = calls * (2 * count * size + big)
to = sum(r["bytes_to"] for r in rows)
frm = sum(r["bytes_from"] for r in rows)
assert to >= to_min, ("bytes_to", to, to_min)
assert frm >= from_min, ("bytes_from", frm, from_min)
print(f"   kernel: {streams} streams, {to} bytes to backends, {frm} from them")
PY

# On the fast path (make test-fast-path), the client's frames went from
# its own socket to the legs once its connection switched: the digests
# and counts above were of what arrived that way.
if [[ ${H2LB_TEST_FAST_PATH:-0} == 1 ]]; then
    tx=$(h2lb_counter fast_path_tx) txb=$(h2lb_counter fast_path_tx_bytes)
    echo "   fast path: $tx connection(s) switched their requests, $txb bytes sent from the client's socket"
    ((tx >= 1 && txb >= CALLS * COUNT * MSG_SIZE)) ||
        fail "want the requests sent from the client's own socket: $tx switched, $txb bytes"
fi
h2lb_stop || fail "h2lb did not stop cleanly"
probe_passed
echo "PASS: streaming (3 x $CALLS x $COUNT messages) and ${BIG}-byte messages intact through h2lb"
