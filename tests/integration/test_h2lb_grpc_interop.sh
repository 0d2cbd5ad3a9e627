#!/usr/bin/env bash
# timeout: 420
#
# test_h2lb_grpc_interop - gRPC interop cases, every client x every server,
# directly and through h2lb.
#
# Servers (service h2lb.Interop, tests/peers/interop.proto):
#   b1  grpc-go 1.33   build/peers/interop_server   (make peers)
#   b2  python grpcio  tests/peers/interop_server.py
# Clients, in the client namespace, each running every case on ONE
# connection (one JSON line per case):
#   go      build/peers/interop_client
#   python  tests/peers/interop_client.py
#   node    tests/peers/node/interop_client.js (@grpc/grpc-js)
# Cases: large_unary (271828 B up, 314159 B down), server_streaming (31415,
# 9, 2653, 58979 B), client_streaming (27182, 8, 1828, 45904 B), ping_pong
# (those sizes), empty_stream, cancel_after_begin,
# cancel_after_first_response, timeout_on_sleeping_server, custom_metadata
# (ASCII and -bin, initial and trailing, echoed), status_code_and_message
# (unicode message), unimplemented_method.
#
# Each client runs against each server directly (client ns -> backend
# address), then through h2lb (H2LB_ADDR, h2lb balancing that one server).
# Every case must pass directly (else the peers are broken), and through
# h2lb every case must pass exactly as it does directly.
#
# The large-message cases repeat ITER_DIRECT / ITER_H2LB times on the one
# connection: grpc-go's BDP estimator raises its windows (SETTINGS
# INITIAL_WINDOW_SIZE + connection WINDOW_UPDATE) mostly within the first
# ten large_unary iterations (seen as late as the 250th through h2lb; the
# grpc-go client prints where, from the frames on its wire), and python's
# grpc core does the same, so the later iterations run on grown windows.
# The windows grow with timing, and so do hangs that depend on them (seen
# from the 4th to the 735th iteration): hence 800 iterations through h2lb.
# Every call has a CALL_TIMEOUT deadline and every client run a bounded
# time, so a hang fails a case, not the test run.
#
# Knobs (environment): ITER_DIRECT, ITER_H2LB, SMALL, CALL_TIMEOUT,
# RUN_TIMEOUT, CASES (a comma-separated subset), CLIENTS, SERVERS, and
# GO_SERVER_ARGS: "--static-window 65535" turns the grpc-go server's BDP
# estimator off, "--static-window 1048576" makes it announce a 1 MiB
# window from the start (window growth without the timing).
ITER_DIRECT=${ITER_DIRECT:-300}    # iterations of the large-message cases
ITER_H2LB=${ITER_H2LB:-800}
SMALL=${SMALL:-10}                 # iterations of the other cases
CALL_TIMEOUT=${CALL_TIMEOUT:-5}    # seconds, each call
RUN_TIMEOUT=${RUN_TIMEOUT:-60}     # seconds, no iteration starts after it
CASES=${CASES:-}                   # comma-separated subset (default: all)
CLIENTS=${CLIENTS:-go python node}
GO_SERVER_ARGS=${GO_SERVER_ARGS:-}  # e.g. "--static-window 1048576" (no BDP)
SERVERS=${SERVERS:-go python}
# KNOWN_STALLS="CLIENT>SERVER:CASE ...": case runs to leave out through
# h2lb (none by default). grpc-js streaming from grpc-go stalled now and
# then (about 2 runs in 5 of 3,000 server-streaming calls) until the
# daemon's tick refilled windows that nothing else would (user/conns.c,
# window_tick); 12 runs of 3,000 passed after that.
KNOWN_STALLS=${KNOWN_STALLS-}
ALL_CASES=large_unary,server_streaming,client_streaming,ping_pong,empty_stream,cancel_after_begin,cancel_after_first_response,timeout_on_sleeping_server,custom_metadata,status_code_and_message,unimplemented_method
N=2

source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"
source "$TB_PEERS/probe.sh"
tb_require_cmd ip nsenter ss bpftool timeout "$TB_PYTHON"

source "$TB_PEERS/grpc_peers.sh"
require_go_peers
require_grpc_js

