// SPDX-License-Identifier: GPL-2.0
/*
 * The verdict: routes every message the parser cut to the socket its
 * stream is bound to. Frame payloads never leave the kernel; the few
 * frames that need a decision go to the daemon as events.
 */
#include "budget.h"
#include "events.h"
#include "frame.h"
#include "maps.h"
#include "rules.h"
#include "select.h"
#include "stream.h"

/* PINGs deeper than this in the segment they came in are answered by the
 * daemon: writing the ACK flag makes the kernel copy the segment up to
 * the frame (docs/hardening.md, "Why a PING cost 25 KB"). */
#define PING_INLINE_MAX 512
/* Frames without data an open stream may carry before its connection's
 * budget pays (stream_frame_over). */
#define STREAM_FREE_FRAMES 8
/* Frame budget tokens a peer earns for each DATA message sent to it. */
#define CALM_PER_DATA 4
/* Over the node's limit, a client gets a new stream only if its TCP
 * acknowledged this much and leaves no more than NODE_FULL_LAG waiting
 * (budget.h, self_keeps_up). */
#define NODE_FULL_PROOF (64 << 10)
#define NODE_FULL_LAG	H2LB_LAG_BYTES
/* SETTINGS of one peer that the daemon has not acknowledged yet. */
#define SETTINGS_IN_FLIGHT 4

/* A client that leaves what it gets unread, or whose leg does (below). */
static __always_inline void peer_calm(__u64 client);

/*
 * Whether the fast path's client program may write @len bytes to @leg
 * now, synchronously (docs/fast-path.md, "The request direction"). The
 * first time: the leg is marked H2LB_CONN_LEG_FAST, and only then is its
 * sending looked at. Every redirect to it from a verdict adds to its
 * tx_bytes before it reads that flag (divert), both full barriers: a
 * redirect either is in the tx_bytes looked at here, which its TCP must
 * have taken whole, or sees the flag and goes to the daemon. Then the
 * leg is H2LB_CONN_LEG_SYNC: nothing waits in its psock's queue, and
 * nothing will (rule W). Each write needs room in its send buffer
 * (rule H): a push that waits for room releases the leg's lock, and
 * another writer could land inside the frame. 1: it may; 0: not now (or
 * the leg is gone); -1: it has no room.
 */
static __always_inline int leg_sync_ok(__u64 leg, __u32 len, struct sent *s)
{
	struct h2lb_conn *l = bpf_map_lookup_elem(&conns, &leg);
	__s64 room;
	__u64 tx;

	if (!l || l->role != H2LB_ROLE_BACKEND)
		return 0;
	if (!(l->flags & H2LB_CONN_LEG_FAST))
		__sync_fetch_and_or(&l->flags, H2LB_CONN_LEG_FAST);
	if (leg_look(l->sk_tcp, s, &room))
		return 0;
	if (!(l->flags & H2LB_CONN_LEG_SYNC)) {
		tx = __sync_fetch_and_add(&l->tx_bytes, 0);
		if (s->handed < (__s64)tx)
			return 0;
		__sync_fetch_and_or(&l->flags, H2LB_CONN_LEG_SYNC);
	}
	return room >= (__s64)len ? 1 : -1;
}

/* leg_sync_ok() for the client's program (fast.bpf.c): 1 if it may. */
__attribute__((noinline)) int leg_sync(__u64 leg, __u32 len)
{
	struct sent s;

	return leg_sync_ok(leg, len, &s) == 1;
}

/*
 * A redirect to a leg that is written synchronously (H2LB_CONN_LEG_FAST)
 * from a verdict that is not its client's (the injector's, the leg's own
 * PING answer) would be queued to its psock, whose worker can send it in
 * pieces around a synchronous write (rule W): the daemon gets the frame
 * and writes it itself (user/divert.c). Called after the message was
 * counted in @target's tx_bytes (peer_account, a full barrier), which it
 * takes back. 1 if diverted.
 */
static __always_inline int divert(const struct h2_in *in, __u64 target)
{
	struct h2lb_conn *t = bpf_map_lookup_elem(&conns, &target);
	__u32 len = in_len(in), n = len;
	struct h2lb_event *ev;

	if (!t || !(t->flags & H2LB_CONN_LEG_FAST))
		return 0;
	__sync_fetch_and_add(&t->tx_bytes, -(__s64)len);
	count(H2LB_CNT_DIVERTED);
	ev = event_new(H2LB_EV_DIVERT, target, 0, 0, len);
	if (!ev)
		return 1;
	if (n > H2LB_EVENT_DATA)
		n = H2LB_EVENT_DATA;
	if (n && !bpf_skb_load_bytes(in->ctx, in->off, ev->data, n))
		ev->len = n;
	event_send(ev);
	return 1;
}

/*
 * Send the message to @target, from @self. Everything that goes to a
 * socket goes through here: its bytes are counted before it goes (flow
 * control compares them with what the peer's TCP acknowledged,
 * user/flow.c; the fast path's switch, with what was sent), and a control
 * message (@ctl: not DATA with payload) to a peer that leaves too many
 * unread is not sent (*@full set): budget.h. A message of the fast path's
 * client program (an sk_msg) goes in that program's sendmsg, to a leg
 * that takes it whole now (leg_sync_ok) or into the client's own socket.
 */
static __always_inline int redirect_full(const struct h2_in *in, __u64 self,
					 __u64 target, int ctl, int *full)
{
	struct sent s;
	__u64 ingress;
	int sync, over;
	long r;

	*full = 0;
	if (!target) {
		count(H2LB_CNT_NO_TARGET);
		return SK_DROP;
	}
	/* A leg of a stream that is open takes synchronous writes already
	 * (the switch, or the stream's first frame, made it so). One with
	 * no room has a backend that does not read what its windows let
	 * in: the client's connection fails, not one frame of it. One that
	 * is gone is as on today's path: the frame goes nowhere. */
	if (in->kind == H2_IN_MSG && target != self) {
		sync = leg_sync_ok(target, in_len(in), &s);
		if (sync != 1) {
			count(H2LB_CNT_NO_TARGET);
			if (sync < 0)
				peer_calm(self);
			return SK_DROP;
		}
		/* account() for a leg, from the look just taken */
		over = peer_account_msg(target, in_len(in), ctl, &s, &ingress);
	} else {
		over = account(in, self, target, in_len(in), ctl, &ingress);
	}
	if (over) {
		count(H2LB_CNT_PEER_FULL);
		*full = 1;
		return SK_DROP;
	}
	if (in->kind == H2_IN_MSG) {
		if (ingress)
			r = bpf_msg_redirect_hash(in->ctx, &fast_hash, &ingress,
						  BPF_F_INGRESS);
		else
			r = bpf_msg_redirect_hash(in->ctx, &sock_hash, &target,
						  0);
		if (r == SK_PASS && ingress)
			count_add(H2LB_CNT_FAST_INGRESS, in_len(in));
	} else if (ingress) {
		/* The fast path's response direction: into the client's
		 * own socket's receive queue (docs/fast-path.md, rule R). */
		r = bpf_sk_redirect_hash(in->ctx, &fast_hash, &ingress,
					 BPF_F_INGRESS);
		if (r == SK_PASS)
			count_add(H2LB_CNT_FAST_INGRESS, in_len(in));
	} else {
		/* Not the client's own frames: its verdict runs only until
		 * the client switched, and its legs are written only so
		 * (queued) until then, or for good if the switch failed. */
		if ((self == 0 || self == target) && divert(in, target))
			return SK_DROP;
		r = bpf_sk_redirect_hash(in->ctx, &sock_hash, &target, 0);
	}
	if (r != SK_PASS) {
		count(H2LB_CNT_NO_TARGET);
		return SK_DROP;
	}
	count(H2LB_CNT_REDIRECTS);
	return SK_PASS;
}

static __always_inline int redirect(const struct h2_in *in, __u64 self,
				    __u64 target, int ctl)
{
	int full;

	return redirect_full(in, self, target, ctl, &full);
}

