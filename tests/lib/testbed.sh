# shellcheck shell=bash
# tests/lib/testbed.sh - network-namespace testbed for h2lb (sourced library).
#
#   client ns                node ns (balancer runs here)              backend ns
#   ${P}-cli                 ${P}-node                                 ${P}-b1..bN
#   eth0 198.18.1.2/24 ---- vcli 198.18.1.1/24
#   default via .1.1         br0  198.18.2.1/24 --+-- vb1 ---- eth0 198.18.2.11/24
#                            ip_forward=1         +-- vb2 ---- eth0 198.18.2.12/24
#                                                 ...           (default via .2.1)
#
#   VIP 198.18.100.1 is owned by no interface: the client reaches it through
#   its default route to the node, where L4 DNAT (tb_l4_on) or h2lb takes it.
#
# Interface names live inside the namespaces, so they never collide between
# testbeds; only namespace names carry the prefix P.  Nothing here touches
# the root namespace's interfaces, routes or iptables.
#
# Environment:
#   H2LB_TB        name prefix P (default "h2lb-<pid of the sourcing shell>")
#   H2LB_TB_STATE  base of the state dirs (default /tmp/h2lb-tb); the state of
#                  a testbed (N, logs, PIDs, docroots) is in $base/$P
#   H2LB_PYTHON    python with grpcio (default /usr/bin/python3)
#   H2LB_TB_QUIET  if non-empty, tb_log is silent (errors are still shown)
#   H2LB_TB_GUARD  0 = no guard.  Otherwise tb_up starts a guard process that
#                  tears the testbed down if the shell that built it dies
#                  without doing so (e.g. SIGKILL); tb_down stops it.
#   H2LB_TB_GUARD_MAX  the guard's lifetime in seconds (default 21600)
#
# API (all return non-zero on failure; none calls exit, except the traps):
#   tb_up [N]                 create the topology with N (default 4) backends
#   tb_down                   kill everything in our namespaces, delete them,
#                             remove the state dir; idempotent, also cleans
#                             leftovers of a crashed run with the same prefix
#   tb_cleanup_on_exit        trap EXIT/INT/TERM/HUP -> hooks + tb_down
#                             (dumps the logs' tails first if the exit status
#                             is neither 0 nor 77)
#   tb_on_cleanup CMD...      register a cleanup hook (run LIFO before tb_down)
#   tb_exec ROLE CMD...       run CMD in ROLE's netns (foreground, keeps stdin)
#   tb_run ROLE CMD...        same, but as background+wait so that signals
#                             (runner timeout, ^C) interrupt it; stdin /dev/null.
#                             NB: bash runs traps only after a command
#                             substitution ends, so run long commands as
#                             `tb_run ... >"$TB_STATE/out"`, not `x=$(tb_run ...)`
#   tb_spawn ROLE NAME CMD... start a tracked background process (log in
#                             $TB_STATE/logs/NAME.log); PID in TB_LAST_PID
#   tb_kill NAME [SIGNAL]     stop a tb_spawn'ed process (bounded wait)
#   tb_pid NAME               print the PID of a tb_spawn'ed process
#   tb_wait_port ROLE PORT [TIMEOUT_S] [PID]
#                             wait until a TCP port listens in ROLE's netns
#   tb_ns ROLE / tb_netns_path ROLE   namespace name / /run/netns path
#   tb_backend_ip I           198.18.2.(10+I)
#   tb_backend_name I         backend-I
#   tb_start_servers NAME PORT SCRIPT [ARGS...]
#                             one python server per backend (log NAME-bI)
#   tb_start_greeters [SERVER ARGS...]
#                             greeter_server "backend-I" on :50051 in every bI
#   tb_start_nghttpd [NGHTTPD ARGS...]
#                             nghttpd --no-tls on :8080 in every bI; docroot
#                             has /index.txt = "backend-I\n", /big.bin (1 MiB)
#   tb_l4_on PORT [BACKEND_PORT]   kube-proxy-like random DNAT of VIP:PORT
#                             (VIP: $TB_L4_VIP, by default $TB_VIP)
#   tb_l4_off [PORT]          remove it (all ports if none given)
#   tb_cgroups DIR...         make cgroups, removed (processes killed) on exit
#   tb_clients_cgroup         CG: a cgroup for the test's clients
#   tb_client ARGS...         greeter_client.py in the client ns (tb_run)
#   tb_backend_stats [--reset]  one Stats JSON line per backend, b1..bN
#   tb_peer_addrs             stats lines in, the callers' addresses out
#   tb_backend_counts [METHOD]  "backend-I COUNT" lines (COUNT = calls of
#                             METHOD, or all calls but Stats if none given;
#                             -1 and status 1 if a backend does not answer)
#   tb_reset_counts           zero every greeter's counters
#   tb_status                 human-readable summary
#   tb_dump_logs [LINES]      tails of all process logs, to stderr
#   tb_require_root, tb_require_cmd CMD..., tb_skip MSG (exit 77)
#   tb_log MSG, tb_err MSG
#
# Variables: TB_ROOT TB_PREFIX TB_STATE TB_N TB_PYTHON TB_VIP TB_CLI_IP
#   TB_NODE_IP (198.18.1.1) TB_BR_IP (198.18.2.1) TB_GREETER_PORT (50051)
#   TB_HTTP_PORT (8080) TB_LAST_PID
#
# All loops are bounded in count and time.

