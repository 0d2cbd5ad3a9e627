// SPDX-License-Identifier: GPL-2.0
/* Admission of a client by its first bytes (admission.h). */
#include <string.h>

#include "admission.h"
#include "h2.h"

enum admission admission_decide(const struct admission_facts *f)
{
	size_t n = f->len < H2_PREFACE_LEN ? f->len : H2_PREFACE_LEN;

	/* Anything that is not the preface, from its first byte on, is not
	 * HTTP/2 with prior knowledge (RFC 9113 3.4): a TLS ClientHello
	 * starts with 0x16, HTTP/1.1 with a method ("PUT " parts from "PRI "
	 * at its second byte). */
	if (n && memcmp(f->first, H2_PREFACE, n))
		return ADMIT_RAW;
	if (n == H2_PREFACE_LEN)
		return ADMIT_HTTP2;
	/* Silent, or a prefix of the preface that stops: a server-first
	 * protocol, or a client that cannot be served as HTTP/2 anyway. */
	if (f->waited_ms >= f->timeout_ms)
		return ADMIT_RAW;
	return ADMIT_WAIT;
}
