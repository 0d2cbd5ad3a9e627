#!/usr/bin/env bash
# timeout: 180
#
# test_h2lb_rogue_backend - a backend that breaks HTTP/2, or dies in the
# middle of a response, costs only the stream that met it: the client gets
# an answer that says so, and a well-behaved client beside loses nothing.
#
# tests/peers/rogue_server.py answers every request with 200 "ok", except
# one whose path carries its marker, which gets the mode the marker names.
# For each mode, curl (a plain HTTP client) sends one such request, and
# tests/peers/seq_client.py one and then a plain one on the same
# connection, while h2load runs beside them through the same h2lb to the
# same backend:
#
#   close      the backend closes before answering: 503, never a 200 with
#              nothing in it (what h2lb answered before)
#   midbody    it closes after 1,000 bytes of the body: the stream is reset
#              (INTERNAL_ERROR), so curl fails it, never a short body that
#              looks whole (before: gRPC trailers, and curl exit 0)
#   push       PUSH_PROMISE, though told ENABLE_PUSH 0: GOAWAY(PROTOCOL_ERROR)
#              to the backend, 503 to the client
#   bigblock   a response header block of 80 KiB, beyond the 64 KiB h2lb
#              announces: GOAWAY(PROTOCOL_ERROR), 503
#   framesize  HEADERS, then a DATA frame of 16,385 bytes:
#              GOAWAY(FRAME_SIZE_ERROR) to the backend, and the stream,
#              whose HEADERS came, reset (INTERNAL_ERROR)
#   idledata   DATA on a stream the client never opened:
#              GOAWAY(PROTOCOL_ERROR), 503
#   overrun    80 KiB of DATA on one stream whatever its window: within
#              curl's (it announces megabytes), all of it reaches curl;
#              seq_client's stays at 65,535 (its connection window is the
#              largest), so h2lb passes the 48 KiB that fit in 16 KiB
#              frames and resets the stream: RST_STREAM(FLOW_CONTROL_ERROR)
#              to the backend, RST_STREAM(INTERNAL_ERROR) to the client.
#              A client strict about its stream windows (grpc core) would
#              have failed its whole connection.
#
# In every mode the plain request after it is served on the same
# connection (the client's connection outlives its leg), nothing of the
# bad frames reaches the client, the backend stays READY, and h2load has
# no failed request.
#
# gRPC clients read that 503 (it carries grpc-status 14 too) as
# UNAVAILABLE, which they may retry: a unary call of grpc-go and of
# grpc-js, in close and push modes (the method's path carries the
# marker: "/!@!@close!@!@/x", whose Huffman code is longer, so it is
# sent as is).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"

tb_require_cmd h2load curl
source "$TB_PEERS/grpc_peers.sh"
require_go_peers
require_grpc_js

PORT=9003
URL=http://$H2LB_ADDR/
tb_up 1
tb_spawn b1 rogue "$TB_PYTHON" "$TB_PEERS/rogue_server.py" --port $PORT
ROGUE_OUT=$TB_STATE/logs/rogue.log
tb_wait_port b1 $PORT 10 "$TB_LAST_PID" || fail "the rogue server did not start"
H2LB_EXPECT_READY=1 h2lb_start --backends "$(tb_backend_ip 1):$PORT"

state() {
    h2lb_map backends | "$TB_PYTHON" -c '
import json, sys
print(json.load(sys.stdin)[0]["value"]["state"])'
}

# The modes take 8-10 s; h2load runs through all of them.
tb_run cli h2load -D 18 -c 2 -m 4 "$URL" >"$TB_STATE/good" 2>&1 &
good=$!
sleep 0.5

