#!/usr/bin/env bash
# scripts/build-image.sh - build the h2lb image (deploy/Dockerfile) with
# Debian's packages only: no registry is asked for an image.
#
#   scripts/build-image.sh [--tag NAME] [--rebuild-base] [--no-cache]
#
# 1. The bases the Dockerfile names, debian:12 and debian:12-slim, come from
#    mmdebstrap --variant=minbase bookworm, with this machine's own Debian
#    apt sources and its apt fetch settings (proxy, Check-Valid-Until), so
#    that apt-get in the build reaches Debian's packages as the host's apt
#    does. `podman import` makes them images (tagged
#    docker.io/library/debian:12 and :12-slim, which is what `FROM debian:12`
#    resolves to, with the label io.h2lb.base saying where they came from).
#    They are made once and kept: a second run reuses them (--rebuild-base
#    makes them again, e.g. for newer packages).
# 2. `podman build --isolation chroot --pull=never` of deploy/Dockerfile
#    with the repository as context (deploy/Dockerfile.dockerignore keeps
#    build/, .git and node_modules out), tagged h2lb:latest (--tag) and,
#    for a cluster's nodes, docker.io/library/h2lb:latest. Its
#    layers are cached too: a second run with the same sources only copies
#    the context again and rebuilds from there.
#
# Needs root, mmdebstrap and podman (scripts/setup-deps.sh installs them).
# Prints what it does, how long each step took and the image at the end;
# on failure, what failed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TAG=h2lb:latest
REBUILD_BASE=
NO_CACHE=()
BASE_FULL=docker.io/library/debian:12
BASE_SLIM=docker.io/library/debian:12-slim
BASE_LABEL=io.h2lb.base

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

die() {
	echo "build-image: error: $*" >&2
	exit 1
}

while (($# > 0)); do
	case $1 in
	--tag)
		[[ $# -ge 2 && -n $2 ]] || die "--tag needs a NAME[:TAG]"
		TAG=$2
		shift
		;;
	--rebuild-base) REBUILD_BASE=1 ;;
	--no-cache) NO_CACHE=(--no-cache) ;;
	-h | --help)
		usage
		exit 0
		;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
	shift
done

[[ $(id -u) == 0 ]] || die "run as root (mmdebstrap and podman build a root filesystem)"
for c in mmdebstrap podman apt-config; do
	command -v "$c" >/dev/null ||
		die "missing command: $c (scripts/setup-deps.sh installs what this needs)"
done
[[ -f $ROOT/deploy/Dockerfile ]] || die "no deploy/Dockerfile under $ROOT"

t0=$SECONDS
step() { printf 'build-image: %s\n' "$*"; }

tmp=$(mktemp -d /var/tmp/h2lb-build-image.XXXXXX)
trap 'rm -rf -- "$tmp"' EXIT

# The machine's Debian apt sources: every enabled sources file (one-line or
# deb822) whose archive is Debian's (…/debian or …/debian-security), as
# apt on the host reads them. Other vendors' repositories are left out.
debian_sources() {
	local f n=0
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[[ -s $f ]] || continue
		grep -Eq '^[^#]*[a-z]+://[^ ]*/debian(-security)?/?([[:space:]]|$)' "$f" || continue
		cp -- "$f" "$tmp/sources.$n.${f##*.}"
		printf '%s\n' "$tmp/sources.$n.${f##*.}"
		n=$((n + 1))
	done
}

# The host's apt fetch settings that decide whether apt reaches the
# archive: proxies, and the Release file date checks (a mirror that serves
# a snapshot has expired Valid-Until dates).
apt_fetch_opts() {
	apt-config dump 2>/dev/null |
		grep -E '^Acquire::(([a-z]+::)?Proxy|[a-z]+::Proxy::[^ ]+|Check-Valid-Until|Check-Date|Retries|ForceIPv4) ' || true
}

