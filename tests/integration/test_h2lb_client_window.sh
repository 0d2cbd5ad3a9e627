#!/usr/bin/env bash
# timeout: 300
#
# test_h2lb_client_window - h2lb sends a client no DATA beyond the window
# the client holds it to, with windows that change and legs that come and
# go idle.
#
# (a) SETTINGS ACK first. A client's SETTINGS_INITIAL_WINDOW_SIZE is in
#     force for it once h2lb has acknowledged it (RFC 9113 6.5.3); grpc
#     core checks a stream's DATA against the acknowledged window. h2lb
#     relayed a client's new window to its legs first and ACKed after, so a
#     backend's DATA under a larger window could reach the client before
#     the ACK. H2LB_TEST_SETTINGS_PAUSE_MS makes that gap
#     wide (300 ms between the two). tests/peers/settings_order_client.py,
#     through h2lb in front of nghttpd, counts the DATA of a 1 MiB download
#     that arrives before the ACK of the SETTINGS that raised its window
#     to 1 MiB: a second SETTINGS sent while the stream waits at the
#     65,535-byte default (the order before failed it: 131,070 bytes came
#     before the ACK), and its first SETTINGS (this one passed with the
#     order before too: the pause also holds back the legs' connection
#     windows, which then keep the backend at 65,535).
# (b) Idle legs' windows. 30 runs of grpc's own client downloading 32 x 4
#     MiB, 4 calls at once, over 4 backends, beside a CPU hog: every call
#     must succeed. A leg that went idle holding a large share of the
#     client's window (590 KiB) counted 64 KiB less than that; when a
#     stream came back to it, it sent beyond the client's window and grpc
#     failed the connection ("frame of size 16384 overflows local window";
#     test_h2lb_userspace_bytes failed so once in CI). With the build
#     before, 3 runs of this test in 3 failed, by the 10th download; with
#     this one, 3 in 3 passed.
# (c) Legs bound late. tests/peers/late_leg_client.py, through h2lb in
#     front of nghttpd, uses up its 512 KiB connection window on one
#     download, then starts a second, which goes to a backend with no
#     stream open; nothing may come beyond the window. With --early its
#     first download is on the first leg and the second on a leg bound
#     then: told the client's stream window at once, that leg sent its
#     connection's first 65,535 bytes beyond the window (4 runs in 4).
#     Without, the second may go to the first leg, bound at accept and
#     idle, which holds a share of the window: the eager refill counted
#     its first 65,535 bytes out and gave them to the busy leg, and the
#     idle leg then sent them beyond the window (3 runs in 6). Each run
#     then grants more: both downloads must end.
# (d) A window lowered under a running download. h2lb relayed the lower
#     value to the legs and ACKed the client at once, so DATA a backend
#     had sent under the old window reached the client after the ACK,
#     beyond the new one. tests/peers/lagging_server.py acts on each frame
#     50 ms after it arrives (a long path, without netem) and sends 16 KiB
#     every 2 ms; settings_order_client.py --mode lower starts at 1 MiB,
#     lowers to 64 KiB at its first DATA, and gives back nothing for
#     0.3 s after the ACK. With the ACK sent at once, 3 runs in 3 overran
#     the window by 327,680 to 344,064 bytes; now h2lb ACKs once the leg
#     has ACKed (the DATA before it), and nothing may overrun. Then
#     two SETTINGS in one write while the ACK waits: lowered twice
#     (131,072 then 65,536: the second waits for the legs again), and
#     lowered then raised (65,536 then 262,144: both ACKs go once the
#     legs ACKed the lower value, the raise is relayed after them).
# (e) A backend that never ACKs that SETTINGS (lagging_server.py
#     --ack-settings 2: the handshake's and the leg's start only) may not
#     hold the client's ACK for ever: after 5 s its leg fails with
#     GOAWAY(SETTINGS_TIMEOUT), the client's stream on it ends short, the
#     client gets its ACK, and new requests go to a new leg. Other
#     clients of that backend are served meanwhile (40 downloads within
#     3 s, during the wait).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"

tb_require_cmd nghttpd

tb_up 4
tb_start_nghttpd
tb_start_greeters

export H2LB_TEST_SETTINGS_PAUSE_MS=300
H2LB_EXPECT_READY=4 h2lb_start --backends "$(h2lb_backends "$TB_HTTP_PORT")"
ADDR=$TB_NODE_IP:$H2LB_PORT
for mode in raise first; do
    out=$(tb_run cli "$TB_PYTHON" "$TB_PEERS/settings_order_client.py" \
        --target "$ADDR" --mode "$mode") ||
        fail "$mode: DATA beyond the acknowledged window, or no whole response: $out"
    echo "   $out"
done
h2lb_stop || fail "h2lb did not stop cleanly"
unset H2LB_TEST_SETTINGS_PAUSE_MS

H2LB_EXPECT_READY=4 h2lb_start --backends "$(h2lb_backends "$TB_HTTP_PORT")"
for early in --early --early --early "" "" ""; do
    out=$(tb_run cli "$TB_PYTHON" "$TB_PEERS/late_leg_client.py" \
        --target "$ADDR" $early) ||
        fail "leg bound late ($early): DATA beyond the client's window, or no whole responses: $out"
    echo "   $out"
