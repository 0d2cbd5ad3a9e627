// SPDX-License-Identifier: GPL-2.0
/*
 * Services and EndpointSlices as the API server sends them, reduced to
 * what h2lb needs, and the snapshot built from them. Pure logic: the
 * unit tests drive it with JSON text.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "internal.h"

/* ---- json-c helpers */

/* @path is dot-separated ("metadata.name"); keys with dots in them
 * (annotations) are looked up with json_object_object_get_ex. */
struct json_object *k8s_jget(struct json_object *o, const char *path)
{
	char key[64];

	while (o && *path) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);

		if (n >= sizeof(key) ||
		    !json_object_is_type(o, json_type_object))
			return NULL;
		memcpy(key, path, n);
		key[n] = 0;
		if (!json_object_object_get_ex(o, key, &o))
			return NULL;
		path += n + (dot ? 1 : 0);
	}
	return o;
}

const char *k8s_jstr(struct json_object *o, const char *path)
{
	o = k8s_jget(o, path);
	return json_object_is_type(o, json_type_string)
		       ? json_object_get_string(o)
		       : NULL;
}

/* A map's string value, e.g. one annotation or label. */
static const char *jmap_str(struct json_object *o, const char *path,
			    const char *key)
{
	struct json_object *v;

	o = k8s_jget(o, path);
	if (!json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* A boolean condition: absent or null means @dflt. */
static bool jbool(struct json_object *o, const char *path, bool dflt)
{
	o = k8s_jget(o, path);
	return json_object_is_type(o, json_type_boolean)
		       ? json_object_get_boolean(o)
		       : dflt;
}

/* A port number, or 0 if absent or out of range. */
static uint16_t jport(struct json_object *o, const char *path)
{
	int64_t v;

	o = k8s_jget(o, path);
	if (!json_object_is_type(o, json_type_int))
		return 0;
	v = json_object_get_int64(o);
	return v > 0 && v < 65536 ? v : 0;
}

static bool is_tcp(struct json_object *port)
{
	const char *p = k8s_jstr(port, "protocol");

	return !p || !strcmp(p, "TCP"); /* TCP is the default */
}

static bool parse_ipv4(const char *s, uint32_t *out)
{
	struct in_addr a;

	if (!s || inet_pton(AF_INET, s, &a) != 1)
		return false;
	*out = a.s_addr;
	return true;
}

/* ---- Services */

void k8s_svc_free(struct k8s_svc *s)
{
	if (s)
		free(s->ports);
	free(s);
}

static bool h2_app_protocol(const char *p)
{
	return p && (!strcmp(p, "kubernetes.io/h2c") || !strcmp(p, "grpc"));
}

static uint32_t svc_vip(struct json_object *o)
{
	struct json_object *ips = k8s_jget(o, "spec.clusterIPs");
	uint32_t vip;

	/* Dual-stack Services list both families in clusterIPs. */
	for (size_t i = 0; json_object_is_type(ips, json_type_array) &&
			   i < json_object_array_length(ips);
	     i++)
		if (parse_ipv4(json_object_get_string(
				       json_object_array_get_idx(ips, i)),
			       &vip))
			return vip;
	if (parse_ipv4(k8s_jstr(o, "spec.clusterIP"), &vip))
		return vip;
	return 0; /* headless ("None"), IPv6 only, or not allocated yet */
}

static bool topology_disabled(struct json_object *o)
{
	static const char *const keys[] = {
		"service.kubernetes.io/topology-mode",
		"service.kubernetes.io/topology-aware-hints",
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *v = jmap_str(o, "metadata.annotations", keys[i]);

		if (v && (!strcmp(v, "Disabled") || !strcmp(v, "disabled")))
			return true;
	}
	return false;
}

/* NULL if the Service has no port h2lb balances: it is not kept. */
struct k8s_svc *k8s_svc_parse(struct json_object *o)
{
	struct json_object *ports = k8s_jget(o, "spec.ports");
	const char *type = k8s_jstr(o, "spec.type");
	const char *ann = jmap_str(o, "metadata.annotations", K8S_ANN_ENABLED);
	bool all = ann && !strcmp(ann, "true");
	struct k8s_svc *s;
	size_t n;

	if ((type && !strcmp(type, "ExternalName")) ||
	    !json_object_is_type(ports, json_type_array))
		return NULL;
	n = json_object_array_length(ports);
	s = calloc(1, sizeof(*s));
	if (!s || !(s->ports = calloc(n ? n : 1, sizeof(*s->ports))))
		goto fail;
	s->vip = svc_vip(o);
	if (!s->vip)
		goto fail;
	s->topology_off = topology_disabled(o);
	for (size_t i = 0; i < n; i++) {
		struct json_object *p = json_object_array_get_idx(ports, i);
		struct k8s_svc_port *sp = &s->ports[s->nr_ports];
		const char *name = k8s_jstr(p, "name");

		if (!is_tcp(p) || !(sp->port = jport(p, "port")) ||
		    !(all || h2_app_protocol(k8s_jstr(p, "appProtocol"))))
			continue;
		snprintf(sp->name, sizeof(sp->name), "%s", name ? name : "");
		sp->balanced = true;
		s->nr_ports++;
	}
	if (!s->nr_ports)
		goto fail;
	return s;
fail:
	k8s_svc_free(s);
	return NULL;
}

/* ---- EndpointSlices */

void k8s_slice_free(struct k8s_slice *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->nr_eps; i++)
		free(s->eps[i].zones);
	free(s->eps);
	free(s->ports);
	free(s);
}

/* ",a,b," so that a zone is found with strstr(",zone,"). */
static char *zone_list(struct json_object *ep)
{
	struct json_object *z = k8s_jget(ep, "hints.forZones");
	size_t n, len = 2;
	char *s;

	if (!json_object_is_type(z, json_type_array) ||
	    !(n = json_object_array_length(z)))
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const char *name =
			k8s_jstr(json_object_array_get_idx(z, i), "name");

		len += name ? strlen(name) + 1 : 0;
	}
	s = malloc(len);
	if (!s)
		return NULL;
	strcpy(s, ",");
	for (size_t i = 0; i < n; i++) {
		const char *name =
			k8s_jstr(json_object_array_get_idx(z, i), "name");

		if (name && *name && !strchr(name, ',')) {
			strcat(s, name);
			strcat(s, ",");
		}
	}
	if (!strcmp(s, ",")) {
		free(s);
		return NULL;
	}
	return s;
}

