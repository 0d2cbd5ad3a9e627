// SPDX-License-Identifier: GPL-2.0
/*
 * Connections that are not HTTP/2 (raw.h): a client and its raw leg,
 * forwarded byte for byte by the kernel. What the daemon does for them:
 * open the leg, join the two into the sockhash, pass a FIN on only once
 * everything sent before it has been handed to the other side's TCP, and
 * close, with RST when either was reset.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_received */
#include <unistd.h>

#include "kern.h"
#include "log.h"
#include "raw.h"
#include "source.h"

#define RAW_CONNECT_MS	 3000 /* a raw leg's connect(), as a leg's handshake */
#define RAW_IDLE_LOOK_MS 1000 /* a pair with nothing waiting: looked at */
/*
 * While the leg enters the sockhash before its client, what its backend
 * sends must wait: a redirect to a socket not in the sockhash yet drops
 * the bytes (docs/kernel-facts.md K4). tcp_data_ready() wakes the parser
 * only once SO_RCVLOWAT bytes are queued (or a FIN, or the window is all
 * but closed), so a low-water mark above any greeting holds it for the
 * few microseconds until the client is in; 32 KiB does not make
 * tcp_set_rcvlowat() grow the receive buffer (128 KiB by default).
 */
#define RAW_HOLD (32 << 10)

/* From the node's address, or with --leg-source client from the
 * client's own, on its port if that is free (source.h). */
static int raw_socket(const struct uconn *client)
{
	struct sockaddr_in from = { .sin_family = AF_INET,
				    .sin_addr.s_addr = client->peer_addr,
				    .sin_port = client->peer_port };
	int fd;

	if (!client->own_legs)
		return socket(AF_INET,
			      SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	fd = source_socket(&from);
	if (fd < 0 && errno == EADDRINUSE) {
		from.sin_port = 0;
		fd = source_socket(&from);
	}
	return fd;
}

int raw_leg_open(struct lb *lb, struct uconn *client, struct uconn **legp)
{
	struct epoll_event ev = { .events = EPOLLOUT };
	struct uconn *leg;
	uint32_t b;
	int fd, one = 1;

	*legp = NULL;
	client->deadline_ms = UINT64_MAX; /* the leg's deadline counts */
	if (lb->stopping || kern_raw_pick(lb->k, client->cookie, &b) ||
	    (int)b >= lb->bs.nr) {
		pr_warn_ratelimited("client %llx is not HTTP/2: no backend",
				    (unsigned long long)client->cookie);
		return -1;
	}
	fd = raw_socket(client);
	if (fd < 0)
		return -1;
	leg = conn_new(&lb->conns, fd, H2LB_ROLE_BACKEND);
	if (!leg) {
		close(fd);
		return -1;
	}
	*legp = leg;
	if (client->own_legs) { /* the replies find it (steer.c, tc) */
		leg->own = true;
		leg->own_addr = client->peer_addr;
		kern_leg_addr_add(lb->k, leg->own_addr, 1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	leg->raw = true;
	leg->backend = b;
	leg->raw_peer = client;
	client->raw_peer = leg;
	leg->deadline_ms = now_ms() + RAW_CONNECT_MS;
	lb->stats.legs++;
	/* sockops makes its record, raw, and leaves it out of the sockhash. */
	if (kern_leg_expect(lb->k, leg->cookie, b | H2LB_RAW_LEG))
		return -1;
	pr_debug("client %llx is not HTTP/2: raw leg %llx to backend %d",
		 (unsigned long long)client->cookie,
		 (unsigned long long)leg->cookie, b);
	if (connect(fd, (const struct sockaddr *)&lb->bs.be[b].addr,
		    sizeof(lb->bs.be[b].addr)) &&
	    errno != EINPROGRESS)
		return 1;
	ev.data.u64 = leg->cookie;
	epoll_ctl(lb->epfd, EPOLL_CTL_ADD, fd, &ev);
	return 0;
}

/*
 * The leg goes into the sockhash first, held (RAW_HOLD), then the client,
 * whose queued bytes the parser then takes at once (SO_RCVLOWAT runs it:
 * docs/kernel-facts.md K8) and redirects to the leg, which is there; then
 * the leg is let go, and what its backend sent meanwhile follows.
 */
int raw_join(struct lb *lb, struct uconn *leg)
{
	struct uconn *c = leg->raw_peer;
	int hold = RAW_HOLD, one = 1;

	epoll_ctl(lb->epfd, EPOLL_CTL_DEL, leg->fd, NULL);
	if (!c ||
	    setsockopt(leg->fd, SOL_SOCKET, SO_RCVLOWAT, &hold, sizeof(hold)) ||
	    kern_raw_join(lb->k, c->cookie, leg->cookie) ||
	    kern_client_attach(lb->k, leg->cookie, leg->fd) ||
	    kern_client_attach(lb->k, c->cookie, c->fd) ||
	    setsockopt(c->fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one)) ||
	    setsockopt(leg->fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one))) {
		pr_warn_ratelimited("raw leg %llx: cannot join its client: %s",
				    (unsigned long long)leg->cookie,
				    strerror(errno));
		return -1;
	}
	return 0;
}

void raw_reset(struct uconn *c)
{
	c->reset = true;
	if (c->raw_peer)
		c->raw_peer->reset = true;
}

bool raw_eof(struct lb *lb, struct uconn *c)
{
	socklen_t len = sizeof(int);
	int err = 0;

	/* A reset leaves its error on the socket (ECONNRESET); a FIN, and
	 * the close that follows ours, leave none. */
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
		pr_debug("raw %llx: reset (%s)", (unsigned long long)c->cookie,
			 strerror(err));
		return true;
	}
	pr_debug("raw %llx: FIN", (unsigned long long)c->cookie);
	c->fin_in = true;
	c->next_look_ms = 0;
	if (c->raw_peer)
		c->raw_peer->next_look_ms = 0;
	return false;
}

