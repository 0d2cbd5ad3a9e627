// SPDX-License-Identifier: GPL-2.0
/*
 * The network devices of the daemon's namespace, from an rtnetlink dump:
 * /sys/class/net can belong to another namespace (nsenter keeps the
 * host's sysfs), and a device's bridge is only in IFLA_MASTER there.
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>

#include "links.h"

struct dump {
	struct link *out;
	int max, n;
};

static int attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);

	if (mnl_attr_type_valid(attr, IFLA_MAX) >= 0)
		tb[type] = attr;
	return MNL_CB_OK;
}

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);
	struct nlattr *tb[IFLA_MAX + 1] = { 0 };
	struct dump *d = data;
	struct link *l;

	if (d->n == d->max)
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*ifm), attr_cb, tb);
	if (!tb[IFLA_IFNAME])
		return MNL_CB_OK;
	l = &d->out[d->n++];
	memset(l, 0, sizeof(*l));
	l->ifindex = ifm->ifi_index;
	l->master = tb[IFLA_MASTER] ? mnl_attr_get_u32(tb[IFLA_MASTER]) : 0;
	snprintf(l->name, sizeof(l->name), "%s",
		 mnl_attr_get_str(tb[IFLA_IFNAME]));
	if (tb[IFLA_ADDRESS] &&
	    mnl_attr_get_payload_len(tb[IFLA_ADDRESS]) == sizeof(l->mac))
		memcpy(l->mac, mnl_attr_get_payload(tb[IFLA_ADDRESS]),
		       sizeof(l->mac));
	return MNL_CB_OK;
}

int links_list(struct link *out, int max)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mnl_socket *nl = mnl_socket_open(NETLINK_ROUTE);
	struct dump d = { .out = out, .max = max };
	unsigned int seq = time(NULL), portid;
	struct nlmsghdr *nlh;
	struct rtgenmsg *rt;
	int ret = -1;

	if (!nl)
		return -1;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	rt = mnl_nlmsg_put_extra_header(nlh, sizeof(*rt));
	rt->rtgen_family = AF_PACKET;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		goto out;
	portid = mnl_socket_get_portid(nl);
	/* A dump ends with NLMSG_DONE (MNL_CB_STOP), after a few messages
	 * per receive buffer. */
	for (int i = 0; i < 4096; i++) {
		ret = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (ret <= 0)
			break;
		ret = mnl_cb_run(buf, ret, seq, portid, link_cb, &d);
		if (ret <= MNL_CB_STOP)
			break;
	}
out:
	mnl_socket_close(nl);
	return ret < 0 ? -1 : d.n;
}
