// SPDX-License-Identifier: GPL-2.0
/*
 * `h2lb status | backends | conns | streams`: read the pinned maps
 * directly, so they answer even when the daemon is hung. Tables by
 * default; -j JSON, -p pretty JSON, as bpftool does.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include "cli.h"
#include "h2lb.h"
#include "json_writer.h"
#include "kern.h"
#include "names.h"
#include "status.h"

/* The daemon's pinned maps, or NULL with the reason said (as JSON with
 * -j). */
static struct kern *open_pins(const char *dir)
{
	struct kern *k = kern_pinned(dir);
	char why[512];

	if (!k) {
		kern_pinned_error(dir, errno, why, sizeof(why));
		cli_err("%s", why);
	}
	return k;
}

static void addr_fmt(uint32_t addr, uint16_t port, char *buf, size_t len)
{
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &addr, ip, sizeof(ip));
	snprintf(buf, len, "%s:%u", ip, port);
}

static void services_print(const struct h2lb_service *svc,
			   struct json_writer *w)
{
	char vip[32], listen[32];

	if (w) {
		jw_key(w, "services");
		jw_arr_start(w);
	} else {
		printf("%-3s %-40s %-21s %-21s %s\n", "ID", "SERVICE", "VIP",
		       "LISTENER", "STATE");
	}
	for (int i = 0; i < H2LB_MAX_SERVICES; i++) {
		const struct h2lb_service *v = &svc[i];

		if (v->state == H2LB_SVC_UNUSED || v->state > H2LB_SVC_CLOSED)
			continue;
		if (v->vip)
			addr_fmt(v->vip, v->vip_port, vip, sizeof(vip));
		else
			snprintf(vip, sizeof(vip), "-");
		addr_fmt(v->listen_addr, v->listen_port, listen,
			 sizeof(listen));
		if (!w) {
			printf("%-3d %-40s %-21s %-21s %s\n", i, v->name, vip,
			       listen, service_state_name(v->state));
			continue;
		}
		jw_obj_start(w);
		jw_kv_u64(w, "id", i);
		jw_kv_str(w, "name", v->name);
		jw_kv_str(w, "vip", v->vip ? vip : "");
		jw_kv_str(w, "listener", listen);
		jw_kv_str(w, "state", service_state_name(v->state));
		jw_obj_end(w);
	}
	if (w)
		jw_arr_end(w);
}

static void backends_print(const struct h2lb_backend *be, int n,
			   const struct h2lb_service *svc,
			   struct json_writer *w)
{
	char addr[32];

	if (w) {
		jw_key(w, "backends");
		jw_arr_start(w);
	} else {
		printf("%-3s %-21s %-24s %-8s %6s %10s %8s %12s %12s %9s %9s\n",
		       "ID", "ADDRESS", "SERVICE", "STATE", "OPEN", "STREAMS",
		       "RESETS", "BYTES_TO", "BYTES_FROM", "P50_US", "P99_US");
	}
	for (int i = 0; i < n; i++) {
		const struct h2lb_backend *b = &be[i];

		if (b->state == H2LB_BE_UNUSED)
			continue;
		addr_fmt(b->addr, b->port, addr, sizeof(addr));
		if (!w) {
			printf("%-3d %-21s %-24.24s %-8s %6u %10llu %8llu %12llu %12llu %9llu %9llu\n",
			       i, addr, service_name(svc, b->service),
			       backend_state_name(b->state), b->open_streams,
			       (unsigned long long)b->streams,
			       (unsigned long long)b->resets,
			       (unsigned long long)b->bytes_to,
			       (unsigned long long)b->bytes_from,
			       (unsigned long long)latency_quantile_us(
				       b->latency, 0.5),
			       (unsigned long long)latency_quantile_us(
				       b->latency, 0.99));
			continue;
		}
		jw_obj_start(w);
		jw_kv_u64(w, "id", i);
		jw_kv_str(w, "address", addr);
		jw_kv_str(w, "service", service_name(svc, b->service));
		jw_kv_str(w, "state", backend_state_name(b->state));
		jw_kv_u64(w, "open_streams", b->open_streams);
		jw_kv_u64(w, "streams", b->streams);
		jw_kv_u64(w, "resets", b->resets);
		jw_kv_u64(w, "bytes_to", b->bytes_to);
		jw_kv_u64(w, "bytes_from", b->bytes_from);
		jw_key(w, "latency_log2_us");
		jw_arr_start(w);
		for (int k = 0; k < H2LB_LAT_BUCKETS; k++)
			jw_u64(w, b->latency[k]);
		jw_arr_end(w);
		jw_obj_end(w);
	}
	if (w)
		jw_arr_end(w);
}

