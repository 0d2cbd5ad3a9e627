#!/usr/bin/env bash
# timeout: 200
#
# test_h2lb_memory_bound - flow control is the memory bound.
#
# sk_skb redirects have no backpressure (docs/kernel-facts.md K5): bytes redirected
# to a socket whose peer does not read queue in the kernel, uncharged. So the
# connection windows h2lb grants are all that stands between a fast client
# and the node's memory. Here a client pushes 1,000 uploads at once into a
# backend that never reads. Each stream may carry 64 KiB by its own window
# (64 MB in all); the connection window the backend granted (64 KiB) is the
# real limit, and the kernel must hold no more than that. Then the same
# against a backend that grants 2^31-1 bytes for its connection and every
# stream and reads nothing: its windows no longer bound anything, and h2lb
# must stop widening the client's window once 4 MiB sent to the backend
# are not acknowledged by its TCP (user/flow.c).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"

tb_require_cmd h2load

# flood PORT: 1,000 concurrent 256 KiB uploads (256 MB offered) through a
# fresh h2lb to the stall server on PORT; sets $sent (DATA bytes forwarded
# to it) and $grew (MiB the kernel's memory grew by).
flood() {
    local base peak
    H2LB_EXPECT_READY=1 h2lb_start --backends "$(tb_backend_ip 1):$1"
    base=$(kernel_mem_kib)
    tb_spawn cli h2load h2load -c 1 -m 1000 -n 1000 -d "$body" -T 60 \
        "http://$H2LB_ADDR/upload"
    sleep 5
    peak=$(kernel_mem_kib)
    sent=$(h2lb_map backends | "$TB_PYTHON" -c '
import json, sys
print(sum(e["value"]["bytes_to"] for e in json.load(sys.stdin)))')
    tb_kill h2load KILL
    grew=$(((peak - base) / 1024))
    echo "   DATA forwarded to the stalled backend: $sent bytes"
    echo "   kernel memory grew by $grew MiB while 256 MB were offered"
    h2lb_stop || fail "h2lb did not stop cleanly"
}

tb_up 1
tb_spawn b1 stall "$TB_PYTHON" "$TB_PEERS/stall_server.py" --port 9000
tb_spawn b1 stall-grant "$TB_PYTHON" "$TB_PEERS/stall_server.py" --port 9001 --grant
tb_wait_port b1 9000 10
tb_wait_port b1 9001 10
body=$TB_STATE/body
head -c $((256 << 10)) /dev/zero >"$body"

echo "== a backend that grants the RFC's 65535 bytes"
flood 9000
# The backend granted 65535 bytes of connection window and never more.
((sent <= 65535)) || fail "h2lb forwarded $sent bytes, beyond the backend's window"
((grew < 24)) || fail "the kernel holds $grew MiB: flow control did not bound it"

# Its windows allow it all; what its TCP has not acknowledged may not pass
# 4 MiB (user/flow.c), beyond what its receive buffer took (at most
# tcp_rmem's 6 MiB here).
echo "== a backend that grants 2^31-1 bytes"
flood 9001
((sent <= 16 << 20)) || fail "h2lb forwarded $sent bytes to a backend that reads nothing"
((grew < 24)) || fail "the kernel holds $grew MiB: the unacknowledged bytes were not bounded"
echo "PASS: a client flooding a stalled backend is held to the granted window, and to 4 MiB unacknowledged when the window is 2 GiB"
