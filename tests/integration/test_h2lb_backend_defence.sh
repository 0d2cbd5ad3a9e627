#!/usr/bin/env bash
# timeout: 300
#
# test_h2lb_backend_defence - a backend's defence is not turned against
# everyone (issue #11, item 4).
#
#   1. rapid reset: a raw client sends HEADERS + RST_STREAM in a loop
#      beside h2load (a well-behaved client) through h2lb to two nghttpd.
#      nghttpd answers the flood with GOAWAY(INTERNAL_ERROR) on the
#      attacker's legs: the attacker gets GOAWAY(ENHANCE_YOUR_CALM) and
#      its connection closed within its first legs; both backends stay
#      READY the whole time (sampled); h2load has no failed request; the
#      log gets a few lines, not one per refused stream; new clients
#      right after are served by both backends.
#   2. a header block nghttpd cannot decode: GOAWAY(COMPRESSION_ERROR) to
#      that client only; both backends stay READY.
#   3. a backend that really fails (its nghttpd killed) is ejected; while
#      it stays down the wait between tries grows (the log's "next try in
#      N ms"); once it listens again it is READY within that wait; a
#      second failure starts over at the first wait (~200 ms).
#   4. a sick backend (tests/peers/goaway_server.py: handshakes, then
#      GOAWAY(INTERNAL_ERROR) to every request) errs on the legs of
#      several clients: it is ejected although its pool is full, and
#      probed back (READY again) within its backoff.
#   5. every backend down: 2000 streams refused write a few summary lines
#      to the log, not one line each.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"

tb_require_cmd nghttpd h2load curl bpftool "$TB_PYTHON"

SICK_PORT=8081
URL=http://$H2LB_ADDR/index.txt
tb_up 3
tb_start_nghttpd
H2LB_EXPECT_READY=2 h2lb_start --backends \
    "$(tb_backend_ip 1):$TB_HTTP_PORT,$(tb_backend_ip 2):$TB_HTTP_PORT"
LOG=$(h2lb_log)

# Kernel states of backends 0 and 1 (1 READY, 3 EJECTED), e.g. "1 1".
states() {
    h2lb_map backends | "$TB_PYTHON" -c '
import json, sys
print(" ".join(str(e["value"]["state"]) for e in json.load(sys.stdin)[:2]))'
}

# For failure messages: each backend's state and open streams.
kb() {
    h2lb_map backends | "$TB_PYTHON" -c '
import json, sys
print(" ".join("%d:%d" % (e["value"]["state"], e["value"]["open_streams"])
               for e in json.load(sys.stdin)[:2]))'
}

# Backend 1's state alone.
state1() { local s; s=$(states); echo "${s#* }"; }

# Which backends answer N new connections, e.g. "backend-1 backend-2".
bodies() {
    local i
    for ((i = 0; i < $1; i++)); do
        tb_run cli curl -sS --max-time 5 --http2-prior-knowledge "$URL" || true
    done | sort -u | tr '\n' ' '
}

# attack MODE SECONDS: the attacker's JSON line.
attack() {
    tb_run cli "$TB_PYTHON" "$TB_PEERS/attack_client.py" --target "$H2LB_ADDR" \
        --mode "$1" --seconds "$2" >"$TB_STATE/attack.$1"
    cat "$TB_STATE/attack.$1"
}

# ---- 1. rapid reset beside a good client
lines0=$(wc -l <"$LOG")
tb_run cli h2load -n 6000 -c 4 -m 4 "$URL" >"$TB_STATE/good" 2>&1 &
good=$!
: >"$TB_STATE/samples"
(for ((i = 0; i < 40; i++)); do states >>"$TB_STATE/samples"; sleep 0.1; done) &
sampler=$!
out=$(attack rapid-reset 3)
wait "$good" || fail "h2load failed: $(tail -5 "$TB_STATE/good")"
wait "$sampler"
echo "   attacker: $out"
grep -E '^requests:|^status codes:' "$TB_STATE/good" | sed 's/^/   h2load: /'
"$TB_PYTHON" - "$out" <<'PY' || fail "the rapid-reset attacker was not cut off"
import json, sys
r = json.loads(sys.argv[1])
assert r["goaway"] == 11, "GOAWAY %s, want ENHANCE_YOUR_CALM (11)" % r["goaway"]
assert r["closed"], "connection not closed"
assert r["seconds"] < 3, "cut off only after %ss" % r["seconds"]
PY
grep -q ' 0 failed, 0 errored, 0 timeout' "$TB_STATE/good" &&
    grep -q '^status codes: 6000 2xx' "$TB_STATE/good" ||
    fail "the good client saw failures"
