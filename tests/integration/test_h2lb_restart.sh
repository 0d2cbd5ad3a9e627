#!/usr/bin/env bash
# timeout: 240
#
# test_h2lb_restart - restarts heal: a killed daemon's successor starts by
# itself, and two daemons with one pin dir never both intercept.
#
# h2lb runs with static backends and tc interception of a VIP
# (--intercept tc --intercept-dev vcli --vip), and two probers in the
# client namespace call without pause, one its listen address and one the
# VIP, each on two channels (a channel whose call failed is made anew).
#   (a) SIGKILL under that load: the pins, the daemon's cgroup and the
#       interception's rule, route and nftables table stay behind. `h2lb
#       run` with the same arguments, and no `h2lb unload`, removes them
#       and serves again: both probers' calls succeed within 2 s of the
#       restart. The dead one's cgroup is gone, the pins are the new
#       daemon's, and there is one tc link, one routing rule, one nftables
#       table: nothing twice.
#   (b) A second `h2lb run` with the same pin dir while the first runs:
#       it waits (its log says for whom), attaches and intercepts nothing,
#       listens nowhere, and the first keeps serving. SIGTERM to the first:
#       the second takes over within its --takeover-wait, and the probers
#       are served again. A third with --takeover-wait 1 while the second
#       runs exits 1 with a clear error, having changed nothing.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"
tb_require_cmd bpftool nft

VIP=$TB_VIP:$TB_GREETER_PORT
RESTART_MAX_MS=2000

# The arguments of every `h2lb run` here: the same each time.
run_args() {
    printf '%s\n' run --listen "$H2LB_ADDR" --pin-dir "$H2LB_PIN" \
        --stop-timeout 5 --backends "$(h2lb_backends)" --policy round-robin \
        --intercept tc --intercept-dev vcli --vip "$VIP"
}

# spawn NAME [MORE ARGS...]: `h2lb run` in the node namespace; PID in
# TB_LAST_PID, the spawn time (epoch seconds) in SPAWNED.
spawn() {
    local name=$1 args
    shift
    mapfile -t args < <(run_args)
    SPAWNED=$(date +%s.%N)
    tb_spawn node "$name" "$H2LB_BIN" "${args[@]}" "$@"
}

# The prober: calls TARGET without pause on 2 channels, for at most
# SECONDS; one line per call, "EPOCH ok BACKEND" or "EPOCH err CODE".
PROBER=$(cat <<'PY'
import os, sys, threading, time
sys.path.insert(0, sys.argv[3])
import grpc
import greeter_pb as pb

target, until = sys.argv[1], time.time() + float(sys.argv[2])
lock = threading.Lock()

def say(line):
    with lock:
        print("%.3f %s" % (time.time(), line), flush=True)

def run():
    ch = None
    while time.time() < until:
        if ch is None:
            ch = grpc.insecure_channel(target)
            hello = ch.unary_unary(pb.method_path("SayHello"),
                                   request_serializer=pb.serialize,
                                   response_deserializer=pb.deserialize_reply)
        try:
            rep = hello(pb.HelloRequest(name="probe"), timeout=0.5)
            say("ok " + rep.message.split()[-1])
        except grpc.RpcError as e:
            say("err " + e.code().name)
            ch.close()
            ch = None
            time.sleep(0.02)

ts = [threading.Thread(target=run) for _ in range(2)]
for t in ts:
    t.start()
for t in ts:
    t.join()
PY
)

start_probers() {
    local p i
    printf '%s\n' "$PROBER" >"$TB_STATE/prober.py"
    tb_spawn cli probe-listen "$TB_PYTHON" "$TB_STATE/prober.py" "$H2LB_ADDR" 150 "$TB_PEERS"
    tb_spawn cli probe-vip "$TB_PYTHON" "$TB_STATE/prober.py" "$VIP" 150 "$TB_PEERS"
    tb_on_cleanup 'tb_kill probe-listen; tb_kill probe-vip'
    for p in listen vip; do
        for ((i = 0; i < 100; i++)); do
            grep -q ' ok ' "$TB_STATE/logs/probe-$p.log" 2>/dev/null && break
            sleep 0.1
        done
        grep -q ' ok ' "$TB_STATE/logs/probe-$p.log" || fail "prober $p: no call succeeded"
    done
}

# first_ok PROBER SINCE [ERR]: epoch of the first successful call after
# SINCE (with ERR, of the first failed one); empty if none.
first_ok() {
    awk -v t="$2" -v w="${3:-ok}" '$1 > t && $2 == w { print $1; exit }' \
        "$TB_STATE/logs/probe-$1.log"
}

