#!/usr/bin/env bash
# timeout: 120
#
# test_h2lb_leg_burst - responses of many streams in one burst from a
# backend, then stream resets right behind them.
#
# tests/peers/burst_server.py waits for 20 streams on a connection, then
# writes in one send the responses of the first 10 (HEADERS and DATA with
# END_STREAM each) and RST_STREAM for the other 10. The responses reach h2lb
# back to back on one backend connection, so they travel as messages of
# several streams (leg_run); the resets come right after, one message each.
# Every stream must end in the kernel's books: 20 opened, 10 reset, none
# left open, nothing left in the streams map; and h2load must see 10
# responses and 10 failed streams. Then the same burst with invalid
# padding in the last response's DATA: h2lb finds it (a protocol error
# of the backend's) and the client never gets it.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"

tb_require_cmd h2load

tb_up 1
tb_spawn b1 burst "$TB_PYTHON" "$TB_PEERS/burst_server.py" --port 9001 --streams 20
tb_wait_port b1 9001 10
H2LB_EXPECT_READY=1 h2lb_start --backends "$(tb_backend_ip 1):9001"

# kernel_books: "STREAMS RESETS OPEN MAP_ENTRIES MULTI" from the pinned maps.
kernel_books() {
    local map
    map=$(h2lb_map streams | "$TB_PYTHON" -c 'import json, sys; print(len(json.load(sys.stdin)))')
    "$H2LB_BIN" status -j --pin-dir "$H2LB_PIN" | "$TB_PYTHON" -c '
import json, sys
s = json.load(sys.stdin)
b = s["backends"][0]
print(b["streams"], b["resets"], b["open_streams"], sys.argv[1],
      s["counters"]["multi_stream_messages"])' "$map"
}

# A client that keeps its connection open once its streams are done: the
# books must be right while it lives (its close would end leftovers).
tb_run cli "$TB_PYTHON" "$TB_PEERS/burst_client.py" --target "$H2LB_ADDR" \
    --streams 20 --hold 3 >"$TB_STATE/burst.out" &
client=$!
for ((i = 0; i < 50; i++)); do
    [[ -s $TB_STATE/burst.out ]] && break
    sleep 0.1
done
sleep 0.2
read -r streams resets open left multi <<<"$(kernel_books)"
echo "   client sees: $(head -1 "$TB_STATE/burst.out")"
echo "   kernel, connection still open: $streams streams, $resets reset, $open open, $left in the streams map; $multi messages of several streams"
wait "$client" || fail "the client did not see every stream end: $(cat "$TB_STATE/burst.out")"
[[ $(head -1 "$TB_STATE/burst.out") == '{"responses": 10, "resets": 10}' ]] ||
    fail "want 10 responses and 10 resets"
((streams == 20 && resets == 10)) || fail "the kernel counted $streams streams and $resets resets"
((open == 0 && left == 0)) || fail "streams left open: $open (map: $left)"
((multi > 0)) || fail "no message carried several streams: the burst was not merged"

# And a real client: h2load sees the same.
out=$(tb_run cli h2load -c 1 -m 20 -n 20 -T 10 "http://$H2LB_ADDR/" 2>&1) || true
grep -Eq "^requests: 20 total, 20 started, 20 done, 10 succeeded, 10 failed" <<<"$out" ||
    fail "h2load did not see 10 responses and 10 resets: $(grep '^requests:' <<<"$out")"
echo "   h2load: 10 responses, 10 resets"
h2lb_stop || fail "h2lb did not stop cleanly"

# The same burst with the last response's DATA padded beyond its length
# (a connection error, RFC 9113 6.1): the frame rules look only at a
# message's first frame, so a padded frame must start a message of its
# own, never ride in another stream's run (leg_run), and h2lb, not the
# client, finds the backend's error. (The client's own connection then
# goes on: the backend's streams end, and nothing invalid reaches it.)
tb_spawn b1 burst-pad "$TB_PYTHON" "$TB_PEERS/burst_server.py" --port 9002 \
    --streams 20 --bad-pad
tb_wait_port b1 9002 10
H2LB_EXPECT_READY=1 h2lb_start --backends "$(tb_backend_ip 1):9002"
errors0=$(h2lb_counter protocol_errors)
tb_run cli "$TB_PYTHON" "$TB_PEERS/burst_client.py" --target "$H2LB_ADDR" \
    --streams 20 --hold 0 >"$TB_STATE/pad.out" ||
    fail "the client did not see every stream end: $(cat "$TB_STATE/pad.out")"
echo "   invalid padding in a burst: client sees $(head -1 "$TB_STATE/pad.out") $(sed -n 3p "$TB_STATE/pad.out"); h2lb counted $(($(h2lb_counter protocol_errors) - errors0)) protocol error(s)"
[[ $(sed -n 3p "$TB_STATE/pad.out") == '{"bad_padding": 0}' ]] ||
    fail "the backend's invalid padding reached the client"
(($(h2lb_counter protocol_errors) > errors0)) ||
    fail "h2lb did not find the backend's invalid padding"
h2lb_stop || fail "h2lb did not stop cleanly"
echo "PASS: a burst of responses of many streams and resets right behind them: every stream ended; invalid padding in one stopped at h2lb"
