// SPDX-License-Identifier: GPL-2.0
/*
 * The daemon's connections, clients and backend legs (conns.h): every
 * input goes through conn_input(), which asks lifecycle.c for the
 * transition and carries out its actions, in the order enum conn_action
 * lists them.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_received */
#include <unistd.h>

#include "admission.h"
#include "client_legs.h"
#include "conns.h"
#include "divert.h"
#include "h2.h"
#include "kern.h"
#include "log.h"
#include "source.h"
#include "raw.h"
#include "settings_ack.h"
#include "window.h"

#define HANDSHAKE_MS	  3000 /* a backend leg's connect and SETTINGS */
#define CLOSE_DELAY_MS	  200  /* a GOAWAY leaves before the FIN */
#define FAST_DRAIN_MS	  1000 /* fast_rx_queued */
#define ACCEPT_BATCH	  64
#define MAX_STREAMS_ENDED 4096
/* A client whose legs get error GOAWAYs twice within this is cut off. */
#define CLIENT_LEG_ERROR_MS 10000
#define REFUSED_LOG_MS	    1000 /* at most one line about refusals */
/* A client told GOAWAY(NO_ERROR) with no stream open is closed this long
 * after: a request it sent meanwhile gets its REFUSED_STREAM first. */
#define GOAWAY_GRACE_MS 1000
/* An idle connection (no stream open, no window held back, nothing
 * moving) is looked at every IDLE_LOOK_MS, give or take a quarter, not at
 * every tick: 10,000 idle clients and their legs would otherwise cost
 * 400,000 syscalls a second. */
#define IDLE_LOOK_MS 1000
/* A busy connection with nothing of it moving is looked at every tick at
 * first, then less and less often, down to once in this long (busy_look). */
#define QUIET_LOOK_FIRST_MS 100 /* two ticks */
#define QUIET_LOOK_MAX_MS   IDLE_LOOK_MS
/* Room kept for the backend legs of the clients already served: new
 * clients are refused when the table (the kernel's conns map and
 * sockhash hold --max-conns) or the fds come this close to full. */
#define CONN_RESERVE(max)  ((max) / 8)
#define LEG_RESERVE(max)   ((max) / 16 < 1024 ? (max) / 16 : 1024)
#define FD_RESERVE(nofile) ((nofile) / 8 > 64 ? (nofile) / 8 : 64)

/* ---- streams ------------------------------------------------------------ */

struct streams_of {
	uint64_t client, leg; /* leg 0: all of the client's */
	struct h2lb_stream_key *keys;
	struct h2lb_stream *vals;
	int n, max;
};

static int collect_stream(const struct h2lb_stream_key *key,
			  const struct h2lb_stream *st, void *arg)
{
	struct streams_of *s = arg;

	if (key->client != s->client || (s->leg && st->leg != s->leg))
		return 0;
	s->keys[s->n] = *key;
	s->vals[s->n] = *st;
	return ++s->n == s->max;
}

/* Streams of @client (only those on @leg, unless 0), collected first: the
 * map cannot be walked while entries are being deleted. */
static int streams_of(struct lb *lb, uint64_t client, uint64_t leg,
		      struct h2lb_stream_key *keys, struct h2lb_stream *vals,
		      int max)
{
	struct streams_of s = { .client = client,
				.leg = leg,
				.keys = keys,
				.vals = vals,
				.max = max };

	kern_each_stream(lb->k, collect_stream, &s);
	return s.n;
}

/*
 * End every stream of @leg above @above: one not answered yet gets a 503
 * with gRPC's UNAVAILABLE (h2_unavailable_response), one answered in part
 * RST_STREAM(INTERNAL_ERROR) (@refuse: RST_STREAM(REFUSED_STREAM), which
 * clients retry).
 */
static void end_streams(struct lb *lb, struct uconn *leg, uint32_t above,
			bool refuse)
{
	static struct h2lb_stream_key keys[MAX_STREAMS_ENDED];
	static struct h2lb_stream vals[MAX_STREAMS_ENDED];
	struct uconn *c = leg->client;
	uint8_t f[H2_FRAME_MAX];
	int n;

	if (!c)
		return;
	n = streams_of(lb, c->cookie, leg->cookie, keys, vals,
		       MAX_STREAMS_ENDED);
	for (int i = 0; i < n; i++) {
		size_t len;

		if (keys[i].id <= above)
			continue;
		/* Close first: the stream must be gone from the kernel before
		 * its last frame reaches the client. */
		if (kern_stream_close(lb->k, c->cookie, keys[i].id))
			continue;
		/* A response cut short must not end as if it were whole:
		 * trailers after part of a body would make a plain HTTP
		 * client take the part for all of it. */
		if (refuse)
			len = h2_rst_stream(f, keys[i].id, H2_REFUSED_STREAM);
		else if (vals[i].flags & H2LB_ST_SERVER_END)
			len = h2_rst_stream(f, keys[i].id, H2_CANCEL);
		else if (vals[i].flags & H2LB_ST_RESPONDED)
			len = h2_rst_stream(f, keys[i].id, H2_INTERNAL_ERROR);
		else
			len = h2_unavailable_response(
				f, keys[i].id, "h2lb: backend connection lost");
		inject(&lb->inj, c->cookie, f, len);
	}
	if (n)
		pr_info("ended %d stream(s) of client %llx on backend %d%s", n,
			(unsigned long long)c->cookie, leg->backend,
			refuse ? " (refused)" : "");
}

/* Its kernel record counts the streams bound to it (stream.h): a walk of
 * the streams map per going-away leg per tick would cost what all the
 * node's streams cost. */
static bool leg_has_streams(struct lb *lb, struct uconn *leg)
{
	struct h2lb_conn k;

	return leg->client && !kern_conn(lb->k, leg->cookie, &k) &&
	       k.open_streams;
}

/* conns_sweep's walk: the streams of the clients in @lb->gone (sorted). */
struct sweep {
	const struct lb *lb;
	struct h2lb_stream_key *keys;
	int n, max;
};

static int sweep_stream(const struct h2lb_stream_key *key,
			const struct h2lb_stream *st, void *arg)
{
	struct sweep *s = arg;

	if (!bsearch(&key->client, s->lb->gone, s->lb->n_gone,
		     sizeof(*s->lb->gone), cmp_u64))
		return 0;
	s->keys[s->n] = *key;
	return ++s->n == s->max;
}

/*
 * Close the streams left by the clients closed since the last sweep: one
 * walk of the streams map for all of them, not one per client. A walk
 * costs two syscalls per stream of the node, and per client it made
 * releasing clients quadratic: 8,000 that closed at once, each with a
 * stream open, took 32 to 41 s to go (1 s with the sweep). Called once a
 * turn of the daemon's loop, and whenever the list is full.
 */
void conns_sweep(struct lb *lb)
{
	static struct h2lb_stream_key keys[MAX_STREAMS_ENDED];
	struct sweep s = { .lb = lb, .keys = keys, .max = MAX_STREAMS_ENDED };

	if (!lb->n_gone)
		return;
	qsort(lb->gone, lb->n_gone, sizeof(*lb->gone), cmp_u64);
	/* Deleting while walking would restart the walk: collect, close,
	 * and walk again while a batch came back full. */
	for (int round = 0; round < 64; round++) {
		s.n = 0;
		kern_each_stream(lb->k, sweep_stream, &s);
		for (int i = 0; i < s.n; i++)
			kern_stream_close(lb->k, keys[i].client, keys[i].id);
		if (s.n < s.max)
			break;
	}
	/* Kept until now: closing a stream gives its client's address its
	 * share back through the client's record (stream.h). */
	for (int i = 0; i < lb->n_gone; i++)
		kern_conn_forget(lb->k, lb->gone[i]);
	lb->n_gone = 0;
}

/* ---- the actions ---------------------------------------------------------- */

/*
 * The stream window a new client of Service @svc is told: never more than
 * a ready backend of it allows, so that no leg it may be bound to can be
 * overrun. A backend that later allows less is not chosen for it
 * (bpf/select.bpf.c); one that allows more is made up for, stream by
 * stream (H2LB_EV_STREAM_WINDOW). docs/flow-control.md.
 */