if [[ -n ${_TB_LIB_LOADED:-} ]]; then
    return 0
fi
_TB_LIB_LOADED=1

TB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TB_PYTHON=${H2LB_PYTHON:-/usr/bin/python3}
TB_PREFIX=${H2LB_TB:-h2lb-$$}
TB_STATE_BASE=${H2LB_TB_STATE:-/tmp/h2lb-tb}
TB_STATE=$TB_STATE_BASE/$TB_PREFIX
TB_PEERS=$TB_ROOT/tests/peers

TB_VIP=198.18.100.1
TB_L4_VIP=${TB_L4_VIP:-$TB_VIP} # where tb_l4_on's DNAT listens
TB_CLI_IP=198.18.1.2
TB_NODE_IP=198.18.1.1
TB_BR_IP=198.18.2.1
TB_GREETER_PORT=50051
TB_HTTP_PORT=8080
TB_MAX_N=64
TB_LAST_PID=
TB_N=0
if [[ -r $TB_STATE/n ]]; then
    TB_N=$(<"$TB_STATE/n")
fi
_TB_HOOKS=()
_TB_EXITING=
_TB_IN_GUARD=

# ---------------------------------------------------------------- helpers

tb_log() {
    [[ -n ${H2LB_TB_QUIET:-} ]] || printf '[testbed %s] %s\n' "$TB_PREFIX" "$*" >&2
}
tb_err() { printf '[testbed %s] ERROR: %s\n' "$TB_PREFIX" "$*" >&2; }

# tb_skip MSG: end the calling test as skipped (exit status 77).
tb_skip() {
    printf 'SKIP: %s\n' "$*" >&2
    exit 77
}

tb_require_root() {
    if [[ $(id -u) -ne 0 ]]; then
        tb_skip "needs root (network namespaces)"
    fi
}

# tb_require_cmd CMD...: skip the test if a command is missing.
tb_require_cmd() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || tb_skip "missing command: $c"
    done
}

_tb_check_prefix() {
    if [[ ! $TB_PREFIX =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$ ]]; then
        tb_err "bad prefix '$TB_PREFIX' (H2LB_TB: [A-Za-z0-9_.-], <= 40 chars)"
        return 1
    fi
}

