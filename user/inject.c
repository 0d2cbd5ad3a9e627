// SPDX-License-Identifier: GPL-2.0
/*
 * The injector: a loopback TCP pair whose receiving end is in the
 * sockhash. Everything the daemon sends to a peer is written here,
 * preceded by a TARGET pseudo frame, and the verdict redirects it to the
 * target's egress. A direct write() to a socket that is also a redirect
 * target can land inside a redirected frame (docs/kernel-facts.md K6);
 * through
 * the injector, all writes to one socket share one queue.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/tcp.h>
#include <sys/uio.h>
#include <unistd.h>

#include "h2.h"
#include "inject.h"
#include "kern.h"
#include "log.h"
#include "loopback.h"

static int so_cookie(int fd, uint64_t *cookie)
{
	socklen_t len = sizeof(*cookie);

	return getsockopt(fd, SOL_SOCKET, SO_COOKIE, cookie, &len);
}

/* The connecting end is the one sockops puts in the sockhash. */
static int mark_injector(void *k, const struct sockaddr_in *a, bool on)
{
	return kern_endpoint_set(k, a, H2LB_ROLE_INJECTOR, 0, on);
}

int injector_open(struct injector *inj, struct kern *k)
{
	int fds[2], sndbuf = 4 << 20, one = 1;

	if (loopback_pair(fds, mark_injector, k) ||
	    so_cookie(fds[0], &inj->cookie)) {
		pr_err("injector socket: %s", strerror(errno));
		if (fds[0] >= 0) {
			close(fds[0]);
			close(fds[1]);
		}
		return -1;
	}
	setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	setsockopt(fds[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	inj->tx_fd = fds[1];
	inj->rx_fd = fds[0]; /* open for the daemon's lifetime */
	return 0;
}

void injector_close(struct injector *inj)
{
	if (inj->tx_fd >= 0)
		close(inj->tx_fd);
	if (inj->rx_fd >= 0)
		close(inj->rx_fd);
	inj->tx_fd = inj->rx_fd = -1;
}

int inject(struct injector *inj, uint64_t target, const void *frames,
	   size_t len)
{
	uint8_t hdr[H2_HDR_LEN + 8];
	struct iovec iov[2] = {
		{ .iov_base = hdr, .iov_len = h2_target(hdr, target) },
		{ .iov_base = (void *)frames, .iov_len = len },
	};
	size_t total = iov[0].iov_len + len, done = 0;

	while (done < total) {
		ssize_t n = writev(inj->tx_fd, iov, 2);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			pr_err("injector write: %s", strerror(errno));
			return -1;
		}
		done += n;
		/* Partial write: advance the iovecs past what went out. */
		for (int i = 0; i < 2; i++) {
			size_t step = (size_t)n < iov[i].iov_len
					      ? (size_t)n
					      : iov[i].iov_len;

			iov[i].iov_base = (uint8_t *)iov[i].iov_base + step;
			iov[i].iov_len -= step;
			n -= step;
		}
	}
	inj->bytes += total;
	inj->frames++;
	return 0;
}

int inject_direct(struct injector *inj, int fd, const void *frames, size_t len)
{
	/* A fresh connection's send buffer takes a few small frames
	 * whole; a short write means the socket is broken. */
	if (write(fd, frames, len) != (ssize_t)len)
		return -1;
	inj->bytes += len;
	inj->frames++;
	return 0;
}
