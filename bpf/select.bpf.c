// SPDX-License-Identifier: GPL-2.0
/*
 * Backend choice: global functions, so that the verifier checks each once
 * rather than at every call site (select.h declares them).
 */
#include "select.h"

static __always_inline int eligible(__u32 i, struct pick_ctx *p, __u32 *open)
{
	struct h2lb_backend *be;

	for (int t = 0; t < PICK_TRIES; t++)
		if (p->tried[t] == (__s32)i)
			return 0;
	be = bpf_map_lookup_elem(&backends, &i);
	/* The list may be a change behind the daemon: the index it names
	 * may have left the Service meanwhile, or even joined another. */
	if (!be || be->service != p->service)
		return 0;
	if (p->raw ? (be->state != H2LB_BE_READY &&
		      be->state != H2LB_BE_EJECTED) ||
			     be->tcp_down
		   : be->state != H2LB_BE_READY || be->init_window < p->window)
		return 0;
	if (p->own) {
		struct h2lb_leg_key lk = { .client = p->own, .backend = i };

		if (!bpf_map_lookup_elem(&legs, &lk))
			return 0;
	}
	*open = p->rr ? 0 : be->open_streams;
	return 1;
}

/* The backend index at position @j of @p's Service's list, or -1. */
static __always_inline int list_at(struct pick_ctx *p, __u32 j)
{
	__u32 at = p->list + j, key = at / 2;
	struct h2lb_svc_pair *v = bpf_map_lookup_elem(&svc_backends, &key);

	return v ? (int)v->backend[at & 1] : -1;
}

static long pick_scan(__u32 j, void *arg)
{
	struct pick_ctx *p = arg;
	int i = list_at(p, j);
	__u32 open;

	if (i < 0)
		return 1;
	if (!eligible(i, p, &open))
		return 0;
	if (open < p->best) {
		p->best = open;
		p->ties = 0;
		p->first = i;
	}
	if (open == p->best) {
		if (p->ties < PICK_TIES)
			p->tie[p->ties & (PICK_TIES - 1)] = i;
		p->ties++;
	}
	return 0;
}

static long pick_choose(__u32 j, void *arg)
{
	struct pick_ctx *p = arg;
	int i = list_at(p, j);
	__u32 open;

	if (i < 0)
		return 1;
	if (!eligible(i, p, &open) || open != p->best)
		return 0;
	if (p->nth-- == 0) {
		p->found = i;
		return 1;
	}
	return 0;
}

/*
 * Pick a ready backend of @p->service not in @p->tried: by policy, least open
 * streams, or plain round-robin (all ready backends tie). Ties rotate
 * among the tied backends only, so an ejected backend does not double
 * the share of its neighbour. Only the Service's own list is looked at
 * ("svc_backends"), so a pick costs what that Service has, however many
 * the node balances. bpf_loop keeps the verifier's work to one pass over
 * each callback. Returns the backend index or -1.
 */
__attribute__((noinline)) int pick_backend(const struct pick_ctx *in)
{
	struct pick_ctx p; /* bpf_loop's context must be on the stack */
	__u32 zero = 0, *cursor;
	__u64 *nr;

	if (!in)
		return -1;
	p = *in;
	nr = bpf_map_lookup_elem(&svc_nr, &p.service);
	if (!nr)
		return -1;
	p.nr = *nr > settings.svc_backends ? settings.svc_backends : *nr;
	p.list = p.service * settings.svc_backends;
	p.best = 0xffffffff;
	/* p.ties is the caller's 0 (struct pick_ctx), not set here: a
	 * constant would be one the verifier tracks through every call of
	 * the callback (the test after the loop makes it precise), and with
	 * a list of settings.svc_backends it would never see two calls
	 * alike ("sequence of jumps is too complex"). */
	p.first = -1;
	p.found = -1;
	bpf_loop(p.nr, pick_scan, &p, 0);
	if (!p.ties)
		return -1;
	cursor = bpf_map_lookup_elem(&rr_cursor, &zero);
	if (!cursor)
		return -1;
	p.nth = __sync_fetch_and_add(cursor, 1) % p.ties;
	/* The usual case: the scan saw them all (one pass, not two). */
	if (p.ties <= PICK_TIES)
		return p.tie[p.nth & (PICK_TIES - 1)];
	bpf_loop(p.nr, pick_choose, &p, 0);
	/* Streams of other clients open and close meanwhile: if the tie
	 * moved, the first backend that had the fewest is as good. */
	return p.found >= 0 ? p.found : p.first;
}

/* Take a pre-handshaken connection to @backend from the pool, or 0. */
__attribute__((noinline)) __u64 pool_take(__u32 backend)
{
	if (backend >= settings.max_backends)
		return 0;
	for (__u32 s = 0; s < H2LB_POOL_SLOTS; s++) {
		__u32 slot = backend * H2LB_POOL_SLOTS + s;
		__u64 *p = bpf_map_lookup_elem(&pool, &slot);
		__u64 v;

		if (!p || !*p)
			continue;
		v = __sync_lock_test_and_set(p, 0);
		if (v)
			return v;
	}
	return 0;
}
