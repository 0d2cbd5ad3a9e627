// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for the Kubernetes discovery's pure parts: which Service
 * ports are balanced, EndpointSlice conditions and port resolution, zone
 * hints, watch events and lists, snapshots, kubeconfig parsing
 * (user/k8s_model.c, k8s_snap.c, k8s_config.c). The I/O side is tested
 * against a fake API server by tests/integration/test_k8s_discovery.sh.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "k8s/internal.h"

/* JSON from a C string with ' for " (readable test objects). */
static struct json_object *J(const char *s)
{
	char *t = strdup(s);
	struct json_object *o;

	for (char *p = t; *p; p++)
		if (*p == '\'')
			*p = '"';
	o = json_tokener_parse(t);
	free(t);
	assert_non_null(o);
	return o;
}

static uint32_t ip(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

static void apply(struct k8s_store *st, const char *obj)
{
	struct json_object *o = J(obj);

	assert_int_equal(k8s_store_apply(st, o, false), 0);
	json_object_put(o);
}

/* "ns/name:port=addr:port:state,..." per service, ';' separated. */
static char *summary(const struct k8s_snapshot *s)
{
	static char buf[4096];
	char a[INET_ADDRSTRLEN];
	size_t n = 0;

	buf[0] = 0;
	for (int i = 0; i < s->nr_services; i++) {
		const struct k8s_service *v = &s->svc[i];

		n += snprintf(buf + n, sizeof(buf) - n,
			      "%s%s/%s:%u=", i ? ";" : "", v->ns, v->name,
			      v->port);
		for (int j = 0; j < v->nr_eps; j++) {
			struct in_addr in = { v->eps[j].addr };

			n += snprintf(buf + n, sizeof(buf) - n, "%s%s:%u:%s",
				      j ? "," : "",
				      inet_ntop(AF_INET, &in, a, sizeof(a)),
				      v->eps[j].port,
				      k8s_ep_state_str(v->eps[j].state));
		}
	}
	return buf;
}

#define SVC(ns, name, vip, ports, ann)                                         \
	"{'kind':'Service','metadata':{'namespace':'" ns "','name':'" name     \
	"','annotations':{" ann                                                \
	"}},'spec':{'type':'ClusterIP','clusterIP':'" vip "','ports':[" ports  \
	"]}}"

#define SLICE(ns, name, svc, ports, eps)                                            \
	"{'kind':'EndpointSlice','addressType':'IPv4','metadata':{'namespace':'" ns \
	"','name':'" name "','labels':{'kubernetes.io/service-name':'" svc          \
	"'}},'ports':[" ports "],'endpoints':[" eps "]}"

#define EP(addr, cond) "{'addresses':['" addr "'],'conditions':{" cond "}}"
#define EPZ(addr, zones)                                                       \
	"{'addresses':['" addr "'],'conditions':{'ready':true},'hints':{"      \
	"'forZones':[" zones "]}}"
#define READY "'ready':true,'serving':true,'terminating':false"
#define DRAIN "'ready':false,'serving':true,'terminating':true"
#define GONE  "'ready':false,'serving':false,'terminating':true"

static void test_service_selection(void **state)
{
	static const struct {
		const char *json;
		int balanced_ports; /* -1: not kept */
	} cases[] = {
		{ SVC("a", "grpc", "10.96.0.1",
		      "{'name':'g','port':50051,'appProtocol':'grpc'},"
		      "{'name':'m','port':9090}",
		      ""),
		  1 },
		{ SVC("a", "h2c", "10.96.0.2",
		      "{'port':80,'appProtocol':'kubernetes.io/h2c'}", ""),
		  1 },
		{ SVC("a", "ann", "10.96.0.3",
		      "{'name':'a','port':80},{'name':'b','port':81},"
		      "{'name':'u','port':53,'protocol':'UDP'}",
		      "'h2lb.io/enabled':'true'"),
		  2 },
		{ SVC("a", "ann-false", "10.96.0.4", "{'port':80}",
		      "'h2lb.io/enabled':'false'"),
		  -1 },
		{ SVC("a", "http", "10.96.0.5",
		      "{'port':80,'appProtocol':'http'}", ""),
		  -1 },
		{ SVC("a", "headless", "None",
		      "{'port':80,'appProtocol':'grpc'}", ""),
		  -1 },
		{ "{'metadata':{'namespace':'a','name':'ext'},'spec':{'type':'ExternalName','externalName':'x.example','ports':[{'port':80,'appProtocol':'grpc'}]}}",
		  -1 },
		/* Dual stack: the IPv4 ClusterIP, whatever the order. */
		{ "{'metadata':{'namespace':'a','name':'ds'},'spec':{'clusterIP':'fd00::1','clusterIPs':['fd00::1','10.96.0.6'],'ports':[{'port':80,'appProtocol':'grpc'}]}}",
		  1 },
		{ "{'metadata':{'namespace':'a','name':'v6'},'spec':{'clusterIP':'fd00::2','ports':[{'port':80,'appProtocol':'grpc'}]}}",
		  -1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct json_object *o = J(cases[i].json);
		struct k8s_svc *s = k8s_svc_parse(o);

		if (cases[i].balanced_ports < 0) {
			assert_null(s);
		} else {
			assert_non_null(s);
			assert_int_equal(s->nr_ports, cases[i].balanced_ports);
		}
		k8s_svc_free(s);
		json_object_put(o);
	}
}

static void test_slice_conditions(void **state)
{
	struct json_object *o = J(SLICE(
		"a", "s1", "svc", "{'name':'g','port':8080},{'name':'all'}",
		EP("10.0.0.1", READY) "," EP("10.0.0.2", "") "," EP(
			"10.0.0.3",
			DRAIN) "," EP("10.0.0.4",
				      GONE) ","
					    "{'addresses':['not-an-ip']}"));
	struct k8s_slice *s = k8s_slice_parse(o);

	assert_non_null(s);
	assert_string_equal(s->svc, "svc");
	assert_int_equal(s->nr_ports, 1); /* a nil port is no use */
	assert_int_equal(s->ports[0].port, 8080);
	assert_int_equal(s->nr_eps, 4);
	/* Unset conditions: ready, serving as ready, not terminating. */
	assert_true(s->eps[1].ready && s->eps[1].serving &&
		    !s->eps[1].terminating);
	assert_true(!s->eps[2].ready && s->eps[2].serving &&
		    s->eps[2].terminating);
	k8s_slice_free(s);
	json_object_put(o);

	o = J("{'addressType':'IPv6','metadata':{'namespace':'a','name':'s','labels':{'kubernetes.io/service-name':'svc'}},'endpoints':[]}");
	assert_null(k8s_slice_parse(o));
	json_object_put(o);
	o = J("{'addressType':'IPv4','metadata':{'namespace':'a','name':'s'},'endpoints':[]}");
	assert_null(k8s_slice_parse(o));
	json_object_put(o);
}

static void test_build_states_and_ports(void **state)
{
	struct k8s_store svcs, slices;
	struct k8s_snapshot *s;

	k8s_store_init(&svcs, K8S_SERVICES);
	k8s_store_init(&slices, K8S_SLICES);
	apply(&svcs, SVC("b", "greeter", "10.96.0.10",
			 "{'name':'grpc','port':50051,'appProtocol':'grpc'},"
			 "{'name':'metrics','port':9090}",
			 ""));
	apply(&svcs, SVC("a", "solo", "10.96.0.11",
			 "{'port':80,'appProtocol':'kubernetes.io/h2c'}", ""));
	apply(&svcs, SVC("a", "plain", "10.96.0.12", "{'port':80}", ""));
	/* Two slices of greeter; the target port is the slice's, by name;
	 * 10.0.0.2 is in both (a rebalance in progress). */
	apply(&slices,
	      SLICE("b", "greeter-1", "greeter",
		    "{'name':'metrics','port':9091},{'name':'grpc','port':8443}",
		    EP("10.0.0.2", DRAIN) "," EP("10.0.0.1", READY) "," EP(
			    "10.0.0.9", GONE)));
	apply(&slices,
	      SLICE("b", "greeter-2", "greeter", "{'name':'grpc','port':8443}",
		    EP("10.0.0.2", READY) "," EP("10.0.0.3", DRAIN)));
	/* Same service name in another namespace: not greeter's. */
	apply(&slices,
	      SLICE("a", "greeter-x", "greeter", "{'name':'grpc','port':1}",
		    EP("10.0.0.99", READY)));
	apply(&slices, SLICE("a", "solo-1", "solo", "{'port':8080}",
			     EP("10.0.1.1", READY)));
	apply(&slices, SLICE("a", "plain-1", "plain", "{'port':8080}",
			     EP("10.0.2.1", READY)));

	s = k8s_build(&svcs, &slices, "");
	assert_non_null(s);
	assert_string_equal(
		summary(s),
		"a/solo:80=10.0.1.1:8080:ready;"
		"b/greeter:50051=10.0.0.1:8443:ready,10.0.0.2:8443:ready,10.0.0.3:8443:draining");
	assert_int_equal(s->svc[1].vip, ip("10.96.0.10"));
	assert_string_equal(s->svc[1].port_name, "grpc");
	assert_ptr_equal(k8s_snapshot_find(s, "b", "greeter", "grpc"),
			 &s->svc[1]);
	assert_ptr_equal(k8s_snapshot_find(s, "b", "greeter", "50051"),
			 &s->svc[1]);
	assert_null(k8s_snapshot_find(s, "b", "greeter", "metrics"));
	{
		struct sockaddr_in a[2];
		bool drain[2];

		/* Three endpoints, room for two. */
		assert_int_equal(k8s_service_addrs(&s->svc[1], a, drain, 2), 2);
		assert_int_equal(a[1].sin_addr.s_addr, ip("10.0.0.2"));
		assert_int_equal(ntohs(a[1].sin_port), 8443);
		assert_false(drain[1]);
		assert_int_equal(k8s_service_addrs(&s->svc[1], a, drain, 1), 1);
	}
	k8s_snapshot_free(s);
	k8s_store_clear(&svcs);
	k8s_store_clear(&slices);
}

/* kube-proxy's rules: hints only when every ready endpoint has some and
 * one is for our zone. */
static void test_zone_hints(void **state)
{
	static const struct {
		const char *zone, *ann, *eps, *want;
	} cases[] = {
		{ "za", "",
		  EPZ("10.0.0.1", "{'name':'za'}") "," EPZ("10.0.0.2", "{'name':'zb'}") "," EPZ(
			  "10.0.0.3",
			  "{'name':'zb'},{'name':'za'}") "," EP("10.0.0.4",
								DRAIN),
		  "n/s:80=10.0.0.1:80:ready,10.0.0.2:80:other-zone,"
		  "10.0.0.3:80:ready,10.0.0.4:80:draining" },
		/* No zone known: all ready. */
		{ "", "",
		  EPZ("10.0.0.1", "{'name':'za'}") "," EPZ("10.0.0.2",
							   "{'name':'zb'}"),
		  "n/s:80=10.0.0.1:80:ready,10.0.0.2:80:ready" },
		/* One ready endpoint without hints: hints ignored. */
		{ "za", "",
		  EPZ("10.0.0.1", "{'name':'za'}") "," EP("10.0.0.2", READY),
		  "n/s:80=10.0.0.1:80:ready,10.0.0.2:80:ready" },
		/* Nothing hinted for our zone: hints ignored. */
		{ "zc", "",
		  EPZ("10.0.0.1", "{'name':'za'}") "," EPZ("10.0.0.2",
							   "{'name':'zb'}"),
		  "n/s:80=10.0.0.1:80:ready,10.0.0.2:80:ready" },
		/* The Service turned topology off. */
		{ "za", "'service.kubernetes.io/topology-mode':'Disabled'",
		  EPZ("10.0.0.1", "{'name':'za'}") "," EPZ("10.0.0.2",
							   "{'name':'zb'}"),
		  "n/s:80=10.0.0.1:80:ready,10.0.0.2:80:ready" },
		/* A zone that is a prefix of another is not it. */
		{ "z", "",
		  EPZ("10.0.0.1", "{'name':'z'}") "," EPZ("10.0.0.2",
							  "{'name':'zz'}"),
		  "n/s:80=10.0.0.1:80:ready,10.0.0.2:80:other-zone" },
	};
	char svc[512], slice[1024];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct k8s_store svcs, slices;
		struct k8s_snapshot *s;

		k8s_store_init(&svcs, K8S_SERVICES);
		k8s_store_init(&slices, K8S_SLICES);
		snprintf(
			svc, sizeof(svc),
			"{'metadata':{'namespace':'n','name':'s','annotations':{%s}},'spec':{'clusterIP':'10.96.1.1','ports':[{'port':80,'appProtocol':'grpc'}]}}",
			cases[i].ann);
		snprintf(
			slice, sizeof(slice),
			"{'addressType':'IPv4','metadata':{'namespace':'n','name':'s-1','labels':{'kubernetes.io/service-name':'s'}},'ports':[{'port':80}],'endpoints':[%s]}",
			cases[i].eps);
		apply(&svcs, svc);
		apply(&slices, slice);
		s = k8s_build(&svcs, &slices, cases[i].zone);
		assert_non_null(s);
		assert_string_equal(summary(s), cases[i].want);
		k8s_snapshot_free(s);
		k8s_store_clear(&svcs);
		k8s_store_clear(&slices);
	}
}

static void test_events(void **state)
{
	struct k8s_store st;
	struct json_object *ev;
	char rv[64] = "5";
	int code;

	k8s_store_init(&st, K8S_SERVICES);
	ev = J("{'type':'ADDED','object':{'metadata':{'namespace':'n','name':'s','resourceVersion':'7'},'spec':{'clusterIP':'10.96.0.1','ports':[{'port':80,'appProtocol':'grpc'}]}}}");
	assert_int_equal(k8s_event_apply(&st, ev, rv, sizeof(rv), &code),
			 K8S_EV_CHANGED);
	assert_string_equal(rv, "7");
	assert_non_null(k8s_store_get(&st, "n/s"));
	json_object_put(ev);

	/* No longer balanced: MODIFIED removes it. */
	ev = J("{'type':'MODIFIED','object':{'metadata':{'namespace':'n','name':'s','resourceVersion':'8'},'spec':{'clusterIP':'10.96.0.1','ports':[{'port':80}]}}}");
	assert_int_equal(k8s_event_apply(&st, ev, rv, sizeof(rv), &code),
			 K8S_EV_CHANGED);
	assert_null(k8s_store_get(&st, "n/s"));
	json_object_put(ev);

	ev = J("{'type':'BOOKMARK','object':{'kind':'Service','metadata':{'resourceVersion':'12'}}}");
	assert_int_equal(k8s_event_apply(&st, ev, rv, sizeof(rv), &code),
			 K8S_EV_BOOKMARK);
	assert_string_equal(rv, "12");
	json_object_put(ev);

	ev = J("{'type':'ERROR','object':{'kind':'Status','apiVersion':'v1','status':'Failure','message':'too old resource version: 1 (12)','reason':'Expired','code':410}}");
	assert_int_equal(k8s_event_apply(&st, ev, rv, sizeof(rv), &code),
			 K8S_EV_ERROR);
	assert_int_equal(code, 410);
	assert_string_equal(rv, "12");
	json_object_put(ev);

	ev = J("{'type':'WHATEVER','object':{'metadata':{'resourceVersion':'13'}}}");
	assert_int_equal(k8s_event_apply(&st, ev, rv, sizeof(rv), &code),
			 K8S_EV_BAD);
	json_object_put(ev);
	ev = J("{'type':'ADDED'}");
	assert_int_equal(k8s_event_apply(&st, ev, rv, sizeof(rv), &code),
			 K8S_EV_BAD);
	json_object_put(ev);
	assert_string_equal(rv, "12");
	k8s_store_clear(&st);
}

/* Pages accumulate in a pending store; replacing drops what the list no
 * longer has (a relist after 410 forgets deleted objects). */
static void test_list_and_replace(void **state)
{
	struct k8s_store cur, pending;
	struct json_object *page;
	char rv[64], *cont;

	k8s_store_init(&cur, K8S_SLICES);
	k8s_store_init(&pending, K8S_SLICES);
	apply(&cur, SLICE("n", "old", "s", "{'port':80}", EP("10.0.0.1", "")));
	page = J(
		"{'kind':'EndpointSliceList','metadata':{'resourceVersion':'100','continue':'abc'},'items':[" SLICE(
			"n", "new-1", "s", "{'port':80}",
			EP("10.0.0.2", "")) "]}");
	assert_int_equal(k8s_list_apply(&pending, page, rv, sizeof(rv), &cont),
			 0);
	assert_string_equal(cont, "abc");
	free(cont);
	json_object_put(page);
	page = J(
		"{'kind':'EndpointSliceList','metadata':{'resourceVersion':'100'},'items':[" SLICE(
			"n", "new-2", "s", "{'port':80}",
			EP("10.0.0.3", "")) "]}");
	assert_int_equal(k8s_list_apply(&pending, page, rv, sizeof(rv), &cont),
			 0);
	assert_null(cont);
	assert_string_equal(rv, "100");
	json_object_put(page);
	k8s_store_replace(&cur, &pending);
	assert_int_equal(cur.nr, 2);
	assert_int_equal(pending.nr, 0);
	assert_null(k8s_store_get(&cur, "n/old"));
	assert_non_null(k8s_store_get(&cur, "n/new-2"));
	page = J("{'kind':'Status','code':500}");
	assert_int_equal(k8s_list_apply(&pending, page, rv, sizeof(rv), &cont),
			 -1);
	json_object_put(page);
	k8s_store_clear(&cur);
	k8s_store_clear(&pending);
}

/* Many objects: the store grows its table and keeps every key. */
static void test_store_many(void **state)
{
	struct k8s_store st;
	char obj[512], key[64];

	k8s_store_init(&st, K8S_SLICES);
	for (int i = 0; i < 1000; i++) {
		snprintf(obj, sizeof(obj),
			 SLICE("n", "s-%d", "svc", "{'port':80}",
			       EP("10.0.%d.%d", "")),
			 i, i / 250, i % 250);
		apply(&st, obj);
	}
	assert_int_equal(st.nr, 1000);
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "n/s-%d", i);
		assert_non_null(k8s_store_get(&st, key));
	}
	k8s_store_clear(&st);
}

