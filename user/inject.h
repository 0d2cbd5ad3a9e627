/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The injector: everything the daemon sends to a peer goes through here
 * (docs/kernel-facts.md K6).
 */
#ifndef H2LB_INJECT_H
#define H2LB_INJECT_H

#include <stddef.h>
#include <stdint.h>

struct kern;

struct injector {
	int tx_fd;	 /* we write here */
	int rx_fd;	 /* the other end, in the sockhash */
	uint64_t cookie; /* of rx_fd */
	uint64_t bytes;	 /* written, pseudo frames included */
	uint64_t frames; /* writes (one or more frames each) */
};

int injector_open(struct injector *inj, struct kern *k);
void injector_close(struct injector *inj);
/* Send @len bytes of whole frames to the socket @target. */
int inject(struct injector *inj, uint64_t target, const void *frames,
	   size_t len);

/* Write @len bytes of whole frames straight to socket @fd, which must
 * not be in the sockhash yet (nothing else can write to it). */
int inject_direct(struct injector *inj, int fd, const void *frames, size_t len);

#endif
