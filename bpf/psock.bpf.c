// SPDX-License-Identifier: GPL-2.0
/*
 * A socket's psock, read (psock.h): what its application has not read
 * yet, and what waits in the queue its worker empties. The psock is
 * sk_user_data (flag bits masked), read through bpf_rdonly_cast: loads
 * that cannot fault, of a queue other CPUs change meanwhile, so every
 * figure here is an estimate of one moment (docs/fast-path.md, F5).
 */
#include <bpf/bpf_core_read.h>

#include "maps.h"
#include "psock.h"

extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

/* Messages of a psock's queue one look adds up; each one beyond counts
 * as the largest a message can be. A client that leaves more than this
 * waiting there has fallen far behind. */
#define QUEUE_WALK    32
#define QUEUE_MSG_MAX (2 * H2LB_MAX_FRAME)

static __always_inline struct sk_psock *psock_of(struct tcp_sock *tp)
{
	unsigned long ud;

	ud = (unsigned long)tp->inet_conn.icsk_inet.sk.sk_user_data & ~7ul;
	if (!ud)
		return NULL;
	return bpf_rdonly_cast((void *)ud,
			       bpf_core_type_id_kernel(struct sk_psock));
}

/* Bytes in the psock's queue (ingress_skb): redirected to the socket,
 * not yet moved on by its worker. */
static __always_inline __s64 psock_queued(struct sk_psock *psock)
{
	struct sk_buff *skb = psock->ingress_skb.next;
	__u32 n = psock->ingress_skb.qlen;
	__s64 bytes = 0;

	for (int i = 0; i < QUEUE_WALK; i++) {
		if (i >= n || !skb)
			break;
		bytes += skb->len < QUEUE_MSG_MAX ? skb->len : QUEUE_MSG_MAX;
		skb = skb->next;
	}
	if (n > QUEUE_WALK)
		bytes += (__s64)(n - QUEUE_WALK) * QUEUE_MSG_MAX;
	return bytes;
}

/*
 * A socket sent @tx bytes in all (by TCP until its connection switched,
 * then by BPF_F_INGRESS; rule R: the switch waited until TCP had
 * delivered all of the first into its psock): what did not reach its
 * receive queue still waits in the psock's queue, and what its
 * application read left the receive queue (msg_tot_len, K21).
 */
static __always_inline int tp_psock_sent(struct tcp_sock *tp, __s64 tx,
					 struct sent *s)
{
	struct sk_psock *psock = psock_of(tp);

	if (!psock)
		return -1;
	s->handed = tx - psock_queued(psock);
	s->acked = s->handed - psock->msg_tot_len;
	if (s->acked < 0)
		s->acked = 0;
	return 0;
}

/*
 * Through @tcp when it is still the socket @client names: a socket's
 * memory is a socket's until an RCU grace period passes
 * (SLAB_TYPESAFE_BY_RCU), and one made anew there has a cookie of 0 or
 * a new one, never @client. Else, or at a garbage read of one that
 * closes meanwhile, from the sockhash, whose reference is two atomic
 * operations on a line the client's CPU writes: a sixth of the verdict's
 * time in a profile (docs/latency.md, "What the rest is").
 */
__attribute__((noinline)) int client_psock_sent(__u64 client, __u64 tcp,
						__s64 tx, struct sent *s)
{
	struct bpf_sock *sk;
	struct tcp_sock *tp;
	int r = -1;

	if (!s)
		return -1;
	if (tcp) {
		tp = bpf_rdonly_cast((void *)tcp,
				     bpf_core_type_id_kernel(struct tcp_sock));
		if (tp->inet_conn.icsk_inet.sk.__sk_common.skc_cookie.counter ==
			    client &&
		    !tp_psock_sent(tp, tx, s))
			return 0;
	}
	sk = bpf_map_lookup_elem(&fast_hash, &client);
	if (!sk)
		return -1;
	tp = bpf_skc_to_tcp_sock(sk);
	if (tp && s)
		r = tp_psock_sent(tp, tx, s);
	bpf_sk_release(sk);
	return r;
}

__attribute__((noinline)) int msg_psock_sent(struct sk_msg_md *msg, __s64 tx,
					     struct sent *s)
{
	struct tcp_sock *tp = msg->sk ? bpf_skc_to_tcp_sock(msg->sk) : NULL;

	if (!tp || !s)
		return -1;
	return tp_psock_sent(tp, tx, s);
}

__attribute__((noinline)) __u32 msg_psock_unread(struct sk_msg_md *msg)
{
	struct tcp_sock *tp = msg->sk ? bpf_skc_to_tcp_sock(msg->sk) : NULL;
	struct sk_psock *psock = tp ? psock_of(tp) : NULL;

	return psock ? psock->msg_tot_len : 0;
}

/* copied_seq reaches rcv_nxt only once all the socket's TCP received went
 * through its verdict into the psock and was read there
 * (docs/kernel-facts.md K21): this may wait for a read, never say yes
 * early. */
__attribute__((noinline)) int client_rx_quiet(__u64 client)
{
	struct bpf_sock *sk = bpf_map_lookup_elem(&fast_hash, &client);
	struct tcp_sock *tp;
	int r = 0;

	if (!sk)
		return 0;
	tp = bpf_skc_to_tcp_sock(sk);
	if (tp)
		r = tp->copied_seq == tp->rcv_nxt;
	bpf_sk_release(sk);
	return r;
}

/*
 * A leg's sending, from the fast path's client program, which can take
 * no reference to another socket (docs/kernel-facts.md K19): through the
 * address of its tcp_sock noted at the first redirect to it (@tcp,
 * struct h2lb_conn.sk_tcp), with loads that cannot fault. What its TCP
 * acknowledged and was handed (@s, as sock_sent, in bytes of data), and
 * how many more bytes its send buffer takes with half of it kept free
 * (*@room; rule H). A leg that closed meanwhile reads as garbage, never
 * as a fault; its record goes with it.
 */
__attribute__((noinline)) int leg_look(__u64 tcp, struct sent *s, __s64 *room)
{
	struct tcp_sock *tp;
	struct sock *sk;

	if (!tcp || !s || !room)
		return -1;
	tp = bpf_rdonly_cast((void *)tcp,
			     bpf_core_type_id_kernel(struct tcp_sock));
	sk = &tp->inet_conn.icsk_inet.sk;
	/* A leg is a connection the daemon opened: bytes_acked also counts
	 * its SYN (a fresh connect()ed socket reads 1), which is not data;
	 * with it, one byte still queued to the leg would look taken. */
	s->acked = tp->bytes_acked - 1;
	s->handed = s->acked + (__u32)(tp->write_seq - tp->snd_una);
	*room = (__s64)((__u32)sk->sk_sndbuf >> 1) - sk->sk_wmem_queued;
	return 0;
}
