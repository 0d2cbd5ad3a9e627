// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for admission (user/admission.c): which first bytes of a
 * client make it HTTP/2, which make it something else, and when a client
 * that says too little stops being waited for.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "admission.h"
#include "h2.h"

static enum admission decide(const char *first, size_t len, uint64_t waited)
{
	struct admission_facts f = { .first = (const uint8_t *)first,
				     .len = len,
				     .waited_ms = waited,
				     .timeout_ms = 1000 };

	return admission_decide(&f);
}

static void test_preface(void **state)
{
	assert_int_equal(decide(H2_PREFACE, H2_PREFACE_LEN, 0), ADMIT_HTTP2);
	/* A prefix: wait for the rest, until the timeout. */
	assert_int_equal(decide(H2_PREFACE, 1, 0), ADMIT_WAIT);
	assert_int_equal(decide(H2_PREFACE, 23, 999), ADMIT_WAIT);
	assert_int_equal(decide(H2_PREFACE, 23, 1000), ADMIT_RAW);
	/* The whole preface wins over the timeout. */
	assert_int_equal(decide(H2_PREFACE, H2_PREFACE_LEN, 5000), ADMIT_HTTP2);
}

static void test_not_http2(void **state)
{
	const char hello[] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01 };

	/* A TLS ClientHello, at its first byte. */
	assert_int_equal(decide(hello, 1, 0), ADMIT_RAW);
	assert_int_equal(decide(hello, sizeof(hello), 0), ADMIT_RAW);
	/* HTTP/1.1: "PUT" parts from "PRI" at its second byte, "POST" at its
	 * first; a request line that matches the preface for a while. */
	assert_int_equal(decide("P", 1, 0), ADMIT_WAIT);
	assert_int_equal(decide("PU", 2, 0), ADMIT_RAW);
	assert_int_equal(decide("GET / HTTP/1.1\r\n", 16, 0), ADMIT_RAW);
	assert_int_equal(decide("PRI * HTTP/1.1\r\n\r\n", 18, 0), ADMIT_RAW);
	/* Silent: a server-first protocol, once the timeout passed. */
	assert_int_equal(decide("", 0, 999), ADMIT_WAIT);
	assert_int_equal(decide("", 0, 1000), ADMIT_RAW);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_preface),
		cmocka_unit_test(test_not_http2),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
