// SPDX-License-Identifier: GPL-2.0
/*
 * Prometheus text metrics on --metrics ADDR:PORT (/metrics), and /healthz.
 *
 * Served by a thread of its own, never by the event loop: the loop
 * answers flow control, accepts and signals for every balanced
 * connection, and a scraper (or anyone who can reach the port) must not
 * be able to stall it. A non-blocking server inside the loop would not
 * stall it on a silent peer either, but would still render every answer
 * (hundreds of map lookups) on the loop's time; a thread keeps both off.
 *
 * The thread reads only what is safe from another thread: the kernel
 * maps (bpf() syscalls on fds that live as long as the thread) and the
 * node's queued bytes (an atomic load), and a snapshot of the loop's own
 * state (struct metrics_snap). For each /metrics it asks the loop for a
 * fresh one (an eventfd the loop watches) and waits at most
 * METRICS_FRESH_MS for it; the loop copies it in under a mutex it only
 * try-locks (busy: the eventfd stays readable, the next turn tries
 * again), so it never waits for the thread. A stuck loop gets the last
 * snapshot served. /healthz says 503 when the loop has not ticked for
 * METRICS_STALE_MS (a heartbeat the loop stores at each tick): the probe
 * then sees a stuck loop, as it did when the loop itself answered.
 *
 * The thread's server is non-blocking too: at most METRICS_CONNS
 * connections, each closed METRICS_DEADLINE_MS after its accept whatever
 * it did; a new one beyond the cap takes the slot of the oldest. These
 * sockets are not balanced ones (sockops only takes the --listen
 * address), so the daemon may read and write them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "clock.h"
#include "kern.h"
#include "log.h"
#include "metrics.h"
#include "names.h"

#define METRICS_CONNS	    64
#define METRICS_DEADLINE_MS 2000
#define METRICS_STALE_MS    5000
#define METRICS_FRESH_MS    250
#define METRICS_REUSE_MS    20	/* a snapshot this young is served again */
#define METRICS_PAUSE_MS    100 /* no accept after EMFILE and the like */

struct pool_snap {
	char service[160];
	char addr[32];
	int pooled;
};

/* The loop's state that /metrics shows, as of its last metrics_publish.
 * @pool holds --max-backends entries, of which @nr_pools are set (and
 * copied). */
struct metrics_snap {
	int clients, pooled, bound;
	struct h2lb_daemon_stats stats;
	uint64_t injected_bytes;
	int nr_pools;
	struct pool_snap *pool;
};

struct mconn {
	int fd; /* -1: free */
	uint64_t deadline_ms;
	char req[2048];
	size_t rlen;
	char *out; /* the answer, once the request is in */
	size_t olen, off;
};

struct metrics {
	struct kern *k;
	const struct run_opts *opts;
	int listen_fd, stop_fd;
	int want_fd; /* the thread asks the loop for a snapshot */
	pthread_t thread;
	bool started;
	uint64_t beat_ms;     /* the loop's last tick (atomic) */
	pthread_mutex_t lock; /* guards snap and seq */
	pthread_cond_t published;
	uint64_t seq;	       /* snapshots published */
	uint64_t snap_ms;      /* when the last one was */
	uint64_t accept_at_ms; /* accept again from then on */
	struct metrics_snap snap;
	struct metrics_snap view; /* the thread's copy */
	struct mconn c[METRICS_CONNS];
};

static void metric_head(FILE *f, const char *name, const char *type,
			const char *help)
{
	fprintf(f, "# HELP h2lb_%s %s\n# TYPE h2lb_%s %s\n", name, help, name,
		type);
}

/* A metric of one value, without labels. */
static void metric_one(FILE *f, const char *name, const char *type,
		       const char *help, long long value)
{
	metric_head(f, name, type, help);
	fprintf(f, "h2lb_%s %lld\n", name, value);
}