/* Everything TCP received on @from went through the verdict: nothing is
 * left for the parser. Bytes that wait unparsed would wait for a segment
 * that may never come, after a FIN or in a stall (docs/kernel-facts.md
 * K8, K9): SO_RCVLOWAT runs the parser over them, which is harmless when
 * it was about to run anyway. */
static bool all_parsed(struct lb *lb, struct uconn *from)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	struct h2lb_conn k;
	int one = 1;

	if (kern_conn(lb->k, from->cookie, &k) ||
	    getsockopt(from->fd, IPPROTO_TCP, TCP_INFO, &ti, &len))
		return false;
	/* The FIN takes a sequence number: tcpi_bytes_received counts it
	 * (docs/kernel-facts.md K16). */
	if (ti.tcpi_bytes_received <= k.rx_bytes + from->fin_in)
		return true;
	setsockopt(from->fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
	return false;
}

/*
 * What was redirected to @to and its TCP has not taken yet (its psock's
 * queue; bpf/budget.h: what was handed is what its peer acknowledged plus
 * what waits in its send queue, SIOCOUTQ), in *@backlog; and what its TCP
 * took in all, in *@handed. -1 if it cannot be told.
 */
static int raw_backlog(struct lb *lb, struct uconn *to, uint64_t *backlog,
		       uint64_t *handed)
{
	struct h2lb_conn k;
	uint64_t acked;

	if (kern_conn(lb->k, to->cookie, &k) ||
	    conn_tcp_sent(to, &acked, handed, NULL))
		return -1;
	*backlog = k.tx_bytes > *handed ? k.tx_bytes - *handed : 0;
	return 0;
}

/* Everything redirected to @to is in its TCP: a FIN written now follows
 * it. */
static bool all_handed(struct lb *lb, struct uconn *to)
{
	uint64_t backlog, handed;

	return !raw_backlog(lb, to, &backlog, &handed) && !backlog;
}

/*
 * The kernel resets a pair whose peer lags when a message goes to it
 * (bpf/verdict.bpf.c, raw_forward); a sender that sent all it had and
 * stopped sends no more messages. So the tick looks too: @to has more
 * than --peer-buffer waiting untaken and its TCP took nothing for
 * H2LB_LAG_MS. Whether it has bytes waiting at all: *@busy.
 */
static bool lags(struct lb *lb, struct uconn *to, uint64_t now, bool *busy)
{
	uint64_t backlog, handed;

	if (raw_backlog(lb, to, &backlog, &handed))
		return false;
	if (handed != to->raw_handed || !to->raw_moved_ms) {
		to->raw_handed = handed;
		to->raw_moved_ms = now;
	}
	*busy |= backlog > 0;
	return backlog > (uint64_t)lb->opts->peer_buffer &&
	       now - to->raw_moved_ms >= H2LB_LAG_MS;
}

/* @from's peer sent FIN: once all it sent before is out, FIN to @to's. */
static void pass_fin(struct lb *lb, struct uconn *from, struct uconn *to)
{
	if (!from->fin_in || to->shut_out || !all_parsed(lb, from) ||
	    !all_handed(lb, to))
		return;
	if (shutdown(to->fd, SHUT_WR) && errno != ENOTCONN)
		pr_debug("raw %llx: shutdown: %s",
			 (unsigned long long)to->cookie, strerror(errno));
	to->shut_out = true;
	pr_debug("raw %llx: FIN passed on", (unsigned long long)to->cookie);
}

enum conn_input raw_tick(struct lb *lb, struct uconn *client)
{
	struct uconn *leg = client->raw_peer;
	uint64_t now = now_ms();
	bool busy = false;

	if (!leg)
		return IN_MAX;
	/* Bytes waiting: every tick; none: about once a second. */
	if (now >= client->next_look_ms) {
		if (lags(lb, client, now, &busy) || lags(lb, leg, now, &busy)) {
			pr_warn_ratelimited(
				"raw client %llx reset: its peer left more than --peer-buffer untaken for %d ms",
				(unsigned long long)client->cookie,
				H2LB_LAG_MS);
			lb->stats.raw_full++;
			raw_reset(client);
			return IN_DISCARD;
		}
		/* The watchdog's net (K9), without a PING: a nudge. */
		busy |= !all_parsed(lb, client) | !all_parsed(lb, leg);
		client->next_look_ms = busy ? 0 : now + RAW_IDLE_LOOK_MS;
	}
	if (!client->fin_in && !leg->fin_in)
		return IN_MAX; /* both ways open */
	pass_fin(lb, client, leg);
	pass_fin(lb, leg, client);
	if (client->fin_in && client->shut_out && leg->fin_in && leg->shut_out)
		return IN_IDLE;
	return IN_MAX;
}

struct uconn *raw_close(struct uconn *c)
{
	struct uconn *peer = c->raw_peer;

	if (c->reset)
		conn_set_reset(c);
	if (peer)
		c->raw_peer = peer->raw_peer = NULL;
	return peer;
}
