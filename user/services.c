// SPDX-License-Identifier: GPL-2.0
/*
 * Balanced Service ports, each with its listening socket, its backends
 * and, when intercepted, its VIP.
 *
 * A client's Service is known from the socket it arrives on: sockops
 * looks the accepted socket's local address up in the endpoints map.
 * Intercepted by tc, that address is the VIP:port the client dialled (the
 * kernel's getsockname()); through cgroup/connect4 or --listen, it is the
 * Service's own listener. Both are registered here, so the verdict picks
 * backends of that Service only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "conns.h"
#include "k8s.h"
#include "kern.h"
#include "log.h"
#include "services.h"

static bool same_addr(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
	return a->sin_addr.s_addr == b->sin_addr.s_addr &&
	       a->sin_port == b->sin_port;
}

/* The "services" map entry of @i, for status and metrics. */
static void publish(struct lb *lb, struct services *sv, int i, uint32_t state)
{
	struct uservice *v = &sv->svc[i];
	struct h2lb_service e = { .state = state };

	if (state != H2LB_SVC_UNUSED) {
		snprintf(e.name, sizeof(e.name), "%s", v->name);
		if (lb->opts->intercept) {
			e.vip = v->vip.sin_addr.s_addr;
			e.vip_port = ntohs(v->vip.sin_port);
		}
		e.listen_addr = v->listen.sin_addr.s_addr;
		e.listen_port = ntohs(v->listen.sin_port);
	}
	kern_service_publish(lb->k, i, &e);
}

static void vip_set(struct lb *lb, struct uservice *v, int i, bool add)
{
	if (!v->vip.sin_port || lb->opts->intercept == INTERCEPT_NONE)
		return;
	if (!add) {
		/* The VIP first: from now on new connections take the
		 * kernel's path; those accepted keep their Service. */
		kern_vip_remove(lb->k, &v->vip, &v->listen);
		kern_endpoint_set(lb->k, &v->vip, H2LB_ROLE_CLIENT, i, false);
		return;
	}
	kern_endpoint_set(lb->k, &v->vip, H2LB_ROLE_CLIENT, i, true);
	kern_vip_add(lb->k, &v->vip, &v->listen, i);
}

/* Service @i's VIP is now @vip. A ClusterIP never changes, but a
 * Service can be deleted and made again under the same name, a named port
 * can change its number, and --service learns its VIP late. */
static void vip_move(struct lb *lb, struct services *sv, int i,
		     const struct sockaddr_in *vip)
{
	struct uservice *v = &sv->svc[i];

	if (same_addr(&v->vip, vip))
		return;
	vip_set(lb, v, i, false);
	v->vip = *vip;
	vip_set(lb, v, i, true);
	publish(lb, sv, i, H2LB_SVC_OPEN);
}

/*
 * Open Service @i: listen on @at (port 0: any free port) and, if @vip is
 * given and interception is on, take connections to it.
 */
static int service_open(struct lb *lb, struct services *sv, int i,
			const char *name, const struct sockaddr_in *at,
			const struct sockaddr_in *vip)
{
	struct uservice *v = &sv->svc[i];
	struct epoll_event ev = { .events = EPOLLIN,
				  .data.u64 = SERVICE_TAG(i) };
	socklen_t len = sizeof(v->listen);
	char buf[32], vbuf[32];
	int one = 1;

	memset(v, 0, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "%s", name);
	if (vip)
		v->vip = *vip;
	v->listen_fd =
		socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (v->listen_fd < 0)
		return -1;
	setsockopt(v->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* tc hands it connections to the VIP, which is no local address:
	 * replies from it need a route that allows any source. The fwmark
	 * rule (steer.c) gives only the incoming side a local route. */
	if (lb->opts->intercept == INTERCEPT_TC &&
	    setsockopt(v->listen_fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)))
		pr_warn("%s: IP_TRANSPARENT: %s", name, strerror(errno));
	if (bind(v->listen_fd, (const struct sockaddr *)at, sizeof(*at)) ||
	    listen(v->listen_fd, 1024) ||
	    getsockname(v->listen_fd, (struct sockaddr *)&v->listen, &len)) {
		pr_err("%s: listen on %s: %s", name,
		       addr_str(at, buf, sizeof(buf)), strerror(errno));
		close(v->listen_fd);
		return -1;
	}
	v->used = true;
	if (kern_endpoint_set(lb->k, &v->listen, H2LB_ROLE_CLIENT, i, true) ||
	    epoll_ctl(lb->epfd, EPOLL_CTL_ADD, v->listen_fd, &ev)) {
		pr_err("%s: registering the listener: %s", name,
		       strerror(errno));
		return -1;
	}
	vip_set(lb, v, i, true);
	publish(lb, sv, i, H2LB_SVC_OPEN);
	pr_info("service %d %s: listening on %s%s%s", i, name,
		addr_str(&v->listen, buf, sizeof(buf)),
		v->vip.sin_port && lb->opts->intercept ? ", intercepting " : "",
		v->vip.sin_port && lb->opts->intercept
			? addr_str(&v->vip, vbuf, sizeof(vbuf))
			: "");
	return 0;
}

