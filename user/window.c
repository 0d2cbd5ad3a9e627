// SPDX-License-Identifier: GPL-2.0
/* Connection windows, applied (window.h; the arithmetic is flow.c's). */
#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_acked */
#include <stddef.h>
#include <sys/socket.h>

#include "divert.h"
#include "flow.h"
#include "h2.h"
#include "kern.h"
#include "window.h"

/* Legs per client that one refill looks at. */
#define MAX_LEGS (H2LB_MAX_BACKENDS * 2)

/* The kernel learns of a grant before the peer does: DATA beyond what we
 * granted is a FLOW_CONTROL_ERROR there (bpf/verdict.bpf.c). A leg
 * written synchronously (@sync: H2LB_CONN_LEG_FAST) would have the
 * injector's verdict hand the frame back (H2LB_EV_DIVERT) for divert.c to
 * write: it goes to divert.c's queue at once. It may pass frames of ours
 * still on their way back; a connection WINDOW_UPDATE commutes with
 * every other frame (RFC 9113, 6.9). */
static void send_window(struct lb *lb, struct uconn *c, int64_t inc, bool sync)
{
	struct h2lb_conn_args a = { .cookie = c->cookie,
				    .set = H2LB_SET_RX_GRANT };
	uint8_t f[H2_FRAME_MAX];

	while (inc > 0) {
		uint32_t step = inc > H2_MAX_WINDOW ? H2_MAX_WINDOW : inc;

		a.rx_grant = c->our_grant + step;
		if (kern_conn_set(lb->k, &a))
			return; /* gone meanwhile */
		if (sync)
			divert_send(lb, c, f, h2_window_update(f, 0, step));
		else
			inject(&lb->inj, c->cookie, f,
			       h2_window_update(f, 0, step));
		c->our_grant += step;
		inc -= step;
	}
}

/*
 * The injector's verdict looks at where @c's sending stands as it
 * consumes a MEASURE pseudo frame (for a client on the fast path's
 * response direction, what its own socket's application took). Loopback
 * delivers a write in the writer's own softirq, so that has usually run
 * when the write returns; if not, the next look sees it.
 */
int window_measure(struct lb *lb, struct uconn *c, struct h2lb_conn *fresh)
{
	uint8_t f[H2_HDR_LEN];

	if (inject(&lb->inj, c->cookie, f, h2_measure(f)))
		return -1;
	return kern_conn(lb->k, c->cookie, fresh);
}

/*
 * peer_lags() for a client on the fast path's response direction: its
 * TCP sends nothing more, and what its own socket's application took
 * (acked) is known to the kernel as of the last redirect to it or the
 * last write of the client. When that says it lags, look again.
 */
static bool fast_rx_lags(struct lb *lb, struct uconn *c,
			 const struct h2lb_conn *k)
{
	int64_t limit = lb->opts->peer_buffer;
	struct h2lb_conn now;

	if (!flow_lags(k->tx_bytes, k->acked, limit))
		return false;
	if (window_measure(lb, c, &now))
		return true;
	return flow_lags(now.tx_bytes, now.acked, limit);
}

/*
 * More than --peer-buffer bytes redirected to @c (@k: its kernel record)
 * that its peer's TCP has not acknowledged: they sit in our socket's
 * queues, or in the psock's backlog once the socket's send buffer is
 * full, where nothing charges or limits them (docs/kernel-facts.md K5).
 * A peer that grants a large window and reads nothing would have the
 * kernel hold all of it; instead, the windows that feed it stop growing
 * (the daemon's tick looks again).
 */
static bool peer_lags(struct lb *lb, struct uconn *c, const struct h2lb_conn *k)
{
	struct tcp_info ti = { 0 };
	socklen_t len = sizeof(ti);

	/* Fewer bytes sent than the limit leave no more unacknowledged. */
	if ((int64_t)k->tx_bytes <= lb->opts->peer_buffer)
		return false;
	if (k->flags & H2LB_CONN_FAST_RX)
		return fast_rx_lags(lb, c, k);
	if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) ||
	    len < offsetof(struct tcp_info, tcpi_bytes_acked) +
			    sizeof(ti.tcpi_bytes_acked))
		return false;
	return flow_lags(k->tx_bytes, ti.tcpi_bytes_acked,
			 lb->opts->peer_buffer);
}

/*
 * More is queued toward all peers together than --node-buffer allows:
 * the windows that feed a peer that lags (include/h2lb.h,
 * H2LB_LAG_BYTES and H2LB_LAG_MS) wait (the tick looks again), and
 * the kernel gives its client no new stream (bpf/budget.h). Peers that
 * keep up are served as before.
 */