/*
 * The same-node fast path (docs/fast-path.md): what the verdict of a
 * paired client's message tells that client's own program, which decides
 * when the connection may switch. @leg: a leg the message goes to; else
 * the message is over, and @len more bytes are finished. Keyed as the
 * client's socket knows itself: its address and port are this socket's
 * peer. A global function: verified once, not at every call site.
 */
__attribute__((noinline)) int fast_note(__u32 addr, __u32 port, __u64 leg,
					__u32 len)
{
	struct h2lb_fast_key k = { .addr = addr, .port = port };
	struct h2lb_fast_pair *p = bpf_map_lookup_elem(&fast_pairs, &k);

	if (!p)
		return 0;
	if (!leg) {
		/* A full barrier: what the verdict changed is seen by the
		 * program that sees this count. */
		__sync_fetch_and_add(&p->done, len);
		return 0;
	}
	for (int i = 0; i < H2LB_FAST_LEGS; i++) {
		if (p->legs[i] == leg)
			return 0;
		if (!p->legs[i]) {
			p->legs[i] = leg;
			return 0;
		}
	}
	__sync_fetch_and_or(&p->flags, H2LB_FAST_MANY);
	return 0;
}

/* A client's message to one of its legs (the accepted socket's verdict,
 * or the fast path's client program). */
static __always_inline int to_leg(const struct h2_in *in, struct h2lb_conn *c,
				  __u64 cookie, __u64 leg, int ctl)
{
	struct __sk_buff *skb = in->ctx;

	if (c->fast && in->kind == H2_IN_SKB)
		fast_note(skb->remote_ip4, bpf_ntohl(skb->remote_port), leg, 0);
	return redirect(in, cookie, leg, ctl);
}

static __always_inline int drop(void)
{
	count(H2LB_CNT_DROPPED);
	return SK_DROP;
}

/* Hand a frame to the daemon, with up to H2LB_EVENT_DATA payload bytes. */
static __always_inline void emit_frame(const struct h2_in *in,
				       const struct h2_frame *f, __u32 type,
				       __u64 cookie, __u64 peer, __u32 arg)
{
	struct h2lb_event *ev = event_new(type, cookie, peer, f->stream, arg);
	__u32 n = f->len;

	if (!ev)
		return;
	ev->len = in_load_upto(in, f->off + H2_HDR_LEN, ev->data, n,
			       H2LB_EVENT_DATA);
	event_send(ev);
}

/* A peer's SETTINGS, checked parameter by parameter, in order; the daemon
 * gets what it set (struct h2lb_settings_frame) and sends the ACK. */
static __always_inline int peer_settings(const struct h2_in *in,
					 const struct h2_frame *f,
					 struct h2lb_conn *c, __u64 cookie);

/* Tell the daemon of a connection error: GOAWAY(@code), with the rule
 * (@why, enum h2lb_why) that frame @f (or none) broke. */
static __always_inline void
emit_conn_error(__u64 cookie, const struct h2_frame *f, __u32 code, __u8 why)
{
	struct h2lb_event *ev = event_new(H2LB_EV_CONN_ERROR, cookie, 0,
					  f ? f->stream : 0, code);
	struct h2lb_conn_error e = { .why = why,
				     .type = f ? f->type : H2LB_NO_FRAME };

	if (!ev)
		return;
	__builtin_memcpy(ev->data, &e, sizeof(e));
	ev->len = sizeof(e);
	event_send(ev);
}

/* Fail the connection: the daemon sends GOAWAY(@code) and closes it. */
static __always_inline int conn_error(struct h2lb_conn *c, __u64 cookie,
				      const struct h2_frame *f, __u32 code,
				      __u8 why)
{
	c->flags |= H2LB_CONN_DEAD;
	count(H2LB_CNT_PROTOCOL_ERRORS);
	emit_conn_error(cookie, f, code, why);
	return SK_DROP;
}

/* Over its frame budget, or not reading what it asked for. */
static __always_inline int calm_error(struct h2lb_conn *c, __u64 cookie)
{
	count(H2LB_CNT_CALM);
	return conn_error(c, cookie, NULL, H2_ENHANCE_YOUR_CALM, H2LB_WHY_CALM);
}

/* A client that leaves the frames sent to it unread, seen from another
 * socket's verdict: the same as calm_error, for @client. */
static __always_inline void peer_calm(__u64 client)
{
	struct h2lb_conn *t = bpf_map_lookup_elem(&conns, &client);

	if (!t || t->role != H2LB_ROLE_CLIENT ||
	    (__sync_fetch_and_or(&t->flags, H2LB_CONN_DEAD) & H2LB_CONN_DEAD))
		return;
	count(H2LB_CNT_CALM);
	emit_conn_error(client, NULL, H2_ENHANCE_YOUR_CALM, H2LB_WHY_CALM);
}

/* What a frame costs of its sender's budget: 1 for frames that make work
 * but carry nothing (docs/hardening.md), 0 for data and new requests.
 * HEADERS that open nothing pay where that is found. */
static __always_inline int frame_cost(const struct h2_frame *f,
				      const struct h2lb_conn *c)
{
	switch (f->type) {
	case H2_DATA:
		return !c->run_data && !c->run_end;
	case H2_HEADERS:
		return !(f->flags & H2_F_END_HEADERS); /* CONTINUATIONs */
	}
	return 1;
}

/*
 * Whether a stream frame is over its sender's budget. The first
 * STREAM_FREE_FRAMES frames without data on an open stream are free (a
 * call's WINDOW_UPDATEs, its PRIORITY, a reset after its answer); then,
 * and on streams not open, the connection's budget pays. A client's
 * reset of a stream its backend has not answered always pays: that is
 * rapid reset (CVE-2023-44487).
 */
static __always_inline int stream_frame_over(const struct h2_frame *f,
					     struct h2lb_conn *c,
					     struct h2lb_stream *st)
{
	int rapid = c->role == H2LB_ROLE_CLIENT && f->type == H2_RST_STREAM &&
		    st && !(st->flags & H2LB_ST_RESPONDED);

	if (!frame_cost(f, c))
		return 0;
	if (st && !rapid && st->free_frames < STREAM_FREE_FRAMES) {
		st->free_frames++;
		return 0;
	}
	return calm_take(c, 1);
}

/* PING: rewrite into its ACK in place and send it back where it came
 * from; no daemon round trip. An ACK answers the watchdog's PING, whose
 * only purpose was to draw a segment: it has arrived. */
static __always_inline int answer_ping(const struct h2_in *in,
				       const struct h2_frame *f,
				       struct h2lb_conn *c, __u64 cookie)
{
	__u8 ack = H2_F_ACK;
	int r, full;

	if (f->flags & H2_F_ACK)
		return SK_DROP;
	if (f->off > PING_INLINE_MAX) {
		count(H2LB_CNT_PING_EVENTS);
		emit_frame(in, f, H2LB_EV_PING, cookie, 0, 0);
		return SK_DROP;
	}
	if (in_store(in, f->off + 4, &ack, 1))
		return drop();
	count(H2LB_CNT_PINGS);
	r = redirect_full(in, cookie, cookie, 1, &full);
	return full ? calm_error(c, cookie) : r;
}

/* Whether the daemon wants to hear now of WINDOW_UPDATEs of @c that add
 * up to less than H2LB_WINDOW_STEP: not while no refill could follow
 * them (the marks, set by the daemon after each refill; 0: always). */
static __always_inline int window_wake(const struct h2lb_conn *c)
{
	const struct h2lb_conn *client;

	if (c->role == H2LB_ROLE_CLIENT)
		return !c->wake_tx || c->tx_data >= c->wake_tx;
	if (c->role != H2LB_ROLE_BACKEND || !c->peer)
		return 1;
	client = bpf_map_lookup_elem(&conns, &c->peer);
	return !client || !client->wake_rx ||
	       client->rx_data >= client->wake_rx;
}

/* A connection WINDOW_UPDATE: the increments add up in the record, and
 * one event at a time tells the daemon to take them (kern_conn_take_window),
 * however many frames came. Small ones wait for the daemon's mark, which
 * DATA passes (count_data), or for more: a gRPC call brought one from its
 * client and one from its backend, each an event and a wake-up of the
 * daemon (about 45 us of the machine's CPU per call), and nearly never a
 * refill. */
