// SPDX-License-Identifier: GPL-2.0
/*
 * The connection lifecycle as one table: for a client or a leg in a set
 * of states, an input leads to a state and a list of actions. The first
 * rule that matches applies; an input no rule matches means nothing in
 * that state (a late event about a connection already failing, say).
 * docs/architecture.md draws the same table.
 */
#include "lifecycle.h"

#define S(x) (1u << CS_##x)
#define LIVE_LEG                                                               \
	(S(CONNECTING) | S(HANDSHAKING) | S(POOLED) | S(BOUND) |               \
	 S(GOING_AWAY) | S(CLOSING))
#define LIVE_CLIENT (S(OPEN) | S(GOING_AWAY) | S(CLOSING))
#define RAW	    (S(RAW_CONNECTING) | S(RAW))

#define STAY LIFECYCLE_STAY

static const struct lifecycle_rule rules[] = {
	/* ---- client connections ---- */
	/* Admission: the client stays out of the sockhash, its bytes in its
	 * own receive queue, until they say what it speaks (admission.h). */
	{ true, S(NEW), IN_ACCEPTED, CS_ADMITTING, A_AWAIT_BYTES },
	{ true, S(ADMITTING), IN_PREFACE, CS_OPEN,
	  A_SEND_SETTINGS | A_BIND_FIRST },
	/* Not HTTP/2 (TLS, HTTP/1.1), or silent: the whole connection goes
	 * to one backend, as kube-proxy would send it (raw.c). */
	{ true, S(ADMITTING), IN_NOT_HTTP2, CS_RAW_CONNECTING, A_RAW_LEG },
	{ true, S(ADMITTING), IN_DEADLINE, CS_RAW_CONNECTING, A_RAW_LEG },
	{ true, S(ADMITTING) | S(RAW_CONNECTING), IN_PEER_CLOSED, CS_CLOSED,
	  A_CLOSE },
	{ true, S(RAW_CONNECTING), IN_CONNECTED, CS_RAW, 0 },
	{ true, S(RAW), IN_PEER_CLOSED, STAY, A_RAW_EOF },
	{ true, S(RAW), IN_IDLE, CS_CLOSED, A_CLOSE },
	{ true, S(RAW), IN_ERROR, CS_CLOSED, A_RAW_RESET | A_CLOSE },
	{ true, S(OPEN) | S(GOING_AWAY), IN_SETTINGS, STAY, A_ACK_SETTINGS },
	{ true, S(OPEN) | S(GOING_AWAY), IN_WINDOW, STAY, A_WINDOW },
	{ true, S(OPEN) | S(GOING_AWAY), IN_PROGRESS, STAY, A_REFILL },
	{ true, S(OPEN) | S(GOING_AWAY), IN_REFUSED, STAY, A_REFUSE_STREAM },
	{ true, S(OPEN) | S(GOING_AWAY), IN_GOAWAY, STAY, A_NOTE_GOAWAY },
	{ true, S(OPEN) | S(GOING_AWAY), IN_STREAM_ERROR, STAY,
	  A_RESET_STREAM },
	{ true, S(OPEN) | S(GOING_AWAY), IN_STREAM_WINDOW, STAY,
	  A_STREAM_WINDOW },
	{ true, S(OPEN) | S(GOING_AWAY), IN_PING, STAY, A_PING_ACK },
	{ true, S(OPEN) | S(GOING_AWAY), IN_SETTINGS_ACK, STAY,
	  A_SETTINGS_ACKED },
	{ true, S(OPEN), IN_STOP, CS_GOING_AWAY, A_GOAWAY_STOP },
	{ true, S(OPEN) | S(GOING_AWAY), IN_ERROR, CS_CLOSING,
	  A_GOAWAY_ERROR | A_CLOSE_SOON },
	{ true, S(CLOSING), IN_DEADLINE, CS_CLOSED, A_CLOSE },
	/* Told GOAWAY (stop, --idle-timeout) and no stream left: it has no
	 * more use for the connection than we have. */
	{ true, S(GOING_AWAY), IN_IDLE, CS_CLOSED, A_CLOSE },
	{ true, LIVE_CLIENT, IN_PEER_CLOSED, CS_CLOSED, A_CLOSE },
	{ true, S(NEW) | S(ADMITTING) | LIVE_CLIENT | RAW, IN_DISCARD,
	  CS_CLOSED, A_CLOSE },

	/* ---- backend legs ---- */
	{ false, S(NEW), IN_CONNECTING, CS_CONNECTING, 0 },
	{ false, S(CONNECTING), IN_CONNECTED, CS_HANDSHAKING, A_SEND_PREFACE },
	{ false, S(CONNECTING), IN_CONNECT_FAILED, CS_CLOSED,
	  A_BACKEND_FAILED | A_CLOSE },
	/* Its SETTINGS can be parsed before our connect() completion is
	 * seen: our preface must still go first. */
	{ false, S(CONNECTING), IN_SETTINGS, CS_POOLED,
	  A_SEND_PREFACE | A_ACK_SETTINGS | A_POOL_PUT },
	{ false, S(HANDSHAKING), IN_SETTINGS, CS_POOLED,
	  A_ACK_SETTINGS | A_POOL_PUT },
	{ false, S(POOLED) | S(BOUND) | S(GOING_AWAY), IN_SETTINGS, STAY,
	  A_ACK_SETTINGS },
	{ false, LIVE_LEG & ~S(CLOSING), IN_WINDOW, STAY, A_WINDOW },
	{ false, S(BOUND) | S(GOING_AWAY), IN_PROGRESS, STAY, A_REFILL },
	{ false, S(BOUND) | S(GOING_AWAY), IN_STREAM_ERROR, STAY,
	  A_RESET_STREAM },
	{ false, LIVE_LEG & ~S(CLOSING), IN_PING, STAY, A_PING_ACK },
	{ false, S(BOUND) | S(GOING_AWAY), IN_SETTINGS_ACK, STAY,
	  A_SETTINGS_ACKED },
	{ false, S(POOLED), IN_BOUND, CS_BOUND,
	  A_LINK_CLIENT | A_RELAY_WINDOW },
	/* Taken by the verdict while we were closing it: its client's
	 * streams on it cannot be served. */
	{ false, S(CLOSING), IN_BOUND, CS_CLOSED,
	  A_LINK_CLIENT | A_FAIL_STREAMS | A_CLOSE },
	{ false, S(BOUND) | S(GOING_AWAY), IN_GOAWAY, CS_GOING_AWAY,
	  A_UNBIND | A_REFUSE_ABOVE },
	{ false, S(CONNECTING) | S(HANDSHAKING) | S(POOLED), IN_GOAWAY,
	  CS_CLOSED, A_CLOSE },
	/* A backend that breaks the protocol before its handshake ends does
	 * not speak HTTP/2 (TLS, HTTP/1.1): its failure, with backoff, or
	 * the pool would reconnect to it hundreds of times a second. */
	{ false, S(CONNECTING) | S(HANDSHAKING), IN_ERROR, CS_CLOSING,
	  A_BACKEND_FAILED | A_GOAWAY_ERROR | A_CLOSE_SOON },
	{ false, LIVE_LEG & ~S(CLOSING), IN_ERROR, CS_CLOSING,
	  A_GOAWAY_ERROR | A_FAIL_STREAMS | A_DETACH | A_CLOSE_SOON },
	/* A bound leg serves one client: its backend closing it may be that
	 * client's doing (nghttpd closes on a client's bad frame), so it
	 * fails that client's calls on it, not the backend. A backend that
	 * died closes its pooled legs too, and fails its connects. */
	{ false, S(BOUND) | S(GOING_AWAY), IN_PEER_CLOSED, CS_CLOSED,
	  A_FAIL_STREAMS | A_CLOSE },
	{ false, S(CONNECTING) | S(HANDSHAKING) | S(POOLED), IN_PEER_CLOSED,
	  CS_CLOSED, A_BACKEND_FAILED | A_CLOSE },
	{ false, S(CLOSING), IN_PEER_CLOSED, CS_CLOSED, A_CLOSE },
	{ false, S(CONNECTING) | S(HANDSHAKING), IN_DEADLINE, CS_CLOSED,
	  A_BACKEND_FAILED | A_CLOSE },
	{ false, S(CLOSING), IN_DEADLINE, CS_CLOSED, A_CLOSE },
	{ false, S(GOING_AWAY), IN_IDLE, CS_CLOSED, A_CLOSE },
	/* A raw leg: a plain connection to a backend its client's bytes go
	 * to whole (raw.c). Its connect failing is its backend's failure,
	 * and the client is reset, as a backend's RST would. */
	{ false, S(NEW), IN_RAW_CONNECTING, CS_RAW_CONNECTING, 0 },
	{ false, S(RAW_CONNECTING), IN_CONNECTED, CS_RAW, A_RAW_JOIN },
	{ false, S(RAW_CONNECTING), IN_CONNECT_FAILED, CS_CLOSED,
	  A_BACKEND_FAILED | A_RAW_RESET | A_CLOSE },
	{ false, S(RAW_CONNECTING), IN_DEADLINE, CS_CLOSED,
	  A_BACKEND_FAILED | A_RAW_RESET | A_CLOSE },
	{ false, S(RAW), IN_PEER_CLOSED, STAY, A_RAW_EOF },
	{ false, S(RAW), IN_IDLE, CS_CLOSED, A_CLOSE },
	{ false, S(RAW), IN_ERROR, CS_CLOSED, A_RAW_RESET | A_CLOSE },
	{ false, S(NEW) | LIVE_LEG | RAW, IN_DISCARD, CS_CLOSED, A_CLOSE },
};

