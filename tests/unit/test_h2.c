// SPDX-License-Identifier: GPL-2.0
/* Unit tests for the frames the daemon writes (user/h2.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "h2.h"
#include "hpack_simple.h"

static uint32_t be24(const uint8_t *p)
{
	return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void test_settings_roundtrip(void **state)
{
	const struct h2_setting_pair in[] = {
		{ H2_SET_HEADER_TABLE_SIZE, 0 },
		{ H2_SET_MAX_CONCURRENT_STREAMS, 1000 },
		{ H2_SET_INITIAL_WINDOW_SIZE, 0x7fffffff },
	};
	struct h2_setting_pair out[8];
	uint8_t f[H2_FRAME_MAX];
	size_t n = h2_settings(f, in, 3);

	assert_int_equal(n, H2_HDR_LEN + 18);
	assert_int_equal(be24(f), 18);
	assert_int_equal(f[3], H2_SETTINGS);
	assert_int_equal(f[4], 0);
	assert_int_equal(be32(f + 5), 0);
	assert_int_equal(h2_settings_parse(f + H2_HDR_LEN, 18, out, 8), 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(out[i].id, in[i].id);
		assert_int_equal(out[i].value, in[i].value);
	}
	/* Not a multiple of 6: FRAME_SIZE_ERROR for the caller. */
	assert_int_equal(h2_settings_parse(f + H2_HDR_LEN, 17, out, 8), -1);
	/* More pairs than room: stops at max. */
	assert_int_equal(h2_settings_parse(f + H2_HDR_LEN, 18, out, 2), 2);
}

static void test_control_frames(void **state)
{
	uint8_t f[H2_FRAME_MAX];

	assert_int_equal(h2_settings_ack(f), 9);
	assert_int_equal(be24(f), 0);
	assert_int_equal(f[4], H2_F_ACK);

	assert_int_equal(h2_window_update(f, 0, 0xffffffff), 13);
	assert_int_equal(f[3], H2_WINDOW_UPDATE);
	assert_int_equal(be32(f + 9), 0x7fffffff); /* reserved bit cleared */

	assert_int_equal(h2_rst_stream(f, 7, H2_REFUSED_STREAM), 13);
	assert_int_equal(be32(f + 5), 7);
	assert_int_equal(be32(f + 9), H2_REFUSED_STREAM);

	assert_int_equal(h2_goaway(f, 0x80000005, H2_PROTOCOL_ERROR, NULL), 17);
	assert_int_equal(be32(f + 9), 5);
	assert_int_equal(be32(f + 13), H2_PROTOCOL_ERROR);
	/* debug data after the code, the length counting it */
	assert_int_equal(h2_goaway(f, 3, H2_STREAM_CLOSED, "why"), 20);
	assert_int_equal(be24(f), 11);
	assert_memory_equal(f + 17, "why", 3);

	assert_int_equal(h2_ping(f, 42), 17);
	assert_int_equal(f[3], H2_PING);
	assert_int_equal(f[4], 0);

	assert_int_equal(h2_target(f, 0x1122334455667788ull), 17);
	assert_int_equal(f[3], 0xfe);
	assert_int_equal(be24(f), 8);
}

struct fields {
	char names[8][32];
	char values[8][64];
	int n;
};

static void collect(const char *name, size_t nlen, const char *value,
		    size_t vlen, void *arg)
{
	struct fields *fl = arg;

	assert_true(fl->n < 8);
	memcpy(fl->names[fl->n], name, nlen);
	fl->names[fl->n][nlen] = '\0';
	memcpy(fl->values[fl->n], value, vlen);
	fl->values[fl->n][vlen] = '\0';
	fl->n++;
}

static void test_unavailable_response(void **state)
{
	uint8_t f[H2_FRAME_MAX];
	struct fields fl = { 0 };
	size_t n = h2_unavailable_response(f, 3, "backend gone");

	assert_int_equal(be24(f), n - H2_HDR_LEN);
	assert_int_equal(f[3], H2_HEADERS);
	assert_int_equal(f[4], H2_F_END_STREAM | H2_F_END_HEADERS);
	assert_int_equal(be32(f + 5), 3);
	assert_int_equal(hpack_decode_simple(f + H2_HDR_LEN, n - H2_HDR_LEN,
					     collect, &fl),
			 0);
	assert_int_equal(fl.n, 4);
	assert_string_equal(fl.names[0], ":status");
	assert_string_equal(fl.values[0], "503");
	assert_string_equal(fl.names[1], "content-type");
	assert_string_equal(fl.values[1], "application/grpc");
	assert_string_equal(fl.names[2], "grpc-status");
	assert_string_equal(fl.values[2], "14");
	assert_string_equal(fl.names[3], "grpc-message");
	assert_string_equal(fl.values[3], "backend gone");
}

static void test_hpack_rejects_garbage(void **state)
{
	const uint8_t huff[] = { 0x00, 0x85, 'a', 'b', 'c', 'd', 'e' };
	const uint8_t truncated[] = { 0x00, 0x0b, 'g', 'r' };
	struct fields fl = { 0 };

	assert_int_equal(hpack_decode_simple(huff, sizeof(huff), collect, &fl),
			 -1);
	assert_int_equal(
		hpack_decode_simple(truncated, sizeof(truncated), collect, &fl),
		-1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_settings_roundtrip),
		cmocka_unit_test(test_control_frames),
		cmocka_unit_test(test_unavailable_response),
		cmocka_unit_test(test_hpack_rejects_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
