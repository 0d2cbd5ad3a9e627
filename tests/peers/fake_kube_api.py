#!/usr/bin/env python3
"""fake_kube_api.py - a Kubernetes API server for h2lb's discovery tests.

Speaks the list/watch protocol over HTTPS for Services and
discovery.k8s.io/v1 EndpointSlices (all namespaces or one), and GET of a
Node, in the API server's real JSON formats: lists with
metadata.resourceVersion and limit/continue paging, watch streams as
chunked newline-separated {"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR,
"object": ...} events, 410 Gone for compacted resourceVersions (as an
ERROR event in the stream, as the real server does, or as the HTTP status).

    fake_kube_api.py serve --listen ADDR:PORT --control ADDR:PORT --dir DIR
                           [--token TOKEN] [--page-size N]

At start it makes a CA, a server certificate for ADDR and a client
certificate with the openssl CLI, and writes into DIR: ca.crt, client.crt,
client.key, and two kubeconfigs: `kubeconfig` (bearer token, CA inline)
and `kubeconfig-cert` (client certificate inline, CA as a file path).
Requests need the bearer token or a client certificate from that CA.

The test drives it through a plain-HTTP control port:

    POST /apply            body: an object or a list of objects (Service,
                           EndpointSlice, Node); ADDED or MODIFIED events
    POST /delete           body: {"kind", "namespace", "name"}; DELETED
    POST /bookmark         a BOOKMARK at the current resourceVersion to
                           every open watch that allows bookmarks
    POST /compact?bump=1&gone=event|http
                           body (optional): {"apply": [...], "delete":
                           [...]} changed silently, as if their events were
                           lost to compaction; then history before the
                           current resourceVersion (plus one if bump=1) is
                           gone: watches from older versions get 410, as an
                           ERROR event (gone=event) or HTTP 410 (gone=http)
    POST /drop?mode=abrupt|gone
                           end every open watch: abrupt closes the TCP
                           connection mid-stream; gone sends an ERROR 410
                           event and ends the stream
    GET  /stats            request counts per resource and open watches

`fake_kube_api.py ctl --control ADDR:PORT PATH [BODY|-]` posts to it
(GET for /stats), printing the answer.
"""

import argparse
import base64
import bisect
import copy
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# resource -> (kind, list kind, apiVersion, path prefix)
RESOURCES = {
    "services": ("Service", "ServiceList", "v1", "/api/v1"),
    "endpointslices": ("EndpointSlice", "EndpointSliceList",
                       "discovery.k8s.io/v1", "/apis/discovery.k8s.io/v1"),
}
KIND_TO_RES = {v[0]: k for k, v in RESOURCES.items()}


def status(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": message, "reason": reason,
            "code": code}


