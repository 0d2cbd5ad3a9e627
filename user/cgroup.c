// SPDX-License-Identifier: GPL-2.0
/*
 * Cgroup v2 and bpffs plumbing. `ip netns exec` remounts /sys, hiding
 * the cgroup and bpf mounts (docs/kernel-facts.md K12), so both are mounted
 * here when they are missing.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/magic.h>

#include "cgroup.h"
#include "log.h"

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
	char *d = s;

	for (; *s; s++, d++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*d = (s[1] - '0') << 6 | (s[2] - '0') << 3 |
			     (s[3] - '0');
			s += 3;
		} else {
			*d = *s;
		}
	}
	*d = '\0';
}

/*
 * The first cgroup2 mount: its mount point @dir, and its root @root as this
 * process's cgroup namespace sees it (mountinfo's root field): "/" when the
 * mount's root is the namespace's root, "/../.." when it is two levels
 * above it (the host's hierarchy seen from a container).
 */
static int find_cgroup2(char *dir, size_t dlen, char *root, size_t rlen)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[2 * PATH_MAX + 256], r[PATH_MAX], m[PATH_MAX], *sep;
	int found = -1;

	if (!f)
		return -1;
	while (found && fgets(line, sizeof(line), f)) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS] - TYPE ... */
		sep = strstr(line, " - ");
		if (!sep || strncmp(sep + 3, "cgroup2 ", 8) ||
		    sscanf(line, "%*s %*s %*s %4095s %4095s", r, m) != 2)
			continue;
		unescape(r);
		unescape(m);
		snprintf(dir, dlen, "%s", m);
		snprintf(root, rlen, "%s", r);
		found = 0;
	}
	fclose(f);
	return found;
}

/* The cgroup (relative to the v2 root) this process is in. */
static int own_cgroup(char *out, size_t len)
{
	FILE *f = fopen("/proc/self/cgroup", "r");
	char line[PATH_MAX];
	int found = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "0::", 3)) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(out, len, "%s", line + 3);
			found = 0;
		}
	fclose(f);
	return found;
}

/*
 * Identity of the cgroup @rel (a path in this process's cgroup namespace):
 * its device and inode (a cgroup v2 id is its directory's inode number).
 * They are read in a child, in a mount namespace of its own, from a cgroup2
 * mount made there over /proc (which is there, even with a read-only root
 * filesystem; not over @dir: cgroup2 on its own root is EBUSY): a cgroup2
 * mount is rooted at the root of the cgroup namespace of whoever mounts it,
 * which the child shares. Plain mount(2) and unshare(2), not fsopen(2):
 * container runtimes' default seccomp profiles grant the former to
 * CAP_SYS_ADMIN, not always the latter.
 */
static int ns_cgroup_stat(const char *rel, struct stat *st)
{
	struct {
		const char *what; /* the call that failed, or NULL */
		int err;
		struct stat st;
	} r = { .what = "pipe" };
	int p[2], status;
	pid_t pid;

	rel += strspn(rel, "/");
	if (pipe2(p, O_CLOEXEC)) {
		r.err = errno;
		goto fail;
	}
	pid = fork();
	if (!pid) {
		/* Only system calls here: the daemon may have threads. */
		r.what = "unshare";
		if (unshare(CLONE_NEWNS))
			goto child_out;
		r.what = "making the mounts private";
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
			goto child_out;
		r.what = "mount cgroup2";
		if (mount("none", "/proc", "cgroup2", 0, NULL))
			goto child_out;
		r.what = "stat";
		if (fstatat(open("/proc", O_RDONLY | O_DIRECTORY), rel, &r.st,
			    AT_EMPTY_PATH))
			goto child_out;
		r.what = NULL;
	child_out:
		r.err = errno;
		if (write(p[1], &r, sizeof(r)) != sizeof(r))
			_exit(1);
		_exit(0);
	}
	r.what = "fork";
	r.err = errno;
	close(p[1]);
	if (pid > 0) {
		if (read(p[0], &r, sizeof(r)) != sizeof(r)) {
			r.what = "reading from the child";
			r.err = EIO;
		}
		waitpid(pid, &status, 0);
	}
	close(p[0]);
	if (!r.what) {
		*st = r.st;
		return 0;
	}
fail:
	pr_err("the id of cgroup /%s of this cgroup namespace: %s: %s", rel,
	       r.what, strerror(r.err));
	return -1;
}

#define CGROUP_WALK_DEPTH 32
#define CGROUP_WALK_DIRS  65536

/* Find the directory with inode @ino below @path (which it extends), at
 * most @depth levels down, reading at most *@budget directories. */
static int find_ino(char *path, size_t len, ino_t ino, int depth, int *budget)
{
	size_t n = strlen(path);
	struct dirent *e;
	int found = -1;
	DIR *d;

	if (depth <= 0 || --*budget < 0 || !(d = opendir(path)))
		return -1;
	while (found && (e = readdir(d))) {
		if (e->d_type != DT_DIR || !strcmp(e->d_name, ".") ||
		    !strcmp(e->d_name, ".."))
			continue;
		if ((size_t)snprintf(path + n, len - n, "/%s", e->d_name) >=
		    len - n)
			continue;
		if (e->d_ino == ino)
			found = 0;
		else
			found = find_ino(path, len, ino, depth - 1, budget);
	}
	closedir(d);
	if (found)
		path[n] = '\0';
	return found;
}

