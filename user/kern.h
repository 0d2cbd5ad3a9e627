/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel layer: the only code that touches the BPF skeleton, map file
 * descriptors, the mmapped maps, the syscall programs and the pins. Its
 * functions are named for what they do to h2lb's state, not for the bpf()
 * calls behind them.
 *
 * A struct kern is either the daemon's own (kern_load: programs loaded,
 * attached and pinned) or a view of what a daemon pinned (kern_pinned:
 * maps only, for the CLI). The readers work on both.
 */
#ifndef H2LB_KERN_H
#define H2LB_KERN_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "h2lb.h"

struct kern;

/* Table sizes: what the maps hold (kern_load sizes them, and readers
 * find them in the pinned maps' info). */
struct kern_limits {
	uint32_t services;     /* --max-services: Service indexes */
	uint32_t backends;     /* --max-backends: backend indexes */
	uint32_t svc_backends; /* --max-backends-per-service */
	uint32_t conns;	       /* --max-conns: sockets in the sockhash */
	uint32_t streams;      /* --max-streams-total: open streams */
};

struct kern_opts {
	const char *pin_dir;
	struct kern_limits limits;
	int pool_size;	/* --pool-size: legs per backend opening at once */
	bool fast_path; /* --fast-path on: its maps get their size */
	struct h2lb_settings settings; /* .rodata; daemon_cgroup set here */
	/* Called for every event the programs send (kern_events_poll). */
	void (*on_event)(void *ctx, const struct h2lb_event *ev, size_t len);
	void *ctx;
};

/* ---- the daemon's programs ---------------------------------------- */

/* Enter a cgroup of the daemon's own, load, attach sockops there and the
 * parser and verdict to the sockhash, pin the maps. NULL on failure
 * (logged). */
struct kern *kern_load(const struct kern_opts *o);
/* Detach, unpin, leave the cgroup, free. Also for kern_pinned(). */
void kern_close(struct kern *k);
int kern_events_fd(struct kern *k);
/* Hand queued events to the callback, @max at most (the fd stays
 * readable while more wait); returns how many. */
int kern_events_poll(struct kern *k, int max);
/* The closes' ring (struct h2lb_close_event): its fd, and up to @max of
 * them copied to @out; returns how many. */
int kern_closes_fd(struct kern *k);
int kern_closes_take(struct kern *k, struct h2lb_close_event *out, int max);

/* The fast path (docs/fast-path.md): the clients' sockets in cgroup
 * @cg_fd (@path, for messages) that connect to a balanced Service join
 * fast_hash, whose sk_msg program frames what they send. */
int kern_fast_attach(struct kern *k, int cg_fd, const char *path);

/* ---- sockets ------------------------------------------------------- */

/* Sockets accepted on @a (a client of @service, role CLIENT) or
 * connecting to @a (other roles) are known to the kernel as @role; all
 * but clients enter the sockhash at once (clients: kern_client_attach). */
int kern_endpoint_set(struct kern *k, const struct sockaddr_in *a,
		      uint32_t role, uint32_t service, bool add);
/* Put client socket @fd (@cookie) in the sockhash: from now on the
 * kernel parses what it sends and may redirect frames to it. */
int kern_client_attach(struct kern *k, uint64_t cookie, int fd);
/* Socket @cookie is about to connect to backend @backend: sockops takes
 * it as a leg of that backend (a pod can back several Services). */
int kern_leg_expect(struct kern *k, uint64_t cookie, uint32_t backend);
void kern_leg_unexpect(struct kern *k, uint64_t cookie);
/* The record the programs keep for socket @cookie. */
int kern_conn(struct kern *k, uint64_t cookie, struct h2lb_conn *out);
void kern_conn_forget(struct kern *k, uint64_t cookie);
/* The connection WINDOW_UPDATE increments that came since the last call
 * (the verdict sends one event for any number: bpf/verdict.bpf.c). */
int kern_conn_take_window(struct kern *k, uint64_t cookie, uint64_t *inc);
/* A client's mark for its own small WINDOW_UPDATEs (@set
 * H2LB_SET_WAKE_TX) or its legs' (H2LB_SET_WAKE_RX): include/h2lb.h. */
