/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Structures shared by the BPF programs (bpf/) and the daemon (user/).
 *
 * Every map key and value lives here so that both sides agree on the
 * layout, and so that bpftool prints named fields from the BTF.
 * Addresses are IPv4 in network byte order, ports in host byte order.
 */
#ifndef H2LB_H
#define H2LB_H

#ifdef __BPF__
/* vmlinux.h provides the fixed-width types. */
#else
#include <linux/types.h>
#endif

/*
 * Table sizes. `h2lb run` sizes the maps at load time from its flags
 * (--max-services, --max-backends, --max-backends-per-service,
 * --max-conns, --max-streams-total); the DEF_ values are the flags'
 * defaults, the MAX_ values the most a flag may ask for (and what the
 * daemon's own fixed arrays hold). The programs take the sizes that vary
 * from struct h2lb_settings, never from these.
 */
#define H2LB_DEF_SERVICES     1024 /* balanced Service ports */
#define H2LB_MAX_SERVICES     4096
#define H2LB_DEF_BACKENDS     16384 /* endpoints of all Services together */
#define H2LB_MAX_BACKENDS     65536
#define H2LB_DEF_SVC_BACKENDS 1024  /* endpoints of one Service */
#define H2LB_DEF_CONNS	      65536 /* sockets: clients and backend legs */
#define H2LB_MAX_CONNS	      (1 << 20)
#define H2LB_DEF_STREAMS      131072 /* open streams of all clients */
#define H2LB_MAX_STREAMS      (1 << 22)
#define H2LB_POOL_SLOTS	      16    /* pre-handshaken connections per backend */
#define H2LB_MAX_FRAME	      16384 /* SETTINGS_MAX_FRAME_SIZE, both legs */
/* A header block is one parser message, so it must fit SO_RCVBUF
 * (docs/kernel-facts.md K3; 128 KiB by default). */
#define H2LB_MAX_HEADER_BLOCK 65536
/* SETTINGS_MAX_HEADER_LIST_SIZE, announced to clients and backends: a
 * peer that keeps to it never sends a block over H2LB_MAX_HEADER_BLOCK.
 * A field counts its name, its value and 32 (RFC 7541 4.1), and takes at
 * most 9 bytes more than name and value on the wire, its strings coded
 * raw or Huffman, whichever is shorter (as nghttp2 and Go's hpack, which
 * grpc-go uses, do; RFC 7541 lets an encoder choose the longer, which
 * nothing here covers); frame headers take 9 bytes a frame (4 frames), a
 * HEADERS frame's padding and priority 261 at most. */
#define H2LB_MAX_HEADER_LIST   (H2LB_MAX_HEADER_BLOCK - 512)
#define H2LB_MAX_CONTINUATIONS 16
/* Consecutive frames of one stream that are all there already travel as
 * one message: fewer redirects (docs/kernel-facts.md K13). At most this many
 * frames and H2LB_MAX_HEADER_BLOCK bytes. */
#define H2LB_MAX_RUN_FRAMES 8
#define H2LB_EVENT_DATA	    48 /* payload bytes an event carries */
#define H2LB_LAT_BUCKETS    32 /* log2(us) call latency histogram */

/* Pseudo frame type the daemon writes into the injector socket: its
 * 8-byte payload is the cookie of the socket that the following frames
 * go to. The verdict consumes it; no peer ever sees it. */
#define H2LB_FT_TARGET 0xfe
/* Pseudo frame, no payload: the verdict looks at where the target's
 * sending stands (bpf/budget.h, peer_account), as a redirect to it would,
 * and consumes it. For a client on the fast path's response direction,
 * whose TCP tells nothing more (user/window.c). */
#define H2LB_FT_MEASURE 0xfd
/* Pseudo frame, no payload: the next frame goes to its target however
 * the target is written (H2LB_CONN_LEG_FAST): a frame the verdict handed
 * to the daemon, sent again to a leg of a client that never switched. */
#define H2LB_FT_RETRY 0xfc
/* Where the fast path's client program sends frames that go nowhere
 * (fast_hash key): one end of a loopback pair whose other end drops
 * all it receives. No socket has cookie 0. */
#define H2LB_SINK_KEY 0

enum h2lb_role {
	H2LB_ROLE_NONE = 0,
	H2LB_ROLE_CLIENT = 1,	/* accepted from a client */
	H2LB_ROLE_BACKEND = 2,	/* connection to a backend ("leg") */
	H2LB_ROLE_INJECTOR = 3, /* carries frames the daemon sends */
};

enum h2lb_policy {
	H2LB_POLICY_LEAST_STREAMS = 0,
	H2LB_POLICY_ROUND_ROBIN = 1,
};

enum h2lb_backend_state {
	H2LB_BE_UNUSED = 0,
	H2LB_BE_READY = 1,    /* takes new streams */
	H2LB_BE_DRAINING = 2, /* keeps open streams, takes no new ones */
	H2LB_BE_EJECTED = 3,  /* unreachable: takes nothing */
};

/* conn flags */
#define H2LB_CONN_PREFACE      0x1 /* client preface consumed */
#define H2LB_CONN_SETTINGS_ACK 0x2 /* client acked our SETTINGS (HPACK off) */
#define H2LB_CONN_DEAD	       0x4 /* protocol error seen: drop everything */
#define H2LB_CONN_GOAWAY       0x8 /* GOAWAY sent: new streams are refused */
/* Its legs connect from its own address (--leg-source client): they are
 * opened for it alone, and its streams go only to backends it has one to;
 * never a pooled leg, which comes from the node's address. */
