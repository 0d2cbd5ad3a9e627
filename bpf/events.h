/* SPDX-License-Identifier: GPL-2.0 */
/* Counters and events: what the programs tell operators and the daemon. */
#ifndef H2LB_BPF_EVENTS_H
#define H2LB_BPF_EVENTS_H

#include "maps.h"

static __always_inline void count_add(enum h2lb_counter which, __u64 n)
{
	__u32 zero = 0;
	__u64 *v = bpf_map_lookup_elem(&counters, &zero);

	if (v && which < H2LB_CNT_MAX)
		v[which] += n;
}

static __always_inline void count(enum h2lb_counter which)
{
	count_add(which, 1);
}

/*
 * The one event builder: reserve an event in the ring buffer and fill its
 * header. The caller may add payload bytes (ev->data, ev->len), then
 * submits it with event_send(). NULL (counted) if the ring buffer is full.
 */
static __always_inline struct h2lb_event *
event_new(__u32 type, __u64 cookie, __u64 peer, __u32 stream, __u32 arg)
{
	struct h2lb_event *ev;

	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		count(H2LB_CNT_EVENT_DROPS);
		return NULL;
	}
	ev->type = type;
	ev->cookie = cookie;
	ev->peer = peer;
	ev->stream = stream;
	ev->arg = arg;
	ev->len = 0;
	return ev;
}

static __always_inline void event_send(struct h2lb_event *ev)
{
	bpf_ringbuf_submit(ev, 0);
	count(H2LB_CNT_EVENTS);
}

/* An event without payload. */
static __always_inline void emit(__u32 type, __u64 cookie, __u64 peer,
				 __u32 stream, __u32 arg)
{
	struct h2lb_event *ev = event_new(type, cookie, peer, stream, arg);

	if (ev)
		event_send(ev);
}

#endif
