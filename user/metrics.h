/* SPDX-License-Identifier: GPL-2.0 */
/* Prometheus text metrics on --metrics ADDR:PORT (/metrics), /healthz,
 * served by a thread of their own (metrics.c says why). */
#ifndef H2LB_METRICS_H
#define H2LB_METRICS_H

#include <netinet/in.h>

#include "core.h"
#include "services.h"

struct metrics;

/* Listen on @at and start the server's thread; NULL if not (logged).
 * @k and @opts must outlive it. */
struct metrics *metrics_start(const struct sockaddr_in *at, struct kern *k,
			      const struct run_opts *opts);
/* The fd the event loop watches: readable when the thread wants a
 * snapshot, which metrics_publish gives. */
int metrics_fd(const struct metrics *m);
/* From the event loop: the loop's state /metrics shows. Never waits (the
 * fd stays readable if the thread was busy). */
void metrics_publish(struct metrics *m, const struct lb *lb,
		     const struct services *sv);
/* From the event loop, at each tick: the heartbeat /healthz looks at. */
void metrics_beat(struct metrics *m);
/* Stop the thread and close its sockets; NULL is fine. */
void metrics_stop(struct metrics *m);

#endif
