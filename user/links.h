/* SPDX-License-Identifier: GPL-2.0 */
/* The network devices of the current namespace (links.c). */
#ifndef H2LB_LINKS_H
#define H2LB_LINKS_H

#include <net/if.h>

struct link {
	int ifindex;
	int master; /* ifindex of its bridge (or bond), 0 if none */
	char name[IF_NAMESIZE];
	unsigned char mac[6]; /* its hardware address, if it has one */
};

/* Fill @out with at most @max devices; returns how many, or -1. */
int links_list(struct link *out, int max);

#endif