static void backend_metrics(FILE *f, struct kern *k)
{
	static struct h2lb_backend be[H2LB_MAX_BACKENDS];
	static char addr[H2LB_MAX_BACKENDS][160];
	static struct h2lb_service svc[H2LB_MAX_SERVICES];
	static uint32_t svc_nr[H2LB_MAX_SERVICES];
	struct in_addr ia;
	int n;

	if (kern_read_backends(k, be, &n))
		return;
	kern_read_services(k, svc);
	if (!kern_read_svc_nr(k, svc_nr)) {
		metric_head(f, "service_backends", "gauge",
			    "backends in the Service's list, which its new "
			    "streams pick from");
		for (int i = 0; i < H2LB_MAX_SERVICES; i++)
			if (svc[i].state == H2LB_SVC_OPEN)
				fprintf(f,
					"h2lb_service_backends{service=\"%s\"} %u\n",
					svc[i].name, svc_nr[i]);
	}
	/* The labels of each backend: its Service and its address. */
	for (int i = 0; i < n; i++) {
		ia.s_addr = be[i].addr;
		snprintf(addr[i], sizeof(addr[i]),
			 "service=\"%s\",backend=\"%s:%u\"",
			 service_name(svc, be[i].service), inet_ntoa(ia),
			 be[i].port);
	}
#define EACH_BACKEND(i)                                                        \
	for (int i = 0; i < n; i++)                                            \
		if (be[i].state != H2LB_BE_UNUSED)
	metric_head(f, "backend_up", "gauge",
		    "1 if the backend takes new streams (ready)");
	EACH_BACKEND(i)
	fprintf(f, "h2lb_backend_up{%s,state=\"%s\"} %d\n", addr[i],
		backend_state_name(be[i].state), be[i].state == H2LB_BE_READY);
	metric_head(f, "backend_open_streams", "gauge", "streams open now");
	EACH_BACKEND(i)
	fprintf(f, "h2lb_backend_open_streams{%s} %u\n", addr[i],
		be[i].open_streams);
	metric_head(f, "backend_streams_total", "counter", "streams opened");
	EACH_BACKEND(i)
	fprintf(f, "h2lb_backend_streams_total{%s} %llu\n", addr[i],
		(unsigned long long)be[i].streams);
	metric_head(f, "backend_resets_total", "counter",
		    "streams ended by RST_STREAM");
	EACH_BACKEND(i)
	fprintf(f, "h2lb_backend_resets_total{%s} %llu\n", addr[i],
		(unsigned long long)be[i].resets);
	metric_head(f, "backend_sent_bytes_total", "counter",
		    "DATA payload bytes sent to the backend");
	EACH_BACKEND(i)
	fprintf(f, "h2lb_backend_sent_bytes_total{%s} %llu\n", addr[i],
		(unsigned long long)be[i].bytes_to);
	metric_head(f, "backend_received_bytes_total", "counter",
		    "DATA payload bytes received from the backend");
	EACH_BACKEND(i)
	fprintf(f, "h2lb_backend_received_bytes_total{%s} %llu\n", addr[i],
		(unsigned long long)be[i].bytes_from);
	metric_head(
		f, "stream_duration_seconds", "histogram",
		"time from a stream's HEADERS to its end, measured in the kernel");
	EACH_BACKEND(i)
	{
		uint64_t cum = 0;

		for (int k = 0; k < H2LB_LAT_BUCKETS; k++) {
			cum += be[i].latency[k];
			/* bucket k holds calls under 2^(k+1) us */
			fprintf(f,
				"h2lb_stream_duration_seconds_bucket{%s,le=\"%.6f\"} %llu\n",
				addr[i], (double)(2ull << k) / 1e6,
				(unsigned long long)cum);
		}
		fprintf(f,
			"h2lb_stream_duration_seconds_bucket{%s,le=\"+Inf\"} %llu\n",
			addr[i], (unsigned long long)cum);
		fprintf(f, "h2lb_stream_duration_seconds_sum{%s} %.9f\n",
			addr[i], be[i].latency_ns / 1e9);
		fprintf(f, "h2lb_stream_duration_seconds_count{%s} %llu\n",
			addr[i], (unsigned long long)cum);
	}
#undef EACH_BACKEND
}

