// SPDX-License-Identifier: GPL-2.0
/*
 * Snapshots: for each balanced Service port, its endpoints and their
 * states, built from the stores of Services and EndpointSlices.
 *
 * Zone hints follow kube-proxy's topology-aware routing (canUseTopology):
 * hints are used only when the node's zone is known, the Service does not
 * disable them, every ready endpoint has hints and at least one ready
 * endpoint is hinted for this zone; otherwise all ready endpoints are
 * used. Where kube-proxy drops the endpoints hinted for other zones, h2lb
 * marks them OTHER_ZONE: they take no new streams, but the streams they
 * carry finish, as when draining.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "internal.h"

struct svc_ref {
	const char *key; /* "ns/name" */
	const struct k8s_svc *svc;
	const struct k8s_slice **slices;
	int nr_slices, cap;
};

struct cand {
	uint32_t addr;
	uint16_t port;
	int rank; /* 2 ready, 1 serving and terminating */
	const char *zones;
};

struct build {
	struct k8s_snapshot *s;
	int cap_svc, cap_eps, nr_eps;
	struct cand *c;
	int nr_c, cap_c;
};

static int grow(void **p, int *cap, int want, size_t size)
{
	void *n;
	int c = *cap ? *cap : 16;

	if (want <= *cap)
		return 0;
	while (c < want)
		c *= 2;
	n = realloc(*p, (size_t)c * size);
	if (!n)
		return -1;
	*p = n;
	*cap = c;
	return 0;
}

static int ref_cmp(const void *a, const void *b)
{
	return strcmp(((const struct svc_ref *)a)->key,
		      ((const struct svc_ref *)b)->key);
}

static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->addr != y->addr)
		return ntohl(x->addr) < ntohl(y->addr) ? -1 : 1;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	return y->rank - x->rank; /* the best state of a duplicate first */
}

static int svc_cmp(const void *a, const void *b)
{
	const struct k8s_service *x = a, *y = b;
	int r = strcmp(x->ns, y->ns);

	if (!r)
		r = strcmp(x->name, y->name);
	if (!r)
		r = (int)x->port - (int)y->port;
	return r;
}

static bool in_zone(const char *zones, const char *zone)
{
	size_t n = strlen(zone);
	const char *p = zones;

	if (!zones || !n || strchr(zone, ','))
		return false;
	while ((p = strstr(p, zone)))
		if (p[-1] == ',' && p[n] == ',')
			return true;
		else
			p += n;
	return false;
}

/* Endpoints of one Service port, deduplicated (an address may be in two
 * slices while they are rebalanced). */
static int gather(struct build *b, const struct svc_ref *r,
		  const struct k8s_svc_port *sp)
{
	int n = 0;

	b->nr_c = 0;
	for (int i = 0; i < r->nr_slices; i++) {
		const struct k8s_slice *sl = r->slices[i];
		const struct k8s_slice_port *p = NULL;

		for (int j = 0; j < sl->nr_ports && !p; j++)
			if (!strcmp(sl->ports[j].name, sp->name))
				p = &sl->ports[j];
		if (!p)
			continue;
		for (int j = 0; j < sl->nr_eps; j++) {
			const struct k8s_slice_ep *e = &sl->eps[j];
			int rank = e->ready			  ? 2
				   : e->serving && e->terminating ? 1
								  : 0;

			if (!rank)
				continue;
			if (grow((void **)&b->c, &b->cap_c, b->nr_c + 1,
				 sizeof(*b->c)))
				return -1;
			b->c[b->nr_c++] = (struct cand){ e->addr, p->port, rank,
							 e->zones };
		}
	}
	qsort(b->c, b->nr_c, sizeof(*b->c), cand_cmp);
	for (int i = 0; i < b->nr_c; i++)
		if (!n || b->c[i].addr != b->c[n - 1].addr ||
		    b->c[i].port != b->c[n - 1].port)
			b->c[n++] = b->c[i];
	b->nr_c = n;
	return 0;
}

static bool use_topology(const struct build *b, const struct k8s_svc *svc,
			 const char *zone)
{
	bool hinted_here = false;

	if (!*zone || svc->topology_off)
		return false;
	for (int i = 0; i < b->nr_c; i++) {
		if (b->c[i].rank != 2)
			continue;
		if (!b->c[i].zones)
			return false; /* one ready endpoint without hints */
		hinted_here |= in_zone(b->c[i].zones, zone);
	}
	return hinted_here;
}

