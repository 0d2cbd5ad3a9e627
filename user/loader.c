// SPDX-License-Identifier: GPL-2.0
/*
 * Loading, attaching, pinning and removing the BPF side. libbpf 1.1 has
 * no sockmap attach helper, so the parser and verdict are attached to
 * the sockhash with bpf_prog_attach() (DESIGN.md fact 1).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "daemon.h"
#include "h2lb.skel.h"
#include "log.h"

static int libbpf_print(enum libbpf_print_level level, const char *fmt,
			va_list ap)
{
	if (level == LIBBPF_DEBUG && log_verbosity < LOG_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static void *map_mmap(struct bpf_map *map)
{
	size_t len =
		(size_t)bpf_map__value_size(map) * bpf_map__max_entries(map);
	long page = sysconf(_SC_PAGESIZE);
	void *p;

	len = (len + page - 1) / page * page;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
		 bpf_map__fd(map), 0);
	return p == MAP_FAILED ? NULL : p;
}

static int pin_maps(struct daemon *d)
{
	struct bpf_map *map;
	char path[512];

	if (mkdir(d->opts.pin_dir, 0700) && errno != EEXIST) {
		pr_err("mkdir %s: %s", d->opts.pin_dir, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/conns", d->opts.pin_dir);
	if (!access(path, F_OK)) {
		pr_err("%s is in use by another h2lb (stop it, or run 'h2lb unload --pin-dir %s')",
		       d->opts.pin_dir, d->opts.pin_dir);
		return -1;
	}
	d->pinned = true;
	bpf_object__for_each_map(map, d->skel->obj)
	{
		if (!bpf_map__is_internal(map)) {
			snprintf(path, sizeof(path), "%s/%s", d->opts.pin_dir,
				 bpf_map__name(map));
			if (bpf_map__pin(map, path)) {
				pr_err("pinning %s: %s", path, strerror(errno));
				return -1;
			}
		}
	}
	return 0;
}

static void unpin_maps(struct daemon *d)
{
	struct bpf_map *map;

	if (!d->pinned)
		return;
	bpf_object__for_each_map(map, d->skel->obj) if (bpf_map__is_pinned(map))
		bpf_map__unpin(map, NULL);
	if (rmdir(d->opts.pin_dir) && errno != ENOENT)
		pr_warn("rmdir %s: %s", d->opts.pin_dir, strerror(errno));
	d->pinned = false;
}

int bpf_load(struct daemon *d)
{
	struct h2lb_config cfg = {
		.policy = d->opts.policy,
		.max_streams = d->opts.max_streams,
	};
	char name[64];
	struct stat st;
	__u32 zero = 0;
	int err;

	libbpf_set_print(libbpf_print);
	if (bpffs_ensure(d->opts.pin_dir))
		return -1;
	d->skel = h2lb_bpf__open_and_load();
	if (!d->skel) {
		pr_err("loading the BPF programs failed: %s", strerror(errno));
		return -1;
	}
	d->be_mem = map_mmap(d->skel->maps.backends);
	d->pool_mem = map_mmap(d->skel->maps.pool);
	if (!d->be_mem || !d->pool_mem) {
		pr_err("mmap of the backends or pool map: %s", strerror(errno));
		return -1;
	}
	if (bpf_map_update_elem(bpf_map__fd(d->skel->maps.lb_config), &zero,
				&cfg, 0)) {
		pr_err("writing the config map: %s", strerror(errno));
		return -1;
	}
	if (pin_maps(d))
		return -1;

	/* Move into our own child cgroup before making any socket: a socket
	 * belongs to the cgroup of the task that creates it. */
	snprintf(name, sizeof(name), "h2lb-%d", getpid());
	if (cgroup_enter(&d->cg, name))
		return -1;
	if (!stat(d->cg.path, &st)) {
		/* A cgroup v2 id is its directory's inode number. */
		cfg.daemon_cgroup = st.st_ino;
		bpf_map_update_elem(bpf_map__fd(d->skel->maps.lb_config), &zero,
				    &cfg, 0);
	}
	err = bpf_prog_attach(bpf_program__fd(d->skel->progs.h2lb_sockops),
			      d->cg.fd, BPF_CGROUP_SOCK_OPS, 0);
	if (!err)
		err = bpf_prog_attach(
			bpf_program__fd(d->skel->progs.h2lb_parser),
			bpf_map__fd(d->skel->maps.sock_hash),
			BPF_SK_SKB_STREAM_PARSER, 0);
	if (!err)
		err = bpf_prog_attach(
			bpf_program__fd(d->skel->progs.h2lb_verdict),
			bpf_map__fd(d->skel->maps.sock_hash),
			BPF_SK_SKB_STREAM_VERDICT, 0);
	if (err) {
		pr_err("attaching the BPF programs: %s", strerror(errno));
		return -1;
	}
	d->rb = ring_buffer__new(bpf_map__fd(d->skel->maps.events),
				 events_handle, d, NULL);
	if (!d->rb) {
		pr_err("ring buffer: %s", strerror(errno));
		return -1;
	}
	pr_info("BPF programs attached (cgroup %s, maps in %s)", d->cg.path,
		d->opts.pin_dir);
	return 0;
}

