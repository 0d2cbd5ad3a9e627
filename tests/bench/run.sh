#!/usr/bin/env bash
# tests/bench/run.sh - h2lb benchmark (what `make bench` runs, as root).
#
# Compares, in one run on one testbed (tests/lib/testbed.sh, 4 backends),
# the same client workloads against
#   direct    the client talks to backend 1 itself (no balancer)
#   l4        kube-proxy-style iptables DNAT of another VIP (198.18.100.2)
#             to the backends, random per connection: what L4 costs
#   floor     the fast path's two kernel hand-offs and nothing else: a
#             relay (tests/bench/floor/) of the client's one connection to
#             backend 1, its writes redirected into the relay's leg by
#             sk_msg, what the leg gets into the client's socket by
#             sk_skb with BPF_F_INGRESS; no frames, no rules, no choice.
#             What h2lb-fast costs beyond it is h2lb's own
#             (docs/latency.md, "The floor"). The seq workload only
#             (198.18.1.1:7070, a fresh relay for each run)
#   h2lb      h2lb in the node namespace (198.18.1.1:50051), per-stream
#   h2lb-vip  the same h2lb, reached at a Service VIP (198.18.100.1) that
#             tc ingress intercepts (--intercept tc --vip): what
#             interception adds
#   h2lb-fast the same VIP and h2lb, from a client in the clients' cgroup
#             with the same-node fast path on (--fast-path on
#             --intercept-cgroup; docs/fast-path.md): what the fast path
#             does to a client on the node (once its connection
#             switched, its frames go from its own socket to the legs and
#             its answers into its own socket). When it is a target,
#             h2lb and h2lb-vip share that daemon: their clients, not in
#             the cgroup, take today's path as with the fast path off.
#   haproxy   HAProxy, h2c frontend "proto h2", h2c servers "proto h2",
#             balance roundrobin (per request)   198.18.1.1:50052 / :50062
#   nghttpx   nghttpx, h2c frontend ("no-tls"), h2 backends ("proto=h2"),
#             per-request balancing              198.18.1.1:50053 / :50063
# Workloads (each for BENCH_TIME seconds after BENCH_WARMUP seconds):
#   grpc      sequential unary SayHello calls on ONE channel against the
#             python greeters (tests/bench/grpc_bench.py): calls/s, p50/p99
#   seq       h2load -c 1 -m 1 GET /index.txt against nghttpd: req/s, mean,
#             p50 and p99 per request, box CPU per 1,000 requests
#   tput      h2load -c BENCH_TPUT_C -m BENCH_TPUT_M GET /index.txt: req/s
#   big       h2load -c BENCH_BIG_C -m BENCH_BIG_M GET /big.bin (1 MiB): MiB/s
# For each: the CPU time of the balancer's own process tree (haproxy,
# nghttpx, the h2lb daemon) and of the whole box (/proc/stat: user and
# kernel = system+irq+softirq), over the measured window, and the time
# the host stole from the box's CPUs meanwhile (steal: on a shared host,
# a run with much of it was slowed by others).
#
# Prints a table (absolute numbers and the ratio to direct) and writes it as
# JSON to build/bench/results.json.  Exit status: 0 if the benchmark ran
# (errors through a balancer are reported in the table, not fatal), 1 if
# the testbed could not be set up, 77 if root or a tool is missing.
#
# Environment (defaults in brackets):
#   BENCH_TIME [5]          measured seconds per workload, target and rep
#   BENCH_WARMUP [1]        warm-up seconds before each measurement
#   BENCH_REPS [2]          rounds; each round runs every target once, in
#                           turn; the table shows each target's best round
#                           (least disturbed by whatever else runs on the
#                           machine) and the median over rounds of each
#                           round's ratio to direct; the JSON has them all
#   BENCH_TARGETS ["direct l4 floor h2lb h2lb-vip h2lb-fast haproxy nghttpx"]
#   BENCH_WORKLOADS ["grpc seq tput big"]
#   BENCH_TPUT_C [4] BENCH_TPUT_M [100]    clients/streams of "tput"
#   BENCH_BIG_C [1]  BENCH_BIG_M [4]       clients/streams of "big"
#   BENCH_H2LOAD_THREADS [1]
#   BENCH_BACKENDS [4]      number of backends
#   HAPROXY_THREADS, NGHTTPX_WORKERS [number of CPUs]
#   BENCH_H2LB_ARGS []      extra `h2lb run` options (e.g. "--policy
#                           round-robin"; h2lb's default is least-streams)
#   BENCH_RESULTS [build/bench/results.json]
#   BENCH_KEEP [0]          1: keep the work dir (configs, raw outputs)
# With the defaults the whole run takes about 6 minutes (2 CPUs).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
T_START=$(date +%s)

