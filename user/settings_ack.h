/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A client's SETTINGS: its stream window size relayed to its legs, and
 * our ACK sent in the order RFC 9113 6.5.3 asks. Until our ACK reaches
 * it, a client may hold us to the window it had before; after, to the
 * new one. A window that grows is ACKed first, then relayed; one that
 * shrinks is relayed, and ACKed once every leg told of it has ACKed it
 * (DATA its backend sent under the old value is then ahead of our ACK).
 */
#ifndef H2LB_SETTINGS_ACK_H
#define H2LB_SETTINGS_ACK_H

#include "core.h"

/* Apply, relay and (now or later) ACK client @c's SETTINGS @s. 0, or the
 * HTTP/2 error code of a connection error. */
uint32_t client_settings(struct lb *lb, struct uconn *c,
			 const struct h2lb_settings_frame *s);
/* A leg of @c whose time to ACK its lowered window is up: the caller
 * fails it (GOAWAY SETTINGS_TIMEOUT; a backend may not hold its client's
 * SETTINGS hostage). NULL if none. */
struct uconn *client_settings_overdue(struct lb *lb, struct uconn *c);
/* A leg of @c ACKed, or the tick looks: the ACKs held for @c go once
 * every leg told of its lowered window has ACKed it. */
void client_settings_check(struct lb *lb, struct uconn *c);

#endif
