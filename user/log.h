/* SPDX-License-Identifier: GPL-2.0 */
#ifndef H2LB_LOG_H
#define H2LB_LOG_H

#include <stdbool.h>

enum log_level { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern int log_verbosity;

void log_msg(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define pr_err(...)   log_msg(LOG_ERR, __VA_ARGS__)
#define pr_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define pr_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define pr_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/*
 * One call site's budget: at most LOG_RATELIMIT_BURST lines per
 * LOG_RATELIMIT_MS; the lines over it are counted, and said in one line
 * when the site next logs. A peer that can make the daemon warn once per
 * connection or stream must not be able to fill the disk, or spend the
 * daemon's CPU on writing lines.
 */
#define LOG_RATELIMIT_MS    1000
#define LOG_RATELIMIT_BURST 10

struct log_ratelimit {
	unsigned long long start_ms;
	unsigned int lines, suppressed;
};

/* May the site of @rl log now? (@where names it in the suppressed line.) */
bool log_ratelimit(struct log_ratelimit *rl, const char *where);

/* pr_warn for anything a peer can cause once per connection or stream. */
#define pr_warn_ratelimited(...)                                               \
	do {                                                                   \
		static struct log_ratelimit rl_;                               \
		if (log_ratelimit(&rl_, __func__))                             \
			log_msg(LOG_WARN, __VA_ARGS__);                        \
	} while (0)

#endif
