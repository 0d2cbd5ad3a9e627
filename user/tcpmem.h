/* SPDX-License-Identifier: GPL-2.0 */
#ifndef H2LB_TCPMEM_H
#define H2LB_TCPMEM_H

#include <stdbool.h>
#include <stdint.h>

/*
 * TCP's memory count for the whole node: what the kernel compares with
 * net.ipv4.tcp_mem, in pages. The fast path's ingress loses some of it
 * for good (docs/kernel-facts.md K23), so the daemon watches it.
 */

/* The "mem" of /proc/net/sockstat's TCP line: 0, or -1 if unreadable. */
int tcpmem_pages(uint64_t *pages);
/* net.ipv4.tcp_mem's first mark (pressure begins), in pages: 0, or -1.
 * @estimated: it was not visible here (a network namespace other than
 * the node's), and this is what the kernel would have set at boot. */
int tcpmem_pressure_pages(uint64_t *pages, bool *estimated);

#endif
