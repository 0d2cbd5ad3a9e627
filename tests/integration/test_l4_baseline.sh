#!/usr/bin/env bash
# shellcheck disable=SC2119 # the tb_* functions take optional arguments
# timeout: 300
#
# test_l4_baseline - the problem h2lb solves, reproduced.
#
# Four gRPC backends behind a kube-proxy-style L4 balancer (iptables DNAT of
# the VIP with a random choice per *connection*).  A gRPC client makes 1,000
# unary calls over ONE channel, i.e. one HTTP/2 connection: L4 picks a
# backend once, when the connection opens, so one backend serves all 1,000
# calls and the other three none.  The backends' own counters prove it.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh" --no-h2lb

CALLS=${CALLS:-1000}
N=4

tb_require_cmd ip nsenter iptables ss "$TB_PYTHON"

tb_up "$N"
tb_start_greeters
tb_l4_on "$TB_GREETER_PORT"

echo "== $CALLS unary calls on one channel to $TB_VIP:$TB_GREETER_PORT (L4 DNAT)"
# Output to a file, not $(...): bash runs the cleanup trap only once a
# command substitution has ended, while tb_client's wait is interruptible.
out=$TB_STATE/client.json
tb_client --target "$TB_VIP:$TB_GREETER_PORT" --calls "$CALLS" \
    --mode unary --json --timeout 120 >"$out" || fail "client failed: $(<"$out")"
summary=$(<"$out")
echo "client: $summary"

ok=$("$TB_PYTHON" -c 'import json,sys; print(json.loads(sys.argv[1])["ok"])' "$summary")
[[ $ok == "$CALLS" ]] || fail "client saw $ok ok calls, want $CALLS"

# The ground truth: what each backend says it served ("NAME CALLS PEERS").
stats=$(tb_backend_stats) || fail "cannot read the backends' counters"
counts=$("$TB_PYTHON" -c '
import json, sys
for line in sys.stdin:
    s = json.loads(line)
    print(s["name"], s["calls"].get("SayHello", 0), len(s["peer_calls"]))
' <<<"$stats")

echo "== split of SayHello calls by the backends' own counters:"
busy=0 idle=0 total=0
while read -r name n peers; do
    printf '   %s: %4d calls from %d client connection(s)\n' "$name" "$n" "$peers"
    total=$((total + n))
    if ((n == CALLS)); then
        busy=$((busy + 1))
        ((peers == 1)) || fail "$name saw $peers connections, want 1"
    elif ((n == 0)); then
        idle=$((idle + 1))
    else
        fail "$name served $n calls: expected all-or-nothing with L4"
    fi
done <<<"$counts"

((total == CALLS)) || fail "backends served $total calls in all, want $CALLS"
((busy == 1 && idle == N - 1)) ||
    fail "want 1 backend with $CALLS calls and $((N - 1)) with 0; got $busy and $idle"

echo "PASS: L4 balancing sent all $CALLS calls of one connection to one backend"