static void daemon_metrics(FILE *f, struct metrics *m)
{
	const struct metrics_snap *s = &m->view;
	const struct run_opts *o = m->opts;
	const struct {
		const char *flag;
		long long value;
	} limits[] = {
		{ "node-buffer", o->node_buffer },
		{ "peer-buffer", o->peer_buffer },
		{ "frame-budget", o->frame_budget },
		{ "frame-rate", o->frame_rate },
		{ "control-queue", o->control_queue },
		{ "max-streams", o->max_streams },
		{ "max-streams-per-address", o->addr_streams },
		{ "max-conns-per-client", o->max_conns_per_client },
		{ "idle-timeout", o->idle_timeout_ms / 1000 },
		{ "handshake-timeout", o->handshake_timeout_ms / 1000 },
		{ "max-services", o->max_services },
		{ "max-backends", o->max_backends },
		{ "max-backends-per-service", o->svc_backends },
		{ "max-conns", o->max_conns },
		{ "max-streams-total", o->streams_total },
	};
	uint64_t cnt[H2LB_CNT_MAX];

	metric_head(f, "client_connections", "gauge",
		    "client connections open now");
	fprintf(f, "h2lb_client_connections %d\n", s->clients);
	metric_head(f, "backend_connections", "gauge",
		    "backend connections, pooled (idle) or bound to a client");
	fprintf(f, "h2lb_backend_connections{state=\"pooled\"} %d\n",
		s->pooled);
	fprintf(f, "h2lb_backend_connections{state=\"bound\"} %d\n", s->bound);
	metric_head(f, "pool_connections", "gauge",
		    "idle handshaken connections per backend");
	for (int b = 0; b < s->nr_pools; b++)
		fprintf(f,
			"h2lb_pool_connections{service=\"%s\",backend=\"%s\"} %d\n",
			s->pool[b].service, s->pool[b].addr, s->pool[b].pooled);
	metric_one(f, "daemon_read_bytes_total", "counter",
		   "bytes the daemon read on the datapath (ring buffer events)",
		   s->stats.bytes_read);
	metric_one(f, "daemon_written_bytes_total", "counter",
		   "bytes the daemon wrote on the datapath (injected frames)",
		   s->injected_bytes);
	metric_head(f, "daemon_events_total", "counter",
		    "events the daemon read from the kernel, by type");
	for (int i = 1; i < H2LB_EV_MAX; i++)
		fprintf(f, "h2lb_daemon_events_total{type=\"%s\"} %llu\n",
			event_name(i),
			(unsigned long long)s->stats.events_by_type[i]);
	metric_one(f, "accepted_connections_total", "counter",
		   "client connections accepted", s->stats.clients);
	metric_one(f, "queued_bytes", "gauge",
		   "bytes sent to peers that their TCP has not acknowledged",
		   kern_node_queued(m->k));
	metric_head(f, "limit", "gauge",
		    "the limits h2lb runs with (0: none), by flag");
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
		fprintf(f, "h2lb_limit{flag=\"%s\"} %lld\n", limits[i].flag,
			limits[i].value);
	metric_head(f, "refused_connections_total", "counter",
		    "client connections closed at accept: over "
		    "--max-conns-per-client, or table or fds full");
	fprintf(f,
		"h2lb_refused_connections_total{reason=\"per_client\"} %llu\n",
		(unsigned long long)s->stats.refused_per_client);
	fprintf(f, "h2lb_refused_connections_total{reason=\"full\"} %llu\n",
		(unsigned long long)s->stats.refused_full);
	metric_head(f, "left_out", "gauge",
		    "what a full table leaves out now: Service ports over "
		    "--max-services, endpoints over their Service's "
		    "--max-backends-per-service or with no slot left "
		    "(--max-backends)");
	fprintf(f, "h2lb_left_out{what=\"services\"} %llu\n",
		(unsigned long long)s->stats.services_left_out);
	fprintf(f, "h2lb_left_out{what=\"endpoints_over_service_cap\"} %llu\n",
		(unsigned long long)s->stats.endpoints_over_cap);
	fprintf(f, "h2lb_left_out{what=\"endpoints_no_slot\"} %llu\n",
		(unsigned long long)s->stats.endpoints_no_slot);
	metric_one(f, "idle_timeouts_total", "counter",
		   "clients sent GOAWAY after --idle-timeout with no stream",
		   s->stats.idle_timeouts);
	metric_one(f, "handshake_timeouts_total", "counter",
		   "clients closed without preface and SETTINGS in "
		   "--handshake-timeout",
		   s->stats.handshake_timeouts);
	metric_one(f, "source_legs_total", "counter",
		   "backend connections opened from a client's own address "
		   "(--leg-source client)",
		   s->stats.source_legs);
	metric_one(f, "source_leg_failures_total", "counter",
		   "of those, connections that did not connect or handshake",
		   s->stats.source_leg_failures);
	metric_one(f, "refused_no_leg_total", "counter",
		   "clients closed at accept: no backend connection from "
		   "their address could be made",
		   s->stats.refused_no_leg);
	metric_one(
		f, "quiet_looks_total", "counter",
		"the tick's looks at busy connections where nothing had moved",
		s->stats.quiet_looks);
	metric_one(f, "raw_failed_total", "counter",
		   "connections that are not HTTP/2 reset: no backend could "
		   "be connected",
		   s->stats.raw_failed);
	metric_one(f, "raw_full_total", "counter",
		   "connections that are not HTTP/2 reset by the daemon: a "
		   "peer took nothing while over its buffer",
		   s->stats.raw_full);
	metric_one(f, "reconciles_total", "counter",
		   "passes over the connections after events were lost",
		   s->stats.reconciles);
	metric_one(f, "reconciled_connections_total", "counter",
		   "connections found closed by those passes",
		   s->stats.reconciled);
	metric_one(f, "stale_conn_records_total", "counter",
		   "kernel records of no connection, removed by those passes",
		   s->stats.stale_conns);
	metric_one(f, "reset_unsent_total", "counter",
		   "connections closed with RST: their peer had closed, "
		   "bytes for it still queued",
		   s->stats.reset_unsent);
	metric_one(f, "node_tcp_memory_pages", "gauge",
		   "the node's TCP memory count (/proc/net/sockstat), "
		   "with the fast path on",
		   s->stats.tcp_mem_pages);
	metric_one(f, "fast_path_closed", "gauge",
		   "1 while new clients stay off the fast path: "
		   "the node's TCP memory count is above --fast-path-tcp-mem",
		   s->stats.fast_closed);
	metric_one(f, "settings_acks_held_total", "counter",
		   "clients' SETTINGS that lowered their stream window, "
		   "ACKed once their legs had",
		   s->stats.settings_acks_held);
	metric_one(f, "settings_timeouts_total", "counter",
		   "backend connections failed: no ACK of a client's "
		   "SETTINGS in time",
		   s->stats.settings_timeouts);
	if (kern_read_counters(m->k, cnt))
		return;
	for (int i = 0; i < H2LB_CNT_MAX; i++) {
		char name[64];

		snprintf(name, sizeof(name), "%s_total", counter_name(i));
		metric_head(f, name, "counter", counter_help(i));
		fprintf(f, "h2lb_%s %llu\n", name, (unsigned long long)cnt[i]);
	}
}

