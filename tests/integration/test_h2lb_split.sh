#!/usr/bin/env bash
# timeout: 600
#
# test_h2lb_split - the heart of h2lb: per-stream balancing.
#
# The same four greeters, the same client, ONE gRPC channel: behind the L4
# balancer all calls land on one backend; through h2lb each backend serves a
# quarter of them. The backends' own counters are the ground truth, and the
# kernel's per-backend stream counts must agree with them.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"

L4_CALLS=${L4_CALLS:-1000}
CALLS=${CALLS:-10000}
N=4

tb_require_cmd ip nsenter iptables ss bpftool "$TB_PYTHON"

# "NAME CALLS" per backend, SayHello only, from the backends themselves.
split() {
    tb_backend_counts SayHello
}

tb_up "$N"
tb_start_greeters

echo "== L4 baseline: $L4_CALLS calls on one channel through iptables DNAT"
tb_l4_on "$TB_GREETER_PORT"
tb_client --target "$TB_VIP:$TB_GREETER_PORT" --calls "$L4_CALLS" --json \
    >/dev/null || fail "L4 client failed"
l4=$(split)
echo "$l4" | sed 's/^/   /'
[[ $(awk -v n="$L4_CALLS" '$2 == n' <<<"$l4" | wc -l) == 1 ]] ||
    fail "L4: want one backend with all $L4_CALLS calls"
[[ $(awk '$2 == 0' <<<"$l4" | wc -l) == $((N - 1)) ]] ||
    fail "L4: want $((N - 1)) idle backends"
tb_l4_off
tb_reset_counts

echo "== h2lb: $CALLS calls on one channel"
h2lb_start
summary=$(tb_client --target "$H2LB_ADDR" --calls "$CALLS" --json --timeout 300) ||
    fail "client failed: $summary"
echo "   client: $summary"
"$TB_PYTHON" - "$summary" "$CALLS" <<'PY' || fail "client saw errors"
import json, sys
s = json.loads(sys.argv[1])
sys.exit(0 if s["ok"] == int(sys.argv[2]) and s["errors"] == 0 else 1)
PY
got=$(split)
echo "$got" | sed 's/^/   /'
"$TB_PYTHON" - "$CALLS" "$N" <<PY || fail "split is not 25% +/- 3% each"
import sys
calls, n = int(sys.argv[1]), int(sys.argv[2])
counts = [int(l.split()[1]) for l in """$got""".strip().splitlines()]
assert len(counts) == n and sum(counts) == calls, counts
for c in counts:
    share = 100.0 * c / calls
    print(f"   share {share:.2f}%")
    assert abs(share - 100.0 / n) <= 3.0, share
PY

# The kernel counted the same streams per backend as the backends did.
kernel=$(h2lb_map backends | "$TB_PYTHON" -c '
import json, sys
for e in json.load(sys.stdin):
    v = e["value"]
    if v["state"] != 0:
        print(v["streams"], v["open_streams"])
')
echo "   kernel streams/open per backend: $(echo $kernel)"
[[ $(awk '{print $1}' <<<"$kernel" | paste -sd+ | bc) == "$CALLS" ]] ||
    fail "kernel counted $(awk '{s+=$1} END {print s}' <<<"$kernel") streams, want $CALLS"
[[ $(awk '{s+=$2} END {print s}' <<<"$kernel") == 0 ]] ||
    fail "kernel still counts open streams after every call ended"

h2lb_stop || fail "h2lb did not stop cleanly"
echo "PASS: L4 sent all calls to one backend; h2lb split $CALLS calls evenly"
