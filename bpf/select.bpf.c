// SPDX-License-Identifier: GPL-2.0
/*
 * Backend choice: global functions, so that the verifier checks each once
 * rather than at every call site (select.h declares them).
 */
#include "select.h"

static __always_inline int eligible(__u32 i, struct pick_ctx *p, __u32 *open)
{
	struct h2lb_backend *be;

	if (i >= H2LB_MAX_BACKENDS)
		return 0;
	for (int t = 0; t < PICK_TRIES; t++)
		if (p->tried[t] == (__s32)i)
			return 0;
	be = bpf_map_lookup_elem(&backends, &i);
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

static long pick_scan(__u32 i, void *arg)
{
	struct pick_ctx *p = arg;
	__u32 open;

	if (i >= p->nr)
		return 1;
	if (!eligible(i, p, &open))
		return 0;
	if (open < p->best) {
		p->best = open;
		p->ties = 0;
		p->first = i;
	}
	if (open == p->best)
		p->ties++;
	return 0;
}

static long pick_choose(__u32 i, void *arg)
{
	struct pick_ctx *p = arg;
	__u32 open;

	if (i >= p->nr)
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
 * the share of its neighbour. bpf_loop keeps the verifier's work to one
 * pass over each callback. Returns the backend index or -1.
 */
__attribute__((noinline)) int pick_backend(const struct pick_ctx *in)
{
	struct pick_ctx p; /* bpf_loop's context must be on the stack */
	__u32 zero = 0, *cursor;

	if (!in)
		return -1;
	p = *in;
	p.best = 0xffffffff;
	p.ties = 0;
	p.first = -1;
	p.found = -1;
	bpf_loop(H2LB_MAX_BACKENDS, pick_scan, &p, 0);
	if (!p.ties)
		return -1;
	cursor = bpf_map_lookup_elem(&rr_cursor, &zero);
	if (!cursor)
		return -1;
	p.nth = __sync_fetch_and_add(cursor, 1) % p.ties;
	bpf_loop(H2LB_MAX_BACKENDS, pick_choose, &p, 0);
	/* Streams of other clients open and close meanwhile: if the tie
	 * moved, the first backend that had the fewest is as good. */
	return p.found >= 0 ? p.found : p.first;
}

/* Take a pre-handshaken connection to @backend from the pool, or 0. */
__attribute__((noinline)) __u64 pool_take(__u32 backend)
{
	if (backend >= H2LB_MAX_BACKENDS)
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
