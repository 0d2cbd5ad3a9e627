/* SPDX-License-Identifier: GPL-2.0 */
/* The h2lb daemon: state shared by its parts. */
#ifndef H2LB_DAEMON_H
#define H2LB_DAEMON_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "h2lb.h"
#include "cgroup.h"

struct h2lb_bpf;
struct ring_buffer;
struct k8s;

enum intercept_mode {
	INTERCEPT_NONE,
	INTERCEPT_TC,	  /* tc ingress + bpf_sk_assign */
	INTERCEPT_CGROUP, /* cgroup/connect4 + getpeername4 */
};

#define H2LB_MAX_INTERCEPT_DEVS 256

struct run_opts {
	struct sockaddr_in listen;
	struct sockaddr_in vip;	   /* --vip: the static Service's VIP */
	const char *backends;	   /* --backends list */
	const char *backends_file; /* --backends-file */
	const char *pin_dir;
	struct sockaddr_in metrics; /* port 0: no metrics endpoint */
	/* --kubernetes: backends are the endpoints of one Service port
	 * (--service), or of every balanced Service port */
	bool kubernetes;
	const char *kubeconfig; /* NULL: in-cluster */
	const char *k8s_ns;	/* of the Service */
	const char *k8s_name;
	const char *k8s_port; /* port name or number */
	const char *node_zone;
	int intercept;		    /* enum intercept_mode */
	const char *intercept_devs; /* --intercept-dev: names or patterns */
	const char *intercept_cgroup;
	int policy;		   /* enum h2lb_policy */
	int pool_size;		   /* idle connections kept per backend */
	uint32_t max_streams;	   /* per client connection */
	uint32_t stream_window;	   /* SETTINGS_INITIAL_WINDOW_SIZE to clients */
	uint64_t drain_timeout_ms; /* graceful stop: 0 stops at once */
	int64_t peer_buffer;	   /* flow.c: unacknowledged bytes per peer,
				    * and a client's legs' extra window */
};

enum uconn_state {
	UC_NONE,       /* the injector */
	UC_CONNECTING, /* leg: connect() in progress */
	UC_HANDSHAKE,  /* leg: preface sent, waiting for the backend SETTINGS */
	UC_POOLED,     /* leg: in the pool */
	UC_BOUND,      /* leg: serving one client */
	UC_DRAINING,   /* leg: GOAWAY seen, closes when its streams end */
	UC_OPEN,       /* client */
	UC_CLOSING,    /* GOAWAY sent; closed at close_at */
};

/* A socket the daemon owns (it never reads it: the sockhash does). */
struct uconn {
	uint64_t cookie;
	int fd;
	int role;    /* enum h2lb_role */
	int backend; /* leg: backend index */
	enum uconn_state state;
	bool preface_sent;	/* leg */
	bool settings_seen;	/* client: its first SETTINGS received */
	struct uconn *client;	/* leg: the client it serves */
	struct uconn *legs;	/* client: its bound and draining legs */
	struct uconn *next_leg; /* leg: next in its client's list */
	uint32_t init_window;	/* client: its SETTINGS_INITIAL_WINDOW_SIZE */
	int service;		/* client: index of its Service */
	bool draining;		/* client: GOAWAY sent (drain.c) */
	bool flow_held;		/* client: a peer lags, windows held (flow.c) */
	/* Connection-level flow control, in DATA payload bytes, as totals
	 * since the connection opened (both start at the RFC's 65535). The
	 * bytes actually moved are counted by the kernel (struct h2lb_conn
	 * rx_data, tx_data); see flow.c. */
	int64_t peer_grant; /* what the peer allowed us to send */
	int64_t our_grant;  /* what we allowed the peer to send */
	uint64_t close_at_ms;
	uint64_t last_rx_bytes; /* watchdog: bytes parsed at the last tick */
	int stalled_ticks;
	struct uconn *next; /* hash chain */
};

struct ubackend {
	struct sockaddr_in addr;
	int service;	      /* index of its Service */
	bool configured;      /* in the current backend set */
	bool drain;	      /* configured, but takes no new streams */
	int pooled;	      /* legs in the pool */
	int pending;	      /* legs connecting or handshaking */
	int failures;	      /* consecutive failed connects */
	uint64_t retry_at_ms; /* next connect attempt after a failure */
};

/*
 * A balanced Service port: what clients connect to. Index 0 is the one
 * on --listen (static backends, or --kubernetes --service); with
 * --kubernetes alone, each balanced Service port has an index and a
 * listener of its own (services.c).
 */
struct uservice {
	bool used;
	char name[160];		   /* NS/NAME:PORT, or "static" */
	struct sockaddr_in vip;	   /* sin_port 0: none (not intercepted) */
	struct sockaddr_in listen; /* where its listener is bound */
	int listen_fd;
};

#define CONN_BUCKETS 4096

/* epoll tags for the daemon's own descriptors. Connecting legs are
 * tagged with their socket cookie, which never has the top bit set: a
 * cookie stays safe to look up even if the leg closed meanwhile. */