/*
 * The backends of Service @svc are now @want: pooled legs of the
 * backends that go are closed at once. Endpoints that do not fit are
 * left out, said in the log when their count changes (rate-limited: a
 * cluster can change every Service at once), and counted for `h2lb
 * status` and /metrics.
 */
static void set_backends(struct lb *lb, struct services *sv, int svc,
			 const struct sockaddr_in *want, const bool *drain,
			 int n)
{
	struct backends_left *was = &sv->svc[svc].left, now;

	backends_set(&lb->bs, svc, want, drain, n, &now);
	conns_prune(lb);
	lb->stats.endpoints_over_cap += now.over_cap - was->over_cap;
	lb->stats.endpoints_no_slot += now.no_slot - was->no_slot;
	if (now.over_cap > was->over_cap)
		pr_warn_ratelimited(
			"service %d %s: %d of %d endpoint(s) left out: over --max-backends-per-service %u",
			svc, sv->svc[svc].name, now.over_cap, n,
			kern_limits(lb->k)->svc_backends);
	if (now.no_slot > was->no_slot)
		pr_warn_ratelimited(
			"service %d %s: %d endpoint(s) left out: all %u backend slots (--max-backends) are taken",
			svc, sv->svc[svc].name, now.no_slot,
			kern_limits(lb->k)->backends);
	if (!now.over_cap && !now.no_slot && (was->over_cap || was->no_slot))
		pr_info("service %d %s: all %d endpoint(s) balanced again", svc,
			sv->svc[svc].name, n);
	*was = now;
}

/* Stop taking connections for Service @i; its backends drain. The
 * index is free again once they are gone (service_free). */
static void service_close(struct lb *lb, struct services *sv, int i)
{
	struct uservice *v = &sv->svc[i];

	if (v->listen_fd < 0)
		return;
	pr_info("service %d %s: removed", i, v->name);
	vip_set(lb, v, i, false);
	kern_endpoint_set(lb->k, &v->listen, H2LB_ROLE_CLIENT, i, false);
	close(v->listen_fd);
	v->listen_fd = -1;
	set_backends(lb, sv, i, NULL, NULL, 0);
	publish(lb, sv, i, H2LB_SVC_CLOSED);
}

/* A closed Service's index can be reused once no backend and no client
 * of it is left, so no stream can pick the new Service's backends. */
static bool service_free(struct lb *lb, struct services *sv, int i)
{
	if (!sv->svc[i].used)
		return true;
	if (sv->svc[i].listen_fd >= 0)
		return false;
	for (int b = 0; b < lb->bs.nr; b++)
		if (lb->bs.be[b].service == i && !backend_unused(&lb->bs, b))
			return false;
	conn_for_each(&lb->conns, c)
	{
		if (c->role == H2LB_ROLE_CLIENT && c->service == i)
			return false;
	}
	sv->svc[i].used = false;
	sv->freed++;
	publish(lb, sv, i, H2LB_SVC_UNUSED);
	return true;
}

static int service_find(struct services *sv, const char *name)
{
	for (int i = 1; i < sv->max; i++)
		if (sv->svc[i].used && sv->svc[i].listen_fd >= 0 &&
		    !strcmp(sv->svc[i].name, name))
			return i;
	return -1;
}

