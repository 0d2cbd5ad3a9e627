// SPDX-License-Identifier: GPL-2.0
/*
 * The backend set and its connection pool. Each client gets its own
 * connection to each backend it uses (DESIGN.md "Dedicated backend
 * connections"), taken by the verdict from a pool of connections that
 * the daemon opened and handshook in advance, so no connect latency is
 * on the request path.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "addr.h"
#include "daemon.h"
#include "h2.h"
#include "h2lb.skel.h"
#include "log.h"

#define RETRY_MS     200 /* a restarted backend is back within a second */
#define HANDSHAKE_MS 3000

static uint64_t *pool_slot(struct daemon *d, int b, int i)
{
	return &d->pool_mem[b * H2LB_POOL_SLOTS + i];
}

static void set_state(struct daemon *d, int b, uint32_t state)
{
	__atomic_store_n(&d->be_mem[b].state, state, __ATOMIC_RELEASE);
}

static uint32_t get_state(struct daemon *d, int b)
{
	return __atomic_load_n(&d->be_mem[b].state, __ATOMIC_ACQUIRE);
}

static void publish_nr_backends(struct daemon *d)
{
	struct h2lb_config cfg;
	__u32 zero = 0;
	int fd = bpf_map__fd(d->skel->maps.lb_config);

	if (bpf_map_lookup_elem(fd, &zero, &cfg))
		return;
	cfg.nr_backends = d->nr_backends;
	bpf_map_update_elem(fd, &zero, &cfg, 0);
}

/* The backend @a of Service @svc (a pod can serve several Services:
 * each has its own index, pool and counters for it). */
static int find_backend(struct daemon *d, int svc, const struct sockaddr_in *a)
{
	for (int i = 0; i < d->nr_backends; i++)
		if (d->be[i].addr.sin_addr.s_addr == a->sin_addr.s_addr &&
		    d->be[i].addr.sin_port == a->sin_port &&
		    d->be[i].service == svc &&
		    (d->be[i].configured || get_state(d, i) != H2LB_BE_UNUSED))
			return i;
	return -1;
}

/* A free index: never used, or unused and fully drained. */
static int free_backend(struct daemon *d)
{
	for (int i = 0; i < H2LB_MAX_BACKENDS; i++) {
		if (i >= d->nr_backends)
			return i;
		if (!d->be[i].configured && !d->be[i].pooled &&
		    !d->be[i].pending && get_state(d, i) == H2LB_BE_UNUSED)
			return i;
	}
	return -1;
}

/* Ready once a connection has been handshaken; a draining one never. */
static void backend_mark(struct daemon *d, int b)
{
	if (d->be[b].drain)
		set_state(d, b, H2LB_BE_DRAINING);
	else
		set_state(d, b,
			  d->be[b].pooled ? H2LB_BE_READY : H2LB_BE_EJECTED);
}

/*
 * Make the backend set of Service @svc @want (@n addresses; @drain[i],
 * when given, marks those that keep their open streams but take no new
 * ones, such as terminating Kubernetes endpoints). Backends no longer
 * wanted drain and their index is freed once their streams have ended
 * (pool_tick).
 */
void backends_set(struct daemon *d, int svc, const struct sockaddr_in *want,
		  const bool *drain, int n)
{
	bool keep[H2LB_MAX_BACKENDS] = { 0 };
	char buf[32];

	for (int i = 0; i < n; i++) {
		int b = find_backend(d, svc, &want[i]);
		bool dr = drain && drain[i];

		if (b < 0) {
			b = free_backend(d);
			if (b < 0) {
				pr_err("no free backend slot for %s",
				       addr_str(&want[i], buf, sizeof(buf)));
				continue;
			}
			memset(&d->be[b], 0, sizeof(d->be[b]));
			d->be[b].addr = want[i];
			d->be[b].service = svc;
			d->be_mem[b].service = svc;
			d->be_mem[b].addr = want[i].sin_addr.s_addr;
			d->be_mem[b].port = ntohs(want[i].sin_port);
			if (b >= d->nr_backends)
				d->nr_backends = b + 1;
		}
		keep[b] = true;
		if (!d->be[b].configured || d->be[b].drain != dr) {
			if (!d->be[b].configured)
				d->be[b].retry_at_ms = 0;
			d->be[b].configured = true;
			d->be[b].drain = dr;
			backend_mark(d, b);
			pr_info("backend %d: %s%s", b,
				addr_str(&d->be[b].addr, buf, sizeof(buf)),
				dr ? " (draining: no new streams)" : "");
		}
	}
	for (int b = 0; b < d->nr_backends; b++) {
		if (keep[b] || !d->be[b].configured || d->be[b].service != svc)
			continue;
		d->be[b].configured = false;
		set_state(d, b, H2LB_BE_DRAINING);
		pr_info("backend %d: %s removed, draining", b,
			addr_str(&d->be[b].addr, buf, sizeof(buf)));
		for (int i = 0; i < H2LB_POOL_SLOTS; i++) {
			uint64_t cookie = __atomic_load_n(pool_slot(d, b, i),
							  __ATOMIC_ACQUIRE);
			struct uconn *c = cookie ? conn_find(d, cookie) : NULL;

			if (c)
				conn_close(d, c);
		}
	}
	publish_nr_backends(d);
}