static void test_snapshot_equal_dup_json(void **state)
{
	struct k8s_store svcs, slices;
	struct k8s_snapshot *a, *b, *c;
	char *line;

	k8s_store_init(&svcs, K8S_SERVICES);
	k8s_store_init(&slices, K8S_SLICES);
	apply(&svcs, SVC("n", "s", "10.96.0.1",
			 "{'name':'g','port':80,'appProtocol':'grpc'}", ""));
	apply(&slices, SLICE("n", "s-1", "s", "{'name':'g','port':8080}",
			     EP("10.0.0.1", READY) "," EP("10.0.0.2", DRAIN)));
	a = k8s_build(&svcs, &slices, "");
	b = k8s_snapshot_dup(a);
	assert_true(k8s_snapshot_equal(a, b));
	b->seq = 9;
	assert_true(k8s_snapshot_equal(a, b)); /* seq does not count */
	line = k8s_snapshot_json(b);
	assert_string_equal(
		line,
		"{\"seq\":9,\"zone\":\"\",\"services\":[{\"namespace\":\"n\",\"name\":\"s\","
		"\"port_name\":\"g\",\"vip\":\"10.96.0.1\",\"port\":80,\"endpoints\":["
		"{\"addr\":\"10.0.0.1\",\"port\":8080,\"state\":\"ready\"},"
		"{\"addr\":\"10.0.0.2\",\"port\":8080,\"state\":\"draining\"}]}]}");
	free(line);
	apply(&slices, SLICE("n", "s-1", "s", "{'name':'g','port':8080}",
			     EP("10.0.0.1", READY) "," EP("10.0.0.2", READY)));
	c = k8s_build(&svcs, &slices, "");
	assert_false(k8s_snapshot_equal(a, c));
	k8s_snapshot_free(a);
	k8s_snapshot_free(b);
	k8s_snapshot_free(c);
	/* Nothing balanced at all is a valid, empty snapshot. */
	k8s_store_clear(&svcs);
	a = k8s_build(&svcs, &slices, "");
	assert_non_null(a);
	assert_int_equal(a->nr_services, 0);
	k8s_snapshot_free(a);
	k8s_store_clear(&slices);
}

