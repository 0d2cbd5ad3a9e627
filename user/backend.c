// SPDX-License-Identifier: GPL-2.0
/* The backend set and its pools' books (backend.h). */
#include <arpa/inet.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "backend.h"
#include "backoff.h"
#include "clock.h"
#include "kern.h"
#include "log.h"

/* The backend @a of Service @svc (a pod can serve several Services:
 * each has its own index, pool and counters for it): one of its list, or
 * one removed but still draining (which the set may want back). */
static int find_backend(struct backends *bs, int svc,
			const struct sockaddr_in *a)
{
	int b;

	for_each_svc_backend(bs, svc, j, b) {
		const struct ubackend *be = &bs->be[b];

		if (be->addr.sin_addr.s_addr == a->sin_addr.s_addr &&
		    be->addr.sin_port == a->sin_port)
			return b;
	}
	for (int i = 0; i < bs->nr && bs->removed[svc]; i++) {
		const struct ubackend *be = &bs->be[i];

		if (be->addr.sin_addr.s_addr == a->sin_addr.s_addr &&
		    be->addr.sin_port == a->sin_port && be->service == svc &&
		    !be->configured &&
		    kern_backend_state(bs->k, i) != H2LB_BE_UNUSED)
			return i;
	}
	return -1;
}

bool backend_unused(struct backends *bs, int b)
{
	const struct ubackend *be = &bs->be[b];

	return !be->configured && !be->pooled && !be->pending &&
	       kern_backend_state(bs->k, b) == H2LB_BE_UNUSED;
}

/* A free index: never used, or unused and fully drained. An index only
 * becomes free in backends_tick, which lowers the hint. */
static int free_backend(struct backends *bs)
{
	int max = (int)kern_limits(bs->k)->backends;

	for (int i = bs->hint; i < max && i < H2LB_MAX_BACKENDS; i++)
		if (i >= bs->nr || backend_unused(bs, i)) {
			bs->hint = i + 1;
			return i;
		}
	bs->hint = max;
	return -1;
}

/* Ready once a connection has been handshaken, unless it failed since;
 * a draining one never. */
static void backend_mark(struct backends *bs, int b)
{
	const struct ubackend *be = &bs->be[b];

	if (be->drain)
		kern_backend_set_state(bs->k, b, H2LB_BE_DRAINING);
	else
		kern_backend_set_state(bs->k, b,
				       be->pooled && !be->ejected
					       ? H2LB_BE_READY
					       : H2LB_BE_EJECTED);
}

/* Backend @b (found, or -1) joins Service @svc's set as @a: a new index
 * if it has none. -1 if no index is free. */
static int backend_take(struct backends *bs, int svc, int b,
			const struct sockaddr_in *a)
{
	if (b < 0) {
		b = free_backend(bs);
		if (b < 0)
			return -1;
		memset(&bs->be[b], 0, sizeof(bs->be[b]));
		bs->be[b].addr = *a;
		bs->be[b].service = svc;
		kern_backend_define(bs->k, b, a, svc);
		if (b >= bs->nr)
			bs->nr = b + 1;
	} else
		bs->removed[svc]--; /* back before it drained */
	if (!bs->be[b].configured) {
		bs->be[b].retry_at_ms = 0;
		bs->be[b].configured = true;
		bs->be[b].drain = true; /* backends_set sets it */
		kern_svc_add(bs->k, svc, b);
	}
	return b;
}

/*
 * The Service's set is @want, but at most --max-backends-per-service of
 * them: the backends it has keep their places (a new endpoint never
 * pushes one out that serves), the new ones take what is left, in
 * order. What does not fit is counted in @left; the other Services keep
 * their own.
 */