void metrics_publish(struct metrics *m, const struct lb *lb,
		     const struct services *sv)
{
	struct metrics_snap *s;
	uint64_t want;

	/* Never wait for the thread: it holds the lock for a copy at most,
	 * and the eventfd, not read, wakes the loop again. */
	if (!m || pthread_mutex_trylock(&m->lock))
		return;
	if (read(m->want_fd, &want, sizeof(want)) < 0 && errno != EAGAIN)
		pr_debug("metrics: eventfd: %s", strerror(errno));
	s = &m->snap;
	s->clients = s->pooled = s->bound = 0;
	conn_for_each(&lb->conns, c)
	{
		s->clients += c->role == H2LB_ROLE_CLIENT;
		s->pooled += c->state == CS_POOLED;
		s->bound += c->role == H2LB_ROLE_BACKEND &&
			    (c->state == CS_BOUND || c->state == CS_GOING_AWAY);
	}
	s->stats = lb->stats;
	s->injected_bytes = lb->inj.bytes;
	s->nr_pools = 0;
	for (int b = 0; b < lb->bs.nr; b++) {
		const struct ubackend *be = &lb->bs.be[b];

		if (!be->configured ||
		    s->nr_pools >= (int)lb->opts->max_backends)
			continue;
		snprintf(s->pool[s->nr_pools].service,
			 sizeof(s->pool[0].service), "%s",
			 service_label(sv, be->service));
		addr_str(&be->addr, s->pool[s->nr_pools].addr,
			 sizeof(s->pool[0].addr));
		s->pool[s->nr_pools++].pooled = be->pooled;
	}
	m->seq++;
	m->snap_ms = now_ms();
	pthread_mutex_unlock(&m->lock);
	pthread_cond_broadcast(&m->published);
}

void metrics_beat(struct metrics *m)
{
	if (m)
		__atomic_store_n(&m->beat_ms, now_ms(), __ATOMIC_RELAXED);
}

int metrics_fd(const struct metrics *m)
{
	return m->want_fd;
}