static void test_base64(void **state)
{
	char *out;
	size_t n;

	assert_int_equal(k8s_base64_decode("aGVsbG8gd29ybGQ=", &out, &n), 0);
	assert_int_equal(n, 11);
	assert_string_equal(out, "hello world");
	free(out);
	assert_int_equal(k8s_base64_decode("aGVs\nbG8=", &out, &n), 0);
	assert_string_equal(out, "hello");
	free(out);
	assert_int_equal(k8s_base64_decode("a!b", &out, &n), -1);
}

static const char kubeconfig[] =
	"apiVersion: v1\n"
	"kind: Config\n"
	"current-context: kind-a\n"
	"clusters:\n"
	"- name: kind-a\n"
	"  cluster:\n"
	"    server: https://198.18.1.1:6443/\n"
	"    certificate-authority-data: LS0tQ0EtLS0K\n"
	"- name: other\n"
	"  cluster:\n"
	"    server: \"https://198.18.1.9:443\"\n"
	"    certificate-authority: certs/ca.pem\n"
	"    insecure-skip-tls-verify: true\n"
	"contexts:\n"
	"- name: kind-a\n"
	"  context: {cluster: kind-a, user: admin}\n"
	"- name: b\n"
	"  context:\n"
	"    cluster: other\n"
	"    user: tok\n"
	"- name: c\n"
	"  context: {cluster: other, user: plugin}\n"
	"- name: d\n"
	"  context: {cluster: other, user: half}\n"
	"users:\n"
	"- name: admin\n"
	"  user:\n"
	"    client-certificate-data: LS0tQ0VSVC0tLQo=\n"
	"    client-key-data: LS0tS0VZLS0tCg==\n"
	"- name: tok\n"
	"  user:\n"
	"    token: abc.def\n"
	"    client-certificate: /abs/c.pem\n"
	"    client-key: k.pem\n"
	"- name: plugin\n"
	"  user:\n"
	"    exec: {command: aws}\n"
	"- name: half\n"
	"  user: {client-certificate: c.pem}\n";

