// SPDX-License-Identifier: GPL-2.0
/* The backend set and its pools' books (backend.h). */
#include <arpa/inet.h>
#include <string.h>

#include "addr.h"
#include "backend.h"
#include "kern.h"
#include "log.h"

#define RETRY_MS 200 /* a restarted backend is back within a second */

/* The backend @a of Service @svc (a pod can serve several Services:
 * each has its own index, pool and counters for it). */
static int find_backend(struct backends *bs, int svc,
			const struct sockaddr_in *a)
{
	for (int i = 0; i < bs->nr; i++) {
		struct ubackend *be = &bs->be[i];

		if (be->addr.sin_addr.s_addr == a->sin_addr.s_addr &&
		    be->addr.sin_port == a->sin_port && be->service == svc &&
		    (be->configured ||
		     kern_backend_state(bs->k, i) != H2LB_BE_UNUSED))
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

/* A free index: never used, or unused and fully drained. */
static int free_backend(struct backends *bs)
{
	for (int i = 0; i < H2LB_MAX_BACKENDS; i++)
		if (i >= bs->nr || backend_unused(bs, i))
			return i;
	return -1;
}

/* Ready once a connection has been handshaken; a draining one never. */
static void backend_mark(struct backends *bs, int b)
{
	const struct ubackend *be = &bs->be[b];

	if (be->drain)
		kern_backend_set_state(bs->k, b, H2LB_BE_DRAINING);
	else
		kern_backend_set_state(
			bs->k, b, be->pooled ? H2LB_BE_READY : H2LB_BE_EJECTED);
}

void backends_set(struct backends *bs, int svc, const struct sockaddr_in *want,
		  const bool *drain, int n)
{
	bool keep[H2LB_MAX_BACKENDS] = { 0 };
	char buf[32];

	for (int i = 0; i < n; i++) {
		int b = find_backend(bs, svc, &want[i]);
		bool dr = drain && drain[i];
		struct ubackend *be;

		if (b < 0) {
			b = free_backend(bs);
			if (b < 0) {
				pr_err("no free backend slot for %s",
				       addr_str(&want[i], buf, sizeof(buf)));
				continue;
			}
			memset(&bs->be[b], 0, sizeof(bs->be[b]));
			bs->be[b].addr = want[i];
			bs->be[b].service = svc;
			kern_backend_define(bs->k, b, &want[i], svc);
			if (b >= bs->nr)
				bs->nr = b + 1;
		}
		be = &bs->be[b];
		keep[b] = true;
		if (be->configured && be->drain == dr)
			continue;
		if (!be->configured)
			be->retry_at_ms = 0;
		be->configured = true;
		be->drain = dr;
		backend_mark(bs, b);
		pr_info("backend %d: %s%s", b,
			addr_str(&be->addr, buf, sizeof(buf)),
			dr ? " (draining: no new streams)" : "");
	}
	for (int b = 0; b < bs->nr; b++) {
		struct ubackend *be = &bs->be[b];

		if (keep[b] || !be->configured || be->service != svc)
			continue;
		be->configured = false;
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
		    !be->pending)
			kern_backend_set_state(bs->k, b, H2LB_BE_UNUSED);
	}
}

int backends_to_open(struct backends *bs, int b, int pool_size, uint64_t now)
{
	const struct ubackend *be = &bs->be[b];
	int n = pool_size - be->pooled - be->pending;

	if (!be->configured || be->drain || now < be->retry_at_ms || n <= 0)
		return 0;
	/* One connect at a time while the backend is failing. */
	if (be->failures)
		return be->pending ? 0 : 1;
	return n;
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

void backend_pooled(struct backends *bs, int b)
{
	struct ubackend *be = &bs->be[b];

	be->failures = 0;
	if (be->configured && kern_backend_state(bs->k, b) == H2LB_BE_EJECTED) {
		kern_backend_set_state(bs->k, b, H2LB_BE_READY);
		pr_info("backend %d ready", b);
	}
}

void backend_failed(struct backends *bs, int b, uint64_t now)
{
	struct ubackend *be = &bs->be[b];

	be->failures++;
	be->retry_at_ms = now + RETRY_MS;
	if (be->configured && kern_backend_state(bs->k, b) == H2LB_BE_READY) {
		kern_backend_set_state(bs->k, b, H2LB_BE_EJECTED);
		pr_warn("backend %d ejected", b);
	}
}
