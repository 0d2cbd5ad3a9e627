/* SPDX-License-Identifier: GPL-2.0 */
#ifndef H2LB_CGROUP_H
#define H2LB_CGROUP_H

#include <limits.h>

/* A child cgroup (v2) that holds the daemon alone: its sockops program is
 * attached there, so it sees the daemon's sockets and nobody else's. */
struct h2lb_cgroup {
	char path[PATH_MAX];
	char parent[PATH_MAX];
	char mounted[PATH_MAX]; /* set when we mounted cgroup2 ourselves */
	int fd;
};

int cgroup_enter(struct h2lb_cgroup *cg, const char *name);
void cgroup_leave(struct h2lb_cgroup *cg);
/* Mount bpffs on @dir unless it is one already. */
int bpffs_ensure(const char *dir);

#endif
