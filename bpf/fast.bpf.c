// SPDX-License-Identifier: GPL-2.0
/*
 * The same-node fast path (docs/fast-path.md): a
 * client's own socket joins fast_hash as it connects to a balanced
 * Service, and the sockops of the socket h2lb accepts for it pairs the two
 * (sockops.bpf.c). The client's sk_msg program keeps track of where its
 * frames start (one bpf_msg_apply_bytes() per write, up to the end of its
 * last frame), checks at each frame boundary whether the connection could
 * switch (fast_ready), and until it does passes every byte to TCP:
 * today's path (the accepted socket's parser and verdict) carries it. What the
 * client receives goes through its psock (h2lb_client_recv), whose unread
 * bytes the program reads (msg_psock_unread). Once the accepted socket's
 * verdict switched the connection's answers to ingress (rule R,
 * verdict.bpf.c), the client's writes look at its psock for flow
 * control (fast_rx_look), and its first RTT sample after that sets its
 * receive buffer (client_rtt). Then its requests switch too (tx_switch):
 * from that frame on, the verdict's rules run here on each frame
 * (fast_frame, verdict.bpf.c), which goes to its leg in this sendmsg.
 */
#include <bpf/bpf_endian.h>

#include "budget.h"
#include "events.h"
#include "frame.h"
#include "h2_wire.h"
#include "maps.h"
#include "psock.h"

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

/* IPv4, or IPv6 with an IPv4-mapped peer (grpc-core's sockets are AF_INET6
 * with IPV6_V6ONLY off): the socket then has its IPv4 addresses too. */
static __always_inline int is_ipv4(struct bpf_sock_ops *skops)
{
	if (skops->family == 2 /* AF_INET */)
		return 1;
	return skops->family == 10 /* AF_INET6 */ && !skops->remote_ip6[0] &&
	       !skops->remote_ip6[1] &&
	       skops->remote_ip6[2] == bpf_htonl(0xffff);
}

/*
 * What enters the socket by BPF_F_INGRESS is charged to its receive
 * buffer at its skb's truesize, and over sk_rcvbuf the psock's worker
 * retries only a jiffy later (docs/kernel-facts.md K22): several times
 * the bytes for a message cut from a large received skb, and TCP's
 * autotuning never grows the buffer for it. 1 MiB downloads crawled at
 * 18 MB/s with the default 128 KiB. So once the connection's answers
 * come by ingress, the buffer holds what flow control lets be in flight
 * to the client (--peer-buffer; the kernel caps it at net.core.rmem_max
 * and doubles it). Not before: what the client's TCP buffers counts as
 * taken by the client, and a client that stops reading would hold that
 * much of the node's memory unseen (test_h2lb_node_buffer); after the
 * switch, what waits there counts against it (bpf/psock.bpf.c).
 */
static __always_inline void rcvbuf_for_ingress(struct bpf_sock_ops *skops)
{
	int buf = settings.peer_buffer < (1u << 30) ? settings.peer_buffer
						    : 1 << 30;

	if (buf)
		bpf_setsockopt(skops, 1 /* SOL_SOCKET */, 8 /* SO_RCVBUF */,
			       &buf, sizeof(buf));
}

/*
 * An RTT sample: the client's TCP took an acknowledgement of new data.
 * Asked for at connect (there is no callback for a switch made in another
 * socket's verdict): the first one after its answers switched to ingress
 * sets its receive buffer, and asks for no more; so does one after its
 * connection turned out not HTTP/2 or failed, or lost its pair.
 */
static __always_inline void client_rtt(struct bpf_sock_ops *skops)
{
	struct h2lb_fast_key k = { .addr = skops->local_ip4,
				   .port = skops->local_port };
	struct h2lb_fast_pair *p = bpf_map_lookup_elem(&fast_pairs, &k);
	struct h2lb_conn *a = NULL;
	__u64 anchor;

	if (p) {
		anchor = p->anchor;
		a = bpf_map_lookup_elem(&conns, &anchor);
		if (!a || !(a->flags & (H2LB_CONN_FAST_RX | H2LB_CONN_RAW |
					H2LB_CONN_DEAD)))
			return; /* not yet */
	}
	if (a && (a->flags & H2LB_CONN_FAST_RX))
		rcvbuf_for_ingress(skops);
	bpf_sock_ops_cb_flags_set(skops, 0);
}

/* The daemon closes the fast path to new clients while the node's TCP
 * memory count is above --fast-path-tcp-mem: the kernel loses some of
 * that count for every byte answered by ingress (docs/kernel-facts.md
 * K23), and what is lost is lost until a reboot. */
