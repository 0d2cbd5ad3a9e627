/* SPDX-License-Identifier: GPL-2.0 */
/*
 * After events were lost (the kernel's event_drops grew), the daemon's
 * connections are compared with their sockets and the kernel's records,
 * and both are repaired (docs/datapath.md, "Lost events").
 */
#ifndef H2LB_RECONCILE_H
#define H2LB_RECONCILE_H

#include <stdint.h>

#include "core.h"

struct reconcile {
	uint64_t drops;	     /* event_drops at the last pass */
	uint64_t last_ms;    /* the last pass */
	uint64_t confirm_ms; /* a pass due to confirm stale records, or 0 */
	uint64_t *stale;     /* kernel records of no connection, last pass */
	int nr_stale;
};

/* Each tick: a pass if events were lost since the last one (at most one
 * a second), or to confirm the stale records the last pass saw. */
void reconcile_tick(struct reconcile *r, struct lb *lb);
void reconcile_free(struct reconcile *r);

#endif