static int add_port(struct build *b, const struct svc_ref *r,
		    const struct k8s_svc_port *sp, const char *zone)
{
	struct k8s_snapshot *s = b->s;
	struct k8s_service *out;
	const char *slash = strchr(r->key, '/');
	bool topo;

	if (gather(b, r, sp) ||
	    grow((void **)&s->svc, &b->cap_svc, s->nr_services + 1,
		 sizeof(*s->svc)) ||
	    grow((void **)&s->eps, &b->cap_eps, b->nr_eps + b->nr_c,
		 sizeof(*s->eps)))
		return -1;
	out = &s->svc[s->nr_services++];
	memset(out, 0, sizeof(*out));
	snprintf(out->ns, sizeof(out->ns), "%.*s", (int)(slash - r->key),
		 r->key);
	snprintf(out->name, sizeof(out->name), "%s", slash + 1);
	snprintf(out->port_name, sizeof(out->port_name), "%s", sp->name);
	out->vip = r->svc->vip;
	out->port = sp->port;
	/* An index until every endpoint is in place: s->eps moves. */
	out->eps = (struct k8s_endpoint *)(uintptr_t)b->nr_eps;
	out->nr_eps = b->nr_c;
	topo = use_topology(b, r->svc, zone);
	for (int i = 0; i < b->nr_c; i++) {
		struct k8s_endpoint *e = &s->eps[b->nr_eps++];

		memset(e, 0, sizeof(*e));
		e->addr = b->c[i].addr;
		e->port = b->c[i].port;
		if (b->c[i].rank == 1)
			e->state = K8S_EP_DRAINING;
		else if (topo && !in_zone(b->c[i].zones, zone))
			e->state = K8S_EP_OTHER_ZONE;
		else
			e->state = K8S_EP_READY;
	}
	return 0;
}

/* The services' keys sorted, with the slices of each. */
static struct svc_ref *collect(const struct k8s_store *svcs,
			       const struct k8s_store *slices)
{
	struct svc_ref *refs = calloc(svcs->nr ? svcs->nr : 1, sizeof(*refs));
	size_t n = 0;
	char key[512];

	if (!refs)
		return NULL;
	for (size_t i = 0; i < svcs->nr_buckets; i++)
		for (struct k8s_obj *o = svcs->b[i]; o; o = o->next)
			refs[n++] = (struct svc_ref){ .key = o->key,
						      .svc = o->rec };
	qsort(refs, n, sizeof(*refs), ref_cmp);
	for (size_t i = 0; i < slices->nr_buckets; i++)
		for (struct k8s_obj *o = slices->b[i]; o; o = o->next) {
			const struct k8s_slice *sl = o->rec;
			const char *slash = strchr(o->key, '/');
			struct svc_ref want = { .key = key }, *r;

			snprintf(key, sizeof(key), "%.*s/%s",
				 (int)(slash - o->key), o->key, sl->svc);
			r = bsearch(&want, refs, n, sizeof(*refs), ref_cmp);
			if (!r)
				continue;
			if (grow((void **)&r->slices, &r->cap, r->nr_slices + 1,
				 sizeof(*r->slices)))
				goto fail;
			r->slices[r->nr_slices++] = sl;
		}
	return refs;
fail:
	for (size_t i = 0; i < n; i++)
		free(refs[i].slices);
	free(refs);
	return NULL;
}

struct k8s_snapshot *k8s_build(const struct k8s_store *svcs,
			       const struct k8s_store *slices, const char *zone)
{
	struct build b = { 0 };
	struct svc_ref *refs = collect(svcs, slices);
	size_t n = svcs->nr;
	int err = 0;

	b.s = calloc(1, sizeof(*b.s));
	if (!refs || !b.s)
		err = -1;
	else
		snprintf(b.s->zone, sizeof(b.s->zone), "%s", zone ? zone : "");
	for (size_t i = 0; !err && i < n; i++)
		for (int p = 0; !err && p < refs[i].svc->nr_ports; p++)
			err = add_port(&b, &refs[i], &refs[i].svc->ports[p],
				       b.s->zone);
	for (size_t i = 0; refs && i < n; i++)
		free(refs[i].slices);
	free(refs);
	free(b.c);
	if (err) {
		k8s_snapshot_free(b.s);
		return NULL;
	}
	for (int i = 0; i < b.s->nr_services; i++)
		b.s->svc[i].eps =
			b.s->eps ? b.s->eps + (uintptr_t)b.s->svc[i].eps : NULL;
	qsort(b.s->svc, b.s->nr_services, sizeof(*b.s->svc), svc_cmp);
	return b.s;
}

void k8s_snapshot_free(struct k8s_snapshot *s)
{
	if (!s)
		return;
	free(s->svc);
	free(s->eps);
	free(s);
}

