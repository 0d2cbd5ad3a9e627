// SPDX-License-Identifier: GPL-2.0
/*
 * The floor of the same-node fast path (docs/latency.md, "The floor"):
 * its two kernel hand-offs and nothing else. A client's writes go to the
 * one leg by sk_msg redirect, in the client's own sendmsg; what the leg
 * receives goes into the client's own socket by sk_skb redirect with
 * BPF_F_INGRESS, through the psock's worker. No frames, no rules, one
 * client and one backend: what h2lb's fast path costs beyond this is
 * h2lb's own.
 */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define LEG    0
#define CLIENT 1

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} socks SEC(".maps");

const volatile __u32 relay_port; /* where the client connects */
__u32 go; /* the relay handed the leg all the client wrote before */

/* The client's socket, as it connects to the relay (the clients' cgroup). */
SEC("sockops")
int floor_sockops(struct bpf_sock_ops *skops)
{
	__u32 key = CLIENT;

	if (skops->op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB &&
	    bpf_ntohl(skops->remote_port) == relay_port)
		bpf_sock_map_update(skops, &socks, &key, BPF_ANY);
	return 1;
}

/* Until go, writes take TCP to the relay, which hands them to the leg in
 * order; then straight to the leg. */
SEC("sk_msg")
int floor_msg(struct sk_msg_md *msg)
{
	if (!go)
		return SK_PASS;
	return bpf_msg_redirect_map(msg, &socks, LEG, 0);
}

SEC("sk_skb/stream_parser")
int floor_parser(struct __sk_buff *skb)
{
	return skb->len;
}

/* What either socket receives by TCP enters the client's socket. */
SEC("sk_skb/stream_verdict")
int floor_verdict(struct __sk_buff *skb)
{
	return bpf_sk_redirect_map(skb, &socks, CLIENT, BPF_F_INGRESS);
}

char LICENSE[] SEC("license") = "GPL";
