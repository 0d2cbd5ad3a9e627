// SPDX-License-Identifier: GPL-2.0
/*
 * `h2lb k8s-dump`: run the Kubernetes discovery alone and print every
 * new snapshot as one JSON line on stdout. For operators (what would h2lb
 * balance here?) and for the tests, which drive a fake API server and
 * read these lines.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli.h"
#include "k8s.h"
#include "log.h"

/* k8s-dump's config */
struct dump_cli {
	struct k8s_opts o;
	bool once;
	long timeout_s; /* -1: none */
};

static int set_verbose(const struct cli_opt *opt, const char *arg, void *cfg)
{
	log_verbosity = LOG_DEBUG;
	return 0;
}

static const struct cli_opt dump_options[] = {
	CLI_OPTION("kubeconfig", CLI_STR, struct dump_cli, o.kubeconfig,
		   .short_opt = 'k', .arg = "FILE",
		   .help = "kubeconfig (server, CA, token or client cert)"),
	CLI_OPTION("context", CLI_STR, struct dump_cli, o.context,
		   .arg = "NAME",
		   .help = "kubeconfig context (default: current-context)"),
	CLI_OPTION("namespace", CLI_STR, struct dump_cli, o.ns,
		   .short_opt = 'n', .arg = "NS",
		   .help = "only this namespace (default: all)"),
	CLI_OPTION(
		"node-name", CLI_STR, struct dump_cli, o.node_name,
		.arg = "NAME",
		.help = "read the zone from this Node (default: $NODE_NAME)"),
	CLI_OPTION("node-zone", CLI_STR, struct dump_cli, o.node_zone,
		   .arg = "ZONE", .help = "the node's zone, for zone hints"),
	CLI_OPTION("once", CLI_FLAG, struct dump_cli, once,
		   .help = "exit after the first snapshot"),
	CLI_OPTION("timeout", CLI_UINT, struct dump_cli, timeout_s,
		   .arg = "SECONDS", .min = 1, .max = 86400,
		   .help = "exit 1 if no snapshot came within SECONDS"),
	CLI_FUNC_OPTION("verbose", set_verbose, .short_opt = 'v',
			.help = "debug logging"),
	CLI_END,
};

static const struct cli_cmd dump_cmd = {
	.usage = "[OPTIONS]",
	.doc = "Print the Services h2lb would balance and their endpoints, one JSON\n"
	       "line per change. In a pod without --kubeconfig: the service account.",
	.opts = dump_options,
};

int k8s_dump_main(int argc, char **argv)
{
	struct dump_cli c = { .timeout_s = -1 };
	struct k8s_opts *o = &c.o;
	bool got = false;
	struct pollfd pfd[2];
	struct k8s *k;
	char err[512];
	sigset_t mask;
	int ret = 0;

	if (cli_parse(&dump_cmd, argc, argv, &c))
		return 2;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	pfd[1].fd = signalfd(-1, &mask, SFD_CLOEXEC);
	pfd[1].events = POLLIN;
	k = k8s_start(o, err, sizeof(err));
	if (!k) {
		cli_err("%s", err);
		return 1;
	}
	pfd[0].fd = k8s_fd(k);
	pfd[0].events = POLLIN;
	for (;;) {
		int n = poll(pfd, 2,
			     got || c.timeout_s < 0 ? -1
						    : (int)c.timeout_s * 1000);
		struct k8s_snapshot *s;
		char *line;

		if (n == 0) {
			cli_err("no snapshot within %lds", c.timeout_s);
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
		if (c.once)
			break;
	}
	k8s_stop(k);
	if (pfd[1].fd >= 0)
		close(pfd[1].fd);
	return ret;
}
