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
 *  client granted us outstanding. The 65535 bytes that each connection
 *  starts with by RFC cannot be withheld, but a leg bound to a client
 *  sends no DATA until it is told the client's stream window, which it
 *  is once they fit (start_due).
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

/* A client whose window has never been larger than its legs' first
 * 65535 bytes and one more: it cannot cover them, whatever we do. */
static bool small_window(const struct flow_side *client, int n)
{
	return client->window_max < (int64_t)(n + 1) * H2_DEFAULT_WINDOW;
}

/*
 * Lenient to idle legs (leg_holds), for a client with a small window, and
 * when nothing moved for a while (@eager) for one whose window is not
 * much larger: it may wait for DATA before it grants more (nghttp2 gives
 * back half its window at a time), while idle legs hold what a busy one
 * needs. Counted out, what an idle leg holds may all come beside the busy
 * legs' DATA once a stream is bound to it, beyond the client's window
 * (test_h2lb_client_window (c): a raw client of 512 KiB was sent 65535
 * bytes too many). A larger window needs no leniency: the legs together
 * hold at most half of it beyond their first 65535 bytes
 * (flow_legs_refill), so a client that waits holding more than half of
 * it unused always leaves a busy leg something.
 */
static bool lenient_to_idle(const struct flow_side *client, int n, bool eager)
{
	return small_window(client, n) ||
	       (eager &&
		client->window_max < 2 * (int64_t)(n + 1) * H2_DEFAULT_WINDOW);
}

/*
 * A leg bound to a client starts with the 65535 bytes every connection
 * has, which cannot be withheld; but its backend sends no DATA until it
 * is told the client's stream window (pooled legs are handshaken with 0).
 * So a due leg is told only once the client's window has room for all it
 * may send, beside what the other legs hold: the kernel binds a leg for
 * a new stream whatever the window has left, and told at once, a leg
 * bound while a slow grpc client's window was nearly used up let the
 * legs hold 65535 bytes more than the client allowed ("frame of size
 * 16384 overflows local window", test_h2lb_client_window). Until it
 * starts, the others get nothing more: what the client gives back is kept
 * for it, so it starts once the client has taken what is in flight. Not
 * for a small window, which cannot cover it: the leg starts at once, as
 * before. Whether it has a stream open does not matter: the kernel binds
 * a stream to a leg already bound without a word to the daemon.
 */
static bool start_due(const struct flow_side *client,
		      const struct flow_side *legs, int n, int64_t *avail,
		      bool *start)
{
	bool waits = false;

	for (int i = 0; i < n; i++) {
		int64_t w = flow_recv_window(&legs[i]);

		if (!legs[i].due)
			continue;
		if (w > *avail && !small_window(client, n)) {
			waits = true;
			continue;
		}
		start[i] = true;
		*avail -= w;
	}
	return waits;
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
		      bool eager, unsigned int *turn, int64_t *give,
		      bool *start)
{
	bool lenient = lenient_to_idle(client, n, eager);
	int64_t held = 0, window, avail, budget, share;

	for (int i = 0; i < n; i++) {
		give[i] = 0;
		start[i] = false;
		if (!legs[i].due) /* a due leg sends nothing yet */
			held += leg_holds(&legs[i], lenient);
	}
	if (!n || client->lags)
		return !client->lags;
	window = flow_send_window(client);
	avail = window - held;
	if (start_due(client, legs, n, &avail, start))
		return true;
	for (int i = 0; i < n; i++)
		if (start[i])
			held += flow_recv_window(&legs[i]);
	budget = window / 2;
	if (budget > peer_buffer)
		budget = peer_buffer;
	share = budget / n > H2_DEFAULT_WINDOW ? budget / n : H2_DEFAULT_WINDOW;
	/* From leg *@turn on: a small window may all go to the first busy
	 * leg, and a leg that always came first starved the others
	 * (grpc-js, whose window stays 65535: with 8 calls of 256 KiB at
	 * once over 4 backends, the other legs' calls waited until the end,
	 * and the least-streams policy sent 194 of 200 calls to that
	 * leg's backend). */
	for (int k = 0, first = (int)(*turn % (unsigned int)n);
	     k < n && avail > 0; k++) {
		int i = (first + k) % n;
		int64_t out = flow_recv_window(&legs[i]);
		int64_t g = share - out;
		/* Up to 64 KiB from all the window; beyond, within the
		 * budget. */
		int64_t cap = H2_DEFAULT_WINDOW - out;

		if (legs[i].due && !start[i])
			continue;
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
		*turn = (unsigned int)(i + 1);
	}
	return true;
}

/*
 * The marks past which the daemon must hear of small WINDOW_UPDATEs
 * (include/h2lb.h, wake_tx and wake_rx): until then, the refill rules
 * above would give nothing however they add up, so the kernel keeps them
 * and no event wakes the daemon. A refill may then come later than it
 * would have (at half a share, or half the client's window, used instead
 * of FLOW_STEP), never after a window ran dry. The increments kept count
 * in every refill's view of the windows (window.c, side_of), and a
 * WINDOW_UPDATE of FLOW_STEP or more wakes the daemon at once, so a
 * window can grow by less than FLOW_STEP unseen: near 2^31-1, where that
 * could hide an overflow (RFC 9113 6.9.1), there is no mark.
 */
static int64_t slack_above(int64_t window, int64_t floor)
{
	/* Not worth a mark: as many looks as events. */
	return window - floor >= FLOW_STEP ? window - floor : 0;
}

int64_t flow_legs_slack(const struct flow_side *client,
			const struct flow_side *legs, int n,
			int64_t peer_buffer, const int64_t *give)
{
	int64_t window = flow_send_window(client), budget, share;
	int64_t slack = INT64_MAX;

	if (!n || client->lags || window > H2_MAX_WINDOW - FLOW_STEP)
		return 0;
	budget = window / 2 < peer_buffer ? window / 2 : peer_buffer;
	share = budget / n > H2_DEFAULT_WINDOW ? budget / n : H2_DEFAULT_WINDOW;
	for (int i = 0; i < n; i++) {
		int64_t out = flow_recv_window(&legs[i]) + give[i], lim, s;

		if (legs[i].due) /* it waits for the client's window */
			return 0;
		/* Refilled to its share; or, held back by the budget, to
		 * the 65535 bytes every leg gets back (flow_legs_refill).
		 * Below that less a step, the client's window was short:
		 * its every WINDOW_UPDATE counts. */
		lim = out >= share - FLOW_STEP ? share : H2_DEFAULT_WINDOW;
		if (out <= lim - FLOW_STEP)
			return 0;
		s = slack_above(out, lim / 2 > FLOW_STEP ? lim / 2 : FLOW_STEP);
		if (!s)
			return 0;
		if (s < slack)
			slack = s;
	}
	return slack;
}

int64_t flow_client_slack(const struct flow_side *client,
			  const struct flow_side *legs, int n,
			  int64_t pool_window, int64_t inc)
{
	int64_t room = pool_window, floor;

	if (inc < 0)
		return 0;
	for (int i = 0; i < n; i++) {
		int64_t w = flow_send_window(&legs[i]);

		if (legs[i].lags || w > H2_MAX_WINDOW - FLOW_STEP)
			return 0;
		if (w < room)
			room = w;
	}
	floor = room / 2 > FLOW_STEP ? room / 2 : FLOW_STEP;
	return slack_above(flow_recv_window(client) + inc, floor);
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
