/* SPDX-License-Identifier: GPL-2.0 */
/*
 * TCP connections from 127.0.0.1 to itself: the daemon's own sockets that
 * the kernel's programs redirect through (the injector, the fast path's
 * sink).
 */
#ifndef H2LB_LOOPBACK_H
#define H2LB_LOOPBACK_H

#include <netinet/in.h>
#include <stdbool.h>

/* Called with the address the connecting end is to reach: @on before it
 * connects, !@on once the connection is made. 0 or -1. */
typedef int (*loopback_mark_fn)(void *arg, const struct sockaddr_in *a,
				bool on);

/*
 * One connection: @fds[0] the connecting end, @fds[1] the accepted one,
 * both close-on-exec; the listening socket is gone when this returns.
 * @mark (may be NULL) lets sockops know the connecting end before it
 * exists. 0, or -1 with errno set and nothing left open.
 */
int loopback_pair(int fds[2], loopback_mark_fn mark, void *arg);

#endif
