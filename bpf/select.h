/* SPDX-License-Identifier: GPL-2.0 */
/* Backend choice and per-client connection ("leg") binding. */
#ifndef H2LB_BPF_SELECT_H
#define H2LB_BPF_SELECT_H

#define PICK_TRIES 4

struct pick_ctx {
	__s32 tried[PICK_TRIES]; /* backends already tried, or -1 */
	__u32 service;
	__u32 nr;
	__u32 rr;   /* round-robin: every ready backend ties */
	__u32 best; /* fewest open streams seen */
	__u32 ties; /* how many backends have that many */
	__u32 nth;  /* which of the tied ones to take */
	int first;  /* first backend with the fewest */
	int found;
};

static __always_inline int eligible(__u32 i, struct pick_ctx *p, __u32 *open)
{
	struct h2lb_backend *be;

	if (i >= H2LB_MAX_BACKENDS)
		return 0;
	for (int t = 0; t < PICK_TRIES; t++)
		if (p->tried[t] == (__s32)i)
			return 0;
	be = bpf_map_lookup_elem(&backends, &i);
	if (!be || be->state != H2LB_BE_READY || be->service != p->service)
		return 0;
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
 * pass over each callback, and being global, the function is verified
 * once rather than at each call. Returns the backend index or -1.
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

/* Take a pre-handshaken connection to @backend from the pool, or 0.
 * Global, so that the verifier checks it once. */
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

/*
 * The client's connection to @backend: the one it already has, or a
 * fresh one from the pool, bound to the client. The daemon hears of
 * every binding (it relays the client's SETTINGS to the new leg and
 * refills the pool).
 */
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

static __always_inline __u64 leg_get(__u64 client, __u32 backend)
{
	struct h2lb_leg_key lk = { .client = client, .backend = backend };
	__u64 *have, cookie;

	have = bpf_map_lookup_elem(&legs, &lk);
	if (have)
		return *have;
	cookie = pool_take(backend);
	if (!cookie || leg_bind(client, cookie, backend))
		return 0;
	emit(H2LB_EV_LEG_BOUND, client, cookie, 0, backend);
	return cookie;
}

/*
 * Leg for a new stream. Until the client has acknowledged our
 * SETTINGS_HEADER_TABLE_SIZE = 0, its HPACK encoder may still use its
 * dynamic table, so all those streams go to one leg whose decoder then
 * sees the encoder's whole sequence (DESIGN.md "HPACK without state").
 */
static __always_inline __u64 leg_for_new_stream(__u64 client,
						struct h2lb_conn *c,
						__u32 *backend)
{
	__u32 zero = 0;
	struct h2lb_config *cfg = bpf_map_lookup_elem(&lb_config, &zero);
	struct pick_ctx p = { .tried = { -1, -1, -1, -1 } };
	__u64 leg;

	if (!cfg)
		return 0;
	p.service = c->service;
	p.nr = cfg->nr_backends;
	p.rr = cfg->policy == H2LB_POLICY_ROUND_ROBIN;
	if (!(c->flags & H2LB_CONN_SETTINGS_ACK) && c->leg0) {
		struct h2lb_conn *l = bpf_map_lookup_elem(&conns, &c->leg0);

		if (!l)
			return 0;
		*backend = l->backend;
		return c->leg0;
	}
	for (int tries = 0; tries < PICK_TRIES; tries++) {
		int ret = pick_backend(&p);
		__u32 b = ret;

		if (ret < 0 || b >= H2LB_MAX_BACKENDS)
			break;
		leg = leg_get(client, b);
		if (leg) {
			*backend = b;
			if (!c->leg0)
				c->leg0 = leg;
			return leg;
		}
		p.tried[tries] = b;
	}
	/* No pooled connection anywhere (a burst of new clients emptied
	 * the pool): rather than refuse, use a leg the client has. */
	if (c->leg0) {
		struct h2lb_conn *l = bpf_map_lookup_elem(&conns, &c->leg0);

		if (l) {
			*backend = l->backend;
			return c->leg0;
		}
	}
	return 0;
}

#endif
