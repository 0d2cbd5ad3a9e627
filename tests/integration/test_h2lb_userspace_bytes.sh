#!/usr/bin/env bash
# timeout: 400
#
# test_h2lb_userspace_bytes - after setup, DATA never passes through
# userspace.
#
# 256 MiB of gRPC DATA goes through h2lb (half uploaded with client-streaming
# calls, half downloaded with server-streaming calls). The daemon counts every
# byte it reads (ring buffer events) and writes (injected frames); the kernel
# counts the DATA bytes it forwarded per backend. The daemon's share must stay
# under 1% of the DATA moved.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh"

MIB=$((1 << 20))
tb_up 4
tb_start_greeters
METRICS=$TB_NODE_IP:9464
h2lb_start --backends "$(h2lb_backends)" --metrics "$METRICS"

before=$(h2lb_daemon_stats) before_st=$(h2lb_status_daemon)
# 8 calls x 16 messages x 1 MiB each way.
tb_client --target "$H2LB_ADDR" --mode client-stream --calls 8 --count 16 \
    --payload "$MIB" --concurrency 4 --json >/dev/null || fail "upload failed"
tb_client --target "$H2LB_ADDR" --mode server-stream --calls 8 --count 16 \
    --reply-size "$MIB" --concurrency 4 --json >/dev/null || fail "download failed"
sleep 0.3 # the daemon publishes its counters every 50 ms
after=$(h2lb_daemon_stats) after_st=$(h2lb_status_daemon)
kernel=$(h2lb_map backends)

"$TB_PYTHON" - "$before" "$after" "$kernel" <<'PY' || fail "userspace touched too many bytes"
import json, sys
b, a, k = (json.loads(x) for x in sys.argv[1:4])
moved = sum(e["value"]["bytes_to"] + e["value"]["bytes_from"] for e in k)
read = a["bytes_read"] - b["bytes_read"]
wrote = a["bytes_written"] - b["bytes_written"]
ratio = 100.0 * (read + wrote) / max(moved, 1)
print(f"   DATA forwarded by the kernel: {moved / 2**20:.1f} MiB")
print(f"   daemon read {read} B, wrote {wrote} B: {ratio:.3f}% of the DATA")
assert moved >= 256 * 2**20, "less DATA than sent went through h2lb"
assert ratio < 1.0
PY
# What the daemon read, by event type (`h2lb status -j`): the types add
# up to all of it; /metrics counts them too.
"$TB_PYTHON" - "$before_st" "$after_st" <<'PY' || fail "status: the events by type do not add up"
import json, sys
b, a = (json.loads(x) for x in sys.argv[1:3])
by = {n: v - b["events_by_type"][n] for n, v in a["events_by_type"].items()}
print("   events: " + ", ".join(f"{n} {v}" for n, v in by.items() if v))
assert sum(by.values()) == a["events"] - b["events"], (by, a["events"] - b["events"])
assert by["window"] > 0 and by["data_progress"] > 0, by
PY
[[ $(h2lb_metric "$METRICS" 'daemon_events_total{type="window"}') -gt 0 ]] ||
    fail "/metrics: no window events counted"
h2lb_stop || fail "h2lb did not stop cleanly"
echo "PASS: 256 MiB of DATA moved with the daemon touching under 1% of it"
