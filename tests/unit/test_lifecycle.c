// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests for the connection lifecycle (user/lifecycle.c): the paths a
 * client and a leg take, what no state accepts, and that the table in
 * docs/architecture.md is the one the code runs (on a mismatch, the test
 * prints the table to paste there).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lifecycle.h"

#define DOC "docs/architecture.md"
#define DOC_BEGIN                                                              \
	"<!-- lifecycle table: generated, checked by test_lifecycle -->\n"
#define DOC_END "<!-- end of lifecycle table -->"

/* Feed @n inputs to a connection in @s; the state it ends in. */
static enum conn_state run(bool client, enum conn_state s,
			   const enum conn_input *in, int n)
{
	for (int i = 0; i < n; i++) {
		struct transition t = lifecycle_step(client, s, in[i]);

		assert_true(t.valid);
		s = t.next;
	}
	return s;
}

static void test_leg_life(void **state)
{
	const enum conn_input life[] = { IN_CONNECTING, IN_CONNECTED,
					 IN_SETTINGS,	IN_BOUND,
					 IN_GOAWAY,	IN_IDLE };
	struct transition t;

	assert_int_equal(run(false, CS_NEW, life, 6), CS_CLOSED);
	t = lifecycle_step(false, CS_HANDSHAKING, IN_SETTINGS);
	assert_int_equal(t.next, CS_POOLED);
	assert_true(t.actions & A_POOL_PUT);
	/* SETTINGS parsed before our connect() completion: preface first. */
	t = lifecycle_step(false, CS_CONNECTING, IN_SETTINGS);
	assert_int_equal(t.next, CS_POOLED);
	assert_true(t.actions & A_SEND_PREFACE);
	/* A backend that closes a bound leg fails its calls; that may be
	 * the client's doing, so only a pooled leg's close counts against
	 * the backend. */
	t = lifecycle_step(false, CS_BOUND, IN_PEER_CLOSED);
	assert_int_equal(t.next, CS_CLOSED);
	assert_true(t.actions & A_FAIL_STREAMS);
	assert_false(t.actions & A_BACKEND_FAILED);
	t = lifecycle_step(false, CS_POOLED, IN_PEER_CLOSED);
	assert_true(t.actions & A_BACKEND_FAILED);
	/* A backend GOAWAY refuses what it never saw; no failure. */
	t = lifecycle_step(false, CS_BOUND, IN_GOAWAY);
	assert_int_equal(t.next, CS_GOING_AWAY);
	assert_true(t.actions & A_REFUSE_ABOVE);
	assert_false(t.actions & A_BACKEND_FAILED);
	/* Taken by the verdict while closing. */
	t = lifecycle_step(false, CS_CLOSING, IN_BOUND);
	assert_int_equal(t.next, CS_CLOSED);
	assert_true(t.actions & A_FAIL_STREAMS);
	/* No handshake in time. */
	t = lifecycle_step(false, CS_HANDSHAKING, IN_DEADLINE);
	assert_true(t.actions & A_BACKEND_FAILED);
}

static void test_client_life(void **state)
{
	const enum conn_input graceful[] = { IN_ACCEPTED, IN_PREFACE,
					     IN_SETTINGS, IN_WINDOW,
					     IN_STOP,	  IN_PEER_CLOSED };
	const enum conn_input failed[] = { IN_ACCEPTED, IN_PREFACE, IN_ERROR,
					   IN_DEADLINE };
	struct transition t;

	assert_int_equal(run(true, CS_NEW, graceful, 6), CS_CLOSED);
	assert_int_equal(run(true, CS_NEW, failed, 4), CS_CLOSED);
	/* Admission: nothing goes to the client, and it is not in the
	 * sockhash, before its first bytes were looked at. */
	t = lifecycle_step(true, CS_NEW, IN_ACCEPTED);
	assert_int_equal(t.next, CS_ADMITTING);
	assert_int_equal(t.actions, A_AWAIT_BYTES);
	t = lifecycle_step(true, CS_ADMITTING, IN_PREFACE);
	assert_int_equal(t.next, CS_OPEN);
	assert_int_equal(t.actions, A_SEND_SETTINGS | A_BIND_FIRST);
	assert_false(lifecycle_step(true, CS_ADMITTING, IN_SETTINGS).valid);
	assert_false(lifecycle_step(true, CS_ADMITTING, IN_STOP).valid);
	assert_int_equal(
		lifecycle_step(true, CS_ADMITTING, IN_PEER_CLOSED).next,
		CS_CLOSED);
	/* One GOAWAY: a second error or stop changes nothing. */
	assert_false(lifecycle_step(true, CS_CLOSING, IN_ERROR).valid);
	assert_false(lifecycle_step(true, CS_GOING_AWAY, IN_STOP).valid);
	/* A client has no pool. */
	assert_false(lifecycle_step(true, CS_OPEN, IN_BOUND).valid);
}

/* Not HTTP/2: a raw leg, joined to its client once connected; a FIN
 * passes on (both stay), a reset or the kernel's bound resets both; a
 * backend that cannot be connected is its failure, and resets the client. */
