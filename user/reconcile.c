// SPDX-License-Identifier: GPL-2.0
/*
 * Repairs after lost events (reconcile.h). Events are lost when the
 * events ring is full (a flood, a daemon that was stopped); closes have a
 * ring of their own and are not lost but if even that one filled. Either
 * loss shows in the event_drops counter. A pass then:
 *
 * - closes the connections whose socket says the peer has gone
 *   (TCP_INFO: CLOSE_WAIT after its FIN, CLOSE after a reset), as their
 *   close event would have;
 * - binds the pooled legs the kernel bound (a lost LEG_BOUND), and fails
 *   the connections the kernel failed (a lost CONN_ERROR);
 * - refills every client's windows (lost WINDOW and PROGRESS events);
 * - removes the kernel's records of connections the daemon does not
 *   know, when two passes some seconds apart both see them: a client
 *   still in the listen backlog has a record before it is accepted.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conns.h"
#include "h2.h"
#include "kern.h"
#include "log.h"
#include "reconcile.h"
#include "window.h"

#define RECONCILE_MIN_MS     1000 /* passes, at most one a second */
#define RECONCILE_CONFIRM_MS 2000 /* stale records: the second look */

static bool peer_gone(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len))
		return false;
	return ti.tcpi_state == TCP_CLOSE_WAIT || ti.tcpi_state == TCP_CLOSE;
}

static bool live(const struct uconn *c)
{
	return c->state == CS_OPEN || c->state == CS_GOING_AWAY ||
	       c->state == CS_CLOSING || c->state == CS_HANDSHAKING ||
	       c->state == CS_POOLED || c->state == CS_BOUND ||
	       c->state == CS_ADMITTING || c->state == CS_RAW;
}

/* What a lost event would have said about @c, from its socket and its
 * kernel record; IN_MAX: nothing. */
static enum conn_input missed(struct lb *lb, struct uconn *c, uint64_t *client)
{
	struct h2lb_conn k;

	if (!live(c))
		return IN_MAX;
	if (peer_gone(c->fd))
		return IN_PEER_CLOSED;
	if (kern_conn(lb->k, c->cookie, &k))
		return IN_MAX;
	if ((k.flags & H2LB_CONN_DEAD) && c->state != CS_CLOSING)
		return IN_ERROR;
	/* (A leg from a client's address waits pooled, bound, while its
	 * client is admitted: conns.c links it then.) */
	if (c->state == CS_POOLED && k.peer && !c->own) {
		*client = k.peer;
		return IN_BOUND;
	}
	return IN_MAX;
}

static void repair_conns(struct lb *lb)
{
	static struct {
		uint64_t cookie, client;
		enum conn_input in;
	} due[H2LB_MAX_CONNS];
	int n = 0;

	conn_for_each(&lb->conns, c)
	{
		uint64_t client = 0;
		enum conn_input in = missed(lb, c, &client);

		if (in != IN_MAX && n < H2LB_MAX_CONNS) {
			due[n].cookie = c->cookie;
			due[n].client = client;
			due[n++].in = in;
		}
	}
	for (int i = 0; i < n; i++) {
		struct uconn *c = conn_find(&lb->conns, due[i].cookie);
		struct input_arg a = { .value = H2_PROTOCOL_ERROR };

		if (!c)
			continue;
		if (due[i].in == IN_BOUND) {
			a.client = conn_find(&lb->conns, due[i].client);
			if (!a.client)
				continue; /* its close comes */
		}
		lb->stats.reconciled += due[i].in == IN_PEER_CLOSED;
		conn_input(lb, c, due[i].in, &a);
	}
	conn_for_each(&lb->conns, c)
	{
		if (c->role == H2LB_ROLE_CLIENT &&
		    (c->state == CS_OPEN || c->state == CS_GOING_AWAY))
			window_refill(lb, c, true);
	}
	if (n)
		pr_info("lost events: %d connection(s) repaired", n);
}

struct stale_walk {
	struct lb *lb;
	uint64_t *found;
	int n;
};

static int collect_stale(uint64_t cookie, const struct h2lb_conn *k, void *arg)
{
	struct stale_walk *w = arg;

	if (cookie != w->lb->inj.cookie && !conn_find(&w->lb->conns, cookie))
		w->found[w->n++] = cookie;
	return w->n == H2LB_MAX_CONNS;
}

/* Remove the records stale now that were stale at the last pass too; the
 * others are kept for the next. */
static void repair_kernel(struct reconcile *r, struct lb *lb, uint64_t now)
{
	static uint64_t found[H2LB_MAX_CONNS];
	struct stale_walk w = { .lb = lb, .found = found };
	int removed = 0, kept = 0;

	kern_each_conn(lb->k, collect_stale, &w);
	for (int i = 0; i < w.n; i++) {
		if (r->nr_stale && bsearch(&found[i], r->stale, r->nr_stale,
					   sizeof(*found), cmp_u64)) {
			kern_conn_forget(lb->k, found[i]);
			removed++;
		} else {
			found[kept++] = found[i];
		}
	}
	lb->stats.stale_conns += removed;
	memcpy(r->stale, found, kept * sizeof(*found));
	r->nr_stale = kept;
	qsort(r->stale, kept, sizeof(*found), cmp_u64);
	r->confirm_ms = kept ? now + RECONCILE_CONFIRM_MS : 0;
	if (removed)
		pr_info("lost events: %d stale kernel record(s) removed",
			removed);
}

void reconcile_tick(struct reconcile *r, struct lb *lb)
{
	uint64_t cnt[H2LB_CNT_MAX], now = now_ms();
	bool lost;

	if (!r->stale) {
		r->stale = calloc(H2LB_MAX_CONNS, sizeof(*r->stale));
		if (!r->stale)
			return;
	}
	if (kern_read_counters(lb->k, cnt))
		return;
	lost = cnt[H2LB_CNT_EVENT_DROPS] != r->drops;
	if (!(lost && now - r->last_ms >= RECONCILE_MIN_MS) &&
	    !(r->confirm_ms && now >= r->confirm_ms))
		return;
	if (lost)
		pr_warn("%llu event(s) lost: reconciling connections",
			(unsigned long long)(cnt[H2LB_CNT_EVENT_DROPS] -
					     r->drops));
	r->drops = cnt[H2LB_CNT_EVENT_DROPS];
	r->last_ms = now;
	lb->stats.reconciles++;
	repair_conns(lb);
	repair_kernel(r, lb, now);
}

void reconcile_free(struct reconcile *r)
{
	free(r->stale);
	r->stale = NULL;
}
