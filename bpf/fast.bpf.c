// SPDX-License-Identifier: GPL-2.0
/*
 * The same-node fast path, its first part (docs/fast-path.md): a client's
 * own socket joins fast_hash as it connects to a balanced Service, and the
 * sockops of the socket h2lb accepts for it pairs the two (sockops.bpf.c).
 * The client's sk_msg program keeps track of where its frames start, one
 * bpf_msg_apply_bytes() per frame, and passes every byte to TCP: today's
 * path (the accepted socket's parser and verdict) carries all of it. The
 * switch to redirecting frames from here builds on these frame starts.
 */
#include <bpf/bpf_endian.h>

#include "events.h"
#include "h2_wire.h"
#include "maps.h"

/* The client connects to a balanced Service: one of its VIPs (tc
 * interception takes the connection on its way) or a listener (cgroup
 * interception rewrote the VIP to it, or the client dialled it). */
static __always_inline int to_service(struct bpf_sock_ops *skops)
{
	__u16 port = bpf_ntohl(skops->remote_port);
	struct h2lb_vip_key vk = { .addr = skops->remote_ip4, .port = port };
	struct h2lb_endpoint_key ek = { .addr = skops->remote_ip4,
					.port = port };
	struct h2lb_endpoint *ep;

	if (bpf_map_lookup_elem(&vips, &vk))
		return 1;
	ep = bpf_map_lookup_elem(&endpoints, &ek);
	if (!ep) {
		ek.addr = 0;
		ep = bpf_map_lookup_elem(&endpoints, &ek);
	}
	return ep && ep->role == H2LB_ROLE_CLIENT;
}

/* Attached to the clients' cgroup. ACTIVE_ESTABLISHED runs before the
 * client's connect() returns, so the socket is in fast_hash before it
 * can send a byte, and before h2lb's end is established (the client's
 * ACK follows this callback). */
SEC("sockops")
int h2lb_client_sockops(struct bpf_sock_ops *skops)
{
	struct h2lb_fast_key k = {};
	struct h2lb_fast_pair p = {};

	if (skops->family != 2 /* AF_INET */ ||
	    skops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB ||
	    !to_service(skops))
		return 1;
	k.addr = skops->local_ip4;
	k.port = skops->local_port;
	p.client = bpf_get_socket_cookie(skops);
	if (bpf_map_update_elem(&fast_pairs, &k, &p, BPF_ANY))
		return 1;
	if (bpf_sock_hash_update(skops, &fast_hash, &p.client, BPF_NOEXIST)) {
		bpf_map_delete_elem(&fast_pairs, &k);
		return 1;
	}
	count(H2LB_CNT_FAST_CLIENTS);
	return 1;
}

/* Copy the first @n bytes of @msg (at most H2_PREFACE_LEN) to @buf:
 * how many there were. */
static __always_inline __u32 msg_head(struct sk_msg_md *msg, __u8 *buf, __u32 n)
{
	__u8 *data, *end;
	__u32 i;

	if (n > msg->size)
		n = msg->size;
	if (!n || bpf_msg_pull_data(msg, 0, n, 0))
		return 0;
	data = msg->data;
	end = msg->data_end;
	for (i = 0; i < H2_PREFACE_LEN; i++) {
		if (i >= n || data + i + 1 > end)
			break;
		buf[i] = data[i];
	}
	return i;
}

/* The preface, as it comes: a byte that differs makes the connection
 * raw (not HTTP/2, passed as it comes from then on). Returns how many of
 * @msg's bytes are preface; 0 for raw. */
static __always_inline __u32 preface_part(struct sk_msg_md *msg,
					  struct h2lb_fast_pair *p)
{
	/* 32: the mask below keeps an index in it, for the verifier */
	static const char want[32] = H2_PREFACE;
	__u8 b[H2_PREFACE_LEN];
	__u32 have = p->have, n;

	if (have >= H2_PREFACE_LEN)
		return 0;
	n = msg_head(msg, b, H2_PREFACE_LEN - have);
	for (__u32 i = 0; i < H2_PREFACE_LEN; i++) {
		if (i >= n)
			break;
		__u32 at = have + i;

		if (at >= H2_PREFACE_LEN || b[i] != want[at & 31])
			return 0;
	}
	if (!n)
		return 0;
	p->have = have + n;
	if (p->have == H2_PREFACE_LEN) {
		p->have = 0;
		p->flags |= H2LB_FAST_FRAMES;
	}
	return n;
}

/* A frame header, as it comes (a client may write it in pieces): how
 * many bytes of @msg the verdict covers, its payload included once the
 * header is whole. */
static __always_inline __u32 frame_part(struct sk_msg_md *msg,
					struct h2lb_fast_pair *p)
{
	__u8 b[H2_PREFACE_LEN];
	__u32 have = p->have, n;

	if (have >= H2LB_FAST_HDR)
		return 0;
	n = msg_head(msg, b, H2LB_FAST_HDR - have);
	for (__u32 i = 0; i < H2LB_FAST_HDR; i++) {
		__u32 at = have + i;

		if (i >= n || at >= H2LB_FAST_HDR)
			break;
		p->hdr[at & 15] = b[i]; /* the mask: for the verifier */
	}
	if (!n)
		return 0;
	p->have = have + n;
	if (p->have < H2LB_FAST_HDR)
		return n;
	p->have = 0;
	return n + ((__u32)p->hdr[0] << 16 | (__u32)p->hdr[1] << 8 | p->hdr[2]);
}

/*
 * Runs in the client's sendmsg, under its socket's lock, at the start of
 * every message and again where each bpf_msg_apply_bytes() ends: so at
 * the start of the preface, of each frame, or inside a frame header the
 * client wrote in pieces. Never corks (a client that stops inside a frame
 * is served by the path that got the rest of it).
 */
SEC("sk_msg")
int h2lb_client_msg(struct sk_msg_md *msg)
{
	struct h2lb_fast_key k = { .addr = msg->local_ip4,
				   .port = msg->local_port };
	struct h2lb_fast_pair *p = bpf_map_lookup_elem(&fast_pairs, &k);
	__u32 n;

	if (!p)
		return SK_PASS;
	if (p->flags & H2LB_FAST_RAW) {
		p->passed += msg->size;
		count_add(H2LB_CNT_FAST_PASSED, msg->size);
		return SK_PASS;
	}
	n = (p->flags & H2LB_FAST_FRAMES) ? frame_part(msg, p)
					  : preface_part(msg, p);
	if (!n) {
		/* Not HTTP/2, or the bytes could not be read: where frames
		 * start is not known from here on. */
		p->flags |= H2LB_FAST_RAW;
		p->passed += msg->size;
		count_add(H2LB_CNT_FAST_PASSED, msg->size);
		return SK_PASS;
	}
	bpf_msg_apply_bytes(msg, n);
	p->passed += n;
	count_add(H2LB_CNT_FAST_PASSED, n);
	return SK_PASS;
}
