// SPDX-License-Identifier: GPL-2.0
/*
 * Graceful stop (the first SIGTERM or SIGINT; a second one stops at once).
 * A DaemonSet's rolling update must not fail the calls in flight:
 *
 * 1. New connections stop coming: every VIP is marked H2LB_VIP_NO_NEW, so
 *    tc and connect4 leave new connections to the kernel's path
 *    (kube-proxy) while the ones already taken keep being delivered; the
 *    listeners close.
 * 2. Each client is told: new streams are refused in the kernel from now
 *    on (h2lb_drain_client), then GOAWAY(NO_ERROR) with the last stream id
 *    opened before that. Streams up to it run to their end; later ones get
 *    RST_STREAM(REFUSED_STREAM), which clients retry, on a new connection.
 * 3. The daemon exits when no client has an open stream, or after
 *    --drain-timeout.
 */
#include <string.h>

#include "daemon.h"
#include "h2.h"
#include "log.h"

static void drain_client(struct daemon *d, struct uconn *c)
{
	uint8_t f[H2_FRAME_MAX];
	int last;

	if (c->draining || c->state != UC_OPEN)
		return;
	last = bpf_drain_client(d, c->cookie);
	if (last < 0)
		return;
	c->draining = true;
	inject(d, c->cookie, f, h2_goaway(f, last, H2_NO_ERROR));
	pr_debug("client %llx: GOAWAY, last stream %d",
		 (unsigned long long)c->cookie, last);
}

void drain_start(struct daemon *d)
{
	int clients = 0;

	d->draining = true;
	d->drain_until_ms = now_ms() + d->opts.drain_timeout_ms;
	services_drain(d);
	for (int b = 0; b < CONN_BUCKETS; b++)
		for (struct uconn *c = d->conns[b]; c; c = c->next)
			if (c->role == H2LB_ROLE_CLIENT) {
				drain_client(d, c);
				clients++;
			}
	pr_info("draining: GOAWAY to %d client(s); stopping when their streams end (at most %llu ms)",
		clients, (unsigned long long)d->opts.drain_timeout_ms);
}

/* Each tick while draining: stop once no stream is left. */
void drain_tick(struct daemon *d)
{
	struct h2lb_conn k;
	unsigned int open = 0;

	if (!d->draining)
		return;
	for (int b = 0; b < CONN_BUCKETS; b++)
		for (struct uconn *c = d->conns[b]; c; c = c->next) {
			if (c->role != H2LB_ROLE_CLIENT)
				continue;
			drain_client(d, c); /* accepted meanwhile */
			if (!bpf_kconn(d, c->cookie, &k))
				open += k.open_streams;
		}
	if (!open) {
		pr_info("drained: no stream left");
		d->stop = true;
	} else if (now_ms() >= d->drain_until_ms) {
		pr_warn("drain timeout: %u stream(s) still open", open);
		d->stop = true;
	}
}
