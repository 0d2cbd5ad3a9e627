// SPDX-License-Identifier: GPL-2.0
/* Connections to ourselves on 127.0.0.1 (loopback.h). */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loopback.h"

int loopback_pair(int fds[2], loopback_mark_fn mark, void *arg)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	bool marked = false;
	int lfd, err;

	fds[0] = fds[1] = -1;
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(lfd, 1) || getsockname(lfd, (struct sockaddr *)&a, &alen))
		goto fail;
	if (mark) {
		if (mark(arg, &a, true))
			goto fail;
		marked = true;
	}
	fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fds[0] < 0 || connect(fds[0], (struct sockaddr *)&a, sizeof(a)))
		goto fail;
	fds[1] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fds[1] < 0)
		goto fail;
	if (marked)
		mark(arg, &a, false);
	close(lfd);
	return 0;
fail:
	err = errno;
	if (marked)
		mark(arg, &a, false);
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	fds[0] = fds[1] = -1;
	if (lfd >= 0)
		close(lfd);
	errno = err;
	return -1;
}