static uint32_t client_stream_window(struct lb *lb, int svc)
{
	uint32_t w = lb->opts->stream_window;
	int b;

	for_each_svc_backend(&lb->bs, svc, j, b)
		if (kern_backend_state(lb->k, b) == H2LB_BE_READY &&
		    kern_backend_window(lb->k, b) < w)
			w = kern_backend_window(lb->k, b);
	return w;
}

static int send_server_settings(struct lb *lb, struct uconn *c)
{
	struct h2lb_conn_args a = { .cookie = c->cookie,
				    .set = H2LB_SET_STREAM_WINDOW };
	struct h2_setting_pair s[] = {
		/* No dynamic table: header blocks can go to any backend
		 * (docs/kernel-facts.md, "HPACK without state"). */
		{ H2_SET_HEADER_TABLE_SIZE, 0 },
		{ H2_SET_MAX_CONCURRENT_STREAMS, lb->opts->max_streams },
		{ H2_SET_INITIAL_WINDOW_SIZE, 0 },
		/* A block over our limit would fail the connection
		 * (docs/conformance.md): a client told the limit fails
		 * only the request that would pass it. */
		{ H2_SET_MAX_HEADER_LIST_SIZE, H2LB_MAX_HEADER_LIST },
	};
	uint8_t f[H2_FRAME_MAX];
	int one = 1;
	size_t n;

	/* Our SETTINGS must be the first frame the client gets: a response
	 * that overtakes it fails the connection (nghttp: "SETTINGS
	 * expected"). So it is written straight to the socket, before the
	 * socket enters the sockhash: until then the kernel neither parses
	 * the client's bytes nor redirects anything to it. What the client
	 * queued before waits for a new segment (docs/kernel-facts.md K8);
	 * setting SO_RCVLOWAT runs the parser over it at once
	 * (tcp_set_rcvlowat calls tcp_data_ready). It counts in tx_bytes
	 * with what the kernel sends it (H2LB_SET_TX_DIRECT). */
	c->stream_window = client_stream_window(lb, c->service);
	s[2].value = a.stream_window = c->stream_window;
	n = h2_settings(f, s, sizeof(s) / sizeof(s[0]));
	a.set |= H2LB_SET_TX_DIRECT;
	a.value = n;
	if (inject_direct(&lb->inj, c->fd, f, n) || kern_conn_set(lb->k, &a) ||
	    kern_client_attach(lb->k, c->cookie, c->fd) ||
	    setsockopt(c->fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one))) {
		pr_warn_ratelimited("client %llx: cannot set up: %s",
				    (unsigned long long)c->cookie,
				    strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * At accept, give the client a leg from the pool, chosen in the kernel by
 * --policy as every stream's is: its first streams then never race a
 * burst of other new clients for the pool. A request the client sent
 * after accept() may be parsed while this runs; the kernel keeps the
 * first leg either pick sets as leg0 (leg_pick in bpf/select.h), so
 * the streams before the client's SETTINGS ACK still share one leg.
 */
static void bind_first(struct lb *lb, struct uconn *c)
{
	struct input_arg a = { .client = c };
	uint32_t backend;
	uint64_t cookie;
	struct uconn *leg;

	if (kern_leg_bind_first(lb->k, c->cookie, &cookie, &backend))
		return;
	leg = conn_find(&lb->conns, cookie);
	if (!leg) {
		pr_warn_ratelimited("client %llx: bound to unknown leg %llx",
				    (unsigned long long)c->cookie,
				    (unsigned long long)cookie);
		return;
	}
	conn_input(lb, leg, IN_BOUND, &a);
}

static void send_preface(struct lb *lb, struct uconn *leg)
{
	const struct h2_setting_pair s[] = {
		{ H2_SET_HEADER_TABLE_SIZE, 0 },
		{ H2_SET_ENABLE_PUSH, 0 },
		/* No response DATA until the client's own window size is
		 * relayed, when the leg is bound (window.c). */
		{ H2_SET_INITIAL_WINDOW_SIZE, 0 },
		/* And the same limit for the answers' header blocks. */
		{ H2_SET_MAX_HEADER_LIST_SIZE, H2LB_MAX_HEADER_LIST },
	};
	uint8_t f[H2_PREFACE_LEN + H2_FRAME_MAX];
	size_t n;

	epoll_ctl(lb->epfd, EPOLL_CTL_DEL, leg->fd, NULL);
	if (leg->preface_sent)
		return;
	memcpy(f, H2_PREFACE, H2_PREFACE_LEN);
	n = H2_PREFACE_LEN +
	    h2_settings(f + H2_PREFACE_LEN, s, sizeof(s) / sizeof(s[0]));
	kern_settings_sent(lb->k, leg->cookie, false);
	inject(&lb->inj, leg->cookie, f, n);
	leg->preface_sent = true;
}

struct synced {
	uint64_t leg;
	uint32_t ids[MAX_STREAMS_ENDED];
	int n;
};

static int collect_synced(const struct h2lb_stream_key *key,
			  const struct h2lb_stream *st, void *arg)
{
	struct synced *s = arg;

	if (st->leg == s->leg && (st->flags & H2LB_ST_WINDOW_SYNC))
		s->ids[s->n++] = key->id;
	return s->n == MAX_STREAMS_ENDED;
}

/*
 * A leg's backend changed its stream window (grpc-go's BDP estimator
 * grows it mid-connection): it applies the change to its open streams
 * (RFC 9113 6.9.2), so the client is told the same for the streams it
 * was told the larger window of; the others learn it when they need it.
 */
static void leg_stream_window(struct lb *lb, struct uconn *leg, uint32_t w)
{
	static struct synced s;
	struct h2lb_conn_args a = { .cookie = leg->cookie,
				    .stream_window = w,
				    .set = H2LB_SET_STREAM_WINDOW };
	int64_t d = (int64_t)w - leg->stream_window;
	uint8_t f[H2_FRAME_MAX];

	leg->stream_window = w;
	kern_conn_set(lb->k, &a);
	kern_backend_set_window(lb->k, leg->backend, w);
	if (!d || !leg->client)
		return;
	s.leg = leg->cookie;
	s.n = 0;
	kern_each_stream(lb->k, collect_synced, &s);
	if (d < 0 && s.n)
		pr_warn_ratelimited(
			"backend %d lowered its stream window by %lld: %d stream(s) may overrun it",
			leg->backend, (long long)-d, s.n);
	for (int i = 0; i < s.n && d > 0; i++)
		inject(&lb->inj, leg->client->cookie, f,
		       h2_window_update(f, s.ids[i], d));
}

/* The peer's SETTINGS: a client's window size is relayed to its legs
 * (stream windows are end to end; settings_ack.c); a leg's stream window
 * and stream limit are the kernel's to know. 0, or the HTTP/2 error code
 * of a connection error. */
static uint32_t ack_settings(struct lb *lb, struct uconn *c,
			     const struct input_arg *a)
{
	const struct h2lb_settings_frame *s = a->settings;
	uint8_t f[H2_FRAME_MAX];

	if (c->role == H2LB_ROLE_CLIENT)
		return client_settings(lb, c, s);
	if (s->set & (1u << H2_SET_INITIAL_WINDOW_SIZE))
		leg_stream_window(lb, c, s->value[H2_SET_INITIAL_WINDOW_SIZE]);
	if (s->set & (1u << H2_SET_MAX_CONCURRENT_STREAMS)) {
		struct h2lb_conn_args m = {
			.cookie = c->cookie,
			.max_streams = s->value[H2_SET_MAX_CONCURRENT_STREAMS],
			.set = H2LB_SET_MAX_STREAMS,
		};

		kern_conn_set(lb->k, &m);
	}
	inject(&lb->inj, c->cookie, f, h2_settings_ack(f));
	return 0;
}

/* A leg of client @c ACKed our SETTINGS, or the tick looks at the ACKs
 * @c waits for: legs too late fail, and the ACKs go once none is left
 * late (settings_ack.c). */
static void settings_acked(struct lb *lb, struct uconn *c)
{
	struct input_arg e = {
		.value = H2_SETTINGS_TIMEOUT,
		.why = "no SETTINGS ACK in time",
	};
	struct uconn *l;
	int legs = 0;

	for (l = c->legs; l; l = l->next_leg)
		legs++;
	/* Each leg failed leaves c->legs (A_DETACH); bounded all the same. */
	while (legs-- > 0 && (l = client_settings_overdue(lb, c)))
		conn_input(lb, l, IN_ERROR, &e);
	client_settings_check(lb, c);
}

static void link_client(struct uconn *leg, struct uconn *client)
{
	leg->client = client;
	leg->next_leg = client->legs;
	client->legs = leg;
}

/* No new stream of its client goes to @leg (the kernel's binding). */
static void leg_unbind(struct lb *lb, struct uconn *leg)
{
	if (leg->client)
		kern_leg_unbind(lb->k, leg->client->cookie, leg->backend,
				leg->cookie);
}

/* The leg leaves its client: no new streams, no windows. */
static void detach(struct lb *lb, struct uconn *leg)
{
	struct uconn *c = leg->client, **p;

	if (!c)
		return;
	for (p = &c->legs; *p && *p != leg; p = &(*p)->next_leg)
		;
	if (*p)
		*p = leg->next_leg;
	leg_unbind(lb, leg);
	leg->client = NULL;
}

static void open_legs(struct lb *lb);
static void own_leg_ready(struct lb *lb, struct uconn *leg);
static void own_leg_failed(struct lb *lb, struct uconn *leg, const char *why);
static void own_leg_gone(struct uconn *leg);
static void own_legs_open(struct lb *lb, struct uconn *c);
static void own_legs_more(struct lb *lb, struct uconn *c);
static bool own_legs_ready(const struct uconn *c);
static void own_legs_link(struct lb *lb, struct uconn *c);
static void own_legs_top_up(struct lb *lb, struct uconn *c, uint64_t now);

/* A connection WINDOW_UPDATE: 0, or FLOW_CONTROL_ERROR if it takes the
 * window over 2^31-1. */
static uint32_t window_update(struct lb *lb, struct uconn *c, uint32_t inc)
{
	struct h2lb_conn k = { 0 };

	kern_conn(lb->k, c->cookie, &k);
	if (!flow_window_ok(c->peer_grant - (int64_t)k.tx_data, inc))
		return H2_FLOW_CONTROL_ERROR;
	c->peer_grant += inc;
	if (c->role == H2LB_ROLE_CLIENT)
		window_legs(lb, c, false);
	else if (c->client)
		window_client(lb, c->client, false);
	return 0;
}

/* A stream error: RST_STREAM to the side that erred, and to the other
 * side of the stream, if it was open there: CANCEL toward a leg, and
 * INTERNAL_ERROR toward a client whose backend erred. */
static void reset_stream(struct lb *lb, struct uconn *c,
			 const struct input_arg *a)
{
	uint8_t f[H2_FRAME_MAX];

	/* A client's are its own business; a backend's is a fault in it
	 * (its window overrun, a frame against the rules) an operator
	 * should hear of. */
	if (c->role == H2LB_ROLE_CLIENT)
		pr_debug("client %llx: stream %u: stream error %u",
			 (unsigned long long)c->cookie, a->stream, a->value);
	else
		pr_warn_ratelimited(
			"backend %d leg %llx: stream %u: stream error %u%s",
			c->backend, (unsigned long long)c->cookie, a->stream,
			a->value,
			a->value == H2_FLOW_CONTROL_ERROR
				? " (DATA beyond the stream's window)"
				: "");
	inject(&lb->inj, c->cookie, f, h2_rst_stream(f, a->stream, a->value));
	if (a->other)
		inject(&lb->inj, a->other, f,
		       h2_rst_stream(f, a->stream,
				     c->role == H2LB_ROLE_CLIENT
					     ? H2_CANCEL
					     : H2_INTERNAL_ERROR));
}

/* What a backend answers with GOAWAY(@code) is about the frames its
 * leg carried, a client's alone: a header block it could not decode, a
 * flood it would not take. That client's connection fails with the same
 * code; the backend stays in service for the others. */
static bool blames_client(uint32_t code)
{
	return code == H2_COMPRESSION_ERROR || code == H2_PROTOCOL_ERROR ||
	       code == H2_FRAME_SIZE_ERROR || code == H2_ENHANCE_YOUR_CALM;
}

/* For the backends' error books: a client still served, not cut off. */
bool conns_client_in_good_standing(void *ctx, uint64_t cookie)
{
	struct uconn *c = conn_find(&((struct lb *)ctx)->conns, cookie);

	return c && (c->state == CS_OPEN || c->state == CS_GOING_AWAY);
}

/*
 * A backend sent GOAWAY(@code), an error, on @leg, which carried one
 * client's frames only. A code that names those frames cuts the client
 * off at once. Any other (nghttpd answers a rapid reset flood with
 * INTERNAL_ERROR) may be either's doing: the leg just goes away, and the
 * backend notes it (errors across clients eject it, backend.h). A second
 * such GOAWAY on the client's legs within CLIENT_LEG_ERROR_MS, from a
 * backend that errs for no other client, makes it the client's doing:
 * GOAWAY(ENHANCE_YOUR_CALM). Either way the backend stays in service for
 * the others: a client that could eject backends could take the node's
 * service down (issue #11).
 */
static void leg_goaway_error(struct lb *lb, struct uconn *leg, uint32_t code)
{
	struct uconn *c = leg->client;
	struct input_arg e = { .value = code };
	uint64_t now = now_ms();

	if (c->state != CS_OPEN && c->state != CS_GOING_AWAY)
		return; /* cut off already: its legs go one by one */
	if (!blames_client(code)) {
		bool again = c->leg_errors &&
			     now - c->leg_error_ms < CLIENT_LEG_ERROR_MS;

		backend_leg_error(&lb->bs, leg->backend, c->cookie, now,
				  conns_client_in_good_standing, lb);
		if (!again) {
			c->leg_errors = 1;
			c->leg_error_ms = now;
			return;
		}
		if (backend_error_clients(&lb->bs, leg->backend, now, 0,
					  c->cookie,
					  conns_client_in_good_standing, lb))
			return; /* it fails others too: not this client's doing */
		e.value = H2_ENHANCE_YOUR_CALM;
	}
	pr_info("client %llx cut off: backend %d sent GOAWAY %u on its leg",
		(unsigned long long)c->cookie, leg->backend, code);
	conn_input(lb, c, IN_ERROR, &e);
}

/* Whether the verdict took pooled @leg for a client (its LEG_BOUND event
 * not seen yet, or lost to a full ring buffer): then its backend closing
 * it is that client's matter, not the backend's failure. */
static bool leg_taken(struct lb *lb, struct uconn *leg)
{
	struct h2lb_conn k;

	return !kern_conn(lb->k, leg->cookie, &k) && k.peer;
}

static void refill(struct lb *lb, struct uconn *c)
{
	if (c->role == H2LB_ROLE_CLIENT)
		window_client(lb, c, false);
	else if (c->client)
		window_legs(lb, c->client, false);
}

static void refuse_stream(struct lb *lb, struct uconn *c, uint32_t stream)
{
	uint8_t f[H2_FRAME_MAX];

	/* One line per stream would flood the log (a client resetting
	 * streams as fast as it opens them); conns_tick sums them up. */
	pr_debug("client %llx: stream %u refused%s",
		 (unsigned long long)c->cookie, stream,
		 c->state == CS_GOING_AWAY
			 ? ": going away"
			 : ", no backend connection available");
	if (c->state != CS_GOING_AWAY)
		lb->refused_unlogged++;
	inject(&lb->inj, c->cookie, f,
	       h2_rst_stream(f, stream, H2_REFUSED_STREAM));
}

static void goaway_stop(struct lb *lb, struct uconn *c)
{
	uint8_t f[H2_FRAME_MAX];
	int last = kern_client_goaway(lb->k, c->cookie);

	if (last < 0)
		return;
	inject(&lb->inj, c->cookie, f, h2_goaway(f, last, H2_NO_ERROR, NULL));
	pr_debug("client %llx: GOAWAY, last stream %d",
		 (unsigned long long)c->cookie, last);
}

static void goaway_error(struct lb *lb, struct uconn *c, uint32_t code,
			 const char *why)
{
	uint8_t f[H2_FRAME_MAX];
	uint32_t last = 0;

	if (c->role == H2LB_ROLE_CLIENT) {
		/* Its new streams are refused from now on: a client cut off
		 * for flooding gets no more legs while its GOAWAY leaves. */
		int l = kern_client_goaway(lb->k, c->cookie);

		last = l < 0 ? 0 : l;
	}
	pr_warn_ratelimited("%s %llx: connection error %u, sending GOAWAY%s%s",
			    c->role == H2LB_ROLE_CLIENT ? "client"
							: "backend leg",
			    (unsigned long long)c->cookie, code,
			    why ? ": " : "", why ? why : "");
	inject(&lb->inj, c->cookie, f, h2_goaway(f, last, code, why));
}

/* Close @c and forget it; it was in state @from. */
static void close_conn(struct lb *lb, struct uconn *c, enum conn_state from)
{
	struct uconn *other = raw_close(c); /* if it is not HTTP/2 */
	bool forget = true;

	if (other)
		conn_input(lb, other, IN_DISCARD, NULL);
	if (c->role == H2LB_ROLE_CLIENT) {
		struct h2lb_conn k;

		while (c->legs)
			conn_input(lb, c->legs, IN_DISCARD, NULL);
		while (c->pending)
			conn_input(lb, c->pending, IN_DISCARD, NULL);
		/* Whatever streams are left die with the connection, at the
		 * next sweep (conns_sweep), which forgets its record after
		 * them. */
		if (!kern_conn(lb->k, c->cookie, &k) && k.open_streams) {
			if (lb->n_gone == LB_GONE_MAX)
				conns_sweep(lb);
			lb->gone[lb->n_gone++] = c->cookie;
			forget = false;
		}
	} else {
		/* Bound in the kernel while its client was admitted. */
		if (c->owner && from == CS_POOLED)
			kern_leg_unbind(lb->k, c->owner->cookie, c->backend,
					c->cookie);
		own_leg_gone(c);
		if (c->own)
			kern_leg_addr_add(lb->k, c->own_addr, -1);
		detach(lb, c);
		/* sockops may never take it */
		if (from == CS_CONNECTING || from == CS_RAW_CONNECTING)
			kern_leg_unexpect(lb->k, c->cookie);
	}
	if (forget)
		kern_conn_forget(lb->k, c->cookie);
	close(c->fd);
	conn_free(&lb->conns, c);
}

/* ---- admission ---------------------------------------------------------- */

/*
 * A client just accepted stays outside the sockhash until its first bytes
 * say what it speaks: they wait in its own receive queue (TCP's window
 * holds the rest back), and the loop hears of more through epoll (edge
 * triggered: each new segment wakes it once). Its deadline is the
 * --first-bytes-timeout.
 */
static void await_bytes(struct lb *lb, struct uconn *c)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLET,
				  .data.u64 = c->cookie };

	c->deadline_ms = c->opened_ms + lb->opts->first_bytes_timeout_ms;
	if (epoll_ctl(lb->epfd, EPOLL_CTL_ADD, c->fd, &ev))
		pr_warn_ratelimited("client %llx: epoll: %s",
				    (unsigned long long)c->cookie,
				    strerror(errno));
}