static bool node_lags(struct lb *lb, const struct h2lb_conn *k)
{
	return lb->opts->node_buffer && k->backlog > H2LB_LAG_BYTES &&
	       now_ms() - k->progress_ns / 1000000 >= H2LB_LAG_MS &&
	       kern_node_queued(lb->k) > lb->opts->node_buffer;
}

/* @c as flow control sees it; with the kernel's counts if it has a
 * record (none: nothing moved). The WINDOW_UPDATE increments the kernel
 * keeps (small ones, until a mark: window_wake) are granted already;
 * the daemon adds them to peer_grant when it takes them. */
static struct flow_side side_of(struct uconn *c, const struct h2lb_conn *k)
{
	return (struct flow_side){ .peer_grant = c->peer_grant +
						 (int64_t)k->window_pending,
				   .our_grant = c->our_grant,
				   .rx = (int64_t)k->rx_data,
				   .tx = (int64_t)k->tx_data };
}

/* What the smallest pooled leg of Service @svc can take: a leg bound
 * later starts so. The pool's slots, not every connection: refills are
 * frequent. */
static int64_t pool_window(struct lb *lb, int svc)
{
	int64_t min = H2_MAX_WINDOW;
	int b;

	for_each_svc_backend(&lb->bs, svc, j, b) {
		for (int i = 0; i < H2LB_POOL_SLOTS; i++) {
			uint64_t cookie = kern_pool_slot(lb->k, b, i);
			struct uconn *c =
				cookie ? conn_find(&lb->conns, cookie) : NULL;

			if (c && c->state == CS_POOLED && c->peer_grant < min)
				min = c->peer_grant;
		}
	}
	return min == H2_MAX_WINDOW ? H2_DEFAULT_WINDOW : min;
}

/* The kernel counts bytes moved in two steps, the target's tx_data before
 * the source's rx_data: each refill reads every source's count before any
 * target's (flow.h). */

/* Write a client's mark when it changed (@last: the one written). */
static void set_wake(struct lb *lb, struct uconn *c, uint32_t set,
		     uint64_t *last, uint64_t mark)
{
	if (mark == *last)
		return;
	if (!kern_conn_set_wake(lb->k, c->cookie, set, mark))
		*last = mark;
}

void window_client(struct lb *lb, struct uconn *c, bool eager)
{
	static struct flow_side legs[MAX_LEGS];
	struct h2lb_conn kc = { 0 }, kl;
	int64_t inc, pool, slack;
	struct flow_side client;
	struct uconn *l;
	int n = 0;

	kern_conn(lb->k, c->cookie, &kc); /* the source */
	client = side_of(c, &kc);
	for (l = c->legs; l && n < MAX_LEGS; l = l->next_leg) {
		kl = (struct h2lb_conn){ 0 };
		kern_conn(lb->k, l->cookie, &kl); /* targets */
		legs[n] = side_of(l, &kl);
		legs[n++].lags = peer_lags(lb, l, &kl) || node_lags(lb, &kl);
	}
	pool = pool_window(lb, c->service);
	inc = flow_client_refill(&client, legs, n, pool, eager);
	if (inc < 0)
		c->flow_held = true;
	else if (inc > 0)
		send_window(lb, c, inc, false);
	/* The client is the source: its rx_data was read first, so the
	 * mark can only come early. */
	slack = flow_client_slack(&client, legs, n, pool, inc);
	set_wake(lb, c, H2LB_SET_WAKE_RX, &c->wake_rx,
		 slack ? kc.rx_data + slack : 0);
}

static size_t stream_window_settings(uint8_t *f, uint32_t value)
{
	struct h2_setting_pair w = { H2_SET_INITIAL_WINDOW_SIZE, value };

	return h2_settings(f, &w, 1);
}

/* Tell leg @l its client's stream window: its backend may send DATA. */
static void leg_start(struct lb *lb, struct uconn *l)
{
	uint8_t f[H2_FRAME_MAX];

	l->window_due = false;
	kern_settings_sent(lb->k, l->cookie, false);
	inject(&lb->inj, l->cookie, f,
	       stream_window_settings(f, l->client->init_window));
}

