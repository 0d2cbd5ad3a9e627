// SPDX-License-Identifier: GPL-2.0
/*
 * The stream parser: cuts a socket's byte stream into messages, one HTTP/2
 * frame each (or the client preface), or one run of frames that all go to
 * the same place. The verdict (verdict.bpf.c) then routes each message.
 */
#include "frame.h"
#include "maps.h"

/*
 * On a backend leg every stream frame goes to the same client, so the
 * HEADERS and DATA frames of the leg's other open streams that are already
 * here join the message too (docs/kernel-facts.md K13: the cost is per message).
 * The verdict applies each frame's END_STREAM (leg_frames), and the frame
 * rules to the message's first frame only (run_next).
 */

/* Whether @data bytes of DATA might overrun @st's stream window. @data is
 * all of the message's DATA so far, other streams' too: never less than
 * the stream's own. A frame that might starts a message of its own, where
 * the verdict checks its stream exactly (resp_over): a message goes whole. */
static __always_inline int resp_may_overrun(const struct h2lb_stream *st,
					    __u32 data)
{
	return (__s64)st->resp_used + data > (__s64)st->resp_limit;
}

static __always_inline void leg_run(const struct h2_in *in,
				    const struct h2lb_conn *c, __u64 cookie,
				    const struct h2_frame *first, struct run *r)
{
	__u32 pos = first->off + r->len;

	for (int i = 0; i < H2LB_MAX_RUN_FRAMES; i++) {
		struct h2lb_stream_key k = { .client = c->peer };
		struct h2lb_stream *st;
		struct h2_frame f;

		if (run_next(in, first, pos, H2LB_MAX_HEADER_BLOCK, &f) ||
		    !f.stream)
			break;
		if (f.type == H2_HEADERS ? !(f.flags & H2_F_END_HEADERS)
					 : f.type != H2_DATA)
			break;
		k.id = f.stream;
		st = bpf_map_lookup_elem(&streams, &k);
		if (!st || st->leg != cookie ||
		    (f.type == H2_DATA &&
		     resp_may_overrun(st, r->data + f.len)))
			break;
		if (f.type == H2_DATA)
			r->data += f.len;
		r->multi = 1;
		pos += H2_HDR_LEN + f.len;
	}
	r->len = pos - first->off;
}

/* Whether a leg's message may take other streams' frames: its own first
 * stream is open on it (if not, the verdict drops the message) and @data,
 * its DATA so far, cannot overrun that stream's window, and it is no header
 * block with CONTINUATIONs (the verdict walks whole frames). */
static __always_inline int leg_can_run(const struct h2lb_conn *c, __u64 cookie,
				       const struct h2_frame *f, __u32 data)
{
	struct h2lb_stream_key k = { .client = c->peer, .id = f->stream };
	struct h2lb_stream *st;

	if (c->role != H2LB_ROLE_BACKEND || !c->peer ||
	    (f->type == H2_HEADERS && !(f->flags & H2_F_END_HEADERS)))
		return 0;
	st = bpf_map_lookup_elem(&streams, &k);
	return st && st->leg == cookie && !resp_may_overrun(st, data);
}

/*
 * A connection that is not HTTP/2 is one message per run of bytes that
 * are here: all of them, from where the message starts (strparser hands
 * over the skb from its start, docs/kernel-facts.md K2), at most
 * H2LB_MAX_HEADER_BLOCK, so that the result stays well under SO_RCVBUF
 * (K3). What is left makes the next message at once.
 */
static __always_inline int raw_len(const struct h2_in *in)
{
	if (in->end <= in->off)
		return 0;
	if (in_len(in) > H2LB_MAX_HEADER_BLOCK)
		return H2LB_MAX_HEADER_BLOCK;
	return in_len(in);
}

SEC("sk_skb/stream_parser")
int h2lb_parser(struct __sk_buff *skb)
{
	__u64 cookie = bpf_get_socket_cookie(skb);
	struct h2lb_conn *c = bpf_map_lookup_elem(&conns, &cookie);
	struct h2_in in = in_parser(skb);
	struct h2_frame f;
	int r;

	if (c && (c->flags & H2LB_CONN_RAW))
		return raw_len(&in);
	r = frame_read(&in, &f);
	if (r < 0)
		return 0; /* fewer than 9 bytes: wait for more */
	if (c) {	  /* set below, for HEADERS and DATA only */
		c->run_data = 0;
		c->run_end = 0;
		c->run_multi = 0;
		c->run_broken = 0;
	}
	if (c && (c->flags & H2LB_CONN_DEAD))
		return in.end - f.off; /* swallow until the daemon closes */
	if (r == 1)
		return H2_PREFACE_LEN;
	/* An oversized frame is cut to its header: the verdict then fails
	 * the connection. A result beyond SO_RCVBUF would kill the socket
	 * (docs/kernel-facts.md K3). */
	if (f.len > H2LB_MAX_FRAME)
		return H2_HDR_LEN;
	if (!c || c->role == H2LB_ROLE_INJECTOR || !f.stream ||
	    (f.type != H2_HEADERS && f.type != H2_DATA))
		return H2_HDR_LEN + f.len;

	struct run run = {
		.len = H2_HDR_LEN + f.len,
		.data = f.type == H2_DATA ? f.len : 0,
		.end = f.flags & H2_F_END_STREAM,
	};

	if (f.type == H2_HEADERS && !(f.flags & H2_F_END_HEADERS)) {
		int broken;

		run.len = header_block_len(&in, &f, &broken);
		if (broken)
			c->run_broken = 1;
		if (!run.len || broken)
			return run.len;
	}
	/* Trailers ride along from a backend (each gRPC response has
	 * them); a client's go alone, through all the rules (stream_run). */
	stream_run(&in, &f, &run, H2LB_MAX_HEADER_BLOCK,
		   c->role == H2LB_ROLE_BACKEND);
	/* Frames of other streams follow only if the skb has more bytes
	 * (a response in one write, the usual, ends here: no look). */
	if (f.off + run.len < in.end && leg_can_run(c, cookie, &f, run.data))
		leg_run(&in, c, cookie, &f, &run);
	c->run_data = run.data;
	c->run_end = run.end;
	c->run_multi = run.multi;
	return run.len;
}
