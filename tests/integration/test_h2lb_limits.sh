#!/usr/bin/env bash
# timeout: 240
#
# test_h2lb_limits - the tables are sized by flags, and a full one is a
# clear refusal that leaves what fits working (issue #12, item 7).
#
# 1. --kubernetes with a fake API server (tests/peers/fake_kube_api.py),
#    --max-services 3, --max-backends 5, --max-backends-per-service 3:
#    Service "big" has all four greeters as endpoints, "small" has backends
#    3 and 4. big gets three slots (one endpoint left out: over its cap),
#    small its two: both answer calls, each from its own endpoints. The
#    left-out endpoint is said in the log and counted (`h2lb status -j`,
#    /metrics). Then two more Services: one gets the last Service index
#    but no backend slot (all five are taken: counted as no slot), the
#    other no index at all (the table of Service ports is full: logged
#    and counted). big and small keep answering throughout.
# 2. --max-conns 256 with static backends: a client calls while 300 idle
#    connections come from another address; those beyond the table are
#    closed at accept (refused_connections_total{reason="full"}, and a log
#    line), and the calling client fails no call.
# 3. A backends file of 3,000 entries: 750 ports on each of the four
#    greeters (an iptables REDIRECT in each backend namespace takes them to
#    the greeter's port). It loads, every entry's connection handshakes,
#    and calls are spread over all four greeters.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"

tb_require_cmd openssl curl iptables

API=$TB_NODE_IP:6443
CTL=$TB_NODE_IP:6444
KDIR=$TB_STATE/kube
METRICS=$TB_NODE_IP:9464
ATTACKER=198.18.1.3

ctl() {
    tb_exec node "$TB_PYTHON" "$TB_PEERS/fake_kube_api.py" ctl --control "$CTL" "$@" >/dev/null
}

# service NAME VIP BACKEND...: the Service (appProtocol grpc, port 50051)
# and its EndpointSlice of greeters BACKEND... (testbed numbers), in order.
service() {
    "$TB_PYTHON" - "$@" <<'PY'
import json, sys
name, vip, eps = sys.argv[1], sys.argv[2], sys.argv[3:]
port = {"name": "grpc", "port": 50051, "targetPort": 50051,
        "protocol": "TCP", "appProtocol": "grpc"}
print(json.dumps([
    {"apiVersion": "v1", "kind": "Service",
     "metadata": {"namespace": "default", "name": name},
     "spec": {"type": "ClusterIP", "clusterIP": vip, "clusterIPs": [vip],
              "ipFamilies": ["IPv4"], "ports": [port]}},
    {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
     "metadata": {"namespace": "default", "name": name + "-1",
                  "labels": {"kubernetes.io/service-name": name}},
     "addressType": "IPv4",
     "ports": [{"name": "grpc", "port": 50051, "protocol": "TCP"}],
     "endpoints": [{"addresses": ["198.18.2.%d" % (10 + int(i))],
                    "conditions": {"ready": True, "serving": True,
                                   "terminating": False}} for i in eps]}]))
PY
}

# logged PATTERN [S]: wait (S seconds, 10 by default) for PATTERN in the
# daemon's log.
logged() {
    local i
    for ((i = 0; i < ${2:-10} * 10; i++)); do
        grep -q -- "$1" "$(h2lb_log)" && return 0
        sleep 0.1
    done
    tail -n 20 "$(h2lb_log)" >&2
    fail "never logged: $1"
}

# tables KEY: KEY of `h2lb status -j`'s "tables".
tables() {
    "$H2LB_BIN" status -j --pin-dir "$H2LB_PIN" | "$TB_PYTHON" -c '
import json, sys
print(json.load(sys.stdin)["tables"][sys.argv[1]])' "$1"
}

# tables_settle NAME WANT: wait (2 s at most) until status shows WANT for
# NAME. Status is the daemon's snapshot, published every 50 ms tick: it may
# lag the log line of the change by one tick (it did in a clean-clone CI
# run: services_left_out 0 in status, 1 in /metrics). The checks that
# follow stay as strict.
tables_settle() {
    local i
    for ((i = 0; i < 20; i++)); do
        [[ $(tables "$1") == "$2" ]] && return 0
        sleep 0.1
    done
}