/*
 * Look at an admitting client's first bytes (a peek of the preface's
 * length at most: the bytes stay where they are, and are counted as read
 * by the daemon) and do what admission_decide() says.
 */
static void admission_check(struct lb *lb, struct uconn *c)
{
	uint8_t first[ADMISSION_PEEK];
	struct admission_facts f = {
		.first = first,
		.waited_ms = now_ms() - c->opened_ms,
		.timeout_ms = lb->opts->first_bytes_timeout_ms,
	};
	ssize_t n = recv(c->fd, first, sizeof(first), MSG_PEEK | MSG_DONTWAIT);
	enum conn_input in;

	if (n < 0 && errno != EAGAIN && errno != EINTR) {
		conn_input(lb, c, IN_DISCARD, NULL); /* reset meanwhile */
		return;
	}
	if (!n)
		return; /* gone without a byte: its close event follows */
	if (n > 0) {
		f.len = n;
		lb->stats.bytes_read += n;
	}
	switch (admission_decide(&f)) {
	case ADMIT_HTTP2:
		in = IN_PREFACE;
		break;
	case ADMIT_RAW:
		in = IN_NOT_HTTP2;
		break;
	default:
		return;
	}
	/* A client whose legs come from its address: they are opened now
	 * that it speaks HTTP/2, and it is served once the first is ready
	 * (own_leg_ready admits it then). */
	if (in == IN_PREFACE && c->own_legs && !own_legs_ready(c)) {
		epoll_ctl(lb->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		if (!c->preface_seen)
			own_legs_more(lb, c);
		c->preface_seen = true;
		c->deadline_ms = c->opened_ms + HANDSHAKE_MS;
		return;
	}
	conn_input(lb, c, in, NULL);
}

/* A client that is not HTTP/2: its raw leg (raw.c). One that cannot be
 * made is reset, as a backend's RST would reach it through kube-proxy. */
static void raw_leg(struct lb *lb, struct uconn *c)
{
	struct uconn *leg;
	int r;

	/* HTTP/2 legs opened from its address meanwhile are of no use. */
	while (c->pending)
		conn_input(lb, c->pending, IN_DISCARD, NULL);
	r = raw_leg_open(lb, c, &leg);

	if (r < 0) {
		lb->stats.raw_failed++;
		c->reset = true;
		/* A leg made takes its client with it. */
		conn_input(lb, leg ? leg : c, IN_DISCARD, NULL);
		return;
	}
	conn_input(lb, leg, IN_RAW_CONNECTING, NULL);
	if (r > 0)
		conn_input(lb, leg, IN_CONNECT_FAILED, NULL);
}

/* ---- the transitions -------------------------------------------------------- */

/* Record @c's new state; what follows from a state alone follows here. */
static void set_state(struct lb *lb, struct uconn *c, enum conn_state to)
{
	enum conn_state from = c->state;

	c->state = to;
	/* Admitted, or not: the loop no longer waits for its bytes. */
	if (from == CS_ADMITTING && to != from)
		epoll_ctl(lb->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->role != H2LB_ROLE_BACKEND || from == to)
		return;
	if (to == CS_CONNECTING) {
		c->deadline_ms = now_ms() + HANDSHAKE_MS;
		lb->stats.legs++;
	}
	/* A client's own leg is in no pool and not in its books. */
	if (c->own)
		return;
	backend_leg_moved(&lb->bs, c->backend, from, to);
	/* Out of the pool, unless the verdict took it (then a LEG_BOUND
	 * event is on its way: see lifecycle.c, CLOSING + BOUND). */
	if (from == CS_POOLED && to != CS_BOUND)
		kern_pool_remove(lb->k, c->backend, c->cookie);
}

void conn_input(struct lb *lb, struct uconn *c, enum conn_input in,
		const struct input_arg *arg)
{
	static const struct input_arg none;
	const struct input_arg *a = arg ? arg : &none;
	bool client = c->role == H2LB_ROLE_CLIENT;
	struct transition t = lifecycle_step(client, c->state, in);
	enum conn_state from = c->state;
	unsigned int act = t.actions;

	c->next_look_ms = 0; /* something happened: look at the next tick */
	if (!t.valid) {
		pr_debug("%s %llx: %s ignored while %s",
			 client ? "client" : "leg",
			 (unsigned long long)c->cookie, conn_input_name(in),
			 conn_state_name(from));
		return;
	}
	set_state(lb, c, t.next);

	if (act & A_AWAIT_BYTES)
		await_bytes(lb, c);
	if (act & A_RAW_LEG) {
		raw_leg(lb, c); /* @c may be gone */
		return;
	}
	if (act & A_RAW_JOIN) {
		if (raw_join(lb, c)) {
			conn_input(lb, c, IN_ERROR, NULL);
			return;
		}
		conn_input(lb, c->raw_peer, IN_CONNECTED, NULL);
	}
	if ((act & A_RAW_EOF) && raw_eof(lb, c)) {
		conn_input(lb, c, IN_ERROR, NULL);
		return;
	}
	if ((act & A_SEND_SETTINGS) && send_server_settings(lb, c)) {
		conn_input(lb, c, IN_DISCARD, NULL);
		return;
	}
	if ((act & A_BIND_FIRST) && c->own_legs)
		own_legs_link(lb, c);
	else if (act & A_BIND_FIRST)
		bind_first(lb, c);
	if (act & A_SEND_PREFACE)
		send_preface(lb, c);
	if (act & A_ACK_SETTINGS) {
		uint32_t err = ack_settings(lb, c, a);

		if (err) {
			struct input_arg e = { .value = err };

			conn_input(lb, c, IN_ERROR, &e);
			return;
		}
	}
	if (act & A_POOL_PUT) {
		/* The handshake re-admits an ejected backend even when its
		 * pool is full (the probe of backends_to_open). */
		backend_handshaken(&lb->bs, c->backend, now_ms());
		if (c->own) { /* not pooled: its client's, at once */
			own_leg_ready(lb, c);
			return;
		}
		if (!kern_pool_put(lb->k, c->backend, c->cookie)) {
			conn_input(lb, c, IN_DISCARD, NULL); /* pool full */
			return;
		}
	}
	if (act & A_LINK_CLIENT)
		link_client(c, a->client);
	if (act & A_RELAY_WINDOW) {
		/* Refill the pool now rather than at the next tick: a burst
		 * of new clients empties it fast. */
		open_legs(lb);
		window_relay_leg(lb, c);
		window_refill(lb, c->client, false);
	}
	if (act & A_WINDOW) {
		uint32_t err = window_update(lb, c, a->value);

		if (err) {
			struct input_arg e = { .value = err };

			conn_input(lb, c, IN_ERROR, &e);
			return;
		}
	}
	if (act & A_REFILL)
		refill(lb, c);
	if (act & A_REFUSE_STREAM)
		refuse_stream(lb, c, a->stream);
	if ((act & A_NOTE_GOAWAY) && a->value != H2_NO_ERROR)
		pr_warn_ratelimited("client %llx sent GOAWAY, error %u",
				    (unsigned long long)c->cookie, a->value);
	if (act & A_UNBIND) {
		pr_info("backend %d leg %llx: GOAWAY %u, last stream %u",
			c->backend, (unsigned long long)c->cookie, a->value,
			a->stream);
		leg_unbind(lb, c);
		if (c->client && a->value != H2_NO_ERROR)
			leg_goaway_error(lb, c, a->value);
	}
	if (act & A_REFUSE_ABOVE)
		end_streams(lb, c, a->stream, true);
	if (act & A_FAIL_STREAMS) {
		if (in == IN_PEER_CLOSED || in == IN_BOUND)
			pr_warn_ratelimited(
				"backend %d leg %llx lost: %s", c->backend,
				(unsigned long long)c->cookie,
				in == IN_BOUND
					? "closed while being bound"
					: "connection closed by backend");
		/* Unbound first: a client that reads how its streams ended
		 * sends its next request at once, and the kernel bound it to
		 * this leg while it still could, where it was lost (one such
		 * request in each of 3 runs of test_h2lb_rogue_backend). */
		leg_unbind(lb, c);
		end_streams(lb, c, 0, false);
	}
	if (act & A_DETACH)
		detach(lb, c);
	if ((act & A_BACKEND_FAILED) && c->raw)
		lb->stats.raw_failed++; /* its client is reset */
	if (act & A_BACKEND_FAILED) {
		const char *why =
			in == IN_DEADLINE && c->raw ? "connect timed out"
			: in == IN_DEADLINE ? "no HTTP/2 handshake in time"
			: in == IN_CONNECT_FAILED ? "connect failed"
			: in == IN_ERROR
				? "protocol error in its HTTP/2 handshake"
				: "connection closed by backend";

		/* TCP itself failed: no raw connection goes there either
		 * (not a client's own leg: a policy may deny that client). */
		if (!c->own &&
		    (from == CS_CONNECTING || from == CS_RAW_CONNECTING))
			kern_backend_set_tcp_down(lb->k, c->backend, true);
		if (c->own)
			own_leg_failed(lb, c, why);
		else if (from == CS_POOLED && leg_taken(lb, c))
			pr_info("backend %d leg %llx closed as a client took it",
				c->backend, (unsigned long long)c->cookie);
		else
			backend_failed(&lb->bs, c->backend, now_ms(), why);
	}
	if (act & A_GOAWAY_STOP) {
		goaway_stop(lb, c);
		c->deadline_ms = now_ms() + GOAWAY_GRACE_MS;
	}
	if (act & A_GOAWAY_ERROR)
		goaway_error(lb, c, a->value, a->why);
	if (act & A_CLOSE_SOON)
		c->deadline_ms = now_ms() + CLOSE_DELAY_MS;
	if (act & A_RESET_STREAM)
		reset_stream(lb, c, a);
	if ((act & A_SETTINGS_ACKED) && (client || c->client))
		settings_acked(lb, client ? c : c->client);
	if ((act & A_PING_ACK) && a->ping) {
		uint8_t f[H2_FRAME_MAX];

		inject(&lb->inj, c->cookie, f, h2_ping_ack(f, a->ping));
	}
	if (act & A_STREAM_WINDOW) {
		uint8_t f[H2_FRAME_MAX];

		inject(&lb->inj, c->cookie, f,
		       h2_window_update(f, a->stream, a->value));
	}
	if (act & A_RAW_RESET)
		raw_reset(c);
	/* Its peer closed: what waits for it in our send queue, it will not
	 * read (a client on the fast path closes with FIN even when it left
	 * bytes unread, which its psock held: our LAST-ACK after them
	 * stayed for minutes). A raw connection's FIN closes nothing here:
	 * raw.c passes it on, half-closes are its peers' to make. */
	if ((act & A_CLOSE) && in == IN_PEER_CLOSED && conn_reset_unsent(c))
		lb->stats.reset_unsent++;
	if (act & A_CLOSE)
		close_conn(lb, c, from); /* @c is gone */
}

/* ---- the daemon's sockets ---------------------------------------------- */

static struct uconn *conn_open(struct lb *lb, int fd, int role)
{
	struct uconn *c = conn_new(&lb->conns, fd, role);
	int one = 1;

	if (!c) {
		close(fd);
		return NULL;
	}
	/* Frames leave as soon as they are redirected: without this, Nagle
	 * holds small frames back until the peer's delayed ACK (40 ms). */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* The fast path writes to legs synchronously, and only what their
	 * send buffer takes with half of it free (rule H, docs/fast-path.md):
	 * flow control keeps what is in flight to a leg within
	 * --peer-buffer (flow.c), so that much again, and a frame, always
	 * fits. The kernel doubles it; it is charged only as used. */
	if (role == H2LB_ROLE_BACKEND && lb->opts && lb->opts->fast_path) {
		int64_t want = lb->opts->peer_buffer + (1 << 20);
		int buf = want < (1 << 29) ? (int)want : 1 << 29;

		setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf));
	}
	return c;
}

