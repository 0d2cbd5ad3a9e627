// SPDX-License-Identifier: GPL-2.0
/*
 * The daemon's sockets: clients and backend legs. The daemon holds their
 * file descriptors but never reads them (DESIGN.md fact 7); it learns
 * what happens on them from BPF events and speaks to them only through
 * the injector.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_received */
#include <unistd.h>
#include <bpf/bpf.h>

#include "daemon.h"
#include "h2.h"
#include "h2lb.skel.h"
#include "log.h"

static unsigned int bucket(uint64_t cookie)
{
	return (cookie * 0x9E3779B97F4A7C15ull) >> 52; /* 12 bits */
}

struct uconn *conn_find(struct daemon *d, uint64_t cookie)
{
	struct uconn *c = d->conns[bucket(cookie)];

	while (c && c->cookie != cookie)
		c = c->next;
	return c;
}

struct uconn *conn_add(struct daemon *d, int fd, int role)
{
	socklen_t len = sizeof(uint64_t);
	struct uconn *c = calloc(1, sizeof(*c));
	unsigned int b;
	int one = 1;

	if (!c)
		return NULL;
	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c->cookie, &len)) {
		free(c);
		return NULL;
	}
	/* Frames leave as soon as they are redirected: without this, Nagle
	 * holds small frames back until the peer's delayed ACK (40 ms). */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	c->role = role;
	c->backend = -1;
	c->init_window = H2_DEFAULT_WINDOW;
	c->peer_grant = H2_DEFAULT_WINDOW;
	c->our_grant = H2_DEFAULT_WINDOW;
	b = bucket(c->cookie);
	c->next = d->conns[b];
	d->conns[b] = c;
	d->nr_conns++;
	return c;
}

static void conn_unlink(struct daemon *d, struct uconn *c)
{
	struct uconn **p = &d->conns[bucket(c->cookie)];

	while (*p && *p != c)
		p = &(*p)->next;
	if (*p) {
		*p = c->next;
		d->nr_conns--;
	}
}

/*
 * Streams of @client (optionally only those on @leg), collected first:
 * the map cannot be walked while entries are being deleted.
 */
static int streams_of(struct daemon *d, uint64_t client, uint64_t leg,
		      struct h2lb_stream_key *keys, struct h2lb_stream *vals,
		      int max)
{
	int fd = bpf_map__fd(d->skel->maps.streams), n = 0;
	struct h2lb_stream_key k, next;
	void *prev = NULL;

	while (n < max && !bpf_map_get_next_key(fd, prev, &next)) {
		k = next;
		prev = &k;
		if (next.client != client)
			continue;
		if (bpf_map_lookup_elem(fd, &next, &vals[n]))
			continue;
		if (leg && vals[n].leg != leg)
			continue;
		keys[n++] = next;
	}
	return n;
}

#define MAX_END 4096

/*
 * End every stream of @leg above @above: gRPC calls get UNAVAILABLE
 * trailers (@refuse: RST_STREAM(REFUSED_STREAM), which clients retry).
 */
static void end_streams(struct daemon *d, struct uconn *leg, uint32_t above,
			bool refuse)
{
	static struct h2lb_stream_key keys[MAX_END];
	static struct h2lb_stream vals[MAX_END];
	struct uconn *c = leg->client;
	uint8_t f[H2_FRAME_MAX];
	int n;

	if (!c)
		return;
	n = streams_of(d, c->cookie, leg->cookie, keys, vals, MAX_END);
	for (int i = 0; i < n; i++) {
		size_t len;

		if (keys[i].id <= above)
			continue;
		/* Close first: the stream must be gone from the kernel before
		 * its last frame reaches the client. */
		if (bpf_close_stream(d, c->cookie, keys[i].id, 1))
			continue;
		if (refuse)
			len = h2_rst_stream(f, keys[i].id, H2_REFUSED_STREAM);
		else if (!(vals[i].flags & H2LB_ST_SERVER_END))
			len = h2_grpc_unavailable(
				f, keys[i].id,
				!(vals[i].flags & H2LB_ST_RESPONDED),
				"h2lb: backend connection lost");
		else
			len = h2_rst_stream(f, keys[i].id, H2_CANCEL);
		inject(d, c->cookie, f, len);
	}
	if (n)
		pr_info("ended %d stream(s) of client %llx on backend %d%s", n,
			(unsigned long long)c->cookie, leg->backend,
			refuse ? " (refused)" : "");
}

