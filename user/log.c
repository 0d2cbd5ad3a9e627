// SPDX-License-Identifier: GPL-2.0
/* Logging to stderr with a level and a monotonic timestamp. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "log.h"

int log_verbosity = LOG_INFO;

void log_msg(int level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	struct timespec ts;
	va_list ap;

	if (level > log_verbosity)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	flockfile(stderr); /* the discovery thread logs too: whole lines */
	fprintf(stderr, "h2lb[%ld.%03ld] %s: ", (long)ts.tv_sec,
		ts.tv_nsec / 1000000, names[level]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	funlockfile(stderr);
}
