#!/usr/bin/env bash
# timeout: 180
# params: tc cgroup
#
# test_h2lb_client_source[MODE] - backends see the client's own address
# through h2lb (--leg-source client, the default), in both interception
# modes (MODE tc or cgroup; tests/run.sh runs both).
#
# Two client namespaces (cli at 198.18.1.2, and cli2 at 198.18.3.2, made
# here) call a static Service VIP over one gRPC channel each. In tc mode,
# cli2 is a pod behind a bridge CNI (port of bridge cnib), and a third
# backend (backend-3, 198.18.3.3) is a pod on the same bridge: its replies
# to cli2's address are switched at layer 2, never routed. Then:
#   - every greeter records the client's address as its peer, with the
#     same port on all (a client's legs share its port), and never the
#     node's;
#   - with an iptables DROP for cli's address in backend 1's namespace,
#     a direct call from cli to backend 1 times out, and through h2lb
#     cli's calls all go to backend 2 and succeed, while cli2's still
#     reach both backends;
#   - with the DROP in every backend, cli reaches no backend directly,
#     and through h2lb its connection is closed (refused_no_leg) rather
#     than served from the node's address; cli2 is still served by both.
#   - the DROPs gone, cli is served by both again.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"
tb_require_cmd iptables nft

MODE=${1:-${H2LB_TEST_PARAM:-}}
[[ $MODE == tc || $MODE == cgroup ]] ||
    fail "MODE is tc or cgroup (the argument, or H2LB_TEST_PARAM), not '$MODE'"
VIP=198.18.100.1
VPORT=50051
CLI2=$TB_PREFIX-cli2
CLI2_IP=198.18.3.2
CLI2_GW=198.18.3.1
POD=$TB_PREFIX-pod # tc: backend-3, on cli2's bridge
POD_IP=198.18.3.3

tb_up 2
tb_start_greeters

# Namespaces of our own (the testbed knows cli, node and bI only).
rm_ns() {
    local ns pids
    for ns in "$CLI2" "$POD"; do
        pids=$(ip netns pids "$ns" 2>/dev/null) || true
        [[ -n $pids ]] && kill -KILL $pids 2>/dev/null
        ip netns del "$ns" 2>/dev/null || true
    done
}
tb_on_cleanup rm_ns
# pod_ns NS DEV ADDR: a namespace with eth0 at ADDR/24, default route via
# CLI2_GW, whose other end is DEV in the node namespace.
pod_ns() {
    ip netns add "$1" &&
        ip link add "$2" netns "$TB_PREFIX-node" type veth peer name eth0 netns "$1" &&
        ip -n "$1" addr add "$3/24" dev eth0 &&
        ip -n "$1" link set eth0 up &&
        ip -n "$1" link set lo up &&
        tb_exec node ip link set "$2" up &&
        ip -n "$1" route add default via "$CLI2_GW"
}
if [[ $MODE == tc ]]; then
    tb_exec node ip link add cnib type bridge stp_state 0 forward_delay 0 &&
        tb_exec node ip addr add "$CLI2_GW/24" dev cnib &&
        tb_exec node ip link set cnib up || fail "cannot make bridge cnib"
    pod_ns "$CLI2" vcli2 "$CLI2_IP" && pod_ns "$POD" vpod "$POD_IP" &&
        tb_exec node ip link set vcli2 master cnib &&
        tb_exec node ip link set vpod master cnib || fail "cannot set up the pods"
    nsenter --net="/run/netns/$POD" -- "$TB_PYTHON" "$TB_PEERS/greeter_server.py"         --name backend-3 --port "$TB_GREETER_PORT" >"$TB_STATE/logs/greeter-pod.log" 2>&1 &
    BACKENDS=3
else
    pod_ns "$CLI2" vcli2 "$CLI2_IP" &&
        tb_exec node ip addr add "$CLI2_GW/24" dev vcli2 || fail "cannot set up $CLI2"
    BACKENDS=2
fi

CG=
[[ $MODE == cgroup ]] && tb_clients_cgroup

