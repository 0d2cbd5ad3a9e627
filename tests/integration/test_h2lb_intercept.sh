#!/usr/bin/env bash
# timeout: 240
# params: tc cgroup
#
# test_h2lb_intercept[MODE] - `h2lb run --kubernetes --intercept MODE`, MODE
# tc or cgroup (tests/run.sh runs both: test_h2lb_intercept[tc] and
# test_h2lb_intercept[cgroup]; by hand, give MODE as the argument) takes
# unmodified gRPC clients' connections to a Service VIP.
#
# The node namespace plays a Kubernetes node with kube-proxy: iptables DNAT
# for Services whose VIPs no interface owns, to their endpoints, chosen at
# random per connection. A fake API server lists three Services: "greeter"
# (appProtocol grpc, VIP 198.18.100.1, all four backends) and "greeter-34"
# (annotation h2lb.io/enabled, 198.18.100.3, backends 3 and 4: the same
# pods as greeter's) are balanced, "plain" (198.18.100.2) is not. Then:
#   - python (grpcio) and node (@grpc/grpc-js) clients dial the greeter VIP
#     over one channel each, and every backend serves a fair share;
#   - calls to greeter-34's VIP reach its two endpoints only, both;
#   - getpeername() in the client still shows the VIP;
#   - the plain VIP keeps kube-proxy's behaviour: one channel, one backend,
#     and h2lb accepts no connection for it;
#   - once greeter-34 is deleted, its VIP is kube-proxy's again and status
#     forgets it;
#   - SIGTERM with calls in flight: they all succeed (GOAWAY, drain), and so
#     do those of a channel calling across the stop; then every hook goes
#     (tcx link or cgroup links, routing rule, nftables table) and the VIP
#     works through the kernel's path (kube-proxy's DNAT);
#   - a SIGKILLed daemon's hooks are gone with it too (the VIP still works),
#     and `h2lb unload` removes what it left;
#   - (tc) static backends with --vip are balanced the same way, also when
#     the listener answers with SYN cookies only;
#   - (tc) behind a bridge (a bridge CNI), naming only the pod's veth.
# In cgroup mode the clients run in a child cgroup of the test's own, which
# is where the connect4/getpeername4 programs are attached.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"
tb_require_cmd openssl bpftool nft iptables node

MODE=${1:-${H2LB_TEST_PARAM:-}}
[[ $MODE == tc || $MODE == cgroup ]] ||
    fail "MODE is tc or cgroup (the argument, or H2LB_TEST_PARAM), not '$MODE'"
KDIR=$TB_STATE/kube

VIP1=198.18.100.1 # balanced
VIP2=198.18.100.2 # not balanced
VIP3=198.18.100.3 # balanced, backends 3 and 4 only
VPORT=50051