bool k8s_snapshot_equal(const struct k8s_snapshot *a,
			const struct k8s_snapshot *b)
{
	if (!a || !b)
		return a == b;
	if (a->nr_services != b->nr_services || strcmp(a->zone, b->zone))
		return false;
	for (int i = 0; i < a->nr_services; i++) {
		const struct k8s_service *x = &a->svc[i], *y = &b->svc[i];

		if (strcmp(x->ns, y->ns) || strcmp(x->name, y->name) ||
		    strcmp(x->port_name, y->port_name) || x->vip != y->vip ||
		    x->port != y->port || x->nr_eps != y->nr_eps ||
		    (x->nr_eps &&
		     memcmp(x->eps, y->eps, x->nr_eps * sizeof(*x->eps))))
			return false;
	}
	return true;
}

const struct k8s_service *k8s_snapshot_find(const struct k8s_snapshot *s,
					    const char *ns, const char *name,
					    const char *port)
{
	char num[8];

	for (int i = 0; s && i < s->nr_services; i++) {
		const struct k8s_service *v = &s->svc[i];

		snprintf(num, sizeof(num), "%u", v->port);
		if (!strcmp(v->ns, ns) && !strcmp(v->name, name) &&
		    (!strcmp(v->port_name, port) || !strcmp(num, port)))
			return v;
	}
	return NULL;
}

int k8s_service_addrs(const struct k8s_service *v, struct sockaddr_in *out,
		      bool *drain, int max)
{
	int n = 0;

	for (int i = 0; i < v->nr_eps && n < max; i++, n++) {
		memset(&out[n], 0, sizeof(out[n]));
		out[n].sin_family = AF_INET;
		out[n].sin_addr.s_addr = v->eps[i].addr;
		out[n].sin_port = htons(v->eps[i].port);
		drain[n] = v->eps[i].state != K8S_EP_READY;
	}
	return n;
}

const char *k8s_ep_state_str(int state)
{
	switch (state) {
	case K8S_EP_READY:
		return "ready";
	case K8S_EP_DRAINING:
		return "draining";
	case K8S_EP_OTHER_ZONE:
		return "other-zone";
	}
	return "?";
}

static struct json_object *jip(uint32_t addr)
{
	char buf[INET_ADDRSTRLEN];
	struct in_addr a = { .s_addr = addr };

	return json_object_new_string(inet_ntop(AF_INET, &a, buf, sizeof(buf)));
}

char *k8s_snapshot_json(const struct k8s_snapshot *s)
{
	struct json_object *root = json_object_new_object();
	struct json_object *svcs = json_object_new_array();
	char *out;

	json_object_object_add(root, "seq", json_object_new_int64(s->seq));
	json_object_object_add(root, "zone", json_object_new_string(s->zone));
	json_object_object_add(root, "services", svcs);
	for (int i = 0; i < s->nr_services; i++) {
		const struct k8s_service *v = &s->svc[i];
		struct json_object *o = json_object_new_object();
		struct json_object *eps = json_object_new_array();

		json_object_object_add(o, "namespace",
				       json_object_new_string(v->ns));
		json_object_object_add(o, "name",
				       json_object_new_string(v->name));
		json_object_object_add(o, "port_name",
				       json_object_new_string(v->port_name));
		json_object_object_add(o, "vip", jip(v->vip));
		json_object_object_add(o, "port", json_object_new_int(v->port));
		for (int j = 0; j < v->nr_eps; j++) {
			struct json_object *e = json_object_new_object();

			json_object_object_add(e, "addr", jip(v->eps[j].addr));
			json_object_object_add(
				e, "port", json_object_new_int(v->eps[j].port));
			json_object_object_add(
				e, "state",
				json_object_new_string(
					k8s_ep_state_str(v->eps[j].state)));
			json_object_array_add(eps, e);
		}
		json_object_object_add(o, "endpoints", eps);
		json_object_array_add(svcs, o);
	}
	out = strdup(json_object_to_json_string_ext(
		root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
	return out;
}

struct k8s_snapshot *k8s_snapshot_dup(const struct k8s_snapshot *s)
{
	struct k8s_snapshot *d = calloc(1, sizeof(*d));
	size_t nr_eps = 0;

	if (!d)
		return NULL;
	*d = *s;
	d->svc = NULL;
	d->eps = NULL;
	for (int i = 0; i < s->nr_services; i++)
		nr_eps += s->svc[i].nr_eps;
	d->svc = malloc((size_t)(s->nr_services > 0 ? s->nr_services : 1) *
			sizeof(*d->svc));
	d->eps = malloc((nr_eps ? nr_eps : 1) * sizeof(*d->eps));
	if (!d->svc || !d->eps) {
		k8s_snapshot_free(d);
		return NULL;
	}
	nr_eps = 0;
	for (int i = 0; i < s->nr_services; i++) {
		d->svc[i] = s->svc[i];
		d->svc[i].eps = d->eps + nr_eps;
		if (s->svc[i].nr_eps)
			memcpy(d->svc[i].eps, s->svc[i].eps,
			       s->svc[i].nr_eps * sizeof(*d->eps));
		nr_eps += s->svc[i].nr_eps;
	}
	return d;
}
