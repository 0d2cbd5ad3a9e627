/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The maps and load-time settings of the h2lb programs. Every .bpf.c file
 * includes this; the definitions are weak, so that the objects linked into
 * build/h2lb.bpf.o (bpftool gen object) share one of each.
 */
#ifndef H2LB_BPF_MAPS_H
#define H2LB_BPF_MAPS_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "h2lb.h"

/* Fixed at load time by the daemon (kern.c), before the verifier runs. */
const volatile struct h2lb_settings settings __weak = {
	.max_streams = 1000,
	.max_backends = H2LB_DEF_BACKENDS,
	.svc_backends = H2LB_DEF_SVC_BACKENDS,
};

/*
 * The max_entries below are the defaults of `h2lb run`'s flags: the daemon
 * sets each table's size before loading (kern.c, bpf_map__set_max_entries),
 * so no code here may take a size from them; bounds come from the maps'
 * lookups and from settings.
 */

/* Sockets h2lb routes frames between, keyed by socket cookie. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, H2LB_DEF_CONNS);
	__type(key, __u64);
	__type(value, __u64);
} sock_hash SEC(".maps") __weak;

/* Per-socket state, keyed by socket cookie. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, H2LB_DEF_CONNS);
	__type(key, __u64);
	__type(value, struct h2lb_conn);
} conns SEC(".maps") __weak;

/* Which new sockets sockops takes, and as what: each Service's listener
 * and VIP, and the injector (2 * --max-services + 16). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2 * H2LB_DEF_SERVICES + 16);
	__type(key, struct h2lb_endpoint_key);
	__type(value, struct h2lb_endpoint);
} endpoints SEC(".maps") __weak;

/* (client, backend) -> the client's own connection to that backend. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, H2LB_DEF_CONNS);
	__type(key, struct h2lb_leg_key);
	__type(value, __u64);
} legs SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, H2LB_DEF_STREAMS);
	__type(key, struct h2lb_stream_key);
	__type(value, struct h2lb_stream);
} streams SEC(".maps") __weak;

/* Streams closed lately, and how (enum h2lb_closed_how): the frames a
 * client may still send on them (RFC 9113 5.1). LRU: the oldest go. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, H2LB_DEF_STREAMS);
	__type(key, struct h2lb_stream_key);
	__type(value, __u32);
} closed SEC(".maps") __weak;

/* Backends by index. The daemon writes addr/port/state through mmap;
 * counters are only ever changed with atomics. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, H2LB_DEF_BACKENDS);
	__type(key, __u32);
	__type(value, struct h2lb_backend);
} backends SEC(".maps") __weak;

/*
 * Each Service's backends, so that a new stream's pick looks at its own
 * Service's alone: "svc_nr" holds how many, "svc_backends" their indexes,
 * settings.svc_backends per Service (Service s's list starts at
 * s * settings.svc_backends). Only the daemon writes them, through mmap:
 * an index first, then the count, so that a pick sees a list at most
 * one change old (eligible() checks that a backend is of the Service).
 * An mmapped array's values are 8 bytes apart whatever their size, so
 * the lists are pairs of indexes (struct h2lb_svc_pair): to the daemon,
 * one flat array of __u32.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, H2LB_DEF_SERVICES);
	__type(key, __u32);
	__type(value, __u64);
} svc_nr SEC(".maps") __weak;

/* clang-format would read the product below as a pointer type */
/* clang-format off */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, H2LB_DEF_SERVICES * H2LB_DEF_SVC_BACKENDS / 2);
	__type(key, __u32);
	__type(value, struct h2lb_svc_pair);
} svc_backends SEC(".maps") __weak;
/* clang-format on */

/*
 * Pre-handshaken backend connections, H2LB_POOL_SLOTS slots per backend
 * (slot = backend * H2LB_POOL_SLOTS + i), 0 = empty. The daemon fills
 * empty slots through mmap; the verdict takes one with an atomic
 * exchange, so neither side needs a lock.
 */
/* clang-format would read the product below as a pointer type */
/* clang-format off */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, H2LB_DEF_BACKENDS * H2LB_POOL_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} pool SEC(".maps") __weak;
/* clang-format on */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct h2lb_config);
} lb_config SEC(".maps") __weak;