/* The table sizes, what is in use of those the CLI can count cheaply,
 * and what full tables leave out now. */
static void limits_print(struct kern *k, const struct h2lb_service *svc,
			 const struct h2lb_backend *be, int n,
			 const struct h2lb_daemon_stats *st,
			 struct json_writer *w)
{
	const struct kern_limits *l = kern_limits(k);
	/* Index 0 is --listen's, unused when every balanced Service port
	 * has an index of its own (there are more than one then). */
	unsigned int max_svc = l->services > 1 ? l->services - 1 : l->services;
	unsigned int services = 0, backends = 0;

	for (int i = 0; i < H2LB_MAX_SERVICES; i++)
		services += svc[i].state == H2LB_SVC_OPEN;
	for (int i = 0; i < n; i++)
		backends += be[i].state != H2LB_BE_UNUSED;
	if (!w) {
		printf("tables: %u of %u service ports, %u of %u backends (%u per service), %u connections, %u streams; left out: %llu service ports, %llu endpoints over their service's cap, %llu with no backend slot\n",
		       services, max_svc, backends, l->backends,
		       l->svc_backends, l->conns, l->streams,
		       (unsigned long long)st->services_left_out,
		       (unsigned long long)st->endpoints_over_cap,
		       (unsigned long long)st->endpoints_no_slot);
		return;
	}
	jw_key(w, "tables");
	jw_obj_start(w);
	jw_kv_u64(w, "services", services);
	jw_kv_u64(w, "max_services", max_svc);
	jw_kv_u64(w, "backends", backends);
	jw_kv_u64(w, "max_backends", l->backends);
	jw_kv_u64(w, "max_backends_per_service", l->svc_backends);
	jw_kv_u64(w, "max_conns", l->conns);
	jw_kv_u64(w, "max_streams_total", l->streams);
	jw_kv_u64(w, "services_left_out", st->services_left_out);
	jw_kv_u64(w, "endpoints_over_service_cap", st->endpoints_over_cap);
	jw_kv_u64(w, "endpoints_no_slot", st->endpoints_no_slot);
	jw_obj_end(w);
}

static int cmd_backends(struct kern *k, struct json_writer *w)
{
	static struct h2lb_service svc[H2LB_MAX_SERVICES];
	static struct h2lb_backend be[H2LB_MAX_BACKENDS];
	int n;

	if (kern_read_backends(k, be, &n))
		return 1;
	kern_read_services(k, svc);
	if (w)
		jw_obj_start(w);
	backends_print(be, n, svc, w);
	if (w) {
		jw_obj_end(w);
		jw_end(w);
	}
	return 0;
}