BENCH_TIME=${BENCH_TIME:-5}
BENCH_WARMUP=${BENCH_WARMUP:-1}
BENCH_REPS=${BENCH_REPS:-2}
BENCH_TARGETS=${BENCH_TARGETS:-"direct l4 floor h2lb h2lb-vip h2lb-fast haproxy nghttpx"}
BENCH_WORKLOADS=${BENCH_WORKLOADS:-"grpc seq tput big"}
BENCH_TPUT_C=${BENCH_TPUT_C:-4}
BENCH_TPUT_M=${BENCH_TPUT_M:-100}
BENCH_BIG_C=${BENCH_BIG_C:-1}
BENCH_BIG_M=${BENCH_BIG_M:-4}
BENCH_H2LOAD_THREADS=${BENCH_H2LOAD_THREADS:-1}
BENCH_BACKENDS=${BENCH_BACKENDS:-4}
NCPU=$(nproc)
HAPROXY_THREADS=${HAPROXY_THREADS:-$NCPU}
NGHTTPX_WORKERS=${NGHTTPX_WORKERS:-$NCPU}
BENCH_RESULTS=${BENCH_RESULTS:-$ROOT/build/bench/results.json}
BENCH_KEEP=${BENCH_KEEP:-0}
BENCH_H2LB_ARGS=${BENCH_H2LB_ARGS:-}

export H2LB_TB=${H2LB_TB:-h2lb-bench-$$}
export TB_L4_VIP=198.18.100.2 # the l4 target's; h2lb-vip intercepts TB_VIP
export PYTHONDONTWRITEBYTECODE=1
# shellcheck source=../lib/testbed.sh
source "$ROOT/tests/lib/testbed.sh"
# shellcheck source=../lib/h2lb.sh
source "$ROOT/tests/lib/h2lb.sh"

PY=$TB_PYTHON
LIB=$HERE/benchlib.py
HAPROXY_GRPC_PORT=50052
HAPROXY_HTTP_PORT=50062
NGHTTPX_GRPC_PORT=50053
NGHTTPX_HTTP_PORT=50063
FLOOR_PORT=7070
FLOOR_BIN=$ROOT/build/bench/floor
FLOOR_OBJ=$ROOT/build/bench/floor.bpf.o

log() { printf '[bench] %s\n' "$*" >&2; }
die() {
    printf '[bench] ERROR: %s\n' "$*" >&2
    exit 1
}

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
for v in BENCH_TIME BENCH_WARMUP BENCH_REPS BENCH_TPUT_C BENCH_TPUT_M BENCH_BIG_C \
    BENCH_BIG_M BENCH_H2LOAD_THREADS BENCH_BACKENDS HAPROXY_THREADS \
    NGHTTPX_WORKERS; do
    is_uint "${!v}" || die "$v must be a non-negative integer (got '${!v}')"
done
((BENCH_TIME >= 1 && BENCH_TIME <= 600)) || die "BENCH_TIME must be 1..600"
((BENCH_WARMUP <= 60)) || die "BENCH_WARMUP must be <= 60"
((BENCH_REPS >= 1 && BENCH_REPS <= 10)) || die "BENCH_REPS must be 1..10"
((BENCH_BACKENDS >= 1 && BENCH_BACKENDS <= 16)) || die "BENCH_BACKENDS must be 1..16"
for t in $BENCH_TARGETS; do
    [[ $t =~ ^(direct|l4|floor|h2lb|h2lb-vip|h2lb-fast|haproxy|nghttpx)$ ]] || die "unknown target '$t'"