static __always_inline bool fast_closed(void)
{
	__u32 zero = 0;
	struct h2lb_config *cfg = bpf_map_lookup_elem(&lb_config, &zero);

	return cfg && cfg->fast_closed;
}

SEC("sockops")
int h2lb_client_sockops(struct bpf_sock_ops *skops)
{
	struct h2lb_fast_key k = {};
	struct h2lb_fast_pair p = {};

	if (skops->op == BPF_SOCK_OPS_RTT_CB) {
		client_rtt(skops);
		return 1;
	}
	if (skops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB ||
	    !is_ipv4(skops) || !to_service(skops))
		return 1;
	if (fast_closed()) {
		count(H2LB_CNT_FAST_CLOSED);
		return 1; /* today's path, for all its life */
	}
	k.addr = skops->local_ip4;
	k.port = skops->local_port;
	p.client = bpf_get_socket_cookie(skops);
	if (bpf_map_update_elem(&fast_pairs, &k, &p, BPF_ANY))
		return 1;
	if (bpf_sock_hash_update(skops, &fast_hash, &p.client, BPF_NOEXIST)) {
		bpf_map_delete_elem(&fast_pairs, &k);
		return 1;
	}
	bpf_sock_ops_cb_flags_set(skops, BPF_SOCK_OPS_RTT_CB_FLAG);
	count(H2LB_CNT_FAST_CLIENTS);
	return 1;
}

/* Copy up to @n bytes (at most H2_PREFACE_LEN) of @msg from @off to @buf:
 * how many there were. */
static __always_inline __u32 msg_read(struct sk_msg_md *msg, __u32 off,
				      __u8 *buf, __u32 n)
{
	struct h2_in in = in_msg(msg);

	return in_load_upto(&in, off, buf, n, H2_PREFACE_LEN);
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
	n = msg_read(msg, 0, b, H2_PREFACE_LEN - have);
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
		/* atomic: the accepted socket's verdict sets flags too */
		__sync_fetch_and_or(&p->flags, H2LB_FAST_FRAMES);
	}
	return n;
}

/* Bytes of @msg from @off that go on with the frame header in p->hdr (a
 * client may write one in pieces): how many were taken, 0 if none could
 * be read. p->have is 0 again once the header is whole. A global
 * function: verified once, not at each of its two call sites. */
__attribute__((noinline)) int header_part(struct sk_msg_md *msg, __u32 off,
					  struct h2lb_fast_pair *p)
{
	__u8 b[H2_PREFACE_LEN];
	__u32 have, n;

	if (!msg || !p)
		return 0;
	have = p->have;
	if (have >= H2LB_FAST_HDR)
		return 0;
	n = msg_read(msg, off, b, H2LB_FAST_HDR - have);
	for (__u32 i = 0; i < H2LB_FAST_HDR; i++) {
		__u32 at = have + i;

		if (i >= n || at >= H2LB_FAST_HDR)
			break;
		p->hdr[at & 15] = b[i]; /* the mask: for the verifier */
	}
	p->have = have + n;
	if (p->have == H2LB_FAST_HDR)
		p->have = 0;
	return n;
}

/* The payload length in the header p->hdr holds. */
static __always_inline __u32 header_len(const struct h2lb_fast_pair *p)
{
	return (__u32)p->hdr[0] << 16 | (__u32)p->hdr[1] << 8 | p->hdr[2];
}

/* Frames one run of the program covers at most; what follows them is a
 * new run. */
#define PASS_RUN_FRAMES 64

/*
 * Where frames start in @msg: the bytes the verdict covers, from the
 * frame (or frame header) it starts in to the end of the last frame
 * whose header is here (beyond the message if that frame goes on in the
 * client's next writes). All of them at once: one push into TCP for the
 * whole message: with a push per frame, the accepted socket's stream
 * parser left the end of a write unparsed until the client sent again
 * (docs/kernel-facts.md K18). 0: the bytes could not be read.
 */
static __always_inline __u32 frames_part(struct sk_msg_md *msg,
					 struct h2lb_fast_pair *p)
{
	struct h2_in in = in_msg(msg);
	__u32 size = msg->size, pos = 0;
	struct h2_frame f;

