#!/usr/bin/env bash
# timeout: 180
#
# test_h2lb_cgroupns - the daemon in a container's private cgroup namespace
# (issue #12 item 3). A launcher stands for the container runtime: it moves
# itself into a test cgroup standing for the pod's, then execs h2lb in a
# new cgroup namespace (whose root is that cgroup: /proc/self/cgroup reads
# "0::/") and a new mount namespace where the host's cgroup2 hierarchy is
# at /sys/fs/cgroup, as the DaemonSet's hostPath mount puts it.
#
#   - the daemon's cgroup is a child of the "pod" cgroup (seen from outside,
#     in /proc/PID/cgroup), not of the host's root, and holds it alone; the
#     log names the "pod" cgroup as found by its id
#   - it balances calls (so sockops is attached where its sockets are)
#   - after SIGTERM it exits 0, its child cgroup is gone, the "pod" cgroup
#     is as it was (no children, no processes, no controllers enabled)
#   - with a hierarchy mounted there that does not hold its cgroup (a
#     sibling's subtree), it refuses to start, with a clear error, and
#     makes no cgroup anywhere
#
# Every cgroup the test makes is removed, also on failure.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"

tb_require_cmd unshare mount umount

# Where cgroup2 is mounted here: /sys/fs/cgroup on v2 nodes,
# /sys/fs/cgroup/unified in hybrid mode.
CG2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[[ -n $CG2 ]] || skip "no cgroup v2 hierarchy"
awk -v m="$CG2" '$5 == m && $4 != "/" { bad = 1 } END { exit bad }' \
    /proc/self/mountinfo || skip "$CG2 is not this cgroup namespace's root"
POD=$CG2/h2lb-test-$$-pod
OTHER=$CG2/h2lb-test-$$-other
# The "pod" as the daemon sees it, with the host's hierarchy at
# /sys/fs/cgroup.
POD_IN=/sys/fs/cgroup/${POD#"$CG2"/}

# Removed after h2lb's cleanup (hooks run last first), with any process
# still in them.
tb_cgroups "$POD" "$OTHER" || fail "mkdir $POD $OTHER"
pod_before=$(cat "$POD/cgroup.subtree_control" "$POD/cgroup.type")

tb_up 4
tb_start_greeters

# launch.sh POD SRC MNT CMD...: the "container runtime" (see the top): into
# cgroup POD, then CMD in new cgroup and mount namespaces with the cgroup2
# hierarchy SRC (a directory of it) at /sys/fs/cgroup, through the empty
# directory MNT.
cat >"$TB_STATE/launch.sh" <<'EOF'
#!/bin/sh
set -e
pod=$1 src=$2 mnt=$3
shift 3
echo $$ >"$pod/cgroup.procs"
exec unshare --mount --cgroup -- sh -c '
    set -e
    mount --bind "$1" "$2"
    umount -l /sys/fs/cgroup 2>/dev/null || true
    mount --move "$2" /sys/fs/cgroup
    shift 2
    exec "$@"' sh "$src" "$mnt" "$@"
EOF
mkdir -p "$TB_STATE/cgmnt"

echo "== h2lb in a private cgroup namespace, in the pod's cgroup"
# shellcheck disable=SC2034 # read by h2lb_start
H2LB_WRAP=(sh "$TB_STATE/launch.sh" "$POD" "$CG2" "$TB_STATE/cgmnt")
h2lb_start || fail "h2lb did not start"
pid=$(tb_pid h2lb)
own=$(sed -n 's/^0:://p' "/proc/$pid/cgroup")
echo "   /proc/$pid/cgroup: $own"
[[ $own == "/${POD#"$CG2"/}/h2lb-$pid" ]] ||
    fail "the daemon is in $own, want /${POD#"$CG2"/}/h2lb-$pid"
[[ ! -e $CG2/h2lb-$pid ]] || fail "a cgroup h2lb-$pid at the host's root"
procs=$(paste -sd ' ' "$POD/h2lb-$pid/cgroup.procs")
[[ $procs == "$pid" ]] || fail "h2lb-$pid holds '$procs', want $pid alone"
[[ -z $(cat "$POD/cgroup.procs") ]] || fail "processes left in the pod cgroup"
grep -q "cgroup / of this cgroup namespace is $POD_IN\$" "$(h2lb_log)" ||
    fail "the log does not say the pod cgroup was found by its id"

got=$(served_by) || fail "calls through h2lb failed"
echo "   served by: $got"
[[ $(wc -w <<<"$got") == 4 ]] || fail "served by '$got', want 4 backends"

echo "== SIGTERM: the daemon's cgroup goes, the pod's stays as it was"
h2lb_stop || fail "h2lb_stop"
[[ ! -e $POD/h2lb-$pid ]] || fail "$POD/h2lb-$pid left behind"
[[ -d $POD ]] || fail "$POD is gone"
[[ -z $(find "$POD" -mindepth 1 -type d) ]] || fail "cgroups left under $POD"
[[ -z $(cat "$POD/cgroup.procs") ]] || fail "processes left in $POD"
[[ $(cat "$POD/cgroup.subtree_control" "$POD/cgroup.type") == "$pod_before" ]] ||
    fail "$POD changed: $(cat "$POD/cgroup.subtree_control" "$POD/cgroup.type")"

echo "== a hierarchy that does not hold the daemon's cgroup: a clear error"
pin=$H2LB_PIN-other
log=$TB_STATE/logs/h2lb-other.log
nsenter --net="$(tb_netns_path node)" -- \
    sh "$TB_STATE/launch.sh" "$POD" "$OTHER" "$TB_STATE/cgmnt" \
    "$H2LB_BIN" run --listen "$TB_NODE_IP:50052" --backends "$(h2lb_backends)" \
    --pin-dir "$pin" >"$log" 2>&1 </dev/null &
bad=$!
for ((i = 0; i < 100; i++)); do
    kill -0 "$bad" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$bad" 2>/dev/null; then
    kill -TERM "$bad"
    wait "$bad" || true
    fail "h2lb run started with its cgroup out of reach"
fi
rc=0
wait "$bad" || rc=$?
sed 's/^/   /' "$log"
((rc != 0)) || fail "h2lb run exited 0, want a failure"
grep -q "not found under /sys/fs/cgroup" "$log" || fail "no clear error"
for d in "$CG2" "$POD" "$OTHER"; do
    [[ ! -e $d/h2lb-$bad ]] || fail "$d/h2lb-$bad was made"
done
[[ ! -e $pin ]] || {
    rm -rf -- "$pin"
    fail "$pin left behind"
}
echo "PASS"
