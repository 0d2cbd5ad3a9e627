// SPDX-License-Identifier: GPL-2.0
/* `h2lb run`: set up, then one epoll loop until SIGINT/SIGTERM. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "conns.h"
#include "daemon.h"
#include "events.h"
#include "intercept.h"
#include "k8s.h"
#include "kern.h"
#include "log.h"
#include "metrics.h"
#include "owner.h"
#include "reconcile.h"
#include "services.h"
#include "stop.h"
#include "tcpmem.h"

#define TICK_MS 50

/* epoll tags of the daemon's own descriptors. Connecting legs are tagged
 * with their socket cookie, which never has the top bit set, and
 * listeners with SERVICE_TAG (services.h). */
#define TAG(n) ((1ull << 63) | (n))
enum {
	TAG_SIGNAL = TAG(2),
	TAG_TIMER = TAG(3),
	TAG_RING = TAG(4),
	TAG_INOTIFY = TAG(5),
	TAG_METRICS = TAG(6),
	TAG_K8S = TAG(7),
	TAG_CLOSES = TAG(8),
};

struct daemon {
	struct run_opts opts;
	struct lb lb;
	struct services sv;
	struct stop stop;
	struct reconcile rc;
	struct owner owner;	 /* of the pin dir, held until the end */
	struct k8s *k8s;	 /* --kubernetes discovery */
	struct intercept *ic;	 /* --intercept links */
	struct metrics *metrics; /* --metrics server (its own thread) */
	int epfd, sig_fd, timer_fd, inotify_fd;
	/* A ring's last batch was full: take the next one at the next turn
	 * of the loop, whatever epoll says (its fd sits in libbpf's own
	 * epoll, and no new event need wake it). */
	bool more_events, more_closes;
	bool exit;
	/* The fast path's gate (fast_gate): bytes of TCP memory on the node
	 * above which it is closed to new clients (0: never), and the ticks
	 * until its next look. Its state is lb.stats.fast_closed. */
	uint64_t fast_limit;
	int fast_gate_wait;
};

static int watch(struct daemon *d, int fd, uint64_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };

	return epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* Watch the backends file's directory: editors replace files. */
static int watch_backends_file(struct daemon *d)
{
	char *copy;

	if (!d->opts.backends_file)
		return 0;
	copy = strdup(d->opts.backends_file);
	d->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (!copy || d->inotify_fd < 0 ||
	    inotify_add_watch(d->inotify_fd, dirname(copy),
			      IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0) {
		free(copy);
		pr_err("watching %s: %s", d->opts.backends_file,
		       strerror(errno));
		return -1;
	}
	free(copy);
	return watch(d, d->inotify_fd, TAG_INOTIFY);
}

static void on_inotify(struct daemon *d)
{
	char buf[4096] __attribute__((aligned(8)));
	char *copy = strdup(d->opts.backends_file);
	const char *name = copy ? basename(copy) : "";
	bool changed = false;
	ssize_t n;

	while ((n = read(d->inotify_fd, buf, sizeof(buf))) > 0)
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;

			if (ev->len && !strcmp(ev->name, name))
				changed = true;
			p += sizeof(*ev) + ev->len;
		}
	free(copy);
	if (changed) {
		pr_info("%s changed, reloading", d->opts.backends_file);
		services_load_static(&d->lb, &d->sv);
	}
}

static void on_signal(struct daemon *d)
{
	struct signalfd_siginfo si;

	while (read(d->sig_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			if (d->opts.kubernetes)
				continue; /* the watch keeps it current */
			pr_info("SIGHUP: reloading backends");
			services_load_static(&d->lb, &d->sv);
		} else if (d->stop.stopping || !d->opts.stop_timeout_ms) {
			pr_info("signal %u: stopping", si.ssi_signo);
			d->exit = true;
		} else {
			pr_info("signal %u: stopping gracefully (again to stop at once)",
				si.ssi_signo);
			stop_start(&d->stop, &d->lb, &d->sv);
		}
	}
}

/* A new Kubernetes snapshot: the Services' endpoints are the backends. */
static void on_k8s(struct daemon *d)
{
	struct k8s_snapshot *s = k8s_take(d->k8s);

	if (!s)
		return;
	services_k8s(&d->lb, &d->sv, s); /* which keeps it */
}

static void publish_stats(struct daemon *d)
{
	d->lb.stats.bytes_written = d->lb.inj.bytes;
	d->lb.stats.injected_frames = d->lb.inj.frames;
	d->lb.stats.queued = kern_node_queued(d->lb.k);
	kern_daemon_stats_publish(d->lb.k, &d->lb.stats);
}