# kube_proxy VIP [FIRST]: random DNAT of VIP:VPORT to backends FIRST..N,
# per connection.
kube_proxy() {
    local vip=$1 first=${2:-1} chain i prob
    chain=KP-${vip//./-}
    tb_exec node iptables -w -t nat -N "$chain" || return 1
    for ((i = first; i <= TB_N; i++)); do
        prob=$(awk -v d=$((TB_N - i + 1)) 'BEGIN { printf "%.11f", 1 / d }')
        tb_exec node iptables -w -t nat -A "$chain" -p tcp \
            -m statistic --mode random --probability "$prob" \
            -j DNAT --to-destination "$(tb_backend_ip "$i"):$TB_GREETER_PORT" ||
            return 1
    done
    tb_exec node iptables -w -t nat -A PREROUTING -d "$vip/32" -p tcp \
        --dport "$VPORT" -j "$chain"
}

# In the client namespace, and in cgroup mode in the clients' cgroup.
cli() {
    if [[ $MODE == cgroup ]]; then
        tb_run cli sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG" "$@"
    else
        tb_run cli "$@"
    fi
}

# pyclient TARGET CALLS: one grpcio channel; prints the summary JSON.
pyclient() {
    cli "$TB_PYTHON" "$TB_PEERS/greeter_client.py" --target "$1" \
        --calls "$2" --concurrency 4 --json
}

nodeclient() {
    cli node "$TB_PEERS/node/greeter_client.js" --target "$1" --calls "$2" \
        --concurrency 4
}

# check_split JSON MIN [BACKENDS]: no error, the calls went to BACKENDS
# (default: all, "1 2 3 4"), each at least MIN.
check_split() {
    "$TB_PYTHON" - "$1" "$2" "${3:-$(seq -s ' ' 1 "$TB_N")}" <<'PY'
import json, sys
s, least = json.loads(sys.argv[1]), int(sys.argv[2])
want = sorted("backend-" + i for i in sys.argv[3].split())
by = s["by_backend"]
print("   " + " ".join("%s=%d" % kv for kv in sorted(by.items())))
ok = s["errors"] == 0 and sorted(by) == want and min(by.values()) >= least
sys.exit(0 if ok else 1)
PY
}

# backends_of JSON: how many backends served the calls (errors fail).
backends_of() {
    "$TB_PYTHON" -c '
import json, sys
s = json.loads(sys.argv[1])
sys.exit(1) if s["errors"] else print(len(s["by_backend"]))' "$1"
}

# expect_kube_proxy WHEN: 100 calls on one channel to VIP1 all succeed and
# all go to one backend, as through kube-proxy's DNAT.
expect_kube_proxy() {
    local out n
    out=$(pyclient "$VIP1:$VPORT" 100) || fail "calls to $VIP1 failed $1: $out"
    n=$(backends_of "$out")
    echo "   $VIP1 $1: $n backend(s)"
    ((n == 1)) || fail "$VIP1 $1: want kube-proxy's 1 backend, got $n"
}

# bpf_links PROG: how many BPF links run program PROG of the daemon this
# test started (its programs use the map whose id is in VIPS_MAP_ID: other
# h2lb instances on the machine do not count). Debian's bpftool predates
# tcx, so `bpftool net` does not show tcx links; `bpftool link` lists them.
bpf_links() {
    "$TB_PYTHON" - "$1" "${VIPS_MAP_ID:-0}" <<'PY'
import json, subprocess, sys
def show(what):
    out = subprocess.run(["bpftool", "-j", what, "show"], capture_output=True,
                         text=True).stdout
    return json.loads(out or "[]")
ours = {p["id"] for p in show("prog")
        if p.get("name") == sys.argv[1] and int(sys.argv[2]) in p.get("map_ids", [])}
print(sum(1 for l in show("link") if l.get("prog_id") in ours))
PY
}

# hooks: what h2lb has attached in the node namespace, one word each.
hooks() {
    local out=()
    if [[ $(bpf_links h2lb_tc_ingress) != 0 ]]; then
        out+=(tc)
    fi
    if [[ -n ${CG:-} && $(bpftool cgroup show "$CG" 2>/dev/null) == *h2lb_* ]]; then
        out+=(cgroup)
    fi
    # (no `| grep -q` under pipefail: the writer may die of SIGPIPE)
    if [[ $(tb_exec node ip rule show) == *"lookup 2562"* ]]; then
        out+=(rule)
    fi
    if [[ $(tb_exec node ip route show table 2562 2>/dev/null) == *local* ]]; then
        out+=(route)
    fi
    if tb_exec node nft list table ip h2lb >/dev/null 2>&1; then
        out+=(nft)
    fi
    echo "${out[*]}"
}

vips_map_id() {
    VIPS_MAP_ID=$(bpftool -j map show pinned "$H2LB_PIN/vips" |
        "$TB_PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["id"])') ||
        fail "no pinned vips map"
}

# start_h2lb [DEVICES]
# Round-robin: the splits below check that each call of a channel may go
# to any backend; least-streams (the default, tested by test_h2lb_split)
# follows the backends' speed, and on a loaded machine one slow greeter
# got 17 of 200 concurrent calls.
start_h2lb() {
    local i args=(--kubernetes --kubeconfig "$KDIR/kubeconfig" --intercept "$MODE"
        --policy round-robin)
    if [[ $MODE == tc ]]; then
        args+=(--intercept-dev "${1:-vcli,veth*}")
    else
        args+=(--intercept-cgroup "$CG" --listen "$TB_NODE_IP")
    fi
    : >"$(h2lb_log)"
    h2lb_fast_path_args "${args[@]}" || return 1
    args+=(${H2LB_FAST_ARGS[@]+"${H2LB_FAST_ARGS[@]}"})
    tb_spawn node h2lb "$H2LB_BIN" run --pin-dir "$H2LB_PIN" "${args[@]}" ||
        return 1
    tb_on_cleanup _h2lb_cleanup
    # greeter's four backends and greeter-34's two are ready
    for ((i = 0; i < 100; i++)); do
        if (($(grep -c ' ready$' "$(h2lb_log)" || true) >= TB_N + 2)) &&
            grep -q "intercepting $VIP1:$VPORT" "$(h2lb_log)" &&
            grep -q "intercepting $VIP3:$VPORT" "$(h2lb_log)"; then
            vips_map_id
            return 0
        fi
        kill -0 "$TB_LAST_PID" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 30 "$(h2lb_log)" >&2
    fail "h2lb did not start intercepting $VIP1:$VPORT"
}

# services_json [NAME...]: the Services and EndpointSlices (all, or NAMEs)
# as a JSON list for the fake API server's /apply.
services_json() {
    "$TB_PYTHON" - "$TB_N" "$@" <<'PY'
import json, sys
n, only = int(sys.argv[1]), sys.argv[2:]
objs = []
for name, vip, app, first in (("greeter", "198.18.100.1", "grpc", 1),
                              ("plain", "198.18.100.2", None, 1),
                              ("greeter-34", "198.18.100.3", None, 3)):
    if only and name not in only:
        continue
    port = {"name": "grpc", "port": 50051, "targetPort": 50051,
            "protocol": "TCP"}
    meta = {"namespace": "default", "name": name}
    if app:
        port["appProtocol"] = app
    if first > 1:
        meta["annotations"] = {"h2lb.io/enabled": "true"}
    objs.append({"apiVersion": "v1", "kind": "Service", "metadata": meta,
                 "spec": {"type": "ClusterIP", "clusterIP": vip,
                          "clusterIPs": [vip], "ipFamilies": ["IPv4"],
                          "ports": [port]}})
    objs.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                 "metadata": {"namespace": "default", "name": name + "-1",
                              "labels": {"kubernetes.io/service-name": name}},
                 "addressType": "IPv4",
                 "ports": [{"name": "grpc", "port": 50051, "protocol": "TCP"}],
                 "endpoints": [{"addresses": ["198.18.2.%d" % (10 + i)],
                                "conditions": {"ready": True, "serving": True,
                                               "terminating": False}}
                               for i in range(first, n + 1)]})
print(json.dumps(objs))
PY
}

