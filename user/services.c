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
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "addr.h"
#include "daemon.h"
#include "h2lb.skel.h"
#include "k8s.h"
#include "log.h"

static bool same_addr(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
	return a->sin_addr.s_addr == b->sin_addr.s_addr &&
	       a->sin_port == b->sin_port;
}

/* The "services" map entry of @i, for status and metrics. */
static void publish(struct daemon *d, int i, uint32_t state)
{
	struct uservice *v = &d->svc[i];
	struct h2lb_service e = { .state = state };
	__u32 key = i;

	if (state != H2LB_SVC_UNUSED) {
		snprintf(e.name, sizeof(e.name), "%s", v->name);
		if (d->opts.intercept) {
			e.vip = v->vip.sin_addr.s_addr;
			e.vip_port = ntohs(v->vip.sin_port);
		}
		e.listen_addr = v->listen.sin_addr.s_addr;
		e.listen_port = ntohs(v->listen.sin_port);
	}
	bpf_map_update_elem(bpf_map__fd(d->skel->maps.services), &key, &e, 0);
}

static void vip_set(struct daemon *d, struct uservice *v, int i, bool add)
{
	struct h2lb_vip_key vk = { .addr = v->vip.sin_addr.s_addr,
				   .port = ntohs(v->vip.sin_port) };
	struct h2lb_vip_key fk = { .addr = v->listen.sin_addr.s_addr,
				   .port = ntohs(v->listen.sin_port) };
	struct h2lb_vip val = { .listen_addr = fk.addr,
				.listen_port = fk.port,
				.service = i };
	struct h2lb_frontend fe = { .vip = vk.addr, .port = vk.port };
	int vips = bpf_map__fd(d->skel->maps.vips);
	int fes = bpf_map__fd(d->skel->maps.frontends);

	if (!v->vip.sin_port || d->opts.intercept == INTERCEPT_NONE)
		return;
	if (!add) {
		/* The VIP first: from now on new connections take the
		 * kernel's path; those accepted keep their Service. */
		bpf_map_delete_elem(vips, &vk);
		bpf_map_delete_elem(fes, &fk);
		bpf_set_endpoint(d, &v->vip, H2LB_ROLE_CLIENT, i, false);
		return;
	}
	bpf_set_endpoint(d, &v->vip, H2LB_ROLE_CLIENT, i, true);
	bpf_map_update_elem(fes, &fk, &fe, 0);
	bpf_map_update_elem(vips, &vk, &val, 0);
}

/* Service @i's VIP is now @vip. A ClusterIP never changes, but a
 * Service can be deleted and made again under the same name, a named port
 * can change its number, and --service learns its VIP late. */
static void vip_move(struct daemon *d, int i, const struct sockaddr_in *vip)
{
	struct uservice *v = &d->svc[i];

	if (same_addr(&v->vip, vip))
		return;
	vip_set(d, v, i, false);
	v->vip = *vip;
	vip_set(d, v, i, true);
	publish(d, i, H2LB_SVC_OPEN);
}

/* Set @flags on the VIP entry of @v (it keeps being intercepted). */
static void vip_flags(struct daemon *d, struct uservice *v, uint32_t flags)
{
	struct h2lb_vip_key vk = { .addr = v->vip.sin_addr.s_addr,
				   .port = ntohs(v->vip.sin_port) };
	struct h2lb_vip val;
	int fd = bpf_map__fd(d->skel->maps.vips);

	if (!v->vip.sin_port || bpf_map_lookup_elem(fd, &vk, &val))
		return;
	val.flags |= flags;
	bpf_map_update_elem(fd, &vk, &val, 0);
}

/*
 * Open Service @i: listen on @at (port 0: any free port) and, if
 * @vip is given and interception is on, take connections to it.
 */