/*
 * The fast path's gate (docs/kernel-facts.md K23). Every byte the fast
 * path answers by ingress may lose a little of TCP's node-wide memory
 * count, for good, and above net.ipv4.tcp_mem's marks every TCP socket
 * on the node suffers. Once a second the daemon reads the count: above
 * --fast-path-tcp-mem, new clients stay on today's path (the client
 * sockops looks at lb_config); below 7/8 of it, they join again (no
 * flapping at the mark). Connections already on the fast path stay.
 */
#define FAST_GATE_TICKS (1000 / TICK_MS)

static void fast_gate(struct daemon *d)
{
	uint64_t pages, bytes, mib;
	bool closed, was;

	if (!d->opts.fast_path || --d->fast_gate_wait > 0)
		return;
	d->fast_gate_wait = FAST_GATE_TICKS;
	if (tcpmem_pages(&pages))
		return;
	d->lb.stats.tcp_mem_pages = pages;
	if (!d->fast_limit)
		return;
	bytes = pages * (uint64_t)sysconf(_SC_PAGESIZE);
	was = d->lb.stats.fast_closed;
	closed = was ? bytes > d->fast_limit / 8 * 7 : bytes > d->fast_limit;
	if (closed == was)
		return;
	if (kern_fast_close(d->lb.k, closed)) {
		pr_warn("fast path: its gate: %s", strerror(errno));
		return;
	}
	d->lb.stats.fast_closed = closed;
	mib = bytes >> 20;
	if (closed)
		pr_warn("fast path: closed to new clients: the node's TCP memory count is %llu MiB, above --fast-path-tcp-mem (%llu MiB; docs/kernel-facts.md K23)",
			(unsigned long long)mib,
			(unsigned long long)(d->fast_limit >> 20));
	else
		pr_info("fast path: open to new clients again: the node's TCP memory count is %llu MiB",
			(unsigned long long)mib);
}

/* --fast-path-tcp-mem, or half of net.ipv4.tcp_mem's first mark. */
static void fast_gate_start(struct daemon *d)
{
	bool estimated = false;
	uint64_t mark;

	if (d->opts.fast_tcp_mem >= 0) {
		d->fast_limit = d->opts.fast_tcp_mem;
	} else if (tcpmem_pressure_pages(&mark, &estimated)) {
		pr_warn("fast path: net.ipv4.tcp_mem unreadable: no limit on the node's TCP memory count");
	} else {
		d->fast_limit = mark / 2 * (uint64_t)sysconf(_SC_PAGESIZE);
	}
	if (d->fast_limit)
		pr_info("fast path: closed to new clients above %llu MiB of TCP memory on the node%s",
			(unsigned long long)(d->fast_limit >> 20),
			estimated
				? " (half of net.ipv4.tcp_mem's first mark, "
				  "estimated: not visible in this network namespace)"
				: "");
	fast_gate(d);
}

static void on_tick(struct daemon *d)
{
	uint64_t expirations;

	if (read(d->timer_fd, &expirations, sizeof(expirations)) < 0)
		return;
	backends_tick(&d->lb.bs);
	reconcile_tick(&d->rc, &d->lb);
	conns_tick(&d->lb);
	intercept_tick(d->ic);
	services_tick(&d->lb, &d->sv);
	fast_gate(d);
	if (stop_tick(&d->stop, &d->lb))
		d->exit = true;
	publish_stats(d);
	metrics_beat(d->metrics);
}

static int start_k8s(struct daemon *d)
{
	struct k8s_opts ko = { .kubeconfig = d->opts.kubeconfig,
			       .ns = d->opts.k8s_ns,
			       .node_zone = d->opts.node_zone };
	char err[256];

	/* The first snapshot comes once the lists are in. */
	d->k8s = k8s_start(&ko, err, sizeof(err));
	if (!d->k8s) {
		pr_err("kubernetes: %s", err);
		return -1;
	}
	return watch(d, k8s_fd(d->k8s), TAG_K8S);
}

/* The fds a daemon may have: as many as the hard limit allows (a soft
 * limit of 1024 would serve about 500 clients). conns_accept keeps room
 * below it for the legs. */
static void raise_nofile(struct daemon *d)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	d->lb.nofile = rl.rlim_cur > (1 << 30) ? 1 << 30 : (int)rl.rlim_cur;
	d->lb.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/*
 * Own the pin dir before touching anything: a daemon that still runs
 * with it (a rolling update, a restart while the old one stops) is
 * waited for, at most --takeover-wait seconds; what a dead one left is
 * removed (owner.c).
 */