#define TAG(n) ((1ull << 63) | (n))
enum {
	TAG_SIGNAL = TAG(2),
	TAG_TIMER = TAG(3),
	TAG_RING = TAG(4),
	TAG_INOTIFY = TAG(5),
	TAG_METRICS = TAG(6),
	TAG_K8S = TAG(7),
	TAG_LISTEN = TAG(0x100), /* + service index */
};

struct daemon {
	struct run_opts opts;
	struct h2lb_bpf *skel;
	struct ring_buffer *rb;
	struct k8s *k8s;	     /* --kubernetes discovery */
	struct intercept *ic;	     /* --intercept links */
	struct h2lb_backend *be_mem; /* mmap of the backends map */
	uint64_t *pool_mem;	     /* mmap of the pool map */
	struct h2lb_cgroup cg;
	int epfd, sig_fd, timer_fd, inotify_fd, metrics_fd;
	int inj_fd; /* we write here; the other end is in the sockhash */
	uint64_t inj_cookie;
	bool pinned;
	bool stop;
	bool draining; /* stopping gracefully (drain.c) */
	uint64_t drain_until_ms;
	struct uservice svc[H2LB_MAX_SERVICES];
	struct ubackend be[H2LB_MAX_BACKENDS];
	int nr_backends;
	struct uconn *conns[CONN_BUCKETS];
	int nr_conns;
	struct h2lb_daemon_stats stats;
};

uint64_t now_ms(void);

/* loader.c: the BPF side */
int bpf_load(struct daemon *d);
void bpf_unload(struct daemon *d);
int bpf_kconn(struct daemon *d, uint64_t cookie, struct h2lb_conn *out);
int bpf_close_stream(struct daemon *d, uint64_t client, uint32_t stream,
		     int reset);
int bpf_bind_leg(struct daemon *d, uint64_t client, uint64_t leg,
		 uint32_t backend);
/* New streams of @client are refused from now on; returns the last
 * stream id opened before, or -1. */
int bpf_drain_client(struct daemon *d, uint64_t client);
/* Accepted on @a (a client of @service), or connecting to @a. */
int bpf_set_endpoint(struct daemon *d, const struct sockaddr_in *a,
		     uint32_t role, uint32_t service, bool add);
/* Socket @cookie is about to connect to backend @backend. */
int bpf_new_leg(struct daemon *d, uint64_t cookie, uint32_t backend, bool add);
void bpf_publish_stats(struct daemon *d);

/* injector.c: every frame the daemon sends goes through here */
int injector_open(struct daemon *d);
void injector_close(struct daemon *d);
int inject(struct daemon *d, uint64_t target, const void *frames, size_t len);

/* conns.c */
struct uconn *conn_find(struct daemon *d, uint64_t cookie);
struct uconn *conn_add(struct daemon *d, int fd, int role);
void conn_close(struct daemon *d, struct uconn *c);
void client_accept(struct daemon *d, int svc);
void conn_fail(struct daemon *d, struct uconn *c, uint32_t last_stream,
	       uint32_t code);
void leg_lost(struct daemon *d, struct uconn *leg, const char *why);
void leg_goaway(struct daemon *d, struct uconn *leg, uint32_t last_stream);
void conns_tick(struct daemon *d);

/* backends.c */
int backends_load(struct daemon *d);
void backends_set(struct daemon *d, int svc, const struct sockaddr_in *want,
		  const bool *drain, int n);
void pool_tick(struct daemon *d);
void pool_connected(struct daemon *d, struct uconn *leg);
void pool_settings(struct daemon *d, struct uconn *leg);
void pool_taken(struct daemon *d, struct uconn *leg, struct uconn *client);
void pool_remove(struct daemon *d, struct uconn *leg);
struct uconn *pool_bind_first(struct daemon *d, struct uconn *client);
void backend_failed(struct daemon *d, int b);

/* services.c */
struct k8s_snapshot;
int service_open(struct daemon *d, int i, const char *name,
		 const struct sockaddr_in *at, const struct sockaddr_in *vip);
void services_k8s(struct daemon *d, const struct k8s_snapshot *s);
void services_tick(struct daemon *d);
void services_drain(struct daemon *d);

/* drain.c */
void drain_start(struct daemon *d);
void drain_tick(struct daemon *d);
void services_close(struct daemon *d);

/* intercept.c */
int intercept_start(struct daemon *d);
void intercept_tick(struct daemon *d);
void intercept_stop(struct daemon *d);

/* flow.c */
void flow_client_settings(struct daemon *d, struct uconn *c,
			  const uint8_t *payload, size_t len);
void flow_leg_bound(struct daemon *d, struct uconn *leg);
void flow_client_window(struct daemon *d, struct uconn *c, uint32_t inc);
void flow_leg_window(struct daemon *d, struct uconn *leg, uint32_t inc);
void flow_progress(struct daemon *d, struct uconn *c);
void flow_retry(struct daemon *d, struct uconn *c);

/* events.c */
int events_handle(void *ctx, void *data, size_t len);

/* metrics.c */
int metrics_open(struct daemon *d);
void metrics_serve(struct daemon *d);

int daemon_run(struct run_opts *opts);

#endif
