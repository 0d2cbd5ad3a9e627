// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel layer (kern.h): loading, attaching, pinning and removing the
 * BPF side, and every read and write of its maps. libbpf 1.1 has no
 * sockmap attach helper and no tcx, so the parser and verdict are
 * attached with bpf_prog_attach() and the tc program with
 * bpf_link_create() (docs/kernel-facts.md K1).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cgroup.h"
#include "kern.h" /* h2lb.h's types, which the skeleton names */
#include "h2lb.skel.h"
#include "log.h"
#include "loopback.h"

/* libbpf 1.1 predates tcx; the kernel (6.6+) has it. */
#define TCX_INGRESS 46 /* enum bpf_attach_type BPF_TCX_INGRESS */

/* A fast_held_block element is one order-4 allocation (include/h2lb.h). */
_Static_assert(48 + 8 + sizeof(struct h2lb_fast_held_block) + 8 == 65536,
	       "struct h2lb_fast_held_block: a map element of 64 KiB");

/* The maps the readers use, by name: from the skeleton or the pins. */
enum kmap {
	KM_CONNS,
	KM_STREAMS,
	KM_BACKENDS,
	KM_SERVICES,
	KM_COUNTERS,
	KM_DAEMON_STATS,
	KM_LB_CONFIG,
	KM_SVC_NR,
	KM_SVC_BACKENDS,
	KM_MAX,
};

static const char *const kmap_names[KM_MAX] = {
	"conns",	"streams",   "backends", "services",	 "counters",
	"daemon_stats", "lb_config", "svc_nr",	 "svc_backends",
};

struct kern {
	struct h2lb_bpf *skel;	 /* NULL: a view of the pins */
	struct ring_buffer *rb;	 /* events */
	struct ring_buffer *crb; /* closes */
	/* The batch being consumed: callbacks stop the ring at @budget. */
	int done, budget;
	struct h2lb_close_event *close_out;
	struct h2lb_backend *be_mem; /* mmap of the backends map */
	uint64_t *pool_mem;	     /* mmap of the pool map */
	uint64_t *svc_nr_mem;	     /* mmap of svc_nr */
	uint32_t *svc_list_mem;	     /* mmap of svc_backends: pairs */
	struct kern_limits lim;
	struct h2lb_cgroup cg;
	struct bpf_link *cg_links[4]; /* connect4/6, getpeername4/6 */
	struct bpf_link *fast_link; /* client sockops on the clients' cgroup */
	bool fast_msg;		    /* sk_msg attached to fast_hash */
	bool fast_recv;		    /* and the receive verdict */
	bool sink_verdict;	    /* h2lb_sink attached to sink_rx */
	struct h2lb_config cfg;	    /* what lb_config holds */
	int sink_fd[2];		    /* the sink's pair: sending, receiving */
	int fd[KM_MAX];
	char pin_dir[256];
	bool pinned;
	void (*on_event)(void *ctx, const struct h2lb_event *ev, size_t len);
	void *ctx;
};

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

