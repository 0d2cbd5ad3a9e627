/* SPDX-License-Identifier: GPL-2.0 */
/*
 * RFC 9113 rules for the frames a peer sends, checked where the frame is
 * seen (the verdict). A rule's answer is 0 (the frame is fine), a
 * connection error (GOAWAY with the code, then close) or a stream error
 * (RST_STREAM with the code on that stream).
 */
#ifndef H2LB_BPF_RULES_H
#define H2LB_BPF_RULES_H

#include "frame.h"

#define CONN_ERROR(code)   (0x100 | (code))
#define STREAM_ERROR(code) (0x200 | (code))
#define IS_CONN_ERROR(r)   ((r)&0x100)
#define IS_STREAM_ERROR(r) ((r)&0x200)
#define ERROR_CODE(r)	   ((r)&0xff)

/* The byte at @at of @f's payload. */
static __always_inline __u8 frame_u8(const struct h2_in *in,
				     const struct h2_frame *f, __u32 at)
{
	__u8 v = 0;

	in_load(in, f->off + H2_HDR_LEN + at, &v, 1);
	return v;
}

/* A stream dependency on itself (RFC 9113 5.3.1): the 31-bit stream id at
 * @at of the payload. */
static __always_inline int depends_on_itself(const struct h2_in *in,
					     const struct h2_frame *f, __u32 at)
{
	return (frame_u32(in, f, at) & H2_MAX_STREAM) == f->stream;
}

/*
 * DATA and HEADERS: the pad length, the priority fields and the padding
 * must fit in the payload (6.1, 6.2): padding as long as what is left for
 * data or field block, or longer, is a PROTOCOL_ERROR.
 */
static __always_inline int padded_rules(const struct h2_in *in,
					const struct h2_frame *f)
{
	__u32 fixed = 0, pad = 0;

	if (f->flags & H2_F_PADDED) {
		pad = f->len ? frame_u8(in, f, 0) : 0;
		fixed = 1;
	}
	if (f->type == H2_HEADERS && (f->flags & H2_F_PRIORITY)) {
		if (f->len < fixed + 5)
			return CONN_ERROR(H2_FRAME_SIZE_ERROR);
		if (depends_on_itself(in, f, fixed))
			return STREAM_ERROR(H2_PROTOCOL_ERROR);
		fixed += 5;
	}
	if ((f->flags & H2_F_PADDED) && fixed + pad > f->len)
		return CONN_ERROR(H2_PROTOCOL_ERROR);
	return 0;
}

/*
 * HPACK (RFC 7541 4.2, 6.3): a dynamic table size update at the start of
 * a header block may not exceed the SETTINGS_HEADER_TABLE_SIZE the
 * decoder announced. h2lb announces 0 to clients; until a client has
 * acknowledged that, the protocol's initial 4096 applies (@acked). The
 * block is forwarded undecoded, and the backend's own table limit is not
 * h2lb's, so this one check is made here: COMPRESSION_ERROR.
 */
static __always_inline int hpack_rules(const struct h2_in *in,
				       const struct h2_frame *f, int acked)
{
	__u32 at = 0, size, shift = 0, limit = acked ? 0 : 4096;
	__u8 b;

	if (f->flags & H2_F_PADDED)
		at += 1;
	if (f->flags & H2_F_PRIORITY)
		at += 5;
	if (at >= f->len)
		return 0;
	b = frame_u8(in, f, at);
	if ((b & 0xe0) != 0x20)
		return 0; /* no size update first */
	size = b & 0x1f;
	/* A prefix of all ones continues in 7-bit groups (5.1). */
	for (int i = 0; i < 4 && size >= 0x1f; i++) {
		if (++at >= f->len)
			return CONN_ERROR(H2_COMPRESSION_ERROR);
		b = frame_u8(in, f, at);
		size += (__u32)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80))
			break;
	}
	return size > limit ? CONN_ERROR(H2_COMPRESSION_ERROR) : 0;
}

/* A parameter of a SETTINGS frame, in order (bpf_loop callback). */
struct settings_scan {
	struct h2_in in;
	__u32 off; /* of the payload */
	__u32 n;   /* parameters */
	__u32 err;
	struct h2lb_settings_frame v;
};

static __always_inline long settings_param(__u32 i, struct settings_scan *s,
					   enum h2_in_kind kind)
{
	struct h2_in in = s->in;
	__u8 p[6];
	__u32 id, value;

