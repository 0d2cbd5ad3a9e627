// SPDX-License-Identifier: GPL-2.0
/* Exponential backoff with jitter (backoff.h). */
#include "backoff.h"

uint32_t backoff_ms(unsigned int failures, uint32_t rnd)
{
	uint64_t ms = BACKOFF_BASE_MS, span;

	if (!failures)
		return 0;
	/* Double until the cap; the loop bound keeps the shift defined. */
	for (unsigned int i = 1; i < failures && ms < BACKOFF_MAX_MS; i++)
		ms *= 2;
	if (ms > BACKOFF_MAX_MS)
		ms = BACKOFF_MAX_MS;
	/* ms * (1 - J) + rnd / 2^32 * ms * 2J, in integers. */
	span = ms * 2 * BACKOFF_JITTER / 100;
	return ms - ms * BACKOFF_JITTER / 100 + ((span * rnd) >> 32);
}