/* Close a client at accept, and forget the record sockops made of it. */
static void refuse(struct lb *lb, int fd, __u64 *counter, const char *why)
{
	socklen_t len = sizeof(uint64_t);
	uint64_t cookie;

	if (!getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len))
		kern_conn_forget(lb->k, cookie);
	close(fd);
	(*counter)++;
	pr_warn_ratelimited("client refused: %s", why);
}

/* Out of fds: the spare one makes room to accept the client, and close
 * it, rather than leave it in the backlog, where the listener would stay
 * readable and the loop would spin. */
static void accept_at_emfile(struct lb *lb, int listen_fd)
{
	int fd;

	if (lb->spare_fd < 0)
		return;
	close(lb->spare_fd);
	fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0)
		refuse(lb, fd, &lb->stats.refused_full,
		       "out of file descriptors");
	lb->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/*
 * May a client from @a, accepted as @fd, be served? A full table or fd
 * set is a refusal at once, never a client left waiting: room is kept
 * for the legs of the clients already served (CONN_RESERVE, FD_RESERVE).
 * The lowest free fd is the one accept() returns, so @fd itself says how
 * many are open.
 */
static bool admit(struct lb *lb, int fd, const struct sockaddr_in *a)
{
	uint32_t max = lb->opts->max_conns_per_client;

	if (lb->conns.nr >= (int)(lb->opts->max_conns -
				  CONN_RESERVE(lb->opts->max_conns)) ||
	    (lb->nofile && fd >= lb->nofile - FD_RESERVE(lb->nofile))) {
		refuse(lb, fd, &lb->stats.refused_full,
		       "connection table or file descriptors full");
		return false;
	}
	if (max &&
	    conn_peer_count(&lb->conns, a->sin_addr.s_addr) >= (int)max) {
		refuse(lb, fd, &lb->stats.refused_per_client,
		       "--max-conns-per-client reached");
		return false;
	}
	return true;
}

