// SPDX-License-Identifier: GPL-2.0
/*
 * The command line's machinery (cli.h): an option table becomes
 * getopt_long's arguments, the command's --help and its error messages.
 * Errors go to stderr, or, after -j or -p, to stdout as one JSON object,
 * as bpftool does.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "cli.h"
#include "json_writer.h"

#define CLI_MAX_OPTS 48
#define HELP_COLUMN  30 /* where help text starts, at most */

static const struct cli_opt help_opt = {
	.name = "help",
	.short_opt = 'h',
	.help = "show this help",
};

static const char *cmd_name; /* argv[0] of the command: "run", ... */
static bool json, pretty;    /* -j, -p */
static bool holding;	     /* parsing: keep the first mistake, say it after */
static bool held;	     /* a message waits in held_msg */
static char held_msg[512];

static void say(const char *msg)
{
	if (cmd_name)
		fprintf(stderr, "h2lb %s: %s\n", cmd_name, msg);
	else
		fprintf(stderr, "h2lb: %s\n", msg);
}

static void report(const char *msg)
{
	if ((json || holding) && !held) {
		snprintf(held_msg, sizeof(held_msg), "%s", msg);
		held = true;
	} else if (!holding) {
		say(msg);
	}
}

void cli_err(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	report(msg);
}

void cli_opt_err(const struct cli_opt *opt, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int n;

	n = snprintf(msg, sizeof(msg), "--%s: ", opt->name);
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - n, fmt, ap);
	va_end(ap);
	report(msg);
}

int cli_exit(int rc)
{
	struct json_writer w;

	if (json && rc) {
		jw_init(&w, stdout, pretty);
		jw_obj_start(&w);
		if (held)
			jw_kv_str(&w, "error", held_msg);
		else
			jw_kv_str(&w, "error", "failed");
		jw_obj_end(&w);
		jw_end(&w);
		fflush(stdout);
	} else if (held) {
		say(held_msg); /* a warning of a command that went on */
	}
	held = false;
	return rc;
}

int cli_set_json(const struct cli_opt *opt, const char *arg, void *cfg)
{
	json = true;
	if (opt->short_opt == 'p')
		pretty = true;
	return 0;
}

struct json_writer *cli_json_writer(struct json_writer *w)
{
	if (!json)
		return NULL;
	jw_init(w, stdout, pretty);
	return w;
}

int cli_parse_uint(const struct cli_opt *opt, const char *arg, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(arg, &end, 10);
	if (!*arg || *end || errno || *out < opt->min || *out > opt->max) {
		cli_opt_err(opt, "'%s' is not a number in %ld-%ld", arg,
			    opt->min, opt->max);
		return -1;
	}
	return 0;
}

/* A byte count with an optional K or M suffix (powers of 1024). */
int cli_parse_size(const struct cli_opt *opt, const char *arg, long *out)
{
	int shift = 0;
	char *end;

	errno = 0;
	*out = strtol(arg, &end, 10);
	if (*end == 'K' || *end == 'k')
		shift = 10, end++;
	else if (*end == 'M' || *end == 'm')
		shift = 20, end++;
	else if (*end == 'G' || *end == 'g')
		shift = 30, end++;
	if (!*arg || *end || errno || *out < 0 || *out > opt->max >> shift ||
	    (*out << shift) < opt->min) {
		cli_opt_err(
			opt,
			"'%s' is not a size in %ldK-%ldM (bytes, or with K, M or G)",
			arg, opt->min >> 10, opt->max >> 20);
		return -1;
	}
	*out <<= shift;
	return 0;
}

static void store_uint(void *p, size_t size, long v)
{
	switch (size) {
	case sizeof(uint8_t):
		*(uint8_t *)p = v;
		break;
	case sizeof(uint16_t):
		*(uint16_t *)p = v;
		break;
	case sizeof(uint32_t):
		*(uint32_t *)p = v;
		break;
	case sizeof(uint64_t):
		*(uint64_t *)p = v;
		break;
	default:
		abort(); /* a table bug */
	}
}

/* "'x' is not a, b or c" */
static void enum_err(const struct cli_opt *opt, const char *arg)
{
	char list[256] = "";
	size_t n = 0;

	for (const struct cli_word *w = opt->words; w->name; w++)
		n += snprintf(list + n, sizeof(list) - n, "%s%s",
			      w == opt->words ? ""
			      : w[1].name     ? ", "
					      : " or ",
			      w->name);
	cli_opt_err(opt, "'%s' is not %s", arg, list);
}

static int set_opt(const struct cli_opt *opt, const char *arg, void *cfg)
{
	void *p = (char *)cfg + opt->off;
	char err[256];
	long v;

	switch (opt->type) {
	case CLI_FLAG:
		*(bool *)p = true;
		return 0;
	case CLI_STR:
		*(const char **)p = arg;
		return 0;
	case CLI_UINT:
		if (cli_parse_uint(opt, arg, &v))
			return -1;
		store_uint(p, opt->size, v);
		return 0;
	case CLI_SIZE:
		if (cli_parse_size(opt, arg, &v))
			return -1;
		store_uint(p, opt->size, v);
		return 0;
	case CLI_ENUM:
		for (const struct cli_word *w = opt->words; w->name; w++) {
			if (!strcmp(arg, w->name)) {
				*(int *)p = w->val;
				return 0;
			}
		}
		enum_err(opt, arg);
		return -1;
	case CLI_ADDR:
		if (addr_parse(arg, p, err, sizeof(err))) {
			cli_opt_err(opt, "%s", err);
			return -1;
		}
		return 0;
	case CLI_FUNC:
		return opt->set(opt, arg, cfg);
	}
	return -1;
}