static __always_inline void window_update(struct h2lb_conn *c, __u64 cookie,
					  __u32 inc)
{
	struct h2lb_event *ev;
	__u64 pending = __sync_fetch_and_add(&c->window_pending, inc) + inc;

	if (pending < H2LB_WINDOW_STEP && !window_wake(c))
		return;
	if (__sync_lock_test_and_set(&c->window_event, 1))
		return;
	ev = event_new(H2LB_EV_WINDOW, cookie, c->peer, 0, 0);
	if (!ev) {
		c->window_event = 0; /* the next one tries again */
		return;
	}
	event_send(ev);
}

/* A leg's SETTINGS ACK: counted against the SETTINGS the daemon sent
 * it; the daemon holds a client's ACK of a lowered window until the legs
 * told of it have ACKed (user/settings_ack.c). Only the leg's own frames
 * write the count. */
static __always_inline void leg_settings_acked(struct h2lb_conn *c,
					       __u64 cookie)
{
	__u32 n = c->settings_acks;
	struct h2lb_event *ev;

	if (n >= c->settings_sent)
		return; /* an ACK of nothing we sent */
	c->settings_acks = ++n;
	if (n != c->settings_sent ||
	    !__sync_lock_test_and_set(&c->settings_wait, 0))
		return;
	/* Lost (a full ring), the daemon's tick finds the count. */
	ev = event_new(H2LB_EV_SETTINGS_ACK, cookie, c->peer, 0, 0);
	if (ev)
		event_send(ev);
}

/* Frames on stream 0 that every role treats alike. */
static __always_inline int connection_frame(const struct h2_in *in,
					    const struct h2_frame *f,
					    struct h2lb_conn *c, __u64 cookie)
{
	switch (f->type) {
	case H2_PING:
		return answer_ping(in, f, c, cookie);
	case H2_SETTINGS:
		if (f->flags & H2_F_ACK) {
			if (c->role == H2LB_ROLE_CLIENT)
				c->flags |= H2LB_CONN_SETTINGS_ACK;
			else if (c->role == H2LB_ROLE_BACKEND)
				leg_settings_acked(c, cookie);
			return SK_DROP;
		}
		return peer_settings(in, f, c, cookie);
	case H2_GOAWAY:
		emit_frame(in, f, H2LB_EV_GOAWAY, cookie, c->peer,
			   frame_u32(in, f, 4));
		return SK_DROP;
	case H2_WINDOW_UPDATE:
		window_update(c, cookie, frame_u32(in, f, 0) & H2_MAX_WINDOW);
		return SK_DROP;
	}
	return drop();
}

static __always_inline int peer_settings(const struct h2_in *in,
					 const struct h2_frame *f,
					 struct h2lb_conn *c, __u64 cookie)
{
	struct h2lb_settings_frame v;
	struct h2lb_event *ev;
	int err = settings_rules(in, f, &v);

	if (err)
		return conn_error(c, cookie, f, ERROR_CODE(err),
				  H2LB_WHY_SETTINGS);
	/* Each SETTINGS is one event and one ACK from the daemon: a peer
	 * that sends more before they are answered floods it. */
	if (__sync_fetch_and_add(&c->settings_unacked, 1) >= SETTINGS_IN_FLIGHT)
		return calm_error(c, cookie);
	ev = event_new(H2LB_EV_SETTINGS, cookie, c->peer, 0, 0);
	if (!ev) {
		__sync_fetch_and_add(&c->settings_unacked, -1);
		return SK_DROP;
	}
	__builtin_memcpy(ev->data, &v, sizeof(v));
	ev->len = sizeof(v);
	event_send(ev);
	return SK_DROP;
}

/*
 * A stream error (RFC 9113 5.4.2) on @sk, found on a frame @c sent: the
 * stream closes here, as one h2lb reset (what the client still has in
 * flight for it is ignored), and the daemon sends RST_STREAM(@code) to
 * @c and RST_STREAM to the other side if the stream was open there.
 */
static __always_inline int stream_error(struct h2lb_conn *c, __u64 cookie,
					struct h2lb_stream_key *sk,
					struct h2lb_stream *st, __u32 code)
{
	__u64 other = 0;

	if (c->role == H2LB_ROLE_BACKEND)
		other = c->peer;
	if (st) {
		if (c->role == H2LB_ROLE_CLIENT)
			other = st->leg;
		stream_close(sk, st, H2LB_CLOSED_RESET);
	} else {
		stream_closed(sk, H2LB_CLOSED_RESET);
	}
	count(H2LB_CNT_STREAM_ERRORS);
	emit(H2LB_EV_STREAM_ERROR, cookie, other, sk->id, code);
	return SK_DROP;
}

/* DATA the peer sent beyond the connection window we granted it
 * (6.9.1): FLOW_CONTROL_ERROR. It is also what bounds the memory the
 * kernel holds for that peer (docs/kernel-facts.md K5). */
static __always_inline int over_window(const struct h2lb_conn *c)
{
	return c->run_data && c->rx_data + c->run_data > c->rx_grant;
}

/* DATA that goes nowhere still used connection window. */
static __always_inline int drop_data(struct h2lb_conn *c)
{
	__sync_fetch_and_add(&c->rx_data, c->run_data);
	return drop();
}

/* A HEADERS without END_HEADERS comes with its CONTINUATIONs in one
 * message; the parser says when another frame broke the block
 * (header_block_len). */
static __always_inline int block_incomplete(const struct h2lb_conn *c,
					    const struct h2_frame *f)
{
	return !(f->flags & H2_F_END_HEADERS) && c->run_broken;
}

static __always_inline void count_data(struct h2lb_conn *from, __u64 cookie,
				       __u64 to, __u32 backend, __u32 len,
				       int to_backend)
{
	struct h2lb_conn *t = bpf_map_lookup_elem(&conns, &to);
	struct h2lb_backend *be = bpf_map_lookup_elem(&backends, &backend);
	__u64 old, mark;
	int look = 0;

	/* The target's count first: the daemon reads the sources' counts
	 * before the targets', so whatever moves meanwhile makes it see
	 * less window than there is, never more (user/flow.c). */
	if (t) {
		old = __sync_fetch_and_add(&t->tx_data, len);
		/* Its WINDOW_UPDATEs and PINGs (BDP estimators) for this. */
		calm_earn(t, CALM_PER_DATA);
		/* DATA to a client passed the daemon's mark, with its small
		 * WINDOW_UPDATEs waiting: its legs may be due a refill. */
		mark = t->wake_tx;
		look = !to_backend && mark && old < mark && old + len >= mark &&
		       t->window_pending;
	}
	old = __sync_fetch_and_add(&from->rx_data, len);
	/* DATA from a client passed the mark: its legs' small
	 * WINDOW_UPDATEs may make it due a refill. */
	mark = from->wake_rx;
	look |= to_backend && mark && old < mark && old + len >= mark;
	if (look || (old >> H2LB_PROGRESS_SHIFT) !=
			    ((old + len) >> H2LB_PROGRESS_SHIFT))
		emit(H2LB_EV_DATA_PROGRESS, cookie, from->peer, 0, 0);
	if (!be)
		return;
	if (to_backend)
		__sync_fetch_and_add(&be->bytes_to, len);
	else
		__sync_fetch_and_add(&be->bytes_from, len);
}

/*
 * The client believes a stream's window starts at what h2lb told it
 * (c->stream_window); the backend allows its own, which may be larger
 * (grpc-java starts at 1 MiB; grpc-go's BDP estimator grows it): it then
 * refills only once more of that is used, while the client, out of its
 * smaller view, waits for a refill. So once the client has used half its
 * view of a stream that has more to send, the daemon tells it the
 * difference (a stream WINDOW_UPDATE); only streams that send that much
 * cost an event. docs/flow-control.md has the rules.
 */
static __always_inline void window_sync(struct h2lb_conn *c, __u64 cookie,
					struct h2lb_stream_key *sk,
					struct h2lb_stream *st)
{
	struct h2lb_conn *l;
	__u32 sent = st->sent + c->run_data;

