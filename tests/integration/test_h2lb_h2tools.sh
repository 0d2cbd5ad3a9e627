#!/usr/bin/env bash
# timeout: 300
#
# test_h2lb_h2tools - plain HTTP/2 clients through h2lb, nghttpd backends.
#
#   - curl --http2-prior-knowledge, 20 connections: each HTTP/2, 200, body
#     "backend-N"
#   - nghttp -v: the frames show h2lb's SETTINGS and a 200 response, body
#     "backend-N"
#   - nghttp with 40 requests on one connection: all answered, both as a
#     burst sent before nghttp acks h2lb's SETTINGS and spaced so that most
#     follow the ACK; the latter reach more than one backend (the kernel's
#     counters agree)
#   - h2load -c 1 -m 100 -n 20000 and -c 4 -m 100 -n 20000: no failed or
#     errored request, all 2xx, and the kernel's per-backend stream counts
#     split 25% +/- 3% each
#   - Go's own HTTP/2 client (golang.org/x/net/http2, build/peers/
#     h2c_client): h2lb announces SETTINGS_MAX_HEADER_LIST_SIZE (nghttp -v
#     shows it), so Go refuses to send a request with a 70,000-byte header
#     field, and the same connection then serves 10 GETs with 60,000-byte
#     fields (blocks near h2lb's 64 KiB limit, written a frame at a time);
#     no connection error. Without the setting the block went out, h2lb
#     failed the connection (GOAWAY PROTOCOL_ERROR), and Go sent the
#     request again on new connections until its 5 s timeout.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"

REQUESTS=${REQUESTS:-20000}
NGHTTP_REQS=${NGHTTP_REQS:-40}
CURL_RUNS=${CURL_RUNS:-20}
N=4

source "$TB_PEERS/probe.sh"
tb_require_cmd ip nsenter ss bpftool nghttpd nghttp h2load curl "$TB_PYTHON"

URL=http://$H2LB_ADDR/index.txt

# Per-backend kernel stream counts, space separated, backend order.
kstreams() {
    kernel_backends | "$TB_PYTHON" -c '
import json, sys
print(" ".join(str(json.loads(l)["streams"]) for l in sys.stdin))'
}

# kcounter NAME: one of the kernel's global counters (h2lb status -j).
kcounter() {
    "$H2LB_BIN" status -j --pin-dir "$H2LB_PIN" | "$TB_PYTHON" -c '
import json, sys
print(json.load(sys.stdin)["counters"][sys.argv[1]])' "$1"
}

# check_split NAME TOTAL "BEFORE" "AFTER": the kernel counted TOTAL streams
# in between, 25% +/- 3% per backend.
check_split() {
    "$TB_PYTHON" - "$@" <<'PY'
import sys
name, total = sys.argv[1], int(sys.argv[2])
before = [int(x) for x in sys.argv[3].split()]
after = [int(x) for x in sys.argv[4].split()]
delta = [a - b for a, b in zip(after, before)]
shares = [100.0 * d / total for d in delta]
print(f"   {name}: kernel streams per backend {delta} = "
      + " ".join(f"{s:.2f}%" for s in shares))
if sum(delta) != total:
    sys.exit(f"   {name}: kernel counted {sum(delta)} streams, want {total}")
bad = [s for s in shares if abs(s - 100.0 / len(delta)) > 3.0]
if bad:
    sys.exit(f"   {name}: split is not {100 / len(delta):.0f}% +/- 3% each")
PY
}

# Every section runs, even after another failed, so that one run shows all
# that is wrong; the test fails at the end if any section failed.
failures=()
soft_fail() {
    echo "FAIL: $*" >&2
    failures+=("$*")
    return 1
}

# curl: each run is a new connection whose request goes out together with
# the preface; a frame order problem at connection start shows here.
section_curl() {
    local i meta body bad=0 first=
    echo "== curl --http2-prior-knowledge $URL, $CURL_RUNS connections"
    for ((i = 1; i <= CURL_RUNS; i++)); do
        rm -f "$tmp/curl.body"
        if ! meta=$(tb_run cli curl -sS --max-time 10 --http2-prior-knowledge \
            -o "$tmp/curl.body" -w '%{http_version} %{response_code}' "$URL" \
            2>"$tmp/curl.err"); then
            bad=$((bad + 1))
            [[ -n $first ]] || first="run $i: $(head -c 200 "$tmp/curl.err")"
            continue
        fi
        body=$(cat "$tmp/curl.body" 2>/dev/null || true)
        ((i <= 4)) && echo "   run $i: HTTP/${meta% *} ${meta#* } body '$body'"
        if [[ $meta != "2 200" || ! $body =~ ^backend-[1-4]$ ]]; then
            bad=$((bad + 1))
            [[ -n $first ]] || first="run $i: HTTP/${meta% *} ${meta#* } body '$body'"
        fi
    done
    echo "   $((CURL_RUNS - bad)) of $CURL_RUNS curl requests got HTTP/2 200 'backend-N'"
    ((bad == 0)) || soft_fail "curl: $bad of $CURL_RUNS requests failed; first: $first"
}