static int cmd_status(struct kern *k, struct json_writer *w)
{
	static struct h2lb_service svc[H2LB_MAX_SERVICES];
	static struct h2lb_backend be[H2LB_MAX_BACKENDS];
	struct h2lb_daemon_stats st = { 0 };
	uint64_t cnt[H2LB_CNT_MAX];
	int n;

	if (kern_read_counters(k, cnt) || kern_read_backends(k, be, &n))
		return 1;
	kern_read_daemon_stats(k, &st);
	kern_read_services(k, svc);
	if (!w) {
		bool alive = st.pid && kill(st.pid, 0) == 0;

		printf("daemon: pid %llu (%s); %llu clients and %llu backend connections opened; read %llu B, wrote %llu B\n",
		       (unsigned long long)st.pid,
		       alive ? "running" : "not running",
		       (unsigned long long)st.clients,
		       (unsigned long long)st.legs,
		       (unsigned long long)st.bytes_read,
		       (unsigned long long)st.bytes_written);
		printf("daemon: refused %llu over the per-client limit, %llu full; timeouts: %llu idle, %llu handshake; %llu reconciliations (%llu closed found, %llu stale records)\n",
		       (unsigned long long)st.refused_per_client,
		       (unsigned long long)st.refused_full,
		       (unsigned long long)st.idle_timeouts,
		       (unsigned long long)st.handshake_timeouts,
		       (unsigned long long)st.reconciles,
		       (unsigned long long)st.reconciled,
		       (unsigned long long)st.stale_conns);
		limits_print(k, svc, be, n, &st, NULL);
		printf("daemon: not HTTP/2: %llu reset for want of a backend, %llu for a peer over its buffer\n",
		       (unsigned long long)st.raw_failed,
		       (unsigned long long)st.raw_full);
		printf("daemon: %llu backend connections from clients' addresses, %llu of them failed; %llu clients closed with none\n",
		       (unsigned long long)st.source_legs,
		       (unsigned long long)st.source_leg_failures,
		       (unsigned long long)st.refused_no_leg);
		printf("daemon: events");
		for (int i = 1; i < H2LB_EV_MAX; i++)
			printf(" %s %llu", event_name(i),
			       (unsigned long long)st.events_by_type[i]);
		printf("\n");
		printf("kernel:");
		for (int i = 0; i < H2LB_CNT_MAX; i++)
			printf(" %s %llu", counter_name(i),
			       (unsigned long long)cnt[i]);
		printf("\n\n");
		services_print(svc, NULL);
		printf("\n");
		backends_print(be, n, svc, NULL);
		return 0;
	}
	jw_obj_start(w);
	jw_key(w, "daemon");
	jw_obj_start(w);
	jw_kv_u64(w, "pid", st.pid);
	jw_kv_u64(w, "bytes_read", st.bytes_read);
	jw_kv_u64(w, "bytes_written", st.bytes_written);
	jw_kv_u64(w, "events", st.events);
	jw_kv_u64(w, "injected_frames", st.injected_frames);
	jw_kv_u64(w, "clients", st.clients);
	jw_kv_u64(w, "backend_connections", st.legs);
	jw_kv_u64(w, "watchdog_pings", st.watchdog_pings);
	jw_kv_u64(w, "queued_bytes", st.queued > 0 ? st.queued : 0);
	jw_kv_u64(w, "refused_per_client", st.refused_per_client);
	jw_kv_u64(w, "refused_full", st.refused_full);
	jw_kv_u64(w, "idle_timeouts", st.idle_timeouts);
	jw_kv_u64(w, "handshake_timeouts", st.handshake_timeouts);
	jw_kv_u64(w, "reconciles", st.reconciles);
	jw_kv_u64(w, "reconciled", st.reconciled);
	jw_kv_u64(w, "stale_conns", st.stale_conns);
	jw_kv_u64(w, "raw_failed", st.raw_failed);
	jw_kv_u64(w, "raw_full", st.raw_full);
	jw_kv_u64(w, "source_legs", st.source_legs);
	jw_kv_u64(w, "source_leg_failures", st.source_leg_failures);
	jw_kv_u64(w, "refused_no_leg", st.refused_no_leg);
	jw_kv_u64(w, "quiet_looks", st.quiet_looks);
	jw_kv_u64(w, "diverted", st.diverted);
	jw_kv_u64(w, "reset_unsent", st.reset_unsent);
	jw_kv_u64(w, "tcp_mem_pages", st.tcp_mem_pages);
	jw_kv_u64(w, "fast_closed", st.fast_closed);
	jw_kv_u64(w, "settings_acks_held", st.settings_acks_held);
	jw_kv_u64(w, "settings_timeouts", st.settings_timeouts);
	jw_key(w, "events_by_type");
	jw_obj_start(w);
	for (int i = 1; i < H2LB_EV_MAX; i++)
		jw_kv_u64(w, event_name(i), st.events_by_type[i]);
	jw_obj_end(w);
	jw_obj_end(w);
	limits_print(k, svc, be, n, &st, w);
	jw_key(w, "counters");
	jw_obj_start(w);
	for (int i = 0; i < H2LB_CNT_MAX; i++)
		jw_kv_u64(w, counter_name(i), cnt[i]);
	jw_obj_end(w);
	services_print(svc, w);
	backends_print(be, n, svc, w);
	jw_obj_end(w);
	jw_end(w);
	return 0;
}

struct conns_print {
	struct json_writer *w;
	struct h2lb_service svc[H2LB_MAX_SERVICES];
};

static int conn_print(uint64_t key, const struct h2lb_conn *c, void *arg)
{
	struct conns_print *p = arg;
	struct json_writer *w = p->w;

	if (!w) {
		printf("%-18llx %-8s %-7d %-24.24s %-18llx %6u %12llu %12llu %10llu\n",
		       (unsigned long long)key, role_name(c->role),
		       c->role == H2LB_ROLE_BACKEND ? (int)c->backend : -1,
		       c->role == H2LB_ROLE_CLIENT
			       ? service_name(p->svc, c->service)
			       : "-",
		       (unsigned long long)c->peer, c->open_streams,
		       (unsigned long long)c->rx_data,
		       (unsigned long long)c->tx_data,
		       (unsigned long long)c->frames);
		return 0;
	}
	jw_obj_start(w);
	jw_kv_u64(w, "cookie", key);
	jw_kv_str(w, "role", role_name(c->role));
	if (c->role == H2LB_ROLE_BACKEND)
		jw_kv_u64(w, "backend", c->backend);
	if (c->role == H2LB_ROLE_CLIENT)
		jw_kv_str(w, "service", service_name(p->svc, c->service));
	jw_kv_u64(w, "peer", c->peer);
	jw_kv_u64(w, "open_streams", c->open_streams);
	jw_kv_u64(w, "rx_data", c->rx_data);
	jw_kv_u64(w, "tx_data", c->tx_data);
	jw_kv_u64(w, "tx_bytes", c->tx_bytes);
	jw_kv_u64(w, "rx_grant", c->rx_grant);
	jw_kv_u64(w, "stream_window", c->stream_window);
	jw_kv_u64(w, "frames", c->frames);
	jw_obj_end(w);
	return 0;
}