int backends_load(struct daemon *d)
{
	struct sockaddr_in want[H2LB_MAX_BACKENDS];
	char err[256];
	int n;

	if (d->opts.backends_file)
		n = addr_parse_file(d->opts.backends_file, want,
				    H2LB_MAX_BACKENDS, err, sizeof(err));
	else
		n = addr_parse_list(d->opts.backends, want, H2LB_MAX_BACKENDS,
				    err, sizeof(err));
	if (n < 0) {
		pr_err("backends: %s", err);
		return -1;
	}
	backends_set(d, 0, want, NULL, n);
	return 0;
}

static void pool_connect(struct daemon *d, int b)
{
	struct epoll_event ev = { .events = EPOLLOUT };
	struct uconn *c;
	int fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	c = conn_add(d, fd, H2LB_ROLE_BACKEND);
	if (!c) {
		close(fd);
		return;
	}
	c->backend = b;
	/* sockops must know it as a leg of @b once it is established. */
	if (bpf_new_leg(d, c->cookie, b, true)) {
		conn_close(d, c);
		return;
	}
	if (connect(fd, (struct sockaddr *)&d->be[b].addr,
		    sizeof(d->be[b].addr)) &&
	    errno != EINPROGRESS) {
		bpf_new_leg(d, c->cookie, b, false);
		conn_close(d, c);
		backend_failed(d, b);
		return;
	}
	c->state = UC_CONNECTING;
	c->close_at_ms = now_ms() + HANDSHAKE_MS;
	d->be[b].pending++;
	d->stats.legs++;
	ev.data.u64 = c->cookie;
	epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev);
}

void pool_tick(struct daemon *d)
{
	uint64_t now = now_ms();

	for (int b = 0; b < d->nr_backends; b++) {
		struct ubackend *be = &d->be[b];

		if (!be->configured) {
			/* Removed backend: free its index once drained. */
			if (get_state(d, b) == H2LB_BE_DRAINING &&
			    !__atomic_load_n(&d->be_mem[b].open_streams,
					     __ATOMIC_ACQUIRE) &&
			    !be->pooled && !be->pending)
				set_state(d, b, H2LB_BE_UNUSED);
			continue;
		}
		if (now < be->retry_at_ms || be->drain || d->draining)
			continue;
		/* One connect at a time while the backend is failing. */
		for (int i = 0; be->pooled + be->pending < d->opts.pool_size &&
				i < H2LB_POOL_SLOTS;
		     i++) {
			if (be->failures && be->pending)
				break;
			pool_connect(d, b);
		}
	}
}

