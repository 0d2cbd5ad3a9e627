#!/usr/bin/env bash
# timeout: 200
#
# test_h2lb_small_window - a client that keeps its connection window at
# 65,535 bytes downloads more than that through h2lb, with a leg of its
# own idle beside the busy one.
#
# h2load -w 16 -W 16 (as nghttp with its defaults) grants 65,535 bytes and
# grows the window only as it reads. One connection, one request at a
# time, alternating a small file and a 1 MiB one over 2 backends: after
# the first answers, both backends have a leg bound to the client, and one
# of them is idle. h2lb counted the idle leg's untouchable 65,535 bytes as
# held against the client's window, so the busy leg was never refilled and
# the first 1 MiB download stopped at 64 KiB for good (4 of 4 runs stalled
# with the build before). Every request must succeed (an h2lb that sent
# the client beyond its window would fail it with FLOW_CONTROL_ERROR), and
# both backends must have served.
#
# Not tested, because it fails: the same client with several streams at
# once on several legs (h2load -c 4 -m 4 -w 16 -W 16). Each leg may send
# its first 65,535 bytes whatever the client's window (docs/flow-control.md,
# "Not handled"); the clients answered GOAWAY(FLOW_CONTROL_ERROR), with the
# build before too.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"

tb_require_cmd nghttpd h2load

backend_streams() {
    h2lb_map backends | "$TB_PYTHON" -c '
import json, sys
print(" ".join(str(e["value"]["streams"]) for e in json.load(sys.stdin)
               if e["value"]["state"] == 1))'
}

tb_up 2
tb_start_nghttpd
H2LB_EXPECT_READY=2 h2lb_start --backends "$(tb_backend_ip 1):8080,$(tb_backend_ip 2):8080"
URLS=("http://$H2LB_ADDR/index.txt" "http://$H2LB_ADDR/big.bin")

# run NAME N C M: h2load -n N -c C -m M with 65,535-byte windows; every
# request must succeed within 20 s (a stalled one never does).
run() {
    local name=$1 n=$2 c=$3 m=$4 out=$TB_STATE/$1.out
    tb_run cli timeout 20 h2load -w 16 -W 16 -n "$n" -c "$c" -m "$m" \
        "${URLS[@]}" >"$out" 2>&1 || true
    { grep -a "^requests:" "$out" || echo "no summary (killed after 20 s)"; } | sed "s/^/   $name: /"
    grep -aq "^requests: $n total, $n started, $n done, $n succeeded" "$out" ||
        fail "$name: not every request succeeded (a download stalled?): $(grep -a '^requests:\|progress' "$out" | tail -2 | tr '\n' ' ')"
}

run sequential 20 1 1
read -r -a per <<<"$(backend_streams)"
echo "   streams per backend: ${per[*]}"
((${#per[@]} == 2 && per[0] > 0 && per[1] > 0)) ||
    fail "both backends should have served (streams: ${per[*]})"
h2lb_stop || fail "h2lb did not stop cleanly"
echo "PASS: 65,535-byte client windows download 1 MiB files over an idle leg"
