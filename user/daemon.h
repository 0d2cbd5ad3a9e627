/* SPDX-License-Identifier: GPL-2.0 */
/* `h2lb run`: the daemon. */
#ifndef H2LB_DAEMON_H
#define H2LB_DAEMON_H

#include "opts.h"

int daemon_run(const struct run_opts *opts);

#endif
