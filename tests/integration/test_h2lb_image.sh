#!/usr/bin/env bash
# timeout: 420
#
# test_h2lb_image - the h2lb image, built here, run as the DaemonSet runs it
# (issue #12 item 1).
#
# 1. scripts/build-image.sh builds h2lb:latest from deploy/Dockerfile
#    (mmdebstrap base, podman build; a minute and a half the first time,
#    seconds once its base and layers are cached). The image's `h2lb
#    version` must be this tree's `git describe`, so a stale image fails.
# 2. Its root filesystem (podman image mount, copied into the testbed's
#    state dir) is run as a container runtime would run the DaemonSet's pod,
#    with what deploy/daemonset.yaml says, read from the file (python
#    yaml), not copied here: the image's ENTRYPOINT and the container's
#    args with $(VAR) expanded from its env (POD_IP and NODE_NAME as the
#    downward API gives them: the node's address and name), the
#    capabilities it adds (all others dropped: bounding set, checked in
#    /proc), readOnlyRootFilesystem (the root is a read-only bind), its
#    volumeMounts from their hostPaths, its memory limit on the "pod"
#    cgroup, the service account (token, ca.crt, namespace) where the
#    kubelet puts it, KUBERNETES_SERVICE_HOST/PORT, and hostNetwork (the
#    testbed's node namespace). A private mount, PID and cgroup namespace
#    stand for the container (h2lb is PID 1, its /proc/self/cgroup reads
#    0::/ in a test "pod" cgroup); /proc, a read-only /sys, a small /dev.
#    Where the node's things are: its bpffs is a bpffs of the test's own,
#    mounted in a mount namespace that a testbed process keeps and the
#    containers start from (the DaemonSet's pin dir, /sys/fs/bpf/h2lb,
#    meets no other h2lb on this machine, and goes with the testbed), its
#    cgroup2 hierarchy is the machine's, /run/h2lb a directory of the test.
#    The client's link into the node is renamed vethcli, so that the
#    DaemonSet's own H2LB_INTERCEPT_DEVS ("veth*,cali*") takes it, as it
#    takes a pod's veth.
# 3. The fake API server (tests/peers/fake_kube_api.py) serves Service
#    default/greeter (ClusterIP 198.18.100.1, port grpc, appProtocol grpc),
#    its EndpointSlice with the four greeters and the Node with a zone
#    label. Before h2lb, kube-proxy-style DNAT of the ClusterIP puts one
#    channel's 200 calls on one backend; with the image's daemon started,
#    the startup probe's /healthz answers 200 on POD_IP:9464, the same
#    calls (one channel, the same address) land on all four, /metrics
#    counts them, `h2lb status` run in the container (nsenter, as kubectl
#    exec) and bpftool on the node read its pins.
# 4. A rolling update: while 40 slow calls run on one channel through it,
#    the next pod's container (its own "pod" cgroup) starts and waits for
#    the old one's lock; SIGTERM to the old one: it exits 0, the next one
#    starts and answers its startup probe, every call in flight succeeds,
#    and one channel's calls land on all four backends again.
# 5. SIGTERM to that one too (kubectl delete -k deploy/): it exits 0 within
#    the grace period; its cgroup, tc program, pins, routing rule and
#    nftables table are gone (the empty /run/h2lb is all that stays), and
#    the same calls take the DNAT path again.
# Everything it made (the rootfs copy, the "pod" cgroups, the namespaces;
# the mounts live and die with the containers' and the node's mount
# namespaces) is removed, also on failure; h2lb:latest and the cached base
# stay.
#
# H2LB_TEST_IMAGE (default h2lb:latest) names the image to build and run;
# H2LB_TEST_DAEMONSET (default deploy/daemonset.yaml) another DaemonSet to
# run it as (e.g. one without SYS_ADMIN, which must fail).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"

tb_require_cmd podman mmdebstrap unshare nsenter openssl curl bpftool nft git

