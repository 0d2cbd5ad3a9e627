// SPDX-License-Identifier: GPL-2.0
/*
 * Flow control is the memory bound (DESIGN.md): sk_skb redirects have no
 * backpressure, so the kernel holds whatever peers are allowed to send.
 * Stream windows are end to end (frames are forwarded unchanged); the
 * connection windows are per leg, and the daemon sets them so that the
 * kernel never holds more than what the receivers granted:
 *
 *  client -> backends: the client may send at most what the tightest leg
 *  (or a fresh pooled leg) can still take, since any stream may be bound
 *  to any leg.
 *
 *  backends -> client: the legs together may have at most what the
 *  client granted us outstanding, beyond the 65535 bytes that each new
 *  connection starts with by RFC and that cannot be withheld.
 *
 * The bytes moved are counted by the verdict (struct h2lb_conn rx_data,
 * tx_data); here only grants are kept, and windows are computed from
 * both, so nothing drifts.
 */
#include <bpf/bpf.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_acked */
#include <stddef.h>
#include <sys/socket.h>

#include "daemon.h"
#include "h2.h"
#include "log.h"

#define WINDOW_STEP 16384 /* smallest WINDOW_UPDATE worth a frame */

static void send_window(struct daemon *d, struct uconn *c, int64_t inc)
{
	uint8_t f[H2_FRAME_MAX];

	while (inc > 0) {
		uint32_t step = inc > H2_MAX_WINDOW ? H2_MAX_WINDOW : inc;

		inject(d, c->cookie, f, h2_window_update(f, 0, step));
		c->our_grant += step;
		inc -= step;
	}
}

/* DATA bytes the kernel counted coming in on @c (none without a record). */
static int64_t kernel_rx(struct daemon *d, struct uconn *c)
{
	struct h2lb_conn k;

	if (bpf_kconn(d, c->cookie, &k))
		return 0;
	return (int64_t)k.rx_data;
}

/*
 * More than --peer-buffer bytes redirected to @c (@k: its kernel record)
 * that its peer's TCP has not acknowledged: they sit in our socket's
 * queues, or in the psock's backlog once the socket's send buffer is
 * full, where nothing charges or limits them (DESIGN.md fact 5). A peer
 * that grants a large window and reads nothing would have the kernel hold
 * all of it; instead, the windows that feed it stop growing (flow_retry()
 * looks again on the daemon's tick). With the legs' extra window
 * (grant_legs), that bounds what such a client makes the kernel hold.
 */
static bool peer_lags(struct daemon *d, struct uconn *c,
		      const struct h2lb_conn *k)
{
	struct tcp_info ti = { 0 };
	socklen_t len = sizeof(ti);

	/* Fewer bytes sent than the limit leave no more unacknowledged. */
	if ((int64_t)k->tx_bytes <= d->opts.peer_buffer)
		return false;
	if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) ||
	    len < offsetof(struct tcp_info, tcpi_bytes_acked) +
			    sizeof(ti.tcpi_bytes_acked))
		return false;
	return (int64_t)(k->tx_bytes - ti.tcpi_bytes_acked) >
	       d->opts.peer_buffer;
}

/* What the smallest pooled leg of Service @svc can take: a leg bound
 * later starts so. The pool's slots, not every connection: refills are
 * frequent. */
static int64_t pool_window(struct daemon *d, int svc)
{
	int64_t min = H2_MAX_WINDOW;

	for (int b = 0; b < d->nr_backends; b++)
		for (int i = 0; i < H2LB_POOL_SLOTS && d->be[b].service == svc;
		     i++) {
			uint64_t cookie = __atomic_load_n(
				&d->pool_mem[b * H2LB_POOL_SLOTS + i],
				__ATOMIC_ACQUIRE);
			struct uconn *c = cookie ? conn_find(d, cookie) : NULL;

			if (c && c->state == UC_POOLED && c->peer_grant < min)
				min = c->peer_grant;
		}
	return min == H2_MAX_WINDOW ? H2_DEFAULT_WINDOW : min;
}

/*
 * The kernel counts bytes moved in two steps, the target's tx_data before
 * the source's rx_data; reading every source's count before any target's
 * makes the windows computed here err on the small side, never the large.
 */

/* client -> backends: widen the client's window up to the tightest leg. */
static void grant_client(struct daemon *d, struct uconn *c)
{
	int64_t room = pool_window(d, c->service);
	int64_t left = c->our_grant - kernel_rx(d, c); /* source */

	for (struct uconn *l = c->legs; l; l = l->next_leg) {
		struct h2lb_conn k = { 0 }; /* none: nothing moved */
		int64_t w;

		bpf_kconn(d, l->cookie, &k); /* target */
		w = l->peer_grant - (int64_t)k.tx_data;
		if (w < room)
			room = w;
		if (peer_lags(d, l, &k)) {
			c->flow_held = true;
			return;
		}
	}
	if (room - left >= WINDOW_STEP || (room > left && left < room / 2))
		send_window(d, c, room - left);
}

/*
 * backends -> client: keep each leg's window topped up, while the
 * client's own window covers it. Windows cannot be taken back once
 * granted, and a leg that goes idle keeps what it holds, where it could
 * starve a leg bound later. So a leg is refilled to the 65535 bytes
 * every connection starts with from all of the client's window, as the
 * RFC would have it anyway; beyond that, the legs together hold at most
 * half of the client's window (and --peer-buffer), in equal shares,
 * and the other half stays for the refills of legs bound later. With
 * 64 KiB per leg, a 1 MiB response waited on the daemon's refill every
 * 64 KiB (make bench "big": 550 MiB/s, 777 with the shares).
 */