# check MODE CURL SEQ LEG [CURL_LEG]: curl's "code exitcode bytes";
# seq_client's "status bytes reset" for the marked request; the GOAWAY and
# RST_STREAM codes seq_client's leg got ("null": none) and how it ended
# (rogue_server.py's report), and curl's leg's if not the same.
check() {
    local mode=$1 curl_want=$2 seq_want=$3 leg=$4 curl_leg=${5:-$4} out got want i
    local path="/!@!@$mode!@!@"
    out=$(tb_run cli curl -sS --http2-prior-knowledge --max-time 5 \
        -o /dev/null -w '%{http_code} %{exitcode} %{size_download}' \
        "http://$H2LB_ADDR$path" 2>"$TB_STATE/curl.$mode") || true
    echo "   $mode: curl: $out $(head -1 "$TB_STATE/curl.$mode")"
    [[ $out == "$curl_want" ]] || fail "$mode: curl: want '$curl_want', got '$out'"
    tb_run cli "$TB_PYTHON" "$TB_PEERS/seq_client.py" --target "$H2LB_ADDR" \
        --path "$path" --path / --conn-window >"$TB_STATE/seq.$mode" ||
        fail "$mode: seq_client failed"
    echo "   $mode: seq_client: $(cat "$TB_STATE/seq.$mode")"
    "$TB_PYTHON" - "$TB_STATE/seq.$mode" "$seq_want" <<'PY' || fail "$mode: seq_client did not get what it should"
import json, sys
out = json.load(open(sys.argv[1]))
first, second = out["requests"]
got = "%s %s %s" % (first["status"], first["bytes"], first["reset"])
ok = got == sys.argv[2].replace("-", "None")
ok &= (second["status"], second["bytes"], second["ended"]) == (200, 2, True)
ok &= out["goaway"] is None and out["stray"] == []
if not ok:
    print("want '%s' then a 200 on the same connection; got '%s'"
          % (sys.argv[2], got), file=sys.stderr)
sys.exit(0 if ok else 1)
PY
    for ((i = 0; i < 50; i++)); do
        got=$(grep -cF "\"mode\": \"$mode\"" "$ROGUE_OUT" || true)
        ((got >= 2)) && break
        sleep 0.1
    done
    got=$(grep -F "\"mode\": \"$mode\"" "$ROGUE_OUT" | sort -u | tr '\n' ' ')
    want=$(printf '{"mode": "%s", "goaway": %s}\n' "$mode" "$leg" "$mode" "$curl_leg" |
        sort -u | tr '\n' ' ')
    echo "   $mode: the backend: $got"
    [[ $got == "$want" ]] || fail "$mode: the backend's legs: want '$want', got '$got'"
    [[ $(state) == 1 ]] || fail "$mode: the backend is no longer READY ($(state))"
}

check close "503 0 0" "503 0 -" 'null, "rst": null, "end": "ours"'
check midbody "200 92 1000" "200 1000 2" 'null, "rst": null, "end": "ours"'
check push "503 0 0" "503 0 -" '1, "rst": null, "end": "closed"'
check bigblock "503 0 0" "503 0 -" '1, "rst": null, "end": "closed"'
check framesize "200 92 0" "200 0 2" '6, "rst": null, "end": "closed"'
check idledata "503 0 0" "503 0 -" '1, "rst": null, "end": "closed"'
check overrun "200 0 81920" "200 49152 2" 'null, "rst": 3, "end": "closed"' \
    'null, "rst": null, "end": "closed"'
grep -q "stream error 3 (DATA beyond the stream's window)" "$(h2lb_log)" ||
    fail "the log does not name the backend's overrun"

for mode in close push; do
    for client in grpc-go node; do
        case $client in
            grpc-go) cmd=("$PEERS_BIN/interop_client") want=Unavailable ;;
            node) cmd=(node "$NODE_DIR/interop_client.js") want=UNAVAILABLE ;;
        esac
        out=$(tb_run cli timeout 20 "${cmd[@]}" --target "$H2LB_ADDR" \
            --call "/!@!@$mode!@!@/x" --call-timeout 5) ||
            fail "$mode: the $client client failed: $out"
        echo "   $mode: $out"
        [[ $("$TB_PYTHON" -c 'import json, sys; print(json.loads(sys.argv[1])["code"])' "$out") == "$want" ]] ||
            fail "$mode: $client: want status $want, got: $out"
    done
done

wait "$good" || fail "h2load failed: $(tail -5 "$TB_STATE/good")"
line=$(grep '^requests:' "$TB_STATE/good")
echo "   h2load beside: $line"
grep -Eq '^requests: [0-9]+ total, [0-9]+ started, ([1-9][0-9]*) done, \1 succeeded, 0 failed, 0 errored, 0 timeout' <<<"$line" ||
    fail "the well-behaved client lost requests"
h2lb_stop || fail "h2lb did not stop cleanly"
echo "PASS: a rogue backend's broken frames and lost connections ended only the streams that met them, each with an answer that says so"
