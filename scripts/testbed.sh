#!/usr/bin/env bash
# scripts/testbed.sh - drive the h2lb namespace testbed by hand (as root).
#
#   scripts/testbed.sh up [N]              create client, node, N backends (4)
#   scripts/testbed.sh greeters [ARGS...]  start a greeter in every backend
#   scripts/testbed.sh nghttpd [ARGS...]   start nghttpd --no-tls :8080 in each
#   scripts/testbed.sh l4-on [PORT [BPORT]] kube-proxy-like DNAT VIP:PORT (50051)
#   scripts/testbed.sh l4-off [PORT]       remove the DNAT (all ports by default)
#   scripts/testbed.sh exec ROLE CMD...    run CMD in ROLE = cli|node|b1..bN
#   scripts/testbed.sh client ARGS...      greeter_client.py in the client ns
#   scripts/testbed.sh counts [METHOD]     per-backend call counters
#   scripts/testbed.sh stats               per-backend Stats JSON
#   scripts/testbed.sh reset               zero the per-backend counters
#   scripts/testbed.sh status              what is up
#   scripts/testbed.sh down                tear everything down (idempotent)
#
# The namespace prefix is $H2LB_TB, by default "h2lb" here (namespaces
# h2lb-cli, h2lb-node, h2lb-b1...), so that separate invocations find the same
# testbed.  Example:
#   scripts/testbed.sh up 4 && scripts/testbed.sh greeters && scripts/testbed.sh l4-on
#   scripts/testbed.sh client --target 198.18.100.1:50051 --calls 20 --print
#   scripts/testbed.sh down
set -euo pipefail

export H2LB_TB=${H2LB_TB:-h2lb}
export H2LB_TB_GUARD=0   # the testbed outlives this command
# shellcheck source=tests/lib/testbed.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tests/lib/testbed.sh"

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
    exit "${1:-0}"
}

need_root() {
    if [[ $(id -u) -ne 0 ]]; then
        echo "testbed.sh: must run as root" >&2
        exit 1
    fi
}

cmd=${1:-}
[[ -n $cmd ]] || usage 2
shift

case $cmd in
    -h | --help | help) usage 0 ;;
esac
need_root

case $cmd in
    up)
        # A failure half-way is cleaned by tb_up itself.
        tb_up "${1:-4}"
        echo "testbed $TB_PREFIX is up; 'scripts/testbed.sh down' removes it"
        ;;
    down) tb_down ;;
    greeters) tb_start_greeters "$@" ;;
    nghttpd) tb_start_nghttpd "$@" ;;
    l4-on) tb_l4_on "${1:-$TB_GREETER_PORT}" "${2:-${1:-$TB_GREETER_PORT}}" ;;
    l4-off) tb_l4_off "${1:-}" ;;
    exec)
        [[ $# -ge 2 ]] || usage 2
        tb_exec "$@"
        ;;
    client) tb_exec cli "$TB_PYTHON" "$TB_PEERS/greeter_client.py" "$@" ;;
    counts) tb_backend_counts "${1:-}" ;;
    stats) tb_backend_stats ;;
    reset) tb_reset_counts ;;
    status) tb_status ;;
    *)
        echo "testbed.sh: unknown command '$cmd'" >&2
        usage 2
        ;;
esac
