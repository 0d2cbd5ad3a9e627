// SPDX-License-Identifier: GPL-2.0
/* h2lb command line: per-stream HTTP/2 and gRPC load balancing in the
 * kernel. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "cli.h"
#include "daemon.h"
#include "json_writer.h"
#include "log.h"
#include "status.h"
#include "k8s.h"

#ifndef H2LB_VERSION
#define H2LB_VERSION "unknown"
#endif

/* run's config: the daemon's options, and what only parsing needs. */
struct run_cli {
	struct run_opts o;
	bool have_listen; /* --listen given (ADDR:PORT, or ADDR alone) */
};

/* --listen ADDR:PORT, or ADDR alone: for listeners on ports of their own */
static int set_listen(const struct cli_opt *opt, const char *arg, void *cfg)
{
	struct run_cli *c = cfg;
	char err[256];

	c->have_listen = true;
	if (inet_pton(AF_INET, arg, &c->o.listen.sin_addr) == 1) {
		c->o.listen.sin_family = AF_INET;
		return 0;
	}
	if (addr_parse(arg, &c->o.listen, err, sizeof(err))) {
		cli_opt_err(opt, "%s", err);
		return -1;
	}
	return 0;
}

/* --service NS/NAME:PORT (PORT: a port name or number) */
static int set_service(const struct cli_opt *opt, const char *arg, void *cfg)
{
	struct run_cli *c = cfg;
	char *s = strdup(arg), *slash, *colon;

	if (!s) {
		cli_opt_err(opt, "%s", strerror(errno));
		return -1;
	}
	slash = strchr(s, '/');
	colon = strrchr(s, ':');
	if (!slash || !colon || colon < slash || slash == s ||
	    colon == slash + 1 || !colon[1]) {
		cli_opt_err(opt, "'%s': expected NAMESPACE/NAME:PORT", arg);
		free(s);
		return -1;
	}
	*slash = *colon = '\0';
	c->o.k8s_ns = s;
	c->o.k8s_name = slash + 1;
	c->o.k8s_port = colon + 1;
	return 0;
}

static int set_stop_timeout(const struct cli_opt *opt, const char *arg,
			    void *cfg)
{
	struct run_cli *c = cfg;
	long v;

	if (cli_parse_uint(opt, arg, &v))
		return -1;
	c->o.stop_timeout_ms = v * 1000;
	return 0;
}

static int set_idle_timeout(const struct cli_opt *opt, const char *arg,
			    void *cfg)
{
	struct run_cli *c = cfg;
	long v;

	if (cli_parse_uint(opt, arg, &v))
		return -1;
	c->o.idle_timeout_ms = v * 1000;
	return 0;
}

static int set_handshake_timeout(const struct cli_opt *opt, const char *arg,
				 void *cfg)
{
	struct run_cli *c = cfg;
	long v;

	if (cli_parse_uint(opt, arg, &v))
		return -1;
	c->o.handshake_timeout_ms = v * 1000;
	return 0;
}

static int set_verbose(const struct cli_opt *opt, const char *arg, void *cfg)
{
	log_verbosity = LOG_DEBUG;
	return 0;
}

static const struct cli_word policies[] = {
	{ "least-streams", H2LB_POLICY_LEAST_STREAMS },
	{ "round-robin", H2LB_POLICY_ROUND_ROBIN },
	{ NULL },
};

static const struct cli_word intercept_modes[] = {
	{ "tc", INTERCEPT_TC },
	{ "cgroup", INTERCEPT_CGROUP },
	{ "none", INTERCEPT_NONE },
	{ NULL },
};

static const struct cli_word on_off[] = {
	{ "on", 1 },
	{ "off", 0 },
	{ NULL },
};

static const struct cli_word leg_sources[] = {
	{ "client", LEG_SOURCE_CLIENT },
	{ "node", LEG_SOURCE_NODE },
	{ NULL },
};

