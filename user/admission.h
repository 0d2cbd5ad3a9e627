/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Admission of a client: whether its connection is HTTP/2 and may join
 * the sockhash now. The daemon looks at the client's first bytes with
 * recv(MSG_PEEK) while the socket is still outside the sockhash (they
 * stay in its own receive queue) and asks admission_decide(). Pure: it
 * says what to do; conns.c does it.
 */
#ifndef H2LB_ADMISSION_H
#define H2LB_ADMISSION_H

#include <stddef.h>
#include <stdint.h>

/* At most this many bytes are looked at: the client preface's length. */
#define ADMISSION_PEEK 24

enum admission {
	ADMIT_WAIT,  /* a prefix of the preface, or nothing yet: wait */
	ADMIT_HTTP2, /* the client preface: balance its streams */
	ADMIT_RAW,   /* not HTTP/2 (TLS, HTTP/1.1, a silent client) */
};

/* What is known about a client being admitted. */
struct admission_facts {
	const uint8_t *first; /* its first bytes (peeked), */
	size_t len;	      /* ... at most ADMISSION_PEEK */
	uint64_t waited_ms;   /* since it was accepted */
	uint64_t timeout_ms;  /* --first-bytes-timeout */
};

/* The one place that decides whether a client is admitted now. */
enum admission admission_decide(const struct admission_facts *f);

#endif