	st->sent = sent;
	if ((st->flags & H2LB_ST_WINDOW_SYNC) || c->run_end ||
	    sent < c->stream_window / 2)
		return;
	l = bpf_map_lookup_elem(&conns, &st->leg);
	if (!l || l->stream_window <= c->stream_window)
		return;
	__sync_fetch_and_or(&st->flags, H2LB_ST_WINDOW_SYNC);
	emit(H2LB_EV_STREAM_WINDOW, cookie, st->leg, sk->id,
	     l->stream_window - c->stream_window);
}

/* Over the node's limit, no new stream goes to a backend connection whose
 * backend leaves more than NODE_FULL_LAG untaken, and took nothing for a
 * while. */
static __always_inline int leg_lags(__u64 leg)
{
	struct h2lb_conn *l = bpf_map_lookup_elem(&conns, &leg);

	return l && l->backlog > NODE_FULL_LAG &&
	       bpf_ktime_get_ns() - l->progress_ns >= LAG_NS;
}

static __always_inline int client_new_stream(const struct h2_in *in,
					     const struct h2_frame *f,
					     struct h2lb_conn *c, __u64 cookie,
					     struct h2lb_stream_key *sk)
{
	__u32 backend = 0;
	struct h2lb_stream *st;
	int r, over, sync;
	__u64 leg;

	/* Client streams are odd and increasing (RFC 9113 5.1.1). */
	if (!(f->stream & 1) || f->stream <= c->last_stream)
		return conn_error(c, cookie, f, H2_PROTOCOL_ERROR,
				  H2LB_WHY_STREAM_ID);
	/* Store the id, then look at the flags; h2lb_goaway_client sets the
	 * flag, then reads the id. Both are full barriers (xchg, lock or):
	 * a stream is either inside the GOAWAY's last stream id or refused
	 * (or both: refused streams are retried), never processed unseen. */
	__sync_lock_test_and_set(&c->last_stream, f->stream);

	/* The fast path writes the stream's first frames now: only to a
	 * leg whose psock's queue is empty (leg_pick). */
	sync = in->kind == H2_IN_MSG ? (int)in_len(in) : -1;
	leg = 0;
	over = c->open_streams >= settings.max_streams;
	if (!over && !(c->flags & H2LB_CONN_GOAWAY)) {
		int full = node_full();

		if (full &&
		    !self_keeps_up(in, c, NODE_FULL_PROOF, NODE_FULL_LAG))
			count(H2LB_CNT_NODE_FULL);
		else if (addr_streams_full(c->addr))
			count(H2LB_CNT_ADDR_FULL);
		else
			leg = leg_for_new_stream(cookie, c, &backend, sync);
		if (leg && full && leg_lags(leg)) {
			count(H2LB_CNT_NODE_FULL);
			leg = 0;
		}
	}
	/* A stream over its own limit is the client's doing: it pays. */
	if (over && calm_take(c, 1))
		return calm_error(c, cookie);
	if (!leg || !(st = stream_open(sk, leg, backend, c->resp_window))) {
		/* Refused: RST_STREAM(REFUSED_STREAM), which gRPC retries.
		 * Its header block goes with it (it sets no HPACK state:
		 * the client's dynamic table is off, or the stream would
		 * have gone to leg0). What the client still sends on it is
		 * ignored. */
		stream_closed(sk, H2LB_CLOSED_RESET);
		__sync_fetch_and_add(&c->rx_data, c->run_data);
		count(H2LB_CNT_REFUSED);
		emit(H2LB_EV_REFUSED, cookie, 0, f->stream, H2_REFUSED_STREAM);
		return SK_DROP;
	}
	opened_note(c, f->stream);
	__sync_fetch_and_add(&c->open_streams, 1);
	addr_streams_add(c->addr, 1);
	stream_reserve(st);
	/* Not a control frame: max_streams bounds the requests that wait. */
	r = to_leg(in, c, cookie, leg, 0);
	if (c->run_data)
		count_data(c, cookie, leg, backend, c->run_data, 1);
	window_sync(c, cookie, sk, st);
	if (c->run_end)
		stream_end(sk, st, H2LB_ST_CLIENT_END);
	return r;
}

/*
 * DATA or HEADERS from a client on a stream that is not open, with an id
 * it has used (5.1): after h2lb reset the stream, ignored; after the
 * client reset it, a stream error; after both sides ended it, a
 * connection error (STREAM_CLOSED). An id below the highest that was
 * never opened (or forgotten) cannot take a new HEADERS (5.1.1).
 */
static __always_inline int client_closed_stream(const struct h2_frame *f,
						struct h2lb_conn *c,
						__u64 cookie,
						struct h2lb_stream_key *sk)
{
	__u32 *how = bpf_map_lookup_elem(&closed, sk), done = H2LB_CLOSED_DONE;

	if (!how && opened_lately(c, f->stream))
		how = &done;
	__sync_fetch_and_add(&c->rx_data, c->run_data);
	if (how && *how == H2LB_CLOSED_RESET) {
		/* Frames in flight when h2lb reset it; HEADERS there open
		 * nothing, and pay. */
		if (f->type == H2_HEADERS && calm_take(c, 1))
			return calm_error(c, cookie);
		return drop();
	}
	if (how && *how == H2LB_CLOSED_BY_CLIENT)
		return stream_error(c, cookie, sk, NULL, H2_STREAM_CLOSED);
	if (how || f->type == H2_DATA)
		return conn_error(c, cookie, f, H2_STREAM_CLOSED,
				  H2LB_WHY_CLOSED_STREAM);
	return conn_error(c, cookie, f, H2_PROTOCOL_ERROR,
			  H2LB_WHY_IDLE_STREAM);
}

/* A frame from a client: route it to the backend leg of its stream,
 * after the rules of its stream's state (5.1). @rule: what frame_rules
 * found (a stream error, or nothing). */
