// SPDX-License-Identifier: GPL-2.0
/*
 * Attaching the interception programs (bpf/intercept.h) for
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
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "daemon.h"
#include "h2lb.skel.h"
#include "links.h"
#include "log.h"
#include "steer.h"

/* libbpf 1.1 predates tcx; the kernel (6.6+) has it. */
#define TCX_INGRESS 46 /* enum bpf_attach_type BPF_TCX_INGRESS */

#define RESCAN_MS 1000

struct tc_link {
	int ifindex;
	int fd; /* bpf_link; -1: attaching failed, not tried again */
	char name[IF_NAMESIZE];
};

struct intercept {
	struct tc_link tc[H2LB_MAX_INTERCEPT_DEVS];
	int nr_tc;
	uint64_t rescan_at_ms;
	bool steered;
	int cg_fd;
	struct bpf_link *links[4]; /* connect4/6, getpeername4/6 */
};

static bool dev_wanted(struct daemon *d, const char *name)
{
	char *list = strdup(d->opts.intercept_devs), *save = NULL;
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

static void tc_attach(struct daemon *d, int ifindex, const char *name)
{
	struct intercept *ic = d->ic;
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
	fd = bpf_link_create(bpf_program__fd(d->skel->progs.h2lb_tc_ingress),
			     ifindex, TCX_INGRESS, NULL);
	if (fd < 0)
		pr_warn("intercept: tc ingress on %s: %s", name,
			strerror(errno));
	else
		pr_info("intercept: tc ingress on %s", name);
	l = &ic->tc[ic->nr_tc++];
	l->ifindex = ifindex;
	l->fd = fd;
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
static void tc_rescan(struct daemon *d)
{
	static struct link links[H2LB_MAX_INTERCEPT_DEVS * 4];
	struct intercept *ic = d->ic;
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
		if (ic->tc[i].fd >= 0)
			close(ic->tc[i].fd);
		ic->tc[i] = ic->tc[--ic->nr_tc];
	}
	for (int i = 0; i < n; i++) {
		const struct link *br;

		if (!dev_wanted(d, links[i].name))
			continue;
		if (!tc_find(ic, links[i].ifindex))
			tc_attach(d, links[i].ifindex, links[i].name);
		br = links[i].master ? link_by_index(links, n, links[i].master)
				     : NULL;
		if (br && !tc_find(ic, br->ifindex))
			tc_attach(d, br->ifindex, br->name);
	}
}

static int cgroup_attach(struct daemon *d)
{
	struct bpf_program *progs[] = {
		d->skel->progs.h2lb_connect4,
		d->skel->progs.h2lb_connect6,
		d->skel->progs.h2lb_getpeername4,
		d->skel->progs.h2lb_getpeername6,
	};
	struct intercept *ic = d->ic;

	ic->cg_fd = open(d->opts.intercept_cgroup, O_RDONLY | O_DIRECTORY);
	if (ic->cg_fd < 0) {
		pr_err("intercept: cgroup %s: %s", d->opts.intercept_cgroup,
		       strerror(errno));
		return -1;
	}

	for (int i = 0; i < 4; i++) {
		ic->links[i] = bpf_program__attach_cgroup(progs[i], ic->cg_fd);
		if (!ic->links[i]) {
			pr_err("intercept: attaching %s to cgroup %s: %s",
			       bpf_program__name(progs[i]),
			       d->opts.intercept_cgroup, strerror(errno));
			return -1;
		}
	}
	pr_info("intercept: connect and getpeername programs on cgroup %s",
		d->opts.intercept_cgroup);
	return 0;
}

int intercept_start(struct daemon *d)
{
	char err[512];

	if (d->opts.intercept == INTERCEPT_NONE)
		return 0;
	d->ic = calloc(1, sizeof(*d->ic));
	if (!d->ic)
		return -1;
	d->ic->cg_fd = -1;
	if (d->opts.intercept == INTERCEPT_CGROUP)
		return cgroup_attach(d);
	if (steer_install(err, sizeof(err))) {
		pr_err("intercept: %s", err);
		return -1;
	}
	d->ic->steered = true;
	tc_rescan(d);
	if (!d->ic->nr_tc)
		pr_warn("intercept: no device matches '%s' yet",
			d->opts.intercept_devs);
	return 0;
}

void intercept_tick(struct daemon *d)
{
	if (d->ic && d->opts.intercept == INTERCEPT_TC &&
	    now_ms() >= d->ic->rescan_at_ms)
		tc_rescan(d);
}

void intercept_stop(struct daemon *d)
{
	struct intercept *ic = d->ic;

	if (!ic)
		return;
	for (int i = 0; i < ic->nr_tc; i++)
		if (ic->tc[i].fd >= 0)
			close(ic->tc[i].fd);
	for (int i = 0; i < 4; i++)
		bpf_link__destroy(ic->links[i]);
	if (ic->cg_fd >= 0)
		close(ic->cg_fd);
	if (ic->steered)
		steer_remove();
	free(ic);
	d->ic = NULL;
}
