/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What one peer may cost the node (docs/hardening.md): a budget for the
 * frames that make work but carry no data, and bounds on what the kernel
 * queues toward a peer that does not read, alone and all peers together.
 */
#ifndef H2LB_BPF_BUDGET_H
#define H2LB_BPF_BUDGET_H

#include "events.h"
#include "frame.h"
#include "maps.h"
#include "psock.h"

#define NSEC_PER_SEC 1000000000ull

/*
 * Take @n tokens from @c's frame budget: 0, or -1 when it is spent
 * (ENHANCE_YOUR_CALM). A token bucket: settings.calm_burst at most,
 * settings.calm_rate more per second, plus what others earned it. Only
 * @c's own verdict calls this (one at a time per socket); others change
 * calm_earned, with atomics.
 */
static __always_inline int calm_take(struct h2lb_conn *c, __u32 n)
{
	__u64 now = bpf_ktime_get_ns(), refill = 0;
	__s64 tokens, burst = settings.calm_burst;

	if (!burst)
		return 0;
	if (!c->calm_ns) { /* its first frame */
		c->calm_ns = now;
		c->calm_tokens = burst;
	}
	if (settings.calm_rate && now > c->calm_ns) {
		/* At most an hour's refill at a time: with --frame-rate up
		 * to 10^6, longer would overflow the product. */
		__u64 idle = now - c->calm_ns;

		if (idle > 3600 * NSEC_PER_SEC)
			idle = 3600 * NSEC_PER_SEC;
		refill = idle * settings.calm_rate / NSEC_PER_SEC;
	}
	tokens = (__s64)c->calm_tokens + refill +
		 __sync_lock_test_and_set(&c->calm_earned, 0);
	if (refill) /* keep the fraction of a token for next time */
		c->calm_ns += refill * NSEC_PER_SEC / settings.calm_rate;
	if (tokens >= burst) {
		tokens = burst;
		c->calm_ns = now;
	}
	if (tokens < n) {
		c->calm_tokens = tokens > 0 ? tokens : 0;
		return -1;
	}
	c->calm_tokens = tokens - n;
	return 0;
}

/* Give (or, @n < 0, take) tokens of another connection's budget. */
static __always_inline void calm_earn(struct h2lb_conn *t, int n)
{
	if (settings.calm_burst)
		__sync_fetch_and_add(&t->calm_earned, n);
}

/* What a queued frame costs beyond its bytes (an sk_buff, at least): a
 * control frame waiting counts as this much more in its peer's share of
 * the node's queue (docs/hardening.md). */
#define CTL_OVERHEAD 512

static __always_inline int sock_sent(struct bpf_sock *sk, struct sent *s)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);

	if (!tp)
		return -1;
	s->acked = tp->bytes_acked;
	s->handed = s->acked + (__u32)(tp->write_seq - tp->snd_una);
	return 0;
}

/* Control frames since its peer last took something: one that reads gets
 * them handed as fast as they come. */
static __always_inline void ctl_reset(struct h2lb_conn *t, const struct sent *s)
{
	if (s->handed >= (__s64)t->ctl_mark) {
		t->ctl_out = 0;
		t->ctl_mark = t->tx_bytes;
	}
}

/*
 * What a measurement of @t's sending (@s; @tx: its tx_bytes, the message
 * being sent included) tells: its share of the node's queue, its backlog,
 * whether its peer made progress.
 */
static __always_inline void sent_update(struct h2lb_conn *t, __u64 tx,
					const struct sent *s)
{
	__s64 queued;
	__u64 old;

	t->acked = s->acked;
	t->backlog = (__s64)tx > s->handed ? (__s64)tx - s->handed : 0;
	if (s->handed > (__s64)t->handed) {
		t->handed = s->handed;
		t->progress_ns = bpf_ktime_get_ns();
	}
	queued = (__s64)tx - s->acked;
	if (queued < 0)
		queued = 0;
	queued += (__s64)t->ctl_out * CTL_OVERHEAD;
	/* Exchange, so that the node's sum stays the sum of the shares
	 * whichever CPU updates which share. */
	old = __sync_lock_test_and_set(&t->queued, queued);
	__sync_fetch_and_add(&node_queued, queued - old);
}

