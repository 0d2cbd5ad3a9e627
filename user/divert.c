// SPDX-License-Identifier: GPL-2.0
/*
 * Frames for legs that are written synchronously (docs/fast-path.md, "The
 * request direction"). Once a leg's client sends its frames from its own
 * socket, every write to the leg must be whole and synchronous (rule W):
 * a frame the daemon sends it through the injector would be queued to
 * the leg's psock, whose worker may send it in pieces around the client's
 * writes. So the verdict hands such frames back (H2LB_EV_DIVERT), in the
 * order it met them, and they wait here, in that order, until they can
 * go:
 *   - the client switched (H2LB_CONN_FAST_TX): once the leg's TCP took
 *     all that was queued to it before (its psock's queue is empty, and
 *     nothing is queued to it any more), written with write(), whole,
 *     when its send buffer has room with half of it kept free (rule H);
 *   - the client's switch failed (H2LB_CONN_NEVER_TX): through the
 *     injector again, each after an H2LB_FT_RETRY, which queues it like
 *     any frame (the client's own frames are queued too);
 *   - neither yet (a switch under way in the client's program): the
 *     next tick looks again;
 *   - the leg detached from its client (it failed, and closes soon):
 *     written as in the first case, once it goes whole.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "core.h"
#include "divert.h"
#include "h2.h"
#include "inject.h"
#include "kern.h"
#include "log.h"

/* Bytes that may wait for one leg: its frames are a few small ones at a
 * time; more means a leg that takes nothing, which closes. */
#define HELD_MAX (64 << 10)

void divert_send(struct lb *lb, struct uconn *leg, const void *f, size_t n)
{
	uint8_t *held;

	if (leg->held_len + n > HELD_MAX) {
		pr_warn("leg %llx: over %d bytes wait for it; dropped",
			(unsigned long long)leg->cookie, HELD_MAX);
		return;
	}
	held = realloc(leg->held, leg->held_len + n);
	if (!held)
		return;
	memcpy(held + leg->held_len, f, n);
	leg->held = held;
	leg->held_len += n;
	divert_flush(lb, leg);
}

void divert_take(struct lb *lb, struct uconn *leg, const struct h2lb_event *ev)
{
	const uint8_t *f = ev->data;
	size_t n = ev->len;
	uint8_t ga[H2_FRAME_MAX];

	if (ev->arg > ev->len) {
		/* Longer than an event: only a GOAWAY with debug data is;
		 * it goes without them. */
		if (n < H2_HDR_LEN + 8 || f[3] != H2_GOAWAY) {
			pr_warn("leg %llx: a frame of %u bytes for it was lost",
				(unsigned long long)leg->cookie, ev->arg);
			return;
		}
		n = h2_goaway(ga, h2_be32(f + H2_HDR_LEN) & H2_MAX_STREAM,
			      h2_be32(f + H2_HDR_LEN + 4), NULL);
		f = ga;
	}
	lb->stats.diverted++;
	divert_send(lb, leg, f, n);
}

/* Whether @n bytes written to @leg now go whole, after all that was
 * queued to it (rules W and H). */
static bool leg_writable(struct lb *lb, struct uconn *leg, size_t n)
{
	uint64_t acked, handed;
	struct h2lb_conn k;
	int64_t room;

	if (kern_conn(lb->k, leg->cookie, &k) ||
	    conn_tcp_sent(leg, &acked, &handed, &room))
		return false;
	if (handed < k.tx_bytes)
		return false; /* its psock's queue is not empty yet */
	return (int64_t)n <= room;
}

/* Each frame of @f again, through the injector, after a RETRY. */
static void reinject(struct lb *lb, struct uconn *leg, const uint8_t *f,
		     size_t n)
{
	uint8_t buf[H2_HDR_LEN + H2_FRAME_MAX];
	size_t pos = 0;

	while (pos + H2_HDR_LEN <= n) {
		size_t len =
			H2_HDR_LEN + ((size_t)f[pos] << 16 |
				      (size_t)f[pos + 1] << 8 | f[pos + 2]);

		if (pos + len > n || len > H2_FRAME_MAX)
			break;
		memset(buf, 0, H2_HDR_LEN);
		buf[3] = H2LB_FT_RETRY;
		memcpy(buf + H2_HDR_LEN, f + pos, len);
		inject(&lb->inj, leg->cookie, buf, H2_HDR_LEN + len);
		pos += len;
	}
}

void divert_flush(struct lb *lb, struct uconn *leg)
{
	struct h2lb_conn cl;
	ssize_t w;

	if (!leg->held_len)
		return;
	/* A leg detached from its client (it failed, and closes soon) gets
	 * nothing more from it: its streams were ended and its binding
	 * removed first. What waits is its last word, the GOAWAY of its
	 * connection error, which goes as soon as it goes whole (dropped
	 * here, it was lost in 2 of 3 runs of test_h2lb_rogue_backend on
	 * the fast path). */
	if (leg->client) {
		if (kern_conn(lb->k, leg->client->cookie, &cl)) {
			/* Its client is gone: so will the leg be. */
			leg->held_len = 0;
			return;
		}
		if (cl.flags & H2LB_CONN_NEVER_TX) {
			reinject(lb, leg, leg->held, leg->held_len);
			leg->held_len = 0;
			return;
		}
		if (!(cl.flags & H2LB_CONN_FAST_TX))
			return;
	}
	if (!leg_writable(lb, leg, leg->held_len))
		return;
	w = send(leg->fd, leg->held, leg->held_len,
		 MSG_DONTWAIT | MSG_NOSIGNAL);
	if (w < 0) {
		if (errno != EAGAIN && errno != EINTR)
			leg->held_len = 0; /* broken: it closes */
		return;
	}
	/* Room was checked: a short write is not expected, and what is
	 * left goes next, still before anything else of ours. */
	lb->inj.bytes += w;
	lb->inj.frames++;
	memmove(leg->held, leg->held + w, leg->held_len - w);
	leg->held_len -= w;
}
