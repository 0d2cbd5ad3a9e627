#!/usr/bin/env bash
# Install what h2lb needs to build, test and run its demo (Debian 12).
# Idempotent and quiet: safe to run twice. Also mounts bpffs and finds or
# mounts a cgroup v2 hierarchy if the machine lacks them.
set -euo pipefail

PKGS=(
	# build
	make gcc clang llvm pkg-config libbpf-dev libelf-dev zlib1g-dev
	bpftool libcmocka-dev clang-format
	# Kubernetes discovery: HTTPS, JSON, kubeconfig YAML
	libcurl4-openssl-dev libjson-c-dev libyaml-dev
	# Service interception: routing rule (netlink), raw-table rule (nftables)
	libmnl-dev libnftables-dev nftables
	# testbed and peers
	iproute2 iptables procps psmisc curl python3 python3-grpcio
	python3-protobuf nghttp2-client nghttp2-server
	# grpc-go test peers (tests/peers/go, `make peers`): Go 1.19 and
	# grpc-go 1.33 from Debian, built offline in GOPATH mode from
	# /usr/share/gocode; protoc and its Go plugins generate the stubs;
	# Go's own HTTP/2 client (golang.org/x/net/http2) for h2c_client
	golang-go golang-google-grpc-dev golang-github-golang-protobuf-1-5-dev
	golang-google-protobuf-dev protobuf-compiler protoc-gen-go
	protoc-gen-go-grpc golang-golang-x-net-dev
	# benchmarks: userspace proxies to compare with
	haproxy nghttp2-proxy
	# the image (scripts/build-image.sh: a Debian base from mmdebstrap,
	# built with podman, no registry) and its test (test_h2lb_image reads
	# deploy/daemonset.yaml with python3-yaml, decodes capabilities)
	mmdebstrap podman python3-yaml libcap2-bin
)

if [ "$(id -u)" != 0 ]; then
	echo "setup-deps.sh: run as root" >&2
	exit 1
fi

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing+=("$p")
done
# This machine kind ships Node.js with its own npm; Debian's npm would
# conflict with it.
command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup-deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian starts the proxies as services on install; the benchmarks run
# their own instances.
for svc in haproxy nghttpx; do
	if command -v systemctl >/dev/null && systemctl is-active -q "$svc" 2>/dev/null; then
		systemctl stop "$svc" || true
	fi
done

# Node's gRPC client for the tests (@grpc/grpc-js from the npm registry,
# pinned by package-lock.json), installed beside its test peer.
here=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -d "$here/tests/peers/node/node_modules/@grpc/grpc-js" ]; then
	(cd "$here/tests/peers/node" && npm ci --silent --no-audit --no-fund >/dev/null)
fi
# Offline validation of the deploy/ manifests against the Kubernetes schemas.
if [ ! -d "$here/tests/k8s-validate/node_modules/kubernetes-models" ]; then
	(cd "$here/tests/k8s-validate" && npm ci --silent --no-audit --no-fund >/dev/null)
fi

if ! grep -q " /sys/fs/bpf bpf " /proc/mounts; then
	mount -t bpf bpf /sys/fs/bpf
fi
if ! grep -q " cgroup2 " /proc/mounts; then
	mkdir -p /sys/fs/cgroup/unified 2>/dev/null || mkdir -p /run/h2lb-cg2
	mount -t cgroup2 none /sys/fs/cgroup/unified 2>/dev/null ||
		mount -t cgroup2 none /run/h2lb-cg2
fi
echo "setup-deps: ok"
