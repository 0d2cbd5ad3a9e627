#!/usr/bin/env bash
# timeout: 150
#
# test_h2lb_fast_path_tcp_mem - the fast path's gate on the node's TCP
# memory count (--fast-path-tcp-mem; docs/kernel-facts.md K23).
#
# The fast path's answers enter the clients' sockets by a kernel path
# that loses a little of TCP's node-wide memory count for every byte, for
# good; above net.ipv4.tcp_mem's marks every TCP socket on the node would
# suffer. So the daemon closes the fast path to new clients while the
# count is above --fast-path-tcp-mem, and opens it again below 7/8 of it.
#
#   1. Two hogs (tests/peers/tcp_hog.py: connections nobody reads) raise
#      the count from B: the first by at least 128 MiB and half of B, to
#      A; the second by about A/8 more. h2lb starts with --fast-path on
#      and the limit halfway between A and the top (about 17/16 of A): it
#      logs that the fast path is closed, and says so in its status and
#      /metrics. h2load in the clients' cgroup (200 small requests on 4
#      connections, and 8 downloads of 1 MiB) is served in full on
#      today's path: every connection turned away, none joined the fast
#      path, nothing entered a client socket by ingress.
#   2. The second hog goes: the count falls to about A, below the limit
#      but above 7/8 of it. For 3 s (three of the daemon's looks) the
#      fast path stays closed, and a client is turned away.
#   3. The first hog goes (the count falls to about B, below 7/8 of the
#      limit): within 3 s the daemon logs that the fast path is open
#      again, and the same clients join it (all 5 client sockets; and
#      answers switch to ingress, for at least one of them), with none
#      turned away.
#   4. With no --fast-path-tcp-mem, the limit is half of net.ipv4.tcp_mem's
#      first mark, which the daemon's namespace does not show: its
#      estimate is within 10% of what the initial namespace shows.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"

tb_require_cmd h2load

# tcp_mem: the node's TCP memory count, in bytes (in the machine's page
# size, as the daemon counts it).
PAGE=$(getconf PAGESIZE)
tcp_mem() { echo $(($(tcp_mem_pages) * PAGE)); }

# clients: the two h2load runs of step 1 and 2, in the clients' cgroup;
# fails on any request not served.
clients() {
    local out
    for args in "-n 200 -c 4 -m 4 http://$H2LB_ADDR/index.txt" \
        "-n 8 -c 1 -m 4 http://$H2LB_ADDR/big.bin"; do
        # shellcheck disable=SC2086 # words on purpose
        out=$(H2LB_TEST_FAST_PATH=1 tb_run cli h2load $args 2>&1) ||
            fail "h2load $args failed: $out"
        if ! grep -q "succeeded, 0 failed, 0 errored, 0 timeout" <<<"$out" ||
            grep -q " 0 succeeded" <<<"$out"; then
            fail "h2load $args: $(grep '^requests:' <<<"$out")"
        fi
    done
}