#define H2LB_CONN_OWN_LEGS 0x20
/* Not HTTP/2 (a client whose first bytes were not the preface, and its
 * raw leg): every byte goes to @peer as it comes, nothing is parsed. */
#define H2LB_CONN_RAW 0x10
/* The same-node fast path's response direction (docs/fast-path.md, rule
 * R): what is sent to this client enters its own socket's receive queue
 * (BPF_F_INGRESS), not this socket's TCP. Set once, never cleared. */
#define H2LB_CONN_FAST_RX 0x40
/* A redirect to this client went to its TCP since the last attempt to
 * set H2LB_CONN_FAST_RX began: that attempt fails (bpf/verdict.bpf.c,
 * fast_rx_try). */
#define H2LB_CONN_FAST_RX_BROKE 0x80
/* The fast path's request direction (docs/fast-path.md, "The request
 * direction"). A leg that is written synchronously: by its client's own
 * socket's program and by the daemon's write()s; a redirect to it from
 * anywhere else (the injector, its own PING answers) is handed to the
 * daemon instead (H2LB_EV_DIVERT). Set once, never cleared. */
#define H2LB_CONN_LEG_FAST 0x100
/* A client whose frames its own socket's program sends to its legs;
 * nothing reaches this socket's TCP any more. Set once. */
#define H2LB_CONN_FAST_TX 0x200
/* A client whose switch to H2LB_CONN_FAST_TX failed: it stays on
 * today's path, and its legs, already H2LB_CONN_LEG_FAST, get the
 * daemon's frames through the injector again (H2LB_FT_RETRY). */
#define H2LB_CONN_NEVER_TX 0x400
/* A H2LB_CONN_LEG_FAST leg with nothing left in its psock's queue: its
 * client's program writes to it (bpf/verdict.bpf.c, leg_sync_ok). */
#define H2LB_CONN_LEG_SYNC 0x800
/* injector: the next frame is an H2LB_FT_RETRY's */
#define H2LB_CONN_RETRY 0x1000
/* A switched client's write ended inside a frame: fast_held keeps its
 * bytes for the next write (bpf/verdict.bpf.c, held_save). */
#define H2LB_CONN_HELD 0x2000
/* ... and they are a header block longer than a frame: fast_held_block
 * keeps them, until the next write only. */
#define H2LB_CONN_HELD_BLOCK 0x4000

/* In "new_legs": the leg is raw (H2LB_CONN_RAW). sockops makes its record
 * but leaves it out of the sockhash: the daemon puts it there with its
 * client (docs/datapath.md, "Connections that are not HTTP/2"). */
#define H2LB_RAW_LEG 0x80000000u

/* stream flags */
#define H2LB_ST_CLIENT_END 0x1 /* client sent END_STREAM */
#define H2LB_ST_SERVER_END 0x2 /* backend sent END_STREAM */
#define H2LB_ST_RESPONDED  0x4 /* backend sent response HEADERS */
#define H2LB_ST_WINDOW_SYNC                                                    \
	0x8 /* the client was told its leg's larger
				 * stream window (H2LB_EV_STREAM_WINDOW) */
#define H2LB_ST_RESERVED                                                       \
	0x10 /* holds H2LB_STREAM_RESERVE of the node's
				 * queue until its answer comes (budget.h) */
#define H2LB_ST_BOTH_END (H2LB_ST_CLIENT_END | H2LB_ST_SERVER_END)
/* Over --node-buffer, a peer lags when more than H2LB_LAG_BYTES sent to it
 * wait untaken by its TCP, and its TCP took nothing for H2LB_LAG_MS: the
 * kernel refuses its client new streams (bpf/verdict.bpf.c), the daemon
 * holds its windows (user/window.c). */
#define H2LB_LAG_BYTES (64 << 10)
#define H2LB_LAG_MS    200
/* What a stream may bring before its first frame is seen: its backend's
 * connection window to start with (RFC 9113 6.9.2). */
#define H2LB_STREAM_RESERVE 65536

/* Which accepted sockets (by local address) and which connects (by
 * remote address) sockops inserts into the sockhash, and as what.
 * Backend legs are known by their cookie instead ("new_legs" map). */
struct h2lb_endpoint_key {
	__u32 addr; /* 0 matches any local address (listeners) */
	__u16 port;
	__u16 remote; /* 1: match the peer (connects), 0: the local end */
};

struct h2lb_endpoint {
	__u32 role;    /* enum h2lb_role */
	__u32 service; /* service index for H2LB_ROLE_CLIENT */
};

#define H2LB_FAST_HDR	 9   /* an HTTP/2 frame header */
#define H2LB_FAST_FRAMES 0x1 /* the preface passed: frames follow */
#define H2LB_FAST_RAW	 0x2 /* not HTTP/2: passed as it comes */
/* The switch conditions held at a frame boundary (docs/fast-path.md,
 * "The ordering rule at start-up"). */
#define H2LB_FAST_READY 0x4
/* The accepted socket's verdict wrote to more legs than a pair keeps:
 * the connection stays on today's path. */
#define H2LB_FAST_MANY 0x8
#define H2LB_FAST_LEGS 8