/* Connected (or failed to): send our preface and SETTINGS. */
void pool_connected(struct daemon *d, struct uconn *leg)
{
	const struct h2_setting_pair s[] = {
		{ H2_SET_HEADER_TABLE_SIZE, 0 },
		{ H2_SET_ENABLE_PUSH, 0 },
		/* No response DATA until the client's own window size is
		 * relayed, when the leg is bound (flow.c). */
		{ H2_SET_INITIAL_WINDOW_SIZE, 0 },
	};
	uint8_t f[H2_PREFACE_LEN + H2_FRAME_MAX];
	socklen_t len = sizeof(int);
	int err = 0;
	size_t n;

	epoll_ctl(d->epfd, EPOLL_CTL_DEL, leg->fd, NULL);
	if (getsockopt(leg->fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
		pr_debug("backend %d: connect: %s", leg->backend,
			 strerror(err));
		backend_failed(d, leg->backend);
		conn_close(d, leg);
		return;
	}
	if (leg->preface_sent)
		return;
	memcpy(f, H2_PREFACE, H2_PREFACE_LEN);
	n = H2_PREFACE_LEN + h2_settings(f + H2_PREFACE_LEN, s, 3);
	inject(d, leg->cookie, f, n);
	leg->preface_sent = true;
	leg->state = UC_HANDSHAKE;
}

/* The backend's SETTINGS: acknowledge; a handshaking leg joins the pool. */
void pool_settings(struct daemon *d, struct uconn *leg)
{
	struct ubackend *be = &d->be[leg->backend];
	uint8_t f[H2_FRAME_MAX];

	/* Its SETTINGS can be parsed before our connect() completion is
	 * seen: our preface must still go first. */
	if (!leg->preface_sent)
		pool_connected(d, leg);
	if (leg->state == UC_CONNECTING || !conn_find(d, leg->cookie))
		return;
	inject(d, leg->cookie, f, h2_settings_ack(f));
	if (leg->state != UC_HANDSHAKE)
		return;
	be->pending--;
	leg->state = UC_POOLED;
	for (int i = 0; i < H2LB_POOL_SLOTS; i++) {
		uint64_t *slot = pool_slot(d, leg->backend, i);

		if (__atomic_load_n(slot, __ATOMIC_ACQUIRE))
			continue;
		__atomic_store_n(slot, leg->cookie, __ATOMIC_RELEASE);
		be->pooled++;
		be->failures = 0;
		if (be->configured &&
		    get_state(d, leg->backend) == H2LB_BE_EJECTED) {
			set_state(d, leg->backend, H2LB_BE_READY);
			pr_info("backend %d ready", leg->backend);
		}
		return;
	}
	leg->state = UC_HANDSHAKE; /* no slot: should not happen */
	be->pending++;
	conn_close(d, leg);
}

void pool_taken(struct daemon *d, struct uconn *leg, struct uconn *client)
{
	if (leg->state == UC_POOLED)
		d->be[leg->backend].pooled--;
	leg->state = UC_BOUND;
	leg->client = client;
	leg->next_leg = client->legs;
	client->legs = leg;
	/* Refill now rather than at the next tick: a burst of new clients
	 * empties the pool fast. */
	pool_tick(d);
}

/*
 * At accept, before the client's first frame can be parsed (DESIGN.md
 * fact 8: that waits for our SETTINGS to draw a segment), give it a leg
 * from the pool: its first streams then never race a burst of other new
 * clients for the pool. Backends take turns. The caller relays the
 * window settings once our SETTINGS has gone out: it must come first.
 */
struct uconn *pool_bind_first(struct daemon *d, struct uconn *client)
{
	static unsigned int next;

	for (int n = 0; n < d->nr_backends; n++) {
		int b = (next + n) % d->nr_backends;

		if (!d->be[b].configured ||
		    d->be[b].service != client->service ||
		    get_state(d, b) != H2LB_BE_READY)
			continue;
		for (int i = 0; i < H2LB_POOL_SLOTS; i++) {
			uint64_t *slot = pool_slot(d, b, i);
			uint64_t cookie =
				__atomic_exchange_n(slot, 0, __ATOMIC_ACQ_REL);
			struct uconn *leg;

			if (!cookie)
				continue;
			leg = conn_find(d, cookie);
			if (!leg ||
			    bpf_bind_leg(d, client->cookie, cookie, b)) {
				/* Not ours to lend: put it back. */
				__atomic_store_n(slot, cookie,
						 __ATOMIC_RELEASE);
				continue;
			}
			next = b + 1;
			pool_taken(d, leg, client);
			return leg;
		}
	}
	return NULL;
}

void pool_remove(struct daemon *d, struct uconn *leg)
{
	for (int i = 0; i < H2LB_POOL_SLOTS; i++) {
		uint64_t expect = leg->cookie;

		/* Fails if the verdict took it meanwhile: then a LEG_BOUND
		 * event is on its way and the leg closes when it arrives. */
		if (__atomic_compare_exchange_n(
			    pool_slot(d, leg->backend, i), &expect, 0, false,
			    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			d->be[leg->backend].pooled--;
			break;
		}
	}
	leg->state = UC_CLOSING;
	leg->close_at_ms = 0;
}

/* A connect failed or a backend vanished: stop sending it new streams
 * until a connection handshakes again; retry soon. */
void backend_failed(struct daemon *d, int b)
{
	struct ubackend *be = &d->be[b];

	be->failures++;
	be->retry_at_ms = now_ms() + RETRY_MS;
	if (be->configured && get_state(d, b) == H2LB_BE_READY) {
		set_state(d, b, H2LB_BE_EJECTED);
		pr_warn("backend %d ejected", b);
	}
}
