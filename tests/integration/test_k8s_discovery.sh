#!/usr/bin/env bash
# timeout: 240
#
# test_k8s_discovery - h2lb's Kubernetes endpoint discovery against a fake
# API server (tests/peers/fake_kube_api.py) in the testbed's node namespace
# at 198.18.1.1:6443, over HTTPS with a kubeconfig.
#
# `h2lb k8s-dump` prints a JSON line per change of the balanced Services and
# their endpoints; the test drives the API server through add, scale-up,
# terminating, removal, a dropped watch connection, bookmarks, and 410 Gone
# (as an ERROR event and as the HTTP status), and after each step waits for
# the expected snapshot. The API server's request counts prove how the
# client got there: a dropped watch resumes from its resourceVersion
# without relisting, a bookmark keeps a watch valid across compaction, and
# a 410 makes it relist. Then: a namespace filter, client-certificate and
# insecure kubeconfigs, a bad token and an untrusted server (no snapshot),
# and zone hints from the Node's label or --node-zone.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh" --no-h2lb

tb_require_cmd ip nsenter openssl "$TB_PYTHON"

H2LB_BIN=${H2LB_BIN:-$TB_ROOT/build/h2lb}
API=$TB_NODE_IP:6443
CTL=$TB_NODE_IP:6444
FAKE=$TB_PEERS/fake_kube_api.py
# libcurl honours proxy variables, as client-go does; not for the testbed.
export NO_PROXY=$TB_NODE_IP no_proxy=$TB_NODE_IP

fail() {
    echo "FAIL: $*" >&2
    if [[ -n ${OUT:-} && -s $OUT ]]; then
        echo "---- last k8s-dump lines ----" >&2
        tail -n 3 "$OUT" >&2
    fi
    exit 1
}

tb_up 1
KDIR=$TB_STATE/kube
OUT=$TB_STATE/dump.jsonl

# `h2lb k8s-dump`, or the same function linked into a small driver while
# the command is not wired into h2lb's CLI.
if "$H2LB_BIN" k8s-dump --help >/dev/null 2>&1; then
    DUMP=("$H2LB_BIN" k8s-dump)
else
    objs=("$TB_ROOT"/build/user/k8s*.o "$TB_ROOT/build/user/log.o")
    [[ -e ${objs[0]} ]] || tb_skip "the k8s objects are not built (make)"
    printf 'int k8s_dump_main(int, char **);\nint main(int c, char **v) { return k8s_dump_main(c - 1, v + 1); }\n' |
        cc -x c - -x none "${objs[@]}" -lcurl -ljson-c -lyaml -lpthread -o "$TB_STATE/k8s-dump" ||
        fail "cannot link the k8s-dump driver"
    DUMP=("$TB_STATE/k8s-dump" k8s-dump)
fi

# ---------------------------------------------------------------- helpers

ctl() {
    tb_exec node "$TB_PYTHON" "$FAKE" ctl --control "$CTL" "$@"
}

# obj svc NS/NAME VIP PORT... [ann:KEY=VALUE]   PORT = name:port[:appProtocol]
# obj slice NS/NAME SVC PORTS EP...   PORTS = name:port[,...]
#                                     EP = addr:ready|draining|gone|unset[@zone,...]
# obj node NAME ZONE
obj() {
    "$TB_PYTHON" - "$@" <<'PY'
import json, sys
kind, args = sys.argv[1], sys.argv[2:]
def ports(specs, with_app):
    out = []
    for s in specs:
        f = s.split(":")
        p = {"protocol": "TCP", "port": int(f[1])}
        if f[0]:
            p["name"] = f[0]
        if with_app:
            p["targetPort"] = int(f[1])
            if len(f) > 2:
                p["appProtocol"] = f[2]
        out.append(p)
    return out
if kind == "svc":
    ns, name = args[0].split("/")
    anns = dict(a[4:].split("=", 1) for a in args[2:] if a.startswith("ann:"))
    o = {"apiVersion": "v1", "kind": "Service",
         "metadata": {"namespace": ns, "name": name, "annotations": anns},
         "spec": {"type": "ClusterIP", "clusterIP": args[1],
                  "clusterIPs": [args[1]], "ipFamilies": ["IPv4"],
                  "ports": ports([a for a in args[2:]
                                  if not a.startswith("ann:")], True)}}
elif kind == "slice":
    ns, name = args[0].split("/")
    conds = {"ready": (True, True, False), "draining": (False, True, True),
             "gone": (False, False, True)}
    eps = []
    for e in args[3:]:
        e, _, zones = e.partition("@")
        addr, state = e.split(":")
        ep = {"addresses": [addr], "nodeName": "node-1"}
        if state != "unset":
            r, s, t = conds[state]
            ep["conditions"] = {"ready": r, "serving": s, "terminating": t}
        if zones:
            ep["hints"] = {"forZones": [{"name": z} for z in zones.split(",")]}
        eps.append(ep)
    o = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"namespace": ns, "name": name, "labels": {
             "kubernetes.io/service-name": args[1],
             "endpointslice.kubernetes.io/managed-by":
                 "endpointslice-controller.k8s.io"}},
         "addressType": "IPv4",
         "ports": ports(args[2].split(","), False), "endpoints": eps}