static void leg_unbind(struct daemon *d, struct uconn *leg)
{
	struct uconn *c = leg->client, **p;
	struct h2lb_leg_key lk;
	uint64_t cur;

	if (!c)
		return;
	for (p = &c->legs; *p && *p != leg; p = &(*p)->next_leg)
		;
	if (*p)
		*p = leg->next_leg;
	lk = (struct h2lb_leg_key){ .client = c->cookie,
				    .backend = leg->backend };
	/* Only if the kernel still maps this backend to this leg. */
	if (!bpf_map_lookup_elem(bpf_map__fd(d->skel->maps.legs), &lk, &cur) &&
	    cur == leg->cookie)
		bpf_map_delete_elem(bpf_map__fd(d->skel->maps.legs), &lk);
	leg->client = NULL;
}

void conn_close(struct daemon *d, struct uconn *c)
{
	static struct h2lb_stream_key keys[MAX_END];
	static struct h2lb_stream vals[MAX_END];

	if (c->role == H2LB_ROLE_CLIENT) {
		int n;

		while (c->legs)
			conn_close(d, c->legs);
		/* Whatever streams are left die with the connection. */
		n = streams_of(d, c->cookie, 0, keys, vals, MAX_END);
		for (int i = 0; i < n; i++)
			bpf_close_stream(d, c->cookie, keys[i].id, 1);
	} else if (c->role == H2LB_ROLE_BACKEND) {
		if (c->state == UC_POOLED)
			pool_remove(d, c);
		if (c->state == UC_CONNECTING || c->state == UC_HANDSHAKE)
			d->be[c->backend].pending--;
		if (c->state == UC_CONNECTING) /* sockops never took it */
			bpf_new_leg(d, c->cookie, 0, false);
		leg_unbind(d, c);
	}
	conn_unlink(d, c);
	bpf_map_delete_elem(bpf_map__fd(d->skel->maps.conns), &c->cookie);
	close(c->fd);
	free(c);
}

void client_accept(struct daemon *d, int svc)
{
	const struct h2_setting_pair s[] = {
		/* No dynamic table: header blocks can go to any backend
		 * (DESIGN.md "HPACK without state"). */
		{ H2_SET_HEADER_TABLE_SIZE, 0 },
		{ H2_SET_MAX_CONCURRENT_STREAMS, d->opts.max_streams },
		{ H2_SET_INITIAL_WINDOW_SIZE, d->opts.stream_window },
	};
	uint8_t f[H2_FRAME_MAX];
	size_t len = h2_settings(f, s, 3);

	for (int i = 0; i < 64; i++) {
		int fd = accept4(d->svc[svc].listen_fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct uconn *c, *leg;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				pr_warn("accept: %s", strerror(errno));
			return;
		}
		c = conn_add(d, fd, H2LB_ROLE_CLIENT);
		if (!c) {
			close(fd);
			continue;
		}
		c->service = svc;
		/* Our SETTINGS must be the first frame the client gets, so it
		 * goes out before anything else is done: a request the client
		 * sent after accept() is parsed at once, and its response
		 * must not overtake this. It also draws the client's SETTINGS
		 * ACK, a new segment, which makes the kernel parse what the
		 * client queued before accept() (DESIGN.md fact 8). */
		inject(d, c->cookie, f, len);
		c->state = UC_OPEN;
		d->stats.clients++;
		leg = pool_bind_first(d, c);
		if (leg)
			flow_leg_bound(d, leg);
		pr_debug("client %llx accepted", (unsigned long long)c->cookie);
	}
}

/* Connection error: GOAWAY(@code) now, close a moment later so the
 * GOAWAY leaves before the FIN. */
void conn_fail(struct daemon *d, struct uconn *c, uint32_t last_stream,
	       uint32_t code)
{
	uint8_t f[H2_FRAME_MAX];

	if (c->state == UC_CLOSING)
		return;
	pr_warn("%s %llx: connection error %u, sending GOAWAY",
		c->role == H2LB_ROLE_CLIENT ? "client" : "backend leg",
		(unsigned long long)c->cookie, code);
	inject(d, c->cookie, f, h2_goaway(f, last_stream, code));
	if (c->role == H2LB_ROLE_BACKEND) {
		end_streams(d, c, 0, false);
		leg_unbind(d, c);
		if (c->state == UC_POOLED)
			pool_remove(d, c);
	}
	c->state = UC_CLOSING;
	c->close_at_ms = now_ms() + 200;
}