static const struct cli_opt run_options[] = {
	CLI_FUNC_OPTION(
		"listen", set_listen, .short_opt = 'l', .arg = "ADDR:PORT",
		.help = "where clients connect (HTTP/2 prior knowledge, h2c);\n"
			"--kubernetes without --service: ADDR, where each\n"
			"Service gets a listener (default 127.0.0.1)"),
	CLI_OPTION("backends", CLI_STR, struct run_cli, o.backends,
		   .short_opt = 'b', .arg = "LIST",
		   .help = "backends, comma separated ADDR:PORT"),
	CLI_OPTION(
		"backends-file", CLI_STR, struct run_cli, o.backends_file,
		.short_opt = 'f', .arg = "FILE",
		.help = "one ADDR:PORT per line; re-read on SIGHUP and on change"),
	CLI_OPTION("policy", CLI_ENUM, struct run_cli, o.policy,
		   .short_opt = 'P', .arg = "POLICY", .words = policies,
		   .help = "least-streams (default) or round-robin"),
	CLI_OPTION(
		"pool-size", CLI_UINT, struct run_cli, o.pool_size, .arg = "N",
		.min = 1, .max = H2LB_POOL_SLOTS,
		.help = "idle handshaken connections per backend (default 8)"),
	CLI_OPTION(
		"max-streams", CLI_UINT, struct run_cli, o.max_streams,
		.arg = "N", .min = 1, .max = 100000,
		.help = "concurrent streams per client connection (default 1000)"),
	CLI_PIN_DIR_OPTION(struct run_cli, o.pin_dir),
	CLI_OPTION(
		"metrics", CLI_ADDR, struct run_cli, o.metrics,
		.arg = "ADDR:PORT",
		.help = "serve Prometheus metrics on /metrics (and /healthz)"),
	CLI_OPTION(
		"kubernetes", CLI_FLAG, struct run_cli, o.kubernetes,
		.help = "backends are Service endpoints, from the API server;\n"
			"without --service, every balanced Service port"),
	CLI_FUNC_OPTION(
		"service", set_service, .arg = "NS/NAME:PORT",
		.help = "the one Service port to balance (port name or number)"),
	CLI_OPTION("kubeconfig", CLI_STR, struct run_cli, o.kubeconfig,
		   .arg = "FILE",
		   .help = "API server and credentials (default: in-cluster)"),
	CLI_OPTION("node-zone", CLI_STR, struct run_cli, o.node_zone,
		   .arg = "ZONE",
		   .help = "this node's zone, for topology hints"),
	CLI_OPTION(
		"intercept", CLI_ENUM, struct run_cli, o.intercept,
		.arg = "MODE", .words = intercept_modes,
		.help = "take connections to the Services' VIPs:\n"
			"tc (tc ingress, bpf_sk_assign) or cgroup (connect4)"),
	CLI_OPTION("intercept-dev", CLI_STR, struct run_cli, o.intercept_devs,
		   .arg = "LIST",
		   .help = "tc: devices that bring pod traffic in, comma\n"
			   "separated names or patterns (\"veth*\")"),
	CLI_OPTION("intercept-cgroup", CLI_STR, struct run_cli,
		   o.intercept_cgroup, .arg = "DIR",
		   .help = "cgroup, and --fast-path: the cgroup v2 directory\n"
			   "of the clients"),
	CLI_OPTION("fast-path", CLI_ENUM, struct run_cli, o.fast_path,
		   .arg = "on|off", .words = on_off,
		   .help = "clients in --intercept-cgroup: their own sockets\n"
			   "frame what they send (docs/fast-path.md; in\n"
			   "progress, default off)"),
	CLI_OPTION(
		"fast-path-tcp-mem", CLI_SIZE, struct run_cli, o.fast_tcp_mem,
		.arg = "SIZE", .min = 0, .max = 1L << 40,
		.help = "--fast-path on: no new client joins it while the\n"
			"node's TCP memory count is above SIZE (the fast\n"
			"path loses some of it for good, docs/kernel-facts.md\n"
			"K23; default: half of net.ipv4.tcp_mem's first\n"
			"mark; 0: no limit)"),
	CLI_OPTION(
		"leg-source", CLI_ENUM, struct run_cli, o.leg_source,
		.arg = "FROM", .words = leg_sources,
		.help = "intercepted clients: their backend connections come\n"
			"from the client's address (client, the default:\n"
			"backends and their NetworkPolicy see the client) or\n"
			"from the node's (node: pooled, no connect at accept)"),
	CLI_OPTION("client-legs", CLI_UINT, struct run_cli, o.client_legs,
		   .arg = "N", .min = 1, .max = H2LB_MAX_CLIENT_LEGS,
		   .help = "--leg-source client: backends each client gets a\n"
			   "connection to at accept, its streams' choice\n"
			   "(default 8, at most 64)"),
	CLI_OPTION("vip", CLI_ADDR, struct run_cli, o.vip, .arg = "ADDR:PORT",
		   .help = "static backends: the VIP to intercept for them"),
	CLI_OPTION(
		"peer-buffer", CLI_SIZE, struct run_cli, o.peer_buffer,
		.arg = "SIZE", .min = 64 << 10, .max = 1024L << 20,
		.help = "per peer: the most it is sent that its TCP has not\n"
			"acknowledged, and the most window a client's backend\n"
			"connections hold beyond 64K each (default 4M; K, M)"),
	CLI_OPTION(
		"node-buffer", CLI_SIZE, struct run_cli, o.node_buffer,
		.arg = "SIZE", .min = 0, .max = 1L << 40,
		.help = "all peers together: the most they are sent that their\n"
			"TCP has not acknowledged; beyond it new streams are\n"
			"refused and windows wait (default 1G; 0: no limit)"),
	CLI_OPTION(
		"max-streams-per-address", CLI_UINT, struct run_cli,
		o.addr_streams, .arg = "N", .min = 0, .max = 1000000,
		.help = "open streams of all the clients of one address; more\n"
			"are refused (REFUSED_STREAM) (default 10000; 0: no limit)"),
	CLI_OPTION(
		"frame-budget", CLI_UINT, struct run_cli, o.frame_budget,
		.arg = "N", .min = 0, .max = 1000000,
		.help = "frames without data (PING, SETTINGS, WINDOW_UPDATE,\n"
			"RST_STREAM, PRIORITY, empty DATA...) a connection may\n"
			"send at once; more is GOAWAY(ENHANCE_YOUR_CALM)\n"
			"(default 1000; 0: no limit)"),
	CLI_OPTION(
		"frame-rate", CLI_UINT, struct run_cli, o.frame_rate,
		.arg = "N", .min = 0, .max = 1000000,
		.help = "... and per second after that, besides one for each\n"
			"DATA frame sent to it (default 100)"),
	CLI_OPTION(
		"control-queue", CLI_UINT, struct run_cli, o.control_queue,
		.arg = "N", .min = 0, .max = 1000000,
		.help = "control frames that may wait for a peer that has read\n"
			"none of them (PING and SETTINGS ACKs, RST_STREAM...);\n"
			"more: a client gets GOAWAY(ENHANCE_YOUR_CALM), a\n"
			"backend's frames are dropped (default 1000; 0: no limit)"),
	CLI_FUNC_OPTION(
		"stop-timeout", set_stop_timeout, .arg = "S", .min = 0,
		.max = 3600,
		.help = "on SIGTERM/SIGINT, GOAWAY to clients and stop when\n"
			"their streams end, at most S seconds (default 20;\n"
			"0: stop at once; a second signal stops at once)"),
	CLI_OPTION(
		"takeover-wait", CLI_UINT, struct run_cli, o.takeover_wait_s,
		.arg = "S", .min = 0, .max = 3600,
		.help = "another h2lb runs with the pin dir: wait at most S\n"
			"seconds for it to exit, then exit 1 (default 30);\n"
			"what a dead one left is removed at once"),
	CLI_FUNC_OPTION("drain-timeout", set_stop_timeout, .arg = "S", .min = 0,
			.max = 3600,
			.help = "the older name of --stop-timeout"),
	CLI_OPTION("max-conns-per-client", CLI_UINT, struct run_cli,
		   o.max_conns_per_client, .arg = "N", .min = 0, .max = 1000000,
		   .help = "connections from one client address; more are\n"
			   "closed at accept (default 512; 0: no limit)"),
	CLI_FUNC_OPTION(
		"idle-timeout", set_idle_timeout, .arg = "S", .min = 0,
		.max = 86400,
		.help = "a client with no stream open for S seconds gets\n"
			"GOAWAY(NO_ERROR), then is closed\n"
			"(default 300; 0: never)"),
	CLI_FUNC_OPTION(
		"handshake-timeout", set_handshake_timeout, .arg = "S",
		.min = 0, .max = 3600,
		.help = "a client that has not sent its preface and SETTINGS\n"
			"in S seconds gets GOAWAY(PROTOCOL_ERROR) and is\n"
			"closed (default 10; 0: never)"),
	CLI_OPTION(
		"first-bytes-timeout", CLI_UINT, struct run_cli,
		o.first_bytes_timeout_ms, .arg = "MS", .min = 1, .max = 60000,
		.help = "a client that sends nothing (or stops inside the\n"
			"HTTP/2 preface) for MS milliseconds is not HTTP/2:\n"
			"its connection goes whole to one backend\n"
			"(default 1000)"),
	CLI_OPTION("max-services", CLI_UINT, struct run_cli, o.max_services,
		   .arg = "N", .min = 1, .max = H2LB_MAX_SERVICES - 1,
		   .help = "--kubernetes without --service: balanced Service\n"
			   "ports; more are left out, said in the log and\n"
			   "counted (default 1024)"),
	CLI_OPTION("max-backends", CLI_UINT, struct run_cli, o.max_backends,
		   .arg = "N", .min = 1, .max = H2LB_MAX_BACKENDS,
		   .help = "backends (endpoints) of all Services together\n"
			   "(default 16384)"),
	CLI_OPTION(
		"max-backends-per-service", CLI_UINT, struct run_cli,
		o.svc_backends, .arg = "N", .min = 1, .max = H2LB_MAX_BACKENDS,
		.help = "backends of one Service; its endpoints past N are\n"
			"left out, so that it cannot take the others' slots\n"
			"(default 1024 with --kubernetes and no --service,\n"
			"else --max-backends)"),
	CLI_OPTION(
		"max-conns", CLI_UINT, struct run_cli, o.max_conns, .arg = "N",
		.min = 256, .max = H2LB_MAX_CONNS,
		.help = "connections in all, clients and backend\n"
			"connections; clients past 7/8 of it are refused at\n"
			"accept (the rest is for their backend connections)\n"
			"(default 65536)"),
	CLI_OPTION("max-streams-total", CLI_UINT, struct run_cli,
		   o.streams_total, .arg = "N", .min = 1024,
		   .max = H2LB_MAX_STREAMS,
		   .help = "open streams of all clients together; more are\n"
			   "refused (REFUSED_STREAM) (default 131072)"),
	CLI_FUNC_OPTION("verbose", set_verbose, .short_opt = 'v',
			.help = "debug logging"),
	CLI_END,
};