/* One per socket in the sockhash, keyed by socket cookie. */
struct h2lb_conn {
	__u64 peer;	    /* backend: owning client (0 = pooled);
			    * injector: current target */
	__u64 leg0;	    /* client: leg that takes pre-ACK streams */
	__u64 rx_data;	    /* DATA payload bytes received */
	__u64 tx_data;	    /* DATA payload bytes redirected into it */
	__u64 frames;	    /* messages parsed */
	__u64 rx_bytes;	    /* bytes parsed (the watchdog compares it with
			    * what TCP received) */
	__u64 tx_bytes;	    /* bytes redirected into it: every frame, ours
			    * included (flow control compares it with what
			    * the peer's TCP acknowledged) */
	__u64 rx_grant;	    /* DATA bytes we allowed the peer to send in all
			    * (connection window): more is FLOW_CONTROL_ERROR.
			    * The daemon raises it before each WINDOW_UPDATE. */
	__u32 role;	    /* enum h2lb_role */
	__u32 backend;	    /* backend index of a leg */
	__u32 flags;	    /* H2LB_CONN_* */
	__u32 open_streams; /* client: its streams; leg: those bound to it */
	__u32 max_streams;  /* leg: its backend's MAX_CONCURRENT_STREAMS */
	/* The stream window each side starts with: for a leg, its backend's
	 * SETTINGS_INITIAL_WINDOW_SIZE; for a client, the one h2lb told it
	 * (never more than any backend it may be bound to allows). */
	__u32 stream_window;
	__u32 last_stream; /* client: highest stream id opened */
	/* client: the streams it opened lately, to know one that closed
	 * with END_STREAM both ways from one never opened without a
	 * "closed" record (bpf/stream.h, opened_lately): bit i is stream
	 * opened_top - 2 * i. Written only by its own frames' program. */
	__u32 opened_top;
	__u64 opened_bits;
	/* Set by the parser for the verdict, about the message it just cut
	 * (the two run one after the other on a socket): DATA payload bytes
	 * in it, and whether it ends its stream. */
	__u32 run_data;
	__u32 run_end;
	__u32 service;	  /* client: which Service its streams go to */
	__u32 run_multi;  /* leg: the message holds frames of several streams */
	__u32 run_broken; /* a header block broken by another frame */
	/*
	 * What a peer may cost without sending data (bpf/budget.h,
	 * docs/hardening.md). Frame budget: tokens left at calm_ns, refilled
	 * over time; calm_earned is what others added (DATA sent to it) or
	 * took (streams a backend refused because of it), folded in at the
	 * next frame it sends.
	 */
	__s32 calm_tokens;
	__s32 calm_earned;
	__u64 calm_ns;
	/* Bytes redirected to it that its peer's TCP has not acknowledged,
	 * when last looked at: its share of the node's queued bytes; and
	 * those of them not even handed to its TCP yet (the psock's queue:
	 * its peer does not keep up). */
	__u64 queued;
	__u64 backlog;
	/* The most its TCP had taken when last looked at, and when that last
	 * grew (bpf_ktime_get_ns): a peer that reads makes it grow. */
	__u64 handed;
	__u64 progress_ns;
	/* Control frames redirected to it since its TCP last took bytes
	 * beyond ctl_mark (in tx_bytes): those that wait for it. */
	__u32 ctl_out;
	__u32 settings_unacked; /* its SETTINGS the daemon has not ACKed */
	__u64 ctl_mark;
	/* leg: the SETTINGS the daemon sent it (H2LB_SET_SETTINGS_SENT), and
	 * the ACKs its backend sent for them (ACKs of nothing we sent are
	 * not counted); with settings_wait set, the ACK that makes them
	 * equal is an event (H2LB_EV_SETTINGS_ACK), one per wait. */
	__u32 settings_sent;
	__u32 settings_acks;
	__u32 settings_wait;
	/* client: the largest SETTINGS_INITIAL_WINDOW_SIZE of its that a
	 * backend may apply (a lower one counts once every leg ACKed it):
	 * the stream window its backends' DATA is held to */
	__u32 resp_window;
	/* Connection WINDOW_UPDATE increments not yet taken by the daemon,
	 * and whether an event about them is on its way: one at a time. */
	__u64 window_pending;
	__u32 window_event;
	__u32 addr; /* client: its address (the per-address stream limit) */
	/* client: when the daemon needs to hear of WINDOW_UPDATEs that add
	 * up to less than H2LB_WINDOW_STEP (0: at once; the daemon sets
	 * them after each refill, user/window.c): its own once its tx_data
	 * reaches wake_tx, its legs' once its rx_data reaches wake_rx.
	 * Before that, no refill could follow them. */
	__u64 wake_tx;
	__u64 wake_rx;
	/* client: its own socket, when the client is on this node and on
	 * the fast path's sockhash (its cookie; docs/fast-path.md) */
	__u64 fast;
	/* client: that socket's address and port (host order), its pair's
	 * key in fast_pairs: the pair goes when the daemon forgets this
	 * record too, should the record go before the socket closes */
	__u32 fast_addr;
	__u32 fast_port;
	/* client: that socket's struct tcp_sock, noted by its own program:
	 * the verdict reads its psock through it, no reference taken
	 * (bpf/psock.bpf.c, client_psock_sent) */
	__u64 fast_tcp;
	/* What its peer took (acknowledged; on the fast path's response
	 * direction, read from its socket's queue), when last looked at. */
	__u64 acked;
	/* leg: its struct tcp_sock, where the fast path's program looks at
	 * its sending (it cannot take a reference to another socket;
	 * bpf/psock.bpf.c, leg_look) */
	__u64 sk_tcp;
};

