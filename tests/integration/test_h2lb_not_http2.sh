#!/usr/bin/env bash
# timeout: 200
# params: tc cgroup
#
# test_h2lb_not_http2[MODE] - a connection to a balanced Service that is not
# HTTP/2 is never broken: h2lb --intercept MODE (tc or cgroup) forwards it
# whole, both ways, to one backend chosen by --policy, in the kernel.
#
#   1. TLS gRPC: three grpcio servers with a self-signed certificate (made
#      here by openssl) behind VIP 198.18.100.1:50443; six grpcio TLS
#      channels through the VIP, one after the other: every call succeeds,
#      each channel's calls all go to one backend (one connection), and the
#      six spread over all three backends (round-robin); the kernel counts 6
#      raw connections, and what the daemon read and wrote is under 1% of
#      the payload (it peeks 24 bytes of each, never reads the rest); the
#      greeters saw the client's own address as their peer.
#   2. HTTP/1.1: three python servers behind 198.18.100.1:8081, called by
#      curl through the VIP: 4 MiB bodies that end with the server's FIN
#      (no Content-Length: curl needs the FIN after the last byte) and with
#      a Content-Length, a 3 MiB upload, all byte for byte, on all three
#      backends.
#   3. The memory bound: a client asks for 256 MiB and never reads. With
#      --peer-buffer 2M --node-buffer 32M the kernel resets the pair once the
#      node is over 32 MiB: what h2lb counts as queued toward peers stays
#      under 48 MiB in every sample and goes back under 4 MiB, and twenty
#      1 MiB downloads beside it all arrive whole.
#   4. A server-first protocol (a greeting, then an echo) behind
#      198.18.100.1:2525: the client, silent until the greeting comes, is
#      forwarded after --first-bytes-timeout (1 s); it gets the greeting,
#      its two lines answered, and the server's FIN after its own; then
#      the kernel holds no record of the pair. A connection that talks
#      across SIGTERM is served to its end, then the daemon stops.
# In cgroup mode the clients run in a child cgroup of the test's own.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"
tb_require_cmd openssl curl bpftool

MODE=${1:-${H2LB_TEST_PARAM:-}}
[[ $MODE == tc || $MODE == cgroup ]] ||
    fail "MODE is tc or cgroup (the argument, or H2LB_TEST_PARAM), not '$MODE'"
VIP=198.18.100.1
TLS_PORT=50443
HTTP_PORT=8081
GREET_PORT=2525
BODY=$((4 << 20))

# In the client namespace, and in cgroup mode in the clients' cgroup.
cli() {
    if [[ $MODE == cgroup ]]; then
        tb_run cli sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG" "$@"
    else
        tb_run cli "$@"
    fi
}

# start PORT [RUN ARGS]: h2lb balancing the three backends' PORT behind
# VIP:PORT (round-robin); ready once it intercepts (the backends never
# handshake HTTP/2).
start() {
    local port=$1
    shift
    h2lb_start_vip "$MODE" "$VIP:$port" --policy round-robin "$@" ||
        fail "h2lb did not start intercepting $VIP:$port"
}

