#!/usr/bin/env bash
# shellcheck disable=SC2119 # the tb_* functions take optional arguments
# scripts/demo.sh - the README demo (run as root from anywhere).
#
# Builds the namespace testbed (client, node, 4 gRPC backends), then:
#   1. L4: kube-proxy-style iptables DNAT of the VIP; CALLS (20) gRPC calls on
#      ONE channel all land on the same backend.
#   2. h2lb intercepts the same VIP (tc ingress, DNAT rules still there): the
#      same client, dialling the same address, has its calls spread per
#      stream across all four.
# Everything is torn down on exit, also on ^C or failure.
#
#   CALLS=20 scripts/demo.sh        (H2LB_TB sets the namespace prefix,
#                                     default h2lb-demo)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export H2LB_TB=${H2LB_TB:-h2lb-demo}
export H2LB_TB_QUIET=${H2LB_TB_QUIET-1}   # keep the demo output clean
# shellcheck source=tests/lib/testbed.sh
source "$ROOT/tests/lib/testbed.sh"

CALLS=${CALLS:-20}
N=4
H2LB_BIN=$ROOT/build/h2lb

banner() {
    printf '\n=== %s\n' "$*"
}

# Per-backend SayHello counters, on one line: "backend-1=0 backend-2=20 ...".
show_counts() {
    local counts
    counts=$(tb_backend_counts SayHello) || return 1
    printf '    backends served: %s\n' "$(tr ' ' '=' <<<"$counts" | paste -sd ' ')"
}

demo_setup() {
    banner "Testbed: client ns -> node ns -> $N backend namespaces, each running a gRPC greeter"
    tb_up "$N"
    tb_start_greeters
    local i
    for ((i = 1; i <= N; i++)); do
        printf '    %s at %s:%s\n' "$(tb_backend_name "$i")" \
            "$(tb_backend_ip "$i")" "$TB_GREETER_PORT"
    done
    printf '    VIP %s:%s, client at %s\n' "$TB_VIP" "$TB_GREETER_PORT" "$TB_CLI_IP"
}

# Part 1: the problem.  L4 picks a backend per TCP connection; a gRPC channel
# is one long-lived HTTP/2 connection, so all its calls go to one backend.
demo_l4() {
    banner "1) L4 balancing (iptables DNAT, random backend per connection, like kube-proxy):"
    echo "    $CALLS gRPC calls on ONE channel to $TB_VIP:$TB_GREETER_PORT"
    tb_l4_on "$TB_GREETER_PORT"
    tb_reset_counts
    tb_client --target "$TB_VIP:$TB_GREETER_PORT" --calls "$CALLS" --print
    show_counts
    echo "    -> one connection, one backend: L4 never sees the individual calls."
}

# Part 2: the same through h2lb (per-stream balancing in the kernel).
demo_h2lb() {
    if [[ ! -x $H2LB_BIN ]]; then
        banner "2) through h2lb: skipped (${H2LB_BIN#"$ROOT"/} not built; run 'make')"
        return 0
    fi
    # shellcheck source=tests/lib/h2lb.sh
    source "$ROOT/tests/lib/h2lb.sh"
    banner "2) h2lb takes the VIP's connections (per-stream balancing with eBPF sockmap):"
    echo "    h2lb run --listen $H2LB_ADDR --backends $(h2lb_backends) \\"
    echo "        --intercept tc --intercept-dev vcli --vip $TB_VIP:$TB_GREETER_PORT"
    h2lb_start --backends "$(h2lb_backends)" --intercept tc \
        --intercept-dev vcli --vip "$TB_VIP:$TB_GREETER_PORT"
    tb_reset_counts
    echo "    the same $CALLS calls on ONE channel to $TB_VIP:$TB_GREETER_PORT"
    tb_client --target "$TB_VIP:$TB_GREETER_PORT" --calls "$CALLS" --print
    show_counts
    echo "    -> one connection, every call balanced on its own, in the kernel."
    h2lb_map backends | "$TB_PYTHON" -c '
import json, sys
rows = [e["value"] for e in json.load(sys.stdin) if e["value"]["state"]]
print("    kernel counters (bpftool map dump pinned .../backends): streams " +
      " ".join(str(v["streams"]) for v in rows))'
    h2lb_stop
}

main() {
    if [[ $(id -u) -ne 0 ]]; then
        echo "demo.sh: must run as root (network namespaces)" >&2
        exit 1
    fi
    tb_cleanup_on_exit
    demo_setup
    demo_l4
    demo_h2lb
    echo
}

main "$@"
