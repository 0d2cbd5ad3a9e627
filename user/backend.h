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
#include "kern.h"
#include "lifecycle.h"

struct kern;

/*
 * A backend that sends GOAWAY with an error code on the legs of
 * BACKEND_ERR_CLIENTS different clients within BACKEND_ERR_WINDOW_MS is
 * failing, not its clients: it is ejected. One client's errors are that
 * client's matter (conns.c cuts it off), and a client cut off for them
 * is not counted: so BACKEND_ERR_MIN_AGE_MS passes before an error
 * counts, time for the client's other legs to tell.
 */
#define BACKEND_ERR_CLIENTS    3
#define BACKEND_ERR_WINDOW_MS  5000
#define BACKEND_ERR_MIN_AGE_MS 250

struct ubackend {
	struct sockaddr_in addr;
	int service;	       /* index of its Service */
	bool configured;       /* in the current backend set */
	bool drain;	       /* configured, but takes no new streams */
	int pooled;	       /* legs in the pool */
	int pending;	       /* legs connecting or handshaking */
	bool ejected;	       /* failed: no new streams until a handshake */
	bool for_errors;       /* the last ejection was for errors (below) */
	int failures;	       /* consecutive failures: the backoff's step */
	uint32_t backoff_ms;   /* the wait after the last failure */
	uint64_t retry_at_ms;  /* next connect attempt after a failure */
	uint64_t stable_at_ms; /* re-admitted after errors: when the
				* failures count may start over */
	/* Error GOAWAYs on legs of different clients: each client's
	 * first in the window (backends_check_errors). */
	struct {
		uint64_t client, at_ms;
	} err[BACKEND_ERR_CLIENTS];
};

struct backends {
	struct kern *k;
	struct ubackend be[H2LB_MAX_BACKENDS];
	int nr;		     /* indexes [0, nr) have been used */
	int hint;	     /* no index below it is free (free_backend) */
	unsigned long freed; /* indexes freed by backends_tick, in all */
	/* Each Service's removed backends still draining (not configured,
	 * not yet unused): the ones its set may want back. */
	int removed[H2LB_MAX_SERVICES];
};

/* What backends_set left out of a Service's set: over its cap
 * (--max-backends-per-service), or with no index free (--max-backends). */
struct backends_left {
	int over_cap, no_slot;
};

/*
 * Make the backend set of Service @svc @want (@n addresses; @drain[i],
 * when given, marks those that keep their open streams but take no new
 * ones, such as terminating Kubernetes endpoints). Backends no longer
 * wanted drain; their pooled legs are the caller's to close, and their
 * index is free again once their streams have ended (backends_tick).
 */
void backends_set(struct backends *bs, int svc, const struct sockaddr_in *want,
		  const bool *drain, int n, struct backends_left *left);

/* Each configured backend @b of Service @svc, from its list in the
 * kernel (the one a pick scans): what the Service has, not every index
 * the node uses. */
#define for_each_svc_backend(bs, svc, j, b)                                    \
	for (uint32_t j = 0, n_##j = kern_svc_nr((bs)->k, (svc));              \
	     j < n_##j && ((b) = kern_svc_at((bs)->k, (svc), j), 1); j++)
/* Free the indexes of removed backends whose streams have ended. */
void backends_tick(struct backends *bs);
/* How many legs to open to backend @b now, for a pool of @pool_size: an
 * ejected backend gets one at a time, once its backoff has passed, even
 * when its pool is full (its handshake re-admits the backend). */
int backends_to_open(struct backends *bs, int b, int pool_size, uint64_t now);
/* A leg of @b went from state @from to @to: the pool's counts follow. */
void backend_leg_moved(struct backends *bs, int b, enum conn_state from,
		       enum conn_state to);
/* A leg of @b handshook (its SETTINGS came) at @now: the backend works;
 * if it was ejected, it takes new streams again, and its backoff starts
 * over (after errors across clients: once it has served
 * BACKEND_ERR_WINDOW_MS without failing again). */
void backend_handshaken(struct backends *bs, int b, uint64_t now);
/*
 * Backend @b failed on its own (@why: a connect failed, no handshake in
 * time, an idle pooled leg closed, errors across clients): ejected, no
 * new streams until a connection to it handshakes again, tried after an
 * exponential backoff (backoff.h). Failures while the backoff runs are
 * the same outage (a dead backend's pooled legs all close at once) and
 * do not lengthen it.
 */
void backend_failed(struct backends *bs, int b, uint64_t now, const char *why);
/* A leg of @b bound to client @client got GOAWAY with an error code that
 * does not name the client's frames (INTERNAL_ERROR, say). @good says
 * whether a client is in good standing (served, not cut off). */
void backend_leg_error(struct backends *bs, int b, uint64_t client,
		       uint64_t now, bool (*good)(void *ctx, uint64_t client),
		       void *ctx);
/* How many clients other than @exclude, in good standing (@good says,
 * from the connection table), had a leg error from @b in the window, at
 * least @min_age ms ago. */
int backend_error_clients(struct backends *bs, int b, uint64_t now,
			  uint64_t min_age, uint64_t exclude,
			  bool (*good)(void *ctx, uint64_t client), void *ctx);
/* Eject the backends whose leg errors hit BACKEND_ERR_CLIENTS clients in
 * good standing (@good says, from the connection table) in time; reset
 * the failure count of those that served well since. Each tick. */
void backends_check_errors(struct backends *bs, uint64_t now,
			   bool (*good)(void *ctx, uint64_t client), void *ctx);
/* Whether @b takes part in nothing any more (index free). */
bool backend_unused(struct backends *bs, int b);

#endif