start_kube_api() {
    local i
    mkdir -p "$KDIR"
    tb_spawn node kubeapi "$TB_PYTHON" "$TB_PEERS/fake_kube_api.py" serve \
        --listen "$TB_NODE_IP:6443" --control "$TB_NODE_IP:6444" --dir "$KDIR"
    tb_wait_port node 6444 30 "$TB_LAST_PID" || fail "the fake API server did not start"
    for ((i = 0; i < 100; i++)); do
        [[ -s $KDIR/kubeconfig ]] && break
        sleep 0.1
    done
    tb_exec node "$TB_PYTHON" "$TB_PEERS/fake_kube_api.py" ctl \
        --control "$TB_NODE_IP:6444" /apply "$(services_json)" >/dev/null ||
        fail "could not load the Services into the fake API server"
}

# A bridge CNI: the client's veth becomes a port of bridge cni0, which
# takes the node's address, and br_netfilter (when loaded) runs kube-proxy's
# rules at the port. --intercept-dev names the port only; h2lb puts its
# program on the bridge too.
bridge_cni() {
    local out
    echo "== bridge CNI: vcli a port of cni0, --intercept-dev vcli"
    tb_exec node ip addr del "$TB_NODE_IP/24" dev vcli &&
        tb_exec node ip link add cni0 type bridge stp_state 0 forward_delay 0 &&
        tb_exec node ip addr add "$TB_NODE_IP/24" dev cni0 &&
        tb_exec node ip link set cni0 up &&
        tb_exec node ip link set vcli master cni0 ||
        fail "could not make the bridge"
    start_h2lb vcli
    grep -q "tc ingress on cni0" "$(h2lb_log)" || fail "no program on the bridge"
    out=$(pyclient "$VIP1:$VPORT" 200) || fail "calls to $VIP1 failed: $out"
    check_split "$out" 25 || fail "calls through the bridge were not balanced: $out"
    h2lb_stop || fail "h2lb did not stop cleanly"
    [[ $(bpf_links h2lb_tc_ingress) == 0 ]] || fail "a tc link outlived the daemon"
}

