/* SPDX-License-Identifier: GPL-2.0 */
/* What `h2lb run` was told (main.c fills it from the command line). */
#ifndef H2LB_OPTS_H
#define H2LB_OPTS_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

enum intercept_mode {
	INTERCEPT_NONE,
	INTERCEPT_TC,	  /* tc ingress + bpf_sk_assign */
	INTERCEPT_CGROUP, /* cgroup/connect4 + getpeername4 */
};

#define H2LB_MAX_INTERCEPT_DEVS 256

/* Where an intercepted client's legs connect from (--leg-source). */
enum leg_source {
	LEG_SOURCE_CLIENT, /* its own address: legs opened for it at accept */
	LEG_SOURCE_NODE,   /* the node's: pooled legs, no connect on accept */
};

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
	/* The clients' cgroup (cgroup interception, and the fast path). */
	const char *intercept_cgroup;
	int fast_path; /* --fast-path on: docs/fast-path.md */
	/* --fast-path-tcp-mem: no new client joins the fast path while the
	 * node's TCP memory count is above this many bytes (0: no limit;
	 * -1, the default: half of net.ipv4.tcp_mem's first mark). */
	int64_t fast_tcp_mem;
	int leg_source;		/* enum leg_source, for intercepted clients */
	int client_legs;	/* LEG_SOURCE_CLIENT: legs opened per client */
#define H2LB_MAX_CLIENT_LEGS 64 /* --client-legs at most */
	int policy;		/* enum h2lb_policy */
	int pool_size;		/* idle connections kept per backend */
	uint32_t max_streams;	/* per client connection */
	uint32_t stream_window; /* SETTINGS_INITIAL_WINDOW_SIZE to clients */
	uint64_t stop_timeout_ms; /* graceful stop: 0 stops at once */
	int takeover_wait_s;	  /* for the pin dir's owner (owner.h) */
	/* Hostile peers (docs/hardening.md): bpf/budget.h */
	uint32_t frame_budget;	       /* frames without data at once */
	uint32_t frame_rate;	       /* ... and per second */
	uint32_t control_queue;	       /* control frames waiting for a peer */
	uint32_t addr_streams;	       /* open streams of one client address */
	int64_t node_buffer;	       /* unacknowledged bytes, all peers */
	int64_t peer_buffer;	       /* flow.c: unacknowledged bytes per peer,
				    * and a client's legs' extra window */
	uint32_t max_conns_per_client; /* per client address; 0: no limit */
	uint64_t idle_timeout_ms;      /* no stream open so long: GOAWAY; 0 */
	uint64_t handshake_timeout_ms; /* no preface and SETTINGS: closed; 0 */
	/* A client silent for so long (or that stops inside the preface)
	 * is not HTTP/2 (admission.h) */
	uint64_t first_bytes_timeout_ms;
	/* Table sizes (include/h2lb.h): the maps are made this big. */
	uint32_t max_services;	/* balanced Service ports */
	uint32_t max_backends;	/* endpoints of all Services */
	uint32_t svc_backends;	/* endpoints of one Service */
	uint32_t max_conns;	/* sockets: clients and backend legs */
	uint32_t streams_total; /* open streams of all clients */
};

#endif
