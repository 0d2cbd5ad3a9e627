/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Connection-level flow control as arithmetic: pure functions over small
 * structs that say what to grant; the caller (window.c) reads the kernel's
 * byte counts, calls them and sends the WINDOW_UPDATEs. See flow.c for the
 * rules and docs/datapath.md ("Flow control") for why.
 */
#ifndef H2LB_FLOW_H
#define H2LB_FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "h2lb.h" /* H2LB_WINDOW_STEP */

/* Smallest WINDOW_UPDATE worth a frame, unless a window is nearly dry. */
#define FLOW_STEP H2LB_WINDOW_STEP

/*
 * One connection as flow control sees it. Grants are totals since the
 * connection opened (both start at the RFC's 65535); rx and tx are the
 * DATA payload bytes the kernel counted in and out. Read the counts of
 * the side data comes from (rx) before those of the side it goes to (tx):
 * the verdict adds to the target's count first, so what moves meanwhile
 * makes the windows come out smaller than they are, never larger.
 */
struct flow_side {
	int64_t peer_grant; /* what the peer allowed us to send */
	int64_t our_grant;  /* what we allowed the peer to send */
	int64_t rx;	    /* DATA bytes received from the peer */
	int64_t tx;	    /* DATA bytes sent to the peer */
	bool lags; /* its TCP has more than --peer-buffer unacknowledged */
	bool idle; /* a leg with no stream bound: nothing it may send can
		    * reach the client until one is */
	bool due;  /* a leg bound whose backend has not been told the
		    * client's stream window: it sends no DATA until it is
		    * (window.c, window_relay_leg) */
	int64_t window_max; /* a client: the largest window it has given us
			     * (flow_send_window, as seen at refills) */
};

/* What the peer may still send us, and what we may still send it. */
static inline int64_t flow_recv_window(const struct flow_side *s)
{
	return s->our_grant - s->rx;
}

static inline int64_t flow_send_window(const struct flow_side *s)
{
	return s->peer_grant - s->tx;
}

/*
 * Client -> backends: how much to add to the client's connection window
 * (0: nothing worth sending). Any stream may go to any leg, so the client
 * may send what the tightest of its @n legs, or a leg bound later (which
 * starts with @pool_window), can still take. -1: held, a leg lags.
 * Refills smaller than FLOW_STEP wait while the window is not nearly dry,
 * unless @eager (nothing moved for a while: whatever is due goes now).
 */
int64_t flow_client_refill(const struct flow_side *client,
			   const struct flow_side *legs, int n,
			   int64_t pool_window, bool eager);

/*
 * Backends -> client: fill @give[i] with what to add to leg i's
 * connection window (0: nothing), and @start[i] with whether a leg that
 * is due (struct flow_side) may now be told the client's stream window.
 * False (and nothing given or started): held, the client lags.
 * @peer_buffer is --peer-buffer. *@turn: the leg the refills start
 * from, moved on past the last leg given something, so that a window too
 * small for every busy leg at once goes to each in turn.
 */
bool flow_legs_refill(const struct flow_side *client,
		      const struct flow_side *legs, int n, int64_t peer_buffer,
		      bool eager, unsigned int *turn, int64_t *give,
		      bool *start);

/*
 * How much more DATA may go to the client (flow_legs_slack: after
 * flow_legs_refill gave @give) or come from it (flow_client_slack: after
 * flow_client_refill returned @inc) before a refill could be due in that
 * direction, whatever small WINDOW_UPDATEs its legs, or it, send
 * meanwhile: the daemon's marks for the kernel (include/h2lb.h, wake_tx
 * and wake_rx). 0: no mark, every WINDOW_UPDATE is an event.
 */
int64_t flow_legs_slack(const struct flow_side *client,
			const struct flow_side *legs, int n,
			int64_t peer_buffer, const int64_t *give);
int64_t flow_client_slack(const struct flow_side *client,
			  const struct flow_side *legs, int n,
			  int64_t pool_window, int64_t inc);

/* Whether @sent bytes of which the peer's TCP acknowledged @acked leave
 * more than @peer_buffer unacknowledged. */
bool flow_lags(uint64_t sent, uint64_t acked, int64_t peer_buffer);

struct h2lb_settings_frame;

/*
 * A peer's SETTINGS (as the kernel read them, every parameter in order):
 * the SETTINGS_INITIAL_WINDOW_SIZE they carry, if any, goes into
 * *@init_window and *@changed says whether it is new. Returns 0, or the
 * HTTP/2 error code of a connection error (FLOW_CONTROL_ERROR for a
 * window over 2^31-1; the kernel checks that first).
 */
uint32_t flow_settings(const struct h2lb_settings_frame *s,
		       uint32_t *init_window, bool *changed);
/* A connection WINDOW_UPDATE of @inc on a send window of @window: false
 * if it pushes it over 2^31-1 (FLOW_CONTROL_ERROR, RFC 9113 6.9.1). */
bool flow_window_ok(int64_t window, uint32_t inc);

#endif
