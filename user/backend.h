/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The backend set: each backend's address, Service, health and the size
 * of its pool of pre-handshaken connections. Each client gets its own
 * connection to each backend it uses (docs/kernel-facts.md, "Dedicated
 * backend connections"), taken by the verdict from that pool, so no
 * connect latency is on the request path. conns.c opens and closes the
 * connections; this keeps the books.
 */
#ifndef H2LB_BACKEND_H
#define H2LB_BACKEND_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "h2lb.h"
#include "lifecycle.h"

struct kern;

struct ubackend {
	struct sockaddr_in addr;
	int service;	      /* index of its Service */
	bool configured;      /* in the current backend set */
	bool drain;	      /* configured, but takes no new streams */
	int pooled;	      /* legs in the pool */
	int pending;	      /* legs connecting or handshaking */
	int failures;	      /* consecutive failures */
	uint64_t retry_at_ms; /* next connect attempt after a failure */
};

struct backends {
	struct kern *k;
	struct ubackend be[H2LB_MAX_BACKENDS];
	int nr; /* indexes [0, nr) have been used */
};

/*
 * Make the backend set of Service @svc @want (@n addresses; @drain[i],
 * when given, marks those that keep their open streams but take no new
 * ones, such as terminating Kubernetes endpoints). Backends no longer
 * wanted drain; their pooled legs are the caller's to close, and their
 * index is free again once their streams have ended (backends_tick).
 */
void backends_set(struct backends *bs, int svc, const struct sockaddr_in *want,
		  const bool *drain, int n);
/* Free the indexes of removed backends whose streams have ended. */
void backends_tick(struct backends *bs);
/* How many legs to open to backend @b now, for a pool of @pool_size. */
int backends_to_open(struct backends *bs, int b, int pool_size, uint64_t now);
/* A leg of @b went from state @from to @to: the pool's counts follow. */
void backend_leg_moved(struct backends *bs, int b, enum conn_state from,
		       enum conn_state to);
/* A leg of @b joined its pool: the backend is reachable. */
void backend_pooled(struct backends *bs, int b);
/* A connect failed or a backend vanished: no new streams until a
 * connection to it handshakes again; retry soon. */
void backend_failed(struct backends *bs, int b, uint64_t now);
/* Whether @b takes part in nothing any more (index free). */
bool backend_unused(struct backends *bs, int b);

#endif
