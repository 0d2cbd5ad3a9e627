// SPDX-License-Identifier: GPL-2.0
/*
 * Syscall programs the daemon runs (BPF_PROG_RUN) to change datapath
 * state with the same code, and the same atomics, as the verdict.
 */
#include "budget.h"
#include "maps.h"
#include "select.h"
#include "stream.h"

/* Run by the daemon (BPF_PROG_RUN) to close a stream it ended itself:
 * a dead backend's streams, refused streams after a GOAWAY. */
SEC("syscall")
int h2lb_close_stream(struct h2lb_close_args *a)
{
	struct h2lb_stream_key k = { .client = a->client, .id = a->stream };
	struct h2lb_stream *st = bpf_map_lookup_elem(&streams, &k);

	if (!st)
		return 1;
	stream_close(&k, st, a->how);
	return 0;
}

/* Run by the daemon when it sends a client GOAWAY: see
 * client_new_stream (verdict.bpf.c). Returns the last stream id for the
 * GOAWAY, or -1. */
SEC("syscall")
int h2lb_goaway_client(struct h2lb_goaway_args *a)
{
	__u64 client = a->client;
	struct h2lb_conn *c = bpf_map_lookup_elem(&conns, &client);

	if (!c)
		return -1;
	__sync_fetch_and_or(&c->flags, H2LB_CONN_GOAWAY);
	return __sync_fetch_and_add(&c->last_stream, 0);
}

/* Run by the daemon at accept: the client's first leg, chosen as every
 * stream's is (--policy), so that its first streams never find the pool
 * empty. Returns 0 with a->leg and a->backend set, or 1. */
SEC("syscall")
int h2lb_bind_first(struct h2lb_bind_args *a)
{
	__u64 client = a->client; /* keys must be on the stack */
	struct h2lb_conn *c = bpf_map_lookup_elem(&conns, &client);
	__u32 backend = 0;
	__u64 leg;

	if (!c)
		return 1;
	/* The client's first stream came first and picked: its leg0 is
	 * the answer. Another pick would move the tie-breaking cursor
	 * (rr_cursor) twice for this client, and with two backends tied,
	 * every new client would go to the same one. */
	leg = c->leg0;
	if (leg) {
		struct h2lb_conn *l = bpf_map_lookup_elem(&conns, &leg);

		if (!l)
			return 1;
		a->leg = leg;
		a->backend = l->backend;
		return 0;
	}
	leg = leg_pick(client, c, &backend, 0, -1);
	if (!leg)
		return 1;
	a->leg = leg;
	a->backend = backend;
	return 0;
}

/* Run by the daemon when a leg it opened for a client from the client's
 * own address has its backend's SETTINGS: it becomes the client's leg to
 * a->backend (and its leg0 if it has none). Returns 0, or 1. */
SEC("syscall")
int h2lb_bind_leg(struct h2lb_bind_args *a)
{
	__u64 client = a->client; /* keys must be on the stack */
	struct h2lb_conn *c = bpf_map_lookup_elem(&conns, &client);

	if (!c || leg_bind(client, a->leg, a->backend))
		return 1;
	__sync_val_compare_and_swap(&c->leg0, 0, a->leg);
	return 0;
}

/* Run by the daemon for a client that is not HTTP/2: the backend its
 * whole connection goes to, chosen by --policy with the same code as a
 * stream's. Stream windows mean nothing to it, and a backend ejected
 * because its HTTP/2 handshake fails (it speaks TLS, or HTTP/1.1) is
 * what it needs: only one TCP cannot reach is left out. Returns 0 with
 * a->backend set, or 1 (none). */
SEC("syscall")
int h2lb_raw_pick(struct h2lb_raw_args *a)
{
	__u64 client = a->client;
	struct h2lb_conn *c = bpf_map_lookup_elem(&conns, &client);
	struct pick_ctx p = { .tried = { -1, -1, -1, -1 } };
	int b;

	if (!c)
		return 1;
	p.service = c->service;
	p.rr = settings.policy == H2LB_POLICY_ROUND_ROBIN;
	p.raw = 1;
	b = pick_backend(&p);
	if (b < 0)
		return 1;
	a->backend = b;
	return 0;
}

/* Run by the daemon once a raw leg is connected, before either socket
 * enters the sockhash: the client and its leg are each other's peer,
 * and their bytes go across unparsed (H2LB_CONN_RAW). */
