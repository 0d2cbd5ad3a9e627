#!/usr/bin/env bash
# timeout: 60
#
# test_layers - the include/call graph of user/ has no cycle, and no arrow
# runs from a lower layer to a higher one (user/LAYERS; the graph comes
# from the sources' includes and the object files' symbols, so it needs
# a build). Needs no root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
[[ -d build/user ]] || { echo "FAIL: build first (make)" >&2; exit 1; }
out=$(python3 scripts/callgraph.py --layers user/LAYERS) || {
    echo "$out"
    echo "FAIL: the layers of user/ are broken (above: cycles, arrows up, modules without a layer)" >&2
    exit 1
}
echo "$out" | tail -n 1
echo "PASS: user/ is acyclic and layered"
