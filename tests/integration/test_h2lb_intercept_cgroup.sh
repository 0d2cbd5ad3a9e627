#!/usr/bin/env bash
# timeout: 240
#
# test_h2lb_intercept_cgroup - `h2lb run --kubernetes --intercept cgroup`: unmodified
# python and node gRPC clients dialling a Service VIP get per-stream
# balancing; a Service h2lb does not balance keeps kube-proxy's path; the
# daemon's hooks go when it stops or is killed. See tests/lib/intercept_test.sh.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../lib/testbed.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/h2lb.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/intercept_test.sh"
tb_require_root
tb_require_cmd openssl bpftool nft iptables node
tb_cleanup_on_exit

intercept_test cgroup
