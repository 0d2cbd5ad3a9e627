// SPDX-License-Identifier: GPL-2.0
/*
 * Interception of Service traffic: connections that unmodified clients
 * open to a balanced Service VIP:port reach the listening socket of that
 * Service in the daemon. Two ways, chosen by `run --intercept`:
 *
 * tc: on the interfaces that bring pod traffic into the node, a SYN to a
 * balanced VIP:port is assigned to the Service's listener
 * (bpf_sk_assign); the accepted socket's local address is the VIP
 * (docs/kernel-facts.md K10). Every packet of such a connection gets
 * H2LB_INTERCEPT_MARK: a routing rule delivers it locally and a raw-table
 * rule keeps it from conntrack, so kube-proxy's DNAT never sees it.
 * Without a listener (daemon down), nothing is marked or assigned and the
 * kernel's own path (kube-proxy) carries the connection.
 *
 * cgroup: connect() to a balanced VIP:port is rewritten to the listener;
 * getpeername() still returns the VIP. IPv4 only, also through IPv6
 * sockets (v4-mapped addresses).
 */
#include <bpf/bpf_endian.h>

#include "events.h"
#include "maps.h"

#define ETH_P_IP_BE   0x0008 /* htons(ETH_P_IP) */
#define IPPROTO_TCP_V 6
#define TC_ACT_OK     0
#define IP_MF_OFFSET  0x3fff /* more-fragments flag and offset */

/* The socket this node already has for the connection @t, if any:
 * established, being accepted (request socket) or in TIME_WAIT. A
 * listener found by the same lookup does not count. */
static __always_inline int have_conn(struct __sk_buff *skb,
				     struct bpf_sock_tuple *t)
{
	struct bpf_sock *sk;
	int found;

	sk = bpf_skc_lookup_tcp(skb, t, sizeof(t->ipv4), BPF_F_CURRENT_NETNS,
				0);
	if (!sk)
		return 0;
	found = sk->state != BPF_TCP_LISTEN;
	bpf_sk_release(sk);
	return found;
}

/* The IPv4 and TCP headers (without options). */
struct ip_tcp {
	struct iphdr ip;
	struct tcphdr tcp;
};

/*
 * Give the segment in @skb to the listener of @v: a SYN, or the ACK that
 * completes a handshake the listener answered with a SYN cookie (under a
 * SYN flood there is no request socket to find). A connection the
 * kernel's path took has no valid cookie and stays there.
 */
static __always_inline int assign_listener(struct __sk_buff *skb,
					   struct bpf_sock_tuple *t,
					   const struct h2lb_vip *v,
					   struct ip_tcp *h)
{
	struct bpf_sock *sk;
	long err;

	/* A listener on INADDR_ANY is found under any local address. */
	if (v->listen_addr)
		t->ipv4.daddr = v->listen_addr;
	t->ipv4.dport = bpf_htons(v->listen_port);
	sk = bpf_skc_lookup_tcp(skb, t, sizeof(t->ipv4), BPF_F_CURRENT_NETNS,
				0);
	if (!sk)
		return -1;
	if (sk->state != BPF_TCP_LISTEN ||
	    (!h->tcp.syn && bpf_tcp_check_syncookie(sk, &h->ip, sizeof(h->ip),
						    &h->tcp, sizeof(h->tcp)))) {
		bpf_sk_release(sk);
		return -1;
	}
	err = bpf_sk_assign(skb, sk, 0);
	bpf_sk_release(sk);
	return err ? -1 : 0;
}

/*
 * A segment from a backend to a leg that connects from a client's address
 * (--leg-source client): its destination is the client pod. Routed pod
 * networks bring it to the node's stack, where steer.c's nftables rule
 * marks it for local delivery. On a bridge (bridge CNIs), a backend pod
 * beside the client pod would send it to the client's MAC address and
 * the bridge would forward it there: so on a bridge port, a segment of a
 * leg's connection gets the bridge's own address as its destination, and
 * the bridge passes it up to the node's stack, marked. The leg's socket
 * is looked up (established or in TIME_WAIT) only for addresses that
 * have legs (leg_addrs): everything else passes untouched.
 */
static __always_inline int leg_reply(struct __sk_buff *skb,
				     const struct ip_tcp *h)
{
	struct bpf_sock_tuple t = {};
	struct h2lb_bridge_port *port;
	__u32 addr = h->ip.daddr, ifindex = skb->ifindex;

	if (!bpf_map_lookup_elem(&leg_addrs, &addr))
		return TC_ACT_OK;
	t.ipv4.saddr = h->ip.saddr;
	t.ipv4.daddr = h->ip.daddr;
	t.ipv4.sport = h->tcp.source;
	t.ipv4.dport = h->tcp.dest;
	if (!have_conn(skb, &t))
		return TC_ACT_OK;
	skb->mark |= H2LB_INTERCEPT_MARK;
	port = bpf_map_lookup_elem(&bridge_ports, &ifindex);
	if (port)
		bpf_skb_store_bytes(skb, 0, port->mac, sizeof(port->mac), 0);
	return TC_ACT_OK;
}

