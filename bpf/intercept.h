/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Interception of Service traffic: connections that unmodified clients
 * open to a balanced Service VIP:port reach the listening socket of that
 * Service in the daemon. Two ways, chosen by `run --intercept`:
 *
 * tc: on the interfaces that bring pod traffic into the node, a SYN to a
 * balanced VIP:port is assigned to the Service's listener
 * (bpf_sk_assign); the accepted socket's local address is the VIP
 * (DESIGN.md fact 10). Every packet of such a connection gets
 * H2LB_INTERCEPT_MARK: a routing rule delivers it locally and a raw-table
 * rule keeps it from conntrack, so kube-proxy's DNAT never sees it.
 * Without a listener (daemon down), nothing is marked or assigned and the
 * kernel's own path (kube-proxy) carries the connection.
 *
 * cgroup: connect() to a balanced VIP:port is rewritten to the listener;
 * getpeername() still returns the VIP.
 */
#ifndef H2LB_BPF_INTERCEPT_H
#define H2LB_BPF_INTERCEPT_H

#define ETH_P_IP_BE   0x0008 /* htons(ETH_P_IP) */
#define ETH_HLEN      14
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

/* Give the SYN in @skb to the listener of @v. */
static __always_inline int assign_listener(struct __sk_buff *skb,
					   struct bpf_sock_tuple *t,
					   const struct h2lb_vip *v)
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
	if (sk->state != BPF_TCP_LISTEN) {
		bpf_sk_release(sk);
		return -1;
	}
	err = bpf_sk_assign(skb, sk, 0);
	bpf_sk_release(sk);
	return err ? -1 : 0;
}

SEC("tc")
int h2lb_tc_ingress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct bpf_sock_tuple t = {};
	struct h2lb_vip_key k = {};
	struct h2lb_vip *v;
	struct tcphdr *th;
	struct iphdr *ip;

	if (skb->protocol != ETH_P_IP_BE)
		return TC_ACT_OK;
	ip = data + ETH_HLEN;
	th = (void *)(ip + 1);
	if ((void *)(th + 1) > end || ip->ihl != 5 ||
	    ip->protocol != IPPROTO_TCP_V || (ip->frag_off & bpf_htons(IP_MF_OFFSET)))
		return TC_ACT_OK;
	k.addr = ip->daddr;
	k.port = bpf_ntohs(th->dest);
	v = bpf_map_lookup_elem(&vips, &k);
	if (!v)
		return TC_ACT_OK; /* not a balanced Service: untouched */

	t.ipv4.saddr = ip->saddr;
	t.ipv4.daddr = ip->daddr;
	t.ipv4.sport = th->source;
	t.ipv4.dport = th->dest;
	if (!have_conn(skb, &t)) {
		/* Not ours: a new connection, or one the kernel's path took
		 * while no listener was there; that one stays there. */
		if (!th->syn || th->ack)
			return TC_ACT_OK;
		if (assign_listener(skb, &t, v)) {
			count(H2LB_CNT_FALLBACK);
			return TC_ACT_OK;
		}
		count(H2LB_CNT_INTERCEPTED);
	}
	skb->mark |= H2LB_INTERCEPT_MARK;
	return TC_ACT_OK;
}

/* Rewrite a connect() to a balanced VIP:port to the Service's listener.
 * The daemon's own connections (to endpoints) are never touched. */
SEC("cgroup/connect4")
int h2lb_connect4(struct bpf_sock_addr *ctx)
{
	struct h2lb_vip_key k = {
		.addr = ctx->user_ip4,
		.port = bpf_ntohs(ctx->user_port),
	};
	struct h2lb_config *cfg;
	struct h2lb_vip *v;
	__u32 zero = 0;

	if (ctx->type != 1 /* SOCK_STREAM */)
		return 1;
	v = bpf_map_lookup_elem(&vips, &k);
	if (!v || !v->listen_addr)
		return 1;
	cfg = bpf_map_lookup_elem(&lb_config, &zero);
	if (!cfg || bpf_get_current_cgroup_id() == cfg->daemon_cgroup)
		return 1;
	ctx->user_ip4 = v->listen_addr;
	ctx->user_port = bpf_htons(v->listen_port);
	count(H2LB_CNT_INTERCEPTED);
	return 1;
}

/* The client keeps seeing the VIP as its peer. */
SEC("cgroup/getpeername4")
int h2lb_getpeername4(struct bpf_sock_addr *ctx)
{
	struct h2lb_vip_key k = {
		.addr = ctx->user_ip4,
		.port = bpf_ntohs(ctx->user_port),
	};
	struct h2lb_frontend *f = bpf_map_lookup_elem(&frontends, &k);

	if (f) {
		ctx->user_ip4 = f->vip;
		ctx->user_port = bpf_htons(f->port);
	}
	return 1;
}

#endif
