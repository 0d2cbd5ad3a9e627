/* SPDX-License-Identifier: GPL-2.0 */
#ifndef H2LB_STATUS_H
#define H2LB_STATUS_H

#include <stdint.h>

#include "h2lb.h"

#define H2LB_DEFAULT_PIN_DIR "/sys/fs/bpf/h2lb"

/* `h2lb status|backends|conns|streams [-j|-p] [--pin-dir DIR]` */
int status_main(const char *cmd, int argc, char **argv);
/* `h2lb unload [--pin-dir DIR]` */
int unload_main(int argc, char **argv);

/* Readers of the pinned maps, shared with the metrics endpoint. */
int pinned_open(const char *dir, const char *name);
int backends_read(const char *dir, struct h2lb_backend *out, int *n);
int counters_read(const char *dir, uint64_t *out);
/* The "services" map: @out has H2LB_MAX_SERVICES entries. */
int services_read(const char *dir, struct h2lb_service *out);
int daemon_stats_read(const char *dir, struct h2lb_daemon_stats *st);

#endif
