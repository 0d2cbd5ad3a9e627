#!/usr/bin/env bash
# timeout: 300
#
# test_h2lb_soak - a minute of mixed calls at high concurrency.
#
# Unary (100 in flight), server-streaming, client-streaming and bidi clients
# run side by side, over and over (new connections each round) for SOAK_S
# seconds. No call may fail or stall; the daemon's RSS must not grow once
# warm; when everything is done, the kernel holds no stream and no client
# connection: nothing leaked.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"

SOAK_S=${SOAK_S:-60}

rss_kib() {
    awk '/^VmRSS:/ {print $2}' "/proc/$(tb_pid h2lb)/status"
}

tb_up 4
tb_start_greeters --workers 128
h2lb_start

# One kind of client, in a loop until the deadline; fails on any error.
loop() {
    local end=$1 rounds=0
    shift
    while ((SECONDS < end)); do
        tb_client --target "$H2LB_ADDR" --json --timeout 60 "$@" >/dev/null ||
            { echo "client $* failed" >&2; return 1; }
        rounds=$((rounds + 1))
    done
    echo "$rounds"
}

warm_end=$((SECONDS + 5))
loop "$warm_end" --calls 500 --concurrency 50 >/dev/null || fail "warm-up failed"
rss0=$(rss_kib)
mem0=$(kernel_mem_kib)

end=$((SECONDS + SOAK_S))
pids=()
loop "$end" --calls 2000 --concurrency 100 >"$TB_STATE/unary" & pids+=($!)
loop "$end" --mode server-stream --calls 20 --count 200 --concurrency 4 \
    --reply-size 1024 >"$TB_STATE/sstream" & pids+=($!)
loop "$end" --mode client-stream --calls 20 --count 200 --concurrency 4 \
    --payload 1024 >"$TB_STATE/cstream" & pids+=($!)
loop "$end" --mode bidi --calls 10 --count 100 --concurrency 4 \
    >"$TB_STATE/bidi" & pids+=($!)
failed=0
for p in "${pids[@]}"; do
    wait "$p" || failed=1
done
((failed == 0)) || fail "a client failed during the soak"
echo "   rounds: unary $(<"$TB_STATE/unary"), server-stream $(<"$TB_STATE/sstream")," \
    "client-stream $(<"$TB_STATE/cstream"), bidi $(<"$TB_STATE/bidi")"

rss1=$(rss_kib)
echo "   daemon RSS: $rss0 KiB after warm-up, $rss1 KiB after the soak"
((rss1 - rss0 < 1024)) || fail "daemon RSS grew by $((rss1 - rss0)) KiB"
sleep 1
mem1=$(kernel_mem_kib)
echo "   kernel memory: $((mem0 / 1024)) MiB after warm-up, $((mem1 / 1024)) MiB after the soak"
# Windows are 64 KiB per connection and leg: a few MiB at most stay queued.
(((mem1 - mem0) / 1024 < 64)) || fail "kernel memory grew by $(((mem1 - mem0) / 1024)) MiB"

# Everything closed: no stream left, no client connection left.
sleep 0.5
streams=$(h2lb_map streams | "$TB_PYTHON" -c 'import json,sys; print(len(json.load(sys.stdin)))')
clients=$(h2lb_map conns | "$TB_PYTHON" -c '
import json, sys
print(sum(1 for e in json.load(sys.stdin) if e["value"]["role"] == 1))')
open=$(h2lb_map backends | "$TB_PYTHON" -c '
import json, sys
print(sum(e["value"]["open_streams"] for e in json.load(sys.stdin)))')
echo "   left in the kernel: $streams streams, $clients client connections, $open open"
((streams == 0 && clients == 0 && open == 0)) || fail "state leaked in the kernel"

h2lb_stop || fail "h2lb did not stop cleanly"
echo "PASS: ${SOAK_S}s of mixed calls, no error, no growth, no leak"