done
for w in $BENCH_WORKLOADS; do
    [[ $w =~ ^(grpc|seq|tput|big)$ ]] || die "unknown workload '$w'"
done

tb_require_root
tb_require_cmd ip nsenter ss timeout bpftool h2load nghttpd "$PY"
want() { [[ " $BENCH_TARGETS " == *" $1 "* ]]; }
want_h2lb() { want h2lb || want h2lb-vip || want h2lb-fast; }
want haproxy && tb_require_cmd haproxy
want nghttpx && tb_require_cmd nghttpx
if want_h2lb && [[ ! -x $H2LB_BIN ]]; then
    die "$H2LB_BIN is missing: run make (or make bench)"
fi

WORK=$(mktemp -d /tmp/h2lb-bench.XXXXXX)
RECORDS=$WORK/records.jsonl
: >"$RECORDS"
cleanup_work() {
    if [[ $BENCH_KEEP == 1 ]]; then
        log "work dir kept: $WORK"
    else
        rm -rf -- "$WORK"
    fi
}
tb_cleanup_on_exit
tb_on_cleanup cleanup_work

# Every client run ends within this many seconds, whatever happens.
CLIENT_LIMIT=$((BENCH_TIME + BENCH_WARMUP + 30))
declare -A DOWN=()      # targets that failed to start: reason
if want floor && [[ ! -x $FLOOR_BIN || ! -r $FLOOR_OBJ ]]; then
    DOWN[floor]="$FLOOR_BIN is missing: run make bench"
fi
declare -A PHASE_INFO=() # extra facts for the JSON meta

# ------------------------------------------------------------- balancers

backend_list() {   # backend_list PORT -> "ip:port,ip:port,..."
    local port=$1 i out=
    for ((i = 1; i <= TB_N; i++)); do
        out+=$(tb_backend_ip "$i"):$port,
    done
    printf '%s\n' "${out%,}"
}

start_haproxy() {
    local cfg=$WORK/haproxy.cfg i
    {
        cat <<EOF
# h2lb benchmark: HAProxy, h2c in and out, round-robin per request.
global
    maxconn 4096
    nbthread $HAPROXY_THREADS
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend fe_grpc
    bind $TB_NODE_IP:$HAPROXY_GRPC_PORT proto h2
    default_backend be_grpc
frontend fe_http
    bind $TB_NODE_IP:$HAPROXY_HTTP_PORT proto h2
    default_backend be_http
backend be_grpc
    balance roundrobin
EOF
        for ((i = 1; i <= TB_N; i++)); do
            echo "    server b$i $(tb_backend_ip "$i"):$TB_GREETER_PORT proto h2"
        done
        echo "backend be_http"
        echo "    balance roundrobin"
        for ((i = 1; i <= TB_N; i++)); do
            echo "    server b$i $(tb_backend_ip "$i"):$TB_HTTP_PORT proto h2"
        done
    } >"$cfg"
    haproxy -c -q -f "$cfg" || return 1
    tb_spawn node haproxy haproxy -db -f "$cfg" || return 1
    tb_wait_port node "$HAPROXY_GRPC_PORT" 10 "$TB_LAST_PID" &&
        tb_wait_port node "$HAPROXY_HTTP_PORT" 10 "$TB_LAST_PID"
}

# start_nghttpx NAME PORT BACKEND_PORT
start_nghttpx() {
    local name=$1 port=$2 bport=$3 i args=()
    : >"$WORK/nghttpx-empty.conf"
    for ((i = 1; i <= TB_N; i++)); do
        args+=("--backend=$(tb_backend_ip "$i"),$bport;;proto=h2")
    done
    tb_spawn node "$name" nghttpx --conf="$WORK/nghttpx-empty.conf" \
        --frontend="$TB_NODE_IP,$port;no-tls" --workers="$NGHTTPX_WORKERS" \
        --no-ocsp "${args[@]}" || return 1
    tb_wait_port node "$port" 10 "$TB_LAST_PID"
}