static void test_raw_life(void **state)
{
	const enum conn_input client[] = { IN_ACCEPTED, IN_NOT_HTTP2,
					   IN_CONNECTED, IN_PEER_CLOSED,
					   IN_IDLE };
	const enum conn_input leg[] = { IN_RAW_CONNECTING, IN_CONNECTED,
					IN_PEER_CLOSED, IN_IDLE };
	struct transition t;

	assert_int_equal(run(true, CS_NEW, client, 5), CS_CLOSED);
	assert_int_equal(run(false, CS_NEW, leg, 4), CS_CLOSED);
	t = lifecycle_step(true, CS_ADMITTING, IN_DEADLINE);
	assert_int_equal(t.next, CS_RAW_CONNECTING);
	assert_int_equal(t.actions, A_RAW_LEG);
	t = lifecycle_step(false, CS_RAW_CONNECTING, IN_CONNECTED);
	assert_int_equal(t.actions, A_RAW_JOIN);
	t = lifecycle_step(false, CS_RAW_CONNECTING, IN_CONNECT_FAILED);
	assert_true(t.actions & A_BACKEND_FAILED);
	assert_true(t.actions & A_RAW_RESET);
	t = lifecycle_step(true, CS_RAW, IN_PEER_CLOSED);
	assert_int_equal(t.next, CS_RAW);
	assert_int_equal(t.actions, A_RAW_EOF);
	t = lifecycle_step(true, CS_RAW, IN_ERROR);
	assert_int_equal(t.actions, A_RAW_RESET | A_CLOSE);
	/* Nothing HTTP/2 reaches a raw connection. */
	assert_false(lifecycle_step(true, CS_RAW, IN_STOP).valid);
	assert_false(lifecycle_step(true, CS_RAW, IN_SETTINGS).valid);
	assert_false(lifecycle_step(false, CS_RAW, IN_BOUND).valid);
	for (int c = 0; c < 2; c++) {
		assert_true(lifecycle_step(c, CS_RAW, IN_DISCARD).valid);
		assert_true(
			lifecycle_step(c, CS_RAW_CONNECTING, IN_DISCARD).valid);
	}
	assert_true(lifecycle_step(true, CS_ADMITTING, IN_DISCARD).valid);
}

/* Whatever the input: closed means gone, close means closed, and every
 * live connection can be discarded (teardown never loops). */
static void test_invariants(void **state)
{
	for (int c = 0; c < 2; c++)
		for (int s = 0; s < CS_MAX; s++)
			for (int in = 0; in < IN_MAX; in++) {
				struct transition t = lifecycle_step(c, s, in);

				if (s == CS_CLOSED || s == CS_INJECTOR)
					assert_false(t.valid);
				if (!t.valid)
					continue;
				assert_int_equal(!!(t.actions & A_CLOSE),
						 t.next == CS_CLOSED);
			}
	for (int s = 0; s < CS_CLOSED; s++) {
		bool leg_state = s == CS_CONNECTING || s == CS_HANDSHAKING ||
				 s == CS_POOLED || s == CS_BOUND;
		bool client_state = s == CS_OPEN;

		if (!leg_state)
			assert_true(lifecycle_step(true, s, IN_DISCARD).valid ||
				    (s != CS_NEW && s != CS_GOING_AWAY &&
				     s != CS_CLOSING && !client_state));
		if (!client_state)
			assert_true(lifecycle_step(false, s, IN_DISCARD).valid);
	}
}

/* What the doc calls each action, in the order of enum conn_action. */
static const char *const action_names[] = {
	"send SETTINGS",    "bind first leg",
	"send preface",	    "ACK SETTINGS",
	"pool put",	    "link client",
	"relay window",	    "window",
	"refill",	    "refuse stream",
	"note GOAWAY",	    "unbind",
	"refuse above",	    "fail streams",
	"detach",	    "backend failed",
	"GOAWAY(NO_ERROR)", "GOAWAY(error)",
	"close soon",	    "close",
	"reset stream",	    "stream window",
	"PING ACK",	    "await first bytes",
	"raw leg",	    "join",
	"pass FIN",	    "reset both",
	"held ACKs",
};

/* The table as Markdown rows, as docs/architecture.md shows it. */
static void describe(FILE *f)
{
	size_t n;
	const struct lifecycle_rule *rules = lifecycle_rules(&n);

	fprintf(f, "| conn | from | input | to | actions |\n");
	fprintf(f, "|---|---|---|---|---|\n");
	for (size_t i = 0; i < n; i++) {
		const struct lifecycle_rule *r = &rules[i];
		const char *sep = "";

		fprintf(f, "| %s | ", r->client ? "client" : "leg");
		for (int s = 0; s < CS_MAX; s++)
			if (r->from & (1u << s)) {
				fprintf(f, "%s%s", sep, conn_state_name(s));
				sep = ", ";
			}
		fprintf(f, " | %s | %s | ", conn_input_name(r->in),
			r->to == LIFECYCLE_STAY ? "(same)"
						: conn_state_name(r->to));
		sep = "";
		for (unsigned int a = 0;
		     a < sizeof(action_names) / sizeof(*action_names); a++)
			if (r->actions & (1u << a)) {
				fprintf(f, "%s%s", sep, action_names[a]);
				sep = ", ";
			}
		fprintf(f, "%s |\n", r->actions ? "" : "-");
	}
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, n + 1);
	if (buf && fread(buf, 1, n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

static void test_doc_matches(void **state)
{
	char *doc = read_file(DOC), *want = NULL, *begin, *end;
	size_t len = 0;
	FILE *f = open_memstream(&want, &len);

	assert_non_null(doc);
	describe(f);
	fclose(f);
	begin = strstr(doc, DOC_BEGIN);
	assert_non_null(begin);
	begin += strlen(DOC_BEGIN);
	end = strstr(begin, DOC_END);
	assert_non_null(end);
	*end = '\0';
	if (strcmp(begin, want))
		fprintf(stderr, "%s differs from the code; the table is:\n%s",
			DOC, want);
	assert_string_equal(begin, want);
	free(want);
	free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_leg_life),
		cmocka_unit_test(test_client_life),
		cmocka_unit_test(test_raw_life),
		cmocka_unit_test(test_invariants),
		cmocka_unit_test(test_doc_matches),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
