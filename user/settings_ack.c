// SPDX-License-Identifier: GPL-2.0
/* A client's SETTINGS, relayed and ACKed in order (settings_ack.h). */
#include <stdlib.h>
#include <unistd.h>

#include "clock.h"
#include "flow.h"
#include "h2.h"
#include "kern.h"
#include "log.h"
#include "settings_ack.h"
#include "window.h"

/* How long a lowered window's legs have to ACK it. Backends answer in
 * microseconds; a backend this late is stuck. */
#define SETTINGS_ACK_MS 5000

/* H2LB_TEST_SETTINGS_PAUSE_MS: a test widens the gap between a client's
 * SETTINGS ACK and the relay of its window to the legs (a daemon that
 * loses its CPU between the two opens it). */
static void settings_test_pause(void)
{
	static long ms = -1;

	if (ms < 0) {
		const char *v = getenv("H2LB_TEST_SETTINGS_PAUSE_MS");

		ms = v ? strtol(v, NULL, 10) : 0;
	}
	if (ms > 0)
		usleep(ms * 1000);
}

static void send_acks(struct lb *lb, struct uconn *c, uint32_t n)
{
	uint8_t f[H2_FRAME_MAX];

	while (n--)
		inject(&lb->inj, c->cookie, f, h2_settings_ack(f));
}

/*
 * The stream window the kernel holds @c's backends' DATA to
 * (verdict.bpf.c, resp_over): the largest value any backend may apply. A
 * larger one is set before it is relayed; a smaller one once every leg
 * told of it has ACKed it, until then the backends may still send under
 * the old one.
 */
static void resp_window(struct lb *lb, struct uconn *c, uint32_t w)
{
	kern_resp_window(lb->k, c->cookie, w);
}

/* @c's window becomes @w, lower than it was: told to its legs. True if
 * any leg was told, and so our ACK waits for theirs. */
static bool lower(struct lb *lb, struct uconn *c, uint32_t w)
{
	c->init_window = w;
	if (!window_relay(lb, c, true)) {
		resp_window(lb, c, w); /* no backend knew the old one */
		return false;
	}
	c->acks_wait_ms = now_ms() + SETTINGS_ACK_MS;
	lb->stats.settings_acks_held++;
	return true;
}

/*
 * Relayed first, a backend's DATA under a larger window could overtake
 * our ACK (test_h2lb_client_window, a). So a window that grows is ACKed
 * first, then relayed: the legs' DATA under it reaches the client's
 * socket after our ACK, in the same queue. One that shrinks is relayed
 * first, and our ACK waits for the legs' (test_h2lb_client_window, d):
 * the ACK of each leg comes after all it sent under the old value, and
 * the kernel passes a leg's frames on in order.
 *
 * SETTINGS that come while an ACK waits are ACKed after it, in order;
 * the last value they carry is applied then.
 */
uint32_t client_settings(struct lb *lb, struct uconn *c,
			 const struct h2lb_settings_frame *s)
{
	uint32_t before = c->init_window;
	uint32_t w = c->acks_owed ? c->window_next : before;
	bool changed, first = !c->settings_seen;
	uint32_t err = flow_settings(s, &w, &changed);

	if (err)
		return err;
	pr_debug("client %llx: SETTINGS_INITIAL_WINDOW_SIZE %u",
		 (unsigned long long)c->cookie, w);
	c->settings_seen = true;
	if (c->acks_owed) {
		c->window_next = w;
		c->acks_owed++;
		return 0;
	}
	if (w > before) {
		send_acks(lb, c, 1);
		settings_test_pause();
		c->init_window = w;
		resp_window(lb, c, w);
		window_relay(lb, c, false);
		return 0;
	}
	if (w < before && lower(lb, c, w)) {
		c->window_next = w;
		c->acks_owed = 1;
		return 0;
	}
	if (first && w == before)
		window_relay(lb, c, false); /* legs due may start now */
	/* (the same gap as above, in the other order: a test that reverts
	 * it still finds it) */
	settings_test_pause();
	send_acks(lb, c, 1);
	return 0;
}

/* The first leg of @c whose backend has not ACKed every SETTINGS we
 * sent it, or NULL. */
static struct uconn *late_leg(struct lb *lb, struct uconn *c)
{
	struct h2lb_conn k;

	for (struct uconn *l = c->legs; l; l = l->next_leg)
		if (!kern_conn(lb->k, l->cookie, &k) &&
		    k.settings_acks < k.settings_sent)
			return l;
	return NULL;
}

struct uconn *client_settings_overdue(struct lb *lb, struct uconn *c)
{
	struct uconn *l;

	if (!c->acks_owed || now_ms() < c->acks_wait_ms ||
	    !(l = late_leg(lb, c)))
		return NULL;
	pr_warn_ratelimited(
		"backend %d leg %llx: no ACK of its client's SETTINGS in %d ms",
		l->backend, (unsigned long long)l->cookie, SETTINGS_ACK_MS);
	lb->stats.settings_timeouts++;
	return l;
}

void client_settings_check(struct lb *lb, struct uconn *c)
{
	uint32_t owed;

	if (!c->acks_owed || late_leg(lb, c))
		return;
	/* Lowered again meanwhile: that value waits for the legs too. */
	if (c->window_next < c->init_window && lower(lb, c, c->window_next))
		return;
	owed = c->acks_owed;
	c->acks_owed = 0;
	resp_window(lb, c, c->init_window); /* every leg ACKed it */
	send_acks(lb, c, owed);
	if (c->window_next > c->init_window) {
		c->init_window = c->window_next;
		resp_window(lb, c, c->init_window);
		window_relay(lb, c, false);
	}
}
