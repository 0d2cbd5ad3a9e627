/* SPDX-License-Identifier: GPL-2.0 */
/* The words status, metrics and the logs use for h2lb's states and
 * counters: one vocabulary (the counters' come from include/h2lb.h). */
#ifndef H2LB_NAMES_H
#define H2LB_NAMES_H

#include <stdint.h>

#include "h2lb.h"

const char *backend_state_name(uint32_t state); /* enum h2lb_backend_state */
const char *role_name(uint32_t role);		/* enum h2lb_role */
const char *service_state_name(uint32_t state); /* enum h2lb_service_state */
const char *counter_name(int i);		/* enum h2lb_counter */
const char *counter_help(int i);
const char *event_name(int type); /* enum h2lb_event_type */
/* Name of Service @i in @svc (H2LB_MAX_SERVICES entries), or "?". */
const char *service_name(const struct h2lb_service *svc, uint32_t i);
/* Upper bound, in microseconds, of quantile @q of a log2(us) histogram. */
uint64_t latency_quantile_us(const __u64 *h, double q);

#endif
