/* SPDX-License-Identifier: GPL-2.0 */
/* HTTP/2 frame header access for sk_skb programs (RFC 9113 section 4.1). */
#ifndef H2LB_BPF_FRAME_H
#define H2LB_BPF_FRAME_H

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

#define H2_F_END_STREAM	 0x1
#define H2_F_ACK	 0x1
#define H2_F_END_HEADERS 0x4

#define H2_NO_ERROR	      0x0
#define H2_PROTOCOL_ERROR     0x1
#define H2_FLOW_CONTROL_ERROR 0x3
#define H2_FRAME_SIZE_ERROR   0x6
#define H2_REFUSED_STREAM     0x7

#define H2_HDR_LEN     9
#define H2_PREFACE_LEN 24

struct h2_frame {
	__u32 off; /* offset of the frame in the skb */
	__u32 len; /* payload length */
	__u32 stream;
	__u8 type;
	__u8 flags;
};

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

/*
 * The parser and the verdict see the skb from its start, not from the
 * start of the message: strparser keeps the message offset in the skb
 * control block (DESIGN.md fact 2). Reading at 0 breaks as soon as
 * segments coalesce.
 */
static __always_inline __u32 msg_offset(struct __sk_buff *skb)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);
	struct sk_skb_cb *cb = (struct sk_skb_cb *)kskb->cb;
	int off = 0;

	bpf_probe_read_kernel(&off, sizeof(off), &cb->strp.strp.offset);
	return off;
}

/* Length of the message the parser returned (verdict only). */
static __always_inline __u32 msg_length(struct __sk_buff *skb)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);
	struct sk_skb_cb *cb = (struct sk_skb_cb *)kskb->cb;
	int len = 0;

	bpf_probe_read_kernel(&len, sizeof(len), &cb->strp.strp.full_len);
	return len;
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
