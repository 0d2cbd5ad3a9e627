// SPDX-License-Identifier: GPL-2.0
/*
 * TCP's node-wide memory count. /proc/net/sockstat shows the count of
 * the protocol (one for the node, whichever namespace reads it), and
 * /proc/sys/net/ipv4/tcp_mem the marks the kernel holds it to.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tcpmem.h"

int tcpmem_pages(uint64_t *pages)
{
	FILE *f = fopen("/proc/net/sockstat", "re");
	char line[256];
	int ret = -1;

	if (!f)
		return -1;
	/* "TCP: inuse 1 orphan 0 tw 0 alloc 42 mem 27152" */
	while (fgets(line, sizeof(line), f)) {
		const char *m;

		if (strncmp(line, "TCP:", 4))
			continue;
		m = strstr(line, " mem ");
		if (m && sscanf(m, " mem %" SCNu64, pages) == 1)
			ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

/* What the kernel sets net.ipv4.tcp_mem's first mark to at boot
 * (tcp_init_mem: 3/4 of 1/16 of the free buffer pages), from MemTotal:
 * 0.5% above it on the machine measured (docs/kernel-facts.md K23). */
static int pressure_estimate(uint64_t *pages)
{
	FILE *f = fopen("/proc/meminfo", "re");
	uint64_t kib;
	char line[256];
	int ret = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %" SCNu64 " kB", &kib) == 1) {
			*pages = kib / (sysconf(_SC_PAGESIZE) >> 10) * 3 / 64;
			ret = 0;
			break;
		}
	fclose(f);
	return ret;
}

int tcpmem_pressure_pages(uint64_t *pages, bool *estimated)
{
	/* Only the initial network namespace shows it (the DaemonSet's,
	 * with hostNetwork); anywhere else, estimate it. */
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_mem", "re");
	int ret = -1;

	*estimated = false;
	if (f) {
		if (fscanf(f, "%" SCNu64, pages) == 1)
			ret = 0;
		fclose(f);
	}
	if (ret) {
		*estimated = true;
		ret = pressure_estimate(pages);
	}
	return ret;
}
