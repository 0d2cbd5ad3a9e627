/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What happens to the daemon's connections: every input (lifecycle.h)
 * goes through conn_input(), which takes the transition lifecycle.c gives
 * and carries out its actions. The daemon holds the sockets but never
 * reads them (docs/kernel-facts.md K7); it learns what happens on them
 * from BPF events and speaks to them only through the injector.
 */
#ifndef H2LB_CONNS_H
#define H2LB_CONNS_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"

/* What an input carries. */
struct input_arg {
	/* REFUSED, STREAM_*: the stream; GOAWAY, ERROR: the last stream */
	uint32_t stream;
	/* ERROR, GOAWAY, STREAM_ERROR: error code; WINDOW, STREAM_WINDOW:
	 * increment */
	uint32_t value;
	const struct h2lb_settings_frame *settings; /* SETTINGS */
	struct uconn *client; /* BOUND: the client the leg now serves */
	uint64_t other;	      /* STREAM_ERROR: the stream's other side */
	const uint8_t *ping;  /* PING: its 8-byte payload */
	const char *why;      /* ERROR: the rule broken, for the log and the
			       * GOAWAY's debug data (or NULL) */
};

void conn_input(struct lb *lb, struct uconn *c, enum conn_input in,
		const struct input_arg *arg);
/* Close the kernel's streams of the clients closed since the last call. */
void conns_sweep(struct lb *lb);

/* New clients on listener @fd of Service @svc (a bounded batch); with
 * @own_legs, their legs connect from their own addresses (client_legs.h). */
void conns_accept(struct lb *lb, int fd, int svc, bool own_legs);
/* Open a leg to backend @b: a pooled one from the node's address, or with
 * @owner, one of that client's own from its address. NULL if none. */
struct uconn *conns_open_leg(struct lb *lb, int b, struct uconn *owner);
/* For the backends' error books (backend.h): whether client @cookie is
 * still served, not cut off. @ctx is the struct lb. */
bool conns_client_in_good_standing(void *ctx, uint64_t cookie);
/* The connect() of leg @cookie completed, or failed. */
void conns_connected(struct lb *lb, uint64_t cookie);
/* Socket @cookie, watched by the loop, is ready: a leg's connect() ended,
 * or an admitting client sent bytes. */
void conns_ready(struct lb *lb, uint64_t cookie);
/* Every 50 ms: deadlines, legs gone idle, the watchdog, held windows,
 * the pools. */
void conns_tick(struct lb *lb);
/* Pooled legs of backends that are no longer configured go. */
void conns_prune(struct lb *lb);
/* The daemon stops: client @c is told to go away (GOAWAY NO_ERROR). */
void conns_stop_client(struct lb *lb, struct uconn *c);
/* Everything goes (teardown). */
void conns_close_all(struct lb *lb);

#endif
