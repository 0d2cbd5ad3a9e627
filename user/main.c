// SPDX-License-Identifier: GPL-2.0
/* h2lb command line: per-stream HTTP/2 and gRPC load balancing in the
 * kernel. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "daemon.h"
#include "log.h"
#include "status.h"
#include "k8s.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: h2lb COMMAND [OPTIONS]\n"
		"\n"
		"Commands:\n"
		"  run       run the balancer in the foreground\n"
		"  status    daemon, kernel counters and backends (from the pinned maps)\n"
		"  backends  per-backend state, streams, resets, bytes, latency\n"
		"  conns     connections in the sockhash\n"
		"  streams   open streams\n"
		"  unload    remove everything h2lb attached and pinned\n"
		"  k8s-dump  print the Kubernetes Services h2lb would balance, as JSON lines\n"
		"  help      show this help\n"
		"\n"
		"status, backends, conns, streams: -j JSON, -p pretty JSON, --pin-dir DIR\n"
		"\n"
		"h2lb run --listen ADDR:PORT (--backends ADDR:PORT[,...] | --backends-file FILE |\n"
		"                             --kubernetes --service NS/NAME:PORT)\n"
		"h2lb run --kubernetes [--listen ADDR] --intercept tc|cgroup ...\n"
		"  -l, --listen ADDR:PORT      where clients connect (HTTP/2 prior knowledge, h2c);\n"
		"                              --kubernetes without --service: ADDR, where each\n"
		"                              Service gets a listener (default 127.0.0.1)\n"
		"  -b, --backends LIST         backends, comma separated ADDR:PORT\n"
		"  -f, --backends-file FILE    one ADDR:PORT per line; re-read on SIGHUP and on change\n"
		"  -P, --policy POLICY         least-streams (default) or round-robin\n"
		"      --pool-size N           idle handshaken connections per backend (default 8)\n"
		"      --max-streams N         concurrent streams per client connection (default 1000)\n"
		"      --pin-dir DIR           where maps are pinned (default " H2LB_DEFAULT_PIN_DIR
		")\n"
		"      --metrics ADDR:PORT     serve Prometheus metrics on /metrics (and /healthz)\n"
		"      --kubernetes            backends are Service endpoints, from the API server;\n"
		"                              without --service, every balanced Service port\n"
		"      --service NS/NAME:PORT  the one Service port to balance (port name or number)\n"
		"      --kubeconfig FILE       API server and credentials (default: in-cluster)\n"
		"      --node-zone ZONE        this node's zone, for topology hints\n"
		"      --intercept MODE        take connections to the Services' VIPs:\n"
		"                              tc (tc ingress, bpf_sk_assign) or cgroup (connect4)\n"
		"      --intercept-dev LIST    tc: devices that bring pod traffic in, comma\n"
		"                              separated names or patterns (\"veth*\")\n"
		"      --intercept-cgroup DIR  cgroup: the cgroup v2 directory of the clients\n"
		"      --vip ADDR:PORT         static backends: the VIP to intercept for them\n"
		"      --peer-buffer SIZE      per peer: the most it is sent that its TCP has not\n"
		"                              acknowledged, and the most window a client's backend\n"
		"                              connections hold beyond 64K each (default 4M; K, M)\n"
		"      --drain-timeout S       on SIGTERM/SIGINT, GOAWAY to clients and stop when\n"
		"                              their streams end, at most S seconds (default 20;\n"
		"                              0: stop at once; a second signal stops at once)\n"
		"  -v, --verbose               debug logging\n");
}

static int parse_uint(const char *flag, const char *s, long min, long max,
		      long *out)
{
	char *end;

	errno = 0;
	*out = strtol(s, &end, 10);
	if (!*s || *end || errno || *out < min || *out > max) {
		fprintf(stderr, "h2lb: %s: '%s' is not a number in %ld-%ld\n",
			flag, s, min, max);
		return -1;
	}
	return 0;
}

/* A byte count with an optional K or M suffix (powers of 1024). */
static int parse_size(const char *flag, const char *s, long min, long max,
		      long *out)
{
	int shift = 0;
	char *end;

	errno = 0;
	*out = strtol(s, &end, 10);
	if (*end == 'K' || *end == 'k')
		shift = 10, end++;
	else if (*end == 'M' || *end == 'm')
		shift = 20, end++;
	if (!*s || *end || errno || *out < 0 || *out > max >> shift ||
	    (*out << shift) < min) {
		fprintf(stderr,
			"h2lb: %s: '%s' is not a size in %ldK-%ldM (bytes, or with K or M)\n",
			flag, s, min >> 10, max >> 20);
		return -1;
	}
	*out <<= shift;
	return 0;
}