	in.kind = kind; /* a constant: one branch of in_load() stays */
	if (i >= s->n || in_load(&in, s->off + i * 6, p, 6))
		return 1;
	id = (__u32)p[0] << 8 | p[1];
	value = (__u32)p[2] << 24 | (__u32)p[3] << 16 | (__u32)p[4] << 8 | p[5];
	switch (id) {
	case H2_SET_ENABLE_PUSH:
		if (value > 1)
			s->err = CONN_ERROR(H2_PROTOCOL_ERROR);
		break;
	case H2_SET_INITIAL_WINDOW_SIZE:
		if (value > H2_MAX_WINDOW)
			s->err = CONN_ERROR(H2_FLOW_CONTROL_ERROR);
		break;
	case H2_SET_MAX_FRAME_SIZE:
		if (value < H2_DEFAULT_FRAME_SIZE || value > 0xffffff)
			s->err = CONN_ERROR(H2_PROTOCOL_ERROR);
		break;
	}
	if (s->err)
		return 1;
	if (id >= 1 && id < H2LB_SETTINGS_IDS) {
		s->v.set |= 1u << id;
		s->v.value[id] = value;
	}
	return 0; /* unknown parameters are ignored (6.5.2) */
}

/* One callback per kind of message: each program references only its
 * own. */
static long settings_param_skb(__u32 i, void *arg)
{
	return settings_param(i, arg, H2_IN_SKB);
}

static long settings_param_msg(__u32 i, void *arg)
{
	return settings_param(i, arg, H2_IN_MSG);
}

/*
 * Every parameter of a SETTINGS frame, in order, however many (6.5):
 * 0 and what it set in @out, or the error.
 */
static __always_inline int settings_rules(const struct h2_in *in,
					  const struct h2_frame *f,
					  struct h2lb_settings_frame *out)
{
	struct settings_scan s = { .in = *in,
				   .off = f->off + H2_HDR_LEN,
				   .n = f->len / 6 };

	bpf_loop(H2LB_MAX_FRAME / 6,
		 in->kind == H2_IN_SKB ? settings_param_skb
				       : settings_param_msg,
		 &s, 0);
	*out = s.v;
	return s.err;
}

/*
 * What the frame header alone (and a few payload bytes) says is wrong,
 * for any peer: sizes by type (4.2, 6.x), stream 0 or not (6.x), padding,
 * dependencies on itself, zero window increments, PUSH_PROMISE (a client
 * never sends one, and backends were told SETTINGS_ENABLE_PUSH 0).
 * CONTINUATIONs travel inside their HEADERS' message (the parser), so one
 * on its own follows no open header block (6.10).
 */
static __always_inline int frame_rules(const struct h2_in *in,
				       const struct h2_frame *f)
{
	switch (f->type) {
	case H2_DATA:
		if (!f->stream)
			return CONN_ERROR(H2_PROTOCOL_ERROR);
		return padded_rules(in, f);
	case H2_HEADERS:
		if (!f->stream)
			return CONN_ERROR(H2_PROTOCOL_ERROR);
		return padded_rules(in, f);
	case H2_PRIORITY:
		if (!f->stream)
			return CONN_ERROR(H2_PROTOCOL_ERROR);
		if (f->len != 5)
			return STREAM_ERROR(H2_FRAME_SIZE_ERROR);
		if (depends_on_itself(in, f, 0))
			return STREAM_ERROR(H2_PROTOCOL_ERROR);
		return 0;
	case H2_RST_STREAM:
		if (!f->stream)
			return CONN_ERROR(H2_PROTOCOL_ERROR);
		if (f->len != 4)
			return CONN_ERROR(H2_FRAME_SIZE_ERROR);
		return 0;
	case H2_SETTINGS:
		if (f->stream)
			return CONN_ERROR(H2_PROTOCOL_ERROR);
		if (f->len % 6 || ((f->flags & H2_F_ACK) && f->len))
			return CONN_ERROR(H2_FRAME_SIZE_ERROR);
		return 0;
	case H2_PUSH_PROMISE:
		return CONN_ERROR(H2_PROTOCOL_ERROR);
	case H2_PING:
		if (f->stream)
			return CONN_ERROR(H2_PROTOCOL_ERROR);
		if (f->len != 8)
			return CONN_ERROR(H2_FRAME_SIZE_ERROR);
		return 0;
	case H2_GOAWAY:
		if (f->stream)
			return CONN_ERROR(H2_PROTOCOL_ERROR);
		if (f->len < 8)
			return CONN_ERROR(H2_FRAME_SIZE_ERROR);
		return 0;
	case H2_WINDOW_UPDATE:
		if (f->len != 4)
			return CONN_ERROR(H2_FRAME_SIZE_ERROR);
		if (!(frame_u32(in, f, 0) & H2_MAX_WINDOW))
			return f->stream ? STREAM_ERROR(H2_PROTOCOL_ERROR)
					 : CONN_ERROR(H2_PROTOCOL_ERROR);
		return 0;
	case H2_CONTINUATION:
		return CONN_ERROR(H2_PROTOCOL_ERROR);
	}
	return 0; /* unknown types are ignored (4.1, 5.5) */
}

#endif