IMAGE=${H2LB_TEST_IMAGE:-h2lb:latest}
DS=${H2LB_TEST_DAEMONSET:-$TB_ROOT/deploy/daemonset.yaml}
FAKE=$TB_PEERS/fake_kube_api.py
API_PORT=6443
CTL=$TB_NODE_IP:6444
TOKEN=image-test-token
NODE_NAME=h2lb-test-node
ZONE=zone-a
VIP=$TB_VIP:50051
RF=$TB_STATE/rootfs
KDIR=$TB_STATE/kube

"$TB_PYTHON" -c 'import yaml' 2>/dev/null || skip "python3 yaml is missing (python3-yaml)"
CG2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[[ -n $CG2 ]] || skip "no cgroup v2 hierarchy"
awk -v m="$CG2" '$5 == m && $4 != "/" { bad = 1 } END { exit bad }' \
    /proc/self/mountinfo || skip "$CG2 is not this cgroup namespace's root"
# Two pods' cgroups: the DaemonSet's pod on this node, then its successor
# in a rolling update.
POD_CG=$CG2/h2lb-test-$$-pod
POD2_CG=$CG2/h2lb-test-$$-pod2

tb_up 4
tb_start_greeters

# ------------------------------------------------------------------ image

echo "== scripts/build-image.sh --tag $IMAGE"
start=$SECONDS
bash "$TB_ROOT/scripts/build-image.sh" --tag "$IMAGE" >"$TB_STATE/build-image.out" 2>&1 || {
    tail -n 40 "$TB_STATE/build-image.out" >&2
    fail "scripts/build-image.sh failed"
}
grep '^build-image: ' "$TB_STATE/build-image.out" | sed 's/^/   /'
echo "   took $((SECONDS - start)) s"

echo "== the image's root filesystem, copied into $RF"
mkdir -p "$RF"
mnt=$(podman image mount "$IMAGE") || fail "podman image mount $IMAGE"
tb_on_cleanup "podman image unmount '$IMAGE' >/dev/null 2>&1 || true"
cp -a "$mnt/." "$RF/" || fail "copying the image's files"
podman image unmount "$IMAGE" >/dev/null || fail "podman image unmount $IMAGE"
podman image inspect "$IMAGE" >"$TB_STATE/image.json" || fail "podman image inspect"
[[ -x $RF/usr/local/bin/h2lb ]] || fail "no /usr/local/bin/h2lb in $IMAGE"
echo "   $(du -sm "$RF" | cut -f1) MiB"

want=$(git -C "$TB_ROOT" describe --always --dirty 2>/dev/null || true)
got=$(chroot "$RF" /usr/local/bin/h2lb version) || fail "the image's h2lb does not run: $got"
echo "   the image's h2lb version: $got (this tree: ${want:-not a git tree})"
[[ -z $want || $got == *"$want"* ]] || fail "the image is not this tree's build"
# Not one library of the machine's: ldd as the image's own loader sees it.
chroot "$RF" /usr/bin/ldd /usr/local/bin/h2lb >"$TB_STATE/ldd" || fail "ldd in the image"
if grep -q 'not found' "$TB_STATE/ldd"; then
    cat "$TB_STATE/ldd" >&2
    fail "the image lacks a library h2lb links"
fi

# ------------------------------------------------- what the DaemonSet says

# The pod spec, as shell assignments: the command line (the image's
# ENTRYPOINT, the container's args with $(VAR) expanded as the kubelet
# does), the environment, the mounts, the capabilities. Fails on what the
# test cannot stand for, so that a change of the DaemonSet changes it.
"$TB_PYTHON" - "$DS" "$TB_STATE/image.json" "$TB_NODE_IP" "$NODE_NAME" "$IMAGE" \
    >"$TB_STATE/pod.sh" <<'PY' || fail "cannot run deploy/daemonset.yaml's pod as it is"
import json, re, shlex, sys

ds_path, image_json, pod_ip, node_name, image = sys.argv[1:]
import yaml
docs = [d for d in yaml.safe_load_all(open(ds_path)) if d]
(ds,) = [d for d in docs if d.get("kind") == "DaemonSet"]
spec = ds["spec"]["template"]["spec"]
(c,) = spec["containers"]
img = json.load(open(image_json))[0]["Config"]