# served_after SINCE: wait (at most 10 s) until both probers had a call
# succeed after SINCE; prints the later one's delay in ms.
served_after() {
    local i a b
    for ((i = 0; i < 100; i++)); do
        a=$(first_ok listen "$1") b=$(first_ok vip "$1")
        [[ -n $a && -n $b ]] && break
        sleep 0.1
    done
    [[ -n $a && -n $b ]] || return 1
    awk -v s="$1" -v a="$a" -v b="$b" 'BEGIN { m = a > b ? a : b; printf "%d\n", (m - s) * 1000 }'
}

# ok_between PROBER FROM TO: successful calls in that time.
ok_between() {
    awk -v f="$2" -v t="$3" '$1 > f && $1 < t && $2 == "ok"' \
        "$TB_STATE/logs/probe-$1.log" | wc -l
}

# tc_links: BPF links running the tc program of any h2lb whose vips map is
# pinned here, or was (map ids in VIPS_IDS).
tc_links() {
    # shellcheck disable=SC2086 # one argument per map id
    "$TB_PYTHON" - ${VIPS_IDS:-0} <<'PY'
import json, subprocess, sys
def show(what):
    out = subprocess.run(["bpftool", "-j", what, "show"], capture_output=True,
                         text=True).stdout
    return json.loads(out or "[]")
ids = {int(a) for a in sys.argv[1:]}
ours = {p["id"] for p in show("prog") if p.get("name") == "h2lb_tc_ingress"
        and ids & set(p.get("map_ids", []))}
print(sum(1 for l in show("link") if l.get("prog_id") in ours))
PY
}

vips_id() {
    bpftool -j map show pinned "$H2LB_PIN/vips" |
        "$TB_PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["id"])'
}

# steering: "RULES ROUTES NFT", how many of each interception helper.
steering() {
    local rules routes nft=0
    rules=$(tb_exec node ip rule show | grep -c 'lookup 2562' || true)
    routes=$(tb_exec node ip route show table 2562 2>/dev/null | grep -c local || true)
    tb_exec node nft list table ip h2lb >/dev/null 2>&1 && nft=1
    echo "$rules $routes $nft"
}

cgroup_of() {
    find /sys/fs/cgroup /run/h2lb-cgroup2 -maxdepth 6 -type d -name "h2lb-$1" 2>/dev/null | head -1 || true
}

pinned_pid() {
    h2lb_daemon_stats | "$TB_PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["pid"])'
}

