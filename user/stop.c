// SPDX-License-Identifier: GPL-2.0
/*
 * Graceful stop. A DaemonSet's rolling update must not fail the calls in
 * flight:
 *
 * 1. New connections stop coming: every VIP is marked H2LB_VIP_NO_NEW, so
 *    tc and connect4 leave new connections to the kernel's path
 *    (kube-proxy) while the ones already taken keep being delivered; the
 *    listeners close.
 * 2. Each client is told: new streams are refused in the kernel from now
 *    on (kern_client_goaway), then GOAWAY(NO_ERROR) with the last stream
 *    id opened before that. Streams up to it run to their end; later ones
 *    get RST_STREAM(REFUSED_STREAM), which clients retry, on a new
 *    connection.
 * 3. The daemon exits when no client has an open stream, or after
 *    --stop-timeout.
 */
#include "conns.h"
#include "kern.h"
#include "log.h"
#include "stop.h"

/* GOAWAY to every client that has not had one (accepted meanwhile too). */
static int goaway_all(struct lb *lb)
{
	static uint64_t cookies[H2LB_MAX_CONNS];
	int n = 0;

	conn_for_each(&lb->conns, c)
	{
		if (c->role == H2LB_ROLE_CLIENT && n < H2LB_MAX_CONNS)
			cookies[n++] = c->cookie;
	}
	for (int i = 0; i < n; i++) {
		struct uconn *c = conn_find(&lb->conns, cookies[i]);

		if (c && c->state == CS_OPEN)
			conns_stop_client(lb, c);
	}
	return n;
}

void stop_start(struct stop *st, struct lb *lb, struct services *sv)
{
	int clients;

	st->stopping = lb->stopping = true;
	st->until_ms = now_ms() + lb->opts->stop_timeout_ms;
	services_stop(lb, sv);
	clients = goaway_all(lb);
	pr_info("stopping: GOAWAY to %d client(s); exiting when their streams end (at most %llu ms)",
		clients, (unsigned long long)lb->opts->stop_timeout_ms);
}

bool stop_tick(struct stop *st, struct lb *lb)
{
	struct h2lb_conn k;
	unsigned int open = 0;

	if (!st->stopping)
		return false;
	goaway_all(lb);
	conn_for_each(&lb->conns, c)
	{
		/* A connection that is not HTTP/2 cannot be told to go away:
		 * it counts as a stream until it ends (or the timeout). */
		if (c->role == H2LB_ROLE_CLIENT &&
		    (c->state == CS_RAW || c->state == CS_RAW_CONNECTING))
			open++;
		else if (c->role == H2LB_ROLE_CLIENT &&
			 !kern_conn(lb->k, c->cookie, &k))
			open += k.open_streams;
	}
	if (!open) {
		pr_info("stopped gracefully: no stream left");
		return true;
	}
	if (now_ms() >= st->until_ms) {
		pr_warn("stop timeout: %u stream(s) still open", open);
		return true;
	}
	return false;
}