/*
 * The same-node fast path (docs/fast-path.md). A client's own socket, in
 * the clients' cgroup, is keyed by its address and port: what the socket
 * h2lb accepts for it sees as its peer ("fast_pairs" map).
 */
struct h2lb_fast_key {
	__u32 addr;
	__u16 port; /* host order */
	__u16 pad;
};

struct h2lb_fast_pair {
	__u64 client; /* the client's own socket (cookie) */
	__u64 anchor; /* the socket h2lb accepted for it; 0 until then */
	__u64 passed; /* bytes its sk_msg program passed to TCP */
	/* Bytes of them the accepted socket's verdict has finished: added
	 * when the verdict of a message is over, after all it changed. */
	__u64 done;
	/* The legs that verdict redirected the client's frames to. */
	__u64 legs[H2LB_FAST_LEGS];
	/* The most bytes the client's application had left unread in its
	 * socket's psock when it wrote (fast.bpf.c, psock_unread). */
	__u32 unread_max;
	__u32 pad2;
	__u32 flags;		 /* H2LB_FAST_* */
	__u32 have;		 /* preface bytes seen; then those of hdr[] */
	__u8 hdr[H2LB_FAST_HDR]; /* the frame header being passed */
	__u8 pad[7];
};

/*
 * A frame of a switched client that its write did not finish (its
 * sk_msg program cannot hold bytes back: a cork that takes more than one
 * frame loses the rest, docs/fast-path.md F9). Its bytes so far wait here,
 * keyed by the accepted socket's cookie ("fast_held"), and go in front of
 * the client's next write. At most a frame of the largest size we allow,
 * or a header block of that size.
 */
#define H2LB_FAST_HELD (H2LB_MAX_FRAME + 16)
struct h2lb_fast_held {
	__u32 n; /* bytes in buf; 0: none */
	__u32 pad;
	__u8 buf[H2LB_FAST_HELD];
};

/*
 * A header block longer than a frame that a switched client's write left
 * unfinished: up to the header block limit that today's path's parser
 * waits for (a client whose write buffer is smaller than the block ends a
 * write inside it). Kept in a map of its own ("fast_held_block") and only
 * until the next write, so that every connection that once held a frame
 * does not keep 64 KiB. Its size makes a map element of exactly 64 KiB,
 * an order-4 allocation (the hash element's header 48 bytes, the key 8,
 * n and pad 8, the memory allocator's list node 8; kernel/bpf/hashtab.c,
 * memalloc.c): one byte more and each would take 128 KiB. A block that
 * keeps to H2LB_MAX_HEADER_LIST is at most 65,321 bytes, and the next
 * frame's header may be here in part: 8 more.
 */
#define H2LB_FAST_HELD_BLOCK (65536 - 48 - 8 - 8 - 8)
struct h2lb_fast_held_block {
	__u32 n; /* bytes in buf; 0: none */
	__u32 pad;
	__u8 buf[H2LB_FAST_HELD_BLOCK];
};

/* A client's connection to one backend. */
struct h2lb_leg_key {
	__u64 client;
	__u32 backend;
	__u32 pad;
};

struct h2lb_stream_key {
	__u64 client; /* client socket cookie */
	__u32 id;     /* HTTP/2 stream id (same on both legs) */
	__u32 pad;
};

struct h2lb_stream {
	__u64 leg;	/* backend connection cookie */
	__u64 start_ns; /* HEADERS seen */
	__u32 backend;
	__u32 flags;	   /* H2LB_ST_* */
	__u32 sent;	   /* DATA payload bytes the client sent on it */
	__u32 free_frames; /* frames without data it had for free */
	/* The response's stream window, as its backend must count it: DATA
	 * it sent less the client's WINDOW_UPDATEs, against the client's
	 * resp_window when the stream opened (or the current one, if
	 * larger). More is the backend's FLOW_CONTROL_ERROR. */
	__s32 resp_used;
	__u32 resp_limit;
};

struct h2lb_backend {
	__u32 addr;
	__u16 port;
	__u16 pad;
	__u32 state; /* enum h2lb_backend_state */
	__u32 open_streams;
	__u32 service;	   /* the Service it is an endpoint of */
	__u32 init_window; /* its SETTINGS_INITIAL_WINDOW_SIZE, latest */
	/* Its last connect() failed: no connection that is not HTTP/2 goes
	 * there (those go to backends whose HTTP/2 handshake fails). */
	__u32 tcp_down;
	__u32 pad2;
	__u64 streams;	  /* streams opened */
	__u64 resets;	  /* streams ended by RST_STREAM */
	__u64 bytes_to;	  /* DATA payload bytes sent to it */
	__u64 bytes_from; /* DATA payload bytes received from it */
	__u64 latency_ns; /* sum of call latencies (HEADERS to end) */
	__u64 latency[H2LB_LAT_BUCKETS]; /* log2(us) HEADERS-to-end */
};

/* Two entries of a Service's list of backend indexes ("svc_backends"). */
struct h2lb_svc_pair {
	__u32 backend[2];
};

/* What changes while the daemon runs ("lb_config" map). Settings fixed
 * at load time (policy, limits, the daemon's cgroup) are the programs'
 * .rodata instead (struct h2lb_settings). */
struct h2lb_config {
	__u32 nr_backends; /* indexes [0, nr_backends) are in use */
	/* Nonzero: no new client socket joins the fast path, because the
	 * node's TCP memory count is above --fast-path-tcp-mem (the daemon
	 * sets it; docs/kernel-facts.md K23). */
	__u32 fast_closed;
};