# Names of the namespaces that belong to prefix P (existing ones only).
_tb_list_ns() {
    local ns rest
    [[ -d /run/netns ]] || return 0
    for ns in /run/netns/"$TB_PREFIX"-*; do
        [[ -e $ns ]] || continue
        ns=${ns##*/}
        rest=${ns#"$TB_PREFIX"-}
        case $rest in
            cli | node) printf '%s\n' "$ns" ;;
            b*) [[ ${rest#b} =~ ^[0-9]+$ ]] && printf '%s\n' "$ns" ;;
        esac
    done
    return 0
}

# _tb_role ROLE: normalise (cli, node, bI, or a bare I) or fail.
_tb_role() {
    case ${1:-} in
        cli | node) printf '%s\n' "$1" ;;
        b[0-9]* | [0-9]*)
            local i=${1#b}
            if [[ $i =~ ^[0-9]+$ ]] && ((10#$i >= 1 && 10#$i <= TB_MAX_N)); then
                printf 'b%d\n' "$((10#$i))"
            else
                tb_err "bad role '$1' (cli|node|b1..bN)"
                return 2
            fi
            ;;
        *)
            tb_err "bad role '${1:-}' (cli|node|b1..bN)"
            return 2
            ;;
    esac
}

tb_ns() {
    local role
    role=$(_tb_role "${1:-}") || return 2
    printf '%s-%s\n' "$TB_PREFIX" "$role"
}

tb_netns_path() {
    local ns
    ns=$(tb_ns "${1:-}") || return 2
    if [[ ! -e /run/netns/$ns ]]; then
        tb_err "namespace $ns does not exist (tb_up first?)"
        return 1
    fi
    printf '/run/netns/%s\n' "$ns"
}

tb_backend_ip() { printf '198.18.2.%d\n' "$((10 + $1))"; }
tb_backend_name() { printf 'backend-%d\n' "$1"; }

# Feed an "ip -batch" script (stdin) to ip inside ROLE's namespace.
_tb_ip_batch() {
    local path
    path=$(tb_netns_path "$1") || return 1
    nsenter --net="$path" -- ip -batch -
}

# ---------------------------------------------------------------- up/down

# tb_up [N]: build the topology with N backends (default 4).
tb_up() {
    local n=${1:-4}
    if [[ ! $n =~ ^[0-9]+$ ]] || ((n < 1 || n > TB_MAX_N)); then
        tb_err "tb_up: N must be 1..$TB_MAX_N (got '$n')"
        return 2
    fi
    _tb_check_prefix || return 2
    if [[ -n $(_tb_list_ns) || -e $TB_STATE ]]; then
        tb_log "removing leftovers of an earlier run with prefix $TB_PREFIX"
        _TB_NO_HOOKS=1 tb_down    # the hooks are for the testbed to come
    fi
    TB_N=$n
    mkdir -p "$TB_STATE/logs" || return 1
    printf '%s\n' "$n" >"$TB_STATE/n"
    : >"$TB_STATE/procs"
    if ! _tb_up_topology "$n"; then
        tb_err "tb_up failed; tearing down"
        tb_down
        return 1
    fi
    if [[ ${H2LB_TB_GUARD:-1} != 0 ]]; then
        _tb_start_guard
    fi
    tb_log "up: $n backends (namespaces $TB_PREFIX-{cli,node,b1..b$n})"
}

_tb_up_topology() {
    local n=$1 i P=$TB_PREFIX role
    for role in node cli $(seq -f 'b%g' 1 "$n"); do
        ip netns add "$P-$role" || return 1
    done

    # The node: client-side veth, backend bridge, forwarding on.
    {
        echo "link set lo up"
        echo "link add br0 type bridge stp_state 0 forward_delay 0"
        echo "addr add $TB_BR_IP/24 dev br0"
        echo "link set br0 up"
        echo "link add vcli type veth peer name eth0 netns $P-cli"
        echo "addr add $TB_NODE_IP/24 dev vcli"
        echo "link set vcli up"
        for ((i = 1; i <= n; i++)); do
            echo "link add vb$i type veth peer name eth0 netns $P-b$i"
            echo "link set vb$i master br0"
            echo "link set vb$i up"
        done
    } | _tb_ip_batch node || return 1
    tb_exec node sysctl -qw net.ipv4.ip_forward=1 || return 1

    # The client.
    _tb_ip_batch cli <<EOF || return 1
link set lo up
addr add $TB_CLI_IP/24 dev eth0
link set eth0 up
route add default via $TB_NODE_IP
EOF

    # The backends.
    for ((i = 1; i <= n; i++)); do
        _tb_ip_batch "b$i" <<EOF || return 1
link set lo up
addr add $(tb_backend_ip "$i")/24 dev eth0
link set eth0 up
route add default via $TB_BR_IP
EOF
    done
}

# The guard: a background subshell that tears the testbed down if the shell
# that built it dies without doing so (SIGKILL, or any exit that skipped the
# traps).  It only acts on the very testbed it was started for (same node
# netns inode), gives up after H2LB_TB_GUARD_MAX seconds (default 6 h), and
# is stopped by tb_down.  H2LB_TB_GUARD=0 disables it (the CLI does).
_tb_start_guard() {
    local owner=$$ max=${H2LB_TB_GUARD_MAX:-21600} ino
    ino=$(stat -L -c %i "/run/netns/$TB_PREFIX-node" 2>/dev/null) || return 0
    # shellcheck disable=SC2030,SC2031  # the subshell's own copies, on purpose
    (
        set +e
        _TB_IN_GUARD=1
        _TB_HOOKS=()
        trap - EXIT
        trap '' INT HUP
        exec </dev/null >/dev/null 2>&1
        for ((t = 0; t < max; t++)); do
            kill -0 "$owner" 2>/dev/null || break
            sleep 1
        done
        kill -0 "$owner" 2>/dev/null && exit 0          # lifetime is over
        [[ $(stat -L -c %i "/run/netns/$TB_PREFIX-node" 2>/dev/null) == "$ino" ]] ||
            exit 0                                      # not our testbed
        tb_down
    ) &
    printf '%s %s\n' "$!" "$(_tb_starttime "$!")" >"$TB_STATE/guard"
}

# _tb_starttime PID: the process's start time (field 22 of /proc/PID/stat),
# which tells a PID from a later process that reuses it.
_tb_starttime() {
    local stat
    stat=$(<"/proc/$1/stat") 2>/dev/null || return 1
    stat=${stat##*) }                   # drop "pid (comm) "
    read -r -a stat <<<"$stat"
    printf '%s\n' "${stat[19]}"
}

_tb_stop_guard() {
    local pid start
    # shellcheck disable=SC2031
    [[ -z $_TB_IN_GUARD && -r $TB_STATE/guard ]] || return 0
    read -r pid start <"$TB_STATE/guard" || true
    if [[ ${pid:-} =~ ^[0-9]+$ && -n ${start:-} &&
        $(_tb_starttime "$pid" 2>/dev/null) == "$start" ]]; then
        kill -TERM "$pid" 2>/dev/null || true
    fi
    rm -f -- "$TB_STATE/guard"
}

# _tb_ns_pids: PIDs of all processes inside our namespaces.
_tb_ns_pids() {
    local ns
    while read -r ns; do
        [[ -n $ns ]] && ip netns pids "$ns" 2>/dev/null
    done < <(_tb_list_ns)
    return 0
}

# tb_down: idempotent teardown (processes, namespaces, state dir).
tb_down() {
    local pids i ns
    _tb_check_prefix || return 2
    [[ -n ${_TB_NO_HOOKS:-} ]] || _tb_run_hooks
    _tb_stop_guard

    # 1. Every process inside one of our namespaces is ours (we created the
    #    namespaces): TERM, bounded wait, then KILL.
    pids=$(_tb_ns_pids | sort -un)
    if [[ -n $pids ]]; then
        # shellcheck disable=SC2086
        kill -TERM $pids 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do       # <= 5 s
            pids=$(_tb_ns_pids | sort -un)
            [[ -z $pids ]] && break
            sleep 0.1
        done
        if [[ -n $pids ]]; then
            tb_log "killing stubborn processes: ${pids//$'\n'/ }"
            # shellcheck disable=SC2086
            kill -KILL $pids 2>/dev/null || true
            for ((i = 0; i < 30; i++)); do   # <= 3 s
                [[ -z $(_tb_ns_pids) ]] && break
                sleep 0.1
            done
        fi
    fi

    # 2. Namespaces (this also drops their interfaces and iptables rules).
    while read -r ns; do
        [[ -n $ns ]] || continue
        ip netns del "$ns" 2>/dev/null || tb_err "cannot delete netns $ns"
    done < <(_tb_list_ns)

    # 3. State dir (logs, PID list, docroots).
    if [[ -n $TB_PREFIX && -d $TB_STATE && $TB_STATE == "$TB_STATE_BASE"/* ]]; then
        rm -rf -- "$TB_STATE"
    fi
    rmdir -- "$TB_STATE_BASE" 2>/dev/null || true
    TB_N=0
    [[ -z $(_tb_list_ns) ]]
}

# tb_on_cleanup CMD...: run CMD (as one eval'd string) on cleanup, LIFO.
tb_on_cleanup() {
    # shellcheck disable=SC2031
    _TB_HOOKS+=("$*")
}

# tb_cgroups DIR...: make the cgroup directories DIR (parents first); on
# cleanup, every cgroup in them is removed, deepest first, a process still
# in one (only the test's go there) killed first.
tb_cgroups() {
    local d
    for d in "$@"; do
        mkdir "$d" || { tb_err "mkdir $d"; return 1; }
        tb_on_cleanup "_tb_cgroup_rm $(printf '%q' "$d")"
    done
}

_tb_cgroup_rm() {
    local c p i
    [[ -d $1 ]] || return 0
    while read -r c; do
        while read -r p; do
            [[ -n $p ]] && { kill -KILL "$p" 2>/dev/null || true; }
        done <"$c/cgroup.procs"
        for ((i = 0; i < 50; i++)); do
            rmdir "$c" 2>/dev/null && break
            sleep 0.1 # its last process is still exiting
        done
        [[ ! -d $c ]] || tb_err "could not remove cgroup $c"
    done < <(find "$1" -depth -type d)
    return 0
}

# tb_clients_cgroup: CG, a cgroup of the test's own for its clients, made
# at the top of the cgroup v2 hierarchy (skips without one).
tb_clients_cgroup() {
    local root
    [[ -n ${CG:-} && -d $CG ]] && return 0 # made already
    root=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
    [[ -n $root ]] || tb_skip "no cgroup v2 hierarchy mounted"
    CG=$root/h2lb-test-$TB_PREFIX-clients
    tb_cgroups "$CG"
}

_tb_run_hooks() {
    local i
    for ((i = ${#_TB_HOOKS[@]} - 1; i >= 0; i--)); do
        eval "${_TB_HOOKS[i]}" || tb_err "cleanup hook failed: ${_TB_HOOKS[i]}"
    done
    _TB_HOOKS=()
}

# tb_cleanup_on_exit: tear the testbed down however the script ends.
tb_cleanup_on_exit() {
    trap '_tb_exit_trap' EXIT
    trap '_tb_signal_trap INT 130' INT
    trap '_tb_signal_trap TERM 143' TERM
    trap '_tb_signal_trap HUP 129' HUP
}

_tb_exit_trap() {
    local rc=$?
    set +e
    trap - EXIT
    [[ -n $_TB_EXITING ]] && exit "$rc"
    _TB_EXITING=1
    if ((rc != 0 && rc != 77)); then
        tb_log "exit status $rc: logs of the testbed processes follow"
        tb_dump_logs 30
    fi
    tb_down
    exit "$rc"
}

_tb_signal_trap() {
    trap - INT TERM HUP
    tb_log "caught SIG$1, tearing down"
    exit "$2"    # runs _tb_exit_trap
}

# ---------------------------------------------------------------- processes

tb_exec() {
    local path
    path=$(tb_netns_path "${1:-}") || return 2
    shift
    nsenter --net="$path" -- "$@"
}

# tb_run ROLE CMD...: like tb_exec, but interruptible by trapped signals.
tb_run() {
    local path pid
    path=$(tb_netns_path "${1:-}") || return 2
    _TB_CG_WRAP=()
    if [[ ${1:-} == cli ]]; then _tb_in_clients_cgroup; fi
    shift
    nsenter --net="$path" -- ${_TB_CG_WRAP[@]+"${_TB_CG_WRAP[@]}"} "$@" </dev/null &
    pid=$!
    wait "$pid"
}

# With H2LB_TEST_FAST_PATH=1 and the clients' cgroup made (h2lb_start),
# commands in the client namespace run in it: _TB_CG_WRAP is the prefix.
_TB_CG_WRAP=()
_tb_in_clients_cgroup() {
    _TB_CG_WRAP=()
    [[ ${H2LB_TEST_FAST_PATH:-} == 1 && -n ${CG:-} && -d $CG ]] || return 0
    _TB_CG_WRAP=(sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG")
}

# tb_spawn ROLE NAME CMD...: tracked background process.
tb_spawn() {
    local role=${1:-} name=${2:-} path
    shift 2 || return 2
    if [[ ! $name =~ ^[A-Za-z0-9_.-]+$ ]]; then
        tb_err "tb_spawn: bad name '$name'"
        return 2
    fi
    path=$(tb_netns_path "$role") || return 2
    mkdir -p "$TB_STATE/logs" || return 1
    _TB_CG_WRAP=()
    if [[ $role == cli ]]; then _tb_in_clients_cgroup; fi
    nsenter --net="$path" -- ${_TB_CG_WRAP[@]+"${_TB_CG_WRAP[@]}"} "$@" </dev/null >>"$TB_STATE/logs/$name.log" 2>&1 &
    TB_LAST_PID=$!
    printf '%s %s %s\n' "$name" "$TB_LAST_PID" "$(_tb_role "$role")" >>"$TB_STATE/procs"
}

tb_pid() {
    [[ -r $TB_STATE/procs ]] || return 1
    awk -v n="$1" '$1 == n { p = $2 } END { if (p == "") exit 1; print p }' \
        "$TB_STATE/procs"
}

# _tb_ours PID: is PID alive and inside one of our namespaces?
_tb_ours() {
    local pid=$1 ns link
    link=$(readlink "/proc/$pid/ns/net" 2>/dev/null) || return 1
    while read -r ns; do
        [[ -n $ns ]] || continue
        [[ $link == "net:[$(stat -L -c %i "/run/netns/$ns" 2>/dev/null)]" ]] && return 0
    done < <(_tb_list_ns)
    return 1
}

# tb_kill NAME [SIGNAL]: signal a spawned process, wait <= 5 s, then KILL.
tb_kill() {
    local name=$1 sig=${2:-TERM} pid i
    pid=$(tb_pid "$name") || { tb_err "tb_kill: unknown process $name"; return 1; }
    _tb_ours "$pid" || return 0         # already gone
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        _tb_ours "$pid" || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 20; i++)); do
        _tb_ours "$pid" || return 0
        sleep 0.1
    done
    tb_err "tb_kill: $name ($pid) does not die"
    return 1
}

# tb_wait_port ROLE PORT [TIMEOUT_S] [PID]: wait for a TCP listener.
# Gives up early if PID (the server expected to listen) exits.
tb_wait_port() {
    local role=$1 port=$2 timeout=${3:-20} pid=${4:-} i
    for ((i = 0; i < timeout * 10; i++)); do
        if [[ -n $(tb_exec "$role" ss -Hltn "sport = :$port" 2>/dev/null) ]]; then
            return 0
        fi
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            tb_err "process $pid exited before listening on $role:$port"
            return 1
        fi
        sleep 0.1
    done
    tb_err "nothing listens on $role:$port after ${timeout}s"
    return 1
}

# ---------------------------------------------------------------- servers

# tb_start_servers NAME PORT SCRIPT [ARGS...]: one python server per backend,
# "NAME-bI" in bI, started as SCRIPT --name backend-I --port PORT ARGS...;
# waits (bounded) until each listens.
tb_start_servers() {
    local name=$1 port=$2 script=$3 i pids=()
    shift 3
    ((TB_N > 0)) || { tb_err "tb_start_servers: testbed is not up"; return 1; }
    for ((i = 1; i <= TB_N; i++)); do
        tb_spawn "b$i" "$name-b$i" "$TB_PYTHON" "$script" \
            --name "$(tb_backend_name "$i")" --port "$port" "$@" || return 1
        pids+=("$TB_LAST_PID")
    done
    for ((i = 1; i <= TB_N; i++)); do
        if ! tb_wait_port "b$i" "$port" 30 "${pids[i - 1]}"; then
            tail -n 20 "$TB_STATE/logs/$name-b$i.log" >&2
            return 1
        fi
    done
    tb_log "$name servers listening on :$port in b1..b$TB_N"
}

# tb_start_greeters [SERVER ARGS...]: one greeter per backend on :50051.
tb_start_greeters() {
    tb_start_servers greeter "$TB_GREETER_PORT" "$TB_PEERS/greeter_server.py" "$@"
}

# tb_start_nghttpd [NGHTTPD ARGS...]: h2c server on :8080 in every backend.
tb_start_nghttpd() {
    local i dir pids=()
    ((TB_N > 0)) || { tb_err "tb_start_nghttpd: testbed is not up"; return 1; }
    for ((i = 1; i <= TB_N; i++)); do
        dir=$TB_STATE/www/b$i
        mkdir -p "$dir" || return 1
        tb_backend_name "$i" >"$dir/index.txt"
        head -c 1048576 /dev/zero >"$dir/big.bin"
        tb_spawn "b$i" "nghttpd-b$i" nghttpd --no-tls -d "$dir" "$@" "$TB_HTTP_PORT" || return 1
        pids+=("$TB_LAST_PID")
    done
    for ((i = 1; i <= TB_N; i++)); do
        if ! tb_wait_port "b$i" "$TB_HTTP_PORT" 20 "${pids[i - 1]}"; then
            tail -n 20 "$TB_STATE/logs/nghttpd-b$i.log" >&2
            return 1
        fi
    done
    tb_log "nghttpd listening on :$TB_HTTP_PORT in b1..b$TB_N"
}

# ---------------------------------------------------------------- L4 DNAT

# tb_l4_on PORT [BACKEND_PORT]: in the node, DNAT VIP:PORT to one of the N
# backends at random per connection, as kube-proxy (iptables mode) does:
# rule i (0-based) matches with probability 1/(N-i), the last always.
tb_l4_on() {
    local port=${1:-} bport=${2:-${1:-}} chain i prob
    if [[ ! $port =~ ^[0-9]+$ || ! $bport =~ ^[0-9]+$ ]]; then
        tb_err "usage: tb_l4_on PORT [BACKEND_PORT]"
        return 2
    fi
    ((TB_N > 0)) || { tb_err "tb_l4_on: testbed is not up"; return 1; }
    tb_l4_off "$port" || return 1
    chain=H2LB-L4-$port
    tb_exec node iptables -w -t nat -N "$chain" || return 1
    for ((i = 0; i < TB_N; i++)); do
        local dst
        dst="$(tb_backend_ip $((i + 1))):$bport"
        if ((i < TB_N - 1)); then
            prob=$(awk -v d=$((TB_N - i)) 'BEGIN { printf "%.11f", 1 / d }')
            tb_exec node iptables -w -t nat -A "$chain" -p tcp \
                -m statistic --mode random --probability "$prob" \
                -j DNAT --to-destination "$dst" || return 1
        else
            tb_exec node iptables -w -t nat -A "$chain" -p tcp \
                -j DNAT --to-destination "$dst" || return 1
        fi
    done
    tb_exec node iptables -w -t nat -A PREROUTING -d "$TB_L4_VIP/32" -p tcp \
        --dport "$port" -j "$chain" || return 1
    tb_log "L4 DNAT $TB_L4_VIP:$port -> $TB_N backends :$bport (random per connection)"
}

# tb_l4_off [PORT]: remove the DNAT of PORT, or of every port.
tb_l4_off() {
    local port=${1:-} chain chains i
    if [[ -n $port ]]; then
        chains=H2LB-L4-$port
    else
        chains=$(tb_exec node iptables -w -t nat -S 2>/dev/null |
            awk '$1 == "-N" && $2 ~ /^H2LB-L4-/ { print $2 }')
    fi
    for chain in $chains; do
        tb_exec node iptables -w -t nat -n -L "$chain" >/dev/null 2>&1 || continue
        for ((i = 0; i < 100; i++)); do     # drop every jump to the chain
            tb_exec node iptables -w -t nat -S PREROUTING 2>/dev/null |
                grep -q -- "-j $chain\$" || break
            tb_exec node iptables -w -t nat -D PREROUTING -d "$TB_L4_VIP/32" -p tcp \
                --dport "${chain#H2LB-L4-}" -j "$chain" 2>/dev/null || break
        done
        tb_exec node iptables -w -t nat -F "$chain" || return 1
        tb_exec node iptables -w -t nat -X "$chain" || return 1
    done
}

# ---------------------------------------------------------------- clients

# tb_client ARGS...: greeter_client.py in the client namespace.
tb_client() {
    tb_run cli "$TB_PYTHON" "$TB_PEERS/greeter_client.py" "$@"
}

# tb_backend_stats [--reset]: ask each backend's greeter (from inside its own
# namespace, on 127.0.0.1, so nothing on the node is involved) for its
# counters; prints one JSON line per backend, in order b1..bN.  A backend
# that does not answer gets {"name":"backend-I","error":"unreachable",
# "calls":{},"total":-1} and makes the status 1.
tb_backend_stats() {
    local i rc=0 tmp pids=()
    ((TB_N > 0)) || { tb_err "tb_backend_stats: testbed is not up"; return 1; }
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/h2lb-tb-stats.XXXXXX") || return 1
    for ((i = 1; i <= TB_N; i++)); do
        tb_exec "b$i" "$TB_PYTHON" "$TB_PEERS/greeter_client.py" \
            --target "127.0.0.1:$TB_GREETER_PORT" --mode stats --timeout 20 \
            "$@" </dev/null >"$tmp/$i" &
        pids+=("$!")
    done
    for ((i = 1; i <= TB_N; i++)); do
        if ! wait "${pids[i - 1]}"; then
            tb_err "Stats of backend $i failed"
            printf '{"name":"%s","error":"unreachable","calls":{},"total":-1}\n' \
                "$(tb_backend_name "$i")" >"$tmp/$i"
            rc=1
        fi
    done
    for ((i = 1; i <= TB_N; i++)); do cat "$tmp/$i"; done
    rm -rf -- "$tmp"
    return "$rc"
}

# tb_backend_counts [METHOD]: "backend-I COUNT" per backend; COUNT is -1 for
# a backend that does not answer (and the status is then 1).
tb_backend_counts() {
    local stats rc=0
    stats=$(tb_backend_stats) || rc=1
    [[ -n $stats ]] || return 1
    "$TB_PYTHON" -c '
import json, sys
method = sys.argv[1]
for line in sys.stdin:
    s = json.loads(line)
    if "error" in s:
        n = -1
    else:
        n = s["calls"].get(method, 0) if method else s["total"]
    print(s["name"], n)
' "${1:-}" <<<"$stats" || return 1
    return "$rc"
}

# tb_peer_addrs: from greeter Stats JSON lines on stdin (tb_backend_stats),
# the distinct addresses the greeters saw calls from, sorted, on one line.
tb_peer_addrs() {
    "$TB_PYTHON" -c '
import json, sys
print(" ".join(sorted({p.removeprefix("ipv4:").rsplit(":", 1)[0]
                       for l in sys.stdin for p in json.loads(l)["peer_calls"]})))'
}

tb_reset_counts() {
    tb_backend_stats --reset >/dev/null
}

# ---------------------------------------------------------------- info

tb_dump_logs() {
    local lines=${1:-30} f
    [[ -d $TB_STATE/logs ]] || return 0
    for f in "$TB_STATE"/logs/*.log; do
        [[ -s $f ]] || continue
        printf -- '---- %s (last %d lines) ----\n' "${f##*/}" "$lines" >&2
        tail -n "$lines" "$f" >&2
    done
    return 0
}

tb_status() {
    local ns name pid role state
    echo "prefix:  $TB_PREFIX"
    echo "state:   $TB_STATE"
    echo "backends: $TB_N   VIP: $TB_VIP   client: $TB_CLI_IP"
    echo "namespaces:"
    while read -r ns; do
        [[ -n $ns ]] && printf '  %-24s %s\n' "$ns" \
            "$(nsenter --net="/run/netns/$ns" -- ip -4 -br addr show 2>/dev/null |
                awk '$1 != "lo" { printf "%s=%s ", $1, $3 }')"
    done < <(_tb_list_ns)
    if [[ -s $TB_STATE/procs ]]; then
        echo "processes:"
        while read -r name pid role; do
            if _tb_ours "$pid"; then state=running; else state=exited; fi
            printf '  %-16s pid %-8s %-5s %s\n' "$name" "$pid" "$role" "$state"
        done <"$TB_STATE/procs"
    fi
    if [[ -e /run/netns/$TB_PREFIX-node ]]; then
        echo "L4 DNAT rules (node, nat table):"
        tb_exec node iptables -w -t nat -S 2>/dev/null | sed -n 's/^\(.*H2LB-L4.*\)$/  \1/p' || true
    fi
    return 0
}
