/* SPDX-License-Identifier: GPL-2.0 */
/* Prometheus text metrics on --metrics ADDR:PORT (/metrics), /healthz. */
#ifndef H2LB_METRICS_H
#define H2LB_METRICS_H

#include <netinet/in.h>

#include "core.h"
#include "services.h"

/* The listening socket, or -1 (logged). */
int metrics_open(const struct sockaddr_in *at);
/* Answer one request on @listen_fd. */
void metrics_serve(int listen_fd, struct lb *lb, const struct services *sv);

#endif
