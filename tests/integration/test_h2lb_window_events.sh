#!/usr/bin/env bash
# timeout: 120
#
# test_h2lb_window_events - small connection WINDOW_UPDATEs do not wake
# the daemon (docs/flow-control.md, "Small WINDOW_UPDATEs wait for a
# mark").
#
# A gRPC unary call brings two connection WINDOW_UPDATEs, its client's
# and its backend's, each a few hundred bytes. Each was an event to the
# daemon, and nearly none led to a refill: 2.3 window events per call,
# 28-36 us of the daemon's CPU per call. Now they wait in the kernel until
# DATA passes the daemon's mark. 3,000 sequential unary calls on one
# grpcio channel over 4 backends must all succeed, with fewer window
# events than one per 50 calls; and beside them a client-streaming and a
# server-streaming call of 16 MiB each must move all their bytes (their
# windows, refilled on the marks, never run dry).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"

CALLS=3000
tb_up 4
tb_start_greeters
h2lb_start

sleep 0.2 # the daemon publishes its counters every 50 ms
before=$(h2lb_events window)
out=$(tb_run cli "$TB_PYTHON" "$TB_ROOT/tests/bench/grpc_bench.py" \
    --target "$H2LB_ADDR" --duration 60 --warmup 0 --max-calls "$CALLS") ||
    fail "the unary calls failed: $out"
sleep 0.2
after=$(h2lb_events window)
echo "   $CALLS unary calls: $((after - before)) window events"
"$TB_PYTHON" - "$out" "$CALLS" "$((after - before))" <<'PY' || fail "see above"
import json, sys
r, calls, events = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
assert r["ok"] == calls and r["errors"] == 0, r
assert len(r["by_backend"]) == 4, ("calls did not reach all 4 backends", r)
assert events * 50 < calls, f"{events} window events for {calls} calls"
PY

MIB=$((1 << 20))
tb_client --target "$H2LB_ADDR" --mode client-stream --calls 1 --count 16 \
    --payload "$MIB" --json >/dev/null || fail "the 16 MiB upload failed"
tb_client --target "$H2LB_ADDR" --mode server-stream --calls 1 --count 16 \
    --reply-size "$MIB" --json >/dev/null || fail "the 16 MiB download failed"
h2lb_stop || fail "h2lb did not stop cleanly"
echo "PASS: $CALLS unary gRPC calls made $((after - before)) window events; streams of 16 MiB moved in full"
