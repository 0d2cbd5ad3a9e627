# shellcheck shell=bash
# tests/peers/grpc_peers.sh - where the gRPC client peers of other stacks
# are, for integration tests that run them (sourced after tests/lib/test.sh,
# which defines fail). A peer that is missing FAILS the test: it must not
# pass silently on a machine that cannot run it.
#
#   require_go_peers     PEERS_BIN: the grpc-go peers (tests/peers/go/:
#                        interop_server, interop_client, h2c_client), built
#                        there if missing (`make peers` builds them)
#   require_grpc_js      NODE_DIR: tests/peers/node, with @grpc/grpc-js in
#                        its node_modules (npm ci --prefix tests/peers/node)

PEERS_BIN=${H2LB_PEERS_BIN:-$TB_ROOT/build/peers}
NODE_DIR=$TB_PEERS/node

require_go_peers() {
    local p
    for p in interop_server interop_client h2c_client; do
        [[ -x $PEERS_BIN/$p ]] && continue
        command -v go >/dev/null 2>&1 ||
            fail "go is not installed (scripts/setup-deps.sh installs golang-go and grpc-go)"
        echo "== building the grpc-go peers (tests/peers/go/build.sh)"
        bash "$TB_PEERS/go/build.sh" "$PEERS_BIN" || fail "cannot build the grpc-go peers"
        return
    done
}

require_grpc_js() {
    command -v node >/dev/null 2>&1 ||
        fail "node is not installed (scripts/setup-deps.sh installs Node.js)"
    [[ -f $NODE_DIR/node_modules/@grpc/grpc-js/package.json ]] ||
        fail "@grpc/grpc-js is missing in $NODE_DIR/node_modules; install it with: npm ci --prefix tests/peers/node"
    node -e 'require(process.argv[1])' "$NODE_DIR/node_modules/@grpc/grpc-js" ||
        fail "@grpc/grpc-js in $NODE_DIR/node_modules does not load with $(node --version)"
}