/* Settings fixed at load time, in each program object's .rodata. */
struct h2lb_settings {
	__u32 policy;	     /* enum h2lb_policy */
	__u32 max_streams;   /* per client connection */
	__u64 daemon_cgroup; /* cgroup/connect4 leaves the daemon's alone */
	/* Hostile peers (docs/hardening.md). 0 turns a limit off. */
	__u32 calm_burst; /* frames without data a connection may send at once */
	__u32 calm_rate;  /* ... and per second after that */
	__u32 ctl_queue;  /* control frames queued toward a peer not reading */
	__u32 addr_streams; /* open streams of all clients of one address */
	__u64 node_queue;   /* bytes queued toward all peers together */
	/* --peer-buffer: bytes a raw connection's peer may leave untaken by
	 * its TCP before both are reset; on the fast path, the receive
	 * buffer of a client's own socket (bpf/fast.bpf.c). */
	__u64 peer_buffer;
	/* Table sizes (--max-backends, --max-backends-per-service): the
	 * backends map's entries, and the length of each Service's list of
	 * backend indexes (maps "svc_nr" and "svc_backends"). */
	__u32 max_backends;
	__u32 svc_backends;
	/* The fast path's request direction (--fast-path on): switched
	 * clients' own sockets send their frames to legs. */
	__u32 fast_tx;
	__u32 pad;
};

/*
 * Interception of Service traffic (`run --intercept`): a connection to
 * a balanced VIP:port is taken to the listening socket of its Service,
 * by tc ingress (bpf_sk_assign) or by cgroup/connect4 (a rewritten
 * connect). Keyed by VIP and port ("vips" map).
 */
struct h2lb_vip_key {
	__u32 addr;
	__u16 port;
	__u16 pad;
};

struct h2lb_vip {
	__u32 listen_addr; /* the Service's listener: tc looks it up, */
	__u16 listen_port; /* connect4 rewrites to it */
	__u16 pad;
	__u32 service;
	__u32 flags; /* H2LB_VIP_* */
};

/* A port of a bridge that tc interception is attached to ("bridge_ports"
 * map, by the port's ifindex): the bridge's address, for the replies to
 * legs from clients' addresses (bpf/intercept.bpf.c). */
struct h2lb_bridge_port {
	__u8 mac[6];
	__u16 pad;
};

/* The daemon is draining: connections already taken stay, new ones take
 * the kernel's path. */
#define H2LB_VIP_NO_NEW 0x1

/* What the daemon balances, for operators ("services" map, by index). */
enum h2lb_service_state {
	H2LB_SVC_UNUSED = 0,
	H2LB_SVC_OPEN = 1,   /* takes connections */
	H2LB_SVC_CLOSED = 2, /* removed: its backends drain */
};

struct h2lb_service {
	char name[96]; /* NS/NAME:PORT, or "static" */
	__u32 vip;     /* 0: not intercepted */
	__u16 vip_port;
	__u16 listen_port;
	__u32 listen_addr;
	__u32 state; /* enum h2lb_service_state */
};

/* Reverse of "vips", keyed by listener ("frontends" map), for
 * cgroup/getpeername4 and 6: the client still sees the VIP as its peer. */
struct h2lb_frontend {
	__u32 vip;
	__u16 port;
	__u16 pad;
};

/* skb->mark bit that tc sets on intercepted packets: a routing rule
 * delivers them locally (the VIP is not a local address) and a raw-table
 * rule keeps conntrack, and with it kube-proxy's DNAT, away from them.
 * Clear of the bits kube-proxy (0xc000) and Cilium (0x0f00) use. */
#define H2LB_INTERCEPT_MARK  0x00200000
#define H2LB_INTERCEPT_TABLE 2562 /* routing table and rule priority */

/*
 * Global counters, one set per CPU ("counters": a per-CPU array of one
 * struct h2lb_counters, so that bpftool prints each by its name). One
 * list: the enum, the struct, `h2lb status` and /metrics all take their
 * names from it. X(ID, name, help)
 */
