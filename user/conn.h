/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The daemon's connections: clients and backend legs, by socket cookie.
 * A table and its walker, no behaviour: conns.c owns what happens to
 * them, and lifecycle.c their states.
 */
#ifndef H2LB_CONN_H
#define H2LB_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "flow.h"
#include "lifecycle.h"

/* A socket the daemon owns (it never reads it: the sockhash does). */
struct uconn {
	uint64_t cookie;
	int fd;
	int role;		/* enum h2lb_role */
	int backend;		/* leg: backend index */
	int service;		/* client: index of its Service */
	enum conn_state state;	/* set by conns.c from lifecycle_step() only */
	bool preface_sent;	/* leg */
	bool settings_seen;	/* client: its first SETTINGS received */
	bool flow_held;		/* client: a peer lags, windows held */
	bool window_due;	/* leg: not told its client's window yet */
	bool peer_counted;	/* client: in its address's count */
	struct uconn *client;	/* leg: the client it serves */
	struct uconn *legs;	/* client: its bound and going-away legs */
	struct uconn *next_leg; /* leg: next in its client's list */
	/* --leg-source client (client_legs.c): a leg opened from its client's
	 * address for that client alone, never pooled (own); until it is
	 * bound, its client (owner) and that client's list of such legs
	 * (pending, chained by next_leg). */
	bool own;
	bool own_legs; /* client: its legs are its own */
	struct uconn *owner;
	struct uconn *pending;
	uint64_t legs_look_ms; /* client: when its legs are next topped up */
	uint32_t own_addr;     /* own leg: the client address it comes from */
	bool preface_seen; /* client with own legs: admitted once one is ready */
	uint32_t init_window; /* client: its SETTINGS_INITIAL_WINDOW_SIZE */
	/* client: our SETTINGS ACKs held until its legs ACK a lowered
	 * window, the value its last SETTINGS gave, and when the legs'
	 * time is up (settings_ack.c) */
	uint32_t acks_owed;
	uint32_t window_next;
	uint64_t acks_wait_ms;
	/* The stream window the other side starts with, as h2lb knows it:
	 * client: the one we told it; leg: its backend's SETTINGS. */
	uint32_t stream_window;
	uint32_t goaway_last; /* leg: the last stream id of its GOAWAY */
	/* client: error GOAWAYs its legs got, and when the first did */
	int leg_errors;
	uint64_t leg_error_ms;
	/* Connection-level flow control: grants, totals since the
	 * connection opened (flow.h); the bytes moved are the kernel's. */
	int64_t peer_grant;
	int64_t our_grant;
	int64_t peer_window_max;  /* client: its largest window seen (flow.h) */
	unsigned int refill_turn; /* client: the leg its refills start from */
	/* client: the marks last written to its kernel record, past which
	 * small WINDOW_UPDATEs wake us (window.c, set_wake) */
	uint64_t wake_tx, wake_rx;
	uint64_t deadline_ms;	/* handshake or close deadline */
	uint64_t last_rx_bytes; /* watchdog: bytes parsed at the last tick */
	uint64_t last_data;	/* client: DATA bytes in and out, last tick */
	int stalled_ticks;
	/* The tick looks at a connection (kernel record, TCP_INFO) when this
	 * time comes: at every tick while it is busy, now and then when it
	 * is idle (conns.c, conns_tick). */
	uint64_t next_look_ms;
	/* Busy at the last look: its bytes in and out then, and how long
	 * the tick waits between looks while they stay so (conns.c,
	 * busy_look). */
	uint64_t quiet_mark;
	uint32_t quiet_wait_ms;
	bool unparsed;	    /* the watchdog's last look found bytes unparsed */
	uint64_t opened_ms; /* client: accepted */
	uint64_t active_ms; /* client: last seen with a stream open */
	uint32_t last_stream; /* client: the highest stream id, last look */
	uint32_t peer_addr;   /* client: its address (conn_set_peer) */
	uint16_t peer_port;   /* client: its port, network byte order */
	/* Not HTTP/2 (raw.c): a client and its raw leg, each the other's
	 * raw_peer, and how far each direction got. */
	bool raw;      /* leg: a raw leg */
	bool fin_in;   /* its peer sent FIN */
	bool shut_out; /* we sent its peer FIN, after all it was sent */
	bool reset;    /* closed with RST */
	struct uconn *raw_peer; /* the other end, while both are open */
	uint64_t raw_handed;	/* what its TCP had taken, last look */
	uint64_t raw_moved_ms;	/* ... and when that last grew */
	/* leg written synchronously: the daemon's frames that wait for it
	 * (divert.c) */
	uint8_t *held;
	size_t held_len;
	struct uconn *next; /* hash chain */
};

#define CONN_BUCKETS 4096
#define ADDR_BUCKETS 1024

/* Client connections per peer address (--max-conns-per-client). */
struct addr_count {
	uint32_t addr;
	int n;
	struct addr_count *next;
};

struct conn_table {
	struct uconn *bucket[CONN_BUCKETS];
	struct addr_count *by_addr[ADDR_BUCKETS];
	int nr;
	int clients; /* of the nr, client connections */
};

/* Make @c's close() send RST, not FIN: SO_LINGER with no time. */
void conn_set_reset(const struct uconn *c);
/* Before the close() of a connection whose peer closed its end: if bytes
 * for that peer still wait in @c's send queue, make the close a RST
 * (conn_set_reset) and return true. A FIN after them would leave the
 * socket, orphaned in LAST-ACK, probing a window that does not open for
 * minutes with those bytes held (test_h2lb_node_buffer). */
bool conn_reset_unsent(const struct uconn *c);

struct uconn *conn_find(struct conn_table *t, uint64_t cookie);
/* A new entry for socket @fd (its cookie read from the socket), or NULL. */
struct uconn *conn_new(struct conn_table *t, int fd, int role);
/* Remove @c from the table and free it (its fd is the caller's). */
void conn_free(struct conn_table *t, struct uconn *c);
/* Client @c comes from @addr (network byte order): counted until freed. */
void conn_set_peer(struct conn_table *t, struct uconn *c, uint32_t addr);
/* Client connections from @addr in the table. */
int conn_peer_count(struct conn_table *t, uint32_t addr);
/* What @c's TCP took of all that was sent to it: the data its peer
 * acknowledged (*@acked) plus what waits in its send queue (*@handed,
 * acked included); free send buffer, half kept free as rule H wants
 * (*@room, if not NULL). 0, or -1. */
int conn_tcp_sent(const struct uconn *c, uint64_t *acked, uint64_t *handed,
		  int64_t *room);

/*
 * The one walker of the table: @c takes every connection in turn. The
 * body may not remove connections (collect cookies, act after the walk);
 * `break` leaves only the current bucket.
 */
#define conn_for_each(t, c)                                                    \
	for (int conn_b_ = 0; conn_b_ < CONN_BUCKETS; conn_b_++)               \
		for (struct uconn *c = (t)->bucket[conn_b_]; c; c = c->next)

#endif