# start_h2lb BACKEND_PORT: (re)start h2lb balancing the backends' port, on
# its listen address and, for h2lb-vip and h2lb-fast, at the VIP with that
# port; for h2lb-fast, with the fast path on for the clients' cgroup
# (h2lb_start adds the flags when H2LB_TEST_FAST_PATH=1).
start_h2lb() {
    local vip=() fast=0
    if want h2lb-vip || want h2lb-fast; then
        vip=(--intercept tc --intercept-dev vcli --vip "$TB_VIP:$1")
    fi
    want h2lb-fast && fast=1
    : >"$(h2lb_log)" 2>/dev/null || true   # h2lb_start counts "ready" lines
    # shellcheck disable=SC2086 # BENCH_H2LB_ARGS: words on purpose
    if ! H2LB_TEST_FAST_PATH=$fast h2lb_start --backends "$(backend_list "$1")" \
        "${vip[@]}" $BENCH_H2LB_ARGS; then
        DOWN[h2lb]="h2lb did not start"
        DOWN[h2lb-vip]=${DOWN[h2lb]}
        DOWN[h2lb-fast]=${DOWN[h2lb]}
        log "WARNING: ${DOWN[h2lb]}"
    fi
}

# start_floor: a fresh floor relay (it serves one connection) in the node
# namespace, to backend 1's nghttpd, for clients in the clients' cgroup.
start_floor() {
    tb_spawn node floor "$FLOOR_BIN" "$FLOOR_OBJ" "$CG" "$TB_NODE_IP" \
        "$FLOOR_PORT" "$(tb_backend_ip 1)" "$TB_HTTP_PORT" || return 1
    tb_wait_port node "$FLOOR_PORT" 10 "$TB_LAST_PID"
}

stop_floor() {
    tb_kill floor TERM 2>/dev/null || log "WARNING: the floor relay did not stop"
}

# client TARGET CMD...: CMD in the client namespace; for h2lb-fast and
# floor, in the clients' cgroup.
client() {
    local fast=0
    [[ $1 == h2lb-fast || $1 == floor ]] && fast=1
    shift
    H2LB_TEST_FAST_PATH=$fast tb_run cli "$@"
}

# h2lb_snap FILE: h2lb's kernel counters and per-backend stats (or null).
h2lb_snap() {
    {
        printf '{"counters": '
        h2lb_map counters 2>/dev/null || printf 'null'
        printf ', "backends": '
        h2lb_map backends 2>/dev/null || printf 'null'
        printf ', "daemon": '
        h2lb_daemon_stats 2>/dev/null || printf 'null'
        printf '}\n'
    } >"$1"
}

stop_h2lb() {
    local phase=$1
    h2lb_snap "$WORK/h2lb-$phase.end"
    PHASE_INFO[h2lb_$phase]=$("$PY" "$LIB" h2lbdiff "" "$WORK/h2lb-$phase.end")
    if ! h2lb_stop; then
        log "WARNING: h2lb did not stop cleanly after the $phase phase"
        PHASE_INFO[h2lb_stop_$phase]='"failed"'
        _h2lb_cleanup
    fi
}

# pids_of TARGET PHASE: PIDs whose process trees are the balancer.
pids_of() {
    case $1 in
        direct | l4) ;;
        h2lb | h2lb-vip | h2lb-fast) tb_pid h2lb ;;
        floor) tb_pid floor ;;
        haproxy) tb_pid haproxy ;;
        nghttpx) tb_pid "nghttpx-$2" ;;
    esac
    return 0
}

# addr_of TARGET PHASE: where the client connects.
addr_of() {
    case $1:$2 in
        direct:grpc) echo "$(tb_backend_ip 1):$TB_GREETER_PORT" ;;
        direct:http) echo "$(tb_backend_ip 1):$TB_HTTP_PORT" ;;
        l4:grpc) echo "$TB_L4_VIP:$TB_GREETER_PORT" ;;
        l4:http) echo "$TB_L4_VIP:$TB_HTTP_PORT" ;;
        floor:http) echo "$TB_NODE_IP:$FLOOR_PORT" ;;
        h2lb:*) echo "$H2LB_ADDR" ;;
        h2lb-vip:grpc) echo "$TB_VIP:$TB_GREETER_PORT" ;;
        h2lb-vip:http) echo "$TB_VIP:$TB_HTTP_PORT" ;;
        h2lb-fast:grpc) echo "$TB_VIP:$TB_GREETER_PORT" ;;
        h2lb-fast:http) echo "$TB_VIP:$TB_HTTP_PORT" ;;
        haproxy:grpc) echo "$TB_NODE_IP:$HAPROXY_GRPC_PORT" ;;
        haproxy:http) echo "$TB_NODE_IP:$HAPROXY_HTTP_PORT" ;;
        nghttpx:grpc) echo "$TB_NODE_IP:$NGHTTPX_GRPC_PORT" ;;
        nghttpx:http) echo "$TB_NODE_IP:$NGHTTPX_HTTP_PORT" ;;
    esac
}

