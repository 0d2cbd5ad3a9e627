/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Encoders for the few HTTP/2 frames the daemon writes itself (RFC 9113);
 * the kernel reads the frames peers send. Each encoder writes one whole frame into @buf
 * and returns its length; @buf must hold H2_FRAME_MAX bytes.
 */
#ifndef H2LB_H2_H
#define H2LB_H2_H

#include <stddef.h>
#include <stdint.h>

#include "h2_wire.h"
#include "h2lb.h"

#define H2_FRAME_MAX 512 /* largest frame the daemon builds */

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
/* @debug (may be NULL): a line for the peer's developer, cut to fit. */
size_t h2_goaway(uint8_t *buf, uint32_t last_stream, uint32_t code,
		 const char *debug);
/* The 32-bit big-endian number at @p (a frame's stream id, error code). */
static inline uint32_t h2_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* The name of frame type @type ("DATA", ...; "frame 0xNN" for others, in
 * a static buffer). */
const char *h2_frame_name(uint8_t type);
size_t h2_ping(uint8_t *buf, uint64_t opaque);
/* The ACK of a PING whose 8-byte payload is @payload. */
size_t h2_ping_ack(uint8_t *buf, const uint8_t *payload);
/* The injector's pseudo frame that selects the target socket. */
size_t h2_target(uint8_t *buf, uint64_t cookie);
/* The injector's pseudo frame that has the kernel look at where the
 * target's sending stands (H2LB_FT_MEASURE). */
size_t h2_measure(uint8_t *buf);
/*
 * The answer to a request whose backend was lost before it answered: a
 * response of its own ending @stream, ":status 503" with gRPC's
 * UNAVAILABLE (status 14) in it. h2lb cannot tell a gRPC call from another
 * request without decoding its header block, and this one answer reads
 * right to both: an HTTP client sees 503, and a gRPC client, which prefers
 * grpc-status to the HTTP status (and maps 503 to UNAVAILABLE anyway),
 * UNAVAILABLE. HPACK literals without indexing and without Huffman, so no
 * decoder state is touched.
 */
size_t h2_unavailable_response(uint8_t *buf, uint32_t stream,
			       const char *message);

#endif
