// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for connection-level flow control (user/flow.c): the cases
 * that were bugs once, and the bounds the windows must keep.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "flow.h"
#include "h2.h"
#include "h2lb.h"

#define W   H2_DEFAULT_WINDOW
#define MIB (1 << 20)

/* A connection that was granted @granted in all and has @used of it. */
static struct flow_side recv_side(int64_t granted, int64_t used)
{
	return (struct flow_side){ .peer_grant = W,
				   .our_grant = granted,
				   .rx = used };
}

/* Window still outstanding toward all legs after @give. */
static int64_t held_after(const struct flow_side *legs, int n,
			  const int64_t *give)
{
	int64_t held = 0;

	for (int i = 0; i < n; i++)
		held += flow_recv_window(&legs[i]) + give[i];
	return held;
}

/*
 * A leg whose stream ended keeps the window it was given ("parked"); it
 * once starved the leg that was still sending: server-streaming calls
 * stalled until their deadline. The active leg must be refilled, and the
 * legs together must still hold no more than the client granted.
 */
static void test_parked_window_on_idle_leg(void **state)
{
	struct flow_side client = { .peer_grant = 2 * W, .our_grant = W };
	struct flow_side legs[2] = {
		recv_side(W, 0), /* idle: all of its 65535 parked */
		recv_side(W, W), /* active: used all of it */
	};
	int64_t give[2];
	bool start[2];
	unsigned int turn = 0;

	assert_true(flow_legs_refill(&client, legs, 2, 4 * MIB, false, &turn,
				     give, start));
	assert_int_equal(give[0], 0);
	assert_true(give[1] >= FLOW_STEP);
	assert_true(held_after(legs, 2, give) <= flow_send_window(&client));
}

/*
 * A client that keeps its connection window at 65535 (nghttp, h2load -W
 * 16) with a second leg bound and idle: that leg's first 65535 bytes
 * cannot reach the client until a stream is bound to it, and then are no
 * different from a new leg's, so the busy leg is refilled. A leg with a
 * stream bound holds all its window against the client's.
 */
static void test_small_client_window_idle_leg(void **state)
{
	struct flow_side client = { .peer_grant = W, .our_grant = W };
	struct flow_side legs[2] = {
		recv_side(W, 0), /* no stream bound */
		recv_side(W, W), /* the download: used all of its 65535 */
	};
	int64_t give[2];
	bool start[2];
	unsigned int turn = 0;

	legs[0].idle = true;
	assert_true(flow_legs_refill(&client, legs, 2, 4 * MIB, false, &turn,
				     give, start));
	assert_int_equal(give[0], 0);
	assert_true(give[1] >= FLOW_STEP);
	assert_true(give[1] <= flow_send_window(&client));

	legs[0].idle = false; /* a stream bound: its 65535 may all come */
	assert_true(flow_legs_refill(&client, legs, 2, 4 * MIB, false, &turn,
				     give, start));
	assert_int_equal(give[1], 0);
}

/*
 * A client whose window stays at 65535 (grpc-js) with streams on two legs
 * at once, both dry: what its window has goes to one leg per refill, and
 * the refills start from the leg the caller turned to, so each gets a
 * turn. Always from the first, the second leg starved while the first
 * stayed busy.
 */
static void test_small_window_busy_legs_take_turns(void **state)
{
	struct flow_side client = { .peer_grant = W, .our_grant = W };
	struct flow_side legs[2] = { recv_side(W, W), recv_side(W, W) };
	int64_t give[2];
	bool start[2];
	unsigned int turn = 0;

	for (int i = 0; i < 2; i++) {
		assert_true(flow_legs_refill(&client, legs, 2, 4 * MIB, false,
					     &turn, give, start));
		assert_true(give[i] >= FLOW_STEP);
		assert_int_equal(give[1 - i], 0);
		assert_int_equal(turn, i + 1);
		assert_true(held_after(legs, 2, give) <=
			    flow_send_window(&client));
	}
}

