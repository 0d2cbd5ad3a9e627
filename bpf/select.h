/* SPDX-License-Identifier: GPL-2.0 */
/* Backend choice and per-client connection ("leg") binding. */
#ifndef H2LB_BPF_SELECT_H
#define H2LB_BPF_SELECT_H

/*
 * Pick a ready backend that is not in @skip: by policy, least open
 * streams with ties broken round-robin, or plain round-robin. Returns
 * the backend index or -1.
 */
static __always_inline int pick_backend(const struct h2lb_config *cfg,
					__u64 skip)
{
	__u32 zero = 0, *cursor, start, nr = cfg->nr_backends;
	__u32 best_open = 0xffffffff;
	int best = -1;

	if (nr == 0 || nr > H2LB_MAX_BACKENDS)
		return -1;
	cursor = bpf_map_lookup_elem(&rr_cursor, &zero);
	if (!cursor)
		return -1;
	start = __sync_fetch_and_add(cursor, 1) % nr;

	for (__u32 n = 0; n < H2LB_MAX_BACKENDS; n++) {
		__u32 i = start + n;
		struct h2lb_backend *be;

		if (n >= nr)
			break;
		if (i >= nr)
			i -= nr;
		if (skip & (1ULL << i))
			continue;
		be = bpf_map_lookup_elem(&backends, &i);
		if (!be || be->state != H2LB_BE_READY)
			continue;
		if (cfg->policy == H2LB_POLICY_ROUND_ROBIN)
			return i;
		if (be->open_streams < best_open) {
			best_open = be->open_streams;
			best = i;
		}
	}
	return best;
}

/* Take a pre-handshaken connection to @backend from the pool, or 0. */
static __always_inline __u64 pool_take(__u32 backend)
{
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
static __always_inline __u64 leg_get(__u64 client, __u32 backend)
{
	struct h2lb_leg_key lk = { .client = client, .backend = backend };
	struct h2lb_conn *leg;
	__u64 *have, cookie;

	have = bpf_map_lookup_elem(&legs, &lk);
	if (have)
		return *have;
	cookie = pool_take(backend);
	if (!cookie)
		return 0;
	leg = bpf_map_lookup_elem(&conns, &cookie);
	if (!leg)
		return 0;
	leg->peer = client;
	bpf_map_update_elem(&legs, &lk, &cookie, BPF_ANY);
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
	__u64 skip = 0, leg;

	if (!cfg)
		return 0;
	if (!(c->flags & H2LB_CONN_SETTINGS_ACK) && c->leg0) {
		struct h2lb_conn *l = bpf_map_lookup_elem(&conns, &c->leg0);

		if (!l)
			return 0;
		*backend = l->backend;
		return c->leg0;
	}
	for (int tries = 0; tries < 4; tries++) {
		int b = pick_backend(cfg, skip);

		if (b < 0)
			return 0;
		leg = leg_get(client, b);
		if (leg) {
			*backend = b;
			if (!c->leg0)
				c->leg0 = leg;
			return leg;
		}
		skip |= 1ULL << b;
	}
	return 0;
}

#endif
