/* SPDX-License-Identifier: GPL-2.0 */
/* Routing rule and nftables table that tc interception needs (steer.c). */
#ifndef H2LB_STEER_H
#define H2LB_STEER_H

#include <stddef.h>

int steer_install(char *err, size_t errlen);
/* Idempotent. Returns 1 if a rule or route was there. */
int steer_remove(void);

#endif
