/* SPDX-License-Identifier: GPL-2.0 */
/* Routing rule and nftables table that tc interception and legs from the
 * clients' addresses need (steer.c). */
#ifndef H2LB_STEER_H
#define H2LB_STEER_H

#include <stdbool.h>
#include <stddef.h>

/* With @legs, also the chain that brings replies to legs bound to a
 * client's address. */
int steer_install(bool legs, char *err, size_t errlen);
/* Idempotent. Returns 1 if a rule or route was there. */
int steer_remove(void);

#endif
