/* SPDX-License-Identifier: GPL-2.0 */
/* What the BPF programs tell the daemon: each event is one input to a
 * connection's lifecycle (lifecycle.h). */
#ifndef H2LB_EVENTS_H
#define H2LB_EVENTS_H

#include <stdbool.h>
#include <stddef.h>

#include "core.h"

/* The kern_opts.on_event callback; @ctx is the struct lb. */
void events_handle(void *ctx, const struct h2lb_event *ev, size_t len);
/* Handle a batch of events (the events ring's fd is readable); true if
 * the batch was full: more may wait. */
bool events_poll(struct lb *lb);
/* Handle a batch of closes (the closes ring's fd is readable); the same. */
bool events_poll_closes(struct lb *lb);

#endif
