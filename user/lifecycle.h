/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The lifecycle of the daemon's connections: every state a client
 * connection or a backend leg goes through, and every transition, in one
 * table (lifecycle.c; drawn in docs/architecture.md). Pure: it says what
 * to do; conns.c does it. Nothing else assigns a connection's state.
 */
#ifndef H2LB_LIFECYCLE_H
#define H2LB_LIFECYCLE_H

#include <stdbool.h>
#include <stddef.h>

enum conn_state {
	CS_NEW,		/* made, no input yet */
	CS_CONNECTING,	/* leg: connect() in progress */
	CS_HANDSHAKING, /* leg: preface sent, waiting for the backend SETTINGS */
	CS_POOLED,	/* leg: handshaken, in its backend's pool */
	CS_BOUND,	/* leg: serving one client */
	CS_OPEN,	/* client: serving */
	CS_GOING_AWAY,	/* GOAWAY sent (client) or received (leg): takes no
			 * new streams, closes when its streams end */
	CS_CLOSING,	/* failed: GOAWAY sent, closes at its deadline */
	CS_CLOSED,	/* gone: nothing of it is left */
	CS_INJECTOR,	/* the injector's receiving end: never changes */
	CS_ADMITTING,	/* client: accepted, its first bytes not looked at
			 * yet (admission.h): outside the sockhash */
	CS_RAW_CONNECTING, /* not HTTP/2: its raw leg's connect() */
	CS_RAW,		   /* not HTTP/2: bytes go across whole (raw.c) */
	CS_MAX,
};

/* What happens to a connection: ring-buffer events (events.c maps each
 * type to one), the daemon's own sockets and timers, its decisions. */
enum conn_input {
	IN_ACCEPTED,	   /* client: accept() returned it */
	IN_CONNECTING,	   /* leg: connect() started */
	IN_CONNECTED,	   /* leg: connect() completed */
	IN_CONNECT_FAILED, /* leg: connect() failed */
	IN_SETTINGS,	   /* the peer's SETTINGS (event) */
	IN_WINDOW,	   /* a connection WINDOW_UPDATE (event) */
	IN_PROGRESS,	   /* DATA has been flowing in (event) */
	IN_REFUSED,	   /* client: a stream no backend could take (event) */
	IN_BOUND,	   /* leg: taken for a client (event, or at accept) */
	IN_GOAWAY,	   /* the peer's GOAWAY (event) */
	IN_ERROR,	   /* a connection error (event, or the daemon's) */
	IN_PEER_CLOSED,	   /* FIN or RST from the peer (event) */
	IN_DEADLINE,	   /* the handshake or the close deadline passed */
	IN_IDLE,	   /* going away and no stream is left */
	IN_STOP,	   /* client: the daemon stops gracefully, or the
			    * client was idle for --idle-timeout */
	IN_DISCARD,	   /* close now: its client, backend or daemon went */
	IN_STREAM_ERROR,   /* a stream error on a frame it sent (event) */
	IN_STREAM_WINDOW,  /* client: a stream bound to a leg with a larger
			   * stream window (event) */
	IN_PING,	   /* a PING the kernel left to the daemon (event) */
	IN_PREFACE,	   /* client: its first bytes are the HTTP/2 preface */
	IN_NOT_HTTP2,	   /* client: its first bytes are something else */
	IN_RAW_CONNECTING, /* raw leg: connect() started */
	IN_SETTINGS_ACK,   /* leg: its backend ACKed our SETTINGS (event);
			    * client: its ACKs wait (the tick) */
	IN_MAX,
};

/* What to do, in this order (conns.c: conn_input). */
enum conn_action {
	A_SEND_SETTINGS = 1 << 0,   /* client: our SETTINGS, first of all */
	A_BIND_FIRST = 1 << 1,	    /* client: its first leg (--policy) */
	A_SEND_PREFACE = 1 << 2,    /* leg: connected; preface + SETTINGS */
	A_ACK_SETTINGS = 1 << 3,    /* apply the peer's SETTINGS, ACK them */
	A_POOL_PUT = 1 << 4,	    /* leg: into its backend's pool */
	A_LINK_CLIENT = 1 << 5,	    /* leg: serve the client it was bound to */
	A_RELAY_WINDOW = 1 << 6,    /* leg: the client's windows, pool refill */
	A_WINDOW = 1 << 7,	    /* a WINDOW_UPDATE: refill windows */
	A_REFILL = 1 << 8,	    /* DATA flowed: refill windows */
	A_REFUSE_STREAM = 1 << 9,   /* client: RST_STREAM(REFUSED_STREAM) */
	A_NOTE_GOAWAY = 1 << 10,    /* client: its GOAWAY, logged */
	A_UNBIND = 1 << 11,	    /* leg: no new streams of its client */
	A_REFUSE_ABOVE = 1 << 12,   /* leg: streams above the GOAWAY's last
				     * id were never seen: REFUSED_STREAM */
	A_FAIL_STREAMS = 1 << 13,   /* leg: its calls end with UNAVAILABLE */
	A_DETACH = 1 << 14,	    /* leg: leaves its client altogether */
	A_BACKEND_FAILED = 1 << 15, /* leg: its backend's failure count */
	A_GOAWAY_STOP = 1 << 16,    /* client: GOAWAY(NO_ERROR), graceful */
	A_GOAWAY_ERROR = 1 << 17,   /* GOAWAY(error code) */
	A_CLOSE_SOON = 1 << 18,	    /* close once the GOAWAY is out */
	A_CLOSE = 1 << 19,	    /* close and forget it now */
	A_RESET_STREAM = 1 << 20,  /* RST_STREAM to it, and to the other side */
	A_STREAM_WINDOW = 1 << 21, /* client: WINDOW_UPDATE on the stream */
	A_PING_ACK = 1 << 22,	   /* the PING's ACK */
	A_AWAIT_BYTES = 1 << 23,   /* client: look at its first bytes when
				    * they come (admission.h) */
	A_RAW_LEG = 1 << 24,   /* client: a raw leg to a backend (--policy) */
	A_RAW_JOIN = 1 << 25,  /* raw leg: it and its client into the
				    * sockhash, each the other's peer */
	A_RAW_EOF = 1 << 26,   /* raw: FIN or RST; FIN passes on once
				    * what came before it is out */
	A_RAW_RESET = 1 << 27, /* raw: both close with RST (marked before
				* A_CLOSE is carried out) */
	A_SETTINGS_ACKED = 1 << 28, /* client: ACKs held for a lowered window
				     * go once its legs ACKed it */
};

struct transition {
	enum conn_state next;
	unsigned int actions; /* enum conn_action bits */
	bool valid;	      /* false: the input means nothing in this state */
};

/* @client: a client connection (else a backend leg). */
struct transition lifecycle_step(bool client, enum conn_state state,
				 enum conn_input in);

/* A row of the table: for a client (or a leg) in one of the states
 * @from, input @in leads to state @to (LIFECYCLE_STAY: it stays) and
 * @actions. docs/architecture.md shows the rows as a table, which
 * tests/unit/test_lifecycle.c checks against these. */
struct lifecycle_rule {
	bool client;
	unsigned int from; /* bit (1 << state) per state */
	enum conn_input in;
	enum conn_state to;
	unsigned int actions;
};

#define LIFECYCLE_STAY CS_MAX

const struct lifecycle_rule *lifecycle_rules(size_t *n);
const char *conn_state_name(enum conn_state s);
const char *conn_input_name(enum conn_input in);

#endif