void window_legs(struct lb *lb, struct uconn *c, bool eager)
{
	static struct flow_side legs[MAX_LEGS];
	static int64_t give[MAX_LEGS];
	static bool start[MAX_LEGS];
	static bool sync[MAX_LEGS];
	struct h2lb_conn kc = { 0 }, kl;
	struct flow_side client;
	struct uconn *l;
	int64_t slack;
	int n = 0, i;

	for (l = c->legs; l && n < MAX_LEGS; l = l->next_leg) {
		kl = (struct h2lb_conn){ 0 };
		kern_conn(lb->k, l->cookie, &kl); /* sources */
		legs[n] = side_of(l, &kl);
		legs[n].due = l->window_due;
		sync[n] = kl.flags & H2LB_CONN_LEG_FAST;
		legs[n++].idle = !kl.open_streams;
	}
	if (!n)
		return;
	kern_conn(lb->k, c->cookie, &kc); /* the target */
	client = side_of(c, &kc);
	if (flow_send_window(&client) > c->peer_window_max)
		c->peer_window_max = flow_send_window(&client);
	client.window_max = c->peer_window_max;
	client.lags = peer_lags(lb, c, &kc) || node_lags(lb, &kc);
	if (!flow_legs_refill(&client, legs, n, lb->opts->peer_buffer, eager,
			      &c->refill_turn, give, start)) {
		c->flow_held = true;
		set_wake(lb, c, H2LB_SET_WAKE_TX, &c->wake_tx, 0);
		return;
	}
	for (l = c->legs, i = 0; l && i < n; l = l->next_leg, i++) {
		/* Before the client's first SETTINGS its value is unknown:
		 * the leg stays due, counted as if it had started. */
		if (start[i] && c->settings_seen) {
			leg_start(lb, l);
			legs[i].due = false; /* for the mark below */
		}
		send_window(lb, l, give[i], sync[i]);
	}
	/* The client is the target: its tx_data was read last, so the mark
	 * may come late by what moved during these reads, far less than a
	 * window's half. */
	slack = flow_legs_slack(&client, legs, n, lb->opts->peer_buffer, give);
	set_wake(lb, c, H2LB_SET_WAKE_TX, &c->wake_tx,
		 slack ? kc.tx_data + slack : 0);
}

void window_refill(struct lb *lb, struct uconn *c, bool eager)
{
	c->flow_held = false;
	window_legs(lb, c, eager);
	window_client(lb, c, eager);
}

/*
 * A connection's share of the node's queued bytes changes when the kernel
 * sends it something, or when it sends something; a peer that has read
 * everything and says nothing keeps its last share. Once the node is half
 * full, measure those shares again (TCP_INFO), so that stale ones refuse
 * no stream.
 */
void window_queued_refresh(struct lb *lb)
{
	if (!lb->opts->node_buffer ||
	    kern_node_queued(lb->k) <= lb->opts->node_buffer / 2)
		return;
	conn_for_each(&lb->conns, c)
	{
		struct tcp_info ti = { 0 };
		socklen_t len = sizeof(ti);
		uint64_t q, handed;
		struct h2lb_conn k;

		/* (On the fast path's response direction, only the kernel
		 * can look: at the client's writes and redirects to it.) */
		if (kern_conn(lb->k, c->cookie, &k) || !k.queued ||
		    (k.flags & H2LB_CONN_FAST_RX) ||
		    getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) ||
		    len < offsetof(struct tcp_info, tcpi_notsent_bytes) +
				    sizeof(ti.tcpi_notsent_bytes))
			continue;
		q = k.tx_bytes > ti.tcpi_bytes_acked
			    ? k.tx_bytes - ti.tcpi_bytes_acked
			    : 0;
		/* Handed to its TCP: sent once, or waiting to be. */
		handed = ti.tcpi_bytes_sent - ti.tcpi_bytes_retrans +
			 ti.tcpi_notsent_bytes;
		if (q < k.queued)
			kern_conn_set_queued(
				lb->k, c->cookie, q,
				k.tx_bytes > handed ? k.tx_bytes - handed : 0);
	}
}

/* The client's new value, to every leg that knows the old one; a leg
 * still due may start now that the value is known (window_legs). */
int window_relay(struct lb *lb, struct uconn *c, bool wait)
{
	uint8_t f[H2_FRAME_MAX];
	size_t len = stream_window_settings(f, c->init_window);
	int n = 0;

	for (struct uconn *l = c->legs; l; l = l->next_leg) {
		if (l->window_due)
			continue;
		kern_settings_sent(lb->k, l->cookie, wait);
		inject(&lb->inj, l->cookie, f, len);
		n++;
	}
	window_legs(lb, c, false);
	return n;
}

/* Pooled legs were handshaken with a stream window of 0: nothing flows
 * back until the client's own value is known to them. A leg just bound
 * is told it when the client's window has room for what it may then send
 * (flow.c, start_due), and not before the client's first SETTINGS (until
 * then its value is unknown, and guessing the default 65535 let a
 * backend overrun a client that asked for less). */
void window_relay_leg(struct lb *lb, struct uconn *leg)
{
	leg->window_due = true;
}
