/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Sockets that connect from another host's address: a client's own
 * (--leg-source client), so that backends see the client, not the node.
 */
#ifndef H2LB_SOURCE_H
#define H2LB_SOURCE_H

#include <netinet/in.h>

/*
 * A non-blocking TCP socket bound to @from (IP_TRANSPARENT: the address
 * is not the node's). A port of 0 leaves the port to connect(), which
 * picks one that makes the connection unique (IP_BIND_ADDRESS_NO_PORT);
 * a given port is shared with the client's other legs (SO_REUSEADDR:
 * they go to different backends). The fd, or -1 with errno set.
 */
int source_socket(const struct sockaddr_in *from);

#endif