static void test_kubeconfig(void **state)
{
	struct k8s_config c;
	char err[256];

	assert_int_equal(k8s_config_parse(&c, kubeconfig, strlen(kubeconfig),
					  "/etc/kube", NULL, err, sizeof(err)),
			 0);
	assert_string_equal(c.server, "https://198.18.1.1:6443");
	assert_string_equal(c.ca_data, "---CA---\n");
	assert_string_equal(c.cert_data, "---CERT---\n");
	assert_string_equal(c.key_data, "---KEY---\n");
	assert_null(c.token);
	assert_false(c.insecure);
	k8s_config_free(&c);

	assert_int_equal(k8s_config_parse(&c, kubeconfig, strlen(kubeconfig),
					  "/etc/kube", "b", err, sizeof(err)),
			 0);
	assert_string_equal(c.server, "https://198.18.1.9:443");
	assert_string_equal(c.ca_file, "/etc/kube/certs/ca.pem");
	assert_string_equal(c.cert_file, "/abs/c.pem");
	assert_string_equal(c.key_file, "/etc/kube/k.pem");
	assert_true(c.insecure);
	assert_string_equal(c.token, "abc.def");
	k8s_config_free(&c);

	assert_int_equal(k8s_config_parse(&c, kubeconfig, strlen(kubeconfig),
					  "/", "c", err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "not supported"));
	assert_int_equal(k8s_config_parse(&c, kubeconfig, strlen(kubeconfig),
					  "/", "d", err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "needs its key"));
	assert_int_equal(k8s_config_parse(&c, kubeconfig, strlen(kubeconfig),
					  "/", "nope", err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "not found"));
	assert_int_equal(
		k8s_config_parse(&c, "a: [b", 5, "/", NULL, err, sizeof(err)),
		-1);
	assert_non_null(strstr(err, "YAML"));
}

