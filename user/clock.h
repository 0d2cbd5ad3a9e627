/* SPDX-License-Identifier: GPL-2.0 */
#ifndef H2LB_CLOCK_H
#define H2LB_CLOCK_H

#include <stdint.h>

/* Milliseconds on the monotonic clock: deadlines and ticks. */
uint64_t now_ms(void);

#endif