	if (p->have) { /* a header the client began in an earlier write */
		pos = header_part(msg, 0, p);
		if (!pos)
			return 0;
		if (p->have)
			return pos;
		pos += header_len(p);
	}
	for (int i = 0; i < PASS_RUN_FRAMES; i++) {
		if (pos >= size || size - pos < H2LB_FAST_HDR)
			break;
		if (frame_read_at(&in, pos, &f) < 0)
			return 0;
		pos += H2LB_FAST_HDR + f.len;
	}
	if (pos < size && size - pos < H2LB_FAST_HDR) /* goes on later */
		pos += header_part(msg, pos, p);
	return pos;
}

/* Whether @leg's TCP took all that was redirected to it, by the look of
 * it now: nothing waits in its psock's queue. No flag changes. A global
 * function: its stack is not part of fast_frame's chain (pass_len). */
__attribute__((noinline)) int leg_drained(__u64 leg)
{
	struct h2lb_conn *l = bpf_map_lookup_elem(&conns, &leg);
	struct sent s;
	__s64 room;

	return l && !leg_look(l->sk_tcp, &s, &room) &&
	       s.handed >= (__s64)l->tx_bytes;
}

/*
 * Whether the connection could switch now, at a frame boundary (docs/
 * fast-path.md, "The ordering rule at start-up"): the accepted socket
 * took the preface, its verdict finished every byte this program passed
 * (fast_note in verdict.bpf.c counts them once a message is over), and
 * every leg that verdict wrote to handed all of it to its TCP: nothing is
 * left in the leg's psock queue, which the worker sends in pieces (F1).
 * Looked at in the leg's tcp_sock now (leg_drained): its record says
 * what its TCP had taken when last redirected to, and a leg whose
 * backend has nothing to answer yet is not looked at again. The verdict
 * cannot run meanwhile: it runs only on what this program passes, under
 * this socket's lock. A global function: verified once.
 */
__attribute__((noinline)) int fast_ready(struct h2lb_fast_pair *p)
{
	struct h2lb_conn *a;
	__u64 anchor, leg;

	if (!p)
		return 0;
	anchor = p->anchor;
	a = bpf_map_lookup_elem(&conns, &anchor);
	if (!a || !(a->flags & H2LB_CONN_PREFACE))
		return 0;
	if (*(volatile __u64 *)&p->done != p->passed) {
		count(H2LB_CNT_FAST_BEHIND);
		return 0;
	}
	for (int i = 0; i < H2LB_FAST_LEGS; i++) {
		leg = p->legs[i];
		if (!leg)
			break;
		if (!leg_drained(leg)) {
			count(H2LB_CNT_FAST_WAIT_LEG);
			return 0;
		}
	}
	return 1;
}

/*
 * The response direction of a switched connection (docs/fast-path.md,
 * rule R): the accepted socket's TCP sends nothing more, so nothing there
 * tells what the client read. The client's writes do (one that reads
 * answers with WINDOW_UPDATEs): each looks at its own socket's queue for
 * the accepted socket's record, as each redirect into it does
 * (budget.h, peer_account). @a: that record (the caller's look), or
 * NULL. Returns the bytes the client has not read, from the same one look
 * at its psock.
 */
static __always_inline __u32 fast_rx_look(struct sk_msg_md *msg,
					  struct h2lb_conn *a)
{
	struct sent s;
	__u64 tx;

	if (!a || !(a->flags & H2LB_CONN_FAST_RX))
		return msg_psock_unread(msg);
	tx = a->tx_bytes;
	if (msg_psock_sent(msg, tx, &s))
		return 0;
	ctl_reset(a, &s);
	sent_update(a, tx, &s);
	return s.handed - s.acked;
}

/* This socket's struct tcp_sock, for the verdict that sends its answers
 * (client_psock_sent). */
static __always_inline void note_tcp(struct sk_msg_md *msg, struct h2lb_conn *a)
{
	struct bpf_sock *sk = msg->sk;
	struct tcp_sock *tp = sk ? bpf_skc_to_tcp_sock(sk) : NULL;

	if (tp)
		a->fast_tcp = (__u64)tp;
}

/* verdict.bpf.c: a switched client's frame at the start of @msg, and
 * whether a leg can be written synchronously now. */
extern int fast_frame(struct sk_msg_md *msg, __u64 anchor);
extern int leg_sync(__u64 leg, __u32 len);