/* NS/NAME:PORT, PORT the port's name if it has one. */
static void k8s_name(const struct k8s_service *v, char *buf, size_t len)
{
	if (v->port_name[0])
		snprintf(buf, len, "%s/%s:%s", v->ns, v->name, v->port_name);
	else
		snprintf(buf, len, "%s/%s:%u", v->ns, v->name, v->port);
}

/* The index of Service port @v: its own (a new one gets a listener on
 * --listen's address). */
static int service_of(struct lb *lb, struct services *sv,
		      const struct k8s_service *v,
		      const struct sockaddr_in *vip)
{
	struct sockaddr_in at = lb->opts->listen;
	char name[160];
	int i;

	k8s_name(v, name, sizeof(name));
	i = service_find(sv, name);
	if (i > 0) {
		vip_move(lb, sv, i, vip);
		return i;
	}
	for (i = 1; i < sv->max && !service_free(lb, sv, i); i++)
		;
	if (i >= sv->max) {
		/* Counted, and said when the count changes (services_k8s). */
		if (!sv->left_out++)
			snprintf(sv->first_left_out, sizeof(sv->first_left_out),
				 "%s", name);
		pr_debug("kubernetes: %s left out: no Service index free",
			 name);
		return -1;
	}
	at.sin_port = 0;
	return service_open(lb, sv, i, name, &at, vip) ? -1 : i;
}

/* Service ports left out for a full table: in the log when their number
 * changes, and for `h2lb status` and /metrics. */
static void services_report_left_out(struct lb *lb, struct services *sv)
{
	lb->stats.services_left_out = sv->left_out;
	if (sv->left_out == sv->left_out_reported)
		return;
	if (sv->left_out)
		pr_warn_ratelimited(
			"kubernetes: %d balanced Service port(s) left out (%s first): all %d (--max-services) are taken",
			sv->left_out, sv->first_left_out, sv->max - 1);
	else
		pr_info("kubernetes: every balanced Service port has an index again");
	sv->left_out_reported = sv->left_out;
}

/* A new view of the cluster: follow every balanced Service port, or
 * the one --service names. */
void services_k8s(struct lb *lb, struct services *sv, struct k8s_snapshot *s)
{
	const struct run_opts *o = lb->opts;
	static struct sockaddr_in addrs[H2LB_MAX_BACKENDS];
	static bool drain[H2LB_MAX_BACKENDS];
	bool seen[H2LB_MAX_SERVICES] = { 0 };

	sv->left_out = 0;
	for (int k = 0; k < s->nr_services; k++) {
		const struct k8s_service *v = &s->svc[k];
		struct sockaddr_in vip = { .sin_family = AF_INET,
					   .sin_addr.s_addr = v->vip,
					   .sin_port = htons(v->port) };
		char name[160];
		int i, n;

		if (o->k8s_name) {
			if (v != k8s_snapshot_find(s, o->k8s_ns, o->k8s_name,
						   o->k8s_port))
				continue;
			i = 0;
			vip_move(lb, sv, 0, &vip);
		} else if (!v->vip) {
			continue; /* headless: no VIP, nothing to balance */
		} else {
			i = service_of(lb, sv, v, &vip);
			if (i < 0)
				continue;
		}
		n = k8s_service_addrs(v, addrs, drain, H2LB_MAX_BACKENDS);
		k8s_name(v, name, sizeof(name));
		pr_info("kubernetes: %s has %d endpoint(s)", name, n);
		set_backends(lb, sv, i, addrs, drain, n);
		seen[i] = true;
	}
	if (o->k8s_name && !seen[0]) {
		pr_info("kubernetes: %s/%s:%s is no balanced Service port (yet)",
			o->k8s_ns, o->k8s_name, o->k8s_port);
		set_backends(lb, sv, 0, NULL, NULL, 0);
	}
	for (int i = 1; i < sv->max; i++)
		if (sv->svc[i].used && !seen[i])
			service_close(lb, sv, i);
	services_report_left_out(lb, sv);
	/* Kept: what a full table left out is taken again from it once
	 * room is made (services_tick). */
	if (sv->last != s)
		k8s_snapshot_free(sv->last);
	sv->last = s;
	sv->freed_seen = lb->bs.freed + sv->freed;
}

