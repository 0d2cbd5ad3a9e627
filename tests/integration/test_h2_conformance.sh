#!/usr/bin/env bash
# timeout: 300
#
# test_h2_conformance - h2lb answers what a client sends as RFC 9113 / 7541
# say an HTTP/2 server must.
#
# tests/peers/h2conform.py runs its case table (frame sizes, stream 0,
# stream states, field blocks, SETTINGS values, flow control, the preface,
# HPACK, malformed requests; each case cites its RFC section and wants the
# exact answer: GOAWAY with the right code and the connection closed, or
# RST_STREAM with the right code on the right stream and the connection
# still serving a request) twice at the same time:
#   (a) directly against one nghttpd backend: the reference, and
#   (b) through h2lb (port 8080) in front of two nghttpd backends,
# while a well-behaved client (curl, and nghttp with 4 streams on one
# connection, in a loop) makes requests through h2lb the whole time and
# must see no error: what one client breaks must not reach the others.
#
# Prints a table: case, RFC section, want, direct result, h2lb result, and
# a note where nghttpd itself does not give the RFC's answer (and the RFC
# caveats h2conform.py gives for some cases). The bar for
# h2lb is the RFC: the test fails for every case whose h2lb answer is not
# the "want" (so also for any case that passes directly but not through
# h2lb). Afterwards the daemon is alive and stops cleanly.
#
# On the fast path (make test-fast-path), each case through h2lb first
# makes three requests, one at a time (h2conform.py --warm 3), so that its
# connection has switched to the fast path's request direction before its
# offence: the rules are then applied by the client's own socket's program
# (docs/fast-path.md), and most cases must have run there.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"

# H2CONF_CASES=name,name,...: run only these cases of h2conform.py
# (h2conform.py --list prints them all); default: every case.
H2CONF_CASES=${H2CONF_CASES:-}
# H2CONF_TIMEOUT, H2CONF_GRACE: h2conform.py's --timeout and --grace.
H2CONF_TIMEOUT=${H2CONF_TIMEOUT:-3}
H2CONF_GRACE=${H2CONF_GRACE:-1}

tb_require_cmd ip nsenter ss nghttpd nghttp curl "$TB_PYTHON"

N=2
H2LB_PORT=8080
H2LB_ADDR=$TB_NODE_IP:$H2LB_PORT
CONFORM=("$TB_PYTHON" "$TB_PEERS/h2conform.py" --timeout "$H2CONF_TIMEOUT"
    --grace "$H2CONF_GRACE")
# DATA beyond the connection window h2lb granted: with nghttpd behind it,
# h2lb may have granted more (nghttpd reads at once and grants again) by
# the time the excess arrives, so the answer would race the refill. That
# case runs last, in front of a backend that never reads or grants (c).
OVER=data_beyond_connection_window
if [[ -n $H2CONF_CASES ]]; then
    CONFORM+=(--cases "$H2CONF_CASES")
