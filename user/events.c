// SPDX-License-Identifier: GPL-2.0
/* What the BPF programs tell the daemon, through the ring buffers: each
 * event type is one input to the connection it is about. */
#include <linux/bpf.h> /* BPF_TCP_CLOSE */
#include <stdio.h>

#include "conns.h"
#include "divert.h"
#include "events.h"
#include "h2.h"
#include "kern.h"
#include "log.h"

/*
 * Events handled per wake-up of the loop, at most: a flood of them (one
 * connection can make millions a second) must leave the loop time for
 * its ticks, accepts and signals. The rings' fds are level-triggered, so
 * what is left is taken at the next turn.
 */
#define EVENTS_BATCH 4096

/* What rule @e names, and on which frame: "RST_STREAM on a stream never
 * opened (stream 3)". In a static buffer. */
static const char *why_text(const struct h2lb_conn_error *e, uint32_t stream)
{
	static const char *const rules[H2LB_WHY_MAX] = {
		[H2LB_WHY_PREFACE] = "not the HTTP/2 connection preface",
		[H2LB_WHY_FRAME_SIZE] = "over SETTINGS_MAX_FRAME_SIZE",
		[H2LB_WHY_FRAME] = "malformed (length, flags or stream id)",
		[H2LB_WHY_HEADER_BLOCK] =
			"starting a broken header block (another frame "
			"inside it, or over 16 CONTINUATIONs or 64 KiB)",
		[H2LB_WHY_WINDOW] = "beyond the connection window",
		[H2LB_WHY_SETTINGS] = "with a value out of range",
		[H2LB_WHY_CALM] = "over its frame budget, or not reading",
		[H2LB_WHY_STREAM_ID] =
			"opening a stream with an even or lower id",
		[H2LB_WHY_HPACK] = "breaking the header block's rules",
		[H2LB_WHY_IDLE_STREAM] = "on a stream never opened",
		[H2LB_WHY_CLOSED_STREAM] = "on a stream already closed",
		[H2LB_WHY_HELD] = "a frame written in pieces could not be kept",
	};
	static char text[128];
	const char *rule = e->why < H2LB_WHY_MAX ? rules[e->why] : NULL;

	if (!rule)
		return NULL;
	if (e->type == H2LB_NO_FRAME)
		snprintf(text, sizeof(text), "h2lb: %s", rule);
	else
		snprintf(text, sizeof(text), "h2lb: %s %s (stream %u)",
			 h2_frame_name(e->type), rule, stream);
	return text;
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
	if (ev->type < H2LB_EV_MAX)
		lb->stats.events_by_type[ev->type]++;
	c = conn_find(&lb->conns, ev->cookie);
	if (!c)
		return; /* a socket we already closed */

	switch (ev->type) {
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
		a.stream = ev->len >= 4 ? h2_be32(ev->data) & H2_MAX_STREAM : 0;
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
		if (ev->len >= sizeof(struct h2lb_conn_error))
			a.why = why_text((const void *)ev->data, ev->stream);
		conn_input(lb, c, IN_ERROR, &a);
		break;
	case H2LB_EV_STREAM_ERROR: /* @a.other: the stream's other side */
		a.other = ev->peer;
		conn_input(lb, c, IN_STREAM_ERROR, &a);
		break;
	case H2LB_EV_STREAM_WINDOW:
		conn_input(lb, c, IN_STREAM_WINDOW, &a);
		break;
	case H2LB_EV_DIVERT: /* @c: the leg */
		divert_take(lb, c, ev);
		break;
	case H2LB_EV_SETTINGS_ACK: /* @c: the leg */
		conn_input(lb, c, IN_SETTINGS_ACK, &a);
		break;
	}
}

static void closed(struct lb *lb, const struct h2lb_close_event *ev)
{
	struct uconn *c = conn_find(&lb->conns, ev->cookie);

	lb->stats.bytes_read += sizeof(*ev);
	lb->stats.events++;
	lb->stats.events_by_type[H2LB_EV_CLOSED]++;
	if (ev->cookie == lb->inj.cookie) {
		pr_err("injector socket closed");
		lb->quit = true;
		return;
	}
	if (c) {
		conn_input(lb, c, IN_PEER_CLOSED, NULL);
		return;
	}
	/* Not ours (any more): a client that went before we accepted it,
	 * or one turned away at accept. Its record must not outlive it. */
	if (ev->state == BPF_TCP_CLOSE)
		kern_conn_forget(lb->k, ev->cookie);
}

bool events_poll(struct lb *lb)
{
	return kern_events_poll(lb->k, EVENTS_BATCH) == EVENTS_BATCH;
}

/*
 * Closes come on a ring of their own, so the events a connection sent
 * before it closed may still wait on the other: take the closes, then
 * the events (those sent before the closes are in by now), then act on
 * the closes. A backend's GOAWAY is then handled before its FIN, as it
 * was sent (the streams above its last one are refused, not failed).
 */
bool events_poll_closes(struct lb *lb)
{
	static struct h2lb_close_event closes[EVENTS_BATCH];
	int n = kern_closes_take(lb->k, closes, EVENTS_BATCH);

	kern_events_poll(lb->k, EVENTS_BATCH);
	for (int i = 0; i < n && !lb->quit; i++)
		closed(lb, &closes[i]);
	return n == EVENTS_BATCH;
}