# ----------------------------------------------------------------- the test

tb_up 4
tb_start_greeters
kube_proxy "$VIP1" || fail "DNAT for $VIP1"
kube_proxy "$VIP2" || fail "DNAT for $VIP2"
kube_proxy "$VIP3" 3 || fail "DNAT for $VIP3"
[[ $MODE == cgroup ]] && tb_clients_cgroup
start_kube_api

echo "== before h2lb: kube-proxy's DNAT, one channel goes to one backend"
expect_kube_proxy "before h2lb"

echo "== h2lb --intercept $MODE"
start_h2lb
echo "   hooks: $(hooks)"
sleep 0.2
c0=$(daemon_clients)
out=$(pyclient "$VIP1:$VPORT" 400) || fail "python calls to $VIP1 failed: $out"
echo "   python, one channel, 400 calls to $VIP1:"
check_split "$out" 50 || fail "python calls were not balanced: $out"
out=$(nodeclient "$VIP1:$VPORT" 200) || fail "node calls to $VIP1 failed: $out"
echo "   node, one channel, 200 calls to $VIP1:"
check_split "$out" 25 || fail "node calls were not balanced: $out"

out=$(pyclient "$VIP3:$VPORT" 200) || fail "calls to $VIP3 failed: $out"
echo "   python, one channel, 200 calls to $VIP3 (greeter-34):"
check_split "$out" 50 "3 4" || fail "calls to $VIP3 left its endpoints: $out"
sleep 0.2
(($(daemon_clients) == c0 + 3)) ||
    fail "h2lb accepted $(($(daemon_clients) - c0)) connections, want 3"

