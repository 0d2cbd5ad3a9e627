// SPDX-License-Identifier: GPL-2.0
/* Logging to stderr with a level and a monotonic timestamp. */
#include <stdarg.h>
#include <stdbool.h>
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

bool log_ratelimit(struct log_ratelimit *rl, const char *where)
{
	struct timespec ts;
	unsigned long long now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = ts.tv_sec * 1000ull + ts.tv_nsec / 1000000;
	if (now - rl->start_ms >= LOG_RATELIMIT_MS) {
		if (rl->suppressed)
			log_msg(LOG_WARN, "%s: %u similar messages suppressed",
				where, rl->suppressed);
		rl->start_ms = now;
		rl->lines = rl->suppressed = 0;
	}
	if (rl->lines < LOG_RATELIMIT_BURST) {
		rl->lines++;
		return true;
	}
	rl->suppressed++;
	return false;
}
