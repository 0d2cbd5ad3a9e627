/* SPDX-License-Identifier: GPL-2.0 */
/* HTTP/2 frame header access for sk_skb and sk_msg programs (RFC 9113
 * section 4.1). */
#ifndef H2LB_BPF_FRAME_H
#define H2LB_BPF_FRAME_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "h2_wire.h"
#include "h2lb.h"

struct h2_frame {
	__u32 off; /* offset of the frame in the skb */
	__u32 len; /* payload length */
	__u32 stream;
	__u8 type;
	__u8 flags;
};

/*
 * Where the message the parser cut starts in the skb, and (verdict only)
 * its length. frame.bpf.c: global functions, because the kfunc they use
 * can be declared in one linked object only.
 */
extern __u32 msg_offset(struct __sk_buff *skb);
extern __u32 msg_length(struct __sk_buff *skb);

/*
 * The message a program looks at: its bytes from @off (where it starts)
 * to @end (the parser: all the bytes there are; the verdict: the
 * message's end). Every read of it goes through here, so that the parser's
 * walks and the frame rules serve two kinds of message: what a socket's
 * TCP received (an skb) and what a client sends on its own socket (an
 * sk_msg, docs/fast-path.md). Each entry point makes its kind a constant;
 * the functions below are inlined, so a program keeps only its own
 * branch and never calls a helper its type does not have.
 */
enum h2_in_kind {
	H2_IN_SKB, /* struct __sk_buff */
	H2_IN_MSG, /* struct sk_msg_md */
};

struct h2_in {
	void *ctx;
	__u32 off;
	__u32 end;
	enum h2_in_kind kind;
};

/* The parser's view of @skb. */
static __always_inline struct h2_in in_parser(struct __sk_buff *skb)
{
	struct h2_in in = { .ctx = skb,
			    .off = msg_offset(skb),
			    .end = skb->len,
			    .kind = H2_IN_SKB };

	return in;
}

/* The verdict's: the message the parser cut. */
static __always_inline struct h2_in in_verdict(struct __sk_buff *skb)
{
	__u32 off = msg_offset(skb);
	struct h2_in in = { .ctx = skb,
			    .off = off,
			    .end = off + msg_length(skb),
			    .kind = H2_IN_SKB };

	return in;
}

/* A client's write, as its sk_msg program sees it: all of it. */
static __always_inline struct h2_in in_msg(struct sk_msg_md *msg)
{
	struct h2_in in = {
		.ctx = msg, .off = 0, .end = msg->size, .kind = H2_IN_MSG
	};

	return in;
}

/* @n bytes of @msg at @off, reachable through msg->data afterwards, or
 * NULL. @n is a constant at every call site: the copies that follow are
 * fixed-size, with no loop for the verifier to walk. */
static __always_inline __u8 *msg_at(struct sk_msg_md *msg, __u32 off, __u32 n)
{
	__u8 *data;

	if (off >= msg->size || n > msg->size - off ||
	    bpf_msg_pull_data(msg, off, off + n, 0))
		return NULL;
	data = msg->data;
	if (data + n > (__u8 *)msg->data_end)
		return NULL;
	return data;
}

static __always_inline int in_load(const struct h2_in *in, __u32 off, void *buf,
				   __u32 n)
{
	__u8 *data;

	if (in->kind == H2_IN_SKB)
		return bpf_skb_load_bytes(in->ctx, off, buf, n);
	data = msg_at(in->ctx, off, n);
	if (!data)
		return -1;
	__builtin_memcpy(buf, data, n);
	return 0;
}

static __always_inline int in_store(const struct h2_in *in, __u32 off,
				    const void *buf, __u32 n)
{
	__u8 *data;

	if (in->kind == H2_IN_SKB)
		return bpf_skb_store_bytes(in->ctx, off, buf, n, 0);
	data = msg_at(in->ctx, off, n);
	if (!data)
		return -1;
	__builtin_memcpy(data, buf, n);
	return 0;
}

/* Up to @max (a constant) bytes at @off, @n of them (not a constant):
 * how many were copied. */
static __always_inline __u32 in_load_upto(const struct h2_in *in, __u32 off,
					  __u8 *buf, __u32 n, const __u32 max)
{
	struct sk_msg_md *msg = in->ctx;
	__u8 *data;
	__u32 i;

	if (n > max)
		n = max;
	if (in->kind == H2_IN_SKB)
		return n && !bpf_skb_load_bytes(in->ctx, off, buf, n) ? n : 0;
	if (off >= msg->size)
		return 0;
	if (n > msg->size - off)
		n = msg->size - off;
	if (!n || bpf_msg_pull_data(msg, off, off + n, 0))
		return 0;
	data = msg->data;
	for (i = 0; i < max; i++) {
		if (i >= n || data + i + 1 > (__u8 *)msg->data_end)
			break;
		buf[i] = data[i];
	}
	return i;
}

/* The message's length. */
static __always_inline __u32 in_len(const struct h2_in *in)
{
	return in->end - in->off;
}

/* The socket it came from. */
static __always_inline struct bpf_sock *in_sock(const struct h2_in *in)
{
	if (in->kind == H2_IN_SKB)
		return ((struct __sk_buff *)in->ctx)->sk;
	return ((struct sk_msg_md *)in->ctx)->sk;
}

/* "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n": its first 9 bytes read as a frame
 * header give a length far beyond any frame size we allow, so matching
 * "PRI *" is unambiguous. */
static __always_inline int is_preface(const __u8 *h)
{
	return h[0] == 'P' && h[1] == 'R' && h[2] == 'I' && h[3] == ' ' &&
	       h[4] == '*';
}