/*
 * A client with a large window whose leg went idle holding a large share
 * (590 KiB, as seen under grpc): the next stream bound to that leg may
 * take all of it while the busy legs send, so all of it counts, and the
 * busy leg gets only what the client's window has beyond. Counting the
 * idle leg's first 65535 bytes out let it overrun the client by 57 KiB.
 * Only when nothing moved for a while (eager), and for a window not much
 * larger than the legs' first 65535 bytes, do they count out.
 */
static void test_idle_leg_share_held(void **state)
{
	int64_t idle_share = 589827, window = 600000;
	struct flow_side client = { .peer_grant = window,
				    .our_grant = W,
				    .window_max = 4 * MIB };
	struct flow_side legs[2] = {
		recv_side(idle_share, 0), /* no stream bound */
		recv_side(W, W),	  /* busy, dry */
	};
	int64_t give[2];
	bool start[2];
	unsigned int turn = 0;

	legs[0].idle = true;
	assert_true(flow_legs_refill(&client, legs, 2, 4 * MIB, false, &turn,
				     give, start));
	assert_int_equal(give[0], 0);
	assert_true(held_after(legs, 2, give) <= window);

	/* Nothing moved for a while: the same for a window this large. */
	assert_true(flow_legs_refill(&client, legs, 2, 4 * MIB, true, &turn,
				     give, start));
	assert_true(held_after(legs, 2, give) <= window);

	/* A window not much larger than the legs' first 65535 bytes: the
	 * client may be waiting for DATA before it grants more. */
	client.window_max = 300000;
	assert_true(flow_legs_refill(&client, legs, 2, 4 * MIB, true, &turn,
				     give, start));
	assert_true(give[1] > window - idle_share);
}

/*
 * gRPC clients grant megabytes once and then send no WINDOW_UPDATE for a
 * long time: refills must follow the bytes the kernel counted, not wait
 * for a WINDOW_UPDATE.
 */
static void test_refill_without_window_update(void **state)
{
	struct flow_side client = { .peer_grant = 16 * MIB, .our_grant = W };
	struct flow_side leg = recv_side(W, 40000);
	struct flow_side up_leg = { .peer_grant = 16 * MIB };
	struct flow_side up_client = recv_side(W, 40000);
	int64_t give[1];
	bool start[1];
	unsigned int turn = 0;

	assert_true(flow_legs_refill(&client, &leg, 1, 4 * MIB, false, &turn,
				     give, start));
	assert_true(give[0] >= 40000);
	/* The other way: the client sent 40000 to a leg that grants a lot. */
	assert_true(flow_client_refill(&up_client, &up_leg, 1, W, false) >=
		    40000);
}

/*
 * The verdict counts a frame twice: the target's tx first, then the
 * source's rx. Read in the documented order (source first), a frame in
 * flight makes the grant smaller than the truth; read the other way, it
 * was larger than the receiver allowed.
 */
static void test_counter_read_order(void **state)
{
	const int64_t n = 16384; /* a frame in flight */
	struct flow_side truth_client = recv_side(W, 30000 + n);
	struct flow_side truth_leg = { .peer_grant = W, .tx = 30000 + n };
	struct flow_side src_first_client = recv_side(W, 30000);
	struct flow_side src_first_leg = { .peer_grant = W, .tx = 30000 + n };
	struct flow_side tgt_first_client = recv_side(W, 30000 + n);
	struct flow_side tgt_first_leg = { .peer_grant = W, .tx = 30000 };
	int64_t truth, good, bad;

	truth = flow_client_refill(&truth_client, &truth_leg, 1, 4 * MIB,
				   false);
	good = flow_client_refill(&src_first_client, &src_first_leg, 1, 4 * MIB,
				  false);
	bad = flow_client_refill(&tgt_first_client, &tgt_first_leg, 1, 4 * MIB,
				 false);
	assert_true(good <= truth);
	assert_true(bad > truth);
	/* What the client may then send never exceeds what the leg takes. */
	assert_true(flow_recv_window(&truth_client) + good <=
		    flow_send_window(&truth_leg));
}

