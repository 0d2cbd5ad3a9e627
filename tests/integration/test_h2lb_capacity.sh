#!/usr/bin/env bash
# timeout: 300
#
# test_h2lb_capacity - no client can take what the others need (issue #11,
# item 5). Each part runs a gRPC client from the testbed's client address
# beside the attacker, which comes from a second address (198.18.1.3):
# the client fails no call, at a rate within noise of its rate alone, and
# the attack is cut off by its counter. (The client's rate: at least a
# third of its rate alone, see beside.)
#
# 1. --max-conns-per-client 50: the attacker's 60 connections; 10 are
#    closed at accept (refused_connections_total{reason="per_client"}).
# 2. The file descriptors near RLIMIT_NOFILE (lowered with prlimit): the
#    attacker's connections are closed at accept, at once
#    ({reason="full"}); the client already connected carries on.
# 3. --idle-timeout 2: idle connections get GOAWAY(NO_ERROR) and are
#    closed (after 2 s, a look at most 1.25 s late, a grace of 1 s); the
#    calling client keeps its one connection.
#    --handshake-timeout 2: connections that send the preface alone are
#    closed after 2 s (GOAWAY(PROTOCOL_ERROR) first). Connections that
#    send nothing are not HTTP/2 (a server-first protocol, for all h2lb
#    knows): after --first-bytes-timeout (1 s) each goes whole to a
#    backend (raw_connections), whose business they are from then on.
# 4. 5,000 idle connections: the daemon's CPU stays low (it looks at an
#    idle connection once a second, not at every 50 ms tick), and the
#    client's calls go on. Skipped if the machine has less than 1.5 GiB
#    available; the attacker stops opening below 512 MiB.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"

tb_require_cmd curl prlimit

ATTACKER=198.18.1.3
METRICS=$TB_NODE_IP:9464

# calls OUT N: N greeter calls on one channel, 4 in flight; fails if one
# failed. Prints nothing; the summary is in OUT.
calls() {
    tb_client --target "$H2LB_ADDR" --calls "$2" --concurrency 4 --json >"$1" ||
        fail "a call failed: $(cat "$1")"
}

rate() {
    "$TB_PYTHON" -c '
import json, sys
s = json.load(open(sys.argv[1]))
assert s["errors"] == 0, s
print(int(s["ok"] / s["elapsed_s"]))' "$1"
}

# holder NAME ARGS...: conn_holder.py from the attacker's address.
holder() {
    local name=$1
    shift
    tb_spawn cli "$name" "$TB_PYTHON" "$TB_PEERS/conn_holder.py" \
        --target "$H2LB_ADDR" --bind "$ATTACKER" "$@"
}

# opened NAME [S]: wait (S seconds, 30 by default) until holder NAME has
# opened its connections.
opened() {
    local i
    for ((i = 0; i < ${2:-30} * 10; i++)); do
        grep -q '"event": "open"' "$TB_STATE/logs/$1.log" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "holder $1 did not open its connections"
}

# done_of NAME KEY: KEY of holder NAME's final line (waits for it, 30 s).
done_of() {
    local i
    for ((i = 0; i < 300; i++)); do
        grep -q '"event": "done"' "$TB_STATE/logs/$1.log" 2>/dev/null && break
        sleep 0.1
    done
    grep '"event": "done"' "$TB_STATE/logs/$1.log" | "$TB_PYTHON" -c '
import json, sys
print(json.dumps(json.loads(sys.stdin.readline())[sys.argv[1]]))' "$2"
}

# beside NAME OUT N: N calls while holder NAME runs; its rate must be at
# least a third of the rate alone ($alone): on a shared 2-CPU machine,
# with other tests running, two runs alone differ by up to 2.7 times here;
# a client the attack starves fails calls or waits seconds.
beside() {
    calls "$2" "$3"
    local r
    r=$(rate "$2")
    echo "   the client: $r calls/s beside $1, $alone alone"
    ((r * 3 >= alone)) || fail "the client slowed from $alone to $r calls/s beside $1"
}

tb_up 2
tb_start_greeters
tb_exec cli ip addr add "$ATTACKER/24" dev eth0

echo "== 1. 60 connections from one address, at most 50"
h2lb_start --backends "$(h2lb_backends)" --max-conns-per-client 50 \
    --metrics "$METRICS"
pid=$(tb_pid h2lb)
calls "$TB_STATE/alone.json" 3000
alone=$(rate "$TB_STATE/alone.json")
holder limit --count 60 --hold 4
beside "60 connections" "$TB_STATE/limit.json" 3000
closed=$(done_of limit closed_by_server)
refused=$(h2lb_metric "$METRICS" 'refused_connections_total{reason="per_client"}')
echo "   the attacker: $closed of 60 closed; refused: $refused"
((closed == 10 && refused == 10)) || fail "expected 10 refused, got $closed closed and $refused counted"