dstat() { h2lb_daemon_stats | "$TB_PYTHON" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

tb_up 1
tb_start_nghttpd
tb_clients_cgroup

echo "== 1. over the limit: the fast path is closed to new clients"
B=$(tcp_mem)
want=$((B / 2 >> 20))
((want >= 128)) || want=128
# hog NAME MIB: a hog that raised the count by about MIB MiB
hog() {
    tb_spawn node "$1" "$TB_PYTHON" "$TB_PEERS/tcp_hog.py" --addr "$TB_NODE_IP" --mib "$2"
    for ((i = 0; i < 100; i++)); do
        grep -q '"connections"' "$TB_STATE/logs/$1.log" 2>/dev/null && break
        sleep 0.1
    done
    grep -q '"connections"' "$TB_STATE/logs/$1.log" ||
        fail "$1 did not fill its connections: $(cat "$TB_STATE/logs/$1.log")"
}
hog hog "$want"
A=$(tcp_mem)
((A - B >= 96 << 20)) || fail "the first hog raised the count by only $(((A - B) >> 20)) MiB"
want=$((A / 8 >> 20))
((want >= 16)) || want=16
hog hog2 "$want"
C=$(tcp_mem)
echo "   before: $((B >> 20)) MiB; the first hog: $(cat "$TB_STATE/logs/hog.log"), $((A >> 20)) MiB; the second: $(cat "$TB_STATE/logs/hog2.log"), $((C >> 20)) MiB"
((C - A >= 6 << 20)) || fail "the second hog raised the count by only $(((C - A) >> 20)) MiB"
LIMIT=$(((A + C) / 2))
# The window this leaves for step 2: A sits (C - A)/2 below the limit
# and about A/16 above 7/8 of it, 8 MiB or more each with A at 128 MiB;
# the count moves by up to a MiB per CPU with nothing leaking
# (docs/kernel-facts.md K23), and a hog's rise is read off it: with A at
# 69 MiB, a second hog asked for 8 MiB (it saw 9.0) moved the count by
# 5, and the limit had only 2.5 MiB above A (once, in a run of the
# fast-path suite).
((LIMIT - A >= 3 << 20 && A - LIMIT * 7 / 8 >= 3 << 20 && B < LIMIT * 7 / 8)) ||
    fail "cannot place the limit: B $((B >> 20)), A $((A >> 20)), limit $((LIMIT >> 20)) MiB"
h2lb_start --backends "$(tb_backend_ip 1):8080" --fast-path on \
    --intercept-cgroup "$CG" --fast-path-tcp-mem "$LIMIT" --metrics "$TB_NODE_IP:9090"
grep -q "fast path: closed to new clients: the node's TCP memory count is" "$(h2lb_log)" ||
    fail "no log line says the fast path is closed: $(grep 'fast path' "$(h2lb_log)")"
(($(dstat fast_closed) == 1)) || fail "status: fast_closed is not 1"
(($(h2lb_metric "$TB_NODE_IP:9090" fast_path_closed) == 1)) ||
    fail "/metrics: h2lb_fast_path_closed is not 1"
clients
away=$(h2lb_counter fast_path_turned_away)
joined=$(h2lb_counter fast_path_clients)
ingress=$(h2lb_counter fast_path_ingress_bytes)
echo "   turned away $away, joined $joined, ingress bytes $ingress"
((away == 5)) || fail "$away client sockets turned away, want 5 (4 + 1)"
((joined == 0 && ingress == 0)) || fail "clients joined the closed fast path"

echo "== 2. below the limit, above 7/8 of it: still closed"
tb_kill hog2 TERM
n=$(grep -c "fast path: " "$(h2lb_log)")
sleep 3
now=$(tcp_mem)
echo "   the count: $((now >> 20)) MiB; the limit $((LIMIT >> 20)) MiB, 7/8 of it $((LIMIT * 7 / 8 >> 20)) MiB"
((now < LIMIT && now * 8 > LIMIT * 7)) ||
    fail "the count ($((now >> 20)) MiB) is not between 7/8 of the limit and the limit"
(($(grep -c "fast path: " "$(h2lb_log)") == n)) ||
    fail "the gate changed: $(grep 'fast path: ' "$(h2lb_log)" | tail -1)"
(($(dstat fast_closed) == 1)) || fail "status: fast_closed is not 1"
out=$(H2LB_TEST_FAST_PATH=1 tb_run cli h2load -n 20 -c 1 "http://$H2LB_ADDR/index.txt" 2>&1) ||
    fail "h2load failed: $out"
grep -q "20 succeeded" <<<"$out" || fail "h2load: $(grep '^requests:' <<<"$out")"
away1=$(h2lb_counter fast_path_turned_away)
echo "   3 s later: still closed; a client turned away: $((away1 - away))"
((away1 == away + 1)) || fail "want the client turned away, got $((away1 - away))"
away=$away1

echo "== 3. below 7/8 of it: open again"
tb_kill hog TERM
for ((i = 0; i < 30; i++)); do
    grep -q "fast path: open to new clients again" "$(h2lb_log)" && break
    sleep 0.1
done
grep -q "fast path: open to new clients again" "$(h2lb_log)" ||
    fail "the fast path did not open again: the count is $(($(tcp_mem) >> 20)) MiB, the limit $((LIMIT >> 20)) MiB"
(($(dstat fast_closed) == 0)) || fail "status: fast_closed is not 0"
clients
away2=$(h2lb_counter fast_path_turned_away)
joined=$(h2lb_counter fast_path_clients)
rx=$(h2lb_counter fast_path_rx)
echo "   turned away $((away2 - away)), joined $joined, switched to ingress $rx"
((away2 == away)) || fail "$((away2 - away)) client sockets turned away with the fast path open"
((joined == 5)) || fail "$joined client sockets joined the fast path, want 5"
((rx >= 1)) || fail "no client's answers switched to ingress"
h2lb_stop || fail "h2lb did not stop cleanly"

echo "== 4. the default limit: half of net.ipv4.tcp_mem's first mark"
# The node namespace does not show tcp_mem: the daemon estimates it from
# MemTotal, and the estimate must be within 10% of the one this (the
# initial) namespace shows.
: >"$(h2lb_log)"
h2lb_start --backends "$(tb_backend_ip 1):8080" --fast-path on --intercept-cgroup "$CG"
line=$(grep -o "closed to new clients above [0-9]* MiB of TCP memory on the node.*" "$(h2lb_log)") ||
    fail "no log line gives the limit: $(grep 'fast path' "$(h2lb_log)")"
got=$(awk '{ print $6 }' <<<"$line")
want=$(($(awk '{ print $1 }' /proc/sys/net/ipv4/tcp_mem) / 2 * PAGE >> 20))
echo "   $line; half of tcp_mem's first mark here: $want MiB"
((got * 10 >= want * 9 && got * 10 <= want * 11)) ||
    fail "the default limit is $got MiB, want about $want"
(($(dstat fast_closed) == 0)) || fail "closed at the default limit"
h2lb_stop || fail "h2lb did not stop cleanly"
echo "PASS: closed to new clients above --fast-path-tcp-mem, open again below"