# ------------------------------------------------------------- workloads

# record KIND WORKLOAD TARGET REP TITLE RESULT [CPU]: append to RECORDS;
# for h2lb, with what its kernel counters did during the run.
record() {
    local extra=()
    if [[ $3 == h2lb* && -s $WORK/h2lb.before ]]; then
        h2lb_snap "$WORK/h2lb.after"
        "$PY" "$LIB" h2lbdiff "$WORK/h2lb.before" "$WORK/h2lb.after" \
            >"$WORK/h2lb.delta" 2>/dev/null && extra=(--h2lb "$WORK/h2lb.delta")
    fi
    rm -f -- "$WORK/h2lb.before"
    "$PY" "$LIB" record "$1" "$2" "$3" "$4" "$5" "$6" "$RECORDS" "${7:-}" "${extra[@]}"
}

# before_run TARGET: note h2lb's counters before a run through it.
before_run() {
    rm -f -- "$WORK/h2lb.before"
    if [[ $1 == h2lb* ]]; then
        h2lb_snap "$WORK/h2lb.before"
    fi
    return 0
}

down_result() {   # down_result TARGET FILE
    printf '{"error": "%s"}\n' "${DOWN[$1]}" >"$2"
}

# run_grpc TARGET REP
run_grpc() {
    local target=$1 rep=$2 title="gRPC unary SayHello, sequential, 1 channel"
    local res=$WORK/grpc-$target-$rep.json pids rc=0
    if [[ $target == floor ]]; then
        return 0 # HTTP/2 seq only: no cell
    fi
    if [[ -n ${DOWN[$target]:-} ]]; then
        down_result "$target" "$res"
        record grpc grpc "$target" "$rep" "$title" "$res"
        return 0
    fi
    pids=$(pids_of "$target" grpc | paste -sd, -)
    log "[$rep/$BENCH_REPS] grpc via $target ($(addr_of "$target" grpc))"
    before_run "$target"
    client "$target" timeout -k 5 "$CLIENT_LIMIT" "$PY" "$HERE/grpc_bench.py" \
        --target "$(addr_of "$target" grpc)" --duration "$BENCH_TIME" \
        --warmup "$BENCH_WARMUP" --cpu-pids "$pids" \
        >"$res" 2>"$WORK/grpc-$target-$rep.err" || rc=$?
    if ((rc != 0)); then
        log "  grpc_bench exited with $rc: $(tail -n 3 "$WORK/grpc-$target-$rep.err" | tr '\n' ' ')"
    fi
    [[ -s $res ]] || printf '{"error": "grpc_bench failed (exit %d)"}\n' "$rc" >"$res"
    record grpc grpc "$target" "$rep" "$title" "$res"
}