/* The fast path looks at a leg's sending through its tcp_sock (leg_look,
 * psock.bpf.c): noted at the first redirect to it, the daemon's preface,
 * before any client's stream can be bound to it. */
static __always_inline void leg_note_tcp(struct h2lb_conn *t,
					 struct bpf_sock *sk)
{
	struct tcp_sock *tp;

	if (t->sk_tcp || t->role != H2LB_ROLE_BACKEND)
		return;
	tp = bpf_skc_to_tcp_sock(sk);
	if (tp)
		t->sk_tcp = (__u64)tp;
}

/*
 * A message of @len bytes goes to @target (its record @t). @ctl: a
 * control frame (not DATA with payload, not a new request: those the
 * stream limits bound). Count it in @target's record, and update what
 * waits for @target's peer, for it and for the node, from @s when
 * @known (where @target's sending stands). Returns 1 if it must not go:
 * settings.ctl_queue control frames wait already, and @target's TCP took
 * nothing since the first of them. *@ingress: 0, or the cookie of the
 * client's own socket (fast_hash) the message must enter instead, with
 * BPF_F_INGRESS (docs/fast-path.md, rule R).
 */
static __always_inline int account_sent(struct h2lb_conn *t, __u32 len, int ctl,
					int known, int fast_rx,
					const struct sent *s, __u64 *ingress)
{
	__u64 tx;

	*ingress = 0;
	if (known)
		ctl_reset(t, s);
	if (ctl && settings.ctl_queue) {
		if (t->ctl_out >= settings.ctl_queue)
			return 1;
		__sync_fetch_and_add(&t->ctl_out, 1);
	}
	tx = __sync_fetch_and_add(&t->tx_bytes, len) + len;
	/* A client on the fast path's sockhash, not switched yet: counted
	 * first, then the flag read, both full barriers; fast_rx_try
	 * (verdict.bpf.c) does the same the other way round, so a message
	 * either is in the tx_bytes it checks, or breaks its attempt, or goes
	 * by ingress. Once switched, it never switches back: no atomic. */
	if (fast_rx ||
	    (t->fast &&
	     (__sync_fetch_and_or(&t->flags, H2LB_CONN_FAST_RX_BROKE) &
	      H2LB_CONN_FAST_RX)))
		*ingress = t->fast;
	if (known)
		sent_update(t, tx, s);
	return 0;
}

/*
 * account_sent() from a verdict (an sk_skb program). *@self: where the
 * sending socket stands (sock_sent), when @target is that socket (a PING
 * answered); -1 otherwise: then @target is looked at here.
 *
 * A global function: verified once, not at every redirect site.
 */
__attribute__((noinline)) __weak int peer_account(__u64 target, __u32 len,
						  int ctl,
						  const struct sent *self,
						  __u64 *ingress)
{
	struct h2lb_conn *t = bpf_map_lookup_elem(&conns, &target);
	int known, fast_rx;
	struct bpf_sock *sk;
	struct sent s;

	if (!ingress || !self)
		return 0;
	*ingress = 0;
	s = *self;
	known = s.handed >= 0;
	if (!t)
		return 0;
	/* Once switched, never back: its TCP sends nothing more, and its
	 * client's socket tells what was taken. */
	fast_rx = t->fast && (t->flags & H2LB_CONN_FAST_RX);
	if (fast_rx)
		known = !client_psock_sent(t->fast, t->fast_tcp, t->tx_bytes,
					   &s);
	/* Any socket but the sender comes from the sockhash, with a
	 * reference to drop. */
	else if (!known) {
		sk = bpf_map_lookup_elem(&sock_hash, &target);
		if (sk) {
			known = !sock_sent(sk, &s);
			leg_note_tcp(t, sk);
			bpf_sk_release(sk);
		}
	}
	return account_sent(t, len, ctl, known, fast_rx, &s, ingress);
}

