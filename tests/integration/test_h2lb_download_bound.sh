#!/usr/bin/env bash
# timeout: 120
#
# test_h2lb_download_bound - memory stays bounded toward a client that
# grants everything and reads nothing.
#
# HTTP/2 lets a client grant 2 GiB of window per connection. sk_skb
# redirects have no backpressure (docs/kernel-facts.md K5): if h2lb widened the
# backends' windows by the client's grant alone, all the backends send
# would queue in the kernel, uncharged, while the client does not read.
# Here a client (tests/peers/lazy_reader.py) with a 64 KiB receive buffer
# grants 2^31-1, asks four nghttpd backends for 64 x 1 MiB and reads
# nothing for 3 s. h2lb may forward what the client's TCP has not
# acknowledged up to --peer-buffer, plus the windows its legs hold (as
# much again, or 64 KiB per leg): far less than the 64 MiB offered, and
# the kernel's memory must not grow by that. Then the client reads, and
# all 64 responses arrive whole: the held-back windows open again with no
# WINDOW_UPDATE from the client, which granted everything up front. Once
# with the default 4M, once with --peer-buffer 1M.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"

STREAMS=64
N=4

tb_require_cmd nghttpd "$TB_PYTHON"

# client_tx: DATA bytes the kernel forwarded to the one client connection.
client_tx() {
    "$H2LB_BIN" conns -j --pin-dir "$H2LB_PIN" | "$TB_PYTHON" -c '
import json, sys
print(sum(c["tx_data"] for c in json.load(sys.stdin) if c["role"] == "client"))'
}

# lazy_round LIMIT [RUN ARGS...]: a fresh h2lb, the lazy client, and the
# checks; while the client reads nothing, at most LIMIT bytes reach it.
lazy_round() {
    local limit=$1 out=$TB_STATE/logs/lazy.log base peak grew held result i
    shift
    h2lb_start --backends "${backends%,}" --policy round-robin "$@"
    rm -f "$out"
    base=$(kernel_mem_kib)
    tb_spawn cli lazy "$TB_PYTHON" "$TB_PEERS/lazy_reader.py" --target "$H2LB_ADDR" \
        --streams "$STREAMS" --hold 3 --timeout 60
    for ((i = 0; i < 100; i++)); do
        grep -q holding "$out" 2>/dev/null && break
        sleep 0.1
    done
    grep -q holding "$out" || fail "the client did not get to send its requests: $(cat "$out")"
    sleep 2
    held=$(client_tx)
    peak=$(kernel_mem_kib)
    grew=$(((peak - base) / 1024))
    echo "   forwarded to the client while it read nothing: $held bytes of $((STREAMS << 20)) offered"
    echo "   kernel memory grew by $grew MiB"
    ((held <= limit)) || fail "h2lb forwarded $held bytes to a client that reads nothing, over $limit"
    ((grew < 24)) || fail "the kernel holds $grew MiB for a client that reads nothing"
    for ((i = 0; i < 300; i++)); do
        grep -q '"done"' "$out" && break
        sleep 0.1
    done
    result=$(grep '"done"' "$out") || fail "the client did not finish: $(cat "$out")"
    "$TB_PYTHON" -c '
import json, sys
r = json.loads(sys.argv[1])
print("   the client then read", r["complete"], "whole responses, errors:", r["errors"])
sys.exit(0 if r["complete"] == int(sys.argv[2]) and not r["errors"] else 1)' \
        "$result" "$STREAMS" || fail "not every response arrived whole"
    h2lb_stop || fail "h2lb did not stop cleanly"
}

tb_up "$N"
tb_start_nghttpd
backends=$(for ((i = 1; i <= N; i++)); do printf '%s:%s,' "$(tb_backend_ip "$i")" "$TB_HTTP_PORT"; done)

# Default --peer-buffer 4M: 4 MiB unacknowledged + 4 MiB of leg windows
# beyond 64 KiB per leg, the client's 64 KiB receive buffer (doubled by
# the kernel), and a margin.
echo "== --peer-buffer 4M (default)"
lazy_round $((10 << 20))
# 1 MiB + 1 MiB + 4 x 64 KiB + the receive buffer, and a margin.
echo "== --peer-buffer 1M"
lazy_round $((3 << 20)) --peer-buffer 1M
echo "PASS: a client that reads nothing holds h2lb to its --peer-buffer; all $STREAMS responses then arrive whole"
