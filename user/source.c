// SPDX-License-Identifier: GPL-2.0
/*
 * Legs that connect from the client's own address and port. The kernel
 * lets a socket bind a non-local address with IP_TRANSPARENT (and
 * CAP_NET_ADMIN); the replies reach it because steer.c's nftables rule
 * marks packets of established transparent sockets and the mark's
 * routing rule delivers them locally (docs/datapath.md, "Backends see
 * the client").
 */
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "source.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

int source_socket(const struct sockaddr_in *from)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1, err;

	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (!from->sin_port && setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT,
					   &one, sizeof(one))) ||
	    bind(fd, (const struct sockaddr *)from, sizeof(*from))) {
		err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}
