/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Where a socket's sending stands, and a client's own socket on the
 * fast path (docs/fast-path.md), read through its psock. The functions
 * are psock.bpf.c's: the only object that declares bpf_rdonly_cast (two
 * objects that declare one kfunc do not link).
 */
#ifndef H2LB_BPF_PSOCK_H
#define H2LB_BPF_PSOCK_H

#include "vmlinux.h"

/* What a socket's peer acknowledged (took), and what was handed to its
 * TCP (or, on the fast path's response direction, to its receive
 * queue): the rest of what was redirected to it waits in a psock's
 * queue, uncharged (docs/kernel-facts.md K5). */
struct sent {
	__s64 acked, handed;
};

/* For a client's own socket (@client: its cookie in fast_hash; @tcp: its
 * struct tcp_sock as its program noted it, or 0) that was sent @tx bytes
 * in all, the last of them by BPF_F_INGRESS: what its application has
 * read (acked) and what reached its receive queue (handed). sk_skb
 * programs. 0, or -1 if the socket is gone. */
extern int client_psock_sent(__u64 client, __u64 tcp, __s64 tx, struct sent *s);
/* The same, seen from that socket's own sk_msg program. */
extern int msg_psock_sent(struct sk_msg_md *msg, __s64 tx, struct sent *s);
/* Bytes in @msg's socket's receive queue its application has not read. */
extern __u32 msg_psock_unread(struct sk_msg_md *msg);
/* 1 if everything the client's socket's TCP received went on through its
 * psock (rule R's second half). sk_skb programs. */
extern int client_rx_quiet(__u64 client);
/* Where a leg's sending stands, seen through its tcp_sock's address
 * (struct h2lb_conn.sk_tcp), and the room its send buffer has. */
extern int leg_look(__u64 tcp, struct sent *s, __s64 *room);

#endif