# run_h2load WORKLOAD TARGET REP
run_h2load() {
    local w=$1 target=$2 rep=$3 c m path kind title pids rc=0
    case $w in
        seq) c=1 m=1 path=/index.txt kind=rate ;;
        tput) c=$BENCH_TPUT_C m=$BENCH_TPUT_M path=/index.txt kind=rate ;;
        big) c=$BENCH_BIG_C m=$BENCH_BIG_M path=/big.bin kind=bytes ;;
    esac
    title="h2load -c$c -m$m GET $path"
    [[ $w == big ]] && title+=" (1 MiB)"
    local base=$WORK/$w-$target-$rep url
    if [[ $target == floor && $w != seq ]]; then
        return 0 # one connection: seq only, no cell
    fi
    if [[ -n ${DOWN[$target]:-} ]]; then
        down_result "$target" "$base.json"
        record "$kind" "$w" "$target" "$rep" "$title" "$base.json"
        return 0
    fi
    if [[ $target == floor ]] && ! start_floor; then
        printf '{"error": "the floor relay did not start"}\n' >"$base.json"
        record "$kind" "$w" "$target" "$rep" "$title" "$base.json"
        return 0
    fi
    url="http://$(addr_of "$target" http)$path"
    mapfile -t pids < <(pids_of "$target" http)
    log "[$rep/$BENCH_REPS] $w via $target ($url)"
    before_run "$target"
    "$PY" "$LIB" snap "${pids[@]}" >"$base.snap0"
    client "$target" timeout -k 5 "$CLIENT_LIMIT" h2load -c "$c" -m "$m" \
        -t "$BENCH_H2LOAD_THREADS" -D "$BENCH_TIME" \
        --warm-up-time "$BENCH_WARMUP" --log-file "$base.tsv" "$url" \
        >"$base.out" 2>&1 || rc=$?
    "$PY" "$LIB" snap "${pids[@]}" >"$base.snap1"
    [[ $target != floor ]] || stop_floor
    ((rc == 0)) || log "  h2load exited with $rc: $(tail -n 2 "$base.out" | tr '\n' ' ')"
    "$PY" "$LIB" cpudiff "$base.snap0" "$base.snap1" >"$base.cpu"
    "$PY" "$LIB" h2load "$base.out" "$base.tsv" "$BENCH_TIME" >"$base.json"
    rm -f -- "$base.tsv"
    record "$kind" "$w" "$target" "$rep" "$title" "$base.json" "$base.cpu"
}

# idle_cpu NAME: what the box uses for 2 s with everything started and no
# traffic of ours (anything else running on the machine shows up here).
idle_cpu() {
    "$PY" "$LIB" snap >"$WORK/idle-$1.snap0"
    sleep 2
    "$PY" "$LIB" snap >"$WORK/idle-$1.snap1"
    IDLE[$1]=$("$PY" "$LIB" cpudiff "$WORK/idle-$1.snap0" "$WORK/idle-$1.snap1")
    local pct
    pct=$("$PY" -c 'import json,sys; print(int(json.loads(sys.argv[1])["box_busy_pct"]))' "${IDLE[$1]}")
    if ((pct > 15)); then
        log "WARNING: the box is busy without our traffic ($pct %cpu, $1):"
        log "         something else runs on this machine; numbers will be noisy"
    fi
}

# ------------------------------------------------------------- main

want_w() { [[ " $BENCH_WORKLOADS " == *" $1 "* ]]; }
http_phase=0
for w in seq tput big; do want_w "$w" && http_phase=1; done
declare -A IDLE=()

log "testbed $H2LB_TB: $BENCH_BACKENDS backends; $BENCH_REPS round(s) of ${BENCH_TIME}s (+${BENCH_WARMUP}s warm-up) per workload and target"
tb_up "$BENCH_BACKENDS" || die "tb_up failed"
if want floor; then
    tb_clients_cgroup # its client's socket joins its sockmap from there
fi
if want_w grpc; then
    tb_start_greeters || die "greeters did not start"
fi
if ((http_phase)); then
    tb_start_nghttpd || die "nghttpd did not start"
fi

if want haproxy; then
    start_haproxy || { DOWN[haproxy]="haproxy did not start"; log "WARNING: ${DOWN[haproxy]}"; }
fi
if want nghttpx; then
    if want_w grpc; then
        start_nghttpx nghttpx-grpc "$NGHTTPX_GRPC_PORT" "$TB_GREETER_PORT" ||
            { DOWN[nghttpx]="nghttpx did not start"; log "WARNING: ${DOWN[nghttpx]}"; }
    fi
    if ((http_phase)) && [[ -z ${DOWN[nghttpx]:-} ]]; then
        start_nghttpx nghttpx-http "$NGHTTPX_HTTP_PORT" "$TB_HTTP_PORT" ||
            { DOWN[nghttpx]="nghttpx did not start"; log "WARNING: ${DOWN[nghttpx]}"; }
    fi
