#!/usr/bin/env bash
# timeout: 180
# params: tc cgroup
#
# test_h2lb_client_source[MODE] - backends see the client's own address
# through h2lb (--leg-source client, the default), in both interception
# modes (MODE tc or cgroup; tests/run.sh runs both).
#
# Two client namespaces (cli at 198.18.1.2, and cli2 at 198.18.3.2, made
# here) call a static Service VIP over one gRPC channel each. Then:
#   - both greeters record the client's address as their peer, with the
#     same port on both (a client's legs share its port), and never the
#     node's;
#   - with an iptables DROP for cli's address in backend 1's namespace,
#     a direct call from cli to backend 1 times out, and through h2lb
#     cli's calls all go to backend 2 and succeed, while cli2's still
#     reach both backends;
#   - with the DROP in backend 2 as well, cli reaches no backend directly,
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

tb_up 2
tb_start_greeters

rm_cli2() {
    local pids
    pids=$(ip netns pids "$CLI2" 2>/dev/null) || true
    [[ -n $pids ]] && kill -KILL $pids 2>/dev/null
    ip netns del "$CLI2" 2>/dev/null || true
}
ip netns add "$CLI2" || fail "cannot add namespace $CLI2"
tb_on_cleanup rm_cli2
ip link add vcli2 netns "$TB_PREFIX-node" type veth peer name eth0 netns "$CLI2" ||
    fail "cannot link $CLI2"
tb_exec node ip addr add "$CLI2_GW/24" dev vcli2 &&
    tb_exec node ip link set vcli2 up &&
    ip -n "$CLI2" addr add "$CLI2_IP/24" dev eth0 &&
    ip -n "$CLI2" link set eth0 up &&
    ip -n "$CLI2" link set lo up &&
    ip -n "$CLI2" route add default via "$CLI2_GW" || fail "cannot set up $CLI2"

CG=
if [[ $MODE == cgroup ]]; then
    root=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
    [[ -n $root ]] || tb_skip "no cgroup v2 hierarchy mounted"
    CG=$root/h2lb-test-$TB_PREFIX-clients
    mkdir "$CG" || fail "mkdir $CG"
    rm_cgroup() {
        local i
        for ((i = 0; i < 50; i++)); do
            rmdir "$CG" 2>/dev/null && return 0
            [[ -d $CG ]] || return 0
            sleep 0.1
        done
        tb_err "could not remove $CG"
    }
    tb_on_cleanup rm_cgroup
fi

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

# peers: backend I's peer addresses since the last reset, "I ADDR:PORT N" a
# line, from the greeter's own record of context.peer().
peers() {
    tb_backend_stats --reset | "$TB_PYTHON" -c '
import json, sys
for i, line in enumerate(sys.stdin, 1):
    for peer, n in json.loads(line).get("peer_calls", {}).items():
        print(i, peer.removeprefix("ipv4:"), n)'
}

# by_backend JSON: "backend-1=N backend-2=M", errors fail.
by_backend() {
    "$TB_PYTHON" -c '
import json, sys
s = json.loads(sys.argv[1])
print(" ".join("%s=%d" % kv for kv in sorted(s["by_backend"].items())))
sys.exit(1 if s["errors"] else 0)' "$1"
}

# both JSON MIN: the calls succeeded and each backend served at least MIN.
# Not an even split: a channel's first calls all go to the leg that was
# ready first (the others may still handshake on a loaded machine), and
# all calls before the client acknowledged our SETTINGS do (HPACK).
both() {
    "$TB_PYTHON" -c '
import json, sys
s, least = json.loads(sys.argv[1]), int(sys.argv[2])
by = s["by_backend"]
ok = not s["errors"] and sorted(by) == ["backend-1", "backend-2"]
sys.exit(0 if ok and min(by.values()) >= least else 1)' "$1" "$2"
}

args=(--backends "$(tb_backend_ip 1):$TB_GREETER_PORT,$(tb_backend_ip 2):$TB_GREETER_PORT"
    --vip "$VIP:$VPORT" --intercept "$MODE" --policy round-robin)
if [[ $MODE == tc ]]; then
    args+=(--intercept-dev vcli,vcli2)
else
    args+=(--intercept-cgroup "$CG")
fi
H2LB_EXPECT_READY=2 h2lb_start "${args[@]}" || fail "h2lb did not start"
tb_reset_counts

echo "== one channel from each client namespace"
out=$(call cli "$VIP:$VPORT" 100) || fail "calls from cli failed: $out"
echo "   cli: $(by_backend "$out")"
out2=$(call cli2 "$VIP:$VPORT" 100) || fail "calls from cli2 failed: $out2"
echo "   cli2: $(by_backend "$out2")"
seen=$(peers)
echo "$seen" | sed 's/^/   backend /'
"$TB_PYTHON" - "$seen" "$TB_CLI_IP" "$CLI2_IP" <<'PY' || fail "the backends did not see the clients' own addresses"
import sys
lines = [l.split() for l in sys.argv[1].splitlines() if l.strip()]
want = {sys.argv[2], sys.argv[3]}
by = {}
for b, peer, n in lines:
    addr, port = peer.rsplit(":", 1)
    assert addr in want, "backend %s saw %s, not a client" % (b, peer)
    by.setdefault(addr, {}).setdefault(b, set()).add(port)
for addr in want:
    assert set(by.get(addr, {})) == {"1", "2"}, "%s reached %s" % (addr, by.get(addr))
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
[[ $(by_backend "$out") == "backend-2=60" ]] ||
    fail "cli's calls did not all go to backend 2: $(by_backend "$out")"
out2=$(call cli2 "$VIP:$VPORT" 60) || fail "calls from cli2 failed: $out2"
echo "   cli2 through h2lb: $(by_backend "$out2")"
both "$out2" 3 ||
    fail "cli2 did not reach both backends: $(by_backend "$out2")"
seen=$(peers)
[[ $seen != "1 $TB_CLI_IP:"* && $seen != *$'\n'"1 $TB_CLI_IP:"* ]] ||
    fail "backend 1 served $TB_CLI_IP through the DROP: $seen"

echo "== the DROP in backend 2 as well"
tb_exec b2 iptables -w -A INPUT -s "$TB_CLI_IP" -j DROP || fail "iptables"
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
both "$out2" 3 ||
    fail "cli2 did not reach both backends: $(by_backend "$out2")"
echo "   cli2 through h2lb: $(by_backend "$out2"); refused_no_leg $refused -> $now"
grep -q "ejected" "$(h2lb_log)" && fail "a backend was ejected for one client's denial"

echo "== the DROPs gone"
tb_exec b1 iptables -w -D INPUT -s "$TB_CLI_IP" -j DROP &&
    tb_exec b2 iptables -w -D INPUT -s "$TB_CLI_IP" -j DROP || fail "iptables"
out=$(call cli "$VIP:$VPORT" 40) || fail "calls from cli failed: $out"
both "$out" 3 ||
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
