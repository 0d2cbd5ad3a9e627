/* SPDX-License-Identifier: GPL-2.0 */
/*
 * How long an ejected backend waits before the next connection to it is
 * tried: exponential backoff with jitter, as a pure function (backend.c
 * keeps the failure count and draws the random number).
 */
#ifndef H2LB_BACKOFF_H
#define H2LB_BACKOFF_H

#include <stdint.h>

#define BACKOFF_BASE_MS 200 /* a restarted backend is back within 0.25 s */
/* A dead one costs a connect a second; a restarted one is back within
 * about a second however long it was away. */
#define BACKOFF_MAX_MS 1000
#define BACKOFF_JITTER                                                         \
	20 /* +-20 %: backends ejected together (a node's
			       * network blip) are not all retried at once */

/*
 * The wait after the @failures'th consecutive failure (1 for the first):
 * BACKOFF_BASE_MS doubled per further failure, at most BACKOFF_MAX_MS,
 * then scaled by a factor in [1 - JITTER %, 1 + JITTER %) that @rnd (any
 * 32-bit value, uniformly drawn) picks. 0 failures: 0.
 */
uint32_t backoff_ms(unsigned int failures, uint32_t rnd);

#endif