def need(cond, what):
    if not cond:
        sys.exit("daemonset.yaml: " + what)

need(spec.get("hostNetwork") is True, "the test runs the pod on the host network")
need(c["image"].split("/")[-1] == image.split("/")[-1],
     "image %s, the test built %s" % (c["image"], image))
need(not c.get("command"), "a command replaces the image's ENTRYPOINT")

# Environment: the image's, the kubelet's service variables, the container's.
env = dict(e.split("=", 1) for e in img.get("Env") or [])
env["HOSTNAME"] = node_name      # host network: the node's name
env["KUBERNETES_SERVICE_HOST"] = pod_ip
env["KUBERNETES_SERVICE_PORT"] = "6443"
field = {"status.podIP": pod_ip, "spec.nodeName": node_name,
         "metadata.namespace": ds["metadata"]["namespace"]}

def expand(s):
    # $(VAR) from the environment so far, $$(VAR) stays "$(VAR)", an
    # unknown $(VAR) stays as it is (Kubernetes' rules).
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), s)

for e in c.get("env", []):
    if "value" in e:
        env[e["name"]] = expand(e["value"])
    else:
        path = e["valueFrom"]["fieldRef"]["fieldPath"]
        need(path in field, "env %s from %s" % (e["name"], path))
        env[e["name"]] = field[path]
argv = (img.get("Entrypoint") or []) + [expand(a) for a in c.get("args", [])]
need(argv, "nothing to run")

# Capabilities: drop ALL, then the added ones.
sc = c.get("securityContext", {})
caps = sc.get("capabilities", {})
need(caps.get("drop") == ["ALL"], "capabilities are not drop ALL")
need(sc.get("runAsUser", 0) == 0 and not sc.get("privileged"), "root, not privileged")

# Mounts: container path, host path, propagation.
vols = {v["name"]: v for v in spec.get("volumes", [])}
mounts = []
for m in c.get("volumeMounts", []):
    v = vols[m["name"]]
    need("hostPath" in v, "volume %s is not a hostPath" % m["name"])
    mounts.append("%s|%s|%s|%s" % (m["mountPath"], v["hostPath"]["path"],
                                   v["hostPath"].get("type", ""),
                                   m.get("mountPropagation", "None")))

def mem(q):
    n = re.fullmatch(r"(\d+)(Ki|Mi|Gi)?", q)
    need(n, "memory limit %s" % q)
    return int(n.group(1)) << {None: 0, "Ki": 10, "Mi": 20, "Gi": 30}[n.group(2)]

ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
probe = c["startupProbe"]["httpGet"]
out = {
    "POD_ARGV": argv,
    "POD_ENV": ["%s=%s" % kv for kv in sorted(env.items())],
    "POD_CAPS": ["+" + x.lower() for x in caps.get("add", [])],
    "POD_MOUNTS": mounts,
}
for k, v in out.items():
    print("%s=(%s)" % (k, " ".join(shlex.quote(x) for x in v)))
print("POD_RO_ROOT=%s" % ("1" if sc.get("readOnlyRootFilesystem") else ""))
print("POD_MEM=%d" % mem(c["resources"]["limits"]["memory"]))
print("POD_GRACE=%d" % spec.get("terminationGracePeriodSeconds", 30))
print("POD_NAMESPACE=%s" % shlex.quote(ds["metadata"]["namespace"]))
print("PROBE_PATH=%s" % shlex.quote(probe["path"]))
print("PROBE_PORT=%d" % ports.get(probe["port"], probe["port"]))
print("PROBE_SECONDS=%d" % (c["startupProbe"].get("periodSeconds", 10) *
                            c["startupProbe"].get("failureThreshold", 3)))
PY
# shellcheck disable=SC1091
source "$TB_STATE/pod.sh"
echo "== the DaemonSet's container, from deploy/daemonset.yaml"
echo "   argv: ${POD_ARGV[*]}"
echo "   env: $(printf '%s\n' "${POD_ENV[@]}" | grep -o '^[A-Z0-9_]*=' | tr -d = | paste -sd ' ')"
echo "   capabilities: ${POD_CAPS[*]} (all others dropped); read-only root: ${POD_RO_ROOT:-no}"
echo "   mounts: ${POD_MOUNTS[*]}"
echo "   memory limit $((POD_MEM >> 20)) MiB, grace ${POD_GRACE} s, startup probe $PROBE_PATH on :$PROBE_PORT for ${PROBE_SECONDS} s"