/* Read the frame header at @off. Returns 1 for the client preface, 0 for
 * a frame, -1 if fewer than 9 bytes are there. */
static __always_inline int frame_read_at(const struct h2_in *in, __u32 off,
					 struct h2_frame *f)
{
	__u8 h[H2_HDR_LEN];

	f->off = off;
	if (in_load(in, f->off, h, sizeof(h)))
		return -1;
	f->len = (__u32)h[0] << 16 | (__u32)h[1] << 8 | h[2];
	f->type = h[3];
	f->flags = h[4];
	f->stream = ((__u32)h[5] << 24 | (__u32)h[6] << 16 | (__u32)h[7] << 8 |
		     h[8]) &
		    0x7fffffff;
	return is_preface(h) ? 1 : 0;
}

static __always_inline int frame_read(const struct h2_in *in,
				      struct h2_frame *f)
{
	return frame_read_at(in, in->off, f);
}

/* Big-endian u32 in a frame payload at @at. */
static __always_inline __u32 frame_u32(const struct h2_in *in,
				       const struct h2_frame *f, __u32 at)
{
	__u32 v = 0;

	in_load(in, f->off + H2_HDR_LEN + at, &v, sizeof(v));
	return bpf_ntohl(v);
}

/*
 * A header block (HEADERS and the CONTINUATION frames up to END_HEADERS)
 * is one message, so that it reaches its target whole: frames the daemon
 * injects into the same socket can then never land inside it (RFC 9113
 * 6.10 forbids any other frame there). Returns the block's length, or 0
 * if it is not all here yet (strparser calls again with more data).
 *
 * A broken block (a frame other than its CONTINUATION, too many, too
 * long) is a message that ends just after the header of the frame that
 * broke it, with *@broken set: the verdict fails the connection. Ending it
 * at the HEADERS alone would be wrong: when an earlier call returned 0,
 * strparser takes a length that ends inside the bytes it already had for
 * a bad header length (EPROTO) and stops parsing the socket for good
 * (net/strparser/strparser.c, __strp_recv); the frame that broke the
 * block starts where the earlier call ran out of bytes, or later.
 */
static __always_inline int header_block_len(const struct h2_in *in,
					    const struct h2_frame *first,
					    int *broken)
{
	__u32 pos = first->off + H2_HDR_LEN + first->len;
	struct h2_frame f;

	*broken = 0;
	for (int i = 0; i < H2LB_MAX_CONTINUATIONS; i++) {
		if (frame_read_at(in, pos, &f))
			return 0;
		if (f.type != H2_CONTINUATION || f.stream != first->stream ||
		    f.len > H2LB_MAX_FRAME ||
		    pos + H2_HDR_LEN + f.len - first->off >
			    H2LB_MAX_HEADER_BLOCK)
			break;
		pos += H2_HDR_LEN + f.len;
		if (f.flags & H2_F_END_HEADERS)
			return pos - first->off;
	}
	*broken = 1;
	return pos + H2_HDR_LEN - first->off;
}

/* A message the parser (or the fast path's client program) makes of
 * frames that go to the same place (stream_run, leg_run). */
struct run {
	__u32 len;   /* message length so far */
	__u32 data;  /* DATA payload bytes */
	__u32 end;   /* the message ends the stream */
	__u32 multi; /* frames of other streams follow (leg_run) */
};

/*
 * The frame at @pos, if it may join the message that starts at @first:
 * whole and here, the message then no longer than @max, and no padding
 * or priority fields. The verdict applies the frame rules to a message's
 * first frame only, and those rules look inside such a frame (a
 * backend's invalid padding rode to the client in another stream's
 * message when leg_run checked less, test_h2lb_leg_burst). 0 if it may.
 */
static __always_inline int run_next(const struct h2_in *in,
				    const struct h2_frame *first, __u32 pos,
				    __u32 max, struct h2_frame *f)
{
	if (frame_read_at(in, pos, f) || f->len > H2LB_MAX_FRAME ||
	    (f->flags & (H2_F_PADDED | H2_F_PRIORITY)) ||
	    pos + H2_HDR_LEN + f->len > in->end ||
	    pos + H2_HDR_LEN + f->len - first->off > max)
		return -1;
	return 0;
}

/*
 * Extend a message with the frames of the same stream that follow it and
 * are already here (run_next), up to @max bytes in all: DATA, then, if
 * @trailers, trailers (HEADERS with END_HEADERS and END_STREAM). Never
 * waits for more data. The verdict applies the run's DATA and END_STREAM from what
 * this leaves in struct h2lb_conn, and the frame rules to its first
 * frame only: a client's trailers start a message of their own (their
 * header block's HPACK rule, hpack_rules).
 */
static __always_inline void stream_run(const struct h2_in *in,
				       const struct h2_frame *first,
				       struct run *r, __u32 max, int trailers)
{
	__u32 pos = first->off + r->len;

	for (int i = 0; i < H2LB_MAX_RUN_FRAMES; i++) {
		struct h2_frame f;

		if (r->end || run_next(in, first, pos, max, &f) ||
		    f.stream != first->stream)
			break;
		if (f.type == H2_DATA)
			r->data += f.len;
		else if (!trailers || f.type != H2_HEADERS ||
			 (f.flags & (H2_F_END_HEADERS | H2_F_END_STREAM)) !=
				 (H2_F_END_HEADERS | H2_F_END_STREAM))
			break;
		r->end = f.flags & H2_F_END_STREAM;
		pos += H2_HDR_LEN + f.len;
	}
	r->len = pos - first->off;
}

#endif
