#!/usr/bin/env bash
# timeout: 300
#
# test_h2lb_operator - the operator's view agrees with the backends.
#
# After a known workload, `h2lb status -j`, `bpftool map dump` of the pinned
# backends map and the Prometheus /metrics endpoint all report the same
# per-backend stream counts as the backends themselves counted. Then the
# daemon is killed (no cleanup of its own), and `h2lb unload` removes what
# it left attached and pinned; run again, it finds nothing and succeeds.
# Command-line mistakes get a clear error, not a crash; with -j, a JSON one.
# Every command's -h and the man page name the same flags.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"

tb_require_cmd curl bpftool

# json_error RC CMD...: stdout is one JSON object with an "error" key.
json_error() {
    local rc=$1 out got
    shift
    out=$("$@" 2>/dev/null) && got=0 || got=$?
    [[ $got == "$rc" ]] || fail "'$*' exited $got, want $rc: $out"
    "$TB_PYTHON" -c '
import json, sys
o = json.loads(sys.argv[1])
assert list(o) == ["error"] and o["error"], o
print("   %s" % o["error"])' "$out" || fail "'$*' printed '$out', want {\"error\": ...}"
}

CALLS=1000
METRICS=$TB_NODE_IP:9464
tb_up 4
tb_start_greeters
h2lb_start --backends "$(h2lb_backends)" --metrics "$METRICS"

tb_client --target "$H2LB_ADDR" --calls "$CALLS" --concurrency 8 --json \
    >/dev/null || fail "client failed"
sleep 0.2