int service_open(struct daemon *d, int i, const char *name,
		 const struct sockaddr_in *at, const struct sockaddr_in *vip)
{
	struct uservice *v = &d->svc[i];
	struct epoll_event ev = { .events = EPOLLIN,
				  .data.u64 = TAG_LISTEN + i };
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
	if (d->opts.intercept == INTERCEPT_TC &&
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
	if (bpf_set_endpoint(d, &v->listen, H2LB_ROLE_CLIENT, i, true) ||
	    epoll_ctl(d->epfd, EPOLL_CTL_ADD, v->listen_fd, &ev)) {
		pr_err("%s: registering the listener: %s", name,
		       strerror(errno));
		return -1;
	}
	vip_set(d, v, i, true);
	publish(d, i, H2LB_SVC_OPEN);
	pr_info("service %d %s: listening on %s%s%s", i, name,
		addr_str(&v->listen, buf, sizeof(buf)),
		v->vip.sin_port && d->opts.intercept ? ", intercepting " : "",
		v->vip.sin_port && d->opts.intercept
			? addr_str(&v->vip, vbuf, sizeof(vbuf))
			: "");
	return 0;
}

/* Stop taking connections for Service @i; its backends drain. The
 * index is free again once they are gone (service_free). */
static void service_close(struct daemon *d, int i)
{
	struct uservice *v = &d->svc[i];

	if (v->listen_fd < 0)
		return;
	pr_info("service %d %s: removed", i, v->name);
	vip_set(d, v, i, false);
	bpf_set_endpoint(d, &v->listen, H2LB_ROLE_CLIENT, i, false);
	close(v->listen_fd);
	v->listen_fd = -1;
	backends_set(d, i, NULL, NULL, 0);
	publish(d, i, H2LB_SVC_CLOSED);
}

/* A closed Service's index can be reused once no backend and no client
 * of it is left, so no stream can pick the new Service's backends. */
static bool service_free(struct daemon *d, int i)
{
	if (!d->svc[i].used)
		return true;
	if (d->svc[i].listen_fd >= 0)
		return false;
	for (int b = 0; b < d->nr_backends; b++)
		if (d->be[b].service == i &&
		    (d->be[b].configured || d->be_mem[b].state))
			return false;
	for (int h = 0; h < CONN_BUCKETS; h++)
		for (struct uconn *c = d->conns[h]; c; c = c->next)
			if (c->role == H2LB_ROLE_CLIENT && c->service == i)
				return false;
	d->svc[i].used = false;
	publish(d, i, H2LB_SVC_UNUSED);
	return true;
}

static int service_find(struct daemon *d, const char *name)
{
	for (int i = 1; i < H2LB_MAX_SERVICES; i++)
		if (d->svc[i].used && d->svc[i].listen_fd >= 0 &&
		    !strcmp(d->svc[i].name, name))
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
static int service_of(struct daemon *d, const struct k8s_service *v,
		      const struct sockaddr_in *vip)
{
	struct sockaddr_in at = d->opts.listen;
	char name[160];
	int i;

	k8s_name(v, name, sizeof(name));
	i = service_find(d, name);
	if (i > 0) {
		vip_move(d, i, vip);
		return i;
	}
	for (i = 1; i < H2LB_MAX_SERVICES && !service_free(d, i); i++)
		;
	if (i == H2LB_MAX_SERVICES) {
		pr_err("kubernetes: more than %d balanced Service ports, %s left out",
		       H2LB_MAX_SERVICES - 1, name);
		return -1;
	}
	at.sin_port = 0;
	return service_open(d, i, name, &at, vip) ? -1 : i;
}

/* A new view of the cluster: follow every balanced Service port, or
 * the one --service names. */
void services_k8s(struct daemon *d, const struct k8s_snapshot *s)
{
	bool seen[H2LB_MAX_SERVICES] = { 0 };
	struct sockaddr_in addrs[H2LB_MAX_BACKENDS];
	bool drain[H2LB_MAX_BACKENDS];

	for (int k = 0; k < s->nr_services; k++) {
		const struct k8s_service *v = &s->svc[k];
		struct sockaddr_in vip = { .sin_family = AF_INET,
					   .sin_addr.s_addr = v->vip,
					   .sin_port = htons(v->port) };
		char name[160];
		int i, n;

		if (d->opts.k8s_name) {
			if (v != k8s_snapshot_find(s, d->opts.k8s_ns,
						   d->opts.k8s_name,
						   d->opts.k8s_port))
				continue;
			i = 0;
			vip_move(d, 0, &vip);
		} else if (!v->vip) {
			continue; /* headless: no VIP, nothing to balance */
		} else {
			i = service_of(d, v, &vip);
			if (i < 0)
				continue;
		}
		n = k8s_service_addrs(v, addrs, drain, H2LB_MAX_BACKENDS);
		k8s_name(v, name, sizeof(name));
		pr_info("kubernetes: %s has %d endpoint(s)", name, n);
		backends_set(d, i, addrs, drain, n);
		seen[i] = true;
	}
	if (d->opts.k8s_name && !seen[0]) {
		pr_info("kubernetes: %s/%s:%s is no balanced Service port (yet)",
			d->opts.k8s_ns, d->opts.k8s_name, d->opts.k8s_port);
		backends_set(d, 0, NULL, NULL, 0);
	}
	for (int i = 1; i < H2LB_MAX_SERVICES; i++)
		if (d->svc[i].used && !seen[i])
			service_close(d, i);
}

/* Forget removed Services once they are drained (status shows them as
 * "closed" until then). Once a second: it walks the connections. */
void services_tick(struct daemon *d)
{
	static uint64_t next;

	if (now_ms() < next)
		return;
	next = now_ms() + 1000;
	for (int i = 1; i < H2LB_MAX_SERVICES; i++)
		if (d->svc[i].used && d->svc[i].listen_fd < 0)
			service_free(d, i);
}

/* Graceful stop: connections taken stay, new ones go to the kernel's
 * path; the listeners close once what they queued is accepted. */
void services_drain(struct daemon *d)
{
	for (int i = 0; i < H2LB_MAX_SERVICES; i++) {
		struct uservice *v = &d->svc[i];

		if (!v->used || v->listen_fd < 0)
			continue;
		vip_flags(d, v, H2LB_VIP_NO_NEW);
		client_accept(d, i);
		bpf_set_endpoint(d, &v->listen, H2LB_ROLE_CLIENT, i, false);
		close(v->listen_fd);
		v->listen_fd = -1;
	}
}

void services_close(struct daemon *d)
{
	for (int i = 0; i < H2LB_MAX_SERVICES; i++)
		if (d->svc[i].used && d->svc[i].listen_fd >= 0) {
			vip_set(d, &d->svc[i], i, false);
			close(d->svc[i].listen_fd);
			d->svc[i].listen_fd = -1;
		}
}