echo "== 2. the fds near the limit"
calls "$TB_STATE/before.json" 20000 &
long=$!
sleep 0.5
fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
old_limit=$(prlimit --pid "$pid" --nofile -o SOFT --raw --noheadings)
# Room for 36 more fds before the daemon's reserve (64) is reached. The
# soft limit alone: a hard limit lowered could not be raised again.
prlimit --pid "$pid" --nofile=$((fds + 100)):
tb_on_cleanup "prlimit --pid $pid --nofile=$old_limit: 2>/dev/null || true"
holder full --count 50 --hold 4
wait "$long" || fail "the connected client failed while the fds were full"
r=$(rate "$TB_STATE/before.json")
full=$(h2lb_metric "$METRICS" 'refused_connections_total{reason="full"}')
closed=$(done_of full closed_by_server)
slowest=$(done_of full close_s)
echo "   the attacker: $closed of 50 closed (after $slowest s); refused: $full"
echo "   the connected client: $r calls/s, $alone alone"
((full >= 10 && closed == full)) || fail "expected the fds-full refusals to close connections: $closed closed, $full counted"
"$TB_PYTHON" -c 'import json, sys; sys.exit(json.loads(sys.argv[1])[1] > 1.0)' "$slowest" ||
    fail "refusals took $slowest s: a client must not hang"
((r * 3 >= alone)) || fail "the connected client slowed from $alone to $r calls/s"
prlimit --pid "$pid" --nofile="$old_limit":
h2lb_stop || fail "h2lb did not stop cleanly"

echo "== 3. idle and handshake timeouts of 2 s"
mv -f "$(h2lb_log)" "$TB_STATE/logs/h2lb-1.log"
h2lb_start --backends "$(h2lb_backends)" --idle-timeout 2 --handshake-timeout 2 \
    --metrics "$METRICS"
raw0=$(h2lb_counter raw_connections)
holder idle --count 5 --send handshake --hold 9
holder silent --count 3 --send none --hold 9
holder preface --count 3 --send preface --hold 9
opened idle
opened silent
opened preface
accepted0=$(h2lb_metric "$METRICS" accepted_connections_total)
# About 6 s of calls on one channel, across the timeouts: busy, kept.
beside "idle and half-open connections" "$TB_STATE/idle.json" 12000
accepted=$(($(h2lb_metric "$METRICS" accepted_connections_total) - accepted0))
for n in idle silent preface; do
    echo "   $n: $(done_of $n closed_by_server) closed after $(done_of $n close_s) s, GOAWAY $(done_of $n goaway)"
done
idle=$(h2lb_metric "$METRICS" idle_timeouts_total) hs=$(h2lb_metric "$METRICS" handshake_timeouts_total)
echo "   counted: $idle idle timeouts, $hs handshake timeouts; the client used $accepted connection(s)"
[[ $(done_of idle closed_by_server) == 5 && $(done_of idle goaway) == '{"0": 5}' ]] ||
    fail "the idle connections did not all get GOAWAY(NO_ERROR) and a close"
[[ $(done_of preface closed_by_server) == 3 ]] ||
    fail "the connections with the preface alone were not all closed"
raw=$(($(h2lb_counter raw_connections) - raw0))
echo "   silent connections forwarded whole to a backend: $raw"
((raw == 3)) || fail "$raw silent connections went to a backend, not 3"
[[ $(done_of preface goaway) == '{"1": 3}' ]] ||
    fail "the preface-only connections got no GOAWAY(PROTOCOL_ERROR)"
for n in idle preface; do
    "$TB_PYTHON" -c '
import json, sys
lo, hi = json.loads(sys.argv[1])
sys.exit(not (1.9 <= lo and hi <= 6))' "$(done_of $n close_s)" ||
        fail "$n connections closed after $(done_of $n close_s) s, not 2-6 s"
done
((idle == 5 && hs == 3)) || fail "counted $idle idle and $hs handshake timeouts, not 5 and 3"
((accepted == 1)) || fail "the calling client was cut off: it used $accepted connections"
h2lb_stop || fail "h2lb did not stop cleanly"

echo "== 4. 5,000 idle connections"
avail=$(awk '/^MemAvailable:/ {print int($2 / 1024)}' /proc/meminfo)
if ((avail < 1536)); then
    echo "   skipped: $avail MiB available, fewer than 1,536"
else
    mv -f "$(h2lb_log)" "$TB_STATE/logs/h2lb-3.log"
    h2lb_start --backends "$(h2lb_backends)" --max-conns-per-client 0 \
        --metrics "$METRICS"
    pid=$(tb_pid h2lb)
    holder many --count 5000 --hold 60
    opened many 120
    grep -q '"opened": 5000,' "$TB_STATE/logs/many.log" ||
        fail "the attacker did not open 5,000: $(head -c 300 "$TB_STATE/logs/many.log")"
    # Connected is not yet accepted: the daemon takes 64 a turn.
    for ((i = 0; i < 100; i++)); do
        clients=$(h2lb_metric "$METRICS" client_connections)
        ((clients >= 5000)) && break
        sleep 0.1
    done
    sleep 2
    hz=$(getconf CLK_TCK)
    t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    sleep 10
    t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    cpu=$(((t1 - t0) * 100 / hz / 10))
    echo "   $clients clients: the daemon used $cpu% of a CPU over 10 s"
    beside "5,000 idle connections" "$TB_STATE/many.json" 3000
    ((clients >= 5000)) || fail "only $clients of 5,000 connections were served"
    ((cpu <= 10)) || fail "the daemon used $cpu% of a CPU for idle connections"
    tb_kill many
    h2lb_stop || fail "h2lb did not stop cleanly"
fi
echo "PASS: per-address and fd limits refuse at accept, idle and handshake timeouts close, idle connections cost little; the good client was served throughout"