done
h2lb_stop || fail "h2lb did not stop cleanly"

# dstat NAME: the daemon's counter NAME.
dstat() {
    h2lb_daemon_stats | "$TB_PYTHON" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}
# field JSON NAME: one field of a client's JSON line.
field() {
    "$TB_PYTHON" -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"
}

tb_spawn b1 lagging "$TB_PYTHON" "$TB_PEERS/lagging_server.py" --port 9001
tb_spawn b2 hostage "$TB_PYTHON" "$TB_PEERS/lagging_server.py" --port 9001 \
    --ack-settings 2
tb_wait_port b1 9001 10
tb_wait_port b2 9001 10
H2LB_EXPECT_READY=1 h2lb_start --backends "$(tb_backend_ip 1):9001"
for low in 65536 65536 65536 131072,65536 65536,262144; do
    out=$(tb_run cli "$TB_PYTHON" "$TB_PEERS/settings_order_client.py" \
        --target "$H2LB_ADDR" --mode lower --low "$low") ||
        fail "window lowered to $low: DATA beyond it after its ACK, or no whole response: $out"
    echo "   $low: $out"
    (($(field "$out" before_ack) > 65536)) ||
        fail "window lowered to $low: the backend did not send under the old window before the ACK; the run proves nothing"
done
# A wait for each lower value: 3, then 2 (the second value waits for
# the legs again), then 1 (the raise behind it is ACKed with it).
(($(dstat settings_acks_held) == 6)) ||
    fail "settings_acks_held is $(dstat settings_acks_held), not 6"
h2lb_stop || fail "h2lb did not stop cleanly"

H2LB_EXPECT_READY=1 h2lb_start --backends "$(tb_backend_ip 2):9001"
tb_run cli "$TB_PYTHON" "$TB_PEERS/settings_order_client.py" \
    --target "$H2LB_ADDR" --mode lower --allow-reset >"$TB_STATE/hostage.out" &
hostage=$!
# Beside it, while its ACK waits: other clients of the same backend, whose
# legs ACK, are served as usual.
sleep 1
t0=$(date +%s%N)
beside=$(tb_run cli h2load -n 40 -c 4 -m 10 "http://$H2LB_ADDR/" 2>&1) || true
ms=$((($(date +%s%N) - t0) / 1000000))
grep -q '^requests: 40 total, 40 started, 40 done, 40 succeeded' <<<"$beside" ||
    fail "clients beside the held ACK: $(grep '^requests:' <<<"$beside")"
echo "   beside: 40 requests of 1 MiB in $ms ms while the ACK waited"
((ms < 3000)) || fail "clients beside the held ACK took $ms ms"
wait "$hostage" ||
    fail "backend that never ACKs: no ACK, DATA beyond the window, or the stream did not end: $(cat "$TB_STATE/hostage.out")"
out=$(cat "$TB_STATE/hostage.out")
echo "   $out"
"$TB_PYTHON" -c 'import sys; sys.exit(not 4.5 <= float(sys.argv[1]) <= 8)' "$(field "$out" ack_s)" ||
    fail "the ACK came after $(field "$out" ack_s) s, not about 5"
(($(field "$out" total) < 1048576)) || fail "the stream on the failed leg did not end short"
(($(dstat settings_timeouts) == 1)) ||
    fail "settings_timeouts is $(dstat settings_timeouts), not 1"
grep -q "no ACK of its client's SETTINGS in 5000 ms" "$(h2lb_log)" ||
    fail "the daemon's log does not say why the leg failed"
out=$(tb_run cli h2load -n 4 -m 2 "http://$H2LB_ADDR/" 2>&1) || true
grep -q '^requests: 4 total, 4 started, 4 done, 4 succeeded' <<<"$out" ||
    fail "requests after the leg failed did not succeed: $(grep '^requests:' <<<"$out")"
h2lb_stop || fail "h2lb did not stop cleanly"

h2lb_start
# A CPU hog, so that the daemon's refills and the kernel's redirects
# interleave in more ways: at most 240 s, and the cleanup kills it.
(end=$((SECONDS + 240)); while ((SECONDS < end)); do :; done) &
hog=$!
tb_on_cleanup "kill $hog 2>/dev/null"
for ((i = 1; i <= 30; i++)); do
    tb_client --target "$H2LB_ADDR" --mode server-stream --calls 32 --count 4 \
        --reply-size $((1 << 20)) --concurrency 4 --json >"$TB_STATE/grpc.out" 2>&1 ||
        fail "grpc download $i failed: $(grep -m1 'call failed' "$TB_STATE/grpc.out")"
done
kill "$hog"
echo "   grpc: 30 x 32 calls of 4 MiB each succeeded beside a CPU hog"
h2lb_stop || fail "h2lb did not stop cleanly"
echo "PASS: no DATA beyond a client's window: SETTINGS ACKed before use, lowered windows ACKed after the legs', legs bound late wait for room, idle legs' shares counted"
