/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Encoders for the few HTTP/2 frames the daemon writes itself (RFC 9113),
 * and the SETTINGS parser. Each encoder writes one whole frame into @buf
 * and returns its length; @buf must hold H2_FRAME_MAX bytes.
 */
#ifndef H2LB_H2_H
#define H2LB_H2_H

#include <stddef.h>
#include <stdint.h>

#define H2_HDR	     9
#define H2_FRAME_MAX 512 /* largest frame the daemon builds */

#define H2_DATA		 0x0
#define H2_HEADERS	 0x1
#define H2_RST_STREAM	 0x3
#define H2_SETTINGS	 0x4
#define H2_PING		 0x6
#define H2_GOAWAY	 0x7
#define H2_WINDOW_UPDATE 0x8

#define H2_F_END_STREAM	 0x1
#define H2_F_ACK	 0x1
#define H2_F_END_HEADERS 0x4

enum h2_setting {
	H2_SET_HEADER_TABLE_SIZE = 1,
	H2_SET_ENABLE_PUSH = 2,
	H2_SET_MAX_CONCURRENT_STREAMS = 3,
	H2_SET_INITIAL_WINDOW_SIZE = 4,
	H2_SET_MAX_FRAME_SIZE = 5,
	H2_SET_MAX_HEADER_LIST_SIZE = 6,
};

enum h2_error {
	H2_NO_ERROR = 0x0,
	H2_PROTOCOL_ERROR = 0x1,
	H2_INTERNAL_ERROR = 0x2,
	H2_FLOW_CONTROL_ERROR = 0x3,
	H2_STREAM_CLOSED = 0x5,
	H2_FRAME_SIZE_ERROR = 0x6,
	H2_REFUSED_STREAM = 0x7,
	H2_CANCEL = 0x8,
};

#define H2_DEFAULT_WINDOW 65535
#define H2_MAX_WINDOW	  0x7fffffff
#define H2_PREFACE	  "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN	  24

struct h2_setting_pair {
	uint16_t id;
	uint32_t value;
};

size_t h2_frame_header(uint8_t *buf, uint32_t len, uint8_t type, uint8_t flags,
		       uint32_t stream);
size_t h2_settings(uint8_t *buf, const struct h2_setting_pair *s, size_t n);
size_t h2_settings_ack(uint8_t *buf);
size_t h2_window_update(uint8_t *buf, uint32_t stream, uint32_t increment);
size_t h2_rst_stream(uint8_t *buf, uint32_t stream, uint32_t code);
size_t h2_goaway(uint8_t *buf, uint32_t last_stream, uint32_t code);
size_t h2_ping(uint8_t *buf, uint64_t opaque);
/* The injector's pseudo frame that selects the target socket. */
size_t h2_target(uint8_t *buf, uint64_t cookie);
/*
 * gRPC UNAVAILABLE (status 14) ending @stream: trailers after response
 * headers, or a trailers-only response (with :status 200) when the
 * backend never answered. HPACK literals without indexing and without
 * Huffman, so no decoder state is touched.
 */
size_t h2_grpc_unavailable(uint8_t *buf, uint32_t stream, int trailers_only,
			   const char *message);

/* Parse a SETTINGS payload; returns the number of pairs stored (at most
 * @max), or -1 if @len is not a multiple of 6. */
int h2_settings_parse(const uint8_t *p, size_t len, struct h2_setting_pair *out,
		      size_t max);

/* Minimal HPACK decoder for tests and diagnostics: decodes literal and
 * static-indexed fields without Huffman. Calls @cb per field; returns 0,
 * or -1 on anything it does not understand. */
int hpack_decode_simple(const uint8_t *p, size_t len,
			void (*cb)(const char *name, size_t nlen,
				   const char *value, size_t vlen, void *arg),
			void *arg);

#endif