static int cmd_conns(struct kern *k, struct json_writer *w)
{
	static struct conns_print p;

	p.w = w;
	kern_read_services(k, p.svc);
	if (w)
		jw_arr_start(w);
	else
		printf("%-18s %-8s %-7s %-24s %-18s %6s %12s %12s %10s\n",
		       "COOKIE", "ROLE", "BACKEND", "SERVICE", "PEER", "OPEN",
		       "RX_DATA", "TX_DATA", "FRAMES");
	kern_each_conn(k, conn_print, &p);
	if (w) {
		jw_arr_end(w);
		jw_end(w);
	}
	return 0;
}

struct streams_print {
	struct json_writer *w;
	uint64_t now_ns;
};

static int stream_print(const struct h2lb_stream_key *key,
			const struct h2lb_stream *st, void *arg)
{
	struct streams_print *p = arg;
	struct json_writer *w = p->w;
	uint64_t age = (p->now_ns - st->start_ns) / 1000000;
	const char *state = (st->flags & H2LB_ST_CLIENT_END) ? "half-closed(l)"
			    : (st->flags & H2LB_ST_SERVER_END)
				    ? "half-closed(r)"
				    : "open";

	if (!w) {
		printf("%-18llx %10u %-7u %-18llx %-14s %10llu\n",
		       (unsigned long long)key->client, key->id, st->backend,
		       (unsigned long long)st->leg, state,
		       (unsigned long long)age);
		return 0;
	}
	jw_obj_start(w);
	jw_kv_u64(w, "client", key->client);
	jw_kv_u64(w, "stream", key->id);
	jw_kv_u64(w, "backend", st->backend);
	jw_kv_u64(w, "leg", st->leg);
	jw_kv_str(w, "state", state);
	jw_kv_u64(w, "age_ms", age);
	jw_obj_end(w);
	return 0;
}

static int cmd_streams(struct kern *k, struct json_writer *w)
{
	struct streams_print p = { .w = w };
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	p.now_ns = (uint64_t)now.tv_sec * 1000000000ull + now.tv_nsec;
	if (w)
		jw_arr_start(w);
	else
		printf("%-18s %10s %-7s %-18s %-14s %10s\n", "CLIENT", "STREAM",
		       "BACKEND", "LEG", "STATE", "AGE_MS");
	kern_each_stream(k, stream_print, &p);
	if (w) {
		jw_arr_end(w);
		jw_end(w);
	}
	return 0;
}

struct status_cli {
	const char *dir;
};

static const struct cli_opt status_options[] = {
	CLI_JSON_OPTIONS,
	CLI_PIN_DIR_OPTION(struct status_cli, dir),
	CLI_END,
};

static const struct cli_cmd status_cmd = {
	.usage = "[-j|-p] [--pin-dir DIR]",
	.doc = "Read the pinned maps (the daemon need not answer). With -j or -p,\n"
	       "errors too are JSON, on stdout: {\"error\": \"...\"}.",
	.opts = status_options,
};

int status_main(const char *cmd, int argc, char **argv)
{
	struct status_cli c = { .dir = H2LB_DEFAULT_PIN_DIR };
	struct json_writer jw, *w;
	struct kern *k;
	int ret;

	if (cli_parse(&status_cmd, argc, argv, &c))
		return 2;
	k = open_pins(c.dir);
	if (!k)
		return cli_exit(1);
	w = cli_json_writer(&jw);
	if (!strcmp(cmd, "status"))
		ret = cmd_status(k, w);
	else if (!strcmp(cmd, "backends"))
		ret = cmd_backends(k, w);
	else if (!strcmp(cmd, "conns"))
		ret = cmd_conns(k, w);
	else
		ret = cmd_streams(k, w);
	kern_close(k);
	return cli_exit(ret);
}
