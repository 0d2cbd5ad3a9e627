// SPDX-License-Identifier: GPL-2.0
/* What the BPF programs tell the daemon, through the ring buffer: each
 * event type is one input to the connection it is about. */
#include "conns.h"
#include "events.h"
#include "h2.h"
#include "kern.h"
#include "log.h"

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

void events_handle(void *ctx, const struct h2lb_event *ev, size_t len)
{
	struct lb *lb = ctx;
	struct input_arg a = { .stream = ev->stream, .value = ev->arg };
	struct uconn *c, *leg;

	lb->stats.bytes_read += len;
	lb->stats.events++;
	if (len < sizeof(*ev))
		return;
	if (ev->cookie == lb->inj.cookie && ev->type == H2LB_EV_CLOSED) {
		pr_err("injector socket closed");
		lb->quit = true;
		return;
	}
	c = conn_find(&lb->conns, ev->cookie);
	if (!c)
		return; /* a socket we already closed */

	switch (ev->type) {
	case H2LB_EV_CLOSED:
		conn_input(lb, c, IN_PEER_CLOSED, &a);
		break;
	case H2LB_EV_SETTINGS:
		if (ev->len < sizeof(*a.settings))
			break;
		a.settings = (const struct h2lb_settings_frame *)ev->data;
		conn_input(lb, c, IN_SETTINGS, &a);
		break;
	case H2LB_EV_WINDOW: {
		/* The increments since the last event, all at once; over
		 * 2^31-1 is a FLOW_CONTROL_ERROR whatever the window. */
		uint64_t inc;

		if (kern_conn_take_window(lb->k, c->cookie, &inc) || !inc)
			break;
		a.value = inc > H2_MAX_WINDOW ? H2_MAX_WINDOW + 1u : inc;
		conn_input(lb, c, IN_WINDOW, &a);
		break;
	}
	case H2LB_EV_PING:
		if (ev->len < 8)
			break;
		a.ping = ev->data;
		conn_input(lb, c, IN_PING, &a);
		break;
	case H2LB_EV_GOAWAY:
		a.stream = ev->len >= 4 ? be32(ev->data) & H2_MAX_STREAM : 0;
		conn_input(lb, c, IN_GOAWAY, &a);
		break;
	case H2LB_EV_DATA_PROGRESS:
		conn_input(lb, c, IN_PROGRESS, &a);
		break;
	case H2LB_EV_LEG_BOUND: /* about the leg; the client is @c */
		leg = conn_find(&lb->conns, ev->peer);
		if (!leg) /* closed just as it was taken */
			break;
		a.client = c;
		conn_input(lb, leg, IN_BOUND, &a);
		break;
	case H2LB_EV_REFUSED:
		conn_input(lb, c, IN_REFUSED, &a);
		break;
	case H2LB_EV_CONN_ERROR:
		conn_input(lb, c, IN_ERROR, &a);
		break;
	case H2LB_EV_STREAM_ERROR: /* @a.other: the stream's other side */
		a.other = ev->peer;
		conn_input(lb, c, IN_STREAM_ERROR, &a);
		break;
	case H2LB_EV_STREAM_WINDOW:
		conn_input(lb, c, IN_STREAM_WINDOW, &a);
		break;
	}
}
