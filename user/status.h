/* SPDX-License-Identifier: GPL-2.0 */
#ifndef H2LB_STATUS_H
#define H2LB_STATUS_H

#include <stdint.h>

#include "h2lb.h"

/* `h2lb status|backends|conns|streams [-j|-p] [--pin-dir DIR]` */
int status_main(const char *cmd, int argc, char **argv);
/* `h2lb unload [--pin-dir DIR]` */
int unload_main(int argc, char **argv);

#endif
