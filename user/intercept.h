/* SPDX-License-Identifier: GPL-2.0 */
/* Taking connections to Service VIPs: `run --intercept tc|cgroup`. */
#ifndef H2LB_INTERCEPT_H
#define H2LB_INTERCEPT_H

#include "opts.h"

struct intercept;
struct kern;

/* NULL without --intercept, or on failure (logged; then errno is set). */
struct intercept *intercept_start(struct kern *k, const struct run_opts *o);
/* tc: attach to devices that appeared (once a second). */
void intercept_tick(struct intercept *ic);
void intercept_stop(struct intercept *ic);

#endif
