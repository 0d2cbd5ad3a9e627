/* SPDX-License-Identifier: GPL-2.0 */
/*
 * --leg-source client: an intercepted client's legs connect from its own
 * address and port, so that backends (their logs, NetworkPolicy, limits
 * per client) see the client rather than the node. Such legs cannot be
 * made before the client comes, so there is no pool for them: at accept
 * the daemon opens legs to up to --client-legs ready backends of the
 * client's Service, and admits the client (its bytes wait in its own TCP
 * receive queue until then) when the first has handshaken; conns.c does
 * that. Its streams then go only to backends it has a leg to
 * (bpf/select.bpf.c). This module chooses the backends.
 */
#ifndef H2LB_CLIENT_LEGS_H
#define H2LB_CLIENT_LEGS_H

#include "core.h"

/* The backends client @c should open a leg to now, at most @max of them,
 * into @out: ready backends of its Service it has no leg to, until it has
 * --client-legs. Returns how many. */
int client_legs_choose(struct lb *lb, const struct uconn *c, int *out, int max);

#endif
