/* SPDX-License-Identifier: GPL-2.0 */
/* Backend choice and per-client connection ("leg") binding. */
#ifndef H2LB_BPF_SELECT_H
#define H2LB_BPF_SELECT_H

#include "events.h"
#include "maps.h"

#define PICK_TRIES 4
/* Tied backends the scan remembers: with no more than this many, the
 * pick needs no second pass over the list. A power of two. */
#define PICK_TIES 8

struct pick_ctx {
	__s32 tried[PICK_TRIES]; /* backends already tried, or -1 */
	__u32 service;
	__u32 list;   /* where the Service's list starts in svc_backends */
	__u32 nr;     /* how many backends it holds */
	__u32 rr;     /* round-robin: every ready backend ties */
	__u32 window; /* the client's stream window: a backend that allows
		       * less could be overrun (docs/flow-control.md) */
	__u64 own;    /* a client with legs of its own (H2LB_CONN_OWN_LEGS):
		       * its cookie; only backends it has a leg to count */
	__u32 best;   /* fewest open streams seen */
	__u32 ties;   /* how many backends have that many: 0 from the caller */
	__u32 nth;    /* which of the tied ones to take */
	int first;    /* first backend with the fewest */
	int found;
	__s32 tie[PICK_TIES]; /* the first PICK_TIES of them, in list order */
	/* For a connection that is not HTTP/2: any backend TCP reaches,
	 * ejected for its HTTP/2 handshake or not (control.bpf.c). */
	__u32 raw;
};

/* select.bpf.c: global functions, verified once rather than at each call. */
extern int pick_backend(const struct pick_ctx *in);
extern __u64 pool_take(__u32 backend);
/* verdict.bpf.c: whether the fast path may write @len bytes to @leg now. */
extern int leg_sync(__u64 leg, __u32 len);

/* A leg the fast path may write a new stream's first @sync bytes to now
 * (@sync < 0: not asked, today's path can write to any leg). */
static __always_inline int leg_sync_for(__u64 leg, int sync)
{
	return sync < 0 || leg_sync(leg, sync) == 1;
}

/* Bind pooled connection @cookie to @client as its leg to @backend. */
static __always_inline int leg_bind(__u64 client, __u64 cookie, __u32 backend)
{
	struct h2lb_leg_key lk = { .client = client, .backend = backend };
	struct h2lb_conn *leg = bpf_map_lookup_elem(&conns, &cookie);

	if (!leg)
		return -1;
	leg->peer = client;
	return bpf_map_update_elem(&legs, &lk, &cookie, BPF_ANY);
}

/*
 * The client's connection to @backend: the one it already has, or a
 * fresh one from the pool, bound to the client. The daemon hears of a
 * binding (it relays the client's SETTINGS to the new leg and refills the
 * pool): by an event (@tell), or from the caller (h2lb_bind_first).
 */
/* A leg that already carries as many streams as its backend allows
 * (SETTINGS_MAX_CONCURRENT_STREAMS) takes no more. */
static __always_inline int leg_full(__u64 leg)
{
	struct h2lb_conn *l = bpf_map_lookup_elem(&conns, &leg);

	return !l || l->open_streams >= l->max_streams;
}

static __always_inline __u64 leg_get(__u64 client, __u32 backend, int tell,
				     int c_own)
{
	struct h2lb_leg_key lk = { .client = client, .backend = backend };
	__u64 *have, cookie;

	have = bpf_map_lookup_elem(&legs, &lk);
	if (have)
		return *have;
	/* Pooled legs come from the node's address: not for a client whose
	 * backends must see its own (--leg-source client). */
	if (c_own)
		return 0;
	cookie = pool_take(backend);
	if (!cookie || leg_bind(client, cookie, backend))
		return 0;
	if (tell)
		emit(H2LB_EV_LEG_BOUND, client, cookie, 0, backend);
	return cookie;
}

/* A new stream's backend, by --policy, among the ready backends of
 * @c's Service; the leg to it, or 0 if none has a pooled connection.
 * Takes @c's first leg as its leg0. On the fast path (@sync >= 0), a
 * leg whose psock still sends what was queued to it is passed over for
 * the next backend: a fresh pooled leg whose start the daemon queued
 * moments ago, most often. It stays bound to the client, for later. */
static __always_inline __u64 leg_pick(__u64 client, struct h2lb_conn *c,
				      __u32 *backend, int tell, int sync)
{
	struct pick_ctx p = { .tried = { -1, -1, -1, -1 } };
	__u64 leg;

	p.service = c->service;
	p.rr = settings.policy == H2LB_POLICY_ROUND_ROBIN;
	p.window = c->stream_window;
	p.own = c->flags & H2LB_CONN_OWN_LEGS ? client : 0;
	for (int tries = 0; tries < PICK_TRIES; tries++) {
		int ret = pick_backend(&p);
		__u32 b = ret;

		if (ret < 0 || b >= settings.max_backends)
			break;
		leg = leg_get(client, b, tell, p.own != 0);
		if (leg && !leg_full(leg) && leg_sync_for(leg, sync)) {
			*backend = b;
			/* The daemon's h2lb_bind_first and the verdict's first
			 * stream may pick at the same time: the first to set
			 * leg0 wins, and the other sees its choice. */
			__sync_val_compare_and_swap(&c->leg0, 0, leg);
			return leg;
		}
		p.tried[tries] = b;
	}
	return 0;
}

/* @c's first leg, if it can take one more stream (@sync: leg_pick). */
static __always_inline __u64 leg0_open(struct h2lb_conn *c, __u32 *backend,
				       int sync)
{
	__u64 leg = c->leg0; /* keys must be on the stack */
	struct h2lb_conn *l;

	if (!leg)
		return 0;
	l = bpf_map_lookup_elem(&conns, &leg);
	if (!l || l->open_streams >= l->max_streams || !leg_sync_for(leg, sync))
		return 0;
	*backend = l->backend;
	return leg;
}

/*
 * Leg for a new stream. Until the client has acknowledged our
 * SETTINGS_HEADER_TABLE_SIZE = 0, its HPACK encoder may still use its
 * dynamic table, so all those streams go to one leg, leg0, whose decoder
 * then sees the encoder's whole sequence (docs/kernel-facts.md, "HPACK
 * without state"). The first pick makes leg0, unless the daemon's
 * h2lb_bind_first made it first: either way the stream goes to leg0,
 * never to a leg picked in the race. @sync: the fast path's first
 * write of the stream, its length (leg_pick), or -1.
 */
static __always_inline __u64 leg_for_new_stream(__u64 client,
						struct h2lb_conn *c,
						__u32 *backend, int sync)
{
	__u64 leg;

	if (!(c->flags & H2LB_CONN_SETTINGS_ACK)) {
		if (!c->leg0)
			leg_pick(client, c, backend, 1, -1);
		return leg0_open(c, backend, sync);
	}
	leg = leg_pick(client, c, backend, 1, sync);
	if (leg)
		return leg;
	/* No pooled connection anywhere (a burst of new clients emptied
	 * the pool): rather than refuse, use a leg the client has. */
	return leg0_open(c, backend, sync);
}

#endif
