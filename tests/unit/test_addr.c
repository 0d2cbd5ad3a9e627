// SPDX-License-Identifier: GPL-2.0
/* Unit tests for address and backend list parsing (user/addr.c). */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "addr.h"
#include "h2lb.h"

static void test_parse_ok(void **state)
{
	struct sockaddr_in a;
	char err[128], buf[32];

	assert_int_equal(addr_parse("198.18.1.1:8080", &a, err, sizeof(err)),
			 0);
	assert_int_equal(ntohs(a.sin_port), 8080);
	assert_string_equal(addr_str(&a, buf, sizeof(buf)), "198.18.1.1:8080");
}

static void test_parse_errors(void **state)
{
	const char *bad[] = {
		"198.18.1.1",	 "198.18.1.1:", ":80",	       "198.18.1.1:0",
		"1.2.3.4:65536", "x.y:80",	"1.2.3.4:80a", ""
	};
	struct sockaddr_in a;
	char err[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		err[0] = '\0';
		assert_int_equal(addr_parse(bad[i], &a, err, sizeof(err)), -1);
		assert_true(strlen(err) > 0);
	}
}

static void test_list(void **state)
{
	struct sockaddr_in a[4];
	char err[128];

	assert_int_equal(
		addr_parse_list(
			"198.18.2.11:50051,198.18.2.12:50051,198.18.2.11:50051",
			a, 4, err, sizeof(err)),
		2);
	assert_int_equal(
		addr_parse_list("198.18.2.11:1,bad", a, 4, err, sizeof(err)),
		-1);
	assert_int_equal(addr_parse_list("", a, 4, err, sizeof(err)), -1);
	assert_int_equal(addr_parse_list("1.1.1.1:1,1.1.1.2:1,1.1.1.3:1", a, 2,
					 err, sizeof(err)),
			 -1);
}

static void test_file(void **state)
{
	char path[] = "/tmp/h2lb-addr-XXXXXX";
	struct sockaddr_in a[4];
	char err[256];
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");

	fputs("# backends\n198.18.2.11:50051\n\n  198.18.2.12:50051  # two\n",
	      f);
	fclose(f);
	assert_int_equal(addr_parse_file(path, a, 4, err, sizeof(err)), 2);
	assert_int_equal(ntohs(a[1].sin_port), 50051);

	f = fopen(path, "w");
	fputs("198.18.2.11:50051\nnope\n", f);
	fclose(f);
	assert_int_equal(addr_parse_file(path, a, 4, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":2:")); /* names the line */
	unlink(path);
	assert_int_equal(addr_parse_file(path, a, 4, err, sizeof(err)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