bad=$(grep -vc '^1 1$' "$TB_STATE/samples" || true)
((bad == 0)) || fail "a backend left READY during the attack: $(sort "$TB_STATE/samples" | uniq -c)"
echo "   backend states: READY in all $(wc -l <"$TB_STATE/samples") samples"
! grep -q 'ejected' "$LOG" || fail "a backend was ejected: $(grep ejected "$LOG" | head -3)"
lines=$(($(wc -l <"$LOG") - lines0))
echo "   log lines written during the attack: $lines"
((lines < 100)) || fail "$lines log lines for one attacker"
before=$(kb)
served=$(bodies 8)
echo "   new clients served by: $served (state:open streams before them: $before)"
[[ $served == "backend-1 backend-2 " ]] || fail "new clients not served by both backends: '$served' (state:open streams $(kb))"

# ---- 2. a header block the backend cannot decode
out=$(attack bad-hpack 2)
echo "   bad header block: $out"
"$TB_PYTHON" - "$out" <<'PY' || fail "the bad-hpack client got the wrong answer"
import json, sys
r = json.loads(sys.argv[1])
assert r["goaway"] == 9, "GOAWAY %s, want COMPRESSION_ERROR (9)" % r["goaway"]
assert r["closed"], "connection not closed"
PY
sleep 0.5
[[ $(states) == "1 1" ]] || fail "backends not READY after the bad header block: $(states)"
! grep -q 'ejected' "$LOG" || fail "a backend was ejected: $(grep ejected "$LOG" | head -3)"

echo "   backends (state:open streams): $(kb)"

# ---- 3. a backend that really fails: ejected, backoff grows, re-admitted
restart_b2() {
    tb_spawn b2 "nghttpd-b2-$1" nghttpd --no-tls -d "$TB_STATE/www/b2" \
        "$TB_HTTP_PORT" && tb_wait_port b2 "$TB_HTTP_PORT" 20 "$TB_LAST_PID"
}
# "FAILURE BACKOFF_MS" of each ejection of backend 1 logged so far.
ejections() {
    sed -n 's/.*backend 1 ejected: .*(failure \([0-9]*\), next try in \([0-9]*\) ms.*/\1 \2/p' "$LOG"
}
tb_kill nghttpd-b2 KILL
for ((i = 0; i < 100; i++)); do
    (($(ejections | wc -l) >= 5)) && break
    sleep 0.1
done
ejections | sed 's/^/   killed: failure, next try in ms: /'
"$TB_PYTHON" - "$(ejections)" <<'PY' || fail "the backoff does not grow"
import sys
rows = [tuple(map(int, l.split())) for l in sys.argv[1].splitlines()]
assert len(rows) >= 5, rows
assert [f for f, _ in rows[:5]] == [1, 2, 3, 4, 5], rows
waits = [ms for _, ms in rows[:5]]
# 200 ms doubling to 1 s, +-20%: the first three cannot overlap.
assert 160 <= waits[0] <= 240, waits
assert waits[0] < waits[1] < waits[2], waits
assert all(800 <= w <= 1200 for w in waits[3:]), waits
PY
[[ $(state1) == 3 ]] || fail "the dead backend is not EJECTED: $(states)"
restart_b2 again || fail "cannot restart nghttpd on b2"
wait_ms=$(ejections | tail -1 | cut -d' ' -f2)
t0=$(date +%s%N)
for ((i = 0; i < 200; i++)); do
    [[ $(state1) == 1 ]] && break
    sleep 0.05
done
back_ms=$((($(date +%s%N) - t0) / 1000000))
echo "   restarted: READY again after ${back_ms} ms (the wait then: ${wait_ms} ms)"
[[ $(state1) == 1 ]] || fail "the restarted backend is not READY: $(states)"
((back_ms <= wait_ms + 1000)) || fail "READY only after ${back_ms} ms"
grep -q 'backend 1 ready again' "$LOG" || fail "no 'ready again' line"
served=$(bodies 8)
echo "   new clients served by: $served"
[[ $served == "backend-1 backend-2 " ]] || fail "not served by both backends: '$served' (state:open streams $(kb))"
# Success reset the backoff: the next failure waits the first wait again.
n=$(ejections | wc -l)
tb_kill nghttpd-b2-again KILL
for ((i = 0; i < 50; i++)); do
    (($(ejections | wc -l) > n)) && break
    sleep 0.1
