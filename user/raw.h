/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Connections that are not HTTP/2 (a TLS ClientHello, HTTP/1.1, a silent
 * client: admission.h): the whole connection goes to one backend chosen by
 * --policy, over a raw leg of its own, and the kernel forwards every byte
 * both ways without parsing it (H2LB_CONN_RAW). The daemon never reads or
 * writes their payload; it makes the pair, passes FINs on once what came
 * before them is out, and closes. docs/datapath.md, "Connections that are
 * not HTTP/2".
 */
#ifndef H2LB_RAW_H
#define H2LB_RAW_H

#include <stdbool.h>

#include "core.h"
#include "lifecycle.h"

/* A_RAW_LEG: open @client's raw leg to a backend (--policy), in *@legp
 * (NULL if none was made). 0: connecting; 1: its connect() failed at
 * once; -1: no backend, or no leg made (the client is to be reset). */
int raw_leg_open(struct lb *lb, struct uconn *client, struct uconn **legp);
/* A_RAW_JOIN: @leg connected: it and its client become each other's
 * peer and enter the sockhash. 0 (the client is connected too), or -1
 * (the pair must be reset). */
int raw_join(struct lb *lb, struct uconn *leg);
/* A_RAW_EOF: @c's peer sent FIN (passed on when its bytes are out) or
 * reset it: true if the pair must be reset. */
bool raw_eof(struct lb *lb, struct uconn *c);
/* A_RAW_RESET: @c and its other end close with RST. */
void raw_reset(struct uconn *c);
/* The tick, for a raw client: FINs waiting to be passed on; IN_IDLE once
 * both directions have ended, else IN_MAX. */
enum conn_input raw_tick(struct lb *lb, struct uconn *client);
/* @c closes (with RST if it was reset): its other end, to be discarded
 * too, or NULL. */
struct uconn *raw_close(struct uconn *c);

#endif