fi

if want l4; then
    if { want_w grpc && ! tb_l4_on "$TB_GREETER_PORT"; } ||
        { ((http_phase)) && ! tb_l4_on "$TB_HTTP_PORT"; }; then
        DOWN[l4]="the DNAT rules could not be made"
        log "WARNING: ${DOWN[l4]}"
    fi
fi

idle_cpu before

if want_w grpc; then
    if want_h2lb; then
        start_h2lb "$TB_GREETER_PORT"
    fi
    for ((rep = 1; rep <= BENCH_REPS; rep++)); do
        for t in $BENCH_TARGETS; do
            run_grpc "$t" "$rep"
        done
    done
    if want_h2lb && [[ -z ${DOWN[h2lb]:-} ]]; then
        stop_h2lb grpc
    fi
    unset 'DOWN[h2lb]' 'DOWN[h2lb-vip]' 'DOWN[h2lb-fast]'
fi

if ((http_phase)); then
    if want_h2lb; then
        start_h2lb "$TB_HTTP_PORT"
    fi
    for w in seq tput big; do
        want_w "$w" || continue
        for ((rep = 1; rep <= BENCH_REPS; rep++)); do
            for t in $BENCH_TARGETS; do
                run_h2load "$w" "$t" "$rep"
            done
        done
    done
    if want_h2lb && [[ -z ${DOWN[h2lb]:-} ]]; then
        stop_h2lb http
    fi
fi

idle_cpu after

# Stop our balancers now (tb_down would too, but be explicit).
for name in haproxy nghttpx-grpc nghttpx-http; do
    if tb_pid "$name" >/dev/null 2>&1; then
        tb_kill "$name" TERM || log "WARNING: could not stop $name"
    fi
done

# ------------------------------------------------------------- report

elapsed=$(($(date +%s) - T_START))
for k in "${!PHASE_INFO[@]}"; do
    printf '%s\t%s\n' "$k" "${PHASE_INFO[$k]}"
done >"$WORK/phase-info.tsv"
dirty=
if [[ -n $(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
    dirty=-dirty
fi
"$PY" - "$WORK/meta.json" "$WORK/phase-info.tsv" <<EOF
import json, os, sys
info = {}
for line in open(sys.argv[2]):
    k, _, v = line.rstrip("\n").partition("\t")
    try:
        info[k] = json.loads(v)
    except ValueError:
        info[k] = v
meta = {
    "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
    "kernel": os.uname().release,
    "ncpu": os.cpu_count(),
    "h2lb_rev": "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$dirty",
    "haproxy": "$(haproxy -v 2>/dev/null | head -n1 | awk '{print $3}')",
    "nghttpx": "$(nghttpx --version 2>/dev/null | awk '{print $2}')",
    "h2load": "$(h2load --version 2>/dev/null | awk '{print $2}')",
    "backends": $BENCH_BACKENDS,
    "bench_time_s": $BENCH_TIME,
    "warmup_s": $BENCH_WARMUP,
    "reps": $BENCH_REPS,
    "tput": {"clients": $BENCH_TPUT_C, "streams": $BENCH_TPUT_M},
    "big": {"clients": $BENCH_BIG_C, "streams": $BENCH_BIG_M},
    "h2load_threads": $BENCH_H2LOAD_THREADS,
    "haproxy_threads": $HAPROXY_THREADS,
    "nghttpx_workers": $NGHTTPX_WORKERS,
    "h2lb_args": "$BENCH_H2LB_ARGS",
    "targets": "$BENCH_TARGETS".split(),
    "workloads": "$BENCH_WORKLOADS".split(),
    "idle_cpu_before": json.loads('${IDLE[before]}'),
    "idle_cpu_after": json.loads('${IDLE[after]}'),
    "h2lb_phases": info,
    "elapsed_s": $elapsed,
}
json.dump(meta, open(sys.argv[1], "w"))
EOF
echo
"$PY" "$LIB" report "$RECORDS" "$BENCH_RESULTS" "$WORK/meta.json"
echo "results: $BENCH_RESULTS   (the benchmark took ${elapsed}s)"