section_nghttp_v() {
    local out=$tmp/nghttp-v.out body
    echo "== nghttp -v $URL"
    tb_run cli nghttp -v -t 10 "$URL" >"$out" 2>&1 || {
        tail -n 20 "$out" >&2
        soft_fail "nghttp -v failed"
        return 1
    }
    grep -E ':status|recv (HEADERS|DATA|SETTINGS) frame' "$out" | sed 's/^/   /'
    grep -q 'recv SETTINGS frame' "$out" ||
        { soft_fail "nghttp -v: no SETTINGS frame from h2lb"; return 1; }
    grep -q 'SETTINGS_HEADER_TABLE_SIZE(0x01):0\]' "$out" ||
        { soft_fail "nghttp -v: h2lb did not advertise HEADER_TABLE_SIZE 0"; return 1; }
    grep -q 'SETTINGS_MAX_HEADER_LIST_SIZE(0x06):65024\]' "$out" ||
        { soft_fail "nghttp -v: h2lb did not advertise MAX_HEADER_LIST_SIZE 65024"; return 1; }
    grep -Eq 'recv \(stream_id=[0-9]+\) :status: 200' "$out" ||
        { soft_fail "nghttp -v: no ':status: 200'"; return 1; }
    grep -Eq 'recv DATA frame <length=10, flags=0x01' "$out" ||
        { soft_fail "nghttp -v: no DATA frame with END_STREAM and the 10-byte body"; return 1; }
    body=$(grep -E '^backend-[0-9]+$' "$out" || true)
    [[ $body =~ ^backend-[1-4]$ ]] ||
        { soft_fail "nghttp -v: body is '$body', want one 'backend-N' line"; return 1; }
    echo "   body: $body"
}

# nghttp sends its first requests right after its preface, before it has
# acked h2lb's SETTINGS; h2lb keeps such streams on one backend (their
# header blocks may use the HPACK dynamic table). Burst: all requests at
# once; all must be answered. Spread: -M 1 lets only the first request out
# before h2lb's SETTINGS (MAX_CONCURRENT_STREAMS 1000) arrives; the rest
# follow the ACK and must reach more than one backend.
nghttp_run() {
    local what=$1 out=$tmp/nghttp-$1.out good lines before after clients0 clients
    shift
    before=$(kstreams)
    clients0=$(daemon_clients)
    tb_run cli nghttp -t 20 "$@" -m "$NGHTTP_REQS" "$URL" >"$out" 2>"$out.err" || {
        tail -n 5 "$out.err" >&2
        soft_fail "nghttp ($what) $* -m $NGHTTP_REQS failed"
        return 1
    }
    after=$(kstreams)
    clients=$(($(daemon_clients) - clients0))
    echo "   bodies: $(sort "$out" | uniq -c | awk '{ printf "%s x%s  ", $2, $1 }')"
    good=$(grep -cE '^backend-[1-4]$' "$out" || true)
    lines=$(wc -l <"$out")
    [[ $good == "$NGHTTP_REQS" && $lines == "$NGHTTP_REQS" ]] ||
        { soft_fail "nghttp ($what): $good good bodies in $lines lines, want $NGHTTP_REQS"; return 1; }
    [[ $clients == 1 ]] ||
        { soft_fail "nghttp ($what): h2lb accepted $clients connections, want 1"; return 1; }
    "$TB_PYTHON" - "$before" "$after" "$NGHTTP_REQS" <<'PY' ||
import sys
d = [int(a) - int(b) for a, b in zip(sys.argv[2].split(), sys.argv[1].split())]
print(f"   kernel streams per backend: {d}")
assert sum(d) == int(sys.argv[3]), d
PY
        { soft_fail "nghttp ($what): the kernel counted other streams"; return 1; }
}

section_nghttp_multi() {
    local distinct
    echo "== nghttp: $NGHTTP_REQS requests at once on one connection (burst)"
    nghttp_run burst || true
    echo "== nghttp -M 1: $NGHTTP_REQS requests on one connection, after the ACK"
    nghttp_run spread -M 1 || return 1
    distinct=$(sort -u "$tmp/nghttp-spread.out" | wc -l)
    echo "   $distinct backends served the requests of one connection"
    ((distinct > 1)) ||
        soft_fail "nghttp -M 1: all $NGHTTP_REQS requests of one connection went to one backend"
}

