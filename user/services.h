/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Balanced Service ports, each with its listening socket, its backends
 * and, when intercepted, its VIP. Index 0 is the one on --listen (static
 * backends, or --kubernetes --service); with --kubernetes alone, each
 * balanced Service port has an index and a listener of its own.
 */
#ifndef H2LB_SERVICES_H
#define H2LB_SERVICES_H

#include <netinet/in.h>
#include <stdbool.h>

#include "core.h" /* struct lb, and backend.h's backends_left */

/* The epoll tag of Service @i's listener (the daemon's own tags and the
 * connecting legs' cookies never have these values). */
#define SERVICE_TAG(i)	  ((1ull << 63) | (1ull << 62) | (uint64_t)(i))
#define SERVICE_OF_TAG(t) ((int)((t)&0xffffff))
#define IS_SERVICE_TAG(t)                                                      \
	(((t) & ~0xffffffull) == ((1ull << 63) | (1ull << 62)) &&              \
	 SERVICE_OF_TAG(t) < H2LB_MAX_SERVICES)

struct uservice {
	bool used;
	char name[160];		   /* NS/NAME:PORT, or "static" */
	struct sockaddr_in vip;	   /* sin_port 0: none (not intercepted) */
	struct sockaddr_in listen; /* where its listener is bound */
	int listen_fd;
	struct backends_left left; /* of its endpoints, at the last change */
};

struct services {
	struct uservice svc[H2LB_MAX_SERVICES];
	/* Indexes [0, max): --max-services + 1, as index 0 is --listen's
	 * (static backends, --service) and every other Service's starts at 1 */
	int max;
	int left_out;	       /* Service ports with no index, now */
	int left_out_reported; /* ... as the log last said */
	char first_left_out[160];
	/* The last Kubernetes snapshot applied (ours to free), and indexes
	 * freed (Services here, backends in struct backends) as of the last
	 * time the sets were applied: more since, and something was left
	 * out, and they are applied again. */
	struct k8s_snapshot *last;
	unsigned long freed, freed_seen;
};

struct k8s_snapshot;

/* @max Service indexes (--max-services). */
void services_init(struct services *sv, int max);
/* Whether the clients of Service @i get legs from their own addresses:
 * it is intercepted (its clients are pods of this node) and
 * --leg-source is client. */
bool service_own_legs(const struct lb *lb, const struct services *sv, int i);
/* Service 0, on --listen (static backends, --service). */
int services_open_listen(struct lb *lb, struct services *sv);
/* Static backends (--backends, --backends-file) for Service 0. */
int services_load_static(struct lb *lb, struct services *sv);
/* A new view of the cluster: follow every balanced Service port, or the
 * one --service names. @s is services' from now on (freed with the next
 * one, or by services_close). */
void services_k8s(struct lb *lb, struct services *sv, struct k8s_snapshot *s);
/* Once a second: forget removed Services once they are drained. */
void services_tick(struct lb *lb, struct services *sv);
/* Graceful stop: new connections take the kernel's path; the listeners
 * close once what they queued is accepted. */
void services_stop(struct lb *lb, struct services *sv);
void services_close(struct lb *lb, struct services *sv);
const char *service_label(const struct services *sv, int i);

#endif