static int take_over(struct daemon *d)
{
	const char *dir = d->opts.pin_dir;
	struct owner_leftovers l;

	if (owner_lock(&d->owner, dir, d->opts.takeover_wait_s)) {
		if (errno == EWOULDBLOCK)
			pr_err("%s is still in use by h2lb pid %ld (lock %s) after waiting %d s: stop it first, or raise --takeover-wait",
			       dir, d->owner.holder, d->owner.path,
			       d->opts.takeover_wait_s);
		else
			pr_err("locking %s: %s", d->owner.path,
			       strerror(errno));
		return -1;
	}
	owner_clean(&d->owner, dir, &l);
	if (l.pid || l.pins || l.steer)
		pr_info("took over %s from h2lb pid %ld, which died: removed %d cgroup(s), %d pins%s",
			dir, l.pid, l.cgroups, l.pins,
			l.steer ? ", the interception rule, route and nftables table"
				: "");
	return 0;
}

/* The fast path's programs on the clients' cgroup (docs/fast-path.md):
 * the link holds the cgroup, not the descriptor. */
static int fast_start(struct daemon *d)
{
	const char *path = d->opts.intercept_cgroup;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), ret;

	if (fd < 0) {
		pr_err("fast path: cgroup %s: %s", path, strerror(errno));
		return -1;
	}
	ret = kern_fast_attach(d->lb.k, fd, path);
	close(fd);
	if (!ret)
		pr_info("fast path: client sockets of cgroup %s framed on their own socket",
			path);
	return ret;
}

static int setup(struct daemon *d)
{
	struct itimerspec its = {
		.it_interval.tv_nsec = TICK_MS * 1000000,
		.it_value.tv_nsec = TICK_MS * 1000000,
	};
	struct kern_opts ko = {
		.pin_dir = d->opts.pin_dir,
		.limits = { d->opts.max_services + 1, d->opts.max_backends,
			    d->opts.svc_backends, d->opts.max_conns,
			    d->opts.streams_total },
		.pool_size = d->opts.pool_size,
		.fast_path = d->opts.fast_path,
		.settings = { .policy = d->opts.policy,
			      .max_streams = d->opts.max_streams,
			      .calm_burst = d->opts.frame_budget,
			      .calm_rate = d->opts.frame_rate,
			      .ctl_queue = d->opts.control_queue,
			      .addr_streams = d->opts.addr_streams,
			      .node_queue = d->opts.node_buffer,
			      .peer_buffer = d->opts.peer_buffer },
		.on_event = events_handle,
		.ctx = &d->lb,
	};
	sigset_t mask;

	if (take_over(d))
		return -1;
	raise_nofile(d);
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	d->epfd = d->lb.epfd = epoll_create1(EPOLL_CLOEXEC);
	d->sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	d->timer_fd =
		timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (d->epfd < 0 || d->sig_fd < 0 || d->timer_fd < 0 ||
	    timerfd_settime(d->timer_fd, 0, &its, NULL))
		return -1;
	if (watch(d, d->sig_fd, TAG_SIGNAL) || watch(d, d->timer_fd, TAG_TIMER))
		return -1;
	d->lb.k = d->lb.bs.k = kern_load(&ko);
	if (!d->lb.k)
		return -1;
	if (watch(d, kern_events_fd(d->lb.k), TAG_RING) ||
	    watch(d, kern_closes_fd(d->lb.k), TAG_CLOSES))
		return -1;
	if (injector_open(&d->lb.inj, d->lb.k))
		return -1;
	/* The hooks before any Service: once a Service's log line says it
	 * is intercepted, it is (its VIP entry is what the hooks look up;
	 * until then they leave connections to the kernel's path). */
	d->ic = intercept_start(d->lb.k, &d->opts);
	if (d->opts.intercept && !d->ic)
		return -1;
	if (d->opts.fast_path) {
		fast_gate_start(d); /* closed already, if it must be */
		if (fast_start(d))
			return -1;
	}
	if (d->opts.kubernetes) {
		if (start_k8s(d))
			return -1;
	} else if (services_load_static(&d->lb, &d->sv) ||
		   watch_backends_file(d)) {
		return -1;
	}
	if (services_open_listen(&d->lb, &d->sv))
		return -1;
	if (d->opts.metrics.sin_port) {
		d->metrics = metrics_start(&d->opts.metrics, d->lb.k, &d->opts);
		if (!d->metrics ||
		    watch(d, metrics_fd(d->metrics), TAG_METRICS))
			return -1;
	}
	conns_tick(&d->lb); /* fill the pools */
	return 0;
}