/* Round-robin cursor for backend choice. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} rr_cursor SEC(".maps") __weak;

/* One struct h2lb_counters per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct h2lb_counters);
} counters SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct h2lb_daemon_stats);
} daemon_stats SEC(".maps") __weak;

/* Backend connections the daemon is opening: socket cookie -> backend
 * index. sockops knows a leg by its cookie, not by the address it goes
 * to: one pod can be an endpoint of several Services. Sized for every
 * backend's pool at once (--max-backends * --pool-size), at most
 * --max-conns. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, (H2LB_DEF_BACKENDS * 8));
	__type(key, __u64);
	__type(value, __u32);
} new_legs SEC(".maps") __weak;

/* Written by the daemon, read by operators: the balanced Services. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, H2LB_DEF_SERVICES);
	__type(key, __u32);
	__type(value, struct h2lb_service);
} services SEC(".maps") __weak;

/* Balanced Service VIP:port -> its listener (intercept.bpf.c). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, H2LB_DEF_SERVICES);
	__type(key, struct h2lb_vip_key);
	__type(value, struct h2lb_vip);
} vips SEC(".maps") __weak;

/* Listener -> VIP:port, for cgroup/getpeername4 and 6. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, H2LB_DEF_SERVICES);
	__type(key, struct h2lb_vip_key);
	__type(value, struct h2lb_frontend);
} frontends SEC(".maps") __weak;

/* Client addresses that legs connect from (--leg-source client), and how
 * many legs each has: the tc program looks for a leg's socket only for
 * segments to these (intercept.bpf.c). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, H2LB_DEF_CONNS);
	__type(key, __u32);
	__type(value, __u32);
} leg_addrs SEC(".maps") __weak;

/* Bridge ports tc interception runs on: the bridge's MAC address. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4 * 256);
	__type(key, __u32);
	__type(value, struct h2lb_bridge_port);
} bridge_ports SEC(".maps") __weak;

/* Open streams of the clients of each address (--max-streams-per-address).
 * LRU: with more addresses than this, the least recently seen are
 * forgotten (and their count starts again). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, H2LB_DEF_CONNS);
	__type(key, __u32);
	__type(value, __u32);
} addr_streams SEC(".maps") __weak;

/*
 * The fast path (docs/fast-path.md, bpf/fast.bpf.c): clients' own sockets
 * on this node, by cookie, with the sk_msg program; and each one's state
 * by its address and port, found by the sockops of the socket h2lb
 * accepts for it (its anchor). LRU: a pair whose anchor never came
 * (the client's connect was taken by no listener) makes room.
 */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, H2LB_DEF_CONNS);
	__type(key, __u64);
	__type(value, __u64);
} fast_hash SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, H2LB_DEF_CONNS);
	__type(key, struct h2lb_fast_key);
	__type(value, struct h2lb_fast_pair);
} fast_pairs SEC(".maps") __weak;

/* The pair at @k, if it is still the one of accepted socket @anchor (a
 * reused address and port may have paired anew). */
static __always_inline void fast_pair_drop(struct h2lb_fast_key *k,
					   __u64 anchor)
{
	struct h2lb_fast_pair *p = bpf_map_lookup_elem(&fast_pairs, k);

	if (p && p->anchor == anchor)
		bpf_map_delete_elem(&fast_pairs, k);
}

/* Frames switched clients left unfinished (struct h2lb_fast_held), by
 * accepted socket; made when first needed, from the template. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, H2LB_DEF_CONNS);
	__type(key, __u64);
	__type(value, struct h2lb_fast_held);
} fast_held SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct h2lb_fast_held);
} fast_held_zero SEC(".maps") __weak;

/* Header blocks longer than a frame that switched clients left unfinished
 * (struct h2lb_fast_held_block), by accepted socket, until the next write;
 * made from the template (an array: a per-CPU value may not be this
 * large), which nothing writes. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, H2LB_DEF_CONNS);
	__type(key, __u64);
	__type(value, struct h2lb_fast_held_block);
} fast_held_block SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct h2lb_fast_held_block);
} fast_held_block_zero SEC(".maps") __weak;

/* The fast path's sink (H2LB_SINK_KEY): the receiving end of its
 * loopback pair, whose stream verdict drops everything (fast.bpf.c). */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} sink_rx SEC(".maps") __weak;

/* Bytes redirected to peers that their TCP has not acknowledged, as last
 * seen for each (struct h2lb_conn.queued), and what streams not answered
 * yet hold (H2LB_ST_RESERVED): the node's queue (bpf/budget.h). */
__u64 node_queued SEC(".bss") __weak;

/* Events for the daemon: closes, SETTINGS, GOAWAY, WINDOW_UPDATE... */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps") __weak;

/* Closes alone (struct h2lb_close_event): sized for every connection,
 * so that they are never lost to a flood of the events above. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, H2LB_CLOSE_RING); /* sized by kern.c */
} closes SEC(".maps") __weak;

#endif