/* What a full table left out gets the room that removed Services and
 * backends leave once they have drained: the set is applied again. */
static void services_retry(struct lb *lb, struct services *sv)
{
	if (!lb->stats.endpoints_no_slot && !lb->stats.services_left_out)
		return;
	if (lb->bs.freed + sv->freed == sv->freed_seen)
		return;
	pr_info("room was made: applying the backend sets again");
	if (sv->last)
		services_k8s(lb, sv, sv->last);
	else if (!lb->opts->kubernetes)
		services_load_static(lb, sv);
	sv->freed_seen = lb->bs.freed + sv->freed;
}

/* Forget removed Services once they are drained (status shows them as
 * "closed" until then). Once a second: it walks the connections. */
void services_tick(struct lb *lb, struct services *sv)
{
	static uint64_t next;

	if (now_ms() < next)
		return;
	next = now_ms() + 1000;
	for (int i = 1; i < sv->max; i++)
		if (sv->svc[i].used && sv->svc[i].listen_fd < 0)
			service_free(lb, sv, i);
	services_retry(lb, sv);
}

bool service_own_legs(const struct lb *lb, const struct services *sv, int i)
{
	/* (--service gives Service 0 its ClusterIP without interception:
	 * its clients reach the listen address, from anywhere.) */
	return sv->svc[i].vip.sin_port && lb->opts->intercept &&
	       lb->opts->leg_source == LEG_SOURCE_CLIENT;
}

void services_stop(struct lb *lb, struct services *sv)
{
	for (int i = 0; i < sv->max; i++) {
		struct uservice *v = &sv->svc[i];

		if (!v->used || v->listen_fd < 0)
			continue;
		if (v->vip.sin_port)
			kern_vip_no_new(lb->k, &v->vip);
		conns_accept(lb, v->listen_fd, i, service_own_legs(lb, sv, i));
		kern_endpoint_set(lb->k, &v->listen, H2LB_ROLE_CLIENT, i,
				  false);
		close(v->listen_fd);
		v->listen_fd = -1;
	}
}

void services_close(struct lb *lb, struct services *sv)
{
	k8s_snapshot_free(sv->last);
	sv->last = NULL;
	for (int i = 0; i < sv->max; i++)
		if (sv->svc[i].used && sv->svc[i].listen_fd >= 0) {
			vip_set(lb, &sv->svc[i], i, false);
			close(sv->svc[i].listen_fd);
			sv->svc[i].listen_fd = -1;
		}
}

void services_init(struct services *sv, int max)
{
	sv->max = max < H2LB_MAX_SERVICES ? max : H2LB_MAX_SERVICES;
	for (int i = 0; i < H2LB_MAX_SERVICES; i++)
		sv->svc[i].listen_fd = -1;
}

const char *service_label(const struct services *sv, int i)
{
	return i >= 0 && i < H2LB_MAX_SERVICES ? sv->svc[i].name : "?";
}

int services_open_listen(struct lb *lb, struct services *sv)
{
	const struct run_opts *o = lb->opts;
	char name[160];

	if (o->kubernetes && !o->k8s_name)
		return 0; /* every balanced Service has its own */
	if (o->k8s_name)
		snprintf(name, sizeof(name), "%s/%s:%s", o->k8s_ns, o->k8s_name,
			 o->k8s_port);
	else
		snprintf(name, sizeof(name), "static");
	return service_open(lb, sv, 0, name, &o->listen,
			    o->vip.sin_port ? &o->vip : NULL);
}

int services_load_static(struct lb *lb, struct services *sv)
{
	static struct sockaddr_in want[H2LB_MAX_BACKENDS];
	const struct run_opts *o = lb->opts;
	char err[256];
	int n;

	if (o->backends_file)
		n = addr_parse_file(o->backends_file, want, o->max_backends,
				    err, sizeof(err));
	else
		n = addr_parse_list(o->backends, want, o->max_backends, err,
				    sizeof(err));
	if (n < 0) {
		pr_err("backends: %s", err);
		return -1;
	}
	set_backends(lb, sv, 0, want, NULL, n);
	sv->freed_seen = lb->bs.freed + sv->freed;
	return 0;
}