void backends_set(struct backends *bs, int svc, const struct sockaddr_in *want,
		  const bool *drain, int n, struct backends_left *left)
{
	static int found[H2LB_MAX_BACKENDS];
	static uint32_t keep[H2LB_MAX_BACKENDS], gen;
	uint32_t cap = kern_limits(bs->k)->svc_backends, have = 0;
	char buf[32];
	int b;

	*left = (struct backends_left){ 0 };
	if (n > H2LB_MAX_BACKENDS)
		n = H2LB_MAX_BACKENDS;
	gen++;
	for (int i = 0; i < n; i++) {
		found[i] = find_backend(bs, svc, &want[i]);
		if (found[i] >= 0 && bs->be[found[i]].configured &&
		    keep[found[i]] != gen) {
			keep[found[i]] = gen;
			have++;
		}
	}
	for (int i = 0; i < n; i++) {
		bool dr = drain && drain[i];
		struct ubackend *be;

		b = found[i];
		if (b < 0) /* maybe taken by the same address, just now */
			b = find_backend(bs, svc, &want[i]);
		if (b < 0 || !bs->be[b].configured) {
			if (have >= cap) {
				left->over_cap++;
				continue;
			}
			b = backend_take(bs, svc, b, &want[i]);
			if (b < 0) {
				left->no_slot++;
				continue;
			}
			keep[b] = gen;
			have++;
		}
		be = &bs->be[b];
		if (be->drain == dr &&
		    kern_backend_state(bs->k, b) != H2LB_BE_UNUSED)
			continue;
		be->drain = dr;
		backend_mark(bs, b);
		pr_info("backend %d: %s%s", b,
			addr_str(&be->addr, buf, sizeof(buf)),
			dr ? " (draining: no new streams)" : "");
	}
	/* Backwards: a removal moves the list's last entry into its place,
	 * one already looked at. */
	for (uint32_t j = kern_svc_nr(bs->k, svc); j-- > 0;) {
		struct ubackend *be;

		b = kern_svc_at(bs->k, svc, j);
		be = &bs->be[b];
		if (keep[b] == gen)
			continue;
		be->configured = false;
		bs->removed[svc]++;
		kern_svc_remove(bs->k, svc, b);
		kern_backend_set_state(bs->k, b, H2LB_BE_DRAINING);
		pr_info("backend %d: %s removed, draining", b,
			addr_str(&be->addr, buf, sizeof(buf)));
	}
	kern_backends_in_use(bs->k, bs->nr);
}

void backends_tick(struct backends *bs)
{
	for (int b = 0; b < bs->nr; b++) {
		const struct ubackend *be = &bs->be[b];

		if (!be->configured &&
		    kern_backend_state(bs->k, b) == H2LB_BE_DRAINING &&
		    !kern_backend_open_streams(bs->k, b) && !be->pooled &&
		    !be->pending) {
			kern_backend_set_state(bs->k, b, H2LB_BE_UNUSED);
			bs->removed[be->service]--;
			bs->freed++;
			if (b < bs->hint)
				bs->hint = b;
		}
	}
}

int backends_to_open(struct backends *bs, int b, int pool_size, uint64_t now)
{
	const struct ubackend *be = &bs->be[b];
	int n = pool_size - be->pooled - be->pending;

	if (!be->configured || be->drain)
		return 0;
	/* Ejected: one probe at a time, after the backoff, whether or not
	 * the pool has room. A full pool of healthy legs opens nothing by
	 * itself, and nothing else would re-admit the backend. */
	if (be->ejected)
		return !be->pending && now >= be->retry_at_ms;
	return n > 0 ? n : 0;
}

static bool in_handshake(enum conn_state s)
{
	return s == CS_CONNECTING || s == CS_HANDSHAKING;
}

void backend_leg_moved(struct backends *bs, int b, enum conn_state from,
		       enum conn_state to)
{
	struct ubackend *be = &bs->be[b];

	be->pending += in_handshake(to) - in_handshake(from);
	be->pooled += (to == CS_POOLED) - (from == CS_POOLED);
}

