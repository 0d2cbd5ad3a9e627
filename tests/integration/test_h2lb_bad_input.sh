#!/usr/bin/env bash
# timeout: 200
#
# test_h2lb_bad_input - bad input gets a protocol-correct answer.
#
# Raw clients break HTTP/2 in one way each (an oversized frame, an even
# stream id, a stray CONTINUATION, stream ids going backwards). Each gets
# GOAWAY with the right error code (PROTOCOL_ERROR or FRAME_SIZE_ERROR) and
# then its connection closed, while a well-behaved gRPC channel on the same
# balancer carries on without an error. A client that is not HTTP/2 at all
# (an HTTP/1.1 request) is forwarded whole to a backend, which answers it
# (the gRPC server closes it). Afterwards the daemon is alive and the
# kernel holds no state for the bad clients.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"

tb_up 4
tb_start_greeters
h2lb_start

# A good client keeps calling the whole time.
tb_client --target "$H2LB_ADDR" --calls 3000 --concurrency 4 --json \
    >"$TB_STATE/good" 2>&1 &
good=$!

raw0=$(h2lb_counter raw_connections)
tb_run cli "$TB_PYTHON" "$TB_PEERS/bad_client.py" --target "$H2LB_ADDR" \
    >"$TB_STATE/bad" || fail "bad client crashed"
raw=$(($(h2lb_counter raw_connections) - raw0))
wait "$good" || fail "the good client saw errors: $(tail -2 "$TB_STATE/good")"
cat "$TB_STATE/bad" | sed 's/^/   /'
"$TB_PYTHON" - "$TB_STATE/bad" <<'PY' || fail "wrong answer to bad input"
import json, sys
# http1: no GOAWAY from h2lb; its backend answered, and closed it.
want = {"http1": None, "oversized": 6, "even_stream": 1,
        "stray_continuation": 1, "stream_id_backwards": 1}
seen = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    seen[r["case"]] = r
    assert r["goaway"] == want[r["case"]], "%s: GOAWAY %s, want %s" % (
        r["case"], r["goaway"], want[r["case"]])
    assert r["closed"], "%s: connection not closed" % r["case"]
    assert r["seconds"] < 3, "%s: took %ss" % (r["case"], r["seconds"])
assert set(seen) == set(want), seen.keys()
PY
echo "   good client: $(tail -1 "$TB_STATE/good")"
echo "   connections forwarded whole to a backend: $raw"
((raw == 1)) || fail "the HTTP/1.1 client was not forwarded to a backend ($raw)"

kill -0 "$(tb_pid h2lb)" || fail "the daemon died"
sleep 0.5
clients=$(h2lb_map conns | "$TB_PYTHON" -c '
import json, sys
print(sum(1 for e in json.load(sys.stdin) if e["value"]["role"] == 1))')
((clients == 0)) || fail "$clients client connections left in the kernel"
h2lb_stop || fail "h2lb did not stop cleanly"
echo "PASS: each protocol violation got the right GOAWAY; nobody else noticed"