# ------------------------------------------------------------------ node

# The pods' cgroups, removed (their processes killed) on exit.
for c in "$POD_CG" "$POD2_CG"; do
    tb_cgroups "$c" || fail "mkdir $c"
    if [[ -e $c/memory.max ]]; then
        echo "$POD_MEM" >"$c/memory.max" || fail "memory.max"
    fi
done

# The node's bpffs, shared by the containers as the hostPath /sys/fs/bpf
# shares the node's: a bpffs of the test's own, mounted in a mount
# namespace that a process of the testbed keeps (it goes with it, pins and
# all, however the test ends). The containers start from there.
NODE_BPF=$TB_STATE/node-bpffs
mkdir -p "$NODE_BPF"
# shellcheck disable=SC2016 # $1 is the inner shell's
tb_spawn node nodefs unshare --mount --propagation private -- \
    sh -c 'mount -t bpf bpf "$1" && echo mounted && exec sleep 3600' sh "$NODE_BPF"
NODE_NS=$TB_LAST_PID
for ((i = 0; i < 50; i++)); do
    grep -q mounted "$TB_STATE/logs/nodefs.log" 2>/dev/null && break
    sleep 0.1
done
grep -q mounted "$TB_STATE/logs/nodefs.log" || fail "the node's bpffs: $(cat "$TB_STATE/logs/nodefs.log")"
on_node() { nsenter --mount="/proc/$NODE_NS/ns/mnt" -- "$@"; }
# What a new bpffs holds (the kernel's maps.debug and progs.debug).
bpffs_new=$(on_node find "$NODE_BPF" -mindepth 1 | sort)

# The client's link into the node, named as a pod's veth.
tb_exec node ip link set vcli down
tb_exec node ip link set vcli name vethcli
tb_exec node ip link set vethcli up
tb_exec cli ip route replace default via "$TB_NODE_IP" || fail "client route"

mkdir -p "$KDIR"
tb_spawn node kubeapi "$TB_PYTHON" "$FAKE" serve --listen "$TB_NODE_IP:$API_PORT" \
    --control "$CTL" --dir "$KDIR" --token "$TOKEN"
tb_wait_port node 6444 30 "$TB_LAST_PID" || fail "the fake API server did not start"
for ((i = 0; i < 100; i++)); do
    [[ -s $KDIR/kubeconfig ]] && break
    sleep 0.1
done
[[ -s $KDIR/ca.crt ]] || fail "the fake API server wrote no ca.crt"
ctl() { tb_exec node "$TB_PYTHON" "$FAKE" ctl --control "$CTL" "$@" >/dev/null; }
ctl /apply "{\"apiVersion\": \"v1\", \"kind\": \"Node\",
  \"metadata\": {\"name\": \"$NODE_NAME\",
                 \"labels\": {\"topology.kubernetes.io/zone\": \"$ZONE\"}}}" ||
    fail "apply Node"
ctl /apply '{"apiVersion": "v1", "kind": "Service",
  "metadata": {"namespace": "default", "name": "greeter"},
  "spec": {"type": "ClusterIP", "clusterIP": "198.18.100.1",
           "clusterIPs": ["198.18.100.1"], "ipFamilies": ["IPv4"],
           "ports": [{"name": "grpc", "port": 50051, "targetPort": 50051,
                      "protocol": "TCP", "appProtocol": "grpc"}]}}' || fail "apply Service"
ctl /apply "$("$TB_PYTHON" -c '
import json
print(json.dumps({
    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
    "metadata": {"namespace": "default", "name": "greeter-abc",
                 "labels": {"kubernetes.io/service-name": "greeter"}},
    "addressType": "IPv4",
    "ports": [{"name": "grpc", "port": 50051, "protocol": "TCP"}],
    "endpoints": [{"addresses": ["198.18.2.%d" % (10 + i)],
                   "conditions": {"ready": True, "serving": True, "terminating": False}}
                  for i in range(1, 5)]}))')" || fail "apply EndpointSlice"