struct transition lifecycle_step(bool client, enum conn_state state,
				 enum conn_input in)
{
	struct transition t = { .next = state };

	for (unsigned int i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		const struct lifecycle_rule *r = &rules[i];

		if (r->client != client || r->in != in ||
		    !(r->from & (1u << state)))
			continue;
		t.next = r->to == STAY ? state : r->to;
		t.actions = r->actions;
		t.valid = true;
		break;
	}
	return t;
}

static const char *const state_names[CS_MAX] = {
	[CS_NEW] = "new",
	[CS_CONNECTING] = "connecting",
	[CS_HANDSHAKING] = "handshaking",
	[CS_POOLED] = "pooled",
	[CS_BOUND] = "bound",
	[CS_OPEN] = "open",
	[CS_GOING_AWAY] = "going-away",
	[CS_CLOSING] = "closing",
	[CS_CLOSED] = "closed",
	[CS_INJECTOR] = "injector",
	[CS_ADMITTING] = "admitting",
	[CS_RAW_CONNECTING] = "raw-connecting",
	[CS_RAW] = "raw",
};

static const char *const input_names[IN_MAX] = {
	[IN_ACCEPTED] = "accepted",
	[IN_CONNECTING] = "connecting",
	[IN_CONNECTED] = "connected",
	[IN_CONNECT_FAILED] = "connect-failed",
	[IN_SETTINGS] = "settings",
	[IN_WINDOW] = "window",
	[IN_PROGRESS] = "progress",
	[IN_REFUSED] = "refused",
	[IN_BOUND] = "bound",
	[IN_GOAWAY] = "goaway",
	[IN_ERROR] = "error",
	[IN_PEER_CLOSED] = "peer-closed",
	[IN_DEADLINE] = "deadline",
	[IN_IDLE] = "idle",
	[IN_STOP] = "stop",
	[IN_DISCARD] = "discard",
	[IN_STREAM_ERROR] = "stream-error",
	[IN_STREAM_WINDOW] = "stream-window",
	[IN_PING] = "ping",
	[IN_PREFACE] = "preface",
	[IN_NOT_HTTP2] = "not-http2",
	[IN_RAW_CONNECTING] = "raw-connecting",
	[IN_SETTINGS_ACK] = "settings-ack",
};

const char *conn_state_name(enum conn_state s)
{
	return s < CS_MAX ? state_names[s] : "?";
}

const char *conn_input_name(enum conn_input in)
{
	return in < IN_MAX ? input_names[in] : "?";
}

const struct lifecycle_rule *lifecycle_rules(size_t *n)
{
	*n = sizeof(rules) / sizeof(rules[0]);
	return rules;
}