make_base() {
	local sources=() f opts
	mapfile -t sources < <(debian_sources)
	((${#sources[@]} > 0)) ||
		die "no enabled Debian apt sources in /etc/apt (sources.list, sources.list.d/*.list|*.sources)"
	opts=$tmp/apt-fetch.conf
	apt_fetch_opts >"$opts"
	step "base: mmdebstrap --variant=minbase bookworm from $(for f in "${sources[@]}"; do
		sed -n 's/^[^#]*\(URIs:\|deb\) *\([a-z]*:\/\/[^ ]*\).*/\2/p' "$f"
	done | sort -u | paste -sd ' ')"
	[[ -s $opts ]] && step "base: apt settings from the host: $(paste -sd ' ' "$opts")"
	# shellcheck disable=SC2016 # the hook's $1 is mmdebstrap's
	local mm=(mmdebstrap --variant=minbase --format=tar --quiet
		# As the official -slim images do: no documentation or locales.
		--dpkgopt='path-exclude=/usr/share/doc/*'
		--dpkgopt='path-include=/usr/share/doc/*/copyright'
		--dpkgopt='path-exclude=/usr/share/man/*'
		--dpkgopt='path-exclude=/usr/share/info/*'
		--dpkgopt='path-exclude=/usr/share/locale/*'
		# apt in the image keeps no downloaded packages or lists.
		--customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin')
	[[ -s $opts ]] && mm+=(--aptopt="$opts")
	if ! "${mm[@]}" bookworm "$tmp/base.tar" "${sources[@]}" 2>"$tmp/mmdebstrap.log"; then
		tail -n 30 "$tmp/mmdebstrap.log" >&2
		die "mmdebstrap failed (above: its last lines); does 'apt-get update' work on this machine?"
	fi
	step "base: $(du -m "$tmp/base.tar" | cut -f1) MiB root filesystem; podman import"
	local change=(
		--change 'CMD ["/bin/bash"]'
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
		--change "LABEL $BASE_LABEL=mmdebstrap-minbase-bookworm"
	)
	podman import "${change[@]}" "$tmp/base.tar" "$BASE_FULL" >"$tmp/import.log" 2>&1 ||
		{ cat "$tmp/import.log" >&2; die "podman import of the base failed"; }
	podman tag "$BASE_FULL" "$BASE_SLIM" || die "podman tag $BASE_SLIM failed"
}

if [[ -n $REBUILD_BASE ]] || ! podman image exists "$BASE_FULL" || ! podman image exists "$BASE_SLIM"; then
	make_base
	step "base: made $BASE_FULL and $BASE_SLIM in $((SECONDS - t0)) s"
else
	from=$(podman image inspect --format "{{index .Labels \"$BASE_LABEL\"}}" "$BASE_FULL" 2>/dev/null || true)
	step "base: $BASE_FULL and $BASE_SLIM already here (${from:-not made by this script}); --rebuild-base makes them again"
fi

t1=$SECONDS
LOG=$ROOT/build/image/build.log
mkdir -p "${LOG%/*}"
step "podman build --isolation chroot -f deploy/Dockerfile -t $TAG (context $ROOT)"
version=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || true)
if ! podman build --isolation chroot --pull=never "${NO_CACHE[@]}" \
	${version:+--build-arg H2LB_VERSION="$version"} \
	--ignorefile "$ROOT/deploy/Dockerfile.dockerignore" \
	-f "$ROOT/deploy/Dockerfile" -t "$TAG" "$ROOT" >"$LOG" 2>&1; then
	tail -n 40 "$LOG" >&2
	die "podman build failed (above: its last lines; all of it in ${LOG#"$ROOT"/})"
fi
grep -E '^(\[[0-9]/[0-9]\] )?(STEP|--> Using cache)' "$LOG" | sed 's/^/  /' | cut -c1-110 || true
id=$(podman image inspect --format '{{.Id}}' "$TAG") || die "no image $TAG after the build"
# `image: h2lb:latest` in a pod means docker.io/library/h2lb:latest to
# the kubelet and containerd; podman calls it localhost/h2lb:latest. Both
# names, so that `podman save` of the former loads where pods find it.
if [[ $TAG != */* ]]; then
	podman tag "$TAG" "docker.io/library/$TAG" || die "podman tag docker.io/library/$TAG failed"
	step "tagged $TAG also as docker.io/library/$TAG (the name a pod's image: $TAG means)"
fi
# The layer cache is the images of this build's steps; those of earlier
# builds (built on our base, now untagged: an older h2lb:latest, the build
# stage of an older tree) would pile up, a build's worth of disk each
# time the tree changes. They go; this build's steps stay.
keep=$(sed -n 's/^--> \(Using cache \)\{0,1\}\([0-9a-f]\{11,\}\).*/\2/p' "$LOG")
stale=0
for _ in 1 2 3; do # removing a child frees its parent
	while read -r img; do
		[[ -n $img ]] || continue
		grep -q "^${img:0:11}" <<<"$keep" && continue
		podman rmi "$img" >/dev/null 2>&1 && stale=$((stale + 1))
	done < <(podman images -q --no-trunc -f dangling=true -f "label=$BASE_LABEL" | sed 's/^sha256://')
done
((stale == 0)) || step "removed $stale untagged images of earlier builds"
size=$(podman image inspect --format '{{.Size}}' "$TAG")
step "built $TAG (${id:0:12}, $((size / 1048576)) MiB) in $((SECONDS - t1)) s; $((SECONDS - t0)) s in all"
