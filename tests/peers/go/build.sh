#!/usr/bin/env bash
# tests/peers/go/build.sh OUT_DIR - build the grpc-go test peers offline.
#
# Everything comes from Debian's packages (scripts/setup-deps.sh installs
# them): golang-go (Go 1.19), golang-google-grpc-dev (grpc-go 1.33) and the
# Go libraries it depends on, golang-google-protobuf-dev, protobuf-compiler,
# protoc-gen-go and protoc-gen-go-grpc. Debian's Go libraries live in
# /usr/share/gocode/src, so the build runs in GOPATH mode (GO111MODULE=off)
# with GOPATH=OUT_DIR/gopath:/usr/share/gocode and GOPROXY=off: nothing is
# downloaded.
#
# Writes OUT_DIR/interop_server, OUT_DIR/interop_client and
# OUT_DIR/h2c_client (Go's own HTTP/2 client, golang.org/x/net/http2, from
# golang-golang-x-net-dev, which grpc-go needs too); the Go build
# cache is OUT_DIR/go-cache (a rebuild with a warm cache takes seconds).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
peers=$(cd "$here/.." && pwd)
out=${1:?usage: build.sh OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)

for tool in go protoc protoc-gen-go protoc-gen-go-grpc; do
	if ! command -v "$tool" >/dev/null; then
		echo "build.sh: $tool is missing (run scripts/setup-deps.sh)" >&2
		exit 1
	fi
done
if [[ ! -d /usr/share/gocode/src/google.golang.org/grpc ]]; then
	echo "build.sh: grpc-go is missing (golang-google-grpc-dev; run scripts/setup-deps.sh)" >&2
	exit 1
fi

# A private GOPATH entry with the package h2lb/... : generated code plus the
# hand-written sources, copied (not linked) so that the tree stays clean.
src=$out/gopath/src/h2lb
rm -rf "$src"
mkdir -p "$src/interoppb"
protoc -I "$peers" --go_out="$src/interoppb" --go_opt=paths=source_relative \
	--go-grpc_out="$src/interoppb" --go-grpc_opt=paths=source_relative \
	"$peers/interop.proto"
cp "$here"/interoppb/*.go "$src/interoppb/"
for cmd in interop_server interop_client h2c_client; do
	mkdir -p "$src/$cmd"
	cp "$here/$cmd"/*.go "$src/$cmd/"
done

export GO111MODULE=off GOPROXY=off GOFLAGS='' GOTOOLCHAIN=local
export GOPATH=$out/gopath:/usr/share/gocode
export GOCACHE=$out/go-cache
# One compile job at a time: the machine is shared.
for cmd in interop_server interop_client h2c_client; do
	(cd "$src/$cmd" && nice go build -p 1 -o "$out/$cmd.tmp" .)
	mv -f "$out/$cmd.tmp" "$out/$cmd"
done