/*
 * A leg bound late, when the client's window is nearly used up, brings
 * the 65535 bytes every connection starts with; nothing more may be
 * given to any leg until the client grants more.
 */
static void test_leg_bound_late(void **state)
{
	struct flow_side client = { .peer_grant = 4 * W, .tx = 4 * W - 1000 };
	struct flow_side legs[2] = {
		recv_side(4 * W, 4 * W - 1000), /* used all it had */
		recv_side(W, 0),		/* new: its initial window */
	};
	int64_t give[2];
	bool start[2];
	unsigned int turn = 0;

	assert_true(flow_legs_refill(&client, legs, 2, 4 * MIB, false, &turn,
				     give, start));
	assert_int_equal(give[0], 0);
	assert_int_equal(give[1], 0);
}

/*
 * Such a leg is due: its backend sends no DATA until it is told the
 * client's stream window. It is told only once the client's window has
 * room for its 65535 bytes beside what the other legs hold, and until
 * then what the client gives back is kept for it (a slow grpc client was
 * sent 65535 bytes more than it allowed, test_h2lb_client_window). A
 * client whose window is too small to ever cover it gets it at once.
 */
static void test_due_leg_waits_for_room(void **state)
{
	struct flow_side client = { .peer_grant = 64 * W,
				    .tx = 64 * W - 1000,
				    .window_max = 64 * W };
	struct flow_side legs[2] = {
		recv_side(64 * W, 64 * W - 1000), /* busy, holds 1000 */
		recv_side(W, 0),		  /* bound just now */
	};
	int64_t give[2];
	bool start[2];
	unsigned int turn = 0;

	legs[1].due = true;
	assert_true(flow_legs_refill(&client, legs, 2, 4 * MIB, false, &turn,
				     give, start));
	assert_false(start[1]);
	assert_int_equal(give[0] + give[1], 0);

	/* Half of it back: still kept for the due leg, not given away. */
	client.peer_grant += W / 2;
	assert_true(flow_legs_refill(&client, legs, 2, 4 * MIB, false, &turn,
				     give, start));
	assert_false(start[1]);
	assert_int_equal(give[0] + give[1], 0);

	/* Room for it: it starts, and all the legs hold fits the client. */
	client.peer_grant += 2 * W;
	assert_true(flow_legs_refill(&client, legs, 2, 4 * MIB, false, &turn,
				     give, start));
	assert_true(start[1]);
	assert_true(held_after(legs, 2, give) <= flow_send_window(&client));

	/* A window that never covered two legs' first 65535: at once. */
	client.window_max = W;
	client.peer_grant -= 2 * W;
	assert_true(flow_legs_refill(&client, legs, 2, 4 * MIB, false, &turn,
				     give, start));
	assert_true(start[1]);
}

/* Beyond 64 KiB each, the legs share half the client's window, at most
 * --peer-buffer. */
static void test_share_bounded(void **state)
{
	struct flow_side client = { .peer_grant = 64 * MIB };
	struct flow_side legs[4];
	int64_t give[4];
	bool start[4];
	unsigned int turn = 0;

	for (int i = 0; i < 4; i++)
		legs[i] = recv_side(W, W);
	assert_true(flow_legs_refill(&client, legs, 4, 4 * MIB, false, &turn,
				     give, start));
	assert_true(held_after(legs, 4, give) <= 4 * MIB);
	for (int i = 0; i < 4; i++)
		assert_true(give[i] > W);
}