int kern_conn_set_wake(struct kern *k, uint64_t cookie, uint32_t set,
		       uint64_t mark);
/* What @cookie's peer has not acknowledged, and of that what its TCP has
 * not taken, as the daemon measured them: its share of the node's queued
 * bytes (bpf/budget.h). */
int kern_conn_set_queued(struct kern *k, uint64_t cookie, uint64_t queued,
			 uint64_t backlog);
/* Bytes sent to all peers that their TCP has not acknowledged. */
int64_t kern_node_queued(struct kern *k);

/* ---- legs and streams ---------------------------------------------- */

/* At accept: bind a pooled leg to @client, chosen by --policy as every
 * stream's leg is. 0 with *leg and *backend set, or -1 (none pooled). */
int kern_leg_bind_first(struct kern *k, uint64_t client, uint64_t *leg,
			uint32_t *backend);
/* Port @ifindex of a bridge whose address is @mac ("bridge_ports"); NULL:
 * it is a port no more. */
void kern_bridge_port_set(struct kern *k, int ifindex,
			  const unsigned char *mac);
/* Client address @addr has @delta more legs from it ("leg_addrs"). */
void kern_leg_addr_add(struct kern *k, uint32_t addr, int delta);
/* Bind @leg, opened for @client from its own address, as its leg to
 * @backend (and as its leg0 if it has none). 0 or -1. */
int kern_leg_bind(struct kern *k, uint64_t client, uint64_t leg,
		  uint32_t backend);
/* A client that is not HTTP/2: the backend its connection goes to, by
 * --policy (0, or -1: none ready). */
int kern_raw_pick(struct kern *k, uint64_t client, uint32_t *backend);
/* Client @client and its raw leg @leg are each other's peer; neither is
 * parsed (H2LB_CONN_RAW). Before either enters the sockhash. */
int kern_raw_join(struct kern *k, uint64_t client, uint64_t leg);
/* The client's new streams to @backend no longer go to @leg (if the
 * kernel still maps them there). */
void kern_leg_unbind(struct kern *k, uint64_t client, uint32_t backend,
		     uint64_t leg);
/* Close a stream as the verdict would (counters stay exact), as h2lb
 * resetting it (what the client still sends on it is ignored); -1 if it
 * was already gone. */
int kern_stream_close(struct kern *k, uint64_t client, uint32_t stream);
/* What the daemon decided for connection @cookie: the fields of @a that
 * a->set names (H2LB_SET_*). */
int kern_conn_set(struct kern *k, struct h2lb_conn_args *a);
/* The daemon is about to send leg @cookie a SETTINGS frame: counted, and
 * with @wait, the backend's ACK of it (and of all before it) is an event
 * (H2LB_EV_SETTINGS_ACK). */
int kern_settings_sent(struct kern *k, uint64_t cookie, bool wait);
/* The stream window @cookie's backends' DATA is held to (resp_window). */
int kern_resp_window(struct kern *k, uint64_t cookie, uint32_t w);
/* From now on the client's new streams are refused; returns the last
 * stream id opened before (for the GOAWAY), or -1. */
int kern_client_goaway(struct kern *k, uint64_t client);

/* ---- backends and their pools (mmapped) ---------------------------- */

void kern_backend_define(struct kern *k, int b, const struct sockaddr_in *a,
			 uint32_t service);
void kern_backend_set_state(struct kern *k, int b, uint32_t state);
/* Whether backend @b's last connect() failed (raw connections avoid it). */
void kern_backend_set_tcp_down(struct kern *k, int b, bool down);
/* Backend @b's stream window (SETTINGS_INITIAL_WINDOW_SIZE), latest. */
void kern_backend_set_window(struct kern *k, int b, uint32_t window);
uint32_t kern_backend_window(struct kern *k, int b);
uint32_t kern_backend_state(struct kern *k, int b);
uint32_t kern_backend_open_streams(struct kern *k, int b);
void kern_backends_in_use(struct kern *k, int nr);
/* Keep new client sockets off the fast path (@closed), or let them join
 * it again (docs/kernel-facts.md K23). */