struct k8s_slice *k8s_slice_parse(struct json_object *o)
{
	struct json_object *ports = k8s_jget(o, "ports");
	struct json_object *eps = k8s_jget(o, "endpoints");
	const char *type = k8s_jstr(o, "addressType");
	const char *svc = jmap_str(o, "metadata.labels", K8S_LABEL_SERVICE);
	size_t np, ne;
	struct k8s_slice *s;

	/* IPv6 and FQDN slices, and slices of no Service, are of no use. */
	if (!type || strcmp(type, "IPv4") || !svc || strlen(svc) >= 64)
		return NULL;
	np = json_object_is_type(ports, json_type_array)
		     ? json_object_array_length(ports)
		     : 0;
	ne = json_object_is_type(eps, json_type_array)
		     ? json_object_array_length(eps)
		     : 0;
	s = calloc(1, sizeof(*s));
	if (!s || !(s->ports = calloc(np ? np : 1, sizeof(*s->ports))) ||
	    !(s->eps = calloc(ne ? ne : 1, sizeof(*s->eps)))) {
		k8s_slice_free(s);
		return NULL;
	}
	snprintf(s->svc, sizeof(s->svc), "%s", svc);
	for (size_t i = 0; i < np; i++) {
		struct json_object *p = json_object_array_get_idx(ports, i);
		struct k8s_slice_port *sp = &s->ports[s->nr_ports];
		const char *name = k8s_jstr(p, "name");

		/* A nil port means "all ports": nothing to dial. */
		if (!is_tcp(p) || !(sp->port = jport(p, "port")))
			continue;
		snprintf(sp->name, sizeof(sp->name), "%s", name ? name : "");
		s->nr_ports++;
	}
	for (size_t i = 0; i < ne; i++) {
		struct json_object *e = json_object_array_get_idx(eps, i);
		struct k8s_slice_ep *se = &s->eps[s->nr_eps];
		struct json_object *addrs = k8s_jget(e, "addresses");

		/* The addresses of one endpoint are fungible: use the
		 * first, as kube-proxy does. */
		if (!json_object_is_type(addrs, json_type_array) ||
		    !json_object_array_length(addrs) ||
		    !parse_ipv4(json_object_get_string(
					json_object_array_get_idx(addrs, 0)),
				&se->addr))
			continue;
		/* API semantics of unset conditions: ready unknown is
		 * ready, serving unknown follows ready, terminating
		 * unknown is not terminating. */
		se->ready = jbool(e, "conditions.ready", true);
		se->serving = jbool(e, "conditions.serving", se->ready);
		se->terminating = jbool(e, "conditions.terminating", false);
		se->zones = zone_list(e);
		s->nr_eps++;
	}
	return s;
}

