/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Connection windows, applied: reads the kernel's byte counts for a
 * client and its legs, asks flow.c what to grant and sends the
 * WINDOW_UPDATEs through the injector.
 */
#ifndef H2LB_WINDOW_H
#define H2LB_WINDOW_H

#include "core.h"

/* Client -> backends: widen the client's window up to its tightest leg.
 * @eager: small refills too (flow.h). */
void window_client(struct lb *lb, struct uconn *c, bool eager);
/* Backends -> client: top up the windows of the client's legs. */
void window_legs(struct lb *lb, struct uconn *c, bool eager);
/* Both directions of client @c: after a binding, a peer catching up
 * (the tick retries clients held back), or nothing moving (@eager). */
void window_refill(struct lb *lb, struct uconn *c, bool eager);
/* Tell every leg of @c the client's stream window size (its
 * SETTINGS_INITIAL_WINDOW_SIZE): stream windows are end to end. Legs
 * still due (window_relay_leg) are told when they start. With @wait,
 * each leg told sends an event once its backend has ACKed (kern.h,
 * kern_settings_sent). Returns how many legs were told. */
int window_relay(struct lb *lb, struct uconn *c, bool wait);
/* Measure the connections' shares of the node's queued bytes again, when
 * it is half full. */
void window_queued_refresh(struct lb *lb);
/* @leg was just bound: it is due, told its client's value when that is
 * known and the client's window has room for it (window_legs). */
void window_relay_leg(struct lb *lb, struct uconn *leg);
/* Have the kernel look at where @c's sending stands now (a client on the
 * fast path's response direction), then read its record into @fresh. */
int window_measure(struct lb *lb, struct uconn *c, struct h2lb_conn *fresh);

#endif