done
again=$(ejections | sed -n "$((n + 1))p")
echo "   killed again: failure, next try in ms: $again"
[[ ${again%% *} == 1 ]] && ((${again#* } <= 240)) ||
    fail "the backoff did not start over: '$again'"
restart_b2 third || fail "cannot restart nghttpd on b2"

# ---- 4. a sick backend, its pool full: ejected for errors across
# clients, probed back within its backoff
h2lb_stop || fail "h2lb did not stop cleanly"
mv "$LOG" "$LOG.1"
tb_spawn b3 goaway-b3 "$TB_PYTHON" "$TB_PEERS/goaway_server.py" --port "$SICK_PORT"
tb_wait_port b3 "$SICK_PORT" 20 "$TB_LAST_PID" || fail "goaway_server did not start"
H2LB_EXPECT_READY=2 h2lb_start --backends \
    "$(tb_backend_ip 1):$TB_HTTP_PORT,$(tb_backend_ip 3):$SICK_PORT"
# Six clients at once, each a connection of its own that stays open.
tb_run cli h2load -n 120 -c 6 -m 1 --rps 10 "$URL" >"$TB_STATE/sick" 2>&1 &
load=$!
for ((i = 0; i < 100; i++)); do
    grep -q 'backend 1 ready again' "$LOG" && break
    sleep 0.05
done
wait "$load" || true
grep -E '^requests:' "$TB_STATE/sick" | sed 's/^/   h2load beside the sick backend: /'
{ grep -E 'backend 1 (ejected|ready again)|cut off' "$LOG" || true; } | head -4 | sed 's/^/   /'
"$TB_PYTHON" - "$LOG" <<'PY' || fail "the sick backend was not ejected, or not probed back within its backoff"
import re, sys
# The first ejection with a full pool: what brings the backend back then
# can only be the probe. (One ejected while clients still take legs from
# the pool is re-admitted by a leg that was already handshaking.)
ej = back = None
for line in open(sys.argv[1]):
    m = re.match(r"h2lb\[([0-9.]+)\].*backend 1 ejected: errors on legs of several "
                 r"clients .*next try in (\d+) ms, (\d+) leg", line)
    if m and ej is None and int(m.group(3)) >= 7:
        ej, wait, pooled = float(m.group(1)), int(m.group(2)), int(m.group(3))
    m = re.match(r"h2lb\[([0-9.]+)\].*backend 1 ready again", line)
    if m and ej is not None and back is None:
        back = float(m.group(1))
assert ej is not None, "not ejected for errors with its pool full"
assert back is not None, "never ready again"
took = (back - ej) * 1000
print("   ejected with %d legs pooled, ready again %.0f ms later (backoff %d ms)"
      % (pooled, took, wait))
assert took <= wait + 500, took
PY

# ---- 5. every backend down: each stream is refused, the log sums up
tb_kill goaway-b3 KILL
tb_kill nghttpd-b1 KILL
for ((i = 0; i < 50; i++)); do
    [[ $(states) == "3 3" ]] && break
    sleep 0.1
done
[[ $(states) == "3 3" ]] || fail "dead backends not EJECTED: $(states)"
lines0=$(wc -l <"$LOG")
tb_run cli h2load -n 2000 -c 2 -m 10 "$URL" >"$TB_STATE/refused" 2>&1 || true
sleep 1.2 # the summary line comes at most once a second
lines=$(($(wc -l <"$LOG") - lines0))
refused=$("$H2LB_BIN" status -j --pin-dir "$H2LB_PIN" | "$TB_PYTHON" -c '
import json, sys
print(json.load(sys.stdin)["counters"]["refused_streams"])')
echo "   all backends down: $refused streams refused, $lines log lines"
((refused >= 2000)) || fail "only $refused streams refused"
((lines < 30)) || fail "$lines log lines for $refused refused streams"
grep -q 'stream(s) refused: no backend connection available' "$LOG" ||
    fail "no summary line for the refused streams"

kill -0 "$(tb_pid h2lb)" || fail "the daemon died"
h2lb_stop || fail "h2lb did not stop cleanly"
echo "PASS: an attacker is cut off, not the backends; a failed backend comes back within its backoff"