truth=$(tb_backend_counts SayHello | awk '{print $2}' | paste -sd ' ')
status=$("$H2LB_BIN" status -j --pin-dir "$H2LB_PIN" | "$TB_PYTHON" -c '
import json, sys
print(" ".join(str(b["streams"]) for b in json.load(sys.stdin)["backends"]))')
bpftool_counts=$(h2lb_map backends | "$TB_PYTHON" -c '
import json, sys
print(" ".join(str(e["value"]["streams"]) for e in json.load(sys.stdin)
               if e["value"]["state"]))')
metrics=$(tb_exec node curl -sf "http://$METRICS/metrics") || fail "no /metrics"
prom=$(for i in 1 2 3 4; do
    grep "^h2lb_backend_streams_total{service=\"static\",backend=\"$(tb_backend_ip "$i"):50051\"}" <<<"$metrics" |
        awk '{print $2}'
done | paste -sd ' ')
echo "   backends counted:  $truth"
echo "   h2lb status -j:    $status"
echo "   bpftool map dump:  $bpftool_counts"
echo "   /metrics:          $prom"
[[ $(awk '{s=0; for (i=1;i<=NF;i++) s+=$i; print s}' <<<"$truth") == "$CALLS" ]] ||
    fail "backends did not serve $CALLS calls"
[[ $status == "$truth" && $bpftool_counts == "$truth" && $prom == "$truth" ]] ||
    fail "the views disagree"
grep -q '^h2lb_stream_duration_seconds_count{service="static",backend="198.18.2.11:50051"}' <<<"$metrics" ||
    fail "no latency histogram in /metrics"
grep -q '^h2lb_daemon_read_bytes_total ' <<<"$metrics" || fail "no daemon byte counters"
[[ $(tb_exec node curl -sf "http://$METRICS/healthz") == ok ]] || fail "no /healthz"
grep -q "ready" <<<"$("$H2LB_BIN" status --pin-dir "$H2LB_PIN")" || fail "status table"
"$H2LB_BIN" backends -p --pin-dir "$H2LB_PIN" | "$TB_PYTHON" -m json.tool >/dev/null ||
    fail "backends -p is not JSON"
"$H2LB_BIN" conns -j --pin-dir "$H2LB_PIN" | "$TB_PYTHON" -m json.tool >/dev/null ||
    fail "conns -j is not JSON"
"$H2LB_BIN" streams -j --pin-dir "$H2LB_PIN" | "$TB_PYTHON" -m json.tool >/dev/null ||
    fail "streams -j is not JSON"
# Unprivileged, the pins are out of reach (unless unprivileged BPF is on).
if ! out=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
    "$H2LB_BIN" status -j --pin-dir "$H2LB_PIN" 2>/dev/null); then
    json_error 1 setpriv --reuid=65534 --regid=65534 --clear-groups \
        "$H2LB_BIN" status -j --pin-dir "$H2LB_PIN"
fi

echo "== a crashed daemon's leftovers, removed by h2lb unload"
pid=$(tb_pid h2lb)
kill -KILL "$pid"
sleep 0.3
[[ -e $H2LB_PIN/backends ]] || fail "expected pins left by the killed daemon"
cg=$(find /sys/fs/cgroup /run/h2lb-cgroup2 -maxdepth 6 -type d -name "h2lb-$pid" 2>/dev/null | head -1 || true)
[[ -n $cg ]] || fail "expected the killed daemon's cgroup"
"$H2LB_BIN" unload --pin-dir "$H2LB_PIN" || fail "unload failed"
[[ ! -e $H2LB_PIN ]] || fail "unload left $H2LB_PIN"
[[ ! -e $cg ]] || fail "unload left $cg"
out=$("$H2LB_BIN" unload --pin-dir "$H2LB_PIN") || fail "second unload failed"
grep -q "nothing loaded" <<<"$out" || fail "second unload: '$out'"

echo "== command-line mistakes"
expect_error() { # RC PATTERN CMD...
    local rc=$1 pat=$2 out got
    shift 2
    out=$("$@" 2>&1) && got=0 || got=$?
    [[ $got == "$rc" ]] || fail "'$*' exited $got, want $rc: $out"
    grep -qi -- "$pat" <<<"$out" || fail "'$*' said '$out', want /$pat/"
}
expect_error 2 "unknown command" "$H2LB_BIN" frobnicate
expect_error 2 "unrecognized option" "$H2LB_BIN" run --frob
expect_error 2 "not an IPv4 address" "$H2LB_BIN" run --listen nohost:80 --backends 198.18.2.11:1
expect_error 2 "port must be" "$H2LB_BIN" run --listen 198.18.1.1:99999 --backends 198.18.2.11:1
expect_error 2 "either --backends or --backends-file" "$H2LB_BIN" run --listen 198.18.1.1:1
expect_error 2 "least-streams or round-robin" "$H2LB_BIN" run --listen 198.18.1.1:1 --backends 198.18.2.11:1 --policy random
L="--listen 198.18.1.1:1 --backends 198.18.2.11:1"
expect_error 2 "not a size in 64K-1024M" "$H2LB_BIN" run $L --peer-buffer 2G
expect_error 2 "not a size in 64K-1024M" "$H2LB_BIN" run $L --peer-buffer 4KB
expect_error 2 "not tc, cgroup or none" "$H2LB_BIN" run $L --intercept iptables
expect_error 2 "needs --vip" "$H2LB_BIN" run $L --intercept tc --intercept-dev vcli
expect_error 2 "--vip needs --intercept" "$H2LB_BIN" run $L --vip 198.19.0.1:80
expect_error 2 "needs --intercept-dev" "$H2LB_BIN" run $L --intercept tc --vip 198.19.0.1:80
expect_error 2 "clients can reach" "$H2LB_BIN" run --listen 127.0.0.1:1 \
    --backends 198.18.2.11:1 --intercept cgroup --intercept-cgroup /tmp --vip 198.19.0.1:80
expect_error 2 "is for --intercept tc" "$H2LB_BIN" run $L --intercept-dev vcli
expect_error 2 "is for --fast-path on" "$H2LB_BIN" run $L --fast-path-tcp-mem 64M
expect_error 2 "not a size in 0K-1048576M" "$H2LB_BIN" run $L --fast-path on \
    --intercept-cgroup /tmp --fast-path-tcp-mem 2T
expect_error 2 "needs --intercept tc|cgroup" "$H2LB_BIN" run --kubernetes
expect_error 1 "nothing loaded" "$H2LB_BIN" status --pin-dir "$H2LB_PIN"
expect_error 1 "needs root" setpriv --reuid=65534 --regid=65534 --clear-groups \
    "$H2LB_BIN" run --listen 198.18.1.1:1 --backends 198.18.2.11:1
expect_error 2 "h2lb run: --pool-size: '0' is not a number in 1-16" "$H2LB_BIN" run $L --pool-size 0
expect_error 2 "h2lb k8s-dump: --timeout: 'x' is not a number in 1-86400" "$H2LB_BIN" k8s-dump --timeout x
expect_error 2 "h2lb status: unrecognized option '--frob'" "$H2LB_BIN" status --frob

echo "== -j: errors are JSON too, on stdout"
json_error 1 "$H2LB_BIN" status -j --pin-dir "$H2LB_PIN"
json_error 1 "$H2LB_BIN" backends -p --pin-dir "$H2LB_PIN"
json_error 2 "$H2LB_BIN" conns --frob -j
json_error 2 "$H2LB_BIN" streams -j unexpected

echo "== h2lb version"
v=$("$H2LB_BIN" version) || fail "h2lb version failed"
[[ $v =~ ^h2lb\ [^\ ]+$ ]] || fail "h2lb version said '$v'"
[[ $("$H2LB_BIN" --version) == "$v" ]] || fail "h2lb --version differs from h2lb version"
"$H2LB_BIN" version -j | "$TB_PYTHON" -c '
import json, sys
assert "h2lb " + json.load(sys.stdin)["version"] == sys.argv[1]' "$v" ||
    fail "h2lb version -j is not {\"version\": ...}"
echo "   $v"

echo "== every command's -h, and man/h2lb.8, name the same commands and flags"
CMDS=(run status backends conns streams unload k8s-dump version help)
overview=$("$H2LB_BIN" --help) || fail "h2lb --help failed"
grep -q "h2lb COMMAND -h" <<<"$overview" || fail "h2lb --help does not point to 'h2lb COMMAND -h'"
helptext=
for c in "${CMDS[@]}"; do
    grep -q "^  $c " <<<"$overview" || fail "h2lb --help does not list $c"
    out=$("$H2LB_BIN" "$c" -h) || fail "h2lb $c -h exited $?"
    grep -q "^Usage: h2lb $c" <<<"$out" || fail "h2lb $c -h: no usage line: $out"
    [[ $("$H2LB_BIN" "$c" --help) == "$out" ]] || fail "h2lb $c --help differs from -h"
    helptext+=$out$'\n'
done
grep -q -- "--peer-buffer SIZE" <<<"$("$H2LB_BIN" run -h)" || fail "h2lb run -h does not list --peer-buffer"
"$TB_PYTHON" -c '
import re, sys
man = open(sys.argv[1]).read().replace("\\-", "-")
helptext = sys.stdin.read()
words = set(re.findall(r"--[a-z][a-z-]+", helptext))
words |= set(re.findall(r"^  (-[a-zA-Z]),", helptext, re.M))
words |= set(sys.argv[2:])
missing = sorted(w for w in words
                 if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(w), man))
sys.exit("not in the man page: %s" % missing if missing else 0)
' "$TB_ROOT/man/h2lb.8" "${CMDS[@]}" <<<"$helptext" || fail "man page and the commands' -h disagree"
echo "PASS: status, bpftool and /metrics agree with the backends; unload cleans up; CLI errors are clear"