/* What getopt_long found wrong with argv[optind - 1] (or its letters). */
static void getopt_err(const struct cli_cmd *cmd, int count, int c, char **argv)
{
	const char *a = argv[optind - 1];
	int len = strcspn(a, "="), n = 0;

	if (optopt > 0 && optopt < 256) {
		if (c == ':')
			cli_err("option requires an argument -- '%c'", optopt);
		else
			cli_err("invalid option -- '%c'", optopt);
		return;
	}
	if (optopt) { /* a long option: its full name */
		const char *name = optopt - 256 < count
					   ? cmd->opts[optopt - 256].name
					   : help_opt.name;

		if (c == ':')
			cli_err("option '--%s' requires an argument", name);
		else
			cli_err("option '--%s' doesn't allow an argument",
				name);
		return;
	}
	for (const struct cli_opt *o = cmd->opts; o->name; o++)
		n += len > 2 && !strncmp(o->name, a + 2, len - 2);
	if (n > 1)
		cli_err("option '%.*s' is ambiguous", len, a);
	else
		cli_err("unrecognized option '%s'", a);
}

int cli_parse(const struct cli_cmd *cmd, int argc, char **argv, void *cfg)
{
	struct option lo[CLI_MAX_OPTS + 2] = { 0 };
	char shorts[3 * CLI_MAX_OPTS + 4], *s = shorts;
	const struct cli_opt *opt;
	bool bad = false;
	int n, c;

	cmd_name = argv[0];
	*s++ = ':'; /* a missing argument: ':', not '?' */
	*s++ = 'h';
	for (n = 0; n < CLI_MAX_OPTS && cmd->opts[n].name; n++) {
		opt = &cmd->opts[n];
		lo[n].name = opt->name;
		lo[n].has_arg = opt->arg ? required_argument : no_argument;
		lo[n].val = 256 + n;
		if (opt->short_opt) {
			*s++ = opt->short_opt;
			if (opt->arg)
				*s++ = ':';
		}
	}
	lo[n].name = help_opt.name;
	lo[n].val = 256 + n;
	*s = '\0';

	opterr = 0;
	optind = 1;
	holding = true;
	while ((c = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
		if (c == '?' || c == ':') {
			if (!bad)
				getopt_err(cmd, n, c, argv);
			bad = true;
			continue;
		}
		if (c == 'h' || c == 256 + n) {
			if (bad)
				continue;
			cli_usage(cmd, cmd_name, stdout);
			exit(0);
		}
		if (c >= 256) {
			opt = &cmd->opts[c - 256];
		} else {
			for (opt = cmd->opts; opt->short_opt != c; opt++)
				;
		}
		/* After a mistake, only -j and -p count: they say how to
		 * report it. */
		if (bad && opt->set != cli_set_json)
			continue;
		if (set_opt(opt, optarg, cfg))
			bad = true;
	}
	if (!bad && optind < argc) {
		cli_err("unexpected argument '%s'", argv[optind]);
		bad = true;
	}
	holding = false;
	if (!bad)
		return 0;
	cli_exit(2);
	if (!json)
		fprintf(stderr, "Try 'h2lb %s -h'.\n", cmd_name);
	return 2;
}

static int opt_label(const struct cli_opt *o, char *buf, size_t len)
{
	return snprintf(buf, len, "  %c%c%c --%s%s%s", o->short_opt ? '-' : ' ',
			o->short_opt ? o->short_opt : ' ',
			o->short_opt ? ',' : ' ', o->name, o->arg ? " " : "",
			o->arg ? o->arg : "");
}

static void opt_help(const struct cli_opt *o, int col, FILE *f)
{
	const char *h = o->help, *nl;
	char label[128];
	int len = opt_label(o, label, sizeof(label));

	if (len + 2 > col)
		fprintf(f, "%s\n%*s", label, col, "");
	else
		fprintf(f, "%-*s", col, label);
	while ((nl = strchr(h, '\n'))) {
		fprintf(f, "%.*s\n%*s", (int)(nl - h), h, col, "");
		h = nl + 1;
	}
	fprintf(f, "%s\n", h);
}

void cli_usage(const struct cli_cmd *cmd, const char *name, FILE *f)
{
	const char *u = cmd->usage, *nl;
	const struct cli_opt *o;
	char label[128];
	int col = opt_label(&help_opt, label, sizeof(label)) + 2, len;

	for (bool first = true; u; first = false) {
		nl = strchr(u, '\n');
		len = nl ? nl - u : (int)strlen(u);
		fprintf(f, "%sh2lb %s%s%.*s\n", first ? "Usage: " : "       ",
			name, len ? " " : "", len, u);
		u = nl ? nl + 1 : NULL;
	}
	if (cmd->doc)
		fprintf(f, "\n%s\n", cmd->doc);
	for (o = cmd->opts; o->name; o++) {
		len = opt_label(o, label, sizeof(label)) + 2;
		if (len > col)
			col = len;
	}
	if (col > HELP_COLUMN)
		col = HELP_COLUMN;
	fprintf(f, "\nOptions:\n");
	for (o = cmd->opts; o->name; o++)
		opt_help(o, col, f);
	opt_help(&help_opt, col, f);
}