#define H2LB_COUNTERS(X)                                                         \
	X(FRAMES, frames, "HTTP/2 frames parsed")                                \
	X(REDIRECTS, redirects, "frames redirected to another socket")           \
	X(DROPPED, dropped_frames,                                               \
	  "frames dropped on purpose (PRIORITY, unknown types, closed streams)") \
	X(NO_TARGET, redirect_failures, "frames whose target socket was gone")   \
	X(REFUSED, refused_streams, "streams no backend could take")             \
	X(PINGS, pings_answered, "PINGs answered in the kernel")                 \
	X(EVENTS, events, "events sent to the daemon")                           \
	X(EVENT_DROPS, event_drops,                                              \
	  "events lost because the ring buffer was full")                        \
	X(PROTOCOL_ERRORS, protocol_errors,                                      \
	  "connections failed for protocol errors")                              \
	X(STREAM_ERRORS, stream_errors, "streams reset for protocol errors")     \
	X(INTERCEPTED, intercepted_connections,                                  \
	  "connections to a balanced Service VIP taken by interception")         \
	X(FALLBACKS, intercept_fallbacks,                                        \
	  "connections to a balanced VIP left to the kernel: no listener")       \
	X(MULTI, multi_stream_messages,                                          \
	  "messages from backends that carried frames of several streams")       \
	X(CALM, calm_errors, "connections failed with ENHANCE_YOUR_CALM")        \
	X(PEER_FULL, peer_queue_full,                                            \
	  "control frames not sent: their peer did not read")                    \
	X(NODE_FULL, node_queue_full,                                            \
	  "streams refused: the node's queued bytes are over --node-buffer")     \
	X(PING_EVENTS, pings_to_daemon, "PINGs the daemon answered")             \
	X(ADDR_FULL, addr_streams_full,                                          \
	  "streams refused: their client's address had too many open")           \
	X(RAW_CONNS, raw_connections,                                            \
	  "connections that were not HTTP/2, forwarded whole to one backend")    \
	X(RAW_MESSAGES, raw_messages,                                            \
	  "messages of connections that are not HTTP/2 forwarded")               \
	X(RAW_FULL, raw_queue_full,                                              \
	  "connections that are not HTTP/2 reset: "                              \
	  "their peer left too much untaken")                                    \
	X(FAST_CLIENTS, fast_path_clients,                                       \
	  "client sockets on the node that joined the fast path's sockhash")     \
	X(FAST_PAIRED, fast_path_paired,                                         \
	  "accepted connections paired with their client's own socket")          \
	X(FAST_PASSED, fast_path_passed_bytes,                                   \
	  "bytes the fast path's program framed and passed to TCP")              \
	X(FAST_READY, fast_path_ready,                                           \
	  "client connections that met the fast path's switch conditions")       \
	X(FAST_BEHIND, fast_path_behind,                                         \
	  "writes at a frame boundary while the accepted socket's verdict "      \
	  "had not finished what the client sent before")                        \
	X(FAST_RX, fast_path_rx,                                                 \
	  "client connections whose answers enter the client's own socket")      \
	X(FAST_INGRESS, fast_path_ingress_bytes,                                 \
	  "bytes redirected into client sockets' receive queues")                \
	X(IDLE_RESETS, idle_stream_resets,                                       \
	  "client RST_STREAMs of stream ids it never opened, taken as used")     \
	X(FAST_TX, fast_path_tx,                                                 \
	  "client connections whose frames go from their own socket to legs")    \
	X(FAST_TX_FAILED, fast_path_tx_failed,                                   \
	  "client connections whose switch of requests failed")                  \
	X(FAST_TX_BYTES, fast_path_tx_bytes,                                     \
	  "bytes client sockets' programs redirected to legs")                   \
	X(FAST_SINK, fast_path_sink_frames,                                      \
	  "frames of switched clients consumed (sent to the sink)")              \
	X(FAST_HELD, fast_path_held_frames,                                      \
	  "frames of switched clients that ended a write unfinished (held)")     \
	X(DIVERTED, diverted_frames,                                             \
	  "frames to synchronously written legs handed to the daemon")           \
	X(FAST_CLOSED, fast_path_turned_away,                                    \
	  "client sockets kept off the fast path: the node's TCP memory "        \
	  "count was above --fast-path-tcp-mem")                                 \
	X(FAST_WAIT_LEG, fast_path_waits_leg,                                    \
	  "writes at a frame boundary while a leg of the client still had "      \
	  "bytes queued in its psock")                                           \
	X(FAST_WAIT_RX, fast_path_waits_rx,                                      \
	  "writes at a frame boundary of ready clients whose answers did not "   \
	  "enter their own socket yet")                                          \
	X(FAST_RX_WAIT_ACK, fast_path_rx_waits_acked,                            \
	  "messages of paired clients whose answers stayed on TCP: the "         \
	  "accepted socket's TCP had bytes unacknowledged")                      \
	X(FAST_RX_WAIT_CLIENT, fast_path_rx_waits_client,                        \
	  "messages of paired clients whose answers stayed on TCP: the "         \
	  "client's socket had bytes its psock did not take yet")

enum h2lb_counter {
#define H2LB_CNT_ENUM(id, name, help) H2LB_CNT_##id,
	H2LB_COUNTERS(H2LB_CNT_ENUM)
#undef H2LB_CNT_ENUM
		H2LB_CNT_MAX,
};

/* The same counters as fields: counter H2LB_CNT_X is field x. */
struct h2lb_counters {
#define H2LB_CNT_FIELD(id, name, help) __u64 name;
	H2LB_COUNTERS(H2LB_CNT_FIELD)
#undef H2LB_CNT_FIELD
};

/* Connection WINDOW_UPDATEs worth waking the daemon for at once: what
 * adds up to less waits for a look the refills need (wake_tx, wake_rx);
 * also the smallest refill worth a frame (user/flow.h, FLOW_STEP). */
#define H2LB_WINDOW_STEP 16384

enum h2lb_event_type {
	H2LB_EV_CLOSED = 1,    /* unused: closes have a ring of their own */
	H2LB_EV_SETTINGS,      /* peer SETTINGS (payload in data) */
	H2LB_EV_WINDOW,	       /* connection WINDOW_UPDATE (arg) */
	H2LB_EV_GOAWAY,	       /* stream = last id, arg = error */
	H2LB_EV_LEG_BOUND,     /* peer = leg taken from the pool */
	H2LB_EV_REFUSED,       /* stream no backend could take */
	H2LB_EV_CONN_ERROR,    /* connection error: arg = code, data =
				* struct h2lb_conn_error (from the rules) */
	H2LB_EV_STREAM_ERROR,  /* stream error: arg = code, peer = the
				* other side of the stream, or 0 */
	H2LB_EV_STREAM_WINDOW, /* the client's stream is bound to a leg with
				* a larger stream window: arg = how much */
	H2LB_EV_DATA_PROGRESS, /* another 2^H2LB_PROGRESS_SHIFT DATA bytes in */
	H2LB_EV_PING,	       /* a PING the daemon answers (payload in data) */
	H2LB_EV_DIVERT,	       /* a frame for a synchronously written leg
				* (H2LB_CONN_LEG_FAST), in data; arg = its
				* whole length (more than len: cut) */
	H2LB_EV_SETTINGS_ACK,  /* a leg ACKed all SETTINGS the daemon sent
				* it, and the daemon waited for that */
	H2LB_EV_MAX,
};