/* kubectl also reads JSON kubeconfigs; YAML is a superset. */
static void test_kubeconfig_json(void **state)
{
	static const char js[] =
		"{\"current-context\":\"x\",\"contexts\":[{\"name\":\"x\",\"context\":{\"cluster\":\"c\",\"user\":\"u\"}}],"
		"\"clusters\":[{\"name\":\"c\",\"cluster\":{\"server\":\"https://198.18.1.1:6443\"}}],"
		"\"users\":[{\"name\":\"u\",\"user\":{\"tokenFile\":\"tok\"}}]}";
	struct k8s_config c;
	char err[256];

	assert_int_equal(k8s_config_parse(&c, js, strlen(js), "/run", NULL, err,
					  sizeof(err)),
			 0);
	assert_string_equal(c.token_file, "/run/tok");
	k8s_config_free(&c);
}

static void test_incluster(void **state)
{
	char dir[] = "/tmp/h2lb-k8s-sa-XXXXXX", path[64], err[256], *tok;
	struct k8s_config c;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_int_equal(k8s_config_incluster(&c, dir, err, sizeof(err)), -1);
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	/* No token file yet. */
	assert_int_equal(k8s_config_incluster(&c, dir, err, sizeof(err)), -1);
	snprintf(path, sizeof(path), "%s/token", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("tok-1\n", f);
	fclose(f);
	assert_int_equal(k8s_config_incluster(&c, dir, err, sizeof(err)), 0);
	assert_string_equal(c.server, "https://[fd00::1]:443");
	/* The kubelet rotates the token: it is read per request. */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("tok-2", f);
	fclose(f);
	tok = k8s_config_token(&c);
	assert_string_equal(tok, "tok-2");
	free(tok);
	k8s_config_free(&c);
	unlink(path);
	rmdir(dir);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
}

static void test_node_zone(void **state)
{
	struct json_object *o = J(
		"{'kind':'Node','metadata':{'name':'n1','labels':{'topology.kubernetes.io/zone':'eu-1a'}}}");
	char zone[64];

	k8s_node_zone(o, zone, sizeof(zone));
	assert_string_equal(zone, "eu-1a");
	json_object_put(o);
	o = J("{'kind':'Node','metadata':{'name':'n1'}}");
	k8s_node_zone(o, zone, sizeof(zone));
	assert_string_equal(zone, "");
	json_object_put(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_service_selection),
		cmocka_unit_test(test_slice_conditions),
		cmocka_unit_test(test_build_states_and_ports),
		cmocka_unit_test(test_zone_hints),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_list_and_replace),
		cmocka_unit_test(test_store_many),
		cmocka_unit_test(test_snapshot_equal_dup_json),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_kubeconfig),
		cmocka_unit_test(test_kubeconfig_json),
		cmocka_unit_test(test_incluster),
		cmocka_unit_test(test_node_zone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