static __always_inline int client_frame(const struct h2_in *in,
					const struct h2_frame *f,
					struct h2lb_conn *c, __u64 cookie,
					int rule)
{
	struct h2lb_stream_key sk = { .client = cookie, .id = f->stream };
	struct h2lb_stream *st;
	int idle;

	if (f->type == H2_HEADERS && block_incomplete(c, f))
		return conn_error(c, cookie, f, H2_PROTOCOL_ERROR,
				  H2LB_WHY_HEADER_BLOCK);
	if (over_window(c))
		return conn_error(c, cookie, f, H2_FLOW_CONTROL_ERROR,
				  H2LB_WHY_WINDOW);
	if (f->stream == 0)
		return connection_frame(in, f, c, cookie);
	if (f->type == H2_HEADERS) {
		int err = hpack_rules(in, f, c->flags & H2LB_CONN_SETTINGS_ACK);

		if (err)
			return conn_error(c, cookie, f, ERROR_CODE(err),
					  H2LB_WHY_HPACK);
	}

	st = bpf_map_lookup_elem(&streams, &sk);
	/* Even ids are the server's, and h2lb opens none (no push): one
	 * the client names is idle, whatever its own ids reached. */
	idle = !st && (f->stream > c->last_stream || !(f->stream & 1));
	if (stream_frame_over(f, c, st))
		return calm_error(c, cookie);
	if (IS_STREAM_ERROR(rule)) {
		if (f->type == H2_DATA)
			__sync_fetch_and_add(&c->rx_data, c->run_data);
		/* A HEADERS that would have opened it: its id is used. */
		if (f->type == H2_HEADERS && idle && (f->stream & 1))
			__sync_lock_test_and_set(&c->last_stream, f->stream);
		return stream_error(c, cookie, &sk, st, ERROR_CODE(rule));
	}
	switch (f->type) {
	case H2_HEADERS:
		if (idle)
			return client_new_stream(in, f, c, cookie, &sk);
		if (!st)
			return client_closed_stream(f, c, cookie, &sk);
		/* Trailers: after the request's, no more (half-closed), and
		 * they end the stream (8.1). */
		if (st->flags & H2LB_ST_CLIENT_END)
			return stream_error(c, cookie, &sk, st,
					    H2_STREAM_CLOSED);
		if (!(f->flags & H2_F_END_STREAM))
			return stream_error(c, cookie, &sk, st,
					    H2_PROTOCOL_ERROR);
		/* fall through */
	case H2_DATA:
		if (idle) {
			__sync_fetch_and_add(&c->rx_data, c->run_data);
			return conn_error(c, cookie, f, H2_PROTOCOL_ERROR,
					  H2LB_WHY_IDLE_STREAM);
		}
		if (!st)
			return client_closed_stream(f, c, cookie, &sk);
		if (st->flags & H2LB_ST_CLIENT_END) {
			__sync_fetch_and_add(&c->rx_data, c->run_data);
			return stream_error(c, cookie, &sk, st,
					    H2_STREAM_CLOSED);
		}
		{
			__u64 leg = st->leg;

			int r = to_leg(in, c, cookie, leg, !c->run_data);

			if (r != SK_PASS) /* its DATA still used window */
				__sync_fetch_and_add(&c->rx_data, c->run_data);
			else if (c->run_data)
				count_data(c, cookie, leg, st->backend,
					   c->run_data, 1);
			window_sync(c, cookie, &sk, st);
			if (c->run_end)
				stream_end(&sk, st, H2LB_ST_CLIENT_END);
			return r;
		}
	case H2_RST_STREAM: {
		__u64 leg;

		if (!st && idle && (f->stream & 1)) {
			/*
			 * Not the RFC (5.1: a connection error): grpc's C
			 * core (Python, C++, Ruby clients) cancels a call
			 * whose stream id it took before its HEADERS went
			 * out, and sends this reset alone (measured,
			 * docs/conformance.md). The servers it was built
			 * for ignore it, so a proxy that fails the
			 * connection fails every call on it. Its id is used
			 * (5.1.1: a later HEADERS must be above it); the
			 * frame paid the connection's budget above.
			 */
			__sync_lock_test_and_set(&c->last_stream, f->stream);
			count(H2LB_CNT_IDLE_RESETS);
			return drop();
		}
		if (!st)
			return idle ? conn_error(c, cookie, f,
						 H2_PROTOCOL_ERROR,
						 H2LB_WHY_IDLE_STREAM)
				    : drop();
		leg = st->leg;
		stream_close(&sk, st, H2LB_CLOSED_BY_CLIENT);
		return to_leg(in, c, cookie, leg, 1);
	}
	case H2_WINDOW_UPDATE:
		if (!st)
			return idle ? conn_error(c, cookie, f,
						 H2_PROTOCOL_ERROR,
						 H2LB_WHY_IDLE_STREAM)
				    : drop();
		/* (Its increment is not 0: a stream error, above.) */
		__sync_fetch_and_add(
			&st->resp_used,
			-(__s32)(frame_u32(in, f, 0) & H2_MAX_WINDOW));
		return to_leg(in, c, cookie, st->leg, 1);
	}
	return drop(); /* PRIORITY (any state), unknown types */
}

/* The effect of one frame of a multi-stream leg message on its stream.
 * Global: verified once, not once per frame of the walk. */
__attribute__((noinline)) int leg_frame(__u64 client, __u64 leg, __u32 stream,
					__u32 type_flags, __u32 len)
{
	struct h2lb_stream_key k = { .client = client, .id = stream };
	struct h2lb_stream *st = bpf_map_lookup_elem(&streams, &k);
	__u32 type = type_flags & 0xff, flags = type_flags >> 8;

	/* Gone meanwhile (the client reset it): the client ignores the
	 * frame (RFC 9113 6.4); it still counts against its window. */
	if (!st || st->leg != leg)
		return 0;
	/* Within its stream window: the parser merges no frame that could
	 * overrun it (leg_run). */
	if (type == H2_DATA)
		__sync_fetch_and_add(&st->resp_used, len);
	if (type == H2_HEADERS) {
		st->flags |= H2LB_ST_RESPONDED;
		stream_unreserve(st);
	}
	if (flags & H2_F_END_STREAM)
		stream_end(&k, st, H2LB_ST_SERVER_END);
	return 0;
}

/* Send a leg's message to its client. One that does not read what it gets
 * fails, with ENHANCE_YOUR_CALM; its DATA still used the leg's window. */
static __always_inline int leg_send(const struct h2_in *in, struct h2lb_conn *c,
				    __u64 cookie, __u64 client, __u32 backend)
{
	int full, r = redirect_full(in, cookie, client, !c->run_data, &full);

	if (r != SK_PASS) {
		__sync_fetch_and_add(&c->rx_data, c->run_data);
		if (full)
			peer_calm(client);
		return r;
	}
	if (c->run_data)
		count_data(c, cookie, client, backend, c->run_data, 0);
	return r;
}

/* A leg message with frames of several streams (leg_run): all of it goes
 * to the client, whatever happened to its streams since it was cut. */
static __always_inline int leg_frames(const struct h2_in *in,
				      const struct h2_frame *first,
				      struct h2lb_conn *c, __u64 cookie)
{
	__u32 pos = first->off, end = first->off + in_len(in);
	__u64 client = c->peer;

	/* The first frame, up to H2LB_MAX_RUN_FRAMES of its stream
	 * (stream_run) and as many of others (leg_run). */
	for (int i = 0; i < 1 + 2 * H2LB_MAX_RUN_FRAMES; i++) {
		struct h2_frame f;

		if (pos >= end || frame_read_at(in, pos, &f))
			break;
		leg_frame(client, cookie, f.stream, f.type | f.flags << 8,
			  f.len);
		pos += H2_HDR_LEN + f.len;
	}
	count(H2LB_CNT_MULTI);
	return leg_send(in, c, cookie, client, c->backend);
}

/*
 * Whether @stream is idle for every leg of @client: an even id (backends
 * are told ENABLE_PUSH 0, so none is ever promised), or one above the
 * highest the client opened, which its program stores before the stream's
 * first frame goes anywhere. A backend may send nothing but PRIORITY on
 * such a stream (RFC 9113 5.1). Below that id, a stream not found is one
 * the client reset or one of another leg's.
 */
static __always_inline int leg_stream_idle(__u64 client, __u32 stream)
{
	struct h2lb_conn *cl = bpf_map_lookup_elem(&conns, &client);

	return cl && (!(stream & 1) || stream > cl->last_stream);
}

/*
 * Whether @data bytes of DATA from the backend overrun @st's stream
 * window (RFC 9113 6.9.1), which is end to end: what the client announced
 * and gave back, not h2lb's. A client strict about it fails its whole
 * connection on more (grpc core: "frame ... overflows local window"), so
 * one backend's fault would end the client's streams on every other
 * backend. Counted here as sent: the answer is a stream error, and the
 * stream closes. Over the limit the stream opened with, the client's
 * current one decides (its SETTINGS may have raised it since).
 */
static __always_inline int resp_over(struct h2lb_stream *st, __u64 client,
				     __u32 data)
{
	__s64 used = (__s64)__sync_fetch_and_add(&st->resp_used, data) + data;
	struct h2lb_conn *cl;

	if (used <= (__s64)st->resp_limit)
		return 0;
	cl = bpf_map_lookup_elem(&conns, &client);
	return !cl || used > (__s64)cl->resp_window;
}