/* A peer that does not read: the windows that feed it stop growing. */
static void test_lagging_peer_holds(void **state)
{
	struct flow_side client = { .peer_grant = 16 * MIB, .lags = true };
	struct flow_side leg = recv_side(W, W);
	struct flow_side up_client = recv_side(W, W);
	struct flow_side up_leg = { .peer_grant = 16 * MIB, .lags = true };
	int64_t give[1] = { -1 };
	bool start[1];
	unsigned int turn = 0;

	assert_false(flow_legs_refill(&client, &leg, 1, 4 * MIB, false, &turn,
				      give, start));
	assert_int_equal(give[0], 0);
	assert_int_equal(flow_client_refill(&up_client, &up_leg, 1, W, false),
			 -1);
	assert_true(flow_lags(5 * MIB, 0, 4 * MIB));
	assert_false(flow_lags(5 * MIB, 2 * MIB, 4 * MIB));
	assert_false(flow_lags(MIB, 2 * MIB, 4 * MIB)); /* acked it all */
}

/* Small refills wait unless the window is nearly dry. */
static void test_small_refills_wait(void **state)
{
	struct flow_side client = recv_side(W, 1000);
	struct flow_side leg = { .peer_grant = W + 1000, .tx = 1000 };

	assert_int_equal(flow_client_refill(&client, &leg, 1, 4 * MIB, false),
			 0);
	client = recv_side(W, W - 100);
	leg = (struct flow_side){ .peer_grant = 4 * W, .tx = W - 100 };
	assert_true(flow_client_refill(&client, &leg, 1, 4 * MIB, false) > 0);
}

/* Nothing moved for a tick: the small refill that waited goes now. */
static void test_eager_refill(void **state)
{
	struct flow_side client = { .peer_grant = 30000, .tx = 0 };
	struct flow_side leg = recv_side(W, W - 20000); /* 20000 left */
	struct flow_side up = recv_side(W, 10000);
	struct flow_side up_leg = { .peer_grant = W + 10000, .tx = 10000 };
	int64_t give[1];
	bool start[1];
	unsigned int turn = 0;

	/* Client window 30000, the leg holds 20000: 10000 may go, a small
	 * refill that waits while the leg has 16384 or more left. */
	assert_true(flow_legs_refill(&client, &leg, 1, 4 * MIB, false, &turn,
				     give, start));
	assert_int_equal(give[0], 0);
	assert_true(flow_legs_refill(&client, &leg, 1, 4 * MIB, true, &turn,
				     give, start));
	assert_true(give[0] > 0);
	assert_true(give[0] + 20000 <= flow_send_window(&client));
	assert_int_equal(flow_client_refill(&up, &up_leg, 1, 4 * MIB, false),
			 0);
	assert_true(flow_client_refill(&up, &up_leg, 1, 4 * MIB, true) > 0);
}

static void test_settings(void **state)
{
	struct h2lb_settings_frame s = { 0 };
	uint32_t win = W;
	bool changed;

	/* No window in it: nothing changes. */
	s.set = 1u << H2_SET_HEADER_TABLE_SIZE;
	assert_int_equal(flow_settings(&s, &win, &changed), 0);
	assert_false(changed);
	s.set |= 1u << H2_SET_INITIAL_WINDOW_SIZE;
	s.value[H2_SET_INITIAL_WINDOW_SIZE] = MIB;
	assert_int_equal(flow_settings(&s, &win, &changed), 0);
	assert_true(changed);
	assert_int_equal(win, MIB);
	assert_int_equal(flow_settings(&s, &win, &changed), 0);
	assert_false(changed);
	s.value[H2_SET_INITIAL_WINDOW_SIZE] = 0x80000000u;
	assert_int_equal(flow_settings(&s, &win, &changed),
			 H2_FLOW_CONTROL_ERROR);
}

/* A connection window may not be pushed past 2^31-1 (RFC 9113 6.9.1). */
static void test_window_overflow(void **state)
{
	assert_true(flow_window_ok(W, 0x7fffffff - W));
	assert_false(flow_window_ok(W, 0x7fffffff - W + 1));
	/* A window that went negative may grow back. */
	assert_true(flow_window_ok(-1000, 0x7fffffff));
}

