// SPDX-License-Identifier: GPL-2.0
/* Address parsing for --listen, --backends and --backends-file. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

int addr_parse(const char *s, struct sockaddr_in *out, char *err, size_t errlen)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(host)) {
		snprintf(err, errlen, "'%s': expected ADDR:PORT", s);
		return -1;
	}
	memcpy(host, s, colon - s);
	host[colon - s] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || port < 1 || port > 65535) {
		snprintf(err, errlen, "'%s': port must be 1-65535", s);
		return -1;
	}
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	out->sin_port = htons(port);
	if (inet_pton(AF_INET, host, &out->sin_addr) != 1) {
		snprintf(err, errlen, "'%s': not an IPv4 address", host);
		return -1;
	}
	return 0;
}

static int add_unique(struct sockaddr_in *out, int n, int max,
		      const struct sockaddr_in *a, char *err, size_t errlen)
{
	for (int i = 0; i < n; i++)
		if (out[i].sin_addr.s_addr == a->sin_addr.s_addr &&
		    out[i].sin_port == a->sin_port)
			return n; /* duplicates are harmless: keep one */
	if (n >= max) {
		snprintf(err, errlen, "too many backends (at most %d)", max);
		return -1;
	}
	out[n] = *a;
	return n + 1;
}

int addr_parse_list(const char *s, struct sockaddr_in *out, int max, char *err,
		    size_t errlen)
{
	char *copy = strdup(s), *save = NULL, *tok;
	int n = 0;

	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (tok = strtok_r(copy, ",", &save); tok && n >= 0;
	     tok = strtok_r(NULL, ",", &save)) {
		struct sockaddr_in a;

		if (addr_parse(tok, &a, err, errlen))
			n = -1;
		else
			n = add_unique(out, n, max, &a, err, errlen);
	}
	free(copy);
	if (n == 0) {
		snprintf(err, errlen, "no backend address given");
		return -1;
	}
	return n;
}

int addr_parse_file(const char *path, struct sockaddr_in *out, int max,
		    char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char line[256];
	int n = 0, lineno = 0;

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (n >= 0 && fgets(line, sizeof(line), f)) {
		char *p = line, *e;
		struct sockaddr_in a;
		char msg[160];

		lineno++;
		if ((e = strchr(p, '#')))
			*e = '\0';
		while (isspace((unsigned char)*p))
			p++;
		e = p + strlen(p);
		while (e > p && isspace((unsigned char)e[-1]))
			*--e = '\0';
		if (!*p)
			continue;
		if (addr_parse(p, &a, msg, sizeof(msg))) {
			snprintf(err, errlen, "%s:%d: %s", path, lineno, msg);
			n = -1;
		} else {
			n = add_unique(out, n, max, &a, err, errlen);
		}
	}
	fclose(f);
	return n;
}

const char *addr_str(const struct sockaddr_in *a, char *buf, size_t len)
{
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
	snprintf(buf, len, "%s:%u", ip, ntohs(a->sin_port));
	return buf;
}
