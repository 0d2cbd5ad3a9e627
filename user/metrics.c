// SPDX-License-Identifier: GPL-2.0
/*
 * Prometheus text metrics on --metrics ADDR:PORT (/metrics), and /healthz.
 * Served from the daemon's epoll loop: one short request per connection,
 * answered at once. These sockets are not balanced ones (sockops only
 * takes the --listen address), so the daemon may read and write them; the
 * bytes are counted apart from the datapath's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "kern.h"
#include "log.h"
#include "metrics.h"
#include "names.h"

static void metric_head(FILE *f, const char *name, const char *type,
			const char *help)
{
	fprintf(f, "# HELP h2lb_%s %s\n# TYPE h2lb_%s %s\n", name, help, name,
		type);
}

static void backend_metrics(FILE *f, struct kern *k)
{
	static struct h2lb_backend be[H2LB_MAX_BACKENDS];
	static char addr[H2LB_MAX_BACKENDS][160];
	static struct h2lb_service svc[H2LB_MAX_SERVICES];
	struct in_addr ia;
	int n;

	if (kern_read_backends(k, be, &n))
		return;
	kern_read_services(k, svc);
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

static void daemon_metrics(FILE *f, struct lb *lb, const struct services *sv)
{
	uint64_t cnt[H2LB_CNT_MAX];
	int clients = 0, pooled = 0, bound = 0;
	char addr[32];

	conn_for_each(&lb->conns, c)
	{
		clients += c->role == H2LB_ROLE_CLIENT;
		pooled += c->state == CS_POOLED;
		bound += c->role == H2LB_ROLE_BACKEND &&
			 (c->state == CS_BOUND || c->state == CS_GOING_AWAY);
	}
	metric_head(f, "client_connections", "gauge",
		    "client connections open now");
	fprintf(f, "h2lb_client_connections %d\n", clients);
	metric_head(f, "backend_connections", "gauge",
		    "backend connections, pooled (idle) or bound to a client");
	fprintf(f, "h2lb_backend_connections{state=\"pooled\"} %d\n", pooled);
	fprintf(f, "h2lb_backend_connections{state=\"bound\"} %d\n", bound);
	metric_head(f, "pool_connections", "gauge",
		    "idle handshaken connections per backend");
	for (int b = 0; b < lb->bs.nr; b++)
		if (lb->bs.be[b].configured)
			fprintf(f,
				"h2lb_pool_connections{service=\"%s\",backend=\"%s\"} %d\n",
				service_label(sv, lb->bs.be[b].service),
				addr_str(&lb->bs.be[b].addr, addr,
					 sizeof(addr)),
				lb->bs.be[b].pooled);
	metric_head(
		f, "daemon_read_bytes_total", "counter",
		"bytes the daemon read on the datapath (ring buffer events)");
	fprintf(f, "h2lb_daemon_read_bytes_total %llu\n",
		(unsigned long long)lb->stats.bytes_read);
	metric_head(f, "daemon_written_bytes_total", "counter",
		    "bytes the daemon wrote on the datapath (injected frames)");
	fprintf(f, "h2lb_daemon_written_bytes_total %llu\n",
		(unsigned long long)lb->inj.bytes);
	metric_head(f, "accepted_connections_total", "counter",
		    "client connections accepted");
	fprintf(f, "h2lb_accepted_connections_total %llu\n",
		(unsigned long long)lb->stats.clients);
	metric_head(f, "queued_bytes", "gauge",
		    "bytes sent to peers that their TCP has not acknowledged");
	fprintf(f, "h2lb_queued_bytes %lld\n",
		(long long)kern_node_queued(lb->k));
	metric_head(f, "limit", "gauge",
		    "the limits h2lb runs with (0: none), by flag");
	fprintf(f, "h2lb_limit{flag=\"node-buffer\"} %lld\n",
		(long long)lb->opts->node_buffer);
	fprintf(f, "h2lb_limit{flag=\"peer-buffer\"} %lld\n",
		(long long)lb->opts->peer_buffer);
	fprintf(f, "h2lb_limit{flag=\"frame-budget\"} %u\n",
		lb->opts->frame_budget);
	fprintf(f, "h2lb_limit{flag=\"frame-rate\"} %u\n",
		lb->opts->frame_rate);
	fprintf(f, "h2lb_limit{flag=\"control-queue\"} %u\n",
		lb->opts->control_queue);
	fprintf(f, "h2lb_limit{flag=\"max-streams\"} %u\n",
		lb->opts->max_streams);
	fprintf(f, "h2lb_limit{flag=\"max-streams-per-address\"} %u\n",
		lb->opts->addr_streams);
	metric_head(f, "refused_connections_total", "counter",
		    "client connections closed at accept: over "
		    "--max-conns-per-client, or table or fds full");
	fprintf(f,
		"h2lb_refused_connections_total{reason=\"per_client\"} %llu\n",
		(unsigned long long)lb->stats.refused_per_client);
	fprintf(f, "h2lb_refused_connections_total{reason=\"full\"} %llu\n",
		(unsigned long long)lb->stats.refused_full);
	metric_head(f, "idle_timeouts_total", "counter",
		    "clients sent GOAWAY after --idle-timeout with no stream");
	fprintf(f, "h2lb_idle_timeouts_total %llu\n",
		(unsigned long long)lb->stats.idle_timeouts);
	metric_head(f, "handshake_timeouts_total", "counter",
		    "clients closed without preface and SETTINGS in "
		    "--handshake-timeout");
	fprintf(f, "h2lb_handshake_timeouts_total %llu\n",
		(unsigned long long)lb->stats.handshake_timeouts);
	metric_head(f, "reconciles_total", "counter",
		    "passes over the connections after events were lost");
	fprintf(f, "h2lb_reconciles_total %llu\n",
		(unsigned long long)lb->stats.reconciles);
	metric_head(f, "reconciled_connections_total", "counter",
		    "connections found closed by those passes");
	fprintf(f, "h2lb_reconciled_connections_total %llu\n",
		(unsigned long long)lb->stats.reconciled);
	metric_head(f, "stale_conn_records_total", "counter",
		    "kernel records of no connection, removed by those passes");
	fprintf(f, "h2lb_stale_conn_records_total %llu\n",
		(unsigned long long)lb->stats.stale_conns);
	if (kern_read_counters(lb->k, cnt))
		return;
	for (int i = 0; i < H2LB_CNT_MAX; i++) {
		char name[64];

		snprintf(name, sizeof(name), "%s_total", counter_name(i));
		metric_head(f, name, "counter", counter_help(i));
		fprintf(f, "h2lb_%s %llu\n", name, (unsigned long long)cnt[i]);
	}
}

static void respond(int fd, const char *status, const char *body, size_t len)
{
	char head[160];
	int n = snprintf(
		head, sizeof(head),
		"HTTP/1.1 %s\r\nContent-Type: text/plain; version=0.0.4\r\n"
		"Content-Length: %zu\r\nConnection: close\r\n\r\n",
		status, len);

	/* Small answers to a local scraper: blocking writes are fine. */
	if (write(fd, head, n) != n || (len && write(fd, body, len) < 0))
		pr_debug("metrics: write: %s", strerror(errno));
}