/* What the fast path saw, for the log: tests on the fast path look. */
static void fast_report(struct daemon *d)
{
	uint64_t c[H2LB_CNT_MAX];

	if (kern_read_counters(d->lb.k, c))
		return;
	pr_info("fast path: %llu client sockets joined, %llu paired, %llu bytes passed",
		(unsigned long long)c[H2LB_CNT_FAST_CLIENTS],
		(unsigned long long)c[H2LB_CNT_FAST_PAIRED],
		(unsigned long long)c[H2LB_CNT_FAST_PASSED]);
}

static void teardown(struct daemon *d)
{
	if (d->k8s)
		k8s_stop(d->k8s);
	d->k8s = NULL;
	/* Before kern_close: the thread reads the maps. */
	metrics_stop(d->metrics);
	d->metrics = NULL;
	if (d->lb.k) {
		conns_close_all(&d->lb);
		conns_sweep(&d->lb);
	}
	injector_close(&d->lb.inj);
	intercept_stop(d->ic);
	d->ic = NULL;
	if (d->lb.k)
		services_close(&d->lb, &d->sv);
	if (d->lb.k)
		publish_stats(d);
	if (d->lb.k && d->opts.fast_path)
		fast_report(d);
	kern_close(d->lb.k);
	d->lb.k = d->lb.bs.k = NULL;
	reconcile_free(&d->rc);
	if (d->lb.spare_fd >= 0)
		close(d->lb.spare_fd);
	if (d->inotify_fd >= 0)
		close(d->inotify_fd);
	if (d->timer_fd >= 0)
		close(d->timer_fd);
	if (d->sig_fd >= 0)
		close(d->sig_fd);
	if (d->epfd >= 0)
		close(d->epfd);
	owner_unlock(&d->owner); /* last: the next owner finds nothing */
	pr_info("stopped: %llu clients, %llu backend connections; daemon read %llu and wrote %llu bytes",
		(unsigned long long)d->lb.stats.clients,
		(unsigned long long)d->lb.stats.legs,
		(unsigned long long)d->lb.stats.bytes_read,
		(unsigned long long)d->lb.inj.bytes);
}

static void dispatch(struct daemon *d, uint64_t tag)
{
	switch (tag) {
	case TAG_SIGNAL:
		on_signal(d);
		break;
	case TAG_TIMER:
		on_tick(d);
		break;
	case TAG_RING:
		d->more_events = events_poll(&d->lb);
		break;
	case TAG_CLOSES:
		d->more_closes = events_poll_closes(&d->lb);
		break;
	case TAG_INOTIFY:
		on_inotify(d);
		break;
	case TAG_METRICS:
		metrics_publish(d->metrics, &d->lb, &d->sv);
		break;
	case TAG_K8S:
		on_k8s(d);
		break;
	default:
		if (IS_SERVICE_TAG(tag)) {
			int i = SERVICE_OF_TAG(tag);

			if (d->sv.svc[i].listen_fd >= 0)
				conns_accept(
					&d->lb, d->sv.svc[i].listen_fd, i,
					service_own_legs(&d->lb, &d->sv, i));
		} else {
			conns_ready(&d->lb,
				    tag); /* a connect(), a client's bytes */
		}
	}
}

int daemon_run(const struct run_opts *opts)
{
	static struct daemon d;
	struct epoll_event evs[64];
	int ret = 0;

	d.opts = *opts;
	d.lb.opts = &d.opts;
	d.lb.inj.tx_fd = d.lb.inj.rx_fd = -1;
	d.lb.spare_fd = -1;
	services_init(&d.sv, d.opts.max_services + 1);
	d.epfd = d.sig_fd = d.timer_fd = d.inotify_fd = -1;
	d.owner.fd = -1;
	d.lb.stats.pid = getpid();
	if (setup(&d)) {
		teardown(&d);
		return 1;
	}
	while (!d.exit && !d.lb.quit) {
		bool more = d.more_events || d.more_closes;
		int n = epoll_wait(d.epfd, evs, 64, more ? 0 : 1000);

		if (n < 0 && errno != EINTR) {
			pr_err("epoll_wait: %s", strerror(errno));
			ret = 1;
			break;
		}
		for (int i = 0; i < n && !d.exit && !d.lb.quit; i++)
			dispatch(&d, evs[i].data.u64);
		/* Each turn, at most one more batch of each ring. */
		if (more && d.more_closes)
			d.more_closes = events_poll_closes(&d.lb);
		if (more && d.more_events)
			d.more_events = events_poll(&d.lb);
		conns_sweep(&d.lb);
	}
	teardown(&d);
	return ret;
}
