# shellcheck shell=bash
# tests/peers/probe.sh - shell side of the "h2lb.Probe" peers (sourced by
# integration tests, after tests/lib/test.sh, which loads testbed.sh and
# h2lb.sh and defines fail).
#
#   probe_start               probe_server.py "backend-I" on :PROBE_PORT in
#                             every bI; waits until all listen
#   probe_backends            "IP:PORT,..." of the probe servers, for
#                             h2lb_start --backends
#   probe_client ARGS...      probe_client.py in the client ns, aimed at h2lb
#   probe_stats [--reset]     one Stats JSON line per backend, b1..bN (asked
#                             inside each backend ns on 127.0.0.1, so nothing
#                             on the node is involved)
#   kernel_backends           one JSON line per configured backend from the
#                             pinned "backends" map, in backend order:
#                             {"index","state","streams","open_streams",
#                              "resets","bytes_to","bytes_from"}
#   probe_keep_logs NAME      on a failed run (PROBE_PASSED unset), copy the
#                             testbed logs and dumps of h2lb's maps to
#                             $PROBE_KEEP_DIR/NAME/ (H2LB_KEEP_LOGS, default
#                             build/test-logs) before the testbed is torn
#                             down; register with tb_on_cleanup AFTER
#                             h2lb_start so that it runs while h2lb lives
#   probe_keep_logs_on_failure NAME
#                             remove what an earlier failed run kept, and
#                             register probe_keep_logs NAME as cleanup hook
#   probe_passed              mark the run as passed (call right before the
#                             PASS line): probe_keep_logs then keeps nothing

PROBE_PORT=${PROBE_PORT:-50052}
PROBE_KEEP_DIR=${H2LB_KEEP_LOGS:-$TB_ROOT/build/test-logs}
PROBE_PASSED=

probe_passed() {
    PROBE_PASSED=1
}

probe_start() {
    tb_start_servers probe "$PROBE_PORT" "$TB_PEERS/probe_server.py" "$@"
}

probe_backends() {
    local i list=
    for ((i = 1; i <= TB_N; i++)); do
        list+=$(tb_backend_ip "$i"):$PROBE_PORT,
    done
    printf '%s\n' "${list%,}"
}

probe_client() {
    tb_run cli "$TB_PYTHON" "$TB_PEERS/probe_client.py" --target "$H2LB_ADDR" "$@"
}

probe_stats() {
    local i rc=0 tmp pids=()
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/h2lb-probe-stats.XXXXXX") || return 1
    for ((i = 1; i <= TB_N; i++)); do
        tb_exec "b$i" "$TB_PYTHON" "$TB_PEERS/probe_client.py" \
            --target "127.0.0.1:$PROBE_PORT" --timeout 20 stats "$@" \
            </dev/null >"$tmp/$i" &
        pids+=("$!")
    done
    for ((i = 1; i <= TB_N; i++)); do
        if ! wait "${pids[i - 1]}"; then
            tb_err "Stats of probe backend $i failed"
            rc=1
        fi
    done
    ((rc == 0)) && for ((i = 1; i <= TB_N; i++)); do cat "$tmp/$i"; done
    rm -rf -- "$tmp"
    return "$rc"
}

kernel_backends() {
    h2lb_map backends | "$TB_PYTHON" -c '
import json, sys
n = int(sys.argv[1])
rows = {int(e["key"]): e["value"] for e in json.load(sys.stdin)}
for i in range(n):
    v = rows.get(i, {})
    print(json.dumps({"index": i, "state": v.get("state"),
                      "streams": v.get("streams", 0),
                      "open_streams": v.get("open_streams", 0),
                      "resets": v.get("resets", 0),
                      "bytes_to": v.get("bytes_to", 0),
                      "bytes_from": v.get("bytes_from", 0)}))
' "$TB_N"
}

probe_keep_logs() {
    local name=$1 dest
    [[ -n $PROBE_PASSED ]] && return 0
    [[ -d $TB_STATE/logs ]] || return 0
    dest=$PROBE_KEEP_DIR/$name
    rm -rf -- "$dest"
    mkdir -p "$dest" 2>/dev/null || return 0
    cp -f "$TB_STATE"/logs/*.log "$dest"/ 2>/dev/null || true
    # The daemon's maps, while it still runs (hooks run before its own).
    if [[ -d ${H2LB_PIN:-/nonexistent} ]]; then
        local m
        for m in backends conns streams counters daemon_stats; do
            [[ -e $H2LB_PIN/$m ]] &&
                h2lb_map "$m" >"$dest/map-$m.json" 2>/dev/null
        done
    fi
    echo "logs of the failed run kept in $dest" >&2
}

probe_keep_logs_on_failure() {
    local name=$1
    [[ -n $name && $name != */* ]] || return 1
    rm -rf -- "${PROBE_KEEP_DIR:?}/$name"
    tb_on_cleanup probe_keep_logs "$name"
}

# probe_testbed N TEST: the start the probe tests share: N backends running
# probe servers, h2lb balancing them, TEST's logs kept if it fails.
probe_testbed() {
    tb_up "$1" || return 1
    probe_start || return 1
    h2lb_start --backends "$(probe_backends)" || return 1
    probe_keep_logs_on_failure "$2"
}