void conns_accept(struct lb *lb, int listen_fd, int svc, bool own_legs)
{
	struct rlimit rl;

	/* As it is now: an operator may change it (prlimit). */
	if (!getrlimit(RLIMIT_NOFILE, &rl))
		lb->nofile = rl.rlim_cur > 1 << 30 ? 1 << 30 : (int)rl.rlim_cur;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_in a = { 0 };
		socklen_t alen = sizeof(a);
		int fd = accept4(listen_fd, (struct sockaddr *)&a, &alen,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct uconn *c;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				accept_at_emfile(lb, listen_fd);
			else if (errno != EAGAIN && errno != EINTR)
				pr_warn_ratelimited("accept: %s",
						    strerror(errno));
			return;
		}
		if (!admit(lb, fd, &a))
			continue;
		c = conn_open(lb, fd, H2LB_ROLE_CLIENT);
		if (!c)
			continue;
		c->service = svc;
		c->opened_ms = c->active_ms = now_ms();
		c->peer_port = a.sin_port;
		lb->stats.clients++;
		conn_set_peer(&lb->conns, c, a.sin_addr.s_addr);
		/* Its legs will come from its address (admission_check). */
		if (own_legs)
			own_legs_open(lb, c);
		conn_input(lb, c, IN_ACCEPTED, NULL);
		pr_debug("client %llx accepted", (unsigned long long)c->cookie);
		/* An HTTP/2 client's preface is usually here already. */
		if (c->state == CS_ADMITTING)
			admission_check(lb, c);
	}
}