/* A snapshot published after now (or within METRICS_REUSE_MS: however
 * often /metrics is asked, the loop walks its tables at most 50 times a
 * second), or the last one if the loop does not publish within
 * METRICS_FRESH_MS: into m->view. */
static void take_snapshot(struct metrics *m)
{
	struct timespec until;
	uint64_t seq, one = 1;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_nsec += METRICS_FRESH_MS * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&m->lock);
	seq = m->seq;
	if (now_ms() - m->snap_ms >= METRICS_REUSE_MS &&
	    write(m->want_fd, &one, sizeof(one)) == sizeof(one))
		while (m->seq == seq &&
		       pthread_cond_timedwait(&m->published, &m->lock,
					      &until) != ETIMEDOUT)
			;
	/* The header, and the pools in use: not --max-backends of them. */
	{
		struct pool_snap *pool = m->view.pool;

		m->view = m->snap;
		m->view.pool = pool;
		memcpy(pool, m->snap.pool,
		       (size_t)m->snap.nr_pools * sizeof(*pool));
	}
	pthread_mutex_unlock(&m->lock);
}

static char *answer(const char *status, const char *body, size_t len,
		    size_t *olen)
{
	char *out = NULL;
	int n = asprintf(
		&out,
		"HTTP/1.1 %s\r\nContent-Type: text/plain; version=0.0.4\r\n"
		"Content-Length: %zu\r\nConnection: close\r\n\r\n%.*s",
		status, len, (int)len, body);

	*olen = n < 0 ? 0 : (size_t)n;
	return n < 0 ? NULL : out;
}

static char *render(struct metrics *m, const char *req, size_t *olen)
{
	char *body = NULL, *out, msg[80];
	size_t len = 0;
	uint64_t age;
	FILE *f;

	if (!strncmp(req, "GET /healthz", 12)) {
		age = now_ms() - __atomic_load_n(&m->beat_ms, __ATOMIC_RELAXED);
		if (age <= METRICS_STALE_MS)
			return answer("200 OK", "ok\n", 3, olen);
		snprintf(msg, sizeof(msg), "event loop stalled for %llu ms\n",
			 (unsigned long long)age);
		return answer("503 Service Unavailable", msg, strlen(msg),
			      olen);
	}
	if (strncmp(req, "GET /metrics", 12))
		return answer("404 Not Found", "not found\n", 10, olen);
	take_snapshot(m);
	f = open_memstream(&body, &len);
	if (!f)
		return NULL;
	daemon_metrics(f, m);
	backend_metrics(f, m->k);
	fclose(f);
	out = answer("200 OK", body, len, olen);
	free(body);
	return out;
}

static void mconn_close(struct mconn *c)
{
	close(c->fd);
	free(c->out);
	c->fd = -1;
	c->out = NULL;
}