elif kind == "node":
    o = {"apiVersion": "v1", "kind": "Node",
         "metadata": {"name": args[0],
                      "labels": {"topology.kubernetes.io/zone": args[1],
                                 "kubernetes.io/hostname": args[0]}}}
print(json.dumps(o))
PY
}

apply() {
    ctl /apply "$(obj "$@")" >/dev/null || fail "apply $*"
}

delete() {
    ctl /delete "{\"kind\": \"$1\", \"namespace\": \"${2%/*}\", \"name\": \"${2#*/}\"}" \
        >/dev/null || fail "delete $*"
}

# api_stat KEY.RESOURCE: a request count of the API server (e.g. list.services).
api_stat() {
    ctl /stats | "$TB_PYTHON" -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[k]
print(v)' "$1"
}

# The snapshot of a JSON line as "ns/name:port=addr:port:state,...;...".
summarize() {
    "$TB_PYTHON" -c '
import json, sys
line = sys.stdin.read().strip()
if not line:
    sys.exit(0)
s = json.loads(line)
print(";".join("%s/%s:%d=%s" % (v["namespace"], v["name"], v["port"],
      ",".join("%s:%d:%s" % (e["addr"], e["port"], e["state"])
               for e in v["endpoints"])) for v in s["services"]))'
}

# expect WHAT SUMMARY: wait (<= 10 s) until the last line printed says so.
expect() {
    local what=$1 want=$2 got='' i
    for ((i = 0; i < 100; i++)); do
        got=$(tail -n 1 "$OUT" 2>/dev/null | summarize) || got=
        if [[ $got == "$want" ]]; then
            echo "ok: $what"
            return 0
        fi
        sleep 0.1
    done
    echo "want: $want" >&2
    echo "got:  $got" >&2
    fail "$what"
}

# once ARGS...: one snapshot from a fresh k8s-dump --once, summarized.
once() {
    local line
    line=$(tb_run node env -u NODE_NAME "${DUMP[@]}" --once --timeout 10 "$@" \
        2>>"$TB_STATE/logs/k8s-dump-once.log") || return 1
    summarize <<<"$line"
}

# ---------------------------------------------------------------- setup

mkdir -p "$KDIR"
tb_spawn node kubeapi "$TB_PYTHON" "$FAKE" serve --listen "$API" \
    --control "$CTL" --dir "$KDIR" --page-size 1
api_pid=$TB_LAST_PID
tb_wait_port node 6444 30 "$api_pid" || fail "the fake API server did not start"
for ((i = 0; i < 100; i++)); do
    grep -q '^fake kube-apiserver on' "$TB_STATE/logs/kubeapi.log" && break
    sleep 0.1
done
[[ -s $KDIR/kubeconfig ]] || fail "no kubeconfig from the fake API server"

G=198.18.2
apply svc default/web 198.18.100.9 http:80
apply slice default/web-1 web http:8080 $G.20:ready
apply svc default/greeter 198.18.100.1 grpc:50051:grpc metrics:9090
apply slice default/greeter-a greeter grpc:50052,metrics:9091 $G.11:ready $G.12:unset
apply svc other/annotated 198.18.100.2 h2:8080 ann:h2lb.io/enabled=true

tb_spawn node k8s-dump bash -c 'exec "$@" >"$0"' "$OUT" \
    "${DUMP[@]}" --kubeconfig "$KDIR/kubeconfig" -v
dump_pid=$TB_LAST_PID

# ---------------------------------------------------------------- steps

# The list is paged (the server caps pages at one object), the unbalanced
# Service is not there, the target port comes from the slice by name.
expect "initial list" \
    "default/greeter:50051=$G.11:50052:ready,$G.12:50052:ready;other/annotated:8080="
(($(api_stat list.services) == 3 && $(api_stat list.endpointslices) == 2)) ||
    fail "want 3 + 2 list pages, got $(api_stat list.services) + $(api_stat list.endpointslices)"

apply svc default/echo 198.18.100.3 :80:kubernetes.io/h2c
apply slice default/echo-1 echo :8080 $G.21:ready
expect "add an h2c service" \
    "default/echo:80=$G.21:8080:ready;default/greeter:50051=$G.11:50052:ready,$G.12:50052:ready;other/annotated:8080="

