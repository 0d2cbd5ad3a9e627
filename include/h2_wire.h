/* SPDX-License-Identifier: GPL-2.0 */
/*
 * HTTP/2 on the wire (RFC 9113): the constants both the BPF programs and
 * the daemon use. Plain #defines, so that it builds on either side.
 */
#ifndef H2_WIRE_H
#define H2_WIRE_H

/* Frame header (section 4.1) and the client connection preface (3.4). */
#define H2_HDR_LEN	      9
#define H2_PREFACE	      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN	      24
#define H2_MAX_STREAM	      0x7fffffff
#define H2_DEFAULT_WINDOW     65535
#define H2_MAX_WINDOW	      0x7fffffff
#define H2_DEFAULT_FRAME_SIZE 16384

/* Frame types (section 6). */
#define H2_DATA		 0x0
#define H2_HEADERS	 0x1
#define H2_PRIORITY	 0x2
#define H2_RST_STREAM	 0x3
#define H2_SETTINGS	 0x4
#define H2_PUSH_PROMISE	 0x5
#define H2_PING		 0x6
#define H2_GOAWAY	 0x7
#define H2_WINDOW_UPDATE 0x8
#define H2_CONTINUATION	 0x9

/* Flags. */
#define H2_F_END_STREAM	 0x1
#define H2_F_ACK	 0x1
#define H2_F_END_HEADERS 0x4
#define H2_F_PADDED	 0x8
#define H2_F_PRIORITY	 0x20

/* SETTINGS parameters (section 6.5.2). */
#define H2_SET_HEADER_TABLE_SIZE      0x1
#define H2_SET_ENABLE_PUSH	      0x2
#define H2_SET_MAX_CONCURRENT_STREAMS 0x3
#define H2_SET_INITIAL_WINDOW_SIZE    0x4
#define H2_SET_MAX_FRAME_SIZE	      0x5
#define H2_SET_MAX_HEADER_LIST_SIZE   0x6

/* Error codes (section 7). */
#define H2_NO_ERROR	       0x0
#define H2_PROTOCOL_ERROR      0x1
#define H2_INTERNAL_ERROR      0x2
#define H2_FLOW_CONTROL_ERROR  0x3
#define H2_SETTINGS_TIMEOUT    0x4
#define H2_STREAM_CLOSED       0x5
#define H2_FRAME_SIZE_ERROR    0x6
#define H2_REFUSED_STREAM      0x7
#define H2_CANCEL	       0x8
#define H2_COMPRESSION_ERROR   0x9
#define H2_CONNECT_ERROR       0xa
#define H2_ENHANCE_YOUR_CALM   0xb
#define H2_INADEQUATE_SECURITY 0xc
#define H2_HTTP_1_1_REQUIRED   0xd

#endif /* H2_WIRE_H */