# wait_log FILE PATTERN: bounded (10 s).
wait_log() {
    local i
    for ((i = 0; i < 100; i++)); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

tb_up 2
tb_start_greeters
mapfile -t ARGS < <(run_args)
h2lb_start "${ARGS[@]:5}" # run_args less run, --listen and --pin-dir
pid1=$(tb_pid h2lb)
VIPS_IDS=$(vips_id)
start_probers
links0=$(tc_links)
steer0=$(steering)
echo "   first daemon $pid1: $links0 tc link(s), rule/route/nft: $steer0"
[[ $links0 -ge 1 && $steer0 == "1 1 1" ]] || fail "interception is not set up"

echo "== (a) SIGKILL under load, then h2lb run again, without h2lb unload"
sleep 1
kill -KILL "$pid1"
wait "$pid1" 2>/dev/null || true
killed=$(date +%s.%N)
sleep 0.5
[[ -e $H2LB_PIN/conns ]] || fail "expected pins left by the killed daemon"
cg1=$(cgroup_of "$pid1")
[[ -n $cg1 ]] || fail "expected the killed daemon's cgroup"
[[ $(steering) == "1 1 1" ]] || fail "expected the killed daemon's rule, route and table"
[[ -n $(first_ok listen "$killed" err) ]] || fail "calls did not fail while no daemon ran"
echo "   left behind: pins, $cg1, rule/route/nft $(steering); calls failing"
spawn h2lb
pid2=$TB_LAST_PID
ms=$(served_after "$SPAWNED") || fail "not serving 10 s after the restart"
echo "   restarted as $pid2: both probers served again $ms ms after the restart"
((ms <= RESTART_MAX_MS)) || fail "serving again took $ms ms, want <= $RESTART_MAX_MS"
grep -q "took over $H2LB_PIN from h2lb pid $pid1, which died" "$(h2lb_log)" ||
    fail "the new daemon did not say it took over from $pid1"
grep "took over" "$(h2lb_log)" | sed 's/^/   log: /'
[[ -z $(cgroup_of "$pid1") ]] || fail "the dead daemon's cgroup is still there"
[[ $(pinned_pid) == "$pid2" ]] || fail "the pins are not the new daemon's"
VIPS_IDS="$VIPS_IDS $(vips_id)"
[[ $(tc_links) == "$links0" ]] || fail "$(tc_links) tc links, want $links0"
[[ $(steering) == "1 1 1" ]] || fail "rule/route/nft: $(steering), want one each"
echo "   dead one's cgroup gone; $(tc_links) tc link(s), rule/route/nft $(steering)"

echo "== (b) a second h2lb run with the same pin dir waits for the first"
: >"$TB_STATE/logs/h2lb-b.log"
spawn h2lb-b --takeover-wait 30
pid3=$TB_LAST_PID
tb_on_cleanup 'tb_kill h2lb-b TERM'
wait_log "$TB_STATE/logs/h2lb-b.log" "held by h2lb pid $pid2: waiting" ||
    fail "the second daemon does not say it waits for $pid2"
t=$(date +%s.%N)
sleep 1.5
kill -0 "$pid3" 2>/dev/null || fail "the second daemon did not wait"
grep -q "attached\|intercept:" "$TB_STATE/logs/h2lb-b.log" &&
    fail "the second daemon attached something while the first ran"
[[ -z $(cgroup_of "$pid3") ]] || fail "the second daemon made its cgroup"
[[ $(pinned_pid) == "$pid2" ]] || fail "the pins changed under the first daemon"
[[ $(tc_links) == "$links0" && $(steering) == "1 1 1" ]] ||
    fail "hooks changed: $(tc_links) tc links, rule/route/nft $(steering)"
[[ $(tb_exec node ss -Hltnp) != *"pid=$pid3,"* ]] ||
    fail "the second daemon listens"
(($(ok_between listen "$t" "$(date +%s.%N)") > 0 && $(ok_between vip "$t" "$(date +%s.%N)") > 0)) ||
    fail "the first daemon stopped serving while the second waited"
echo "   waiting, nothing attached; the first still serves"

kill -TERM "$pid2"
for ((i = 0; i < 100; i++)); do
    kill -0 "$pid2" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$pid2" 2>/dev/null && fail "the first daemon did not stop"
stopped=$(date +%s.%N)
wait "$pid2" 2>/dev/null && rc=0 || rc=$?
((rc == 0)) || fail "the first daemon exited $rc"
ms=$(served_after "$stopped") || fail "the second daemon did not take over"
echo "   first stopped (SIGTERM): the second serves $ms ms later"
grep -q "took over" "$TB_STATE/logs/h2lb-b.log" &&
    fail "the second daemon found leftovers of a cleanly stopped one"
[[ $(pinned_pid) == "$pid3" ]] || fail "the pins are not the second daemon's"
VIPS_IDS="$VIPS_IDS $(vips_id)"
[[ $(tc_links) == "$links0" && $(steering) == "1 1 1" ]] ||
    fail "hooks: $(tc_links) tc links, rule/route/nft $(steering)"

echo "== (c) a third, --takeover-wait 1, while the second runs: exits 1"
mapfile -t args < <(run_args)
t=$(date +%s%N)
tb_exec node timeout 20 "$H2LB_BIN" "${args[@]}" --takeover-wait 1 \
    >"$TB_STATE/third.log" 2>&1 && rc=0 || rc=$?
t=$((($(date +%s%N) - t) / 1000000))
echo "   exit $rc after $t ms: $(grep -o 'is still in use.*' "$TB_STATE/third.log")"
((rc == 1)) || fail "the third daemon exited $rc, want 1: $(cat "$TB_STATE/third.log")"
grep -q "$H2LB_PIN is still in use by h2lb pid $pid3 .* after waiting 1 s" "$TB_STATE/third.log" ||
    fail "no clear error: $(cat "$TB_STATE/third.log")"
grep -q "attached\|intercept:" "$TB_STATE/third.log" && fail "the third attached something"
[[ $(pinned_pid) == "$pid3" ]] || fail "the third daemon touched the pins"
[[ $(tc_links) == "$links0" && $(steering) == "1 1 1" ]] ||
    fail "hooks: $(tc_links) tc links, rule/route/nft $(steering)"
t=$(date +%s.%N)
sleep 0.5
(($(ok_between listen "$t" "$(date +%s.%N)") > 0)) || fail "the second daemon stopped serving"

kill -TERM "$pid3"
for ((i = 0; i < 100; i++)); do
    kill -0 "$pid3" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$pid3" 2>/dev/null && fail "the second daemon did not stop"
[[ ! -e $H2LB_PIN ]] || fail "$H2LB_PIN left behind"
[[ $(tc_links) == 0 && $(steering) == "0 0 0" ]] ||
    fail "left behind: $(tc_links) tc links, rule/route/nft $(steering)"
ls /run/h2lb/*"${H2LB_PIN##*/}"* >/dev/null 2>&1 && fail "the lock file was left behind"
echo "PASS: a killed daemon's successor cleaned up and served within $RESTART_MAX_MS ms; a second daemon waited, took over on SIGTERM, and gave up with a clear error"
