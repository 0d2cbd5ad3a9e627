// SPDX-License-Identifier: GPL-2.0
/*
 * The owner of a pin directory (owner.h), and what a dead one left.
 *
 * `h2lb run` takes the lock before anything else, so that of two daemons
 * with one pin directory (a rolling update, a restart while the old one
 * still stops) only one ever attaches or intercepts; the other waits for
 * it, bounded. Whoever gets the lock from a dead owner (SIGKILL, the OOM
 * killer, a failed liveness probe) removes what it left: the daemon, then
 * starts as usual, and `h2lb unload`.
 *
 * The lock file is removed by an owner that leaves cleanly. A waiter may
 * so get the lock of a file no longer there: it takes the lock only once
 * the file it locked is the one at the path.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "kern.h"
#include "log.h"
#include "owner.h"
#include "steer.h"

#define RETRY_MS 100

static long read_pid(int fd)
{
	char buf[32] = "";
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

/* Is @fd the file at @path (not one removed since it was opened)? */
static bool same_file(int fd, const char *path)
{
	struct stat a, b;

	return !fstat(fd, &a) && !stat(path, &b) && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

static void lock_path(struct owner *o, const char *pin_dir)
{
	int n = snprintf(o->path, sizeof(o->path), "%s/", H2LB_LOCK_DIR);

	while (*pin_dir == '/')
		pin_dir++;
	for (; *pin_dir && n < (int)sizeof(o->path) - 6; pin_dir++)
		o->path[n++] = *pin_dir == '/' ? '-' : *pin_dir;
	snprintf(o->path + n, sizeof(o->path) - n, ".lock");
}

int owner_lock(struct owner *o, const char *pin_dir, int wait_s)
{
	uint64_t until = now_ms() + (uint64_t)wait_s * 1000;
	bool said = false;
	char pid[32];
	int n;

	memset(o, 0, sizeof(*o));
	o->fd = -1;
	lock_path(o, pin_dir);
	if (mkdir(H2LB_LOCK_DIR, 0755) && errno != EEXIST)
		return -1;
	for (;;) {
		o->fd = open(o->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (o->fd < 0)
			return -1;
		if (!flock(o->fd, LOCK_EX | LOCK_NB)) {
			if (same_file(o->fd, o->path))
				break;
			close(o->fd); /* removed by its last owner: again */
			continue;
		}
		if (errno != EWOULDBLOCK) {
			close(o->fd);
			o->fd = -1;
			return -1;
		}
		o->holder = read_pid(o->fd);
		close(o->fd);
		o->fd = -1;
		if (now_ms() >= until) {
			errno = EWOULDBLOCK;
			return -1;
		}
		if (!said)
			pr_info("%s is held by h2lb pid %ld: waiting for it to exit (at most %d s)",
				o->path, o->holder, wait_s);
		said = true;
		usleep(RETRY_MS * 1000);
	}
	o->prev_pid = read_pid(o->fd);
	n = snprintf(pid, sizeof(pid), "%d\n", getpid());
	if (ftruncate(o->fd, 0) || pwrite(o->fd, pid, n, 0) != n)
		pr_warn("writing %s: %s", o->path, strerror(errno));
	return 0;
}

void owner_unlock(struct owner *o)
{
	if (o->fd < 0)
		return;
	unlink(o->path);
	close(o->fd);
	o->fd = -1;
}

/* Detach every sockops program from @cg and remove it. */
static int clean_cgroup(const char *cg)
{
	return kern_cgroup_detach_all(cg) && !rmdir(cg);
}

/* Cgroups named @name anywhere under @dir (8 levels: a pod's container
 * cgroup is 4 or 5 deep under the systemd driver): how many removed. */
static int clean_cgroups(const char *dir, const char *name, int depth)
{
	struct dirent *e;
	int n = 0;
	DIR *d;

	if (depth > 8 || !(d = opendir(dir)))
		return 0;
	while ((e = readdir(d))) {
		char path[4096];

		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (!strcmp(e->d_name, name))
			n += clean_cgroup(path);
		else
			n += clean_cgroups(path, name, depth + 1);
	}
	closedir(d);
	return n;
}

void owner_clean(const struct owner *o, const char *pin_dir,
		 struct owner_leftovers *out)
{
	struct h2lb_daemon_stats st = { 0 };
	struct stat sb;
	struct kern *k;
	char name[32];

	memset(out, 0, sizeof(*out));
	if (stat(pin_dir, &sb) && !o->prev_pid)
		return; /* left cleanly, or never there */
	k = kern_pinned(pin_dir);
	if (k) {
		kern_read_daemon_stats(k, &st);
		kern_close(k);
	}
	out->pid = st.pid ? (long)st.pid : o->prev_pid;
	if (out->pid) {
		snprintf(name, sizeof(name), "h2lb-%ld", out->pid);
		out->cgroups = clean_cgroups("/sys/fs/cgroup", name, 0) +
			       clean_cgroups("/run/h2lb-cgroup2", name, 0);
	}
	out->steer = steer_remove();
	out->pins = kern_unpin_all(pin_dir);
}
