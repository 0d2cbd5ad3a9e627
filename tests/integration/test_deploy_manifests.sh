#!/usr/bin/env bash
# timeout: 300
#
# test_deploy_manifests - deploy/ renders and every object it holds is valid
# against the Kubernetes API schemas, offline.
#
# Renders with `kubectl kustomize deploy/` (or, where kubectl is missing,
# tests/k8s-validate/render.mjs, which handles the plain resource lists that
# deploy/ keeps to; where both exist their output must agree) and validates
# with tests/k8s-validate/validate.mjs (npm kubernetes-models: the OpenAPI
# schemas, plus TypeScript's excess-property check for unknown fields). A
# deliberately typo'd copy of deploy/ must fail. Then what the issue asks of
# the objects: RBAC is get/list/watch on Services, EndpointSlices and Nodes
# only; the DaemonSet runs on the host network with BPF, NET_ADMIN and
# SYS_ADMIN (not privileged), mounts bpffs and the cgroup hierarchy, gets
# NODE_NAME from the downward API, binds --metrics to the pod's IP
# (POD_IP, downward API) rather than 0.0.0.0, has probes and resource
# requests; the Dockerfile's runtime stage installs the libraries
# build/h2lb links.
# Needs no root and no network namespace.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/test.sh" --no-testbed

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VAL=$ROOT/tests/k8s-validate
PY=${H2LB_PYTHON:-python3}
KUBECTL=${H2LB_KUBECTL:-kubectl} # H2LB_KUBECTL=none: as if it were missing

command -v node >/dev/null || skip "missing command: node"
if [[ ! -d $VAL/node_modules/kubernetes-models || ! -d $VAL/node_modules/typescript ||
    ! -d $VAL/node_modules/yaml ]]; then
    # scripts/setup-deps.sh installs these; try once here too.
    (cd "$VAL" && npm ci --no-audit --no-fund --silent >/dev/null 2>&1) ||
        skip "npm packages of tests/k8s-validate are not installed (npm ci there)"
fi

tmp=$(mktemp -d)
trap 'rm -rf -- "$tmp"' EXIT

# render DIR OUT: kubectl kustomize, cross-checked against render.mjs.
render() {
    node "$VAL/render.mjs" "$1" >"$2.plain" || return 1
    if command -v "$KUBECTL" >/dev/null; then
        "$KUBECTL" kustomize "$1" >"$2" || return 1
        node "$VAL/render.mjs" --same "$2" "$2.plain" ||
            fail "kubectl kustomize and render.mjs disagree on $1"
    else
        cp "$2.plain" "$2"
    fi
}

if command -v "$KUBECTL" >/dev/null; then
    echo "== rendering with kubectl kustomize ($("$KUBECTL" version --client 2>/dev/null | grep -m1 -i kustomize || true))"
else
    echo "== kubectl is not installed: rendering with tests/k8s-validate/render.mjs"
fi
render "$ROOT/deploy" "$tmp/rendered.yaml" || fail "deploy/ does not render"
node "$VAL/validate.mjs" "$tmp/rendered.yaml" --json "$tmp/objects.json" ||
    fail "deploy/ does not validate"

echo "== a typo'd field must fail validation"
typos=(
    "daemonset.yaml|hostNetwork:|hostNetwrok:"
    "daemonset.yaml|containerPort:|containerport:"
    "daemonset.yaml|fieldPath:|feildPath:"
    "clusterrole.yaml|verbs:|verb:"
    "daemonset.yaml|periodSeconds: 10|periodSeconds: ten"
)
for t in "${typos[@]}"; do
    IFS='|' read -r file from to <<<"$t"
    rm -rf "$tmp/typo"
    cp -r "$ROOT/deploy" "$tmp/typo"
    sed -i "s/$from/$to/" "$tmp/typo/$file"
    cmp -s "$ROOT/deploy/$file" "$tmp/typo/$file" && fail "typo '$to' not applied to $file"
    render "$tmp/typo" "$tmp/typo.yaml" || fail "the typo'd copy did not render"
    if node "$VAL/validate.mjs" "$tmp/typo.yaml" >"$tmp/typo.out" 2>&1; then
        fail "'$from' -> '$to' in $file passed validation"
    fi
    echo "   $file: '$to' rejected: $(grep -m1 INVALID "$tmp/typo.out" | cut -c1-110)"
done

echo "== what the objects must say"
"$PY" - "$tmp/objects.json" <<'PY' || fail "the manifests do not say what they must"
import json, sys

objs = json.load(open(sys.argv[1]))
by = {}
for o in objs:
    by.setdefault(o["kind"], []).append(o)

def one(kind):
    assert len(by.get(kind, [])) == 1, "want one %s, got %d" % (kind, len(by.get(kind, [])))
    return by[kind][0]

