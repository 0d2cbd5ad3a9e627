// SPDX-License-Identifier: GPL-2.0
/*
 * What tc interception needs beside its BPF program, in the daemon's
 * network namespace:
 *
 * - a routing rule "fwmark H2LB_INTERCEPT_MARK lookup H2LB_INTERCEPT_TABLE"
 *   and in that table "local 0.0.0.0/0 dev lo": a packet that tc assigned
 *   to a listener must be delivered locally, but the VIP is no local
 *   address (docs/kernel-facts.md K10). Only marked packets are affected, so
 *   nothing changes for other traffic or when the daemon is gone.
 * - an nftables table "ip h2lb" whose raw-priority prerouting chain
 *   untracks marked packets: conntrack never sees them, so kube-proxy's
 *   DNAT of the VIP (its nat PREROUTING rules) cannot take them away.
 *
 * Legs from the clients' own addresses (--leg-source client, in either
 * interception mode) need the same rule and route for their replies,
 * which are addressed to a client pod: a mangle-priority chain marks a
 * TCP packet that belongs to a socket bound to that very address with
 * IP_TRANSPARENT (nftables' socket expression looks it up as the stack
 * would), so the stack delivers it to the leg instead of forwarding it to
 * the pod. Sockets bound to a wildcard address are left out: a
 * transparent listener on 0.0.0.0 must not take pod-to-pod traffic. The
 * mark comes after the raw chain, so these packets stay tracked: they are
 * replies of the connection the leg's SYN opened in conntrack.
 *
 * Both are installed idempotently and removed by the daemon at exit and
 * by `h2lb unload` (after a SIGKILL they stay, but do nothing: no packet
 * is marked once tc's link is gone with the daemon).
 */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <nftables/libnftables.h>

#include "h2lb.h"
#include "steer.h"

/* One rtnetlink request, answered by an ACK or an error. */
static int rtnl_request(struct nlmsghdr *nlh)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mnl_socket *nl = mnl_socket_open(NETLINK_ROUTE);
	unsigned int seq = time(NULL), portid;
	int ret = -1;

	if (!nl)
		return -errno;
	nlh->nlmsg_seq = seq;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
		goto out;
	portid = mnl_socket_get_portid(nl);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		goto out;
	ret = mnl_socket_recvfrom(nl, buf, sizeof(buf));
	if (ret >= 0)
		ret = mnl_cb_run(buf, ret, seq, portid, NULL, NULL);
out:
	if (ret < 0)
		ret = -errno;
	mnl_socket_close(nl);
	return ret < 0 ? ret : 0;
}

/* A request of @type with a header of @hdrlen bytes after it. */
static struct nlmsghdr *rtnl_msg(char *buf, int type, int flags, size_t hdrlen,
				 void **hdr)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	*hdr = mnl_nlmsg_put_extra_header(nlh, hdrlen);
	return nlh;
}

static int rule(int type, int flags)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct fib_rule_hdr *frh;
	struct nlmsghdr *nlh =
		rtnl_msg(buf, type, flags, sizeof(*frh), (void **)&frh);

	frh->family = AF_INET;
	frh->action = FR_ACT_TO_TBL;
	mnl_attr_put_u32(nlh, FRA_FWMARK, H2LB_INTERCEPT_MARK);
	mnl_attr_put_u32(nlh, FRA_FWMASK, H2LB_INTERCEPT_MARK);
	mnl_attr_put_u32(nlh, FRA_TABLE, H2LB_INTERCEPT_TABLE);
	mnl_attr_put_u32(nlh, FRA_PRIORITY, H2LB_INTERCEPT_TABLE);
	return rtnl_request(nlh);
}

static int route(int type, int flags)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct rtmsg *rtm;
	struct nlmsghdr *nlh =
		rtnl_msg(buf, type, flags, sizeof(*rtm), (void **)&rtm);

	rtm->rtm_family = AF_INET;
	rtm->rtm_table = RT_TABLE_UNSPEC; /* RTA_TABLE says which */
	rtm->rtm_protocol = RTPROT_STATIC;
	rtm->rtm_scope = RT_SCOPE_HOST;
	rtm->rtm_type = RTN_LOCAL;
	mnl_attr_put_u32(nlh, RTA_TABLE, H2LB_INTERCEPT_TABLE);
	mnl_attr_put_u32(nlh, RTA_OIF, if_nametoindex("lo"));
	return rtnl_request(nlh);
}

static int nft(const char *cmd, char *err, size_t errlen)
{
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	int ret;

	if (!ctx) {
		if (err)
			snprintf(err, errlen, "nftables: no context");
		return -1;
	}
	nft_ctx_buffer_output(ctx);
	nft_ctx_buffer_error(ctx);
	ret = nft_run_cmd_from_buffer(ctx, cmd);
	if (ret && err)
		snprintf(err, errlen, "nftables: %s",
			 nft_ctx_get_error_buffer(ctx));
	nft_ctx_free(ctx);
	return ret ? -1 : 0;
}

/* Declaring the table first makes the delete succeed when it is absent:
 * one transaction, so install replaces and remove is idempotent. */
#define NFT_RESET "table ip h2lb\ndelete table ip h2lb\n"

static int nft_install(bool legs, char *err, size_t errlen)
{
	char cmd[1024], chain[256] = "";

	if (legs)
		snprintf(chain, sizeof(chain),
			 "  chain legs {\n"
			 "    type filter hook prerouting priority mangle;\n"
			 "    meta l4proto tcp socket transparent 1 "
			 "socket wildcard 0 meta mark set meta mark | %#x\n"
			 "  }\n",
			 H2LB_INTERCEPT_MARK);
	snprintf(cmd, sizeof(cmd),
		 NFT_RESET "table ip h2lb {\n"
			   "  chain prerouting {\n"
			   "    type filter hook prerouting priority raw;\n"
			   "    meta mark & %#x == %#x notrack\n"
			   "  }\n"
			   "%s"
			   "}\n",
		 H2LB_INTERCEPT_MARK, H2LB_INTERCEPT_MARK, chain);
	return nft(cmd, err, errlen);
}

int steer_install(bool legs, char *err, size_t errlen)
{
	int ret;

	ret = route(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE);
	if (ret) {
		snprintf(err, errlen, "local route in table %d: %s",
			 H2LB_INTERCEPT_TABLE, strerror(-ret));
		return -1;
	}
	ret = rule(RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL);
	if (ret && ret != -EEXIST) {
		snprintf(err, errlen, "fwmark routing rule: %s",
			 strerror(-ret));
		return -1;
	}
	return nft_install(legs, err, errlen);
}

int steer_remove(void)
{
	int found = 0;

	/* A rule can be there twice if added by hand: take them all. */
	for (int i = 0; i < 8 && !rule(RTM_DELRULE, 0); i++)
		found = 1;
	if (!route(RTM_DELROUTE, 0))
		found = 1;
	nft(NFT_RESET, NULL, 0);
	return found;
}
