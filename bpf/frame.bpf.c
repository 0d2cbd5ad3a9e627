// SPDX-License-Identifier: GPL-2.0
/* Where a parser message is in its skb (frame.h declares these). */
#include "frame.h"

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

/*
 * The parser and the verdict see the skb from its start, not from the
 * start of the message: strparser keeps the message offset in the skb
 * control block (docs/kernel-facts.md K2). Reading at 0 breaks as soon as
 * segments coalesce.
 */
__attribute__((noinline)) __u32 msg_offset(struct __sk_buff *skb)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);
	struct sk_skb_cb *cb = (struct sk_skb_cb *)kskb->cb;
	int off = 0;

	bpf_probe_read_kernel(&off, sizeof(off), &cb->strp.strp.offset);
	return off;
}

/* Length of the message the parser returned (verdict only). */
__attribute__((noinline)) __u32 msg_length(struct __sk_buff *skb)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);
	struct sk_skb_cb *cb = (struct sk_skb_cb *)kskb->cb;
	int len = 0;

	bpf_probe_read_kernel(&len, sizeof(len), &cb->strp.strp.full_len);
	return len;
}