/* --service NS/NAME:PORT (PORT: a port name or number) */
static int parse_service(char *arg, struct run_opts *o)
{
	char *slash = strchr(arg, '/'), *colon = strrchr(arg, ':');

	if (!slash || !colon || colon < slash || slash == arg ||
	    colon == slash + 1 || !colon[1]) {
		fprintf(stderr,
			"h2lb: --service: '%s': expected NAMESPACE/NAME:PORT\n",
			arg);
		return -1;
	}
	*slash = *colon = '\0';
	o->k8s_ns = arg;
	o->k8s_name = slash + 1;
	o->k8s_port = colon + 1;
	return 0;
}

/* The combinations of --listen, --kubernetes, --service, --vip and
 * --intercept* that work. */
static int check_modes(struct run_opts *o, bool have_listen)
{
	bool all = o->kubernetes && !o->k8s_name;

	if (!all && !o->listen.sin_port) {
		fprintf(stderr, "h2lb run: --listen ADDR:PORT is required\n");
		return -1;
	}
	if (!have_listen) {
		o->listen.sin_family = AF_INET;
		o->listen.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	}
	if (all && !o->intercept) {
		fprintf(stderr,
			"h2lb run: --kubernetes without --service needs --intercept tc|cgroup (clients reach the Services by their VIPs)\n");
		return -1;
	}
	if (o->vip.sin_port && !o->intercept) {
		fprintf(stderr,
			"h2lb run: --vip needs --intercept tc|cgroup\n");
		return -1;
	}
	if (!o->kubernetes && o->intercept && !o->vip.sin_port) {
		fprintf(stderr,
			"h2lb run: --intercept with static backends needs --vip ADDR:PORT\n");
		return -1;
	}
	if (o->intercept == INTERCEPT_TC && !o->intercept_devs) {
		fprintf(stderr,
			"h2lb run: --intercept tc needs --intercept-dev LIST\n");
		return -1;
	}
	if (o->intercept == INTERCEPT_CGROUP &&
	    (!o->intercept_cgroup || !o->listen.sin_addr.s_addr ||
	     o->listen.sin_addr.s_addr == htonl(INADDR_LOOPBACK))) {
		fprintf(stderr,
			"h2lb run: --intercept cgroup needs --intercept-cgroup DIR and a --listen address the clients can reach\n");
		return -1;
	}
	if (o->intercept != INTERCEPT_TC && o->intercept_devs) {
		fprintf(stderr,
			"h2lb run: --intercept-dev is for --intercept tc\n");
		return -1;
	}
	if (o->intercept != INTERCEPT_CGROUP && o->intercept_cgroup) {
		fprintf(stderr,
			"h2lb run: --intercept-cgroup is for --intercept cgroup\n");
		return -1;
	}
	return 0;
}