stat_of() { h2lb_daemon_stats | "$TB_PYTHON" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
daemon_io() { h2lb_daemon_stats | "$TB_PYTHON" -c 'import json, sys; s = json.load(sys.stdin); print(s["bytes_read"] + s["bytes_written"])'; }

# sha256 of http1_server.py's pattern of N bytes
pattern_sha() {
    "$TB_PYTHON" - "$TB_PEERS" "$1" <<'PY'
import hashlib, sys
sys.path.insert(0, sys.argv[1])
from http1_server import pattern
h = hashlib.sha256()
for p in pattern(int(sys.argv[2])):
    h.update(p)
print(h.hexdigest())
PY
}

tb_up 3
[[ $MODE == cgroup ]] && tb_clients_cgroup

echo "== 1. TLS gRPC behind $VIP:$TLS_PORT"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=greeter.test \
    -addext subjectAltName=DNS:greeter.test -keyout "$TB_STATE/key.pem" \
    -out "$TB_STATE/cert.pem" >/dev/null 2>&1 || fail "openssl could not make a certificate"
tb_start_servers tlsgreeter "$TLS_PORT" "$TB_PEERS/greeter_server.py" \
    --tls "$TB_STATE/cert.pem,$TB_STATE/key.pem" || fail "TLS greeters did not start"
start "$TLS_PORT"
raw0=$(h2lb_counter raw_connections) io0=$(daemon_io)
for ((i = 1; i <= 6; i++)); do
    cli "$TB_PYTHON" "$TB_PEERS/greeter_client.py" --target "$VIP:$TLS_PORT" \
        --tls-ca "$TB_STATE/cert.pem" --tls-name greeter.test --calls 20 \
        --concurrency 2 --payload 65536 --reply-size 65536 --json \
        >"$TB_STATE/tls-$i.json" || fail "TLS channel $i failed: $(tail -3 "$TB_STATE/tls-$i.json")"
done
sleep 0.2 # the daemon publishes its counters every 50 ms
raw=$(($(h2lb_counter raw_connections) - raw0)) io=$(($(daemon_io) - io0))
"$TB_PYTHON" - "$TB_STATE" "$TB_N" "$io" <<'PY' || fail "TLS calls were not served as one backend per connection, spread over all"
import json, sys
state, n, io = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
per = []
for i in range(1, 7):
    s = json.loads(open("%s/tls-%d.json" % (state, i)).read().strip().splitlines()[-1])
    assert s["errors"] == 0, s
    assert len(s["by_backend"]) == 1, ("one connection, one backend", s["by_backend"])
    per += list(s["by_backend"])
payload = 6 * 20 * 2 * 65536
print("   6 TLS channels, 20 calls each: backends %s" % " ".join(sorted(per)))
print("   the daemon read and wrote %d bytes: %.3f%% of the %d payload bytes" % (io, 100.0 * io / payload, payload))
assert sorted(set(per)) == ["backend-%d" % i for i in range(1, n + 1)], per
assert io * 100 < payload, io
PY
echo "   raw connections counted: $raw"
((raw == 6)) || fail "the kernel counted $raw raw connections, not 6"
# The backends see the client's own address (--leg-source client).
peers=$(for ((i = 1; i <= TB_N; i++)); do
    tb_exec "b$i" "$TB_PYTHON" "$TB_PEERS/greeter_client.py" \
        --target "127.0.0.1:$TLS_PORT" --tls-ca "$TB_STATE/cert.pem" \
        --tls-name greeter.test --mode stats --timeout 20
done | tb_peer_addrs)
echo "   the TLS greeters' peers: $peers"
[[ $peers == "$TB_CLI_IP" ]] || fail "the backends saw $peers, not the client $TB_CLI_IP"
h2lb_stop || fail "h2lb did not stop cleanly"

echo "== 2. HTTP/1.1 behind $VIP:$HTTP_PORT"
tb_start_servers http1 "$HTTP_PORT" "$TB_PEERS/http1_server.py" ||
    fail "HTTP/1.1 servers did not start"
start "$HTTP_PORT" --peer-buffer 2M --node-buffer 32M
want=$(pattern_sha "$BODY")
backends=()
for q in "?close=1" "?close=1" "?close=1" ""; do
    cli curl -sS --http1.1 -m 20 -D "$TB_STATE/headers" -o "$TB_STATE/body" \
        "http://$VIP:$HTTP_PORT/bytes/$BODY$q" || fail "curl of /bytes/$BODY$q failed"
    got=$(sha256sum <"$TB_STATE/body" | cut -d' ' -f1)
    be=$(awk -F': ' 'tolower($1) == "x-backend" { print $2 }' "$TB_STATE/headers" | tr -d '\r')
    echo "   GET /bytes/$BODY$q: $(stat -c %s "$TB_STATE/body") bytes from $be"
    [[ $got == "$want" ]] || fail "the body of /bytes/$BODY$q differs from what $be sent"
    backends+=("$be")
done
[[ $(printf '%s\n' "${backends[@]}" | sort -u | wc -l) == 3 ]] ||
    fail "the downloads did not go to all three backends: ${backends[*]}"
head -c $((3 << 20)) /dev/urandom >"$TB_STATE/up"
got=$(cli curl -sS --http1.1 -m 20 --data-binary @"$TB_STATE/up" "http://$VIP:$HTTP_PORT/sha256") ||
    fail "the upload failed"
[[ $got == "$(sha256sum <"$TB_STATE/up" | cut -d' ' -f1)" ]] ||
    fail "the backend got another upload than was sent: $got"
echo "   POST of 3 MiB: the backend's SHA-256 matches"

echo "== 3. a client that never reads 256 MiB, twenty 1 MiB downloads beside it"
full0=$(($(h2lb_counter raw_queue_full) + $(stat_of raw_full)))
small=$(pattern_sha 1048576) mem0=$(kernel_mem_kib)
cat >"$TB_STATE/lazy.py" <<'PY'
import json, socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
s.connect((sys.argv[1], int(sys.argv[2])))
s.sendall(b"GET /bytes/268435456 HTTP/1.1\r\nHost: x\r\n\r\n")
time.sleep(4)  # reads nothing meanwhile
s.settimeout(5)
n, err = 0, "eof"
try:
    while n < 268435456:
        b = s.recv(1 << 16)
        if not b:
            break
        n += len(b)
except OSError as e:
    err = type(e).__name__
print(json.dumps({"bytes": n, "end": err}))
PY
cli "$TB_PYTHON" "$TB_STATE/lazy.py" "$VIP" "$HTTP_PORT" >"$TB_STATE/lazy" 2>&1 &
lazy=$!
# What the kernel holds unacknowledged toward all peers (h2lb's own count,
# published every 50 ms), sampled until the lazy client is done.
(while kill -0 "$lazy" 2>/dev/null; do stat_of queued; sleep 0.05; done) \
    >"$TB_STATE/queued" 2>/dev/null &
sampler=$!
for ((i = 0; i < 20; i++)); do
    cli curl -sS --http1.1 -m 20 -o "$TB_STATE/small" "http://$VIP:$HTTP_PORT/bytes/1048576" ||
        fail "download $i beside the lazy client failed"
    [[ $(sha256sum <"$TB_STATE/small" | cut -d' ' -f1) == "$small" ]] ||
        fail "download $i beside the lazy client was not whole"
done
wait "$lazy" || fail "the lazy client crashed: $(cat "$TB_STATE/lazy")"
wait "$sampler" || true
sleep 0.5
full=$(($(h2lb_counter raw_queue_full) + $(stat_of raw_full) - full0))
peak=$(sort -n "$TB_STATE/queued" | tail -1) after=$(stat_of queued)
mem=$(($(kernel_mem_kib) - mem0))
echo "   lazy client: $(cat "$TB_STATE/lazy"); pairs reset at the bound: $full"
echo "   queued toward peers: at most $((peak >> 20)) MiB in $(wc -l <"$TB_STATE/queued") samples, $((after >> 10)) KiB after"
echo "   (the machine's kernel memory, not checked: other tests share it: $((mem / 1024)) MiB more)"
((full >= 1)) || fail "the lazy client's pair was not reset at the bound"
"$TB_PYTHON" -c 'import json, sys; s = json.load(open(sys.argv[1])); sys.exit(not (s["bytes"] < 64 << 20))' "$TB_STATE/lazy" ||
    fail "the lazy client got its 256 MiB: nothing bounded it"
((peak < 48 << 20)) || fail "$((peak >> 20)) MiB were queued, over --node-buffer 32M and then some"
((after < 4 << 20)) || fail "$((after >> 20)) MiB still queued after the reset"
h2lb_stop || fail "h2lb did not stop cleanly"

echo "== 4. a server-first protocol behind $VIP:$GREET_PORT"
tb_start_servers greeting "$GREET_PORT" "$TB_PEERS/greeting_server.py" ||
    fail "greeting servers did not start"
start "$GREET_PORT"
cat >"$TB_STATE/greet.py" <<'PY'
import json, socket, sys, time
t0 = time.monotonic()
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
f = s.makefile("rb")
hello = f.readline()
t = time.monotonic() - t0
s.sendall(b"one\r\ntwo\r\n")
s.shutdown(socket.SHUT_WR)
rest = f.read()  # until the server's FIN
print(json.dumps({"greeting": hello.decode(), "after": round(t, 3),
                  "rest": rest.decode()}))
PY
cli "$TB_PYTHON" "$TB_STATE/greet.py" "$VIP" "$GREET_PORT" >"$TB_STATE/greet" ||
    fail "the server-first client failed: $(cat "$TB_STATE/greet")"
echo "   $(cat "$TB_STATE/greet")"
"$TB_PYTHON" - "$TB_STATE/greet" <<'PY' || fail "the server-first connection was not carried whole"
import json, sys
r = json.load(open(sys.argv[1]))
name = r["greeting"].split()[1]
assert r["greeting"] == "220 %s ready\r\n" % name, r
# silent for --first-bytes-timeout (1 s), then forwarded; the greeting
# waited in the leg's queue while the two joined
assert 0.9 <= r["after"] < 3, r
assert r["rest"] == "%s: one\r\n%s: two\r\n" % (name, name), r
PY
# Both directions ended: the daemon closes the pair, the kernel forgets it.
for ((i = 0; i < 40; i++)); do
    left=$(h2lb_map conns | "$TB_PYTHON" -c '
import json, sys
print(sum(1 for e in json.load(sys.stdin) if e["value"]["flags"] & 0x10))')
    ((left == 0)) && break
    sleep 0.05
done
echo "   raw connections left in the kernel after the close: $left"
((left == 0)) || fail "$left raw connection records outlived their close"

# A graceful stop waits for a raw connection, as for a stream: one that
# talks across the SIGTERM is served to its end, then the daemon exits.
cat >"$TB_STATE/across.py" <<'PY'
import json, socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
f = s.makefile("rb")
f.readline()
open(sys.argv[3], "w").write("ready\n")
time.sleep(0.7)  # the daemon gets SIGTERM meanwhile
s.sendall(b"late\r\n")
s.shutdown(socket.SHUT_WR)
print(json.dumps({"rest": f.read().decode()}))
PY
cli "$TB_PYTHON" "$TB_STATE/across.py" "$VIP" "$GREET_PORT" "$TB_STATE/ready" \
    >"$TB_STATE/across" 2>&1 &
across=$!
for ((i = 0; i < 50; i++)); do
    [[ -s $TB_STATE/ready ]] && break
    sleep 0.1
done
pid=$(tb_pid h2lb)
kill -TERM "$pid" || fail "could not signal h2lb"
wait "$across" || fail "the connection across the stop failed: $(cat "$TB_STATE/across")"
echo "   across SIGTERM: $(cat "$TB_STATE/across")"
grep -q '"rest": "backend-[0-9]: late' "$TB_STATE/across" ||
    fail "the raw connection was not served across the stop"
for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
! kill -0 "$pid" 2>/dev/null || fail "h2lb did not exit after its last raw connection"
grep -q "stopped gracefully" "$(h2lb_log)" || fail "h2lb did not stop gracefully"
echo "PASS: TLS gRPC, HTTP/1.1 and a server-first protocol through $VIP ($MODE) went whole to one backend each, both ways, bounded"
