// SPDX-License-Identifier: GPL-2.0
/*
 * Attaching the interception programs (bpf/intercept.bpf.c) for
 * `run --intercept tc|cgroup`.
 *
 * Every attachment is a BPF link held only by the daemon's file
 * descriptor, never pinned: when the daemon exits, however it exits, the
 * kernel detaches them, and connections to the VIPs take the kernel's
 * own path (kube-proxy) again.
 *
 * tc: the devices are names or shell patterns ("veth*", "cali*"): pods
 * come and go, so the list is matched again every second and new
 * devices get the program too, and so do the bridges they are ports of.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "intercept.h"
#include "kern.h"
#include "links.h"
#include "log.h"
#include "steer.h"

#define RESCAN_MS 1000

struct tc_link {
	int ifindex;
	int fd;	    /* bpf_link; -1: attaching failed, not tried again */
	int bridge; /* the bridge it is a port of, as "bridge_ports" has it */
	char name[IF_NAMESIZE];
};

struct intercept {
	struct kern *k;
	const struct run_opts *opts;
	struct tc_link tc[H2LB_MAX_INTERCEPT_DEVS];
	int nr_tc;
	uint64_t rescan_at_ms;
	bool steered;
	int cg_fd;
};

static bool dev_wanted(struct intercept *ic, const char *name)
{
	char *list = strdup(ic->opts->intercept_devs), *save = NULL;
	bool hit = false;

	for (char *p = list ? strtok_r(list, ",", &save) : NULL; p && !hit;
	     p = strtok_r(NULL, ",", &save))
		hit = !fnmatch(p, name, 0);
	free(list);
	return hit;
}

static struct tc_link *tc_find(struct intercept *ic, int ifindex)
{
	for (int i = 0; i < ic->nr_tc; i++)
		if (ic->tc[i].ifindex == ifindex)
			return &ic->tc[i];
	return NULL;
}

static void tc_attach(struct intercept *ic, int ifindex, const char *name)
{
	struct tc_link *l;
	int fd;

	if (ic->nr_tc == H2LB_MAX_INTERCEPT_DEVS) {
		static bool said;

		if (!said)
			pr_warn("intercept: more than %d devices, %s and others left out",
				H2LB_MAX_INTERCEPT_DEVS, name);
		said = true;
		return;
	}
	fd = kern_tc_attach(ic->k, ifindex);
	if (fd < 0)
		pr_warn("intercept: tc ingress on %s: %s", name,
			strerror(errno));
	else
		pr_info("intercept: tc ingress on %s", name);
	l = &ic->tc[ic->nr_tc++];
	l->ifindex = ifindex;
	l->fd = fd;
	l->bridge = 0;
	snprintf(l->name, sizeof(l->name), "%s", name);
}

static const struct link *link_by_index(const struct link *l, int n,
					int ifindex)
{
	for (int i = 0; i < n; i++)
		if (l[i].ifindex == ifindex)
			return &l[i];
	return NULL;
}

/*
 * Attach to new matching devices, and to the bridge of any of them that
 * is a bridge port: an assignment made on the port does not survive the
 * bridge, while the mark does (it keeps br_netfilter's DNAT away), so the
 * bridge's run assigns again; without it, the port's connections would
 * be marked but land on no socket. Forget links of devices gone (the
 * kernel detached those already).
 */
static void tc_rescan(struct intercept *ic)
{
	static struct link links[H2LB_MAX_INTERCEPT_DEVS * 4];
	int n = links_list(links, H2LB_MAX_INTERCEPT_DEVS * 4);

	ic->rescan_at_ms = now_ms() + RESCAN_MS;
	if (n < 0) {
		pr_warn("intercept: listing devices: %s", strerror(errno));
		return;
	}
	for (int i = 0; i < ic->nr_tc;) {
		if (link_by_index(links, n, ic->tc[i].ifindex)) {
			i++;
			continue;
		}
		pr_info("intercept: %s is gone", ic->tc[i].name);
		kern_bridge_port_set(ic->k, ic->tc[i].ifindex, NULL);
		if (ic->tc[i].fd >= 0)
			close(ic->tc[i].fd);
		ic->tc[i] = ic->tc[--ic->nr_tc];
	}
	for (int i = 0; i < n; i++) {
		const struct link *br;
		struct tc_link *l;

		if (!dev_wanted(ic, links[i].name))
			continue;
		if (!tc_find(ic, links[i].ifindex))
			tc_attach(ic, links[i].ifindex, links[i].name);
		br = links[i].master ? link_by_index(links, n, links[i].master)
				     : NULL;
		if (br && !tc_find(ic, br->ifindex))
			tc_attach(ic, br->ifindex, br->name);
		/* Replies to legs from a client's address that come in on
		 * a port take the bridge's address (intercept.bpf.c): told
		 * to the kernel when a device joins or leaves a bridge. */
		l = tc_find(ic, links[i].ifindex);
		if (l && l->bridge != (br ? br->ifindex : 0)) {
			kern_bridge_port_set(ic->k, l->ifindex,
					     br ? br->mac : NULL);
			l->bridge = br ? br->ifindex : 0;
		}
	}
}

static int cgroup_attach(struct intercept *ic)
{
	const char *path = ic->opts->intercept_cgroup;

	ic->cg_fd = open(path, O_RDONLY | O_DIRECTORY);
	if (ic->cg_fd < 0) {
		pr_err("intercept: cgroup %s: %s", path, strerror(errno));
		return -1;
	}
	if (kern_cgroup_intercept_attach(ic->k, ic->cg_fd, path))
		return -1;
	pr_info("intercept: connect and getpeername programs on cgroup %s",
		path);
	return 0;
}

struct intercept *intercept_start(struct kern *k, const struct run_opts *o)
{
	struct intercept *ic;
	char err[512];

	if (o->intercept == INTERCEPT_NONE)
		return NULL;
	ic = calloc(1, sizeof(*ic));
	if (!ic)
		return NULL;
	ic->k = k;
	ic->opts = o;
	ic->cg_fd = -1;
	/* The cgroup mode needs the rule and route only for the legs'
	 * replies (steer.c). */
	if (o->intercept == INTERCEPT_TC ||
	    o->leg_source == LEG_SOURCE_CLIENT) {
		if (steer_install(o->leg_source == LEG_SOURCE_CLIENT, err,
				  sizeof(err))) {
			pr_err("intercept: %s", err);
			goto fail;
		}
		ic->steered = true;
	}
	if (o->intercept == INTERCEPT_CGROUP) {
		if (cgroup_attach(ic))
			goto fail;
		return ic;
	}
	tc_rescan(ic);
	if (!ic->nr_tc)
		pr_warn("intercept: no device matches '%s' yet",
			o->intercept_devs);
	return ic;
fail:
	intercept_stop(ic);
	return NULL;
}

void intercept_tick(struct intercept *ic)
{
	if (ic && ic->opts->intercept == INTERCEPT_TC &&
	    now_ms() >= ic->rescan_at_ms)
		tc_rescan(ic);
}

/* The cgroup links go with the kernel layer (kern_close). */
void intercept_stop(struct intercept *ic)
{
	if (!ic)
		return;
	for (int i = 0; i < ic->nr_tc; i++)
		if (ic->tc[i].fd >= 0)
			close(ic->tc[i].fd);
	if (ic->cg_fd >= 0)
		close(ic->cg_fd);
	if (ic->steered)
		steer_remove();
	free(ic);
}
