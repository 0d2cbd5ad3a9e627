// SPDX-License-Identifier: GPL-2.0
/* The connection table (conn.h). */
#include <stdlib.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/bpf.h>	   /* BPF_TCP_CLOSE_WAIT */
#include <linux/sockios.h> /* SIOCOUTQ */
#include <linux/tcp.h>	   /* struct tcp_info with tcpi_bytes_acked */

#include "conn.h"
#include "h2.h"
#include "h2lb.h"

static unsigned int bucket(uint64_t cookie)
{
	return (cookie * 0x9E3779B97F4A7C15ull) >> 52; /* 12 bits */
}

struct uconn *conn_find(struct conn_table *t, uint64_t cookie)
{
	struct uconn *c = t->bucket[bucket(cookie)];

	while (c && c->cookie != cookie)
		c = c->next;
	return c;
}

struct uconn *conn_new(struct conn_table *t, int fd, int role)
{
	socklen_t len = sizeof(uint64_t);
	struct uconn *c = calloc(1, sizeof(*c));
	unsigned int b;

	if (!c)
		return NULL;
	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c->cookie, &len)) {
		free(c);
		return NULL;
	}
	c->fd = fd;
	c->role = role;
	c->backend = -1;
	c->state = CS_NEW;
	c->init_window = H2_DEFAULT_WINDOW;
	c->stream_window = H2_DEFAULT_WINDOW;
	c->peer_grant = H2_DEFAULT_WINDOW;
	c->our_grant = H2_DEFAULT_WINDOW;
	/* Not known to match the kernel's (a record kept over a restart):
	 * the first mark is written whatever it is (window.c, set_wake). */
	c->wake_tx = c->wake_rx = UINT64_MAX;
	b = bucket(c->cookie);
	c->next = t->bucket[b];
	t->bucket[b] = c;
	t->nr++;
	t->clients += role == H2LB_ROLE_CLIENT;
	return c;
}

static struct addr_count **addr_slot(struct conn_table *t, uint32_t addr)
{
	struct addr_count **p = &t->by_addr[(addr * 0x9E3779B1u) >> 22];

	while (*p && (*p)->addr != addr)
		p = &(*p)->next;
	return p;
}

int conn_peer_count(struct conn_table *t, uint32_t addr)
{
	struct addr_count *a = *addr_slot(t, addr);

	return a ? a->n : 0;
}

void conn_set_peer(struct conn_table *t, struct uconn *c, uint32_t addr)
{
	struct addr_count **p = addr_slot(t, addr);

	if (!*p) {
		*p = calloc(1, sizeof(**p));
		if (!*p)
			return; /* not counted: never limited */
		(*p)->addr = addr;
	}
	(*p)->n++;
	c->peer_addr = addr;
	c->peer_counted = true;
}

static void peer_gone(struct conn_table *t, struct uconn *c)
{
	struct addr_count **p = addr_slot(t, c->peer_addr), *a = *p;

	if (!c->peer_counted || !a)
		return;
	if (--a->n <= 0) {
		*p = a->next;
		free(a);
	}
}

void conn_free(struct conn_table *t, struct uconn *c)
{
	struct uconn **p = &t->bucket[bucket(c->cookie)];

	while (*p && *p != c)
		p = &(*p)->next;
	if (*p) {
		*p = c->next;
		t->nr--;
		t->clients -= c->role == H2LB_ROLE_CLIENT;
		peer_gone(t, c);
	}
	free(c->held);
	free(c);
}

void conn_set_reset(const struct uconn *c)
{
	struct linger rst = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
}

bool conn_reset_unsent(const struct uconn *c)
{
	socklen_t len = sizeof(struct tcp_info);
	struct tcp_info ti;
	int outq = 0;

	/* Only after a FIN: a RST took our queue with it (SIOCOUTQ still
	 * reads what was never acknowledged). BPF's TCP states are the
	 * kernel's. */
	if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) ||
	    ti.tcpi_state != BPF_TCP_CLOSE_WAIT ||
	    ioctl(c->fd, SIOCOUTQ, &outq) || outq <= 0)
		return false;
	conn_set_reset(c);
	return true;
}

int conn_tcp_sent(const struct uconn *c, uint64_t *acked, uint64_t *handed,
		  int64_t *room)
{
	socklen_t len = sizeof(struct tcp_info), blen = sizeof(int);
	struct tcp_info ti;
	int outq = 0, sndbuf = 0;

	if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) ||
	    ioctl(c->fd, SIOCOUTQ, &outq) ||
	    (room && getsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &blen)))
		return -1;
	/* tcpi_bytes_acked also counts the SYN of a connection this end
	 * opened, a leg (a fresh connect()ed socket reads 1): not data, and
	 * one byte still queued to the leg would look taken. */
	*acked = ti.tcpi_bytes_acked;
	if (c->role == H2LB_ROLE_BACKEND && *acked)
		(*acked)--;
	*handed = *acked + (uint64_t)outq;
	if (room)
		*room = (int64_t)sndbuf / 2 - outq;
	return 0;
}