# The service account, as the kubelet projects it.
SA=$TB_STATE/serviceaccount
mkdir -p "$SA"
cp "$KDIR/ca.crt" "$SA/ca.crt"
printf '%s' "$TOKEN" >"$SA/token"
printf '%s' "$POD_NAMESPACE" >"$SA/namespace"
NODE_RUN=$TB_STATE/node-run # the node's /run

echo "== before h2lb: kube-proxy-style DNAT of $VIP"
tb_l4_on 50051
got=$(served_by "$VIP") || fail "calls through DNAT failed"
echo "   one channel, 200 calls: $got"
[[ $(wc -w <<<"$got") == 1 ]] || fail "DNAT spread one channel over '$got'"

# ------------------------------------------------------------- container

# launch.sh POD_CGROUP: the container runtime. Into the pod's cgroup; from
# the node's mount namespace, new mount, PID and cgroup namespaces; there
# the root filesystem (read-only), /proc,
# /sys, /dev and the volumes; then the image's own env and setpriv drop
# every capability but the pod's and exec its entrypoint as PID 1.
{
    echo '#!/bin/bash'
    echo 'set -euo pipefail'
    declare -p RF CG2 SA NODE_RUN NODE_NS NODE_BPF POD_RO_ROOT POD_ARGV POD_ENV POD_CAPS POD_MOUNTS
    cat <<'EOF'
if [[ -z ${IN_CONTAINER:-} ]]; then
    echo $$ >"$1/cgroup.procs"
    export IN_CONTAINER=1
    exec nsenter --mount="/proc/$NODE_NS/ns/mnt" -- \
        unshare --mount --pid --fork --cgroup --propagation private -- bash "$0"
fi
# in_root PATH: where PATH of the container is, its symlinks (/var/run ->
# /run) resolved inside the image's root, not the machine's.
in_root() { printf '%s%s\n' "$RF" "$(chroot "$RF" /usr/bin/realpath -m "$1")"; }
# Mount points the runtime would make in the image's root.
dirs=()
for m in "${POD_MOUNTS[@]}"; do
    IFS='|' read -r path host type prop <<<"$m"
    dirs+=("$(in_root "$path")")
    [[ $path == /sys/* ]] || mkdir -p "${dirs[-1]}"
done
sa=$(in_root /var/run/secrets/kubernetes.io/serviceaccount)
mkdir -p "$sa"
mount --bind "$RF" "$RF"
[[ -z $POD_RO_ROOT ]] || mount -o remount,bind,ro "$RF"
mount -t proc -o nosuid,nodev,noexec proc "$RF/proc"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$RF/sys"
mount -t tmpfs -o nosuid,mode=755,size=64k tmpfs "$RF/dev"
for d in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9; do
    IFS=: read -r n ma mi <<<"$d"
    mknod -m 666 "$RF/dev/$n" c "$ma" "$mi"
done
mount --bind "$SA" "$sa"
mount -o remount,bind,ro "$sa"
i=0
for m in "${POD_MOUNTS[@]}"; do
    IFS='|' read -r path host type prop <<<"$m"
    dir=${dirs[i++]}
    case $host in
        /sys/fs/bpf) mount --bind "$NODE_BPF" "$dir" ;;
        /sys/fs/cgroup) mount --rbind "$CG2" "$dir" ;;
        /run/*)
            mkdir -p "$NODE_RUN/${host#/run/}"
            mount --bind "$NODE_RUN/${host#/run/}" "$dir"
            ;;
        *) echo "launch: no stand-in for hostPath $host" >&2; exit 1 ;;
    esac
    case $prop in
        HostToContainer) mount --make-rslave "$dir" ;;
        Bidirectional) mount --make-rshared "$dir" ;;
    esac
done
caps=$(IFS=,; echo "${POD_CAPS[*]}")
exec chroot "$RF" /usr/bin/env -i "${POD_ENV[@]}" \
    /usr/bin/setpriv --bounding-set=-all,"$caps" --inh-caps=-all -- "${POD_ARGV[@]}"
EOF
} >"$TB_STATE/launch.sh"

# The daemon: PID 1 of the container, the launcher's child.
daemon_pid() {
    local p
    p=$(pgrep -P "$1" 2>/dev/null | head -n 1) || return 1
    [[ -n $p ]] && printf '%s\n' "$p"
}

# Cleanup hook: SIGTERM to the daemons still running, then their launchers.
stop_containers() {
    local name pid dpid
    for name in h2lb h2lb-next; do
        pid=$(tb_pid "$name" 2>/dev/null) || continue
        kill -0 "$pid" 2>/dev/null || continue
        if dpid=$(daemon_pid "$pid"); then
            kill -TERM "$dpid" 2>/dev/null || true
        fi
        tb_kill "$name" TERM
    done
    return 0
}
tb_on_cleanup stop_containers

since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

PROBE=http://$TB_NODE_IP:$PROBE_PORT$PROBE_PATH
# wait_probe LAUNCHER LOG: the startup probe, as the kubelet runs it (from
# the node, on POD_IP), until it answers 200; fails if the container exits.
wait_probe() {
    local code='' i
    for ((i = 0; i < PROBE_SECONDS * 5; i++)); do
        kill -0 "$1" 2>/dev/null || fail "the container exited: $(tail -n 20 "$2")"
        code=$(tb_exec node curl -s -o /dev/null --max-time 2 -w '%{http_code}' "$PROBE" || true)
        [[ $code == 200 ]] && return 0
        sleep 0.2
    done
    fail "the startup probe $PROBE never answered 200 (last: $code)"
}

# stop_pod LAUNCHER DAEMON: SIGTERM, as the kubelet stops a pod; it must
# exit 0 within the grace period.
stop_pod() {
    local i rc=0 t=$EPOCHREALTIME
    kill -TERM "$2"
    for ((i = 0; i < POD_GRACE * 10; i++)); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$1" 2>/dev/null && fail "h2lb did not stop within the grace period ($POD_GRACE s)"
    wait "$1" || rc=$?
    ((rc == 0)) || fail "h2lb exited $rc"
    echo "   exited 0 after $(since "$t") s"
}

# check_daemon PID POD_CGROUP: the image's binary and libbpf, PID 1 of its
# container, the pod's capabilities only, in its own cgroup in the pod's.
check_daemon() {
    local dpid=$1 pod=$2 nspid lib ino capeff caps own in
    [[ /proc/$dpid/exe -ef $RF/usr/local/bin/h2lb ]] || fail "pid $dpid is not the image's h2lb"
    nspid=$(awk '/^NSpid:/ { print $NF }' "/proc/$dpid/status")
    [[ $nspid == 1 ]] || fail "h2lb is pid $nspid in its container, want 1"
    lib=$(readlink -f "$RF/usr/lib/x86_64-linux-gnu/libbpf.so.1" 2>/dev/null ||
        readlink -f "$RF/lib/x86_64-linux-gnu/libbpf.so.1")
    ino=$(stat -c %i "$lib")
    awk -v i="$ino" '$5 == i && /libbpf/ { f = 1 } END { exit !f }' "/proc/$dpid/maps" ||
        fail "h2lb does not map the image's libbpf (inode $ino)"
    capeff=$(awk '/^CapEff:/ { print $2 }' "/proc/$dpid/status")
    caps=$(capsh --decode="$capeff" 2>/dev/null | sed 's/.*=//' || echo "$capeff")
    echo "   pid $dpid (1 in the container): the image's h2lb and libbpf; CapEff $capeff = $caps"
    [[ $(tr ',' '\n' <<<"$caps" | sort | paste -sd ,) == "cap_bpf,cap_net_admin,cap_sys_admin" ]] ||
        fail "the daemon's capabilities are $caps, want cap_bpf,cap_net_admin,cap_sys_admin"
    own=$(sed -n 's/^0:://p' "/proc/$dpid/cgroup")
    [[ $own == "/${pod#"$CG2"/}/h2lb-1" ]] || fail "the daemon's cgroup is $own, want the pod's h2lb-1"
    in=$(nsenter -t "$dpid" -C cat "/proc/$dpid/cgroup" | sed -n 's/^0:://p')
    echo "   cgroup $own; in its own cgroup namespace: $in"
    [[ $in == /h2lb-1 ]] || fail "in its cgroup namespace the daemon is in $in, want /h2lb-1"
}

# tc_progs: "LINKS PROG_IDS" of the h2lb_tc_ingress programs on the vips
# map pinned on the node's bpffs.
tc_progs() {
    local vips
    vips=$(on_node bpftool -j map show pinned "$NODE_BPF/h2lb/vips" |
        "$TB_PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["id"])') || return 1
    bpftool -j link show | "$TB_PYTHON" -c '
import json, subprocess, sys
progs = json.loads(subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True,
                                  text=True).stdout or "[]")
ours = {p["id"] for p in progs if p.get("name") == "h2lb_tc_ingress"
        and int(sys.argv[1]) in p.get("map_ids", [])}
links = json.load(sys.stdin)
print(sum(1 for l in links if l.get("prog_id") in ours), ",".join(map(str, sorted(ours))))' "$vips"
}

echo "== the image's h2lb, as the DaemonSet's container"
start=$EPOCHREALTIME
tb_spawn node h2lb bash "$TB_STATE/launch.sh" "$POD_CG"
launcher=$TB_LAST_PID
wait_probe "$launcher" "$(h2lb_log)"
echo "   startup probe $PROBE: 200 after $(since "$start") s"
dpid=$(daemon_pid "$launcher") || fail "no daemon under the launcher"
check_daemon "$dpid" "$POD_CG"

for ((i = 0; i < 100; i++)); do
    (($(grep -c ' ready$' "$(h2lb_log)" || true) >= 4)) && break
    sleep 0.1
done
grep -q "k8s: node $NODE_NAME, zone '$ZONE'" "$(h2lb_log)" ||
    fail "the daemon did not read its Node ($NODE_NAME) through the service account"
grep -q "greeter:grpc has 4 endpoint" "$(h2lb_log)" || fail "the daemon did not see the four endpoints"
echo "   log: $(grep -m1 'k8s: node' "$(h2lb_log)" | cut -c1-90)"

echo "== one channel to the ClusterIP $VIP, through the image's h2lb"
got=$(served_by "$VIP") || fail "calls through h2lb failed"
echo "   one channel, 200 calls: $got"
[[ $got == "backend-1 backend-2 backend-3 backend-4" ]] || fail "want all four backends, got '$got'"

streams=$(tb_exec node curl -s --max-time 5 "http://$TB_NODE_IP:$PROBE_PORT/metrics" |
    awk '$1 ~ /^h2lb_backend_streams_total/ { s += $2 } END { print s + 0 }')
echo "   /metrics on POD_IP:$PROBE_PORT: $streams streams on backends"
((streams >= 200)) || fail "/metrics counts $streams streams, want at least 200"
nsenter -t "$dpid" -m -n -p -r -w /usr/local/bin/h2lb status >"$TB_STATE/status" 2>&1 ||
    fail "h2lb status in the container: $(cat "$TB_STATE/status")"
echo "   h2lb status in the container (kubectl exec):"
grep -v '^$' "$TB_STATE/status" | grep -v '^kernel:' | sed 's/^/     /' | cut -c1-110
nb=$(on_node bpftool -j map dump pinned "$NODE_BPF/h2lb/backends" |
    "$TB_PYTHON" -c 'import json, sys; print(len(json.load(sys.stdin)))') ||
    fail "bpftool on the node cannot read /sys/fs/bpf/h2lb/backends"
echo "   bpftool on the node reads /sys/fs/bpf/h2lb/backends ($nb slots)"
read -r links progs < <(tc_progs) || fail "no vips map pinned"
echo "   tc: $links link(s) of program(s) $progs (vethcli, by veth*)"
((links == 1)) || fail "want one tc link (vethcli), got $links"

echo "== a rolling update: the next pod's container starts while the old one stops"
tb_client --target "$VIP" --calls 40 --concurrency 40 --delay-ms 1500 --json \
    >"$TB_STATE/inflight" 2>&1 &
inflight=$!
sleep 0.5
tb_spawn node h2lb-next bash "$TB_STATE/launch.sh" "$POD2_CG"
next=$TB_LAST_PID
nlog=$TB_STATE/logs/h2lb-next.log
for ((i = 0; i < 100; i++)); do
    grep -q 'waiting for it to exit' "$nlog" 2>/dev/null && break
    kill -0 "$next" 2>/dev/null || fail "the next container exited: $(tail -n 20 "$nlog")"
    sleep 0.1
done
grep -q 'waiting for it to exit' "$nlog" || fail "the next daemon does not wait for the old one: $(tail -n 5 "$nlog")"
echo "   next: $(grep -m1 'waiting for it to exit' "$nlog" | sed 's/^h2lb\[[0-9.]*\] //')"
echo "   SIGTERM to the old one, 40 slow calls in flight on one channel"
stop_pod "$launcher" "$dpid"
start=$EPOCHREALTIME
wait_probe "$next" "$nlog"
echo "   the next one's startup probe: 200 after $(since "$start") s"
wait "$inflight" || fail "calls in flight during the update failed: $(tail -n 1 "$TB_STATE/inflight")"
"$TB_PYTHON" -c 'import json, sys; s = json.loads(sys.stdin.read()); assert s["errors"] == 0, s' \
    <"$TB_STATE/inflight" || fail "calls in flight failed: $(tail -n 1 "$TB_STATE/inflight")"
echo "   the 40 calls in flight: all succeeded"
dpid=$(daemon_pid "$next") || fail "no daemon under the next launcher"
check_daemon "$dpid" "$POD2_CG"
[[ -z $(find "$POD_CG" -mindepth 1 -type d) ]] || fail "the old pod's cgroup still has children"
for ((i = 0; i < 100; i++)); do
    (($(grep -c ' ready$' "$nlog" || true) >= 4)) && break
    sleep 0.1
done
got=$(served_by "$VIP") || fail "calls through the next h2lb failed"
echo "   one channel, 200 calls: $got"
[[ $got == "backend-1 backend-2 backend-3 backend-4" ]] || fail "want all four backends, got '$got'"
read -r links progs < <(tc_progs) || fail "no vips map pinned by the next daemon"
((links == 1)) || fail "want one tc link (vethcli), got $links"

echo "== SIGTERM, as the kubelet stops the pod (kubectl delete -k deploy/)"
stop_pod "$next" "$dpid"
left=()
for c in "$POD_CG" "$POD2_CG"; do
    [[ -z $(find "$c" -mindepth 1 -type d) ]] || left+=("cgroup under ${c##*/}")
done
[[ $(tb_exec node ip rule show) != *"lookup 2562"* ]] || left+=("rule")
tb_exec node nft list table ip h2lb >/dev/null 2>&1 && left+=("nftables")
for p in ${progs//,/ }; do
    bpftool prog show id "$p" >/dev/null 2>&1 && left+=("tc program $p")
done
pins=$(on_node find "$NODE_BPF" -mindepth 1 | sort | comm -23 - <(echo "$bpffs_new") |
    sed "s|^$NODE_BPF|/sys/fs/bpf|" | paste -sd ' ')
[[ -z $pins ]] || left+=("pins: $pins")
[[ -z $(find "$NODE_RUN" -type f) ]] || left+=("files: $(find "$NODE_RUN" -type f)")
((${#left[@]} == 0)) || fail "left behind on the node: ${left[*]}"
echo "   left on the node: $(cd "$NODE_RUN" && find . -mindepth 1 | sed 's|^\./|/run/|' | paste -sd ' ') (empty)"
got=$(served_by "$VIP") || fail "calls after the stop failed"
echo "   after the stop, one channel: $got (kube-proxy's DNAT again)"
[[ $(wc -w <<<"$got") == 1 ]] || fail "after the stop the calls went to '$got'"
echo "PASS: the image's h2lb ran as the DaemonSet's container, spread one channel over four backends, and was updated and removed without a failed call"