apply slice default/greeter-b greeter grpc:50052 $G.13:ready $G.14:ready
expect "scale up (a second slice)" \
    "default/echo:80=$G.21:8080:ready;default/greeter:50051=$G.11:50052:ready,$G.12:50052:ready,$G.13:50052:ready,$G.14:50052:ready;other/annotated:8080="

apply slice default/greeter-a greeter grpc:50052,metrics:9091 $G.11:draining $G.12:gone
expect "terminating: serving drains, not serving goes" \
    "default/echo:80=$G.21:8080:ready;default/greeter:50051=$G.11:50052:draining,$G.13:50052:ready,$G.14:50052:ready;other/annotated:8080="

delete EndpointSlice default/greeter-a
delete Service default/echo
expect "removal of a slice and a service" \
    "default/greeter:50051=$G.13:50052:ready,$G.14:50052:ready;other/annotated:8080="

# A watch connection dropped mid-stream: the client resumes from its
# resourceVersion and gets what changed meanwhile, without relisting.
lists=$(($(api_stat list.services) + $(api_stat list.endpointslices)))
watches=$(($(api_stat watch.services) + $(api_stat watch.endpointslices)))
ctl '/drop?mode=abrupt' >/dev/null
apply slice default/greeter-b greeter grpc:50052 $G.13:ready $G.14:ready $G.15:ready
expect "dropped connection: resumed watch" \
    "default/greeter:50051=$G.13:50052:ready,$G.14:50052:ready,$G.15:50052:ready;other/annotated:8080="
(($(api_stat list.services) + $(api_stat list.endpointslices) == lists)) ||
    fail "the client relisted after a dropped connection"
(($(api_stat watch.services) + $(api_stat watch.endpointslices) >= watches + 2)) ||
    fail "the client did not watch again"