RES=$TB_STATE/results
t_start=$EPOCHREALTIME
tb_up "$N"
mkdir -p "$RES"
probe_keep_logs_on_failure test_h2lb_grpc_interop

declare -A SERVER_ROLE=([go]=b1 [python]=b2)
read -r -a go_server_args <<<"$GO_SERVER_ARGS"
tb_spawn b1 interop-go "$PEERS_BIN/interop_server" --port "$TB_GREETER_PORT" \
    --name go-server "${go_server_args[@]}"
tb_wait_port b1 "$TB_GREETER_PORT" 20 "$TB_LAST_PID" || fail "the grpc-go server did not start"
tb_spawn b2 interop-python "$TB_PYTHON" "$TB_PEERS/interop_server.py" \
    --port "$TB_GREETER_PORT" --name python-server
tb_wait_port b2 "$TB_GREETER_PORT" 30 "$TB_LAST_PID" || fail "the python server did not start"

# run_client CLIENT SERVER PATH TARGET ITER: one client run, its JSON lines
# in $RES/CLIENT-SERVER-PATH.jsonl (a link to logs/result-....log, kept with
# the logs of a failed run), its exit status in ....rc.
run_client() {
    local client=$1 server=$2 path=$3 target=$4 iter=$5 cmd rc t0
    case $client in
        go) cmd=("$PEERS_BIN/interop_client") ;;
        python) cmd=("$TB_PYTHON" "$TB_PEERS/interop_client.py") ;;
        node) cmd=(node "$NODE_DIR/interop_client.js") ;;
        *) fail "unknown client $client" ;;
    esac
    local out=$RES/$client-$server-$path cases=$CASES k
    if [[ $path == h2lb ]]; then
        for k in $KNOWN_STALLS; do
            [[ ${k%%:*} == "$client>$server" ]] || continue
            cases=$(tr ',' '\n' <<<"${cases:-$ALL_CASES}" | grep -vx "${k#*:}" | paste -sd,)
        done
    fi
    ln -sf "$TB_STATE/logs/result-$client-$server-$path.log" "$out.jsonl"
    t0=$EPOCHREALTIME
    rc=0
    tb_run cli timeout -k 5 $((RUN_TIMEOUT + CALL_TIMEOUT + 20)) "${cmd[@]}" \
        --target "$target" --iterations "$iter" --small-iterations "$SMALL" \
        --call-timeout "$CALL_TIMEOUT" --timeout "$RUN_TIMEOUT" ${cases:+--cases "$cases"} \
        >"$out.jsonl" 2>>"$TB_STATE/logs/client-$client-$server-$path.log" || rc=$?
    echo "$rc" >"$out.rc"
    printf '   %-6s -> %-6s %-6s exit %d, %d cases passed of %d, %.1fs\n' \
        "$client" "$server" "$path" "$rc" "$(grep -c '"ok": *true' "$out.jsonl" || true)" \
        "$(grep -c '"case"' "$out.jsonl" || true)" \
        "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')"
}

echo "== directly: each client -> each server ($ITER_DIRECT large iterations, $SMALL small)"
for server in $SERVERS; do
    ip=$(tb_backend_ip "${SERVER_ROLE[$server]#b}")
    for client in $CLIENTS; do
        run_client "$client" "$server" direct "$ip:$TB_GREETER_PORT" "$ITER_DIRECT"
    done
done

echo "== through h2lb: each client -> h2lb -> each server ($ITER_H2LB large iterations)"
for server in $SERVERS; do
    ip=$(tb_backend_ip "${SERVER_ROLE[$server]#b}")
    H2LB_EXPECT_READY=1 h2lb_start --backends "$ip:$TB_GREETER_PORT" ||
        fail "h2lb did not start in front of the $server server"
    for client in $CLIENTS; do
        run_client "$client" "$server" h2lb "$H2LB_ADDR" "$ITER_H2LB"
    done
    kernel_backends | sed 's/^/   kernel: /' >"$RES/kernel-$server.txt" || true
    cat "$RES/kernel-$server.txt"
    h2lb_stop || fail "h2lb did not stop cleanly (in front of the $server server)"
    # The next h2lb_start must wait for its own "ready" lines.
    mv -f "$(h2lb_log)" "$TB_STATE/logs/h2lb-$server.log"
