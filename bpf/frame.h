/* SPDX-License-Identifier: GPL-2.0 */
/* HTTP/2 frame header access for sk_skb programs (RFC 9113 section 4.1). */
#ifndef H2LB_BPF_FRAME_H
#define H2LB_BPF_FRAME_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "h2_wire.h"

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
static __always_inline int frame_read_at(struct __sk_buff *skb, __u32 off,
					 struct h2_frame *f)
{
	__u8 h[H2_HDR_LEN];

	f->off = off;
	if (bpf_skb_load_bytes(skb, f->off, h, sizeof(h)))
		return -1;
	f->len = (__u32)h[0] << 16 | (__u32)h[1] << 8 | h[2];
	f->type = h[3];
	f->flags = h[4];
	f->stream = ((__u32)h[5] << 24 | (__u32)h[6] << 16 | (__u32)h[7] << 8 |
		     h[8]) &
		    0x7fffffff;
	return is_preface(h) ? 1 : 0;
}

static __always_inline int frame_read(struct __sk_buff *skb, struct h2_frame *f)
{
	return frame_read_at(skb, msg_offset(skb), f);
}

/* Big-endian u32 in a frame payload at @at. */
static __always_inline __u32 frame_u32(struct __sk_buff *skb,
				       const struct h2_frame *f, __u32 at)
{
	__u32 v = 0;

	bpf_skb_load_bytes(skb, f->off + H2_HDR_LEN + at, &v, sizeof(v));
	return bpf_ntohl(v);
}

#endif
