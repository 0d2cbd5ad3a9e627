// SPDX-License-Identifier: GPL-2.0
/*
 * Flow control is the memory bound (docs/kernel-facts.md K5): sk_skb
 * redirects have no backpressure, so the kernel holds whatever peers are
 * allowed to send. Stream windows are end to end (frames are forwarded
 * unchanged); the connection windows are per leg, and these functions
 * compute them so that the kernel never holds more than what the
 * receivers granted:
 *
 *  client -> backends: the client may send at most what the tightest leg
 *  (or a fresh pooled leg) can still take, since any stream may be bound
 *  to any leg.
 *
 *  backends -> client: the legs together may have at most what the
 *  client granted us outstanding, beyond the 65535 bytes that each new
 *  connection starts with by RFC and that cannot be withheld.
 *
 * Nothing here does I/O: window.c reads the counts and sends.
 */
#include "flow.h"
#include "h2.h"

int64_t flow_client_refill(const struct flow_side *client,
			   const struct flow_side *legs, int n,
			   int64_t pool_window, bool eager)
{
	int64_t room = pool_window, left = flow_recv_window(client);

	for (int i = 0; i < n; i++) {
		int64_t w = flow_send_window(&legs[i]);

		if (legs[i].lags)
			return -1;
		if (w < room)
			room = w;
	}
	if (room - left >= FLOW_STEP ||
	    (room > left && (eager || left < room / 2)))
		return room - left;
	return 0;
}

/*
 * What leg @l holds of the client's window: all it may still send. A leg
 * with no stream bound sends nothing now, but the next stream bound to
 * it may take all of it, beside what the busy legs send: counting less
 * let a leg that went idle with a large share (590 KiB) and got a stream
 * back send 57 KiB beyond a grpc client's window, which failed the
 * connection ("frame of size 16384 overflows local window"; about 1 run
 * in 20 of 4 downloads at once over 4 backends, beside a CPU hog).
 *
 * Unless @lenient: then an idle leg counts only what it holds beyond the
 * 65535 bytes every connection starts with. Those cannot be withheld (a
 * leg bound now would start with them too), and a client that keeps its
 * window at 65535 (nghttp's and h2load's "-W 16") would have all of it
 * held by an idle leg, and its busy leg would wait for ever (a download
 * over 64 KiB stopped for good, test_h2lb_small_window).
 */
static int64_t leg_holds(const struct flow_side *l, bool lenient)
{
	int64_t w = flow_recv_window(l);

	if (!l->idle || !lenient)
		return w;
	return w > H2_DEFAULT_WINDOW ? w - H2_DEFAULT_WINDOW : 0;
}

/*
 * Lenient, for a client whose window has never been larger than its legs'
 * first 65535 bytes and one more: it cannot cover them, whatever we do.
 * And when nothing moved for a while (@eager): a client may wait for DATA
 * before it grants more, while an idle leg holds what a busy one needs.
 */
static bool lenient_to_idle(const struct flow_side *client, int n, bool eager)
{
	return eager ||
	       client->window_max < (int64_t)(n + 1) * H2_DEFAULT_WINDOW;
}

/*
 * Windows cannot be taken back once granted, and a leg that goes idle
 * keeps what it holds, where it could starve a leg bound later. So a leg
 * is refilled to the 65535 bytes every connection starts with from all of
 * the client's window, as the RFC would have it anyway; beyond that, the
 * legs together hold at most half of the client's window (and
 * --peer-buffer), in equal shares, and the other half stays for the
 * refills of legs bound later. With 64 KiB per leg, a 1 MiB response
 * waited on the daemon's refill every 64 KiB (make bench "big": 550
 * MiB/s, 777 with the shares).
 */
bool flow_legs_refill(const struct flow_side *client,
		      const struct flow_side *legs, int n, int64_t peer_buffer,
		      bool eager, int64_t *give)
{
	bool lenient = lenient_to_idle(client, n, eager);
	int64_t held = 0, window, avail, budget, share;

	for (int i = 0; i < n; i++) {
		give[i] = 0;
		held += leg_holds(&legs[i], lenient);
	}
	if (!n || client->lags)
		return !client->lags;
	window = flow_send_window(client);
	avail = window - held;
	budget = window / 2;
	if (budget > peer_buffer)
		budget = peer_buffer;
	share = budget / n > H2_DEFAULT_WINDOW ? budget / n : H2_DEFAULT_WINDOW;
	for (int i = 0; i < n && avail > 0; i++) {
		int64_t out = flow_recv_window(&legs[i]);
		int64_t g = share - out;
		/* Up to 64 KiB from all the window; beyond, within the
		 * budget. */
		int64_t cap = H2_DEFAULT_WINDOW - out;

		if (cap < budget - held)
			cap = budget - held;
		if (g > cap)
			g = cap;
		if (g > avail)
			g = avail;
		/* Small refills wait, unless the leg is nearly dry, or
		 * nothing moved: a leg left with less window than its next
		 * progress mark needs would wait for ever. */
		if (g <= 0 || (g < FLOW_STEP && out >= FLOW_STEP && !eager))
			continue;
		give[i] = g;
		avail -= g;
		held += g;
	}
	return true;
}

bool flow_lags(uint64_t sent, uint64_t acked, int64_t peer_buffer)
{
	return sent > acked && (int64_t)(sent - acked) > peer_buffer;
}

uint32_t flow_settings(const struct h2lb_settings_frame *s,
		       uint32_t *init_window, bool *changed)
{
	uint32_t w = s->value[H2_SET_INITIAL_WINDOW_SIZE];

	*changed = false;
	if (!(s->set & (1u << H2_SET_INITIAL_WINDOW_SIZE)))
		return 0;
	if (w > H2_MAX_WINDOW)
		return H2_FLOW_CONTROL_ERROR;
	*changed = *init_window != w;
	*init_window = w;
	return 0;
}

bool flow_window_ok(int64_t window, uint32_t inc)
{
	return window + inc <= H2_MAX_WINDOW;
}