done

echo "== results (direct / through h2lb)"
"$TB_PYTHON" - "$RES" "$CLIENTS" "$SERVERS" "$ITER_DIRECT" "$ITER_H2LB" "$SMALL" "$CASES" "$KNOWN_STALLS" <<'PY' ||
import json, os, sys
res, clients, servers = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
iters = {"direct": int(sys.argv[4]), "h2lb": int(sys.argv[5])}
small = int(sys.argv[6])
LARGE = ("large_unary", "server_streaming", "client_streaming", "ping_pong")
CASES = LARGE + ("empty_stream", "cancel_after_begin",
                 "cancel_after_first_response", "timeout_on_sleeping_server",
                 "custom_metadata", "status_code_and_message",
                 "unimplemented_method")
if sys.argv[7]:
    CASES = tuple(sys.argv[7].split(","))
SKIP = {tuple(k.split(":")) for k in sys.argv[8].split()}

def load(client, server, path):
    base = os.path.join(res, f"{client}-{server}-{path}")
    rows = {}
    try:
        with open(base + ".jsonl") as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    r = json.loads(line)
                    rows[r["case"]] = r
        rc = int(open(base + ".rc").read())
    except (OSError, ValueError) as e:
        rc = f"no result ({e})"
    return rows, rc

problems = {"direct": [], "h2lb": []}
cols = [(c, s) for c in clients for s in servers]
print(f"   {'case':28s} " + " ".join(f"{c + '>' + s:>14s}" for c, s in cols))
table = {}
for c, s in cols:
    for path in ("direct", "h2lb"):
        rows, rc = load(c, s, path)
        for case in CASES:
            r = rows.get(case)
            want = iters[path] if case in LARGE else small
            if path == "h2lb" and (f"{c}>{s}", case) in SKIP:
                table[(case, c, s, path)] = None
                continue
            if r is None:
                ok, why = False, "no result line"
            elif not r["ok"]:
                ok, why = False, r.get("error", "?")
            elif r["iterations"] != want:
                ok, why = False, f"{r['iterations']} iterations, want {want}"
            else:
                ok, why = True, ""
            table[(case, c, s, path)] = ok
            if not ok:
                problems[path].append(f"{c} -> {s}: {case}: {why}")
        if rc != 0 and all(table[(k, c, s, path)] is not False for k in CASES):
            problems[path].append(f"{c} -> {s}: the client exited {rc}")
        # grpc-go's view of its windows (BDP estimator).
        if c == "go":
            r = rows.get("large_unary") or {}
            w = [(k, rows[k].get("client_window_grew_at"), rows[k].get("client_window"))
                 for k in CASES if k in rows and rows[k].get("client_window_grew_at")]
            print(f"   [grpc-go -> {s} {path}: window grew during "
                  f"{', '.join(f'{k} (last at iteration {i}, now {v})' for k, i, v in w) or 'no case'}; "
                  f"server announced {r.get('server_window')}]")
for case in CASES:
    cells = []
    for c, s in cols:
        d, h = table[(case, c, s, "direct")], table[(case, c, s, "h2lb")]
        cells.append(f"{'ok' if d else 'FAIL'}/"
                     f"{'skip' if h is None else 'ok' if h else 'FAIL'}")
    print(f"   {case:28s} " + " ".join(f"{x:>14s}" for x in cells))
for path in ("direct", "h2lb"):
    for p in problems[path]:
        print(f"   {path}: {p}")
if problems["direct"]:
    print("   the peers fail without h2lb: the test itself is broken")
    sys.exit(1)
if problems["h2lb"]:
    print(f"   {len(problems['h2lb'])} case runs fail through h2lb that pass directly")
    sys.exit(1)
PY
    fail "not every interop case passes through h2lb as it does directly"

probe_passed
echo "   took $(awk -v a="$t_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')s"
echo "PASS: every interop case, $CLIENTS clients x $SERVERS servers, directly and through h2lb${KNOWN_STALLS:+ (left out through h2lb: $KNOWN_STALLS)}"