/* ---- stores */

static size_t hash(const char *s)
{
	size_t h = 2166136261u; /* FNV-1a */

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

static void rec_free(enum k8s_kind kind, void *rec)
{
	if (kind == K8S_SERVICES)
		k8s_svc_free(rec);
	else
		k8s_slice_free(rec);
}

void k8s_store_init(struct k8s_store *s, enum k8s_kind kind)
{
	memset(s, 0, sizeof(*s));
	s->kind = kind;
}

void k8s_store_clear(struct k8s_store *s)
{
	for (size_t i = 0; i < s->nr_buckets; i++)
		while (s->b[i]) {
			struct k8s_obj *o = s->b[i];

			s->b[i] = o->next;
			rec_free(s->kind, o->rec);
			free(o->key);
			free(o);
		}
	free(s->b);
	k8s_store_init(s, s->kind);
}

void k8s_store_replace(struct k8s_store *to, struct k8s_store *from)
{
	k8s_store_clear(to);
	*to = *from;
	k8s_store_init(from, from->kind);
}

static struct k8s_obj **store_slot(const struct k8s_store *s, const char *key)
{
	struct k8s_obj **p;

	if (!s->nr_buckets)
		return NULL;
	for (p = &s->b[hash(key) % s->nr_buckets]; *p; p = &(*p)->next)
		if (!strcmp((*p)->key, key))
			return p;
	return NULL;
}

void *k8s_store_get(const struct k8s_store *s, const char *key)
{
	struct k8s_obj **p = store_slot(s, key);

	return p ? (*p)->rec : NULL;
}

/* Keep about one object per bucket. */
static int store_grow(struct k8s_store *s)
{
	size_t nb = s->nr_buckets ? s->nr_buckets * 2 : 64;
	struct k8s_obj **b = calloc(nb, sizeof(*b));

	if (!b)
		return -1;
	for (size_t i = 0; i < s->nr_buckets; i++)
		while (s->b[i]) {
			struct k8s_obj *o = s->b[i];

			s->b[i] = o->next;
			o->next = b[hash(o->key) % nb];
			b[hash(o->key) % nb] = o;
		}
	free(s->b);
	s->b = b;
	s->nr_buckets = nb;
	return 0;
}

static void store_del(struct k8s_store *s, const char *key)
{
	struct k8s_obj **p = store_slot(s, key), *o;

	if (!p)
		return;
	o = *p;
	*p = o->next;
	rec_free(s->kind, o->rec);
	free(o->key);
	free(o);
	s->nr--;
}

/* Takes @rec, replacing what was stored under @key. */
static int store_put(struct k8s_store *s, const char *key, void *rec)
{
	struct k8s_obj **p = store_slot(s, key), *o;

	if (p) {
		rec_free(s->kind, (*p)->rec);
		(*p)->rec = rec;
		return 0;
	}
	if (s->nr >= s->nr_buckets && store_grow(s))
		goto fail;
	o = calloc(1, sizeof(*o));
	if (!o || !(o->key = strdup(key))) {
		free(o);
		goto fail;
	}
	o->rec = rec;
	o->next = s->b[hash(key) % s->nr_buckets];
	s->b[hash(key) % s->nr_buckets] = o;
	s->nr++;
	return 0;
fail:
	rec_free(s->kind, rec);
	return -1;
}

int k8s_store_apply(struct k8s_store *s, struct json_object *o, bool del)
{
	const char *ns = k8s_jstr(o, "metadata.namespace");
	const char *name = k8s_jstr(o, "metadata.name");
	char key[512];
	void *rec;

	if (!name || snprintf(key, sizeof(key), "%s/%s", ns ? ns : "", name) >=
			     (int)sizeof(key))
		return -1;
	if (del) {
		store_del(s, key);
		return 0;
	}
	rec = s->kind == K8S_SERVICES ? (void *)k8s_svc_parse(o)
				      : (void *)k8s_slice_parse(o);
	if (!rec) {
		store_del(s, key); /* e.g. no longer balanced */
		return 0;
	}
	return store_put(s, key, rec);
}

int k8s_list_apply(struct k8s_store *s, struct json_object *list, char *rv,
		   size_t rvlen, char **cont)
{
	struct json_object *items = k8s_jget(list, "items");
	const char *r = k8s_jstr(list, "metadata.resourceVersion");
	const char *c = k8s_jstr(list, "metadata.continue");

	*cont = NULL;
	if (!r || !json_object_is_type(items, json_type_array))
		return -1;
	snprintf(rv, rvlen, "%s", r);
	for (size_t i = 0; i < json_object_array_length(items); i++)
		if (k8s_store_apply(s, json_object_array_get_idx(items, i),
				    false))
			return -1;
	if (c && *c && !(*cont = strdup(c)))
		return -1;
	return 0;
}

int k8s_event_apply(struct k8s_store *s, struct json_object *ev, char *rv,
		    size_t rvlen, int *code)
{
	const char *type = k8s_jstr(ev, "type");
	struct json_object *o = k8s_jget(ev, "object");
	const char *r = k8s_jstr(o, "metadata.resourceVersion");
	struct json_object *c;

	*code = 0;
	if (!type || !json_object_is_type(o, json_type_object))
		return K8S_EV_BAD;
	if (!strcmp(type, "ERROR")) {
		/* A metav1.Status: 410 Gone/Expired means relist. */
		c = k8s_jget(o, "code");
		*code = json_object_is_type(c, json_type_int)
				? json_object_get_int(c)
				: 0;
		return K8S_EV_ERROR;
	}
	if (!r)
		return K8S_EV_BAD;
	if (!strcmp(type, "BOOKMARK")) {
		snprintf(rv, rvlen, "%s", r);
		return K8S_EV_BOOKMARK;
	}
	if (strcmp(type, "ADDED") && strcmp(type, "MODIFIED") &&
	    strcmp(type, "DELETED"))
		return K8S_EV_BAD;
	if (k8s_store_apply(s, o, !strcmp(type, "DELETED")))
		return K8S_EV_BAD;
	snprintf(rv, rvlen, "%s", r);
	return K8S_EV_CHANGED;
}

void k8s_node_zone(struct json_object *node, char *zone, size_t len)
{
	const char *z = jmap_str(node, "metadata.labels", K8S_LABEL_ZONE);

	snprintf(zone, len, "%s", z ? z : "");
}
