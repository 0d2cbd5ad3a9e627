// SPDX-License-Identifier: GPL-2.0
/* HTTP/2 frames the daemon writes (RFC 9113) and a tiny HPACK subset. */
#include <stdio.h>
#include <string.h>

#include "h2.h"

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

size_t h2_frame_header(uint8_t *buf, uint32_t len, uint8_t type, uint8_t flags,
		       uint32_t stream)
{
	buf[0] = len >> 16;
	buf[1] = len >> 8;
	buf[2] = len;
	buf[3] = type;
	buf[4] = flags;
	put32(buf + 5, stream & 0x7fffffff);
	return H2_HDR_LEN;
}

size_t h2_settings(uint8_t *buf, const struct h2_setting_pair *s, size_t n)
{
	uint8_t *p = buf + H2_HDR_LEN;

	if (n > (H2_FRAME_MAX - H2_HDR_LEN) / 6)
		n = (H2_FRAME_MAX - H2_HDR_LEN) / 6;
	for (size_t i = 0; i < n; i++, p += 6) {
		p[0] = s[i].id >> 8;
		p[1] = s[i].id;
		put32(p + 2, s[i].value);
	}
	h2_frame_header(buf, n * 6, H2_SETTINGS, 0, 0);
	return H2_HDR_LEN + n * 6;
}

size_t h2_settings_ack(uint8_t *buf)
{
	return h2_frame_header(buf, 0, H2_SETTINGS, H2_F_ACK, 0);
}

size_t h2_window_update(uint8_t *buf, uint32_t stream, uint32_t increment)
{
	h2_frame_header(buf, 4, H2_WINDOW_UPDATE, 0, stream);
	put32(buf + H2_HDR_LEN, increment & 0x7fffffff);
	return H2_HDR_LEN + 4;
}

size_t h2_rst_stream(uint8_t *buf, uint32_t stream, uint32_t code)
{
	h2_frame_header(buf, 4, H2_RST_STREAM, 0, stream);
	put32(buf + H2_HDR_LEN, code);
	return H2_HDR_LEN + 4;
}

size_t h2_goaway(uint8_t *buf, uint32_t last_stream, uint32_t code,
		 const char *debug)
{
	size_t n = debug ? strlen(debug) : 0;

	if (n > H2_FRAME_MAX - H2_HDR_LEN - 8)
		n = H2_FRAME_MAX - H2_HDR_LEN - 8;
	h2_frame_header(buf, 8 + n, H2_GOAWAY, 0, 0);
	put32(buf + H2_HDR_LEN, last_stream & 0x7fffffff);
	put32(buf + H2_HDR_LEN + 4, code);
	if (n)
		memcpy(buf + H2_HDR_LEN + 8, debug, n);
	return H2_HDR_LEN + 8 + n;
}

const char *h2_frame_name(uint8_t type)
{
	static const char *const names[] = {
		"DATA",		 "HEADERS",	 "PRIORITY", "RST_STREAM",
		"SETTINGS",	 "PUSH_PROMISE", "PING",     "GOAWAY",
		"WINDOW_UPDATE", "CONTINUATION",
	};
	static char other[16];

	if (type < sizeof(names) / sizeof(names[0]))
		return names[type];
	snprintf(other, sizeof(other), "frame 0x%02x", type);
	return other;
}

size_t h2_ping(uint8_t *buf, uint64_t opaque)
{
	h2_frame_header(buf, 8, H2_PING, 0, 0);
	memcpy(buf + H2_HDR_LEN, &opaque, 8);
	return H2_HDR_LEN + 8;
}

size_t h2_ping_ack(uint8_t *buf, const uint8_t *payload)
{
	h2_frame_header(buf, 8, H2_PING, H2_F_ACK, 0);
	memcpy(buf + H2_HDR_LEN, payload, 8);
	return H2_HDR_LEN + 8;
}

size_t h2_target(uint8_t *buf, uint64_t cookie)
{
	h2_frame_header(buf, 8, H2LB_FT_TARGET, 0, 0);
	memcpy(buf + H2_HDR_LEN, &cookie,
	       8); /* host order, as the verdict reads */
	return H2_HDR_LEN + 8;
}

size_t h2_measure(uint8_t *buf)
{
	h2_frame_header(buf, 0, H2LB_FT_MEASURE, 0, 0);
	return H2_HDR_LEN;
}

/* HPACK integer with an N-bit prefix (RFC 7541 5.1). */
static uint8_t *hpack_int(uint8_t *p, uint8_t first, int bits, uint32_t v)
{
	uint32_t max = (1u << bits) - 1;

	if (v < max) {
		*p++ = first | v;
		return p;
	}
	*p++ = first | max;
	v -= max;
	while (v >= 128) {
		*p++ = (v & 0x7f) | 0x80;
		v >>= 7;
	}
	*p++ = v;
	return p;
}

static uint8_t *hpack_str(uint8_t *p, const char *s, size_t n)
{
	p = hpack_int(p, 0x00, 7, n); /* H = 0: no Huffman */
	memcpy(p, s, n);
	return p + n;
}

/* Literal header field without indexing (RFC 7541 6.2.2). */
static uint8_t *hpack_literal(uint8_t *p, uint32_t name_index, const char *name,
			      const char *value)
{
	if (name_index) {
		p = hpack_int(p, 0x00, 4, name_index);
	} else {
		*p++ = 0x00;
		p = hpack_str(p, name, strlen(name));
	}
	return hpack_str(p, value, strlen(value));
}

size_t h2_unavailable_response(uint8_t *buf, uint32_t stream,
			       const char *message)
{
	uint8_t *p = buf + H2_HDR_LEN;
	size_t mlen = strlen(message);

	if (mlen > 200)
		mlen = 200;
	p = hpack_literal(p, 8, NULL, "503"); /* :status, static index 8 */
	p = hpack_literal(p, 31, NULL, "application/grpc"); /* content-type */
	p = hpack_literal(p, 0, "grpc-status", "14");
	*p++ = 0x00;
	p = hpack_str(p, "grpc-message", 12);
	p = hpack_str(p, message, mlen);
	h2_frame_header(buf, p - buf - H2_HDR_LEN, H2_HEADERS,
			H2_F_END_STREAM | H2_F_END_HEADERS, stream);
	return p - buf;
}