/*
 * Where this process's cgroup @rel (from /proc/self/cgroup, relative to its
 * cgroup namespace's root) is under the cgroup2 mount @dir whose root is
 * @root (mountinfo). Outside containers, and in containers with a cgroup2
 * mount of their own, @root is "/" and the path is @dir@rel. A container
 * with a private cgroup namespace (the default on cgroup v2 nodes) that
 * sees the host's hierarchy (a hostPath mount, deploy/daemonset.yaml) reads
 * "0::/" and @root "/../../..": @dir/ would be the host's root cgroup, out
 * of the pod's. The names between the two are not to be had from inside,
 * so the cgroup is found by identity, its id (inode) looked for in a
 * bounded walk of @dir; the id is read in a mount of the namespace's own
 * (ns_cgroup_stat). Never a guess: not found, it fails.
 */
static int own_cgroup_path(const char *dir, const char *root, const char *rel,
			   char *out, size_t len)
{
	int budget = CGROUP_WALK_DIRS;
	struct stat own, st;

	if (!strcmp(root, "/")) {
		snprintf(out, len, "%s%s", dir, strcmp(rel, "/") ? rel : "");
		return 0;
	}
	if (ns_cgroup_stat(rel, &own))
		return -1;
	snprintf(out, len, "%s", dir);
	if (find_ino(out, len, own.st_ino, CGROUP_WALK_DEPTH, &budget) ||
	    stat(out, &st) || st.st_dev != own.st_dev ||
	    st.st_ino != own.st_ino) {
		pr_err("cgroup %s (of this cgroup namespace) not found under %s, whose root is %s from here",
		       rel, dir, root);
		return -1;
	}
	pr_info("cgroup %s of this cgroup namespace is %s", rel, out);
	return 0;
}

static int write_pid(const char *dir)
{
	char path[PATH_MAX + 16], pid[32];
	int fd, n, ret = 0;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	n = snprintf(pid, sizeof(pid), "%d", getpid());
	if (write(fd, pid, n) != n)
		ret = -errno;
	close(fd);
	return ret;
}

int cgroup_enter(struct h2lb_cgroup *cg, const char *name)
{
	char dir[PATH_MAX / 2] = "", root[PATH_MAX / 2] = "/";
	char rel[PATH_MAX / 4] = "/";
	int err;

	memset(cg, 0, sizeof(*cg));
	cg->fd = -1;
	if (find_cgroup2(dir, sizeof(dir), root, sizeof(root))) {
		/* Rooted at this cgroup namespace's root. */
		snprintf(dir, sizeof(dir), "/run/h2lb-cgroup2");
		snprintf(root, sizeof(root), "/");
		mkdir(dir, 0755);
		if (mount("none", dir, "cgroup2", 0, NULL)) {
			pr_err("no cgroup v2 hierarchy and mounting one at %s failed: %s",
			       dir, strerror(errno));
			return -1;
		}
		snprintf(cg->mounted, sizeof(cg->mounted), "%s", dir);
	}
	if (own_cgroup(rel, sizeof(rel)))
		snprintf(rel, sizeof(rel), "/");
	if (own_cgroup_path(dir, root, rel, cg->parent, sizeof(cg->parent)))
		return -1;
	snprintf(cg->path, sizeof(cg->path), "%s/%s", cg->parent, name);
	if (mkdir(cg->path, 0755) && errno != EEXIST) {
		pr_err("mkdir %s: %s", cg->path, strerror(errno));
		return -1;
	}
	err = write_pid(cg->path);
	if (err) {
		pr_err("moving into %s: %s", cg->path, strerror(-err));
		rmdir(cg->path);
		return -1;
	}
	cg->fd = open(cg->path, O_RDONLY | O_DIRECTORY);
	if (cg->fd < 0) {
		pr_err("open %s: %s", cg->path, strerror(errno));
		cgroup_leave(cg);
		return -1;
	}
	return 0;
}

void cgroup_leave(struct h2lb_cgroup *cg)
{
	if (!cg->path[0])
		return;
	if (cg->fd >= 0)
		close(cg->fd);
	cg->fd = -1;
	if (write_pid(cg->parent))
		pr_warn("could not move back to %s", cg->parent);
	if (rmdir(cg->path) && errno != ENOENT)
		pr_warn("rmdir %s: %s", cg->path, strerror(errno));
	if (cg->mounted[0]) {
		umount2(cg->mounted, MNT_DETACH);
		rmdir(cg->mounted);
	}
	cg->path[0] = '\0';
}

int bpffs_ensure(const char *dir)
{
	struct statfs st;
	char parent[PATH_MAX];
	char *slash;

	snprintf(parent, sizeof(parent), "%s", dir);
	/* The pin directory's parent must be on bpffs (usually /sys/fs/bpf). */
	slash = strrchr(parent, '/');
	if (slash && slash != parent)
		*slash = '\0';
	if (!statfs(parent, &st) && st.f_type == BPF_FS_MAGIC)
		return 0;
	mkdir(parent, 0700);
	if (mount("bpf", parent, "bpf", 0, "mode=0700")) {
		pr_err("mounting bpffs on %s: %s", parent, strerror(errno));
		return -1;
	}
	pr_info("mounted bpffs on %s", parent);
	return 0;
}