static const struct cli_cmd run_cmd = {
	.usage =
		"--listen ADDR:PORT (--backends LIST | --backends-file FILE) [OPTIONS]\n"
		"--listen ADDR:PORT --kubernetes --service NS/NAME:PORT [OPTIONS]\n"
		"--kubernetes [--listen ADDR] --intercept tc|cgroup [OPTIONS]",
	.doc = "Run the balancer in the foreground, logging to stderr. SIGHUP re-reads\n"
	       "the backends; SIGTERM or SIGINT stops gracefully (GOAWAY to the clients,\n"
	       "exit when their streams end).",
	.opts = run_options,
};

/* The combinations of --listen, --kubernetes, --service, --vip and
 * --intercept* that work. */
static int check_modes(struct run_opts *o, bool have_listen)
{
	bool all = o->kubernetes && !o->k8s_name;

	if (!all && !o->listen.sin_port) {
		cli_err("--listen ADDR:PORT is required");
		return -1;
	}
	if (!have_listen) {
		o->listen.sin_family = AF_INET;
		o->listen.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	}
	if (all && !o->intercept) {
		cli_err("--kubernetes without --service needs --intercept tc|cgroup (clients reach the Services by their VIPs)");
		return -1;
	}
	if (o->vip.sin_port && !o->intercept) {
		cli_err("--vip needs --intercept tc|cgroup");
		return -1;
	}
	if (!o->kubernetes && o->intercept && !o->vip.sin_port) {
		cli_err("--intercept with static backends needs --vip ADDR:PORT");
		return -1;
	}
	if (o->intercept == INTERCEPT_TC && !o->intercept_devs) {
		cli_err("--intercept tc needs --intercept-dev LIST");
		return -1;
	}
	if (o->intercept == INTERCEPT_CGROUP &&
	    (!o->intercept_cgroup || !o->listen.sin_addr.s_addr ||
	     o->listen.sin_addr.s_addr == htonl(INADDR_LOOPBACK))) {
		cli_err("--intercept cgroup needs --intercept-cgroup DIR and a --listen address the clients can reach");
		return -1;
	}
	if (o->intercept != INTERCEPT_TC && o->intercept_devs) {
		cli_err("--intercept-dev is for --intercept tc");
		return -1;
	}
	if (o->intercept != INTERCEPT_CGROUP && !o->fast_path &&
	    o->intercept_cgroup) {
		cli_err("--intercept-cgroup is for --intercept cgroup or --fast-path on");
		return -1;
	}
	if (o->fast_path && !o->intercept_cgroup) {
		cli_err("--fast-path on needs --intercept-cgroup DIR (the clients' cgroup)");
		return -1;
	}
	if (!o->fast_path && o->fast_tcp_mem >= 0) {
		cli_err("--fast-path-tcp-mem is for --fast-path on");
		return -1;
	}
	return 0;
}