/* Which rule a peer broke, for the daemon's log and the GOAWAY's debug
 * data: an operator (or a client's developer) learns what was wrong, not
 * only the code. */
enum h2lb_why {
	H2LB_WHY_NONE = 0,
	H2LB_WHY_PREFACE,	/* not the connection preface first */
	H2LB_WHY_FRAME_SIZE,	/* over the SETTINGS_MAX_FRAME_SIZE we sent */
	H2LB_WHY_FRAME,		/* the frame's own rules: length, flags, ids */
	H2LB_WHY_HEADER_BLOCK,	/* a header block broken by another frame,
				 * or too long (header_block_len) */
	H2LB_WHY_WINDOW,	/* DATA beyond the connection window */
	H2LB_WHY_SETTINGS,	/* a SETTINGS value out of range */
	H2LB_WHY_CALM,		/* over its frame budget, or not reading */
	H2LB_WHY_STREAM_ID,	/* a new stream's id even or not increasing */
	H2LB_WHY_HPACK,		/* the header block's HPACK rules */
	H2LB_WHY_IDLE_STREAM,	/* a frame on a stream never opened */
	H2LB_WHY_CLOSED_STREAM, /* a frame on a stream both sides ended */
	H2LB_WHY_HELD,		/* on the fast path, a frame or header block
				 * written in pieces that could not be kept
				 * for the next write (no memory for it) */
	H2LB_WHY_MAX
};

#define H2LB_NO_FRAME 0xff /* h2lb_conn_error.type: not about one frame */
struct h2lb_conn_error {
	__u8 why;  /* enum h2lb_why */
	__u8 type; /* the frame's type, or H2LB_NO_FRAME */
};

/* The verdict tells the daemon each time a connection has received this
 * many more DATA bytes, so that windows are refilled before they run dry
 * (peers with large windows send no WINDOW_UPDATE for a long time). */
#define H2LB_PROGRESS_SHIFT 15 /* 32 KiB: half the initial window */

/* Why a stream closed, remembered a while (the "closed" map): frames a
 * client sends on it afterwards are errors or, after h2lb reset it,
 * ignored (RFC 9113 5.1). */
enum h2lb_closed_how {
	H2LB_CLOSED_DONE = 1,	   /* END_STREAM both ways */
	H2LB_CLOSED_BY_CLIENT = 2, /* the client reset it */
	H2LB_CLOSED_RESET = 3,	   /* h2lb sent or relayed RST_STREAM */
};

/* The parameters of a SETTINGS frame, each taken in order (the last value
 * of each wins), as the daemon gets them (event data). */
#define H2LB_SETTINGS_IDS 7 /* ids 1..6 */
struct h2lb_settings_frame {
	__u32 set; /* bit (1 << id) for each parameter present */
	__u32 value[H2LB_SETTINGS_IDS];
};

struct h2lb_event {
	__u32 type;   /* enum h2lb_event_type */
	__u32 stream; /* stream id, or GOAWAY last stream id */
	__u64 cookie; /* socket the event is about */
	__u64 peer;   /* related socket (client of a leg, leg bound) */
	__u32 arg;    /* error code, window increment, backend, ... */
	__u32 len;    /* bytes valid in data */
	__u8 data[H2LB_EVENT_DATA];
};

/* Argument of the h2lb_close_stream syscall program: the daemon closes
 * streams through the same code as the verdict, so that counters stay
 * exact while both sides update them. */
struct h2lb_close_args {
	__u64 client;
	__u32 stream;
	__u32 how; /* enum h2lb_closed_how */
};

/* Argument of the h2lb_bind_first syscall program: at accept, before any
 * of its frames is parsed, a new client gets its first leg, chosen by the
 * same code as every stream's (--policy). Out: the leg and its backend.
 * Also of h2lb_bind_leg, which binds @leg, opened for @client from its
 * own address, as its leg to @backend (both in). */
struct h2lb_bind_args {
	__u64 client;
	__u64 leg;     /* out: 0 if no backend had a pooled connection */
	__u32 backend; /* out */
	__u32 pad;
};

/* Argument of the h2lb_conn_set syscall program: set the fields of
 * @cookie's record that @set names (H2LB_SET_*), atomically. */
#define H2LB_SET_RX_GRANT      0x1
#define H2LB_SET_STREAM_WINDOW 0x2
#define H2LB_SET_MAX_STREAMS   0x4
#define H2LB_SET_QUEUED	       0x8  /* its unacknowledged bytes: value */
#define H2LB_TAKE_WINDOW       0x10 /* value = window_pending, now 0 */
#define H2LB_FORGET	       0x20 /* its share of the node's queue goes */
#define H2LB_SET_OWN_LEGS      0x40 /* flags |= H2LB_CONN_OWN_LEGS */
/* tx_bytes += value: what the daemon wrote to the socket itself, before
 * it joined the sockhash (its SETTINGS) */
