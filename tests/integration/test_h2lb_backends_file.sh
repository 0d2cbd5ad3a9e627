#!/usr/bin/env bash
# timeout: 240
#
# test_h2lb_backends_file - the backend set follows --backends-file, and the
# daemon runs under `ip netns exec`.
#
# `ip netns exec` remounts /sys, hiding bpffs and the cgroup hierarchy: the
# daemon mounts what it needs itself. The file starts with two backends;
# rewriting it (as editors do: write elsewhere, rename) adds the other two;
# removing one in a way the file watch cannot see, then SIGHUP, drains it:
# new calls avoid it. SIGTERM stops
# the daemon with exit status 0 and nothing left behind.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"

wait_ready() { # N: until N "ready" lines are in the log, 10 s at most
    local i
    for ((i = 0; i < 100; i++)); do
        (($(grep -c ' ready$' "$(h2lb_log)" || true) >= $1)) && return 0
        sleep 0.1
    done
    fail "fewer than $1 backends ready"
}

tb_up 4
tb_start_greeters
file=$TB_STATE/backends
printf '# two to start with\n%s:50051\n%s:50051\n' "$(tb_backend_ip 1)" \
    "$(tb_backend_ip 2)" >"$file"

tb_spawn node h2lb ip netns exec "$(tb_ns node)" "$H2LB_BIN" run \
    --listen "$H2LB_ADDR" --backends-file "$file"
tb_on_cleanup _h2lb_cleanup
tb_wait_port node "$H2LB_PORT" 20
wait_ready 2
got=$(served_by)
echo "   two in the file: $got"
[[ $got == "backend-1 backend-2" ]] || fail "want backend-1 and backend-2"

for i in 1 2 3 4; do echo "$(tb_backend_ip "$i"):50051"; done >"$file.new"
mv "$file.new" "$file"
wait_ready 4
got=$(served_by)
echo "   four in the file: $got"
[[ $got == "backend-1 backend-2 backend-3 backend-4" ]] || fail "want all four"

# Write the file through a hard link in another directory: the daemon's
# watch on the file's directory does not see that, only SIGHUP makes it
# re-read the file.
daemon=$(pgrep -f "h2lb run --listen $H2LB_ADDR --backends-file $file" | head -1)
mkdir "$TB_STATE/alt"
ln "$file" "$TB_STATE/alt/backends"
for i in 2 3 4; do echo "$(tb_backend_ip "$i"):50051"; done >"$TB_STATE/alt/backends"
sleep 0.5
got=$(served_by)
echo "   file changed unseen: $got"
[[ $got == "backend-1 backend-2 backend-3 backend-4" ]] ||
    fail "the change was seen before SIGHUP: the test proves nothing"
kill -HUP "$daemon"
sleep 0.5
got=$(served_by)
echo "   backend-1 removed: $got"
[[ $got == "backend-2 backend-3 backend-4" ]] || fail "backend-1 still gets calls"
grep -q "removed, draining" "$(h2lb_log)" || fail "no drain logged"

pid=$daemon
kill -TERM "$pid"
for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "daemon did not stop"
wait "$(tb_pid h2lb)" || fail "daemon exited with an error"
grep -q "stopped:" "$(h2lb_log)" || fail "no clean stop logged"
[[ -z $(find /sys/fs/cgroup /run/h2lb-cgroup2 -maxdepth 6 -type d -name "h2lb-$pid" 2>/dev/null || true) ]] ||
    fail "cgroup left behind"
[[ ! -e /run/h2lb-cgroup2 ]] || fail "/run/h2lb-cgroup2 left behind"
echo "PASS: the backend set followed the file, under ip netns exec"