# expect_served VIP WANT: calls to VIP:50051 are served by WANT exactly.
expect_served() {
    local got
    got=$(served_by "$1:50051") || fail "calls to $1 failed"
    echo "   $1: $got"
    [[ $got == "$2" ]] || fail "calls to $1 were served by '$got', not '$2'"
}

tb_up 4
tb_start_greeters

echo "== 1. Services over their cap, a full backend table, a full Service table"
mkdir -p "$KDIR"
tb_spawn node kubeapi "$TB_PYTHON" "$TB_PEERS/fake_kube_api.py" serve \
    --listen "$API" --control "$CTL" --dir "$KDIR"
tb_wait_port node 6444 30 "$TB_LAST_PID" || fail "the fake API server did not start"
for ((i = 0; i < 100; i++)); do
    [[ -s $KDIR/kubeconfig ]] && break
    sleep 0.1
done
ctl /apply "$(service big 198.18.100.1 1 2 3 4)"
ctl /apply "$(service small 198.18.100.2 3 4)"
# Every balanced Service has a listener of its own (no --listen port to
# wait for): started when both VIPs are intercepted and big's three and
# small's two backends have handshaken.
tb_spawn node h2lb "$H2LB_BIN" run --pin-dir "$H2LB_PIN" --stop-timeout 5 \
    --kubernetes --kubeconfig "$KDIR/kubeconfig" --listen "$TB_NODE_IP" \
    --intercept tc --intercept-dev vcli --policy round-robin \
    --max-services 3 --max-backends 5 --max-backends-per-service 3 \
    --metrics "$METRICS"
tb_on_cleanup _h2lb_cleanup
logged "intercepting 198.18.100.2:50051"
for ((i = 0; i < 100; i++)); do
    (($(grep -c ' ready$' "$(h2lb_log)" || true) >= 5)) && break
    sleep 0.1
done
logged "default/big:grpc: 1 of 4 endpoint(s) left out: over --max-backends-per-service 3"
expect_served 198.18.100.1 "backend-1 backend-2 backend-3"
expect_served 198.18.100.2 "backend-3 backend-4"
tables_settle endpoints_over_service_cap 1
over=$(tables endpoints_over_service_cap)
m_over=$(h2lb_metric "$METRICS" 'left_out{what="endpoints_over_service_cap"}')
echo "   left out over the cap: $over (status), $m_over (metrics)"
((over == 1 && m_over == 1)) || fail "want 1 endpoint counted over its Service's cap"
[[ $(tables max_backends_per_service) == 3 && $(tables max_backends) == 5 &&
    $(tables max_services) == 3 ]] || fail "status does not show the flags' table sizes"

ctl /apply "$(service third 198.18.100.3 1)"
logged "default/third:grpc: 1 endpoint(s) left out: all 5 backend slots"
ctl /apply "$(service fourth 198.18.100.4 2)"
logged "1 balanced Service port(s) left out (default/fourth:grpc first): all 3 (--max-services) are taken"
tables_settle endpoints_no_slot 1
tables_settle services_left_out 1
no_slot=$(tables endpoints_no_slot) svc_out=$(tables services_left_out)
m_svc=$(h2lb_metric "$METRICS" 'left_out{what="services"}')
echo "   no slot: $no_slot; Service ports left out: $svc_out (status), $m_svc (metrics)"
((no_slot == 1 && svc_out == 1 && m_svc == 1)) ||
    fail "want 1 endpoint without a slot and 1 Service port left out"
# The Service with no slot has no backend: its streams are refused, never
# sent to another Service's backends.
got=$(tb_client --target 198.18.100.3:50051 --calls 4 --json --allow-errors \
    --deadline-ms 2000 --timeout 5 | tail -n 1)
echo "   third (no backend slot): $(cut -c1-100 <<<"$got")"
"$TB_PYTHON" -c '
import json, sys
s = json.loads(sys.argv[1])
sys.exit(not (s["ok"] == 0 and s["errors"] == 4 and not s["by_backend"]))' "$got" ||
    fail "a Service without backends was served: $got"
expect_served 198.18.100.1 "backend-1 backend-2 backend-3"
expect_served 198.18.100.2 "backend-3 backend-4"

# Room again: third's endpoint gets a slot once big shrinks.
ctl /apply "$(service big 198.18.100.1 1 2)"
logged "service [0-9]* default/third:grpc: all 1 endpoint(s) balanced again"
expect_served 198.18.100.1 "backend-1 backend-2"
((($(tables endpoints_over_service_cap) + $(tables endpoints_no_slot)) == 0)) ||
    fail "endpoints still counted as left out once they all fit"
