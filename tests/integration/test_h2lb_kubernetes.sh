#!/usr/bin/env bash
# timeout: 240
#
# test_h2lb_kubernetes - `h2lb run --kubernetes`: the backends of a Service
# port follow its EndpointSlices.
#
# A fake API server (tests/peers/fake_kube_api.py: HTTPS list and watch of
# Services and EndpointSlices) serves Service default/greeter, port "grpc"
# with appProtocol grpc. Its slice starts with two ready endpoints (calls
# reach those two backends only), scales up to four (all four serve),
# marks one serving-and-terminating (it gets no new calls) and drops
# another (gone). Calls running during the scale-down all succeed. With
# --service and --intercept tc, the Service's ClusterIP from the API
# server is intercepted too; without --intercept, the backends see the
# node's address, not the clients' (their legs come from the pool).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"

tb_require_cmd openssl

API=$TB_NODE_IP:6443
CTL=$TB_NODE_IP:6444
FAKE=$TB_PEERS/fake_kube_api.py
KDIR=$TB_STATE/kube

ctl() {
    tb_exec node "$TB_PYTHON" "$FAKE" ctl --control "$CTL" "$@" >/dev/null
}

# slice ENDPOINT... with ENDPOINT = BACKEND_NUMBER:ready|draining
slice() {
    ctl /apply "$("$TB_PYTHON" - "$@" <<'PY'
import json, sys
conds = {"ready": (True, True, False), "draining": (False, True, True)}
eps = []
for e in sys.argv[1:]:
    i, state = e.split(":")
    r, s, t = conds[state]
    eps.append({"addresses": ["198.18.2.%d" % (10 + int(i))],
                "conditions": {"ready": r, "serving": s, "terminating": t}})
print(json.dumps({
    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
    "metadata": {"namespace": "default", "name": "greeter-abc",
                 "labels": {"kubernetes.io/service-name": "greeter"}},
    "addressType": "IPv4",
    "ports": [{"name": "grpc", "port": 50051, "protocol": "TCP"}],
    "endpoints": eps}))
PY
)"
}

# Wait (5 s at most) until the daemon logged N endpoints for the Service.
wait_endpoints() {
    local i
    for ((i = 0; i < 50; i++)); do
        [[ $(grep -c "greeter:grpc has $1 endpoint" "$(h2lb_log)" || true) -ge ${2:-1} ]] &&
            return 0
        sleep 0.1
    done
    fail "the daemon never saw $1 endpoints"
}

tb_up 4
tb_start_greeters
mkdir -p "$KDIR"
tb_spawn node kubeapi "$TB_PYTHON" "$FAKE" serve --listen "$API" \
    --control "$CTL" --dir "$KDIR"
tb_wait_port node 6444 30 "$TB_LAST_PID" || fail "the fake API server did not start"
for ((i = 0; i < 100; i++)); do
    [[ -s $KDIR/kubeconfig ]] && break
    sleep 0.1
done
ctl /apply '{"apiVersion": "v1", "kind": "Service",
  "metadata": {"namespace": "default", "name": "greeter"},
  "spec": {"type": "ClusterIP", "clusterIP": "198.18.100.1",
           "clusterIPs": ["198.18.100.1"], "ipFamilies": ["IPv4"],
           "ports": [{"name": "grpc", "port": 50051, "targetPort": 50051,
                      "protocol": "TCP", "appProtocol": "grpc"}]}}'
slice 1:ready 2:ready

# Also at the Service's ClusterIP, which tc intercepts (no DNAT here: a
# VIP h2lb did not take would not answer).
H2LB_EXPECT_READY=2 h2lb_start --kubernetes --kubeconfig "$KDIR/kubeconfig" \
    --service default/greeter:grpc --intercept tc --intercept-dev vcli
got=$(served_by)
echo "   two ready endpoints: $got"
[[ $got == "backend-1 backend-2" ]] || fail "want backend-1 and backend-2"

slice 1:ready 2:ready 3:ready 4:ready
wait_endpoints 4
sleep 0.5 # the new backends' connections handshake
got=$(served_by)
echo "   scaled up to four: $got"
[[ $got == "backend-1 backend-2 backend-3 backend-4" ]] || fail "want all four"
got=$(served_by 198.18.100.1:50051)
echo "   at the ClusterIP 198.18.100.1:50051: $got"
[[ $got == "backend-1 backend-2 backend-3 backend-4" ]] || fail "want all four at the VIP"

# Scale down while slow calls run: none of them may fail.
tb_client --target "$H2LB_ADDR" --calls 40 --concurrency 40 --delay-ms 1500 \
    --json >"$TB_STATE/inflight" 2>&1 &
inflight=$!
sleep 0.5
slice 1:draining 2:ready 3:ready
wait_endpoints 3
wait "$inflight" || fail "calls in flight during the scale-down failed: $(tail -1 "$TB_STATE/inflight")"
# Asked once those calls are over. While they run, they decide: the
# policy is least open streams, and the 40 may sit unevenly (a client's
# streams go only to backends its own legs reach, and those open as its
# preface arrives; the pre-ACK ones all go to its leg0). 8 runs showed 10
# on each backend, but one full run got only backend-2 here, which is
# what the policy does if backend-3 had most of them.
got=$(served_by)
echo "   backend-1 terminating, backend-4 removed: $got"
[[ $got == "backend-2 backend-3" ]] || fail "want backend-2 and backend-3"
echo "   calls in flight meanwhile: $(tail -1 "$TB_STATE/inflight")"

h2lb_stop || fail "h2lb did not stop cleanly"

# Without interception, --service's listener takes clients from anywhere:
# their legs come from the node's address (--leg-source is for
# intercepted clients), which is what the backends see.
H2LB_EXPECT_READY=2 h2lb_start --kubernetes --kubeconfig "$KDIR/kubeconfig" \
    --service default/greeter:grpc
tb_reset_counts
got=$(served_by)
peers=$(tb_backend_stats | tb_peer_addrs)
echo "   without interception: $got, from $peers"
[[ $got == "backend-2 backend-3" ]] || fail "want backend-2 and backend-3"
[[ $peers == "$TB_BR_IP" ]] || fail "the backends saw $peers, not the node ($TB_BR_IP)"
h2lb_stop || fail "h2lb did not stop cleanly"
echo "PASS: the backend set followed the Service's EndpointSlices"
