// SPDX-License-Identifier: GPL-2.0
/*
 * sockops: the daemon's client and backend sockets enter the sockhash as
 * they are established, with their role; their closing is reported to the
 * daemon.
 */
#include <bpf/bpf_endian.h>

#include "events.h"
#include "maps.h"

char LICENSE[] SEC("license") = "GPL";

static __always_inline struct h2lb_endpoint *
endpoint_of(struct bpf_sock_ops *skops, int passive)
{
	struct h2lb_endpoint_key k = {};
	struct h2lb_endpoint *ep;

	if (passive) {
		/* Accepted: match the listening address, or any address. */
		k.addr = skops->local_ip4;
		k.port = skops->local_port;
		ep = bpf_map_lookup_elem(&endpoints, &k);
		if (ep)
			return ep;
		k.addr = 0;
		return bpf_map_lookup_elem(&endpoints, &k);
	}
	k.addr = skops->remote_ip4;
	k.port = bpf_ntohl(skops->remote_port);
	k.remote = 1;
	return bpf_map_lookup_elem(&endpoints, &k);
}

/*
 * What a new connection is to us: a backend leg the daemon opened (known
 * by its cookie), a client accepted on one of our listeners (by its local
 * address) or the injector (by the address it connects to).
 */
static __always_inline int conn_role(struct bpf_sock_ops *skops, __u64 cookie,
				     struct h2lb_conn *c)
{
	int passive = skops->op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB;
	struct h2lb_endpoint *ep;
	__u32 *backend;

	if (!passive) {
		backend = bpf_map_lookup_elem(&new_legs, &cookie);
		if (backend) {
			c->role = H2LB_ROLE_BACKEND;
			c->backend = *backend & ~H2LB_RAW_LEG;
			if (*backend & H2LB_RAW_LEG)
				c->flags = H2LB_CONN_RAW;
			bpf_map_delete_elem(&new_legs, &cookie);
			return 0;
		}
	}
	ep = endpoint_of(skops, passive);
	if (!ep)
		return -1;
	c->role = ep->role;
	c->service = ep->service;
	return 0;
}

/* A client whose own socket is on this node and joined the fast path
 * (fast.bpf.c, on the clients' cgroup, ran before this: the client's ACK
 * that establishes this socket follows it). */
static __always_inline void fast_pair(struct bpf_sock_ops *skops, __u64 cookie,
				      struct h2lb_conn *c)
{
	struct h2lb_fast_key k = { .addr = skops->remote_ip4,
				   .port = bpf_ntohl(skops->remote_port) };
	struct h2lb_fast_pair *p = bpf_map_lookup_elem(&fast_pairs, &k);

	if (!p || p->anchor)
		return;
	p->anchor = cookie;
	c->fast = p->client;
	c->fast_addr = k.addr;
	c->fast_port = k.port;
	count(H2LB_CNT_FAST_PAIRED);
}

/* The client finished or is gone: its pair goes (the client's socket
 * leaves fast_hash by itself as it closes). */
static __always_inline void fast_unpair(struct bpf_sock_ops *skops,
					__u64 cookie)
{
	struct h2lb_fast_key k = { .addr = skops->remote_ip4,
				   .port = bpf_ntohl(skops->remote_port) };

	fast_pair_drop(&k, cookie);
}

/* A close goes on the ring of its own (maps.h, "closes"). Should even it
 * be full, the loss is counted as any event's: the daemon then compares
 * its connections with the sockets (user/reconcile.c). */
static __always_inline void close_event(__u64 cookie, __u32 state)
{
	struct h2lb_close_event *ev;

	ev = bpf_ringbuf_reserve(&closes, sizeof(*ev), 0);
	if (!ev) {
		count(H2LB_CNT_EVENT_DROPS);
		return;
	}
	ev->cookie = cookie;
	ev->state = state;
	ev->pad = 0;
	bpf_ringbuf_submit(ev, 0);
	count(H2LB_CNT_EVENTS);
}

SEC("sockops")
int h2lb_sockops(struct bpf_sock_ops *skops)
{
	/* Every connection starts with a 65535-byte window each way
	 * (RFC 9113 6.9.2); the daemon raises rx_grant as it grants more. */
	struct h2lb_conn c = { .rx_grant = 65535,
			       .stream_window = 65535,
			       .resp_window = 65535,
			       .max_streams = 0xffffffff };
	struct h2lb_conn *cp;
	__u64 cookie;

	if (skops->family != 2 /* AF_INET */)
		return 1;

	switch (skops->op) {
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		cookie = bpf_get_socket_cookie(skops);
		/* The role must be known before the first byte is parsed:
		 * a backend sends its SETTINGS without waiting for ours. */
		if (conn_role(skops, cookie, &c))
			return 1;
		if (c.role == H2LB_ROLE_CLIENT)
			fast_pair(skops, cookie, &c);
		if (bpf_map_update_elem(&conns, &cookie, &c, BPF_ANY))
			return 1;
		/* A client enters the sockhash from the daemon, once its
		 * first bytes were looked at and h2lb's SETTINGS is on its
		 * way (kern_client_attach): nothing can be redirected to it,
		 * or parsed from it, before that. A raw leg enters with its
		 * client, once both are each other's peer. */
		if (c.role != H2LB_ROLE_CLIENT && !(c.flags & H2LB_CONN_RAW) &&
		    bpf_sock_hash_update(skops, &sock_hash, &cookie,
					 BPF_NOEXIST)) {
			bpf_map_delete_elem(&conns, &cookie);
			return 1;
		}
		bpf_sock_ops_cb_flags_set(skops, BPF_SOCK_OPS_STATE_CB_FLAG);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		/* Peer finished (FIN) or the socket is gone (RST, close). */
		if (skops->args[1] != BPF_TCP_CLOSE &&
		    skops->args[1] != BPF_TCP_CLOSE_WAIT)
			break;
		cookie = bpf_get_socket_cookie(skops);
		cp = bpf_map_lookup_elem(&conns, &cookie);
		if (!cp)
			break;
		if (cp->fast)
			fast_unpair(skops, cookie);
		close_event(cookie, skops->args[1]);
		break;
	}
	return 1;
}