# call NS TARGET CALLS [ARGS...]: one grpcio channel from namespace NS
# (cli or cli2; in cgroup mode from the clients' cgroup); prints its JSON.
call() {
    local ns=$1
    shift
    local cmd=("$TB_PYTHON" "$TB_PEERS/greeter_client.py" --target "$1"
        --calls "$2" --concurrency 4 --json "${@:3}")
    if [[ -n $CG ]]; then
        cmd=(sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG" "${cmd[@]}")
    fi
    if [[ $ns == cli ]]; then
        tb_run cli "${cmd[@]}"
    else
        nsenter --net="/run/netns/$CLI2" -- "${cmd[@]}"
    fi
}

# in_backend I CMD...: run CMD in backend I's namespace.
in_backend() {
    if (($1 == 3)); then
        nsenter --net="/run/netns/$POD" -- "${@:2}"
    else
        tb_exec "b$1" "${@:2}"
    fi
}

# peers: each backend's peer addresses since the last reset, "I ADDR:PORT
# N" a line, from the greeter's own record of context.peer().
peers() {
    local i
    for ((i = 1; i <= BACKENDS; i++)); do
        in_backend "$i" "$TB_PYTHON" "$TB_PEERS/greeter_client.py" \
            --target "127.0.0.1:$TB_GREETER_PORT" --mode stats --reset --timeout 20 |
            "$TB_PYTHON" -c '
import json, sys
for peer, n in json.load(sys.stdin).get("peer_calls", {}).items():
    print(sys.argv[1], peer.removeprefix("ipv4:"), n)' "$i" || return 1
    done
}

# by_backend JSON: "backend-1=N backend-2=M", errors fail.
by_backend() {
    "$TB_PYTHON" -c '
import json, sys
s = json.loads(sys.argv[1])
print(" ".join("%s=%d" % kv for kv in sorted(s["by_backend"].items())))
sys.exit(1 if s["errors"] else 0)' "$1"
}

# all JSON MIN: the calls succeeded and each backend served at least MIN.
# Not an even split: a channel's first calls all go to the leg that was
# ready first (the others may still handshake on a loaded machine), and
# all calls before the client acknowledged our SETTINGS do (HPACK).
all() {
    "$TB_PYTHON" -c '
import json, sys
s, least = json.loads(sys.argv[1]), int(sys.argv[2])
by = s["by_backend"]
ok = not s["errors"] and len(by) == int(sys.argv[3])
sys.exit(0 if ok and min(by.values()) >= least else 1)' "$1" "$2" "$BACKENDS"
}

list=$(tb_backend_ip 1):$TB_GREETER_PORT,$(tb_backend_ip 2):$TB_GREETER_PORT
((BACKENDS == 3)) && list+=,$POD_IP:$TB_GREETER_PORT
args=(--backends "$list" --vip "$VIP:$VPORT" --intercept "$MODE" --policy round-robin)
if [[ $MODE == tc ]]; then
    args+=(--intercept-dev "vcli,vcli2,vpod")
else
    args+=(--intercept-cgroup "$CG")
fi
H2LB_EXPECT_READY=$BACKENDS h2lb_start "${args[@]}" || fail "h2lb did not start"
peers >/dev/null || fail "a greeter does not answer"

echo "== one channel from each client namespace"
out=$(call cli "$VIP:$VPORT" 120) || fail "calls from cli failed: $out"
echo "   cli: $(by_backend "$out")"
out2=$(call cli2 "$VIP:$VPORT" 120) || fail "calls from cli2 failed: $out2"
echo "   cli2: $(by_backend "$out2")"
seen=$(peers) || fail "a greeter does not answer"
echo "$seen" | sed 's/^/   backend /'
"$TB_PYTHON" - "$seen" "$TB_CLI_IP" "$CLI2_IP" "$BACKENDS" <<'PY' || fail "the backends did not see the clients' own addresses"
import sys
lines = [l.split() for l in sys.argv[1].splitlines() if l.strip()]
want = {sys.argv[2], sys.argv[3]}
nb = {str(i) for i in range(1, int(sys.argv[4]) + 1)}
by = {}
for b, peer, n in lines:
    addr, port = peer.rsplit(":", 1)
    assert addr in want, "backend %s saw %s, not a client" % (b, peer)
    by.setdefault(addr, {}).setdefault(b, set()).add(port)
for addr in want:
    assert set(by.get(addr, {})) == nb, "%s reached %s" % (addr, by.get(addr))
    # one channel, one connection: its legs share the client's port
    ports = set.union(*by[addr].values())
    assert len(ports) == 1, "%s came from ports %s" % (addr, ports)
PY

echo "== iptables DROP of $TB_CLI_IP in backend 1"
tb_exec b1 iptables -w -A INPUT -s "$TB_CLI_IP" -j DROP || fail "iptables"
direct=$(call cli "$(tb_backend_ip 1):$TB_GREETER_PORT" 1 --deadline-ms 1000 \
    --allow-errors)
[[ $(by_backend "$direct" 2>/dev/null) == "" ]] ||
    fail "cli reached backend 1 directly through the DROP: $direct"
echo "   direct from cli to backend 1: no answer"
out=$(call cli "$VIP:$VPORT" 60) || fail "calls from cli failed with backend 1 denied: $out"
echo "   cli through h2lb: $(by_backend "$out")"
[[ $(by_backend "$out") != *backend-1* ]] ||
    fail "cli's calls reached backend 1: $(by_backend "$out")"
out2=$(call cli2 "$VIP:$VPORT" 60) || fail "calls from cli2 failed: $out2"
echo "   cli2 through h2lb: $(by_backend "$out2")"
all "$out2" 3 ||
    fail "cli2 did not reach both backends: $(by_backend "$out2")"
seen=$(peers) || fail "a greeter does not answer"
[[ $seen != "1 $TB_CLI_IP:"* && $seen != *$'\n'"1 $TB_CLI_IP:"* ]] ||
    fail "backend 1 served $TB_CLI_IP through the DROP: $seen"

echo "== the DROP in every backend"
for ((i = 2; i <= BACKENDS; i++)); do
    in_backend "$i" iptables -w -A INPUT -s "$TB_CLI_IP" -j DROP || fail "iptables"
done
refused=$(h2lb_daemon_stats | "$TB_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["refused_no_leg"])')
out=$(call cli "$VIP:$VPORT" 5 --deadline-ms 8000 --allow-errors)
echo "   cli through h2lb: $out"
"$TB_PYTHON" -c '
import json, sys
s = json.loads(sys.argv[1])
sys.exit(0 if s["errors"] == 5 and not s["by_backend"] else 1)' "$out" ||
    fail "cli was served with both backends denying it: $out"
now=$(h2lb_daemon_stats | "$TB_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["refused_no_leg"])')
((now > refused)) || fail "refused_no_leg did not count cli's connection ($refused -> $now)"
out2=$(call cli2 "$VIP:$VPORT" 40) || fail "calls from cli2 failed: $out2"
all "$out2" 3 ||
    fail "cli2 did not reach both backends: $(by_backend "$out2")"
echo "   cli2 through h2lb: $(by_backend "$out2"); refused_no_leg $refused -> $now"
grep -q "ejected" "$(h2lb_log)" && fail "a backend was ejected for one client's denial"

echo "== the DROPs gone"
for ((i = 1; i <= BACKENDS; i++)); do
    in_backend "$i" iptables -w -D INPUT -s "$TB_CLI_IP" -j DROP || fail "iptables"
done
out=$(call cli "$VIP:$VPORT" 40) || fail "calls from cli failed: $out"
all "$out" 3 ||
    fail "cli did not reach both backends again: $(by_backend "$out")"
echo "   cli through h2lb: $(by_backend "$out")"
h2lb_daemon_stats | "$TB_PYTHON" -c '
import json, sys
s = json.load(sys.stdin)
print("   source_legs %d, source_leg_failures %d, refused_no_leg %d" % (
    s["source_legs"], s["source_leg_failures"], s["refused_no_leg"]))'
h2lb_stop || fail "h2lb did not stop cleanly"
[[ -z $(tb_exec node nft list table ip h2lb 2>/dev/null) ]] ||
    fail "the nftables table outlived the daemon"
echo "PASS: backends saw each client's own address; a DROP of one client's address held through h2lb as it does directly"