static int cmd_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "backends", required_argument, NULL, 'b' },
		{ "backends-file", required_argument, NULL, 'f' },
		{ "policy", required_argument, NULL, 'P' },
		{ "pool-size", required_argument, NULL, 'S' },
		{ "max-streams", required_argument, NULL, 'M' },
		{ "pin-dir", required_argument, NULL, 'D' },
		{ "metrics", required_argument, NULL, 'm' },
		{ "kubernetes", no_argument, NULL, 'K' },
		{ "kubeconfig", required_argument, NULL, 'C' },
		{ "service", required_argument, NULL, 's' },
		{ "node-zone", required_argument, NULL, 'Z' },
		{ "intercept", required_argument, NULL, 'I' },
		{ "intercept-dev", required_argument, NULL, 'i' },
		{ "intercept-cgroup", required_argument, NULL, 'G' },
		{ "vip", required_argument, NULL, 'V' },
		{ "drain-timeout", required_argument, NULL, 'T' },
		{ "peer-buffer", required_argument, NULL, 'B' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct run_opts o = {
		.pin_dir = H2LB_DEFAULT_PIN_DIR,
		.policy = H2LB_POLICY_LEAST_STREAMS,
		.pool_size = 8,
		.max_streams = 1000,
		.stream_window = 65535,
		.drain_timeout_ms = 20000,
		.peer_buffer = 4 << 20,
	};
	bool have_listen = false;
	char err[256];
	long v;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "l:b:f:P:vh", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'l':
			/* ADDR alone: for listeners on ports of their own */
			if (inet_pton(AF_INET, optarg, &o.listen.sin_addr) ==
			    1) {
				o.listen.sin_family = AF_INET;
				have_listen = true;
				break;
			}
			if (addr_parse(optarg, &o.listen, err, sizeof(err))) {
				fprintf(stderr, "h2lb: --listen: %s\n", err);
				return 2;
			}
			have_listen = true;
			break;
		case 'b':
			o.backends = optarg;
			break;
		case 'f':
			o.backends_file = optarg;
			break;
		case 'P':
			if (!strcmp(optarg, "least-streams"))
				o.policy = H2LB_POLICY_LEAST_STREAMS;
			else if (!strcmp(optarg, "round-robin"))
				o.policy = H2LB_POLICY_ROUND_ROBIN;
			else {
				fprintf(stderr,
					"h2lb: --policy: '%s' is not least-streams or round-robin\n",
					optarg);
				return 2;
			}
			break;
		case 'S':
			if (parse_uint("--pool-size", optarg, 1,
				       H2LB_POOL_SLOTS, &v))
				return 2;
			o.pool_size = v;
			break;
		case 'M':
			if (parse_uint("--max-streams", optarg, 1, 100000, &v))
				return 2;
			o.max_streams = v;
			break;
		case 'D':
			o.pin_dir = optarg;
			break;
		case 'm':
			if (addr_parse(optarg, &o.metrics, err, sizeof(err))) {
				fprintf(stderr, "h2lb: --metrics: %s\n", err);
				return 2;
			}
			break;
		case 'K':
			o.kubernetes = true;
			break;
		case 'C':
			o.kubeconfig = optarg;
			break;
		case 's':
			if (parse_service(optarg, &o))
				return 2;
			break;
		case 'Z':
			o.node_zone = optarg;
			break;
		case 'I':
			if (!strcmp(optarg, "tc"))
				o.intercept = INTERCEPT_TC;
			else if (!strcmp(optarg, "cgroup"))
				o.intercept = INTERCEPT_CGROUP;
			else if (!strcmp(optarg, "none"))
				o.intercept = INTERCEPT_NONE;
			else {
				fprintf(stderr,
					"h2lb: --intercept: '%s' is not tc, cgroup or none\n",
					optarg);
				return 2;
			}
			break;
		case 'i':
			o.intercept_devs = optarg;
			break;
		case 'G':
			o.intercept_cgroup = optarg;
			break;
		case 'T':
			if (parse_uint("--drain-timeout", optarg, 0, 3600, &v))
				return 2;
			o.drain_timeout_ms = v * 1000;
			break;
		case 'B':
			if (parse_size("--peer-buffer", optarg, 64 << 10,
				       1024L << 20, &v))
				return 2;
			o.peer_buffer = v;
			break;
		case 'V':
			if (addr_parse(optarg, &o.vip, err, sizeof(err))) {
				fprintf(stderr, "h2lb: --vip: %s\n", err);
				return 2;
			}
			break;
		case 'v':
			log_verbosity = LOG_DEBUG;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "Try 'h2lb help'.\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "h2lb run: unexpected argument '%s'\n",
			argv[optind]);
		return 2;
	}
	if (check_modes(&o, have_listen))
		return 2;
	if (o.kubernetes) {
		if (o.backends || o.backends_file || o.vip.sin_port) {
			fprintf(stderr,
				"h2lb run: --kubernetes takes no --backends, --backends-file or --vip (the Services have them)\n");
			return 2;
		}
	} else if (!o.backends == !o.backends_file) {
		fprintf(stderr,
			"h2lb run: give either --backends or --backends-file (or --kubernetes)\n");
		return 2;
	}
	if (o.backends) {
		struct sockaddr_in tmp[H2LB_MAX_BACKENDS];

		if (addr_parse_list(o.backends, tmp, H2LB_MAX_BACKENDS, err,
				    sizeof(err)) < 0) {
			fprintf(stderr, "h2lb: --backends: %s\n", err);
			return 2;
		}
	}
	if (geteuid() != 0) {
		fprintf(stderr,
			"h2lb run: needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN)\n");
		return 1;
	}
	return daemon_run(&o);
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "help";

	setvbuf(stderr, NULL, _IOLBF, 0);
	if (!strcmp(cmd, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(cmd, "status") || !strcmp(cmd, "backends") ||
	    !strcmp(cmd, "conns") || !strcmp(cmd, "streams"))
		return status_main(cmd, argc - 1, argv + 1);
	if (!strcmp(cmd, "unload"))
		return unload_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "k8s-dump"))
		return k8s_dump_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") ||
	    !strcmp(cmd, "-h")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "h2lb: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