void backend_handshaken(struct backends *bs, int b, uint64_t now)
{
	struct ubackend *be = &bs->be[b];
	bool was = be->ejected;

	/* After connections failed, one that works is success; after
	 * requests failed it is not: the count starts over once the
	 * backend has served a while without failing (backends_check_errors). */
	if (!be->for_errors) {
		be->failures = 0;
		be->backoff_ms = 0;
	}
	if (was) {
		be->ejected = false;
		be->stable_at_ms = now + BACKEND_ERR_WINDOW_MS;
	}
	if (be->configured && kern_backend_state(bs->k, b) == H2LB_BE_EJECTED) {
		kern_backend_set_state(bs->k, b, H2LB_BE_READY);
		if (was)
			pr_info("backend %d ready again: a connection to it handshook",
				b);
		else
			pr_info("backend %d ready", b);
	}
}

/* Jitter only: xorshift32, seeded once from the clock and the pid. */
static uint32_t jitter_rand(void)
{
	static uint32_t x;

	if (!x)
		x = (uint32_t)now_ms() ^ (uint32_t)getpid() << 16 ^ 0x9e3779b9;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return x;
}

static void eject(struct backends *bs, int b, uint64_t now, const char *why,
		  bool for_errors)
{
	struct ubackend *be = &bs->be[b];

	if (be->ejected && now < be->retry_at_ms)
		return;
	be->failures++;
	be->backoff_ms = backoff_ms(be->failures, jitter_rand());
	be->retry_at_ms = now + be->backoff_ms;
	be->ejected = true;
	be->for_errors = for_errors;
	if (!be->configured || be->drain)
		return;
	kern_backend_set_state(bs->k, b, H2LB_BE_EJECTED);
	pr_warn("backend %d ejected: %s (failure %d, next try in %u ms, %d leg(s) pooled)",
		b, why, be->failures, be->backoff_ms, be->pooled);
}

void backend_failed(struct backends *bs, int b, uint64_t now, const char *why)
{
	eject(bs, b, now, why, false);
}

void backend_leg_error(struct backends *bs, int b, uint64_t client,
		       uint64_t now, bool (*good)(void *ctx, uint64_t client),
		       void *ctx)
{
	struct ubackend *be = &bs->be[b];
	int free = -1;

	/* A client's first error in the window stands: its age is what
	 * counts. A new client takes an empty or expired entry, or one of
	 * a client cut off or gone; if every entry is a live witness,
	 * those suffice. */
	for (int i = 0; i < BACKEND_ERR_CLIENTS; i++) {
		bool live = be->err[i].client &&
			    now - be->err[i].at_ms < BACKEND_ERR_WINDOW_MS;

		if (live && be->err[i].client == client)
			return;
		if (free < 0 && (!live || !good(ctx, be->err[i].client)))
			free = i;
	}
	if (free < 0)
		return;
	be->err[free].client = client;
	be->err[free].at_ms = now;
}

int backend_error_clients(struct backends *bs, int b, uint64_t now,
			  uint64_t min_age, uint64_t exclude,
			  bool (*good)(void *ctx, uint64_t client), void *ctx)
{
	const struct ubackend *be = &bs->be[b];
	int n = 0;

	for (int i = 0; i < BACKEND_ERR_CLIENTS; i++) {
		uint64_t age = now - be->err[i].at_ms;

		if (!be->err[i].client || age >= BACKEND_ERR_WINDOW_MS)
			continue;
		if (age >= min_age && be->err[i].client != exclude &&
		    good(ctx, be->err[i].client))
			n++;
	}
	return n;
}

void backends_check_errors(struct backends *bs, uint64_t now,
			   bool (*good)(void *ctx, uint64_t client), void *ctx)
{
	for (int b = 0; b < bs->nr; b++) {
		struct ubackend *be = &bs->be[b];

		/* The errors stay on the books for their window: a backend
		 * that handshakes but still fails every request is ejected
		 * again at once, for longer each time. */
		if (!be->ejected &&
		    backend_error_clients(bs, b, now, BACKEND_ERR_MIN_AGE_MS, 0,
					  good, ctx) == BACKEND_ERR_CLIENTS)
			eject(bs, b, now, "errors on legs of several clients",
			      true);
		else if (!be->ejected && be->for_errors &&
			 now >= be->stable_at_ms)
			be->failures = be->for_errors = 0;
	}
}