static void on_accept(struct metrics *m, uint64_t now)
{
	int fd;

	while ((fd = accept4(m->listen_fd, NULL, NULL,
			     SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		struct mconn *c = NULL;

		/* A free slot, or else the oldest connection's. */
		for (int i = 0; i < METRICS_CONNS; i++) {
			if (m->c[i].fd < 0) {
				c = &m->c[i];
				break;
			}
			if (!c || m->c[i].deadline_ms < c->deadline_ms)
				c = &m->c[i];
		}
		if (c->fd >= 0)
			mconn_close(c);
		c->fd = fd;
		c->deadline_ms = now + METRICS_DEADLINE_MS;
		c->rlen = c->olen = c->off = 0;
	}
	/* Out of fds or memory: the listener stays readable, and polling it
	 * at once would spin. */
	if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
	    errno == ENOMEM)
		m->accept_at_ms = now + METRICS_PAUSE_MS;
}

/* Read the request, then write the answer; true when done with @c. */
static bool on_conn(struct metrics *m, struct mconn *c)
{
	ssize_t n;

	if (!c->out) {
		n = read(c->fd, c->req + c->rlen, sizeof(c->req) - 1 - c->rlen);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return true;
		if (n < 0)
			return false;
		c->rlen += n;
		c->req[c->rlen] = '\0';
		/* The whole head: closing with bytes unread would reset the
		 * connection under the answer. */
		if (!strstr(c->req, "\r\n\r\n") && !strstr(c->req, "\n\n") &&
		    c->rlen < sizeof(c->req) - 1)
			return false;
		c->out = render(m, c->req, &c->olen);
		if (!c->out)
			return true;
	}
	n = write(c->fd, c->out + c->off, c->olen - c->off);
	if (n < 0)
		return errno != EAGAIN && errno != EINTR;
	c->off += n;
	return c->off == c->olen;
}

static void *metrics_thread(void *arg)
{
	struct metrics *m = arg;
	struct pollfd p[2 + METRICS_CONNS];
	int slot[2 + METRICS_CONNS];

	for (;;) {
		uint64_t now = now_ms(), next = UINT64_MAX;
		int n = 2, timeout;

		p[0] = (struct pollfd){ .fd = m->stop_fd, .events = POLLIN };
		/* A negative fd is left out by poll. */
		p[1] = (struct pollfd){ .fd = now >= m->accept_at_ms
						      ? m->listen_fd
						      : -1,
					.events = POLLIN };
		if (now < m->accept_at_ms)
			next = m->accept_at_ms;
		for (int i = 0; i < METRICS_CONNS; i++) {
			struct mconn *c = &m->c[i];

			if (c->fd < 0)
				continue;
			if (now >= c->deadline_ms) {
				mconn_close(c);
				continue;
			}
			if (c->deadline_ms < next)
				next = c->deadline_ms;
			slot[n] = i;
			p[n++] = (struct pollfd){ .fd = c->fd,
						  .events = c->out ? POLLOUT
								   : POLLIN };
		}
		timeout = next == UINT64_MAX ? -1 : (int)(next - now);
		if (poll(p, n, timeout) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			break;
		now = now_ms();
		for (int j = 2; j < n; j++)
			if (p[j].revents && on_conn(m, &m->c[slot[j]]))
				mconn_close(&m->c[slot[j]]);
		if (p[1].revents)
			on_accept(m, now);
	}
	for (int i = 0; i < METRICS_CONNS; i++)
		if (m->c[i].fd >= 0)
			mconn_close(&m->c[i]);
	return NULL;
}

struct metrics *metrics_start(const struct sockaddr_in *at, struct kern *k,
			      const struct run_opts *opts)
{
	struct metrics *m = calloc(1, sizeof(*m));
	pthread_condattr_t ca;
	char buf[32];
	int one = 1;

	if (!m)
		return NULL;
	m->snap.pool = calloc(opts->max_backends, sizeof(*m->snap.pool));
	m->view.pool = calloc(opts->max_backends, sizeof(*m->view.pool));
	if (!m->snap.pool || !m->view.pool) {
		free(m->snap.pool);
		free(m->view.pool);
		free(m);
		return NULL;
	}
	m->k = k;
	m->opts = opts;
	m->stop_fd = m->want_fd = -1;
	metrics_beat(m);
	pthread_mutex_init(&m->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->published, &ca);
	pthread_condattr_destroy(&ca);
	for (int i = 0; i < METRICS_CONNS; i++)
		m->c[i].fd = -1;
	m->listen_fd =
		socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (m->listen_fd < 0)
		goto err;
	setsockopt(m->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(m->listen_fd, (const struct sockaddr *)at, sizeof(*at)) ||
	    listen(m->listen_fd, 128))
		goto err;
	m->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	m->want_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (m->stop_fd < 0 || m->want_fd < 0)
		goto err;
	errno = pthread_create(&m->thread, NULL, metrics_thread, m);
	if (errno)
		goto err;
	m->started = true;
	pr_info("metrics on http://%s/metrics", addr_str(at, buf, sizeof(buf)));
	return m;
err:
	pr_err("metrics on %s: %s", addr_str(at, buf, sizeof(buf)),
	       strerror(errno));
	metrics_stop(m);
	return NULL;
}

void metrics_stop(struct metrics *m)
{
	uint64_t one = 1;

	if (!m)
		return;
	if (m->started) {
		if (write(m->stop_fd, &one, sizeof(one)) != sizeof(one))
			pr_warn("metrics: stop: %s", strerror(errno));
		pthread_join(m->thread, NULL);
	}
	if (m->listen_fd >= 0)
		close(m->listen_fd);
	if (m->stop_fd >= 0)
		close(m->stop_fd);
	if (m->want_fd >= 0)
		close(m->want_fd);
	pthread_cond_destroy(&m->published);
	pthread_mutex_destroy(&m->lock);
	free(m->snap.pool);
	free(m->view.pool);
	free(m);
}