static int pin_maps(struct kern *k)
{
	struct bpf_map *map;
	char path[512];

	if (mkdir(k->pin_dir, 0700) && errno != EEXIST) {
		pr_err("mkdir %s: %s", k->pin_dir, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/conns", k->pin_dir);
	if (!access(path, F_OK)) {
		pr_err("%s is in use by another h2lb (stop it, or run 'h2lb unload --pin-dir %s')",
		       k->pin_dir, k->pin_dir);
		return -1;
	}
	k->pinned = true;
	bpf_object__for_each_map(map, k->skel->obj)
	{
		if (bpf_map__is_internal(map))
			continue;
		snprintf(path, sizeof(path), "%s/%s", k->pin_dir,
			 bpf_map__name(map));
		if (bpf_map__pin(map, path)) {
			pr_err("pinning %s: %s", path, strerror(errno));
			return -1;
		}
	}
	return 0;
}

static void unpin_maps(struct kern *k)
{
	struct bpf_map *map;

	if (!k->pinned)
		return;
	bpf_object__for_each_map(map, k->skel->obj) if (bpf_map__is_pinned(map))
		bpf_map__unpin(map, NULL);
	if (rmdir(k->pin_dir) && errno != ENOENT)
		pr_warn("rmdir %s: %s", k->pin_dir, strerror(errno));
	k->pinned = false;
}

/* A negative return stops ring_buffer__consume() after this sample, whose
 * consumption is kept (libbpf 1.1 has no ring_buffer__consume_n). */
static int on_ring(void *ctx, void *data, size_t len)
{
	struct kern *k = ctx;

	k->on_event(k->ctx, data, len);
	return ++k->done >= k->budget ? -1 : 0;
}

static int on_close_ring(void *ctx, void *data, size_t len)
{
	struct kern *k = ctx;

	if (len >= sizeof(*k->close_out))
		memcpy(&k->close_out[k->done++], data, sizeof(*k->close_out));
	return k->done >= k->budget ? -1 : 0;
}

static struct kern *kern_new(void)
{
	struct kern *k = calloc(1, sizeof(*k));

	if (!k)
		return NULL;
	k->cg.fd = -1;
	k->sink_fd[0] = k->sink_fd[1] = -1;
	for (int i = 0; i < KM_MAX; i++)
		k->fd[i] = -1;
	return k;
}

/* The smallest power of 2 that is at least @n (and at least a page). */
static uint32_t pow2_at_least(uint64_t n)
{
	uint64_t v = 4096;

	while (v < n && v < (1ull << 31))
		v <<= 1;
	return (uint32_t)v;
}

/* fast_held_block's entries for @conns connections (size_maps). */
static uint64_t held_blocks(uint64_t conns)
{
	return conns / 64 > 16 ? conns / 64 : 16;
}

/*
 * Every map's size from the flags, before the skeleton loads (a map's
 * size is fixed once it exists). The programs take the sizes that bound
 * their loops from .rodata (settings.max_backends, svc_backends).
 */
static int size_maps(struct kern *k, const struct kern_opts *o)
{
	const struct kern_limits *l = &o->limits;
	struct h2lb_bpf *s = k->skel;
	uint64_t legs = (uint64_t)l->backends * o->pool_size;
	const struct {
		struct bpf_map *map;
		uint64_t n;
	} sizes[] = {
		{ s->maps.sock_hash, l->conns },
		{ s->maps.conns, l->conns },
		{ s->maps.legs, l->conns },
		{ s->maps.addr_streams, l->conns },
		{ s->maps.leg_addrs, l->conns },
		/* One entry when the fast path is off: the LRU hash is
		 * allocated whole (12.5 MiB for 65,536, the sockhash 1 MiB) */
		{ s->maps.fast_hash, o->fast_path ? l->conns : 1 },
		{ s->maps.fast_pairs, o->fast_path ? l->conns : 1 },
		/* (allocated as used: a frame a client left unfinished) */
		{ s->maps.fast_held, o->fast_path ? l->conns : 1 },
		/* Header blocks waiting for their next write, node-wide:
		 * 64 KiB each, so at most 1/64 of the connections hold one
		 * at once (64 MiB at the default --max-conns); past that a
		 * block in pieces fails its connection (hardening.md). */
		{ s->maps.fast_held_block,
		  o->fast_path ? held_blocks(l->conns) : 1 },
		{ s->maps.streams, l->streams },
		{ s->maps.closed, l->streams },
		{ s->maps.backends, l->backends },
		{ s->maps.pool, (uint64_t)l->backends * H2LB_POOL_SLOTS },
		{ s->maps.new_legs, legs < l->conns ? legs : l->conns },
		{ s->maps.services, l->services },
		{ s->maps.vips, l->services },
		{ s->maps.frontends, l->services },
		{ s->maps.endpoints, 2ull * l->services + 16 },
		{ s->maps.svc_nr, l->services },
		{ s->maps.svc_backends,
		  ((uint64_t)l->services * l->svc_backends + 1) / 2 },
		/* Two closes of every connection, 24 bytes each with the
		 * ring's header (include/h2lb.h). */
		{ s->maps.closes, pow2_at_least(48ull * l->conns) },
	};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		if (!sizes[i].n || sizes[i].n > UINT32_MAX ||
		    bpf_map__set_max_entries(sizes[i].map, sizes[i].n)) {
			pr_err("sizing map %s to %llu entries failed",
			       bpf_map__name(sizes[i].map),
			       (unsigned long long)sizes[i].n);
			return -1;
		}
	}
	k->skel->rodata->settings.max_backends = l->backends;
	k->skel->rodata->settings.svc_backends = l->svc_backends;
	k->lim = *l;
	return 0;
}

static int attach(struct kern *k)
{
	struct h2lb_bpf *s = k->skel;
	int hash = bpf_map__fd(s->maps.sock_hash);

	if (bpf_prog_attach(bpf_program__fd(s->progs.h2lb_sockops), k->cg.fd,
			    BPF_CGROUP_SOCK_OPS, 0) ||
	    bpf_prog_attach(bpf_program__fd(s->progs.h2lb_parser), hash,
			    BPF_SK_SKB_STREAM_PARSER, 0) ||
	    bpf_prog_attach(bpf_program__fd(s->progs.h2lb_verdict), hash,
			    BPF_SK_SKB_STREAM_VERDICT, 0)) {
		pr_err("attaching the BPF programs: %s", strerror(errno));
		return -1;
	}
	return 0;
}

struct kern *kern_load(const struct kern_opts *o)
{
	struct kern *k = kern_new();
	struct h2lb_config cfg = { 0 };
	char name[64];
	struct stat st;
	__u32 zero = 0;

	if (!k)
		return NULL;
	snprintf(k->pin_dir, sizeof(k->pin_dir), "%s", o->pin_dir);
	k->on_event = o->on_event;
	k->ctx = o->ctx;
	libbpf_set_print(libbpf_print);
	if (bpffs_ensure(k->pin_dir))
		goto fail;
	/* Into our own child cgroup before making any socket (a socket
	 * belongs to the cgroup of the task that creates it), and before
	 * loading: its id is a load-time setting. */
	snprintf(name, sizeof(name), "h2lb-%d", getpid());
	if (cgroup_enter(&k->cg, name))
		goto fail;
	k->skel = h2lb_bpf__open();
	if (!k->skel) {
		pr_err("opening the BPF object failed: %s", strerror(errno));
		goto fail;
	}
	k->skel->rodata->settings = o->settings;
	/* Both directions of the fast path; the request direction can be
	 * left out, to measure what it brings (tests/bench). */
	k->skel->rodata->settings.fast_tx =
		o->fast_path && !getenv("H2LB_TEST_NO_FAST_TX");
	/* A cgroup v2 id is its directory's inode number. */
	if (!stat(k->cg.path, &st))
		k->skel->rodata->settings.daemon_cgroup = st.st_ino;
	if (size_maps(k, o))
		goto fail;
	/* The fast path's programs are loaded only when it is on: their
	 * verification is most of a start (here, a daemon served 0.4 s
	 * after it started without them, 1.2 s with them), and a
	 * restarted daemon's clients wait through it. */
	if (!o->fast_path) {
		bpf_program__set_autoload(k->skel->progs.h2lb_client_msg,
					  false);
		bpf_program__set_autoload(k->skel->progs.h2lb_client_recv,
					  false);
		bpf_program__set_autoload(k->skel->progs.h2lb_client_sockops,
					  false);
		bpf_program__set_autoload(k->skel->progs.h2lb_sink, false);
	}
	/* For tests alone: a closes ring too small to hold every close (a
	 * power of 2, from 4096 bytes), so that the closes it loses must be
	 * found by the reconciliation (test_h2lb_lost_events). */
	if (getenv("H2LB_TEST_CLOSES_RING"))
		bpf_map__set_max_entries(
			k->skel->maps.closes,
			strtoul(getenv("H2LB_TEST_CLOSES_RING"), NULL, 0));
	if (h2lb_bpf__load(k->skel)) {
		pr_err("loading the BPF programs failed: %s", strerror(errno));
		goto fail;
	}
	k->be_mem = map_mmap(k->skel->maps.backends);
	k->pool_mem = map_mmap(k->skel->maps.pool);
	k->svc_nr_mem = map_mmap(k->skel->maps.svc_nr);
	k->svc_list_mem = map_mmap(k->skel->maps.svc_backends);
	if (!k->be_mem || !k->pool_mem || !k->svc_nr_mem || !k->svc_list_mem) {
		pr_err("mmap of the backends, pool or Service list maps: %s",
		       strerror(errno));
		goto fail;
	}
	k->fd[KM_CONNS] = bpf_map__fd(k->skel->maps.conns);
	k->fd[KM_STREAMS] = bpf_map__fd(k->skel->maps.streams);
	k->fd[KM_BACKENDS] = bpf_map__fd(k->skel->maps.backends);
	k->fd[KM_SERVICES] = bpf_map__fd(k->skel->maps.services);
	k->fd[KM_COUNTERS] = bpf_map__fd(k->skel->maps.counters);
	k->fd[KM_DAEMON_STATS] = bpf_map__fd(k->skel->maps.daemon_stats);
	k->fd[KM_LB_CONFIG] = bpf_map__fd(k->skel->maps.lb_config);
	k->fd[KM_SVC_NR] = bpf_map__fd(k->skel->maps.svc_nr);
	k->fd[KM_SVC_BACKENDS] = bpf_map__fd(k->skel->maps.svc_backends);
	if (bpf_map_update_elem(k->fd[KM_LB_CONFIG], &zero, &cfg, 0)) {
		pr_err("writing the config map: %s", strerror(errno));
		goto fail;
	}
	if (pin_maps(k) || attach(k))
		goto fail;
	k->rb = ring_buffer__new(bpf_map__fd(k->skel->maps.events), on_ring, k,
				 NULL);
	k->crb = ring_buffer__new(bpf_map__fd(k->skel->maps.closes),
				  on_close_ring, k, NULL);
	if (!k->rb || !k->crb) {
		pr_err("ring buffer: %s", strerror(errno));
		goto fail;
	}
	pr_info("BPF programs attached (cgroup %s, maps in %s)", k->cg.path,
		k->pin_dir);
	return k;
fail:
	kern_close(k);
	return NULL;
}

void kern_close(struct kern *k)
{
	struct h2lb_bpf *s;

	if (!k)
		return;
	s = k->skel;
	if (k->rb)
		ring_buffer__free(k->rb);
	if (k->crb)
		ring_buffer__free(k->crb);
	for (int i = 0; i < 4; i++)
		bpf_link__destroy(k->cg_links[i]);
	bpf_link__destroy(k->fast_link);
	if (s) {
		if (k->fast_msg)
			bpf_prog_detach2(
				bpf_program__fd(s->progs.h2lb_client_msg),
				bpf_map__fd(s->maps.fast_hash),
				BPF_SK_MSG_VERDICT);
		if (k->fast_recv)
			bpf_prog_detach2(
				bpf_program__fd(s->progs.h2lb_client_recv),
				bpf_map__fd(s->maps.fast_hash),
				BPF_SK_SKB_STREAM_VERDICT);
		if (k->sink_verdict)
			bpf_prog_detach2(bpf_program__fd(s->progs.h2lb_sink),
					 bpf_map__fd(s->maps.sink_rx),
					 BPF_SK_SKB_STREAM_VERDICT);
		if (k->cg.fd >= 0)
			bpf_prog_detach2(bpf_program__fd(s->progs.h2lb_sockops),
					 k->cg.fd, BPF_CGROUP_SOCK_OPS);
		bpf_prog_detach2(bpf_program__fd(s->progs.h2lb_verdict),
				 bpf_map__fd(s->maps.sock_hash),
				 BPF_SK_SKB_STREAM_VERDICT);
		bpf_prog_detach2(bpf_program__fd(s->progs.h2lb_parser),
				 bpf_map__fd(s->maps.sock_hash),
				 BPF_SK_SKB_STREAM_PARSER);
		unpin_maps(k);
	} else {
		for (int i = 0; i < KM_MAX; i++)
			if (k->fd[i] >= 0)
				close(k->fd[i]);
	}
	for (int i = 0; i < 2; i++)
		if (k->sink_fd[i] >= 0)
			close(k->sink_fd[i]);
	cgroup_leave(&k->cg);
	if (s)
		h2lb_bpf__destroy(s);
	free(k);
}

int kern_events_fd(struct kern *k)
{
	return ring_buffer__epoll_fd(k->rb);
}

int kern_events_poll(struct kern *k, int max)
{
	k->done = 0;
	k->budget = max;
	ring_buffer__consume(k->rb);
	return k->done;
}

int kern_closes_fd(struct kern *k)
{
	return ring_buffer__epoll_fd(k->crb);
}

int kern_closes_take(struct kern *k, struct h2lb_close_event *out, int max)
{
	k->done = 0;
	k->budget = max;
	k->close_out = out;
	ring_buffer__consume(k->crb);
	return k->done;
}

/* ---- sockets ------------------------------------------------------- */

int kern_endpoint_set(struct kern *k, const struct sockaddr_in *a,
		      uint32_t role, uint32_t service, bool add)
{
	struct h2lb_endpoint_key key = { .addr = a->sin_addr.s_addr,
					 .port = ntohs(a->sin_port),
					 .remote = role != H2LB_ROLE_CLIENT };
	struct h2lb_endpoint ep = { .role = role, .service = service };
	int fd = bpf_map__fd(k->skel->maps.endpoints);

	if (add)
		return bpf_map_update_elem(fd, &key, &ep, 0);
	return bpf_map_delete_elem(fd, &key);
}

int kern_client_attach(struct kern *k, uint64_t cookie, int fd)
{
	uint64_t v = fd;

	return bpf_map_update_elem(bpf_map__fd(k->skel->maps.sock_hash),
				   &cookie, &v, BPF_NOEXIST);
}

int kern_leg_expect(struct kern *k, uint64_t cookie, uint32_t backend)
{
	return bpf_map_update_elem(bpf_map__fd(k->skel->maps.new_legs), &cookie,
				   &backend, 0);
}

void kern_leg_unexpect(struct kern *k, uint64_t cookie)
{
	bpf_map_delete_elem(bpf_map__fd(k->skel->maps.new_legs), &cookie);
}

int kern_conn(struct kern *k, uint64_t cookie, struct h2lb_conn *out)
{
	return bpf_map_lookup_elem(k->fd[KM_CONNS], &cookie, out);
}

void kern_conn_forget(struct kern *k, uint64_t cookie)
{
	struct h2lb_conn_args a = { .cookie = cookie, .set = H2LB_FORGET };

	/* Its share of the node's queued bytes first (bpf/budget.h). */
	kern_conn_set(k, &a);
	bpf_map_delete_elem(k->fd[KM_CONNS], &cookie);
}

int kern_conn_take_window(struct kern *k, uint64_t cookie, uint64_t *inc)
{
	struct h2lb_conn_args a = { .cookie = cookie, .set = H2LB_TAKE_WINDOW };

	if (kern_conn_set(k, &a))
		return -1;
	*inc = a.value;
	return 0;
}

int kern_conn_set_wake(struct kern *k, uint64_t cookie, uint32_t set,
		       uint64_t mark)
{
	struct h2lb_conn_args a = { .cookie = cookie,
				    .value = mark,
				    .set = set };

	return kern_conn_set(k, &a);
}

int kern_conn_set_queued(struct kern *k, uint64_t cookie, uint64_t queued,
			 uint64_t backlog)
{
	struct h2lb_conn_args a = { .cookie = cookie,
				    .value = queued,
				    .backlog = backlog,
				    .set = H2LB_SET_QUEUED };

	return kern_conn_set(k, &a);
}

int64_t kern_node_queued(struct kern *k)
{
	return (int64_t)__atomic_load_n(&k->skel->bss->node_queued,
					__ATOMIC_RELAXED);
}

/* ---- legs and streams ---------------------------------------------- */

/* Run syscall program @prog on @ctx (which it may write back): its return
 * value, or -1. */
static int run_syscall(struct bpf_program *prog, void *ctx, size_t len)
{
	LIBBPF_OPTS(bpf_test_run_opts, run, .ctx_in = ctx, .ctx_size_in = len);

	if (bpf_prog_test_run_opts(bpf_program__fd(prog), &run))
		return -1;
	return (int)run.retval;
}

int kern_leg_bind_first(struct kern *k, uint64_t client, uint64_t *leg,
			uint32_t *backend)
{
	struct h2lb_bind_args a = { .client = client };

	if (run_syscall(k->skel->progs.h2lb_bind_first, &a, sizeof(a)) ||
	    !a.leg)
		return -1;
	*leg = a.leg;
	*backend = a.backend;
	return 0;
}

void kern_bridge_port_set(struct kern *k, int ifindex, const unsigned char *mac)
{
	int fd = bpf_map__fd(k->skel->maps.bridge_ports);
	struct h2lb_bridge_port p = { 0 };
	uint32_t key = ifindex;

	if (!mac) {
		bpf_map_delete_elem(fd, &key);
		return;
	}
	memcpy(p.mac, mac, sizeof(p.mac));
	bpf_map_update_elem(fd, &key, &p, BPF_ANY);
}

void kern_leg_addr_add(struct kern *k, uint32_t addr, int delta)
{
	int fd = bpf_map__fd(k->skel->maps.leg_addrs);
	uint32_t n = 0;

	bpf_map_lookup_elem(fd, &addr, &n);
	n += delta;
	if ((int32_t)n > 0)
		bpf_map_update_elem(fd, &addr, &n, BPF_ANY);
	else
		bpf_map_delete_elem(fd, &addr);
}

int kern_leg_bind(struct kern *k, uint64_t client, uint64_t leg,
		  uint32_t backend)
{
	struct h2lb_bind_args a = { .client = client,
				    .leg = leg,
				    .backend = backend };

	return run_syscall(k->skel->progs.h2lb_bind_leg, &a, sizeof(a)) ? -1
									: 0;
}

int kern_raw_pick(struct kern *k, uint64_t client, uint32_t *backend)
{
	struct h2lb_raw_args a = { .client = client };

	if (run_syscall(k->skel->progs.h2lb_raw_pick, &a, sizeof(a)))
		return -1;
	*backend = a.backend;
	return 0;
}

int kern_raw_join(struct kern *k, uint64_t client, uint64_t leg)
{
	struct h2lb_raw_args a = { .client = client, .leg = leg };

	return run_syscall(k->skel->progs.h2lb_raw_join, &a, sizeof(a)) ? -1
									: 0;
}

void kern_leg_unbind(struct kern *k, uint64_t client, uint32_t backend,
		     uint64_t leg)
{
	struct h2lb_leg_key lk = { .client = client, .backend = backend };
	int fd = bpf_map__fd(k->skel->maps.legs);
	uint64_t cur;

	if (!bpf_map_lookup_elem(fd, &lk, &cur) && cur == leg)
		bpf_map_delete_elem(fd, &lk);
}

int kern_stream_close(struct kern *k, uint64_t client, uint32_t stream)
{
	struct h2lb_close_args a = { .client = client,
				     .stream = stream,
				     .how = H2LB_CLOSED_RESET };

	return run_syscall(k->skel->progs.h2lb_close_stream, &a, sizeof(a)) ? -1
									    : 0;
}

int kern_conn_set(struct kern *k, struct h2lb_conn_args *a)
{
	return run_syscall(k->skel->progs.h2lb_conn_set, a, sizeof(*a)) ? -1
									: 0;
}

int kern_settings_sent(struct kern *k, uint64_t cookie, bool wait)
{
	struct h2lb_conn_args a = {
		.cookie = cookie,
		.set = H2LB_SET_SETTINGS_SENT |
		       (wait ? H2LB_SET_SETTINGS_WAIT : 0),
	};

	return kern_conn_set(k, &a);
}

int kern_resp_window(struct kern *k, uint64_t cookie, uint32_t w)
{
	struct h2lb_conn_args a = {
		.cookie = cookie,
		.resp_window = w,
		.set = H2LB_SET_RESP_WINDOW,
	};

	return kern_conn_set(k, &a);
}

int kern_client_goaway(struct kern *k, uint64_t client)
{
	struct h2lb_goaway_args a = { .client = client };

	return run_syscall(k->skel->progs.h2lb_goaway_client, &a, sizeof(a));
}

/* ---- backends and their pools (mmapped) ---------------------------- */

void kern_backend_define(struct kern *k, int b, const struct sockaddr_in *a,
			 uint32_t service)
{
	k->be_mem[b].service = service;
	k->be_mem[b].addr = a->sin_addr.s_addr;
	k->be_mem[b].port = ntohs(a->sin_port);
	/* Until its SETTINGS say otherwise (RFC 9113 6.5.2). */
	k->be_mem[b].init_window = 65535;
	k->be_mem[b].tcp_down = 0;
}

void kern_backend_set_tcp_down(struct kern *k, int b, bool down)
{
	__atomic_store_n(&k->be_mem[b].tcp_down, down, __ATOMIC_RELEASE);
}

void kern_backend_set_window(struct kern *k, int b, uint32_t window)
{
	__atomic_store_n(&k->be_mem[b].init_window, window, __ATOMIC_RELEASE);
}

uint32_t kern_backend_window(struct kern *k, int b)
{
	return __atomic_load_n(&k->be_mem[b].init_window, __ATOMIC_ACQUIRE);
}

void kern_backend_set_state(struct kern *k, int b, uint32_t state)
{
	__atomic_store_n(&k->be_mem[b].state, state, __ATOMIC_RELEASE);
}

uint32_t kern_backend_state(struct kern *k, int b)
{
	return __atomic_load_n(&k->be_mem[b].state, __ATOMIC_ACQUIRE);
}

uint32_t kern_backend_open_streams(struct kern *k, int b)
{
	return __atomic_load_n(&k->be_mem[b].open_streams, __ATOMIC_ACQUIRE);
}

void kern_backends_in_use(struct kern *k, int nr)
{
	__u32 zero = 0;

	k->cfg.nr_backends = nr;
	bpf_map_update_elem(k->fd[KM_LB_CONFIG], &zero, &k->cfg, 0);
}

int kern_fast_close(struct kern *k, bool closed)
{
	__u32 zero = 0;

	k->cfg.fast_closed = closed;
	return bpf_map_update_elem(k->fd[KM_LB_CONFIG], &zero, &k->cfg, 0);
}

static uint64_t *pool_slot(struct kern *k, int b, int i)
{
	return &k->pool_mem[b * H2LB_POOL_SLOTS + i];
}

uint64_t kern_pool_slot(struct kern *k, int b, int i)
{
	return __atomic_load_n(pool_slot(k, b, i), __ATOMIC_ACQUIRE);
}

/* Only the daemon fills slots, so a slot seen empty stays empty until
 * the store; the verdict empties them with an atomic exchange. */
bool kern_pool_put(struct kern *k, int b, uint64_t cookie)
{
	for (int i = 0; i < H2LB_POOL_SLOTS; i++) {
		if (kern_pool_slot(k, b, i))
			continue;
		__atomic_store_n(pool_slot(k, b, i), cookie, __ATOMIC_RELEASE);
		return true;
	}
	return false;
}

bool kern_pool_remove(struct kern *k, int b, uint64_t cookie)
{
	for (int i = 0; i < H2LB_POOL_SLOTS; i++) {
		uint64_t expect = cookie;

		if (__atomic_compare_exchange_n(pool_slot(k, b, i), &expect, 0,
						false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			return true;
	}
	return false;
}

/* ---- each Service's list of backends (mmapped) ---------------------- */

static uint32_t *svc_slot(struct kern *k, int svc, uint32_t j)
{
	return &k->svc_list_mem[(size_t)svc * k->lim.svc_backends + j];
}

uint32_t kern_svc_nr(struct kern *k, int svc)
{
	return (uint32_t)__atomic_load_n(&k->svc_nr_mem[svc], __ATOMIC_ACQUIRE);
}

int kern_svc_at(struct kern *k, int svc, uint32_t j)
{
	return (int)__atomic_load_n(svc_slot(k, svc, j), __ATOMIC_ACQUIRE);
}

/* The index before the count: a pick that sees the new count sees it. */
void kern_svc_add(struct kern *k, int svc, int b)
{
	uint32_t n = kern_svc_nr(k, svc);

	if (n >= k->lim.svc_backends)
		return;
	__atomic_store_n(svc_slot(k, svc, n), (uint32_t)b, __ATOMIC_RELEASE);
	__atomic_store_n(&k->svc_nr_mem[svc], (uint64_t)n + 1,
			 __ATOMIC_RELEASE);
}

/* The last index takes @b's place, then the count shrinks: a pick in
 * between sees the last one twice, never a hole. */
void kern_svc_remove(struct kern *k, int svc, int b)
{
	uint32_t n = kern_svc_nr(k, svc);

	for (uint32_t j = 0; j < n; j++) {
		if (kern_svc_at(k, svc, j) != b)
			continue;
		__atomic_store_n(svc_slot(k, svc, j),
				 (uint32_t)kern_svc_at(k, svc, n - 1),
				 __ATOMIC_RELEASE);
		__atomic_store_n(&k->svc_nr_mem[svc], (uint64_t)n - 1,
				 __ATOMIC_RELEASE);
		return;
	}
}

/* ---- Services and their VIPs ---------------------------------------- */

void kern_service_publish(struct kern *k, int i, const struct h2lb_service *s)
{
	__u32 key = i;

	bpf_map_update_elem(k->fd[KM_SERVICES], &key, s, 0);
}

static struct h2lb_vip_key vip_key(const struct sockaddr_in *a)
{
	return (struct h2lb_vip_key){ .addr = a->sin_addr.s_addr,
				      .port = ntohs(a->sin_port) };
}

void kern_vip_add(struct kern *k, const struct sockaddr_in *vip,
		  const struct sockaddr_in *listen, uint32_t service)
{
	struct h2lb_vip_key vk = vip_key(vip), fk = vip_key(listen);
	struct h2lb_vip v = { .listen_addr = fk.addr,
			      .listen_port = fk.port,
			      .service = service };
	struct h2lb_frontend fe = { .vip = vk.addr, .port = vk.port };

	bpf_map_update_elem(bpf_map__fd(k->skel->maps.frontends), &fk, &fe, 0);
	bpf_map_update_elem(bpf_map__fd(k->skel->maps.vips), &vk, &v, 0);
}

void kern_vip_remove(struct kern *k, const struct sockaddr_in *vip,
		     const struct sockaddr_in *listen)
{
	struct h2lb_vip_key vk = vip_key(vip), fk = vip_key(listen);

	bpf_map_delete_elem(bpf_map__fd(k->skel->maps.vips), &vk);
	bpf_map_delete_elem(bpf_map__fd(k->skel->maps.frontends), &fk);
}

void kern_vip_no_new(struct kern *k, const struct sockaddr_in *vip)
{
	struct h2lb_vip_key vk = vip_key(vip);
	int fd = bpf_map__fd(k->skel->maps.vips);
	struct h2lb_vip v;

	if (bpf_map_lookup_elem(fd, &vk, &v))
		return;
	v.flags |= H2LB_VIP_NO_NEW;
	bpf_map_update_elem(fd, &vk, &v, 0);
}

/* ---- interception programs ----------------------------------------- */

int kern_tc_attach(struct kern *k, int ifindex)
{
	return bpf_link_create(bpf_program__fd(k->skel->progs.h2lb_tc_ingress),
			       ifindex, TCX_INGRESS, NULL);
}

int kern_cgroup_intercept_attach(struct kern *k, int cg_fd, const char *path)
{
	struct bpf_program *progs[] = {
		k->skel->progs.h2lb_connect4,
		k->skel->progs.h2lb_connect6,
		k->skel->progs.h2lb_getpeername4,
		k->skel->progs.h2lb_getpeername6,
	};

	for (int i = 0; i < 4; i++) {
		k->cg_links[i] = bpf_program__attach_cgroup(progs[i], cg_fd);
		if (!k->cg_links[i]) {
			pr_err("intercept: attaching %s to cgroup %s: %s",
			       bpf_program__name(progs[i]), path,
			       strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* ---- the fast path (docs/fast-path.md) ------------------------------ */

/*
 * The sink (docs/fast-path.md, "The request direction"): a loopback pair
 * whose sending end is fast_hash's H2LB_SINK_KEY, where the client
 * programs send the frames the rules consume, and whose receiving end
 * drops all it gets (h2lb_sink, a stream verdict without parser). The
 * daemon writes nothing there; the pair lives as long as it does.
 */
static int fast_sink_open(struct kern *k)
{
	struct h2lb_bpf *s = k->skel;
	int one = 1, sndbuf = 4 << 20;
	uint64_t key = H2LB_SINK_KEY, fd;
	uint32_t zero = 0;

	if (bpf_prog_attach(bpf_program__fd(s->progs.h2lb_sink),
			    bpf_map__fd(s->maps.sink_rx),
			    BPF_SK_SKB_STREAM_VERDICT, 0)) {
		pr_err("fast path: attaching the sink's verdict: %s",
		       strerror(errno));
		return -1;
	}
	k->sink_verdict = true;
	if (loopback_pair(k->sink_fd, NULL, NULL))
		goto fail;
	setsockopt(k->sink_fd[0], SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf,
		   sizeof(sndbuf));
	setsockopt(k->sink_fd[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fd = k->sink_fd[1];
	if (bpf_map_update_elem(bpf_map__fd(s->maps.sink_rx), &zero, &fd,
				BPF_ANY))
		goto fail;
	fd = k->sink_fd[0];
	if (bpf_map_update_elem(bpf_map__fd(s->maps.fast_hash), &key, &fd,
				BPF_ANY))
		goto fail;
	return 0;
fail:
	pr_err("fast path: the sink: %s", strerror(errno));
	return -1;
}

int kern_fast_attach(struct kern *k, int cg_fd, const char *path)
{
	struct h2lb_bpf *s = k->skel;

	if (bpf_prog_attach(bpf_program__fd(s->progs.h2lb_client_msg),
			    bpf_map__fd(s->maps.fast_hash), BPF_SK_MSG_VERDICT,
			    0)) {
		pr_err("fast path: attaching the sk_msg program: %s",
		       strerror(errno));
		return -1;
	}
	k->fast_msg = true;
	/* A stream verdict with no parser: each skb as it comes. */
	if (bpf_prog_attach(bpf_program__fd(s->progs.h2lb_client_recv),
			    bpf_map__fd(s->maps.fast_hash),
			    BPF_SK_SKB_STREAM_VERDICT, 0)) {
		pr_err("fast path: attaching the receive verdict: %s",
		       strerror(errno));
		return -1;
	}
	k->fast_recv = true;
	if (fast_sink_open(k))
		return -1;
	k->fast_link =
		bpf_program__attach_cgroup(s->progs.h2lb_client_sockops, cg_fd);
	if (!k->fast_link) {
		pr_err("fast path: attaching sockops to cgroup %s: %s", path,
		       strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- the daemon's own numbers ---------------------------------------- */

void kern_daemon_stats_publish(struct kern *k,
			       const struct h2lb_daemon_stats *st)
{
	__u32 zero = 0;

	bpf_map_update_elem(k->fd[KM_DAEMON_STATS], &zero, st, 0);
}

/* ---- readers ----------------------------------------------------------- */

/* A map's max_entries, or 0 (no map). */
static uint32_t map_entries(int fd)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);

	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len))
		return 0;
	return info.max_entries;
}

const struct kern_limits *kern_limits(const struct kern *k)
{
	return &k->lim;
}

struct kern *kern_pinned(const char *dir)
{
	struct kern *k = kern_new();
	char path[512];

	if (!k)
		return NULL;
	snprintf(k->pin_dir, sizeof(k->pin_dir), "%s", dir);
	/* Without "conns" nothing is loaded; a map missing otherwise (a
	 * daemon that died while pinning) fails only its readers. */
	for (int i = 0; i < KM_MAX; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, kmap_names[i]);
		k->fd[i] = bpf_obj_get(path);
		if (k->fd[i] < 0 && i == KM_CONNS) {
			int err = errno;

			kern_close(k);
			errno = err;
			return NULL;
		}
	}
	k->lim.conns = map_entries(k->fd[KM_CONNS]);
	k->lim.streams = map_entries(k->fd[KM_STREAMS]);
	k->lim.backends = map_entries(k->fd[KM_BACKENDS]);
	k->lim.services = map_entries(k->fd[KM_SERVICES]);
	if (k->lim.services) /* two indexes an entry */
		k->lim.svc_backends = 2 * map_entries(k->fd[KM_SVC_BACKENDS]) /
				      k->lim.services;
	return k;
}

void kern_pinned_error(const char *dir, int err, char *buf, size_t len)
{
	if (err == ENOENT)
		snprintf(
			buf, len,
			"nothing loaded: %s/conns does not exist (is 'h2lb run' running? see --pin-dir)",
			dir);
	else if (err == EPERM || err == EACCES)
		snprintf(buf, len, "%s: permission denied (run as root)", dir);
	else
		snprintf(buf, len, "%s: %s", dir, strerror(err));
}

int kern_read_backends(struct kern *k, struct h2lb_backend *out, int *n)
{
	struct h2lb_config cfg = { 0 };
	__u32 zero = 0;

	*n = 0;
	if (bpf_map_lookup_elem(k->fd[KM_LB_CONFIG], &zero, &cfg))
		return -1;
	for (__u32 i = 0; i < cfg.nr_backends && i < k->lim.backends &&
			  i < H2LB_MAX_BACKENDS;
	     i++)
		if (!bpf_map_lookup_elem(k->fd[KM_BACKENDS], &i, &out[*n]))
			(*n)++;
	return 0;
}

int kern_read_services(struct kern *k, struct h2lb_service *out)
{
	memset(out, 0, sizeof(*out) * H2LB_MAX_SERVICES);
	for (__u32 i = 0; i < k->lim.services && i < H2LB_MAX_SERVICES; i++)
		bpf_map_lookup_elem(k->fd[KM_SERVICES], &i, &out[i]);
	return 0;
}

int kern_read_svc_nr(struct kern *k, uint32_t *out)
{
	memset(out, 0, sizeof(*out) * H2LB_MAX_SERVICES);
	if (k->fd[KM_SVC_NR] < 0)
		return -1;
	for (__u32 i = 0; i < k->lim.services && i < H2LB_MAX_SERVICES; i++) {
		__u64 v = 0;

		bpf_map_lookup_elem(k->fd[KM_SVC_NR], &i, &v);
		out[i] = (uint32_t)v;
	}
	return 0;
}

int kern_read_counters(struct kern *k, uint64_t *out)
{
	int ncpu = libbpf_num_possible_cpus(), ret = -1;
	struct h2lb_counters *v;
	__u32 zero = 0;

	if (ncpu <= 0)
		return -1;
	v = calloc(ncpu, sizeof(*v));
	if (!v)
		return -1;
	memset(out, 0, H2LB_CNT_MAX * sizeof(*out));
	if (!bpf_map_lookup_elem(k->fd[KM_COUNTERS], &zero, v)) {
		for (int c = 0; c < ncpu; c++)
			for (int i = 0; i < H2LB_CNT_MAX; i++)
				out[i] += ((const uint64_t *)&v[c])[i];
		ret = 0;
	}
	free(v);
	return ret;
}

int kern_read_daemon_stats(struct kern *k, struct h2lb_daemon_stats *st)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(k->fd[KM_DAEMON_STATS], &zero, st);
}

/* Walk hash map @fd: @max entries at most, even if it keeps changing. */
#define EACH_KEY(fd, key, next, prev, max, guard)                              \
	for (guard = 0, prev = NULL;                                           \
	     guard < (max) && !bpf_map_get_next_key(fd, prev, &next);          \
	     guard++, key = next, prev = &key)

int kern_each_conn(struct kern *k,
		   int (*cb)(uint64_t cookie, const struct h2lb_conn *c,
			     void *arg),
		   void *arg)
{
	uint64_t key = 0, next;
	struct h2lb_conn c;
	void *prev;
	uint32_t guard;
	int ret;

	EACH_KEY(k->fd[KM_CONNS], key, next, prev, k->lim.conns, guard)
	{
		if (bpf_map_lookup_elem(k->fd[KM_CONNS], &next, &c))
			continue;
		ret = cb(next, &c, arg);
		if (ret)
			return ret;
	}
	return 0;
}

int kern_each_stream(struct kern *k,
		     int (*cb)(const struct h2lb_stream_key *key,
			       const struct h2lb_stream *st, void *arg),
		     void *arg)
{
	struct h2lb_stream_key key = { 0 }, next;
	struct h2lb_stream st;
	void *prev;
	uint32_t guard;
	int ret;

	EACH_KEY(k->fd[KM_STREAMS], key, next, prev, k->lim.streams, guard)
	{
		if (bpf_map_lookup_elem(k->fd[KM_STREAMS], &next, &st))
			continue;
		ret = cb(&next, &st, arg);
		if (ret)
			return ret;
	}
	return 0;
}

/* ---- cleaning up after a daemon that died --------------------------- */

int kern_unpin_all(const char *dir)
{
	struct dirent *e;
	DIR *d = opendir(dir);
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		char path[4096];

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (!unlink(path))
			n++;
	}
	closedir(d);
	rmdir(dir);
	return n;
}

bool kern_cgroup_detach_all(const char *cg_path)
{
	__u32 ids[16], n = 16;
	int fd = open(cg_path, O_RDONLY | O_DIRECTORY);

	if (fd < 0)
		return false;
	if (!bpf_prog_query(fd, BPF_CGROUP_SOCK_OPS, 0, NULL, ids, &n)) {
		for (__u32 i = 0; i < n; i++) {
			int pfd = bpf_prog_get_fd_by_id(ids[i]);

			if (pfd >= 0) {
				bpf_prog_detach2(pfd, fd, BPF_CGROUP_SOCK_OPS);
				close(pfd);
			}
		}
	}
	close(fd);
	return true;
}