class Store:
    """Objects, the global resourceVersion, and per-resource history."""

    def __init__(self):
        self.cond = threading.Condition()
        self.rv = 1000
        self.objs = {r: {} for r in RESOURCES}
        self.nodes = {}
        self.history = {r: [] for r in RESOURCES}   # [(rv, type, obj)]
        self.floor = 0          # watches from rv < floor: 410
        self.gone_mode = "event"
        self.drop_gen = 0
        self.drop_mode = "abrupt"
        self.bookmark_gen = 0
        self.pages = {}         # continue token -> (rv, res, remaining)
        self.stats = {"list": {r: 0 for r in RESOURCES},
                      "watch": {r: 0 for r in RESOURCES},
                      "watch_gone": {r: 0 for r in RESOURCES},
                      "open_watches": {r: 0 for r in RESOURCES},
                      "node_get": 0, "unauthorized": 0}

    def _stamp(self, obj):
        self.rv += 1
        md = obj.setdefault("metadata", {})
        md["resourceVersion"] = str(self.rv)
        md.setdefault("uid", str(uuid.uuid4()))
        md.setdefault("creationTimestamp",
                      time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        md["generation"] = md.get("generation", 0) + 1
        return self.rv

    def _apply(self, obj, record):
        obj = copy.deepcopy(obj)
        kind = obj.get("kind")
        md = obj.setdefault("metadata", {})
        if kind == "Node":
            self._stamp(obj)
            self.nodes[md["name"]] = obj
            return
        res = KIND_TO_RES.get(kind)
        if res is None:
            raise ValueError("unsupported kind %r" % kind)
        obj["apiVersion"] = RESOURCES[res][2]
        md.setdefault("namespace", "default")
        key = (md["namespace"], md["name"])
        old = self.objs[res].get(key)
        if old is not None:
            md["uid"] = old["metadata"]["uid"]
            md["creationTimestamp"] = old["metadata"]["creationTimestamp"]
            md["generation"] = old["metadata"].get("generation", 1)
        rv = self._stamp(obj)
        self.objs[res][key] = obj
        if record:
            self.history[res].append(
                (rv, "MODIFIED" if old else "ADDED", copy.deepcopy(obj)))

    def _delete(self, kind, ns, name, record):
        res = KIND_TO_RES[kind]
        obj = self.objs[res].pop((ns, name), None)
        if obj is None:
            raise KeyError("%s %s/%s not found" % (kind, ns, name))
        rv = self._stamp(obj)
        if record:
            self.history[res].append((rv, "DELETED", copy.deepcopy(obj)))

    def apply(self, objs, record=True):
        with self.cond:
            for o in objs:
                self._apply(o, record)
            self.cond.notify_all()

    def delete(self, kind, ns, name, record=True):
        with self.cond:
            self._delete(kind, ns, name, record)
            self.cond.notify_all()

    def compact(self, body, bump, gone):
        with self.cond:
            for o in body.get("apply", []):
                self._apply(o, False)
            for d in body.get("delete", []):
                self._delete(d["kind"], d.get("namespace", "default"),
                             d["name"], False)
            if bump:
                self.rv += 1
            self.floor = self.rv
            self.gone_mode = gone
            for res in RESOURCES:
                self.history[res] = [e for e in self.history[res]
                                     if e[0] > self.floor]
            self.pages.clear()   # continue tokens expire too
            self.cond.notify_all()

    def drop(self, mode):
        with self.cond:
            self.drop_gen += 1
            self.drop_mode = mode
            self.cond.notify_all()

    def bookmark(self):
        with self.cond:
            self.bookmark_gen += 1
            self.cond.notify_all()


def gone_message(rv, floor):
    return "too old resource version: %s (%d)" % (rv, floor)


class APIHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-kube-apiserver"

    def log_message(self, fmt, *args):
        sys.stderr.write("api: %s\n" % (fmt % args))

    def send_json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def authorized(self):
        auth = self.headers.get("Authorization", "")
        if auth == "Bearer " + self.server.token:
            return True
        try:
            cert = self.connection.getpeercert()
        except (AttributeError, ValueError):
            cert = None
        return bool(cert)   # verified against our CA by the TLS layer

    def do_GET(self):
        st = self.server.store
        if not self.authorized():
            with st.cond:
                st.stats["unauthorized"] += 1
            self.send_json(401, status(401, "Unauthorized", "Unauthorized"))
            return
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        parts = url.path.strip("/").split("/")
        if parts[:3] == ["api", "v1", "nodes"] and len(parts) == 4:
            return self.get_node(parts[3])
        res, ns = self.parse_path(parts)
        if res is None:
            self.send_json(404, status(404, "NotFound",
                                       "the server could not find the requested resource"))
            return
        if q.get("watch") in ("1", "true"):
            self.watch(res, ns, q)
        else:
            self.list(res, ns, q)

    @staticmethod
    def parse_path(parts):
        for res, (_, _, _, prefix) in RESOURCES.items():
            pre = prefix.strip("/").split("/")
            n = len(pre)
            if parts[:n] != pre:
                continue
            rest = parts[n:]
            if rest == [res]:
                return res, None
            if len(rest) == 3 and rest[0] == "namespaces" and rest[2] == res:
                return res, rest[1]
        return None, None

    def get_node(self, name):
        st = self.server.store
        with st.cond:
            st.stats["node_get"] += 1
            node = copy.deepcopy(st.nodes.get(name))
        if node is None:
            self.send_json(404, status(404, "NotFound",
                                       'nodes "%s" not found' % name))
        else:
            self.send_json(200, node)

    def list(self, res, ns, q):
        st = self.server.store
        kind, list_kind, api_version, _ = RESOURCES[res]
        limit = int(q.get("limit", "0") or 0)
        cap = self.server.page_size
        if cap and (not limit or limit > cap):
            limit = cap
        with st.cond:
            st.stats["list"][res] += 1
            token = q.get("continue")
            if token:
                page = st.pages.pop(token, None)
                if page is None:
                    self.send_json(410, status(
                        410, "Expired",
                        "The provided continue parameter is too old"))
                    return
                rv, items = page
            else:
                rv = st.rv
                items = [copy.deepcopy(o) for k, o in
                         sorted(st.objs[res].items())
                         if ns is None or k[0] == ns]
            md = {"resourceVersion": str(rv)}
            if limit and len(items) > limit:
                token = base64.urlsafe_b64encode(os.urandom(12)).decode()
                st.pages[token] = (rv, items[limit:])
                items = items[:limit]
                md["continue"] = token
        for o in items:   # items of a list carry no kind/apiVersion
            o.pop("kind", None)
            o.pop("apiVersion", None)
        self.send_json(200, {"kind": list_kind, "apiVersion": api_version,
                             "metadata": md, "items": items})

    def chunk(self, obj):
        data = json.dumps(obj).encode() + b"\n"
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_chunks(self):
        self.wfile.write(b"0\r\n\r\n")

    def watch(self, res, ns, q):
        st = self.server.store
        bookmarks = q.get("allowWatchBookmarks") in ("1", "true")
        timeout = int(q.get("timeoutSeconds", "1800"))
        deadline = time.monotonic() + min(timeout, 1800)
        try:
            since = int(q.get("resourceVersion", "0") or 0)
        except ValueError:
            self.send_json(400, status(400, "BadRequest",
                                       "bad resourceVersion"))
            return
        with st.cond:
            st.stats["watch"][res] += 1
            stale = since < st.floor
            gone_mode = st.gone_mode
            floor = st.floor
            if stale:
                st.stats["watch_gone"][res] += 1
            drop_gen, bm_gen = st.drop_gen, st.bookmark_gen
            if since == 0:
                since = st.rv
        if stale and gone_mode == "http":
            self.send_json(410, status(410, "Expired",
                                       gone_message(since, floor)))
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if stale:
            self.chunk({"type": "ERROR", "object": status(
                410, "Expired", gone_message(since, floor))})
            self.end_chunks()
            return
        with st.cond:
            st.stats["open_watches"][res] += 1
        try:
            self.stream(res, ns, since, bookmarks, deadline, drop_gen,
                        bm_gen)
        finally:
            with st.cond:
                st.stats["open_watches"][res] -= 1

    def stream(self, res, ns, since, bookmarks, deadline, drop_gen, bm_gen):
        st = self.server.store
        last = since
        while True:
            with st.cond:
                if not self.news(res, last, drop_gen, bm_gen):
                    st.cond.wait(0.5)
                hist = st.history[res]
                events = hist[bisect.bisect_right([e[0] for e in hist],
                                                  last):]
                dropped = st.drop_gen != drop_gen
                drop_mode = st.drop_mode
                bm = st.bookmark_gen != bm_gen
                bm_gen = st.bookmark_gen
                cur = st.rv
            for rv, typ, obj in events:
                last = rv
                if ns is None or obj["metadata"]["namespace"] == ns:
                    self.chunk({"type": typ, "object": obj})
            if dropped:
                if drop_mode == "gone":
                    self.chunk({"type": "ERROR", "object": status(
                        410, "Expired", gone_message(last, cur))})
                    self.end_chunks()
                else:
                    # Mid-stream, no final chunk: the client sees a
                    # broken transfer.
                    self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            if bm and bookmarks:
                kind, _, api_version, _ = RESOURCES[res]
                self.chunk({"type": "BOOKMARK", "object": {
                    "kind": kind, "apiVersion": api_version,
                    "metadata": {"resourceVersion": str(cur)}}})
                last = max(last, cur)
            if time.monotonic() >= deadline:
                self.end_chunks()
                return

    def news(self, res, last, drop_gen, bm_gen):
        """Anything to send? (Called with the store's lock held.)"""
        st = self.server.store
        hist = st.history[res]
        return bool(hist and hist[-1][0] > last) or \
            st.drop_gen != drop_gen or st.bookmark_gen != bm_gen


class ControlHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("control: %s\n" % (fmt % args))

    def reply(self, code, obj):
        body = json.dumps(obj).encode() + b"\n"
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        st = self.server.store
        if self.path == "/stats":
            with st.cond:
                out = copy.deepcopy(st.stats)
                out["rv"] = st.rv
            self.reply(200, out)
        elif self.path == "/healthz":
            self.reply(200, {"ok": True})
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self):
        st = self.server.store
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        n = int(self.headers.get("Content-Length", "0") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            body = json.loads(raw) if raw.strip() else {}
            if url.path == "/apply":
                st.apply(body if isinstance(body, list) else [body])
            elif url.path == "/delete":
                st.delete(body["kind"], body.get("namespace", "default"),
                          body["name"])
            elif url.path == "/bookmark":
                st.bookmark()
            elif url.path == "/compact":
                st.compact(body, q.get("bump", "1") == "1",
                           q.get("gone", "event"))
            elif url.path == "/drop":
                st.drop(q.get("mode", "abrupt"))
            else:
                self.reply(404, {"error": "not found"})
                return
        except (ValueError, KeyError, TypeError) as e:
            self.reply(400, {"error": str(e)})
            return
        with st.cond:
            rv = st.rv
        self.reply(200, {"ok": True, "rv": rv})


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def make_certs(d, ip):
    """A CA, a server certificate for ip, a client certificate."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
          "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", f"{d}/ca.key", "-out",
            f"{d}/ca.crt", "-days", "2", "-subj", "/CN=fake-kube-ca")
    for name, ext in (
            ("server", f"subjectAltName=IP:{ip}\nextendedKeyUsage=serverAuth"),
            ("client", "extendedKeyUsage=clientAuth")):
        with open(f"{d}/{name}.ext", "w") as f:
            f.write("basicConstraints=CA:FALSE\n" + ext + "\n")
        openssl("req", *ec, "-keyout", f"{d}/{name}.key", "-out",
                f"{d}/{name}.csr", "-subj",
                f"/O=system:masters/CN=fake-{name}")
        openssl("x509", "-req", "-in", f"{d}/{name}.csr", "-CA",
                f"{d}/ca.crt", "-CAkey", f"{d}/ca.key", "-CAcreateserial",
                "-days", "2", "-out", f"{d}/{name}.crt", "-extfile",
                f"{d}/{name}.ext")


def b64file(path):
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode()


def write_kubeconfigs(d, server, token):
    """YAML as kind and kubectl write it."""
    common = f"""apiVersion: v1
kind: Config
preferences: {{}}
current-context: fake
contexts:
- context:
    cluster: fake
    user: fake-user
  name: fake
"""
    with open(f"{d}/kubeconfig", "w") as f:
        f.write(common + f"""clusters:
- cluster:
    certificate-authority-data: {b64file(f"{d}/ca.crt")}
    server: {server}
  name: fake
users:
- name: fake-user
  user:
    token: {token}
""")
    with open(f"{d}/kubeconfig-cert", "w") as f:
        f.write(common + f"""clusters:
- cluster:
    certificate-authority: ca.crt
    server: {server}
  name: fake
users:
- name: fake-user
  user:
    client-certificate-data: {b64file(f"{d}/client.crt")}
    client-key-data: {b64file(f"{d}/client.key")}
""")


def split_addr(s):
    host, _, port = s.rpartition(":")
    return host, int(port)


def serve(args):
    os.makedirs(args.dir, exist_ok=True)
    host, port = split_addr(args.listen)
    make_certs(args.dir, host)
    store = Store()

    api = ThreadingHTTPServer((host, port), APIHandler)
    api.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(f"{args.dir}/server.crt", f"{args.dir}/server.key")
    ctx.load_verify_locations(f"{args.dir}/ca.crt")
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])
    api.socket = ctx.wrap_socket(api.socket, server_side=True)
    api.store, api.token, api.page_size = store, args.token, args.page_size

    ctl = ThreadingHTTPServer(split_addr(args.control), ControlHandler)
    ctl.daemon_threads = True
    ctl.store = store

    write_kubeconfigs(args.dir, f"https://{host}:{port}", args.token)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    print("fake kube-apiserver on https://%s:%d, control on %s" %
          (host, port, args.control), flush=True)
    ctl.serve_forever()


def ctl(args):
    url = "http://%s%s" % (args.control, args.path)
    data = None
    if args.body is not None:
        data = (sys.stdin.read() if args.body == "-" else args.body).encode()
    if data is None and args.path != "/stats":
        data = b""
    req = urllib.request.Request(url, data=data, method="GET"
                                 if data is None else "POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            sys.stdout.write(r.read().decode())
    except urllib.error.HTTPError as e:
        sys.stderr.write(e.read().decode())
        sys.exit(1)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--listen", required=True)
    s.add_argument("--control", required=True)
    s.add_argument("--dir", required=True)
    s.add_argument("--token", default="fake-token")
    s.add_argument("--page-size", type=int, default=0,
                   help="cap the clients' list limit (tests paging)")
    c = sub.add_parser("ctl")
    c.add_argument("--control", required=True)
    c.add_argument("path")
    c.add_argument("body", nargs="?")
    args = p.parse_args()
    if args.cmd == "serve":
        serve(args)
    else:
        ctl(args)


if __name__ == "__main__":
    main()
