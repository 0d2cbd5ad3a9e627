// SPDX-License-Identifier: GPL-2.0
/*
 * Cgroup v2 and bpffs plumbing. `ip netns exec` remounts /sys, hiding
 * the cgroup and bpf mounts (docs/kernel-facts.md K12), so both are mounted
 * here when they are missing.
 */
#include <errno.h>
#include <fcntl.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "cgroup.h"
#include "log.h"

static int find_cgroup2(char *out, size_t len)
{
	FILE *f = setmntent("/proc/self/mounts", "r");
	struct mntent *m;
	int found = -1;

	if (!f)
		return -1;
	while ((m = getmntent(f)))
		if (!strcmp(m->mnt_type, "cgroup2")) {
			snprintf(out, len, "%s", m->mnt_dir);
			found = 0;
			break;
		}
	endmntent(f);
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
	char root[PATH_MAX / 2] = "", rel[PATH_MAX / 4] = "/";
	int err;

	memset(cg, 0, sizeof(*cg));
	cg->fd = -1;
	if (find_cgroup2(root, sizeof(root))) {
		snprintf(root, sizeof(root), "/run/h2lb-cgroup2");
		mkdir(root, 0755);
		if (mount("none", root, "cgroup2", 0, NULL)) {
			pr_err("no cgroup v2 hierarchy and mounting one at %s failed: %s",
			       root, strerror(errno));
			return -1;
		}
		snprintf(cg->mounted, sizeof(cg->mounted), "%s", root);
	}
	if (own_cgroup(rel, sizeof(rel)))
		snprintf(rel, sizeof(rel), "/");
	snprintf(cg->parent, sizeof(cg->parent), "%s%s", root,
		 strcmp(rel, "/") ? rel : "");
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
