/* SPDX-License-Identifier: GPL-2.0 */
/* Stream table: open, half-close, close with per-backend accounting. */
#ifndef H2LB_BPF_STREAM_H
#define H2LB_BPF_STREAM_H

#include "maps.h"

static __always_inline __u32 log2_us(__u64 ns)
{
	__u64 us = ns / 1000;
	__u32 r = 0;

	for (int i = 0; i < H2LB_LAT_BUCKETS - 1; i++) {
		if (us <= 1)
			break;
		us >>= 1;
		r++;
	}
	return r;
}

/* @n more open streams of the clients of @addr (addr_streams). */
static __always_inline void addr_streams_add(__u32 addr, int n)
{
	__u32 zero = 0, *v;

	if (!addr || !settings.addr_streams)
		return;
	v = bpf_map_lookup_elem(&addr_streams, &addr);
	if (!v && n > 0) {
		bpf_map_update_elem(&addr_streams, &addr, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&addr_streams, &addr);
	}
	/* None: forgotten (LRU), its count starts again. */
	if (v && (n > 0 || *v))
		__sync_fetch_and_add(v, n);
}

/* The clients of @addr have --max-streams-per-address open streams. */
static __always_inline int addr_streams_full(__u32 addr)
{
	__u32 *v;

	if (!addr || !settings.addr_streams)
		return 0;
	v = bpf_map_lookup_elem(&addr_streams, &addr);
	return v && *v >= settings.addr_streams;
}

static __always_inline void conn_streams_add(__u64 cookie, int n)
{
	struct h2lb_conn *c = bpf_map_lookup_elem(&conns, &cookie);

	if (!c)
		return;
	__sync_fetch_and_add(&c->open_streams, n);
	if (c->role == H2LB_ROLE_CLIENT)
		addr_streams_add(c->addr, n);
}

/*
 * A new stream holds H2LB_STREAM_RESERVE of the node's queue until its
 * backend answers (or it ends): what its response may bring is counted
 * before it comes, so that a burst of requests cannot take the node past
 * --node-buffer while their answers are on their way. Its data counts
 * for itself once it is sent (budget.h).
 */
static __always_inline void stream_reserve(struct h2lb_stream *st)
{
	if (!settings.node_queue)
		return;
	__sync_fetch_and_or(&st->flags, H2LB_ST_RESERVED);
	__sync_fetch_and_add(&node_queued, H2LB_STREAM_RESERVE);
}

static __always_inline void stream_unreserve(struct h2lb_stream *st)
{
	if (__sync_fetch_and_and(&st->flags, ~H2LB_ST_RESERVED) &
	    H2LB_ST_RESERVED)
		__sync_fetch_and_add(&node_queued, -H2LB_STREAM_RESERVE);
}

/*
 * The client's streams opened lately (struct h2lb_conn, opened_bits): a
 * stream that closed with END_STREAM both ways, as nearly all do, leaves
 * no record in the "closed" LRU (stream_close); one of these bits tells
 * it from an id never opened, for the frames a client may still send on
 * it (RFC 9113 5.1). Saves an LRU insert, the costliest map operation of
 * a stream (docs/latency.md). Only the client's own frames' program
 * writes them, one frame at a time.
 */
#define OPENED_BITS 64

static __always_inline void opened_note(struct h2lb_conn *c, __u32 id)
{
	__u32 shift = (id - c->opened_top) / 2;

	c->opened_bits = shift < OPENED_BITS ? c->opened_bits << shift : 0;
	c->opened_bits |= 1;
	c->opened_top = id;
}

static __always_inline int opened_lately(const struct h2lb_conn *c, __u32 id)
{
	__u32 i = (c->opened_top - id) / 2;

	return id <= c->opened_top && i < OPENED_BITS &&
	       ((c->opened_bits >> i) & 1);
}

/* Remember that @key closed, and how (enum h2lb_closed_how). */
static __always_inline void stream_closed(struct h2lb_stream_key *key,
					  __u32 how)
{
	bpf_map_update_elem(&closed, key, &how, BPF_ANY);
}

/*
 * Close a stream exactly once: only the caller whose delete succeeds
 * does the accounting, whichever side (client or backend verdict,
 * possibly on another CPU) saw the end first.
 */
static __always_inline void stream_close(struct h2lb_stream_key *key,
					 struct h2lb_stream *st, __u32 how)
{
	__u32 b = st->backend, bucket;
	__u64 start = st->start_ns, leg = st->leg;
	struct h2lb_backend *be;
	int reset = how != H2LB_CLOSED_DONE;

	stream_unreserve(st); /* exactly once, whoever closes it */
	/* How it closed is known before it is gone: a frame the client sent
	 * meanwhile, seen on another CPU, must find one or the other (with
	 * neither, DATA on it is a STREAM_CLOSED connection error). If two
	 * close it at once, the first to record says how. One that ended
	 * both ways is known by its bit in the client's opened_bits, set
	 * when it opened (opened_lately). */
	if (how != H2LB_CLOSED_DONE)
		bpf_map_update_elem(&closed, key, &how, BPF_NOEXIST);
	if (bpf_map_delete_elem(&streams, key))
		return;
	conn_streams_add(key->client, -1);
	conn_streams_add(leg, -1);
	be = bpf_map_lookup_elem(&backends, &b);
	if (!be)
		return;
	__sync_fetch_and_add(&be->open_streams, -1);
	if (reset)
		__sync_fetch_and_add(&be->resets, 1);
	start = bpf_ktime_get_ns() - start;
	__sync_fetch_and_add(&be->latency_ns, start);
	bucket = log2_us(start);
	if (bucket < H2LB_LAT_BUCKETS)
		__sync_fetch_and_add(&be->latency[bucket], 1);
}

/* Record an END_STREAM from one side; close when both sides ended. */
static __always_inline void stream_end(struct h2lb_stream_key *key,
				       struct h2lb_stream *st, __u32 side)
{
	__u32 old = __sync_fetch_and_or(&st->flags, side);

	/* Close once, when this END_STREAM completes the pair. */
	if (((old | side) & H2LB_ST_BOTH_END) != H2LB_ST_BOTH_END ||
	    (old & H2LB_ST_BOTH_END) == H2LB_ST_BOTH_END)
		return;
	stream_close(key, st, H2LB_CLOSED_DONE);
}

static __always_inline struct h2lb_stream *
stream_open(struct h2lb_stream_key *key, __u64 leg, __u32 backend,
	    __u32 resp_limit)
{
	struct h2lb_stream st = {
		.leg = leg,
		.backend = backend,
		.start_ns = bpf_ktime_get_ns(),
		.resp_limit = resp_limit,
	};
	struct h2lb_backend *be;

	if (bpf_map_update_elem(&streams, key, &st, BPF_NOEXIST))
		return 0;
	conn_streams_add(leg, 1);
	be = bpf_map_lookup_elem(&backends, &backend);
	if (be) {
		__sync_fetch_and_add(&be->open_streams, 1);
		__sync_fetch_and_add(&be->streams, 1);
	}
	return bpf_map_lookup_elem(&streams, key);
}

#endif