/* The most "svc_backends" may hold: a list of every Service's backends,
 * 4 bytes each (64 MiB). */
#define MAX_SVC_LIST_ENTRIES (1u << 24)

/* Table sizes that fit each other. */
static int check_limits(struct run_opts *o)
{
	bool all = o->kubernetes && !o->k8s_name;

	/* Static backends and --service balance one Service, index 0: no
	 * other needs a place in the tables. */
	if (!all)
		o->max_services = 0;
	/* Unset: a cap only where Services share the slots (every balanced
	 * Service port); one Service alone may have them all. */
	if (!o->svc_backends)
		o->svc_backends = all ? H2LB_DEF_SVC_BACKENDS : o->max_backends;
	/* A Service can have no more than all of them. */
	if (o->svc_backends > o->max_backends)
		o->svc_backends = o->max_backends;
	if ((uint64_t)(o->max_services + 1) * o->svc_backends >
	    MAX_SVC_LIST_ENTRIES) {
		cli_err("--max-services %u with --max-backends-per-service %u: the lists of each Service's backends would hold %llu entries, more than %u",
			o->max_services, o->svc_backends,
			(unsigned long long)(o->max_services + 1) *
				o->svc_backends,
			MAX_SVC_LIST_ENTRIES);
		return -1;
	}
	return 0;
}