# What operators see: both balanced Services, and which backends
# served greeter-34's calls.
out=$("$H2LB_BIN" status -j --pin-dir "$H2LB_PIN" | "$TB_PYTHON" -c '
import json, sys
s = json.load(sys.stdin)
svc = " ".join(sorted("%s=%s" % (v["name"], v["vip"]) for v in s["services"]))
be = sorted(b["address"].split(".")[-1].split(":")[0] for b in s["backends"]
        if b["service"] == "default/greeter-34:grpc" and b["streams"])
print(svc, "|", " ".join(be))') || fail "h2lb status -j"
echo "   h2lb status: $out"
[[ $out == "default/greeter-34:grpc=$VIP3:$VPORT default/greeter:grpc=$VIP1:$VPORT | 13 14" ]] ||
    fail "h2lb status does not show the two Services and greeter-34's backends"

# A client that stays connected for 2 s: what it sees as its peer, and
# its connection in `h2lb conns`, with its Service.
cli "$TB_PYTHON" -c '
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
print("%s:%d" % s.getpeername(), flush=True)
time.sleep(2)' "$VIP1" "$VPORT" >"$TB_STATE/peer" || fail "connect to the VIP" &
sleep 1
out=$("$H2LB_BIN" conns -j --pin-dir "$H2LB_PIN" | "$TB_PYTHON" -c '
import json, sys
print(" ".join(c["service"] for c in json.load(sys.stdin) if c["role"] == "client"))')
wait $! || fail "connect to the VIP"
peer=$(<"$TB_STATE/peer")
echo "   getpeername() in the client: $peer; h2lb conns: client of $out"
[[ $peer == "$VIP1:$VPORT" ]] || fail "the client sees $peer, not the VIP"
[[ $out == "default/greeter:grpc" ]] || fail "h2lb conns shows '$out'"

sleep 0.2 # the daemon publishes its counters every 50 ms
c0=$(daemon_clients)
out=$(pyclient "$VIP2:$VPORT" 100) || fail "calls to $VIP2 failed: $out"
n=$(backends_of "$out")
sleep 0.2
echo "   not balanced, $VIP2: $n backend(s), h2lb accepted $(($(daemon_clients) - c0))"
((n == 1)) || fail "the non-balanced Service went to $n backends"
(($(daemon_clients) == c0)) || fail "h2lb took a connection to $VIP2"

echo "== greeter-34 deleted: its VIP goes back to kube-proxy"
tb_exec node "$TB_PYTHON" "$TB_PEERS/fake_kube_api.py" ctl \
    --control "$TB_NODE_IP:6444" /delete \
    '{"kind": "Service", "namespace": "default", "name": "greeter-34"}' \
    >/dev/null || fail "could not delete greeter-34"
for ((n = 0; n < 50; n++)); do
    grep -q "greeter-34:grpc: removed" "$(h2lb_log)" && break
    sleep 0.1
done
grep -q "greeter-34:grpc: removed" "$(h2lb_log)" || fail "h2lb kept greeter-34"
out=$(pyclient "$VIP3:$VPORT" 100) || fail "calls to $VIP3 failed: $out"
n=$(backends_of "$out")
echo "   $VIP3: $n backend(s)"
((n == 1)) || fail "$VIP3 still balanced after its Service went"
for ((n = 0; n < 50; n++)); do # drained, then forgotten
    out=$("$H2LB_BIN" status -j --pin-dir "$H2LB_PIN" | "$TB_PYTHON" -c '
import json, sys
print(" ".join(sorted(v["name"] for v in json.load(sys.stdin)["services"])))')
    [[ $out == "default/greeter:grpc" ]] && break
    sleep 0.1
done
echo "   h2lb status: services $out"
[[ $out == "default/greeter:grpc" ]] || fail "status still lists: $out"

echo "== greeter-34 made again: balanced again"
tb_exec node "$TB_PYTHON" "$TB_PEERS/fake_kube_api.py" ctl \
    --control "$TB_NODE_IP:6444" /apply "$(services_json greeter-34)" \
    >/dev/null || fail "could not make greeter-34 again"
for ((n = 0; n < 50; n++)); do
    (($(grep -c "intercepting $VIP3:$VPORT" "$(h2lb_log)") >= 2)) && break
    sleep 0.1
done
sleep 0.5 # its backends handshake
out=$(pyclient "$VIP3:$VPORT" 200) || fail "calls to $VIP3 failed: $out"
check_split "$out" 50 "3 4" || fail "greeter-34 not balanced again: $out"

echo "== SIGTERM with calls in flight: they end, then every hook goes"
# 40 slow calls in flight, and a channel calling on across the stop:
# GOAWAY sends its later calls to a new connection, kube-proxy's.
cli "$TB_PYTHON" "$TB_PEERS/greeter_client.py" --target "$VIP1:$VPORT" \
    --calls 40 --concurrency 40 --delay-ms 1500 --json >"$TB_STATE/inflight" &
inflight=$!
cli "$TB_PYTHON" "$TB_PEERS/greeter_client.py" --target "$VIP1:$VPORT" \
    --calls 200 --delay-ms 15 --json >"$TB_STATE/across" &
across=$!
sleep 0.7
h2lb_stop || fail "h2lb did not stop cleanly"
wait "$inflight" || fail "calls in flight failed: $(tail -1 "$TB_STATE/inflight")"
wait "$across" || fail "calls across the stop failed: $(tail -1 "$TB_STATE/across")"
echo "   in flight: $(tail -1 "$TB_STATE/inflight" | cut -c1-60)..."
echo "   across the stop: $(tail -1 "$TB_STATE/across" | cut -c1-60)..."
grep -q "stopped gracefully: no stream left" "$(h2lb_log)" || fail "h2lb did not drain"
[[ -z $(hooks) ]] || fail "left behind: $(hooks)"
echo "   hooks: none"
expect_kube_proxy "after stop"

echo "== SIGKILL: the daemon's links go with it"
start_h2lb
out=$(pyclient "$VIP1:$VPORT" 100) || fail "calls to $VIP1 failed: $out"
(($(backends_of "$out") == TB_N)) || fail "not balanced after restart: $out"
tb_kill h2lb KILL
for ((n = 0; n < 50; n++)); do
    [[ $(hooks) != *tc* && $(hooks) != *cgroup* ]] && break
    sleep 0.1
done
echo "   hooks after SIGKILL: $(hooks)"
[[ $(hooks) != *tc* && $(hooks) != *cgroup* ]] || fail "a BPF hook outlived the daemon"
expect_kube_proxy "after SIGKILL"
tb_exec node "$H2LB_BIN" unload --pin-dir "$H2LB_PIN" >/dev/null ||
    fail "h2lb unload failed"
[[ -z $(hooks) ]] || fail "unload left: $(hooks)"
if [[ $MODE == tc ]]; then
    echo "== static backends: h2lb run --backends ... --vip $VIP1:$VPORT"
    tb_spawn node h2lb "$H2LB_BIN" run --pin-dir "$H2LB_PIN" \
        --listen "$H2LB_ADDR" --backends "$(h2lb_backends)" \
        --policy round-robin \
        --intercept tc --intercept-dev vcli --vip "$VIP1:$VPORT" ||
        fail "could not start h2lb"
    tb_wait_port node "$H2LB_PORT" 20 "$TB_LAST_PID" || fail "h2lb did not listen"
    vips_map_id
    sleep 0.5 # its backends handshake
    out=$(pyclient "$VIP1:$VPORT" 200) || fail "calls to $VIP1 failed: $out"
    check_split "$out" 25 || fail "calls to the static VIP were not balanced: $out"
    # Under a SYN flood the listener answers with SYN cookies: no
    # request socket, the handshake's last ACK is checked by tc.
    tb_exec node sysctl -qw net.ipv4.tcp_syncookies=2 || fail "sysctl"
    out=$(pyclient "$VIP1:$VPORT" 100) || fail "calls with SYN cookies failed: $out"
    tb_exec node sysctl -qw net.ipv4.tcp_syncookies=1
    echo "   with SYN cookies only (tcp_syncookies=2):"
    check_split "$out" 10 || fail "calls with SYN cookies were not balanced: $out"
    h2lb_stop || fail "h2lb did not stop cleanly"
    [[ -z $(hooks) ]] || fail "left behind: $(hooks)"

    bridge_cni
fi
echo "PASS: --intercept $MODE balanced unmodified clients of a VIP, left the other Service alone and removed its hooks"