int kern_fast_close(struct kern *k, bool closed);
/* Service @svc's list of backend indexes, from which its streams pick:
 * how many, the one at @j, and changes (the caller keeps within
 * limits.svc_backends). A pick running meanwhile sees the list as it
 * was before or after the change. */
uint32_t kern_svc_nr(struct kern *k, int svc);
int kern_svc_at(struct kern *k, int svc, uint32_t j);
void kern_svc_add(struct kern *k, int svc, int b);
void kern_svc_remove(struct kern *k, int svc, int b);
/* Pool slot @i of backend @b: the pooled leg's cookie, or 0. */
uint64_t kern_pool_slot(struct kern *k, int b, int i);
/* Put @cookie in a free slot of @b's pool; false if the pool is full. */
bool kern_pool_put(struct kern *k, int b, uint64_t cookie);
/* Take @cookie out of @b's pool; false if the verdict took it first. */
bool kern_pool_remove(struct kern *k, int b, uint64_t cookie);

/* ---- Services and their VIPs ---------------------------------------- */

void kern_service_publish(struct kern *k, int i, const struct h2lb_service *s);
/* Connections to @vip are the Service's whose listener is @listen. */
void kern_vip_add(struct kern *k, const struct sockaddr_in *vip,
		  const struct sockaddr_in *listen, uint32_t service);
void kern_vip_remove(struct kern *k, const struct sockaddr_in *vip,
		     const struct sockaddr_in *listen);
/* tc and connect4 leave new connections to @vip to the kernel's path. */
void kern_vip_no_new(struct kern *k, const struct sockaddr_in *vip);

/* ---- interception programs ----------------------------------------- */

/* The tc program on @ifindex's ingress (tcx): a link fd, or -1. */
int kern_tc_attach(struct kern *k, int ifindex);
/* The connect and getpeername programs on cgroup @cg_fd. */
int kern_cgroup_intercept_attach(struct kern *k, int cg_fd, const char *path);

/* ---- the daemon's own numbers ---------------------------------------- */

void kern_daemon_stats_publish(struct kern *k,
			       const struct h2lb_daemon_stats *st);

/* ---- readers: the daemon's kern, or a view of the pins --------------- */

/* The maps a daemon pinned in @dir, read-only use. NULL if nothing is
 * pinned there (the reason is in errno; kern_pinned_error says it). */
struct kern *kern_pinned(const char *dir);
/* A sentence for why kern_pinned(@dir) failed with @err. */
void kern_pinned_error(const char *dir, int err, char *buf, size_t len);
/* The table sizes the maps were made with. */
const struct kern_limits *kern_limits(const struct kern *k);
/* Backends in use: @out must hold H2LB_MAX_BACKENDS. */
int kern_read_backends(struct kern *k, struct h2lb_backend *out, int *n);
/* @out holds H2LB_MAX_SERVICES; those past limits.services are zero. */
int kern_read_services(struct kern *k, struct h2lb_service *out);
/* How many backends each Service's list holds: @out holds
 * H2LB_MAX_SERVICES (zero past limits.services). */
int kern_read_svc_nr(struct kern *k, uint32_t *out);
/* @out holds H2LB_CNT_MAX, summed over CPUs. */
int kern_read_counters(struct kern *k, uint64_t *out);
int kern_read_daemon_stats(struct kern *k, struct h2lb_daemon_stats *st);

/*
 * The one walker of the connection and stream maps: calls @cb for each
 * entry until it returns non-zero; bounded by the map's size. Entries
 * may come and go meanwhile (the map is not locked).
 */
int kern_each_conn(struct kern *k,
		   int (*cb)(uint64_t cookie, const struct h2lb_conn *c,
			     void *arg),
		   void *arg);
int kern_each_stream(struct kern *k,
		     int (*cb)(const struct h2lb_stream_key *key,
			       const struct h2lb_stream *st, void *arg),
		     void *arg);

/* Remove what a daemon that died left in @dir (pins) and attached to
 * cgroup @cg_path (sockops). Returns the number of pins removed. */
int kern_unpin_all(const char *dir);
bool kern_cgroup_detach_all(const char *cg_path);

#endif