ns = one("Namespace")["metadata"]["name"]
for o in objs:
    if o["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
        assert o["metadata"].get("namespace") == ns, "%s not in %s" % (o["kind"], ns)
assert one("Namespace")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"

# RBAC: read-only, three resources, nothing more.
role = one("ClusterRole")
granted = set()
for r in role["rules"]:
    assert set(r["verbs"]) == {"get", "list", "watch"}, r
    assert "resourceNames" not in r and "nonResourceURLs" not in r, r
    for g in r["apiGroups"]:
        for res in r["resources"]:
            granted.add((g, res))
assert granted == {("", "services"), ("", "nodes"),
                   ("discovery.k8s.io", "endpointslices")}, granted
sa = one("ServiceAccount")
crb = one("ClusterRoleBinding")
assert crb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                          "kind": "ClusterRole", "name": role["metadata"]["name"]}
assert crb["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                            "namespace": ns}], crb["subjects"]

# The DaemonSet.
ds = one("DaemonSet")
tpl = ds["spec"]["template"]
spec = tpl["spec"]
assert ds["spec"]["selector"]["matchLabels"].items() <= tpl["metadata"]["labels"].items()
assert spec["serviceAccountName"] == sa["metadata"]["name"]
assert spec["hostNetwork"] is True
assert spec["dnsPolicy"] == "ClusterFirstWithHostNet"
assert len(spec["containers"]) == 1
c = spec["containers"][0]
sc = c["securityContext"]
assert not sc.get("privileged", False), "privileged is not needed"
assert set(sc["capabilities"]["add"]) == {"BPF", "NET_ADMIN", "SYS_ADMIN"}, sc["capabilities"]
assert sc["capabilities"]["drop"] == ["ALL"]
env = {e["name"]: e for e in c["env"]}
assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
vols = {v["name"]: v for v in spec["volumes"]}
for path in ("/sys/fs/bpf", "/sys/fs/cgroup"):
    assert path in mounts, "%s is not mounted" % path
    assert vols[mounts[path]]["hostPath"]["path"] == path, vols[mounts[path]]
ports = {p["name"]: p["containerPort"] for p in c["ports"]}
for probe in ("livenessProbe", "readinessProbe"):
    g = c[probe]["httpGet"]
    assert g["path"] == "/healthz" and ports.get(g["port"], g["port"]) == 9464, (probe, g)
# Metrics on the pod's (the node's) IP only, not every address; the
# probes dial that IP by default (no httpGet host).
assert "--metrics" in c["args"] and "$(POD_IP):9464" in c["args"], c["args"]
assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP", env["POD_IP"]
for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
    assert "host" not in c[probe]["httpGet"], (probe, c[probe]["httpGet"])
assert "--kubernetes" in c["args"], c["args"]
req = c["resources"]["requests"]
assert "cpu" in req and "memory" in req, req
assert "memory" in c["resources"]["limits"], c["resources"]
print("   RBAC read-only on services, nodes, endpointslices; DaemonSet: hostNetwork, "
      "caps %s, NODE_NAME, /sys/fs/bpf + /sys/fs/cgroup, probes on :9464"
      % ",".join(sorted(sc["capabilities"]["add"])))
PY

echo "== Dockerfile"
df=$ROOT/deploy/Dockerfile
stages=$(grep -c '^FROM debian:12' "$df")
[[ $stages == 2 ]] || fail "want two debian:12 stages, got $stages"
grep -q '^COPY --from=build /src/build/h2lb ' "$df" || fail "the runtime stage does not copy build/h2lb"
grep -Eq '^RUN .*make .*build/h2lb' "$df" || fail "the build stage does not run make"
# The runtime stage's packages: the words of its RUN lines.
runtime=$(awk '/^FROM/ { n++ } n == 2 && /^(RUN| )/' "$df" | tr ' \\' '\n\n' |
    grep -E '^(lib|zlib|ca-cert)' | sort -u)
echo "   runtime packages: $(echo $runtime)"

# pkg_of FILE: the Debian package that ships FILE (merged /usr or not).
pkg_of() {
    local f c out
    for f in "$1" "$(readlink -f "$1")"; do
        for c in "$f" "${f#/usr}" "/usr$f"; do
            out=$(dpkg -S "$c" 2>/dev/null) || continue
            printf '%s\n' "${out%%:*}"
            return 0
        done
    done
    return 1
}

# Every library the binary links must come from one of them (or libc6).
if [[ -x $ROOT/build/h2lb ]] && command -v readelf >/dev/null && command -v dpkg >/dev/null; then
    ldcache=$(ldconfig -p)
    while read -r lib; do
        # (No early-exiting reader on a pipe: pipefail would see SIGPIPE.)
        path=$(awk -v l="$lib" '$1 == l && /x86-64|x86_64|aarch64/ { print $NF; exit }' <<<"$ldcache")
        [[ -n $path ]] || fail "cannot find $lib"
        pkg=$(pkg_of "$path") || fail "no Debian package ships $path"
        [[ $pkg == libc6 ]] && continue
        grep -qx "$pkg" <<<"$runtime" ||
            fail "build/h2lb needs $lib from $pkg, which the runtime stage does not install"
        echo "   $lib: $pkg"
    done < <(readelf -d "$ROOT/build/h2lb" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
else
    echo "   (build/h2lb not built: library check skipped)"
fi
# Every package named exists in Debian 12 (needs apt lists; offline).
if command -v apt-cache >/dev/null && compgen -G "/var/lib/apt/lists/*Packages*" >/dev/null; then
    pkgs=$(sed -n '/apt-get install/,/rm -rf/p' "$df" | tr ' \\' '\n\n' |
        grep -E '^[a-z0-9][a-z0-9.+-]+$' | grep -vE '^(apt-get|install|rm|rf|y)$' | sort -u)
    # One apt-cache call: "NAME:" then "  Candidate: VERSION" per package.
    have=$(apt-cache policy $pkgs 2>/dev/null |
        awk '/^[^ ]/ { p = $1; sub(":$", "", p) } /Candidate: [0-9]/ { print p }' | sort -u)
    for p in $pkgs; do
        grep -qx "$p" <<<"$have" || fail "Dockerfile installs '$p', which Debian does not have"
    done
    echo "   every package exists in the apt lists: $(echo $pkgs)"
fi
echo "PASS: deploy/ renders, validates offline, and rejects typos"