# Bookmarks: only a Service changes, then a bookmark; history is compacted
# up to now and the watches dropped. The slices watch resumes from the
# bookmark's resourceVersion, not its last event's, so nothing is gone.
apply svc other/annotated 198.18.100.2 h2:8080 h2b:8081 ann:h2lb.io/enabled=true
rv=$(ctl /bookmark | "$TB_PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["rv"])')
for ((i = 0; i < 100; i++)); do
    grep -q "endpointslices: BOOKMARK, resourceVersion $rv\$" "$TB_STATE/logs/k8s-dump.log" && break
    sleep 0.1
done
((i < 100)) || fail "no bookmark at $rv reached the client"
gone=$(($(api_stat watch_gone.services) + $(api_stat watch_gone.endpointslices)))
ctl '/compact?bump=0&gone=http' >/dev/null
ctl '/drop?mode=abrupt' >/dev/null
apply slice default/greeter-b greeter grpc:50052 $G.13:ready $G.14:ready
expect "bookmark kept the watch valid across compaction" \
    "default/greeter:50051=$G.13:50052:ready,$G.14:50052:ready;other/annotated:8080=;other/annotated:8081="
(($(api_stat watch_gone.services) + $(api_stat watch_gone.endpointslices) == gone)) ||
    fail "a watch got 410 although bookmarks kept it current"
(($(api_stat list.services) + $(api_stat list.endpointslices) == lists)) ||
    fail "the client relisted after a bookmark"

# 410 as an ERROR event in the stream: changes lost to compaction are
# only seen by relisting, and the relist replaces (greeter-b is gone).
ctl '/compact?bump=1&gone=event' "{\"delete\": [{\"kind\": \"EndpointSlice\", \"name\": \"greeter-b\"}],
    \"apply\": [$(obj slice default/greeter-c greeter grpc:50052 $G.16:ready)]}" >/dev/null
ctl '/drop?mode=gone' >/dev/null
expect "410 ERROR event: relisted" \
    "default/greeter:50051=$G.16:50052:ready;other/annotated:8080=;other/annotated:8081="
lists2=$(($(api_stat list.services) + $(api_stat list.endpointslices)))
((lists2 > lists)) || fail "no relist after a 410 event"

# 410 as the HTTP status of the watch request.
ctl '/compact?bump=1&gone=http' "{\"apply\": [$(obj slice default/greeter-c greeter grpc:50052 $G.16:draining $G.17:ready)]}" >/dev/null
ctl '/drop?mode=abrupt' >/dev/null
expect "HTTP 410: relisted" \
    "default/greeter:50051=$G.16:50052:draining,$G.17:50052:ready;other/annotated:8080=;other/annotated:8081="
(($(api_stat list.services) + $(api_stat list.endpointslices) > lists2)) ||
    fail "no relist after HTTP 410"
(($(api_stat watch_gone.services) + $(api_stat watch_gone.endpointslices) > gone)) ||
    fail "the server never answered 410"

# ---------------------------------------------------------------- one-shots

got=$(once --kubeconfig "$KDIR/kubeconfig" --namespace other) || fail "k8s-dump -n other"
[[ $got == "other/annotated:8080=;other/annotated:8081=" ]] || fail "namespace filter: $got"
echo "ok: namespace filter"

got=$(once --kubeconfig "$KDIR/kubeconfig-cert" --namespace other) ||
    fail "client certificate kubeconfig"
[[ $got == "other/annotated:8080=;other/annotated:8081=" ]] || fail "client cert: $got"
echo "ok: client certificate and a CA file"

sed -e '/certificate-authority-data/d' \
    -e 's|^\(    server: .*\)$|\1\n    insecure-skip-tls-verify: true|' \
    "$KDIR/kubeconfig" >"$KDIR/kubeconfig-insecure"
got=$(once --kubeconfig "$KDIR/kubeconfig-insecure" --namespace other) ||
    fail "insecure-skip-tls-verify kubeconfig"
echo "ok: insecure-skip-tls-verify"

unauth=$(api_stat unauthorized)
sed 's|token: .*|token: wrong|' "$KDIR/kubeconfig" >"$KDIR/kubeconfig-badtoken"
if once --kubeconfig "$KDIR/kubeconfig-badtoken" --timeout 3 >/dev/null; then
    fail "a bad token got a snapshot"
fi
(($(api_stat unauthorized) > unauth)) || fail "the bad token was not refused"
echo "ok: a bad token gets nothing"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$KDIR/other-ca.key" -out "$KDIR/other-ca.crt" -days 1 \
    -subj /CN=other-ca 2>/dev/null
sed -e '/certificate-authority-data/d' \
    -e "s|^\(    server: .*\)\$|\1\n    certificate-authority: other-ca.crt|" \
    "$KDIR/kubeconfig" >"$KDIR/kubeconfig-otherca"
if once --kubeconfig "$KDIR/kubeconfig-otherca" --timeout 3 >/dev/null; then
    fail "a server the CA does not vouch for was trusted"
fi
echo "ok: an untrusted server certificate gets nothing"

# Zone hints (kube-proxy's rules): from the Node's label, from --node-zone;
# no zone, or an unreadable Node, uses every ready endpoint.
apply node node-1 za
apply svc zones/zs 198.18.100.4 grpc:80:grpc
apply slice zones/zs-1 zs grpc:8080 $G.31:ready@za $G.32:ready@zb $G.33:draining@za
z="zones/zs:80="
got=$(once --kubeconfig "$KDIR/kubeconfig" -n zones --node-name node-1) || fail "zone from the Node"
[[ $got == "$z$G.31:8080:ready,$G.32:8080:other-zone,$G.33:8080:draining" ]] ||
    fail "zone from the Node: $got"
got=$(once --kubeconfig "$KDIR/kubeconfig" -n zones --node-zone zb) || fail "--node-zone"
[[ $got == "$z$G.31:8080:other-zone,$G.32:8080:ready,$G.33:8080:draining" ]] ||
    fail "--node-zone: $got"
got=$(once --kubeconfig "$KDIR/kubeconfig" -n zones --node-zone zc) || fail "zone without hints"
[[ $got == "$z$G.31:8080:ready,$G.32:8080:ready,$G.33:8080:draining" ]] ||
    fail "no endpoint hinted for the zone: $got"
got=$(once --kubeconfig "$KDIR/kubeconfig" -n zones) || fail "no zone"
[[ $got == "$z$G.31:8080:ready,$G.32:8080:ready,$G.33:8080:draining" ]] ||
    fail "no zone: $got"
got=$(once --kubeconfig "$KDIR/kubeconfig" -n zones --node-name no-such-node) || fail "missing node"
[[ $got == "$z$G.31:8080:ready,$G.32:8080:ready,$G.33:8080:draining" ]] ||
    fail "missing Node: $got"
echo "ok: zone hints"

# ---------------------------------------------------------------- the end

# Every line was a change: seq counts up by one and no two lines agree.
"$TB_PYTHON" - "$OUT" <<'PY' || fail "k8s-dump printed a line that was not a change"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
for a, b in zip(lines, lines[1:]):
    assert b["seq"] == a["seq"] + 1, (a["seq"], b["seq"])
    assert a["services"] != b["services"], a["seq"]
print("   %d snapshots" % len(lines))
PY

# SIGTERM stops the discovery thread promptly and the command exits 0.
kill -TERM "$dump_pid"
for ((i = 0; i < 50; i++)); do
    kill -0 "$dump_pid" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$dump_pid" 2>/dev/null && fail "k8s-dump did not stop within 5 s"
wait "$dump_pid" || fail "k8s-dump exited with $?"
echo "PASS: discovery followed add, scale-up, terminating, removal, a dropped watch, bookmarks and 410s"
