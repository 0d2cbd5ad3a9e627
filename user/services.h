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

#include "core.h"

/* The epoll tag of Service @i's listener (the daemon's own tags and the
 * connecting legs' cookies never have these values). */
#define SERVICE_TAG(i)	  ((1ull << 63) | 0x100 | (uint64_t)(i))
#define SERVICE_OF_TAG(t) ((int)((t)&0xff))
#define IS_SERVICE_TAG(t)                                                      \
	(((t) & ~0xffull) == ((1ull << 63) | 0x100) &&                         \
	 SERVICE_OF_TAG(t) < H2LB_MAX_SERVICES)

struct uservice {
	bool used;
	char name[160];		   /* NS/NAME:PORT, or "static" */
	struct sockaddr_in vip;	   /* sin_port 0: none (not intercepted) */
	struct sockaddr_in listen; /* where its listener is bound */
	int listen_fd;
};

struct services {
	struct uservice svc[H2LB_MAX_SERVICES];
};

struct k8s_snapshot;

void services_init(struct services *sv);
/* Whether the clients of Service @i get legs from their own addresses:
 * it is intercepted (its clients are pods of this node) and
 * --leg-source is client. */
bool service_own_legs(const struct lb *lb, const struct services *sv, int i);
/* Service 0, on --listen (static backends, --service). */
int services_open_listen(struct lb *lb, struct services *sv);
/* Static backends (--backends, --backends-file) for Service 0. */
int services_load_static(struct lb *lb, struct services *sv);
/* A new view of the cluster: follow every balanced Service port, or the
 * one --service names. */
void services_k8s(struct lb *lb, struct services *sv,
		  const struct k8s_snapshot *s);
/* Once a second: forget removed Services once they are drained. */
void services_tick(struct lb *lb, struct services *sv);
/* Graceful stop: new connections take the kernel's path; the listeners
 * close once what they queued is accepted. */
void services_stop(struct lb *lb, struct services *sv);
void services_close(struct lb *lb, struct services *sv);
const char *service_label(const struct services *sv, int i);

#endif
