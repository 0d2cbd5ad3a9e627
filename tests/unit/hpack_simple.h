/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Decoders for the tests (no part of the daemon): a SETTINGS payload, and
 * a minimal HPACK decoder (literal and static-indexed fields without
 * Huffman), enough to read back what user/h2.c encodes.
 */
#ifndef H2LB_TEST_HPACK_SIMPLE_H
#define H2LB_TEST_HPACK_SIMPLE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "h2.h"

/* RFC 7541 appendix A, the entries the simple decoder knows by index. */
static const char *const static_names[] = {
	[1] = ":authority",	 [2] = ":method", [4] = ":path",
	[6] = ":scheme",	 [8] = ":status", [31] = "content-type",
	[28] = "content-length",
};

static const uint8_t *hpack_get_int(const uint8_t *p, const uint8_t *end,
				    int bits, uint32_t *v)
{
	uint32_t max = (1u << bits) - 1;
	int shift = 0;

	if (p >= end)
		return NULL;
	*v = *p++ & max;
	if (*v < max)
		return p;
	while (p < end && shift < 28) {
		*v += (uint32_t)(*p & 0x7f) << shift;
		shift += 7;
		if (!(*p++ & 0x80))
			return p;
	}
	return NULL;
}

static const uint8_t *hpack_get_str(const uint8_t *p, const uint8_t *end,
				    const char **s, size_t *n)
{
	uint32_t len;

	if (p >= end || (*p & 0x80)) /* Huffman: not supported here */
		return NULL;
	p = hpack_get_int(p, end, 7, &len);
	if (!p || len > (size_t)(end - p))
		return NULL;
	*s = (const char *)p;
	*n = len;
	return p + len;
}

static int hpack_decode_simple(const uint8_t *p, size_t len,
			       void (*cb)(const char *name, size_t nlen,
					  const char *value, size_t vlen,
					  void *arg),
			       void *arg)
{
	const uint8_t *end = p + len;

	while (p < end) {
		const char *name = NULL, *value = "";
		size_t nlen = 0, vlen = 0;
		uint32_t idx;

		if (*p & 0x80) { /* indexed: only :status 200 is known */
			if (*p++ != 0x88)
				return -1;
			cb(":status", 7, "200", 3, arg);
			continue;
		}
		if ((*p & 0xe0) == 0x20) { /* dynamic table size update */
			p = hpack_get_int(p, end, 5, &idx);
			if (!p)
				return -1;
			continue;
		}
		/* literal with (0x40, 6-bit) or without (4-bit) indexing */
		p = hpack_get_int(p, end, (*p & 0x40) ? 6 : 4, &idx);
		if (!p)
			return -1;
		if (idx) {
			if (idx >= sizeof(static_names) /
					    sizeof(*static_names) ||
			    !static_names[idx])
				return -1;
			name = static_names[idx];
			nlen = strlen(name);
		} else if (!(p = hpack_get_str(p, end, &name, &nlen))) {
			return -1;
		}
		if (!(p = hpack_get_str(p, end, &value, &vlen)))
			return -1;
		cb(name, nlen, value, vlen, arg);
	}
	return 0;
}

static int h2_settings_parse(const uint8_t *p, size_t len,
			     struct h2_setting_pair *out, size_t max)
{
	size_t n = 0;

	if (len % 6)
		return -1;
	for (size_t off = 0; off < len && n < max; off += 6, n++) {
		out[n].id = (uint16_t)(p[off] << 8 | p[off + 1]);
		out[n].value = (uint32_t)p[off + 2] << 24 |
			       (uint32_t)p[off + 3] << 16 |
			       (uint32_t)p[off + 4] << 8 | p[off + 5];
	}
	return n;
}

#endif