/* A frame from a backend leg: route it to the leg's client. */
static __always_inline int backend_frame(const struct h2_in *in,
					 const struct h2_frame *f,
					 struct h2lb_conn *c, __u64 cookie,
					 int rule)
{
	struct h2lb_stream_key sk = { .client = c->peer, .id = f->stream };
	struct h2lb_stream *st;
	__u64 client = c->peer;

	if (f->type == H2_HEADERS && block_incomplete(c, f))
		return conn_error(c, cookie, f, H2_PROTOCOL_ERROR,
				  H2LB_WHY_HEADER_BLOCK);
	if (over_window(c))
		return conn_error(c, cookie, f, H2_FLOW_CONTROL_ERROR,
				  H2LB_WHY_WINDOW);
	if (f->stream == 0)
		return connection_frame(in, f, c, cookie);
	if (!client)
		return drop_data(c);
	st = bpf_map_lookup_elem(&streams, &sk);
	if (st && st->leg != cookie)
		st = NULL; /* the client reset it, and reused nothing */
	if (stream_frame_over(f, c, st))
		return calm_error(c, cookie);
	if (IS_STREAM_ERROR(rule)) {
		if (f->type == H2_DATA)
			__sync_fetch_and_add(&c->rx_data, c->run_data);
		return stream_error(c, cookie, &sk, st, ERROR_CODE(rule));
	}
	if (c->run_multi && (f->type == H2_HEADERS || f->type == H2_DATA))
		return leg_frames(in, f, c, cookie);

	if (!st) {
		if (f->type != H2_PRIORITY &&
		    leg_stream_idle(client, f->stream))
			return conn_error(c, cookie, f, H2_PROTOCOL_ERROR,
					  H2LB_WHY_IDLE_STREAM);
		/* A stream the client reset, or one of another leg's: its
		 * late frames go nowhere. */
		if (f->type == H2_DATA || f->type == H2_HEADERS)
			__sync_fetch_and_add(&c->rx_data, c->run_data);
		return drop();
	}
	switch (f->type) {
	case H2_HEADERS:
		st->flags |= H2LB_ST_RESPONDED;
		stream_unreserve(st);
		/* fall through: DATA and trailers may follow in the message */
	case H2_DATA: {
		__u32 backend = st->backend;

		if (c->run_data && resp_over(st, client, c->run_data)) {
			__sync_fetch_and_add(&c->rx_data, c->run_data);
			return stream_error(c, cookie, &sk, st,
					    H2_FLOW_CONTROL_ERROR);
		}
		if (c->run_end)
			stream_end(&sk, st, H2LB_ST_SERVER_END);
		return leg_send(in, c, cookie, client, backend);
	}
	case H2_RST_STREAM: {
		/* A backend refusing a client's streams (or calming it) does
		 * so because of that client: the client pays (rapid reset,
		 * CVE-2023-44487). */
		__u32 code = frame_u32(in, f, 0);

		if (code == H2_REFUSED_STREAM || code == H2_ENHANCE_YOUR_CALM) {
			struct h2lb_conn *cl =
				bpf_map_lookup_elem(&conns, &client);

			if (cl)
				calm_earn(cl, -1);
		}
		stream_close(&sk, st, H2LB_CLOSED_RESET);
		return leg_send(in, c, cookie, client, 0);
	}
	case H2_WINDOW_UPDATE:
		return leg_send(in, c, cookie, client, 0);
	}
	return drop();
}

/* The sender a retried frame of the injector names (injector_frame). */
#define INJECTOR_RETRY (~0ull)

/* Frames the daemon writes: a TARGET pseudo frame selects the socket
 * the next frames go to (docs/kernel-facts.md K6: never write() directly to a
 * socket that is also a redirect target). */
static __always_inline int injector_frame(const struct h2_in *in,
					  const struct h2_frame *f,
					  struct h2lb_conn *c)
{
	__u64 target = c->peer;
	struct h2lb_conn *t;
	int r, full, ctl;

	if (f->type == H2LB_FT_TARGET && f->len == 8) {
		in_load(in, f->off + H2_HDR_LEN, &target, sizeof(target));
		c->peer = target;
		return SK_DROP;
	}
	if (f->type == H2LB_FT_MEASURE) {
		__u64 ingress;

		account(in, 0, target, 0, 0, &ingress);
		return SK_DROP;
	}
	if (f->type == H2LB_FT_RETRY) {
		c->flags |= H2LB_CONN_RETRY;
		return SK_DROP;
	}
	/* The daemon's GOAWAY is not one of the control frames the queue
	 * bounds: it is the last word to a peer (its connection closes
	 * next), often to one that filled that queue, and it was lost with
	 * the answers past it (test_h2lb_floods, the late reader). */
	ctl = f->type != H2_GOAWAY;
	/* A frame the daemon got back (divert) for a leg whose client
	 * never switched: queued like any other (INJECTOR_RETRY is no
	 * socket's cookie, so not one that diverts). */
	if (c->flags & H2LB_CONN_RETRY) {
		c->flags &= ~H2LB_CONN_RETRY;
		r = redirect_full(in, INJECTOR_RETRY, target, ctl, &full);
	} else {
		r = redirect_full(in, 0, target, ctl, &full);
	}
	if (full)
		peer_calm(target);
	/* The daemon answered one of its SETTINGS. */
	if (f->type == H2_SETTINGS && (f->flags & H2_F_ACK) &&
	    (t = bpf_map_lookup_elem(&conns, &target)) && t->settings_unacked)
		__sync_fetch_and_add(&t->settings_unacked, -1);
	return r;
}

/* The parser knows the preface by its first 5 bytes; all 24 must be
 * right (RFC 9113 3.4). */
static __always_inline int preface_whole(const struct h2_in *in,
					 const struct h2_frame *f)
{
	static const char want[H2_PREFACE_LEN] = H2_PREFACE;
	char got[H2_PREFACE_LEN];

	if (in_load(in, f->off, got, sizeof(got)))
		return 0;
	for (int i = 0; i < H2_PREFACE_LEN; i++)
		if (got[i] != want[i])
			return 0;
	return 1;
}

/*
 * A message of a connection that is not HTTP/2: all of it to the peer,
 * unparsed. Redirects have no backpressure (docs/kernel-facts.md K5), no
 * window bounds a raw connection, and nothing holds its sender back
 * (docs/datapath.md, "Connections that are not HTTP/2"): when its peer
 * leaves more than settings.peer_buffer untaken by its TCP (the psock's
 * queue: budget.h, peer_account) and either took nothing for LAG_NS or
 * the node is over --node-buffer, both are reset (the daemon closes
 * them). The daemon's tick looks too, for a sender that stopped.
 */
static __always_inline int raw_forward(const struct h2_in *in,
				       struct h2lb_conn *c, __u64 cookie)
{
	__u64 peer = c->peer; /* keys must be on the stack */
	struct h2lb_conn *t;
	int r;

	c->frames++;
	c->rx_bytes += in_len(in);
	if (c->flags & H2LB_CONN_DEAD)
		return SK_DROP;
	count(H2LB_CNT_RAW_MESSAGES);
	r = redirect(in, cookie, peer, 0);
	t = bpf_map_lookup_elem(&conns, &peer);
	if (r != SK_PASS || !t || !settings.peer_buffer ||
	    t->backlog <= settings.peer_buffer ||
	    (bpf_ktime_get_ns() - t->progress_ns < LAG_NS && !node_full()))
		return r;
	if (!(__sync_fetch_and_or(&c->flags, H2LB_CONN_DEAD) &
	      H2LB_CONN_DEAD)) {
		count(H2LB_CNT_RAW_FULL);
		emit(H2LB_EV_CONN_ERROR, cookie, peer, 0, H2_ENHANCE_YOUR_CALM);
	}
	return r;
}