else
    CONFORM+=(--cases "$("${CONFORM[@]}" --list | "$TB_PYTHON" -c '
import json, sys
print(",".join(r["case"] for r in map(json.loads, sys.stdin)
               if r["case"] != sys.argv[1]))' "$OVER")")
fi
# Unknown case names fail here, before any testbed is built.
"${CONFORM[@]}" --list >/dev/null || fail "bad H2CONF_CASES: $H2CONF_CASES"

t0=$SECONDS
tb_up "$N"
tb_start_nghttpd
backends=$(for ((i = 1; i <= N; i++)); do printf '%s:%s,' "$(tb_backend_ip "$i")" "$TB_HTTP_PORT"; done)
h2lb_start --backends "${backends%,}"
tmp=$TB_STATE/conform
mkdir -p "$tmp"
URL=http://$H2LB_ADDR/index.txt

# The well-behaved client: until $tmp/stop exists, in turn a curl request
# on a connection of its own (curl 7.88 fails its own reuse of a
# connection, also against nghttpd directly) and nghttp with 4 requests on
# one connection; one line per run: "curl 2 200" and "nghttp ok" are right.
good_loop() {
    local url=$1 stop=$2 out n
    while [[ ! -e $stop ]]; do
        echo "curl $(curl -sS --max-time 5 --http2-prior-knowledge -o /dev/null \
            -w '%{http_version} %{response_code}' "$url" 2>&1)"
        if out=$(nghttp -t 5 -m 4 "$url" 2>&1); then
            n=$(grep -c '^backend-[0-9]*$' <<<"$out" || true)
            if [[ $n == 4 ]]; then
                echo "nghttp ok"
            else
                echo "nghttp: $n bodies: $(tr '\n' ' ' <<<"$out")"
            fi
        else
            echo "nghttp rc=$?: $(tr '\n' ' ' <<<"$out")"
        fi
        sleep 0.05
    done
    echo "done"
}
# (Outside the clients' cgroup on the fast path: fast_path_tx counts the
# cases' connections alone.)
H2LB_TEST_FAST_PATH=0 tb_spawn cli good-client bash -c "$(declare -f good_loop); good_loop \"\$@\"" \
    good "$URL" "$tmp/stop"

# (a) and (b) at the same time.
tb_run cli "${CONFORM[@]}" --target "$(tb_backend_ip 1):$TB_HTTP_PORT" \
    >"$tmp/direct" 2>"$tmp/direct.err" &
direct=$!
WARM=()
[[ ${H2LB_TEST_FAST_PATH:-0} == 1 ]] && WARM=(--warm 3)
tx0=$(h2lb_counter fast_path_tx)
tb_run cli "${CONFORM[@]}" "${WARM[@]}" --target "$H2LB_ADDR" \
    >"$tmp/h2lb" 2>"$tmp/h2lb.err" &
through=$!
wait "$direct" || fail "h2conform.py (direct) crashed: $(tail -3 "$tmp/direct.err")"
wait "$through" || fail "h2conform.py (h2lb) crashed: $(tail -3 "$tmp/h2lb.err")"

touch "$tmp/stop"
good_log=$TB_STATE/logs/good-client.log
for ((i = 0; i < 100; i++)); do
    grep -q '^done$' "$good_log" 2>/dev/null && break
    sleep 0.1
done

rc=0
"$TB_PYTHON" - "$tmp/direct" "$tmp/h2lb" "$good_log" <<'PY' || rc=$?
import json, re, sys

def load(path):
    return {r["case"]: r for r in map(json.loads, open(path))}

direct, h2lb = load(sys.argv[1]), load(sys.argv[2])
rows = [("case", "RFC", "want", "direct nghttpd", "h2lb", "note")]
bad, regress = [], []
for name, d in direct.items():
    h = h2lb[name]
    note = []
    if not d["ok"]:
        note.append("nghttpd differs from the RFC")
    if d.get("note"):
        note.append(d["note"])
    if not h["ok"]:
        bad.append(name)
        if d["ok"]:
            regress.append(name)
            note.append("passes directly, not through h2lb")
    mark = lambda r: ("ok  " if r["ok"] else "FAIL") + " " + r["got"]
    rows.append((name, d["rfc"], d["want"], mark(d), mark(h),
                 "; ".join(note)))
widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
for r in rows:
    print("   " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
print("   direct: %d of %d as the RFC says; h2lb: %d of %d" % (
    sum(r["ok"] for r in direct.values()), len(direct),
    sum(r["ok"] for r in h2lb.values()), len(h2lb)))

# h2lb's GOAWAY says which rule the frame broke (its debug data).
# (The idle odd id is the next the case's client would open: 1, or 7
# after the fast path's three warm-up requests.)
why = {"data_on_idle_stream": r"h2lb: DATA on a stream never opened \(stream (1|7)\)",
       "window_update_on_idle_stream":
           r"h2lb: WINDOW_UPDATE on a stream never opened \(stream (1|7)\)",
       "rst_stream_on_idle_even_stream":
           r"h2lb: RST_STREAM on a stream never opened \(stream 2\)"}
wrong_why = ["%s: %r" % (n, h2lb[n].get("debug")) for n, w in why.items()
             if n in h2lb and not re.fullmatch(w, h2lb[n].get("debug") or "")]
print("   GOAWAY debug data, e.g.: %s" % h2lb.get(
    "window_update_on_idle_stream", {}).get("debug"))

lines = [l.strip() for l in open(sys.argv[3]) if l.strip()]
answers = [l for l in lines if l != "done"]
wrong = [l for l in answers if l not in ("curl 2 200", "nghttp ok")]
print("   good client: %d runs through h2lb (curl: 1 request, nghttp: 4), "
      "%d failed%s" % (
    len(answers), len(wrong), (": " + "; ".join(sorted(set(wrong))[:5]))
    if wrong else ""))
failed = False
broken = [n for n, d in direct.items() if n.startswith("control_")
          and not d["ok"]]
if broken:
    print("FAIL: valid requests fail directly against nghttpd (the harness "
          "is broken): %s" % ", ".join(broken), file=sys.stderr)
    failed = True
if bad:
    print("FAIL: h2lb does not give the RFC's answer in %d case(s): %s"
          % (len(bad), ", ".join(bad)), file=sys.stderr)
    if regress:
        print("FAIL: of these, nghttpd passes directly: %s"
              % ", ".join(regress), file=sys.stderr)
    failed = True
if wrong_why:
    print("FAIL: GOAWAY debug data does not name the rule: %s"
          % "; ".join(wrong_why), file=sys.stderr)
    failed = True
if wrong or not answers:
    print("FAIL: the good client saw errors (or made no request)",
          file=sys.stderr)
    failed = True
sys.exit(1 if failed else 0)
PY

kill -0 "$(tb_pid h2lb)" || fail "the daemon died"
if ((${#WARM[@]})); then
    cases=$(wc -l <"$tmp/h2lb")
    tx=$(($(h2lb_counter fast_path_tx) - tx0))
    echo "   fast path: $tx of the $cases cases' connections switched their requests before the offence"
    ((tx * 4 >= cases * 3)) || fail "want most cases to run on the fast path's request direction, $tx of $cases did"
fi
# rst_stream_on_idle_stream and headers_below_idle_reset: each an idle
# odd reset h2lb took as the id used (grpc's C core sends them).
idle_resets=$(h2lb_counter idle_stream_resets)
echo "   client resets of idle odd streams, ignored: $idle_resets"
((idle_resets >= 2)) || fail "expected 2 idle-stream resets counted, got $idle_resets"
h2lb_stop || fail "h2lb did not stop cleanly"

# (c) DATA beyond the granted connection window, h2lb in front of a
# backend that never reads: h2lb grants the client nothing beyond what
# that backend's leg can take, so the excess is always over the grant.
if [[ -z $H2CONF_CASES ]]; then
    mv -f "$(h2lb_log)" "$TB_STATE/logs/h2lb-a.log"
    tb_spawn b2 stall "$TB_PYTHON" "$TB_PEERS/stall_server.py" --port 8081
    tb_wait_port b2 8081 20 "$TB_LAST_PID" || fail "the stall server did not start"
    H2LB_EXPECT_READY=1 h2lb_start --backends "$(tb_backend_ip 2):8081"
    tb_run cli "$TB_PYTHON" "$TB_PEERS/h2conform.py" --timeout "$H2CONF_TIMEOUT" \
        --grace "$H2CONF_GRACE" --cases "$OVER" --target "$H2LB_ADDR" >"$tmp/over" ||
        fail "h2conform.py ($OVER) crashed"
    "$TB_PYTHON" -c '
import json, sys
r = json.loads(open(sys.argv[1]).readline())
print("   %-34s %-20s want %s, h2lb: %s (a backend that never reads)" % (
    r["case"], r["rfc"], r["want"], r["got"]))
sys.exit(0 if r["ok"] else 1)' "$tmp/over" || rc=1
    h2lb_stop || fail "h2lb did not stop cleanly"
fi
echo "   run time: $((SECONDS - t0)) s (testbed up to h2lb stopped)"
((rc == 0)) || fail "h2lb is not RFC conformant in the cases above"
echo "PASS: every case got the RFC's answer through h2lb; the good client saw no error"