void metrics_serve(int listen_fd, struct lb *lb, const struct services *sv)
{
	char req[2048], *body = NULL;
	size_t len = 0;
	ssize_t n;
	FILE *f;
	int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	{
		struct timeval tv = { .tv_sec = 1 };

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	n = read(fd, req, sizeof(req) - 1);
	if (n <= 0) {
		close(fd);
		return;
	}
	req[n] = '\0';
	if (!strncmp(req, "GET /healthz", 12)) {
		respond(fd, "200 OK", "ok\n", 3);
	} else if (!strncmp(req, "GET /metrics", 12)) {
		f = open_memstream(&body, &len);
		if (f) {
			daemon_metrics(f, lb, sv);
			backend_metrics(f, lb->k);
			fclose(f);
			respond(fd, "200 OK", body, len);
			free(body);
		}
	} else {
		respond(fd, "404 Not Found", "not found\n", 10);
	}
	close(fd);
}

int metrics_open(const struct sockaddr_in *at)
{
	char buf[32];
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)at, sizeof(*at)) ||
	    listen(fd, 16)) {
		pr_err("metrics on %s: %s", addr_str(at, buf, sizeof(buf)),
		       strerror(errno));
		close(fd);
		return -1;
	}
	pr_info("metrics on http://%s/metrics", addr_str(at, buf, sizeof(buf)));
	return fd;
}