/*
 * The marks that let the kernel keep small WINDOW_UPDATEs (a gRPC call
 * brought two, each an event, and nearly never a refill): however DATA
 * is spread over the legs up to the slack, no leg is left with less
 * than a step, so a refill it needs is never late; and there is no
 * mark where a refill is already due or waits for the client.
 */
static void test_wake_marks(void **state)
{
	struct flow_side client = { .peer_grant = 8 * MIB, .our_grant = W };
	struct flow_side legs[4] = { recv_side(W, W), recv_side(W, W / 2),
				     recv_side(W, 0), recv_side(W, W) };
	struct flow_side one[1], up_client, up_legs[2];
	int64_t give[4], slack, inc;
	unsigned int turn = 0;
	bool start[4];

	/* Topped up: a mark; at it, every leg still holds a step. */
	assert_true(flow_legs_refill(&client, legs, 4, 4 * MIB, false, &turn,
				     give, start));
	slack = flow_legs_slack(&client, legs, 4, 4 * MIB, give);
	assert_true(slack >= FLOW_STEP);
	for (int i = 0; i < 4; i++)
		assert_true(flow_recv_window(&legs[i]) + give[i] - slack >=
			    FLOW_STEP);

	/* Nothing given to a leg that needs it (the client's window is
	 * used up): every WINDOW_UPDATE counts. */
	client.tx = client.peer_grant;
	assert_int_equal(
		flow_legs_slack(&client, legs, 4, 4 * MIB, (int64_t[4]){ 0 }),
		0);
	client.tx = 0;

	/* A leg due to start waits for room in the client's window. */
	one[0] = recv_side(W, 0);
	one[0].due = true;
	assert_int_equal(
		flow_legs_slack(&client, one, 1, 4 * MIB, (int64_t[1]){ 0 }),
		0);

	/* Near 2^31-1 a kept increment could hide an overflow. */
	client.peer_grant = H2_MAX_WINDOW;
	one[0] = recv_side(4 * MIB, 0);
	assert_int_equal(
		flow_legs_slack(&client, one, 1, 4 * MIB, (int64_t[1]){ 0 }),
		0);

	/* Client to backends: at the mark the client still has half the
	 * room the legs give. */
	up_client = (struct flow_side){ .our_grant = W, .rx = W };
	up_legs[0] = (struct flow_side){ .peer_grant = 4 * MIB };
	up_legs[1] = (struct flow_side){ .peer_grant = 2 * MIB };
	inc = flow_client_refill(&up_client, up_legs, 2, 4 * MIB, false);
	assert_true(inc > 0);
	slack = flow_client_slack(&up_client, up_legs, 2, 4 * MIB, inc);
	assert_true(slack >= FLOW_STEP);
	assert_true(flow_recv_window(&up_client) + inc - slack >= MIB);

	/* A leg that lags holds the client: no mark. */
	up_legs[1].lags = true;
	assert_int_equal(flow_client_slack(&up_client, up_legs, 2, 4 * MIB, 0),
			 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parked_window_on_idle_leg),
		cmocka_unit_test(test_small_client_window_idle_leg),
		cmocka_unit_test(test_idle_leg_share_held),
		cmocka_unit_test(test_refill_without_window_update),
		cmocka_unit_test(test_counter_read_order),
		cmocka_unit_test(test_leg_bound_late),
		cmocka_unit_test(test_due_leg_waits_for_room),
		cmocka_unit_test(test_share_bounded),
		cmocka_unit_test(test_lagging_peer_holds),
		cmocka_unit_test(test_small_refills_wait),
		cmocka_unit_test(test_eager_refill),
		cmocka_unit_test(test_settings),
		cmocka_unit_test(test_window_overflow),
		cmocka_unit_test(test_small_window_busy_legs_take_turns),
		cmocka_unit_test(test_wake_marks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
