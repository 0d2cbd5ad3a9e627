/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kubernetes endpoint discovery: which Services h2lb balances and their
 * endpoints, from the API server's Services and discovery.k8s.io/v1
 * EndpointSlices (list, then watch).
 *
 * The discovery runs in a thread of its own (k8s/watch.c says why) and hands
 * the daemon immutable snapshots: k8s_fd() becomes readable when a new
 * one is ready, k8s_take() returns the newest (older ones that were never
 * taken are dropped: only the current state matters).
 *
 * Addresses are IPv4 in network byte order, ports in host byte order, as
 * in include/h2lb.h.
 */
#ifndef H2LB_K8S_H
#define H2LB_K8S_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum k8s_ep_state {
	K8S_EP_READY = 1,      /* takes new streams */
	K8S_EP_DRAINING = 2,   /* serving but terminating: open streams only */
	K8S_EP_OTHER_ZONE = 3, /* ready, but its zone hints exclude this node's
				* zone: open streams only, as DRAINING */
};

struct k8s_endpoint {
	uint32_t addr; /* pod IPv4, network byte order */
	uint16_t port; /* target port, from the slice's port of that name */
	uint8_t state; /* enum k8s_ep_state */
	uint8_t pad;
};

/* One balanced Service port. Endpoints that are neither ready nor
 * serving-and-terminating are not listed: they are gone. */
struct k8s_service {
	char ns[64];
	char name[64];
	char port_name[16]; /* "" for a Service's single unnamed port */
	uint32_t vip;	    /* ClusterIP, network byte order */
	uint16_t port;	    /* Service port */
	uint16_t pad;
	int nr_eps;
	struct k8s_endpoint *eps; /* sorted by address, then port */
};

struct k8s_snapshot {
	uint64_t seq;  /* 1, 2, ... in the order published */
	char zone[64]; /* the node's zone, "" if unknown */
	int nr_services;
	struct k8s_service *svc;  /* sorted by ns, name, port */
	struct k8s_endpoint *eps; /* storage of all svc[].eps */
};

struct k8s_opts {
	const char *kubeconfig; /* NULL: in-cluster service account */
	const char *context;	/* kubeconfig context, NULL: current-context */
	const char *ns;		/* watch one namespace; NULL: all */
	const char *node_name;	/* NULL: $NODE_NAME; its zone label is used */
	const char *node_zone;	/* overrides the Node's zone label */
};

struct k8s;

/* Load the configuration and start the discovery thread. Returns NULL
 * with a message in @err if the configuration cannot be used. */
struct k8s *k8s_start(const struct k8s_opts *opts, char *err, size_t errlen);
/* Readable (EPOLLIN) when k8s_take() has a new snapshot. */
int k8s_fd(struct k8s *k);
/* The newest snapshot not yet taken, or NULL. The caller owns it. */
struct k8s_snapshot *k8s_take(struct k8s *k);
void k8s_stop(struct k8s *k);

void k8s_snapshot_free(struct k8s_snapshot *s);
/* The Service port @ns/@name:@port (a port name, or a number), or NULL. */
const struct k8s_service *k8s_snapshot_find(const struct k8s_snapshot *s,
					    const char *ns, const char *name,
					    const char *port);
/* The endpoints of @v as a backend set: @out[i] the address, @drain[i]
 * true for those that take no new streams (DRAINING, OTHER_ZONE). Returns
 * the count, at most @max (endpoints past it are left out). */
int k8s_service_addrs(const struct k8s_service *v, struct sockaddr_in *out,
		      bool *drain, int max);
/* One line of JSON (no newline), malloc'd: what `h2lb k8s-dump` prints. */
char *k8s_snapshot_json(const struct k8s_snapshot *s);
const char *k8s_ep_state_str(int state);

/* `h2lb k8s-dump [--kubeconfig FILE] [--namespace NS] [--node-name N]
 * [--node-zone Z] [--once]`: print each new snapshot as a JSON line. */
int k8s_dump_main(int argc, char **argv);

#endif
