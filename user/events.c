// SPDX-License-Identifier: GPL-2.0
/* What the BPF programs tell the daemon, through the ring buffer. */
#include <string.h>

#include "daemon.h"
#include "h2.h"
#include "log.h"

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void on_closed(struct daemon *d, struct uconn *c)
{
	switch (c->role) {
	case H2LB_ROLE_CLIENT:
		pr_debug("client %llx closed", (unsigned long long)c->cookie);
		conn_close(d, c);
		break;
	case H2LB_ROLE_BACKEND:
		if (c->state == UC_BOUND || c->state == UC_DRAINING)
			leg_lost(d, c, "connection closed by backend");
		else if (c->state == UC_CLOSING)
			conn_close(d, c);
		else {
			backend_failed(d, c->backend);
			conn_close(d, c);
		}
		break;
	case H2LB_ROLE_INJECTOR:
		pr_err("injector socket closed");
		d->stop = true;
		break;
	}
}

static void on_settings(struct daemon *d, struct uconn *c,
			const struct h2lb_event *ev)
{
	uint8_t f[H2_FRAME_MAX];

	if (c->role == H2LB_ROLE_CLIENT) {
		flow_client_settings(d, c, ev->data, ev->len);
	} else if (c->role == H2LB_ROLE_BACKEND) {
		if (c->state == UC_CONNECTING || c->state == UC_HANDSHAKE)
			pool_settings(d, c);
		else
			inject(d, c->cookie, f, h2_settings_ack(f));
	}
}

static void on_goaway(struct daemon *d, struct uconn *c,
		      const struct h2lb_event *ev)
{
	uint32_t last = ev->len >= 4 ? be32(ev->data) & 0x7fffffff : 0;

	if (c->role == H2LB_ROLE_BACKEND) {
		leg_goaway(d, c, last);
		return;
	}
	/* A client going away closes its connection itself; if it reports
	 * an error, that is worth a line in the log. */
	if (ev->arg != H2_NO_ERROR)
		pr_warn("client %llx sent GOAWAY, error %u",
			(unsigned long long)c->cookie, ev->arg);
}

int events_handle(void *ctx, void *data, size_t len)
{
	struct daemon *d = ctx;
	const struct h2lb_event *ev = data;
	struct uconn *c, *peer;
	uint8_t f[H2_FRAME_MAX];

	d->stats.bytes_read += len;
	d->stats.events++;
	if (len < sizeof(*ev))
		return 0;
	c = conn_find(d, ev->cookie);
	if (!c)
		return 0; /* a socket we already closed */

	switch (ev->type) {
	case H2LB_EV_CLOSED:
		on_closed(d, c);
		break;
	case H2LB_EV_SETTINGS:
		on_settings(d, c, ev);
		break;
	case H2LB_EV_WINDOW:
		if (c->role == H2LB_ROLE_CLIENT)
			flow_client_window(d, c, ev->arg);
		else
			flow_leg_window(d, c, ev->arg);
		break;
	case H2LB_EV_GOAWAY:
		on_goaway(d, c, ev);
		break;
	case H2LB_EV_DATA_PROGRESS:
		flow_progress(d, c);
		break;
	case H2LB_EV_LEG_BOUND:
		peer = conn_find(d, ev->peer);
		if (!peer) /* closed just as it was taken */
			break;
		if (peer->state == UC_CLOSING) {
			/* Taken by the verdict while we were closing it. */
			pool_taken(d, peer, c);
			leg_lost(d, peer, "closed while being bound");
			break;
		}
		pool_taken(d, peer, c);
		flow_leg_bound(d, peer);
		break;
	case H2LB_EV_REFUSED:
		if (c->draining)
			pr_debug("client %llx: stream %u refused: draining",
				 (unsigned long long)c->cookie, ev->stream);
		else
			pr_warn("client %llx: stream %u refused, no backend connection available",
				(unsigned long long)c->cookie, ev->stream);
		inject(d, c->cookie, f,
		       h2_rst_stream(f, ev->stream, H2_REFUSED_STREAM));
		break;
	case H2LB_EV_CONN_ERROR: {
		struct h2lb_conn k = { 0 };

		bpf_kconn(d, c->cookie, &k);
		conn_fail(d, c, k.last_stream, ev->arg);
		break;
	}
	case H2LB_EV_SETTINGS_ACK:
	case H2LB_EV_PING_ACK:
		break;
	}
	return 0;
}