static __always_inline int verdict(struct h2_in in, struct h2lb_conn *c,
				   __u64 cookie)
{
	struct h2_frame f;
	int r, rule;

	if (c->flags & H2LB_CONN_RAW)
		return raw_forward(&in, c, cookie);
	r = frame_read(&in, &f);
	if (r < 0 || (c->flags & H2LB_CONN_DEAD))
		return SK_DROP;
	count(H2LB_CNT_FRAMES);
	/* One verdict at a time per socket: plain adds are enough. */
	c->frames++;
	c->rx_bytes += in_len(&in);
	/* The injector carries our own preface to backends too. */
	if (c->role == H2LB_ROLE_INJECTOR)
		return r == 1 ? redirect(&in, 0, c->peer, 1)
			      : injector_frame(&in, &f, c);
	if (r == 1) {
		if (c->role != H2LB_ROLE_CLIENT ||
		    (c->flags & H2LB_CONN_PREFACE) || !preface_whole(&in, &f))
			return conn_error(c, cookie, NULL, H2_PROTOCOL_ERROR,
					  H2LB_WHY_PREFACE);
		c->flags |= H2LB_CONN_PREFACE;
		/* per-address limits */
		if (in.kind == H2_IN_SKB)
			c->addr = ((struct __sk_buff *)in.ctx)->remote_ip4;
		return SK_DROP;
	}
	/* Anything but the preface first is not HTTP/2 (RFC 9113 3.4). */
	if (c->role == H2LB_ROLE_CLIENT && !(c->flags & H2LB_CONN_PREFACE))
		return conn_error(c, cookie, NULL, H2_PROTOCOL_ERROR,
				  H2LB_WHY_PREFACE);
	if (f.len > H2LB_MAX_FRAME)
		return conn_error(c, cookie, &f, H2_FRAME_SIZE_ERROR,
				  H2LB_WHY_FRAME_SIZE);
	rule = frame_rules(&in, &f);
	if (IS_CONN_ERROR(rule))
		return conn_error(c, cookie, &f, ERROR_CODE(rule),
				  H2LB_WHY_FRAME);
	/* A peer that had bytes waiting, heard from: look again at what
	 * waits (it may have read all), for its share of the node's queue. */
	if (c->queued) {
		__u64 ingress;

		account(&in, cookie, cookie, 0, 0, &ingress);
	}
	/* Stream frames pay in client_frame and backend_frame. */
	if (!f.stream && frame_cost(&f, c) && calm_take(c, 1))
		return calm_error(c, cookie);

	switch (c->role) {
	case H2LB_ROLE_CLIENT:
		return client_frame(&in, &f, c, cookie, rule);
	case H2LB_ROLE_BACKEND:
		return backend_frame(&in, &f, c, cookie, rule);
	}
	return SK_DROP;
}

/*
 * The DATA of @stream that follows its first @len bytes (a frame, or a
 * header block) in a switched client's write, a request's body after its
 * HEADERS as in each gRPC call, goes with them: one run of the rules and
 * one push, as the parser makes one message of them on the default path
 * (stream_run). Up to FAST_RUN_MAX bytes in all: the push pulls its
 * bytes into one scatterlist element (F10), a copy when they span two.
 * The new length; @c's run_data and run_end are the run's. A global
 * function: its loop is verified once.
 */
#define FAST_RUN_MAX 4096

__attribute__((noinline)) __u32 fast_run(struct sk_msg_md *msg, __u32 stream,
					 __u32 len, struct h2lb_conn *c)
{
	struct h2_frame first = { .stream = stream }; /* at 0 */
	struct run r = { .len = len };
	struct h2_in in;

	if (!msg || !c)
		return len;
	r.data = c->run_data;
	in = in_msg(msg);
	stream_run(&in, &first, &r, FAST_RUN_MAX, 0);
	c->run_data = r.data;
	c->run_end = r.end;
	return r.len;
}

/*
 * A switched client's write that ends inside a frame (docs/fast-path.md,
 * F9): its bytes wait until the next write, and go to the sink meanwhile;
 * no frame goes to a leg in pieces, which another writer of the leg could
 * land between. A frame waits in fast_held, made when a connection first
 * needs it and kept (grpc-go ends most of its writes inside a frame); a
 * header block longer than a frame in fast_held_block, made for it and
 * deleted at the next write. 0, or -1 if they cannot be kept (more than a
 * header block, or no memory: the connection fails).
 */
static __always_inline int held_save(struct sk_msg_md *msg, struct h2lb_conn *c,
				     __u64 anchor)
{
	__u32 zero = 0, n = msg->size, flags = H2LB_CONN_HELD;
	struct h2lb_fast_held_block *b;
	struct h2lb_fast_held *h;
	void *z;

	if (!n || n > H2LB_FAST_HELD_BLOCK || bpf_msg_pull_data(msg, 0, n, 0))
		return -1;
	if (n <= H2LB_FAST_HELD) {
		h = bpf_map_lookup_elem(&fast_held, &anchor);
		if (!h) {
			z = bpf_map_lookup_elem(&fast_held_zero, &zero);
			if (!z || bpf_map_update_elem(&fast_held, &anchor, z,
						      BPF_NOEXIST))
				return -1;
			h = bpf_map_lookup_elem(&fast_held, &anchor);
			if (!h)
				return -1;
		}
		if (bpf_probe_read_kernel(h->buf, n, msg->data))
			return -1;
		h->n = n;
	} else {
		z = bpf_map_lookup_elem(&fast_held_block_zero, &zero);
		if (!z ||
		    bpf_map_update_elem(&fast_held_block, &anchor, z, BPF_ANY))
			return -1;
		b = bpf_map_lookup_elem(&fast_held_block, &anchor);
		if (!b || bpf_probe_read_kernel(b->buf, n, msg->data))
			return -1;
		b->n = n;
		flags |= H2LB_CONN_HELD_BLOCK;
	}
	__sync_fetch_and_or(&c->flags, flags);
	count(H2LB_CNT_FAST_HELD);
	return 0;
}

#define HELD_CHUNK 256

/* Copy HELD_CHUNK bytes of @buf from @off into @msg at @off. 0, or -1. */
static __always_inline int held_chunk(struct sk_msg_md *msg, const __u8 *buf,
				      __u32 off, const __u32 max)
{
	__u8 *data;

	if (off > max - HELD_CHUNK ||
	    bpf_msg_pull_data(msg, off, off + HELD_CHUNK, 0))
		return -1;
	data = msg->data;
	if (data + HELD_CHUNK > (__u8 *)msg->data_end)
		return -1;
	/* (no helper may write into a message: plain stores) */
	for (int k = 0; k < HELD_CHUNK / 8; k++)
		((__u64 *)data)[k] = *(__u64 *)(buf + off + k * 8);
	return 0;
}

/*
 * Put @n bytes of @buf (of @max bytes) in front of @msg. 0, or -1. The
 * pushed bytes are one element, so no pull below copies. Whole chunks,
 * and the last one ends at @n (it may cover bytes already copied): no
 * loop of single bytes after a loop of chunks, which the verifier would
 * walk once for every chunk the first may stop at.
 */
static __always_inline int held_put(struct sk_msg_md *msg, const __u8 *buf,
				    __u32 n, const __u32 max)
{
	__u32 off = 0;
	__u8 *data;

	if (n > max || bpf_msg_push_data(msg, 0, n, 0))
		return -1;
	if (n < HELD_CHUNK) {
		if (bpf_msg_pull_data(msg, 0, n, 0))
			return -1;
		data = msg->data;
		for (__u32 j = 0; j < HELD_CHUNK; j++) {
			if (j >= n || data + j + 1 > (__u8 *)msg->data_end)
				break;
			data[j] = buf[j];
		}
		return 0;
	}
	for (int i = 0; i < max / HELD_CHUNK; i++) {
		if (n - off < HELD_CHUNK)
			break;
		if (held_chunk(msg, buf, off, max))
			return -1;
		off += HELD_CHUNK;
	}
	if (off < n)
		return held_chunk(msg, buf, n - HELD_CHUNK, max);
	return 0;
}

/* A frame kept for client @anchor in fast_held, put in front of @msg.
 * Global functions, this and the next: each loop is verified once. */
__attribute__((noinline)) int held_put_frame(struct sk_msg_md *msg,
					     __u64 anchor)
{
	struct h2lb_fast_held *h = bpf_map_lookup_elem(&fast_held, &anchor);
	__u32 n;

	if (!msg || !h || !h->n)
		return 0;
	n = h->n;
	h->n = 0;
	return held_put(msg, h->buf, n, H2LB_FAST_HELD);
}

/* A header block kept for client @anchor in fast_held_block, put in
 * front of @msg; its entry goes. */
__attribute__((noinline)) int held_put_block(struct sk_msg_md *msg,
					     __u64 anchor)
{
	struct h2lb_fast_held_block *b;
	int r;

	b = bpf_map_lookup_elem(&fast_held_block, &anchor);
	if (!msg || !b)
		return -1;
	r = held_put(msg, b->buf, b->n, H2LB_FAST_HELD_BLOCK);
	bpf_map_delete_elem(&fast_held_block, &anchor);
	return r;
}