/*
 * A socket for a leg to @b: from the node's address, or for @owner from
 * its address, on its own port if it can (the same port for all its
 * legs: they go to different backends), else on any.
 */
static int leg_socket(struct uconn *owner, bool any_port)
{
	struct sockaddr_in from = { .sin_family = AF_INET };

	if (!owner)
		return socket(AF_INET,
			      SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	from.sin_addr.s_addr = owner->peer_addr;
	from.sin_port = any_port ? 0 : owner->peer_port;
	return source_socket(&from);
}

struct uconn *conns_open_leg(struct lb *lb, int b, struct uconn *owner)
{
	struct epoll_event ev = { .events = EPOLLOUT };
	const struct sockaddr_in *a = &lb->bs.be[b].addr;
	struct uconn *c;
	int fd;

	/* The conns map also holds the clients in the listen backlog (up to
	 * 1024; LEG_RESERVE): a leg it has no room for would never be known
	 * to the kernel, and would count as its backend's failure. */
	if (lb->conns.nr >=
	    (int)(lb->opts->max_conns - LEG_RESERVE(lb->opts->max_conns)))
		return NULL;
	for (int any_port = 0;; any_port++) {
		fd = leg_socket(owner, any_port);
		if (fd < 0) {
			if (owner)
				pr_warn_ratelimited(
					"leg from the client's address: %s",
					strerror(errno));
			return NULL;
		}
		c = conn_open(lb, fd, H2LB_ROLE_BACKEND);
		if (!c)
			return NULL;
		c->backend = b;
		if (owner) { /* on its list before anything can fail it */
			c->own = true;
			c->owner = owner;
			c->next_leg = owner->pending;
			owner->pending = c;
			c->own_addr = owner->peer_addr;
			kern_leg_addr_add(lb->k, c->own_addr, 1);
		}
		/* sockops must know it as a leg of @b once it is
		 * established. */
		if (kern_leg_expect(lb->k, c->cookie, b)) {
			conn_input(lb, c, IN_DISCARD, NULL);
			return NULL;
		}
		conn_input(lb, c, IN_CONNECTING, NULL);
		if (!connect(fd, (const struct sockaddr *)a, sizeof(*a)) ||
		    errno == EINPROGRESS)
			break;
		/* The client's port to this backend is taken (a leg of an
		 * earlier connection in TIME_WAIT, say): any port will do. */
		if (owner && !any_port && errno == EADDRNOTAVAIL) {
			conn_input(lb, c, IN_DISCARD, NULL);
			continue;
		}
		conn_input(lb, c, IN_CONNECT_FAILED, NULL);
		return NULL;
	}
	ev.data.u64 = c->cookie;
	epoll_ctl(lb->epfd, EPOLL_CTL_ADD, fd, &ev);
	return c;
}

/* ---- legs from the client's own address (client_legs.h) ---------------- */

#define OWN_LEGS_LOOK_MS 1000 /* an open client's legs topped up */

/* Open legs from @c's address to the backends client_legs_choose()
 * names. */
static void own_legs_more(struct lb *lb, struct uconn *c)
{
	int b[H2LB_MAX_CLIENT_LEGS], n;

	if (lb->stopping)
		return;
	n = client_legs_choose(lb, c, b, H2LB_MAX_CLIENT_LEGS);
	for (int i = 0; i < n; i++)
		if (conns_open_leg(lb, b[i], c))
			lb->stats.source_legs++;
}

/* At accept: @c's legs will come from its address, once it has shown it
 * speaks HTTP/2 (admission_check opens them). If none can be opened (no
 * ready backend), the tick closes it, as a Service with no endpoint
 * refuses connections. */
static void own_legs_open(struct lb *lb, struct uconn *c)
{
	struct h2lb_conn_args a = { .cookie = c->cookie,
				    .set = H2LB_SET_OWN_LEGS };

	/* Before any leg is bound: its streams must never take a pooled
	 * leg, which comes from the node's address. */
	if (kern_conn_set(lb->k, &a))
		return;
	c->own_legs = true;
	c->legs_look_ms = now_ms() + OWN_LEGS_LOOK_MS;
}

/* After a backend closed one of them, or new backends came. */
static void own_legs_top_up(struct lb *lb, struct uconn *c, uint64_t now)
{
	c->legs_look_ms = now + OWN_LEGS_LOOK_MS;
	own_legs_more(lb, c);
}

/* @leg leaves its client's list of legs being opened. */
static void own_leg_gone(struct uconn *leg)
{
	struct uconn **p;

	if (!leg->owner)
		return;
	for (p = &leg->owner->pending; *p && *p != leg; p = &(*p)->next_leg)
		;
	if (*p)
		*p = leg->next_leg;
	leg->owner = NULL;
	leg->next_leg = NULL;
}

/* Whether a leg from @c's address has handshaken: bound, or bound in
 * the kernel only while @c is being admitted. */
static bool own_legs_ready(const struct uconn *c)
{
	if (c->legs)
		return true;
	for (const struct uconn *l = c->pending; l; l = l->next_leg)
		if (l->state == CS_POOLED)
			return true;
	return false;
}

/* @c is served now: its legs bound in the kernel while it was admitted
 * are linked to it, and their windows relayed (IN_BOUND). */
static void own_legs_link(struct lb *lb, struct uconn *c)
{
	struct input_arg a = { .client = c };
	struct uconn *l = c->pending, *next;

	for (; l; l = next) {
		next = l->next_leg;
		if (l->state != CS_POOLED)
			continue;
		own_leg_gone(l);
		conn_input(lb, l, IN_BOUND, &a);
	}
}

/*
 * Own leg @leg handshook: it is bound to its client in the kernel at once,
 * so that the client's first request, parsed as soon as the client is
 * attached, finds it. A client already served links it now (IN_BOUND
 * relays its window); one still being admitted does when it is served
 * (own_legs_link: our SETTINGS must be the first frame it gets), which is
 * now if its preface came already.
 */
static void own_leg_ready(struct lb *lb, struct uconn *leg)
{
	struct uconn *c = leg->owner;
	struct input_arg a = { .client = c };

	if (!c || kern_leg_bind(lb->k, c->cookie, leg->cookie, leg->backend)) {
		conn_input(lb, leg, IN_DISCARD, NULL);
		return;
	}
	if (c->state == CS_ADMITTING) {
		if (c->preface_seen)
			conn_input(lb, c, IN_PREFACE, NULL);
		return;
	}
	own_leg_gone(leg);
	conn_input(lb, leg, IN_BOUND, &a);
}

/* Own leg @leg did not connect or handshake: the client's matter (a
 * NetworkPolicy may deny it), unless the legs of several clients fail
 * (backend.h). A client left with no leg while it waits is closed by the
 * next tick, as a direct connection would have failed (not here: this
 * may run inside own_legs_more, which still uses the client). */
static void own_leg_failed(struct lb *lb, struct uconn *leg, const char *why)
{
	struct uconn *c = leg->owner;

	lb->stats.source_leg_failures++;
	own_leg_gone(leg);
	if (!c)
		return;
	pr_warn_ratelimited(
		"client %llx: backend %d: %s from the client's address",
		(unsigned long long)c->cookie, leg->backend, why);
	backend_leg_error(&lb->bs, leg->backend, c->cookie, now_ms(),
			  conns_client_in_good_standing, lb);
	c->next_look_ms = 0;
}

/* Keep every backend's pool full. */
static void open_legs(struct lb *lb)
{
	uint64_t now = now_ms();

	if (lb->stopping)
		return;
	for (int b = 0; b < lb->bs.nr; b++)
		for (int n = backends_to_open(&lb->bs, b, lb->opts->pool_size,
					      now);
		     n > 0; n--)
			conns_open_leg(lb, b, NULL);
}

void conns_connected(struct lb *lb, uint64_t cookie)
{
	struct uconn *c = conn_find(&lb->conns, cookie);
	socklen_t len = sizeof(int);
	int err = 0;

	if (!c || (c->state != CS_CONNECTING && c->state != CS_RAW_CONNECTING))
		return;
	epoll_ctl(lb->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
		pr_debug("backend %d: connect: %s", c->backend, strerror(err));
		conn_input(lb, c, IN_CONNECT_FAILED, NULL);
		return;
	}
	kern_backend_set_tcp_down(lb->k, c->backend, false);
	conn_input(lb, c, IN_CONNECTED, NULL);
}

void conns_ready(struct lb *lb, uint64_t cookie)
{
	struct uconn *c = conn_find(&lb->conns, cookie);

	if (c && c->state == CS_ADMITTING)
		admission_check(lb, c);
	else
		conns_connected(lb, cookie);
}

/*
 * Watchdog (docs/kernel-facts.md K8 and K9): bytes TCP received wait
 * unparsed and nothing moves; one more segment from the peer gets the
 * parser going, so draw one with a PING. SIOCINQ cannot tell (on a
 * sockmap socket it reports the psock's queue, not TCP's); TCP_INFO's
 * bytes_received less the bytes the verdict saw can.
 */
static bool watchdog(struct lb *lb, struct uconn *c, const struct h2lb_conn *k)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	uint8_t f[H2_FRAME_MAX];
	bool moved = k->rx_bytes != c->last_rx_bytes;

	c->unparsed = false;
	if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) ||
	    ti.tcpi_bytes_received <= k->rx_bytes || moved) {
		c->last_rx_bytes = k->rx_bytes;
		c->stalled_ticks = 0;
		return moved; /* bytes moving: look again soon */
	}
	c->unparsed = true;
	if (++c->stalled_ticks < 2)
		return true;
	c->stalled_ticks = 0;
	lb->stats.watchdog_pings++;
	pr_debug("watchdog: %llu bytes unparsed on %llx, sending PING",
		 (unsigned long long)(ti.tcpi_bytes_received - k->rx_bytes),
		 (unsigned long long)c->cookie);
	inject(&lb->inj, c->cookie, f, h2_ping(f, c->cookie));
	return true;
}

