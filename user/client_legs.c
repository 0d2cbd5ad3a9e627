// SPDX-License-Identifier: GPL-2.0
/*
 * Which backends a client with legs of its own connects to
 * (client_legs.h).
 */
#include "client_legs.h"
#include "kern.h"

/* Whether @c has a leg to @b that takes streams or is being opened; one
 * going away (its backend's GOAWAY) only ends the streams it has. */
static bool has_leg(const struct uconn *c, int b)
{
	for (const struct uconn *l = c->legs; l; l = l->next_leg)
		if (l->backend == b && l->state == CS_BOUND)
			return true;
	for (const struct uconn *l = c->pending; l; l = l->next_leg)
		if (l->backend == b)
			return true;
	return false;
}

static int nr_legs(const struct uconn *c)
{
	int n = 0;

	for (const struct uconn *l = c->legs; l; l = l->next_leg)
		n += l->state == CS_BOUND;
	for (const struct uconn *l = c->pending; l; l = l->next_leg)
		n++;
	return n;
}

/* Where to start turns from one client to the next, so that with more
 * backends than --client-legs each backend is in about as many clients'
 * sets. The Service's own list (the one its picks scan) holds its
 * backends; a draining one is not ready. */
int client_legs_choose(struct lb *lb, const struct uconn *c, int *out, int max)
{
	static unsigned int turn;
	uint32_t nr = kern_svc_nr(lb->k, c->service);
	int want = lb->opts->client_legs - nr_legs(c), n = 0;

	if (want > max)
		want = max;
	if (want <= 0 || !nr)
		return 0;
	turn++;
	for (uint32_t i = 0; i < nr && n < want; i++) {
		int b = kern_svc_at(lb->k, c->service, (turn + i) % nr);

		if (kern_backend_state(lb->k, b) == H2LB_BE_READY &&
		    !has_leg(c, b))
			out[n++] = b;
	}
	return n;
}
