// SPDX-License-Identifier: GPL-2.0
/*
 * `h2lb unload`: remove everything h2lb attached and pinned. Asks a
 * running daemon to stop (it cleans up after itself); if the daemon is
 * gone, detaches what it left attached to its cgroup and unpins its maps.
 * Safe to run twice, and when nothing is loaded.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "kern.h"
#include "owner.h"
#include "status.h"

static bool is_h2lb(pid_t pid)
{
	char path[64], comm[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = '\0';
	fclose(f);
	return !strncmp(comm, "h2lb", 4);
}

/* SIGTERM: the daemon drains (its clients' streams end) for up to 10 s;
 * then a second signal, which stops it at once. */
static bool stop_daemon(pid_t pid)
{
	if (!pid || !is_h2lb(pid))
		return false;
	if (kill(pid, SIGTERM))
		return false;
	for (int i = 0; i < 100 && is_h2lb(pid); i++)
		usleep(100 * 1000);
	if (is_h2lb(pid))
		kill(pid, SIGINT);
	for (int i = 0; i < 50 && is_h2lb(pid); i++)
		usleep(100 * 1000);
	return !is_h2lb(pid);
}

struct unload_cli {
	const char *dir;
};

static const struct cli_opt unload_options[] = {
	CLI_PIN_DIR_OPTION(struct unload_cli, dir),
	CLI_END,
};

static const struct cli_cmd unload_cmd = {
	.usage = "[--pin-dir DIR]",
	.doc = "Stop a running daemon, or remove what a killed one left attached\n"
	       "and pinned. Succeeds when nothing is loaded.",
	.opts = unload_options,
};

int unload_main(int argc, char **argv)
{
	struct unload_cli cli = { .dir = H2LB_DEFAULT_PIN_DIR };
	struct h2lb_daemon_stats st = { 0 };
	struct owner_leftovers l;
	struct owner o;
	const char *dir;
	struct stat sb;
	struct kern *k;

	if (cli_parse(&unload_cmd, argc, argv, &cli))
		return 2;
	dir = cli.dir;
	if (geteuid() != 0) {
		cli_err("needs root");
		return 1;
	}
	if (stat(dir, &sb)) {
		printf("h2lb: nothing loaded (%s does not exist)\n", dir);
		return 0;
	}
	k = kern_pinned(dir);
	if (k) {
		kern_read_daemon_stats(k, &st);
		kern_close(k);
	}
	if (stop_daemon(st.pid))
		printf("stopped h2lb daemon (pid %llu)\n",
		       (unsigned long long)st.pid);
	/* Whoever still holds the lock is alive (one that did not stop, one
	 * of another pid namespace, or one that took over meanwhile): what
	 * is pinned is its own. */
	if (owner_lock(&o, dir, 0)) {
		if (errno == EWOULDBLOCK)
			cli_err("%s is in use by a running h2lb (pid %ld, lock %s): stop it first",
				dir, o.holder, o.path);
		else
			cli_err("locking %s: %s", o.path, strerror(errno));
		return 1;
	}
	/* A killed daemon's cgroup, routing rule and nftables table, and
	 * pins (owner.c). Its tc and cgroup links went with it: they are
	 * never pinned. */
	owner_clean(&o, dir, &l);
	if (l.cgroups)
		printf("removed the cgroup of h2lb pid %ld\n", l.pid);
	if (l.steer)
		printf("removed the interception routing rule and nftables table\n");
	if (l.pins)
		printf("unpinned %d maps from %s\n", l.pins, dir);
	owner_unlock(&o);
	return 0;
}
