#!/usr/bin/env bash
# timeout: 300
#
# test_h2lb_headers - large header blocks and HPACK through h2lb.
#
# Four "h2lb.Probe" backends (tests/peers/probe_server.py) that echo the
# size, digest and values of the x-* request metadata they decoded.
#
#   1. 32 KiB of request metadata per call (more than one 16 KiB frame:
#      HEADERS + CONTINUATION), 10 calls in flight on one gRPC channel:
#      every backend sees exactly the 32 KiB that was sent.
#   2. The same, with 32 KiB of response metadata too (CONTINUATION frames
#      from several backends merged into the one client connection).
#   3. HPACK churn on ONE gRPC channel: 3,000 calls, 100 in flight, started
#      as the channel is created, each with a unique x-req-id and headers
#      whose values repeat with variations; every value echoed intact, and
#      the calls spread over all four backends.
#   4. A raw HTTP/2 client (tests/peers/h2_hpack_client.py) that sends 60
#      requests BEFORE acknowledging h2lb's SETTINGS, with header blocks
#      that use the HPACK dynamic table (insertions, references, evictions),
#      then acks and sends 2,000 more with a table size update to 0: every
#      request decoded intact by its backend, the post-ACK ones spread over
#      all four backends.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"

MD_CALLS=${MD_CALLS:-100}
MD_BYTES=${MD_BYTES:-32768}
HPACK_CALLS=${HPACK_CALLS:-3000}
RAW_PRE=${RAW_PRE:-60}
RAW_POST=${RAW_POST:-2000}
N=4

source "$TB_PEERS/probe.sh"
tb_require_cmd ip nsenter ss bpftool "$TB_PYTHON"

# check_client NAME JSON CALLS MIN_BACKENDS: every call ok, reached at least
# MIN_BACKENDS backends.
check_client() {
    "$TB_PYTHON" - "$@" <<'PY'
import json, sys
name, s, calls, nb = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
if not (s["ok"] == calls and s["errors"] == 0 and not s.get("problems")):
    sys.exit(f"{name}: {s['ok']} of {calls} calls ok, {s['errors']} errors, "
             f"{s.get('problems_total', 0)} problems: {s.get('problems', [])[:3]}")
if len(s["by_backend"]) < nb:
    sys.exit(f"{name}: calls reached only {sorted(s['by_backend'])}")
PY
}

probe_testbed "$N" test_h2lb_headers

echo "== 1. $MD_CALLS calls with $MD_BYTES bytes of request metadata, 10 in flight"
probe_stats --reset >/dev/null || fail "cannot reset the backends' counters"
out=$(probe_client --timeout 90 --call-timeout 30 metadata --calls "$MD_CALLS" \
    --concurrency 10 --md-bytes "$MD_BYTES") || fail "large request metadata: $out"
echo "   client: $out"
check_client "request metadata" "$out" "$MD_CALLS" "$N" || fail "large request metadata"
stats=$(probe_stats) || fail "cannot read the backends' counters"
"$TB_PYTHON" - "$MD_BYTES" <<PY || fail "a backend did not see the full metadata"
import json, sys
want = int(sys.argv[1])
for l in """$stats""".strip().splitlines():
    r = json.loads(l)
    print(f"   {r['name']}: {r['calls'].get('Echo', 0)} calls, largest metadata {r['md_max_bytes']} bytes")
    assert r["md_max_bytes"] == want, (r["name"], r["md_max_bytes"], want)
PY

echo "== 2. the same with $MD_BYTES bytes of response metadata"
out=$(probe_client --timeout 90 --call-timeout 30 metadata --calls "$MD_CALLS" \
    --concurrency 10 --md-bytes "$MD_BYTES" --reply-md "$MD_BYTES") ||
    fail "large response metadata: $out"
echo "   client: $out"
check_client "response metadata" "$out" "$MD_CALLS" "$N" || fail "large response metadata"

echo "== 3. HPACK churn: $HPACK_CALLS calls with distinct metadata on one channel"
clients0=$(daemon_clients)
out=$(probe_client --timeout 150 --call-timeout 60 hpack --calls "$HPACK_CALLS" \
    --concurrency 100) || fail "HPACK churn: $out"
echo "   client: $out"
check_client "HPACK churn" "$out" "$HPACK_CALLS" "$N" || fail "HPACK churn"
clients=$(($(daemon_clients) - clients0))
[[ $clients == 1 ]] || fail "HPACK churn: $clients client connections, want 1"
"$TB_PYTHON" - "$out" "$HPACK_CALLS" <<'PY' || fail "HPACK churn: uneven split"
import json, sys
s, calls = json.loads(sys.argv[1]), int(sys.argv[2])
for b, c in sorted(s["by_backend"].items()):
    print(f"   {b}: {100.0 * c / calls:.1f}%")
    assert c >= calls // 10, f"{b} served only {c} of {calls}"
PY

echo "== 4. raw client: $RAW_PRE requests before its SETTINGS ACK, $RAW_POST after"
out=$(tb_run cli "$TB_PYTHON" "$TB_PEERS/h2_hpack_client.py" --target "$H2LB_ADDR" \
    --pre "$RAW_PRE" --post "$RAW_POST" --inflight 64 --timeout 90) ||
    fail "raw HPACK client: $out"
echo "   client: $out"
"$TB_PYTHON" - "$out" "$RAW_PRE" "$RAW_POST" "$N" <<'PY' || fail "raw HPACK client"
import json, sys
s = json.loads(sys.argv[1])
pre, post, n = map(int, sys.argv[2:])
assert s["ok"] == pre + post and s["errors"] == 0 and not s["problems"], s["problems"]
assert sum(s["pre"].values()) == pre and sum(s["post"].values()) == post
# The pre-ACK blocks really used the dynamic table.
hp = s["hpack_pre"]
assert hp.get("dynamic_ref", 0) > 0 and hp.get("evicted", 0) > 0, hp
assert len(s["post"]) == n, f"post-ACK calls reached only {sorted(s['post'])}"
print(f"   pre-ACK calls by backend {s['pre']}, post-ACK {s['post']}")
PY

k=$(kernel_backends)
"$TB_PYTHON" -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
sys.exit(0 if sum(r["open_streams"] for r in rows) == 0 else 1)' <<<"$k" ||
    fail "kernel still counts open streams: $k"

h2lb_stop || fail "h2lb did not stop cleanly"
probe_passed
echo "PASS: ${MD_BYTES}-byte metadata both ways, $HPACK_CALLS HPACK-churn calls and pre/post-ACK HPACK intact through h2lb"