/*
 * Each tick, for a client: windows held back for a peer that lagged get
 * another look; and a client whose streams are open but whose DATA has not
 * moved since the last tick gets whatever refill is due, small or not. A
 * refill otherwise waits for a WINDOW_UPDATE or the next 32 KiB mark, and
 * a leg left with less window than it takes to reach that mark waited for
 * ever (grpc-js streaming from grpc-go through h2lb, now and then).
 */
static void window_tick(struct lb *lb, struct uconn *c,
			const struct h2lb_conn *k)
{
	uint64_t moved = k->rx_data + k->tx_data;

	if (c->flow_held || (k->open_streams && moved == c->last_data))
		window_refill(lb, c, !c->flow_held);
	c->last_data = moved;
}

#define MAX_DUE 1024
/* Not a lifecycle input: the tick tops up a client's own legs. */
#define IN_TOP_UP (IN_MAX + 1)

/*
 * A client on the fast path's response direction with bytes still in its
 * socket's psock queue (the worker moves them to its receive queue): our
 * FIN, which comes by TCP, would end its reads before them (tcp_bpf
 * returns 0 at RCV_SHUTDOWN once the receive queue is empty). Its close
 * waits for them, FAST_DRAIN_MS at most past its deadline.
 */
static bool fast_rx_queued(struct lb *lb, struct uconn *c,
			   const struct h2lb_conn *k, uint64_t now)
{
	struct h2lb_conn fresh;

	if (!(k->flags & H2LB_CONN_FAST_RX) ||
	    now >= c->deadline_ms + FAST_DRAIN_MS)
		return false;
	return !window_measure(lb, c, &fresh) && fresh.backlog > 0;
}

/*
 * A client's own timeouts, from a look at its kernel record @k: one that
 * has not sent its preface and SETTINGS in time fails
 * (GOAWAY(PROTOCOL_ERROR)); one with no stream open for --idle-timeout
 * is told GOAWAY(NO_ERROR), and closed once GOAWAY_GRACE_MS have passed
 * with still no stream open. IN_MAX: none is due.
 */
static enum conn_input client_due(struct lb *lb, struct uconn *c,
				  const struct h2lb_conn *k, uint64_t now)
{
	const struct run_opts *o = lb->opts;

	if (k->open_streams || k->last_stream != c->last_stream)
		c->active_ms = now;
	c->last_stream = k->last_stream;
	if (c->state == CS_GOING_AWAY)
		return !k->open_streams && now >= c->deadline_ms &&
				       !fast_rx_queued(lb, c, k, now)
			       ? IN_IDLE
			       : IN_MAX;
	if (c->state != CS_OPEN)
		return IN_MAX;
	if (!c->settings_seen && o->handshake_timeout_ms &&
	    now - c->opened_ms >= o->handshake_timeout_ms) {
		pr_debug("client %llx: no preface and SETTINGS in time",
			 (unsigned long long)c->cookie);
		return IN_ERROR;
	}
	if (o->idle_timeout_ms && now - c->active_ms >= o->idle_timeout_ms) {
		pr_debug("client %llx: idle, GOAWAY",
			 (unsigned long long)c->cookie);
		return IN_STOP;
	}
	return IN_MAX;
}

