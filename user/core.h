/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the connection layer works with: the kernel, the injector, the
 * connection table and the backend set, and the options. One per daemon
 * (daemon.c); the layers above conns.c take it too.
 */
#ifndef H2LB_CORE_H
#define H2LB_CORE_H

#include <stdbool.h>

#include "backend.h"
#include "clock.h"
#include "conn.h"
#include "h2lb.h"
#include "inject.h"
#include "opts.h"

struct kern;

/* qsort() and bsearch() over uint64_t (cookies). */
static inline int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

#define LB_GONE_MAX 4096

struct lb {
	const struct run_opts *opts;
	struct kern *k;
	struct injector inj;
	struct conn_table conns;
	struct backends bs;
	struct h2lb_daemon_stats stats;
	int epfd;      /* connecting legs are watched here, tagged by cookie */
	int nofile;    /* RLIMIT_NOFILE: the fds the daemon may have */
	int spare_fd;  /* given up to accept and close a client at EMFILE */
	bool stopping; /* graceful stop: no new legs */
	bool quit;     /* something the daemon cannot do without failed */
	unsigned long ticks; /* conns_tick calls */
	/* Streams refused since the last line that said so (conns_tick). */
	uint64_t refused_unlogged;
	uint64_t refused_log_ms;
	/* Clients closed with streams left in the kernel, which one walk
	 * of the streams map closes for all of them (conns_sweep). */
	uint64_t gone[LB_GONE_MAX];
	int n_gone;
};

#endif
