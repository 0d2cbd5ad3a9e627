# shellcheck shell=bash
# tests/lib/h2lb.sh - run h2lb in a testbed's node namespace (sourced, after
# tests/lib/testbed.sh).
#
#   h2lb_start [RUN ARGS...]  start `h2lb run` in the node ns, listening on
#                             H2LB_ADDR (198.18.1.1:50051), balancing the
#                             testbed's greeters (or what RUN ARGS say), maps
#                             pinned in H2LB_PIN; waits until it listens and
#                             every backend is ready; with H2LB_WRAP (an
#                             array) set, through "${H2LB_WRAP[@]}" h2lb ...
#                             With H2LB_TEST_FAST_PATH=1 (the suite on the
#                             fast path: `make test-fast-path`), also
#                             --fast-path on for the clients' cgroup CG,
#                             which tb_run and tb_spawn put clients in
#   h2lb_start_vip MODE VIP:PORT [RUN ARGS...]
#                             the same behind a VIP intercepted by MODE (tc
#                             or cgroup), for static backends at PORT
#   h2lb_stop                 SIGTERM, bounded wait; fails if it did not exit 0
#                             or left pins or its cgroup behind
#   h2lb_map NAME             bpftool -j dump of a pinned map (backends: the
#                             indexes in use only)
#   h2lb_daemon_stats         the daemon's own counters, as JSON
#   h2lb_counter NAME         a kernel counter (include/h2lb.h), all CPUs
#   h2lb_metric ADDR NAME     the value of h2lb_NAME (NAME may carry
#                             {labels}) in /metrics on ADDR, or -1
#   daemon_clients            client connections the daemon accepted so far
#                             (after 0.2 s: it publishes once a tick)
#   served_by [TARGET]        200 greeter calls on one channel to TARGET
#                             (default H2LB_ADDR), 4 in flight: which
#                             backends served them, e.g. "backend-1
#                             backend-2"; fails if a call failed
#   h2lb_log                  path of the daemon's log
#   kernel_mem_kib            memory the kernel holds (KiB): in use on the
#                             machine less every process's anonymous memory
#   slab_kib                  the kernel's slab caches (KiB), where skb heads
#                             are; steadier than kernel_mem_kib, whose free
#                             memory moves by tens of MiB under traffic

H2LB_BIN=${H2LB_BIN:-$TB_ROOT/build/h2lb}
H2LB_PORT=${H2LB_PORT:-50051}
H2LB_ADDR=$TB_NODE_IP:$H2LB_PORT
H2LB_PIN=/sys/fs/bpf/h2lb-test-$TB_PREFIX

h2lb_backends() {
    local i list='' port=${1:-$TB_GREETER_PORT}
    for ((i = 1; i <= TB_N; i++)); do
        list+=$(tb_backend_ip "$i"):$port,
    done
    printf '%s\n' "${list%,}"
}

h2lb_log() { printf '%s\n' "$TB_STATE/logs/h2lb.log"; }