section_h2load() {
    local conns=$1 out before after msgs0 multi0 msgs multi
    echo "== h2load -c $conns -m 100 -n $REQUESTS"
    before=$(kstreams)
    msgs0=$(kcounter frames)
    multi0=$(kcounter multi_stream_messages)
    out=$(tb_run cli h2load -c "$conns" -m 100 -n "$REQUESTS" -T 60 "$URL" 2>&1) || {
        echo "$out" | tail -n 20 >&2
        soft_fail "h2load -c $conns failed"
        return 1
    }
    after=$(kstreams)
    echo "$out" | grep -E '^(finished in|requests:|status codes:)' | sed 's/^/   /'
    # A here-string, not "echo | grep -q": grep -q exits at the first match,
    # and under pipefail the echo's SIGPIPE would fail a passing check.
    grep -Eq "^requests: $REQUESTS total, $REQUESTS started, $REQUESTS done, $REQUESTS succeeded, 0 failed, 0 errored, 0 timeout" <<<"$out" ||
        { soft_fail "h2load -c $conns: not every request succeeded"; return 1; }
    grep -Eq "^status codes: $REQUESTS 2xx, 0 3xx, 0 4xx, 0 5xx" <<<"$out" ||
        { soft_fail "h2load -c $conns: not every response was 2xx"; return 1; }
    check_split "h2load -c $conns" "$REQUESTS" "$before" "$after" ||
        soft_fail "h2load -c $conns: split is not 25% +/- 3% per backend"
    # With 100 streams in flight, responses that wait together on a leg
    # travel as one message (leg_run); every stream still ended above.
    msgs=$(($(kcounter frames) - msgs0))
    multi=$(($(kcounter multi_stream_messages) - multi0))
    echo "   $msgs messages parsed for $REQUESTS requests, $multi of them responses of several streams"
    ((multi > 0)) || soft_fail "h2load -c $conns: no response message carried several streams"
}

# Go's client: a request over h2lb's header list limit fails alone.
section_go_header_limit() {
    local out perr0 perr
    echo "== Go's HTTP/2 client: a header field over the limit, then 10 GETs near it"
    perr0=$(kcounter protocol_errors)
    out=$(tb_run cli "$PEERS_BIN/h2c_client" --url "$URL" --requests 10 \
        --header-bytes 60000 --oversize 70000 2>&1) || {
        soft_fail "Go's client: $out"
        return 1
    }
    perr=$(kcounter protocol_errors)
    echo "   $out"
    "$TB_PYTHON" -c '
import json, sys
o = json.loads(sys.argv[1])
sys.exit(0 if "header list larger than peer" in o["oversize_error"] else 1)' "$out" ||
        { soft_fail "Go's client: want its own 'header list larger than peer's advertised limit' for the 70,000-byte field: $out"; return 1; }
    ((perr == perr0)) ||
        soft_fail "Go's client: h2lb counted $((perr - perr0)) connection errors, want none"
}

PEERS_BIN=${H2LB_PEERS_BIN:-$TB_ROOT/build/peers}
[[ -x $PEERS_BIN/h2c_client ]] || fail "$PEERS_BIN/h2c_client is missing (make peers)"
tb_up "$N"
tb_start_nghttpd
backends=$(for ((i = 1; i <= N; i++)); do printf '%s:%s,' "$(tb_backend_ip "$i")" "$TB_HTTP_PORT"; done)
# Round-robin: the 25% +/- 3% split below is about per-stream balancing.
# The default least-streams policy sends fewer of 100 in-flight requests
# to whichever nghttpd is slower at the moment, by design (test_h2lb_split
# checks the split under least-streams with gRPC calls).
h2lb_start --backends "${backends%,}" --policy round-robin
probe_keep_logs_on_failure test_h2lb_h2tools
tmp=$TB_STATE/h2tools
mkdir -p "$tmp"

section_curl || true
section_nghttp_v || true
section_nghttp_multi || true
section_h2load 1 || true
section_h2load 4 || true
section_go_header_limit || true

k=$(kernel_backends)
"$TB_PYTHON" -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
sys.exit(0 if sum(r["open_streams"] for r in rows) == 0 else 1)' <<<"$k" ||
    soft_fail "kernel still counts open streams: ${k//$'\n'/ }" || true

h2lb_stop || soft_fail "h2lb did not stop cleanly" || true
if ((${#failures[@]})); then
    echo "FAIL: ${#failures[@]} check(s) failed:" >&2
    printf '   - %s\n' "${failures[@]}" >&2
    exit 1
fi
probe_passed
echo "PASS: curl ($CURL_RUNS connections), nghttp and h2load (2 x $REQUESTS requests, 0 failed, split 25% +/- 3%) through h2lb"