/* The backend side of @leg is gone without a GOAWAY: fail its calls. */
void leg_lost(struct daemon *d, struct uconn *leg, const char *why)
{
	pr_warn("backend %d leg %llx lost: %s", leg->backend,
		(unsigned long long)leg->cookie, why);
	end_streams(d, leg, 0, false);
	backend_failed(d, leg->backend);
	conn_close(d, leg);
}

void leg_goaway(struct daemon *d, struct uconn *leg, uint32_t last_stream)
{
	if (leg->state != UC_BOUND && leg->state != UC_DRAINING) {
		conn_close(d, leg); /* pooled or handshaking: just drop it */
		return;
	}
	pr_info("backend %d leg %llx: GOAWAY, last stream %u", leg->backend,
		(unsigned long long)leg->cookie, last_stream);
	/* No new streams on it: the client's next stream to this backend
	 * takes a fresh leg. Streams above last_stream were never seen by
	 * the backend: refuse them, so clients retry. */
	if (leg->client) {
		struct h2lb_leg_key lk = { .client = leg->client->cookie,
					   .backend = leg->backend };
		uint64_t cur;

		if (!bpf_map_lookup_elem(bpf_map__fd(d->skel->maps.legs), &lk,
					 &cur) &&
		    cur == leg->cookie)
			bpf_map_delete_elem(bpf_map__fd(d->skel->maps.legs),
					    &lk);
	}
	end_streams(d, leg, last_stream, true);
	leg->state = UC_DRAINING;
}

static bool leg_has_streams(struct daemon *d, struct uconn *leg)
{
	struct h2lb_stream_key k;
	struct h2lb_stream v;

	if (!leg->client)
		return false;
	return streams_of(d, leg->client->cookie, leg->cookie, &k, &v, 1) > 0;
}

/*
 * Watchdog (DESIGN.md facts 8 and 9): bytes TCP received wait unparsed and
 * nothing moves; one more segment from the peer gets the parser going, so
 * draw one with a PING. SIOCINQ cannot tell (on a sockmap socket it
 * reports the psock's queue, not TCP's); TCP_INFO's bytes_received less
 * the bytes the verdict saw can.
 */
static void watchdog(struct daemon *d, struct uconn *c)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	struct h2lb_conn k;
	uint8_t f[H2_FRAME_MAX];

	if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) ||
	    bpf_kconn(d, c->cookie, &k) ||
	    ti.tcpi_bytes_received <= k.rx_bytes ||
	    k.rx_bytes != c->last_rx_bytes) {
		c->last_rx_bytes = k.rx_bytes;
		c->stalled_ticks = 0;
		return;
	}
	if (++c->stalled_ticks < 2)
		return;
	c->stalled_ticks = 0;
	d->stats.watchdog_pings++;
	pr_debug("watchdog: %llu bytes unparsed on %llx, sending PING",
		 (unsigned long long)(ti.tcpi_bytes_received - k.rx_bytes),
		 (unsigned long long)c->cookie);
	inject(d, c->cookie, f, h2_ping(f, c->cookie));
}

void conns_tick(struct daemon *d)
{
	static uint64_t doomed[1024];
	uint64_t now = now_ms();
	int n = 0;

	/* Closing a client frees its legs, which may sit anywhere in the
	 * table: pick first, close after the walk. */
	for (int b = 0; b < CONN_BUCKETS; b++) {
		for (struct uconn *c = d->conns[b]; c; c = c->next) {
			bool handshaking = c->state == UC_CONNECTING ||
					   c->state == UC_HANDSHAKE;
			bool done = ((c->state == UC_CLOSING || handshaking) &&
				     now >= c->close_at_ms) ||
				    (c->state == UC_DRAINING &&
				     !leg_has_streams(d, c));

			if (done && n < 1024)
				doomed[n++] = c->cookie;
			else if (c->state == UC_OPEN || c->state == UC_BOUND)
				watchdog(d, c);
			if (c->flow_held && c->state == UC_OPEN)
				flow_retry(d, c);
		}
	}
	for (int i = 0; i < n; i++) {
		struct uconn *c = conn_find(d, doomed[i]);

		if (!c)
			continue;
		if (c->state == UC_CONNECTING || c->state == UC_HANDSHAKE) {
			pr_warn("backend %d: no HTTP/2 handshake in time",
				c->backend);
			backend_failed(d, c->backend);
		}
		conn_close(d, c);
	}
}