h2lb_start() {
    local args=("$@") i ready
    if ((${#args[@]} == 0)); then
        args=(--backends "$(h2lb_backends)")
    fi
    # (A daemon wrapped in namespaces of its own, H2LB_WRAP, may not see
    # the clients' cgroup: today's path.)
    if [[ -z ${H2LB_WRAP+x} ]]; then
        h2lb_fast_path_args "${args[@]}" || return 1
        args+=(${H2LB_FAST_ARGS[@]+"${H2LB_FAST_ARGS[@]}"})
    fi
    # A test that stops h2lb with streams still open must not wait the
    # default 20 s graceful stop (RUN ARGS can set another).
    tb_spawn node h2lb ${H2LB_WRAP[@]+"${H2LB_WRAP[@]}"} "$H2LB_BIN" run --listen "$H2LB_ADDR" \
        --pin-dir "$H2LB_PIN" --stop-timeout 5 "${args[@]}" || return 1
    tb_on_cleanup _h2lb_cleanup
    tb_wait_port node "$H2LB_PORT" 20 "$TB_LAST_PID" || return 1
    # Ready when every configured backend has a handshaken connection.
    for ((i = 0; i < 100; i++)); do
        ready=$(grep -c ' ready$' "$(h2lb_log)" || true)
        ((ready >= ${H2LB_EXPECT_READY:-$TB_N})) && return 0
        sleep 0.1
    done
    tb_err "h2lb: only $ready backends ready after 10s"
    return 1
}

# h2lb_fast_path_args RUN ARGS...: H2LB_FAST_ARGS, what puts a daemon
# started with RUN ARGS on the fast path when H2LB_TEST_FAST_PATH=1
# (nothing otherwise): --fast-path on, and the clients' cgroup CG (made
# here) unless RUN ARGS name one. For tests that start h2lb by hand.
h2lb_fast_path_args() {
    H2LB_FAST_ARGS=()
    [[ ${H2LB_TEST_FAST_PATH:-} == 1 && " $* " != *" --fast-path "* ]] ||
        return 0
    H2LB_FAST_ARGS=(--fast-path on)
    if [[ " $* " != *" --intercept-cgroup "* ]]; then
        tb_clients_cgroup || return 1
        H2LB_FAST_ARGS+=(--intercept-cgroup "$CG")
    fi
}

# h2lb_start_vip MODE VIP:PORT [RUN ARGS...]: h2lb balancing the testbed's
# backends at PORT behind VIP:PORT, intercepted by MODE (tc on vcli, or
# cgroup on the clients' cgroup CG), listening on the node's address at
# PORT; ready once it logs that it intercepts VIP:PORT (the daemon attaches
# its hooks before it sets up any Service). On the suite's fast path too.
h2lb_start_vip() {
    local mode=$1 vip=$2 port=${2##*:} i args hook svc
    shift 2 || return 2
    args=(--backends "$(h2lb_backends "$port")" --vip "$vip"
        --listen "$TB_NODE_IP:$port" --intercept "$mode" "$@")
    if [[ $mode == tc ]]; then
        args+=(--intercept-dev vcli)
    elif [[ " ${args[*]} " != *" --intercept-cgroup "* ]]; then
        args+=(--intercept-cgroup "$CG")
    fi
    h2lb_fast_path_args "${args[@]}" || return 1
    args+=(${H2LB_FAST_ARGS[@]+"${H2LB_FAST_ARGS[@]}"})
    : >"$(h2lb_log)"
    tb_spawn node h2lb "$H2LB_BIN" run --pin-dir "$H2LB_PIN" --stop-timeout 2 \
        "${args[@]}" || return 1
    tb_on_cleanup _h2lb_cleanup
    for ((i = 0; i < 100; i++)); do
        grep -q "intercepting $vip" "$(h2lb_log)" && break
        kill -0 "$TB_LAST_PID" 2>/dev/null || break
        sleep 0.1
    done
    # The hooks' line must come first: a client that connects as soon as
    # the Service's line is there must be intercepted.
    hook=$(grep -nE "intercept: (tc ingress on|connect and getpeername)" "$(h2lb_log)" | head -1)
    svc=$(grep -n "intercepting $vip" "$(h2lb_log)" | head -1)
    [[ -n $svc && -n $hook && ${hook%%:*} -lt ${svc%%:*} ]] && return 0
    tail -n 20 "$(h2lb_log)" >&2
    tb_err "h2lb did not start intercepting $vip (with its hooks first)"
    return 1
}

# Cleanup hook: stop the daemon if a test left it running, remove pins.
_h2lb_cleanup() {
    local pid
    if pid=$(tb_pid h2lb 2>/dev/null) && kill -0 "$pid" 2>/dev/null; then
        tb_kill h2lb TERM
    fi
    # A daemon that died without cleaning up (a test kills one) leaves its
    # pins and its cgroup: unload removes both.
    if [[ -d $H2LB_PIN ]]; then
        "$H2LB_BIN" unload --pin-dir "$H2LB_PIN" >/dev/null 2>&1 || true
        rm -rf -- "$H2LB_PIN"
    fi
    return 0
}

h2lb_stop() {
    local pid rc i
    pid=$(tb_pid h2lb) || return 1
    kill -TERM "$pid" 2>/dev/null || return 1
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        tb_err "h2lb did not stop within 10s"
        return 1
    fi
    wait "$pid" 2>/dev/null
    rc=$?
    if ((rc != 0)); then
        tb_err "h2lb exited with $rc"
        return 1
    fi
    if [[ -e $H2LB_PIN ]]; then
        tb_err "h2lb left $H2LB_PIN behind"
        return 1
    fi
    if [[ -n $(find /sys/fs/cgroup /run/h2lb-cgroup2 -maxdepth 6 -type d -name "h2lb-$pid" 2>/dev/null) ]]; then
        tb_err "h2lb left its cgroup behind"
        return 1
    fi
    return 0
}

# A pinned map as a JSON list of {"key": ..., "value": ...}, with the named
# fields bpftool prints from BTF.
h2lb_map() {
    if [[ $1 == backends ]]; then
        _h2lb_backends_in_use
        return
    fi
    bpftool -j map dump pinned "$H2LB_PIN/$1" | "$TB_PYTHON" -c '
import json, sys
print(json.dumps([e.get("formatted", e) for e in json.load(sys.stdin)]))'
}

# The backends array holds --max-backends entries (16,384 by default), and
# bpftool takes 1.7 s of CPU to dump them all, which a test that samples
# states would take from the very traffic it watches: the indexes in use
# only (lb_config's nr_backends), in one bpftool batch.
_h2lb_backends_in_use() {
    local nr i batch
    nr=$(bpftool -j map lookup pinned "$H2LB_PIN/lb_config" key 0 0 0 0 |
        "$TB_PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["formatted"]["value"]["nr_backends"])') ||
        return 1
    if ((nr == 0)); then
        echo '[]'
        return 0
    fi
    batch=$(mktemp)
    for ((i = 0; i < nr; i++)); do
        echo "map lookup pinned $H2LB_PIN/backends key $((i & 255)) $((i >> 8 & 255)) $((i >> 16 & 255)) 0"
    done >"$batch"
    if ! bpftool -j batch file "$batch" | "$TB_PYTHON" -c '
import json, sys
print(json.dumps([r["output"]["formatted"] for r in json.load(sys.stdin)]))'; then
        rm -f "$batch"
        return 1
    fi
    rm -f "$batch"
}

h2lb_daemon_stats() {
    h2lb_map daemon_stats | "$TB_PYTHON" -c '
import json, sys
print(json.dumps(json.load(sys.stdin)[0]["value"]))'
}

# h2lb_status_daemon: the "daemon" object of `h2lb status -j` (its
# counters, and events_by_type keyed by the daemon's own names).
h2lb_status_daemon() {
    "$H2LB_BIN" status -j --pin-dir "$H2LB_PIN" | "$TB_PYTHON" -c '
import json, sys
print(json.dumps(json.load(sys.stdin)["daemon"]))'
}

# h2lb_events TYPE: how many events of TYPE (the daemon's name for it,
# e.g. window, divert) the daemon has read.
h2lb_events() {
    h2lb_status_daemon | "$TB_PYTHON" -c '
import json, sys
print(json.load(sys.stdin)["events_by_type"][sys.argv[1]])' "$1"
}

h2lb_counter() {
    h2lb_map counters | "$TB_PYTHON" -c '
import json, sys
print(sum(v["value"][sys.argv[1]] for v in json.load(sys.stdin)[0]["values"]))' "$1"
}

h2lb_metric() {
    tb_exec node curl -s --max-time 5 "http://$1/metrics" |
        awk -v m="h2lb_$2" '$1 == m { print $2; f = 1 } END { if (!f) print -1 }'
}

daemon_clients() {
    # The daemon publishes its counters once a tick (50 ms): a client
    # that came and went within one is not counted yet (test_h2lb_h2tools
    # read 0 so once in CI).
    sleep 0.2
    h2lb_daemon_stats | "$TB_PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["clients"])'
}

served_by() {
    tb_client --target "${1:-$H2LB_ADDR}" --calls 200 --concurrency 4 --json |
        "$TB_PYTHON" -c '
import json, sys
s = json.loads(sys.stdin.read())
assert s["errors"] == 0, s
print(" ".join(sorted(s["by_backend"])))'
}

slab_kib() {
    awk '/^Slab:/ {print $2}' /proc/meminfo
}

# tcp_mem_pages: TCP's memory count for the whole machine (the "mem" of
# /proc/net/sockstat), in pages (docs/kernel-facts.md K23).
tcp_mem_pages() {
    awk '$1 == "TCP:" { for (i = 2; i < NF; i++) if ($i == "mem") print $(i + 1) }' \
        /proc/net/sockstat
}

kernel_mem_kib() {
    local anon
    anon=$(cat /proc/[0-9]*/status 2>/dev/null | awk '/^RssAnon:/ {s += $2} END {print s + 0}')
    awk -v anon="$anon" '/^MemTotal:/ {t = $2} /^MemAvailable:/ {a = $2}
        END {print t - a - anon}' /proc/meminfo
}
