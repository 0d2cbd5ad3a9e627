#!/usr/bin/env bash
# timeout: 300
#
# test_h2lb_failover - a backend killed mid-call (SIGKILL).
#
# Only the calls it held fail, each with gRPC UNAVAILABLE (status 14) and
# promptly: no hang and no clean-looking end of stream. The same channel's
# next calls succeed on the other backends, and the restarted backend gets
# calls again within 1.5 s (retries back off from 200 ms to 1 s).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"

N=4
VICTIM=2
tb_up "$N"
tb_start_greeters
h2lb_start

victim_pid=$(tb_pid "greeter-b$VICTIM")
restart="H2LB_TB=$TB_PREFIX; source $TB_ROOT/tests/lib/testbed.sh; \
tb_spawn b$VICTIM greeter-b$VICTIM-again $TB_PYTHON $TB_PEERS/greeter_server.py \
--name backend-$VICTIM --port $TB_GREETER_PORT && \
tb_wait_port b$VICTIM $TB_GREETER_PORT 20"

# (the client runs $restart, which needs the testbed's name)
out=$(export TB_PREFIX H2LB_TB=$TB_PREFIX && tb_run cli "$TB_PYTHON" \
    "$TB_PEERS/failover_client.py" --target "$H2LB_ADDR" \
    --victim "backend-$VICTIM" --victim-pid "$victim_pid" \
    --restart "$restart" --calls 40 --delay-ms 3000) ||
    fail "failover client failed: $out"
echo "   $out"

"$TB_PYTHON" - "$out" <<'PY' || fail "failover behaviour is wrong (see above)"
import json, sys
r = json.loads(sys.argv[1])
p1, p2 = r["phase1"], r["phase2"]
# Least-streams puts ~10 of the 40 slow calls on each backend.
assert p1["failed"] >= 5, "the victim's calls did not fail"
assert p1["ok"] + p1["failed"] == 40, p1
assert p1["ok_on_victim"] == 0, p1
assert p1["codes"] == ["UNAVAILABLE"], "want only UNAVAILABLE, got %s" % p1["codes"]
assert p1["max_failed_s"] < 2.5, "failed calls waited %.1fs: not prompt" % p1["max_failed_s"]
assert p2["errors"] == 0, p2
assert "backend-2" not in p2["by_backend"], p2
assert len(p2["by_backend"]) == 3, p2
# Retries back off from 200 ms to 1 s (+-20%, user/backoff.h).
assert r["restart_s"] is not None and r["restart_s"] <= 1.5, "restarted backend got no call within 1.5 s: %s" % r["restart_s"]
print("   phase 1: %d ok, %d UNAVAILABLE; phase 2: %s; back after %.3fs"
      % (p1["ok"], p1["failed"], p2["by_backend"], r["restart_s"]))
PY

h2lb_stop || fail "h2lb did not stop cleanly"
echo "PASS: a killed backend failed only its own calls, with UNAVAILABLE"