SEC("syscall")
int h2lb_raw_join(struct h2lb_raw_args *a)
{
	__u64 client = a->client, leg = a->leg;
	struct h2lb_conn *c = bpf_map_lookup_elem(&conns, &client);
	struct h2lb_conn *l = bpf_map_lookup_elem(&conns, &leg);

	if (!c || !l)
		return 1;
	c->peer = leg;
	l->peer = client;
	/* Their TCP's progress counts from now (verdict.bpf.c, raw_forward). */
	c->progress_ns = l->progress_ns = bpf_ktime_get_ns();
	__sync_fetch_and_or(&c->flags, H2LB_CONN_RAW);
	__sync_fetch_and_or(&l->flags, H2LB_CONN_RAW);
	count(H2LB_CNT_RAW_CONNS);
	return 0;
}

#define WRITE_ONCE(x, v) (*(volatile typeof(x) *)&(x) = (v))

/* Run by the daemon to set what it decides for a connection: the
 * connection window it granted the peer (before the WINDOW_UPDATE goes
 * out), stream windows and a leg's stream limit. */
SEC("syscall")
int h2lb_conn_set(struct h2lb_conn_args *a)
{
	__u64 cookie = a->cookie;
	struct h2lb_conn *c = bpf_map_lookup_elem(&conns, &cookie);

	if (!c)
		return 1;
	/* Aligned stores: the verdict sees the old or the new value. */
	if (a->set & H2LB_SET_RX_GRANT)
		WRITE_ONCE(c->rx_grant, a->rx_grant);
	if (a->set & H2LB_SET_STREAM_WINDOW)
		WRITE_ONCE(c->stream_window, a->stream_window);
	if (a->set & H2LB_SET_RESP_WINDOW)
		WRITE_ONCE(c->resp_window, a->resp_window);
	if (a->set & H2LB_SET_WAKE_TX)
		WRITE_ONCE(c->wake_tx, a->value);
	if (a->set & H2LB_SET_WAKE_RX)
		WRITE_ONCE(c->wake_rx, a->value);
	if (a->set & H2LB_SET_MAX_STREAMS)
		WRITE_ONCE(c->max_streams, a->max_streams);
	if (a->set & H2LB_SET_OWN_LEGS)
		__sync_fetch_and_or(&c->flags, H2LB_CONN_OWN_LEGS);
	/* Counted with what is redirected to it: once its TCP acknowledged
	 * tx_bytes, nothing sent to it is on its way (fast_rx_try). */
	if (a->set & H2LB_SET_TX_DIRECT)
		__sync_fetch_and_add(&c->tx_bytes, a->value);
	/* The count first: the ACK that reaches it sees the wait. */
	if (a->set & H2LB_SET_SETTINGS_SENT)
		__sync_fetch_and_add(&c->settings_sent, 1);
	if (a->set & H2LB_SET_SETTINGS_WAIT)
		__sync_lock_test_and_set(&c->settings_wait, 1);
	/* Its share of the node's queued bytes: what the daemon measured
	 * (a peer that read everything and sends nothing more is seen by
	 * no verdict), or nothing once it closes. */
	if (a->set & (H2LB_SET_QUEUED | H2LB_FORGET)) {
		__u64 q = a->set & H2LB_FORGET ? 0 : a->value;
		__u64 old = __sync_lock_test_and_set(&c->queued, q);

		__sync_fetch_and_add(&node_queued, q - old);
		WRITE_ONCE(c->backlog, a->set & H2LB_FORGET ? 0 : a->backlog);
	}
	/* A frame its own socket left unfinished (fast path) goes too, and
	 * so does its pair: the daemon may forget a connection it failed
	 * before the socket's close, when sockops would find no record
	 * (sockops.bpf.c, fast_unpair). */
	if (a->set & H2LB_FORGET) {
		bpf_map_delete_elem(&fast_held, &cookie);
		bpf_map_delete_elem(&fast_held_block, &cookie);
		if (c->fast) {
			struct h2lb_fast_key k = {
				.addr = c->fast_addr,
				.port = (__u16)c->fast_port
			};

			fast_pair_drop(&k, cookie);
		}
	}
	/* The WINDOW_UPDATE increments that came since the last time: the
	 * flag first, so that one coming meanwhile sends another event. */
	if (a->set & H2LB_TAKE_WINDOW) {
		__sync_lock_test_and_set(&c->window_event, 0);
		a->value = __sync_lock_test_and_set(&c->window_pending, 0);
	}
	return 0;
}