static int cmd_run(int argc, char **argv)
{
	struct run_cli c = {
		.o = {
			.pin_dir = H2LB_DEFAULT_PIN_DIR,
			.policy = H2LB_POLICY_LEAST_STREAMS,
			.pool_size = 8,
			.leg_source = LEG_SOURCE_CLIENT,
			.client_legs = 8,
			.max_streams = 1000,
			.stream_window = 65535,
			.stop_timeout_ms = 20000,
			.takeover_wait_s = 30,
			.peer_buffer = 4 << 20,
			.fast_tcp_mem = -1,
			.node_buffer = 1L << 30,
			.frame_budget = 1000,
			.frame_rate = 100,
			.control_queue = 1000,
			.addr_streams = 10000,
			.max_conns_per_client = 512,
			.idle_timeout_ms = 300 * 1000,
			.handshake_timeout_ms = 10 * 1000,
			.first_bytes_timeout_ms = 1000,
			.max_services = H2LB_DEF_SERVICES,
			.max_backends = H2LB_DEF_BACKENDS,
			.max_conns = H2LB_DEF_CONNS,
			.streams_total = H2LB_DEF_STREAMS,
		},
	};
	struct run_opts *o = &c.o;
	char err[256];

	if (cli_parse(&run_cmd, argc, argv, &c))
		return 2;
	if (check_modes(o, c.have_listen))
		return 2;
	if (o->kubernetes) {
		if (o->backends || o->backends_file || o->vip.sin_port) {
			cli_err("--kubernetes takes no --backends, --backends-file or --vip (the Services have them)");
			return 2;
		}
	} else if (!o->backends == !o->backends_file) {
		cli_err("give either --backends or --backends-file (or --kubernetes)");
		return 2;
	}
	if (check_limits(o))
		return 2;
	if (o->backends) {
		static struct sockaddr_in tmp[H2LB_MAX_BACKENDS];

		if (addr_parse_list(o->backends, tmp, o->max_backends, err,
				    sizeof(err)) < 0) {
			cli_err("--backends: %s", err);
			return 2;
		}
	}
	if (geteuid() != 0) {
		cli_err("needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN)");
		return 1;
	}
	return daemon_run(o);
}