h2lb_stop || fail "h2lb did not stop cleanly"
tb_kill kubeapi

echo "== 2. --max-conns 256: clients beyond the table are refused at accept"
mv -f "$(h2lb_log)" "$TB_STATE/logs/h2lb-1.log"
tb_exec cli ip addr add "$ATTACKER/24" dev eth0
h2lb_start --backends "$(h2lb_backends)" --max-conns 256 --pool-size 1 \
    --max-conns-per-client 0 --metrics "$METRICS"
tb_client --target "$H2LB_ADDR" --calls 6000 --concurrency 4 --json \
    >"$TB_STATE/calls.json" &
calls=$!
sleep 0.5
tb_spawn cli holder "$TB_PYTHON" "$TB_PEERS/conn_holder.py" \
    --target "$H2LB_ADDR" --bind "$ATTACKER" --count 300 --hold 4
for ((i = 0; i < 300; i++)); do
    grep -q '"event": "done"' "$TB_STATE/logs/holder.log" 2>/dev/null && break
    sleep 0.1
done
done_line=$(grep '"event": "done"' "$TB_STATE/logs/holder.log") ||
    fail "the holder did not finish"
closed=$("$TB_PYTHON" -c 'import json, sys; print(json.loads(sys.argv[1])["closed_by_server"])' "$done_line")
full=$(h2lb_metric "$METRICS" 'refused_connections_total{reason="full"}')
wait "$calls" || fail "the calling client failed: $(tail -c 300 "$TB_STATE/calls.json")"
echo "   of 300 idle connections $closed were closed, $full refused as full"
echo "   the calling client: $(cut -c1-120 "$TB_STATE/calls.json")"
((full >= 50 && closed == full)) || fail "want the connections beyond the table refused at accept"
grep -q "client refused: connection table or file descriptors full" "$(h2lb_log)" ||
    fail "the refusals were not logged"
h2lb_stop || fail "h2lb did not stop cleanly"

echo "== 3. 3,000 backend entries from a file"
mv -f "$(h2lb_log)" "$TB_STATE/logs/h2lb-2.log"
file=$TB_STATE/backends.txt
: >"$file"
for ((i = 1; i <= TB_N; i++)); do
    tb_exec "b$i" iptables -w -t nat -A PREROUTING -p tcp --dport 20000:20749 \
        -j REDIRECT --to-ports "$TB_GREETER_PORT"
done
# The greeters in turn: streams that all tie go to the entries in order.
for ((p = 20000; p < 20750; p++)); do
    for ((i = 1; i <= TB_N; i++)); do
        echo "$(tb_backend_ip "$i"):$p"
    done
done >"$file"
t0=$(date +%s%N)
tb_spawn node h2lb "$H2LB_BIN" run --listen "$H2LB_ADDR" --pin-dir "$H2LB_PIN" \
    --stop-timeout 5 --backends-file "$file" --pool-size 1 --metrics "$METRICS"
tb_on_cleanup _h2lb_cleanup
for ((i = 0; i < 600; i++)); do
    ready=$(grep -c ' ready$' "$(h2lb_log)" || true)
    ((ready >= 3000)) && break
    sleep 0.1
done
t1=$(date +%s%N)
echo "   $ready of 3000 backends ready $(((t1 - t0) / 1000000)) ms after the start"
((ready == 3000)) || fail "only $ready of 3000 backends became ready"
[[ $(tables backends) == 3000 ]] || fail "status counts $(tables backends) backends, not 3000"
got=$(served_by)
used=$("$H2LB_BIN" backends -j --pin-dir "$H2LB_PIN" | "$TB_PYTHON" -c '
import json, sys
print(sum(1 for b in json.load(sys.stdin)["backends"] if b["streams"] > 0))')
echo "   200 calls: served by $got, through $used different backend entries"
[[ $got == "backend-1 backend-2 backend-3 backend-4" ]] || fail "calls did not reach all four greeters"
((used >= 100)) || fail "the calls went through only $used backend entries"
h2lb_stop || fail "h2lb did not stop cleanly"
echo "PASS: a Service over its cap, full backend and Service tables and a full connection table are refused clearly, and what fits works; 3,000 backends load and balance"