/*
 * The switch of the request direction (docs/fast-path.md, "The request
 * direction"), at a frame boundary, once the connection's answers come
 * by ingress (@a has H2LB_CONN_FAST_RX) and fast_ready() holds: the
 * accepted socket's verdict finished all this program passed, so it will
 * run no more. Each leg it wrote to becomes written synchronously
 * (leg_sync: marked first, looked at after); the legs the client's
 * streams go to later become so when first used. Tried only when every
 * leg looked drained already (fast_ready, just before), so that it fails
 * only when a verdict queued a frame to one meanwhile: then the
 * connection stays on today's path for good (H2LB_CONN_NEVER_TX), and
 * the daemon sends its frames for those legs through the injector again.
 * 1 if switched.
 */
static __always_inline int tx_switch(struct h2lb_fast_pair *p,
				     struct h2lb_conn *a)
{
	__u64 leg;

	for (int i = 0; i < H2LB_FAST_LEGS; i++) {
		leg = p->legs[i];
		if (!leg)
			break;
		if (!leg_sync(leg, 0)) {
			__sync_fetch_and_or(&a->flags, H2LB_CONN_NEVER_TX);
			count(H2LB_CNT_FAST_TX_FAILED);
			return 0;
		}
	}
	__sync_fetch_and_or(&a->flags, H2LB_CONN_FAST_TX);
	count(H2LB_CNT_FAST_TX);
	return 1;
}

/*
 * How many bytes of @msg, from its start, this run passes to TCP (today's
 * path), where the accepted socket's verdict takes them: to the end of
 * its last frame, or all of it for a connection that is not HTTP/2. A
 * global function: its stack is not part of fast_frame's chain, which
 * the verifier's 512 bytes bound.
 */
__attribute__((noinline)) int pass_len(struct sk_msg_md *msg,
				       struct h2lb_fast_pair *p)
{
	__u32 n = 0;

	if (!msg || !p)
		return 0;
	if (!(p->flags & H2LB_FAST_RAW)) {
		n = (p->flags & H2LB_FAST_FRAMES) ? frames_part(msg, p)
						  : preface_part(msg, p);
		/* 0: not HTTP/2, or the bytes could not be read: where
		 * frames start is not known from here on. */
		if (!n)
			__sync_fetch_and_or(&p->flags, H2LB_FAST_RAW);
	}
	return n ? n : msg->size; /* the verdict covers the whole message */
}

/* Flags of a client that keep its requests on today's path. */
#define TX_NOT (H2LB_CONN_NEVER_TX | H2LB_CONN_DEAD | H2LB_CONN_RAW)

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
	struct h2lb_conn *a;
	__u32 n, unread;
	__u64 anchor;

	if (!p)
		return SK_PASS;
	anchor = p->anchor;
	a = bpf_map_lookup_elem(&conns, &anchor);
	if (a && !a->fast_tcp)
		note_tcp(msg, a);
	unread = fast_rx_look(msg, a);
	if (unread > p->unread_max)
		p->unread_max = unread;
	if (a && (a->flags & H2LB_CONN_FAST_TX))
		return fast_frame(msg, anchor);
	if (p->flags == H2LB_FAST_FRAMES && !p->have && fast_ready(p)) {
		__sync_fetch_and_or(&p->flags, H2LB_FAST_READY);
		count(H2LB_CNT_FAST_READY);
	} else if (p->flags == (H2LB_FAST_FRAMES | H2LB_FAST_READY) &&
		   !p->have && settings.fast_tx && a && !(a->flags & TX_NOT)) {
		if (!(a->flags & H2LB_CONN_FAST_RX))
			count(H2LB_CNT_FAST_WAIT_RX);
		else if (fast_ready(p) && tx_switch(p, a))
			return fast_frame(msg, anchor);
	}
	n = pass_len(msg, p);
	/* (always: a value an earlier run set stays on the message, F11) */
	bpf_msg_apply_bytes(msg, n);
	p->passed += n;
	count_add(H2LB_CNT_FAST_PASSED, n);
	return SK_PASS;
}

/*
 * The client's receive side (docs/fast-path.md, rule R): everything its
 * TCP receives goes on to its application, unchanged, through its
 * psock's ingress queue (sk_psock_verdict_apply, SK_PASS), in arrival
 * order: the queue that frames redirected into the socket with
 * BPF_F_INGRESS are to join, after these.
 */
SEC("sk_skb")
int h2lb_client_recv(struct __sk_buff *skb)
{
	return SK_PASS;
}

/* The sink's receiving end (sink_rx): what the client programs send it
 * is dropped as it comes, and so acknowledged (fast_frame). */
SEC("sk_skb")
int h2lb_sink(struct __sk_buff *skb)
{
	return SK_DROP;
}