/* The bytes kept for client @a (held_save), put in front of @msg. 0, or
 * -1 if they could not be. Looked up only when the flag says there are:
 * most writes end at a frame's end. */
static __always_inline int held_restore(struct sk_msg_md *msg,
					struct h2lb_conn *a, __u64 anchor)
{
	__u32 flags = a->flags;

	if (!(flags & H2LB_CONN_HELD))
		return 0;
	__sync_fetch_and_and(&a->flags,
			     ~(H2LB_CONN_HELD | H2LB_CONN_HELD_BLOCK));
	if (flags & H2LB_CONN_HELD_BLOCK)
		return held_put_block(msg, anchor);
	return held_put_frame(msg, anchor);
}

/*
 * The fast path's request direction (docs/fast-path.md): the frame at the
 * start of @msg, written by a switched client on its own socket, under
 * the rules of the accepted socket's verdict (@anchor: that socket, whose
 * record keeps the connection's state; its verdict runs no more, the
 * switch saw to it). What the parser works out for a message is worked
 * out here for one frame, or one header block; the verdict then covers
 * exactly those bytes (bpf_msg_apply_bytes), and the program runs again
 * for the rest of the write. A frame not all here yet waits for the next
 * write (held_save). What the rules consume or drop goes to the sink: an
 * sk_msg program cannot drop bytes without failing the write.
 * A global function: verified once, and called from fast.bpf.c.
 */
__attribute__((noinline)) int fast_frame(struct sk_msg_md *msg, __u64 anchor)
{
	struct h2lb_conn *c = bpf_map_lookup_elem(&conns, &anchor);
	__u64 sink = H2LB_SINK_KEY;
	struct h2_frame f;
	struct h2_in in;
	__u32 len;
	int r;

	if (!msg)
		return SK_DROP;
	if (!c || (c->flags & H2LB_CONN_DEAD))
		goto sink_all; /* the daemon closes it */
	if (held_restore(msg, c, anchor)) {
		calm_error(c, anchor);
		goto sink_all;
	}
	in = in_msg(msg);
	if (frame_read(&in, &f) < 0)
		goto hold;
	len = H2_HDR_LEN + f.len;
	c->run_data = 0;
	c->run_end = 0;
	c->run_multi = 0;
	c->run_broken = 0;
	if (f.len > H2LB_MAX_FRAME) {
		len = H2_HDR_LEN; /* the rules fail the connection */
	} else if (f.stream && f.type == H2_DATA) {
		c->run_data = f.len;
		c->run_end = f.flags & H2_F_END_STREAM;
	} else if (f.stream && f.type == H2_HEADERS) {
		c->run_end = f.flags & H2_F_END_STREAM;
		if (!(f.flags & H2_F_END_HEADERS)) {
			int broken;

			len = header_block_len(&in, &f, &broken);
			if (!len)
				goto hold;
			c->run_broken = broken;
		}
	}
	if (len > msg->size)
		goto hold;
	if (f.stream && (f.type == H2_DATA || f.type == H2_HEADERS) &&
	    !c->run_end && !c->run_broken && f.len <= H2LB_MAX_FRAME &&
	    len < msg->size)
		len = fast_run(msg, f.stream, len, c);
	bpf_msg_apply_bytes(msg, len);
	in.end = len;
	r = verdict(in, c, anchor);
	if (r == SK_PASS) {
		count_add(H2LB_CNT_FAST_TX_BYTES, len);
		/* A push of less than its scatterlist element goes to TCP
		 * with MSG_MORE (tcp_bpf_push): corked, it would wait in the
		 * leg's send queue until something else moved it, 200 ms
		 * when the rest of the write went elsewhere (measured,
		 * docs/fast-path.md F8). So the element is split where the
		 * frame ends: a byte put in there and taken out again. The
		 * frame's bytes are made one element first (pulled): a push
		 * into an element past the first moved the rest of it to a
		 * wrong offset in kernels before a 2026 fix (F10). */
		if (msg->size > len && !bpf_msg_pull_data(msg, 0, len, 0) &&
		    !bpf_msg_push_data(msg, len, 1, 0))
			bpf_msg_pop_data(msg, len, 1, 0);
		return SK_PASS;
	}
	goto sink; /* that frame alone (apply_bytes above) */
hold:
	/* All of the write from here is that one unfinished frame. */
	if (held_save(msg, c, anchor)) {
		c->flags |= H2LB_CONN_DEAD;
		count(H2LB_CNT_PROTOCOL_ERRORS);
		emit_conn_error(anchor, NULL, H2_ENHANCE_YOUR_CALM,
				H2LB_WHY_HELD);
	}
sink_all:
	/* All of what is left, said in so many words: the kernel keeps the
	 * last apply_bytes a program set on the message for every later run
	 * on it, and carries what a verdict did not use over to the next
	 * write, without running the program (F11). */
	bpf_msg_apply_bytes(msg, msg->size);
sink:
	count(H2LB_CNT_FAST_SINK);
	if (bpf_msg_redirect_hash(msg, &fast_hash, &sink, 0) == SK_PASS)
		return SK_PASS;
	return SK_DROP;
}

/*
 * The fast path's response direction (docs/fast-path.md, rule R): what
 * is sent to a paired client may enter its own socket's receive queue
 * once all that went through this socket's TCP is there already. Its
 * TCP acknowledged all of tx_bytes (every redirect to it counts there
 * first, and so does the daemon's SETTINGS, H2LB_SET_TX_DIRECT), and the
 * client's socket handed all its TCP received on to its psock
 * (client_rx_quiet). A redirect decided meanwhile either counted its
 * bytes before the count read here, or marks the attempt broken after
 * the mark was cleared here (peer_account): then the next message of
 * the client tries again. @c is this socket's record, so nothing else
 * changes its flags without an atomic while this runs.
 */
static __always_inline void fast_rx_try(struct __sk_buff *skb,
					struct h2lb_conn *c)
{
	struct bpf_sock *sk = skb->sk;
	struct sent s;
	__u32 flags;
	__u64 tx;

	if ((c->flags & (H2LB_CONN_FAST_RX | H2LB_CONN_RAW | H2LB_CONN_DEAD)) ||
	    !(c->flags & H2LB_CONN_PREFACE))
		return;
	__sync_fetch_and_and(&c->flags, ~H2LB_CONN_FAST_RX_BROKE);
	tx = __sync_fetch_and_add(&c->tx_bytes, 0);
	if (!sk || sock_sent(sk, &s))
		return;
	if (s.acked < (__s64)tx || s.handed != s.acked) {
		count(H2LB_CNT_FAST_RX_WAIT_ACK);
		return;
	}
	if (!client_rx_quiet(c->fast)) {
		count(H2LB_CNT_FAST_RX_WAIT_CLIENT);
		return;
	}
	flags = c->flags & ~H2LB_CONN_FAST_RX_BROKE;
	if (__sync_val_compare_and_swap(&c->flags, flags,
					flags | H2LB_CONN_FAST_RX) == flags)
		count(H2LB_CNT_FAST_RX);
}

SEC("sk_skb/stream_verdict")
int h2lb_verdict(struct __sk_buff *skb)
{
	__u64 cookie = bpf_get_socket_cookie(skb);
	struct h2lb_conn *c = bpf_map_lookup_elem(&conns, &cookie);
	struct h2_in in;
	int r;

	if (!c)
		return SK_DROP;
	in = in_verdict(skb);
	/* A leg's tcp_sock (leg_note_tcp), if no redirect noted it yet. */
	if (!c->sk_tcp && c->role == H2LB_ROLE_BACKEND) {
		struct bpf_sock *sk = skb->sk;
		struct tcp_sock *tp = sk ? bpf_skc_to_tcp_sock(sk) : NULL;

		if (tp)
			c->sk_tcp = (__u64)tp;
	}
	r = verdict(in, c, cookie);
	/* After all the message changed (fast_note). */
	if (c->fast) {
		fast_note(skb->remote_ip4, bpf_ntohl(skb->remote_port), 0,
			  in_len(&in));
		fast_rx_try(skb, c);
	}
	return r;
}