static const struct cli_opt version_opts[] = {
	CLI_JSON_OPTIONS,
	CLI_END,
};

static const struct cli_cmd version_cmd = {
	.usage = "[-j|-p]",
	.doc = "Print h2lb's version.",
	.opts = version_opts,
};

static int cmd_version(int argc, char **argv)
{
	struct json_writer jw, *w;

	if (cli_parse(&version_cmd, argc, argv, NULL))
		return 2;
	w = cli_json_writer(&jw);
	if (!w) {
		printf("h2lb %s\n", H2LB_VERSION);
		return 0;
	}
	jw_obj_start(w);
	jw_kv_str(w, "version", H2LB_VERSION);
	jw_obj_end(w);
	jw_end(w);
	return 0;
}

static int cmd_status(int argc, char **argv)
{
	return status_main(argv[0], argc, argv);
}

static int cmd_help(int argc, char **argv);

static const struct command {
	const char *name;
	const char *summary;
	int (*main)(int argc, char **argv);
} commands[] = {
	{ "run", "run the balancer in the foreground", cmd_run },
	{ "status",
	  "daemon, kernel counters and backends (from the pinned maps)",
	  cmd_status },
	{ "backends", "per-backend state, streams, resets, bytes, latency",
	  cmd_status },
	{ "conns", "connections in the sockhash", cmd_status },
	{ "streams", "open streams", cmd_status },
	{ "unload", "remove everything h2lb attached and pinned", unload_main },
	{ "k8s-dump",
	  "print the Kubernetes Services h2lb would balance, as JSON lines",
	  k8s_dump_main },
	{ "version", "print h2lb's version (also: h2lb --version)",
	  cmd_version },
	{ "help", "show this help", cmd_help },
};

static void overview(FILE *f)
{
	fprintf(f, "Usage: h2lb COMMAND [OPTIONS]\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-9s %s\n", commands[i].name,
			commands[i].summary);
	fprintf(f,
		"\n"
		"status, backends, conns, streams: -j JSON, -p pretty JSON, --pin-dir DIR\n"
		"\n"
		"Run 'h2lb COMMAND -h' for a command's options; h2lb(8) has them all.\n");
}

static const struct cli_opt help_opts[] = {
	CLI_END,
};

static const struct cli_cmd help_cmd = {
	.usage = "",
	.doc = "List the commands (also: h2lb --help).",
	.opts = help_opts,
};

static int cmd_help(int argc, char **argv)
{
	if (cli_parse(&help_cmd, argc, argv, NULL))
		return 2;
	overview(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	static char help[] = "help", version[] = "version";
	const char *cmd;

	setvbuf(stderr, NULL, _IOLBF, 0);
	if (argc < 2) {
		overview(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		argv[1] = help;
	else if (!strcmp(argv[1], "--version"))
		argv[1] = version;
	cmd = argv[1];
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(cmd, commands[i].name))
			return commands[i].main(argc - 1, argv + 1);
	fprintf(stderr, "h2lb: unknown command '%s'\n", cmd);
	overview(stderr);
	return 2;
}
