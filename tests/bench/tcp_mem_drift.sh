#!/usr/bin/env bash
# tests/bench/tcp_mem_drift.sh - how much of TCP's node-wide memory count
# a GB of downloads through h2lb leaves behind (docs/kernel-facts.md K23).
#
# On one testbed (tests/lib/testbed.sh, 2 backends), for each path (today's,
# and the fast path from the clients' cgroup): DRIFT_ROUNDS rounds of
# DRIFT_TIME seconds of 1 MiB downloads, 4 at a time, on one h2load
# connection through h2lb. Reads the "mem" of /proc/net/sockstat (TCP's
# memory_allocated, in pages, for the whole machine) once the testbed is
# up and after every round (each round's connection closed, one second
# later), and prints the pages gained per GB downloaded for each path.
#
# A measurement, not a test: the count moves by up to 256 pages per CPU
# either way with no leak (each CPU keeps up to 1 MiB of it aside), and
# anything else on the machine that uses TCP moves it too. Run it alone,
# with enough rounds that the GBs dwarf that (the defaults: some 40 GB per
# path here). What it gains is lost until a reboot, on a kernel with K23.
#
# Environment: DRIFT_TIME [10] DRIFT_ROUNDS [3] DRIFT_PATHS ["default fast"]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DRIFT_TIME=${DRIFT_TIME:-10}
DRIFT_ROUNDS=${DRIFT_ROUNDS:-3}
DRIFT_PATHS=${DRIFT_PATHS:-"default fast"}

export H2LB_TB=${H2LB_TB:-h2lb-drift-$$}
# shellcheck source=../lib/testbed.sh
source "$ROOT/tests/lib/testbed.sh"
# shellcheck source=../lib/h2lb.sh
source "$ROOT/tests/lib/h2lb.sh"

die() {
    printf '[drift] ERROR: %s\n' "$*" >&2
    exit 1
}
if [[ ! $DRIFT_TIME =~ ^[0-9]+$ ]] || ((DRIFT_TIME < 1 || DRIFT_TIME > 600)); then
    die "DRIFT_TIME must be 1..600"
fi
if [[ ! $DRIFT_ROUNDS =~ ^[0-9]+$ ]] || ((DRIFT_ROUNDS < 1 || DRIFT_ROUNDS > 100)); then
    die "DRIFT_ROUNDS must be 1..100"
fi
for p in $DRIFT_PATHS; do
    [[ $p == default || $p == fast ]] || die "unknown path '$p' (default, fast)"
done

# tcp_mem: TCP's memory count in pages, a second after the last close.
tcp_mem() {
    sleep 1
    tcp_mem_pages
}

# download FAST: one round; prints the bytes h2load received.
download() {
    H2LB_TEST_FAST_PATH=$1 tb_run cli h2load -D "$DRIFT_TIME" -c 1 -m 4 \
        "http://$H2LB_ADDR/big.bin" 2>&1 |
        awk '/^traffic:/ { gsub(/[()]/, "", $3); print $3; found = 1 }
             END { exit !found }'
}

tb_cleanup_on_exit
tb_up 2 || die "tb_up failed"
tb_start_nghttpd || die "nghttpd did not start"

for path in $DRIFT_PATHS; do
    fast=0
    [[ $path == fast ]] && fast=1
    : >"$(h2lb_log)" 2>/dev/null || true # h2lb_start counts "ready" lines
    H2LB_TEST_FAST_PATH=$fast h2lb_start \
        --backends "$(tb_backend_ip 1):8080,$(tb_backend_ip 2):8080" ||
        die "h2lb did not start"
    start=$(tcp_mem) bytes=0
    for ((r = 1; r <= DRIFT_ROUNDS; r++)); do
        b=$(download "$fast") || die "h2load failed"
        bytes=$((bytes + b))
        printf '[drift] %s path, round %d: %d MB, TCP mem %d pages\n' \
            "$path" "$r" $((b / 1000000)) "$(tcp_mem)" >&2
    done
    h2lb_stop || die "h2lb did not stop cleanly"
    end=$(tcp_mem)
    awk -v p="$path" -v d=$((end - start)) -v b="$bytes" 'BEGIN {
        printf "%s path: %.1f GB downloaded, TCP mem %+d pages, %+.1f pages per GB\n",
            p, b / 1e9, d, d / (b / 1e9) }'
done