SEC("tc")
int h2lb_tc_ingress(struct __sk_buff *skb)
{
	struct bpf_sock_tuple t = {};
	struct h2lb_vip_key k = {};
	struct h2lb_vip *v;
	struct ip_tcp h;

	/* Read relative to the network header: the same on an Ethernet
	 * device, a bridge or an L3 device. */
	if (skb->protocol != ETH_P_IP_BE ||
	    bpf_skb_load_bytes_relative(skb, 0, &h, sizeof(h),
					BPF_HDR_START_NET))
		return TC_ACT_OK;
	if (h.ip.ihl != 5 || h.ip.protocol != IPPROTO_TCP_V ||
	    (h.ip.frag_off & bpf_htons(IP_MF_OFFSET)))
		return TC_ACT_OK;
	k.addr = h.ip.daddr;
	k.port = bpf_ntohs(h.tcp.dest);
	v = bpf_map_lookup_elem(&vips, &k);
	if (!v) /* not a balanced Service: untouched, but for legs' replies */
		return leg_reply(skb, &h);

	t.ipv4.saddr = h.ip.saddr;
	t.ipv4.daddr = h.ip.daddr;
	t.ipv4.sport = h.tcp.source;
	t.ipv4.dport = h.tcp.dest;
	if (!have_conn(skb, &t)) {
		/* A new connection, or one the kernel's path took while no
		 * listener was there (that one stays there). */
		if ((h.tcp.syn && h.tcp.ack) || h.tcp.rst ||
		    (v->flags & H2LB_VIP_NO_NEW))
			return TC_ACT_OK;
		if (assign_listener(skb, &t, v, &h)) {
			if (h.tcp.syn)
				count(H2LB_CNT_FALLBACKS);
			return TC_ACT_OK;
		}
		if (h.tcp.syn)
			count(H2LB_CNT_INTERCEPTED);
	}
	skb->mark |= H2LB_INTERCEPT_MARK;
	return TC_ACT_OK;
}

/* The listener to send a connect() to @addr:@port to, or NULL. The
 * daemon's own connections (to endpoints) are never touched. */
static __always_inline struct h2lb_vip *connect_target(__u32 addr, __u32 port,
						       __u32 type)
{
	struct h2lb_vip_key k = { .addr = addr, .port = bpf_ntohs(port) };
	struct h2lb_vip *v;

	if (type != 1 /* SOCK_STREAM */)
		return NULL;
	v = bpf_map_lookup_elem(&vips, &k);
	if (!v || !v->listen_addr || (v->flags & H2LB_VIP_NO_NEW))
		return NULL;
	if (bpf_get_current_cgroup_id() == settings.daemon_cgroup)
		return NULL;
	count(H2LB_CNT_INTERCEPTED);
	return v;
}

/* Rewrite a connect() to a balanced VIP:port to the Service's listener. */
SEC("cgroup/connect4")
int h2lb_connect4(struct bpf_sock_addr *ctx)
{
	struct h2lb_vip *v =
		connect_target(ctx->user_ip4, ctx->user_port, ctx->type);

	if (v) {
		ctx->user_ip4 = v->listen_addr;
		ctx->user_port = bpf_htons(v->listen_port);
	}
	return 1;
}

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d): gRPC's C core dials IPv4
 * through dual-stack AF_INET6 sockets. */
static __always_inline int v4mapped(struct bpf_sock_addr *ctx)
{
	return ctx->user_ip6[0] == 0 && ctx->user_ip6[1] == 0 &&
	       ctx->user_ip6[2] == bpf_htonl(0xffff);
}

SEC("cgroup/connect6")
int h2lb_connect6(struct bpf_sock_addr *ctx)
{
	struct h2lb_vip *v;

	if (!v4mapped(ctx))
		return 1;
	v = connect_target(ctx->user_ip6[3], ctx->user_port, ctx->type);
	if (v) {
		ctx->user_ip6[3] = v->listen_addr;
		ctx->user_port = bpf_htons(v->listen_port);
	}
	return 1;
}

/* The VIP:port a connection to listener @addr:@port was for, or NULL. */
static __always_inline struct h2lb_frontend *frontend_of(__u32 addr, __u32 port)
{
	struct h2lb_vip_key k = { .addr = addr, .port = bpf_ntohs(port) };

	return bpf_map_lookup_elem(&frontends, &k);
}

/* The client keeps seeing the VIP as its peer. */
SEC("cgroup/getpeername4")
int h2lb_getpeername4(struct bpf_sock_addr *ctx)
{
	struct h2lb_frontend *f = frontend_of(ctx->user_ip4, ctx->user_port);

	if (f) {
		ctx->user_ip4 = f->vip;
		ctx->user_port = bpf_htons(f->port);
	}
	return 1;
}

SEC("cgroup/getpeername6")
int h2lb_getpeername6(struct bpf_sock_addr *ctx)
{
	struct h2lb_frontend *f;

	if (!v4mapped(ctx))
		return 1;
	f = frontend_of(ctx->user_ip6[3], ctx->user_port);
	if (f) {
		ctx->user_ip6[3] = f->vip;
		ctx->user_port = bpf_htons(f->port);
	}
	return 1;
}