/*
 * account_sent() from the fast path's client program (an sk_msg
 * program, which can take no reference to a socket, K19): @s is where
 * @target stands, as the caller looked (leg_look for a leg, the client's
 * own psock for its accepted socket, msg_psock_sent). A global function.
 */
__attribute__((noinline)) __weak int peer_account_msg(__u64 target, __u32 len,
						      int ctl,
						      const struct sent *s,
						      __u64 *ingress)
{
	struct h2lb_conn *t = bpf_map_lookup_elem(&conns, &target);
	struct sent v;

	if (!ingress || !s)
		return 0;
	*ingress = 0;
	if (!t)
		return 0;
	v = *s;
	return account_sent(t, len, ctl, v.handed >= 0,
			    t->fast && (t->flags & H2LB_CONN_FAST_RX), &v,
			    ingress);
}

/* peer_account() for a message from the socket @in came from (@self),
 * which looks at that socket itself when it is the target. From the fast
 * path's client program (@in an sk_msg), @target is a leg, looked at
 * through its tcp_sock, or the client's accepted socket, whose answers
 * enter the client's own socket (rule R: it has H2LB_CONN_FAST_RX), the
 * socket the program runs on. */
static __always_inline int account(const struct h2_in *in, __u64 self,
				   __u64 target, __u32 len, int ctl,
				   __u64 *ingress)
{
	struct sent s = { -1, -1 };
	struct h2lb_conn *t;
	struct bpf_sock *sk;
	__s64 room;

	if (in->kind == H2_IN_MSG) {
		t = bpf_map_lookup_elem(&conns, &target);
		if (t && target == self)
			msg_psock_sent(in->ctx, t->tx_bytes, &s);
		else if (t && leg_look(t->sk_tcp, &s, &room))
			s.acked = s.handed = -1;
		return peer_account_msg(target, len, ctl, &s, ingress);
	}
	if (target == self && (sk = in_sock(in)) && sock_sent(sk, &s))
		s.acked = s.handed = -1;
	return peer_account(target, len, ctl, &s, ingress);
}

/* How long a peer with bytes waiting for it may leave them untaken before
 * it lags (a peer that reads has its TCP take more all the time). */
#define LAG_NS (H2LB_LAG_MS * 1000000ull)

/*
 * Whether @c's own peer (@in came from @c) has shown that it reads: its
 * TCP (on the fast path, its own socket's application) acknowledged at
 * least @proof bytes, and either took all but @lag of what was sent to
 * it, or took more in the last LAG_NS. Over the node's
 * limit only such clients get new streams: one that just came cannot
 * tell, and 10,000 of them asking for one response each and reading none
 * is the attack.
 */
static __always_inline int self_keeps_up(const struct h2_in *in,
					 const struct h2lb_conn *c, __s64 proof,
					 __s64 lag)
{
	struct bpf_sock *sk = in_sock(in);
	struct sent s = { c->acked, c->handed };

	/* On the fast path's response direction, its TCP sends nothing
	 * more: the last look at its client's socket tells. */
	if (!(c->flags & H2LB_CONN_FAST_RX) && (!sk || sock_sent(sk, &s)))
		return 0;
	if (s.acked < proof)
		return 0;
	return (__s64)c->tx_bytes - s.handed <= lag ||
	       bpf_ktime_get_ns() - c->progress_ns < LAG_NS;
}

/* The node has more queued toward its peers than --node-buffer allows:
 * connections whose peers keep up are still served, the others get no
 * new stream (and no window, user/window.c). */
static __always_inline int node_full(void)
{
	return settings.node_queue &&
	       (__s64)__sync_fetch_and_add(&node_queued, 0) >
		       (__s64)settings.node_queue;
}

#endif
