// SPDX-License-Identifier: GPL-2.0
/* `h2lb run`: set up, then one epoll loop until SIGINT/SIGTERM. */
#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <bpf/libbpf.h>

#include "addr.h"
#include "k8s.h"
#include "daemon.h"
#include "log.h"

#define TICK_MS 50

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int watch(struct daemon *d, int fd, uint64_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };

	return epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* Service 0: the one on --listen (static backends, --service). */
static int open_listener(struct daemon *d)
{
	char name[160];

	if (d->opts.kubernetes && !d->opts.k8s_name)
		return 0; /* every balanced Service has its own */
	if (d->opts.k8s_name)
		snprintf(name, sizeof(name), "%s/%s:%s", d->opts.k8s_ns,
			 d->opts.k8s_name, d->opts.k8s_port);
	else
		snprintf(name, sizeof(name), "static");
	return service_open(d, 0, name, &d->opts.listen,
			    d->opts.vip.sin_port ? &d->opts.vip : NULL);
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
		backends_load(d);
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
			backends_load(d);
		} else if (d->draining || !d->opts.drain_timeout_ms) {
			pr_info("signal %u: stopping", si.ssi_signo);
			d->stop = true;
		} else {
			pr_info("signal %u: draining (again to stop at once)",
				si.ssi_signo);
			drain_start(d);
		}
	}
}

/* A new Kubernetes snapshot: the Services' endpoints are the backends. */
static void on_k8s(struct daemon *d)
{
	struct k8s_snapshot *s = k8s_take(d->k8s);

	if (!s)
		return;
	services_k8s(d, s);
	k8s_snapshot_free(s);
}

static void on_tick(struct daemon *d)
{
	uint64_t expirations;

	if (read(d->timer_fd, &expirations, sizeof(expirations)) < 0)
		return;
	pool_tick(d);
	conns_tick(d);
	intercept_tick(d);
	services_tick(d);
	drain_tick(d);
	bpf_publish_stats(d);
}

static int setup(struct daemon *d)
{
	struct itimerspec its = {
		.it_interval.tv_nsec = TICK_MS * 1000000,
		.it_value.tv_nsec = TICK_MS * 1000000,
	};
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	d->sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	d->timer_fd =
		timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (d->epfd < 0 || d->sig_fd < 0 || d->timer_fd < 0 ||
	    timerfd_settime(d->timer_fd, 0, &its, NULL))
		return -1;
	if (watch(d, d->sig_fd, TAG_SIGNAL) || watch(d, d->timer_fd, TAG_TIMER))
		return -1;
	if (bpf_load(d))
		return -1;
	if (watch(d, ring_buffer__epoll_fd(d->rb), TAG_RING))
		return -1;
	if (injector_open(d))
		return -1;
	if (d->opts.kubernetes) {
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
		if (watch(d, k8s_fd(d->k8s), TAG_K8S))
			return -1;
	} else if (backends_load(d) || watch_backends_file(d)) {
		return -1;
	}
	if (open_listener(d) || intercept_start(d))
		return -1;
	if (d->opts.metrics.sin_port &&
	    (metrics_open(d) || watch(d, d->metrics_fd, TAG_METRICS)))
		return -1;
	pool_tick(d);
	return 0;
}

static void teardown(struct daemon *d)
{
	if (d->k8s)
		k8s_stop(d->k8s);
	d->k8s = NULL;
	for (int b = 0; b < CONN_BUCKETS; b++)
		while (d->conns[b])
			conn_close(d, d->conns[b]);
	injector_close(d);
	intercept_stop(d);
	services_close(d);
	bpf_unload(d);
	if (d->inotify_fd >= 0)
		close(d->inotify_fd);
	if (d->metrics_fd >= 0)
		close(d->metrics_fd);
	if (d->timer_fd >= 0)
		close(d->timer_fd);
	if (d->sig_fd >= 0)
		close(d->sig_fd);
	if (d->epfd >= 0)
		close(d->epfd);
	pr_info("stopped: %llu clients, %llu backend connections; daemon read %llu and wrote %llu bytes",
		(unsigned long long)d->stats.clients,
		(unsigned long long)d->stats.legs,
		(unsigned long long)d->stats.bytes_read,
		(unsigned long long)d->stats.bytes_written);
}

int daemon_run(struct run_opts *opts)
{
	static struct daemon d;
	struct epoll_event evs[64];
	int ret = 0;

	d.opts = *opts;
	for (int i = 0; i < H2LB_MAX_SERVICES; i++)
		d.svc[i].listen_fd = -1;
	d.epfd = d.sig_fd = d.timer_fd = d.inotify_fd = -1;
	d.metrics_fd = -1;
	d.inj_fd = -1;
	d.cg.fd = -1;
	d.stats.pid = getpid();
	if (setup(&d)) {
		teardown(&d);
		return 1;
	}
	while (!d.stop) {
		int n = epoll_wait(d.epfd, evs, 64, 1000);

		if (n < 0 && errno != EINTR) {
			pr_err("epoll_wait: %s", strerror(errno));
			ret = 1;
			break;
		}
		for (int i = 0; i < n && !d.stop; i++) {
			switch (evs[i].data.u64) {
			case TAG_SIGNAL:
				on_signal(&d);
				break;
			case TAG_TIMER:
				on_tick(&d);
				break;
			case TAG_RING:
				ring_buffer__consume(d.rb);
				break;
			case TAG_INOTIFY:
				on_inotify(&d);
				break;
			case TAG_METRICS:
				metrics_serve(&d);
				break;
			case TAG_K8S:
				on_k8s(&d);
				break;
			default: { /* a listener, or a leg's connect() */
				uint64_t tag = evs[i].data.u64;
				struct uconn *c;

				if (tag >= TAG_LISTEN &&
				    tag < TAG_LISTEN + H2LB_MAX_SERVICES) {
					client_accept(&d, tag - TAG_LISTEN);
					break;
				}
				c = conn_find(&d, tag);

				if (c && c->state == UC_CONNECTING)
					pool_connected(&d, c);
				break;
			}
			}
		}
	}
	teardown(&d);
	return ret;
}