static void grant_legs(struct daemon *d, struct uconn *c)
{
	int64_t out[H2LB_MAX_BACKENDS * 2], held = 0, window, avail, budget;
	int64_t share;
	struct h2lb_conn k = { 0 }; /* none: nothing moved */
	struct uconn *l;
	int i = 0, n;

	for (l = c->legs; l && i < H2LB_MAX_BACKENDS * 2; l = l->next_leg) {
		out[i] = l->our_grant - kernel_rx(d, l); /* sources */
		held += out[i++];
	}
	n = i;
	if (!n)
		return;
	bpf_kconn(d, c->cookie, &k); /* target */
	if (peer_lags(d, c, &k)) {
		c->flow_held = true;
		return;
	}
	window = c->peer_grant - (int64_t)k.tx_data;
	avail = window - held;
	budget = window / 2;
	if (budget > d->opts.peer_buffer)
		budget = d->opts.peer_buffer;
	share = budget / n > H2_DEFAULT_WINDOW ? budget / n : H2_DEFAULT_WINDOW;
	i = 0;
	for (l = c->legs; l && i < n && avail > 0; l = l->next_leg, i++) {
		int64_t give = share - out[i];
		/* Up to 64 KiB from all the window; beyond, within the
		 * budget. */
		int64_t cap = H2_DEFAULT_WINDOW - out[i];

		if (cap < budget - held)
			cap = budget - held;
		if (give > cap)
			give = cap;
		if (give > avail)
			give = avail;
		/* Small refills wait, unless the leg is nearly dry. */
		if (give <= 0 || (give < WINDOW_STEP && out[i] >= WINDOW_STEP))
			continue;
		send_window(d, l, give);
		avail -= give;
		held += give;
	}
}

/* Tell every leg of @c the client's stream window size. */
static void relay_stream_window(struct daemon *d, struct uconn *c)
{
	struct h2_setting_pair w = { H2_SET_INITIAL_WINDOW_SIZE,
				     c->init_window };
	uint8_t f[H2_FRAME_MAX];
	size_t len = h2_settings(f, &w, 1);

	for (struct uconn *l = c->legs; l; l = l->next_leg)
		inject(d, l->cookie, f, len);
}

void flow_client_settings(struct daemon *d, struct uconn *c,
			  const uint8_t *payload, size_t len)
{
	struct h2_setting_pair s[H2LB_EVENT_DATA / 6];
	uint8_t f[H2_FRAME_MAX];
	int n = h2_settings_parse(payload, len, s, H2LB_EVENT_DATA / 6);
	bool changed = !c->settings_seen;

	for (int i = 0; i < n; i++) {
		if (s[i].id != H2_SET_INITIAL_WINDOW_SIZE)
			continue;
		if (s[i].value > H2_MAX_WINDOW) {
			conn_fail(d, c, 0, H2_FLOW_CONTROL_ERROR);
			return;
		}
		changed |= c->init_window != s[i].value;
		c->init_window = s[i].value;
		pr_debug("client %llx: SETTINGS_INITIAL_WINDOW_SIZE %u",
			 (unsigned long long)c->cookie, c->init_window);
	}
	c->settings_seen = true;
	/* Stream windows are end to end: every leg must use the client's
	 * value for the streams it sends to the client, before we ACK. */
	if (changed)
		relay_stream_window(d, c);
	inject(d, c->cookie, f, h2_settings_ack(f));
}

void flow_leg_bound(struct daemon *d, struct uconn *leg)
{
	struct h2_setting_pair w = { H2_SET_INITIAL_WINDOW_SIZE,
				     leg->client->init_window };
	uint8_t f[H2_FRAME_MAX];

	/* Pooled legs were handshaken with a stream window of 0: nothing
	 * flows back until the client's own value is known to them. A leg
	 * bound at accept waits for the client's first SETTINGS (until
	 * then its value is unknown, and guessing the default 65535 let a
	 * backend overrun a client that asked for less). */
	if (leg->client->settings_seen)
		inject(d, leg->cookie, f, h2_settings(f, &w, 1));
	grant_legs(d, leg->client);
	grant_client(d, leg->client);
}

void flow_client_window(struct daemon *d, struct uconn *c, uint32_t inc)
{
	c->peer_grant += inc;
	grant_legs(d, c);
}

void flow_leg_window(struct daemon *d, struct uconn *leg, uint32_t inc)
{
	leg->peer_grant += inc;
	if (leg->client)
		grant_client(d, leg->client);
}

/* The daemon's tick: a client whose windows were held back because a
 * peer was not taking its bytes gets them once the peer has caught up. */
void flow_retry(struct daemon *d, struct uconn *c)
{
	c->flow_held = false;
	grant_legs(d, c);
	grant_client(d, c);
}

/* DATA has been flowing in on @c: refill the window it is using up. */
void flow_progress(struct daemon *d, struct uconn *c)
{
	if (c->role == H2LB_ROLE_CLIENT)
		grant_client(d, c);
	else if (c->client)
		grant_legs(d, c->client);
}
