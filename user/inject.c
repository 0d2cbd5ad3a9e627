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

static int so_cookie(int fd, uint64_t *cookie)
{
	socklen_t len = sizeof(*cookie);

	return getsockopt(fd, SOL_SOCKET, SO_COOKIE, cookie, &len);
}

int injector_open(struct injector *inj, struct kern *k)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int lfd, rx = -1, tx = -1, sndbuf = 4 << 20, one = 1;

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(lfd, 1) || getsockname(lfd, (struct sockaddr *)&a, &alen))
		goto fail;
	/* The connecting end is the one sockops puts in the sockhash. */
	if (kern_endpoint_set(k, &a, H2LB_ROLE_INJECTOR, 0, true))
		goto fail;
	rx = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (rx < 0 || connect(rx, (struct sockaddr *)&a, sizeof(a)))
		goto fail;
	tx = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (tx < 0 || so_cookie(rx, &inj->cookie))
		goto fail;
	kern_endpoint_set(k, &a, H2LB_ROLE_INJECTOR, 0, false);
	setsockopt(tx, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	setsockopt(tx, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	close(lfd);
	inj->tx_fd = tx;
	inj->rx_fd = rx; /* open for the daemon's lifetime */
	return 0;
fail:
	pr_err("injector socket: %s", strerror(errno));
	if (rx >= 0)
		close(rx);
	if (lfd >= 0)
		close(lfd);
	if (tx >= 0)
		close(tx);
	return -1;
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
