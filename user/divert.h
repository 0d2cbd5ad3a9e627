/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Frames for legs written synchronously (docs/fast-path.md, "The request
 * direction"): the verdict hands them to the daemon (H2LB_EV_DIVERT).
 */
#ifndef H2LB_DIVERT_H
#define H2LB_DIVERT_H

#include "h2lb.h"

struct lb;
struct uconn;

/* A frame the kernel handed back for @leg. */
void divert_take(struct lb *lb, struct uconn *leg, const struct h2lb_event *ev);
/* Frames for @leg, after what waits for it: those the kernel handed
 * back, and the daemon's own for a leg it knows to be written
 * synchronously (H2LB_CONN_LEG_FAST), which so skip the round trip
 * through the injector and back. */
void divert_send(struct lb *lb, struct uconn *leg, const void *f, size_t n);
/* Send what waits for @leg, if it can go now (the tick tries again). */
void divert_flush(struct lb *lb, struct uconn *leg);

#endif
