#!/usr/bin/env bash
# timeout: 180
#
# test_h2lb_node_grpc - Node's @grpc/grpc-js client through h2lb.
#
# 100 unary SayHello calls on ONE grpc-js channel (tests/peers/node/
# greeter_client.js, hand-written protobuf codec) to the four greeters
# behind h2lb: all succeed and all four backends serve some, by the
# client's view, by the backends' own counters and by the kernel's.
#
# Then 200 calls, 8 at a time, each answered with 256 KiB: grpc-js keeps
# its connection window at 65,535 bytes, so the legs take turns at it
# (docs/flow-control.md, "Connection windows"); every backend must serve
# at least 1/8 of the calls. With each refill starting from the first
# leg, the others starved and the least-streams policy sent 194 of the
# 200 to one backend.
#
# @grpc/grpc-js lives in tests/peers/node/node_modules (CI installs it:
# npm ci --prefix tests/peers/node). Missing, the test FAILS: it must not
# pass silently on a machine that cannot run it.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"

CALLS=${CALLS:-100}
N=4

source "$TB_PEERS/probe.sh"
tb_require_cmd ip nsenter ss bpftool "$TB_PYTHON"

source "$TB_PEERS/grpc_peers.sh"
require_grpc_js

tb_up "$N"
tb_start_greeters
h2lb_start
probe_keep_logs_on_failure test_h2lb_node_grpc
clients0=$(daemon_clients)

echo "== node $(node --version), $CALLS unary calls on one @grpc/grpc-js channel"
out=$(tb_run cli node "$NODE_DIR/greeter_client.js" --target "$H2LB_ADDR" \
    --calls "$CALLS" --timeout 60) || fail "node client failed: $out"
echo "   client: $out"
clients=$(($(daemon_clients) - clients0))
counts=$(tb_backend_counts SayHello) || fail "cannot read the greeters' counters"
echo "$counts" | sed 's/^/   backend /'
kernel=$(kernel_backends)
echo "   client connections accepted by h2lb: $clients"

"$TB_PYTHON" - "$out" "$CALLS" "$N" "$clients" <<PY || fail "see the assertion above"
import json, sys
s, calls, n, clients = json.loads(sys.argv[1]), *map(int, sys.argv[2:])
assert s["ok"] == calls and s["errors"] == 0, ("client", s)
assert clients == 1, f"{clients} client connections, want 1 (one channel)"
by = s["by_backend"]
assert len(by) == n and all(by.values()), f"calls reached {by}, want all {n} backends"
counts = dict(l.split() for l in """$counts""".strip().splitlines())
counts = {k: int(v) for k, v in counts.items()}
assert counts == by, f"greeters counted {counts}, client saw {by}"
k = [json.loads(l) for l in """$kernel""".strip().splitlines()]
assert [r["streams"] for r in k] == [by.get(f"backend-{i+1}", 0) for i in range(n)], \
    ("kernel per-backend streams differ", k)
assert sum(r["open_streams"] for r in k) == 0, "kernel still counts open streams"
print(f"   grpc-js {s['grpc_js']}: {calls} calls, split {by}")
PY

echo "== 200 calls, 8 at a time, answers of 256 KiB"
out=$(tb_run cli node "$NODE_DIR/greeter_client.js" --target "$H2LB_ADDR" \
    --calls 200 --concurrency 8 --reply-size 262144 --timeout 60) ||
    fail "node client failed: $out"
"$TB_PYTHON" - "$out" "$N" <<PY || fail "see the assertion above"
import json, sys
s, n = json.loads(sys.argv[1]), int(sys.argv[2])
assert s["ok"] == 200 and s["errors"] == 0, ("client", s)
by = s["by_backend"]
print(f"   split {by}, {s['elapsed_s']} s")
assert len(by) == n and min(by.values()) >= 200 // 8, \
    f"calls reached {by}: want every backend to serve at least 1/8"
PY

h2lb_stop || fail "h2lb did not stop cleanly"
probe_passed
echo "PASS: @grpc/grpc-js made $CALLS calls on one channel through h2lb, all $N backends served"
