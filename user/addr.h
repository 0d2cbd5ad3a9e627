/* SPDX-License-Identifier: GPL-2.0 */
#ifndef H2LB_ADDR_H
#define H2LB_ADDR_H

#include <netinet/in.h>
#include <stddef.h>

/* Parse "A.B.C.D:PORT". Returns 0, or -1 with a message in @err. */
int addr_parse(const char *s, struct sockaddr_in *out, char *err,
	       size_t errlen);
/* Parse a comma-separated list into @out (at most @max). Returns the
 * count, or -1 with a message in @err. */
int addr_parse_list(const char *s, struct sockaddr_in *out, int max, char *err,
		    size_t errlen);
/* One address per line; '#' starts a comment, blank lines are skipped. */
int addr_parse_file(const char *path, struct sockaddr_in *out, int max,
		    char *err, size_t errlen);
/* "A.B.C.D:PORT" into @buf (at least 22 bytes). */
const char *addr_str(const struct sockaddr_in *a, char *buf, size_t len);

#endif
