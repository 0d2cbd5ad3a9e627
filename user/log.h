/* SPDX-License-Identifier: GPL-2.0 */
#ifndef H2LB_LOG_H
#define H2LB_LOG_H

enum log_level { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern int log_verbosity;

void log_msg(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define pr_err(...)   log_msg(LOG_ERR, __VA_ARGS__)
#define pr_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define pr_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define pr_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
