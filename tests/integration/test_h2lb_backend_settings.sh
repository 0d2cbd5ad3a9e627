#!/usr/bin/env bash
# timeout: 180
#
# test_h2lb_backend_settings - h2lb keeps within what each backend's
# SETTINGS allow (docs/flow-control.md).
#
# 1. Backends that allow a stream window of 16,383 (less than the 65,535
#    h2lb would tell clients): clients are told 16,383, and 1 MiB uploads
#    on 8 streams at once go through without a flow-control error on any
#    side (nghttpd answers FLOW_CONTROL_ERROR to a byte more).
# 2. Backends that allow 2 concurrent streams: h2load keeps 8 streams in
#    flight on one connection through h2lb; h2lb never opens more than 2
#    on a leg (the backends refuse none), and what no leg has room for it
#    refuses itself (REFUSED_STREAM, counted), while the rest succeed.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"
source "$TB_PEERS/probe.sh"
tb_require_cmd nghttpd nghttp h2load

N=2
URL=http://$H2LB_ADDR/index.txt

kcounter() {
    "$H2LB_BIN" status -j --pin-dir "$H2LB_PIN" | "$TB_PYTHON" -c '
import json, sys
print(json.load(sys.stdin)["counters"][sys.argv[1]])' "$1"
}

# The backends' stream resets in the kernel (a backend's RST_STREAM).
kresets() {
    kernel_backends | "$TB_PYTHON" -c '
import json, sys
print(sum(json.loads(l)["resets"] for l in sys.stdin))'
}

backends() {
    local i list=
    for ((i = 1; i <= N; i++)); do
        list+=$(tb_backend_ip "$i"):$TB_HTTP_PORT,
    done
    printf '%s\n' "${list%,}"
}

restart_nghttpd() {
    local i
    for ((i = 1; i <= N; i++)); do
        tb_kill "nghttpd-b$i" TERM 2>/dev/null || true
    done
    tb_start_nghttpd "$@" || fail "nghttpd did not start"
}

tb_up "$N"

echo "== 1. backends allow a stream window of 16383"
tb_start_nghttpd -w 14
h2lb_start --backends "$(backends)" || fail "h2lb did not start"
out=$(tb_exec cli nghttp -nv "$URL" 2>&1) || fail "nghttp failed: $out"
# The settings h2lb sent (nghttp prints them after "recv SETTINGS").
told=$(awk '/recv SETTINGS frame/ {r = 1; next} /(send|recv) [A-Z_]+ frame/ {r = 0}
    r && /SETTINGS_INITIAL_WINDOW_SIZE/ {print; exit}' <<<"$out" |
    grep -o 'SETTINGS_INITIAL_WINDOW_SIZE(0x04):[0-9]*')
echo "   h2lb told the client: $told"
[[ ${told##*:} == 16383 ]] || fail "the client was told '$told', want 16383"
head -c 1048576 /dev/urandom >"$TB_STATE/upload"
pe0=$(kcounter protocol_errors)
out=$(tb_run cli nghttp -n -m 8 -d "$TB_STATE/upload" "$URL" 2>&1) ||
    fail "uploads failed: $(tail -3 <<<"$out")"
grep -qi "RST_STREAM\|GOAWAY\|error" <<<"$out" && fail "uploads saw: $out"
pe=$(($(kcounter protocol_errors) - pe0))
resets=$(kresets)
echo "   8 x 1 MiB uploads through h2lb: ok; backend resets $resets, protocol errors $pe"
((resets == 0 && pe == 0)) || fail "a flow-control error somewhere"
h2lb_stop || fail "h2lb did not stop cleanly"
mv -f "$(h2lb_log)" "$TB_STATE/logs/h2lb-1.log"

echo "== 2. backends allow 2 concurrent streams"
restart_nghttpd -m 2
h2lb_start --backends "$(backends)" || fail "h2lb did not start"
ref0=$(kcounter refused_streams)
res0=$(kresets)
out=$(tb_run cli h2load -c 1 -m 8 -n 2000 "$URL" 2>&1) || true
read -r _ ok failed < <(grep -o 'requests: [0-9]* total.*' <<<"$out" |
    sed 's/[^0-9 ]//g' | awk '{print $2, $4, $5}')
refused=$(($(kcounter refused_streams) - ref0))
resets=$(($(kresets) - res0))
echo "   h2load -c1 -m8: $ok succeeded, $failed failed; h2lb refused $refused; backends reset $resets"
((resets == 0)) || fail "a backend refused $resets streams: h2lb opened more than it allows"
((ok > 0)) || fail "no request succeeded: $out"
((failed == refused)) || fail "$failed requests failed, h2lb refused $refused"
h2lb_stop || fail "h2lb did not stop cleanly"
echo "PASS: h2lb kept within the backends' stream window and stream limit"
