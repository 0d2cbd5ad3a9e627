#!/usr/bin/env bash
# timeout: 200
#
# test_h2lb_queued_request - a request queued before h2lb could parse it is
# answered at once.
#
# A client that writes its preface, SETTINGS and a request right after
# connecting (often before the daemon's accept()) and then stays quiet:
# bytes queued before a socket enters the sockhash are parsed only when
# another segment arrives (docs/kernel-facts.md K8), and this client sends
# none by itself. The daemon sets SO_RCVLOWAT after the insert, which runs
# the parser over them. Every one of 20 such requests must be answered
# within 50 ms, less than the watchdog's two 50 ms ticks, and the watchdog
# must not have been needed. (Against the build before, 19 of 20 waited
# for the watchdog's PING, 0.1 s each.)
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"

tb_up 2
tb_start_nghttpd
H2LB_EXPECT_READY=2 h2lb_start --backends "$(tb_backend_ip 1):8080,$(tb_backend_ip 2):8080"

tb_run cli "$TB_PYTHON" "$TB_PEERS/quiet_client.py" --target "$H2LB_ADDR" \
    --count 20 --timeout 3 >"$TB_STATE/quiet" || fail "quiet client crashed"
sleep 0.2
pings=$(h2lb_daemon_stats | "$TB_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["watchdog_pings"])')
"$TB_PYTHON" - "$TB_STATE/quiet" "$pings" <<'PY' || fail "a quiet client's request hung"
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
slow = [r for r in runs if r["status"] != "ok" or r["seconds"] > 0.05]
print("   %d requests, slowest %.3fs, watchdog PINGs: %s"
      % (len(runs), max(r["seconds"] for r in runs), sys.argv[2]))
assert len(runs) == 20 and not slow, slow
PY
((pings == 0)) || fail "the watchdog had to draw out $pings queued request(s)"
h2lb_stop || fail "h2lb did not stop cleanly"
echo "PASS: requests queued before the insert were parsed at once"
