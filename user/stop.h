/* SPDX-License-Identifier: GPL-2.0 */
/* Graceful stop (the first SIGTERM or SIGINT; a second one stops at once). */
#ifndef H2LB_STOP_H
#define H2LB_STOP_H

#include <stdbool.h>

#include "core.h"
#include "services.h"

struct stop {
	bool stopping;
	uint64_t until_ms;
};

void stop_start(struct stop *st, struct lb *lb, struct services *sv);
/* Each tick while stopping: true once no stream is left, or the time is
 * up: the daemon may exit. */
bool stop_tick(struct stop *st, struct lb *lb);

#endif
