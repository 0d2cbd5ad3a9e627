/* SPDX-License-Identifier: GPL-2.0 */
#ifndef H2LB_OWNER_H
#define H2LB_OWNER_H

#include <stdbool.h>

/*
 * Who owns a pin directory: the process that holds an flock on
 * H2LB_LOCK_DIR/<the pin directory, '/' as '-'>.lock. The kernel drops it
 * when the owner dies, however it dies; the file keeps the owner's pid,
 * and is removed by an owner that leaves cleanly.
 */
#define H2LB_LOCK_DIR "/run/h2lb"

struct owner {
	int fd;
	char path[512];
	long prev_pid; /* in the file when taken: an owner that died */
	long holder;   /* owner_lock() failed: the pid in the file, or 0 */
};

/* Take @pin_dir's lock, waiting up to @wait_s seconds for its holder (0:
 * not at all). 0, or -1 with errno (EWOULDBLOCK: held; @o->holder). */
int owner_lock(struct owner *o, const char *pin_dir, int wait_s);
/* Remove the lock file and drop the lock. */
void owner_unlock(struct owner *o);

/* What a dead owner of a pin directory left. */
struct owner_leftovers {
	long pid;    /* whose: from its pinned stats, else the lock file */
	int cgroups; /* its cgroups h2lb-PID, programs detached, removed */
	bool steer;  /* the routing rule and route (steer.h) */
	int pins;    /* maps unpinned */
};

/* With the lock held (so no live owner): remove what the dead owner of
 * @pin_dir left: its cgroup and the sockops program on it, the routing
 * rule, route and nftables table of tc interception, the pins. Its tc and
 * cgroup links were never pinned and went with it. Nothing is done when
 * @pin_dir does not exist and @o names no dead owner. */
void owner_clean(const struct owner *o, const char *pin_dir,
		 struct owner_leftovers *out);

#endif