/* When to look at an idle connection again: spread, so that thousands
 * accepted at once are not all looked at in the same tick. */
static uint64_t next_idle_look(uint64_t now)
{
	static uint32_t x = 2463534242u;

	x ^= x << 13; /* xorshift32 */
	x ^= x >> 17;
	x ^= x << 5;
	return now + IDLE_LOOK_MS * 3 / 4 + x % (IDLE_LOOK_MS / 2);
}

/*
 * When to look again at a busy connection (streams open, windows held,
 * bytes moving). Each look costs a few syscalls (its kernel record, its
 * legs', TCP_INFO), and one with streams open and nothing moving (a
 * client that stopped reading, a long-lived gRPC stream waiting for its
 * next message) has nothing new to show most ticks: 8,000 clients that
 * stopped reading kept the daemon at 93% of a CPU, all in these looks
 * (12% with the waits, test_h2lb_node_buffer).
 * So while its bytes in and out stay as they were, the wait between
 * looks doubles, up to QUIET_LOOK_MAX_MS. The first look that finds it
 * quiet still comes at the next tick, with the eager window refill
 * (window_tick); a client that reads again is refilled at most that much
 * later (a TCP acknowledgement makes no event); any input about it looks
 * at the next tick again (conn_input). Not while the watchdog finds bytes
 * unparsed (it PINGs at its second look), nor while going away (its
 * deadline).
 */
static uint64_t busy_look(struct lb *lb, struct uconn *c,
			  const struct h2lb_conn *k, uint64_t now)
{
	uint64_t mark = k->rx_bytes + k->tx_bytes;

	if (c->state == CS_GOING_AWAY || c->unparsed || mark != c->quiet_mark) {
		c->quiet_mark = mark;
		c->quiet_wait_ms = 0;
		return 0;
	}
	lb->stats.quiet_looks++;
	c->quiet_wait_ms =
		c->quiet_wait_ms ? 2 * c->quiet_wait_ms : QUIET_LOOK_FIRST_MS;
	if (c->quiet_wait_ms > QUIET_LOOK_MAX_MS)
		c->quiet_wait_ms = QUIET_LOOK_MAX_MS;
	return now + c->quiet_wait_ms;
}

/*
 * What the tick does for one live connection (open client, bound leg,
 * going-away either): its deadlines; and, when its look is due, the
 * watchdog, the window tick and the client's timeouts, from one read of
 * its kernel record. A connection with streams open, windows held back
 * or bytes moving is looked at every tick; an idle one every
 * IDLE_LOOK_MS, or at the tick after any input (conn_input).
 */
static enum conn_input tick_one(struct lb *lb, struct uconn *c, uint64_t now)
{
	bool handshaking =
		c->state == CS_CONNECTING || c->state == CS_HANDSHAKING;
	bool client = c->role == H2LB_ROLE_CLIENT;
	enum conn_input in = IN_MAX, due;
	struct h2lb_conn k;
	bool busy;

	/* An HTTP/2 client waiting for a leg from its address that never
	 * came. */
	if (client && c->state == CS_ADMITTING && c->preface_seen &&
	    (now >= c->deadline_ms || (!c->pending && !c->legs))) {
		lb->stats.refused_no_leg++;
		return IN_DISCARD;
	}
	if ((c->state == CS_CLOSING || c->state == CS_ADMITTING ||
	     c->state == CS_RAW_CONNECTING || handshaking) &&
	    now >= c->deadline_ms)
		return IN_DEADLINE;
	if (c->state == CS_RAW) /* the client looks after both ends */
		return client ? raw_tick(lb, c) : IN_MAX;
	/* Opening legs adds to the table: after the walk (conns_tick). */
	if (client && c->own_legs && c->state == CS_OPEN &&
	    now >= c->legs_look_ms)
		return IN_TOP_UP;
	if (!client && c->state == CS_GOING_AWAY && !leg_has_streams(lb, c))
		return IN_IDLE;
	if (!(c->state == CS_OPEN || c->state == CS_BOUND ||
	      (c->state == CS_GOING_AWAY && client)))
		return IN_MAX;
	/* Our ACKs wait for its legs': the leg's event may have been lost
	 * (a full ring), or a leg may be late (settings_ack.c). */
	if (client && c->acks_owed)
		in = IN_SETTINGS_ACK;
	if (now < c->next_look_ms || kern_conn(lb->k, c->cookie, &k))
		return in;
	busy = watchdog(lb, c, &k) | k.open_streams;
	if (client) {
		window_tick(lb, c, &k);
		/* Going away: closed at its deadline, not a look later. */
		busy |= c->flow_held || c->state == CS_GOING_AWAY;
		due = client_due(lb, c, &k, now);
		if (due != IN_MAX) /* before the ACKs' look */
			in = due;
	}
	c->next_look_ms =
		busy ? busy_look(lb, c, &k, now) : next_idle_look(now);
	return in;
}

void conns_tick(struct lb *lb)
{
	static struct {
		uint64_t cookie;
		enum conn_input in;
	} due[MAX_DUE];
	uint64_t now = now_ms();
	int n = 0;

	/* Inputs may close connections, and closing a client closes its
	 * legs, which may sit anywhere in the table: pick first, act after
	 * the walk. */
	conn_for_each(&lb->conns, c)
	{
		enum conn_input in;

		if (c->held_len)
			divert_flush(lb, c);
		in = tick_one(lb, c, now);

		if (in == IN_MAX)
			continue;
		if (n == MAX_DUE) {
			c->next_look_ms = 0; /* the next tick, then */
			continue;
		}
		due[n].cookie = c->cookie;
		due[n++].in = in;
	}
	for (int i = 0; i < n; i++) {
		struct uconn *c = conn_find(&lb->conns, due[i].cookie);
		struct input_arg e = { .value = H2_PROTOCOL_ERROR };

		if (!c)
			continue;
		if (due[i].in == IN_TOP_UP) {
			own_legs_top_up(lb, c, now);
			continue;
		}
		/* From the tick, these are client_due()'s timeouts. */
		lb->stats.handshake_timeouts += due[i].in == IN_ERROR;
		lb->stats.idle_timeouts += due[i].in == IN_STOP;
		conn_input(lb, c, due[i].in, due[i].in == IN_ERROR ? &e : NULL);
	}
	if (++lb->ticks % 20 == 0) /* once a second */
		window_queued_refresh(lb);
	backends_check_errors(&lb->bs, now, conns_client_in_good_standing, lb);
	open_legs(lb);
	if (lb->refused_unlogged &&
	    now - lb->refused_log_ms >= REFUSED_LOG_MS) {
		pr_warn("%llu stream(s) refused: no backend connection available, or a limit (refused_streams, node_queue_full, addr_streams_full)",
			(unsigned long long)lb->refused_unlogged);
		lb->refused_unlogged = 0;
		lb->refused_log_ms = now;
	}
}

void conns_prune(struct lb *lb)
{
	static uint64_t gone[MAX_DUE];
	int n = 0;

	conn_for_each(&lb->conns, c)
	{
		if (c->role == H2LB_ROLE_BACKEND && c->state == CS_POOLED &&
		    !lb->bs.be[c->backend].configured && n < MAX_DUE)
			gone[n++] = c->cookie;
	}
	for (int i = 0; i < n; i++) {
		struct uconn *c = conn_find(&lb->conns, gone[i]);

		if (c)
			conn_input(lb, c, IN_DISCARD, NULL);
	}
}

void conns_stop_client(struct lb *lb, struct uconn *c)
{
	conn_input(lb, c, IN_STOP, NULL);
}

void conns_close_all(struct lb *lb)
{
	for (int b = 0; b < CONN_BUCKETS; b++)
		while (lb->conns.bucket[b]) {
			struct uconn *c = lb->conns.bucket[b];

			conn_input(lb, c, IN_DISCARD, NULL);
			if (lb->conns.bucket[b] == c) /* no rule took it */
				close_conn(lb, c, c->state);
		}
}
