// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for the ejected backends' backoff (user/backoff.c): it
 * doubles from the base to the cap, the jitter stays within its bounds
 * and spans them, and nothing overflows however many failures there were.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backoff.h"

#define MID 0x80000000u /* the middle of the jitter: no jitter */

static void test_doubles_to_cap(void **state)
{
	assert_int_equal(backoff_ms(0, MID), 0);
	assert_int_equal(backoff_ms(1, MID), 200);
	assert_int_equal(backoff_ms(2, MID), 400);
	assert_int_equal(backoff_ms(3, MID), 800);
	assert_int_equal(backoff_ms(4, MID), BACKOFF_MAX_MS);
	assert_int_equal(backoff_ms(7, MID), BACKOFF_MAX_MS);
	assert_int_equal(backoff_ms(8, MID), BACKOFF_MAX_MS);
}

static void test_jitter_bounds(void **state)
{
	for (unsigned int f = 1; f < 12; f++) {
		uint32_t mid = backoff_ms(f, MID);
		uint32_t lo = backoff_ms(f, 0), hi = backoff_ms(f, UINT32_MAX);

		assert_int_equal(lo, mid - mid * BACKOFF_JITTER / 100);
		assert_true(hi < mid + mid * BACKOFF_JITTER / 100);
		assert_true(hi + 1 >= mid + mid * BACKOFF_JITTER / 100);
		for (uint64_t r = 0; r <= UINT32_MAX; r += 0x01000193) {
			uint32_t ms = backoff_ms(f, r);

			assert_true(ms >= lo && ms <= hi);
		}
	}
}

/* Monotonic in the random draw: each value is as likely as its share. */
static void test_jitter_monotonic(void **state)
{
	uint32_t prev = 0;

	for (uint64_t r = 0; r <= UINT32_MAX; r += 0x00100001) {
		uint32_t ms = backoff_ms(4, r);

		assert_true(ms >= prev);
		prev = ms;
	}
}

static void test_many_failures(void **state)
{
	assert_true(backoff_ms(64, UINT32_MAX) <= BACKOFF_MAX_MS * 6 / 5);
	assert_true(backoff_ms(1000000, 0) >= BACKOFF_MAX_MS * 4 / 5);
	assert_true(backoff_ms(~0u, MID) == BACKOFF_MAX_MS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_doubles_to_cap),
		cmocka_unit_test(test_jitter_bounds),
		cmocka_unit_test(test_jitter_monotonic),
		cmocka_unit_test(test_many_failures),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
