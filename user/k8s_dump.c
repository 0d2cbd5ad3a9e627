// SPDX-License-Identifier: GPL-2.0
/*
 * `h2lb k8s-dump`: run the Kubernetes discovery alone and print every
 * new snapshot as one JSON line on stdout. For operators (what would h2lb
 * balance here?) and for the tests, which drive a fake API server and
 * read these lines.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "k8s.h"
#include "log.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: h2lb k8s-dump [OPTIONS]\n"
		"Print the Services h2lb would balance and their endpoints, one JSON\n"
		"line per change. In a pod without --kubeconfig: the service account.\n"
		"  -k, --kubeconfig FILE   kubeconfig (server, CA, token or client cert)\n"
		"      --context NAME      kubeconfig context (default: current-context)\n"
		"  -n, --namespace NS      only this namespace (default: all)\n"
		"      --node-name NAME    read the zone from this Node (default: $NODE_NAME)\n"
		"      --node-zone ZONE    the node's zone, for zone hints\n"
		"      --once              exit after the first snapshot\n"
		"      --timeout SECONDS   exit 1 if no snapshot came within SECONDS\n"
		"  -v, --verbose           debug logging\n");
}

int k8s_dump_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "kubeconfig", required_argument, NULL, 'k' },
		{ "context", required_argument, NULL, 'c' },
		{ "namespace", required_argument, NULL, 'n' },
		{ "node-name", required_argument, NULL, 'N' },
		{ "node-zone", required_argument, NULL, 'Z' },
		{ "once", no_argument, NULL, '1' },
		{ "timeout", required_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct k8s_opts o = { 0 };
	bool once = false, got = false;
	long timeout_s = -1;
	struct pollfd pfd[2];
	struct k8s *k;
	char err[512], *end;
	sigset_t mask;
	int c, ret = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "k:n:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'k':
			o.kubeconfig = optarg;
			break;
		case 'c':
			o.context = optarg;
			break;
		case 'n':
			o.ns = optarg;
			break;
		case 'N':
			o.node_name = optarg;
			break;
		case 'Z':
			o.node_zone = optarg;
			break;
		case '1':
			once = true;
			break;
		case 't':
			timeout_s = strtol(optarg, &end, 10);
			if (!*optarg || *end || timeout_s < 1 ||
			    timeout_s > 86400) {
				fprintf(stderr,
					"h2lb k8s-dump: --timeout: '%s' is not 1-86400\n",
					optarg);
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
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "h2lb k8s-dump: unexpected argument '%s'\n",
			argv[optind]);
		return 2;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	pfd[1].fd = signalfd(-1, &mask, SFD_CLOEXEC);
	pfd[1].events = POLLIN;
	k = k8s_start(&o, err, sizeof(err));
	if (!k) {
		fprintf(stderr, "h2lb k8s-dump: %s\n", err);
		return 1;
	}
	pfd[0].fd = k8s_fd(k);
	pfd[0].events = POLLIN;
	for (;;) {
		int n = poll(pfd, 2,
			     got || timeout_s < 0 ? -1 : (int)timeout_s * 1000);
		struct k8s_snapshot *s;
		char *line;

		if (n == 0) {
			fprintf(stderr,
				"h2lb k8s-dump: no snapshot within %lds\n",
				timeout_s);
			ret = 1;
			break;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (pfd[1].revents & POLLIN))
			break; /* SIGINT, SIGTERM */
		s = k8s_take(k);
		if (!s)
			continue;
		line = k8s_snapshot_json(s);
		if (line)
			printf("%s\n", line);
		fflush(stdout);
		free(line);
		k8s_snapshot_free(s);
		got = true;
		if (once)
			break;
	}
	k8s_stop(k);
	if (pfd[1].fd >= 0)
		close(pfd[1].fd);
	return ret;
}