#define H2LB_SET_TX_DIRECT 0x80
/* settings_sent += 1: the daemon sends a leg SETTINGS; with WAIT, an
 * event when the backend has ACKed it and all before it */
#define H2LB_SET_SETTINGS_SENT 0x100
#define H2LB_SET_SETTINGS_WAIT 0x200
#define H2LB_SET_RESP_WINDOW   0x400  /* a client's resp_window */
#define H2LB_SET_WAKE_TX       0x800  /* a client's wake_tx: value */
#define H2LB_SET_WAKE_RX       0x1000 /* a client's wake_rx: value */
struct h2lb_conn_args {
	__u64 cookie;
	__u64 rx_grant;
	__u64 value;
	__u64 backlog; /* H2LB_SET_QUEUED: with value */
	__u32 stream_window;
	__u32 max_streams;
	__u32 set;
	__u32 resp_window;
};

/* Argument of the h2lb_goaway_client syscall program: from now on the
 * client's new streams are refused; it returns the highest stream id
 * opened before that, the last stream id of the GOAWAY. */
struct h2lb_goaway_args {
	__u64 client;
};

/* Argument of the h2lb_raw_pick and h2lb_raw_join syscall programs: a
 * client that is not HTTP/2 gets a backend by --policy (pick: out
 * @backend), then it and its raw leg become each other's peer (join). */
struct h2lb_raw_args {
	__u64 client;
	__u64 leg;
	__u32 backend;
	__u32 pad;
};

/* What the daemon itself reads and writes (pinned as "daemon_stats"),
 * to show that payloads stay in the kernel. */
struct h2lb_daemon_stats {
	__u64 bytes_read;    /* event bytes from the ring buffer */
	__u64 bytes_written; /* frame bytes written to the injector */
	__u64 events;
	__u64 injected_frames;
	__u64 clients; /* client connections accepted */
	__u64 legs;    /* backend connections opened */
	__u64 watchdog_pings;
	__u64 pid;    /* of the daemon, for `h2lb unload` */
	__s64 queued; /* bytes sent to peers, not acknowledged (budget.h) */
	/* What the daemon turned away or cut off, and repaired. */
	__u64 refused_per_client; /* over --max-conns-per-client */
	__u64 refused_full;	  /* table or fds full: closed at accept */
	__u64 idle_timeouts;	  /* closed after --idle-timeout */
	__u64 handshake_timeouts; /* no preface and SETTINGS in time */
	__u64 reconciles;	  /* passes after events were lost */
	__u64 reconciled;	  /* connections found closed by them */
	__u64 stale_conns;	  /* kernel records of no connection, removed */
	/* --leg-source client: legs opened from clients' own addresses,
	 * those that did not connect or handshake, and clients closed at
	 * accept because none of theirs did (a backend's NetworkPolicy
	 * that denies them, say). */
	__u64 source_legs;
	__u64 source_leg_failures;
	__u64 refused_no_leg;
	__u64 raw_failed; /* not HTTP/2, and no backend could be connected */
	__u64 raw_full;	  /* not HTTP/2, reset by the tick: a peer lagged */
	/* Tables full, now (gauges, set at each change of the backend
	 * sets): Service ports with no index (--max-services), endpoints
	 * over their Service's --max-backends-per-service, and endpoints
	 * with no backend slot left (--max-backends). */
	__u64 services_left_out;
	__u64 endpoints_over_cap;
	__u64 endpoints_no_slot;
	/* The tick's looks at busy connections (streams open) that found
	 * nothing of them moved: each costs a few syscalls, and they are
	 * spaced out while that lasts (conns.c, busy_look). */
	__u64 quiet_looks;
	/* Frames for legs written synchronously that the kernel handed
	 * back, for the daemon to write (user/divert.c). */
	__u64 diverted;
	/* Connections closed with RST because their peer had closed with
	 * bytes for it still in our send queue (conns.c). */
	__u64 reset_unsent;
	/* The node's TCP memory count (/proc/net/sockstat "mem", in pages)
	 * at the last look, and whether it kept new clients off the fast
	 * path then (gauges; daemon.c, fast_gate). */
	__u64 tcp_mem_pages;
	__u64 fast_closed;
	/* Clients' SETTINGS that lowered their stream window, whose ACK
	 * waited for their legs' (settings_ack.c); legs failed because
	 * their backend did not ACK in time. */
	__u64 settings_acks_held;
	__u64 settings_timeouts;
	/* Events read, by type (enum h2lb_event_type; closes, from their
	 * own ring, as H2LB_EV_CLOSED): what the daemon's CPU goes to. */
	__u64 events_by_type[H2LB_EV_MAX];
};

/*
 * A socket closed (sockops): on a ring buffer of its own ("closes"), so
 * that no flood of other events can crowd a close out. It holds a close
 * of every connection the conns map can hold, twice over (CLOSE_WAIT,
 * then CLOSE): 2 * --max-conns * (16 + 8 bytes of ring header), rounded
 * up to a power of 2 at load time (4 MiB for 65,536 connections).
 */
struct h2lb_close_event {
	__u64 cookie;
	__u32 state; /* BPF_TCP_CLOSE_WAIT (peer's FIN) or BPF_TCP_CLOSE */
	__u32 pad;
};

#define H2LB_CLOSE_RING (1 << 20)

#endif /* H2LB_H */