void bpf_unload(struct daemon *d)
{
	if (d->rb)
		ring_buffer__free(d->rb);
	d->rb = NULL;
	if (d->skel) {
		if (d->cg.fd >= 0 && d->cg.path[0])
			bpf_prog_detach2(
				bpf_program__fd(d->skel->progs.h2lb_sockops),
				d->cg.fd, BPF_CGROUP_SOCK_OPS);
		bpf_prog_detach2(bpf_program__fd(d->skel->progs.h2lb_verdict),
				 bpf_map__fd(d->skel->maps.sock_hash),
				 BPF_SK_SKB_STREAM_VERDICT);
		bpf_prog_detach2(bpf_program__fd(d->skel->progs.h2lb_parser),
				 bpf_map__fd(d->skel->maps.sock_hash),
				 BPF_SK_SKB_STREAM_PARSER);
		unpin_maps(d);
	}
	cgroup_leave(&d->cg);
	if (d->skel)
		h2lb_bpf__destroy(d->skel);
	d->skel = NULL;
}

int bpf_kconn(struct daemon *d, uint64_t cookie, struct h2lb_conn *out)
{
	return bpf_map_lookup_elem(bpf_map__fd(d->skel->maps.conns), &cookie,
				   out);
}

/* Run syscall program @prog on @ctx: its return value, or -1. */
static int run_syscall(struct bpf_program *prog, void *ctx, size_t len)
{
	LIBBPF_OPTS(bpf_test_run_opts, run, .ctx_in = ctx, .ctx_size_in = len);

	if (bpf_prog_test_run_opts(bpf_program__fd(prog), &run))
		return -1;
	return (int)run.retval;
}

int bpf_close_stream(struct daemon *d, uint64_t client, uint32_t stream,
		     int reset)
{
	struct h2lb_close_args a = { .client = client,
				     .stream = stream,
				     .reset = reset };

	return run_syscall(d->skel->progs.h2lb_close_stream, &a, sizeof(a));
}

int bpf_bind_leg(struct daemon *d, uint64_t client, uint64_t leg,
		 uint32_t backend)
{
	struct h2lb_bind_args a = { .client = client,
				    .leg = leg,
				    .backend = backend };

	return run_syscall(d->skel->progs.h2lb_bind_leg, &a, sizeof(a));
}

int bpf_drain_client(struct daemon *d, uint64_t client)
{
	struct h2lb_drain_args a = { .client = client };

	return run_syscall(d->skel->progs.h2lb_drain_client, &a, sizeof(a));
}

int bpf_set_endpoint(struct daemon *d, const struct sockaddr_in *a,
		     uint32_t role, uint32_t service, bool add)
{
	struct h2lb_endpoint_key k = { .addr = a->sin_addr.s_addr,
				       .port = ntohs(a->sin_port),
				       .remote = role != H2LB_ROLE_CLIENT };
	struct h2lb_endpoint ep = { .role = role, .service = service };
	int fd = bpf_map__fd(d->skel->maps.endpoints);

	if (add)
		return bpf_map_update_elem(fd, &k, &ep, 0);
	return bpf_map_delete_elem(fd, &k);
}

int bpf_new_leg(struct daemon *d, uint64_t cookie, uint32_t backend, bool add)
{
	int fd = bpf_map__fd(d->skel->maps.new_legs);

	if (add)
		return bpf_map_update_elem(fd, &cookie, &backend, 0);
	return bpf_map_delete_elem(fd, &cookie);
}

void bpf_publish_stats(struct daemon *d)
{
	__u32 zero = 0;

	bpf_map_update_elem(bpf_map__fd(d->skel->maps.daemon_stats), &zero,
			    &d->stats, 0);
}
